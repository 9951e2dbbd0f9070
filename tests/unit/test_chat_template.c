/* test_chat_template: the chat template engine (engine/chat) against Hugging Face.
 *
 * - fixtures: every chat-template-dev.json entry of the llama3 and qwen3 tokenizers (the real
 *   Llama 3 and Qwen3 templates, rendered by transformers' apply_chat_template) comes out byte
 *   for byte, through chat_template_load_from_tokenizer_dir as the server uses it;
 * - semantics: a table of small templates whose expected text is what Jinja2 3.1.6 renders
 *   with transformers' environment (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks,
 *   loopcontrols, transformers' tojson): whitespace control, Undefined, loops, scoping,
 *   Python expressions and methods, filters, json.dumps formatting; plus the real Qwen3
 *   template with tools, a tool call, a tool response and thinking turned off, rendered by
 *   the same reference;
 * - errors: syntax errors with line:col, raise_exception's message as is (ERR_INVALID),
 *   undefined values used as operands, resource limits;
 * - budgets (issue 11): hostile templates are errors, never a crash or a hang: syntax nested
 *   too deeply refused at compile (also on a small stack just under the limit), values that
 *   contain themselves printed as Python prints them, values nested too deeply, range() and
 *   slices exact in int64, repetition sized before it is built, the step, output, time and
 *   memory budgets, int64 edge cases, and a linear lexer whose line:col stay right;
 * - loading: chat_template as a list of named templates, AddedToken special tokens,
 *   chat_template.jinja overriding tokenizer_config.json; several threads rendering at once. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chat/template.h"
#include "suites.h"
#include "support/support.h"

/* Renders src with vars (a JSON object whose "messages" member is the conversation). */
static int render_src(const char *src, const char *vars_json, char **out, struct err *e)
{
    json_error_t je;
    json_t *vars = json_loads(vars_json, 0, &je);
    ck_assert_msg(vars != NULL, "bad test JSON: %s", je.text);
    json_t *messages = json_incref(json_object_get(vars, "messages"));
    json_object_del(vars, "messages");
    struct chat_template *t;
    int rc = chat_template_compile(src, &t, e);
    if (rc == 0) {
        size_t len;
        rc = chat_template_render(t, messages, vars, out, &len, e);
        if (rc == 0)
            ck_assert_uint_eq(len, strlen(*out));
        chat_template_free(t);
    }
    json_decref(messages);
    json_decref(vars);
    return rc;
}

/* ---- the real templates, rendered by transformers ------------------------------------- */

static void check_fixture(const char *name)
{
    const char *dir = fixture_tokenizer(name);
    struct chat_template_set ts;
    struct err e = {0};
    ck_assert_msg(chat_template_load_from_tokenizer_dir(dir, &ts, &e) == 0, "%s", e.msg);
    ck_assert_ptr_nonnull(ts.main);
    json_t *cases = fixture_json(dir, "chat-template-dev.json");
    ck_assert(json_array_size(cases) > 0);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        json_t *extra = json_pack("{s:O}", "add_generation_prompt",
                                  json_object_get(c, "add_generation_prompt"));
        char *text;
        size_t len;
        int rc =
            chat_template_set_render(&ts, json_object_get(c, "messages"), extra, &text, &len, &e);
        ck_assert_msg(rc == 0, "%s case %zu: %s", name, i, e.msg);
        const char *want = json_string_value(json_object_get(c, "text"));
        ck_assert_msg(len == strlen(want) && memcmp(text, want, len) == 0,
                      "%s case %zu:\n got: %s\nwant: %s", name, i, text, want);
        free(text);
        json_decref(extra);
    }
    json_decref(cases);
    chat_template_set_fini(&ts);
}

START_TEST(llama3_fixture_renders_identically)
{
    check_fixture("llama3");
}
END_TEST

START_TEST(qwen3_fixture_renders_identically)
{
    check_fixture("qwen3");
}
END_TEST

START_TEST(loader_reads_special_tokens)
{
    struct chat_template_set ts;
    struct err e = {0};
    ck_assert_int_eq(chat_template_load_from_tokenizer_dir(fixture_tokenizer("llama3"), &ts, &e),
                     0);
    ck_assert_str_eq(ts.bos_token, "<|begin_of_text|>");
    ck_assert_str_eq(ts.eos_token, "<|end_of_text|>");
    ck_assert_ptr_null(ts.tool_use);
    chat_template_set_fini(&ts);
    ck_assert_int_eq(chat_template_load_from_tokenizer_dir(fixture_tokenizer("qwen3"), &ts, &e), 0);
    ck_assert_ptr_null(ts.bos_token); /* "bos_token": null */
    ck_assert_str_eq(ts.eos_token, "<|im_end|>");
    ck_assert_str_eq(json_string_value(json_object_get(ts.special_tokens, "pad_token")),
                     "<|endoftext|>");
    chat_template_set_fini(&ts);
}
END_TEST

