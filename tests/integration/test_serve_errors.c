/* test_serve_errors: every error status of the real daemon, each in its dialect's shape
 * (Hugging Face and TEI routes {"error", "error_type"}; /v1/ routes {"error": {"message", "type",
 * "param", "code"}}): 400 malformed JSON, 401 without or with a wrong key, 404 unknown model
 * or route, 405 wrong method, 413 body over max_body_bytes (answered before the body is all
 * sent), 422 invalid inputs and parameters and too many tokens, 429 queue full, 503 while a
 * model cannot load, 504 request timeout; and the start-up failures (exit 2 with
 * FILE:LINE:COL for a bad config or command line, exit 1 for a port in use or a model that
 * cannot load: a missing directory, a missing file, an unsupported model_type, each said
 * exactly, unless server.allow_partial_start), plus the one-model command line
 * `serve --model DIR --task TASK`. */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "integration/serve_expect.h"
#include "integration/serve_support.h"
#include "suites.h"
#include "support/support.h"

/* The daemon shared by the "statuses" TCase: a small body limit, a model with a small token
 * limit, and one whose queue holds a single request. */
static struct daemon *srv;

static void srv_start(void)
{
    char *yaml = yaml_config(
        "max_body_bytes: 2048\n", yaml_model("seqcls", "bert-seqcls", "text-classification", NULL),
        yaml_model("short", "bert-seqcls", "text-classification", "max_input_tokens: 16\n"),
        yaml_model("tokcls", "bert-tokcls", "token-classification", NULL),
        yaml_model("embed", "bert-embed", "sentence-embeddings", NULL),
        yaml_model("busy", "bert-seqcls", "text-classification",
                   "batching:\n  max_batch_size: 64\n  max_queue_delay_us: 300000\n"
                   "  max_queue_size: 1\n"),
        NULL);
    srv = daemon_start_shared(yaml);
}

static void srv_stop(void)
{
    daemon_stop(srv);
    srv = NULL;
}

enum shape { HF, OPENAI, ANY };

/* One request with a raw body; the status and the error shape. */
static void expect_error(const char *method, const char *path, const char *body, long status,
                         enum shape shape)
{
    char what[300];
    snprintf(what, sizeof what, "%s %s %.60s", method, path, body ? body : "");
    struct http_reply *r = http_request(srv->port, method, path, body, NULL);
    if (shape == HF)
        expect_hf_error(r, status, what);
    else if (shape == OPENAI)
        expect_openai_error(r, status, what);
    else {
        expect_status(r, status, what);
        ck_assert_msg(json_object_get(r->json, "error") != NULL, "%s: no JSON error: %s", what,
                      r->body);
    }
    http_reply_free(r);
}

/* The daemon still serves: one good request answered as HF did. */
static void still_serves(const struct daemon *d)
{
    json_t *refs = model_refs("bert-seqcls");
    const json_t *e0 = json_array_get(json_object_get(refs, "pipeline"), 0);
    struct http_reply *r = daemon_post(d, "/models/seqcls",
                                       json_pack("{s:O}", "inputs", json_object_get(e0, "input")));
    expect_status(r, 200, "a good request after the errors");
    expect_json(r->json, json_object_get(e0, "output"), REF_TOL, "a good request after the errors");
    http_reply_free(r);
    json_decref(refs);
}

/* ---- 400, 404, 405 ---- */

START_TEST(malformed_json_400)
{
    expect_error("POST", "/models/seqcls", "{\"inputs\": \"unterminated", 400, HF);
    expect_error("POST", "/models/seqcls", "not json at all", 400, HF);
    expect_error("POST", "/models/seqcls", "", 400, HF);
    expect_error("POST", "/embed", "[1,", 400, HF);
    expect_error("POST", "/predict", "{\"inputs\": \"a\",}", 400, HF);
    expect_error("POST", "/v1/embeddings", "{\"input\": ", 400, OPENAI);
    still_serves(srv);
}
END_TEST

START_TEST(not_found_404)
{
    expect_error("POST", "/models/no-such-model", "{\"inputs\": \"x\"}", 404, HF);
    expect_error("POST", "/embed", "{\"inputs\": \"x\", \"model\": \"no-such-model\"}", 404, HF);
    expect_error("POST", "/predict", "{\"inputs\": \"x\", \"model\": \"no-such-model\"}", 404, HF);
    expect_error("POST", "/v1/embeddings", "{\"input\": \"x\", \"model\": \"no-such-model\"}", 404,
                 OPENAI);
    expect_error("GET", "/no/such/route", NULL, 404, ANY);
    expect_error("POST", "/no-such-route", "{}", 404, ANY);
    expect_error("GET", "/v1/no-such-route", NULL, 404, ANY);
}
END_TEST

