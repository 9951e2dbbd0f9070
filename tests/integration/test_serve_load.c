/* test_serve_load: the real daemon under concurrent load, each answer checked against the
 * fixtures' references: 104 requests in flight at once over four routes and three models
 * (some invalid, which must not disturb the others); SIGTERM with 32 requests queued (all
 * answered, /ready 503 and new requests 503 during the drain, the listening socket closed,
 * exit 0); SIGHUP reloads under load (a model added, replaced, removed; a broken config
 * logged and ignored; nothing lost); clients that reset their connection while queued
 * (dropped from the queue, counted by inferd_requests_dropped_total{reason="disconnect"});
 * clients that half-close after their request (answered all the same); a reload naming a
 * model that cannot load (nothing changes) and a burst of SIGHUPs (coalesced). */
#include <jansson.h>
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

/* One request of a workload and what it must get: want NULL means a 422 error. */
struct job {
    const char *path;
    char *body;
    json_t *want;
    json_t *want_alt; /* another acceptable answer (a model replaced meanwhile), or NULL */
};

struct jobs {
    struct job *v;
    size_t n;
};

static void jobs_add(struct jobs *j, const char *path, json_t *body, json_t *want)
{
    struct job *v = realloc(j->v, (j->n + 1) * sizeof *v);
    ck_assert_ptr_nonnull(v);
    j->v = v;
    j->v[j->n++] = (struct job){path, json_dumps(body, JSON_COMPACT), want, NULL};
    json_decref(body);
}

static void jobs_free(struct jobs *j)
{
    for (size_t i = 0; i < j->n; i++) {
        free(j->v[i].body);
        json_decref(j->v[i].want);
        json_decref(j->v[i].want_alt);
    }
    free(j->v);
    *j = (struct jobs){0};
}

/* Entry i (cycling) of bert-seqcls's pipeline refs as a POST /models/NAME job. */
static void job_seqcls(struct jobs *j, const json_t *refs, size_t i, const char *path)
{
    const json_t *entries = json_object_get(refs, "pipeline");
    const json_t *x = json_array_get(entries, i % json_array_size(entries));
    json_t *body = json_pack("{s:O}", "inputs", json_object_get(x, "input"));
    const json_t *params = json_object_get(x, "parameters");
    if (json_object_size(params) > 0)
        json_object_set(body, "parameters", (json_t *)params);
    jobs_add(j, path, body, json_incref(json_object_get(x, "output")));
}

static struct http_multi *jobs_start(const struct daemon *d, const struct jobs *j)
{
    struct http_spec *specs = calloc(j->n, sizeof *specs);
    for (size_t i = 0; i < j->n; i++)
        specs[i] = (struct http_spec){"POST", j->v[i].path, j->v[i].body, NULL};
    struct http_multi *m = http_multi_start(d->port, specs, j->n);
    free(specs);
    return m;
}

/* Every job answered as it must be; returns the largest x-batch-size seen on path. */
static long jobs_check(const struct http_multi *m, const struct jobs *j, const char *what,
                       const char *batch_path)
{
    long largest = 0;
    for (size_t i = 0; i < j->n; i++) {
        const struct http_reply *r = http_multi_reply(m, i);
        const struct job *b = &j->v[i];
        char w[300];
        snprintf(w, sizeof w, "%s: request %zu (POST %s %.80s)", what, i, b->path, b->body);
        if (!b->want) {
            expect_hf_error(r, 422, w);
            continue;
        }
        expect_status(r, 200, w);
        char why[700] = "";
        bool ok = close_json(r->json, b->want, REF_TOL, why, sizeof why);
        if (!ok && b->want_alt)
            ok = close_json(r->json, b->want_alt, REF_TOL, why, sizeof why);
        ck_assert_msg(ok, "%s: %s", w, why);
        long n = expect_timing_headers(r, w);
        if (batch_path && strcmp(b->path, batch_path) == 0 && n > largest)
            largest = n;
    }
    return largest;
}

/* Polls /metrics until inferd_queue_depth{model=NAME} plus the requests of m already
 * answered (m may be NULL) is n: every request parsed and queued, not just sent. */
