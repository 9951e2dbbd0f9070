/* api_tei: the Text Embeddings Inference dialect's queued routes. POST /embed
 * (sentence-embeddings), /predict and /rerank (text-classification) validate TEI's request
 * forms, translate them to the engine pipelines' inputs and queue them; their responders
 * reshape the pipeline results into TEI's JSON. Also the request fields every TEI route reads
 * (api_tei.h). Every route takes an inferd extra, the model's name ("model"), else uses the
 * first model of a fitting task. Errors follow TEI: 422 naming the field ("`inputs` cannot be
 * empty"); unknown fields are ignored. /tokenize, /decode and /info: api_tei_sync.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_tei.h"

/* ---- request fields (each answers the call with 422 and returns false when invalid) ---- */

/* body[key] as a boolean; absent or null gives def. */
bool tei_field_bool(struct call *c, const char *key, bool def, bool *out)
{
    const json_t *v = json_object_get(call_body(c), key);
    *out = def;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_boolean(v)) {
        call_error(c, ERR_INVALID, key, "`%s` must be true or false", key);
        return false;
    }
    *out = json_is_true(v);
    return true;
}

/* The model named by the body's "model", else the first one of tasks (NULL: answered). */
struct model *tei_field_model(struct call *c, unsigned tasks)
{
    const json_t *v = json_object_get(call_body(c), "model");
    if (v && !json_is_null(v) && !json_is_string(v)) {
        call_error(c, ERR_INVALID, "model", "`model` must be a string");
        return NULL;
    }
    return call_use_model(c, json_string_value(v), tasks, "model");
}

/* TEI's truncation_direction (only "right" is what the pipelines do) and prompt_name (a
 * string or null where the route takes prompts, else null). */
bool tei_fields_unsupported(struct call *c, bool prompts)
{
    const json_t *dir = json_object_get(call_body(c), "truncation_direction");
    const json_t *prompt = json_object_get(call_body(c), "prompt_name");
    if (dir && !json_is_null(dir) &&
        !(json_is_string(dir) && strcasecmp(json_string_value(dir), "right") == 0)) {
        call_error(c, ERR_INVALID, "truncation_direction",
                   "`truncation_direction` must be \"right\" (left truncation is not supported)");
        return false;
    }
    if (prompts && prompt && !json_is_null(prompt) && !json_is_string(prompt)) {
        call_error(c, ERR_INVALID, "prompt_name", "`prompt_name` must be a string");
        return false;
    }
    if (!prompts && prompt && !json_is_null(prompt)) {
        call_error(c, ERR_INVALID, "prompt_name", "`prompt_name` is not supported on this route");
        return false;
    }
    return true;
}

/* A list of token ids (what TEI also accepts as text inputs; inferd does not). */
static bool is_id_list(const json_t *v)
{
    if (!json_is_array(v) || json_array_size(v) == 0)
        return false;
    for (size_t i = 0; i < json_array_size(v); i++)
        if (!json_is_integer(json_array_get(v, i)))
            return false;
    return true;
}

/* "inputs": "text" | ["a", "b"] as a new list of strings; empty texts are refused unless
 * allow_empty. */
json_t *tei_field_texts(struct call *c, bool allow_empty)
{
    json_t *in = json_object_get(call_body(c), "inputs");
    if (!in || json_is_null(in)) {
        call_error(c, ERR_INVALID, "inputs", "`inputs` is required");
        return NULL;
    }
    if (is_id_list(in) || (json_is_array(in) && is_id_list(json_array_get(in, 0)))) {
        call_error(c, ERR_INVALID, "inputs", "token id inputs are not supported");
        return NULL;
    }
    json_t *list = json_is_string(in) ? json_pack("[O]", in) : json_incref(in);
    const char *why = json_is_array(list) ? NULL : "`inputs` must be a string or a list of strings";
    if (!why && json_array_size(list) == 0)
        why = "`inputs` cannot be empty";
    for (size_t i = 0; !why && i < json_array_size(list); i++) {
        const json_t *v = json_array_get(list, i);
        if (!json_is_string(v))
            why = "`inputs` must be a string or a list of strings";
        else if (!allow_empty && json_string_length(v) == 0)
            why = "`inputs` cannot be empty";
    }
    if (why) {
        call_error(c, ERR_INVALID, "inputs", "%s", why);
        json_decref(list);
        return NULL;
    }
    return list;
}

