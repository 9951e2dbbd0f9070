/* test_serve_tls: HTTPS in the daemon itself (server.tls) and API keys kept out of the config
 * (server.api_keys_file, server.api_keys_env), on the real daemon. A self-signed certificate
 * for 127.0.0.1 is made at test time with the openssl CLI; libcurl trusts exactly that
 * certificate (CURLOPT_CAINFO), so an answer proves the daemon spoke TLS with it. Checked:
 * GET /health, /ready and POST /models/spam over HTTPS (the spam classifier against Hugging
 * Face's own answers for its dev emails), the "listening on https://" line, a client that does
 * not trust the certificate refused, plain HTTP and garbage on the TLS port closed without
 * harm to the daemon, 401/200 by keys from a file and from an environment variable (over
 * HTTPS and over plain HTTP), and clean failures at start: a missing certificate, a key that
 * is not the certificate's, an unset variable, an empty key file. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "integration/serve_expect.h"
#include "integration/serve_support.h"
#include "integration/spam_emails.h"
#include "suites.h"
#include "support/support.h"

/* ---- a certificate made now ---- */

/* DIR/NAME.pem (certificate for 127.0.0.1 and localhost) and DIR/NAME-key.pem, by openssl. */
static void make_cert(const char *dir, const char *name)
{
    char cmd[1600];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-days 2 -subj /CN=inferd-test -addext subjectAltName=IP:127.0.0.1,DNS:localhost "
             "-keyout '%s/%s-key.pem' -out '%s/%s.pem' > '%s/openssl.log' 2>&1",
             dir, name, dir, name, dir);
    int rc = system(cmd);
    char log[400];
    snprintf(log, sizeof log, "%s/openssl.log", dir);
    char *text = read_file(log, NULL);
    ck_assert_msg(rc == 0, "openssl req failed (status %d; is openssl installed?):\n%s", rc,
                  text ? text : "");
    free(text);
}

/* ---- HTTPS with libcurl ---- */

struct sink {
    char *p;
    size_t n;
};

static size_t on_data(char *p, size_t size, size_t n, void *user)
{
    struct sink *s = user;
    char *grown = realloc(s->p, s->n + size * n + 1);
    ck_assert_ptr_nonnull(grown);
    memcpy(grown + s->n, p, size * n);
    s->n += size * n;
    grown[s->n] = '\0';
    s->p = grown;
    return size * n;
}

/* One request to https://127.0.0.1:port with h (an easy handle, so that a caller may keep
 * its connection), trusting only the certificate file ca (NULL: the system's store).
 * headers: "Name: value" lines separated by '\n'. The reply is freed by http_reply_free. */
static struct http_reply *https_on(CURL *h, int port, const char *ca, const char *method,
                                   const char *path, const char *body, const char *headers)
{
    struct http_reply *r = calloc(1, sizeof *r);
    ck_assert_ptr_nonnull(r);
    char url[300];
    snprintf(url, sizeof url, "https://127.0.0.1:%d%s", port, path);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Expect:");
    if (body)
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    for (const char *line = headers; line && *line;) {
        size_t len = strcspn(line, "\n");
        char *one = strndup(line, len);
        hdrs = curl_slist_append(hdrs, one);
        free(one);
        line += len + (line[len] ? 1 : 0);
    }
    struct sink b = {0}, hd = {0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    curl_easy_setopt(h, CURLOPT_CAPATH, ca ? NULL : "/etc/ssl/certs");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &hd);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    else
        snprintf(r->error, sizeof r->error, "%s", curl_easy_strerror(rc));
    curl_slist_free_all(hdrs);
    r->body = b.p ? b.p : strdup("");
    r->body_len = b.n;
    r->headers = hd.p ? hd.p : strdup("");
    r->json = b.n ? json_loadb(b.p, b.n, JSON_DECODE_ANY, NULL) : NULL;
    r->done = r->sent = true;
    return r;
}

