/* batch: `inferd batch`, a model over a whole data set: the daemon runs in-process on a
 * loopback port (server/daemon.h's serve_local_start) and the job keeps many requests in
 * flight to it (batch_http.c), so the dialects parse every line exactly as they parse a
 * client's request and the batcher groups lines as it groups clients (every core busy). This
 * file owns the options, the job loop (read, send, write in order, resume), the progress line
 * and the summary. Exit status: 0 when every line is answered (bad lines included, as error
 * lines), 1 for a job-level failure (the model, the input or output file, the daemon not
 * answering), 2 for a bad command line, 128 + N after signal N (the lines in flight are
 * written first; a rerun resumes). */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "cli.h"
#include "clock.h"
#include "daemon.h"
#include "registry.h"

#define MAX_CONCURRENCY 4096

enum progress_mode { PROGRESS_AUTO, PROGRESS_BAR, PROGRESS_LOG, PROGRESS_OFF };

struct opts {
    const char *model, *task, *name, *config, *input, *output, *dtype;
    long threads, workers, max_batch_size, concurrency;
    double log_every;
    enum progress_mode progress;
    struct batch_input_opts in;
    json_t *parameters;
};

/* ---- options ---- */

static int parse_num(const char *opt, const char *v, long lo, long hi, long *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < lo || n > hi)
        return fprintf(stderr, "inferd batch: %s must be an integer in %ld..%ld, not '%s'\n", opt,
                       lo, hi, v),
               -1;
    *out = n;
    return 0;
}

/* A word option's value among names (index into *out), or -1 with a message. */
static int parse_word(const char *opt, const char *v, const char *const *names, size_t n,
                      int *out)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0)
            return *out = (int)i, 0;
    fprintf(stderr, "inferd batch: %s does not take '%s'\n", opt, v);
    return -1;
}

static int parse_value(struct opts *o, const char *a, const char *v)
{
    static const char *const formats[] = {"auto", "openai", "jsonl", "csv"};
    static const char *const progress[] = {"auto", "bar", "log", "off"};
    const char **str[] = {&o->model, &o->task, &o->name, &o->config, &o->input, &o->output,
                          &o->dtype, &o->in.text_column};
    static const char *const str_opts[] = {"--model", "--task",  "--name",  "--config",
                                           "--input", "--output", "--dtype", "--text-column"};
    for (size_t i = 0; i < sizeof str_opts / sizeof *str_opts; i++)
        if (strcmp(a, str_opts[i]) == 0)
            return *str[i] = v, 0;
    int w;
    if (strcmp(a, "--format") == 0)
        return parse_word(a, v, formats, 4, &w) ? -1 : (o->in.format = (enum batch_format)w, 0);
    if (strcmp(a, "--progress") == 0)
        return parse_word(a, v, progress, 4, &w) ? -1 : (o->progress = (enum progress_mode)w, 0);
    if (strcmp(a, "--threads") == 0)
        return parse_num(a, v, 1, 1024, &o->threads);
    if (strcmp(a, "--workers") == 0)
        return parse_num(a, v, 1, 64, &o->workers);
    if (strcmp(a, "--max-batch-size") == 0)
        return parse_num(a, v, 1, 1 << 20, &o->max_batch_size);
    if (strcmp(a, "--concurrency") == 0)
        return parse_num(a, v, 1, MAX_CONCURRENCY, &o->concurrency);
    if (strcmp(a, "--log-every") == 0) {
        long s;
        return parse_num(a, v, 1, 86400, &s) ? -1 : (o->log_every = (double)s, 0);
    }
    if (strcmp(a, "--parameters") == 0) {
        json_decref(o->parameters);
        o->parameters = json_loads(v, 0, NULL);
        if (json_is_object(o->parameters))
            return 0;
        fprintf(stderr, "inferd batch: --parameters must be a JSON object\n");
        return -1;
    }
    fprintf(stderr, "inferd batch: unknown option '%s'\n", a);
    return -1;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.log_every = 5};
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) {
            fprintf(stderr, "inferd batch: unknown option or missing value '%s'\n", argv[i]);
            return -1;
        }
        if (parse_value(o, argv[i], argv[i + 1]))
            return -1;
    }
    o->in.parameters = o->parameters;
    if (!o->config == !o->model || (o->model && !o->task)) {
        fprintf(stderr, "inferd batch: give either --config FILE or --model DIR --task TASK\n");
        return -1;
    }
    if (!o->input || !o->output) {
        fprintf(stderr, "inferd batch: --input FILE and --output FILE are required\n");
        return -1;
    }
    if (o->config && (o->dtype || o->threads || o->workers || o->max_batch_size)) {
        fprintf(stderr, "inferd batch: --dtype, --threads, --workers and --max-batch-size go "
                        "with --model (a config sets them per model)\n");
        return -1;
    }
    return 0;
}

