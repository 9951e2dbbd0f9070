/* decoder_impl: the decoder's internals shared by its loader (models/decoder.c) and its forward
 * pass (models/decoder_forward.c): the weights, the per-architecture row and the KV cache
 * layout. Not for use outside engine/models/decoder*.c; the public API is models/decoder.h. */
#ifndef INFERD_DECODER_IMPL_H
#define INFERD_DECODER_IMPL_H

#include "models/decoder.h"
#include "models/weights.h"
#include "ops/emb_table.h"
#include "ops/kv.h"

/* What differs between architectures, beyond what config.json says. */
enum dec_family {
    DEC_GPT2,  /* LayerNorm, learned positions, fused Conv1D c_attn, GELU MLP, tied head */
    DEC_LLAMA, /* RMSNorm, RoPE, separate q/k/v (fused here), gated MLP (SwiGLU, GeGLU) */
};

/* A row of the variant table (models/decoder.c variants[]): the family and the steps of the
 * LLaMA layer an architecture adds or changes. */
struct dec_variant {
    const char *model_type;
    enum dec_family family;
    bool qkv_bias;    /* q, k, v projections always have biases (Qwen2), o_proj none */
    bool qk_norm;     /* per-head RMSNorm of q and k before RoPE: q_norm, k_norm (Qwen3, Gemma 3) */
    bool norm_plus_1; /* RMSNorms scale by (1 + w): 1 is added to every weight at load (Gemma) */
    bool embed_scale; /* embeddings multiplied by sqrt(hidden_size) (Gemma) */
    bool sandwich;    /* norms after attention and around the MLP: post_attention_layernorm on
                         the attention output, pre_ and post_feedforward_layernorm (Gemma 2/3) */
    bool fused;       /* q, k, v stored as one qkv_proj, gate and up as gate_up_proj (Phi-3) */
};

struct dec_layer {
    struct norm_weights ln_attn, ln_mlp; /* before attention, before the MLP */
    struct norm_weights post_attn, post_mlp; /* sandwich: on the attention and MLP outputs */
    struct norm_weights q_norm, k_norm;      /* qk_norm: (head_dim) each */
    struct linear qkv;                   /* H -> (n_heads + 2 n_kv_heads) head_dim: q | k | v */
    struct linear o;                     /* n_heads head_dim -> H */
    struct linear up;   /* GPT-2: c_fc H -> I with GELU fused; LLaMA: gate | up, H -> 2I */
    struct linear down; /* I -> H */
    int window;         /* sliding window of this layer, 0: none */
    int rope;           /* which of the model's RoPEs rotates this layer (0: global) */
    float attn_scale;   /* scores multiplier */
};

/* The RoPEs a model has: the global one, and Gemma 3's local one for its sliding layers. */
#define DEC_MAX_ROPES 2

struct decoder_model {
    struct hf_config cfg;
    const struct dec_variant *v;
    int H, I, n_heads, n_kv_heads, head_dim, n_layers;
    int q_dim, kv_dim, qkv_dim; /* n_heads * head_dim, n_kv_heads * head_dim, q + 2 kv */
    int rot_dim;                /* dimensions RoPE rotates per head (partial_rotary_factor) */
    int64_t vocab, max_pos;
    float eps;
    enum act act;        /* GPT-2's MLP activation; LLaMA: the gate's (SiLU, GELU tanh) */
    float embed_scale;   /* embeddings multiplier (1, or sqrt(H) in float32) */
    float attn_softcap;  /* 0 or Gemma 2's attn_logit_softcapping */
    float final_softcap; /* 0 or Gemma 2's final_logit_softcapping */

    struct emb_table wte; /* (vocab, H) token embeddings in the compute dtype */
    float *wpe; /* GPT-2: (max_pos, H) learned positions */
    struct dec_layer *layers;
    struct norm_weights ln_f;
    bool has_head;         /* false: a backbone (decoder_load_backbone), no lm_head */
    struct linear lm_head; /* H -> vocab (tied: a packed copy of wte) */

    /* LLaMA: n_ropes RoPEs; inv_freq (rot_dim / 2) for every step that does not depend on
     * length. rope_switch: a longrope's original length (0: none), past which a sequence is
     * rotated with the long factors at every position, its cache recomputed (decoder_seq ids) */
    struct rope_params rope[DEC_MAX_ROPES];
    float *inv_freq[DEC_MAX_ROPES];
    int n_ropes;
    int64_t rope_switch;
};

/* One sequence's KV cache, per layer: k[l] the keys in ops/kv.h's blocked layout (RoPE
 * applied), v[l] (cap, kv_dim) the values, kv head g of position p at p * kv_dim + g * hd.
 * cap is a multiple of KV_BLOCK and may pass max_tokens by less than a block. */
struct decoder_seq {
    const struct decoder_model *d;
    int n_layers;   /* d's, kept so that freeing never reads d (it may be gone by then) */
    int len;        /* cached positions */
    int cap;        /* allocated positions */
    int max_tokens; /* cap may grow up to this */
    float **k, **v; /* (n_layers) each */
    int32_t *ids;   /* (cap) the cached tokens, kept when the model has a rope_switch */
};

/* The decoder of w (its dir set, its files open) without lm_head, for what needs only the final
 * hidden states (decoder_step.hidden): the sentence embeddings of a decoder
 * (models/encoder_causal.c). A *ForCausalLM checkpoint's lm_head is left out, a bare *Model's
 * (MistralModel, Qwen3Model) has none. w->prefix is kept. */
int decoder_load_backbone(struct weights *w, enum dtype_compute dt, struct dnn_ctx *ctx,
                          struct decoder_model **out, struct err *e);

/* Grows s so that it holds at least n positions (n <= max_tokens). */
int decoder_seq_reserve(struct decoder_seq *s, int n, struct err *e);

#endif
