/* attention_bf16: attention_forward's masked scaled dot-product attention with Q, K, V and the
 * probabilities rounded to bf16, for INT8 encoders on CPUs with native bf16 (AMX or
 * AVX512-BF16). Per chunk of nb sequences:
 *   qb, kb, vb (nb, H, S, D) bf16 = the heads of Q, K, V, gathered and rounded   own loop
 *   scores (nb, H, S, S) f32 = qb kb^T / sqrt(D) + mask_bias (nb, 1, 1, S)        matmul
 *   probs (nb, H, S, S) bf16 = softmax over the keys                             own loop
 *   out (nb, S, H, D) f32, in place in the (batch, seq, ld_out) view = probs vb   matmul
 * oneDNN 2.6 runs bf16 matmuls on contiguous heads with brgemm (AMX), while attention.c's f32
 * ones on strided views fall to gemm:jit: 3-4x less time for the two products at BERT-base
 * shapes (docs/DECISIONS.md). bf16 rounding (2^-9 relative) sits well inside INT8's own error
 * (per-tensor activations, 1/254 of the largest). Windows and score biases go to
 * attention.c. attention_forward_heads takes the heads as matmul_int8.c's
 * linear_forward_heads wrote them (the QKV epilogue's store), skipping the gathers. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "ops/attention_impl.h"
#include "ops/bf16.h"
#include "ops/cpu.h"
#include "ops/ops.h"

#define SCORES_BUDGET ((size_t)16 << 20)

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "ops/simd.h"

/* e^x for x <= 0, 0 below -87 (masked keys: -FLT_MAX). */
__attribute__((target("avx512f"))) static inline __m512 exp_neg(__m512 x)
{
    __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_GE_OQ);
    return _mm512_maskz_mov_ps(live, exp_neg_avx512(x));
}

/* y (n) bf16 = softmax(x (n)); x is overwritten with e^(x - max). */
__attribute__((target("avx512f"))) static void softmax_row_avx512(float *x, uint16_t *y, int n)
{
    __m512 m = _mm512_set1_ps(-FLT_MAX), sum = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        m = _mm512_mask_max_ps(m, k, m, _mm512_maskz_loadu_ps(k, x + i));
    }
    __m512 vmax = _mm512_set1_ps(_mm512_reduce_max_ps(m));
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 e = exp_neg(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vmax));
        e = _mm512_maskz_mov_ps(k, e);
        sum = _mm512_add_ps(sum, e);
        _mm512_mask_storeu_ps(x + i, k, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), inv));
    }
    bf16_from_f32(x, y, (size_t)n);
}

#endif

/* softmax_row_avx512 in plain C. */
static void softmax_row_plain(float *x, uint16_t *y, int n)
{
    float m = -FLT_MAX, sum = 0.0f;
    for (int i = 0; i < n; i++)
        m = x[i] > m ? x[i] : m;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - m);
        sum += x[i];
    }
    for (int i = 0; i < n; i++)
        x[i] /= sum;
    bf16_from_f32(x, y, (size_t)n);
}

/* probs (rows, S) bf16 = softmax of scores (rows, S) over the last axis (scores overwritten). */
static void softmax_bf16(float *scores, uint16_t *probs, int rows, int S)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * (size_t)S >= 65536)
    for (int r = 0; r < rows; r++) {
        float *x = scores + (size_t)r * (size_t)S;
        uint16_t *y = probs + (size_t)r * (size_t)S;
#if defined(__x86_64__) && defined(__GNUC__)
        if (cpu_avx512f()) {
            softmax_row_avx512(x, y, S);
            continue;
        }
#endif
        softmax_row_plain(x, y, S);
    }
}

/* dst (nb, H, S, D) bf16 = the heads of src, a (nb, S, ld) f32 view: head h of token t is
 * src[t * ld + h * D .. + D]. */
static void gather_heads(const float *src, int nb, int H, int S, int D, int ld, uint16_t *dst)
{
    int rows = nb * S;
#pragma omp parallel for schedule(static) if ((size_t)rows * (size_t)(H * D) >= 65536)
    for (int r = 0; r < rows; r++) {
        int b = r / S, t = r % S;
        const float *x = src + (size_t)r * (size_t)ld;
        for (int h = 0; h < H; h++)
            bf16_from_f32(
                x + (size_t)h * (size_t)D,
                dst + (((size_t)b * (size_t)H + (size_t)h) * (size_t)S + (size_t)t) * (size_t)D, D);
    }
}

/* ---- primitives ----------------------------------------------------------------------- */

