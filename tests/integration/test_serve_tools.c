/* test_serve_tools: OpenAI tool calling through the real daemon.
 *
 * tests/data/tool-models.tar.xz holds two tiny decoders whose greedy answer is a tool call
 * (tools/refgen/tool_models.py sets their weights so; transformers' generate is the
 * reference): tools-qwen3 (Qwen3's tokenizer and real chat template: hermes) and tools-llama3.1
 * (Llama 3's tokenizer, the Llama 3.1 template: llama3_json). For each, a first turn (tools and
 * a question) and a second (the call and its result sent back) give the refs' prompt token
 * count (inferd's rendering and tokenizing are transformers') and the call parsed into
 * message.tool_calls with finish_reason "tool_calls", whole and streamed as OpenAI streams it
 * (delta.tool_calls: id, type and name first, then the arguments). The call's text cut short by
 * max_tokens is plain content, never an error; tool_choice none leaves the text alone, required
 * and named accept the call, a named function the model would not call is called all the same
 * (the grammar of tool_grammar.c), and a forced call cut by max_tokens is an error. On the
 * random-weight Llama 3 chat fixture read as hermes, llama3_json and mistral, required and
 * named, sampled over seeds, whole and streamed, always give one call of the right tool whose
 * arguments validate (support/json_check.c); a parameters keyword the schema compiler lacks is
 * 422 naming the tool. A tool_parser from the config replaces the template's. Bad tool
 * definitions are 422 naming the field, bad tool_choice values and tool messages 400, and a
 * model whose template teaches no tool-call format refuses tools. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integration/serve_expect.h"
#include "integration/serve_support.h"
#include "suites.h"
#include "support/json_check.h"
#include "support/support.h"

static struct daemon *srv;

static void srv_start(void)
{
    char q[1024], l[1024];
    snprintf(q, sizeof q, "%s", fixture_tool_model("tools-qwen3"));
    snprintf(l, sizeof l, "%s", fixture_tool_model("tools-llama3.1"));
    char *yaml = yaml_config(NULL, yaml_model("qwen", q, "text-generation", NULL),
                             yaml_model("llama", l, "text-generation", NULL),
                             yaml_model("qwen-as-mistral", q, "text-generation",
                                        "tool_parser: mistral\n"),
                             yaml_model("plain", fixture_chat_model(), "text-generation", NULL),
                             yaml_model("rand-hermes", fixture_chat_model(), "text-generation",
                                        "tool_parser: hermes\n"),
                             yaml_model("rand-llama3", fixture_chat_model(), "text-generation",
                                        "tool_parser: llama3_json\n"),
                             yaml_model("rand-mistral", fixture_chat_model(), "text-generation",
                                        "tool_parser: mistral\n"),
                             NULL);
    srv = daemon_start_shared(yaml);
}

static void srv_stop(void)
{
    daemon_stop(srv);
    srv = NULL;
}

static json_t *refs_of(const char *name)
{
    return fixture_json(fixture_tool_model(name), "refs.json");
}

/* A greedy chat request for model with the case's messages and tools (new reference). */
static json_t *chat_body(const char *model, const json_t *cas, int max_tokens, bool stream)
{
    return json_pack("{s:s, s:O, s:O, s:i, s:i, s:b}", "model", model, "messages",
                     json_object_get(cas, "messages"), "tools", json_object_get(cas, "tools"),
                     "temperature", 0, "max_tokens", max_tokens, "stream", stream);
}

/* The events of an SSE body ending with data: [DONE] (new reference). */
static json_t *sse_events(const char *body, const char *what)
{
    json_t *events = json_array();
    const char *p = body;
    while (strncmp(p, "data: [DONE]\n\n", 14) != 0) {
        ck_assert_msg(strncmp(p, "data: ", 6) == 0, "%s: not an event: %.60s", what, p);
        const char *end = strstr(p, "\n\n");
        ck_assert_msg(end, "%s: an event not ended by a blank line", what);
        json_t *v = json_loadb(p + 6, (size_t)(end - p - 6), 0, NULL);
        ck_assert_msg(json_is_object(v), "%s: event is not JSON: %.80s", what, p);
        json_array_append_new(events, v);
        p = end + 2;
    }
    ck_assert_msg(p[14] == '\0', "%s: bytes after [DONE]", what);
    return events;
}

