/* t5: loading T5ForConditionalGeneration checkpoints (config.json + safetensors) into struct
 * t5_model, the relative position bias tables, and the per-sequence state; see models/t5.h.
 * The forward passes are models/t5_forward.c.
 *
 * Tensor names (inner = num_heads d_kv, D = d_model, I = d_ff, B = relative buckets):
 *   shared.weight (V, D)
 *   encoder.block.{l}.layer.0.SelfAttention.{q,k,v}.weight (inner, D), o.weight (D, inner),
 *       layer.0.SelfAttention.relative_attention_bias.weight (B, heads) in block 0 only,
 *       layer.0.layer_norm.weight (D), layer.1.DenseReluDense.{wi | wi_0, wi_1}.weight (I, D),
 *       wo.weight (D, I), layer.1.layer_norm.weight; encoder.final_layer_norm.weight
 *   decoder.block.{l}.layer.0.SelfAttention (as the encoder's, bias table in block 0),
 *       layer.1.EncDecAttention.{q,k,v,o}.weight, layer.1.layer_norm.weight,
 *       layer.2.DenseReluDense..., layer.2.layer_norm.weight; decoder.final_layer_norm.weight
 *   lm_head.weight (V, D) when not tied.
 * q, k, v of a self-attention become one linear; a cross-attention's k and v another (they
 * read the encoder output), gated wi_0 and wi_1 a third. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/grow.h"
#include "models/t5_impl.h"
#include "models/weights.h"

/* ---- tensors ---- */

/* `base`.`part`.weight (out, in) as one linear (part "": `base`.weight); T5 linears have no
 * biases. */
static int take_linear(struct weights *w, struct dnn_ctx *ctx, const char *base, const char *part,
                       int64_t in, int64_t out, enum dtype_compute dt, enum act act,
                       struct linear *l, struct err *e)
{
    char name[320];
    snprintf(name, sizeof name, "%s%s%s", base, *part ? "." : "", part);
    return weights_linear(w, ctx, name, in, out, false, dt, act, l, e);
}

/* `base`.`parts[i]`.weight (out, in) for i < n (at most 3) stacked along the output axis into
 * one linear (n out, in). */
static int take_stacked(struct weights *w, struct dnn_ctx *ctx, const char *base,
                        const char *const *parts, int n, int64_t out, int64_t in,
                        enum dtype_compute dt, struct linear *l, struct err *e)
{
    char names[3][320];
    const char *bases[3];
    int64_t outs[3];
    if (n > 3)
        return err_set(e, ERR_INTERNAL, "%s: %d parts stacked, at most 3", base, n);
    for (int i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "%s.%s", base, parts[i]);
        bases[i] = names[i];
        outs[i] = out;
    }
    return weights_stacked(w, ctx, bases, outs, n, in, false, dt, ACT_NONE, l, e);
}

/* ---- relative position buckets ---- */

int t5_relative_bucket(int relative_position, bool bidirectional, int num_buckets, int max_distance)
{
    /* transformers' _relative_position_bucket, element by element in its float32 arithmetic:
     * exact buckets for small distances, logarithmic ones up to max_distance, the last beyond;
     * bidirectional: half the buckets for keys after the query */
    int bucket = 0, rp = relative_position;
    if (bidirectional) {
        num_buckets /= 2;
        bucket = rp > 0 ? num_buckets : 0;
        rp = rp < 0 ? -rp : rp;
    } else {
        rp = rp < 0 ? -rp : 0;
    }
    int max_exact = num_buckets / 2;
    if (rp < max_exact)
        return bucket + rp;
    float ratio = (float)rp / (float)max_exact;
    float scale = (float)log((double)max_distance / (double)max_exact);
    float large = logf(ratio) / scale * (float)(num_buckets - max_exact);
    int b = max_exact + (int)large; /* .to(torch.long): toward zero */
    return bucket + (b < num_buckets - 1 ? b : num_buckets - 1);
}

