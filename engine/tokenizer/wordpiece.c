/* wordpiece: the WordPiece model of HF tokenizers (BERT). Greedy longest match
 * first: from the current position take the longest vocab entry (with the
 * continuing-subword prefix after the first piece); if some position has no match
 * the whole word becomes the unknown token, as it does when it is too long. */
#include <stdlib.h>
#include <string.h>

#include "tok_model.h"
#include "utf8.h"

struct wordpiece {
    struct vocab vocab;
    int32_t unk_id;
    char *prefix; /* continuing_subword_prefix, owned */
    size_t prefix_len;
    size_t max_chars; /* max_input_chars_per_word */
};

static void wordpiece_free(void *state)
{
    struct wordpiece *w = state;
    if (!w)
        return;
    vocab_fini(&w->vocab);
    free(w->prefix);
    free(w);
}

static int wordpiece_parse(const json_t *j, void **state, struct err *e)
{
    const char *where = "model WordPiece";
    const char *unk = NULL, *prefix = NULL;
    long long max_chars = 0;
    struct wordpiece *w = calloc(1, sizeof *w);
    if (!w)
        return err_set(e, ERR_NOMEM, "out of memory");
    vocab_init(&w->vocab);
    /* HF's deserializer requires every field (only "type" is optional). */
    int rc = tokj_str(j, "unk_token", true, &unk, where, e);
    if (rc == 0)
        rc = tokj_str(j, "continuing_subword_prefix", true, &prefix, where, e);
    if (rc == 0)
        rc = tokj_int(j, "max_input_chars_per_word", true, &max_chars, where, e);
    if (rc == 0 && max_chars < 0)
        rc = err_set(e, ERR_FORMAT, "%s: field 'max_input_chars_per_word' must be >= 0", where);
    if (rc == 0)
        rc = tok_model_vocab_parse(j, "vocab", &w->vocab, where, e);
    if (rc == 0 && (w->unk_id = vocab_find(&w->vocab, unk, strlen(unk))) < 0)
        rc = err_set(e, ERR_FORMAT, "%s: field 'unk_token': '%.40s' is not in the vocab", where,
                     unk);
    if (rc == 0) {
        w->prefix_len = strlen(prefix);
        w->max_chars = (size_t)max_chars;
        if (!(w->prefix = strdup(prefix)))
            rc = err_set(e, ERR_NOMEM, "out of memory");
    }
    if (rc != 0) {
        wordpiece_free(w);
        return rc;
    }
    *state = w;
    return 0;
}

/* Byte length of the last char of s[0..len), len > 0. */
static size_t last_char_len(const char *s, size_t len)
{
    size_t n = 1;
    while (n < len && (((unsigned char)s[len - n]) & 0xC0) == 0x80)
        n++;
    return n;
}

static int wordpiece_tokenize(const void *state, const char *s, size_t len, struct token_vec *out,
                              struct err *e)
{
    const struct wordpiece *w = state;
    size_t first = out->n;
    char stack_buf[256];
    char *buf = stack_buf;
    int rc = 0;
    if (utf8_count(s, len) > w->max_chars)
        goto unknown;
    /* Candidates after the first are prefix + s[start..end): built once in buf. */
    if (w->prefix_len + len > sizeof stack_buf && !(buf = malloc(w->prefix_len + len))) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    memcpy(buf, w->prefix, w->prefix_len);
    for (size_t start = 0; start < len;) {
        size_t end = len;
        int32_t id = -1;
        if (start > 0)
            memcpy(buf + w->prefix_len, s + start, len - start);
        while (start < end) {
            id = start > 0 ? vocab_find(&w->vocab, buf, w->prefix_len + end - start)
                           : vocab_find(&w->vocab, s, end);
            if (id >= 0)
                break;
            end -= last_char_len(s + start, end - start);
        }
        if (id < 0)
            goto unknown;
        if (token_push(out, id, (uint32_t)start, (uint32_t)end) != 0) {
            rc = err_set(e, ERR_NOMEM, "out of memory");
            goto cleanup;
        }
        start = end;
    }
    goto cleanup;
unknown:
    out->n = first;
    if (token_push(out, w->unk_id, 0, (uint32_t)len) != 0)
        rc = err_set(e, ERR_NOMEM, "out of memory");
cleanup:
    if (buf != stack_buf)
        free(buf);
    return rc;
}

static const char *wordpiece_id_to_token(const void *state, int32_t id)
{
    return vocab_token(&((const struct wordpiece *)state)->vocab, id);
}

static int32_t wordpiece_token_to_id(const void *state, const char *s, size_t len)
{
    return vocab_find(&((const struct wordpiece *)state)->vocab, s, len);
}

static size_t wordpiece_vocab_size(const void *state)
{
    return ((const struct wordpiece *)state)->vocab.n_entries;
}

const struct tok_model_ops tok_model_wordpiece_ops = {
    .type = "WordPiece",
    .parse = wordpiece_parse,
    .tokenize = wordpiece_tokenize,
    .id_to_token = wordpiece_id_to_token,
    .token_to_id = wordpiece_token_to_id,
    .vocab_size = wordpiece_vocab_size,
    .free = wordpiece_free,
};
