/* Repacking bound linears into the kernels' interleaved layout at load. The
 * repacked buffers replace the ones they were made from: model-owned copies
 * are freed, pages of the mapped checkpoint are dropped from memory. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/err.h"
#include "kernels/linear_x8.h"
#include "quant/gguf_types.h"
#include "model/model.h"

/* Free a model-owned buffer made for the layer being bound (it is among the
 * most recent allocations); 0 when p is not one of them. */
static int release_recent(struct mq_model *m, const void *p) {
  mq_alloc_node **link = &m->owned;
  for (int i = 0; i < 16 && *link; i++, link = &(*link)->next) {
    if ((const char *)*link + 64 == (const char *)p) {
      mq_alloc_node *n = *link;
      *link = n->next;
      free(n);
      return 1;
    }
  }
  return 0;
}

/* Let the kernel drop the whole pages of [p, p + n) when they lie in a
 * mapped checkpoint file (read-only private mappings: a later read would
 * fault them back in from the file, nothing is lost). */
static void drop_mapped(const struct mq_model *m, const void *p, size_t n) {
  const uint8_t *a = p;
  for (int f = -1; f < m->ckpt.n_files; f++) {
    const mq_mapped *mp = f < 0 ? &m->gguf.map : &m->ckpt.files[f].map;
    if (!mp->data || a < mp->data || a + n > mp->data + mp->size) continue;
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)a + pg - 1) & ~(pg - 1), hi = ((uintptr_t)a + n) & ~(pg - 1);
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
    return;
  }
}

/* Whether [a, a + n) holds any memory the layer computes from. */
static int in_use(const mq_linear *l, const uint8_t *a, size_t n) {
  const void *ptrs[] = {l->w,      l->q.data, l->q.scales, l->q.mins, l->q.perm, l->mx_exp,
                        l->bias,   l->qbias,  l->deq,      l->qcorr};
  for (size_t i = 0; i < sizeof ptrs / sizeof *ptrs; i++) {
    const uint8_t *p = ptrs[i];
    if (p && p >= a && p < a + n) return 1;
  }
  return 0;
}

void mq_model_drop_sources(struct mq_model *m, const char *prefix, const mq_linear *l) {
  size_t pl = strlen(prefix);
  for (int i = 0; i < m->ckpt.n_all; i++) {
    const mq_tensor *t = m->ckpt.all[i];
    if (strncmp(t->name, prefix, pl) || t->name[pl] != '.' || strchr(t->name + pl + 1, '.')) continue;
    if (t->nbytes && !in_use(l, t->data, t->nbytes)) drop_mapped(m, t->data, t->nbytes);
  }
}

static void release(struct mq_model *m, const void *p, size_t n) {
  if (p && !release_recent(m, p)) drop_mapped(m, p, n);
}

/* Whether the active kernel tier computes a layout natively: a SIMD tier
 * that falls back to the reference for it keeps the row layout (its row
 * kernels are faster than the scalar tile kernel). The scalar tier itself
 * repacks, so the scalar-only build runs the same layouts end to end. */
#define TIER_HAS(entry) (mq_kern() == mq_kern_ref() || mq_kern()->entry != mq_kern_ref()->entry)

static int worth_it(const mq_linear *l) {
  if (l->kind == MQ_W_GGUF)
    return l->gtype == MQ_GGML_TYPE_Q4_0   ? TIER_HAS(x8_q4_0)
           : l->gtype == MQ_GGML_TYPE_Q8_0 ? TIER_HAS(x8_q8_0)
           : l->gtype == MQ_GGML_TYPE_Q6_K ? TIER_HAS(x8_q6_k)
           : l->gtype == MQ_GGML_TYPE_Q3_K ? TIER_HAS(x8_q3_k)
           : l->gtype == MQ_GGML_TYPE_Q2_K ? TIER_HAS(x8_q2_k)
           : l->gtype == MQ_GGML_TYPE_Q5_K ? TIER_HAS(x8_q5_k)
                                           : TIER_HAS(x8_q4_k);
  if (l->act == MQ_ACT_FLOAT && l->q.bits == 8) return TIER_HAS(x8_s8a16_q8);
  if (l->q.codes == MQ_CODES_S8 && l->q.bits == 8) return TIER_HAS(x8_s8_q8);
  return TIER_HAS(x8_u4_q8);
}

