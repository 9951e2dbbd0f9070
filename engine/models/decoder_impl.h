/* decoder_impl: the decoder's internals shared by its loader (models/decoder.c) and its forward
 * pass (models/decoder_forward.c): the weights, the per-architecture row and the KV cache
 * layout. Not for use outside engine/models/decoder*.c; the public API is models/decoder.h. */
#ifndef INFERD_DECODER_IMPL_H
#define INFERD_DECODER_IMPL_H

#include "models/decoder.h"
#include "models/weights.h"
#include "ops/kv.h"

/* What differs between architectures, beyond what config.json says. */
enum dec_family {
    DEC_GPT2,  /* LayerNorm, learned positions, fused Conv1D c_attn, GELU MLP, tied head */
    DEC_LLAMA, /* RMSNorm, RoPE, separate q/k/v (fused here), SwiGLU MLP */
};

struct dec_variant {
    const char *model_type;
    enum dec_family family;
    bool qkv_bias; /* q, k, v projections always have biases (Qwen2), o_proj none */
};

struct dec_layer {
    struct norm_weights ln_attn, ln_mlp; /* before attention, before the MLP */
    struct linear qkv;                   /* H -> (n_heads + 2 n_kv_heads) head_dim: q | k | v */
    struct linear o;                     /* n_heads head_dim -> H */
    struct linear up;   /* GPT-2: c_fc H -> I with GELU fused; LLaMA: gate | up, H -> 2I */
    struct linear down; /* I -> H */
    int window;         /* sliding window of this layer, 0: none */
    float attn_scale;   /* scores multiplier */
};

struct decoder_model {
    struct hf_config cfg;
    const struct dec_variant *v;
    int H, I, n_heads, n_kv_heads, head_dim, n_layers;
    int q_dim, kv_dim, qkv_dim; /* n_heads * head_dim, n_kv_heads * head_dim, q + 2 kv */
    int64_t vocab, max_pos;
    float eps;
    enum act act; /* GPT-2's MLP activation (LLaMA: SiLU in SwiGLU) */

    float *wte; /* (vocab, H) token embeddings */
    float *wpe; /* GPT-2: (max_pos, H) learned positions */
    struct dec_layer *layers;
    struct norm_weights ln_f;
    struct linear lm_head; /* H -> vocab (tied: a packed copy of wte) */

    struct rope_params rope; /* LLaMA */
    float *inv_freq;         /* (head_dim / 2) for every step that does not depend on length */
};

/* One sequence's KV cache, per layer: k[l] the keys in ops/kv.h's blocked layout (RoPE
 * applied), v[l] (cap, kv_dim) the values, kv head g of position p at p * kv_dim + g * hd.
 * cap is a multiple of KV_BLOCK and may pass max_tokens by less than a block. */
struct decoder_seq {
    const struct decoder_model *d;
    int len;        /* cached positions */
    int cap;        /* allocated positions */
    int max_tokens; /* cap may grow up to this */
    float **k, **v; /* (n_layers) each */
};

/* Grows s so that it holds at least n positions (n <= max_tokens). */
int decoder_seq_reserve(struct decoder_seq *s, int n, struct err *e);

#endif
