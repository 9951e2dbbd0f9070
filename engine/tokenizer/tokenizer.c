/* tokenizer: assembles the tokenizer.json chain (added vocabulary, normalizer,
 * pre-tokenizer, model, post-processor, decoder) and runs HF's encode and decode
 * around it: added-token extraction, offsets back to code points, truncation with
 * overflowing windows, post-processing and padding. It never switches on a
 * component type: the component tables do that. */
#include "tokenizer.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/files.h"
#include "slow.h"
#include "tok.h"
#include "unicode.h"
#include "utf8.h"

struct added_token {
    char *content; /* as written in tokenizer.json */
    size_t len;
    char *pattern; /* what is matched: content, or its normalized form */
    size_t pattern_len;
    int32_t id;
    bool single_word, lstrip, rstrip, normalized, special;
};

/* Added tokens bucketed by first byte for the leftmost-longest scan: the tokens of
 * kind k (0 raw, 1 normalized) starting with byte b are order[k][start[k][b] ..
 * start[k][b+1]), longest first. */
struct added_index {
    uint32_t *order;
    uint32_t start[257];
};

struct tokenizer {
    struct added_token *added; /* every added token, in tokenizer.json order */
    size_t n_added;
    struct added_index index[2];
    struct vocab added_vocab; /* content -> id of the added tokens */
    uint8_t *special_by_id;   /* [added_vocab.n_ids]: that content is a special token */
    int32_t pad_id;           /* padding token, resolved once at load */
    char *pad_token;
    struct normalizer *normalizer;
    struct pretokenizer *pretokenizer;
    struct tok_model *model;
    struct postprocessor *post;
    struct decoder *decoder;
    struct tokenizer_params defaults;
    json_t *config;      /* tokenizer_config.json, or NULL */
    bool subword_prefix; /* the model has a non-empty continuing_subword_prefix */
    /* inferd-only "inferd_decode_vocab" (a slow Marian tokenizer with separate_vocabs): the
     * tokens ids decode to, by id, instead of the model's (NULL: the model's) */
    json_t *decode_vocab;
};

/* ---- JSON helpers shared by the component parsers ---- */

static int field_error(struct err *e, const char *where, const char *key, const char *what)
{
    return err_set(e, ERR_FORMAT, "%s: field '%s' %s", where, key, what);
}

int tokj_bool(const json_t *o, const char *key, bool required, bool *out, const char *where,
              struct err *e)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return required ? field_error(e, where, key, "is missing") : 0;
    if (!json_is_boolean(v))
        return field_error(e, where, key, "must be true or false");
    *out = json_is_true(v);
    return 0;
}

int tokj_int(const json_t *o, const char *key, bool required, long long *out, const char *where,
             struct err *e)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return required ? field_error(e, where, key, "is missing") : 0;
    if (!json_is_integer(v))
        return field_error(e, where, key, "must be an integer");
    *out = json_integer_value(v);
    return 0;
}

int tokj_double(const json_t *o, const char *key, bool required, double *out, const char *where,
                struct err *e)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return required ? field_error(e, where, key, "is missing") : 0;
    if (!json_is_number(v))
        return field_error(e, where, key, "must be a number");
    *out = json_number_value(v);
    return 0;
}

int tokj_str(const json_t *o, const char *key, bool required, const char **out, const char *where,
             struct err *e)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return required ? field_error(e, where, key, "is missing") : 0;
    if (!json_is_string(v))
        return field_error(e, where, key, "must be a string");
    *out = json_string_value(v);
    return 0;
}

/* ---- the pre-tokenized string ---- */

int pretok_push(struct pretok *pt, struct nstr *ns, int32_t added_id)
{
    if (pt->n == pt->cap) {
        size_t c = pt->cap ? pt->cap * 2 : 16;
        struct pretok_split *v = realloc(pt->v, c * sizeof *v);
        if (!v)
            return ERR_NOMEM;
        pt->v = v;
        pt->cap = c;
    }
    nstr_move(&pt->v[pt->n].ns, ns);
    pt->v[pt->n].added_id = added_id;
    pt->n++;
    return 0;
}

void pretok_fini(struct pretok *pt)
{
    for (size_t i = 0; i < pt->n; i++)
        nstr_fini(&pt->v[i].ns);
    free(pt->v);
    memset(pt, 0, sizeof *pt);
}

int pretok_split(struct pretok *pt, pretok_split_fn fn, void *ctx, struct err *e)
{
    struct pretok next = {0};
    struct nstr_vec pieces = {0};
    int rc = 0;
    for (size_t i = 0; i < pt->n && rc == 0; i++) {
        if (pt->v[i].added_id >= 0) {
            rc = pretok_push(&next, &pt->v[i].ns, pt->v[i].added_id);
            continue;
        }
        pieces.n = 0;
        rc = fn(ctx, &pt->v[i].ns, &pieces, e);
        for (size_t k = 0; k < pieces.n && rc == 0; k++) {
            if (pieces.v[k].len == 0)
                nstr_fini(&pieces.v[k]);
            else
                rc = pretok_push(&next, &pieces.v[k], -1);
        }
        for (size_t k = 0; k < pieces.n; k++)
            nstr_fini(&pieces.v[k]);
    }
    nstr_vec_fini(&pieces);
    if (rc) {
        pretok_fini(&next);
        return rc == ERR_NOMEM ? err_set(e, ERR_NOMEM, "out of memory") : rc;
    }
    pretok_fini(pt);
    *pt = next;
    return 0;
}

/* ---- added vocabulary (HF AddedVocabulary) ---- */

static bool is_word_cp(uint32_t cp)
{
    return uni_is_word(cp);
}

