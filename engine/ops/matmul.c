/* matmul: struct linear, an HF nn.Linear y = act(x W^T + b): the table of weight kinds per
 * compute type (ops/linear_kind.h) and its first kind, weights prepacked once into the layout
 * oneDNN's matmul prefers (f32, bf16 or int8), with bias, activation and an optional residual
 * add fused into the primitive as post-ops. One primitive per (M, shape, flags) is created on
 * first use and cached in the caller's struct dnn_ctx. INT4 is matmul_q4.c's. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/bf16.h"
#include "ops/linear_kind.h"
#include "ops/ops.h"

/* The token count the packed layout is chosen at. oneDNN 2.6 picks the same blocked layout
 * (16a64b for f32, 16a64b2a for bf16) at every M, and each per-M primitive is created with
 * exactly this layout, so the packed buffer serves every M. */
#define PACK_M 128

static dnnl_data_type_t src_type(enum dtype_compute dt)
{
    return dt == DTYPE_COMPUTE_BF16 ? dnnl_bf16 : dt == DTYPE_COMPUTE_INT8 ? dnnl_s8 : dnnl_f32;
}

/* Post-ops in application order. INT8 first rescales the s32 accumulator per output channel
 * by a binary multiply with a runtime (1, N) tensor (x scale * weight scale: runtime output
 * scales would push oneDNN 2.6 off its brgemm kernels onto gemm:jit), then adds the bias
 * (1, N) the same way. Then the activation, then the residual sum. */
static int build_attr(const struct linear *l, int add, dnnl_primitive_attr_t *attr, int *scales_po,
                      int *bias_po, struct err *e)
{
    dnnl_post_ops_t po = NULL;
    int rc = dnn_attr_new(attr, e);
    if (rc != 0)
        return rc;
    dnnl_status_t s = dnnl_post_ops_create(&po);
    int n_po = 0;
    *scales_po = -1;
    *bias_po = -1;
    if (s == dnnl_success && l->dt == DTYPE_COMPUTE_INT8) {
        dnnl_memory_desc_t row_md; /* (1, N) */
        dnnl_dims_t dims = {1, l->out_features};
        s = dnnl_memory_desc_init_by_tag(&row_md, 2, dims, dnnl_f32, dnnl_ab);
        if (s == dnnl_success)
            s = dnnl_post_ops_append_binary(po, dnnl_binary_mul, &row_md);
        *scales_po = n_po++;
        if (s == dnnl_success && l->bias) {
            s = dnnl_post_ops_append_binary(po, dnnl_binary_add, &row_md);
            *bias_po = n_po++;
        }
    }
    if (s == dnnl_success && l->act != ACT_NONE) {
        dnnl_alg_kind_t alg = dnnl_alg_kind_undef;
        float alpha;
        rc = act_dnnl_alg(l->act, &alg, &alpha, e);
        if (rc != 0)
            goto fail;
        s = dnnl_post_ops_append_eltwise(po, 1.0f, alg, alpha, 0.0f);
    }
    if (s == dnnl_success && add)
        s = dnnl_post_ops_append_sum(po, 1.0f);
    if (s == dnnl_success)
        s = dnnl_primitive_attr_set_post_ops(*attr, po);
    if (s != dnnl_success)
        rc = dnn_fail(s, e, "matmul attributes");
fail:
    dnnl_post_ops_destroy(po);
    if (rc != 0) {
        dnnl_primitive_attr_destroy(*attr);
        *attr = NULL;
    }
    return rc;
}

