/* decoder: loading GPT-2 and LLaMA-family checkpoints (config.json + safetensors) into struct
 * decoder, and the per-sequence KV caches; see models/decoder.h. The forward pass is
 * models/decoder_forward.c.
 *
 * Tensor names, per family (prefix "transformer." / "model." when the checkpoint has a head):
 *   GPT-2  wte (V, H), wpe (P, H), h.{l}.ln_1, attn.c_attn (H, 3H) Conv1D, attn.c_proj (H, H),
 *          ln_2, mlp.c_fc (H, I), mlp.c_proj (I, H), ln_f; lm_head.weight tied to wte.
 *          Conv1D stores W as (in, out): transposed here into nn.Linear's (out, in).
 *   LLaMA  embed_tokens (V, H), layers.{l}.input_layernorm, self_attn.{q,k,v,o}_proj,
 *          post_attention_layernorm, mlp.{gate,up,down}_proj, norm; lm_head.weight (V, H)
 *          unless tie_word_embeddings. q, k, v become one linear, gate and up another. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/safetensors.h"
#include "loader/tensor.h"
#include "models/decoder_impl.h"

static const struct dec_variant variants[] = {
    {"gpt2", DEC_GPT2, false},
    {"llama", DEC_LLAMA, false},
    {"mistral", DEC_LLAMA, false},
    {"qwen2", DEC_LLAMA, true},
};

/* ---- tensors ---- */

struct loader {
    struct safetensors *st;
    const char *dir;
    char *used; /* per tensor index: taken by the model */
    char prefix[32];
};

static void mark_used(struct loader *ld, const struct tensor *t)
{
    for (size_t i = 0; i < safetensors_count(ld->st); i++)
        if (safetensors_at(ld->st, i) == t)
            ld->used[i] = 1;
}

/* Fetches prefix + name as floats with shape (rows, cols), or (rows) when cols is 0. */
static int take(struct loader *ld, const char *name, int64_t rows, int64_t cols, float **out,
                struct err *e)
{
    char full[320];
    snprintf(full, sizeof full, "%s%s", ld->prefix, name);
    const struct tensor *t = safetensors_get(ld->st, full);
    if (!t)
        return err_set(e, ERR_FORMAT, "%s: tensor '%s' is missing", ld->dir, full);
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
                       ld->dir, full, got, want);
    }
    float *f = malloc(t->n_elements * sizeof *f + 1);
    if (!f)
        return err_set(e, ERR_NOMEM, "out of memory loading '%s'", full);
    int rc = tensor_to_f32(t, f, t->n_elements, e);
    if (rc) {
        free(f);
        return err_prefix(e, "%s: ", ld->dir);
    }
    mark_used(ld, t);
    *out = f;
    return 0;
}

/* A Conv1D (GPT-2) weight stored (in, out), returned as (out, in). */
static int take_conv1d(struct loader *ld, const char *name, int64_t in, int64_t out, float **w,
                       struct err *e)
{
    float *io;
    int rc = take(ld, name, in, out, &io, e);
    if (rc)
        return rc;
    float *oi = malloc((size_t)(in * out) * sizeof *oi);
    if (!oi) {
        free(io);
        return err_set(e, ERR_NOMEM, "out of memory transposing '%s'", name);
    }
    for (int64_t i = 0; i < in; i++)
        for (int64_t o = 0; o < out; o++)
            oi[o * in + i] = io[i * out + o];
    free(io);
    *w = oi;
    return 0;
}

/* Linear parts stacked along the output axis: weights `names[i]`.weight (outs[i], in) and,
 * when `bias`, `names[i]`.bias (outs[i]) concatenated into one linear (sum outs, in), so that
 * one matmul computes them all (q | k | v, gate | up). */
