/* precompiled: HF's Precompiled normalizer (spm_precompiled crate), see precompiled.h.
 *
 * The charsmap is [u32 LE trie_bytes][trie: trie_bytes/4 u32 LE units][replacement blob].
 * The trie is SentencePiece's Darts double array over the UTF-8 bytes of a key; a leaf
 * value is a byte offset into the blob, where the replacement runs up to the next NUL.
 *
 * Applying it follows tokenizers' normalizers/precompiled.rs exactly, quirks included:
 * the text is cut into extended grapheme clusters; a cluster shorter than 6 bytes is
 * looked up whole, and on a hit the whole cluster is replaced by the replacement of the
 * SHORTEST trie key that prefixes it (e.g. "Ａ" + U+0301 becomes "A": the accent is lost,
 * as in HF). Otherwise each char of the cluster is looked up on its own. Lookups stop at
 * a NUL byte, so U+0000 is never mapped. Alignments are derived as HF does: replacement
 * chars replace the old chars one for one, extra new chars are insertions (+1) at the
 * end, and when the replacement is shorter the last pushed step absorbs the removed
 * chars (which, when nothing was pushed yet, leaves them to be dropped at the end). */
#include "precompiled.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "utf8.h"

struct precompiled {
    uint32_t *units;
    size_t n_units;
    char *blob; /* replacements, NUL-separated, valid UTF-8, NUL-terminated copy */
    size_t blob_len;
};

/* ---- base64 ---- */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int precompiled_base64_decode(const char *s, size_t len, unsigned char **out, size_t *out_len,
                              size_t *bad_at)
{
    *out = NULL;
    *out_len = 0;
    *bad_at = 0;
    if (len % 4 != 0) {
        *bad_at = len;
        return ERR_FORMAT;
    }
    unsigned char *b = malloc(len / 4 * 3 + 1);
    if (!b)
        return ERR_NOMEM;
    size_t w = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        size_t pad = 0;
        for (size_t k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)s[i + k];
            /* '=' only as the last one or two chars of the whole input. */
            if (c == '=' && i + 4 == len && k >= 2 && (k == 3 || s[i + 3] == '=')) {
                v[k] = 0;
                pad++;
                continue;
            }
            v[k] = b64_value(c);
            if (v[k] < 0 || pad) {
                *bad_at = i + k;
                free(b);
                return ERR_FORMAT;
            }
        }
        uint32_t q =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        /* Canonical form only: the bits under the padding must be zero. */
        if ((pad == 1 && (q & 0xFF)) || (pad == 2 && (q & 0xFFFF))) {
            *bad_at = i + 4 - pad - 1;
            free(b);
            return ERR_FORMAT;
        }
        b[w++] = (unsigned char)(q >> 16);
        if (pad < 2)
            b[w++] = (unsigned char)(q >> 8);
        if (pad < 1)
            b[w++] = (unsigned char)q;
    }
    *out = b;
    *out_len = w;
    return 0;
}

/* ---- the charsmap ---- */

int precompiled_new(const unsigned char *map, size_t len, struct precompiled **out, struct err *e)
{
    *out = NULL;
    if (len < 4)
        return err_set(e, ERR_FORMAT,
                       "normalizer Precompiled: field 'precompiled_charsmap' is truncated "
                       "(%zu bytes, no trie size)",
                       len);
    uint32_t trie_bytes =
        (uint32_t)map[0] | (uint32_t)map[1] << 8 | (uint32_t)map[2] << 16 | (uint32_t)map[3] << 24;
    size_t n_units = trie_bytes / 4; /* a ragged tail byte count falls into the blob */
    if (n_units > (len - 4) / 4)
        return err_set(e, ERR_FORMAT,
                       "normalizer Precompiled: field 'precompiled_charsmap' is truncated "
                       "(trie of %zu units, %zu bytes left)",
                       n_units, len - 4);
    if (n_units == 0)
        return err_set(e, ERR_FORMAT,
                       "normalizer Precompiled: field 'precompiled_charsmap' has an empty trie");
    const unsigned char *blob = map + 4 + n_units * 4;
    size_t blob_len = len - 4 - n_units * 4;
    if (utf8_validate((const char *)blob, blob_len) != blob_len)
        return err_set(e, ERR_FORMAT,
                       "normalizer Precompiled: field 'precompiled_charsmap': replacement "
                       "strings are not valid UTF-8");
    struct precompiled *p = calloc(1, sizeof *p);
    if (!p)
        goto nomem;
    p->units = malloc(n_units * sizeof *p->units);
    p->blob = malloc(blob_len + 1);
    if (!p->units || !p->blob)
        goto nomem;
    for (size_t i = 0; i < n_units; i++) {
        const unsigned char *u = map + 4 + i * 4;
        p->units[i] =
            (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
    }
    p->n_units = n_units;
    memcpy(p->blob, blob, blob_len);
    p->blob[blob_len] = '\0';
    p->blob_len = blob_len;
    *out = p;
    return 0;
nomem:
    precompiled_free(p);
    return err_set(e, ERR_NOMEM, "normalizer Precompiled: out of memory");
}

void precompiled_free(struct precompiled *p)
{
    if (!p)
        return;
    free(p->units);
    free(p->blob);
    free(p);
}

/* Darts unit fields (sentencepiece darts.h / spm_precompiled ArrayUnit). */
static bool unit_has_leaf(uint32_t u)
{
    return (u >> 8) & 1;
}

static uint32_t unit_value(uint32_t u)
{
    return u & 0x7FFFFFFFu;
}

static uint32_t unit_label(uint32_t u)
{
    return u & (0x80000000u | 0xFFu);
}

static size_t unit_offset(uint32_t u)
{
    return (size_t)(u >> 10) << ((u & (1u << 9)) >> 6);
}

bool precompiled_transform(const struct precompiled *p, const char *s, size_t len,
                           const char **repl, size_t *repl_len)
{
    /* Walks the trie byte by byte and stops at the first leaf (the crate's
     * common_prefix_search()[0]). Out-of-range positions, which would panic in Rust,
     * count as "no match". */
    size_t pos = unit_offset(p->units[0]);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0)
            return false;
        pos ^= c;
        if (pos >= p->n_units)
            return false;
        uint32_t unit = p->units[pos];
        if (unit_label(unit) != c)
            return false;
        pos ^= unit_offset(unit);
        if (unit_has_leaf(unit)) {
            if (pos >= p->n_units)
                return false;
            size_t at = unit_value(p->units[pos]);
            if (at > p->blob_len || (at < p->blob_len && (p->blob[at] & 0xC0) == 0x80))
                return false;
            *repl = p->blob + at;
            *repl_len = strlen(p->blob + at); /* blob_len bounds it: blob is NUL-terminated */
            return true;
        }
    }
    return false;
}

