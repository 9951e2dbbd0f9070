/* tool_parse: the tool-call parsers (tool_parse.h): parsers[] holds one row per family of chat
 * templates; a new family is a start and a calls function and a row. */
#include "tool_parse.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define HERMES_OPEN "<tool_call>"
#define HERMES_CLOSE "</tool_call>"
#define PYTHON_TAG "<|python_tag|>"
#define MISTRAL_MARK "[TOOL_CALLS]"

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_space(const char *s, size_t i, size_t len)
{
    while (i < len && is_space(s[i]))
        i++;
    return i;
}

/* Whether s[i..len) starts with word. */
static bool starts(const char *s, size_t i, size_t len, const char *word)
{
    size_t n = strlen(word);
    return len - i >= n && memcmp(s + i, word, n) == 0;
}

/* The longest end of s[0..len) that is a proper prefix of word (streaming holds it back). */
static size_t partial_suffix(const char *s, size_t len, const char *word)
{
    size_t n = strlen(word);
    for (size_t k = n - 1 < len ? n - 1 : len; k > 0; k--)
        if (memcmp(s + len - k, word, k) == 0)
            return k;
    return 0;
}

/* The first occurrence of word in s[0..len), or len. */
static size_t find(const char *s, size_t len, size_t from, const char *word)
{
    size_t n = strlen(word);
    for (size_t i = from; i + n <= len; i++)
        if (memcmp(s + i, word, n) == 0)
            return i;
    return len;
}

/* ---- one call: {"name": "...", "arguments" (or args_alt): {...}} ---- */

static int add_call(struct tool_parse *out, const json_t *obj, const char *args_alt)
{
    const char *name = json_string_value(json_object_get(obj, "name"));
    const json_t *args = json_object_get(obj, "arguments");
    if (!args && args_alt)
        args = json_object_get(obj, args_alt);
    if (!json_is_object(obj) || !name || !name[0] || (args && !json_is_object(args)))
        return -1;
    json_t *empty = args ? NULL : json_object();
    /* json.dumps(arguments, ensure_ascii=False): ", " and ": " between items, UTF-8 kept */
    char *text = json_dumps(args ? args : empty, JSON_ENCODE_ANY);
    json_decref(empty);
    struct tool_call *calls = realloc(out->calls, (out->n_calls + 1) * sizeof *calls);
    char *n = strdup(name);
    if (calls)
        out->calls = calls;
    if (!calls || !n || !text) {
        free(n);
        free(text);
        return -1;
    }
    calls[out->n_calls++] = (struct tool_call){.name = n, .arguments = text};
    return 0;
}

/* One JSON value at s[*i..len) (what follows it is left), as a new reference; NULL when
 * there is none. */
static json_t *json_at(const char *s, size_t *i, size_t len)
{
    json_error_t je;
    json_t *v = json_loadb(s + *i, len - *i, JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &je);
    if (v)
        *i += (size_t)je.position;
    return v;
}

/* ---- hermes ---- */

static size_t hermes_start(const char *text, size_t len, size_t from, size_t *held)
{
    size_t at = find(text, len, from, HERMES_OPEN);
    *held = at < len ? 0 : partial_suffix(text, len, HERMES_OPEN);
    return at;
}

/* <tool_call> JSON </tool_call>, repeated with whitespace between; the last one may be left
 * open (the model stopped at its end-of-turn token instead). */
static int hermes_calls(const char *s, size_t len, struct tool_parse *out)
{
    size_t i = 0;
    while ((i = skip_space(s, i, len)) < len) {
        if (!starts(s, i, len, HERMES_OPEN))
            return -1;
        i += strlen(HERMES_OPEN);
        size_t close = find(s, len, i, HERMES_CLOSE);
        json_t *obj = json_at(s, &i, close);
        int rc = obj && skip_space(s, i, close) == close ? add_call(out, obj, NULL) : -1;
        json_decref(obj);
        if (rc)
            return -1;
        i = close < len ? close + strlen(HERMES_CLOSE) : len;
    }
    return out->n_calls ? 0 : -1;
}

/* ---- llama3_json ---- */

/* The message itself is the call: it starts (after whitespace) with { or <|python_tag|>. */
static size_t llama3_start(const char *text, size_t len, size_t from, size_t *held)
{
    (void)from; /* the message itself is the call: only its beginning tells */
    size_t i = skip_space(text, 0, len);
    *held = 0;
    if (i < len && (text[i] == '{' || starts(text, i, len, PYTHON_TAG)))
        return i;
    if (i == len || (len - i < strlen(PYTHON_TAG) && memcmp(text + i, PYTHON_TAG, len - i) == 0))
        *held = len; /* nothing but whitespace, or the tag's beginning, so far */
    return len;
}