START_TEST(method_405)
{
    static const struct {
        const char *method, *path;
        enum shape shape;
    } cases[] = {
        {"GET", "/embed", HF},
        {"GET", "/predict", HF},
        {"GET", "/models/seqcls", HF},
        {"PUT", "/rerank", HF},
        {"POST", "/health", HF},
        {"DELETE", "/ready", HF},
        {"GET", "/v1/embeddings", OPENAI},
        {"DELETE", "/v1/models", OPENAI},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *body = strcmp(cases[i].method, "GET") == 0 ? NULL : "{}";
        expect_error(cases[i].method, cases[i].path, body, 405, cases[i].shape);
        /* RFC 9110: a 405 names the allowed methods */
        struct http_reply *r = http_request(srv->port, cases[i].method, cases[i].path, body, NULL);
        char allow[128];
        ck_assert_msg(http_header(r, "allow", allow, sizeof allow), "%s %s: 405 without Allow",
                      cases[i].method, cases[i].path);
        http_reply_free(r);
    }
}
END_TEST

/* ---- 413 ---- */

/* The JSON body of a raw response (after the blank line), parsed. */
static json_t *raw_body_json(const char *resp)
{
    const char *b = strstr(resp, "\r\n\r\n");
    return b ? json_loads(b + 4, JSON_DECODE_ANY, NULL) : NULL;
}

/* Announces a 100 KB body (Content-Length) and sends 4 KB of it, or sends a 4 KB chunked
 * body, and waits for the 413. */
static void oversized(const char *path, bool chunked, bool openai)
{
    size_t total = 100 * 1024, first = 4096;
    char head[512];
    if (chunked)
        snprintf(head, sizeof head,
                 "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n",
                 path);
    else
        snprintf(head, sizeof head,
                 "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\n\r\n",
                 path, total);
    char *body = malloc(first);
    memset(body, ' ', first);
    memcpy(body, "{\"inputs\": \"", 12);
    for (size_t i = 12; i < first; i++)
        body[i] = "hello "[i % 6];
    int fd = raw_connect(srv->port);
    ck_assert(raw_send(fd, head, strlen(head)));
    if (chunked) {
        for (size_t at = 0; at < first; at += 1024) {
            char size[16];
            snprintf(size, sizeof size, "400\r\n"); /* 1024 bytes */
            raw_send(fd, size, strlen(size));
            raw_send(fd, body + at, 1024);
            raw_send(fd, "\r\n", 2);
        }
        /* libmicrohttpd takes a response only once a chunked upload ends: end it here (the
         * daemon dropped the excess without buffering; endless_chunked_upload covers the
         * sender that never stops) */
        raw_send(fd, "0\r\n\r\n", 5);
    } else {
        raw_send(fd, body, first); /* the peer may already have closed: fine */
    }
    char *resp = NULL;
    long status = raw_read_reply(fd, 5000, &resp);
    ck_assert_msg(status == 413,
                  "POST %s with %s (4 KB of 100 KB sent): status %ld, answer: %.300s", path,
                  chunked ? "a chunked body" : "Content-Length 102400", status, resp);
    json_t *j = raw_body_json(resp);
    const json_t *e = json_object_get(j, "error");
    if (openai)
        ck_assert_msg(json_is_object(e) && json_is_string(json_object_get(e, "message")),
                      "413 on %s not in OpenAI's shape: %s", path, resp);
    else
        ck_assert_msg(json_is_string(e) && json_is_string(json_object_get(j, "error_type")),
                      "413 on %s not {error, error_type}: %s", path, resp);
    json_decref(j);
    free(resp);
    free(body);
    raw_close(fd);
}

START_TEST(body_too_large_413)
{
    oversized("/models/seqcls", false, false);
    oversized("/embed", false, false);
    oversized("/v1/embeddings", false, true);
    /* just under the limit is fine */
    char text[1900];
    for (size_t i = 0; i + 1 < sizeof text; i++)
        text[i] = "hello "[i % 6];
    text[sizeof text - 1] = '\0';
    struct http_reply *r = daemon_post(srv, "/models/seqcls", json_pack("{s:s}", "inputs", text));
    expect_status(r, 200, "POST /models/seqcls, a 1.9 KB body under max_body_bytes 2048");
    http_reply_free(r);
    still_serves(srv);
    /* no Content-Length: the excess is dropped as the chunks come (413 at the end) */
    oversized("/models/seqcls", true, false);
    still_serves(srv);
}
END_TEST

