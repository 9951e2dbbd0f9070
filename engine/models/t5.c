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

#include "loader/safetensors.h"
#include "loader/tensor.h"
#include "models/t5_impl.h"

/* ---- tensors ---- */

struct loader {
    struct safetensors *st;
    const char *dir;
    char *used; /* per tensor index: taken by the model */
};

static void mark_used(struct loader *ld, const struct tensor *t)
{
    for (size_t i = 0; i < safetensors_count(ld->st); i++)
        if (safetensors_at(ld->st, i) == t)
            ld->used[i] = 1;
}

/* Fetches name as floats with shape (rows, cols), or (rows) when cols is 0. */
static int take(struct loader *ld, const char *name, int64_t rows, int64_t cols, float **out,
                struct err *e)
{
    const struct tensor *t = safetensors_get(ld->st, name);
    if (!t)
        return err_set(e, ERR_FORMAT, "%s: tensor '%s' is missing", ld->dir, name);
    bool ok = cols ? (t->n_dims == 2 && t->shape[0] == rows && t->shape[1] == cols)
                   : (t->n_dims == 1 && t->shape[0] == rows);
    if (!ok) {
        char got[96] = "", want[64];
        for (int i = 0; i < t->n_dims && strlen(got) < 64; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "",
                     (long long)t->shape[i]);
        if (cols)
            snprintf(want, sizeof want, "%lld, %lld", (long long)rows, (long long)cols);
        else
            snprintf(want, sizeof want, "%lld", (long long)rows);
        return err_set(e, ERR_FORMAT, "%s: tensor '%s' has shape [%s], config.json implies [%s]",
                       ld->dir, name, got, want);
    }
    float *f = malloc(t->n_elements * sizeof *f + 1);
    if (!f)
        return err_set(e, ERR_NOMEM, "out of memory loading '%s'", name);
    int rc = tensor_to_f32(t, f, t->n_elements, e);
    if (rc) {
        free(f);
        return err_prefix(e, "%s: '%s': ", ld->dir, name);
    }
    mark_used(ld, t);
    *out = f;
    return 0;
}

/* Weights `base`.`names[i]`.weight (outs[i], in) stacked along the output axis into one
 * linear (sum outs, in). */
static int take_stacked(struct loader *ld, struct dnn_ctx *ctx, const char *base,
                        const char *const *names, const int64_t *outs, int n, int64_t in,
                        enum dtype_compute dt, enum act act, struct linear *l, struct err *e)
{
    int64_t total = 0;
    for (int i = 0; i < n; i++)
        total += outs[i];
    float *w = malloc((size_t)(total * in) * sizeof *w);
    int rc = w ? 0 : err_set(e, ERR_NOMEM, "out of memory");
    int64_t row = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char name[256];
        float *wi = NULL;
        snprintf(name, sizeof name, "%s%s%s.weight", base, *names[i] ? "." : "", names[i]);
        rc = take(ld, name, outs[i], in, &wi, e);
        if (rc == 0)
            memcpy(w + row * in, wi, (size_t)(outs[i] * in) * sizeof *w);
        row += outs[i];
        free(wi);
    }
    if (rc == 0)
        rc = linear_init(l, ctx, w, NULL, (int)in, (int)total, dt, act, e);
    free(w);
    return rc;
}