static int take_stacked(struct loader *ld, struct dnn_ctx *ctx, const char *const *names,
                        const int64_t *outs, int n, int64_t in, bool bias, enum dtype_compute dt,
                        enum act act, struct linear *l, struct err *e)
{
    int64_t total = 0;
    for (int i = 0; i < n; i++)
        total += outs[i];
    float *w = malloc((size_t)(total * in) * sizeof *w);
    float *b = bias ? malloc((size_t)total * sizeof *b) : NULL;
    int rc = (!w || (bias && !b)) ? err_set(e, ERR_NOMEM, "out of memory") : 0;
    int64_t row = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char name[256];
        float *wi = NULL, *bi = NULL;
        snprintf(name, sizeof name, "%s.weight", names[i]);
        rc = take(ld, name, outs[i], in, &wi, e);
        snprintf(name, sizeof name, "%s.bias", names[i]);
        if (rc == 0 && bias)
            rc = take(ld, name, outs[i], 0, &bi, e);
        if (rc == 0) {
            memcpy(w + row * in, wi, (size_t)(outs[i] * in) * sizeof *w);
            if (bias)
                memcpy(b + row, bi, (size_t)outs[i] * sizeof *b);
        }
        row += outs[i];
        free(wi);
        free(bi);
    }
    if (rc == 0)
        rc = linear_init(l, ctx, w, b, (int)in, (int)total, dt, act, e);
    free(w);
    free(b);
    return rc;
}

static int take_linear(struct loader *ld, struct dnn_ctx *ctx, const char *name, int64_t in,
                       int64_t out, bool bias, enum dtype_compute dt, enum act act,
                       struct linear *l, struct err *e)
{
    const char *names[1] = {name};
    return take_stacked(ld, ctx, names, &out, 1, in, bias, dt, act, l, e);
}

/* GPT-2 Conv1D `base`.weight (in, out) + `base`.bias (out). */
static int take_gpt2_linear(struct loader *ld, struct dnn_ctx *ctx, const char *base, int64_t in,
                            int64_t out, enum dtype_compute dt, enum act act, struct linear *l,
                            struct err *e)
{
    char name[256];
    float *w = NULL, *b = NULL;
    snprintf(name, sizeof name, "%s.weight", base);
    int rc = take_conv1d(ld, name, in, out, &w, e);
    snprintf(name, sizeof name, "%s.bias", base);
    if (rc == 0)
        rc = take(ld, name, out, 0, &b, e);
    if (rc == 0)
        rc = linear_init(l, ctx, w, b, (int)in, (int)out, dt, act, e);
    free(w);
    free(b);
    return rc;
}

static int take_norm(struct loader *ld, const char *base, int64_t n, bool has_bias,
                     struct dec_norm *nm, struct err *e)
{
    char name[256];
    snprintf(name, sizeof name, "%s.weight", base);
    int rc = take(ld, name, n, 0, &nm->w, e);
    snprintf(name, sizeof name, "%s.bias", base);
    return rc || !has_bias ? rc : take(ld, name, n, 0, &nm->b, e);
}

/* ---- per family ---- */

static int load_gpt2_layer(struct decoder_model *d, struct loader *ld, struct dnn_ctx *ctx, int l,
                           enum dtype_compute dt, struct dec_layer *L, struct err *e)
{
    char n[128];
    int rc;
    snprintf(n, sizeof n, "h.%d.ln_1", l);
    if ((rc = take_norm(ld, n, d->H, true, &L->ln_attn, e)) != 0)
        return rc;
    snprintf(n, sizeof n, "h.%d.attn.c_attn", l);
    if ((rc = take_gpt2_linear(ld, ctx, n, d->H, 3 * (int64_t)d->H, dt, ACT_NONE, &L->qkv, e)))
        return rc;
    snprintf(n, sizeof n, "h.%d.attn.c_proj", l);
    if ((rc = take_gpt2_linear(ld, ctx, n, d->H, d->H, dt, ACT_NONE, &L->o, e)) != 0)
        return rc;
    snprintf(n, sizeof n, "h.%d.ln_2", l);
    if ((rc = take_norm(ld, n, d->H, true, &L->ln_mlp, e)) != 0)
        return rc;
    snprintf(n, sizeof n, "h.%d.mlp.c_fc", l);
    if ((rc = take_gpt2_linear(ld, ctx, n, d->H, d->I, dt, d->act, &L->up, e)) != 0)
        return rc;
    snprintf(n, sizeof n, "h.%d.mlp.c_proj", l);
    return take_gpt2_linear(ld, ctx, n, d->I, d->H, dt, ACT_NONE, &L->down, e);
}

