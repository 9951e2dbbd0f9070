/* spm_proto: the sentencepiece ModelProto reader (see spm_proto.h). A protobuf message is a
 * run of fields, each a varint tag (field number << 3 | wire type) and a value: a varint
 * (type 0), 8 bytes (1), a varint length and that many bytes (2, strings and embedded
 * messages) or 4 bytes (5, floats). Every read is checked against the end of its message;
 * groups (types 3, 4) and anything past an end are refused. Fields read:
 *   ModelProto      1 pieces (repeated), 2 trainer_spec, 3 normalizer_spec
 *   SentencePiece   1 piece, 2 score, 3 type
 *   TrainerSpec     3 model_type, 35 byte_fallback, 40..43 unk/bos/eos/pad_id
 *   NormalizerSpec  2 precompiled_charsmap, 3 add_dummy_prefix,
 *                   4 remove_extra_whitespaces, 5 escape_whitespaces
 * As protobuf does, a scalar given twice keeps the last value and an embedded message given
 * twice is merged. Piece texts are checked (UTF-8, non-empty, no NUL, not repeated) since
 * they become tokens; repeats are found with a sort of the piece indices. */
#include "spm_proto.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

/* A message being read: [p, end). */
struct rd {
    const uint8_t *p, *end;
};

enum wire { W_VARINT = 0, W_I64 = 1, W_LEN = 2, W_I32 = 5 };

static int truncated(const char *what, struct err *e)
{
    return err_set(e, ERR_FORMAT, "sentencepiece model: %s is truncated or malformed", what);
}

static int read_varint(struct rd *r, uint64_t *v, const char *what, struct err *e)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            return truncated(what, e);
        uint8_t b = *r->p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return truncated(what, e); /* more than 10 bytes */
}

/* A length-delimited value: its bytes as a sub-message. */
static int read_len(struct rd *r, struct rd *sub, const char *what, struct err *e)
{
    uint64_t n = 0;
    int rc = read_varint(r, &n, what, e);
    if (rc)
        return rc;
    if (n > (uint64_t)(r->end - r->p))
        return truncated(what, e);
    sub->p = r->p;
    sub->end = r->p + n;
    r->p += n;
    return 0;
}

static int read_fixed(struct rd *r, size_t n, uint8_t *out, const char *what, struct err *e)
{
    if ((size_t)(r->end - r->p) < n)
        return truncated(what, e);
    memcpy(out, r->p, n);
    r->p += n;
    return 0;
}

/* The next field's number and wire type. */
static int read_tag(struct rd *r, uint32_t *field, enum wire *type, const char *what,
                    struct err *e)
{
    uint64_t tag = 0;
    int rc = read_varint(r, &tag, what, e);
    if (rc)
        return rc;
    *field = (uint32_t)(tag >> 3);
    *type = (enum wire)(tag & 7);
    if (*field == 0 || tag >> 32)
        return err_set(e, ERR_FORMAT, "sentencepiece model: %s has an invalid field tag", what);
    return 0;
}

/* Skips a value of a field not read. */
static int skip(struct rd *r, enum wire type, const char *what, struct err *e)
{
    uint64_t v;
    struct rd sub;
    uint8_t buf[8];
    switch (type) {
    case W_VARINT: return read_varint(r, &v, what, e);
    case W_I64: return read_fixed(r, 8, buf, what, e);
    case W_LEN: return read_len(r, &sub, what, e);
    case W_I32: return read_fixed(r, 4, buf, what, e);
    }
    return err_set(e, ERR_FORMAT, "sentencepiece model: %s has a field of wire type %d", what,
                   (int)type);
}

static int want(enum wire got, enum wire type, const char *field, struct err *e)
{
    return got == type ? 0
                       : err_set(e, ERR_FORMAT,
                                 "sentencepiece model: field %s has wire type %d, want %d",
                                 field, (int)got, (int)type);
}

/* A varint field: the value (int32 and enum fields keep the low 32 bits, as protobuf does). */
static int varint_field(struct rd *r, enum wire type, const char *field, int64_t *v,
                        struct err *e)
{
    uint64_t x = 0;
    int rc = want(type, W_VARINT, field, e);
    if (rc == 0 && (rc = read_varint(r, &x, field, e)) == 0)
        *v = (int32_t)(uint32_t)x;
    return rc;
}

/* ---- pieces ---- */

struct piece_ref {
    const uint8_t *text; /* in the input buffer */
    size_t len;
    float score;
    int64_t type;
};

