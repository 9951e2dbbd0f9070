/* test_nginx: deploy/nginx/inferd.conf on Debian's nginx in front of three real inferd
 * instances (the spam classifier, workers 1, threads 1) on loopback. nginx runs as a private
 * instance (`nginx -p DIR -c DIR/nginx.conf -g 'daemon off;'`, pid, logs and temp files in a
 * temp dir, a free loopback port), with the shipped file included as it is but for its
 * `server` and `listen` addresses. Eight clients keep requests in flight for ten seconds; at
 * 3 s one instance gets SIGTERM (it drains and exits 0), at 4 s another gets SIGKILL. Every
 * request must get 200 with the answer its email got before the faults (itself checked
 * against Hugging Face's); the test prints the request count and latency percentiles before
 * and during the faults, and how many requests nginx had to resend. Skipped, with a notice,
 * only where nginx is not installed. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "integration/serve_expect.h"
#include "integration/serve_support.h"
#include "integration/spam_emails.h"
#include "suites.h"
#include "support/support.h"

#define N_INSTANCES 3
#define N_CLIENTS 8
#define RUN_S 10.0     /* seconds of load */
#define SIGTERM_AT 3.0 /* seconds into the run */
#define SIGKILL_AT 4.0
#define ANSWER_TOL 1e-5 /* the same email's score before and after (batches differ) */

/* ---- nginx, a private instance ---- */

static pid_t nginx_pid = -1;

