/* test_pipeline_limits: what one request may cost the pipelines (issue 11, defect 3).
 * Question-answering post-processing (now sort + hash, O(c log c)) gives exactly what the
 * previous quadratic implementation gave, kept here as the reference (it was checked against
 * transformers), on random logits over several windows for small, large and huge top_k and
 * max_answer_len; fill-mask's heap selection equals a full sort; pipeline_prepare refuses
 * requests over pipeline_limits with ERR_INVALID naming the config key, the input count
 * before anything is tokenized. */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "pipelines/pipeline.h"
#include "pipelines/runner.h"
#include "suites.h"
#include "support/support.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the previous question-answering post-processing (the reference) ---- */

/* transformers keeps the question first unless the tokenizer pads on the left. */
static bool ref_question_first(const struct tokenizer *tk)
{
    const char *side = tokenizer_config_str(tk, "padding_side");
    return !(side && strcmp(side, "left") == 0);
}

/* One candidate answer span in token indices of one window. */
struct ref_span {
    size_t s, end;
    double score;
};

struct ref_answer {
    double score;
    size_t start, end; /* code points in the context */
};

/* The k best entries of the (n, n) matrix start[s] * end[e] limited to s <= e < s + max_len
 * (zero elsewhere, as np.tril(np.triu(outer), max_len - 1)), in descending order; equal
 * scores keep row-major order. Returns how many were found (<= k). */
static size_t ref_top_spans(const double *start, const double *end, size_t n, size_t max_len, size_t k,
                        struct ref_span *best)
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
            best[j] = (struct ref_span){s, t, v};
        }
    return found;
}

/* HF get_indices: the character span of the words holding tokens s and t, or of the
 * tokens themselves when a token has no word or its word is not in sequence seq. */
