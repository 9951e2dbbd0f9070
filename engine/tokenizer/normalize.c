/* normalize: the normalizer table (HF tokenizers normalizers/ sources) and normalizer_new /
 * _apply / _free. Every row changes the text only through the nstr transformations, with
 * the (char, change) steps HF produces, so alignments to the original match HF byte for
 * byte. Unicode normalization forms reproduce the unicode-normalization-alignments crate:
 * the text comes from utf8proc, the change values from that crate's iterator rules.
 * Precompiled (SentencePiece charsmaps) lives in precompiled.c. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "precompiled.h"
#include "tok.h"
#include "unicode.h"
#include "utf8.h"

static int nomem(struct err *e, const char *where)
{
    return err_set(e, ERR_NOMEM, "%s: out of memory", where);
}

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

/* ---- Unicode normalization forms (NFD, NFKD, NFC, NFKC) ----
 *
 * unicode-normalization-alignments yields, for decomposition, every char of the full
 * decomposition of each input char, the first with change 0 and the rest with +1; the
 * buffered chars are then put in canonical order by a stable sort on the combining class
 * of each run of non-starters, the change values travelling with their chars. For
 * composition, a starter that absorbs a following char gets change
 * starter.change + absorbed.change - 1; everything else passes through unchanged. */

struct uchar {
    uint32_t cp;
    int32_t change;
    uint8_t ccc;
};

struct uchar_vec {
    struct uchar *v;
    size_t n, cap;
};

static int uchar_push(struct uchar_vec *u, uint32_t cp, int32_t change, uint8_t ccc)
{
    if (u->n == u->cap) {
        size_t c = u->cap ? u->cap * 2 : 64;
        struct uchar *v = realloc(u->v, c * sizeof *v);
        if (!v)
            return ERR_NOMEM;
        u->v = v;
        u->cap = c;
    }
    u->v[u->n++] = (struct uchar){cp, change, ccc};
    return 0;
}

static uint8_t ccc_of(uint32_t cp)
{
    return (uint8_t)utf8proc_get_property((utf8proc_int32_t)cp)->combining_class;
}

/* Stable insertion sort of each run of non-starters by combining class. */
static void canonical_order(struct uchar *v, size_t n)
{
    for (size_t i = 0; i < n;) {
        if (v[i].ccc == 0) {
            i++;
            continue;
        }
        size_t end = i;
        while (end < n && v[end].ccc != 0)
            end++;
        for (size_t a = i + 1; a < end; a++) {
            struct uchar x = v[a];
            size_t b = a;
            while (b > i && v[b - 1].ccc > x.ccc) {
                v[b] = v[b - 1];
                b--;
            }
            v[b] = x;
        }
        i = end;
    }
}

static int decompose(const struct nstr *ns, bool compat, struct uchar_vec *out)
{
    utf8proc_option_t opt = UTF8PROC_DECOMPOSE | (compat ? UTF8PROC_COMPAT : 0);
    utf8proc_int32_t buf[32]; /* the longest full decomposition is 18 chars */
    for (size_t i = 0; i < ns->len;) {
        size_t l;
        uint32_t cp = utf8_decode(ns->s + i, &l);
        i += l;
        utf8proc_ssize_t n = utf8proc_decompose_char((utf8proc_int32_t)cp, buf, 32, opt, NULL);
        if (n <= 0 || n > 32) { /* cannot happen for valid scalars; keep the char */
            buf[0] = (utf8proc_int32_t)cp;
            n = 1;
        }
        for (utf8proc_ssize_t k = 0; k < n; k++)
            if (uchar_push(out, (uint32_t)buf[k], k == 0 ? 0 : 1, ccc_of((uint32_t)buf[k])))
                return ERR_NOMEM;
    }
    canonical_order(out->v, out->n);
    return 0;
}

/* The primary composite of <a, b>, or 0 (unicode-normalization char::compose). */
static uint32_t compose_pair(uint32_t a, uint32_t b)
{
    /* No canonical composition has a second char below U+0300: skip the lookup. */
    if (b < 0x300)
        return 0;
    utf8proc_int32_t buf[2] = {(utf8proc_int32_t)a, (utf8proc_int32_t)b};
    utf8proc_ssize_t n = utf8proc_normalize_utf32(buf, 2, UTF8PROC_COMPOSE | UTF8PROC_STABLE);
    return n == 1 ? (uint32_t)buf[0] : 0;
}

