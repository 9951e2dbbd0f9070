/* bart: the BART-like encoder-decoders as one model with a variant row per config.json
 * model_type: BART (BartForConditionalGeneration, and BartForSequenceClassification for
 * bart-large-mnli's zero-shot classification), mBART, Marian, M2M100 (NLLB-200 too) and
 * Pegasus. They share the layer: multi-head attention with biases and 1/sqrt(head_dim)
 * scaling, fc1 -> activation -> fc2, LayerNorms with biases, cross-attention of the decoder
 * over the encoder output; and differ in what the variant table says: learned positions with
 * offset 2 (BART, mBART) or sinusoidal ones (Marian and Pegasus: [sin | cos] halves; M2M100:
 * fairseq's table from padding_idx + 1), post-norm (BART, Marian) or pre-norm with a final
 * LayerNorm per stack (mBART, M2M100, Pegasus), layernorm_embedding (BART, mBART); and in what
 * config.json says: scale_embedding (embeddings * sqrt(d_model)), tied or untied head,
 * final_logits_bias (when the checkpoint has it), decoder_start_token_id.
 *
 * The API mirrors models/t5.h, so that the generation kind (generate/gen_bart.c) steps it
 * through gen_s2s.c as gen_t5.c steps T5: bart_encode runs the encoder over whole inputs and keeps per decoder
 * layer the cross-attention keys and values of each input position; bart_forward steps any
 * mix of sequences, each with its new decoder tokens, appending to its self-attention cache,
 * and returns next-token logits (or, with hidden, the decoder's final hidden states, which the
 * sequence classifier pools). It owns the weights (linears prepacked for oneDNN), each
 * sequence's state (struct bart_seq) and per-worker activations (struct bart_run); it knows
 * nothing of tokenizers, sampling or scheduling.
 *
 *     struct bart_model *m;
 *     bart_load("models/distilbart", DTYPE_COMPUTE_F32, ctx, &m, &e);
 *     struct bart_seq *a;
 *     bart_seq_new(m, 1024, 142, &a, &e);
 *     struct bart_run *run = bart_run_new();
 *     bart_encode(m, ctx, run, &(struct bart_encode_batch){1, &a, ids, &n_ids}, &e);
 *     int32_t tok = bart_decoder_start_token_id(m);
 *     struct bart_step st = {.n_seqs = 1, .seqs = &a, .tokens = &tok, .n_tokens = &one};
 *     bart_forward(m, ctx, run, &st, &logits, &e);   // (1, vocab); then feed the next token
 */
#ifndef INFERD_BART_H
#define INFERD_BART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "loader/hf_config.h"
#include "models/weights.h"
#include "ops/ops.h"

struct bart_model;
struct bart_seq;
struct bart_run;

/* The config.json model_types bart_load runs: up to cap into names; returns how many. */
size_t bart_model_types(const char **names, size_t cap);

/* Loads DIR (config.json + weights) of one of bart_model_types as a
 * *ForConditionalGeneration (lm_head.weight unless tied, final_logits_bias when present).
 * Every tensor of the file must be used (tied copies excepted); a missing one or a shape
 * config.json disagrees with is ERR_FORMAT naming it. */
int bart_load(const char *dir, enum dtype_compute dt, struct dnn_ctx *ctx, struct bart_model **out,
              struct err *e);
/* The same from an open checkpoint whose config is cfg (the encoder tasks' loader: encoder.c
 * has read config.json and opened w); classify: a BartForSequenceClassification
 * (classification_head.{dense,out_proj}, no lm_head). *out is freed by bart_unload, also
 * after a failure. */
int bart_load_weights(const struct hf_config *cfg, struct weights *w, enum dtype_compute dt,
                      struct dnn_ctx *ctx, bool classify, struct bart_model **out,
                      struct err *e);
void bart_unload(struct bart_model *m);

const struct hf_config *bart_config(const struct bart_model *m);
int bart_vocab_size(const struct bart_model *m);
int bart_hidden_size(const struct bart_model *m);
/* The largest position the position table covers (max_position_embeddings). */
int64_t bart_max_positions(const struct bart_model *m);
/* The first decoder token: config decoder_start_token_id, else bos_token_id, else pad. */
int32_t bart_decoder_start_token_id(const struct bart_model *m);

/* ---- Sequences (as t5.h) ---------------------------------------------------------------- */

int bart_seq_new(const struct bart_model *m, int max_input_tokens, int max_output_tokens,
                 struct bart_seq **out, struct err *e);
void bart_seq_free(struct bart_seq *s);
void bart_seq_reset(struct bart_seq *s);
/* dst becomes a copy of src (a forked beam). */
int bart_seq_copy(struct bart_seq *dst, const struct bart_seq *src, struct err *e);
/* dst becomes a beam forked from src, of the same search: src's decoder positions copied, its
 * encoded input read from the sequence that encoded it (which the search keeps until its
 * end), not copied. */
int bart_seq_fork(struct bart_seq *dst, const struct bart_seq *src, struct err *e);
int bart_seq_input_len(const struct bart_seq *s);
int bart_seq_len(const struct bart_seq *s);

/* ---- Encoding and decoder steps (as t5.h) ----------------------------------------------- */

struct bart_encode_batch {
    int n_seqs;
    struct bart_seq *const *seqs; /* (n_seqs) distinct sequences of this model */
    const int32_t *ids;           /* the input ids of seqs[0], then seqs[1], ... */
    const int *n_ids;             /* (n_seqs) each >= 1 */
};

struct bart_run *bart_run_new(void);
void bart_run_free(struct bart_run *r);

/* Runs the encoder over each sequence's ids (every id attended, as a mask of ones) and keeps
 * its cross-attention keys and values; each decoder cache starts over. Checked first (ids in
 * the vocabulary, positions within the table, room): on failure nothing changes. With enc_out
 * not NULL, *enc_out points at the encoder's last hidden states (sum n_ids, d_model) in run
 * memory (for tests). */
int bart_encode(const struct bart_model *m, struct dnn_ctx *ctx, struct bart_run *run,
                const struct bart_encode_batch *b, const float **enc_out, struct err *e);

struct bart_step {
    int n_seqs;
    struct bart_seq *const *seqs; /* (n_seqs) distinct encoded sequences */
    const int32_t *tokens;        /* new decoder tokens of seqs[0], then seqs[1], ... */
    const int *n_tokens;          /* (n_seqs) each >= 1 */
    bool all_logits;              /* a row for every new token, not only each last one */
    bool hidden;                  /* the decoder's final hidden states (d_model per row)
                                     instead of logits */
};

/* Appends each sequence's tokens to its cache and computes *out: (n_seqs or sum n_tokens,
 * vocab or d_model) in run memory. Checked before any cache changes (as t5_forward). */
int bart_forward(const struct bart_model *m, struct dnn_ctx *ctx, struct bart_run *run,
                 const struct bart_step *st, const float **out, struct err *e);

/* BartForSequenceClassification's head over pooled states x (n, d_model): dense, tanh,
 * out_proj into out (n, num_labels) (run memory). ERR_INVALID on a model loaded without it. */
int bart_classify(const struct bart_model *m, struct dnn_ctx *ctx, struct bart_run *run,
                  const float *x, int n, const float **out, struct err *e);
/* The number of labels of the classification head (0 without one). */
int bart_num_labels(const struct bart_model *m);

#endif
