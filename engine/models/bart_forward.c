/* bart_forward: the BART-like encoder over several inputs (bart_encode), decoder steps over
 * several sequences (bart_forward) and the sequence-classification head (bart_classify); see
 * models/bart.h. Shapes, with M = all tokens of the call (sequence after sequence), D =
 * d_model, F = the stack's ffn dim:
 *
 *   embed:  x = embed[ids] * embed_scale + pos[offset + position]              (M, D)
 *           x = LN_emb(x)                                        (layernorm_embedding)
 *   a block f (self-attention, cross-attention, feed-forward) with its LayerNorm LN:
 *           post-norm (BART, Marian): x = LN(x + f(x))
 *           pre-norm (mBART, M2M100, Pegasus): x = x + f(LN(x))
 *   self:   qkv = h W_qkv^T + b; att = softmax(q k^T / sqrt(hd) [+ causal]) v per head;
 *           f = att W_o^T + b
 *   cross:  q = h W_q^T + b over the sequence's cached k | v of its encoder output
 *   ff:     f = act(h W_fc1^T + b1) W_fc2^T + b2                                  (M, F)
 *   end:    x = LN_final(x) (pre-norm variants); encoder: cross k | v = x W_kv,l^T per
 *           decoder layer; decoder: logits = x W_head^T + final_logits_bias    (R, vocab)
 *
 * Linears run once over all tokens of all sequences; attention per (sequence, head) on the
 * OpenMP threads, over each sequence's own tokens (no padding). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "models/bart_impl.h"
#include "models/grow.h"
#include "models/s2s_attn.h"

struct bart_run {
    float *x, *h, *qkv, *att, *tmp, *inter, *cross, *rows, *out, *scratch;
    size_t cap_x, cap_h, cap_qkv, cap_att, cap_tmp, cap_inter, cap_cross, cap_rows, cap_out,
        cap_scratch;
    int *row0; /* (n_seqs + 1) first row of each sequence, then M */
    int *pos0; /* (n_seqs) a decoder step's first new position of each sequence */
    struct s2s_attn_job *job;
    size_t cap_row0, cap_pos0, cap_job;
};

/* One sequence's attention (as t5_forward's): n_q queries at positions pos0 .. over n_k keys;
 * causal: query p sees keys 0 .. p. */
struct bart_run *bart_run_new(void)
{
    return calloc(1, sizeof(struct bart_run));
}

void bart_run_free(struct bart_run *r)
{
    if (!r)
        return;
    free(r->x);
    free(r->h);
    free(r->qkv);
    free(r->att);
    free(r->tmp);
    free(r->inter);
    free(r->cross);
    free(r->rows);
    free(r->out);
    free(r->scratch);
    free(r->row0);
    free(r->pos0);
    free(r->job);
    free(r);
}

static int ensure_seqs(struct bart_run *r, int n, const int *n_tokens, struct err *e)
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

static int alloc_common(const struct bart_model *m, struct bart_run *r, size_t M, int max_keys,
                        struct err *e)
{
    size_t D = (size_t)m->D;
    size_t F = (size_t)(m->enc.ffn > m->dec.ffn ? m->enc.ffn : m->dec.ffn);
    size_t threads = (size_t)omp_get_max_threads();
    int rc;
    if ((rc = grow_floats(&r->x, &r->cap_x, M * D, e)) ||
        (rc = grow_floats(&r->h, &r->cap_h, M * D, e)) ||
        (rc = grow_floats(&r->qkv, &r->cap_qkv, M * 3 * D, e)) ||
        (rc = grow_floats(&r->att, &r->cap_att, M * D, e)) ||
        (rc = grow_floats(&r->tmp, &r->cap_tmp, M * D, e)) ||
        (rc = grow_floats(&r->inter, &r->cap_inter, M * F, e)) ||
        (rc = grow_floats(&r->scratch, &r->cap_scratch, threads * ((size_t)max_keys + 16), e)))
        return rc;
    return 0;
}

/* ---- shared pieces ---- */

/* x = embed[ids] * scale + pos[offset + first position of each token]; then LN_emb. pos0:
 * each sequence's first position (NULL: 0). */
