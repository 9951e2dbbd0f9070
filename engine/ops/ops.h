/* ops: the compute of a forward pass on oneDNN: linear layers on prepacked weights with fused
 * bias, activation and residual (matmul.c), layer and RMS norm (norm.c), masked scaled
 * dot-product attention (attention.c), activations and softmax (activations.c).
 * Activations are f32, row-major, contiguous unless a leading dimension says otherwise; every
 * op runs on the caller's struct dnn_ctx (ops/dnnl.h) and returns 0 or a negative ERR_*.
 * Ops own no activation memory: callers pass buffers (worker scratch). */
#ifndef INFERD_OPS_H
#define INFERD_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "ops/dnnl.h"

/* ---- activations.c ------------------------------------------------------------------- */

/* Activation functions, named as in HF's ACT2FN (config.json "hidden_act"). */
enum act {
    ACT_NONE,
    ACT_GELU_ERF,  /* "gelu": x/2 (1 + erf(x/sqrt 2)) */
    ACT_GELU_TANH, /* "gelu_new", "gelu_pytorch_tanh", "gelu_fast": the tanh approximation */
    ACT_RELU,      /* "relu" */
    ACT_SILU,      /* "silu", "swish": x sigmoid(x) */
    ACT_COUNT
};

/* Parses an HF hidden_act name; ERR_INVALID (message names the value) for one we lack. */
int act_parse(const char *hidden_act, enum act *out, struct err *e);
const char *act_name(enum act a);

/* x = act(x) in place, x: (n). */
int act_forward(struct dnn_ctx *ctx, enum act a, float *x, size_t n, struct err *e);

/* Softmax over the last axis in place, x: (rows, cols). */
int softmax_forward(struct dnn_ctx *ctx, float *x, int rows, int cols, struct err *e);

/* The oneDNN eltwise algorithm of a (ACT_NONE has none: ERR_INVALID). For ops/ files. */
int act_dnnl_alg(enum act a, dnnl_alg_kind_t *alg, float *alpha, struct err *e);

/* ---- matmul.c ------------------------------------------------------------------------ */

/* A linear layer y = act(x W^T + b) with W prepacked once into oneDNN's preferred layout for
 * the compute type. Read-only after linear_init: one struct linear may be used by many
 * contexts (threads) at once; each context builds and caches its own primitives. */
struct linear {
    int in_features;  /* K */
    int out_features; /* N */
    enum dtype_compute dt;
    enum act act;
    dnnl_memory_desc_t w_md; /* the packed layout of W^T: logical (in_features, out_features) */
    void *w_packed;          /* owned, 64-byte aligned, dnnl_memory_desc_get_size(&w_md) bytes;
                                INT4: (out, in / 2) bytes of nibbles (matmul_q4.c's layout) */
    float *bias;             /* (out_features), owned; NULL without bias */
    float *w_scales;         /* INT8: (out_features) per-output-channel weight scales, owned;
                                INT4: (out, in / group) scale per group */
    uint8_t *w_zeros;        /* INT4: (out, in / group) zero point per group, owned */
    int group;               /* INT4: weights along in_features sharing a scale and zero */
    int amx;                 /* INT8: 1 when matmul_int8_amx.c's kernel reads w_packed (oneDNN's
                                AMX layout); 0 when the CPU or the shape has no AMX path */
};

/* Prepacks an HF nn.Linear: w (out, in) row-major f32, b (out) or NULL. ctx is only used for
 * the one-time reorder (any context works: the packed buffer is context-free).
 * BF16: weights rounded to bf16, activations converted per call, output f32.
 * INT8: weights quantized symmetric s8 per output channel, activations per call symmetric s8
 * per tensor (max |x| / 127), s32 accumulation, output f32 (ops/matmul_int8.c). */
int linear_init(struct linear *l, struct dnn_ctx *ctx, const float *w, const float *b, int in,
                int out, enum dtype_compute dt, enum act act, struct err *e);
void linear_fini(struct linear *l);
/* Rows of the weight read back from the packed weights, as the linear computes with them
 * (FP32 exact, BF16 rounded, INT8 q * scale): what lets a table tied to the linear
 * (emb_table_share) hold no copy of its own. The packed layout puts element (n, k) at
 * k_off[k] + (that of (n, 0)): linear_row_offsets fills k_off (in_features), ERR_INVALID for
 * INT4 or an unpacked linear; linear_read_row writes row n (< out_features) into dst. */
int linear_row_offsets(const struct linear *l, size_t *k_off, struct err *e);
void linear_read_row(const struct linear *l, const size_t *k_off, int64_t n, float *dst);

/* ---- matmul_q4.c: 4-bit weights ------------------------------------------------------- */

/* The weights per scale (along in_features) when linear_init quantizes to INT4. */
#define Q4_GROUP 128

