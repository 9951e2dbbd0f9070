/* kv_attention: causal scaled dot-product attention of a decoder step's new tokens over each
 * sequence's KV cache, and the blocked key layout that makes it fast (see ops/kv.h).
 *
 * A work item is (sequence, kv head, block of up to QBLOCK new tokens): its query rows are
 * those tokens' queries of every head sharing the kv head (grouped-query attention), so each
 * cached key and value is read once per item. Per item:
 *   scores (rows, keys) = q . k * scale   KV_BLOCK keys at a time in head_dim vector FMAs per
 *                                         row (keys are stored transposed per block), four rows
 *                                         at a time so that one key load serves four FMAs;
 *                                         soft-capped (cap tanh(x / cap)) when asked (Gemma 2)
 *   softmax per row over its own keys     causal/window mask; f32 with a vector exp (a few
 *                                         ulp of expf); normalized before weighing the values;
 *                                         zeros over the other keys of the item
 *   out = p v                             four rows at a time, KV_BLOCK dimensions per vector
 *                                         register: one value load serves four FMAs
 * The kernels are plain C on GCC vector types of KV_BLOCK floats, compiled for AVX-512, AVX2
 * and baseline x86-64 (target_clones picks one when the library loads). Items are shared out
 * dynamically over the OpenMP threads. A decode step (one token per sequence) reads each
 * sequence's cache once and is bound by memory bandwidth; a prefill is compute-bound. */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "ops/kv.h"

/* New tokens per work item: a prefill's key blocks stay in cache across the block. */
#define QBLOCK 16

/* Not under ThreadSanitizer: the clones' resolver runs while the library is relocated, before
 * TSan's runtime is set up, and its instrumentation crashes there. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                           \
    !defined(__SANITIZE_THREAD__)
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

struct item {
    int seq, kv_head, t0, t1; /* tokens t0 .. t1 - 1 of sequence seq */
};

size_t kv_key_cache_floats(int n_positions, int n_kv_heads, int head_dim)
{
    size_t blocks = ((size_t)n_positions + KV_BLOCK - 1) / KV_BLOCK;
    return blocks * (size_t)n_kv_heads * (size_t)head_dim * KV_BLOCK;
}

void kv_store_key(float *k, int n_kv_heads, int head_dim, int pos, const float *key)
{
    float *blk = k + (size_t)(pos / KV_BLOCK) * (size_t)n_kv_heads * (size_t)head_dim * KV_BLOCK;
    for (int g = 0; g < n_kv_heads; g++)
        for (int d = 0; d < head_dim; d++)
            blk[((size_t)g * (size_t)head_dim + (size_t)d) * KV_BLOCK + (size_t)(pos % KV_BLOCK)] =
                key[(size_t)g * (size_t)head_dim + (size_t)d];
}

/* KV_BLOCK floats as one vector (GCC vector extension: one zmm with AVX-512, two ymm with AVX2,
 * four xmm otherwise); vf_u is its unaligned flavour for loads from the caches. */
typedef float vf __attribute__((vector_size(KV_BLOCK * sizeof(float))));
typedef float vf_u __attribute__((vector_size(KV_BLOCK * sizeof(float)), aligned(4)));

/* Stores a vector of scores, scaled. */
#define STORE_SCORES(dst, acc, scale) (*(vf_u *)(dst) = (acc) * (scale))

/* sc[qi * ld + (b - b0) * KV_BLOCK + l] = (q[qi] . key of position b KV_BLOCK + l) * scale for
 * the key blocks b0 .. b1 - 1 of one kv head, whose block b starts at k + b * stride. */
VECTOR_CLONES static void scores(const float *const *q, int nq, const float *k, size_t stride,
                                 int hd, int b0, int b1, float scale, float *sc, size_t ld)
{
    for (int b = b0; b < b1; b++) {
        const float *kb = k + (size_t)b * stride; /* (hd, KV_BLOCK) */
        float *col = sc + (size_t)(b - b0) * KV_BLOCK;
        int qi = 0;
        for (; qi + 4 <= nq; qi += 4) {
            vf a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
            const float *q0 = q[qi], *q1 = q[qi + 1], *q2 = q[qi + 2], *q3 = q[qi + 3];
            for (int d = 0; d < hd; d++) {
                vf kr = *(const vf_u *)(kb + (size_t)d * KV_BLOCK);
                a0 += q0[d] * kr;
                a1 += q1[d] * kr;
                a2 += q2[d] * kr;
                a3 += q3[d] * kr;
            }
            STORE_SCORES(col + (size_t)qi * ld, a0, scale);
            STORE_SCORES(col + (size_t)(qi + 1) * ld, a1, scale);
            STORE_SCORES(col + (size_t)(qi + 2) * ld, a2, scale);
            STORE_SCORES(col + (size_t)(qi + 3) * ld, a3, scale);
        }
        for (; qi < nq; qi++) {
            vf a0 = {0};
            const float *q0 = q[qi];
            for (int d = 0; d < hd; d++)
                a0 += q0[d] * *(const vf_u *)(kb + (size_t)d * KV_BLOCK);
            STORE_SCORES(col + (size_t)qi * ld, a0, scale);
        }
    }
}