static bool ends_with_word(const char *s, size_t len)
{
    if (len == 0)
        return false;
    size_t j = len - 1;
    while (j > 0 && (((unsigned char)s[j]) & 0xC0) == 0x80)
        j--;
    return is_word_cp(utf8_decode(s + j, NULL));
}

static bool starts_with_word(const char *s, size_t len)
{
    return len > 0 && is_word_cp(utf8_decode(s, NULL));
}

/* Leftmost-longest match of any pattern of the given kind at or after `from`. */
static const struct added_token *find_added(const struct tokenizer *tk, bool normalized,
                                            const char *s, size_t len, size_t from, size_t *at)
{
    const struct added_index *ix = &tk->index[normalized];
    if (ix->start[256] == 0)
        return NULL;
    for (size_t i = from; i < len; i++) {
        unsigned char b = (unsigned char)s[i];
        for (uint32_t k = ix->start[b]; k < ix->start[b + 1]; k++) {
            const struct added_token *t = &tk->added[ix->order[k]];
            if (t->pattern_len <= len - i && memcmp(s + i, t->pattern, t->pattern_len) == 0) {
                *at = i;
                return t; /* the bucket is sorted longest first */
            }
        }
    }
    return NULL;
}

static int by_first_byte_then_longest(const void *pa, const void *pb, void *ctx)
{
    const struct tokenizer *tk = ctx;
    const struct added_token *a = &tk->added[*(const uint32_t *)pa];
    const struct added_token *b = &tk->added[*(const uint32_t *)pb];
    unsigned char fa = (unsigned char)a->pattern[0], fb = (unsigned char)b->pattern[0];
    if (fa != fb)
        return fa < fb ? -1 : 1;
    if (a->pattern_len != b->pattern_len)
        return a->pattern_len > b->pattern_len ? -1 : 1;
    return 0;
}

static int build_added_index(struct tokenizer *tk, struct err *e)
{
    for (int k = 0; k < 2; k++) {
        struct added_index *ix = &tk->index[k];
        ix->order = malloc((tk->n_added + 1) * sizeof *ix->order);
        if (!ix->order)
            return err_set(e, ERR_NOMEM, "out of memory");
        uint32_t n = 0;
        for (size_t i = 0; i < tk->n_added; i++)
            if (tk->added[i].normalized == (k == 1) && tk->added[i].pattern_len > 0)
                ix->order[n++] = (uint32_t)i;
        qsort_r(ix->order, n, sizeof *ix->order, by_first_byte_then_longest, tk);
        uint32_t j = 0;
        for (int b = 0; b < 256; b++) {
            ix->start[b] = j;
            while (j < n && (unsigned char)tk->added[ix->order[j]].pattern[0] == b)
                j++;
        }
        ix->start[256] = n;
    }
    return 0;
}

/* HF find_matches + split_with_indices: cuts ns into pieces around added tokens. */
static int split_added(const struct tokenizer *tk, bool normalized, struct nstr *ns,
                       struct pretok *out)
{
    const char *s = ns->s;
    size_t len = ns->len, start_offset = 0, from = 0, at;
    struct nmatch_vec cuts = {0};
    struct {
        int32_t id;
    } *ids = NULL;
    size_t n_ids = 0;
    int rc = 0;
    const struct added_token *t;
    while (rc == 0 && (t = find_added(tk, normalized, s, len, from, &at)) != NULL) {
        size_t start = at, stop = at + t->pattern_len;
        from = stop;
        if (t->single_word) {
            bool start_space = start == 0 || !ends_with_word(s, start);
            bool stop_space = stop == len || !starts_with_word(s + stop, len - stop);
            if (!start_space || !stop_space) {
                from = at + utf8_len((unsigned char)s[at]);
                continue;
            }
        }
        if (t->lstrip) {
            size_t ns_start = start;
            while (ns_start > 0) {
                size_t j = ns_start - 1;
                while (j > 0 && (((unsigned char)s[j]) & 0xC0) == 0x80)
                    j--;
                if (!uni_is_whitespace(utf8_decode(s + j, NULL)))
                    break;
                ns_start = j;
            }
            start = ns_start > start_offset ? ns_start : start_offset;
        }
        if (t->rstrip) {
            while (stop < len) {
                size_t l;
                if (!uni_is_whitespace(utf8_decode(s + stop, &l)))
                    break;
                stop += l;
            }
            from = stop;
        }
        if (start_offset < start)
            rc = nmatch_push(&cuts, (uint32_t)start_offset, (uint32_t)start, false);
        if (rc == 0)
            rc = nmatch_push(&cuts, (uint32_t)start, (uint32_t)stop, true);
        if (rc == 0) {
            void *nids = realloc(ids, (n_ids + 1) * sizeof *ids);
            if (!nids)
                rc = ERR_NOMEM;
            else {
                ids = nids;
                ids[n_ids++].id = t->id;
            }
        }
        start_offset = stop;
    }
    if (rc == 0 && start_offset != len)
        rc = nmatch_push(&cuts, (uint32_t)start_offset, (uint32_t)len, false);
    size_t k = 0;
    for (size_t i = 0; i < cuts.n && rc == 0; i++) {
        struct nstr piece;
        rc = nstr_slice(ns, cuts.v[i].start, cuts.v[i].end, &piece);
        if (rc)
            break;
        if (piece.len == 0) {
            nstr_fini(&piece);
            continue;
        }
        rc = pretok_push(out, &piece, cuts.v[i].is_match ? ids[k].id : -1);
        if (cuts.v[i].is_match)
            k++;
        if (rc)
            nstr_fini(&piece);
    }
    free(ids);
    nmatch_vec_fini(&cuts);
    return rc;
}

/* HF extract_and_normalize: raw added tokens, then normalize the rest, then the
 * normalized added tokens. */