/* scores (nb, H, S, S) f32 = q kb^T * scale (+ bias (nb, 1, 1, S) when masked). */
static int scores_prim(struct dnn_ctx *ctx, int nb, int H, int S, int D, int masked, float scale,
                       struct dnn_prim **out, struct err *e)
{
    union {
        float f;
        int32_t i;
    } bits = {scale};
    struct dnn_key key = {.kind = DNN_KIND_ATTN_SCORES, .v = {nb, H, S, D, 0, masked, bits.i, 1}};
    *out = dnn_cache_find(ctx, &key);
    if (*out)
        return 0;
    dnnl_memory_desc_t q_md, k_md;
    dnnl_dims_t q_dims = {nb, H, S, D}, k_dims = {nb, H, D, S};
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&q_md, 4, q_dims, dnnl_bf16, dnnl_abcd);
    if (st == dnnl_success) /* K^T over K's (nb, H, S, D) memory */
        st = dnnl_memory_desc_init_by_tag(&k_md, 4, k_dims, dnnl_bf16, dnnl_abdc);
    if (st != dnnl_success)
        return dnn_fail(st, e, "bf16 attention scores views");
    return attn_scores_prim(ctx, &key, &q_md, &k_md, 1, masked, scale, out, e);
}

/* out (nb, S, H, D) f32 in the (nb, S, ld_out) view = probs (nb, H, S, S) vb (nb, H, S, D). */
static int context_prim(struct dnn_ctx *ctx, int nb, int H, int S, int D, int ld_out,
                        struct dnn_prim **out, struct err *e)
{
    struct dnn_key key = {.kind = DNN_KIND_ATTN_CONTEXT, .v = {nb, H, S, D, 0, ld_out, 1}};
    *out = dnn_cache_find(ctx, &key);
    if (*out)
        return 0;
    dnnl_memory_desc_t p_md, v_md, dst_md;
    dnnl_dims_t p_dims = {nb, H, S, S}, v_dims = {nb, H, S, D}, o_dims = {nb, H, S, D};
    dnnl_dims_t o_strides = {(dnnl_dim_t)S * ld_out, D, ld_out, 1};
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&p_md, 4, p_dims, dnnl_bf16, dnnl_abcd);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&v_md, 4, v_dims, dnnl_bf16, dnnl_abcd);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_strides(&dst_md, 4, o_dims, dnnl_f32, o_strides);
    dnnl_matmul_desc_t desc;
    if (st == dnnl_success)
        st = dnnl_matmul_desc_init(&desc, &p_md, &v_md, NULL, &dst_md);
    if (st != dnnl_success)
        return dnn_fail(st, e, "bf16 attention context desc");
    dnnl_primitive_desc_t pd;
    int rc = dnn_pd_plain(ctx, &desc, "bf16 attention context primitive desc", &pd, e);
    if (rc != 0)
        return rc;
    static const int args[] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
    return dnn_cache_add(ctx, &key, pd, args, NULL, 3, out, e);
}

/* ---- the op --------------------------------------------------------------------------- */

/* Scratch of one chunk of nb sequences. */
struct chunk_bufs {
    uint16_t *q, *k, *v; /* (nb, H, S, D) bf16 each */
    float *scores;       /* (nb, H, S, S) */
    uint16_t *probs;     /* (nb, H, S, S) bf16 */
};

/* Sequences b0 .. b0 + nb - 1 with their heads in cb (q, k, v); bias: their (nb, S) mask bias
 * or NULL. */
static int attend_chunk(struct dnn_ctx *ctx, const struct attn_shape *s, int b0, int nb,
                        const float *bias, const struct chunk_bufs *cb, float *out, struct err *e)
{
    int H = s->n_heads, S = s->seq, D = s->head_dim;
    struct dnn_prim *ps, *pc;
    int rc = scores_prim(ctx, nb, H, S, D, bias != NULL, 1.0f / sqrtf((float)D), &ps, e);
    if (rc == 0)
        rc = context_prim(ctx, nb, H, S, D, s->ld_out, &pc, e);
    void *sbufs[] = {cb->q, cb->k, cb->scores, (void *)bias};
    if (rc == 0)
        rc = dnn_exec(ctx, ps, sbufs, e);
    if (rc == 0)
        softmax_bf16(cb->scores, cb->probs, nb * H * S, S);
    void *cbufs[] = {cb->probs, cb->v, out + (size_t)b0 * (size_t)S * (size_t)s->ld_out};
    return rc == 0 ? dnn_exec(ctx, pc, cbufs, e) : rc;
}

