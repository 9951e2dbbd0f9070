/* test_tool_calls: OpenAI tool calling's request and answer sides (server/tool_calls.c,
 * server/tool_parse.c).
 *
 * - templates: tests/data/tool-templates.tar.xz holds four tool-calling chat templates (the
 *   real Qwen3 one; Qwen2.5, Llama 3.1 and Mistral v0.3 as tools/refgen/tool_templates/ has
 *   them) and conversations with tools, assistant tool_calls and tool messages as an OpenAI
 *   request carries them, with the text transformers' apply_chat_template(messages, tools=...)
 *   renders (tools/refgen/tool_templates.py); inferd's shaping (tool_messages) and rendering
 *   must give the same bytes. Each template's markers pick its parser.
 * - parsers: hermes, llama3_json and mistral on well-formed text (one call, several, content
 *   before them, arguments printed as json.dumps prints them) and on text they must leave as
 *   content (no call, malformed JSON, no name, arguments not an object);
 * - streaming: content released as soon as it cannot start a call, a hermes call as soon as it
 *   is closed (the others' at the end), a malformed rest as content, nothing before the end
 *   with a named tool_choice;
 * - requests: tool definitions that are not JSON Schema objects, bad names and tool_choice
 *   values are refused naming the field; required / named tool_choice not met is an error. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "chat/template.h"
#include "suites.h"
#include "support/support.h"
#include "tool_calls.h"

/* ---- templates vs transformers ---- */

static bool mentions(const void *ctx, const char *marker)
{
    const struct chat_template_set *ts = ctx;
    return chat_template_mentions(ts->main, marker);
}

static void check_family(const char *family, const char *parser)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tool-templates/%s", fixture_dir("tool-templates.tar.xz"),
             family);
    struct chat_template_set ts;
    struct err e = {0};
    ck_assert_msg(chat_template_load_from_tokenizer_dir(dir, &ts, &e) == 0, "%s", e.msg);
    const struct tool_parser *p = tool_parser_guess(mentions, &ts);
    ck_assert_msg(p && strcmp(p->name, parser) == 0, "%s: parser %s", family, p ? p->name : "-");
    json_t *cases = fixture_json(dir, "cases.json");
    ck_assert(json_array_size(cases) >= 5);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        json_t *messages = tool_messages(json_object_get(c, "messages"), &e);
        ck_assert_msg(messages, "%s case %zu: %s", family, i, e.msg);
        json_t *extra = json_pack("{s:O}", "add_generation_prompt",
                                  json_object_get(c, "add_generation_prompt"));
        if (!json_is_null(json_object_get(c, "tools")))
            json_object_set(extra, "tools", json_object_get(c, "tools"));
        char *text;
        size_t len;
        int rc = chat_template_set_render(&ts, messages, extra, &text, &len, &e);
        ck_assert_msg(rc == 0, "%s case %zu: %s", family, i, e.msg);
        const char *want = json_string_value(json_object_get(c, "text"));
        ck_assert_msg(len == strlen(want) && memcmp(text, want, len) == 0,
                      "%s case %zu:\n got: %s\nwant: %s", family, i, text, want);
        free(text);
        json_decref(extra);
        json_decref(messages);
    }
    json_decref(cases);
    chat_template_set_fini(&ts);
}

START_TEST(qwen3_template_matches_transformers)
{
    check_family("qwen3", "hermes");
}
END_TEST

START_TEST(qwen25_template_matches_transformers)
{
    check_family("qwen2.5", "hermes");
}
END_TEST

START_TEST(llama31_template_matches_transformers)
{
    check_family("llama3.1", "llama3_json");
}
END_TEST

START_TEST(mistral_template_matches_transformers)
{
    check_family("mistral-v0.3", "mistral");
}
END_TEST

/* ---- parsers ---- */

/* Parses text with parser name; expect: NULL for "no calls", else "content|name(args);..."
 * with content "-" when there is none. */
