/* bench_stats: see bench_stats.h. */
#include "bench_stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double bench_own_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double bench_machine_busy_s(void)
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

struct bench_cpu_mark bench_cpu_mark(void)
{
    return (struct bench_cpu_mark){bench_machine_busy_s(), bench_own_cpu_s(), bench_now_s()};
}

double bench_foreign_since(struct bench_cpu_mark m)
{
    double busy = bench_machine_busy_s(), wall = bench_now_s() - m.wall;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (m.busy < 0.0 || busy < 0.0 || wall <= 0.0 || ncpu <= 0)
        return -1.0;
    double f = (busy - m.busy - (bench_own_cpu_s() - m.own)) / wall / (double)ncpu;
    return f < 0.0 ? 0.0 : f;
}

int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_percentile(const double *sorted, int n, double p)
{
    int i = (int)((p * n) + 0.999999) - 1;
    i = i < 0 ? 0 : i >= n ? n - 1 : i;
    return sorted[i];
}

double bench_rand01(uint32_t *state)
{
    uint32_t t = (*state += 0x6d2b79f5u);
    t = (t ^ (t >> 15)) * (t | 1u);
    t ^= t + (t ^ (t >> 7)) * (t | 61u);
    return (double)(t ^ (t >> 14)) / 4294967296.0;
}

void bench_prompt_ids(int stream, int n, int vocab, int32_t *out)
{
    uint32_t state = (uint32_t)(stream + 1) * 0x9e3779b1u;
    for (int i = 0; i < n; i++)
        out[i] = 100 + (int32_t)(bench_rand01(&state) * (double)(vocab - 200));
}

int bench_parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

int bench_parse_list(const char *s, int lo, int hi, int max, int *list, int *n)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    *n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (*n >= max || bench_parse_int(t, lo, hi, &list[(*n)++]) != 0)
            return -1;
    return *n > 0 ? 0 : -1;
}
