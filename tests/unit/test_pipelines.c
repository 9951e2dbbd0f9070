/* test_pipelines: task post-processing against Hugging Face pipeline outputs. The fixtures'
 * raw model logits go through our post-processing and must give the recorded pipeline
 * output (labels, words, offsets exact; scores within 1e-4). Where a fixture records no
 * logits, expected values come from naive recomputation in the test. Bad parameters must
 * give ERR_INVALID naming the parameter. */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pipelines/pipeline.h"
#include "suites.h"
#include "support/support.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ---- */

/* id2label from DIR/config.json as a NULL-terminated array (json strings borrowed from cfg). */
static const char **load_labels(json_t *cfg, size_t *n)
{
    json_t *m = json_object_get(cfg, "id2label");
    ck_assert_ptr_nonnull(m);
    *n = json_object_size(m);
    const char **labels = calloc(*n + 1, sizeof *labels);
    for (size_t i = 0; i < *n; i++) {
        char key[32];
        snprintf(key, sizeof key, "%zu", i);
        labels[i] = json_string_value(json_object_get(m, key));
        ck_assert_ptr_nonnull(labels[i]);
    }
    return labels;
}

static float *floats(const json_t *arr, size_t *n)
{
    *n = json_array_size(arr);
    float *v = malloc((*n ? *n : 1) * sizeof *v);
    for (size_t i = 0; i < *n; i++)
        v[i] = (float)json_number_value(json_array_get(arr, i));
    return v;
}

/* Compares JSON values: numbers within 1e-4, everything else exactly (object key order
 * ignored). On mismatch fails with the path and both values. */
static void expect_json(const json_t *want, const json_t *got, const char *what)
{
    if (json_is_number(want)) {
        ck_assert_msg(json_is_number(got), "%s: expected a number", what);
        double a = json_number_value(want), b = json_number_value(got);
        ck_assert_msg(fabs(a - b) <= 1e-4, "%s: score %.6f, expected %.6f", what, b, a);
        return;
    }
    if (json_is_array(want)) {
        ck_assert_msg(json_is_array(got), "%s: expected a list", what);
        ck_assert_msg(json_array_size(want) == json_array_size(got), "%s: %zu items, expected %zu",
                      what, json_array_size(got), json_array_size(want));
        for (size_t i = 0; i < json_array_size(want); i++) {
            char sub[512];
            snprintf(sub, sizeof sub, "%.400s[%zu]", what, i);
            expect_json(json_array_get(want, i), json_array_get(got, i), sub);
        }
        return;
    }
    if (json_is_object(want)) {
        ck_assert_msg(json_is_object(got), "%s: expected an object", what);
        ck_assert_msg(json_object_size(want) == json_object_size(got), "%s: %zu keys, expected %zu",
                      what, json_object_size(got), json_object_size(want));
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)want, k, v)
        {
            char sub[512];
            snprintf(sub, sizeof sub, "%.400s.%.60s", what, k);
            json_t *g = json_object_get(got, k);
            ck_assert_msg(g != NULL, "%s: missing", sub);
            expect_json(v, g, sub);
        }
        return;
    }
    if (!json_equal((json_t *)want, (json_t *)got)) {
        char *a = json_dumps(want, JSON_ENCODE_ANY), *b = json_dumps(got, JSON_ENCODE_ANY);
        ck_abort_msg("%s: got %s, expected %s", what, b, a);
    }
}

/* The "logits" entry of refs for text (and pair when not NULL), or NULL. */
static json_t *find_logits(json_t *refs, const char *text, const char *pair)
{
    json_t *arr = json_object_get(refs, "logits");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *x = json_array_get(arr, i);
        json_t *xp = json_object_get(x, "pair");
        if (strcmp(json_string_value(json_object_get(x, "text")), text) != 0)
            continue;
        if (pair ? json_is_string(xp) && strcmp(json_string_value(xp), pair) == 0
                 : !json_is_string(xp))
            return x;
    }
    return NULL;
}

static void expect_invalid(int rc, const struct err *e, const char *param)
{
    ck_assert_int_eq(rc, ERR_INVALID);
    ck_assert_msg(strstr(e->msg, param) != NULL, "message '%s' does not name '%s'", e->msg, param);
}

static json_t *parse(const char *s)
{
    json_error_t je;
    json_t *j = json_loads(s, JSON_DECODE_ANY, &je);
    ck_assert_msg(j != NULL, "bad test JSON %s: %s", s, je.text);
    return j;
}

/* ---- text-classification ---- */

static const char *const seqcls_models[] = {"bert-seqcls", "distilbert-seqcls", "roberta-seqcls",
                                            "xlmr-seqcls", "albert-seqcls",     "electra-seqcls"};

