#define _GNU_SOURCE
#include "io/checkpoint.h"

#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

#define MQ_INDEX_MAX_BYTES (64u << 20)

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && strcmp(s + a - b, suf) == 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names of the regular files in dir ending with suffix, sorted. Caller frees. */
static int list_dir(const char *dir, const char *suffix, char ***out, int *n, mq_err *err) {
  *out = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d) return mq_errf(err, MQ_ERR_IO, "%s: cannot open directory", dir);
  struct dirent *de;
  int cap = 0, rc = MQ_OK;
  while ((de = readdir(d))) {
    if (!ends_with(de->d_name, suffix) || de->d_name[0] == '.') continue;
    if (*n == cap) {
      cap = cap ? 2 * cap : 16;
      char **nn = realloc(*out, (size_t)cap * sizeof(char *));
      if (!nn) {
        rc = mq_errf(err, MQ_ERR_NOMEM, "out of memory");
        break;
      }
      *out = nn;
    }
    if (!((*out)[*n] = strdup(de->d_name))) {
      rc = mq_errf(err, MQ_ERR_NOMEM, "out of memory");
      break;
    }
    (*n)++;
  }
  closedir(d);
  if (*n) qsort(*out, (size_t)*n, sizeof(char *), cmp_str);
  return rc;
}

static void free_list(char **l, int n) {
  for (int i = 0; i < n; i++) free(l[i]);
  free(l);
}

static int safe_shard_name(const char *s) {
  return s[0] && s[0] != '.' && !strchr(s, '/') && !strchr(s, '\\');
}

static int open_files(mq_ckpt *c, char **names, int n, mq_err *err) {
  c->files = calloc((size_t)(n ? n : 1), sizeof *c->files);
  if (!c->files) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  for (int i = 0; i < n; i++) {
    char path[PATH_MAX];
    if (mq_path_join(path, sizeof path, c->dir, names[i]) != 0)
      return mq_errf(err, MQ_ERR_ARG, "%s/%s: path too long", c->dir, names[i]);
    int rc = mq_st_open(path, &c->files[i], err);
    if (rc != MQ_OK) return rc;
    c->n_files++;
  }
  return MQ_OK;
}

static int build_table(mq_ckpt *c, mq_err *err) {
  int total = 0;
  for (int f = 0; f < c->n_files; f++) total += c->files[f].n_tensors;
  c->all = malloc((size_t)(total ? total : 1) * sizeof *c->all);
  if (!c->all) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  for (int f = 0; f < c->n_files; f++) {
    for (int i = 0; i < c->files[f].n_tensors; i++) {
      const mq_tensor *t = &c->files[f].tensors[i];
      int r = mq_strmap_put(&c->by_name, t->name, strlen(t->name), c->n_all);
      if (r < 0) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
      if (r > 0) {
        const mq_tensor *o = c->all[mq_strmap_gets(&c->by_name, t->name)];
        return mq_errf(err, MQ_ERR_FORMAT, "tensor '%s' is stored twice: in %s and in %s", t->name,
                       o->file, t->file);
      }
      c->all[c->n_all++] = t;
    }
  }
  return MQ_OK;
}

/* Sharded checkpoint: read weight_map, open each distinct shard once, and
 * check every listed tensor is where the index says. */
