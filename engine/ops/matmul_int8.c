/* matmul_int8: the INT8 kind of struct linear (ops/linear_kind.h). Weights are s8, symmetric,
 * a scale per output channel, packed by matmul.c; activations are quantized per call, symmetric
 * s8 per tensor: q = round(x / sx) with sx = max |x| / 127. oneDNN runs the plain
 * s8 x s8 -> s32 matmul (no post-ops) and inferd's own epilogue finishes each row in one pass:
 *   y[m, n] = act(acc[m, n] * sx * sw[n] + b[n])  (+ y[m, n] for the fused residual)
 * and notes max |y| on the way. oneDNN 2.6's brgemm runs the per-channel binary post-ops this
 * used to need (runtime output scales push it off brgemm) and GELU at 0.5-1x the matmul's own
 * time (docs/DECISIONS.md). linear_ffn_forward chains two INT8 linears: the first one's
 * epilogue hands its max to the second, which skips a pass over the (M, I) activation;
 * linear_forward_heads writes an encoder's QKV projection as the bf16 heads attention_bf16.c
 * reads, never as f32 rows.
 * AVX-512 where the CPU has it (every activation), a plain loop elsewhere. On CPUs with AMX,
 * from INT8_AMX_MIN_M rows, matmul_int8_amx.c's kernel replaces the matmul and runs the same
 * epilogue per 32 x 32 block of accumulators (int8_block_out) instead of a pass over (M, N). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/bf16.h"
#include "ops/cpu.h"
#include "ops/linear_kind.h"
#include "ops/ops.h"

/* Element counts up to this run on the calling thread alone: an OpenMP fork and join costs
 * more, and a decode step of 16 streams (M = 16) would pay one per quantize and epilogue on
 * top of the matmuls' own (fp32 and bf16 have none), each a wait on the other thread. */
#define PAR_MIN_ELEMS 65537
#define QUANT_BLOCK 4096

/* The AMX kernel (matmul_int8_amx.c): on unless INFERD_INT8_AMX=0, from this many rows. */
#ifndef INT8_AMX_DEFAULT
#define INT8_AMX_DEFAULT 1
#endif
#define INT8_AMX_MIN_M 32

/* Bytes of n elements of size sz, rounded up to a cache line (scratch carving). */
static size_t lines(size_t n, size_t sz)
{
    return (n * sz + 63) & ~(size_t)63;
}

/* ---- scalar rows (any CPU) ------------------------------------------------------------ */

static float act_scalar(enum act a, float v)
{
    switch (a) {
    case ACT_GELU_ERF: return 0.5f * v * (1.0f + erff(v * 0.707106781f));
    case ACT_GELU_TANH:
        return 0.5f * v * (1.0f + tanhf(0.7978845608f * (v + 0.044715f * v * v * v)));
    case ACT_RELU: return v > 0.0f ? v : 0.0f;
    case ACT_SILU: return v / (1.0f + expf(-v));
    default: return v;
    }
}

static float absmax_plain(const float *x, int n)
{
    float m = 0.0f;
    for (int i = 0; i < n; i++)
        m = fmaxf(m, fabsf(x[i]));
    return m;
}

/* q = clamp(round_half_away(x * inv), -127, 127) over (n). */
static void quant_plain(const float *x, int8_t *q, int n, float inv)
{
    for (int i = 0; i < n; i++) {
        float v = fminf(fmaxf(x[i] * inv, -127.0f), 127.0f);
        q[i] = (int8_t)(v + (v >= 0.0f ? 0.5f : -0.5f));
    }
}

/* out (n) = act(acc * s * sw + b) (+ res); returns max |out|. */
static float row_out_plain(const int32_t *acc, const float *sw, const float *b, float s, int n,
                           enum act a, const float *res, float *out)
{
    float m = 0.0f;
    for (int i = 0; i < n; i++) {
        float v = act_scalar(a, (float)acc[i] * (s * sw[i]) + (b ? b[i] : 0.0f));
        if (res)
            v += res[i];
        out[i] = v;
        m = fmaxf(m, fabsf(v));
    }
    return m;
}

/* ---- AVX-512 rows ----------------------------------------------------------------------- */

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86 1

#define AVX512 __attribute__((target("avx512f")))