static void expect_parse(const char *name, const char *text, const char *expect)
{
    const struct tool_parser *p = tool_parser_by_name(name);
    ck_assert_ptr_nonnull(p);
    struct tool_parse t;
    bool ok = tool_parse_text(p, text, strlen(text), &t);
    if (!expect) {
        ck_assert_msg(!ok, "%s: calls read from %s", name, text);
        ck_assert_ptr_null(t.calls);
        return;
    }
    ck_assert_msg(ok, "%s: no calls read from %s", name, text);
    char got[1024];
    snprintf(got, sizeof got, "%s|", t.content ? t.content : "-");
    for (size_t i = 0; i < t.n_calls; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s(%s)", i ? ";" : "",
                 t.calls[i].name, t.calls[i].arguments);
    ck_assert_str_eq(got, expect);
    tool_parse_fini(&t);
}

START_TEST(hermes_parses_calls)
{
    expect_parse("hermes",
                 "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
                 "\"Paris\"}}\n</tool_call>",
                 "-|get_weather({\"city\": \"Paris\"})");
    /* several, compact JSON re-printed as json.dumps, UTF-8 kept, content before them */
    expect_parse("hermes",
                 "Let me check.\n<tool_call>\n{\"name\":\"a\",\"arguments\":{\"x\":1,\"t\":"
                 "\"21°C\",\"l\":[1,2]}}\n</tool_call>\n<tool_call>\n{\"name\": \"b\", "
                 "\"arguments\": {}}\n</tool_call>",
                 "Let me check.\n|a({\"x\": 1, \"t\": \"21°C\", \"l\": [1, 2]});b({})");
    /* the last one left open at the end of the turn */
    expect_parse("hermes", "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"k\": true}}",
                 "-|a({\"k\": true})");
    /* arguments missing: an empty object */
    expect_parse("hermes", "<tool_call>{\"name\": \"a\"}</tool_call>", "-|a({})");
}
END_TEST

START_TEST(hermes_leaves_the_rest_as_content)
{
    expect_parse("hermes", "The weather is fine.", NULL);
    expect_parse("hermes", "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": }\n</tool_call>",
                 NULL);
    expect_parse("hermes", "<tool_call>\n{\"arguments\": {}}\n</tool_call>", NULL);
    expect_parse("hermes", "<tool_call>\n{\"name\": \"a\", \"arguments\": \"x=1\"}\n</tool_call>",
                 NULL);
    expect_parse("hermes", "<tool_call>\n[1, 2]\n</tool_call>", NULL);
    expect_parse("hermes", "<tool_call>\n{\"name\": \"a\"} trailing\n</tool_call>", NULL);
    expect_parse("hermes", "<tool_call>{\"name\": \"a\"}</tool_call> and then some text", NULL);
    expect_parse("hermes", "<tool_call></tool_call>", NULL);
    expect_parse("hermes", "<tool_call>", NULL);
}
END_TEST

START_TEST(llama3_json_parses_calls)
{
    expect_parse("llama3_json", "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}",
                 "-|get_weather({\"city\": \"Paris\"})");
    expect_parse("llama3_json",
                 "<|python_tag|>{\"name\": \"a\", \"arguments\": {\"n\": 2}}; {\"name\": \"b\", "
                 "\"parameters\": {}}",
                 "-|a({\"n\": 2});b({})");
    expect_parse("llama3_json", "\n  {\"name\": \"a\", \"parameters\": {\"q\": \"x\"}}  \n",
                 "-|a({\"q\": \"x\"})");
}
END_TEST

START_TEST(llama3_json_leaves_the_rest_as_content)
{
    expect_parse("llama3_json", "It is sunny in Paris.", NULL);
    expect_parse("llama3_json", "Here: {\"name\": \"a\", \"parameters\": {}}", NULL);
    expect_parse("llama3_json", "{\"name\": \"a\", \"parameters\": {\"q\": }", NULL);
    expect_parse("llama3_json", "{\"city\": \"Paris\"}", NULL);
    expect_parse("llama3_json", "{\"name\": \"a\", \"parameters\": {}} and more", NULL);
    expect_parse("llama3_json", "{\"name\": \"a\", \"parameters\": {}};", NULL);
}
END_TEST

