/* linear_kind: how a struct linear (ops.h) stores and multiplies its weights, one row per
 * compute type in matmul.c's table: oneDNN's matmul on packed f32/bf16 weights (matmul.c), on
 * packed s8 weights with inferd's own quantize and epilogue around it (matmul_int8.c), or
 * inferd's own 4-bit weight-only kernel (matmul_q4.c). For engine/ops/ only. */
#ifndef INFERD_OPS_LINEAR_KIND_H
#define INFERD_OPS_LINEAR_KIND_H

#include "ops/ops.h"

struct linear_kind {
    /* Packs w (out, in) row-major f32 into l (shape, dt, act and bias already set). */
    int (*init)(struct linear *l, struct dnn_ctx *ctx, const float *w, struct err *e);
    /* y = act(x W^T + b), or y += it when add. M >= 1 and l initialized (checked). */
    int (*forward)(const struct linear *l, struct dnn_ctx *ctx, const float *x, float *y, int M,
                   int add, struct err *e);
};

/* Zeroes l and sets its shape, dt and act, with a copy of b (out) when not NULL; ERR_INVALID
 * for a bad shape, dt or act. linear_fini undoes it. */
int linear_begin(struct linear *l, const float *b, int in, int out, enum dtype_compute dt,
                 enum act act, struct err *e);

/* matmul.c's init for the oneDNN kinds: quantizes (INT8) and packs w (out, in) into l. */
int linear_dnnl_init(struct linear *l, struct dnn_ctx *ctx, const float *w, struct err *e);

/* The matmul primitive descriptor of l for M rows on weights in w_md (no residual sum);
 * INT8: s8 x s8 -> s32 with no bias and no post-ops. */
/* x (n) to s8 q on its own scale max |x| / 127 (1 for an all-zero row), rounded half away from
 * zero as INT8's activations are (matmul_int8.c); returns the scale. */
float int8_quantize_row(const float *x, int8_t *q, int n);

/* The common tail of a kind's matmul post-ops: l's activation, then the residual sum when
 * add, appended to po (s: the status so far), set on *attr; po destroyed, *attr destroyed and
 * NULL on failure ("what" names it in the error). */
int linear_finish_attr(const struct linear *l, int add, dnnl_post_ops_t po, dnnl_status_t s,
                       dnnl_primitive_attr_t *attr, const char *what, struct err *e);

int linear_matmul_pd(const struct linear *l, struct dnn_ctx *ctx, int M,
                     const dnnl_memory_desc_t *w_md, dnnl_primitive_desc_t *pd, struct err *e);

/* INT8 on AMX (matmul_int8_amx.c). int8_amx_layout_ok: 1 when the kernel can read the
 * weights oneDNN packed as md (K, N) (its AMX layout, K a multiple of 64, the CPU and the
 * process allowed AMX); else oneDNN's path runs. int8_amx_rows: the rows of the s8 activations the
 * kernel reads (M padded to 32; the padding rows zero). int8_amx_forward: with heads NULL, y (M, N)
 * (+)= act(xq W^T * sx * sw + b) and returns max |y|; with heads, those values as
 * linear_forward_heads writes them (bf16 q, k, v heads of shape sh; int8_amx_heads_ok). */
int int8_amx_layout_ok(const dnnl_memory_desc_t *md, int K, int N);
size_t int8_amx_rows(int M);
int int8_amx_heads_ok(const struct attn_shape *sh);
float int8_amx_forward(const struct linear *l, const int8_t *xq, int M, float sx, float *y, int add,
                       const struct attn_shape *sh, uint16_t *heads);

/* Where linear_forward_heads puts output row r's columns of head channel c (c = column /
 * head_dim: part c / n_heads of q, k, v, head c % n_heads): the start of that head's row in
 * the (3, batch, n_heads, seq, head_dim) bf16 heads. Both INT8 paths write through it. */
static inline uint16_t *int8_head_row(const struct attn_shape *sh, uint16_t *heads, size_t r,
                                      size_t c)
{
    size_t S = (size_t)sh->seq, NH = (size_t)sh->n_heads, D = (size_t)sh->head_dim;
    size_t part = (size_t)sh->batch * NH * S * D;
    return heads + c / NH * part + ((r / S * NH + c % NH) * S + r % S) * D;
}

/* matmul_int8.c's epilogue on a block: y[i, j] (+)= act(c[i, j] * s * sw[j] + b[j]) for rows
 * i < rows (stride ldc in c, ldy in y), columns j < cols; returns max |y| of the block. */
float int8_block_out(const int32_t *c, int ldc, int rows, int cols, const float *sw, const float *b,
                     float s, enum act a, float *y, size_t ldy, int add);

extern const struct linear_kind linear_kind_dnnl; /* matmul.c */
extern const struct linear_kind linear_kind_int8; /* matmul_int8.c */
extern const struct linear_kind linear_kind_q4;   /* matmul_q4.c */

/* INT4's many-token forward (matmul_q4_gemm.c): y = act(x W^T + b) (+ y when add) through
 * s8-widened weight tiles and oneDNN's int8 matmul, activations quantized per token. */
int q4_gemm_forward(const struct linear *l, struct dnn_ctx *ctx, const float *x, float *y, int M,
                    int add, struct err *e);

/* INT4's few-token kernel (matmul_q4_dot.c), s8 activations per group and integer dot
 * products: q4_dot_quantize fills a scratch of q4_dot_scratch(l, M) bytes from x (M, in), then
 * q4_dot_rows writes y[m, n] = x W^T (no bias) for output rows [n0, n1) (threads may share the
 * scratch, each its own rows). */
size_t q4_dot_scratch(const struct linear *l, int M);
void q4_dot_quantize(const struct linear *l, const float *x, int M, void *scratch);
void q4_dot_rows(const struct linear *l, const void *scratch, int M, float *y, int n0, int n1);

#endif
