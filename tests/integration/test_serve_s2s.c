/* test_serve_s2s: summarization, translation and beam search served by the real daemon,
 * against transformers 4.57.6's pipelines (tests/data/issue16-pipelines.tar.xz,
 * tools/refgen/s2s_pipelines.py): the t5-s2s fixture given T5's task_specific_params
 * ("summarize: ", "translate English to German: ", ... with their beam settings) and a
 * generation_config.json whose max_length is not 20, as models "sum" (summarization), "de"
 * (translation_en_to_de), "tr" (translation: the model's first translation entry, as
 * pipeline() picks it) and "fr" (translation_en_to_fr); llama-lm as "lm" (text-generation).
 *
 * "defaults": the generation config each pipeline builds (its own num_beams 4 /
 * max_new_tokens 256 defaults, the model's generation_config.json, the task's
 * task_specific_params) is what s2s_task_init + the pipeline dialect resolve, prefix included.
 * "pipelines": every recorded call (defaults, num_return_sequences lists, return_tensors,
 * no_repeat_ngram_size, length_penalty, early_stopping "never", min_new_tokens,
 * forced_eos_token_id, repetition_penalty, bad_words_ids with beams and greedy, a greedy one)
 * answers exactly the pipeline's output
 * on POST /models/NAME; the same through `inferd run`.
 * "lm_beams": text-generation with num_beams on the HF route (num_return_sequences lists,
 * return_full_text false), alone and beside streamed greedy /generate_stream requests that
 * keep their text.
 * "refusals": 422 with the parameter named for bad beam values and combinations; a
 * translation pair the model lacks stops its load.
 * "reset_cancels_beams": a client resetting its connection during a long beam search frees
 * its slots at once. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gen_api.h"
#include "integration/serve_expect.h"
#include "integration/serve_support.h"
#include "params_s2s.h"
#include "suites.h"
#include "support/support.h"

static struct daemon *srv;
static json_t *refs;    /* pipelines/s2s.json */
static char tasks_dir[1400]; /* the t5-tasks model */

static json_t *load_refs(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/pipelines", fixture_dir("issue16-pipelines.tar.xz"));
    return fixture_json(dir, "s2s.json");
}

static void write_json(const char *dir, const char *file, json_t *v)
{
    char path[1600];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    unlink(path); /* a link to the fixture's */
    ck_assert_int_eq(json_dump_file(v, path, JSON_INDENT(1)), 0);
}

/* t5-s2s with the refs' task_specific_params in config.json and their generation_config. */
static void make_tasks_model(const json_t *t5)
{
    snprintf(tasks_dir, sizeof tasks_dir, "%s",
             model_link_copy(temp_dir(), "t5-tasks", "t5-s2s", NULL, NULL));
    json_t *cfg = fixture_json(fixture_model("t5-s2s"), "config.json");
    json_object_set(cfg, "task_specific_params",
                    json_object_get(t5, "config_task_specific_params"));
    write_json(tasks_dir, "config.json", cfg);
    json_decref(cfg);
    write_json(tasks_dir, "generation_config.json", json_object_get(t5, "generation_config"));
}

/* The served models: each refs variant's tasks ("t5_tasks": the t5-tasks model, "t5_plain":
 * t5-s2s itself). */
static const struct {
    const char *variant, *task, *model;
} models[] = {
    {"t5_tasks", "summarization", "sum"},
    {"t5_tasks", "translation_en_to_de", "de"},
    {"t5_tasks", "translation", "tr"},
    {"t5_tasks", "translation_en_to_fr", "fr"},
    {"t5_plain", "summarization", "psum"},
    {"t5_plain", "translation_en_to_de", "pde"},
};
#define N_MODELS (sizeof models / sizeof models[0])
static const char *const variants[] = {"t5_tasks", "t5_plain"};

static void srv_start(void)
{
    refs = load_refs();
    const json_t *t5 = json_object_get(refs, "t5_tasks");
    make_tasks_model(t5);
    const char *slots = "batching:\n  max_batch_size: 8\n";
    char *yaml = yaml_config(NULL, yaml_model("sum", tasks_dir, "summarization", slots),
                             yaml_model("de", tasks_dir, "translation_en_to_de", slots),
                             yaml_model("tr", tasks_dir, "translation", slots),
                             yaml_model("fr", tasks_dir, "translation_en_to_fr", slots),
                             yaml_model("psum", "t5-s2s", "summarization", slots),
                             yaml_model("pde", "t5-s2s", "translation_en_to_de", slots),
                             yaml_model("lm", "llama-lm", "text-generation", slots), NULL);
    srv = daemon_start_shared(yaml);
}

