/* generate: `inferd run --task text-generation | text2text-generation | summarization |
 * translation[_xx_to_yy]`: the generation model served by `serve` (gen_model_load, one
 * gen_sched), {"inputs": "prompt", "parameters": {...}} lines on stdin, one line per input on
 * stdout: [{"generated_text": ...}] as transformers.pipeline(task) answers (text-generation: the
 * prompt and its continuation unless "return_full_text": false; the seq2seq tasks: the new
 * text, under "summary_text" / "translation_text" for summarization and translation, with
 * their defaults and prefixes (server/params_s2s.h), max_length counting the decoder start
 * token as generate() does; one record per num_return_sequences), or {"error", "error_type"}. Lines run one after the
 * other, each with the pipeline dialect's parameters (max_new_tokens, do_sample, seed, ...).
 * Translation with a language-code tokenizer (NLLB, M2M100, mBART): each line's src_lang /
 * tgt_lang parameters, else --src-lang / --tgt-lang, else a translation_xx_to_yy task's, build
 * the inputs and force tgt_lang's code first, as the server's HF route does. */
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gen_sched.h"
#include "gen_api.h"
#include "params_s2s.h"
#include "registry.h"

/* slots for one line's beams (num_beams at most) */
#define CLI_MAX_BEAMS 16

/* One request's answer, filled by the scheduler's worker. */
struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    enum gen_status status;
    char error[sizeof ((struct gen_result *)0)->error];
    char *text;
    size_t text_len;
    char **hyps; /* a beam search's returned texts (n_hyps) */
    size_t *hyp_len, n_hyps;
    /* a decoder-only model's: the texts are its new ids decoded alone, as transformers 5's
     * text-generation pipeline makes them (NULL: the result's text, a seq2seq model's) */
    const struct gen_model *decode_alone;
};

static void waiter_fini(struct waiter *w)
{
    free(w->text);
    for (size_t i = 0; i < w->n_hyps; i++)
        free(w->hyps[i]);
    free(w->hyps);
    free(w->hyp_len);
}

static char *dup_n(const char *s, size_t n)
{
    char *t = malloc(n + 1);
    if (t) {
        memcpy(t, s, n);
        t[n] = '\0';
    }
    return t;
}

/* A returned text: ids decoded alone (w->decode_alone), else text; *len set. NULL when out of
 * memory. */
static char *result_text(const struct waiter *w, const char *text, size_t text_len,
                         const int32_t *ids, size_t n_ids, size_t *len)
{
    *len = text_len;
    if (!w->decode_alone)
        return dup_n(text, text_len);
    char *t = NULL;
    struct err e = {0};
    if (gen_model_decode(w->decode_alone, ids, n_ids, &t, len, &e) != 0)
        return NULL;
    return t;
}

/* res's hypotheses into w (false when out of memory). */
static bool keep_hyps(struct waiter *w, const struct gen_result *res)
{
    if (!res->n_hyps)
        return true;
    w->hyps = calloc(res->n_hyps, sizeof *w->hyps);
    w->hyp_len = calloc(res->n_hyps, sizeof *w->hyp_len);
    if (!w->hyps || !w->hyp_len)
        return false;
    w->n_hyps = res->n_hyps;
    for (size_t i = 0; i < res->n_hyps; i++) {
        const struct gen_hyp *h = &res->hyps[i];
        if (!(w->hyps[i] = result_text(w, h->text, h->text_len, h->ids, h->n_ids, &w->hyp_len[i])))
            return false;
    }
    return true;
}