/* A chunked upload that never ends is cut off (connection closed) once it has sent about
 * 1 MiB past the limit, instead of being read forever; the daemon keeps serving. */
START_TEST(endless_chunked_upload)
{
    const char *head = "POST /models/seqcls HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    int fd = raw_connect(srv->port);
    ck_assert(raw_send(fd, head, strlen(head)));
    char chunk[8192 + 16];
    int hl = snprintf(chunk, sizeof chunk, "2000\r\n");
    memset(chunk + hl, 'a', 8192);
    memcpy(chunk + hl + 8192, "\r\n", 2);
    /* 2 MiB, past the 1 MiB the daemon reads of an oversized chunked body */
    bool closed = false;
    for (int i = 0; i < 256 && !closed; i++)
        closed = !raw_send(fd, chunk, (size_t)hl + 8192 + 2);
    /* closed (reset or EOF) rather than waiting for more: no answer, and quickly */
    double t0 = now_ms();
    char *resp = NULL;
    long status = raw_read_reply(fd, 8000, &resp);
    double waited = now_ms() - t0;
    ck_assert_msg(status == 0 && waited < 6000,
                  "an endless chunked upload was not cut off: status %ld after %.0f ms (%.200s)",
                  status, waited, resp ? resp : "");
    free(resp);
    raw_close(fd);
    still_serves(srv);
}
END_TEST

/* ---- 422 ---- */

