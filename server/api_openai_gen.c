/* api_openai_gen: OpenAI's generation routes as vLLM serves them. POST /v1/completions ("prompt":
 * a string or token ids, or a list of them: each prompt its own n choices, index prompt * n + j,
 * usage summed; echo, logprobs as a count) and POST /v1/chat/completions ("messages" rendered with
 * the model's chat template, add_generation_prompt true, the prompt tokenized without adding
 * special tokens again; logprobs + top_logprobs). Both take n (choice i samples with seed + i),
 * stop, seed, max_tokens / max_completion_tokens and the sampling fields of params_openai.c, and
 * answer either the whole object (text_completion / chat.completion with usage) or, with "stream":
 * true, Server-Sent Events "data: {chunk}\n\n" (text_completion / chat.completion.chunk; the
 * chat's first chunk of a choice carries role "assistant", the last one its finish_reason), then,
 * with stream_options.include_usage, a chunk with no choices and the usage (every other chunk then
 * has "usage": null), then "data: [DONE]\n\n". usage.prompt_tokens_details.cached_tokens: the
 * prompt tokens taken from the prefix cache (gen_sched.h). Invalid requests are 400 with OpenAI's
 * error object naming the field; a failure once streaming is an event {"error": {...}} before
 * [DONE]. /v1/completions also serves an encoder-decoder (T5, text2text-generation): the
 * completion is what its decoder generates from the prompt (echo is refused); chat on one is a 400
 * (no chat template). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_gen.h"
#include "registry.h"
#include "routes.h"
#include "tool_calls.h"
#include "tool_grammar.h"

static bool is_chat(const struct gen_call *g)
{
    return g->api == &gen_api_chat;
}

/* ---- logprobs ---- */

static json_t *bytes_json(const char *s)
{
    json_t *a = json_array();
    for (const unsigned char *p = (const unsigned char *)s; a && *p; p++)
        json_array_append_new(a, json_integer(*p));
    return a;
}

/* One entry of a chat choice's logprobs.content. */
static json_t *chat_logprob(const struct gen_call *g, const struct gen_token *t)
{
    json_t *top = json_array();
    for (uint32_t k = 0; k < t->n_top && k < g->params.top_n_tokens; k++)
        json_array_append_new(top, json_pack("{s:s, s:o, s:o}", "token", t->top_text[k], "logprob",
                                             gen_logprob_json(t->top[k].logprob), "bytes",
                                             bytes_json(t->top_text[k])));
    return json_pack("{s:s, s:o, s:o, s:o}", "token", t->text, "logprob",
                     gen_logprob_json(t->logprob), "bytes", bytes_json(t->text), "top_logprobs",
                     top);
}

/* Code points of s (for text_offset). */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* A completions logprobs object over tokens[0..n), offsets from *offset on. */
static json_t *completion_logprobs(const struct gen_call *g, const struct gen_token *t, size_t n,
                                   size_t *offset)
{
    json_t *tokens = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(tokens, json_string(t[i].text));
        json_array_append_new(lps, gen_logprob_json(t[i].logprob));
        json_t *top = json_object();
        for (uint32_t k = 0; k < t[i].n_top && k < g->params.top_n_tokens; k++)
            json_object_set_new(top, t[i].top_text[k], gen_logprob_json(t[i].top[k].logprob));
        json_array_append_new(tops, g->params.top_n_tokens ? top : json_null());
        if (!g->params.top_n_tokens)
            json_decref(top);
        json_array_append_new(offs, json_integer((json_int_t)*offset));
        *offset += utf8_chars(t[i].text);
    }
    return json_pack("{s:o, s:o, s:o, s:o}", "text_offset", offs, "token_logprobs", lps, "tokens",
                     tokens, "top_logprobs", tops);
}

