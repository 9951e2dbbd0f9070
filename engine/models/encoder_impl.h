/* encoder_impl: the encoder's private types, shared by encoder.c (loading, embeddings,
 * layers, heads, passes) and encoder_relpos.c (the relative-position attention of MPNet and
 * DeBERTa-v2). Nothing outside engine/models/encoder*.c includes it. */
#ifndef INFERD_ENCODER_IMPL_H
#define INFERD_ENCODER_IMPL_H

#include "models/encoder.h"
#include "models/encoder_family.h"
#include "models/weights.h"
#include "ops/emb_table.h"

enum layout { LAYOUT_BERT, LAYOUT_DISTILBERT, LAYOUT_ALBERT, LAYOUT_MPNET, LAYOUT_DEBERTA };
enum pool_kind {
    POOL_BERT,    /* {p}pooler.dense + tanh, then classifier */
    POOL_ALBERT,  /* {p}pooler + tanh, then classifier */
    POOL_DISTIL,  /* pre_classifier + relu, then classifier */
    POOL_ROBERTA, /* classifier.dense + tanh, then classifier.out_proj */
    POOL_ELECTRA, /* classifier.dense + gelu, then classifier.out_proj */
    POOL_CONTEXT, /* DeBERTa's ContextPooler: pooler.dense + pooler_hidden_act, then classifier */
};

struct encoder;
struct encoder_run;

/* A family whose attention adds a relative-position bias to the scores (encoder_relpos.c). */
struct relpos_kind {
    /* Absolute position embeddings too (DeBERTa: position_biased_input). */
    bool (*abs_positions)(const struct hf_config *cfg);
    bool mask_embeddings; /* the embeddings are multiplied by the attention mask (DeBERTa) */
    /* After the layers: its tensors (all layers loaded) and config checks. */
    int (*load)(struct encoder *m, struct weights *w, struct dnn_ctx *ctx, struct err *e);
    /* Before the layers of a forward pass: what they all share (MPNet's bias block); may be
     * NULL. */
    int (*prepare)(const struct encoder *m, struct encoder_run *r, const struct encoder_batch *b,
                   struct err *e);
    /* Layer li's scale and score bias, from its q and k in r->qkv. */
    int (*layer)(const struct encoder *m, int li, struct encoder_run *r,
                 const struct encoder_batch *b, struct attn_bias *ab, struct err *e);
};

extern const struct relpos_kind relpos_mpnet, relpos_deberta;

struct variant {
    const char *model_type;
    const char *prefix; /* "bert." etc.; a bare *Model checkpoint has none */
    enum layout layout;
    enum pool_kind pool;
    bool roberta_positions; /* positions count from padding_idx + 1 over non-pad tokens */
    bool has_types;
    const struct relpos_kind *rel;       /* NULL: plain attention */
    const struct encoder_family *family; /* not NULL: its own layers (encoder_family.h) */
};

struct layer {
    struct linear qkv, o, ffn1, ffn2;
    struct norm_weights ln_att, ln_out;
};

struct encoder {
    struct hf_config cfg;
    const struct variant *v;
    enum encoder_head head;
    int H, I, E, n_heads, head_dim, n_layers;
    float eps;
    enum act act;
    char prefix[32];

    struct emb_table word;    /* (vocab, E) in the compute dtype (ops/emb_table.h) */
    float *pos, *type;        /* (n_pos, E), (n_type, E) */
    int64_t vocab, n_pos, n_type;
    struct norm_weights emb_ln;
    bool has_proj;
    struct linear proj; /* E -> H */

    struct layer *layers; /* ALBERT: groups * inner_group_num shared layers */
    int n_layer_weights;
    int *schedule; /* the layer applied at each step of the forward pass (ALBERT reuses) */
    int n_steps;

    /* heads */
    bool has_pool;
    struct linear pool, cls; /* cls: (labels | 2 | vocab) x H */
    enum act pool_act;       /* ACT_NONE means tanh for the pooler kinds that use it */
    bool pool_tanh;
    struct linear mlm_transform;
    struct norm_weights mlm_ln;
    size_t out_width;

    /* relative positions (encoder_relpos.c) */
    float *rel_table; /* MPNet: (buckets, heads); DeBERTa: per layer its (2 span, H) position
                         queries then keys, (n_layers, 2, 2 span, H) */
    int rel_span;     /* DeBERTa: the attention span (position_buckets or max positions) */
    float rel_scale;  /* DeBERTa: 1 / sqrt(head_dim * (1 + c2p + p2c)) */
    void *family_model; /* a variant's family: its own weights */
};

/* A batch of several sequences is run as passes of whole sequences of at most PASS_ROWS tokens,
 * spread over the OpenMP threads, each pass on one thread: a core then works on activations
 * that stay in its cache, and the threads never wait for each other inside a matmul (a
 * single sequence still splits each op over every thread). At most MAX_PASS_THREADS threads. */
#define PASS_ROWS 256
#define PASS_ALIGN 16
#define MAX_PASS_THREADS 64

struct pass_spec;

struct encoder_run {
    float *emb, *x, *qkv, *att, *tmp, *inter, *rows, *rows2, *out;
    size_t cap_emb, cap_x, cap_qkv, cap_att, cap_tmp, cap_inter, cap_rows, cap_rows2, cap_out;
    float *bias; /* the relative-position score bias (struct attn_bias) */
    size_t cap_bias;
    /* per pass thread: its activations and its single-threaded oneDNN context */
    struct encoder_run *sub[MAX_PASS_THREADS];
    struct dnn_ctx *sub_ctx[MAX_PASS_THREADS];
    struct pass_spec *passes; /* the passes of a split batch */
    int32_t *pass_order;      /* the sequences by length, then their lengths */
    int32_t *pass_ids;        /* a pass thread's ids, types and mask */
    size_t cap_passes, cap_pass_order, cap_pass_ids;
    encoder_stop_fn stop; /* the cancel hook, asked between layers and passes */
    void *stop_arg;
    void *family_run; /* a variant's family: its own activations, freed by family_run_free */
    void (*family_run_free)(void *run);
};

#endif
