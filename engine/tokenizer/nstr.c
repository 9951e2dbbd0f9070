/* nstr: HF NormalizedString in C; see nstr.h. Alignments are kept in absolute
 * original byte offsets, so a slice is a plain copy and a token's original range is
 * (align[first].start, align[last].end), as HF's convert_offsets + original_shift. */
#include "nstr.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "utf8.h"

/* Grows a vector of elem-byte items to hold at least need items. */
static int grow(void **v, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 16;
    while (n < need)
        n *= 2;
    void *nv = realloc(*v, n * elem);
    if (!nv)
        return ERR_NOMEM;
    *v = nv;
    *cap = n;
    return 0;
}

static int reserve(struct nstr *ns, size_t need)
{
    if (need + 1 <= ns->cap)
        return 0;
    size_t n = ns->cap ? ns->cap * 2 : 32;
    while (n < need + 1)
        n *= 2;
    char *s = realloc(ns->s, n);
    if (!s)
        return ERR_NOMEM;
    ns->s = s;
    struct nspan *a = realloc(ns->align, n * sizeof *a);
    if (!a)
        return ERR_NOMEM;
    ns->align = a;
    ns->cap = n;
    return 0;
}

int nstr_init(struct nstr *ns, const char *text, size_t len, uint32_t base)
{
    memset(ns, 0, sizeof *ns);
    if (len >= UINT32_MAX - (uint32_t)base) /* offsets are 32-bit */
        return ERR_TOO_LARGE;
    if (reserve(ns, len))
        return ERR_NOMEM;
    memcpy(ns->s, text, len);
    ns->s[len] = '\0';
    ns->len = len;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_len((unsigned char)text[i]);
        if (i + n > len)
            n = len - i;
        for (size_t k = 0; k < n; k++)
            ns->align[i + k] = (struct nspan){base + (uint32_t)i, base + (uint32_t)(i + n)};
        i += n;
    }
    ns->orig_start = base;
    ns->orig_end = base + (uint32_t)len;
    return 0;
}

void nstr_fini(struct nstr *ns)
{
    if (!ns)
        return;
    free(ns->s);
    free(ns->align);
    memset(ns, 0, sizeof *ns);
}

void nstr_move(struct nstr *dst, struct nstr *src)
{
    *dst = *src;
    memset(src, 0, sizeof *src);
}

struct nspan nstr_original_span(const struct nstr *ns, size_t start, size_t end)
{
    /* HF convert_offsets(Range::Normalized): an empty range maps to itself
     * (relative to the string's own original start); otherwise first start .. last end. */
    if (start >= end || end > ns->len) {
        if (ns->len == 0 && start == 0 && end == 0)
            return (struct nspan){ns->orig_start, ns->orig_end};
        return (struct nspan){ns->orig_start + (uint32_t)start, ns->orig_start + (uint32_t)end};
    }
    return (struct nspan){ns->align[start].start, ns->align[end - 1].end};
}

int nstr_slice(const struct nstr *src, size_t start, size_t end, struct nstr *dst)
{
    memset(dst, 0, sizeof *dst);
    if (start > end || end > src->len)
        return ERR_INTERNAL;
    size_t n = end - start;
    if (reserve(dst, n))
        return ERR_NOMEM;
    memcpy(dst->s, src->s + start, n);
    dst->s[n] = '\0';
    memcpy(dst->align, src->align + start, n * sizeof *dst->align);
    dst->len = n;
    struct nspan o = nstr_original_span(src, start, end);
    dst->orig_start = o.start;
    dst->orig_end = o.end;
    return 0;
}

/* The core of every transformation (HF transform_range): new text and alignments
 * for [start, end) are built into a scratch string and spliced in. */
