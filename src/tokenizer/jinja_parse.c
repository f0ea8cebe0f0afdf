/* The chat-template interpreter's front end: lexer (with Hugging Face's
 * trim_blocks / lstrip_blocks and the -/+ whitespace controls) and a
 * recursive-descent parser into the tree of jinja_impl.h. Constructs outside
 * the subset are refused here, with their line and column. Errors longjmp to
 * mq_jinja_parse; everything allocated lives in the template's arena. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>

#include "core/err.h"
#include "tokenizer/jinja_impl.h"

/* ======================================================================
 * Lexer and parser
 * ====================================================================== */
typedef struct P {
  jmp_buf jb;
  mq_err *err;
  mq_jinja *j;
  jtok *toks;
  size_t nt, capt, at;
  int depth, loops;
} P;

static _Noreturn void pfail(P *p, int code, size_t off, const char *fmt, ...) MQ_PRINTF(4, 5);
static _Noreturn void pfail(P *p, int code, size_t off, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  jinja_verr(p->err, p->j->src, off, code, fmt, ap);
  va_end(ap);
  longjmp(p->jb, 1);
}

static void *palloc(P *p, size_t n) {
  void *q = arena_try(&p->j->ar, n);
  if (!q) {
    mq_errf(p->err, MQ_ERR_NOMEM, "chat template: out of memory");
    longjmp(p->jb, 1);
  }
  memset(q, 0, n);
  return q;
}

static void push_tok(P *p, int t, size_t off, jstr s) {
  if (p->nt == p->capt) {
    size_t cap = p->capt ? p->capt * 2 : 256;
    jtok *nt = realloc(p->toks, cap * sizeof *nt);
    if (!nt) {
      mq_errf(p->err, MQ_ERR_NOMEM, "chat template: out of memory");
      longjmp(p->jb, 1);
    }
    p->toks = nt;
    p->capt = cap;
  }
  jtok *k = &p->toks[p->nt++];
  memset(k, 0, sizeof *k);
  k->t = t;
  k->off = off;
  k->s = s;
}

static int is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int put_utf8(char *o, uint32_t cp) {
  if (cp < 0x80) return o[0] = (char)cp, 1;
  if (cp < 0x800) return o[0] = (char)(0xC0 | cp >> 6), o[1] = (char)(0x80 | (cp & 63)), 2;
  if (cp < 0x10000)
    return o[0] = (char)(0xE0 | cp >> 12), o[1] = (char)(0x80 | ((cp >> 6) & 63)),
           o[2] = (char)(0x80 | (cp & 63)), 3;
  return o[0] = (char)(0xF0 | cp >> 18), o[1] = (char)(0x80 | ((cp >> 12) & 63)),
         o[2] = (char)(0x80 | ((cp >> 6) & 63)), o[3] = (char)(0x80 | (cp & 63)), 4;
}

static int hexval(char c) {
  return is_digit(c)              ? c - '0'
         : (c >= 'a' && c <= 'f') ? c - 'a' + 10
         : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                  : -1;
}

/* A string literal at s[q] (the quote); Python escapes. Returns the end. */
static size_t lex_string(P *p, const char *s, size_t n, size_t q) {
  char quote = s[q];
  size_t start = q++;
  char *out = palloc(p, n - q + 1), *o = out; /* decoded text is never longer */
  while (q < n && s[q] != quote) {
    if (s[q] != '\\') {
      *o++ = s[q++];
      continue;
    }
    if (q + 1 >= n) break;
    char c = s[q + 1];
    int hx = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : 0;
    if (hx) {
      uint32_t cp = 0;
      for (int k = 0; k < hx; k++) {
        int h = q + 2 + (size_t)k < n ? hexval(s[q + 2 + k]) : -1;
        if (h < 0) pfail(p, MQ_ERR_FORMAT, q, "bad \\%c escape in a string", c);
        cp = cp * 16 + (uint32_t)h;
      }
      if (cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))
        pfail(p, MQ_ERR_FORMAT, q, "escape \\%c names no character", c);
      o += put_utf8(o, cp);
      q += 2 + (size_t)hx;
      continue;
    }
    static const char map[] = "n\nt\tr\r\\\\''\"\"a\ab\bf\fv\v"; /* pairs */
    const char *m = NULL;
    for (const char *x = map; *x; x += 2)
      if (*x == c) m = x;
    if (c == '0')
      *o++ = 0;
    else if (m)
      *o++ = m[1];
    else if (c == '\n') { /* line continuation */
    } else {
      *o++ = '\\';
      *o++ = c;
    }
    q += 2;
  }
  if (q >= n || s[q] != quote) pfail(p, MQ_ERR_FORMAT, start, "unterminated string");
  push_tok(p, T_STR, start, (jstr){out, (size_t)(o - out)});
  return q + 1;
}