/* The matmul primitive descriptor for M tokens; weights in w_md (format any when NULL). */
static int matmul_pd(const struct linear *l, struct dnn_ctx *ctx, int M,
                     const dnnl_memory_desc_t *w_md, int add, dnnl_primitive_desc_t *pd,
                     int *scales_po, int *bias_po, struct err *e)
{
    dnnl_memory_desc_t src_md, wany_md, bias_md, dst_md;
    dnnl_dims_t src_dims = {M, l->in_features}, w_dims = {l->in_features, l->out_features};
    dnnl_dims_t bias_dims = {1, l->out_features}, dst_dims = {M, l->out_features};
    int has_bias = l->bias && l->dt != DTYPE_COMPUTE_INT8;
    dnnl_status_t s = dnnl_memory_desc_init_by_tag(&src_md, 2, src_dims, src_type(l->dt), dnnl_ab);
    if (s == dnnl_success && !w_md) {
        s = dnnl_memory_desc_init_by_tag(&wany_md, 2, w_dims,
                                         l->dt == DTYPE_COMPUTE_F32 ? dnnl_f32 : src_type(l->dt),
                                         dnnl_format_tag_any);
        w_md = &wany_md;
    }
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&bias_md, 2, bias_dims, dnnl_f32, dnnl_ab);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&dst_md, 2, dst_dims, dnnl_f32, dnnl_ab);
    dnnl_matmul_desc_t desc;
    if (s == dnnl_success)
        s = dnnl_matmul_desc_init(&desc, &src_md, w_md, has_bias ? &bias_md : NULL, &dst_md);
    if (s != dnnl_success)
        return dnn_fail(s, e, "matmul desc");
    dnnl_primitive_attr_t attr;
    int rc = build_attr(l, add, &attr, scales_po, bias_po, e);
    if (rc != 0)
        return rc;
    s = dnnl_primitive_desc_create(pd, &desc, attr, dnn_engine(ctx), NULL);
    dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success)
        return err_set(e, s == dnnl_unimplemented ? ERR_INVALID : ERR_INTERNAL,
                       "oneDNN has no matmul for (%d, %d) x (%d, %d) %s with the packed layout "
                       "(status %d)",
                       M, l->in_features, l->in_features, l->out_features,
                       l->dt == DTYPE_COMPUTE_F32    ? "f32"
                       : l->dt == DTYPE_COMPUTE_BF16 ? "bf16"
                                                     : "int8",
                       (int)s);
    return 0;
}

/* Reorders W^T (in, out), given as data of type dt in layout tag, into l->w_md. HF's f32
 * (out, in) row-major weight is W^T in column-major ("ba"). For s8 targets the reorder also
 * fills the compensation oneDNN keeps after the packed weights. */
static int pack_weights(struct linear *l, struct dnn_ctx *ctx, const void *w, dnnl_data_type_t dt,
                        dnnl_format_tag_t tag, struct err *e)
{
    dnnl_memory_desc_t user_md;
    dnnl_dims_t dims = {l->in_features, l->out_features};
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_t src = NULL, dst = NULL;
    int rc = 0;
    dnnl_status_t s = dnnl_memory_desc_init_by_tag(&user_md, 2, dims, dt, tag);
    if (s == dnnl_success)
        s = dnnl_primitive_attr_create(&attr);
    if (s == dnnl_success)
        s = dnnl_reorder_primitive_desc_create(&pd, &user_md, dnn_engine(ctx), &l->w_md,
                                               dnn_engine(ctx), attr);
    if (s == dnnl_success)
        s = dnnl_primitive_create(&prim, pd);
    if (s == dnnl_success)
        s = dnnl_memory_create(&src, &user_md, dnn_engine(ctx), (void *)w);
    if (s == dnnl_success)
        s = dnnl_memory_create(&dst, &l->w_md, dnn_engine(ctx), l->w_packed);
    if (s == dnnl_success) {
        dnnl_stream_t stream;
        s = dnnl_stream_create(&stream, dnn_engine(ctx), dnnl_stream_default_flags);
        dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
        if (s == dnnl_success) {
            s = dnnl_primitive_execute(prim, stream, 2, args);
            if (s == dnnl_success)
                s = dnnl_stream_wait(stream);
            dnnl_stream_destroy(stream);
        }
    }
    if (s != dnnl_success)
        rc = dnn_fail(s, e, "weight reorder");
    dnnl_memory_destroy(dst);
    dnnl_memory_destroy(src);
    dnnl_primitive_destroy(prim);
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    return rc;
}

