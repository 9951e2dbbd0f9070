/* pipeline: the encoder tasks' request parameters, model inputs and results, shaped exactly
 * like the Hugging Face pipelines (text-classification, token-classification,
 * question-answering as in transformers 4.x, fill-mask, zero-shot-classification) and
 * sentence-transformers pooling. Owns parameter validation (ERR_INVALID naming the parameter)
 * and post-processing of model outputs into jansson values; knows nothing of the forward
 * pass, batching or HTTP. Results are new references the caller json_decref()s.
 *
 *     struct textcls_params p;
 *     if (text_classification_params(request_parameters, &p, &e)) return e.kind; // 422
 *     ... forward pass -> logits (n_labels) ...
 *     json_t *result;
 *     text_classification_finish(logits, n_labels, id2label, problem_type, &p, &result, &e);
 *     // result: [{"label": "NEGATIVE", "score": 0.597657}]
 *
 * Parameter structs borrow nothing unless their comment says so; those with a _fini own
 * what they hold. A NULL or JSON null `parameters` means "all defaults". Unknown keys are
 * ignored (transformers passes them on to the tokenizer). */
#ifndef INFERD_PIPELINE_H
#define INFERD_PIPELINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "../tokenizer/tokenizer.h"
#include "runner.h"

/* ---- shared helpers (common.c) ---- */

/* Checks that parameters is NULL, JSON null or an object (ERR_INVALID otherwise). */
int pipeline_check_parameters(const json_t *parameters, struct err *e);
/* Reads parameters[key] as a positive integer into *out; absent or null leaves *out and
 * sets *is_null (when not NULL) to whether the key was present and null. */
int pipeline_param_positive(const json_t *parameters, const char *key, bool null_ok, size_t *out,
                            bool *is_null, struct err *e);
/* Reads parameters[key] as true/false; absent or null leaves *out. */
int pipeline_param_bool(const json_t *parameters, const char *key, bool *out, struct err *e);
/* Reads parameters[key] as a string (borrowed from parameters); absent or null leaves *out. */
int pipeline_param_string(const json_t *parameters, const char *key, const char **out,
                          struct err *e);
/* In-place softmax over x[0..n) in double precision (max-shifted, as numpy). */
void pipeline_softmax(double *x, size_t n);
/* Number of code points in the NUL-terminated UTF-8 string s (Python's len). */
size_t pipeline_cp_count(const char *s);
/* The id of a tokenizer_config.json special token ("mask_token", "cls_token", ...), or -1. */
int32_t pipeline_special_id(const struct tokenizer *tk, const char *key);

/* ---- text-classification (text_classification.c) ---- */

enum textcls_fn {
    TEXTCLS_FN_DEFAULT, /* by problem_type and num_labels, as HF */
    TEXTCLS_FN_SOFTMAX,
    TEXTCLS_FN_SIGMOID,
    TEXTCLS_FN_NONE,
};

/* function_to_apply ("softmax"|"sigmoid"|"none", any case), top_k (positive integer or
 * null), legacy return_all_scores (bool, used only without top_k). */
struct textcls_params {
    enum textcls_fn function_to_apply;
    bool top_k_given; /* false: HF's legacy shape [{"label","score"}] (or [[...]] for
                         return_all_scores true) */
    size_t top_k;     /* when given; 0 = null = every label */
    bool return_all_scores;
};
int text_classification_params(const json_t *parameters, struct textcls_params *p, struct err *e);
/* logits: (n_labels) raw model outputs; problem_type is config.json's or NULL. */
int text_classification_finish(const float *logits, size_t n_labels, const char *const *id2label,
                               const char *problem_type, const struct textcls_params *p,
                               json_t **out, struct err *e);

/* ---- token-classification (token_classification.c) ---- */

enum tokcls_aggregation {
    TOKCLS_AGG_NONE,
    TOKCLS_AGG_SIMPLE,
    TOKCLS_AGG_FIRST,
    TOKCLS_AGG_AVERAGE,
    TOKCLS_AGG_MAX,
};

/* aggregation_strategy (string, any case), ignore_labels (list of strings, default ["O"]),
 * legacy grouped_entities / ignore_subwords (bools, as transformers maps them). */
struct tokcls_params {
    enum tokcls_aggregation aggregation_strategy;
    const json_t *ignore_labels; /* borrowed array of strings from parameters; NULL = ["O"] */
};
int token_classification_params(const json_t *parameters, struct tokcls_params *p, struct err *e);
/* The model input: text with special tokens, truncated to model_max_length when the
 * tokenizer_config.json gives one (as the pipeline's preprocess). out is reset and filled. */