static const char *str_at(const json_t *o, const char *a, const char *b)
{
    const json_t *v = json_object_get(o, a);
    return json_string_value(b ? json_object_get(v, b) : v);
}

/* message.tool_calls holds the refs' one call. */
static void expect_call(const json_t *msg, const json_t *cas, const char *what)
{
    const json_t *calls = json_object_get(msg, "tool_calls");
    ck_assert_msg(json_array_size(calls) == 1, "%s: %zu calls", what, json_array_size(calls));
    const json_t *call = json_array_get(calls, 0);
    const char *id = str_at(call, "id", NULL);
    ck_assert_msg(id && strlen(id) == 29 && strncmp(id, "call_", 5) == 0, "%s: id %s", what, id);
    ck_assert_str_eq(str_at(call, "type", NULL), "function");
    const json_t *want = json_object_get(cas, "call");
    ck_assert_str_eq(str_at(call, "function", "name"), str_at(want, "name", NULL));
    ck_assert_str_eq(str_at(call, "function", "arguments"), str_at(want, "arguments", NULL));
    ck_assert_msg(json_is_null(json_object_get(msg, "content")), "%s: content", what);
}

static void check_round_trip(const char *model, const char *fixture)
{
    json_t *refs = refs_of(fixture);
    ck_assert_uint_eq(json_array_size(refs), 2);
    size_t i;
    json_t *cas;
    json_array_foreach(refs, i, cas)
    {
        char what[96];
        snprintf(what, sizeof what, "%s turn %zu", model, i + 1);
        struct http_reply *r = daemon_post(srv, "/v1/chat/completions",
                                           chat_body(model, cas, 32, false));
        expect_status(r, 200, what);
        const json_t *usage = json_object_get(r->json, "usage");
        ck_assert_int_eq(json_integer_value(json_object_get(usage, "prompt_tokens")),
                         json_integer_value(json_object_get(cas, "prompt_tokens")));
        const json_t *choice = json_array_get(json_object_get(r->json, "choices"), 0);
        ck_assert_str_eq(str_at(choice, "finish_reason", NULL), "tool_calls");
        expect_call(json_object_get(choice, "message"), cas, what);
        http_reply_free(r);
    }
    json_decref(refs);
}

START_TEST(qwen3_round_trip)
{
    check_round_trip("qwen", "tools-qwen3");
}
END_TEST

START_TEST(llama31_round_trip)
{
    check_round_trip("llama", "tools-llama3.1");
}
END_TEST