static size_t lex_number(P *p, const char *s, size_t n, size_t q) {
  size_t start = q;
  int is_float = 0;
  while (q < n && is_digit(s[q])) q++;
  if (q + 1 < n && s[q] == '.' && is_digit(s[q + 1])) {
    is_float = 1;
    q++;
    while (q < n && is_digit(s[q])) q++;
  }
  if (q < n && (s[q] == 'e' || s[q] == 'E')) {
    size_t e = q + 1;
    if (e < n && (s[e] == '+' || s[e] == '-')) e++;
    if (e < n && is_digit(s[e])) {
      is_float = 1;
      q = e;
      while (q < n && is_digit(s[q])) q++;
    }
  }
  char buf[64];
  size_t len = q - start;
  if (len >= sizeof buf) pfail(p, MQ_ERR_FORMAT, start, "number too long");
  memcpy(buf, s + start, len);
  buf[len] = 0;
  push_tok(p, is_float ? T_FLOAT : T_INT, start, (jstr){s + start, len});
  jtok *k = &p->toks[p->nt - 1];
  if (is_float) {
    k->f = strtod(buf, NULL);
  } else {
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
      if (v > (INT64_MAX - 9) / 10) pfail(p, MQ_ERR_FORMAT, start, "integer too large");
      v = v * 10 + (buf[i] - '0');
    }
    k->i = v;
  }
  return q;
}

static void push_text(P *p, size_t a, size_t b) {
  if (b > a) push_tok(p, T_TEXT, a, (jstr){p->j->src + a, b - a});
}

static void lex(P *p) {
  const char *s = p->j->src;
  size_t n = p->j->n, pos = 0;
  int strip_lead = 0, trim_nl = 0;
  for (;;) {
    size_t open = pos;
    while (open + 1 < n &&
           !(s[open] == '{' && (s[open + 1] == '{' || s[open + 1] == '%' || s[open + 1] == '#')))
      open++;
    if (open + 1 >= n) open = n;
    size_t a = pos, b = open;
    if (strip_lead) {
      while (a < b && is_ws(s[a])) a++;
    } else if (trim_nl) {
      if (a < b && s[a] == '\n')
        a++;
      else if (a + 1 < b && s[a] == '\r' && s[a + 1] == '\n')
        a += 2;
    }
    if (open == n) {
      push_text(p, a, b);
      break;
    }
    char kind = s[open + 1];
    size_t q = open + 2;
    char mod = (s[q] == '-' || s[q] == '+') ? s[q] : 0;
    if (mod) q++;
    if (mod == '-') {
      while (b > a && is_ws(s[b - 1])) b--;
    } else if (mod != '+' && kind != '{') { /* lstrip_blocks */
      size_t k = b;
      while (k > a && (s[k - 1] == ' ' || s[k - 1] == '\t')) k--;
      if (k == 0 || s[k - 1] == '\n') b = k;
    }
    push_text(p, a, b);
    if (kind == '#') {
      size_t c = q;
      while (c + 1 < n && !(s[c] == '#' && s[c + 1] == '}')) c++;
      if (c + 1 >= n) pfail(p, MQ_ERR_FORMAT, open, "unclosed comment");
      strip_lead = c > q && s[c - 1] == '-';
      trim_nl = !strip_lead && !(c > q && s[c - 1] == '+');
      pos = c + 2;
      continue;
    }
    push_tok(p, kind == '{' ? T_VBEG : T_BBEG, open, (jstr){s + open, 2});
    int depth = 0;
    for (;;) {
      while (q < n && is_ws(s[q])) q++;
      if (q >= n) pfail(p, MQ_ERR_FORMAT, open, "unclosed %s", kind == '{' ? "{{" : "{%");
      if (depth == 0) {
        char c2 = kind == '{' ? '}' : '%';
        if ((s[q] == '-' || s[q] == '+') && s[q + 1] == c2 && s[q + 2] == '}') {
          strip_lead = s[q] == '-';
          trim_nl = 0;
          q += 3;
          break;
        }
        if (s[q] == c2 && s[q + 1] == '}') {
          strip_lead = 0;
          trim_nl = kind == '%';
          q += 2;
          break;
        }
      }
      char c = s[q];
      if (is_alpha(c)) {
        size_t st = q;
        while (q < n && (is_alpha(s[q]) || is_digit(s[q]))) q++;
        push_tok(p, T_NAME, st, (jstr){s + st, q - st});
      } else if (is_digit(c)) {
        q = lex_number(p, s, n, q);
      } else if (c == '\'' || c == '"') {
        q = lex_string(p, s, n, q);
      } else {
        static const char *const two[] = {"==", "!=", "<=", ">=", "//", "**"};
        size_t len = 0;
        for (int k = 0; k < 6; k++)
          if (s[q] == two[k][0] && s[q + 1] == two[k][1]) len = 2;
        if (!len) {
          if (!strchr("()[]{}.,:|+-*/%~<>=", c) || c == 0)
            pfail(p, MQ_ERR_FORMAT, q, "unexpected character '%c'", c ? c : '?');
          len = 1;
          if (c == '(' || c == '[' || c == '{') depth++;
          if ((c == ')' || c == ']' || c == '}') && depth > 0) depth--;
        }
        push_tok(p, T_OP, q, (jstr){s + q, len});
        q += len;
      }
    }
    push_tok(p, kind == '{' ? T_VEND : T_BEND, q, (jstr){s + q - 2, 2});
    pos = q;
  }
  push_tok(p, T_EOF, n, (jstr){"", 0});
}

