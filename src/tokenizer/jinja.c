/* The chat-template interpreter's back end: a tree walk over the parsed
 * template (jinja_impl.h) with Python / Jinja value semantics; see jinja.h for
 * the subset. A render allocates its values in an arena freed when it
 * returns; errors longjmp back to mq_jinja_render (everything reachable is in
 * the arena or registered for cleanup, so nothing leaks). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "core/err.h"
#include "tokenizer/jinja_impl.h"

/* ======================================================================
 * Rendering
 * ====================================================================== */
typedef struct jvar {
  jstr name;
  jv v;
} jvar;

typedef struct R {
  jmp_buf jb;
  mq_err *err;
  const mq_jinja *j;
  arena ar;
  long steps;
  mq_bbuf *out;
  mq_bbuf cap[J_MAX_CAPTURE];
  int n_cap;
  jvar *vars;
  size_t nvars, capvars, frame;
  int ctl; /* 1: break, 2: continue pending */
  int depth;
} R;

static _Noreturn void rfail(R *r, int code, size_t off, const char *fmt, ...) MQ_PRINTF(4, 5);
static _Noreturn void rfail(R *r, int code, size_t off, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  jinja_verr(r->err, r->j->src, off, code, fmt, ap);
  va_end(ap);
  longjmp(r->jb, 1);
}

static void *ralloc(R *r, size_t n) {
  void *q = arena_try(&r->ar, n);
  if (!q) {
    mq_errf(r->err, MQ_ERR_NOMEM, "chat template: rendering needs more than %zu MiB",
            J_MAX_ARENA >> 20);
    longjmp(r->jb, 1);
  }
  return q;
}

static jv vstr(R *r, const char *s, size_t n) {
  char *c = ralloc(r, n + 1);
  if (n) memcpy(c, s, n);
  c[n] = 0;
  return (jv){V_STR, {.s = {c, n}}};
}

static jv vint(int64_t i) { return (jv){V_INT, {.i = i}}; }
static jv vbool(int b) { return (jv){V_BOOL, {.i = b != 0}}; }

static jlist *newlist(R *r, size_t n) {
  jlist *l = ralloc(r, sizeof *l);
  l->v = ralloc(r, sizeof(jv) * (n ? n : 1));
  l->n = n;
  return l;
}

static jdict *newdict(R *r, size_t cap) {
  jdict *d = ralloc(r, sizeof *d);
  memset(d, 0, sizeof *d);
  d->cap = cap ? cap : 4;
  d->key = ralloc(r, sizeof(jstr) * d->cap);
  d->val = ralloc(r, sizeof(jv) * d->cap);
  return d;
}

static int jstr_eq(jstr a, jstr b) { return a.n == b.n && (a.n == 0 || !memcmp(a.p, b.p, a.n)); }

static jv *dict_get(const jdict *d, jstr k) {
  for (size_t i = 0; i < d->n; i++)
    if (jstr_eq(d->key[i], k)) return &d->val[i];
  return NULL;
}

static void dict_set(R *r, jdict *d, jstr k, jv v) {
  jv *x = dict_get(d, k);
  if (x) {
    *x = v;
    return;
  }
  if (d->n == d->cap) {
    size_t cap = d->cap * 2;
    jstr *nk = ralloc(r, sizeof(jstr) * cap);
    jv *nv = ralloc(r, sizeof(jv) * cap);
    memcpy(nk, d->key, sizeof(jstr) * d->n);
    memcpy(nv, d->val, sizeof(jv) * d->n);
    d->key = nk;
    d->val = nv;
    d->cap = cap;
  }
  d->key[d->n] = k;
  d->val[d->n++] = v;
}

static void step(R *r, size_t off) {
  if (++r->steps > J_MAX_STEPS)
    rfail(r, MQ_ERR_UNSUPPORTED, off, "rendering exceeded %ld steps", J_MAX_STEPS);
}

static const char *kind_name(int k) {
  static const char *const names[] = {"undefined", "none", "boolean", "integer", "float",
                                      "string",    "list", "dict",    "loop"};
  return names[k];
}

static int truthy(jv v) {
  switch (v.k) {
  case V_UNDEF:
  case V_NONE: return 0;
  case V_BOOL:
  case V_INT: return v.u.i != 0;
  case V_FLOAT: return v.u.f != 0.0;
  case V_STR: return v.u.s.n != 0;
  case V_LIST: return v.u.l->n != 0;
  case V_DICT: return v.u.d->ns || v.u.d->n != 0;
  default: return 1;
  }
}

/* ---- strings ---- */
typedef struct sb {
  char *p;
  size_t n, cap;
} sb;

static void sb_add(R *r, sb *b, const char *s, size_t n) {
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 64;
    while (cap < b->n + n) cap *= 2;
    char *q = ralloc(r, cap);
    if (b->n) memcpy(q, b->p, b->n);
    b->p = q;
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->n, s, n);
  b->n += n;
}
static void sb_addz(R *r, sb *b, const char *z) { sb_add(r, b, z, strlen(z)); }
static jv sb_val(sb *b) { return (jv){V_STR, {.s = {b->p ? b->p : "", b->n}}}; }

/* Decode one code point at s[i] (lenient: a stray byte is one unit). */
static uint32_t cp_at(const char *s, size_t n, size_t i, size_t *len) {
  unsigned char c = (unsigned char)s[i];
  int l = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  if (i + (size_t)l > n) l = 1;
  for (int k = 1; k < l; k++)
    if (((unsigned char)s[i + k] & 0xC0) != 0x80) l = 1;
  *len = (size_t)l;
  if (l == 1) return c;
  uint32_t cp = c & (0x7F >> l);
  for (int k = 1; k < l; k++) cp = cp << 6 | ((unsigned char)s[i + k] & 0x3F);
  return cp;
}

static size_t n_cps(jstr s) {
  size_t k = 0;
  for (size_t i = 0; i < s.n; k++) {
    size_t l;
    cp_at(s.p, s.n, i, &l);
    i += l;
  }
  return k;
}