/* https_on with a new connection. */
static struct http_reply *https(int port, const char *ca, const char *method, const char *path,
                                const char *body, const char *headers)
{
    CURL *h = curl_easy_init();
    ck_assert_ptr_nonnull(h);
    struct http_reply *r = https_on(h, port, ca, method, path, body, headers);
    curl_easy_cleanup(h);
    return r;
}

/* ---- the daemon over HTTPS (the harness speaks plain HTTP) ---- */

/* DIR/cert.pem of the daemon's temp dir: what clients trust. */
static const char *ca_of(const struct daemon *d)
{
    static char path[400];
    snprintf(path, sizeof path, "%s/cert.pem", d->dir);
    return path;
}

/* Waits for "inferd: listening on https://127.0.0.1:PORT" (a whole line) and sets d->port. */
static void wait_https_listening(struct daemon *d)
{
    static const char key[] = "inferd: listening on https://127.0.0.1:";
    long long end = now_ms() + 30000;
    for (;;) {
        char *log = daemon_log(d);
        char *at = strstr(log, key);
        if (at && strchr(at, '\n'))
            d->port = atoi(at + strlen(key));
        free(log);
        if (d->port > 0)
            return;
        ck_assert_msg(daemon_alive(d), "inferd serve exited before listening; log:\n%s",
                      daemon_log_tail(d));
        ck_assert_msg(now_ms() < end, "no 'listening on https://' line; log:\n%s",
                      daemon_log_tail(d));
        sleep_ms(20);
    }
}

static void wait_https_ready(struct daemon *d)
{
    long long end = now_ms() + 60000;
    for (;;) {
        struct http_reply *r = https(d->port, ca_of(d), "GET", "/ready", NULL, NULL);
        long status = r->status;
        http_reply_free(r);
        if (status == 200)
            return;
        ck_assert_msg(daemon_alive(d), "inferd serve exited before ready; log:\n%s",
                      daemon_log_tail(d));
        ck_assert_msg(now_ms() < end, "GET /ready over HTTPS still %ld; log:\n%s", status,
                      daemon_log_tail(d));
        sleep_ms(20);
    }
}

/* The TLS part of server: (cert.pem and its key in the daemon's directory, relative paths). */
#define TLS_YAML "tls:\n  cert: cert.pem\n  key: cert-key.pem\n"

/* A daemon serving the spam classifier as "spam" over HTTPS; server_extra: more YAML lines at
 * the level of server's keys (may be NULL). */
static struct daemon *start_https(const char *server_extra)
{
    char extra[1000];
    snprintf(extra, sizeof extra, "%s%s", TLS_YAML, server_extra ? server_extra : "");
    char *yaml =
        yaml_config(extra, yaml_model("spam", "spam-bert-tiny", "text-classification", NULL), NULL);
    struct daemon *d = daemon_new(yaml);
    free(yaml);
    make_cert(d->dir, "cert");
    daemon_exec(d, NULL);
    wait_https_listening(d);
    wait_https_ready(d);
    return d;
}

/* ---- tests ---- */

