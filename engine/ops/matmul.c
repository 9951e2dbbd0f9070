/* matmul: struct linear, an HF nn.Linear y = act(x W^T + b): the table of weight kinds per
 * compute type (ops/linear_kind.h) and its first kind, weights prepacked once into the layout
 * oneDNN's matmul prefers (f32, bf16 or s8), with bias, activation and an optional residual
 * add fused into the f32/bf16 primitive as post-ops. One primitive per (M, shape, flags) is
 * created on first use and cached in the caller's struct dnn_ctx. INT8's forward pass is
 * matmul_int8.c's (this file quantizes and packs its weights), INT4 is matmul_q4.c's. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/bf16.h"
#include "ops/emb_table.h"
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

/* Appends l's activation and, when add, the residual sum to po (after whatever the kind put
 * first), sets po on *attr; po destroyed, *attr too on failure. */
int linear_finish_attr(const struct linear *l, int add, dnnl_post_ops_t po, dnnl_status_t s,
                       dnnl_primitive_attr_t *attr, const char *what, struct err *e)
{
    int rc = 0;
    if (s == dnnl_success && l->act != ACT_NONE) {
        dnnl_alg_kind_t alg = dnnl_alg_kind_undef;
        float alpha;
        rc = act_dnnl_alg(l->act, &alg, &alpha, e);
        if (rc == 0)
            s = dnnl_post_ops_append_eltwise(po, 1.0f, alg, alpha, 0.0f);
    }
    if (rc == 0 && s == dnnl_success && add)
        s = dnnl_post_ops_append_sum(po, 1.0f);
    if (rc == 0 && s == dnnl_success)
        s = dnnl_primitive_attr_set_post_ops(*attr, po);
    if (rc == 0 && s != dnnl_success)
        rc = dnn_fail(s, e, what);
    dnnl_post_ops_destroy(po);
    if (rc != 0) {
        dnnl_primitive_attr_destroy(*attr);
        *attr = NULL;
    }
    return rc;
}

/* Post-ops in application order (F32, BF16): the activation, then the residual sum. INT8
 * has none (matmul_int8.c's epilogue does it all). */
static int build_attr(const struct linear *l, int add, dnnl_primitive_attr_t *attr, struct err *e)
{
    dnnl_post_ops_t po = NULL;
    int rc = dnn_attr_new(attr, e);
    if (rc != 0 || l->dt == DTYPE_COMPUTE_INT8)
        return rc;
    dnnl_status_t s = dnnl_post_ops_create(&po);
    return linear_finish_attr(l, add, po, s, attr, "matmul attributes", e);
}

/* The matmul primitive descriptor for M tokens; weights in w_md (format any when NULL).
 * INT8: s8 x s8 -> s32, no bias, no post-ops. */
static int matmul_pd(const struct linear *l, struct dnn_ctx *ctx, int M,
                     const dnnl_memory_desc_t *w_md, int add, dnnl_primitive_desc_t *pd,
                     struct err *e)
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
        s = dnnl_memory_desc_init_by_tag(
            &dst_md, 2, dst_dims, l->dt == DTYPE_COMPUTE_INT8 ? dnnl_s32 : dnnl_f32, dnnl_ab);
    dnnl_matmul_desc_t desc;
    if (s == dnnl_success)
        s = dnnl_matmul_desc_init(&desc, &src_md, w_md, has_bias ? &bias_md : NULL, &dst_md);
    if (s != dnnl_success)
        return dnn_fail(s, e, "matmul desc");
    dnnl_primitive_attr_t attr;
    int rc = build_attr(l, add, &attr, e);
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
/* Per output channel, on the scale s8_row_quantize picks (emb_table.h: the least squared
 * error among max / k, k 120..127), so that an embedding table tied to this linear reads
 * exactly its own s8 rows back from the packed weights (emb_table_share). */
static void quantize_weights(const float *w, int in, int out, float *w_scales, int8_t *q)
{
#pragma omp parallel
    {
        int8_t *row_q = malloc((size_t)in);
#pragma omp for schedule(static)
        for (int n = 0; n < out; n++) {
            if (!row_q)
                continue;
            s8_row_quantize(w + (size_t)n * (size_t)in, in, row_q, &w_scales[n]);
            for (int k = 0; k < in; k++)
                q[(size_t)k * (size_t)out + (size_t)n] = row_q[k];
        }
        free(row_q);
    }
}