static int take_linear(struct loader *ld, struct dnn_ctx *ctx, const char *base, const char *name,
                       int64_t in, int64_t out, enum dtype_compute dt, enum act act,
                       struct linear *l, struct err *e)
{
    const char *names[1] = {name};
    return take_stacked(ld, ctx, base, names, &out, 1, in, dt, act, l, e);
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

static int take_bias(struct t5_model *m, struct loader *ld, const char *stack, bool bidirectional,
                     float **rel, struct err *e)
{
    char name[256];
    snprintf(name, sizeof name, "%s.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
             stack);
    float *table = NULL;
    int rc = take(ld, name, m->num_buckets, m->n_heads, &table, e);
    if (rc == 0)
        rc = bias_table(m, table, bidirectional, rel, e);
    free(table);
    return rc;
}

/* ---- layers ---- */

static int load_self(struct t5_model *m, struct loader *ld, struct dnn_ctx *ctx, const char *base,
                     enum dtype_compute dt, struct t5_attn *a, struct err *e)
{
    static const char *const qkv[] = {"q", "k", "v"};
    const int64_t outs[3] = {m->inner, m->inner, m->inner};
    int rc = take_stacked(ld, ctx, base, qkv, outs, 3, m->D, dt, ACT_NONE, &a->qkv, e);
    return rc ? rc : take_linear(ld, ctx, base, "o", m->inner, m->D, dt, ACT_NONE, &a->o, e);
}

static int load_cross(struct t5_model *m, struct loader *ld, struct dnn_ctx *ctx, const char *base,
                      enum dtype_compute dt, struct t5_attn *a, struct err *e)
{
    static const char *const kv[] = {"k", "v"};
    const int64_t outs[2] = {m->inner, m->inner};
    int rc = take_linear(ld, ctx, base, "q", m->D, m->inner, dt, ACT_NONE, &a->q, e);
    if (rc == 0)
        rc = take_stacked(ld, ctx, base, kv, outs, 2, m->D, dt, ACT_NONE, &a->kv, e);
    return rc ? rc : take_linear(ld, ctx, base, "o", m->inner, m->D, dt, ACT_NONE, &a->o, e);
}

/* `base` = "{stack}.block.{l}.layer.{k}": its layer_norm and DenseReluDense. */
static int load_ff(struct t5_model *m, struct loader *ld, struct dnn_ctx *ctx, const char *base,
                   enum dtype_compute dt, struct t5_ff *f, struct err *e)
{
    char n[256];
    snprintf(n, sizeof n, "%s.layer_norm.weight", base);
    int rc = take(ld, n, m->D, 0, &f->ln, e);
    snprintf(n, sizeof n, "%s.DenseReluDense", base);
    if (rc == 0 && m->gated) {
        static const char *const wi[] = {"wi_0", "wi_1"};
        const int64_t outs[2] = {m->I, m->I};
        rc = take_stacked(ld, ctx, n, wi, outs, 2, m->D, dt, ACT_NONE, &f->in, e);
    } else if (rc == 0) {
        rc = take_linear(ld, ctx, n, "wi", m->D, m->I, dt, m->act, &f->in, e);
    }
    return rc ? rc : take_linear(ld, ctx, n, "wo", m->I, m->D, dt, ACT_NONE, &f->out, e);
}

static int load_enc_layer(struct t5_model *m, struct loader *ld, struct dnn_ctx *ctx, int l,
                          enum dtype_compute dt, struct err *e)
{
    struct t5_enc_layer *L = &m->enc[l];
    char n[128];
    snprintf(n, sizeof n, "encoder.block.%d.layer.0.layer_norm.weight", l);
    int rc = take(ld, n, m->D, 0, &L->ln_attn, e);
    snprintf(n, sizeof n, "encoder.block.%d.layer.0.SelfAttention", l);
    if (rc == 0)
        rc = load_self(m, ld, ctx, n, dt, &L->self, e);
    snprintf(n, sizeof n, "encoder.block.%d.layer.1", l);
    return rc ? rc : load_ff(m, ld, ctx, n, dt, &L->ff, e);
}

static int load_dec_layer(struct t5_model *m, struct loader *ld, struct dnn_ctx *ctx, int l,
                          enum dtype_compute dt, struct err *e)
{
    struct t5_dec_layer *L = &m->dec[l];
    char n[128];
    snprintf(n, sizeof n, "decoder.block.%d.layer.0.layer_norm.weight", l);
    int rc = take(ld, n, m->D, 0, &L->ln_self, e);
    snprintf(n, sizeof n, "decoder.block.%d.layer.0.SelfAttention", l);
    if (rc == 0)
        rc = load_self(m, ld, ctx, n, dt, &L->self, e);
    snprintf(n, sizeof n, "decoder.block.%d.layer.1.layer_norm.weight", l);
    if (rc == 0)
        rc = take(ld, n, m->D, 0, &L->ln_cross, e);
    snprintf(n, sizeof n, "decoder.block.%d.layer.1.EncDecAttention", l);
    if (rc == 0)
        rc = load_cross(m, ld, ctx, n, dt, &L->cross, e);
    snprintf(n, sizeof n, "decoder.block.%d.layer.2", l);
    return rc ? rc : load_ff(m, ld, ctx, n, dt, &L->ff, e);
}

/* Embeddings, final norms, head and bias tables. */
static int load_ends(struct t5_model *m, struct loader *ld, struct dnn_ctx *ctx,
                     enum dtype_compute dt, struct err *e)
{
    int rc = take(ld, "shared.weight", m->vocab, m->D, &m->shared, e);
    if (rc == 0)
        rc = take(ld, "encoder.final_layer_norm.weight", m->D, 0, &m->enc_final_ln, e);
    if (rc == 0)
        rc = take(ld, "decoder.final_layer_norm.weight", m->D, 0, &m->dec_final_ln, e);
    if (rc == 0)
        rc = take_bias(m, ld, "encoder", true, &m->enc_rel, e);
    if (rc == 0)
        rc = take_bias(m, ld, "decoder", false, &m->dec_rel, e);
    if (rc)
        return rc;
    if (!m->cfg.tie_word_embeddings)
        return take_linear(ld, ctx, "lm_head", "", m->D, m->vocab, dt, ACT_NONE, &m->lm_head, e);
    return linear_init(&m->lm_head, ctx, m->shared, NULL, m->D, (int)m->vocab, dt, ACT_NONE, e);
}

/* Tensors transformers accepts and does not load: copies of tied weights (the stacks'
 * embed_tokens are shared.weight; lm_head.weight when tied) and the cross-attention bias
 * table old checkpoints carry. */
static bool ignorable(const struct t5_model *m, const char *name)
{
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

static int check_unused(const struct t5_model *m, struct loader *ld, struct err *e)
{
    for (size_t i = 0; i < safetensors_count(ld->st); i++) {
        const char *name = safetensors_at(ld->st, i)->name;
        if (!ld->used[i] && !ignorable(m, name))
            return err_set(e, ERR_FORMAT, "%s: tensor '%s' is not used by t5", ld->dir, name);
    }
    return 0;
}

/* ---- config ---- */

/* config.json's "scale_decoder_outputs" (transformers 5), which hf_config does not read:
 * 1 true, 0 false, -1 absent or null. */
static int read_scale_flag(const char *dir, int *flag, struct err *e)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root)
        return err_set(e, ERR_FORMAT, "%s: invalid JSON at line %d: %s", path, je.line, je.text);
    const json_t *v = json_object_get(root, "scale_decoder_outputs");
    int rc = 0;
    *flag = -1;
    if (v && json_is_boolean(v))
        *flag = json_is_true(v);
    else if (v && !json_is_null(v))
        rc = err_set(e, ERR_FORMAT, "%s: 'scale_decoder_outputs' must be a boolean", path);
    json_decref(root);
    return rc;
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
    int flag;
    int rc = read_scale_flag(dir, &flag, e);
    if (rc)
        return rc;
    m->scale_output = flag >= 0 ? flag == 1 : c->tie_word_embeddings;
    m->output_scale = (float)pow((double)m->D, -0.5);
    rc = act_parse(c->hidden_act, &m->act, e);
    return rc ? err_prefix(e, "%s: config.json: feed_forward_proj: ", dir) : 0;
}

