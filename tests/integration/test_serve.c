/* test_serve: the Hugging Face Inference API of the real daemon (`POST /models/{name}`) for
 * every encoder task against the fixtures' transformers references (refs-dev.json "pipeline"
 * entries, each alone and grouped into batched `inputs` lists; sentence embeddings and token
 * features of bert-embed; question answering by the shape and span of its answer), plus
 * /health, /ready, GET /v1/models and /metrics (request counters for the calls made, and
 * `promtool check metrics`). One daemon serving every fixture model is shared by the tests
 * (started in an unchecked fixture). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integration/serve_expect.h"
#include "integration/serve_support.h"
#include "suites.h"
#include "support/support.h"

static struct daemon *srv;

static void srv_start(void)
{
    char *yaml =
        yaml_config(NULL, yaml_model("seqcls", "bert-seqcls", "text-classification", NULL),
                    yaml_model("tokcls", "bert-tokcls", "token-classification", NULL),
                    yaml_model("mlm", "bert-mlm", "fill-mask", NULL),
                    yaml_model("nli", "bert-nli", "zero-shot-classification", NULL),
                    yaml_model("qa", "bert-qa", "question-answering", NULL),
                    yaml_model("embed", "bert-embed", "sentence-embeddings", NULL),
                    yaml_model("features", "bert-embed", "feature-extraction", NULL), NULL);
    srv = daemon_start_shared(yaml);
}

static void srv_stop(void)
{
    daemon_stop(srv);
    srv = NULL;
}

/* POST /models/NAME {"inputs": inputs, "parameters": params?} (both borrowed). */
static struct http_reply *hf_call(const char *name, const json_t *inputs, const json_t *params)
{
    char path[128];
    snprintf(path, sizeof path, "/models/%s", name);
    json_t *body = json_pack("{s:O}", "inputs", inputs);
    if (params && json_object_size(params) > 0)
        json_object_set(body, "parameters", (json_t *)params);
    return daemon_post(srv, path, body);
}

/* hf_call, 200, and the answer close to want. */
static void hf_expect(const char *name, const json_t *inputs, const json_t *params,
                      const json_t *want, const char *what)
{
    struct http_reply *r = hf_call(name, inputs, params);
    expect_status(r, 200, what);
    expect_json(r->json, want, REF_TOL, what);
    http_reply_free(r);
}

/* Every refs "pipeline" entry of model alone, then (batch) the entries with the same
 * parameters as one batched list (up to 8 per request). A text-classification call without
 * top_k is HF's legacy form: a single string answers [dict], a list one dict per input. */
static void check_pipeline_refs(const char *name, const char *model, bool legacy_unwrap, bool batch)
{
    json_t *refs = model_refs(model);
    const json_t *entries = json_object_get(refs, "pipeline");
    ck_assert_uint_gt(json_array_size(entries), 0);
    json_t *groups = json_object(); /* parameters (as text) -> {params, inputs, outputs} */
    for (size_t i = 0; i < json_array_size(entries); i++) {
        const json_t *x = json_array_get(entries, i);
        const json_t *in = json_object_get(x, "input"), *params = json_object_get(x, "parameters");
        const json_t *out = json_object_get(x, "output");
        char what[160];
        snprintf(what, sizeof what, "POST /models/%s, %s pipeline[%zu] alone", name, model, i);
        hf_expect(name, in, params, out, what);

        char *key = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
        json_t *g = json_object_get(groups, key);
        if (!g) {
            g = json_pack("{s:O, s:[], s:[]}", "params", params, "inputs", "outputs");
            json_object_set_new(groups, key, g);
        }
        free(key);
        bool unwrap = legacy_unwrap && !json_object_get(params, "top_k");
        json_array_append(json_object_get(g, "inputs"), (json_t *)in);
        json_array_append(json_object_get(g, "outputs"),
                          (json_t *)(unwrap ? json_array_get(out, 0) : out));
    }
    const char *key;
    json_t *g;
    json_object_foreach(groups, key, g)
    {
        if (!batch)
            break;
        const json_t *ins = json_object_get(g, "inputs"), *outs = json_object_get(g, "outputs");
        for (size_t from = 0; from < json_array_size(ins); from += 8) {
            json_t *in = json_array(), *want = json_array();
            for (size_t i = from; i < from + 8 && i < json_array_size(ins); i++) {
                json_array_append(in, json_array_get(ins, i));
                json_array_append(want, json_array_get(outs, i));
            }
            char what[200];
            snprintf(what, sizeof what, "POST /models/%s, %zu %s inputs in one list, parameters %s",
                     name, json_array_size(in), model, key);
            hf_expect(name, in, json_object_get(g, "params"), want, what);
            json_decref(in);
            json_decref(want);
        }
    }
    json_decref(groups);
    json_decref(refs);
}