#include "ops/simd.h"

static inline AVX512 __mmask16 tail_mask(int left)
{
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

/* max |x| over (n). */
AVX512 static float absmax_avx512(const float *x, int n)
{
    __m512 m = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16)
        m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_maskz_loadu_ps(tail_mask(n - i), x + i)));
    return _mm512_reduce_max_ps(m);
}

/* quant_plain, 16 at a time. */
AVX512 static void quant_avx512(const float *x, int8_t *q, int n, float inv)
{
    const __m512 vinv = _mm512_set1_ps(inv), hi = _mm512_set1_ps(127.0f),
                 lo = _mm512_set1_ps(-127.0f);
    const __m512i half = _mm512_castps_si512(_mm512_set1_ps(0.5f)),
                  sign = _mm512_set1_epi32((int)0x80000000u);
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask(n - i);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), vinv);
        v = _mm512_max_ps(_mm512_min_ps(v, hi), lo);
        __m512i h = _mm512_or_si512(half, _mm512_and_si512(_mm512_castps_si512(v), sign));
        v = _mm512_add_ps(v, _mm512_castsi512_ps(h));
        _mm512_mask_cvtsepi32_storeu_epi8(q + i, k, _mm512_cvttps_epi32(v));
    }
}

/* GELU (erf): with e = x/2 erfc(|x|/sqrt 2), gelu(x) = e for x < 0 and x - e for x >= 0;
 * erfc(z) = t P(t) exp(-z^2), t = 1 / (1 + p z) (Abramowitz-Stegun 7.1.26, |error| <= 1.5e-7,
 * so |gelu error| <= 1e-7 |x|). z is capped at 8.9 (z^2 = 80), where erfc is below 1e-35
 * already: e stays a normal float (no denormal assists) and is off by less than 1e-34 |x|. */
AVX512 static inline __m512 gelu_erf_avx512(__m512 x)
{
    __m512 z = _mm512_min_ps(_mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(0.707106781f)),
                             _mm512_set1_ps(8.94427191f));
    __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f),
                             _mm512_fmadd_ps(z, _mm512_set1_ps(0.3275911f), _mm512_set1_ps(1.0f)));
    __m512 p = _mm512_set1_ps(1.061405429f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
    p = _mm512_mul_ps(p, t);
    __m512 erfc =
        _mm512_mul_ps(p, exp_neg_avx512(_mm512_mul_ps(_mm512_mul_ps(z, z), _mm512_set1_ps(-1.0f))));
    __m512 e = _mm512_mul_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.5f)), erfc);
    __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
    return _mm512_mask_sub_ps(e, pos, x, e);
}

/* sigmoid(t) = 1 / (1 + e^-t), from e = e^-|t| (never above 1, so never overflowing):
 * 1 / (1 + e) for t >= 0, e / (1 + e) below; relative error that of exp_neg_avx512 (~2e-7)
 * plus a division's. */
AVX512 static inline __m512 sigmoid_avx512(__m512 t)
{
    __m512 na = _mm512_castsi512_ps(
        _mm512_or_si512(_mm512_castps_si512(t), _mm512_set1_epi32((int)0x80000000u))); /* -|t| */
    __m512 e = exp_neg_avx512(na);
    __m512 d = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    __mmask16 neg = _mm512_cmp_ps_mask(t, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_mul_ps(d, neg, d, e);
}

/* GELU (tanh): x/2 (1 + tanh(u)) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3). */
AVX512 static inline __m512 gelu_tanh_avx512(__m512 x)
{
    __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
    __m512 u = _mm512_fmadd_ps(x3, _mm512_set1_ps(0.044715f), x);
    return _mm512_mul_ps(x, sigmoid_avx512(_mm512_mul_ps(u, _mm512_set1_ps(2.0f * 0.7978845608f))));
}

/* act on 16 values, a compile-time constant once inlined. */
AVX512 static inline __attribute__((always_inline)) __m512 act_k(__m512 v, enum act a)
{
    if (a == ACT_GELU_ERF)
        return gelu_erf_avx512(v);
    if (a == ACT_GELU_TANH)
        return gelu_tanh_avx512(v);
    if (a == ACT_SILU)
        return _mm512_mul_ps(v, sigmoid_avx512(v));
    if (a == ACT_RELU)
        return _mm512_max_ps(v, _mm512_setzero_ps());
    return v;
}

/* row_out_plain, 16 at a time, for a compile-time act once inlined (each caller below gets
 * its own tight loop). GELU-tanh and SiLU were libm's tanhf / expf per element: at 16 decode
 * streams GPT-2's c_fc epilogue (16 x 3072 a layer) cost more than its matmul. */
AVX512 static inline __attribute__((always_inline)) float row_out_k(const int32_t *acc,
                                                                    const float *sw, const float *b,
                                                                    float s, int n, enum act a,
                                                                    const float *res, float *out)
{
    const __m512 vs = _mm512_set1_ps(s), zero = _mm512_setzero_ps();
    __m512 m = zero;
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask(n - i);
        __m512 v = _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(k, acc + i));
        v = _mm512_mul_ps(v, _mm512_mul_ps(vs, _mm512_maskz_loadu_ps(k, sw + i)));
        if (b)
            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, b + i));
        v = act_k(v, a);
        if (res)
            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, res + i));
        _mm512_mask_storeu_ps(out + i, k, v);
        m = _mm512_mask_max_ps(m, k, m, _mm512_abs_ps(v));
    }
    return _mm512_reduce_max_ps(m);
}

