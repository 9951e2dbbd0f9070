/* pretokenize: the table of Hugging Face pre-tokenizers (BertPreTokenizer, ByteLevel,
 * Metaspace, Whitespace, WhitespaceSplit, Punctuation, Digits, Split, Sequence,
 * CharDelimiterSplit, FixedLength). Each row parses its tokenizer.json object into an
 * immutable state and cuts the not-yet-tokenized splits with the nstr patterns and
 * nstr_split, so offsets follow HF's alignment rules. HF compiles Split and ByteLevel
 * regexes with Oniguruma; tok_regex_compile (regex.c) runs them with PCRE2. Per-call scratch lives
 * in the apply call's context, never in the state, so one pre-tokenizer serves many threads. */
#include "tok.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "unicode.h"
#include "utf8.h"

/* ---- shared helpers ---- */

static int nomem(struct err *e)
{
    return err_set(e, ERR_NOMEM, "out of memory");
}

/* Sets a message for nstr failures, which return a bare kind. */
static int fail(struct err *e, int rc, const char *where)
{
    if (rc == ERR_NOMEM)
        return nomem(e);
    return err_set(e, rc, "pre-tokenizer %s: cannot split the text", where);
}

static int parse_behavior(const json_t *j, const char *key, bool required, enum split_behavior *out,
                          const char *where, struct err *e)
{
    static const struct {
        const char *name;
        enum split_behavior b;
    } names[] = {
        {"Removed", SPLIT_REMOVED},
        {"Isolated", SPLIT_ISOLATED},
        {"MergedWithPrevious", SPLIT_MERGED_WITH_PREVIOUS},
        {"MergedWithNext", SPLIT_MERGED_WITH_NEXT},
        {"Contiguous", SPLIT_CONTIGUOUS},
    };
    const char *s = NULL;
    int rc = tokj_str(j, key, required, &s, where, e);
    if (rc || !s)
        return rc;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].b;
            return 0;
        }
    return err_set(e, ERR_FORMAT,
                   "%s: field '%s' must be one of Removed, Isolated, MergedWithPrevious, "
                   "MergedWithNext, Contiguous (got '%s')",
                   where, key, s);
}

/* A JSON string holding exactly one char (serde's `char`). */
static int parse_char(const json_t *j, const char *key, uint32_t *cp, const char *where,
                      struct err *e)
{
    const char *s = NULL;
    int rc = tokj_str(j, key, true, &s, where, e);
    if (rc)
        return rc;
    size_t len = json_string_length(json_object_get(j, key));
    size_t n = 0;
    if (len == 0 || utf8_validate(s, len) != len || (*cp = utf8_decode(s, &n), n != len))
        return err_set(e, ERR_FORMAT, "%s: field '%s' must be a single character", where, key);
    return 0;
}

/* Splitting on a char predicate: HF's NormalizedString::split(fn(char) -> bool, behavior). */
struct char_split {
    bool (*pred)(uint32_t cp, void *ctx);
    void *pred_ctx;
    enum split_behavior behavior;
    struct nmatch_vec m; /* scratch, reused for every piece */
};

static int char_split_fn(void *ctx, struct nstr *piece, struct nstr_vec *out, struct err *e)
{
    struct char_split *cs = ctx;
    int rc = nstr_find_char(piece, cs->pred, cs->pred_ctx, &cs->m);
    if (rc == 0)
        rc = nstr_split(piece, &cs->m, cs->behavior, out);
    return rc ? fail(e, rc, "split") : 0;
}

static int split_on_chars(struct pretok *pt, bool (*pred)(uint32_t cp, void *ctx), void *pred_ctx,
                          enum split_behavior behavior, struct err *e)
{
    struct char_split cs = {pred, pred_ctx, behavior, {0}};
    int rc = pretok_split(pt, char_split_fn, &cs, e);
    nmatch_vec_fini(&cs.m);
    return rc;
}

static bool is_whitespace(uint32_t cp, void *ctx)
{
    (void)ctx;
    return uni_is_whitespace(cp);
}

/* Rust is_ascii_punctuation || unicode_categories is_punctuation (bert.rs, punctuation.rs). */
static bool is_bert_punc(uint32_t cp, void *ctx)
{
    (void)ctx;
    return uni_bert_is_punctuation(cp);
}

static bool is_numeric(uint32_t cp, void *ctx)
{
    (void)ctx;
    return uni_is_numeric(cp);
}

static bool is_same_char(uint32_t cp, void *ctx)
{
    return cp == *(const uint32_t *)ctx;
}