static json_t *usage_json(const struct gen_call *g)
{
    size_t out = gen_call_completion_tokens(g), in = gen_call_prompt_tokens(g);
    size_t cached = gen_call_cached_tokens(g);
    return json_pack("{s:I, s:I, s:I, s:{s:I}}", "prompt_tokens", (json_int_t)in,
                     "completion_tokens", (json_int_t)out, "total_tokens", (json_int_t)(in + out),
                     "prompt_tokens_details", "cached_tokens", (json_int_t)cached);
}

static const char *finish_name(const struct gen_out *o)
{
    const char *f = gen_api_finish(&gen_api_chat, o->finish);
    return f ? f : "length";
}

/* The route's state (g->user): the stream's copy of what the chunks repeat (the model's name:
 * the call may be gone) and the chat's tools. */
struct stream_state {
    char model[128];
    size_t offsets[GEN_MAX_CHOICES]; /* completions' text_offset so far, per choice */
    struct tool_req tools;           /* tools.parser NULL: the text is plain content */
    struct tool_stream ts[GEN_MAX_CHOICES];
};

static void state_fini(struct gen_call *g)
{
    struct stream_state *st = g->user;
    tool_req_fini(&st->tools);
    for (size_t i = 0; i < GEN_MAX_CHOICES; i++)
        tool_stream_fini(&st->ts[i]);
}

/* The chat's tool requests, or NULL when its text is plain content. */
static const struct tool_req *tools_of(const struct gen_call *g)
{
    const struct stream_state *st = g->user;
    return is_chat(g) && st && st->tools.parser ? &st->tools : NULL;
}

/* ---- the whole answer ---- */

static void completion_done(struct gen_call *g, struct call *c)
{
    json_t *choices = json_array();
    for (size_t i = 0; i < g->n; i++) {
        const struct gen_out *o = &g->out[i];
        const struct gen_prompt pr = gen_call_prompt(g, i);
        json_t *lp = json_null();
        if (g->params.logprobs) {
            size_t offset = g->params.return_full_text ? utf8_chars(pr.text) : 0;
            json_decref(lp);
            lp = completion_logprobs(g, o->tokens, o->n_tokens, &offset);
        }
        bool full = g->params.return_full_text;
        json_t *text =
            gen_text_json(full ? pr.text : NULL, full ? pr.text_len : 0, o->text, o->text_len);
        json_array_append_new(choices,
                              json_pack("{s:I, s:o, s:o, s:s}", "index", (json_int_t)i, "text",
                                        text, "logprobs", lp, "finish_reason", finish_name(o)));
    }
    call_reply(c, 200,
               json_pack("{s:s, s:s, s:I, s:s, s:o, s:o}", "id", g->id, "object", "text_completion",
                         "created", (json_int_t)g->created, "model", model_name(g->model),
                         "choices", choices, "usage", usage_json(g)));
}

/* Choice i's message: its text, or the tool calls read from it (*called). NULL with e set
 * when tool_choice asked for a call the text does not make. */
static json_t *chat_message(const struct gen_call *g, const struct gen_out *o, bool *called,
                            struct err *e)
{
    const struct tool_req *tools = tools_of(g);
    *called = false;
    if (tools)
        return tool_answer(tools, o->text, o->text_len, called, e);
    return json_pack("{s:s, s:s%}", "role", "assistant", "content", o->text, o->text_len);
}

static void chat_done(struct gen_call *g, struct call *c)
{
    json_t *choices = json_array();
    for (size_t i = 0; i < g->n; i++) {
        const struct gen_out *o = &g->out[i];
        struct err e = {0};
        bool called;
        json_t *msg = chat_message(g, o, &called, &e);
        if (!msg) {
            json_decref(choices);
            call_error(c, e.kind, "tool_choice", "%s", e.msg);
            return;
        }
        json_t *lp = json_null();
        if (g->params.logprobs) {
            json_t *content = json_array();
            for (size_t k = 0; k < o->n_tokens; k++)
                json_array_append_new(content, chat_logprob(g, &o->tokens[k]));
            json_decref(lp);
            lp = json_pack("{s:o}", "content", content);
        }
        json_array_append_new(choices, json_pack("{s:I, s:o, s:o, s:s}", "index", (json_int_t)i,
                                                 "message", msg, "logprobs", lp, "finish_reason",
                                                 called ? "tool_calls" : finish_name(o)));
    }
    call_reply(c, 200,
               json_pack("{s:s, s:s, s:I, s:s, s:o, s:o}", "id", g->id, "object", "chat.completion",
                         "created", (json_int_t)g->created, "model", model_name(g->model),
                         "choices", choices, "usage", usage_json(g)));
}