static void srv_stop(void)
{
    daemon_stop(srv);
    srv = NULL;
    json_decref(refs);
    refs = NULL;
}

static const json_t *task_refs(const char *task)
{
    const json_t *t = json_object_get(json_object_get(json_object_get(refs, "t5_tasks"), "tasks"),
                                      task);
    ck_assert_msg(t, "no refs for %s", task);
    return t;
}

/* ---- defaults ---- */

static int64_t int_or(const json_t *v, int64_t none)
{
    return json_is_integer(v) ? json_integer_value(v) : none;
}

/* Each task's defaults on the model of refs variant v in dir. */
static void check_defaults(const json_t *v, const char *dir)
{
    struct gen_model *gm = NULL;
    struct err e = {0};
    ck_assert_msg(gen_model_load(dir, NULL, &gm, &e) == 0, "%s", e.msg);
    bool has_params = json_object_size(json_object_get(v, "config_task_specific_params")) > 0;
    const char *task;
    const json_t *t;
    json_object_foreach(json_object_get(v, "tasks"), task, t)
    {
        struct s2s_task st;
        ck_assert_msg(s2s_task_init(gm, task, &st, &e) == 0, "%s: %s", task, e.msg);
        const char *prefix = json_string_value(json_object_get(t, "prefix"));
        ck_assert_str_eq(st.prefix, prefix ? prefix : "");
        ck_assert_str_eq(st.params_key,
                         has_params ? json_string_value(json_object_get(t, "pipeline_task")) : "");
        struct gen_params p;
        ck_assert_msg(gen_api_parse(&gen_api_pipeline, NULL, &st.defaults, NULL, &p, &e) == 0,
                      "%s: %s", task, e.msg);
        const json_t *gc = json_object_get(t, "generation_config");
        ck_assert_int_eq(p.num_beams, int_or(json_object_get(gc, "num_beams"), 1));
        ck_assert_int_eq(p.max_new_tokens, int_or(json_object_get(gc, "max_new_tokens"), 0));
        ck_assert_int_eq(p.max_length, int_or(json_object_get(gc, "max_length"), 0));
        ck_assert_int_eq(p.min_length, int_or(json_object_get(gc, "min_length"), 0));
        ck_assert_int_eq(p.no_repeat_ngram_size,
                         int_or(json_object_get(gc, "no_repeat_ngram_size"), 0));
        ck_assert(p.length_penalty == json_number_value(json_object_get(gc, "length_penalty")));
        const json_t *es = json_object_get(gc, "early_stopping");
        ck_assert_int_eq(p.early_stopping, json_is_string(es) ? GEN_EARLY_STOP_NEVER
                                           : json_is_true(es) ? GEN_EARLY_STOP_TRUE
                                                              : GEN_EARLY_STOP_FALSE);
        ck_assert_int_eq(p.forced_eos_token_id,
                         int_or(json_object_get(gc, "forced_eos_token_id"), -1));
        ck_assert(!p.do_sample);
        gen_params_fini(&p);
    }
    gen_model_free(gm);
}

START_TEST(defaults)
{
    json_t *r = load_refs();
    make_tasks_model(json_object_get(r, "t5_tasks"));
    check_defaults(json_object_get(r, "t5_tasks"), tasks_dir);
    check_defaults(json_object_get(r, "t5_plain"), fixture_model("t5-s2s"));
    struct gen_model *gm = NULL;
    struct err e = {0};
    ck_assert_msg(gen_model_load(tasks_dir, NULL, &gm, &e) == 0, "%s", e.msg);
    /* the pair names: transformers' check_task shape */
    ck_assert_int_eq(task_by_name("translation_en_to_de"), TASK_TRANSLATION);
    ck_assert_int_eq(task_by_name("translation_en_to"), -1);
    ck_assert_int_eq(task_by_name("translation_en_to_de_x"), -1);
    ck_assert_int_eq(task_by_name("translation__to_de"), -1);
    /* a pair the model's task_specific_params do not have */
    struct s2s_task st;
    ck_assert_int_eq(s2s_task_init(gm, "translation_en_to_ro", &st, &e), ERR_INVALID);
    ck_assert_msg(strstr(e.msg, "translation_en_to_ro") && strstr(e.msg, "translation_en_to_de"),
                  "%s", e.msg);
    gen_model_free(gm);
    json_decref(r);
}
END_TEST

