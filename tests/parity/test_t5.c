/* test_t5: the T5 encoder-decoder fixture (t5-s2s: random tiny weights, gated-gelu, the real
 * T5 sentencepiece-unigram tokenizer) against what transformers generated for it
 * (refs-dev.json "generations": input_ids, 16 greedy tokens after the decoder start token, and
 * their text; this fixture carries no logits), each prompt alone, all encoded in one call and
 * decoded together, and under continuous batching (inputs encoded while other sequences
 * decode, slots reused); every logit against a plain double-precision transcription of
 * transformers' T5 (both feed-forward kinds); the relative position buckets against their
 * definition; the head variants (scale_decoder_outputs, an untied lm_head); bad models and
 * bad calls. */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/safetensors.h"
#include "loader/tensor.h"
#include "models/decoder.h"
#include "models/t5.h"
#include "suites.h"
#include "support/model_variant.h"
#include "support/support.h"
#include "tokenizer/tokenizer.h"

#define TOL 1e-4
#define MAX_PROMPTS 4
#define MAX_IDS 160
#define MAX_OUT 32

struct prompt {
    int32_t ids[MAX_IDS];
    int n;
    int32_t greedy[MAX_OUT]; /* greedy_ids: the start token, then the generated ones */
    int n_greedy;
    const char *text; /* greedy_text */
};

struct fixture {
    struct dnn_ctx *ctx;
    struct t5_model *m;
    struct t5_run *run;
    json_t *refs;
    struct prompt p[MAX_PROMPTS];
    int n;
    char dir[1024];
};

static void fixture_open_dir(struct fixture *f, const char *dir, const char *refs_dir,
                             enum dtype_compute dt)
{
    struct err e = {0};
    snprintf(f->dir, sizeof f->dir, "%s", dir);
    f->ctx = dnn_ctx_new(2, &e);
    ck_assert_msg(f->ctx != NULL, "%s", e.msg);
    ck_assert_msg(t5_load(dir, dt, f->ctx, &f->m, &e) == 0, "%s: %s", dir, e.msg);
    f->run = t5_run_new();
    f->refs = fixture_json(refs_dir, "refs-dev.json");
    ck_assert_str_eq(json_string_value(json_object_get(f->refs, "task")), "text2text-generation");
    const json_t *gens = json_object_get(f->refs, "generations");
    f->n = (int)json_array_size(gens);
    ck_assert_int_ge(f->n, 3);
    ck_assert_int_le(f->n, MAX_PROMPTS);
    for (int i = 0; i < f->n; i++) {
        const json_t *g = json_array_get(gens, (size_t)i);
        struct prompt *p = &f->p[i];
        p->n = json_read_ints(json_object_get(g, "input_ids"), p->ids, MAX_IDS);
        p->n_greedy = json_read_ints(json_object_get(g, "greedy_ids"), p->greedy, MAX_OUT);
        p->text = json_string_value(json_object_get(g, "greedy_text"));
        ck_assert_int_gt(p->n, 0);
        ck_assert_int_gt(p->n_greedy, 1);
        ck_assert_ptr_nonnull(p->text);
    }
}

static void fixture_open(struct fixture *f, enum dtype_compute dt)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", fixture_model("t5-s2s"));
    fixture_open_dir(f, dir, dir, dt);
}

static void fixture_close(struct fixture *f)
{
    json_decref(f->refs);
    t5_run_free(f->run);
    t5_unload(f->m);
    dnn_ctx_free(f->ctx);
}

static void encode_ok(struct fixture *f, struct t5_seq *const *seqs, int n, const int32_t *ids,
                      const int *n_ids)
{
    struct err e = {0};
    struct t5_encode_batch b = {n, seqs, ids, n_ids};
    ck_assert_msg(t5_encode(f->m, f->ctx, f->run, &b, &e) == 0, "encode: %s", e.msg);
}

static const float *step_ok(struct fixture *f, struct t5_seq *const *seqs, int n,
                            const int32_t *tokens, const int *n_tokens, bool all)
{
    struct err e = {0};
    struct t5_step st = {n, seqs, tokens, n_tokens, all};
    const float *logits;
    ck_assert_msg(t5_forward(f->m, f->ctx, f->run, &st, &logits, &e) == 0, "step: %s", e.msg);
    return logits;
}

static bool is_eos(const struct t5_model *m, int32_t id)
{
    const struct hf_config *c = t5_config(m);
    for (size_t i = 0; i < c->n_eos_token_ids; i++)
        if (c->eos_token_ids[i] == id)
            return true;
    return false;
}

/* Greedy generation as transformers' generate: the start token, then argmax until eos or
 * max_len tokens in all. Fills out (the start token first) and, when logits is not NULL, the
 * logits of every step (max_len - 1 rows). Returns the number of tokens. */
