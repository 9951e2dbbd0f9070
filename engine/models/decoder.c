/* decoder: loading GPT-2 and LLaMA-family checkpoints (config.json + weights) into struct
 * decoder, and the per-sequence KV caches; see models/decoder.h. The forward pass is
 * models/decoder_forward.c. The architectures are the rows of variants[]: a family and the
 * steps each adds to the LLaMA layer (struct dec_variant); what the config says (windows,
 * RoPEs, soft-caps, scales) is read here into the model and its layers.
 *
 * Tensor names, per family (prefix "transformer." / "model." when the checkpoint has a head):
 *   GPT-2  wte (V, H), wpe (P, H), h.{l}.ln_1, attn.c_attn (H, 3H) Conv1D, attn.c_proj (H, H),
 *          ln_2, mlp.c_fc (H, I), mlp.c_proj (I, H), ln_f; lm_head.weight tied to wte.
 *          Conv1D stores W as (in, out): transposed here into nn.Linear's (out, in).
 *   LLaMA  embed_tokens (V, H), layers.{l}.input_layernorm, self_attn.{q,k,v,o}_proj,
 *          post_attention_layernorm, mlp.{gate,up,down}_proj, norm; lm_head.weight (V, H)
 *          unless tie_word_embeddings. q, k, v become one linear, gate and up another.
 *          qk_norm: self_attn.{q,k}_norm (head_dim). sandwich: post_attention_layernorm is
 *          on the attention output, pre_feedforward_layernorm before the MLP,
 *          post_feedforward_layernorm after it. fused: self_attn.qkv_proj, mlp.gate_up_proj. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/decoder_impl.h"
#include "models/grow.h"
#include "models/weights.h"

static const struct dec_variant variants[] = {
    {.model_type = "gpt2", .family = DEC_GPT2},
    {.model_type = "llama", .family = DEC_LLAMA},
    {.model_type = "mistral", .family = DEC_LLAMA},
    {.model_type = "qwen2", .family = DEC_LLAMA, .qkv_bias = true},
    {.model_type = "qwen3", .family = DEC_LLAMA, .qk_norm = true},
    {.model_type = "gemma", .family = DEC_LLAMA, .norm_plus_1 = true, .embed_scale = true},
    {.model_type = "gemma2",
     .family = DEC_LLAMA,
     .norm_plus_1 = true,
     .embed_scale = true,
     .sandwich = true},
    {.model_type = "gemma3_text",
     .family = DEC_LLAMA,
     .qk_norm = true,
     .norm_plus_1 = true,
     .embed_scale = true,
     .sandwich = true},
    {.model_type = "phi3", .family = DEC_LLAMA, .fused = true},
};
#define N_VARIANTS (sizeof variants / sizeof variants[0])

size_t decoder_model_types(const char **out, size_t max)
{
    for (size_t i = 0; i < N_VARIANTS && i < max; i++)
        out[i] = variants[i].model_type;
    return N_VARIANTS;
}

/* ---- tensors ---- */

/* A Conv1D (GPT-2) weight stored (in, out), returned as (out, in). */
static int take_conv1d(struct weights *w, const char *name, int64_t in, int64_t out, float **dst,
                       struct err *e)
{
    float *io;
    int rc = weights_take(w, name, in, out, &io, e);
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
    *dst = oi;
    return 0;
}

/* GPT-2 Conv1D `base`.weight (in, out) + `base`.bias (out). */
static int take_gpt2_linear(struct weights *w, struct dnn_ctx *ctx, const char *base, int64_t in,
                            int64_t out, enum dtype_compute dt, enum act act, struct linear *l,
                            struct err *e)
{
    char name[256];
    float *wt = NULL, *b = NULL;
    snprintf(name, sizeof name, "%s.weight", base);
    int rc = take_conv1d(w, name, in, out, &wt, e);
    snprintf(name, sizeof name, "%s.bias", base);
    if (rc == 0)
        rc = weights_take(w, name, out, 0, &b, e);
    if (rc == 0)
        rc = linear_init(l, ctx, wt, b, (int)in, (int)out, dt, act, e);
    free(wt);
    free(b);
    return rc;
}

/* ---- per family ---- */