START_TEST(mistral_parses_calls)
{
    expect_parse("mistral",
                 "[TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": "
                 "\"Paris\"}}, {\"name\": \"get_time\", \"arguments\": {}}]",
                 "-|get_weather({\"city\": \"Paris\"});get_time({})");
    /* the marker is a special token the decoded text skips */
    expect_parse("mistral", " [{\"name\": \"a\", \"arguments\": {\"x\": [1]}}]",
                 "-|a({\"x\": [1]})");
    expect_parse("mistral", "Sure.[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {}}]",
                 "Sure.|a({})");
}
END_TEST

START_TEST(mistral_leaves_the_rest_as_content)
{
    expect_parse("mistral", "No tools needed.", NULL);
    expect_parse("mistral", "[1, 2, 3]", NULL);
    expect_parse("mistral", "[{\"city\": \"Paris\"}]", NULL);
    expect_parse("mistral", "[TOOL_CALLS] [{\"name\": \"a\", \"arguments\": {]", NULL);
    expect_parse("mistral", "[TOOL_CALLS] []", NULL);
    expect_parse("mistral", "[TOOL_CALLS] {\"name\": \"a\", \"arguments\": {}}", NULL);
}
END_TEST

START_TEST(call_ids_have_each_parsers_shape)
{
    char a[48], b[48];
    tool_call_id(tool_parser_by_name("hermes"), a, sizeof a);
    tool_call_id(tool_parser_by_name("hermes"), b, sizeof b);
    ck_assert_uint_eq(strlen(a), 29);
    ck_assert(strncmp(a, "call_", 5) == 0);
    ck_assert_str_ne(a, b);
    tool_call_id(tool_parser_by_name("mistral"), a, sizeof a);
    ck_assert_uint_eq(strlen(a), 9); /* Mistral's template refuses other lengths */
    for (size_t i = 0; i < 9; i++)
        ck_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", a[i]));
    ck_assert_ptr_null(tool_parser_by_name("pythonic"));
}
END_TEST

/* ---- requests ---- */

static int read_req(const char *body_json, struct tool_req *r, const char **param,
                    struct err *e)
{
    json_error_t je;
    json_t *body = json_loads(body_json, 0, &je);
    ck_assert_msg(body != NULL, "bad test JSON: %s", je.text);
    int rc = tool_req_read(body, r, param, e);
    json_decref(body);
    return rc;
}

#define TOOL(params) \
    "{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": " params "}}"

static void expect_refused(const char *body, int kind, const char *param, const char *needle)
{
    struct tool_req r;
    struct err e = {0};
    const char *p = NULL;
    ck_assert_int_eq(read_req(body, &r, &p, &e), kind);
    ck_assert_str_eq(p, param);
    ck_assert_msg(strstr(e.msg, needle), "%s: message '%s' lacks '%s'", body, e.msg, needle);
    tool_req_fini(&r);
}