int t5_load(const char *dir, enum dtype_compute dt, struct dnn_ctx *ctx, struct t5_model **out,
            struct err *e)
{
    *out = NULL;
    struct t5_model *m = calloc(1, sizeof *m);
    struct loader ld = {.dir = dir};
    if (!m)
        return err_set(e, ERR_NOMEM, "out of memory");
    int rc = hf_config_load(dir, &m->cfg, e);
    if (rc) {
        free(m);
        return rc;
    }
    if (strcmp(m->cfg.model_type, "t5") != 0) {
        rc = err_set(e, ERR_FORMAT, "%s: config.json: model_type '%s' is not t5", dir,
                     m->cfg.model_type);
        goto fail;
    }
    if ((rc = read_sizes(m, dir, e)) != 0)
        goto fail;
    if ((rc = safetensors_open(dir, &ld.st, e)) != 0)
        goto fail;
    ld.used = calloc(safetensors_count(ld.st) + 1, 1);
    m->enc = calloc((size_t)m->n_enc, sizeof *m->enc);
    m->dec = calloc((size_t)m->n_dec, sizeof *m->dec);
    if (!ld.used || !m->enc || !m->dec) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto fail;
    }
    rc = load_ends(m, &ld, ctx, dt, e);
    for (int l = 0; l < m->n_enc && rc == 0; l++)
        rc = load_enc_layer(m, &ld, ctx, l, dt, e);
    for (int l = 0; l < m->n_dec && rc == 0; l++)
        rc = load_dec_layer(m, &ld, ctx, l, dt, e);
    if (rc == 0)
        rc = check_unused(m, &ld, e);
    if (rc)
        goto fail;
    free(ld.used);
    safetensors_close(ld.st);
    *out = m;
    return 0;