static void wait_queued(const struct daemon *d, const char *model, struct http_multi *m,
                        size_t n_multi, double n, int timeout_ms)
{
    char label[96];
    snprintf(label, sizeof label, "model=\"%s\"", model);
    const char *const labels[] = {label, NULL};
    long long end = now_ms() + timeout_ms;
    double depth = -1;
    size_t done = 0;
    while (now_ms() < end) {
        struct http_reply *r = daemon_get(d, "/metrics");
        expect_status(r, 200, "GET /metrics");
        depth = metric_sum(r->body, "inferd_queue_depth", labels, NULL);
        http_reply_free(r);
        done = 0;
        if (m) {
            http_multi_run(m, 0);
            for (size_t i = 0; i < n_multi; i++)
                done += http_multi_reply(m, i)->done;
        }
        if (depth + (double)done == n)
            return;
        sleep_ms(5);
    }
    ck_abort_msg("inferd_queue_depth{%s} is %g (and %zu answered) after %d ms, want %g in all",
                 label, depth, done, timeout_ms, n);
}

/* ---- many in flight ---- */

START_TEST(concurrent_clients)
{
    const char *batching = "batching:\n  max_batch_size: 32\n  max_queue_delay_us: 20000\n";
    char *yaml =
        yaml_config(NULL, yaml_model("seqcls", "bert-seqcls", "text-classification", batching),
                    yaml_model("tokcls", "bert-tokcls", "token-classification", batching),
                    yaml_model("embed", "bert-embed", "sentence-embeddings", batching), NULL);
    struct daemon *d = daemon_start(yaml, NULL);
    free(yaml);
    json_t *seq = model_refs("bert-seqcls"), *tok = model_refs("bert-tokcls");
    json_t *emb = model_refs("bert-embed");
    const char *const labels[] = {"NEGATIVE", "POSITIVE"};
    const json_t *tok_entries = json_object_get(tok, "pipeline");
    const json_t *embs = json_object_get(emb, "sentence_embeddings");
    json_t *logits = seqcls_logits(seq);
    struct jobs j = {0};
    for (size_t i = 0; i < 104; i++) {
        size_t k = i / 4;
        if (i % 13 == 12) { /* a bad request among the good ones */
            jobs_add(&j, "/models/seqcls", json_pack("{s:i}", "inputs", (int)i), NULL);
            continue;
        }
        switch (i % 4) {
        case 0: job_seqcls(&j, seq, k, "/models/seqcls"); break;
        case 1: {
            const json_t *x = json_array_get(tok_entries, k % json_array_size(tok_entries));
            jobs_add(&j, "/models/tokcls",
                     json_pack("{s:O, s:O}", "inputs", json_object_get(x, "input"), "parameters",
                               json_object_get(x, "parameters")),
                     json_incref(json_object_get(x, "output")));
            break;
        }
        case 2: {
            const json_t *x = json_array_get(embs, k % json_array_size(embs));
            jobs_add(&j, "/embed", json_pack("{s:O}", "inputs", json_object_get(x, "text")),
                     json_pack("[O]", json_object_get(x, "embedding")));
            break;
        }
        default: {
            const json_t *x = json_array_get(logits, k % json_array_size(logits));
            jobs_add(&j, "/predict", json_pack("{s:O}", "inputs", json_object_get(x, "text")),
                     predict_expected(json_object_get(x, "logits"), labels, false));
        }
        }
    }
    struct http_multi *m = jobs_start(d, &j);
    ck_assert_msg(http_multi_wait(m, 60000), "104 concurrent requests not all answered in 60 s");
    long largest = jobs_check(m, &j, "104 requests at once", "/models/seqcls");
    /* 26 requests for seqcls within 20 ms windows: some ran together */
    ck_assert_msg(largest > 1, "no batch of seqcls requests held more than one row");
    http_multi_free(m);
    jobs_free(&j);
    json_decref(logits);
    json_decref(seq);
    json_decref(tok);
    json_decref(emb);
    daemon_shutdown(d);
    daemon_stop(d);
}
END_TEST

/* ---- SIGTERM drain ---- */

