/* rope: rotary position embeddings for the LLaMA family: the inverse frequencies of
 * transformers' rope init functions (default, linear, dynamic, llama3, longrope), cos/sin of a
 * position, and the rotation of query/key heads (whole or partial); see ops/kv.h.
 *
 * transformers computes all of this in float32 tensors with Python floats as scalars; each step
 * below does the same float32 operation in the same order, so that positions far into a long
 * sequence rotate by the same angles (an f64 shortcut would differ by more than rounding). */
#include <math.h>
#include <string.h>

#include "ops/kv.h"

static const struct {
    const char *name;
    enum rope_type type;
} rope_types[] = {
    {"default", ROPE_DEFAULT},
    {"linear", ROPE_LINEAR},
    {"dynamic", ROPE_DYNAMIC},
    {"llama3", ROPE_LLAMA3},
    {"longrope", ROPE_LONGROPE},
};

int rope_parse_type(const char *name, enum rope_type *out, struct err *e)
{
    for (size_t i = 0; i < sizeof rope_types / sizeof rope_types[0]; i++)
        if (strcmp(rope_types[i].name, name) == 0) {
            *out = rope_types[i].type;
            return 0;
        }
    return err_set(e, ERR_FORMAT,
                   "rope_type '%s' is not supported (default, linear, dynamic, llama3, longrope)",
                   name);
}

int rope_check(const struct rope_params *p, struct err *e)
{
    if (p->dim <= 0 || p->dim % 2 != 0)
        return err_set(e, ERR_FORMAT, "rotary dimension %d must be even and positive", p->dim);
    if (!(p->theta > 0))
        return err_set(e, ERR_FORMAT, "rope_theta %g must be positive", p->theta);
    if (p->type == ROPE_DEFAULT)
        return 0;
    if (p->type == ROPE_LONGROPE) {
        if (!p->short_factor || !p->long_factor || p->n_factors != (size_t)p->dim / 2)
            return err_set(e, ERR_FORMAT,
                           "longrope scaling needs 'short_factor' and 'long_factor' of %d "
                           "numbers (the rotary dimension / 2), not %zu",
                           p->dim / 2, p->n_factors);
        if (p->original_max_position_embeddings <= 0)
            return err_set(e, ERR_FORMAT,
                           "longrope scaling needs 'original_max_position_embeddings'");
        return 0;
    }
    if (!(p->factor >= 1.0))
        return err_set(e, ERR_FORMAT, "rope scaling 'factor' %g must be >= 1", p->factor);
    if (p->type == ROPE_DYNAMIC && p->max_position_embeddings <= 0)
        return err_set(e, ERR_FORMAT, "dynamic rope scaling needs 'max_position_embeddings'");
    if (p->type == ROPE_DYNAMIC && p->dim <= 2)
        return err_set(e, ERR_FORMAT, "dynamic rope scaling needs a head_dim above 2");
    if (p->type == ROPE_LLAMA3) {
        if (!(p->low_freq_factor > 0) || !(p->high_freq_factor > p->low_freq_factor))
            return err_set(e, ERR_FORMAT,
                           "llama3 rope scaling needs 0 < 'low_freq_factor' < 'high_freq_factor' "
                           "(got %g, %g)",
                           p->low_freq_factor, p->high_freq_factor);
        if (p->original_max_position_embeddings <= 0)
            return err_set(e, ERR_FORMAT,
                           "llama3 rope scaling needs 'original_max_position_embeddings'");
    }
    return 0;
}

/* 1 / base ** (2i / dim) in float32: HF's 1.0 / (base ** (arange(0, dim, 2).float() / dim)). */
static void default_inv_freq(float base, int dim, float *inv_freq)
{
    for (int i = 0; i < dim / 2; i++) {
        float expo = (float)(2 * i) / (float)dim;
        inv_freq[i] = 1.0f / powf(base, expo);
    }
}

