/* encoder_relpos: the encoders whose attention scores get a relative-position bias, as
 * struct relpos_kind rows of encoder.c's variants (see encoder_impl.h):
 *
 *   MPNet: bias[h][i][j] = table[bucket(j - i)][h], T5's bidirectional buckets (32 of them,
 *     max distance 128: MPNetEncoder.compute_position_bias's defaults), computed once per forward
 *     pass and shared by every layer and sequence; scores = q k^T / sqrt(d) + bias.
 *   DeBERTa-v2/v3 (DisentangledSelfAttention): with r(i, j) = clamp(bucket(i - j) + span, 0,
 *     2 span - 1), bucket the log buckets of make_log_bucket_position (position_buckets > 0) or
 *     the plain distance, and P = LN(rel_embeddings) (norm_rel_ebd) over 2 span rows,
 *       scores = (q_i k_j + [c2p] q_i pk_r(i,j) + [p2c] k_j pq_r(i,j)) / sqrt(d (1 + c2p + p2c))
 *     where pq, pk are P through the layer's query/key projections (share_att_key) or its
 *     pos_query_proj/pos_key_proj. pq and pk do not depend on the input: they are computed at
 *     load, per layer ((n_layers, 2, 2 span, H) floats). The c2p/p2c terms are per sequence.
 *
 * The bias goes to ops' attention_forward_biased, which adds it to the scaled scores. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/encoder_impl.h"
#include "models/grow.h"
#include "models/t5.h"

/* ---- MPNet ---- */

#define MPNET_BUCKETS 32       /* compute_position_bias(num_buckets=32), whatever the config */
#define MPNET_MAX_DISTANCE 128 /* relative_position_bucket(max_distance=128) */

static bool always(const struct hf_config *cfg)
{
    (void)cfg;
    return true;
}

static int mpnet_load(struct encoder *m, struct weights *w, struct dnn_ctx *ctx, struct err *e)
{
    (void)ctx;
    int64_t n = m->cfg.relative_attention_num_buckets;
    if (n < MPNET_BUCKETS)
        return err_set(e, ERR_FORMAT,
                       "%s: config.json: relative_attention_num_buckets %lld is below MPNet's %d",
                       w->dir, (long long)n, MPNET_BUCKETS);
    char name[256];
    snprintf(name, sizeof name, "%sencoder.relative_attention_bias.weight", m->prefix);
    return weights_take(w, name, n, m->n_heads, &m->rel_table, e);
}

static int mpnet_prepare(const struct encoder *m, struct encoder_run *r,
                         const struct encoder_batch *b, struct err *e)
{
    size_t S = (size_t)b->seq, H = (size_t)m->n_heads;
    int rc = grow_floats(&r->bias, &r->cap_bias, H * S * S, e);
    if (rc)
        return rc;
    for (size_t i = 0; i < S; i++)
        for (size_t j = 0; j < S; j++) {
            int bucket = t5_relative_bucket((int)j - (int)i, true, MPNET_BUCKETS,
                                            MPNET_MAX_DISTANCE);
            for (size_t h = 0; h < H; h++)
                r->bias[(h * S + i) * S + j] = m->rel_table[(size_t)bucket * H + h];
        }
    return 0;
}

static int mpnet_layer(const struct encoder *m, int li, struct encoder_run *r,
                       const struct encoder_batch *b, struct attn_bias *ab, struct err *e)
{
    (void)m, (void)li, (void)b, (void)e;
    *ab = (struct attn_bias){0.0f, r->bias, false};
    return 0;
}

const struct relpos_kind relpos_mpnet = {always, false, mpnet_load, mpnet_prepare, mpnet_layer};

/* ---- DeBERTa-v2 ---- */

static bool deberta_abs_positions(const struct hf_config *cfg)
{
    return cfg->deberta.position_biased_input;
}

/* make_log_bucket_position for one distance, in transformers' float32 arithmetic. */
static int log_bucket(int rel, int bucket_size, int max_position)
{
    int mid = bucket_size / 2;
    int abs_pos = rel < mid && rel > -mid ? mid - 1 : abs(rel);
    if (abs_pos <= mid)
        return rel;
    float base = logf((float)((double)(max_position - 1) / mid));
    float lp = ceilf(logf((float)abs_pos / (float)mid) / base * (float)(mid - 1)) + (float)mid;
    return rel < 0 ? -(int)lp : (int)lp;
}