/* ---- Hugging Face Inference API ---- */

START_TEST(hf_text_classification)
{
    check_pipeline_refs("seqcls", "bert-seqcls", true, true);

    json_t *refs = model_refs("bert-seqcls");
    const char *const labels[] = {"NEGATIVE", "POSITIVE"};
    /* a text pair as {"text", "text_pair"}: one dict (HF does not wrap a dict input) */
    const json_t *p = json_array_get(json_object_get(refs, "pair_logits"), 1);
    json_t *in = json_pack("{s:O, s:O}", "text", json_object_get(p, "text"), "text_pair",
                           json_object_get(p, "pair"));
    json_t *all = predict_expected(json_object_get(p, "logits"), labels, false);
    hf_expect("seqcls", in, NULL, json_array_get(all, 0), "POST /models/seqcls, a text pair");
    json_decref(all);
    json_decref(in);

    /* options are accepted; the answer carries the timing headers; one input is one row */
    const json_t *e0 = json_array_get(json_object_get(refs, "pipeline"), 0);
    json_t *body = json_pack("{s:O, s:{s:b, s:b}}", "inputs", json_object_get(e0, "input"),
                             "options", "wait_for_model", 1, "use_cache", 0);
    struct http_reply *r = daemon_post(srv, "/models/seqcls", body);
    expect_status(r, 200, "POST /models/seqcls with options");
    expect_json(r->json, json_object_get(e0, "output"), REF_TOL, "with options");
    ck_assert_int_eq(expect_timing_headers(r, "POST /models/seqcls"), 1);
    http_reply_free(r);
    /* three inputs alone in the queue: a batch of three rows */
    body = json_pack("{s:[s, s, s]}", "inputs", "a", "b c", "d e f");
    r = daemon_post(srv, "/models/seqcls", body);
    expect_status(r, 200, "POST /models/seqcls, 3 inputs");
    ck_assert_int_eq(expect_timing_headers(r, "POST /models/seqcls, 3 inputs"), 3);
    http_reply_free(r);
    json_decref(refs);
}
END_TEST

START_TEST(hf_token_classification)
{
    check_pipeline_refs("tokcls", "bert-tokcls", false, true);
}
END_TEST

START_TEST(hf_fill_mask)
{
    check_pipeline_refs("mlm", "bert-mlm", false, true);
}
END_TEST

START_TEST(hf_zero_shot)
{
    /* the refs' {"sequence", "candidate_labels"} inputs as they are */
    check_pipeline_refs("nli", "bert-nli", false, false);
    /* the Inference API's usual form: inputs a string, candidate_labels a parameter, answered
     * as the API answers it ([{label, score}] best first, what huggingface_hub reads); and a
     * list of sequences sharing the labels, a list of those */
    json_t *refs = model_refs("bert-nli");
    const json_t *entries = json_object_get(refs, "pipeline");
    for (size_t i = 0; i < json_array_size(entries); i++) {
        const json_t *x = json_array_get(entries, i);
        const json_t *in = json_object_get(x, "input"), *ref = json_object_get(x, "output");
        json_t *out = json_array();
        for (size_t k = 0; k < json_array_size(json_object_get(ref, "labels")); k++)
            json_array_append_new(
                out, json_pack("{s:O, s:O}", "label",
                               json_array_get(json_object_get(ref, "labels"), k), "score",
                               json_array_get(json_object_get(ref, "scores"), k)));
        ck_assert_uint_gt(json_array_size(out), 1);
        json_t *params = json_deep_copy(json_object_get(x, "parameters"));
        json_object_set(params, "candidate_labels", json_object_get(in, "candidate_labels"));
        char what[160];
        snprintf(what, sizeof what,
                 "POST /models/nli, bert-nli pipeline[%zu] as string + parameters", i);
        hf_expect("nli", json_object_get(in, "sequence"), params, out, what);
        json_t *two =
            json_pack("[O, O]", json_object_get(in, "sequence"), json_object_get(in, "sequence"));
        json_t *want = json_pack("[O, O]", out, out);
        snprintf(what, sizeof what, "POST /models/nli, bert-nli pipeline[%zu] twice in a list", i);
        hf_expect("nli", two, params, want, what);
        json_decref(two);
        json_decref(want);
        json_decref(params);
        json_decref(out);
    }
    json_decref(refs);
}
END_TEST