static const char qwen3_tools_messages[] =
    "[{\"role\": \"system\", \"content\": \"You are helpful.\"}, {\"role\": \"user\", \"content\": "
    "\"Weather in Z\303\274rich?\"}, {\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": "
    "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": {\"city\": "
    "\"Z\303\274rich\"}}}]}, {\"role\": \"tool\", \"content\": \"{\\\"temp_c\\\": 21.5}\"}, "
    "{\"role\": \"assistant\", \"content\": \"<think>\\nThe tool says 21.5.\\n</think>\\n\\nIt is "
    "21.5 \302\260C.\"}, {\"role\": \"user\", \"content\": \"Thanks!\"}]";
static const char qwen3_tools_tools[] =
    "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get "
    "the weather in a city\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": "
    "{\"type\": \"string\", \"description\": \"e.g. Z\303\274rich\"}}, \"required\": "
    "[\"city\"]}}}]";
static const char qwen3_tools_expected[] =
    "<|im_start|>system\nYou are helpful.\n\n# Tools\n\nYou may call one or more functions to "
    "assist with the user query.\n\nYou are provided with function signatures within "
    "<tools></tools> XML tags:\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": "
    "\"get_weather\", \"description\": \"Get the weather in a city\", \"parameters\": {\"type\": "
    "\"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"e.g. "
    "Z\303\274rich\"}}, \"required\": [\"city\"]}}}\n</tools>\n\nFor each function call, return a "
    "json object with function name and arguments within <tool_call></tool_call> XML "
    "tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
    "<args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\nWeather in "
    "Z\303\274rich?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", "
    "\"arguments\": {\"city\": "
    "\"Z\303\274rich\"}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n{\"temp_c\": "
    "21.5}\n</tool_response><|im_end|>\n<|im_start|>assistant\nIt is 21.5 "
    "\302\260C.<|im_end|>\n<|im_start|>user\nThanks!<|im_end|>\n<|im_start|>assistant\n<think>\n\n<"
    "/think>\n\n";

START_TEST(qwen3_tools_and_tool_calls)
{
    struct chat_template_set ts;
    struct err e = {0};
    ck_assert_int_eq(chat_template_load_from_tokenizer_dir(fixture_tokenizer("qwen3"), &ts, &e), 0);
    json_t *messages = json_loads(qwen3_tools_messages, 0, NULL);
    json_t *extra = json_pack("{s:o,s:b,s:b}", "tools", json_loads(qwen3_tools_tools, 0, NULL),
                              "add_generation_prompt", 1, "enable_thinking", 0);
    char *text;
    size_t len;
    ck_assert_msg(chat_template_set_render(&ts, messages, extra, &text, &len, &e) == 0, "%s",
                  e.msg);
    ck_assert_str_eq(text, qwen3_tools_expected);
    free(text);
    json_decref(extra);
    json_decref(messages);
    chat_template_set_fini(&ts);
}
END_TEST

/* ---- Jinja semantics ------------------------------------------------------------------ */

static const struct {
    const char *src, *vars, *want;
} semantics[] = {
    {"{% if true %}\n  yes\n{% endif %}\n", "{}", "  yes\n"},
    {"a\n    {% if true %}\nb\n    {% endif %}\nc", "{}", "a\nb\nc"},
    {"a  {%- if true -%}  b  {%- endif %}\n\nc", "{}", "ab\nc"},
    {"a\n  {%+ if true %}b{% endif +%}\nc", "{}", "a\n  b\nc"},
    {"x {# comment #}\n  {# own line #}\ny\n", "{}", "x y"},
    {"{{ 'a' }}\n{{ 'b' }}\n", "{}", "a\nb"},
    {"{% raw %}{{ kept }}{% endraw %}", "{}", "{{ kept }}"},
    {"line1\r\nline2\rline3", "{}", "line1\nline2\nline3"},
    {"[{{ nothing }}|{{ nothing is defined }}|{{ nothing is undefined }}|{% if nothing %}T{% else "
     "%}F{% endif %}|{{ nothing|default('d') }}|{{ nothing|length }}]",
     "{}", "[|False|True|F|d|0]"},
    {"{{ messages[0].nope is defined }}|{{ messages[0].nope }}|{{ none.attr is defined }}",
     "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", "
     "\"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello\"}, {\"role\": "
     "\"user\", \"content\": \"Bye\"}]}",
     "False||False"},
    {"{% for m in messages %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ "
     "loop.length }}{{ loop.revindex }} {% endfor %}",
     "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", "
     "\"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello\"}, {\"role\": "
     "\"user\", \"content\": \"Bye\"}]}",
     "10TrueFalse44 21FalseFalse43 32FalseFalse42 43FalseTrue41 "},
    {"{% for m in messages if m.role != 'system' %}{{ loop.index }}={{ m.role }}{% if not "
     "loop.last %},{% endif %}{% endfor %}",
     "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", "
     "\"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello\"}, {\"role\": "
     "\"user\", \"content\": \"Bye\"}]}",
     "1=user,2=assistant,3=user"},
    {"{% for m in [] %}x{% else %}empty{% endfor %}", "{}", "empty"},
    {"{% for i in range(10) %}{% if i is even %}{% continue %}{% endif %}{% if i > 6 %}{% break "
     "%}{% endif %}{{ i }}{% endfor %}",
     "{}", "135"},
    {"{% for k, v in {'a': 1, 'b': [2]}.items() %}{{ k }}:{{ v }};{% endfor %}", "{}",
     "a:1;b:[2];"},
    {"{% for m in messages[::-1] %}{{ m.role[0] }}{% endfor %}|{{ (messages|length - 1) - 1 }}",
     "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", "
     "\"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello\"}, {\"role\": "
     "\"user\", \"content\": \"Bye\"}]}",
     "uaus|2"},
    {"{% set x = 1 %}{% for i in [1, 2] %}{{ x }}{% set x = x + 10 %}{{ x }},{% endfor %}{{ x }}",
     "{}", "111,111,1"},
    {"{% set ns = namespace(n=0, last='') %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% set "
     "ns.last = m.role %}{% endfor %}{{ ns.n }} {{ ns.last }}",
     "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", "
     "\"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello\"}, {\"role\": "
     "\"user\", \"content\": \"Bye\"}]}",
     "4 user"},
    {"{% if true %}{% set y = 'kept' %}{% endif %}{{ y }}", "{}", "kept"},
    {"{% set a, b = 'x', 'y' %}{{ b }}{{ a }}", "{}", "yx"},
    {"{% set block %}  {{ 1 + 1 }}  {% endset %}[{{ block }}]", "{}", "[  2  ]"},
    {"{% macro tag(name, attr='v') %}<{{ name }} {{ attr }}>{% endmacro %}{{ tag('a') }}{{ "
     "tag('b', attr='w') }}",
     "{}", "<a v><b w>"},
    {"{% filter upper %}shout {{ 'this' }}{% endfilter %}", "{}", "SHOUT THIS"},
    {"{{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 0.1 + 0.2 }} {{ 1e-5 }} "
     "{{ 1e16 }} {{ 3.0 }}",
     "{}", "3.5 3 -4 2 1024 0.30000000000000004 1e-05 1e+16 3.0"},
    {"{{ 'a' ~ 1 ~ none ~ true }} {{ 'ab' * 2 }} {{ [1] + [2] }} {{ 1 < 2 < 3 }} {{ 'b' in 'abc' "
     "}} {{ 3 not in [1, 2] }}",
     "{}", "a1NoneTrue abab [1, 2] True True True"},
    {"{{ 'yes' if messages else 'no' }}|{{ 'x' if false }}|{{ none or 'alt' }}|{{ 0 and 1 }}",
     "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", "
     "\"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello\"}, {\"role\": "
     "\"user\", \"content\": \"Bye\"}]}",
     "yes||alt|0"},
    {"{{ 'h\303\251llo w\303\266rld'[::-1] }}|{{ 'h\303\251llo'[1:3] }}|{{ 'h\303\251llo'|length "
     "}}|{{ [1, 2, 3][-1] }}|{{ [1, 2, 3][1:] }}",
     "{}", "dlr\303\266w oll\303\251h|\303\251l|5|3|[2, 3]"},
    {"{{ [1, 'a', none, true, 1.5, {'k': (1,)}] }}|{{ \"it's\" }}|{{ ['it\\'s'] }}", "{}",
     "[1, 'a', None, True, 1.5, {'k': (1,)}]|it's|[\"it's\"]"},
    {"{{ '  pad  '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ '\\n\\nlead'.lstrip('\\n') }}|{{ "
     "'a</think>b</think>c'.split('</think>') }}|{{ 'a  b c'.split() }}|{{ 'a,b,c'.rsplit(',', 1) "
     "}}",
     "{}", "pad|hi|lead|['a', 'b', 'c']|['a', 'b', 'c']|['a,b', 'c']"},
    {"{{ '<tool_response>x</tool_response>'.startswith('<tool_response>') }}|{{ "
     "'abc'.endswith(('x', 'c')) }}|{{ 'Hello'.upper() }}{{ 'Hello'.lower() }}|{{ "
     "'a-b'.replace('-', '+') }}|{{ 'stra\303\237e'.upper() }}|{{ 'hello world'.title() }}",
     "{}", "True|True|HELLOhello|a+b|STRASSE|Hello World"},
    {"{{ {'a': 1}.get('a') }}|{{ {'a': 1}.get('b') }}|{{ {'a': 1}.get('b', 2) }}|{{ {'b': 1, 'a': "
     "2}.keys()|list }}|{{ {'a': 1}.items()|list }}",
     "{}", "1|None|2|['b', 'a']|[('a', 1)]"},
    {"{{ '  x  '|trim }}|{{ 'AbC'|lower }}|{{ 'abc'|upper }}|{{ 'a b'|replace(' ', '_') }}|{{ "
     "42|string }}|{{ [3, 1, 2]|sort }}|{{ [3, 1, 2]|join('-') }}|{{ [1, 2]|first }}{{ [1, 2]|last "
     "}}|{{ 'x'|length }}",
     "{}", "x|abc|ABC|a_b|42|[1, 2, 3]|3-1-2|12|1"},
    {"{{ messages|map(attribute='role')|join(',') }}|{{ messages|selectattr('role', 'equalto', "
     "'user')|list|length }}|{{ messages|rejectattr('role', 'in', "
     "['user'])|map(attribute='content')|list }}",
     "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", "
     "\"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello\"}, {\"role\": "
     "\"user\", \"content\": \"Bye\"}]}",
     "system,user,assistant,user|2|['Be brief.', 'Hello']"},
    {"{{ ['b', 'A', 'c']|sort }}|{{ [1, 2, 2, 3]|unique|list }}|{{ {'b': 1, 'a': 2}|dictsort }}|{{ "
     "[1, 2, 3]|sum }}|{{ [4, 9]|max }}|{{ '3'|int + 1 }}|{{ '2.5'|float }}|{{ 2.567|round(2) "
     "}}|{{ -3|abs }}",
     "{}", "['A', 'b', 'c']|[1, 2, 3]|[('a', 2), ('b', 1)]|6|9|4|2.5|2.57|3"},
    {"{{ 'a\\nb\\n\\nc'|indent(2) }}|{{ 'a\\nb'|indent(4, first=true) }}|{{ 'hello there'|title "
     "}}|{{ 'hELLO'|capitalize }}|{{ {'k': 'v'}|items|list }}",
     "{}", "a\n  b\n\n  c|    a\n    b|Hello There|Hello|[('k', 'v')]"},
    {"{{ {'b': [1, 2.5, '\303\251\"\\n'], 'a': none, 'c': true}|tojson }}", "{}",
     "{\"b\": [1, 2.5, \"\303\251\\\"\\n\"], \"a\": null, \"c\": true}"},
    {"{{ {'b': {'x': []}, 'a': {}}|tojson(indent=2) }}|{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) "
     "}}|{{ [1, 2]|tojson(separators=(',', ':')) }}",
     "{}", "{\n  \"b\": {\n    \"x\": []\n  },\n  \"a\": {}\n}|{\"a\": 2, \"b\": 1}|[1,2]"},
    {"{{ '\316\251\360\237\230\200\\u0001'|tojson }}|{{ "
     "'\316\251\360\237\230\200'|tojson(ensure_ascii=true) }}|{{ [0.1, 1e-7, 1e22, 100.0, "
     "-0.0]|tojson }}",
     "{}",
     "\"\316\251\360\237\230\200\\u0001\"|\"\\u03a9\\ud83d\\ude00\"|[0.1, 1e-07, 1e+22, 100.0, "
     "-0.0]"},
    {"{{ tools|tojson(indent=4) }}",
     "{\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", "
     "\"description\": \"M\303\251t\303\251o\", \"parameters\": {\"type\": \"object\", "
     "\"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}}]}",
     "[\n    {\n        \"type\": \"function\",\n        \"function\": {\n            \"name\": "
     "\"get_weather\",\n            \"description\": \"M\303\251t\303\251o\",\n            "
     "\"parameters\": {\n                \"type\": \"object\",\n                \"properties\": "
     "{\n                    \"city\": {\n                        \"type\": \"string\"\n           "
     "         }\n                },\n                \"required\": [\n                    "
     "\"city\"\n                ]\n            }\n        }\n    }\n]"},
    {"{{ 'x' is string }}{{ {} is mapping }}{{ [] is iterable }}{{ 'x' is sequence }}{{ none is "
     "none }}{{ 1 is number }}{{ 1 is integer }}{{ 1.0 is float }}{{ false is false }}{{ true is "
     "boolean }}{{ 3 is odd }}{{ 9 is divisibleby 3 }}{{ 'abc' is lower }}",
     "{}", "TrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrue"},
    {"[{{ tools }}|{{ tools is none }}|{{ documents }}|{{ add_generation_prompt }}]", "{}",
     "[None|True|None|False]"},
};

START_TEST(jinja_semantics)
{
    const char *src = semantics[_i].src;
    char *text = NULL;
    struct err e = {0};
    ck_assert_msg(render_src(src, semantics[_i].vars, &text, &e) == 0, "%s\n-> %s", src, e.msg);
    ck_assert_msg(strcmp(text, semantics[_i].want) == 0, "%s\n got: %s\nwant: %s", src, text,
                  semantics[_i].want);
    free(text);
}
END_TEST

/* ---- errors ------------------------------------------------------------------------------ */

START_TEST(syntax_errors_have_line_and_column)
{
    static const struct {
        const char *src, *want;
    } cases[] = {
        {"a\n\n  {{ 1 2 }}", "line 3:8: syntax error: expected end of print statement"},
        {"{% if x %}\nyes", "line 2:4: syntax error: unexpected end of template, expected 'endif'"},
        {"{{ x | nofilter }}", "line 1:8: syntax error: no filter named 'nofilter'"},
        {"ok\n {% for %}", "line 2:9: syntax error: expected an expression"},
        {"{{ (1, 2 }}", "line 1:10: syntax error: unexpected '}'"},
        {"{# never closed", "line 1:1: syntax error: missing end of comment tag"},
        {"{{ 'é' }} {{ @ }}", "line 1:14: syntax error: unexpected char '@'"},
        {"{% endif %}", "line 1:4: syntax error: encountered unknown tag 'endif'"},
        {"{% include 'x.j2' %}", "line 1:4: syntax error: the 'include' tag is not supported"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct chat_template *t = (struct chat_template *)1;
        struct err e = {0};
        ck_assert_int_eq(chat_template_compile(cases[i].src, &t, &e), ERR_FORMAT);
        ck_assert_ptr_null(t);
        ck_assert_msg(strstr(e.msg, cases[i].want) != NULL, "%s: got \"%s\", want \"%s\"",
                      cases[i].src, e.msg, cases[i].want);
    }
    struct chat_template *t;
    struct err e = {0};
    ck_assert_int_eq(chat_template_compile("bad \xff utf-8", &t, &e), ERR_FORMAT);
}
END_TEST

START_TEST(raise_exception_message_comes_back_as_is)
{
    static const char src[] =
        "{% for m in messages %}{% if (m.role == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') "
        "}}"
        "{% endif %}{{ m.content }}{% endfor %}";
    char *text = NULL;
    struct err e = {0};
    int rc = render_src(src,
                        "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"},"
                        " {\"role\": \"user\", \"content\": \"b\"}]}",
                        &text, &e);
    ck_assert_int_eq(rc, ERR_INVALID);
    ck_assert_ptr_null(text);
    ck_assert_str_eq(e.msg, "Conversation roles must alternate user/assistant/user/assistant/...");
    /* the same template accepts an alternating conversation */
    rc = render_src(src,
                    "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"},"
                    " {\"role\": \"assistant\", \"content\": \"b\"}]}",
                    &text, &e);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(text, "ab");
    free(text);
}
END_TEST