/* The Recompositions iterator over the decomposed chars, appended to out. */
static int recompose(const struct uchar_vec *d, struct nchange_vec *out)
{
    struct uchar_vec blocked = {0}; /* non-starters kept after the composee */
    bool have_k = false, have_last = false;
    struct uchar k = {0};
    uint8_t last_ccc = 0;
    int rc = 0;
    for (size_t i = 0; i < d->n && rc == 0; i++) {
        struct uchar ch = d->v[i];
        if (!have_k) {
            if (ch.ccc != 0) {
                rc = nchange_push(out, ch.cp, ch.change);
                continue;
            }
            k = ch;
            have_k = true;
            continue;
        }
        uint32_t r;
        if (!have_last) {
            if ((r = compose_pair(k.cp, ch.cp)) != 0) {
                k.cp = r;
                k.change = k.change + ch.change - 1;
                continue;
            }
            if (ch.ccc == 0) {
                rc = nchange_push(out, k.cp, k.change);
                k = ch;
                continue;
            }
            rc = uchar_push(&blocked, ch.cp, ch.change, ch.ccc);
            last_ccc = ch.ccc;
            have_last = true;
            continue;
        }
        if (last_ccc >= ch.ccc) {
            /* ch is blocked from the composee. */
            if (ch.ccc == 0) {
                rc = nchange_push(out, k.cp, k.change);
                for (size_t b = 0; b < blocked.n && rc == 0; b++)
                    rc = nchange_push(out, blocked.v[b].cp, blocked.v[b].change);
                blocked.n = 0;
                k = ch;
                have_last = false;
                continue;
            }
            rc = uchar_push(&blocked, ch.cp, ch.change, ch.ccc);
            last_ccc = ch.ccc;
            continue;
        }
        if ((r = compose_pair(k.cp, ch.cp)) != 0) {
            k.cp = r;
            k.change = k.change + ch.change - 1;
            continue;
        }
        rc = uchar_push(&blocked, ch.cp, ch.change, ch.ccc);
        last_ccc = ch.ccc;
    }
    if (rc == 0 && have_k)
        rc = nchange_push(out, k.cp, k.change);
    for (size_t b = 0; b < blocked.n && rc == 0; b++)
        rc = nchange_push(out, blocked.v[b].cp, blocked.v[b].change);
    free(blocked.v);
    return rc;
}

static bool is_ascii(const struct nstr *ns)
{
    for (size_t i = 0; i < ns->len; i++)
        if ((unsigned char)ns->s[i] >= 0x80)
            return false;
    return true;
}

/* NormalizedString nfd/nfkd/nfc/nfkc. */
static int unicode_form(struct nstr *ns, bool compat, bool compose)
{
    if (is_ascii(ns)) /* every form is the identity on ASCII */
        return 0;
    struct uchar_vec d = {0};
    struct nchange_vec t = {0};
    int rc = decompose(ns, compat, &d);
    if (rc == 0 && compose)
        rc = recompose(&d, &t);
    for (size_t i = 0; rc == 0 && !compose && i < d.n; i++)
        rc = nchange_push(&t, d.v[i].cp, d.v[i].change);
    if (rc == 0)
        rc = nstr_transform(ns, t.v, t.n, 0);
    free(d.v);
    nchange_vec_fini(&t);
    return rc;
}

static int nfd_apply(const void *state, struct nstr *ns, struct err *e)
{
    (void)state;
    return unicode_form(ns, false, false) ? nomem(e, "normalizer NFD") : 0;
}

static int nfkd_apply(const void *state, struct nstr *ns, struct err *e)
{
    (void)state;
    return unicode_form(ns, true, false) ? nomem(e, "normalizer NFKD") : 0;
}

static int nfc_apply(const void *state, struct nstr *ns, struct err *e)
{
    (void)state;
    return unicode_form(ns, false, true) ? nomem(e, "normalizer NFC") : 0;
}