static const struct linear_kind *const kinds[DTYPE_COMPUTE_COUNT] = {
    [DTYPE_COMPUTE_F32] = &linear_kind_dnnl,
    [DTYPE_COMPUTE_BF16] = &linear_kind_dnnl,
    [DTYPE_COMPUTE_INT8] = &linear_kind_int8,
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

int linear_matmul_pd(const struct linear *l, struct dnn_ctx *ctx, int M,
                     const dnnl_memory_desc_t *w_md, dnnl_primitive_desc_t *pd, struct err *e)
{
    return matmul_pd(l, ctx, M, w_md, 0, pd, e);
}

int linear_dnnl_init(struct linear *l, struct dnn_ctx *ctx, const float *w, struct err *e)
{
    int in = l->in_features, out = l->out_features;
    enum dtype_compute dt = l->dt;
    int8_t *q = NULL; /* INT8: (in, out) quantized W^T */
    dnnl_primitive_desc_t pd = NULL;
    int rc = matmul_pd(l, ctx, PACK_M, NULL, 0, &pd, e);
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
        l->amx = rc == 0 && int8_amx_mode() && int8_amx_layout_ok(&l->w_md, in, out);
    } else {
        rc = pack_weights(l, ctx, w, dnnl_f32, dnnl_ba, e);
    }
fail:
    free(q);
    return rc;
}

/* Element (i0, i1) of a 2-D oneDNN blocked layout: its index in elements (inner blocks
 * innermost first, then the outer block indices by their strides). */
static size_t blocked_index(const dnnl_memory_desc_t *md, int64_t i0, int64_t i1)
{
    const dnnl_blocking_desc_t *bd = &md->format_desc.blocking;
    int64_t idx[2] = {i0, i1};
    size_t off = 0, inner = 1;
    for (int i = bd->inner_nblks - 1; i >= 0; i--) {
        int d = (int)bd->inner_idxs[i];
        int64_t b = bd->inner_blks[i];
        off += (size_t)(idx[d] % b) * inner;
        idx[d] /= b;
        inner *= (size_t)b;
    }
    return (size_t)md->offset0 + off + (size_t)idx[0] * (size_t)bd->strides[0] +
           (size_t)idx[1] * (size_t)bd->strides[1];
}

int linear_row_offsets(const struct linear *l, size_t *k_off, struct err *e)
{
    if (!l->w_packed || l->dt == DTYPE_COMPUTE_INT4 || l->w_md.format_kind != dnnl_blocked ||
        l->w_md.ndims != 2)
        return err_set(e, ERR_INVALID, "linear_row_offsets: a (%d, %d) %s linear", l->out_features,
                       l->in_features, l->dt == DTYPE_COMPUTE_INT4 ? "int4" : "unpacked");
    size_t base = blocked_index(&l->w_md, 0, 0); /* W^T (in, out): element (k, n) */
    for (int k = 0; k < l->in_features; k++)
        k_off[k] = blocked_index(&l->w_md, k, 0) - base;
    return 0;
}

void linear_read_row(const struct linear *l, const size_t *k_off, int64_t n, float *dst)
{
    size_t at = blocked_index(&l->w_md, 0, n); /* a blocked index is a sum over the dims */
    int K = l->in_features;
    if (l->dt == DTYPE_COMPUTE_INT8) {
        const int8_t *q = (const int8_t *)l->w_packed + at;
        float sc = l->w_scales[n];
        for (int k = 0; k < K; k++)
            dst[k] = (float)q[k_off[k]] * sc;
    } else if (l->dt == DTYPE_COMPUTE_BF16) {
        const uint16_t *b = (const uint16_t *)l->w_packed + at;
        for (int k = 0; k < K; k++) {
            uint32_t u = (uint32_t)b[k_off[k]] << 16;
            memcpy(&dst[k], &u, sizeof u);
        }
    } else {
        const float *f = (const float *)l->w_packed + at;
        for (int k = 0; k < K; k++)
            dst[k] = f[k_off[k]];
    }
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
        rc = matmul_pd(l, ctx, M, &l->w_md, add, &pd, e);
        if (rc != 0)
            return rc;
        int args[DNN_MAX_ARGS] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
        int n = 3;
        if (l->bias) {
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
    }
    return dnn_exec(ctx, p, bufs, e);
}

const struct linear_kind linear_kind_dnnl = {linear_dnnl_init, matmul_forward};

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
