/* beam: see beam.h. Owns one search's running beams (sequences with their prefix, float32
 * scores), its finished hypotheses (num_beams slots, best first) and the step's scratch. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "generate/beam.h"
#include "generate/sampling.h"

#define NEG_BIG (-1.0e9f) /* transformers' "impossible" score */

struct cand {
    float score; /* accumulated log-probability */
    int beam;
    int32_t token;
    bool hit; /* eos or max_length */
};

struct beam_search {
    struct gen_params p; /* the settings (no stop strings kept) */
    int B, K;
    size_t V, n_prefix, max_len, cur_len;
    int32_t *run, *run_next; /* (B, max_len) running sequences */
    float *run_score;        /* (B) */
    int32_t *fin;            /* (B, max_len) finished hypotheses, best first */
    size_t *fin_len;
    float *fin_score;
    int n_fin;
    bool unsatisfied; /* the early-stop heuristic still sees room to improve */
    float *lp;        /* (B, V) scratch: each beam's processed log-probabilities */
    float *gathered;  /* (B, max_len) scratch for the repetition penalty */
    struct cand *local; /* (B, K) each beam's own top candidates (scored in parallel) */
    int *n_local;       /* (B) */
    struct cand *cands; /* (K) the step's top candidates, best first */
    struct cand *next;  /* (B) the running beams chosen among them */
};

void beam_search_free(struct beam_search *bs)
{
    if (!bs)
        return;
    free(bs->run);
    free(bs->run_next);
    free(bs->run_score);
    free(bs->fin);
    free(bs->fin_len);
    free(bs->fin_score);
    free(bs->lp);
    free(bs->gathered);
    free(bs->local);
    free(bs->n_local);
    free(bs->cands);
    free(bs->next);
    free(bs->p.bad_words);
    free(bs);
}

/* Each sequence's length >= 1 and within n, its ids in [0, vocab). */
static bool bad_words_valid(const int32_t *w, size_t n, size_t vocab)
{
    for (size_t i = 0; i < n; i += 1 + (size_t)w[i]) {
        if (w[i] < 1 || (size_t)w[i] > n - i - 1)
            return false;
        for (int32_t k = 1; k <= w[i]; k++)
            if (w[i + k] < 0 || (size_t)w[i + k] >= vocab)
                return false;
    }
    return true;
}