static int read_piece(struct rd r, size_t index, struct piece_ref *out, struct err *e)
{
    *out = (struct piece_ref){.type = SPM_NORMAL};
    int rc = 0;
    while (rc == 0 && r.p < r.end) {
        uint32_t field;
        enum wire type;
        struct rd sub = {0};
        uint8_t b[4] = {0};
        if ((rc = read_tag(&r, &field, &type, "a piece", e)) != 0)
            break;
        if (field == 1 && (rc = want(type, W_LEN, "SentencePiece.piece", e)) == 0 &&
            (rc = read_len(&r, &sub, "SentencePiece.piece", e)) == 0) {
            out->text = sub.p;
            out->len = (size_t)(sub.end - sub.p);
        } else if (field == 2 && (rc = want(type, W_I32, "SentencePiece.score", e)) == 0 &&
                   (rc = read_fixed(&r, 4, b, "SentencePiece.score", e)) == 0) {
            uint32_t bits = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                            (uint32_t)b[3] << 24;
            memcpy(&out->score, &bits, 4);
        } else if (field == 3) {
            rc = varint_field(&r, type, "SentencePiece.type", &out->type, e);
        } else if (field > 3) {
            rc = skip(&r, type, "a piece", e);
        }
    }
    if (rc)
        return rc;
    if (out->type < SPM_NORMAL || out->type > SPM_BYTE)
        return err_set(e, ERR_FORMAT, "sentencepiece model: piece %zu has unknown type %lld",
                       index, (long long)out->type);
    if (!isfinite(out->score))
        return err_set(e, ERR_FORMAT, "sentencepiece model: piece %zu has a score that is "
                       "not a finite number", index);
    if (out->len == 0 || memchr(out->text, 0, out->len) ||
        utf8_validate((const char *)out->text, out->len) != out->len)
        return err_set(e, ERR_FORMAT, "sentencepiece model: piece %zu is empty, has a NUL or "
                       "is not UTF-8", index);
    return 0;
}

static int add_piece(struct rd sub, struct piece_ref **v, size_t *n, size_t *cap, struct err *e)
{
    if (*n >= SPM_MAX_PIECES)
        return err_set(e, ERR_FORMAT, "sentencepiece model: more than %u pieces",
                       SPM_MAX_PIECES);
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 1024;
        struct piece_ref *g = realloc(*v, c * sizeof *g);
        if (!g)
            return err_set(e, ERR_NOMEM, "out of memory");
        *v = g;
        *cap = c;
    }
    int rc = read_piece(sub, *n, &(*v)[*n], e);
    if (rc == 0)
        (*n)++;
    return rc;
}

/* ---- trainer and normalizer specs ---- */

static int read_trainer(struct rd r, struct spm_model *m, struct err *e)
{
    int rc = 0;
    while (rc == 0 && r.p < r.end) {
        uint32_t f;
        enum wire type;
        int64_t v = 0;
        if ((rc = read_tag(&r, &f, &type, "trainer_spec", e)) != 0)
            break;
        if (f == 3 || f == 35 || (f >= 40 && f <= 43))
            rc = varint_field(&r, type, "TrainerSpec", &v, e);
        else
            rc = skip(&r, type, "trainer_spec", e);
        if (rc)
            break;
        if (f == 3)
            m->model_type = (enum spm_model_type)v;
        else if (f == 35)
            m->byte_fallback = v != 0;
        else if (f == 40)
            m->unk_id = (int32_t)v;
        else if (f == 41)
            m->bos_id = (int32_t)v;
        else if (f == 42)
            m->eos_id = (int32_t)v;
        else if (f == 43)
            m->pad_id = (int32_t)v;
    }
    if (rc == 0 && m->model_type != SPM_UNIGRAM && m->model_type != SPM_BPE)
        rc = err_set(e, ERR_FORMAT, "sentencepiece model: model_type %d is not supported "
                     "(only 1 UNIGRAM and 2 BPE)", (int)m->model_type);
    return rc;
}

static int read_normalizer(struct rd r, struct spm_model *m, struct err *e)
{
    int rc = 0;
    while (rc == 0 && r.p < r.end) {
        uint32_t f;
        enum wire type;
        int64_t v = 0;
        struct rd sub = {0};
        if ((rc = read_tag(&r, &f, &type, "normalizer_spec", e)) != 0)
            break;
        if (f == 2 && (rc = want(type, W_LEN, "NormalizerSpec.precompiled_charsmap", e)) == 0 &&
            (rc = read_len(&r, &sub, "NormalizerSpec.precompiled_charsmap", e)) == 0) {
            free(m->charsmap);
            m->charsmap_len = (size_t)(sub.end - sub.p);
            m->charsmap = malloc(m->charsmap_len + 1);
            if (!m->charsmap)
                return err_set(e, ERR_NOMEM, "out of memory");
            memcpy(m->charsmap, sub.p, m->charsmap_len);
        } else if (f >= 3 && f <= 5) {
            rc = varint_field(&r, type, "NormalizerSpec", &v, e);
            bool *flags[] = {&m->add_dummy_prefix, &m->remove_extra_whitespaces,
                             &m->escape_whitespaces};
            if (rc == 0)
                *flags[f - 3] = v != 0;
        } else if (f != 2) {
            rc = skip(&r, type, "normalizer_spec", e);
        }
    }
    return rc;
}

