/* t5: the T5 encoder-decoder (T5ForConditionalGeneration) for text2text-generation
 * (summarization, translation): T5LayerNorm (RMS, no mean, no bias), attention without the
 * 1/sqrt(d) scaling and with learned relative position buckets (bidirectional in the encoder,
 * causal in the decoder; the bias table lives in each stack's first layer and serves every
 * layer), ReLU or gated-GELU feed-forward (config "feed_forward_proj"), cross-attention of the
 * decoder over the encoder output, and the head tied to the shared embeddings. It owns the
 * weights (linears prepacked for oneDNN at load, shared read-only by every worker), each
 * sequence's state (struct t5_seq) and per-worker activations (struct t5_run). It knows
 * nothing of tokenizers, sampling or scheduling.
 *
 * The API mirrors models/decoder.h so that one continuous-batching scheduler drives both:
 * a sequence is "prefilled" by t5_encode, which runs the encoder over its input ids and keeps
 * what the decoder needs from it (per decoder layer, the cross-attention keys and values of
 * every input position: the encoder output itself is not kept); then t5_forward steps any mix
 * of sequences at once, each with its new decoder tokens (the first step feeds
 * t5_decoder_start_token_id, later ones the token just chosen), appending to each sequence's
 * decoder self-attention cache and returning next-token logits. Several sequences may be
 * encoded in one t5_encode call (every linear runs once over all their tokens; attention runs
 * per sequence, so no padding is involved and each result equals encoding it alone).
 *
 * Threads: a loaded t5_model is read-only and shared by every worker; each worker has its own
 * struct dnn_ctx and struct t5_run; a t5_seq belongs to one call at a time. Attention runs on
 * the calling thread's OpenMP threads.
 *
 *     struct t5_model *m;
 *     t5_load("models/t5-small", DTYPE_COMPUTE_F32, ctx, &m, &e);
 *     struct t5_seq *a;
 *     t5_seq_new(m, 512, 64, &a, &e);               // up to 512 input ids, 64 decoder tokens
 *     struct t5_run *run = t5_run_new();
 *     struct t5_encode_batch enc = {.n_seqs = 1, .seqs = &a, .ids = ids, .n_ids = &n_ids};
 *     t5_encode(m, ctx, run, &enc, &e);             // "prefill": a's cross-attention K/V
 *     int32_t tok = t5_decoder_start_token_id(m);
 *     int one = 1;
 *     for (;;) {
 *         struct t5_step st = {.n_seqs = 1, .seqs = &a, .tokens = &tok, .n_tokens = &one};
 *         const float *logits;                      // (1, vocab)
 *         t5_forward(m, ctx, run, &st, &logits, &e);
 *         tok = decoder_argmax(logits, t5_vocab_size(m));
 *         if (tok is an eos id or enough tokens) break;
 *     }
 *     t5_seq_reset(a);                              // the slot can take a new input
 */
#ifndef INFERD_T5_H
#define INFERD_T5_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "loader/hf_config.h"
#include "ops/ops.h"

struct t5_model;
struct t5_seq;
struct t5_run;

/* Loads DIR (config.json + weights: loader/checkpoint.h), model_type "t5". Every tensor of
 * the file must be used (HF's tied copies encoder/decoder.embed_tokens.weight and a tied
 * lm_head.weight, and the unused EncDecAttention.relative_attention_bias of old checkpoints,
 * are accepted); a missing tensor or one whose shape disagrees with config.json is ERR_FORMAT
 * naming the tensor. The head: lm_head.weight when config.json says tie_word_embeddings false,
 * else the shared embeddings. The decoder output is scaled by d_model^-0.5 before the head
 * when config.json's "scale_decoder_outputs" (transformers 5) is true or, without that key,
 * when the embeddings are tied (transformers 4: original T5 scales, T5 v1.1 does not).
 * dt picks the linears' arithmetic as in ops.h. */
/* The config.json model_types t5_load runs ("t5"; "mt5": the T5 v1.1 layout, gated-GELU and
 * an untied head by MT5Config's defaults): up to cap into names; returns how many. */
size_t t5_model_types(const char **names, size_t cap);

int t5_load(const char *dir, enum dtype_compute dt, struct dnn_ctx *ctx, struct t5_model **out,
            struct err *e);
void t5_unload(struct t5_model *m);

