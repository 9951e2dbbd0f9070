/* q4_checkpoint: linears of pre-quantized 4-bit checkpoints as transformers reads them, one row
 * per format in a table keyed by config.json's quantization_config.quant_method:
 *   awq  (AutoAWQ, version "gemm"): qweight int32 (in, out / 8), eight 4-bit codes per word
 *        along out in AWQ's interleaved order (column 8c + j in nibble REV[j]); qzeros int32
 *        (in / group, out / 8) the same way; scales f16 (in / group, out); w = s * (q - z).
 *   gptq (AutoGPTQ / GPTQModel, checkpoint_format "gptq" or "gptq_v2"): qweight int32
 *        (in / 8, out), eight codes per word along in (row 8r + j in nibble j); qzeros int32
 *        (in / group, out / 8) along out; scales (in / group, out); g_idx int32 (in), the
 *        group of each input; w = s * (q - z), z the stored zero + 1 in the "gptq" (v1) format.
 * Each becomes a struct q4_rows (ops.h): the INT4 kernel takes it as it is, the other dtypes
 * its dequantized weights. Formats, bit widths and layouts we do not read are refused at load
 * with a message that says which. */
#include "models/q4_checkpoint.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "loader/tensor.h"

/* AWQ's nibble for column j of each group of eight (the inverse of its pack order 0 2 4 6 1 3
 * 5 7). */
static const int awq_nibble[8] = {0, 4, 1, 5, 2, 6, 3, 7};

/* A tensor `base`.`suffix` of dtype dt and shape (rows, cols); else ERR_FORMAT naming it. */
static int need(struct weights *w, const char *base, const char *suffix, enum dtype dt,
                int64_t rows, int64_t cols, const struct tensor **out, struct err *e)
{
    char name[352];
    snprintf(name, sizeof name, "%s%s.%s", w->prefix, base, suffix);
    const struct tensor *t = checkpoint_get(w->ck, name);
    if (!t)
        return err_set(e, ERR_FORMAT, "%s: %s checkpoint: tensor '%s' is missing", w->dir,
                       w->q4.format->name, name);
    bool shape_ok = cols ? t->n_dims == 2 && t->shape[0] == rows && t->shape[1] == cols
                         : t->n_dims == 1 && t->shape[0] == rows;
    if (t->dtype != dt || !shape_ok || !t->aligned)
        return err_set(e, ERR_FORMAT,
                       "%s: %s checkpoint: tensor '%s' must be %s of shape [%lld%s%lld] for a "
                       "(%lld, %lld) linear in groups of %d",
                       w->dir, w->q4.format->name, name, dtype_name(dt), (long long)rows,
                       cols ? ", " : "", (long long)cols, (long long)rows, (long long)cols,
                       w->q4.group);
    weights_mark_used(w, t);
    *out = t;
    return 0;
}

/* The scales (in / group, out) of f16, bf16 or f32, transposed into r->scale (out, in / group);
 * anything else fails with need()'s message. */
static int take_scales(struct weights *w, const char *base, struct q4_rows *r, struct err *e)
{
    char name[352];
    snprintf(name, sizeof name, "%s%s.scales", w->prefix, base);
    const struct tensor *t = checkpoint_get(w->ck, name);
    int ng = r->in / r->group;
    if (t && (t->dtype == DTYPE_F16 || t->dtype == DTYPE_BF16 || t->dtype == DTYPE_F32) &&
        t->n_dims == 2 &&
        t->shape[0] == ng && t->shape[1] == r->out) {
        float *tmp = malloc((size_t)ng * (size_t)r->out * sizeof *tmp);
        if (!tmp)
            return err_set(e, ERR_NOMEM, "out of memory");
        int rc = tensor_to_f32(t, tmp, t->n_elements, e);
        for (int g = 0; rc == 0 && g < ng; g++)
            for (int n = 0; n < r->out; n++)
                r->scale[(size_t)n * ng + g] = tmp[(size_t)g * r->out + n];
        free(tmp);
        if (rc == 0)
            weights_mark_used(w, t);
        return rc;
    }
    const struct tensor *f;
    int rc = need(w, base, "scales", DTYPE_F16, ng, r->out, &f, e);
    return rc ? rc : err_set(e, ERR_INTERNAL, "scales");
}