START_TEST(runtime_errors)
{
    static const struct {
        const char *src, *want;
        int kind;
    } cases[] = {
        {"{{ nothing.attr }}", "line 1:11: 'nothing' is undefined", ERR_INVALID},
        {"{{ messages[0].role }}", "list object has no element 0", ERR_INVALID},
        {"\n{{ 'a' + 1 }}", "line 2:8: can only concatenate str (not \"int\") to str", ERR_INVALID},
        {"{{ 1 // 0 }}", "integer division or modulo by zero", ERR_INVALID},
        {"{{ [1].append(2) }}", "access to attribute 'append' of 'list' object is unsafe.",
         ERR_INVALID},
        {"{% for t in tools %}{% endfor %}", "'NoneType' object is not iterable", ERR_INVALID},
        {"{{ range(1000000)|length }}", "Range too big", ERR_TOO_LARGE},
        {"{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "recurses too deeply",
         ERR_INVALID},
        {"{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}"
         "{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
         "exceeded the output budget", ERR_TOO_LARGE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = NULL;
        struct err e = {0};
        int rc = render_src(cases[i].src, "{\"messages\": []}", &text, &e);
        ck_assert_msg(rc == cases[i].kind, "%s: rc %d (%s)", cases[i].src, rc, e.msg);
        ck_assert_msg(strstr(e.msg, cases[i].want) != NULL, "%s: got \"%s\", want \"%s\"",
                      cases[i].src, e.msg, cases[i].want);
        ck_assert_ptr_null(text);
    }
}
END_TEST

/* ---- loading -------------------------------------------------------------------------- */

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static char *render_set(const struct chat_template_set *ts, const char *extra_json)
{
    json_t *messages = json_loads("[{\"role\": \"user\", \"content\": \"hi\"}]", 0, NULL);
    json_t *extra = extra_json ? json_loads(extra_json, 0, NULL) : NULL;
    char *text = NULL;
    size_t len;
    struct err e = {0};
    ck_assert_msg(chat_template_set_render(ts, messages, extra, &text, &len, &e) == 0, "%s", e.msg);
    json_decref(messages);
    json_decref(extra);
    return text;
}

START_TEST(loader_named_templates_and_added_tokens)
{
    const char *dir = temp_dir();
    write_file(
        dir, "tokenizer_config.json",
        "{\"bos_token\": {\"__type\": \"AddedToken\", \"content\": \"<s>\", \"lstrip\": false},"
        " \"eos_token\": \"</s>\", \"model_max_length\": 1000000000000000019884624838656,"
        " \"chat_template\": ["
        "  {\"name\": \"default\", \"template\": \"{{ bos_token }}D:{{ messages[0].content }}\"},"
        "  {\"name\": \"tool_use\", \"template\": \"T:{{ tools|length }}{{ eos_token }}\"}]}");
    struct chat_template_set ts;
    struct err e = {0};
    ck_assert_msg(chat_template_load_from_tokenizer_dir(dir, &ts, &e) == 0, "%s", e.msg);
    ck_assert_str_eq(ts.bos_token, "<s>");
    char *text = render_set(&ts, NULL);
    ck_assert_str_eq(text, "<s>D:hi");
    free(text);
    text = render_set(&ts, "{\"tools\": [{\"name\": \"a\"}, {\"name\": \"b\"}]}");
    ck_assert_str_eq(text, "T:2</s>");
    free(text);
    text = render_set(&ts, "{\"bos_token\": \"[override]\"}");
    ck_assert_str_eq(text, "[override]D:hi");
    free(text);
    chat_template_set_fini(&ts);

    /* chat_template.jinja wins over tokenizer_config.json, as in transformers */
    write_file(dir, "chat_template.jinja", "J:{{ messages|length }}\n");
    ck_assert_int_eq(chat_template_load_from_tokenizer_dir(dir, &ts, &e), 0);
    text = render_set(&ts, NULL);
    ck_assert_str_eq(text, "J:1");
    free(text);
    chat_template_set_fini(&ts);

    /* a broken template is reported with its file */
    write_file(dir, "chat_template.jinja", "{% if %}");
    ck_assert_int_eq(chat_template_load_from_tokenizer_dir(dir, &ts, &e), ERR_FORMAT);
    ck_assert_msg(strstr(e.msg, "chat_template.jinja") != NULL, "%s", e.msg);
}
END_TEST

START_TEST(loader_without_template)
{
    const char *dir = temp_dir();
    write_file(dir, "tokenizer_config.json", "{\"eos_token\": \"</s>\"}");
    struct chat_template_set ts;
    struct err e = {0};
    ck_assert_int_eq(chat_template_load_from_tokenizer_dir(dir, &ts, &e), 0);
    ck_assert_ptr_null(ts.main);
    json_t *messages = json_array();
    char *text;
    size_t len;
    ck_assert_int_eq(chat_template_set_render(&ts, messages, NULL, &text, &len, &e), ERR_INVALID);
    json_decref(messages);
    chat_template_set_fini(&ts);
}
END_TEST

/* ---- threads ------------------------------------------------------------------------------ */

struct job {
    const struct chat_template_set *ts;
    json_t *cases;
    int failures;
};

static void *render_all(void *arg)
{
    struct job *j = arg;
    for (int round = 0; round < 20; round++) {
        size_t i;
        json_t *c;
        json_array_foreach(j->cases, i, c)
        {
            json_t *extra = json_pack("{s:O}", "add_generation_prompt",
                                      json_object_get(c, "add_generation_prompt"));
            char *text = NULL;
            size_t len;
            struct err e;
            if (chat_template_set_render(j->ts, json_object_get(c, "messages"), extra, &text, &len,
                                         &e) != 0 ||
                strcmp(text, json_string_value(json_object_get(c, "text"))) != 0)
                j->failures++;
            free(text);
            json_decref(extra);
        }
    }
    return NULL;
}

START_TEST(threads_share_one_template)
{
    const char *dir = fixture_tokenizer("qwen3");
    struct chat_template_set ts;
    struct err e = {0};
    ck_assert_int_eq(chat_template_load_from_tokenizer_dir(dir, &ts, &e), 0);
    json_t *cases = fixture_json(dir, "chat-template-dev.json");
    struct job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct job){&ts, cases, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, render_all, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(jobs[i].failures, 0);
    }
    json_decref(cases);
    chat_template_set_fini(&ts);
}
END_TEST

