/* runner: a task pipeline on one model directory (tokenizer + encoder + task), run in three
 * steps so that a batcher can mix requests: prepare (validate the Hugging Face Inference API
 * form {"inputs", "parameters"}, tokenize, build the encoder items: text pairs, QA windows,
 * zero-shot hypothesis pairs) -> forward (every item of one or several requests in padded
 * encoder batches under a token budget) -> finish (the post-processing of the other pipelines/
 * files, shaped as transformers.pipeline(task)(inputs, **parameters) returns it). It owns the
 * loaded tokenizer and encoder and each prepared request's encodings and outputs; it knows nothing
 * of HTTP, queues or threads (a pipeline is read-only once open; a struct pipeline_worker,
 * the oneDNN context and activation memory a forward step runs in, belongs to the calling
 * thread). Part of the engine's facade (engine.h): it includes nothing of the engine's insides.
 *
 *     struct pipeline *p;
 *     pipeline_open("models/sst2", "text-classification", DTYPE_COMPUTE_F32, 2, &p, &e);
 *     struct pipeline_worker *w;
 *     pipeline_worker_new(2, &w, &e);                  // on the thread that runs it
 *     json_t *in = json_string("I loved it"), *out;
 *     pipeline_run(p, w, in, NULL, &out, &e);  // [{"label": "POSITIVE", "score": 0.99}]
 *
 * Input shapes per task (as the HF pipelines take them; a list gives a list of results):
 *   text-classification       "text" | {"text", "text_pair"} | [[text, pair]] | list of these
 *   token-classification      "text" | ["text", ...]
 *   question-answering        {"question", "context"} | list of them
 *   fill-mask                 "text with [MASK]" | list (a list of one gives one result, as HF)
 *   zero-shot-classification  "text" | list, with parameters.candidate_labels; or
 *                             {"sequence(s)", "candidate_labels", ...} merged into parameters
 *   feature-extraction        "text" | list: (1, seq, hidden) nested lists per text
 *   sentence-embeddings       "text" | list: one pooled vector per text (modules.json pooling;
 *                             parameters.normalize true/false overrides its Normalize module)
 * Errors: ERR_INPUT for inputs of the wrong JSON type, ERR_INVALID for values the task
 * rejects (empty, no mask token, too many tokens without truncation, bad parameters). */
#ifndef INFERD_RUNNER_H
#define INFERD_RUNNER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "dtype.h"
#include "err.h"
#include "task_table.h"

struct tokenizer;

struct pipeline;

/* Loads DIR's tokenizer and encoder (and for sentence-embeddings its modules.json pooling;
 * mean pooling without one) and checks the task fits the model's head: ERR_INVALID naming
 * both when it does not (token-classification needs a *ForTokenClassification model,
 * zero-shot a sequence classifier with an "entailment" label, ...), ERR_INVALID for an
 * unknown task or one that is no encoder pipeline (the message lists the encoder tasks).
 * task: a name or alias of task_table.h's table. threads: the oneDNN threads that prepack
 * the weights (0 = every online CPU). */
int pipeline_open(const char *dir, const char *task, enum dtype_compute dt, int threads,
                  struct pipeline **out, struct err *e);
/* The same for a task resolved already (the registry's): ERR_INVALID for a generator task. */
int pipeline_open_task(const char *dir, enum task_id task, enum dtype_compute dt, int threads,
                       struct pipeline **out, struct err *e);
void pipeline_close(struct pipeline *p);

enum task_id pipeline_task(const struct pipeline *p);
/* Its tokenizer (tokenizer/tokenizer.h), for the routes that tokenize any model. */
const struct tokenizer *pipeline_tokenizer(const struct pipeline *p);
/* A classifier head's labels (id2label order) and their count; 0 and NULL for other heads. */
size_t pipeline_num_labels(const struct pipeline *p);
const char *const *pipeline_labels(const struct pipeline *p);
/* sentence-embeddings: its pooling (modules.json, or mean pooling) named as
 * sentence-transformers names the modes, joined by '+' ("mean", "cls", "last_token"...), in
 * buf (cut to size); returns the length, 0 (buf "") for other tasks. */
size_t pipeline_pooling_name(const struct pipeline *p, char *buf, size_t size);
/* Most tokens one encoder row may hold (max_position_embeddings less the position offset). */
size_t pipeline_max_tokens(const struct pipeline *p);
/* The forward step's budget of padded tokens (rows x longest row) per encoder batch; an
 * item longer than the budget still runs, alone. Default 8192. Not thread-safe: set it
 * before sharing the pipeline. */
void pipeline_set_batch_tokens(struct pipeline *p, size_t n_tokens);