/* ---- the stream ---- */


/* A chunk with one choice (new reference). */
static json_t *chunk(struct gen_call *g, json_t *choice)
{
    const struct stream_state *st = g->user;
    json_t *v = json_pack("{s:s, s:s, s:I, s:s, s:[o]}", "id", g->id, "object",
                          is_chat(g) ? "chat.completion.chunk" : "text_completion", "created",
                          (json_int_t)g->created, "model", st->model, "choices", choice);
    if (v && g->params.include_usage)
        json_object_set_new(v, "usage", json_null());
    return v;
}

/* The chat's first chunk of a choice: the assistant's role. */
static void chat_role(struct gen_call *g, size_t i)
{
    struct gen_out *o = &g->out[i];
    if (!is_chat(g) || o->started)
        return;
    o->started = true;
    gen_emit_json(
        g, chunk(g, json_pack("{s:I, s:{s:s, s:s}, s:n, s:n}", "index", (json_int_t)i, "delta",
                              "role", "assistant", "content", "", "logprobs", "finish_reason")));
}

static void emit_delta(struct gen_call *g, size_t i, const struct gen_token *t, const char *delta,
                       size_t delta_len, const char *finish)
{
    struct stream_state *st = g->user;
    struct gen_out *o = &g->out[i];
    chat_role(g, i);
    if (!is_chat(g) && g->params.return_full_text && !o->started) { /* offsets after the echo */
        const char *echo = gen_call_prompt(g, i).text;
        st->offsets[i] = utf8_chars(echo ? echo : "");
    }
    json_t *lp = json_null();
    if (g->params.logprobs && t) {
        json_decref(lp);
        lp = is_chat(g) ? json_pack("{s:[o]}", "content", chat_logprob(g, t))
                        : completion_logprobs(g, t, 1, &st->offsets[i]);
    }
    json_t *text;
    if (!is_chat(g) && g->params.return_full_text && !o->started) { /* echo: the prompt first */
        const struct gen_prompt pr = gen_call_prompt(g, i);
        size_t n = pr.text_len + delta_len;
        char *s = malloc(n + 1);
        if (s) {
            memcpy(s, pr.text, pr.text_len);
            memcpy(s + pr.text_len, delta, delta_len);
        }
        text = s ? json_stringn(s, n) : json_string("");
        free(s);
    } else {
        text = json_stringn(delta, delta_len);
    }
    o->started = true;
    json_t *choice = is_chat(g)
                         ? json_pack("{s:I, s:{s:o}, s:o, s:s?}", "index", (json_int_t)i, "delta",
                                     "content", text, "logprobs", lp, "finish_reason", finish)
                         : json_pack("{s:I, s:o, s:o, s:s?}", "index", (json_int_t)i, "text", text,
                                     "logprobs", lp, "finish_reason", finish);
    if (choice && !finish)
        json_object_set_new(choice, "finish_reason", json_null());
    gen_emit_json(g, chunk(g, choice));
}

/* An error event (OpenAI's shape, code the status) in place of the choice's end. */
static void emit_error(struct gen_call *g, int kind, const char *msg)
{
    gen_emit_json(g, json_pack("{s:{s:s, s:s, s:n, s:i}}", "error", "message", msg, "type",
                               kind == ERR_TIMEOUT ? "timeout_error" : "server_error", "param",
                               "code", status_of_err(DIALECT_OPENAI, kind)));
}

/* A chat chunk of choice i: delta (stolen), logprobs (stolen; NULL: null), finish (NULL:
 * null). */
