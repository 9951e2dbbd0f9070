/* test_abuse: the real daemon against what an attacker or a broken client does (issue 11's
 * reproducers): SIGTERM while a batch far longer than the drain's grace runs, heavy requests
 * next to the probes, invalid UTF-8 in paths and model names, routes probed without a key,
 * one source address holding connections while another is served, idle sockets, many query
 * arguments, huge header and chunk-size lines. Each asserts the answers, their statuses and
 * shapes, and a clean exit 0 on SIGTERM. */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "integration/serve_expect.h"
#include "integration/serve_support.h"
#include "suites.h"
#include "support/support.h"

static void buf_str(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

/* A JSON list of n texts of `words` words each (malloc'ed "[...]"). */
static char *texts_json(size_t n, size_t words)
{
    struct buf b = {0};
    buf_str(&b, "[");
    for (size_t i = 0; i < n; i++) {
        buf_add(&b, i ? ",\"" : "\"", i ? 2 : 1);
        for (size_t w = 0; w < words; w++)
            buf_add(&b, w ? " win" : "win", w ? 4 : 3);
        buf_str(&b, "\"");
    }
    buf_str(&b, "]");
    return b.p;
}

/* One request of 6,400 texts of ~400 tokens: a batch that runs ~15 s on one thread, far past
 * request_timeout_ms (3 s) + the drain's 5 s of grace. SIGTERM while it runs: the batch is
 * cancelled once its request is late (504), and the daemon exits 0 (it used to stop
 * libmicrohttpd with the connection still suspended: abort, exit 134, the request lost). */
START_TEST(drain_during_long_batch)
{
    char *yaml = yaml_config(
        "request_timeout_ms: 3000\nmax_body_bytes: 67108864\n",
        yaml_model("spam", "spam-bert-tiny", "text-classification",
                   "batching:\n  max_batch_size: 6400\n  max_batch_tokens: 4000000\n"
                   "limits:\n  max_client_batch_size: 0\n  max_results: 0\n"),
        NULL);
    struct daemon *d = daemon_start(yaml, NULL);
    free(yaml);
    char *texts = texts_json(6400, 400);
    size_t blen = strlen(texts) + 16;
    char *body = malloc(blen);
    ck_assert_ptr_nonnull(body);
    snprintf(body, blen, "{\"inputs\":%s}", texts);
    struct http_spec spec = {"POST", "/models/spam", body, NULL};
    struct http_multi *m = http_multi_start(d->port, &spec, 1);
    ck_assert_uint_eq(http_multi_run_until_sent(m, 60000), 1);
    http_multi_run(m, 2000); /* tokenized (~1.3 s), the batch runs */
    daemon_signal(d, SIGTERM);
    ck_assert_msg(http_multi_wait(m, 60000), "the request was not answered after SIGTERM");
    const struct http_reply *r = http_multi_reply(m, 0);
    ck_assert_msg(r->status == 200 || r->status == 503 || r->status == 504,
                  "status %ld (%s) body %.200s", r->status, r->error, r->body ? r->body : "");
    fprintf(stderr, "abuse: SIGTERM during a long batch: answered %ld\n", r->status);
    ck_assert_int_eq(daemon_wait_exit(d, 60000), 0);
    expect_clean_log(d);
    http_multi_free(m);
    free(body);
    free(texts);
    daemon_stop(d);
}
END_TEST

/* Two /tokenize requests of ~1.8 MB each keep the request threads busy for seconds; the
 * probes are answered by the polling threads meanwhile (they used to wait behind the
 * tokenization: 11.4 s with four of twice the size). */
START_TEST(probes_answer_under_heavy_requests)
{
    char *yaml = yaml_config("max_body_bytes: 4194304\n",
                             yaml_model("seqcls", "bert-seqcls", "text-classification", NULL),
                             NULL);
    struct daemon *d = daemon_start(yaml, NULL);
    free(yaml);
    enum { N = 2, WORDS = 300000 };
    struct buf b = {0};
    buf_str(&b, "{\"inputs\":\"");
    for (size_t w = 0; w < WORDS; w++)
        buf_str(&b, "hello ");
    buf_str(&b, "\"}");
    struct http_spec specs[N];
    for (size_t i = 0; i < N; i++)
        specs[i] = (struct http_spec){"POST", "/tokenize", b.p, NULL};
    struct http_multi *m = http_multi_start(d->port, specs, N);
    ck_assert_uint_eq(http_multi_run_until_sent(m, 60000), N);
    long long worst = 0;
    size_t running = N;
    for (int i = 0; i < 20 && running > 0; i++) {
        long long t0 = now_ms();
        struct http_reply *h = daemon_get(d, "/health");
        long long dt = now_ms() - t0;
        expect_status(h, 200, "GET /health next to heavy requests");
        http_reply_free(h);
        worst = dt > worst ? dt : worst;
        running = http_multi_run(m, 100);
    }
    fprintf(stderr, "abuse: /health under heavy requests: worst %lld ms\n", worst);
    ck_assert_msg(worst < 1000, "/health took %lld ms next to heavy requests", worst);
    ck_assert(http_multi_wait(m, 120000));
    for (size_t i = 0; i < N; i++) {
        long st = http_multi_reply(m, i)->status;
        ck_assert_msg(st == 200 || st == 413 || st == 422, "heavy request %zu: status %ld", i, st);
    }
    http_multi_free(m);
    free(b.p);
    daemon_shutdown(d);
    daemon_stop(d);
}
END_TEST

/* Sends raw bytes as one request on a new connection and returns the reply's status; the
 * body (malloc'ed) in *out. */
static long raw_request(int port, const char *req, size_t len, char **out)
{
    int fd = raw_connect(port);
    ck_assert(raw_send(fd, req, len));
    long st = raw_read_reply(fd, 10000, out);
    raw_close(fd);
    return st;
}

/* The JSON body of a raw reply ("" when none). */
static json_t *raw_body_json(const char *reply)
{
    const char *p = reply ? strstr(reply, "\r\n\r\n") : NULL;
    return p ? json_loads(p + 4, 0, NULL) : NULL;
}

/* Error messages quote the client's bytes: invalid UTF-8 there used to turn a 404 into
 * "500 out of memory" (JSON strings must be UTF-8) in the wrong dialect's shape. */
START_TEST(invalid_utf8_in_paths)
{
    char *yaml = yaml_config(NULL, yaml_model("seqcls", "bert-seqcls", "text-classification", NULL),
                             NULL);
    struct daemon *d = daemon_start(yaml, NULL);
    free(yaml);
    static const struct {
        const char *path;
        long status;
        bool openai;
    } cases[] = {
        {"/models/%ff", 404, false},
        {"/models/\xff\xfe", 404, false},
        {"/v1/\xe2\x82", 404, true},
        {"/nothing/\xc3", 404, false},
    };
    const char *body = "{\"inputs\":\"hello\"}";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char req[512];
        int n = snprintf(req, sizeof req,
                         "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                         cases[i].path, strlen(body), body);
        char *reply = NULL;
        long st = raw_request(d->port, req, (size_t)n, &reply);
        json_t *j = raw_body_json(reply);
        ck_assert_msg(st == cases[i].status, "case %zu: status %ld: %s", i, st, reply);
        ck_assert_msg(j != NULL, "case %zu: not JSON: %s", i, reply);
        if (cases[i].openai)
            ck_assert_msg(json_is_object(json_object_get(j, "error")), "case %zu: %s", i, reply);
        else
            ck_assert_msg(json_is_string(json_object_get(j, "error")) &&
                              json_is_string(json_object_get(j, "error_type")),
                          "case %zu: %s", i, reply);
        json_decref(j);
        free(reply);
    }
    /* a model name long enough to be cut inside a two-byte character */
    struct buf name = {0};
    buf_str(&name, "/models/");
    for (int i = 0; i < 400; i++)
        buf_str(&name, "\xc3\xa9");
    struct http_reply *r = http_request(d->port, "POST", name.p, body, NULL);
    expect_hf_error(r, 404, "a long non-ASCII model name");
    http_reply_free(r);
    free(name.p);
    daemon_shutdown(d);
    daemon_stop(d);
}
END_TEST

/* With keys set, nothing but the probes answers without one: unknown routes and wrong methods
 * are 401 too (they used to be 404/405, so routes could be listed without a key); /info
 * does not show where the model lives on disk. */
START_TEST(key_before_route)
{
    char *yaml = yaml_config("api_keys: [\"k1\"]\n",
                             yaml_model("seqcls", "bert-seqcls", "text-classification", NULL),
                             NULL);
    struct daemon *d = daemon_start(yaml, "k1");
    free(yaml);
    static const struct {
        const char *method, *path;
        long without, with;
    } cases[] = {
        {"GET", "/nothing", 401, 404},
        {"POST", "/v1/nothing", 401, 404},
        {"DELETE", "/models/seqcls", 401, 405},
        {"POST", "/health", 401, 405},
        {"GET", "/health", 200, 200},
        {"GET", "/ready", 200, 200},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char what[120];
        snprintf(what, sizeof what, "%s %s", cases[i].method, cases[i].path);
        struct http_reply *r = http_request(d->port, cases[i].method, cases[i].path, NULL, NULL);
        expect_status(r, cases[i].without, what);
        http_reply_free(r);
        r = http_request(d->port, cases[i].method, cases[i].path, NULL, d->auth);
        expect_status(r, cases[i].with, what);
        http_reply_free(r);
    }
    struct http_reply *r = daemon_get(d, "/info");
    expect_status(r, 200, "GET /info");
    ck_assert_msg(!json_object_get(r->json, "path") && !strstr(r->body, fixture_model("bert-seqcls")),
                  "/info shows the model's path: %s", r->body);
    http_reply_free(r);
    daemon_shutdown(d);
    daemon_stop(d);
}
END_TEST

/* A TCP connection to 127.0.0.1:port from the source address src (-1 when refused). */
static int connect_from(const char *src, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, src, &a.sin_addr);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    a.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One request from src on a new connection; its status (0: no answer). */
static long request_from(const char *src, int port, const char *req)
{
    int fd = connect_from(src, port);
    if (fd < 0)
        return 0;
    long st = 0;
    if (raw_send(fd, req, strlen(req)))
        st = raw_read_reply(fd, 5000, NULL);
    close(fd);
    return st;
}

/* 60 half-sent requests (slowloris) and 60 idle sockets from 127.0.0.1 against a daemon of
 * 64 connections: the per-address limit keeps them from taking every slot, so 127.0.0.2 is
 * served (probe and model) while they hang on; idle sockets are closed after
 * idle_timeout_ms. */
START_TEST(one_address_cannot_hold_every_connection)
{
    char *yaml = yaml_config("max_connections: 64\nmax_connections_per_ip: 16\n"
                             "idle_timeout_ms: 2000\n",
                             yaml_model("seqcls", "bert-seqcls", "text-classification", NULL),
                             NULL);
    struct daemon *d = daemon_start(yaml, NULL);
    free(yaml);
    enum { N = 120 };
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = connect_from("127.0.0.1", d->port);
        if (fds[i] >= 0 && i % 2 == 0) /* a request line and one header, never finished */
            raw_send(fds[i], "POST /models/seqcls HTTP/1.1\r\nHost: x\r\n", 39);
    }
    sleep_ms(200);
    long st = request_from("127.0.0.2", d->port, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_msg(st == 200, "GET /health from 127.0.0.2: %ld", st);
    const char *req = "POST /models/seqcls HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      "Content-Length: 18\r\n\r\n{\"inputs\":\"hello\"}";
    st = request_from("127.0.0.2", d->port, req);
    ck_assert_msg(st == 200, "POST /models/seqcls from 127.0.0.2: %ld", st);
    /* the idle ones are closed by the daemon within its idle timeout */
    sleep_ms(3500);
    int closed = 0;
    for (int i = 1; i < N; i += 2) {
        if (fds[i] < 0)
            continue;
        char c;
        struct timeval tv = {.tv_sec = 2};
        setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        closed += recv(fds[i], &c, 1, 0) <= 0;
    }
    ck_assert_msg(closed > 0, "no idle socket was closed after the idle timeout");
    for (int i = 0; i < N; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    daemon_shutdown(d);
    daemon_stop(d);
}
END_TEST

/* A client that sends its headers one byte at a time never trips an inactivity timeout;
 * read_timeout_ms bounds the whole request read, so its connection is closed. */
START_TEST(slow_headers_are_cut)
{
    char *yaml = yaml_config("read_timeout_ms: 1500\n",
                             yaml_model("seqcls", "bert-seqcls", "text-classification", NULL),
                             NULL);
    struct daemon *d = daemon_start(yaml, NULL);
    free(yaml);
    int fd = raw_connect(d->port);
    const char *head = "POST /models/seqcls HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    ck_assert(raw_send(fd, head, strlen(head)));
    bool closed = false;
    for (int i = 0; i < 30 && !closed; i++) { /* 9 s of one byte every 300 ms */
        sleep_ms(300);
        char c;
        closed = !raw_send(fd, "a", 1) || recv(fd, &c, 1, MSG_DONTWAIT) == 0;
    }
    ck_assert_msg(closed, "a request dribbled for 9 s was not cut at read_timeout_ms 1.5 s");
    raw_close(fd);
    struct http_reply *h = daemon_get(d, "/health");
    expect_status(h, 200, "GET /health after the cut");
    http_reply_free(h);
    daemon_shutdown(d);
    daemon_stop(d);
}
END_TEST

/* libmicrohttpd's limits answer rather than close: 4,000 query arguments (its default 32 KiB
 * connection pool closed the connection without a word at ~500), a 2 MB header (431), a
 * chunk-size line of 100 KB (an answer, never a generic 500). */
START_TEST(protocol_limits_answer)
{
    char *yaml = yaml_config(NULL, yaml_model("seqcls", "bert-seqcls", "text-classification", NULL),
                             NULL);
    struct daemon *d = daemon_start(yaml, NULL);
    free(yaml);
    struct buf q = {0};
    buf_str(&q, "GET /info?");
    for (int i = 0; i < 4000; i++) {
        char a[24];
        int n = snprintf(a, sizeof a, "%sa%d=1", i ? "&" : "", i);
        buf_add(&q, a, (size_t)n);
    }
    buf_str(&q, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    long st = raw_request(d->port, q.p, q.n, NULL);
    ck_assert_msg(st == 200, "4000 query arguments: %ld", st);
    free(q.p);
    struct buf h = {0};
    buf_str(&h, "POST /models/seqcls HTTP/1.1\r\nHost: x\r\nX-Big: ");
    for (int i = 0; i < 2000000; i++)
        buf_str(&h, "a");
    buf_str(&h, "\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
    st = raw_request(d->port, h.p, h.n, NULL);
    ck_assert_msg(st == 431, "a 2 MB header: %ld", st);
    free(h.p);
    struct buf c = {0};
    const char *head = "POST /models/seqcls HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    buf_str(&c, head);
    for (int i = 0; i < 100000; i++)
        buf_str(&c, "0");
    buf_str(&c, "12\r\n{\"inputs\":\"hello\"}\r\n0\r\n\r\n");
    st = raw_request(d->port, c.p, c.n, NULL);
    ck_assert_msg(st >= 200 && st < 500, "a 100 KB chunk-size line: %ld", st);
    free(c.p);
    daemon_shutdown(d);
    daemon_stop(d);
}
END_TEST

Suite *suite_abuse(void)
{
    Suite *s = suite_create("abuse");
    TCase *tc = tcase_create("abuse");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, NULL, serve_teardown);
    tcase_add_test(tc, drain_during_long_batch);
    tcase_add_test(tc, probes_answer_under_heavy_requests);
    tcase_add_test(tc, invalid_utf8_in_paths);
    tcase_add_test(tc, key_before_route);
    tcase_add_test(tc, one_address_cannot_hold_every_connection);
    tcase_add_test(tc, slow_headers_are_cut);
    tcase_add_test(tc, protocol_limits_answer);
    suite_add_tcase(s, tc);
    return s;
}