/* Python's str.isspace() */
static int py_space(uint32_t c) {
  return (c >= 9 && c <= 13) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

static int in_chars(uint32_t c, const jstr *chars) {
  if (!chars) return py_space(c);
  for (size_t i = 0; i < chars->n;) {
    size_t l;
    if (cp_at(chars->p, chars->n, i, &l) == c) return 1;
    i += l;
  }
  return 0;
}

static jstr strip(jstr s, const jstr *chars, int left, int right) {
  size_t a = 0, b = s.n;
  while (left && a < b) {
    size_t l;
    if (!in_chars(cp_at(s.p, s.n, a, &l), chars)) break;
    a += l;
  }
  while (right && b > a) {
    size_t k = b - 1;
    while (k > a && ((unsigned char)s.p[k] & 0xC0) == 0x80) k--;
    size_t l;
    uint32_t c = cp_at(s.p, s.n, k, &l);
    if (k + l != b || !in_chars(c, chars)) break;
    b = k;
  }
  return (jstr){s.p + a, b - a};
}

static jv case_map(R *r, jstr s, int mode) { /* 0 lower, 1 upper, 2 capitalize, 3 title (ASCII) */
  char *c = ralloc(r, s.n + 1);
  int at_word = 1;
  for (size_t i = 0; i < s.n; i++) {
    char x = s.p[i];
    int up = mode == 1 || (mode == 2 && i == 0) || (mode == 3 && at_word);
    if (up && x >= 'a' && x <= 'z')
      x = (char)(x - 32);
    else if (!up && mode != 0 && mode != 1 && x >= 'A' && x <= 'Z')
      x = (char)(x + 32);
    else if (mode == 0 && x >= 'A' && x <= 'Z')
      x = (char)(x + 32);
    at_word = !((x >= 'a' && x <= 'z') || (x >= 'A' && x <= 'Z') || (x >= '0' && x <= '9') ||
                ((unsigned char)x & 0x80));
    c[i] = x;
  }
  c[s.n] = 0;
  return (jv){V_STR, {.s = {c, s.n}}};
}

static void fmt_float(double f, char *buf, size_t cap) {
  if (isnan(f)) {
    snprintf(buf, cap, "nan");
    return;
  }
  if (isinf(f)) {
    snprintf(buf, cap, f > 0 ? "inf" : "-inf");
    return;
  }
  for (int prec = 1; prec <= 17; prec++) { /* shortest repr that reads back (Python's repr) */
    snprintf(buf, cap, "%.*g", prec, f);
    if (strtod(buf, NULL) == f) break;
  }
  if (!strpbrk(buf, ".en")) strncat(buf, ".0", cap - strlen(buf) - 1);
}

static void repr(R *r, sb *b, jv v, int top);

static void repr_str(R *r, sb *b, jstr s) {
  int has_sq = memchr(s.p, '\'', s.n) != NULL, has_dq = memchr(s.p, '"', s.n) != NULL;
  char q = has_sq && !has_dq ? '"' : '\'';
  sb_add(r, b, &q, 1);
  for (size_t i = 0; i < s.n; i++) {
    char c = s.p[i];
    if (c == q || c == '\\')
      sb_add(r, b, "\\", 1), sb_add(r, b, &c, 1);
    else if (c == '\n')
      sb_addz(r, b, "\\n");
    else if (c == '\r')
      sb_addz(r, b, "\\r");
    else if (c == '\t')
      sb_addz(r, b, "\\t");
    else
      sb_add(r, b, &c, 1);
  }
  sb_add(r, b, &q, 1);
}

/* str(v) as Python / Jinja print it (top: a string prints bare). */
static void repr(R *r, sb *b, jv v, int top) {
  char buf[64];
  switch (v.k) {
  case V_UNDEF: break;
  case V_NONE: sb_addz(r, b, "None"); break;
  case V_BOOL: sb_addz(r, b, v.u.i ? "True" : "False"); break;
  case V_INT: snprintf(buf, sizeof buf, "%lld", (long long)v.u.i), sb_addz(r, b, buf); break;
  case V_FLOAT: fmt_float(v.u.f, buf, sizeof buf), sb_addz(r, b, buf); break;
  case V_STR:
    if (top)
      sb_add(r, b, v.u.s.p, v.u.s.n);
    else
      repr_str(r, b, v.u.s);
    break;
  case V_LIST:
    sb_addz(r, b, "[");
    for (size_t i = 0; i < v.u.l->n; i++) {
      if (i) sb_addz(r, b, ", ");
      repr(r, b, v.u.l->v[i], 0);
    }
    sb_addz(r, b, "]");
    break;
  case V_DICT:
    if (v.u.d->ns) {
      sb_addz(r, b, "<Namespace>");
      break;
    }
    sb_addz(r, b, "{");
    for (size_t i = 0; i < v.u.d->n; i++) {
      if (i) sb_addz(r, b, ", ");
      repr_str(r, b, v.u.d->key[i]);
      sb_addz(r, b, ": ");
      repr(r, b, v.u.d->val[i], 0);
    }
    sb_addz(r, b, "}");
    break;
  default: sb_addz(r, b, "<LoopContext>"); break;
  }
}

static jstr to_str(R *r, jv v) {
  if (v.k == V_STR) return v.u.s;
  sb b = {0};
  repr(r, &b, v, 1);
  return sb_val(&b).u.s;
}

static void json_str(R *r, sb *b, jstr s) {
  sb_addz(r, b, "\"");
  for (size_t i = 0; i < s.n; i++) {
    unsigned char c = (unsigned char)s.p[i];
    char esc[8];
    if (c == '"')
      sb_addz(r, b, "\\\"");
    else if (c == '\\')
      sb_addz(r, b, "\\\\");
    else if (c == '\n')
      sb_addz(r, b, "\\n");
    else if (c == '\r')
      sb_addz(r, b, "\\r");
    else if (c == '\t')
      sb_addz(r, b, "\\t");
    else if (c == '\b')
      sb_addz(r, b, "\\b");
    else if (c == '\f')
      sb_addz(r, b, "\\f");
    else if (c < 0x20)
      snprintf(esc, sizeof esc, "\\u%04x", c), sb_addz(r, b, esc);
    else
      sb_add(r, b, (const char *)&c, 1);
  }
  sb_addz(r, b, "\"");
}

/* json.dumps(v, ensure_ascii=False, indent=indent) */
static void json(R *r, sb *b, jv v, int indent, int level, size_t off) {
  char buf[64];
  step(r, off);
  if (level > J_MAX_DEPTH) rfail(r, MQ_ERR_UNSUPPORTED, off, "tojson: nesting too deep");
  switch (v.k) {
  case V_NONE: sb_addz(r, b, "null"); return;
  case V_BOOL: sb_addz(r, b, v.u.i ? "true" : "false"); return;
  case V_INT: snprintf(buf, sizeof buf, "%lld", (long long)v.u.i), sb_addz(r, b, buf); return;
  case V_FLOAT:
    if (isnan(v.u.f))
      sb_addz(r, b, "NaN");
    else if (isinf(v.u.f))
      sb_addz(r, b, v.u.f > 0 ? "Infinity" : "-Infinity");
    else
      fmt_float(v.u.f, buf, sizeof buf), sb_addz(r, b, buf);
    return;
  case V_STR: json_str(r, b, v.u.s); return;
  case V_LIST:
  case V_DICT: {
    int is_list = v.k == V_LIST;
    size_t n = is_list ? v.u.l->n : v.u.d->n;
    sb_addz(r, b, is_list ? "[" : "{");
    if (n == 0) {
      sb_addz(r, b, is_list ? "]" : "}");
      return;
    }
    for (size_t i = 0; i < n; i++) {
      if (i) sb_addz(r, b, indent >= 0 ? "," : ", ");
      if (indent >= 0) {
        sb_addz(r, b, "\n");
        for (int k = 0; k < indent * (level + 1); k++) sb_addz(r, b, " ");
      }
      if (is_list) {
        json(r, b, v.u.l->v[i], indent, level + 1, off);
      } else {
        json_str(r, b, v.u.d->key[i]);
        sb_addz(r, b, ": ");
        json(r, b, v.u.d->val[i], indent, level + 1, off);
      }
    }
    if (indent >= 0) {
      sb_addz(r, b, "\n");
      for (int k = 0; k < indent * level; k++) sb_addz(r, b, " ");
    }
    sb_addz(r, b, is_list ? "]" : "}");
    return;
  }
  default: rfail(r, MQ_ERR_ARG, off, "tojson: a %s cannot be written as JSON", kind_name(v.k));
  }
}

/* ---- comparisons ---- */
static int is_num(jv v) { return v.k == V_INT || v.k == V_FLOAT || v.k == V_BOOL; }
static double num(jv v) { return v.k == V_FLOAT ? v.u.f : (double)v.u.i; }

static int equal(jv a, jv b) {
  if (is_num(a) && is_num(b)) {
    if (a.k != V_FLOAT && b.k != V_FLOAT) return a.u.i == b.u.i;
    return num(a) == num(b);
  }
  if (a.k != b.k) return 0;
  switch (a.k) {
  case V_UNDEF:
  case V_NONE: return 1;
  case V_STR: return jstr_eq(a.u.s, b.u.s);
  case V_LIST:
    if (a.u.l->n != b.u.l->n) return 0;
    for (size_t i = 0; i < a.u.l->n; i++)
      if (!equal(a.u.l->v[i], b.u.l->v[i])) return 0;
    return 1;
  case V_DICT:
    if (a.u.d == b.u.d) return 1;
    if (a.u.d->n != b.u.d->n || a.u.d->ns || b.u.d->ns) return 0;
    for (size_t i = 0; i < a.u.d->n; i++) {
      jv *o = dict_get(b.u.d, a.u.d->key[i]);
      if (!o || !equal(a.u.d->val[i], *o)) return 0;
    }
    return 1;
  default: return a.u.lp == b.u.lp;
  }
}

static int order(R *r, size_t off, jv a, jv b) {
  if (is_num(a) && is_num(b)) {
    if (a.k != V_FLOAT && b.k != V_FLOAT) return (a.u.i > b.u.i) - (a.u.i < b.u.i);
    double x = num(a), y = num(b);
    return (x > y) - (x < y);
  }
  if (a.k == V_STR && b.k == V_STR) {
    size_t n = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
    int c = n ? memcmp(a.u.s.p, b.u.s.p, n) : 0;
    if (c) return c < 0 ? -1 : 1;
    return (a.u.s.n > b.u.s.n) - (a.u.s.n < b.u.s.n);
  }
  rfail(r, MQ_ERR_ARG, off, "cannot compare a %s with a %s", kind_name(a.k), kind_name(b.k));
}

static const char *find_sub(jstr h, jstr s) {
  if (s.n == 0) return h.p;
  for (size_t i = 0; i + s.n <= h.n; i++)
    if (!memcmp(h.p + i, s.p, s.n)) return h.p + i;
  return NULL;
}

static int contains(R *r, size_t off, jv hay, jv x) {
  switch (hay.k) {
  case V_STR:
    if (x.k != V_STR) rfail(r, MQ_ERR_ARG, off, "'in <string>' needs a string on the left");
    return find_sub(hay.u.s, x.u.s) != NULL;
  case V_LIST:
    for (size_t i = 0; i < hay.u.l->n; i++)
      if (equal(hay.u.l->v[i], x)) return 1;
    return 0;
  case V_DICT: return x.k == V_STR && dict_get(hay.u.d, x.u.s) != NULL;
  case V_UNDEF: return 0;
  default:
    rfail(r, MQ_ERR_ARG, off, "'in' needs a string, list or dict, not a %s", kind_name(hay.k));
  }
}

/* ---- arithmetic ---- */
static jv arith(R *r, const jexpr *e, jv a, jv b) {
  int op = e->op;
  if (op == OP_CAT) {
    jstr x = to_str(r, a), y = to_str(r, b);
    sb s = {0};
    sb_add(r, &s, x.p, x.n);
    sb_add(r, &s, y.p, y.n);
    return sb_val(&s);
  }
  if (op == OP_ADD && a.k == V_STR && b.k == V_STR) {
    sb s = {0};
    sb_add(r, &s, a.u.s.p, a.u.s.n);
    sb_add(r, &s, b.u.s.p, b.u.s.n);
    return sb_val(&s);
  }
  if (op == OP_ADD && a.k == V_LIST && b.k == V_LIST) {
    jlist *l = newlist(r, a.u.l->n + b.u.l->n);
    memcpy(l->v, a.u.l->v, sizeof(jv) * a.u.l->n);
    memcpy(l->v + a.u.l->n, b.u.l->v, sizeof(jv) * b.u.l->n);
    return (jv){V_LIST, {.l = l}};
  }
  if (op == OP_MUL && ((a.k == V_STR && b.k == V_INT) || (a.k == V_INT && b.k == V_STR))) {
    jstr s = a.k == V_STR ? a.u.s : b.u.s;
    int64_t k = a.k == V_INT ? a.u.i : b.u.i;
    if (k < 0) k = 0;
    if (s.n && (uint64_t)k > J_MAX_OUT / s.n)
      rfail(r, MQ_ERR_UNSUPPORTED, e->off, "string too long");
    sb o = {0};
    for (int64_t i = 0; i < k; i++) sb_add(r, &o, s.p, s.n);
    return o.p ? sb_val(&o) : vstr(r, "", 0);
  }
  static const char *const opn[] = {"+", "-", "*", "/", "//", "%", "**"};
  if (!is_num(a) || !is_num(b))
    rfail(r, MQ_ERR_ARG, e->off, "unsupported operand types for %s: %s and %s", opn[op],
          kind_name(a.k), kind_name(b.k));
  if (a.k != V_FLOAT && b.k != V_FLOAT && op != OP_DIV) {
    int64_t x = a.u.i, y = b.u.i, z = 0;
    int ovf = 0;
    switch (op) {
    case OP_ADD: ovf = __builtin_add_overflow(x, y, &z); break;
    case OP_SUB: ovf = __builtin_sub_overflow(x, y, &z); break;
    case OP_MUL: ovf = __builtin_mul_overflow(x, y, &z); break;
    case OP_FDIV:
    case OP_MOD:
      if (y == 0) rfail(r, MQ_ERR_ARG, e->off, "division by zero");
      if (x == INT64_MIN && y == -1)
        ovf = 1;
      else {
        int64_t q = x / y, m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) q--, m += y; /* Python floors */
        z = op == OP_FDIV ? q : m;
      }
      break;
    case OP_POW:
      if (y < 0) return (jv){V_FLOAT, {.f = pow((double)x, (double)y)}};
      z = 1;
      for (int64_t i = 0; i < y && !ovf; i++) ovf = __builtin_mul_overflow(z, x, &z);
      break;
    }
    if (ovf) rfail(r, MQ_ERR_ARG, e->off, "integer overflow");
    return vint(z);
  }
  double x = num(a), y = num(b), z = 0;
  switch (op) {
  case OP_ADD: z = x + y; break;
  case OP_SUB: z = x - y; break;
  case OP_MUL: z = x * y; break;
  case OP_DIV:
  case OP_FDIV:
  case OP_MOD:
    if (y == 0) rfail(r, MQ_ERR_ARG, e->off, "division by zero");
    z = op == OP_DIV ? x / y : op == OP_FDIV ? floor(x / y) : x - floor(x / y) * y;
    break;
  case OP_POW: z = pow(x, y); break;
  }
  return (jv){V_FLOAT, {.f = z}};
}

