/* decoder: causal language models for text generation: GPT-2 and the LLaMA family (LLaMA,
 * Mistral, Qwen2, Qwen3, Gemma, Gemma 2, Gemma 3, Phi-3: RMSNorm, rotary embeddings with
 * default/linear/dynamic/llama3/longrope scaling, whole or partial, SwiGLU or GeGLU,
 * grouped-query attention, optional q/k/v biases, q/k norms, soft-capping and sliding windows,
 * per layer), as one decoder with per-architecture rows. It owns the weights (linears prepacked for oneDNN at load, shared
 * read-only by every worker), each sequence's KV cache (struct decoder_seq) and per-worker
 * activations (struct decoder_run). It knows nothing of tokenizers, sampling or scheduling.
 *
 * A step runs any mix of sequences at once, each with its own number of new tokens (a whole
 * prompt to prefill, or the one token a decode step feeds back), as continuous batching needs:
 * every linear runs once over all new tokens of all sequences (M = their total); attention runs
 * per sequence over its own cache. A long prompt may also be fed in chunks over several steps
 * (the logits of a chunk that does not end the prompt are simply not used).
 *
 * Threads: a loaded decoder_model is read-only and shared by every worker; each worker has its
 * own struct dnn_ctx and struct decoder_run; a decoder_seq belongs to one step at a time.
 *
 *     struct decoder_model *d;
 *     decoder_load("models/llama", DTYPE_COMPUTE_F32, ctx, &d, &e);
 *     struct decoder_seq *a, *b;
 *     decoder_seq_new(d, 1024, &a, &e);                 // room for 1024 tokens (prompt + output)
 *     decoder_seq_new(d, 1024, &b, &e);
 *     struct decoder_run *run = decoder_run_new();
 *     // prefill a's 5-token prompt and decode one token of b in the same step
 *     struct decoder_seq *seqs[] = {a, b};
 *     int32_t tokens[] = {1, 9038, 2501, 263, 931, next_b};
 *     int n_tokens[] = {5, 1};
 *     struct decoder_step st = {.n_seqs = 2, .seqs = seqs, .tokens = tokens, .n_tokens = n_tokens};
 *     const float *logits;                              // (2, vocab): last position of each
 *     decoder_forward(d, ctx, run, &st, &logits, &e);
 *     int32_t next_a = decoder_argmax(logits, decoder_vocab_size(d));
 *     decoder_seq_reset(b);                             // b's stream ended: its slot is free
 */
#ifndef INFERD_DECODER_H
#define INFERD_DECODER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "loader/hf_config.h"
#include "ops/ops.h"

struct decoder_model;
struct decoder_seq;
struct decoder_run;

/* Loads DIR (config.json + weights: loader/checkpoint.h). model_type one of
 * decoder_model_types; anything else is ERR_FORMAT naming it. Every tensor of the file must be used (or be
 * one of HF's known buffers, or a tied lm_head copy); a missing tensor or one whose shape
 * disagrees with config.json is ERR_FORMAT naming the tensor. dt picks the linears' arithmetic
 * (DTYPE_COMPUTE_F32 matches transformers to ~1e-5; BF16 and INT8 as ops.h describes). */
/* The config.json model_types decoder_load runs: up to max into out; returns how many. */
size_t decoder_model_types(const char **out, size_t max);

int decoder_load(const char *dir, enum dtype_compute dt, struct dnn_ctx *ctx,
                 struct decoder_model **out, struct err *e);
void decoder_unload(struct decoder_model *d);

const struct hf_config *decoder_config(const struct decoder_model *d);
int decoder_vocab_size(const struct decoder_model *d);
/* The highest number of positions a sequence may reach: GPT-2's n_positions (its learned
 * position table); the LLaMA family's max_position_embeddings (a soft limit transformers does
 * not enforce: callers may allow longer caches, rotary positions go on). */
