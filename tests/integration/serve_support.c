/* serve_support: see serve_support.h. Two parts: config text and the daemon process (fork,
 * exec, log polling, signals, reaping, cleanup of leftovers). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "serve_support.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/support.h"

void buf_add(struct buf *b, const void *data, size_t len)
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

static void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    ck_assert_int_ge(n, 0);
    buf_add(b, s, (size_t)n);
    free(s);
}

/* Appends text with every line prefixed by indent. */
static void buf_indented(struct buf *b, const char *indent, const char *text)
{
    while (text && *text) {
        const char *nl = strchr(text, '\n');
        size_t len = nl ? (size_t)(nl - text) : strlen(text);
        buf_printf(b, "%s%.*s\n", indent, (int)len, text);
        text += len + (nl ? 1 : 0);
    }
}

/* ---- config text ---- */

char *yaml_model(const char *name, const char *path, const char *task, const char *extra)
{
    struct buf b = {0};
    if (!strchr(path, '/'))
        path = fixture_model(path);
    buf_printf(&b, "  - name: %s\n    path: \"%s\"\n    task: %s\n    workers: 1\n    threads: 1\n",
               name, path, task);
    buf_indented(&b, "    ", extra);
    return b.p;
}

char *yaml_config(const char *server_extra, ...)
{
    struct buf b = {0};
    buf_printf(&b, "server:\n  host: 127.0.0.1\n  port: 0\n");
    buf_indented(&b, "  ", server_extra);
    buf_printf(&b, "models:\n");
    va_list ap;
    va_start(ap, server_extra);
    char *m;
    while ((m = va_arg(ap, char *)) != NULL) {
        buf_add(&b, m, strlen(m));
        free(m);
    }
    va_end(ap);
    return b.p;
}

/* ---- the daemon process ---- */

/* Every daemon started and not yet stopped, for serve_teardown. */
static struct daemon *live[16];

static void track(struct daemon *d)
{
    static bool registered;
    if (!registered) {
        atexit(serve_teardown);
        registered = true;
    }
    for (size_t i = 0; i < sizeof live / sizeof live[0]; i++) {
        if (!live[i]) {
            live[i] = d;
            return;
        }
    }
    ck_abort_msg("serve_support: more than 16 daemons at once");
}

static void untrack(struct daemon *d)
{
    for (size_t i = 0; i < sizeof live / sizeof live[0]; i++)
        if (live[i] == d)
            live[i] = NULL;
}

static void write_file(const char *path, const char *text)
{
    char tmp[400];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", tmp);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_msg(rename(tmp, path) == 0, "cannot rename %s", tmp);
}

struct daemon *daemon_new(const char *yaml)
{
    struct daemon *d = calloc(1, sizeof *d);
    ck_assert_ptr_nonnull(d);
    d->pid = -1;
    snprintf(d->dir, sizeof d->dir, "%s", temp_dir());
    snprintf(d->config_path, sizeof d->config_path, "%s/inferd.yaml", d->dir);
    snprintf(d->log_path, sizeof d->log_path, "%s/inferd.log", d->dir);
    if (yaml)
        write_file(d->config_path, yaml);
    return d;
}

void daemon_write_config(struct daemon *d, const char *yaml)
{
    write_file(d->config_path, yaml);
}