/* The config the local daemon serves: the file, or the one model of the options. */
static int load_config(const struct opts *o, struct config *cfg)
{
    struct err e = {0};
    int rc = o->config ? config_load(o->config, &registry_tasks, cfg, &e)
                       : config_single(o->model, o->task, o->name, &registry_tasks, cfg, &e);
    if (rc)
        return fprintf(stderr, "inferd batch: %s\n", e.msg), -1;
    if (o->config)
        return 0;
    struct model_config *m = &cfg->models[0];
    if (o->dtype && config_dtype_by_name(o->dtype, &m->dtype) != 0)
        return fprintf(stderr, "inferd batch: --dtype must be fp32, bf16, int8 or int4\n"), -1;
    if (o->workers)
        m->workers = (int)o->workers;
    if (o->threads)
        m->threads = (int)o->threads;
    if (o->max_batch_size)
        m->batching.max_batch_size = (size_t)o->max_batch_size;
    return 0;
}

/* The model the plain formats' lines go to (--name, or the config's only one), or NULL for
 * the OpenAI format's choice ("model" of each body). */
static const struct model_config *pick_model(const struct opts *o, const struct config *cfg,
                                             enum batch_format f)
{
    for (size_t i = 0; o->name && i < cfg->n_models; i++)
        if (strcmp(cfg->models[i].name, o->name) == 0)
            return &cfg->models[i];
    if (o->name)
        fprintf(stderr, "inferd batch: the config has no model named '%s'\n", o->name);
    else if (cfg->n_models == 1 || f == BATCH_OPENAI)
        return &cfg->models[0];
    else
        fprintf(stderr, "inferd batch: the config serves %zu models: --name picks the one for "
                        "JSONL and CSV lines\n",
                cfg->n_models);
    return NULL;
}

/* Requests in flight: enough for several full batches of every worker of the model(s) the
 * lines go to, within their queues. */
static int concurrency(const struct opts *o, const struct config *cfg,
                       const struct model_config *only)
{
    if (o->concurrency)
        return (int)o->concurrency;
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_models; i++) {
        const struct model_config *m = &cfg->models[i];
        if (only && m != only)
            continue;
        size_t want = 4 * m->batching.max_batch_size * (size_t)(m->workers > 0 ? m->workers : 1);
        if (want > m->batching.max_queue_size)
            want = m->batching.max_queue_size;
        n = want > n ? want : n;
    }
    return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

/* ---- the job ---- */

static volatile sig_atomic_t stop_signal;

/* The first SIGINT/SIGTERM ends the job after the lines in flight; a second one at once. */
static void on_signal(int sig)
{
    if (stop_signal)
        _exit(128 + sig);
    stop_signal = sig;
}

struct job {
    enum batch_format fmt;
    bool ordered;        /* plain formats: written in input order (resume by line count) */
    FILE *out;
    struct item **ring;  /* ordered: the items taken and not yet written, by position % cap */
    long cap;            /* requests in flight at most */
    long taken, written; /* positions: items taken from the input; written (ordered) */
    long in_flight;
    long ok, errors, skipped, total;
    bool failed; /* a job-level failure: stop */
    double t0, last_report;
    bool bar;
    enum progress_mode progress;
    double log_every;
};

static void write_item(struct job *j, struct item *it)
{
    if (fputs(it->out, j->out) == EOF || fputc('\n', j->out) == EOF) {
        if (!j->failed)
            perror("inferd batch: writing the output");
        j->failed = true;
    }
}

/* Ordered: writes the answered items at the head of the ring. */
static void flush_ordered(struct job *j)
{
    while (j->written < j->taken) {
        struct item **slot = &j->ring[j->written % j->cap];
        if (!(*slot)->out)
            break;
        write_item(j, *slot);
        item_free(*slot);
        free(*slot);
        *slot = NULL;
        j->written++;
    }
}

