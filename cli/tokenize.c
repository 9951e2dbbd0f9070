/* tokenize: `inferd tokenize` and `inferd detokenize` over JSON lines.
 * Every input line gets exactly one output line; a bad line gets
 * {"error": ..., "error_type": ...} and makes the exit status 1 at the end.
 * Optional per-line fields for tokenize: "max_length", "stride",
 * "truncation" ("longest_first" | "only_first" | "only_second"), "padding"
 * ("max_length" | "longest"); with overflow the extra windows come in
 * "overflowing": [{...}, ...]. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tokenizer/tokenizer.h"

struct opts {
    const char *dir;
    bool no_special;
    bool pair;
    bool keep_special;
};

static int parse_opts(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--tokenizer") == 0 && i + 1 < argc)
            o->dir = argv[++i];
        else if (strcmp(argv[i], "--no-special") == 0)
            o->no_special = true;
        else if (strcmp(argv[i], "--pair") == 0)
            o->pair = true;
        else if (strcmp(argv[i], "--keep-special") == 0)
            o->keep_special = true;
        else {
            fprintf(stderr, "inferd %s: unknown option '%s'\n", argv[0], argv[i]);
            return -1;
        }
    }
    if (!o->dir) {
        fprintf(stderr, "inferd %s: --tokenizer DIR is required\n", argv[0]);
        return -1;
    }
    return 0;
}

static json_t *encoding_json(const struct encoding *enc)
{
    json_t *ids = json_array(), *toks = json_array(), *offs = json_array(), *types = json_array(),
           *mask = json_array(), *special = json_array();
    for (size_t i = 0; i < enc->n; i++) {
        json_array_append_new(ids, json_integer(enc->ids[i]));
        json_array_append_new(toks, json_string(encoding_token(enc, i)));
        json_array_append_new(
            offs, json_pack("[i,i]", (int)enc->offsets[i].start, (int)enc->offsets[i].end));
        json_array_append_new(types, json_integer(enc->type_ids[i]));
        json_array_append_new(mask, json_integer(enc->attention[i]));
        json_array_append_new(special, json_integer(enc->special[i]));
    }
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "ids", ids, "tokens", toks, "offsets", offs,
                     "type_ids", types, "attention_mask", mask, "special_tokens_mask", special);
}

/* Applies the optional truncation/padding fields of a request line. */
static int line_params(const json_t *req, struct tokenizer_params *p, const char **why)
{
    const json_t *v;
    if ((v = json_object_get(req, "max_length")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            *why = "field 'max_length' must be a non-negative integer";
            return -1;
        }
        p->max_length = (size_t)json_integer_value(v);
        p->truncation = true;
    }
    if ((v = json_object_get(req, "stride")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            *why = "field 'stride' must be a non-negative integer";
            return -1;
        }
        p->stride = (size_t)json_integer_value(v);
    }
    if ((v = json_object_get(req, "truncation")) != NULL) {
        const char *s = json_string_value(v);
        if (json_is_false(v))
            p->truncation = false;
        else if (s && strcmp(s, "longest_first") == 0)
            p->strategy = TRUNC_LONGEST_FIRST;
        else if (s && strcmp(s, "only_first") == 0)
            p->strategy = TRUNC_ONLY_FIRST;
        else if (s && strcmp(s, "only_second") == 0)
            p->strategy = TRUNC_ONLY_SECOND;
        else if (!json_is_true(v)) {
            *why = "field 'truncation' must be longest_first, only_first, only_second or a boolean";
            return -1;
        }
    }
    if ((v = json_object_get(req, "padding")) != NULL) {
        const char *s = json_string_value(v);
        if (s && strcmp(s, "max_length") == 0) {
            p->padding = PAD_FIXED;
            p->pad_length = p->max_length;
        } else if (s && strcmp(s, "longest") == 0) {
            p->padding = PAD_LONGEST;
        } else if (!json_is_false(v)) {
            *why = "field 'padding' must be \"max_length\", \"longest\" or false";
            return -1;
        }
    }
    return 0;
}