/* int8_block_out's rows, the same arithmetic as row_out_k per element (the same bits), with the
 * scales and bias of each 16 columns loaded once a block and one max reduction a block. */
AVX512 static inline __attribute__((always_inline)) float
block_out_k(const int32_t *c, int ldc, int rows, int cols, const float *sw, const float *b, float s,
            enum act a, float *y, size_t ldy, int add)
{
    const __m512 vs = _mm512_set1_ps(s), zero = _mm512_setzero_ps();
    __m512 m = zero;
    for (int j = 0; j < cols; j += 16) {
        __mmask16 k = tail_mask(cols - j);
        __m512 ws = _mm512_mul_ps(vs, _mm512_maskz_loadu_ps(k, sw + j));
        __m512 vb = b ? _mm512_maskz_loadu_ps(k, b + j) : zero;
        for (int i = 0; i < rows; i++) {
            float *yi = y + (size_t)i * ldy + j;
            __m512 v = _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(k, c + (size_t)i * ldc + j));
            v = _mm512_mul_ps(v, ws);
            if (b)
                v = _mm512_add_ps(v, vb);
            v = act_k(v, a);
            if (add)
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, yi));
            _mm512_mask_storeu_ps(yi, k, v);
            m = _mm512_mask_max_ps(m, k, m, _mm512_abs_ps(v));
        }
    }
    return _mm512_reduce_max_ps(m);
}

#define BLOCK_OUT(A)                                                                               \
    (b ? (add ? block_out_k(c, ldc, rows, cols, sw, b, s, A, y, ldy, 1)                            \
              : block_out_k(c, ldc, rows, cols, sw, b, s, A, y, ldy, 0))                           \
       : (add ? block_out_k(c, ldc, rows, cols, sw, NULL, s, A, y, ldy, 1)                         \
              : block_out_k(c, ldc, rows, cols, sw, NULL, s, A, y, ldy, 0)))

AVX512 static float block_out_avx512(const int32_t *c, int ldc, int rows, int cols, const float *sw,
                                     const float *b, float s, enum act a, float *y, size_t ldy,
                                     int add)
{
    switch (a) {
    case ACT_GELU_ERF: return BLOCK_OUT(ACT_GELU_ERF);
    case ACT_GELU_TANH: return BLOCK_OUT(ACT_GELU_TANH);
    case ACT_SILU: return BLOCK_OUT(ACT_SILU);
    case ACT_RELU: return BLOCK_OUT(ACT_RELU);
    default: return BLOCK_OUT(ACT_NONE);
    }
}