/* ---- POST /embed ---- */

struct embed_opts {
    bool normalize;
    size_t dimensions; /* 0: the model's */
};

/* result: one vector per input (the pipeline was given a list). */
static json_t *respond_embed(struct call *c, json_t *result, struct err *e)
{
    const struct embed_opts *o = call_user(c);
    for (size_t i = 0; o->dimensions && i < json_array_size(result); i++) {
        json_t *vec = json_array_get(result, i);
        if (o->dimensions > json_array_size(vec)) {
            err_set(e, ERR_INVALID, "`dimensions` is %zu but the model's embeddings have %zu",
                    o->dimensions, json_array_size(vec));
            return NULL;
        }
        embeddings_truncate_json(vec, o->dimensions, o->normalize);
    }
    return result;
}

void route_tei_embed(struct call *c)
{
    struct embed_opts o;
    bool truncate;
    const json_t *dims = json_object_get(call_body(c), "dimensions");
    if (!tei_field_bool(c, "normalize", true, &o.normalize) ||
        !tei_field_bool(c, "truncate", false, &truncate) || !tei_fields_unsupported(c, true))
        return;
    if (dims && !json_is_null(dims) && (!json_is_integer(dims) || json_integer_value(dims) <= 0)) {
        call_error(c, ERR_INVALID, "dimensions", "`dimensions` must be a positive integer");
        return;
    }
    o.dimensions = json_is_integer(dims) ? (size_t)json_integer_value(dims) : 0;
    /* truncate: the sentence-embeddings pipeline always truncates to max_seq_length, as
     * sentence-transformers does, so both values behave alike */
    json_t *texts = tei_field_texts(c, false);
    struct model *m = texts ? tei_field_model(c, TASK_BIT(TASK_SENTENCE_EMBEDDINGS)) : NULL;
    if (!m) {
        json_decref(texts);
        return;
    }
    struct embed_opts *user = malloc(sizeof *user);
    /* prompt_name: the model's prompt of that name before every input (the pipeline's) */
    const json_t *prompt = json_object_get(call_body(c), "prompt_name");
    json_t *params = json_pack("{s:b, s:O?}", "normalize", o.normalize, "prompt_name",
                               json_is_string(prompt) ? prompt : NULL);
    if (!user || !params) {
        free(user);
        call_error(c, ERR_NOMEM, NULL, "out of memory");
    } else {
        *user = o;
        call_set_user(c, user);
        call_submit(c, m, texts, params, respond_embed);
    }
    json_decref(params);
    json_decref(texts);
}

/* ---- POST /predict and /rerank (text-classification) ---- */

/* A TEI sequence (a list of one or two strings, or a string) as the text-classification
 * pipeline takes it: "a" or {"text": a, "text_pair": b}. NULL when malformed. */
static json_t *sequence_input(json_t *seq)
{
    if (json_is_string(seq))
        return json_incref(seq);
    size_t n = json_array_size(seq);
    json_t *a = json_array_get(seq, 0), *b = json_array_get(seq, 1);
    if (n == 1 && json_is_string(a))
        return json_incref(a);
    if (n == 2 && json_is_string(a) && json_is_string(b))
        return json_pack("{s:O, s:O}", "text", a, "text_pair", b);
    return NULL;
}

/* TEI's predict inputs: "a" | [a] | [a, b] (one sequence) | [[a], [b, c], ...] (a batch, a
 * list whose first element is a list; plain strings are taken in it too). *batch tells
 * which. NULL (answered) when malformed. */