static int load_llama_layer(struct decoder_model *d, struct loader *ld, struct dnn_ctx *ctx, int l,
                            enum dtype_compute dt, struct dec_layer *L, struct err *e)
{
    char n[6][128];
    int rc;
    bool qkv_bias = d->v->qkv_bias || d->cfg.attention_bias, mlp_bias = d->cfg.mlp_bias;
    snprintf(n[0], sizeof n[0], "layers.%d.input_layernorm", l);
    if ((rc = take_norm(ld, n[0], d->H, false, &L->ln_attn, e)) != 0)
        return rc;
    static const char *const qkv_names[] = {"q_proj", "k_proj", "v_proj"};
    for (int i = 0; i < 3; i++)
        snprintf(n[i], sizeof n[i], "layers.%d.self_attn.%s", l, qkv_names[i]);
    const char *qkv[3] = {n[0], n[1], n[2]};
    int64_t qkv_out[3] = {d->q_dim, d->kv_dim, d->kv_dim};
    if ((rc = take_stacked(ld, ctx, qkv, qkv_out, 3, d->H, qkv_bias, dt, ACT_NONE, &L->qkv, e)))
        return rc;
    snprintf(n[0], sizeof n[0], "layers.%d.self_attn.o_proj", l);
    if ((rc = take_linear(ld, ctx, n[0], d->q_dim, d->H, d->cfg.attention_bias, dt, ACT_NONE, &L->o,
                          e)))
        return rc;
    snprintf(n[0], sizeof n[0], "layers.%d.post_attention_layernorm", l);
    if ((rc = take_norm(ld, n[0], d->H, false, &L->ln_mlp, e)) != 0)
        return rc;
    snprintf(n[0], sizeof n[0], "layers.%d.mlp.gate_proj", l);
    snprintf(n[1], sizeof n[1], "layers.%d.mlp.up_proj", l);
    const char *gu[2] = {n[0], n[1]};
    int64_t gu_out[2] = {d->I, d->I};
    if ((rc = take_stacked(ld, ctx, gu, gu_out, 2, d->H, mlp_bias, dt, ACT_NONE, &L->up, e)))
        return rc;
    snprintf(n[0], sizeof n[0], "layers.%d.mlp.down_proj", l);
    return take_linear(ld, ctx, n[0], d->I, d->H, mlp_bias, dt, ACT_NONE, &L->down, e);
}

/* Embeddings, final norm and lm_head. */
static int load_ends(struct decoder_model *d, struct loader *ld, struct dnn_ctx *ctx,
                     enum dtype_compute dt, struct err *e)
{
    bool gpt2 = d->v->family == DEC_GPT2;
    int rc = take(ld, gpt2 ? "wte.weight" : "embed_tokens.weight", d->vocab, d->H, &d->wte, e);
    if (rc == 0 && gpt2)
        rc = take(ld, "wpe.weight", d->max_pos, d->H, &d->wpe, e);
    if (rc == 0)
        rc = take_norm(ld, gpt2 ? "ln_f" : "norm", d->H, gpt2, &d->ln_f, e);
    if (rc)
        return rc;
    /* lm_head.weight is outside the base model's prefix; a tied checkpoint may still carry a
     * copy, which transformers replaces by the embeddings (so do we) */
    const struct tensor *head = safetensors_get(ld->st, "lm_head.weight");
    if (d->cfg.tie_word_embeddings) {
        if (head)
            mark_used(ld, head);
        return linear_init(&d->lm_head, ctx, d->wte, NULL, d->H, (int)d->vocab, dt, ACT_NONE, e);
    }
    char saved[sizeof ld->prefix];
    memcpy(saved, ld->prefix, sizeof saved);
    ld->prefix[0] = '\0';
    rc = take_linear(ld, ctx, "lm_head", d->H, d->vocab, false, dt, ACT_NONE, &d->lm_head, e);
    memcpy(ld->prefix, saved, sizeof saved);
    return rc;
}