START_TEST(sigterm_drain)
{
    char *yaml =
        yaml_config(NULL,
                    yaml_model("seqcls", "bert-seqcls", "text-classification",
                               "batching:\n  max_batch_size: 64\n  max_queue_delay_us: 2000000\n"),
                    NULL);
    struct daemon *d = daemon_start(yaml, NULL);
    free(yaml);
    /* two connections kept alive across the signal, to ask during the drain (the daemon may
     * close a connection after one answer while draining) */
    struct http_conn *conn = http_conn_new(d->port), *conn2 = http_conn_new(d->port);
    struct http_reply *r = http_conn_request(conn, "GET", "/health", NULL, NULL);
    expect_status(r, 200, "GET /health before SIGTERM");
    http_reply_free(r);
    r = http_conn_request(conn2, "GET", "/health", NULL, NULL);
    expect_status(r, 200, "GET /health before SIGTERM");
    http_reply_free(r);

    json_t *refs = model_refs("bert-seqcls");
    struct jobs j = {0};
    for (size_t i = 0; i < 32; i++)
        job_seqcls(&j, refs, i, "/models/seqcls");
    struct http_multi *m = jobs_start(d, &j);
    ck_assert_uint_eq(http_multi_run_until_sent(m, 10000), 32);
    wait_queued(d, "seqcls", m, 32, 32, 5000); /* all queued (or answered): batches wait 2 s */
    daemon_signal(d, SIGTERM);

    /* what the drain must look like; checked after the requests, so that a failure here
     * does not hide a lost request */
    char problems[1500] = "";
    size_t plen = 0;
    long long t0 = now_ms();
    bool closed = false;
    while (!closed && now_ms() - t0 < 3000 && daemon_alive(d)) {
        int fd = raw_try_connect(d->port);
        if (fd < 0)
            closed = true;
        else
            raw_close(fd);
        http_multi_run(m, 2);
    }
    if (!closed && daemon_alive(d))
        plen += (size_t)snprintf(problems + plen, sizeof problems - plen,
                                 "the listening socket still accepts connections 3 s after "
                                 "SIGTERM; ");
    if (closed) {
        size_t pending = http_multi_run(m, 0);
        r = http_conn_request(conn, "POST", "/models/seqcls", "{\"inputs\": \"Hello world!\"}",
                              NULL);
        struct http_reply *ready = http_conn_request(conn2, "GET", "/ready", NULL, NULL);
        if (r->status == 0 && pending > 0)
            plen += (size_t)snprintf(problems + plen, sizeof problems - plen,
                                     "an idle keep-alive connection was closed while %zu requests "
                                     "were still draining: a new request's 503 cannot be seen; ",
                                     pending);
        else if (r->status != 0 && r->status != 503)
            plen += (size_t)snprintf(problems + plen, sizeof problems - plen,
                                     "a new POST during the drain: %ld (%.100s), want 503; ",
                                     r->status, r->body);
        if (r->status == 503)
            expect_hf_error(r, 503, "POST /models/seqcls during the drain");
        if (ready->status != 0 && ready->status != 503)
            plen += (size_t)snprintf(problems + plen, sizeof problems - plen,
                                     "GET /ready during the drain: %ld, want 503; ", ready->status);
        if (r->status == 0 || ready->status == 0)
            fprintf(stderr, "sigterm_drain: the drain ended before it could be observed\n");
        http_reply_free(ready);
        http_reply_free(r);
    }
    ck_assert_msg(http_multi_wait(m, 30000), "requests in flight at SIGTERM not all answered");
    jobs_check(m, &j, "32 requests in flight at SIGTERM", NULL);
    int code = daemon_wait_exit(d, 30000);
    ck_assert_msg(code == 0, "exit code after SIGTERM: %d (-1: still running); log:\n%s", code,
                  daemon_log_tail(d));
    expect_clean_log(d);
    ck_assert_msg(plen == 0, "during the drain: %s", problems);
    http_conn_free(conn);
    http_conn_free(conn2);
    http_multi_free(m);
    jobs_free(&j);
    json_decref(refs);
    daemon_stop(d);
}
END_TEST

/* ---- SIGHUP reload ---- */

static const char *const batching_reload =
    "batching:\n  max_batch_size: 16\n  max_queue_delay_us: 50000\n";

/* seqcls; swap (bert-seqcls, or the one-label model when swapped); tokcls when with_tokcls. */
static char *reload_config(bool swapped, bool with_tokcls)
{
    return yaml_config(
        NULL, yaml_model("seqcls", "bert-seqcls", "text-classification", batching_reload),
        yaml_model("swap", swapped ? reranker_model(0) : "bert-seqcls", "text-classification",
                   batching_reload),
        with_tokcls ? yaml_model("tokcls", "bert-tokcls", "token-classification", NULL) : NULL,
        NULL);
}