/* Streamed: the role, then the call's header and its arguments, then the finish. */
static void check_stream(const char *model, const char *fixture)
{
    json_t *refs = refs_of(fixture);
    const json_t *cas = json_array_get(refs, 0);
    struct http_reply *r =
        daemon_post(srv, "/v1/chat/completions", chat_body(model, cas, 32, true));
    expect_status(r, 200, model);
    json_t *ev = sse_events(r->body, model);
    ck_assert_uint_eq(json_array_size(ev), 4);
    const json_t *d[4];
    for (size_t k = 0; k < 4; k++) {
        const json_t *choice = json_array_get(json_object_get(json_array_get(ev, k), "choices"), 0);
        d[k] = json_object_get(choice, "delta");
        ck_assert_str_eq(str_at(json_array_get(ev, k), "object", NULL), "chat.completion.chunk");
        if (k < 3)
            ck_assert(json_is_null(json_object_get(choice, "finish_reason")));
        else
            ck_assert_str_eq(str_at(choice, "finish_reason", NULL), "tool_calls");
    }
    ck_assert_str_eq(str_at(d[0], "role", NULL), "assistant");
    const json_t *head = json_array_get(json_object_get(d[1], "tool_calls"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(head, "index")), 0);
    ck_assert(strncmp(str_at(head, "id", NULL), "call_", 5) == 0);
    ck_assert_str_eq(str_at(head, "type", NULL), "function");
    ck_assert_str_eq(str_at(head, "function", "name"), "get_weather");
    ck_assert_str_eq(str_at(head, "function", "arguments"), "");
    const json_t *args = json_array_get(json_object_get(d[2], "tool_calls"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(args, "index")), 0);
    ck_assert_ptr_null(json_object_get(args, "id"));
    ck_assert_str_eq(str_at(args, "function", "arguments"),
                     str_at(json_object_get(cas, "call"), "arguments", NULL));
    ck_assert_uint_eq(json_object_size(d[3]), 0);
    json_decref(ev);
    http_reply_free(r);
    json_decref(refs);
}

START_TEST(qwen3_streams_tool_calls)
{
    check_stream("qwen", "tools-qwen3");
}
END_TEST

START_TEST(llama31_streams_tool_calls)
{
    check_stream("llama", "tools-llama3.1");
}
END_TEST

START_TEST(a_cut_call_is_content)
{
    json_t *refs = refs_of("tools-qwen3");
    const json_t *cas = json_array_get(refs, 0);
    const char *want = str_at(cas, "text_3", NULL); /* <tool_call>{"name */
    ck_assert(strncmp(want, "<tool_call>", 11) == 0);
    struct http_reply *r =
        daemon_post(srv, "/v1/chat/completions", chat_body("qwen", cas, 3, false));
    expect_status(r, 200, "cut");
    const json_t *choice = json_array_get(json_object_get(r->json, "choices"), 0);
    ck_assert_str_eq(str_at(choice, "finish_reason", NULL), "length");
    ck_assert_str_eq(str_at(choice, "message", "content"), want);
    ck_assert_ptr_null(json_object_get(json_object_get(choice, "message"), "tool_calls"));
    http_reply_free(r);
    /* streamed: the same text as content, nothing else */
    r = daemon_post(srv, "/v1/chat/completions", chat_body("qwen", cas, 3, true));
    expect_status(r, 200, "cut stream");
    json_t *ev = sse_events(r->body, "cut stream");
    char text[256] = "";
    const char *finish = NULL;
    for (size_t k = 0; k < json_array_size(ev); k++) {
        const json_t *c = json_array_get(json_object_get(json_array_get(ev, k), "choices"), 0);
        const json_t *d = json_object_get(c, "delta");
        ck_assert_ptr_null(json_object_get(d, "tool_calls"));
        if (str_at(d, "content", NULL))
            snprintf(text + strlen(text), sizeof text - strlen(text), "%s",
                     str_at(d, "content", NULL));
        if (str_at(c, "finish_reason", NULL))
            finish = str_at(c, "finish_reason", NULL);
    }
    ck_assert_str_eq(text, want);
    ck_assert_str_eq(finish, "length");
    json_decref(ev);
    http_reply_free(r);
    json_decref(refs);
}
END_TEST

/* A qwen request of the first turn with tool_choice (stolen); the reply. */
static struct http_reply *with_choice(const char *model, json_t *choice, int max_tokens,
                                      bool stream)
{
    json_t *refs = refs_of("tools-qwen3");
    json_t *body = chat_body(model, json_array_get(refs, 0), max_tokens, stream);
    json_object_set_new(body, "tool_choice", choice);
    json_decref(refs);
    return daemon_post(srv, "/v1/chat/completions", body);
}

static json_t *named(const char *name)
{
    return json_pack("{s:s, s:{s:s}}", "type", "function", "function", "name", name);
}

