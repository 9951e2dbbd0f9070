/* t5_forward: the T5 encoder over several inputs (t5_encode) and decoder steps over several
 * sequences (t5_forward); see models/t5.h. Shapes, with M = all tokens of the call (sequence
 * after sequence), D = d_model, inner = heads d_kv, I = d_ff:
 *
 *   encoder (M input ids):
 *     x = shared[ids]                                                        (M, D)
 *     per layer: h = rms(x); qkv = h W_qkv^T                                 (M, 3 inner)
 *                att = softmax(q k^T + enc_bias(k_pos - q_pos)) v  per sequence, per head
 *                x += att W_o^T; h = rms(x); x += ff(h)
 *     enc = rms(x); per decoder layer l: cross_l = enc W_kv,l^T              (M, 2 inner)
 *       -> each sequence's cross[l] rows
 *   decoder step (M new tokens):
 *     x = shared[tokens]
 *     per layer: h = rms(x); qkv = h W_qkv^T; k | v appended to each sequence's self[l]
 *                att = softmax(q K^T + dec_bias(k_pos - q_pos) + causal mask) V
 *                x += att W_o^T; h = rms(x); q = h W_q^T
 *                att = softmax(q cross_k^T) cross_v  over the sequence's input positions
 *                x += att W_o^T; h = rms(x); x += ff(h)
 *     logits = (rms(x[rows]) (* D^-0.5)) W_head^T                              (R, vocab)
 *   ff(h) = act(h W_wi^T) W_wo^T, or gated: (act(h W_wi0^T) * h W_wi1^T) W_wo^T
 *
 * rms is T5LayerNorm: x / sqrt(mean(x^2) + eps) * w (ops' rmsnorm_forward). Scores are not
 * scaled by 1/sqrt(d_kv) (T5 folds that into its initialization). Linears run once over all
 * tokens of all sequences; attention runs per (sequence, head) on the OpenMP threads. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "models/grow.h"
#include "models/t5_impl.h"
#include "models/s2s_attn.h"

struct t5_run {
    float *x;       /* (M, D) the residual stream */
    float *h;       /* (M, D) its norm */
    float *qkv;     /* (M, 3 inner) self-attention q | k | v; cross-attention q */
    float *att;     /* (M, inner) attention output */
    float *ff;      /* (M, 2 I) gated wi_0 | wi_1, or (M, I) act(wi) */
    float *act;     /* (M, I) gated: act(wi_0) * wi_1 */
    float *cross;   /* encode: (n_dec, M, 2 inner) cross k | v of every layer */
    float *rows;    /* (R, D) rows that get logits */
    float *logits;  /* (R, vocab) */
    float *scratch; /* attention scores: per thread, as many as the longest key span */
    size_t cap_x, cap_h, cap_qkv, cap_att, cap_ff, cap_act, cap_cross, cap_rows, cap_logits,
        cap_scratch;
    int *row0;               /* (n_seqs + 1) first row of each sequence, then M */
    struct s2s_attn_job *job; /* (n_seqs) */
    size_t cap_row0, cap_job;
};

struct t5_run *t5_run_new(void)
{
    return calloc(1, sizeof(struct t5_run));
}

void t5_run_free(struct t5_run *r)
{
    if (!r)
        return;
    free(r->x);
    free(r->h);
    free(r->qkv);
    free(r->att);
    free(r->ff);
    free(r->act);
    free(r->cross);
    free(r->rows);
    free(r->logits);
    free(r->scratch);
    free(r->row0);
    free(r->job);
    free(r);
}

/* Per-sequence arrays for n sequences with n_tokens[i] rows each. */
static int ensure_seqs(struct t5_run *r, int n, const int *n_tokens, struct err *e)
{
    int rc = grow_array(&r->job, &r->cap_job, (size_t)n, sizeof *r->job, e);
    if (rc == 0)
        rc = grow_array(&r->row0, &r->cap_row0, (size_t)n + 1, sizeof *r->row0, e);
    if (rc)
        return rc;
    r->row0[0] = 0;
    for (int i = 0; i < n; i++)
        r->row0[i + 1] = r->row0[i] + n_tokens[i];
    return 0;
}

