/* encoder: the BERT family (BERT, RoBERTa, XLM-RoBERTa, DistilBERT, ALBERT, ELECTRA) and the
 * relative-position encoders (MPNet, DeBERTa-v2/v3) as one encoder with per-architecture
 * flags, and its task heads; architectures whose layers differ (ModernBERT) as families behind
 * the same API (models/encoder_family.h). It owns the weights:
 * linears prepacked for oneDNN at load (shared read-only by every worker) and float
 * copies of embeddings and norms. Per-call activations live in a struct encoder_run
 * that each worker owns and reuses (sized on first use, grown when a batch is larger).
 *
 *     struct encoder *m;
 *     encoder_load("models/bert-seqcls", DTYPE_COMPUTE_F32, ctx, &m, &e);
 *     struct encoder_batch b = {.batch = 1, .seq = 5, .ids = ids, .mask = mask};
 *     const float *logits;       // (batch, num_labels) for a sequence classifier
 *     encoder_forward(m, ctx, run, &b, &logits, &e);
 */
#ifndef INFERD_ENCODER_H
#define INFERD_ENCODER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "loader/hf_config.h"
#include "ops/ops.h"

/* What the model's head produces per batch (from config.json architectures[0]). */
enum encoder_head {
    HEAD_NONE,      /* *Model: last hidden state (batch, seq, hidden) */
    HEAD_SEQ_CLS,   /* *ForSequenceClassification: (batch, num_labels) */
    HEAD_TOKEN_CLS, /* *ForTokenClassification: (batch, seq, num_labels) */
    HEAD_QA,        /* *ForQuestionAnswering: (batch, seq, 2) start and end logits */
    HEAD_MASKED_LM, /* *ForMaskedLM: (batch, seq, vocab) */
};

struct encoder_batch {
    int batch, seq;          /* every row padded to seq */
    const int32_t *ids;      /* (batch, seq) */
    const int32_t *type_ids; /* (batch, seq), or NULL for zeros */
    const int32_t *mask;     /* (batch, seq) attention mask 0/1 */
    /* HEAD_MASKED_LM only: compute the vocabulary logits for these rows (token index
     * b*seq + t) only, output (n_rows, vocab); NULL: every row. */
    const int32_t *lm_rows;
    int n_lm_rows;
};

struct encoder;
struct encoder_run;

/* The config.json model_types encoder_load runs: up to max into out; returns how many. */
size_t encoder_model_types(const char **out, size_t max);

int encoder_load(const char *dir, enum dtype_compute dt, struct dnn_ctx *ctx, struct encoder **out,
                 struct err *e);
void encoder_free(struct encoder *m);

const struct hf_config *encoder_config(const struct encoder *m);
enum encoder_head encoder_head_kind(const struct encoder *m);
/* Values per output row of the head: num_labels, 2, vocab or hidden size. */
size_t encoder_out_width(const struct encoder *m);

struct encoder_run *encoder_run_new(void);
void encoder_run_free(struct encoder_run *r);

/* A cancel hook: encoder_forward asks stop(arg) before every layer and every pass (from
 * several threads at once when a batch runs as passes, so stop must be thread-safe) and
 * returns ERR_CANCELLED once it answers true. NULL removes the hook. */
typedef bool (*encoder_stop_fn)(void *arg);
void encoder_run_set_stop(struct encoder_run *r, encoder_stop_fn stop, void *arg);

/* Runs the encoder and its head; *out points into run memory (valid until the next call
 * with the same run). Shapes as enum encoder_head says. Also returns the last hidden
 * state (batch, seq, hidden) in *hidden when hidden is not NULL. */
int encoder_forward(const struct encoder *m, struct dnn_ctx *ctx, struct encoder_run *run,
                    const struct encoder_batch *b, const float **out, const float **hidden,
                    struct err *e);

#endif