/* ---- budgets: hostile templates fail cleanly, never crash or hang ------------------------ */

/* "head" + piece x n + "tail", malloc'ed. */
static char *repeat_src(const char *head, const char *piece, size_t n, const char *tail)
{
    size_t lh = strlen(head), lp = strlen(piece), lt = strlen(tail);
    char *s = malloc(lh + lp * n + lt + 1);
    ck_assert_ptr_nonnull(s);
    memcpy(s, head, lh);
    for (size_t i = 0; i < n; i++)
        memcpy(s + lh + i * lp, piece, lp);
    memcpy(s + lh + lp * n, tail, lt + 1);
    return s;
}

/* Renders src with no messages; the text (or NULL) in *out, the error in e. */
static int render_plain(const char *src, char **out, struct err *e)
{
    *out = NULL;
    return render_src(src, "{\"messages\": []}", out, e);
}

static void want_error(const char *src, int kind, const char *want)
{
    char *text = NULL;
    struct err e = {0};
    int rc = render_plain(src, &text, &e);
    ck_assert_msg(rc == kind, "%.80s: rc %d (%s)", src, rc, rc ? e.msg : "rendered");
    ck_assert_msg(strstr(e.msg, want) != NULL, "%.80s: got \"%s\", want \"%s\"", src, e.msg,
                  want);
    ck_assert_ptr_null(text);
}

