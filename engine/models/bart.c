/* bart: loading the BART-like checkpoints (bart, mbart, marian, m2m100, pegasus) into struct
 * bart_model, the variant table, the position tables and the per-sequence state; see
 * models/bart.h. The forward passes are models/bart_forward.c.
 *
 * Tensor names (under "model."; D = d_model, F = the stack's ffn dim):
 *   shared.weight (V, D); {encoder,decoder}.embed_tokens.weight (copies of it, or Marian's
 *       own decoder embeddings when share_encoder_decoder_embeddings is false)
 *   {stack}.embed_positions.weight: learned (max_pos + 2, D); Marian/Pegasus (max_pos, D)
 *   {stack}.layernorm_embedding.{weight,bias}, {stack}.layer_norm.{weight,bias} (variant)
 *   {stack}.layers.{l}.self_attn.{q,k,v,out}_proj.{weight,bias} (D, D), self_attn_layer_norm,
 *       fc1 (F, D), fc2 (D, F), final_layer_norm; decoder layers also encoder_attn.{q,k,v,out}
 *       _proj and encoder_attn_layer_norm
 * and at the top: lm_head.weight (V, D) unless tied, final_logits_bias (1, V) when present,
 * or classification_head.dense (D, D) and out_proj (labels, D) with biases. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/bart_impl.h"
#include "models/grow.h"

static const struct bart_variant variants[] = {
    /* model_type, positions, pre_norm, ln_embedding, final_ln */
    {"bart", BART_POS_LEARNED, false, true, false},
    {"mbart", BART_POS_LEARNED, true, true, true},
    {"marian", BART_POS_SIN_HALF, false, false, false},
    {"m2m_100", BART_POS_SIN_FAIRSEQ, true, false, true},
    {"pegasus", BART_POS_SIN_HALF, true, false, true},
};
#define N_VARIANTS (sizeof variants / sizeof variants[0])

size_t bart_model_types(const char **names, size_t cap)
{
    size_t n = 0;
    for (; n < N_VARIANTS && n < cap; n++)
        names[n] = variants[n].model_type;
    return n;
}

/* ---- position tables ---- */

/* Marian's and Pegasus' table, computed as numpy does in float64, stored as float32. */
static void sin_half(float *t, int64_t n_pos, int D)
{
    int half = D % 2 == 0 ? D / 2 : D / 2 + 1;
    for (int64_t p = 0; p < n_pos; p++)
        for (int j = 0; j < D; j++) {
            int k = j < half ? 2 * j : 2 * (j - half) + 1; /* the column of position_enc */
            double a = (double)p / pow(10000.0, 2.0 * (double)(k / 2) / (double)D);
            t[(size_t)p * (size_t)D + (size_t)j] = (float)(j < half ? sin(a) : cos(a));
        }
}

/* M2M100's (fairseq's) rows first .. first + n_pos - 1, in torch's float32 arithmetic. */
static void sin_fairseq(float *t, int64_t first, int64_t n_pos, int D)
{
    int half = D / 2;
    float step = (float)(-(log(10000.0) / (double)(half - 1)));
    for (int64_t i = 0; i < n_pos; i++) {
        float *row = t + (size_t)i * (size_t)D;
        for (int j = 0; j < half; j++) {
            float a = (float)(first + i) * expf((float)j * step);
            row[j] = sinf(a);
            row[half + j] = cosf(a);
        }
        if (D % 2)
            row[D - 1] = 0.0f;
    }
}

static int take_positions(struct bart_model *m, struct weights *w, const char *stack,
                          struct bart_stack *s, struct err *e)
{
    char n[128];
    snprintf(n, sizeof n, "%s.embed_positions.weight", stack);
    const char *have = weights_pick_prefix(w, w->prefix, n);
    switch (m->v->pos) {
    case BART_POS_LEARNED:
        s->n_pos = m->max_pos + 2;
        s->pos_offset = 2;
        return weights_take(w, n, s->n_pos, m->D, &s->pos, e);
    case BART_POS_SIN_HALF:
        s->n_pos = m->max_pos;
        if (*have) /* transformers loads the checkpoint's copy over its own table */
            return weights_take(w, n, s->n_pos, m->D, &s->pos, e);
        break;
    case BART_POS_SIN_FAIRSEQ:
        s->n_pos = m->max_pos;
        s->pos_offset = 0;
        break;
    }
    s->pos = malloc((size_t)s->n_pos * (size_t)m->D * sizeof *s->pos);
    if (!s->pos)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (m->v->pos == BART_POS_SIN_HALF)
        sin_half(s->pos, s->n_pos, m->D);
    else /* position p at fairseq row p + padding_idx + 1 */
        sin_fairseq(s->pos, m->cfg.pad_token_id + 1, s->n_pos, m->D);
    return 0;
}