static int extract_and_normalize(const struct tokenizer *tk, const char *text, size_t len,
                                 struct pretok *pt, struct err *e)
{
    struct nstr whole;
    struct pretok first = {0};
    int rc = nstr_init(&whole, text, len, 0);
    if (rc == 0)
        rc = split_added(tk, false, &whole, &first);
    nstr_fini(&whole);
    for (size_t i = 0; i < first.n && rc == 0; i++) {
        struct pretok_split *sp = &first.v[i];
        if (sp->added_id >= 0) {
            rc = pretok_push(pt, &sp->ns, sp->added_id);
            continue;
        }
        if (tk->normalizer && (rc = normalizer_apply(tk->normalizer, &sp->ns, e)) != 0)
            break;
        rc = split_added(tk, true, &sp->ns, pt);
    }
    pretok_fini(&first);
    if (rc == ERR_NOMEM)
        err_set(e, rc, "out of memory");
    return rc;
}

/* ---- encode ---- */

/* Byte -> code point index over the input (HF BytesToCharOffsetConverter). */
static int char_map(const char *s, size_t len, uint32_t **out)
{
    uint32_t *m = malloc((len + 1) * sizeof *m);
    if (!m)
        return ERR_NOMEM;
    uint32_t c = 0;
    for (size_t i = 0; i < len; i++) {
        if (i > 0 && (((unsigned char)s[i]) & 0xC0) != 0x80)
            c++;
        m[i] = c;
    }
    *out = m;
    return 0;
}

static struct nspan to_chars(const uint32_t *map, size_t len, struct nspan b)
{
    if (b.start < len && b.end < len)
        return (struct nspan){map[b.start], map[b.end]};
    if (b.start < len && b.end >= 1)
        return (struct nspan){map[b.start], map[b.end - 1] + 1};
    return b; /* HF keeps byte offsets when they fall outside the text */
}

static const char *id_to_token(const struct tokenizer *tk, int32_t id)
{
    const char *t = vocab_token(&tk->added_vocab, id);
    return t ? t : tk->model->ops->id_to_token(tk->model->state, id);
}

/* The token id decodes to: an added token's, else the decode vocabulary's when there is one
 * (as MarianTokenizer decodes through target_vocab.json), else the model's. */
static const char *decode_token(const struct tokenizer *tk, int32_t id)
{
    const char *t = vocab_token(&tk->added_vocab, id);
    if (t || !tk->decode_vocab)
        return t ? t : tk->model->ops->id_to_token(tk->model->state, id);
    return id >= 0 ? json_string_value(json_array_get(tk->decode_vocab, (size_t)id)) : NULL;
}

/* The optional "inferd_decode_vocab": an array of token strings. */
static int parse_decode_vocab(struct tokenizer *tk, json_t *v, struct err *e)
{
    if (!v || json_is_null(v))
        return 0;
    size_t i;
    json_t *t;
    if (!json_is_array(v))
        return err_set(e, ERR_FORMAT, "tokenizer.json: field 'inferd_decode_vocab' must be an "
                       "array of tokens");
    json_array_foreach(v, i, t)
    {
        if (!json_is_string(t))
            return err_set(e, ERR_FORMAT, "tokenizer.json: field 'inferd_decode_vocab': entry "
                           "%zu is not a string", i);
    }
    tk->decode_vocab = json_incref(v);
    return 0;
}

#define NO_LIMIT SIZE_MAX

/* Tokenizes split i of pt into toks (appending). */
static int tokenize_split(const struct tokenizer *tk, const struct pretok_split *sp,
                          struct token_vec *toks, struct err *e)
{
    if (sp->added_id >= 0)
        return token_push(toks, sp->added_id, 0, (uint32_t)sp->ns.len);
    return tk->model->ops->tokenize(tk->model->state, sp->ns.s, sp->ns.len, toks, e);
}

/* Encodes one sequence without special tokens (HF encode_single_sequence).
 * With a limit (not NO_LIMIT), HF's tokenize_with_limit shortcut is reproduced: splits are
 * tokenized from the truncation side until `limit` tokens exist and the splits
 * beyond are dropped before truncation (this changes overflow windows, so it
 * must be copied, not merely allowed). */
static int encode_one(const struct tokenizer *tk, const char *text, size_t len, uint32_t type_id,
                      int seq, size_t limit, enum side side, struct encoding *enc, struct err *e)
{
    struct pretok pt = {0};
    struct token_vec toks = {0};
    uint32_t *map = NULL;
    size_t *first_tok = NULL; /* per split: index of its first token in toks */
    int rc = extract_and_normalize(tk, text, len, &pt, e);
    if (rc == 0 && tk->pretokenizer)
        rc = pretokenizer_apply(tk->pretokenizer, &pt, e);
    if (rc == 0 && ((rc = char_map(text, len, &map)) != 0 ||
                    !(first_tok = malloc((pt.n + 1) * sizeof *first_tok))))
        rc = err_set(e, ERR_NOMEM, "out of memory");
    size_t keep_from = 0, keep_to = pt.n;
    if (rc == 0 && limit != NO_LIMIT && side == SIDE_LEFT) {
        /* Find the first split kept when counting from the end; the kept splits
         * are tokenized again below, in order (left truncation is rare). */
        size_t total = 0;
        for (size_t i = pt.n; i-- > 0 && rc == 0;) {
            toks.n = 0;
            rc = tokenize_split(tk, &pt.v[i], &toks, e);
            total += toks.n;
            keep_from = i;
            if (pt.v[i].added_id < 0 && total >= limit)
                break;
        }
        toks.n = 0;
    }
    if (rc == 0) {
        size_t total = 0;
        for (size_t i = keep_from; i < pt.n && rc == 0; i++) {
            first_tok[i] = toks.n;
            rc = tokenize_split(tk, &pt.v[i], &toks, e);
            total += toks.n - first_tok[i];
            if (rc == 0 && limit != NO_LIMIT && side == SIDE_RIGHT && pt.v[i].added_id < 0 &&
                total >= limit) {
                keep_to = i + 1;
                break;
            }
        }
        first_tok[keep_to] = toks.n;
    }
    for (size_t i = keep_from; i < keep_to && rc == 0; i++) {
        const struct pretok_split *sp = &pt.v[i];
        for (size_t k = first_tok[i]; k < first_tok[i + 1] && rc == 0; k++) {
            const struct token *t = &toks.v[k];
            struct nspan o = to_chars(map, len, nstr_original_span(&sp->ns, t->start, t->end));
            const char *str;
            size_t str_len;
            if (sp->added_id >= 0) { /* HF keeps the matched text as the token value */
                str = sp->ns.s;
                str_len = sp->ns.len;
            } else {
                str = id_to_token(tk, t->id);
                str_len = str ? strlen(str) : 0;
            }
            rc = encoding_push(enc, t->id, str, str_len, type_id, (int32_t)(i - keep_from), seq,
                               false, o);
        }
    }
    free(first_tok);
    free(map);
    token_vec_fini(&toks);
    pretok_fini(&pt);
    if (rc == ERR_NOMEM)
        err_set(e, rc, "out of memory");
    return rc;
}