int token_classification_prepare(const struct tokenizer *tk, const char *text, size_t len,
                                 struct encodings *out, struct err *e);
/* enc: the encoding of text (offsets in code points); logits: (enc->n, n_labels).
 * Result: a list of {entity, score, index, word, start, end} (strategy none) or of
 * {entity_group, score, word, start, end}. */
int token_classification_finish(const struct tokenizer *tk, const char *text, size_t len,
                                const struct encoding *enc, const float *logits, size_t n_labels,
                                const char *const *id2label, const struct tokcls_params *p,
                                json_t **out, struct err *e);

/* ---- question-answering (question_answering.c), transformers 4.x behaviour ---- */

/* top_k (1), max_answer_len (15), max_seq_len (min(model_max_length, 384)), doc_stride
 * (min(max_seq_len / 2, 128); larger than max_seq_len is invalid), max_question_len (64,
 * unused by fast tokenizers), handle_impossible_answer (false), align_to_words (true). */
struct qa_params {
    size_t top_k, max_answer_len, max_seq_len, doc_stride;
    bool max_seq_len_given, doc_stride_given;
    bool handle_impossible_answer, align_to_words;
};
int question_answering_params(const json_t *parameters, struct qa_params *p, struct err *e);
/* Encodes (question, context) (context first when padding_side is "left") truncating the
 * context into windows of max_seq_len tokens overlapping by doc_stride: windows->v[0..n).
 * Fills the max_seq_len / doc_stride defaults in p. Empty question or context is
 * ERR_INVALID, as HF. */
int question_answering_prepare(const struct tokenizer *tk, const char *question, size_t q_len,
                               const char *context, size_t c_len, struct qa_params *p,
                               struct encodings *windows, struct err *e);
/* start_logits[w], end_logits[w]: (windows->v[w].n) for each window w. Result: one
 * {score, start, end, answer} object, or a list of them when more than one answer remains. */
int question_answering_finish(const struct tokenizer *tk, const char *context, size_t c_len,
                              const struct encodings *windows, const float *const *start_logits,
                              const float *const *end_logits, const struct qa_params *p,
                              json_t **out, struct err *e);
/* The most answers question_answering_finish can return for these windows: top_k, at most
 * one per cell of each window's (n, n) span matrix, plus the null answer. */
size_t question_answering_max_results(const struct encodings *windows, const struct qa_params *p);

/* ---- fill-mask (fill_mask.c) ---- */

/* top_k (5), targets (a string or a list of strings: vocabulary entries, else the first id
 * of their tokenization; at least one must map to an id). */
struct fill_mask_params {
    size_t top_k;
    int32_t *target_ids; /* owned, distinct; NULL = the whole vocabulary */
    size_t n_targets;
};
int fill_mask_params(const struct tokenizer *tk, const json_t *parameters,
                     struct fill_mask_params *p, struct err *e);
void fill_mask_params_fini(struct fill_mask_params *p);
/* ERR_INVALID unless enc holds at least one mask token (call before queueing). */
int fill_mask_check(const struct tokenizer *tk, const struct encoding *enc, struct err *e);
/* logits: (enc->n, vocab_size). Result: a list of {score, token, token_str, sequence};
 * a list of such lists with several mask tokens (one per mask, as HF). */
int fill_mask_finish(const struct tokenizer *tk, const struct encoding *enc, const float *logits,
                     size_t vocab_size, const struct fill_mask_params *p, json_t **out,
                     struct err *e);
/* The number of propositions fill_mask_finish returns for enc: masks x min(top_k, the
 * vocabulary or the targets). */
size_t fill_mask_max_results(const struct tokenizer *tk, const struct encoding *enc,
                             size_t vocab_size, const struct fill_mask_params *p);
/* The k best candidate ids (cand[0..n_cand), or 0..n_cand when cand is NULL; ids outside
 * the vocabulary skipped) by probs, descending, equal scores by lower id, into best[0..k).
 * Returns how many were found. O(n_cand log k). */
size_t fill_mask_top_k(const double *probs, size_t vocab_size, const int32_t *cand, size_t n_cand,
                       size_t k, int32_t *best);

/* ---- zero-shot-classification (zero_shot.c) ---- */

