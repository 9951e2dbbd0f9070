/* bart_impl: the BART-like model's internals shared by its loader (models/bart.c) and its
 * forward passes (models/bart_forward.c): the variant row, the weights and the per-sequence
 * state. Not for use outside engine/models/bart*.c; the public API is models/bart.h. */
#ifndef INFERD_BART_IMPL_H
#define INFERD_BART_IMPL_H

#include "models/bart.h"
#include "models/s2s_kv.h"
#include "ops/emb_table.h"

/* Where position embeddings come from. */
enum bart_pos {
    BART_POS_LEARNED,   /* embed_positions.weight (max_pos + 2, D), position p at row p + 2 */
    BART_POS_SIN_HALF,  /* Marian, Pegasus: (max_pos, D), row p = [sin(p w_j) | cos(p w_j)],
                           w_j = 10000^(-2j/D); the checkpoint's copy when it has one */
    BART_POS_SIN_FAIRSEQ, /* M2M100: row p + pad + 1 of fairseq's table (float32 arithmetic,
                             w_j = exp(-j ln(10000) / (D/2 - 1))), never in the checkpoint */
};

/* One model_type's structure. */
struct bart_variant {
    const char *model_type;
    enum bart_pos pos;
    bool pre_norm;       /* LayerNorm before each block (else after the residual add) */
    bool ln_embedding;   /* layernorm_embedding after embeddings + positions */
    bool final_ln;       /* encoder.layer_norm and decoder.layer_norm after the layers */
};

struct bart_attn {
    struct linear qkv;        /* self: D -> 3 D, q | k | v */
    struct linear q, kv;      /* cross: D -> D (decoder side), D -> 2 D (encoder side) */
    struct linear o;          /* D -> D */
    struct norm_weights ln;   /* its LayerNorm (self_attn_layer_norm, encoder_attn_layer_norm) */
};

struct bart_ff {
    struct linear fc1, fc2;  /* fc1 with the activation fused */
    struct norm_weights ln;  /* final_layer_norm of the layer */
};

struct bart_layer {
    struct bart_attn self, cross; /* cross: decoder layers only */
    struct bart_ff ff;
};

/* One stack's embedding side and layers. */
struct bart_stack {
    const struct emb_table *embed; /* (vocab, D) its token embeddings (the shared ones, or
                                      Marian's own decoder embeddings) */
    float *pos;                   /* (n_pos, D) rows by position id (offset included) */
    int64_t n_pos;
    int pos_offset;               /* row of position 0 */
    struct norm_weights ln_emb;   /* layernorm_embedding (variant) */
    struct norm_weights ln_final; /* layer_norm (variant) */
    struct bart_layer *layers;
    int n_layers, n_heads, head_dim, ffn;
};

struct bart_model {
    struct hf_config cfg;
    const struct bart_variant *v;
    int D;
    int64_t vocab, max_pos;
    float eps, embed_scale, attn_scale_enc, attn_scale_dec;
    enum act act;
    int32_t start_token;
    struct emb_table shared;    /* (vocab, D) model.shared.weight (the encoder's own copy when
                                   Marian's stacks do not share), in the compute dtype */
    struct emb_table dec_embed; /* Marian without shared embeddings: the decoder's (rows 0:
                                   none) */
    struct bart_stack enc, dec;
    struct linear lm_head;    /* D -> vocab */
    float *final_logits_bias; /* (vocab) or NULL */
    bool classify;
    struct linear cls_dense, cls_out; /* classification_head: D -> D (tanh after), D -> labels */
    int num_labels;
};

/* One sequence (as t5_seq): per decoder layer, cross[l] (in_cap, 2 D) the cross k | v of each
 * input position and self[l] (cap, 2 D) the self k | v of each decoder position. */
struct bart_seq {
    const struct bart_model *m;
    struct s2s_kv kv; /* its n_layers: the decoder's, for freeing after the model is gone */
};

#endif