void daemon_exec(struct daemon *d, const char *const *args)
{
    const char *argv[32] = {inferd_exe(), "serve"};
    size_t n = 2;
    if (!args) {
        argv[n++] = "--config";
        argv[n++] = d->config_path;
    }
    for (size_t i = 0; args && args[i]; i++) {
        ck_assert_uint_lt(n, 31);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    char out_path[320];
    snprintf(out_path, sizeof out_path, "%s/stdout.log", d->dir);
    signal(SIGPIPE, SIG_IGN); /* the harness writes to sockets the daemon may close */
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* die with the test process, whatever ends it */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int in = open("/dev/null", O_RDONLY);
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open(d->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || err < 0)
            _exit(127);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        /* a normal start: default dispositions, nothing blocked */
        signal(SIGPIPE, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(argv[0], (char *const *)argv);
        dprintf(2, "serve_support: cannot exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    d->pid = pid;
    d->reaped = false;
    d->port = 0;
    track(d);
}

/* A process that is not our child (a TCase's shared daemon seen from a forked test): true
 * once it has exited; *st gets its wait status while it is a zombie (/proc/PID/stat field 52,
 * exit_code), else -1. */
static bool proc_exited(pid_t pid, int *st)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    char *text = read_file(path, NULL);
    *st = -1;
    if (!text)
        return true;
    char *p = strrchr(text, ')');
    bool zombie = false;
    for (int field = 3; p && field <= 52; field++) {
        p = strchr(p, ' ');
        if (p)
            p++;
        if (p && field == 3)
            zombie = *p == 'Z' || *p == 'X';
        if (p && field == 52 && zombie)
            *st = atoi(p);
    }
    free(text);
    return zombie;
}

bool daemon_alive(struct daemon *d)
{
    if (d->pid <= 0 || d->reaped)
        return false;
    int st;
    pid_t r = waitpid(d->pid, &st, WNOHANG);
    if (r == d->pid) {
        d->reaped = true;
        d->status = st;
        return false;
    }
    if (r < 0 && errno == ECHILD && proc_exited(d->pid, &st)) {
        d->status = st;
        return false; /* not reaped: the runner that started it does that */
    }
    return true;
}

static int exit_code(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

int daemon_wait_exit(struct daemon *d, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    while (daemon_alive(d)) {
        if (now_ms() >= end)
            return -1;
        sleep_ms(10);
    }
    return d->pid > 0 && d->status >= 0 ? exit_code(d->status) : -1;
}

void expect_clean_log(const struct daemon *d)
{
    static const char *const reports[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                          "runtime error:", "WARNING: ThreadSanitizer"};
    char *log = daemon_log(d);
    for (size_t i = 0; i < sizeof reports / sizeof reports[0]; i++) {
        const char *at = strstr(log, reports[i]);
        ck_assert_msg(at == NULL, "the daemon's log has a sanitizer report:\n%.3000s", at);
    }
    free(log);
}

void daemon_shutdown(struct daemon *d)
{
    daemon_signal(d, SIGTERM);
    int code = daemon_wait_exit(d, 30000);
    expect_clean_log(d);
    ck_assert_msg(code == 0, "exit code %d after SIGTERM (-1: still running or unknown); log:\n%s",
                  code, daemon_log_tail(d));
}

void daemon_signal(struct daemon *d, int sig)
{
    ck_assert_msg(daemon_alive(d), "daemon already exited (code %d); log:\n%s",
                  exit_code(d->status), daemon_log_tail(d));
    ck_assert_int_eq(kill(d->pid, sig), 0);
}

char *daemon_log(const struct daemon *d)
{
    char *s = read_file(d->log_path, NULL);
    return s ? s : strdup("");
}

size_t daemon_log_size(const struct daemon *d)
{
    struct stat st;
    return stat(d->log_path, &st) == 0 ? (size_t)st.st_size : 0;
}

const char *daemon_log_tail(const struct daemon *d)
{
    static char tail[1600];
    size_t len = 0;
    char *s = read_file(d->log_path, &len);
    if (!s) {
        snprintf(tail, sizeof tail, "(no log at %s)", d->log_path);
        return tail;
    }
    int head = snprintf(tail, sizeof tail, "(%s, kept for a post-mortem)\n", d->log_path);
    size_t room = sizeof tail - 1 - (size_t)head;
    size_t from = len > room ? len - room : 0;
    snprintf(tail + head, sizeof tail - (size_t)head, "%s", s + from);
    free(s);
    return tail;
}

/* The port of "listening on http://HOST:PORT" in the log (a text line or a JSON one's msg),
 * or 0. */
static int listening_port(const struct daemon *d)
{
    char *log = daemon_log(d);
    int port = 0;
    const char *key = "listening on http://";
    char *at = strstr(log, key);
    if (at) {
        char *eol = strchr(at, '\n');
        if (eol) { /* only a whole line counts */
            *eol = '\0';
            char *colon = strrchr(at + strlen(key), ':');
            if (colon)
                port = atoi(colon + 1);
        }
    }
    free(log);
    return port;
}

void daemon_wait_listening(struct daemon *d, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    for (;;) {
        d->port = listening_port(d);
        if (d->port > 0)
            return;
        ck_assert_msg(daemon_alive(d), "inferd serve exited (code %d) before listening; log:\n%s",
                      exit_code(d->status), daemon_log_tail(d));
        ck_assert_msg(now_ms() < end, "no 'inferd: listening on' line after %d ms; log:\n%s",
                      timeout_ms, daemon_log_tail(d));
        sleep_ms(20);
    }
}

void daemon_wait_ready(struct daemon *d, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    long last = 0;
    for (;;) {
        struct http_reply *r = http_request(d->port, "GET", "/ready", NULL, d->auth);
        last = r->status;
        http_reply_free(r);
        if (last == 200)
            return;
        ck_assert_msg(daemon_alive(d), "inferd serve exited (code %d) before ready; log:\n%s",
                      exit_code(d->status), daemon_log_tail(d));
        ck_assert_msg(now_ms() < end, "GET /ready still %ld after %d ms; log:\n%s", last,
                      timeout_ms, daemon_log_tail(d));
        sleep_ms(20);
    }
}

struct daemon *daemon_start(const char *yaml, const char *api_key)
{
    struct daemon *d = daemon_new(yaml);
    if (api_key)
        snprintf(d->auth, sizeof d->auth, "Authorization: Bearer %s", api_key);
    daemon_exec(d, NULL);
    daemon_wait_listening(d, 30000);
    daemon_wait_ready(d, 60000);
    return d;
}

void daemon_persist(struct daemon *d)
{
    untrack(d);
}

struct daemon *daemon_start_shared(char *yaml)
{
    struct daemon *d = daemon_start(yaml, NULL);
    daemon_persist(d);
    free(yaml);
    return d;
}

static void kill_and_reap(struct daemon *d)
{
    if (daemon_alive(d))
        kill(d->pid, SIGKILL);
    if (d->pid > 0 && !d->reaped && waitpid(d->pid, &d->status, 0) == d->pid)
        d->reaped = true;
}

void daemon_stop(struct daemon *d)
{
    if (!d)
        return;
    kill_and_reap(d);
    untrack(d);
    free(d); /* DIR is a temp_dir: it goes with its process unless a test failed */
}

void serve_teardown(void)
{
    raw_close_all();
    for (size_t i = 0; i < sizeof live / sizeof live[0]; i++) {
        if (live[i]) {
            kill_and_reap(live[i]);
            fprintf(stderr, "serve_support: killed a leftover daemon; its files: %s\n",
                    live[i]->dir);
            free(live[i]);
            live[i] = NULL;
        }
    }
}

/* ---- HTTP to a daemon ---- */

struct http_reply *daemon_post(const struct daemon *d, const char *path, json_t *body)
{
    return http_json(d->port, "POST", path, body, d->auth);
}

struct http_reply *daemon_get(const struct daemon *d, const char *path)
{
    return http_request(d->port, "GET", path, NULL, d->auth);
}
