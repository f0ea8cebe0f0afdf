/* Round-to-nearest group quantization of a Linear weight into integer codes,
 * scales and zero points, independent of any packing.
 *
 * Convention (all formats): unsigned codes q and zeros z in [0, 2^bits - 1],
 * w ~= (q - z) * s. compressed-tensors' signed values are q - 2^(b-1) and its
 * zero point z - 2^(b-1); its offset-binary packing stores q again.
 *
 * Each producer's recipe (specs/formats.md) is a mode:
 *   MQ_RTN_ASYM_AWQ   AutoAWQ pseudo_quantize_tensor: group [min, max],
 *                     s = max(max - min, 1e-5) / qmax, z = clamp(-round(min / s), 0, qmax).
 *   MQ_RTN_ASYM       AutoGPTQ quantizer / AutoRound int_asym / compressed-tensors:
 *                     the range is widened to contain 0 (min' = min(min, 0),
 *                     max' = max(max, 0)), s = (max' - min') / qmax,
 *                     z = clamp(round(-min' / s), 0, qmax).
 *   MQ_RTN_SYM        AutoGPTQ sym / compressed-tensors sym: s = absmax / (qmax / 2)
 *                     (= absmax / ((qmax - qmin) / 2)), z = 2^(bits-1).
 *   MQ_RTN_SYM_AUTOROUND  AutoRound int_sym: s = sign * absmax / 2^(bits-1), the
 *                     sign chosen so the larger-magnitude extreme maps to code 0
 *                     (signed -2^(bits-1)), i.e. scales may be NEGATIVE; integer
 *                     values clamp to [-2^(b-1), 2^(b-1) - 1], z = 2^(bits-1).
 *   MQ_RTN_SYM_MS     msmodelslim calculate_int_qparam, symmetric:
 *                     s = max(absmax / (2^(b-1) - 1), FLT_EPSILON) (int8: absmax/127,
 *                     int4: absmax/7), integer values clamp to [-2^(b-1), 2^(b-1) - 1],
 *                     z = 2^(bits-1).
 * For every mode q = clamp(round_half_even(w / s) + z, 0, qmax).
 *
 * Scales are rounded to their storage dtype FIRST and z and q are computed
 * from the stored scale (as AutoAWQ/AutoGPTQ's packers recompute the codes
 * from the fp16 scale), so the dequantized checkpoint is exactly the RTN the
 * writer intended. A group of zeros gets the producers' fallback range
 * (GPTQ/AutoRound: [-1, 1]); a scale that rounds to 0 becomes the dtype's
 * smallest normal. */
#ifndef MQ_QUANT_RTN_H
#define MQ_QUANT_RTN_H

#include <stdint.h>

#include "io/dtype.h"
#include "mixq.h"

typedef enum mq_rtn_mode {
  MQ_RTN_ASYM_AWQ = 0,
  MQ_RTN_ASYM,
  MQ_RTN_SYM,
  MQ_RTN_SYM_AUTOROUND,
  MQ_RTN_SYM_MS,
} mq_rtn_mode;

typedef struct mq_rtn_params {
  int bits;             /* 2..8 */
  int group_size;       /* > 0; K for per-channel */
  int n_groups;         /* G: ceil(K / group_size), or the groups g_idx uses */
  const int32_t *g_idx; /* [K]: group of each input channel (act-order); NULL: k / group_size */
  mq_rtn_mode mode;
  mq_dtype scale_dtype; /* MQ_DTYPE_F16, _BF16 or _F32 */
} mq_rtn_params;

/* w: [N, K] row-major (nn.Linear layout, row = output channel).
 * Outputs, caller-allocated: q: [N, K] codes; scale: [N, G], each exactly
 * representable in scale_dtype; zero: [N, G].
 * Fails (MQ_ERR_FORMAT) on a non-finite weight or a scale that overflows the
 * scale dtype, (MQ_ERR_ARG) on bad parameters or a g_idx entry outside [0, G). */
int mq_rtn_quantize(const float *w, int64_t N, int64_t K, const mq_rtn_params *p, uint8_t *q,
                    float *scale, uint8_t *zero, mq_err *err);

/* f rounded to dtype (F16 / BF16 RNE; F32 unchanged). */
float mq_rtn_round_to(float f, mq_dtype dt);

/* Act-order (desc_act) grouping, as AutoGPTQ builds g_idx: a random
 * permutation perm of the K input channels (seeded, deterministic), groups
 * formed in permuted order, g_idx[k] = invperm[k] / group_size. Every group
 * gets exactly group_size channels (K % group_size == 0 required); g_idx is
 * non-monotonic. Out: g_idx [K]. Returns MQ_OK or MQ_ERR_NOMEM. */
int mq_rtn_actorder_gidx(int64_t K, int group_size, uint64_t seed, int32_t *g_idx);

#endif