static int nfkc_apply(const void *state, struct nstr *ns, struct err *e)
{
    (void)state;
    return unicode_form(ns, true, true) ? nomem(e, "normalizer NFKC") : 0;
}

/* ---- Lowercase, StripAccents, Strip, Nmt ---- */

/* NormalizedString::lowercase: Rust char::to_lowercase, extra chars inserted (+1). */
static int lowercase(struct nstr *ns)
{
    struct nchange_vec t = {0};
    int rc = 0;
    for (size_t i = 0; i < ns->len && rc == 0;) {
        size_t l;
        uint32_t lower[3];
        size_t n = uni_to_lower(utf8_decode(ns->s + i, &l), lower);
        for (size_t k = 0; k < n && rc == 0; k++)
            rc = nchange_push(&t, lower[k], k > 0);
        i += l;
    }
    if (rc == 0)
        rc = nstr_transform(ns, t.v, t.n, 0);
    nchange_vec_fini(&t);
    return rc;
}

static int lowercase_apply(const void *state, struct nstr *ns, struct err *e)
{
    (void)state;
    return lowercase(ns) ? nomem(e, "normalizer Lowercase") : 0;
}

/* unicode-normalization's is_combining_mark: General_Category Mark (Mn, Mc, Me). */
static bool not_combining_mark(uint32_t cp, void *ctx)
{
    (void)ctx;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME: return false;
    default: return true;
    }
}

static int strip_accents_apply(const void *state, struct nstr *ns, struct err *e)
{
    (void)state;
    return nstr_filter(ns, not_combining_mark, NULL) ? nomem(e, "normalizer StripAccents") : 0;
}

struct strip {
    bool left, right;
};

static int strip_parse(const json_t *j, void **state, struct err *e)
{
    const char *where = "normalizer Strip";
    struct strip s = {false, false};
    int rc = tokj_bool(j, "strip_left", true, &s.left, where, e);
    if (rc == 0)
        rc = tokj_bool(j, "strip_right", true, &s.right, where, e);
    if (rc)
        return rc;
    struct strip *st = malloc(sizeof *st);
    if (!st)
        return nomem(e, where);
    *st = s;
    *state = st;
    return 0;
}

static int strip_apply(const void *state, struct nstr *ns, struct err *e)
{
    const struct strip *st = state;
    return nstr_lrstrip(ns, st->left, st->right) ? nomem(e, "normalizer Strip") : 0;
}

/* Nmt (normalizers/unicode.rs do_nmt): drop some controls, map odd spaces to ' '. */
static bool nmt_keep(uint32_t cp, void *ctx)
{
    (void)ctx;
    return !((cp >= 0x01 && cp <= 0x08) || cp == 0x0B || (cp >= 0x0E && cp <= 0x1F) || cp == 0x7F ||
             cp == 0x8F || cp == 0x9F);
}

static uint32_t nmt_map(uint32_t cp, void *ctx)
{
    (void)ctx;
    switch (cp) {
    case 0x09:
    case 0x0A:
    case 0x0C:
    case 0x0D:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x2581:
    case 0xFEFF:
    case 0xFFFD: return ' ';
    default: return cp >= 0x200B && cp <= 0x200F ? ' ' : cp;
    }
}

static int nmt_apply(const void *state, struct nstr *ns, struct err *e)
{
    (void)state;
    if (nstr_filter(ns, nmt_keep, NULL) || nstr_map(ns, nmt_map, NULL))
        return nomem(e, "normalizer Nmt");
    return 0;
}

/* ---- BertNormalizer (normalizers/bert.rs) ---- */

struct bert {
    bool clean_text, handle_chinese_chars, strip_accents, lowercase;
};

