/* decoder_forward: one step of the decoder over several sequences (see models/decoder.h).
 * Shapes, with M = all new tokens of the step (sequence after sequence), hidden H,
 * intermediate I, q/kv widths Q = n_heads hd and KV = n_kv_heads hd:
 *
 *   x   = wte[ids] (+ wpe[positions], GPT-2) (* sqrt(H), Gemma)          (M, H)
 *   per layer:
 *     h   = norm(x)                           LayerNorm (GPT-2) / RMSNorm (LLaMA)
 *     qkv = h W_qkv^T (+ b)                   (M, Q + 2 KV), one matmul for all sequences
 *     q, k per-head RMSNorm (qk_norm), rotated by their positions (LLaMA: all or the first
 *     rot_dim of each head, the layer's RoPE); k, v appended to each sequence's cache
 *     att = softmax(cap(q K^T scale) + mask) V  per sequence over its cache    (M, Q)
 *     x  += att W_o^T (+ b)                   residual fused into the matmul
 *                                             (sandwich: x += norm(att W_o^T))
 *     h   = norm(x)
 *     GPT-2: x += gelu(h W_fc^T + b) W_proj^T + b                        via (M, I)
 *     LLaMA: x += (act(h W_gate^T) * (h W_up^T)) W_down^T    gate | up one matmul (M, 2I)
 *            act SiLU or GELU tanh; sandwich: the MLP's output normed before the add
 *   logits = cap(norm(x[last row of each sequence]) W_head^T)            (n_seqs, vocab)
 *   (hidden: norm(x[those rows]) itself, (n_seqs or M, H), for a backbone's embeddings)
 *
 * LongRoPE (Phi-3): a sequence is rotated with the short factors while it is at most
 * original_max_position_embeddings long and with the long ones at every position after, as a
 * full forward of the whole sequence in transformers; the step that takes it past that length
 * feeds its cached tokens again (the step "as run" of struct decoder_run: positions from 0).
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
    float *cos, *sin; /* (n_ropes, M, rot_dim / 2) RoPEs of each new token's position */
    float *inv_freq;  /* (hd / 2) dynamic RoPE of the sequence at hand */
    size_t cap_x, cap_h, cap_qkv, cap_att, cap_inter, cap_act, cap_rows, cap_logits, cap_cos,
        cap_sin, cap_inv_freq; /* floats allocated in each */
    struct kv_attn_seq *aseq;  /* (n_seqs) */
    int *row0;                 /* (n_seqs + 1): first row of each sequence in the step, then M */
    size_t cap_aseq, cap_row0;
    /* the step as run: sequence i from position start[i], n[i] tokens (tokens) */
    int *start, *n;
    int32_t *tokens;
    size_t cap_start, cap_n, cap_tokens;
    int M; /* tokens of the step as run */
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
    free(r->start);
    free(r->n);
    free(r->tokens);
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

/* Whether sequence s crosses the model's rope switch with n new tokens: its cached tokens were
 * rotated with the short factors and must be fed again with the long ones. */
static bool crosses_switch(const struct decoder_model *d, const struct decoder_seq *s, int n)
{
    return d->rope_switch > 0 && s->len > 0 && s->len <= d->rope_switch &&
           (int64_t)s->len + n > d->rope_switch;
}

/* The step as run (run->start, n, tokens, M): st itself, but a sequence crossing the rope
 * switch starts again at 0 with its cached tokens before its new ones. */
static int plan_step(const struct decoder_model *d, struct decoder_run *r,
                     const struct decoder_step *st, int M, struct err *e)
{
    size_t n = (size_t)st->n_seqs, m = (size_t)M;
    for (int i = 0; i < st->n_seqs; i++)
        m += crosses_switch(d, st->seqs[i], st->n_tokens[i]) ? (size_t)st->seqs[i]->len : 0;
    int rc;
    if ((rc = grow_array(&r->start, &r->cap_start, n, sizeof *r->start, e)) ||
        (rc = grow_array(&r->n, &r->cap_n, n, sizeof *r->n, e)) ||
        (rc = grow_array(&r->tokens, &r->cap_tokens, m, sizeof *r->tokens, e)))
        return rc;
    size_t in = 0, out = 0;
    for (int i = 0; i < st->n_seqs; i++) {
        const struct decoder_seq *s = st->seqs[i];
        int k = st->n_tokens[i];
        bool again = crosses_switch(d, s, k);
        r->start[i] = again ? 0 : s->len;
        r->n[i] = again ? s->len + k : k;
        if (again) {
            memcpy(r->tokens + out, s->ids, (size_t)s->len * sizeof *r->tokens);
            out += (size_t)s->len;
        }
        memcpy(r->tokens + out, st->tokens + in, (size_t)k * sizeof *r->tokens);
        out += (size_t)k;
        in += (size_t)k;
    }
    r->M = (int)m;
    return 0;
}

