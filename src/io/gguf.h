/* GGUF reader (versions 2 and 3): validated, zero-copy views into a mapped
 * file. specs/formats.md §5.1; the rules are listed in docs/gguf.md.
 *
 * Layout (all little-endian): "GGUF", u32 version, u64 tensor count, u64
 * key/value count, the key/value pairs (string key, u32 value type, value),
 * the tensor infos (string name, u32 n_dims, u64 ne[n_dims], u32 ggml type,
 * u64 offset), padding to the alignment, then the data section. A string is
 * a u64 byte count and that many bytes (no NUL); an array is a u32 element
 * type, a u64 count and the elements.
 *
 * Everything a file states is checked before it is used: counts and lengths
 * against the bytes that remain (no allocation is sized by an unchecked
 * count), value and tensor types, dimensions and their products, alignment,
 * tensor extents inside the file and not overlapping, unique keys and names.
 * Errors name the file, the key or tensor, and the rule. */
#ifndef MQ_IO_GGUF_H
#define MQ_IO_GGUF_H

#include <stdint.h>

#include "core/file.h"
#include "core/strmap.h"
#include "mixq.h"

#define MQ_GGUF_MAX_DIMS 4
#define MQ_GGUF_MAX_NAME 63                /* tensor names: < 64 bytes (GGML_MAX_NAME) */
#define MQ_GGUF_MAX_KEY 65535              /* key length (mixq's bound) */
#define MQ_GGUF_MAX_STRING (64ull << 20)   /* string bytes (ggml's bound) */
#define MQ_GGUF_MAX_ARRAY (64ull << 20)    /* array elements (ggml's bound) */
#define MQ_GGUF_MAX_ALIGNMENT (1ull << 20) /* general.alignment (ggml's bound) */
#define MQ_GGUF_DEFAULT_ALIGNMENT 32

/* Metadata value types, numbered as in the file. */
typedef enum mq_gguf_vtype {
  MQ_GGUF_VTYPE_U8 = 0,
  MQ_GGUF_VTYPE_I8 = 1,
  MQ_GGUF_VTYPE_U16 = 2,
  MQ_GGUF_VTYPE_I16 = 3,
  MQ_GGUF_VTYPE_U32 = 4,
  MQ_GGUF_VTYPE_I32 = 5,
  MQ_GGUF_VTYPE_F32 = 6,
  MQ_GGUF_VTYPE_BOOL = 7,
  MQ_GGUF_VTYPE_STRING = 8,
  MQ_GGUF_VTYPE_ARRAY = 9,
  MQ_GGUF_VTYPE_U64 = 10,
  MQ_GGUF_VTYPE_I64 = 11,
  MQ_GGUF_VTYPE_F64 = 12,
  MQ_GGUF_VTYPE_COUNT = 13
} mq_gguf_vtype;

/* One metadata pair. Values stay in the mapping (little-endian bytes). */
typedef struct mq_gguf_kv {
  const char *key;         /* NUL-terminated copy, owned by the file */
  mq_gguf_vtype type;      /* MQ_GGUF_VTYPE_ARRAY for arrays */
  mq_gguf_vtype elem_type; /* element type of an array; == type for a scalar */
  uint64_t count;          /* array elements; 1 for a scalar */
  const uint8_t *data;     /* first element (for strings: its u64 length) */
  const uint8_t **strs;    /* arrays of strings: each element's u64 length
                            * field, count entries (owned); else NULL */
} mq_gguf_kv;

typedef struct mq_gguf_tensor {
  const char *name;             /* NUL-terminated copy, owned by the file */
  uint32_t type;                /* ggml type id (quant/gguf_types.h) */
  int n_dims;                   /* 0..4 */
  int64_t ne[MQ_GGUF_MAX_DIMS]; /* GGUF order: ne[0] is the row length
                                 * (contiguous), = PyTorch's last dim; 1 past n_dims */
  uint64_t n_elems;
  uint64_t offset;     /* from the start of the data section */
  uint64_t nbytes;     /* ne[0]/blck * type_size * ne[1] * ne[2] * ne[3] */
  const uint8_t *data; /* inside the mapping; aligned to the file's alignment
                        * relative to the file start */
} mq_gguf_tensor;

