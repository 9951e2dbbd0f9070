/* postprocess: the table of post-processors (HF tokenizers src/processors and the
 * post-processor half of ByteLevel). A post-processor takes one window of the first
 * sequence (and of the pair), adds the model's special tokens, sets type ids and
 * sequence ids, and may trim offsets; truncation and overflow windows are the
 * caller's business (tokenizer.c).
 *
 * HF runs processors on a list of encodings (process_encodings) and merges the list
 * at the end; Sequence chains processors over that list, so a processor may see the
 * pieces another one produced. We keep that shape: every row has a list function,
 * and its `process` only builds the list [a, b], runs it and concatenates. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok.h"
#include "unicode.h"
#include "utf8.h"

#define BYTE_LEVEL_SPACE 0x120 /* 'Ġ': the byte-level char standing for ' ' */

/* ---- lists of encodings (HF Vec<Encoding>) ---- */

struct enc_list {
    struct encoding *v;
    size_t n, cap;
};

/* Appends a new empty encoding and returns it (NULL when out of memory). */
static struct encoding *list_add(struct enc_list *l)
{
    if (l->n == l->cap) {
        size_t c = l->cap ? l->cap * 2 : 8;
        struct encoding *v = realloc(l->v, c * sizeof *v);
        if (!v)
            return NULL;
        l->v = v;
        l->cap = c;
    }
    struct encoding *enc = &l->v[l->n++];
    encoding_init(enc);
    return enc;
}