/* ---- parser helpers ---- */
static jtok *peek(P *p) { return &p->toks[p->at]; }
static jtok *peek2(P *p) { return &p->toks[p->at + (p->toks[p->at].t != T_EOF)]; }
static jtok *next_tok(P *p) {
  jtok *t = &p->toks[p->at];
  if (t->t != T_EOF) p->at++;
  return t;
}
static int is_op(const jtok *t, const char *op) { return t->t == T_OP && jstr_is(t->s, op); }
static int is_name(const jtok *t, const char *nm) { return t->t == T_NAME && jstr_is(t->s, nm); }

static const char *tok_desc(const jtok *t, char *buf, size_t cap) {
  switch (t->t) {
  case T_EOF: return "the end of the template";
  case T_TEXT: return "text";
  case T_VBEG: return "'{{'";
  case T_VEND: return "'}}'";
  case T_BBEG: return "'{%'";
  case T_BEND: return "'%}'";
  case T_STR: return "a string";
  case T_INT:
  case T_FLOAT: return "a number";
  default: snprintf(buf, cap, "'%.*s'", (int)(t->s.n > 40 ? 40 : t->s.n), t->s.p); return buf;
  }
}

static _Noreturn void unexpected(P *p, const char *want) {
  char buf[64];
  jtok *t = peek(p);
  pfail(p, MQ_ERR_FORMAT, t->off, "expected %s, found %s", want, tok_desc(t, buf, sizeof buf));
}

static void expect_op(P *p, const char *op) {
  if (!is_op(peek(p), op)) {
    char w[16];
    snprintf(w, sizeof w, "'%s'", op);
    unexpected(p, w);
  }
  next_tok(p);
}

static void expect_t(P *p, int t, const char *want) {
  if (peek(p)->t != t) unexpected(p, want);
  next_tok(p);
}

static jstr expect_name(P *p) {
  if (peek(p)->t != T_NAME) unexpected(p, "a name");
  return next_tok(p)->s;
}

static jexpr *mk(P *p, int kind, size_t off) {
  jexpr *e = palloc(p, sizeof *e);
  e->kind = kind;
  e->off = off;
  return e;
}

static const char *const FILTERS[] = {
    "trim",   "length", "count",      "upper",      "lower",   "capitalize", "title",
    "tojson", "string", "int",        "float",      "default", "d",          "first",
    "last",   "join",   "list",       "reverse",    "replace", "safe",       "abs",
    "items",  "map",    "selectattr", "rejectattr", "select",  "reject",     NULL};
const char *const mq_jinja_tests[] = {
    "defined", "undefined", "none",    "string",   "number",   "integer", "float", "boolean",
    "true",    "false",     "mapping", "iterable", "sequence", "odd",     "even",  "divisibleby",
    "equalto", "eq",        "ne",      "lower",    "upper",    NULL};
static const char *const FUNCS[] = {"raise_exception", "namespace", "range",
                                    "strftime_now",    "dict",      NULL};
static const char *const METHODS[] = {"strip",      "lstrip", "rstrip", "startswith", "endswith",
                                      "split",      "upper",  "lower",  "replace",    "title",
                                      "capitalize", "find",   "join",   "items",      "keys",
                                      "values",     "get",    NULL};
static const char *const KEYWORDS[] = {"and", "or", "not", "in", "is", "if", "else", NULL};

static jexpr *parse_expr(P *p);
static jexpr *parse_or(P *p);
static jexpr *parse_unary(P *p);

static void enter(P *p, size_t off) {
  if (++p->depth > J_MAX_DEPTH)
    pfail(p, MQ_ERR_UNSUPPORTED, off, "nesting deeper than %d", J_MAX_DEPTH);
}