static void emit_chat(struct gen_call *g, size_t i, json_t *delta, json_t *lp, const char *finish)
{
    json_t *choice = json_pack("{s:I, s:o, s:o, s:s?}", "index", (json_int_t)i, "delta", delta,
                               "logprobs", lp ? lp : json_null(), "finish_reason", finish);
    if (choice && !finish)
        json_object_set_new(choice, "finish_reason", json_null());
    gen_emit_json(g, chunk(g, choice));
}

/* Sends deltas (a JSON array, stolen) as chunks of choice i. */
static void emit_deltas(struct gen_call *g, size_t i, json_t *deltas)
{
    for (size_t k = 0; k < json_array_size(deltas); k++)
        emit_chat(g, i, json_incref(json_array_get(deltas, k)), NULL, NULL);
    json_decref(deltas);
}

/* A token of a chat whose text is read for tool calls: the content that cannot be part of a
 * call goes out at once, and each call once it is read (tool_stream_push); at the end, the
 * rest (tool_stream_end), then the finish. */
static void tool_token(struct gen_call *g, size_t i, const struct gen_token *t, const char *delta,
                       size_t delta_len, bool last)
{
    struct stream_state *st = g->user;
    chat_role(g, i);
    json_t *deltas = tool_stream_push(&st->tools, &st->ts[i], delta, delta_len);
    if (!deltas) {
        emit_error(g, ERR_NOMEM, "out of memory");
        return;
    }
    if (g->params.logprobs && t) { /* the token's logprobs ride on its first chunk */
        json_t *first = json_array_size(deltas) ? json_incref(json_array_get(deltas, 0))
                                                : json_pack("{s:s}", "content", "");
        if (json_array_size(deltas))
            json_array_remove(deltas, 0);
        emit_chat(g, i, first, json_pack("{s:[o]}", "content", chat_logprob(g, t)), NULL);
    }
    emit_deltas(g, i, deltas);
    if (!last)
        return;
    struct err e = {0};
    bool called;
    deltas = tool_stream_end(&st->tools, &st->ts[i], &called, &e);
    if (!deltas) {
        emit_error(g, e.kind, e.msg);
        return;
    }
    emit_deltas(g, i, deltas);
    emit_chat(g, i, json_object(), NULL, called ? "tool_calls" : finish_name(&g->out[i]));
}

static void stream_token(struct gen_call *g, size_t i, const struct gen_token *t, const char *delta,
                         size_t delta_len)
{
    if (tools_of(g)) {
        tool_token(g, i, t, delta, delta_len, false);
        return;
    }
    /* a token that completes no text yet (half a character, a held-back stop prefix) has
     * nothing to show unless its logprobs were asked for */
    if (delta_len == 0 && !g->params.logprobs)
        return;
    emit_delta(g, i, t, delta, delta_len, NULL);
}

static void stream_last(struct gen_call *g, size_t i, const struct gen_token *t, const char *delta,
                        size_t delta_len)
{
    if (tools_of(g))
        tool_token(g, i, t, delta, delta_len, true);
    else
        emit_delta(g, i, t, delta, delta_len, finish_name(&g->out[i]));
}

static void stream_failed(struct gen_call *g, size_t i)
{
    const struct gen_out *o = &g->out[i];
    const char *msg = o->status == GEN_TIMEOUT     ? "Request timed out during generation"
                      : o->status == GEN_CANCELLED ? "Request cancelled"
                                                   : o->error;
    emit_error(g, gen_out_kind(o), msg);
}

static void stream_finish(struct gen_call *g)
{
    const struct stream_state *st = g->user;
    if (g->params.include_usage)
        gen_emit_json(g, json_pack("{s:s, s:s, s:I, s:s, s:[], s:o}", "id", g->id, "object",
                                   is_chat(g) ? "chat.completion.chunk" : "text_completion",
                                   "created", (json_int_t)g->created, "model", st->model, "choices",
                                   "usage", usage_json(g)));
    gen_emit(g, "data: [DONE]\n\n", 14);
}