struct window {
    size_t start, stop;
};

/* HF Encoding::truncate: the windows [start, stop) of an encoding of n tokens. */
static int windows_of(size_t n, size_t max_len, size_t stride, enum side side, struct window **out,
                      size_t *n_out, struct err *e)
{
    struct window *w = NULL;
    size_t cnt = 0;
    if (max_len >= n) {
        w = malloc(sizeof *w);
        if (!w)
            return err_set(e, ERR_NOMEM, "out of memory");
        w[0] = (struct window){0, n};
        *out = w;
        *n_out = 1;
        return 0;
    }
    if (max_len == 0) { /* everything overflows */
        w = malloc(2 * sizeof *w);
        if (!w)
            return err_set(e, ERR_NOMEM, "out of memory");
        w[0] = (struct window){0, 0};
        w[1] = (struct window){0, n};
        *out = w;
        *n_out = 2;
        return 0;
    }
    if (stride >= max_len)
        return err_set(e, ERR_INVALID,
                       "stride (%zu) must be less than the length left for the sequence (%zu)",
                       stride, max_len);
    size_t step = max_len - stride;
    w = malloc((n / step + 2) * sizeof *w);
    if (!w)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (side == SIDE_RIGHT) {
        for (size_t start = 0; start < n; start += step) {
            size_t stop = start + max_len < n ? start + max_len : n;
            w[cnt++] = (struct window){start, stop};
            if (stop == n)
                break;
        }
    } else {
        for (size_t stop = n; stop > 0;) {
            size_t start = stop > max_len ? stop - max_len : 0;
            w[cnt++] = (struct window){start, stop};
            if (start == 0 || stop <= step)
                break;
            stop -= step;
        }
    }
    *out = w;
    *n_out = cnt;
    return 0;
}

/* HF truncate_encodings: the target lengths of a and b. */
static int truncation_lengths(const struct tokenizer_params *p, size_t max_length, size_t na,
                              size_t nb, bool has_pair, size_t *la, size_t *lb, struct err *e)
{
    *la = na;
    *lb = nb;
    if (max_length == 0) {
        *la = 0;
        *lb = 0;
        return 0;
    }
    size_t total = na + nb;
    if (total <= max_length)
        return 0;
    size_t to_remove = total - max_length;
    switch (p->strategy) {
    case TRUNC_LONGEST_FIRST:
        if (has_pair) {
            size_t n1 = na, n2 = nb;
            bool swap = n1 > n2;
            if (swap) {
                n1 = nb;
                n2 = na;
            }
            if (n1 > max_length)
                n2 = n1;
            else
                n2 = n1 > max_length - n1 ? n1 : max_length - n1;
            if (n1 + n2 > max_length) {
                n1 = max_length / 2;
                n2 = n1 + max_length % 2;
            }
            *la = swap ? n2 : n1;
            *lb = swap ? n1 : n2;
        } else {
            *la = total - to_remove;
        }
        return 0;
    case TRUNC_ONLY_FIRST:
    case TRUNC_ONLY_SECOND: {
        size_t *target = p->strategy == TRUNC_ONLY_FIRST ? la : lb;
        if (p->strategy == TRUNC_ONLY_SECOND && !has_pair)
            return err_set(e, ERR_INVALID, "truncation only_second needs a text pair");
        if (*target <= to_remove)
            return err_set(e, ERR_INVALID,
                           "sequence too short to truncate: %zu tokens, %zu to remove", *target,
                           to_remove);
        *target -= to_remove;
        return 0;
    }
    }
    return 0;
}

static int process_pair(const struct tokenizer *tk, const struct encoding *a, struct window wa,
                        const struct encoding *b, struct window wb, bool add_special,
                        struct encoding *out, struct err *e)
{
    struct encoding ca, cb;
    encoding_init(&ca);
    encoding_init(&cb);
    int rc = encoding_append(&ca, a, wa.start, wa.stop);
    if (rc == 0 && b)
        rc = encoding_append(&cb, b, wb.start, wb.stop);
    if (rc)
        rc = err_set(e, ERR_NOMEM, "out of memory");
    else if (tk->post)
        rc = tk->post->ops->process(tk->post->state, &ca, b ? &cb : NULL, add_special, out, e);
    else
        rc = postprocess_default(&ca, b ? &cb : NULL, out, e);
    encoding_fini(&ca);
    encoding_fini(&cb);
    return rc;
}