static int greedy(struct fixture *f, const struct prompt *p, int max_len, int32_t *out,
                  float *logits)
{
    struct err e = {0};
    int V = t5_vocab_size(f->m), one = 1, n = 1;
    struct t5_seq *s;
    ck_assert_int_eq(t5_seq_new(f->m, p->n, max_len, &s, &e), 0);
    encode_ok(f, &s, 1, p->ids, &p->n);
    ck_assert_int_eq(t5_seq_input_len(s), p->n);
    out[0] = t5_decoder_start_token_id(f->m);
    while (n < max_len) {
        const float *lg = step_ok(f, &s, 1, &out[n - 1], &one, false);
        if (logits)
            memcpy(logits + (size_t)(n - 1) * (size_t)V, lg, (size_t)V * sizeof *lg);
        out[n++] = decoder_argmax(lg, V);
        if (is_eos(f->m, out[n - 1]))
            break;
    }
    ck_assert_int_eq(t5_seq_len(s), n - 1);
    t5_seq_free(s);
    return n;
}

static void expect_greedy(int i, const char *how, const struct prompt *p, const int32_t *got, int n)
{
    ck_assert_msg(n == p->n_greedy, "prompt %d (%s): %d tokens, not %d", i, how, n, p->n_greedy);
    for (int k = 0; k < n; k++)
        ck_assert_msg(got[k] == p->greedy[k], "prompt %d (%s): greedy token %d is %d, not %d", i,
                      how, k, got[k], p->greedy[k]);
}

START_TEST(each_prompt_alone)
{
    struct fixture f;
    fixture_open(&f, DTYPE_COMPUTE_F32);
    ck_assert_int_eq(t5_decoder_start_token_id(f.m), 0);
    struct tokenizer *tk;
    struct err e = {0};
    ck_assert_msg(tokenizer_load(f.dir, &tk, &e) == 0, "%s", e.msg);
    for (int i = 0; i < f.n; i++) {
        int32_t got[MAX_OUT];
        int n = greedy(&f, &f.p[i], f.p[i].n_greedy, got, NULL);
        expect_greedy(i, "alone", &f.p[i], got, n);
        char *text;
        size_t len;
        ck_assert_int_eq(tokenizer_decode(tk, got, (size_t)n, true, &text, &len, &e), 0);
        ck_assert_msg(strcmp(text, f.p[i].text) == 0, "prompt %d: '%s', not '%s'", i, text,
                      f.p[i].text);
        free(text);
    }
    tokenizer_free(tk);
    fixture_close(&f);
}
END_TEST

/* Every prompt encoded in one call, then decode steps of all of them together: the same
 * tokens and, within float rounding, the same logits as alone. */
START_TEST(all_prompts_batched)
{
    struct fixture f;
    fixture_open(&f, DTYPE_COMPUTE_F32);
    struct err e = {0};
    int V = t5_vocab_size(f.m), n = f.n, steps = 0;
    struct t5_seq *seqs[MAX_PROMPTS];
    int32_t ids[MAX_PROMPTS * MAX_IDS], got[MAX_PROMPTS][MAX_OUT], alone[MAX_OUT];
    int n_ids[MAX_PROMPTS], M = 0;
    float *ref[MAX_PROMPTS];
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(t5_seq_new(f.m, 256, 64, &seqs[i], &e), 0);
        memcpy(ids + M, f.p[i].ids, (size_t)f.p[i].n * sizeof *ids);
        M += n_ids[i] = f.p[i].n;
        steps = f.p[i].n_greedy > steps ? f.p[i].n_greedy : steps;
        ref[i] = malloc((size_t)MAX_OUT * (size_t)V * sizeof(float));
        greedy(&f, &f.p[i], f.p[i].n_greedy, alone, ref[i]);
    }
    encode_ok(&f, seqs, n, ids, n_ids);
    int32_t tokens[MAX_PROMPTS];
    int ones[MAX_PROMPTS];
    double worst = 0;
    for (int i = 0; i < n; i++) {
        got[i][0] = t5_decoder_start_token_id(f.m);
        ones[i] = 1;
    }
    for (int k = 1; k < steps; k++) {
        for (int i = 0; i < n; i++)
            tokens[i] = got[i][k - 1];
        const float *lg = step_ok(&f, seqs, n, tokens, ones, false);
        for (int i = 0; i < n; i++) {
            got[i][k] = decoder_argmax(lg + (size_t)i * V, V);
            for (int v = 0; v < V; v++)
                worst = fmax(worst, fabs(lg[(size_t)i * V + v] - ref[i][(size_t)(k - 1) * V + v]));
        }
    }
    ck_assert_msg(worst < 1e-5, "batched vs alone: max |logit difference| %g", worst);
    for (int i = 0; i < n; i++) {
        expect_greedy(i, "batched", &f.p[i], got[i], steps);
        t5_seq_free(seqs[i]);
        free(ref[i]);
    }
    fixture_close(&f);
}
END_TEST

/* Two slots: prompts join (an encode while the other slot decodes), finish after their own
 * number of tokens and leave; a freed slot is reset and takes the next prompt. The decoder
 * prefix may also come several tokens at a time: feeding the reference greedy ids in one step
 * with all_logits predicts each next one. */
