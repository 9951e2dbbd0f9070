/* s2s_attn: the attention of the encoder-decoder models (T5, the BART family) over their
 * packed q/k/v rows: every (sequence, head) pair on the OpenMP threads, scores scaled, plus an
 * optional relative-position bias (T5), causal or not. */
#ifndef INFERD_S2S_ATTN_H
#define INFERD_S2S_ATTN_H

#include <stdbool.h>

/* One sequence's attention: n_q queries at positions pos0 .. pos0 + n_q - 1 over n_k keys at
 * positions 0 .. n_k - 1; causal: query p sees keys 0 .. p. Head h of row t of q at
 * q + t ld_q + h hd; of key (value) row j at k (v) + j ld_kv + h hd. */
struct s2s_attn_job {
    const float *q, *k, *v;
    float *out;
    int n_q, n_k, pos0; /* pos0: the first query's position (causal masking, the bias) */
};

/* What the jobs of one call share. */
struct s2s_attn_geom {
    int n_heads, hd, ld_q, ld_kv, ld_out; /* head size; row strides in floats */
    bool causal;
    float scale;      /* the scores' factor (T5: 1, its scale is folded into q) */
    const float *rel; /* NULL, or (n_heads, 2R + 1): the bias of key - query position */
    int R;
};

/* scratch holds max_keys + 16 floats per thread of the team (omp_get_max_threads()). */
void s2s_attend(const struct s2s_attn_geom *g, const struct s2s_attn_job *jobs, int n_jobs,
                float *scratch, int max_keys);

#endif