static int encodings_add(struct encodings *es, struct encoding **slot)
{
    if (es->n == es->cap) {
        size_t c = es->cap ? es->cap * 2 : 4;
        struct encoding *v = realloc(es->v, c * sizeof *v);
        if (!v)
            return ERR_NOMEM;
        es->v = v;
        es->cap = c;
    }
    *slot = &es->v[es->n++];
    encoding_init(*slot);
    return 0;
}

void encodings_fini(struct encodings *es)
{
    if (!es)
        return;
    for (size_t i = 0; i < es->n; i++)
        encoding_fini(&es->v[i]);
    free(es->v);
    memset(es, 0, sizeof *es);
}

static int pad_one(const struct tokenizer *tk, struct encoding *enc, size_t target, enum side side)
{
    if (enc->n >= target)
        return 0;
    const char *pad_tok = tk->pad_token;
    size_t pad_len = strlen(pad_tok);
    size_t missing = target - enc->n;
    struct encoding padded;
    encoding_init(&padded);
    int rc = 0;
    if (side == SIDE_RIGHT)
        rc = encoding_append(&padded, enc, 0, enc->n);
    for (size_t i = 0; i < missing && rc == 0; i++) {
        rc = encoding_push(&padded, tk->pad_id, pad_tok, pad_len, 0, -1, -1, true,
                           (struct nspan){0, 0});
        if (rc == 0)
            padded.attention[padded.n - 1] = 0;
    }
    if (rc == 0 && side == SIDE_LEFT)
        rc = encoding_append(&padded, enc, 0, enc->n);
    if (rc) {
        encoding_fini(&padded);
        return rc;
    }
    encoding_fini(enc);
    *enc = padded;
    return 0;
}

int tokenizer_encode(const struct tokenizer *tk, const char *text, size_t len, const char *pair,
                     size_t pair_len, const struct tokenizer_params *p, struct encodings *out,
                     struct err *e)
{
    encodings_fini(out);
    if (len >= UINT32_MAX / 2 || pair_len >= UINT32_MAX / 2)
        return err_set(e, ERR_TOO_LARGE, "text too large to tokenize (%zu bytes)",
                       len > pair_len ? len : pair_len);
    size_t bad = utf8_validate(text, len);
    if (bad != len)
        return err_set(e, ERR_INPUT, "text is not valid UTF-8 (byte %zu)", bad);
    if (pair && (bad = utf8_validate(pair, pair_len)) != pair_len)
        return err_set(e, ERR_INPUT, "text pair is not valid UTF-8 (byte %zu)", bad);

    struct encoding a, b;
    encoding_init(&a);
    encoding_init(&b);
    struct window *wa = NULL, *wb = NULL;
    size_t nwa = 0, nwb = 0;
    /* HF tokenizes at most max_length tokens' worth of words per sequence when
     * truncating (only the pair with only_second). */
    size_t limit_a = NO_LIMIT, limit_b = NO_LIMIT;
    if (p->truncation && p->truncate_early) {
        limit_a = p->strategy != TRUNC_ONLY_SECOND ? p->max_length : NO_LIMIT;
        limit_b = p->max_length;
    }
    int rc = encode_one(tk, text, len, 0, 0, limit_a, p->trunc_side, &a, e);
    if (rc == 0 && pair)
        rc = encode_one(tk, pair, pair_len, 1, 1, limit_b, p->trunc_side, &b, e);
    if (rc)
        goto done;

    /* 1. truncation, into windows per sequence */
    size_t la = a.n, lb = b.n, stride = 0;
    enum side tside = SIDE_RIGHT;
    if (p->truncation) {
        size_t added = p->add_special_tokens ? tokenizer_num_special_tokens(tk, pair != NULL) : 0;
        size_t max_length = p->max_length > added ? p->max_length - added : 0;
        if (p->max_length < added && p->max_length > 0) {
            rc = err_set(e, ERR_INVALID, "max_length %zu is less than the %zu special tokens",
                         p->max_length, added);
            goto done;
        }
        rc = truncation_lengths(p, max_length, a.n, b.n, pair != NULL, &la, &lb, e);
        if (rc)
            goto done;
        stride = p->stride;
        tside = p->trunc_side;
    }
    if ((rc = windows_of(a.n, la, stride, tside, &wa, &nwa, e)) != 0)
        goto done;
    if ((rc = windows_of(b.n, lb, stride, tside, &wb, &nwb, e)) != 0)
        goto done;

    /* 2. post-processing of every window combination, in HF's overflow order:
     * (a0,b0), then (ai,b0..bm) for each overflow ai, then (a0,bj). */
    struct encoding *slot;
    const struct encoding *pb = pair ? &b : NULL;
    for (size_t i = 0; i < nwa && rc == 0; i++) {
        for (size_t j = 0; j < (i == 0 ? 1 : nwb) && rc == 0; j++) {
            if ((rc = encodings_add(out, &slot)) != 0)
                break;
            rc = process_pair(tk, &a, wa[i], pb, wb[j], p->add_special_tokens, slot, e);
        }
    }
    for (size_t j = 1; j < nwb && rc == 0; j++) {
        if ((rc = encodings_add(out, &slot)) == 0)
            rc = process_pair(tk, &a, wa[0], pb, wb[j], p->add_special_tokens, slot, e);
    }
    if (rc)
        goto done;

    /* 3. padding: every window to the same target */
    if (p->padding != PAD_NONE) {
        size_t target = p->padding == PAD_FIXED ? p->pad_length : out->v[0].n;
        if (p->pad_to_multiple_of > 0 && target % p->pad_to_multiple_of)
            target += p->pad_to_multiple_of - target % p->pad_to_multiple_of;
        for (size_t i = 0; i < out->n && rc == 0; i++)
            rc = pad_one(tk, &out->v[i], target, p->pad_side);
    }
done:
    if (rc == ERR_NOMEM)
        err_set(e, rc, "out of memory");
    if (rc)
        encodings_fini(out);
    free(wa);
    free(wb);
    encoding_fini(&a);
    encoding_fini(&b);
    return rc;
}