static void list_fini(struct enc_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        encoding_fini(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Moves *src to the end of l; src is left empty. */
static int list_move_in(struct enc_list *l, struct encoding *src)
{
    struct encoding *dst = list_add(l);
    if (!dst)
        return ERR_NOMEM;
    *dst = *src;
    encoding_init(src);
    return 0;
}

static void set_type_ids(struct encoding *enc, uint32_t type_id)
{
    for (size_t k = 0; k < enc->n; k++)
        enc->type_ids[k] = type_id;
}

/* HF set_sequence_id: the whole encoding belongs to sequence seq. */
static void set_sequence(struct encoding *enc, int seq)
{
    for (size_t k = 0; k < enc->n; k++)
        enc->seq[k] = (int8_t)seq;
}

/* HF builds the encodings it post-processes with a special-tokens mask of 0, even
 * for added special tokens found in the text; only the processors set 1s. */
static void clear_special(struct encoding *enc)
{
    if (enc->n)
        memset(enc->special, 0, enc->n);
}

static int push_special(struct encoding *enc, int32_t id, const char *tok, uint32_t type_id)
{
    return encoding_push(enc, id, tok, strlen(tok), type_id, -1, -1, true, (struct nspan){0, 0});
}

/* Appends the tokens of src as sequence `seq`, no longer marked special (Bert and
 * Roberta rebuild the special-tokens mask as 0 for sequence tokens). */
static int append_sequence(struct encoding *dst, const struct encoding *src, int seq)
{
    size_t from = dst->n;
    int rc = encoding_append(dst, src, 0, src->n);
    for (size_t k = from; rc == 0 && k < dst->n; k++) {
        dst->seq[k] = (int8_t)seq;
        dst->special[k] = 0;
    }
    return rc;
}

static int nomem(struct err *e)
{
    return err_set(e, ERR_NOMEM, "out of memory");
}

/* ---- ByteLevel offset trimming (pre_tokenizers/byte_level.rs process_offsets) ---- */

static bool is_space_char(uint32_t cp)
{
    return cp == BYTE_LEVEL_SPACE || uni_is_whitespace(cp);
}

/* Moves each token's offsets past its leading and trailing spaces ('Ġ' or
 * whitespace). One leading space on the first token is kept when the pre-tokenizer
 * added it (add_prefix_space). Offsets are in chars, one per space char. */
static void trim_offsets(struct encoding *enc, bool add_prefix_space)
{
    for (size_t i = 0; i < enc->n; i++) {
        const char *t = encoding_token(enc, i);
        size_t len = strlen(t), k = 0, n;
        uint32_t leading = 0, trailing = 0;
        while (k < len && is_space_char(utf8_decode(t + k, &n))) {
            leading++;
            k += n;
        }
        for (k = 0; k < len; k += n)
            trailing = is_space_char(utf8_decode(t + k, &n)) ? trailing + 1 : 0;
        struct nspan *o = &enc->offsets[i];
        if (leading > 0) {
            bool is_first = i == 0 || o->start == 0;
            if (is_first && add_prefix_space && leading == 1)
                leading = 0;
            o->start = o->start + leading < o->end ? o->start + leading : o->end;
        }
        if (trailing > 0 && o->end >= trailing)
            o->end = o->end - trailing > o->start ? o->end - trailing : o->start;
    }
}

/* ---- the common frame of every row ---- */

typedef int (*pp_list_fn)(const void *state, struct enc_list *l, bool add_special, struct err *e);

/* A table row plus its list function; ops comes first so that a row can be found
 * from the ops pointer a struct postprocessor holds. */
struct pp_row {
    struct postprocessor_ops ops;
    pp_list_fn list;
};

static pp_list_fn row_list(const struct postprocessor *p)
{
    return ((const struct pp_row *)(const void *)p->ops)->list;
}

/* HF PostProcessor::process: a and b become sequences 0 and 1 with type ids 0 and
 * 1, the row rewrites the list, and the list is concatenated into out. */
static int run(pp_list_fn list, const void *state, struct encoding *a, struct encoding *b,
               bool add_special, struct encoding *out, struct err *e)
{
    struct enc_list l = {0};
    int rc = list_move_in(&l, a);
    if (rc == 0 && b)
        rc = list_move_in(&l, b);
    if (rc) {
        list_fini(&l);
        return nomem(e);
    }
    for (size_t i = 0; i < l.n; i++) {
        set_sequence(&l.v[i], (int)i);
        set_type_ids(&l.v[i], (uint32_t)i);
        clear_special(&l.v[i]);
    }
    rc = list(state, &l, add_special, e);
    for (size_t i = 0; rc == 0 && i < l.n; i++)
        if (encoding_append(out, &l.v[i], 0, l.v[i].n))
            rc = nomem(e);
    list_fini(&l);
    return rc;
}

/* Reads [token, id] (a Rust (String, u32)). */
static int parse_token_pair(const json_t *j, const char *key, char **tok, int32_t *id,
                            const char *where, struct err *e)
{
    json_t *v = json_object_get(j, key);
    if (!v || json_is_null(v))
        return err_set(e, ERR_FORMAT, "%s: field '%s' is missing", where, key);
    json_t *t = json_array_get(v, 0), *i = json_array_get(v, 1);
    if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_string(t) || !json_is_integer(i) ||
        json_integer_value(i) < 0 || json_integer_value(i) > INT32_MAX)
        return err_set(e, ERR_FORMAT, "%s: field '%s' must be [token, id]", where, key);
    if (!(*tok = strdup(json_string_value(t))))
        return nomem(e);
    *id = (int32_t)json_integer_value(i);
    return 0;
}

/* ---- TemplateProcessing ---- */

struct special {
    char *name;   /* the key in "special_tokens" that templates use */
    int32_t *ids; /* one name may stand for several tokens */
    char **tokens;
    size_t n;
};

struct piece {
    int seq; /* 0 ($A) or 1 ($B); -1 for a special token */
    uint32_t type_id;
    const struct special *sp;
};

struct template
{
    struct piece *v;
    size_t n;
    size_t added;       /* special tokens it adds */
    size_t last_use[2]; /* index of the last piece using sequence A / B, or SIZE_MAX */
};

struct template_state {
    struct template single, pair;
    struct special *sp;
    size_t n_sp;
};

static void template_free(void *state)
{
    struct template_state *t = state;
    if (!t)
        return;
    for (size_t i = 0; i < t->n_sp; i++) {
        for (size_t k = 0; k < t->sp[i].n; k++)
            free(t->sp[i].tokens[k]);
        free(t->sp[i].tokens);
        free(t->sp[i].ids);
        free(t->sp[i].name);
    }
    free(t->sp);
    free(t->single.v);
    free(t->pair.v);
    free(t);
}

/* One entry of "special_tokens": {"id": name, "ids": [...], "tokens": [...]}. */
static int parse_special(const char *name, const json_t *j, struct special *sp, struct err *e)
{
    const char *where = "post_processor TemplateProcessing: special_tokens";
    json_t *ids = json_object_get(j, "ids"), *toks = json_object_get(j, "tokens");
    if (!json_is_object(j))
        return err_set(e, ERR_FORMAT, "%s: '%s' must be an object", where, name);
    if (!json_is_array(ids))
        return err_set(e, ERR_FORMAT, "%s: '%s': field 'ids' must be an array", where, name);
    if (!json_is_array(toks))
        return err_set(e, ERR_FORMAT, "%s: '%s': field 'tokens' must be an array", where, name);
    size_t n = json_array_size(ids);
    if (json_array_size(toks) != n)
        return err_set(e, ERR_FORMAT, "%s: '%s': 'ids' and 'tokens' must have the same length",
                       where, name);
    if (!(sp->name = strdup(name)) || (n && !(sp->ids = calloc(n, sizeof *sp->ids))) ||
        (n && !(sp->tokens = calloc(n, sizeof *sp->tokens))))
        return nomem(e);
    for (size_t k = 0; k < n; k++) {
        json_t *id = json_array_get(ids, k), *tok = json_array_get(toks, k);
        if (!json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) > INT32_MAX)
            return err_set(e, ERR_FORMAT, "%s: '%s': 'ids' must hold token ids", where, name);
        if (!json_is_string(tok))
            return err_set(e, ERR_FORMAT, "%s: '%s': 'tokens' must hold strings", where, name);
        sp->ids[k] = (int32_t)json_integer_value(id);
        if (!(sp->tokens[k] = strdup(json_string_value(tok))))
            return nomem(e);
        sp->n = k + 1;
    }
    return 0;
}