int beam_search_new(const struct gen_params *p, size_t vocab, const int32_t *prefix,
                    size_t n_prefix, struct beam_search **out, struct err *e)
{
    *out = NULL;
    if (p->num_beams < 2 || p->num_return_sequences < 1 ||
        p->num_return_sequences > p->num_beams || p->max_new_tokens < 1)
        return err_set(e, ERR_INVALID, "beam search needs num_beams >= 2, 1 <= "
                                       "num_return_sequences <= num_beams, max_new_tokens >= 1");
    struct beam_search *bs = calloc(1, sizeof *bs);
    if (!bs)
        return err_set(e, ERR_NOMEM, "out of memory");
    bs->p = *p;
    memset(bs->p.stop, 0, sizeof bs->p.stop);
    bs->p.n_stop = 0;
    bs->p.bad_words = NULL; /* its own copy below */
    bs->p.bad_words_size = 0;
    bs->B = (int)p->num_beams;
    int keep = 1 + (int)p->n_eos_token_ids;
    bs->K = (keep > 2 ? keep : 2) * bs->B;
    bs->V = vocab;
    bs->n_prefix = n_prefix;
    bs->max_len = n_prefix + p->max_new_tokens;
    bs->cur_len = n_prefix;
    bs->unsatisfied = true;
    size_t seqs = (size_t)bs->B * bs->max_len;
    bs->run = calloc(seqs, sizeof *bs->run);
    bs->run_next = calloc(seqs, sizeof *bs->run_next);
    bs->run_score = calloc((size_t)bs->B, sizeof *bs->run_score);
    bs->fin = calloc(seqs, sizeof *bs->fin);
    bs->fin_len = calloc((size_t)bs->B, sizeof *bs->fin_len);
    bs->fin_score = calloc((size_t)bs->B, sizeof *bs->fin_score);
    bs->lp = malloc((size_t)bs->B * vocab * sizeof *bs->lp);
    bs->gathered = malloc((size_t)bs->B * bs->max_len * sizeof *bs->gathered);
    bs->local = calloc((size_t)bs->B * (size_t)bs->K, sizeof *bs->local);
    bs->n_local = calloc((size_t)bs->B, sizeof *bs->n_local);
    bs->cands = calloc((size_t)bs->K, sizeof *bs->cands);
    bs->next = calloc((size_t)bs->B, sizeof *bs->next);
    if (!bs->next || !bs->run || !bs->run_next || !bs->run_score || !bs->fin || !bs->fin_len ||
        !bs->fin_score || !bs->lp || !bs->gathered || !bs->cands || !bs->local || !bs->n_local) {
        beam_search_free(bs);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    if (!bad_words_valid(p->bad_words, p->bad_words_size, vocab)) {
        beam_search_free(bs);
        return err_set(e, ERR_INVALID, "bad_words_ids: malformed, or an id outside the vocabulary");
    }
    if (gen_params_set_bad_words(&bs->p, p->bad_words, p->bad_words_size, e) != 0) {
        beam_search_free(bs);
        return ERR_NOMEM;
    }
    for (int b = 0; b < bs->B; b++) {
        memcpy(bs->run + (size_t)b * bs->max_len, prefix, n_prefix * sizeof *prefix);
        bs->run_score[b] = b == 0 ? 0.0f : NEG_BIG;
    }
    *out = bs;
    return 0;
}

/* ---- the processors, on one beam's log-probabilities ---- */

static bool is_eos(const struct beam_search *bs, int32_t id)
{
    for (size_t i = 0; i < bs->p.n_eos_token_ids; i++)
        if (bs->p.eos_token_ids[i] == id)
            return true;
    return false;
}

/* out = x - logsumexp(x), the sum of exponentials by the sampler's vector exp (within a few
 * ulp of expf, partial sums in float, chunks in double; a double exp per entry took most of a
 * 4-beam step's search time over a 58k vocabulary). */
static void log_softmax(const float *x, float *out, size_t n)
{
    double lse = logits_logsumexp(x, n);
    for (size_t i = 0; i < n; i++)
        out[i] = (float)((double)x[i] - lse);
}

/* RepetitionPenaltyLogitsProcessor: gather every input id's score, penalize, scatter (a
 * repeated id gets one penalty). */
static void repetition(const struct beam_search *bs, const int32_t *seq, float *lp,
                       float *gathered)
{
    float pen = (float)bs->p.repetition_penalty;
    for (size_t i = 0; i < bs->cur_len; i++) {
        float s = lp[seq[i]];
        gathered[i] = s < 0 ? s * pen : s / pen;
    }
    for (size_t i = 0; i < bs->cur_len; i++)
        lp[seq[i]] = gathered[i];
}

/* NoRepeatNGramLogitsProcessor: the token after every earlier occurrence of the last n-1
 * ids is banned. */
static void no_repeat_ngram(const struct beam_search *bs, const int32_t *seq, float *lp)
{
    size_t n = bs->p.no_repeat_ngram_size, len = bs->cur_len;
    if (len + 1 < n)
        return;
    const int32_t *tail = seq + len + 1 - n;
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(seq + i, tail, (n - 1) * sizeof *seq) == 0)
            lp[seq[i + n - 1]] = -INFINITY;
}

/* bad_words_ids: a sequence's last id is banned where seq ends with the rest of it (a single
 * id: always); a sequence longer than seq is skipped; one of just an eos id was dropped. */
static void bad_words(const struct beam_search *bs, const int32_t *seq, float *lp)
{
    const int32_t *w = bs->p.bad_words, *end = w + bs->p.bad_words_size;
    size_t len = bs->cur_len;
    for (; w < end; w += 1 + w[0]) {
        size_t n = (size_t)w[0];
        const int32_t *ids = w + 1;
        if (n > len || (n == 1 && is_eos(bs, ids[0])))
            continue;
        if (n == 1 || memcmp(seq + len - (n - 1), ids, (n - 1) * sizeof *ids) == 0)
            lp[ids[n - 1]] = -INFINITY;
    }
}

