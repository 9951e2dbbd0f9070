/* api_tgi: the Text Generation Inference dialect. POST /generate answers
 * {"generated_text", "details"?} once generation ends; POST /generate_stream sends one
 * Server-Sent Event per token ({"index", "token", "top_tokens"?, "generated_text": null,
 * "details": null}), the last one carrying generated_text and, asked for, details; POST /
 * (TGI's compat route: "stream": true is /generate_stream, else /generate's answer in a list,
 * return_full_text defaulting to true for text-generation); GET /info
 * for a generation model (tgi_info). Request validation is TGI's (params_tgi.c) with its
 * messages, answered as 422 {"error": "Input validation error: ...", "error_type":
 * "validation"} before anything is streamed; a failure once the stream runs is an event
 * {"error", "error_type"}. Shapes and semantics from router/src/server.rs and lib.rs:
 * token.text is the token's own text, index counts from 1, seed is null unless sampling,
 * prefill (decoder_input_details) lists the prompt tokens with a null first logprob,
 * top_tokens appears only when top_n_tokens > 0, best_of > 1 keeps the choice with the best
 * mean token logprob and lists the others in best_of_sequences. inferd extra: "model" picks the
 * model (else the first text-generation or text2text-generation one). An encoder-decoder (T5,
 * text2text-generation) is served too, as TGI serves seq2seq models: generated_text is what
 * the decoder generates; return_full_text true and decoder_input_details (no decoded prompt)
 * are refused with 422. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_gen.h"
#include "registry.h"
#include "routes.h"
#include "server.h"

/* ---- JSON pieces ---- */

static json_t *token_json(const struct gen_token *t)
{
    return json_pack("{s:i, s:s, s:o, s:b}", "id", (int)t->id, "text", t->text ? t->text : "",
                     "logprob", gen_logprob_json(t->logprob), "special", t->special);
}

/* A token's alternatives as Token objects. */
static json_t *top_json(const struct gen_call *g, const struct gen_token *t)
{
    json_t *a = json_array();
    for (uint32_t k = 0; a && k < t->n_top; k++)
        json_array_append_new(a, json_pack("{s:i, s:s, s:o, s:b}", "id", (int)t->top[k].id, "text",
                                           t->top_text[k], "logprob",
                                           gen_logprob_json(t->top[k].logprob), "special",
                                           gen_model_is_named_special(g->gm, t->top[k].id)));
    return a;
}

/* generated_text: the prompt first when return_full_text. */
static json_t *output_text(const struct gen_call *g, const struct gen_out *o)
{
    bool full = g->params.return_full_text;
    return gen_text_json(full ? g->prompt_text : NULL, full ? g->prompt_text_len : 0, o->text,
                         o->text_len);
}

static json_t *seed_json(const struct gen_call *g, const struct gen_out *o)
{
    return g->params.do_sample ? json_integer((json_int_t)o->seed) : json_null();
}

static json_t *prefill_json(const struct gen_call *g, const struct gen_out *o)
{
    json_t *a = json_array();
    if (!g->params.decoder_input_details)
        return a;
    for (size_t i = 0; a && i < g->n_prompt; i++) {
        char *text = NULL;
        size_t len = 0;
        struct err e = {0};
        if (gen_model_decode(g->gm, &g->prompt[i], 1, &text, &len, &e) != 0)
            text = NULL;
        float lp = o->prompt_logprobs && i > 0 ? o->prompt_logprobs[i] : NAN;
        json_array_append_new(a, json_pack("{s:i, s:s%, s:o}", "id", (int)g->prompt[i], "text",
                                           text ? text : "", text ? len : (size_t)0, "logprob",
                                           gen_logprob_json(lp)));
        free(text);
    }
    return a;
}

/* The details of one choice; best_of: also its seed and generated_text (a best_of
 * sequence). */