static const char *nginx_exe(void)
{
    static const char *const paths[] = {"/usr/sbin/nginx", "/usr/local/sbin/nginx",
                                        "/usr/bin/nginx", "/usr/local/nginx/sbin/nginx"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

/* Stops nginx (SIGQUIT: graceful, then SIGKILL after 10 s); returns its wait status. */
static int nginx_stop(void)
{
    if (nginx_pid <= 0)
        return 0;
    int st = 0;
    kill(nginx_pid, SIGQUIT);
    long long end = now_ms() + 10000;
    while (waitpid(nginx_pid, &st, WNOHANG) == 0) {
        if (now_ms() > end) {
            kill(nginx_pid, SIGKILL);
            waitpid(nginx_pid, &st, 0);
            break;
        }
        sleep_ms(10);
    }
    nginx_pid = -1;
    return st;
}

/* A checked teardown: nginx never outlives its test. */
static void nginx_teardown(void)
{
    nginx_stop();
    serve_teardown();
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* The shipped site file with its addresses moved to loopback: the first `server` line of the
 * upstream becomes one line per instance port (its parameters kept), the first `listen` line
 * `listen 127.0.0.1:PORT`; the other server and listen lines go. Comments stay. */
static char *site_conf(const int *ports, size_t n, int listen_port)
{
    char *text = read_file(INFERD_SOURCE_DIR "/deploy/nginx/inferd.conf", NULL);
    ck_assert_msg(text != NULL, "cannot read deploy/nginx/inferd.conf");
    size_t cap = strlen(text) + 4096, len = 0;
    char *out = malloc(cap);
    ck_assert_ptr_nonnull(out);
    bool in_upstream = false, servers_done = false, listen_done = false;
    int n_servers = 0, n_listen = 0;
    for (char *line = text; *line;) {
        size_t ll = strcspn(line, "\n");
        const char *p = line + strspn(line, " \t");
        char word[16] = "";
        sscanf(p, "%15[a-z_]", word);
        if (strcmp(word, "upstream") == 0)
            in_upstream = true;
        if (in_upstream && *p == '}')
            in_upstream = false;
        bool is_server = in_upstream && strcmp(word, "server") == 0;
        bool is_listen = strcmp(word, "listen") == 0;
        if (is_server) {
            n_servers++;
            const char *params = p + 6 + strspn(p + 6, " \t");
            params += strcspn(params, " \t;"); /* past the address */
            int plen = (int)(line + ll - params);
            for (size_t i = 0; i < n && !servers_done; i++)
                len += (size_t)snprintf(out + len, cap - len, "    server 127.0.0.1:%d%.*s\n",
                                        ports[i], plen, params);
            servers_done = true;
        } else if (is_listen) {
            n_listen++;
            if (!listen_done)
                len += (size_t)snprintf(out + len, cap - len, "    listen 127.0.0.1:%d;\n",
                                        listen_port);
            listen_done = true;
        } else {
            len += (size_t)snprintf(out + len, cap - len, "%.*s\n", (int)ll, line);
        }
        ck_assert_uint_lt(len, cap);
        line += ll + (line[ll] ? 1 : 0);
    }
    free(text);
    ck_assert_msg(n_servers >= 1 && n_listen >= 1,
                  "deploy/nginx/inferd.conf: no upstream server line or no listen line");
    return out;
}

/* Starts nginx on dir with the site file in front of ports; returns nginx's port once a GET
 * /health through it answers 200. */
static int nginx_start(const char *nginx, const char *dir, const int *ports, size_t n)
{
    char path[600], conf[600], main_conf[6000], log[600];
    snprintf(path, sizeof path, "%s/tmp", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(conf, sizeof conf, "%s/nginx.conf", dir);
    snprintf(log, sizeof log, "%s/error.log", dir);
    for (int attempt = 0; attempt < 3; attempt++) {
        int port = free_port();
        char *site = site_conf(ports, n, port);
        snprintf(path, sizeof path, "%s/inferd.conf", dir);
        write_text(path, site);
        free(site);
        /* root starts workers as an unprivileged user (the default, nobody, has no group of
         * that name on Debian); anyone else runs them as themselves */
        snprintf(main_conf, sizeof main_conf,
                 "%s"
                 "worker_processes 1;\n"
                 "pid %s/nginx.pid;\n"
                 "error_log %s info;\n"
                 "events { worker_connections 1024; }\n"
                 "http {\n"
                 "    log_format lb '$status $request_time \"$upstream_addr\" "
                 "\"$upstream_status\"';\n"
                 "    access_log %s/access.log lb;\n"
                 "    client_body_temp_path %s/tmp/body;\n"
                 "    proxy_temp_path %s/tmp/proxy;\n"
                 "    fastcgi_temp_path %s/tmp/fastcgi;\n"
                 "    uwsgi_temp_path %s/tmp/uwsgi;\n"
                 "    scgi_temp_path %s/tmp/scgi;\n"
                 "    include %s/inferd.conf;\n"
                 "}\n",
                 geteuid() == 0 ? "user nobody nogroup;\n" : "", dir, log, dir, dir, dir, dir, dir,
                 dir, dir);
        write_text(conf, main_conf);
        fflush(NULL);
        pid_t parent = getpid();
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM); /* the master stops its workers on SIGTERM */
            if (getppid() != parent)
                _exit(127);
            int in = open("/dev/null", O_RDONLY);
            snprintf(path, sizeof path, "%s/nginx.out", dir);
            int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (in < 0 || out < 0)
                _exit(127);
            dup2(in, 0);
            dup2(out, 1);
            dup2(out, 2);
            for (int fd = 3; fd < 1024; fd++)
                close(fd);
            sigset_t none;
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, NULL);
            execl(nginx, "nginx", "-p", dir, "-c", conf, "-e", log, "-g", "daemon off;",
                  (char *)NULL);
            _exit(127);
        }
        nginx_pid = pid;
        long long end = now_ms() + 15000;
        while (now_ms() < end) {
            int st;
            if (waitpid(pid, &st, WNOHANG) == pid) {
                nginx_pid = -1;
                break;
            }
            struct http_reply *r = http_request(port, "GET", "/health", NULL, NULL);
            long status = r->status;
            http_reply_free(r);
            if (status == 200)
                return port;
            sleep_ms(20);
        }
        char *text = read_file(log, NULL), out_path[600];
        snprintf(out_path, sizeof out_path, "%s/nginx.out", dir);
        char *out = read_file(out_path, NULL);
        bool port_taken = (text && strstr(text, "Address already in use")) ||
                          (out && strstr(out, "Address already in use"));
        if (!port_taken || attempt == 2)
            ck_abort_msg("nginx did not come up on port %d:\n%s\n%s", port, out ? out : "",
                         text ? text : "");
        free(text);
        free(out);
        nginx_stop(); /* another process took the port meanwhile: try another */
    }
    return 0;
}

/* ---- the load: N_CLIENTS keep-alive clients, one request in flight each ---- */

struct client {
    CURL *h;
    struct curl_slist *hdrs;
    char *body;
    size_t body_len, cap;
    size_t email;
    double t0; /* seconds since the run began, when the request was sent */
};

struct result {
    double t0, ms;
};

struct run {
    double start; /* monotonic seconds */
    struct result *v;
    size_t n, cap;
    size_t failed;
    char first_failures[2000];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static size_t on_body(char *p, size_t size, size_t n, void *user)
{
    struct client *c = user;
    size_t add = size * n;
    if (c->body_len + add + 1 > c->cap) {
        c->cap = (c->body_len + add + 1) * 2;
        c->body = realloc(c->body, c->cap);
        ck_assert_ptr_nonnull(c->body);
    }
    memcpy(c->body + c->body_len, p, add);
    c->body_len += add;
    c->body[c->body_len] = '\0';
    return add;
}

static void client_init(struct client *c, int port)
{
    char url[100];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/models/spam", port);
    c->h = curl_easy_init();
    ck_assert_ptr_nonnull(c->h);
    c->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    c->hdrs = curl_slist_append(c->hdrs, "Expect:");
    curl_easy_setopt(c->h, CURLOPT_URL, url);
    curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->hdrs);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->h, CURLOPT_PRIVATE, c);
}