START_TEST(tool_choice_none_required_and_named)
{
    json_t *refs = refs_of("tools-qwen3");
    const json_t *cas = json_array_get(refs, 0);
    struct http_reply *r = with_choice("qwen", json_string("none"), 32, false);
    expect_status(r, 200, "none");
    const json_t *choice = json_array_get(json_object_get(r->json, "choices"), 0);
    ck_assert_str_eq(str_at(choice, "message", "content"), str_at(cas, "text", NULL));
    ck_assert_str_eq(str_at(choice, "finish_reason", NULL), "stop");
    http_reply_free(r);

    json_t *choices[] = {json_string("required"), named("get_weather")};
    for (size_t k = 0; k < 2; k++) {
        r = with_choice("qwen", choices[k], 32, false);
        expect_status(r, 200, "required / named");
        choice = json_array_get(json_object_get(r->json, "choices"), 0);
        expect_call(json_object_get(choice, "message"), cas, "required / named");
        http_reply_free(r);
    }
    /* named get_time, which the model would not call: the grammar makes the call (no
     * parameters: {}) */
    r = with_choice("qwen", named("get_time"), 100, false);
    expect_status(r, 200, "named get_time");
    choice = json_array_get(json_object_get(r->json, "choices"), 0);
    ck_assert_str_eq(str_at(choice, "finish_reason", NULL), "tool_calls");
    const json_t *calls = json_object_get(json_object_get(choice, "message"), "tool_calls");
    ck_assert_uint_eq(json_array_size(calls), 1);
    ck_assert_str_eq(str_at(json_array_get(calls, 0), "function", "name"), "get_time");
    ck_assert_str_eq(str_at(json_array_get(calls, 0), "function", "arguments"), "{}");
    http_reply_free(r);
    /* not met: cut by max_tokens before the call is whole, whole and streamed */
    r = with_choice("qwen", json_string("required"), 3, false);
    expect_openai_error(r, 500, "required, cut");
    http_reply_free(r);
    r = with_choice("qwen", named("get_time"), 3, true);
    expect_status(r, 200, "named, cut, streamed");
    json_t *ev = sse_events(r->body, "named stream");
    const json_t *last = json_array_get(ev, json_array_size(ev) - 1);
    ck_assert(strstr(str_at(last, "error", "message"), "'get_time'"));
    json_decref(ev);
    http_reply_free(r);
    json_decref(refs);
}
END_TEST

/* Tools whose arguments a random model finishes in few tokens (enums, bounded integers), one
 * with a $ref, one declaring no parameters, one without `parameters` (OpenAI: none). */
static const char *const forced_tools =
    "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": "
    "{\"type\": \"object\", \"properties\": {\"city\": {\"enum\": [\"Paris\", \"Lyon\"]}, "
    "\"days\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 7}, \"unit\": {\"$ref\": "
    "\"#/$defs/unit\"}}, \"required\": [\"city\", \"days\"], \"$defs\": {\"unit\": "
    "{\"enum\": [\"c\", \"f\"]}}}}}, "
    "{\"type\": \"function\", \"function\": {\"name\": \"get_time\", \"parameters\": "
    "{\"type\": \"object\", \"properties\": {}}}}, "
    "{\"type\": \"function\", \"function\": {\"name\": \"set-alarm_2\", \"parameters\": "
    "{\"properties\": {\"on\": {\"type\": \"boolean\"}, \"at\": {\"anyOf\": "
    "[{\"type\": \"null\"}, {\"type\": \"integer\", \"minimum\": 0, \"maximum\": 23}]}}, "
    "\"required\": [\"on\", \"at\"], \"additionalProperties\": false}}}, "
    "{\"type\": \"function\", \"function\": {\"name\": \"ping\"}}]";

/* The arguments of a call to name validate against that tool's parameters (json_check, a
 * validator independent of the schema compiler). */