int64_t decoder_max_positions(const struct decoder_model *d);
/* Bytes one cached token takes in a sequence's KV cache (2 x layers x kv heads x head_dim
 * floats), for sizing max_batch_total_tokens. */
size_t decoder_kv_bytes_per_token(const struct decoder_model *d);

/* ---- KV cache: one per sequence ------------------------------------------------------- */

/* A sequence with room for max_tokens tokens (prompt + generated) in its KV cache. Memory
 * grows with use (doubling) up to max_tokens, and is kept across decoder_seq_reset. For GPT-2
 * max_tokens may not exceed decoder_max_positions (ERR_INVALID). */
int decoder_seq_new(const struct decoder_model *d, int max_tokens, struct decoder_seq **out,
                    struct err *e);
void decoder_seq_free(struct decoder_seq *s);
/* Empties the cache (O(1), memory kept): the slot can take a new sequence. */
void decoder_seq_reset(struct decoder_seq *s);
/* dst becomes a copy of src's cached positions (only those: a beam forked from another);
 * both of one model. ERR_NOMEM / ERR_TOO_LARGE when dst cannot hold them (dst unchanged). */
int decoder_seq_copy(struct decoder_seq *dst, const struct decoder_seq *src, struct err *e);
/* dst holds src's first n cached positions (0 <= n <= src's length), what a sequence whose
 * tokens start with those n needs (prefix caching); dst == src cuts src in place (O(1)).
 * ERR_INVALID when they cannot be cut there: a LongRoPE model (Phi-3) whose cache passed the
 * switch has every key rotated with the long factors, which a sequence of n <= switch tokens
 * would not have. ERR_NOMEM / ERR_TOO_LARGE as decoder_seq_copy (dst unchanged). */
int decoder_seq_copy_prefix(struct decoder_seq *dst, const struct decoder_seq *src, int n,
                            struct err *e);
/* Tokens in the cache: the position the next token will take. */
int decoder_seq_len(const struct decoder_seq *s);
int decoder_seq_max_tokens(const struct decoder_seq *s);

/* ---- A forward step ------------------------------------------------------------------- */

struct decoder_step {
    int n_seqs;
    struct decoder_seq *const *seqs; /* (n_seqs) distinct sequences of this decoder */
    const int32_t *tokens;           /* the new tokens of seqs[0], then seqs[1], ... */
    const int *n_tokens;             /* (n_seqs) new tokens per sequence, each >= 1 */
    bool all_logits;                 /* logits of every new token, not only each last one */
    bool hidden; /* the final hidden states (after the final norm, H wide) instead of logits:
                    the only output of a backbone without lm_head (decoder_load_backbone) */
};

/* Per-worker activation buffers, grown as steps get larger and reused (no malloc when warm). */
struct decoder_run *decoder_run_new(void);
void decoder_run_free(struct decoder_run *r);

/* Appends each sequence's new tokens to its cache and computes next-token logits: *logits
 * (n_seqs, vocab), the last new token of each sequence in order, or with all_logits
 * (sum of n_tokens, vocab), every new token in input order; with hidden, the same rows of the
 * final-normed hidden states, H wide instead of vocab. *logits points into run memory,
 * valid until the next call with run. Everything is checked before any cache changes: a
 * token id outside the vocabulary, a sequence without room (ERR_TOO_LARGE), a sequence
 * listed twice or belonging to another decoder are ERR_INVALID and leave every cache as it
 * was; so does any failure later in the step (the lengths advance only on success), except
 * that a sequence crossing a LongRoPE switch (Phi-3: its cached tokens are fed again, rotated
 * with the long factors) may have its cached keys changed: reset it after such a failure. */
int decoder_forward(const struct decoder_model *d, struct dnn_ctx *ctx, struct decoder_run *run,
                    const struct decoder_step *step, const float **logits, struct err *e);

/* The index of the largest of logits[0 .. n), the lowest on ties (torch.argmax). */
int32_t decoder_argmax(const float *logits, int n);

#endif