START_TEST(https_serves)
{
    struct daemon *d = start_https(NULL);
    char *log = daemon_log(d);
    char line[120];
    snprintf(line, sizeof line, "inferd: listening on https://127.0.0.1:%d\n", d->port);
    ck_assert_msg(strstr(log, line) != NULL, "no '%s' in the log:\n%s", line, log);
    free(log);

    struct http_reply *r = https(d->port, ca_of(d), "GET", "/health", NULL, NULL);
    expect_status(r, 200, "GET /health over HTTPS");
    ck_assert_str_eq(json_string_value(json_object_get(r->json, "status")), "ok");
    http_reply_free(r);
    r = https(d->port, ca_of(d), "GET", "/ready", NULL, NULL);
    expect_status(r, 200, "GET /ready over HTTPS");
    http_reply_free(r);

    /* HF's answers, each email on a new connection and all on one kept-alive connection */
    struct email *mails;
    size_t n = emails_load(3, 3, &mails);
    ck_assert_uint_eq(n, 6);
    CURL *kept = curl_easy_init();
    for (size_t i = 0; i < n; i++) {
        char what[80];
        snprintf(what, sizeof what, "POST /models/spam over HTTPS, email %zu (%s)", i,
                 mails[i].label);
        r = https(d->port, ca_of(d), "POST", "/models/spam", mails[i].body, NULL);
        expect_email(r, &mails[i], what);
        http_reply_free(r);
        r = https_on(kept, d->port, ca_of(d), "POST", "/models/spam", mails[i].body, NULL);
        expect_email(r, &mails[i], what);
        http_reply_free(r);
    }
    long connects = -1;
    curl_easy_getinfo(kept, CURLINFO_NUM_CONNECTS, &connects);
    ck_assert_int_eq(connects, 0); /* the last request reused the connection */
    curl_easy_cleanup(kept);
    emails_free(mails, n);

    /* A client that trusts only the system's authorities refuses the self-signed server. */
    r = https(d->port, NULL, "GET", "/health", NULL, NULL);
    ck_assert_msg(r->status == 0, "an untrusted certificate was accepted (status %ld)", r->status);
    http_reply_free(r);
    daemon_shutdown(d);
    daemon_stop(d);
}
END_TEST

/* Reads from fd until the peer closes or resets (true), or 10 s pass (false). */
static bool closed_by_peer(int fd)
{
    long long end = now_ms() + 10000;
    char buf[4096];
    while (now_ms() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
    }
    return false;
}

