/* runner: see runner.h. Owns the task table (name, aliases, the head a task needs), the
 * Inference API input forms of each task, the request's encoder items and the padded
 * batches of the forward step; the post-processing itself lives in the other pipelines/
 * files. */
#include "runner.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_BATCH_TOKENS 8192

struct pipeline {
    enum pipeline_task task;
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
    size_t max_seq_length;         /* sentence-embeddings truncation length */
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

/* ---- the task table (rows at the end of the file) ---- */

/* A task: its names, the head it needs and its hooks. Every task-specific step of prepare and
 * finish goes through its row; nothing else in this file asks which task it is. */
struct task_row {
    enum pipeline_task task;
    const char *name, *alias;
    int head;     /* enum encoder_head it needs; -1: any encoder (it uses the hidden states) */
    bool hidden;  /* the forward step returns the last hidden states */
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
    int (*finish)(const struct pipeline *p, const struct pipeline_request *r,
                  const struct unit *u, json_t **out, struct err *e);
};
static const struct task_row *task_row(enum pipeline_task t);

static const char *head_name(enum encoder_head h)
{
    switch (h) {
    case HEAD_NONE: return "a bare encoder (no head)";
    case HEAD_SEQ_CLS: return "a sequence classifier";
    case HEAD_TOKEN_CLS: return "a token classifier";
    case HEAD_QA: return "a question-answering head";
    case HEAD_MASKED_LM: return "a masked language model";
    }
    return "an unknown head";
}

/* ---- open / close ---- */

static const char *problem_type_name(enum hf_problem_type t)
{
    switch (t) {
    case HF_PROBLEM_SINGLE_LABEL: return "single_label_classification";
    case HF_PROBLEM_MULTI_LABEL: return "multi_label_classification";
    case HF_PROBLEM_REGRESSION: return "regression";
    default: return NULL;
    }
}

/* Label names for the classifier's out_width classes: config.json's, or LABEL_i when the
 * config's count disagrees with the classifier (HF's defaults). */
static int make_labels(struct pipeline *p, struct err *e)
{
    p->labels = calloc(p->out_width, sizeof *p->labels);
    if (!p->labels)
        return err_set(e, ERR_NOMEM, "pipeline: out of memory");
    for (size_t i = 0; i < p->out_width; i++) {
        char name[32];
        const char *s = name;
        if (p->cfg->num_labels == p->out_width && p->cfg->id2label && p->cfg->id2label[i])
            s = p->cfg->id2label[i];
        else
            snprintf(name, sizeof name, "LABEL_%zu", i);
        if (!(p->labels[i] = strdup(s)))
            return err_set(e, ERR_NOMEM, "pipeline: out of memory");
    }
    return 0;
}

/* sentence-transformers: modules.json pooling (mean without one) and max_seq_length from
 * sentence_bert_config.json, else min(max_position_embeddings, model_max_length). */
static int load_sentence_config(struct pipeline *p, const char *dir, struct err *e)
{
    int rc = embeddings_load_config(dir, &p->pooling, e);
    if (rc == ERR_NOT_FOUND) {
        p->pooling = (struct pooling_config){.modes = POOL_MEAN};
        rc = 0;
    }
    if (rc)
        return rc;
    if (p->pooling.dimension && p->pooling.dimension != p->hidden_size)
        return err_set(e, ERR_FORMAT,
                       "%s: the pooling config's embedding dimension %zu is not the model's "
                       "hidden size %zu",
                       dir, p->pooling.dimension, p->hidden_size);
    size_t mml = tokenizer_model_max_length(p->tk);
    p->max_seq_length = mml && mml < p->max_tokens ? mml : p->max_tokens;
    char path[4096];
    snprintf(path, sizeof path, "%s/sentence_bert_config.json", dir);
    json_t *j = json_load_file(path, 0, NULL);
    const json_t *v = json_object_get(j, "max_seq_length");
    if (json_is_integer(v) && json_integer_value(v) > 0 &&
        (size_t)json_integer_value(v) < p->max_seq_length)
        p->max_seq_length = (size_t)json_integer_value(v);
    json_decref(j);
    return 0;
}

static int check_fit(const struct pipeline *p, const char *dir, const char *task, struct err *e)
{
    int need = task_row(p->task)->head;
    if (need >= 0 && (int)p->head != need)
        return err_set(e, ERR_INVALID, "task '%s' needs %s, but %s (%s) is %s", task,
                       head_name((enum encoder_head)need), dir,
                       p->cfg->architecture[0] ? p->cfg->architecture : p->cfg->model_type,
                       head_name(p->head));
    if (p->task == TASK_FILL_MASK && pipeline_special_id(p->tk, "mask_token") < 0)
        return err_set(e, ERR_INVALID, "task '%s': %s's tokenizer has no mask token", task, dir);
    if (p->task == TASK_ZERO_SHOT_CLASSIFICATION) {
        bool entail = false;
        for (size_t i = 0; i < p->out_width; i++)
            entail |= strncasecmp(p->labels[i], "entail", 6) == 0;
        if (!entail || p->out_width < 2)
            return err_set(e, ERR_INVALID,
                           "task '%s' needs an NLI model with an 'entailment' label; %s's labels "
                           "have none",
                           task, dir);
    }
    return 0;
}

int pipeline_open(const char *dir, const char *task, enum dtype_compute dt, struct dnn_ctx *ctx,
                  struct pipeline **out, struct err *e)
{
    *out = NULL;
    int t = pipeline_task_by_name(task);
    if (t < 0) {
        char list[200];
        pipeline_task_list(list, sizeof list);
        return err_set(e, ERR_INVALID, "unknown task '%.40s' (tasks: %s)", task ? task : "(null)",
                       list);
    }
    struct pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return err_set(e, ERR_NOMEM, "pipeline: out of memory");
    p->task = (enum pipeline_task)t;
    p->batch_tokens = DEFAULT_BATCH_TOKENS;
    /* the model first: an unsupported model_type is the first thing said */
    int rc = encoder_load(dir, dt, ctx, &p->m, e);
    if (rc == 0)
        rc = tokenizer_load(dir, &p->tk, e);
    if (rc)
        goto fail;
    p->cfg = encoder_config(p->m);
    p->head = encoder_head_kind(p->m);
    p->out_width = encoder_out_width(p->m);
    p->hidden_size = (size_t)p->cfg->hidden_size;
    int64_t maxpos = p->cfg->max_position_embeddings - p->cfg->position_offset;
    p->max_tokens = maxpos > 0 ? (size_t)maxpos : 512;
    p->problem_type = problem_type_name(p->cfg->problem_type);
    if ((p->head == HEAD_SEQ_CLS || p->head == HEAD_TOKEN_CLS) && (rc = make_labels(p, e)) != 0)
        goto fail;
    if (p->task == TASK_SENTENCE_EMBEDDINGS && (rc = load_sentence_config(p, dir, e)) != 0)
        goto fail;
    if ((rc = check_fit(p, dir, task, e)) != 0)
        goto fail;
    *out = p;
    return 0;
fail:
    pipeline_close(p);
    return rc;
}

void pipeline_close(struct pipeline *p)
{
    if (!p)
        return;
    if (p->labels)
        for (size_t i = 0; i < p->out_width; i++)
            free(p->labels[i]);
    free(p->labels);
    encoder_free(p->m);
    tokenizer_free(p->tk);
    free(p);
}

enum pipeline_task pipeline_task(const struct pipeline *p)
{
    return p->task;
}

const struct tokenizer *pipeline_tokenizer(const struct pipeline *p)
{
    return p->tk;
}

size_t pipeline_num_labels(const struct pipeline *p)
{
    return p->labels ? p->out_width : 0;
}

const char *const *pipeline_labels(const struct pipeline *p)
{
    return (const char *const *)p->labels;
}

const struct pooling_config *pipeline_pooling(const struct pipeline *p)
{
    return p->task == TASK_SENTENCE_EMBEDDINGS ? &p->pooling : NULL;
}

const struct encoder *pipeline_encoder(const struct pipeline *p)
{
    return p->m;
}

size_t pipeline_max_tokens(const struct pipeline *p)
{
    return p->max_tokens;
}

void pipeline_set_batch_tokens(struct pipeline *p, size_t n_tokens)
{
    p->batch_tokens = n_tokens ? n_tokens : DEFAULT_BATCH_TOKENS;
}

void pipeline_set_limits(struct pipeline *p, const struct pipeline_limits *l)
{
    p->limits = *l;
}

/* ---- limits ---- */

int pipeline_check_inputs(const struct pipeline_limits *l, size_t n, struct err *e)
{
    if (l->max_inputs && n > l->max_inputs)
        return err_set(e, ERR_INVALID,
                       "batch size %zu > maximum allowed batch size %zu "
                       "(limits.max_client_batch_size)",
                       n, l->max_inputs);
    return 0;
}

int pipeline_check_tokens(const struct pipeline_limits *l, size_t n, struct err *e)
{
    if (l->max_tokens && n > l->max_tokens)
        return err_set(e, ERR_INVALID,
                       "`inputs` must have less than %zu tokens in total "
                       "(limits.max_request_tokens). Given: %zu or more",
                       l->max_tokens + 1, n);
    return 0;
}

static int check_results(const struct pipeline_limits *l, size_t n, struct err *e)
{
    if (l->max_results && n > l->max_results)
        return err_set(e, ERR_INVALID,
                       "the request asks for %zu results > maximum allowed %zu "
                       "(limits.max_results): ask for a smaller top_k or send fewer inputs",
                       n, l->max_results);
    return 0;
}

static size_t textcls_results(const struct pipeline *p, const struct pipeline_request *r)
{
    size_t labels = p->labels ? p->out_width : 1;
    if (!r->tc.top_k_given)
        return r->tc.return_all_scores ? labels : 1;
    return r->tc.top_k && r->tc.top_k < labels ? r->tc.top_k : labels;
}

static size_t zero_shot_results(const struct pipeline *p, const struct pipeline_request *r)
{
    (void)p;
    return r->zs.n_labels;
}

static size_t qa_results(const struct pipeline *p, const struct pipeline_request *r,
                         const struct unit *u)
{
    (void)p;
    return question_answering_max_results(&u->encs, &r->qa);
}

static size_t fill_mask_results(const struct pipeline *p, const struct pipeline_request *r,
                                const struct unit *u)
{
    return fill_mask_max_results(p->tk, &u->encs.v[0], p->out_width, &r->fm);
}

/* ---- prepare ---- */

void pipeline_request_free(struct pipeline_request *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_units; i++) {
        struct unit *u = &r->units[i];
        encodings_fini(&u->encs);
        if (u->pairs)
            for (size_t k = 0; k < r->zs.n_labels; k++)
                encodings_fini(&u->pairs[k]);
        free(u->pairs);
    }
    for (size_t i = 0; i < r->n_items; i++)
        free(r->items[i].out);
    free(r->units);
    free(r->items);
    fill_mask_params_fini(&r->fm);
    if (r->zs_init)
        zero_shot_params_fini(&r->zs);
    json_decref(r->inputs);
    json_decref(r->parameters);
    free(r);
}