/* HF buffers saved by older checkpoints, recomputed rather than loaded. */
static bool ignorable(const char *name)
{
    static const char *const suffixes[] = {".attn.bias", ".attn.masked_bias",
                                           ".rotary_emb.inv_freq"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t k = strlen(suffixes[i]);
        if (n >= k && strcmp(name + n - k, suffixes[i]) == 0)
            return true;
    }
    return false;
}

static int check_unused(const struct decoder_model *d, struct loader *ld, struct err *e)
{
    for (size_t i = 0; i < safetensors_count(ld->st); i++) {
        const char *name = safetensors_at(ld->st, i)->name;
        if (!ld->used[i] && !ignorable(name))
            return err_set(e, ERR_FORMAT, "%s: tensor '%s' is not used by %s", ld->dir, name,
                           d->cfg.model_type);
    }
    return 0;
}

/* ---- config ---- */

static int read_rope(struct decoder_model *d, const char *dir, struct err *e)
{
    const struct hf_config *c = &d->cfg;
    struct rope_params *p = &d->rope;
    p->type = ROPE_DEFAULT;
    p->dim = d->head_dim;
    p->theta = c->rope_theta;
    p->factor = c->rope_scaling.factor;
    p->low_freq_factor = c->rope_scaling.low_freq_factor;
    p->high_freq_factor = c->rope_scaling.high_freq_factor;
    p->max_position_embeddings = c->max_position_embeddings;
    p->original_max_position_embeddings = c->rope_scaling.original_max_position_embeddings > 0
                                              ? c->rope_scaling.original_max_position_embeddings
                                              : c->max_position_embeddings;
    int rc = 0;
    if (c->rope_scaling.present)
        rc = rope_parse_type(c->rope_scaling.type, &p->type, e);
    if (rc == 0)
        rc = rope_check(p, e);
    if (rc)
        return err_prefix(e, "%s: config.json: ", dir);
    d->inv_freq = malloc((size_t)(d->head_dim / 2) * sizeof *d->inv_freq);
    if (!d->inv_freq)
        return err_set(e, ERR_NOMEM, "out of memory");
    rope_inv_freq(p, 0, d->inv_freq);
    return 0;
}

/* Sizes from config.json, checked against each other. */
static int read_sizes(struct decoder_model *d, const char *dir, struct err *e)
{
    const struct hf_config *c = &d->cfg;
    d->H = (int)c->hidden_size;
    d->I = (int)c->intermediate_size;
    d->n_heads = (int)c->num_attention_heads;
    d->n_kv_heads = d->v->family == DEC_GPT2 ? d->n_heads : (int)c->num_key_value_heads;
    d->head_dim = (int)c->head_dim;
    d->n_layers = (int)c->num_hidden_layers;
    d->vocab = c->vocab_size;
    d->max_pos = c->max_position_embeddings;
    d->eps = (float)c->layer_norm_eps;
    d->q_dim = d->n_heads * d->head_dim;
    d->kv_dim = d->n_kv_heads * d->head_dim;
    d->qkv_dim = d->q_dim + 2 * d->kv_dim;
    if (d->v->family == DEC_GPT2 && d->q_dim != d->H)
        return err_set(e, ERR_FORMAT, "%s: config.json: n_embd %d is not %d heads x %d", dir, d->H,
                       d->n_heads, d->head_dim);
    if (d->v->family == DEC_GPT2 && d->max_pos <= 0)
        return err_set(e, ERR_FORMAT, "%s: config.json: missing 'n_positions'", dir);
    if (d->n_kv_heads <= 0 || d->n_heads % d->n_kv_heads != 0)
        return err_set(e, ERR_FORMAT, "%s: config.json: %d heads over %d key/value heads", dir,
                       d->n_heads, d->n_kv_heads);
    if ((int64_t)d->qkv_dim > INT32_MAX / 4 || d->vocab > INT32_MAX)
        return err_set(e, ERR_FORMAT, "%s: config.json: sizes out of range", dir);
    if (d->v->family == DEC_GPT2) {
        int rc = act_parse(c->hidden_act, &d->act, e);
        return rc ? err_prefix(e, "%s: config.json: ", dir) : 0;
    }
    if (strcmp(c->hidden_act, "silu") != 0 && strcmp(c->hidden_act, "swish") != 0)
        return err_set(e, ERR_FORMAT, "%s: config.json: hidden_act '%s' is not supported (silu)",
                       dir, c->hidden_act);
    return read_rope(d, dir, e);
}

