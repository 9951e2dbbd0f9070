/* load: a small HTTP/1.1 load client for `inferd serve` (bench/run_load.sh drives it).
 *
 *   bench-load --url http://127.0.0.1:PORT/models/spam --bodies FILE.jsonl
 *              --connections C --duration S [--warmup S]
 *
 * C keep-alive connections on one thread (epoll). Each connection POSTs the next body
 * (round-robin over the file's lines; every line is one complete JSON request body), waits
 * for the whole response (Content-Length, chunked, or until close), records the latency and
 * sends the next one: a closed loop, so C is also the number of requests in flight.
 * Responses completed during the warmup are not counted. Every response must be HTTP 200;
 * other statuses and broken connections count as errors, and the first error body is printed
 * on stderr. A connection the server closes is reopened (counted in "reconnects").
 *
 * Prints one JSON line on stdout: connections, requests, errors, seconds, rps, p50_ms,
 * p90_ms, p99_ms, mean_ms, max_ms (client-side latency: first byte sent to last byte
 * received), non_200 and socket_errors (the two kinds of errors), reconnects, stalled
 * (requests unanswered at the end after more than 5 s: a hang), and the mean of each of the
 * server's timing headers over the counted 200 responses that carried it:
 * "x-tokenization-time", "x-queue-time", "x-inference-time", "x-total-time" (ms) and
 * "x-batch-size"; and client_cpu_s, this process's CPU time (warmup included). --log FILE also
 * writes one line per counted 200 response: seconds since the measurement began, latency (ms), the
 * body's line (from 0) and those headers. Exit status: 0, 1 when any request failed or none
 * completed, 2 on bad options or an unreadable bodies file. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The server timing headers averaged in the report, in output order. */
static const char *const timing_headers[] = {"x-tokenization-time", "x-queue-time",
                                             "x-inference-time", "x-total-time", "x-batch-size"};
#define N_TIMING (sizeof timing_headers / sizeof timing_headers[0])

/* A connection that could not connect or broke waits this long before the next try, so a
 * dead server does not turn the client into a busy loop. */
#define RETRY_DELAY_S 0.01

struct opts {
    const char *url, *bodies, *log;
    int connections;
    double duration_s, warmup_s;
};

/* The prebuilt requests, one per body line: request line, headers and body. */
struct requests {
    char **text;
    size_t *len;
    size_t n, next; /* next: the round-robin cursor shared by every connection */
};

enum conn_state { CONN_IDLE, CONN_CONNECTING, CONN_SENDING, CONN_READING };

/* One keep-alive connection and the response it is reading. */
struct conn {
    int fd;
    uint32_t events; /* what epoll watches for on fd */
    enum conn_state state;
    double retry_at_s; /* CONN_IDLE: when to (re)connect */
    const char *req;   /* the request being sent (borrowed from struct requests) */
    size_t body;       /* its line in the bodies file, from 0 */
    size_t req_len, sent;
    double start_s; /* when the request's first byte went out */
    char *buf;      /* the response bytes so far */
    size_t len, cap;
    /* parsed once the head is complete */
    size_t head_len; /* bytes up to and including the blank line; 0 while incomplete */
    int status;
    long content_length; /* -1: none */
    bool chunked, close_after;
    size_t chunk_pos; /* chunked: offset of the next chunk-size line */
    double timing[N_TIMING];
    bool has_timing[N_TIMING];
};

/* What the run measured. */
struct stats {
    double *lat_ms;
    size_t n, cap;
    long non_200, socket_errors, reconnects;
    double timing_sum[N_TIMING];
    long timing_n[N_TIMING];
    bool printed_error;
    FILE *log; /* --log: one line per counted response */
    double t0; /* when the measurement started */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "bench-load: out of memory\n");
        abort();
    }
    return q;
}

/* ---- options, URL, bodies ---- */

