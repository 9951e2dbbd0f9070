/* test_beam: beam search (engine/generate/beam.c, gen_beam.c) against transformers 4.57.6's
 * generate on the llama-lm, t5-s2s and bart-s2s fixtures (every recorded setting of
 * tests/data/models-issue16-beams.tar.xz, tools/refgen/beams.py) and on the issue-16
 * architectures s2s-{bart,mbart,marian,m2m100,pegasus,mt5} (each family's own generation config
 * and shared settings, tests/data/models-issue16-bart.tar.xz, tools/refgen/bart_family.py): ids
 * exact, sequence scores within 1e-4, with the caches forked by gen_beam's reordering. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "generate/generator.h"
#include "suites.h"
#include "support/support.h"

static void on_event(void *arg, const struct gen_step_event *ev)
{
    if (ev->error)
        snprintf(arg, 256, "%s", ev->error);
}

/* Runs one setting and compares it with the row; returns the number of mismatches. */
static int run_row(struct generator *g, const struct gen_model *m, const int32_t *prompt,
                   size_t n_prompt, const json_t *row, uint32_t max_new, bool enc_dec,
                   const char *what)
{
    struct gen_params p;
    gen_params_init(&p, gen_model_config(m));
    beam_params_from_row(&p, row, max_new);
    struct gen_beam *b = NULL;
    struct err e = {0};
    char failed[256] = "";
    ck_assert_msg(gen_beam_start(g, prompt, n_prompt, &p, NULL, &b, &e) == 0, "%s", e.msg);
    struct gen_seq *seqs[8];
    struct gen_step_stats stats;
    for (int guard = 0; !gen_beam_done(b) && guard < 100; guard++) {
        size_t k = gen_beam_seqs(b, seqs);
        generator_step(g, seqs, k, 256, on_event, failed, &stats);
        ck_assert_msg(gen_beam_advance(g, b, &e) == 0, "%s", e.msg);
    }
    ck_assert_msg(!failed[0], "%s: %s", what, failed);
    const json_t *seqs_ref = json_object_get(row, "sequences");
    const json_t *scores = json_object_get(row, "sequences_scores");
    const json_t *padv = json_object_get(row, "pad_token_id");
    /* transformers fills with `pad_token_id or eos_token_id[0]`: a pad id 0 (T5) is eos */
    int64_t pad = json_integer_value(padv) ? json_integer_value(padv) : p.eos_token_ids[0];
    int bad = 0;
    ck_assert_uint_eq(gen_beam_n_results(b), json_array_size(seqs_ref));
    for (size_t i = 0; i < gen_beam_n_results(b); i++) {
        const int32_t *ids;
        size_t n;
        float score;
        gen_beam_result(b, i, &ids, &n, &score);
        const json_t *ref = json_array_get(seqs_ref, i);
        size_t off = enc_dec ? 1 : 0, n_ref = json_array_size(ref) - off;
        bool same = n <= n_ref;
        for (size_t j = 0; same && j < n_ref; j++) {
            int64_t want = json_integer_value(json_array_get(ref, j + off));
            same = j < n ? ids[j] == want : want == pad;
        }
        double want_score = json_number_value(json_array_get(scores, i));
        if (!same || fabs(score - want_score) > 1e-4) {
            fprintf(stderr, "%s %s result %zu: %s, score %.7g vs %.7g; got", what,
                    json_string_value(json_object_get(row, "setting")), i,
                    same ? "ids equal" : "ids differ", score, want_score);
            for (size_t j = 0; j < n; j++)
                fprintf(stderr, " %d", ids[j]);
            fprintf(stderr, "\n");
            bad++;
        }
    }
    gen_beam_retire(g, b);
    gen_beam_free(b);
    gen_params_fini(&p);
    return bad;
}

/* Every setting of refs (a file of dir) on the model fixture name. */
static void check_refs(const char *name, const char *dir, const char *file)
{
    struct gen_model *m = NULL;
    struct err e = {0};
    ck_assert_msg(gen_model_load(fixture_model(name), NULL, &m, &e) == 0, "%s", e.msg);
    struct generator *g = generator_new(
        m, &(struct generator_limits){.max_seqs = 8, .max_total = 160, .max_prefill = 256,
                                      .threads = 1},
        &e);
    ck_assert_ptr_nonnull(g);
    ck_assert_msg(generator_prepare(g, &e) == 0 && generator_open(g, &e) == 0, "%s", e.msg);
    json_t *refs = fixture_json(dir, file);
    const json_t *mn = json_object_get(refs, "beam_new_tokens");
    uint32_t max_new = mn ? (uint32_t)json_integer_value(mn) : 12;
    bool enc_dec = gen_model_is_encoder_decoder(m);
    int bad = 0, rows = 0;
    const json_t *inputs = json_object_get(refs, "inputs");
    for (size_t i = 0; i < json_array_size(inputs); i++) {
        const json_t *in = json_array_get(inputs, i), *ids = json_object_get(in, "input_ids");
        int32_t prompt[512];
        size_t n = json_array_size(ids);
        ck_assert_uint_le(n, 512);
        for (size_t j = 0; j < n; j++)
            prompt[j] = (int32_t)json_integer_value(json_array_get(ids, j));
        const json_t *beams = json_object_get(in, "beams");
        for (size_t k = 0; k < json_array_size(beams); k++, rows++)
            bad += run_row(g, m, prompt, n, json_array_get(beams, k), max_new, enc_dec, name);
    }
    ck_assert_msg(bad == 0, "%s: %d of %d beam settings differ (see stderr)", name, bad, rows);
    json_decref(refs);
    generator_free(g);
    gen_model_free(m);
}

static void check_model(const char *name)
{
    char path[1024], file[64];
    snprintf(path, sizeof path, "%s/beams", fixture_dir("models-issue16-beams.tar.xz"));
    snprintf(file, sizeof file, "%s.json", name);
    check_refs(name, path, file);
}

/* An issue-16 architecture fixture (models-issue16-bart.tar.xz). */
static void check_s2s(const char *name)
{
    char path[1024], file[64];
    snprintf(path, sizeof path, "%s/refs", fixture_dir("models-issue16-bart.tar.xz"));
    snprintf(file, sizeof file, "%s.json", name);
    check_refs(name, path, file);
}

START_TEST(beams_llama)
{
    check_model("llama-lm");
}
END_TEST

START_TEST(beams_t5)
{
    check_model("t5-s2s");
}
END_TEST

START_TEST(beams_bart_s2s)
{
    check_model("bart-s2s");
}
END_TEST

static const char *const s2s_names[] = {"s2s-bart",   "s2s-mbart",   "s2s-marian",
                                        "s2s-marian-unshared", "s2s-m2m100", "s2s-pegasus",
                                        "s2s-mt5"};

START_TEST(beams_s2s)
{
    check_s2s(s2s_names[_i]);
}
END_TEST

Suite *suite_beam(void)
{
    Suite *s = suite_create("beam");
    TCase *tc = tcase_create("transformers");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, beams_llama);
    tcase_add_test(tc, beams_t5);
    tcase_add_test(tc, beams_bart_s2s);
    tcase_add_loop_test(tc, beams_s2s, 0, (int)(sizeof s2s_names / sizeof s2s_names[0]));
    suite_add_tcase(s, tc);
    return s;
}
