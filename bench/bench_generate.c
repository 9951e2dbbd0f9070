/* bench_generate: the decoder's generation speed (engine/models/decoder.h), measured the way
 * bench/torch_decoder.py measures PyTorch so that the two compare line for line
 * (bench/run_generate.sh runs both and bench/summarize_generate.py prints the ratios).
 *
 * Metrics, each one JSON line on stdout:
 *   prefill  a fresh sequence takes a P-token prompt in one step (logits of its last position):
 *            tokens/s = P / median latency; one line per --prompts length
 *   ttft     time to first token: a fresh sequence (a reused, reset slot, as the server's),
 *            the --context-token prompt prefilled and the first generated token picked
 *            (greedy argmax over the logits)
 *   decode   S streams (--streams), each with its own --context-token prompt, prefilled
 *            together (untimed); then --warmup and --steps greedy decode steps, every stream's
 *            next token in one decoder_forward step (as continuous batching runs them), each
 *            step timed including the argmax of every stream: median_ms is the step latency
 *            (the inter-token latency), tokens/s = S / median; greedy_ids are stream 0's first
 *            generated tokens (the same in every stream count, and in torch_decoder.py)
 * Prefill and ttft: warm-up runs, then timed runs until at least --min-runs runs and
 * --min-seconds seconds, as `inferd bench`. Prompts: token ids 100 .. vocab - 101 from
 * mulberry32 seeded per stream (torch_decoder.py draws the same ones).
 *   {"engine":"inferd","model":"llama-lm-random","arch":"llama","dtype":"fp32","threads":2,
 *    "metric":"decode","streams":16,"prompt":128,"steps":64,"runs":64,"tokens_per_s":..,
 *    "median_ms":..,"p90_ms":..,"min_ms":..,"load_ms":..,"foreign_cpu":..,"onednn":..}
 * foreign_cpu is the share of the machine's CPU time other processes took while timing
 * (/proc/stat, as the anchors compute it; null without it).
 *
 * --dump-check FILE writes, for stream 0's --context-token prompt, the logits after the
 * prefill and after the first decode step and the first greedy ids, as one JSON object, for
 * torch_decoder.py --check (which validates both implementations against each other).
 *
 * usage: bench-generate --model DIR [--threads 2] [--dtype fp32|bf16|int8]
 *          [--metrics prefill,ttft,decode] [--prompts 128,512] [--context 128]
 *          [--streams 1,16] [--steps 64] [--warmup 2] [--min-runs 3] [--min-seconds 3]
 *          [--dump-check FILE] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "models/decoder.h"

#define MAX_LIST 8
#define MAX_STREAMS 256
#define GREEDY_IDS 16

struct opts {
    const char *model, *dump_check;
    int threads, context, steps, warmup, min_runs, max_runs;
    double min_seconds;
    enum dtype_compute dt;
    int prompts[MAX_LIST], n_prompts;
    int streams[MAX_LIST], n_streams;
    bool prefill, ttft, decode;
};

struct bench {
    const struct opts *o;
    struct decoder_model *d;
    struct dnn_ctx *ctx;
    struct decoder_run *run;
    struct decoder_seq *seqs[MAX_STREAMS];
    int n_seqs, vocab;
    int32_t *tokens; /* (max streams * max prompt) */
    int *n_tokens;   /* (max streams) */
    int32_t *next;   /* (max streams) each stream's next token */
    double *times;   /* (max runs) */
    double load_ms;
    char name[256];
};

static const char *dtype_name(enum dtype_compute dt)
{
    return dt == DTYPE_COMPUTE_BF16 ? "bf16" : dt == DTYPE_COMPUTE_INT8 ? "int8" : "fp32";
}

/* ---- options ---- */

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* "128,512" into list (at most MAX_LIST values in lo .. hi). */
static int parse_list(const char *s, int lo, int hi, int *list, int *n)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    *n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (*n >= MAX_LIST || parse_int(t, lo, hi, &list[(*n)++]) != 0)
            return -1;
    return *n > 0 ? 0 : -1;
}