static int tokenize_line(const struct tokenizer *tk, const struct opts *o, const char *line,
                         size_t len, FILE *out)
{
    json_error_t je;
    json_t *req = json_loadb(line, len, JSON_ALLOW_NUL, &je);
    if (!req || !json_is_object(req)) {
        char msg[300];
        snprintf(msg, sizeof msg, "invalid JSON: %s", req ? "expected an object" : je.text);
        cli_print_error(out, msg, "input");
        json_decref(req);
        return -1;
    }
    const json_t *text = json_object_get(req, "text");
    const json_t *pair = json_object_get(req, "pair");
    const char *why = NULL;
    if (!json_is_string(text))
        why = "field 'text' must be a string";
    else if (pair && !json_is_null(pair) && !json_is_string(pair))
        why = "field 'pair' must be a string";
    else if (o->pair && !json_is_string(pair))
        why = "field 'pair' is required with --pair";
    struct tokenizer_params p = tokenizer_params_default(tk);
    p.add_special_tokens = !o->no_special;
    if (!why)
        line_params(req, &p, &why);
    if (why) {
        cli_print_error(out, why, "input");
        json_decref(req);
        return -1;
    }
    struct encodings encs = {0};
    struct err e = {0};
    const char *ps = json_is_string(pair) ? json_string_value(pair) : NULL;
    int rc = tokenizer_encode(tk, json_string_value(text), json_string_length(text), ps,
                              ps ? json_string_length(pair) : 0, &p, &encs, &e);
    if (rc) {
        cli_print_error(out, e.msg, err_kind_name(rc));
    } else {
        json_t *res = encoding_json(&encs.v[0]);
        if (encs.n > 1) {
            json_t *over = json_array();
            for (size_t i = 1; i < encs.n; i++)
                json_array_append_new(over, encoding_json(&encs.v[i]));
            json_object_set_new(res, "overflowing", over);
        }
        cli_print_json(out, res);
        json_decref(res);
    }
    encodings_fini(&encs);
    json_decref(req);
    return rc ? -1 : 0;
}

static int detokenize_line(const struct tokenizer *tk, const struct opts *o, const char *line,
                           size_t len, FILE *out)
{
    json_error_t je;
    json_t *req = json_loadb(line, len, 0, &je);
    const json_t *ids = req ? json_object_get(req, "ids") : NULL;
    const char *why = NULL;
    if (!req || !json_is_object(req))
        why = "invalid JSON: expected an object with field 'ids'";
    else if (!json_is_array(ids))
        why = "field 'ids' must be an array of integers";
    size_t n = ids ? json_array_size(ids) : 0;
    int32_t *v = why ? NULL : malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; !why && i < n; i++) {
        const json_t *x = json_array_get(ids, i);
        if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > INT32_MAX)
            why = "field 'ids' must hold non-negative 32-bit integers";
        else
            v[i] = (int32_t)json_integer_value(x);
    }
    int rc = -1;
    if (why) {
        cli_print_error(out, why, "input");
    } else {
        char *text = NULL;
        size_t tl = 0;
        struct err e = {0};
        if (tokenizer_decode(tk, v, n, !o->keep_special, &text, &tl, &e) == 0) {
            json_t *res = json_object();
            json_object_set_new(res, "text", json_stringn(text, tl));
            cli_print_json(out, res);
            json_decref(res);
            rc = 0;
        } else {
            cli_print_error(out, e.msg, err_kind_name(e.kind));
        }
        free(text);
    }
    free(v);
    json_decref(req);
    return rc;
}

static int run(int argc, char **argv, FILE *in, FILE *out, bool encode)
{
    struct opts o;
    if (parse_opts(argc, argv, &o))
        return 2;
    char dir[4096]; /* a model id's tokenizer files in the Hub cache */
    if (cli_model_dir(argv[0], o.dir, true, dir, sizeof dir) != 0)
        return 1;
    o.dir = dir;
    struct tokenizer *tk;
    struct err e = {0};
    if (tokenizer_load(o.dir, &tk, &e)) {
        fprintf(stderr, "inferd %s: %s\n", argv[0], e.msg);
        return 1;
    }
    char *buf = NULL;
    size_t cap = 0, len;
    int failed = 0;
    while (cli_read_line(in, &buf, &cap, &len)) {
        int rc =
            encode ? tokenize_line(tk, &o, buf, len, out) : detokenize_line(tk, &o, buf, len, out);
        failed |= rc != 0;
    }
    free(buf);
    tokenizer_free(tk);
    return failed ? 1 : 0;
}

int cli_tokenize(int argc, char **argv, FILE *in, FILE *out)
{
    return run(argc, argv, in, out, true);
}

int cli_detokenize(int argc, char **argv, FILE *in, FILE *out)
{
    return run(argc, argv, in, out, false);
}
