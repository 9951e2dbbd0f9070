/* tensor: dtype table and float conversion of tensor views; see tensor.h. */
#include "loader/tensor.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_F16C_TARGET 1
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the safetensors reader assumes a little-endian host"
#endif

/* One row per dtype, indexed by enum dtype. */
static const struct {
    const char *name;
    size_t size;
} dtypes[DTYPE_COUNT] = {
    [DTYPE_F32] = {"F32", 4},   [DTYPE_F16] = {"F16", 2}, [DTYPE_BF16] = {"BF16", 2},
    [DTYPE_F64] = {"F64", 8},   [DTYPE_I64] = {"I64", 8}, [DTYPE_I32] = {"I32", 4},
    [DTYPE_I16] = {"I16", 2},   [DTYPE_I8] = {"I8", 1},   [DTYPE_U8] = {"U8", 1},
    [DTYPE_BOOL] = {"BOOL", 1},
};

size_t dtype_size(enum dtype t)
{
    return (unsigned)t < DTYPE_COUNT ? dtypes[t].size : 0;
}

const char *dtype_name(enum dtype t)
{
    return (unsigned)t < DTYPE_COUNT ? dtypes[t].name : "?";
}

int dtype_parse(const char *s, enum dtype *out)
{
    for (int i = 0; i < DTYPE_COUNT; i++) {
        if (strcmp(s, dtypes[i].name) == 0) {
            *out = (enum dtype)i;
            return 0;
        }
    }
    return ERR_FORMAT;
}

static float bits_to_f32(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* binary16: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits. Every value maps to a
 * float exactly: normals rebias the exponent (+112), subnormals are renormalized, and
 * inf/NaN keep their mantissa bits (a signalling NaN stays signalling). */
float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f)
        return bits_to_f32(sign | 0x7f800000u | (mant << 13));
    if (exp != 0)
        return bits_to_f32(sign | ((exp + 112u) << 23) | (mant << 13));
    if (mant == 0)
        return bits_to_f32(sign);
    /* subnormal: value = mant * 2^-24; shift the leading 1 up to bit 10 */
    uint32_t e = 113;
    while (!(mant & 0x400u)) {
        mant <<= 1;
        e--;
    }
    return bits_to_f32(sign | (e << 23) | ((mant & 0x3ffu) << 13));
}

/* bfloat16 is the top half of a float. */
float bf16_to_f32(uint16_t b)
{
    return bits_to_f32((uint32_t)b << 16);
}

static void f16_run_scalar(const unsigned char *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, sizeof h);
        dst[i] = f16_to_f32(h);
    }
}

#ifdef HAVE_F16C_TARGET
/* Eight halves at a time with VCVTPH2PS, which is exact (it never rounds: the float format
 * is wider) and ignores MXCSR.DAZ; the tail goes through the scalar routine. */
__attribute__((target("avx,f16c"))) static void f16_run_f16c(const unsigned char *src, float *dst,
                                                             size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(src + 2 * i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    f16_run_scalar(src + 2 * i, dst + i, n - i);
}
#endif

#ifdef HAVE_F16C_TARGET
/* CPUID.1:ECX F16C (bit 29) and AVX (28), and the OS saving YMM state (OSXSAVE, XCR0 bits 1-2).
 * Asked on every call: a few hundred cycles against a whole tensor. */
static int have_f16c(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    if (!(c & (1u << 29)) || !(c & (1u << 28)) || !(c & (1u << 27)))
        return 0;
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    return (lo & 6u) == 6u;
}
#endif

static void f16_run(const unsigned char *src, float *dst, size_t n)
{
#ifdef HAVE_F16C_TARGET
    if (have_f16c()) {
        f16_run_f16c(src, dst, n);
        return;
    }
#endif
    f16_run_scalar(src, dst, n);
}

int tensor_to_f32(const struct tensor *t, float *dst, size_t n, struct err *e)
{
    if (n != t->n_elements)
        return err_set(e, ERR_INVALID, "%s: tensor '%s': converting %zu elements, it has %zu",
                       t->file ? t->file : "?", t->name ? t->name : "?", n, t->n_elements);
    const unsigned char *src = t->data;
    switch (t->dtype) {
    case DTYPE_F32:
        if (n > 0)
            memcpy(dst, src, n * sizeof(float));
        return 0;
    case DTYPE_F16: f16_run(src, dst, n); return 0;
    case DTYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t b;
            memcpy(&b, src + 2 * i, sizeof b);
            dst[i] = bf16_to_f32(b);
        }
        return 0;
    default:
        return err_set(e, ERR_FORMAT, "%s: tensor '%s': dtype %s cannot be converted to F32",
                       t->file ? t->file : "?", t->name ? t->name : "?", dtype_name(t->dtype));
    }
}
