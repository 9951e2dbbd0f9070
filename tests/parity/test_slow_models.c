/* test_slow_models: every fixture model whose tokenizer.json has a slow form among the
 * refgen slow-tokenizer fixtures (tokenizers-slow.tar.xz: vocab.txt, vocab.json + merges.txt;
 * tokenizers-spm.tar.xz: sentencepiece models), served from a directory holding the
 * model's weights and config but ONLY those slow files (with the tokenizer_config.json and
 * special_tokens_map.json slow_tokenizers.py / spm_tokenizers.py wrote), gives what the
 * tokenizer.json original gives and what transformers gave (refs-dev.json): encoder
 * pipelines (labels exact, scores within 1e-4; equal to the original's outputs), sentence
 * embeddings, question answering (equal to the original's), and generation through the
 * engine's generator (prompt ids and every greedy id exact).
 *
 * The pairs were checked with transformers 5.17 (AutoTokenizer on both directories: the same
 * vocabulary, the same ids on every tokenizer refs text and pair). Fixtures with no matching
 * slow form that inferd loads: xlmr-seqcls, xlmr-tokcls and albert-seqcls, whose
 * tokenizer.json (the xlmr-unigram fixture) holds '</s>' at ids 2 and 4, the special one at
 * 4: tokenizers-spm/xlmr gives '</s>' = 2 and every piece an id one lower; a sentencepiece
 * model that reproduces the fixture needs a normal piece '</s>' beside the control one, which
 * sentencepiece 0.2.3 and transformers accept and inferd's reader refuses ("given twice").
 * qwen3-lm(-untied): Qwen2Tokenizer's vocab.json + merges.txt is neither a refgen fixture
 * nor a slow.c family. The llama3 tokenizer (chat and tool fixtures) has no slow form.
 * bart-s2s has no refs-dev.json (its tokenizer, roberta's, is covered by roberta-* and
 * mpnet-*). The albert, albert-cased, deberta-v2(-punct), t5-user and llama-legacy
 * sentencepiece fixtures match no fixture model's tokenizer. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "suites.h"
#include "support/support.h"

#define TOL 1e-4

/* A fixture model and the slow tokenizer directory standing in for its tokenizer.json. */
struct slow_pair {
    const char *model, *archive, *tok, *task;
};

#define BERT "tokenizers-slow", "bert-uncased"
#define ROBERTA "tokenizers-slow", "roberta"

static const struct slow_pair encoders[] = {
    {"bert-seqcls", BERT, "text-classification"},
    {"bert-tokcls", BERT, "token-classification"},
    {"bert-nli", BERT, "zero-shot-classification"},
    {"bert-mlm", BERT, "fill-mask"},
    {"distilbert-seqcls", BERT, "text-classification"},
    {"distilbert-tokcls", BERT, "token-classification"},
    {"electra-seqcls", BERT, "text-classification"},
    {"deberta-seqcls", BERT, "text-classification"},
    {"deberta-tokcls", BERT, "token-classification"},
    {"deberta-nli", BERT, "zero-shot-classification"},
    {"deberta-mlm", BERT, "fill-mask"},
    {"modernbert-seqcls", BERT, "text-classification"},
    {"modernbert-seqcls-mean", BERT, "text-classification"},
    {"modernbert-tokcls", BERT, "token-classification"},
    {"modernbert-mlm", BERT, "fill-mask"},
    {"roberta-seqcls", ROBERTA, "sentiment-analysis"},
    {"roberta-tokcls", ROBERTA, "ner"},
    {"mpnet-seqcls", ROBERTA, "text-classification"},
    {"mpnet-tokcls", ROBERTA, "token-classification"},
    {"mpnet-mlm", ROBERTA, "fill-mask"},
};

static const struct slow_pair embedders[] = {
    {"bert-embed", BERT, "sentence-embeddings"},
    {"modernbert-embed", BERT, "sentence-embeddings"},
    {"mpnet-embed", ROBERTA, "sentence-embeddings"},
    {"mistral-embed", "tokenizers-spm", "llama", "sentence-embeddings"},
};