/* ---- variables ---- */
static jv lookup(R *r, jstr name) {
  for (size_t i = r->nvars; i-- > 0;)
    if (jstr_eq(r->vars[i].name, name)) return r->vars[i].v;
  return UNDEF;
}

static void setvar(R *r, jstr name, jv v) {
  for (size_t i = r->frame; i < r->nvars; i++)
    if (jstr_eq(r->vars[i].name, name)) {
      r->vars[i].v = v;
      return;
    }
  if (r->nvars == r->capvars) {
    size_t cap = r->capvars ? r->capvars * 2 : 32;
    jvar *nv = ralloc(r, sizeof *nv * cap);
    if (r->nvars) memcpy(nv, r->vars, sizeof *nv * r->nvars);
    r->vars = nv;
    r->capvars = cap;
  }
  r->vars[r->nvars++] = (jvar){name, v};
}

static jv eval(R *r, const jexpr *e);

static jv arg_or(R *r, const jexpr *e, int i, const char *kw, jv def) {
  if (i >= 0 && i < e->n_args) return eval(r, e->args[i]);
  for (int k = 0; k < e->n_kw; k++)
    if (kw && jstr_is(e->kwn[k], kw)) return eval(r, e->kwv[k]);
  return def;
}

static jstr want_str(R *r, const jexpr *e, jv v, const char *what) {
  if (v.k != V_STR)
    rfail(r, MQ_ERR_ARG, e->off, "%s needs a string, not a %s", what, kind_name(v.k));
  return v.u.s;
}