/* ---- layers ---- */

static int take_ln(struct weights *w, const char *base, const char *part, int D,
                   struct norm_weights *ln, struct err *e)
{
    char n[192];
    snprintf(n, sizeof n, "%s.%s", base, part);
    return weights_norm(w, n, D, true, ln, e);
}

static int load_attn(struct bart_model *m, struct weights *w, struct dnn_ctx *ctx, const char *base,
                     bool cross, enum dtype_compute dt, struct bart_attn *a, struct err *e)
{
    char n[3][192];
    const char *bases[3];
    const int64_t outs[3] = {m->D, m->D, m->D};
    static const char *const parts[] = {"q_proj", "k_proj", "v_proj"};
    for (int i = 0; i < 3; i++) {
        snprintf(n[i], sizeof n[i], "%s.%s", base, parts[i]);
        bases[i] = n[i];
    }
    int rc = cross ? weights_linear(w, ctx, bases[0], m->D, m->D, true, dt, ACT_NONE, &a->q, e)
                   : weights_stacked(w, ctx, bases, outs, 3, m->D, true, dt, ACT_NONE, &a->qkv, e);
    if (rc == 0 && cross)
        rc = weights_stacked(w, ctx, bases + 1, outs, 2, m->D, true, dt, ACT_NONE, &a->kv, e);
    snprintf(n[0], sizeof n[0], "%s.out_proj", base);
    return rc ? rc : weights_linear(w, ctx, n[0], m->D, m->D, true, dt, ACT_NONE, &a->o, e);
}

static int load_layer(struct bart_model *m, struct weights *w, struct dnn_ctx *ctx,
                      const char *stack, int l, struct bart_stack *s, enum dtype_compute dt,
                      struct err *e)
{
    struct bart_layer *L = &s->layers[l];
    bool dec = s == &m->dec;
    char b[96], n[160];
    snprintf(b, sizeof b, "%s.layers.%d", stack, l);
    snprintf(n, sizeof n, "%s.self_attn", b);
    int rc = load_attn(m, w, ctx, n, false, dt, &L->self, e);
    if (rc == 0)
        rc = take_ln(w, b, "self_attn_layer_norm", m->D, &L->self.ln, e);
    snprintf(n, sizeof n, "%s.encoder_attn", b);
    if (rc == 0 && dec)
        rc = load_attn(m, w, ctx, n, true, dt, &L->cross, e);
    if (rc == 0 && dec)
        rc = take_ln(w, b, "encoder_attn_layer_norm", m->D, &L->cross.ln, e);
    snprintf(n, sizeof n, "%s.fc1", b);
    if (rc == 0)
        rc = weights_linear(w, ctx, n, m->D, s->ffn, true, dt, m->act, &L->ff.fc1, e);
    snprintf(n, sizeof n, "%s.fc2", b);
    if (rc == 0)
        rc = weights_linear(w, ctx, n, s->ffn, m->D, true, dt, ACT_NONE, &L->ff.fc2, e);
    return rc ? rc : take_ln(w, b, "final_layer_norm", m->D, &L->ff.ln, e);
}

static int load_stack(struct bart_model *m, struct weights *w, struct dnn_ctx *ctx,
                      const char *stack, struct bart_stack *s, enum dtype_compute dt, struct err *e)
{
    int rc = take_positions(m, w, stack, s, e);
    if (rc == 0 && m->v->ln_embedding)
        rc = take_ln(w, stack, "layernorm_embedding", m->D, &s->ln_emb, e);
    if (rc == 0 && m->v->final_ln)
        rc = take_ln(w, stack, "layer_norm", m->D, &s->ln_final, e);
    if (rc)
        return rc;
    s->layers = calloc((size_t)s->n_layers, sizeof *s->layers);
    if (!s->layers)
        return err_set(e, ERR_NOMEM, "out of memory");
    for (int l = 0; l < s->n_layers && rc == 0; l++)
        rc = load_layer(m, w, ctx, stack, l, s, dt, e);
    return rc;
}