size_t pipeline_request_items(const struct pipeline_request *r)
{
    return r->n_items;
}

size_t pipeline_request_max_len(const struct pipeline_request *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_items; i++)
        if (r->items[i].enc->n > n)
            n = r->items[i].enc->n;
    return n;
}

size_t pipeline_request_tokens(const struct pipeline_request *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_items; i++)
        n += r->items[i].enc->n;
    return n;
}

/* Tokenizer truncation parameters of text-classification and feature-extraction, which
 * transformers passes on to the tokenizer: truncation (bool or strategy) and max_length.
 * Off by default, as the pipelines (tokenizer.json's own setting is overridden). */
static int trunc_params(const struct pipeline *p, const json_t *parameters,
                        struct tokenizer_params *tp, struct err *e)
{
    *tp = tokenizer_params_default(p->tk);
    tp->add_special_tokens = true;
    tp->truncation = false;
    tp->padding = PAD_NONE;
    tp->stride = 0;
    tp->strategy = TRUNC_LONGEST_FIRST;
    const json_t *v = json_object_get(parameters, "truncation");
    const char *s = json_string_value(v);
    bool given = false;
    if (json_is_true(v) || (s && strcmp(s, "longest_first") == 0)) {
        tp->truncation = true;
    } else if (s && strcmp(s, "only_first") == 0) {
        tp->truncation = true;
        tp->strategy = TRUNC_ONLY_FIRST;
    } else if (s && strcmp(s, "only_second") == 0) {
        tp->truncation = true;
        tp->strategy = TRUNC_ONLY_SECOND;
    } else if (v && !json_is_null(v) && !json_is_false(v) &&
               !(s && strcmp(s, "do_not_truncate") == 0)) {
        return err_set(e, ERR_INVALID,
                       "parameter 'truncation' must be true, false, \"longest_first\", "
                       "\"only_first\", \"only_second\" or \"do_not_truncate\"");
    }
    given = v && !json_is_null(v);
    size_t max_length = 0;
    int rc = pipeline_param_positive(parameters, "max_length", true, &max_length, NULL, e);
    if (rc)
        return rc;
    if (max_length && !given) /* transformers: max_length alone turns on longest_first */
        tp->truncation = true;
    if (tp->truncation) {
        size_t mml = tokenizer_model_max_length(p->tk);
        tp->max_length = max_length ? max_length : mml && mml < p->max_tokens ? mml : p->max_tokens;
    }
    return 0;
}