START_TEST(invalid_422)
{
    static const struct {
        const char *path, *body;
        enum shape shape;
    } cases[] = {
        /* wrong types, missing and empty inputs */
        {"/models/seqcls", "{\"inputs\": 42}", HF},
        {"/models/seqcls", "{\"inputs\": [\"ok\", 3]}", HF},
        {"/models/seqcls", "{}", HF},
        {"/models/seqcls", "{\"inputs\": []}", HF},
        {"/models/seqcls", "{\"inputs\": \"\"}", HF},
        {"/models/tokcls", "{\"inputs\": [\"ok\", \"\"]}", HF},
        {"/models/seqcls", "{\"inputs\": \"x\", \"parameters\": [1]}", HF},
        {"/models/embed", "{\"inputs\": {\"text\": \"x\"}}", HF},
        /* unknown parameter values */
        {"/models/seqcls", "{\"inputs\": \"x\", \"parameters\": {\"function_to_apply\": \"cube\"}}",
         HF},
        {"/models/seqcls", "{\"inputs\": \"x\", \"parameters\": {\"top_k\": 0}}", HF},
        {"/models/tokcls",
         "{\"inputs\": \"x\", \"parameters\": {\"aggregation_strategy\": \"most\"}}", HF},
        /* more tokens than max_input_tokens (16) without truncation */
        {"/models/short",
         "{\"inputs\": \"one two three four five six seven eight nine ten eleven twelve thirteen "
         "fourteen fifteen sixteen seventeen eighteen\"}",
         HF},
        {"/predict",
         "{\"model\": \"short\", \"inputs\": \"one two three four five six seven eight nine ten "
         "eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen\"}",
         HF},
        /* TEI */
        {"/predict", "{\"inputs\": 42}", HF},
        {"/embed", "{\"inputs\": 42}", HF},
        {"/embed", "{\"inputs\": []}", HF},
        {"/tokenize", "{\"inputs\": 42}", HF},
        {"/decode", "{\"ids\": \"one\"}", HF},
        {"/rerank", "{\"query\": \"q\", \"texts\": \"not a list\"}", HF},
        {"/rerank", "{\"query\": \"q\", \"texts\": []}", HF},
        /* a classifier of two labels is no re-ranker */
        {"/rerank", "{\"query\": \"q\", \"texts\": [\"a\"], \"model\": \"seqcls\"}", HF},
        /* a model of another task */
        {"/embed", "{\"inputs\": \"x\", \"model\": \"seqcls\"}", HF},
        {"/predict", "{\"inputs\": \"x\", \"model\": \"embed\"}", HF},
        /* OpenAI */
        {"/v1/embeddings", "{\"input\": 42, \"model\": \"embed\"}", OPENAI},
        {"/v1/embeddings", "{\"input\": \"x\", \"model\": \"embed\", \"encoding_format\": \"hex\"}",
         OPENAI},
        {"/v1/embeddings", "{\"input\": [], \"model\": \"embed\"}", OPENAI},
        {"/v1/embeddings", "{\"input\": \"x\", \"model\": \"seqcls\"}", OPENAI},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_error("POST", cases[i].path, cases[i].body, 422, cases[i].shape);
    /* the short model answers what fits */
    struct http_reply *r =
        daemon_post(srv, "/models/short", json_pack("{s:s}", "inputs", "Hello world!"));
    expect_status(r, 200, "POST /models/short, 5 tokens under max_input_tokens 16");
    http_reply_free(r);
    still_serves(srv);
}
END_TEST

/* ---- 429 ---- */

/* 16 requests at once on a model whose queue holds one request and waits 300 ms to batch:
 * every request is answered, some with 429, the others correctly. */
START_TEST(queue_full_429)
{
    json_t *refs = model_refs("bert-seqcls");
    const json_t *entries = json_object_get(refs, "pipeline");
    enum { N = 16 };
    struct http_spec specs[N];
    char *bodies[N];
    for (size_t i = 0; i < N; i++) {
        const json_t *x = json_array_get(entries, i);
        json_t *body = json_pack("{s:O}", "inputs", json_object_get(x, "input"));
        bodies[i] = json_dumps(body, 0);
        json_decref(body);
        specs[i] = (struct http_spec){"POST", "/models/busy", bodies[i], NULL};
    }
    struct http_multi *m = http_multi_start(srv->port, specs, N);
    ck_assert_msg(http_multi_wait(m, 30000), "16 requests not all answered in 30 s");
    int ok = 0, busy = 0;
    for (size_t i = 0; i < N; i++) {
        const struct http_reply *r = http_multi_reply(m, i);
        char what[80];
        snprintf(what, sizeof what, "request %zu of 16 to a full queue", i);
        if (r->status == 429) {
            expect_hf_error(r, 429, what);
            busy++;
            continue;
        }
        expect_status(r, 200, what);
        expect_json(r->json, json_object_get(json_array_get(entries, i), "output"), REF_TOL, what);
        ok++;
    }
    ck_assert_msg(busy > 0 && ok > 0,
                  "max_queue_size 1, 16 requests at once: %d answered 200, %d 429", ok, busy);
    http_multi_free(m);
    for (size_t i = 0; i < N; i++)
        free(bodies[i]);
    json_decref(refs);
    still_serves(srv);
}
END_TEST

/* ---- daemons of their own: 401, 503, 504 ---- */

START_TEST(unauthorized_401)
{
    char *yaml = yaml_config("api_keys: [\"key-one\", \"key-two\"]\n",
                             yaml_model("seqcls", "bert-seqcls", "text-classification", NULL),
                             yaml_model("embed", "bert-embed", "sentence-embeddings", NULL), NULL);
    struct daemon *d = daemon_start(yaml, "key-one");
    free(yaml);
    const char *body = "{\"inputs\": \"Hello world!\"}";
    static const char *const bad_keys[] = {
        NULL, "Authorization: Bearer key-three",
        "Authorization: Basic a2V5LW9uZQ==", "Authorization: Bearer", "Authorization: key-one"};
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        char what[160];
        snprintf(what, sizeof what, "POST /models/seqcls with %s",
                 bad_keys[i] ? bad_keys[i] : "no key");
        struct http_reply *r = http_request(d->port, "POST", "/models/seqcls", body, bad_keys[i]);
        expect_hf_error(r, 401, what);
        http_reply_free(r);
    }
    static const struct {
        const char *method, *path, *body;
        enum shape shape;
    } routes[] = {
        {"GET", "/metrics", NULL, ANY},
        {"GET", "/info", NULL, HF},
        {"POST", "/embed", "{\"inputs\": \"x\"}", HF},
        {"POST", "/v1/embeddings", "{\"input\": \"x\", \"model\": \"embed\"}", OPENAI},
        {"GET", "/v1/models", NULL, OPENAI},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        char what[160];
        snprintf(what, sizeof what, "%s %s without a key", routes[i].method, routes[i].path);
        struct http_reply *r =
            http_request(d->port, routes[i].method, routes[i].path, routes[i].body, NULL);
        if (routes[i].shape == HF)
            expect_hf_error(r, 401, what);
        else if (routes[i].shape == OPENAI)
            expect_openai_error(r, 401, what);
        else
            expect_status(r, 401, what);
        http_reply_free(r);
        r = http_request(d->port, routes[i].method, routes[i].path, routes[i].body,
                         "Authorization: Bearer key-two");
        snprintf(what, sizeof what, "%s %s with the second key", routes[i].method, routes[i].path);
        expect_status(r, 200, what);
        http_reply_free(r);
    }
    /* the probes' routes need no key (a kubelet probe cannot carry a Secret) */
    struct http_reply *r = http_request(d->port, "GET", "/health", NULL, NULL);
    expect_status(r, 200, "GET /health without a key");
    http_reply_free(r);
    r = http_request(d->port, "GET", "/ready", NULL, NULL);
    expect_status(r, 200, "GET /ready without a key");
    http_reply_free(r);
    r = http_request(d->port, "POST", "/models/seqcls", body, "Authorization: Bearer key-one");
    expect_status(r, 200, "POST /models/seqcls with the first key");
    http_reply_free(r);
    daemon_shutdown(d);
    daemon_stop(d);
}
END_TEST