/* rel[h][r + R] = table[bucket(r)][h] for r in [-R, R], R = max_distance. */
static int bias_table(const struct t5_model *m, const float *table, bool bidirectional, float **out,
                      struct err *e)
{
    int R = m->max_distance, W = 2 * R + 1;
    float *rel = malloc((size_t)m->n_heads * (size_t)W * sizeof *rel);
    if (!rel)
        return err_set(e, ERR_NOMEM, "out of memory");
    for (int r = -R; r <= R; r++) {
        int b = t5_relative_bucket(r, bidirectional, m->num_buckets, m->max_distance);
        for (int h = 0; h < m->n_heads; h++)
            rel[(size_t)h * (size_t)W + (size_t)(r + R)] =
                table[(size_t)b * (size_t)m->n_heads + h];
    }
    *out = rel;
    return 0;
}

static int take_bias(struct t5_model *m, struct weights *w, const char *stack, bool bidirectional,
                     float **rel, struct err *e)
{
    char name[256];
    snprintf(name, sizeof name, "%s.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
             stack);
    float *table = NULL;
    int rc = weights_take(w, name, m->num_buckets, m->n_heads, &table, e);
    if (rc == 0)
        rc = bias_table(m, table, bidirectional, rel, e);
    free(table);
    return rc;
}

/* ---- layers ---- */

static int load_self(struct t5_model *m, struct weights *w, struct dnn_ctx *ctx, const char *base,
                     enum dtype_compute dt, struct t5_attn *a, struct err *e)
{
    static const char *const qkv[] = {"q", "k", "v"};
    int rc = take_stacked(w, ctx, base, qkv, 3, m->inner, m->D, dt, &a->qkv, e);
    return rc ? rc : take_linear(w, ctx, base, "o", m->inner, m->D, dt, ACT_NONE, &a->o, e);
}

static int load_cross(struct t5_model *m, struct weights *w, struct dnn_ctx *ctx, const char *base,
                      enum dtype_compute dt, struct t5_attn *a, struct err *e)
{
    static const char *const kv[] = {"k", "v"};
    int rc = take_linear(w, ctx, base, "q", m->D, m->inner, dt, ACT_NONE, &a->q, e);
    if (rc == 0)
        rc = take_stacked(w, ctx, base, kv, 2, m->inner, m->D, dt, &a->kv, e);
    return rc ? rc : take_linear(w, ctx, base, "o", m->inner, m->D, dt, ACT_NONE, &a->o, e);
}

/* `base` = "{stack}.block.{l}.layer.{k}": its layer_norm and DenseReluDense. */
static int load_ff(struct t5_model *m, struct weights *w, struct dnn_ctx *ctx, const char *base,
                   enum dtype_compute dt, struct t5_ff *f, struct err *e)
{
    char n[256];
    snprintf(n, sizeof n, "%s.layer_norm.weight", base);
    int rc = weights_take(w, n, m->D, 0, &f->ln, e);
    snprintf(n, sizeof n, "%s.DenseReluDense", base);
    if (rc == 0 && m->gated) {
        static const char *const wi[] = {"wi_0", "wi_1"};
        rc = take_stacked(w, ctx, n, wi, 2, m->I, m->D, dt, &f->in, e);
    } else if (rc == 0) {
        rc = take_linear(w, ctx, n, "wi", m->D, m->I, dt, m->act, &f->in, e);
    }
    return rc ? rc : take_linear(w, ctx, n, "wo", m->I, m->D, dt, ACT_NONE, &f->out, e);
}