/* ---- the normalizer ---- */

static int parse(const json_t *j, void **state, struct err *e)
{
    const char *where = "normalizer Precompiled";
    json_t *v = json_object_get(j, "precompiled_charsmap");
    if (!v || json_is_null(v))
        return err_set(e, ERR_FORMAT, "%s: field 'precompiled_charsmap' is missing", where);
    if (!json_is_string(v))
        return err_set(e, ERR_FORMAT, "%s: field 'precompiled_charsmap' must be a string", where);
    unsigned char *map;
    size_t map_len, bad_at;
    int rc = precompiled_base64_decode(json_string_value(v), json_string_length(v), &map, &map_len,
                                       &bad_at);
    if (rc == ERR_NOMEM)
        return err_set(e, rc, "%s: out of memory", where);
    if (rc)
        return err_set(e, ERR_FORMAT,
                       "%s: field 'precompiled_charsmap' is not valid base64 (at offset %zu)",
                       where, bad_at);
    struct precompiled *p;
    rc = precompiled_new(map, map_len, &p, e);
    free(map);
    if (rc)
        return rc;
    *state = p;
    return 0;
}

/* spm_precompiled's replace(): the steps for old_chars chars becoming repl. */
static int push_replacement(struct nchange_vec *t, size_t old_chars, const char *repl,
                            size_t repl_len)
{
    size_t first = t->n;
    for (size_t i = 0; i < repl_len;) {
        size_t l;
        uint32_t cp = utf8_decode(repl + i, &l);
        if (nchange_push(t, cp, 0))
            return ERR_NOMEM;
        i += l;
    }
    size_t new_chars = t->n - first;
    if (new_chars > old_chars) {
        for (size_t k = t->n - (new_chars - old_chars); k < t->n; k++)
            t->v[k].change = 1;
    } else if (new_chars < old_chars && t->n > 0) {
        t->v[t->n - 1].change -= (int32_t)(old_chars - new_chars);
    }
    return 0;
}

/* Steps for s[0..len) (one grapheme cluster) appended to t; *modified set on any hit. */
static int grapheme_steps(const struct precompiled *p, const char *s, size_t len,
                          struct nchange_vec *t, bool *modified)
{
    const char *repl;
    size_t repl_len;
    if (len < 6 && precompiled_transform(p, s, len, &repl, &repl_len)) {
        *modified = true;
        return push_replacement(t, utf8_count(s, len), repl, repl_len);
    }
    for (size_t i = 0; i < len;) {
        size_t l;
        uint32_t cp = utf8_decode(s + i, &l);
        int rc;
        if (precompiled_transform(p, s + i, l, &repl, &repl_len)) {
            *modified = true;
            rc = push_replacement(t, 1, repl, repl_len);
        } else {
            rc = nchange_push(t, cp, 0);
        }
        if (rc)
            return rc;
        i += l;
    }
    return 0;
}

static int apply(const void *state, struct nstr *ns, struct err *e)
{
    const struct precompiled *p = state;
    struct nchange_vec t = {0};
    bool modified = false;
    int rc = 0;
    /* Extended grapheme clusters (UAX #29) as unicode-segmentation's graphemes(true). */
    utf8proc_int32_t gstate = 0;
    uint32_t prev = 0;
    size_t start = 0;
    for (size_t i = 0; i < ns->len && rc == 0;) {
        size_t l;
        uint32_t cp = utf8_decode(ns->s + i, &l);
        if (i > 0 && utf8proc_grapheme_break_stateful((utf8proc_int32_t)prev, (utf8proc_int32_t)cp,
                                                      &gstate)) {
            rc = grapheme_steps(p, ns->s + start, i - start, &t, &modified);
            start = i;
        }
        prev = cp;
        i += l;
    }
    if (rc == 0 && start < ns->len)
        rc = grapheme_steps(p, ns->s + start, ns->len - start, &t, &modified);
    if (rc == 0 && modified)
        rc = nstr_transform(ns, t.v, t.n, 0);
    nchange_vec_fini(&t);
    if (rc)
        return err_set(e, rc, "normalizer Precompiled: out of memory");
    return 0;
}

static void free_state(void *state)
{
    precompiled_free(state);
}

const struct normalizer_ops normalizer_precompiled_ops = {"Precompiled", parse, apply, free_state};
