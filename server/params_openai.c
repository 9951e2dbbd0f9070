/* params_openai: OpenAI's generation parameters, the whole body of /v1/chat/completions and
 * /v1/completions, as vLLM serves them (vllm/entrypoints/openai/protocol.py and
 * SamplingParams; ranges from OpenAI's API reference): max_completion_tokens (or max_tokens)
 * >= 1, default unlimited (chat) or 16 (completions); temperature in [0, 2], 0 = greedy; top_p
 * in (0, 1]; frequency_penalty and presence_penalty in [-2, 2]; n >= 1; stop a string or a
 * list; seed any integer; logprobs (chat: a boolean with top_logprobs 0..20; completions: an
 * integer 0..5); stream, stream_options.include_usage (only with stream); the vLLM extras top_k
 * (-1 or 0 = off), repetition_penalty (> 0), ignore_eos, stop_token_ids,
 * include_stop_str_in_output; completions' echo = return_full_text. Unset temperature, top_p,
 * top_k and repetition_penalty come from generation_config.json when it has them (vLLM's
 * default). The first occurrence of a stop string anywhere in the text ends it, and the text is
 * cut before it (GEN_STOP_CUT; include_stop_str_in_output: after it). Log-probabilities are
 * those of the raw logits (vLLM's default logprobs mode). Length errors are vLLM's ("This
 * model's maximum context length is ..."). Finish reasons: "length", "stop". The model,
 * messages or prompt and the other fields that are not generation parameters are the routes'
 * business (api_openai_gen.c). response_format json_object / json_schema constrains the output
 * (constraint.h). See gen_api.h. */
#include <string.h>

#include "constraint.h"
#include "engine.h"
#include "gen_api.h"

/* OpenAI's /v1/completions default max_tokens. */
#define COMPLETIONS_DEFAULT_MAX_TOKENS 16
/* OpenAI's bounds: top_logprobs (chat) and logprobs (completions). */
#define CHAT_MAX_TOP_LOGPROBS 20
#define COMPLETIONS_MAX_LOGPROBS 5

/* ---- keys OpenAI (or vLLM) defines and inferd does not implement ---- */

static bool is_none(const json_t *v, const json_t *obj)
{
    (void)obj;
    return json_is_string(v) && strcmp(json_string_value(v), "none") == 0;
}

/* modalities ["text"] */
static bool is_text_only(const json_t *v, const json_t *obj)
{
    (void)obj;
    if (!json_is_array(v) || json_array_size(v) == 0)
        return false;
    for (size_t i = 0; i < json_array_size(v); i++) {
        const char *m = json_string_value(json_array_get(v, i));
        if (!m || strcmp(m, "text") != 0)
            return false;
    }
    return true;
}

/* completions' best_of equal to n (1 when absent): the n choices are all returned */
static bool is_n(const json_t *v, const json_t *obj)
{
    const json_t *n = json_object_get(obj, "n");
    json_int_t want = json_is_integer(n) ? json_integer_value(n) : 1;
    return json_is_integer(v) && json_integer_value(v) == want;
}

static const struct params_refused chat_refused[] = {
    {"functions", NULL, "function calling"},
    {"function_call", is_none, "function calling"},
    {"continue_final_message", params_is_false, "continuing the final message"},
    {"echo", params_is_false, "echo in chat (use /v1/completions)"},
    {"chat_template", NULL, "a chat template per request"},
    {"add_special_tokens", params_is_false, "adding special tokens to a chat prompt"},
};

static const struct params_refused completions_refused[] = {
    {"suffix", params_is_empty, "insertion (suffix)"},
    {"best_of", is_n, "best_of other than n"},
};

