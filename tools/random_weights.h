/* random_weights: the random-weight safetensors files the benchmark tools write
 * (tools/make_random_bert.c, bench/make_random_decoder.c): a list of named f32 tensors, each
 * filled with normal(0, 1) * 0.02, ones or zeros from one fixed-seed PRNG (splitmix64 +
 * Box-Muller), so every run writes the same bytes. Random weights say nothing about accuracy,
 * only about speed. Little-endian hosts only. */
#ifndef INFERD_RANDOM_WEIGHTS_H
#define INFERD_RANDOM_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#define MAX_TENSORS 256

enum fill { FILL_NORMAL, FILL_ONES, FILL_ZEROS };

struct tensor_spec {
    char name[128];
    int64_t rows, cols; /* cols 0: 1-D (rows) */
    enum fill fill;
};

struct model_spec {
    struct tensor_spec t[MAX_TENSORS];
    int n;
};

/* Appends a tensor (at most MAX_TENSORS; more is a programming error: the tool aborts). */
void add(struct model_spec *m, const char *name, int64_t rows, int64_t cols, enum fill fill);
size_t n_elements(const struct tensor_spec *t);
/* Writes DIR/model.safetensors (u64 LE header length, JSON header padded with spaces to 8
 * bytes, data) under a temporary name, then renames it, so a half-written model is never taken
 * for a complete one. prog names the tool in messages. 0 or 1. */
int write_safetensors(const char *dir, const struct model_spec *m, const char *prog);

#endif