static void set_layer_attention(struct decoder_model *d)
{
    const struct hf_config *c = &d->cfg;
    for (int l = 0; l < d->n_layers; l++) {
        struct dec_layer *L = &d->layers[l];
        bool sliding = c->sliding_window > 0 && (!c->sliding_layers || c->sliding_layers[l]);
        L->window = sliding ? (int)c->sliding_window : 0;
        /* HF: head_dim ** -0.5; GPT-2 may turn it off or divide by the layer number too */
        double scale = 1.0 / sqrt((double)d->head_dim);
        if (d->v->family == DEC_GPT2) {
            scale = c->scale_attn_weights ? scale : 1.0;
            if (c->scale_attn_by_inverse_layer_idx)
                scale /= (double)(l + 1);
        }
        L->attn_scale = (float)scale;
    }
}

int decoder_load(const char *dir, enum dtype_compute dt, struct dnn_ctx *ctx,
                 struct decoder_model **out, struct err *e)
{
    *out = NULL;
    struct decoder_model *d = calloc(1, sizeof *d);
    struct loader ld = {.dir = dir};
    if (!d)
        return err_set(e, ERR_NOMEM, "out of memory");
    int rc = hf_config_load(dir, &d->cfg, e);
    if (rc) {
        free(d);
        return rc;
    }
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++)
        if (strcmp(variants[i].model_type, d->cfg.model_type) == 0)
            d->v = &variants[i];
    if (!d->v) {
        rc = err_set(e, ERR_FORMAT,
                     "%s: config.json: model_type '%s' is not a decoder we know "
                     "(gpt2, llama, mistral, qwen2)",
                     dir, d->cfg.model_type);
        goto fail;
    }
    if ((rc = read_sizes(d, dir, e)) != 0)
        goto fail;
    if ((rc = safetensors_open(dir, &ld.st, e)) != 0)
        goto fail;
    ld.used = calloc(safetensors_count(ld.st) + 1, 1);
    d->layers = calloc((size_t)d->n_layers, sizeof *d->layers);
    if (!ld.used || !d->layers) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto fail;
    }
    const char *prefix = d->v->family == DEC_GPT2 ? "transformer." : "model.";
    char probe[64];
    snprintf(probe, sizeof probe, "%s%s", prefix,
             d->v->family == DEC_GPT2 ? "wte.weight" : "embed_tokens.weight");
    snprintf(ld.prefix, sizeof ld.prefix, "%s", safetensors_get(ld.st, probe) ? prefix : "");
    set_layer_attention(d);
    rc = load_ends(d, &ld, ctx, dt, e);
    for (int l = 0; l < d->n_layers && rc == 0; l++)
        rc = d->v->family == DEC_GPT2 ? load_gpt2_layer(d, &ld, ctx, l, dt, &d->layers[l], e)
                                      : load_llama_layer(d, &ld, ctx, l, dt, &d->layers[l], e);
    if (rc == 0)
        rc = check_unused(d, &ld, e);
    if (rc)
        goto fail;
    free(ld.used);
    safetensors_close(ld.st);
    *out = d;
    return 0;
fail:
    free(ld.used);
    safetensors_close(ld.st);
    decoder_unload(d);
    return rc;
}

static void norm_fini(struct dec_norm *n)
{
    free(n->w);
    free(n->b);
}

void decoder_unload(struct decoder_model *d)
{
    if (!d)
        return;
    for (int l = 0; d->layers && l < d->n_layers; l++) {
        struct dec_layer *L = &d->layers[l];
        norm_fini(&L->ln_attn);
        norm_fini(&L->ln_mlp);
        linear_fini(&L->qkv);
        linear_fini(&L->o);
        linear_fini(&L->up);
        linear_fini(&L->down);
    }
    free(d->layers);
    free(d->wte);
    free(d->wpe);
    norm_fini(&d->ln_f);
    linear_fini(&d->lm_head);
    free(d->inv_freq);
    hf_config_fini(&d->cfg);
    free(d);
}

