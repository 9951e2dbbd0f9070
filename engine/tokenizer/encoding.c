/* encoding: the growable struct encoding of tok.h (HF Encoding without overflow;
 * overflow windows are kept by the caller as separate encodings). */
#include <stdlib.h>
#include <string.h>

#include "tok.h"

void encoding_init(struct encoding *enc)
{
    memset(enc, 0, sizeof *enc);
}

void encoding_fini(struct encoding *enc)
{
    if (!enc)
        return;
    free(enc->ids);
    free(enc->type_ids);
    free(enc->words);
    free(enc->seq);
    free(enc->special);
    free(enc->attention);
    free(enc->offsets);
    free(enc->tok_at);
    free(enc->pool);
    memset(enc, 0, sizeof *enc);
}

void encoding_clear(struct encoding *enc)
{
    enc->n = 0;
    enc->pool_len = 0;
}

static int resize(void **p, size_t n, size_t elem)
{
    void *np = realloc(*p, n * elem);
    if (!np)
        return ERR_NOMEM;
    *p = np;
    return 0;
}

static int reserve(struct encoding *enc, size_t n)
{
    if (n <= enc->cap)
        return 0;
    size_t c = enc->cap ? enc->cap * 2 : 32;
    while (c < n)
        c *= 2;
    if (resize((void **)&enc->ids, c, sizeof *enc->ids) ||
        resize((void **)&enc->type_ids, c, sizeof *enc->type_ids) ||
        resize((void **)&enc->words, c, sizeof *enc->words) ||
        resize((void **)&enc->seq, c, sizeof *enc->seq) ||
        resize((void **)&enc->special, c, sizeof *enc->special) ||
        resize((void **)&enc->attention, c, sizeof *enc->attention) ||
        resize((void **)&enc->offsets, c, sizeof *enc->offsets) ||
        resize((void **)&enc->tok_at, c, sizeof *enc->tok_at))
        return ERR_NOMEM;
    enc->cap = c;
    return 0;
}

static int pool_add(struct encoding *enc, const char *s, size_t len, uint32_t *at)
{
    if (enc->pool_len + len + 1 > enc->pool_cap) {
        size_t c = enc->pool_cap ? enc->pool_cap * 2 : 256;
        while (c < enc->pool_len + len + 1)
            c *= 2;
        if (resize((void **)&enc->pool, c, 1))
            return ERR_NOMEM;
        enc->pool_cap = c;
    }
    *at = (uint32_t)enc->pool_len;
    memcpy(enc->pool + enc->pool_len, s, len);
    enc->pool[enc->pool_len + len] = '\0';
    enc->pool_len += len + 1;
    return 0;
}

int encoding_push(struct encoding *enc, int32_t id, const char *tok, size_t tok_len,
                  uint32_t type_id, int32_t word, int seq, bool special, struct nspan offsets)
{
    if (reserve(enc, enc->n + 1))
        return ERR_NOMEM;
    size_t i = enc->n;
    if (pool_add(enc, tok ? tok : "", tok ? tok_len : 0, &enc->tok_at[i]))
        return ERR_NOMEM;
    enc->ids[i] = id;
    enc->type_ids[i] = type_id;
    enc->words[i] = word;
    enc->seq[i] = (int8_t)seq;
    enc->special[i] = special;
    enc->attention[i] = 1;
    enc->offsets[i] = offsets;
    enc->n++;
    return 0;
}

int encoding_append(struct encoding *dst, const struct encoding *src, size_t start, size_t stop)
{
    if (stop > src->n)
        stop = src->n;
    for (size_t i = start; i < stop; i++) {
        const char *t = encoding_token(src, i);
        int rc = encoding_push(dst, src->ids[i], t, strlen(t), src->type_ids[i], src->words[i],
                               src->seq[i], src->special[i], src->offsets[i]);
        if (rc)
            return rc;
        dst->attention[dst->n - 1] = src->attention[i];
    }
    return 0;
}