/* Both routes' (checked after the route's own). */
static const struct params_refused openai_refused[] = {
    {"logit_bias", params_is_empty, "logit bias"},
    {"modalities", is_text_only, "output modalities other than text"},
    {"audio", NULL, "audio output"},
    {"reasoning_effort", NULL, "reasoning effort (no reasoning model is served)"},
    {"web_search_options", NULL, "web search"},
    {"guided_json", NULL, "guided decoding"},
    {"guided_regex", NULL, "guided decoding"},
    {"guided_choice", NULL, "guided decoding"},
    {"guided_grammar", NULL, "guided decoding"},
    {"structured_outputs", NULL, "guided decoding"},
    {"min_p", params_is_zero, "min-p sampling"},
    {"min_tokens", params_is_zero, "a minimum completion length"},
    {"use_beam_search", params_is_false, "beam search"},
    {"bad_words", params_is_empty, "banned words"},
    {"allowed_token_ids", NULL, "restricting the vocabulary"},
    {"prompt_logprobs", NULL, "prompt log-probabilities"},
    {"truncate_prompt_tokens", NULL, "prompt truncation"},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static int chat_unsupported(const json_t *obj, const char **key, struct err *e)
{
    int rc = params_refuse(chat_refused, N_OF(chat_refused), obj, key, e);
    return rc ? rc : params_refuse(openai_refused, N_OF(openai_refused), obj, key, e);
}

static int completions_unsupported(const json_t *obj, const char **key, struct err *e)
{
    int rc = params_refuse(completions_refused, N_OF(completions_refused), obj, key, e);
    return rc ? rc : params_refuse(openai_refused, N_OF(openai_refused), obj, key, e);
}

/* ---- defaults ---- */

static double cfg_num(bool has, double v, double fallback)
{
    return has ? v : fallback;
}

/* vLLM: generation_config.json overrides the server defaults for these four */
static void chat_init(struct gen_params *p, const struct gen_config *cfg)
{
    p->stop_mode = GEN_STOP_CUT;
    p->logprobs_mode = GEN_LOGPROBS_RAW;
    if (cfg) {
        p->temperature = cfg_num(cfg->has_temperature, cfg->temperature, 1.0);
        p->top_p = cfg_num(cfg->has_top_p, cfg->top_p, 1.0);
        p->top_k = cfg->has_top_k ? (int32_t)cfg->top_k : 0;
        p->repetition_penalty = cfg_num(cfg->has_repetition_penalty, cfg->repetition_penalty, 1.0);
    }
    p->do_sample = p->temperature > 0;
}

static void completions_init(struct gen_params *p, const struct gen_config *cfg)
{
    chat_init(p, cfg);
    p->max_new_tokens = COMPLETIONS_DEFAULT_MAX_TOKENS;
}

/* ---- the request's values ---- */

/* temperature, top_p, top_k, the penalties and seed, over the defaults init took from
 * generation_config.json. Ranges: OpenAI's API reference; the extras: vLLM's SamplingParams
 * checks. */
static int openai_sampling(const json_t *o, struct gen_params *p, struct err *e)
{
    double v;
    bool found;
    int rc = params_num(o, "temperature", &v, &found, e);
    if (rc)
        return rc;
    if (found) {
        if (v < 0 || v > 2)
            return err_set(e, ERR_INVALID, "`temperature` must be >= 0.0 and <= 2.0");
        p->temperature = v;
    }
    p->do_sample = p->temperature > 0; /* 0 = greedy */
    rc = params_num(o, "top_p", &v, &found, e);
    if (rc)
        return rc;
    if (found) {
        if (v <= 0 || v > 1)
            return err_set(e, ERR_INVALID, "`top_p` must be > 0.0 and <= 1.0");
        p->top_p = v;
    }
    int64_t k;
    rc = params_int(o, "top_k", &k, &found, e);
    if (rc)
        return rc;
    if (found) { /* vLLM: -1 and 0 both mean no top-k */
        if (k < -1 || k > INT32_MAX)
            return err_set(e, ERR_INVALID, "`top_k` must be -1 or 0 (disabled), or at least 1");
        p->top_k = k < 0 ? 0 : (int32_t)k;
    }
    rc = params_num(o, "repetition_penalty", &v, &found, e);
    if (rc)
        return rc;
    if (found) {
        if (v <= 0)
            return err_set(e, ERR_INVALID, "`repetition_penalty` must be strictly positive");
        p->repetition_penalty = v;
    }
    rc = params_num(o, "frequency_penalty", &p->frequency_penalty, &found, e);
    if (!rc)
        rc = params_penalty_range("frequency_penalty", p->frequency_penalty, e);
    if (!rc)
        rc = params_num(o, "presence_penalty", &p->presence_penalty, &found, e);
    if (!rc)
        rc = params_penalty_range("presence_penalty", p->presence_penalty, e);
    if (rc)
        return rc;
    /* any 64-bit integer (OpenAI allows negative seeds); the bits seed the generator */
    rc = params_int(o, "seed", &k, &found, e);
    if (rc)
        return rc;
    p->seed_given = found;
    p->seed = found ? (uint64_t)k : gen_seed_random();
    return 0;
}

/* max_completion_tokens (or the older max_tokens), n. */
static int openai_lengths(const json_t *o, const struct gen_limits *lim, struct gen_params *p,
                          struct err *e)
{
    int64_t v;
    bool found;
    const char *key = "max_completion_tokens";
    int rc = params_int(o, key, &v, &found, e);
    if (!rc && !found) {
        key = "max_tokens";
        rc = params_int(o, key, &v, &found, e);
    }
    if (rc)
        return rc;
    if (found) {
        if (v < 1 || v > UINT32_MAX)
            return err_set(e, ERR_INVALID, "`%s` must be at least 1", key);
        p->max_new_tokens = (uint32_t)v;
    }
    rc = params_int(o, "n", &v, &found, e);
    if (rc)
        return rc;
    if (found) {
        if (v < 1 || v > lim->max_n)
            return err_set(e, ERR_INVALID, "`n` must be >= 1 and <= %u", lim->max_n);
        p->n = (uint32_t)v;
    }
    return 0;
}

/* logprobs: chat has a boolean and top_logprobs, completions an integer count. */
static int openai_logprobs(bool completions, const json_t *o, struct gen_params *p, struct err *e)
{
    int64_t v;
    bool found;
    int rc;
    if (completions) {
        rc = params_int(o, "logprobs", &v, &found, e);
        if (rc)
            return rc;
        if (found && (v < 0 || v > COMPLETIONS_MAX_LOGPROBS))
            return err_set(e, ERR_INVALID, "`logprobs` must be >= 0 and <= %d",
                           COMPLETIONS_MAX_LOGPROBS);
        p->logprobs = found;
        p->top_n_tokens = found ? (uint32_t)v : 0;
        return 0;
    }
    rc = params_bool(o, "logprobs", &p->logprobs, e);
    if (!rc)
        rc = params_int(o, "top_logprobs", &v, &found, e);
    if (rc)
        return rc;
    if (found) {
        if (v < 0 || v > CHAT_MAX_TOP_LOGPROBS)
            return err_set(e, ERR_INVALID, "`top_logprobs` must be >= 0 and <= %d",
                           CHAT_MAX_TOP_LOGPROBS);
        if (v > 0 && !p->logprobs)
            return err_set(e, ERR_INVALID, "`top_logprobs` requires `logprobs` to be true");
        p->top_n_tokens = (uint32_t)v;
    }
    return 0;
}

/* stream, stream_options. */
static int openai_stream(const json_t *o, struct gen_params *p, struct err *e)
{
    int rc = params_bool(o, "stream", &p->stream, e);
    if (rc)
        return rc;
    const json_t *so = json_object_get(o, "stream_options");
    if (!so || json_is_null(so))
        return 0;
    if (!json_is_object(so))
        return err_set(e, ERR_INVALID, "`stream_options` must be an object");
    if (!p->stream)
        return err_set(e, ERR_INVALID, "`stream_options` can only be set when `stream` is true");
    rc = params_bool(so, "include_usage", &p->include_usage, e);
    return rc ? err_prefix(e, "stream_options: ") : 0;
}

/* vLLM's stop_token_ids end generation like the model's eos ids (and, here, are also turned
 * off by ignore_eos). */
static int openai_stop_ids(const json_t *o, struct gen_params *p, struct err *e)
{
    const json_t *ids = json_object_get(o, "stop_token_ids");
    if (!ids || json_is_null(ids))
        return 0;
    if (!json_is_array(ids))
        return err_set(e, ERR_INVALID, "`stop_token_ids` must be a list of token ids");
    for (size_t i = 0; i < json_array_size(ids); i++) {
        const json_t *x = json_array_get(ids, i);
        if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > INT32_MAX)
            return err_set(e, ERR_INVALID, "`stop_token_ids`[%zu] must be a token id", i);
        if (p->n_eos_token_ids >= GEN_MAX_EOS)
            return err_set(e, ERR_INVALID, "`stop_token_ids` has too many ids (at most %d)",
                           GEN_MAX_EOS);
        p->eos_token_ids[p->n_eos_token_ids++] = (int32_t)json_integer_value(x);
    }
    return 0;
}

