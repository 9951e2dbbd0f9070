/* api_hf: the Hugging Face Inference API route, POST /models/{name} with
 * {"inputs", "parameters", "options"}: every encoder task of the named model, answered with
 * exactly what transformers.pipeline(task)(inputs, **parameters) returns (see
 * engine/pipelines/runner.h for the input forms each task takes), text-generation
 * (hf_text_generation: [{"generated_text": ...}]) and text2text-generation, summarization and
 * translation on an encoder-decoder (T5), as transformers 4.x's Text2TextGenerationPipeline,
 * SummarizationPipeline and TranslationPipeline answer them (params_s2s.h). One exception, for
 * huggingface_hub's InferenceClient: zero-shot with text inputs and parameters.candidate_labels
 * (the Inference API's form) answers as the API does, [{"label", "score"}] best first
 * (respond_zero_shot_api); {"sequence", "candidate_labels"} inputs keep the pipeline's
 * {"sequence", "labels", "scores"}. options.use_cache
 * and options.wait_for_model are accepted and have nothing to change here: results are never cached
 * and a loading model answers 503 at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_gen.h"
#include "handler.h"
#include "params_s2s.h"
#include "registry.h"
#include "routes.h"

static void hf_text2text(struct call *c, struct model *m);

static json_t *respond_pipeline(struct call *c, json_t *result, struct err *e)
{
    (void)c;
    (void)e;
    return result;
}

/* One pipeline answer {"sequence", "labels", "scores"} as the Inference API's zero-shot output,
 * [{"label", "score"}] best first (huggingface_hub's InferenceClient reads only that); NULL when
 * it is not that shape. */
static json_t *zero_shot_pairs(const json_t *one)
{
    const json_t *labels = json_object_get(one, "labels"), *scores = json_object_get(one, "scores");
    if (!json_is_array(labels) || json_array_size(labels) != json_array_size(scores))
        return NULL;
    json_t *out = json_array();
    for (size_t i = 0; out && i < json_array_size(labels); i++)
        if (json_array_append_new(out, json_pack("{s:O, s:O}", "label", json_array_get(labels, i),
                                                 "score", json_array_get(scores, i))) != 0) {
            json_decref(out);
            out = NULL;
        }
    return out;
}

/* Zero-shot in the Inference API's form (`inputs` a string or a list of them, the labels in
 * parameters.candidate_labels): each answer as zero_shot_pairs, a list of them for a list. */
static json_t *respond_zero_shot_api(struct call *c, json_t *result, struct err *e)
{
    (void)c;
    json_t *out = json_is_array(result) ? json_array() : zero_shot_pairs(result);
    for (size_t i = 0; out && json_is_array(result) && i < json_array_size(result); i++)
        if (json_array_append_new(out, zero_shot_pairs(json_array_get(result, i))) != 0) {
            json_decref(out);
            out = NULL;
        }
    if (!out) /* result stays the caller's (respond_fn) */
        err_set(e, ERR_NOMEM, "out of memory");
    return out;
}

/* The Inference API's zero-shot form: text inputs (the pipeline's form has
 * {"sequence", "candidate_labels"} objects and keeps transformers' answer). */
static bool zero_shot_api_form(const struct model *m, const json_t *inputs)
{
    if (model_task(m) != TASK_ZERO_SHOT_CLASSIFICATION)
        return false;
    if (json_is_string(inputs))
        return true;
    for (size_t i = 0; json_is_array(inputs) && i < json_array_size(inputs); i++)
        if (!json_is_string(json_array_get(inputs, i)))
            return false;
    return json_is_array(inputs) && json_array_size(inputs) > 0;
}

static bool check_options(struct call *c, const json_t *options)
{
    if (!options || json_is_null(options))
        return true;
    if (!json_is_object(options)) {
        call_error(c, ERR_INVALID, "options", "`options` must be an object");
        return false;
    }
    static const char *const flags[] = {"use_cache", "wait_for_model"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        const json_t *v = json_object_get(options, flags[i]);
        if (v && !json_is_boolean(v) && !json_is_null(v)) {
            call_error(c, ERR_INVALID, "options", "`options.%s` must be true or false", flags[i]);
            return false;
        }
    }
    return true;
}