AVX512 static float row_out_avx512(const int32_t *acc, const float *sw, const float *b, float s,
                                   int n, enum act a, const float *res, float *out)
{
    switch (a) {
    case ACT_NONE: return row_out_k(acc, sw, b, s, n, ACT_NONE, res, out);
    case ACT_GELU_ERF: return row_out_k(acc, sw, b, s, n, ACT_GELU_ERF, res, out);
    case ACT_GELU_TANH: return row_out_k(acc, sw, b, s, n, ACT_GELU_TANH, res, out);
    case ACT_SILU: return row_out_k(acc, sw, b, s, n, ACT_SILU, res, out);
    case ACT_RELU: return row_out_k(acc, sw, b, s, n, ACT_RELU, res, out);
    default: return row_out_k(acc, sw, b, s, n, ACT_NONE, res, out);
    }
}

#else
#define HAVE_X86 0
#endif

/* Tests: 1 forces the plain loops (process-wide). */
static int force_plain;

void int8_set_plain(int on)
{
    force_plain = on;
}

static int simd(void)
{
    return !force_plain && cpu_avx512f();
}

static float absmax_row(const float *x, int n)
{
#if HAVE_X86
    if (simd())
        return absmax_avx512(x, n);
#endif
    return absmax_plain(x, n);
}

static void quant_row(const float *x, int8_t *q, int n, float inv)
{
#if HAVE_X86
    if (simd()) {
        quant_avx512(x, q, n, inv);
        return;
    }
#endif
    quant_plain(x, q, n, inv);
}

float int8_quantize_row(const float *x, int8_t *q, int n)
{
    float m = absmax_row(x, n);
    float s = m > 0.0f ? m / 127.0f : 1.0f;
    quant_row(x, q, n, 1.0f / s);
    return s;
}

static float row_out(const int32_t *acc, const float *sw, const float *b, float s, int n,
                     enum act a, const float *res, float *out)
{
#if HAVE_X86
    if (simd())
        return row_out_avx512(acc, sw, b, s, n, a, res, out);
#endif
    return row_out_plain(acc, sw, b, s, n, a, res, out);
}

float int8_block_out(const int32_t *c, int ldc, int rows, int cols, const float *sw, const float *b,
                     float s, enum act a, float *y, size_t ldy, int add)
{
#if HAVE_X86
    if (simd())
        return block_out_avx512(c, ldc, rows, cols, sw, b, s, a, y, ldy, add);
#endif
    float mx = 0.0f;
    for (int i = 0; i < rows; i++) {
        float *yi = y + (size_t)i * ldy;
        float rm = row_out(c + (size_t)i * (size_t)ldc, sw, b, s, cols, a, add ? yi : NULL, yi);
        mx = rm > mx ? rm : mx;
    }
    return mx;
}

/* ---- AMX switch ------------------------------------------------------------------------ */

static int amx_mode = -1;

void int8_set_amx(int mode)
{
    amx_mode = mode != 0;
}

int int8_amx_mode(void)
{
    if (amx_mode < 0) {
        const char *env = getenv("INFERD_INT8_AMX");
        amx_mode = env && *env ? atoi(env) != 0 : INT8_AMX_DEFAULT;
    }
    return amx_mode;
}

int int8_has_amx(const struct linear *l)
{
    return l && l->amx;
}

/* The AMX kernel takes this call (its weights, the switch, enough rows, not the plain loops
 * the tests force). */
static int use_amx(const struct linear *l, int M)
{
    return l->amx && M >= INT8_AMX_MIN_M && int8_amx_mode() && !force_plain;
}

/* ---- whole matrices ------------------------------------------------------------------- */

/* max |x| over x (n), blocks of QUANT_BLOCK over the context's OpenMP threads. */
static float absmax_all(const float *x, size_t n)
{
    size_t n_blocks = (n + QUANT_BLOCK - 1) / QUANT_BLOCK;
    float m = 0.0f;
#pragma omp parallel for reduction(max : m) schedule(static) if (n >= PAR_MIN_ELEMS)
    for (size_t b = 0; b < n_blocks; b++) {
        size_t off = b * QUANT_BLOCK, len = n - off < QUANT_BLOCK ? n - off : QUANT_BLOCK;
        float bm = absmax_row(x + off, (int)len);
        m = bm > m ? bm : m;
    }
    return m;
}

