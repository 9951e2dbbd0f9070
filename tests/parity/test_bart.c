/* test_bart: the BART-like architectures (engine/models/bart*.c: bart, mbart, marian, m2m100,
 * pegasus) and mt5 (the T5 model under its own model_type) against transformers 4.57.6 on the
 * tiny random-weight fixtures of tests/data/models-issue16-bart.tar.xz
 * (tools/refgen/bart_family.py): encoder hidden states and teacher-forced decoder logits of a
 * right-padded batch within 1e-4 (each input encoded unpadded, as its attention mask makes
 * it), greedy ids over 32 new tokens exact through the generator (all inputs stepped
 * together), bf16 and int8 runs close; BartForSequenceClassification (s2s-bart-mnli) logits
 * within 1e-4 through the encoder tasks' loader. Beam search on the same fixtures is in the
 * beam suite. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "generate/generator.h"
#include "models/bart.h"
#include "models/encoder.h"
#include "models/t5.h"
#include "ops/dnnl.h"
#include "suites.h"
#include "support/model_variant.h"
#include "support/pipeline_env.h"
#include "support/support.h"

static const char *const gen_names[] = {"s2s-bart",   "s2s-mbart",   "s2s-marian",
                                        "s2s-marian-unshared", "s2s-m2m100", "s2s-pegasus",
                                        "s2s-mt5"};
#define N_GEN (sizeof gen_names / sizeof gen_names[0])

static json_t *refs_of(const char *name)
{
    char dir[1024], file[64];
    snprintf(dir, sizeof dir, "%s/refs", fixture_dir("models-issue16-bart.tar.xz"));
    snprintf(file, sizeof file, "%s.json", name);
    return fixture_json(dir, file);
}

/* max |got - want| over n values of the JSON array want. */
static double max_err(const float *got, const json_t *want, size_t n)
{
    double err = 0;
    ck_assert_uint_ge(json_array_size(want), n);
    for (size_t i = 0; i < n; i++) {
        double d = fabs(got[i] - json_number_value(json_array_get(want, i)));
        err = d > err ? d : err;
    }
    return err;
}

/* The first 64 logits of every decoder row of the batch, row after row (struct kept). */
#define KEEP_CAP (3 * 8 * 64)
struct kept {
    float v[KEEP_CAP];
    size_t n;
};

static void keep_row(struct kept *k, const float *row)
{
    if (!k)
        return;
    ck_assert_uint_le(k->n + 64, KEEP_CAP);
    memcpy(k->v + k->n, row, 64 * sizeof *row);
    k->n += 64;
}

/* The batch's inputs, each encoded alone, and the decoder rows' logits of the model in dir
 * (NULL: the fixture): the largest error against transformers; the logits into keep. */
static double bart_batch_err(const char *name, const char *dir, enum dtype_compute dt,
                             bool check_enc, struct kept *keep)
{
    struct dnn_ctx *ctx = dnn_ctx_new(1, NULL);
    struct bart_model *m = NULL;
    struct err e = {0};
    ck_assert_msg(bart_load(dir ? dir : fixture_model(name), dt, ctx, &m, &e) == 0, "%s", e.msg);
    json_t *refs = refs_of(name);
    const json_t *batch = json_object_get(refs, "batch");
    const json_t *inputs = json_object_get(batch, "input_ids");
    const json_t *decs = json_object_get(batch, "decoder_input_ids");
    const json_t *rows = json_object_get(batch, "logits_rows");
    struct bart_run *run = bart_run_new();
    double worst = 0;
    int D = bart_hidden_size(m);
    for (size_t i = 0; i < json_array_size(inputs); i++) {
        int32_t ids[256], dec[64];
        int n = json_read_ints(json_array_get(inputs, i), ids, 256);
        int nd = json_read_ints(json_array_get(decs, i), dec, 64);
        struct bart_seq *s = NULL;
        ck_assert_int_eq(bart_seq_new(m, 256, 64, &s, &e), 0);
        const float *enc;
        struct bart_encode_batch b = {1, &s, ids, &n};
        ck_assert_msg(bart_encode(m, ctx, run, &b, &enc, &e) == 0, "%s", e.msg);
        const json_t *want = json_array_get(json_object_get(batch, "encoder_hidden"), i);
        for (int t = 0; check_enc && t < n; t++) {
            double err = max_err(enc + (size_t)t * (size_t)D, json_array_get(want, (size_t)t),
                                 (size_t)D);
            worst = err > worst ? err : worst;
        }
        const float *logits;
        struct bart_step st = {.n_seqs = 1, .seqs = &s, .tokens = dec, .n_tokens = &nd,
                               .all_logits = true};
        ck_assert_msg(bart_forward(m, ctx, run, &st, &logits, &e) == 0, "%s", e.msg);
        const json_t *row = json_array_get(rows, i);
        for (int t = 0; t < nd; t++) {
            const float *lg = logits + (size_t)t * (size_t)bart_vocab_size(m);
            double err = max_err(lg, json_array_get(row, (size_t)t), 64);
            worst = err > worst ? err : worst;
            keep_row(keep, lg);
        }
        bart_seq_free(s);
    }
    bart_run_free(run);
    json_decref(refs);
    bart_unload(m);
    dnn_ctx_free(ctx);
    return worst;
}

