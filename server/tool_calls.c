/* tool_calls: OpenAI tool calling on /v1/chat/completions (tool_calls.h): the request's tools,
 * tool_choice and tool messages checked and shaped for the chat template, and the answer's
 * tool_calls, whole or streamed. Messages follow OpenAI's and vLLM's. */
#include "tool_calls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How deep a tool's parameters schema may nest (each level a C call). */
#define SCHEMA_MAX_DEPTH 32
/* OpenAI: a function name is 1-64 of a-z A-Z 0-9 _ - */
#define TOOL_NAME_MAX 64

/* ---- the tools' definitions ---- */

static const char *const schema_types[] = {"object", "array",   "string", "number",
                                           "integer", "boolean", "null"};

static bool is_schema_type(const json_t *v)
{
    const char *t = json_string_value(v);
    for (size_t i = 0; t && i < sizeof schema_types / sizeof schema_types[0]; i++)
        if (strcmp(t, schema_types[i]) == 0)
            return true;
    return false;
}

static int check_schema(const json_t *s, const char *path, unsigned depth, struct err *e);

/* Each value of an object of schemas (properties, $defs). */
static int check_schema_map(const json_t *v, const char *path, const char *key, unsigned depth,
                            struct err *e)
{
    if (!json_is_object(v))
        return err_set(e, ERR_INVALID, "%s: `%s` must be an object of schemas", path, key);
    const char *k;
    const json_t *sub;
    json_object_foreach ((json_t *)v, k, sub) {
        char p[240];
        snprintf(p, sizeof p, "%s.%s.%s", path, key, k);
        if (check_schema(sub, p, depth + 1, e) != 0)
            return ERR_INVALID;
    }
    return 0;
}

/* A non-empty list of schemas (anyOf, oneOf, allOf, prefixItems). */
static int check_schema_list(const json_t *v, const char *path, const char *key, unsigned depth,
                             struct err *e)
{
    if (!json_is_array(v) || json_array_size(v) == 0)
        return err_set(e, ERR_INVALID, "%s: `%s` must be a non-empty list of schemas", path, key);
    for (size_t i = 0; i < json_array_size(v); i++) {
        char p[240];
        snprintf(p, sizeof p, "%s.%s[%zu]", path, key, i);
        if (check_schema(json_array_get(v, i), p, depth + 1, e) != 0)
            return ERR_INVALID;
    }
    return 0;
}

static int check_type(const json_t *t, const char *path, struct err *e)
{
    bool ok = is_schema_type(t);
    if (json_is_array(t)) {
        ok = json_array_size(t) > 0;
        for (size_t i = 0; ok && i < json_array_size(t); i++)
            ok = is_schema_type(json_array_get(t, i));
    }
    if (ok)
        return 0;
    return err_set(e, ERR_INVALID,
                   "%s: `type` must be one of \"object\", \"array\", \"string\", \"number\", "
                   "\"integer\", \"boolean\", \"null\" (or a list of them)",
                   path);
}