/* The buffers both passes use for M rows, and attention scratch for max_keys keys. */
static int alloc_common(const struct t5_model *m, struct t5_run *r, size_t M, int max_keys,
                        struct err *e)
{
    size_t ff = m->gated ? 2 * (size_t)m->I : (size_t)m->I;
    size_t threads = (size_t)omp_get_max_threads();
    int rc;
    if ((rc = grow_floats(&r->x, &r->cap_x, M * (size_t)m->D, e)) ||
        (rc = grow_floats(&r->h, &r->cap_h, M * (size_t)m->D, e)) ||
        (rc = grow_floats(&r->qkv, &r->cap_qkv, M * 3 * (size_t)m->inner, e)) ||
        (rc = grow_floats(&r->att, &r->cap_att, M * (size_t)m->inner, e)) ||
        (rc = grow_floats(&r->ff, &r->cap_ff, M * ff, e)) ||
        (rc = grow_floats(&r->act, &r->cap_act, m->gated ? M * (size_t)m->I : 1, e)) ||
        (rc = grow_floats(&r->scratch, &r->cap_scratch, threads * ((size_t)max_keys + 16), e)))
        return rc;
    return 0;
}

/* ---- shared pieces ---- */

static void embed(const struct t5_model *m, const int32_t *ids, int M, float *x)
{
    for (int r = 0; r < M; r++)
        emb_table_row(&m->shared, ids[r], x + (size_t)r * (size_t)m->D);
}

static float act_scalar(enum act a, float x)
{
    switch (a) {
    case ACT_GELU_TANH:
        return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
    case ACT_GELU_ERF: return 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2));
    case ACT_RELU: return x > 0.0f ? x : 0.0f;
    case ACT_SILU: return x / (1.0f + expf(-x));
    default: return x;
    }
}

/* x += ff(rms(x)): h holds the norm on the way. */
static int feed_forward(const struct t5_model *m, struct dnn_ctx *ctx, struct t5_run *r,
                        const struct t5_ff *f, int M, struct err *e)
{
    int rc = rmsnorm_forward(r->x, r->h, f->ln, m->eps, M, m->D, e);
    if (rc == 0)
        rc = linear_forward(&f->in, ctx, r->h, r->ff, M, e);
    if (rc)
        return rc;
    if (!m->gated)
        return linear_forward_add(&f->out, ctx, r->ff, r->x, M, e);
    const int I = m->I;
    const enum act a = m->act;
#pragma omp parallel for schedule(static) if ((size_t)M * (size_t)I >= 16384)
    for (int row = 0; row < M; row++) {
        const float *g = r->ff + (size_t)row * 2 * (size_t)I, *lin = g + I;
        float *o = r->act + (size_t)row * (size_t)I;
        for (int i = 0; i < I; i++)
            o[i] = act_scalar(a, g[i]) * lin[i];
    }
    return linear_forward_add(&f->out, ctx, r->act, r->x, M, e);
}

/* ---- encoder ---- */

static int validate_encode(const struct t5_model *m, const struct t5_encode_batch *b, int *M_out,
                           int *max_n, struct err *e)
{
    if (b->n_seqs <= 0 || !b->seqs || !b->ids || !b->n_ids)
        return err_set(e, ERR_INVALID, "a T5 encode needs at least one sequence");
    int64_t M = 0;
    *max_n = 0;
    for (int i = 0; i < b->n_seqs; i++) {
        const struct t5_seq *s = b->seqs[i];
        if (!s || s->m != m)
            return err_set(e, ERR_INVALID, "sequence %d does not belong to this model", i);
        for (int j = 0; j < i; j++)
            if (b->seqs[j] == s)
                return err_set(e, ERR_INVALID, "sequence %d is listed twice in one call", i);
        int n = b->n_ids[i];
        if (n <= 0)
            return err_set(e, ERR_INVALID, "sequence %d has %d input ids", i, n);
        if (n > s->kv.max_input)
            return err_set(e, ERR_TOO_LARGE, "sequence %d: %d input ids exceed its room for %d", i,
                           n, s->kv.max_input);
        *max_n = n > *max_n ? n : *max_n;
        M += n;
        if (M > INT32_MAX / 4)
            return err_set(e, ERR_TOO_LARGE, "an encode of %lld ids is too large", (long long)M);
    }
    for (int64_t r = 0; r < M; r++)
        if (b->ids[r] < 0 || b->ids[r] >= m->vocab)
            return err_set(e, ERR_INVALID, "input id %d is outside the vocabulary (%lld)",
                           b->ids[r], (long long)m->vocab);
    *M_out = (int)M;
    return 0;
}