static int load_gpt2_layer(struct decoder_model *d, struct weights *w, struct dnn_ctx *ctx, int l,
                           enum dtype_compute dt, struct dec_layer *L, struct err *e)
{
    char n[128];
    int rc;
    snprintf(n, sizeof n, "h.%d.ln_1", l);
    if ((rc = weights_norm(w, n, d->H, true, &L->ln_attn, e)) != 0)
        return rc;
    snprintf(n, sizeof n, "h.%d.attn.c_attn", l);
    if ((rc = take_gpt2_linear(w, ctx, n, d->H, 3 * (int64_t)d->H, dt, ACT_NONE, &L->qkv, e)))
        return rc;
    snprintf(n, sizeof n, "h.%d.attn.c_proj", l);
    if ((rc = take_gpt2_linear(w, ctx, n, d->H, d->H, dt, ACT_NONE, &L->o, e)) != 0)
        return rc;
    snprintf(n, sizeof n, "h.%d.ln_2", l);
    if ((rc = weights_norm(w, n, d->H, true, &L->ln_mlp, e)) != 0)
        return rc;
    snprintf(n, sizeof n, "h.%d.mlp.c_fc", l);
    if ((rc = take_gpt2_linear(w, ctx, n, d->H, d->I, dt, d->act, &L->up, e)) != 0)
        return rc;
    snprintf(n, sizeof n, "h.%d.mlp.c_proj", l);
    return take_gpt2_linear(w, ctx, n, d->I, d->H, dt, ACT_NONE, &L->down, e);
}

/* An RMSNorm `base` of n, with Gemma's (1 + w) folded into the weights. */
static int load_rms(const struct decoder_model *d, struct weights *w, const char *base, int64_t n,
                    struct norm_weights *out, struct err *e)
{
    int rc = weights_norm(w, base, n, false, out, e);
    for (int64_t i = 0; rc == 0 && d->v->norm_plus_1 && i < n; i++)
        out->w[i] += 1.0f; /* HF: x_normed * (1.0 + weight.float()), the same f32 sum */
    return rc;
}

/* Layer l's norm called `name` ("layers.{l}.NAME") into out. */
static int layer_norm_w(const struct decoder_model *d, struct weights *w, int l, const char *name,
                        int64_t n, struct norm_weights *out, struct err *e)
{
    char base[128];
    snprintf(base, sizeof base, "layers.%d.%s", l, name);
    return load_rms(d, w, base, n, out, e);
}

/* q | k | v: three linears stacked, or Phi-3's qkv_proj as it is. */
static int load_qkv(struct decoder_model *d, struct weights *w, struct dnn_ctx *ctx, int l,
                    enum dtype_compute dt, struct dec_layer *L, struct err *e)
{
    char n[3][128];
    bool bias = d->v->qkv_bias || d->cfg.attention_bias;
    if (d->v->fused) {
        snprintf(n[0], sizeof n[0], "layers.%d.self_attn.qkv_proj", l);
        return weights_linear(w, ctx, n[0], d->H, d->qkv_dim, bias, dt, ACT_NONE, &L->qkv, e);
    }
    static const char *const qkv_names[] = {"q_proj", "k_proj", "v_proj"};
    for (int i = 0; i < 3; i++)
        snprintf(n[i], sizeof n[i], "layers.%d.self_attn.%s", l, qkv_names[i]);
    const char *qkv[3] = {n[0], n[1], n[2]};
    int64_t qkv_out[3] = {d->q_dim, d->kv_dim, d->kv_dim};
    return weights_stacked(w, ctx, qkv, qkv_out, 3, d->H, bias, dt, ACT_NONE, &L->qkv, e);
}

/* gate | up: two linears stacked, or Phi-3's gate_up_proj as it is. */
static int load_gate_up(struct decoder_model *d, struct weights *w, struct dnn_ctx *ctx, int l,
                        enum dtype_compute dt, struct dec_layer *L, struct err *e)
{
    char n[2][128];
    bool bias = d->cfg.mlp_bias;
    if (d->v->fused) {
        snprintf(n[0], sizeof n[0], "layers.%d.mlp.gate_up_proj", l);
        return weights_linear(w, ctx, n[0], d->H, 2 * (int64_t)d->I, bias, dt, ACT_NONE, &L->up, e);
    }
    snprintf(n[0], sizeof n[0], "layers.%d.mlp.gate_proj", l);
    snprintf(n[1], sizeof n[1], "layers.%d.mlp.up_proj", l);
    const char *gu[2] = {n[0], n[1]};
    int64_t gu_out[2] = {d->I, d->I};
    return weights_stacked(w, ctx, gu, gu_out, 2, d->H, bias, dt, ACT_NONE, &L->up, e);
}