static int64_t want_int(R *r, const jexpr *e, jv v, const char *what) {
  if (v.k == V_INT || v.k == V_BOOL) return v.u.i;
  rfail(r, MQ_ERR_ARG, e->off, "%s needs an integer, not a %s", what, kind_name(v.k));
}

/* Items of something iterable: list -> items, dict -> keys, string -> characters. */
static const jlist *iter_items(R *r, const jexpr *e, jv v) {
  if (v.k == V_LIST) return v.u.l;
  if (v.k == V_UNDEF || v.k == V_NONE) {
    if (v.k == V_NONE) rfail(r, MQ_ERR_ARG, e->off, "cannot iterate over none");
    return newlist(r, 0);
  }
  if (v.k == V_DICT && !v.u.d->ns) {
    jlist *l = newlist(r, v.u.d->n);
    for (size_t i = 0; i < v.u.d->n; i++) l->v[i] = (jv){V_STR, {.s = v.u.d->key[i]}};
    return l;
  }
  if (v.k == V_STR) {
    jlist *l = newlist(r, n_cps(v.u.s));
    size_t k = 0;
    for (size_t i = 0; i < v.u.s.n; k++) {
      size_t len;
      cp_at(v.u.s.p, v.u.s.n, i, &len);
      l->v[k] = (jv){V_STR, {.s = {v.u.s.p + i, len}}};
      i += len;
    }
    return l;
  }
  rfail(r, MQ_ERR_ARG, e->off, "cannot iterate over a %s", kind_name(v.k));
}

static jv attr_of(R *r, const jexpr *e, jv o, jstr name) {
  (void)r;
  (void)e;
  if (o.k == V_DICT) {
    jv *x = dict_get(o.u.d, name);
    return x ? *x : UNDEF;
  }
  if (o.k == V_LOOP) {
    const jloop *lp = o.u.lp;
    int64_t i = (int64_t)lp->i, n = (int64_t)lp->items->n;
    if (jstr_is(name, "index")) return vint(i + 1);
    if (jstr_is(name, "index0")) return vint(i);
    if (jstr_is(name, "revindex")) return vint(n - i);
    if (jstr_is(name, "revindex0")) return vint(n - i - 1);
    if (jstr_is(name, "first")) return vbool(i == 0);
    if (jstr_is(name, "last")) return vbool(i == n - 1);
    if (jstr_is(name, "length")) return vint(n);
    if (jstr_is(name, "previtem")) return i > 0 ? lp->items->v[i - 1] : UNDEF;
    if (jstr_is(name, "nextitem")) return i + 1 < n ? lp->items->v[i + 1] : UNDEF;
  }
  return UNDEF;
}

static jv index_of(R *r, const jexpr *e, jv o, jv k) {
  if (o.k == V_DICT) {
    if (k.k != V_STR) return UNDEF;
    jv *x = dict_get(o.u.d, k.u.s);
    return x ? *x : UNDEF;
  }
  if (o.k == V_LIST || o.k == V_STR) {
    if (k.k != V_INT && k.k != V_BOOL) {
      if (k.k == V_STR && o.k == V_LIST) return UNDEF;
      rfail(r, MQ_ERR_ARG, e->off, "a %s index must be an integer", kind_name(o.k));
    }
    const jlist *l = o.k == V_LIST ? o.u.l : iter_items(r, e, o);
    int64_t i = k.u.i, n = (int64_t)l->n;
    if (i < 0) i += n;
    return i >= 0 && i < n ? l->v[i] : UNDEF;
  }
  if (o.k == V_LOOP && k.k == V_STR) return attr_of(r, e, o, k.u.s);
  return UNDEF;
}

static jv slice_of(R *r, const jexpr *e, jv o) {
  if (o.k != V_LIST && o.k != V_STR)
    rfail(r, MQ_ERR_ARG, e->off, "cannot slice a %s", kind_name(o.k));
  const jlist *l = o.k == V_LIST ? o.u.l : iter_items(r, e, o);
  int64_t n = (int64_t)l->n;
  int64_t st = e->d ? want_int(r, e, eval(r, e->d), "a slice step") : 1;
  if (st == 0) rfail(r, MQ_ERR_ARG, e->off, "slice step cannot be zero");
  int64_t a, b;
  jv av = e->b ? eval(r, e->b) : (jv){V_NONE, {0}}, bv = e->c ? eval(r, e->c) : (jv){V_NONE, {0}};
  if (st > 0) {
    a = av.k == V_NONE ? 0 : want_int(r, e, av, "a slice bound");
    b = bv.k == V_NONE ? n : want_int(r, e, bv, "a slice bound");
    if (a < 0) a += n;
    if (b < 0) b += n;
    a = a < 0 ? 0 : a > n ? n : a;
    b = b < 0 ? 0 : b > n ? n : b;
  } else {
    a = av.k == V_NONE ? n - 1 : want_int(r, e, av, "a slice bound");
    b = bv.k == V_NONE ? -1 : want_int(r, e, bv, "a slice bound");
    if (av.k != V_NONE && a < 0) a += n;
    if (bv.k != V_NONE && b < 0) b += n;
    a = a < -1 ? -1 : a > n - 1 ? n - 1 : a;
    b = b < -1 ? -1 : b > n - 1 ? n - 1 : b;
  }
  size_t cnt = 0;
  for (int64_t i = a; st > 0 ? i < b : i > b; i += st) cnt++;
  jlist *out = newlist(r, cnt);
  size_t k = 0;
  for (int64_t i = a; st > 0 ? i < b : i > b; i += st) out->v[k++] = l->v[i];
  if (o.k == V_LIST) return (jv){V_LIST, {.l = out}};
  sb s = {0};
  for (size_t i = 0; i < cnt; i++) sb_add(r, &s, out->v[i].u.s.p, out->v[i].u.s.n);
  return s.p ? sb_val(&s) : vstr(r, "", 0);
}

static int run_test(R *r, const jexpr *e, jstr name, jv v, int n_args, const jv *args) {
  if (jstr_is(name, "defined")) return v.k != V_UNDEF;
  if (jstr_is(name, "undefined")) return v.k == V_UNDEF;
  if (jstr_is(name, "none")) return v.k == V_NONE;
  if (jstr_is(name, "string")) return v.k == V_STR;
  if (jstr_is(name, "number")) return v.k == V_INT || v.k == V_FLOAT;
  if (jstr_is(name, "integer")) return v.k == V_INT;
  if (jstr_is(name, "float")) return v.k == V_FLOAT;
  if (jstr_is(name, "boolean")) return v.k == V_BOOL;
  if (jstr_is(name, "true")) return v.k == V_BOOL && v.u.i;
  if (jstr_is(name, "false")) return v.k == V_BOOL && !v.u.i;
  if (jstr_is(name, "mapping")) return v.k == V_DICT;
  if (jstr_is(name, "iterable")) return v.k == V_LIST || v.k == V_DICT || v.k == V_STR;
  if (jstr_is(name, "sequence")) return v.k == V_LIST || v.k == V_DICT || v.k == V_STR;
  if (jstr_is(name, "lower") || jstr_is(name, "upper")) {
    if (v.k != V_STR) return 0;
    int up = jstr_is(name, "upper");
    for (size_t i = 0; i < v.u.s.n; i++)
      if (up ? (v.u.s.p[i] >= 'a' && v.u.s.p[i] <= 'z') : (v.u.s.p[i] >= 'A' && v.u.s.p[i] <= 'Z'))
        return 0;
    return 1;
  }
  if (jstr_is(name, "odd") || jstr_is(name, "even")) {
    int64_t x = want_int(r, e, v, "'odd'/'even'");
    return (x % 2 != 0) == jstr_is(name, "odd");
  }
  if (n_args < 1)
    rfail(r, MQ_ERR_ARG, e->off, "test '%.*s' needs an argument", (int)name.n, name.p);
  if (jstr_is(name, "divisibleby")) {
    int64_t d = want_int(r, e, args[0], "divisibleby");
    if (d == 0) rfail(r, MQ_ERR_ARG, e->off, "division by zero");
    return want_int(r, e, v, "divisibleby") % d == 0;
  }
  if (jstr_is(name, "ne")) return !equal(v, args[0]);
  return equal(v, args[0]); /* equalto, eq */
}