static int encoder_layer(const struct t5_model *m, struct dnn_ctx *ctx, struct t5_run *r,
                         const struct t5_encode_batch *b, int l, int M, int max_n, struct err *e)
{
    const struct t5_enc_layer *L = &m->enc[l];
    const int inner = m->inner, ld = 3 * inner;
    int rc = rmsnorm_forward(r->x, r->h, L->ln_attn, m->eps, M, m->D, e);
    if (rc == 0)
        rc = linear_forward(&L->self.qkv, ctx, r->h, r->qkv, M, e);
    if (rc)
        return rc;
    for (int i = 0; i < b->n_seqs; i++) {
        const float *q = r->qkv + (size_t)r->row0[i] * (size_t)ld;
        r->job[i] = (struct s2s_attn_job){.q = q,
                                         .k = q + inner,
                                         .v = q + 2 * inner,
                                         .out = r->att + (size_t)r->row0[i] * (size_t)inner,
                                         .n_q = b->n_ids[i],
                                         .n_k = b->n_ids[i],
                                         .pos0 = 0};
    }
    struct s2s_attn_geom g = {.n_heads = m->n_heads,
                             .hd = m->d_kv,
                             .scale = 1.0f,
                             .ld_q = ld,
                             .ld_kv = ld,
                             .ld_out = inner,
                             .causal = false,
                             .rel = m->enc_rel,
                             .R = m->max_distance};
    s2s_attend(&g, r->job, b->n_seqs, r->scratch, max_n);
    rc = linear_forward_add(&L->self.o, ctx, r->att, r->x, M, e);
    return rc ? rc : feed_forward(m, ctx, r, &L->ff, M, e);
}

int t5_encode(const struct t5_model *m, struct dnn_ctx *ctx, struct t5_run *r,
              const struct t5_encode_batch *b, struct err *e)
{
    int M = 0, max_n = 0, rc;
    if ((rc = validate_encode(m, b, &M, &max_n, e)) != 0)
        return rc;
    size_t per_layer = (size_t)M * 2 * (size_t)m->inner;
    if ((rc = alloc_common(m, r, (size_t)M, max_n, e)) ||
        (rc = grow_floats(&r->cross, &r->cap_cross, (size_t)m->n_dec * per_layer, e)) ||
        (rc = ensure_seqs(r, b->n_seqs, b->n_ids, e)))
        return rc;
    for (int i = 0; i < b->n_seqs; i++)
        if ((rc = s2s_kv_own_input(&b->seqs[i]->kv, b->n_ids[i], e)) != 0)
            return rc;
    embed(m, b->ids, M, r->x);
    for (int l = 0; l < m->n_enc; l++)
        if ((rc = encoder_layer(m, ctx, r, b, l, M, max_n, e)) != 0)
            return rc;
    if ((rc = rmsnorm_forward(r->x, r->h, m->enc_final_ln, m->eps, M, m->D, e)) != 0)
        return rc;
    for (int l = 0; l < m->n_dec; l++)
        if ((rc = linear_forward(&m->dec[l].cross.kv, ctx, r->h, r->cross + (size_t)l * per_layer,
                                 M, e)) != 0)
            return rc;
    /* nothing can fail from here: the sequences take their new state */
    size_t row = 2 * (size_t)m->inner;
    for (int i = 0; i < b->n_seqs; i++) {
        struct t5_seq *s = b->seqs[i];
        for (int l = 0; l < m->n_dec; l++)
            memcpy(s->kv.cross[l], r->cross + (size_t)l * per_layer + (size_t)r->row0[i] * row,
                   (size_t)b->n_ids[i] * row * sizeof(float));
        s->kv.in_len = b->n_ids[i];
        s->kv.len = 0;
    }
    return 0;
}

/* ---- decoder ---- */