START_TEST(plain_http_refused)
{
    struct daemon *d = start_https(NULL);
    /* curl speaking HTTP to the TLS port: no HTTP answer */
    for (int i = 0; i < 3; i++) {
        struct http_reply *r = http_request(d->port, "GET", "/health", NULL, NULL);
        ck_assert_msg(r->status == 0, "plain HTTP to the TLS port got HTTP %ld: %s", r->status,
                      r->body);
        http_reply_free(r);
    }
    /* a plain request, binary garbage, a torn TLS record, silence: each connection is closed */
#define BYTES(s)                                                                                   \
    {                                                                                              \
        s, sizeof s - 1                                                                            \
    }
    static const struct {
        const char *data;
        size_t len;
    } sends[] = {
        BYTES("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"),
        BYTES("POST /models/spam HTTP/1.1\r\nContent-Length: 13\r\n\r\n{\"inputs\":\"x\"}"),
        BYTES("\x00\xff\x13\x37 garbage\r\n\r\n"),
        BYTES("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), /* a ClientHello cut short */
    };
#undef BYTES
    int fds[4];
    for (size_t i = 0; i < 4; i++) {
        fds[i] = raw_connect(d->port);
        ck_assert(raw_send(fds[i], sends[i].data, sends[i].len));
        if (i < 3) /* the torn ClientHello waits for the rest: it is closed below */
            ck_assert_msg(closed_by_peer(fds[i]), "connection %zu stayed open", i);
    }
    raw_close(fds[3]); /* the client gives up mid-handshake */
    int idle = raw_connect(d->port);
    raw_close(idle); /* connects and says nothing */

    /* the daemon is unharmed: HTTPS still answers, and it drains and exits 0 */
    ck_assert(daemon_alive(d));
    struct http_reply *r = https(d->port, ca_of(d), "GET", "/health", NULL, NULL);
    expect_status(r, 200, "GET /health over HTTPS after the plain requests");
    http_reply_free(r);
    r = https(d->port, ca_of(d), "POST", "/models/spam", "{\"inputs\": \"WIN a FREE iPhone!!!\"}",
              NULL);
    expect_status(r, 200, "POST /models/spam over HTTPS after the plain requests");
    http_reply_free(r);
    daemon_shutdown(d);
    daemon_stop(d);
}
END_TEST

/* A 401 in the HF shape with WWW-Authenticate: Bearer. */
static void expect_401(const struct http_reply *r, const char *what)
{
    expect_hf_error(r, 401, what);
    char v[64];
    ck_assert_msg(http_header(r, "WWW-Authenticate", v, sizeof v) && strcmp(v, "Bearer") == 0,
                  "%s: no WWW-Authenticate: Bearer", what);
}

/* Keys from a file and from the environment: only those (and the config's own) open the
 * model routes; the probes need none. Over HTTPS. */
START_TEST(api_keys_over_https)
{
    /* the key file goes into the daemon's directory before it starts */
    char *yaml =
        yaml_config(TLS_YAML "api_keys: [inline-key]\napi_keys_file: keys.txt\n"
                             "api_keys_env: INFERD_TEST_TLS_KEYS\n",
                    yaml_model("spam", "spam-bert-tiny", "text-classification", NULL), NULL);
    struct daemon *d = daemon_new(yaml);
    free(yaml);
    make_cert(d->dir, "cert");
    char path[400];
    snprintf(path, sizeof path, "%s/keys.txt", d->dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("# inferd API keys, one a line\nfile-key-1\n\n  file-key-2\r\n# revoked: old-key\n", f);
    fclose(f);
    setenv("INFERD_TEST_TLS_KEYS", "env-key-1, env-key-2", 1);
    daemon_exec(d, NULL);
    unsetenv("INFERD_TEST_TLS_KEYS");
    wait_https_listening(d);
    wait_https_ready(d); /* /ready needs no key */

    const char *ca = ca_of(d), *body = "{\"inputs\": \"WIN a FREE iPhone now!!!\"}";
    struct http_reply *r = https(d->port, ca, "GET", "/health", NULL, NULL);
    expect_status(r, 200, "GET /health without a key");
    http_reply_free(r);
    static const char *const wrong[] = {
        NULL,
        "Authorization: Bearer wrong-key",
        "Authorization: Bearer file-key-",            /* a prefix */
        "Authorization: Bearer file-key-12",          /* longer */
        "Authorization: Bearer old-key",              /* commented out in the file */
        "Authorization: Bearer INFERD_TEST_TLS_KEYS", /* the variable's name */
        "Authorization: Bearer env-key-1,",
        "Authorization: file-key-1",
    };
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        char what[160];
        snprintf(what, sizeof what, "POST /models/spam with %s", wrong[i] ? wrong[i] : "no key");
        r = https(d->port, ca, "POST", "/models/spam", body, wrong[i]);
        expect_401(r, what);
        http_reply_free(r);
    }
    r = https(d->port, ca, "GET", "/metrics", NULL, NULL);
    expect_status(r, 401, "GET /metrics without a key");
    http_reply_free(r);
    static const char *const right[] = {
        "file-key-1", "file-key-2", "env-key-1", "env-key-2", "inline-key",
    };
    for (size_t i = 0; i < sizeof right / sizeof right[0]; i++) {
        char auth[100], what[160];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", right[i]);
        snprintf(what, sizeof what, "POST /models/spam with %s", right[i]);
        r = https(d->port, ca, "POST", "/models/spam", body, auth);
        expect_status(r, 200, what);
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(r->json, 0), "label")),
                         "spam");
        http_reply_free(r);
    }
    r = https(d->port, ca, "GET", "/metrics", NULL, "Authorization: Bearer env-key-2");
    expect_status(r, 200, "GET /metrics with a key from the environment");
    http_reply_free(r);
    daemon_shutdown(d);
    daemon_stop(d);
}
END_TEST

