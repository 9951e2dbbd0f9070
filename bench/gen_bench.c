/* gen_bench: see gen_bench.h; the metrics and their JSON lines are described in
 * bench/bench_generate.c. A model kind (struct arch) says how to reset a stream, feed it its
 * prompt and step it; the timing is the same for every kind. */
#include "gen_bench.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "loader/hf_config.h"
#include "models/decoder.h"
#include "models/t5.h"

#define MAX_STREAMS GEN_BENCH_MAX_STREAMS
#define GREEDY_IDS 16

struct bench;

/* How one kind of model loads, takes a prompt and steps. */
struct arch {
    int (*load)(struct bench *b, struct err *e);
    /* room for max_streams sequences of max_prompt input and max_tokens in all */
    int (*seqs_new)(struct bench *b, int max_streams, int max_prompt, int max_tokens,
                    struct err *e);
    /* the first n streams reset and given their prompt of len tokens (b->tokens): logits of
     * the last prompt position (T5: of the first decoder step) */
    int (*prefill)(struct bench *b, int n, int len, const float **logits, struct err *e);
    /* one token (b->tokens[i]) into each of the first n streams */
    int (*step)(struct bench *b, int n, const float **logits, struct err *e);
    const struct hf_config *(*config)(const struct bench *b);
    void (*unload)(struct bench *b);
};

struct bench {
    const struct gen_bench_opts *o;
    const struct arch *arch;
    FILE *out;
    struct dnn_ctx *ctx;
    struct decoder_model *d; /* a decoder, or */
    struct decoder_run *run;
    struct decoder_seq *seqs[MAX_STREAMS];
    struct t5_model *t5; /* T5 */
    struct t5_run *t5_run;
    struct t5_seq *t5_seqs[MAX_STREAMS];
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
    static const char *const names[DTYPE_COMPUTE_COUNT] = {
        [DTYPE_COMPUTE_F32] = "fp32", [DTYPE_COMPUTE_BF16] = "bf16",
        [DTYPE_COMPUTE_INT8] = "int8", [DTYPE_COMPUTE_INT4] = "int4"};
    return (unsigned)dt < DTYPE_COMPUTE_COUNT ? names[dt] : "fp32";
}