START_TEST(text_classification_refs)
{
    const char *dir = fixture_model(seqcls_models[_i]);
    json_t *refs = fixture_json(dir, "refs-dev.json");
    json_t *cfg = fixture_json(dir, "config.json");
    size_t n_labels;
    const char **labels = load_labels(cfg, &n_labels);
    struct tokenizer *tk = NULL;
    struct err te = {0};
    ck_assert_msg(tokenizer_load(dir, &tk, &te) == 0, "%s", te.msg);
    json_t *pipe = json_object_get(refs, "pipeline");
    size_t checked = 0;
    for (size_t i = 0; i < json_array_size(pipe); i++) {
        json_t *entry = json_array_get(pipe, i);
        const char *text = json_string_value(json_object_get(entry, "input"));
        json_t *lg = text ? find_logits(refs, text, NULL) : NULL;
        if (!lg)
            continue;
        /* The fixture's logits of long texts were computed on 128 tokens only, while the
         * pipeline saw the whole text: those entries do not describe the same input. */
        struct encodings enc = {0};
        struct tokenizer_params tp = tokenizer_params_default(tk);
        ck_assert_int_eq(tokenizer_encode(tk, text, strlen(text), NULL, 0, &tp, &enc, &te), 0);
        bool same_input = enc.v[0].n == json_array_size(json_object_get(lg, "input_ids"));
        encodings_fini(&enc);
        if (!same_input)
            continue;
        size_t n;
        float *logits = floats(json_object_get(lg, "logits"), &n);
        ck_assert_uint_eq(n, n_labels);
        struct textcls_params p;
        struct err e = {0};
        ck_assert_int_eq(text_classification_params(json_object_get(entry, "parameters"), &p, &e),
                         0);
        json_t *out = NULL;
        ck_assert_int_eq(text_classification_finish(logits, n, labels, NULL, &p, &out, &e), 0);
        char what[128];
        snprintf(what, sizeof what, "%s pipeline[%zu]", seqcls_models[_i], i);
        expect_json(json_object_get(entry, "output"), out, what);
        json_decref(out);
        free(logits);
        checked++;
    }
    ck_assert_uint_ge(checked, 28);
    tokenizer_free(tk);
    free(labels);
    json_decref(cfg);
    json_decref(refs);
}
END_TEST

START_TEST(text_classification_shapes)
{
    const char *labels[] = {"a", "b", "c"};
    const float logits[] = {0.5f, 2.0f, -1.0f};
    struct err e = {0};
    struct textcls_params p;
    json_t *out = NULL;
    /* top_k 2: sorted, two entries */
    json_t *par = parse("{\"top_k\": 2, \"function_to_apply\": \"NONE\"}");
    ck_assert_int_eq(text_classification_params(par, &p, &e), 0);
    ck_assert_int_eq(text_classification_finish(logits, 3, labels, NULL, &p, &out, &e), 0);
    json_t *want =
        parse("[{\"label\": \"b\", \"score\": 2.0}, {\"label\": \"a\", \"score\": 0.5}]");
    expect_json(want, out, "top_k 2");
    json_decref(want);
    json_decref(out);
    json_decref(par);
    /* legacy return_all_scores: [[... in label order ...]] */
    par = parse("{\"return_all_scores\": true, \"function_to_apply\": \"sigmoid\"}");
    ck_assert_int_eq(text_classification_params(par, &p, &e), 0);
    ck_assert_int_eq(text_classification_finish(logits, 3, labels, NULL, &p, &out, &e), 0);
    ck_assert(json_is_array(json_array_get(out, 0)));
    ck_assert_uint_eq(json_array_size(json_array_get(out, 0)), 3);
    double s0 =
        json_real_value(json_object_get(json_array_get(json_array_get(out, 0), 0), "score"));
    ck_assert(fabs(s0 - 1.0 / (1.0 + exp(-0.5))) < 1e-9);
    json_decref(out);
    json_decref(par);
    /* one label: sigmoid by default; multi_label_classification also sigmoid */
    const char *one[] = {"LABEL_0"};
    p = (struct textcls_params){0};
    ck_assert_int_eq(text_classification_finish(logits, 1, one, NULL, &p, &out, &e), 0);
    s0 = json_real_value(json_object_get(json_array_get(out, 0), "score"));
    ck_assert(fabs(s0 - 1.0 / (1.0 + exp(-0.5))) < 1e-9);
    json_decref(out);
    ck_assert_int_eq(
        text_classification_finish(logits, 3, labels, "multi_label_classification", &p, &out, &e),
        0);
    s0 = json_real_value(json_object_get(json_array_get(out, 0), "score"));
    ck_assert(fabs(s0 - 1.0 / (1.0 + exp(-2.0))) < 1e-9);
    json_decref(out);
    ck_assert_int_eq(text_classification_finish(logits, 3, labels, "regression", &p, &out, &e), 0);
    s0 = json_real_value(json_object_get(json_array_get(out, 0), "score"));
    ck_assert(fabs(s0 - 2.0) < 1e-9);
    json_decref(out);
}
END_TEST

START_TEST(text_classification_bad_params)
{
    static const struct {
        const char *json, *param;
    } bad[] = {
        {"{\"top_k\": 0}", "top_k"},
        {"{\"top_k\": -3}", "top_k"},
        {"{\"top_k\": \"2\"}", "top_k"},
        {"{\"top_k\": 1.5}", "top_k"},
        {"{\"function_to_apply\": \"relu\"}", "function_to_apply"},
        {"{\"function_to_apply\": 3}", "function_to_apply"},
        {"{\"return_all_scores\": \"yes\"}", "return_all_scores"},
        {"[1]", "parameters"},
    };
    for (size_t i = 0; i < N(bad); i++) {
        json_t *par = parse(bad[i].json);
        struct textcls_params p;
        struct err e = {0};
        expect_invalid(text_classification_params(par, &p, &e), &e, bad[i].param);
        json_decref(par);
    }
}
END_TEST