/* o[i] (hd) = sum over keys j of p[i][j] * v row j for four query rows at once (one value
 * load serves four FMAs), for n keys whose rows are ld apart; KV_BLOCK dimensions at a time in
 * vector registers, then any remaining dimensions one by one. Rows of p are zero outside the
 * keys their query sees. */
VECTOR_CLONES static void weigh_values4(const float *const *p, int n, const float *v, size_t ld,
                                        int hd, float *const *o)
{
    const float *p0 = p[0], *p1 = p[1], *p2 = p[2], *p3 = p[3];
    int d0 = 0;
    for (; d0 + KV_BLOCK <= hd; d0 += KV_BLOCK) {
        vf a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (int j = 0; j < n; j++) {
            vf x = *(const vf_u *)(v + (size_t)j * ld + (size_t)d0);
            a0 += p0[j] * x;
            a1 += p1[j] * x;
            a2 += p2[j] * x;
            a3 += p3[j] * x;
        }
        *(vf_u *)(o[0] + d0) = a0;
        *(vf_u *)(o[1] + d0) = a1;
        *(vf_u *)(o[2] + d0) = a2;
        *(vf_u *)(o[3] + d0) = a3;
    }
    for (int d = d0; d < hd; d++)
        for (int i = 0; i < 4; i++) {
            float acc = 0.0f;
            for (int j = 0; j < n; j++)
                acc += p[i][j] * v[(size_t)j * ld + (size_t)d];
            o[i][d] = acc;
        }
}

/* The same for one query row, four keys in flight. */
VECTOR_CLONES static void weigh_values(const float *p, int n, const float *v, size_t ld, int hd,
                                       float *o)
{
    int d0 = 0;
    for (; d0 + KV_BLOCK <= hd; d0 += KV_BLOCK) {
        vf a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        const float *vc = v + d0; /* this chunk of every row */
        int j = 0;
        for (; j + 4 <= n; j += 4) {
            a0 += p[j] * *(const vf_u *)(vc + (size_t)j * ld);
            a1 += p[j + 1] * *(const vf_u *)(vc + (size_t)(j + 1) * ld);
            a2 += p[j + 2] * *(const vf_u *)(vc + (size_t)(j + 2) * ld);
            a3 += p[j + 3] * *(const vf_u *)(vc + (size_t)(j + 3) * ld);
        }
        for (; j < n; j++)
            a0 += p[j] * *(const vf_u *)(vc + (size_t)j * ld);
        *(vf_u *)(o + d0) = (a0 + a1) + (a2 + a3);
    }
    for (int d = d0; d < hd; d++) {
        float acc = 0.0f;
        for (int j = 0; j < n; j++)
            acc += p[j] * v[(size_t)j * ld + (size_t)d];
        o[d] = acc;
    }
}

typedef int vi __attribute__((vector_size(KV_BLOCK * sizeof(int))));

/* Lane-wise maximum (vector comparisons give all-ones lanes where true). Macros rather than
 * functions: they expand inside each target clone, with no vector passed across a call. */
#define VMAX(a, b) ((vf)(((vi)(a) & ((a) > (b))) | ((vi)(b) & ~((a) > (b)))))

/* y = e^x for x <= 0 in each lane, within a few ulp of expf: x = k ln 2 + r with
 * |r| <= ln 2 / 2, e^r by its Taylor polynomial of degree 7 (truncation below 1e-8), times 2^k
 * built in the exponent bits. Lanes below -87.3 are taken as -87.3 (e^-87.3 is below 2^-125,
 * nothing next to the softmax maximum's e^0 = 1). shifter = 1.5 * 2^23: adding it rounds to an
 * integer k, which then sits in the low bits of t. */
