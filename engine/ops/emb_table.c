/* emb_table: see emb_table.h. */
#include "ops/emb_table.h"
#include "ops/cpu.h"
#include "ops/ops.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void emb_table_take(struct emb_table *t, float *w, int64_t rows, int64_t cols)
{
    *t = (struct emb_table){.rows = rows, .cols = cols, .dt = DTYPE_COMPUTE_F32, .f32 = w};
}

const float *emb_table_f32(const struct emb_table *t)
{
    return t->f32;
}

/* f32 -> bf16, round to nearest even (NaN kept a NaN), as torch's .to(torch.bfloat16). */
static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static int compact_bf16(struct emb_table *t, struct err *e)
{
    size_t n = (size_t)t->rows * (size_t)t->cols;
    uint16_t *b = malloc(n * sizeof *b + 1);
    if (!b)
        return err_set(e, ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        b[i] = to_bf16(t->f32[i]);
    t->bf16 = b;
    return 0;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* s8_error, 16 at a time (the sum in another order: a candidate's error, not a result). */
__attribute__((target("avx512f"))) static float s8_error_avx512(const float *x, int64_t n, float s)
{
    const __m512 vinv = _mm512_set1_ps(1.0f / s), vs = _mm512_set1_ps(s);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t k = 0; k < n; k += 16) {
        __mmask16 m = n - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - k)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, x + k);
        __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(v, vinv),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m512 d = _mm512_fnmadd_ps(r, vs, v);
        acc = _mm512_fmadd_ps(d, d, acc);
    }
    return _mm512_reduce_add_ps(acc);
}
#define HAVE_S8_AVX512 1
#else
#define HAVE_S8_AVX512 0
#endif

/* The squared error of row x (n) rounded to multiples of s (at most 127 of them). */
static float s8_error(const float *x, int64_t n, float s)
{
#if HAVE_S8_AVX512
    if (cpu_avx512f())
        return s8_error_avx512(x, n, s);
#endif
    float inv = 1.0f / s, err = 0.0f;
    for (int64_t k = 0; k < n; k++) {
        float d = x[k] - rintf(x[k] * inv) * s; /* |x| <= max = k s: never past 127 */
        err += d * d;
    }
    return err;
}

/* Row x (n) to s8 q on its own scale (1 for an all-zero row). The scale is max |x| / k for the
 * k in [S8_MIN_LEVELS, 127] with the least squared error (the largest k on ties), not always
 * max / 127: rows whose values sit on a coarser grid than max / 127 (a checkpoint's rounded
 * weights: the issue-14 fixtures hold multiples of 0.5 up to 2, which max / 127 moves 0.8% up
 * every one, in the same direction) keep them exactly when the grid has 1 to 8 steps to the
 * maximum (120 or 126 is a multiple of each), and any other row loses no more (max / 127 is a
 * candidate). Eight candidates, AVX-512 where the CPU has it: the 124M LLaMA's 32000 x 768
 * table in 0.17 s (bf16 rows: 0.09 s; 2 threads of a loaded machine). */
#define S8_MIN_LEVELS 120
void s8_row_quantize(const float *x, int64_t n, int8_t *q, float *scale)
{
    float m = 0.0f;
    for (int64_t k = 0; k < n; k++)
        m = fmaxf(m, fabsf(x[k]));
    float s = 1.0f;
    if (m > 0.0f) {
        float best = -1.0f;
        for (int levels = 127; levels >= S8_MIN_LEVELS; levels--) {
            float c = m / (float)levels;
            float err = s8_error(x, n, c);
            if (best < 0.0f || err < best) {
                best = err;
                s = c;
            }
        }
    }
    float inv = 1.0f / s;
    for (int64_t k = 0; k < n; k++)
        q[k] = (int8_t)fminf(fmaxf(rintf(x[k] * inv), -127.0f), 127.0f);
    *scale = s;
}

static int compact_s8(struct emb_table *t, struct err *e)
{
    size_t n = (size_t)t->rows * (size_t)t->cols;
    int8_t *q = malloc(n + 1);
    float *sc = malloc((size_t)t->rows * sizeof *sc + 1);
    if (!q || !sc) {
        free(q);
        free(sc);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < t->rows; r++)
        s8_row_quantize(t->f32 + (size_t)r * (size_t)t->cols, t->cols,
                        q + (size_t)r * (size_t)t->cols, &sc[r]);
    t->s8 = q;
    t->s8_scale = sc;
    return 0;
}

int emb_table_compact(struct emb_table *t, enum dtype_compute dt, struct err *e)
{
    if (dt == DTYPE_COMPUTE_F32 || t->dt != DTYPE_COMPUTE_F32 || !t->f32)
        return 0;
    bool s8 = (dt == DTYPE_COMPUTE_INT8 || dt == DTYPE_COMPUTE_INT4);
    int rc = s8 ? compact_s8(t, e) : compact_bf16(t, e);
    if (rc)
        return rc;
    free(t->f32);
    t->f32 = NULL;
    t->dt = s8 ? DTYPE_COMPUTE_INT8 : DTYPE_COMPUTE_BF16;
    return 0;
}

int emb_table_share(struct emb_table *t, const struct linear *l, enum dtype_compute dt,
                    struct err *e)
{
    if (dt == DTYPE_COMPUTE_INT4 || !t->f32 || t->dt != DTYPE_COMPUTE_F32 || l->dt != dt ||
        l->out_features != t->rows || l->in_features != t->cols || !l->w_packed)
        return emb_table_compact(t, dt, e);
    size_t *off = malloc((size_t)t->cols * sizeof *off);
    if (!off)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (linear_row_offsets(l, off, NULL) != 0) {
        free(off);
        return emb_table_compact(t, dt, e);
    }
    free(t->f32);
    t->f32 = NULL;
    t->dt = dt;
    t->shared = l;
    t->share_off = off;
    return 0;
}

void emb_table_row(const struct emb_table *t, int64_t r, float *dst)
{
    size_t off = (size_t)r * (size_t)t->cols, n = (size_t)t->cols;
    if (t->shared) {
        linear_read_row(t->shared, t->share_off, r, dst); /* r < rows: the linear's outputs */
        return;
    }
    if (t->f32) {
        memcpy(dst, t->f32 + off, n * sizeof *dst);
        return;
    }
    if (t->s8) {
        const int8_t *q = t->s8 + off;
        float sc = t->s8_scale[r];
        for (size_t k = 0; k < n; k++)
            dst[k] = (float)q[k] * sc;
        return;
    }
    const uint16_t *b = t->bf16 + off;
    for (size_t k = 0; k < n; k++) {
        uint32_t u = (uint32_t)b[k] << 16;
        memcpy(&dst[k], &u, sizeof u);
    }
}

size_t emb_table_bytes(const struct emb_table *t)
{
    size_t n = (size_t)t->rows * (size_t)t->cols;
    if (t->shared)
        return 0; /* the tied linear's bytes */
    if (t->f32)
        return n * sizeof(float);
    if (t->s8)
        return n + (size_t)t->rows * sizeof(float);
    return t->bf16 ? n * sizeof(uint16_t) : 0;
}

void emb_table_fini(struct emb_table *t)
{
    free(t->f32);
    free(t->bf16);
    free(t->s8);
    free(t->s8_scale);
    free(t->share_off);
    *t = (struct emb_table){0};
}
