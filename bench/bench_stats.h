/* bench_stats: what the generation benchmarks share to measure alike, with no dependency on
 * inferd (bench/llamacpp_bench.c is compiled against libllama alone, by bench/llamacpp.sh):
 * clocks (wall, this process's CPU, the machine's busy CPU from /proc/stat), the share of the
 * machine other processes took during a measurement, percentiles, the prompts' token ids
 * (mulberry32 seeded per stream, so every engine gets the same ids), and their command lines'
 * numbers. */
#ifndef INFERD_BENCH_STATS_H
#define INFERD_BENCH_STATS_H

#include <stdint.h>

/* Monotonic wall clock, seconds. */
double bench_now_s(void);
/* CPU seconds this process has used. */
double bench_own_cpu_s(void);
/* Seconds the machine's cores were busy (-1 without /proc/stat). */
double bench_machine_busy_s(void);

/* The machine's and this process's CPU clocks at the start of a measurement. */
struct bench_cpu_mark {
    double busy, own, wall;
};
struct bench_cpu_mark bench_cpu_mark(void);
/* The share of the machine other processes took since m, or -1 when unknown. */
double bench_foreign_since(struct bench_cpu_mark m);

/* qsort comparator of doubles; the p-th (0..1) of n sorted values (nearest rank). */
int bench_cmp_double(const void *a, const void *b);
double bench_percentile(const double *sorted, int n, double p);

/* mulberry32: uniform in [0, 1) from *state. */
double bench_rand01(uint32_t *state);
/* Stream s's prompt of n tokens: ids in 100 .. vocab - 101. */
void bench_prompt_ids(int stream, int n, int vocab, int32_t *out);

/* A decimal int in lo .. hi into *out: 0, or -1 (out unchanged). */
int bench_parse_int(const char *s, int lo, int hi, int *out);
/* "128,512" into list: at most max values, each in lo .. hi; 0, or -1. */
int bench_parse_list(const char *s, int lo, int hi, int max, int *list, int *n);

#endif