static void want_text(const char *src, const char *want)
{
    char *text = NULL;
    struct err e = {0};
    int rc = render_plain(src, &text, &e);
    ck_assert_msg(rc == 0, "%.80s: %s", src, e.msg);
    ck_assert_msg(strcmp(text, want) == 0, "%.80s\n got: %s\nwant: %s", src, text, want);
    free(text);
}

/* The reproducers of issue 11: 100k unary operators (one per line), else-chains, nested blocks
 * and left-deep operator chains are refused at compile time (they overflowed the stack). */
START_TEST(deep_syntax_is_refused_at_compile)
{
    static const struct {
        const char *head, *piece, *tail;
        size_t n;
    } cases[] = {
        {"{{ ", "not\n", "x }}", 100000},
        {"{{ ", "-\n", "1 }}", 100000},
        {"{{ ", "+\n", "1 }}", 100000},
        {"{{ 1 ", "if x else 1 ", "}}", 100000},
        {"", "{% if x %}", "x", 20000},
        {"", "{% for x in y %}", "", 20000},
        {"{% if x %}", "{% elif x %}", "{% endif %}", 20000},
        {"{{ 1", " + 1", " }}", 100000},
        {"{{ x", "|trim", " }}", 100000},
        {"{{ x", ".y", " }}", 100000},
        {"{{ x", "()", " }}", 100000},
        {"{{ x", " and x", " }}", 100000},
        {"{% macro m() %}{{ 1", " * 1", " }}{% endmacro %}", 100000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *src = repeat_src(cases[i].head, cases[i].piece, cases[i].n, cases[i].tail);
        struct chat_template *t = NULL;
        struct err e = {0};
        int rc = chat_template_compile(src, &t, &e);
        if (rc == 0) {
            /* before the fix this rendered (and crashed on a smaller stack): fail either way */
            chat_template_free(t);
            ck_abort_msg("case %zu (%s): compiled", i, cases[i].piece);
        }
        ck_assert_msg(rc == ERR_FORMAT, "case %zu: rc %d %s", i, rc, e.msg);
        ck_assert_msg(strstr(e.msg, "nests too deeply") != NULL, "case %zu: %s", i, e.msg);
        free(src);
    }
}
END_TEST

/* Nesting just under the limit compiles and renders, also on a thread with a small stack. */
static void *render_deep(void *arg)
{
    (void)arg;
    char *src = repeat_src("{% set ns = namespace(v=true) %}{{ ", "not ", 250, "ns.v }}");
    char *text = NULL;
    struct err e = {0};
    int rc = render_plain(src, &text, &e);
    free(src);
    if (rc != 0 || strcmp(text, "True") != 0) {
        free(text);
        return (void *)1;
    }
    free(text);
    src = repeat_src("{% macro f(n) %}{% if n > 0 %}({{ f(n - 1) }}){% endif %}{% endmacro %}", "",
                     0, "{{ f(60) }}");
    rc = render_plain(src, &text, &e);
    free(src);
    bool ok = rc == 0 && strlen(text) == 120;
    free(text);
    return ok ? NULL : (void *)2;
}

START_TEST(allowed_nesting_fits_a_small_stack)
{
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 512 * 1024);
    pthread_t th;
    void *res = (void *)-1;
    ck_assert_int_eq(pthread_create(&th, &at, render_deep, NULL), 0);
    pthread_join(th, &res);
    pthread_attr_destroy(&at);
    ck_assert_ptr_null(res);
}
END_TEST