/* What one request may ask for (0 = no limit), so that a small request cannot buy unbounded
 * work or memory. pipeline_prepare refuses a request over a limit with ERR_INVALID naming
 * the config key (models[].limits.*): max_inputs before anything is copied or tokenized,
 * max_results (masks x top_k for fill-mask, min(top_k, span cells) for question-answering,
 * inputs x labels for zero-shot and text-classification; token-classification entities,
 * features and embeddings are bounded by the tokens) as soon as it is known, max_tokens (the
 * encoder rows' tokens together) while tokenizing, stopping at the first input over it. */
struct pipeline_limits {
    size_t max_inputs;  /* limits.max_client_batch_size */
    size_t max_tokens;  /* limits.max_request_tokens */
    size_t max_results; /* limits.max_results */
};
/* Not thread-safe: set them before sharing the pipeline. Default: no limits. */
void pipeline_set_limits(struct pipeline *p, const struct pipeline_limits *l);
/* The checks themselves, for callers that tokenize without a pipeline (TEI /tokenize):
 * ERR_INVALID with the message every route gives when n is over the limit. */
int pipeline_check_inputs(const struct pipeline_limits *l, size_t n, struct err *e);
int pipeline_check_tokens(const struct pipeline_limits *l, size_t n, struct err *e);

/* ---- the three steps ---- */

/* A prepared request: copies of its inputs and parameters, parsed task parameters, the
 * encodings of its items and, after forward, their model outputs. Opaque. */
struct pipeline_request;

/* Validates and tokenizes one request. inputs and parameters are only read during the call
 * (the request keeps its own copies). parameters may be NULL. */
int pipeline_prepare(const struct pipeline *p, const json_t *inputs, const json_t *parameters,
                     struct pipeline_request **out, struct err *e);
/* pipeline_prepare that asks stop->fn(stop->arg) before tokenizing each input and gives up
 * with ERR_CANCELLED once it answers true (a request whose deadline passed, a server that
 * drains): a large request's tokenizing is bounded by its caller's clock too. */
struct pipeline_stop {
    bool (*fn)(void *arg);
    void *arg;
};
int pipeline_prepare_until(const struct pipeline *p, const json_t *inputs,
                           const json_t *parameters, const struct pipeline_stop *stop,
                           struct pipeline_request **out, struct err *e);
void pipeline_request_free(struct pipeline_request *r);
/* Encoder rows the request needs and their total length in tokens (for batching decisions). */
size_t pipeline_request_items(const struct pipeline_request *r);
size_t pipeline_request_tokens(const struct pipeline_request *r);
/* The longest of its encoder rows, in tokens. */
size_t pipeline_request_max_len(const struct pipeline_request *r);

/* What one thread needs to run forward steps: its oneDNN context (cfg threads; 0 = every
 * online CPU) and activation memory, grown as batches need and kept. Create, use and free it
 * on one thread (oneDNN primitives stay on the thread that made them); any pipeline may run
 * on it. */
struct pipeline_worker;
int pipeline_worker_new(int threads, struct pipeline_worker **out, struct err *e);
void pipeline_worker_free(struct pipeline_worker *w);
/* A hook the forward step asks between encoder layers (from several threads at once when a
 * batch runs as passes, so it must be thread-safe): once it answers true the step stops with
 * ERR_CANCELLED. NULL removes it. */
void pipeline_worker_set_stop(struct pipeline_worker *w, bool (*stop)(void *arg), void *arg);

/* Runs the encoder over every item of reqs[0..n_reqs) (prepared by this pipeline) on w,
 * sorted by length into padded batches of at most the token budget, and stores each item's
 * head output in its request. A failure fails them all (the error names no single request). */
int pipeline_forward(const struct pipeline *p, struct pipeline_worker *w,
                     struct pipeline_request *const *reqs, size_t n_reqs, struct err *e);

/* Post-processes a forwarded request into the HF pipeline's result (a new reference). */
int pipeline_finish(const struct pipeline *p, const struct pipeline_request *r, json_t **out,
                    struct err *e);

/* prepare -> forward -> finish for one request. */
int pipeline_run(const struct pipeline *p, struct pipeline_worker *w, const json_t *inputs,
                 const json_t *parameters, json_t **out, struct err *e);

/* ---- helpers the dialects share with the pipelines ---- */

/* Byte position of every code point of text[0..len) plus len at the end: (n_cp + 1)
 * entries, malloc'ed; NULL when out of memory. Code-point offsets index it. */
size_t *pipeline_cp_index(const char *text, size_t len, size_t *n_cp);
/* Keeps the first dims components of an embedding (a JSON list of numbers), L2-normalized
 * again when normalize (as sentence-transformers' truncate_dim: x / max(|x|, 1e-12)). */
void embeddings_truncate_json(json_t *vec, size_t dims, bool normalize);

#endif