static int load_llama_layer(struct decoder_model *d, struct weights *w, struct dnn_ctx *ctx, int l,
                            enum dtype_compute dt, struct dec_layer *L, struct err *e)
{
    char n[128];
    int rc;
    const struct dec_variant *v = d->v;
    if ((rc = layer_norm_w(d, w, l, "input_layernorm", d->H, &L->ln_attn, e)) != 0 ||
        (rc = load_qkv(d, w, ctx, l, dt, L, e)) != 0)
        return rc;
    if (v->qk_norm &&
        ((rc = layer_norm_w(d, w, l, "self_attn.q_norm", d->head_dim, &L->q_norm, e)) != 0 ||
         (rc = layer_norm_w(d, w, l, "self_attn.k_norm", d->head_dim, &L->k_norm, e)) != 0))
        return rc;
    snprintf(n, sizeof n, "layers.%d.self_attn.o_proj", l);
    if ((rc = weights_linear(w, ctx, n, d->q_dim, d->H, d->cfg.attention_bias, dt, ACT_NONE, &L->o,
                             e)))
        return rc;
    if (v->sandwich &&
        ((rc = layer_norm_w(d, w, l, "post_attention_layernorm", d->H, &L->post_attn, e)) != 0 ||
         (rc = layer_norm_w(d, w, l, "pre_feedforward_layernorm", d->H, &L->ln_mlp, e)) != 0 ||
         (rc = layer_norm_w(d, w, l, "post_feedforward_layernorm", d->H, &L->post_mlp, e)) != 0))
        return rc;
    if (!v->sandwich &&
        (rc = layer_norm_w(d, w, l, "post_attention_layernorm", d->H, &L->ln_mlp, e)) != 0)
        return rc;
    if ((rc = load_gate_up(d, w, ctx, l, dt, L, e)) != 0)
        return rc;
    snprintf(n, sizeof n, "layers.%d.mlp.down_proj", l);
    return weights_linear(w, ctx, n, d->I, d->H, d->cfg.mlp_bias, dt, ACT_NONE, &L->down, e);
}

/* Embeddings, final norm and lm_head. */
static int load_ends(struct decoder_model *d, struct weights *w, struct dnn_ctx *ctx,
                     enum dtype_compute dt, struct err *e)
{
    bool gpt2 = d->v->family == DEC_GPT2;
    float *wte = NULL;
    int rc = weights_take(w, gpt2 ? "wte.weight" : "embed_tokens.weight", d->vocab, d->H, &wte, e);
    if (rc == 0)
        emb_table_take(&d->wte, wte, d->vocab, d->H);
    if (rc == 0 && gpt2)
        rc = weights_take(w, "wpe.weight", d->max_pos, d->H, &d->wpe, e);
    if (rc == 0)
        rc = gpt2 ? weights_norm(w, "ln_f", d->H, true, &d->ln_f, e)
                  : load_rms(d, w, "norm", d->H, &d->ln_f, e);
    if (rc)
        return rc;
    /* lm_head.weight is outside the base model's prefix; a tied checkpoint may still carry a
     * copy, which transformers replaces by the embeddings (so do we); a backbone takes none */
    const struct tensor *head = checkpoint_get(w->ck, "lm_head.weight");
    if (!d->has_head || d->cfg.tie_word_embeddings) {
        if (head)
            weights_mark_used(w, head);
        if (!d->has_head)
            return 0;
        return linear_init(&d->lm_head, ctx, emb_table_f32(&d->wte), NULL, d->H, (int)d->vocab, dt,
                           ACT_NONE, e);
    }
    char saved[sizeof w->prefix];
    memcpy(saved, w->prefix, sizeof saved);
    w->prefix[0] = '\0';
    rc = weights_linear(w, ctx, "lm_head", d->H, d->vocab, false, dt, ACT_NONE, &d->lm_head, e);
    memcpy(w->prefix, saved, sizeof saved);
    return rc;
}

