/* decode: the table of decoders (HF tokenizers src/decoders plus the decoder halves of
 * ByteLevel, Metaspace and Replace). A decoder turns the token strings of some ids back
 * into text: decode_chain rewrites the list of strings (it may merge or drop entries),
 * then decoder_decode joins what is left. Every row reproduces HF's string operations
 * exactly, including Rust's from_utf8_lossy and str::replace semantics. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "tok.h"
#include "utf8.h"

#define REPLACEMENT_CHAR "\xEF\xBF\xBD" /* U+FFFD, what HF emits for undecodable bytes */

/* ---- string vectors ---- */

/* Decoded pieces may hold NUL bytes ("<0x00>", byte-level 'Ā'), so every string of a
 * strvec carries its length in a size_t stored just before its first byte; the strings
 * stay NUL-terminated for readers that do not care. Only strvec_push, strvec_fini and
 * this file make or free them. */
#define LEN_HDR sizeof(size_t)

static size_t tok_len(const char *s)
{
    size_t n;
    memcpy(&n, s - LEN_HDR, sizeof n);
    return n;
}

static void tok_set_len(char *s, size_t n)
{
    memcpy(s - LEN_HDR, &n, sizeof n);
    s[n] = '\0';
}

static void tok_free(char *s)
{
    if (s)
        free(s - LEN_HDR);
}

int strvec_push(struct strvec *v, const char *s, size_t len)
{
    if (v->n == v->cap) {
        size_t c = v->cap ? v->cap * 2 : 16;
        char **nv = realloc(v->v, c * sizeof *nv);
        if (!nv)
            return ERR_NOMEM;
        v->v = nv;
        v->cap = c;
    }
    char *block = malloc(LEN_HDR + len + 1);
    if (!block)
        return ERR_NOMEM;
    char *copy = block + LEN_HDR;
    if (len)
        memcpy(copy, s, len);
    tok_set_len(copy, len);
    v->v[v->n++] = copy;
    return 0;
}

void strvec_fini(struct strvec *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++)
        tok_free(v->v[i]);
    free(v->v);
    memset(v, 0, sizeof *v);
}

/* ---- a growable byte buffer, laid out as a strvec string so it can be handed over ---- */

struct sbuf {
    char *s; /* the block: LEN_HDR bytes, then the data */
    size_t n, cap;
};

static int sbuf_add(struct sbuf *b, const char *s, size_t len)
{
    if (LEN_HDR + b->n + len + 1 > b->cap) {
        size_t c = b->cap ? b->cap * 2 : 64;
        while (c < LEN_HDR + b->n + len + 1)
            c *= 2;
        char *ns = realloc(b->s, c);
        if (!ns)
            return ERR_NOMEM;
        b->s = ns;
        b->cap = c;
    }
    if (len)
        memcpy(b->s + LEN_HDR + b->n, s, len);
    b->n += len;
    b->s[LEN_HDR + b->n] = '\0';
    return 0;
}

static const char *sbuf_data(const struct sbuf *b)
{
    return b->s ? b->s + LEN_HDR : "";
}

/* Hands the buffer over as a strvec string (never NULL on success). */
static char *sbuf_take(struct sbuf *b)
{
    if (!b->s && sbuf_add(b, "", 0))
        return NULL;
    char *s = b->s + LEN_HDR;
    tok_set_len(s, b->n);
    memset(b, 0, sizeof *b);
    return s;
}

/* Replaces tokens->v[i] by the buffer's contents. */
static int set_token(struct strvec *tokens, size_t i, struct sbuf *b)
{
    char *s = sbuf_take(b);
    if (!s)
        return ERR_NOMEM;
    tok_free(tokens->v[i]);
    tokens->v[i] = s;
    return 0;
}

/* Appends s with every occurrence of pat replaced, as Rust's str::replace: leftmost,
 * non-overlapping; an empty pattern matches at every char boundary (both ends too). */