START_TEST(continuous_batching)
{
    struct fixture f;
    fixture_open(&f, DTYPE_COMPUTE_F32);
    struct err e = {0};
    int V = t5_vocab_size(f.m);
    enum { SLOTS = 2 };
    const int want_len[3] = {17, 6, 11};
    struct t5_seq *slot[SLOTS];
    int owner[SLOTS], n_out[MAX_PROMPTS] = {0}, next = 0, done = 0;
    int32_t got[MAX_PROMPTS][MAX_OUT];
    for (int s = 0; s < SLOTS; s++) {
        ck_assert_int_eq(t5_seq_new(f.m, 160, 32, &slot[s], &e), 0);
        owner[s] = -1;
    }
    for (int step = 0; done < 3; step++) {
        ck_assert_int_lt(step, 100);
        for (int s = 0; s < SLOTS && next < 3 && step % 2 == 0; s++)
            if (owner[s] < 0) {
                t5_seq_reset(slot[s]);
                ck_assert_int_eq(t5_seq_input_len(slot[s]), 0);
                owner[s] = next++;
                encode_ok(&f, &slot[s], 1, f.p[owner[s]].ids, &f.p[owner[s]].n);
                got[owner[s]][0] = t5_decoder_start_token_id(f.m);
                n_out[owner[s]] = 1;
                break; /* one newcomer per step */
            }
        struct t5_seq *seqs[SLOTS];
        int32_t tokens[SLOTS];
        int ones[SLOTS] = {1, 1}, who[SLOTS], n = 0;
        for (int s = 0; s < SLOTS; s++)
            if (owner[s] >= 0) {
                seqs[n] = slot[s];
                tokens[n] = got[owner[s]][n_out[owner[s]] - 1];
                who[n++] = s;
            }
        const float *lg = step_ok(&f, seqs, n, tokens, ones, false);
        for (int i = 0; i < n; i++) {
            int p = owner[who[i]];
            got[p][n_out[p]++] = decoder_argmax(lg + (size_t)i * V, V);
            if (n_out[p] == want_len[p]) {
                owner[who[i]] = -1;
                done++;
            }
        }
    }
    for (int p = 0; p < 3; p++)
        for (int k = 0; k < want_len[p]; k++)
            ck_assert_msg(got[p][k] == f.p[p].greedy[k], "prompt %d token %d: %d, not %d", p, k,
                          got[p][k], f.p[p].greedy[k]);
    /* teacher forcing: all greedy ids but the last in one step */
    const struct prompt *p = &f.p[2];
    encode_ok(&f, &slot[0], 1, p->ids, &p->n);
    int n_in = p->n_greedy - 1;
    const float *lg = step_ok(&f, &slot[0], 1, p->greedy, &n_in, true);
    for (int k = 0; k < n_in; k++)
        ck_assert_int_eq(decoder_argmax(lg + (size_t)k * V, V), p->greedy[k + 1]);
    ck_assert_int_eq(t5_seq_len(slot[0]), n_in);
    for (int s = 0; s < SLOTS; s++)
        t5_seq_free(slot[s]);
    fixture_close(&f);
}
END_TEST

/* ---- a plain transcription of transformers' T5, in double ---- */

struct naive {
    struct safetensors *st;
    const struct hf_config *c;
    int D, inner, I, H, dk;
};

static double *naive_w(const struct naive *nv, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    const struct tensor *t = safetensors_get(nv->st, name);
    ck_assert_msg(t != NULL, "%s", name);
    float *f = malloc(t->n_elements * sizeof *f);
    struct err e = {0};
    ck_assert_int_eq(tensor_to_f32(t, f, t->n_elements, &e), 0);
    double *d = malloc(t->n_elements * sizeof *d);
    for (size_t i = 0; i < t->n_elements; i++)
        d[i] = f[i];
    free(f);
    return d;
}

/* y (n, out) = x (n, in) W^T, W (out, in). */
static double *naive_linear(const double *x, int n, int in, int out, const double *w)
{
    double *y = calloc((size_t)n * (size_t)out, sizeof *y);
    for (int r = 0; r < n; r++)
        for (int o = 0; o < out; o++)
            for (int i = 0; i < in; i++)
                y[(size_t)r * out + o] += x[(size_t)r * in + i] * w[(size_t)o * in + i];
    return y;
}

/* T5LayerNorm of every row, into a new array. */
static double *naive_rms(const struct naive *nv, const double *x, int n, const char *wname)
{
    double *w = naive_w(nv, "%s", wname), *y = malloc((size_t)n * nv->D * sizeof *y);
    for (int r = 0; r < n; r++) {
        double ss = 0;
        for (int i = 0; i < nv->D; i++)
            ss += x[(size_t)r * nv->D + i] * x[(size_t)r * nv->D + i];
        double inv = 1 / sqrt(ss / nv->D + nv->c->layer_norm_eps);
        for (int i = 0; i < nv->D; i++)
            y[(size_t)r * nv->D + i] = x[(size_t)r * nv->D + i] * inv * w[i];
    }
    free(w);
    return y;
}

/* x (nq, D) += attention of h (nq, D) over kv (nk, D) with projections base.{q,k,v,o};
 * bias: the stack's table (buckets, heads) or NULL; causal for the decoder. */