static int load_enc_layer(struct t5_model *m, struct weights *w, struct dnn_ctx *ctx, int l,
                          enum dtype_compute dt, struct err *e)
{
    struct t5_enc_layer *L = &m->enc[l];
    char n[128];
    snprintf(n, sizeof n, "encoder.block.%d.layer.0.layer_norm.weight", l);
    int rc = weights_take(w, n, m->D, 0, &L->ln_attn, e);
    snprintf(n, sizeof n, "encoder.block.%d.layer.0.SelfAttention", l);
    if (rc == 0)
        rc = load_self(m, w, ctx, n, dt, &L->self, e);
    snprintf(n, sizeof n, "encoder.block.%d.layer.1", l);
    return rc ? rc : load_ff(m, w, ctx, n, dt, &L->ff, e);
}

static int load_dec_layer(struct t5_model *m, struct weights *w, struct dnn_ctx *ctx, int l,
                          enum dtype_compute dt, struct err *e)
{
    struct t5_dec_layer *L = &m->dec[l];
    char n[128];
    snprintf(n, sizeof n, "decoder.block.%d.layer.0.layer_norm.weight", l);
    int rc = weights_take(w, n, m->D, 0, &L->ln_self, e);
    snprintf(n, sizeof n, "decoder.block.%d.layer.0.SelfAttention", l);
    if (rc == 0)
        rc = load_self(m, w, ctx, n, dt, &L->self, e);
    snprintf(n, sizeof n, "decoder.block.%d.layer.1.layer_norm.weight", l);
    if (rc == 0)
        rc = weights_take(w, n, m->D, 0, &L->ln_cross, e);
    snprintf(n, sizeof n, "decoder.block.%d.layer.1.EncDecAttention", l);
    if (rc == 0)
        rc = load_cross(m, w, ctx, n, dt, &L->cross, e);
    snprintf(n, sizeof n, "decoder.block.%d.layer.2", l);
    return rc ? rc : load_ff(m, w, ctx, n, dt, &L->ff, e);
}

/* Embeddings, final norms, head and bias tables. */
static int load_ends(struct t5_model *m, struct weights *w, struct dnn_ctx *ctx,
                     enum dtype_compute dt, struct err *e)
{
    float *shared = NULL;
    int rc = weights_take(w, "shared.weight", m->vocab, m->D, &shared, e);
    if (rc == 0)
        emb_table_take(&m->shared, shared, m->vocab, m->D);
    if (rc == 0)
        rc = weights_take(w, "encoder.final_layer_norm.weight", m->D, 0, &m->enc_final_ln, e);
    if (rc == 0)
        rc = weights_take(w, "decoder.final_layer_norm.weight", m->D, 0, &m->dec_final_ln, e);
    if (rc == 0)
        rc = take_bias(m, w, "encoder", true, &m->enc_rel, e);
    if (rc == 0)
        rc = take_bias(m, w, "decoder", false, &m->dec_rel, e);
    if (rc)
        return rc;
    if (!m->cfg.tie_word_embeddings)
        rc = take_linear(w, ctx, "lm_head", "", m->D, m->vocab, dt, ACT_NONE, &m->lm_head, e);
    else
        rc = linear_init(&m->lm_head, ctx, emb_table_f32(&m->shared), NULL, m->D, (int)m->vocab, dt,
                         ACT_NONE, e);
    /* the tied head is packed: the f32 rows go, read back from it (one copy) */
    if (rc == 0 && m->cfg.tie_word_embeddings)
        return emb_table_share(&m->shared, &m->lm_head, dt, e);
    return rc ? rc : emb_table_compact(&m->shared, dt, e);
}

/* Tensors transformers accepts and does not load: copies of tied weights (the stacks'
 * embed_tokens are shared.weight; lm_head.weight when tied) and the cross-attention bias
 * table old checkpoints carry. arg: the model. */
static bool ignorable(const void *arg, const char *name)
{
    const struct t5_model *m = arg;
    static const char *const always[] = {
        "encoder.embed_tokens.weight",
        "decoder.embed_tokens.weight",
        "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",
    };
    for (size_t i = 0; i < sizeof always / sizeof always[0]; i++)
        if (strcmp(name, always[i]) == 0)
            return true;
    return m->cfg.tie_word_embeddings && strcmp(name, "lm_head.weight") == 0;
}