/* n jobs alternating seqcls and swap; swap's answer is bert-seqcls's or, once replaced, the
 * one-label model's sigmoid of logit 0 (either is accepted while the reload runs). */
static void reload_jobs(struct jobs *j, const json_t *refs, size_t n, int swap_state)
{
    json_t *logits = seqcls_logits(refs);
    const char *const one[] = {"LABEL_0"};
    const char *const two[] = {"NEGATIVE", "POSITIVE"};
    for (size_t i = 0; i < n; i++) {
        const json_t *x = json_array_get(logits, i % json_array_size(logits));
        const json_t *l = json_object_get(x, "logits");
        bool to_swap = i % 2 == 1;
        json_t *body = json_pack("{s:O, s:{s:n}}", "inputs", json_object_get(x, "text"),
                                 "parameters", "top_k");
        json_t *l0 = json_pack("[O]", json_array_get(l, 0));
        json_t *old = predict_expected(l, two, false), *new = predict_expected(l0, one, false);
        json_decref(l0);
        jobs_add(j, to_swap ? "/models/swap" : "/models/seqcls", body,
                 to_swap && swap_state == 2 ? new : old);
        if (to_swap && swap_state == 1)
            j->v[j->n - 1].want_alt = new;
        else if (to_swap && swap_state == 2)
            json_decref(old);
        else
            json_decref(new);
    }
    json_decref(logits);
}

/* Polls POST /models/NAME until it answers want_status (other statuses allowed meanwhile:
 * allowed, a NUL-terminated list); returns the reply. */
static struct http_reply *poll_status(const struct daemon *d, const char *name, long want_status,
                                      const long *allowed, const char *what)
{
    char path[64];
    snprintf(path, sizeof path, "/models/%s", name);
    long long end = now_ms() + 30000;
    for (;;) {
        struct http_reply *r =
            http_request(d->port, "POST", path, "{\"inputs\": \"Hello world!\"}", NULL);
        if (r->status == want_status)
            return r;
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            ok = ok || r->status == allowed[i];
        ck_assert_msg(ok, "%s: POST %s answered %ld (%.200s)", what, path, r->status, r->body);
        http_reply_free(r);
        ck_assert_msg(now_ms() < end, "%s: POST %s never answered %ld in 30 s; log:\n%s", what,
                      path, want_status, daemon_log_tail(d));
        sleep_ms(50);
    }
}

/* Sends n jobs, SIGHUPs with cfg while they are in flight, sends n more right after; every
 * one must be answered as its job says. */
static void reload_under_load(struct daemon *d, const json_t *refs, const char *cfg, size_t n,
                              int swap_before, int swap_during, const char *what)
{
    struct jobs j1 = {0}, j2 = {0};
    reload_jobs(&j1, refs, n, swap_before);
    reload_jobs(&j2, refs, n, swap_during);
    struct http_multi *m1 = jobs_start(d, &j1);
    ck_assert_uint_eq(http_multi_run_until_sent(m1, 10000), n);
    http_multi_run(m1, 10);
    daemon_write_config(d, cfg);
    daemon_signal(d, SIGHUP);
    struct http_multi *m2 = jobs_start(d, &j2);
    http_multi_run_until_sent(m2, 10000);
    ck_assert_msg(http_multi_wait(m1, 30000) && http_multi_wait(m2, 30000),
                  "%s: requests not all answered", what);
    char w[200];
    snprintf(w, sizeof w, "%s, in flight at SIGHUP", what);
    jobs_check(m1, &j1, w, NULL);
    snprintf(w, sizeof w, "%s, sent right after SIGHUP", what);
    jobs_check(m2, &j2, w, NULL);
    http_multi_free(m1);
    http_multi_free(m2);
    jobs_free(&j1);
    jobs_free(&j2);
}