static const struct slow_pair readers[] = {
    {"bert-qa", BERT, "question-answering"},
    {"distilbert-qa", BERT, "question-answering"},
    {"deberta-qa", BERT, "question-answering"},
    {"mpnet-qa", ROBERTA, "question-answering"},
};

static const struct slow_pair generators[] = {
    {"gpt2-lm", "tokenizers-slow", "gpt2", NULL},   {"llama-lm", "tokenizers-spm", "llama", NULL},
    {"gemma-lm", "tokenizers-spm", "llama", NULL},  {"gemma2-lm", "tokenizers-spm", "llama", NULL},
    {"gemma3-lm", "tokenizers-spm", "llama", NULL}, {"phi3-lm", "tokenizers-spm", "llama", NULL},
    {"t5-s2s", "tokenizers-spm", "t5", NULL},
};

#define N_OF(a) ((int)(sizeof(a) / sizeof(a)[0]))

/* ---- the model directory ---- */

/* temp_dir()/MODEL: the fixture's files but its tokenizer files, and the slow tokenizer's
 * files (not its refs). Fails the test when a tokenizer.json is left or no slow file came. */
static const char *slow_model_dir(const struct slow_pair *sp)
{
    static char dir[1400];
    char tok[1024], cmd[16384];
    snprintf(dir, sizeof dir, "%s/%s", temp_dir(), sp->model);
    char archive[64];
    snprintf(archive, sizeof archive, "%s.tar.xz", sp->archive);
    snprintf(tok, sizeof tok, "%s/%s/%s", fixture_dir(archive), sp->archive, sp->tok);
    snprintf(cmd, sizeof cmd,
             "set -e; mkdir '%s'; for f in '%s'/*; do case \"${f##*/}\" in tokenizer.json|"
             "tokenizer_config.json|special_tokens_map.json) ;; *) ln -s \"$f\" '%s'/;; esac; done;"
             " n=0; for f in '%s'/vocab.txt '%s'/vocab.json '%s'/merges.txt '%s'/*.model; do"
             " if [ -e \"$f\" ]; then ln -s \"$f\" '%s'/; n=$((n+1)); fi; done; [ $n -gt 0 ];"
             " ln -s '%s'/tokenizer_config.json '%s'/special_tokens_map.json '%s'/;"
             " [ ! -e '%s'/tokenizer.json ]",
             dir, fixture_model(sp->model), dir, tok, tok, tok, tok, dir, tok, tok, dir, dir);
    ck_assert_msg(system(cmd) == 0, "%s: could not build %s", sp->model, dir);
    return dir;
}

/* ---- encoder pipelines ---- */

struct penv {
    struct pipeline_worker *w;
    struct pipeline *orig, *slow;
};

static void penv_open(struct penv *v, const struct slow_pair *sp)
{
    struct err e = {0};
    ck_assert_msg(pipeline_worker_new(2, &v->w, &e) == 0, "%s", e.msg);
    ck_assert_msg(pipeline_open(fixture_model(sp->model), sp->task, DTYPE_COMPUTE_F32, 2,
                                &v->orig, &e) == 0,
                  "%s: %s", sp->model, e.msg);
    const char *dir = slow_model_dir(sp);
    ck_assert_msg(pipeline_open(dir, sp->task, DTYPE_COMPUTE_F32, 2, &v->slow, &e) == 0,
                  "%s (slow %s): %s", sp->model, sp->tok, e.msg);
}

static void penv_close(struct penv *v)
{
    pipeline_close(v->orig);
    pipeline_close(v->slow);
    pipeline_worker_free(v->w);
}