/* INT8: per output channel n, w_scales[n] = max_k |w[n, k]| / 127 (1 for an all-zero row) and
 * q (in, out) row-major = round(w[n, k] / w_scales[n]), i.e. W^T quantized. */
static void quantize_weights(const float *w, int in, int out, float *w_scales, int8_t *q)
{
    for (int n = 0; n < out; n++) {
        const float *row = w + (size_t)n * (size_t)in; /* (in) */
        float m = 0.0f;
        for (int k = 0; k < in; k++)
            m = fmaxf(m, fabsf(row[k]));
        w_scales[n] = m > 0.0f ? m / 127.0f : 1.0f;
        float inv = 1.0f / w_scales[n];
        for (int k = 0; k < in; k++)
            q[(size_t)k * (size_t)out + (size_t)n] = (int8_t)lrintf(row[k] * inv);
    }
}

static const struct linear_kind *const kinds[DTYPE_COMPUTE_COUNT] = {
    [DTYPE_COMPUTE_F32] = &linear_kind_dnnl,
    [DTYPE_COMPUTE_BF16] = &linear_kind_dnnl,
    [DTYPE_COMPUTE_INT8] = &linear_kind_dnnl,
    [DTYPE_COMPUTE_INT4] = &linear_kind_q4,
};

int linear_begin(struct linear *l, const float *b, int in, int out, enum dtype_compute dt,
                 enum act act, struct err *e)
{
    memset(l, 0, sizeof *l);
    if (in <= 0 || out <= 0)
        return err_set(e, ERR_INVALID, "linear_init: shape (%d, %d)", out, in);
    if (dt < 0 || dt >= DTYPE_COMPUTE_COUNT || act < 0 || act >= ACT_COUNT)
        return err_set(e, ERR_INVALID, "linear_init: dtype %d or activation %d", (int)dt, (int)act);
    l->in_features = in;
    l->out_features = out;
    l->dt = dt;
    l->act = act;
    if (b) {
        l->bias = malloc((size_t)out * sizeof *l->bias);
        if (!l->bias)
            return err_set(e, ERR_NOMEM, "linear_init: out of memory for (%d, %d) weights", out,
                           in);
        memcpy(l->bias, b, (size_t)out * sizeof *l->bias);
    }
    return 0;
}

int linear_init(struct linear *l, struct dnn_ctx *ctx, const float *w, const float *b, int in,
                int out, enum dtype_compute dt, enum act act, struct err *e)
{
    int rc = linear_begin(l, b, in, out, dt, act, e);
    if (rc == 0)
        rc = kinds[dt]->init(l, ctx, w, e);
    if (rc != 0)
        linear_fini(l);
    return rc;
}

static int matmul_init(struct linear *l, struct dnn_ctx *ctx, const float *w, struct err *e)
{
    int in = l->in_features, out = l->out_features;
    enum dtype_compute dt = l->dt;
    int8_t *q = NULL; /* INT8: (in, out) quantized W^T */
    dnnl_primitive_desc_t pd = NULL;
    int scales_po, bias_po;
    int rc = matmul_pd(l, ctx, PACK_M, NULL, 0, &pd, &scales_po, &bias_po, e);
    if (rc != 0)
        goto fail;
    l->w_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_primitive_desc_destroy(pd);
    size_t w_bytes = (dnnl_memory_desc_get_size(&l->w_md) + 63) & ~(size_t)63;
    l->w_packed = dnn_weights_alloc(w_bytes); /* 2 MiB pages when large */
    if (dt == DTYPE_COMPUTE_INT8) {
        l->w_scales = malloc((size_t)out * sizeof *l->w_scales);
        q = malloc((size_t)out * (size_t)in);
    }
    if (!l->w_packed || (dt == DTYPE_COMPUTE_INT8 && (!l->w_scales || !q))) {
        rc = err_set(e, ERR_NOMEM, "linear_init: out of memory for (%d, %d) weights", out, in);
        goto fail;
    }
    memset(l->w_packed, 0, w_bytes); /* padding of blocked layouts must be zero */
    if (q) {
        quantize_weights(w, in, out, l->w_scales, q);
        rc = pack_weights(l, ctx, q, dnnl_s8, dnnl_ab, e);
    } else {
        rc = pack_weights(l, ctx, w, dnnl_f32, dnnl_ba, e);
    }
fail:
    free(q);
    return rc;
}

