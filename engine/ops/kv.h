/* kv: the ops a decoder step needs beyond ops.h: rotary position embeddings (ops/rope.c) and
 * causal attention of new tokens over a per-sequence KV cache (ops/kv_attention.c).
 * Both run on plain f32 buffers the caller owns, row-major with explicit row strides; they own
 * no memory between calls and do not know which model they serve (models/decoder*.c do). */
#ifndef INFERD_OPS_KV_H
#define INFERD_OPS_KV_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* ---- rope.c -------------------------------------------------------------------------- */

/* The RoPE variants transformers' ROPE_INIT_FUNCTIONS has for the LLaMA family
 * (config "rope_scaling" / "rope_parameters" rope_type). */
enum rope_type {
    ROPE_DEFAULT, /* "default" (or no scaling object) */
    ROPE_LINEAR,  /* "linear": inv_freq / factor */
    ROPE_DYNAMIC, /* "dynamic": NTK-aware base growing with the sequence past the maximum */
    ROPE_LLAMA3,  /* "llama3": low frequencies / factor, a smooth ramp between */
    ROPE_LONGROPE, /* "longrope" (Phi-3): per-frequency factors, short ones up to the original
                      length, long ones past it; cos and sin scaled by attention_factor */
};

struct rope_params {
    enum rope_type type;
    int dim;      /* rotated dimensions per head (even): head_dim */
    double theta; /* rope_theta, the base */
    double factor;
    double low_freq_factor, high_freq_factor; /* llama3 */
    int64_t original_max_position_embeddings; /* llama3; longrope: where the long factors start */
    int64_t max_position_embeddings;          /* dynamic: the trained length */
    const double *short_factor, *long_factor; /* longrope: (n_factors = dim / 2) each, not owned */
    size_t n_factors;
    double attention_factor; /* longrope: cos and sin multiplied by it (1 for the others) */
};

/* Parses a rope_type name; ERR_FORMAT naming it for one we lack (yarn, longrope, ...). */
int rope_parse_type(const char *name, enum rope_type *out, struct err *e);

/* Checks that p has what its type needs (factor >= 1, llama3's frequency factors, ...);
 * ERR_FORMAT with a message naming the field. */
int rope_check(const struct rope_params *p, struct err *e);

/* inv_freq (dim / 2) as transformers computes it in float32, for a sequence whose highest
 * position in the current forward pass is seq_len - 1. Only ROPE_DYNAMIC (transformers'
 * dynamic_rope_update: base grows once seq_len > max_position_embeddings) and ROPE_LONGROPE
 * (the long factors once seq_len > original_max_position_embeddings) depend on seq_len. */
void rope_inv_freq(const struct rope_params *p, int64_t seq_len, float *inv_freq);

/* cos and sin (dim / 2) of position pos: cos(pos * inv_freq[i]) in float32, as HF's
 * (inv_freq @ position_ids).cos() (the second half of HF's cos/sin repeats the first). */
void rope_cos_sin(const float *inv_freq, int half, int64_t pos, float *cos_out, float *sin_out);

/* Rotates n_heads heads of dim floats, starting at x, in place (HF's rotate_half convention:
 * x1 = x[:dim/2], x2 = x[dim/2:], out = [x1 cos - x2 sin, x2 cos + x1 sin]), with cos, sin
 * (dim / 2) of the token's position. */
void rope_rotate(float *x, int n_heads, int dim, const float *cos_v, const float *sin_v);
/* The same on the first dim floats of n_heads heads stride floats apart (partial rotary
 * embeddings: the rest of each head is left as it is). */
void rope_rotate_strided(float *x, int n_heads, int stride, int dim, const float *cos_v,
                         const float *sin_v);

/* ---- kv_attention.c ------------------------------------------------------------------ */

/* The key cache is kept in blocks of KV_BLOCK positions; inside a block, each kv head's keys
 * are transposed, (head_dim, KV_BLOCK), so that a query meets KV_BLOCK keys in head_dim
 * vector multiply-adds with no horizontal sums. Key d of kv head g at position p is
 *     k[((p / KV_BLOCK) * n_kv_heads + g) * head_dim * KV_BLOCK + d * KV_BLOCK + p % KV_BLOCK].
 * Blocks follow each other, so a cache grows by appending (realloc keeps what it holds).
 * Values stay row-major: value d of kv head g at position p is v[p * ld_kv + g * head_dim + d]. */
#define KV_BLOCK 16

/* Floats a key cache for n_positions positions takes (whole blocks). */
size_t kv_key_cache_floats(int n_positions, int n_kv_heads, int head_dim);

/* Writes the keys of one position, key (n_kv_heads * head_dim) as a projection produces them,
 * into the blocked key cache k. */
void kv_store_key(float *k, int n_kv_heads, int head_dim, int pos, const float *key);

/* The geometry of one attention call, shared by every sequence in it. */
struct kv_attn {
    int n_heads;    /* query heads */
    int n_kv_heads; /* key/value heads; query head h reads kv head h / (n_heads / n_kv_heads) */
    int head_dim;
    int ld_q;    /* floats between consecutive query rows (>= n_heads * head_dim) */
    int ld_kv;   /* floats between consecutive value rows (>= n_kv_heads * head_dim) */
    int ld_out;  /* floats between consecutive output rows (>= n_heads * head_dim) */
    float scale; /* scores = (q . k) * scale */
    int window;  /* 0: full causal; else the query at position i sees keys i - window < j <= i */
    float softcap; /* 0: none; else scores = softcap * tanh(scores / softcap) (Gemma 2) */
};

/* One sequence of a step: n_new queries at positions past .. past + n_new - 1, whose keys and
 * values are already in the caches at positions 0 .. past + n_new - 1. */
struct kv_attn_seq {
    const float *q; /* (n_new, ld_q), head h at q + h * head_dim */
    const float *k; /* blocked key cache (see KV_BLOCK) */
    const float *v; /* (past + n_new, ld_kv), kv head g at v + g * head_dim */
    float *out;     /* (n_new, ld_out) */
    int past, n_new;
};

/* out = softmax(cap(q k^T * scale) + causal/window mask) v per head, for every sequence, as HF's
 * eager attention of a decoder with a KV cache (softmax in f32, probabilities normalized before
 * they weigh v). The work (sequence, kv head, block of queries) is spread over the calling
 * thread's OpenMP threads. ERR_NOMEM when the per-thread score rows cannot be allocated. */
int kv_attention_forward(const struct kv_attn *a, const struct kv_attn_seq *seqs, int n_seqs,
                         struct err *e);

#endif