const struct hf_config *decoder_config(const struct decoder_model *d)
{
    return &d->cfg;
}

int decoder_vocab_size(const struct decoder_model *d)
{
    return (int)d->vocab;
}

int64_t decoder_max_positions(const struct decoder_model *d)
{
    return d->max_pos;
}

size_t decoder_kv_bytes_per_token(const struct decoder_model *d)
{
    return 2 * (size_t)d->n_layers * (size_t)d->kv_dim * sizeof(float);
}

/* ---- KV caches ---- */

int decoder_seq_new(const struct decoder_model *d, int max_tokens, struct decoder_seq **out,
                    struct err *e)
{
    *out = NULL;
    if (max_tokens <= 0)
        return err_set(e, ERR_INVALID, "a sequence needs room for at least one token, not %d",
                       max_tokens);
    if (d->v->family == DEC_GPT2 && max_tokens > d->max_pos)
        return err_set(e, ERR_INVALID, "%d tokens exceed the model's %lld positions", max_tokens,
                       (long long)d->max_pos);
    struct decoder_seq *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(e, ERR_NOMEM, "out of memory");
    s->d = d;
    s->max_tokens = max_tokens;
    s->k = calloc((size_t)d->n_layers, sizeof *s->k);
    s->v = calloc((size_t)d->n_layers, sizeof *s->v);
    if (!s->k || !s->v) {
        decoder_seq_free(s);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    *out = s;
    return 0;
}

void decoder_seq_free(struct decoder_seq *s)
{
    if (!s)
        return;
    for (int l = 0; l < s->d->n_layers; l++) {
        free(s->k ? s->k[l] : NULL);
        free(s->v ? s->v[l] : NULL);
    }
    free(s->k);
    free(s->v);
    free(s);
}

void decoder_seq_reset(struct decoder_seq *s)
{
    s->len = 0;
}

int decoder_seq_len(const struct decoder_seq *s)
{
    return s->len;
}

int decoder_seq_max_tokens(const struct decoder_seq *s)
{
    return s->max_tokens;
}

int decoder_seq_reserve(struct decoder_seq *s, int n, struct err *e)
{
    if (n <= s->cap)
        return 0;
    if (n > s->max_tokens)
        return err_set(e, ERR_TOO_LARGE, "%d tokens exceed the sequence's room for %d", n,
                       s->max_tokens);
    /* whole key blocks, doubling: a long generation reallocates O(log n) times */
    int cap = s->cap ? s->cap : KV_BLOCK;
    while (cap < n)
        cap = cap > s->max_tokens / 2 ? s->max_tokens : cap * 2;
    cap = (cap + KV_BLOCK - 1) / KV_BLOCK * KV_BLOCK;
    const struct decoder_model *d = s->d;
    size_t k_old = s->cap ? kv_key_cache_floats(s->cap, d->n_kv_heads, d->head_dim) : 0;
    size_t k_new = kv_key_cache_floats(cap, d->n_kv_heads, d->head_dim);
    size_t v_new = (size_t)cap * (size_t)d->kv_dim;
    for (int l = 0; l < d->n_layers; l++) {
        /* one layer at a time: a failure leaves every layer valid at >= the old capacity */
        float *k = realloc(s->k[l], k_new * sizeof *k);
        if (k) {
            s->k[l] = k;
            /* the unwritten lanes of a key block are read (and ignored) by the attention:
             * zeros, not garbage that could be slow denormals */
            memset(k + k_old, 0, (k_new - k_old) * sizeof *k);
        }
        float *v = k ? realloc(s->v[l], v_new * sizeof *v) : NULL;
        if (v)
            s->v[l] = v;
        if (!k || !v)
            return err_set(e, ERR_NOMEM, "out of memory for a KV cache of %d tokens", cap);
    }
    s->cap = cap;
    return 0;
}
