/* weights: see weights.h. */
#include "models/weights.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/tensor.h"
#include "models/q4_checkpoint.h"

int weights_open(struct weights *w, struct err *e)
{
    w->ck = NULL;
    w->used = NULL;
    w->n_used = 0;
    int rc = q4_config_read(w->dir, &w->q4, e);
    if (rc == 0)
        rc = checkpoint_open(w->dir, &w->ck, e);
    if (rc)
        return rc;
    w->used = calloc(checkpoint_count(w->ck) + 1, 1);
    if (!w->used) {
        weights_close(w);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    return 0;
}

void weights_close(struct weights *w)
{
    free(w->used);
    checkpoint_close(w->ck);
    w->used = NULL;
    w->ck = NULL;
}

const char *weights_pick_prefix(const struct weights *w, const char *prefix, const char *probe)
{
    char name[320];
    snprintf(name, sizeof name, "%s%s", prefix, probe);
    return checkpoint_get(w->ck, name) ? prefix : "";
}

static _Thread_local struct {
    weights_progress_fn *fn;
    void *arg;
} progress;

void weights_set_progress(weights_progress_fn *fn, void *arg)
{
    progress.fn = fn;
    progress.arg = arg;
}

void weights_mark_used(struct weights *w, const struct tensor *t)
{
    for (size_t i = 0; i < checkpoint_count(w->ck); i++)
        if (checkpoint_at(w->ck, i) == t && !w->used[i]) {
            w->used[i] = 1;
            w->n_used++;
            if (progress.fn)
                progress.fn(progress.arg, w->n_used, checkpoint_count(w->ck));
        }
}

/* A shape's dimensions as "a, b, ..." (the brackets are the message's). */
static void format_shape(char *out, size_t size, const int64_t *dims, int n)
{
    out[0] = '\0';
    for (int i = 0; i < n && strlen(out) + 24 < size; i++)
        snprintf(out + strlen(out), size - strlen(out), "%s%lld", i ? ", " : "",
                 (long long)dims[i]);
}

int weights_take(struct weights *w, const char *name, int64_t rows, int64_t cols, float **out,
                 struct err *e)
{
    char full[352]; /* prefix + name */
    snprintf(full, sizeof full, "%s%s", w->prefix, name);
    const struct tensor *t = checkpoint_get(w->ck, full);
    if (!t)
        return err_set(e, ERR_FORMAT, "%s: tensor '%s' is missing", w->dir, full);
    bool ok = cols ? (t->n_dims == 2 && t->shape[0] == rows && t->shape[1] == cols)
                   : (t->n_dims == 1 && t->shape[0] == rows);
    if (!ok) {
        char got[96], want[64];
        int64_t dims[2] = {rows, cols};
        format_shape(got, sizeof got, t->shape, t->n_dims);
        format_shape(want, sizeof want, dims, cols ? 2 : 1);
        return err_set(e, ERR_FORMAT, "%s: tensor '%s' has shape [%s], config.json implies [%s]",
                       w->dir, full, got, want);
    }
    float *f = malloc(t->n_elements * sizeof *f + 1);
    if (!f)
        return err_set(e, ERR_NOMEM, "out of memory loading '%s'", full);
    int rc = tensor_to_f32(t, f, t->n_elements, e); /* its message names the tensor */
    if (rc) {
        free(f);
        return err_prefix(e, "%s: ", w->dir);
    }
    weights_mark_used(w, t);
    *out = f;
    return 0;
}

void norm_weights_fini(struct norm_weights *n)
{
    free(n->w);
    free(n->b);
}

int weights_norm(struct weights *w, const char *base, int64_t n, bool has_bias,
                 struct norm_weights *out, struct err *e)
{
    char name[320];
    snprintf(name, sizeof name, "%s.weight", base);
    int rc = weights_take(w, name, n, 0, &out->w, e);
    snprintf(name, sizeof name, "%s.bias", base);
    return rc || !has_bias ? rc : weights_take(w, name, n, 0, &out->b, e);
}

/* The biases `bases[i]`.bias stacked into b (sum outs). */
static int take_biases(struct weights *w, const char *const *bases, const int64_t *outs, int n,
                       float *b, struct err *e)
{
    int rc = 0;
    for (int i = 0, row = 0; i < n && rc == 0; row += (int)outs[i], i++) {
        char name[320];
        float *bi = NULL;
        snprintf(name, sizeof name, "%s.bias", bases[i]);
        rc = weights_take(w, name, outs[i], 0, &bi, e);
        if (rc == 0)
            memcpy(b + row, bi, (size_t)outs[i] * sizeof *b);
        free(bi);
    }
    return rc;
}

/* weights_stacked for pre-quantized parts: their rows stacked into one struct q4_rows, packed
 * as they are at INT4, else dequantized and packed for dt. */
static int stacked_q4(struct weights *w, struct dnn_ctx *ctx, const char *const *bases,
                      const int64_t *outs, int n, int64_t in, bool has_bias, enum dtype_compute dt,
                      enum act act, struct linear *l, struct err *e)
{
    int64_t total = 0;
    for (int i = 0; i < n; i++)
        total += outs[i];
    struct q4_rows all = {0}, part = {0};
    float *b = has_bias ? malloc((size_t)total * sizeof *b) : NULL, *wf = NULL;
    int rc = has_bias && !b ? err_set(e, ERR_NOMEM, "out of memory") : 0;
    for (int i = 0, row = 0; i < n && rc == 0; row += (int)outs[i], i++) {
        if (!q4_is_quantized(w, bases[i]))
            rc = err_set(e, ERR_FORMAT, "%s: %s checkpoint: '%s' is not quantized but '%s' is",
                         w->dir, w->q4.format->name, bases[i], bases[0]);
        if (rc == 0)
            rc = q4_take(w, bases[i], outs[i], in, &part, e);
        if (rc == 0 && i == 0)
            rc = q4_rows_alloc(&all, (int)total, (int)in, part.group, e);
        if (rc == 0) {
            size_t ng = (size_t)(in / part.group);
            memcpy(all.q + (size_t)row * in, part.q, (size_t)(outs[i] * in));
            memcpy(all.scale + row * ng, part.scale, (size_t)outs[i] * ng * sizeof *all.scale);
            memcpy(all.zero + row * ng, part.zero, (size_t)outs[i] * ng);
        }
        q4_rows_fini(&part);
    }
    if (rc == 0 && has_bias)
        rc = take_biases(w, bases, outs, n, b, e);
    if (rc == 0 && dt == DTYPE_COMPUTE_INT4) {
        rc = linear_init_q4(l, &all, b, act, e);
    } else if (rc == 0) {
        wf = malloc((size_t)(total * in) * sizeof *wf);
        rc = wf ? 0 : err_set(e, ERR_NOMEM, "out of memory");
        if (rc == 0) {
            q4_dequantize(&all, wf);
            rc = linear_init(l, ctx, wf, b, (int)in, (int)total, dt, act, e);
        }
    }
    q4_rows_fini(&all);
    free(wf);
    free(b);
    return rc;
}

int weights_stacked(struct weights *w, struct dnn_ctx *ctx, const char *const *bases,
                    const int64_t *outs, int n, int64_t in, bool has_bias, enum dtype_compute dt,
                    enum act act, struct linear *l, struct err *e)
{
    if (q4_is_quantized(w, bases[0]))
        return stacked_q4(w, ctx, bases, outs, n, in, has_bias, dt, act, l, e);
    if (w->q4.format && dt == DTYPE_COMPUTE_INT4)
        dt = DTYPE_COMPUTE_F32; /* what a 4-bit checkpoint left unquantized (lm_head) stays so */
    int64_t total = 0;
    for (int i = 0; i < n; i++)
        total += outs[i];
    float *wt = malloc((size_t)(total * in) * sizeof *wt);
    float *b = has_bias ? malloc((size_t)total * sizeof *b) : NULL;
    int rc = (!wt || (has_bias && !b)) ? err_set(e, ERR_NOMEM, "out of memory") : 0;
    int64_t row = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char name[320];
        float *wi = NULL, *bi = NULL;
        snprintf(name, sizeof name, "%s.weight", bases[i]);
        rc = weights_take(w, name, outs[i], in, &wi, e);
        snprintf(name, sizeof name, "%s.bias", bases[i]);
        if (rc == 0 && has_bias)
            rc = weights_take(w, name, outs[i], 0, &bi, e);
        if (rc == 0) {
            memcpy(wt + row * in, wi, (size_t)(outs[i] * in) * sizeof *wt);
            if (has_bias)
                memcpy(b + row, bi, (size_t)outs[i] * sizeof *b);
        }
        row += outs[i];
        free(wi);
        free(bi);
    }
    if (rc == 0)
        rc = linear_init(l, ctx, wt, b, (int)in, (int)total, dt, act, e);
    free(wt);
    free(b);
    return rc;
}