/* Splitting on a compiled regex (HF split(&SysRegex or Invert(&SysRegex), behavior)). */
struct regex_split {
    const pcre2_code *re;
    bool invert;
    enum split_behavior behavior;
    const char *where;
    struct nmatch_vec m;
};

static int regex_split_fn(void *ctx, struct nstr *piece, struct nstr_vec *out, struct err *e)
{
    struct regex_split *rs = ctx;
    int rc = nstr_find_regex(piece, rs->re, &rs->m);
    if (rc)
        return rc == ERR_NOMEM ? nomem(e)
                               : err_set(e, rc, "pre-tokenizer %s: regex match failed", rs->where);
    if (rs->invert)
        nmatch_invert(&rs->m);
    rc = nstr_split(piece, &rs->m, rs->behavior, out);
    return rc ? fail(e, rc, rs->where) : 0;
}

static int split_on_regex(struct pretok *pt, const pcre2_code *re, bool invert,
                          enum split_behavior behavior, const char *where, struct err *e)
{
    struct regex_split rs = {re, invert, behavior, where, {0}};
    int rc = pretok_split(pt, regex_split_fn, &rs, e);
    nmatch_vec_fini(&rs.m);
    return rc;
}

/* ---- stateless rows ---- */

static int parse_none(const json_t *j, void **state, struct err *e)
{
    (void)j;
    (void)e;
    *state = NULL;
    return 0;
}

static void free_plain(void *state)
{
    free(state);
}

static int bert_apply(const void *state, struct pretok *pt, struct err *e)
{
    (void)state;
    int rc = split_on_chars(pt, is_whitespace, NULL, SPLIT_REMOVED, e);
    return rc ? rc : split_on_chars(pt, is_bert_punc, NULL, SPLIT_ISOLATED, e);
}

static int whitespace_split_apply(const void *state, struct pretok *pt, struct err *e)
{
    (void)state;
    return split_on_chars(pt, is_whitespace, NULL, SPLIT_REMOVED, e);
}

/* Whitespace: HF splits on Invert(`\w+|[^\w\s]+`) with Removed, with the regex crate's
 * Unicode \w and \s. The regex is a plain scan, so it is done here with the predicates:
 * every match becomes a piece and the gaps (whitespace) go. */
struct ws_ctx {
    struct nmatch_vec m;
};

static int whitespace_fn(void *ctx, struct nstr *piece, struct nstr_vec *out, struct err *e)
{
    struct nmatch_vec *m = &((struct ws_ctx *)ctx)->m;
    m->n = 0;
    size_t prev = 0;
    int rc = 0;
    for (size_t i = 0; i < piece->len && rc == 0;) {
        size_t l;
        uint32_t cp = utf8_decode(piece->s + i, &l);
        if (uni_is_whitespace(cp)) {
            i += l;
            continue;
        }
        bool word = uni_is_word(cp);
        size_t j = i + l;
        while (j < piece->len) {
            uint32_t c2 = utf8_decode(piece->s + j, &l);
            if (uni_is_whitespace(c2) || uni_is_word(c2) != word)
                break;
            j += l;
        }
        if (prev < i)
            rc = nmatch_push(m, (uint32_t)prev, (uint32_t)i, true);
        if (rc == 0)
            rc = nmatch_push(m, (uint32_t)i, (uint32_t)j, false);
        prev = i = j;
    }
    if (rc == 0 && prev < piece->len)
        rc = nmatch_push(m, (uint32_t)prev, (uint32_t)piece->len, true);
    if (rc == 0)
        rc = nstr_split(piece, m, SPLIT_REMOVED, out);
    return rc ? fail(e, rc, "Whitespace") : 0;
}

static int whitespace_apply(const void *state, struct pretok *pt, struct err *e)
{
    (void)state;
    struct ws_ctx c = {{0}};
    int rc = pretok_split(pt, whitespace_fn, &c, e);
    nmatch_vec_fini(&c.m);
    return rc;
}

/* ---- Punctuation, Digits, CharDelimiterSplit, FixedLength ---- */

struct behavior_state {
    enum split_behavior behavior;
};

static int punctuation_parse(const json_t *j, void **state, struct err *e)
{
    struct behavior_state *st = malloc(sizeof *st);
    if (!st)
        return nomem(e);
    st->behavior = SPLIT_ISOLATED;
    int rc = parse_behavior(j, "behavior", false, &st->behavior, "pre-tokenizer Punctuation", e);
    if (rc) {
        free(st);
        return rc;
    }
    *state = st;
    return 0;
}