static void force(float *lp, size_t V, int32_t id)
{
    for (size_t i = 0; i < V; i++)
        lp[i] = -INFINITY;
    lp[id] = 0.0f;
}

static void process(const struct beam_search *bs, const int32_t *seq, float *lp, float *gathered)
{
    const struct gen_params *p = &bs->p;
    if (p->repetition_penalty != 1.0)
        repetition(bs, seq, lp, gathered);
    if (p->no_repeat_ngram_size > 0)
        no_repeat_ngram(bs, seq, lp);
    if (p->bad_words_size)
        bad_words(bs, seq, lp);
    bool short_ = (p->min_length > 0 && bs->cur_len < p->min_length) ||
                  (p->min_new_tokens > 0 && bs->cur_len - bs->n_prefix < p->min_new_tokens);
    for (size_t i = 0; short_ && i < p->n_eos_token_ids; i++)
        lp[p->eos_token_ids[i]] = -INFINITY;
    if (p->forced_bos_token_id >= 0 && bs->cur_len == 1)
        force(lp, bs->V, p->forced_bos_token_id);
    if (p->forced_eos_token_id >= 0 && bs->cur_len == bs->max_len - 1)
        force(lp, bs->V, p->forced_eos_token_id);
}

/* ---- the step ---- */

/* Inserts (score, beam, token) into the best-first top K (ties: the earlier one first). */
static void top_insert(struct cand *top, int K, int *n, float score, int beam, int32_t token)
{
    if (*n == K && !(score > top[K - 1].score))
        return;
    int i = *n < K ? (*n)++ : K - 1;
    while (i > 0 && score > top[i - 1].score) {
        top[i] = top[i - 1];
        i--;
    }
    top[i] = (struct cand){.score = score, .beam = beam, .token = token};
}

/* Adds a finished hypothesis (the running beam's sequence + token, scored) among the
 * num_beams best (ties: the ones already there first). */
static void finish(struct beam_search *bs, const struct cand *c, float score)
{
    int at = bs->n_fin;
    while (at > 0 && score > bs->fin_score[at - 1])
        at--;
    if (at >= bs->B)
        return;
    int last = bs->n_fin < bs->B ? bs->n_fin : bs->B - 1;
    size_t L = bs->max_len;
    for (int i = last; i > at; i--) {
        memcpy(bs->fin + (size_t)i * L, bs->fin + (size_t)(i - 1) * L, L * sizeof *bs->fin);
        bs->fin_len[i] = bs->fin_len[i - 1];
        bs->fin_score[i] = bs->fin_score[i - 1];
    }
    int32_t *dst = bs->fin + (size_t)at * L;
    memcpy(dst, bs->run + (size_t)c->beam * L, bs->cur_len * sizeof *dst);
    dst[bs->cur_len] = c->token;
    bs->fin_len[at] = bs->cur_len + 1;
    bs->fin_score[at] = score;
    if (bs->n_fin < bs->B)
        bs->n_fin++;
}

/* Beam b's own top K candidates (its processed log-probabilities plus its score), into
 * bs->local's row b: the beams touch only their own rows, so they run in parallel. */
static void beam_candidates(struct beam_search *bs, const float *row, int b)
{
    const int32_t *seq = bs->run + (size_t)b * bs->max_len;
    float *lp = bs->lp + (size_t)b * bs->V;
    struct cand *top = bs->local + (size_t)b * (size_t)bs->K;
    log_softmax(row, lp, bs->V);
    process(bs, seq, lp, bs->gathered + (size_t)b * bs->max_len);
    int n = 0;
    for (size_t t = 0; t < bs->V; t++)
        top_insert(top, bs->K, &n, lp[t] + bs->run_score[b], b, (int32_t)t);
    bs->n_local[b] = n;
}

/* The top K candidates over every beam's processed, accumulated log-probabilities: each
 * beam's own top K (on the calling thread's OpenMP team: a fork per step), merged
 * in beam order, each best first, so ties still go to the lower beam, then the lower token,
 * as one pass over (beam, token) in order gives them. */