/* transformers' _compute_llama3_parameters, elementwise in float32. */
static void llama3_inv_freq(const struct rope_params *p, float *inv_freq)
{
    const float two_pi = (float)(2.0 * M_PI);
    const float factor = (float)p->factor, old_len = (float)p->original_max_position_embeddings;
    /* Python floats, compared with float32 tensors: rounded to float32 */
    const float low_freq_wavelen =
        (float)((double)p->original_max_position_embeddings / p->low_freq_factor);
    const float high_freq_wavelen =
        (float)((double)p->original_max_position_embeddings / p->high_freq_factor);
    const float ramp = (float)(p->high_freq_factor - p->low_freq_factor);
    for (int i = 0; i < p->dim / 2; i++) {
        float f = inv_freq[i];
        float wavelen = two_pi / f;
        if (wavelen > low_freq_wavelen) {
            inv_freq[i] = f / factor; /* low frequencies: interpolated */
        } else if (!(wavelen < high_freq_wavelen)) {
            /* medium: (1 - s) * f / factor + s * f with s = (old_len / wavelen - low) / ramp */
            float s = (old_len / wavelen - (float)p->low_freq_factor) / ramp;
            inv_freq[i] = (1.0f - s) * f / factor + s * f;
        } /* high frequencies stay */
    }
}

void rope_inv_freq(const struct rope_params *p, int64_t seq_len, float *inv_freq)
{
    switch (p->type) {
    case ROPE_DEFAULT: default_inv_freq((float)p->theta, p->dim, inv_freq); return;
    case ROPE_LINEAR:
        default_inv_freq((float)p->theta, p->dim, inv_freq);
        for (int i = 0; i < p->dim / 2; i++)
            inv_freq[i] /= (float)p->factor;
        return;
    case ROPE_DYNAMIC: {
        /* At or below the trained length transformers keeps the inv_freq computed at init (in
         * f64 scalars); past it, seq_len is a tensor and the new base is float32 arithmetic:
         * base * ((factor * seq_len / max_pos) - (factor - 1)) ** (dim / (dim - 2)). */
        int64_t max_pos = p->max_position_embeddings;
        double dim = (double)p->dim;
        if (seq_len <= max_pos) { /* the init-time base: theta * 1 ** (dim / (dim - 2)) */
            default_inv_freq((float)p->theta, p->dim, inv_freq);
            return;
        }
        float t = (float)p->factor * (float)seq_len;
        t = t / (float)max_pos;
        t = t - (float)(p->factor - 1.0);
        t = powf(t, (float)(dim / (dim - 2.0)));
        default_inv_freq((float)p->theta * t, p->dim, inv_freq);
        return;
    }
    case ROPE_LLAMA3:
        default_inv_freq((float)p->theta, p->dim, inv_freq);
        llama3_inv_freq(p, inv_freq);
        return;
    case ROPE_LONGROPE: {
        /* 1 / (ext_factors * base ** (arange(0, dim, 2).float() / dim)), all float32 */
        const double *ext =
            seq_len > p->original_max_position_embeddings ? p->long_factor : p->short_factor;
        for (int i = 0; i < p->dim / 2; i++) {
            float expo = (float)(2 * i) / (float)p->dim;
            inv_freq[i] = 1.0f / ((float)ext[i] * powf((float)p->theta, expo));
        }
        return;
    }
    }
}

void rope_cos_sin(const float *inv_freq, int half, int64_t pos, float *cos_out, float *sin_out)
{
    float fp = (float)pos;
    for (int i = 0; i < half; i++) {
        float a = inv_freq[i] * fp; /* one f32 product, as HF's inv_freq @ position_ids */
        cos_out[i] = cosf(a);
        sin_out[i] = sinf(a);
    }
}

void rope_rotate(float *x, int n_heads, int dim, const float *cos_v, const float *sin_v)
{
    rope_rotate_strided(x, n_heads, dim, dim, cos_v, sin_v);
}

void rope_rotate_strided(float *x, int n_heads, int stride, int dim, const float *cos_v,
                         const float *sin_v)
{
    int half = dim / 2;
    for (int h = 0; h < n_heads; h++) {
        float *x1 = x + (size_t)h * (size_t)stride; /* (half) */
        float *x2 = x1 + half;                   /* (half) */
        for (int i = 0; i < half; i++) {
            float a = x1[i], b = x2[i];
            /* HF: q * cos + rotate_half(q) * sin, rotate_half(q) = [-x2, x1] */
            x1[i] = a * cos_v[i] + -b * sin_v[i];
            x2[i] = b * cos_v[i] + a * sin_v[i];
        }
    }
}
