/* api_hf: the Hugging Face Inference API route, POST /models/{name} with
 * {"inputs", "parameters", "options"}: every encoder task of the named model, answered with
 * exactly what transformers.pipeline(task)(inputs, **parameters) returns (see
 * engine/pipelines/runner.h for the input forms each task takes), and text-generation
 * (hf_text_generation: [{"generated_text": ...}]). options.use_cache and
 * options.wait_for_model are accepted and have nothing to change here: results are never
 * cached and a loading model answers 503 at once. */
#include <stdlib.h>
#include <string.h>

#include "api_gen.h"
#include "serve.h"

static json_t *respond_pipeline(struct call *c, json_t *result, int *status, struct err *e)
{
    (void)c;
    (void)status;
    (void)e;
    return result;
}

static bool check_options(struct call *c, const json_t *options)
{
    if (!options || json_is_null(options))
        return true;
    if (!json_is_object(options)) {
        call_error(c, 422, "options", "`options` must be an object");
        return false;
    }
    static const char *const flags[] = {"use_cache", "wait_for_model"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        const json_t *v = json_object_get(options, flags[i]);
        if (v && !json_is_boolean(v) && !json_is_null(v)) {
            call_error(c, 422, "options", "`options.%s` must be true or false", flags[i]);
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
        call_error(c, 422, "inputs", "`inputs` is required");
        return;
    }
    if (parameters && !json_is_object(parameters) && !json_is_null(parameters)) {
        call_error(c, 422, "parameters", "`parameters` must be an object");
        return;
    }
    if (!check_options(c, json_object_get(body, "options")))
        return;
    struct model *m = server_model_for(call_server(c), c, call_arg(c), ~0u, NULL);
    if (!m)
        return;
    if (model_is_generation(m)) {
        hf_text_generation(c, m);
        return;
    }
    if (has_empty_text(inputs)) {
        model_unref(m);
        call_error(c, 422, "inputs", "`inputs` cannot be empty");
        return;
    }
    call_submit(c, m, inputs, parameters, respond_pipeline);
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

/* The pipeline's answer: [{"generated_text": prompt + new text}] (return_full_text, the
 * default), or for a chat the messages with the assistant's reply appended. */
static void pipeline_done(struct gen_call *g, struct call *c)
{
    const struct gen_out *o = &g->out[0];
    const json_t *chat = g->user ? *(json_t **)g->user : NULL;
    json_t *text;
    if (chat && g->params.return_full_text) {
        text = json_deep_copy(chat);
        json_array_append_new(
            text, json_pack("{s:s, s:s%}", "role", "assistant", "content", o->text, o->text_len));
    } else if (g->params.return_full_text) {
        size_t n = g->prompt_text_len + o->text_len;
        char *s = malloc(n + 1);
        if (s) {
            memcpy(s, g->prompt_text, g->prompt_text_len);
            memcpy(s + g->prompt_text_len, o->text, o->text_len);
        }
        text = s ? json_stringn(s, n) : NULL;
        free(s);
    } else {
        text = json_stringn(o->text, o->text_len);
    }
    call_reply(c, 200, json_pack("[{s:o}]", "generated_text", text));
}

static void free_chat(struct gen_call *g)
{
    if (g->user)
        json_decref(*(json_t **)g->user);
}

void hf_text_generation(struct call *c, struct model *m)
{
    const json_t *body = call_body(c);
    const json_t *inputs = json_object_get(body, "inputs");
    bool chat = is_chat(inputs);
    if (!chat && !json_is_string(inputs)) {
        model_unref(m);
        call_error(c, 422, "inputs",
                   "`inputs` must be a string (or a chat: a list of {\"role\", \"content\"} "
                   "messages) for text-generation");
        return;
    }
    struct gen_call *g = gen_call_new(c, m, GEN_DIALECT_PIPELINE);
    if (!g)
        return;
    struct err e = {0};
    if (gen_params_parse(GEN_DIALECT_PIPELINE, json_object_get(body, "parameters"),
                         &g->gm->gen_config, NULL, &g->params, &e) != 0) {
        gen_call_error(g, 422, "parameters", e.msg);
        return;
    }
    if (model_config(m) && generation_task_bit(model_config(m)->task) == TASK_BIT_TEXT2TEXT)
        g->params.return_full_text = false; /* text2text answers the new text only */
    if (chat) {
        if (!g->gm->chat.main) {
            gen_call_error(g, 422, "inputs", "this model's tokenizer has no chat template");
            return;
        }
        json_t *extra = json_pack("{s:b}", "add_generation_prompt", 1);
        char *prompt = NULL;
        size_t len = 0;
        int rc = chat_template_set_render(&g->gm->chat, inputs, extra, &prompt, &len, &e);
        json_decref(extra);
        if (rc) {
            gen_call_error(g, rc == ERR_NOMEM ? 500 : 422, "inputs", e.msg);
            return;
        }
        rc = gen_call_tokenize(g, prompt, len, false);
        free(prompt);
        json_t **keep = malloc(sizeof *keep);
        if (rc || !keep) {
            free(keep);
            if (!rc)
                gen_call_error(g, 500, NULL, "out of memory");
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
    if (gen_call_check(g) == 0)
        gen_call_run(g, 1, pipeline_done, NULL, NULL);
}