static int bert_parse(const json_t *j, void **state, struct err *e)
{
    const char *where = "normalizer BertNormalizer";
    /* Defaults are HF's BertNormalizer::default(); strip_accents null follows lowercase. */
    struct bert b = {true, true, true, true};
    json_t *sa = json_object_get(j, "strip_accents");
    bool strip_set = sa && !json_is_null(sa);
    int rc = tokj_bool(j, "clean_text", false, &b.clean_text, where, e);
    if (rc == 0)
        rc = tokj_bool(j, "handle_chinese_chars", false, &b.handle_chinese_chars, where, e);
    if (rc == 0)
        rc = tokj_bool(j, "lowercase", false, &b.lowercase, where, e);
    if (rc == 0)
        rc = tokj_bool(j, "strip_accents", false, &b.strip_accents, where, e);
    if (rc)
        return rc;
    if (!strip_set)
        b.strip_accents = b.lowercase;
    struct bert *st = malloc(sizeof *st);
    if (!st)
        return nomem(e, where);
    *st = b;
    *state = st;
    return 0;
}

static bool bert_keep(uint32_t cp, void *ctx)
{
    (void)ctx;
    return !(cp == 0 || cp == 0xFFFD || uni_bert_is_control(cp));
}

/* bert.rs is_whitespace: \t \n \r or Rust char::is_whitespace (not the Zs-based rule of
 * the pre-tokenizer: U+2028 and U+2029 become spaces here). */
static uint32_t bert_space(uint32_t cp, void *ctx)
{
    (void)ctx;
    return cp == '\t' || cp == '\n' || cp == '\r' || uni_is_whitespace(cp) ? ' ' : cp;
}

static int bert_chinese(struct nstr *ns)
{
    struct nchange_vec t = {0};
    bool any = false;
    int rc = 0;
    for (size_t i = 0; i < ns->len && rc == 0;) {
        size_t l;
        uint32_t cp = utf8_decode(ns->s + i, &l);
        i += l;
        if (uni_is_chinese_char(cp)) {
            any = true;
            rc = nchange_push(&t, ' ', 0);
            if (rc == 0)
                rc = nchange_push(&t, cp, 1);
            if (rc == 0)
                rc = nchange_push(&t, ' ', 1);
        } else {
            rc = nchange_push(&t, cp, 0);
        }
    }
    /* Without CJK chars the transformation is the identity: skip it. */
    if (rc == 0 && any)
        rc = nstr_transform(ns, t.v, t.n, 0);
    nchange_vec_fini(&t);
    return rc;
}

static bool not_nonspacing_mark(uint32_t cp, void *ctx)
{
    (void)ctx;
    return !uni_is_nonspacing_mark(cp);
}

static int bert_apply(const void *state, struct nstr *ns, struct err *e)
{
    const struct bert *b = state;
    int rc = 0;
    if (b->clean_text) {
        rc = nstr_filter(ns, bert_keep, NULL);
        if (rc == 0)
            rc = nstr_map(ns, bert_space, NULL);
    }
    if (rc == 0 && b->handle_chinese_chars)
        rc = bert_chinese(ns);
    if (rc == 0 && b->strip_accents) {
        rc = unicode_form(ns, false, false);
        if (rc == 0)
            rc = nstr_filter(ns, not_nonspacing_mark, NULL);
    }
    if (rc == 0 && b->lowercase)
        rc = lowercase(ns);
    return rc ? nomem(e, "normalizer BertNormalizer") : 0;
}

/* ---- Replace, Prepend ---- */

static int replace_parse(const json_t *j, void **state, struct err *e)
{
    return tok_replace_parse(j, state, "normalizer Replace", e);
}

/* Oniguruma's find_iter with an empty pattern (regex::escape("")): an empty match at
 * every char boundary, the end included. */
static int empty_matches(const struct nstr *ns, struct nmatch_vec *m)
{
    m->n = 0;
    if (ns->len == 0)
        return nmatch_push(m, 0, 0, false);
    for (size_t i = 0; i <= ns->len;) {
        if (nmatch_push(m, (uint32_t)i, (uint32_t)i, true))
            return ERR_NOMEM;
        if (i == ns->len)
            break;
        size_t l = utf8_len((unsigned char)ns->s[i]);
        if (nmatch_push(m, (uint32_t)i, (uint32_t)(i + l), false))
            return ERR_NOMEM;
        i += l;
    }
    return 0;
}