static int add_unit(struct pipeline_request *r, const char *text, size_t len, const char *pair,
                    size_t pair_len, struct err *e)
{
    if (r->n_units == r->cap_units) { /* doubling: one realloc per input was quadratic */
        size_t cap = r->cap_units ? 2 * r->cap_units : 8;
        struct unit *u = realloc(r->units, cap * sizeof *u);
        if (!u)
            return err_set(e, ERR_NOMEM, "pipeline: out of memory");
        r->units = u;
        r->cap_units = cap;
    }
    r->units[r->n_units++] =
        (struct unit){.text = text, .len = len, .pair = pair, .pair_len = pair_len};
    return 0;
}

static int add_string_unit(struct pipeline_request *r, const json_t *v, const char *what,
                           struct err *e)
{
    if (!json_is_string(v))
        return err_set(e, ERR_INPUT, "%s must be a string", what);
    return add_unit(r, json_string_value(v), json_string_length(v), NULL, 0, e);
}

/* A string, or a list of strings: one unit each. */
static int strings_input(struct pipeline_request *r, const char *task, struct err *e)
{
    const json_t *in = r->inputs;
    if (json_is_string(in))
        return add_string_unit(r, in, "'inputs'", e);
    if (!json_is_array(in))
        return err_set(e, ERR_INPUT, "%s: 'inputs' must be a string or a list of strings", task);
    r->list_result = true;
    for (size_t i = 0; i < json_array_size(in); i++) {
        char what[64];
        snprintf(what, sizeof what, "'inputs[%zu]'", i);
        int rc = add_string_unit(r, json_array_get(in, i), what, e);
        if (rc)
            return rc;
    }
    return 0;
}

/* {"text", "text_pair"} (text_pair optional). */
static int text_pair_unit(struct pipeline_request *r, const json_t *o, const char *what,
                          struct err *e)
{
    const json_t *t = json_object_get(o, "text"), *pr = json_object_get(o, "text_pair");
    if (!json_is_string(t))
        return err_set(e, ERR_INPUT, "%s: field 'text' must be a string", what);
    if (pr && !json_is_null(pr) && !json_is_string(pr))
        return err_set(e, ERR_INPUT, "%s: field 'text_pair' must be a string", what);
    return add_unit(r, json_string_value(t), json_string_length(t),
                    json_is_string(pr) ? json_string_value(pr) : NULL, json_string_length(pr), e);
}

/* text-classification: "text" | {"text", "text_pair"} | [[text, pair]] | list of the first
 * two. Like transformers, only a plain string gets its result wrapped in a list. */
static int textcls_input(struct pipeline_request *r, struct err *e)
{
    const json_t *in = r->inputs;
    bool legacy = !r->tc.top_k_given;
    if (json_is_string(in))
        return add_string_unit(r, in, "'inputs'", e);
    r->unwrap = legacy;
    if (json_is_object(in))
        return text_pair_unit(r, in, "'inputs'", e);
    if (!json_is_array(in))
        return err_set(e, ERR_INPUT,
                       "text-classification: 'inputs' must be a string, an object "
                       "{\"text\", \"text_pair\"} or a list of them");
    const json_t *first = json_array_get(in, 0);
    if (json_array_size(in) == 1 && json_is_array(first)) { /* legacy [[text, pair]] */
        const json_t *a = json_array_get(first, 0), *b = json_array_get(first, 1);
        if (json_array_size(first) != 2 || !json_is_string(a) || !json_is_string(b))
            return err_set(e, ERR_INPUT,
                           "text-classification: a pair in 'inputs' must be [text, text_pair] "
                           "strings");
        return add_unit(r, json_string_value(a), json_string_length(a), json_string_value(b),
                        json_string_length(b), e);
    }
    r->list_result = true;
    for (size_t i = 0; i < json_array_size(in); i++) {
        const json_t *v = json_array_get(in, i);
        char what[64];
        snprintf(what, sizeof what, "'inputs[%zu]'", i);
        int rc;
        if (json_is_object(v))
            rc = text_pair_unit(r, v, what, e);
        else if (json_is_array(v))
            rc = err_set(e, ERR_INPUT,
                         "text-classification: %s: give a pair as {\"text\", \"text_pair\"}", what);
        else
            rc = add_string_unit(r, v, what, e);
        if (rc)
            return rc;
    }
    return 0;
}

