/* generator: see generator.h. What every kind shares: the pool of caches (gen_cache.c: kept
 * with the tokens they hold, for prefix caching),
 * the stepping thread's oneDNN context and run buffers, a sequence's sampler, stopper and
 * generated ids from start to result, and gen_seq_emit, which turns one logits row into a
 * token event. The kinds' files (gen_decoder.c, gen_t5.c) compose and run the steps.
 *
 * A sequence's context: the stopper and detokenizer start from the last DETOK_CONTEXT prompt
 * ids (TGI's prefix offset), so the text is what follows the prompt (a Llama "▁word" keeps its
 * space), and the sampler's repetition penalty counts the prompt; for an encoder-decoder both
 * start from the decoder start token, as transformers' generate has them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "gen_impl.h"

#define DETOK_CONTEXT 5 /* prompt ids the detokenizer starts from (TGI's prefix offset) */

struct generator *generator_new(const struct gen_model *m, const struct generator_limits *lim,
                                struct err *e)
{
    struct generator *g = calloc(1, sizeof *g);
    size_t cap = lim->max_seqs ? lim->max_seqs : 1;
    if (g)
        g->pool = calloc(cap, sizeof *g->pool);
    if (!g || !g->pool) {
        free(g);
        err_set(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    g->m = m;
    g->lim = *lim;
    g->lim.max_seqs = cap;
    return g;
}

int generator_prepare(struct generator *g, struct err *e)
{
    void *cache = NULL;
    int rc = g->m->kind->cache_new(g->m, (int)g->lim.max_total, &cache, e);
    if (rc == 0) {
        g->pool[g->n_pool++].cache = cache;
        g->n_caches++;
    }
    return rc;
}

int generator_open(struct generator *g, struct err *e)
{
    g->ctx = dnn_ctx_new(g->lim.threads, e);
    if (!g->ctx)
        return e->kind ? e->kind : ERR_INTERNAL;
    g->run = g->m->kind->run_new(&g->lim);
    if (!g->run) {
        generator_close(g);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    return 0;
}

void generator_close(struct generator *g)
{
    if (g->run)
        g->m->kind->run_free(g->run);
    dnn_ctx_free(g->ctx);
    g->run = NULL;
    g->ctx = NULL;
}

void generator_free(struct generator *g)
{
    if (!g)
        return;
    generator_close(g);
    gen_cache_free_pool(g);
    free(g);
}

/* ---- sequences ---- */

void gen_seq_free(struct gen_seq *s)
{
    if (!s)
        return;
    sampler_free(s->sampler);
    stopper_free(s->stopper);
    free(s->ids);
    free(s->prompt_logprobs);
    free(s->gscratch);
    free(s);
}

/* The sampler, stopper and buffers of s (no cache yet). */
static int seq_init(const struct gen_model *m, struct gen_seq *s, struct err *e)
{
    /* what precedes the first generated token in the sequence the model continues: the
     * prompt's tail, or an encoder-decoder's start token */
    size_t n_ctx = s->n_prompt < DETOK_CONTEXT ? s->n_prompt : DETOK_CONTEXT;
    const int32_t *ctx = s->prompt + s->n_prompt - n_ctx, *seen = s->prompt;
    size_t n_seen = s->n_prompt;
    if (m->kind->encoder_decoder) {
        ctx = seen = &m->decoder_start_token_id;
        n_ctx = n_seen = 1;
    }
    int rc = sampler_new(s->params, (size_t)m->vocab_size, 0, &s->sampler, e);
    if (rc == 0)
        rc = stopper_new(s->params, m->tokenizer, ctx, n_ctx, &s->stopper, e);
    if (rc)
        return rc;
    sampler_add_prompt(s->sampler, seen, n_seen);
    if (s->params->grammar) {
        s->gvocab = gen_model_gram_vocab(m, e);
        if (!s->gvocab)
            return e && e->kind ? e->kind : ERR_NOMEM;
        s->gscratch = malloc(((size_t)m->vocab_size + 63) / 64 * sizeof *s->gscratch);
        if (!s->gscratch)
            return err_set(e, ERR_NOMEM, "out of memory");
    }
    s->ids = malloc(s->params->max_new_tokens * sizeof *s->ids);
    if (!s->ids)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (s->params->decoder_input_details) {
        s->prompt_logprobs = malloc(s->n_prompt * sizeof *s->prompt_logprobs);
        if (!s->prompt_logprobs)
            return err_set(e, ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < s->n_prompt; i++)
            s->prompt_logprobs[i] = NAN;
    }
    return 0;
}

int gen_seq_start(struct generator *g, const int32_t *prompt, size_t n_prompt,
                  const struct gen_params *p, void *user, struct gen_seq **out, struct err *e)
{
    *out = NULL;
    struct gen_seq *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(e, ERR_NOMEM, "out of memory");
    s->prompt = prompt;
    s->n_prompt = n_prompt;
    s->params = p;
    s->user = user;
    int rc = seq_init(g->m, s, e);
    if (rc == 0)
        rc = gen_cache_take(g, s, e);
    if (rc) {
        gen_seq_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void gen_seq_retire(struct generator *g, struct gen_seq *s)
{
    if (!s || !s->cache)
        return;
    gen_cache_give(g, s);
}

int gen_seq_result(struct gen_seq *s, struct gen_seq_result *out, struct err *e)
{
    int rc = 0;
    struct gen_step step;
    if (stopper_finish_reason(s->stopper) == GEN_FINISH_NONE)
        rc = stopper_finish(s->stopper, GEN_FINISH_LENGTH, &step, e);
    out->finish = stopper_finish_reason(s->stopper);
    out->text = stopper_text(s->stopper, &out->text_len);
    out->ids = s->ids;
    out->n_ids = s->n_ids;
    out->prompt_logprobs = s->prompt_logprobs;
    return rc;
}

/* ---- steps ---- */

bool gen_step_arrays_new(size_t max_seqs, size_t n_tokens, struct gen_seq ***st, int **n,
                         int32_t **tokens)
{
    *st = calloc(max_seqs ? max_seqs : 1, sizeof **st);
    *n = calloc(max_seqs ? max_seqs : 1, sizeof **n);
    *tokens = calloc(n_tokens ? n_tokens : 1, sizeof **tokens);
    if (*st && *n && *tokens)
        return true;
    gen_step_arrays_free(*st, *n, *tokens);
    *st = NULL;
    *n = NULL;
    *tokens = NULL;
    return false;
}

void gen_step_arrays_free(struct gen_seq **st, int *n, int32_t *tokens)
{
    free(st);
    free(n);
    free(tokens);
}

void gen_seq_fail(struct generator *g, struct gen_seq *s, const char *msg)
{
    s->done = true;
    s->failed = true; /* its cache may be half written (a LongRoPE re-feed): not kept */
    g->fn(g->arg, &(struct gen_step_event){.user = s->user, .error = msg, .now = now_seconds()});
}

void gen_seq_prompt_logprobs(struct gen_seq *s, const float *rows, int k, int V)
{
    for (int j = 0; j < k; j++) {
        size_t next = s->n_fed + (size_t)j + 1;
        if (next >= s->n_prompt)
            break;
        const float *row = rows + (size_t)j * (size_t)V;
        int32_t id = s->prompt[next];
        s->prompt_logprobs[next] = (float)((double)row[id] - logits_logsumexp(row, (size_t)V));
    }
}

/* Constrained decoding: the tokens the grammar refuses in s's state get -inf; the eos ids
 * stay only in an accepting state. NULL when fine, else why s cannot go on. */
static const char *grammar_constrain(const struct gen_model *m, struct gen_seq *s, float *logits)
{
    const struct gen_params *p = s->params;
    const uint64_t *mask = grammar_mask(p->grammar, s->gvocab, s->gstate, s->gscratch);
    if (!mask)
        return "out of memory";
    size_t V = (size_t)m->vocab_size, words = (V + 63) / 64;
    float eos[GEN_MAX_EOS];
    for (size_t k = 0; k < p->n_eos_token_ids; k++) {
        int32_t id = p->eos_token_ids[k];
        eos[k] = id >= 0 && (size_t)id < V ? logits[id] : -INFINITY;
    }
    bool any = false;
    for (size_t w = 0; w < words; w++) {
        uint64_t bits = mask[w];
        any |= bits != 0;
        if (bits == ~(uint64_t)0)
            continue;
        size_t end = w * 64 + 64 < V ? w * 64 + 64 : V;
        for (size_t i = w * 64; i < end; i++)
            if (!((bits >> (i & 63)) & 1))
                logits[i] = -INFINITY;
    }
    if (grammar_accepting(p->grammar, s->gstate) && !p->ignore_eos) {
        for (size_t k = 0; k < p->n_eos_token_ids; k++) {
            int32_t id = p->eos_token_ids[k];
            if (id >= 0 && (size_t)id < V) {
                logits[id] = eos[k];
                any = true;
            }
        }
    }
    return any ? NULL : "the output constraint cannot be continued with this model's vocabulary";
}

/* The grammar's state after id; false when the token does not fit (never, after the mask). */
static bool grammar_advance(const struct gen_params *p, struct gen_seq *s, int32_t id)
{
    for (size_t k = 0; k < p->n_eos_token_ids; k++)
        if (p->eos_token_ids[k] == id)
            return true;
    size_t len = 0;
    const char *t = gram_vocab_text(s->gvocab, id, &len);
    if (t)
        s->gstate = grammar_step(p->grammar, s->gstate, t, len);
    return t && s->gstate >= 0;
}

void gen_seq_emit(struct generator *g, struct gen_seq *s, float *logits, double now)
{
    if (s->beam) {
        gen_beam_keep_row(s->beam, s->beam_index, logits);
        return;
    }
    const struct gen_params *p = s->params;
    if (p->grammar) {
        const char *why = grammar_constrain(g->m, s, logits);
        if (why) {
            gen_seq_fail(g, s, why);
            return;
        }
    }
    struct gen_event *ev = &g->ev;
    int32_t id = sampler_sample(s->sampler, logits, &ev->token);
    s->ids[s->n_ids++] = id;
    ev->index = (uint32_t)(s->n_ids - 1);
    struct gen_step st;
    struct err e = {0};
    if (p->grammar && !grammar_advance(p, s, id)) {
        gen_seq_fail(g, s, "the sampled token does not fit the output constraint");
        return;
    }
    /* a complete output ends here, as if the only token left (eos) had been generated */
    int rc = p->grammar && grammar_complete(p->grammar, s->gstate)
                 ? stopper_push_last(s->stopper, id, GEN_FINISH_EOS, &st, &e)
                 : stopper_push(s->stopper, id, &st, &e);
    if (rc != 0) {
        s->done = true;
        g->fn(g->arg, &(struct gen_step_event){.user = s->user, .token = ev, .error = e.msg,
                                               .now = now});
        return;
    }
    if (st.finish == GEN_FINISH_NONE && s->n_ids >= s->params->max_new_tokens)
        st.finish = GEN_FINISH_LENGTH; /* not reached: the stopper has max_new_tokens too */
    ev->special = tokenizer_is_special(g->m->tokenizer, id);
    ev->token_text = st.token_text;
    ev->token_text_len = st.token_text_len;
    ev->text = st.text;
    ev->text_len = st.text_len;
    ev->finish = st.finish;
    if (st.finish != GEN_FINISH_NONE)
        s->done = true;
    else
        s->last = id;
    g->fn(g->arg, &(struct gen_step_event){.user = s->user, .token = ev, .now = now});
}

void generator_step(struct generator *g, struct gen_seq *const *seqs, size_t n,
                    size_t prefill_budget, gen_step_fn fn, void *arg, struct gen_step_stats *stats)
{
    memset(stats, 0, sizeof *stats);
    g->fn = fn;
    g->arg = arg;
    if (n)
        g->m->kind->step(g, seqs, n, prefill_budget, stats);
}
