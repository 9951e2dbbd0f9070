/* question_answering: the extractive question-answering pipeline as transformers 4.x had it
 * (QuestionAnsweringPipeline, removed in 5): question/context windows with doc_stride, the
 * p_mask of non-context tokens (CLS kept), per-window softmax of the masked start and end
 * logits, the upper-triangular outer product limited to max_answer_len, top_k, answers of
 * equal text merged across windows, handle_impossible_answer, and spans aligned to words.
 * Post-processing is O(c log c) in the c candidate spans it looks at, whatever top_k and
 * max_answer_len ask: one sort per window, word bounds by binary search, equal texts merged
 * through a hash of the lowered context, one stable sort of the answers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "pipeline.h"

int question_answering_params(const json_t *parameters, struct qa_params *p, struct err *e)
{
    *p = (struct qa_params){.top_k = 1, .max_answer_len = 15, .align_to_words = true};
    int rc = pipeline_check_parameters(parameters, e);
    size_t unused = 64;
    if (rc == 0)
        rc = pipeline_param_positive(parameters, "topk", false, &p->top_k, NULL, e);
    if (rc == 0)
        rc = pipeline_param_positive(parameters, "top_k", false, &p->top_k, NULL, e);
    if (rc == 0)
        rc = pipeline_param_positive(parameters, "max_answer_len", false, &p->max_answer_len, NULL,
                                     e);
    if (rc == 0)
        rc = pipeline_param_positive(parameters, "max_question_len", false, &unused, NULL, e);
    if (rc == 0 && json_is_object(parameters) &&
        !json_is_null(json_object_get(parameters, "max_seq_len")) &&
        json_object_get(parameters, "max_seq_len")) {
        rc = pipeline_param_positive(parameters, "max_seq_len", false, &p->max_seq_len, NULL, e);
        p->max_seq_len_given = true;
    }
    if (rc == 0 && json_is_object(parameters) &&
        !json_is_null(json_object_get(parameters, "doc_stride")) &&
        json_object_get(parameters, "doc_stride")) {
        rc = pipeline_param_positive(parameters, "doc_stride", false, &p->doc_stride, NULL, e);
        p->doc_stride_given = true;
    }
    if (rc == 0)
        rc = pipeline_param_bool(parameters, "handle_impossible_answer",
                                 &p->handle_impossible_answer, e);
    if (rc == 0)
        rc = pipeline_param_bool(parameters, "align_to_words", &p->align_to_words, e);
    if (rc == 0 && p->max_seq_len_given && p->doc_stride_given && p->doc_stride > p->max_seq_len)
        rc = err_set(e, ERR_INVALID,
                     "parameter 'doc_stride' (%zu) is larger than 'max_seq_len' (%zu)",
                     p->doc_stride, p->max_seq_len);
    return rc;
}

/* transformers keeps the question first unless the tokenizer pads on the left. */
static bool question_first(const struct tokenizer *tk)
{
    const char *side = tokenizer_config_str(tk, "padding_side");
    return !(side && strcmp(side, "left") == 0);
}

int question_answering_prepare(const struct tokenizer *tk, const char *question, size_t q_len,
                               const char *context, size_t c_len, struct qa_params *p,
                               struct encodings *windows, struct err *e)
{
    if (q_len == 0)
        return err_set(e, ERR_INVALID, "'question' cannot be empty");
    if (c_len == 0)
        return err_set(e, ERR_INVALID, "'context' cannot be empty");
    if (!p->max_seq_len_given) {
        size_t mml = tokenizer_model_max_length(tk);
        p->max_seq_len = mml > 0 && mml < 384 ? mml : 384;
    }
    if (!p->doc_stride_given)
        p->doc_stride = p->max_seq_len / 2 < 128 ? p->max_seq_len / 2 : 128;
    if (p->doc_stride > p->max_seq_len)
        return err_set(e, ERR_INVALID,
                       "parameter 'doc_stride' (%zu) is larger than 'max_seq_len' (%zu)",
                       p->doc_stride, p->max_seq_len);
    bool qf = question_first(tk);
    struct tokenizer_params tp = tokenizer_params_default(tk);
    tp.add_special_tokens = true;
    tp.truncation = true;
    tp.max_length = p->max_seq_len;
    tp.stride = p->doc_stride;
    tp.strategy = qf ? TRUNC_ONLY_SECOND : TRUNC_ONLY_FIRST;
    tp.padding = PAD_NONE;
    /* transformers 4.x windows the whole context (tokenizers before 0.23). */
    tp.truncate_early = false;
    int rc = qf ? tokenizer_encode(tk, question, q_len, context, c_len, &tp, windows, e)
                : tokenizer_encode(tk, context, c_len, question, q_len, &tp, windows, e);
    if (rc == ERR_INPUT || rc == ERR_INVALID)
        err_prefix(e, "question-answering: ");
    return rc;
}

