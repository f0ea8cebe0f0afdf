/* Internals of the quantizing writer shared by writer.c (driver, AWQ, GPTQ,
 * AutoRound, compressed-tensors) and writer_ms.c (ModelSlim). Not API. */
#ifndef MQ_QUANT_WRITER_INT_H
#define MQ_QUANT_WRITER_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>

#include "io/checkpoint.h"
#include "io/st_write.h"
#include "quant/writer.h"

enum { LAYOUT_AWQ, LAYOUT_GPTQ, LAYOUT_CT, LAYOUT_MS };

/* A layer's scheme. WS_A16 is weight-only with qlayer.bits bits (AWQ, GPTQ,
 * AutoRound, compressed-tensors pack-quantized, ModelSlim W8A16). */
typedef enum wsch {
  WS_FLOAT = 0,
  WS_A16,
  WS_W8A8,     /* ModelSlim static per-tensor activations */
  WS_W8A8_DYN, /* int8 weights, dynamic per-token int8 activations */
  WS_W4A4_DYN, /* ModelSlim */
  WS_W4A8_DYN, /* int4 weights, dynamic per-token int8 activations */
  WS_MXFP8,    /* ModelSlim */
} wsch;

/* Where a linear sits: grp orders a block's modules (and says which must agree). */
enum { G_ATTN = 0, G_MLP, G_EXPERT, G_SHARED };

/* Options resolved against the format's defaults and rules. */
typedef struct {
  mq_qformat fmt;
  mq_qpacking pack;
  int bits, gs, sym, desc_act; /* gs: -1 = per channel (ModelSlim: 0 = per channel) */
  int layout;                  /* LAYOUT_* */
  int v1;                      /* GPTQ layout: qzeros "minus one" */
  int gidx;                    /* GPTQ layout: write g_idx */
  int dense;                   /* CT: dense bit-stream packing */
  wsch sch;                    /* the format's scheme for layers no rule names */
} qset;

typedef struct {
  char name[256];               /* module, e.g. "model.layers.3.mlp.experts.5.down_proj" */
  int layer, grp, expert, role; /* model order; expert -1 outside MoE; role: q k v o = 0..3,
                                   gate (w1) up (w3) down (w2) = 0..2 */
  const mq_tensor *w, *b;       /* weight [N, K]; bias [N] or NULL */
  wsch sch;                     /* WS_FLOAT: left float */
  int bits;                     /* weight bits; 16 when float */
} qlayer;

typedef struct {
  const mq_quantize_opts *o;
  qset q;
  mq_ckpt ck;
  qlayer *L; /* sorted in model order */
  int nL;
  char **flin; /* other 2-D float weights (module names), kept float */
  int nflin;
  pcre2_code **re_ign, **re_lb, **re_mix;
  wsch *mix_sch; /* per --mix rule */
  int *mix_bits;
  int model_bf16; /* config torch_dtype (else the weights) is bfloat16 */
  mq_quantize_report rep;
} job;

/* ---- shared helpers (writer.c) ---- */

/* A float tensor (F32/F16/BF16) as a malloc'ed float array; NULL on OOM. */
float *mq_wr_load_f32(const mq_tensor *t);
/* n floats into dt storage (F32/F16/BF16; RNE). */
void mq_wr_store_floats(const float *v, size_t n, mq_dtype dt, void *out);
/* Add tensor "mod.suffix" ([d0] when nd == 1, else [d0, d1]). */
int mq_wr_add(mq_st_writer *w, const char *mod, const char *suffix, mq_dtype dt, int nd, int64_t d0,
              int64_t d1, const void *data, mq_err *err);
/* A seed of its own for name (act-order permutations, calibration inputs). */
uint64_t mq_wr_seed(uint64_t seed, const char *name);
/* Scheme name as the family spells it (ModelSlim type, CT scheme, W<b>A16). */
const char *mq_wr_sch_name(const qset *q, wsch s, int bits, char *buf, size_t cap);

/* ---- ModelSlim (writer_ms.c) ---- */

/* Everything that could fail on this layer, before anything is written. */
int mq_wr_ms_validate(const job *J, const qlayer *L, mq_err *err);
/* Quantize L, add its tensors to w and their types to desc. */
int mq_wr_ms_emit(job *J, mq_st_writer *w, json_t *desc, const qlayer *L, mq_err *err);
/* The description's global keys, after every tensor entry. */
int mq_wr_ms_finish(const job *J, json_t *desc);

#endif