static int add_replaced(struct sbuf *b, const char *s, size_t len, const char *pat, size_t pat_len,
                        const char *rep, size_t rep_len)
{
    if (pat_len == 0) {
        for (size_t i = 0; i < len;) {
            size_t n = utf8_len((unsigned char)s[i]);
            if (n > len - i)
                n = len - i;
            if (sbuf_add(b, rep, rep_len) || sbuf_add(b, s + i, n))
                return ERR_NOMEM;
            i += n;
        }
        return sbuf_add(b, rep, rep_len);
    }
    size_t i = 0;
    for (;;) {
        const char *hit = memmem(s + i, len - i, pat, pat_len);
        if (!hit)
            break;
        size_t at = (size_t)(hit - s);
        if (sbuf_add(b, s + i, at - i) || sbuf_add(b, rep, rep_len))
            return ERR_NOMEM;
        i = at + pat_len;
    }
    return sbuf_add(b, s + i, len - i);
}

/* Rewrites one token in place with str::replace semantics. */
static int replace_in_token(struct strvec *tokens, size_t i, const char *pat, const char *rep)
{
    const char *t = tokens->v[i];
    size_t len = tok_len(t), pat_len = strlen(pat);
    if (pat_len && !memmem(t, len, pat, pat_len))
        return 0;
    struct sbuf b = {0};
    if (add_replaced(&b, t, len, pat, pat_len, rep, strlen(rep)) || set_token(tokens, i, &b)) {
        free(b.s);
        return ERR_NOMEM;
    }
    return 0;
}

/* HF decoders/wordpiece.rs cleanup (also used by CTC): undoes the spaces the
 * tokenization put before punctuation and English contractions. */