#define EXP_NONPOSITIVE(y, x_in)                                                                   \
    do {                                                                                           \
        const vf shifter_ = zero + 12582912.0f;                                                    \
        vf x_ = VMAX((x_in), zero - 87.3f);                                                        \
        vf t_ = x_ * 1.44269504f + shifter_;                                                       \
        vf k_ = t_ - shifter_;                                                                     \
        vf r_ = (x_ - k_ * 0.693145752f) - k_ * 1.42860677e-06f; /* ln 2 in two parts */           \
        vf p_ = zero + 1.0f / 5040;                                                                \
        p_ = p_ * r_ + 1.0f / 720;                                                                 \
        p_ = p_ * r_ + 1.0f / 120;                                                                 \
        p_ = p_ * r_ + 1.0f / 24;                                                                  \
        p_ = p_ * r_ + 1.0f / 6;                                                                   \
        p_ = p_ * r_ + 0.5f;                                                                       \
        p_ = p_ * r_ + 1.0f;                                                                       \
        p_ = p_ * r_ + 1.0f;                                                                       \
        vi k_int_ = (vi)t_ - 0x4B400000; /* the bits of t minus those of shifter: k */             \
        (y) = p_ * (vf)((k_int_ + 127) << 23);                                                     \
    } while (0)

/* Softmax in place over sc[0 .. n), normalized. */
VECTOR_CLONES static void softmax_row(float *sc, int n)
{
    const vf zero = {0};
    int nv = n / KV_BLOCK * KV_BLOCK;
    float m = -FLT_MAX, sum = 0.0f;
    vf vm = zero - FLT_MAX;
    for (int j = 0; j < nv; j += KV_BLOCK) {
        vf x = *(const vf_u *)(sc + j);
        vm = VMAX(vm, x);
    }
    for (int l = 0; l < KV_BLOCK; l++)
        m = vm[l] > m ? vm[l] : m;
    for (int j = nv; j < n; j++)
        m = sc[j] > m ? sc[j] : m;
    vf vs = zero;
    for (int j = 0; j < nv; j += KV_BLOCK) {
        vf ex;
        EXP_NONPOSITIVE(ex, *(const vf_u *)(sc + j) - m);
        *(vf_u *)(sc + j) = ex;
        vs += ex;
    }
    for (int l = 0; l < KV_BLOCK; l++)
        sum += vs[l];
    for (int j = nv; j < n; j++) {
        sc[j] = expf(sc[j] - m);
        sum += sc[j];
    }
    float inv = 1.0f / sum;
    for (int j = 0; j < nv; j += KV_BLOCK)
        *(vf_u *)(sc + j) *= inv;
    for (int j = nv; j < n; j++)
        sc[j] *= inv;
}

/* sc[0 .. n) = cap * tanh(sc / cap), in float32 as transformers' soft-capping. */
static void softcap_row(float *sc, int n, float cap)
{
    for (int j = 0; j < n; j++)
        sc[j] = tanhf(sc[j] / cap) * cap;
}

/* The first key the token at position pos sees. */
static int first_key(const struct kv_attn *a, int pos)
{
    return a->window > 0 && pos - a->window + 1 > 0 ? pos - a->window + 1 : 0;
}

/* One work item; sc has room for (QBLOCK * group + 3, ld) scores, qv and ov for as many
 * pointers (query vectors, their output rows). */
static void run_item(const struct kv_attn *a, const struct kv_attn_seq *s, const struct item *it,
                     float *sc, size_t ld, const float **qv, float **ov)
{
    const int group = a->n_heads / a->n_kv_heads, hd = a->head_dim;
    const size_t head0 = (size_t)it->kv_head * (size_t)group; /* first query head of the group */
    int lo = first_key(a, s->past + it->t0), hi = s->past + it->t1 - 1; /* keys of the item */
    int b0 = lo / KV_BLOCK, b1 = hi / KV_BLOCK + 1, base = b0 * KV_BLOCK;
    int nq = 0;
    for (int t = it->t0; t < it->t1; t++)
        for (int g = 0; g < group; g++)
            qv[nq++] = s->q + (size_t)t * (size_t)a->ld_q + (head0 + (size_t)g) * (size_t)hd;
    /* two or three query rows left over go through the four-row path as duplicates of the
     * last one (the buffers have room): one pass over the keys instead of several */
    int nq4 = nq;
    while (nq > 1 && nq4 % 4 != 0) {
        qv[nq4] = qv[nq - 1];
        nq4++;
    }
    size_t stride = (size_t)a->n_kv_heads * (size_t)hd * KV_BLOCK; /* floats between blocks */
    scores(qv, nq4, s->k + (size_t)it->kv_head * (size_t)hd * KV_BLOCK, stride, hd, b0, b1,
           a->scale, sc, ld);
    /* softmax over each query's own keys, zeros over the rest of the item's span */
    const float *v = s->v + (size_t)it->kv_head * (size_t)hd;
    int span = hi - base + 1;
    for (int qi = 0; qi < nq; qi++) {
        int pos = s->past + it->t0 + qi / group, first = first_key(a, pos) - base;
        float *p = sc + (size_t)qi * ld; /* (span) */
        if (a->softcap > 0)
            softcap_row(p + first, pos - base - first + 1, a->softcap);
        softmax_row(p + first, pos - base - first + 1);
        for (int j = 0; j < first; j++)
            p[j] = 0.0f;
        for (int j = pos - base + 1; j < span; j++)
            p[j] = 0.0f;
        ov[qi] = s->out + (size_t)(it->t0 + qi / group) * (size_t)a->ld_out +
                 (head0 + (size_t)(qi % group)) * (size_t)hd;
    }
    /* out = p v: four query rows at a time over the keys any of them sees (a last group of
     * two or three repeats its last row: the same values written twice to the same place) */
    for (int qi = 0; qi < nq; qi += 4) {
        int rows = nq - qi < 4 ? nq - qi : 4;
        int pos_first = s->past + it->t0 + qi / group;
        int first = first_key(a, pos_first), last = s->past + it->t0 + (qi + rows - 1) / group;
        if (rows == 1) {
            weigh_values(sc + (size_t)qi * ld + (size_t)(first - base), last - first + 1,
                         v + (size_t)first * (size_t)a->ld_kv, (size_t)a->ld_kv, hd, ov[qi]);
            continue;
        }
        const float *p4[4];
        float *o4[4];
        for (int i = 0; i < 4; i++) {
            int r = qi + (i < rows ? i : rows - 1);
            p4[i] = sc + (size_t)r * ld + (size_t)(first - base);
            o4[i] = ov[r];
        }
        weigh_values4(p4, last - first + 1, v + (size_t)first * (size_t)a->ld_kv, (size_t)a->ld_kv,
                      hd, o4);
    }
}

