/* A linear layer y = x W^T + b in one of the canonical weight encodings, and
 * its forward pass. Checkpoint formats are turned into these encodings by the
 * adapters in src/quant/; kernels know nothing about file formats. */
#ifndef MQ_KERNELS_LINEAR_H
#define MQ_KERNELS_LINEAR_H

#include <stdint.h>

#include "core/pool.h"
#include "io/dtype.h"
#include "kernels/kernels.h"

typedef enum mq_wkind {
  MQ_W_FLOAT = 0, /* F32 / F16 / BF16 rows */
  MQ_W_INT,       /* integer codes with per-group scale and offset (see mq_qint) */
  MQ_W_MXFP8,     /* FP8 E4M3 codes [N, K] with an E8M0 exponent per 32 along K */
  MQ_W_GGUF,      /* GGUF/ggml block rows (w, gtype): computed natively against the
                     activation blocks the type's dot product defines */
} mq_wkind;

/* What happens to a layer's input activations. */
typedef enum mq_act {
  MQ_ACT_FLOAT = 0,   /* A16: float activations, dequantized weights (exact) */
  MQ_ACT_INT8_TOKEN,  /* dynamic per-token symmetric int8: s = max|x| / 127 */
  MQ_ACT_INT8_STATIC, /* static per-tensor int8 with offset (ModelSlim W8A8) */
  MQ_ACT_INT4_TOKEN,  /* dynamic per-token symmetric int4: s = max|x| / 7 */
  MQ_ACT_FP8,         /* fp8 activations (not computed yet) */
  MQ_ACT_MXFP8,       /* MXFP8: E4M3 elements with an E8M0 scale per 32 along K */
} mq_act;

const char *mq_act_name(mq_act a);

typedef enum mq_codes {
  MQ_CODES_U4 = 0, /* two unsigned 4-bit codes per byte along K, low nibble first;
                      2- and 3-bit weights are widened to this at load */
  MQ_CODES_U8,     /* one unsigned byte per code */
  MQ_CODES_S8,     /* one signed byte per code */
} mq_codes;

/* Integer weights: W[n][k] = codes[n][k] * scales[n][g] + mins[n][g] with
 * g = k / group_size over the (possibly permuted) input order. mins holds
 * -zero * scale (NULL: zero point 0). With perm (act-order), stored column j
 * is input channel perm[j]: the input is gathered once per token, so groups
 * are contiguous. */
typedef struct mq_qint {
  mq_codes codes;
  int bits;       /* significant bits of a code: 2, 3, 4 or 8 */
  int group_size; /* divides K except possibly for the last group */
  int n_groups;   /* ceil(K / group_size) */
  const uint8_t *data;   /* [N, K/2] nibbles or [N, K] bytes, row-major */
  const float *scales;   /* [N, n_groups] */
  const float *mins;     /* [N, n_groups] or NULL */
  const int32_t *perm;   /* [K] or NULL */
  int x8;                /* data, scales, mins in the 8-row interleaved layout of
                            kernels/linear_x8.h instead of row-major */
} mq_qint;

typedef struct mq_linear {
  int n_out, n_in;
  mq_wkind kind;
  mq_act act;        /* activation handling; MQ_ACT_FLOAT for float and A16 layers */
  mq_dtype dtype;    /* MQ_W_FLOAT: F32, F16 or BF16 */
  const void *w;     /* MQ_W_FLOAT: [n_out, n_in] row-major; usually inside the mmap */
  mq_qint q;         /* MQ_W_INT: codes (S8 for activation-quantized layers); MQ_W_MXFP8:
                        q.data holds the E4M3 codes [N, K] */
  const uint8_t *mx_exp; /* MQ_W_MXFP8: E8M0 [N, K/32] */
  uint32_t gtype;        /* MQ_W_GGUF: ggml type id; rows of mq_ggml_row_size(gtype, K) bytes */
  /* MQ_ACT_INT8_STATIC (ModelSlim W8A8): x_q = clamp(rne(x * in_rscale + in_offset)),
   * y = (sum x_q w_q + qbias[n]) * deq[n]; the float bias is folded into qbias. */
  float in_rscale, in_offset;
  const int32_t *qbias; /* [n_out] */
  const float *deq;     /* [n_out] */
  int act_div;  /* dynamic quantization divides by the scale (ModelSlim) instead of
                   multiplying by its reciprocal (vLLM, compressed-tensors) */
  int out_bf16; /* round each output to bf16 (NPU parity mode) */
  const float *bias; /* [n_out] or NULL */
  /* Dynamic per-token activations: a term added to row n's integer-domain
   * sum before the activation scale, y = s_x * (sum_g s_g <q_x, w_g> + qcorr[n])
   * (compressed-tensors W4A8 with activation clip: the NPU kernel's bias less
   * the 8 * s * sum(W) it compensates). [n_out] or NULL. */
  const float *qcorr;
} mq_linear;

