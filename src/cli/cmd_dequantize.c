/* mixq dequantize MODEL DST: write MODEL as an unquantized checkpoint (every
 * quantized linear dequantized to F32). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int mq_cmd_dequantize(int argc, char **argv) {
  const char *src = NULL, *dst = NULL;
  mq_model_params mp;
  mq_model_params_default(&mp);
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quantization") && i + 1 < argc) mp.quantization = argv[++i];
    else if (argv[i][0] != '-' && !src) src = argv[i];
    else if (argv[i][0] != '-' && !dst) dst = argv[i];
    else return mq_cli_fail("dequantize: unexpected argument '%s'", argv[i]);
  }
  if (!src || !dst) return mq_cli_fail("usage: mixq dequantize MODEL DST [--quantization NAME]");
  mq_err err = {0};
  mq_model *m;
  if (mq_model_load(src, &mp, &m, &err) != MQ_OK) return mq_cli_fail("%s", err.msg);
  int rc = mq_model_export_float(m, dst, &err);
  mq_model_free(m);
  if (rc != MQ_OK) return mq_cli_fail("%s", err.msg);
  printf("wrote the dequantized model to %s\n", dst);
  return 0;
}
