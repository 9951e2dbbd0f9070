/* batch_http: `inferd batch`'s requests to its in-process daemon over loopback HTTP, many in
 * flight at once (libcurl's multi interface on the job's thread; kept-alive connections, one
 * easy handle per slot) so that the daemon's batcher groups them as it groups any clients'. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "batch.h"

#define REQUEST_ID_MAX 128

struct transfer {
    CURL *h;
    struct item *it; /* NULL: the slot is free */
    char *resp;
    size_t len, cap;
    char rid[REQUEST_ID_MAX + 1];
    char err[CURL_ERROR_SIZE];
    bool oom;
};

struct batch_client {
    CURLM *m;
    struct curl_slist *headers;
    struct transfer *t;
    int max, in_flight;
    char base[64]; /* http://127.0.0.1:PORT */
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct transfer *t = arg;
    size_t len = size * n;
    if (t->len + len + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->len + len + 1)
            cap *= 2;
        char *p = realloc(t->resp, cap);
        if (!p) {
            t->oom = true;
            return 0;
        }
        t->resp = p;
        t->cap = cap;
    }
    memcpy(t->resp + t->len, data, len);
    t->len += len;
    t->resp[t->len] = '\0';
    return len;
}

/* Keeps the daemon's x-request-id for OpenAI's response.request_id. */
static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    struct transfer *t = arg;
    size_t len = size * n;
    static const char name[] = "x-request-id:";
    if (len > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
        const char *v = data + sizeof name - 1, *end = data + len;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
            end--;
        size_t k = (size_t)(end - v) < REQUEST_ID_MAX ? (size_t)(end - v) : REQUEST_ID_MAX;
        memcpy(t->rid, v, k);
        t->rid[k] = '\0';
    }
    return len;
}

struct batch_client *client_new(int port, const char *key, int max)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct batch_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    char auth[200];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    snprintf(c->base, sizeof c->base, "http://127.0.0.1:%d", port);
    c->max = max;
    c->m = curl_multi_init();
    c->t = calloc((size_t)max, sizeof *c->t);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (h)
        c->headers = h;
    /* "Expect:" off: no 100-continue round trip before a large body */
    if (!c->m || !c->t || !h || !curl_slist_append(h, auth) || !curl_slist_append(h, "Expect:")) {
        client_free(c);
        return NULL;
    }
    curl_multi_setopt(c->m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)max);
    for (int i = 0; i < max; i++) {
        struct transfer *t = &c->t[i];
        if (!(t->h = curl_easy_init())) {
            client_free(c);
            return NULL;
        }
        curl_easy_setopt(t->h, CURLOPT_HTTPHEADER, c->headers);
        curl_easy_setopt(t->h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(t->h, CURLOPT_WRITEDATA, t);
        curl_easy_setopt(t->h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(t->h, CURLOPT_HEADERDATA, t);
        curl_easy_setopt(t->h, CURLOPT_ERRORBUFFER, t->err);
        curl_easy_setopt(t->h, CURLOPT_PRIVATE, t);
        curl_easy_setopt(t->h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(t->h, CURLOPT_NOPROXY, "*");
    }
    return c;
}

void client_free(struct batch_client *c)
{
    if (!c)
        return;
    for (int i = 0; c->t && i < c->max; i++) {
        if (c->t[i].h && c->t[i].it)
            curl_multi_remove_handle(c->m, c->t[i].h);
        if (c->t[i].h)
            curl_easy_cleanup(c->t[i].h);
        free(c->t[i].resp);
    }
    free(c->t);
    if (c->m)
        curl_multi_cleanup(c->m);
    curl_slist_free_all(c->headers);
    free(c);
}

int client_in_flight(const struct batch_client *c)
{
    return c->in_flight;
}

int client_send(struct batch_client *c, struct item *it)
{
    struct transfer *t = NULL;
    for (int i = 0; i < c->max && !t; i++)
        if (!c->t[i].it)
            t = &c->t[i];
    if (!t)
        return -1;
    char url[sizeof c->base + 512];
    snprintf(url, sizeof url, "%s%s", c->base, it->path);
    t->len = 0;
    t->rid[0] = t->err[0] = '\0';
    t->oom = false;
    curl_easy_setopt(t->h, CURLOPT_URL, url);
    curl_easy_setopt(t->h, CURLOPT_POSTFIELDS, it->body);
    curl_easy_setopt(t->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)it->body_len);
    if (curl_multi_add_handle(c->m, t->h) != CURLM_OK)
        return -1;
    t->it = it;
    c->in_flight++;
    return 0;
}

void client_poll(struct batch_client *c, int timeout_ms, client_done_fn done, void *arg)
{
    int running = 0;
    curl_multi_perform(c->m, &running);
    curl_multi_poll(c->m, NULL, 0, timeout_ms, NULL);
    curl_multi_perform(c->m, &running);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->m, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct transfer *t = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        CURLcode res = msg->data.result;
        long status = 0;
        curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &status);
        curl_multi_remove_handle(c->m, t->h);
        struct item *it = t->it;
        t->it = NULL;
        c->in_flight--;
        if (res != CURLE_OK || t->oom || status == 0)
            done(arg, it, 0, NULL, 0, NULL,
                 t->oom ? "out of memory" : t->err[0] ? t->err : curl_easy_strerror(res));
        else
            done(arg, it, (int)status, t->resp ? t->resp : "", t->len, t->rid[0] ? t->rid : NULL,
                 NULL);
    }
}