/* ---- AWQ ---- */

static int awq_config(const json_t *qc, struct q4_config *c, struct err *e)
{
    const char *version = json_string_value(json_object_get(qc, "version"));
    if (version && strcasecmp(version, "gemm") != 0)
        return err_set(e, ERR_FORMAT,
                       "AWQ version '%s' is not supported (only \"gemm\" packing is)", version);
    c->zero_plus_one = 0;
    return 0;
}

static int awq_take(struct weights *w, const char *base, struct q4_rows *r, struct err *e)
{
    const struct tensor *qw, *qz;
    int ng = r->in / r->group;
    int rc = r->out % 8 ? err_set(e, ERR_FORMAT, "%s: AWQ linear '%s': out_features %d is not a "
                                  "multiple of 8", w->dir, base, r->out)
                        : 0;
    if (rc == 0)
        rc = need(w, base, "qweight", DTYPE_I32, r->in, r->out / 8, &qw, e);
    if (rc == 0)
        rc = need(w, base, "qzeros", DTYPE_I32, ng, r->out / 8, &qz, e);
    if (rc == 0)
        rc = take_scales(w, base, r, e);
    if (rc)
        return rc;
    const uint32_t *q = qw->data, *z = qz->data;
    for (int n = 0; n < r->out; n++) {
        int col = n / 8, shift = 4 * awq_nibble[n % 8];
        for (int k = 0; k < r->in; k++)
            r->q[(size_t)n * r->in + k] = (uint8_t)(q[(size_t)k * (r->out / 8) + col] >> shift & 15);
        for (int g = 0; g < ng; g++)
            r->zero[(size_t)n * ng + g] = (uint8_t)(z[(size_t)g * (r->out / 8) + col] >> shift & 15);
    }
    return 0;
}

/* ---- GPTQ ---- */

static int gptq_config(const json_t *qc, struct q4_config *c, struct err *e)
{
    const char *fmt = json_string_value(json_object_get(qc, "checkpoint_format"));
    if (!fmt)
        fmt = json_string_value(json_object_get(qc, "format"));
    if (fmt && strcmp(fmt, "gptq") != 0 && strcmp(fmt, "gptq_v2") != 0)
        return err_set(e, ERR_FORMAT,
                       "GPTQ checkpoint_format '%s' is not supported (\"gptq\" or \"gptq_v2\")", fmt);
    c->zero_plus_one = !fmt || strcmp(fmt, "gptq") == 0;
    return 0;
}

static int gptq_take(struct weights *w, const char *base, struct q4_rows *r, struct err *e)
{
    const struct tensor *qw, *qz, *gi;
    int ng = r->in / r->group;
    int rc = r->out % 8 || r->in % 8
                 ? err_set(e, ERR_FORMAT, "%s: GPTQ linear '%s': (%d, %d) is not a multiple of 8",
                           w->dir, base, r->out, r->in)
                 : 0;
    if (rc == 0)
        rc = need(w, base, "qweight", DTYPE_I32, r->in / 8, r->out, &qw, e);
    if (rc == 0)
        rc = need(w, base, "qzeros", DTYPE_I32, ng, r->out / 8, &qz, e);
    if (rc == 0)
        rc = need(w, base, "g_idx", DTYPE_I32, r->in, 0, &gi, e);
    if (rc == 0)
        rc = take_scales(w, base, r, e);
    if (rc)
        return rc;
    const int32_t *g_idx = gi->data;
    for (int k = 0; k < r->in; k++)
        if (g_idx[k] != k / r->group)
            return err_set(e, ERR_FORMAT,
                           "%s: GPTQ linear '%s': g_idx[%d] is %d, not %d: act-order (desc_act) "
                           "checkpoints whose groups are not consecutive inputs are not supported",
                           w->dir, base, k, (int)g_idx[k], k / r->group);
    const uint32_t *q = qw->data, *z = qz->data;
    for (int n = 0; n < r->out; n++) {
        for (int k = 0; k < r->in; k++)
            r->q[(size_t)n * r->in + k] = (uint8_t)(q[(size_t)(k / 8) * r->out + n] >> 4 * (k % 8) & 15);
        for (int g = 0; g < ng; g++)
            r->zero[(size_t)n * ng + g] = (uint8_t)((z[(size_t)g * (r->out / 8) + n / 8] >> 4 * (n % 8) & 15) +
                                                    w->q4.zero_plus_one);
    }
    return 0;
}