START_TEST(tools_must_be_json_schema_functions)
{
    expect_refused("{\"tools\": [" TOOL("\"city: string\"") "]}", ERR_INVALID, "tools",
                   "tools[0].function.parameters must be a JSON Schema object");
    expect_refused("{\"tools\": [" TOOL("{\"type\": \"string\"}") "]}", ERR_INVALID, "tools",
                   "\"type\": \"object\"");
    expect_refused("{\"tools\": [" TOOL("{\"type\": \"object\", \"properties\": [1]}") "]}",
                   ERR_INVALID, "tools", "`properties` must be an object of schemas");
    expect_refused("{\"tools\": [" TOOL(
                       "{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"str\"}}}") "]}",
                   ERR_INVALID, "tools", "tools[0].function.parameters.properties.a: `type`");
    expect_refused("{\"tools\": [" TOOL("{\"type\": \"object\", \"required\": \"a\"}") "]}",
                   ERR_INVALID, "tools", "`required` must be a list");
    expect_refused("{\"tools\": [" TOOL(
                       "{\"type\": \"object\", \"properties\": {\"a\": {\"items\": 3}}}") "]}",
                   ERR_INVALID, "tools", "properties.a.items must be a JSON Schema");
    expect_refused("{\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"a b\"}}]}",
                   ERR_INVALID, "tools", "tools[0].function.name");
    expect_refused("{\"tools\": [{\"type\": \"retrieval\"}]}", ERR_INVALID, "tools",
                   "only function tools");
    expect_refused("{\"tools\": []}", ERR_INVALID, "tools", "non-empty list");
    expect_refused("{\"tools\": [" TOOL("{}") ", " TOOL("{}") "]}", ERR_INVALID, "tools",
                   "defined twice");
}
END_TEST

START_TEST(tool_choice_is_checked)
{
    expect_refused("{\"tool_choice\": \"required\"}", ERR_GEN_INVALID, "tool_choice",
                   "needs `tools`");
    expect_refused("{\"tools\": [" TOOL("{}") "], \"tool_choice\": \"always\"}", ERR_GEN_INVALID,
                   "tool_choice", "must be \"none\"");
    expect_refused("{\"tools\": [" TOOL("{}") "], \"tool_choice\": {\"type\": \"function\", "
                   "\"function\": {\"name\": \"g\"}}}",
                   ERR_GEN_INVALID, "tool_choice", "'g', which `tools` does not define");
    struct tool_req r;
    struct err e = {0};
    const char *p = NULL;
    ck_assert_int_eq(read_req("{\"tools\": [" TOOL("{\"type\": \"object\", \"properties\": "
                                                   "{\"a\": {\"anyOf\": [{\"type\": "
                                                   "\"string\"}, true]}}}") "]}",
                              &r, &p, &e),
                     0);
    ck_assert_int_eq(r.choice, TOOL_CHOICE_AUTO);
    tool_req_fini(&r);
    ck_assert_int_eq(read_req("{\"tools\": [" TOOL("{}") "], \"tool_choice\": {\"type\": "
                                                        "\"function\", \"function\": {\"name\": "
                                                        "\"f\"}}}",
                              &r, &p, &e),
                     0);
    ck_assert_int_eq(r.choice, TOOL_CHOICE_NAMED);
    ck_assert_str_eq(r.name, "f");
    tool_req_fini(&r);
    ck_assert_int_eq(read_req("{\"tool_choice\": \"none\"}", &r, &p, &e), 0);
    ck_assert_int_eq(r.choice, TOOL_CHOICE_NONE);
    tool_req_fini(&r);
}
END_TEST

