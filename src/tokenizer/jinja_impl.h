/* Inside the chat-template interpreter: values, the syntax tree and the
 * arenas, shared by the parser (jinja_parse.c) and the renderer (jinja.c). */
#ifndef MQ_TOKENIZER_JINJA_IMPL_H
#define MQ_TOKENIZER_JINJA_IMPL_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "tokenizer/jinja.h"

#define J_MAX_DEPTH 200                 /* nesting of expressions / statements */
#define J_MAX_STEPS 20000000L           /* evaluation steps per render */
#define J_MAX_OUT ((size_t)64 << 20)    /* rendered bytes */
#define J_MAX_ARENA ((size_t)256 << 20) /* bytes of values per render */
#define J_MAX_CAPTURE 16                /* nested {% set x %} blocks */

/* ---- arena ---- */
typedef struct achunk {
  struct achunk *next;
  size_t used, cap;
  _Alignas(16) unsigned char data[];
} achunk;

typedef struct arena {
  achunk *head;
  size_t total, limit;
} arena;

static inline void *arena_try(arena *a, size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (!a->head || a->head->cap - a->head->used < n) {
    size_t cap = n > 65536 ? n : 65536;
    if (a->total + cap > a->limit) return NULL;
    achunk *c = malloc(sizeof *c + cap);
    if (!c) return NULL;
    c->next = a->head;
    c->used = 0;
    c->cap = cap;
    a->head = c;
    a->total += cap;
  }
  void *p = a->head->data + a->head->used;
  a->head->used += n;
  return p;
}

static inline void arena_free(arena *a) {
  for (achunk *c = a->head, *nx; c; c = nx) {
    nx = c->next;
    free(c);
  }
  a->head = NULL;
  a->total = 0;
}

/* ---- values ---- */
typedef struct jstr {
  const char *p;
  size_t n;
} jstr;

enum { V_UNDEF, V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_LIST, V_DICT, V_LOOP };

struct jlist;
struct jdict;
struct jloop;
typedef struct jv {
  int k;
  union {
    int64_t i;
    double f;
    jstr s;
    struct jlist *l;
    struct jdict *d;
    struct jloop *lp;
  } u;
} jv;

typedef struct jlist {
  jv *v;
  size_t n;
} jlist;

typedef struct jdict {
  jstr *key;
  jv *val;
  size_t n, cap;
  int ns; /* a namespace(): attributes may be set */
} jdict;

typedef struct jloop {
  const jlist *items;
  size_t i;
} jloop;

static const jv UNDEF = {V_UNDEF, {0}};

/* ---- AST ---- */
enum { T_EOF, T_TEXT, T_VBEG, T_VEND, T_BBEG, T_BEND, T_NAME, T_STR, T_INT, T_FLOAT, T_OP };

typedef struct jtok {
  int t;
  jstr s; /* name, op text, decoded string literal, or text */
  int64_t i;
  double f;
  size_t off;
} jtok;

enum {
  E_LIT,
  E_NAME,
  E_ATTR,
  E_INDEX,
  E_SLICE,
  E_CALL,
  E_METHOD,
  E_FILTER,
  E_TEST,
  E_NOT,
  E_NEG,
  E_BIN,
  E_AND,
  E_OR,
  E_COND,
  E_LIST,
  E_DICT
};
enum {
  OP_ADD,
  OP_SUB,
  OP_MUL,
  OP_DIV,
  OP_FDIV,
  OP_MOD,
  OP_POW,
  OP_CAT,
  OP_EQ,
  OP_NE,
  OP_LT,
  OP_LE,
  OP_GT,
  OP_GE,
  OP_IN,
  OP_NOTIN
};

typedef struct jexpr {
  int kind, op; /* op: E_BIN operator; E_TEST: negated */
  size_t off;
  jv lit;
  jstr name;
  struct jexpr *a, *b, *c, *d;
  struct jexpr **args;
  int n_args;
  jstr *kwn;
  struct jexpr **kwv;
  int n_kw;
} jexpr;

enum { N_TEXT, N_OUT, N_IF, N_FOR, N_SET, N_SETBLOCK, N_BREAK, N_CONTINUE };

typedef struct jnode {
  int kind;
  size_t off;
  struct jnode *next;
  jstr text;
  jexpr *e;
  jexpr **conds; /* N_IF: n_br conditions and bodies */
  struct jnode **bodies;
  int n_br;
  struct jnode *body, *else_body;
  jstr *names; /* N_FOR targets; N_SET target */
  int n_names;
  jexpr *cond; /* N_FOR: `if` filter */
  jstr attr;   /* N_SET: ns.attr */
} jnode;

struct mq_jinja {
  arena ar;
  char *src;
  size_t n;
  jnode *root;
};

/* ---- errors ---- */
static inline void line_col(const char *src, size_t off, int *line, int *col) {
  *line = 1;
  *col = 1;
  for (size_t i = 0; i < off; i++) {
    if (src[i] == '\n') {
      ++*line;
      *col = 1;
    } else if (((unsigned char)src[i] & 0xC0) != 0x80) {
      ++*col;
    }
  }
}

/* err = "chat template line L, column C: <fmt ...>" for byte off of src. */
static inline void jinja_verr(mq_err *err, const char *src, size_t off, int code, const char *fmt,
                              va_list ap) {
  char msg[768];
  vsnprintf(msg, sizeof msg, fmt, ap);
  int line, col;
  line_col(src, off, &line, &col);
  mq_errf(err, code, "chat template line %d, column %d: %s", line, col, msg);
}

static inline int jstr_is(jstr s, const char *z) {
  return s.n == strlen(z) && !memcmp(s.p, z, s.n);
}

static inline int in_list(jstr s, const char *const *list) {
  for (; *list; list++)
    if (jstr_is(s, *list)) return 1;
  return 0;
}

/* Names of the tests `is NAME` knows (NULL-terminated; jinja_parse.c). */
extern const char *const mq_jinja_tests[];

#endif
