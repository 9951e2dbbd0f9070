/* safetensors: opens a model's weights (one model.safetensors, or the shards named by
 * model.safetensors.index.json), maps each file read-only and validates it completely before
 * handing out tensor views. Owns the mmaps, names and the name -> tensor hash; does not know
 * which tensors an architecture needs (each model loader does, through models/weights.h).
 *
 * The file format, field by field:
 *   bytes 0..8      N, the header length, unsigned 64-bit little-endian
 *   bytes 8..8+N    a JSON object (UTF-8, may be right-padded with spaces):
 *                     "<tensor name>": {"dtype": "F16", "shape": [30522, 128],
 *                                       "data_offsets": [begin, end]}, ...
 *                     "__metadata__": {"format": "pt", ...}   optional, string -> string
 *   bytes 8+N..     the data buffer; a tensor's bytes are buffer[begin, end), row-major,
 *                   little-endian, end - begin == product(shape) * dtype size.
 * Checked at open: N fits the file and is at most 100 MB, the JSON is valid with no duplicate
 * keys, it names at least one tensor, every dtype is known, shapes are non-negative integers
 * whose product does not overflow, offsets lie within the buffer with begin <= end and the right
 * byte count, no two tensors overlap; for a sharded index the weight_map is not empty, every
 * named shard exists, each tensor is in the shard the index names, and no name appears in two
 * shards. Messages name the file and the tensor.
 *
 * After open the object is read-only: lookups from many threads at once are safe. A file
 * truncated by someone else after it was mapped is outside what validation can catch. */
#ifndef INFERD_SAFETENSORS_H
#define INFERD_SAFETENSORS_H

#include <stddef.h>

#include "err.h"
#include "loader/tensor.h"

struct safetensors;

/* Opens DIR/model.safetensors if present, else DIR/model.safetensors.index.json and its
 * shards. Neither present: ERR_NOT_FOUND. Unreadable: ERR_IO. Invalid: ERR_FORMAT. *out is
 * set only on success. */
int safetensors_open(const char *dir, struct safetensors **out, struct err *e);

/* Opens and validates one .safetensors file, by path. */
int safetensors_open_file(const char *path, struct safetensors **out, struct err *e);

/* Unmaps everything; every view handed out dies with it. NULL is a no-op. */
void safetensors_close(struct safetensors *st);

/* The tensor called name, or NULL. The view lives until safetensors_close. */
const struct tensor *safetensors_get(const struct safetensors *st, const char *name);

/* All tensors, sorted by name: index 0 .. safetensors_count() - 1. */
size_t safetensors_count(const struct safetensors *st);
const struct tensor *safetensors_at(const struct safetensors *st, size_t i);

/* Number of files mapped (1, or the number of shards). */
size_t safetensors_n_files(const struct safetensors *st);

/* A "__metadata__" string value of the first file (e.g. "format" -> "pt"), or NULL. */
const char *safetensors_metadata(const struct safetensors *st, const char *key);

#endif