static const struct gen_stream_ops openai_stream = {
    .token = stream_token,
    .last = stream_last,
    .error = stream_failed,
    .finish = stream_finish,
};

/* ---- requests ---- */

/* One prompt: a string or token ids (a list of integers). Sets the gen_call's prompt; false
 * when answered. */
static bool completion_prompt(struct gen_call *g, const json_t *prompt)
{
    if (json_is_string(prompt)) {
        if (json_string_length(prompt) == 0) {
            gen_call_error(g, ERR_GEN_INVALID, "prompt", "`prompt` cannot be empty");
            return false;
        }
        const char *s = json_string_value(prompt);
        size_t n = json_string_length(prompt);
        return gen_call_tokenize(g, s, n, true) == 0 && gen_call_set_prompt_text(g, s, n) == 0;
    }
    size_t n = json_array_size(prompt);
    bool ids = json_is_array(prompt) && n > 0;
    for (size_t i = 0; ids && i < n; i++)
        ids = json_is_integer(json_array_get(prompt, i));
    if (!ids) {
        gen_call_error(g, ERR_GEN_INVALID, "prompt",
                       "`prompt` must be a string, a list of strings, a list of token ids or a "
                       "list of token id lists");
        return false;
    }
    int32_t *v = malloc(n * sizeof *v);
    if (!v) {
        gen_call_error(g, ERR_NOMEM, NULL, "out of memory");
        return false;
    }
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        json_int_t x = json_integer_value(json_array_get(prompt, i));
        v[i] = x < 0 || x > INT32_MAX ? -1 : (int32_t)x;
    }
    ok = gen_call_set_ids(g, v, n) == 0;
    char *text = NULL;
    size_t len = 0;
    struct err e = {0};
    if (ok && gen_model_decode(g->gm, v, n, &text, &len, &e) == 0)
        ok = gen_call_set_prompt_text(g, text, len) == 0;
    free(text);
    free(v);
    return ok;
}

/* "prompt": one prompt, checked (gen_call_check), or a list of them (strings or token id
 * lists, OpenAI's batch), each tokenized, checked and pushed to the call's list: prompt k's
 * choices are k * n .. k * n + n - 1. max_new_tokens is never 0 here (completions' default is
 * 16), so the length check resolves nothing one prompt could leave to the next. False when
 * answered. */
static bool completion_prompts(struct gen_call *g, const json_t *prompt)
{
    size_t n = json_array_size(prompt);
    if (!json_is_array(prompt) || n == 0 || json_is_integer(json_array_get(prompt, 0)))
        return completion_prompt(g, prompt) && gen_call_check(g) == 0;
    if (n * g->params.n > GEN_MAX_CHOICES) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "%zu prompts with `n` = %u ask for %zu choices; at most %d per request are "
                 "supported",
                 n, g->params.n, n * g->params.n, GEN_MAX_CHOICES);
        gen_call_error(g, ERR_GEN_INVALID, "prompt", msg);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *one = json_array_get(prompt, i);
        if (!json_is_string(one) && !(json_is_array(one) && json_array_size(one) > 0 &&
                                      json_is_integer(json_array_get(one, 0)))) {
            char msg[120];
            snprintf(msg, sizeof msg, "`prompt`[%zu] must be a string or a list of token ids", i);
            gen_call_error(g, ERR_GEN_INVALID, "prompt", msg);
            return false;
        }
        if (!completion_prompt(g, one) || gen_call_check(g) != 0 || gen_call_push_prompt(g) != 0)
            return false;
    }
    return true;
}

/* "messages" checked and shaped for the chat template (tool_messages; new reference; NULL when
 * answered). */
static json_t *chat_messages(struct gen_call *g, const json_t *messages)
{
    struct err e = {0};
    json_t *out = tool_messages(messages, &e);
    if (!out)
        gen_call_error(g, e.kind, "messages", e.msg);
    return out;
}

/* The chat template's variables: add_generation_prompt (default true), documents, tools and
 * chat_template_kwargs' members (vLLM's extras). NULL when answered. */