/* ---- decode ---- */

/* HF skips by content: any token whose string is a special added token's. */
static bool is_special_content(const struct tokenizer *tk, const char *tok)
{
    int32_t id = vocab_find(&tk->added_vocab, tok, strlen(tok));
    return id >= 0 && tk->special_by_id[id];
}

static int decode_strings(const struct tokenizer *tk, struct strvec *tokens, char **out,
                          size_t *out_len, struct err *e);

int tokenizer_decode(const struct tokenizer *tk, const int32_t *ids, size_t n,
                     bool skip_special_tokens, char **out, size_t *out_len, struct err *e)
{
    struct strvec toks = {0};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *t = decode_token(tk, ids[i]);
        if (!t || (skip_special_tokens && is_special_content(tk, t)))
            continue;
        rc = strvec_push(&toks, t, strlen(t));
    }
    if (rc) {
        strvec_fini(&toks);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    return decode_strings(tk, &toks, out, out_len, e);
}

/* Runs the decoder over toks (or joins them with spaces without one) and frees toks. */
static int decode_strings(const struct tokenizer *tk, struct strvec *tokens, char **out,
                          size_t *out_len, struct err *e)
{
    struct strvec toks = *tokens;
    int rc = 0;
    if (tk->decoder) {
        rc = decoder_decode(tk->decoder, &toks, out, out_len, e);
    } else { /* HF joins with spaces when there is no decoder */
        size_t total = 1;
        for (size_t i = 0; i < toks.n; i++)
            total += strlen(toks.v[i]) + 1;
        char *s = malloc(total);
        if (!s) {
            rc = err_set(e, ERR_NOMEM, "out of memory");
        } else {
            size_t w = 0;
            for (size_t i = 0; i < toks.n; i++) {
                if (i)
                    s[w++] = ' ';
                size_t l = strlen(toks.v[i]);
                memcpy(s + w, toks.v[i], l);
                w += l;
            }
            s[w] = '\0';
            *out = s;
            if (out_len)
                *out_len = w;
        }
    }
    strvec_fini(&toks);
    return rc;
}

int tokenizer_tokens_to_string(const struct tokenizer *tk, const char *const *tokens, size_t n,
                               char **out, size_t *out_len, struct err *e)
{
    struct strvec toks = {0};
    for (size_t i = 0; i < n; i++)
        if (strvec_push(&toks, tokens[i], strlen(tokens[i])) != 0) {
            strvec_fini(&toks);
            return err_set(e, ERR_NOMEM, "out of memory");
        }
    return decode_strings(tk, &toks, out, out_len, e);
}

bool tokenizer_has_subword_prefix(const struct tokenizer *tk)
{
    return tk->subword_prefix;
}

/* ---- vocabulary queries ---- */

int32_t tokenizer_token_to_id(const struct tokenizer *tk, const char *token)
{
    size_t l = strlen(token);
    int32_t id = vocab_find(&tk->added_vocab, token, l);
    return id >= 0 ? id : tk->model->ops->token_to_id(tk->model->state, token, l);
}

const char *tokenizer_id_to_token(const struct tokenizer *tk, int32_t id)
{
    return id_to_token(tk, id);
}

bool tokenizer_is_special(const struct tokenizer *tk, int32_t id)
{
    const char *t = id_to_token(tk, id);
    return t && is_special_content(tk, t);
}

size_t tokenizer_vocab_size(const struct tokenizer *tk)
{
    size_t n = tk->model->ops->vocab_size(tk->model->state);
    return tk->added_vocab.n_ids > n ? tk->added_vocab.n_ids : n;
}

size_t tokenizer_num_special_tokens(const struct tokenizer *tk, bool pair)
{
    return tk->post ? tk->post->ops->added_tokens(tk->post->state, pair) : 0;
}

const char *tokenizer_config_str(const struct tokenizer *tk, const char *key)
{
    if (!tk->config)
        return NULL;
    json_t *v = json_object_get(tk->config, key);
    if (json_is_object(v)) /* {"content": "...", "__type": "AddedToken"} form */
        v = json_object_get(v, "content");
    return json_is_string(v) ? json_string_value(v) : NULL;
}