static int embed(const struct bart_model *m, struct dnn_ctx *ctx, const struct bart_stack *s,
                 const int32_t *ids, const int *row0, int n_seqs, const int *pos0, float *x,
                 struct err *e)
{
    const size_t D = (size_t)m->D;
    for (int i = 0; i < n_seqs; i++)
        for (int r = row0[i]; r < row0[i + 1]; r++) {
            const float *p =
                s->pos + (size_t)(s->pos_offset + (pos0 ? pos0[i] : 0) + r - row0[i]) * D;
            float *o = x + (size_t)r * D;
            emb_table_row(s->embed, ids[r], o);
            for (size_t d = 0; d < D; d++)
                o[d] = o[d] * m->embed_scale + p[d];
        }
    int M = row0[n_seqs];
    if (!m->v->ln_embedding)
        return 0;
    return layernorm_forward(ctx, x, NULL, x, s->ln_emb.w, s->ln_emb.b, m->eps, M, m->D, e);
}

/* The input of a block: LN(x) into h when pre-norm, else x itself. */
static int block_in(const struct bart_model *m, struct dnn_ctx *ctx, struct bart_run *r,
                    const struct norm_weights *ln, int M, const float **in, struct err *e)
{
    *in = r->x;
    if (!m->v->pre_norm)
        return 0;
    *in = r->h;
    return layernorm_forward(ctx, r->x, NULL, r->h, ln->w, ln->b, m->eps, M, m->D, e);
}

/* The block's output: x += in W^T + b (pre-norm), or x = LN(x + in W^T + b). */
static int block_out(const struct bart_model *m, struct dnn_ctx *ctx, struct bart_run *r,
                     const struct linear *l, const float *in, const struct norm_weights *ln,
                     int M, struct err *e)
{
    if (m->v->pre_norm)
        return linear_forward_add(l, ctx, in, r->x, M, e);
    int rc = linear_forward(l, ctx, in, r->tmp, M, e);
    return rc ? rc
              : layernorm_forward(ctx, r->tmp, r->x, r->x, ln->w, ln->b, m->eps, M, m->D, e);
}

static int feed_forward(const struct bart_model *m, struct dnn_ctx *ctx, struct bart_run *r,
                        const struct bart_ff *f, int M, struct err *e)
{
    const float *in;
    int rc = block_in(m, ctx, r, &f->ln, M, &in, e);
    if (rc == 0)
        rc = linear_forward(&f->fc1, ctx, in, r->inter, M, e);
    return rc ? rc : block_out(m, ctx, r, &f->fc2, r->inter, &f->ln, M, e);
}

/* ---- encoder ---- */

static int validate_encode(const struct bart_model *m, const struct bart_encode_batch *b,
                           int *M_out, int *max_n, struct err *e)
{
    if (b->n_seqs <= 0 || !b->seqs || !b->ids || !b->n_ids)
        return err_set(e, ERR_INVALID, "an encode needs at least one sequence");
    int64_t M = 0;
    *max_n = 0;
    for (int i = 0; i < b->n_seqs; i++) {
        const struct bart_seq *s = b->seqs[i];
        if (!s || s->m != m)
            return err_set(e, ERR_INVALID, "sequence %d does not belong to this model", i);
        for (int j = 0; j < i; j++)
            if (b->seqs[j] == s)
                return err_set(e, ERR_INVALID, "sequence %d is listed twice in one call", i);
        int n = b->n_ids[i];
        if (n <= 0)
            return err_set(e, ERR_INVALID, "sequence %d has %d input ids", i, n);
        if (n > s->kv.max_input || n > m->enc.n_pos - m->enc.pos_offset)
            return err_set(e, ERR_TOO_LARGE, "sequence %d: %d input ids exceed its room for %d", i,
                           n, s->kv.max_input < m->max_pos ? s->kv.max_input : (int)m->max_pos);
        *max_n = n > *max_n ? n : *max_n;
        M += n;
        if (M > INT32_MAX / 8)
            return err_set(e, ERR_TOO_LARGE, "an encode of %lld ids is too large", (long long)M);
    }
    for (int64_t r = 0; r < M; r++)
        if (b->ids[r] < 0 || b->ids[r] >= m->vocab)
            return err_set(e, ERR_INVALID, "input id %d is outside the vocabulary (%lld)",
                           b->ids[r], (long long)m->vocab);
    *M_out = (int)M;
    return 0;
}