/* ---- the model ---- */

static const struct piece_ref *sort_base;

static int cmp_text(const void *a, const void *b)
{
    const struct piece_ref *x = &sort_base[*(const size_t *)a];
    const struct piece_ref *y = &sort_base[*(const size_t *)b];
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->text, y->text, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* A piece given twice is refused, as sentencepiece's loader does. */
static int check_unique(const struct piece_ref *v, size_t n, struct err *e)
{
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    if (!order)
        return err_set(e, ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    sort_base = v; /* qsort has no context argument; parsing is single-threaded per call */
    qsort(order, n, sizeof *order, cmp_text);
    int rc = 0;
    for (size_t i = 1; i < n && rc == 0; i++)
        if (cmp_text(&order[i - 1], &order[i]) == 0)
            rc = err_set(e, ERR_FORMAT, "sentencepiece model: piece '%.*s' is given twice",
                         (int)(v[order[i]].len > 64 ? 64 : v[order[i]].len),
                         (const char *)v[order[i]].text);
    free(order);
    return rc;
}

/* Copies the pieces out of the input into m (one pool for every text). */
static int own_pieces(const struct piece_ref *v, size_t n, struct spm_model *m, struct err *e)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += v[i].len + 1;
    m->pieces = calloc(n ? n : 1, sizeof *m->pieces);
    m->pool = malloc(total ? total : 1);
    if (!m->pieces || !m->pool)
        return err_set(e, ERR_NOMEM, "out of memory");
    char *p = m->pool;
    for (size_t i = 0; i < n; i++) {
        memcpy(p, v[i].text, v[i].len);
        p[v[i].len] = '\0';
        m->pieces[i] = (struct spm_piece){p, v[i].len, v[i].score, (enum spm_type)v[i].type};
        p += v[i].len + 1;
    }
    m->n_pieces = n;
    return 0;
}

static int read_model(struct rd r, struct spm_model *m, struct piece_ref **v, size_t *n,
                      struct err *e)
{
    size_t cap = 0;
    int rc = 0;
    while (rc == 0 && r.p < r.end) {
        uint32_t f;
        enum wire type;
        struct rd sub = {0};
        if ((rc = read_tag(&r, &f, &type, "the model", e)) != 0)
            break;
        if (f < 1 || f > 3) {
            rc = skip(&r, type, "the model", e);
            continue;
        }
        const char *names[] = {"ModelProto.pieces", "ModelProto.trainer_spec",
                               "ModelProto.normalizer_spec"};
        if ((rc = want(type, W_LEN, names[f - 1], e)) != 0 ||
            (rc = read_len(&r, &sub, names[f - 1], e)) != 0)
            break;
        rc = f == 1   ? add_piece(sub, v, n, &cap, e)
             : f == 2 ? read_trainer(sub, m, e)
                      : read_normalizer(sub, m, e);
    }
    return rc;
}

int spm_model_parse(const uint8_t *buf, size_t len, struct spm_model *m, struct err *e)
{
    *m = (struct spm_model){.model_type = SPM_UNIGRAM, .unk_id = 0, .bos_id = 1, .eos_id = 2,
                            .pad_id = -1, .add_dummy_prefix = true,
                            .remove_extra_whitespaces = true, .escape_whitespaces = true};
    struct piece_ref *v = NULL;
    size_t n = 0;
    int rc = read_model((struct rd){buf, buf + len}, m, &v, &n, e);
    if (rc == 0 && n == 0)
        rc = err_set(e, ERR_FORMAT, "sentencepiece model: no pieces");
    if (rc == 0 && (m->unk_id < 0 || (size_t)m->unk_id >= n))
        rc = err_set(e, ERR_FORMAT, "sentencepiece model: unk_id %d is not a piece", m->unk_id);
    if (rc == 0)
        rc = check_unique(v, n, e);
    if (rc == 0)
        rc = own_pieces(v, n, m, e);
    free(v);
    if (rc)
        spm_model_free(m);
    return rc;
}

void spm_model_free(struct spm_model *m)
{
    free(m->pieces);
    free(m->pool);
    free(m->charsmap);
    *m = (struct spm_model){0};
}
