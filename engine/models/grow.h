/* grow: the buffers models keep and grow: the arrays of a per-worker run (struct encoder_run,
 * decoder_run, t5_run), grown to the largest call so far and never shrunk so that a warm
 * worker does not allocate; and a sequence's per-layer caches (decoder_seq, s2s_kv), grown as
 * it gets longer. A failure leaves every buffer valid, its contents kept. */
#ifndef INFERD_GROW_H
#define INFERD_GROW_H

#include <stddef.h>

#include "err.h"

/* Grows the array *pp (pp: the address of any object pointer, e.g. int32_t **) of *cap
 * elements of elem_size bytes to hold at least n, keeping its contents; no-op when it does. */
int grow_array(void *pp, size_t *cap, size_t n, size_t elem_size, struct err *e);

/* grow_array for float activations. */
static inline int grow_floats(float **buf, size_t *cap, size_t n, struct err *e)
{
    return grow_array(buf, cap, n, sizeof **buf, e);
}

/* n_layers buffers, one per layer, all NULL until grown; NULL when out of memory. */
float **layer_bufs_new(int n_layers);

/* Frees every layer's buffer and bufs; NULL is a no-op. */
void layer_bufs_free(float **bufs, int n_layers);

/* Grows every layer's buffer to n floats, zeroing floats [zero_from, n) (zero_from >= n: none),
 * one layer at a time: a failure (ERR_NOMEM) leaves each at its old size or larger, contents
 * kept. */
int layer_bufs_grow(float **bufs, int n_layers, size_t n, size_t zero_from, struct err *e);

#endif
