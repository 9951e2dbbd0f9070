/* hub_http: the requests of the Hub protocol over libcurl (one easy handle per request, so
 * that the download threads share nothing): the token as "Authorization: Bearer", the
 * headers huggingface_hub reads, "Accept-Encoding: identity" (sizes are the files' own),
 * retries with a doubling backoff on 5xx, 408, 429 and network errors, and messages that say
 * what to do about a failure. */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "hub_impl.h"

#ifndef INFERD_VERSION
#define INFERD_VERSION "unknown"
#endif

#define CONNECT_TIMEOUT 10L /* seconds */
#define LOW_SPEED_TIME 30L  /* seconds under 1 byte/s: a stalled transfer, retried */
#define META_TIMEOUT 60L    /* seconds for a metadata request */
#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS 8000

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- headers ---- */

/* "ETag: W/\"abc\"" -> abc (file_download.py's _normalize_etag) */
static void normalize_etag(const char *v, char *out, size_t cap)
{
    if (strncmp(v, "W/", 2) == 0)
        v += 2;
    while (*v == '"')
        v++;
    size_t n = strlen(v);
    while (n > 0 && v[n - 1] == '"')
        n--;
    snprintf(out, cap, "%.*s", (int)n, v);
}

/* Stores one response header; a new status line (after a redirect) clears the others. */
static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
    struct hub_resp *r = arg;
    size_t len = size * n;
    char buf[2300];
    size_t m = len < sizeof buf - 1 ? len : sizeof buf - 1;
    memcpy(buf, line, m);
    while (m > 0 && (buf[m - 1] == '\r' || buf[m - 1] == '\n'))
        m--;
    buf[m] = 0;
    if (strncmp(buf, "HTTP/", 5) == 0) {
        memset(r, 0, sizeof *r);
        r->size = -1;
        return len;
    }
    char *colon = strchr(buf, ':');
    if (!colon)
        return len;
    *colon = 0;
    const char *v = colon + 1;
    while (*v == ' ')
        v++;
    static const struct {
        const char *name;
        size_t field; /* offset in struct hub_resp */
        size_t cap;
    } fields[] = {
        {"X-Repo-Commit", offsetof(struct hub_resp, commit), sizeof r->commit},
        {"Location", offsetof(struct hub_resp, location), sizeof r->location},
        {"X-Error-Code", offsetof(struct hub_resp, error_code), sizeof r->error_code},
        {"X-Error-Message", offsetof(struct hub_resp, error_message), sizeof r->error_message},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (strcasecmp(buf, fields[i].name) == 0)
            snprintf((char *)r + fields[i].field, fields[i].cap, "%s", v);
    if (strcasecmp(buf, "X-Linked-Etag") == 0)
        normalize_etag(v, r->etag, sizeof r->etag);
    else if (strcasecmp(buf, "ETag") == 0 && !r->etag[0])
        normalize_etag(v, r->etag, sizeof r->etag);
    else if (strcasecmp(buf, "X-Linked-Size") == 0)
        r->size = atoll(v), r->size_linked = true;
    else if (strcasecmp(buf, "Content-Length") == 0 && !r->size_linked)
        r->size = atoll(v);
    return len;
}

/* An easy handle for url with the token, the user agent and the header parser. */
static CURL *easy_new(const struct hub_env *env, const char *url, struct curl_slist **hdrs,
                      struct hub_resp *r)
{
    pthread_once(&curl_once, curl_init);
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    *hdrs = curl_slist_append(NULL, "Accept-Encoding: identity");
    /* the token goes to the Hub only, never to the storage host a file is fetched from
     * (curl does not resend it across hosts on redirects either) */
    if (env->token[0] && strncmp(url, env->endpoint, strlen(env->endpoint)) == 0) {
        char auth[600];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", env->token);
        *hdrs = curl_slist_append(*hdrs, auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdrs);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "inferd/" INFERD_VERSION);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, LOW_SPEED_TIME);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    memset(r, 0, sizeof *r);
    r->size = -1;
    return c;
}