/* '(' [arg {',' arg}] ')' with arg := name '=' expr | expr */
static void parse_args(P *p, jexpr *e) {
  expect_op(p, "(");
  jexpr *args[64];
  jstr kwn[32];
  jexpr *kwv[32];
  int na = 0, nk = 0;
  while (!is_op(peek(p), ")")) {
    if (peek(p)->t == T_NAME && is_op(peek2(p), "=")) {
      if (nk == 32) pfail(p, MQ_ERR_UNSUPPORTED, peek(p)->off, "more than 32 keyword arguments");
      kwn[nk] = next_tok(p)->s;
      next_tok(p);
      kwv[nk++] = parse_expr(p);
    } else {
      if (na == 64) pfail(p, MQ_ERR_UNSUPPORTED, peek(p)->off, "more than 64 arguments");
      args[na++] = parse_expr(p);
    }
    if (!is_op(peek(p), ",")) break;
    next_tok(p);
  }
  expect_op(p, ")");
  e->n_args = na;
  e->args = palloc(p, sizeof(jexpr *) * (size_t)(na ? na : 1));
  memcpy(e->args, args, sizeof(jexpr *) * (size_t)na);
  e->n_kw = nk;
  e->kwn = palloc(p, sizeof(jstr) * (size_t)(nk ? nk : 1));
  e->kwv = palloc(p, sizeof(jexpr *) * (size_t)(nk ? nk : 1));
  memcpy(e->kwn, kwn, sizeof(jstr) * (size_t)nk);
  memcpy(e->kwv, kwv, sizeof(jexpr *) * (size_t)nk);
}

static jexpr *parse_primary(P *p) {
  jtok *t = peek(p);
  jexpr *e;
  switch (t->t) {
  case T_NAME:
    next_tok(p);
    e = mk(p, E_LIT, t->off);
    if (jstr_is(t->s, "true") || jstr_is(t->s, "True"))
      e->lit = (jv){V_BOOL, {.i = 1}};
    else if (jstr_is(t->s, "false") || jstr_is(t->s, "False"))
      e->lit = (jv){V_BOOL, {.i = 0}};
    else if (jstr_is(t->s, "none") || jstr_is(t->s, "None"))
      e->lit = (jv){V_NONE, {0}};
    else {
      e->kind = E_NAME;
      e->name = t->s;
    }
    return e;
  case T_STR: {
    next_tok(p);
    e = mk(p, E_LIT, t->off);
    jstr s = t->s;
    while (peek(p)->t == T_STR) { /* adjacent literals concatenate */
      jstr b = next_tok(p)->s;
      char *c = palloc(p, s.n + b.n + 1);
      memcpy(c, s.p, s.n);
      memcpy(c + s.n, b.p, b.n);
      s = (jstr){c, s.n + b.n};
    }
    e->lit = (jv){V_STR, {.s = s}};
    return e;
  }
  case T_INT:
    next_tok(p);
    e = mk(p, E_LIT, t->off);
    e->lit = (jv){V_INT, {.i = t->i}};
    return e;
  case T_FLOAT:
    next_tok(p);
    e = mk(p, E_LIT, t->off);
    e->lit = (jv){V_FLOAT, {.f = t->f}};
    return e;
  case T_OP:
    if (is_op(t, "(") || is_op(t, "[")) {
      int paren = is_op(t, "(");
      next_tok(p);
      const char *close = paren ? ")" : "]";
      jexpr *items[256];
      int n = 0, comma = 0;
      while (!is_op(peek(p), close)) {
        if (n == 256) pfail(p, MQ_ERR_UNSUPPORTED, t->off, "more than 256 items in a literal");
        items[n++] = parse_expr(p);
        if (!is_op(peek(p), ",")) break;
        comma = 1;
        next_tok(p);
      }
      expect_op(p, close);
      if (paren && n == 1 && !comma) return items[0];
      e = mk(p, E_LIST, t->off); /* tuples are lists here */
      e->n_args = n;
      e->args = palloc(p, sizeof(jexpr *) * (size_t)(n ? n : 1));
      memcpy(e->args, items, sizeof(jexpr *) * (size_t)n);
      return e;
    }
    if (is_op(t, "{")) {
      next_tok(p);
      jexpr *items[256];
      int n = 0;
      while (!is_op(peek(p), "}")) {
        if (n == 256) pfail(p, MQ_ERR_UNSUPPORTED, t->off, "more than 128 items in a dict literal");
        items[n++] = parse_expr(p);
        expect_op(p, ":");
        items[n++] = parse_expr(p);
        if (!is_op(peek(p), ",")) break;
        next_tok(p);
      }
      expect_op(p, "}");
      e = mk(p, E_DICT, t->off);
      e->n_args = n;
      e->args = palloc(p, sizeof(jexpr *) * (size_t)(n ? n : 1));
      memcpy(e->args, items, sizeof(jexpr *) * (size_t)n);
      return e;
    }
    break;
  default: break;
  }
  unexpected(p, "an expression");
}