/* Code points of s[0..bytes): for Python's character offsets. */
static size_t utf8_chars(const char *s, size_t bytes)
{
    size_t n = 0;
    for (size_t i = 0; i < bytes; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/* Byte offset of code point `chars` in s (len bytes). */
static size_t utf8_byte_at(const char *s, size_t len, size_t chars)
{
    size_t i = 0, n = 0;
    for (; i < len; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (n == chars)
                return i;
            n++;
        }
    }
    return i;
}

/* QA refs carry logits only (transformers 5 has no QA pipeline); the engine suite checks the
 * answers. Here: 200 with {score, start, end, answer}, answer == context[start:end] in
 * characters, and a list of two questions answers what each gets alone. */
START_TEST(hf_question_answering)
{
    json_t *refs = model_refs("bert-qa");
    const json_t *entries = json_object_get(refs, "logits");
    json_t *batch = json_array(), *alone = json_array();
    for (size_t i = 0; i < json_array_size(entries); i++) {
        const json_t *x = json_array_get(entries, i);
        const char *ctx = json_string_value(json_object_get(x, "context"));
        json_t *in = json_pack("{s:O, s:O}", "question", json_object_get(x, "question"), "context",
                               json_object_get(x, "context"));
        char what[160];
        snprintf(what, sizeof what, "POST /models/qa, bert-qa logits[%zu]", i);
        struct http_reply *r = hf_call("qa", in, NULL);
        expect_status(r, 200, what);
        const json_t *a = r->json;
        ck_assert_msg(json_is_object(a) && json_object_size(a) == 4 &&
                          json_is_number(json_object_get(a, "score")) &&
                          json_is_integer(json_object_get(a, "start")) &&
                          json_is_integer(json_object_get(a, "end")) &&
                          json_is_string(json_object_get(a, "answer")),
                      "%s: not {score, start, end, answer}: %s", what, r->body);
        double score = json_number_value(json_object_get(a, "score"));
        json_int_t start = json_integer_value(json_object_get(a, "start"));
        json_int_t end = json_integer_value(json_object_get(a, "end"));
        size_t n_chars = utf8_chars(ctx, strlen(ctx));
        ck_assert_msg(score >= 0 && score <= 1 && start >= 0 && start <= end &&
                          (size_t)end <= n_chars,
                      "%s: score %g, span [%lld, %lld) of %zu characters", what, score,
                      (long long)start, (long long)end, n_chars);
        size_t b0 = utf8_byte_at(ctx, strlen(ctx), (size_t)start);
        size_t b1 = utf8_byte_at(ctx, strlen(ctx), (size_t)end);
        const char *answer = json_string_value(json_object_get(a, "answer"));
        ck_assert_msg(strlen(answer) == b1 - b0 && memcmp(answer, ctx + b0, b1 - b0) == 0,
                      "%s: answer '%s' is not context[%lld:%lld] '%.*s'", what, answer,
                      (long long)start, (long long)end, (int)(b1 - b0), ctx + b0);
        if (i < 3) {
            json_array_append(batch, in);
            json_array_append(alone, r->json);
        }
        http_reply_free(r);
        json_decref(in);
    }
    hf_expect("qa", batch, NULL, alone, "POST /models/qa, three questions in one list");
    json_decref(batch);
    json_decref(alone);
    json_decref(refs);
}
END_TEST

START_TEST(hf_embeddings)
{
    json_t *refs = model_refs("bert-embed");
    /* sentence-transformers embeddings (mean pooling + normalize): alone and 8 per list */
    const json_t *se = json_object_get(refs, "sentence_embeddings");
    ck_assert_uint_gt(json_array_size(se), 8);
    json_t *texts = json_array(), *want = json_array();
    for (size_t i = 0; i < json_array_size(se); i++) {
        const json_t *x = json_array_get(se, i);
        char what[160];
        snprintf(what, sizeof what, "POST /models/embed, sentence_embeddings[%zu]", i);
        if (i % 5 == 0)
            hf_expect("embed", json_object_get(x, "text"), NULL, json_object_get(x, "embedding"),
                      what);
        json_array_append(texts, json_object_get(x, "text"));
        json_array_append(want, json_object_get(x, "embedding"));
        if (json_array_size(texts) == 8 || i + 1 == json_array_size(se)) {
            snprintf(what, sizeof what,
                     "POST /models/embed, sentence_embeddings up to [%zu] as a list", i);
            hf_expect("embed", texts, NULL, want, what);
            json_array_clear(texts);
            json_array_clear(want);
        }
    }
    /* feature extraction: the pipeline's (1, tokens, hidden) per input */
    const json_t *tf = json_object_get(refs, "token_features");
    for (size_t i = 0; i < json_array_size(tf); i++) {
        const json_t *x = json_array_get(tf, i);
        json_t *w = json_pack("[O]", json_object_get(x, "last_hidden_state"));
        hf_expect("features", json_object_get(x, "text"), NULL, w,
                  "POST /models/features, token_features alone");
        json_array_append(texts, json_object_get(x, "text"));
        json_array_append_new(want, w);
    }
    hf_expect("features", texts, NULL, want, "POST /models/features, token_features as a list");
    json_decref(texts);
    json_decref(want);
    json_decref(refs);
}
END_TEST

/* ---- health, readiness, models, metrics ---- */

START_TEST(health_ready_models)
{
    struct http_reply *r = daemon_get(srv, "/health");
    expect_status(r, 200, "GET /health");
    json_t *want = json_pack("{s:s}", "status", "ok");
    expect_json(r->json, want, 0, "GET /health");
    json_decref(want);
    http_reply_free(r);
    r = daemon_get(srv, "/ready");
    expect_status(r, 200, "GET /ready");
    want = json_pack("{s:s}", "status", "ready");
    expect_json(r->json, want, 0, "GET /ready");
    json_decref(want);
    http_reply_free(r);

    /* GET /v1/models: every configured model, in config order */
    static const char *const names[] = {"seqcls", "tokcls", "mlm",     "nli",
                                        "qa",     "embed",  "features"};
    r = daemon_get(srv, "/v1/models");
    expect_status(r, 200, "GET /v1/models");
    ck_assert_str_eq(json_string_value(json_object_get(r->json, "object")), "list");
    const json_t *data = json_object_get(r->json, "data");
    ck_assert_msg(json_array_size(data) == 7, "GET /v1/models: %s", r->body);
    for (size_t i = 0; i < 7; i++) {
        const json_t *m = json_array_get(data, i);
        ck_assert_msg(json_object_size(m) == 4, "GET /v1/models data[%zu]: 4 keys wanted", i);
        ck_assert_str_eq(json_string_value(json_object_get(m, "id")), names[i]);
        ck_assert_str_eq(json_string_value(json_object_get(m, "object")), "model");
        ck_assert_str_eq(json_string_value(json_object_get(m, "owned_by")), "inferd");
        ck_assert(json_is_integer(json_object_get(m, "created")));
    }
    http_reply_free(r);
}
END_TEST

/* Fails unless `promtool check metrics` accepts text (when promtool is installed). */
static void promtool_accepts(const char *text)
{
    if (access("/usr/bin/promtool", X_OK) != 0)
        return;
    const char *dir = temp_dir();
    char in[400], out[400], cmd[1200];
    snprintf(in, sizeof in, "%s/metrics.txt", dir);
    snprintf(out, sizeof out, "%s/promtool.txt", dir);
    FILE *f = fopen(in, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "/usr/bin/promtool check metrics < '%s' > '%s' 2>&1", in, out);
    int rc = system(cmd);
    char *said = read_file(out, NULL);
    ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "promtool check metrics: exit %d: %s",
                  WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, said ? said : "");
    free(said);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Whether some sample's name starts with "inferd_", contains part and ends with suffix. */
static bool has_metric(const char *text, const char *part, const char *suffix)
{
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char name[256];
        size_t k = strcspn(line, "{ \n");
        snprintf(name, sizeof name, "%.*s", (int)(k < len ? k : len), line);
        line += len + (nl ? 1 : 0);
        if (name[0] == '#' || strncmp(name, "inferd_", 7) != 0 || !strstr(name, part))
            continue;
        size_t n = strlen(name), s = strlen(suffix);
        if (n >= s && strcmp(name + n - s, suffix) == 0)
            return true;
    }
    return false;
}

