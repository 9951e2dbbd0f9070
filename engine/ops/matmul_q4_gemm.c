/* matmul_q4_gemm: the many-token path of the INT4 weight kind (matmul_q4.c), for prefill: the
 * 4-bit weights are widened into an s8 copy in the context's scratch (N * K bytes, reused by
 * every call) and oneDNN's int8 matmul (AMX or VNNI brgemm) multiplies it with the activations
 * quantized to s8 per token. Widening writes N * K bytes per call, paid once for all M tokens,
 * where the f32 kernel of matmul_q4.c re-reads every group for each pair of tokens. Widening a
 * cache-sized tile of rows at a time and multiplying it at once would read less memory, but
 * oneDNN 2.6 leaves its brgemm kernels for a column slice of the output (ld > the tile's
 * width: gemm:jit or its reference kernel, measured), and a tile's own output buffer would
 * cost a copy and the fused residual sum.
 *
 * Arithmetic: row n's codes become s8 on one scale for the row, s_n = max over its groups of
 * |scale| * max(z, 15 - z) / 127, through a 16-entry table per group: t[q] = round((q - z) *
 * scale / s_n), so each weight moves by at most s_n / 2 (the 4-bit rounding it already has is
 * up to scale / 2). Token m is quantized to s8 on sx_m = max |x_m| / 127. The s32 sums are
 * scaled by sx_m * s_n in the matmul's post-ops (binary multiplies by (M, 1) and (1, N)), then
 * bias, activation and the residual sum, as matmul.c does for INT8. oneDNN 2.6 has no 4-bit
 * weights of its own (docs/DECISIONS.md). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/cpu.h"
#include "ops/linear_kind.h"
#include "ops/ops.h"

#define Q4_BLOCK 32
#define PAR_MIN_ELEMS 16384 /* element counts below this run on the calling thread alone */

/* ---- widening 4-bit rows to s8 ---- */

/* s_n of every row (see the top): (N) floats. */
static void row_scales(const struct linear *l, float *sn)
{
    int ng = l->in_features / l->group;
    for (int n = 0; n < l->out_features; n++) {
        const float *sc = l->w_scales + (size_t)n * (size_t)ng;
        const uint8_t *zr = l->w_zeros + (size_t)n * (size_t)ng;
        float m = 0.0f;
        for (int g = 0; g < ng; g++) {
            float span = (float)(zr[g] > 15 - zr[g] ? zr[g] : 15 - zr[g]);
            m = fmaxf(m, fabsf(sc[g]) * span);
        }
        sn[n] = m > 0.0f ? m / 127.0f : 1.0f;
    }
}

/* The group's table t[q] = round((q - z) r), q = 0..15 (|t| <= 127 by s_n's choice). */
static void lut_plain(float z, float r, int8_t *t)
{
    for (int q = 0; q < 16; q++)
        t[q] = (int8_t)lrintf(fminf(fmaxf(((float)q - z) * r, -127.0f), 127.0f));
}

