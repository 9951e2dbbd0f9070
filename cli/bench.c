/* bench: `inferd bench`, the encoder's forward-pass speed on one (batch, seq) shape, timed
 * the way shared/anchors/ort_bert.js times ONNX Runtime so the two compare line for line:
 * token ids [CLS] (101), random ordinary word pieces 1000..29999, [SEP] (102), deterministic;
 * attention mask all ones; token types zeros; warm-up runs, then timed runs until at least
 * --min-runs runs and --min-seconds seconds; one JSON line on stdout:
 *   {"engine":"inferd","variant":"fp32","threads":2,"batch":8,"seq":128,"runs":6,
 *    "seq_per_s":..,"median_ms":..,"p90_ms":..,"min_ms":..,"load_ms":..,"foreign_cpu":..,
 *    "dtype":"fp32","onednn":"2.6.3 OpenMP avx512_core_bf16"}
 * foreign_cpu is the share of the machine's CPU time other processes took while timing
 * (from /proc/stat, as the anchors compute it; null without /proc/stat).
 * A generation model (a decoder, or T5) is measured by bench/gen_bench.c as bench-generate
 * does: prefill of a --seq-token prompt, time to first token, and --steps greedy decode steps
 * of --batch sequences, one JSON line each with tokens_per_s. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "../bench/gen_bench.h"
#include "cli.h"
#include "dtypes.h"
#include "generate/generator.h"
#include "models/encoder.h"

struct bench_opts {
    const char *model;
    int batch, seq, threads, warmup, min_runs, max_runs, steps;
    double min_seconds;
    enum config_dtype dtype; /* --dtype */
    enum dtype_compute dt;   /* dtype_of_config(dtype) */
};

static int parse_opts(int argc, char **argv, struct bench_opts *o)
{
    *o = (struct bench_opts){.batch = 1,
                             .seq = 128,
                             .threads = 2,
                             .warmup = 2,
                             .min_runs = 5,
                             .max_runs = 2000,
                             .min_seconds = 5.0,
                             .steps = 32,
                             .dtype = CONFIG_DTYPE_FP32,
                             .dt = DTYPE_COMPUTE_F32};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!v) {
            bad = 1;
        } else if (strcmp(a, "--model") == 0) {
            o->model = v;
        } else if (strcmp(a, "--batch") == 0) {
            bad = bench_parse_int(v, 1, 4096, &o->batch);
        } else if (strcmp(a, "--seq") == 0) {
            bad = bench_parse_int(v, 1, 65536, &o->seq);
        } else if (strcmp(a, "--threads") == 0) {
            bad = bench_parse_int(v, 0, 1024, &o->threads);
        } else if (strcmp(a, "--steps") == 0) {
            bad = bench_parse_int(v, 1, 100000, &o->steps);
        } else if (strcmp(a, "--warmup") == 0) {
            bad = bench_parse_int(v, 0, 1000, &o->warmup);
        } else if (strcmp(a, "--min-runs") == 0) {
            bad = bench_parse_int(v, 1, 1000000, &o->min_runs);
        } else if (strcmp(a, "--max-runs") == 0) {
            bad = bench_parse_int(v, 1, 1000000, &o->max_runs);
        } else if (strcmp(a, "--min-seconds") == 0) {
            char *end;
            o->min_seconds = strtod(v, &end);
            bad = *end != '\0' || !(o->min_seconds >= 0.0);
        } else if (strcmp(a, "--dtype") == 0) {
            bad = dtype_option(v, &o->dtype) != 0;
            o->dt = dtype_of_config(o->dtype);
        } else {
            fprintf(stderr, "inferd bench: unknown option '%s'\n", a);
            return -1;
        }
        if (bad) {
            fprintf(stderr, "inferd bench: bad or missing value for '%s'\n", a);
            return -1;
        }
        i++;
    }
    if (!o->model) {
        fputs("inferd bench: --model DIR is required\n", stderr);
        return -1;
    }
    if (o->max_runs < o->min_runs)
        o->max_runs = o->min_runs;
    return 0;
}


/* Whether DIR's config.json names a model generation runs (a decoder or T5). A config.json
 * that cannot be read is left to the loader to report. */
static bool is_generation_model(const char *dir)
{
    struct hf_config hc;
    struct err e = {0};
    if (hf_config_load(dir, &hc, &e) != 0)
        return false;
    const char *names[16];
    size_t n = gen_model_types(names, 16);
    bool gen = false;
    for (size_t i = 0; i < n; i++)
        gen |= strcmp(hc.model_type, names[i]) == 0;
    hf_config_fini(&hc);
    return gen;
}

/* A generation model: bench/gen_bench.c with the prompt --seq tokens long and --batch
 * sequences decoding. */
