/* llamacpp_bench: llama.cpp's generation speed through its C API (libllama), measured the way
 * bench-generate measures inferd (bench/bench_generate.c documents the metrics), so that
 * bench/run_llamacpp.sh can set the two side by side line for line. A benchmark tool only,
 * compiled by bench/llamacpp.sh against the llama.cpp it builds; never part of inferd's build.
 *
 *   prefill  a fresh sequence (the KV cache cleared) takes a P-token prompt in one
 *            llama_decode, the logits of its last position read: tokens/s = P / median
 *   ttft     the same for the --context-token prompt plus the greedy argmax
 *   decode   S sequences (--streams), each its own --context-token prompt (untimed), then
 *            --warmup and --steps steps of one llama_decode holding every sequence's next token,
 *            each step timed with the argmax of every sequence: tokens/s = S / median step
 * Prompts are the same token ids as bench-generate's (mulberry32 seeded per stream, ids in
 * 100 .. vocab - 101), so the greedy ids of stream 0 compare with inferd's. One context holds
 * every stream, each sequence with its own KV cells (kv_unified off, as llama.cpp advises for
 * sequences that share no prefix); weights mmapped, CPU only.
 * Output: one JSON line per measurement, bench-generate's fields with engine "llamacpp" and
 * dtype the GGUF's type (--type), plus the KV cache type and the flash attention setting.
 *
 * --dump-check FILE writes, for stream 0's --context-token prompt, the logits after the prefill
 * and after the first decode step and the first 16 greedy ids, in bench-generate's --dump-check
 * format (bench/compare_logits.py compares the two).
 *
 * usage: llamacpp-bench --model FILE.gguf [--name llama-lm-random] [--type F32] [--threads 2]
 *          [--metrics prefill,ttft,decode] [--prompts 128,512] [--context 128] [--streams 1,16]
 *          [--steps 64] [--warmup 2] [--min-runs 3] [--min-seconds 3] [--kv f32|f16]
 *          [--flash-attn auto|on|off] [--dump-check FILE] */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_stats.h"
#include "llama.h"

#ifndef LLAMACPP_VERSION
#define LLAMACPP_VERSION "unknown"
#endif

#define MAX_LIST 8
#define MAX_STREAMS 256
#define MAX_RUNS 1000
#define GREEDY_IDS 16

struct opts {
    const char *model, *name, *type, *dump_check, *kv, *fa;
    int threads, context, steps, warmup, min_runs;
    double min_seconds;
    int prompts[MAX_LIST], n_prompts, streams[MAX_LIST], n_streams;
    bool prefill, ttft, decode;
};

struct bench {
    const struct opts *o;
    struct llama_model *model;
    struct llama_context *ctx;
    struct llama_batch batch;
    int vocab;
    int32_t next[MAX_STREAMS];
    double times[MAX_RUNS];
    double load_ms;
};

/* ---- clocks, prompts and percentiles: bench_stats.h, shared with bench-generate ---- */