/* The keywords whose values have a shape JSON Schema fixes; others are free. */
static int check_schema_keys(const json_t *s, const char *path, unsigned depth, struct err *e)
{
    static const char *const maps[] = {"properties", "$defs", "definitions", "patternProperties"};
    static const char *const lists[] = {"anyOf", "oneOf", "allOf", "prefixItems"};
    static const char *const subs[] = {"additionalProperties", "not", "contains",
                                       "propertyNames"};
    static const char *const strings[] = {"description", "title", "pattern", "format", "$ref"};
    const json_t *v;
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++)
        if ((v = json_object_get(s, maps[i])) && check_schema_map(v, path, maps[i], depth, e))
            return ERR_INVALID;
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        if ((v = json_object_get(s, lists[i])) && check_schema_list(v, path, lists[i], depth, e))
            return ERR_INVALID;
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        char p[240];
        snprintf(p, sizeof p, "%s.%s", path, subs[i]);
        if ((v = json_object_get(s, subs[i])) && check_schema(v, p, depth + 1, e))
            return ERR_INVALID;
    }
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
        if ((v = json_object_get(s, strings[i])) && !json_is_string(v))
            return err_set(e, ERR_INVALID, "%s: `%s` must be a string", path, strings[i]);
    if ((v = json_object_get(s, "type")) && check_type(v, path, e))
        return ERR_INVALID;
    if ((v = json_object_get(s, "enum")) && !json_is_array(v))
        return err_set(e, ERR_INVALID, "%s: `enum` must be a list", path);
    if ((v = json_object_get(s, "required"))) {
        bool ok = json_is_array(v);
        for (size_t i = 0; ok && i < json_array_size(v); i++)
            ok = json_is_string(json_array_get(v, i));
        if (!ok)
            return err_set(e, ERR_INVALID, "%s: `required` must be a list of property names",
                           path);
    }
    if ((v = json_object_get(s, "items"))) {
        char p[240];
        snprintf(p, sizeof p, "%s.items", path);
        return json_is_array(v) ? check_schema_list(v, path, "items", depth, e)
                                : check_schema(v, p, depth + 1, e);
    }
    return 0;
}

/* A JSON Schema: an object (true and false are schemas too below the top). */
static int check_schema(const json_t *s, const char *path, unsigned depth, struct err *e)
{
    if (depth > SCHEMA_MAX_DEPTH)
        return err_set(e, ERR_INVALID, "%s: the schema nests more than %d levels deep", path,
                       SCHEMA_MAX_DEPTH);
    if (json_is_boolean(s))
        return 0;
    if (!json_is_object(s))
        return err_set(e, ERR_INVALID, "%s must be a JSON Schema (an object)", path);
    return check_schema_keys(s, path, depth, e);
}

/* tools[i].function.parameters: a JSON Schema object of "type": "object" (OpenAI's rule). */
static int check_parameters(const json_t *p, size_t i, struct err *e)
{
    char path[64];
    snprintf(path, sizeof path, "tools[%zu].function.parameters", i);
    if (!json_is_object(p))
        return err_set(e, ERR_INVALID, "%s must be a JSON Schema object, not %s", path,
                       json_is_string(p) ? "a string" : "another JSON value");
    const json_t *type = json_object_get(p, "type");
    if (type && !(json_is_string(type) && strcmp(json_string_value(type), "object") == 0))
        return err_set(e, ERR_INVALID,
                       "%s must be a JSON Schema of \"type\": \"object\" (the function's named "
                       "arguments)",
                       path);
    return check_schema(p, path, 0, e);
}

static bool valid_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > TOOL_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

/* tools[i]: {"type": "function", "function": {"name", "description"?, "parameters"?}}. */
static int check_tool(const json_t *tools, size_t i, struct err *e)
{
    const json_t *t = json_array_get(tools, i);
    const char *type = json_string_value(json_object_get(t, "type"));
    const json_t *f = json_object_get(t, "function");
    if (!json_is_object(t) || !type || strcmp(type, "function") != 0 || !json_is_object(f))
        return err_set(e, ERR_INVALID,
                       "tools[%zu] must be {\"type\": \"function\", \"function\": {\"name\", "
                       "\"description\", \"parameters\"}}: only function tools are supported",
                       i);
    const char *name = json_string_value(json_object_get(f, "name"));
    if (!valid_name(name))
        return err_set(e, ERR_INVALID,
                       "tools[%zu].function.name must be 1 to 64 letters, digits, underscores "
                       "or dashes",
                       i);
    for (size_t k = 0; k < i; k++) {
        const json_t *other = json_object_get(json_array_get(tools, k), "function");
        if (strcmp(json_string_value(json_object_get(other, "name")), name) == 0)
            return err_set(e, ERR_INVALID, "tools[%zu]: a function named '%s' is defined twice",
                           i, name);
    }
    const json_t *d = json_object_get(f, "description");
    if (d && !json_is_null(d) && !json_is_string(d))
        return err_set(e, ERR_INVALID, "tools[%zu].function.description must be a string", i);
    const json_t *p = json_object_get(f, "parameters");
    return p && !json_is_null(p) ? check_parameters(p, i, e) : 0;
}