static int llama3_calls(const char *s, size_t len, struct tool_parse *out)
{
    size_t i = 0;
    if (starts(s, 0, len, PYTHON_TAG))
        i = strlen(PYTHON_TAG);
    for (;;) {
        i = skip_space(s, i, len);
        json_t *obj = json_at(s, &i, len);
        int rc = obj ? add_call(out, obj, "parameters") : -1;
        json_decref(obj);
        if (rc)
            return -1;
        i = skip_space(s, i, len);
        if (i == len)
            return 0;
        if (s[i] != ';')
            return -1;
        i++;
    }
}

/* ---- mistral ---- */

static size_t mistral_start(const char *text, size_t len, size_t from, size_t *held)
{
    size_t at = find(text, len, from, MISTRAL_MARK);
    size_t i = skip_space(text, 0, len);
    *held = 0;
    if (at < len)
        return at;
    size_t j = i < len ? skip_space(text, i + 1, len) : len; /* after a "[" */
    if (i < len && text[i] == '[' && j < len && text[j] == '{')
        return i; /* the special token skipped: the message is the list itself */
    if (i == len || (text[i] == '[' && j == len)) /* "", "  [" */
        *held = len;
    else
        *held = partial_suffix(text, len, MISTRAL_MARK);
    return len;
}

static int mistral_calls(const char *s, size_t len, struct tool_parse *out)
{
    size_t i = 0;
    while ((i = skip_space(s, i, len)) < len) {
        if (starts(s, i, len, MISTRAL_MARK))
            i += strlen(MISTRAL_MARK);
        json_t *list = json_at(s, &i, len);
        int rc = json_is_array(list) && json_array_size(list) > 0 ? 0 : -1;
        for (size_t k = 0; rc == 0 && k < json_array_size(list); k++)
            rc = add_call(out, json_array_get(list, k), NULL);
        json_decref(list);
        if (rc)
            return -1;
    }
    return out->n_calls ? 0 : -1;
}

/* ---- the table ---- */

static const struct tool_parser parsers[] = {
    {"hermes", HERMES_OPEN, HERMES_CLOSE, "<tool_call>\\n?", "\\n?</tool_call>", "arguments", 0,
     hermes_start, hermes_calls},
    {"mistral", MISTRAL_MARK, NULL, "\\[", "\\]", "arguments", 9, mistral_start,
     mistral_calls},
    {"llama3_json", PYTHON_TAG, NULL, "", "", "parameters", 0, llama3_start, llama3_calls},
};

#define N_PARSERS (sizeof parsers / sizeof parsers[0])

const struct tool_parser *tool_parser_by_name(const char *name)
{
    for (size_t i = 0; name && i < N_PARSERS; i++)
        if (strcmp(parsers[i].name, name) == 0)
            return &parsers[i];
    return NULL;
}

const struct tool_parser *tool_parser_guess(bool (*mentions)(const void *ctx, const char *marker),
                                            const void *ctx)
{
    for (size_t i = 0; i < N_PARSERS; i++)
        if (mentions(ctx, parsers[i].template_marker))
            return &parsers[i];
    return NULL;
}

void tool_parse_fini(struct tool_parse *t)
{
    for (size_t i = 0; i < t->n_calls; i++) {
        free(t->calls[i].name);
        free(t->calls[i].arguments);
    }
    free(t->calls);
    free(t->content);
    memset(t, 0, sizeof *t);
}

bool tool_parse_text(const struct tool_parser *p, const char *text, size_t len,
                     struct tool_parse *out)
{
    memset(out, 0, sizeof *out);
    size_t held;
    size_t at = p->start(text, len, 0, &held);
    if (at >= len || p->calls(text + at, len - at, out) != 0) {
        tool_parse_fini(out);
        return false;
    }
    if (skip_space(text, 0, at) < at) { /* content before the calls */
        out->content = malloc(at + 1);
        if (!out->content) {
            tool_parse_fini(out);
            return false;
        }
        memcpy(out->content, text, at);
        out->content[at] = '\0';
        out->content_len = at;
    }
    return true;
}

void tool_call_id(const struct tool_parser *p, char *buf, size_t size)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t n = p && p->id_len ? p->id_len : 24, at = p && p->id_len ? 0 : 5;
    unsigned char r[32];
    if (n + at + 1 > size || n > sizeof r)
        n = size > at + 1 ? size - at - 1 : 0;
    if (getrandom(r, n, 0) != (ssize_t)n) { /* no entropy source: the clock, still unique-ish */
        uint64_t x = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)buf;
        for (size_t i = 0; i < n; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            r[i] = (unsigned char)(x >> 56);
        }
    }
    if (at)
        memcpy(buf, "call_", at);
    for (size_t i = 0; i < n; i++)
        buf[at + i] = alnum[r[i] % (sizeof alnum - 1)];
    buf[at + n] = '\0';
}