START_TEST(metrics_count_requests)
{
    static const char *const ok_seqcls[] = {"model=\"seqcls\"", "status=\"200\"", NULL};
    static const char *const not_found[] = {"status=\"404\"", NULL};
    struct http_reply *r = daemon_get(srv, "/metrics");
    expect_status(r, 200, "GET /metrics");
    char type[128];
    ck_assert(http_header(r, "content-type", type, sizeof type));
    ck_assert_msg(strncmp(type, "text/plain", 10) == 0, "GET /metrics: Content-Type %s", type);
    double ok0 = metric_sum(r->body, "inferd_requests_total", ok_seqcls, NULL);
    double nf0 = metric_sum(r->body, "inferd_requests_total", not_found, NULL);
    http_reply_free(r);

    for (int i = 0; i < 3; i++) {
        r = daemon_post(srv, "/models/seqcls", json_pack("{s:s}", "inputs", "Hello world!"));
        expect_status(r, 200, "POST /models/seqcls");
        http_reply_free(r);
    }
    r = daemon_post(srv, "/models/no-such-model", json_pack("{s:s}", "inputs", "Hello world!"));
    expect_hf_error(r, 404, "POST /models/no-such-model");
    http_reply_free(r);

    /* a request is counted when its connection's turn ends, which may come after the client
     * has read the answer: read the counters until they arrive (2 s at most) */
    r = NULL;
    for (int tries = 0; tries < 40; tries++) {
        http_reply_free(r);
        r = daemon_get(srv, "/metrics");
        expect_status(r, 200, "GET /metrics");
        if (metric_sum(r->body, "inferd_requests_total", ok_seqcls, NULL) - ok0 >= 3 &&
            metric_sum(r->body, "inferd_requests_total", not_found, NULL) - nf0 >= 1)
            break;
        sleep_ms(50);
    }
    int n = 0;
    double ok1 = metric_sum(r->body, "inferd_requests_total", ok_seqcls, &n);
    ck_assert_msg(n > 0,
                  "no inferd_requests_total{model=\"seqcls\",status=\"200\"} sample in:\n%.3000s",
                  r->body);
    ck_assert_msg(ok1 - ok0 == 3,
                  "inferd_requests_total{model=\"seqcls\",status=\"200\"} went "
                  "from %g to %g after 3 calls",
                  ok0, ok1);
    double nf1 = metric_sum(r->body, "inferd_requests_total", not_found, NULL);
    ck_assert_msg(nf1 - nf0 == 1, "inferd_requests_total{status=\"404\"} went from %g to %g", nf0,
                  nf1);
    /* the other families the issue names: queue depth, batch sizes, tokens, latencies */
    ck_assert_msg(has_metric(r->body, "queue", ""), "no inferd_*queue* metric:\n%.3000s", r->body);
    ck_assert_msg(has_metric(r->body, "batch", "_bucket"), "no inferd_*batch*_bucket histogram");
    ck_assert_msg(has_metric(r->body, "token", ""), "no inferd_*token* metric");
    ck_assert_msg(has_metric(r->body, "second", "_bucket"),
                  "no latency histogram (inferd_*seconds*_bucket)");
    promtool_accepts(r->body);
    http_reply_free(r);
}
END_TEST

/* Last in its TCase: the shared daemon drains and exits 0 with a clean log (ASan, UBSan). */
START_TEST(shutdown_is_clean)
{
    daemon_shutdown(srv);
}
END_TEST

Suite *suite_serve(void)
{
    Suite *s = suite_create("serve");
    TCase *tc = tcase_create("hf");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, srv_start, srv_stop);
    tcase_add_checked_fixture(tc, NULL, serve_teardown);
    tcase_add_test(tc, hf_text_classification);
    tcase_add_test(tc, hf_token_classification);
    tcase_add_test(tc, hf_fill_mask);
    tcase_add_test(tc, hf_zero_shot);
    tcase_add_test(tc, hf_question_answering);
    tcase_add_test(tc, hf_embeddings);
    tcase_add_test(tc, health_ready_models);
    tcase_add_test(tc, metrics_count_requests);
    tcase_add_test(tc, shutdown_is_clean);
    suite_add_tcase(s, tc);
    return s;
}