/* Performs c; fills r->status, or r->network with curl's message in e. */
static int easy_run(CURL *c, struct curl_slist *hdrs, const char *url, struct hub_resp *r,
                    struct err *e)
{
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    if (rc == CURLE_WRITE_ERROR)
        return ERR_IO; /* the caller's writer failed and set e */
    if (rc != CURLE_OK) {
        r->network = true;
        return err_set(e, ERR_UNAVAILABLE, "%s: %s", url, curl_easy_strerror(rc));
    }
    return 0;
}

bool http_retryable(const struct hub_resp *r)
{
    return r->network || r->status >= 500 || r->status == 408 || r->status == 429;
}

void http_backoff(int attempt)
{
    long ms = BACKOFF_FIRST_MS;
    for (int i = 1; i < attempt && ms < BACKOFF_MAX_MS; i++)
        ms *= 2;
    usleep((useconds_t)(ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS) * 1000);
}

/* ---- messages ---- */

int http_error(const struct hub_resp *r, const char *what, struct err *e)
{
    const char *code = r->error_code;
    if (r->network)
        return ERR_UNAVAILABLE; /* e holds curl's message */
    if (r->status == 401 || r->status == 403) {
        bool gated = strcmp(code, "GatedRepo") == 0;
        return err_set(e, ERR_UNAVAILABLE,
                       "%s: access refused (HTTP %ld): the repo is %s; set HF_TOKEN (or "
                       "HF_HOME/token) to a token that can read it%s",
                       what, r->status,
                       gated ? "gated" : "private, gated or does not exist",
                       gated ? ", after accepting its conditions on the Hub" : "");
    }
    if (r->status == 404 && strcmp(code, "RevisionNotFound") == 0)
        return err_set(e, ERR_NOT_FOUND, "%s: revision not found on the Hub", what);
    if (r->status == 404 && strcmp(code, "EntryNotFound") == 0)
        return err_set(e, ERR_NOT_FOUND, "%s: file not found in the repo", what);
    if (r->status == 404)
        return err_set(e, ERR_NOT_FOUND, "%s: repo not found on the Hub (check the name)", what);
    return err_set(e, ERR_UNAVAILABLE, "%s: the Hub answered HTTP %ld%s%s", what, r->status,
                   r->error_message[0] ? ": " : "", r->error_message);
}

int url_escape(const char *s, bool keep_slash, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || strchr("-._~", *p) || (keep_slash && *p == '/');
        if (o + 4 > cap)
            return -1;
        if (plain) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = 0;
    return 0;
}

/* ---- requests ---- */

struct text {
    char *p;
    size_t n;
};

static size_t on_text(char *data, size_t size, size_t n, void *arg)
{
    struct text *t = arg;
    size_t len = size * n;
    char *p = realloc(t->p, t->n + len + 1);
    if (!p)
        return 0;
    memcpy(p + t->n, data, len);
    t->p = p;
    t->n += len;
    p[t->n] = 0;
    return len;
}

int http_get_text(const struct hub_env *env, const char *url, char **body, struct hub_resp *r,
                  struct err *e)
{
    for (int attempt = 1;; attempt++) {
        struct curl_slist *hdrs = NULL;
        struct text t = {0};
        CURL *c = easy_new(env, url, &hdrs, r);
        if (!c)
            return err_set(e, ERR_NOMEM, "curl: out of memory");
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, META_TIMEOUT);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_text);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
        int rc = easy_run(c, hdrs, url, r, e);
        if (rc == 0 && r->status == 200) {
            *body = t.p ? t.p : strdup("");
            return *body ? 0 : err_set(e, ERR_NOMEM, "out of memory");
        }
        free(t.p);
        if (!http_retryable(r) || attempt == 5)
            return rc ? rc : ERR_UNAVAILABLE;
        http_backoff(attempt);
    }
}