/* ---- token-classification ---- */

static const char *const tokcls_models[] = {"bert-tokcls", "distilbert-tokcls", "roberta-tokcls",
                                            "xlmr-tokcls"};

START_TEST(token_classification_refs)
{
    const char *dir = fixture_model(tokcls_models[_i]);
    json_t *refs = fixture_json(dir, "refs-dev.json");
    json_t *cfg = fixture_json(dir, "config.json");
    size_t n_labels;
    const char **labels = load_labels(cfg, &n_labels);
    struct tokenizer *tk = NULL;
    struct err e = {0};
    ck_assert_msg(tokenizer_load(dir, &tk, &e) == 0, "%s", e.msg);
    json_t *pipe = json_object_get(refs, "pipeline");
    size_t checked = 0;
    for (size_t i = 0; i < json_array_size(pipe); i++) {
        json_t *entry = json_array_get(pipe, i);
        const char *text = json_string_value(json_object_get(entry, "input"));
        json_t *lg = text ? find_logits(refs, text, NULL) : NULL;
        if (!lg)
            continue;
        struct encodings enc = {0};
        ck_assert_int_eq(token_classification_prepare(tk, text, strlen(text), &enc, &e), 0);
        json_t *ids = json_object_get(lg, "input_ids");
        ck_assert_uint_eq(enc.v[0].n, json_array_size(ids));
        for (size_t t = 0; t < enc.v[0].n; t++)
            ck_assert_int_eq(enc.v[0].ids[t], json_integer_value(json_array_get(ids, t)));
        json_t *rows = json_object_get(lg, "logits");
        float *logits = malloc(enc.v[0].n * n_labels * sizeof *logits);
        for (size_t t = 0; t < enc.v[0].n; t++)
            for (size_t l = 0; l < n_labels; l++)
                logits[t * n_labels + l] =
                    (float)json_number_value(json_array_get(json_array_get(rows, t), l));
        struct tokcls_params p;
        ck_assert_int_eq(token_classification_params(json_object_get(entry, "parameters"), &p, &e),
                         0);
        json_t *out = NULL;
        ck_assert_msg(token_classification_finish(tk, text, strlen(text), &enc.v[0], logits,
                                                  n_labels, labels, &p, &out, &e) == 0,
                      "%s", e.msg);
        char what[160];
        char *par = json_dumps(json_object_get(entry, "parameters"), JSON_COMPACT);
        snprintf(what, sizeof what, "%s pipeline[%zu] %s", tokcls_models[_i], i, par);
        free(par);
        expect_json(json_object_get(entry, "output"), out, what);
        json_decref(out);
        free(logits);
        encodings_fini(&enc);
        checked++;
    }
    ck_assert_uint_ge(checked, 38);
    tokenizer_free(tk);
    free(labels);
    json_decref(cfg);
    json_decref(refs);
}
END_TEST

START_TEST(token_classification_bad_params)
{
    static const struct {
        const char *json, *param;
    } bad[] = {
        {"{\"aggregation_strategy\": \"longest\"}", "aggregation_strategy"},
        {"{\"aggregation_strategy\": 1}", "aggregation_strategy"},
        {"{\"ignore_labels\": \"O\"}", "ignore_labels"},
        {"{\"ignore_labels\": [\"O\", 3]}", "ignore_labels"},
        {"{\"grouped_entities\": 1}", "grouped_entities"},
    };
    for (size_t i = 0; i < N(bad); i++) {
        json_t *par = parse(bad[i].json);
        struct tokcls_params p;
        struct err e = {0};
        expect_invalid(token_classification_params(par, &p, &e), &e, bad[i].param);
        json_decref(par);
    }
}
END_TEST

/* ---- question-answering ---- */

/* The best span by a naive scan of the masked, softmaxed outer product (independent of
 * the code under test): context tokens (sequence 1) and CLS allowed, CLS itself scored 0. */
static void naive_best(const struct encoding *enc, const float *sl, const float *el, int32_t cls,
                       size_t max_len, size_t *bs, size_t *be, double *bscore)
{
    size_t n = enc->n;
    double *ps = malloc(n * sizeof *ps), *pe = malloc(n * sizeof *pe);
    double ms = -1e30, me = -1e30, zs = 0, ze = 0;
    for (size_t i = 0; i < n; i++) {
        bool ok = enc->seq[i] == 1 || enc->ids[i] == cls;
        ps[i] = ok ? sl[i] : -10000.0;
        pe[i] = ok ? el[i] : -10000.0;
        ms = fmax(ms, ps[i]);
        me = fmax(me, pe[i]);
    }
    for (size_t i = 0; i < n; i++) {
        zs += exp(ps[i] - ms);
        ze += exp(pe[i] - me);
    }
    *bscore = -1;
    for (size_t a = 1; a < n; a++)
        for (size_t b = a; b < n && b < a + max_len; b++) {
            double v = exp(ps[a] - ms) / zs * exp(pe[b] - me) / ze;
            if (v > *bscore) {
                *bscore = v;
                *bs = a;
                *be = b;
            }
        }
    free(ps);
    free(pe);
}