int attention_bf16_native(const struct attn_shape *s)
{
    return s->window <= 0 && dnn_dtype_native(DTYPE_COMPUTE_BF16) && s->batch > 0 && s->seq > 0 &&
           s->n_heads > 0 && s->head_dim > 0 && s->ld_qkv >= s->n_heads * s->head_dim &&
           s->ld_out >= s->n_heads * s->head_dim;
}

/* The whole attention: heads (3, B, H, S, D) bf16 when given, else gathered chunk by chunk
 * from the f32 views q, k, v. */
static int attend(struct dnn_ctx *ctx, const struct attn_shape *s, const uint16_t *heads,
                  const float *q, const float *k, const float *v, const int32_t *attention_mask,
                  float *out, struct err *e)
{
    int B = s->batch, S = s->seq, H = s->n_heads, D = s->head_dim;
    size_t per_seq = (size_t)H * (size_t)S * (size_t)S; /* scores of one sequence */
    size_t nb_max = SCORES_BUDGET / (per_seq * sizeof(float));
    int nb = nb_max < 1 ? 1 : nb_max > (size_t)B ? B : (int)nb_max;
    if (attention_mask) { /* a mask of all ones changes nothing: no bias post-op */
        size_t i = 0, n = (size_t)B * (size_t)S;
        while (i < n && attention_mask[i])
            i++;
        if (i == n)
            attention_mask = NULL;
    }
    size_t seq_heads = (size_t)H * (size_t)S * (size_t)D; /* one sequence's heads of Q */
    size_t hd = heads ? 0 : ((size_t)nb * seq_heads + 31) & ~(size_t)31;
    size_t sc = ((size_t)nb * per_seq + 31) & ~(size_t)31;
    size_t bias_n = attention_mask ? ((size_t)B * (size_t)S + 15) & ~(size_t)15 : 0;
    char *buf = dnn_scratch(ctx, 3 * hd * 2 + sc * 4 + sc * 2 + bias_n * 4, e);
    if (!buf)
        return e ? e->kind : ERR_NOMEM;
    struct chunk_bufs cb = {(uint16_t *)buf, (uint16_t *)buf + hd, (uint16_t *)buf + 2 * hd,
                            (float *)(buf + 3 * hd * 2), (uint16_t *)(buf + 3 * hd * 2 + sc * 4)};
    float *bias = attention_mask ? (float *)(buf + 3 * hd * 2 + sc * 6) : NULL;
    for (size_t i = 0; bias && i < (size_t)B * (size_t)S; i++)
        bias[i] = attention_mask[i] ? 0.0f : -FLT_MAX;
    for (int b0 = 0; b0 < B; b0 += nb) {
        int n = B - b0 < nb ? B - b0 : nb;
        if (heads) {
            size_t off = (size_t)b0 * seq_heads, part = (size_t)B * seq_heads;
            cb.q = (uint16_t *)heads + off;
            cb.k = (uint16_t *)heads + part + off;
            cb.v = (uint16_t *)heads + 2 * part + off;
        } else {
            size_t in_off = (size_t)b0 * (size_t)S * (size_t)s->ld_qkv;
            gather_heads(q + in_off, n, H, S, D, s->ld_qkv, cb.q);
            gather_heads(k + in_off, n, H, S, D, s->ld_qkv, cb.k);
            gather_heads(v + in_off, n, H, S, D, s->ld_qkv, cb.v);
        }
        int rc =
            attend_chunk(ctx, s, b0, n, bias ? bias + (size_t)b0 * (size_t)S : NULL, &cb, out, e);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int attention_forward_bf16(struct dnn_ctx *ctx, const struct attn_shape *s, const float *q,
                           const float *k, const float *v, const int32_t *attention_mask,
                           float *out, struct err *e)
{
    if (!attention_bf16_native(s)) /* attention_forward's answer or its error */
        return attention_forward(ctx, s, q, k, v, attention_mask, out, e);
    return attend(ctx, s, NULL, q, k, v, attention_mask, out, e);
}

int attention_forward_heads(struct dnn_ctx *ctx, const struct attn_shape *s, const uint16_t *heads,
                            const int32_t *attention_mask, float *out, struct err *e)
{
    if (!attention_bf16_native(s) || !heads)
        return err_set(e, ERR_INVALID,
                       "attention_forward_heads: no bf16 attention for this "
                       "shape here (attention_bf16_native)");
    return attend(ctx, s, heads, NULL, NULL, NULL, attention_mask, out, e);
}