/* ---- the pipelines ---- */

static const char *model_of(const char *variant, const char *task)
{
    for (size_t i = 0; i < N_MODELS; i++)
        if (strcmp(models[i].variant, variant) == 0 && strcmp(models[i].task, task) == 0)
            return models[i].model;
    ck_abort_msg("no model for %s", task);
    return NULL;
}

static json_t *request(const json_t *call)
{
    return json_pack("{s:O, s:O}", "inputs", json_object_get(call, "input"), "parameters",
                     json_object_get(call, "parameters"));
}

START_TEST(pipelines)
{
    size_t n = 0;
    for (size_t v = 0; v < 2; v++) {
    const json_t *tasks = json_object_get(json_object_get(refs, variants[v]), "tasks");
    const char *task;
    const json_t *t;
    json_object_foreach((json_t *)tasks, task, t)
    {
        char path[64];
        snprintf(path, sizeof path, "/models/%s", model_of(variants[v], task));
        const json_t *calls = json_object_get(t, "calls");
        for (size_t i = 0; i < json_array_size(calls); i++, n++) {
            const json_t *call = json_array_get(calls, i);
            char what[256];
            char *params = json_dumps(json_object_get(call, "parameters"), JSON_COMPACT);
            snprintf(what, sizeof what, "%s %s on '%.30s'", task, params,
                     json_string_value(json_object_get(call, "input")));
            free(params);
            struct http_reply *r = daemon_post(srv, path, request(call));
            expect_status(r, 200, what);
            expect_json(r->json, json_object_get(call, "output"), 0, what);
            http_reply_free(r);
        }
    }
    }
    ck_assert_uint_ge(n, 25);
}
END_TEST

/* `inferd run --task summarization` answers the same lines. */
START_TEST(cli_run)
{
    const json_t *calls = json_object_get(task_refs("summarization"), "calls");
    char *input = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&input, &len);
    for (size_t i = 0; i < json_array_size(calls); i++) {
        json_t *req = request(json_array_get(calls, i));
        char *line = json_dumps(req, JSON_COMPACT);
        fprintf(f, "%s\n", line);
        free(line);
        json_decref(req);
    }
    fclose(f);
    char args[1600];
    snprintf(args, sizeof args, "run --model '%s' --task summarization --threads 1", tasks_dir);
    int status = -1;
    json_t *lines = run_cli(args, input, &status);
    free(input);
    ck_assert_int_eq(status, 0);
    ck_assert_uint_eq(json_array_size(lines), json_array_size(calls));
    for (size_t i = 0; i < json_array_size(calls); i++) {
        const json_t *call = json_array_get(calls, i);
        if (json_object_get(json_object_get(call, "parameters"), "return_tensors"))
            continue; /* the CLI answers text */
        expect_json(json_array_get(lines, i), json_object_get(call, "output"), 0, "inferd run");
    }
    json_decref(lines);
}
END_TEST

/* ---- text-generation with beams ---- */

static const char *last_generated_text(const char *sse, char *buf, size_t cap)
{
    const char *last = NULL;
    for (const char *p = strstr(sse, "data:"); p; p = strstr(p + 5, "data:"))
        last = p + 5;
    ck_assert_msg(last, "no event in %s", sse);
    const char *end = strchr(last, '\n');
    size_t n = end ? (size_t)(end - last) : strlen(last);
    json_t *j = json_loadb(last, n, 0, NULL);
    ck_assert_msg(j, "not JSON: %.*s", (int)n, last);
    snprintf(buf, cap, "%s", json_string_value(json_object_get(j, "generated_text")));
    json_decref(j);
    return buf;
}