/* A model that cannot load with server.allow_partial_start: /ready stays 503, its requests
 * get 503, the others serve. */
START_TEST(not_ready_503)
{
    struct daemon *d = daemon_new(NULL);
    const char *broken = broken_model(d->dir);
    char *yaml = yaml_config("allow_partial_start: true\n",
                             yaml_model("seqcls", "bert-seqcls", "text-classification", NULL),
                             yaml_model("broken", broken, "text-classification", NULL), NULL);
    daemon_write_config(d, yaml);
    free(yaml);
    daemon_exec(d, NULL);
    daemon_wait_listening(d, 30000);
    /* wait for the good model */
    long long end = now_ms() + 60000;
    for (;;) {
        struct http_reply *r =
            http_request(d->port, "POST", "/models/seqcls", "{\"inputs\": \"Hello world!\"}", NULL);
        long st = r->status;
        http_reply_free(r);
        if (st == 200)
            break;
        ck_assert_msg(daemon_alive(d), "daemon exited with a model that cannot load; log:\n%s",
                      daemon_log_tail(d));
        ck_assert_msg(now_ms() < end, "seqcls never answered 200 (last %ld); log:\n%s", st,
                      daemon_log_tail(d));
        sleep_ms(50);
    }
    sleep_ms(200); /* the broken one has had time to fail too */
    struct http_reply *r = http_request(d->port, "GET", "/ready", NULL, NULL);
    expect_status(r, 503, "GET /ready with a model that cannot load");
    http_reply_free(r);
    r = http_request(d->port, "POST", "/models/broken", "{\"inputs\": \"Hello world!\"}", NULL);
    expect_hf_error(r, 503, "POST /models/broken (it cannot load)");
    http_reply_free(r);
    r = http_request(d->port, "GET", "/health", NULL, NULL);
    expect_status(r, 200, "GET /health with a model that cannot load");
    http_reply_free(r);
    char *log = daemon_log(d);
    ck_assert_msg(strstr(log, "model.safetensors") != NULL,
                  "the log does not name the broken file:\n%s", daemon_log_tail(d));
    free(log);
    daemon_shutdown(d);
    daemon_stop(d);
}
END_TEST

/* Requests queued for longer than request_timeout_ms (2 s) get 504. The daemon runs a
 * lone request at once, so a single request never waits for the batching delay; three
 * requests queued behind a heavy one do: they wait for max_queue_delay_us (6 s). (The heavy
 * request itself must be tokenized within the timeout on a slow, loaded ASan build, hence a
 * timeout of seconds.) */