/* An empty text (alone or in a list): the transformers pipelines run it (a classifier labels
 * "[CLS] [SEP]"), but an empty request is a client's mistake this API reports. */
static bool has_empty_text(const json_t *inputs)
{
    if (json_is_string(inputs))
        return json_string_length(inputs) == 0;
    for (size_t i = 0; json_is_array(inputs) && i < json_array_size(inputs); i++) {
        const json_t *v = json_array_get(inputs, i);
        if (json_is_string(v) && json_string_length(v) == 0)
            return true;
    }
    return false;
}

void route_hf_models(struct call *c)
{
    const json_t *body = call_body(c);
    const json_t *inputs = json_object_get(body, "inputs");
    const json_t *parameters = json_object_get(body, "parameters");
    if (!inputs || json_is_null(inputs)) {
        call_error(c, ERR_INVALID, "inputs", "`inputs` is required");
        return;
    }
    if (parameters && !json_is_object(parameters) && !json_is_null(parameters)) {
        call_error(c, ERR_INVALID, "parameters", "`parameters` must be an object");
        return;
    }
    if (!check_options(c, json_object_get(body, "options")))
        return;
    struct model *m = call_use_model(c, call_arg(c), ~0u, NULL);
    if (!m)
        return;
    if (model_is_generation(m)) {
        hf_text_generation(c, m);
        return;
    }
    if (has_empty_text(inputs)) {
        call_error(c, ERR_INVALID, "inputs", "`inputs` cannot be empty");
        return;
    }
    call_submit(c, m, inputs, parameters,
                zero_shot_api_form(m, inputs) ? respond_zero_shot_api : respond_pipeline);
}

/* ---- text-generation ---- */

/* A chat: a list of {"role", "content"} messages (the pipeline's chat input). */
static bool is_chat(const json_t *inputs)
{
    if (!json_is_array(inputs) || json_array_size(inputs) == 0)
        return false;
    for (size_t i = 0; i < json_array_size(inputs); i++) {
        const json_t *m = json_array_get(inputs, i);
        if (!json_is_object(m) || !json_is_string(json_object_get(m, "role")))
            return false;
    }
    return true;
}

/* The new text as transformers 5's TextGenerationPipeline makes it: tokenizer.decode of the
 * new ids alone, special tokens skipped (not the streamed text, which keeps the leading space
 * a Metaspace tokenizer drops at the start of a text: "time" + "▁anche" is "timeanche" there).
 * Its clean_up_tokenization_spaces=True is skipped for BPE tokenizers, every decoder's here.
 * NULL when out of memory (or the ids do not decode). */
static char *pipeline_new_text(const struct gen_call *g, const int32_t *ids, size_t n,
                               size_t *len)
{
    char *text = NULL;
    struct err e = {0};
    if (gen_model_decode(g->gm, ids, n, &text, len, &e) != 0)
        return NULL;
    return text;
}

/* The recorded tokens' ids of a greedy or sampled answer (malloc'ed; NULL when out of memory). */
static int32_t *out_ids(const struct gen_out *o)
{
    int32_t *ids = malloc((o->n_tokens ? o->n_tokens : 1) * sizeof *ids);
    for (size_t k = 0; ids && k < o->n_tokens; k++)
        ids[k] = o->tokens[k].id;
    return ids;
}

/* The pipeline's answer: [{"generated_text": prompt + new text}] (return_full_text, the
 * default), or for a chat the messages with the assistant's reply appended. */