/* stream and stream_options, then the vLLM extras that touch stopping, completions' echo. */
static int openai_stream_stop(bool completions, const json_t *o, const struct gen_limits *lim,
                              struct gen_params *p, struct err *e)
{
    int rc = openai_stream(o, p, e);
    if (!rc)
        rc = params_stop(o, true, lim, p, e);
    if (!rc)
        rc = params_stop_count(p, lim, e);
    if (!rc)
        rc = params_bool(o, "ignore_eos", &p->ignore_eos, e);
    bool include = false;
    if (!rc)
        rc = params_bool(o, "include_stop_str_in_output", &include, e);
    if (rc)
        return rc;
    p->stop_mode = include ? GEN_STOP_CUT_AFTER : GEN_STOP_CUT;
    /* completions' echo puts the prompt before the completion: the pipeline's return_full_text */
    if (completions)
        rc = params_bool(o, "echo", &p->return_full_text, e);
    return rc ? rc : openai_stop_ids(o, p, e);
}

/* TGI's form of response_format, {"type": "json_object" or "json", "value": a schema or its
 * JSON text} (what huggingface_hub's InferenceClient sends for a json_schema): the schema's
 * constraint. */
static int tgi_response_format(const json_t *v, struct gen_params *p, struct err *e)
{
    json_t *parsed = NULL;
    if (json_is_string(v) &&
        !(v = parsed = json_loadb(json_string_value(v), json_string_length(v), 0, NULL)))
        return err_set(e, ERR_INVALID, "`value` is not a JSON schema");
    int rc = constraint_schema(v, &p->grammar, e);
    json_decref(parsed);
    return rc;
}