/* r(i, j) of the header for the distance i - j. */
static int deberta_index(const struct hf_config *cfg, int span, int delta)
{
    int64_t buckets = cfg->deberta.position_buckets, maxpos = cfg->deberta.max_relative_positions;
    int rp = buckets > 0 && maxpos > 0 ? log_bucket(delta, (int)buckets, (int)maxpos) : delta;
    rp += span;
    return rp < 0 ? 0 : rp > 2 * span - 1 ? 2 * span - 1 : rp;
}

/* Layer l's position queries and keys (2 span, H) into out[0], out[1], from the relative
 * embeddings P: through its fused q|k|v linear (share_att_key) or its own projections. */
static int deberta_layer_tables(struct encoder *m, struct weights *w, struct dnn_ctx *ctx, int l,
                                const float *P, float *tmp, float *out, struct err *e)
{
    size_t R = 2 * (size_t)m->rel_span, H = (size_t)m->H;
    const struct hf_deberta *d = &m->cfg.deberta;
    if (d->share_att_key) {
        int rc = linear_forward(&m->layers[l].qkv, ctx, P, tmp, (int)R, e); /* (R, 3H) */
        for (size_t r = 0; rc == 0 && r < R; r++) {
            memcpy(out + r * H, tmp + r * 3 * H, H * sizeof *out);
            memcpy(out + (R + r) * H, tmp + r * 3 * H + H, H * sizeof *out);
        }
        return rc;
    }
    static const char *const names[2] = {"pos_query_proj", "pos_key_proj"};
    const bool want[2] = {d->p2c, d->c2p};
    for (int k = 0; k < 2; k++) {
        if (!want[k])
            continue;
        char name[256];
        snprintf(name, sizeof name, "%sencoder.layer.%d.attention.self.%s", m->prefix, l,
                 names[k]);
        struct linear lin = {0};
        int rc = weights_linear(w, ctx, name, m->H, m->H, true, DTYPE_COMPUTE_F32, ACT_NONE, &lin,
                                e);
        if (rc == 0)
            rc = linear_forward(&lin, ctx, P, out + (size_t)k * R * H, (int)R, e);
        linear_fini(&lin);
        if (rc)
            return rc;
    }
    return 0;
}

static int deberta_load(struct encoder *m, struct weights *w, struct dnn_ctx *ctx, struct err *e)
{
    const struct hf_deberta *d = &m->cfg.deberta;
    if (d->conv_kernel_size > 0)
        return err_set(e, ERR_FORMAT, "%s: config.json: conv_kernel_size (DeBERTa's convolution "
                                      "layer) is not supported", w->dir);
    if (m->E != m->H)
        return err_set(e, ERR_FORMAT, "%s: config.json: embedding_size %d != hidden_size %d is "
                                      "not supported", w->dir, m->E, m->H);
    m->rel_scale = 1.0f / sqrtf((float)m->head_dim * (float)(1 + d->c2p + d->p2c));
    if (!d->relative_attention)
        return 0;
    m->rel_span = (int)(d->position_buckets > 0 ? d->position_buckets : d->max_relative_positions);
    size_t R = 2 * (size_t)m->rel_span, H = (size_t)m->H;
    char name[256];
    float *P = NULL, *tmp = NULL;
    snprintf(name, sizeof name, "%sencoder.rel_embeddings.weight", m->prefix);
    int rc = weights_take(w, name, (int64_t)R, m->H, &P, e);
    struct norm_weights ln = {0};
    snprintf(name, sizeof name, "%sencoder.LayerNorm", m->prefix);
    if (rc == 0 && d->norm_rel_ebd && (rc = weights_norm(w, name, m->H, true, &ln, e)) == 0)
        rc = layernorm_forward(ctx, P, NULL, P, ln.w, ln.b, m->eps, (int)R, m->H, e);
    norm_weights_fini(&ln);
    if (rc == 0 && (!(tmp = malloc(R * 3 * H * sizeof *tmp)) ||
                    !(m->rel_table = calloc((size_t)m->n_layers * 2 * R * H, sizeof(float)))))
        rc = err_set(e, ERR_NOMEM, "out of memory for DeBERTa's relative positions");
    for (int l = 0; rc == 0 && l < m->n_layers; l++)
        rc = deberta_layer_tables(m, w, ctx, l, P, tmp, m->rel_table + (size_t)l * 2 * R * H, e);
    free(P);
    free(tmp);
    return rc;
}