/* A namespace that contains itself prints like Python's recursive repr ("{...}"); values
 * nested deeper than the budget are an error in print, tojson and ==. */
START_TEST(self_containing_values_print_like_python)
{
    want_text("{% set ns = namespace(x=1) %}{% set ns.x = ns %}{{ ns }}",
              "<Namespace {'x': <Namespace {...}>}>");
    want_text("{% set ns = namespace() %}{% set d = {'n': ns} %}{% set ns.d = d %}{{ d }}",
              "{'n': <Namespace {'d': {...}}>}");
    want_text("{% set ns = namespace() %}{% set l = [ns, 1] %}{% set ns.l = l %}{{ l }}|{{ ns }}",
              "[<Namespace {'l': [...]}>, 1]|<Namespace {'l': [<Namespace {...}>, 1]}>");
    want_text("{% set ns = namespace(x=1) %}{% set ns.x = ns %}{{ ns ~ '' == ns|string }}",
              "True");
    static const char deep[] = "{% set ns = namespace(x=[], y=[]) %}{% for i in range(100000) %}"
                               "{% set ns.x = [ns.x] %}{% set ns.y = [ns.y] %}{% endfor %}";
    static const char *const uses[] = {"{{ ns.x }}", "{{ ns.x|tojson }}", "{{ ns.x == ns.y }}",
                                       "{{ ns.x < ns.y }}", "{{ ns.x|string|length }}",
                                       "{{ ns.x in [ns.y] }}", "{{ {ns.x: 1}[ns.y] }}"};
    for (size_t i = 0; i < sizeof uses / sizeof uses[0]; i++) {
        char *src = repeat_src(deep, "", 0, uses[i]);
        want_error(src, ERR_TOO_LARGE, "nest");
        free(src);
    }
}
END_TEST

/* range() counts exactly with 64-bit operands (it sized its list with a double). */
START_TEST(range_is_exact_beyond_2_53)
{
    want_text("{{ range(9007199254740995, 9007199254740997)|list }}",
              "[9007199254740995, 9007199254740996]");
    want_text("{{ range(9223372036854775806, 9223372036854775807, 5)|list }}",
              "[9223372036854775806]");
    want_text("{{ range(-9223372036854775807 - 1, 9223372036854775807, "
              "4611686018427387904)|list }}",
              "[-9223372036854775808, -4611686018427387904, 0, 4611686018427387904]");
    want_text("{{ range(-9223372036854775807, -9223372036854775807 - 1, -3)|list }}",
              "[-9223372036854775807]");
    want_text("{{ range(5, 0, -2)|list }}{{ range(3, 3)|list }}{{ range(0, 10, -1)|list }}",
              "[5, 3, 1][][]");
    want_error("{{ range(0, 9223372036854775807)|length }}", ERR_TOO_LARGE, "Range too big");
}
END_TEST

