/* http: the libmicrohttpd front end. Owns the route table, the life of a call (headers ->
 * body -> handler -> suspended while queued -> response), request limits (body size, API
 * keys), error bodies in each dialect's shape, and the per-request metrics. */
#ifndef INFERD_HTTP_H
#define INFERD_HTTP_H

#include "config.h"
#include "err.h"

struct server;

struct http;

/* Listens on cfg->host:cfg->port (port 0: any free port) with cfg->http_threads threads.
 * *port gets the port actually bound. */
struct http *http_start(struct server *s, const struct server_config *cfg, int *port,
                        struct err *e);
/* Stops accepting new connections (connections already open are still served). */
void http_quiesce(struct http *h);
/* Calls begun and not yet answered (and sent). */
long http_active_calls(void);
/* Closes every connection and frees. Call only once http_active_calls() is 0 or when
 * giving up on the remaining ones. */
void http_stop(struct http *h);

#endif
