/* libFuzzer target: a whole checkpoint folder. The input is config.json
 * text, a NUL byte, then the bytes of model.safetensors (JSON text cannot
 * hold a raw NUL, so the split is unambiguous and mutations keep it).
 * Both go into a scratch folder and mq_model_load runs on it: config
 * parsing, method detection, the plan, binding, every adapter reading
 * fuzzed tensor values (g_idx, zeros, scales, packed words); when the model
 * loads, a three-token evaluation runs on it. Seeds: micro checkpoints
 * (hidden 32, one layer) float and quantized in every writer format. */
#include <stdint.h>
#include <string.h>

#include "fuzz_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nul = memchr(data, 0, size);
  if (!nul) return 0;
  static char dir[512];
  if (!dir[0]) mqf_dir("ckpt", dir, sizeof dir);
  size_t cl = (size_t)(nul - data);
  mqf_write(dir, "config.json", data, cl);
  mqf_write(dir, "model.safetensors", nul + 1, size - cl - 1);
  mqf_load_and_run(dir);
  return 0;
}