/* mt5 through the T5 model: the decoder rows' logits (its encoder output is not exposed). */
static double mt5_batch_err(const char *dir, enum dtype_compute dt, struct kept *keep)
{
    struct dnn_ctx *ctx = dnn_ctx_new(1, NULL);
    struct t5_model *m = NULL;
    struct err e = {0};
    ck_assert_msg(t5_load(dir ? dir : fixture_model("s2s-mt5"), dt, ctx, &m, &e) == 0, "%s",
                  e.msg);
    ck_assert(!t5_scales_decoder_output(m)); /* MT5Config: untied, no rescaling */
    json_t *refs = refs_of("s2s-mt5");
    const json_t *batch = json_object_get(refs, "batch");
    struct t5_run *run = t5_run_new();
    double worst = 0;
    for (size_t i = 0; i < json_array_size(json_object_get(batch, "input_ids")); i++) {
        int32_t ids[256], dec[64];
        int n = json_read_ints(json_array_get(json_object_get(batch, "input_ids"), i), ids, 256);
        int nd = json_read_ints(json_array_get(json_object_get(batch, "decoder_input_ids"), i),
                                dec, 64);
        struct t5_seq *s = NULL;
        ck_assert_int_eq(t5_seq_new(m, 256, 64, &s, &e), 0);
        struct t5_encode_batch b = {1, &s, ids, &n};
        ck_assert_msg(t5_encode(m, ctx, run, &b, &e) == 0, "%s", e.msg);
        const float *logits;
        struct t5_step st = {.n_seqs = 1, .seqs = &s, .tokens = dec, .n_tokens = &nd,
                             .all_logits = true};
        ck_assert_msg(t5_forward(m, ctx, run, &st, &logits, &e) == 0, "%s", e.msg);
        const json_t *row = json_array_get(json_object_get(batch, "logits_rows"), i);
        for (int t = 0; t < nd; t++) {
            const float *lg = logits + (size_t)t * (size_t)t5_vocab_size(m);
            double err = max_err(lg, json_array_get(row, (size_t)t), 64);
            worst = err > worst ? err : worst;
            keep_row(keep, lg);
        }
        t5_seq_free(s);
    }
    t5_run_free(run);
    json_decref(refs);
    t5_unload(m);
    dnn_ctx_free(ctx);
    return worst;
}

static double batch_err(const char *name, const char *dir, enum dtype_compute dt,
                        struct kept *keep)
{
    if (strcmp(name, "s2s-mt5") == 0)
        return mt5_batch_err(dir, dt, keep);
    return bart_batch_err(name, dir, dt, dt == DTYPE_COMPUTE_F32 && !dir, keep);
}

START_TEST(logits_fp32)
{
    double err = batch_err(gen_names[_i], NULL, DTYPE_COMPUTE_F32, NULL);
    ck_assert_msg(err <= 1e-4, "%s: encoder states / logits differ by %g", gen_names[_i], err);
}
END_TEST

/* The largest |logit| transformers recorded for the batch. */
static double ref_scale(const char *name)
{
    json_t *refs = refs_of(name);
    float v[KEEP_CAP];
    size_t n = json_flatten(json_object_get(json_object_get(refs, "batch"), "logits_rows"), v,
                            KEEP_CAP);
    double top = 0;
    for (size_t i = 0; i < n && i < KEEP_CAP; i++)
        top = fabs(v[i]) > top ? fabs(v[i]) : top;
    json_decref(refs);
    return top;
}