static const struct q4_format formats[] = {
    {"awq", awq_config, awq_take},
    {"gptq", gptq_config, gptq_take},
};

/* An integer member of qc under any of two names (the second may be NULL); def when absent. */
static int64_t int_member(const json_t *qc, const char *a, const char *b, int64_t def)
{
    const json_t *v = json_object_get(qc, a);
    if (!v && b)
        v = json_object_get(qc, b);
    return json_is_integer(v) ? json_integer_value(v) : def;
}

int q4_config_read(const char *dir, struct q4_config *c, struct err *e)
{
    memset(c, 0, sizeof *c);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *root = json_load_file(path, 0, NULL);
    const json_t *qc = json_object_get(root, "quantization_config");
    int rc = 0;
    if (!qc)
        goto out;
    const char *method = json_string_value(json_object_get(qc, "quant_method"));
    for (size_t i = 0; method && i < sizeof formats / sizeof formats[0]; i++)
        if (strcasecmp(method, formats[i].name) == 0)
            c->format = &formats[i];
    if (!c->format) {
        rc = err_set(e, ERR_FORMAT,
                     "%s: config.json: quantization_config.quant_method '%s' is not supported "
                     "(awq, gptq)",
                     dir, method ? method : "(none)");
        goto out;
    }
    int64_t bits = int_member(qc, "bits", "w_bit", -1);
    int64_t group = int_member(qc, "group_size", "q_group_size", -2);
    if (bits != 4)
        rc = err_set(e, ERR_FORMAT, "%s: config.json: %s with %lld bits is not supported (4 only)",
                     dir, c->format->name, (long long)bits);
    else if (group != -1 && (group < 32 || group % 32 != 0 || group > 1 << 20))
        rc = err_set(e, ERR_FORMAT,
                     "%s: config.json: %s group_size %lld is not supported (a multiple of 32, "
                     "or -1)",
                     dir, c->format->name, (long long)group);
    if (rc == 0) {
        c->group = (int)group;
        rc = c->format->config(qc, c, e);
        if (rc)
            err_prefix(e, "%s: config.json: ", dir);
    }
out:
    if (rc)
        c->format = NULL;
    json_decref(root);
    return rc;
}

bool q4_is_quantized(const struct weights *w, const char *base)
{
    char name[352];
    snprintf(name, sizeof name, "%s%s.qweight", w->prefix, base);
    return w->q4.format && checkpoint_get(w->ck, name) != NULL;
}

int q4_take(struct weights *w, const char *base, int64_t out, int64_t in, struct q4_rows *r,
            struct err *e)
{
    int group = w->q4.group == -1 ? (int)in : w->q4.group;
    if (in % group != 0)
        return err_set(e, ERR_FORMAT,
                       "%s: %s linear '%s': group_size %d does not divide in_features %lld", w->dir,
                       w->q4.format->name, base, group, (long long)in);
    int rc = q4_rows_alloc(r, (int)out, (int)in, group, e);
    if (rc)
        return err_prefix(e, "%s: %s linear '%s': ", w->dir, w->q4.format->name, base);
    rc = w->q4.format->take(w, base, r, e);
    if (rc)
        q4_rows_fini(r);
    return rc;
}