/* One candidate answer span in token indices of one window. */
struct span {
    size_t s, end;
    double score;
};

struct answer {
    double score;
    size_t start, end; /* code points in the context */
    size_t order;      /* insertion order: equal scores keep it when sorting */
};

/* Span a before span b: higher score first, equal scores in row-major order. */
static int span_cmp(const void *x, const void *y)
{
    const struct span *a = x, *b = y;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if (a->s != b->s)
        return a->s < b->s ? -1 : 1;
    return (a->end > b->end) - (a->end < b->end);
}

/* The k best entries of the (n, n) matrix start[s] * end[e] limited to s <= e < s + max_len
 * (zero elsewhere, as np.tril(np.triu(outer), max_len - 1)), in descending order; equal
 * scores keep row-major order. The positive entries lie in the band: they are sorted once;
 * the zeros (every other cell) follow in row-major order only when k asks for them.
 * best holds min(k, n * n) entries; returns how many were found. */
static size_t top_spans(const double *start, const double *end, size_t n, size_t max_len, size_t k,
                        struct span *best)
{
    size_t found = 0;
    for (size_t s = 0; s < n; s++)
        for (size_t t = s; t < n && t - s < max_len; t++)
            if (start[s] * end[t] > 0.0)
                best[found++] = (struct span){s, t, start[s] * end[t]};
    qsort(best, found, sizeof *best, span_cmp);
    if (found >= k)
        return k;
    for (size_t s = 0; s < n && found < k; s++)
        for (size_t t = 0; t < n && found < k; t++) {
            bool band = t >= s && t - s < max_len;
            if (!band || !(start[s] * end[t] > 0.0))
                best[found++] = (struct span){s, t, band ? start[s] * end[t] : 0.0};
        }
    return found;
}

/* The words of one sequence of a window: its tokens with a word, sorted by (word, index),
 * so that the first and last token of a word are found by binary search (HF get_indices
 * without a scan per span). */
struct word_tok {
    int32_t word;
    size_t tok;
};

struct word_index {
    struct word_tok *v;
    size_t n;
    const struct encoding *enc;
};

static int by_word(const void *x, const void *y)
{
    const struct word_tok *a = x, *b = y;
    if (a->word != b->word)
        return a->word < b->word ? -1 : 1;
    return (a->tok > b->tok) - (a->tok < b->tok);
}

static int word_index_build(const struct encoding *enc, int seq, struct word_index *wi)
{
    wi->enc = enc;
    wi->n = 0;
    wi->v = malloc((enc->n ? enc->n : 1) * sizeof *wi->v);
    if (!wi->v)
        return -1;
    for (size_t i = 0; i < enc->n; i++)
        if (enc->seq[i] == seq && enc->words[i] >= 0)
            wi->v[wi->n++] = (struct word_tok){enc->words[i], i};
    qsort(wi->v, wi->n, sizeof *wi->v, by_word);
    return 0;
}

/* The first (or last) token of word w in the index; false when w is not in it. */
static bool word_bound(const struct word_index *wi, int32_t w, bool last, size_t *tok)
{
    size_t lo = 0, hi = wi->n; /* the first position whose word is > w (last) or >= w */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int32_t v = wi->v[mid].word;
        if (v < w || (last && v == w))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (last && lo == 0)
        return false;
    size_t at = last ? lo - 1 : lo;
    if (at >= wi->n || wi->v[at].word != w)
        return false;
    *tok = wi->v[at].tok;
    return true;
}

/* HF get_indices: the character span of the words holding tokens s and t, or of the
 * tokens themselves when a token has no word or its word is not in the sequence. */
static void span_chars(const struct word_index *wi, size_t s, size_t t, bool align,
                       size_t *start, size_t *end)
{
    const struct encoding *enc = wi->enc;
    *start = enc->offsets[s].start;
    *end = enc->offsets[t].end;
    size_t first, last;
    if (!align || enc->words[s] < 0 || enc->words[t] < 0 ||
        !word_bound(wi, enc->words[s], false, &first) ||
        !word_bound(wi, enc->words[t], true, &last))
        return;
    *start = enc->offsets[first].start;
    *end = enc->offsets[last].end;
}

/* The context lowered code point by code point (Python's str.lower() with simple case
 * mapping) and a polynomial hash of every prefix, so that answers of equal lowered text
 * meet in a hash table in O(1) each. */