static void expect_valid_args(const json_t *tools, const char *name, const char *args,
                              const char *what)
{
    const json_t *fn = NULL, *params = NULL;
    for (size_t i = 0; i < json_array_size(tools); i++) {
        const json_t *f = json_object_get(json_array_get(tools, i), "function");
        if (strcmp(str_at(f, "name", NULL), name) == 0)
            fn = f;
    }
    ck_assert_msg(fn, "%s: a call to '%s', which is no tool", what, name);
    params = json_object_get(fn, "parameters");
    json_t *doc = json_loads(args, 0, NULL);
    ck_assert_msg(json_is_object(doc), "%s: arguments not a JSON object: %s", what, args);
    char why[256] = "";
    ck_assert_msg(!params || json_check(params, params, doc, why, sizeof why), "%s: %s: %s", what,
                  why, args);
    if (!params || json_object_size(json_object_get(params, "properties")) == 0)
        ck_assert_msg(json_object_size(doc) == 0, "%s: arguments of a function without "
                      "parameters: %s", what, args);
    json_decref(doc);
}

/* The one call of a choice, whole or gathered from a stream's deltas: {"name", "arguments"}. */
static json_t *choice_call(const struct http_reply *r, bool stream, const char *what)
{
    if (!stream) {
        const json_t *c = json_array_get(json_object_get(r->json, "choices"), 0);
        ck_assert_msg(strcmp(str_at(c, "finish_reason", NULL), "tool_calls") == 0,
                      "%s: finish %s: %s", what, str_at(c, "finish_reason", NULL), r->body);
        const json_t *calls = json_object_get(json_object_get(c, "message"), "tool_calls");
        ck_assert_msg(json_array_size(calls) == 1, "%s: %s", what, r->body);
        const json_t *f = json_object_get(json_array_get(calls, 0), "function");
        return json_pack("{s:s, s:s}", "name", str_at(f, "name", NULL), "arguments",
                         str_at(f, "arguments", NULL));
    }
    json_t *ev = sse_events(r->body, what);
    json_t *call = json_pack("{s:s, s:s}", "name", "", "arguments", "");
    const char *finish = NULL;
    for (size_t k = 0; k < json_array_size(ev); k++) {
        const json_t *c = json_array_get(json_object_get(json_array_get(ev, k), "choices"), 0);
        ck_assert_msg(c, "%s: an event without a choice: %s", what, r->body);
        const json_t *d = json_object_get(c, "delta");
        ck_assert_msg(!str_at(d, "content", NULL) || !*str_at(d, "content", NULL),
                      "%s: content beside the call: %s", what, r->body);
        const json_t *tc = json_array_get(json_object_get(d, "tool_calls"), 0);
        if (tc) {
            ck_assert_int_eq(json_integer_value(json_object_get(tc, "index")), 0);
            const json_t *f = json_object_get(tc, "function");
            for (const char *const *key = (const char *const[]){"name", "arguments", NULL}; *key;
                 key++)
                if (str_at(f, *key, NULL)) {
                    char *both = NULL;
                    ck_assert(asprintf(&both, "%s%s", str_at(call, *key, NULL),
                                       str_at(f, *key, NULL)) >= 0);
                    json_object_set_new(call, *key, json_string(both));
                    free(both);
                }
        }
        if (str_at(c, "finish_reason", NULL))
            finish = str_at(c, "finish_reason", NULL);
    }
    ck_assert_msg(finish && strcmp(finish, "tool_calls") == 0, "%s: %s", what, r->body);
    json_decref(ev);
    return call;
}

/* tool_choice required and named on the random-weight Llama 3 chat fixture read by each
 * parser family, sampled over seeds, whole and streamed: always exactly one call, of a defined
 * tool (the named one), whose arguments validate; tool_choice none leaves it a text. */