static json_t *pipeline_record(const struct gen_call *g, const char *t, size_t len)
{
    const json_t *chat = g->user ? *(json_t **)g->user : NULL;
    json_t *text;
    if (chat && g->params.return_full_text) {
        text = json_deep_copy(chat);
        json_array_append_new(
            text, json_pack("{s:s, s:s%}", "role", "assistant", "content", t, len));
    } else {
        bool full = g->params.return_full_text;
        text = gen_text_json(full ? g->prompt_text : NULL, full ? g->prompt_text_len : 0, t, len);
    }
    return json_pack("{s:o}", "generated_text", text);
}

/* One record per returned sequence (num_return_sequences of a beam search). */
static void pipeline_done(struct gen_call *g, struct call *c)
{
    const struct gen_out *o = &g->out[0];
    json_t *list = json_array();
    int32_t *ids = o->n_hyps ? NULL : out_ids(o);
    size_t n_seq = o->n_hyps ? o->n_hyps : 1;
    for (size_t k = 0; k < n_seq && list; k++) {
        size_t len = 0;
        char *t = o->n_hyps ? pipeline_new_text(g, o->hyps[k].ids, o->hyps[k].n_ids, &len)
                  : ids     ? pipeline_new_text(g, ids, o->n_tokens, &len)
                            : NULL;
        if (!t) {
            json_decref(list);
            list = NULL;
            break;
        }
        json_array_append_new(list, pipeline_record(g, t, len));
        free(t);
    }
    free(ids);
    if (!list) {
        call_error(c, ERR_NOMEM, NULL, "out of memory");
        return;
    }
    call_reply(c, 200, list);
}

static void free_chat(struct gen_call *g)
{
    if (g->user)
        json_decref(*(json_t **)g->user);
}

void hf_text_generation(struct call *c, struct model *m)
{
    const struct gen_model *gm = model_gen_model(m);
    if (gm && gen_model_is_encoder_decoder(gm)) {
        hf_text2text(c, m);
        return;
    }
    const json_t *body = call_body(c);
    const json_t *inputs = json_object_get(body, "inputs");
    bool chat = is_chat(inputs);
    if (!chat && !json_is_string(inputs)) {
        call_error(c, ERR_INVALID, "inputs",
                   "`inputs` must be a string (or a chat: a list of {\"role\", \"content\"} "
                   "messages) for text-generation");
        return;
    }
    struct gen_call *g = gen_call_new(c, m, &gen_api_pipeline);
    if (!g)
        return;
    struct err e = {0};
    if (gen_api_parse(&gen_api_pipeline, json_object_get(body, "parameters"),
                      gen_model_config(g->gm), NULL, &g->params, &e) != 0) {
        gen_call_error(g, ERR_GEN_INVALID, "parameters", e.msg);
        return;
    }
    if (model_task(m) == TASK_TEXT2TEXT_GENERATION)
        g->params.return_full_text = false; /* text2text answers the new text only */
    if (chat) {
        if (!gen_model_has_chat_template(g->gm)) {
            gen_call_error(g, ERR_GEN_INVALID, "inputs", "this model's tokenizer has no chat template");
            return;
        }
        json_t *extra = json_pack("{s:b}", "add_generation_prompt", 1);
        char *prompt = NULL;
        size_t len = 0;
        int rc = gen_model_render_chat(g->gm, inputs, extra, &prompt, &len, &e);
        json_decref(extra);
        if (rc) {
            gen_call_template_error(g, rc, "inputs", e.msg);
            return;
        }
        rc = gen_call_tokenize(g, prompt, len, false);
        free(prompt);
        json_t **keep = malloc(sizeof *keep);
        if (rc || !keep) {
            free(keep);
            if (!rc)
                gen_call_error(g, ERR_NOMEM, NULL, "out of memory");
            return;
        }
        *keep = json_deep_copy(inputs);
        g->user = keep;
        g->user_fini = free_chat;
    } else {
        const char *text = json_string_value(inputs);
        size_t len = json_string_length(inputs);
        if (gen_call_tokenize(g, text, len, true) != 0 ||
            gen_call_set_prompt_text(g, text, len) != 0)
            return;
    }
    g->record_tokens = true; /* pipeline_done decodes the new ids */
    if (gen_call_check(g) == 0)
        gen_call_run(g, 1, pipeline_done, NULL, NULL);
}

