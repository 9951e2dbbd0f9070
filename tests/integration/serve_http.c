/* serve_http: see serve_http.h. Three parts: curl easy (one transfer, the reply collected by
 * callbacks), curl multi (many transfers driven together) and raw sockets. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "serve_http.h"

#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A growing NUL-terminated byte buffer. */
struct buf {
    char *p;
    size_t n, cap;
};

static void buf_add(struct buf *b, const void *data, size_t len)
{
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + len + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        ck_assert_ptr_nonnull(p);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, len);
    b->n += len;
    b->p[b->n] = '\0';
}

/* ---- HTTP over libcurl ---- */

static void curl_once(void)
{
    static bool done;
    if (!done) {
        ck_assert_int_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
        done = true;
    }
}

struct transfer {
    struct http_reply *r;
    struct buf body, head;
    struct curl_slist *hdrs;
    char *req_body; /* owned copy (multi) */
    bool has_body;
};

static size_t on_body(char *p, size_t size, size_t n, void *user)
{
    buf_add(&((struct transfer *)user)->body, p, size * n);
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *user)
{
    buf_add(&((struct transfer *)user)->head, p, size * n);
    return size * n;
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    struct transfer *t = user;
    if (ultotal > 0 && ulnow >= ultotal)
        t->r->sent = true;
    return 0;
}

/* Sets h up for one request; t receives the answer. */
static void transfer_setup(CURL *h, struct transfer *t, int port, const char *method,
                           const char *path, const char *body, const char *headers)
{
    char url[600];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    t->r = calloc(1, sizeof *t->r);
    ck_assert_ptr_nonnull(t->r);
    t->has_body = body != NULL;
    bool content_type = false;
    for (const char *line = headers; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char *one = strndup(line, len);
        content_type = content_type || strncasecmp(one, "content-type:", 13) == 0;
        if (len > 0)
            t->hdrs = curl_slist_append(t->hdrs, one);
        free(one);
        line += len + (nl ? 1 : 0);
    }
    if (body && !content_type)
        t->hdrs = curl_slist_append(t->hdrs, "Content-Type: application/json");
    t->hdrs = curl_slist_append(t->hdrs, "Expect:"); /* no 100-continue round trip */
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, t->hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, t);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_PRIVATE, t);
    if (strcmp(method, "GET") == 0 && !body) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        if (body || strcmp(method, "POST") == 0) {
            const char *b = body ? body : "";
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, b);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(b));
        }
    }
}

/* Moves the answer out of t into t->r and returns it. */
static struct http_reply *transfer_finish(CURL *h, struct transfer *t, CURLcode rc)
{
    struct http_reply *r = t->r;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    } else {
        snprintf(r->error, sizeof r->error, "%s", curl_easy_strerror(rc));
        r->status = 0;
    }
    if (!t->body.p)
        buf_add(&t->body, "", 0);
    if (!t->head.p)
        buf_add(&t->head, "", 0);
    r->body = t->body.p;
    r->body_len = t->body.n;
    r->headers = t->head.p;
    r->json = r->body_len ? json_loadb(r->body, r->body_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL)
                          : NULL;
    if (!t->has_body)
        r->sent = true;
    r->done = true;
    curl_slist_free_all(t->hdrs);
    t->hdrs = NULL;
    t->body = (struct buf){0};
    t->head = (struct buf){0};
    return r;
}

struct http_conn {
    CURL *h;
    int port;
};

struct http_conn *http_conn_new(int port)
{
    curl_once();
    struct http_conn *c = calloc(1, sizeof *c);
    ck_assert_ptr_nonnull(c);
    c->h = curl_easy_init();
    ck_assert_ptr_nonnull(c->h);
    c->port = port;
    return c;
}

struct http_reply *http_conn_request(struct http_conn *c, const char *method, const char *path,
                                     const char *body, const char *headers)
{
    struct transfer t = {0};
    transfer_setup(c->h, &t, c->port, method, path, body, headers);
    CURLcode rc = curl_easy_perform(c->h);
    return transfer_finish(c->h, &t, rc);
}

void http_conn_free(struct http_conn *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->h);
    free(c);
}

struct http_reply *http_request(int port, const char *method, const char *path, const char *body,
                                const char *headers)
{
    struct http_conn *c = http_conn_new(port);
    struct http_reply *r = http_conn_request(c, method, path, body, headers);
    http_conn_free(c);
    return r;
}

struct http_reply *http_json(int port, const char *method, const char *path, json_t *body,
                             const char *headers)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(body);
    struct http_reply *r = http_request(port, method, path, text, headers);
    free(text);
    return r;
}

void http_reply_free(struct http_reply *r)
{
    if (!r)
        return;
    free(r->body);
    free(r->headers);
    json_decref(r->json);
    free(r);
}

bool http_header(const struct http_reply *r, const char *name, char *value, size_t len)
{
    size_t nlen = strlen(name);
    for (const char *line = r->headers; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t llen = nl ? (size_t)(nl - line) : strlen(line);
        if (llen > nlen && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            const char *e = line + llen;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            while (e > v && (e[-1] == '\r' || e[-1] == ' '))
                e--;
            snprintf(value, len, "%.*s", (int)(e - v), v);
            return true;
        }
        line += llen + (nl ? 1 : 0);
    }
    return false;
}

/* ---- curl multi ---- */

struct http_multi {
    CURLM *m;
    size_t n;
    CURL **h;
    struct transfer *t;
    struct http_reply **replies; /* filled as transfers end */
    size_t running;
};