static json_t *chat_extra(struct gen_call *g, const json_t *body, const struct tool_req *tools)
{
    const json_t *agp = json_object_get(body, "add_generation_prompt");
    const json_t *kw = json_object_get(body, "chat_template_kwargs");
    if (agp && !json_is_null(agp) && !json_is_boolean(agp)) {
        gen_call_error(g, ERR_GEN_INVALID, "add_generation_prompt",
                       "`add_generation_prompt` must be true or false");
        return NULL;
    }
    if (kw && !json_is_null(kw) && !json_is_object(kw)) {
        gen_call_error(g, ERR_GEN_INVALID, "chat_template_kwargs", "`chat_template_kwargs` must be an object");
        return NULL;
    }
    json_t *extra = json_is_object(kw) ? json_deep_copy(kw) : json_object();
    json_object_set_new(extra, "add_generation_prompt", json_boolean(!json_is_false(agp)));
    const json_t *docs = json_object_get(body, "documents");
    if (docs && !json_is_null(docs))
        json_object_set(extra, "documents", (json_t *)docs);
    if (tools->tools) /* as the request has them: {"type": "function", "function": {...}} */
        json_object_set(extra, "tools", tools->tools);
    return extra;
}

static bool mentions(const void *gm, const char *marker)
{
    return gen_model_chat_template_mentions(gm, marker);
}

/* tool_choice "required" or a named function: the call forced by a grammar in the parser's
 * syntax (tool_grammar.h); choice_met still checks the answer (a cut one fails). False when
 * answered. */
static bool chat_force_call(struct gen_call *g, const struct tool_req *r)
{
    if (r->choice != TOOL_CHOICE_REQUIRED && r->choice != TOOL_CHOICE_NAMED)
        return true;
    if (g->params.grammar) {
        gen_call_error(g, ERR_GEN_INVALID, "response_format",
                       "`response_format` cannot be combined with `tool_choice` \"required\" "
                       "or a named function: the answer is the tool call");
        return false;
    }
    struct err e = {0};
    if (tool_grammar(r, &g->params.grammar, &e) == 0)
        return true;
    gen_call_error(g, e.kind, "tools", e.msg);
    return false;
}

/* tools and tool_choice read into r, and the parser of the text picked (models[].tool_parser,
 * else the one whose markers the chat template teaches). False when answered. */
static bool chat_tools(struct gen_call *g, const json_t *body, struct tool_req *r)
{
    struct err e = {0};
    const char *param = NULL;
    if (tool_req_read(body, r, &param, &e) != 0) {
        gen_call_error(g, e.kind, param, e.msg);
        return false;
    }
    if (r->choice == TOOL_CHOICE_NONE)
        return true;
    const char *name = model_config(g->model)->tool_parser;
    r->parser = name ? tool_parser_by_name(name) : tool_parser_guess(mentions, g->gm);
    if (r->parser)
        return chat_force_call(g, r);
    char msg[300];
    snprintf(msg, sizeof msg,
             "model '%s' cannot call tools: its chat template shows no tool-call format inferd "
             "reads (<tool_call>, [TOOL_CALLS], <|python_tag|>); set its tool_parser in the "
             "config",
             model_name(g->model));
    gen_call_error(g, ERR_GEN_INVALID, "tools", msg);
    return false;
}