struct gen_bench_opts gen_bench_defaults(void)
{
    return (struct gen_bench_opts){.threads = 2,
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
}

/* ---- decoders ---- */

static int dec_load(struct bench *b, struct err *e)
{
    int rc = decoder_load(b->o->model, b->o->dt, b->ctx, &b->d, e);
    if (rc == 0)
        b->vocab = decoder_vocab_size(b->d);
    if (rc == 0 && !(b->run = decoder_run_new()))
        rc = err_set(e, ERR_NOMEM, "out of memory");
    return rc;
}

static int dec_seqs_new(struct bench *b, int max_streams, int max_prompt, int max_tokens,
                        struct err *e)
{
    (void)max_prompt;
    for (; b->n_seqs < max_streams; b->n_seqs++)
        if (decoder_seq_new(b->d, max_tokens, &b->seqs[b->n_seqs], e) != 0)
            return -1;
    return 0;
}

/* One step: the first n_streams sequences, each with n_tokens[i] of b->tokens. */
static int dec_feed(struct bench *b, int n_streams, const float **logits, struct err *e)
{
    struct decoder_step st = {
        .n_seqs = n_streams, .seqs = b->seqs, .tokens = b->tokens, .n_tokens = b->n_tokens};
    return decoder_forward(b->d, b->ctx, b->run, &st, logits, e);
}

static int dec_prefill(struct bench *b, int n, int len, const float **logits, struct err *e)
{
    for (int i = 0; i < n; i++) {
        decoder_seq_reset(b->seqs[i]);
        b->n_tokens[i] = len;
    }
    return dec_feed(b, n, logits, e);
}

static int dec_step(struct bench *b, int n, const float **logits, struct err *e)
{
    return dec_feed(b, n, logits, e);
}

static const struct hf_config *dec_config(const struct bench *b)
{
    return decoder_config(b->d);
}

static void dec_unload(struct bench *b)
{
    for (int i = 0; i < b->n_seqs; i++)
        decoder_seq_free(b->seqs[i]);
    decoder_run_free(b->run);
    decoder_unload(b->d);
}

static const struct arch decoder_arch = {
    .load = dec_load,
    .seqs_new = dec_seqs_new,
    .prefill = dec_prefill,
    .step = dec_step,
    .config = dec_config,
    .unload = dec_unload,
};

/* ---- T5 ---- */

static int t5_bench_load(struct bench *b, struct err *e)
{
    int rc = t5_load(b->o->model, b->o->dt, b->ctx, &b->t5, e);
    if (rc == 0)
        b->vocab = t5_vocab_size(b->t5);
    if (rc == 0 && !(b->t5_run = t5_run_new()))
        rc = err_set(e, ERR_NOMEM, "out of memory");
    return rc;
}

static int t5_bench_seqs_new(struct bench *b, int max_streams, int max_prompt, int max_tokens,
                             struct err *e)
{
    for (; b->n_seqs < max_streams; b->n_seqs++)
        if (t5_seq_new(b->t5, max_prompt, max_tokens + 1, &b->t5_seqs[b->n_seqs], e) != 0)
            return -1;
    return 0;
}

static int t5_bench_step(struct bench *b, int n, const float **logits, struct err *e)
{
    for (int i = 0; i < n; i++)
        b->n_tokens[i] = 1;
    struct t5_step st = {
        .n_seqs = n, .seqs = b->t5_seqs, .tokens = b->tokens, .n_tokens = b->n_tokens};
    return t5_forward(b->t5, b->ctx, b->t5_run, &st, logits, e);
}

/* The encoder over each prompt, then the first decoder step from the start token. */
static int t5_bench_prefill(struct bench *b, int n, int len, const float **logits, struct err *e)
{
    for (int i = 0; i < n; i++) {
        t5_seq_reset(b->t5_seqs[i]);
        b->n_tokens[i] = len;
    }
    struct t5_encode_batch enc = {
        .n_seqs = n, .seqs = b->t5_seqs, .ids = b->tokens, .n_ids = b->n_tokens};
    int rc = t5_encode(b->t5, b->ctx, b->t5_run, &enc, e);
    for (int i = 0; rc == 0 && i < n; i++)
        b->tokens[i] = t5_decoder_start_token_id(b->t5);
    return rc ? rc : t5_bench_step(b, n, logits, e);
}

static const struct hf_config *t5_bench_config(const struct bench *b)
{
    return t5_config(b->t5);
}

static void t5_bench_unload(struct bench *b)
{
    for (int i = 0; i < b->n_seqs; i++)
        t5_seq_free(b->t5_seqs[i]);
    t5_run_free(b->t5_run);
    t5_unload(b->t5);
}

static const struct arch t5_arch = {
    .load = t5_bench_load,
    .seqs_new = t5_bench_seqs_new,
    .prefill = t5_bench_prefill,
    .step = t5_bench_step,
    .config = t5_bench_config,
    .unload = t5_bench_unload,
};

/* ---- measurements ---- */

/* One step: one token (b->tokens[i]) into each of the first n_streams sequences. */
static int step(struct bench *b, int n_streams, const float **logits, struct err *e)
{
    return b->arch->step(b, n_streams, logits, e);
}

/* Resets the first n streams and prefills each with its prompt of len tokens. */
static int prefill_streams(struct bench *b, int n, int len, const float **logits, struct err *e)
{
    for (int i = 0; i < n; i++)
        bench_prompt_ids(i, len, b->vocab, b->tokens + (size_t)i * (size_t)len);
    return b->arch->prefill(b, n, len, logits, e);
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
    fprintf(b->out, "{\"engine\":\"inferd\",\"model\":\"%s\",\"arch\":\"%s\",\"dtype\":\"%s\","
           "\"threads\":%d,\"metric\":\"%s\",\"streams\":%d,\"prompt\":%d,\"steps\":%d,"
           "\"runs\":%d,\"tokens_per_s\":%.3f,\"median_ms\":%.3f,\"p90_ms\":%.3f,"
           "\"min_ms\":%.3f,\"load_ms\":%.0f,\"foreign_cpu\":%s%s,\"onednn\":\"%s\"}\n",
           b->name, b->arch->config(b)->model_type, dtype_name(b->o->dt), b->o->threads, metric,
           streams, prompt, steps, runs, tokens / (median * 1e-3), median,
           bench_percentile(times, runs, 0.9), times[0], b->load_ms,
           foreign_s, ids_s, dnn_describe());
    fflush(b->out);
}

/* prefill (ttft false): a fresh sequence takes a len-token prompt; ttft: the same plus the
 * first token's argmax. Warm-up, then timed runs as `inferd bench`. */
static int measure_prefill(struct bench *b, int len, bool ttft, struct err *e)
{
    const struct gen_bench_opts *o = b->o;
    const float *logits;
    for (int i = 0; i < (o->warmup > 0 ? o->warmup : 1); i++)
        if (prefill_streams(b, 1, len, &logits, e) != 0)
            return -1;
    int runs = 0;
    struct bench_cpu_mark m = bench_cpu_mark();
    double elapsed = 0.0;
    while ((runs < o->min_runs || elapsed < o->min_seconds) && runs < o->max_runs) {
        bench_prompt_ids(0, len, b->vocab, b->tokens);
        double t0 = now_seconds();
        if (b->arch->prefill(b, 1, len, &logits, e) != 0)
            return -1;
        if (ttft)
            b->next[0] = decoder_argmax(logits, b->vocab);
        double t1 = now_seconds();
        b->times[runs++] = (t1 - t0) * 1e3;
        elapsed = t1 - m.wall;
    }
    print_line(b, ttft ? "ttft" : "prefill", 1, len, 0, b->times, runs,
               bench_foreign_since(m), NULL, 0);
    return 0;
}

/* n streams prefilled together (untimed), then warm-up and timed greedy decode steps. */
static int measure_decode(struct bench *b, int n, struct err *e)
{
    const struct gen_bench_opts *o = b->o;
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
    struct bench_cpu_mark m = bench_cpu_mark();
    for (int s = 0; s < o->steps; s++) {
        double t0 = now_seconds();
        if (step(b, n, &logits, e) != 0)
            return -1;
        pick_next(b, n, logits);
        b->times[s] = (now_seconds() - t0) * 1e3;
        if (n_ids < GREEDY_IDS)
            ids[n_ids++] = b->next[0];
    }
    print_line(b, "decode", n, o->context, o->steps, b->times, o->steps,
               bench_foreign_since(m), ids, n_ids);
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

/* T5 when config.json says so, else a decoder (whose loader refuses anything else). */
static const struct arch *pick_arch(const char *dir, struct err *e)
{
    struct hf_config hc;
    if (hf_config_load(dir, &hc, e) != 0)
        return NULL;
    bool t5 = strcmp(hc.model_type, "t5") == 0 || strcmp(hc.model_type, "mt5") == 0;
    hf_config_fini(&hc);
    return t5 ? &t5_arch : &decoder_arch;
}

static int setup(struct bench *b, struct err *e)
{
    const struct gen_bench_opts *o = b->o;
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

    if (!(b->ctx = dnn_ctx_new(o->threads, e)) || !(b->arch = pick_arch(o->model, e)))
        return -1;
    double t = now_seconds();
    if (b->arch->load(b, e) != 0)
        return -1;
    b->load_ms = (now_seconds() - t) * 1e3;
    if (b->vocab <= 200)
        return err_set(e, ERR_INVALID, "a vocabulary of %d is too small for the prompts", b->vocab);
    b->tokens = malloc((size_t)max_streams * (size_t)max_prompt * sizeof *b->tokens);
    b->n_tokens = malloc((size_t)max_streams * sizeof *b->n_tokens);
    b->next = malloc((size_t)max_streams * sizeof *b->next);
    int n_times = o->max_runs > o->steps ? o->max_runs : o->steps;
    b->times = malloc((size_t)n_times * sizeof *b->times);
    if (!b->tokens || !b->n_tokens || !b->next || !b->times)
        return err_set(e, ERR_NOMEM, "out of memory");
    return b->arch->seqs_new(b, max_streams, max_prompt, max_tokens, e);
}

static void teardown(struct bench *b)
{
    if (b->arch)
        b->arch->unload(b);
    dnn_ctx_free(b->ctx);
    free(b->tokens);
    free(b->n_tokens);
    free(b->next);
    free(b->times);
}

int gen_bench_run(const struct gen_bench_opts *o, FILE *out, struct err *e)
{
    struct bench b = {.o = o, .out = out};
    int rc = setup(&b, e);
    if (rc == 0 && o->dump_check)
        rc = dump_check(&b, o->dump_check, e);
    for (int i = 0; rc == 0 && o->prefill && i < o->n_prompts; i++)
        rc = measure_prefill(&b, o->prompts[i], false, e);
    if (rc == 0 && o->ttft)
        rc = measure_prefill(&b, o->context, true, e);
    for (int i = 0; rc == 0 && o->decode && i < o->n_streams; i++)
        rc = measure_decode(&b, o->streams[i], e);
    teardown(&b);
    return rc;
}