static int alloc_step(const struct decoder_model *d, struct decoder_run *r,
                      const struct decoder_step *st, size_t M, size_t R, struct err *e)
{
    size_t half = (size_t)d->rot_dim / 2, n = (size_t)st->n_seqs;
    size_t inter = d->v->family == DEC_LLAMA ? 2 * (size_t)d->I : (size_t)d->I;
    size_t ropes = (size_t)(d->n_ropes > 0 ? d->n_ropes : 1);
    int rc;
    if ((rc = grow_floats(&r->x, &r->cap_x, M * (size_t)d->H, e)) ||
        (rc = grow_floats(&r->h, &r->cap_h, M * (size_t)d->H, e)) ||
        (rc = grow_floats(&r->qkv, &r->cap_qkv, M * (size_t)d->qkv_dim, e)) ||
        (rc = grow_floats(&r->att, &r->cap_att, M * (size_t)d->q_dim, e)) ||
        (rc = grow_floats(&r->inter, &r->cap_inter, M * inter, e)) ||
        (rc = grow_floats(&r->act, &r->cap_act, M * (size_t)d->I, e)) ||
        (rc = grow_floats(&r->rows, &r->cap_rows, R * (size_t)d->H, e)) ||
        (!st->hidden && (rc = grow_floats(&r->logits, &r->cap_logits, R * (size_t)d->vocab, e))) ||
        (rc = grow_floats(&r->cos, &r->cap_cos, ropes * M * half + 1, e)) ||
        (rc = grow_floats(&r->sin, &r->cap_sin, ropes * M * half + 1, e)) ||
        (rc = grow_floats(&r->inv_freq, &r->cap_inv_freq, half + 1, e)) ||
        (rc = grow_array(&r->aseq, &r->cap_aseq, n, sizeof *r->aseq, e)) ||
        (rc = grow_array(&r->row0, &r->cap_row0, n + 1, sizeof *r->row0, e)))
        return rc;
    r->row0[0] = 0;
    for (size_t i = 0; i < n; i++)
        r->row0[i + 1] = r->row0[i] + st->n_tokens[i];
    return 0;
}

/* cos/sin of RoPE k for sequence i's tokens of the step as run. */
static void rope_rows(const struct decoder_model *d, struct decoder_run *r, int i, int k)
{
    const struct rope_params *p = &d->rope[k];
    int half = d->rot_dim / 2;
    const float *inv_freq = d->inv_freq[k];
    if (p->type == ROPE_DYNAMIC || p->type == ROPE_LONGROPE) {
        /* transformers picks them by the longest position of the forward pass */
        rope_inv_freq(p, (int64_t)r->start[i] + r->n[i], r->inv_freq);
        inv_freq = r->inv_freq;
    }
    float scale = (float)p->attention_factor;
    for (int t = 0; t < r->n[i]; t++) {
        size_t at = ((size_t)k * (size_t)r->M + (size_t)r->row0[i] + (size_t)t) * (size_t)half;
        rope_cos_sin(inv_freq, half, r->start[i] + t, r->cos + at, r->sin + at);
        for (int j = 0; scale != 1.0f && j < half; j++) {
            r->cos[at + (size_t)j] *= scale; /* HF: emb.cos() * attention_scaling */
            r->sin[at + (size_t)j] *= scale;
        }
    }
}

/* x = token embeddings (+ learned positions) (* embed_scale); LLaMA: cos/sin of every token's
 * position for each RoPE. */
static void embed(const struct decoder_model *d, struct decoder_run *r,
                  const struct decoder_step *st)
{
    size_t H = (size_t)d->H;
    for (int i = 0; i < st->n_seqs; i++) {
        for (int t = 0; t < st->n_tokens[i]; t++) {
            size_t row = (size_t)r->row0[i] + (size_t)t;
            int pos = r->start[i] + t;
            float *x = r->x + row * H; /* (H) */
            emb_table_row(&d->wte, st->tokens[row], x);
            if (d->wpe) {
                const float *p = d->wpe + (size_t)pos * H;
                for (size_t k = 0; k < H; k++)
                    x[k] += p[k];
            } else if (d->embed_scale != 1.0f) {
                for (size_t k = 0; k < H; k++)
                    x[k] *= d->embed_scale;
            }
        }
        for (int k = 0; d->v->family == DEC_LLAMA && k < d->n_ropes; k++)
            rope_rows(d, r, i, k);
    }
}

