#define _GNU_SOURCE
#include "core/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"

int mq_file_map(const char *path, mq_mapped *out, mq_err *err) {
  memset(out, 0, sizeof *out);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return mq_errf(err, MQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return mq_errf(err, MQ_ERR_IO, "%s: not a regular file", path);
  }
  out->size = (uint64_t)st.st_size;
  if (out->size > 0) {
    void *p = mmap(NULL, (size_t)out->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      close(fd);
      return mq_errf(err, MQ_ERR_IO, "%s: mmap failed: %s", path, strerror(e));
    }
    out->data = p;
  }
  close(fd);
  return MQ_OK;
}

void mq_file_unmap(mq_mapped *m) {
  if (m->data) munmap((void *)m->data, (size_t)m->size);
  memset(m, 0, sizeof *m);
}

int mq_file_read(const char *path, size_t max_bytes, char **out, size_t *len, mq_err *err) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return mq_errf(err, MQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    return mq_errf(err, MQ_ERR_IO, "%s: not a regular file", path);
  }
  if ((uint64_t)st.st_size > max_bytes) {
    fclose(f);
    return mq_errf(err, MQ_ERR_FORMAT, "%s: %lld bytes, more than the %zu allowed for this file",
                   path, (long long)st.st_size, max_bytes);
  }
  size_t n = (size_t)st.st_size;
  char *buf = malloc(n + 1);
  if (!buf) {
    fclose(f);
    return mq_errf(err, MQ_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, n + 1);
  }
  if (fread(buf, 1, n, f) != n) {
    free(buf);
    fclose(f);
    return mq_errf(err, MQ_ERR_IO, "%s: short read", path);
  }
  fclose(f);
  buf[n] = 0;
  *out = buf;
  if (len) *len = n;
  return MQ_OK;
}

int mq_file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int mq_path_join(char *buf, size_t cap, const char *dir, const char *name) {
  int n = snprintf(buf, cap, "%s/%s", dir, name);
  return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

void mq_path_walk(const char *path,
                  void (*visit)(const char *path, const struct stat *st, void *ctx), void *ctx) {
  struct stat st;
  if (lstat(path, &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    struct dirent *de;
    char p[PATH_MAX];
    while (d && (de = readdir(d)))
      if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
          mq_path_join(p, sizeof p, path, de->d_name) == 0)
        mq_path_walk(p, visit, ctx);
    if (d) closedir(d);
  }
  visit(path, &st, ctx);
}

static void rm_entry(const char *path, const struct stat *st, void *ctx) {
  (void)ctx;
  if (S_ISDIR(st->st_mode))
    rmdir(path);
  else
    unlink(path);
}

void mq_rm_tree(const char *path) { mq_path_walk(path, rm_entry, NULL); }

static void add_bytes(const char *path, const struct stat *st, void *ctx) {
  (void)path;
  if (!S_ISDIR(st->st_mode)) *(double *)ctx += (double)st->st_size;
}

double mq_path_bytes(const char *path) {
  double n = 0;
  mq_path_walk(path, add_bytes, &n);
  return n;
}