/* An item answered (out set): counted, then written now or in its turn. */
static void finish(struct job *j, struct item *it)
{
    if (it->ok)
        j->ok++;
    else
        j->errors++;
    if (j->ordered)
        return flush_ordered(j);
    write_item(j, it);
    item_free(it);
    free(it);
}

/* client_poll's report. */
static void on_done(void *arg, struct item *it, int status, const char *body, size_t len,
                    const char *rid, const char *transport_error)
{
    struct job *j = arg;
    j->in_flight--;
    if (transport_error) { /* the line stays unanswered: a rerun sends it again */
        fprintf(stderr, "\ninferd batch: line %ld got no answer from the daemon: %s\n", it->line,
                transport_error);
        j->failed = true;
    } else if (item_answer(it, j->fmt, status, body, len, rid)) {
        fprintf(stderr, "\ninferd batch: out of memory\n");
        j->failed = true;
    } else {
        return finish(j, it);
    }
    if (!j->ordered) {
        item_free(it);
        free(it);
    }
}

static void fmt_eta(char *buf, size_t n, double s)
{
    if (s < 0 || s > 1e7)
        snprintf(buf, n, "?");
    else if (s >= 3600)
        snprintf(buf, n, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
    else
        snprintf(buf, n, "%d:%02d", (int)s / 60, (int)s % 60);
}

/* The progress bar (a terminal, redrawn a few times a second) or a log line every log_every
 * seconds; final draws the last state whatever the time. */
static void report(struct job *j, bool final)
{
    double now = now_seconds(), every = j->bar ? 0.2 : j->log_every;
    if (j->progress == PROGRESS_OFF || (!final && now - j->last_report < every))
        return;
    j->last_report = now;
    long done = j->ok + j->errors, total = j->total >= 0 ? j->total - j->skipped : -1;
    double rate = done / (now - j->t0 > 1e-9 ? now - j->t0 : 1e-9);
    char eta[32];
    fmt_eta(eta, sizeof eta, total >= 0 && rate > 0 ? (double)(total - done) / rate : -1);
    if (!j->bar) {
        fprintf(stderr, "inferd batch: %ld/%ld lines, %.1f lines/s, ETA %s, %ld errors\n", done,
                total, rate, eta, j->errors);
        return;
    }
    char bar[31];
    int fill = total > 0 ? (int)(30.0 * (double)done / (double)total) : 0;
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r[%s] %ld/%ld lines  %.1f lines/s  ETA %s  %ld errors\033[K%s", bar, done,
            total, rate, eta, j->errors, final ? "\n" : "");
}

/* Takes the next records while there is room: skips those answered before, answers bad ones
 * at once, sends the others. 1 while the input has more, 0 at its end, -1 on a read error. */
static int feed(struct job *j, struct batch_reader *r, const struct batch_done *d,
                struct batch_client *c)
{
    while (j->in_flight < j->cap && (!j->ordered || j->taken - j->written < j->cap)) {
        if (stop_signal || j->failed)
            return 1;
        struct item *it = malloc(sizeof *it);
        struct err e = {0};
        int got = it ? reader_next(r, it, &e) : (err_set(&e, ERR_NOMEM, "out of memory"), -1);
        if (got <= 0) {
            free(it);
            if (got < 0)
                fprintf(stderr, "inferd batch: %s\n", e.msg);
            return got;
        }
        if (done_has(d, j->fmt, it)) {
            j->skipped++;
            item_free(it);
            free(it);
            continue;
        }
        if (j->ordered)
            j->ring[j->taken % j->cap] = it;
        j->taken++;
        if (!it->path) {
            finish(j, it);
        } else if (client_send(c, it) == 0) {
            j->in_flight++;
        } else {
            fprintf(stderr, "inferd batch: cannot send line %ld\n", it->line);
            j->failed = true;
            if (!j->ordered)
                item_free(it), free(it);
        }
    }
    return 1;
}

/* Reads, sends and writes until the input ends (or a signal or a failure stops the taking),
 * then waits for the answers in flight. */
static void run_job(struct job *j, struct batch_reader *r, const struct batch_done *d,
                    struct batch_client *c)
{
    bool more = true;
    while (more || j->in_flight > 0) {
        if (more) {
            int got = feed(j, r, d, c);
            more = got > 0 && !stop_signal && !j->failed;
            j->failed |= got < 0;
        }
        if (j->in_flight > 0)
            client_poll(c, 100, on_done, j);
        fflush(j->out);
        report(j, false);
    }
    fflush(j->out);
    if (ferror(j->out))
        j->failed = true;
}

static void summary(const struct job *j, const char *output)
{
    double s = now_seconds() - j->t0;
    long done = j->ok + j->errors;
    fprintf(stderr,
            "inferd batch: %s: %ld lines (%ld ok, %ld errors), %ld skipped as answered before, "
            "%.2f s, %.1f lines/s; output %s\n",
            j->failed ? "failed" : stop_signal ? "interrupted" : "done", done, j->ok, j->errors,
            j->skipped, s, done / (s > 1e-9 ? s : 1e-9), output);
}

static void catch_signals(void)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* The job once the input is open and the output scanned: the local daemon, the loop, the
 * summary. Returns the exit status. */
static int serve_and_run(const struct opts *o, struct config *cfg, struct batch_reader *r,
                         const struct batch_done *d, struct job *j)
{
    if (!(j->out = fopen(o->output, "ab")))
        return fprintf(stderr, "inferd batch: %s: %s\n", o->output, strerror(errno)), 1;
    int port = 0;
    const char *key = NULL;
    struct err e = {0};
    struct local_server *ls = serve_local_start(cfg, &port, &key, &e);
    if (!ls) {
        fclose(j->out);
        return fprintf(stderr, "inferd batch: %s\n", e.msg), 1;
    }
    struct batch_client *c = client_new(port, key, (int)j->cap);
    j->ring = j->ordered ? calloc((size_t)j->cap, sizeof *j->ring) : NULL;
    if (!c || (j->ordered && !j->ring)) {
        fprintf(stderr, "inferd batch: out of memory\n");
        j->failed = true;
    } else {
        catch_signals();
        j->t0 = j->last_report = now_seconds();
        run_job(j, r, d, c);
        report(j, true);
    }
    client_free(c);
    serve_local_stop(ls);
    for (long p = j->written; j->ring && p < j->taken; p++) /* after a failure */
        if (j->ring[p % j->cap])
            item_free(j->ring[p % j->cap]), free(j->ring[p % j->cap]);
    free(j->ring);
    if (fclose(j->out) != 0)
        j->failed = true;
    summary(j, o->output);
    return j->failed ? 1 : stop_signal ? 128 + stop_signal : 0;
}

int cli_batch(int argc, char **argv)
{
    struct opts o;
    struct config cfg = {0};
    if (parse_opts(argc, argv, &o) || load_config(&o, &cfg)) {
        json_decref(o.parameters);
        config_free(&cfg);
        return 2;
    }
    int rc = 1;
    struct err e = {0};
    struct batch_done d = {0};
    struct batch_reader *r = reader_open(o.input, &o.in, &e);
    const struct model_config *m = r ? pick_model(&o, &cfg, o.in.format) : NULL;
    char path[128];
    if (!r)
        fprintf(stderr, "inferd batch: %s\n", e.msg);
    else if (!m)
        rc = 2;
    else if (done_scan(o.output, o.in.format, &d, &e))
        fprintf(stderr, "inferd batch: %s\n", e.msg);
    else {
        snprintf(path, sizeof path, "/models/%s", m->name);
        o.in.hf_path = path;
        struct job j = {
            .fmt = o.in.format,
            .ordered = o.in.format != BATCH_OPENAI,
            .cap = concurrency(&o, &cfg, o.in.format == BATCH_OPENAI ? NULL : m),
            .total = reader_count(o.input, &o.in),
            .progress = o.progress,
            .log_every = o.log_every,
        };
        j.bar = o.progress == PROGRESS_BAR || (o.progress == PROGRESS_AUTO && isatty(2));
        rc = serve_and_run(&o, &cfg, r, &d, &j); /* takes cfg over */
    }
    done_free(&d);
    reader_close(r);
    config_free(&cfg);
    json_decref(o.parameters);
    return rc;
}
