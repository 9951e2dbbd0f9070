/* s2s_attn: the encoder-decoder models' attention (s2s_attn.h), shared by t5_forward.c and
 * bart_forward.c. The per-head kernel is plain C compiled for AVX-512, AVX2 and baseline
 * x86-64 (target_clones picks one when the library loads, as ops/kv_attention.c): its dot
 * products and value sums are head_dim-long vector loops. */
#include "models/s2s_attn.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <string.h>

/* Not under ThreadSanitizer (see ops/kv_attention.c). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                           \
    !defined(__SANITIZE_THREAD__)
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

VECTOR_CLONES static void attend_one(const struct s2s_attn_geom *g, const struct s2s_attn_job *j, int h,
                       float *sc)
{
    const int hd = g->hd, R = g->R;
    const float *rel = g->rel ? g->rel + (size_t)h * (size_t)(2 * R + 1) + R : NULL;
    for (int t = 0; t < j->n_q; t++) {
        int pos = j->pos0 + t, nk = g->causal ? pos + 1 : j->n_k;
        const float *q = j->q + (size_t)t * (size_t)g->ld_q + (size_t)h * (size_t)hd;
        float mx = -FLT_MAX;
        for (int i = 0; i < nk; i++) {
            const float *k = j->k + (size_t)i * (size_t)g->ld_kv + (size_t)h * (size_t)hd;
            float s = 0.0f;
#pragma omp simd reduction(+ : s)
            for (int d = 0; d < hd; d++)
                s += q[d] * k[d];
            s *= g->scale;
            if (rel) {
                int r = i - pos;
                s += rel[r < -R ? -R : r > R ? R : r];
            }
            sc[i] = s;
            mx = s > mx ? s : mx;
        }
        float sum = 0.0f;
        for (int i = 0; i < nk; i++)
            sum += sc[i] = expf(sc[i] - mx);
        float inv = 1.0f / sum;
        float *o = j->out + (size_t)t * (size_t)g->ld_out + (size_t)h * (size_t)hd;
        memset(o, 0, (size_t)hd * sizeof *o);
        for (int i = 0; i < nk; i++) {
            const float *v = j->v + (size_t)i * (size_t)g->ld_kv + (size_t)h * (size_t)hd;
            float p = sc[i] * inv;
#pragma omp simd
            for (int d = 0; d < hd; d++)
                o[d] += p * v[d];
        }
    }
}

void s2s_attend(const struct s2s_attn_geom *g, const struct s2s_attn_job *jobs, int n_jobs,
                float *scratch, int max_keys)
{
    int n_items = n_jobs * g->n_heads;
    size_t per_thread = (size_t)max_keys + 16;
    long work = 0;
    for (int i = 0; i < n_jobs; i++)
        work += (long)jobs[i].n_q * jobs[i].n_k;
#pragma omp parallel if (n_items > 1 && work * g->n_heads * g->hd >= 32768)
    {
        float *sc = scratch + (size_t)omp_get_thread_num() * per_thread;
#pragma omp for schedule(dynamic)
        for (int it = 0; it < n_items; it++)
            attend_one(g, &jobs[it / g->n_heads], it % g->n_heads, sc);
    }
}