static void on_done(void *owner, const struct gen_result *res)
{
    struct waiter *w = owner;
    size_t len = 0;
    char *text = res->status == GEN_OK
                     ? result_text(w, res->text, res->text_len, res->ids, res->n_generated, &len)
                     : dup_n(res->text, res->text_len);
    if (res->status != GEN_OK)
        len = res->text_len;
    pthread_mutex_lock(&w->mu);
    if (text && !keep_hyps(w, res)) {
        free(text);
        text = NULL;
    }
    w->status = text ? res->status : GEN_FAILED;
    snprintf(w->error, sizeof w->error, "%s", text ? res->error : "out of memory");
    w->text = text;
    w->text_len = text ? len : 0;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* The loaded model, its scheduler and the limits of its config entry. */
struct gen_cli {
    const struct model_config *cfg;
    struct gen_model *gm;
    struct gen_sched *gs;
    bool text2text;        /* a seq2seq task */
    struct s2s_task task;  /* its keys, prefix and defaults */
    size_t max_total, max_input;
    bool codes;            /* translation with a language-code tokenizer (NLLB, M2M100, mBART) */
    const char *langs[2];  /* src_lang / tgt_lang by default: --src-lang / --tgt-lang, else a
                            * translation_xx_to_yy task's (NULL: none) */
    char task_langs[2][32];
};

static const char *const lang_keys[2] = {"src_lang", "tgt_lang"};

/* A translation line's src_lang / tgt_lang into langs: its parameters' (strings), else
 * g->langs. Without language codes they are refused, as the server's HF route refuses them;
 * other tasks ignore them, as it does. */
static int line_languages(const struct gen_cli *g, const json_t *params, const char *langs[2],
                          struct err *e)
{
    if (!g->text2text || g->task.task != TASK_TRANSLATION)
        return 0;
    for (int i = 0; i < 2; i++) {
        const json_t *v = json_object_get(params, lang_keys[i]);
        langs[i] = g->langs[i];
        if (!v || json_is_null(v))
            continue;
        if (!g->codes)
            return err_set(e, ERR_INVALID, "`%s` is not supported: this model's tokenizer "
                           "takes no language codes", lang_keys[i]);
        if (!json_is_string(v))
            return err_set(e, ERR_INVALID, "`%s` must be a string", lang_keys[i]);
        langs[i] = json_string_value(v);
    }
    return 0;
}

/* Parameters as the pipeline reads them; text2text: the new text only, and max_length (which
 * counts the decoder start token) when max_new_tokens is not given. */
static int read_params(const struct gen_cli *g, const json_t *params, struct gen_params *p,
                       struct err *e)
{
    const struct gen_config *cfg = g->text2text ? &g->task.defaults : gen_model_config(g->gm);
    int rc = gen_api_parse(&gen_api_pipeline, params, cfg, NULL, p, e);
    if (rc || !g->text2text)
        return rc;
    if (json_is_true(json_object_get(params, "return_full_text")))
        return err_set(e, ERR_INVALID,
                       "`return_full_text` is not a text2text-generation parameter: an "
                       "encoder-decoder's output does not continue its input");
    p->return_full_text = false;
    if (p->max_new_tokens == 0) {
        if (p->max_length <= 1)
            return err_set(e, ERR_INVALID,
                           "`max_length` must be at least 2 for text2text-generation: the "
                           "decoder start token counts in it");
        p->max_new_tokens = p->max_length - 1;
    }
    return 0;
}

/* Runs one request to its end into w (waiter_fini after). */
static int generate(const struct gen_cli *g, const int32_t *ids, size_t n,
                    const struct gen_params *p, struct waiter *w, struct err *e)
{
    struct gen_req_spec spec = {
        .prompt = ids, .n_prompt = n, .params = p, .fd = -1, .on_done = on_done, .owner = w};
    int rc = gen_sched_submit(g->gs, &spec, NULL, e);
    if (rc)
        return rc;
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    if (w->status != GEN_OK)
        return err_set(e, ERR_INTERNAL, "%s", w->error[0] ? w->error : "generation stopped");
    return 0;
}

/* The answer: one record per returned text (the prompt first when return_full_text). */
static json_t *answer(const struct gen_cli *g, const struct gen_params *p, const json_t *inputs,
                      const struct waiter *w)
{
    const char *key = g->text2text ? g->task.text_key : "generated_text";
    size_t pre = p->return_full_text ? json_string_length(inputs) : 0;
    size_t n = w->n_hyps ? w->n_hyps : 1;
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++) {
        const char *t = w->n_hyps ? w->hyps[i] : w->text;
        size_t len = w->n_hyps ? w->hyp_len[i] : w->text_len;
        char *full = malloc(pre + len + 1);
        json_t *rec = NULL;
        if (full) {
            memcpy(full, json_string_value(inputs), pre);
            memcpy(full + pre, t, len);
            rec = json_pack("{s:s%}", key, full, pre + len);
        }
        free(full);
        if (!rec || json_array_append_new(list, rec) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    return list;
}

/* The task's prefix + text, tokenized with the special tokens; a language-code tokenizer's
 * translation inputs for langs, tgt_lang's code forced first (*p's forced_bos_token_id). */
static int tokenize(const struct gen_cli *g, const json_t *inputs, const char *const langs[2],
                    struct gen_params *p, int32_t **ids, size_t *n, struct err *e)
{
    const char *prefix = g->text2text ? g->task.prefix : "";
    size_t plen = strlen(prefix), len = json_string_length(inputs);
    char *full = malloc(plen + len + 1);
    if (!full)
        return err_set(e, ERR_NOMEM, "out of memory");
    memcpy(full, prefix, plen);
    memcpy(full + plen, json_string_value(inputs), len);
    full[plen + len] = '\0';
    int32_t bos = -1;
    int rc = g->codes ? gen_model_tokenize_translation(g->gm, full, plen + len, langs[0],
                                                       langs[1], false, ids, n, &bos, e)
                      : gen_model_tokenize(g->gm, full, plen + len, true, false, ids, n, e);
    free(full);
    if (rc == 0 && g->codes)
        p->forced_bos_token_id = bos;
    return rc;
}

/* One input line: its answer, or the error it answers with (returned). */
static int run_line(const struct gen_cli *g, const char *line, size_t len, json_t **result,
                    struct err *e)
{
    json_error_t je;
    json_t *req = json_loadb(line, len, JSON_ALLOW_NUL, &je);
    const json_t *inputs = json_object_get(req, "inputs");
    if (!req || !json_is_object(req)) {
        json_decref(req);
        return err_set(e, ERR_INPUT, "invalid JSON: %s",
                       req ? "expected an object {\"inputs\", \"parameters\"}" : je.text);
    }
    struct gen_params p = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    const char *langs[2] = {NULL, NULL};
    struct waiter w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER,
                       .decode_alone = g->text2text ? NULL : g->gm};
    int rc = json_is_string(inputs) && json_string_length(inputs) > 0
                 ? read_params(g, json_object_get(req, "parameters"), &p, e)
                 : err_set(e, ERR_INVALID, "`inputs` must be a non-empty string");
    if (rc == 0)
        rc = line_languages(g, json_object_get(req, "parameters"), langs, e);
    if (rc == 0)
        /* the task's prefix, with the tokenizer's special tokens, as the pipelines do */
        rc = tokenize(g, inputs, langs, &p, &ids, &n, e);
    if (rc == 0 && n == 0)
        rc = err_set(e, ERR_INVALID, "The prompt is empty: it has no tokens");
    if (rc == 0)
        rc = gen_api_resolve_length(&gen_api_pipeline, &p, n, g->max_input, g->max_total, e);
    if (rc == 0)
        rc = generate(g, ids, n, &p, &w, e);
    if (rc == 0 && !(*result = answer(g, &p, inputs, &w)))
        rc = err_set(e, ERR_NOMEM, "out of memory");
    waiter_fini(&w);
    free(ids);
    gen_params_fini(&p);
    json_decref(req);
    return rc;
}

/* A "translation_xx_to_yy" task's languages into g->task_langs (xx and yy without '_'). */
static void task_languages(const char *task, struct gen_cli *g)
{
    const char *pre = "translation_", *from = task + strlen(pre), *to = strstr(task, "_to_");
    if (strncmp(task, pre, strlen(pre)) != 0 || !to || to <= from)
        return;
    size_t n0 = (size_t)(to - from), n1 = strlen(to + 4);
    if (n0 >= sizeof g->task_langs[0] || n1 == 0 || n1 >= sizeof g->task_langs[1] ||
        memchr(from, '_', n0) || strchr(to + 4, '_'))
        return;
    memcpy(g->task_langs[0], from, n0);
    memcpy(g->task_langs[1], to + 4, n1 + 1);
    g->langs[0] = g->task_langs[0];
    g->langs[1] = g->task_langs[1];
}

/* The default languages: the flags, else the task name's; flags on a model or task without
 * language codes are an error. */
static int default_languages(struct gen_cli *g, const char *const flags[2], struct err *e)
{
    g->codes = g->text2text && g->task.task == TASK_TRANSLATION &&
               gen_model_has_language_codes(g->gm);
    if (!g->codes && (flags[0] || flags[1]))
        return err_set(e, ERR_INVALID, "--%s is for translation with a language-code tokenizer "
                       "(NLLB, M2M100, mBART); this model or task takes none",
                       flags[0] ? "src-lang" : "tgt-lang");
    if (g->codes && !flags[0] && !flags[1])
        task_languages(g->cfg->task, g);
    for (int i = 0; i < 2; i++)
        if (flags[i])
            g->langs[i] = flags[i];
    return 0;
}

/* Loads the model and starts its scheduler (one sequence at a time). */
static int open_model(const char *dir, const struct model_config *cfg, struct gen_cli *g,
                      struct err *e)
{
    g->cfg = cfg;
    g->text2text = task_is_seq2seq((enum task_id)task_by_name(cfg->task));
    int rc = gen_model_load_config(dir, cfg, &g->gm, e);
    if (rc)
        return rc;
    if (gen_model_is_encoder_decoder(g->gm) != g->text2text)
        return err_set(e, ERR_INVALID,
                       g->text2text ? "%s is a decoder-only model: its task is text-generation, "
                                      "not %s"
                                    : "%s is an encoder-decoder (T5): its task is "
                                      "text2text-generation, summarization or translation, not %s",
                       dir, cfg->task);
    if (g->text2text && (rc = s2s_task_init(g->gm, cfg->task, &g->task, e)) != 0)
        return rc;
    g->max_total = gen_model_max_total_tokens(g->gm, cfg);
    size_t in = cfg->max_input_tokens ? cfg->max_input_tokens : g->max_total - 1;
    g->max_input = in < g->max_total ? in : g->max_total - 1;
    g->gs = gen_sched_new(g->gm, cfg, NULL, "run", e);
    return g->gs ? 0 : e->kind ? e->kind : ERR_INTERNAL;
}

int cli_run_generate(const char *dir, const char *task, enum config_dtype dtype, int threads,
                     const char *const langs[2], FILE *in, FILE *out)
{
    struct config cfg = {0};
    struct err e = {0};
    struct gen_cli g = {0};
    int rc = config_single(dir, task, "run", &registry_tasks, &cfg, &e);
    if (rc == 0) {
        cfg.models[0].dtype = dtype;
        cfg.models[0].threads = threads;
        /* one line at a time: its beams take the slots */
        cfg.models[0].batching.max_batch_size = CLI_MAX_BEAMS;
        rc = open_model(dir, &cfg.models[0], &g, &e);
    }
    if (rc == 0)
        rc = default_languages(&g, langs, &e);
    if (rc)
        fprintf(stderr, "inferd run: %s\n", e.msg);
    bool failed = rc != 0;
    char *buf = NULL;
    size_t cap = 0, len;
    while (rc == 0 && cli_read_line(in, &buf, &cap, &len)) {
        json_t *result = NULL;
        struct err le = {0};
        if (run_line(&g, buf, len, &result, &le) != 0) {
            cli_print_error(out, le.msg, err_kind_name(le.kind));
            failed = true;
        } else {
            cli_print_json(out, result);
        }
        json_decref(result);
    }
    free(buf);
    if (g.gs)
        gen_sched_free(g.gs);
    gen_model_free(g.gm);
    config_free(&cfg);
    return failed ? 1 : 0;
}