static const char *const qa_models[] = {"bert-qa", "distilbert-qa"};

START_TEST(question_answering_refs)
{
    const char *dir = fixture_model(qa_models[_i]);
    json_t *refs = fixture_json(dir, "refs-dev.json");
    struct tokenizer *tk = NULL;
    struct err e = {0};
    ck_assert_msg(tokenizer_load(dir, &tk, &e) == 0, "%s", e.msg);
    json_t *arr = json_object_get(refs, "logits");
    ck_assert_uint_ge(json_array_size(arr), 1);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *x = json_array_get(arr, i);
        const char *q = json_string_value(json_object_get(x, "question"));
        const char *c = json_string_value(json_object_get(x, "context"));
        struct qa_params p;
        ck_assert_int_eq(question_answering_params(NULL, &p, &e), 0);
        struct encodings w = {0};
        ck_assert_int_eq(question_answering_prepare(tk, q, strlen(q), c, strlen(c), &p, &w, &e), 0);
        ck_assert_uint_eq(w.n, 1);
        json_t *ids = json_object_get(x, "input_ids");
        ck_assert_uint_eq(w.v[0].n, json_array_size(ids));
        for (size_t t = 0; t < w.v[0].n; t++)
            ck_assert_int_eq(w.v[0].ids[t], json_integer_value(json_array_get(ids, t)));
        size_t n;
        float *sl = floats(json_object_get(x, "start_logits"), &n);
        float *el = floats(json_object_get(x, "end_logits"), &n);
        const float *sls[] = {sl}, *els[] = {el};
        json_t *out = NULL;
        p.align_to_words = false; /* first: raw token offsets */
        ck_assert_int_eq(question_answering_finish(tk, c, strlen(c), &w, sls, els, &p, &out, &e),
                         0);
        size_t bs = 0, be = 0;
        double bscore;
        naive_best(&w.v[0], sl, el, pipeline_special_id(tk, "cls_token"), 15, &bs, &be, &bscore);
        ck_assert(json_is_object(out));
        ck_assert_double_eq_tol(json_real_value(json_object_get(out, "score")), bscore, 1e-9);
        size_t st = (size_t)json_integer_value(json_object_get(out, "start"));
        size_t en = (size_t)json_integer_value(json_object_get(out, "end"));
        ck_assert_uint_eq(st, w.v[0].offsets[bs].start);
        ck_assert_uint_eq(en, w.v[0].offsets[be].end);
        /* the answer is context[start:end] in code points */
        size_t bst = 0, ben = 0, cp = 0;
        for (size_t b = 0; c[b]; b++)
            if (((unsigned char)c[b] & 0xC0) != 0x80) {
                if (cp == st)
                    bst = b;
                if (cp == en)
                    ben = b;
                cp++;
            }
        if (en == cp)
            ben = strlen(c);
        const char *ans = json_string_value(json_object_get(out, "answer"));
        ck_assert_uint_eq(strlen(ans), ben - bst);
        ck_assert(memcmp(ans, c + bst, ben - bst) == 0);
        json_decref(out);
        /* top_k 3: a descending list led by the same answer */
        json_t *par = parse("{\"top_k\": 3, \"handle_impossible_answer\": true}");
        ck_assert_int_eq(question_answering_params(par, &p, &e), 0);
        ck_assert_int_eq(question_answering_prepare(tk, q, strlen(q), c, strlen(c), &p, &w, &e), 0);
        ck_assert_int_eq(question_answering_finish(tk, c, strlen(c), &w, sls, els, &p, &out, &e),
                         0);
        ck_assert(json_is_array(out));
        ck_assert_uint_eq(json_array_size(out), 3);
        for (size_t k = 1; k < 3; k++)
            ck_assert(json_real_value(json_object_get(json_array_get(out, k - 1), "score")) >=
                      json_real_value(json_object_get(json_array_get(out, k), "score")));
        json_decref(out);
        json_decref(par);
        encodings_fini(&w);
        free(sl);
        free(el);
    }
    tokenizer_free(tk);
    json_decref(refs);
}
END_TEST

/* A long context split into windows (max_seq_len 48, doc_stride 16): an answer planted on a
 * token two windows share is found once, with offsets into the whole context and the two
 * windows' scores summed (HF merges answers of equal text). */
