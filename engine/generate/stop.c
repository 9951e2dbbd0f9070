/* stop: end-of-sequence ids, max_new_tokens and stop strings over the streamed text, and the
 * release of output text with stop-string holdback; see stop.h for the rules. */
#include "generate/stop.h"

#include <stdlib.h>
#include <string.h>

#include "generate/stream_detok.h"

struct stopper {
    struct gen_params p; /* a deep copy */
    struct detok *detok;
    char *text; /* the generated text (detokenizer deltas; cut at a matched stop string) */
    size_t len, cap;
    size_t released; /* text[0..released) has been given out */
    char *tok;       /* this step's token text (the text buffer may be cut past it) */
    size_t tok_cap;
    size_t n_tokens;
    enum gen_finish finish;
    enum gen_finish last; /* stopper_push_last's reason for the push in progress */
};

int stopper_new(const struct gen_params *p, const struct tokenizer *tk, const int32_t *context,
                size_t n_context, struct stopper **out, struct err *e)
{
    *out = NULL;
    struct stopper *st = calloc(1, sizeof *st);
    if (!st)
        return err_set(e, ERR_NOMEM, "stopper: out of memory");
    int rc = gen_params_copy(&st->p, p, e);
    if (rc) {
        free(st);
        return rc;
    }
    rc = detok_new(tk, true, context, n_context, &st->detok, e);
    if (rc) {
        stopper_free(st);
        return rc;
    }
    *out = st;
    return 0;
}

void stopper_free(struct stopper *st)
{
    if (!st)
        return;
    detok_free(st->detok);
    gen_params_fini(&st->p);
    free(st->text);
    free(st->tok);
    free(st);
}

size_t stopper_n_tokens(const struct stopper *st)
{
    return st->n_tokens;
}

enum gen_finish stopper_finish_reason(const struct stopper *st)
{
    return st->finish;
}

const char *stopper_text(const struct stopper *st, size_t *len)
{
    *len = st->released;
    return st->text ? st->text : "";
}

static int append(struct stopper *st, const char *s, size_t n, struct err *e)
{
    if (st->len + n + 1 > st->cap) {
        size_t ncap = st->cap ? st->cap : 256;
        while (ncap < st->len + n + 1)
            ncap *= 2;
        char *nt = realloc(st->text, ncap);
        if (!nt)
            return err_set(e, ERR_NOMEM, "stopper: out of memory");
        st->text = nt;
        st->cap = ncap;
    }
    memcpy(st->text + st->len, s, n);
    st->len += n;
    st->text[st->len] = '\0';
    return 0;
}

static bool is_eos(const struct stopper *st, int32_t id)
{
    if (st->p.ignore_eos)
        return false;
    for (size_t i = 0; i < st->p.n_eos_token_ids; i++)
        if (st->p.eos_token_ids[i] == id)
            return true;
    return false;
}

/* TGI: the index of a stop string the text ends with, else -1. */
static int match_suffix(const struct stopper *st)
{
    for (size_t i = 0; i < st->p.n_stop; i++) {
        size_t l = st->p.stop_len[i];
        if (st->len >= l && memcmp(st->text + st->len - l, st->p.stop[i], l) == 0)
            return (int)i;
    }
    return -1;
}

/* OpenAI: the earliest occurrence of a stop string in the text not yet released (a match
 * cannot start earlier: the held-back tail always covers a possible start). */
static int match_anywhere(const struct stopper *st, size_t *at)
{
    int best = -1;
    size_t best_at = 0;
    const char *from = st->text + st->released;
    size_t avail = st->len - st->released;
    for (size_t i = 0; i < st->p.n_stop && avail > 0; i++) {
        const char *hit = memmem(from, avail, st->p.stop[i], st->p.stop_len[i]);
        if (hit && (best < 0 || (size_t)(hit - st->text) < best_at)) {
            best = (int)i;
            best_at = (size_t)(hit - st->text);
        }
    }
    *at = best_at;
    return best;
}

/* Length of the longest tail of the unreleased text that is a proper prefix of a stop string
 * (it may yet become one). It starts with a stop string's first byte, so at a character
 * boundary. */
static size_t holdback(const struct stopper *st)
{
    size_t avail = st->len - st->released, hold = 0;
    for (size_t i = 0; i < st->p.n_stop; i++) {
        size_t k = st->p.stop_len[i] - 1;
        if (k > avail)
            k = avail;
        for (; k > hold; k--)
            if (memcmp(st->text + st->len - k, st->p.stop[i], k) == 0) {
                hold = k;
                break;
            }
    }
    return hold;
}

/* Gives out text[released..end). */
static void release(struct stopper *st, size_t end, struct gen_step *step)
{
    step->text = st->text ? st->text + st->released : "";
    step->text_len = end - st->released;
    st->released = end;
}