/* Where a forward pass runs: the thread pool, the kernel table, scratch per
 * pool thread (MQ_SCRATCH_ROWS rows of max n_in floats: prefill converts
 * float-like weights four rows at a time) and a shared buffer for gathered
 * inputs and group sums (at least n_tok * mq_linear_gather_floats()). */
#define MQ_SCRATCH_ROWS 4
typedef struct mq_exec mq_exec;

/* Prefill's float block: y[t * n_out + r0 + i] = <w[i], x_t> + bias[r0 + i]
 * for the nr (1..4) float rows w and every token t < n_tok, x_t = x + t * ldx
 * (bias may be NULL). Four rows meet four tokens per kernel call. */
void mq_float_block(const mq_kernels *k, const float *const w[4], int nr, const float *x,
                    size_t ldx, int K, int n_tok, float *y, int n_out, int r0, const float *bias);

struct mq_exec {
  mq_pool *pool;
  const mq_kernels *k;
  float **scratch;
  float *gather;
  int fast_a16; /* A16 integer layers: quantize activations to int8 blocks of 32
                   (a named fast mode; the default is the exact float path) */
  size_t gather_floats; /* capacity of gather, or 0: unknown (paths that need
                           more than one layer's share then stay off) */
};

/* The pool for a per-token loop over n_tok tokens of about `cost`
 * multiply-adds each (activation quantization, group sums): ex->pool when
 * the loop repays the hand-off (prefill chunks), NULL (the caller alone)
 * otherwise (one decode token). */
mq_pool *mq_tokens_pool(const mq_exec *ex, int n_tok, double cost);
/* ... the cost of quantizing one activation value, in those multiply-adds
 * (as a share of prefill, measured) */
#define MQ_QUANT_COST 8.0

/* The fast A16 path's inputs of n_tok tokens x [n_tok, K]: with gsum, each
 * token's sums over groups of gs columns ([n_tok, ceil(K / gs)]); with xq,
 * its int8 blocks of 32 and their scales (mq_quantize_q8_32 into xq
 * [n_tok, K] and xd [n_tok, K / 32]) and, with bsum, each block's code sum
 * ([n_tok, K / 32]). Tokens go across ex's pool. */
void mq_a16_prepare(const float *x, int n_tok, int K, int gs, float *gsum, int8_t *xq, float *xd,
                    int32_t *bsum, const mq_exec *ex);

/* y[t, :] = W x[t, :] + b for t < n_tok. x: [n_tok, n_in], y: [n_tok, n_out];
 * x and y must not overlap. */
void mq_linear_forward(const mq_linear *l, const float *x, int n_tok, float *y, const mq_exec *ex);

/* mq_linear_forward of float rows (l->w of l->dtype, whatever l->kind says)
 * with token t's input at x + t * ldx: GGUF F16 layers use it on their
 * f16-rounded activations. */
void mq_linear_float_forward(const mq_linear *l, const float *x, size_t ldx, int n_tok, float *y,
                             const mq_exec *ex);

/* y_i = W_i x + b_i for n linears reading the same input (q/k/v, gate/up):
 * computed together where their layouts allow (one input preparation, one
 * parallel loop), else one after another. Same results as separate calls. */
void mq_linear_forward_multi(const mq_linear *const *ls, int n, const float *x, int n_tok,
                             float *const *ys, const mq_exec *ex);

/* y_i = W_i xs[i] for n linears with an input each (experts' down
 * projections): one parallel loop where the layouts and ex->gather_floats
 * allow, else one after another. Same results as separate calls. */
void mq_linear_forward_each(const mq_linear *const *ls, int n, const float *const *xs, int n_tok,
                            float *const *ys, const mq_exec *ex);

/* Floats per token of mq_exec.gather the forward pass of l needs. */
int mq_linear_gather_floats(const mq_linear *l);

/* Bytes the weights of l occupy in their compute layout. */
unsigned long long mq_linear_bytes(const mq_linear *l);

/* Row n of W as floats (dst: [n_in], input order, perm undone). For tests,
 * inspection and writers; not a compute path. */
void mq_linear_dequant_row(const mq_linear *l, int n, float *dst);

#endif
