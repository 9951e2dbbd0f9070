/* test_serve_relpos: the relative-position encoders served by the real daemon through the
 * routes of their tasks, against the fixtures' references. One daemon holds every head:
 *   mpnet: POST /models/NAME for text-classification, token-classification and fill-mask
 *     (every refs "pipeline" entry), question-answering (the answer pipeline_run gives in
 *     process, which the pipelines_e2e suite checks against the refs' logits), and TEI /embed
 *     on mpnet-embed (all-mpnet-base-v2's mean pooling + Normalize: sentence_embeddings);
 *   deberta-v2: POST /models/NAME for text-classification, zero-shot-classification (the NLI
 *     head), token-classification, fill-mask and question-answering, and TEI /predict on the
 *     sequence classifier (softmax of the refs' logits, texts and pairs). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integration/serve_expect.h"
#include "integration/serve_support.h"
#include "pipelines/runner.h"
#include "suites.h"
#include "support/support.h"

static struct daemon *srv;

/* name in the config, fixture, task */
static const char *const served[][3] = {
    {"mpnet-cls", "mpnet-seqcls", "text-classification"},
    {"mpnet-ner", "mpnet-tokcls", "token-classification"},
    {"mpnet-fill", "mpnet-mlm", "fill-mask"},
    {"mpnet-qa", "mpnet-qa", "question-answering"},
    {"mpnet-embed", "mpnet-embed", "sentence-embeddings"},
    {"deberta-cls", "deberta-seqcls", "text-classification"},
    {"deberta-nli", "deberta-nli", "zero-shot-classification"},
    {"deberta-ner", "deberta-tokcls", "token-classification"},
    {"deberta-fill", "deberta-mlm", "fill-mask"},
    {"deberta-qa", "deberta-qa", "question-answering"},
};

static void srv_start(void)
{
    char *m[10];
    for (int i = 0; i < 10; i++)
        m[i] = yaml_model(served[i][0], served[i][1], served[i][2], NULL);
    srv = daemon_start_shared(
        yaml_config(NULL, m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8], m[9], NULL));
}

static void srv_stop(void)
{
    daemon_stop(srv);
    srv = NULL;
}

/* POST /models/NAME {"inputs", "parameters"?} (borrowed). */
static json_t *hf_body(const json_t *inputs, const json_t *params)
{
    json_t *body = json_pack("{s:O}", "inputs", inputs);
    if (params && json_object_size(params) > 0)
        json_object_set(body, "parameters", (json_t *)params);
    return body;
}

/* Every refs "pipeline" entry of fixture through POST /models/name. */
static void hf_pipeline_refs(const char *name, const char *fixture)
{
    json_t *refs = model_refs(fixture);
    const json_t *entries = json_object_get(refs, "pipeline");
    ck_assert_uint_gt(json_array_size(entries), 0);
    char path[128];
    snprintf(path, sizeof path, "/models/%s", name);
    for (size_t i = 0; i < json_array_size(entries); i++) {
        const json_t *x = json_array_get(entries, i);
        char what[256];
        snprintf(what, sizeof what, "POST %s, %s pipeline[%zu]", path, fixture, i);
        daemon_post_expect(srv, path,
                           hf_body(json_object_get(x, "input"), json_object_get(x, "parameters")),
                    json_object_get(x, "output"), NULL, what);
    }
    json_decref(refs);
}

/* Each refs QA example through POST /models/name: what pipeline_run answers in process. */
static void hf_question_answering(const char *name, const char *fixture)
{
    struct err e = {0};
    struct pipeline *p = NULL;
    struct pipeline_worker *w = NULL;
    ck_assert_msg(pipeline_open(fixture_model(fixture), "question-answering", DTYPE_COMPUTE_F32,
                                1, &p, &e) == 0 &&
                      pipeline_worker_new(1, &w, &e) == 0,
                  "%s", e.msg);
    json_t *refs = model_refs(fixture);
    const json_t *entries = json_object_get(refs, "logits");
    char path[128];
    snprintf(path, sizeof path, "/models/%s", name);
    for (size_t i = 0; i < json_array_size(entries); i++) {
        const json_t *x = json_array_get(entries, i);
        json_t *in = json_pack("{s:O, s:O}", "question", json_object_get(x, "question"), "context",
                               json_object_get(x, "context"));
        json_t *want = NULL;
        ck_assert_msg(pipeline_run(p, w, in, NULL, &want, &e) == 0, "%s", e.msg);
        ck_assert(json_is_string(json_object_get(want, "answer")));
        char what[256];
        snprintf(what, sizeof what, "POST %s, %s logits[%zu]", path, fixture, i);
        daemon_post_expect(srv, path, hf_body(in, NULL), want, NULL, what);
        json_decref(want);
        json_decref(in);
    }
    json_decref(refs);
    pipeline_worker_free(w);
    pipeline_close(p);
}