/* ---- text2text-generation, summarization, translation (an encoder-decoder: T5) ----
 *
 * transformers' Text2TextGenerationPipeline (and its SummarizationPipeline and
 * TranslationPipeline subclasses: params_s2s.h gives each task's output key, prefix and
 * generation defaults): `inputs` a string, the task's prefix before it (tokenized with the
 * tokenizer's special tokens: T5's "</s>" at the end), generate() over it, and
 * [{"generated_text": tokenizer.decode(output_ids, skip_special_tokens=True,
 * clean_up_tokenization_spaces=...)}, ...] (one record per num_return_sequences; "summary_text",
 * "translation_text"): the decoder's text only. Its own parameters:
 * return_tensors (true: [{"generated_token_ids": [decoder start, generated ids...]}] instead
 * of the text), return_text (accepted; the pipeline ignores it too),
 * clean_up_tokenization_spaces (default false), truncation (true, "longest_first" or
 * "only_first": the input cut to the tokenizer's model_max_length; default none),
 * stop_sequence (its first token becomes the only eos id); the rest are generate()'s
 * (params_pipeline.c, the pipeline dialect). Lengths as generate() counts them for an
 * encoder-decoder: max_new_tokens, else max_length - 1 (the decoder start token is part of
 * max_length; the task's defaults, params_s2s.h). return_tensors with beams: each sequence
 * padded to the longest as generate() pads them. src_lang / tgt_lang (translation): the
 * language-code tokenizers' inputs and forced BOS (t2t_languages). return_full_text: true is
 * refused (the pipeline has no such parameter: generate() rejects it as an unused model
 * kwarg); a list of inputs too (one input per request here). */

struct t2t_opts {
    bool return_tensors;
    bool clean_up;
    bool codes;             /* the tokenizer takes language codes */
    const char *src, *tgt;  /* src_lang / tgt_lang (NULL: none) */
    char task_langs[2][32]; /* a translation_xx_to_yy task's languages */
    struct s2s_task task; /* the task's keys, prefix and defaults */
};

/* transformers' PreTrainedTokenizerBase.clean_up_tokenization: these replacements, in order,
 * each over the whole text. */
static char *clean_up_spaces(const char *text, size_t n, size_t *out_len)
{
    static const char *const from[] = {" .",   " ?",  " !",  " ,",   " ' ",
                                       " n't", " 'm", " 's", " 've", " 're"};
    static const char *const to[] = {".", "?", "!", ",", "'", "n't", "'m", "'s", "'ve", "'re"};
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    memcpy(s, text, n);
    s[n] = '\0';
    for (size_t k = 0; k < sizeof from / sizeof from[0]; k++) {
        size_t fl = strlen(from[k]), tl = strlen(to[k]), w = 0;
        for (size_t r = 0; r < n;) { /* every replacement shortens: in place */
            if (r + fl <= n && memcmp(s + r, from[k], fl) == 0) {
                memcpy(s + w, to[k], tl);
                w += tl;
                r += fl;
            } else {
                s[w++] = s[r++];
            }
        }
        n = w;
        s[n] = '\0';
    }
    *out_len = n;
    return s;
}

/* generate()'s output ids of one sequence: the start token first, then (beam search) padded
 * to the longest returned sequence, as generate() returns them. */