/* A 4-bit weight (out, in) unpacked, one value per byte: w[n, k] = scale[n, g] * (q[n, k] -
 * zero[n, g]) with g = k / group: what a pre-quantized checkpoint (AWQ, GPTQ) or inferd's own
 * quantizer becomes before packing. group divides in and is a multiple of 32. */
struct q4_rows {
    int out, in, group;
    uint8_t *q;    /* (out, in), values 0..15 */
    float *scale;  /* (out, in / group) */
    uint8_t *zero; /* (out, in / group), 0..16 (GPTQ's stored zero + 1 may reach 16) */
};

/* Allocates r's arrays for (out, in) in groups of group (ERR_INVALID naming the shape unless
 * group is a multiple of 32 dividing in); q4_rows_fini frees them. */
int q4_rows_alloc(struct q4_rows *r, int out, int in, int group, struct err *e);
void q4_rows_fini(struct q4_rows *r);

/* Round-to-nearest asymmetric quantization of w (out, in) row-major per group of r->group:
 * scale = (max - min) / 15, zero = round(-min / scale) (the range always holds 0), q = clamp(
 * round(w / scale) + zero, 0, 15); an all-equal-zero group gets scale 1, zero 8. */
void q4_quantize(const float *w, struct q4_rows *r);

/* w (out, in) = scale * (q - zero), the dequantized weight. */
void q4_dequantize(const struct q4_rows *r, float *w);

/* A linear on pre-quantized weights r (shape taken from r), b (out) or NULL: INT4. */
int linear_init_q4(struct linear *l, const struct q4_rows *r, const float *b, enum act act,
                   struct err *e);

/* Tests: on = 1 makes every INT4 linear use the plain C loop instead of AVX2 (process-wide). */
void q4_set_plain(int on);
/* on = 0 keeps every INT4 linear on the f32 weight-only kernel at any token count; on = 1 (the
 * default) sends calls of 32 tokens or more to the s8 GEMM path (matmul_q4_gemm.c), which
 * also quantizes the activations per token (process-wide). */
void q4_set_gemm(int on);
/* The token count from which q4_set_gemm's s8 GEMM path takes a call (default Q4_GEMM_MIN_M in
 * matmul_q4.c); bench-q4 moves it to time both paths at the same M (process-wide). */
void q4_set_gemm_min(int m);
/* on = 1 keeps calls under 32 tokens on the f32 weight-only kernel (exactly x times the
 * dequantized weights: the oracle tests against transformers); on = 0 (the default) runs them
 * on matmul_q4_dot.c's kernel, activations quantized to s8 per group (process-wide). */
void q4_set_exact(int on);
/* Tests: the highest kernel matmul_q4_dot.c may pick: 0 plain C, 1 AVX2, 2 AVX512-VNNI, 3 AMX
 * (the default; each only where the CPU has it, AMX for groups of multiples of 128 from
 * q4_dot_set_amx_min tokens to 32). */
void q4_dot_set_isa(int cap);
/* The token count from which the AMX kernel takes a call (default Q4_AMX_MIN_M, measured by
 * bench-q4; tests and bench-q4 move it; process-wide). */
#define Q4_AMX_MIN_M 3
void q4_dot_set_amx_min(int m);

/* y = act(x W^T + b). x: (M, in), y: (M, out), not overlapping. The primitive for each M is
 * created on first use and cached in ctx. */
int linear_forward(const struct linear *l, struct dnn_ctx *ctx, const float *x, float *y, int M,
                   struct err *e);

/* y += act(x W^T + b): the residual add fused as a sum post-op. y: (M, out) holds the residual. */
int linear_forward_add(const struct linear *l, struct dnn_ctx *ctx, const float *x, float *y, int M,
                       struct err *e);

/* y += down(up(x)), a feed-forward block with the residual in y: x (M, up.in), y (M, down.out),
 * inter (M, up.out) the intermediate. Equal to linear_forward(up) then linear_forward_add(down)
 * through inter; two INT8 linears save a pass (up's epilogue finds inter's scale). */
int linear_ffn_forward(const struct linear *up, const struct linear *down, struct dnn_ctx *ctx,
                       const float *x, float *inter, float *y, int M, struct err *e);

/* An encoder's fused QKV projection l (INT8, out_features 3 * n_heads * head_dim) over x
 * (batch * seq, in) written as heads (3, batch, n_heads, seq, head_dim) bf16 (Q, K, V), the
 * layout attention_forward_heads reads: the values attention_forward_bf16 would gather from
 * linear_forward's f32 output, without that output. ERR_INVALID for another linear. */
struct attn_shape;
int linear_forward_heads(const struct linear *l, struct dnn_ctx *ctx, const float *x,
                         const struct attn_shape *s, uint16_t *heads, struct err *e);

/* Tests: on = 1 makes the INT8 quantize and epilogue use plain C loops (process-wide). */
void int8_set_plain(int on);