/* One template piece: {"Sequence": {"id": "A"|"B", "type_id": n}} or
 * {"SpecialToken": {"id": name, "type_id": n}}. */
static int parse_piece(const struct template_state *t, const json_t *j, struct piece *p,
                       const char *where, struct err *e)
{
    json_t *seq = json_object_get(j, "Sequence"), *spe = json_object_get(j, "SpecialToken");
    json_t *body = seq ? seq : spe;
    if (!json_is_object(j) || json_object_size(j) != 1 || !json_is_object(body))
        return err_set(e, ERR_FORMAT,
                       "%s: each piece must be {\"Sequence\": {...}} or {\"SpecialToken\": {...}}",
                       where);
    const char *id = NULL;
    long long type_id = 0;
    int rc = tokj_str(body, "id", true, &id, where, e);
    if (rc == 0)
        rc = tokj_int(body, "type_id", true, &type_id, where, e);
    if (rc)
        return rc;
    if (type_id < 0 || type_id > UINT32_MAX)
        return err_set(e, ERR_FORMAT, "%s: field 'type_id' out of range", where);
    p->type_id = (uint32_t)type_id;
    p->sp = NULL;
    if (seq) {
        if (strcmp(id, "A") != 0 && strcmp(id, "B") != 0)
            return err_set(e, ERR_FORMAT, "%s: Sequence field 'id' must be \"A\" or \"B\"", where);
        p->seq = id[0] == 'A' ? 0 : 1;
        return 0;
    }
    p->seq = -1;
    for (size_t i = 0; i < t->n_sp; i++)
        if (strcmp(t->sp[i].name, id) == 0)
            p->sp = &t->sp[i];
    if (!p->sp)
        return err_set(e, ERR_FORMAT, "%s: special token '%s' is not in 'special_tokens'", where,
                       id);
    return 0;
}

static int parse_template(struct template_state *t, const json_t *j, const char *key,
                          struct template *out, struct err *e)
{
    char where[64];
    snprintf(where, sizeof where, "post_processor TemplateProcessing: field '%s'", key);
    json_t *v = json_object_get(j, key);
    if (!v || json_is_null(v))
        return err_set(e, ERR_FORMAT, "post_processor TemplateProcessing: field '%s' is missing",
                       key);
    if (!json_is_array(v))
        return err_set(e, ERR_FORMAT, "%s must be an array of pieces", where);
    out->n = json_array_size(v);
    out->last_use[0] = out->last_use[1] = SIZE_MAX;
    if (out->n && !(out->v = calloc(out->n, sizeof *out->v)))
        return nomem(e);
    for (size_t i = 0; i < out->n; i++) {
        struct piece *p = &out->v[i];
        int rc = parse_piece(t, json_array_get(v, i), p, where, e);
        if (rc)
            return rc;
        if (p->seq >= 0)
            out->last_use[p->seq] = i;
        else
            out->added += p->sp->n;
    }
    return 0;
}

