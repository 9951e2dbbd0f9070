/* tensor: element types of model files and the read-only tensor view the loader hands out.
 * A view never owns memory: its name and data belong to whatever opened the file (the
 * safetensors object keeps them alive until safetensors_close). Also owns the conversion of
 * F32/F16/BF16 data to float, exact to the bit, including subnormals, infinities and NaN. */
#ifndef INFERD_TENSOR_H
#define INFERD_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* The safetensors element types we accept (their header spelling in dtype_name). */
enum dtype {
    DTYPE_F32,
    DTYPE_F16,
    DTYPE_BF16,
    DTYPE_F64,
    DTYPE_I64,
    DTYPE_I32,
    DTYPE_I16,
    DTYPE_I8,
    DTYPE_U8,
    DTYPE_BOOL,
    DTYPE_COUNT
};

/* Highest rank a view can carry; a file with more dimensions is rejected at load. */
#define TENSOR_MAX_DIMS 8

/* A view of one tensor in a mapped file. shape[0] is the outermost (slowest) dimension, as in
 * PyTorch: a Linear weight is (out_features, in_features). data is contiguous, row-major and
 * little-endian; it is aligned only to 1 byte in general (safetensors does not promise more),
 * so read it through tensor_to_f32 or memcpy unless `aligned` says otherwise. */
struct tensor {
    const char *name; /* HF name, e.g. "bert.embeddings.word_embeddings.weight" */
    const char *file; /* path of the file holding it, for messages */
    enum dtype dtype;
    int n_dims; /* 0 (a scalar) .. TENSOR_MAX_DIMS */
    int64_t shape[TENSOR_MAX_DIMS];
    size_t n_elements; /* product of shape (1 for a scalar) */
    size_t size_bytes; /* n_elements * dtype_size(dtype) */
    const void *data;  /* read-only, inside an mmap */
    int aligned;       /* 1 when data is aligned to dtype_size(dtype) */
};

/* Bytes per element of t (1 for BOOL), 0 for an out-of-range value. */
size_t dtype_size(enum dtype t);

/* The safetensors spelling: "F32", "F16", "BF16", ... ("?" for an out-of-range value). */
const char *dtype_name(enum dtype t);

/* Parses a safetensors dtype string; returns 0, or ERR_FORMAT for an unknown one
 * (no message: the caller knows the file and tensor). */
int dtype_parse(const char *s, enum dtype *out);

/* IEEE binary16 and bfloat16 bit patterns to float (exact: every value of both is a float). */
float f16_to_f32(uint16_t h);
float bf16_to_f32(uint16_t b);

/* Converts all elements of t (F32, F16 or BF16) to float into dst[0..n). n must equal
 * t->n_elements. Other dtypes are ERR_FORMAT, a wrong n ERR_INVALID; messages name the
 * tensor. Uses the CPU's F16C instructions for F16 when present. */
int tensor_to_f32(const struct tensor *t, float *dst, size_t n, struct err *e);

#endif