START_TEST(sighup_reload)
{
    json_t *refs = model_refs("bert-seqcls");
    json_t *tok = model_refs("bert-tokcls");
    char *cfg = reload_config(false, false);
    struct daemon *d = daemon_start(cfg, NULL);
    free(cfg);
    static const long not_yet[] = {404, 503, 0};
    static const long still[] = {200, 0};

    /* 1. add tokcls and replace swap, under load */
    cfg = reload_config(true, true);
    reload_under_load(d, refs, cfg, 40, 1, 1, "reload adding tokcls and replacing swap");
    free(cfg);
    struct http_reply *r = poll_status(d, "tokcls", 200, not_yet, "the added model");
    http_reply_free(r);
    const json_t *t0 = json_array_get(json_object_get(tok, "pipeline"), 0);
    r = daemon_post(d, "/models/tokcls",
                    json_pack("{s:O, s:O}", "inputs", json_object_get(t0, "input"), "parameters",
                              json_object_get(t0, "parameters")));
    expect_status(r, 200, "the added model");
    expect_json(r->json, json_object_get(t0, "output"), REF_TOL, "the added model");
    http_reply_free(r);
    /* swap answers as the one-label model once the new one is in */
    const json_t *x0 = json_array_get(json_object_get(refs, "logits"), 0);
    json_t *l0 = json_pack("[O]", json_array_get(json_object_get(x0, "logits"), 0));
    const char *const one[] = {"LABEL_0"};
    json_t *want_new = predict_expected(l0, one, false);
    long long end = now_ms() + 30000;
    for (;;) {
        r = daemon_post(d, "/models/swap",
                        json_pack("{s:O, s:{s:n}}", "inputs", json_object_get(x0, "text"),
                                  "parameters", "top_k"));
        expect_status(r, 200, "the replaced model during its reload");
        char why[300];
        bool done = close_json(r->json, want_new, REF_TOL, why, sizeof why);
        http_reply_free(r);
        if (done)
            break;
        ck_assert_msg(now_ms() < end, "swap never answered as its new model: %s", why);
        sleep_ms(50);
    }
    r = daemon_get(d, "/v1/models");
    const json_t *data = json_object_get(r->json, "data");
    ck_assert_msg(json_array_size(data) == 3 &&
                      strcmp(json_string_value(json_object_get(json_array_get(data, 2), "id")),
                             "tokcls") == 0,
                  "GET /v1/models after the reload: %s", r->body);
    http_reply_free(r);

    /* 2. remove tokcls, under load: its requests get 404 afterwards */
    cfg = reload_config(true, false);
    reload_under_load(d, refs, cfg, 20, 2, 2, "reload removing tokcls");
    free(cfg);
    r = poll_status(d, "tokcls", 404, still, "the removed model");
    expect_hf_error(r, 404, "the removed model");
    http_reply_free(r);

    /* 3. a broken config: logged, ignored, the models keep serving */
    size_t log_before = daemon_log_size(d);
    daemon_write_config(d, "server:\n  host: 127.0.0.1\nmodels:\n  - name: [unterminated\n");
    daemon_signal(d, SIGHUP);
    end = now_ms() + 10000;
    while (daemon_log_size(d) == log_before && now_ms() < end)
        sleep_ms(20);
    sleep_ms(100);
    char *log = daemon_log(d);
    ck_assert_msg(strlen(log) > log_before && strstr(log + log_before, "inferd.yaml") != NULL,
                  "a broken config on SIGHUP is not logged with its file name; log:\n%s",
                  daemon_log_tail(d));
    free(log);
    ck_assert_msg(daemon_alive(d), "the daemon died on a broken config; log:\n%s",
                  daemon_log_tail(d));
    r = daemon_get(d, "/ready");
    expect_status(r, 200, "GET /ready after a broken config");
    http_reply_free(r);
    struct jobs j = {0};
    reload_jobs(&j, refs, 8, 2);
    struct http_multi *m = jobs_start(d, &j);
    ck_assert(http_multi_wait(m, 30000));
    jobs_check(m, &j, "after a broken config", NULL);
    http_multi_free(m);
    jobs_free(&j);

    daemon_shutdown(d);
    json_decref(want_new);
    json_decref(l0);
    json_decref(tok);
    json_decref(refs);
    daemon_stop(d);
}
END_TEST

/* ---- clients that go away ---- */