/* Reduced precision. bf16 against transformers within the decoders' tolerance, 5% of the
 * largest logit (the BART variants; mT5's T5 code is the t5 suite's, and its fixture's bf16
 * logits move by 10%). bf16 and int8 against inferd's own fp32 on the same weights made tamer
 * (every matrix / 8, as the relpos suite does), within 5% of its largest logit: on these
 * 2-layer random models per-tensor int8 activations move the logits by a quarter of their
 * range, which would say little. */
START_TEST(logits_reduced)
{
    const char *name = gen_names[_i];
    if (strcmp(name, "s2s-mt5") != 0) {
        double tol = 0.05 * fmax(2.0, ref_scale(name));
        double bf = batch_err(name, NULL, DTYPE_COMPUTE_BF16, NULL);
        ck_assert_msg(bf <= tol, "%s: bf16 off by %g (tolerance %g)", name, bf, tol);
    }
    const char *dir =
        model_variant_dir(fixture_model(name), &(struct model_variant){.scale_matrices = 0.125f});
    static struct kept ref, got;
    ref.n = 0;
    batch_err(name, dir, DTYPE_COMPUTE_F32, &ref);
    static const enum dtype_compute dts[] = {DTYPE_COMPUTE_BF16, DTYPE_COMPUTE_INT8};
    for (size_t d = 0; d < 2; d++) {
        got.n = 0;
        batch_err(name, dir, dts[d], &got);
        ck_assert_uint_eq(ref.n, got.n);
        double worst = 0, top = 0;
        for (size_t i = 0; i < ref.n; i++) {
            worst = fmax(worst, fabs(ref.v[i] - got.v[i]));
            top = fmax(top, fabs(ref.v[i]));
        }
        ck_assert_msg(worst < 0.05 * top, "%s: %s off by %g on the tamer model (logits up to %g)",
                      name, d ? "int8" : "bf16", worst, top);
    }
}
END_TEST

static void on_event(void *arg, const struct gen_step_event *ev)
{
    if (ev->error)
        snprintf(arg, 256, "%s", ev->error);
}

/* Greedy through the generator, every input at once: GREEDY_NEW tokens, no eos. */
START_TEST(greedy_ids)
{
    const char *name = gen_names[_i];
    struct gen_model *m = NULL;
    struct err e = {0};
    ck_assert_msg(gen_model_load(fixture_model(name), NULL, &m, &e) == 0, "%s", e.msg);
    ck_assert(gen_model_is_encoder_decoder(m));
    struct generator *g = generator_new(
        m, &(struct generator_limits){.max_seqs = 4, .max_total = 100, .max_prefill = 256,
                                      .threads = 1},
        &e);
    ck_assert_ptr_nonnull(g);
    ck_assert_msg(generator_prepare(g, &e) == 0 && generator_open(g, &e) == 0, "%s", e.msg);
    json_t *refs = refs_of(name);
    const json_t *inputs = json_object_get(refs, "inputs");
    size_t n_in = json_array_size(inputs);
    ck_assert_uint_le(n_in, 4);
    int32_t prompts[4][256];
    int n_prompt[4];
    struct gen_params p;
    gen_params_init(&p, NULL); /* greedy, no eos: the whole 32 tokens */
    p.max_new_tokens = (uint32_t)json_integer_value(json_object_get(refs, "greedy_new_tokens"));
    struct gen_seq *seqs[4];
    for (size_t i = 0; i < n_in; i++) {
        n_prompt[i] = json_read_ints(json_object_get(json_array_get(inputs, i), "input_ids"),
                                     prompts[i], 256);
        ck_assert_msg(gen_seq_start(g, prompts[i], (size_t)n_prompt[i], &p, NULL, &seqs[i],
                                    &e) == 0,
                      "%s", e.msg);
    }
    char failed[256] = "";
    struct gen_step_stats stats;
    for (uint32_t k = 0; k <= p.max_new_tokens; k++)
        generator_step(g, seqs, n_in, 256, on_event, failed, &stats);
    ck_assert_msg(!failed[0], "%s: %s", name, failed);
    for (size_t i = 0; i < n_in; i++) {
        struct gen_seq_result r;
        ck_assert_int_eq(gen_seq_result(seqs[i], &r, &e), 0);
        int32_t want[64];
        int n = json_read_ints(json_object_get(json_array_get(inputs, i), "greedy_ids"), want,
                               64);
        ck_assert_int_eq(n, (int)p.max_new_tokens);
        ck_assert_uint_eq(r.n_ids, (size_t)n);
        for (int j = 0; j < n; j++)
            ck_assert_msg(r.ids[j] == want[j], "%s input %zu: token %d is %d, transformers %d",
                          name, i, j, r.ids[j], want[j]);
        gen_seq_retire(g, seqs[i]);
        gen_seq_free(seqs[i]);
    }
    gen_params_fini(&p);
    json_decref(refs);
    generator_free(g);
    gen_model_free(m);
}
END_TEST