static const char *const cleanup_rules[][2] = {
    {" .", "."},   {" ?", "?"},     {" !", "!"},     {" ,", ","},
    {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"},   {" do not", " don't"},
    {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
};

static int cleanup_token(struct strvec *tokens, size_t i)
{
    for (size_t r = 0; r < sizeof cleanup_rules / sizeof cleanup_rules[0]; r++) {
        int rc = replace_in_token(tokens, i, cleanup_rules[r][0], cleanup_rules[r][1]);
        if (rc)
            return rc;
    }
    return 0;
}

/* Rust String::from_utf8_lossy: valid sequences are kept, each maximal invalid
 * subpart (the longest prefix of a would-be valid sequence, at least one byte)
 * becomes one U+FFFD. */
static int add_utf8_lossy(struct sbuf *b, const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t need = 0;
        unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c < 0x80)
            need = 1;
        else if (c >= 0xC2 && c <= 0xDF)
            need = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 3;
            lo = c == 0xE0 ? 0xA0 : 0x80;
            hi = c == 0xED ? 0x9F : 0xBF;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 4;
            lo = c == 0xF0 ? 0x90 : 0x80;
            hi = c == 0xF4 ? 0x8F : 0xBF;
        }
        size_t got = need ? 1 : 0;
        if (need > 1 && i + 1 < len && s[i + 1] >= lo && s[i + 1] <= hi) {
            got = 2;
            while (got < need && i + got < len && s[i + got] >= 0x80 && s[i + got] <= 0xBF)
                got++;
        }
        int rc;
        if (need && got == need) {
            rc = sbuf_add(b, (const char *)s + i, need);
            i += need;
        } else {
            rc = sbuf_add(b, REPLACEMENT_CHAR, 3);
            i += got ? got : 1;
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* Strict UTF-8 check (String::from_utf8). */
static bool is_utf8(const char *s, size_t len)
{
    return utf8_validate(s, len) == len;
}

/* Reads a one-character string field (a Rust `char`) as a code point. */
static int json_char(const json_t *j, const char *key, uint32_t *out, char utf8[5],
                     const char *where, struct err *e)
{
    const char *s = NULL;
    int rc = tokj_str(j, key, true, &s, where, e);
    if (rc)
        return rc;
    size_t len = strlen(s), n = 0;
    if (len == 0 || len > 4 || !is_utf8(s, len) || (utf8_decode(s, &n), n != len))
        return err_set(e, ERR_FORMAT, "%s: field '%s' must be a single character", where, key);
    *out = utf8_decode(s, NULL);
    memcpy(utf8, s, len + 1);
    return 0;
}

static int json_count(const json_t *j, const char *key, size_t *out, const char *where,
                      struct err *e)
{
    long long v = 0;
    int rc = tokj_int(j, key, true, &v, where, e);
    if (rc)
        return rc;
    if (v < 0)
        return err_set(e, ERR_FORMAT, "%s: field '%s' must not be negative", where, key);
    *out = (size_t)v;
    return 0;
}

static int nomem(struct err *e)
{
    return err_set(e, ERR_NOMEM, "out of memory");
}

/* Parse helper for rows whose state is one malloc'ed struct. */
static void *state_alloc(size_t size, struct err *e)
{
    void *p = calloc(1, size);
    if (!p)
        nomem(e);
    return p;
}

/* ---- WordPiece ---- */

struct wordpiece {
    char *prefix;
    bool cleanup;
};

static void wordpiece_free(void *state)
{
    struct wordpiece *w = state;
    if (w)
        free(w->prefix);
    free(w);
}

static int wordpiece_parse(const json_t *j, void **state, struct err *e)
{
    const char *where = "decoder WordPiece";
    const char *prefix = NULL;
    bool cleanup = true;
    int rc = tokj_str(j, "prefix", true, &prefix, where, e);
    if (rc == 0)
        rc = tokj_bool(j, "cleanup", true, &cleanup, where, e);
    if (rc)
        return rc;
    struct wordpiece *w = state_alloc(sizeof *w, e);
    if (!w)
        return ERR_NOMEM;
    w->cleanup = cleanup;
    if (!(w->prefix = strdup(prefix))) {
        wordpiece_free(w);
        return nomem(e);
    }
    *state = w;
    return 0;
}

/* Tokens after the first get a space unless they continue a word (prefix). */
static int wordpiece_chain(const void *state, struct strvec *tokens, struct err *e)
{
    const struct wordpiece *w = state;
    size_t plen = strlen(w->prefix);
    for (size_t i = 0; i < tokens->n; i++) {
        if (i != 0) {
            const char *t = tokens->v[i];
            size_t len = tok_len(t);
            struct sbuf b = {0};
            int rc = len >= plen && memcmp(t, w->prefix, plen) == 0
                         ? sbuf_add(&b, t + plen, len - plen)
                         : (sbuf_add(&b, " ", 1) || sbuf_add(&b, t, len));
            if (rc || set_token(tokens, i, &b)) {
                free(b.s);
                return nomem(e);
            }
        }
        if (w->cleanup && cleanup_token(tokens, i))
            return nomem(e);
    }
    return 0;
}

/* ---- ByteLevel ---- */

/* GPT-2's byte-to-unicode table, inverted: the code points it uses are all below
 * 0x144; entry cp holds the byte it stands for, or -1. */
#define BYTE_CHARS_END 0x144

struct bytelevel {
    int16_t byte_of[BYTE_CHARS_END];
};

static bool printable_byte(unsigned b)
{
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

static int bytelevel_parse(const json_t *j, void **state, struct err *e)
{
    const char *where = "decoder ByteLevel";
    bool flag = false;
    /* Only read for validation: HF requires them although decoding ignores them. */
    int rc = tokj_bool(j, "add_prefix_space", true, &flag, where, e);
    if (rc == 0)
        rc = tokj_bool(j, "trim_offsets", true, &flag, where, e);
    if (rc == 0)
        rc = tokj_bool(j, "use_regex", false, &flag, where, e);
    if (rc)
        return rc;
    struct bytelevel *bl = state_alloc(sizeof *bl, e);
    if (!bl)
        return ERR_NOMEM;
    for (size_t i = 0; i < BYTE_CHARS_END; i++)
        bl->byte_of[i] = -1;
    unsigned n = 0;
    for (unsigned b = 0; b < 256; b++)
        bl->byte_of[printable_byte(b) ? b : 256 + n++] = (int16_t)b;
    *state = bl;
    return 0;
}

/* All tokens become one string: each token is mapped back to bytes (a token with
 * a char outside the table, e.g. an added token with a space, keeps its own bytes),
 * then the bytes are decoded with from_utf8_lossy. */
static int bytelevel_chain(const void *state, struct strvec *tokens, struct err *e)
{
    const struct bytelevel *bl = state;
    struct sbuf raw = {0}, text = {0};
    int rc = 0;
    for (size_t i = 0; i < tokens->n && rc == 0; i++) {
        const char *t = tokens->v[i];
        size_t len = tok_len(t), start = raw.n;
        bool mapped = true;
        for (size_t k = 0; k < len && mapped && rc == 0;) {
            size_t n = utf8_len((unsigned char)t[k]);
            uint32_t cp = n <= len - k ? utf8_decode(t + k, &n) : UINT32_MAX;
            if (cp < BYTE_CHARS_END && bl->byte_of[cp] >= 0) {
                char byte = (char)(unsigned char)bl->byte_of[cp];
                rc = sbuf_add(&raw, &byte, 1);
            } else {
                mapped = false;
            }
            k += n;
        }
        if (!mapped && rc == 0) {
            raw.n = start;
            rc = sbuf_add(&raw, t, len);
        }
    }
    if (rc == 0)
        rc = add_utf8_lossy(&text, (const unsigned char *)sbuf_data(&raw), raw.n);
    if (rc == 0) {
        /* Reuse the first slot (or make one) for the single output string. */
        for (size_t i = 1; i < tokens->n; i++)
            tok_free(tokens->v[i]);
        if (tokens->n == 0)
            rc = strvec_push(tokens, "", 0);
        else
            tokens->n = 1;
        if (rc == 0)
            rc = set_token(tokens, 0, &text);
    }
    free(raw.s);
    free(text.s);
    return rc ? nomem(e) : 0;
}

/* ---- Metaspace ---- */

enum prepend_scheme { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER };

struct metaspace {
    char rep[5]; /* the replacement char, UTF-8 */
    size_t rep_len;
    enum prepend_scheme scheme;
};

static int metaspace_parse(const json_t *j, void **state, struct err *e)
{
    const char *where = "decoder Metaspace";
    uint32_t cp;
    char rep[5];
    const char *scheme = NULL;
    bool add_prefix_space = true, split = true;
    int rc = json_char(j, "replacement", &cp, rep, where, e);
    if (rc == 0)
        rc = tokj_str(j, "prepend_scheme", false, &scheme, where, e);
    if (rc == 0)
        rc = tokj_bool(j, "add_prefix_space", false, &add_prefix_space, where, e);
    if (rc == 0)
        rc = tokj_bool(j, "split", false, &split, where, e);
    if (rc)
        return rc;
    enum prepend_scheme ps = PREPEND_ALWAYS;
    if (scheme && strcmp(scheme, "first") == 0)
        ps = PREPEND_FIRST;
    else if (scheme && strcmp(scheme, "never") == 0)
        ps = PREPEND_NEVER;
    else if (scheme && strcmp(scheme, "always") != 0)
        return err_set(e, ERR_FORMAT,
                       "%s: field 'prepend_scheme' must be \"always\", \"first\" or \"never\"",
                       where);
    /* Old files say add_prefix_space: false, which only agrees with "never". */
    if (!add_prefix_space && ps != PREPEND_NEVER)
        return err_set(e, ERR_FORMAT,
                       "%s: field 'add_prefix_space' does not match 'prepend_scheme'", where);
    struct metaspace *m = state_alloc(sizeof *m, e);
    if (!m)
        return ERR_NOMEM;
    memcpy(m->rep, rep, sizeof rep);
    m->rep_len = strlen(rep);
    m->scheme = ps;
    *state = m;
    return 0;
}

/* The replacement becomes a space, except in the first token, where every
 * replacement is dropped unless the scheme is "never". */
static int metaspace_chain(const void *state, struct strvec *tokens, struct err *e)
{
    const struct metaspace *m = state;
    for (size_t i = 0; i < tokens->n; i++) {
        const char *space = i == 0 && m->scheme != PREPEND_NEVER ? "" : " ";
        if (replace_in_token(tokens, i, m->rep, space))
            return nomem(e);
    }
    return 0;
}

/* ---- ByteFallback ---- */

/* Parses "<0xXX>" as HF does: six bytes, "<0x" + two chars u8::from_str_radix
 * accepts in base 16 (which allows a leading '+') + ">". */
static bool byte_token(const char *t, size_t len, unsigned char *out)
{
    if (len != 6 || strncmp(t, "<0x", 3) != 0 || t[5] != '>')
        return false;
    const char *d = t + 3;
    size_t nd = 2;
    if (d[0] == '+') {
        d++;
        nd = 1;
    }
    unsigned v = 0;
    for (size_t k = 0; k < nd; k++) {
        char c = d[k];
        unsigned x;
        if (c >= '0' && c <= '9')
            x = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            x = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            x = (unsigned)(c - 'A' + 10);
        else
            return false;
        v = v * 16 + x;
    }
    *out = (unsigned char)v;
    return true;
}

/* Flushes a run of byte tokens: one string if the run is valid UTF-8, else one
 * U+FFFD per byte. */
static int flush_bytes(struct strvec *out, struct sbuf *run)
{
    int rc = 0;
    if (run->n && is_utf8(sbuf_data(run), run->n))
        rc = strvec_push(out, sbuf_data(run), run->n);
    else
        for (size_t k = 0; k < run->n && rc == 0; k++)
            rc = strvec_push(out, REPLACEMENT_CHAR, 3);
    run->n = 0;
    return rc;
}

static int bytefallback_chain(const void *state, struct strvec *tokens, struct err *e)
{
    (void)state;
    struct strvec out = {0};
    struct sbuf run = {0};
    int rc = 0;
    for (size_t i = 0; i < tokens->n && rc == 0; i++) {
        unsigned char byte;
        if (byte_token(tokens->v[i], tok_len(tokens->v[i]), &byte)) {
            rc = sbuf_add(&run, (const char *)&byte, 1);
            continue;
        }
        rc = flush_bytes(&out, &run);
        if (rc == 0)
            rc = strvec_push(&out, tokens->v[i], tok_len(tokens->v[i]));
    }
    if (rc == 0)
        rc = flush_bytes(&out, &run);
    free(run.s);
    if (rc) {
        strvec_fini(&out);
        return nomem(e);
    }
    strvec_fini(tokens);
    *tokens = out;
    return 0;
}

/* ---- Fuse ---- */

static int fuse_chain(const void *state, struct strvec *tokens, struct err *e)
{
    (void)state;
    struct sbuf b = {0};
    for (size_t i = 0; i < tokens->n; i++)
        if (sbuf_add(&b, tokens->v[i], tok_len(tokens->v[i]))) {
            free(b.s);
            return nomem(e);
        }
    for (size_t i = 1; i < tokens->n; i++)
        tok_free(tokens->v[i]);
    int rc = 0;
    if (tokens->n == 0)
        rc = strvec_push(tokens, "", 0);
    else
        tokens->n = 1;
    if (rc || set_token(tokens, 0, &b)) {
        free(b.s);
        return nomem(e);
    }
    return 0;
}

/* ---- Strip ---- */

struct strip {
    uint32_t content;
    size_t start, stop; /* how many leading / trailing `content` chars may go */
};

static int strip_parse(const json_t *j, void **state, struct err *e)
{
    const char *where = "decoder Strip";
    struct strip s;
    char utf8[5];
    int rc = json_char(j, "content", &s.content, utf8, where, e);
    if (rc == 0)
        rc = json_count(j, "start", &s.start, where, e);
    if (rc == 0)
        rc = json_count(j, "stop", &s.stop, where, e);
    if (rc)
        return rc;
    struct strip *p = state_alloc(sizeof *p, e);
    if (!p)
        return ERR_NOMEM;
    *p = s;
    *state = p;
    return 0;
}

/* Removes up to `start` leading and `stop` trailing `content` chars of each token.
 * (HF panics when stop exceeds a token's length; we just stop at its start.) */
static int strip_chain(const void *state, struct strvec *tokens, struct err *e)
{
    (void)e;
    const struct strip *s = state;
    for (size_t i = 0; i < tokens->n; i++) {
        char *t = tokens->v[i];
        size_t len = tok_len(t), from = 0, to = len;
        for (size_t k = 0; k < s->start && from < len; k++) {
            size_t n;
            if (utf8_decode(t + from, &n) != s->content)
                break;
            from += n;
        }
        for (size_t k = 0; k < s->stop && to > from; k++) {
            size_t p = to - 1;
            while (p > from && ((unsigned char)t[p] & 0xC0) == 0x80)
                p--;
            if (utf8_decode(t + p, NULL) != s->content)
                break;
            to = p;
        }
        memmove(t, t + from, to - from);
        tok_set_len(t, to - from);
    }
    return 0;
}

/* ---- Replace ---- */

static int replace_parse(const json_t *j, void **state, struct err *e)
{
    return tok_replace_parse(j, state, "decoder Replace", e);
}

/* Replaces every regex match of one token (as HF's find_matches over a SysRegex:
 * an empty match right after the previous match is skipped, as find_iter does). */
static int regex_replace(const struct tok_replace *r, pcre2_match_data *md, const char *t,
                         struct sbuf *b)
{
    size_t len = tok_len(t), prev = 0, at = 0;
    bool have_last = false;
    size_t last_end = 0;
    if (len == 0)
        return 0;
    while (at <= len) {
        int m = pcre2_match(r->pat.re, (PCRE2_SPTR)t, len, at, 0, md, NULL);
        if (m == PCRE2_ERROR_NOMATCH)
            break;
        if (m < 0)
            return ERR_INTERNAL;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (ms == me && have_last && ms == last_end) {
            if (ms >= len)
                break;
            at = ms + utf8_len((unsigned char)t[ms]);
            continue;
        }
        if (sbuf_add(b, t + prev, ms - prev) || sbuf_add(b, r->content, strlen(r->content)))
            return ERR_NOMEM;
        prev = me;
        have_last = true;
        last_end = me;
        if (ms == me) {
            if (ms >= len)
                break;
            at = ms + utf8_len((unsigned char)t[ms]);
        } else {
            at = me;
        }
    }
    return sbuf_add(b, t + prev, len - prev);
}

static int replace_chain(const void *state, struct strvec *tokens, struct err *e)
{
    const struct tok_replace *r = state;
    if (r->pat.literal) {
        for (size_t i = 0; i < tokens->n; i++) {
            /* An empty token has no match at all in HF (find_matches special case). */
            if (tok_len(tokens->v[i]) && replace_in_token(tokens, i, r->pat.literal, r->content))
                return nomem(e);
        }
        return 0;
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(r->pat.re, NULL);
    if (!md)
        return nomem(e);
    int rc = 0;
    for (size_t i = 0; i < tokens->n && rc == 0; i++) {
        struct sbuf b = {0};
        rc = regex_replace(r, md, tokens->v[i], &b);
        if (rc == 0 && tok_len(tokens->v[i]))
            rc = set_token(tokens, i, &b);
        free(b.s);
    }
    pcre2_match_data_free(md);
    if (rc == ERR_INTERNAL)
        return err_set(e, rc, "decoder Replace: regex match failed");
    return rc ? nomem(e) : 0;
}

/* ---- BPEDecoder ---- */

struct bpe_decoder {
    char *suffix;
};

static void bpe_free(void *state)
{
    struct bpe_decoder *b = state;
    if (b)
        free(b->suffix);
    free(b);
}

static int bpe_parse(const json_t *j, void **state, struct err *e)
{
    const char *suffix = NULL;
    int rc = tokj_str(j, "suffix", true, &suffix, "decoder BPEDecoder", e);
    if (rc)
        return rc;
    struct bpe_decoder *b = state_alloc(sizeof *b, e);
    if (!b)
        return ERR_NOMEM;
    if (!(b->suffix = strdup(suffix))) {
        bpe_free(b);
        return nomem(e);
    }
    *state = b;
    return 0;
}

/* The end-of-word suffix becomes a space, or nothing in the last token. */
static int bpe_chain(const void *state, struct strvec *tokens, struct err *e)
{
    const struct bpe_decoder *b = state;
    for (size_t i = 0; i < tokens->n; i++)
        if (replace_in_token(tokens, i, b->suffix, i + 1 == tokens->n ? "" : " "))
            return nomem(e);
    return 0;
}

/* ---- CTC ---- */

struct ctc {
    char *pad_token, *word_delimiter_token;
    bool cleanup;
};

static void ctc_free(void *state)
{
    struct ctc *c = state;
    if (!c)
        return;
    free(c->pad_token);
    free(c->word_delimiter_token);
    free(c);
}

static int ctc_parse(const json_t *j, void **state, struct err *e)
{
    const char *where = "decoder CTC";
    const char *pad = NULL, *delim = NULL;
    bool cleanup = true;
    int rc = tokj_str(j, "pad_token", true, &pad, where, e);
    if (rc == 0)
        rc = tokj_str(j, "word_delimiter_token", true, &delim, where, e);
    if (rc == 0)
        rc = tokj_bool(j, "cleanup", true, &cleanup, where, e);
    if (rc)
        return rc;
    struct ctc *c = state_alloc(sizeof *c, e);
    if (!c)
        return ERR_NOMEM;
    c->cleanup = cleanup;
    if (!(c->pad_token = strdup(pad)) || !(c->word_delimiter_token = strdup(delim))) {
        ctc_free(c);
        return nomem(e);
    }
    *state = c;
    return 0;
}

/* Collapses repeated tokens, removes the pad token, turns the delimiter into a
 * space (with cleanup) and drops what became empty. */
static int ctc_chain(const void *state, struct strvec *tokens, struct err *e)
{
    const struct ctc *c = state;
    /* Dedup first (on the original strings), then rewrite the survivors. */
    struct strvec out = {0};
    int rc = 0;
    for (size_t i = 0; i < tokens->n && rc == 0; i++) {
        size_t len = tok_len(tokens->v[i]);
        if (i > 0 && len == tok_len(tokens->v[i - 1]) &&
            memcmp(tokens->v[i], tokens->v[i - 1], len) == 0)
            continue;
        rc = strvec_push(&out, tokens->v[i], len);
        size_t k = out.n - 1;
        if (rc == 0)
            rc = replace_in_token(&out, k, c->pad_token, "");
        if (rc == 0 && c->cleanup) {
            rc = cleanup_token(&out, k);
            if (rc == 0)
                rc = replace_in_token(&out, k, c->word_delimiter_token, " ");
        }
        if (rc == 0 && tok_len(out.v[k]) == 0) {
            tok_free(out.v[k]);
            out.n--;
        }
    }
    if (rc) {
        strvec_fini(&out);
        return nomem(e);
    }
    strvec_fini(tokens);
    *tokens = out;
    return 0;
}

/* ---- Sequence ---- */

struct dec_sequence {
    struct decoder **v;
    size_t n;
};

static void sequence_free(void *state)
{
    struct dec_sequence *s = state;
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        decoder_free(s->v[i]);
    free(s->v);
    free(s);
}

static int sequence_parse(const json_t *j, void **state, struct err *e)
{
    json_t *list = json_object_get(j, "decoders");
    if (!list)
        return err_set(e, ERR_FORMAT, "decoder Sequence: field 'decoders' is missing");
    if (!json_is_array(list))
        return err_set(e, ERR_FORMAT, "decoder Sequence: field 'decoders' must be an array");
    struct dec_sequence *s = state_alloc(sizeof *s, e);
    if (!s)
        return ERR_NOMEM;
    size_t n = json_array_size(list);
    if (n && !(s->v = calloc(n, sizeof *s->v))) {
        free(s);
        return nomem(e);
    }
    for (size_t i = 0; i < n; i++) {
        int rc = decoder_new(json_array_get(list, i), &s->v[i], e);
        if (rc) {
            err_prefix(e, "decoder Sequence: decoders[%zu]: ", i);
            sequence_free(s);
            return rc;
        }
        s->n++;
    }
    *state = s;
    return 0;
}

static int sequence_chain(const void *state, struct strvec *tokens, struct err *e)
{
    const struct dec_sequence *s = state;
    for (size_t i = 0; i < s->n; i++) {
        int rc = s->v[i]->ops->decode_chain(s->v[i]->state, tokens, e);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- the table ---- */

static int no_state_parse(const json_t *j, void **state, struct err *e)
{
    (void)j;
    (void)e;
    *state = NULL;
    return 0;
}

static void plain_free(void *state)
{
    free(state);
}

static const struct decoder_ops row_wordpiece = {"WordPiece", wordpiece_parse, wordpiece_chain,
                                                 wordpiece_free};
static const struct decoder_ops row_bytelevel = {"ByteLevel", bytelevel_parse, bytelevel_chain,
                                                 plain_free};
static const struct decoder_ops row_metaspace = {"Metaspace", metaspace_parse, metaspace_chain,
                                                 plain_free};
static const struct decoder_ops row_bytefallback = {"ByteFallback", no_state_parse,
                                                    bytefallback_chain, plain_free};
static const struct decoder_ops row_fuse = {"Fuse", no_state_parse, fuse_chain, plain_free};
static const struct decoder_ops row_strip = {"Strip", strip_parse, strip_chain, plain_free};
static const struct decoder_ops row_replace = {"Replace", replace_parse, replace_chain,
                                               tok_replace_free};
static const struct decoder_ops row_bpe = {"BPEDecoder", bpe_parse, bpe_chain, bpe_free};
static const struct decoder_ops row_ctc = {"CTC", ctc_parse, ctc_chain, ctc_free};
static const struct decoder_ops row_sequence = {"Sequence", sequence_parse, sequence_chain,
                                                sequence_free};

const struct decoder_ops *const decoder_table[] = {
    &row_wordpiece, &row_bytelevel, &row_metaspace, &row_bytefallback, &row_fuse, &row_strip,
    &row_replace,   &row_bpe,       &row_ctc,       &row_sequence,     NULL,
};

int decoder_new(const json_t *j, struct decoder **out, struct err *e)
{
    *out = NULL;
    if (!json_is_object(j))
        return err_set(e, ERR_FORMAT, "decoder: must be an object");
    const char *type = NULL;
    int rc = tokj_str(j, "type", true, &type, "decoder", e);
    if (rc)
        return rc;
    const struct decoder_ops *ops;
    TOK_TABLE_FIND(decoder_table, type, ops);
    if (!ops)
        return err_set(e, ERR_FORMAT, "decoder: unknown type '%s'", type);
    struct decoder *d = calloc(1, sizeof *d);
    if (!d)
        return nomem(e);
    d->ops = ops;
    rc = ops->parse(j, &d->state, e);
    if (rc) {
        free(d);
        return rc;
    }
    *out = d;
    return 0;
}

int decoder_decode(const struct decoder *d, struct strvec *tokens, char **out, size_t *out_len,
                   struct err *e)
{
    *out = NULL;
    int rc = d->ops->decode_chain(d->state, tokens, e);
    if (rc)
        return rc;
    struct sbuf b = {0};
    for (size_t i = 0; i < tokens->n; i++)
        if (sbuf_add(&b, tokens->v[i], tok_len(tokens->v[i]))) {
            free(b.s);
            return nomem(e);
        }
    if (!b.s && sbuf_add(&b, "", 0))
        return nomem(e);
    /* The caller gets a plain malloc'ed string: drop the length header. */
    size_t n = b.n;
    memmove(b.s, b.s + LEN_HDR, n + 1);
    *out = b.s;
    if (out_len)
        *out_len = n;
    return 0;
}

void decoder_free(struct decoder *d)
{
    if (!d)
        return;
    if (d->ops && d->ops->free)
        d->ops->free(d->state);
    free(d);
}