static json_t *run(const struct penv *v, struct pipeline *p, const json_t *in,
                   const json_t *params, const char *what)
{
    json_t *out = NULL;
    struct err e = {0};
    int rc = pipeline_run(p, v->w, in, params, &out, &e);
    ck_assert_msg(rc == 0, "%s: %s", what, e.msg);
    return out;
}

/* Same structure, equal strings, booleans and integers, reals within tol; *worst gets the
 * largest real difference. */
static bool json_near(const json_t *a, const json_t *b, double tol, double *worst)
{
    if (json_is_real(a) || json_is_real(b)) {
        if (!json_is_number(a) || !json_is_number(b))
            return false;
        double d = fabs(json_number_value(a) - json_number_value(b));
        *worst = fmax(*worst, d);
        return d <= tol;
    }
    if (json_typeof(a) != json_typeof(b))
        return false;
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!json_near(json_array_get(a, i), json_array_get(b, i), tol, worst))
                return false;
        return true;
    }
    if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *k;
        const json_t *x;
        json_object_foreach((json_t *)a, k, x)
        {
            const json_t *y = json_object_get(b, k);
            if (!y || !json_near(x, y, tol, worst))
                return false;
        }
        return true;
    }
    return json_equal((json_t *)a, (json_t *)b);
}

static void expect_same(const json_t *slow, const json_t *orig, const char *what)
{
    if (json_equal((json_t *)slow, (json_t *)orig))
        return;
    char *a = json_dumps(slow, JSON_ENCODE_ANY), *b = json_dumps(orig, JSON_ENCODE_ANY);
    ck_abort_msg("%s: slow tokenizer %.200s, tokenizer.json %.200s", what, a, b);
}

static void expect_near(const json_t *got, const json_t *want, const char *what)
{
    double worst = 0;
    bool ok = json_near(got, want, TOL, &worst);
    char *a = ok ? NULL : json_dumps(got, JSON_ENCODE_ANY);
    char *b = ok ? NULL : json_dumps(want, JSON_ENCODE_ANY);
    ck_assert_msg(ok, "%s: %.200s, transformers %.200s (worst %.3g)", what, a, b, worst);
}

/* Every refs-dev.json "pipeline" entry: the slow directory's output equals the original's and
 * transformers'. */
START_TEST(encoder_pipelines)
{
    const struct slow_pair *sp = &encoders[_i];
    struct penv v;
    penv_open(&v, sp);
    json_t *refs = fixture_json(fixture_model(sp->model), "refs-dev.json");
    const json_t *entries = json_object_get(refs, "pipeline");
    ck_assert_uint_gt(json_array_size(entries), 0);
    for (size_t i = 0; i < json_array_size(entries); i++) {
        const json_t *x = json_array_get(entries, i);
        const json_t *in = json_object_get(x, "input"), *params = json_object_get(x, "parameters");
        char what[160];
        snprintf(what, sizeof what, "%s pipeline[%zu] (slow %s)", sp->model, i, sp->tok);
        json_t *slow = run(&v, v.slow, in, params, what), *orig = run(&v, v.orig, in, params, what);
        expect_same(slow, orig, what);
        expect_near(slow, json_object_get(x, "output"), what);
        json_decref(slow);
        json_decref(orig);
    }
    json_decref(refs);
    penv_close(&v);
}
END_TEST

/* Every refs "sentence_embeddings" text in one request. */
START_TEST(sentence_embeddings)
{
    const struct slow_pair *sp = &embedders[_i];
    struct penv v;
    penv_open(&v, sp);
    json_t *refs = fixture_json(fixture_model(sp->model), "refs-dev.json");
    const json_t *entries = json_object_get(refs, "sentence_embeddings");
    json_t *texts = json_array(), *want = json_array();
    for (size_t i = 0; i < json_array_size(entries); i++) {
        json_array_append(texts, json_object_get(json_array_get(entries, i), "text"));
        json_array_append(want, json_object_get(json_array_get(entries, i), "embedding"));
    }
    ck_assert_uint_gt(json_array_size(texts), 0);
    char what[160];
    snprintf(what, sizeof what, "%s sentence embeddings (slow %s)", sp->model, sp->tok);
    json_t *slow = run(&v, v.slow, texts, NULL, what), *orig = run(&v, v.orig, texts, NULL, what);
    expect_same(slow, orig, what);
    expect_near(slow, want, what);
    json_decref(slow);
    json_decref(orig);
    json_decref(texts);
    json_decref(want);
    json_decref(refs);
    penv_close(&v);
}
END_TEST