static json_t *t2t_ids(const struct gen_call *g, const struct gen_out *o, size_t k)
{
    json_t *ids = json_array();
    json_array_append_new(ids, json_integer(gen_model_decoder_start_token_id(g->gm)));
    if (!o->n_hyps) {
        for (size_t i = 0; i < o->n_tokens; i++)
            json_array_append_new(ids, json_integer(o->tokens[i].id));
        return ids;
    }
    size_t longest = 0;
    for (size_t i = 0; i < o->n_hyps; i++)
        longest = o->hyps[i].n_ids > longest ? o->hyps[i].n_ids : longest;
    /* generate()'s fill: `pad_token_id or eos_token_id[0]` (a pad id 0 is falsy) */
    int64_t pad = gen_model_config(g->gm)->pad_token_id;
    if (pad <= 0)
        pad = g->params.n_eos_token_ids ? g->params.eos_token_ids[0] : -1;
    for (size_t i = 0; i < longest; i++)
        json_array_append_new(ids, json_integer(i < o->hyps[k].n_ids ? o->hyps[k].ids[i] : pad));
    return ids;
}

static json_t *t2t_record(const struct gen_call *g, const struct gen_out *o, size_t k)
{
    const struct t2t_opts *opt = g->user;
    const char *text = o->n_hyps ? o->hyps[k].text : o->text;
    size_t len = o->n_hyps ? o->hyps[k].text_len : o->text_len;
    if (opt->return_tensors)
        return json_pack("{s:o}", opt->task.ids_key, t2t_ids(g, o, k));
    if (!opt->clean_up)
        return json_pack("{s:s%}", opt->task.text_key, text, len);
    size_t n = 0;
    char *t = clean_up_spaces(text, len, &n);
    json_t *rec = t ? json_pack("{s:s%}", opt->task.text_key, t, n) : NULL;
    free(t);
    return rec;
}

/* [{KEY: ...}] with one record per returned sequence (num_return_sequences). */
static void text2text_done(struct gen_call *g, struct call *c)
{
    const struct gen_out *o = &g->out[0];
    json_t *list = json_array();
    size_t n = o->n_hyps ? o->n_hyps : 1;
    for (size_t k = 0; list && k < n; k++) {
        json_t *rec = t2t_record(g, o, k);
        if (!rec || json_array_append_new(list, rec) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    if (list)
        call_reply(c, 200, list);
    else
        call_error(c, ERR_NOMEM, NULL, "out of memory");
}

/* A boolean parameter (absent or null: unchanged). false when answered (422). */
static bool t2t_bool(struct gen_call *g, const json_t *params, const char *key, bool *out)
{
    const json_t *v = json_object_get(params, key);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_boolean(v)) {
        char msg[128];
        snprintf(msg, sizeof msg, "`%s` must be true or false", key);
        gen_call_error(g, ERR_GEN_INVALID, "parameters", msg);
        return false;
    }
    *out = json_is_true(v);
    return true;
}

/* `truncation`: true or a truncation strategy (TruncationStrategy values); *out whether the
 * input is cut to model_max_length. false when answered (422). */
static bool t2t_truncation(struct gen_call *g, const json_t *params, bool *out)
{
    const json_t *v = json_object_get(params, "truncation");
    *out = false;
    if (!v || json_is_null(v) || json_is_boolean(v)) {
        *out = json_is_true(v);
        return true;
    }
    const char *s = json_string_value(v);
    if (s && strcmp(s, "do_not_truncate") == 0)
        return true;
    if (s && (strcmp(s, "longest_first") == 0 || strcmp(s, "only_first") == 0)) {
        *out = true;
        return true;
    }
    gen_call_error(g, ERR_GEN_INVALID, "parameters",
                   s && strcmp(s, "only_second") == 0
                       ? "`truncation` \"only_second\" needs a pair of sequences: "
                         "text2text-generation has one input"
                       : "`truncation` must be true, false, \"longest_first\", \"only_first\" or "
                         "\"do_not_truncate\"");
    return false;
}

/* `stop_sequence`: its first token (without special tokens) is the only eos id, as the
 * pipeline passes eos_token_id to generate(). false when answered. */
static bool t2t_stop_sequence(struct gen_call *g, const json_t *params)
{
    const json_t *v = json_object_get(params, "stop_sequence");
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v)) {
        gen_call_error(g, ERR_GEN_INVALID, "parameters", "`stop_sequence` must be a string");
        return false;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    struct err e = {0};
    int rc = gen_model_tokenize(g->gm, json_string_value(v), json_string_length(v), false, false,
                                &ids, &n, &e);
    bool ok = rc == 0 && n > 0;
    if (ok) {
        g->params.eos_token_ids[0] = ids[0];
        g->params.n_eos_token_ids = 1;
    } else {
        gen_call_error(g, ERR_GEN_INVALID, "parameters", rc ? e.msg : "`stop_sequence` has no tokens");
    }
    free(ids);
    return ok;
}

