/* tok_model: the table of tokenizer models, tok_model_new/tok_model_free, the token vector,
 * the vocab parser the models share, and WordLevel (a whole-word lookup, too small
 * for a file of its own). The models themselves are wordpiece.c, bpe.c, unigram.c. */
#include <stdlib.h>
#include <string.h>

#include "tok_model.h"

const struct tok_model_ops *const tok_model_table[] = {
    &tok_model_bpe_ops,     &tok_model_wordpiece_ops, &tok_model_wordlevel_ops,
    &tok_model_unigram_ops, NULL,
};

int token_push(struct token_vec *v, int32_t id, uint32_t start, uint32_t end)
{
    if (v->n == v->cap) {
        size_t c = v->cap ? v->cap * 2 : 32;
        struct token *t = realloc(v->v, c * sizeof *t);
        if (!t)
            return ERR_NOMEM;
        v->v = t;
        v->cap = c;
    }
    v->v[v->n++] = (struct token){.id = id, .start = start, .end = end};
    return 0;
}

void token_vec_fini(struct token_vec *v)
{
    free(v->v);
    v->v = NULL;
    v->n = v->cap = 0;
}

int tok_model_vocab_parse(const json_t *o, const char *key, struct vocab *v, const char *where,
                      struct err *e)
{
    const json_t *j = json_object_get(o, key);
    if (!j || json_is_null(j))
        return err_set(e, ERR_FORMAT, "%s: field '%s' is missing", where, key);
    if (!json_is_object(j))
        return err_set(e, ERR_FORMAT, "%s: field '%s' must be an object of token -> id", where,
                       key);
    const char *tok;
    size_t tok_len;
    json_t *val;
    json_object_keylen_foreach((json_t *)j, tok, tok_len, val)
    {
        if (!json_is_integer(val) || json_integer_value(val) < 0 ||
            json_integer_value(val) >= VOCAB_MAX_ID)
            return err_set(e, ERR_FORMAT,
                           "%s: field '%s': id of '%.40s' must be an integer in [0, %d)", where,
                           key, tok, VOCAB_MAX_ID);
        int32_t id = (int32_t)json_integer_value(val);
        int rc = vocab_add(v, tok, tok_len, id);
        if (rc == ERR_NOMEM)
            return err_set(e, rc, "%s: out of memory", where);
        if (rc != 0)
            return err_set(e, ERR_FORMAT, "%s: field '%s': id %d of '%.40s' is used twice", where,
                           key, (int)id, tok);
    }
    return 0;
}

/* HF accepted models without "type" once; guess the kind from the fields as its
 * untagged fallback does (BPE, WordPiece, WordLevel, Unigram in that order). */
static const char *legacy_type(const json_t *j)
{
    if (json_object_get(j, "merges"))
        return "BPE";
    if (json_is_array(json_object_get(j, "vocab")))
        return "Unigram";
    if (json_object_get(j, "continuing_subword_prefix") ||
        json_object_get(j, "max_input_chars_per_word"))
        return "WordPiece";
    return "WordLevel";
}

int tok_model_new(const json_t *j, struct tok_model **out, struct err *e)
{
    *out = NULL;
    if (!j || !json_is_object(j))
        return err_set(e, ERR_FORMAT, "tokenizer: field 'model' must be an object");
    const json_t *t = json_object_get(j, "type");
    const char *type;
    if (!t || json_is_null(t))
        type = legacy_type(j);
    else if (json_is_string(t))
        type = json_string_value(t);
    else
        return err_set(e, ERR_FORMAT, "model: field 'type' must be a string");
    const struct tok_model_ops *ops;
    TOK_TABLE_FIND(tok_model_table, type, ops);
    if (!ops)
        return err_set(e, ERR_FORMAT, "model: unknown type '%.60s'", type);
    struct tok_model *m = calloc(1, sizeof *m);
    if (!m)
        return err_set(e, ERR_NOMEM, "out of memory");
    m->ops = ops;
    int rc = ops->parse(j, &m->state, e);
    if (rc != 0) {
        free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void tok_model_free(struct tok_model *m)
{
    if (!m)
        return;
    m->ops->free(m->state);
    free(m);
}

/* ---- WordLevel: the whole piece is one token, or the unknown token ---- */

struct wordlevel {
    struct vocab vocab;
    int32_t unk_id; /* -1: unk_token not in the vocab, an error when needed (as HF) */
};

static void wordlevel_free(void *state)
{
    struct wordlevel *w = state;
    if (!w)
        return;
    vocab_fini(&w->vocab);
    free(w);
}

static int wordlevel_parse(const json_t *j, void **state, struct err *e)
{
    const char *where = "model WordLevel";
    struct wordlevel *w = calloc(1, sizeof *w);
    if (!w)
        return err_set(e, ERR_NOMEM, "out of memory");
    vocab_init(&w->vocab);
    const char *unk = NULL;
    int rc = tokj_str(j, "unk_token", true, &unk, where, e);
    if (rc == 0)
        rc = tok_model_vocab_parse(j, "vocab", &w->vocab, where, e);
    if (rc != 0) {
        wordlevel_free(w);
        return rc;
    }
    w->unk_id = vocab_find(&w->vocab, unk, strlen(unk));
    *state = w;
    return 0;
}

static int wordlevel_tokenize(const void *state, const char *s, size_t len, struct token_vec *out,
                              struct err *e)
{
    const struct wordlevel *w = state;
    int32_t id = vocab_find(&w->vocab, s, len);
    if (id < 0)
        id = w->unk_id;
    if (id < 0)
        return err_set(e, ERR_INPUT, "model WordLevel: unknown word and no unk_token in vocab");
    if (token_push(out, id, 0, (uint32_t)len) != 0)
        return err_set(e, ERR_NOMEM, "out of memory");
    return 0;
}

static const char *wordlevel_id_to_token(const void *state, int32_t id)
{
    return vocab_token(&((const struct wordlevel *)state)->vocab, id);
}

static int32_t wordlevel_token_to_id(const void *state, const char *s, size_t len)
{
    return vocab_find(&((const struct wordlevel *)state)->vocab, s, len);
}

static size_t wordlevel_vocab_size(const void *state)
{
    return ((const struct wordlevel *)state)->vocab.n_entries;
}

const struct tok_model_ops tok_model_wordlevel_ops = {
    .type = "WordLevel",
    .parse = wordlevel_parse,
    .tokenize = wordlevel_tokenize,
    .id_to_token = wordlevel_id_to_token,
    .token_to_id = wordlevel_token_to_id,
    .vocab_size = wordlevel_vocab_size,
    .free = wordlevel_free,
};
