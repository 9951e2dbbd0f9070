/* gen_bench: the generation speed of a decoder (engine/models/decoder.h) or of T5
 * (engine/models/t5.h), measured the way bench/torch_decoder.py measures PyTorch; shared by
 * bench-generate (bench/bench_generate.c, which documents the metrics and their JSON lines)
 * and `inferd bench` on a generation model (cli/bench.c).
 *
 * For T5 the "prompt" is the encoder input: prefill is t5_encode of it plus the first decoder
 * step from the decoder start token (what a request costs before its first token), ttft the
 * same plus the argmax, decode the decoder steps of S encoded sequences. */
#ifndef INFERD_GEN_BENCH_H
#define INFERD_GEN_BENCH_H

#include <stdint.h>

#include <stdbool.h>
#include <stdio.h>

#include "bench_stats.h" /* the clocks, percentiles and prompts every benchmark shares */
#include "err.h"
#include "ops/dnnl.h"

#define GEN_BENCH_MAX_LIST 8
#define GEN_BENCH_MAX_STREAMS 256

struct gen_bench_opts {
    const char *model, *dump_check; /* dump_check: NULL, or a file (bench_generate.c) */
    int threads, context, steps, warmup, min_runs, max_runs;
    double min_seconds;
    enum dtype_compute dt;
    int prompts[GEN_BENCH_MAX_LIST], n_prompts; /* prefill lengths */
    int streams[GEN_BENCH_MAX_LIST], n_streams; /* decode stream counts */
    bool prefill, ttft, decode;
};

/* bench-generate's defaults (threads 2, context 128, 64 steps, prompts 128,512, streams
 * 1,16, every metric). */
struct gen_bench_opts gen_bench_defaults(void);

/* Loads o->model (a decoder, or T5 when its config.json says model_type "t5"), runs the
 * metrics o asks for and prints one JSON line per measurement to out. */
int gen_bench_run(const struct gen_bench_opts *o, FILE *out, struct err *e);

#endif