START_TEST(client_disconnect)
{
    char *yaml =
        yaml_config(NULL,
                    yaml_model("seqcls", "bert-seqcls", "text-classification",
                               "batching:\n  max_batch_size: 64\n  max_queue_delay_us: 2000000\n"),
                    NULL);
    struct daemon *d = daemon_start(yaml, NULL);
    free(yaml);
    static const char *const disconnect[] = {"reason=\"disconnect\"", NULL};
    struct http_reply *r = daemon_get(d, "/metrics");
    expect_status(r, 200, "GET /metrics");
    double dropped0 = metric_sum(r->body, "inferd_requests_dropped_total", disconnect, NULL);
    http_reply_free(r);

    /* six clients send a request and reset the connection while it waits in the queue:
     * behind a heavy request, then for the 2 s batching delay */
    enum { N = 6 };
    int fds[N];
    struct http_multi *heavy = occupy_worker(d, "seqcls", "/models/seqcls");
    char *req = raw_post_text("/models/seqcls", "{\"inputs\": \"I will not wait for this.\"}");
    for (int i = 0; i < N; i++) {
        fds[i] = raw_connect(d->port);
        ck_assert(raw_send(fds[i], req, strlen(req)));
    }
    free(req);
    wait_queued(d, "seqcls", NULL, 0, N, 5000);
    for (int i = 0; i < N; i++)
        raw_reset(fds[i]);
    ck_assert(http_multi_wait(heavy, 30000));
    expect_status(http_multi_reply(heavy, 0), 200, "the heavy request");
    http_multi_free(heavy);
    sleep_ms(300);

    /* a client that stays: answered, alone in its batch */
    json_t *refs = model_refs("bert-seqcls");
    const json_t *e0 = json_array_get(json_object_get(refs, "pipeline"), 0);
    r = daemon_post(d, "/models/seqcls",
                    json_pack("{s:O}", "inputs", json_object_get(e0, "input")));
    expect_status(r, 200, "a request after six clients hung up");
    expect_json(r->json, json_object_get(e0, "output"), REF_TOL, "a request after the hang-ups");
    long rows = expect_timing_headers(r, "a request after the hang-ups");
    http_reply_free(r);

    r = daemon_get(d, "/metrics");
    expect_status(r, 200, "GET /metrics");
    int n = 0;
    double dropped1 = metric_sum(r->body, "inferd_requests_dropped_total", disconnect, &n);
    ck_assert_msg(n > 0 && dropped1 - dropped0 == N,
                  "inferd_requests_dropped_total{reason=\"disconnect\"} went from %g to %g "
                  "(%d samples) after %d clients hung up while queued",
                  dropped0, dropped1, n, N);
    http_reply_free(r);
    ck_assert_msg(rows == 1,
                  "the request queued after %d clients hung up ran in a batch of %ld rows: their "
                  "work was not dropped from the queue",
                  N, rows);
    json_decref(refs);
    daemon_shutdown(d);
    daemon_stop(d);
}
END_TEST

/* The JSON body of a raw HTTP response (after the blank line), or NULL. */
static json_t *raw_body_json(const char *reply)
{
    const char *body = reply ? strstr(reply, "\r\n\r\n") : NULL;
    return body ? json_loads(body + 4, 0, NULL) : NULL;
}

/* A client that half-closes (shutdown SHUT_WR) after a complete request is still there: it
 * waits for its answer. Two such requests wait in the queue (behind a heavy request, then the
 * batching delay) while the queue is checked for clients gone every 50 ms; both are answered
 * with the references' output and none is counted as a disconnect. */
START_TEST(client_half_close)
{
    char *yaml =
        yaml_config(NULL,
                    yaml_model("seqcls", "bert-seqcls", "text-classification",
                               "batching:\n  max_batch_size: 64\n  max_queue_delay_us: 500000\n"),
                    NULL);
    struct daemon *d = daemon_start(yaml, NULL);
    free(yaml);
    json_t *refs = model_refs("bert-seqcls");
    enum { N = 2 };
    int fds[N];
    const json_t *e[N];
    struct http_multi *heavy = occupy_worker(d, "seqcls", "/models/seqcls");
    for (int i = 0; i < N; i++) {
        e[i] = json_array_get(json_object_get(refs, "pipeline"), (size_t)i);
        json_t *o = json_pack("{s:O}", "inputs", json_object_get(e[i], "input"));
        char *body = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        char *req = raw_post_text("/models/seqcls", body);
        fds[i] = raw_connect(d->port);
        ck_assert(raw_send(fds[i], req, strlen(req)));
        ck_assert_int_eq(shutdown(fds[i], SHUT_WR), 0);
        free(req);
        free(body);
    }
    wait_queued(d, "seqcls", NULL, 0, N, 5000);
    ck_assert(http_multi_wait(heavy, 30000));
    expect_status(http_multi_reply(heavy, 0), 200, "the heavy request");
    http_multi_free(heavy);
    for (int i = 0; i < N; i++) {
        char *reply = NULL;
        long status = raw_read_reply(fds[i], 30000, &reply);
        ck_assert_msg(status == 200, "a half-closed client got status %ld, not 200:\n%s", status,
                      reply ? reply : "(nothing)");
        json_t *got = raw_body_json(reply);
        expect_json(got, json_object_get(e[i], "output"), REF_TOL, "a half-closed client");
        json_decref(got);
        free(reply);
        raw_close(fds[i]);
    }
    static const char *const disconnect[] = {"reason=\"disconnect\"", NULL};
    struct http_reply *r = daemon_get(d, "/metrics");
    double dropped = metric_sum(r->body, "inferd_requests_dropped_total", disconnect, NULL);
    ck_assert_msg(dropped == 0, "%g half-closed clients counted as disconnected", dropped);
    http_reply_free(r);
    json_decref(refs);
    daemon_shutdown(d);
    daemon_stop(d);
}
END_TEST