static int norm(const struct decoder_model *d, struct dnn_ctx *ctx, const struct norm_weights *n,
                const float *x, float *y, int M, struct err *e)
{
    if (d->v->family == DEC_GPT2)
        return layernorm_forward(ctx, x, NULL, y, n->w, n->b, d->eps, M, d->H, e);
    return rmsnorm_forward(x, y, n->w, d->eps, M, d->H, e);
}

/* q/k norms and RoPE on q and k of every new token, then k and v into each sequence's
 * layer-l cache. */
static void rotate_and_cache(const struct decoder_model *d, struct decoder_run *r,
                             const struct decoder_step *st, int l)
{
    const struct dec_layer *L = &d->layers[l];
    size_t half = (size_t)d->rot_dim / 2, v_bytes = (size_t)d->kv_dim * sizeof(float);
    size_t table = (size_t)L->rope * (size_t)r->M * half; /* the layer's RoPE */
    for (int i = 0; i < st->n_seqs; i++) {
        struct decoder_seq *s = st->seqs[i];
        for (int t = 0; t < st->n_tokens[i]; t++) {
            size_t row = (size_t)r->row0[i] + (size_t)t;
            float *q = r->qkv + row * (size_t)d->qkv_dim; /* (Q + 2 KV) */
            float *k = q + d->q_dim, *v = k + d->kv_dim;
            if (d->v->qk_norm) { /* shapes checked at load: cannot fail */
                rmsnorm_forward(q, q, L->q_norm.w, d->eps, d->n_heads, d->head_dim, NULL);
                rmsnorm_forward(k, k, L->k_norm.w, d->eps, d->n_kv_heads, d->head_dim, NULL);
            }
            if (d->v->family == DEC_LLAMA) {
                const float *c = r->cos + table + row * half, *sn = r->sin + table + row * half;
                rope_rotate_strided(q, d->n_heads, d->head_dim, d->rot_dim, c, sn);
                rope_rotate_strided(k, d->n_kv_heads, d->head_dim, d->rot_dim, c, sn);
            }
            int pos = r->start[i] + t;
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
        .softcap = d->attn_softcap,
    };
    for (int i = 0; i < st->n_seqs; i++) {
        const struct decoder_seq *s = st->seqs[i];
        size_t row = (size_t)r->row0[i];
        r->aseq[i] = (struct kv_attn_seq){
            .q = r->qkv + row * (size_t)d->qkv_dim,
            .k = s->k[l],
            .v = s->v[l],
            .out = r->att + row * (size_t)d->q_dim,
            .past = r->start[i],
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

/* act = gelu_tanh(gate) * up (Gemma's GeGLU), torch's tanh approximation in float32. */
static void geglu(const float *gu, float *act, int M, int I)
{
    const float beta = (float)(M_SQRT2 * M_2_SQRTPI * 0.5), kappa = 0.044715f;
    size_t n = (size_t)M * (size_t)I;
#pragma omp parallel for schedule(static) if (n >= 16384)
    for (int m = 0; m < M; m++) {
        const float *g = gu + (size_t)m * 2 * (size_t)I, *u = g + I;
        float *o = act + (size_t)m * (size_t)I;
        for (int i = 0; i < I; i++) {
            float x = g[i], inner = beta * (x + kappa * (x * x * x));
            o[i] = 0.5f * x * (1.0f + tanhf(inner)) * u[i];
        }
    }
}

/* x += norm(y) (sandwich: the output of a block normed before the residual). */
static int add_normed(const struct decoder_model *d, const struct norm_weights *n, float *y,
                      float *x, int M, struct err *e)
{
    int rc = rmsnorm_forward(y, y, n->w, d->eps, M, d->H, e);
    size_t all = (size_t)M * (size_t)d->H;
    for (size_t i = 0; rc == 0 && i < all; i++)
        x[i] += y[i];
    return rc;
}

/* x += att W_o^T, or its norm (sandwich). */
static int attention_out(const struct decoder_model *d, struct dnn_ctx *ctx,
                         struct decoder_run *r, const struct dec_layer *L, int M, struct err *e)
{
    if (!d->v->sandwich)
        return linear_forward_add(&L->o, ctx, r->att, r->x, M, e);
    int rc = linear_forward(&L->o, ctx, r->att, r->h, M, e);
    return rc ? rc : add_normed(d, &L->post_attn, r->h, r->x, M, e);
}

/* x += down(act), or its norm (sandwich). */
static int mlp_out(const struct decoder_model *d, struct dnn_ctx *ctx, struct decoder_run *r,
                   const struct dec_layer *L, const float *act, int M, struct err *e)
{
    if (!d->v->sandwich)
        return linear_forward_add(&L->down, ctx, act, r->x, M, e);
    int rc = linear_forward(&L->down, ctx, act, r->h, M, e);
    return rc ? rc : add_normed(d, &L->post_mlp, r->h, r->x, M, e);
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
        rc = attention_out(d, ctx, r, L, M, e);
    if (rc == 0)
        rc = norm(d, ctx, &L->ln_mlp, r->x, r->h, M, e);
    if (rc == 0)
        rc = linear_forward(&L->up, ctx, r->h, r->inter, M, e); /* (M, I) or (M, 2I) */
    if (rc)
        return rc;
    const float *act = r->inter;
    if (d->v->family == DEC_LLAMA) {
        (d->act == ACT_GELU_TANH ? geglu : swiglu)(r->inter, r->act, M, d->I);
        act = r->act;
    }
    return mlp_out(d, ctx, r, L, act, M, e);
}

/* The final norm and the head on the rows that get logits (each sequence's last token, or its
 * new tokens with all_logits: not the cached ones a rope switch fed again), soft-capped. */
static int head(const struct decoder_model *d, struct dnn_ctx *ctx, struct decoder_run *r,
                const struct decoder_step *st, int R, struct err *e)
{
    size_t H = (size_t)d->H, out = 0;
    for (int i = 0; i < st->n_seqs; i++) {
        int k = st->all_logits ? st->n_tokens[i] : 1;
        memcpy(r->rows + out * H, r->x + (size_t)(r->row0[i + 1] - k) * H,
               (size_t)k * H * sizeof(float));
        out += (size_t)k;
    }
    int rc = norm(d, ctx, &d->ln_f, r->rows, r->rows, R, e);
    if (rc || st->hidden)
        return rc;
    rc = linear_forward(&d->lm_head, ctx, r->rows, r->logits, R, e);
    float cap = d->final_softcap;
    size_t all = (size_t)R * (size_t)d->vocab;
    for (size_t i = 0; rc == 0 && cap > 0 && i < all; i++)
        r->logits[i] = tanhf(r->logits[i] / cap) * cap;
    return rc;
}

int decoder_forward(const struct decoder_model *d, struct dnn_ctx *ctx, struct decoder_run *r,
                    const struct decoder_step *st, const float **logits, struct err *e)
{
    int M = 0, rc;
    if (!st->hidden && !d->has_head)
        return err_set(e, ERR_INVALID, "this decoder has no lm_head: ask for its hidden states");
    if ((rc = validate(d, st, &M, e)) != 0 || (rc = plan_step(d, r, st, M, e)) != 0)
        return rc;
    /* from here on, the step as run */
    struct decoder_step run = {.n_seqs = st->n_seqs,
                               .seqs = st->seqs,
                               .tokens = r->tokens,
                               .n_tokens = r->n,
                               .all_logits = st->all_logits,
                               .hidden = st->hidden};
    int R = st->all_logits ? M : st->n_seqs; /* rows that get logits */
    if ((rc = alloc_step(d, r, &run, (size_t)r->M, (size_t)R, e)) != 0)
        return rc;
    for (int i = 0; i < st->n_seqs; i++)
        if ((rc = decoder_seq_reserve(st->seqs[i], r->start[i] + r->n[i], e)) != 0)
            return rc;
    embed(d, r, &run);
    for (int l = 0; l < d->n_layers; l++)
        if ((rc = layer_forward(d, ctx, r, &run, l, r->M, e)) != 0)
            return rc;
    if ((rc = head(d, ctx, r, st, R, e)) != 0)
        return rc;
    for (int i = 0; i < st->n_seqs; i++) {
        struct decoder_seq *s = st->seqs[i];
        if (s->ids) /* the cached tokens, for a rope switch to come */
            memcpy(s->ids + r->start[i], r->tokens + r->row0[i], (size_t)r->n[i] * sizeof(int32_t));
        s->len = r->start[i] + r->n[i];
    }
    *logits = st->hidden ? r->rows : r->logits;
    return 0;
}