START_TEST(lm_beams)
{
    const json_t *calls = json_object_get(refs, "llama_text_generation");
    for (size_t i = 0; i < json_array_size(calls); i++) {
        const json_t *call = json_array_get(calls, i);
        struct http_reply *r = daemon_post(srv, "/models/lm", request(call));
        expect_status(r, 200, "lm beams");
        expect_json(r->json, json_object_get(call, "output"), 0, "lm beams");
        http_reply_free(r);
    }
    /* greedy streams beside beam searches: their text as when alone */
    const char *greedy = "{\"inputs\":\"Once upon a time\",\"parameters\":{\"max_new_tokens\":24}}";
    struct http_reply *alone = http_request(srv->port, "POST", "/generate", greedy, NULL);
    expect_status(alone, 200, "greedy alone");
    const char *want = json_string_value(json_object_get(alone->json, "generated_text"));
    ck_assert(want);
    enum { N = 8 };
    struct http_spec specs[N];
    char *bodies[N] = {0};
    for (size_t i = 0; i < N; i++) {
        if (i % 2 == 0) {
            specs[i] = (struct http_spec){"POST", "/generate_stream", greedy, NULL};
            continue;
        }
        json_t *b = request(json_array_get(calls, (i / 2) % json_array_size(calls)));
        bodies[i] = json_dumps(b, JSON_COMPACT);
        json_decref(b);
        specs[i] = (struct http_spec){"POST", "/models/lm", bodies[i], NULL};
    }
    struct http_multi *m = http_multi_start(srv->port, specs, N);
    ck_assert(http_multi_wait(m, 120000));
    for (size_t i = 0; i < N; i++) {
        const struct http_reply *r = http_multi_reply(m, i);
        expect_status(r, 200, specs[i].path);
        if (i % 2 == 0) {
            char text[4096];
            ck_assert_str_eq(last_generated_text(r->body, text, sizeof text), want);
        } else {
            const json_t *call = json_array_get(calls, (i / 2) % json_array_size(calls));
            expect_json(r->json, json_object_get(call, "output"), 0, "beams beside streams");
        }
        free(bodies[i]);
    }
    http_multi_free(m);
    http_reply_free(alone);
    /* the beam searches count their best hypotheses' tokens beside the greedy ones' 5 * 24 */
    struct http_reply *r = daemon_get(srv, "/metrics");
    const char *labels[] = {"model=\"lm\"", NULL};
    double generated = metric_sum(r->body, "inferd_generated_tokens_total", labels, NULL);
    ck_assert_msg(generated > 5 * 24, "%g tokens generated (the greedy ones 120)", generated);
    http_reply_free(r);
}
END_TEST

/* ---- refusals ---- */

static void expect_422(const char *model, const char *params, const char *needle)
{
    char path[64];
    snprintf(path, sizeof path, "/models/%s", model);
    json_error_t je;
    json_t *p = json_loads(params, 0, &je);
    ck_assert_msg(p, "%s: %s", params, je.text);
    struct http_reply *r = daemon_post(
        srv, path, json_pack("{s:s, s:o}", "inputs", "Paris is the capital of France.",
                             "parameters", p));
    expect_hf_error(r, 422, needle);
    const char *msg = json_string_value(json_object_get(r->json, "error"));
    ck_assert_msg(msg && strstr(msg, needle), "%s %s: '%s' does not say '%s'", model, params,
                  msg ? msg : r->body, needle);
    http_reply_free(r);
}

START_TEST(refusals)
{
    expect_422("sum", "{\"num_beams\": 2, \"num_return_sequences\": 3}",
               "`num_return_sequences` (3) has to be smaller or equal to `num_beams` (2).");
    expect_422("lm", "{\"num_return_sequences\": 2}",
               "Greedy methods without beam search do not support `num_return_sequences`");
    expect_422("sum", "{\"do_sample\": true}", "`do_sample` with `num_beams` > 1");
    expect_422("sum", "{\"num_beams\": 9}", "`num_beams` must be <= 8");
    expect_422("sum", "{\"num_beams\": 0}", "`num_beams` must be an integer in [1, 64]");
    expect_422("sum", "{\"num_beams\": 65}", "`num_beams` must be an integer in [1, 64]");
    expect_422("sum", "{\"num_beams\": \"four\"}", "`num_beams` must be an integer");
    expect_422("de", "{\"early_stopping\": \"sometimes\"}",
               "`early_stopping` must be a boolean or 'never'");
    expect_422("de", "{\"no_repeat_ngram_size\": -1}", "`no_repeat_ngram_size` must be");
    expect_422("de", "{\"min_length\": -2}", "`min_length` must be");
    expect_422("de", "{\"length_penalty\": \"long\"}", "`length_penalty` must be a number");
    expect_422("de", "{\"forced_bos_token_id\": 999999}", "`forced_bos_token_id` (999999)");
    expect_422("de", "{\"forced_eos_token_id\": -3}", "`forced_eos_token_id` must be a token id");
    expect_422("de", "{\"bad_words_ids\": [[]]}",
               "`bad_words_ids` has to be a list of non-empty lists");
    expect_422("de", "{\"bad_words_ids\": [[3, -1]]}",
               "Each list in `bad_words_ids` has to be a list of positive integers");
    expect_422("de", "{\"bad_words_ids\": [[999999]]}",
               "`bad_words_ids`: id 999999 is not in the vocabulary");
    expect_422("lm", "{\"bad_words_ids\": [[9999999]]}",
               "`bad_words_ids`: id 9999999 is not in the vocabulary");
    expect_422("de", "{\"src_lang\": \"en\"}", "`src_lang` is not supported");
    expect_422("lm", "{\"min_length\": 3}", "`min_length` is not supported without beam search");
    expect_422("sum", "{\"num_beams\": 1}", "`min_length` is not supported without beam search");
    expect_422("lm", "{\"num_beams\": 8, \"max_new_tokens\": 600}", "must be <=");
    /* TGI keeps its own semantics: no beam search there (num_beams is not its parameter) */
    struct http_reply *r =
        http_request(srv->port, "POST", "/generate",
                     "{\"inputs\":\"Once upon a time\",\"parameters\":{\"max_new_tokens\":4,"
                     "\"num_beams\":4}}",
                     NULL);
    expect_status(r, 200, "TGI ignores num_beams");
    http_reply_free(r);
}
END_TEST

