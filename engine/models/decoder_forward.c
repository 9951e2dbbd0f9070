/* decoder_forward: one step of the decoder over several sequences (see models/decoder.h).
 * Shapes, with M = all new tokens of the step (sequence after sequence), hidden H,
 * intermediate I, q/kv widths Q = n_heads hd and KV = n_kv_heads hd:
 *
 *   x   = wte[ids] (+ wpe[positions], GPT-2)                          (M, H)
 *   per layer:
 *     h   = norm(x)                           LayerNorm (GPT-2) / RMSNorm (LLaMA)
 *     qkv = h W_qkv^T (+ b)                   (M, Q + 2 KV), one matmul for all sequences
 *     q, k rotated by their positions (LLaMA); k, v appended to each sequence's cache
 *     att = softmax(q K^T scale + mask) V     per sequence over its cache      (M, Q)
 *     x  += att W_o^T (+ b)                   residual fused into the matmul
 *     h   = norm(x)
 *     GPT-2: x += gelu(h W_fc^T + b) W_proj^T + b                        via (M, I)
 *     LLaMA: x += (silu(h W_gate^T) * (h W_up^T)) W_down^T   gate | up one matmul (M, 2I)
 *   logits = norm(x[last row of each sequence]) W_head^T                 (n_seqs, vocab)
 *
 * Every weight is read once per step whatever the number of sequences: decode throughput
 * grows with the batch until the matmuls turn compute-bound. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/decoder_impl.h"
#include "models/grow.h"

/* Activations of one step, M new tokens, R rows with logits (n_seqs, or M for all_logits). */
struct decoder_run {
    float *x;         /* (M, H) the residual stream */
    float *h;         /* (M, H) its norm, the input of the next linear */
    float *qkv;       /* (M, Q + 2 KV) */
    float *att;       /* (M, Q) attention output */
    float *inter;     /* GPT-2: (M, I) gelu(c_fc); LLaMA: (M, 2I) gate | up */
    float *act;       /* LLaMA: (M, I) silu(gate) * up */
    float *rows;      /* (R, H) final-normed rows that get logits */
    float *logits;    /* (R, vocab) */
    float *cos, *sin; /* (M, hd / 2) RoPE of each new token's position */
    float *inv_freq;  /* (hd / 2) dynamic RoPE of the sequence at hand */
    size_t cap_x, cap_h, cap_qkv, cap_att, cap_inter, cap_act, cap_rows, cap_logits, cap_cos,
        cap_sin, cap_inv_freq; /* floats allocated in each */
    struct kv_attn_seq *aseq;  /* (n_seqs) */
    int *row0;                 /* (n_seqs + 1): first row of each sequence in the step, then M */
    size_t cap_aseq, cap_row0;
};

struct decoder_run *decoder_run_new(void)
{
    return calloc(1, sizeof(struct decoder_run));
}

void decoder_run_free(struct decoder_run *r)
{
    if (!r)
        return;
    free(r->x);
    free(r->h);
    free(r->qkv);
    free(r->att);
    free(r->inter);
    free(r->act);
    free(r->rows);
    free(r->logits);
    free(r->cos);
    free(r->sin);
    free(r->inv_freq);
    free(r->aseq);
    free(r->row0);
    free(r);
}

int32_t decoder_argmax(const float *logits, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++) {
        if (isnan(logits[best]))
            break; /* torch.argmax: NaN is the maximum */
        if (logits[i] > logits[best] || isnan(logits[i]))
            best = i;
    }
    return best;
}

/* Checks the whole step before anything changes; returns M (total new tokens) in *M_out. */
static int validate(const struct decoder_model *d, const struct decoder_step *st, int *M_out,
                    struct err *e)
{
    if (st->n_seqs <= 0 || !st->seqs || !st->n_tokens || !st->tokens)
        return err_set(e, ERR_INVALID, "a decoder step needs at least one sequence");
    int64_t M = 0;
    for (int i = 0; i < st->n_seqs; i++) {
        const struct decoder_seq *s = st->seqs[i];
        if (!s || s->d != d)
            return err_set(e, ERR_INVALID, "sequence %d does not belong to this decoder", i);
        for (int j = 0; j < i; j++)
            if (st->seqs[j] == s)
                return err_set(e, ERR_INVALID, "sequence %d is listed twice in one step", i);
        int n = st->n_tokens[i];
        if (n <= 0)
            return err_set(e, ERR_INVALID, "sequence %d has %d new tokens", i, n);
        if ((int64_t)s->len + n > s->max_tokens)
            return err_set(e, ERR_TOO_LARGE,
                           "sequence %d: %d cached + %d new tokens exceed its room for %d", i,
                           s->len, n, s->max_tokens);
        M += n;
        if (M > INT32_MAX / 4)
            return err_set(e, ERR_TOO_LARGE, "a step of %lld tokens is too large", (long long)M);
    }
    for (int64_t r = 0; r < M; r++)
        if (st->tokens[r] < 0 || st->tokens[r] >= d->vocab)
            return err_set(e, ERR_INVALID, "token id %d is outside the vocabulary (%lld)",
                           st->tokens[r], (long long)d->vocab);
    *M_out = (int)M;
    return 0;
}