static void queued_past_deadline(const struct daemon *d, const char *model, const char *heavy_path,
                                 const char *light_path, const char *light_body, enum shape shape)
{
    struct http_multi *heavy = occupy_worker(d, model, heavy_path);
    struct http_spec specs[3];
    for (size_t i = 0; i < 3; i++)
        specs[i] = (struct http_spec){"POST", light_path, light_body, NULL};
    struct http_multi *m = http_multi_start(d->port, specs, 3);
    ck_assert(http_multi_wait(m, 30000) && http_multi_wait(heavy, 30000));
    /* the first to reach its deadline gets 504; one left alone in the queue by then may run
     * at once (the daemon runs a lone request without waiting): 200 within its deadline */
    int timeouts = 0;
    for (size_t i = 0; i < 3; i++) {
        const struct http_reply *r = http_multi_reply(m, i);
        char what[200];
        snprintf(what, sizeof what,
                 "POST %s queued for a 6 s batching delay, request_timeout_ms 2000", light_path);
        if (r->status == 200) {
            char q[64];
            ck_assert_msg(http_header(r, "x-queue-time", q, sizeof q) && strtod(q, NULL) <= 2000,
                          "%s: 200 after x-queue-time %s ms", what, q);
            continue;
        }
        if (shape == OPENAI)
            expect_openai_error(r, 504, what);
        else
            expect_hf_error(r, 504, what);
        timeouts++;
    }
    ck_assert_msg(timeouts > 0, "POST %s: none of 3 requests queued behind a heavy one timed out",
                  light_path);
    /* the heavy one ran (it was not queued past its deadline), or timed out while tokenized */
    long st = http_multi_reply(heavy, 0)->status;
    ck_assert_msg(st == 200 || st == 504, "the heavy request to %s: status %ld", heavy_path, st);
    http_multi_free(m);
    http_multi_free(heavy);
}

START_TEST(timeout_504)
{
    const char *batching = "batching:\n  max_batch_size: 64\n  max_queue_delay_us: 6000000\n";
    char *yaml =
        yaml_config("request_timeout_ms: 2000\n",
                    yaml_model("seqcls", "bert-seqcls", "text-classification", batching),
                    yaml_model("embed", "bert-embed", "sentence-embeddings", batching), NULL);
    struct daemon *d = daemon_start(yaml, NULL);
    free(yaml);
    queued_past_deadline(d, "seqcls", "/models/seqcls", "/models/seqcls",
                         "{\"inputs\": \"Hello world!\"}", HF);
    queued_past_deadline(d, "embed", "/embed", "/embed",
                         "{\"inputs\": \"Hello world!\", \"model\": \"embed\"}", HF);
    queued_past_deadline(d, "embed", "/embed", "/v1/embeddings",
                         "{\"input\": \"Hello world!\", \"model\": \"embed\"}", OPENAI);
    struct http_reply *r = daemon_get(d, "/health");
    expect_status(r, 200, "GET /health after timeouts");
    http_reply_free(r);
    daemon_shutdown(d);
    daemon_stop(d);
}
END_TEST

/* ---- start-up ---- */

/* Starts `serve --config` on yaml (or `serve args` when args is not NULL), expects it to
 * exit with code within 20 s; returns the log (malloc'ed). */
static char *start_fails(const char *yaml, const char *const *args, int code, const char *what)
{
    struct daemon *d = daemon_new(yaml);
    daemon_exec(d, args);
    int got = daemon_wait_exit(d, 20000);
    ck_assert_msg(got == code, "%s: exit code %d (want %d; -1: still running); log:\n%s", what, got,
                  code, daemon_log_tail(d));
    char *log = daemon_log(d);
    char *copy = malloc(strlen(log) + strlen(d->config_path) + 2);
    sprintf(copy, "%s\n%s", d->config_path, log); /* first line: the config's path */
    free(log);
    daemon_stop(d);
    return copy;
}

/* The log (after start_fails's first line) mentions "PATH:LINE:". */
static void names_line(const char *out, int line, const char *what)
{
    char path[400];
    size_t k = strcspn(out, "\n");
    snprintf(path, sizeof path, "%.*s:%d:", (int)k, out, line);
    ck_assert_msg(strstr(out + k, path) != NULL, "%s: the message does not name %s:\n%s", what,
                  path, out + k);
}

