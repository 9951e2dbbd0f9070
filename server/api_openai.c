/* api_openai: the OpenAI dialect. POST /v1/embeddings (also served at /embeddings) runs a
 * sentence-embeddings model over "input" and answers OpenAI's embedding list, floats or
 * base64 (little-endian float32), with the token usage; GET /v1/models lists every
 * configured model. Owns the validation of OpenAI's fields (422 with "param" naming the
 * field; unknown fields are ignored, as OpenAI does) and its model_not_found error. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handler.h"
#include "registry.h"
#include "server.h"
#include "routes.h"

struct embed_opts {
    bool base64;
    size_t dimensions; /* 0: the model's */
};

/* ---- request fields (each answers the call with 422 and returns false when invalid) ---- */

/* "input": "text" | ["a", "b"] as a new list of non-empty strings. */
static json_t *field_input(struct call *c)
{
    json_t *in = json_object_get(call_body(c), "input");
    const json_t *first = json_array_get(in, 0);
    const char *why = NULL;
    if (!in || json_is_null(in))
        why = "`input` is required";
    else if (json_is_integer(first) || (json_is_array(first) && json_array_size(first) > 0 &&
                                        json_is_integer(json_array_get(first, 0))))
        why = "token id inputs are not supported";
    else if (!json_is_string(in) && !json_is_array(in))
        why = "`input` must be a string or a list of strings";
    else if (json_is_array(in) && json_array_size(in) == 0)
        why = "`input` cannot be empty";
    for (size_t i = 0; !why && i < json_array_size(in); i++) {
        const json_t *v = json_array_get(in, i);
        if (!json_is_string(v))
            why = "`input` must be a string or a list of strings";
        else if (json_string_length(v) == 0)
            why = "`input` cannot contain empty strings";
    }
    if (!why && json_is_string(in) && json_string_length(in) == 0)
        why = "`input` cannot be empty";
    if (why) {
        call_error(c, ERR_INVALID, "input", "%s", why);
        return NULL;
    }
    return json_is_string(in) ? json_pack("[O]", in) : json_incref(in);
}

static bool field_options(struct call *c, struct embed_opts *o)
{
    const json_t *body = call_body(c);
    const json_t *fmt = json_object_get(body, "encoding_format");
    const json_t *dims = json_object_get(body, "dimensions");
    const json_t *user = json_object_get(body, "user");
    const char *f = json_string_value(fmt);
    if (fmt && !json_is_null(fmt) && !(f && (!strcmp(f, "float") || !strcmp(f, "base64")))) {
        call_error(c, ERR_INVALID, "encoding_format", "`encoding_format` must be \"float\" or \"base64\"");
        return false;
    }
    if (dims && !json_is_null(dims) && (!json_is_integer(dims) || json_integer_value(dims) <= 0)) {
        call_error(c, ERR_INVALID, "dimensions", "`dimensions` must be a positive integer");
        return false;
    }
    if (user && !json_is_null(user) && !json_is_string(user)) {
        call_error(c, ERR_INVALID, "user", "`user` must be a string");
        return false;
    }
    o->base64 = f && strcmp(f, "base64") == 0;
    o->dimensions = json_is_integer(dims) ? (size_t)json_integer_value(dims) : 0;
    return true;
}

/* The model "model" names (OpenAI's 404 model_not_found when there is none by that name),
 * else the first model of tasks (a registry_pick mask). NULL when answered. */
struct model *openai_field_model(struct call *c, unsigned tasks)
{
    struct server *s = call_server(c);
    const json_t *v = json_object_get(call_body(c), "model");
    if (v && !json_is_null(v) && !json_is_string(v)) {
        call_error(c, ERR_INVALID, "model", "`model` must be a string");
        return NULL;
    }
    const char *name = json_string_value(v);
    struct model *known = name ? server_model(s, name) : NULL;
    if (name && !known) {
        call_error(c, ERR_NO_MODEL, "model", "The model `%s` does not exist", name);
        return NULL;
    }
    model_unref(known);
    return call_use_model(c, name, tasks, "model");
}

/* ---- POST /v1/embeddings ---- */

