/* serve_support: the harness of the daemon's integration suites. It starts the real
 * `inferd serve` with a YAML config written into a fresh temp dir (port 0; stderr goes to a
 * log file there, never to a pipe), reads the port from the "inferd: listening on" line,
 * waits for GET /ready, sends signals and reaps the process with a timeout; the HTTP clients
 * are in serve_http.h. Every daemon a test starts dies with the test, even a failing one: the
 * child asks for SIGKILL when its parent dies (PR_SET_PDEATHSIG), Check kills a forked test's
 * process group, and serve_teardown (a checked fixture) kills leftovers under CK_FORK=no.
 * Expected values live in serve_expect.h; this file knows nothing about them. */
#ifndef INFERD_SERVE_SUPPORT_H
#define INFERD_SERVE_SUPPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "serve_http.h"

/* ---- config text ---- */

/* One entry of `models:`: name, path (a directory; a name without '/' means
 * fixture_model(path)), task, workers 1, threads 1, then extra: YAML lines
 * written at the entry's level, e.g. "max_input_tokens: 16\nbatching:\n  max_batch_size: 8\n"
 * (may be NULL). Returns malloc'ed text. */
char *yaml_model(const char *name, const char *path, const char *task, const char *extra);

/* A whole config file: `server:` with host 127.0.0.1, port 0 and server_extra (YAML lines at
 * the level of server's keys, may be NULL), then `models:` with the entries given (each from
 * yaml_model, freed here; the list ends with NULL). Returns malloc'ed text. */
char *yaml_config(const char *server_extra, ...);

/* ---- the daemon process ---- */

struct daemon {
    pid_t pid;
    int port;              /* from the "listening on" line; 0 before */
    char dir[256];         /* temp dir: config, log, scratch files of the test */
    char config_path[320]; /* DIR/inferd.yaml */
    char log_path[320];    /* DIR/inferd.log: the daemon's stderr */
    char auth[160];        /* "Authorization: Bearer KEY" sent by the harness itself, or "" */
    bool reaped;           /* the process was waited for; status is then valid */
    int status;            /* wait status (see daemon_exit_code) */
};

/* A fresh temp dir with yaml written to DIR/inferd.yaml (yaml may be NULL: no file). */
struct daemon *daemon_new(const char *yaml);
/* Starts `inferd serve ARGS...` (args: NULL-terminated, after "serve"; NULL means
 * "--config DIR/inferd.yaml"), stdin /dev/null, stdout DIR/stdout.log, stderr the log. */
void daemon_exec(struct daemon *d, const char *const *args);
/* Waits up to timeout_ms for the "listening on" line and sets d->port; fails the test with
 * the log's tail if the daemon exits first or never prints it. */
void daemon_wait_listening(struct daemon *d, int timeout_ms);
/* Waits up to timeout_ms for GET /ready == 200 (with d->auth); fails the test with the log's
 * tail on timeout or when the daemon exits. */
void daemon_wait_ready(struct daemon *d, int timeout_ms);
/* daemon_new + daemon_exec + daemon_wait_listening + daemon_wait_ready (api_key: the key to
 * use for the harness's own /ready calls when the config sets api_keys, else NULL). */
struct daemon *daemon_start(const char *yaml, const char *api_key);

/* Rewrites DIR/inferd.yaml in one rename (for SIGHUP). */
void daemon_write_config(struct daemon *d, const char *yaml);
void daemon_signal(struct daemon *d, int sig);
bool daemon_alive(struct daemon *d);
/* Waits up to timeout_ms for the process to end; returns its exit code (128 + signal when a
 * signal killed it) or -1 on timeout (the process then still runs). */
int daemon_wait_exit(struct daemon *d, int timeout_ms);
/* SIGTERM, then fails the test unless the daemon exits 0 within 30 s and its log holds no
 * sanitizer report. Works on a daemon shared by a TCase too (not this process's child under
 * CK_FORK: its exit code is read from /proc while it is a zombie). */
void daemon_shutdown(struct daemon *d);
/* Fails the test when the log holds a sanitizer report (ASan, LSan, UBSan, TSan). */
void expect_clean_log(const struct daemon *d);
/* The whole log (malloc'ed, "" when empty) and its last ~1500 bytes after a line naming the
 * log's path (static buffer; for failure messages: a failing test keeps DIR). */
char *daemon_log(const struct daemon *d);
const char *daemon_log_tail(const struct daemon *d);
size_t daemon_log_size(const struct daemon *d);
/* Exempts d from serve_teardown: a daemon shared by a TCase (started in an unchecked
 * fixture in the runner process) that its own teardown stops. */
void daemon_persist(struct daemon *d);
/* The shared daemon of a TCase's unchecked fixture: daemon_start(yaml, NULL), then
 * daemon_persist; frees yaml (a yaml_config result). */
struct daemon *daemon_start_shared(char *yaml);
/* Kills (SIGKILL) the process if it still runs, reaps it, frees d. DIR is a temp_dir (see
 * support.h): removed with the process that made it, kept when a test failed. */
void daemon_stop(struct daemon *d);
/* Closes the raw sockets left open, then kills and reaps every daemon still running (their
 * dirs stay for a post-mortem). A checked teardown fixture for every TCase of the serve
 * suites; also registered with atexit. */
void serve_teardown(void);

/* ---- HTTP to a daemon ---- */

/* POST of a JSON body (stolen) / GET, to d with d->auth. */
struct http_reply *daemon_post(const struct daemon *d, const char *path, json_t *body);
struct http_reply *daemon_get(const struct daemon *d, const char *path);

/* A growing NUL-terminated byte buffer (fails the test when out of memory). */
struct buf {
    char *p;
    size_t n, cap;
};
void buf_add(struct buf *b, const void *data, size_t len);

#endif