static void naive_attention(const struct naive *nv, double *x, const double *h, int nq,
                            const double *kv, int nk, const char *base, const double *bias,
                            bool bidirectional, bool causal)
{
    double *wq = naive_w(nv, "%s.q.weight", base), *wk = naive_w(nv, "%s.k.weight", base);
    double *wv = naive_w(nv, "%s.v.weight", base), *wo = naive_w(nv, "%s.o.weight", base);
    int D = nv->D, inner = nv->inner, dk = nv->dk;
    double *q = naive_linear(h, nq, D, inner, wq), *k = naive_linear(kv, nk, D, inner, wk);
    double *v = naive_linear(kv, nk, D, inner, wv), *att = calloc((size_t)nq * inner, sizeof *att);
    double *sc = malloc((size_t)nk * sizeof *sc);
    for (int hd = 0; hd < nv->H; hd++)
        for (int i = 0; i < nq; i++) {
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j < nk; j++) {
                double s = 0;
                for (int d = 0; d < dk; d++)
                    s += q[(size_t)i * inner + hd * dk + d] * k[(size_t)j * inner + hd * dk + d];
                if (bias) {
                    int b = t5_relative_bucket(j - i, bidirectional,
                                               (int)nv->c->relative_attention_num_buckets,
                                               (int)nv->c->relative_attention_max_distance);
                    s += bias[(size_t)b * nv->H + hd];
                }
                sc[j] = causal && j > i ? -INFINITY : s;
                mx = fmax(mx, sc[j]);
            }
            for (int j = 0; j < nk; j++)
                sum += sc[j] = exp(sc[j] - mx);
            for (int j = 0; j < nk; j++)
                for (int d = 0; d < dk; d++)
                    att[(size_t)i * inner + hd * dk + d] +=
                        sc[j] / sum * v[(size_t)j * inner + hd * dk + d];
        }
    double *o = naive_linear(att, nq, inner, D, wo);
    for (size_t i = 0; i < (size_t)nq * D; i++)
        x[i] += o[i];
    free(wq), free(wk), free(wv), free(wo), free(q), free(k), free(v), free(att), free(sc), free(o);
}

static double naive_act(const struct naive *nv, double x)
{
    if (strcmp(nv->c->hidden_act, "relu") == 0)
        return x > 0 ? x : 0;
    ck_assert_str_eq(nv->c->hidden_act, "gelu_new");
    return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}

/* x (n, D) += DenseReluDense(T5LayerNorm(x)) of layer `base`. */
static void naive_ff(const struct naive *nv, double *x, int n, const char *base)
{
    char name[256];
    snprintf(name, sizeof name, "%s.layer_norm.weight", base);
    double *h = naive_rms(nv, x, n, name), *a;
    if (nv->c->is_gated_act) {
        double *w0 = naive_w(nv, "%s.DenseReluDense.wi_0.weight", base);
        double *w1 = naive_w(nv, "%s.DenseReluDense.wi_1.weight", base);
        a = naive_linear(h, n, nv->D, nv->I, w0);
        double *lin = naive_linear(h, n, nv->D, nv->I, w1);
        for (size_t i = 0; i < (size_t)n * nv->I; i++)
            a[i] = naive_act(nv, a[i]) * lin[i];
        free(w0), free(w1), free(lin);
    } else {
        double *w = naive_w(nv, "%s.DenseReluDense.wi.weight", base);
        a = naive_linear(h, n, nv->D, nv->I, w);
        for (size_t i = 0; i < (size_t)n * nv->I; i++)
            a[i] = naive_act(nv, a[i]);
        free(w);
    }
    double *wo = naive_w(nv, "%s.DenseReluDense.wo.weight", base);
    double *o = naive_linear(a, n, nv->I, nv->D, wo);
    for (size_t i = 0; i < (size_t)n * nv->D; i++)
        x[i] += o[i];
    free(h), free(a), free(wo), free(o);
}

static double *naive_embed(const struct naive *nv, const int32_t *ids, int n)
{
    double *shared = naive_w(nv, "shared.weight"), *x = malloc((size_t)n * nv->D * sizeof *x);
    for (int r = 0; r < n; r++)
        memcpy(x + (size_t)r * nv->D, shared + (size_t)ids[r] * nv->D, nv->D * sizeof *x);
    free(shared);
    return x;
}