struct lowered {
    utf8proc_int32_t *cp; /* (n_cp) */
    uint64_t *prefix;     /* (n_cp + 1) */
    uint64_t *power;      /* (n_cp + 1) */
};

#define HASH_BASE 0x100000001b3ull

static int lowered_build(const char *context, const size_t *cp_at, size_t n_cp, struct lowered *l)
{
    l->cp = malloc((n_cp ? n_cp : 1) * sizeof *l->cp);
    l->prefix = malloc((n_cp + 1) * sizeof *l->prefix);
    l->power = malloc((n_cp + 1) * sizeof *l->power);
    if (!l->cp || !l->prefix || !l->power)
        return -1;
    l->prefix[0] = 0;
    l->power[0] = 1;
    for (size_t i = 0; i < n_cp; i++) {
        utf8proc_int32_t c = -1;
        utf8proc_iterate((const utf8proc_uint8_t *)context + cp_at[i],
                         (utf8proc_ssize_t)(cp_at[i + 1] - cp_at[i]), &c);
        l->cp[i] = c < 0 ? c : utf8proc_tolower(c);
        l->prefix[i + 1] = l->prefix[i] * HASH_BASE + (uint64_t)(uint32_t)l->cp[i] + 1;
        l->power[i + 1] = l->power[i] * HASH_BASE;
    }
    return 0;
}

static void lowered_fini(struct lowered *l)
{
    free(l->cp);
    free(l->prefix);
    free(l->power);
}

static uint64_t lowered_hash(const struct lowered *l, size_t a, size_t b)
{
    return l->prefix[b] - l->prefix[a] * l->power[b - a];
}

/* Python's a.lower() == b.lower() for two slices of the context (an invalid byte never
 * equals anything, as same_lower had it). */
static bool lowered_equal(const struct lowered *l, size_t a, size_t b, size_t c, size_t d)
{
    if (b - a != d - c)
        return false;
    for (size_t i = 0; i < b - a; i++)
        if (l->cp[a + i] != l->cp[c + i] || l->cp[a + i] < 0)
            return false;
    return true;
}

/* Every answer of one request, merged by lowered text (HF get_answer) through an open
 * addressing table of answer indices. */
struct answers {
    struct answer *v;
    size_t n, cap;
    size_t *slot; /* (n_slots) index + 1 into v; 0 = empty */
    uint64_t *slot_hash;
    size_t n_slots;
    struct lowered low;
};

static void answers_add(struct answers *as, double score, size_t a, size_t b)
{
    uint64_t h = lowered_hash(&as->low, a, b);
    size_t i = (size_t)(h ^ (h >> 29)) & (as->n_slots - 1);
    for (; as->slot[i]; i = (i + 1) & (as->n_slots - 1)) {
        struct answer *o = &as->v[as->slot[i] - 1];
        if (as->slot_hash[i] == h && lowered_equal(&as->low, o->start, o->end, a, b)) {
            o->score += score;
            return;
        }
    }
    as->v[as->n] = (struct answer){score, a, b, as->n};
    as->slot[i] = ++as->n;
    as->slot_hash[i] = h;
}

/* Scores one window: masks non-context tokens, softmaxes, takes its top_k spans and adds
 * them to answers (merging equal texts). */
static int score_window(const struct tokenizer *tk, const struct encoding *enc, const float *sl,
                        const float *el, const struct qa_params *p, size_t n_cp, double *min_null,
                        struct answers *as, struct err *e)
{
    size_t n = enc->n;
    bool qf = question_first(tk);
    int32_t cls = pipeline_special_id(tk, "cls_token");
    size_t band = n * (n < p->max_answer_len ? n : p->max_answer_len);
    size_t k = p->top_k < n * n ? p->top_k : n * n;
    double *start = malloc(2 * (n ? n : 1) * sizeof *start); /* (n) then end (n) */
    uint8_t *desired = malloc(n ? n : 1);
    struct span *best = malloc((band > k ? band : k ? k : 1) * sizeof *best);
    struct word_index wi = {0};
    if (!start || !desired || !best || word_index_build(enc, qf ? 1 : 0, &wi) != 0) {
        free(start);
        free(desired);
        free(best);
        free(wi.v);
        return err_set(e, ERR_NOMEM, "question-answering: out of memory");
    }
    double *end = start + n;
    for (size_t i = 0; i < n; i++) {
        bool p_mask = qf ? enc->seq[i] != 1 : false;
        if (enc->ids[i] == cls)
            p_mask = false;
        desired[i] = !p_mask && enc->attention[i];
        start[i] = desired[i] ? sl[i] : -10000.0;
        end[i] = desired[i] ? el[i] : -10000.0;
    }
    pipeline_softmax(start, n);
    pipeline_softmax(end, n);
    if (p->handle_impossible_answer && n > 0 && start[0] * end[0] < *min_null)
        *min_null = start[0] * end[0];
    if (n > 0)
        start[0] = end[0] = 0.0; /* CLS, as HF: index 0 whatever it holds */
    size_t found = top_spans(start, end, n, p->max_answer_len, k, best);
    for (size_t j = 0; j < found; j++) {
        if (!desired[best[j].s] || !desired[best[j].end])
            continue;
        size_t a, b;
        span_chars(&wi, best[j].s, best[j].end, p->align_to_words, &a, &b);
        if (a > b || b > n_cp)
            continue;
        answers_add(as, best[j].score, a, b);
    }
    free(start);
    free(desired);
    free(best);
    free(wi.v);
    return 0;
}