/* Whether tools defines a function called name. */
static bool defines(const json_t *tools, const char *name)
{
    for (size_t i = 0; i < json_array_size(tools); i++) {
        const json_t *f = json_object_get(json_array_get(tools, i), "function");
        if (strcmp(json_string_value(json_object_get(f, "name")), name) == 0)
            return true;
    }
    return false;
}

/* ---- tool_choice ---- */

static int read_choice(const json_t *c, struct tool_req *r, struct err *e)
{
    static const char *const names[] = {
        [TOOL_CHOICE_NONE] = "none", [TOOL_CHOICE_AUTO] = "auto",
        [TOOL_CHOICE_REQUIRED] = "required"};
    r->choice = r->tools ? TOOL_CHOICE_AUTO : TOOL_CHOICE_NONE;
    if (!c || json_is_null(c))
        return 0;
    for (size_t i = 0; json_is_string(c) && i < sizeof names / sizeof names[0]; i++)
        if (strcmp(json_string_value(c), names[i]) == 0) {
            r->choice = (enum tool_choice)i;
            if (r->choice == TOOL_CHOICE_REQUIRED && !r->tools)
                return err_set(e, ERR_GEN_INVALID,
                               "`tool_choice` \"required\" needs `tools` to be set");
            return 0;
        }
    const char *type = json_string_value(json_object_get(c, "type"));
    const char *name = json_string_value(json_object_get(json_object_get(c, "function"), "name"));
    if (!json_is_object(c) || !type || strcmp(type, "function") != 0 || !name)
        return err_set(e, ERR_GEN_INVALID,
                       "`tool_choice` must be \"none\", \"auto\", \"required\" or {\"type\": "
                       "\"function\", \"function\": {\"name\": ...}}");
    if (!r->tools || !defines(r->tools, name))
        return err_set(e, ERR_GEN_INVALID,
                       "`tool_choice` names the function '%.64s', which `tools` does not define",
                       name);
    r->choice = TOOL_CHOICE_NAMED;
    snprintf(r->name, sizeof r->name, "%s", name);
    return 0;
}

int tool_req_read(const json_t *body, struct tool_req *r, const char **param, struct err *e)
{
    memset(r, 0, sizeof *r);
    const json_t *tools = json_object_get(body, "tools");
    if (tools && !json_is_null(tools)) {
        *param = "tools";
        if (!json_is_array(tools) || json_array_size(tools) == 0)
            return err_set(e, ERR_INVALID, "`tools` must be a non-empty list of tools");
        for (size_t i = 0; i < json_array_size(tools); i++)
            if (check_tool(tools, i, e) != 0)
                return ERR_INVALID;
        r->tools = json_incref((json_t *)tools);
    }
    *param = "tool_choice";
    if (read_choice(json_object_get(body, "tool_choice"), r, e) != 0)
        return ERR_GEN_INVALID;
    *param = NULL;
    return 0;
}

void tool_req_fini(struct tool_req *r)
{
    json_decref(r->tools);
    memset(r, 0, sizeof *r);
}

/* ---- the messages ---- */