START_TEST(forced_calls_on_random_weights)
{
    static const char *const models[] = {"rand-hermes", "rand-llama3", "rand-mistral"};
    static const char *const names[] = {NULL, "get_weather", "get_time", "set-alarm_2", "ping"};
    json_t *tools = json_loads(forced_tools, 0, NULL);
    ck_assert(tools);
    for (size_t m = 0; m < 3; m++)
        for (size_t k = 0; k < 5; k++)
            for (int seed = 1; seed <= 3; seed++) {
                bool stream = seed == 2;
                char what[128];
                snprintf(what, sizeof what, "%s %s seed %d%s", models[m],
                         names[k] ? names[k] : "required", seed, stream ? " streamed" : "");
                json_t *body = json_pack(
                    "{s:s, s:[{s:s, s:s}], s:O, s:o, s:i, s:i, s:f, s:b}", "model", models[m],
                    "messages", "role", "user", "content", "Weather in Paris?", "tools", tools,
                    "tool_choice", names[k] ? named(names[k]) : json_string("required"),
                    "max_tokens", 150, "seed", seed, "temperature", 1.0, "stream", stream);
                struct http_reply *r = daemon_post(srv, "/v1/chat/completions", body);
                expect_status(r, 200, what);
                json_t *call = choice_call(r, stream, what);
                const char *name = str_at(call, "name", NULL);
                if (names[k])
                    ck_assert_msg(strcmp(name, names[k]) == 0, "%s: called %s", what, name);
                expect_valid_args(tools, name, str_at(call, "arguments", NULL), what);
                json_decref(call);
                http_reply_free(r);
            }
    /* none: the same request is answered as text, never a call */
    struct http_reply *r = daemon_post(
        srv, "/v1/chat/completions",
        json_pack("{s:s, s:[{s:s, s:s}], s:O, s:s, s:i, s:i}", "model", "rand-hermes",
                  "messages", "role", "user", "content", "Weather?", "tools", tools,
                  "tool_choice", "none", "max_tokens", 8, "seed", 1));
    expect_status(r, 200, "none");
    const json_t *c = json_array_get(json_object_get(r->json, "choices"), 0);
    ck_assert_str_eq(str_at(c, "finish_reason", NULL), "length");
    ck_assert_ptr_null(json_object_get(json_object_get(c, "message"), "tool_calls"));
    http_reply_free(r);
    /* a parameters keyword the compiler lacks, and response_format beside a forced call */
    json_object_set_new(json_object_get(json_object_get(json_array_get(tools, 1), "function"),
                                        "parameters"),
                        "minProperties", json_integer(1));
    r = daemon_post(srv, "/v1/chat/completions",
                    json_pack("{s:s, s:[{s:s, s:s}], s:O, s:s}", "model", "rand-hermes",
                              "messages", "role", "user", "content", "hi", "tools", tools,
                              "tool_choice", "required"));
    expect_openai_error(r, 422, "unsupported keyword");
    ck_assert_str_eq(str_at(r->json, "error", "param"), "tools");
    ck_assert(strstr(str_at(r->json, "error", "message"), "tools[1].function.parameters"));
    ck_assert(strstr(str_at(r->json, "error", "message"), "minProperties"));
    http_reply_free(r);
    r = daemon_post(srv, "/v1/chat/completions",
                    json_pack("{s:s, s:[{s:s, s:s}], s:O, s:o, s:{s:s}}", "model", "rand-hermes",
                              "messages", "role", "user", "content", "hi", "tools", tools,
                              "tool_choice", named("get_weather"), "response_format", "type",
                              "json_object"));
    expect_openai_error(r, 400, "response_format and a forced call");
    ck_assert_str_eq(str_at(r->json, "error", "param"), "response_format");
    http_reply_free(r);
    json_decref(tools);
}
END_TEST