static int punctuation_apply(const void *state, struct pretok *pt, struct err *e)
{
    const struct behavior_state *st = state;
    return split_on_chars(pt, is_bert_punc, NULL, st->behavior, e);
}

static int digits_parse(const json_t *j, void **state, struct err *e)
{
    bool individual = false;
    int rc = tokj_bool(j, "individual_digits", true, &individual, "pre-tokenizer Digits", e);
    if (rc)
        return rc;
    struct behavior_state *st = malloc(sizeof *st);
    if (!st)
        return nomem(e);
    st->behavior = individual ? SPLIT_ISOLATED : SPLIT_CONTIGUOUS;
    *state = st;
    return 0;
}

static int digits_apply(const void *state, struct pretok *pt, struct err *e)
{
    const struct behavior_state *st = state;
    return split_on_chars(pt, is_numeric, NULL, st->behavior, e);
}

static int delimiter_parse(const json_t *j, void **state, struct err *e)
{
    uint32_t cp = 0;
    int rc = parse_char(j, "delimiter", &cp, "pre-tokenizer CharDelimiterSplit", e);
    if (rc)
        return rc;
    uint32_t *st = malloc(sizeof *st);
    if (!st)
        return nomem(e);
    *st = cp;
    *state = st;
    return 0;
}

static int delimiter_apply(const void *state, struct pretok *pt, struct err *e)
{
    return split_on_chars(pt, is_same_char, (void *)state, SPLIT_REMOVED, e);
}

static int fixed_length_parse(const json_t *j, void **state, struct err *e)
{
    long long length = 5;
    int rc = tokj_int(j, "length", false, &length, "pre-tokenizer FixedLength", e);
    if (rc)
        return rc;
    if (length < 1 || length > UINT32_MAX)
        return err_set(e, ERR_FORMAT, "pre-tokenizer FixedLength: field 'length' must be >= 1");
    size_t *st = malloc(sizeof *st);
    if (!st)
        return nomem(e);
    *st = (size_t)length;
    *state = st;
    return 0;
}

/* Cuts a piece into runs of `length` chars. */
static int fixed_length_fn(void *ctx, struct nstr *piece, struct nstr_vec *out, struct err *e)
{
    size_t length = *(const size_t *)ctx;
    int rc = 0;
    for (size_t i = 0; i < piece->len && rc == 0;) {
        size_t j = i;
        for (size_t k = 0; k < length && j < piece->len; k++)
            j += utf8_len((unsigned char)piece->s[j]);
        struct nstr chunk;
        rc = nstr_slice(piece, i, j, &chunk);
        if (rc == 0 && (rc = nstr_vec_push(out, &chunk)) != 0)
            nstr_fini(&chunk);
        i = j;
    }
    return rc ? fail(e, rc, "FixedLength") : 0;
}

static int fixed_length_apply(const void *state, struct pretok *pt, struct err *e)
{
    return pretok_split(pt, fixed_length_fn, (void *)state, e);
}

/* ---- ByteLevel ---- */

/* GPT-2's word regex (openai/gpt-2 encoder.py), as HF byte_level.rs. */
static const char gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

struct byte_level {
    bool add_prefix_space, trim_offsets, use_regex;
    pcre2_code *re; /* NULL unless use_regex */
};

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68
 * bytes to U+0100.. in byte order (0x00-0x20, then 0x7F-0xA0, then 0xAD). */
static uint32_t byte_char(unsigned char b)
{
    if (b <= 0x20)
        return 0x100 + b;
    if (b >= 0x7F && b <= 0xA0)
        return 0x100 + 33 + (b - 0x7F);
    if (b == 0xAD)
        return 0x100 + 67;
    return b;
}

static void byte_level_free(void *state)
{
    struct byte_level *st = state;
    if (st)
        pcre2_code_free(st->re);
    free(st);
}

static int byte_level_parse(const json_t *j, void **state, struct err *e)
{
    static const char where[] = "pre-tokenizer ByteLevel";
    struct byte_level *st = calloc(1, sizeof *st);
    if (!st)
        return nomem(e);
    st->use_regex = true;
    int rc = tokj_bool(j, "add_prefix_space", true, &st->add_prefix_space, where, e);
    if (rc == 0)
        rc = tokj_bool(j, "trim_offsets", true, &st->trim_offsets, where, e);
    if (rc == 0)
        rc = tokj_bool(j, "use_regex", false, &st->use_regex, where, e);
    if (rc == 0 && st->use_regex)
        rc = tok_regex_compile(gpt2_pattern, sizeof gpt2_pattern - 1, &st->re, where, "use_regex",
                               e);
    if (rc) {
        byte_level_free(st);
        return rc;
    }
    *state = st;
    return 0;
}