static jv eval_filter(R *r, const jexpr *e, jv v) {
  jstr f = e->name;
  if (jstr_is(f, "safe")) return v;
  if (jstr_is(f, "trim")) {
    jv chars = arg_or(r, e, 0, "chars", UNDEF);
    jstr c = chars.k == V_STR ? chars.u.s : (jstr){0};
    return (jv){V_STR, {.s = strip(to_str(r, v), chars.k == V_STR ? &c : NULL, 1, 1)}};
  }
  if (jstr_is(f, "length") || jstr_is(f, "count")) {
    if (v.k == V_STR) return vint((int64_t)n_cps(v.u.s));
    if (v.k == V_LIST) return vint((int64_t)v.u.l->n);
    if (v.k == V_DICT) return vint((int64_t)v.u.d->n);
    if (v.k == V_UNDEF) return vint(0);
    rfail(r, MQ_ERR_ARG, e->off, "a %s has no length", kind_name(v.k));
  }
  if (jstr_is(f, "upper")) return case_map(r, to_str(r, v), 1);
  if (jstr_is(f, "lower")) return case_map(r, to_str(r, v), 0);
  if (jstr_is(f, "capitalize")) return case_map(r, to_str(r, v), 2);
  if (jstr_is(f, "title")) return case_map(r, to_str(r, v), 3);
  if (jstr_is(f, "string")) return (jv){V_STR, {.s = to_str(r, v)}};
  if (jstr_is(f, "tojson")) {
    jv ind = arg_or(r, e, 0, "indent", (jv){V_NONE, {0}});
    int indent = ind.k == V_NONE ? -1 : (int)want_int(r, e, ind, "tojson indent");
    if (indent > 64) indent = 64;
    sb b = {0};
    json(r, &b, v, indent, 0, e->off);
    return sb_val(&b);
  }
  if (jstr_is(f, "int")) {
    if (v.k == V_INT) return v;
    if (v.k == V_BOOL) return vint(v.u.i);
    if (v.k == V_FLOAT)
      return isfinite(v.u.f) && fabs(v.u.f) < 9e18 ? vint((int64_t)v.u.f) : vint(0);
    if (v.k == V_STR) {
      char buf[32];
      jstr s = strip(v.u.s, NULL, 1, 1);
      if (s.n == 0 || s.n >= sizeof buf) return vint(0);
      memcpy(buf, s.p, s.n);
      buf[s.n] = 0;
      char *end;
      long long x = strtoll(buf, &end, 10);
      return vint(*end ? 0 : x);
    }
    return vint(0);
  }
  if (jstr_is(f, "float")) {
    if (is_num(v)) return (jv){V_FLOAT, {.f = num(v)}};
    if (v.k == V_STR && v.u.s.n < 64) {
      char buf[64];
      memcpy(buf, v.u.s.p, v.u.s.n);
      buf[v.u.s.n] = 0;
      char *end;
      double x = strtod(buf, &end);
      return (jv){V_FLOAT, {.f = *end ? 0.0 : x}};
    }
    return (jv){V_FLOAT, {.f = 0.0}};
  }
  if (jstr_is(f, "default") || jstr_is(f, "d")) {
    jv def = arg_or(r, e, 0, "default_value", vstr(r, "", 0));
    jv boolean = arg_or(r, e, 1, "boolean", vbool(0));
    return v.k == V_UNDEF || (truthy(boolean) && !truthy(v)) ? def : v;
  }
  if (jstr_is(f, "abs")) {
    if (v.k == V_FLOAT) return (jv){V_FLOAT, {.f = fabs(v.u.f)}};
    int64_t x = want_int(r, e, v, "abs");
    if (x == INT64_MIN) rfail(r, MQ_ERR_ARG, e->off, "integer overflow");
    return vint(x < 0 ? -x : x);
  }
  if (jstr_is(f, "items")) {
    if (v.k != V_DICT) rfail(r, MQ_ERR_ARG, e->off, "items needs a dict");
    jlist *l = newlist(r, v.u.d->n);
    for (size_t i = 0; i < v.u.d->n; i++) {
      jlist *pair = newlist(r, 2);
      pair->v[0] = (jv){V_STR, {.s = v.u.d->key[i]}};
      pair->v[1] = v.u.d->val[i];
      l->v[i] = (jv){V_LIST, {.l = pair}};
    }
    return (jv){V_LIST, {.l = l}};
  }
  const jlist *l = iter_items(r, e, v);
  if (jstr_is(f, "first")) return l->n ? l->v[0] : UNDEF;
  if (jstr_is(f, "last")) return l->n ? l->v[l->n - 1] : UNDEF;
  if (jstr_is(f, "list")) return (jv){V_LIST, {.l = (jlist *)l}};
  if (jstr_is(f, "reverse")) {
    jlist *o = newlist(r, l->n);
    for (size_t i = 0; i < l->n; i++) o->v[i] = l->v[l->n - 1 - i];
    if (v.k != V_STR) return (jv){V_LIST, {.l = o}};
    sb s = {0};
    for (size_t i = 0; i < o->n; i++) sb_add(r, &s, o->v[i].u.s.p, o->v[i].u.s.n);
    return s.p ? sb_val(&s) : vstr(r, "", 0);
  }
  if (jstr_is(f, "join")) {
    jv sep = arg_or(r, e, 0, "d", vstr(r, "", 0));
    jv at = arg_or(r, e, 1, "attribute", UNDEF);
    jstr sp = to_str(r, sep);
    sb s = {0};
    for (size_t i = 0; i < l->n; i++) {
      if (i) sb_add(r, &s, sp.p, sp.n);
      jv x = at.k == V_STR ? attr_of(r, e, l->v[i], at.u.s) : l->v[i];
      jstr xs = to_str(r, x);
      sb_add(r, &s, xs.p, xs.n);
    }
    return s.p ? sb_val(&s) : vstr(r, "", 0);
  }
  if (jstr_is(f, "replace")) {
    jstr s = to_str(r, v), a = want_str(r, e, arg_or(r, e, 0, "old", UNDEF), "replace"),
         b = want_str(r, e, arg_or(r, e, 1, "new", UNDEF), "replace");
    jv cnt = arg_or(r, e, 2, "count", (jv){V_NONE, {0}});
    int64_t left = cnt.k == V_NONE ? INT64_MAX : want_int(r, e, cnt, "replace count");
    sb o = {0};
    size_t i = 0;
    while (i <= s.n) {
      const char *hit = left > 0 ? find_sub((jstr){s.p + i, s.n - i}, a) : NULL;
      if (!hit || a.n == 0) {
        if (a.n == 0 && hit && left > 0) { /* Python: insert between characters */
          sb_add(r, &o, b.p, b.n);
          left--;
          if (i == s.n) break;
          size_t len;
          cp_at(s.p, s.n, i, &len);
          sb_add(r, &o, s.p + i, len);
          i += len;
          continue;
        }
        sb_add(r, &o, s.p + i, s.n - i);
        break;
      }
      sb_add(r, &o, s.p + i, (size_t)(hit - (s.p + i)));
      sb_add(r, &o, b.p, b.n);
      i = (size_t)(hit - s.p) + a.n;
      left--;
    }
    return o.p ? sb_val(&o) : vstr(r, "", 0);
  }
  if (jstr_is(f, "map")) {
    jv at = arg_or(r, e, -1, "attribute", UNDEF);
    if (at.k != V_STR)
      rfail(r, MQ_ERR_UNSUPPORTED, e->off, "map is supported with attribute= only");
    jlist *o = newlist(r, l->n);
    for (size_t i = 0; i < l->n; i++) o->v[i] = attr_of(r, e, l->v[i], at.u.s);
    return (jv){V_LIST, {.l = o}};
  }
  if (jstr_is(f, "select") || jstr_is(f, "reject")) { /* ([test [, arg]]) */
    int keep_if = jstr_is(f, "select");
    jv tname = arg_or(r, e, 0, NULL, UNDEF), targ = arg_or(r, e, 1, NULL, UNDEF);
    if (tname.k != V_STR && tname.k != V_UNDEF)
      rfail(r, MQ_ERR_ARG, e->off, "%.*s needs a test name", (int)f.n, f.p);
    if (tname.k == V_STR && !in_list(tname.u.s, mq_jinja_tests))
      rfail(r, MQ_ERR_UNSUPPORTED, e->off, "test '%.*s' is not supported", (int)tname.u.s.n,
            tname.u.s.p);
    jlist *o = newlist(r, l->n);
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++) {
      int t = tname.k == V_STR
                  ? run_test(r, e, tname.u.s, l->v[i], targ.k == V_UNDEF ? 0 : 1, &targ)
                  : truthy(l->v[i]);
      if (t == keep_if) o->v[k++] = l->v[i];
    }
    o->n = k;
    return (jv){V_LIST, {.l = o}};
  }
  /* selectattr / rejectattr (attribute [, test [, arg]]) */
  int keep_if = jstr_is(f, "selectattr");
  jstr at = want_str(r, e, arg_or(r, e, 0, NULL, UNDEF), "selectattr");
  jv tname = arg_or(r, e, 1, NULL, UNDEF);
  jv targ = arg_or(r, e, 2, NULL, UNDEF);
  if (tname.k == V_STR && !in_list(tname.u.s, mq_jinja_tests))
    rfail(r, MQ_ERR_UNSUPPORTED, e->off, "test '%.*s' is not supported", (int)tname.u.s.n,
          tname.u.s.p);
  jlist *o = newlist(r, l->n);
  size_t k = 0;
  for (size_t i = 0; i < l->n; i++) {
    jv x = attr_of(r, e, l->v[i], at);
    int t = tname.k == V_STR ? run_test(r, e, tname.u.s, x, targ.k == V_UNDEF ? 0 : 1, &targ)
                             : truthy(x);
    if (t == keep_if) o->v[k++] = l->v[i];
  }
  o->n = k;
  return (jv){V_LIST, {.l = o}};
}

