/* serve_http: the HTTP clients of the daemon's integration suites: libcurl for one request
 * (on a new or a kept-alive connection) or many in flight at once (curl multi, one connection
 * each), and raw sockets for what curl will not do (hanging up while queued, announcing a
 * body and sending only part of it). Replies keep status, headers, body and the body parsed
 * as JSON. Nothing here knows about the daemon process (serve_support.h). */
#ifndef INFERD_SERVE_HTTP_H
#define INFERD_SERVE_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Sleeps ms milliseconds. */
void sleep_ms(int ms);
/* Milliseconds on a monotonic clock. */
long long now_ms(void);

/* ---- HTTP over libcurl ---- */

struct http_reply {
    long status; /* 0 when no HTTP answer came (error says why) */
    char *body;  /* NUL-terminated */
    size_t body_len;
    json_t *json;  /* the body parsed, when it is JSON; else NULL */
    char *headers; /* the raw response header block */
    char error[256];
    bool sent; /* the request body was handed to the socket completely (multi only) */
    bool done; /* the transfer ended (multi only) */
};

/* One request to 127.0.0.1:port on a new connection. body may be NULL; headers: extra
 * "Name: value" lines separated by '\n' (may be NULL). A POST gets Content-Type
 * application/json unless headers set one. Times out after 60 s. */
struct http_reply *http_request(int port, const char *method, const char *path, const char *body,
                                const char *headers);
/* http_request with a JSON body (stolen; may be NULL). */
struct http_reply *http_json(int port, const char *method, const char *path, json_t *body,
                             const char *headers);
void http_reply_free(struct http_reply *r);
/* Copies the value of a response header (name case-insensitive) into value; false when the
 * response has no such header. */
bool http_header(const struct http_reply *r, const char *name, char *value, size_t len);

/* A connection kept alive across requests (one curl easy handle). */
struct http_conn;
struct http_conn *http_conn_new(int port);
struct http_reply *http_conn_request(struct http_conn *c, const char *method, const char *path,
                                     const char *body, const char *headers);
void http_conn_free(struct http_conn *c);

/* Many requests in flight at once (curl multi, one connection each). */
struct http_spec {
    const char *method, *path;
    const char *body;    /* copied at start; may be NULL */
    const char *headers; /* as http_request; copied at start */
};
struct http_multi;
/* Starts every request (nothing is sent until http_multi_run). */
struct http_multi *http_multi_start(int port, const struct http_spec *specs, size_t n);
/* Drives the transfers for up to ms milliseconds (less when all end); returns how many
 * are still running. */
size_t http_multi_run(struct http_multi *m, int ms);
/* Drives until every request whose spec has a body has sent all of it, up to timeout_ms;
 * returns how many have. */
size_t http_multi_run_until_sent(struct http_multi *m, int timeout_ms);
/* Drives until all end, up to timeout_ms; true when all ended. */
bool http_multi_wait(struct http_multi *m, int timeout_ms);
/* The reply of request i (owned by m; valid once done). */
const struct http_reply *http_multi_reply(const struct http_multi *m, size_t i);
void http_multi_free(struct http_multi *m);

/* ---- raw sockets ---- */

/* A blocking TCP connection to 127.0.0.1:port; fails the test if connect fails. The fd is
 * remembered until raw_close, so that raw_close_all (serve_teardown) closes it when a failing
 * test could not
 * (a half-sent request left open would hold up the daemon's drain). */
int raw_connect(int port);
/* Like raw_connect but returns -1 (errno set) instead of failing. */
int raw_try_connect(int port);
void raw_close(int fd);
/* Resets the connection (SO_LINGER 0, then raw_close): the peer sees an RST, not a FIN. */
void raw_reset(int fd);
/* Closes every raw socket not yet closed (serve_teardown). */
void raw_close_all(void);
/* Sends all of data (MSG_NOSIGNAL); false when the peer closed or reset the connection. */
bool raw_send(int fd, const void *data, size_t len);
/* Reads until a whole response (headers + Content-Length body) arrived, the peer closed or
 * reset, or timeout_ms passed. Returns the status of the "HTTP/1.x NNN" line (0 if none)
 * and, when out is not NULL, the bytes read (malloc'ed, NUL-terminated). */
long raw_read_reply(int fd, int timeout_ms, char **out);
/* "POST path HTTP/1.1" request text with a JSON body and Content-Length (malloc'ed). */
char *raw_post_text(const char *path, const char *json_body);

#endif