START_TEST(tool_messages_are_checked)
{
    static const struct {
        const char *messages, *needle;
    } bad[] = {
        {"[{\"role\": \"tool\", \"content\": \"21\"}]", "needs the `tool_call_id`"},
        {"[{\"role\": \"assistant\", \"tool_calls\": [{\"id\": \"c\", \"type\": \"function\", "
         "\"function\": {\"name\": \"f\", \"arguments\": \"{oops\"}}]}]",
         "messages[0].tool_calls[0].function.arguments must be a JSON object"},
        {"[{\"role\": \"assistant\", \"tool_calls\": [{\"id\": \"c\", \"function\": {\"name\": "
         "\"f\", \"arguments\": {\"x\": 1}}}]}]",
         "messages[0].tool_calls[0] must be"},
        {"[{\"role\": \"user\", \"content\": \"x\", \"tool_calls\": []}]", "on an assistant"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *m = json_loads(bad[i].messages, 0, NULL);
        struct err e = {0};
        ck_assert_ptr_null(tool_messages(m, &e));
        ck_assert_int_eq(e.kind, ERR_GEN_INVALID);
        ck_assert_msg(strstr(e.msg, bad[i].needle), "'%s' lacks '%s'", e.msg, bad[i].needle);
        json_decref(m);
    }
}
END_TEST

/* ---- answers ---- */

static struct tool_req answer_req(enum tool_choice choice, const char *parser)
{
    struct tool_req r = {.choice = choice, .parser = tool_parser_by_name(parser)};
    snprintf(r.name, sizeof r.name, "get_weather");
    return r;
}

START_TEST(answers_carry_tool_calls)
{
    struct tool_req r = answer_req(TOOL_CHOICE_AUTO, "hermes");
    const char *text = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
                       "\"Paris\"}}\n</tool_call>";
    bool called;
    struct err e = {0};
    json_t *msg = tool_answer(&r, text, strlen(text), &called, &e);
    ck_assert(called);
    ck_assert(json_is_null(json_object_get(msg, "content")));
    json_t *call = json_array_get(json_object_get(msg, "tool_calls"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(call, "type")), "function");
    ck_assert(strncmp(json_string_value(json_object_get(call, "id")), "call_", 5) == 0);
    json_t *f = json_object_get(call, "function");
    ck_assert_str_eq(json_string_value(json_object_get(f, "name")), "get_weather");
    ck_assert_str_eq(json_string_value(json_object_get(f, "arguments")), "{\"city\": \"Paris\"}");
    json_decref(msg);
    /* malformed: the text as it is, no calls */
    const char *bad = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": ";
    msg = tool_answer(&r, bad, strlen(bad), &called, &e);
    ck_assert(!called);
    ck_assert_str_eq(json_string_value(json_object_get(msg, "content")), bad);
    ck_assert_ptr_null(json_object_get(msg, "tool_calls"));
    json_decref(msg);
}
END_TEST

START_TEST(required_and_named_choices_need_the_call)
{
    struct tool_req r = answer_req(TOOL_CHOICE_REQUIRED, "hermes");
    bool called;
    struct err e = {0};
    ck_assert_ptr_null(tool_answer(&r, "Sunny.", 6, &called, &e));
    ck_assert_int_eq(e.kind, ERR_GEN_FAILED);
    ck_assert(strstr(e.msg, "\"required\""));
    r = answer_req(TOOL_CHOICE_NAMED, "hermes");
    const char *other = "<tool_call>{\"name\": \"get_time\", \"arguments\": {}}</tool_call>";
    ck_assert_ptr_null(tool_answer(&r, other, strlen(other), &called, &e));
    ck_assert(strstr(e.msg, "'get_weather'"));
    const char *ok = "<tool_call>{\"name\": \"get_weather\", \"arguments\": {}}</tool_call>";
    json_t *msg = tool_answer(&r, ok, strlen(ok), &called, &e);
    ck_assert(msg && called);
    json_decref(msg);
}
END_TEST

/* Streams pieces through tool_stream_push: the content sent on the way in sent, the call
 * deltas sent on the way in *early, the deltas of the end in *end (new references). */
static void stream_pieces(const struct tool_req *r, const char *const *pieces, char *sent,
                          size_t size, json_t **early, json_t **end, bool *called)
{
    struct tool_stream s = {0};
    sent[0] = '\0';
    *early = json_array();
    for (size_t i = 0; pieces[i]; i++) {
        json_t *d = tool_stream_push(r, &s, pieces[i], strlen(pieces[i]));
        ck_assert_ptr_nonnull(d);
        size_t k;
        json_t *one;
        json_array_foreach(d, k, one)
        {
            const char *c = json_string_value(json_object_get(one, "content"));
            if (c)
                snprintf(sent + strlen(sent), size - strlen(sent), "%s", c);
            else
                json_array_append(*early, one);
        }
        json_decref(d);
    }
    struct err e = {0};
    *end = tool_stream_end(r, &s, called, &e);
    ck_assert_msg(*end != NULL, "%s", e.msg);
    tool_stream_fini(&s);
}

/* deltas[k] and [k + 1] are call index's header (name) and arguments. */
static void expect_call_deltas(const json_t *deltas, size_t k, int index, const char *name,
                               const char *args)
{
    json_t *head = json_array_get(json_object_get(json_array_get(deltas, k), "tool_calls"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(head, "index")), index);
    ck_assert_str_eq(json_string_value(json_object_get(head, "type")), "function");
    ck_assert(strncmp(json_string_value(json_object_get(head, "id")), "call_", 5) == 0);
    json_t *f = json_object_get(head, "function");
    ck_assert_str_eq(json_string_value(json_object_get(f, "name")), name);
    ck_assert_str_eq(json_string_value(json_object_get(f, "arguments")), "");
    json_t *a = json_array_get(json_object_get(json_array_get(deltas, k + 1), "tool_calls"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(a, "index")), index);
    ck_assert_ptr_null(json_object_get(a, "id"));
    ck_assert_ptr_null(json_object_get(json_object_get(a, "function"), "name"));
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(a, "function"),
                                                       "arguments")),
                     args);
}