static int replace_apply(const void *state, struct nstr *ns, struct err *e)
{
    const struct tok_replace *r = state;
    struct nmatch_vec m = {0};
    int rc;
    if (r->pat.re)
        rc = nstr_find_regex(ns, r->pat.re, &m);
    else if (r->pat.literal_len == 0)
        rc = empty_matches(ns, &m);
    else
        rc = nstr_find_string(ns, r->pat.literal, r->pat.literal_len, &m);
    if (rc == 0)
        rc = nstr_replace(ns, &m, r->content);
    nmatch_vec_fini(&m);
    if (rc == ERR_NOMEM)
        return nomem(e, "normalizer Replace");
    if (rc)
        return err_set(e, rc, "normalizer Replace: regex match failed");
    return 0;
}

static int prepend_parse(const json_t *j, void **state, struct err *e)
{
    const char *where = "normalizer Prepend";
    const char *s = NULL;
    int rc = tokj_str(j, "prepend", true, &s, where, e);
    if (rc)
        return rc;
    char *st = strdup(s);
    if (!st)
        return nomem(e, where);
    *state = st;
    return 0;
}

static int prepend_apply(const void *state, struct nstr *ns, struct err *e)
{
    /* nstr_prepend leaves an empty string alone, as HF Prepend does. */
    return nstr_prepend(ns, state) ? nomem(e, "normalizer Prepend") : 0;
}

/* ---- ByteLevel (normalizers/byte_level.rs): each UTF-8 byte -> GPT-2 byte char ---- */

static uint32_t byte_char(unsigned char b)
{
    /* GPT-2 bytes_to_unicode: printable Latin-1 bytes map to themselves; the others,
     * in byte order, to U+0100 onwards. */
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE))
        return b;
    uint32_t n;
    if (b <= 0x20)
        n = b;
    else if (b <= 0xA0)
        n = 33 + (b - 0x7F); /* 0x7F..0xA0 follow the 33 bytes 0x00..0x20 */
    else
        n = 33 + 34; /* 0xAD */
    return 0x100 + n;
}

static int byte_level_apply(const void *state, struct nstr *ns, struct err *e)
{
    (void)state;
    if (ns->len == 0)
        return 0;
    struct nchange_vec t = {0};
    int rc = 0;
    for (size_t i = 0; i < ns->len && rc == 0;) {
        size_t l = utf8_len((unsigned char)ns->s[i]);
        for (size_t k = 0; k < l && rc == 0; k++)
            rc = nchange_push(&t, byte_char((unsigned char)ns->s[i + k]), k > 0);
        i += l;
    }
    if (rc == 0)
        rc = nstr_transform(ns, t.v, t.n, 0);
    nchange_vec_fini(&t);
    return rc ? nomem(e, "normalizer ByteLevel") : 0;
}

/* ---- Sequence ---- */

struct sequence {
    struct normalizer **v;
    size_t n;
};

static void sequence_free(void *state)
{
    struct sequence *s = state;
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        normalizer_free(s->v[i]);
    free(s->v);
    free(s);
}

static int sequence_parse(const json_t *j, void **state, struct err *e)
{
    const char *where = "normalizer Sequence";
    json_t *arr = json_object_get(j, "normalizers");
    if (!arr || json_is_null(arr))
        return err_set(e, ERR_FORMAT, "%s: field 'normalizers' is missing", where);
    if (!json_is_array(arr))
        return err_set(e, ERR_FORMAT, "%s: field 'normalizers' must be an array", where);
    struct sequence *s = calloc(1, sizeof *s);
    size_t n = json_array_size(arr);
    if (!s || (n && !(s->v = calloc(n, sizeof *s->v)))) {
        free(s);
        return nomem(e, where);
    }
    for (size_t i = 0; i < n; i++) {
        int rc = normalizer_new(json_array_get(arr, i), &s->v[i], e);
        if (rc) {
            err_prefix(e, "%s: normalizers[%zu]: ", where, i);
            sequence_free(s);
            return rc;
        }
        s->n++;
    }
    *state = s;
    return 0;
}

static int sequence_apply(const void *state, struct nstr *ns, struct err *e)
{
    const struct sequence *s = state;
    int rc = 0;
    for (size_t i = 0; i < s->n && rc == 0; i++)
        rc = normalizer_apply(s->v[i], ns, e);
    return rc;
}

