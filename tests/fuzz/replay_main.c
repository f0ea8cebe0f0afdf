/* A main() for the fuzz targets in ordinary builds (no libFuzzer): runs
 * LLVMFuzzerTestOneInput once on every file named, or every file of every
 * folder named (README* and dot files skipped). ctest uses it to replay the
 * seed corpus and every crash reproducer in every build variant, so each
 * reproducer stays a regression test. Exit status: 0, or the crash. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return 1;
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  /* an exact-size heap copy, so ASan sees reads past the input */
  uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
  if (!buf || (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)) {
    fprintf(stderr, "%s: cannot read\n", path);
    fclose(f);
    free(buf);
    return 1;
  }
  fclose(f);
  if (getenv("MQF_VERBOSE")) fprintf(stderr, "replay %s\n", path);
  LLVMFuzzerTestOneInput(buf, (size_t)n);
  free(buf);
  return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  int n_run = 0, bad = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) continue; /* e.g. no reproducers yet */
    if (!S_ISDIR(st.st_mode)) {
      bad |= run_file(argv[i]);
      n_run++;
      continue;
    }
    DIR *d = opendir(argv[i]);
    if (!d) continue;
    char **names = NULL;
    size_t nn = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
      if (de->d_name[0] == '.' || strncmp(de->d_name, "README", 6) == 0) continue;
      names = realloc(names, (nn + 1) * sizeof *names);
      names[nn++] = strdup(de->d_name);
    }
    closedir(d);
    if (nn) qsort(names, nn, sizeof *names, cmp_str);
    for (size_t k = 0; k < nn; k++) {
      char p[4096];
      snprintf(p, sizeof p, "%s/%s", argv[i], names[k]);
      if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
        bad |= run_file(p);
        n_run++;
      }
      free(names[k]);
    }
    free(names);
  }
  printf("%s: %d inputs replayed without a crash\n", argv[0], n_run);
  return bad;
}
