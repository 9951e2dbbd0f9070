/* task_inputs: each encoder task's side of prepare: its parameters, the Hugging Face
 * Inference API input forms it takes (a string, a pair, a QA example, a zero-shot object, a
 * list of them) turned into units, and the tokenizing of a unit when the plain tokenizer does
 * not do (token-classification's truncation, QA windows, zero-shot pairs, fill-mask's mask
 * check); sentence-embeddings puts the prompt a request picks before its texts. The hooks are rows of the task table (task_table.c); runner.c calls them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner_impl.h"

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

int parse_text_classification(const struct pipeline *p, struct pipeline_request *r,
                              struct err *e)
{
    int rc;
    if ((rc = text_classification_params(r->parameters, &r->tc, e)) ||
        (rc = trunc_params(p, r->parameters, &r->tp, e)))
        return rc;
    return textcls_input(r, e);
}

int parse_token_classification(const struct pipeline *p, struct pipeline_request *r,
                               struct err *e)
{
    int rc = token_classification_params(r->parameters, &r->tok, e);
    return rc ? rc : strings_input(r, p->row->name, e);
}

int parse_question_answering(const struct pipeline *p, struct pipeline_request *r,
                             struct err *e)
{
    (void)p;
    int rc = question_answering_params(r->parameters, &r->qa, e);
    return rc ? rc : qa_input(r, e);
}

int parse_fill_mask(const struct pipeline *p, struct pipeline_request *r, struct err *e)
{
    int rc;
    if ((rc = fill_mask_params(p->tk, r->parameters, &r->fm, e)) ||
        (rc = trunc_params(p, r->parameters, &r->tp, e)) ||
        (rc = strings_input(r, p->row->name, e)))
        return rc;
    r->list_result = r->list_result && r->n_units != 1;
    return 0;
}

int parse_zero_shot(const struct pipeline *p, struct pipeline_request *r, struct err *e)
{
    int rc;
    if ((rc = zero_shot_input(r, e)) != 0 || (rc = zero_shot_params(r->parameters, &r->zs, e)))
        return rc;
    r->zs_init = true;
    return strings_input(r, p->row->name, e);
}

int parse_feature_extraction(const struct pipeline *p, struct pipeline_request *r,
                             struct err *e)
{
    int rc = trunc_params(p, r->parameters, &r->tp, e);
    return rc ? rc : strings_input(r, p->row->name, e);
}

/* v with prompt before it (a new string; v itself when it is not a string). */
static json_t *prompted(const char *prompt, json_t *v)
{
    if (!json_is_string(v))
        return json_incref(v);
    size_t a = strlen(prompt), b = json_string_length(v);
    char *buf = malloc(a + b + 1);
    if (!buf)
        return NULL;
    memcpy(buf, prompt, a);
    memcpy(buf + a, json_string_value(v), b);
    json_t *out = json_stringn_nocheck(buf, a + b);
    free(buf);
    return out;
}

/* parameters.prompt / prompt_name, else the model's default prompt, put before every input
 * string of r->inputs (the request's own copy), as SentenceTransformer.encode does. */
static int apply_prompt(const struct pipeline *p, struct pipeline_request *r, struct err *e)
{
    const char *name = NULL, *given = NULL, *prompt = NULL;
    int rc;
    if ((rc = pipeline_param_string(r->parameters, "prompt_name", &name, e)) ||
        (rc = pipeline_param_string(r->parameters, "prompt", &given, e)) ||
        (rc = embeddings_pick_prompt(&p->prompts, name, given, &prompt, e)))
        return rc;
    if (!prompt || !*prompt)
        return 0;
    bool list = json_is_array(r->inputs);
    size_t n = list ? json_array_size(r->inputs) : 1;
    for (size_t i = 0; i < n; i++) {
        json_t *one = prompted(prompt, list ? json_array_get(r->inputs, i) : r->inputs);
        if (!one)
            return err_set(e, ERR_NOMEM, "sentence-embeddings: out of memory");
        if (!list) {
            json_decref(r->inputs);
            r->inputs = one;
        } else if (json_array_set_new(r->inputs, i, one) != 0) {
            return err_set(e, ERR_NOMEM, "sentence-embeddings: out of memory");
        }
    }
    return 0;
}

int parse_sentence_embeddings(const struct pipeline *p, struct pipeline_request *r,
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
    int rc = apply_prompt(p, r, e);
    return rc ? rc : strings_input(r, p->row->name, e);
}

/* ---- each task's tokenizing of a unit ---- */

int encode_token_classification(const struct pipeline *p, struct pipeline_request *r,
                                struct unit *u, struct err *e)
{
    (void)r;
    return token_classification_prepare(p->tk, u->text, u->len, &u->encs, e);
}

int encode_question_answering(const struct pipeline *p, struct pipeline_request *r,
                              struct unit *u, struct err *e)
{
    return question_answering_prepare(p->tk, u->text, u->len, u->pair, u->pair_len, &r->qa,
                                      &u->encs, e);
}

int encode_zero_shot(const struct pipeline *p, struct pipeline_request *r, struct unit *u,
                     struct err *e)
{
    if (u->len == 0)
        return err_set(e, ERR_INVALID, "zero-shot-classification: the sequence to classify is empty");
    u->pairs = calloc(r->zs.n_labels, sizeof *u->pairs);
    if (!u->pairs)
        return err_set(e, ERR_NOMEM, "pipeline: out of memory");
    return zero_shot_prepare(p->tk, u->text, u->len, &r->zs, u->pairs, e);
}

int encode_fill_mask(const struct pipeline *p, struct pipeline_request *r, struct unit *u,
                     struct err *e)
{
    int rc = tokenizer_encode(p->tk, u->text, u->len, u->pair, u->pair_len, &r->tp, &u->encs, e);
    return rc ? rc : fill_mask_check(p->tk, &u->encs.v[0], e);
}