static int starts_operand(const jtok *t) {
  return t->t == T_STR || t->t == T_INT || t->t == T_FLOAT ||
         (t->t == T_NAME && !in_list(t->s, KEYWORDS)) || is_op(t, "(") || is_op(t, "[") ||
         is_op(t, "{");
}

static jexpr *parse_postfix(P *p, jexpr *e) {
  for (;;) {
    jtok *t = peek(p);
    if (is_op(t, ".")) {
      next_tok(p);
      jtok *nt = peek(p);
      if (nt->t == T_INT) { /* x.0: an index */
        next_tok(p);
        jexpr *x = mk(p, E_INDEX, nt->off), *lit = mk(p, E_LIT, nt->off);
        lit->lit = (jv){V_INT, {.i = nt->i}};
        x->a = e;
        x->b = lit;
        e = x;
        continue;
      }
      jstr name = expect_name(p);
      if (is_op(peek(p), "(")) {
        if (!in_list(name, METHODS))
          pfail(p, MQ_ERR_UNSUPPORTED, nt->off, "method '.%.*s()' is not supported", (int)name.n,
                name.p);
        jexpr *x = mk(p, E_METHOD, nt->off);
        x->a = e;
        x->name = name;
        parse_args(p, x);
        e = x;
      } else {
        jexpr *x = mk(p, E_ATTR, nt->off);
        x->a = e;
        x->name = name;
        e = x;
      }
    } else if (is_op(t, "[")) {
      next_tok(p);
      jexpr *parts[3] = {NULL, NULL, NULL};
      int k = 0, slice = 0;
      for (;;) {
        if (!is_op(peek(p), ":") && !is_op(peek(p), "]")) parts[k] = parse_expr(p);
        if (is_op(peek(p), ":") && k < 2) {
          next_tok(p);
          slice = 1;
          k++;
          continue;
        }
        break;
      }
      expect_op(p, "]");
      jexpr *x = mk(p, slice ? E_SLICE : E_INDEX, t->off);
      x->a = e;
      if (!slice) {
        if (!parts[0]) pfail(p, MQ_ERR_FORMAT, t->off, "empty subscript");
        x->b = parts[0];
      } else {
        x->b = parts[0];
        x->c = parts[1];
        x->d = parts[2];
      }
      e = x;
    } else if (is_op(t, "(")) {
      if (e->kind != E_NAME)
        pfail(p, MQ_ERR_UNSUPPORTED, t->off, "only named functions can be called");
      if (!in_list(e->name, FUNCS))
        pfail(p, MQ_ERR_UNSUPPORTED, e->off, "function '%.*s()' is not supported", (int)e->name.n,
              e->name.p);
      jexpr *x = mk(p, E_CALL, e->off);
      x->name = e->name;
      parse_args(p, x);
      e = x;
    } else if (is_op(t, "|")) {
      next_tok(p);
      jtok *nt = peek(p);
      jstr name = expect_name(p);
      if (!in_list(name, FILTERS))
        pfail(p, MQ_ERR_UNSUPPORTED, nt->off, "filter '%.*s' is not supported", (int)name.n,
              name.p);
      jexpr *x = mk(p, E_FILTER, nt->off);
      x->a = e;
      x->name = name;
      if (is_op(peek(p), "(")) parse_args(p, x);
      e = x;
    } else if (is_name(t, "is")) {
      next_tok(p);
      jexpr *x = mk(p, E_TEST, t->off);
      if (is_name(peek(p), "not")) {
        next_tok(p);
        x->op = 1;
      }
      jtok *nt = peek(p);
      jstr name;
      if (nt->t == T_NAME)
        name = next_tok(p)->s;
      else if (is_op(nt, "=="))
        next_tok(p), name = (jstr){"eq", 2};
      else
        unexpected(p, "a test name");
      if (jstr_is(name, "none") || jstr_is(name, "None"))
        name = (jstr){"none", 4};
      else if (jstr_is(name, "true") || jstr_is(name, "True"))
        name = (jstr){"true", 4};
      else if (jstr_is(name, "false") || jstr_is(name, "False"))
        name = (jstr){"false", 5};
      if (!in_list(name, mq_jinja_tests))
        pfail(p, MQ_ERR_UNSUPPORTED, nt->off, "test 'is %.*s' is not supported", (int)name.n,
              name.p);
      x->a = e;
      x->name = name;
      if (is_op(peek(p), "(")) {
        parse_args(p, x);
      } else if (starts_operand(peek(p)) && !jstr_is(name, "defined") && !jstr_is(name, "none")) {
        x->n_args = 1;
        x->args = palloc(p, sizeof(jexpr *));
        x->args[0] = parse_postfix(p, parse_primary(p));
      }
      e = x;
    } else {
      return e;
    }
  }
}