/* A client that resets its connection during a long beam search cancels it: its 4 slots are
 * free within a fraction of what the search takes (3000 tokens, eos banned: seconds). */
START_TEST(reset_cancels_beams)
{
    int fd = raw_connect(srv->port);
    char *req = raw_post_text("/models/sum", "{\"inputs\":\"Paris\",\"parameters\":{\"num_beams\""
                                             ":4,\"max_new_tokens\":3000,\"min_length\":2990}}");
    ck_assert(raw_send(fd, req, strlen(req)));
    free(req);
    const char *labels[] = {"model=\"sum\"", NULL};
    long long t0 = now_ms();
    double running = 0;
    while (running < 1 && now_ms() - t0 < 10000) { /* admitted */
        struct http_reply *r = daemon_get(srv, "/metrics");
        running = metric_sum(r->body, "inferd_running_sequences", labels, NULL);
        http_reply_free(r);
    }
    ck_assert_msg(running == 1, "the beam search never ran");
    raw_reset(fd);
    long long t1 = now_ms();
    while (running > 0 && now_ms() - t1 < 10000) {
        sleep_ms(20);
        struct http_reply *r = daemon_get(srv, "/metrics");
        running = metric_sum(r->body, "inferd_running_sequences", labels, NULL);
        http_reply_free(r);
    }
    long long waited = now_ms() - t1;
    ck_assert_msg(running == 0 && waited < 2000, "still running %lld ms after the reset", waited);
    /* and the model answers as before */
    const json_t *call = json_array_get(json_object_get(task_refs("summarization"), "calls"), 0);
    struct http_reply *r = daemon_post(srv, "/models/sum", request(call));
    expect_status(r, 200, "after the reset");
    expect_json(r->json, json_object_get(call, "output"), 0, "after the reset");
    http_reply_free(r);
}
END_TEST

START_TEST(shutdown_is_clean)
{
    daemon_shutdown(srv);
}
END_TEST

/* A translation pair the model's task_specific_params lack: the model does not load. */
START_TEST(missing_pair_refused)
{
    json_t *r = load_refs();
    make_tasks_model(json_object_get(r, "t5_tasks"));
    json_decref(r);
    char *yaml = yaml_config(NULL, yaml_model("ro", tasks_dir, "translation_en_to_ro", NULL), NULL);
    struct daemon *d = daemon_new(yaml);
    free(yaml);
    daemon_exec(d, NULL);
    int code = daemon_wait_exit(d, 60000);
    ck_assert_msg(code == 1, "exit code %d; log:\n%s", code, daemon_log_tail(d));
    char *log = daemon_log(d);
    ck_assert_msg(strstr(log, "model ro failed to load") &&
                      strstr(log, "'translation_en_to_ro': the model has no such language pair"),
                  "%s", log);
    free(log);
    expect_clean_log(d);
    daemon_stop(d);
}
END_TEST

/* Translators whose tokenizers take language codes (tests/data/models-issue16-lang.tar.xz,
 * tools/refgen/lang_pipelines.py: an M2M100 with NLLB's tokenizer, an mBART with mBART's)
 * answer transformers 4.57's pipeline("translation", src_lang=..., tgt_lang=...) exactly:
 * the source code around the input, the target code forced first (return_tensors shows it);
 * a missing or unknown code is a 422 naming the parameter. */