static int parse_metrics(const char *s, struct opts *o)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    o->prefill = o->ttft = o->decode = false;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "prefill") == 0)
            o->prefill = true;
        else if (strcmp(t, "ttft") == 0)
            o->ttft = true;
        else if (strcmp(t, "decode") == 0)
            o->decode = true;
        else
            return -1;
    }
    return 0;
}

static int usage(void)
{
    fputs("usage: bench-generate --model DIR [--threads 2] [--dtype fp32|bf16|int8]\n"
          "         [--metrics prefill,ttft,decode] [--prompts 128,512] [--context 128]\n"
          "         [--streams 1,16] [--steps 64] [--warmup 2] [--min-runs 3]\n"
          "         [--min-seconds 3] [--dump-check FILE]\n",
          stderr);
    return 2;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.threads = 2,
                       .context = 128,
                       .steps = 64,
                       .warmup = 2,
                       .min_runs = 3,
                       .max_runs = 1000,
                       .min_seconds = 3.0,
                       .dt = DTYPE_COMPUTE_F32,
                       .prompts = {128, 512},
                       .n_prompts = 2,
                       .streams = {1, 16},
                       .n_streams = 2,
                       .prefill = true,
                       .ttft = true,
                       .decode = true};
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = !v;
        if (bad)
            ;
        else if (strcmp(a, "--model") == 0)
            o->model = v;
        else if (strcmp(a, "--dump-check") == 0)
            o->dump_check = v;
        else if (strcmp(a, "--threads") == 0)
            bad = parse_int(v, 0, 1024, &o->threads);
        else if (strcmp(a, "--context") == 0)
            bad = parse_int(v, 1, 1 << 20, &o->context);
        else if (strcmp(a, "--steps") == 0)
            bad = parse_int(v, 1, 100000, &o->steps);
        else if (strcmp(a, "--warmup") == 0)
            bad = parse_int(v, 0, 100000, &o->warmup);
        else if (strcmp(a, "--min-runs") == 0)
            bad = parse_int(v, 1, o->max_runs, &o->min_runs);
        else if (strcmp(a, "--min-seconds") == 0) {
            char *end;
            o->min_seconds = strtod(v, &end);
            bad = *end != '\0' || o->min_seconds < 0;
        } else if (strcmp(a, "--dtype") == 0) {
            if (strcmp(v, "fp32") == 0)
                o->dt = DTYPE_COMPUTE_F32;
            else if (strcmp(v, "bf16") == 0)
                o->dt = DTYPE_COMPUTE_BF16;
            else if (strcmp(v, "int8") == 0)
                o->dt = DTYPE_COMPUTE_INT8;
            else
                bad = 1;
        } else if (strcmp(a, "--prompts") == 0)
            bad = parse_list(v, 1, 1 << 20, o->prompts, &o->n_prompts);
        else if (strcmp(a, "--streams") == 0)
            bad = parse_list(v, 1, MAX_STREAMS, o->streams, &o->n_streams);
        else if (strcmp(a, "--metrics") == 0)
            bad = parse_metrics(v, o);
        else
            bad = 1;
        if (bad) {
            fprintf(stderr, "bench-generate: bad option %s%s%s\n", a, v ? " " : "", v ? v : "");
            return usage();
        }
    }
    return o->model ? 0 : usage();
}

/* ---- timing ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double own_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU seconds the whole machine has been busy (all cores), or -1 without /proc/stat. */
static double machine_busy_s(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1.0;
    unsigned long long v[8] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n != 8)
        return -1.0;
    double ticks = sysconf(_SC_CLK_TCK) > 0 ? (double)sysconf(_SC_CLK_TCK) : 100.0;
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / ticks; /* minus idle, iowait */
}

/* The machine's and this process's CPU clocks at the start of a measurement. */
struct cpu_mark {
    double busy, own, wall;
};

static struct cpu_mark cpu_mark(void)
{
    return (struct cpu_mark){machine_busy_s(), own_cpu_s(), now_s()};
}