static int encoder_layer(const struct bart_model *m, struct dnn_ctx *ctx, struct bart_run *r,
                         const struct bart_encode_batch *b, int l, int M, int max_n,
                         struct err *e)
{
    const struct bart_layer *L = &m->enc.layers[l];
    const int D = m->D, ld = 3 * D;
    const float *in;
    int rc = block_in(m, ctx, r, &L->self.ln, M, &in, e);
    if (rc == 0)
        rc = linear_forward(&L->self.qkv, ctx, in, r->qkv, M, e);
    if (rc)
        return rc;
    for (int i = 0; i < b->n_seqs; i++) {
        const float *q = r->qkv + (size_t)r->row0[i] * (size_t)ld;
        r->job[i] = (struct s2s_attn_job){.q = q,
                                      .k = q + D,
                                      .v = q + 2 * D,
                                      .out = r->att + (size_t)r->row0[i] * (size_t)D,
                                      .n_q = b->n_ids[i],
                                      .n_k = b->n_ids[i]};
    }
    struct s2s_attn_geom g = {m->enc.n_heads, m->enc.head_dim, ld, ld, D, false, m->attn_scale_enc, NULL, 0};
    s2s_attend(&g, r->job, b->n_seqs, r->scratch, max_n);
    rc = block_out(m, ctx, r, &L->self.o, r->att, &L->self.ln, M, e);
    return rc ? rc : feed_forward(m, ctx, r, &L->ff, M, e);
}

int bart_encode(const struct bart_model *m, struct dnn_ctx *ctx, struct bart_run *r,
                const struct bart_encode_batch *b, const float **enc_out, struct err *e)
{
    int M = 0, max_n = 0, rc;
    if ((rc = validate_encode(m, b, &M, &max_n, e)) != 0)
        return rc;
    size_t per_layer = (size_t)M * 2 * (size_t)m->D;
    if ((rc = alloc_common(m, r, (size_t)M, max_n, e)) ||
        (rc = grow_floats(&r->cross, &r->cap_cross, (size_t)m->dec.n_layers * per_layer, e)) ||
        (rc = ensure_seqs(r, b->n_seqs, b->n_ids, e)))
        return rc;
    for (int i = 0; i < b->n_seqs; i++)
        if ((rc = s2s_kv_own_input(&b->seqs[i]->kv, b->n_ids[i], e)) != 0)
            return rc;
    if ((rc = embed(m, ctx, &m->enc, b->ids, r->row0, b->n_seqs, NULL, r->x, e)) != 0)
        return rc;
    for (int l = 0; l < m->enc.n_layers; l++)
        if ((rc = encoder_layer(m, ctx, r, b, l, M, max_n, e)) != 0)
            return rc;
    const struct norm_weights *fin = &m->enc.ln_final;
    if (m->v->final_ln &&
        (rc = layernorm_forward(ctx, r->x, NULL, r->x, fin->w, fin->b, m->eps, M, m->D, e)) != 0)
        return rc;
    for (int l = 0; l < m->dec.n_layers; l++)
        if ((rc = linear_forward(&m->dec.layers[l].cross.kv, ctx, r->x,
                                 r->cross + (size_t)l * per_layer, M, e)) != 0)
            return rc;
    size_t row = 2 * (size_t)m->D;
    for (int i = 0; i < b->n_seqs; i++) {
        struct bart_seq *s = b->seqs[i];
        for (int l = 0; l < m->dec.n_layers; l++)
            memcpy(s->kv.cross[l], r->cross + (size_t)l * per_layer + (size_t)r->row0[i] * row,
                   (size_t)b->n_ids[i] * row * sizeof(float));
        s->kv.in_len = b->n_ids[i];
        s->kv.len = 0;
    }
    if (enc_out)
        *enc_out = r->x;
    return 0;
}

/* ---- decoder ---- */

static int validate_step(const struct bart_model *m, const struct bart_step *st, int *M_out,
                         int *max_keys, struct err *e)
{
    if (st->n_seqs <= 0 || !st->seqs || !st->n_tokens || !st->tokens)
        return err_set(e, ERR_INVALID, "a decoder step needs at least one sequence");
    int64_t M = 0;
    *max_keys = 0;
    for (int i = 0; i < st->n_seqs; i++) {
        const struct bart_seq *s = st->seqs[i];
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
        if ((int64_t)s->kv.len + n > s->kv.max_tokens ||
            (int64_t)s->kv.len + n > m->dec.n_pos - m->dec.pos_offset)
            return err_set(e, ERR_TOO_LARGE,
                           "sequence %d: %d cached + %d new tokens exceed its room for %d", i,
                           s->kv.len, n, s->kv.max_tokens < m->max_pos ? s->kv.max_tokens : (int)m->max_pos);
        int keys = s->kv.len + n > s->kv.in_len ? s->kv.len + n : s->kv.in_len;
        *max_keys = keys > *max_keys ? keys : *max_keys;
        M += n;
        if (M > INT32_MAX / 8)
            return err_set(e, ERR_TOO_LARGE, "a step of %lld tokens is too large", (long long)M);
    }
    for (int64_t r = 0; r < M; r++)
        if (st->tokens[r] < 0 || st->tokens[r] >= m->vocab)
            return err_set(e, ERR_INVALID, "token id %d is outside the vocabulary (%lld)",
                           st->tokens[r], (long long)m->vocab);
    *M_out = (int)M;
    return 0;
}