/* Repeating an empty sequence N times is instant (it looped N times); a non-empty one is
 * sized exactly before it is built. */
START_TEST(repeat_is_bounded)
{
    want_text("{{ ('' * 1000000000000)|length }}{{ ([] * 1000000000000)|length }}"
              "{{ (() * 1000000000000)|length }}{{ (1000000000000 * '')|length }}",
              "0000");
    want_text("{{ [1] * -5 }}{{ 'ab' * 0 }}{{ 'ab' * 2 }}{{ (1,) * 2 }}", "[]abab(1, 1)");
    want_error("{{ 'x' * 1000000000000 }}", ERR_TOO_LARGE, "exceeded the output budget");
    want_error("{{ 'ab' * 4611686018427387904 }}", ERR_TOO_LARGE, "exceeded the output budget");
    want_error("{{ [1, 2] * 4611686018427387904 }}", ERR_TOO_LARGE, "exceeded the output budget");
    /* batch sized its chunks with count x 16 bytes, which wrapped around */
    want_error("{{ [1, 2]|batch(1152921504606846977)|list }}", ERR_TOO_LARGE,
               "exceeded the output budget");
    want_error("{{ [1]|batch(1000000000, 0)|list }}", ERR_TOO_LARGE, "exceeded the output budget");
    want_error("{{ 'a'|indent(1000000000000000000, true) }}", ERR_TOO_LARGE,
               "exceeded the output budget");
}
END_TEST

/* Renders src (no messages) compiled with budget b; fails unless the error is kind + want. */
static void want_budget_error(const char *src, const struct chat_template_budget *b, int kind,
                              const char *want)
{
    struct chat_template *t = NULL;
    struct err e = {0};
    int rc = chat_template_compile_budget(src, b, &t, &e);
    if (rc == 0) {
        char *text = NULL;
        size_t len;
        json_t *messages = json_array();
        rc = chat_template_render(t, messages, NULL, &text, &len, &e);
        json_decref(messages);
        chat_template_free(t);
        ck_assert_msg(text == NULL, "%.80s: rendered", src);
    }
    ck_assert_msg(rc == kind, "%.80s: rc %d (%s)", src, rc, e.msg);
    ck_assert_msg(strstr(e.msg, want) != NULL, "%.80s: got \"%s\", want \"%s\"", src, e.msg,
                  want);
}

/* Every loop iteration and every item a filter visits counts against the step budget (with
 * a long time budget here, so that the steps are what stops them even on a slow build). */
START_TEST(step_budget_bounds_loops_and_filters)
{
    const struct chat_template_budget slow = {.max_time_ms = 120000};
    static const char *const srcs[] = {
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "{% set l = range(100000)|list %}{% for i in range(10000) %}{% set x = l|sort %}"
        "{% endfor %}",
        "{% set l = range(100000)|list %}{% for i in range(100000) %}{% if -1 in l %}{% endif %}"
        "{% endfor %}",
        "{% set l = range(100000)|list %}{% for i in range(100000) %}{% set x = l|join %}"
        "{% endfor %}",
        "{% set l = range(100000)|list %}{% for i in range(100000) %}"
        "{% set x = l|sum + l|max %}{% endfor %}",
        "{% set a = [range(100000)|list] * 1000 %}{% set b = [range(100000)|list] * 1000 %}"
        "{{ a == b }}",
        "{% for i in range(100000) if i is odd %}{% for j in range(100000) if j is odd %}"
        "{% endfor %}{% endfor %}",
    };
    for (size_t i = 0; i < sizeof srcs / sizeof srcs[0]; i++)
        want_budget_error(srcs[i], &slow, ERR_TOO_LARGE,
                          "chat template: exceeded the step budget (10000000 steps)");
}
END_TEST

START_TEST(output_budget_bounds_the_text)
{
    want_error("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", ERR_TOO_LARGE,
               "exceeded the output budget");
    want_error("{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}"
               "{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
               ERR_TOO_LARGE, "exceeded the output budget");
    /* 1 MiB of output is fine */
    char *text = NULL;
    struct err e = {0};
    ck_assert_int_eq(render_plain("{% for i in range(1024) %}{{ 'x' * 1024 }}{% endfor %}", &text,
                                  &e),
                     0);
    ck_assert_uint_eq(strlen(text), 1 << 20);
    free(text);
}
END_TEST

/* Python's results for int64 edge cases; what Python would make a big int is an error. */
START_TEST(integer_arithmetic_is_exact)
{
    want_text("{{ (-9223372036854775807 - 1) % -1 }} {{ 7 // -2 }} {{ 7 % -2 }} {{ -7 % 2 }} "
              "{{ (-2) ** 63 }} {{ 2 ** 62 }} {{ 9223372036854775807 // -1 }}",
              "0 -4 -1 1 -9223372036854775808 4611686018427387904 -9223372036854775807");
    want_text("{{ [1,2,3][1::9223372036854775807] }}{{ 'abc'[1::9223372036854775807] }}"
              "{{ [1,2,3][::-9223372036854775807] }}{{ 'abc'[-9223372036854775807:] }}",
              "[2]b[3]abc");
    static const char *const overflows[] = {
        "{{ 9223372036854775807 + 1 }}",
        "{{ -9223372036854775807 - 2 }}",
        "{{ 3037000500 * 3037000500 }}",
        "{{ (-9223372036854775807 - 1) // -1 }}",
        "{{ 2 ** 63 }}",
        "{{ -(-9223372036854775807 - 1) }}",
        "{{ (-9223372036854775807 - 1)|abs }}",
        "{{ [9223372036854775807, 1]|sum }}",
        "{% set ns = namespace(i=9223372036854775807) %}{% set ns.i = ns.i + true %}",
    };
    for (size_t i = 0; i < sizeof overflows / sizeof overflows[0]; i++)
        want_error(overflows[i], ERR_INVALID, "integer overflow");
}
END_TEST