int kv_attention_forward(const struct kv_attn *a, const struct kv_attn_seq *seqs, int n_seqs,
                         struct err *e)
{
    if (a->n_heads <= 0 || a->n_kv_heads <= 0 || a->head_dim <= 0 ||
        a->n_heads % a->n_kv_heads != 0)
        return err_set(e, ERR_INVALID, "kv_attention: %d heads over %d kv heads of %d", a->n_heads,
                       a->n_kv_heads, a->head_dim);
    /* the scratch of a thread: score rows as long as the widest item's keys (all the cache,
     * or the window and the item's tokens), as many as an item has query rows */
    int n_items = 0, max_keys = 0, max_new = 0;
    for (int i = 0; i < n_seqs; i++) {
        if (seqs[i].n_new <= 0 || seqs[i].past < 0)
            return err_set(e, ERR_INVALID, "kv_attention: sequence %d has %d new tokens after %d",
                           i, seqs[i].n_new, seqs[i].past);
        n_items += a->n_kv_heads * ((seqs[i].n_new + QBLOCK - 1) / QBLOCK);
        int keys = seqs[i].past + seqs[i].n_new;
        if (a->window > 0 && keys > a->window + QBLOCK + KV_BLOCK)
            keys = a->window + QBLOCK + KV_BLOCK; /* an item's keys may start mid-block */
        max_keys = keys > max_keys ? keys : max_keys;
        max_new = seqs[i].n_new > max_new ? seqs[i].n_new : max_new;
    }
    if (n_items == 0)
        return 0;
    int n_threads = omp_get_max_threads();
    /* query rows per item, with room to round up to four */
    size_t rows =
        (size_t)(max_new < QBLOCK ? max_new : QBLOCK) * (size_t)(a->n_heads / a->n_kv_heads) + 3;
    size_t ld = ((size_t)max_keys + 2 * KV_BLOCK) & ~(size_t)(KV_BLOCK - 1);
    struct item *items = malloc((size_t)n_items * sizeof *items);
    float *sc = malloc((size_t)n_threads * rows * ld * sizeof *sc);
    const float **qv = malloc((size_t)n_threads * rows * sizeof *qv);
    float **ov = malloc((size_t)n_threads * rows * sizeof *ov);
    if (!items || !sc || !qv || !ov) {
        free(items);
        free(sc);
        free(qv);
        free(ov);
        return err_set(e, ERR_NOMEM, "kv_attention: out of memory for %d keys", max_keys);
    }
    int n = 0;
    for (int i = 0; i < n_seqs; i++)
        for (int t0 = 0; t0 < seqs[i].n_new; t0 += QBLOCK)
            for (int g = 0; g < a->n_kv_heads; g++) {
                int t1 = t0 + QBLOCK < seqs[i].n_new ? t0 + QBLOCK : seqs[i].n_new;
                items[n++] = (struct item){i, g, t0, t1};
            }
#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads) if (n_items > 1)
    for (int i = 0; i < n_items; i++) {
        size_t th = (size_t)omp_get_thread_num();
        run_item(a, &seqs[items[i].seq], &items[i], sc + th * rows * ld, ld, qv + th * rows,
                 ov + th * rows);
    }
    free(items);
    free(sc);
    free(qv);
    free(ov);
    return 0;
}