static int decoder_self(const struct bart_model *m, struct dnn_ctx *ctx, struct bart_run *r,
                        const struct bart_step *st, int l, int M, int max_keys, struct err *e)
{
    const struct bart_layer *L = &m->dec.layers[l];
    const int D = m->D, ld = 3 * D;
    const float *in;
    int rc = block_in(m, ctx, r, &L->self.ln, M, &in, e);
    if (rc == 0)
        rc = linear_forward(&L->self.qkv, ctx, in, r->qkv, M, e);
    if (rc)
        return rc;
    size_t row = 2 * (size_t)D;
    for (int i = 0; i < st->n_seqs; i++) {
        const struct bart_seq *s = st->seqs[i];
        const float *q = r->qkv + (size_t)r->row0[i] * (size_t)ld;
        for (int t = 0; t < st->n_tokens[i]; t++) /* k | v of each new token into the cache */
            memcpy(s->kv.self[l] + (size_t)(s->kv.len + t) * row, q + (size_t)t * (size_t)ld + D,
                   row * sizeof(float));
        r->job[i] = (struct s2s_attn_job){.q = q,
                                      .k = s->kv.self[l],
                                      .v = s->kv.self[l] + D,
                                      .out = r->att + (size_t)r->row0[i] * (size_t)D,
                                      .n_q = st->n_tokens[i],
                                      .n_k = s->kv.len + st->n_tokens[i],
                                      .pos0 = s->kv.len};
    }
    struct s2s_attn_geom g = {m->dec.n_heads, m->dec.head_dim, ld, (int)row, D, true,
                              m->attn_scale_dec, NULL, 0};
    s2s_attend(&g, r->job, st->n_seqs, r->scratch, max_keys);
    return block_out(m, ctx, r, &L->self.o, r->att, &L->self.ln, M, e);
}

static int decoder_cross(const struct bart_model *m, struct dnn_ctx *ctx, struct bart_run *r,
                         const struct bart_step *st, int l, int M, int max_keys, struct err *e)
{
    const struct bart_layer *L = &m->dec.layers[l];
    const int D = m->D;
    const float *in;
    int rc = block_in(m, ctx, r, &L->cross.ln, M, &in, e);
    if (rc == 0)
        rc = linear_forward(&L->cross.q, ctx, in, r->qkv, M, e); /* (M, D) */
    if (rc)
        return rc;
    /* consecutive sequences reading one input (the beams of a search) make one job: their
     * query rows follow each other and meet each cross key once */
    int n_jobs = 0;
    for (int i = 0; i < st->n_seqs; i++) {
        const struct bart_seq *s = st->seqs[i];
        const float *kv = s2s_kv_cross(&s->kv, l);
        if (n_jobs > 0 && r->job[n_jobs - 1].k == kv) {
            r->job[n_jobs - 1].n_q += st->n_tokens[i];
            continue;
        }
        r->job[n_jobs++] = (struct s2s_attn_job){.q = r->qkv + (size_t)r->row0[i] * (size_t)D,
                                                 .k = kv,
                                                 .v = kv + D,
                                                 .out = r->att + (size_t)r->row0[i] * (size_t)D,
                                                 .n_q = st->n_tokens[i],
                                                 .n_k = s->kv.in_len};
    }
    struct s2s_attn_geom g = {m->dec.n_heads, m->dec.head_dim, D, 2 * D, D, false, m->attn_scale_dec, NULL, 0};
    s2s_attend(&g, r->job, n_jobs, r->scratch, max_keys);
    return block_out(m, ctx, r, &L->cross.o, r->att, &L->cross.ln, M, e);
}

/* The rows that get an output (each sequence's last token, or all), through the final norm,
 * then the head (or not: hidden). */