/* ---- config ---- */

size_t t5_model_types(const char **names, size_t cap)
{
    static const char *const types[] = {"t5", "mt5"};
    size_t n = 0;
    for (; n < cap && n < sizeof types / sizeof types[0]; n++)
        names[n] = types[n];
    return n;
}

static int read_sizes(struct t5_model *m, const char *dir, struct err *e)
{
    const struct hf_config *c = &m->cfg;
    m->D = (int)c->hidden_size;
    m->I = (int)c->intermediate_size;
    m->n_heads = (int)c->num_attention_heads;
    m->d_kv = (int)c->head_dim;
    m->inner = m->n_heads * m->d_kv;
    m->n_enc = (int)c->num_hidden_layers;
    m->n_dec = (int)c->num_decoder_layers;
    m->vocab = c->vocab_size;
    m->eps = (float)c->layer_norm_eps;
    m->gated = c->is_gated_act;
    m->num_buckets = (int)c->relative_attention_num_buckets;
    m->max_distance = (int)c->relative_attention_max_distance;
    if ((int64_t)m->inner * 3 > INT32_MAX / 4 || (int64_t)m->I * 2 > INT32_MAX / 4 ||
        m->vocab > INT32_MAX || m->n_dec <= 0)
        return err_set(e, ERR_FORMAT, "%s: config.json: sizes out of range", dir);
    /* the logarithmic buckets need at least one exact bucket and room past it, both ways */
    if (m->num_buckets < 4 || m->max_distance <= m->num_buckets / 2 || m->max_distance > 65536)
        return err_set(e, ERR_FORMAT,
                       "%s: config.json: relative_attention_num_buckets %d with "
                       "relative_attention_max_distance %d is not supported",
                       dir, m->num_buckets, m->max_distance);
    int64_t start = c->decoder_start_token_id >= 0 ? c->decoder_start_token_id
                    : c->pad_token_id >= 0         ? c->pad_token_id
                                                   : 0;
    if (start >= m->vocab)
        return err_set(e, ERR_FORMAT, "%s: config.json: decoder_start_token_id %lld >= vocab %lld",
                       dir, (long long)start, (long long)m->vocab);
    m->start_token = (int32_t)start;
    m->scale_output =
        c->scale_decoder_outputs >= 0 ? c->scale_decoder_outputs == 1 : c->tie_word_embeddings;
    m->output_scale = (float)pow((double)m->D, -0.5);
    int rc = act_parse(c->hidden_act, &m->act, e);
    return rc ? err_prefix(e, "%s: config.json: feed_forward_proj: ", dir) : 0;
}

/* config.json, then the tensors (see weights_load_fn). */
static int load(void *model, struct weights *w, enum dtype_compute dt, struct dnn_ctx *ctx,
                struct err *e)
{
    struct t5_model *m = model;
    const char *dir = w->dir;
    const char *names[2];
    const struct hf_accept accept = {names, t5_model_types(names, 2), "an encoder-decoder"};
    int rc = hf_config_load_for(dir, &accept, &m->cfg, e);
    if (rc)
        return rc;
    if ((rc = read_sizes(m, dir, e)) != 0 || (rc = weights_open(w, e)) != 0)
        return rc;
    m->enc = calloc((size_t)m->n_enc, sizeof *m->enc);
    m->dec = calloc((size_t)m->n_dec, sizeof *m->dec);
    if (!m->enc || !m->dec)
        return err_set(e, ERR_NOMEM, "out of memory");
    rc = load_ends(m, w, ctx, dt, e);
    for (int l = 0; l < m->n_enc && rc == 0; l++)
        rc = load_enc_layer(m, w, ctx, l, dt, e);
    for (int l = 0; l < m->n_dec && rc == 0; l++)
        rc = load_dec_layer(m, w, ctx, l, dt, e);
    return rc ? rc : weights_check_unused(w, "t5", ignorable, m, e);
}

