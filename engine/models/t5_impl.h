/* t5_impl: the T5 model's internals shared by its loader (models/t5.c) and its forward passes
 * (models/t5_forward.c): the weights, the relative position bias tables and the per-sequence
 * state. Not for use outside engine/models/t5*.c; the public API is models/t5.h. */
#ifndef INFERD_T5_IMPL_H
#define INFERD_T5_IMPL_H

#include "models/s2s_kv.h"
#include "models/t5.h"
#include "ops/emb_table.h"

/* An attention block's projections; T5 linears have no biases. */
struct t5_attn {
    struct linear qkv; /* self-attention: D -> 3 inner, q | k | v */
    struct linear q;   /* cross-attention: D -> inner (decoder output side) */
    struct linear kv;  /* cross-attention: D -> 2 inner, k | v (encoder output side) */
    struct linear o;   /* inner -> D */
};

/* The feed-forward block: ff_in is wi (act fused) or, gated, wi_0 | wi_1 (no act: the gate's
 * activation times the linear half is computed after). */
struct t5_ff {
    float *ln; /* (D) its T5LayerNorm weight */
    struct linear in, out;
};

struct t5_enc_layer {
    float *ln_attn; /* (D) */
    struct t5_attn self;
    struct t5_ff ff;
};

struct t5_dec_layer {
    float *ln_self, *ln_cross; /* (D) each */
    struct t5_attn self, cross;
    struct t5_ff ff;
};

struct t5_model {
    struct hf_config cfg;
    int D, inner, I, n_heads, d_kv, n_enc, n_dec;
    int64_t vocab;
    int num_buckets, max_distance;
    float eps;
    enum act act; /* the FF activation (gelu_new for gated-gelu) */
    bool gated;
    bool scale_output; /* decoder output * D^-0.5 before the head */
    float output_scale;
    int32_t start_token;

    struct emb_table shared; /* (vocab, D) the embeddings of both stacks, compute dtype */
    struct t5_enc_layer *enc;
    struct t5_dec_layer *dec;
    float *enc_final_ln, *dec_final_ln; /* (D) */
    struct linear lm_head;              /* D -> vocab */

    /* Relative position bias per head and relative position r = key - query, clamped to
     * [-max_distance, max_distance] (buckets do not change past it):
     * rel[h * (2 max_distance + 1) + r + max_distance]. Encoder bidirectional, decoder causal. */
    float *enc_rel, *dec_rel;
};

/* One sequence: the encoder's contribution and the decoder's self-attention cache. Per
 * decoder layer l: cross[l] (in_cap, 2 inner) the cross-attention k | v of each input
 * position; self[l] (cap, 2 inner) the self-attention k | v of each decoder position. */
struct t5_seq {
    const struct t5_model *m;
    struct s2s_kv kv;
};

#endif