bool tokenizer_config_bool(const struct tokenizer *tk, const char *key, bool dflt)
{
    json_t *v = tk->config ? json_object_get(tk->config, key) : NULL;
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

size_t tokenizer_model_max_length(const struct tokenizer *tk)
{
    json_t *v = tk->config ? json_object_get(tk->config, "model_max_length") : NULL;
    double d = json_is_number(v) ? json_number_value(v) : 0;
    return d >= 1 && d < 4294967296.0 ? (size_t)d : 0;
}

struct tokenizer_params tokenizer_params_default(const struct tokenizer *tk)
{
    return tk->defaults;
}

/* ---- loading ---- */

static int parse_added(struct tokenizer *tk, const json_t *arr, struct err *e)
{
    if (!arr || json_is_null(arr))
        return 0;
    if (!json_is_array(arr))
        return err_set(e, ERR_FORMAT, "tokenizer.json: field 'added_tokens' must be an array");
    size_t n = json_array_size(arr);
    tk->added = calloc(n ? n : 1, sizeof *tk->added);
    if (!tk->added)
        return err_set(e, ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(arr, i);
        char where[64];
        snprintf(where, sizeof where, "added_tokens[%zu]", i);
        if (!json_is_object(o))
            return err_set(e, ERR_FORMAT, "tokenizer.json: %s must be an object", where);
        struct added_token *t = &tk->added[tk->n_added];
        long long id = -1;
        const char *content = NULL;
        t->normalized = true;
        int rc = tokj_int(o, "id", true, &id, where, e);
        if (rc == 0)
            rc = tokj_str(o, "content", true, &content, where, e);
        if (rc == 0)
            rc = tokj_bool(o, "single_word", false, &t->single_word, where, e);
        if (rc == 0)
            rc = tokj_bool(o, "lstrip", false, &t->lstrip, where, e);
        if (rc == 0)
            rc = tokj_bool(o, "rstrip", false, &t->rstrip, where, e);
        if (rc == 0)
            rc = tokj_bool(o, "normalized", false, &t->normalized, where, e);
        if (rc == 0)
            rc = tokj_bool(o, "special", false, &t->special, where, e);
        if (rc)
            return err_prefix(e, "tokenizer.json: ");
        if (id < 0 || id >= VOCAB_MAX_ID)
            return err_set(e, ERR_FORMAT, "tokenizer.json: %s: id %lld is not in [0, %d)", where,
                           id, VOCAB_MAX_ID);
        t->id = (int32_t)id;
        t->len = strlen(content);
        t->content = strdup(content);
        if (!t->content)
            return err_set(e, ERR_NOMEM, "out of memory");
        tk->n_added++;
        if (vocab_find(&tk->added_vocab, content, t->len) < 0 &&
            (rc = vocab_add(&tk->added_vocab, content, t->len, t->id)) != 0)
            return err_set(e, rc, "tokenizer.json: %s: cannot add '%s' (duplicate id %d?)", where,
                           content, t->id);
    }
    return 0;
}

/* The pattern a normalized added token is matched with is its normalized form. */
static int prepare_added_patterns(struct tokenizer *tk, struct err *e)
{
    for (size_t i = 0; i < tk->n_added; i++) {
        struct added_token *t = &tk->added[i];
        if (!t->normalized || !tk->normalizer) {
            t->pattern = strdup(t->content);
            t->pattern_len = t->len;
        } else {
            struct nstr ns;
            int rc = nstr_init(&ns, t->content, t->len, 0);
            if (rc == 0)
                rc = normalizer_apply(tk->normalizer, &ns, e);
            if (rc) {
                nstr_fini(&ns);
                return err_prefix(e, "added token '%s': ", t->content);
            }
            t->pattern = strndup(ns.s, ns.len);
            t->pattern_len = ns.len;
            nstr_fini(&ns);
        }
        if (!t->pattern)
            return err_set(e, ERR_NOMEM, "out of memory");
    }
    return 0;
}

static int mark_special(struct tokenizer *tk, struct err *e)
{
    tk->special_by_id = calloc(tk->added_vocab.n_ids + 1, 1);
    if (!tk->special_by_id)
        return err_set(e, ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < tk->n_added; i++)
        if (tk->added[i].special)
            tk->special_by_id[vocab_find(&tk->added_vocab, tk->added[i].content,
                                         tk->added[i].len)] = 1;
    return 0;
}

/* The padding token: tokenizer_config.json's pad_token, else "[PAD]" with id 0. */
static int resolve_pad(struct tokenizer *tk, struct err *e)
{
    const char *pad = tokenizer_config_str(tk, "pad_token");
    tk->pad_id = 0;
    if (pad) {
        int32_t id = tokenizer_token_to_id(tk, pad);
        if (id >= 0)
            tk->pad_id = id;
    }
    tk->pad_token = strdup(pad ? pad : "[PAD]");
    return tk->pad_token ? 0 : err_set(e, ERR_NOMEM, "out of memory");
}

static int parse_trunc_pad(struct tokenizer *tk, const json_t *root, struct err *e)
{
    struct tokenizer_params *d = &tk->defaults;
    const json_t *t = json_object_get(root, "truncation");
    const char *s = NULL;
    if (json_is_object(t)) {
        long long v = 0;
        d->truncation = true;
        if (tokj_int(t, "max_length", true, &v, "truncation", e))
            return err_prefix(e, "tokenizer.json: ");
        d->max_length = v > 0 ? (size_t)v : 0;
        v = 0;
        if (tokj_int(t, "stride", false, &v, "truncation", e))
            return err_prefix(e, "tokenizer.json: ");
        d->stride = v > 0 ? (size_t)v : 0;
        if (tokj_str(t, "strategy", false, &s, "truncation", e))
            return err_prefix(e, "tokenizer.json: ");
        if (s)
            d->strategy = strcmp(s, "OnlyFirst") == 0    ? TRUNC_ONLY_FIRST
                          : strcmp(s, "OnlySecond") == 0 ? TRUNC_ONLY_SECOND
                                                         : TRUNC_LONGEST_FIRST;
        s = NULL;
        if (tokj_str(t, "direction", false, &s, "truncation", e))
            return err_prefix(e, "tokenizer.json: ");
        d->trunc_side = s && strcmp(s, "Left") == 0 ? SIDE_LEFT : SIDE_RIGHT;
    }
    const json_t *p = json_object_get(root, "padding");
    if (json_is_object(p)) {
        const json_t *st = json_object_get(p, "strategy");
        d->padding = PAD_LONGEST;
        if (json_is_object(st) && json_is_integer(json_object_get(st, "Fixed"))) {
            d->padding = PAD_FIXED;
            d->pad_length = (size_t)json_integer_value(json_object_get(st, "Fixed"));
        }
        long long m = 0;
        if (tokj_int(p, "pad_to_multiple_of", false, &m, "padding", e))
            return err_prefix(e, "tokenizer.json: ");
        d->pad_to_multiple_of = m > 0 ? (size_t)m : 0;
        s = NULL;
        if (tokj_str(p, "direction", false, &s, "padding", e))
            return err_prefix(e, "tokenizer.json: ");
        d->pad_side = s && strcmp(s, "Left") == 0 ? SIDE_LEFT : SIDE_RIGHT;
    }
    return 0;
}

/* Builds the tokenizer from a parsed tokenizer.json document and tokenizer_config.json
 * (NULL when absent); takes both references. */
static int tokenizer_from_doc(json_t *root, json_t *config, struct tokenizer **out,
                              struct err *e)
{
    *out = NULL;
    struct tokenizer *tk = calloc(1, sizeof *tk);
    int rc = 0;
    if (!tk) {
        json_decref(root);
        json_decref(config);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    tk->config = config;
    vocab_init(&tk->added_vocab);
    tk->defaults.add_special_tokens = true;
    tk->defaults.truncate_early = true;
    if (!json_is_object(root)) {
        rc = err_set(e, ERR_FORMAT, "tokenizer.json: the top level must be an object");
        goto fail;
    }
    const json_t *j;
    if ((rc = parse_added(tk, json_object_get(root, "added_tokens"), e)) != 0)
        goto fail;
    if (!json_is_object(json_object_get(root, "model"))) {
        rc = err_set(e, ERR_FORMAT, "tokenizer.json: field 'model' is missing or not an object");
        goto fail;
    }
    if ((rc = tok_model_new(json_object_get(root, "model"), &tk->model, e)) != 0)
        goto fail_prefix;
    j = json_object_get(json_object_get(root, "model"), "continuing_subword_prefix");
    tk->subword_prefix = json_is_string(j) && json_string_length(j) > 0;
    if ((j = json_object_get(root, "normalizer")) && !json_is_null(j) &&
        (rc = normalizer_new(j, &tk->normalizer, e)) != 0)
        goto fail_prefix;
    if ((j = json_object_get(root, "pre_tokenizer")) && !json_is_null(j) &&
        (rc = pretokenizer_new(j, &tk->pretokenizer, e)) != 0)
        goto fail_prefix;
    if ((j = json_object_get(root, "post_processor")) && !json_is_null(j) &&
        (rc = postprocessor_new(j, &tk->post, e)) != 0)
        goto fail_prefix;
    if ((j = json_object_get(root, "decoder")) && !json_is_null(j) &&
        (rc = decoder_new(j, &tk->decoder, e)) != 0)
        goto fail_prefix;
    if ((rc = parse_decode_vocab(tk, json_object_get(root, "inferd_decode_vocab"), e)) != 0)
        goto fail;
    if ((rc = prepare_added_patterns(tk, e)) != 0 || (rc = build_added_index(tk, e)) != 0 ||
        (rc = mark_special(tk, e)) != 0 || (rc = parse_trunc_pad(tk, root, e)) != 0 ||
        (rc = resolve_pad(tk, e)) != 0)
        goto fail;
    json_decref(root);
    *out = tk;
    return 0;
fail_prefix:
    err_prefix(e, "tokenizer.json: ");
fail:
    json_decref(root);
    tokenizer_free(tk);
    return rc;
}

int tokenizer_from_json(const char *json, size_t len, const char *config_json, size_t config_len,
                        struct tokenizer **out, struct err *e)
{
    *out = NULL;
    json_error_t je;
    json_t *root = json_loadb(json, len, 0, &je);
    if (!root)
        return err_set(e, ERR_FORMAT, "tokenizer.json: invalid JSON at line %d column %d: %s",
                       je.line, je.column, je.text);
    json_t *config = NULL;
    if (config_json) {
        /* model_max_length is often a huge sentinel (1e30) that does not fit an int64. */
        config = json_loadb(config_json, config_len, JSON_DECODE_INT_AS_REAL, &je);
        if (!json_is_object(config)) {
            json_decref(root);
            json_decref(config);
            return err_set(e, ERR_FORMAT,
                           "tokenizer_config.json: invalid JSON at line %d column %d: %s",
                           je.line, je.column, je.text);
        }
    }
    return tokenizer_from_doc(root, config, out, e);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
            if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
            } else {
                buf[n] = '\0';
                *len = (size_t)n;
            }
        }
    }
    fclose(f);
    return buf;
}