START_TEST(mpnet_served)
{
    hf_pipeline_refs("mpnet-cls", "mpnet-seqcls");
    hf_pipeline_refs("mpnet-ner", "mpnet-tokcls");
    hf_pipeline_refs("mpnet-fill", "mpnet-mlm");
    hf_question_answering("mpnet-qa", "mpnet-qa");
    /* TEI /embed: singles, then lists of up to 8 */
    json_t *refs = model_refs("mpnet-embed");
    const json_t *se = json_object_get(refs, "sentence_embeddings");
    json_t *texts = json_array(), *want = json_array();
    for (size_t i = 0; i < json_array_size(se); i++) {
        const json_t *x = json_array_get(se, i);
        char what[256];
        if (i % 5 == 0) {
            snprintf(what, sizeof what, "POST /embed, mpnet-embed sentence_embeddings[%zu]", i);
            json_t *one = json_pack("[O]", json_object_get(x, "embedding"));
            daemon_post_expect(srv, "/embed",
                        json_pack("{s:O, s:s}", "inputs", json_object_get(x, "text"), "model",
                                  "mpnet-embed"),
                        one, NULL, what);
            json_decref(one);
        }
        json_array_append(texts, json_object_get(x, "text"));
        json_array_append(want, json_object_get(x, "embedding"));
        if (json_array_size(texts) == 8 || i + 1 == json_array_size(se)) {
            snprintf(what, sizeof what, "POST /embed, mpnet-embed up to [%zu] as a list", i);
            daemon_post_expect(srv, "/embed",
                               json_pack("{s:O, s:s}", "inputs", texts, "model", "mpnet-embed"),
                        want, NULL, what);
            json_array_clear(texts);
            json_array_clear(want);
        }
    }
    json_decref(texts);
    json_decref(want);
    json_decref(refs);
}
END_TEST

START_TEST(deberta_served)
{
    hf_pipeline_refs("deberta-cls", "deberta-seqcls");
    hf_pipeline_refs("deberta-nli", "deberta-nli");
    hf_pipeline_refs("deberta-ner", "deberta-tokcls");
    hf_pipeline_refs("deberta-fill", "deberta-mlm");
    hf_question_answering("deberta-qa", "deberta-qa");
    /* TEI /predict on the sequence classifier: texts, then pairs */
    static const char *const labels[] = {"NEGATIVE", "POSITIVE"};
    json_t *refs = model_refs("deberta-seqcls");
    json_t *logits = seqcls_logits(refs);
    const json_t *pairs = json_object_get(refs, "pair_logits");
    for (size_t i = 0; i < json_array_size(logits) + json_array_size(pairs); i++) {
        bool pair = i >= json_array_size(logits);
        const json_t *x =
            pair ? json_array_get(pairs, i - json_array_size(logits)) : json_array_get(logits, i);
        json_t *in = pair ? json_pack("[O, O]", json_object_get(x, "text"),
                                      json_object_get(x, "pair"))
                          : json_incref(json_object_get(x, "text"));
        char what[256];
        snprintf(what, sizeof what, "POST /predict, deberta-seqcls %s[%zu]",
                 pair ? "pair_logits" : "logits", i);
        json_t *want = predict_expected(json_object_get(x, "logits"), labels, false);
        daemon_post_expect(srv, "/predict",
                           json_pack("{s:o, s:s}", "inputs", in, "model", "deberta-cls"),
                    want, NULL, what);
        json_decref(want);
    }
    json_decref(logits);
    json_decref(refs);
}
END_TEST

START_TEST(shutdown_is_clean)
{
    daemon_shutdown(srv);
}
END_TEST

Suite *suite_serve_relpos(void)
{
    Suite *s = suite_create("serve_relpos");
    TCase *tc = tcase_create("relpos");
    tcase_add_unchecked_fixture(tc, srv_start, srv_stop);
    tcase_add_checked_fixture(tc, NULL, serve_teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, mpnet_served);
    tcase_add_test(tc, deberta_served);
    tcase_add_test(tc, shutdown_is_clean);
    suite_add_tcase(s, tc);
    return s;
}