struct http_multi *http_multi_start(int port, const struct http_spec *specs, size_t n)
{
    curl_once();
    struct http_multi *m = calloc(1, sizeof *m);
    ck_assert_ptr_nonnull(m);
    m->m = curl_multi_init();
    m->n = n;
    m->h = calloc(n, sizeof *m->h);
    m->t = calloc(n, sizeof *m->t);
    m->replies = calloc(n, sizeof *m->replies);
    ck_assert(m->m && m->h && m->t && m->replies);
    for (size_t i = 0; i < n; i++) {
        m->h[i] = curl_easy_init();
        ck_assert_ptr_nonnull(m->h[i]);
        m->t[i].req_body = specs[i].body ? strdup(specs[i].body) : NULL;
        transfer_setup(m->h[i], &m->t[i], port, specs[i].method, specs[i].path, m->t[i].req_body,
                       specs[i].headers);
        m->replies[i] = m->t[i].r;
        curl_easy_setopt(m->h[i], CURLOPT_FORBID_REUSE, 1L);
        ck_assert_int_eq(curl_multi_add_handle(m->m, m->h[i]), CURLM_OK);
    }
    m->running = n;
    return m;
}

/* Collects the transfers that ended. */
static void multi_collect(struct http_multi *m)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m->m, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct transfer *t = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        transfer_finish(msg->easy_handle, t, msg->data.result);
        curl_multi_remove_handle(m->m, msg->easy_handle);
    }
}

size_t http_multi_run(struct http_multi *m, int ms)
{
    long long end = now_ms() + ms;
    for (;;) {
        int running = 0;
        curl_multi_perform(m->m, &running);
        multi_collect(m);
        m->running = (size_t)running;
        long long left = end - now_ms();
        if (running == 0 || left <= 0)
            return m->running;
        int numfds;
        curl_multi_poll(m->m, NULL, 0, (int)(left < 20 ? left : 20), &numfds);
    }
}

static size_t multi_sent(const struct http_multi *m, size_t *with_body)
{
    size_t sent = 0, wanted = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (m->t[i].has_body) {
            wanted++;
            sent += m->replies[i]->sent || m->replies[i]->done;
        }
    }
    *with_body = wanted;
    return sent;
}

size_t http_multi_run_until_sent(struct http_multi *m, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    size_t wanted;
    for (;;) {
        size_t sent = multi_sent(m, &wanted);
        if (sent == wanted || now_ms() >= end)
            return sent;
        http_multi_run(m, 5);
    }
}

bool http_multi_wait(struct http_multi *m, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    while (http_multi_run(m, 50) > 0)
        if (now_ms() >= end)
            return false;
    return true;
}

const struct http_reply *http_multi_reply(const struct http_multi *m, size_t i)
{
    return m->replies[i];
}

void http_multi_free(struct http_multi *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        curl_multi_remove_handle(m->m, m->h[i]);
        if (!m->replies[i]->done) { /* never ended: free what the transfer holds */
            free(m->t[i].body.p);
            free(m->t[i].head.p);
            curl_slist_free_all(m->t[i].hdrs);
        }
        curl_easy_cleanup(m->h[i]);
        free(m->t[i].req_body);
        http_reply_free(m->replies[i]);
    }
    curl_multi_cleanup(m->m);
    free(m->h);
    free(m->t);
    free(m->replies);
    free(m);
}

/* ---- raw sockets ---- */

static int open_fds[64];
static size_t n_open_fds;

void raw_close(int fd)
{
    for (size_t i = 0; i < n_open_fds; i++) {
        if (open_fds[i] == fd) {
            open_fds[i] = open_fds[--n_open_fds];
            break;
        }
    }
    close(fd);
}

void raw_reset(int fd)
{
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    raw_close(fd);
}

void raw_close_all(void)
{
    while (n_open_fds > 0)
        close(open_fds[--n_open_fds]);
}

int raw_try_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (n_open_fds < sizeof open_fds / sizeof open_fds[0])
        open_fds[n_open_fds++] = fd;
    return fd;
}

int raw_connect(int port)
{
    int fd = raw_try_connect(port);
    ck_assert_msg(fd >= 0, "connect to 127.0.0.1:%d: %s", port, strerror(errno));
    return fd;
}

bool raw_send(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* True once buf holds a whole response: headers and Content-Length bytes of body. */
static bool response_complete(const struct buf *b)
{
    if (!b->p)
        return false;
    const char *end = strstr(b->p, "\r\n\r\n");
    if (!end)
        return false;
    size_t head = (size_t)(end - b->p) + 4;
    const char *cl = NULL;
    for (const char *s = b->p; s < end; s++) {
        if ((s == b->p || s[-1] == '\n') && strncasecmp(s, "content-length:", 15) == 0) {
            cl = s + 15;
            break;
        }
    }
    if (!cl)
        return false; /* read until the peer closes */
    return b->n >= head + strtoul(cl, NULL, 10);
}

long raw_read_reply(int fd, int timeout_ms, char **out)
{
    struct buf b = {0};
    long long end = now_ms() + timeout_ms;
    while (!response_complete(&b)) {
        long long left = end - now_ms();
        if (left <= 0)
            break;
        struct pollfd p = {fd, POLLIN, 0};
        int k = poll(&p, 1, (int)left);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        char chunk[4096];
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* closed or reset */
        buf_add(&b, chunk, (size_t)n);
    }
    if (!b.p)
        buf_add(&b, "", 0);
    long status = 0;
    if (strncmp(b.p, "HTTP/1.", 7) == 0 && b.n > 12)
        status = strtol(b.p + 9, NULL, 10);
    if (out)
        *out = b.p;
    else
        free(b.p);
    return status;
}

char *raw_post_text(const char *path, const char *json_body)
{
    char *text = NULL;
    int n = asprintf(&text,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     path, strlen(json_body), json_body);
    ck_assert_int_ge(n, 0);
    return text;
}