static json_t *details_json(const struct gen_call *g, const struct gen_out *o, bool as_sequence)
{
    json_t *tokens = json_array(), *top = json_array();
    for (size_t k = 0; k < o->n_tokens; k++) {
        json_array_append_new(tokens, token_json(&o->tokens[k]));
        json_array_append_new(top, top_json(g, &o->tokens[k]));
    }
    json_t *d = json_object();
    if (as_sequence)
        json_object_set_new(d, "generated_text", output_text(g, o));
    json_object_set_new(d, "finish_reason",
                        json_string(gen_api_finish(&gen_api_tgi, o->finish)
                                        ? gen_api_finish(&gen_api_tgi, o->finish)
                                        : "length"));
    json_object_set_new(d, "generated_tokens", json_integer((json_int_t)o->n_generated));
    json_object_set_new(d, "seed", seed_json(g, o));
    json_object_set_new(d, "prefill", prefill_json(g, o));
    json_object_set_new(d, "tokens", tokens);
    if (g->params.top_n_tokens > 0)
        json_object_set_new(d, "top_tokens", top);
    else
        json_decref(top);
    return d;
}

/* TGI's best_of: the highest mean logprob of the generated tokens. */
static size_t best_choice(const struct gen_call *g)
{
    size_t best = 0;
    double best_lp = -INFINITY;
    for (size_t i = 0; i < g->n; i++) {
        const struct gen_out *o = &g->out[i];
        double sum = 0;
        for (size_t k = 0; k < o->n_tokens; k++)
            sum += o->tokens[k].logprob;
        double mean = o->n_tokens ? sum / (double)o->n_tokens : -INFINITY;
        if (i == 0 || mean > best_lp) {
            best = i;
            best_lp = mean;
        }
    }
    return best;
}

static void add_ms(struct call *c, const char *name, double seconds)
{
    char v[32];
    snprintf(v, sizeof v, "%.3f", seconds * 1e3);
    call_add_header(c, name, v);
}

static void add_count(struct call *c, const char *name, size_t n)
{
    char v[32];
    snprintf(v, sizeof v, "%zu", n);
    call_add_header(c, name, v);
}

/* /generate's answer (its body; the headers added to c). */
static json_t *generate_answer(struct gen_call *g, struct call *c)
{
    size_t b = best_choice(g);
    const struct gen_out *o = &g->out[b];
    json_t *body = json_object();
    json_object_set_new(body, "generated_text", output_text(g, o));
    if (g->params.details || g->params.decoder_input_details) {
        json_t *d = details_json(g, o, false);
        if (g->n > 1) {
            json_t *others = json_array();
            for (size_t i = 0; i < g->n; i++)
                if (i != b)
                    json_array_append_new(others, details_json(g, &g->out[i], true));
            json_object_set_new(d, "best_of_sequences", others);
        }
        json_object_set_new(body, "details", d);
    }
    add_count(c, "x-prompt-tokens", g->n_prompt);
    add_count(c, "x-generated-tokens", o->n_generated);
    add_ms(c, "x-queue-time", o->queue_seconds);
    add_ms(c, "x-inference-time", o->total_seconds - o->queue_seconds);
    add_ms(c, "x-total-time", o->total_seconds);
    return body;
}

static void generate_done(struct gen_call *g, struct call *c)
{
    call_reply(c, 200, generate_answer(g, c));
}

/* POST / without stream: /generate's answer in a list (TGI's compat_generate, which matches
 * the Hugging Face Inference API's shape). */
static void compat_done(struct gen_call *g, struct call *c)
{
    call_reply(c, 200, json_pack("[o]", generate_answer(g, c)));
}

/* ---- the stream ---- */

static json_t *stream_event(struct gen_call *g, size_t i, const struct gen_token *t)
{
    struct gen_out *o = &g->out[i];
    json_t *ev = json_object();
    json_object_set_new(ev, "index", json_integer(++o->n_streamed));
    json_object_set_new(ev, "token", token_json(t));
    if (t->n_top)
        json_object_set_new(ev, "top_tokens", top_json(g, t));
    return ev;
}

static void stream_token(struct gen_call *g, size_t i, const struct gen_token *t, const char *delta,
                         size_t delta_len)
{
    (void)delta;
    (void)delta_len;
    json_t *ev = stream_event(g, i, t);
    json_object_set_new(ev, "generated_text", json_null());
    json_object_set_new(ev, "details", json_null());
    gen_emit_json(g, ev);
}

