/* s2s_kv: the cache of one encoder-decoder sequence (struct t5_seq, struct bart_seq): per
 * decoder layer, the cross-attention keys and values of its input positions and the
 * self-attention keys and values of its decoder positions, a row of 2 * width floats per
 * position (keys, then values), grown as the sequence gets longer (doubling from 16) within
 * its room. A failure leaves what it holds valid. The beams of one search fork their caches
 * with s2s_kv_fork: a fork reads the cross keys and values of the cache that encoded the input
 * (input_of) instead of a copy of them, so a step's beams share one input in memory. */
#ifndef INFERD_S2S_KV_H
#define INFERD_S2S_KV_H

#include <stddef.h>

#include "err.h"

struct s2s_kv {
    int n_layers;
    size_t row;                    /* floats per position: 2 * width */
    int in_len, in_cap, max_input; /* in_len 0: not encoded */
    int len, cap, max_tokens;
    float **cross, **self; /* (n_layers) each: its own buffers */
    /* NULL: its input is its own cross; else the cache whose cross it reads (a beam forked
     * from it; that cache outlives the search's steps: the beams are retired together) */
    const struct s2s_kv *input_of;
};

/* (in_len, row) the cross-attention keys | values of layer l that kv reads. */
static inline const float *s2s_kv_cross(const struct s2s_kv *kv, int l)
{
    return (kv->input_of ? kv->input_of : kv)->cross[l];
}

/* An empty cache with room for max_input input and max_tokens decoder positions (each
 * >= 1, else ERR_INVALID); on failure kv holds nothing to free. */
int s2s_kv_init(struct s2s_kv *kv, int n_layers, int width, int max_input, int max_tokens,
                struct err *e);
void s2s_kv_fini(struct s2s_kv *kv);
/* Holds nothing: no input encoded, no decoder position, shares nothing. */
void s2s_kv_reset(struct s2s_kv *kv);
/* Grows kv so that it holds n_in input positions and n decoder positions (within its room);
 * a cache reading another's input grows no cross buffers. */
int s2s_kv_reserve(struct s2s_kv *kv, int n_in, int n, struct err *e);
/* Before an encode: kv's input becomes its own again, with room for n_in positions. */
int s2s_kv_own_input(struct s2s_kv *kv, int n_in, struct err *e);
/* dst becomes a copy of src (the same layers and width), its input its own. */
int s2s_kv_copy(struct s2s_kv *dst, const struct s2s_kv *src, struct err *e);
/* dst becomes a beam forked from src (both of one search): src's decoder positions copied,
 * src's input read where src reads it, never copied. */
int s2s_kv_fork(struct s2s_kv *dst, const struct s2s_kv *src, struct err *e);

#endif