int nstr_transform_range(struct nstr *ns, size_t start, size_t end, const struct nchange *dest,
                         size_t n, size_t initial_offset)
{
    if (start > end || end > ns->len)
        return ERR_INTERNAL;
    size_t out_bytes = 0;
    for (size_t i = 0; i < n; i++)
        out_bytes += utf8_cp_len(dest[i].cp);
    char *buf = malloc(out_bytes + 1);
    struct nspan *al = malloc((out_bytes + 1) * sizeof *al);
    if (!buf || !al) {
        free(buf);
        free(al);
        return ERR_NOMEM;
    }
    /* `pos` walks the replaced chars of [start, end) as HF's replaced_normalized. */
    size_t pos = start;
    for (size_t k = 0; k < initial_offset && pos < end; k++)
        pos += utf8_len((unsigned char)ns->s[pos]);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        struct nspan a;
        int32_t change = dest[i].change;
        if (change > 0) {
            /* Inserted: aligned like the byte before it (or the empty start). */
            a = pos < 1 ? (struct nspan){ns->orig_start, ns->orig_start} : ns->align[pos - 1];
        } else {
            a = pos < ns->len
                    ? ns->align[pos]
                    : (pos ? ns->align[pos - 1] : (struct nspan){ns->orig_start, ns->orig_start});
            if (pos < end)
                pos += utf8_len((unsigned char)ns->s[pos]);
            for (int32_t r = 0; r < -change && pos < end; r++)
                pos += utf8_len((unsigned char)ns->s[pos]);
        }
        size_t cl = utf8_encode(dest[i].cp, buf + w);
        for (size_t k = 0; k < cl; k++)
            al[w + k] = a;
        w += cl;
    }
    /* Splice buf into [start, end). */
    size_t new_len = ns->len - (end - start) + w;
    int rc = reserve(ns, new_len);
    if (rc == 0) {
        memmove(ns->s + start + w, ns->s + end, ns->len - end);
        memmove(ns->align + start + w, ns->align + end, (ns->len - end) * sizeof *ns->align);
        memcpy(ns->s + start, buf, w);
        memcpy(ns->align + start, al, w * sizeof *al);
        ns->len = new_len;
        ns->s[new_len] = '\0';
    }
    free(buf);
    free(al);
    return rc;
}

int nstr_transform(struct nstr *ns, const struct nchange *dest, size_t n, size_t initial_offset)
{
    return nstr_transform_range(ns, 0, ns->len, dest, n, initial_offset);
}

int nstr_map(struct nstr *ns, uint32_t (*fn)(uint32_t cp, void *ctx), void *ctx)
{
    struct nchange_vec v = {0};
    int rc = 0;
    for (size_t i = 0; i < ns->len && rc == 0;) {
        size_t l;
        uint32_t cp = utf8_decode(ns->s + i, &l);
        rc = nchange_push(&v, fn(cp, ctx), 0);
        i += l;
    }
    if (rc == 0)
        rc = nstr_transform(ns, v.v, v.n, 0);
    nchange_vec_fini(&v);
    return rc;
}

int nstr_filter(struct nstr *ns, bool (*keep)(uint32_t cp, void *ctx), void *ctx)
{
    /* HF filter: each kept char carries the count of removed chars that follow it;
     * removed chars before the first kept one become the initial offset. */
    struct nchange_vec v = {0};
    int32_t removed = 0;
    size_t removed_start = 0;
    bool have_last = false;
    uint32_t last = 0;
    int rc = 0;
    for (size_t i = 0; i < ns->len && rc == 0;) {
        size_t l;
        uint32_t cp = utf8_decode(ns->s + i, &l);
        i += l;
        if (keep(cp, ctx)) {
            if (have_last)
                rc = nchange_push(&v, last, -removed);
            else
                removed_start = (size_t)removed;
            last = cp;
            have_last = true;
            removed = 0;
        } else {
            removed++;
        }
    }
    if (rc == 0 && have_last)
        rc = nchange_push(&v, last, -removed);
    if (rc == 0)
        rc = nstr_transform(ns, v.v, v.n, have_last ? removed_start : (size_t)removed);
    nchange_vec_fini(&v);
    return rc;
}

int nstr_prepend(struct nstr *ns, const char *s)
{
    if (ns->len == 0)
        return 0;
    struct nchange_vec v = {0};
    int rc = 0;
    size_t i = 0, sl = strlen(s);
    for (size_t k = 0; i < sl && rc == 0; k++) {
        size_t l;
        uint32_t cp = utf8_decode(s + i, &l);
        rc = nchange_push(&v, cp, k != 0);
        i += l;
    }
    size_t first_len;
    uint32_t first = utf8_decode(ns->s, &first_len);
    if (rc == 0)
        rc = nchange_push(&v, first, 1);
    if (rc == 0)
        rc = nstr_transform_range(ns, 0, first_len, v.v, v.n, 0);
    nchange_vec_fini(&v);
    return rc;
}