static void stream_error(struct gen_call *g, const char *msg, const char *type)
{
    gen_emit_json(g, json_pack("{s:s, s:s}", "error", msg, "error_type", type));
}

static void stream_last(struct gen_call *g, size_t i, const struct gen_token *t, const char *delta,
                        size_t delta_len)
{
    (void)delta;
    (void)delta_len;
    const struct gen_out *o = &g->out[i];
    if (!t) {
        stream_error(g, "Incomplete generation stream", "incomplete_generation_stream");
        return;
    }
    json_t *ev = stream_event(g, i, t);
    json_object_set_new(ev, "generated_text", output_text(g, o));
    if (g->params.details) {
        const char *fin = gen_api_finish(&gen_api_tgi, o->finish);
        json_object_set_new(ev, "details",
                            json_pack("{s:s, s:I, s:o, s:I}", "finish_reason", fin ? fin : "length",
                                      "generated_tokens", (json_int_t)o->n_generated, "seed",
                                      seed_json(g, o), "input_length", (json_int_t)g->n_prompt));
    } else {
        json_object_set_new(ev, "details", json_null());
    }
    gen_emit_json(g, ev);
}

static void stream_failed(struct gen_call *g, size_t i)
{
    const struct gen_out *o = &g->out[i];
    char msg[ERR_MSG_SIZE + 64];
    switch (o->status) {
    case GEN_TIMEOUT: stream_error(g, "Request timed out during generation", "timeout"); break;
    case GEN_CANCELLED: stream_error(g, "Request cancelled", "generation"); break;
    default:
        snprintf(msg, sizeof msg, "Request failed during generation: %s", o->error);
        stream_error(g, msg, "generation");
    }
}

static const struct gen_stream_ops tgi_stream = {
    .token = stream_token,
    .last = stream_last,
    .error = stream_failed,
    .finish = NULL,
};

/* ---- the routes ---- */

/* Model, inputs and parameters of a TGI request; the gen_call ready to run (NULL: answered).
 * compat (POST /): return_full_text, when not given, is TGI's default for the model's task
 * (true for text-generation, false for text2text-generation). */
static struct gen_call *tgi_prepare(struct call *c, bool stream, bool compat)
{
    const json_t *body = call_body(c);
    const json_t *mv = json_object_get(body, "model");
    if (mv && !json_is_null(mv) && !json_is_string(mv)) {
        call_error(c, ERR_INVALID, "model", "Input validation error: `model` must be a string");
        return NULL;
    }
    const json_t *in = json_object_get(body, "inputs");
    if (!in || !json_is_string(in)) {
        call_error(c, ERR_INVALID, "inputs",
                   in ? "Input validation error: `inputs` must be a string"
                      : "Input validation error: `inputs` is required");
        return NULL;
    }
    if (json_string_length(in) == 0) {
        call_error(c, ERR_INVALID, "inputs", "Input validation error: `inputs` cannot be empty");
        return NULL;
    }
    struct model *m =
        call_use_model(c, json_string_value(mv), task_set(TASK_KIND_GENERATOR), "model");
    if (!m)
        return NULL;
    struct gen_call *g = gen_call_new(c, m, &gen_api_tgi);
    if (!g)
        return NULL;
    struct gen_limits lim = gen_limits_default();
    lim.max_input_tokens = (uint32_t)model_gen_max_input(m);
    struct err e = {0};
    const json_t *params = json_object_get(body, "parameters");
    if (gen_api_parse(&gen_api_tgi, params, gen_model_config(g->gm), &lim, &g->params, &e) != 0 ||
        (stream && tgi_check_stream(&g->params, &e) != 0)) {
        gen_call_error(g, e.kind == ERR_GEN_SCHEMA ? ERR_GEN_SCHEMA : ERR_GEN_INVALID,
                       "parameters", e.msg);
        return NULL;
    }
    const json_t *full = json_object_get(params, "return_full_text");
    if (compat && (!full || json_is_null(full)))
        g->params.return_full_text = !gen_model_is_encoder_decoder(g->gm);
    if (gen_model_is_encoder_decoder(g->gm) && g->params.return_full_text) {
        gen_call_error(g, ERR_GEN_INVALID, "parameters",
                       "`return_full_text` is not supported by an encoder-decoder model "
                       "(text2text-generation): its output does not continue its input");
        return NULL;
    }
    const char *text = json_string_value(in);
    size_t len = json_string_length(in);
    if (gen_call_tokenize(g, text, len, true) != 0 || gen_call_set_prompt_text(g, text, len) != 0 ||
        gen_call_check(g) != 0)
        return NULL;
    g->record_tokens = !stream && (g->params.details || g->params.best_of > 1);
    return g;
}