void linear_fini(struct linear *l)
{
    if (!l)
        return;
    free(l->w_packed);
    free(l->bias);
    free(l->w_scales);
    free(l->w_zeros);
    memset(l, 0, sizeof *l);
}

/* Element counts below this run on the calling thread alone (an OpenMP fork costs more). */
#define PAR_MIN_ELEMS 16384
#define QUANT_BLOCK 4096

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* max |x| over (n), AVX-512. */
__attribute__((target("avx512f"))) static float absmax_avx512(const float *x, size_t n)
{
    __m512 m = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_maskz_loadu_ps(k, x + i)));
    }
    return _mm512_reduce_max_ps(m);
}

/* q = clamp(round_half_away(x * inv), -127, 127) over (n), AVX-512. */
__attribute__((target("avx512f"))) static void quant_avx512(const float *x, int8_t *q, size_t n,
                                                            float inv)
{
    const __m512 vinv = _mm512_set1_ps(inv), hi = _mm512_set1_ps(127.0f),
                 lo = _mm512_set1_ps(-127.0f);
    const __m512i half = _mm512_castps_si512(_mm512_set1_ps(0.5f)),
                  sign = _mm512_set1_epi32((int)0x80000000u);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), vinv);
        v = _mm512_max_ps(_mm512_min_ps(v, hi), lo);
        __m512i h = _mm512_or_si512(half, _mm512_and_si512(_mm512_castps_si512(v), sign));
        v = _mm512_add_ps(v, _mm512_castsi512_ps(h));
        _mm512_mask_cvtsepi32_storeu_epi8(q + i, k, _mm512_cvttps_epi32(v));
    }
}

static int have_avx512(void)
{
    static int have = -1;
    if (have < 0)
        have = __builtin_cpu_supports("avx512f") ? 1 : 0;
    return have;
}
#else
static int have_avx512(void)
{
    return 0;
}
#endif

static float absmax_plain(const float *x, size_t n)
{
    float m = 0.0f;
    for (size_t i = 0; i < n; i++)
        m = fmaxf(m, fabsf(x[i]));
    return m;
}

static void quant_plain(const float *x, int8_t *q, size_t n, float inv)
{
    for (size_t i = 0; i < n; i++) {
        float v = fminf(fmaxf(x[i] * inv, -127.0f), 127.0f);
        q[i] = (int8_t)(v + (v >= 0.0f ? 0.5f : -0.5f));
    }
}

/* INT8: x (M, K) -> q = round(x / sx) in [-127, 127] with sx = max |x| / 127; returns sx.
 * Rounding is half away from zero. AVX-512 where the CPU has it; blocks of QUANT_BLOCK
 * elements spread over the context's OpenMP threads. */
static float quantize_s8(const float *x, int8_t *q, size_t n)
{
    size_t n_blocks = (n + QUANT_BLOCK - 1) / QUANT_BLOCK;
    int simd = have_avx512();
    float m = 0.0f;
#pragma omp parallel for reduction(max : m) schedule(static) if (n >= PAR_MIN_ELEMS)
    for (size_t b = 0; b < n_blocks; b++) {
        size_t off = b * QUANT_BLOCK, len = n - off < QUANT_BLOCK ? n - off : QUANT_BLOCK;
#if defined(__x86_64__) && defined(__GNUC__)
        float bm = simd ? absmax_avx512(x + off, len) : absmax_plain(x + off, len);
#else
        float bm = absmax_plain(x + off, len);
#endif
        m = bm > m ? bm : m;
    }
    float sx = m > 0.0f ? m / 127.0f : 1.0f;
    float inv = 1.0f / sx;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN_ELEMS)
    for (size_t b = 0; b < n_blocks; b++) {
        size_t off = b * QUANT_BLOCK, len = n - off < QUANT_BLOCK ? n - off : QUANT_BLOCK;
#if defined(__x86_64__) && defined(__GNUC__)
        if (simd)
            quant_avx512(x + off, q + off, len, inv);
        else
#endif
            quant_plain(x + off, q + off, len, inv);
    }
    return sx;
}