START_TEST(question_answering_windows)
{
    const char *dir = fixture_model("bert-qa");
    struct tokenizer *tk = NULL;
    struct err e = {0};
    ck_assert_msg(tokenizer_load(dir, &tk, &e) == 0, "%s", e.msg);
    char context[4096] = "";
    for (int i = 0; i < 8; i++)
        strcat(context, "the cat sat on the mat . ");
    strcat(context, "Cupertino is sunny .");
    const char *q = "Where is it sunny?";
    json_t *par = parse("{\"max_seq_len\": 48, \"doc_stride\": 16}");
    struct qa_params p;
    ck_assert_int_eq(question_answering_params(par, &p, &e), 0);
    struct encodings w = {0};
    ck_assert_msg(
        question_answering_prepare(tk, q, strlen(q), context, strlen(context), &p, &w, &e) == 0,
        "%s", e.msg);
    ck_assert_uint_ge(w.n, 2);
    /* plant the answer on a context token both window 0 and window 1 hold */
    size_t a0 = 0, a1 = 0;
    for (size_t t = 0; t < w.v[1].n && !a1; t++)
        for (size_t u = 0; u < w.v[0].n && w.v[1].seq[t] == 1; u++)
            if (w.v[0].seq[u] == 1 && w.v[0].offsets[u].start == w.v[1].offsets[t].start) {
                a0 = w.v[1].offsets[t].start;
                a1 = w.v[1].offsets[t].end;
                break;
            }
    ck_assert_uint_gt(a1, a0);
    float **sl = calloc(w.n, sizeof *sl), **el = calloc(w.n, sizeof *el);
    for (size_t k = 0; k < w.n; k++) {
        ck_assert_uint_le(w.v[k].n, 48);
        sl[k] = calloc(w.v[k].n, sizeof **sl);
        el[k] = calloc(w.v[k].n, sizeof **el);
        for (size_t t = 0; t < w.v[k].n; t++) {
            if (w.v[k].seq[t] == 1 && w.v[k].offsets[t].start == a0)
                sl[k][t] = el[k][t] = 8.0f;
        }
    }
    json_t *out = NULL;
    ck_assert_int_eq(question_answering_finish(tk, context, strlen(context), &w,
                                               (const float *const *)sl, (const float *const *)el,
                                               &p, &out, &e),
                     0);
    ck_assert_int_eq(json_integer_value(json_object_get(out, "start")), (json_int_t)a0);
    ck_assert_int_eq(json_integer_value(json_object_get(out, "end")), (json_int_t)a1);
    ck_assert(strncmp(json_string_value(json_object_get(out, "answer")), context + a0, a1 - a0) ==
              0);
    /* the two windows holding the token give one answer with their scores summed */
    ck_assert(json_real_value(json_object_get(out, "score")) > 1.5);
    json_decref(out);
    for (size_t k = 0; k < w.n; k++) {
        free(sl[k]);
        free(el[k]);
    }
    free(sl);
    free(el);
    encodings_fini(&w);
    json_decref(par);
    /* bad inputs */
    ck_assert_int_eq(question_answering_prepare(tk, "", 0, "x", 1, &p, &w, &e), ERR_INVALID);
    ck_assert_int_eq(question_answering_prepare(tk, "x", 1, "", 0, &p, &w, &e), ERR_INVALID);
    tokenizer_free(tk);
}
END_TEST

START_TEST(question_answering_bad_params)
{
    static const struct {
        const char *json, *param;
    } bad[] = {
        {"{\"top_k\": 0}", "top_k"},
        {"{\"max_answer_len\": -1}", "max_answer_len"},
        {"{\"max_seq_len\": \"384\"}", "max_seq_len"},
        {"{\"doc_stride\": 200, \"max_seq_len\": 100}", "doc_stride"},
        {"{\"handle_impossible_answer\": 1}", "handle_impossible_answer"},
        {"{\"align_to_words\": \"no\"}", "align_to_words"},
    };
    for (size_t i = 0; i < N(bad); i++) {
        json_t *par = parse(bad[i].json);
        struct qa_params p;
        struct err e = {0};
        expect_invalid(question_answering_params(par, &p, &e), &e, bad[i].param);
        json_decref(par);
    }
}
END_TEST

/* ---- fill-mask ---- */

/* Synthetic logits ranking the refs' tokens in their order: our output must list the
 * same tokens with the refs' token_str and sequence strings. */
