/* BPE on one word. Symbols start as the word's characters; the best adjacent
 * pair is merged until none can be: "best" is the lowest merge rank (Hugging
 * Face BPE, GGUF gpt2) or the highest score of the merged token (SentencePiece
 * BPE, GGUF llama), ties going to the leftmost pair. A binary heap holds the
 * candidate pairs; stale ones are skipped when popped, so a word of n
 * characters costs O(n log n). */
#include <string.h>

#include "tokenizer/tok_impl.h"
#include "tokenizer/utf8.h"

typedef struct sym {
  uint32_t start, len; /* bytes of the word */
  int32_t id;          /* token id, -1 when the text is no token */
  int32_t prev, next;
} sym;

typedef struct cand {
  double prio; /* lower is better */
  int32_t left, right;
  uint32_t size; /* left.len + right.len when pushed: detects stale entries */
  int32_t id;    /* the merged token */
} cand;

static int better(const cand *a, const cand *b) {
  return a->prio < b->prio || (a->prio == b->prio && a->left < b->left);
}

static void heap_push(cand *h, size_t *n, cand c) {
  size_t i = (*n)++;
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!better(&c, &h[p])) break;
    h[i] = h[p];
    i = p;
  }
  h[i] = c;
}

static cand heap_pop(cand *h, size_t *n) {
  cand top = h[0], last = h[--*n];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    const cand *best = &last;
    if (l < *n && better(&h[l], best)) m = l, best = &h[l];
    if (r < *n && better(&h[r], best)) m = r;
    if (m == i) break;
    h[i] = h[m];
    i = m;
  }
  if (*n) h[i] = last;
  return top;
}

/* The candidate merge of symbols l and r, if any. */
static int pair(const mq_tokenizer *t, const char *w, const sym *s, int32_t l, int32_t r, cand *c) {
  if (t->mode == MQ_BPE_MERGES) {
    if (s[l].id < 0 || s[r].id < 0) return 0;
    uint32_t key[2] = {(uint32_t)s[l].id, (uint32_t)s[r].id};
    int64_t v = mq_strmap_get(&t->merges, (const char *)key, 8);
    if (v < 0) return 0;
    c->prio = (double)(v >> 32);
    c->id = (int32_t)(v & 0xFFFFFFFF);
  } else {
    int64_t id = mq_strmap_get(&t->vocab, w + s[l].start, s[l].len + s[r].len);
    if (id < 0) return 0;
    c->prio = -(double)t->score[id];
    c->id = (int32_t)id;
  }
  c->left = l;
  c->right = r;
  c->size = s[l].len + s[r].len;
  return 1;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return 0;
  size_t n = *cap ? *cap : 64;
  while (n < need) n *= 2;
  void *q = realloc(*p, n * elem);
  if (!q) return -1;
  *p = q;
  *cap = n;
  return 0;
}

void mq_bpe_scratch_free(mq_bpe_scratch *s) {
  free(s->sym);
  free(s->heap);
  memset(s, 0, sizeof *s);
}

/* ids for a symbol that is no token: its bytes' <0xNN> tokens, else unk */
static int emit_unknown(const mq_tokenizer *t, const char *w, const sym *y, int *prev_unk,
                        mq_ibuf *out) {
  if (t->byte_fallback) {
    int all = 1;
    for (uint32_t k = 0; k < y->len; k++)
      if (t->byte_id[(unsigned char)w[y->start + k]] < 0) all = 0;
    if (all) {
      for (uint32_t k = 0; k < y->len; k++)
        if (mq_ibuf_push(out, t->byte_id[(unsigned char)w[y->start + k]]) != 0) return -1;
      *prev_unk = 0;
      return 0;
    }
  }
  if (t->unk_id < 0) return 0; /* no unknown token: the character is dropped */
  if (t->fuse_unk && *prev_unk) return 0;
  *prev_unk = 1;
  return mq_ibuf_push(out, t->unk_id);
}

int mq_bpe_word(const mq_tokenizer *t, const char *w, size_t n, mq_bpe_scratch *sc, mq_ibuf *out) {
  if (!n) return 0;
  if (t->ignore_merges) { /* a word that is a token is that token */
    int64_t id = mq_strmap_get(&t->vocab, w, n);
    if (id >= 0) return mq_ibuf_push(out, (int32_t)id);
  }
  if (n > INT32_MAX / 4) return -1;
  if (grow(&sc->sym, &sc->sym_cap, n, sizeof(sym)) != 0) return -1;
  sym *s = sc->sym;
  int32_t ns = 0;
  int prev_unk = 0;
  for (size_t i = 0; i < n;) {
    int l = mq_utf8_len_at(w, n, i);
    int64_t id = mq_strmap_get(&t->vocab, w + i, (size_t)l);
    if (id < 0 && t->mode == MQ_BPE_MERGES) {
      /* Hugging Face: byte fallback (or unk) happens before merging */
      int all = t->byte_fallback;
      for (int k = 0; k < l && all; k++)
        if (t->byte_id[(unsigned char)w[i + k]] < 0) all = 0;
      if (all) {
        for (int k = 0; k < l; k++)
          s[ns++] = (sym){(uint32_t)(i + k), 1, t->byte_id[(unsigned char)w[i + k]], 0, 0};
        prev_unk = 0;
        i += (size_t)l;
        continue;
      }
      if (t->unk_id < 0) { /* dropped */
        i += (size_t)l;
        continue;
      }
      if (t->fuse_unk && prev_unk && ns && s[ns - 1].id == t->unk_id) {
        s[ns - 1].len += (uint32_t)l;
        i += (size_t)l;
        continue;
      }
      id = t->unk_id;
      prev_unk = 1;
    } else {
      prev_unk = 0;
    }
    s[ns++] = (sym){(uint32_t)i, (uint32_t)l, (int32_t)id, 0, 0};
    i += (size_t)l;
  }
  for (int32_t i = 0; i < ns; i++) {
    s[i].prev = i - 1;
    s[i].next = i + 1 < ns ? i + 1 : -1;
  }
  /* at most ns - 1 initial pairs, and each merge adds at most 2 */
  if (grow(&sc->heap, &sc->heap_cap, 3 * (size_t)ns + 1, sizeof(cand)) != 0) return -1;
  cand *h = sc->heap;
  size_t nh = 0;
  cand c;
  for (int32_t i = 0; i + 1 < ns; i++)
    if (pair(t, w, s, i, i + 1, &c)) heap_push(h, &nh, c);
  while (nh) {
    c = heap_pop(h, &nh);
    int32_t li = c.left;
    sym *l = &s[li], *r = &s[c.right];
    if (!l->len || !r->len || l->next != c.right || l->len + r->len != c.size) continue;
    l->len += r->len;
    l->id = c.id;
    r->len = 0;
    l->next = r->next;
    if (r->next >= 0) s[r->next].prev = li;
    if (l->prev >= 0 && pair(t, w, s, l->prev, li, &c)) heap_push(h, &nh, c);
    if (l->next >= 0 && pair(t, w, s, li, l->next, &c)) heap_push(h, &nh, c);
  }
  prev_unk = 0;
  for (int32_t i = ns ? 0 : -1; i >= 0; i = s[i].next) {
    if (s[i].id >= 0) {
      if (mq_ibuf_push(out, s[i].id) != 0) return -1;
      prev_unk = t->unk_id >= 0 && s[i].id == t->unk_id;
    } else if (emit_unknown(t, w, &s[i], &prev_unk, out) != 0) {
      return -1;
    }
  }
  return 0;
}