START_TEST(language_codes)
{
    const char *root = fixture_dir("models-issue16-lang.tar.xz");
    char nllb[900], mbart[900];
    snprintf(nllb, sizeof nllb, "%s/models-lang/s2s-nllb", root);
    snprintf(mbart, sizeof mbart, "%s/models-lang/s2s-mbart-lang", root);
    char *yaml = yaml_config(NULL, yaml_model("nllb", nllb, "translation", NULL),
                             yaml_model("mbart", mbart, "translation", NULL), NULL);
    struct daemon *d = daemon_start(yaml, NULL);
    free(yaml);
    char dir[900];
    snprintf(dir, sizeof dir, "%s/models-lang", root);
    json_t *r = fixture_json(dir, "pipelines.json");
    static const char *const names[][2] = {{"s2s-nllb", "/models/nllb"},
                                           {"s2s-mbart-lang", "/models/mbart"}};
    size_t n = 0;
    for (size_t m = 0; m < 2; m++) {
        const json_t *calls = json_object_get(json_object_get(r, names[m][0]), "calls");
        for (size_t i = 0; i < json_array_size(calls); i++, n++) {
            const json_t *call = json_array_get(calls, i);
            char what[256];
            char *params = json_dumps(json_object_get(call, "parameters"), JSON_COMPACT);
            snprintf(what, sizeof what, "%s %s", names[m][0], params);
            free(params);
            struct http_reply *rep = daemon_post(d, names[m][1], request(call));
            expect_status(rep, 200, what);
            expect_json(rep->json, json_object_get(call, "output"), 0, what);
            http_reply_free(rep);
        }
    }
    ck_assert_uint_ge(n, 24);
    json_decref(r);
    static const char *const bad[][2] = {
        {"{\"src_lang\": \"eng_Latn\"}", "requires a `src_lang` and a `tgt_lang`"},
        {"{\"src_lang\": \"eng_Latn\", \"tgt_lang\": \"</s>\"}", "`tgt_lang` '</s>'"},
        {"{\"src_lang\": \"xx_Latn\", \"tgt_lang\": \"fra_Latn\"}", "`src_lang` 'xx_Latn'"},
        {"{\"src_lang\": \"eng_Latn\", \"tgt_lang\": \"zz\"}", "`tgt_lang` 'zz'"},
        {"{\"src_lang\": 3, \"tgt_lang\": \"fra_Latn\"}", "`src_lang` must be a string"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_error_t je;
        json_t *p = json_loads(bad[i][0], 0, &je);
        ck_assert_msg(p, "%s", je.text);
        struct http_reply *rep = daemon_post(
            d, "/models/nllb", json_pack("{s:s, s:o}", "inputs", "Hi", "parameters", p));
        expect_hf_error(rep, 422, bad[i][0]);
        const char *msg = json_string_value(json_object_get(rep->json, "error"));
        ck_assert_msg(msg && strstr(msg, bad[i][1]), "%s: '%s' does not say '%s'", bad[i][0],
                      msg ? msg : rep->body, bad[i][1]);
        http_reply_free(rep);
    }
    daemon_stop(d);
}
END_TEST

Suite *suite_serve_s2s(void)
{
    Suite *s = suite_create("serve_s2s");
    TCase *u = tcase_create("defaults");
    tcase_add_test(u, defaults);
    suite_add_tcase(s, u);
    TCase *h = tcase_create("http");
    tcase_set_timeout(h, 300);
    tcase_add_unchecked_fixture(h, srv_start, srv_stop);
    tcase_add_checked_fixture(h, NULL, serve_teardown);
    tcase_add_test(h, pipelines);
    tcase_add_test(h, cli_run);
    tcase_add_test(h, lm_beams);
    tcase_add_test(h, refusals);
    tcase_add_test(h, reset_cancels_beams);
    tcase_add_test(h, shutdown_is_clean);
    suite_add_tcase(s, h);
    TCase *load = tcase_create("load");
    tcase_set_timeout(load, 120);
    tcase_add_checked_fixture(load, NULL, serve_teardown);
    tcase_add_test(load, missing_pair_refused);
    tcase_add_test(load, language_codes);
    suite_add_tcase(s, load);
    return s;
}