static int validate_step(const struct t5_model *m, const struct t5_step *st, int *M_out,
                         int *max_keys, struct err *e)
{
    if (st->n_seqs <= 0 || !st->seqs || !st->n_tokens || !st->tokens)
        return err_set(e, ERR_INVALID, "a T5 step needs at least one sequence");
    int64_t M = 0;
    *max_keys = 0;
    for (int i = 0; i < st->n_seqs; i++) {
        const struct t5_seq *s = st->seqs[i];
        if (!s || s->m != m)
            return err_set(e, ERR_INVALID, "sequence %d does not belong to this model", i);
        for (int j = 0; j < i; j++)
            if (st->seqs[j] == s)
                return err_set(e, ERR_INVALID, "sequence %d is listed twice in one step", i);
        if (s->kv.in_len == 0)
            return err_set(e, ERR_INVALID, "sequence %d has not been encoded", i);
        int n = st->n_tokens[i];
        if (n <= 0)
            return err_set(e, ERR_INVALID, "sequence %d has %d new tokens", i, n);
        if ((int64_t)s->kv.len + n > s->kv.max_tokens)
            return err_set(e, ERR_TOO_LARGE,
                           "sequence %d: %d cached + %d new tokens exceed its room for %d", i,
                           s->kv.len, n, s->kv.max_tokens);
        int keys = s->kv.len + n > s->kv.in_len ? s->kv.len + n : s->kv.in_len;
        *max_keys = keys > *max_keys ? keys : *max_keys;
        M += n;
        if (M > INT32_MAX / 4)
            return err_set(e, ERR_TOO_LARGE, "a step of %lld tokens is too large", (long long)M);
    }
    for (int64_t r = 0; r < M; r++)
        if (st->tokens[r] < 0 || st->tokens[r] >= m->vocab)
            return err_set(e, ERR_INVALID, "token id %d is outside the vocabulary (%lld)",
                           st->tokens[r], (long long)m->vocab);
    *M_out = (int)M;
    return 0;
}

static int decoder_self(const struct t5_model *m, struct dnn_ctx *ctx, struct t5_run *r,
                        const struct t5_step *st, int l, int M, int max_keys, struct err *e)
{
    const struct t5_dec_layer *L = &m->dec[l];
    const int inner = m->inner, ld = 3 * inner;
    int rc = rmsnorm_forward(r->x, r->h, L->ln_self, m->eps, M, m->D, e);
    if (rc == 0)
        rc = linear_forward(&L->self.qkv, ctx, r->h, r->qkv, M, e);
    if (rc)
        return rc;
    size_t row = 2 * (size_t)inner;
    for (int i = 0; i < st->n_seqs; i++) {
        const struct t5_seq *s = st->seqs[i];
        const float *q = r->qkv + (size_t)r->row0[i] * (size_t)ld;
        for (int t = 0; t < st->n_tokens[i]; t++) /* k | v of each new token into the cache */
            memcpy(s->kv.self[l] + (size_t)(s->kv.len + t) * row, q + (size_t)t * (size_t)ld + inner,
                   row * sizeof(float));
        r->job[i] = (struct s2s_attn_job){.q = q,
                                         .k = s->kv.self[l],
                                         .v = s->kv.self[l] + inner,
                                         .out = r->att + (size_t)r->row0[i] * (size_t)inner,
                                         .n_q = st->n_tokens[i],
                                         .n_k = s->kv.len + st->n_tokens[i],
                                         .pos0 = s->kv.len};
    }
    struct s2s_attn_geom g = {.n_heads = m->n_heads,
                             .hd = m->d_kv,
                             .scale = 1.0f,
                             .ld_q = ld,
                             .ld_kv = (int)row,
                             .ld_out = inner,
                             .causal = true,
                             .rel = m->dec_rel,
                             .R = m->max_distance};
    s2s_attend(&g, r->job, st->n_seqs, r->scratch, max_keys);
    return linear_forward_add(&L->self.o, ctx, r->att, r->x, M, e);
}