static jv eval_method(R *r, const jexpr *e) {
  jv o = eval(r, e->a);
  jstr m = e->name;
  if (o.k == V_DICT && !o.u.d->ns) {
    const jdict *d = o.u.d;
    if (jstr_is(m, "get")) {
      jv k = arg_or(r, e, 0, NULL, UNDEF), def = arg_or(r, e, 1, NULL, (jv){V_NONE, {0}});
      jv *x = k.k == V_STR ? dict_get(d, k.u.s) : NULL;
      return x ? *x : def;
    }
    if (jstr_is(m, "items") || jstr_is(m, "keys") || jstr_is(m, "values")) {
      jlist *l = newlist(r, d->n);
      for (size_t i = 0; i < d->n; i++) {
        jv key = (jv){V_STR, {.s = d->key[i]}};
        if (jstr_is(m, "keys"))
          l->v[i] = key;
        else if (jstr_is(m, "values"))
          l->v[i] = d->val[i];
        else {
          jlist *pair = newlist(r, 2);
          pair->v[0] = key;
          pair->v[1] = d->val[i];
          l->v[i] = (jv){V_LIST, {.l = pair}};
        }
      }
      return (jv){V_LIST, {.l = l}};
    }
  }
  if (o.k != V_STR)
    rfail(r, MQ_ERR_ARG, e->off, "a %s has no method '%.*s'", kind_name(o.k), (int)m.n, m.p);
  jstr s = o.u.s;
  if (jstr_is(m, "strip") || jstr_is(m, "lstrip") || jstr_is(m, "rstrip")) {
    jv chars = arg_or(r, e, 0, NULL, (jv){V_NONE, {0}});
    jstr c = chars.k == V_STR ? chars.u.s : (jstr){0};
    return (jv){V_STR, {.s = strip(s, chars.k == V_STR ? &c : NULL, m.p[0] != 'r', m.p[0] != 'l')}};
  }
  if (jstr_is(m, "startswith") || jstr_is(m, "endswith")) {
    jv x = arg_or(r, e, 0, NULL, UNDEF);
    int ends = m.p[0] == 'e';
    size_t cnt = x.k == V_LIST ? x.u.l->n : 1;
    for (size_t i = 0; i < cnt; i++) {
      jstr t = want_str(r, e, x.k == V_LIST ? x.u.l->v[i] : x, ".startswith/.endswith");
      if (t.n <= s.n && !memcmp(ends ? s.p + s.n - t.n : s.p, t.p, t.n)) return vbool(1);
    }
    return vbool(0);
  }
  if (jstr_is(m, "upper")) return case_map(r, s, 1);
  if (jstr_is(m, "lower")) return case_map(r, s, 0);
  if (jstr_is(m, "capitalize")) return case_map(r, s, 2);
  if (jstr_is(m, "title")) return case_map(r, s, 3);
  if (jstr_is(m, "find")) {
    jstr t = want_str(r, e, arg_or(r, e, 0, NULL, UNDEF), ".find");
    const char *h = find_sub(s, t);
    return vint(h ? (int64_t)n_cps((jstr){s.p, (size_t)(h - s.p)}) : -1);
  }
  if (jstr_is(m, "replace")) {
    jexpr fe = *e;
    fe.name = (jstr){"replace", 7};
    return eval_filter(r, &fe, o);
  }
  if (jstr_is(m, "join")) {
    const jlist *l = iter_items(r, e, arg_or(r, e, 0, NULL, UNDEF));
    sb b = {0};
    for (size_t i = 0; i < l->n; i++) {
      if (i) sb_add(r, &b, s.p, s.n);
      jstr x = to_str(r, l->v[i]);
      sb_add(r, &b, x.p, x.n);
    }
    return b.p ? sb_val(&b) : vstr(r, "", 0);
  }
  if (jstr_is(m, "split")) {
    jv sep = arg_or(r, e, 0, "sep", (jv){V_NONE, {0}});
    jv mx = arg_or(r, e, 1, "maxsplit", vint(-1));
    int64_t left = want_int(r, e, mx, ".split maxsplit");
    size_t cap = 8, n = 0;
    jv *items = ralloc(r, sizeof(jv) * cap);
#define PUSH(pp, nn)                                                                               \
  do {                                                                                             \
    if (n == cap) {                                                                                \
      jv *ni = ralloc(r, sizeof(jv) * cap * 2);                                                    \
      memcpy(ni, items, sizeof(jv) * n);                                                           \
      items = ni;                                                                                  \
      cap *= 2;                                                                                    \
    }                                                                                              \
    items[n++] = (jv){V_STR, {.s = {(pp), (nn)}}};                                                 \
  } while (0)
    if (sep.k == V_NONE) {
      size_t i = 0;
      for (;;) {
        while (i < s.n) {
          size_t l;
          if (!py_space(cp_at(s.p, s.n, i, &l))) break;
          i += l;
        }
        if (i >= s.n) break;
        if (left == 0) {
          PUSH(s.p + i, s.n - i); /* Python keeps the rest as it is */
          break;
        }
        size_t st = i;
        while (i < s.n) {
          size_t l;
          if (py_space(cp_at(s.p, s.n, i, &l))) break;
          i += l;
        }
        PUSH(s.p + st, i - st);
        left--;
      }
    } else {
      jstr t = want_str(r, e, sep, ".split");
      if (t.n == 0) rfail(r, MQ_ERR_ARG, e->off, ".split: empty separator");
      size_t i = 0;
      for (;;) {
        const char *h = left != 0 ? find_sub((jstr){s.p + i, s.n - i}, t) : NULL;
        if (!h) {
          PUSH(s.p + i, s.n - i);
          break;
        }
        PUSH(s.p + i, (size_t)(h - (s.p + i)));
        i = (size_t)(h - s.p) + t.n;
        left--;
      }
    }
#undef PUSH
    jlist *l = ralloc(r, sizeof *l);
    l->v = items;
    l->n = n;
    return (jv){V_LIST, {.l = l}};
  }
  rfail(r, MQ_ERR_ARG, e->off, "a string has no method '%.*s'", (int)m.n, m.p);
}

