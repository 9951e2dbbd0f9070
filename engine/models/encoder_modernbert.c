/* encoder_modernbert: ModernBERT as an encoder family (encoder_family.h): its weights, its
 * per-worker activations and its forward pass, as transformers' modeling_modernbert with
 * eager/sdpa attention (padded batches, not unpadded: the same values). Shapes of one pass
 * (B sequences of S tokens, M = B*S rows, hidden H, intermediate I):
 *
 *   x   = LN(tok[ids])                                       (M, H)  no position table
 *   layer l (local when config.json's sliding_layers says: l % global_attn_every_n_layers):
 *     h   = l == 0 ? x : LN_attn(x)                          layer 0 has no attention norm
 *     qkv = h Wqkv^T; q, k rotated at positions 0..S-1       RoPE base: local_rope_theta on
 *                                                            local layers, else global
 *     x  += attention(q, k, v) Wo^T                          keys: not padding and, local,
 *                                                            within local_attention / 2
 *     h   = LN_mlp(x); [a | g] = h Wi^T                      Wi split in two linears
 *     x  += (act(a) * g) Wo^T                                GeGLU via (M, I)
 *   x   = LN_final(x)                                        the last hidden state
 *   head (dense + classifier_activation + LN):  masked LM: head -> decoder tied to tok (+ bias)
 *     sequence classes: pool (first token, or the mask's mean) -> head -> classifier
 *     token classes: head -> classifier per token
 *
 * LayerNorms without a bias (norm_bias false) get a zero one; the linears have biases only
 * where config.json says (attention_bias, mlp_bias, classifier_bias, decoder_bias). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/encoder_family.h"
#include "models/grow.h"
#include "ops/emb_table.h"
#include "ops/kv.h"

struct mb_layer {
    struct linear qkv, o, wi_in, wi_gate, wo;
    struct norm_weights attn_norm, mlp_norm; /* attn_norm.w NULL on layer 0 */
    bool local;
};

struct mb {
    int H, I, n_heads, head_dim, n_layers, window;
    float eps;
    int64_t vocab, pad;
    struct emb_table tok; /* (vocab, H) in the compute dtype */
    struct norm_weights emb_norm, final_norm, head_norm;
    struct mb_layer *layers;
    float *inv_freq[2]; /* global, local: (head_dim / 2) each */
    enum encoder_head head;
    size_t out_width;
    bool mean_pool;
    struct linear dense, cls; /* the head's dense (act fused); classifier or tied decoder */
};

struct mb_run {
    float *x, *h, *qkv, *att, *a, *g, *rope, *rows, *rows2, *out;
    size_t cap_x, cap_h, cap_qkv, cap_att, cap_a, cap_g, cap_rope, cap_rows, cap_rows2, cap_out;
};

/* ---- loading ---- */

/* A LayerNorm `base`.weight (+ `base`.bias when has_bias, else a zero bias). */
static int take_norm(struct weights *w, const char *base, int64_t n, bool has_bias,
                     struct norm_weights *out, struct err *e)
{
    int rc = weights_norm(w, base, n, has_bias, out, e);
    if (rc == 0 && !has_bias && !(out->b = calloc((size_t)n, sizeof *out->b)))
        rc = err_set(e, ERR_NOMEM, "out of memory");
    return rc;
}

/* mlp.Wi (2I, H) as two linears: the input half (act fused) and the gate half. */
static int take_wi(const struct mb *m, struct weights *w, struct dnn_ctx *ctx, const char *lp,
                   bool bias, enum dtype_compute dt, enum act act, struct mb_layer *L,
                   struct err *e)
{
    char n[256];
    float *wt = NULL, *bv = NULL;
    snprintf(n, sizeof n, "%smlp.Wi.weight", lp);
    int rc = weights_take(w, n, 2 * (int64_t)m->I, m->H, &wt, e);
    snprintf(n, sizeof n, "%smlp.Wi.bias", lp);
    if (rc == 0 && bias)
        rc = weights_take(w, n, 2 * (int64_t)m->I, 0, &bv, e);
    size_t half = (size_t)m->I * (size_t)m->H;
    if (rc == 0)
        rc = linear_init(&L->wi_in, ctx, wt, bv, m->H, m->I, dt, act, e);
    if (rc == 0)
        rc = linear_init(&L->wi_gate, ctx, wt + half, bv ? bv + m->I : NULL, m->H, m->I, dt,
                         ACT_NONE, e);
    free(wt);
    free(bv);
    return rc;
}