struct byte_level_ctx {
    const struct byte_level *st;
    struct nmatch_vec m;
};

static int byte_level_fn(void *ctx, struct nstr *piece, struct nstr_vec *out, struct err *e)
{
    struct byte_level_ctx *c = ctx;
    int rc = 0;
    if (c->st->add_prefix_space && (piece->len == 0 || piece->s[0] != ' '))
        rc = nstr_prepend(piece, " ");
    if (rc == 0 && c->st->use_regex) {
        rc = nstr_find_regex(piece, c->st->re, &c->m);
        if (rc && rc != ERR_NOMEM)
            return err_set(e, rc, "pre-tokenizer ByteLevel: regex match failed");
        if (rc == 0)
            rc = nstr_split(piece, &c->m, SPLIT_ISOLATED, out);
    } else if (rc == 0) {
        rc = nstr_vec_push(out, piece);
    }
    return rc ? fail(e, rc, "ByteLevel") : 0;
}

/* Replaces every byte by its byte_char; the chars made from the 2nd..4th byte of one
 * input char are insertions, so all of them stay aligned to that input char. */
static int byte_level_map(struct nstr *ns, struct nchange_vec *v)
{
    /* Printable ASCII maps to itself one to one: nothing would change. */
    size_t same = 0;
    while (same < ns->len && ns->s[same] >= '!' && ns->s[same] <= '~')
        same++;
    if (same == ns->len)
        return 0;
    v->n = 0;
    for (size_t i = 0; i < ns->len;) {
        size_t l = utf8_len((unsigned char)ns->s[i]);
        for (size_t k = 0; k < l && i + k < ns->len; k++)
            if (nchange_push(v, byte_char((unsigned char)ns->s[i + k]), k > 0))
                return ERR_NOMEM;
        i += l;
    }
    return nstr_transform(ns, v->v, v->n, 0);
}

static int byte_level_apply(const void *state, struct pretok *pt, struct err *e)
{
    struct byte_level_ctx c = {state, {0}};
    int rc = pretok_split(pt, byte_level_fn, &c, e);
    nmatch_vec_fini(&c.m);
    struct nchange_vec v = {0};
    for (size_t i = 0; i < pt->n && rc == 0; i++)
        if (pt->v[i].added_id < 0 && (rc = byte_level_map(&pt->v[i].ns, &v)) != 0)
            rc = fail(e, rc, "ByteLevel");
    nchange_vec_fini(&v);
    return rc;
}

/* ---- Metaspace ---- */

enum prepend_scheme { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER };

struct metaspace {
    uint32_t replacement;
    char rep[5]; /* replacement as UTF-8 */
    size_t rep_len;
    enum prepend_scheme scheme;
    bool split;
};

static int metaspace_parse(const json_t *j, void **state, struct err *e)
{
    static const char where[] = "pre-tokenizer Metaspace";
    struct metaspace *st = calloc(1, sizeof *st);
    if (!st)
        return nomem(e);
    st->scheme = PREPEND_ALWAYS;
    st->split = true;
    int rc = parse_char(j, "replacement", &st->replacement, where, e);
    const char *scheme = NULL;
    if (rc == 0)
        rc = tokj_str(j, "prepend_scheme", false, &scheme, where, e);
    if (rc == 0 && scheme) {
        if (strcmp(scheme, "always") == 0)
            st->scheme = PREPEND_ALWAYS;
        else if (strcmp(scheme, "first") == 0)
            st->scheme = PREPEND_FIRST;
        else if (strcmp(scheme, "never") == 0)
            st->scheme = PREPEND_NEVER;
        else
            rc = err_set(e, ERR_FORMAT,
                         "%s: field 'prepend_scheme' must be first, always or never (got '%s')",
                         where, scheme);
    }
    /* The legacy add_prefix_space may only agree with prepend_scheme (HF rejects
     * false with a scheme other than never, the default scheme included). */
    bool add_prefix_space = true;
    if (rc == 0)
        rc = tokj_bool(j, "add_prefix_space", false, &add_prefix_space, where, e);
    if (rc == 0 && !add_prefix_space) {
        if (st->scheme != PREPEND_NEVER)
            rc = err_set(e, ERR_FORMAT,
                         "%s: field 'add_prefix_space' does not match declared prepend_scheme",
                         where);
        st->scheme = PREPEND_NEVER;
    }
    if (rc == 0)
        rc = tokj_bool(j, "split", false, &st->split, where, e);
    if (rc) {
        free(st);
        return rc;
    }
    st->rep_len = utf8_encode(st->replacement, st->rep);
    st->rep[st->rep_len] = '\0';
    *state = st;
    return 0;
}