const struct hf_config *t5_config(const struct t5_model *m);
int t5_vocab_size(const struct t5_model *m);
/* The first decoder token (config decoder_start_token_id, else pad_token_id, else 0). */
int32_t t5_decoder_start_token_id(const struct t5_model *m);
/* Whether the decoder output is scaled by d_model^-0.5 before the head (see t5_load). */
bool t5_scales_decoder_output(const struct t5_model *m);
/* Bytes one decoder token takes in a sequence's self-attention cache, and one input token in
 * its cross-attention keys and values (2 x decoder layers x heads x d_kv floats each). */
size_t t5_self_kv_bytes_per_token(const struct t5_model *m);
size_t t5_cross_kv_bytes_per_input_token(const struct t5_model *m);

/* ---- Sequences ------------------------------------------------------------------------ */

/* A sequence with room for max_input_tokens input ids and max_output_tokens decoder tokens
 * (the start token included). Memory grows with use up to these and is kept across
 * t5_seq_reset. ERR_INVALID when either is not positive. */
int t5_seq_new(const struct t5_model *m, int max_input_tokens, int max_output_tokens,
               struct t5_seq **out, struct err *e);
void t5_seq_free(struct t5_seq *s);
/* Forgets the input and the decoder tokens (O(1), memory kept): the slot is free. */
void t5_seq_reset(struct t5_seq *s);
/* dst becomes a copy of src (its encoded input and cached decoder positions: a beam forked
 * from another); ERR_NOMEM / ERR_TOO_LARGE when dst cannot hold them. */
int t5_seq_copy(struct t5_seq *dst, const struct t5_seq *src, struct err *e);
/* dst becomes a beam forked from src, of the same search: src's decoder positions copied, its
 * encoded input read from the sequence that encoded it (which the search keeps until its
 * end), not copied. */
int t5_seq_fork(struct t5_seq *dst, const struct t5_seq *src, struct err *e);
/* Input ids encoded (0: not encoded yet), decoder tokens cached. */
int t5_seq_input_len(const struct t5_seq *s);
int t5_seq_len(const struct t5_seq *s);
int t5_seq_max_input_tokens(const struct t5_seq *s);
int t5_seq_max_tokens(const struct t5_seq *s);

/* ---- Encoding (prefill) --------------------------------------------------------------- */

struct t5_encode_batch {
    int n_seqs;
    struct t5_seq *const *seqs; /* (n_seqs) distinct sequences of this model */
    const int32_t *ids;         /* the input ids of seqs[0], then seqs[1], ... */
    const int *n_ids;           /* (n_seqs) input ids per sequence, each >= 1 */
};

/* Per-worker activation buffers, grown as calls get larger and reused. */
struct t5_run *t5_run_new(void);
void t5_run_free(struct t5_run *r);

/* Runs the encoder over each sequence's input ids (no attention mask: every id counts, as
 * transformers with a mask of ones) and stores its cross-attention keys and values; each
 * sequence's decoder cache is emptied (it starts over from the start token). Everything is
 * checked first: an id outside the vocabulary, a sequence listed twice or of another model
 * are ERR_INVALID, more ids than its room ERR_TOO_LARGE; on any failure every sequence is
 * left as it was. */
int t5_encode(const struct t5_model *m, struct dnn_ctx *ctx, struct t5_run *run,
              const struct t5_encode_batch *batch, struct err *e);

/* ---- A decoder step ------------------------------------------------------------------- */

struct t5_step {
    int n_seqs;
    struct t5_seq *const *seqs; /* (n_seqs) distinct encoded sequences of this model */
    const int32_t *tokens;      /* the new decoder tokens of seqs[0], then seqs[1], ... */
    const int *n_tokens;        /* (n_seqs) new tokens per sequence, each >= 1 */
    bool all_logits;            /* logits of every new token, not only each last one */
};

/* Appends each sequence's new decoder tokens to its cache and computes next-token logits:
 * *logits (n_seqs, vocab), the last new token of each sequence in order, or with all_logits
 * (sum of n_tokens, vocab) every new token in input order. *logits points into run memory,
 * valid until the next call with run. Checked before any cache changes: a sequence not
 * encoded, listed twice or of another model, a token id outside the vocabulary are
 * ERR_INVALID, a sequence without room ERR_TOO_LARGE; on any failure every cache is left as
 * it was (lengths advance only on success). */
int t5_forward(const struct t5_model *m, struct dnn_ctx *ctx, struct t5_run *run,
               const struct t5_step *step, const float **logits, struct err *e);

/* ---- For tests ------------------------------------------------------------------------ */

/* transformers' T5Attention._relative_position_bucket for one relative position
 * (key position - query position), in the same float32 arithmetic. */
int t5_relative_bucket(int relative_position, bool bidirectional, int num_buckets,
                       int max_distance);

#endif
