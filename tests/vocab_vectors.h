/* Test helper: llama.cpp's tokenizer test vectors (.inp strings separated by
 * "\n__ggml_vocab_test__\n", .out one line of ids per string) and id-list
 * comparisons. Include after test.h. */
#ifndef MQ_TEST_VOCAB_VECTORS_H
#define MQ_TEST_VOCAB_VECTORS_H

static const char *SEP = "\n__ggml_vocab_test__\n";

/* Split a .inp file into its strings (each followed by SEP), as
 * llama.cpp's test files are laid out. v[0] points at the buffer: free(v[0]). */
static int read_inp(const char *path, char ***out, size_t **lens) {
  size_t n;
  char *buf = mqt_read(path, &n);
  if (!buf) return -1;
  int cnt = 0, cap = 64;
  char **v = malloc((size_t)cap * sizeof *v);
  size_t *l = malloc((size_t)cap * sizeof *l);
  char *p = buf, *end = buf + n;
  while (p < end && cnt < cap) {
    char *q = strstr(p, SEP);
    if (!q) break;
    v[cnt] = p;
    l[cnt] = (size_t)(q - p);
    *q = 0;
    cnt++;
    p = q + strlen(SEP);
  }
  if (!cnt) free(buf);
  *out = v;
  *lens = l;
  return cnt;
}

/* One .out line (" 1 2 3") into ids. */
static int parse_ids(const char *line, int32_t *ids, int cap) {
  int n = 0;
  while (*line && *line != '\n' && n < cap) {
    char *end;
    long v = strtol(line, &end, 10);
    if (end == line) break;
    ids[n++] = (int32_t)v;
    line = end;
  }
  return n;
}

static int same(const int32_t *a, int na, const int32_t *b, int nb) {
  return na == nb && (na == 0 || !memcmp(a, b, (size_t)na * sizeof *a));
}

static void print_ids(const char *what, const int32_t *ids, int n) {
  fprintf(stderr, "  %s:", what);
  for (int i = 0; i < n; i++) fprintf(stderr, " %d", (int)ids[i]);
  fputc('\n', stderr);
}

#endif
