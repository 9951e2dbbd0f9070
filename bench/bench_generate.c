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
 * usage: bench-generate --model DIR [--threads 2] [--dtype fp32|bf16|int8|int4]
 *          [--metrics prefill,ttft,decode] [--prompts 128,512] [--context 128]
 *          [--streams 1,16] [--steps 64] [--warmup 2] [--min-runs 3] [--min-seconds 3]
 *          [--dump-check FILE] [--q4-gemm 1|0]
 * --q4-gemm 0 keeps INT4 on its exact f32 weight-only kernel at every token count (ops.h
 * q4_set_gemm and q4_set_exact), the arithmetic before the s8 prefill path and the s8 decode
 * kernel, for before/after runs (bench/run_int4.sh).
 * A T5 model directory (model_type "t5") is measured the same way (bench/gen_bench.h). The
 * measurements live in bench/gen_bench.c, which `inferd bench` shares. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen_bench.h"
#include "ops/ops.h"

/* ---- options ---- */

static int parse_metrics(const char *s, struct gen_bench_opts *o)
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
    fputs("usage: bench-generate --model DIR [--threads 2] [--dtype fp32|bf16|int8|int4]\n"
          "         [--metrics prefill,ttft,decode] [--prompts 128,512] [--context 128]\n"
          "         [--streams 1,16] [--steps 64] [--warmup 2] [--min-runs 3]\n"
          "         [--min-seconds 3] [--dump-check FILE] [--q4-gemm 1|0]\n",
          stderr);
    return 2;
}

static int parse_opts(int argc, char **argv, struct gen_bench_opts *o)
{
    *o = gen_bench_defaults();
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
            bad = bench_parse_int(v, 0, 1024, &o->threads);
        else if (strcmp(a, "--q4-gemm") == 0) {
            int on = 1;
            bad = bench_parse_int(v, 0, 1, &on);
            q4_set_gemm(on);
            q4_set_exact(!on);
        } else if (strcmp(a, "--context") == 0)
            bad = bench_parse_int(v, 1, 1 << 20, &o->context);
        else if (strcmp(a, "--steps") == 0)
            bad = bench_parse_int(v, 1, 100000, &o->steps);
        else if (strcmp(a, "--warmup") == 0)
            bad = bench_parse_int(v, 0, 100000, &o->warmup);
        else if (strcmp(a, "--min-runs") == 0)
            bad = bench_parse_int(v, 1, o->max_runs, &o->min_runs);
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
            else if (strcmp(v, "int4") == 0)
                o->dt = DTYPE_COMPUTE_INT4;
            else
                bad = 1;
        } else if (strcmp(a, "--prompts") == 0)
            bad = bench_parse_list(v, 1, 1 << 20, GEN_BENCH_MAX_LIST, o->prompts, &o->n_prompts);
        else if (strcmp(a, "--streams") == 0)
            bad = bench_parse_list(v, 1, GEN_BENCH_MAX_STREAMS, GEN_BENCH_MAX_LIST, o->streams,
                                   &o->n_streams);
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

int main(int argc, char **argv)
{
    struct gen_bench_opts o;
    if (parse_opts(argc, argv, &o) != 0)
        return 2;
    struct err e = {0};
    int rc = gen_bench_run(&o, stdout, &e);
    if (rc != 0)
        fprintf(stderr, "bench-generate: %s\n", e.msg[0] ? e.msg : "failed");
    return rc == 0 ? 0 : 1;
}