/* Standard base64 (with padding) of the vector's values as little-endian float32. */
static json_t *base64_json(const json_t *vec)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = json_array_size(vec) * 4;
    uint8_t *raw = malloc(n ? n : 1);
    char *text = malloc((n + 2) / 3 * 4 + 1);
    json_t *out = NULL;
    if (raw && text) {
        for (size_t i = 0; i < n / 4; i++) {
            float f = (float)json_number_value(json_array_get(vec, i));
            uint32_t u;
            memcpy(&u, &f, 4);
            for (int k = 0; k < 4; k++)
                raw[4 * i + (size_t)k] = (uint8_t)(u >> (8 * k));
        }
        size_t len = 0;
        for (size_t i = 0; i < n; i += 3) {
            uint32_t v = (uint32_t)raw[i] << 16;
            if (i + 1 < n)
                v |= (uint32_t)raw[i + 1] << 8;
            if (i + 2 < n)
                v |= raw[i + 2];
            text[len++] = b64[(v >> 18) & 63];
            text[len++] = b64[(v >> 12) & 63];
            text[len++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
            text[len++] = i + 2 < n ? b64[v & 63] : '=';
        }
        out = json_stringn(text, len);
    }
    free(raw);
    free(text);
    return out;
}

/* result: one normalized vector per input. */
static json_t *respond_embeddings(struct call *c, json_t *result, struct err *e)
{
    const struct embed_opts *o = call_user(c);
    json_t *data = json_array();
    for (size_t i = 0; data && i < json_array_size(result); i++) {
        json_t *vec = json_array_get(result, i);
        if (o->dimensions > json_array_size(vec)) {
            json_decref(data);
            err_set(e, ERR_INVALID, "`dimensions` is %zu but the model's embeddings have %zu",
                    o->dimensions, json_array_size(vec));
            return NULL;
        }
        if (o->dimensions)
            embeddings_truncate_json(vec, o->dimensions, true);
        json_t *emb = o->base64 ? base64_json(vec) : json_incref(vec);
        json_t *item = json_pack("{s:s, s:o, s:I}", "object", "embedding", "embedding", emb,
                                 "index", (json_int_t)i);
        if (!item || json_array_append_new(data, item) != 0) {
            json_decref(data);
            data = NULL;
        }
    }
    json_int_t tokens = (json_int_t)pipeline_request_tokens(call_request(c));
    json_t *out = data ? json_pack("{s:s, s:o, s:s, s:{s:I, s:I}}", "object", "list", "data", data,
                                   "model", model_name(call_model(c)), "usage", "prompt_tokens",
                                   tokens, "total_tokens", tokens)
                       : NULL;
    if (!out) {
        err_set(e, ERR_NOMEM, "out of memory");
    }
    return out;
}

void route_openai_embeddings(struct call *c)
{
    struct embed_opts o;
    if (!field_options(c, &o))
        return;
    json_t *inputs = field_input(c);
    struct model *m = inputs ? openai_field_model(c, TASK_BIT(TASK_SENTENCE_EMBEDDINGS)) : NULL;
    if (!m) {
        json_decref(inputs);
        return;
    }
    struct embed_opts *user = malloc(sizeof *user);
    json_t *params = json_pack("{s:b}", "normalize", 1);
    if (!user || !params) {
        free(user);
        call_error(c, ERR_NOMEM, NULL, "out of memory");
    } else {
        *user = o;
        call_set_user(c, user);
        call_submit(c, m, inputs, params, respond_embeddings);
    }
    json_decref(params);
    json_decref(inputs);
}

/* ---- GET /v1/models ---- */

void route_openai_models(struct call *c)
{
    size_t n;
    struct model **all = server_models(call_server(c), &n);
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++) {
        double t = model_loaded_at(all[i]) > 0 ? model_loaded_at(all[i])
                                               : server_started_at(call_server(c));
        json_t *entry = json_pack("{s:s, s:s, s:I, s:s}", "id", model_name(all[i]), "object",
                                  "model", "created", (json_int_t)t, "owned_by", "inferd");
        /* vLLM's max_model_len: prompt + completion tokens a generation model takes */
        if (entry && model_is_generation(all[i]) && model_gen_model(all[i]))
            json_object_set_new(entry, "max_model_len",
                                json_integer((json_int_t)model_gen_max_total(all[i])));
        if (!data)
            json_decref(entry);
        else if (json_array_append_new(data, entry) != 0) {
            json_decref(data);
            data = NULL;
        }
        model_unref(all[i]);
    }
    free(all);
    if (data)
        call_reply(c, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
    else
        call_error(c, ERR_NOMEM, NULL, "out of memory");
}