/* ---- reloads: all or nothing, coalesced ---- */

/* The ids of GET /v1/models, comma-joined, into buf. */
static const char *model_ids(const struct daemon *d, char *buf, size_t size)
{
    struct http_reply *r = daemon_get(d, "/v1/models");
    expect_status(r, 200, "GET /v1/models");
    buf[0] = '\0';
    const json_t *data = json_object_get(r->json, "data");
    for (size_t i = 0; i < json_array_size(data); i++)
        snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", i ? "," : "",
                 json_string_value(json_object_get(json_array_get(data, i), "id")));
    http_reply_free(r);
    return buf;
}

/* How many times needle occurs in the daemon's log from byte `from` on. */
static int log_count(const struct daemon *d, size_t from, const char *needle)
{
    char *log = daemon_log(d);
    int n = 0;
    for (const char *p = strlen(log) > from ? log + from : ""; (p = strstr(p, needle)); p++)
        n++;
    free(log);
    return n;
}

/* Waits until the log from byte `from` on holds a reload's outcome line. */
static void wait_reload_outcome(const struct daemon *d, size_t from)
{
    long long end = now_ms() + 30000;
    while (log_count(d, from, "inferd: reload") == 0) {
        ck_assert_msg(now_ms() < end, "no reload outcome logged in 30 s; log:\n%s",
                      daemon_log_tail(d));
        sleep_ms(20);
    }
}

static void expect_post_status(const struct daemon *d, const char *name, long status,
                               const char *what)
{
    char path[64];
    snprintf(path, sizeof path, "/models/%s", name);
    struct http_reply *r =
        http_request(d->port, "POST", path, "{\"inputs\": \"Hello world!\"}", NULL);
    expect_status(r, status, what);
    http_reply_free(r);
}

/* A reload whose file adds a good model, drops one and names one that cannot load changes
 * nothing: the old set keeps serving, /ready stays 200, the error is logged. A good reload
 * afterwards applies. */