int nstr_append(struct nstr *ns, const char *s)
{
    struct nchange_vec v = {0};
    int rc = 0;
    size_t from = ns->len;
    if (ns->len) {
        from = ns->len - 1;
        while (from > 0 && (((unsigned char)ns->s[from]) & 0xC0) == 0x80)
            from--;
        rc = nchange_push(&v, utf8_decode(ns->s + from, NULL), 0);
    }
    for (size_t i = 0, sl = strlen(s); i < sl && rc == 0;) {
        size_t l;
        uint32_t cp = utf8_decode(s + i, &l);
        rc = nchange_push(&v, cp, 1);
        i += l;
    }
    if (rc == 0)
        rc = nstr_transform_range(ns, from, ns->len, v.v, v.n, 0);
    nchange_vec_fini(&v);
    return rc;
}

/* Whitespace as Rust's char::is_whitespace (declared in unicode.h). */
bool uni_is_whitespace(uint32_t cp);

int nstr_lrstrip(struct nstr *ns, bool left, bool right)
{
    size_t n_chars = utf8_count(ns->s, ns->len);
    size_t lead = 0, trail = 0;
    if (left)
        for (size_t i = 0; i < ns->len;) {
            size_t l;
            if (!uni_is_whitespace(utf8_decode(ns->s + i, &l)))
                break;
            lead++;
            i += l;
        }
    if (right && lead < n_chars)
        for (size_t i = ns->len; i > 0;) {
            size_t j = i - 1;
            while (j > 0 && (((unsigned char)ns->s[j]) & 0xC0) == 0x80)
                j--;
            if (!uni_is_whitespace(utf8_decode(ns->s + j, NULL)))
                break;
            trail++;
            i = j;
        }
    if (lead == 0 && trail == 0)
        return 0;
    struct nchange_vec v = {0};
    int rc = 0;
    size_t ci = 0;
    for (size_t i = 0; i < ns->len && rc == 0; ci++) {
        size_t l;
        uint32_t cp = utf8_decode(ns->s + i, &l);
        i += l;
        if (ci < lead || ci >= n_chars - trail)
            continue;
        rc = nchange_push(&v, cp, ci == n_chars - trail - 1 ? -(int32_t)trail : 0);
    }
    if (rc == 0)
        rc = nstr_transform(ns, v.v, v.n, lead);
    nchange_vec_fini(&v);
    return rc;
}

int nstr_replace(struct nstr *ns, const struct nmatch_vec *m, const char *content)
{
    /* HF replace: every char of content is an insertion (+1) placed after the
     * removed match, so it takes the alignment of the match's last byte. */
    size_t clen = strlen(content);
    size_t cap = ns->len + 1;
    for (size_t i = 0; i < m->n; i++)
        if (m->v[i].is_match)
            cap += clen;
    char *s = malloc(cap);
    struct nspan *al = malloc(cap * sizeof *al);
    if (!s || !al) {
        free(s);
        free(al);
        return ERR_NOMEM;
    }
    size_t w = 0, last_end = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (!m->v[i].is_match)
            continue;
        size_t ms = m->v[i].start, me = m->v[i].end;
        memcpy(s + w, ns->s + last_end, ms - last_end);
        memcpy(al + w, ns->align + last_end, (ms - last_end) * sizeof *al);
        w += ms - last_end;
        struct nspan a =
            me < 1 ? (struct nspan){ns->orig_start, ns->orig_start} : ns->align[me - 1];
        memcpy(s + w, content, clen);
        for (size_t k = 0; k < clen; k++)
            al[w + k] = a;
        w += clen;
        last_end = me;
    }
    memcpy(s + w, ns->s + last_end, ns->len - last_end);
    memcpy(al + w, ns->align + last_end, (ns->len - last_end) * sizeof *al);
    w += ns->len - last_end;
    s[w] = '\0';
    free(ns->s);
    free(ns->align);
    ns->s = s;
    ns->align = al;
    ns->len = w;
    ns->cap = cap;
    return 0;
}

