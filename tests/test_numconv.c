/* Number format conversions against values from the format definitions. */
#include "core/numconv.h"
#include "test.h"

int main(void) {
  /* binary16: 1.0, -2.0, max 65504, min subnormal 2^-24, inf, 1/3 rounding. */
  CHECK(mq_f16_to_f32(0x3c00) == 1.0f);
  CHECK(mq_f16_to_f32(0xc000) == -2.0f);
  CHECK(mq_f16_to_f32(0x7bff) == 65504.0f);
  CHECK(mq_f16_to_f32(0x0001) == ldexpf(1.0f, -24));
  CHECK(mq_f16_to_f32(0x8000) == 0.0f && signbit(mq_f16_to_f32(0x8000)));
  CHECK(isinf(mq_f16_to_f32(0x7c00)));
  CHECK(isnan(mq_f16_to_f32(0x7e00)));
  CHECK(mq_f32_to_f16(1.0f / 3.0f) == 0x3555);
  CHECK(mq_f32_to_f16(65520.0f) == 0x7c00); /* rounds up to inf */
  CHECK(mq_f32_to_f16(ldexpf(1.0f, -25)) == 0x0000); /* tie to even: 0 */
  CHECK(mq_f32_to_f16(ldexpf(3.0f, -25)) == 0x0002); /* 1.5 ulp -> 2 */
  /* saturating (the f16 KV cache): past 65504 clamps, inf too; NaN stays */
  CHECK(mq_f32_to_f16_sat(65520.0f) == 0x7bff && mq_f32_to_f16_sat(-1e9f) == 0xfbff);
  CHECK(mq_f32_to_f16_sat(INFINITY) == 0x7bff && mq_f32_to_f16_sat(-INFINITY) == 0xfbff);
  CHECK(isnan(mq_f16_to_f32(mq_f32_to_f16_sat(NAN))));
  CHECK(mq_f32_to_f16_sat(1.0f / 3.0f) == 0x3555 && mq_f32_to_f16_sat(-65519.0f) == 0xfbff);
  /* every finite f16 survives f16 -> f32 -> f16 */
  int bad = 0;
  for (uint32_t h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) == 0x7c00) continue;
    if (mq_f32_to_f16(mq_f16_to_f32((uint16_t)h)) != h) bad++;
  }
  CHECK_MSG(bad == 0, "%d f16 values do not round-trip", bad);

  /* bfloat16: upper half of f32, round to nearest even. */
  CHECK(mq_bf16_to_f32(0x3f80) == 1.0f);
  CHECK(mq_bf16_to_f32(0xc0a0) == -5.0f);
  CHECK(mq_f32_to_bf16(mq_bits_to_f32(0x3f808000u)) == 0x3f80); /* tie -> even */
  CHECK(mq_f32_to_bf16(mq_bits_to_f32(0x3f818000u)) == 0x3f82); /* tie -> even (up) */
  CHECK(mq_f32_to_bf16(mq_bits_to_f32(0x3f808001u)) == 0x3f81);

  /* FP8 E4M3 (fn): 0x38 = 1.0, 0x7e = 448 (max), 0x01 = 2^-9, 0x7f NaN. */
  CHECK(mq_e4m3_to_f32(0x38) == 1.0f);
  CHECK(mq_e4m3_to_f32(0x7e) == 448.0f);
  CHECK(mq_e4m3_to_f32(0xfe) == -448.0f);
  CHECK(mq_e4m3_to_f32(0x01) == ldexpf(1.0f, -9));
  CHECK(mq_e4m3_to_f32(0x08) == ldexpf(1.0f, -6));
  CHECK(isnan(mq_e4m3_to_f32(0x7f)) && isnan(mq_e4m3_to_f32(0xff)));
  CHECK(mq_e4m3_to_f32(0x77) == 240.0f); /* 1.875 * 2^7 */

  /* FP8 E5M2: 0x3c = 1.0, 0x7b = 57344 (max), 0x7c inf. */
  CHECK(mq_e5m2_to_f32(0x3c) == 1.0f);
  CHECK(mq_e5m2_to_f32(0x7b) == 57344.0f);
  CHECK(isinf(mq_e5m2_to_f32(0x7c)));
  CHECK(mq_e5m2_to_f32(0x01) == ldexpf(1.0f, -16));

  /* E8M0: 2^(v-127), 0xff NaN. */
  CHECK(mq_e8m0_to_f32(127) == 1.0f);
  CHECK(mq_e8m0_to_f32(130) == 8.0f);
  CHECK(mq_e8m0_to_f32(0) == ldexpf(1.0f, -127));
  CHECK(mq_e8m0_to_f32(254) == ldexpf(1.0f, 127));
  CHECK(isnan(mq_e8m0_to_f32(255)));
  return mqt_report("numconv");
}