static int open_index(mq_ckpt *c, const char *index_name, mq_err *err) {
  char path[PATH_MAX];
  if (mq_path_join(path, sizeof path, c->dir, index_name) != 0)
    return mq_errf(err, MQ_ERR_ARG, "%s: path too long", c->dir);
  char *text;
  size_t len;
  int rc = mq_file_read(path, MQ_INDEX_MAX_BYTES, &text, &len, err);
  if (rc != MQ_OK) return rc;
  json_error_t jerr;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  free(text);
  if (!root) return mq_errf(err, MQ_ERR_FORMAT, "%s: invalid JSON at line %d: %s", path, jerr.line, jerr.text);
  json_t *wm = json_object_get(root, "weight_map");
  char **names = NULL;
  int n = 0;
  if (!json_is_object(root) || !json_is_object(wm)) {
    rc = mq_errf(err, MQ_ERR_FORMAT, "%s: no \"weight_map\" object", path);
    goto out;
  }
  names = calloc(json_object_size(wm) + 1, sizeof(char *));
  if (!names) {
    rc = mq_errf(err, MQ_ERR_NOMEM, "out of memory");
    goto out;
  }
  const char *tname;
  json_t *v;
  json_object_foreach(wm, tname, v) {
    if (!json_is_string(v) || !safe_shard_name(json_string_value(v))) {
      rc = mq_errf(err, MQ_ERR_FORMAT,
                   "%s: weight_map entry '%s' must name a file inside the checkpoint directory",
                   path, tname);
      goto out;
    }
    const char *s = json_string_value(v);
    int seen = 0;
    for (int i = 0; i < n && !seen; i++) seen = strcmp(names[i], s) == 0;
    if (!seen && !(names[n++] = strdup(s))) {
      rc = mq_errf(err, MQ_ERR_NOMEM, "out of memory");
      goto out;
    }
  }
  qsort(names, (size_t)n, sizeof(char *), cmp_str);
  if ((rc = open_files(c, names, n, err)) != MQ_OK) goto out;
  if ((rc = build_table(c, err)) != MQ_OK) goto out;
  json_object_foreach(wm, tname, v) {
    const mq_tensor *t = mq_ckpt_find(c, tname);
    const char *want = json_string_value(v);
    if (!t || !ends_with(t->file, want) || t->file[strlen(t->file) - strlen(want) - 1] != '/') {
      rc = mq_errf(err, MQ_ERR_FORMAT, "%s: tensor '%s' is listed in shard %s but not found there",
                   path, tname, want);
      goto out;
    }
  }
out:
  free_list(names, n);
  json_decref(root);
  return rc;
}

int mq_ckpt_open(const char *dir, mq_ckpt *out, mq_err *err) {
  memset(out, 0, sizeof *out);
  if (!(out->dir = strdup(dir))) return mq_errf(err, MQ_ERR_NOMEM, "out of memory");
  char path[PATH_MAX];
  static const char *k_index[] = {"model.safetensors.index.json",
                                  "quant_model_weights.safetensors.index.json"};
  static const char *k_single[] = {"model.safetensors", "quant_model_weights.safetensors"};
  int rc = MQ_ERR_IO;
  for (int i = 0; i < 2 && rc == MQ_ERR_IO; i++) {
    if (mq_path_join(path, sizeof path, dir, k_index[i]) == 0 && mq_file_exists(path)) {
      rc = open_index(out, k_index[i], err);
      goto done;
    }
  }
  char **names;
  int n;
  if ((rc = list_dir(dir, ".safetensors.index.json", &names, &n, err)) != MQ_OK) goto done;
  if (n > 0) {
    rc = open_index(out, names[0], err);
    free_list(names, n);
    goto done;
  }
  free_list(names, n);
  for (int i = 0; i < 2; i++) {
    if (mq_path_join(path, sizeof path, dir, k_single[i]) == 0 && mq_file_exists(path)) {
      char *one = (char *)k_single[i];
      if ((rc = open_files(out, &one, 1, err)) == MQ_OK) rc = build_table(out, err);
      goto done;
    }
  }
  if ((rc = list_dir(dir, ".safetensors", &names, &n, err)) != MQ_OK) goto done;
  if (n == 0)
    rc = mq_errf(err, MQ_ERR_IO, "%s: no *.safetensors file in this directory", dir);
  else if ((rc = open_files(out, names, n, err)) == MQ_OK)
    rc = build_table(out, err);
  free_list(names, n);
done:
  if (rc != MQ_OK) mq_ckpt_close(out);
  return rc;
}

void mq_ckpt_close(mq_ckpt *c) {
  for (int i = 0; i < c->n_files; i++) mq_st_close(&c->files[i]);
  free(c->files);
  free(c->all);
  mq_strmap_free(&c->by_name);
  free(c->dir);
  memset(c, 0, sizeof *c);
}

const mq_tensor *mq_ckpt_find(const mq_ckpt *c, const char *name) {
  int64_t i = mq_strmap_gets(&c->by_name, name);
  return i < 0 ? NULL : c->all[i];
}