START_TEST(fill_mask_refs)
{
    const char *dir = fixture_model("bert-mlm");
    json_t *refs = fixture_json(dir, "refs-dev.json");
    struct tokenizer *tk = NULL;
    struct err e = {0};
    ck_assert_msg(tokenizer_load(dir, &tk, &e) == 0, "%s", e.msg);
    size_t vocab = tokenizer_vocab_size(tk);
    json_t *pipe = json_object_get(refs, "pipeline");
    for (size_t i = 0; i < json_array_size(pipe); i++) {
        json_t *entry = json_array_get(pipe, i);
        const char *text = json_string_value(json_object_get(entry, "input"));
        json_t *want = json_object_get(entry, "output");
        struct encodings enc = {0};
        struct tokenizer_params tp = tokenizer_params_default(tk);
        ck_assert_int_eq(tokenizer_encode(tk, text, strlen(text), NULL, 0, &tp, &enc, &e), 0);
        ck_assert_int_eq(fill_mask_check(tk, &enc.v[0], &e), 0);
        float *logits = calloc(enc.v[0].n * vocab, sizeof *logits);
        size_t mask_pos = 0;
        for (size_t t = 0; t < enc.v[0].n; t++)
            if (enc.v[0].ids[t] == pipeline_special_id(tk, "mask_token"))
                mask_pos = t;
        for (size_t k = 0; k < json_array_size(want); k++) {
            json_int_t id = json_integer_value(json_object_get(json_array_get(want, k), "token"));
            logits[mask_pos * vocab + (size_t)id] = 10.0f - (float)k;
        }
        struct fill_mask_params p;
        ck_assert_int_eq(fill_mask_params(tk, json_object_get(entry, "parameters"), &p, &e), 0);
        json_t *out = NULL;
        ck_assert_int_eq(fill_mask_finish(tk, &enc.v[0], logits, vocab, &p, &out, &e), 0);
        ck_assert_uint_eq(json_array_size(out), json_array_size(want));
        double z = (double)vocab - (double)json_array_size(want);
        for (size_t k = 0; k < json_array_size(want); k++)
            z += exp(10.0 - (double)k);
        for (size_t k = 0; k < json_array_size(want); k++) {
            json_t *w = json_array_get(want, k), *g = json_array_get(out, k);
            ck_assert_int_eq(json_integer_value(json_object_get(g, "token")),
                             json_integer_value(json_object_get(w, "token")));
            ck_assert_str_eq(json_string_value(json_object_get(g, "token_str")),
                             json_string_value(json_object_get(w, "token_str")));
            ck_assert_str_eq(json_string_value(json_object_get(g, "sequence")),
                             json_string_value(json_object_get(w, "sequence")));
            ck_assert_double_eq_tol(json_real_value(json_object_get(g, "score")),
                                    exp(10.0 - (double)k) / z, 1e-9);
        }
        json_decref(out);
        /* targets: the ranking is restricted to them, top_k capped by their count */
        json_t *par = parse("{\"targets\": [\"france\", \"paris\", \"france\"], \"top_k\": 10}");
        ck_assert_int_eq(fill_mask_params(tk, par, &p, &e), 0);
        ck_assert_uint_eq(p.n_targets, 2);
        ck_assert_int_eq(fill_mask_finish(tk, &enc.v[0], logits, vocab, &p, &out, &e), 0);
        ck_assert_uint_eq(json_array_size(out), 2);
        fill_mask_params_fini(&p);
        json_decref(out);
        json_decref(par);
        free(logits);
        encodings_fini(&enc);
    }
    /* no mask token: ERR_INVALID; unknown target tokenized to its first piece */
    struct encodings enc = {0};
    struct tokenizer_params tp = tokenizer_params_default(tk);
    ck_assert_int_eq(tokenizer_encode(tk, "no mask here", 12, NULL, 0, &tp, &enc, &e), 0);
    ck_assert_int_eq(fill_mask_check(tk, &enc.v[0], &e), ERR_INVALID);
    ck_assert_msg(strstr(e.msg, "[MASK]") != NULL, "%s", e.msg);
    encodings_fini(&enc);
    json_t *par = parse("{\"targets\": \"chemotherapyzzz\"}");
    struct fill_mask_params p;
    ck_assert_int_eq(fill_mask_params(tk, par, &p, &e), 0);
    ck_assert_uint_eq(p.n_targets, 1);
    fill_mask_params_fini(&p);
    json_decref(par);
    static const struct {
        const char *json, *param;
    } bad[] = {
        {"{\"top_k\": 0}", "top_k"},
        {"{\"targets\": 5}", "targets"},
        {"{\"targets\": [\"a\", 1]}", "targets"},
        {"{\"targets\": []}", "targets"},
    };
    for (size_t i = 0; i < N(bad); i++) {
        par = parse(bad[i].json);
        expect_invalid(fill_mask_params(tk, par, &p, &e), &e, bad[i].param);
        json_decref(par);
    }
    tokenizer_free(tk);
    json_decref(refs);
}
END_TEST

/* ---- zero-shot-classification ---- */