/* lm_head (+ final_logits_bias), or the classification head; names without "model.". */
static int load_head(struct bart_model *m, struct weights *w, struct dnn_ctx *ctx,
                     enum dtype_compute dt, struct err *e)
{
    char saved[sizeof w->prefix];
    memcpy(saved, w->prefix, sizeof saved);
    w->prefix[0] = '\0';
    int rc = 0;
    if (m->classify) {
        m->num_labels = (int)m->cfg.num_labels;
        rc = weights_linear(w, ctx, "classification_head.dense", m->D, m->D, true, dt, ACT_NONE,
                            &m->cls_dense, e);
        if (rc == 0)
            rc = weights_linear(w, ctx, "classification_head.out_proj", m->D, m->num_labels, true,
                                dt, ACT_NONE, &m->cls_out, e);
    } else {
        if (checkpoint_get(w->ck, "final_logits_bias"))
            rc = weights_take(w, "final_logits_bias", 1, m->vocab, &m->final_logits_bias, e);
        if (rc == 0 && !m->cfg.tie_word_embeddings)
            rc = weights_linear(w, ctx, "lm_head", m->D, m->vocab, false, dt, ACT_NONE, &m->lm_head,
                                e);
        else if (rc == 0)
            rc = linear_init(&m->lm_head, ctx, emb_table_f32(m->dec.embed), NULL, m->D,
                             (int)m->vocab, dt, ACT_NONE, e);
    }
    memcpy(w->prefix, saved, sizeof saved);
    return rc;
}

/* Copies of tied weights transformers saves and does not load (and Marian's unused
 * model.shared when the stacks have their own embeddings). arg: the model. */
static bool ignorable(const void *arg, const char *name)
{
    const struct bart_model *m = arg;
    if (m->dec_embed.rows)
        return strstr(name, "shared.weight") ||
               (m->cfg.tie_word_embeddings && strcmp(name, "lm_head.weight") == 0);
    if (strstr(name, "encoder.embed_tokens.weight") || strstr(name, "decoder.embed_tokens.weight"))
        return true;
    return m->cfg.tie_word_embeddings && strcmp(name, "lm_head.weight") == 0;
}

/* ---- config ---- */

static int read_sizes(struct bart_model *m, const char *dir, struct err *e)
{
    const struct hf_config *c = &m->cfg;
    const struct hf_seq2seq *s = &c->s2s;
    for (size_t i = 0; i < N_VARIANTS; i++)
        if (strcmp(variants[i].model_type, c->model_type) == 0)
            m->v = &variants[i];
    m->D = (int)c->hidden_size;
    m->vocab = c->vocab_size;
    m->max_pos = c->max_position_embeddings;
    m->eps = (float)c->layer_norm_eps;
    m->enc = (struct bart_stack){.n_layers = (int)c->num_hidden_layers,
                                 .n_heads = (int)c->num_attention_heads,
                                 .ffn = (int)c->intermediate_size};
    m->dec = (struct bart_stack){.n_layers = (int)c->num_decoder_layers,
                                 .n_heads = (int)s->decoder_attention_heads,
                                 .ffn = (int)s->decoder_ffn_dim};
    if (m->D % m->enc.n_heads || m->D % m->dec.n_heads || m->vocab > INT32_MAX ||
        (int64_t)m->D * 3 > INT32_MAX / 4 || m->max_pos <= 0 || m->max_pos > (1 << 20) ||
        m->enc.n_layers <= 0 || m->dec.n_layers <= 0)
        return err_set(e, ERR_FORMAT, "%s: config.json: sizes out of range", dir);
    if (m->v->pos == BART_POS_SIN_FAIRSEQ && (m->D < 4 || c->pad_token_id < 0))
        return err_set(e, ERR_FORMAT,
                       "%s: config.json: M2M100 positions need d_model >= 4 and a pad_token_id",
                       dir);
    m->enc.head_dim = m->D / m->enc.n_heads;
    m->dec.head_dim = m->D / m->dec.n_heads;
    m->attn_scale_enc = (float)pow((double)m->enc.head_dim, -0.5);
    m->attn_scale_dec = (float)pow((double)m->dec.head_dim, -0.5);
    m->embed_scale = s->scale_embedding ? (float)sqrt((double)m->D) : 1.0f;
    int64_t start = c->decoder_start_token_id >= 0 ? c->decoder_start_token_id
                    : c->bos_token_id >= 0         ? c->bos_token_id
                    : c->pad_token_id >= 0         ? c->pad_token_id
                                                   : 0;
    if (start >= m->vocab)
        return err_set(e, ERR_FORMAT, "%s: config.json: decoder_start_token_id %lld >= vocab %lld",
                       dir, (long long)start, (long long)m->vocab);
    m->start_token = (int32_t)start;
    int rc = act_parse(c->hidden_act, &m->act, e);
    return rc ? err_prefix(e, "%s: config.json: activation_function: ", dir) : 0;
}