struct metaspace_ctx {
    const struct metaspace *st;
    struct nmatch_vec m;
};

static int metaspace_fn(void *ctx, struct nstr *piece, struct nstr_vec *out, struct err *e)
{
    struct metaspace_ctx *c = ctx;
    const struct metaspace *st = c->st;
    int rc = 0;
    if (piece->len && memchr(piece->s, ' ', piece->len)) {
        rc = nstr_find_string(piece, " ", 1, &c->m);
        if (rc == 0)
            rc = nstr_replace(piece, &c->m, st->rep);
    }
    /* "first" is the split that starts the input: HF tests offsets_original().0 == 0,
     * and a sequence's original offsets start at 0. */
    bool starts = piece->len >= st->rep_len && memcmp(piece->s, st->rep, st->rep_len) == 0;
    bool prepend =
        st->scheme == PREPEND_ALWAYS || (st->scheme == PREPEND_FIRST && piece->orig_start == 0);
    if (rc == 0 && prepend && !starts)
        rc = nstr_prepend(piece, st->rep);
    if (rc == 0 && st->split) {
        rc = nstr_find_char(piece, is_same_char, (void *)&st->replacement, &c->m);
        if (rc == 0)
            rc = nstr_split(piece, &c->m, SPLIT_MERGED_WITH_NEXT, out);
    } else if (rc == 0) {
        rc = nstr_vec_push(out, piece);
    }
    return rc ? fail(e, rc, "Metaspace") : 0;
}

static int metaspace_apply(const void *state, struct pretok *pt, struct err *e)
{
    struct metaspace_ctx c = {state, {0}};
    int rc = pretok_split(pt, metaspace_fn, &c, e);
    nmatch_vec_fini(&c.m);
    return rc;
}

/* ---- Split ---- */

struct split {
    /* A non-empty String pattern is matched literally (HF escapes it into a regex,
     * which finds the same matches); an empty one is the empty regex. */
    struct tok_pattern pat;
    enum split_behavior behavior;
    bool invert;
};

static void split_free(void *state)
{
    struct split *st = state;
    if (st)
        tok_pattern_fini(&st->pat);
    free(st);
}

static int split_parse(const json_t *j, void **state, struct err *e)
{
    static const char where[] = "pre-tokenizer Split";
    struct split *st = calloc(1, sizeof *st);
    if (!st)
        return nomem(e);
    int rc = tok_pattern_parse(j, "pattern", where, &st->pat, e);
    if (rc == 0 && st->pat.literal && st->pat.literal_len == 0) {
        free(st->pat.literal);
        st->pat.literal = NULL;
        rc = tok_regex_compile("", 0, &st->pat.re, where, "pattern", e);
    }
    if (rc == 0)
        rc = parse_behavior(j, "behavior", true, &st->behavior, where, e);
    if (rc == 0)
        rc = tokj_bool(j, "invert", true, &st->invert, where, e);
    if (rc) {
        split_free(st);
        return rc;
    }
    *state = st;
    return 0;
}

struct lit_split {
    const struct split *st;
    struct nmatch_vec m;
};

static int lit_split_fn(void *ctx, struct nstr *piece, struct nstr_vec *out, struct err *e)
{
    struct lit_split *c = ctx;
    int rc = nstr_find_string(piece, c->st->pat.literal, c->st->pat.literal_len, &c->m);
    if (rc == 0 && c->st->invert)
        nmatch_invert(&c->m);
    if (rc == 0)
        rc = nstr_split(piece, &c->m, c->st->behavior, out);
    return rc ? fail(e, rc, "Split") : 0;
}

static int split_apply(const void *state, struct pretok *pt, struct err *e)
{
    const struct split *st = state;
    if (st->pat.re)
        return split_on_regex(pt, st->pat.re, st->invert, st->behavior, "Split", e);
    struct lit_split c = {st, {0}};
    int rc = pretok_split(pt, lit_split_fn, &c, e);
    nmatch_vec_fini(&c.m);
    return rc;
}

/* ---- Sequence ---- */

struct sequence {
    struct pretokenizer **v;
    size_t n;
};