/* ---- the table ---- */

static const struct normalizer_ops bert_ops = {"BertNormalizer", bert_parse, bert_apply,
                                               free_plain};
static const struct normalizer_ops nfc_ops = {"NFC", parse_none, nfc_apply, free_plain};
static const struct normalizer_ops nfd_ops = {"NFD", parse_none, nfd_apply, free_plain};
static const struct normalizer_ops nfkc_ops = {"NFKC", parse_none, nfkc_apply, free_plain};
static const struct normalizer_ops nfkd_ops = {"NFKD", parse_none, nfkd_apply, free_plain};
static const struct normalizer_ops lowercase_ops = {"Lowercase", parse_none, lowercase_apply,
                                                    free_plain};
static const struct normalizer_ops strip_accents_ops = {"StripAccents", parse_none,
                                                        strip_accents_apply, free_plain};
static const struct normalizer_ops strip_ops = {"Strip", strip_parse, strip_apply, free_plain};
static const struct normalizer_ops nmt_ops = {"Nmt", parse_none, nmt_apply, free_plain};
static const struct normalizer_ops replace_ops = {"Replace", replace_parse, replace_apply,
                                                  tok_replace_free};
static const struct normalizer_ops prepend_ops = {"Prepend", prepend_parse, prepend_apply,
                                                  free_plain};
static const struct normalizer_ops byte_level_ops = {"ByteLevel", parse_none, byte_level_apply,
                                                     free_plain};
static const struct normalizer_ops sequence_ops = {"Sequence", sequence_parse, sequence_apply,
                                                   sequence_free};

const struct normalizer_ops *const normalizer_table[] = {
    &bert_ops,
    &nfc_ops,
    &nfd_ops,
    &nfkc_ops,
    &nfkd_ops,
    &lowercase_ops,
    &strip_accents_ops,
    &strip_ops,
    &nmt_ops,
    &replace_ops,
    &prepend_ops,
    &byte_level_ops,
    &normalizer_precompiled_ops,
    &sequence_ops,
    NULL,
};

/* HF accepts a normalizer without "type" (serde's untagged fallback) when its fields
 * identify it; only the variants whose fields alone can match are recognised. */
static const char *legacy_type(const json_t *j)
{
    if (json_object_get(j, "strip_left") && json_object_get(j, "strip_right"))
        return "Strip";
    if (json_object_get(j, "normalizers"))
        return "Sequence";
    if (json_object_get(j, "precompiled_charsmap"))
        return "Precompiled";
    if (json_object_get(j, "pattern") && json_object_get(j, "content"))
        return "Replace";
    if (json_object_get(j, "prepend"))
        return "Prepend";
    return NULL;
}

int normalizer_new(const json_t *j, struct normalizer **out, struct err *e)
{
    *out = NULL;
    if (!json_is_object(j))
        return err_set(e, ERR_FORMAT, "normalizer: must be an object");
    const char *type = NULL;
    json_t *t = json_object_get(j, "type");
    if (t && !json_is_null(t)) {
        if (!json_is_string(t))
            return err_set(e, ERR_FORMAT, "normalizer: field 'type' must be a string");
        type = json_string_value(t);
    } else if (!(type = legacy_type(j))) {
        return err_set(e, ERR_FORMAT, "normalizer: field 'type' is missing");
    }
    const struct normalizer_ops *ops;
    TOK_TABLE_FIND(normalizer_table, type, ops);
    if (!ops)
        return err_set(e, ERR_FORMAT, "normalizer: unsupported type '%s'", type);
    struct normalizer *n = malloc(sizeof *n);
    if (!n)
        return nomem(e, "normalizer");
    n->ops = ops;
    n->state = NULL;
    int rc = ops->parse(j, &n->state, e);
    if (rc) {
        free(n);
        return rc;
    }
    *out = n;
    return 0;
}

int normalizer_apply(const struct normalizer *n, struct nstr *ns, struct err *e)
{
    return n->ops->apply(n->state, ns, e);
}

void normalizer_free(struct normalizer *n)
{
    if (!n)
        return;
    n->ops->free(n->state);
    free(n);
}