/* The refs' question/context pairs (transformers recorded raw logits only: test_parity
 * checks those): the slow directory's answers equal the original's. */
START_TEST(question_answering)
{
    const struct slow_pair *sp = &readers[_i];
    struct penv v;
    penv_open(&v, sp);
    json_t *refs = fixture_json(fixture_model(sp->model), "refs-dev.json");
    const json_t *entries = json_object_get(refs, "logits");
    ck_assert_uint_gt(json_array_size(entries), 0);
    for (size_t i = 0; i < json_array_size(entries); i++) {
        const json_t *x = json_array_get(entries, i);
        json_t *in = json_pack("{s:O, s:O}", "question", json_object_get(x, "question"),
                               "context", json_object_get(x, "context"));
        char what[160];
        snprintf(what, sizeof what, "%s question %zu (slow %s)", sp->model, i, sp->tok);
        json_t *slow = run(&v, v.slow, in, NULL, what), *orig = run(&v, v.orig, in, NULL, what);
        expect_same(slow, orig, what);
        ck_assert(json_object_get(json_is_array(slow) ? json_array_get(slow, 0) : slow, "answer"));
        json_decref(slow);
        json_decref(orig);
        json_decref(in);
    }
    json_decref(refs);
    penv_close(&v);
}
END_TEST

/* ---- generation ---- */

struct progress {
    char failed[256];
    bool done;
};

static void on_event(void *arg, const struct gen_step_event *ev)
{
    struct progress *pr = arg;
    if (ev->error)
        snprintf(pr->failed, sizeof pr->failed, "%s", ev->error);
    if (ev->error || (ev->token && ev->token->finish != GEN_FINISH_NONE))
        pr->done = true;
}

/* Greedy, eos ignored, n_new tokens after prompt; returns the generated ids (malloc'ed). */
static int32_t *generate(const struct gen_model *m, const int32_t *prompt, size_t n_prompt,
                         uint32_t n_new, size_t *n_out)
{
    struct err e = {0};
    struct generator *g = generator_new(
        m, &(struct generator_limits){.max_seqs = 1, .max_total = 256, .max_prefill = 256,
                                      .threads = 1},
        &e);
    ck_assert_ptr_nonnull(g);
    ck_assert_msg(generator_prepare(g, &e) == 0 && generator_open(g, &e) == 0, "%s", e.msg);
    struct gen_params p;
    gen_params_init(&p, gen_model_config(m));
    p.max_new_tokens = n_new;
    p.ignore_eos = true;
    struct gen_seq *s = NULL;
    ck_assert_msg(gen_seq_start(g, prompt, n_prompt, &p, NULL, &s, &e) == 0, "%s", e.msg);
    struct progress pr = {.done = false};
    struct gen_step_stats stats;
    for (int guard = 0; !pr.done && guard < 400; guard++)
        generator_step(g, &s, 1, 256, on_event, &pr, &stats);
    ck_assert_msg(pr.done && !pr.failed[0], "generation: %s", pr.failed);
    gen_seq_retire(g, s);
    struct gen_seq_result res;
    ck_assert_msg(gen_seq_result(s, &res, &e) == 0, "%s", e.msg);
    int32_t *ids = malloc((res.n_ids + 1) * sizeof *ids);
    memcpy(ids, res.ids, res.n_ids * sizeof *ids);
    *n_out = res.n_ids;
    gen_seq_free(s);
    gen_params_fini(&p);
    generator_close(g);
    generator_free(g);
    return ids;
}