/* Highest score first; equal scores in the order the answers were found (a stable sort). */
static int answer_cmp(const void *x, const void *y)
{
    const struct answer *a = x, *b = y;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return (a->order > b->order) - (a->order < b->order);
}

/* Room for every answer the windows can give (min(top_k, n * n) each) plus the null one. */
static int answers_init(struct answers *as, const struct encodings *windows, size_t top_k,
                        const char *context, const size_t *cp_at, size_t n_cp)
{
    size_t cap = 1;
    for (size_t w = 0; w < windows->n; w++) {
        size_t n = windows->v[w].n;
        cap += top_k < n * n ? top_k : n * n;
    }
    as->cap = cap;
    as->n_slots = 16;
    while (as->n_slots < 2 * cap)
        as->n_slots *= 2;
    as->v = malloc(cap * sizeof *as->v);
    as->slot = calloc(as->n_slots, sizeof *as->slot);
    as->slot_hash = malloc(as->n_slots * sizeof *as->slot_hash);
    if (!as->v || !as->slot || !as->slot_hash)
        return -1;
    return lowered_build(context, cp_at, n_cp, &as->low);
}

static void answers_fini(struct answers *as)
{
    free(as->v);
    free(as->slot);
    free(as->slot_hash);
    lowered_fini(&as->low);
}

static json_t *answer_json(const struct answer *a, const char *context, const size_t *cp_at)
{
    return json_pack("{s:f, s:I, s:I, s:s%}", "score", a->score, "start", (json_int_t)a->start,
                     "end", (json_int_t)a->end, "answer", context + cp_at[a->start],
                     cp_at[a->end] - cp_at[a->start]);
}

int question_answering_finish(const struct tokenizer *tk, const char *context, size_t c_len,
                              const struct encodings *windows, const float *const *start_logits,
                              const float *const *end_logits, const struct qa_params *p,
                              json_t **out, struct err *e)
{
    *out = NULL;
    size_t n_cp = 0;
    size_t *cp_at = pipeline_cp_index(context, c_len, &n_cp);
    struct answers as = {0};
    double min_null = 1000000.0;
    int rc = 0;
    json_t *result = NULL;
    if (!cp_at || answers_init(&as, windows, p->top_k, context, cp_at, n_cp) != 0) {
        rc = err_set(e, ERR_NOMEM, "question-answering: out of memory");
        goto cleanup;
    }
    for (size_t w = 0; w < windows->n; w++)
        if ((rc = score_window(tk, &windows->v[w], start_logits[w], end_logits[w], p, n_cp,
                               &min_null, &as, e)) != 0)
            goto cleanup;
    if (p->handle_impossible_answer) {
        as.v[as.n] = (struct answer){min_null, 0, 0, as.n};
        as.n++;
    }
    qsort(as.v, as.n, sizeof *as.v, answer_cmp);
    size_t n_answers = as.n < p->top_k ? as.n : p->top_k;
    if (n_answers == 1) {
        result = answer_json(&as.v[0], context, cp_at);
    } else {
        result = json_array();
        for (size_t i = 0; result && i < n_answers; i++)
            if (json_array_append_new(result, answer_json(&as.v[i], context, cp_at)) != 0) {
                json_decref(result);
                result = NULL;
            }
    }
    if (!result)
        rc = err_set(e, ERR_NOMEM, "question-answering: cannot build the result");
    *out = result;
cleanup:
    free(cp_at);
    answers_fini(&as);
    return rc;
}

size_t question_answering_max_results(const struct encodings *windows, const struct qa_params *p)
{
    size_t cells = 0;
    for (size_t w = 0; w < windows->n; w++)
        cells += windows->v[w].n * windows->v[w].n;
    return (p->top_k < cells ? p->top_k : cells) + p->handle_impossible_answer;
}