static int load_tensors(struct bart_model *m, struct weights *w, enum dtype_compute dt,
                        struct dnn_ctx *ctx, struct err *e)
{
    int rc = read_sizes(m, w->dir, e);
    if (rc)
        return rc;
    /* Marian without shared embeddings: each stack's own copy (transformers deep-copies
     * model.shared into both and leaves model.shared itself unused) */
    bool shared = m->cfg.s2s.share_encoder_decoder_embeddings;
    const char *embed = shared ? "shared.weight" : "encoder.embed_tokens.weight";
    snprintf(w->prefix, sizeof w->prefix, "%s", weights_pick_prefix(w, "model.", embed));
    float *t = NULL;
    if ((rc = weights_take(w, embed, m->vocab, m->D, &t, e)) == 0)
        emb_table_take(&m->shared, t, m->vocab, m->D);
    if (rc == 0 && !shared &&
        (rc = weights_take(w, "decoder.embed_tokens.weight", m->vocab, m->D, &t, e)) == 0)
        emb_table_take(&m->dec_embed, t, m->vocab, m->D);
    if (rc)
        return rc;
    m->enc.embed = &m->shared;
    m->dec.embed = m->dec_embed.rows ? &m->dec_embed : &m->shared;
    rc = load_stack(m, w, ctx, "encoder", &m->enc, dt, e);
    if (rc == 0)
        rc = load_stack(m, w, ctx, "decoder", &m->dec, dt, e);
    if (rc == 0)
        rc = load_head(m, w, ctx, dt, e);
    /* after load_head: a tied lm_head is packed from the f32 rows, which are then read back
     * from it (one copy) */
    const struct emb_table *tied =
        m->cfg.tie_word_embeddings && m->lm_head.w_packed ? m->dec.embed : NULL;
    if (rc == 0)
        rc = tied == &m->shared ? emb_table_share(&m->shared, &m->lm_head, dt, e)
                                : emb_table_compact(&m->shared, dt, e);
    if (rc == 0)
        rc = tied == &m->dec_embed ? emb_table_share(&m->dec_embed, &m->lm_head, dt, e)
                                   : emb_table_compact(&m->dec_embed, dt, e);
    return rc ? rc : weights_check_unused(w, m->cfg.model_type, ignorable, m, e);
}

int bart_load_weights(const struct hf_config *cfg, struct weights *w, enum dtype_compute dt,
                      struct dnn_ctx *ctx, bool classify, struct bart_model **out, struct err *e)
{
    struct bart_model *m = calloc(1, sizeof *m);
    *out = m;
    if (!m)
        return err_set(e, ERR_NOMEM, "out of memory");
    m->classify = classify;
    /* a copy of what the model keeps of cfg: its sizes and ids (the eos ids its own copy; no
     * labels, which the caller keeps) */
    m->cfg = *cfg;
    m->cfg.id2label = NULL;
    m->cfg.eos_token_ids = NULL;
    m->cfg.n_eos_token_ids = 0;
    m->cfg.sliding_layers = NULL;
    m->cfg.rope_scaling = (struct hf_rope_scaling){0};
    if (cfg->n_eos_token_ids) {
        m->cfg.eos_token_ids = malloc(cfg->n_eos_token_ids * sizeof *cfg->eos_token_ids);
        if (!m->cfg.eos_token_ids)
            return err_set(e, ERR_NOMEM, "out of memory");
        memcpy(m->cfg.eos_token_ids, cfg->eos_token_ids,
               cfg->n_eos_token_ids * sizeof *cfg->eos_token_ids);
        m->cfg.n_eos_token_ids = cfg->n_eos_token_ids;
    }
    return load_tensors(m, w, dt, ctx, e);
}