/* The same sources without TLS, through the harness (plain HTTP): keys do not need TLS. */
START_TEST(api_keys_plain)
{
    char *yaml =
        yaml_config("api_keys_env: INFERD_TEST_PLAIN_KEYS\n",
                    yaml_model("spam", "spam-bert-tiny", "text-classification", NULL), NULL);
    setenv("INFERD_TEST_PLAIN_KEYS", "\tplain-1 plain-2\n", 1);
    struct daemon *d = daemon_start(yaml, NULL); /* the harness's /ready needs no key */
    unsetenv("INFERD_TEST_PLAIN_KEYS");
    free(yaml);
    const char *body = "{\"inputs\": \"see you at lunch\"}";
    struct http_reply *r = http_request(d->port, "GET", "/health", NULL, NULL);
    expect_status(r, 200, "GET /health without a key");
    http_reply_free(r);
    r = http_request(d->port, "POST", "/models/spam", body, NULL);
    expect_401(r, "POST /models/spam without a key");
    http_reply_free(r);
    r = http_request(d->port, "POST", "/models/spam", body, "Authorization: Bearer plain-3");
    expect_401(r, "POST /models/spam with a wrong key");
    http_reply_free(r);
    r = http_request(d->port, "POST", "/models/spam", body, "Authorization: Bearer plain-2");
    expect_status(r, 200, "POST /models/spam with a key from the environment");
    http_reply_free(r);
    daemon_shutdown(d);
    daemon_stop(d);
}
END_TEST

/* A config the daemon must refuse at start: exit code and the log's message. */
static const struct {
    const char *server, *want;
    int code;
} bad_starts[] = {
    {"tls:\n  cert: cert.pem\n  key: missing-key.pem\n", "/inferd.yaml:6:10: server.tls.key '", 2},
    {"tls:\n  cert: cert.pem\n", "/inferd.yaml:5:5: server.tls: missing required key 'key'", 2},
    /* a key that is not the certificate's: the config is fine, TLS refuses it */
    {"tls:\n  cert: cert.pem\n  key: other-key.pem\n", "inferd serve: cannot start HTTPS on", 1},
    {"tls:\n  cert: cert.pem\n  key: cert.pem\n", "inferd serve: cannot start HTTPS on", 1},
    {"api_keys_env: INFERD_TEST_NEVER_SET\n",
     "/inferd.yaml:4:17: server.api_keys_env: the environment variable INFERD_TEST_NEVER_SET is "
     "not set",
     2},
    {"api_keys_file: empty.txt\n", "/empty.txt' holds no key", 2},
};

START_TEST(bad_start)
{
    char *yaml =
        yaml_config(bad_starts[_i].server,
                    yaml_model("spam", "spam-bert-tiny", "text-classification", NULL), NULL);
    struct daemon *d = daemon_new(yaml);
    free(yaml);
    make_cert(d->dir, "cert");
    make_cert(d->dir, "other");
    char path[400];
    snprintf(path, sizeof path, "%s/empty.txt", d->dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("# no key yet\n", f);
    fclose(f);
    daemon_exec(d, NULL);
    int code = daemon_wait_exit(d, 30000);
    char *log = daemon_log(d);
    ck_assert_msg(code == bad_starts[_i].code && strstr(log, bad_starts[_i].want),
                  "case %d: exit code %d (want %d), log without '%s':\n%s", _i, code,
                  bad_starts[_i].code, bad_starts[_i].want, log);
    ck_assert_msg(!strstr(log, "listening on"), "case %d listened:\n%s", _i, log);
    free(log);
    expect_clean_log(d);
    daemon_stop(d);
}
END_TEST

Suite *suite_serve_tls(void)
{
    Suite *s = suite_create("serve_tls");
    TCase *tc = tcase_create("tls");
    tcase_set_timeout(tc, 180);
    tcase_add_checked_fixture(tc, NULL, serve_teardown);
    tcase_add_test(tc, https_serves);
    tcase_add_test(tc, plain_http_refused);
    tcase_add_test(tc, api_keys_over_https);
    tcase_add_test(tc, api_keys_plain);
    tcase_add_loop_test(tc, bad_start, 0, (int)(sizeof bad_starts / sizeof bad_starts[0]));
    suite_add_tcase(s, tc);
    return s;
}
