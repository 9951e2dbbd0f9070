/* perplexity: a decoder's perplexity over a text file through inferd's engine, at one compute
 * dtype, the way transformers' perplexity guide computes it with a sliding window: the text is
 * tokenized whole (the model directory's tokenizer.json), windows of --max-length tokens start
 * every --stride tokens, and each window scores only the tokens the previous window did not
 * (the guide's target masking), each predicted from the positions before it in its window; the
 * first token of the text is never scored. Perplexity = exp(mean negative log-likelihood),
 * log-softmax in double over every scored position's logits (decoder_step.all_logits). Each
 * window is one fresh prefill step, so at INT4 it runs the many-token path (ops.h q4_set_gemm;
 * --q4-gemm 0 scores the exact f32 weight-only kernel instead, at every step: q4_set_exact).
 *
 * Output, one JSON line:
 *   {"model":"tiny-llama-vim","dtype":"int4","q4_gemm":1,"max_length":256,"stride":128,
 *    "tokens":20417,"scored":20416,"nll":..,"perplexity":..,"seconds":..}
 * bench/run_perplexity.sh runs it at every dtype and checks fp32 against transformers.
 *
 * usage: perplexity --model DIR --text FILE [--dtype fp32|bf16|int8|int4] [--max-length 256]
 *          [--stride 128] [--threads 2] [--q4-gemm 1|0] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_stats.h"
#include "models/decoder.h"
#include "ops/ops.h"
#include "tokenizer/tokenizer.h"

struct opts {
    const char *model, *text;
    enum dtype_compute dt;
    const char *dt_name;
    int max_length, stride, threads, q4_gemm;
};

static int usage(void)
{
    fputs("usage: perplexity --model DIR --text FILE [--dtype fp32|bf16|int8|int4]\n"
          "         [--max-length 256] [--stride 128] [--threads 2] [--q4-gemm 1|0]\n",
          stderr);
    return 2;
}

static int parse_dtype(const char *v, struct opts *o)
{
    static const struct {
        const char *name;
        enum dtype_compute dt;
    } rows[] = {{"fp32", DTYPE_COMPUTE_F32},
                {"bf16", DTYPE_COMPUTE_BF16},
                {"int8", DTYPE_COMPUTE_INT8},
                {"int4", DTYPE_COMPUTE_INT4}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (strcmp(v, rows[i].name) == 0) {
            o->dt = rows[i].dt;
            o->dt_name = rows[i].name;
            return 0;
        }
    return 1;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.dt = DTYPE_COMPUTE_F32,
                       .dt_name = "fp32",
                       .max_length = 256,
                       .stride = 128,
                       .threads = 2,
                       .q4_gemm = 1};
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = !v;
        if (bad)
            ;
        else if (strcmp(a, "--model") == 0)
            o->model = v;
        else if (strcmp(a, "--text") == 0)
            o->text = v;
        else if (strcmp(a, "--dtype") == 0)
            bad = parse_dtype(v, o);
        else if (strcmp(a, "--max-length") == 0)
            bad = bench_parse_int(v, 2, 1 << 20, &o->max_length);
        else if (strcmp(a, "--stride") == 0)
            bad = bench_parse_int(v, 1, 1 << 20, &o->stride);
        else if (strcmp(a, "--threads") == 0)
            bad = bench_parse_int(v, 0, 1024, &o->threads);
        else if (strcmp(a, "--q4-gemm") == 0)
            bad = bench_parse_int(v, 0, 1, &o->q4_gemm);
        else
            bad = 1;
        if (bad) {
            fprintf(stderr, "perplexity: bad option %s%s%s\n", a, v ? " " : "", v ? v : "");
            return usage();
        }
    }
    if (o->model && o->text && o->stride > o->max_length) {
        fprintf(stderr, "perplexity: --stride %d is over --max-length %d\n", o->stride,
                o->max_length);
        return 2;
    }
    return o->model && o->text ? 0 : usage();
}

/* The whole file, NUL-terminated, into *out (*len bytes). */
static int read_file(const char *path, char **out, size_t *len, struct err *e)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(e, ERR_NOT_FOUND, "cannot open %s", path);
    char *buf = NULL;
    size_t n = 0, cap = 0, got;
    do {
        if (cap - n < 65536) {
            char *grown = realloc(buf, cap + 65536 + 1);
            if (!grown) {
                free(buf);
                fclose(f);
                return err_set(e, ERR_NOMEM, "out of memory reading %s", path);
            }
            buf = grown;
            cap += 65536;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return err_set(e, ERR_INPUT, "cannot read %s", path);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* -log p(target) from one row of logits (vocab), in double. */
static double nll_of(const float *logits, int vocab, int32_t target)
{
    double mx = logits[0];
    for (int v = 1; v < vocab; v++)
        mx = logits[v] > mx ? logits[v] : mx;
    double sum = 0.0;
    for (int v = 0; v < vocab; v++)
        sum += exp((double)logits[v] - mx);
    return log(sum) + mx - (double)logits[target];
}

/* The sliding-window sum of NLL over ids (n) and the count of scored tokens. */
static int score(const struct opts *o, const int32_t *ids, int n, double *nll, long *scored,
                 struct err *e)
{
    struct dnn_ctx *ctx = dnn_ctx_new(o->threads, e);
    struct decoder_model *d = NULL;
    struct decoder_seq *seq = NULL;
    struct decoder_run *run = NULL;
    int rc = ctx ? 0 : (e ? e->kind : ERR_NOMEM);
    if (rc == 0)
        rc = decoder_load(o->model, o->dt, ctx, &d, e);
    if (rc == 0)
        rc = decoder_seq_new(d, o->max_length, &seq, e);
    if (rc == 0 && !(run = decoder_run_new()))
        rc = err_set(e, ERR_NOMEM, "out of memory");
    int vocab = rc == 0 ? decoder_vocab_size(d) : 0;
    *nll = 0.0;
    *scored = 0;
    for (int begin = 0, prev_end = 0; rc == 0 && begin < n; begin += o->stride) {
        int end = begin + o->max_length < n ? begin + o->max_length : n, len = end - begin;
        decoder_seq_reset(seq);
        struct decoder_seq *seqs[] = {seq};
        struct decoder_step st = {
            .n_seqs = 1, .seqs = seqs, .tokens = ids + begin, .n_tokens = &len, .all_logits = true};
        const float *logits; /* (len, vocab) */
        rc = decoder_forward(d, ctx, run, &st, &logits, e);
        int first = prev_end > begin + 1 ? prev_end : begin + 1; /* first position scored */
        for (int pos = first; rc == 0 && pos < end; pos++) {
            *nll += nll_of(logits + (size_t)(pos - begin - 1) * (size_t)vocab, vocab, ids[pos]);
            (*scored)++;
        }
        prev_end = end;
        if (end == n)
            break;
    }
    decoder_run_free(run);
    decoder_seq_free(seq);
    decoder_unload(d);
    dnn_ctx_free(ctx);
    return rc;
}

static int run(const struct opts *o, struct err *e)
{
    char *text = NULL;
    size_t len = 0;
    struct tokenizer *tk = NULL;
    struct encodings enc = {0};
    int rc = read_file(o->text, &text, &len, e);
    if (rc == 0)
        rc = tokenizer_load(o->model, &tk, e);
    struct tokenizer_params p = tk ? tokenizer_params_default(tk) : (struct tokenizer_params){0};
    if (rc == 0)
        rc = tokenizer_encode(tk, text, len, NULL, 0, &p, &enc, e);
    if (rc == 0 && (enc.n < 1 || enc.v[0].n < 2))
        rc = err_set(e, ERR_INPUT, "%s has fewer than 2 tokens", o->text);
    if (rc == 0) {
        q4_set_gemm(o->q4_gemm);
        q4_set_exact(!o->q4_gemm);
        double nll, t0 = bench_now_s();
        long scored;
        rc = score(o, enc.v[0].ids, (int)enc.v[0].n, &nll, &scored, e);
        const char *name = strrchr(o->model, '/');
        if (rc == 0)
            printf("{\"model\":\"%s\",\"dtype\":\"%s\",\"q4_gemm\":%d,\"max_length\":%d,"
                   "\"stride\":%d,\"tokens\":%zu,\"scored\":%ld,\"nll\":%.9g,\"perplexity\":%.9g,"
                   "\"seconds\":%.1f}\n",
                   name && name[1] ? name + 1 : o->model, o->dt_name, o->q4_gemm, o->max_length,
                   o->stride, enc.v[0].n, scored, nll / (double)scored, exp(nll / (double)scored),
                   bench_now_s() - t0);
    }
    encodings_fini(&enc);
    tokenizer_free(tk);
    free(text);
    return rc;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse_opts(argc, argv, &o) != 0)
        return 2;
    struct err e = {0};
    int rc = run(&o, &e);
    if (rc != 0)
        fprintf(stderr, "perplexity: %s\n", e.msg[0] ? e.msg : "failed");
    return rc == 0 ? 0 : 1;
}
