/* tool_grammar: see tool_grammar.h. The regex of one call is
 *   OPEN \{"name": ?"NAME", ?"ARGS": ?PARAMS\} CLOSE
 * with the separators schema_regex.c allows elsewhere (one optional space after ':' and ',');
 * "required" is OPEN (?:call_1|call_2|...) CLOSE. Exactly one call: the grammar ends the
 * sequence once it is whole (several parallel calls need tool_choice "auto"). */
#include "tool_grammar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema_regex.h"

/* s as a regex literal: every byte but letters and digits escaped (new text, NULL: no
 * memory). */
static char *re_literal(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(2 * n + 1), *p = out;
    for (size_t i = 0; out && i < n; i++) {
        char c = s[i];
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!plain)
            *p++ = '\\';
        *p++ = c == '\n' ? 'n' : c;
    }
    if (out)
        *p = '\0';
    return out;
}

/* The arguments' regex of tool i: its parameters schema as an object (a schema without
 * "type" would let the compiler make any value; the parsers want an object). A function
 * without parameters, or declaring none ("properties": {} without additionalProperties), is
 * called with {}: schema_regex.c would read the latter as a map of any keys, which a model
 * may never close. */
static int args_regex(const json_t *fn, size_t i, char **out, struct err *e)
{
    const json_t *p = json_object_get(fn, "parameters");
    /* OpenAI: "omitting parameters defines a function with an empty parameter list" */
    if (!p || json_is_null(p))
        return (*out = strdup("\\{\\}")) ? 0 : err_set(e, ERR_NOMEM, "out of memory");
    json_t *obj = json_copy((json_t *)p);
    const json_t *props = json_object_get(obj, "properties");
    bool none = json_is_object(props) && json_object_size(props) == 0 &&
                !json_object_get(obj, "additionalProperties");
    if (!obj || json_object_set_new(obj, "type", json_string("object")) != 0 ||
        (none && json_object_set_new(obj, "additionalProperties", json_false()) != 0)) {
        json_decref(obj);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    int rc = schema_to_regex(obj, out, e);
    json_decref(obj);
    if (rc == ERR_INVALID) {
        err_prefix(e, "tools[%zu].function.parameters: ", i);
        e->kind = ERR_GEN_SCHEMA;
        return ERR_GEN_SCHEMA;
    }
    return rc;
}

/* The regex of a call to tool i (new text in *out). */
static int call_regex(const struct tool_req *r, size_t i, char **out, struct err *e)
{
    const json_t *fn = json_object_get(json_array_get(r->tools, i), "function");
    char *args = NULL, *name = re_literal(json_string_value(json_object_get(fn, "name")));
    char *key = re_literal(r->parser->args_key);
    int rc = name && key ? args_regex(fn, i, &args, e) : err_set(e, ERR_NOMEM, "out of memory");
    if (rc == 0 && asprintf(out, "\\{\"name\": ?\"%s\", ?\"%s\": ?%s\\}", name, key, args) < 0) {
        *out = NULL;
        rc = err_set(e, ERR_NOMEM, "out of memory");
    }
    free(args);
    free(name);
    free(key);
    return rc;
}

/* Appends "|" (when not first) and part to *buf. */
static int append(char **buf, size_t *len, const char *part, bool first)
{
    size_t n = strlen(part);
    char *b = realloc(*buf, *len + n + 2);
    if (!b)
        return ERR_NOMEM;
    *buf = b;
    if (!first)
        b[(*len)++] = '|';
    memcpy(b + *len, part, n + 1);
    *len += n;
    return 0;
}

/* The alternatives: every tool (required) or the named one. */
static int calls_regex(const struct tool_req *r, char **out, size_t *len, struct err *e)
{
    *out = NULL;
    *len = 0;
    bool first = true;
    for (size_t i = 0; i < json_array_size(r->tools); i++) {
        const json_t *fn = json_object_get(json_array_get(r->tools, i), "function");
        if (r->choice == TOOL_CHOICE_NAMED &&
            strcmp(json_string_value(json_object_get(fn, "name")), r->name) != 0)
            continue;
        char *one = NULL;
        int rc = call_regex(r, i, &one, e);
        if (rc == 0 && append(out, len, one, first) != 0)
            rc = err_set(e, ERR_NOMEM, "out of memory");
        free(one);
        if (rc)
            return rc;
        first = false;
    }
    return 0;
}

int tool_grammar(const struct tool_req *r, struct grammar **out, struct err *e)
{
    *out = NULL;
    char *calls = NULL, *re = NULL;
    size_t n = 0;
    int rc = calls_regex(r, &calls, &n, e);
    if (rc == 0 && asprintf(&re, "%s(?:%s)%s", r->parser->force_open, calls ? calls : "",
                            r->parser->force_close) < 0) {
        re = NULL;
        rc = err_set(e, ERR_NOMEM, "out of memory");
    }
    if (rc == 0)
        rc = constraint_regex(re, strlen(re), out, e);
    free(re);
    free(calls);
    return rc;
}
