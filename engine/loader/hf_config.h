/* hf_config: a model directory's config.json as plain C data (no jansson types leak out).
 * Owns the label strings and lists it allocates; knows nothing of weights or architectures.
 *
 * Unified names: whatever the source spelling (BERT hidden_size, DistilBERT dim, GPT-2 n_embd,
 * T5 d_model, ...), after hf_config_load the sizes are in the generic fields below; missing
 * optional keys take the defaults of the HF config class of that model_type. Required: model_type,
 * vocab_size, hidden size, layer count, head count and intermediate size (under any of their
 * names; GPT-2's n_inner may be null = 4 * n_embd). A missing required key, a wrong JSON type or
 * an impossible value is ERR_FORMAT naming config.json and the key. JSON null counts as absent. */
#ifndef INFERD_HF_CONFIG_H
#define INFERD_HF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define HF_NAME_SIZE 64

enum hf_problem_type {
    HF_PROBLEM_NONE, /* absent or null: the head decides (HF: by num_labels and label dtype) */
    HF_PROBLEM_SINGLE_LABEL,
    HF_PROBLEM_MULTI_LABEL,
    HF_PROBLEM_REGRESSION,
};

/* RoPE scaling (config "rope_scaling", or transformers 5 "rope_parameters"). */
struct hf_rope_scaling {
    bool present;                             /* false: plain RoPE ("default" type or absent) */
    char type[HF_NAME_SIZE];                  /* "linear", "dynamic", "llama3", "yarn", ... */
    double factor;                            /* 0 when absent */
    double low_freq_factor;                   /* llama3; 0 when absent */
    double high_freq_factor;                  /* llama3; 0 when absent */
    int64_t original_max_position_embeddings; /* 0 when absent (longrope: also top-level) */
    /* longrope (Phi-3): the per-frequency factors below and above the original length
     * (n_factors each, malloc'ed), and the cos/sin multiplier (0 when absent: derived) */
    double *short_factor, *long_factor;
    size_t n_factors;
    double attention_factor;
    char *json; /* the whole object as compact JSON (malloc'ed), or NULL */
};

struct hf_config {
    char model_type[HF_NAME_SIZE]; /* "bert", "roberta", "xlm-roberta", "distilbert", ... */
    char architecture[128];        /* architectures[0], "" when absent */

    /* generic sizes, whatever the source names */
    int64_t vocab_size;
    int64_t hidden_size;             /* hidden_size | dim | n_embd | d_model */
    int64_t num_hidden_layers;       /* num_hidden_layers | n_layers | n_layer | num_layers */
    int64_t num_attention_heads;     /* num_attention_heads | n_heads | n_head | num_heads */
    int64_t intermediate_size;       /* intermediate_size | hidden_dim | n_inner | d_ff */
    int64_t head_dim;                /* head_dim | d_kv, else hidden_size / heads */
    int64_t embedding_size;          /* ALBERT/ELECTRA embedding_size, else hidden_size */
    char hidden_act[HF_NAME_SIZE];   /* hidden_act | activation | activation_function;
                                        T5: dense_act_fn (from feed_forward_proj) */
    int64_t max_position_embeddings; /* max_position_embeddings | n_positions; 0 for T5 */
    int64_t type_vocab_size;         /* 0 for models without token types */
    double layer_norm_eps;           /* layer_norm_eps | layer_norm_epsilon | rms_norm_eps */
    bool tie_word_embeddings;        /* HF default true; false for llama, mistral, qwen2/3, phi3 */

    /* special ids: -1 when absent or null */
    int64_t pad_token_id;
    int64_t bos_token_id;   /* a list keeps its first element */
    int64_t *eos_token_ids; /* eos_token_id, int or list (malloc'ed) */
    size_t n_eos_token_ids;
    int64_t decoder_start_token_id;

    /* labels: id2label[0..num_labels), validated (ids 0..n-1 all present, label2id agrees).
     * Neither id2label nor num_labels in the file: HF's default LABEL_0, LABEL_1 with
     * labels_default set, so a head may trust its classifier's shape instead. */
    char **id2label;
    size_t num_labels;
    bool labels_default;
    enum hf_problem_type problem_type;

    /* encoder-family details */
    char position_embedding_type[HF_NAME_SIZE]; /* only "absolute" loads */
    int64_t position_offset;   /* first position id: 0, or pad_token_id + 1 for RoBERTa
                                  and XLM-R (whose padding tokens take pad_token_id) */
    bool sinusoidal_pos_embds; /* DistilBERT */
    int64_t num_hidden_groups; /* ALBERT, else 1 */
    int64_t inner_group_num;   /* ALBERT, else 1 */
    /* ModernBERT (rope_theta holds global_rope_theta, default 160000; sliding_window holds
     * local_attention, default 128: a local layer's token sees the keys within
     * local_attention / 2 on either side; sliding_layers its local layers) */
    double local_rope_theta;        /* default 10000 */
    bool norm_bias;                 /* LayerNorms with a bias (default false) */
    bool classifier_bias;           /* the head's dense layer has a bias (default false) */
    bool decoder_bias;              /* the MLM decoder has a bias (default true) */
    char classifier_pooling[8];     /* "cls" (default) or "mean" */
    char classifier_activation[HF_NAME_SIZE]; /* the head's activation (default "gelu") */