/* candidate_labels (list of strings, or one comma-separated string; required, non-empty),
 * hypothesis_template ("This example is {}."), multi_label (false; legacy multi_class). */
struct zero_shot_params {
    char **candidate_labels; /* owned */
    size_t n_labels;
    char *hypothesis_template; /* owned */
    bool multi_label;
};
int zero_shot_params(const json_t *parameters, struct zero_shot_params *p, struct err *e);
void zero_shot_params_fini(struct zero_shot_params *p);
/* The hypothesis for candidate label i (malloc'ed), the template formatted as str.format. */
int zero_shot_hypothesis(const struct zero_shot_params *p, size_t i, char **out, struct err *e);
/* Encodes (sequence, hypothesis i) for every label, truncating only the sequence:
 * pairs[i] for i < p->n_labels (caller-provided array; encodings_fini each). */
int zero_shot_prepare(const struct tokenizer *tk, const char *sequence, size_t len,
                      const struct zero_shot_params *p, struct encodings *pairs, struct err *e);
/* logits: (p->n_labels, n_classes), one row per (sequence, hypothesis) pair. The
 * entailment class is the first id2label entry starting with "entail" (any case), else the
 * last; contradiction is class 0 (or the last when entailment is 0), as HF.
 * Result: {sequence, labels, scores}, sorted by score. */
int zero_shot_finish(const char *sequence, const float *logits, size_t n_classes,
                     const char *const *id2label, const struct zero_shot_params *p, json_t **out,
                     struct err *e);

/* ---- sentence embeddings (embeddings.c): sentence-transformers Pooling + Normalize ---- */

enum pool_mode {
    POOL_CLS = 1 << 0,
    POOL_MAX = 1 << 1,
    POOL_MEAN = 1 << 2,
    POOL_MEAN_SQRT_LEN = 1 << 3,
    POOL_WEIGHTED_MEAN = 1 << 4,
    POOL_LASTTOKEN = 1 << 5,
};

/* Several modes concatenate in the order of the enum, as sentence-transformers. */
struct pooling_config {
    unsigned modes;   /* enum pool_mode bits */
    size_t dimension; /* the token embedding size the config declares (0 = unchecked) */
    bool normalize;   /* a Normalize module follows */
};
/* Reads DIR/modules.json and its Pooling module's config.json (both the pooling_mode_*
 * booleans and the newer "pooling_mode" string or list). No modules.json: ERR_NOT_FOUND.
 * A Dense or other module that changes the vector: ERR_FORMAT naming it. */
int embeddings_load_config(const char *dir, struct pooling_config *cfg, struct err *e);
/* Its modes as sentence-transformers names them ("pooling_mode": "cls", "mean", "lasttoken"...)
 * joined by '+' into buf (cut to size); returns the length written. */
size_t embeddings_pooling_name(const struct pooling_config *cfg, char *buf, size_t size);
/* The length of a pooled vector for token embeddings of hidden_size. */
size_t embeddings_dim(const struct pooling_config *cfg, size_t hidden_size);
/* hidden: (n_tokens, hidden_size) last hidden state; attention: (n_tokens) 0/1.
 * out: (embeddings_dim) floats. */
int embeddings_pool(const struct pooling_config *cfg, const float *hidden, const uint8_t *attention,
                    size_t n_tokens, size_t hidden_size, float *out, struct err *e);
/* A JSON list of n floats. */
json_t *embeddings_to_json(const float *v, size_t n);

/* The prompts of config_sentence_transformers.json ("prompts": {name: text},
 * "default_prompt_name"), as e5-mistral or Qwen3-Embedding ship them. */
struct prompts {
    json_t *by_name;          /* owned; NULL: none */
    const char *default_name; /* borrowed from file; NULL: none */
    json_t *file;             /* owned: what default_name points into */
};
/* Reads DIR/config_sentence_transformers.json (none: no prompts, 0); ERR_FORMAT when its
 * prompts are not strings. */
int embeddings_load_prompts(const char *dir, struct prompts *out, struct err *e);
void embeddings_prompts_fini(struct prompts *p);
/* The prompt a request asks for, as SentenceTransformer.encode picks it: prompt when given
 * (prompt_name is then ignored), else the prompt of prompt_name (ERR_INVALID naming the
 * prompts when there is none of that name), else the default prompt's; *out NULL (or "")
 * means none. *out borrows from p or prompt. */
int embeddings_pick_prompt(const struct prompts *p, const char *prompt_name, const char *prompt,
                           const char **out, struct err *e);

#endif
