/* cli_run: `inferd run`: one model directory and task, JSON lines in the Hugging Face
 * Inference API form {"inputs": ..., "parameters": {...}} on stdin, one line per input line
 * on stdout: the pipeline's result as transformers.pipeline(task) returns it, or
 * {"error": ..., "error_type": ...}. Bad options exit 2; a model that fails to load exits 1
 * with a message on stderr; otherwise the exit status is 1 when any line failed. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pipelines/runner.h"

struct opts {
    const char *dir, *task;
    enum dtype_compute dtype;
    int threads;
};

static int parse_dtype(const char *s, enum dtype_compute *dt)
{
    if (strcmp(s, "fp32") == 0 || strcmp(s, "f32") == 0)
        *dt = DTYPE_COMPUTE_F32;
    else if (strcmp(s, "bf16") == 0)
        *dt = DTYPE_COMPUTE_BF16;
    else if (strcmp(s, "int8") == 0)
        *dt = DTYPE_COMPUTE_INT8;
    else
        return -1;
    return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.dtype = DTYPE_COMPUTE_F32};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--model") == 0 && v) {
            o->dir = v;
        } else if (strcmp(a, "--task") == 0 && v) {
            o->task = v;
        } else if (strcmp(a, "--dtype") == 0 && v) {
            if (parse_dtype(v, &o->dtype)) {
                fprintf(stderr, "inferd run: --dtype must be fp32, bf16 or int8, not '%s'\n", v);
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
    if (pipeline_task_by_name(o->task) < 0) {
        fprintf(stderr, "inferd run: unknown task '%s'\n", o->task);
        return -1;
    }
    return 0;
}

/* Answers one line; returns 0 or -1 when it printed an error. */
static int run_line(const struct pipeline *p, struct dnn_ctx *ctx, struct encoder_run *run,
                    const char *line, size_t len, FILE *out)
{
    json_error_t je;
    json_t *req = json_loadb(line, len, JSON_ALLOW_NUL, &je);
    if (!req || !json_is_object(req)) {
        char msg[300];
        snprintf(msg, sizeof msg, "invalid JSON: %s",
                 req ? "expected an object {\"inputs\", \"parameters\"}" : je.text);
        cli_print_error(out, msg, err_kind_name(ERR_INPUT));
        json_decref(req);
        return -1;
    }
    json_t *result = NULL;
    struct err e = {0};
    int rc = pipeline_run(p, ctx, run, json_object_get(req, "inputs"),
                          json_object_get(req, "parameters"), &result, &e);
    if (rc)
        cli_print_error(out, e.msg, err_kind_name(rc));
    else
        cli_print_json(out, result);
    json_decref(result);
    json_decref(req);
    return rc ? -1 : 0;
}

int cli_run(int argc, char **argv, FILE *in, FILE *out)
{
    struct opts o;
    if (parse_opts(argc, argv, &o))
        return 2;
    struct err e = {0};
    struct dnn_ctx *ctx = dnn_ctx_new(o.threads, &e);
    if (!ctx) {
        fprintf(stderr, "inferd run: %s\n", e.msg);
        return 1;
    }
    struct pipeline *p = NULL;
    struct encoder_run *run = encoder_run_new();
    if (!run) {
        fprintf(stderr, "inferd run: out of memory\n");
        dnn_ctx_free(ctx);
        return 1;
    }
    if (pipeline_open(o.dir, o.task, o.dtype, ctx, &p, &e)) {
        fprintf(stderr, "inferd run: %s\n", e.msg);
        encoder_run_free(run);
        dnn_ctx_free(ctx);
        return 1;
    }
    char *buf = NULL;
    size_t cap = 0, len;
    bool failed = false;
    while (cli_read_line(in, &buf, &cap, &len))
        failed |= run_line(p, ctx, run, buf, len, out) != 0;
    free(buf);
    pipeline_close(p);
    encoder_run_free(run);
    dnn_ctx_free(ctx);
    return failed ? 1 : 0;
}