/* response_format: {"type": "text"} (no constraint), {"type": "json_object"} (any JSON object)
 * or {"type": "json_schema", "json_schema": {"name", "schema", "strict", "description"}}: the
 * output constraint (constraint.h; its errors are ERR_GEN_SCHEMA); TGI's {"type", "value"}
 * as tgi_response_format. */
static int openai_response_format(const json_t *o, struct gen_params *p, struct err *e)
{
    const json_t *rf = json_object_get(o, "response_format");
    if (!rf || json_is_null(rf))
        return 0;
    const char *t = json_string_value(json_object_get(rf, "type"));
    if (!json_is_object(rf) || !t)
        return err_set(e, ERR_INVALID, "`response_format` must be an object with a `type`");
    if (strcmp(t, "text") == 0)
        return 0;
    int rc;
    const json_t *value = json_object_get(rf, "value");
    if ((strcmp(t, "json_object") == 0 || strcmp(t, "json") == 0) && value &&
        !json_is_null(value)) {
        rc = tgi_response_format(value, p, e);
    } else if (strcmp(t, "json_object") == 0) {
        rc = constraint_schema(NULL, &p->grammar, e);
    } else if (strcmp(t, "json_schema") == 0) {
        const json_t *js = json_object_get(rf, "json_schema");
        const json_t *strict = json_object_get(js, "strict");
        if (!json_is_object(js) || !json_is_string(json_object_get(js, "name")))
            return err_set(e, ERR_INVALID, "`response_format.json_schema` must be an object "
                                           "with a `name`");
        if (strict && !json_is_boolean(strict) && !json_is_null(strict))
            return err_set(e, ERR_INVALID, "`response_format.json_schema.strict` must be a "
                                           "boolean");
        const json_t *schema = json_object_get(js, "schema");
        rc = constraint_schema(schema && !json_is_null(schema) ? schema : NULL, &p->grammar, e);
    } else {
        return err_set(e, ERR_INVALID, "`response_format.type` must be \"text\", "
                                       "\"json_object\" or \"json_schema\"");
    }
    return rc ? err_prefix(e, "`response_format`: ") : 0;
}