static int qa_unit(struct pipeline_request *r, const json_t *o, const char *what, struct err *e)
{
    const json_t *q = json_object_get(o, "question"), *c = json_object_get(o, "context");
    if (!json_is_object(o))
        return err_set(e, ERR_INPUT,
                       "question-answering: %s must be an object {\"question\", "
                       "\"context\"}",
                       what);
    if (!json_is_string(q) || !json_is_string(c))
        return err_set(e, ERR_INPUT,
                       "question-answering: %s needs string fields 'question' and 'context'", what);
    return add_unit(r, json_string_value(q), json_string_length(q), json_string_value(c),
                    json_string_length(c), e);
}

/* {"question", "context"} or a list of them (a list of one gives one result, as HF). */
static int qa_input(struct pipeline_request *r, struct err *e)
{
    const json_t *in = r->inputs;
    if (!json_is_array(in))
        return qa_unit(r, in, "'inputs'", e);
    r->list_result = json_array_size(in) != 1;
    for (size_t i = 0; i < json_array_size(in); i++) {
        char what[64];
        snprintf(what, sizeof what, "'inputs[%zu]'", i);
        int rc = qa_unit(r, json_array_get(in, i), what, e);
        if (rc)
            return rc;
    }
    return 0;
}

/* zero-shot: an object input {"sequence(s)", "candidate_labels", ...} moves its other
 * fields into the parameters (as the pipeline's keyword arguments). */
static int zero_shot_input(struct pipeline_request *r, struct err *e)
{
    if (!json_is_object(r->inputs))
        return 0;
    json_t *seq = json_object_get(r->inputs, "sequences");
    if (!seq)
        seq = json_object_get(r->inputs, "sequence");
    if (!seq)
        return err_set(e, ERR_INPUT,
                       "zero-shot-classification: an object 'inputs' needs a field 'sequence'");
    json_incref(seq);
    const char *key;
    json_t *v;
    json_object_foreach(r->inputs, key, v)
    {
        if (strcmp(key, "sequence") != 0 && strcmp(key, "sequences") != 0 &&
            json_object_set(r->parameters, key, v) != 0) {
            json_decref(seq);
            return err_set(e, ERR_NOMEM, "pipeline: out of memory");
        }
    }
    json_decref(r->inputs);
    r->inputs = seq;
    return 0;
}

/* ---- each task's parameters and input units (no tokenization yet) ---- */

static int parse_text_classification(const struct pipeline *p, struct pipeline_request *r,
                                     struct err *e)
{
    int rc;
    if ((rc = text_classification_params(r->parameters, &r->tc, e)) ||
        (rc = trunc_params(p, r->parameters, &r->tp, e)))
        return rc;
    return textcls_input(r, e);
}

static int parse_token_classification(const struct pipeline *p, struct pipeline_request *r,
                                      struct err *e)
{
    (void)p;
    int rc = token_classification_params(r->parameters, &r->tok, e);
    return rc ? rc : strings_input(r, "token-classification", e);
}

static int parse_question_answering(const struct pipeline *p, struct pipeline_request *r,
                                    struct err *e)
{
    (void)p;
    int rc = question_answering_params(r->parameters, &r->qa, e);
    return rc ? rc : qa_input(r, e);
}

static int parse_fill_mask(const struct pipeline *p, struct pipeline_request *r, struct err *e)
{
    int rc;
    if ((rc = fill_mask_params(p->tk, r->parameters, &r->fm, e)) ||
        (rc = trunc_params(p, r->parameters, &r->tp, e)) ||
        (rc = strings_input(r, "fill-mask", e)))
        return rc;
    r->list_result = r->list_result && r->n_units != 1;
    return 0;
}

static int parse_zero_shot(const struct pipeline *p, struct pipeline_request *r, struct err *e)
{
    (void)p;
    int rc;
    if ((rc = zero_shot_input(r, e)) != 0 || (rc = zero_shot_params(r->parameters, &r->zs, e)))
        return rc;
    r->zs_init = true;
    return strings_input(r, "zero-shot-classification", e);
}

static int parse_feature_extraction(const struct pipeline *p, struct pipeline_request *r,
                                    struct err *e)
{
    int rc = trunc_params(p, r->parameters, &r->tp, e);
    return rc ? rc : strings_input(r, "feature-extraction", e);
}

static int parse_sentence_embeddings(const struct pipeline *p, struct pipeline_request *r,
                                     struct err *e)
{
    r->tp = tokenizer_params_default(p->tk);
    r->tp.add_special_tokens = true;
    r->tp.padding = PAD_NONE;
    r->tp.stride = 0;
    r->tp.truncation = true;
    r->tp.strategy = TRUNC_LONGEST_FIRST;
    r->tp.max_length = p->max_seq_length;
    r->normalize = -1;
    if (json_object_get(r->parameters, "normalize")) {
        bool norm = false;
        int rc = pipeline_param_bool(r->parameters, "normalize", &norm, e);
        if (rc)
            return rc;
        if (!json_is_null(json_object_get(r->parameters, "normalize")))
            r->normalize = norm;
    }
    return strings_input(r, "sentence-embeddings", e);
}

/* ---- each task's tokenizing of a unit ---- */