static int load_layer(struct mb *m, const struct hf_config *cfg, struct weights *w,
                      struct dnn_ctx *ctx, const char *prefix, int l, enum dtype_compute dt,
                      enum act act, struct err *e)
{
    struct mb_layer *L = &m->layers[l];
    char lp[128], n[256];
    snprintf(lp, sizeof lp, "%slayers.%d.", prefix, l);
    L->local = cfg->sliding_layers && cfg->sliding_layers[l];
    int rc = 0;
    snprintf(n, sizeof n, "%sattn_norm", lp);
    if (l > 0)
        rc = take_norm(w, n, m->H, cfg->norm_bias, &L->attn_norm, e);
    snprintf(n, sizeof n, "%sattn.Wqkv", lp);
    if (rc == 0)
        rc = weights_linear(w, ctx, n, m->H, 3 * (int64_t)m->H, cfg->attention_bias, dt, ACT_NONE,
                            &L->qkv, e);
    snprintf(n, sizeof n, "%sattn.Wo", lp);
    if (rc == 0)
        rc = weights_linear(w, ctx, n, m->H, m->H, cfg->attention_bias, dt, ACT_NONE, &L->o, e);
    snprintf(n, sizeof n, "%smlp_norm", lp);
    if (rc == 0)
        rc = take_norm(w, n, m->H, cfg->norm_bias, &L->mlp_norm, e);
    if (rc == 0)
        rc = take_wi(m, w, ctx, lp, cfg->mlp_bias, dt, act, L, e);
    snprintf(n, sizeof n, "%smlp.Wo", lp);
    if (rc == 0)
        rc = weights_linear(w, ctx, n, m->I, m->H, cfg->mlp_bias, dt, ACT_NONE, &L->wo, e);
    return rc;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The heads by architecture: what they output, per row. */
static const struct {
    const char *suffix;
    enum encoder_head head;
} heads[] = {
    {"ForMaskedLM", HEAD_MASKED_LM},
    {"ForSequenceClassification", HEAD_SEQ_CLS},
    {"ForTokenClassification", HEAD_TOKEN_CLS},
    {"Model", HEAD_NONE},
};

/* head.dense + act + head.norm, then the classifier, or the decoder tied to the embeddings. */
static int load_head(struct mb *m, const struct hf_config *cfg, struct weights *w,
                     struct dnn_ctx *ctx, enum dtype_compute dt, struct err *e)
{
    const char *arch = cfg->architecture;
    size_t i = 0, n = sizeof heads / sizeof heads[0];
    while (i < n && !(ends_with(arch, heads[i].suffix) || (!arch[0] && heads[i].head == HEAD_NONE)))
        i++;
    if (i == n)
        return err_set(e, ERR_FORMAT, "%s: config.json: architecture '%s' is not supported", w->dir,
                       arch);
    m->head = heads[i].head;
    m->mean_pool = strcmp(cfg->classifier_pooling, "mean") == 0;
    m->out_width = m->head == HEAD_NONE        ? (size_t)m->H
                   : m->head == HEAD_MASKED_LM ? (size_t)m->vocab
                                               : cfg->num_labels;
    if (m->head == HEAD_NONE)
        return 0;
    enum act act;
    int rc = act_parse(cfg->classifier_activation, &act, e);
    if (rc) {
        err_prefix(e, "%s: config.json: classifier_activation: ", w->dir);
        return rc;
    }
    rc = weights_linear(w, ctx, "head.dense", m->H, m->H, cfg->classifier_bias, dt, act, &m->dense,
                        e);
    if (rc == 0)
        rc = take_norm(w, "head.norm", m->H, cfg->norm_bias, &m->head_norm, e);
    if (rc || m->head != HEAD_MASKED_LM)
        return rc ? rc
                  : weights_linear(w, ctx, "classifier", m->H, (int64_t)m->out_width, true, dt,
                                   ACT_NONE, &m->cls, e);
    float *bv = NULL;
    if (cfg->decoder_bias)
        rc = weights_take(w, "decoder.bias", m->vocab, 0, &bv, e);
    if (rc == 0)
        rc = linear_init(&m->cls, ctx, emb_table_f32(&m->tok), bv, m->H, (int)m->vocab, dt,
                         ACT_NONE, e);
    free(bv);
    return rc;
}

static void mb_free(void *model)
{
    struct mb *m = model;
    if (!m)
        return;
    for (int i = 0; m->layers && i < m->n_layers; i++) {
        struct mb_layer *L = &m->layers[i];
        linear_fini(&L->qkv);
        linear_fini(&L->o);
        linear_fini(&L->wi_in);
        linear_fini(&L->wi_gate);
        linear_fini(&L->wo);
        norm_weights_fini(&L->attn_norm);
        norm_weights_fini(&L->mlp_norm);
    }
    free(m->layers);
    emb_table_fini(&m->tok);
    free(m->inv_freq[0]);
    free(m->inv_freq[1]);
    norm_weights_fini(&m->emb_norm);
    norm_weights_fini(&m->final_norm);
    norm_weights_fini(&m->head_norm);
    linear_fini(&m->dense);
    linear_fini(&m->cls);
    free(m);
}

/* The RoPE inverse frequencies of both bases (transformers' default rope init). */
static int load_rope(struct mb *m, const struct hf_config *cfg, struct err *e)
{
    const double theta[2] = {cfg->rope_theta, cfg->local_rope_theta};
    for (int k = 0; k < 2; k++) {
        struct rope_params p = {.type = ROPE_DEFAULT, .dim = m->head_dim, .theta = theta[k]};
        int rc = rope_check(&p, e);
        if (rc)
            return rc;
        if (!(m->inv_freq[k] = calloc((size_t)m->head_dim / 2, sizeof(float))))
            return err_set(e, ERR_NOMEM, "out of memory");
        rope_inv_freq(&p, 0, m->inv_freq[k]);
    }
    return 0;
}

static int mb_load(const struct hf_config *cfg, struct weights *w, const char *prefix,
                   enum dtype_compute dt, struct dnn_ctx *ctx, void **model,
                   struct encoder_facts *facts, struct err *e)
{
    struct mb *m = calloc(1, sizeof *m);
    if (!(*model = m))
        return err_set(e, ERR_NOMEM, "out of memory");
    m->H = (int)cfg->hidden_size;
    m->I = (int)cfg->intermediate_size;
    m->n_heads = (int)cfg->num_attention_heads;
    m->head_dim = m->H / m->n_heads;
    m->n_layers = (int)cfg->num_hidden_layers;
    m->window = (int)(cfg->sliding_window / 2);
    m->eps = (float)cfg->layer_norm_eps;
    m->vocab = cfg->vocab_size;
    m->pad = cfg->pad_token_id;
    enum act act;
    int rc = act_parse(cfg->hidden_act, &act, e);
    if (rc == 0)
        rc = load_rope(m, cfg, e);
    char n[256];
    snprintf(n, sizeof n, "%sembeddings.tok_embeddings.weight", prefix);
    float *tok = NULL;
    if (rc == 0 && (rc = weights_take(w, n, m->vocab, m->H, &tok, e)) == 0)
        emb_table_take(&m->tok, tok, m->vocab, m->H);
    snprintf(n, sizeof n, "%sembeddings.norm", prefix);
    if (rc == 0)
        rc = take_norm(w, n, m->H, cfg->norm_bias, &m->emb_norm, e);
    snprintf(n, sizeof n, "%sfinal_norm", prefix);
    if (rc == 0)
        rc = take_norm(w, n, m->H, cfg->norm_bias, &m->final_norm, e);
    if (rc == 0 && !(m->layers = calloc((size_t)m->n_layers, sizeof *m->layers)))
        rc = err_set(e, ERR_NOMEM, "out of memory");
    for (int l = 0; rc == 0 && l < m->n_layers; l++)
        rc = load_layer(m, cfg, w, ctx, prefix, l, dt, act, e);
    if (rc == 0)
        rc = load_head(m, cfg, w, ctx, dt, e);
    if (rc == 0) /* after load_head: a masked-LM decoder is packed from the f32 rows (one copy) */
        rc = m->head == HEAD_MASKED_LM ? emb_table_share(&m->tok, &m->cls, dt, e)
                                       : emb_table_compact(&m->tok, dt, e);
    facts->head = m->head;
    facts->out_width = m->out_width;
    return rc;
}

/* ---- forward ---- */

static void mb_run_free(void *run)
{
    struct mb_run *r = run;
    if (!r)
        return;
    free(r->x);
    free(r->h);
    free(r->qkv);
    free(r->att);
    free(r->a);
    free(r->g);
    free(r->rope);
    free(r->rows);
    free(r->rows2);
    free(r->out);
    free(r);
}

/* x = LN(tok[ids]), the ids checked first. */
static int embed(const struct mb *m, struct dnn_ctx *ctx, const struct encoder_batch *b, float *x,
                 struct err *e)
{
    int M = b->batch * b->seq;
    size_t H = (size_t)m->H;
    for (int r = 0; r < M; r++)
        if (b->ids[r] < 0 || b->ids[r] >= m->vocab)
            return err_set(e, ERR_INVALID, "token id %d out of the vocabulary (%lld)", b->ids[r],
                           (long long)m->vocab);
    for (int r = 0; r < M; r++)
        emb_table_row(&m->tok, b->ids[r], x + (size_t)r * H);
    return layernorm_forward(ctx, x, NULL, x, m->emb_norm.w, m->emb_norm.b, m->eps, M, m->H, e);
}

/* cos | sin of positions 0..S-1 for both bases: rope[((k * S + t) * 2 + {0,1}) * half]. */
static void rope_tables(const struct mb *m, int S, float *rope)
{
    int half = m->head_dim / 2;
    for (int k = 0; k < 2; k++)
        for (int t = 0; t < S; t++) {
            float *c = rope + ((size_t)k * (size_t)S + (size_t)t) * 2 * (size_t)half;
            rope_cos_sin(m->inv_freq[k], half, t, c, c + half);
        }
}

/* q and k of every row rotated by their position's angles (table k of rope_tables). */
static void rotate_qk(const struct mb *m, const struct encoder_batch *b, const float *rope, int k,
                      float *qkv)
{
    int half = m->head_dim / 2, S = b->seq, M = b->batch * S;
    size_t ld = 3 * (size_t)m->H;
    for (int r = 0; r < M; r++) {
        const float *c = rope + ((size_t)k * (size_t)S + (size_t)(r % S)) * 2 * (size_t)half;
        rope_rotate(qkv + (size_t)r * ld, m->n_heads, m->head_dim, c, c + half);
        rope_rotate(qkv + (size_t)r * ld + m->H, m->n_heads, m->head_dim, c, c + half);
    }
}

static int layer_forward(const struct mb *m, const struct mb_layer *L, struct dnn_ctx *ctx,
                         struct mb_run *r, const struct encoder_batch *b, struct err *e)
{
    int M = b->batch * b->seq, H = m->H, rc = 0;
    const float *in = r->x;
    if (L->attn_norm.w) {
        rc = layernorm_forward(ctx, r->x, NULL, r->h, L->attn_norm.w, L->attn_norm.b, m->eps, M, H,
                               e);
        in = r->h;
    }
    if (rc == 0)
        rc = linear_forward(&L->qkv, ctx, in, r->qkv, M, e);
    if (rc)
        return rc;
    rotate_qk(m, b, r->rope, L->local, r->qkv);
    struct attn_shape s = {
        b->batch, b->seq, m->n_heads, m->head_dim, 3 * H, H, L->local ? m->window : 0};
    rc = attention_forward(ctx, &s, r->qkv, r->qkv + H, r->qkv + 2 * H, b->mask, r->att, e);
    if (rc == 0)
        rc = linear_forward_add(&L->o, ctx, r->att, r->x, M, e);
    if (rc == 0)
        rc =
            layernorm_forward(ctx, r->x, NULL, r->h, L->mlp_norm.w, L->mlp_norm.b, m->eps, M, H, e);
    if (rc == 0)
        rc = linear_forward(&L->wi_in, ctx, r->h, r->a, M, e);
    if (rc == 0)
        rc = linear_forward(&L->wi_gate, ctx, r->h, r->g, M, e);
    if (rc)
        return rc;
    size_t n = (size_t)M * (size_t)m->I;
    for (size_t i = 0; i < n; i++)
        r->a[i] *= r->g[i];
    return linear_forward_add(&L->wo, ctx, r->a, r->x, M, e);
}

/* The pooled rows of a sequence classifier into rows (B, H): the first token, or the mean of
 * the tokens the mask keeps (HF: (x * mask).sum(1) / mask.sum(1)). */
static void pool(const struct mb *m, const struct encoder_batch *b, const float *x, float *rows)
{
    size_t H = (size_t)m->H, S = (size_t)b->seq;
    for (size_t i = 0; i < (size_t)b->batch; i++) {
        float *o = rows + i * H;
        if (!m->mean_pool) {
            memcpy(o, x + i * S * H, H * sizeof *o);
            continue;
        }
        memset(o, 0, H * sizeof *o);
        float n = 0;
        for (size_t t = 0; t < S; t++) {
            if (b->mask && !b->mask[i * S + t])
                continue;
            n += 1.0f;
            for (size_t k = 0; k < H; k++)
                o[k] += x[(i * S + t) * H + k];
        }
        for (size_t k = 0; k < H; k++)
            o[k] /= n > 0 ? n : 1.0f;
    }
}

/* The n rows of the head's input in r->rows, as the head kind picks them. */
static int head_rows(const struct mb *m, const struct encoder_batch *b, struct mb_run *r, int *n,
                     struct err *e)
{
    int M = b->batch * b->seq;
    size_t H = (size_t)m->H;
    *n = m->head == HEAD_SEQ_CLS                   ? b->batch
         : m->head == HEAD_MASKED_LM && b->lm_rows ? b->n_lm_rows
                                                   : M;
    if (*n <= 0)
        return err_set(e, ERR_INVALID, "no rows to predict");
    int rc = grow_floats(&r->rows, &r->cap_rows, (size_t)*n * H, e);
    if (rc == 0)
        rc = grow_floats(&r->rows2, &r->cap_rows2, (size_t)*n * H, e);
    if (rc == 0)
        rc = grow_floats(&r->out, &r->cap_out, (size_t)*n * m->out_width, e);
    if (rc)
        return rc;
    if (m->head == HEAD_SEQ_CLS) {
        pool(m, b, r->x, r->rows);
        return 0;
    }
    for (int i = 0; i < *n; i++) {
        int row = m->head == HEAD_MASKED_LM && b->lm_rows ? b->lm_rows[i] : i;
        if (row < 0 || row >= M)
            return err_set(e, ERR_INVALID, "row %d outside the batch", row);
        memcpy(r->rows + (size_t)i * H, r->x + (size_t)row * H, H * sizeof(float));
    }
    return 0;
}

static int head_forward(const struct mb *m, struct dnn_ctx *ctx, struct mb_run *r,
                        const struct encoder_batch *b, const float **out, struct err *e)
{
    if (m->head == HEAD_NONE) {
        *out = r->x;
        return 0;
    }
    int n, rc = head_rows(m, b, r, &n, e);
    if (rc == 0)
        rc = linear_forward(&m->dense, ctx, r->rows, r->rows2, n, e);
    if (rc == 0)
        rc = layernorm_forward(ctx, r->rows2, NULL, r->rows2, m->head_norm.w, m->head_norm.b,
                               m->eps, n, m->H, e);
    if (rc == 0)
        rc = linear_forward(&m->cls, ctx, r->rows2, r->out, n, e);
    *out = r->out;
    return rc;
}

static int grow_run(const struct mb *m, struct mb_run *r, size_t M, size_t S, struct err *e)
{
    size_t H = (size_t)m->H, I = (size_t)m->I;
    int rc = grow_floats(&r->x, &r->cap_x, M * H, e);
    if (rc == 0)
        rc = grow_floats(&r->h, &r->cap_h, M * H, e);
    if (rc == 0)
        rc = grow_floats(&r->qkv, &r->cap_qkv, M * 3 * H, e);
    if (rc == 0)
        rc = grow_floats(&r->att, &r->cap_att, M * H, e);
    if (rc == 0)
        rc = grow_floats(&r->a, &r->cap_a, M * I, e);
    if (rc == 0)
        rc = grow_floats(&r->g, &r->cap_g, M * I, e);
    if (rc == 0)
        rc = grow_floats(&r->rope, &r->cap_rope, 2 * S * (size_t)m->head_dim, e);
    return rc;
}

static int mb_forward(const void *model, struct dnn_ctx *ctx, void **run,
                      const struct encoder_batch *b, const struct encoder_stop *stop,
                      const float **out, const float **hidden, struct err *e)
{
    const struct mb *m = model;
    if (!*run && !(*run = calloc(1, sizeof(struct mb_run))))
        return err_set(e, ERR_NOMEM, "out of memory");
    struct mb_run *r = *run;
    size_t M = (size_t)b->batch * (size_t)b->seq;
    int rc = grow_run(m, r, M, (size_t)b->seq, e);
    if (rc == 0)
        rc = embed(m, ctx, b, r->x, e);
    if (rc)
        return rc;
    rope_tables(m, b->seq, r->rope);
    for (int l = 0; l < m->n_layers && rc == 0; l++) {
        if (stop->fn && stop->fn(stop->arg))
            return err_set(e, ERR_CANCELLED, "encoder: cancelled");
        rc = layer_forward(m, &m->layers[l], ctx, r, b, e);
    }
    if (rc == 0)
        rc = layernorm_forward(ctx, r->x, NULL, r->x, m->final_norm.w, m->final_norm.b, m->eps,
                               (int)M, m->H, e);
    if (rc)
        return rc;
    if (hidden)
        *hidden = r->x;
    return head_forward(m, ctx, r, b, out, e);
}

const struct encoder_family modernbert_family = {mb_load, mb_free, mb_forward, mb_run_free};