static int openai_read(bool completions, const json_t *o, const struct gen_limits *lim,
                       struct gen_params *p, struct err *e)
{
    if (!o || !json_is_object(o))
        return err_set(e, ERR_INVALID, "the request body must be a JSON object");
    int rc = openai_lengths(o, lim, p, e);
    if (!rc)
        rc = openai_sampling(o, p, e);
    if (!rc)
        rc = openai_logprobs(completions, o, p, e);
    if (!rc)
        rc = openai_stream_stop(completions, o, lim, p, e);
    if (!rc)
        rc = openai_response_format(o, p, e);
    return rc;
}

static int chat_read(const json_t *o, const struct gen_limits *lim, struct gen_params *p,
                     struct err *e)
{
    return openai_read(false, o, lim, p, e);
}

static int completions_read(const json_t *o, const struct gen_limits *lim, struct gen_params *p,
                            struct err *e)
{
    return openai_read(true, o, lim, p, e);
}

/* ---- lengths, once the prompt is tokenized (vLLM's messages) ---- */

/* where: what holds the prompt ("messages", "prompt") */
static int openai_resolve(const char *where, struct gen_params *p, size_t n_input, size_t max_input,
                          size_t max_total, struct err *e)
{
    if (max_input && n_input > max_input)
        return err_set(e, ERR_INVALID,
                       "This model's maximum input length is %zu tokens. However, your request "
                       "has %zu input tokens. Please reduce the length of the %s.",
                       max_input, n_input, where);
    if (p->max_new_tokens == 0 && max_total == 0)
        return err_set(e, ERR_INVALID, "`max_tokens` must be set");
    if (p->max_new_tokens == 0 && n_input < max_total)
        p->max_new_tokens = (uint32_t)(max_total - n_input);
    size_t want = n_input + (p->max_new_tokens ? p->max_new_tokens : 1);
    if (max_total && want > max_total)
        return err_set(e, ERR_INVALID,
                       "This model's maximum context length is %zu tokens. However, you "
                       "requested %zu tokens (%zu in the %s, %zu in the completion). Please "
                       "reduce the length of the %s or completion.",
                       max_total, want, n_input, where, want - n_input, where);
    return 0;
}

static int chat_resolve(struct gen_params *p, size_t n_input, size_t max_input, size_t max_total,
                        struct err *e)
{
    return openai_resolve("messages", p, n_input, max_input, max_total, e);
}

static int completions_resolve(struct gen_params *p, size_t n_input, size_t max_input,
                               size_t max_total, struct err *e)
{
    return openai_resolve("prompt", p, n_input, max_input, max_total, e);
}

#define OPENAI_FINISH                                                                              \
    {                                                                                              \
        [GEN_FINISH_LENGTH] = "length", [GEN_FINISH_EOS] = "stop", [GEN_FINISH_STOP] = "stop",     \
    }

const struct gen_api gen_api_chat = {
    .name = "chat",
    .dialect = DIALECT_OPENAI,
    .init = chat_init,
    .unsupported = chat_unsupported,
    .read = chat_read,
    .resolve_length = chat_resolve,
    .finish = OPENAI_FINISH,
};

const struct gen_api gen_api_completions = {
    .name = "completions",
    .dialect = DIALECT_OPENAI,
    .init = completions_init,
    .unsupported = completions_unsupported,
    .read = completions_read,
    .resolve_length = completions_resolve,
    .finish = OPENAI_FINISH,
};