int weights_linear(struct weights *w, struct dnn_ctx *ctx, const char *base, int64_t in,
                   int64_t out, bool has_bias, enum dtype_compute dt, enum act act,
                   struct linear *l, struct err *e)
{
    const char *bases[1] = {base};
    return weights_stacked(w, ctx, bases, &out, 1, in, has_bias, dt, act, l, e);
}

int weights_load_model(const char *dir, enum dtype_compute dt, struct dnn_ctx *ctx, size_t size,
                       weights_load_fn *load, void (*unload)(void *model), void **out,
                       struct err *e)
{
    *out = NULL;
    void *model = calloc(1, size);
    if (!model)
        return err_set(e, ERR_NOMEM, "out of memory");
    struct weights w = {.dir = dir};
    int rc = load(model, &w, dt, ctx, e);
    weights_close(&w);
    /* loading churned the heap with f32 conversions of every tensor; glibc keeps the freed
     * pages of blocks under its (by then raised) mmap threshold: hand them back (bert-base int8:
     * 28 MB, docs/DECISIONS.md) */
    malloc_trim(0);
    if (rc) {
        unload(model);
        return rc;
    }
    *out = model;
    return 0;
}

int weights_check_unused(const struct weights *w, const char *model,
                         weights_ignorable_fn *ignorable, const void *arg, struct err *e)
{
    for (size_t i = 0; i < checkpoint_count(w->ck); i++) {
        const char *name = checkpoint_at(w->ck, i)->name;
        if (!w->used[i] && !(ignorable && ignorable(arg, name)))
            return err_set(e, ERR_FORMAT, "%s: tensor '%s' is not used by %s", w->dir, name, model);
    }
    return 0;
}
