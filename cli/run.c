/* run: `inferd run`: one model directory and task, JSON lines in the Hugging Face
 * Inference API form {"inputs": ..., "parameters": {...}} on stdin, one line per input line
 * on stdout: the pipeline's result as transformers.pipeline(task) returns it, or
 * {"error": ..., "error_type": ...}. With --batch N it reads up to N lines, prepares each,
 * runs the encoder over all of them in one pipeline_forward call (as the server's batcher
 * does) and prints the N answers in input order; a bad line still answers with its error at
 * its position. Bad options exit 2; a model that fails to load exits 1 with a message on
 * stderr; otherwise the exit status is 1 when any line failed. The generation tasks run in
 * generate.c. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dtypes.h"
#include "engine.h"

/* Largest --batch: the lines of one batch are held in memory together. */
#define MAX_BATCH 4096

struct opts {
    const char *dir, *task;
    enum config_dtype dtype;
    int threads;
    int batch; /* lines prepared and forwarded together */
    const char *langs[2]; /* --src-lang / --tgt-lang (translation) */
};

static int parse_opts(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.dtype = CONFIG_DTYPE_FP32, .batch = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--model") == 0 && v) {
            o->dir = v;
        } else if (strcmp(a, "--task") == 0 && v) {
            o->task = v;
        } else if (strcmp(a, "--src-lang") == 0 && v) {
            o->langs[0] = v;
        } else if (strcmp(a, "--tgt-lang") == 0 && v) {
            o->langs[1] = v;
        } else if (strcmp(a, "--dtype") == 0 && v) {
            if (dtype_option(v, &o->dtype)) {
                fprintf(stderr, "inferd run: --dtype must be fp32, bf16, int8 or int4, not '%s'\n", v);
                return -1;
            }
        } else if (strcmp(a, "--threads") == 0 && v) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || end == v || n < 1 || n > 1024) {
                fprintf(stderr, "inferd run: --threads must be an integer in 1..1024\n");
                return -1;
            }
            o->threads = (int)n;
        } else if (strcmp(a, "--batch") == 0 && v) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || end == v || n < 1 || n > MAX_BATCH) {
                fprintf(stderr, "inferd run: --batch must be an integer in 1..%d\n", MAX_BATCH);
                return -1;
            }
            o->batch = (int)n;
        } else {
            fprintf(stderr, "inferd run: unknown option or missing value '%s'\n", a);
            return -1;
        }
        i++;
    }
    if (!o->dir || !o->task) {
        fprintf(stderr, "inferd run: --model DIR and --task TASK are required\n");
        return -1;
    }
    if (task_by_name(o->task) < 0) {
        char tasks[300];
        task_list(tasks, sizeof tasks);
        fprintf(stderr, "inferd run: unknown task '%s' (tasks: %s)\n", o->task, tasks);
        return -1;
    }
    return 0;
}

/* One input line of a batch: its prepared request, or the error it answers with. */
struct slot {
    struct pipeline_request *req;
    int rc;
    char msg[ERR_MSG_SIZE];
};

/* Parses and prepares one line into s (s->rc != 0 and s->msg set when it failed). */
static void prepare_line(const struct pipeline *p, const char *line, size_t len, struct slot *s)
{
    *s = (struct slot){0};
    json_error_t je;
    json_t *req = json_loadb(line, len, JSON_ALLOW_NUL, &je);
    if (!req || !json_is_object(req)) {
        s->rc = ERR_INPUT;
        snprintf(s->msg, sizeof s->msg, "invalid JSON: %s",
                 req ? "expected an object {\"inputs\", \"parameters\"}" : je.text);
        json_decref(req);
        return;
    }
    struct err e = {0};
    s->rc = pipeline_prepare(p, json_object_get(req, "inputs"), json_object_get(req, "parameters"),
                             &s->req, &e);
    if (s->rc)
        snprintf(s->msg, sizeof s->msg, "%s", e.msg);
    json_decref(req); /* the prepared request keeps its own copies */
}

/* Forwards the prepared slots[0..n) in one call, then prints every slot's answer in order
 * and frees its request. Returns the number of lines that answered with an error. */
static int run_batch(const struct pipeline *p, struct pipeline_worker *w, struct slot *slots,
                     size_t n, struct pipeline_request **reqs, FILE *out)
{
    size_t n_ok = 0;
    for (size_t i = 0; i < n; i++)
        if (slots[i].rc == 0)
            reqs[n_ok++] = slots[i].req;
    struct err e = {0};
    int frc = n_ok ? pipeline_forward(p, w, reqs, n_ok, &e) : 0;
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        struct slot *s = &slots[i];
        json_t *result = NULL;
        if (s->rc == 0 && frc) { /* a failed forward fails every request in it */
            s->rc = frc;
            snprintf(s->msg, sizeof s->msg, "%s", e.msg);
        }
        if (s->rc == 0) {
            struct err fe = {0};
            s->rc = pipeline_finish(p, s->req, &result, &fe);
            if (s->rc)
                snprintf(s->msg, sizeof s->msg, "%s", fe.msg);
        }
        if (s->rc) {
            cli_print_error(out, s->msg, err_kind_name(s->rc));
            failed++;
        } else {
            cli_print_json(out, result);
        }
        json_decref(result);
        pipeline_request_free(s->req);
        s->req = NULL;
    }
    return failed;
}

int cli_run(int argc, char **argv, FILE *in, FILE *out)
{
    struct opts o;
    if (parse_opts(argc, argv, &o))
        return 2;
    char dir[4096]; /* a model id's snapshot in the Hub cache */
    if (cli_model_dir("run", o.dir, false, dir, sizeof dir) != 0)
        return 1;
    o.dir = dir;
    struct err e = {0};
    if (task_kind((enum task_id)task_by_name(o.task)) != TASK_KIND_GENERATOR &&
        (o.langs[0] || o.langs[1])) {
        fprintf(stderr, "inferd run: --src-lang and --tgt-lang are for translation\n");
        return 2;
    }
    if (task_kind((enum task_id)task_by_name(o.task)) == TASK_KIND_GENERATOR)
        return cli_run_generate(o.dir, o.task, o.dtype, o.threads, o.langs, in, out);
    struct pipeline_worker *w = NULL;
    if (pipeline_worker_new(o.threads, &w, &e) != 0) {
        fprintf(stderr, "inferd run: %s\n", e.msg);
        return 1;
    }
    struct pipeline *p = NULL;
    if (pipeline_open(o.dir, o.task, dtype_of_config(o.dtype), o.threads, &p, &e)) {
        fprintf(stderr, "inferd run: %s\n", e.msg);
        pipeline_worker_free(w);
        return 1;
    }
    char *buf = NULL;
    size_t cap = 0, len;
    bool failed = false;
    struct slot *slots = calloc((size_t)o.batch, sizeof *slots);
    struct pipeline_request **reqs = calloc((size_t)o.batch, sizeof *reqs);
    if (!slots || !reqs) {
        fprintf(stderr, "inferd run: out of memory\n");
        failed = true;
    } else {
        size_t n = 0;
        bool eof = false;
        while (!eof) {
            if (cli_read_line(in, &buf, &cap, &len))
                prepare_line(p, buf, len, &slots[n++]);
            else
                eof = true;
            if (n == (size_t)o.batch || (eof && n > 0)) {
                failed |= run_batch(p, w, slots, n, reqs, out) != 0;
                n = 0;
            }
        }
    }
    free(slots);
    free(reqs);
    free(buf);
    pipeline_close(p);
    pipeline_worker_free(w);
    return failed ? 1 : 0;
}
