/* router: the route table (one row a route: method, path, handler, dialect, flags: whether it
 * needs an API key, is answered on the polling thread, is a probe), matching, the API key check and
 * the checks a call meets before its body is read. */
#include "call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct route routes[] = {
    {"GET", "/health", route_health, DIALECT_HF, ROUTE_OPEN | ROUTE_ON_POLL | ROUTE_PROBE},
    {"GET", "/ready", route_ready, DIALECT_HF, ROUTE_OPEN | ROUTE_ON_POLL | ROUTE_PROBE},
    {"GET", "/metrics", route_metrics, DIALECT_HF, ROUTE_ON_POLL | ROUTE_PROBE},
    {"POST", "/models/", route_hf_models, DIALECT_HF, 0},
    {"POST", "/embed", route_tei_embed, DIALECT_HF, 0},
    {"POST", "/predict", route_tei_predict, DIALECT_HF, 0},
    {"POST", "/rerank", route_tei_rerank, DIALECT_HF, 0},
    {"POST", "/tokenize", route_tei_tokenize, DIALECT_HF, 0},
    {"POST", "/decode", route_tei_decode, DIALECT_HF, 0},
    {"GET", "/info", route_tei_info, DIALECT_HF, ROUTE_ON_POLL},
    {"POST", "/v1/embeddings", route_openai_embeddings, DIALECT_OPENAI, 0},
    {"POST", "/embeddings", route_openai_embeddings, DIALECT_OPENAI, 0},
    {"GET", "/v1/models", route_openai_models, DIALECT_OPENAI, ROUTE_ON_POLL},
    {"POST", "/generate", route_tgi_generate, DIALECT_TGI, 0},
    {"POST", "/generate_stream", route_tgi_generate_stream, DIALECT_TGI, 0},
    {"POST", "/v1/completions", route_openai_completions, DIALECT_OPENAI, 0},
    {"POST", "/v1/chat/completions", route_openai_chat, DIALECT_OPENAI, 0},
    {"POST", "/", route_tgi_compat, DIALECT_TGI, 0},
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

static const struct route *match(const char *url, const char *method, bool *known_path,
                                 const char **arg)
{
    const struct route *path_match = NULL;
    *arg = NULL;
    for (size_t i = 0; i < N_ROUTES; i++) {
        const struct route *r = &routes[i];
        size_t n = strlen(r->path);
        const char *a = NULL;
        if (n > 1 && r->path[n - 1] == '/') {
            if (strncmp(url, r->path, n) != 0 || !url[n] || strchr(url + n, '/'))
                continue;
            a = url + n;
        } else if (strcmp(url, r->path) != 0) {
            continue;
        }
        path_match = r;
        if (strcmp(method, r->method) == 0) {
            *known_path = true;
            *arg = a;
            return r;
        }
    }
    *known_path = path_match != NULL;
    return path_match;
}

/* Constant-time comparison of the bearer token with each configured key. */
static bool key_ok(struct call *c)
{
    const struct server_config *cfg = server_config(c->s);
    const char *h = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Authorization");
    c->auth = "invalid";
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
        c->auth = "missing";
        return false;
    }
    const char *tok = h + 7;
    size_t tl = strlen(tok);
    bool ok = false;
    for (size_t i = 0; i < cfg->n_api_keys; i++) {
        const char *k = cfg->api_keys[i];
        size_t kl = strlen(k);
        unsigned diff = (unsigned)(kl ^ tl);
        for (size_t b = 0; b < kl; b++)
            diff |= (unsigned char)k[b] ^ (unsigned char)(b < tl ? tok[b] : 0);
        ok |= diff == 0;
    }
    if (ok)
        c->auth = NULL;
    return ok;
}

/* With keys configured, everything but the open routes (the probes) needs one, unknown paths
 * and wrong methods included: without a key nothing tells which routes exist. */
static bool authorized(struct call *c, const struct route *r, bool method_ok)
{
    if (server_config(c->s)->n_api_keys == 0 || (r && method_ok && (r->flags & ROUTE_OPEN)))
        return true;
    return key_ok(c);
}

/* First call for a request: route, method, auth, declared size. Answers the failures. */
void router_start_call(struct call *c, const char *url, const char *method)
{
    bool known = false;
    const char *arg = NULL;
    const struct route *r = match(url, method, &known, &arg);
    c->route = r;
    c->dialect = r ? r->dialect : strncmp(url, "/v1/", 4) == 0 ? DIALECT_OPENAI : DIALECT_HF;
    bool method_ok = r && strcmp(method, r->method) == 0;
    if (!authorized(c, r, method_ok)) {
        call_error(c, ERR_UNAUTHORIZED, NULL, "missing or invalid API key (send \"Authorization: Bearer KEY\")");
        return;
    }
    if (!r) {
        call_error(c, ERR_NOT_FOUND, NULL, "no route for %s %s", method, url);
        return;
    }
    if (!method_ok) {
        call_error(c, ERR_METHOD, NULL, "%s does not accept %s (use %s)", url, method, r->method);
        return;
    }
    if (arg && !(c->arg = strdup(arg))) {
        call_error(c, ERR_NOMEM, NULL, "out of memory");
        return;
    }
    size_t max = server_config(c->s)->max_body_bytes;
    const char *cl = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > max)
        call_error(c, ERR_TOO_LARGE, NULL, "request body of %s bytes is over the limit of %zu bytes", cl,
                   max);
}