int nstr_find_char(const struct nstr *ns, bool (*pred)(uint32_t cp, void *ctx), void *ctx,
                   struct nmatch_vec *out)
{
    out->n = 0;
    if (ns->len == 0)
        return nmatch_push(out, 0, 0, false);
    size_t last = 0;
    for (size_t i = 0; i < ns->len;) {
        size_t l;
        uint32_t cp = utf8_decode(ns->s + i, &l);
        if (pred(cp, ctx)) {
            if (last < i && nmatch_push(out, (uint32_t)last, (uint32_t)i, false))
                return ERR_NOMEM;
            if (nmatch_push(out, (uint32_t)i, (uint32_t)(i + l), true))
                return ERR_NOMEM;
            last = i + l;
        }
        i += l;
    }
    if (last < ns->len && nmatch_push(out, (uint32_t)last, (uint32_t)ns->len, false))
        return ERR_NOMEM;
    return 0;
}

int nstr_find_string(const struct nstr *ns, const char *lit, size_t lit_len, struct nmatch_vec *out)
{
    out->n = 0;
    if (lit_len == 0) /* HF: the whole string as one non-match (chars count, a quirk) */
        return nmatch_push(out, 0, (uint32_t)utf8_count(ns->s, ns->len), false);
    if (ns->len == 0)
        return nmatch_push(out, 0, 0, false);
    size_t prev = 0, i = 0;
    while (i + lit_len <= ns->len) {
        const char *hit = memmem(ns->s + i, ns->len - i, lit, lit_len);
        if (!hit)
            break;
        size_t at = (size_t)(hit - ns->s);
        if (prev != at && nmatch_push(out, (uint32_t)prev, (uint32_t)at, false))
            return ERR_NOMEM;
        if (nmatch_push(out, (uint32_t)at, (uint32_t)(at + lit_len), true))
            return ERR_NOMEM;
        prev = i = at + lit_len;
    }
    if (prev != ns->len && nmatch_push(out, (uint32_t)prev, (uint32_t)ns->len, false))
        return ERR_NOMEM;
    return 0;
}

int nstr_find_regex(const struct nstr *ns, const struct pcre2_real_code_8 *re,
                    struct nmatch_vec *out)
{
    out->n = 0;
    if (ns->len == 0)
        return nmatch_push(out, 0, 0, false);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md)
        return ERR_NOMEM;
    int rc = 0;
    size_t prev = 0, at = 0, last_end = 0;
    bool have_last = false;
    const PCRE2_SPTR subj = (PCRE2_SPTR)ns->s;
    while (at <= ns->len) {
        int r = pcre2_match(re, subj, ns->len, at, PCRE2_NO_UTF_CHECK, md, NULL);
        if (r == PCRE2_ERROR_NOMATCH)
            break;
        if (r < 0) {
            rc = ERR_INTERNAL;
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (me == ms) {
            /* Empty match: find_iter never reports one right where the previous match
             * ended; others still split the string. Either way move on one char. */
            bool skip = have_last && ms == last_end;
            if (!skip) {
                if (prev != ms && nmatch_push(out, (uint32_t)prev, (uint32_t)ms, false)) {
                    rc = ERR_NOMEM;
                    break;
                }
                if (nmatch_push(out, (uint32_t)ms, (uint32_t)me, true)) {
                    rc = ERR_NOMEM;
                    break;
                }
                prev = me;
                have_last = true;
                last_end = me;
            }
            if (ms >= ns->len)
                break;
            at = ms + utf8_len((unsigned char)ns->s[ms]);
            continue;
        }
        if (prev != ms && nmatch_push(out, (uint32_t)prev, (uint32_t)ms, false)) {
            rc = ERR_NOMEM;
            break;
        }
        if (nmatch_push(out, (uint32_t)ms, (uint32_t)me, true)) {
            rc = ERR_NOMEM;
            break;
        }
        prev = at = me;
        have_last = true;
        last_end = me;
    }
    if (rc == 0 && prev != ns->len && nmatch_push(out, (uint32_t)prev, (uint32_t)ns->len, false))
        rc = ERR_NOMEM;
    pcre2_match_data_free(md);
    return rc;
}