START_TEST(zero_shot_scores)
{
    const char *dir = fixture_model("bert-nli");
    json_t *cfg = fixture_json(dir, "config.json");
    json_t *refs = fixture_json(dir, "refs-dev.json");
    size_t n_classes;
    const char **labels = load_labels(cfg, &n_classes); /* contradiction, neutral, entailment */
    ck_assert_uint_eq(n_classes, 3);
    struct tokenizer *tk = NULL;
    struct err e = {0};
    ck_assert_msg(tokenizer_load(dir, &tk, &e) == 0, "%s", e.msg);
    /* the fixture's pairs encode as HF encoded them */
    json_t *lg = json_object_get(refs, "logits");
    for (size_t i = 0; i < json_array_size(lg); i++) {
        json_t *x = json_array_get(lg, i);
        const char *t = json_string_value(json_object_get(x, "text"));
        char par_json[256];
        snprintf(par_json, sizeof par_json,
                 "{\"candidate_labels\": [\"%s\"], \"hypothesis_template\": \"{}\"}",
                 json_string_value(json_object_get(x, "pair")));
        json_t *par = parse(par_json);
        struct zero_shot_params p;
        ck_assert_int_eq(zero_shot_params(par, &p, &e), 0);
        struct encodings pairs[1];
        ck_assert_int_eq(zero_shot_prepare(tk, t, strlen(t), &p, pairs, &e), 0);
        json_t *ids = json_object_get(x, "input_ids");
        ck_assert_uint_eq(pairs[0].v[0].n, json_array_size(ids));
        for (size_t k = 0; k < pairs[0].v[0].n; k++)
            ck_assert_int_eq(pairs[0].v[0].ids[k], json_integer_value(json_array_get(ids, k)));
        encodings_fini(&pairs[0]);
        zero_shot_params_fini(&p);
        json_decref(par);
    }
    /* scores by naive recomputation: softmax of entailment logits across labels */
    const float logits[] = {0.1f, 0.2f, 0.9f, /* A */ 0.3f, 0.1f, 0.2f, /* B */
                            0.0f, 0.0f, 1.5f /* C */};
    json_t *par = parse("{\"candidate_labels\": \"A, B,,C \"}");
    struct zero_shot_params p;
    ck_assert_int_eq(zero_shot_params(par, &p, &e), 0);
    ck_assert_uint_eq(p.n_labels, 3);
    char *h = NULL;
    ck_assert_int_eq(zero_shot_hypothesis(&p, 1, &h, &e), 0);
    ck_assert_str_eq(h, "This example is B.");
    free(h);
    json_t *out = NULL;
    ck_assert_int_eq(zero_shot_finish("s", logits, 3, labels, &p, &out, &e), 0);
    double z = exp(0.9) + exp(0.2) + exp(1.5);
    json_t *want = json_pack("{s:s, s:[s,s,s], s:[f,f,f]}", "sequence", "s", "labels", "C", "A",
                             "B", "scores", exp(1.5) / z, exp(0.9) / z, exp(0.2) / z);
    expect_json(want, out, "zero-shot single-label");
    json_decref(want);
    json_decref(out);
    json_decref(par);
    zero_shot_params_fini(&p);
    /* multi_label: softmax of [contradiction, entailment] per label */
    par = parse("{\"candidate_labels\": [\"A\", \"B\", \"C\"], \"multi_label\": true}");
    ck_assert_int_eq(zero_shot_params(par, &p, &e), 0);
    ck_assert_int_eq(zero_shot_finish("s", logits, 3, labels, &p, &out, &e), 0);
    double sa = 1 / (1 + exp(0.1 - 0.9)), sb = 1 / (1 + exp(0.3 - 0.2)), sc = 1 / (1 + exp(-1.5));
    want = json_pack("{s:s, s:[s,s,s], s:[f,f,f]}", "sequence", "s", "labels", "C", "A", "B",
                     "scores", sc, sa, sb);
    expect_json(want, out, "zero-shot multi-label");
    json_decref(want);
    json_decref(out);
    json_decref(par);
    zero_shot_params_fini(&p);
    /* the refs' output shape: {sequence, labels, scores} with every candidate label */
    json_t *entry = json_array_get(json_object_get(refs, "pipeline"), 0);
    json_t *in = json_object_get(entry, "input");
    ck_assert_int_eq(zero_shot_params(in, &p, &e), 0);
    ck_assert_int_eq(zero_shot_finish(json_string_value(json_object_get(in, "sequence")), logits, 3,
                                      labels, &p, &out, &e),
                     0);
    json_t *ref_out = json_object_get(entry, "output");
    ck_assert_uint_eq(json_object_size(out), json_object_size(ref_out));
    ck_assert(json_equal(json_object_get(out, "sequence"), json_object_get(ref_out, "sequence")));
    ck_assert_uint_eq(json_array_size(json_object_get(out, "labels")), 3);
    json_decref(out);
    zero_shot_params_fini(&p);
    static const struct {
        const char *json, *param;
    } bad[] = {
        {"{}", "candidate_labels"},
        {"{\"candidate_labels\": []}", "candidate_labels"},
        {"{\"candidate_labels\": \" , ,\"}", "candidate_labels"},
        {"{\"candidate_labels\": [1]}", "candidate_labels"},
        {"{\"candidate_labels\": [\"a\"], \"hypothesis_template\": \"no field\"}",
         "hypothesis_template"},
        {"{\"candidate_labels\": [\"a\"], \"hypothesis_template\": \"{x}\"}",
         "hypothesis_template"},
        {"{\"candidate_labels\": [\"a\"], \"hypothesis_template\": 3}", "hypothesis_template"},
        {"{\"candidate_labels\": [\"a\"], \"multi_label\": \"yes\"}", "multi_label"},
    };
    for (size_t i = 0; i < N(bad); i++) {
        par = parse(bad[i].json);
        expect_invalid(zero_shot_params(par, &p, &e), &e, bad[i].param);
        json_decref(par);
    }
    tokenizer_free(tk);
    free(labels);
    json_decref(cfg);
    json_decref(refs);
}
END_TEST

/* ---- embeddings ---- */

