/* runner_impl: what the runner's files share privately: the pipeline, a prepared request
 * and its units and items, and the task row with its hooks. runner.c owns the generic steps
 * (open, prepare, forward, finish), task_inputs.c each task's parameters, input forms and
 * tokenizing, task_table.c the table itself and each task's open, output and finish hooks.
 * Nothing outside engine/pipelines/ includes this header; the interface is runner.h. */
#ifndef INFERD_RUNNER_IMPL_H
#define INFERD_RUNNER_IMPL_H

#include "runner.h"

#include "../models/encoder.h"
#include "../ops/dnnl.h"
#include "pipeline.h"

#define DEFAULT_BATCH_TOKENS 8192

/* The loaded encoder (tests reach it through here). */
const struct encoder *pipeline_encoder(const struct pipeline *p);

struct task_row;

struct pipeline {
    const struct task_row *row; /* its task's row of the table */
    struct tokenizer *tk;
    struct encoder *m;
    const struct hf_config *cfg; /* borrowed from m */
    enum encoder_head head;
    size_t out_width;   /* values per head output row */
    size_t hidden_size; /* last hidden state width */
    size_t max_tokens;  /* longest encoder row the position embeddings allow */
    size_t batch_tokens;
    struct pipeline_limits limits;
    char **labels; /* (out_width) label names of a classifier head, owned */
    const char *problem_type;
    struct pooling_config pooling; /* sentence-embeddings */
    const struct pooling_config *pool; /* &pooling when the task pools (its open hook), else NULL */
    size_t max_seq_length;         /* sentence-embeddings truncation length */
    struct prompts prompts;        /* sentence-embeddings: the model's prompts */
};

/* One encoder row of a request. */
struct item {
    const struct encoding *enc; /* borrowed from the request's units */
    size_t order;               /* position in the forward step's list (stable sorting) */
    float *out;                 /* owned: head output (see out_len), filled by forward */
    size_t out_len;
    signed char normalize; /* sentence-embeddings: -1 as modules.json, else 0/1 */
};

/* One input of a request: a text (and pair), a QA example or a zero-shot sequence. */
struct unit {
    const char *text, *pair; /* borrowed from the request's inputs copy */
    size_t len, pair_len;
    struct encodings encs;   /* v[0]; QA: every window */
    struct encodings *pairs; /* zero-shot: one (sequence, hypothesis) encoding per label */
    size_t first, n;         /* its items: items[first .. first + n) */
};

struct pipeline_request {
    json_t *inputs, *parameters; /* owned copies; units and parameters borrow from them */
    bool list_result;            /* the result is a list with one entry per unit */
    bool unwrap;                 /* text-classification: each unit's result is element 0 */
    struct textcls_params tc;
    struct tokcls_params tok;
    struct qa_params qa;
    struct fill_mask_params fm;
    struct zero_shot_params zs;
    bool zs_init;
    struct tokenizer_params tp; /* text-classification, feature-extraction, fill-mask */
    signed char normalize;      /* sentence-embeddings parameters.normalize: -1 = modules.json */
    struct unit *units;
    size_t n_units, cap_units;
    struct item *items;
    size_t n_items, cap_items;
    bool forwarded;
};

/* A task: its names, its kind and, for an encoder pipeline, the head it needs and its hooks.
 * Every task-specific step of open, prepare, forward and finish goes through its row; nothing
 * else asks which task it is. A generator's row has its names and kind only (its model and
 * steps are the generator's). */
struct task_row {
    enum task_id task;
    const char *name, *alias;
    enum task_kind kind;
    int head;       /* enum encoder_head it needs; -1: any encoder (it uses the hidden states) */
    bool hidden;    /* the forward step returns the last hidden states */
    bool windows;   /* every overflow window of a unit is an item (question-answering) */
    bool mask_rows; /* the masked-LM head runs on the mask tokens' rows (fill-mask) */
    bool seq2seq;   /* a generator task for encoder-decoders only */
    /* other names of the task (NULL: name and alias only): translation_xx_to_yy */
    bool (*matches)(const char *name);
    /* once the model is loaded (NULL: nothing to do): the task's own files */
    int (*open)(struct pipeline *p, const char *dir, struct err *e);
    /* what the task needs beyond its head (NULL: nothing): ERR_INVALID naming the task (as
     * the caller wrote it) and dir */
    int (*fits)(const struct pipeline *p, const char *dir, const char *task, struct err *e);
    /* parameters and input units, no tokens yet */
    int (*parse)(const struct pipeline *p, struct pipeline_request *r, struct err *e);
    /* a unit into its encoding(s); NULL: the tokenizer with r->tp */
    int (*encode)(const struct pipeline *p, struct pipeline_request *r, struct unit *u,
                  struct err *e);
    /* results per unit the parameters alone tell (0: bounded by the tokens) */
    size_t (*unit_results)(const struct pipeline *p, const struct pipeline_request *r);
    /* results of a tokenized unit, for tasks whose count depends on its tokens (may be NULL) */
    size_t (*encoded_results)(const struct pipeline *p, const struct pipeline_request *r,
                              const struct unit *u);
    /* an item's output from its last hidden states (seq, hidden); NULL: the head's output */
    int (*keep)(const struct pipeline *p, struct item *it, const float *hidden, struct err *e);
    int (*finish)(const struct pipeline *p, const struct pipeline_request *r,
                  const struct unit *u, json_t **out, struct err *e);
};

/* The row of a task (task_table.c). */
const struct task_row *task_row(enum task_id t);

/* runner.c: copies src[0..len) into the item's own output. */
int item_store(struct item *it, const float *src, size_t len, struct err *e);

/* task_inputs.c: each encoder task's parse and encode hooks. */
int parse_text_classification(const struct pipeline *p, struct pipeline_request *r,
                              struct err *e);
int parse_token_classification(const struct pipeline *p, struct pipeline_request *r,
                               struct err *e);
int parse_question_answering(const struct pipeline *p, struct pipeline_request *r,
                             struct err *e);
int parse_fill_mask(const struct pipeline *p, struct pipeline_request *r, struct err *e);
int parse_zero_shot(const struct pipeline *p, struct pipeline_request *r, struct err *e);
int parse_feature_extraction(const struct pipeline *p, struct pipeline_request *r,
                             struct err *e);
int parse_sentence_embeddings(const struct pipeline *p, struct pipeline_request *r,
                              struct err *e);
int encode_token_classification(const struct pipeline *p, struct pipeline_request *r,
                                struct unit *u, struct err *e);
int encode_question_answering(const struct pipeline *p, struct pipeline_request *r,
                              struct unit *u, struct err *e);
int encode_zero_shot(const struct pipeline *p, struct pipeline_request *r, struct unit *u,
                     struct err *e);
int encode_fill_mask(const struct pipeline *p, struct pipeline_request *r, struct unit *u,
                     struct err *e);

#endif