static int parse_num(const char *name, const char *v, double lo, double hi, double *out)
{
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end || d < lo || d > hi) {
        fprintf(stderr, "bench-load: %s must be a number in %g..%g, not '%s'\n", name, lo, hi, v);
        return -1;
    }
    *out = d;
    return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.connections = 1, .duration_s = 10, .warmup_s = 2};
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d;
        if (!v) {
            fprintf(stderr, "bench-load: missing value for '%s'\n", a);
            return -1;
        }
        if (strcmp(a, "--url") == 0) {
            o->url = v;
        } else if (strcmp(a, "--bodies") == 0) {
            o->bodies = v;
        } else if (strcmp(a, "--log") == 0) {
            o->log = v;
        } else if (strcmp(a, "--connections") == 0) {
            if (parse_num(a, v, 1, 10000, &d))
                return -1;
            o->connections = (int)d;
        } else if (strcmp(a, "--duration") == 0) {
            if (parse_num(a, v, 0.1, 86400, &o->duration_s))
                return -1;
        } else if (strcmp(a, "--warmup") == 0) {
            if (parse_num(a, v, 0, 3600, &o->warmup_s))
                return -1;
        } else {
            fprintf(stderr, "bench-load: unknown option '%s'\n", a);
            return -1;
        }
    }
    if (!o->url || !o->bodies) {
        fprintf(stderr, "usage: bench-load --url http://HOST:PORT/PATH --bodies FILE.jsonl "
                        "[--connections C] [--duration S] [--warmup S] [--log FILE]\n");
        return -1;
    }
    return 0;
}

/* Splits http://HOST[:PORT][/PATH] and resolves HOST (IPv4 or IPv6). */
static int resolve_url(const char *url, struct sockaddr_storage *addr, socklen_t *addr_len,
                       char *hostport, size_t hp_size, const char **path)
{
    if (strncmp(url, "http://", 7) != 0) {
        fprintf(stderr, "bench-load: --url must start with http:// (got '%s')\n", url);
        return -1;
    }
    const char *h = url + 7, *slash = strchr(h, '/');
    *path = slash ? slash : "/";
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    if (hl == 0 || hl >= hp_size) {
        fprintf(stderr, "bench-load: no host in --url '%s'\n", url);
        return -1;
    }
    memcpy(hostport, h, hl);
    hostport[hl] = '\0';
    char host[256], port[16] = "80";
    const char *colon = strrchr(hostport, ':'), *bracket = strchr(hostport, ']');
    size_t host_len = colon && (!bracket || colon > bracket) ? (size_t)(colon - hostport) : hl;
    if (host_len < hl)
        snprintf(port, sizeof port, "%s", colon + 1);
    if (host_len >= sizeof host)
        host_len = sizeof host - 1;
    memcpy(host, hostport, host_len);
    host[host_len] = '\0';
    if (host[0] == '[') { /* [::1] */
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = '\0';
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc) {
        fprintf(stderr, "bench-load: cannot resolve '%s' port %s: %s\n", host, port,
                gai_strerror(rc));
        return -1;
    }
    memcpy(addr, ai->ai_addr, ai->ai_addrlen);
    *addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

/* Reads FILE's non-empty lines and builds one complete POST request per line. */
static int load_requests(const char *file, const char *path, const char *hostport,
                         struct requests *r)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        fprintf(stderr, "bench-load: cannot open %s: %s\n", file, strerror(errno));
        return -1;
    }
    *r = (struct requests){0};
    size_t cap = 0, lcap = 0;
    char *line = NULL;
    ssize_t n;
    while ((n = getline(&line, &lcap, f)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0)
            continue;
        if (r->n == cap) {
            cap = cap ? cap * 2 : 256;
            r->text = xrealloc(r->text, cap * sizeof *r->text);
            r->len = xrealloc(r->len, cap * sizeof *r->len);
        }
        char head[1024];
        int hn = snprintf(head, sizeof head,
                          "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                          "Content-Length: %zd\r\n\r\n",
                          path, hostport, n);
        if (hn < 0 || (size_t)hn >= sizeof head) {
            fprintf(stderr, "bench-load: URL path too long\n");
            fclose(f);
            free(line);
            return -1;
        }
        char *req = xrealloc(NULL, (size_t)hn + (size_t)n);
        memcpy(req, head, (size_t)hn);
        memcpy(req + hn, line, (size_t)n);
        r->text[r->n] = req;
        r->len[r->n++] = (size_t)hn + (size_t)n;
    }
    free(line);
    fclose(f);
    if (r->n == 0) {
        fprintf(stderr, "bench-load: %s has no request bodies\n", file);
        return -1;
    }
    return 0;
}

/* ---- response parsing ---- */

static const char *memfind(const char *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0)
            return hay + i;
    return NULL;
}