static void unload(void *m)
{
    t5_unload(m);
}

int t5_load(const char *dir, enum dtype_compute dt, struct dnn_ctx *ctx, struct t5_model **out,
            struct err *e)
{
    void *m;
    int rc = weights_load_model(dir, dt, ctx, sizeof **out, load, unload, &m, e);
    *out = m;
    return rc;
}

static void attn_fini(struct t5_attn *a)
{
    linear_fini(&a->qkv);
    linear_fini(&a->q);
    linear_fini(&a->kv);
    linear_fini(&a->o);
}

static void ff_fini(struct t5_ff *f)
{
    free(f->ln);
    linear_fini(&f->in);
    linear_fini(&f->out);
}

void t5_unload(struct t5_model *m)
{
    if (!m)
        return;
    for (int l = 0; m->enc && l < m->n_enc; l++) {
        free(m->enc[l].ln_attn);
        attn_fini(&m->enc[l].self);
        ff_fini(&m->enc[l].ff);
    }
    for (int l = 0; m->dec && l < m->n_dec; l++) {
        free(m->dec[l].ln_self);
        free(m->dec[l].ln_cross);
        attn_fini(&m->dec[l].self);
        attn_fini(&m->dec[l].cross);
        ff_fini(&m->dec[l].ff);
    }
    free(m->enc);
    free(m->dec);
    emb_table_fini(&m->shared);
    free(m->enc_final_ln);
    free(m->dec_final_ln);
    free(m->enc_rel);
    free(m->dec_rel);
    linear_fini(&m->lm_head);
    hf_config_fini(&m->cfg);
    free(m);
}

const struct hf_config *t5_config(const struct t5_model *m)
{
    return &m->cfg;
}

int t5_vocab_size(const struct t5_model *m)
{
    return (int)m->vocab;
}

int32_t t5_decoder_start_token_id(const struct t5_model *m)
{
    return m->start_token;
}

bool t5_scales_decoder_output(const struct t5_model *m)
{
    return m->scale_output;
}

size_t t5_self_kv_bytes_per_token(const struct t5_model *m)
{
    return 2 * (size_t)m->n_dec * (size_t)m->inner * sizeof(float);
}

size_t t5_cross_kv_bytes_per_input_token(const struct t5_model *m)
{
    return 2 * (size_t)m->n_dec * (size_t)m->inner * sizeof(float);
}

/* ---- sequences ---- */

int t5_seq_new(const struct t5_model *m, int max_input_tokens, int max_output_tokens,
               struct t5_seq **out, struct err *e)
{
    *out = NULL;
    struct t5_seq *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(e, ERR_NOMEM, "out of memory");
    s->m = m;
    int rc = s2s_kv_init(&s->kv, m->n_dec, m->inner, max_input_tokens, max_output_tokens, e);
    if (rc) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void t5_seq_free(struct t5_seq *s)
{
    if (!s)
        return;
    s2s_kv_fini(&s->kv);
    free(s);
}

int t5_seq_copy(struct t5_seq *dst, const struct t5_seq *src, struct err *e)
{
    return s2s_kv_copy(&dst->kv, &src->kv, e);
}

int t5_seq_fork(struct t5_seq *dst, const struct t5_seq *src, struct err *e)
{
    return s2s_kv_fork(&dst->kv, &src->kv, e);
}

void t5_seq_reset(struct t5_seq *s)
{
    s2s_kv_reset(&s->kv);
}

int t5_seq_input_len(const struct t5_seq *s)
{
    return s->kv.in_len;
}

int t5_seq_len(const struct t5_seq *s)
{
    return s->kv.len;
}

int t5_seq_max_input_tokens(const struct t5_seq *s)
{
    return s->kv.max_input;
}

int t5_seq_max_tokens(const struct t5_seq *s)
{
    return s->kv.max_tokens;
}