/* The share of the machine other processes took since m, or -1 when unknown. */
static double foreign_since(struct cpu_mark m)
{
    double busy = machine_busy_s(), wall = now_s() - m.wall;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (m.busy < 0.0 || busy < 0.0 || wall <= 0.0 || ncpu <= 0)
        return -1.0;
    double f = (busy - m.busy - (own_cpu_s() - m.own)) / wall / (double)ncpu;
    return f < 0.0 ? 0.0 : f;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* As the anchors' percentile: the ceil(p n)-th smallest. */
static double percentile(const double *sorted, int n, double p)
{
    int i = (int)((p * n) + 0.999999) - 1;
    i = i < 0 ? 0 : i >= n ? n - 1 : i;
    return sorted[i];
}

/* ---- prompts ---- */

/* mulberry32, as cli_bench.c and torch_decoder.py: uniform in [0, 1). */
static double rand01(uint32_t *state)
{
    uint32_t t = (*state += 0x6d2b79f5u);
    t = (t ^ (t >> 15)) * (t | 1u);
    t ^= t + (t ^ (t >> 7)) * (t | 61u);
    return (double)(t ^ (t >> 14)) / 4294967296.0;
}

/* Stream s's prompt of n tokens: ids in 100 .. vocab - 101. */
static void prompt_ids(int stream, int n, int vocab, int32_t *out)
{
    uint32_t state = (uint32_t)(stream + 1) * 0x9e3779b1u;
    for (int i = 0; i < n; i++)
        out[i] = 100 + (int32_t)(rand01(&state) * (double)(vocab - 200));
}

/* ---- measurements ---- */

/* One step: the first n_streams sequences, each with n_tokens[i] of b->tokens. */
static int step(struct bench *b, int n_streams, const float **logits, struct err *e)
{
    struct decoder_step st = {
        .n_seqs = n_streams, .seqs = b->seqs, .tokens = b->tokens, .n_tokens = b->n_tokens};
    return decoder_forward(b->d, b->ctx, b->run, &st, logits, e);
}

/* Resets the first n streams and prefills each with its prompt of len tokens. */
static int prefill_streams(struct bench *b, int n, int len, const float **logits, struct err *e)
{
    for (int i = 0; i < n; i++) {
        decoder_seq_reset(b->seqs[i]);
        prompt_ids(i, len, b->vocab, b->tokens + (size_t)i * (size_t)len);
        b->n_tokens[i] = len;
    }
    return step(b, n, logits, e);
}

/* The next token of each of n streams (greedy), fed back as the next step's input. */
static void pick_next(struct bench *b, int n, const float *logits)
{
    for (int i = 0; i < n; i++) {
        b->next[i] = decoder_argmax(logits + (size_t)i * (size_t)b->vocab, b->vocab);
        b->tokens[i] = b->next[i];
        b->n_tokens[i] = 1;
    }
}

static void print_line(struct bench *b, const char *metric, int streams, int prompt, int steps,
                       double *times, int runs, double foreign, const int32_t *ids, int n_ids)
{
    qsort(times, (size_t)runs, sizeof *times, cmp_double);
    double median = percentile(times, runs, 0.5);
    double tokens = strcmp(metric, "decode") == 0 ? streams
                    : strcmp(metric, "ttft") == 0 ? 1
                                                  : prompt;
    char foreign_s[32] = "null", ids_s[512] = "";
    if (foreign >= 0.0)
        snprintf(foreign_s, sizeof foreign_s, "%.3f", foreign);
    if (n_ids > 0) {
        size_t len = (size_t)snprintf(ids_s, sizeof ids_s, ",\"greedy_ids\":[");
        for (int i = 0; i < n_ids && len < sizeof ids_s - 16; i++)
            len += (size_t)snprintf(ids_s + len, sizeof ids_s - len, "%s%d", i ? "," : "", ids[i]);
        snprintf(ids_s + len, sizeof ids_s - len, "]");
    }
    printf("{\"engine\":\"inferd\",\"model\":\"%s\",\"arch\":\"%s\",\"dtype\":\"%s\","
           "\"threads\":%d,\"metric\":\"%s\",\"streams\":%d,\"prompt\":%d,\"steps\":%d,"
           "\"runs\":%d,\"tokens_per_s\":%.3f,\"median_ms\":%.3f,\"p90_ms\":%.3f,"
           "\"min_ms\":%.3f,\"load_ms\":%.0f,\"foreign_cpu\":%s%s,\"onednn\":\"%s\"}\n",
           b->name, decoder_config(b->d)->model_type, dtype_name(b->o->dt), b->o->threads, metric,
           streams, prompt, steps, runs, tokens / (median * 1e-3), median,
           percentile(times, runs, 0.9), times[0], b->load_ms, foreign_s, ids_s, dnn_describe());
    fflush(stdout);
}

/* prefill (ttft false): a fresh sequence takes a len-token prompt; ttft: the same plus the
 * first token's argmax. Warm-up, then timed runs as `inferd bench`. */
static int measure_prefill(struct bench *b, int len, bool ttft, struct err *e)
{
    const struct opts *o = b->o;
    const float *logits;
    for (int i = 0; i < (o->warmup > 0 ? o->warmup : 1); i++)
        if (prefill_streams(b, 1, len, &logits, e) != 0)
            return -1;
    int runs = 0;
    struct cpu_mark m = cpu_mark();
    double elapsed = 0.0;
    while ((runs < o->min_runs || elapsed < o->min_seconds) && runs < o->max_runs) {
        prompt_ids(0, len, b->vocab, b->tokens);
        b->n_tokens[0] = len;
        double t0 = now_s();
        decoder_seq_reset(b->seqs[0]);
        if (step(b, 1, &logits, e) != 0)
            return -1;
        if (ttft)
            b->next[0] = decoder_argmax(logits, b->vocab);
        double t1 = now_s();
        b->times[runs++] = (t1 - t0) * 1e3;
        elapsed = t1 - m.wall;
    }
    print_line(b, ttft ? "ttft" : "prefill", 1, len, 0, b->times, runs, foreign_since(m), NULL, 0);
    return 0;
}

/* n streams prefilled together (untimed), then warm-up and timed greedy decode steps. */
static int measure_decode(struct bench *b, int n, struct err *e)
{
    const struct opts *o = b->o;
    const float *logits;
    int32_t ids[GREEDY_IDS];
    int n_ids = 0;
    if (prefill_streams(b, n, o->context, &logits, e) != 0)
        return -1;
    pick_next(b, n, logits);
    ids[n_ids++] = b->next[0];
    for (int i = 0; i < o->warmup; i++) {
        if (step(b, n, &logits, e) != 0)
            return -1;
        pick_next(b, n, logits);
        if (n_ids < GREEDY_IDS)
            ids[n_ids++] = b->next[0];
    }
    struct cpu_mark m = cpu_mark();
    for (int s = 0; s < o->steps; s++) {
        double t0 = now_s();
        if (step(b, n, &logits, e) != 0)
            return -1;
        pick_next(b, n, logits);
        b->times[s] = (now_s() - t0) * 1e3;
        if (n_ids < GREEDY_IDS)
            ids[n_ids++] = b->next[0];
    }
    print_line(b, "decode", n, o->context, o->steps, b->times, o->steps, foreign_since(m), ids,
               n_ids);
    return 0;
}

/* ---- the check dump for torch_decoder.py --check ---- */

static void dump_floats(FILE *f, const char *key, const float *x, int n)
{
    fprintf(f, ",\"%s\":[", key);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%.9g", i ? "," : "", (double)x[i]);
    fputc(']', f);
}

static int dump_check(struct bench *b, const char *path, struct err *e)
{
    const float *logits;
    FILE *f = fopen(path, "w");
    if (!f)
        return err_set(e, ERR_IO, "cannot write %s", path);
    int rc = prefill_streams(b, 1, b->o->context, &logits, e);
    if (rc == 0) {
        fprintf(f, "{\"engine\":\"inferd\",\"model\":\"%s\",\"prompt\":%d,\"stream\":0", b->name,
                b->o->context);
        dump_floats(f, "prefill_logits", logits, b->vocab);
        pick_next(b, 1, logits);
        rc = step(b, 1, &logits, e);
    }
    int32_t ids[GREEDY_IDS];
    int n_ids = 0;
    if (rc == 0) {
        ids[n_ids++] = b->next[0];
        dump_floats(f, "decode_logits", logits, b->vocab);
        pick_next(b, 1, logits);
        ids[n_ids++] = b->next[0];
        while (rc == 0 && n_ids < GREEDY_IDS) {
            if ((rc = step(b, 1, &logits, e)) == 0) {
                pick_next(b, 1, logits);
                ids[n_ids++] = b->next[0];
            }
        }
    }
    if (rc == 0) {
        fputs(",\"greedy_ids\":[", f);
        for (int i = 0; i < n_ids; i++)
            fprintf(f, "%s%d", i ? "," : "", ids[i]);
        fputs("]}\n", f);
    }
    if (fclose(f) != 0 && rc == 0)
        rc = err_set(e, ERR_IO, "writing %s failed", path);
    return rc;
}

/* ---- setup ---- */

static int setup(struct bench *b, struct err *e)
{
    const struct opts *o = b->o;
    int max_streams = 1, max_prompt = o->context, max_tokens = o->context + o->warmup + o->steps;
    for (int i = 0; i < o->n_streams; i++)
        max_streams = o->streams[i] > max_streams ? o->streams[i] : max_streams;
    for (int i = 0; i < o->n_prompts; i++) {
        max_prompt = o->prompts[i] > max_prompt ? o->prompts[i] : max_prompt;
        max_tokens = o->prompts[i] > max_tokens ? o->prompts[i] : max_tokens;
    }
    if (o->dump_check && o->context + GREEDY_IDS > max_tokens)
        max_tokens = o->context + GREEDY_IDS;
    const char *slash = strrchr(o->model, '/');
    snprintf(b->name, sizeof b->name, "%s", slash && slash[1] ? slash + 1 : o->model);

    if (!(b->ctx = dnn_ctx_new(o->threads, e)))
        return -1;
    double t = now_s();
    if (decoder_load(o->model, o->dt, b->ctx, &b->d, e) != 0)
        return -1;
    b->load_ms = (now_s() - t) * 1e3;
    b->vocab = decoder_vocab_size(b->d);
    if (b->vocab <= 200)
        return err_set(e, ERR_INVALID, "a vocabulary of %d is too small for the prompts", b->vocab);
    b->run = decoder_run_new();
    b->tokens = malloc((size_t)max_streams * (size_t)max_prompt * sizeof *b->tokens);
    b->n_tokens = malloc((size_t)max_streams * sizeof *b->n_tokens);
    b->next = malloc((size_t)max_streams * sizeof *b->next);
    int n_times = o->max_runs > o->steps ? o->max_runs : o->steps;
    b->times = malloc((size_t)n_times * sizeof *b->times);
    if (!b->run || !b->tokens || !b->n_tokens || !b->next || !b->times)
        return err_set(e, ERR_NOMEM, "out of memory");
    for (; b->n_seqs < max_streams; b->n_seqs++)
        if (decoder_seq_new(b->d, max_tokens, &b->seqs[b->n_seqs], e) != 0)
            return -1;
    return 0;
}

static void teardown(struct bench *b)
{
    for (int i = 0; i < b->n_seqs; i++)
        decoder_seq_free(b->seqs[i]);
    decoder_run_free(b->run);
    decoder_unload(b->d);
    dnn_ctx_free(b->ctx);
    free(b->tokens);
    free(b->n_tokens);
    free(b->next);
    free(b->times);
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse_opts(argc, argv, &o) != 0)
        return 2;
    struct err e = {0};
    struct bench b = {.o = &o};
    int rc = setup(&b, &e);
    if (rc == 0 && o.dump_check)
        rc = dump_check(&b, o.dump_check, &e);
    for (int i = 0; rc == 0 && o.prefill && i < o.n_prompts; i++)
        rc = measure_prefill(&b, o.prompts[i], false, &e);
    if (rc == 0 && o.ttft)
        rc = measure_prefill(&b, o.context, true, &e);
    for (int i = 0; rc == 0 && o.decode && i < o.n_streams; i++)
        rc = measure_decode(&b, o.streams[i], &e);
    if (rc != 0)
        fprintf(stderr, "bench-generate: %s\n", e.msg[0] ? e.msg : "failed");
    teardown(&b);
    return rc == 0 ? 0 : 1;
}