/* Sequence bi, head h: its c2p and p2c terms (S, S) into out, scaled; c: 2 span floats and
 * idx: 2 S - 1 ints (idx[delta + S - 1]) of scratch. */
static void deberta_head_bias(const struct encoder *m, const float *qkv, const float *pq,
                              const float *pk, const int *idx, int S, int h, float *c, float *out)
{
    const struct hf_deberta *d = &m->cfg.deberta;
    size_t H = (size_t)m->H, D = (size_t)m->head_dim, ld = 3 * H, off = (size_t)h * D;
    memset(out, 0, (size_t)S * (size_t)S * sizeof *out);
    for (int t = 0; t < S; t++) {
        /* c2p: query t against the position keys of r(t, j), j = 0..S-1 (row t);
         * p2c: key t against the position queries of r(i, t), i = 0..S-1 (column t) */
        for (int pass = 0; pass < 2; pass++) {
            if (!(pass == 0 ? d->c2p : d->p2c))
                continue;
            const float *x = qkv + (size_t)t * ld + (pass == 0 ? 0 : H) + off;
            const float *tab = (pass == 0 ? pk : pq) + off;
            int lo = pass == 0 ? idx[t - (S - 1) + S - 1] : idx[-t + S - 1];
            int hi = pass == 0 ? idx[t + S - 1] : idx[S - 1 - t + S - 1];
            for (int r = lo; r <= hi; r++) {
                const float *p = tab + (size_t)r * H;
                float s = 0.0f;
#pragma omp simd reduction(+ : s)
                for (size_t k = 0; k < D; k++)
                    s += x[k] * p[k];
                c[r] = s;
            }
            for (int u = 0; u < S; u++) {
                if (pass == 0)
                    out[(size_t)t * (size_t)S + (size_t)u] += c[idx[t - u + S - 1]];
                else
                    out[(size_t)u * (size_t)S + (size_t)t] += c[idx[u - t + S - 1]];
            }
        }
    }
    for (size_t k = 0; k < (size_t)S * (size_t)S; k++)
        out[k] *= m->rel_scale;
}

static int deberta_layer(const struct encoder *m, int li, struct encoder_run *r,
                         const struct encoder_batch *b, struct attn_bias *ab, struct err *e)
{
    *ab = (struct attn_bias){m->rel_scale, NULL, true};
    if (!m->cfg.deberta.relative_attention)
        return 0;
    int S = b->seq, B = b->batch, NH = m->n_heads, span = m->rel_span;
    size_t block = (size_t)S * (size_t)S, R = 2 * (size_t)span, H = (size_t)m->H;
    int rc = grow_floats(&r->bias, &r->cap_bias, (size_t)B * (size_t)NH * block, e);
    int *idx = malloc((2 * (size_t)S - 1) * sizeof *idx);
    if (rc == 0 && !idx)
        rc = err_set(e, ERR_NOMEM, "out of memory for DeBERTa's relative positions");
    if (rc) {
        free(idx);
        return rc;
    }
    for (int delta = -(S - 1); delta <= S - 1; delta++)
        idx[delta + S - 1] = deberta_index(&m->cfg, span, delta);
    const float *pq = m->rel_table + (size_t)m->schedule[li] * 2 * R * H, *pk = pq + R * H;
    int failed = 0;
#pragma omp parallel if (B * NH > 1 && block * (size_t)(B * NH) >= 4096)
    {
        float *c = malloc(R * sizeof *c);
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * NH; bh++) {
            if (!c) {
#pragma omp atomic write
                failed = 1;
                continue;
            }
            int bi = bh / NH, h = bh % NH;
            deberta_head_bias(m, r->qkv + (size_t)bi * (size_t)S * 3 * H, pq, pk, idx, S, h, c,
                              r->bias + (size_t)bh * block);
        }
        free(c);
    }
    free(idx);
    if (failed)
        return err_set(e, ERR_NOMEM, "out of memory for DeBERTa's relative positions");
    ab->add = r->bias;
    return 0;
}

const struct relpos_kind relpos_deberta = {deberta_abs_positions, true, deberta_load, NULL,
                                           deberta_layer};