/* Appends the detokenizer's held-back text (at a finish by eos or length). */
static int flush(struct stopper *st, struct err *e)
{
    const char *t;
    size_t l;
    int rc = detok_flush(st->detok, &t, &l, e);
    return rc ? rc : append(st, t, l, e);
}

/* Which check ends the generation after this token, in the dialect's order. */
static enum gen_finish decide(struct stopper *st, int32_t id, int *stop_index, size_t *stop_at)
{
    bool at_length = st->p.max_new_tokens && st->n_tokens >= st->p.max_new_tokens;
    *stop_index = -1;
    if (st->p.stop_mode == GEN_STOP_SUFFIX_KEEP) { /* TGI's StoppingCriteria */
        if (at_length)
            return GEN_FINISH_LENGTH;
        if (is_eos(st, id))
            return GEN_FINISH_EOS;
        *stop_index = match_suffix(st);
        return *stop_index >= 0 ? GEN_FINISH_STOP : GEN_FINISH_NONE;
    }
    if (is_eos(st, id)) /* vLLM's check_stop */
        return GEN_FINISH_EOS;
    *stop_index = match_anywhere(st, stop_at);
    if (*stop_index >= 0)
        return GEN_FINISH_STOP;
    return at_length ? GEN_FINISH_LENGTH : GEN_FINISH_NONE;
}

/* Copies this step's token text (text[from..len)) aside for step->token_text. */
static int keep_token_text(struct stopper *st, size_t from, struct gen_step *step, struct err *e)
{
    size_t l = st->len - from;
    if (l + 1 > st->tok_cap) {
        size_t ncap = st->tok_cap ? st->tok_cap : 64;
        while (ncap < l + 1)
            ncap *= 2;
        char *nt = realloc(st->tok, ncap);
        if (!nt)
            return err_set(e, ERR_NOMEM, "stopper: out of memory");
        st->tok = nt;
        st->tok_cap = ncap;
    }
    memcpy(st->tok, st->text + from, l);
    st->tok[l] = '\0';
    step->token_text = st->tok;
    step->token_text_len = l;
    return 0;
}

int stopper_push(struct stopper *st, int32_t id, struct gen_step *step, struct err *e)
{
    memset(step, 0, sizeof *step);
    step->token_text = step->text = "";
    step->stop_index = -1;
    if (st->finish != GEN_FINISH_NONE)
        return err_set(e, ERR_INTERNAL, "stopper: push after the generation finished");
    st->n_tokens++;
    const char *t;
    size_t l;
    size_t token_at = st->len;
    int rc = detok_push(st->detok, id, &t, &l, e);
    if (!rc)
        rc = append(st, t, l, e);
    if (rc)
        return rc;
    size_t stop_at = 0;
    int stop_index;
    enum gen_finish f = decide(st, id, &stop_index, &stop_at);
    if (f == GEN_FINISH_NONE)
        f = st->last;
    if (f == GEN_FINISH_LENGTH || f == GEN_FINISH_EOS)
        rc = flush(st, e); /* the last token's text takes what the detokenizer held */
    if (!rc)
        rc = keep_token_text(st, token_at, step, e);
    if (rc)
        return rc;
    step->finish = st->finish = f;
    step->stop_index = stop_index;
    if (f == GEN_FINISH_STOP && st->p.stop_mode != GEN_STOP_SUFFIX_KEEP) {
        size_t end = stop_at;
        if (st->p.stop_mode == GEN_STOP_CUT_AFTER)
            end += st->p.stop_len[stop_index];
        release(st, end, step);
        st->len = end; /* what was decoded past the cut is dropped */
        st->text[end] = '\0';
    } else if (f != GEN_FINISH_NONE || st->p.stop_mode == GEN_STOP_SUFFIX_KEEP) {
        release(st, st->len, step);
    } else {
        release(st, st->len - holdback(st), step);
    }
    return 0;
}

int stopper_finish(struct stopper *st, enum gen_finish why, struct gen_step *step, struct err *e)
{
    memset(step, 0, sizeof *step);
    step->token_text = step->text = "";
    step->stop_index = -1;
    if (st->finish != GEN_FINISH_NONE) {
        step->finish = st->finish;
        return 0;
    }
    if (why == GEN_FINISH_NONE)
        return err_set(e, ERR_INTERNAL, "stopper_finish: no reason given");
    int rc = flush(st, e);
    if (rc)
        return rc;
    step->finish = st->finish = why;
    release(st, st->len, step);
    return 0;
}

int stopper_push_last(struct stopper *st, int32_t id, enum gen_finish why, struct gen_step *step,
                      struct err *e)
{
    st->last = why == GEN_FINISH_STOP ? GEN_FINISH_EOS : why; /* STOP needs a stop string */
    int rc = stopper_push(st, id, step, e);
    st->last = GEN_FINISH_NONE;
    return rc;
}