static jv eval_call(R *r, const jexpr *e) {
  jstr f = e->name;
  if (jstr_is(f, "raise_exception")) {
    jstr msg = to_str(r, arg_or(r, e, 0, NULL, vstr(r, "", 0)));
    mq_errf(r->err, MQ_ERR_ARG, "chat template raised an exception: %.*s",
            (int)(msg.n > 900 ? 900 : msg.n), msg.p);
    longjmp(r->jb, 1);
  }
  if (jstr_is(f, "namespace") || jstr_is(f, "dict")) {
    jdict *d = newdict(r, (size_t)e->n_kw + 4);
    d->ns = jstr_is(f, "namespace");
    if (e->n_args)
      rfail(r, MQ_ERR_UNSUPPORTED, e->off, "%.*s() takes keyword arguments only", (int)f.n, f.p);
    for (int k = 0; k < e->n_kw; k++) dict_set(r, d, e->kwn[k], eval(r, e->kwv[k]));
    return (jv){V_DICT, {.d = d}};
  }
  if (jstr_is(f, "range")) {
    int64_t a = 0, b, st = 1;
    if (e->n_args == 1)
      b = want_int(r, e, eval(r, e->args[0]), "range");
    else if (e->n_args >= 2) {
      a = want_int(r, e, eval(r, e->args[0]), "range");
      b = want_int(r, e, eval(r, e->args[1]), "range");
      if (e->n_args >= 3) st = want_int(r, e, eval(r, e->args[2]), "range");
    } else
      rfail(r, MQ_ERR_ARG, e->off, "range() needs arguments");
    if (st == 0) rfail(r, MQ_ERR_ARG, e->off, "range() step cannot be zero");
    double cnt = st > 0 ? ceil(((double)b - (double)a) / (double)st)
                        : ceil(((double)a - (double)b) / (double)-st);
    if (cnt < 0) cnt = 0;
    if (cnt > 10000000) rfail(r, MQ_ERR_UNSUPPORTED, e->off, "range() too long");
    jlist *l = newlist(r, (size_t)cnt);
    for (size_t i = 0; i < l->n; i++) l->v[i] = vint(a + (int64_t)i * st);
    return (jv){V_LIST, {.l = l}};
  }
  /* strftime_now(format) */
  jstr fmt = want_str(r, e, arg_or(r, e, 0, NULL, UNDEF), "strftime_now");
  char fbuf[128], out[256];
  if (fmt.n >= sizeof fbuf) rfail(r, MQ_ERR_ARG, e->off, "strftime_now: format too long");
  memcpy(fbuf, fmt.p, fmt.n);
  fbuf[fmt.n] = 0;
  time_t now = time(NULL);
  struct tm tm;
  localtime_r(&now, &tm);
  size_t n = strftime(out, sizeof out, fbuf, &tm);
  return vstr(r, out, n);
}

static jv eval(R *r, const jexpr *e) {
  step(r, e->off);
  switch (e->kind) {
  case E_LIT: return e->lit;
  case E_NAME: return lookup(r, e->name);
  case E_ATTR: return attr_of(r, e, eval(r, e->a), e->name);
  case E_INDEX: {
    jv o = eval(r, e->a);
    return index_of(r, e, o, eval(r, e->b));
  }
  case E_SLICE: return slice_of(r, e, eval(r, e->a));
  case E_CALL: return eval_call(r, e);
  case E_METHOD: return eval_method(r, e);
  case E_FILTER: return eval_filter(r, e, eval(r, e->a));
  case E_TEST: {
    jv v = eval(r, e->a);
    jv args[4];
    int n = e->n_args > 4 ? 4 : e->n_args;
    for (int i = 0; i < n; i++) args[i] = eval(r, e->args[i]);
    return vbool(run_test(r, e, e->name, v, n, args) != e->op);
  }
  case E_NOT: return vbool(!truthy(eval(r, e->a)));
  case E_NEG: {
    jv v = eval(r, e->a);
    if (v.k == V_FLOAT) return (jv){V_FLOAT, {.f = -v.u.f}};
    int64_t x = want_int(r, e, v, "unary minus");
    if (x == INT64_MIN) rfail(r, MQ_ERR_ARG, e->off, "integer overflow");
    return vint(-x);
  }
  case E_AND: {
    jv a = eval(r, e->a);
    return truthy(a) ? eval(r, e->b) : a;
  }
  case E_OR: {
    jv a = eval(r, e->a);
    return truthy(a) ? a : eval(r, e->b);
  }
  case E_COND:
    if (truthy(eval(r, e->b))) return eval(r, e->a);
    return e->c ? eval(r, e->c) : UNDEF;
  case E_LIST: {
    jlist *l = newlist(r, (size_t)e->n_args);
    for (int i = 0; i < e->n_args; i++) l->v[i] = eval(r, e->args[i]);
    return (jv){V_LIST, {.l = l}};
  }
  case E_DICT: {
    jdict *d = newdict(r, (size_t)e->n_args / 2 + 1);
    for (int i = 0; i + 1 < e->n_args; i += 2) {
      jv k = eval(r, e->args[i]);
      if (k.k != V_STR) rfail(r, MQ_ERR_UNSUPPORTED, e->args[i]->off, "dict keys must be strings");
      dict_set(r, d, k.u.s, eval(r, e->args[i + 1]));
    }
    return (jv){V_DICT, {.d = d}};
  }
  case E_BIN: {
    jv a = eval(r, e->a), b = eval(r, e->b);
    switch (e->op) {
    case OP_EQ: return vbool(equal(a, b));
    case OP_NE: return vbool(!equal(a, b));
    case OP_LT: return vbool(order(r, e->off, a, b) < 0);
    case OP_LE: return vbool(order(r, e->off, a, b) <= 0);
    case OP_GT: return vbool(order(r, e->off, a, b) > 0);
    case OP_GE: return vbool(order(r, e->off, a, b) >= 0);
    case OP_IN: return vbool(contains(r, e->off, b, a));
    case OP_NOTIN: return vbool(!contains(r, e->off, b, a));
    default: return arith(r, e, a, b);
    }
  }
  }
  return UNDEF;
}