static void ref_span_chars(const struct encoding *enc, size_t s, size_t t, int seq, bool align,
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
static bool ref_same_lower(const char *a, size_t na, const char *b, size_t nb)
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
static int ref_score_window(const struct tokenizer *tk, const struct encoding *enc, const float *sl,
                        const float *el, const struct qa_params *p, const char *context,
                        const size_t *cp_at, size_t n_cp, double *min_null, struct ref_answer *answers,
                        size_t *n_answers, struct err *e)
{
    size_t n = enc->n;
    bool qf = ref_question_first(tk);
    int32_t cls = pipeline_special_id(tk, "cls_token");
    double *start = malloc(2 * (n ? n : 1) * sizeof *start); /* (n) then end (n) */
    uint8_t *desired = malloc(n ? n : 1);
    size_t k = p->top_k < n * n ? p->top_k : n * n;
    struct ref_span *best = malloc((k ? k : 1) * sizeof *best);
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
    size_t found = k ? ref_top_spans(start, end, n, p->max_answer_len, k, best) : 0;
    for (size_t k = 0; k < found; k++) {
        if (!desired[best[k].s] || !desired[best[k].end])
            continue;
        size_t a, b;
        ref_span_chars(enc, best[k].s, best[k].end, qf ? 1 : 0, p->align_to_words, &a, &b);
        if (a > b || b > n_cp)
            continue;
        size_t i = 0;
        for (; i < *n_answers; i++) {
            const struct ref_answer *o = &answers[i];
            if (ref_same_lower(context + cp_at[o->start], cp_at[o->end] - cp_at[o->start],
                           context + cp_at[a], cp_at[b] - cp_at[a]))
                break;
        }
        if (i < *n_answers)
            answers[i].score += best[k].score;
        else
            answers[(*n_answers)++] = (struct ref_answer){best[k].score, a, b};
    }
    free(start);
    free(desired);
    free(best);
    return 0;
}

static json_t *ref_answer_json(const struct ref_answer *a, const char *context, const size_t *cp_at)
{
    return json_pack("{s:f, s:I, s:I, s:s%}", "score", a->score, "start", (json_int_t)a->start,
                     "end", (json_int_t)a->end, "answer", context + cp_at[a->start],
                     cp_at[a->end] - cp_at[a->start]);
}

static int ref_qa_finish(const struct tokenizer *tk, const char *context, size_t c_len,
                              const struct encodings *windows, const float *const *start_logits,
                              const float *const *end_logits, const struct qa_params *p,
                              json_t **out, struct err *e)
{
    *out = NULL;
    size_t n_cp = 0;
    size_t *cp_at = pipeline_cp_index(context, c_len, &n_cp);
    /* at most top_k answers per window, plus the null answer */
    size_t cap = 1;
    for (size_t w = 0; w < windows->n; w++)
        cap += p->top_k < windows->v[w].n * windows->v[w].n ? p->top_k : windows->v[w].n * windows->v[w].n;
    struct ref_answer *answers = malloc(cap * sizeof *answers);
    size_t n_answers = 0;
    double min_null = 1000000.0;
    int rc = 0;
    json_t *result = NULL;
    if (!cp_at || !answers) {
        rc = err_set(e, ERR_NOMEM, "question-answering: out of memory");
        goto cleanup;
    }
    for (size_t w = 0; w < windows->n; w++)
        if ((rc = ref_score_window(tk, &windows->v[w], start_logits[w], end_logits[w], p, context,
                               cp_at, n_cp, &min_null, answers, &n_answers, e)) != 0)
            goto cleanup;
    if (p->handle_impossible_answer)
        answers[n_answers++] = (struct ref_answer){min_null, 0, 0};
    /* sorted by score, descending, stable */
    for (size_t i = 1; i < n_answers; i++) {
        struct ref_answer v = answers[i];
        size_t j = i;
        for (; j > 0 && answers[j - 1].score < v.score; j--)
            answers[j] = answers[j - 1];
        answers[j] = v;
    }
    if (n_answers > p->top_k)
        n_answers = p->top_k;
    if (n_answers == 1) {
        result = ref_answer_json(&answers[0], context, cp_at);
    } else {
        result = json_array();
        for (size_t i = 0; result && i < n_answers; i++)
            if (json_array_append_new(result, ref_answer_json(&answers[i], context, cp_at)) != 0) {
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

/* ---- question-answering: new == reference ---- */

static uint64_t rng = 88172645463325252ull;

static double uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / (double)(1ull << 53);
}

static json_t *parse(const char *s)
{
    json_error_t je;
    json_t *j = json_loads(s, JSON_DECODE_ANY, &je);
    ck_assert_msg(j != NULL, "bad test JSON %s: %s", s, je.text);
    return j;
}

/* Every parameter combination on one context cut into windows of 32 tokens (stride 8) with
 * random logits, some of them equal (ties keep row-major order) and repeated words (answers
 * of equal text merge across windows). */
START_TEST(qa_matches_reference)
{
    const char *dir = fixture_model("bert-qa");
    struct tokenizer *tk = NULL;
    struct err e = {0};
    ck_assert_msg(tokenizer_load(dir, &tk, &e) == 0, "%s", e.msg);
    const char *q = "Where is the cat?";
    const char *c = "The cat sat on the mat. THE CAT sat on the Mat in Cupertino, "
                    "where the café is; the cat likes naps and the mat likes cats. The dog, "
                    "however, sat on the cat's mat in Palo Alto, and the café closed.";
    static const char *const params[] = {
        "{}",
        "{\"top_k\": 3}",
        "{\"top_k\": 7, \"handle_impossible_answer\": true}",
        "{\"top_k\": 50, \"max_answer_len\": 4}",
        "{\"top_k\": 300, \"align_to_words\": false}",
        "{\"top_k\": 1000000000}",
        "{\"top_k\": 1000000000, \"max_answer_len\": 1000000000}",
        "{\"top_k\": 1000000000, \"max_answer_len\": 1, \"align_to_words\": false}",
        "{\"top_k\": 2000, \"max_answer_len\": 1000000000, \"handle_impossible_answer\": true}",
    };
    size_t checked = 0;
    for (size_t i = 0; i < N(params); i++)
        for (int quantized = 0; quantized < 2; quantized++) {
            json_t *par = parse(params[i]);
            json_object_set_new(par, "max_seq_len", json_integer(32));
            json_object_set_new(par, "doc_stride", json_integer(8));
            struct qa_params p;
            ck_assert_int_eq(question_answering_params(par, &p, &e), 0);
            struct encodings w = {0};
            ck_assert_msg(question_answering_prepare(tk, q, strlen(q), c, strlen(c), &p, &w, &e) ==
                              0,
                          "%s", e.msg);
            ck_assert_uint_ge(w.n, 3);
            float **sl = calloc(w.n, sizeof *sl), **el = calloc(w.n, sizeof *el);
            for (size_t k = 0; k < w.n; k++) {
                sl[k] = malloc(w.v[k].n * sizeof **sl);
                el[k] = malloc(w.v[k].n * sizeof **el);
                for (size_t t = 0; t < w.v[k].n; t++) { /* quantized: many equal scores */
                    double a = 8 * uniform() - 4, b = 8 * uniform() - 4;
                    sl[k][t] = (float)(quantized ? floor(a) : a);
                    el[k][t] = (float)(quantized ? floor(b) : b);
                }
            }
            json_t *want = NULL, *got = NULL;
            ck_assert_int_eq(ref_qa_finish(tk, c, strlen(c), &w, (const float *const *)sl,
                                           (const float *const *)el, &p, &want, &e),
                             0);
            ck_assert_msg(question_answering_finish(tk, c, strlen(c), &w, (const float *const *)sl,
                                                    (const float *const *)el, &p, &got, &e) == 0,
                          "%s", e.msg);
            char *a = json_dumps(want, JSON_COMPACT | JSON_REAL_PRECISION(17));
            char *b = json_dumps(got, JSON_COMPACT | JSON_REAL_PRECISION(17));
            ck_assert_msg(strcmp(a, b) == 0, "%s (quantized %d):\nwant %.600s\ngot  %.600s",
                          params[i], quantized, a, b);
            size_t n = json_is_array(got) ? json_array_size(got) : 1;
            ck_assert_uint_le(n, question_answering_max_results(&w, &p));
            checked += n;
            free(a);
            free(b);
            json_decref(want);
            json_decref(got);
            for (size_t k = 0; k < w.n; k++) {
                free(sl[k]);
                free(el[k]);
            }
            free(sl);
            free(el);
            encodings_fini(&w);
            json_decref(par);
        }
    ck_assert_uint_gt(checked, 500); /* the huge top_k really returned many answers */
    tokenizer_free(tk);
}
END_TEST

/* ---- fill-mask: heap selection == full sort ---- */

static const double *sort_probs;

static int by_rank(const void *x, const void *y)
{
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    if (sort_probs[a] != sort_probs[b])
        return sort_probs[a] > sort_probs[b] ? -1 : 1;
    return (a > b) - (a < b);
}

START_TEST(fill_mask_top_k_matches_sort)
{
    enum { V = 997 };
    static double probs[V];
    static int32_t all[V], best[V + 10], targets[40];
    for (int round = 0; round < 20; round++) {
        for (int v = 0; v < V; v++) /* few distinct values: ties by id */
            probs[v] = round % 2 ? floor(uniform() * 50) : uniform();
        sort_probs = probs;
        for (int v = 0; v < V; v++)
            all[v] = v;
        qsort(all, V, sizeof *all, by_rank);
        static const size_t ks[] = {1, 2, 5, 64, 500, V, V + 10};
        for (size_t i = 0; i < N(ks); i++) {
            size_t k = ks[i] < V ? ks[i] : V;
            ck_assert_uint_eq(fill_mask_top_k(probs, V, NULL, V, k, best), k);
            for (size_t j = 0; j < k; j++)
                ck_assert_int_eq(best[j], all[j]);
        }
        /* targets: distinct ids, some outside the vocabulary (skipped) */
        size_t nt = 0;
        for (int t = 0; t < 40; t++)
            targets[nt++] = t % 7 == 3 ? V + t : (int32_t)((t * 131 + round) % V);
        int32_t want[40];
        size_t nw = 0;
        for (size_t t = 0; t < nt; t++)
            if (targets[t] < V)
                want[nw++] = targets[t];
        qsort(want, nw, sizeof *want, by_rank);
        size_t found = fill_mask_top_k(probs, V, targets, nt, 40, best);
        ck_assert_uint_eq(found, nw);
        for (size_t j = 0; j < found; j++)
            ck_assert_int_eq(best[j], want[j]);
    }
}
END_TEST

/* ---- pipeline_prepare and the limits ---- */

struct opened {
    struct pipeline *p;
};

static struct opened open_pipeline(const char *model, const char *task,
                                   const struct pipeline_limits *lim)
{
    struct opened o;
    struct err e = {0};
    ck_assert_msg(pipeline_open(fixture_model(model), task, DTYPE_COMPUTE_F32, 1, &o.p, &e) == 0,
                  "%s", e.msg);
    pipeline_set_limits(o.p, lim);
    return o;
}

static void close_pipeline(struct opened *o)
{
    pipeline_close(o->p);
}

/* pipeline_prepare(inputs, parameters) fails with ERR_INVALID naming what (or succeeds when
 * what is NULL). */
static void expect_prepare(const struct pipeline *p, const char *inputs, const char *parameters,
                           const char *what)
{
    json_t *in = parse(inputs), *par = parameters ? parse(parameters) : NULL;
    struct pipeline_request *r = NULL;
    struct err e = {0};
    int rc = pipeline_prepare(p, in, par, &r, &e);
    if (what) {
        ck_assert_msg(rc == ERR_INVALID && strstr(e.msg, what), "%s: rc %d, %s", inputs, rc,
                      e.msg);
        ck_assert_ptr_null(r);
    } else {
        ck_assert_msg(rc == 0, "%s: %s", inputs, e.msg);
    }
    pipeline_request_free(r);
    json_decref(in);
    json_decref(par);
}

/* The input count is checked before tokenizing: inputs without a mask token (which
 * tokenizing would refuse) get the batch-size message. */
START_TEST(limit_inputs_before_tokenizing)
{
    struct pipeline_limits lim = {.max_inputs = 2};
    struct opened o = open_pipeline("bert-mlm", "fill-mask", &lim);
    expect_prepare(o.p, "[\"a\", \"b\", \"c\"]", NULL,
                   "batch size 3 > maximum allowed batch size 2 (limits.max_client_batch_size)");
    expect_prepare(o.p, "[\"a\", \"b\"]", NULL, "no mask_token");
    expect_prepare(o.p, "[\"a [MASK]\", \"b [MASK]\"]", NULL, NULL);
    close_pipeline(&o);
    /* zero-shot's object form moves a list of sequences out of the inputs object */
    o = open_pipeline("bert-nli", "zero-shot-classification", &lim);
    expect_prepare(o.p, "{\"sequences\": [\"a\", \"b\", \"c\"], \"candidate_labels\": [\"x\"]}", NULL,
                   "limits.max_client_batch_size");
    close_pipeline(&o);
}
END_TEST

START_TEST(limit_tokens)
{
    struct pipeline_limits lim = {.max_tokens = 14}; /* the first pair has 13 */
    struct opened o = open_pipeline("bert-mlm", "fill-mask", &lim);
    expect_prepare(o.p, "[\"one two three four [MASK]\", \"five six seven [MASK]\"]", NULL, NULL);
    expect_prepare(o.p,
                   "[\"one two three four five six [MASK]\", \"seven eight nine ten eleven "
                   "twelve [MASK]\"]",
                   NULL, "(limits.max_request_tokens)");
    close_pipeline(&o);
}
END_TEST

/* Results: fill-mask masks x min(top_k, vocabulary), QA min(top_k, span cells), zero-shot
 * and text-classification inputs x labels. */
START_TEST(limit_results)
{
    struct pipeline_limits lim = {.max_results = 300};
    struct opened o = open_pipeline("bert-mlm", "fill-mask", &lim);
    expect_prepare(o.p, "\"a [MASK] b [MASK] c [MASK]\"", "{\"top_k\": 100}", NULL);
    expect_prepare(o.p, "\"a [MASK] b [MASK] c [MASK]\"", "{\"top_k\": 101}",
                   "the request asks for 303 results > maximum allowed 300 (limits.max_results)");
    expect_prepare(o.p, "\"a [MASK] b [MASK] c [MASK]\"", "{\"top_k\": 1000000000}",
                   "asks for 91566 results"); /* 3 x the 30522-entry vocabulary */
    close_pipeline(&o);
    o = open_pipeline("bert-qa", "question-answering", &lim);
    expect_prepare(o.p,
                   "{\"question\": \"q?\", \"context\": \"the cat sat on the mat, the dog sat "
                   "on the rug and the bird sat on the cat\"}",
                   "{\"top_k\": 1000000000, \"max_answer_len\": 1000000000}", "limits.max_results");
    expect_prepare(o.p, "{\"question\": \"q?\", \"context\": \"the cat\"}",
                   "{\"top_k\": 1000000000, \"max_answer_len\": 1000000000}", NULL);
    close_pipeline(&o);
    o = open_pipeline("bert-nli", "zero-shot-classification", &lim);
    expect_prepare(o.p, "[\"a\", \"b\", \"c\"]", "{\"candidate_labels\": [\"x\", \"y\"]}", NULL);
    json_t *labels = json_array();
    for (int i = 0; i < 101; i++)
        json_array_append_new(labels, json_sprintf("label %d", i));
    json_t *par = json_pack("{s:o}", "candidate_labels", labels);
    char *ps = json_dumps(par, JSON_COMPACT);
    expect_prepare(o.p, "[\"a\", \"b\", \"c\"]", ps, "asks for 303 results");
    free(ps);
    json_decref(par);
    close_pipeline(&o);
}
END_TEST

Suite *suite_pipeline_limits(void)
{
    Suite *s = suite_create("pipeline_limits");
    TCase *tc = tcase_create("post_processing");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, qa_matches_reference);
    tcase_add_test(tc, fill_mask_top_k_matches_sort);
    suite_add_tcase(s, tc);
    tc = tcase_create("limits");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, limit_inputs_before_tokenizing);
    tcase_add_test(tc, limit_tokens);
    tcase_add_test(tc, limit_results);
    suite_add_tcase(s, tc);
    return s;
}
