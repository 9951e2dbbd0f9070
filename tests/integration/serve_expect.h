/* serve_expect: what the daemon's answers are checked against, all derived from the
 * fixtures' Hugging Face references (refs-dev.json): JSON comparison with a tolerance for
 * reals, softmax/sigmoid of reference logits, the dialects' error shapes and the timing
 * headers, the single-label reranker built from bert-seqcls, a broken model directory, and
 * sample lookups in Prometheus text. Nothing here computes an expected value from inferd. */
#ifndef INFERD_SERVE_EXPECT_H
#define INFERD_SERVE_EXPECT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "serve_support.h"

/* Score tolerance of the pipelines against HF's 6-significant-digit references. */
#define REF_TOL 1e-4

/* ---- JSON ---- */

/* Same structure (object keys, array lengths, strings, booleans, null); two integers
 * exactly, other numbers within tol. On a difference writes its JSON path and both values
 * into why and returns false. */
bool close_json(const json_t *got, const json_t *want, double tol, char *why, size_t why_len);
/* Fails the test ("what: why") unless close_json holds. */
void expect_json(const json_t *got, const json_t *want, double tol, const char *what);
/* Fails unless r has this status; the message carries the body. */
void expect_status(const struct http_reply *r, long status, const char *what);
/* POSTs body (stolen) to path on d: 200 and the answer (or the part pick returns, a new
 * reference; pick NULL: the whole answer) within REF_TOL of want (borrowed). */
void daemon_post_expect(struct daemon *d, const char *path, json_t *body, const json_t *want,
                 json_t *(*pick)(const json_t *), const char *what);
/* status and the Hugging Face / TEI error shape {"error": "<non-empty>", "error_type": str}. */
void expect_hf_error(const struct http_reply *r, long status, const char *what);
/* status and the OpenAI shape {"error": {"message": "<non-empty>", "type": str, "param":
 * str|null, "code": str|int|null}}. */
void expect_openai_error(const struct http_reply *r, long status, const char *what);
/* x-queue-time, x-inference-time, x-total-time (non-negative milliseconds) and x-batch-size
 * (an integer >= 1) on a successful inference response; returns x-batch-size. */
long expect_timing_headers(const struct http_reply *r, const char *what);

/* ---- references ---- */

/* refs-dev.json of a fixture model (new reference). */
json_t *model_refs(const char *model);
/* The entry of refs[key] whose "text" equals text (borrowed), or NULL. */
const json_t *refs_find_text(const json_t *refs, const char *key, const char *text);
/* bert-seqcls's refs "logits" entries that hold the model's answer to their whole text (new
 * reference): the refs took the logits of a text of 128 ids or more truncated to 128 tokens
 * (its "pipeline" entry, untruncated, differs), so those are left out. */
json_t *seqcls_logits(const json_t *refs);
/* Softmax of logits as TEI's /predict answers: every label {"label","score"} sorted by score,
 * highest first (raw: the logits themselves). labels: id2label names in id order. */
json_t *predict_expected(const json_t *logits, const char *const *labels, bool raw);
double sigmoid(double x);

/* ---- model directories built at test time ---- */

/* bert-seqcls with only row `row` of classifier.weight/bias (config.json: one label
 * "LABEL_0"); every other tensor byte-identical. Its logit is bert-seqcls's logit[row].
 * Built once under the build dir; returns its path (static storage). */
const char *reranker_model(int row);
/* DIR/broken: bert-seqcls's config and tokenizer with a model.safetensors that is not one.
 * Returns the path (static storage). */
const char *broken_model(const char *dir);

/* ---- Prometheus text ---- */

/* Sum of the samples of metric `name` whose label set contains every label in labels
 * (`key="value"` strings, NULL-terminated; labels NULL: every sample). *n gets how many
 * samples matched (may be NULL). */
double metric_sum(const char *text, const char *name, const char *const *labels, int *n);

/* ---- a busy worker ---- */

/* Keeps a model's (single) worker busy: sends one heavy request (32 texts of 250 words) to
 * path (/models/MODEL, or a TEI route with "model": MODEL) and returns, the transfer still in
 * flight, once its batch has started (inferd_queue_duration_seconds_count{model} went up).
 * Requests sent now queue up behind that batch (~50 ms here), so that two or more of them
 * then wait for the batching delay: a daemon that runs a lone request at once would
 * otherwise never let them wait. */
struct http_multi *occupy_worker(const struct daemon *d, const char *model, const char *path);

#endif