static int matmul_forward(const struct linear *l, struct dnn_ctx *ctx, const float *x, float *y,
                        int M, int add, struct err *e)
{
    int K = l->in_features, N = l->out_features;
    struct dnn_key key = {.kind = DNN_KIND_MATMUL,
                          .v = {M, K, N, l->dt, l->act, l->bias != NULL, add}};
    struct dnn_prim *p = dnn_cache_find(ctx, &key);
    int rc;
    if (!p) {
        dnnl_primitive_desc_t pd;
        int scales_po, bias_po;
        rc = matmul_pd(l, ctx, M, &l->w_md, add, &pd, &scales_po, &bias_po, e);
        if (rc != 0)
            return rc;
        int args[DNN_MAX_ARGS] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
        int n = 3;
        if (l->dt == DTYPE_COMPUTE_INT8) {
            args[n++] = DNNL_ARG_ATTR_MULTIPLE_POST_OP(scales_po) | DNNL_ARG_SRC_1;
            if (bias_po >= 0)
                args[n++] = DNNL_ARG_ATTR_MULTIPLE_POST_OP(bias_po) | DNNL_ARG_SRC_1;
        } else if (l->bias) {
            args[n++] = DNNL_ARG_BIAS;
        }
        rc = dnn_cache_add(ctx, &key, pd, args, NULL, n, &p, e);
        if (rc != 0)
            return rc;
    }
    void *bufs[DNN_MAX_ARGS] = {(void *)x, l->w_packed, y, l->bias};
    size_t n_x = (size_t)M * (size_t)K;
    if (l->dt == DTYPE_COMPUTE_BF16) {
        uint16_t *xb = dnn_scratch(ctx, n_x * 2, e); /* (M, K) bf16 */
        if (!xb)
            return e ? e->kind : ERR_NOMEM;
        bf16_from_f32(x, xb, n_x); /* no reorder primitive: no execution, no fork when small */
        bufs[0] = xb;
    } else if (l->dt == DTYPE_COMPUTE_INT8) {
        size_t q_bytes = (n_x + 63) & ~(size_t)63;
        char *buf = dnn_scratch(ctx, q_bytes + (size_t)N * sizeof(float), e);
        if (!buf)
            return e ? e->kind : ERR_NOMEM;
        int8_t *xq = (int8_t *)buf;               /* (M, K) s8 */
        float *scales = (float *)(buf + q_bytes); /* (N) sx * w_scales[n] */
        float sx = quantize_s8(x, xq, n_x);
        for (int j = 0; j < N; j++)
            scales[j] = sx * l->w_scales[j];
        bufs[0] = xq;
        bufs[3] = scales;
        bufs[4] = l->bias;
    }
    return dnn_exec(ctx, p, bufs, e);
}

const struct linear_kind linear_kind_dnnl = {matmul_init, matmul_forward};

static int forward(const struct linear *l, struct dnn_ctx *ctx, const float *x, float *y, int M,
                   int add, struct err *e)
{
    if (M <= 0)
        return err_set(e, ERR_INVALID, "linear_forward: M = %d tokens", M);
    if (!l->w_packed || l->dt < 0 || l->dt >= DTYPE_COMPUTE_COUNT)
        return err_set(e, ERR_INVALID, "linear_forward: linear not initialized");
    return kinds[l->dt]->forward(l, ctx, x, y, M, add, e);
}

int linear_forward(const struct linear *l, struct dnn_ctx *ctx, const float *x, float *y, int M,
                   struct err *e)
{
    return forward(l, ctx, x, y, M, 0, e);
}

int linear_forward_add(const struct linear *l, struct dnn_ctx *ctx, const float *x, float *y, int M,
                       struct err *e)
{
    return forward(l, ctx, x, y, M, 1, e);
}