/* No tokenizer.json: what transformers converts from the slow-tokenizer files. */
static int load_slow(const char *dir, struct tokenizer **out, struct err *e)
{
    json_t *doc, *config;
    int rc = slow_tokenizer_convert(dir, &doc, &config, e);
    if (rc == 0 && (rc = tokenizer_from_doc(doc, config, out, e)) != 0)
        err_prefix(e, "%s (converted from slow-tokenizer files): ", dir);
    return rc;
}

int tokenizer_load(const char *dir, struct tokenizer **out, struct err *e)
{
    char path[4096];
    size_t len = 0, clen = 0;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    errno = 0;
    char *json = slurp(path, &len);
    if (!json && errno == ENOENT)
        return load_slow(dir, out, e);
    if (!json)
        return errno ? files_error(path, errno, e) : err_set(e, ERR_IO, "%s: cannot read", path);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    char *cfg = slurp(path, &clen);
    int rc = tokenizer_from_json(json, len, cfg, clen, out, e);
    if (rc)
        err_prefix(e, "%s: ", dir);
    free(json);
    free(cfg);
    return rc;
}

void tokenizer_free(struct tokenizer *tk)
{
    if (!tk)
        return;
    for (size_t i = 0; i < tk->n_added; i++) {
        free(tk->added[i].content);
        free(tk->added[i].pattern);
    }
    free(tk->added);
    free(tk->special_by_id);
    free(tk->pad_token);
    free(tk->index[0].order);
    free(tk->index[1].order);
    vocab_fini(&tk->added_vocab);
    normalizer_free(tk->normalizer);
    pretokenizer_free(tk->pretokenizer);
    tok_model_free(tk->model);
    postprocessor_free(tk->post);
    decoder_free(tk->decoder);
    json_decref(tk->config);
    json_decref(tk->decode_vocab);
    free(tk);
}
