/* regex: the Oniguruma patterns of tokenizer.json (HF compiles Split, ByteLevel and
 * Replace regexes with Oniguruma, Ruby syntax) compiled for PCRE2, after rewriting the
 * few escapes whose meaning differs between the two engines. */
#include "tok.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

/* Growable output for the pattern rewrite. */
struct sbuf {
    char *s;
    size_t n, cap;
};

static int sbuf_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap * 2 : 64;
        while (c < b->n + n + 1)
            c *= 2;
        char *ns = realloc(b->s, c);
        if (!ns)
            return ERR_NOMEM;
        b->s = ns;
        b->cap = c;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
    return 0;
}

/* Oniguruma's Unicode classes spelt for PCRE2. PCRE2's own \s also takes U+180E (in
 * \h), its \w (10.42) lacks marks and connector punctuation, and Ruby's \h is a hex
 * digit, not horizontal space. Outside a class they become a class; inside one, the
 * bare item list. Negated forms inside a class (\S, \W, \H) keep PCRE2's meaning. */
static const char *onig_class_items(char c)
{
    switch (c) {
    case 's': return "\\t-\\r\\x{85}\\p{Z}";
    case 'w': return "\\p{L}\\p{M}\\p{N}\\p{Pc}";
    case 'h': return "0-9a-fA-F";
    default: return NULL;
    }
}

/* Rewrites an Oniguruma pattern for PCRE2 (see onig_class_items); Ruby's (?m) is
 * PCRE2's (?s). ^ and $ as line anchors are a compile option (PCRE2_MULTILINE). */
static int onig_to_pcre2(const char *src, size_t len, struct sbuf *out)
{
    int rc = 0;
    int depth = 0; /* character class nesting */
    for (size_t i = 0; i < len && rc == 0;) {
        char c = src[i];
        if (c == '\\' && i + 1 < len) {
            char d = src[i + 1];
            char lower = (char)(d | 0x20);
            const char *items = onig_class_items(lower);
            bool neg = d != lower;
            if (items && depth == 0) {
                rc = sbuf_add(out, neg ? "[^" : "[", neg ? 2 : 1);
                if (rc == 0)
                    rc = sbuf_add(out, items, strlen(items));
                if (rc == 0)
                    rc = sbuf_add(out, "]", 1);
            } else if (items && !neg) {
                rc = sbuf_add(out, items, strlen(items));
            } else {
                size_t n = 1 + utf8_len((unsigned char)d);
                if (i + n > len)
                    n = len - i;
                rc = sbuf_add(out, src + i, n);
                i += n;
                continue;
            }
            i += 2;
            continue;
        }
        if (c == '[') {
            if (depth > 0 && i + 1 < len && src[i + 1] == ':') {
                /* POSIX bracket [:name:] inside a class: copy it whole. */
                const char *end = strstr(src + i + 2, ":]");
                size_t n = end && (size_t)(end - src) < len ? (size_t)(end - src) + 2 - i : 1;
                rc = sbuf_add(out, src + i, n);
                i += n;
                continue;
            }
            depth++;
            rc = sbuf_add(out, "[", 1);
            i++;
            /* A ']' right after '[' or '[^' is a literal. */
            if (rc == 0 && i < len && src[i] == '^') {
                rc = sbuf_add(out, "^", 1);
                i++;
            }
            if (rc == 0 && i < len && src[i] == ']') {
                rc = sbuf_add(out, "]", 1);
                i++;
            }
            continue;
        }
        if (c == ']' && depth > 0)
            depth--;
        if (c == '(' && depth == 0 && i + 1 < len && src[i + 1] == '?') {
            /* Inline options (?imx-imx) or (?imx-imx:...): Ruby's m is dot-all. */
            size_t k = i + 2;
            while (k < len && src[k] != '\0' && strchr("imx-", src[k]))
                k++;
            if (k > i + 2 && k < len && (src[k] == ')' || src[k] == ':')) {
                for (size_t p = i; p < k && rc == 0; p++)
                    rc = sbuf_add(out, p > i + 1 && src[p] == 'm' ? "s" : src + p, 1);
                i = k;
                continue;
            }
        }
        rc = sbuf_add(out, src + i, 1);
        i++;
    }
    return rc;
}