START_TEST(embeddings_refs)
{
    const char *dir = fixture_model("bert-embed");
    json_t *refs = fixture_json(dir, "refs-dev.json");
    struct pooling_config cfg;
    struct err e = {0};
    ck_assert_msg(embeddings_load_config(dir, &cfg, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(cfg.modes, POOL_MEAN);
    ck_assert(cfg.normalize);
    json_t *tf = json_object_get(refs, "token_features");
    size_t checked = 0;
    for (size_t i = 0; i < json_array_size(tf); i++) {
        json_t *x = json_array_get(tf, i);
        const char *text = json_string_value(json_object_get(x, "text"));
        json_t *hs = json_object_get(x, "last_hidden_state");
        size_t n = json_array_size(hs), h = json_array_size(json_array_get(hs, 0));
        float *hidden = malloc(n * h * sizeof *hidden);
        uint8_t *mask = malloc(n);
        for (size_t t = 0; t < n; t++) {
            mask[t] = 1;
            for (size_t d = 0; d < h; d++)
                hidden[t * h + d] =
                    (float)json_number_value(json_array_get(json_array_get(hs, t), d));
        }
        float *v = malloc(embeddings_dim(&cfg, h) * sizeof *v);
        ck_assert_uint_eq(embeddings_dim(&cfg, h), h);
        ck_assert_int_eq(embeddings_pool(&cfg, hidden, mask, n, h, v, &e), 0);
        json_t *got = embeddings_to_json(v, h);
        json_t *se = json_object_get(refs, "sentence_embeddings");
        for (size_t k = 0; k < json_array_size(se); k++)
            if (strcmp(json_string_value(json_object_get(json_array_get(se, k), "text")), text) ==
                0) {
                expect_json(json_object_get(json_array_get(se, k), "embedding"), got, text);
                checked++;
            }
        json_decref(got);
        /* cls pooling without Normalize */
        struct pooling_config cls = {.modes = POOL_CLS};
        ck_assert_int_eq(embeddings_pool(&cls, hidden, mask, n, h, v, &e), 0);
        got = embeddings_to_json(v, h);
        json_t *cp = json_object_get(refs, "cls_pooling_unnormalized");
        for (size_t k = 0; k < json_array_size(cp); k++)
            if (strcmp(json_string_value(json_object_get(json_array_get(cp, k), "text")), text) ==
                0) {
                expect_json(json_object_get(json_array_get(cp, k), "embedding"), got, text);
                checked++;
            }
        json_decref(got);
        /* padding must not change mean pooling */
        float *padded = calloc((n + 3) * h, sizeof *padded);
        uint8_t *pmask = calloc(n + 3, 1);
        memcpy(padded, hidden, n * h * sizeof *padded);
        memset(pmask, 1, n);
        for (size_t d = 0; d < 3 * h; d++)
            padded[n * h + d] = 100.0f;
        float *v2 = malloc(h * sizeof *v2);
        ck_assert_int_eq(embeddings_pool(&cfg, hidden, mask, n, h, v, &e), 0);
        ck_assert_int_eq(embeddings_pool(&cfg, padded, pmask, n + 3, h, v2, &e), 0);
        for (size_t d = 0; d < h; d++)
            ck_assert_float_eq_tol(v[d], v2[d], 1e-6f);
        /* lasttoken and max skip padding too */
        struct pooling_config lm = {.modes = POOL_LASTTOKEN | POOL_MAX};
        float *v3 = malloc(2 * h * sizeof *v3);
        ck_assert_int_eq(embeddings_pool(&lm, padded, pmask, n + 3, h, v3, &e), 0);
        for (size_t d = 0; d < h; d++) {
            float mx = -1e30f;
            for (size_t t = 0; t < n; t++)
                mx = fmaxf(mx, hidden[t * h + d]);
            ck_assert_float_eq_tol(v3[d], mx, 1e-6f);
            ck_assert_float_eq_tol(v3[h + d], hidden[(n - 1) * h + d], 1e-6f);
        }
        free(v3);
        free(v2);
        free(padded);
        free(pmask);
        free(v);
        free(hidden);
        free(mask);
    }
    ck_assert_uint_ge(checked, 6);
    json_decref(refs);
}
END_TEST

Suite *suite_pipelines(void)
{
    Suite *s = suite_create("pipelines");
    TCase *tc = tcase_create("text_classification");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, text_classification_refs, 0, (int)N(seqcls_models));
    tcase_add_test(tc, text_classification_shapes);
    tcase_add_test(tc, text_classification_bad_params);
    suite_add_tcase(s, tc);
    tc = tcase_create("token_classification");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, token_classification_refs, 0, (int)N(tokcls_models));
    tcase_add_test(tc, token_classification_bad_params);
    suite_add_tcase(s, tc);
    tc = tcase_create("question_answering");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, question_answering_refs, 0, (int)N(qa_models));
    tcase_add_test(tc, question_answering_windows);
    tcase_add_test(tc, question_answering_bad_params);
    suite_add_tcase(s, tc);
    tc = tcase_create("fill_mask_zero_shot_embeddings");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, fill_mask_refs);
    tcase_add_test(tc, zero_shot_scores);
    tcase_add_test(tc, embeddings_refs);
    suite_add_tcase(s, tc);
    return s;
}