static bool chat_prompt(struct gen_call *g, const json_t *body)
{
    if (gen_model_is_encoder_decoder(g->gm)) {
        char msg[400];
        snprintf(msg, sizeof msg,
                 "model '%s' is an encoder-decoder (text2text-generation) model: it has no chat "
                 "template and cannot chat; use /v1/completions",
                 model_name(g->model));
        gen_call_error(g, ERR_GEN_INVALID, "model", msg);
        return false;
    }
    if (!gen_model_has_chat_template(g->gm)) {
        gen_call_error(g, ERR_GEN_INVALID, NULL,
                       "this model's tokenizer has no chat template (tokenizer_config.json "
                       "chat_template): use /v1/completions");
        return false;
    }
    struct stream_state *st = g->user;
    if (!chat_tools(g, body, &st->tools))
        return false;
    json_t *messages = chat_messages(g, json_object_get(body, "messages"));
    json_t *extra = messages ? chat_extra(g, body, &st->tools) : NULL;
    if (!extra) {
        json_decref(messages);
        return false;
    }
    char *prompt = NULL;
    size_t len = 0;
    struct err e = {0};
    int rc = gen_model_render_chat(g->gm, messages, extra, &prompt, &len, &e);
    json_decref(messages);
    json_decref(extra);
    /* rendered: the request's tools are not needed again (the parser and tool_choice are) */
    json_decref(st->tools.tools);
    st->tools.tools = NULL;
    if (rc) {
        gen_call_template_error(g, rc, "messages", e.msg);
        return false;
    }
    /* the template wrote the special tokens it wants (bos): add none again */
    bool ok = gen_call_tokenize(g, prompt, len, false) == 0;
    free(prompt);
    return ok;
}

static void openai_route(struct call *c, const struct gen_api *d)
{
    const json_t *body = call_body(c);
    /* completions serve text2text-generation (T5) too; chat only a model named by "model"
     * (to refuse it clearly), never the default pick */
    unsigned tasks = d == &gen_api_completions || json_is_string(json_object_get(body, "model"))
                         ? task_set(TASK_KIND_GENERATOR)
                         : TASK_BIT(TASK_TEXT_GENERATION);
    struct model *m = openai_field_model(c, tasks);
    if (!m)
        return;
    struct gen_call *g = gen_call_new(c, m, d);
    if (!g)
        return;
    struct gen_limits lim = gen_limits_default();
    lim.max_input_tokens = (uint32_t)model_gen_max_input(m);
    struct err e = {0};
    const char *key = NULL;
    if (gen_api_unsupported(d, body, &key, &e) != 0 ||
        gen_api_parse(d, body, gen_model_config(g->gm), &lim, &g->params, &e) != 0) {
        bool schema = e.kind == ERR_GEN_SCHEMA;
        gen_call_error(g, schema ? ERR_GEN_SCHEMA : ERR_GEN_INVALID,
                       schema ? "response_format" : key, e.msg);
        return;
    }
    if (gen_model_is_encoder_decoder(g->gm) && d == &gen_api_completions &&
        g->params.return_full_text) {
        gen_call_error(g, ERR_GEN_INVALID, "echo",
                       "`echo` is not supported by an encoder-decoder model "
                       "(text2text-generation): its completion does not continue the prompt");
        return;
    }
    struct stream_state *st = calloc(1, sizeof *st);
    if (!st) {
        gen_call_error(g, ERR_NOMEM, NULL, "out of memory");
        return;
    }
    snprintf(st->model, sizeof st->model, "%s", model_name(m));
    g->user = st;
    g->user_fini = state_fini;
    if (d == &gen_api_completions) {
        const json_t *prompt = json_object_get(body, "prompt");
        if (!prompt || json_is_null(prompt)) {
            gen_call_error(g, ERR_GEN_INVALID, "prompt", "`prompt` is required");
            return;
        }
        if (!completion_prompts(g, prompt))
            return;
    } else if (!chat_prompt(g, body) || gen_call_check(g) != 0) {
        return;
    }
    size_t n_choices = g->params.n * (g->n_prompts ? g->n_prompts : 1);
    g->record_tokens = !g->params.stream && g->params.logprobs;
    if (!g->params.stream)
        gen_call_run(g, n_choices, d == &gen_api_chat ? chat_done : completion_done, NULL, NULL);
    else
        gen_call_run(g, n_choices, NULL, &openai_stream, "text/event-stream");
}

void route_openai_completions(struct call *c)
{
    openai_route(c, &gen_api_completions);
}

void route_openai_chat(struct call *c)
{
    openai_route(c, &gen_api_chat);
}