START_TEST(config_tool_parser_replaces_the_templates)
{
    /* hermes text read by the mistral parser: no call, the text is the content */
    json_t *refs = refs_of("tools-qwen3");
    struct http_reply *r = daemon_post(srv, "/v1/chat/completions",
                                       chat_body("qwen-as-mistral", json_array_get(refs, 0), 32,
                                                 false));
    expect_status(r, 200, "qwen-as-mistral");
    const json_t *choice = json_array_get(json_object_get(r->json, "choices"), 0);
    ck_assert_str_eq(str_at(choice, "message", "content"),
                     str_at(json_array_get(refs, 0), "text", NULL));
    ck_assert_str_eq(str_at(choice, "finish_reason", NULL), "stop");
    http_reply_free(r);
    json_decref(refs);
}
END_TEST

/* POST body_json (a chat request with its model) and expect the status with param and a
 * message holding needle. */
static void expect_refused(const char *body_json, long status, const char *param,
                           const char *needle)
{
    json_error_t je;
    json_t *body = json_loads(body_json, 0, &je);
    ck_assert_msg(body, "bad test JSON: %s", je.text);
    struct http_reply *r = daemon_post(srv, "/v1/chat/completions", body);
    expect_openai_error(r, status, body_json);
    const json_t *e = json_object_get(r->json, "error");
    ck_assert_str_eq(str_at(e, "param", NULL), param);
    ck_assert_msg(strstr(str_at(e, "message", NULL), needle), "'%s' lacks '%s'",
                  str_at(e, "message", NULL), needle);
    http_reply_free(r);
}

#define ASK "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]"
#define FN(params) \
    "[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": " params "}}]"

START_TEST(bad_tools_are_refused)
{
    expect_refused("{\"model\": \"qwen\", " ASK ", \"tools\": " FN("\"string\"") "}", 422,
                   "tools", "tools[0].function.parameters must be a JSON Schema object");
    expect_refused("{\"model\": \"qwen\", " ASK ", \"tools\": " FN("{\"type\": \"array\"}") "}",
                   422, "tools", "\"type\": \"object\"");
    expect_refused("{\"model\": \"qwen\", " ASK ", \"tools\": " FN(
                       "{\"type\": \"object\", \"properties\": {\"a\": 1}}") "}",
                   422, "tools", "properties.a must be a JSON Schema");
    expect_refused("{\"model\": \"qwen\", " ASK ", \"tools\": " FN("{}") ", \"tool_choice\": "
                   "{\"type\": \"function\", \"function\": {\"name\": \"g\"}}}",
                   400, "tool_choice", "'g'");
    expect_refused("{\"model\": \"qwen\", \"messages\": [{\"role\": \"tool\", \"content\": "
                   "\"21\"}]}",
                   400, "messages", "tool_call_id");
    expect_refused("{\"model\": \"qwen\", " ASK ", \"functions\": [{\"name\": \"f\"}]}", 400,
                   "functions", "function calling");
    expect_refused("{\"model\": \"plain\", " ASK ", \"tools\": " FN("{}") "}", 400, "tools",
                   "cannot call tools");
}
END_TEST

Suite *suite_serve_tools(void)
{
    Suite *s = suite_create("serve_tools");
    TCase *t = tcase_create("tools");
    tcase_set_timeout(t, 120);
    tcase_add_unchecked_fixture(t, srv_start, srv_stop);
    tcase_add_checked_fixture(t, NULL, serve_teardown);
    tcase_add_test(t, qwen3_round_trip);
    tcase_add_test(t, llama31_round_trip);
    tcase_add_test(t, qwen3_streams_tool_calls);
    tcase_add_test(t, llama31_streams_tool_calls);
    tcase_add_test(t, a_cut_call_is_content);
    tcase_add_test(t, tool_choice_none_required_and_named);
    tcase_add_test(t, forced_calls_on_random_weights);
    tcase_add_test(t, config_tool_parser_replaces_the_templates);
    tcase_add_test(t, bad_tools_are_refused);
    suite_add_tcase(s, t);
    return s;
}