fail:
    free(ld.used);
    safetensors_close(ld.st);
    t5_unload(m);
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
    free(m->shared);
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
    if (max_input_tokens <= 0 || max_output_tokens <= 0)
        return err_set(e, ERR_INVALID,
                       "a sequence needs room for at least one input and one output token, "
                       "not %d and %d",
                       max_input_tokens, max_output_tokens);
    struct t5_seq *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(e, ERR_NOMEM, "out of memory");
    s->m = m;
    s->max_input = max_input_tokens;
    s->max_tokens = max_output_tokens;
    s->cross = calloc((size_t)m->n_dec, sizeof *s->cross);
    s->self = calloc((size_t)m->n_dec, sizeof *s->self);
    if (!s->cross || !s->self) {
        t5_seq_free(s);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    *out = s;
    return 0;
}

void t5_seq_free(struct t5_seq *s)
{
    if (!s)
        return;
    for (int l = 0; l < s->m->n_dec; l++) {
        free(s->cross ? s->cross[l] : NULL);
        free(s->self ? s->self[l] : NULL);
    }
    free(s->cross);
    free(s->self);
    free(s);
}

void t5_seq_reset(struct t5_seq *s)
{
    s->in_len = 0;
    s->len = 0;
}

int t5_seq_input_len(const struct t5_seq *s)
{
    return s->in_len;
}

int t5_seq_len(const struct t5_seq *s)
{
    return s->len;
}

int t5_seq_max_input_tokens(const struct t5_seq *s)
{
    return s->max_input;
}

int t5_seq_max_tokens(const struct t5_seq *s)
{
    return s->max_tokens;
}

/* The next capacity for n rows: doubling from 16 up to max. */
static int grow_to(int cap, int n, int max)
{
    cap = cap ? cap : 16;
    while (cap < n)
        cap = cap > max / 2 ? max : cap * 2;
    return cap;
}

/* Grows every layer's buffer in bufs from old to cap rows of 2 inner floats; one layer at a
 * time, so a failure leaves each valid at >= its old size. */
static int grow_layers(const struct t5_model *m, float **bufs, int cap, struct err *e)
{
    size_t n = (size_t)cap * 2 * (size_t)m->inner;
    for (int l = 0; l < m->n_dec; l++) {
        float *b = realloc(bufs[l], n * sizeof *b);
        if (!b)
            return err_set(e, ERR_NOMEM, "out of memory for a sequence of %d positions", cap);
        bufs[l] = b;
    }
    return 0;
}

int t5_seq_reserve(struct t5_seq *s, int n_in, int n, struct err *e)
{
    if (n_in > s->max_input || n > s->max_tokens)
        return err_set(e, ERR_TOO_LARGE,
                       "%d input and %d decoder tokens exceed the room for %d and %d", n_in, n,
                       s->max_input, s->max_tokens);
    if (n_in > s->in_cap) {
        int cap = grow_to(s->in_cap, n_in, s->max_input);
        int rc = grow_layers(s->m, s->cross, cap, e);
        if (rc)
            return rc;
        s->in_cap = cap;
    }
    if (n > s->cap) {
        int cap = grow_to(s->cap, n, s->max_tokens);
        int rc = grow_layers(s->m, s->self, cap, e);
        if (rc)
            return rc;
        s->cap = cap;
    }
    return 0;
}
