/* activations: HF activation names -> enum act -> oneDNN eltwise algorithms; standalone
 * in-place activation and softmax primitives (the matmul fuses activations as post-ops). */
#include <string.h>

#include "ops/ops.h"

static const struct {
    const char *name; /* HF ACT2FN key */
    enum act act;
} act_names[] = {
    {"gelu", ACT_GELU_ERF},       {"gelu_new", ACT_GELU_TANH}, {"gelu_pytorch_tanh", ACT_GELU_TANH},
    {"gelu_fast", ACT_GELU_TANH}, {"relu", ACT_RELU},          {"silu", ACT_SILU},
    {"swish", ACT_SILU},          {"linear", ACT_NONE},
};

int act_parse(const char *hidden_act, enum act *out, struct err *e)
{
    for (size_t i = 0; i < sizeof act_names / sizeof act_names[0]; i++) {
        if (strcmp(hidden_act, act_names[i].name) == 0) {
            *out = act_names[i].act;
            return 0;
        }
    }
    return err_set(e, ERR_INVALID, "hidden_act '%s' is not supported", hidden_act);
}

const char *act_name(enum act a)
{
    switch (a) {
    case ACT_NONE: return "none";
    case ACT_GELU_ERF: return "gelu";
    case ACT_GELU_TANH: return "gelu_new";
    case ACT_RELU: return "relu";
    case ACT_SILU: return "silu";
    default: return "?";
    }
}

int act_dnnl_alg(enum act a, dnnl_alg_kind_t *alg, float *alpha, struct err *e)
{
    *alpha = 0.0f;
    switch (a) {
    case ACT_GELU_ERF: *alg = dnnl_eltwise_gelu_erf; return 0;
    case ACT_GELU_TANH: *alg = dnnl_eltwise_gelu_tanh; return 0;
    case ACT_RELU: *alg = dnnl_eltwise_relu; return 0; /* alpha 0: plain relu */
    case ACT_SILU:
        *alg = dnnl_eltwise_swish; /* x * sigmoid(alpha x) */
        *alpha = 1.0f;
        return 0;
    default: return err_set(e, ERR_INVALID, "activation %d has no oneDNN eltwise", (int)a);
    }
}

/* The eltwise primitive for (alg, n) on a flat (n) tensor, created on first use. */
static int eltwise_prim(struct dnn_ctx *ctx, enum act a, size_t n, struct dnn_prim **out,
                        struct err *e)
{
    struct dnn_key key = {.kind = DNN_KIND_ELTWISE, .v = {(int64_t)a, (int64_t)n}};
    *out = dnn_cache_find(ctx, &key);
    if (*out)
        return 0;
    dnnl_alg_kind_t alg = dnnl_alg_kind_undef;
    float alpha;
    int rc = act_dnnl_alg(a, &alg, &alpha, e);
    if (rc != 0)
        return rc;
    dnnl_memory_desc_t md;
    dnnl_dims_t dims = {(dnnl_dim_t)n};
    dnnl_status_t s = dnnl_memory_desc_init_by_tag(&md, 1, dims, dnnl_f32, dnnl_a);
    dnnl_eltwise_desc_t desc;
    if (s == dnnl_success)
        s = dnnl_eltwise_forward_desc_init(&desc, dnnl_forward_inference, alg, &md, alpha, 0.0f);
    if (s != dnnl_success)
        return dnn_fail(s, e, "eltwise desc");
    dnnl_primitive_desc_t pd;
    rc = dnn_pd_plain(ctx, &desc, "eltwise primitive desc", &pd, e);
    if (rc != 0)
        return rc;
    static const int args[] = {DNNL_ARG_SRC, DNNL_ARG_DST};
    return dnn_cache_add(ctx, &key, pd, args, NULL, 2, out, e);
}

int act_forward(struct dnn_ctx *ctx, enum act a, float *x, size_t n, struct err *e)
{
    if (a == ACT_NONE || n == 0)
        return 0;
    if (a < 0 || a >= ACT_COUNT)
        return err_set(e, ERR_INVALID, "act_forward: activation %d out of range", (int)a);
    struct dnn_prim *p;
    int rc = eltwise_prim(ctx, a, n, &p, e);
    if (rc != 0)
        return rc;
    void *bufs[] = {x, x};
    return dnn_exec(ctx, p, bufs, e);
}

int softmax_forward(struct dnn_ctx *ctx, float *x, int rows, int cols, struct err *e)
{
    if (rows <= 0 || cols <= 0)
        return err_set(e, ERR_INVALID, "softmax_forward: shape (%d, %d)", rows, cols);
    struct dnn_key key = {.kind = DNN_KIND_SOFTMAX, .v = {rows, cols}};
    struct dnn_prim *p = dnn_cache_find(ctx, &key);
    if (!p) {
        dnnl_memory_desc_t md;
        dnnl_dims_t dims = {rows, cols};
        dnnl_status_t s = dnnl_memory_desc_init_by_tag(&md, 2, dims, dnnl_f32, dnnl_ab);
        dnnl_softmax_v2_desc_t desc;
        if (s == dnnl_success)
            s = dnnl_softmax_v2_forward_desc_init(&desc, dnnl_forward_inference,
                                                  dnnl_softmax_accurate, &md, &md, 1);
        if (s != dnnl_success)
            return dnn_fail(s, e, "softmax desc");
        dnnl_primitive_desc_t pd;
        int rc = dnn_pd_plain(ctx, &desc, "softmax primitive desc", &pd, e);
        if (rc != 0)
            return rc;
        static const int args[] = {DNNL_ARG_SRC, DNNL_ARG_DST};
        rc = dnn_cache_add(ctx, &key, pd, args, NULL, 2, &p, e);
        if (rc != 0)
            return rc;
    }
    void *bufs[] = {x, x};
    return dnn_exec(ctx, p, bufs, e);
}