/* Row n's K codes to s8 at w8 (K bytes), plain loop. */
static void widen_row_plain(const struct linear *l, int n, float sn, int8_t *w8)
{
    int K = l->in_features, G = l->group, ng = K / G;
    const uint8_t *p = (const uint8_t *)l->w_packed + (size_t)n * (size_t)(K / 2);
    for (int g = 0; g < ng; g++) {
        int8_t t[16];
        size_t sg = (size_t)n * (size_t)ng + (size_t)g;
        lut_plain((float)l->w_zeros[sg], l->w_scales[sg] / sn, t);
        for (int b = g * G; b < (g + 1) * G; b += Q4_BLOCK)
            for (int j = 0; j < Q4_BLOCK / 2; j++) {
                uint8_t c = p[b / 2 + j];
                w8[b + j] = t[c & 15];
                w8[b + Q4_BLOCK / 2 + j] = t[c >> 4];
            }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512bw")))

/* widen_row_plain with AVX-512: the table from one vector, then per block of 32 weights one
 * byte shuffle of the low nibbles and one of the high ones. */
AVX512 static void widen_row_avx512(const struct linear *l, int n, float sn, int8_t *w8)
{
    int K = l->in_features, G = l->group, ng = K / G;
    const uint8_t *p = (const uint8_t *)l->w_packed + (size_t)n * (size_t)(K / 2);
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m128i mask = _mm_set1_epi8(15);
    for (int g = 0; g < ng; g++) {
        size_t sg = (size_t)n * (size_t)ng + (size_t)g;
        __m512 v = _mm512_mul_ps(_mm512_sub_ps(iota, _mm512_set1_ps((float)l->w_zeros[sg])),
                                 _mm512_set1_ps(l->w_scales[sg] / sn));
        __m128i t = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(v)); /* round to nearest even */
        for (int b = g * G; b < (g + 1) * G; b += Q4_BLOCK) {
            __m128i raw = _mm_loadu_si128((const __m128i *)(p + b / 2));
            __m128i lo = _mm_and_si128(raw, mask), hi = _mm_and_si128(_mm_srli_epi16(raw, 4), mask);
            _mm_storeu_si128((__m128i *)(w8 + b), _mm_shuffle_epi8(t, lo));
            _mm_storeu_si128((__m128i *)(w8 + b + Q4_BLOCK / 2), _mm_shuffle_epi8(t, hi));
        }
    }
}

#endif

/* ---- the matmul ---- */

/* Post-op order (and their argument slots): x row scales (M, 1), weight row scales (1, t),
 * bias (1, t) when present, the activation, the residual sum when add. */
static int gemm_attr(const struct linear *l, int M, int add, dnnl_primitive_attr_t *attr,
                     struct err *e)
{
    dnnl_post_ops_t po = NULL;
    int rc = dnn_attr_new(attr, e);
    if (rc != 0)
        return rc;
    dnnl_memory_desc_t col_md, row_md;
    dnnl_dims_t col = {1, M, 1}, row = {1, 1, l->out_features};
    dnnl_status_t s = dnnl_post_ops_create(&po);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&col_md, 3, col, dnnl_f32, dnnl_abc);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&row_md, 3, row, dnnl_f32, dnnl_abc);
    if (s == dnnl_success)
        s = dnnl_post_ops_append_binary(po, dnnl_binary_mul, &col_md);
    if (s == dnnl_success)
        s = dnnl_post_ops_append_binary(po, dnnl_binary_mul, &row_md);
    if (s == dnnl_success && l->bias)
        s = dnnl_post_ops_append_binary(po, dnnl_binary_add, &row_md);
    return linear_finish_attr(l, add, po, s, attr, "int4 matmul attributes", e);
}

/* The cached s8 matmul (M, K) x (K, N) -> (M, N) f32, weights plain: W^T columns contiguous,
 * K bytes each (the widened rows). The
 * shapes carry a leading batch of 1: oneDNN 2.6 falls back to its reference kernel for a 2-D
 * (M, 1) binary post-op, but runs a 3-D (1, M, 1) one in its brgemm kernels. */