/* Parses the status line and headers once "\r\n\r\n" has arrived; -1 if malformed. */
static int parse_head(struct conn *c)
{
    const char *end = memfind(c->buf, c->len, "\r\n\r\n");
    if (!end)
        return 0;
    c->head_len = (size_t)(end - c->buf) + 4;
    c->content_length = -1;
    c->chunked = false;
    c->close_after = false;
    memset(c->has_timing, 0, sizeof c->has_timing);
    int minor;
    if (sscanf(c->buf, "HTTP/1.%d %d", &minor, &c->status) != 2)
        return -1;
    if (minor == 0)
        c->close_after = true; /* HTTP/1.0 closes unless told otherwise; we never are */
    for (const char *p = strstr(c->buf, "\r\n") + 2; p < end;) {
        const char *eol = memfind(p, (size_t)(end + 2 - p), "\r\n");
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon) {
            size_t nl = (size_t)(colon - p);
            const char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            if (nl == 14 && strncasecmp(p, "content-length", nl) == 0)
                c->content_length = strtol(v, NULL, 10);
            else if (nl == 17 && strncasecmp(p, "transfer-encoding", nl) == 0)
                c->chunked = strncasecmp(v, "chunked", 7) == 0;
            else if (nl == 10 && strncasecmp(p, "connection", nl) == 0)
                c->close_after = strncasecmp(v, "close", 5) == 0;
            for (size_t k = 0; k < N_TIMING; k++)
                if (nl == strlen(timing_headers[k]) && strncasecmp(p, timing_headers[k], nl) == 0) {
                    c->timing[k] = strtod(v, NULL);
                    c->has_timing[k] = true;
                }
        }
        p = eol + 2;
    }
    c->chunk_pos = c->head_len;
    return 0;
}

/* Walks the chunks received so far; 1 when the last chunk (and trailers) arrived. */
static int chunked_done(struct conn *c)
{
    for (;;) {
        const char *p = c->buf + c->chunk_pos;
        size_t avail = c->len - c->chunk_pos;
        const char *eol = memfind(p, avail, "\r\n");
        if (!eol)
            return 0;
        unsigned long size = strtoul(p, NULL, 16);
        size_t data = (size_t)(eol - c->buf) + 2;
        if (size == 0) { /* last chunk: then "\r\n" or trailer lines and "\r\n" */
            if (c->len >= data + 2 && memcmp(c->buf + data, "\r\n", 2) == 0)
                return 1;
            return memfind(c->buf + data, c->len - data, "\r\n\r\n") != NULL;
        }
        if (c->len < data + size + 2)
            return 0;
        c->chunk_pos = data + size + 2;
    }
}

/* 1 when the whole response is in c->buf, 0 when more is needed, -1 if malformed. */
static int response_complete(struct conn *c)
{
    if (!c->head_len && parse_head(c))
        return -1;
    if (!c->head_len)
        return 0;
    if (c->status == 204 || c->status == 304 || (c->status >= 100 && c->status < 200))
        return 1;
    if (c->chunked)
        return chunked_done(c);
    if (c->content_length >= 0)
        return c->len >= c->head_len + (size_t)c->content_length;
    return 0; /* no length: the body ends when the server closes */
}

/* ---- connections ---- */

/* Watches c->fd for events (one epoll_ctl call, and none when nothing changes). */
static void conn_watch(struct conn *c, int epfd, uint32_t events)
{
    if (c->events == events)
        return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(epfd, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev);
    c->events = events;
}

static void conn_reset(struct conn *c, int epfd)
{
    if (c->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->events = 0;
    c->state = CONN_IDLE;
    c->len = 0;
    c->head_len = 0;
}

static void record_error(struct stats *st, const char *what, const struct conn *c)
{
    if (st->printed_error)
        return;
    st->printed_error = true;
    fprintf(stderr, "bench-load: first error: %s", what);
    if (c && c->head_len) {
        size_t body = c->len - c->head_len;
        fprintf(stderr, ": HTTP %d: %.*s", c->status, (int)(body > 2000 ? 2000 : body),
                c->buf + c->head_len);
    }
    fputc('\n', stderr);
}

/* Starts the next request on a connected socket. */
static void send_next(struct conn *c, struct requests *r, int epfd)
{
    size_t i = r->next++ % r->n;
    c->body = i;
    c->req = r->text[i];
    c->req_len = r->len[i];
    c->sent = 0;
    c->len = 0;
    c->head_len = 0;
    c->start_s = now_s();
    c->state = CONN_SENDING;
    /* try at once: the request almost always fits the socket buffer */
    ssize_t w = send(c->fd, c->req, c->req_len, MSG_NOSIGNAL);
    if (w > 0)
        c->sent = (size_t)w;
    if (c->sent == c->req_len)
        c->state = CONN_READING;
    conn_watch(c, epfd, c->state == CONN_READING ? EPOLLIN : EPOLLOUT);
}

static int conn_open(struct conn *c, const struct sockaddr_storage *addr, socklen_t addr_len,
                     int epfd)
{
    c->fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (const struct sockaddr *)addr, addr_len) && errno != EINPROGRESS) {
        int saved = errno;
        close(c->fd);
        c->fd = -1;
        errno = saved;
        return -1;
    }
    c->state = CONN_CONNECTING;
    conn_watch(c, epfd, EPOLLOUT);
    return 0;
}