START_TEST(sighup_reload_atomic)
{
    char *cfg = yaml_config(NULL, yaml_model("seqcls", "bert-seqcls", "text-classification", NULL),
                            yaml_model("swap", "bert-seqcls", "text-classification", NULL), NULL);
    struct daemon *d = daemon_start(cfg, NULL);
    free(cfg);
    char ids[256];

    size_t log_before = daemon_log_size(d);
    cfg = yaml_config(NULL, yaml_model("seqcls", "bert-seqcls", "text-classification", NULL),
                      yaml_model("tokcls", "bert-tokcls", "token-classification", NULL),
                      yaml_model("bad", "/nonexistent/inferd-model", "text-classification", NULL),
                      NULL);
    daemon_write_config(d, cfg);
    free(cfg);
    daemon_signal(d, SIGHUP);
    wait_reload_outcome(d, log_before);
    sleep_ms(100);
    ck_assert_msg(log_count(d, log_before, "nonexistent/inferd-model") > 0,
                  "the model that cannot load is not logged; log:\n%s", daemon_log_tail(d));
    ck_assert_msg(log_count(d, log_before, "inferd: reloaded") == 0,
                  "a reload with a model that cannot load was applied; log:\n%s",
                  daemon_log_tail(d));
    struct http_reply *r = daemon_get(d, "/ready");
    expect_status(r, 200, "GET /ready after a reload naming a model that cannot load");
    http_reply_free(r);
    ck_assert_str_eq(model_ids(d, ids, sizeof ids), "seqcls,swap");
    expect_post_status(d, "swap", 200, "the model the failed reload would have dropped");
    expect_post_status(d, "seqcls", 200, "a kept model after the failed reload");
    expect_post_status(d, "tokcls", 404, "the model the failed reload would have added");

    log_before = daemon_log_size(d);
    cfg = yaml_config(NULL, yaml_model("seqcls", "bert-seqcls", "text-classification", NULL),
                      yaml_model("tokcls", "bert-tokcls", "token-classification", NULL), NULL);
    daemon_write_config(d, cfg);
    free(cfg);
    daemon_signal(d, SIGHUP);
    wait_reload_outcome(d, log_before);
    ck_assert_msg(log_count(d, log_before, "inferd: reloaded") == 1, "the good reload: log:\n%s",
                  daemon_log_tail(d));
    ck_assert_str_eq(model_ids(d, ids, sizeof ids), "seqcls,tokcls");
    r = daemon_get(d, "/ready");
    expect_status(r, 200, "GET /ready after the good reload");
    http_reply_free(r);
    expect_post_status(d, "swap", 404, "the model the good reload dropped");
    daemon_shutdown(d);
    daemon_stop(d);
}
END_TEST

/* 20 SIGHUPs 2 ms apart (the file changed after the tenth), while the first reload loads a
 * generation model (~100 ms): the reloads asked for meanwhile coalesce into one more, which
 * reads the last file. */
START_TEST(sighup_burst)
{
    char *cfg =
        yaml_config(NULL, yaml_model("seqcls", "bert-seqcls", "text-classification", NULL), NULL);
    struct daemon *d = daemon_start(cfg, NULL);
    free(cfg);
    size_t log_before = daemon_log_size(d);
    char *files[2] = {
        yaml_config(NULL, yaml_model("seqcls", "bert-seqcls", "text-classification", NULL),
                    yaml_model("x", "llama-lm", "text-generation", NULL), NULL),
        yaml_config(NULL, yaml_model("seqcls", "bert-seqcls", "text-classification", NULL),
                    yaml_model("y", "gpt2-lm", "text-generation", NULL), NULL)};
    for (int i = 0; i < 20; i++) {
        if (i % 10 == 0)
            daemon_write_config(d, files[i / 10]);
        daemon_signal(d, SIGHUP);
        sleep_ms(2);
    }
    free(files[0]);
    free(files[1]);
    char ids[256];
    long long end = now_ms() + 30000;
    while (strcmp(model_ids(d, ids, sizeof ids), "seqcls,y") != 0) {
        ck_assert_msg(now_ms() < end, "the models after the burst are %s, not seqcls,y; log:\n%s",
                      ids, daemon_log_tail(d));
        sleep_ms(20);
    }
    sleep_ms(1000); /* any reload still to come */
    ck_assert_str_eq(model_ids(d, ids, sizeof ids), "seqcls,y");
    int reloads = log_count(d, log_before, "inferd: reloaded");
    ck_assert_msg(reloads >= 1 && reloads <= 3, "%d reloads for a burst of 20 SIGHUPs; log:\n%s",
                  reloads, daemon_log_tail(d));
    struct http_reply *r = daemon_get(d, "/ready");
    expect_status(r, 200, "GET /ready after the burst");
    http_reply_free(r);
    daemon_shutdown(d);
    daemon_stop(d);
}
END_TEST

Suite *suite_serve_load(void)
{
    Suite *s = suite_create("serve_load");
    TCase *tc = tcase_create("load");
    tcase_set_timeout(tc, 180);
    tcase_add_checked_fixture(tc, NULL, serve_teardown);
    tcase_add_test(tc, concurrent_clients);
    tcase_add_test(tc, sigterm_drain);
    tcase_add_test(tc, sighup_reload);
    tcase_add_test(tc, client_disconnect);
    tcase_add_test(tc, client_half_close);
    tcase_add_test(tc, sighup_reload_atomic);
    tcase_add_test(tc, sighup_burst);
    suite_add_tcase(s, tc);
    return s;
}