/* messages[i].tool_calls[k] checked; its arguments decoded in the copy. */
static int shape_call(json_t *call, size_t i, size_t k, struct err *e)
{
    json_t *f = json_object_get(call, "function");
    const char *type = json_string_value(json_object_get(call, "type"));
    const json_t *args = json_object_get(f, "arguments");
    if (!json_is_object(call) || !json_is_string(json_object_get(call, "id")) ||
        (type && strcmp(type, "function") != 0) || !json_is_object(f) ||
        !json_is_string(json_object_get(f, "name")) || !json_is_string(args))
        return err_set(e, ERR_GEN_INVALID,
                       "messages[%zu].tool_calls[%zu] must be {\"id\", \"type\": \"function\", "
                       "\"function\": {\"name\", \"arguments\": a JSON string}}",
                       i, k);
    json_error_t je;
    json_t *v = json_loadb(json_string_value(args), json_string_length(args), JSON_DECODE_ANY,
                           &je);
    if (!json_is_object(v)) {
        json_decref(v);
        return err_set(e, ERR_GEN_INVALID,
                       "messages[%zu].tool_calls[%zu].function.arguments must be a JSON object "
                       "in a string",
                       i, k);
    }
    json_object_set_new(f, "arguments", v); /* the object, as vLLM hands templates */
    return 0;
}

static int tool_message(const json_t *m, size_t i, json_t *copy, struct err *e)
{
    const char *role = json_string_value(json_object_get(m, "role"));
    json_t *calls = json_object_get(copy, "tool_calls");
    if (strcmp(role, "tool") == 0 && !json_is_string(json_object_get(m, "tool_call_id")))
        return err_set(e, ERR_GEN_INVALID,
                       "messages[%zu]: a `tool` message needs the `tool_call_id` it answers", i);
    if (!calls || json_is_null(calls)) {
        json_object_del(copy, "tool_calls");
        return 0;
    }
    if (strcmp(role, "assistant") != 0 || !json_is_array(calls))
        return err_set(e, ERR_GEN_INVALID,
                       "messages[%zu]: `tool_calls` must be a list, on an assistant message", i);
    for (size_t k = 0; k < json_array_size(calls); k++)
        if (shape_call(json_array_get(calls, k), i, k, e) != 0)
            return ERR_GEN_INVALID;
    return 0;
}

/* ---- the conversation ---- */

/* Content as a string: text parts joined by newlines; none or null is "" (vLLM: an assistant
 * message with only tool_calls reaches the template with content "", which Qwen3's template
 * needs). NULL when invalid. */
static json_t *message_content(const json_t *content, const char **why)
{
    if (!content || json_is_null(content))
        return json_string("");
    if (json_is_string(content))
        return json_incref((json_t *)content);
    if (!json_is_array(content)) {
        *why = "`content` must be a string or a list of content parts";
        return NULL;
    }
    size_t total = 0;
    for (size_t i = 0; i < json_array_size(content); i++) {
        const json_t *part = json_array_get(content, i);
        const char *type = json_string_value(json_object_get(part, "type"));
        const json_t *text = json_object_get(part, "text");
        if (!type || strcmp(type, "text") != 0 || !json_is_string(text)) {
            *why = "only text content parts ({\"type\": \"text\", \"text\": ...}) are supported";
            return NULL;
        }
        total += json_string_length(text) + 1;
    }
    char *s = malloc(total + 1), *p = s;
    if (!s)
        return NULL;
    for (size_t i = 0; i < json_array_size(content); i++) {
        const json_t *text = json_object_get(json_array_get(content, i), "text");
        if (i)
            *p++ = '\n';
        memcpy(p, json_string_value(text), json_string_length(text));
        p += json_string_length(text);
    }
    json_t *v = json_stringn(s, (size_t)(p - s));
    free(s);
    return v;
}