static int encode_token_classification(const struct pipeline *p, struct pipeline_request *r,
                                       struct unit *u, struct err *e)
{
    (void)r;
    return token_classification_prepare(p->tk, u->text, u->len, &u->encs, e);
}

static int encode_question_answering(const struct pipeline *p, struct pipeline_request *r,
                                     struct unit *u, struct err *e)
{
    return question_answering_prepare(p->tk, u->text, u->len, u->pair, u->pair_len, &r->qa,
                                      &u->encs, e);
}

static int encode_zero_shot(const struct pipeline *p, struct pipeline_request *r, struct unit *u,
                            struct err *e)
{
    if (u->len == 0)
        return err_set(e, ERR_INVALID, "zero-shot-classification: the sequence to classify is empty");
    u->pairs = calloc(r->zs.n_labels, sizeof *u->pairs);
    if (!u->pairs)
        return err_set(e, ERR_NOMEM, "pipeline: out of memory");
    return zero_shot_prepare(p->tk, u->text, u->len, &r->zs, u->pairs, e);
}

static int encode_fill_mask(const struct pipeline *p, struct pipeline_request *r, struct unit *u,
                            struct err *e)
{
    int rc = tokenizer_encode(p->tk, u->text, u->len, u->pair, u->pair_len, &r->tp, &u->encs, e);
    return rc ? rc : fill_mask_check(p->tk, &u->encs.v[0], e);
}

/* Tokenizes unit u into its encoding(s): the task's hook, else the tokenizer with r->tp. */
static int encode_unit(const struct pipeline *p, struct pipeline_request *r, struct unit *u,
                       struct err *e)
{
    const struct task_row *t = task_row(p->task);
    if (t->encode)
        return t->encode(p, r, u, e);
    return tokenizer_encode(p->tk, u->text, u->len, u->pair, u->pair_len, &r->tp, &u->encs, e);
}

static int add_item(struct pipeline_request *r, const struct pipeline *p, size_t unit,
                    const struct encoding *enc, struct err *e)
{
    if (enc->n == 0)
        return err_set(e, ERR_INVALID, "%s: input %zu gives no tokens", pipeline_task_name(p->task),
                       unit);
    if (enc->n > p->max_tokens)
        return err_set(e, ERR_INVALID,
                       "%s: input %zu has too many tokens (%zu, the model takes at most %zu); "
                       "shorten it or set parameters.truncation to true",
                       pipeline_task_name(p->task), unit, enc->n, p->max_tokens);
    if (r->n_items == r->cap_items) {
        size_t cap = r->cap_items ? 2 * r->cap_items : 8;
        struct item *it = realloc(r->items, cap * sizeof *it);
        if (!it)
            return err_set(e, ERR_NOMEM, "pipeline: out of memory");
        r->items = it;
        r->cap_items = cap;
    }
    r->items[r->n_items++] = (struct item){.enc = enc, .normalize = r->normalize};
    return 0;
}

/* Tokenizes every unit into its encoder items, within the token and result limits; asks
 * stop (when given) before each unit. */
static int encode_units(const struct pipeline *p, struct pipeline_request *r,
                        const struct pipeline_stop *stop, struct err *e)
{
    const struct task_row *t = task_row(p->task);
    size_t tokens = 0, results = r->n_units * (t->unit_results ? t->unit_results(p, r) : 0);
    int rc = check_results(&p->limits, results, e);
    for (size_t i = 0; rc == 0 && i < r->n_units; i++) {
        struct unit *u = &r->units[i];
        if (stop && stop->fn(stop->arg)) {
            rc = err_set(e, ERR_CANCELLED, "%s: cancelled while tokenizing input %zu",
                         pipeline_task_name(p->task), i);
            break;
        }
        if ((rc = encode_unit(p, r, u, e)) != 0)
            break;
        u->first = r->n_items;
        if (u->pairs) {
            for (size_t k = 0; k < r->zs.n_labels && rc == 0; k++)
                rc = add_item(r, p, i, &u->pairs[k].v[0], e);
        } else {
            /* QA: every window; other tasks: the encoding without overflow */
            size_t n = p->task == TASK_QUESTION_ANSWERING ? u->encs.n : 1;
            for (size_t k = 0; k < n && rc == 0; k++)
                rc = add_item(r, p, i, &u->encs.v[k], e);
        }
        u->n = r->n_items - u->first;
        for (size_t k = u->first; rc == 0 && k < r->n_items; k++)
            tokens += r->items[k].enc->n;
        if (rc == 0)
            rc = pipeline_check_tokens(&p->limits, tokens, e);
        if (rc == 0 && t->encoded_results && (results += t->encoded_results(p, r, u)) > 0)
            rc = check_results(&p->limits, results, e);
    }
    return rc;
}

int pipeline_prepare(const struct pipeline *p, const json_t *inputs, const json_t *parameters,
                     struct pipeline_request **out, struct err *e)
{
    return pipeline_prepare_until(p, inputs, parameters, NULL, out, e);
}

int pipeline_prepare_until(const struct pipeline *p, const json_t *inputs,
                           const json_t *parameters, const struct pipeline_stop *stop,
                           struct pipeline_request **out, struct err *e)
{
    *out = NULL;
    if (!inputs || json_is_null(inputs))
        return err_set(e, ERR_INPUT, "%s: 'inputs' is missing", pipeline_task_name(p->task));
    int rc = pipeline_check_parameters(parameters, e);
    /* a list gives one unit per element (or one pair, which is below any limit) */
    if (rc == 0 && json_is_array(inputs))
        rc = pipeline_check_inputs(&p->limits, json_array_size(inputs), e);
    if (rc)
        return rc;
    struct pipeline_request *r = calloc(1, sizeof *r);
    if (!r)
        return err_set(e, ERR_NOMEM, "pipeline: out of memory");
    r->inputs = json_deep_copy(inputs);
    r->parameters = json_is_object(parameters) ? json_deep_copy(parameters) : json_object();
    if (!r->inputs || !r->parameters) {
        rc = err_set(e, ERR_NOMEM, "pipeline: out of memory");
        goto fail;
    }
    if ((rc = task_row(p->task)->parse(p, r, e)) != 0)
        goto fail;
    if (r->n_units == 0) {
        rc = err_set(e, ERR_INVALID, "%s: 'inputs' is an empty list", pipeline_task_name(p->task));
        goto fail;
    }
    if ((rc = pipeline_check_inputs(&p->limits, r->n_units, e)) != 0 ||
        (rc = encode_units(p, r, stop, e)) != 0)
        goto fail;
    *out = r;
    return 0;
fail:
    pipeline_request_free(r);
    return rc;
}