/* The generation loader: config.json, then the tensors (see weights_load_fn). */
static int load(void *model, struct weights *w, enum dtype_compute dt, struct dnn_ctx *ctx,
                struct err *e)
{
    struct bart_model *m = model;
    const char *names[N_VARIANTS];
    const struct hf_accept accept = {names, bart_model_types(names, N_VARIANTS),
                                     "an encoder-decoder"};
    int rc = hf_config_load_for(w->dir, &accept, &m->cfg, e);
    if (rc == 0)
        rc = weights_open(w, e);
    return rc ? rc : load_tensors(m, w, dt, ctx, e);
}

static void unload(void *m)
{
    bart_unload(m);
}

int bart_load(const char *dir, enum dtype_compute dt, struct dnn_ctx *ctx, struct bart_model **out,
              struct err *e)
{
    void *m;
    int rc = weights_load_model(dir, dt, ctx, sizeof **out, load, unload, &m, e);
    *out = m;
    return rc;
}

static void attn_fini(struct bart_attn *a)
{
    linear_fini(&a->qkv);
    linear_fini(&a->q);
    linear_fini(&a->kv);
    linear_fini(&a->o);
    norm_weights_fini(&a->ln);
}

static void stack_fini(struct bart_stack *s)
{
    for (int l = 0; s->layers && l < s->n_layers; l++) {
        attn_fini(&s->layers[l].self);
        attn_fini(&s->layers[l].cross);
        linear_fini(&s->layers[l].ff.fc1);
        linear_fini(&s->layers[l].ff.fc2);
        norm_weights_fini(&s->layers[l].ff.ln);
    }
    free(s->layers);
    free(s->pos);
    norm_weights_fini(&s->ln_emb);
    norm_weights_fini(&s->ln_final);
}

void bart_unload(struct bart_model *m)
{
    if (!m)
        return;
    stack_fini(&m->enc);
    stack_fini(&m->dec);
    emb_table_fini(&m->shared);
    emb_table_fini(&m->dec_embed);
    free(m->final_logits_bias);
    linear_fini(&m->lm_head);
    linear_fini(&m->cls_dense);
    linear_fini(&m->cls_out);
    hf_config_fini(&m->cfg);
    free(m);
}

const struct hf_config *bart_config(const struct bart_model *m)
{
    return &m->cfg;
}
int bart_vocab_size(const struct bart_model *m)
{
    return (int)m->vocab;
}
int bart_hidden_size(const struct bart_model *m)
{
    return m->D;
}
int64_t bart_max_positions(const struct bart_model *m)
{
    return m->max_pos;
}
int32_t bart_decoder_start_token_id(const struct bart_model *m)
{
    return m->start_token;
}
int bart_num_labels(const struct bart_model *m)
{
    return m->classify ? m->num_labels : 0;
}

/* ---- sequences ---- */

int bart_seq_new(const struct bart_model *m, int max_input_tokens, int max_output_tokens,
                 struct bart_seq **out, struct err *e)
{
    *out = NULL;
    struct bart_seq *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(e, ERR_NOMEM, "out of memory");
    s->m = m;
    int rc = s2s_kv_init(&s->kv, m->dec.n_layers, m->D, max_input_tokens, max_output_tokens, e);
    if (rc) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void bart_seq_free(struct bart_seq *s)
{
    if (!s)
        return;
    s2s_kv_fini(&s->kv);
    free(s);
}

void bart_seq_reset(struct bart_seq *s)
{
    s2s_kv_reset(&s->kv);
}

int bart_seq_input_len(const struct bart_seq *s)
{
    return s->kv.in_len;
}

int bart_seq_len(const struct bart_seq *s)
{
    return s->kv.len;
}

int bart_seq_copy(struct bart_seq *dst, const struct bart_seq *src, struct err *e)
{
    return s2s_kv_copy(&dst->kv, &src->kv, e);
}

int bart_seq_fork(struct bart_seq *dst, const struct bart_seq *src, struct err *e)
{
    return s2s_kv_fork(&dst->kv, &src->kv, e);
}