/* The request's messages checked and shaped (tool_calls.h). */
json_t *tool_messages(const json_t *messages, struct err *e)
{
    if (!json_is_array(messages) || json_array_size(messages) == 0) {
        err_set(e, ERR_GEN_INVALID, "%s",
                messages ? "`messages` must be a non-empty list of messages"
                         : "`messages` is required");
        return NULL;
    }
    json_t *out = json_array();
    for (size_t i = 0; out && i < json_array_size(messages); i++) {
        const json_t *m = json_array_get(messages, i);
        const char *why = NULL;
        json_t *content = NULL;
        if (!json_is_object(m))
            why = "each message must be an object with `role` and `content`";
        else if (!json_is_string(json_object_get(m, "role")))
            why = "each message needs a `role` string";
        else
            content = message_content(json_object_get(m, "content"), &why);
        json_t *copy = content ? json_deep_copy(m) : NULL;
        if (!copy) {
            json_decref(content);
            err_set(e, why ? ERR_GEN_INVALID : ERR_NOMEM, "messages[%zu]: %s", i,
                    why ? why : "out of memory");
            json_decref(out);
            return NULL;
        }
        json_object_set_new(copy, "content", content);
        json_array_append_new(out, copy);
        if (tool_message(m, i, copy, e) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    if (!out)
        err_set(e, ERR_NOMEM, "out of memory");
    return out;
}

/* ---- the answer ---- */

/* Whether the calls (NULL: none) are what tool_choice asked for; e set when not. */
static bool choice_met(const struct tool_req *r, const struct tool_parse *p, struct err *e)
{
    if (r->choice == TOOL_CHOICE_REQUIRED && !p) {
        err_set(e, ERR_GEN_FAILED,
                "`tool_choice` is \"required\" but the model answered without a tool call");
        return false;
    }
    if (r->choice != TOOL_CHOICE_NAMED)
        return true;
    bool ok = p && p->n_calls > 0;
    for (size_t i = 0; ok && i < p->n_calls; i++)
        ok = strcmp(p->calls[i].name, r->name) == 0;
    if (!ok)
        err_set(e, ERR_GEN_FAILED,
                "`tool_choice` names the function '%s' but the model answered without calling "
                "it",
                r->name);
    return ok;
}

static json_t *calls_json(const struct tool_req *r, const struct tool_parse *p)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < p->n_calls; i++) {
        char id[48];
        tool_call_id(r->parser, id, sizeof id);
        json_array_append_new(a, json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", id, "type",
                                           "function", "function", "name", p->calls[i].name,
                                           "arguments", p->calls[i].arguments));
    }
    return a;
}

json_t *tool_answer(const struct tool_req *r, const char *text, size_t len, bool *called,
                    struct err *e)
{
    struct tool_parse p;
    *called = r->parser && tool_parse_text(r->parser, text, len, &p);
    if (!choice_met(r, *called ? &p : NULL, e)) {
        if (*called)
            tool_parse_fini(&p);
        return NULL;
    }
    if (!*called)
        return json_pack("{s:s, s:s%}", "role", "assistant", "content", text, len);
    json_t *msg = json_pack("{s:s, s:o, s:o}", "role", "assistant", "content",
                            p.content ? json_stringn(p.content, p.content_len) : json_null(),
                            "tool_calls", calls_json(r, &p));
    tool_parse_fini(&p);
    if (!msg)
        err_set(e, ERR_NOMEM, "out of memory");
    return msg;
}

/* ---- streaming ---- */

static bool only_space(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return false;
    return true;
}

/* The first occurrence of word in s[from..len), or len. */
static size_t find_from(const char *s, size_t len, size_t from, const char *word)
{
    size_t n = strlen(word);
    for (size_t i = from; i + n <= len; i++)
        if (memcmp(s + i, word, n) == 0)
            return i;
    return len;
}

static void append_content(json_t *deltas, const char *text, size_t n)
{
    json_array_append_new(deltas, json_pack("{s:s%}", "content", text, n));
}

/* The stream's deltas of call i: the first with its id, type and name, then its arguments. */
static void append_call_deltas(json_t *deltas, const struct tool_req *r, const struct tool_call *c,
                               size_t i)
{
    char id[48];
    tool_call_id(r->parser, id, sizeof id);
    json_array_append_new(deltas, json_pack("{s:[{s:I, s:s, s:s, s:{s:s, s:s}}]}", "tool_calls",
                                            "index", (json_int_t)i, "id", id, "type", "function",
                                            "function", "name", c->name, "arguments", ""));
    json_array_append_new(deltas,
                          json_pack("{s:[{s:I, s:{s:s}}]}", "tool_calls", "index", (json_int_t)i,
                                    "function", "arguments", c->arguments));
}