/* ---- statements ---- */
static void emit(R *r, const char *s, size_t n) {
  if (r->out->n + n > J_MAX_OUT)
    rfail(r, MQ_ERR_UNSUPPORTED, 0, "the rendered text exceeds %zu MiB", J_MAX_OUT >> 20);
  if (mq_bbuf_add(r->out, s, n) != 0) {
    mq_errf(r->err, MQ_ERR_NOMEM, "chat template: out of memory");
    longjmp(r->jb, 1);
  }
}

static void exec(R *r, const jnode *n);

static void exec_for(R *r, const jnode *n) {
  const jlist *all = iter_items(r, n->e, eval(r, n->e));
  const jlist *items = all;
  if (n->cond) { /* `for x in xs if cond`: filter first (loop.length counts the kept) */
    jlist *kept = newlist(r, all->n);
    size_t k = 0;
    for (size_t i = 0; i < all->n; i++) {
      size_t mark = r->nvars, fr = r->frame;
      r->frame = r->nvars;
      if (n->n_names == 1)
        setvar(r, n->names[0], all->v[i]);
      else if (all->v[i].k == V_LIST)
        for (int t = 0; t < n->n_names && (size_t)t < all->v[i].u.l->n; t++)
          setvar(r, n->names[t], all->v[i].u.l->v[t]);
      int ok = truthy(eval(r, n->cond));
      r->nvars = mark;
      r->frame = fr;
      if (ok) kept->v[k++] = all->v[i];
    }
    kept->n = k;
    items = kept;
  }
  if (items->n == 0) {
    exec(r, n->else_body);
    return;
  }
  jloop *lp = ralloc(r, sizeof *lp);
  lp->items = items;
  jv loopv = (jv){V_LOOP, {.lp = lp}};
  static const jstr loop_name = {"loop", 4};
  for (size_t i = 0; i < items->n; i++) {
    step(r, n->off);
    lp->i = i;
    size_t mark = r->nvars, fr = r->frame;
    r->frame = r->nvars;
    setvar(r, loop_name, loopv);
    jv it = items->v[i];
    if (n->n_names == 1) {
      setvar(r, n->names[0], it);
    } else {
      if (it.k != V_LIST || it.u.l->n != (size_t)n->n_names)
        rfail(r, MQ_ERR_ARG, n->off, "cannot unpack a %s into %d loop variables", kind_name(it.k),
              n->n_names);
      for (int t = 0; t < n->n_names; t++) setvar(r, n->names[t], it.u.l->v[t]);
    }
    exec(r, n->body);
    r->nvars = mark;
    r->frame = fr;
    int ctl = r->ctl;
    r->ctl = 0;
    if (ctl == 1) break;
  }
}

static void exec(R *r, const jnode *n) {
  if (++r->depth > J_MAX_DEPTH) rfail(r, MQ_ERR_UNSUPPORTED, n ? n->off : 0, "nesting too deep");
  for (; n && !r->ctl; n = n->next) {
    step(r, n->off);
    switch (n->kind) {
    case N_TEXT: emit(r, n->text.p, n->text.n); break;
    case N_OUT: {
      jv v = eval(r, n->e);
      jstr s = to_str(r, v);
      emit(r, s.p, s.n);
      break;
    }
    case N_IF: {
      int done = 0;
      for (int b = 0; b < n->n_br && !done; b++)
        if (truthy(eval(r, n->conds[b]))) {
          exec(r, n->bodies[b]);
          done = 1;
        }
      if (!done) exec(r, n->else_body);
      break;
    }
    case N_FOR: exec_for(r, n); break;
    case N_SET: {
      jv v = eval(r, n->e);
      if (n->attr.n) {
        jv o = lookup(r, n->names[0]);
        if (o.k != V_DICT || !o.u.d->ns)
          rfail(r, MQ_ERR_ARG, n->off, "'%.*s' is not a namespace: cannot set .%.*s",
                (int)n->names[0].n, n->names[0].p, (int)n->attr.n, n->attr.p);
        dict_set(r, o.u.d, n->attr, v);
      } else {
        setvar(r, n->names[0], v);
      }
      break;
    }
    case N_SETBLOCK: {
      if (r->n_cap == J_MAX_CAPTURE)
        rfail(r, MQ_ERR_UNSUPPORTED, n->off, "set blocks nested too deep");
      mq_bbuf *saved = r->out, *cap = &r->cap[r->n_cap++];
      cap->n = 0;
      r->out = cap;
      exec(r, n->body);
      r->out = saved;
      r->n_cap--;
      setvar(r, n->names[0], vstr(r, cap->p ? cap->p : "", cap->n));
      break;
    }
    case N_BREAK: r->ctl = 1; break;
    case N_CONTINUE: r->ctl = 2; break;
    }
  }
  r->depth--;
}

/* The globals, then the template (runs under r's setjmp). */
static void render(R *r, const mq_jinja_vars *v) {
  jlist *msgs = newlist(r, (size_t)v->n_msgs);
  for (int i = 0; i < v->n_msgs; i++) {
    jdict *d = newdict(r, 4);
    const char *role = v->msgs[i].role, *content = v->msgs[i].content;
    dict_set(r, d, (jstr){"role", 4}, role ? vstr(r, role, strlen(role)) : (jv){V_NONE, {0}});
    dict_set(r, d, (jstr){"content", 7},
             content ? vstr(r, content, strlen(content)) : (jv){V_NONE, {0}});
    msgs->v[i] = (jv){V_DICT, {.d = d}};
  }
  const char *bos = v->bos_token ? v->bos_token : "", *eos = v->eos_token ? v->eos_token : "";
  setvar(r, (jstr){"messages", 8}, (jv){V_LIST, {.l = msgs}});
  setvar(r, (jstr){"add_generation_prompt", 21}, vbool(v->add_generation_prompt));
  setvar(r, (jstr){"bos_token", 9}, vstr(r, bos, strlen(bos)));
  setvar(r, (jstr){"eos_token", 9}, vstr(r, eos, strlen(eos)));
  setvar(r, (jstr){"tools", 5}, (jv){V_NONE, {0}});
  setvar(r, (jstr){"documents", 9}, (jv){V_NONE, {0}});
  r->frame = r->nvars; /* template-level sets go above the globals */
  exec(r, r->j->root);
}

int mq_jinja_render(const mq_jinja *j, const mq_jinja_vars *v, mq_bbuf *out, mq_err *err) {
  if (!j || !v || !out || v->n_msgs < 0 || (v->n_msgs && !v->msgs))
    return mq_errf(err, MQ_ERR_ARG, "chat template: bad arguments");
  R *r = calloc(1, sizeof *r);
  if (!r) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  r->err = err;
  r->j = j;
  r->ar.limit = J_MAX_ARENA;
  r->out = out;
  size_t start = out->n;
  int rc = MQ_OK;
  if (setjmp(r->jb) == 0) {
    render(r, v);
  } else {
    rc = err && err->code != MQ_OK ? err->code : MQ_ERR_FORMAT;
    out->n = start;
  }
  for (int i = 0; i < J_MAX_CAPTURE; i++) mq_bbuf_free(&r->cap[i]);
  arena_free(&r->ar);
  free(r);
  return rc;
}
