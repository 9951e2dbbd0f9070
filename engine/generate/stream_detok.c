/* stream_detok: TGI's prefix/read offset decoding of a growing id list, holding back text that
 * ends in an incomplete character; see stream_detok.h. */
#include "generate/stream_detok.h"

#include <stdlib.h>
#include <string.h>

/* U+FFFD REPLACEMENT CHARACTER in UTF-8: what decoders make of an incomplete byte sequence. */
static const char replacement[] = "\xEF\xBF\xBD";
#define REPLACEMENT_LEN 3

struct detok {
    const struct tokenizer *tk;
    bool skip_special;
    int32_t *ids; /* context, then the pushed ids */
    size_t n, cap;
    size_t n_context;
    size_t prefix, read; /* ids[prefix:read] is text already released */
    char *prefix_text;   /* decode(ids[prefix:read]), kept until the offsets move */
    size_t prefix_len;
    char *delta; /* the last returned text (malloc'ed, freed on the next call) */
    bool flushed;
};

static int push_id(struct detok *d, int32_t id, struct err *e)
{
    if (d->n == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 64;
        int32_t *nv = realloc(d->ids, ncap * sizeof *nv);
        if (!nv)
            return err_set(e, ERR_NOMEM, "detok: out of memory");
        d->ids = nv;
        d->cap = ncap;
    }
    d->ids[d->n++] = id;
    return 0;
}

int detok_new(const struct tokenizer *tk, bool skip_special_tokens, const int32_t *context,
              size_t n_context, struct detok **out, struct err *e)
{
    *out = NULL;
    struct detok *d = calloc(1, sizeof *d);
    if (!d)
        return err_set(e, ERR_NOMEM, "detok: out of memory");
    d->tk = tk;
    d->skip_special = skip_special_tokens;
    for (size_t i = 0; i < n_context; i++) {
        int rc = push_id(d, context[i], e);
        if (rc) {
            detok_free(d);
            return rc;
        }
    }
    d->n_context = n_context;
    d->prefix = 0;
    d->read = n_context;
    int rc =
        tokenizer_decode(tk, d->ids, d->n, skip_special_tokens, &d->prefix_text, &d->prefix_len, e);
    if (rc) {
        detok_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

void detok_free(struct detok *d)
{
    if (!d)
        return;
    free(d->ids);
    free(d->prefix_text);
    free(d->delta);
    free(d);
}

size_t detok_n_tokens(const struct detok *d)
{
    return d->n - d->n_context;
}

static bool ends_incomplete(const char *s, size_t len)
{
    return len >= REPLACEMENT_LEN &&
           memcmp(s + len - REPLACEMENT_LEN, replacement, REPLACEMENT_LEN) == 0;
}

/* Decodes ids[prefix:]; when it adds to prefix_text (and, unless force, does not end in an
 * incomplete character), returns the difference and moves the offsets to (read, n). */
static int advance(struct detok *d, bool force, const char **text, size_t *len, struct err *e)
{
    free(d->delta);
    d->delta = NULL;
    *text = "";
    *len = 0;
    char *full = NULL;
    size_t full_len = 0;
    int rc = tokenizer_decode(d->tk, d->ids + d->prefix, d->n - d->prefix, d->skip_special, &full,
                              &full_len, e);
    if (rc)
        return rc;
    if (full_len <= d->prefix_len || (!force && ends_incomplete(full, full_len))) {
        free(full);
        return 0; /* nothing final yet */
    }
    /* the new text: what follows the already released prefix text */
    size_t n_new = full_len - d->prefix_len;
    memmove(full, full + d->prefix_len, n_new);
    full[n_new] = '\0';
    d->delta = full;
    *text = full;
    *len = n_new;
    /* the next prefix text is decode(ids[read:n]) */
    char *next = NULL;
    size_t next_len = 0;
    rc = tokenizer_decode(d->tk, d->ids + d->read, d->n - d->read, d->skip_special, &next,
                          &next_len, e);
    if (rc)
        return rc;
    free(d->prefix_text);
    d->prefix_text = next;
    d->prefix_len = next_len;
    d->prefix = d->read;
    d->read = d->n;
    return 0;
}

int detok_push(struct detok *d, int32_t id, const char **text, size_t *len, struct err *e)
{
    *text = "";
    *len = 0;
    if (d->flushed)
        return err_set(e, ERR_INTERNAL, "detok: push after flush");
    int rc = push_id(d, id, e);
    return rc ? rc : advance(d, false, text, len, e);
}

int detok_flush(struct detok *d, const char **text, size_t *len, struct err *e)
{
    *text = "";
    *len = 0;
    if (d->flushed)
        return 0;
    d->flushed = true;
    if (d->read == d->n)
        return 0; /* everything pushed has been released */
    return advance(d, true, text, len, e);
}