static int stream_append(struct tool_stream *s, const char *delta, size_t len)
{
    if (s->len + len + 1 > s->cap) {
        size_t cap = (s->len + len + 1) * 2;
        char *b = realloc(s->buf, cap);
        if (!b)
            return ERR_NOMEM;
        s->buf = b;
        s->cap = cap;
    }
    if (len)
        memcpy(s->buf + s->len, delta, len);
    s->len += len;
    s->buf[s->len] = '\0';
    return 0;
}

/* The calls closed since the last ones sent, each read and sent; a call that does not read
 * stops it (the end reads what is left). */
static void stream_closed_calls(const struct tool_req *r, struct tool_stream *s, json_t *deltas)
{
    for (;;) {
        size_t close = find_from(s->buf, s->len, s->sent, r->parser->close);
        if (close == s->len)
            return;
        size_t end = close + strlen(r->parser->close);
        struct tool_parse p = {0};
        if (r->parser->calls(s->buf + s->sent, end - s->sent, &p) != 0) {
            tool_parse_fini(&p);
            return;
        }
        for (size_t i = 0; i < p.n_calls; i++)
            append_call_deltas(deltas, r, &p.calls[i], s->n_calls++);
        tool_parse_fini(&p);
        s->sent = end;
    }
}

json_t *tool_stream_push(const struct tool_req *r, struct tool_stream *s, const char *delta,
                         size_t len)
{
    if (stream_append(s, delta, len) != 0)
        return NULL;
    json_t *deltas = json_array();
    if (!deltas || r->choice == TOOL_CHOICE_REQUIRED || r->choice == TOOL_CHOICE_NAMED)
        return deltas; /* the whole text must be the calls: nothing goes out before the end */
    if (!s->in_calls) {
        size_t held = 0, at = r->parser->start(s->buf, s->len, s->sent, &held);
        size_t upto = at < s->len ? at : s->len - held;
        /* whitespace alone before the calls is no content (as tool_answer reads it) */
        bool skip = at < s->len && s->sent == 0 && only_space(s->buf, at);
        if (upto > s->sent && !skip)
            append_content(deltas, s->buf + s->sent, upto - s->sent);
        s->sent = upto > s->sent ? upto : s->sent;
        s->in_calls = at < s->len;
    }
    if (s->in_calls && r->parser->close)
        stream_closed_calls(r, s, deltas);
    return deltas;
}

json_t *tool_stream_end(const struct tool_req *r, struct tool_stream *s, bool *called,
                        struct err *e)
{
    const char *rest = (s->buf ? s->buf : "") + s->sent;
    size_t n = s->len - s->sent;
    struct tool_parse p;
    bool ok = tool_parse_text(r->parser, rest, n, &p);
    /* required / named: nothing was sent, rest is the whole text */
    if (s->n_calls == 0 && !choice_met(r, ok ? &p : NULL, e)) {
        if (ok)
            tool_parse_fini(&p);
        return NULL;
    }
    json_t *deltas = json_array();
    if (!deltas) {
        if (ok)
            tool_parse_fini(&p);
        err_set(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (ok && p.content)
        append_content(deltas, p.content, p.content_len);
    else if (!ok && n > 0 && !(s->n_calls > 0 && only_space(rest, n)))
        append_content(deltas, rest, n); /* no call, or a malformed one: all of it is content */
    for (size_t i = 0; ok && i < p.n_calls; i++)
        append_call_deltas(deltas, r, &p.calls[i], s->n_calls++);
    *called = s->n_calls > 0;
    s->sent = s->len;
    if (ok)
        tool_parse_fini(&p);
    return deltas;
}

void tool_stream_fini(struct tool_stream *s)
{
    free(s->buf);
    memset(s, 0, sizeof *s);
}
