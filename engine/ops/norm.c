/* norm: layer normalization on oneDNN's layer_normalization primitive (scale and shift as
 * separate arguments, oneDNN 2.6's dnnl_use_scale | dnnl_use_shift), with the residual add
 * before it done in a plain loop (oneDNN 2.6 cannot fuse it); RMS norm as a plain loop
 * (oneDNN 2.6 has no RMS flag). */
#include <math.h>
#include <string.h>

#include "ops/ops.h"

/* Up to this many elements (16 tokens of 1024) a layer norm runs on the calling thread: a
 * fork and barrier cost more (see dnn_serial_begin). */
#define SERIAL_MAX_ELEMS 16384

/* The layer-norm primitive for (M, N, eps), created on first use. */
static int layernorm_prim(struct dnn_ctx *ctx, int M, int N, float eps, struct dnn_prim **out,
                          struct err *e)
{
    uint32_t eps_bits;
    memcpy(&eps_bits, &eps, sizeof eps_bits);
    struct dnn_key key = {.kind = DNN_KIND_LAYERNORM, .v = {M, N, eps_bits}};
    *out = dnn_cache_find(ctx, &key);
    if (*out)
        return 0;
    dnnl_memory_desc_t md;
    dnnl_dims_t dims = {M, N};
    dnnl_layer_normalization_desc_t desc;
    dnnl_status_t s = dnnl_memory_desc_init_by_tag(&md, 2, dims, dnnl_f32, dnnl_ab);
    if (s == dnnl_success)
        s = dnnl_layer_normalization_forward_desc_init(&desc, dnnl_forward_inference, &md, NULL,
                                                       eps, dnnl_use_scale | dnnl_use_shift);
    if (s != dnnl_success)
        return dnn_fail(s, e, "layer norm desc");
    dnnl_primitive_desc_t pd;
    int rc = dnn_pd_plain(ctx, &desc, "layer norm primitive desc", &pd, e);
    if (rc != 0)
        return rc;
    static const int args[] = {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_SCALE, DNNL_ARG_SHIFT};
    return dnn_cache_add(ctx, &key, pd, args, NULL, 4, out, e);
}

int layernorm_forward(struct dnn_ctx *ctx, const float *x, const float *residual, float *y,
                      const float *gamma, const float *beta, float eps, int M, int N, struct err *e)
{
    if (M <= 0 || N <= 0)
        return err_set(e, ERR_INVALID, "layernorm_forward: shape (%d, %d)", M, N);
    if (!(eps > 0.0f))
        return err_set(e, ERR_INVALID, "layernorm_forward: eps %g", (double)eps);
    struct dnn_prim *p;
    int serial = dnn_serial_begin((size_t)M * (size_t)N <= SERIAL_MAX_ELEMS);
    int rc = layernorm_prim(ctx, M, N, eps, &p, e);
    if (rc != 0)
        goto done;
    if (residual) {
        /* y = x + residual (M, N), then normalize y in place (oneDNN allows src == dst). */
        size_t n = (size_t)M * (size_t)N;
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] + residual[i];
        x = y;
    }
    void *bufs[] = {(void *)x, y, (void *)gamma, (void *)beta};
    rc = dnn_exec(ctx, p, bufs, e);
done:
    dnn_serial_end(serial);
    return rc;
}

int rmsnorm_forward(const float *x, float *y, const float *weight, float eps, int M, int N,
                    struct err *e)
{
    if (M <= 0 || N <= 0)
        return err_set(e, ERR_INVALID, "rmsnorm_forward: shape (%d, %d)", M, N);
    for (int m = 0; m < M; m++) {
        const float *xr = x + (size_t)m * (size_t)N; /* (N) */
        float *yr = y + (size_t)m * (size_t)N;
        float ss = 0.0f;
        for (int i = 0; i < N; i++)
            ss += xr[i] * xr[i];
        float r = 1.0f / sqrtf(ss / (float)N + eps);
        for (int i = 0; i < N; i++)
            yr[i] = xr[i] * r * weight[i];
    }
    return 0;
}