    /* decoder details */
    int64_t num_key_value_heads; /* default num_attention_heads */
    double rope_theta;           /* default 10000 */
    struct hf_rope_scaling rope_scaling;
    int64_t sliding_window; /* 0 = none (absent, null, or use_sliding_window false; Mistral's
                               and Gemma 2/3's default 4096, Qwen2/3's use_sliding_window
                               default false) */
    /* Which layers use the sliding window, from "layer_types" ("sliding_attention" or
     * "full_attention" per layer) or without it: for Qwen2/3 layers >= max_window_layers, for
     * Gemma 2 every other layer from 0, for Gemma 3 all but every sliding_window_pattern-th
     * (default 6).
     * (num_hidden_layers) flags, malloc'ed; NULL: every layer uses sliding_window. */
    bool *sliding_layers;
    int64_t max_window_layers; /* Qwen2 and Qwen3, default 28 */
    /* LLaMA: q, k, v and o projections have biases; gate, up and down have (default false) */
    bool attention_bias, mlp_bias;
    /* GPT-2: scores / sqrt(head_dim) (default true); also / (layer index + 1) (default false) */
    bool scale_attn_weights, scale_attn_by_inverse_layer_idx;
    /* Gemma 2/3: scores scaled by query_pre_attn_scalar ** -0.5 (default 256); 0: absent, the
     * scale is head_dim's */
    double query_pre_attn_scalar;
    /* Gemma 2: cap * tanh(x / cap) on attention scores (default 50) and on the final logits
     * (default 30); 0: none (absent for other families, or null) */
    double attn_logit_softcapping, final_logit_softcapping;
    /* Gemma 3: the RoPE base of the sliding-window layers, which have no rope scaling
     * (default 10000); 0: every layer uses rope_theta and rope_scaling */
    double rope_local_base_freq;
    /* Phi-3: the fraction of head_dim that RoPE rotates (default 1) */
    double partial_rotary_factor;

    /* DeBERTa-v2 (DebertaV2Config's defaults) */
    struct hf_deberta {
        bool relative_attention;        /* default false */
        int64_t max_relative_positions; /* < 1 in the file: max_position_embeddings */
        int64_t position_buckets;       /* <= 0: plain relative positions (default -1) */
        bool share_att_key;             /* default false */
        bool c2p, p2c;                  /* pos_att_type, a list or a "p2c|c2p" string */
        bool norm_rel_ebd;              /* norm_rel_ebd names "layer_norm" */
        bool position_biased_input;     /* default true: absolute position embeddings */
        int64_t conv_kernel_size;       /* default 0: no convolution layer */
        int64_t pooler_hidden_size;     /* default hidden_size */
        char pooler_hidden_act[HF_NAME_SIZE]; /* default "gelu" */
    } deberta;

    /* T5 */
    int64_t num_decoder_layers; /* default num_hidden_layers */
    int64_t relative_attention_num_buckets; /* T5, MPNet (default 32) */
    int64_t relative_attention_max_distance;
    char feed_forward_proj[HF_NAME_SIZE]; /* "relu", "gated-gelu", ... */
    bool is_gated_act;
    bool is_encoder_decoder;
    int scale_decoder_outputs; /* transformers 5's flag: 1 true, 0 false, -1 absent or null */

    /* BART-like encoder-decoders (bart, mbart, marian, m2m100, pegasus); the encoder's sizes
     * are the generic ones (encoder_layers, encoder_attention_heads, encoder_ffn_dim), the
     * decoder's layer count is num_decoder_layers (decoder_layers) */
    struct hf_seq2seq {
        int64_t decoder_attention_heads; /* default: the config class's */
        int64_t decoder_ffn_dim;         /* default: the config class's */
        bool scale_embedding;            /* embeddings * sqrt(d_model) */
        bool share_encoder_decoder_embeddings; /* Marian (default true); others always */
    } s2s;
};

/* Reads DIR/config.json into cfg (which need not be initialized). On failure cfg holds
 * nothing to free. */
int hf_config_load(const char *dir, struct hf_config *cfg, struct err *e);

/* The model_types a caller runs, checked before any other key of config.json. */
struct hf_accept {
    const char *const *names;
    size_t n;
    const char *for_; /* "the encoder tasks", "text generation" (for the message) */
};

/* hf_config_load that refuses a model_type outside accept (NULL: the types of
 * hf_config_model_types) first, with hf_config_unsupported's message. */
int hf_config_load_for(const char *dir, const struct hf_accept *accept, struct hf_config *cfg,
                       struct err *e);

/* Same, from JSON text; `what` names the source in messages (e.g. a path). */
int hf_config_parse(const char *json_text, size_t len, const char *what, struct hf_config *cfg,
                    struct err *e);

/* The model_types config.json may name (the table of per-type defaults): up to max into
 * out; returns how many there are. A model_type outside them fails hf_config_load first,
 * before any other key is read, with hf_config_unsupported's message. */
size_t hf_config_model_types(const char **out, size_t max);

/* The one message for a model_type something does not run: ERR_FORMAT with
 * "WHAT: model_type 'TYPE' is not supported[ for FOR] (supported: A, B, ...)" (for may be
 * NULL or ""; names: the types that are, from the table of whoever checks). */
int hf_config_unsupported(struct err *e, const char *what, const char *model_type, const char *for_,
                          const char *const *names, size_t n);

/* Frees what hf_config_load allocated; cfg is zeroed. */
void hf_config_fini(struct hf_config *cfg);

#endif
