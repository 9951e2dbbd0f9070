/* attention: masked scaled dot-product attention over (batch, seq, heads*head_dim) views with
 * two batched oneDNN matmuls whose strided memory descriptors treat (batch, head) as batch
 * dimensions, so Q, K, V and the output are read and written in place (no transposes):
 *   scores (b, h, s, t) = Q K^T / sqrt(head_dim) + mask_bias (b, 1, 1, t)   matmul + post-op
 *     (a local window: mask_bias (b, 1, s, t), built per chunk, also hides |s - t| > window)
 *   probs = softmax over t                                                   softmax primitive
 *   out (b, s, h, d) = probs V                                               matmul
 * Batches are processed in chunks so the scores stay within SCORES_BUDGET bytes.
 * attention_forward_biased changes the scale and adds a score bias (struct attn_bias) between
 * the scores matmul and the softmax, a plain loop over the chunk's scores. */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "ops/attention_impl.h"
#include "ops/ops.h"

#define SCORES_BUDGET ((size_t)16 << 20)

/* A (nb, H, rows, cols) view of a (batch, seq, ld) activation: head h of token s starts at
 * s*ld + h*D; transposed swaps the two inner dimensions (K^T). */
static dnnl_status_t head_view(dnnl_memory_desc_t *md, int nb, int H, int S, int D, int ld,
                               int transposed)
{
    dnnl_dims_t strides = {(dnnl_dim_t)S * ld, D, transposed ? 1 : ld, transposed ? ld : 1};
    dnnl_dims_t dims = {nb, H, transposed ? D : S, transposed ? S : D};
    return dnnl_memory_desc_init_by_strides(md, 4, dims, dnnl_f32, strides);
}

/* scores (nb, H, S, S) f32 = q k^T * scale (+ a bias (nb, 1, bias_rows, S) when masked), over
 * the caller's q and k^T views, created and cached under key: attention_bf16.c's too. */
int attn_scores_prim(struct dnn_ctx *ctx, const struct dnn_key *key, const dnnl_memory_desc_t *q_md,
                     const dnnl_memory_desc_t *k_md, int bias_rows, int masked, float scale,
                     struct dnn_prim **out, struct err *e)
{
    dnnl_memory_desc_t dst_md, bias_md;
    const dnnl_dim_t *q = q_md->dims;
    dnnl_dims_t dst_dims = {q[0], q[1], q[2], q[2]}, bias_dims = {q[0], 1, bias_rows, q[2]};
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&dst_md, 4, dst_dims, dnnl_f32, dnnl_abcd);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&bias_md, 4, bias_dims, dnnl_f32, dnnl_abcd);
    dnnl_matmul_desc_t desc;
    if (st == dnnl_success)
        st = dnnl_matmul_desc_init(&desc, q_md, k_md, NULL, &dst_md);
    if (st != dnnl_success)
        return dnn_fail(st, e, "attention scores desc");
    dnnl_primitive_attr_t attr;
    int rc = dnn_attr_new(&attr, e);
    if (rc != 0)
        return rc;
    dnnl_post_ops_t po = NULL;
    st = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &scale);
    if (st == dnnl_success && masked) {
        st = dnnl_post_ops_create(&po);
        if (st == dnnl_success)
            st = dnnl_post_ops_append_binary(po, dnnl_binary_add, &bias_md);
        if (st == dnnl_success)
            st = dnnl_primitive_attr_set_post_ops(attr, po);
        dnnl_post_ops_destroy(po);
    }
    dnnl_primitive_desc_t pd = NULL;
    if (st == dnnl_success)
        st = dnnl_primitive_desc_create(&pd, &desc, attr, dnn_engine(ctx), NULL);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success)
        return dnn_fail(st, e, "attention scores primitive desc");
    static const int args[] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST,
                               DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1};
    return dnn_cache_add(ctx, key, pd, args, NULL, masked ? 4 : 3, out, e);
}

/* scores = Q K^T * scale (+ mask bias), for a chunk of nb sequences. */
static int scores_prim(struct dnn_ctx *ctx, const struct attn_shape *s, int nb, int masked,
                       float scale, struct dnn_prim **out, struct err *e)
{
    int H = s->n_heads, S = s->seq, D = s->head_dim;
    union {
        float f;
        int32_t i;
    } bits = {scale};
    struct dnn_key key = {.kind = DNN_KIND_ATTN_SCORES,
                          .v = {nb, H, S, D, s->ld_qkv, masked, bits.i}};
    *out = dnn_cache_find(ctx, &key);
    if (*out)
        return 0;
    dnnl_memory_desc_t q_md, k_md;
    dnnl_status_t st = head_view(&q_md, nb, H, S, D, s->ld_qkv, 0);
    if (st == dnnl_success)
        st = head_view(&k_md, nb, H, S, D, s->ld_qkv, 1);
    if (st != dnnl_success)
        return dnn_fail(st, e, "attention scores views");
    /* masked 1: a bias per key (nb, 1, 1, S); 2: per query and key (nb, 1, S, S) */
    return attn_scores_prim(ctx, &key, &q_md, &k_md, masked == 2 ? S : 1, masked, scale, out, e);
}

