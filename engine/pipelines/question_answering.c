/* question_answering: the extractive question-answering pipeline as transformers 4.x had it
 * (QuestionAnsweringPipeline, removed in 5): question/context windows with doc_stride, the
 * p_mask of non-context tokens (CLS kept), per-window softmax of the masked start and end
 * logits, the upper-triangular outer product limited to max_answer_len, top_k, answers of
 * equal text merged across windows, handle_impossible_answer, and spans aligned to words. */
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
};

/* The k best entries of the (n, n) matrix start[s] * end[e] limited to s <= e < s + max_len
 * (zero elsewhere, as np.tril(np.triu(outer), max_len - 1)), in descending order; equal
 * scores keep row-major order. Returns how many were found (<= k). */
static size_t top_spans(const double *start, const double *end, size_t n, size_t max_len, size_t k,
                        struct span *best)
{
    size_t found = 0;
    for (size_t s = 0; s < n; s++)
        for (size_t t = 0; t < n; t++) {
            double v = t >= s && t - s < max_len ? start[s] * end[t] : 0.0;
            if (found == k && v <= best[k - 1].score)
                continue;
            size_t j = found < k ? found++ : k - 1;
            for (; j > 0 && best[j - 1].score < v; j--)
                best[j] = best[j - 1];
            best[j] = (struct span){s, t, v};
        }
    return found;
}

/* HF get_indices: the character span of the words holding tokens s and t, or of the
 * tokens themselves when a token has no word or its word is not in sequence seq. */
static void span_chars(const struct encoding *enc, size_t s, size_t t, int seq, bool align,
                       size_t *start, size_t *end)
{
    *start = enc->offsets[s].start;
    *end = enc->offsets[t].end;
    if (!align || enc->words[s] < 0 || enc->words[t] < 0)
        return;
    size_t first = enc->n, last = enc->n;
    for (size_t i = 0; i < enc->n; i++) {
        if (enc->seq[i] != seq)
            continue;
        if (enc->words[i] == enc->words[s] && first == enc->n)
            first = i;
        if (enc->words[i] == enc->words[t])
            last = i;
    }
    if (first == enc->n || last == enc->n)
        return;
    *start = enc->offsets[first].start;
    *end = enc->offsets[last].end;
}

/* Python's str.lower() equality, code point by code point (simple case mapping). */
static bool same_lower(const char *a, size_t na, const char *b, size_t nb)
{
    utf8proc_ssize_t i = 0, j = 0;
    while ((size_t)i < na && (size_t)j < nb) {
        utf8proc_int32_t ca, cb;
        utf8proc_ssize_t la =
            utf8proc_iterate((const utf8proc_uint8_t *)a + i, (utf8proc_ssize_t)na - i, &ca);
        utf8proc_ssize_t lb =
            utf8proc_iterate((const utf8proc_uint8_t *)b + j, (utf8proc_ssize_t)nb - j, &cb);
        if (la <= 0 || lb <= 0 || utf8proc_tolower(ca) != utf8proc_tolower(cb))
            return false;
        i += la;
        j += lb;
    }
    return (size_t)i == na && (size_t)j == nb;
}

/* Scores one window: masks non-context tokens, softmaxes, takes its top_k spans and adds
 * them to answers (merging equal texts). */
static int score_window(const struct tokenizer *tk, const struct encoding *enc, const float *sl,
                        const float *el, const struct qa_params *p, const char *context,
                        const size_t *cp_at, size_t n_cp, double *min_null, struct answer *answers,
                        size_t *n_answers, struct err *e)
{
    size_t n = enc->n;
    bool qf = question_first(tk);
    int32_t cls = pipeline_special_id(tk, "cls_token");
    double *start = malloc(2 * (n ? n : 1) * sizeof *start); /* (n) then end (n) */
    uint8_t *desired = malloc(n ? n : 1);
    struct span *best = malloc(p->top_k * sizeof *best);
    if (!start || !desired || !best) {
        free(start);
        free(desired);
        free(best);
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
    size_t found = top_spans(start, end, n, p->max_answer_len, p->top_k, best);
    for (size_t k = 0; k < found; k++) {
        if (!desired[best[k].s] || !desired[best[k].end])
            continue;
        size_t a, b;
        span_chars(enc, best[k].s, best[k].end, qf ? 1 : 0, p->align_to_words, &a, &b);
        if (a > b || b > n_cp)
            continue;
        size_t i = 0;
        for (; i < *n_answers; i++) {
            const struct answer *o = &answers[i];
            if (same_lower(context + cp_at[o->start], cp_at[o->end] - cp_at[o->start],
                           context + cp_at[a], cp_at[b] - cp_at[a]))
                break;
        }
        if (i < *n_answers)
            answers[i].score += best[k].score;
        else
            answers[(*n_answers)++] = (struct answer){best[k].score, a, b};
    }
    free(start);
    free(desired);
    free(best);
    return 0;
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
    /* at most top_k answers per window, plus the null answer */
    struct answer *answers = malloc((windows->n * p->top_k + 1) * sizeof *answers);
    size_t n_answers = 0;
    double min_null = 1000000.0;
    int rc = 0;
    json_t *result = NULL;
    if (!cp_at || !answers) {
        rc = err_set(e, ERR_NOMEM, "question-answering: out of memory");
        goto cleanup;
    }
    for (size_t w = 0; w < windows->n; w++)
        if ((rc = score_window(tk, &windows->v[w], start_logits[w], end_logits[w], p, context,
                               cp_at, n_cp, &min_null, answers, &n_answers, e)) != 0)
            goto cleanup;
    if (p->handle_impossible_answer)
        answers[n_answers++] = (struct answer){min_null, 0, 0};
    /* sorted by score, descending, stable */
    for (size_t i = 1; i < n_answers; i++) {
        struct answer v = answers[i];
        size_t j = i;
        for (; j > 0 && answers[j - 1].score < v.score; j--)
            answers[j] = answers[j - 1];
        answers[j] = v;
    }
    if (n_answers > p->top_k)
        n_answers = p->top_k;
    if (n_answers == 1) {
        result = answer_json(&answers[0], context, cp_at);
    } else {
        result = json_array();
        for (size_t i = 0; result && i < n_answers; i++)
            if (json_array_append_new(result, answer_json(&answers[i], context, cp_at)) != 0) {
                json_decref(result);
                result = NULL;
            }
    }
    if (!result)
        rc = err_set(e, ERR_NOMEM, "question-answering: cannot build the result");
    *out = result;
cleanup:
    free(cp_at);
    free(answers);
    return rc;
}