static jexpr *parse_unary(P *p) {
  jtok *t = peek(p);
  enter(p, t->off);
  jexpr *e;
  if (is_op(t, "-") || is_op(t, "+")) {
    next_tok(p);
    jexpr *a = parse_unary(p);
    if (is_op(t, "+")) {
      e = a;
    } else {
      e = mk(p, E_NEG, t->off);
      e->a = a;
    }
  } else {
    e = parse_postfix(p, parse_primary(p));
  }
  p->depth--;
  return e;
}

static jexpr *bin(P *p, int op, size_t off, jexpr *a, jexpr *b) {
  jexpr *e = mk(p, E_BIN, off);
  e->op = op;
  e->a = a;
  e->b = b;
  return e;
}

static jexpr *parse_pow(P *p) {
  jexpr *a = parse_unary(p);
  while (is_op(peek(p), "**")) {
    size_t off = next_tok(p)->off;
    a = bin(p, OP_POW, off, a, parse_unary(p));
  }
  return a;
}

static jexpr *parse_math2(P *p) {
  jexpr *a = parse_pow(p);
  for (;;) {
    jtok *t = peek(p);
    int op = is_op(t, "*")    ? OP_MUL
             : is_op(t, "/")  ? OP_DIV
             : is_op(t, "//") ? OP_FDIV
             : is_op(t, "%")  ? OP_MOD
                              : -1;
    if (op < 0) return a;
    next_tok(p);
    a = bin(p, op, t->off, a, parse_pow(p));
  }
}

static jexpr *parse_concat(P *p) {
  jexpr *a = parse_math2(p);
  while (is_op(peek(p), "~")) {
    size_t off = next_tok(p)->off;
    a = bin(p, OP_CAT, off, a, parse_math2(p));
  }
  return a;
}

static jexpr *parse_math1(P *p) {
  jexpr *a = parse_concat(p);
  for (;;) {
    jtok *t = peek(p);
    int op = is_op(t, "+") ? OP_ADD : is_op(t, "-") ? OP_SUB : -1;
    if (op < 0) return a;
    next_tok(p);
    a = bin(p, op, t->off, a, parse_concat(p));
  }
}

static jexpr *parse_compare(P *p) {
  jexpr *a = parse_math1(p);
  for (;;) {
    jtok *t = peek(p);
    int op = is_op(t, "==")     ? OP_EQ
             : is_op(t, "!=")   ? OP_NE
             : is_op(t, "<")    ? OP_LT
             : is_op(t, "<=")   ? OP_LE
             : is_op(t, ">")    ? OP_GT
             : is_op(t, ">=")   ? OP_GE
             : is_name(t, "in") ? OP_IN
                                : -1;
    if (op < 0 && is_name(t, "not") && is_name(peek2(p), "in")) {
      next_tok(p);
      op = OP_NOTIN;
    }
    if (op < 0) return a;
    next_tok(p);
    a = bin(p, op, t->off, a, parse_math1(p));
  }
}

static jexpr *parse_not(P *p) {
  jtok *t = peek(p);
  if (is_name(t, "not")) {
    next_tok(p);
    enter(p, t->off);
    jexpr *e = mk(p, E_NOT, t->off);
    e->a = parse_not(p);
    p->depth--;
    return e;
  }
  return parse_compare(p);
}

static jexpr *parse_and(P *p) {
  jexpr *a = parse_not(p);
  while (is_name(peek(p), "and")) {
    jexpr *e = mk(p, E_AND, next_tok(p)->off);
    e->a = a;
    e->b = parse_not(p);
    a = e;
  }
  return a;
}

static jexpr *parse_or(P *p) {
  jexpr *a = parse_and(p);
  while (is_name(peek(p), "or")) {
    jexpr *e = mk(p, E_OR, next_tok(p)->off);
    e->a = a;
    e->b = parse_and(p);
    a = e;
  }
  return a;
}

static jexpr *parse_expr(P *p) {
  size_t off = peek(p)->off;
  enter(p, off);
  jexpr *a = parse_or(p);
  if (is_name(peek(p), "if")) {
    jexpr *e = mk(p, E_COND, next_tok(p)->off);
    e->a = a;
    e->b = parse_or(p);
    if (is_name(peek(p), "else")) {
      next_tok(p);
      e->c = parse_expr(p);
    }
    a = e;
  }
  p->depth--;
  return a;
}