/* A budget given at compile time applies to every render; fields left 0 are the defaults. */
START_TEST(budget_struct_sets_the_limits)
{
    struct chat_template_budget def = chat_template_budget_default();
    ck_assert_uint_eq(def.max_depth, 256);
    ck_assert_uint_eq(def.max_value_depth, 64);
    ck_assert_uint_eq(def.max_steps, 10000000);
    ck_assert_uint_eq(def.max_output_bytes, 8 << 20);
    ck_assert_uint_eq(def.max_memory_bytes, 128 << 20);
    ck_assert_uint_eq(def.max_time_ms, 2000);
    static const struct {
        struct chat_template_budget b;
        const char *src, *want;
        int kind;
    } cases[] = {
        {{.max_steps = 1ull << 62, .max_time_ms = 50},
         "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
         "chat template: exceeded the time budget (50 ms)", ERR_TOO_LARGE},
        {{.max_steps = 1000}, "{% for i in range(2000) %}{% endfor %}",
         "chat template: exceeded the step budget (1000 steps)", ERR_TOO_LARGE},
        {{.max_output_bytes = 100}, "{% for i in range(101) %}x{% endfor %}",
         "chat template: exceeded the output budget (100 bytes)", ERR_TOO_LARGE},
        {{.max_output_bytes = 160}, "{{ (range(11)|list)|length }}",
         "chat template: exceeded the output budget (160 bytes)", ERR_TOO_LARGE},
        {{.max_value_depth = 2}, "{{ [[[1]]] }}", "a value nests too deeply (more than 2 levels)",
         ERR_TOO_LARGE},
        {{.max_depth = 8}, "{{ not not not not not not not not not x }}",
         "line 1:28: syntax error: the template nests too deeply (more than 8 levels)", ERR_FORMAT},
        {{.max_depth = 12},
         "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
         "chat template: the template nests too deeply when it runs (more than 12 levels)",
         ERR_TOO_LARGE},
        {{.max_memory_bytes = 1 << 20}, "{% for i in range(100) %}{{ 'x' * 20000 }}{% endfor %}",
         "needs more than 1 MiB of memory", ERR_TOO_LARGE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        want_budget_error(cases[i].src, &cases[i].b, cases[i].kind, cases[i].want);
}
END_TEST

/* The lexer is linear: a 1 MB one-line template compiles within the test's timeout (it
 * recounted the line for every token). */
START_TEST(lexer_is_linear_on_one_long_line)
{
    char *src = repeat_src("", "{{ x }} and some text ", 48000, ""); /* 1.06 MB, 144k tokens */
    struct chat_template *t;
    struct err e = {0};
    ck_assert_msg(chat_template_compile(src, &t, &e) == 0, "%s", e.msg);
    chat_template_free(t);
    free(src);
}
END_TEST

/* Line and column stay right with long lines, non-ASCII text and errors pointing back. */
START_TEST(lexer_positions_on_long_lines)
{
    static const struct {
        const char *head, *piece;
        size_t n;
        const char *tail, *want;
    } cases[] = {
        {"", "{{ 1 }}", 1000, " {{ @ }}", "line 1:7005: syntax error: unexpected char '@'"},
        {"", "x", 100000, "\n{{ 'é' }} {{ @ }}", "line 2:14: syntax error: unexpected char '@'"},
        {"", "é", 5000, " {{ @ }}", "line 1:5005: syntax error: unexpected char '@'"},
        {"a\n", "{{ 'é' }}", 100, "{# never closed",
         "line 2:901: syntax error: missing end of comment tag"},
        {"\n\n", "{{ 1 }}", 100, "{{ 'never closed }}",
         "line 3:704: syntax error: unterminated string"},
        {"{% if x %}\n", "{{ 1 }}", 100, "{{ 1 2 }}{% endif %}",
         "line 2:706: syntax error: expected end of print statement"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *src = repeat_src(cases[i].head, cases[i].piece, cases[i].n, cases[i].tail);
        struct chat_template *t = NULL;
        struct err e = {0};
        ck_assert_int_eq(chat_template_compile(src, &t, &e), ERR_FORMAT);
        ck_assert_msg(strstr(e.msg, cases[i].want) != NULL, "case %zu: got \"%s\", want \"%s\"",
                      i, e.msg, cases[i].want);
        free(src);
    }
}
END_TEST

Suite *suite_chat_template(void)
{
    Suite *s = suite_create("chat_template");
    TCase *tc = tcase_create("fixtures");
    tcase_add_test(tc, llama3_fixture_renders_identically);
    tcase_add_test(tc, qwen3_fixture_renders_identically);
    tcase_add_test(tc, loader_reads_special_tokens);
    tcase_add_test(tc, qwen3_tools_and_tool_calls);
    suite_add_tcase(s, tc);
    tc = tcase_create("semantics");
    tcase_add_loop_test(tc, jinja_semantics, 0, (int)(sizeof semantics / sizeof semantics[0]));
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, syntax_errors_have_line_and_column);
    tcase_add_test(tc, raise_exception_message_comes_back_as_is);
    tcase_add_test(tc, runtime_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("loading");
    tcase_add_test(tc, loader_named_templates_and_added_tokens);
    tcase_add_test(tc, loader_without_template);
    tcase_add_test(tc, threads_share_one_template);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tc = tcase_create("budgets");
    tcase_add_test(tc, deep_syntax_is_refused_at_compile);
    tcase_add_test(tc, allowed_nesting_fits_a_small_stack);
    tcase_add_test(tc, self_containing_values_print_like_python);
    tcase_add_test(tc, range_is_exact_beyond_2_53);
    tcase_add_test(tc, repeat_is_bounded);
    tcase_add_test(tc, step_budget_bounds_loops_and_filters);
    tcase_add_test(tc, output_budget_bounds_the_text);
    tcase_add_test(tc, integer_arithmetic_is_exact);
    tcase_add_test(tc, budget_struct_sets_the_limits);
    tcase_add_test(tc, lexer_is_linear_on_one_long_line);
    tcase_add_test(tc, lexer_positions_on_long_lines);
    tcase_set_timeout(tc, 20);
    suite_add_tcase(s, tc);
    return s;
}