static int32_t *tokenize(const struct gen_model *m, const char *text, size_t *n)
{
    int32_t *ids = NULL;
    struct err e = {0};
    ck_assert_msg(gen_model_tokenize(m, text, strlen(text), true, false, &ids, n, &e) == 0, "%s",
                  e.msg);
    return ids;
}

static void expect_ids(const int32_t *got, size_t n, const json_t *want, size_t skip,
                       const char *what)
{
    ck_assert_msg(n + skip == json_array_size(want), "%s: %zu ids, not %zu", what, n,
                  json_array_size(want) - skip);
    for (size_t k = 0; k < n; k++)
        ck_assert_msg(got[k] == json_integer_value(json_array_get(want, k + skip)),
                      "%s: id %zu is %d, not %lld", what, k, got[k],
                      (long long)json_integer_value(json_array_get(want, k + skip)));
}

/* Every refs "generations" prompt: its ids (the slow tokenizer's, the original's and
 * transformers') and its greedy continuation (the same three). An encoder-decoder's
 * greedy_ids start with the decoder start token. */
START_TEST(generation)
{
    const struct slow_pair *sp = &generators[_i];
    struct gen_model *orig = NULL, *slow = NULL;
    struct err e = {0};
    ck_assert_msg(gen_model_load(fixture_model(sp->model), NULL, &orig, &e) == 0, "%s", e.msg);
    const char *dir = slow_model_dir(sp);
    ck_assert_msg(gen_model_load(dir, NULL, &slow, &e) == 0, "%s (slow %s): %s", sp->model,
                  sp->tok, e.msg);
    json_t *refs = fixture_json(fixture_model(sp->model), "refs-dev.json");
    const json_t *gens = json_object_get(refs, "generations");
    ck_assert_uint_gt(json_array_size(gens), 0);
    size_t skip = gen_model_is_encoder_decoder(slow) ? 1 : 0;
    for (size_t i = 0; i < json_array_size(gens); i++) {
        const json_t *g = json_array_get(gens, i);
        const json_t *text = json_object_get(g, skip ? "input" : "prompt");
        const json_t *greedy = json_object_get(g, "greedy_ids");
        char what[160];
        snprintf(what, sizeof what, "%s generation %zu (slow %s)", sp->model, i, sp->tok);
        size_t n_s, n_o, g_s, g_o;
        int32_t *ids_s = tokenize(slow, json_string_value(text), &n_s);
        int32_t *ids_o = tokenize(orig, json_string_value(text), &n_o);
        expect_ids(ids_s, n_s, json_object_get(g, "input_ids"), 0, what);
        ck_assert(n_s == n_o && memcmp(ids_s, ids_o, n_s * sizeof *ids_s) == 0);
        uint32_t n_new = (uint32_t)(json_array_size(greedy) - skip);
        int32_t *out_s = generate(slow, ids_s, n_s, n_new, &g_s);
        int32_t *out_o = generate(orig, ids_o, n_o, n_new, &g_o);
        expect_ids(out_s, g_s, greedy, skip, what);
        ck_assert(g_s == g_o && memcmp(out_s, out_o, g_s * sizeof *out_s) == 0);
        free(ids_s);
        free(ids_o);
        free(out_s);
        free(out_o);
    }
    json_decref(refs);
    gen_model_free(slow);
    gen_model_free(orig);
}
END_TEST

Suite *suite_slow_models(void)
{
    Suite *s = suite_create("slow_models");
    TCase *tc = tcase_create("slow_models");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, encoder_pipelines, 0, N_OF(encoders));
    tcase_add_loop_test(tc, sentence_embeddings, 0, N_OF(embedders));
    tcase_add_loop_test(tc, question_answering, 0, N_OF(readers));
    tcase_add_loop_test(tc, generation, 0, N_OF(generators));
    suite_add_tcase(s, tc);
    return s;
}