static void sequence_free(void *state)
{
    struct sequence *st = state;
    if (!st)
        return;
    for (size_t i = 0; i < st->n; i++)
        pretokenizer_free(st->v[i]);
    free(st->v);
    free(st);
}

static int sequence_parse(const json_t *j, void **state, struct err *e)
{
    const json_t *arr = json_object_get(j, "pretokenizers");
    if (!json_is_array(arr))
        return err_set(e, ERR_FORMAT,
                       "pre-tokenizer Sequence: field 'pretokenizers' must be an array");
    struct sequence *st = calloc(1, sizeof *st);
    size_t n = json_array_size(arr);
    if (!st || (n && !(st->v = calloc(n, sizeof *st->v)))) {
        free(st);
        return nomem(e);
    }
    for (size_t i = 0; i < n; i++) {
        int rc = pretokenizer_new(json_array_get(arr, i), &st->v[i], e);
        if (rc) {
            err_prefix(e, "pre-tokenizer Sequence: pretokenizers[%zu]: ", i);
            sequence_free(st);
            return rc;
        }
        st->n++;
    }
    *state = st;
    return 0;
}

static int sequence_apply(const void *state, struct pretok *pt, struct err *e)
{
    const struct sequence *st = state;
    int rc = 0;
    for (size_t i = 0; i < st->n && rc == 0; i++)
        rc = pretokenizer_apply(st->v[i], pt, e);
    return rc;
}

/* ---- the table ---- */

static const struct pretokenizer_ops bert_ops = {"BertPreTokenizer", parse_none, bert_apply,
                                                 free_plain};
static const struct pretokenizer_ops byte_level_ops = {"ByteLevel", byte_level_parse,
                                                       byte_level_apply, byte_level_free};
static const struct pretokenizer_ops metaspace_ops = {"Metaspace", metaspace_parse, metaspace_apply,
                                                      free_plain};
static const struct pretokenizer_ops whitespace_ops = {"Whitespace", parse_none, whitespace_apply,
                                                       free_plain};
static const struct pretokenizer_ops whitespace_split_ops = {"WhitespaceSplit", parse_none,
                                                             whitespace_split_apply, free_plain};
static const struct pretokenizer_ops punctuation_ops = {"Punctuation", punctuation_parse,
                                                        punctuation_apply, free_plain};
static const struct pretokenizer_ops digits_ops = {"Digits", digits_parse, digits_apply,
                                                   free_plain};
static const struct pretokenizer_ops split_ops = {"Split", split_parse, split_apply, split_free};
static const struct pretokenizer_ops sequence_ops = {"Sequence", sequence_parse, sequence_apply,
                                                     sequence_free};
static const struct pretokenizer_ops delimiter_ops = {"CharDelimiterSplit", delimiter_parse,
                                                      delimiter_apply, free_plain};
static const struct pretokenizer_ops fixed_length_ops = {"FixedLength", fixed_length_parse,
                                                         fixed_length_apply, free_plain};

const struct pretokenizer_ops *const pretokenizer_table[] = {
    &bert_ops,
    &byte_level_ops,
    &metaspace_ops,
    &whitespace_ops,
    &whitespace_split_ops,
    &punctuation_ops,
    &digits_ops,
    &split_ops,
    &sequence_ops,
    &delimiter_ops,
    &fixed_length_ops,
    NULL,
};

int pretokenizer_new(const json_t *j, struct pretokenizer **out, struct err *e)
{
    *out = NULL;
    if (!json_is_object(j))
        return err_set(e, ERR_FORMAT, "pre-tokenizer: must be an object");
    const char *type = NULL;
    int rc = tokj_str(j, "type", true, &type, "pre-tokenizer", e);
    if (rc)
        return rc;
    const struct pretokenizer_ops *ops;
    TOK_TABLE_FIND(pretokenizer_table, type, ops);
    if (!ops)
        return err_set(e, ERR_FORMAT, "pre-tokenizer: unsupported type '%s'", type);
    struct pretokenizer *p = malloc(sizeof *p);
    if (!p)
        return nomem(e);
    p->ops = ops;
    p->state = NULL;
    if ((rc = ops->parse(j, &p->state, e)) != 0) {
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int pretokenizer_apply(const struct pretokenizer *p, struct pretok *pt, struct err *e)
{
    return p->ops->apply(p->state, pt, e);
}

void pretokenizer_free(struct pretokenizer *p)
{
    if (!p)
        return;
    p->ops->free(p->state);
    free(p);
}