static int decoder_cross(const struct t5_model *m, struct dnn_ctx *ctx, struct t5_run *r,
                         const struct t5_step *st, int l, int M, int max_keys, struct err *e)
{
    const struct t5_dec_layer *L = &m->dec[l];
    const int inner = m->inner;
    int rc = rmsnorm_forward(r->x, r->h, L->ln_cross, m->eps, M, m->D, e);
    if (rc == 0)
        rc = linear_forward(&L->cross.q, ctx, r->h, r->qkv, M, e); /* (M, inner) */
    if (rc)
        return rc;
    int n_jobs = 0; /* the beams of a search make one job, as in bart_forward.c */
    for (int i = 0; i < st->n_seqs; i++) {
        const struct t5_seq *s = st->seqs[i];
        const float *kv = s2s_kv_cross(&s->kv, l);
        if (n_jobs > 0 && r->job[n_jobs - 1].k == kv) {
            r->job[n_jobs - 1].n_q += st->n_tokens[i];
            continue;
        }
        r->job[n_jobs++] = (struct s2s_attn_job){.q = r->qkv + (size_t)r->row0[i] * (size_t)inner,
                                                 .k = kv,
                                                 .v = kv + inner,
                                                 .out = r->att + (size_t)r->row0[i] * (size_t)inner,
                                                 .n_q = st->n_tokens[i],
                                                 .n_k = s->kv.in_len,
                                                 .pos0 = 0};
    }
    struct s2s_attn_geom g = {.n_heads = m->n_heads,
                             .hd = m->d_kv,
                             .scale = 1.0f,
                             .ld_q = inner,
                             .ld_kv = 2 * inner,
                             .ld_out = inner}; /* no bias, not causal */
    s2s_attend(&g, r->job, n_jobs, r->scratch, max_keys);
    return linear_forward_add(&L->cross.o, ctx, r->att, r->x, M, e);
}

int t5_forward(const struct t5_model *m, struct dnn_ctx *ctx, struct t5_run *r,
               const struct t5_step *st, const float **logits, struct err *e)
{
    int M = 0, max_keys = 0, rc;
    if ((rc = validate_step(m, st, &M, &max_keys, e)) != 0)
        return rc;
    int R = st->all_logits ? M : st->n_seqs; /* rows that get logits */
    if ((rc = alloc_common(m, r, (size_t)M, max_keys, e)) ||
        (rc = grow_floats(&r->rows, &r->cap_rows, (size_t)R * (size_t)m->D, e)) ||
        (rc = grow_floats(&r->logits, &r->cap_logits, (size_t)R * (size_t)m->vocab, e)) ||
        (rc = ensure_seqs(r, st->n_seqs, st->n_tokens, e)))
        return rc;
    for (int i = 0; i < st->n_seqs; i++) {
        struct t5_seq *s = st->seqs[i];
        if ((rc = s2s_kv_reserve(&s->kv, s->kv.in_len, s->kv.len + st->n_tokens[i], e)) != 0)
            return rc;
    }
    embed(m, st->tokens, M, r->x);
    for (int l = 0; l < m->n_dec; l++) {
        if ((rc = decoder_self(m, ctx, r, st, l, M, max_keys, e)) ||
            (rc = decoder_cross(m, ctx, r, st, l, M, max_keys, e)) ||
            (rc = feed_forward(m, ctx, r, &m->dec[l].ff, M, e)))
            return rc;
    }
    const float *rows = r->x;
    if (!st->all_logits) {
        for (int i = 0; i < st->n_seqs; i++)
            memcpy(r->rows + (size_t)i * (size_t)m->D,
                   r->x + (size_t)(r->row0[i + 1] - 1) * (size_t)m->D,
                   (size_t)m->D * sizeof(float));
        rows = r->rows;
    }
    if ((rc = rmsnorm_forward(rows, r->rows, m->dec_final_ln, m->eps, R, m->D, e)) != 0)
        return rc;
    if (m->scale_output)
        for (size_t k = 0; k < (size_t)R * (size_t)m->D; k++)
            r->rows[k] *= m->output_scale;
    if ((rc = linear_forward(&m->lm_head, ctx, r->rows, r->logits, R, e)) != 0)
        return rc;
    for (int i = 0; i < st->n_seqs; i++)
        st->seqs[i]->kv.len += st->n_tokens[i];
    *logits = r->logits;
    return 0;
}