/* ---- forward ---- */

static int by_length(const void *a, const void *b)
{
    const struct item *x = *(const struct item *const *)a, *y = *(const struct item *const *)b;
    if (x->enc->n != y->enc->n)
        return x->enc->n < y->enc->n ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Number of mask tokens of an encoding (fill-mask's vocabulary rows). */
static size_t count_masks(const struct encoding *enc, int32_t mask)
{
    size_t n = 0;
    for (size_t i = 0; i < enc->n; i++)
        n += enc->ids[i] == mask;
    return n;
}

/* Copies item b's part of the batch outputs into its own buffer. out: the head output,
 * hidden: (batch, seq, hidden); lm_row: the item's first row in an MLM output. */
static int keep_output(const struct pipeline *p, struct item *it, int b, int S, const float *out,
                       const float *hidden, size_t lm_row, int32_t mask, struct err *e)
{
    size_t n = it->enc->n, W = p->out_width, H = p->hidden_size;
    const float *src;
    size_t len;
    if (p->task == TASK_SENTENCE_EMBEDDINGS) {
        len = embeddings_dim(&p->pooling, H);
        free(it->out);
        if (!(it->out = malloc(len * sizeof *it->out)))
            return err_set(e, ERR_NOMEM, "pipeline: out of memory");
        it->out_len = len;
        struct pooling_config pool = p->pooling;
        if (it->normalize >= 0)
            pool.normalize = it->normalize;
        return embeddings_pool(&pool, hidden + (size_t)b * (size_t)S * H, it->enc->attention, n, H,
                               it->out, e);
    }
    if (p->task == TASK_FEATURE_EXTRACTION) {
        src = hidden + (size_t)b * (size_t)S * H;
        len = n * H;
    } else if (p->head == HEAD_SEQ_CLS) {
        src = out + (size_t)b * W;
        len = W;
    } else if (p->head == HEAD_MASKED_LM) {
        src = out + lm_row * W;
        len = count_masks(it->enc, mask) * W;
    } else { /* token classifier (n, W) or QA (n, 2) */
        src = out + (size_t)b * (size_t)S * W;
        len = n * W;
    }
    free(it->out);
    if (!(it->out = malloc((len ? len : 1) * sizeof *it->out)))
        return err_set(e, ERR_NOMEM, "pipeline: out of memory");
    memcpy(it->out, src, len * sizeof *it->out);
    it->out_len = len;
    return 0;
}

/* One padded encoder batch over items[0..B). */
static int run_batch(const struct pipeline *p, struct dnn_ctx *ctx, struct encoder_run *run,
                     struct item **items, int B, struct err *e)
{
    int S = (int)items[B - 1]->enc->n; /* sorted by length: the last is the longest */
    size_t M = (size_t)B * (size_t)S;
    int32_t pad = p->cfg->pad_token_id >= 0 ? (int32_t)p->cfg->pad_token_id : 0;
    int32_t mask_id = pipeline_special_id(p->tk, "mask_token");
    int32_t *ids = malloc(M * sizeof *ids);     /* (B, S) */
    int32_t *types = malloc(M * sizeof *types); /* (B, S) */
    int32_t *mask = malloc(M * sizeof *mask);   /* (B, S) */
    int32_t *lm_rows = malloc((M ? M : 1) * sizeof *lm_rows);
    int rc = 0;
    if (!ids || !types || !mask || !lm_rows) {
        rc = err_set(e, ERR_NOMEM, "pipeline: out of memory for a batch of %d x %d", B, S);
        goto cleanup;
    }
    int n_lm = 0;
    for (int b = 0; b < B; b++) {
        const struct encoding *enc = items[b]->enc;
        for (int t = 0; t < S; t++) {
            size_t r = (size_t)b * (size_t)S + (size_t)t, n = enc->n;
            bool in = (size_t)t < n;
            ids[r] = in ? enc->ids[t] : pad;
            types[r] = in ? (int32_t)enc->type_ids[t] : 0;
            mask[r] = in ? enc->attention[t] : 0;
            if (in && p->head == HEAD_MASKED_LM && p->task == TASK_FILL_MASK &&
                enc->ids[t] == mask_id)
                lm_rows[n_lm++] = (int32_t)r;
        }
    }
    if (p->head == HEAD_MASKED_LM && n_lm == 0) /* hidden states only: one cheap row */
        lm_rows[n_lm++] = 0;
    struct encoder_batch batch = {.batch = B,
                                  .seq = S,
                                  .ids = ids,
                                  .type_ids = types,
                                  .mask = mask,
                                  .lm_rows = lm_rows,
                                  .n_lm_rows = n_lm};
    if (p->head != HEAD_MASKED_LM) {
        batch.lm_rows = NULL;
        batch.n_lm_rows = 0;
    }
    const float *out = NULL, *hidden = NULL;
    if ((rc = encoder_forward(p->m, ctx, run, &batch, &out, task_row(p->task)->hidden ? &hidden : NULL,
                              e)) != 0)
        goto cleanup;
    size_t lm_row = 0;
    for (int b = 0; b < B && rc == 0; b++) {
        rc = keep_output(p, items[b], b, S, out, hidden, lm_row, mask_id, e);
        if (p->task == TASK_FILL_MASK)
            lm_row += count_masks(items[b]->enc, mask_id);
    }
cleanup:
    free(ids);
    free(types);
    free(mask);
    free(lm_rows);
    return rc;
}

int pipeline_forward(const struct pipeline *p, struct dnn_ctx *ctx, struct encoder_run *run,
                     struct pipeline_request *const *reqs, size_t n_reqs, struct err *e)
{
    size_t n = 0;
    for (size_t i = 0; i < n_reqs; i++)
        n += reqs[i]->n_items;
    if (n == 0)
        return 0;
    struct item **all = malloc(n * sizeof *all);
    if (!all)
        return err_set(e, ERR_NOMEM, "pipeline: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n_reqs; i++)
        for (size_t j = 0; j < reqs[i]->n_items; j++) {
            all[k] = &reqs[i]->items[j];
            all[k]->order = k;
            k++;
        }
    /* sorted by length, padding stays small; each batch holds at most batch_tokens padded
     * tokens (rows x its longest row) */
    qsort(all, n, sizeof *all, by_length);
    int rc = 0;
    for (size_t from = 0; from < n && rc == 0;) {
        size_t to = from + 1;
        while (to < n && (to + 1 - from) * all[to]->enc->n <= p->batch_tokens && to - from < 4096)
            to++;
        rc = run_batch(p, ctx, run, all + from, (int)(to - from), e);
        from = to;
    }
    free(all);
    for (size_t i = 0; i < n_reqs && rc == 0; i++)
        reqs[i]->forwarded = true;
    return rc;
}

/* ---- finish ---- */

static int finish_qa(const struct pipeline *p, const struct pipeline_request *r,
                     const struct unit *u, json_t **out, struct err *e)
{
    float **start = calloc(u->n, sizeof *start), **end = calloc(u->n, sizeof *end);
    int rc = 0;
    if (!start || !end)
        rc = err_set(e, ERR_NOMEM, "pipeline: out of memory");
    for (size_t w = 0; w < u->n && rc == 0; w++) {
        const struct item *it = &r->items[u->first + w];
        size_t n = it->enc->n;
        start[w] = malloc(n * sizeof **start); /* (n) */
        end[w] = malloc(n * sizeof **end);     /* (n) */
        if (!start[w] || !end[w]) {
            rc = err_set(e, ERR_NOMEM, "pipeline: out of memory");
            break;
        }
        for (size_t t = 0; t < n; t++) { /* it->out: (n, 2) start and end logits */
            start[w][t] = it->out[2 * t];
            end[w][t] = it->out[2 * t + 1];
        }
    }
    if (rc == 0)
        rc = question_answering_finish(p->tk, u->pair, u->pair_len, &u->encs,
                                       (const float *const *)start, (const float *const *)end,
                                       &r->qa, out, e);
    for (size_t w = 0; w < u->n; w++) {
        if (start)
            free(start[w]);
        if (end)
            free(end[w]);
    }
    free(start);
    free(end);
    return rc;
}

/* fill-mask: the item's mask rows laid out at their token positions, as fill_mask_finish
 * reads them ((last mask + 1, vocab); rows of other tokens are never read). */
static int finish_fill_mask(const struct pipeline *p, const struct pipeline_request *r,
                            const struct item *it, json_t **out, struct err *e)
{
    int32_t mask = pipeline_special_id(p->tk, "mask_token");
    size_t W = p->out_width, last = 0;
    for (size_t t = 0; t < it->enc->n; t++)
        if (it->enc->ids[t] == mask)
            last = t;
    float *rows = malloc((last + 1) * W * sizeof *rows);
    if (!rows)
        return err_set(e, ERR_NOMEM, "fill-mask: out of memory");
    size_t k = 0;
    for (size_t t = 0; t <= last; t++)
        if (it->enc->ids[t] == mask)
            memcpy(rows + t * W, it->out + k++ * W, W * sizeof *rows);
    int rc = fill_mask_finish(p->tk, it->enc, rows, W, &r->fm, out, e);
    free(rows);
    return rc;
}

static int finish_zero_shot(const struct pipeline *p, const struct pipeline_request *r,
                            const struct unit *u, json_t **out, struct err *e)
{
    size_t C = p->out_width;
    float *logits = malloc(u->n * C * sizeof *logits); /* (n_labels, n_classes) */
    if (!logits)
        return err_set(e, ERR_NOMEM, "zero-shot-classification: out of memory");
    for (size_t i = 0; i < u->n; i++)
        memcpy(logits + i * C, r->items[u->first + i].out, C * sizeof *logits);
    /* the sequence as given (a copy: u->text is not NUL-terminated if it holds NULs) */
    char *seq = strndup(u->text, u->len);
    int rc = seq ? zero_shot_finish(seq, logits, C, (const char *const *)p->labels, &r->zs, out, e)
                 : err_set(e, ERR_NOMEM, "zero-shot-classification: out of memory");
    free(seq);
    free(logits);
    return rc;
}

/* feature-extraction: (1, n, hidden) nested lists, as the pipeline's tensor.tolist(). */
static json_t *features_json(const struct item *it, size_t H)
{
    json_t *rows = json_array(), *outer = json_array();
    for (size_t t = 0; rows && t < it->enc->n; t++)
        if (json_array_append_new(rows, embeddings_to_json(it->out + t * H, H)) != 0) {
            json_decref(rows);
            rows = NULL;
        }
    if (!rows || !outer || json_array_append_new(outer, rows) != 0) {
        json_decref(outer);
        return NULL;
    }
    return outer;
}

static int finish_text_classification(const struct pipeline *p, const struct pipeline_request *r,
                                      const struct unit *u, json_t **out, struct err *e)
{
    const struct item *it = &r->items[u->first];
    int rc = text_classification_finish(it->out, p->out_width, (const char *const *)p->labels,
                                        p->problem_type, &r->tc, out, e);
    if (rc == 0 && r->unwrap) {
        json_t *first = json_incref(json_array_get(*out, 0));
        json_decref(*out);
        *out = first;
    }
    return rc;
}

static int finish_token_classification(const struct pipeline *p,
                                       const struct pipeline_request *r, const struct unit *u,
                                       json_t **out, struct err *e)
{
    const struct item *it = &r->items[u->first];
    return token_classification_finish(p->tk, u->text, u->len, it->enc, it->out, p->out_width,
                                       (const char *const *)p->labels, &r->tok, out, e);
}

static int finish_fill_mask_unit(const struct pipeline *p, const struct pipeline_request *r,
                                 const struct unit *u, json_t **out, struct err *e)
{
    return finish_fill_mask(p, r, &r->items[u->first], out, e);
}

static int finish_features(const struct pipeline *p, const struct pipeline_request *r,
                           const struct unit *u, json_t **out, struct err *e)
{
    *out = features_json(&r->items[u->first], p->hidden_size);
    return *out ? 0 : err_set(e, ERR_NOMEM, "feature-extraction: cannot build the result");
}

static int finish_embedding(const struct pipeline *p, const struct pipeline_request *r,
                            const struct unit *u, json_t **out, struct err *e)
{
    (void)p;
    const struct item *it = &r->items[u->first];
    *out = embeddings_to_json(it->out, it->out_len);
    return *out ? 0 : err_set(e, ERR_NOMEM, "sentence-embeddings: cannot build the result");
}

int pipeline_finish(const struct pipeline *p, const struct pipeline_request *r, json_t **out,
                    struct err *e)
{
    *out = NULL;
    if (!r->forwarded)
        return err_set(e, ERR_INTERNAL, "pipeline_finish: the request was not forwarded");
    json_t *list = r->list_result ? json_array() : NULL;
    if (r->list_result && !list)
        return err_set(e, ERR_NOMEM, "pipeline: out of memory");
    for (size_t i = 0; i < r->n_units; i++) {
        json_t *one = NULL;
        int rc = task_row(p->task)->finish(p, r, &r->units[i], &one, e);
        if (rc) {
            json_decref(list);
            return rc;
        }
        if (!list) {
            *out = one;
            return 0;
        }
        if (json_array_append_new(list, one) != 0) {
            json_decref(list);
            return err_set(e, ERR_NOMEM, "pipeline: out of memory");
        }
    }
    *out = list;
    return 0;
}

int pipeline_run(const struct pipeline *p, struct dnn_ctx *ctx, struct encoder_run *run,
                 const json_t *inputs, const json_t *parameters, json_t **out, struct err *e)
{
    *out = NULL;
    struct pipeline_request *r = NULL;
    int rc = pipeline_prepare(p, inputs, parameters, &r, e);
    if (rc == 0)
        rc = pipeline_forward(p, ctx, run, &r, 1, e);
    if (rc == 0)
        rc = pipeline_finish(p, r, out, e);
    pipeline_request_free(r);
    return rc;
}

/* ---- the task table ---- */

static const struct task_row task_rows[] = {
    {TASK_TEXT_CLASSIFICATION, "text-classification", "sentiment-analysis", HEAD_SEQ_CLS, false,
     parse_text_classification, NULL, textcls_results, NULL, finish_text_classification},
    {TASK_TOKEN_CLASSIFICATION, "token-classification", "ner", HEAD_TOKEN_CLS, false,
     parse_token_classification, encode_token_classification, NULL, NULL,
     finish_token_classification},
    {TASK_QUESTION_ANSWERING, "question-answering", NULL, HEAD_QA, false,
     parse_question_answering, encode_question_answering, NULL, qa_results, finish_qa},
    {TASK_FILL_MASK, "fill-mask", NULL, HEAD_MASKED_LM, false, parse_fill_mask, encode_fill_mask,
     NULL, fill_mask_results, finish_fill_mask_unit},
    {TASK_ZERO_SHOT_CLASSIFICATION, "zero-shot-classification", NULL, HEAD_SEQ_CLS, false,
     parse_zero_shot, encode_zero_shot, zero_shot_results, NULL, finish_zero_shot},
    {TASK_FEATURE_EXTRACTION, "feature-extraction", NULL, -1, true, parse_feature_extraction,
     NULL, NULL, NULL, finish_features},
    {TASK_SENTENCE_EMBEDDINGS, "sentence-embeddings", NULL, -1, true, parse_sentence_embeddings,
     NULL, NULL, NULL, finish_embedding},
};
#define N_TASKS (sizeof task_rows / sizeof task_rows[0])

static const struct task_row *task_row(enum pipeline_task t)
{
    for (size_t i = 0; i < N_TASKS; i++)
        if (task_rows[i].task == t)
            return &task_rows[i];
    return &task_rows[0]; /* never: a pipeline is only opened for a task of the table */
}

int pipeline_task_by_name(const char *name)
{
    for (size_t i = 0; name && i < N_TASKS; i++)
        if (strcmp(name, task_rows[i].name) == 0 ||
            (task_rows[i].alias && strcmp(name, task_rows[i].alias) == 0))
            return (int)task_rows[i].task;
    return -1;
}

void pipeline_task_list(char *buf, size_t size)
{
    if (size)
        buf[0] = '\0';
    for (size_t i = 0; i < N_TASKS; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, "%s%s", i ? ", " : "", task_rows[i].name);
    }
}

const char *pipeline_task_name(enum pipeline_task task)
{
    for (size_t i = 0; i < N_TASKS; i++)
        if (task_rows[i].task == task)
            return task_rows[i].name;
    return "unknown";
}