static int template_parse(const json_t *j, void **state, struct err *e)
{
    struct template_state *t = calloc(1, sizeof *t);
    if (!t)
        return nomem(e);
    int rc = 0;
    json_t *sp = json_object_get(j, "special_tokens");
    if (!sp || json_is_null(sp))
        rc = err_set(e, ERR_FORMAT,
                     "post_processor TemplateProcessing: field 'special_tokens' is missing");
    else if (!json_is_object(sp))
        rc = err_set(e, ERR_FORMAT,
                     "post_processor TemplateProcessing: field 'special_tokens' must be an "
                     "object");
    else if (json_object_size(sp) && !(t->sp = calloc(json_object_size(sp), sizeof *t->sp)))
        rc = nomem(e);
    const char *name;
    json_t *val;
    if (rc == 0)
        json_object_foreach((json_t *)sp, name, val)
        {
            rc = parse_special(name, val, &t->sp[t->n_sp++], e);
            if (rc)
                break;
        }
    if (rc == 0)
        rc = parse_template(t, j, "single", &t->single, e);
    if (rc == 0)
        rc = parse_template(t, j, "pair", &t->pair, e);
    if (rc) {
        template_free(t);
        return rc;
    }
    *state = t;
    return 0;
}

static size_t template_added(const void *state, bool is_pair)
{
    const struct template_state *t = state;
    return is_pair ? t->pair.added : t->single.added;
}

/* Replaces the list by the template's pieces: each sequence with the piece's type
 * id, each special token (when add_special) as its own small encoding. */
static int template_list(const void *state, struct enc_list *l, bool add_special, struct err *e)
{
    const struct template_state *t = state;
    if (l->n != 1 && l->n != 2)
        return err_set(e, ERR_INVALID,
                       "post_processor TemplateProcessing: expects 1 or 2 sequences, got %zu",
                       l->n);
    const struct template *tp = l->n == 2 ? &t->pair : &t->single;
    struct enc_list out = {0};
    int rc = 0;
    for (size_t i = 0; i < tp->n && rc == 0; i++) {
        const struct piece *p = &tp->v[i];
        if (p->seq >= (int)l->n) {
            rc = err_set(e, ERR_INVALID,
                         "post_processor TemplateProcessing: template uses sequence B but no "
                         "pair was given");
            break;
        }
        if (p->seq < 0 && !add_special)
            continue;
        struct encoding *enc = list_add(&out);
        if (!enc) {
            rc = nomem(e);
            break;
        }
        if (p->seq >= 0) {
            struct encoding *src = &l->v[p->seq];
            if (tp->last_use[p->seq] == i) { /* last use: move instead of copying */
                *enc = *src;
                encoding_init(src);
            } else if (encoding_append(enc, src, 0, src->n)) {
                rc = nomem(e);
                break;
            }
            set_type_ids(enc, p->type_id);
            /* HF merges sequence ranges in a map keyed by sequence: when a template
             * repeats $A, only its last copy keeps sequence id 0. */
            set_sequence(enc, tp->last_use[p->seq] == i ? p->seq : -1);
            continue;
        }
        for (size_t k = 0; k < p->sp->n && rc == 0; k++)
            if (push_special(enc, p->sp->ids[k], p->sp->tokens[k], p->type_id))
                rc = nomem(e);
    }
    if (rc) {
        list_fini(&out);
        return rc;
    }
    list_fini(l);
    *l = out;
    return 0;
}

/* ---- BertProcessing and RobertaProcessing ---- */

struct cls_sep {
    char *sep, *cls;
    int32_t sep_id, cls_id;
    bool trim_offsets, add_prefix_space; /* Roberta only */
};

static void cls_sep_free(void *state)
{
    struct cls_sep *c = state;
    if (!c)
        return;
    free(c->sep);
    free(c->cls);
    free(c);
}

static int cls_sep_parse(const json_t *j, void **state, bool roberta, struct err *e)
{
    const char *where =
        roberta ? "post_processor RobertaProcessing" : "post_processor BertProcessing";
    struct cls_sep *c = calloc(1, sizeof *c);
    if (!c)
        return nomem(e);
    int rc = parse_token_pair(j, "sep", &c->sep, &c->sep_id, where, e);
    if (rc == 0)
        rc = parse_token_pair(j, "cls", &c->cls, &c->cls_id, where, e);
    if (rc == 0 && roberta)
        rc = tokj_bool(j, "trim_offsets", true, &c->trim_offsets, where, e);
    if (rc == 0 && roberta)
        rc = tokj_bool(j, "add_prefix_space", true, &c->add_prefix_space, where, e);
    if (rc) {
        cls_sep_free(c);
        return rc;
    }
    *state = c;
    return 0;
}