static int alloc_step(const struct decoder_model *d, struct decoder_run *r,
                      const struct decoder_step *st, size_t M, size_t R, struct err *e)
{
    size_t half = (size_t)d->head_dim / 2, n = (size_t)st->n_seqs;
    size_t inter = d->v->family == DEC_LLAMA ? 2 * (size_t)d->I : (size_t)d->I;
    int rc;
    if ((rc = grow_floats(&r->x, &r->cap_x, M * (size_t)d->H, e)) ||
        (rc = grow_floats(&r->h, &r->cap_h, M * (size_t)d->H, e)) ||
        (rc = grow_floats(&r->qkv, &r->cap_qkv, M * (size_t)d->qkv_dim, e)) ||
        (rc = grow_floats(&r->att, &r->cap_att, M * (size_t)d->q_dim, e)) ||
        (rc = grow_floats(&r->inter, &r->cap_inter, M * inter, e)) ||
        (rc = grow_floats(&r->act, &r->cap_act, M * (size_t)d->I, e)) ||
        (rc = grow_floats(&r->rows, &r->cap_rows, R * (size_t)d->H, e)) ||
        (rc = grow_floats(&r->logits, &r->cap_logits, R * (size_t)d->vocab, e)) ||
        (rc = grow_floats(&r->cos, &r->cap_cos, M * half + 1, e)) ||
        (rc = grow_floats(&r->sin, &r->cap_sin, M * half + 1, e)) ||
        (rc = grow_floats(&r->inv_freq, &r->cap_inv_freq, half + 1, e)) ||
        (rc = grow_array(&r->aseq, &r->cap_aseq, n, sizeof *r->aseq, e)) ||
        (rc = grow_array(&r->row0, &r->cap_row0, n + 1, sizeof *r->row0, e)))
        return rc;
    r->row0[0] = 0;
    for (size_t i = 0; i < n; i++)
        r->row0[i + 1] = r->row0[i] + st->n_tokens[i];
    return 0;
}

/* x = token embeddings (+ learned positions); LLaMA: cos/sin of every new token's position. */
static void embed(const struct decoder_model *d, struct decoder_run *r,
                  const struct decoder_step *st)
{
    size_t H = (size_t)d->H;
    int half = d->head_dim / 2;
    for (int i = 0; i < st->n_seqs; i++) {
        const struct decoder_seq *s = st->seqs[i];
        const float *inv_freq = d->inv_freq;
        if (d->v->family == DEC_LLAMA && d->rope.type == ROPE_DYNAMIC) {
            /* transformers grows the base with the longest position of the forward pass */
            rope_inv_freq(&d->rope, (int64_t)s->len + st->n_tokens[i], r->inv_freq);
            inv_freq = r->inv_freq;
        }
        for (int t = 0; t < st->n_tokens[i]; t++) {
            size_t row = (size_t)r->row0[i] + (size_t)t;
            int pos = s->len + t;
            float *x = r->x + row * H; /* (H) */
            const float *w = d->wte + (size_t)st->tokens[row] * H;
            if (d->wpe) {
                const float *p = d->wpe + (size_t)pos * H;
                for (size_t k = 0; k < H; k++)
                    x[k] = w[k] + p[k];
            } else {
                memcpy(x, w, H * sizeof *x);
            }
            if (d->v->family == DEC_LLAMA)
                rope_cos_sin(inv_freq, half, pos, r->cos + row * (size_t)half,
                             r->sin + row * (size_t)half);
        }
    }
}

static int norm(const struct decoder_model *d, struct dnn_ctx *ctx, const struct norm_weights *n,
                const float *x, float *y, int M, struct err *e)
{
    if (d->v->family == DEC_GPT2)
        return layernorm_forward(ctx, x, NULL, y, n->w, n->b, d->eps, M, d->H, e);
    return rmsnorm_forward(x, y, n->w, d->eps, M, d->H, e);
}

/* RoPE on q and k of every new token, then k and v into each sequence's layer-l cache. */
static void rotate_and_cache(const struct decoder_model *d, struct decoder_run *r,
                             const struct decoder_step *st, int l)
{
    size_t half = (size_t)d->head_dim / 2, v_bytes = (size_t)d->kv_dim * sizeof(float);
    for (int i = 0; i < st->n_seqs; i++) {
        struct decoder_seq *s = st->seqs[i];
        for (int t = 0; t < st->n_tokens[i]; t++) {
            size_t row = (size_t)r->row0[i] + (size_t)t;
            float *q = r->qkv + row * (size_t)d->qkv_dim; /* (Q + 2 KV) */
            float *k = q + d->q_dim, *v = k + d->kv_dim;
            if (d->v->family == DEC_LLAMA) {
                const float *c = r->cos + row * half, *sn = r->sin + row * half;
                rope_rotate(q, d->n_heads, d->head_dim, c, sn);
                rope_rotate(k, d->n_kv_heads, d->head_dim, c, sn);
            }
            int pos = s->len + t;
            kv_store_key(s->k[l], d->n_kv_heads, d->head_dim, pos, k);
            memcpy(s->v[l] + (size_t)pos * (size_t)d->kv_dim, v, v_bytes);
        }
    }
}