static json_t *predict_inputs(struct call *c, bool *batch)
{
    json_t *in = json_object_get(call_body(c), "inputs");
    *batch = json_is_array(in) && json_is_array(json_array_get(in, 0));
    json_t *out = NULL;
    if (!in || json_is_null(in) || (json_is_array(in) && json_array_size(in) == 0)) {
        call_error(c, ERR_INVALID, "inputs", in ? "`inputs` cannot be empty" : "`inputs` is required");
        return NULL;
    }
    if (!*batch) {
        out = sequence_input(in);
    } else if ((out = json_array())) {
        for (size_t i = 0; out && i < json_array_size(in); i++) {
            json_t *one = sequence_input(json_array_get(in, i));
            if (!one || json_array_append_new(out, one) != 0) {
                json_decref(out);
                out = NULL;
            }
        }
    }
    if (!out)
        call_error(c, ERR_INVALID, "inputs",
                   "`inputs` must be a string, a pair of strings [string, string] or a batch of "
                   "mixed strings and pairs [[string], [string, string], ...]");
    return out;
}

/* Parameters for every label sorted by score: top_k null, the function (NULL: the model's
 * default), truncation when asked. */
static json_t *classify_params(const char *function, bool truncate)
{
    json_t *p = json_pack("{s:n}", "top_k");
    if (p && function)
        json_object_set_new(p, "function_to_apply", json_string(function));
    if (p && truncate)
        json_object_set_new(p, "truncation", json_true());
    return p;
}

/* Queues inputs with params on m; frees both and answers on failure. */
static void submit_classify(struct call *c, struct model *m, json_t *inputs, json_t *params,
                            respond_fn respond)
{
    if (!inputs || !params) {
        call_error(c, ERR_NOMEM, NULL, "out of memory");
    } else {
        call_submit(c, m, inputs, params, respond);
    }
    json_decref(inputs);
    json_decref(params);
}

/* One sequence's [{"label", "score"}, ...] (unwrapping a [[...]] the pipeline may give). */
static json_t *label_scores(json_t *r)
{
    return json_is_array(json_array_get(r, 0)) ? json_array_get(r, 0) : r;
}

static json_t *respond_predict(struct call *c, json_t *result, struct err *e)
{
    (void)e;
    if (!*(const bool *)call_user(c)) { /* a single sequence (result itself: stolen) */
        json_t *one = label_scores(result);
        return one == result ? result : json_incref(one);
    }
    json_t *out = json_array();
    for (size_t i = 0; out && i < json_array_size(result); i++)
        json_array_append(out, label_scores(json_array_get(result, i)));
    return out;
}

void route_tei_predict(struct call *c)
{
    bool raw, truncate, batch;
    if (!tei_field_bool(c, "raw_scores", false, &raw) ||
        !tei_field_bool(c, "truncate", false, &truncate) || !tei_fields_unsupported(c, false))
        return;
    json_t *inputs = predict_inputs(c, &batch);
    if (!inputs)
        return;
    bool *user = malloc(sizeof *user);
    struct model *m = user ? tei_field_model(c, TASK_BIT(TASK_TEXT_CLASSIFICATION)) : NULL;
    if (!m) {
        if (!user)
            call_error(c, ERR_NOMEM, NULL, "out of memory");
        free(user);
        json_decref(inputs);
        return;
    }
    *user = batch;
    call_set_user(c, user);
    submit_classify(c, m, inputs, classify_params(raw ? "none" : NULL, truncate), respond_predict);
}

struct rank {
    size_t index;
    double score;
};