/* Translation inputs from language codes (frees full); tgt_lang's id becomes
 * forced_bos_token_id, as the pipeline passes it to generate(). */
static int t2t_tokenize_languages(struct gen_call *g, const struct t2t_opts *opt, char *full,
                                  size_t len, bool truncate)
{
    int32_t *ids = NULL, bos = -1;
    size_t n = 0;
    struct err e = {0};
    int rc = gen_model_tokenize_translation(g->gm, full, len, opt->src, opt->tgt, truncate, &ids,
                                            &n, &bos, &e);
    free(full);
    if (rc) {
        gen_call_error(g, rc == ERR_NOMEM ? ERR_NOMEM : ERR_GEN_INVALID, "parameters", e.msg);
        return -1;
    }
    g->params.forced_bos_token_id = bos;
    rc = gen_call_set_ids(g, ids, n);
    free(ids);
    return rc;
}

/* The task's prefix + the input with the tokenizer's special tokens, cut to model_max_length
 * when truncate. */
static int t2t_tokenize(struct gen_call *g, const struct t2t_opts *opt, const char *text,
                        size_t len, bool truncate)
{
    const char *prefix = opt->task.prefix;
    size_t plen = strlen(prefix);
    char *full = malloc(plen + len + 1);
    if (!full) {
        gen_call_error(g, ERR_NOMEM, NULL, "out of memory");
        return -1;
    }
    memcpy(full, prefix, plen);
    memcpy(full + plen, text, len);
    full[plen + len] = '\0';
    if (opt->codes) /* the languages' translation inputs, tgt_lang's code forced first */
        return t2t_tokenize_languages(g, opt, full, plen + len, truncate);
    if (!truncate) {
        int rc = gen_call_tokenize(g, full, plen + len, true);
        free(full);
        return rc;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    struct err e = {0};
    int rc = gen_model_tokenize(g->gm, full, plen + len, true, true, &ids, &n, &e);
    free(full);
    if (rc) {
        gen_call_error(g, rc == ERR_NOMEM ? ERR_NOMEM : ERR_GEN_INVALID, "inputs", e.msg);
        return -1;
    }
    rc = gen_call_set_ids(g, ids, n);
    free(ids);
    return rc;
}

/* A "translation_xx_to_yy" task's languages into opt (xx and yy without '_'). */
static void t2t_task_languages(const char *task, struct t2t_opts *opt)
{
    const char *pre = "translation_", *from = task + strlen(pre);
    const char *to = strstr(task, "_to_");
    if (strncmp(task, pre, strlen(pre)) != 0 || !to || to <= from)
        return;
    size_t n0 = (size_t)(to - from), n1 = strlen(to + 4);
    if (n0 >= sizeof opt->task_langs[0] || n1 == 0 || n1 >= sizeof opt->task_langs[1] ||
        memchr(from, '_', n0) || strchr(to + 4, '_'))
        return;
    memcpy(opt->task_langs[0], from, n0);
    opt->task_langs[0][n0] = '\0';
    memcpy(opt->task_langs[1], to + 4, n1 + 1);
    opt->src = opt->task_langs[0];
    opt->tgt = opt->task_langs[1];
}

/* src_lang / tgt_lang: TranslationPipeline hands them to a tokenizer that builds translation
 * inputs from language codes (NLLB, M2M100, mBART: gen_model_tokenize_translation); when
 * neither is given it takes a "translation_xx_to_yy" task name's. A tokenizer without
 * language codes ignores them in transformers; here they are refused rather than ignored.
 * opt->src / opt->tgt borrow the request's strings or opt->task_langs. false when answered. */
static bool t2t_languages(struct gen_call *g, const json_t *params, const char *task,
                          struct t2t_opts *opt)
{
    static const char *const keys[] = {"src_lang", "tgt_lang"};
    const char **out[2] = {&opt->src, &opt->tgt};
    bool codes = gen_model_has_language_codes(g->gm), given = false;
    for (size_t i = 0; i < 2; i++) {
        const json_t *v = json_object_get(params, keys[i]);
        if (!v || json_is_null(v))
            continue;
        char msg[200];
        snprintf(msg, sizeof msg,
                 codes ? "`%s` must be a string"
                       : "`%s` is not supported: this model's tokenizer takes no language codes",
                 keys[i]);
        if (!codes || !json_is_string(v)) {
            gen_call_error(g, ERR_GEN_INVALID, "parameters", msg);
            return false;
        }
        *out[i] = json_string_value(v);
        given = true;
    }
    opt->codes = codes;
    if (codes && !given)
        t2t_task_languages(task, opt);
    return true;
}

static void hf_text2text(struct call *c, struct model *m)
{
    const json_t *body = call_body(c);
    const json_t *inputs = json_object_get(body, "inputs");
    const json_t *params = json_object_get(body, "parameters");
    const char *task = model_config(m)->task;
    if (!json_is_string(inputs) || json_string_length(inputs) == 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "`inputs` must be a string for %s", task);
        call_error(c, ERR_INVALID, "inputs",
                   json_is_string(inputs) ? "`inputs` cannot be empty" : msg);
        return;
    }
    struct gen_call *g = gen_call_new(c, m, &gen_api_pipeline);
    if (!g)
        return;
    struct t2t_opts *opt = calloc(1, sizeof *opt);
    if (!opt) {
        gen_call_error(g, ERR_NOMEM, NULL, "out of memory");
        return;
    }
    g->user = opt;
    struct err e = {0};
    if (s2s_task_init(g->gm, task, &opt->task, &e) != 0) {
        gen_call_error(g, ERR_GEN_INVALID, NULL, e.msg);
        return;
    }
    if (gen_api_parse(&gen_api_pipeline, params, &opt->task.defaults, NULL, &g->params, &e) !=
        0) {
        gen_call_error(g, ERR_GEN_INVALID, "parameters", e.msg);
        return;
    }
    if (json_is_true(json_object_get(params, "return_full_text"))) {
        gen_call_error(g, ERR_GEN_INVALID, "parameters",
                       "`return_full_text` is not a text2text-generation parameter: an "
                       "encoder-decoder's output does not continue its input");
        return;
    }
    g->params.return_full_text = false;
    bool return_text = true, truncate = false;
    if (!t2t_bool(g, params, "return_tensors", &opt->return_tensors) ||
        !t2t_bool(g, params, "return_text", &return_text) ||
        !t2t_bool(g, params, "clean_up_tokenization_spaces", &opt->clean_up) ||
        !t2t_truncation(g, params, &truncate) || !t2t_stop_sequence(g, params) ||
        (opt->task.task == TASK_TRANSLATION && !t2t_languages(g, params, task, opt)))
        return;
    if (g->params.max_new_tokens == 0) { /* generate(): max_length counts the start token */
        if (g->params.max_length <= 1) {
            gen_call_error(g, ERR_GEN_INVALID, "parameters",
                           "`max_length` must be at least 2 for text2text-generation: the "
                           "decoder start token counts in it");
            return;
        }
        g->params.max_new_tokens = g->params.max_length - 1;
    }
    if (t2t_tokenize(g, opt, json_string_value(inputs), json_string_length(inputs), truncate) !=
            0 ||
        gen_call_check(g) != 0)
        return;
    g->record_tokens = opt->return_tensors;
    gen_call_run(g, 1, text2text_done, NULL, NULL);
}