/* HF buffers saved by older checkpoints, recomputed rather than loaded. */
static bool ignorable(const void *arg, const char *name)
{
    (void)arg;
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

/* ---- config ---- */

/* The global RoPE from rope_theta and rope_scaling (rotating rot_dim of each head). */
static int global_rope(struct decoder_model *d, struct rope_params *p, struct err *e)
{
    const struct hf_config *c = &d->cfg;
    const struct hf_rope_scaling *rs = &c->rope_scaling;
    *p = (struct rope_params){
        .type = ROPE_DEFAULT,
        .dim = d->rot_dim,
        .theta = c->rope_theta,
        .factor = rs->factor,
        .low_freq_factor = rs->low_freq_factor,
        .high_freq_factor = rs->high_freq_factor,
        .max_position_embeddings = c->max_position_embeddings,
        .original_max_position_embeddings = rs->original_max_position_embeddings > 0
                                                ? rs->original_max_position_embeddings
                                                : c->max_position_embeddings,
        .short_factor = rs->short_factor,
        .long_factor = rs->long_factor,
        .n_factors = rs->n_factors,
        .attention_factor = 1.0,
    };
    int rc = rs->present ? rope_parse_type(rs->type, &p->type, e) : 0;
    if (rc || p->type != ROPE_LONGROPE)
        return rc;
    /* transformers: the ratio of the lengths when the config has an original length, and
     * sqrt(1 + ln(factor) / ln(original)) unless attention_factor is given */
    double orig = (double)p->original_max_position_embeddings;
    double factor = (double)c->max_position_embeddings / orig;
    p->attention_factor = rs->attention_factor > 0 ? rs->attention_factor
                          : factor <= 1.0          ? 1.0
                                                   : sqrt(1.0 + log(factor) / log(orig));
    d->rope_switch = p->original_max_position_embeddings;
    return 0;
}

/* The RoPEs: the global one, and Gemma 3's local one (rope_local_base_freq, no scaling) for the
 * sliding layers; their length-independent inverse frequencies. */
static int read_rope(struct decoder_model *d, const char *dir, struct err *e)
{
    const struct hf_config *c = &d->cfg;
    int rc = global_rope(d, &d->rope[0], e);
    d->n_ropes = 1;
    if (rc == 0 && c->rope_local_base_freq > 0) {
        d->rope[1] = (struct rope_params){.type = ROPE_DEFAULT,
                                          .dim = d->rot_dim,
                                          .theta = c->rope_local_base_freq,
                                          .attention_factor = 1.0};
        d->n_ropes = 2;
    }
    for (int i = 0; i < d->n_ropes && rc == 0; i++)
        rc = rope_check(&d->rope[i], e);
    if (rc)
        return err_prefix(e, "%s: config.json: ", dir);
    for (int i = 0; i < d->n_ropes; i++) {
        d->inv_freq[i] = malloc((size_t)(d->rot_dim / 2) * sizeof *d->inv_freq[i]);
        if (!d->inv_freq[i])
            return err_set(e, ERR_NOMEM, "out of memory");
        rope_inv_freq(&d->rope[i], 0, d->inv_freq[i]);
    }
    return 0;
}

/* The LLaMA family's gate activation, soft-caps, embedding scale and rotary width. */
static int read_llama_extras(struct decoder_model *d, const char *dir, struct err *e)
{
    const struct hf_config *c = &d->cfg;
    int rc = act_parse(c->hidden_act, &d->act, e);
    if (rc || (d->act != ACT_SILU && d->act != ACT_GELU_TANH))
        return err_set(e, ERR_FORMAT,
                       "%s: config.json: hidden_act '%s' is not supported (silu, "
                       "gelu_pytorch_tanh)",
                       dir, c->hidden_act);
    d->attn_softcap = (float)c->attn_logit_softcapping;
    d->final_softcap = (float)c->final_logit_softcapping;
    /* HF: torch.tensor(hidden_size ** 0.5, dtype=float32) */
    d->embed_scale = d->v->embed_scale ? (float)sqrt((double)d->H) : 1.0f;
    d->rot_dim = (int)((double)d->head_dim * c->partial_rotary_factor);
    if (d->rot_dim <= 0 || d->rot_dim % 2 != 0)
        return err_set(e, ERR_FORMAT,
                       "%s: config.json: %d rotary dimensions (head_dim %d x "
                       "partial_rotary_factor %g) must be even and positive",
                       dir, d->rot_dim, d->head_dim, c->partial_rotary_factor);
    return read_rope(d, dir, e);
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
    d->embed_scale = 1.0f;
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
    return read_llama_extras(d, dir, e);
}

static void set_layer_attention(struct decoder_model *d)
{
    const struct hf_config *c = &d->cfg;
    for (int l = 0; l < d->n_layers; l++) {
        struct dec_layer *L = &d->layers[l];
        bool sliding = c->sliding_window > 0 && (!c->sliding_layers || c->sliding_layers[l]);
        L->window = sliding ? (int)c->sliding_window : 0;
        L->rope = sliding && d->n_ropes > 1 ? 1 : 0; /* Gemma 3: local layers, local RoPE */
        /* HF: head_dim ** -0.5 (Gemma 2/3: query_pre_attn_scalar ** -0.5); GPT-2 may turn it
         * off or divide by the layer number too */
        double scale = 1.0 / sqrt(c->query_pre_attn_scalar > 0 ? c->query_pre_attn_scalar
                                                               : (double)d->head_dim);
        if (d->v->family == DEC_GPT2) {
            scale = c->scale_attn_weights ? scale : 1.0;
            if (c->scale_attn_by_inverse_layer_idx)
                scale /= (double)(l + 1);
        }
        L->attn_scale = (float)scale;
    }
}

/* config.json: the row, the sizes, the RoPEs. */
static int load_config(struct decoder_model *d, const char *dir, struct err *e)
{
    const char *names[N_VARIANTS];
    decoder_model_types(names, N_VARIANTS);
    const struct hf_accept accept = {names, N_VARIANTS, "a decoder"};
    int rc = hf_config_load_for(dir, &accept, &d->cfg, e);
    if (rc)
        return rc;
    for (size_t i = 0; i < N_VARIANTS; i++)
        if (strcmp(variants[i].model_type, d->cfg.model_type) == 0)
            d->v = &variants[i];
    return read_sizes(d, dir, e);
}

/* The tensors of w (open), with lm_head or without (a backbone: a checkpoint's lm_head, when
 * it has one, is then counted as used and left out). */
static int take_tensors(struct decoder_model *d, struct weights *w, enum dtype_compute dt,
                        struct dnn_ctx *ctx, bool lm_head, struct err *e)
{
    d->layers = calloc((size_t)d->n_layers, sizeof *d->layers);
    if (!d->layers)
        return err_set(e, ERR_NOMEM, "out of memory");
    bool gpt2 = d->v->family == DEC_GPT2;
    snprintf(w->prefix, sizeof w->prefix, "%s",
             weights_pick_prefix(w, gpt2 ? "transformer." : "model.",
                                 gpt2 ? "wte.weight" : "embed_tokens.weight"));
    set_layer_attention(d);
    d->has_head = lm_head;
    int rc = load_ends(d, w, ctx, dt, e);
    /* a tied lm_head is packed: the f32 rows go, the rows read back from the head's packed
     * weights (emb_table_share: one copy). A pre-quantized checkpoint's embeddings are 16-bit
     * in it (what transformers runs): bf16 rows, not inferd's own s8 ones */
    if (rc == 0 && w->q4.format)
        rc = emb_table_compact(&d->wte, DTYPE_COMPUTE_BF16, e);
    else if (rc == 0 && d->has_head && d->cfg.tie_word_embeddings)
        rc = emb_table_share(&d->wte, &d->lm_head, dt, e);
    else if (rc == 0)
        rc = emb_table_compact(&d->wte, dt, e);
    for (int l = 0; l < d->n_layers && rc == 0; l++)
        rc = gpt2 ? load_gpt2_layer(d, w, ctx, l, dt, &d->layers[l], e)
                  : load_llama_layer(d, w, ctx, l, dt, &d->layers[l], e);
    return rc ? rc : weights_check_unused(w, d->cfg.model_type, ignorable, NULL, e);
}

/* config.json, then the tensors (see weights_load_fn). */
static int load(void *model, struct weights *w, enum dtype_compute dt, struct dnn_ctx *ctx,
                struct err *e)
{
    struct decoder_model *d = model;
    int rc = load_config(d, w->dir, e);
    if (rc == 0)
        rc = weights_open(w, e);
    return rc ? rc : take_tensors(d, w, dt, ctx, true, e);
}

int decoder_load_backbone(struct weights *w, enum dtype_compute dt, struct dnn_ctx *ctx,
                          struct decoder_model **out, struct err *e)
{
    struct decoder_model *d = calloc(1, sizeof *d);
    if (!d)
        return err_set(e, ERR_NOMEM, "out of memory");
    char saved[sizeof w->prefix];
    memcpy(saved, w->prefix, sizeof saved);
    int rc = load_config(d, w->dir, e);
    if (rc == 0)
        rc = take_tensors(d, w, dt, ctx, false, e);
    memcpy(w->prefix, saved, sizeof saved);
    if (rc) {
        decoder_unload(d);
        d = NULL;
    }
    *out = d;
    return rc;
}

static void unload(void *d)
{
    decoder_unload(d);
}

int decoder_load(const char *dir, enum dtype_compute dt, struct dnn_ctx *ctx,
                 struct decoder_model **out, struct err *e)
{
    void *d;
    int rc = weights_load_model(dir, dt, ctx, sizeof **out, load, unload, &d, e);
    *out = d;
    return rc;
}

void decoder_unload(struct decoder_model *d)
{
    if (!d)
        return;
    for (int l = 0; d->layers && l < d->n_layers; l++) {
        struct dec_layer *L = &d->layers[l];
        norm_weights_fini(&L->ln_attn);
        norm_weights_fini(&L->ln_mlp);
        norm_weights_fini(&L->post_attn);
        norm_weights_fini(&L->post_mlp);
        norm_weights_fini(&L->q_norm);
        norm_weights_fini(&L->k_norm);
        linear_fini(&L->qkv);
        linear_fini(&L->o);
        linear_fini(&L->up);
        linear_fini(&L->down);
    }
    free(d->layers);
    emb_table_fini(&d->wte);
    free(d->wpe);
    norm_weights_fini(&d->ln_f);
    linear_fini(&d->lm_head);
    for (int i = 0; i < DEC_MAX_ROPES; i++)
        free(d->inv_freq[i]);
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
    s->n_layers = d->n_layers;
    s->max_tokens = max_tokens;
    s->k = layer_bufs_new(d->n_layers);
    s->v = layer_bufs_new(d->n_layers);
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
    layer_bufs_free(s->k, s->n_layers);
    layer_bufs_free(s->v, s->n_layers);
    free(s->ids);
    free(s);
}

int decoder_seq_copy(struct decoder_seq *dst, const struct decoder_seq *src, struct err *e)
{
    return decoder_seq_copy_prefix(dst, src, src->len, e);
}

int decoder_seq_copy_prefix(struct decoder_seq *dst, const struct decoder_seq *src, int n,
                            struct err *e)
{
    const struct decoder_model *d = src->d;
    if (n < 0 || n > src->len || dst->d != d)
        return err_set(e, ERR_INVALID, "cannot keep %d of a sequence's %d cached positions", n,
                       src->len);
    /* past a LongRoPE switch every cached key was rotated with the long factors: a sequence
     * of n <= switch tokens has them rotated with the short ones */
    if (d->rope_switch > 0 && src->len > d->rope_switch && n <= d->rope_switch)
        return err_set(e, ERR_INVALID,
                       "the cached keys were rotated for more than %lld positions: they cannot "
                       "be cut to %d",
                       (long long)d->rope_switch, n);
    if (dst == src) {
        dst->len = n;
        return 0;
    }
    int rc = decoder_seq_reserve(dst, n, e);
    if (rc)
        return rc;
    /* the key blocks holding positions < n are a prefix of the blocked layout */
    size_t k_n = kv_key_cache_floats(n, d->n_kv_heads, d->head_dim);
    size_t v_n = (size_t)n * (size_t)d->kv_dim;
    for (int l = 0; l < d->n_layers; l++) {
        memcpy(dst->k[l], src->k[l], k_n * sizeof(float));
        memcpy(dst->v[l], src->v[l], v_n * sizeof(float));
    }
    if (d->rope_switch > 0 && n > 0)
        memcpy(dst->ids, src->ids, (size_t)n * sizeof *src->ids);
    dst->len = n;
    return 0;
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
    /* a failure leaves every layer valid at >= the old capacity. The unwritten lanes of a key
     * block are read (and ignored) by the attention: zeros, not garbage that could be slow
     * denormals */
    if (layer_bufs_grow(s->k, d->n_layers, k_new, k_old, NULL) != 0 ||
        layer_bufs_grow(s->v, d->n_layers, v_new, v_new, NULL) != 0)
        return err_set(e, ERR_NOMEM, "out of memory for a KV cache of %d tokens", cap);
    if (d->rope_switch > 0) {
        int32_t *ids = realloc(s->ids, (size_t)cap * sizeof *ids);
        if (!ids)
            return err_set(e, ERR_NOMEM, "out of memory for a KV cache of %d tokens", cap);
        s->ids = ids;
    }
    s->cap = cap;
    return 0;
}