/* INT8 linears on AMX with the epilogue in the kernel (matmul_int8_amx.c) from INT8_AMX_MIN_M
 * rows: mode 0 off (oneDNN's matmul then matmul_int8.c's epilogue), 1 on where the CPU has AMX
 * and K is a multiple of 64. Process-wide; the default is INT8_AMX_DEFAULT, or the
 * environment's INFERD_INT8_AMX (0 or 1) read at the first INT8 linear_init. Weights are
 * packed for AMX at linear_init only when the mode is on then. */
void int8_set_amx(int mode);
int int8_amx_mode(void);
/* 1 when l's weights were packed for AMX (tests: which path ran). */
int int8_has_amx(const struct linear *l);

/* ---- norm.c -------------------------------------------------------------------------- */

/* y = LayerNorm(x + residual) * gamma + beta over the last axis, biased variance, as
 * torch.nn.LayerNorm. x, y: (M, N) (y may be x); residual: (M, N) or NULL; gamma, beta: (N). */
int layernorm_forward(struct dnn_ctx *ctx, const float *x, const float *residual, float *y,
                      const float *gamma, const float *beta, float eps, int M, int N,
                      struct err *e);

/* y = x / sqrt(mean(x^2) + eps) * weight over the last axis (LLaMA's RMSNorm), x, y: (M, N). */
int rmsnorm_forward(const float *x, float *y, const float *weight, float eps, int M, int N,
                    struct err *e);

/* ---- attention.c --------------------------------------------------------------------- */

/* The shape of one attention call. Q, K, V and the output are (batch, seq, n_heads*head_dim)
 * views with a row stride per token (ld_qkv, ld_out elements), so a fused QKV projection's
 * output (batch, seq, 3*hidden) is used in place: q = qkv, k = qkv + hidden, v = qkv + 2*hidden,
 * ld_qkv = 3*hidden. */
struct attn_shape {
    int batch;
    int seq;
    int n_heads;
    int head_dim;
    int ld_qkv; /* elements between consecutive tokens of q, k and v (>= n_heads*head_dim) */
    int ld_out; /* elements between consecutive tokens of out (>= n_heads*head_dim) */
    int window; /* 0: every key; else query i sees only keys j with |i - j| <= window (a local,
                   bidirectional window: ModernBERT's local layers) */
};

/* out = softmax(Q K^T / sqrt(head_dim) + mask_bias) V per head, as HF's eager attention:
 * attention_mask (batch, seq) of 0/1 (NULL: attend to all) becomes the additive bias
 * (1 - mask) * -FLT_MAX (torch.finfo(float32).min) on keys; s->window > 0 also gives -FLT_MAX
 * to keys farther than window from the query (HF's sliding_window_mask). Rows of padded
 * queries are computed like the others and are meant to be ignored. */
int attention_forward(struct dnn_ctx *ctx, const struct attn_shape *s, const float *q,
                      const float *k, const float *v, const int32_t *attention_mask, float *out,
                      struct err *e);

/* What some encoders change in the scores: the scale, and an additive bias between the scaled
 * (masked) scores and the softmax: MPNet's relative position bias (the same block for every
 * sequence), DeBERTa's disentangled content-to-position and position-to-content terms (a block
 * per sequence). */
struct attn_bias {
    float scale;      /* scores = Q K^T * scale; 0: 1/sqrt(head_dim) */
    const float *add; /* NULL, or (n, n_heads, seq, seq) added to the scores */
    bool per_seq;     /* n = batch (a block per sequence); false: n = 1, shared */
};

/* attention_forward with ab's scale and bias (ab NULL: attention_forward). */
int attention_forward_biased(struct dnn_ctx *ctx, const struct attn_shape *s, const float *q,
                             const float *k, const float *v, const int32_t *attention_mask,
                             const struct attn_bias *ab, float *out, struct err *e);

/* ---- attention_bf16.c ---------------------------------------------------------------- */

/* attention_forward with Q, K, V and the probabilities rounded to bf16 (f32 scores and output):
 * INT8 encoders' attention. Runs attention_forward instead for a local window or on a CPU
 * without native bf16. */
int attention_forward_bf16(struct dnn_ctx *ctx, const struct attn_shape *s, const float *q,
                           const float *k, const float *v, const int32_t *attention_mask,
                           float *out, struct err *e);

/* 1 when attention_forward_bf16 runs in bf16 for s (no window, native bf16): then
 * linear_forward_heads and attention_forward_heads may replace the QKV linear and it. */
int attention_bf16_native(const struct attn_shape *s);

/* attention_forward_bf16 on heads (3, batch, n_heads, seq, head_dim) bf16 (Q, K, V) that
 * linear_forward_heads wrote: the same result, without gathering them. */
int attention_forward_heads(struct dnn_ctx *ctx, const struct attn_shape *s, const uint16_t *heads,
                            const int32_t *attention_mask, float *out, struct err *e);

#endif