typedef struct mq_gguf_file {
  char *path;    /* label used in messages */
  mq_mapped map; /* empty when parsed from a caller's buffer */
  uint64_t size; /* bytes of the file */
  uint32_t version;
  uint64_t alignment;   /* general.alignment, or 32 */
  uint64_t data_offset; /* absolute offset of the data section */
  mq_gguf_kv *kvs;      /* file order */
  int n_kv;
  mq_gguf_tensor *tensors; /* file order */
  int n_tensors;
  mq_strmap kv_index;     /* key -> index into kvs */
  mq_strmap tensor_index; /* name -> index into tensors */
} mq_gguf_file;

/* Parse and validate buf[0..len) (borrowed: must outlive *out). label names
 * the file in messages. On failure *out is left empty. */
int mq_gguf_parse(const uint8_t *buf, uint64_t len, const char *label, mq_gguf_file *out,
                  mq_err *err);
/* Map path and parse it; *out owns the mapping. */
int mq_gguf_open(const char *path, mq_gguf_file *out, mq_err *err);
void mq_gguf_close(mq_gguf_file *f);

/* "u32", "string", "array" ... ("invalid" when out of range). */
const char *mq_gguf_vtype_name(uint32_t t);

/* ---- metadata ---- */

/* The pair with this key, or NULL. */
const mq_gguf_kv *mq_gguf_find_kv(const mq_gguf_file *f, const char *key);

/* Typed getters. Each returns MQ_OK, or MQ_ERR_FORMAT naming the file and key
 * when the key is absent or its value does not have the asked-for kind.
 * Integer getters accept a scalar of any integer type whose value fits (GGUF
 * writers differ in the width they use for counts); f32 accepts f32 and f64;
 * bool accepts bool only. Use mq_gguf_find_kv first for optional keys. */
int mq_gguf_get_u32(const mq_gguf_file *f, const char *key, uint32_t *out, mq_err *err);
int mq_gguf_get_i32(const mq_gguf_file *f, const char *key, int32_t *out, mq_err *err);
int mq_gguf_get_u64(const mq_gguf_file *f, const char *key, uint64_t *out, mq_err *err);
int mq_gguf_get_f32(const mq_gguf_file *f, const char *key, float *out, mq_err *err);
int mq_gguf_get_bool(const mq_gguf_file *f, const char *key, int *out, mq_err *err);
/* A string value: *s points into the mapping (not NUL-terminated), *len bytes. */
int mq_gguf_get_str(const mq_gguf_file *f, const char *key, const char **s, uint64_t *len,
                    mq_err *err);
/* An array whose elements have type elem (or any type when elem is
 * MQ_GGUF_VTYPE_COUNT); *out is the pair, read it with the mq_gguf_arr_*
 * functions below. */
int mq_gguf_get_arr(const mq_gguf_file *f, const char *key, mq_gguf_vtype elem,
                    const mq_gguf_kv **out, mq_err *err);

/* Element i (< kv->count) of a pair's value; also work on scalars (i = 0).
 * _int: any integer or bool type, 0 on success, -1 if the type is not an
 * integer or the value does not fit in int64 (a u64 above INT64_MAX).
 * _f32: f32 or f64 (converted), 0 / -1.
 * _str: string elements: pointer into the mapping, *len bytes; NULL if the
 * value is not a string. */
int mq_gguf_arr_int(const mq_gguf_kv *kv, uint64_t i, int64_t *out);
int mq_gguf_arr_f32(const mq_gguf_kv *kv, uint64_t i, float *out);
const char *mq_gguf_arr_str(const mq_gguf_kv *kv, uint64_t i, uint64_t *len);

/* ---- tensors ---- */

const mq_gguf_tensor *mq_gguf_find_tensor(const mq_gguf_file *f, const char *name);
/* "[64, 512]" (GGUF order, ne[0] first) into buf, for messages. */
const char *mq_gguf_shape_str(const mq_gguf_tensor *t, char *buf, int cap);

#endif