/* BartForSequenceClassification through encoder_load: the padded pairs' logits. */
START_TEST(mnli_logits)
{
    struct dnn_ctx *ctx = dnn_ctx_new(1, NULL);
    struct encoder *m = NULL;
    struct err e = {0};
    ck_assert_msg(encoder_load(fixture_model("s2s-bart-mnli"), DTYPE_COMPUTE_F32, ctx, &m, &e) ==
                      0,
                  "%s", e.msg);
    ck_assert_int_eq(encoder_head_kind(m), HEAD_SEQ_CLS);
    ck_assert_uint_eq(encoder_out_width(m), 3);
    json_t *refs = refs_of("s2s-bart-mnli");
    const json_t *ids = json_object_get(refs, "input_ids");
    const json_t *mask = json_object_get(refs, "attention_mask");
    int B = (int)json_array_size(ids), S = (int)json_array_size(json_array_get(ids, 0));
    int32_t flat_ids[8 * 64], flat_mask[8 * 64];
    ck_assert_int_le(B * S, 8 * 64);
    for (int b = 0; b < B; b++) {
        json_read_ints(json_array_get(ids, (size_t)b), flat_ids + b * S, S);
        json_read_ints(json_array_get(mask, (size_t)b), flat_mask + b * S, S);
    }
    struct encoder_run *run = encoder_run_new();
    struct encoder_batch batch = {.batch = B, .seq = S, .ids = flat_ids, .mask = flat_mask};
    const float *out;
    ck_assert_msg(encoder_forward(m, ctx, run, &batch, &out, NULL, &e) == 0, "%s", e.msg);
    const json_t *want = json_object_get(refs, "logits");
    for (int b = 0; b < B; b++) {
        double err = max_err(out + b * 3, json_array_get(want, (size_t)b), 3);
        ck_assert_msg(err <= 1e-4, "row %d: logits differ by %g", b, err);
    }
    /* a row without its eos is refused, as transformers refuses it */
    flat_mask[S - 1] = 0;
    for (int t = 0; t < S; t++)
        if (flat_ids[t] == 4)
            flat_mask[t] = 0;
    ck_assert_int_eq(encoder_forward(m, ctx, run, &batch, &out, NULL, &e), ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(e.msg, "no eos token"));
    encoder_run_free(run);
    json_decref(refs);
    encoder_free(m);
    dnn_ctx_free(ctx);
}
END_TEST

/* zero-shot-classification on the BART classifier as transformers 4.57's pipeline: labels
 * exact, scores within 1e-4, single- and multi-label; each case alone and all in one batch. */
START_TEST(mnli_zero_shot)
{
    struct env v;
    env_open_dt(&v, "s2s-bart-mnli", "zero-shot-classification", DTYPE_COMPUTE_F32);
    json_t *refs = refs_of("s2s-bart-mnli");
    const json_t *cases = json_object_get(refs, "zero_shot");
    for (size_t i = 0; i < json_array_size(cases); i++) {
        const json_t *c = json_array_get(cases, i);
        json_t *params = json_pack("{sOsO}", "candidate_labels",
                                   json_object_get(c, "candidate_labels"), "multi_label",
                                   json_object_get(c, "multi_label"));
        json_t *out = run_ok(&v, json_object_get(c, "inputs"), params, "zero-shot");
        const json_t *want = json_object_get(c, "output");
        ck_assert_str_eq(json_string_value(json_object_get(out, "sequence")),
                         json_string_value(json_object_get(want, "sequence")));
        const json_t *labels = json_object_get(out, "labels");
        const json_t *scores = json_object_get(out, "scores");
        ck_assert_uint_eq(json_array_size(labels),
                          json_array_size(json_object_get(want, "labels")));
        for (size_t k = 0; k < json_array_size(labels); k++) {
            ck_assert_str_eq(json_string_value(json_array_get(labels, k)),
                             json_string_value(
                                 json_array_get(json_object_get(want, "labels"), k)));
            double d = fabs(json_number_value(json_array_get(scores, k)) -
                            json_number_value(json_array_get(json_object_get(want, "scores"), k)));
            ck_assert_msg(d <= 1e-4, "case %zu label %zu: score off by %g", i, k, d);
        }
        json_decref(out);
        json_decref(params);
    }
    json_decref(refs);
    env_close(&v);
}
END_TEST