static int bert_parse(const json_t *j, void **state, struct err *e)
{
    return cls_sep_parse(j, state, false, e);
}

static int roberta_parse(const json_t *j, void **state, struct err *e)
{
    return cls_sep_parse(j, state, true, e);
}

static size_t bert_added(const void *state, bool is_pair)
{
    (void)state;
    return is_pair ? 3 : 2;
}

static size_t roberta_added(const void *state, bool is_pair)
{
    (void)state;
    return is_pair ? 4 : 2;
}

/* BERT: [CLS] A [SEP] then B [SEP] with type id 1 for the pair's [SEP]. */
static int bert_list(const void *state, struct enc_list *l, bool add_special, struct err *e)
{
    const struct cls_sep *c = state;
    if (!add_special)
        return 0;
    for (size_t i = 0; i < l->n; i++) {
        struct encoding out;
        encoding_init(&out);
        int rc = 0;
        if (i == 0)
            rc = push_special(&out, c->cls_id, c->cls, 0);
        if (rc == 0)
            rc = append_sequence(&out, &l->v[i], i == 0 ? 0 : 1);
        if (rc == 0)
            rc = push_special(&out, c->sep_id, c->sep, i == 0 ? 0 : 1);
        if (rc) {
            encoding_fini(&out);
            return nomem(e);
        }
        encoding_fini(&l->v[i]);
        l->v[i] = out;
    }
    return 0;
}

/* RoBERTa: offsets trimmed as ByteLevel, every type id 0, and
 * <s> A </s> then </s> B </s>. */
static int roberta_list(const void *state, struct enc_list *l, bool add_special, struct err *e)
{
    const struct cls_sep *c = state;
    for (size_t i = 0; i < l->n; i++) {
        if (c->trim_offsets)
            trim_offsets(&l->v[i], c->add_prefix_space);
        set_type_ids(&l->v[i], 0);
    }
    if (!add_special)
        return 0;
    for (size_t i = 0; i < l->n; i++) {
        struct encoding out;
        encoding_init(&out);
        int rc = i == 0 ? push_special(&out, c->cls_id, c->cls, 0)
                        : push_special(&out, c->sep_id, c->sep, 0);
        if (rc == 0)
            rc = append_sequence(&out, &l->v[i], i == 0 ? 0 : 1);
        if (rc == 0)
            rc = push_special(&out, c->sep_id, c->sep, 0);
        if (rc) {
            encoding_fini(&out);
            return nomem(e);
        }
        encoding_fini(&l->v[i]);
        l->v[i] = out;
    }
    return 0;
}

/* ---- ByteLevel ---- */

struct bytelevel {
    bool add_prefix_space, trim_offsets;
};

static int bytelevel_parse(const json_t *j, void **state, struct err *e)
{
    const char *where = "post_processor ByteLevel";
    struct bytelevel bl = {0};
    bool use_regex = true;
    int rc = tokj_bool(j, "add_prefix_space", true, &bl.add_prefix_space, where, e);
    if (rc == 0)
        rc = tokj_bool(j, "trim_offsets", true, &bl.trim_offsets, where, e);
    if (rc == 0)
        rc = tokj_bool(j, "use_regex", false, &use_regex, where, e);
    if (rc)
        return rc;
    struct bytelevel *p = malloc(sizeof *p);
    if (!p)
        return nomem(e);
    *p = bl;
    *state = p;
    return 0;
}

static size_t zero_added(const void *state, bool is_pair)
{
    (void)state;
    (void)is_pair;
    return 0;
}

/* Trims offsets when asked; each encoding of the list becomes sequence i. */
static int bytelevel_list(const void *state, struct enc_list *l, bool add_special, struct err *e)
{
    (void)add_special;
    (void)e;
    const struct bytelevel *bl = state;
    for (size_t i = 0; i < l->n; i++) {
        if (bl->trim_offsets)
            trim_offsets(&l->v[i], bl->add_prefix_space);
        set_sequence(&l->v[i], (int)i);
    }
    return 0;
}

/* ---- Sequence ---- */

struct pp_sequence {
    struct postprocessor **v;
    size_t n;
};

static void sequence_free(void *state)
{
    struct pp_sequence *s = state;
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        postprocessor_free(s->v[i]);
    free(s->v);
    free(s);
}