static int gemm_prim(const struct linear *l, struct dnn_ctx *ctx, int M, int add,
                     struct dnn_prim **out, struct err *e)
{
    int K = l->in_features, N = l->out_features;
    struct dnn_key key = {.kind = DNN_KIND_MATMUL,
                          .v = {M, K, N, DTYPE_COMPUTE_INT4, l->act, l->bias != NULL, add}};
    if ((*out = dnn_cache_find(ctx, &key)))
        return 0;
    dnnl_memory_desc_t src_md, w_md, dst_md;
    dnnl_dims_t src_dims = {1, M, K}, w_dims = {1, K, N}, dst_dims = {1, M, N};
    dnnl_status_t s = dnnl_memory_desc_init_by_tag(&src_md, 3, src_dims, dnnl_s8, dnnl_abc);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&w_md, 3, w_dims, dnnl_s8, dnnl_acb);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&dst_md, 3, dst_dims, dnnl_f32, dnnl_abc);
    dnnl_matmul_desc_t desc;
    if (s == dnnl_success)
        s = dnnl_matmul_desc_init(&desc, &src_md, &w_md, NULL, &dst_md);
    if (s != dnnl_success)
        return dnn_fail(s, e, "int4 matmul desc");
    dnnl_primitive_attr_t attr;
    int rc = gemm_attr(l, M, add, &attr, e);
    if (rc != 0)
        return rc;
    dnnl_primitive_desc_t pd;
    s = dnnl_primitive_desc_create(&pd, &desc, attr, dnn_engine(ctx), NULL);
    dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success)
        return err_set(e, s == dnnl_unimplemented ? ERR_INVALID : ERR_INTERNAL,
                       "oneDNN has no s8 matmul for int4 (%d, %d) x (%d, %d) (status %d)", M, K, K,
                       N, (int)s);
    int args[DNN_MAX_ARGS] = {DNNL_ARG_SRC,
                              DNNL_ARG_WEIGHTS,
                              DNNL_ARG_DST,
                              DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1,
                              DNNL_ARG_ATTR_MULTIPLE_POST_OP(1) | DNNL_ARG_SRC_1,
                              DNNL_ARG_ATTR_MULTIPLE_POST_OP(2) | DNNL_ARG_SRC_1};
    return dnn_cache_add(ctx, &key, pd, args, NULL, l->bias ? 6 : 5, out, e);
}

/* Every row widened into w8 (N, K), over the context's OpenMP threads. */
static void widen(const struct linear *l, const float *sn, int8_t *w8)
{
    size_t K = (size_t)l->in_features;
    int N = l->out_features;
#if defined(__x86_64__) && defined(__GNUC__)
    int simd = cpu_avx512bw();
#endif
#pragma omp parallel for schedule(static) if ((size_t)N * K >= PAR_MIN_ELEMS)
    for (int n = 0; n < N; n++) {
#if defined(__x86_64__) && defined(__GNUC__)
        if (simd)
            widen_row_avx512(l, n, sn[n], w8 + (size_t)n * K);
        else
#endif
            widen_row_plain(l, n, sn[n], w8 + (size_t)n * K);
    }
}

/* x (M, K) to s8 rows xq with their scales sx (M): INT8's row quantizer, per token. */
static void quantize_rows(const float *x, int8_t *xq, float *sx, int M, int K)
{
#pragma omp parallel for schedule(static) if ((size_t)M * (size_t)K >= PAR_MIN_ELEMS)
    for (int m = 0; m < M; m++)
        sx[m] = int8_quantize_row(x + (size_t)m * (size_t)K, xq + (size_t)m * (size_t)K, K);
}

#define ALIGN64(n) (((n) + 63) & ~(size_t)63)

int q4_gemm_forward(const struct linear *l, struct dnn_ctx *ctx, const float *x, float *y, int M,
                    int add, struct err *e)
{
    int K = l->in_features, N = l->out_features;
    struct dnn_prim *p;
    int rc = gemm_prim(l, ctx, M, add, &p, e);
    if (rc != 0)
        return rc;
    size_t xq_bytes = ALIGN64((size_t)M * (size_t)K), sx_bytes = ALIGN64((size_t)M * sizeof(float));
    size_t sn_bytes = ALIGN64((size_t)N * sizeof(float)), w8_bytes = (size_t)N * (size_t)K;
    char *buf = dnn_scratch(ctx, xq_bytes + sx_bytes + sn_bytes + w8_bytes, e);
    if (!buf)
        return e ? e->kind : ERR_NOMEM;
    int8_t *xq = (int8_t *)buf;                                    /* (M, K) */
    float *sx = (float *)(buf + xq_bytes);                         /* (M) */
    float *sn = (float *)(buf + xq_bytes + sx_bytes);              /* (N) */
    int8_t *w8 = (int8_t *)(buf + xq_bytes + sx_bytes + sn_bytes); /* (N, K) */
    quantize_rows(x, xq, sx, M, K);
    row_scales(l, sn);
    widen(l, sn, w8);
    void *bufs[DNN_MAX_ARGS] = {xq, w8, y, sx, sn, l->bias};
    return dnn_exec(ctx, p, bufs, e);
}
