/* api_tei_sync: the TEI routes answered at once on a request thread, without the queue:
 * POST /tokenize and /decode run the model's tokenizer (any task's model: "model", else the
 * first one), GET /info describes a model (?model=NAME, else the first one) in TEI's Info
 * shape with inferd's extras; while the model is fetched from the Hub, a 503 saying what is
 * being fetched (each file's bytes). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_gen.h"
#include "api_tei.h"
#include "server.h"

/* ---- POST /tokenize and /decode, answered at once ---- */

/* TEI's tokens of one text: {"id", "text", "special", "start", "stop"} with byte offsets;
 * special tokens carry their token string and null offsets. */
static json_t *tokens_json(const struct encoding *enc, const char *text, size_t len)
{
    size_t n_cp;
    size_t *at = pipeline_cp_index(text, len, &n_cp); /* code point -> byte */
    json_t *out = at ? json_array() : NULL;
    for (size_t i = 0; out && i < enc->n; i++) {
        json_t *t;
        if (enc->special[i]) {
            t = json_pack("{s:i, s:s, s:b, s:n, s:n}", "id", enc->ids[i], "text",
                          encoding_token(enc, i), "special", 1, "start", "stop");
        } else {
            size_t s = enc->offsets[i].start, e = enc->offsets[i].end;
            s = at[s < n_cp ? s : n_cp];
            e = at[e < n_cp ? e : n_cp];
            e = e < s ? s : e;
            t = json_pack("{s:i, s:s%, s:b, s:I, s:I}", "id", enc->ids[i], "text", text + s, e - s,
                          "special", 0, "start", (json_int_t)s, "stop", (json_int_t)e);
        }
        if (json_array_append_new(out, t) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    free(at);
    return out;
}

void route_tei_tokenize(struct call *c)
{
    bool special;
    if (!tei_field_bool(c, "add_special_tokens", true, &special))
        return;
    json_t *texts = tei_field_texts(c, true);
    struct model *m = texts ? tei_field_model(c, TEI_ALL_TASKS) : NULL;
    if (!m) {
        json_decref(texts);
        return;
    }
    const struct tokenizer *tk = model_tokenizer(m);
    struct tokenizer_params p = tokenizer_params_default(tk);
    p.add_special_tokens = special;
    p.truncation = false;
    p.padding = PAD_NONE;
    struct pipeline_limits lim = model_limits(m);
    struct err e = {0};
    json_t *out = pipeline_check_inputs(&lim, json_array_size(texts), &e) ? NULL : json_array();
    size_t tokens = 0;
    for (size_t i = 0; out && i < json_array_size(texts); i++) {
        const json_t *t = json_array_get(texts, i);
        struct encodings encs = {0};
        json_t *one = NULL;
        if (tokenizer_encode(tk, json_string_value(t), json_string_length(t), NULL, 0, &p, &encs,
                             &e) == 0 &&
            !(one = tokens_json(&encs.v[0], json_string_value(t), json_string_length(t))))
            err_set(&e, ERR_NOMEM, "out of memory");
        tokens += encs.n ? encs.v[0].n : 0;
        encodings_fini(&encs);
        if (one && pipeline_check_tokens(&lim, tokens, &e) != 0) {
            json_decref(one);
            one = NULL;
        }
        if (!one || json_array_append_new(out, one) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    if (out)
        call_reply(c, 200, out);
    else
        call_error(c, e.kind ? e.kind : ERR_NOMEM, "inputs", "%s",
                   e.kind ? e.msg : "out of memory");
    json_decref(texts);
}

/* A list of token ids as int32 (malloc'ed); NULL when v is not one. */
static int32_t *id_list(const json_t *v, size_t *n)
{
    *n = json_array_size(v);
    int32_t *ids = json_is_array(v) ? malloc((*n ? *n : 1) * sizeof *ids) : NULL;
    for (size_t i = 0; ids && i < *n; i++) {
        const json_t *x = json_array_get(v, i);
        if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > INT32_MAX) {
            free(ids);
            return NULL;
        }
        ids[i] = (int32_t)json_integer_value(x);
    }
    return ids;
}

void route_tei_decode(struct call *c)
{
    bool skip;
    json_t *in = json_object_get(call_body(c), "ids");
    if (!tei_field_bool(c, "skip_special_tokens", true, &skip))
        return;
    bool batch = json_is_array(json_array_get(in, 0));
    json_t *lists = batch ? json_incref(in) : json_pack("[O]", in ? in : json_null());
    struct model *m = tei_field_model(c, TEI_ALL_TASKS);
    const struct tokenizer *tk = m ? model_tokenizer(m) : NULL;
    struct pipeline_limits lim = m ? model_limits(m) : (struct pipeline_limits){0};
    struct err le = {0};
    json_t *out = m ? json_array() : NULL;
    if (out && pipeline_check_inputs(&lim, json_array_size(lists), &le) != 0) {
        call_error(c, ERR_INVALID, "ids", "%s", le.msg);
        json_decref(out);
        out = NULL;
    }
    for (size_t i = 0; out && i < json_array_size(lists); i++) {
        size_t n;
        int32_t *ids = id_list(json_array_get(lists, i), &n);
        char *text = NULL;
        size_t len = 0;
        struct err e = {0};
        if (!ids)
            call_error(c, ERR_INVALID, "ids",
                       "`ids` must be a list of token ids (0 to 2^31-1) or a list of such lists");
        else if (tokenizer_decode(tk, ids, n, skip, &text, &len, &e) != 0)
            call_error(c, e.kind, "ids", "%s", e.msg);
        else
            json_array_append_new(out, json_stringn(text, len));
        free(text);
        free(ids);
        if (!ids || !text) {
            json_decref(out);
            out = NULL;
        }
    }
    if (out)
        call_reply(c, 200, out);
    json_decref(lists);
}

/* ---- GET /info ---- */

static const char *dtype_name(enum config_dtype d)
{
    switch (d) {
    case CONFIG_DTYPE_BF16: return "bfloat16";
    case CONFIG_DTYPE_INT8: return "int8";
    default: return "float32";
    }
}

/* {"id2label": {"0": "NEGATIVE", ...}, "label2id": {...}} as the pipeline names the labels. */
static json_t *classifier_json(const struct pipeline *p)
{
    size_t n = pipeline_num_labels(p);
    const char *const *labels = pipeline_labels(p);
    json_t *id2label = json_object(), *label2id = json_object();
    for (size_t i = 0; i < n; i++) {
        char id[24];
        snprintf(id, sizeof id, "%zu", i);
        json_object_set_new(id2label, id, json_string(labels[i]));
        json_object_set_new(label2id, labels[i], json_integer((json_int_t)i));
    }
    return json_pack("{s:o, s:o}", "id2label", id2label, "label2id", label2id);
}

/* The pooling of a sentence-embeddings model, named as TEI does ("cls", "mean", "last_token")
 * or else as sentence-transformers; "+" joins several. */
static json_t *pooling_json(const struct model *m)
{
    char st[128], buf[128];
    if (pipeline_pooling_name(model_pipeline(m), st, sizeof st) == 0)
        return json_null();
    /* TEI's names are sentence-transformers' but for the last token */
    size_t n = 0;
    char *save = NULL;
    for (const char *tok = strtok_r(st, "+", &save); tok; tok = strtok_r(NULL, "+", &save)) {
        const char *name = strcmp(tok, "lasttoken") == 0 ? "last_token" : tok;
        int k = snprintf(buf + n, sizeof buf - n, "%s%s", n ? "+" : "", name);
        if (k < 0 || (size_t)k >= sizeof buf - n)
            break;
        n += (size_t)k;
    }
    buf[n] = '\0';
    return json_string(buf);
}

/* TEI's model_type: classifier (reranker for one label), embedding; other tasks by name. */
static json_t *model_type_json(const struct model *m)
{
    const struct pipeline *p = model_pipeline(m);
    switch (pipeline_task(p)) {
    case TASK_TEXT_CLASSIFICATION:
        return json_pack("{s:o}", pipeline_num_labels(p) == 1 ? "reranker" : "classifier",
                         classifier_json(p));
    case TASK_ZERO_SHOT_CLASSIFICATION:
    case TASK_TOKEN_CLASSIFICATION: return json_pack("{s:o}", "classifier", classifier_json(p));
    case TASK_SENTENCE_EMBEDDINGS:
        return json_pack("{s:{s:o}}", "embedding", "pooling", pooling_json(m));
    case TASK_FEATURE_EXTRACTION: /* per-token hidden states: no pooling */
        return json_pack("{s:{s:s}}", "embedding", "pooling", "none");
    default: return json_pack("{s:{}}", task_name(pipeline_task(p)));
    }
}

/* The 503 of a model still fetched from the Hub: {"error", "error_type", "fetching": what
 * registry_fetching says}; false when it is not being fetched. */
static bool info_fetching(struct call *c, const char *name)
{
    json_t *f = registry_fetching(call_server(c), name, TEI_ALL_TASKS);
    if (!f)
        return false;
    const char *model = json_string_value(json_object_get(f, "model"));
    char msg[400];
    snprintf(msg, sizeof msg, "Model %s is currently loading: fetching %s@%s from the Hub", model,
             json_string_value(json_object_get(f, "repo")),
             json_string_value(json_object_get(f, "revision")));
    call_error_body(c, ERR_UNAVAILABLE,
                    json_pack("{s:s, s:s, s:o}", "error", msg, "error_type", "Unhealthy",
                              "fetching", f));
    return true;
}

void route_tei_info(struct call *c)
{
    struct server *s = call_server(c);
    if (info_fetching(c, call_query(c, "model")))
        return;
    struct model *m = call_use_model(c, call_query(c, "model"), TEI_ALL_TASKS, "model");
    if (!m)
        return;
    if (model_is_generation(m)) { /* TGI's Info */
        tgi_info(c, m);
        return;
    }
    const struct model_config *mc = model_config(m);
    const struct pipeline *p = model_pipeline(m);
    size_t max_len = pipeline_max_tokens(p);
    if (mc->max_input_tokens && mc->max_input_tokens < max_len)
        max_len = mc->max_input_tokens;
    json_t *info = json_pack(
        "{s:s, s:n, s:s, s:o, s:I, s:I, s:I, s:I, s:n, s:b, s:i, s:s, s:n, s:n, s:s, s:s, s:i, "
        "s:i}",
        "model_id", model_name(m), "model_sha", "model_dtype", dtype_name(mc->dtype), "model_type",
        model_type_json(m), "max_concurrent_requests", (json_int_t)mc->batching.max_queue_size,
        "max_input_length", (json_int_t)max_len, "max_batch_tokens",
        (json_int_t)mc->batching.max_batch_tokens, "max_batch_requests",
        (json_int_t)mc->batching.max_batch_size, "max_client_batch_size", "auto_truncate", 0,
        "tokenization_workers", server_config(s)->work_threads, "version", INFERD_VERSION, "sha",
        "docker_label", "served_model_name", model_name(m), "task",
        task_name(pipeline_task(p)), "workers", mc->workers, "threads", mc->threads);
    if (info)
        call_reply(c, 200, info);
    else
        call_error(c, ERR_NOMEM, NULL, "out of memory");
}
