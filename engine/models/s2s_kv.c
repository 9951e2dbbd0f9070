/* s2s_kv: see s2s_kv.h. */
#include "s2s_kv.h"

#include <string.h>

#include "grow.h"

int s2s_kv_init(struct s2s_kv *kv, int n_layers, int width, int max_input, int max_tokens,
                struct err *e)
{
    *kv = (struct s2s_kv){0};
    if (max_input <= 0 || max_tokens <= 0)
        return err_set(e, ERR_INVALID,
                       "a sequence needs room for at least one input and one output token, "
                       "not %d and %d",
                       max_input, max_tokens);
    kv->n_layers = n_layers;
    kv->row = 2 * (size_t)width;
    kv->max_input = max_input;
    kv->max_tokens = max_tokens;
    kv->cross = layer_bufs_new(n_layers);
    kv->self = layer_bufs_new(n_layers);
    if (!kv->cross || !kv->self) {
        s2s_kv_fini(kv);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    return 0;
}

void s2s_kv_fini(struct s2s_kv *kv)
{
    layer_bufs_free(kv->cross, kv->n_layers);
    layer_bufs_free(kv->self, kv->n_layers);
    *kv = (struct s2s_kv){0};
}

void s2s_kv_reset(struct s2s_kv *kv)
{
    kv->in_len = 0;
    kv->len = 0;
    kv->input_of = NULL;
}

/* The next capacity for n rows: doubling from 16 up to max. */
static int grow_to(int cap, int n, int max)
{
    cap = cap ? cap : 16;
    while (cap < n)
        cap = cap > max / 2 ? max : cap * 2;
    return cap;
}

/* Grows every layer's buffer in bufs to cap rows; a failure leaves each valid at >= its old
 * size. */
static int grow_layers(const struct s2s_kv *kv, float **bufs, int cap, struct err *e)
{
    size_t n = (size_t)cap * kv->row;
    if (layer_bufs_grow(bufs, kv->n_layers, n, n, NULL) != 0)
        return err_set(e, ERR_NOMEM, "out of memory for a sequence of %d positions", cap);
    return 0;
}

int s2s_kv_reserve(struct s2s_kv *kv, int n_in, int n, struct err *e)
{
    if (n_in > kv->max_input || n > kv->max_tokens)
        return err_set(e, ERR_TOO_LARGE,
                       "%d input and %d decoder tokens exceed the room for %d and %d", n_in, n,
                       kv->max_input, kv->max_tokens);
    if (n_in > kv->in_cap && !kv->input_of) {
        int cap = grow_to(kv->in_cap, n_in, kv->max_input);
        int rc = grow_layers(kv, kv->cross, cap, e);
        if (rc)
            return rc;
        kv->in_cap = cap;
    }
    if (n > kv->cap) {
        int cap = grow_to(kv->cap, n, kv->max_tokens);
        int rc = grow_layers(kv, kv->self, cap, e);
        if (rc)
            return rc;
        kv->cap = cap;
    }
    return 0;
}

int s2s_kv_own_input(struct s2s_kv *kv, int n_in, struct err *e)
{
    kv->input_of = NULL;
    return s2s_kv_reserve(kv, n_in, 0, e);
}

int s2s_kv_copy(struct s2s_kv *dst, const struct s2s_kv *src, struct err *e)
{
    if (dst == src)
        return 0;
    int rc = s2s_kv_own_input(dst, src->in_len, e);
    if (rc == 0)
        rc = s2s_kv_reserve(dst, src->in_len, src->len, e);
    if (rc)
        return rc;
    for (int l = 0; l < src->n_layers; l++) {
        memcpy(dst->cross[l], s2s_kv_cross(src, l), (size_t)src->in_len * src->row * sizeof(float));
        memcpy(dst->self[l], src->self[l], (size_t)src->len * src->row * sizeof(float));
    }
    dst->in_len = src->in_len;
    dst->len = src->len;
    return 0;
}

int s2s_kv_fork(struct s2s_kv *dst, const struct s2s_kv *src, struct err *e)
{
    if (dst == src)
        return 0;
    const struct s2s_kv *owner = src->input_of ? src->input_of : src;
    dst->input_of = owner == dst ? NULL : owner; /* dst may be the one that encoded it */
    int rc = s2s_kv_reserve(dst, 0, src->len, e);
    if (rc)
        return rc;
    for (int l = 0; l < src->n_layers; l++)
        memcpy(dst->self[l], src->self[l], (size_t)src->len * src->row * sizeof(float));
    dst->in_len = src->in_len;
    dst->len = src->len;
    return 0;
}