START_TEST(streams_content_then_each_call_once_closed)
{
    struct tool_req r = answer_req(TOOL_CHOICE_AUTO, "hermes");
    static const char *const pieces[] = {
        "Let me ", "check.\n<tool", "_call>\n{\"name\": \"get_weather\", ",
        "\"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
        "\n<tool_call>{\"name\": \"get_time\"}</tool_call>", "\n", NULL};
    char sent[512];
    json_t *early, *end;
    bool called;
    stream_pieces(&r, pieces, sent, sizeof sent, &early, &end, &called);
    ck_assert_str_eq(sent, "Let me check.\n"); /* "<tool" held back, then the calls */
    ck_assert(called);
    ck_assert_uint_eq(json_array_size(early), 4); /* each call as soon as it closed */
    expect_call_deltas(early, 0, 0, "get_weather", "{\"city\": \"Paris\"}");
    expect_call_deltas(early, 2, 1, "get_time", "{}");
    ck_assert_uint_eq(json_array_size(end), 0); /* the trailing newline is no content */
    json_decref(early);
    json_decref(end);

    /* a second call that is malformed: the first stays sent, the rest is content */
    static const char *const broken[] = {"<tool_call>{\"name\": \"a\"}</tool_call>",
                                         "<tool_call>{\"name\": ", NULL};
    stream_pieces(&r, broken, sent, sizeof sent, &early, &end, &called);
    ck_assert(called);
    ck_assert_uint_eq(json_array_size(early), 2);
    ck_assert_uint_eq(json_array_size(end), 1);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(end, 0), "content")),
                     "<tool_call>{\"name\": ");
    json_decref(early);
    json_decref(end);

    /* plain text whose end looked like a marker's start: all of it is content in the end */
    static const char *const plain[] = {"a < b and ", "b <tool", NULL};
    stream_pieces(&r, plain, sent, sizeof sent, &early, &end, &called);
    ck_assert(!called);
    ck_assert_str_eq(sent, "a < b and b ");
    ck_assert_uint_eq(json_array_size(early), 0);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(end, 0), "content")),
                     "<tool");
    json_decref(early);
    json_decref(end);
}
END_TEST