START_TEST(bad_config_exits_2)
{
    const char *model =
        "models:\n  - name: seqcls\n    path: \"%s\"\n    task: text-classification\n";
    char models[900];
    snprintf(models, sizeof models, model, fixture_model("bert-seqcls"));
    char yaml[1200];
    /* an unknown key on line 4 */
    snprintf(yaml, sizeof yaml, "server:\n  host: 127.0.0.1\n  port: 0\n  bogus_key: 1\n%s",
             models);
    char *out = start_fails(yaml, NULL, 2, "an unknown key");
    names_line(out, 4, "an unknown key");
    ck_assert_msg(strstr(out, "bogus_key") != NULL, "the message does not name bogus_key:\n%s",
                  out);
    free(out);
    /* a wrong type on line 4 */
    snprintf(yaml, sizeof yaml, "server:\n  host: 127.0.0.1\n  port: 0\n  max_body_bytes: lots\n%s",
             models);
    out = start_fails(yaml, NULL, 2, "max_body_bytes: lots");
    names_line(out, 4, "max_body_bytes: lots");
    free(out);
    /* a model without its task (the entry starts on line 5) */
    snprintf(yaml, sizeof yaml,
             "server:\n  host: 127.0.0.1\n  port: 0\nmodels:\n  - name: seqcls\n    path: \"%s\"\n",
             fixture_model("bert-seqcls"));
    out = start_fails(yaml, NULL, 2, "a model without task");
    names_line(out, 5, "a model without task");
    ck_assert_msg(strstr(strchr(out, '\n'), "task") != NULL,
                  "the message does not name 'task':\n%s", out);
    free(out);
    /* YAML that does not parse (the error shows on line 3) */
    out = start_fails("server:\n  port: [0\nmodels: {\n", NULL, 2, "broken YAML");
    names_line(out, 3, "broken YAML");
    free(out);
    /* a bad command line */
    static const char *const bad_flag[] = {"--no-such-flag", NULL};
    out = start_fails(NULL, bad_flag, 2, "serve --no-such-flag");
    free(out);
    static const char *const no_file[] = {"--config", "/nonexistent/inferd.yaml", NULL};
    out = start_fails(NULL, no_file, 2, "serve --config /nonexistent/inferd.yaml");
    free(out);
}
END_TEST


/* Starts d (its config written) and expects exit 1 with every line of want in its log, after
 * the model's failure the daemon's own "stopping" line. */
static void expect_start_fails(struct daemon *d, const char *const *args, const char *want,
                               const char *what)
{
    daemon_exec(d, args);
    int got = daemon_wait_exit(d, 60000);
    ck_assert_msg(got == 1, "%s: exit code %d (want 1; -1: still running); log:\n%s", what, got,
                  daemon_log_tail(d));
    char *log = daemon_log(d);
    ck_assert_msg(strstr(log, want) != NULL, "%s: no '%s' in the log:\n%s", what, want, log);
    ck_assert_msg(strstr(log, "inferd: stopping: a model failed to load at start") != NULL,
                  "%s: no stopping line:\n%s", what, log);
    ck_assert_msg(strstr(log, "inferd: stopped") != NULL, "%s: did not drain:\n%s", what, log);
    free(log);
    expect_clean_log(d);
}

/* A model directory that does not exist: exit 1 naming the key and the directory (it used to
 * log "listening", then ".../tokenizer.json: cannot read", and keep running). */
START_TEST(strict_start_bad_path)
{
    char *yaml = yaml_config(NULL, yaml_model("seqcls", "bert-seqcls", "text-classification", NULL),
                             yaml_model("ner", "/nonexistent/inferd-model", "ner", NULL), NULL);
    struct daemon *d = daemon_new(yaml);
    free(yaml);
    expect_start_fails(d, NULL,
                       "inferd: model ner failed to load: models[1].path "
                       "'/nonexistent/inferd-model': no such directory\n",
                       "a missing model directory");
    daemon_stop(d);
    /* the same through --model */
    d = daemon_new(NULL);
    static const char *const args[] = {"--model", "/nonexistent/inferd-model", "--task", "ner",
                                       "--host",  "127.0.0.1",                 "--port", "0",
                                       NULL};
    expect_start_fails(d, args,
                       "inferd: model inferd-model failed to load: --model "
                       "'/nonexistent/inferd-model': no such directory\n",
                       "serve --model with a missing directory");
    daemon_stop(d);
}
END_TEST

START_TEST(strict_start_missing_tokenizer)
{
    struct daemon *d = daemon_new(NULL);
    const char *dir = model_link_copy(d->dir, "notok", "bert-tokcls", "tokenizer.json", NULL);
    char *yaml = yaml_config(NULL, yaml_model("ner", dir, "ner", NULL), NULL);
    daemon_write_config(d, yaml);
    free(yaml);
    char want[1024];
    snprintf(want, sizeof want,
             "inferd: model ner failed to load: %s/tokenizer.json: no such file, nor "
             "slow-tokenizer files (vocab.txt, source.spm + vocab.json, "
             "sentencepiece.bpe.model + vocab.json, vocab.json + merges.txt, spiece.model, "
             "sentencepiece.bpe.model, spm.model, tokenizer.model)\n",
             dir);
    expect_start_fails(d, NULL, want, "a missing tokenizer.json");
    daemon_stop(d);
}
END_TEST