static void tgi_generate(struct call *c, bool compat)
{
    struct gen_call *g = tgi_prepare(c, false, compat);
    if (g)
        gen_call_run(g, g->params.best_of, compat ? compat_done : generate_done, NULL, NULL);
}

static void tgi_generate_stream(struct call *c, bool compat)
{
    struct gen_call *g = tgi_prepare(c, true, compat);
    if (g)
        gen_call_run(g, 1, NULL, &tgi_stream, "text/event-stream");
}

void route_tgi_generate(struct call *c)
{
    tgi_generate(c, false);
}

void route_tgi_generate_stream(struct call *c)
{
    tgi_generate_stream(c, false);
}

/* TEI serves POST / too, with the route of its one model's kind (huggingface_hub's
 * InferenceClient(URL).feature_extraction posts there). When no generation model is configured
 * and the body names none, POST / is TEI's: the first configured embeddings or classification
 * model says which route; NULL when POST / stays TGI's. */
static void (*tei_root(struct call *c))(struct call *)
{
    const json_t *mv = json_object_get(call_body(c), "model");
    if (mv && !json_is_null(mv))
        return NULL;
    const unsigned gen = task_set(TASK_KIND_GENERATOR);
    const unsigned emb = TASK_BIT(TASK_SENTENCE_EMBEDDINGS),
                   cls = TASK_BIT(TASK_TEXT_CLASSIFICATION);
    size_t n;
    struct model **all = server_models(call_server(c), &n);
    void (*route)(struct call *) = NULL;
    bool generator = false;
    for (size_t i = 0; i < n; i++) {
        unsigned t = TASK_BIT(model_task(all[i]));
        generator |= (t & gen) != 0;
        if (!route && (t & (emb | cls)))
            route = (t & emb) ? route_tei_embed : route_tei_predict;
        model_unref(all[i]);
    }
    free(all);
    return generator ? NULL : route;
}

void route_tgi_compat(struct call *c)
{
    void (*tei)(struct call *) = tei_root(c);
    if (tei) {
        tei(c);
        return;
    }
    const json_t *stream = json_object_get(call_body(c), "stream");
    if (stream && !json_is_null(stream) && !json_is_boolean(stream)) {
        call_error(c, ERR_INVALID, "stream", "Input validation error: `stream` must be true or false");
        return;
    }
    if (json_is_true(stream))
        tgi_generate_stream(c, true);
    else
        tgi_generate(c, true);
}

/* ---- GET /info ---- */

void tgi_info(struct call *c, struct model *m)
{
    const struct model_config *mc = model_config(m);
    const struct gen_limits lim = gen_limits_default();
    json_t *info = json_pack(
        "{s:s, s:n, s:s, s:I, s:I, s:I, s:I, s:I, s:i, s:I, s:s, s:s, s:n, s:n, s:s, s:s}",
        "model_id", model_name(m), "model_sha", "model_pipeline_tag", mc->task,
        "max_concurrent_requests", (json_int_t)mc->batching.max_queue_size, "max_best_of",
        (json_int_t)lim.max_best_of, "max_stop_sequences", (json_int_t)lim.max_stop_sequences,
        "max_input_tokens", (json_int_t)model_gen_max_input(m), "max_total_tokens",
        (json_int_t)model_gen_max_total(m), "validation_workers",
        server_config(call_server(c))->work_threads, "max_client_batch_size", (json_int_t)1,
        "router", "inferd", "version", INFERD_VERSION, "sha", "docker_label", "served_model_name",
        model_name(m), "model_dtype", config_dtype_name(mc->dtype));
    if (info)
        call_reply(c, 200, info);
    else
        call_error(c, ERR_NOMEM, NULL, "out of memory");
}