static void client_send(CURLM *m, struct client *c, const struct email *e, struct run *run)
{
    c->body_len = 0;
    curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, e->body);
    curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(e->body));
    c->t0 = now_s() - run->start;
    ck_assert_int_eq(curl_multi_add_handle(m, c->h), CURLM_OK);
}

/* One answer: recorded, and checked against want. */
static void client_done(struct client *c, CURLcode rc, const json_t *want, struct run *run)
{
    double ms = (now_s() - run->start - c->t0) * 1e3;
    if (run->n == run->cap) {
        run->cap = run->cap ? 2 * run->cap : 4096;
        run->v = realloc(run->v, run->cap * sizeof *run->v);
        ck_assert_ptr_nonnull(run->v);
    }
    run->v[run->n++] = (struct result){c->t0, ms};
    long status = 0;
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
    char why[700] = "";
    bool ok = rc == CURLE_OK && status == 200;
    if (ok) {
        json_t *got = json_loadb(c->body ? c->body : "", c->body_len, 0, NULL);
        ok = got && close_json(got, want, ANSWER_TOL, why, sizeof why);
        json_decref(got);
    }
    if (!ok) {
        size_t at = strlen(run->first_failures);
        if (run->failed < 5)
            snprintf(run->first_failures + at, sizeof run->first_failures - at,
                     "  at %.2f s: %s, HTTP %ld: %.200s %s\n", c->t0,
                     rc == CURLE_OK ? "ok" : curl_easy_strerror(rc), status,
                     c->body_len ? c->body : "", why);
        run->failed++;
    }
}