/* The first index of the largest value (as decoder_argmax). */
static int32_t argmax(const float *x, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* ---- llama.cpp ---- */

static void quiet_log(enum ggml_log_level level, const char *text, void *user)
{
    (void)user;
    if (level == GGML_LOG_LEVEL_ERROR)
        fputs(text, stderr);
}

/* The batch holds n tokens of sequence seq from position pos; logits of the last only. */
static int feed_prompt(struct bench *b, int seq, const int32_t *ids, int n)
{
    b->batch.n_tokens = n;
    for (int i = 0; i < n; i++) {
        b->batch.token[i] = ids[i];
        b->batch.pos[i] = i;
        b->batch.n_seq_id[i] = 1;
        b->batch.seq_id[i][0] = seq;
        b->batch.logits[i] = i == n - 1;
    }
    return llama_decode(b->ctx, b->batch);
}

/* Sequence seq forgotten and given its prompt of len tokens; *logits of its last position. */
static int prefill(struct bench *b, int seq, int len, const float **logits)
{
    static int32_t ids[1 << 16];
    bench_prompt_ids(seq, len, b->vocab, ids);
    llama_memory_seq_rm(llama_get_memory(b->ctx), seq, -1, -1);
    if (feed_prompt(b, seq, ids, len) != 0)
        return -1;
    *logits = llama_get_logits_ith(b->ctx, -1);
    return *logits ? 0 : -1;
}

/* One step: b->next[i] into sequence i at position pos, for the first n sequences; the next
 * token of each picked (greedy). */
static int step(struct bench *b, int n, int pos, const float **logits0)
{
    b->batch.n_tokens = n;
    for (int i = 0; i < n; i++) {
        b->batch.token[i] = b->next[i];
        b->batch.pos[i] = pos;
        b->batch.n_seq_id[i] = 1;
        b->batch.seq_id[i][0] = i;
        b->batch.logits[i] = 1;
    }
    if (llama_decode(b->ctx, b->batch) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        const float *l = llama_get_logits_ith(b->ctx, i);
        if (!l)
            return -1;
        if (i == 0 && logits0)
            *logits0 = l;
        b->next[i] = argmax(l, b->vocab);
    }
    return 0;
}

/* ---- measurements ---- */

static void print_line(struct bench *b, const char *metric, int streams, int prompt, int steps,
                       double *times, int runs, double foreign, const int32_t *ids, int n_ids)
{
    const struct opts *o = b->o;
    qsort(times, (size_t)runs, sizeof *times, bench_cmp_double);
    double median = bench_percentile(times, runs, 0.5);
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
    printf("{\"engine\":\"llamacpp\",\"model\":\"%s\",\"arch\":\"llama\",\"dtype\":\"%s\","
           "\"threads\":%d,\"metric\":\"%s\",\"streams\":%d,\"prompt\":%d,\"steps\":%d,"
           "\"runs\":%d,\"tokens_per_s\":%.3f,\"median_ms\":%.3f,\"p90_ms\":%.3f,"
           "\"min_ms\":%.3f,\"load_ms\":%.0f,\"foreign_cpu\":%s%s,\"kv\":\"%s\","
           "\"flash_attn\":\"%s\",\"version\":\"%s\"}\n",
           o->name, o->type, o->threads, metric, streams, prompt, steps, runs,
           tokens / (median * 1e-3), median,
           bench_percentile(times, runs, 0.9), times[0], b->load_ms,
           foreign_s, ids_s, o->kv, o->fa, LLAMACPP_VERSION);
    fflush(stdout);
}

static int measure_prefill(struct bench *b, int len, bool ttft)
{
    const struct opts *o = b->o;
    const float *logits;
    for (int i = 0; i < (o->warmup > 0 ? o->warmup : 1); i++)
        if (prefill(b, 0, len, &logits) != 0)
            return -1;
    int runs = 0;
    struct bench_cpu_mark m = bench_cpu_mark();
    double elapsed = 0.0;
    while ((runs < o->min_runs || elapsed < o->min_seconds) && runs < MAX_RUNS) {
        double t0 = bench_now_s();
        if (prefill(b, 0, len, &logits) != 0)
            return -1;
        if (ttft)
            b->next[0] = argmax(logits, b->vocab);
        double t1 = bench_now_s();
        b->times[runs++] = (t1 - t0) * 1e3;
        elapsed = t1 - m.wall;
    }
    print_line(b, ttft ? "ttft" : "prefill", 1, len, 0, b->times, runs,
               bench_foreign_since(m), NULL, 0);
    return 0;
}

static int measure_decode(struct bench *b, int n)
{
    const struct opts *o = b->o;
    const float *logits;
    int32_t ids[GREEDY_IDS];
    int n_ids = 0, pos = o->context;
    for (int i = 0; i < n; i++) {
        if (prefill(b, i, o->context, &logits) != 0)
            return -1;
        b->next[i] = argmax(logits, b->vocab);
    }
    ids[n_ids++] = b->next[0];
    for (int i = 0; i < o->warmup; i++, pos++) {
        if (step(b, n, pos, NULL) != 0)
            return -1;
        if (n_ids < GREEDY_IDS)
            ids[n_ids++] = b->next[0];
    }
    struct bench_cpu_mark m = bench_cpu_mark();
    for (int s = 0; s < o->steps; s++, pos++) {
        double t0 = bench_now_s();
        if (step(b, n, pos, NULL) != 0)
            return -1;
        b->times[s] = (bench_now_s() - t0) * 1e3;
        if (n_ids < GREEDY_IDS)
            ids[n_ids++] = b->next[0];
    }
    print_line(b, "decode", n, o->context, o->steps, b->times, o->steps,
               bench_foreign_since(m), ids, n_ids);
    return 0;
}

static void dump_floats(FILE *f, const char *key, const float *x, int n)
{
    fprintf(f, ",\"%s\":[", key);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%.9g", i ? "," : "", (double)x[i]);
    fputc(']', f);
}

static int dump_check(struct bench *b, const char *path)
{
    const float *logits;
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int rc = prefill(b, 0, b->o->context, &logits), pos = b->o->context;
    int32_t ids[GREEDY_IDS];
    int n_ids = 0;
    if (rc == 0) {
        fprintf(f, "{\"engine\":\"llamacpp\",\"model\":\"%s\",\"prompt\":%d,\"stream\":0",
                b->o->name, b->o->context);
        dump_floats(f, "prefill_logits", logits, b->vocab);
        ids[n_ids++] = b->next[0] = argmax(logits, b->vocab);
        rc = step(b, 1, pos++, &logits);
    }
    if (rc == 0) {
        dump_floats(f, "decode_logits", logits, b->vocab);
        ids[n_ids++] = b->next[0];
    }
    while (rc == 0 && n_ids < GREEDY_IDS)
        if ((rc = step(b, 1, pos++, NULL)) == 0)
            ids[n_ids++] = b->next[0];
    if (rc == 0) {
        fputs(",\"greedy_ids\":[", f);
        for (int i = 0; i < n_ids; i++)
            fprintf(f, "%s%d", i ? "," : "", ids[i]);
        fputs("]}\n", f);
    }
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

/* ---- setup ---- */

static enum llama_flash_attn_type fa_type(const char *s)
{
    return strcmp(s, "on") == 0    ? LLAMA_FLASH_ATTN_TYPE_ENABLED
           : strcmp(s, "off") == 0 ? LLAMA_FLASH_ATTN_TYPE_DISABLED
                                   : LLAMA_FLASH_ATTN_TYPE_AUTO;
}

static int setup(struct bench *b)
{
    const struct opts *o = b->o;
    int max_streams = 1, max_prompt = o->context;
    int per_seq = o->context + o->warmup + o->steps + GREEDY_IDS;
    for (int i = 0; i < o->n_streams; i++)
        max_streams = o->streams[i] > max_streams ? o->streams[i] : max_streams;
    for (int i = 0; i < o->n_prompts; i++)
        max_prompt = o->prompts[i] > max_prompt ? o->prompts[i] : max_prompt;
    per_seq = per_seq > max_prompt ? per_seq : max_prompt;
    int n_batch = max_prompt > max_streams ? max_prompt : max_streams;

    llama_log_set(quiet_log, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    double t = bench_now_s();
    if (!(b->model = llama_model_load_from_file(o->model, mp))) {
        fprintf(stderr, "llamacpp-bench: cannot load %s\n", o->model);
        return -1;
    }
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(per_seq * max_streams);
    cp.n_batch = cp.n_ubatch = (uint32_t)n_batch;
    cp.n_seq_max = (uint32_t)max_streams;
    cp.n_threads = cp.n_threads_batch = o->threads;
    cp.type_k = cp.type_v = strcmp(o->kv, "f16") == 0 ? GGML_TYPE_F16 : GGML_TYPE_F32;
    cp.flash_attn_type = fa_type(o->fa);
    cp.kv_unified = false;
    cp.no_perf = true;
    if (!(b->ctx = llama_init_from_model(b->model, cp))) {
        fprintf(stderr, "llamacpp-bench: cannot create a context for %s\n", o->model);
        return -1;
    }
    b->load_ms = (bench_now_s() - t) * 1e3;
    b->vocab = llama_vocab_n_tokens(llama_model_get_vocab(b->model));
    if (b->vocab <= 200 || max_prompt > (1 << 16)) {
        fprintf(stderr, "llamacpp-bench: vocabulary %d or prompts out of range\n", b->vocab);
        return -1;
    }
    b->batch = llama_batch_init(n_batch, 0, 1);
    return 0;
}

/* ---- options ---- */

static int parse_metrics(const char *s, struct opts *o)
{
    o->prefill = strstr(s, "prefill") != NULL;
    o->ttft = strstr(s, "ttft") != NULL;
    o->decode = strstr(s, "decode") != NULL;
    return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.name = "model",
                       .type = "?",
                       .kv = "f32",
                       .fa = "auto",
                       .threads = 2,
                       .context = 128,
                       .steps = 64,
                       .warmup = 2,
                       .min_runs = 3,
                       .min_seconds = 3.0,
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
        else if (strcmp(a, "--name") == 0)
            o->name = v;
        else if (strcmp(a, "--type") == 0)
            o->type = v;
        else if (strcmp(a, "--dump-check") == 0)
            o->dump_check = v;
        else if (strcmp(a, "--kv") == 0)
            bad = strcmp(v, "f32") && strcmp(v, "f16") ? 1 : (o->kv = v, 0);
        else if (strcmp(a, "--flash-attn") == 0)
            bad = strcmp(v, "auto") && strcmp(v, "on") && strcmp(v, "off") ? 1 : (o->fa = v, 0);
        else if (strcmp(a, "--threads") == 0)
            bad = bench_parse_int(v, 1, 1024, &o->threads);
        else if (strcmp(a, "--context") == 0)
            bad = bench_parse_int(v, 1, 1 << 16, &o->context);
        else if (strcmp(a, "--steps") == 0)
            bad = bench_parse_int(v, 1, MAX_RUNS, &o->steps);
        else if (strcmp(a, "--warmup") == 0)
            bad = bench_parse_int(v, 0, 1000, &o->warmup);
        else if (strcmp(a, "--min-runs") == 0)
            bad = bench_parse_int(v, 1, MAX_RUNS, &o->min_runs);
        else if (strcmp(a, "--min-seconds") == 0) {
            char *end;
            o->min_seconds = strtod(v, &end);
            bad = *end != '\0' || o->min_seconds < 0;
        } else if (strcmp(a, "--prompts") == 0)
            bad = bench_parse_list(v, 1, 1 << 16, MAX_LIST, o->prompts, &o->n_prompts);
        else if (strcmp(a, "--streams") == 0)
            bad = bench_parse_list(v, 1, MAX_STREAMS, MAX_LIST, o->streams, &o->n_streams);
        else if (strcmp(a, "--metrics") == 0)
            bad = parse_metrics(v, o);
        else
            bad = 1;
        if (bad) {
            fprintf(stderr, "llamacpp-bench: bad option %s%s%s\n", a, v ? " " : "", v ? v : "");
            return -1;
        }
    }
    if (!o->model)
        fputs("usage: llamacpp-bench --model FILE.gguf [--name NAME] [--type F32] [--threads 2]\n"
              "         [--metrics prefill,ttft,decode] [--prompts 128,512] [--context 128]\n"
              "         [--streams 1,16] [--steps 64] [--warmup 2] [--min-runs 3]\n"
              "         [--min-seconds 3] [--kv f32|f16] [--flash-attn auto|on|off]\n"
              "         [--dump-check FILE]\n",
              stderr);
    return o->model ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse_opts(argc, argv, &o) != 0)
        return 2;
    static struct bench b;
    b.o = &o;
    int rc = setup(&b);
    if (rc == 0 && o.dump_check && (rc = dump_check(&b, o.dump_check)) != 0)
        fprintf(stderr, "llamacpp-bench: the check dump failed\n");
    for (int i = 0; rc == 0 && o.prefill && i < o.n_prompts; i++)
        rc = measure_prefill(&b, o.prompts[i], false);
    if (rc == 0 && o.ttft)
        rc = measure_prefill(&b, o.context, true);
    for (int i = 0; rc == 0 && o.decode && i < o.n_streams; i++)
        rc = measure_decode(&b, o.streams[i]);
    if (rc != 0)
        fprintf(stderr, "llamacpp-bench: llama_decode failed\n");
    if (b.ctx) {
        llama_batch_free(b.batch);
        llama_free(b.ctx);
    }
    llama_model_free(b.model);
    llama_backend_free();
    return rc == 0 ? 0 : 1;
}