/* By score, descending; equal scores keep their order. */
static int by_score(const void *a, const void *b)
{
    const struct rank *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* result: per text, the list of the reranker's one {"label", "score"}. */
static json_t *respond_rerank(struct call *c, json_t *result, struct err *e)
{
    const json_t *texts = json_object_get(call_body(c), "texts");
    bool return_text = json_is_true(json_object_get(call_body(c), "return_text"));
    size_t n = json_array_size(result);
    struct rank *ranks = malloc((n ? n : 1) * sizeof *ranks);
    json_t *out = ranks ? json_array() : NULL;
    if (!out) {
        free(ranks);
        err_set(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *best = json_array_get(label_scores(json_array_get(result, i)), 0);
        ranks[i] = (struct rank){i, json_number_value(json_object_get(best, "score"))};
    }
    qsort(ranks, n, sizeof *ranks, by_score);
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_pack("{s:I}", "index", (json_int_t)ranks[i].index);
        if (return_text)
            json_object_set(r, "text", json_array_get(texts, ranks[i].index));
        json_object_set_new(r, "score", json_real(ranks[i].score));
        json_array_append_new(out, r);
    }
    free(ranks);
    return out;
}

/* "query" and "texts" as the pipeline's pairs [{"text": query, "text_pair": t}, ...]. */
static json_t *rerank_inputs(struct call *c)
{
    json_t *query = json_object_get(call_body(c), "query");
    const json_t *texts = json_object_get(call_body(c), "texts");
    const char *why = NULL, *field = "texts";
    if (!json_is_string(query)) {
        why = "`query` must be a string";
        field = "query";
    } else if (!json_is_array(texts))
        why = "`texts` must be a list of strings";
    else if (json_array_size(texts) == 0)
        why = "`texts` cannot be empty";
    for (size_t i = 0; !why && i < json_array_size(texts); i++)
        if (!json_is_string(json_array_get(texts, i)))
            why = "`texts` must be a list of strings";
    json_t *pairs = why ? NULL : json_array();
    for (size_t i = 0; pairs && i < json_array_size(texts); i++)
        json_array_append_new(
            pairs, json_pack("{s:O, s:O}", "text", query, "text_pair", json_array_get(texts, i)));
    if (why)
        call_error(c, ERR_INVALID, field, "%s", why);
    else if (!pairs)
        call_error(c, ERR_NOMEM, NULL, "out of memory");
    return pairs;
}

static size_t n_labels(const struct model *m)
{
    return pipeline_num_labels(model_pipeline(m));
}

/* The model named by "model", else the first loaded one-label text classifier, else the first
 * text classifier (whose label count the caller refuses). NULL when answered. */
static struct model *reranker_model(struct call *c)
{
    const json_t *name = json_object_get(call_body(c), "model");
    struct model *m = NULL;
    size_t n;
    struct model **all = name && !json_is_null(name) ? NULL : server_models(call_server(c), &n);
    for (size_t i = 0; all && i < n; i++) {
        if (!m && model_pipeline(all[i]) &&
            pipeline_task(model_pipeline(all[i])) == TASK_TEXT_CLASSIFICATION &&
            n_labels(all[i]) == 1)
            m = all[i];
        else
            model_unref(all[i]);
    }
    free(all);
    if (!m)
        return tei_field_model(c, TASK_BIT(TASK_TEXT_CLASSIFICATION));
    call_set_model(c, m); /* the call holds it from here */
    return m;
}

void route_tei_rerank(struct call *c)
{
    bool raw, truncate, return_text;
    if (!tei_field_bool(c, "raw_scores", false, &raw) ||
        !tei_field_bool(c, "truncate", false, &truncate) ||
        !tei_field_bool(c, "return_text", false, &return_text) || !tei_fields_unsupported(c, false))
        return;
    json_t *pairs = rerank_inputs(c);
    struct model *m = pairs ? reranker_model(c) : NULL;
    if (!m) {
        json_decref(pairs);
        return;
    }
    if (n_labels(m) != 1) {
        call_error(c, ERR_INVALID, "model", "model %s is not a re-ranker: it has %zu labels", model_name(m),
                   n_labels(m));
        json_decref(pairs);
        return;
    }
    submit_classify(c, m, pairs, classify_params(raw ? "none" : "sigmoid", truncate),
                    respond_rerank);
}