static int attention(const struct decoder_model *d, struct decoder_run *r,
                     const struct decoder_step *st, int l, struct err *e)
{
    const struct dec_layer *L = &d->layers[l];
    struct kv_attn a = {
        .n_heads = d->n_heads,
        .n_kv_heads = d->n_kv_heads,
        .head_dim = d->head_dim,
        .ld_q = d->qkv_dim,
        .ld_kv = d->kv_dim,
        .ld_out = d->q_dim,
        .scale = L->attn_scale,
        .window = L->window,
    };
    for (int i = 0; i < st->n_seqs; i++) {
        const struct decoder_seq *s = st->seqs[i];
        size_t row = (size_t)r->row0[i];
        r->aseq[i] = (struct kv_attn_seq){
            .q = r->qkv + row * (size_t)d->qkv_dim,
            .k = s->k[l],
            .v = s->v[l],
            .out = r->att + row * (size_t)d->q_dim,
            .past = s->len,
            .n_new = st->n_tokens[i],
        };
    }
    return kv_attention_forward(&a, r->aseq, st->n_seqs, e);
}

/* act = silu(gate) * up over (M, I), from gu = gate | up (M, 2I). */
static void swiglu(const float *gu, float *act, int M, int I)
{
    size_t n = (size_t)M * (size_t)I;
#pragma omp parallel for schedule(static) if (n >= 16384)
    for (int m = 0; m < M; m++) {
        const float *g = gu + (size_t)m * 2 * (size_t)I, *u = g + I;
        float *o = act + (size_t)m * (size_t)I;
        for (int i = 0; i < I; i++)
            o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    }
}

static int layer_forward(const struct decoder_model *d, struct dnn_ctx *ctx, struct decoder_run *r,
                         const struct decoder_step *st, int l, int M, struct err *e)
{
    const struct dec_layer *L = &d->layers[l];
    int rc = norm(d, ctx, &L->ln_attn, r->x, r->h, M, e);
    if (rc == 0)
        rc = linear_forward(&L->qkv, ctx, r->h, r->qkv, M, e); /* (M, Q + 2 KV) */
    if (rc)
        return rc;
    rotate_and_cache(d, r, st, l);
    rc = attention(d, r, st, l, e); /* (M, Q) */
    if (rc == 0)
        rc = linear_forward_add(&L->o, ctx, r->att, r->x, M, e);
    if (rc == 0)
        rc = norm(d, ctx, &L->ln_mlp, r->x, r->h, M, e);
    if (rc == 0)
        rc = linear_forward(&L->up, ctx, r->h, r->inter, M, e); /* (M, I) or (M, 2I) */
    if (rc)
        return rc;
    const float *act = r->inter;
    if (d->v->family == DEC_LLAMA) {
        swiglu(r->inter, r->act, M, d->I);
        act = r->act;
    }
    return linear_forward_add(&L->down, ctx, act, r->x, M, e);
}

int decoder_forward(const struct decoder_model *d, struct dnn_ctx *ctx, struct decoder_run *r,
                    const struct decoder_step *st, const float **logits, struct err *e)
{
    int M = 0, rc;
    if ((rc = validate(d, st, &M, e)) != 0)
        return rc;
    int R = st->all_logits ? M : st->n_seqs; /* rows that get logits */
    if ((rc = alloc_step(d, r, st, (size_t)M, (size_t)R, e)) != 0)
        return rc;
    for (int i = 0; i < st->n_seqs; i++)
        if ((rc = decoder_seq_reserve(st->seqs[i], st->seqs[i]->len + st->n_tokens[i], e)) != 0)
            return rc;
    embed(d, r, st);
    for (int l = 0; l < d->n_layers; l++)
        if ((rc = layer_forward(d, ctx, r, st, l, M, e)) != 0)
            return rc;
    /* the final norm and the head only on the rows that get logits */
    const float *rows = r->x;
    if (!st->all_logits) {
        for (int i = 0; i < st->n_seqs; i++)
            memcpy(r->rows + (size_t)i * (size_t)d->H,
                   r->x + (size_t)(r->row0[i + 1] - 1) * (size_t)d->H,
                   (size_t)d->H * sizeof(float));
        rows = r->rows;
    }
    if ((rc = norm(d, ctx, &d->ln_f, rows, r->rows, R, e)) != 0 ||
        (rc = linear_forward(&d->lm_head, ctx, r->rows, r->logits, R, e)) != 0)
        return rc;
    for (int i = 0; i < st->n_seqs; i++)
        st->seqs[i]->len += st->n_tokens[i];
    *logits = r->logits;
    return 0;
}