/* Bad models fail at load naming the tensor or key; bad calls are refused before any state
 * changes (the sequence still decodes as before). */
START_TEST(bad_input)
{
    static const struct {
        struct model_variant v;
        const char *want;
    } models[] = {
        {{.drop = "decoder.layers.1.fc2.weight"}, "'model.decoder.layers.1.fc2.weight' is missing"},
        {{.patch = "{\"max_position_embeddings\": 64}"}, "embed_positions.weight' has shape"},
        {{.patch = "{\"activation_function\": \"foo\"}"}, "foo"},
        {{.patch = "{\"decoder_attention_heads\": 5}"}, "decoder_attention_heads"},
        {{.from = "final_logits_bias", .to = "final_logits_bias2"}, "final_logits_bias2"},
    };
    struct dnn_ctx *ctx = dnn_ctx_new(1, NULL);
    struct err e = {0};
    struct bart_model *m = NULL;
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        const char *dir = model_variant_dir(fixture_model("s2s-bart"), &models[i].v);
        ck_assert_int_ne(bart_load(dir, DTYPE_COMPUTE_F32, ctx, &m, &e), 0);
        ck_assert_ptr_null(m);
        ck_assert_msg(strstr(e.msg, models[i].want), "case %zu: %s", i, e.msg);
    }
    ck_assert_int_eq(bart_load(fixture_model("s2s-bart"), DTYPE_COMPUTE_F32, ctx, &m, &e), 0);
    struct bart_run *run = bart_run_new();
    struct bart_seq *s = NULL;
    ck_assert_int_eq(bart_seq_new(m, 512, 512, &s, &e), 0);
    int32_t ids[200] = {0};
    int n = 200; /* more than the 128 positions */
    struct bart_encode_batch b = {1, &s, ids, &n};
    ck_assert_int_eq(bart_encode(m, ctx, run, &b, NULL, &e), ERR_TOO_LARGE);
    n = 3;
    ids[1] = bart_vocab_size(m);
    ck_assert_int_eq(bart_encode(m, ctx, run, &b, NULL, &e), ERR_INVALID);
    ck_assert_int_eq(bart_seq_input_len(s), 0);
    ids[1] = 5;
    ck_assert_int_eq(bart_encode(m, ctx, run, &b, NULL, &e), 0);
    int32_t tok = -1;
    int one = 1;
    struct bart_step st = {.n_seqs = 1, .seqs = &s, .tokens = &tok, .n_tokens = &one};
    const float *out;
    ck_assert_int_eq(bart_forward(m, ctx, run, &st, &out, &e), ERR_INVALID);
    ck_assert_int_eq(bart_seq_len(s), 0);
    tok = bart_decoder_start_token_id(m);
    ck_assert_int_eq(bart_forward(m, ctx, run, &st, &out, &e), 0);
    ck_assert_int_eq(bart_seq_len(s), 1);
    ck_assert_int_eq(bart_classify(m, ctx, run, out, 1, &out, &e), ERR_INVALID);
    bart_seq_free(s);
    bart_run_free(run);
    bart_unload(m);
    dnn_ctx_free(ctx);
}
END_TEST

Suite *suite_bart(void)
{
    Suite *s = suite_create("bart");
    TCase *tc = tcase_create("transformers");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, logits_fp32, 0, (int)N_GEN);
    tcase_add_loop_test(tc, greedy_ids, 0, (int)N_GEN);
    tcase_add_test(tc, mnli_logits);
    tcase_add_test(tc, mnli_zero_shot);
    tcase_add_test(tc, bad_input);
    suite_add_tcase(s, tc);
    /* apart: oneDNN has no bf16 kernel on a CPU without AVX-512 (valgrind's among them) */
    TCase *reduced = tcase_create("reduced");
    tcase_set_timeout(reduced, 300);
    tcase_add_loop_test(reduced, logits_reduced, 0, (int)N_GEN);
    suite_add_tcase(s, reduced);
    return s;
}