/* Compiles an Oniguruma pattern; `where`/`key` name the field in error messages. */
int tok_regex_compile(const char *pattern, size_t len, pcre2_code **out, const char *where,
                      const char *key, struct err *e)
{
    struct sbuf b = {0};
    if (onig_to_pcre2(pattern, len, &b) || sbuf_add(&b, "", 0)) {
        free(b.s);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)b.s, b.n, PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE,
                                   &code, &off, NULL);
    free(b.s);
    if (!re) {
        char msg[128];
        pcre2_get_error_message(code, (PCRE2_UCHAR *)msg, sizeof msg);
        return err_set(e, ERR_FORMAT, "%s: field '%s': bad regex near offset %zu: %s", where, key,
                       (size_t)off, msg);
    }
    /* JIT is optional: without it pcre2_match interprets, same results. INFERD_NO_JIT
     * turns it off for memory checkers, which cannot see into JIT code. */
    const char *no_jit = getenv("INFERD_NO_JIT");
    if (!no_jit || !*no_jit || strcmp(no_jit, "0") == 0)
        (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    *out = re;
    return 0;
}

int tok_pattern_parse(const json_t *o, const char *key, const char *where, struct tok_pattern *p,
                      struct err *e)
{
    memset(p, 0, sizeof *p);
    const json_t *pat = json_object_get(o, key);
    if (!pat || json_is_null(pat))
        return err_set(e, ERR_FORMAT, "%s: field '%s' is missing", where, key);
    const json_t *str = json_object_get(pat, "String"), *rx = json_object_get(pat, "Regex");
    if (!json_is_object(pat) || json_object_size(pat) != 1 || (!str && !rx))
        return err_set(
            e, ERR_FORMAT,
            "%s: field '%s' must be an object with exactly one key, {\"String\": ...} or "
            "{\"Regex\": ...}",
            where, key);
    const json_t *v = str ? str : rx;
    if (!json_is_string(v))
        return err_set(e, ERR_FORMAT, "%s: field '%s.%s' must be a string", where, key,
                       str ? "String" : "Regex");
    if (rx) {
        char field[64];
        snprintf(field, sizeof field, "%s.Regex", key);
        return tok_regex_compile(json_string_value(v), json_string_length(v), &p->re, where, field,
                                 e);
    }
    p->literal_len = json_string_length(v);
    p->literal = malloc(p->literal_len + 1);
    if (!p->literal)
        return err_set(e, ERR_NOMEM, "out of memory");
    memcpy(p->literal, json_string_value(v), p->literal_len + 1);
    return 0;
}

void tok_pattern_fini(struct tok_pattern *p)
{
    free(p->literal);
    pcre2_code_free(p->re);
    memset(p, 0, sizeof *p);
}

int tok_replace_parse(const json_t *j, void **state, const char *where, struct err *e)
{
    const char *content = NULL;
    int rc = tokj_str(j, "content", true, &content, where, e);
    if (rc)
        return rc;
    struct tok_replace *r = calloc(1, sizeof *r);
    if (!r)
        return err_set(e, ERR_NOMEM, "out of memory");
    if ((rc = tok_pattern_parse(j, "pattern", where, &r->pat, e)) == 0 &&
        !(r->content = strdup(content)))
        rc = err_set(e, ERR_NOMEM, "out of memory");
    if (rc) {
        tok_replace_free(r);
        return rc;
    }
    *state = r;
    return 0;
}

void tok_replace_free(void *state)
{
    struct tok_replace *r = state;
    if (!r)
        return;
    tok_pattern_fini(&r->pat);
    free(r->content);
    free(r);
}