static int finish(const struct bart_model *m, struct dnn_ctx *ctx, struct bart_run *r,
                  const struct bart_step *st, int M, const float **out, struct err *e)
{
    const size_t D = (size_t)m->D;
    int R = st->all_logits ? M : st->n_seqs, rc;
    if ((rc = grow_floats(&r->rows, &r->cap_rows, (size_t)R * D, e)) != 0)
        return rc;
    if (st->all_logits)
        memcpy(r->rows, r->x, (size_t)M * D * sizeof(float));
    else
        for (int i = 0; i < st->n_seqs; i++)
            memcpy(r->rows + (size_t)i * D, r->x + (size_t)(r->row0[i + 1] - 1) * D,
                   D * sizeof(float));
    const struct norm_weights *fin = &m->dec.ln_final;
    if (m->v->final_ln &&
        (rc = layernorm_forward(ctx, r->rows, NULL, r->rows, fin->w, fin->b, m->eps, R, m->D,
                                e)) != 0)
        return rc;
    if (st->hidden) {
        *out = r->rows;
        return 0;
    }
    if (m->classify)
        return err_set(e, ERR_INVALID, "a sequence classifier has no language-model head");
    if ((rc = grow_floats(&r->out, &r->cap_out, (size_t)R * (size_t)m->vocab, e)) != 0 ||
        (rc = linear_forward(&m->lm_head, ctx, r->rows, r->out, R, e)) != 0)
        return rc;
    if (m->final_logits_bias)
        for (int i = 0; i < R; i++) {
            float *o = r->out + (size_t)i * (size_t)m->vocab;
            for (int64_t v = 0; v < m->vocab; v++)
                o[v] += m->final_logits_bias[v];
        }
    *out = r->out;
    return 0;
}

int bart_forward(const struct bart_model *m, struct dnn_ctx *ctx, struct bart_run *r,
                 const struct bart_step *st, const float **out, struct err *e)
{
    int M = 0, max_keys = 0, rc;
    if ((rc = validate_step(m, st, &M, &max_keys, e)) != 0)
        return rc;
    if ((rc = alloc_common(m, r, (size_t)M, max_keys, e)) ||
        (rc = ensure_seqs(r, st->n_seqs, st->n_tokens, e)) ||
        (rc = grow_array(&r->pos0, &r->cap_pos0, (size_t)st->n_seqs, sizeof *r->pos0, e)))
        return rc;
    for (int i = 0; i < st->n_seqs; i++) {
        struct bart_seq *s = st->seqs[i];
        if ((rc = s2s_kv_reserve(&s->kv, s->kv.in_len, s->kv.len + st->n_tokens[i], e)) != 0)
            return rc;
    }
    for (int i = 0; i < st->n_seqs; i++) /* its first new position: its cached length */
        r->pos0[i] = st->seqs[i]->kv.len;
    if ((rc = embed(m, ctx, &m->dec, st->tokens, r->row0, st->n_seqs, r->pos0, r->x, e)) != 0)
        return rc;
    for (int l = 0; l < m->dec.n_layers; l++) {
        if ((rc = decoder_self(m, ctx, r, st, l, M, max_keys, e)) ||
            (rc = decoder_cross(m, ctx, r, st, l, M, max_keys, e)) ||
            (rc = feed_forward(m, ctx, r, &m->dec.layers[l].ff, M, e)))
            return rc;
    }
    if ((rc = finish(m, ctx, r, st, M, out, e)) != 0)
        return rc;
    for (int i = 0; i < st->n_seqs; i++)
        st->seqs[i]->kv.len += st->n_tokens[i];
    return 0;
}

int bart_classify(const struct bart_model *m, struct dnn_ctx *ctx, struct bart_run *r,
                  const float *x, int n, const float **out, struct err *e)
{
    if (!m->classify)
        return err_set(e, ERR_INVALID, "this model has no classification head");
    size_t D = (size_t)m->D;
    int rc;
    if ((rc = grow_floats(&r->tmp, &r->cap_tmp, (size_t)n * D, e)) ||
        (rc = grow_floats(&r->out, &r->cap_out, (size_t)n * (size_t)m->num_labels, e)) ||
        (rc = linear_forward(&m->cls_dense, ctx, x, r->tmp, n, e)))
        return rc;
    for (size_t i = 0; i < (size_t)n * D; i++)
        r->tmp[i] = tanhf(r->tmp[i]);
    if ((rc = linear_forward(&m->cls_out, ctx, r->tmp, r->out, n, e)) != 0)
        return rc;
    *out = r->out;
    return 0;
}