static int sequence_parse(const json_t *j, void **state, struct err *e)
{
    json_t *list = json_object_get(j, "processors");
    if (!list || json_is_null(list))
        return err_set(e, ERR_FORMAT, "post_processor Sequence: field 'processors' is missing");
    if (!json_is_array(list))
        return err_set(e, ERR_FORMAT,
                       "post_processor Sequence: field 'processors' must be an array");
    struct pp_sequence *s = calloc(1, sizeof *s);
    size_t n = json_array_size(list);
    if (!s || (n && !(s->v = calloc(n, sizeof *s->v)))) {
        free(s);
        return nomem(e);
    }
    for (size_t i = 0; i < n; i++) {
        int rc = postprocessor_new(json_array_get(list, i), &s->v[i], e);
        if (rc) {
            err_prefix(e, "post_processor Sequence: processors[%zu]: ", i);
            sequence_free(s);
            return rc;
        }
        s->n++;
    }
    *state = s;
    return 0;
}

static size_t sequence_added(const void *state, bool is_pair)
{
    const struct pp_sequence *s = state;
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        n += s->v[i]->ops->added_tokens(s->v[i]->state, is_pair);
    return n;
}

/* Each processor rewrites the list the previous one produced. */
static int sequence_list(const void *state, struct enc_list *l, bool add_special, struct err *e)
{
    const struct pp_sequence *s = state;
    for (size_t i = 0; i < s->n; i++) {
        int rc = row_list(s->v[i])(s->v[i]->state, l, add_special, e);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- the table ---- */

static void plain_free(void *state)
{
    free(state);
}

#define PROCESS_FN(name)                                                                           \
    static int name##_process(const void *state, struct encoding *a, struct encoding *b,           \
                              bool add_special, struct encoding *out, struct err *e)               \
    {                                                                                              \
        return run(name##_list, state, a, b, add_special, out, e);                                 \
    }
PROCESS_FN(template)
PROCESS_FN(bert)
PROCESS_FN(roberta)
PROCESS_FN(bytelevel)
PROCESS_FN(sequence)

static const struct pp_row row_template = {
    {"TemplateProcessing", template_parse, template_added, template_process, template_free},
    template_list};
static const struct pp_row row_bert = {
    {"BertProcessing", bert_parse, bert_added, bert_process, cls_sep_free}, bert_list};
static const struct pp_row row_roberta = {
    {"RobertaProcessing", roberta_parse, roberta_added, roberta_process, cls_sep_free},
    roberta_list};
static const struct pp_row row_bytelevel = {
    {"ByteLevel", bytelevel_parse, zero_added, bytelevel_process, plain_free}, bytelevel_list};
static const struct pp_row row_sequence = {
    {"Sequence", sequence_parse, sequence_added, sequence_process, sequence_free}, sequence_list};

const struct postprocessor_ops *const postprocessor_table[] = {
    &row_template.ops, &row_bert.ops, &row_roberta.ops, &row_bytelevel.ops, &row_sequence.ops, NULL,
};

int postprocessor_new(const json_t *j, struct postprocessor **out, struct err *e)
{
    *out = NULL;
    if (!json_is_object(j))
        return err_set(e, ERR_FORMAT, "post_processor: must be an object");
    const char *type = NULL;
    int rc = tokj_str(j, "type", true, &type, "post_processor", e);
    if (rc)
        return rc;
    const struct postprocessor_ops *ops;
    TOK_TABLE_FIND(postprocessor_table, type, ops);
    if (!ops)
        return err_set(e, ERR_FORMAT, "post_processor: unknown type '%s'", type);
    struct postprocessor *p = calloc(1, sizeof *p);
    if (!p)
        return nomem(e);
    p->ops = ops;
    rc = ops->parse(j, &p->state, e);
    if (rc) {
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void postprocessor_free(struct postprocessor *p)
{
    if (!p)
        return;
    if (p->ops && p->ops->free)
        p->ops->free(p->state);
    free(p);
}

/* Without a post-processor HF keeps the type ids it was given and, for a pair,
 * marks the two encodings as sequences 0 and 1 before concatenating them. The
 * special-tokens mask is all 0, as HF's model output. */
int postprocess_default(struct encoding *a, struct encoding *b, struct encoding *out, struct err *e)
{
    if (b) {
        set_sequence(a, 0);
        set_sequence(b, 1);
    }
    clear_special(a);
    if (b)
        clear_special(b);
    if (encoding_append(out, a, 0, a->n) || (b && encoding_append(out, b, 0, b->n)))
        return nomem(e);
    return 0;
}