/* q (n) = x quantized with the scale of max |x| = mx (max / 127, 1 for a zero x); returns it. */
static float quantize_all(const float *x, int8_t *q, size_t n, float mx)
{
    size_t n_blocks = (n + QUANT_BLOCK - 1) / QUANT_BLOCK;
    float sx = mx > 0.0f ? mx / 127.0f : 1.0f, inv = 1.0f / sx;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN_ELEMS)
    for (size_t b = 0; b < n_blocks; b++) {
        size_t off = b * QUANT_BLOCK, len = n - off < QUANT_BLOCK ? n - off : QUANT_BLOCK;
        quant_row(x + off, q + off, (int)len, inv);
    }
    return sx;
}

/* y (M, N) = act(acc * sx * sw[n] + b[n]), plus y's old value when add; returns max |y|. */
static float epilogue(const struct linear *l, const int32_t *acc, float sx, float *y, int M,
                      int add)
{
    size_t N = (size_t)l->out_features;
    float mx = 0.0f;
#pragma omp parallel for reduction(max : mx) schedule(static) if ((size_t)M * N >= PAR_MIN_ELEMS)
    for (int m = 0; m < M; m++) {
        float *ym = y + (size_t)m * N;
        float rm = row_out(acc + (size_t)m * N, l->w_scales, l->bias, sx, (int)N, l->act,
                           add ? ym : NULL, ym);
        mx = rm > mx ? rm : mx;
    }
    return mx;
}

/* The s8 x s8 -> s32 matmul for M rows of l, cached per (M, K, N). */
static int s32_prim(const struct linear *l, struct dnn_ctx *ctx, int M, struct dnn_prim **out,
                    struct err *e)
{
    struct dnn_key key = {.kind = DNN_KIND_MATMUL,
                          .v = {M, l->in_features, l->out_features, DTYPE_COMPUTE_INT8}};
    *out = dnn_cache_find(ctx, &key);
    if (*out)
        return 0;
    dnnl_primitive_desc_t pd;
    int rc = linear_matmul_pd(l, ctx, M, &l->w_md, &pd, e);
    if (rc != 0)
        return rc;
    static const int args[] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
    return dnn_cache_add(ctx, &key, pd, args, NULL, 3, out, e);
}

/* xq (int8_amx_rows(M) or M, K) = x quantized (the AMX kernel's padding rows zero) in the
 * context's scratch; without AMX also room for oneDNN's (M, N) s32 matrix after it (*acc;
 * acc stays untouched with AMX). Returns the scale, < 0 out of memory. */
static float quantize_in(const struct linear *l, struct dnn_ctx *ctx, const float *x, float x_max,
                         int M, int amx, int8_t **xq, int32_t **acc, struct err *e)
{
    size_t K = (size_t)l->in_features, N = (size_t)l->out_features, m = (size_t)M;
    size_t rows = amx ? int8_amx_rows(M) : m, q_bytes = lines(rows * K, 1);
    char *buf = dnn_scratch(ctx, q_bytes + (amx ? 0 : lines(m * N, sizeof(int32_t))), e);
    if (!buf)
        return -1.0f;
    *xq = (int8_t *)buf;
    if (!amx)
        *acc = (int32_t *)(buf + q_bytes);
    float sx = quantize_all(x, *xq, m * K, x_max >= 0.0f ? x_max : absmax_all(x, m * K));
    memset(*xq + m * K, 0, (rows - m) * K);
    return sx;
}

/* acc (M, N) = xq W^T in s32 (oneDNN). */
static int s32_matmul(const struct linear *l, struct dnn_ctx *ctx, const int8_t *xq, int M,
                      int32_t *acc, struct err *e)
{
    struct dnn_prim *p;
    int rc = s32_prim(l, ctx, M, &p, e);
    void *bufs[] = {(void *)xq, l->w_packed, acc};
    return rc != 0 ? rc : dnn_exec(ctx, p, bufs, e);
}

/* y (+)= act(x W^T + b) for M rows; x_max: max |x| when the caller knows it, else < 0;
 * *y_max (when not NULL) gets max |y| (the next INT8 linear's scale). */