/* out = probs V, for a chunk of nb sequences. */
static int context_prim(struct dnn_ctx *ctx, const struct attn_shape *s, int nb,
                        struct dnn_prim **out, struct err *e)
{
    int H = s->n_heads, S = s->seq, D = s->head_dim;
    struct dnn_key key = {.kind = DNN_KIND_ATTN_CONTEXT, .v = {nb, H, S, D, s->ld_qkv, s->ld_out}};
    *out = dnn_cache_find(ctx, &key);
    if (*out)
        return 0;
    dnnl_memory_desc_t p_md, v_md, dst_md;
    dnnl_dims_t p_dims = {nb, H, S, S};
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&p_md, 4, p_dims, dnnl_f32, dnnl_abcd);
    if (st == dnnl_success)
        st = head_view(&v_md, nb, H, S, D, s->ld_qkv, 0);
    if (st == dnnl_success)
        st = head_view(&dst_md, nb, H, S, D, s->ld_out, 0);
    dnnl_matmul_desc_t desc;
    if (st == dnnl_success)
        st = dnnl_matmul_desc_init(&desc, &p_md, &v_md, NULL, &dst_md);
    if (st != dnnl_success)
        return dnn_fail(st, e, "attention context desc");
    dnnl_primitive_desc_t pd;
    int rc = dnn_pd_plain(ctx, &desc, "attention context primitive desc", &pd, e);
    if (rc != 0)
        return rc;
    static const int args[] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
    return dnn_cache_add(ctx, &key, pd, args, NULL, 3, out, e);
}

static int check_shape(const struct attn_shape *s, struct err *e)
{
    if (s->batch <= 0 || s->seq <= 0 || s->n_heads <= 0 || s->head_dim <= 0)
        return err_set(e, ERR_INVALID, "attention: shape batch %d seq %d heads %d head_dim %d",
                       s->batch, s->seq, s->n_heads, s->head_dim);
    int width = s->n_heads * s->head_dim;
    if (s->ld_qkv < width || s->ld_out < width)
        return err_set(e, ERR_INVALID, "attention: row strides %d, %d below heads*head_dim %d",
                       s->ld_qkv, s->ld_out, width);
    return 0;
}

/* scores (nb, H, S, S) += the score bias of sequences b0 .. b0 + nb - 1. */
static void add_score_bias(const struct attn_shape *s, const struct attn_bias *ab, int b0, int nb,
                           float *scores)
{
    size_t block = (size_t)s->n_heads * (size_t)s->seq * (size_t)s->seq;
#pragma omp parallel for schedule(static) if (nb * block >= 65536)
    for (int i = 0; i < nb; i++) {
        const float *a = ab->add + (ab->per_seq ? (size_t)(b0 + i) * block : 0);
        float *o = scores + (size_t)i * block;
        for (size_t k = 0; k < block; k++)
            o[k] += a[k];
    }
}

/* One chunk of nb sequences starting at sequence b0; bias: the chunk's own (its first
 * sequence's) mask bias, per key (masked 1) or per query and key (masked 2), or NULL; ab: a
 * scale and score bias (attention_forward_biased) or NULL. */
static int attend_chunk(struct dnn_ctx *ctx, const struct attn_shape *s, int b0, int nb,
                        const float *q, const float *k, const float *v, const float *bias,
                        int masked, const struct attn_bias *ab, float *scores, float *out,
                        struct err *e)
{
    int S = s->seq;
    size_t in_off = (size_t)b0 * (size_t)S * (size_t)s->ld_qkv;
    size_t out_off = (size_t)b0 * (size_t)S * (size_t)s->ld_out;
    struct dnn_prim *ps, *pc;
    float scale = ab && ab->scale > 0 ? ab->scale : 1.0f / sqrtf((float)s->head_dim);
    int rc = scores_prim(ctx, s, nb, bias ? masked : 0, scale, &ps, e);
    if (rc == 0)
        rc = context_prim(ctx, s, nb, &pc, e);
    if (rc != 0)
        return rc;
    void *sbufs[] = {(void *)(q + in_off), (void *)(k + in_off), scores, (void *)bias};
    rc = dnn_exec(ctx, ps, sbufs, e);
    if (rc == 0 && ab && ab->add)
        add_score_bias(s, ab, b0, nb, scores);
    if (rc == 0)
        rc = softmax_forward(ctx, scores, nb * s->n_heads * S, S, e);
    if (rc != 0)
        return rc;
    void *cbufs[] = {scores, (void *)(v + in_off), out + out_off};
    return dnn_exec(ctx, pc, cbufs, e);
}