static int by_ms(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Latencies of the requests sent in [from, to) seconds: count, p50, p99, max (ms). */
static size_t percentiles(const struct run *run, double from, double to, double *p50, double *p99,
                          double *max)
{
    double *ms = malloc((run->n + 1) * sizeof *ms);
    ck_assert_ptr_nonnull(ms);
    size_t n = 0;
    for (size_t i = 0; i < run->n; i++)
        if (run->v[i].t0 >= from && run->v[i].t0 < to)
            ms[n++] = run->v[i].ms;
    qsort(ms, n, sizeof *ms, by_ms);
    *p50 = n ? ms[(n - 1) / 2] : 0;
    *p99 = n ? ms[(size_t)((double)n * 0.99 + 0.999999) - 1] : 0;
    *max = n ? ms[n - 1] : 0;
    free(ms);
    return n;
}

/* ---- the test ---- */

/* How many access-log lines show a request resent to another instance ("502, 200"), and
 * which instance ports answered at least once before the faults. */
static size_t count_resent(const char *dir, const int *ports, bool *seen)
{
    char path[600];
    snprintf(path, sizeof path, "%s/access.log", dir);
    char *log = read_file(path, NULL);
    ck_assert_ptr_nonnull(log);
    size_t resent = 0;
    for (char *line = log; *line;) {
        size_t ll = strcspn(line, "\n");
        char *addr = strchr(line, '"');
        if (addr && addr < line + ll) {
            char *comma = memchr(addr, ',', (size_t)(line + ll - addr));
            resent += comma != NULL;
            for (size_t i = 0; i < N_INSTANCES; i++) {
                char want[32];
                snprintf(want, sizeof want, "127.0.0.1:%d", ports[i]);
                char *at = strstr(addr, want);
                seen[i] = seen[i] || (at && at < line + ll);
            }
        }
        line += ll + (line[ll] ? 1 : 0);
    }
    free(log);
    return resent;
}

START_TEST(failover_under_load)
{
    const char *nginx = nginx_exe();
    if (!nginx) {
        fprintf(stderr, "nginx: SKIPPED: nginx is not installed (apt-get install nginx); "
                        "deploy/nginx/inferd.conf was not exercised\n");
        return;
    }
    struct daemon *d[N_INSTANCES];
    int ports[N_INSTANCES];
    for (size_t i = 0; i < N_INSTANCES; i++) {
        char *yaml = yaml_config(
            NULL, yaml_model("spam", "spam-bert-tiny", "text-classification", NULL), NULL);
        d[i] = daemon_start(yaml, NULL);
        free(yaml);
        ports[i] = d[i]->port;
    }
    /* each email's answer before any fault, straight from an instance, checked against HF */
    struct email *mails;
    size_t n_mails = emails_load(6, 6, &mails);
    ck_assert_uint_eq(n_mails, 12);
    json_t **want = calloc(n_mails, sizeof *want);
    ck_assert_ptr_nonnull(want);
    for (size_t i = 0; i < n_mails; i++) {
        struct http_reply *r =
            http_request(ports[i % N_INSTANCES], "POST", "/models/spam", mails[i].body, NULL);
        char what[80];
        snprintf(what, sizeof what, "email %zu before the faults", i);
        expect_email(r, &mails[i], what);
        want[i] = json_incref(r->json);
        http_reply_free(r);
    }

    const char *dir = temp_dir();
    char nginx_dir[300];
    snprintf(nginx_dir, sizeof nginx_dir, "%s", dir);
    int port = nginx_start(nginx, nginx_dir, ports, N_INSTANCES);

    struct run run = {.start = now_s()};
    CURLM *m = curl_multi_init();
    struct client clients[N_CLIENTS] = {0};
    size_t next = 0;
    for (size_t i = 0; i < N_CLIENTS; i++) {
        client_init(&clients[i], port);
        clients[i].email = next++ % n_mails;
        client_send(m, &clients[i], &mails[clients[i].email], &run);
    }
    bool termed = false, killed = false;
    int running = N_CLIENTS;
    while (running > 0) {
        double t = now_s() - run.start;
        if (!termed && t >= SIGTERM_AT) {
            daemon_signal(d[1], SIGTERM);
            termed = true;
        }
        if (!killed && t >= SIGKILL_AT) {
            daemon_signal(d[2], SIGKILL);
            killed = true;
        }
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct client *c = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
            CURLcode rc = msg->data.result;
            curl_multi_remove_handle(m, c->h);
            client_done(c, rc, want[c->email], &run);
            if (now_s() - run.start < RUN_S) {
                c->email = next++ % n_mails;
                client_send(m, c, &mails[c->email], &run);
                running++;
            }
        }
        if (running > 0)
            curl_multi_poll(m, NULL, 0, 10, NULL);
    }
    for (size_t i = 0; i < N_CLIENTS; i++) {
        curl_easy_cleanup(clients[i].h);
        curl_slist_free_all(clients[i].hdrs);
        free(clients[i].body);
    }
    curl_multi_cleanup(m);

    double b50, b99, bmax, f50, f99, fmax;
    size_t n_before = percentiles(&run, 0, SIGTERM_AT, &b50, &b99, &bmax);
    size_t n_faults = percentiles(&run, SIGTERM_AT, 1e9, &f50, &f99, &fmax);
    bool seen[N_INSTANCES] = {false};
    size_t resent = count_resent(nginx_dir, ports, seen);
    fprintf(stderr,
            "nginx: %zu requests in %.0f s through nginx to %d inferd instances (%d clients), "
            "%zu failed; SIGTERM to one at %.0f s, SIGKILL to another at %.0f s\n"
            "nginx:   before the faults: %zu requests, latency p50 %.1f ms, p99 %.1f ms, max "
            "%.1f ms\n"
            "nginx:   during the faults: %zu requests, latency p50 %.1f ms, p99 %.1f ms, max "
            "%.1f ms; %zu resent by nginx to another instance\n",
            run.n, RUN_S, N_INSTANCES, N_CLIENTS, run.failed, SIGTERM_AT, SIGKILL_AT, n_before, b50,
            b99, bmax, n_faults, f50, f99, fmax, resent);
    ck_assert_msg(run.failed == 0, "%zu of %zu requests failed; the first:\n%s", run.failed, run.n,
                  run.first_failures);
    ck_assert_msg(n_before >= 10 && n_faults >= 20, "too little load: %zu before, %zu during",
                  n_before, n_faults);
    for (size_t i = 0; i < N_INSTANCES; i++)
        ck_assert_msg(seen[i], "instance %zu (port %d) never answered through nginx", i, ports[i]);

    /* the SIGTERM'd instance drained and exited 0; the survivor still does */
    ck_assert_int_eq(daemon_wait_exit(d[1], 30000), 0);
    expect_clean_log(d[1]);
    int st = nginx_stop();
    char path[600];
    snprintf(path, sizeof path, "%s/error.log", nginx_dir);
    char *log = read_file(path, NULL);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "nginx exit status %d:\n%s", st,
                  log ? log : "");
    ck_assert_msg(!log || (!strstr(log, "[emerg]") && !strstr(log, "[alert]") &&
                           !strstr(log, "no live upstreams")),
                  "nginx's error log:\n%s", log);
    free(log);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", nginx_dir); /* kept when the test fails */
    ck_assert_int_eq(system(cmd), 0);
    daemon_shutdown(d[0]);
    for (size_t i = 0; i < N_INSTANCES; i++)
        daemon_stop(d[i]);
    for (size_t i = 0; i < n_mails; i++)
        json_decref(want[i]);
    free(want);
    emails_free(mails, n_mails);
    free(run.v);
}
END_TEST

Suite *suite_nginx(void)
{
    Suite *s = suite_create("nginx");
    TCase *tc = tcase_create("failover");
    tcase_set_timeout(tc, 180);
    tcase_add_checked_fixture(tc, NULL, nginx_teardown);
    tcase_add_test(tc, failover_under_load);
    suite_add_tcase(s, tc);
    return s;
}