static int bench_generation(const struct bench_opts *o)
{
    struct gen_bench_opts g = gen_bench_defaults();
    g.model = o->model;
    g.threads = o->threads;
    g.dt = o->dt;
    g.context = o->seq;
    g.prompts[0] = o->seq;
    g.n_prompts = 1;
    g.streams[0] = o->batch > GEN_BENCH_MAX_STREAMS ? GEN_BENCH_MAX_STREAMS : o->batch;
    g.n_streams = 1;
    g.steps = o->steps;
    g.warmup = o->warmup;
    g.min_runs = o->min_runs;
    g.max_runs = o->max_runs;
    g.min_seconds = o->min_seconds;
    struct err e = {0};
    if (gen_bench_run(&g, stdout, &e) != 0) {
        fprintf(stderr, "inferd bench: %s\n", e.msg[0] ? e.msg : "failed");
        return 1;
    }
    return 0;
}

int cli_bench(int argc, char **argv)
{
    struct bench_opts o;
    if (parse_opts(argc, argv, &o) != 0)
        return 2;
    char dir[4096]; /* a model id's snapshot in the Hub cache */
    if (cli_model_dir("bench", o.model, false, dir, sizeof dir) != 0)
        return 1;
    o.model = dir;
    struct err e = {0};
    if (is_generation_model(o.model))
        return bench_generation(&o);
    struct dnn_ctx *ctx = NULL;
    struct encoder *m = NULL;
    struct encoder_run *run = NULL;
    int32_t *ids = NULL, *mask = NULL;
    double *times = NULL;
    int status = 1;
    size_t n = (size_t)o.batch * (size_t)o.seq;

    ctx = dnn_ctx_new(o.threads, &e);
    if (!ctx)
        goto fail;
    double t_load = now_seconds();
    if (encoder_load(o.model, o.dt, ctx, &m, &e) != 0)
        goto fail;
    double load_ms = (now_seconds() - t_load) * 1e3;
    run = encoder_run_new();
    ids = malloc(n * sizeof *ids);
    mask = malloc(n * sizeof *mask);
    times = malloc((size_t)o.max_runs * sizeof *times);
    if (!run || !ids || !mask || !times) {
        err_set(&e, ERR_NOMEM, "out of memory");
        goto fail;
    }
    uint32_t rng = 0;
    for (int b = 0; b < o.batch; b++) {
        for (int s = 0; s < o.seq; s++) {
            int32_t id = 1000 + (int32_t)(bench_rand01(&rng) * 29000.0);
            if (s == 0)
                id = 101;
            else if (s == o.seq - 1)
                id = 102;
            ids[(size_t)b * (size_t)o.seq + (size_t)s] = id;
            mask[(size_t)b * (size_t)o.seq + (size_t)s] = 1;
        }
    }
    struct encoder_batch batch = {.batch = o.batch, .seq = o.seq, .ids = ids, .mask = mask};
    const float *out;
    for (int i = 0; i < (o.warmup > 0 ? o.warmup : 1); i++)
        if (encoder_forward(m, ctx, run, &batch, &out, NULL, &e) != 0)
            goto fail;

    int runs = 0;
    struct bench_cpu_mark mark = bench_cpu_mark();
    double start = now_seconds(), elapsed = 0.0;
    while ((runs < o.min_runs || elapsed < o.min_seconds) && runs < o.max_runs) {
        double a = now_seconds();
        if (encoder_forward(m, ctx, run, &batch, &out, NULL, &e) != 0)
            goto fail;
        double b = now_seconds();
        times[runs++] = (b - a) * 1e3;
        elapsed = b - start;
    }
    double foreign = bench_foreign_since(mark);
    qsort(times, (size_t)runs, sizeof *times, bench_cmp_double);
    double median = bench_percentile(times, runs, 0.5);
    char foreign_s[32];
    if (foreign < 0.0)
        snprintf(foreign_s, sizeof foreign_s, "null");
    else
        snprintf(foreign_s, sizeof foreign_s, "%.3f", foreign);
    printf("{\"engine\":\"inferd\",\"variant\":\"%s\",\"dtype\":\"%s\",\"threads\":%d,"
           "\"batch\":%d,\"seq\":%d,\"runs\":%d,\"seq_per_s\":%.3f,\"median_ms\":%.3f,"
           "\"p90_ms\":%.3f,\"min_ms\":%.3f,\"load_ms\":%.0f,\"foreign_cpu\":%s,"
           "\"onednn\":\"%s\"}\n",
           config_dtype_name(o.dtype), config_dtype_name(o.dtype), o.threads, o.batch, o.seq, runs,
           (double)o.batch / (median * 1e-3), median, bench_percentile(times, runs, 0.9), times[0],
           load_ms, foreign_s, dnn_describe());
    fflush(stdout);
    status = 0;
    goto cleanup;

fail:
    fprintf(stderr, "inferd bench: %s\n", e.msg[0] ? e.msg : "failed");
cleanup:
    free(times);
    free(ids);
    free(mask);
    encoder_run_free(run);
    encoder_free(m);
    dnn_ctx_free(ctx);
    return status;
}