/* ---- statements ---- */
static jnode *mknode(P *p, int kind, size_t off) {
  jnode *n = palloc(p, sizeof *n);
  n->kind = kind;
  n->off = off;
  return n;
}

/* Parse nodes until a {% NAME %} whose NAME is in ends (consumed up to the
 * name; *which = its index), or the end of the template (ends == NULL). */
static jnode *parse_body(P *p, const char *const *ends, int *which, size_t open_off,
                         const char *open_what);

static const char *const UNSUPPORTED_STMTS[] = {
    "macro", "call", "filter", "include",    "import", "from",     "extends",
    "block", "with", "raw",    "autoescape", "do",     "endmacro", NULL};

static jnode *parse_stmt(P *p, size_t boff) {
  jtok *t = peek(p);
  if (t->t != T_NAME) unexpected(p, "a statement name");
  jstr nm = next_tok(p)->s;
  enter(p, t->off);
  jnode *node = NULL;
  if (jstr_is(nm, "if")) {
    jexpr *conds[256];
    jnode *bodies[256];
    int n = 0, w;
    jnode *else_body = NULL;
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    conds[n] = parse_expr(p);
    expect_t(p, T_BEND, "'%}'");
    bodies[n++] = parse_body(p, ends, &w, boff, "{% if %}");
    while (w == 0) {
      if (n == 256) pfail(p, MQ_ERR_UNSUPPORTED, t->off, "more than 256 elif branches");
      conds[n] = parse_expr(p);
      expect_t(p, T_BEND, "'%}'");
      bodies[n++] = parse_body(p, ends, &w, boff, "{% if %}");
    }
    if (w == 1) {
      static const char *const endif[] = {"endif", NULL};
      expect_t(p, T_BEND, "'%}'");
      else_body = parse_body(p, endif, &w, boff, "{% else %}");
    }
    expect_t(p, T_BEND, "'%}'");
    node = mknode(p, N_IF, t->off);
    node->n_br = n;
    node->conds = palloc(p, sizeof(jexpr *) * (size_t)n);
    node->bodies = palloc(p, sizeof(jnode *) * (size_t)n);
    memcpy(node->conds, conds, sizeof(jexpr *) * (size_t)n);
    memcpy(node->bodies, bodies, sizeof(jnode *) * (size_t)n);
    node->else_body = else_body;
  } else if (jstr_is(nm, "for")) {
    jstr names[8];
    int nn = 0;
    names[nn++] = expect_name(p);
    while (is_op(peek(p), ",")) {
      next_tok(p);
      if (nn == 8) pfail(p, MQ_ERR_UNSUPPORTED, t->off, "more than 8 loop variables");
      names[nn++] = expect_name(p);
    }
    if (!is_name(peek(p), "in")) unexpected(p, "'in'");
    next_tok(p);
    node = mknode(p, N_FOR, t->off);
    node->e = parse_or(p);
    if (is_name(peek(p), "if")) {
      next_tok(p);
      node->cond = parse_or(p);
    }
    if (is_name(peek(p), "recursive"))
      pfail(p, MQ_ERR_UNSUPPORTED, peek(p)->off, "recursive loops are not supported");
    expect_t(p, T_BEND, "'%}'");
    node->n_names = nn;
    node->names = palloc(p, sizeof(jstr) * (size_t)nn);
    memcpy(node->names, names, sizeof(jstr) * (size_t)nn);
    static const char *const ends[] = {"else", "endfor", NULL};
    int w;
    p->loops++;
    node->body = parse_body(p, ends, &w, boff, "{% for %}");
    p->loops--;
    if (w == 0) {
      static const char *const endfor[] = {"endfor", NULL};
      expect_t(p, T_BEND, "'%}'");
      node->else_body = parse_body(p, endfor, &w, boff, "{% for %}");
    }
    expect_t(p, T_BEND, "'%}'");
  } else if (jstr_is(nm, "set")) {
    node = mknode(p, N_SET, t->off);
    node->names = palloc(p, sizeof(jstr));
    node->names[0] = expect_name(p);
    node->n_names = 1;
    if (is_op(peek(p), ".")) {
      next_tok(p);
      node->attr = expect_name(p);
    }
    if (is_op(peek(p), ","))
      pfail(p, MQ_ERR_UNSUPPORTED, peek(p)->off,
            "setting several variables at once is not supported");
    if (is_op(peek(p), "=")) {
      next_tok(p);
      node->e = parse_expr(p);
      expect_t(p, T_BEND, "'%}'");
    } else {
      if (node->attr.n) unexpected(p, "'='");
      expect_t(p, T_BEND, "'='");
      static const char *const ends[] = {"endset", NULL};
      int w;
      node->kind = N_SETBLOCK;
      node->body = parse_body(p, ends, &w, boff, "{% set %}");
      expect_t(p, T_BEND, "'%}'");
    }
  } else if (jstr_is(nm, "break") || jstr_is(nm, "continue")) {
    if (!p->loops) pfail(p, MQ_ERR_FORMAT, t->off, "{%% %.*s %%} outside a loop", (int)nm.n, nm.p);
    expect_t(p, T_BEND, "'%}'");
    node = mknode(p, jstr_is(nm, "break") ? N_BREAK : N_CONTINUE, t->off);
  } else if (jstr_is(nm, "generation")) { /* Hugging Face's assistant-mask marker: no output */
    expect_t(p, T_BEND, "'%}'");
    static const char *const ends[] = {"endgeneration", NULL};
    int w;
    jnode *body = parse_body(p, ends, &w, boff, "{% generation %}");
    expect_t(p, T_BEND, "'%}'");
    node = mknode(p, N_IF, t->off); /* an always-true if keeps the body's list intact */
    node->n_br = 1;
    node->conds = palloc(p, sizeof(jexpr *));
    node->conds[0] = mk(p, E_LIT, t->off);
    node->conds[0]->lit = (jv){V_BOOL, {.i = 1}};
    node->bodies = palloc(p, sizeof(jnode *));
    node->bodies[0] = body;
  } else if (in_list(nm, UNSUPPORTED_STMTS)) {
    pfail(p, MQ_ERR_UNSUPPORTED, t->off, "statement '{%% %.*s %%}' is not supported", (int)nm.n,
          nm.p);
  } else {
    pfail(p, MQ_ERR_FORMAT, t->off, "unexpected '{%% %.*s %%}'", (int)(nm.n > 40 ? 40 : nm.n),
          nm.p);
  }
  p->depth--;
  return node;
}