/* The (nb, S, S) bias of sequences b0 .. b0 + nb - 1 under a local window: 0 where the key
 * is kept (|s - t| <= window and not padding), -FLT_MAX elsewhere. */
static void window_bias(const struct attn_shape *s, int b0, int nb, const int32_t *mask,
                        float *bias)
{
    int S = s->seq, W = s->window;
    for (int b = 0; b < nb; b++) {
        const int32_t *m = mask ? mask + (size_t)(b0 + b) * (size_t)S : NULL;
        for (int i = 0; i < S; i++) {
            float *row = bias + ((size_t)b * (size_t)S + (size_t)i) * (size_t)S;
            for (int j = 0; j < S; j++)
                row[j] = (m && !m[j]) || abs(i - j) > W ? -FLT_MAX : 0.0f;
        }
    }
}

int attention_forward(struct dnn_ctx *ctx, const struct attn_shape *s, const float *q,
                      const float *k, const float *v, const int32_t *attention_mask, float *out,
                      struct err *e)
{
    return attention_forward_biased(ctx, s, q, k, v, attention_mask, NULL, out, e);
}

/* Up to this many multiply-adds (QK^T and PV over all heads: 16 tokens of bert-base's 12
 * heads of 64) attention runs on the calling thread, as one op: a fork and barrier per
 * primitive cost more (see dnn_serial_begin). */
#define SERIAL_MAX_MACS ((size_t)1 << 19)

static int attend(struct dnn_ctx *ctx, const struct attn_shape *s, const float *q, const float *k,
                  const float *v, const int32_t *attention_mask, const struct attn_bias *ab,
                  float *out, struct err *e);

int attention_forward_biased(struct dnn_ctx *ctx, const struct attn_shape *s, const float *q,
                             const float *k, const float *v, const int32_t *attention_mask,
                             const struct attn_bias *ab, float *out, struct err *e)
{
    int rc = check_shape(s, e);
    if (rc != 0)
        return rc;
    size_t macs = 2 * (size_t)s->batch * (size_t)s->n_heads * (size_t)s->seq * (size_t)s->seq *
                  (size_t)s->head_dim;
    int serial = dnn_serial_begin(macs <= SERIAL_MAX_MACS);
    rc = attend(ctx, s, q, k, v, attention_mask, ab, out, e);
    dnn_serial_end(serial);
    return rc;
}

/* attention_forward_biased on a checked shape. */
static int attend(struct dnn_ctx *ctx, const struct attn_shape *s, const float *q, const float *k,
                  const float *v, const int32_t *attention_mask, const struct attn_bias *ab,
                  float *out, struct err *e)
{
    int rc;
    int B = s->batch, S = s->seq;
    size_t per_seq = (size_t)s->n_heads * (size_t)S * (size_t)S; /* scores of one sequence */
    size_t nb_max = SCORES_BUDGET / (per_seq * sizeof(float));
    int nb = nb_max < 1 ? 1 : nb_max > (size_t)B ? B : (int)nb_max;
    size_t scores_n = ((size_t)nb * per_seq + 15) & ~(size_t)15;
    if (attention_mask) { /* a mask of all ones changes nothing: skip the bias post-op */
        size_t i = 0, n = (size_t)B * (size_t)S;
        while (i < n && attention_mask[i])
            i++;
        if (i == n)
            attention_mask = NULL;
    }
    /* a window shorter than the sequence: a bias per query and key, built per chunk */
    int masked = s->window > 0 && s->window < S - 1 ? 2 : attention_mask ? 1 : 0;
    size_t bias_n = masked == 2 ? (size_t)nb * (size_t)S * (size_t)S
                    : masked    ? (size_t)B * (size_t)S
                                : 0;
    float *scores = dnn_scratch(ctx, (scores_n + bias_n) * sizeof(float), e);
    if (!scores)
        return e ? e->kind : ERR_NOMEM;
    float *bias = masked ? scores + scores_n : NULL; /* 0 for a kept key, -FLT_MAX otherwise */
    if (masked == 1)
        for (size_t i = 0; i < bias_n; i++)
            bias[i] = attention_mask[i] ? 0.0f : -FLT_MAX;
    for (int b0 = 0; b0 < B; b0 += nb) {
        int n = B - b0 < nb ? B - b0 : nb;
        const float *cb = bias;
        if (masked == 2)
            window_bias(s, b0, n, attention_mask, bias);
        else if (masked == 1)
            cb = bias + (size_t)b0 * (size_t)S;
        rc = attend_chunk(ctx, s, b0, n, q, k, v, cb, masked, ab, scores, out, e);
        if (rc != 0)
            return rc;
    }
    return 0;
}