/* One HEAD request, no redirect followed. */
static int head_once(const struct hub_env *env, const char *url, struct hub_resp *r,
                     struct err *e)
{
    struct curl_slist *hdrs = NULL;
    CURL *c = easy_new(env, url, &hdrs, r);
    if (!c)
        return err_set(e, ERR_NOMEM, "curl: out of memory");
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, META_TIMEOUT);
    return easy_run(c, hdrs, url, r, e);
}

/* url with its path replaced by the relative location loc ("/x/y") into out. */
static void join_relative(const char *url, const char *loc, char *out, size_t cap)
{
    const char *host = strstr(url, "://");
    const char *path = host ? strchr(host + 3, '/') : NULL;
    size_t keep = path ? (size_t)(path - url) : strlen(url);
    snprintf(out, cap, "%.*s%s", (int)keep, url, loc);
}

int http_head(const struct hub_env *env, const char *url, struct hub_resp *r, struct err *e)
{
    char cur[2300];
    snprintf(cur, sizeof cur, "%s", url);
    for (int attempt = 1, hops = 0;;) {
        int rc = head_once(env, cur, r, e);
        bool redirect = rc == 0 && r->status >= 300 && r->status < 400;
        if (redirect && r->location[0] == '/' && hops++ < 10) {
            char next[2300];
            join_relative(cur, r->location, next, sizeof next);
            snprintf(cur, sizeof cur, "%s", next);
            continue;
        }
        if (rc == 0 && (r->status == 200 || redirect)) {
            if (redirect && !r->size_linked) /* a redirect's own length is not the file's */
                r->size = -1;
            if (!r->location[0])
                snprintf(r->location, sizeof r->location, "%s", cur);
            return 0;
        }
        if (!http_retryable(r) || attempt == 5)
            return rc ? rc : http_error(r, cur, e);
        http_backoff(attempt++);
    }
}

/* The GET's writer: appends to fd, counting; a write error stops the transfer. */
struct sink {
    int fd;
    long long have;
    bool checked; /* the status was looked at (a 200 to a Range truncates the file) */
    CURL *c;
    void (*on_bytes)(void *arg, long long n);
    void *arg;
    int sys_errno;
    long long start;
};

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
    struct sink *s = arg;
    size_t len = size * n;
    if (!s->checked) {
        long status = 0;
        curl_easy_getinfo(s->c, CURLINFO_RESPONSE_CODE, &status);
        if (status == 200 && s->have > 0) { /* the server ignored the Range */
            if (ftruncate(s->fd, 0) != 0 || lseek(s->fd, 0, SEEK_SET) < 0)
                return s->sys_errno = errno, 0;
            s->on_bytes(s->arg, -s->have);
            s->have = 0;
        }
        if (status != 200 && status != 206)
            return len; /* an error page: not written */
        s->checked = true;
    }
    for (size_t o = 0; o < len;) {
        ssize_t w = write(s->fd, data + o, len - o);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return s->sys_errno = w < 0 ? errno : ENOSPC, 0;
        o += (size_t)w;
    }
    s->have += (long long)len;
    s->on_bytes(s->arg, (long long)len);
    return len;
}

int http_get_file(const struct hub_env *env, const char *url, int fd, long long have,
                  void (*on_bytes)(void *arg, long long n), void *arg, long long *written,
                  int *sys_errno, struct hub_resp *r, struct err *e)
{
    struct curl_slist *hdrs = NULL;
    CURL *c = easy_new(env, url, &hdrs, r);
    if (!c)
        return err_set(e, ERR_NOMEM, "curl: out of memory");
    struct sink s = {.fd = fd, .have = have, .c = c, .on_bytes = on_bytes, .arg = arg};
    char range[64];
    if (have > 0) {
        snprintf(range, sizeof range, "%lld-", have);
        curl_easy_setopt(c, CURLOPT_RANGE, range);
    }
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    int rc = easy_run(c, hdrs, url, r, e);
    *written = s.have;
    *sys_errno = s.sys_errno;
    if (rc == ERR_IO)
        return err_set(e, ERR_IO, "%s", strerror(s.sys_errno));
    if (rc == 0 && r->status != 200 && r->status != 206)
        return http_error(r, url, e);
    return rc;
}