START_TEST(llama3_stream_holds_only_a_possible_call)
{
    struct tool_req r = answer_req(TOOL_CHOICE_AUTO, "llama3_json");
    static const char *const text[] = {"\n", "It is", " sunny.", NULL};
    char sent[256];
    json_t *early, *end;
    bool called;
    stream_pieces(&r, text, sent, sizeof sent, &early, &end, &called);
    ck_assert(!called);
    ck_assert_str_eq(sent, "\nIt is sunny.");
    ck_assert_uint_eq(json_array_size(end), 0);
    json_decref(early);
    json_decref(end);
    /* the calls are read at the end; the whitespace before them is no content */
    static const char *const call[] = {"\n", "{\"name\": \"get_weather\", ",
                                       "\"parameters\": {\"city\": \"Rome\"}}", NULL};
    stream_pieces(&r, call, sent, sizeof sent, &early, &end, &called);
    ck_assert(called);
    ck_assert_str_eq(sent, "");
    ck_assert_uint_eq(json_array_size(early), 0);
    ck_assert_uint_eq(json_array_size(end), 2);
    expect_call_deltas(end, 0, 0, "get_weather", "{\"city\": \"Rome\"}");
    json_decref(early);
    json_decref(end);
    /* a broken call: its text, whole, as content at the end */
    static const char *const broken[] = {"{\"name\": ", "\"get_weather\"", NULL};
    stream_pieces(&r, broken, sent, sizeof sent, &early, &end, &called);
    ck_assert(!called);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(end, 0), "content")),
                     "{\"name\": \"get_weather\"");
    json_decref(early);
    json_decref(end);
}
END_TEST

START_TEST(named_stream_sends_nothing_before_the_end)
{
    struct tool_req r = answer_req(TOOL_CHOICE_NAMED, "hermes");
    static const char *const call[] = {"<tool_call>{\"name\": \"get_weather\"}</tool_call>",
                                       NULL};
    char sent[256];
    json_t *early, *end;
    bool called;
    stream_pieces(&r, call, sent, sizeof sent, &early, &end, &called);
    ck_assert(called);
    ck_assert_uint_eq(json_array_size(early), 0);
    expect_call_deltas(end, 0, 0, "get_weather", "{}");
    json_decref(early);
    json_decref(end);
    /* not the named function: an error at the end, nothing sent */
    struct tool_stream s = {0};
    json_t *d = tool_stream_push(&r, &s, "It is sunny.", 12);
    ck_assert_uint_eq(json_array_size(d), 0);
    json_decref(d);
    struct err e = {0};
    ck_assert_ptr_null(tool_stream_end(&r, &s, &called, &e));
    ck_assert_int_eq(e.kind, ERR_GEN_FAILED);
    tool_stream_fini(&s);
}
END_TEST

Suite *suite_tool_calls(void)
{
    Suite *s = suite_create("tool_calls");
    TCase *t = tcase_create("templates");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, qwen3_template_matches_transformers);
    tcase_add_test(t, qwen25_template_matches_transformers);
    tcase_add_test(t, llama31_template_matches_transformers);
    tcase_add_test(t, mistral_template_matches_transformers);
    suite_add_tcase(s, t);
    t = tcase_create("parsers");
    tcase_add_test(t, hermes_parses_calls);
    tcase_add_test(t, hermes_leaves_the_rest_as_content);
    tcase_add_test(t, llama3_json_parses_calls);
    tcase_add_test(t, llama3_json_leaves_the_rest_as_content);
    tcase_add_test(t, mistral_parses_calls);
    tcase_add_test(t, mistral_leaves_the_rest_as_content);
    tcase_add_test(t, call_ids_have_each_parsers_shape);
    suite_add_tcase(s, t);
    t = tcase_create("requests");
    tcase_add_test(t, tools_must_be_json_schema_functions);
    tcase_add_test(t, tool_choice_is_checked);
    tcase_add_test(t, tool_messages_are_checked);
    suite_add_tcase(s, t);
    t = tcase_create("answers");
    tcase_add_test(t, answers_carry_tool_calls);
    tcase_add_test(t, required_and_named_choices_need_the_call);
    tcase_add_test(t, streams_content_then_each_call_once_closed);
    tcase_add_test(t, llama3_stream_holds_only_a_possible_call);
    tcase_add_test(t, named_stream_sends_nothing_before_the_end);
    suite_add_tcase(s, t);
    return s;
}