static jnode *parse_body(P *p, const char *const *ends, int *which, size_t open_off,
                         const char *open_what) {
  jnode *head = NULL, **tail = &head;
  for (;;) {
    jtok *t = peek(p);
    jnode *n = NULL;
    if (t->t == T_EOF) {
      if (ends) {
        int last = 0;
        while (ends[last + 1]) last++;
        pfail(p, MQ_ERR_FORMAT, open_off, "%s is never closed ({%% %s %%} missing)", open_what,
              ends[last]);
      }
      return head;
    }
    if (t->t == T_TEXT) {
      next_tok(p);
      n = mknode(p, N_TEXT, t->off);
      n->text = t->s;
    } else if (t->t == T_VBEG) {
      next_tok(p);
      n = mknode(p, N_OUT, t->off);
      n->e = parse_expr(p);
      expect_t(p, T_VEND, "'}}'");
    } else if (t->t == T_BBEG) {
      jtok *nt = peek2(p);
      if (ends && nt->t == T_NAME)
        for (int k = 0; ends[k]; k++)
          if (jstr_is(nt->s, ends[k])) {
            next_tok(p);
            next_tok(p);
            *which = k;
            return head;
          }
      next_tok(p);
      n = parse_stmt(p, t->off);
    } else {
      unexpected(p, "text, '{{' or '{%'");
    }
    *tail = n;
    tail = &n->next;
  }
}

int mq_jinja_parse(const char *src, size_t len, mq_jinja **out, mq_err *err) {
  *out = NULL;
  if (!src) return mq_errf(err, MQ_ERR_ARG, "chat template: no source");
  if (len > ((size_t)16 << 20))
    return mq_errf(err, MQ_ERR_UNSUPPORTED, "chat template: %zu bytes is over the 16 MiB limit",
                   len);
  mq_jinja *j = calloc(1, sizeof *j);
  P *p = calloc(1, sizeof *p);
  if (!j || !p || !(j->src = malloc(len + 4))) {
    free(p);
    if (j) free(j->src);
    free(j);
    return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  }
  memcpy(j->src, src, len);
  memset(j->src + len, 0, 4); /* the lexer may look 3 bytes ahead */
  j->n = len;
  j->ar.limit = J_MAX_ARENA;
  p->j = j;
  p->err = err;
  int rc = MQ_OK;
  if (setjmp(p->jb) == 0) {
    lex(p);
    j->root = parse_body(p, NULL, NULL, 0, NULL);
  } else {
    rc = err ? err->code : MQ_ERR_FORMAT;
    if (rc == MQ_OK) rc = MQ_ERR_FORMAT;
  }
  free(p->toks);
  free(p);
  if (rc != MQ_OK) {
    mq_jinja_free(j);
    return rc;
  }
  *out = j;
  return MQ_OK;
}

void mq_jinja_free(mq_jinja *j) {
  if (!j) return;
  arena_free(&j->ar);
  free(j->src);
  free(j);
}