/* A response finished: record it, then send the next request or reconnect. */
static void finish_response(struct conn *c, struct stats *st, struct requests *r, int epfd,
                            double t, double measure_from)
{
    if (t >= measure_from) {
        if (c->status != 200) {
            st->non_200++;
            record_error(st, "non-200 response", c);
        } else {
            if (st->n == st->cap) {
                st->cap = st->cap ? st->cap * 2 : 65536;
                st->lat_ms = xrealloc(st->lat_ms, st->cap * sizeof *st->lat_ms);
            }
            st->lat_ms[st->n++] = (t - c->start_s) * 1e3;
            if (st->log) {
                fprintf(st->log, "%.3f %.3f %zu", t - st->t0, (t - c->start_s) * 1e3, c->body);
                for (size_t k = 0; k < N_TIMING; k++)
                    fprintf(st->log, c->has_timing[k] ? " %g" : " -", c->timing[k]);
                fputc('\n', st->log);
            }
            for (size_t k = 0; k < N_TIMING; k++)
                if (c->has_timing[k]) {
                    st->timing_sum[k] += c->timing[k];
                    st->timing_n[k]++;
                }
        }
    }
    if (c->close_after) {
        st->reconnects++;
        conn_reset(c, epfd);
        c->retry_at_s = 0; /* reconnect at once */
    } else {
        send_next(c, r, epfd);
    }
}

/* The connection broke (reset, EOF mid-response, malformed reply). */
static void conn_failed(struct conn *c, struct stats *st, int epfd, const char *what, double t,
                        double measure_from)
{
    if (t >= measure_from) {
        st->socket_errors++;
        record_error(st, what, c);
    }
    conn_reset(c, epfd);
    c->retry_at_s = t + RETRY_DELAY_S;
}

/* Handles readiness on one connection. */
static void on_event(struct conn *c, uint32_t events, struct stats *st, struct requests *r,
                     int epfd, double measure_from)
{
    double t = now_s();
    if (c->state == CONN_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err || (events & (EPOLLERR | EPOLLHUP))) {
            conn_failed(c, st, epfd, err ? strerror(err) : "connect failed", t, measure_from);
            return;
        }
        send_next(c, r, epfd);
        return;
    }
    if (c->state == CONN_SENDING) {
        ssize_t w = send(c->fd, c->req + c->sent, c->req_len - c->sent, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            conn_failed(c, st, epfd, strerror(errno), t, measure_from);
            return;
        }
        if (w > 0)
            c->sent += (size_t)w;
        if (c->sent == c->req_len) {
            c->state = CONN_READING;
            conn_watch(c, epfd, EPOLLIN);
        }
        return;
    }
    if (c->state != CONN_READING)
        return;
    for (;;) {
        if (c->cap - c->len < 4096) {
            c->cap = c->cap ? c->cap * 2 : 16384;
            c->buf = xrealloc(c->buf, c->cap + 1);
        }
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n < 0) {
            conn_failed(c, st, epfd, strerror(errno), t, measure_from);
            return;
        }
        bool eof = n == 0;
        c->len += (size_t)n;
        c->buf[c->len] = '\0';
        int done = response_complete(c);
        if (done < 0) {
            conn_failed(c, st, epfd, "malformed response", t, measure_from);
            return;
        }
        if (!done && eof && c->head_len && !c->chunked && c->content_length < 0) {
            c->close_after = true; /* body delimited by close */
            done = 1;
        }
        if (done) {
            finish_response(c, st, r, epfd, now_s(), measure_from);
            return;
        }
        if (eof) {
            conn_failed(c, st, epfd,
                        c->len ? "connection closed mid-response"
                               : "connection closed before any response",
                        t, measure_from);
            return;
        }
    }
}

/* ---- report ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The p-th percentile (nearest rank) of sorted v[0..n). */
static double percentile(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    return v[(rank > n ? n : rank) - 1];
}

/* Requests still unanswered at the end that had waited over STALLED_S: a hang, not load. */
#define STALLED_S 5.0