static void candidates(struct beam_search *bs, const float *const *rows)
{
#pragma omp parallel for schedule(static)
    for (int b = 0; b < bs->B; b++)
        beam_candidates(bs, rows[b], b);
    int n = 0;
    for (int b = 0; b < bs->B; b++) {
        const struct cand *top = bs->local + (size_t)b * (size_t)bs->K;
        for (int i = 0; i < bs->n_local[b]; i++)
            top_insert(bs->cands, bs->K, &n, top[i].score, top[i].beam, top[i].token);
    }
    for (int k = 0; k < bs->K; k++)
        bs->cands[k].hit = is_eos(bs, bs->cands[k].token) || bs->cur_len + 1 >= bs->max_len;
}

/* The finished among the first num_beams candidates join the hypotheses. */
static void update_finished(struct beam_search *bs)
{
    bool full = bs->n_fin == bs->B && bs->p.early_stopping == GEN_EARLY_STOP_TRUE;
    double len_pen = pow((double)(bs->cur_len + 1 - bs->n_prefix), bs->p.length_penalty);
    for (int k = 0; k < bs->B && !full && bs->unsatisfied; k++)
        if (bs->cands[k].hit)
            finish(bs, &bs->cands[k], (float)(bs->cands[k].score / len_pen));
}

/* The best num_beams candidates that did not hit continue (hit ones at -1e9 when fewer). */
static void next_running(struct beam_search *bs, int *parent, int32_t *token)
{
    struct cand *t = bs->next;
    int n = 0;
    for (int k = 0; k < bs->K; k++) {
        struct cand c = bs->cands[k];
        c.score = c.hit ? c.score + NEG_BIG : c.score;
        top_insert(t, bs->B, &n, c.score, c.beam, c.token);
    }
    size_t L = bs->max_len;
    for (int b = 0; b < bs->B; b++) {
        int32_t *dst = bs->run_next + (size_t)b * L;
        memcpy(dst, bs->run + (size_t)t[b].beam * L, bs->cur_len * sizeof *dst);
        dst[bs->cur_len] = t[b].token;
        bs->run_score[b] = t[b].score;
        parent[b] = t[b].beam;
        token[b] = t[b].token;
    }
    int32_t *tmp = bs->run;
    bs->run = bs->run_next;
    bs->run_next = tmp;
}

/* _check_early_stop_heuristic after the step (cur_len already advanced). */
static void heuristic(struct beam_search *bs)
{
    double len = (double)(bs->cur_len - bs->n_prefix);
    if (bs->p.early_stopping == GEN_EARLY_STOP_NEVER && bs->p.length_penalty > 0.0)
        len = (double)(bs->max_len - bs->n_prefix);
    float best = (float)(bs->run_score[0] / pow(len, bs->p.length_penalty));
    float worst = bs->n_fin == bs->B ? bs->fin_score[bs->B - 1] : NEG_BIG;
    bs->unsatisfied = bs->unsatisfied && best > worst;
}

bool beam_search_step(struct beam_search *bs, const float *const *rows, int *parent,
                      int32_t *token)
{
    candidates(bs, rows);
    bool all_hit = true;
    for (int k = 0; k < bs->K; k++)
        all_hit = all_hit && bs->cands[k].hit;
    update_finished(bs); /* before the running beams move: it reads their sequences */
    next_running(bs, parent, token);
    bs->cur_len++;
    heuristic(bs);
    bool full = bs->n_fin == bs->B && bs->p.early_stopping == GEN_EARLY_STOP_TRUE;
    return !bs->unsatisfied || full || all_hit || bs->cur_len >= bs->max_len;
}

size_t beam_search_n_results(const struct beam_search *bs)
{
    size_t n = bs->p.num_return_sequences;
    return (size_t)bs->n_fin < n ? (size_t)bs->n_fin : n;
}

void beam_search_result(const struct beam_search *bs, size_t i, const int32_t **ids, size_t *n,
                        float *score)
{
    *ids = bs->fin + i * bs->max_len + bs->n_prefix;
    *n = bs->fin_len[i] - bs->n_prefix;
    *score = bs->fin_score[i];
}