static int run(const struct linear *l, struct dnn_ctx *ctx, const float *x, float x_max, float *y,
               int M, int add, float *y_max, struct err *e)
{
    int amx = use_amx(l, M);
    int8_t *xq;
    int32_t *acc = NULL;
    float sx = quantize_in(l, ctx, x, x_max, M, amx, &xq, &acc, e);
    if (sx < 0.0f)
        return e ? e->kind : ERR_NOMEM;
    float mx;
    if (amx) {
        mx = int8_amx_forward(l, xq, M, sx, y, add, NULL, NULL);
    } else {
        int rc = s32_matmul(l, ctx, xq, M, acc, e);
        if (rc != 0)
            return rc;
        mx = epilogue(l, acc, sx, y, M, add);
    }
    if (y_max)
        *y_max = mx;
    return 0;
}

static int int8_forward(const struct linear *l, struct dnn_ctx *ctx, const float *x, float *y,
                        int M, int add, struct err *e)
{
    return run(l, ctx, x, -1.0f, y, M, add, NULL, e);
}

const struct linear_kind linear_kind_int8 = {linear_dnnl_init, int8_forward};

/* ---- QKV straight into bf16 heads ------------------------------------------------------ */

/* out (n) bf16 = act(acc * s * sw + b) rounded as bf16_from_f32 rounds row_out's f32 values:
 * the same bits as the f32 row gathered by attention_bf16.c, without the row in memory. */
static void row_bf16(const int32_t *acc, const float *sw, const float *b, float s, int n,
                     enum act a, uint16_t *out)
{
    float tmp[64];
    for (int i = 0; i < n; i += 64) {
        int len = n - i < 64 ? n - i : 64;
        row_out(acc + i, sw + i, b ? b + i : NULL, s, len, a, NULL, tmp);
        bf16_from_f32(tmp, out + i, (size_t)len);
    }
}

int linear_forward_heads(const struct linear *l, struct dnn_ctx *ctx, const float *x,
                         const struct attn_shape *sh, uint16_t *heads, struct err *e)
{
    int B = sh->batch, S = sh->seq, NH = sh->n_heads, D = sh->head_dim;
    if (l->dt != DTYPE_COMPUTE_INT8 || !l->w_packed || B <= 0 || S <= 0 || NH <= 0 || D <= 0 ||
        l->out_features != 3 * NH * D)
        return err_set(e, ERR_INVALID,
                       "linear_forward_heads: an INT8 (%d, 3 x %d x %d) linear "
                       "wanted, not (%d, %d)",
                       l->in_features, NH, D, l->in_features, l->out_features);
    int M = B * S, amx = use_amx(l, M) && int8_amx_heads_ok(sh);
    size_t N = (size_t)l->out_features, m = (size_t)M;
    int8_t *xq;
    int32_t *acc = NULL; /* (M, N) */
    float sx = quantize_in(l, ctx, x, -1.0f, M, amx, &xq, &acc, e);
    if (sx < 0.0f)
        return e ? e->kind : ERR_NOMEM;
    if (amx) {
        int8_amx_forward(l, xq, M, sx, NULL, 0, sh, heads);
        return 0;
    }
    int rc = s32_matmul(l, ctx, xq, M, acc, e);
    if (rc != 0)
        return rc;
#pragma omp parallel for schedule(static) if (m * N >= PAR_MIN_ELEMS)
    for (int r = 0; r < M; r++)
        for (int c = 0; c < 3 * NH; c++) { /* c: part c / NH (q, k, v), head c % NH */
            size_t n0 = (size_t)c * D;
            row_bf16(acc + (size_t)r * N + n0, l->w_scales + n0, l->bias ? l->bias + n0 : NULL, sx,
                     D, l->act, int8_head_row(sh, heads, (size_t)r, (size_t)c));
        }
    return 0;
}

int linear_ffn_forward(const struct linear *up, const struct linear *down, struct dnn_ctx *ctx,
                       const float *x, float *inter, float *y, int M, struct err *e)
{
    int fused = up->dt == DTYPE_COMPUTE_INT8 && down->dt == DTYPE_COMPUTE_INT8 && up->w_packed &&
                down->w_packed && up->out_features == down->in_features && M > 0;
    if (!fused) {
        int rc = linear_forward(up, ctx, x, inter, M, e);
        return rc != 0 ? rc : linear_forward_add(down, ctx, inter, y, M, e);
    }
    float h_max;
    int rc = run(up, ctx, x, -1.0f, inter, M, 0, &h_max, e);
    return rc != 0 ? rc : run(down, ctx, inter, h_max, y, M, 1, NULL, e);
}
