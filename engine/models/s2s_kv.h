/* s2s_kv: the cache of one encoder-decoder sequence (struct t5_seq, struct bart_seq): per
 * decoder layer, the cross-attention keys and values of its input positions and the
 * self-attention keys and values of its decoder positions, a row of 2 * width floats per
 * position (keys, then values), grown as the sequence gets longer (doubling from 16) within
 * its room. A failure leaves what it holds valid. */
#ifndef INFERD_S2S_KV_H
#define INFERD_S2S_KV_H

#include <stddef.h>

#include "err.h"

struct s2s_kv {
    int n_layers;
    size_t row;                    /* floats per position: 2 * width */
    int in_len, in_cap, max_input; /* in_len 0: not encoded */
    int len, cap, max_tokens;
    float **cross, **self; /* (n_layers) each */
};

/* An empty cache with room for max_input input and max_tokens decoder positions (each
 * >= 1, else ERR_INVALID); on failure kv holds nothing to free. */
int s2s_kv_init(struct s2s_kv *kv, int n_layers, int width, int max_input, int max_tokens,
                struct err *e);
void s2s_kv_fini(struct s2s_kv *kv);
/* Holds nothing: no input encoded, no decoder position. */
void s2s_kv_reset(struct s2s_kv *kv);
/* Grows kv so that it holds n_in input positions and n decoder positions (within its room). */
int s2s_kv_reserve(struct s2s_kv *kv, int n_in, int n, struct err *e);
/* dst becomes a copy of src (the same layers and width). */
int s2s_kv_copy(struct s2s_kv *dst, const struct s2s_kv *src, struct err *e);
/* The same for the decoder positions only (dst's input is src's already). */
int s2s_kv_copy_decoder(struct s2s_kv *dst, const struct s2s_kv *src, struct err *e);

#endif