void nmatch_invert(struct nmatch_vec *m)
{
    for (size_t i = 0; i < m->n; i++)
        m->v[i].is_match = !m->v[i].is_match;
}

int nstr_split(const struct nstr *ns, const struct nmatch_vec *m, enum split_behavior behavior,
               struct nstr_vec *out)
{
    /* Turn matches into (range, remove) pieces per behaviour, then slice. */
    struct nmatch_vec p = {0};
    int rc = 0;
    bool prev_match = false;
    switch (behavior) {
    case SPLIT_ISOLATED:
    case SPLIT_REMOVED:
        for (size_t i = 0; i < m->n && rc == 0; i++)
            rc = nmatch_push(&p, m->v[i].start, m->v[i].end,
                             behavior == SPLIT_REMOVED && m->v[i].is_match);
        break;
    case SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < m->n && rc == 0; i++) {
            if (m->v[i].is_match == prev_match && p.n)
                p.v[p.n - 1].end = m->v[i].end;
            else
                rc = nmatch_push(&p, m->v[i].start, m->v[i].end, false);
            prev_match = m->v[i].is_match;
        }
        break;
    case SPLIT_MERGED_WITH_PREVIOUS:
        for (size_t i = 0; i < m->n && rc == 0; i++) {
            if (m->v[i].is_match && !prev_match && p.n)
                p.v[p.n - 1].end = m->v[i].end;
            else
                rc = nmatch_push(&p, m->v[i].start, m->v[i].end, false);
            prev_match = m->v[i].is_match;
        }
        break;
    case SPLIT_MERGED_WITH_NEXT:
        for (size_t i = m->n; i-- > 0 && rc == 0;) {
            if (m->v[i].is_match && !prev_match && p.n)
                p.v[p.n - 1].start = m->v[i].start;
            else
                rc = nmatch_push(&p, m->v[i].start, m->v[i].end, false);
            prev_match = m->v[i].is_match;
        }
        for (size_t i = 0; i < p.n / 2; i++) {
            struct nmatch t = p.v[i];
            p.v[i] = p.v[p.n - 1 - i];
            p.v[p.n - 1 - i] = t;
        }
        break;
    }
    for (size_t i = 0; i < p.n && rc == 0; i++) {
        if (p.v[i].is_match || p.v[i].start == p.v[i].end)
            continue;
        struct nstr piece;
        rc = nstr_slice(ns, p.v[i].start, p.v[i].end, &piece);
        if (rc == 0 && (rc = nstr_vec_push(out, &piece)) != 0)
            nstr_fini(&piece);
    }
    nmatch_vec_fini(&p);
    return rc;
}

int nchange_push(struct nchange_vec *v, uint32_t cp, int32_t change)
{
    if (grow((void **)&v->v, &v->cap, v->n + 1, sizeof *v->v))
        return ERR_NOMEM;
    v->v[v->n++] = (struct nchange){cp, change};
    return 0;
}

void nchange_vec_fini(struct nchange_vec *v)
{
    free(v->v);
    memset(v, 0, sizeof *v);
}

int nmatch_push(struct nmatch_vec *v, uint32_t start, uint32_t end, bool is_match)
{
    if (grow((void **)&v->v, &v->cap, v->n + 1, sizeof *v->v))
        return ERR_NOMEM;
    v->v[v->n++] = (struct nmatch){start, end, is_match};
    return 0;
}

void nmatch_vec_fini(struct nmatch_vec *v)
{
    free(v->v);
    memset(v, 0, sizeof *v);
}

int nstr_vec_push(struct nstr_vec *v, struct nstr *ns)
{
    if (grow((void **)&v->v, &v->cap, v->n + 1, sizeof *v->v))
        return ERR_NOMEM;
    nstr_move(&v->v[v->n++], ns);
    return 0;
}

void nstr_vec_fini(struct nstr_vec *v)
{
    for (size_t i = 0; i < v->n; i++)
        nstr_fini(&v->v[i]);
    free(v->v);
    memset(v, 0, sizeof *v);
}