/* MXFP8 codes and block exponents copied into model memory (huge pages:
 * core/bigalloc.h) where the tier's kernels outrun a stream from the mapped
 * file's 4 KiB pages: the bf16 kernels read 40 GB/s a core from huge pages,
 * about 25 from the page cache (docs/performance.md). */
static int mx_copy(struct mq_model *m, mq_linear *l, mq_err *err) {
  size_t nc = (size_t)l->n_out * l->n_in, ne = nc / 32;
  uint8_t *dst = mq_model_alloc(m, nc + ne);
  if (!dst)
    return mq_errf(err, MQ_ERR_NOMEM, "out of memory copying a %d x %d layer", l->n_out, l->n_in);
  memcpy(dst, l->q.data, nc);
  memcpy(dst + nc, l->mx_exp, ne);
  const void *old_codes = l->q.data, *old_exp = l->mx_exp;
  l->q.data = dst, l->mx_exp = dst + nc;
  release(m, old_codes, nc);
  release(m, old_exp, ne);
  return MQ_OK;
}

int mq_model_repack(struct mq_model *m, mq_linear *l, mq_err *err) {
  if (m->no_repack) return MQ_OK;
  if (l->kind == MQ_W_MXFP8) return TIER_HAS(dot_mxfp8_bf16) ? mx_copy(m, l, err) : MQ_OK;
  if (!worth_it(l)) return MQ_OK;
  if (mq_x8_gguf_eligible(l)) {
    uint8_t *dst = mq_model_alloc(m, mq_x8_gguf_bytes(l->gtype, l->n_out, l->n_in));
    if (!dst)
      return mq_errf(err, MQ_ERR_NOMEM, "out of memory repacking a %d x %d layer", l->n_out, l->n_in);
    const void *old = l->w;
    mq_x8_gguf_repack(l, dst);
    release(m, old, (size_t)l->n_out * (size_t)mq_ggml_row_size(l->gtype, l->n_in));
    return MQ_OK;
  }
  /* integer tiles: the codes, scales and mins of the row layout become one
   * buffer and the three sources are released */
  int s8 = mq_x8_s8_eligible(l), a16s8 = !s8 && mq_x8_a16s8_eligible(l);
  int aq = !s8 && !a16s8 && mq_x8_aq_eligible(l);
  if (!s8 && !a16s8 && !aq && !mq_x8_eligible(l)) return MQ_OK;
  mq_qint *q = &l->q;
  int mins = s8 ? 0 : a16s8 ? mq_x8_a16s8_mins(l) : aq || q->mins;
  uint8_t *tiles =
      mq_model_alloc(m, mq_x8_bytes(l->n_out, l->n_in, q->group_size, s8 || a16s8, mins));
  const void *old_codes = q->data, *old_scales = q->scales, *old_mins = q->mins;
  size_t code_bytes = (size_t)l->n_out * l->n_in / (q->codes == MQ_CODES_U4 ? 2 : 1);
  int fail = !tiles;
  if (!fail && s8)
    mq_x8_s8_repack(l, tiles);
  else if (!fail && a16s8)
    fail = mq_x8_a16s8_repack(l, tiles) != 0;
  else if (!fail && aq)
    fail = mq_x8_aq_repack(l, tiles) != 0;
  else if (!fail)
    mq_x8_repack(l, tiles);
  if (fail)
    return mq_errf(err, MQ_ERR_NOMEM, "out of memory repacking a %d x %d layer", l->n_out, l->n_in);
  size_t ng = (size_t)l->n_out * q->n_groups * sizeof(float);
  release(m, old_codes, code_bytes);
  release(m, old_scales, ng);
  if (old_mins) release(m, old_mins, ng);
  return MQ_OK;
}
