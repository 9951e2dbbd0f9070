/* attention_impl: what attention.c shares with attention_bf16.c inside engine/ops: the cached
 * scores matmul (Q K^T * scale, plus the mask bias as a post-op). */
#ifndef INFERD_OPS_ATTENTION_IMPL_H
#define INFERD_OPS_ATTENTION_IMPL_H

#include "ops/ops.h"

/* scores (nb, H, S, S) f32 = q k^T * scale (+ a bias (nb, 1, bias_rows, S) when masked), over
 * q_md (nb, H, S, D) and k_md (nb, H, D, S) views of the caller's choosing (f32 strided heads
 * or bf16 contiguous ones); created, cached under key, *out set. */
int attn_scores_prim(struct dnn_ctx *ctx, const struct dnn_key *key, const dnnl_memory_desc_t *q_md,
                     const dnnl_memory_desc_t *k_md, int bias_rows, int masked, float scale,
                     struct dnn_prim **out, struct err *e);

#endif