/* A GPT-2 relabelled phi: its model_type named with the supported ones. */
START_TEST(strict_start_unsupported_type)
{
    struct daemon *d = daemon_new(NULL);
    const char *dir = model_link_copy(d->dir, "phi", "gpt2-lm", NULL, "phi");
    char *yaml = yaml_config(NULL, yaml_model("phi", dir, "text-generation", NULL), NULL);
    daemon_write_config(d, yaml);
    free(yaml);
    char want[1024];
    snprintf(want, sizeof want,
             "inferd: model phi failed to load: %s/config.json: model_type 'phi' is not "
             "supported for text generation (supported: gpt2, llama, mistral, qwen2, qwen3, gemma, "
             "gemma2, gemma3_text, phi3, t5, mt5, bart, mbart, marian, m2m_100, pegasus)\n",
             dir);
    expect_start_fails(d, NULL, want, "model_type phi");
    daemon_stop(d);
}
END_TEST

START_TEST(port_in_use_exits_1)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(fd, 4), 0);
    socklen_t len = sizeof a;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    char yaml[1200];
    snprintf(yaml, sizeof yaml,
             "server:\n  host: 127.0.0.1\n  port: %d\nmodels:\n  - name: seqcls\n    path: \"%s\"\n"
             "    task: text-classification\n",
             ntohs(a.sin_port), fixture_model("bert-seqcls"));
    char *out = start_fails(yaml, NULL, 1, "a port in use");
    free(out);
    close(fd);
}
END_TEST

/* `serve --model DIR --task TASK --name NAME --port 0`: one model without a file. */
START_TEST(one_model_command_line)
{
    struct daemon *d = daemon_new(NULL);
    const char *args[] = {"--model",   fixture_model("bert-seqcls"),
                          "--task",    "text-classification",
                          "--name",    "cli",
                          "--port",    "0",
                          "--host",    "127.0.0.1",
                          "--workers", "1",
                          "--threads", "1",
                          NULL};
    daemon_exec(d, args);
    daemon_wait_listening(d, 30000);
    daemon_wait_ready(d, 60000);
    json_t *refs = model_refs("bert-seqcls");
    const json_t *e0 = json_array_get(json_object_get(refs, "pipeline"), 0);
    struct http_reply *r =
        daemon_post(d, "/models/cli", json_pack("{s:O}", "inputs", json_object_get(e0, "input")));
    expect_status(r, 200, "POST /models/cli");
    expect_json(r->json, json_object_get(e0, "output"), REF_TOL, "POST /models/cli");
    http_reply_free(r);
    json_decref(refs);
    daemon_signal(d, SIGINT);
    ck_assert_int_eq(daemon_wait_exit(d, 20000), 0);
    expect_clean_log(d);
    daemon_stop(d);
}
END_TEST

/* Last in its TCase: the shared daemon drains and exits 0 with a clean log (ASan, UBSan). */
START_TEST(shutdown_is_clean)
{
    daemon_shutdown(srv);
}
END_TEST

Suite *suite_serve_errors(void)
{
    Suite *s = suite_create("serve_errors");
    TCase *tc = tcase_create("statuses");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, srv_start, srv_stop);
    tcase_add_checked_fixture(tc, NULL, serve_teardown);
    tcase_add_test(tc, malformed_json_400);
    tcase_add_test(tc, not_found_404);
    tcase_add_test(tc, method_405);
    tcase_add_test(tc, body_too_large_413);
    tcase_add_test(tc, endless_chunked_upload);
    tcase_add_test(tc, invalid_422);
    tcase_add_test(tc, queue_full_429);
    tcase_add_test(tc, shutdown_is_clean);
    suite_add_tcase(s, tc);
    TCase *own = tcase_create("own daemon");
    tcase_set_timeout(own, 120);
    tcase_add_checked_fixture(own, NULL, serve_teardown);
    tcase_add_test(own, unauthorized_401);
    tcase_add_test(own, not_ready_503);
    tcase_add_test(own, strict_start_bad_path);
    tcase_add_test(own, strict_start_missing_tokenizer);
    tcase_add_test(own, strict_start_unsupported_type);
    tcase_add_test(own, timeout_504);
    tcase_add_test(own, bad_config_exits_2);
    tcase_add_test(own, port_in_use_exits_1);
    tcase_add_test(own, one_model_command_line);
    suite_add_tcase(s, own);
    return s;
}