static void report(const struct opts *o, struct stats *st, double seconds, long stalled)
{
    qsort(st->lat_ms, st->n, sizeof *st->lat_ms, cmp_double);
    double sum = 0;
    for (size_t i = 0; i < st->n; i++)
        sum += st->lat_ms[i];
    long errors = st->non_200 + st->socket_errors;
    printf("{\"connections\": %d, \"requests\": %zu, \"errors\": %ld, \"non_200\": %ld, "
           "\"socket_errors\": %ld, \"reconnects\": %ld, \"seconds\": %.3f, \"rps\": %.2f, "
           "\"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, \"mean_ms\": %.3f, "
           "\"max_ms\": %.3f, \"stalled\": %ld",
           o->connections, st->n, errors, st->non_200, st->socket_errors, st->reconnects, seconds,
           (double)st->n / seconds, percentile(st->lat_ms, st->n, 50),
           percentile(st->lat_ms, st->n, 90), percentile(st->lat_ms, st->n, 99),
           st->n ? sum / (double)st->n : 0.0, st->n ? st->lat_ms[st->n - 1] : 0.0, stalled);
    for (size_t k = 0; k < N_TIMING; k++)
        if (st->timing_n[k])
            printf(", \"%s\": %.3f", timing_headers[k],
                   st->timing_sum[k] / (double)st->timing_n[k]);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf(", \"client_cpu_s\": %.3f",
           (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6);
    printf("}\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse_opts(argc, argv, &o))
        return 2;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char hostport[300];
    const char *path;
    struct requests reqs;
    if (resolve_url(o.url, &addr, &addr_len, hostport, sizeof hostport, &path) ||
        load_requests(o.bodies, path, hostport, &reqs))
        return 2;

    int epfd = epoll_create1(EPOLL_CLOEXEC);
    struct conn *conns = calloc((size_t)o.connections, sizeof *conns);
    struct epoll_event *evs = calloc((size_t)o.connections, sizeof *evs);
    if (epfd < 0 || !conns || !evs) {
        fprintf(stderr, "bench-load: cannot set up epoll: %s\n", strerror(errno));
        return 1;
    }
    for (int i = 0; i < o.connections; i++)
        conns[i].fd = -1; /* idle, retry_at_s 0: connects on the first pass */

    struct stats st = {0};
    double start = now_s(), measure_from = start + o.warmup_s, end = measure_from + o.duration_s;
    st.t0 = measure_from;
    if (o.log) {
        st.log = fopen(o.log, "w");
        if (!st.log) {
            fprintf(stderr, "bench-load: cannot write %s: %s\n", o.log, strerror(errno));
            return 2;
        }
        fprintf(st.log, "# t_s latency_ms body");
        for (size_t k = 0; k < N_TIMING; k++)
            fprintf(st.log, " %s", timing_headers[k]);
        fputc('\n', st.log);
    }
    for (;;) {
        double t = now_s();
        if (t >= end)
            break;
        double next_retry = end;
        for (int i = 0; i < o.connections; i++) {
            struct conn *c = &conns[i];
            if (c->state != CONN_IDLE)
                continue;
            if (c->retry_at_s <= t) {
                if (conn_open(c, &addr, addr_len, epfd))
                    conn_failed(c, &st, epfd, strerror(errno), t, measure_from);
            }
            if (c->state == CONN_IDLE && c->retry_at_s < next_retry)
                next_retry = c->retry_at_s;
        }
        int timeout_ms = (int)((next_retry - t) * 1e3) + 1;
        int n = epoll_wait(epfd, evs, o.connections, timeout_ms);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "bench-load: epoll_wait: %s\n", strerror(errno));
            return 1;
        }
        for (int i = 0; i < n; i++)
            on_event(evs[i].data.ptr, evs[i].events, &st, &reqs, epfd, measure_from);
    }
    double t_end = now_s(), seconds = t_end - measure_from;
    long stalled = 0;
    for (int i = 0; i < o.connections; i++)
        if ((conns[i].state == CONN_SENDING || conns[i].state == CONN_READING) &&
            t_end - conns[i].start_s > STALLED_S)
            stalled++;
    report(&o, &st, seconds, stalled);

    for (int i = 0; i < o.connections; i++) {
        conn_reset(&conns[i], epfd);
        free(conns[i].buf);
    }
    for (size_t i = 0; i < reqs.n; i++)
        free(reqs.text[i]);
    free(reqs.text);
    free(reqs.len);
    free(conns);
    free(evs);
    free(st.lat_ms);
    if (st.log)
        fclose(st.log);
    close(epfd);
    return st.non_200 + st.socket_errors > 0 || st.n == 0 ? 1 : 0;
}