/* The logits (V) after the decoder tokens dec[0 .. nd) for the input ids. */
static double *naive_logits(const struct naive *nv, const int32_t *ids, int n, const int32_t *dec,
                            int nd, double scale)
{
    char base[128], ln[160];
    double *x = naive_embed(nv, ids, n);
    double *eb =
        naive_w(nv, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
    for (int l = 0; l < nv->c->num_hidden_layers; l++) {
        snprintf(base, sizeof base, "encoder.block.%d.layer.0", l);
        snprintf(ln, sizeof ln, "%s.layer_norm.weight", base);
        double *h = naive_rms(nv, x, n, ln);
        snprintf(base, sizeof base, "encoder.block.%d.layer.0.SelfAttention", l);
        naive_attention(nv, x, h, n, h, n, base, eb, true, false);
        free(h);
        snprintf(base, sizeof base, "encoder.block.%d.layer.1", l);
        naive_ff(nv, x, n, base);
    }
    double *enc = naive_rms(nv, x, n, "encoder.final_layer_norm.weight");
    double *y = naive_embed(nv, dec, nd);
    double *db =
        naive_w(nv, "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
    for (int l = 0; l < nv->c->num_decoder_layers; l++) {
        snprintf(ln, sizeof ln, "decoder.block.%d.layer.0.layer_norm.weight", l);
        double *h = naive_rms(nv, y, nd, ln);
        snprintf(base, sizeof base, "decoder.block.%d.layer.0.SelfAttention", l);
        naive_attention(nv, y, h, nd, h, nd, base, db, false, true);
        free(h);
        snprintf(ln, sizeof ln, "decoder.block.%d.layer.1.layer_norm.weight", l);
        h = naive_rms(nv, y, nd, ln);
        snprintf(base, sizeof base, "decoder.block.%d.layer.1.EncDecAttention", l);
        naive_attention(nv, y, h, nd, enc, n, base, NULL, false, false);
        free(h);
        snprintf(base, sizeof base, "decoder.block.%d.layer.2", l);
        naive_ff(nv, y, nd, base);
    }
    double *fin = naive_rms(nv, y + (size_t)(nd - 1) * nv->D, 1, "decoder.final_layer_norm.weight");
    double *shared = naive_w(nv, "shared.weight");
    int V = (int)nv->c->vocab_size;
    for (int i = 0; i < nv->D; i++)
        fin[i] *= scale;
    double *logits = naive_linear(fin, 1, nv->D, V, shared);
    free(x), free(eb), free(enc), free(y), free(db), free(fin), free(shared);
    return logits;
}

/* The engine's logits at every greedy step of `steps` prompts against the transcription. */
static double max_error_vs_naive(struct fixture *f, int steps)
{
    struct err e = {0};
    struct naive nv = {.c = t5_config(f->m)};
    ck_assert_int_eq(safetensors_open(f->dir, &nv.st, &e), 0);
    nv.D = (int)nv.c->hidden_size;
    nv.H = (int)nv.c->num_attention_heads;
    nv.dk = (int)nv.c->head_dim;
    nv.inner = nv.H * nv.dk;
    nv.I = (int)nv.c->intermediate_size;
    int V = t5_vocab_size(f->m);
    double scale = t5_scales_decoder_output(f->m) ? 1 / sqrt(nv.D) : 1, worst = 0;
    float *lg = malloc((size_t)MAX_OUT * V * sizeof *lg);
    for (int i = 0; i < f->n; i++) {
        int32_t out[MAX_OUT];
        int n = greedy(f, &f->p[i], steps, out, lg);
        for (int k = 1; k < n; k++) {
            double *want = naive_logits(&nv, f->p[i].ids, f->p[i].n, out, k, scale);
            for (int v = 0; v < V; v++)
                worst = fmax(worst, fabs(lg[(size_t)(k - 1) * V + v] - want[v]));
            free(want);
        }
    }
    free(lg);
    safetensors_close(nv.st);
    return worst;
}

START_TEST(logits_match_transcription)
{
    struct fixture f;
    fixture_open(&f, DTYPE_COMPUTE_F32);
    double err = max_error_vs_naive(&f, f.p[0].n_greedy);
    ck_assert_msg(err <= TOL, "max |logit error| %g", err);
    fixture_close(&f);
}
END_TEST

/* ---- model variants ---- */

/* The ReLU feed-forward (T5 v1.0): wi_0 renamed wi, wi_1 dropped. Nothing from transformers
 * to compare with: the transcription checks the logits. */
START_TEST(relu_feed_forward)
{
    char src[1024];
    snprintf(src, sizeof src, "%s", fixture_model("t5-s2s"));
    struct model_variant relu = {
        .patch = "{\"feed_forward_proj\": \"relu\"}", .drop = "wi_1", .from = "wi_0", .to = "wi"};
    const char *dir = model_variant_dir(src, &relu);
    struct fixture f;
    fixture_open_dir(&f, dir, src, DTYPE_COMPUTE_F32);
    double err = max_error_vs_naive(&f, 6);
    ck_assert_msg(err <= TOL, "relu: max |logit error| %g", err);
    fixture_close(&f);
}
END_TEST

/* Logits of the first step of prompt 0 for a model directory. */
static void first_logits(const char *dir, const char *refs_dir, float *out, bool *scaled)
{
    struct fixture f;
    fixture_open_dir(&f, dir, refs_dir, DTYPE_COMPUTE_F32);
    struct err e = {0};
    struct t5_seq *s;
    ck_assert_int_eq(t5_seq_new(f.m, 256, 4, &s, &e), 0);
    encode_ok(&f, &s, 1, f.p[0].ids, &f.p[0].n);
    int32_t start = t5_decoder_start_token_id(f.m);
    int one = 1;
    const float *lg = step_ok(&f, &s, 1, &start, &one, false);
    memcpy(out, lg, (size_t)t5_vocab_size(f.m) * sizeof *out);
    *scaled = t5_scales_decoder_output(f.m);
    t5_seq_free(s);
    fixture_close(&f);
}

/* The head: scale_decoder_outputs (transformers 5) or, without it, tie_word_embeddings
 * (transformers 4) decides the d_model^-0.5 scaling; an untied lm_head.weight is used. */
START_TEST(head_variants)
{
    char src[1024];
    snprintf(src, sizeof src, "%s", fixture_model("t5-s2s"));
    struct err e = {0};
    struct safetensors *st;
    ck_assert_int_eq(safetensors_open(src, &st, &e), 0);
    const struct tensor *shared = safetensors_get(st, "shared.weight");
    ck_assert_ptr_nonnull(shared);
    int V = (int)shared->shape[0], D = (int)shared->shape[1];
    float *half = malloc(shared->n_elements * sizeof *half);
    ck_assert_int_eq(tensor_to_f32(shared, half, shared->n_elements, &e), 0);
    for (size_t i = 0; i < shared->n_elements; i++)
        half[i] *= 0.5f;
    safetensors_close(st);
    float *base = malloc((size_t)V * sizeof *base), *lg = malloc((size_t)V * sizeof *lg);
    bool scaled;
    first_logits(src, src, base, &scaled);
    ck_assert_msg(!scaled, "the fixture's config.json says scale_decoder_outputs false");
    static const struct {
        const char *patch;
        double factor; /* of the fixture's logits */
        bool untied;
    } cases[] = {
        {"{\"scale_decoder_outputs\": true}", 0, false},
        {"{\"scale_decoder_outputs\": null}", 0, false}, /* tied: scaled */
        {"{\"scale_decoder_outputs\": null, \"tie_word_embeddings\": false}", 0.5, true},
        {"{\"scale_decoder_outputs\": false, \"tie_word_embeddings\": false}", 0.5, true},
        /* a tied model may carry a copy of its head: ignored, as transformers does */
        {"{}", 1, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct extra_tensor head = {"lm_head.weight", V, D, half};
        struct model_variant v = {
            .patch = cases[i].patch, .extra = &head, .n_extra = cases[i].untied ? 1 : 0};
        const char *dir = model_variant_dir(src, &v);
        first_logits(dir, src, lg, &scaled);
        double factor = cases[i].factor ? cases[i].factor : 1 / sqrt((double)D);
        ck_assert_msg(scaled == (cases[i].factor == 0), "%s", cases[i].patch);
        for (int v = 0; v < V; v++)
            ck_assert_msg(fabs(lg[v] - factor * base[v]) <= 1e-5 * (1 + fabs(base[v])),
                          "%s: logit %d is %g, not %g x %g", cases[i].patch, v, lg[v], factor,
                          base[v]);
    }
    free(half);
    free(base);
    free(lg);
}
END_TEST

/* _relative_position_bucket by its definition (T5 defaults: 32 buckets, max distance 128):
 * exact buckets for distances below half the buckets (a quarter, bidirectional),
 * max_exact + floor(log(d / max_exact) / log(max_distance / max_exact) (n - max_exact))
 * above, the last bucket from max_distance on; keys after the query get the upper half
 * (bidirectional) or bucket 0 (causal). */
START_TEST(relative_buckets)
{
    static const struct {
        int rel, bi, uni;
    } cases[] = {
        {0, 0, 0},     {1, 17, 0},      {-1, 1, 1},    {7, 23, 0},     {-7, 7, 7},
        {-8, 8, 8},    {8, 24, 0},      {-12, 9, 12},  {12, 25, 0},    {-15, 9, 15},
        {-20, 10, 17}, {-100, 15, 30},  {100, 31, 0},  {-127, 15, 31}, {-128, 15, 31},
        {128, 31, 0},  {-1000, 15, 31}, {1000, 31, 0}, {-50, 13, 24},  {50, 29, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_msg(t5_relative_bucket(cases[i].rel, true, 32, 128) == cases[i].bi,
                      "bidirectional %d: %d, not %d", cases[i].rel,
                      t5_relative_bucket(cases[i].rel, true, 32, 128), cases[i].bi);
        ck_assert_msg(t5_relative_bucket(cases[i].rel, false, 32, 128) == cases[i].uni,
                      "causal %d: %d, not %d", cases[i].rel,
                      t5_relative_bucket(cases[i].rel, false, 32, 128), cases[i].uni);
    }
    /* nondecreasing with the distance, both ways, for other sizes too */
    static const int sizes[][2] = {{32, 128}, {16, 32}, {64, 256}, {8, 20}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int nb = sizes[s][0], md = sizes[s][1];
        for (int d = 1; d < 3 * md; d++) {
            ck_assert(t5_relative_bucket(-d, false, nb, md) >=
                      t5_relative_bucket(-d + 1, false, nb, md));
            ck_assert(t5_relative_bucket(d, true, nb, md) >=
                      t5_relative_bucket(d - 1, true, nb, md));
            ck_assert(t5_relative_bucket(-d, true, nb, md) < nb / 2);
            ck_assert(t5_relative_bucket(d, true, nb, md) >= nb / 2);
        }
        ck_assert_int_eq(t5_relative_bucket(-md, false, nb, md), nb - 1);
        ck_assert_int_eq(t5_relative_bucket(md, true, nb, md), nb - 1);
        ck_assert_int_eq(t5_relative_bucket(-md, true, nb, md), nb / 2 - 1);
    }
}
END_TEST

/* ---- bad input ---- */

START_TEST(bad_models_fail_cleanly)
{
    char src[1024];
    snprintf(src, sizeof src, "%s", fixture_model("t5-s2s"));
    struct err e = {0};
    struct dnn_ctx *ctx = dnn_ctx_new(1, &e);
    struct t5_model *m = NULL;
    static const struct {
        const char *patch, *drop, *want;
    } cases[] = {
        /* wrong shapes versus config.json: the message names the tensor */
        {"{\"d_ff\": 64}", NULL, "encoder.block.0.layer.1.DenseReluDense.wi_0.weight"},
        {"{\"relative_attention_num_buckets\": 16}", NULL,
         "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"},
        {"{\"d_kv\": 4}", NULL, "encoder.block.0.layer.0.SelfAttention.q.weight"},
        {"{\"vocab_size\": 3000}", NULL, "'shared.weight' has shape [3010, 32]"},
        /* a layer more than the file has */
        {"{\"num_decoder_layers\": 3}", NULL,
         "'decoder.block.2.layer.0.layer_norm.weight' is missing"},
        /* missing tensors */
        {"{}", "decoder.block.1.layer.1.EncDecAttention.v.weight",
         "'decoder.block.1.layer.1.EncDecAttention.v.weight' is missing"},
        {"{}", "encoder.final_layer_norm", "'encoder.final_layer_norm.weight' is missing"},
        {"{\"tie_word_embeddings\": false}", NULL, "'lm_head.weight' is missing"},
        /* the config itself */
        {"{\"model_type\": \"bart\"}", NULL,
         "model_type 'bart' is not supported for an encoder-decoder (supported: t5, mt5)"},
        {"{\"feed_forward_proj\": \"gated-foo\"}", NULL, "foo"},
        {"{\"relative_attention_max_distance\": 8}", NULL, "relative_attention_max_distance"},
        {"{\"scale_decoder_outputs\": 1}", NULL, "scale_decoder_outputs"},
        /* fewer layers than the file has: the rest is unused */
        {"{\"num_layers\": 1, \"num_decoder_layers\": 2}", NULL,
         "'encoder.block.1.layer.0.SelfAttention.k.weight' is not used"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *dir = model_variant_dir(
            src, &(struct model_variant){.patch = cases[i].patch, .drop = cases[i].drop});
        ck_assert_int_ne(t5_load(dir, DTYPE_COMPUTE_F32, ctx, &m, &e), 0);
        ck_assert_ptr_null(m);
        ck_assert_msg(strstr(e.msg, cases[i].want) != NULL, "%s: '%s'", cases[i].patch, e.msg);
    }
    /* an extra tensor nobody uses */
    float zeros[4] = {0};
    struct extra_tensor x = {"encoder.block.0.mystery", 2, 2, zeros};
    const char *dir = model_variant_dir(src, &(struct model_variant){.extra = &x, .n_extra = 1});
    ck_assert_int_ne(t5_load(dir, DTYPE_COMPUTE_F32, ctx, &m, &e), 0);
    ck_assert_msg(strstr(e.msg, "encoder.block.0.mystery") != NULL, "%s", e.msg);
    dnn_ctx_free(ctx);
}
END_TEST

/* Bad calls are refused before anything changes; the sequences then go on as if nothing had
 * happened. */
START_TEST(bad_calls_leave_sequences_alone)
{
    struct fixture f;
    fixture_open(&f, DTYPE_COMPUTE_F32);
    struct err e = {0};
    int V = t5_vocab_size(f.m);
    const struct prompt *p = &f.p[0];
    struct t5_seq *a, *b, *small;
    ck_assert_int_eq(t5_seq_new(f.m, 64, 4, &a, &e), 0);
    ck_assert_int_eq(t5_seq_new(f.m, 64, 32, &b, &e), 0);
    ck_assert_int_eq(t5_seq_new(f.m, 4, 4, &small, &e), 0);
    ck_assert_int_eq(t5_seq_new(f.m, 0, 4, &(struct t5_seq *){NULL}, &e), ERR_INVALID);
    const float *lg;
    int32_t start = t5_decoder_start_token_id(f.m);
    int one = 1, two[2] = {1, 1};
    /* a step before any encode */
    struct t5_step st = {1, &a, &start, &one, false};
    ck_assert_int_eq(t5_forward(f.m, f.ctx, f.run, &st, &lg, &e), ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(e.msg, "not been encoded"));
    /* encodes: too long, an id outside the vocabulary, a sequence twice */
    struct t5_encode_batch big = {1, &small, p->ids, &p->n};
    ck_assert_int_eq(t5_encode(f.m, f.ctx, f.run, &big, &e), ERR_TOO_LARGE);
    int32_t bad_ids[3] = {p->ids[0], 3010, 1};
    int n3 = 3;
    struct t5_encode_batch oov = {1, &a, bad_ids, &n3};
    ck_assert_int_eq(t5_encode(f.m, f.ctx, f.run, &oov, &e), ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(e.msg, "3010"));
    struct t5_seq *twice[2] = {a, a};
    int32_t ids2[2] = {5, 1};
    struct t5_encode_batch dup = {2, twice, ids2, two};
    ck_assert_int_eq(t5_encode(f.m, f.ctx, f.run, &dup, &e), ERR_INVALID);
    ck_assert_int_eq(t5_seq_input_len(a), 0);
    /* a encoded; b stays unencoded and is refused in a step with a, which is left alone */
    struct t5_encode_batch ok = {1, &a, p->ids, &p->n};
    ck_assert_int_eq(t5_encode(f.m, f.ctx, f.run, &ok, &e), 0);
    struct t5_seq *ab[2] = {a, b};
    int32_t toks[2] = {start, start};
    struct t5_step mixed = {2, ab, toks, two, false};
    ck_assert_int_eq(t5_forward(f.m, f.ctx, f.run, &mixed, &lg, &e), ERR_INVALID);
    ck_assert_int_eq(t5_seq_len(a), 0);
    /* an encode refused for b (bad id) leaves a's encoded input as it was */
    struct t5_seq *ba[2] = {b, a};
    int32_t ids_ba[4] = {5, 9999, 6, 1};
    struct t5_encode_batch bad_pair = {2, ba, ids_ba, two};
    ck_assert_int_eq(t5_encode(f.m, f.ctx, f.run, &bad_pair, &e), ERR_INVALID);
    ck_assert_int_eq(t5_seq_input_len(a), p->n);
    /* steps: an id outside the vocabulary, more tokens than room */
    int32_t bad_tok = V;
    struct t5_step oov_step = {1, &a, &bad_tok, &one, false};
    ck_assert_int_eq(t5_forward(f.m, f.ctx, f.run, &oov_step, &lg, &e), ERR_INVALID);
    int32_t five[5] = {0, 0, 0, 0, 0};
    int n5 = 5;
    struct t5_step long_step = {1, &a, five, &n5, false};
    ck_assert_int_eq(t5_forward(f.m, f.ctx, f.run, &long_step, &lg, &e), ERR_TOO_LARGE);
    ck_assert_int_eq(t5_seq_len(a), 0);
    /* a still generates what transformers generated, up to its room */
    int32_t tok = start;
    for (int k = 1; k <= 4; k++) {
        struct t5_step s1 = {1, &a, &tok, &one, false};
        ck_assert_int_eq(t5_forward(f.m, f.ctx, f.run, &s1, &lg, &e), 0);
        tok = decoder_argmax(lg, V);
        ck_assert_int_eq(tok, p->greedy[k]);
    }
    struct t5_step full = {1, &a, &tok, &one, false};
    ck_assert_int_eq(t5_forward(f.m, f.ctx, f.run, &full, &lg, &e), ERR_TOO_LARGE);
    t5_seq_free(a);
    t5_seq_free(b);
    t5_seq_free(small);
    fixture_close(&f);
}
END_TEST

/* BF16 and INT8 linears load and stay near the fp32 results (no exactness expected). */
START_TEST(reduced_precision_runs)
{
    struct fixture f32, f;
    fixture_open(&f32, DTYPE_COMPUTE_F32);
    fixture_open(&f, _i ? DTYPE_COMPUTE_INT8 : DTYPE_COMPUTE_BF16);
    int V = t5_vocab_size(f.m), n = f.p[0].n_greedy;
    float *want = malloc((size_t)MAX_OUT * V * sizeof *want);
    float *got = malloc((size_t)MAX_OUT * V * sizeof *got);
    int32_t o1[MAX_OUT];
    greedy(&f32, &f32.p[0], n, o1, want);
    /* teacher-forced on the fp32 tokens, so the rows compare like with like */
    struct err e = {0};
    struct t5_seq *s;
    ck_assert_int_eq(t5_seq_new(f.m, 256, 64, &s, &e), 0);
    encode_ok(&f, &s, 1, f.p[0].ids, &f.p[0].n);
    int n_in = n - 1;
    const float *lg = step_ok(&f, &s, 1, o1, &n_in, true);
    memcpy(got, lg, (size_t)n_in * V * sizeof *got);
    double worst = 0;
    for (size_t i = 0; i < (size_t)n_in * V; i++)
        worst = fmax(worst, fabs(got[i] - want[i]));
    ck_assert_msg(worst < 0.1, "%s: logit error %g", _i ? "int8" : "bf16", worst);
    t5_seq_free(s);
    free(want);
    free(got);
    fixture_close(&f);
    fixture_close(&f32);
}
END_TEST

Suite *suite_t5(void)
{
    Suite *s = suite_create("t5");
    TCase *tc = tcase_create("fp32");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, each_prompt_alone);
    tcase_add_test(tc, all_prompts_batched);
    tcase_add_test(tc, continuous_batching);
    tcase_add_test(tc, logits_match_transcription);
    tcase_add_test(tc, relu_feed_forward);
    tcase_add_test(tc, head_variants);
    tcase_add_test(tc, relative_buckets);
    tcase_add_test(tc, bad_models_fail_cleanly);
    tcase_add_test(tc, bad_calls_leave_sequences_alone);
    tcase_add_loop_test(tc, reduced_precision_runs, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}
