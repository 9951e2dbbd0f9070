/* params: JSON -> struct gen_params in the TGI, OpenAI (chat, completions) and transformers
 * pipeline dialects, each with its reference server's defaults, checks and messages; the prompt
 * length checks (gen_params_resolve_length). See params.h for what each dialect does. */
#include "generate/params.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "generate/sampling.h"

/* transformers' GenerationConfig defaults, used by the pipeline dialect. */
#define HF_DEFAULT_TOP_K 50
#define HF_DEFAULT_MAX_LENGTH 20
/* OpenAI's /v1/completions default max_tokens. */
#define COMPLETIONS_DEFAULT_MAX_TOKENS 16
/* OpenAI's bounds: top_logprobs (chat) and logprobs (completions). */
#define CHAT_MAX_TOP_LOGPROBS 20
#define COMPLETIONS_MAX_LOGPROBS 5

struct gen_limits gen_limits_default(void)
{
    struct gen_limits l = {
        .max_stop_sequences = 4,
        .max_top_n_tokens = 5,
        .max_best_of = 2,
        .max_input_tokens = 0,
        .max_n = 8,
    };
    return l;
}

/* ---- defaults ---- */

static double cfg_num(const struct gen_config *cfg, bool has, double v, double fallback)
{
    return cfg && has ? v : fallback;
}

void gen_params_init(struct gen_params *p, enum gen_dialect d, const struct gen_config *cfg)
{
    memset(p, 0, sizeof *p);
    p->dialect = d;
    p->temperature = 1.0;
    p->top_p = 1.0;
    p->typical_p = 1.0;
    p->repetition_penalty = 1.0;
    p->best_of = 1;
    p->n = 1;
    if (cfg) {
        memcpy(p->eos_token_ids, cfg->eos_token_ids, sizeof p->eos_token_ids);
        p->n_eos_token_ids = cfg->n_eos_token_ids;
    }
    switch (d) {
    case GEN_DIALECT_TGI:
        /* TGI ignores generation_config's sampling values */
        p->stop_mode = GEN_STOP_SUFFIX_KEEP;
        p->logprobs_mode = GEN_LOGPROBS_PROCESSED;
        break;
    case GEN_DIALECT_CHAT:
    case GEN_DIALECT_COMPLETIONS:
        /* vLLM: generation_config.json overrides the server defaults for these four */
        p->stop_mode = GEN_STOP_CUT;
        p->logprobs_mode = GEN_LOGPROBS_RAW;
        if (cfg) {
            p->temperature = cfg_num(cfg, cfg->has_temperature, cfg->temperature, 1.0);
            p->top_p = cfg_num(cfg, cfg->has_top_p, cfg->top_p, 1.0);
            p->top_k = cfg->has_top_k ? (int32_t)cfg->top_k : 0;
            p->repetition_penalty =
                cfg_num(cfg, cfg->has_repetition_penalty, cfg->repetition_penalty, 1.0);
        }
        p->do_sample = p->temperature > 0;
        if (d == GEN_DIALECT_COMPLETIONS)
            p->max_new_tokens = COMPLETIONS_DEFAULT_MAX_TOKENS;
        break;
    case GEN_DIALECT_PIPELINE:
        /* generate(): generation_config first, then GenerationConfig's own defaults */
        p->stop_mode = GEN_STOP_CUT;
        p->logprobs_mode = GEN_LOGPROBS_PROCESSED;
        p->return_full_text = true;
        p->top_k = HF_DEFAULT_TOP_K;
        p->max_length = HF_DEFAULT_MAX_LENGTH;
        if (cfg) {
            p->do_sample = cfg->has_do_sample && cfg->do_sample;
            p->temperature = cfg_num(cfg, cfg->has_temperature, cfg->temperature, 1.0);
            p->top_p = cfg_num(cfg, cfg->has_top_p, cfg->top_p, 1.0);
            p->typical_p = cfg_num(cfg, cfg->has_typical_p, cfg->typical_p, 1.0);
            p->repetition_penalty =
                cfg_num(cfg, cfg->has_repetition_penalty, cfg->repetition_penalty, 1.0);
            if (cfg->has_top_k)
                p->top_k = (int32_t)cfg->top_k;
            if (cfg->has_max_length)
                p->max_length =
                    (uint32_t)(cfg->max_length > UINT32_MAX ? UINT32_MAX : cfg->max_length);
            if (cfg->has_max_new_tokens)
                p->max_new_tokens =
                    (uint32_t)(cfg->max_new_tokens > UINT32_MAX ? UINT32_MAX : cfg->max_new_tokens);
        }
        break;
    }
}

void gen_params_fini(struct gen_params *p)
{
    for (size_t i = 0; i < p->n_stop; i++)
        free(p->stop[i]);
    p->n_stop = 0;
}

int gen_params_add_stop(struct gen_params *p, const char *s, size_t len, struct err *e)
{
    if (len == 0)
        return err_set(e, ERR_INVALID, "`stop` sequences must not be empty");
    if (p->n_stop >= GEN_MAX_STOP)
        return err_set(e, ERR_INVALID, "`stop` supports up to %d stop sequences", GEN_MAX_STOP);
    char *c = malloc(len + 1);
    if (!c)
        return err_set(e, ERR_NOMEM, "out of memory");
    memcpy(c, s, len);
    c[len] = '\0';
    p->stop[p->n_stop] = c;
    p->stop_len[p->n_stop++] = len;
    return 0;
}

int gen_params_copy(struct gen_params *dst, const struct gen_params *src, struct err *e)
{
    *dst = *src;
    dst->n_stop = 0;
    for (size_t i = 0; i < src->n_stop; i++) {
        int rc = gen_params_add_stop(dst, src->stop[i], src->stop_len[i], e);
        if (rc) {
            gen_params_fini(dst);
            return rc;
        }
    }
    return 0;
}

/* ---- typed getters: absent or null leaves *found false and returns 0 ---- */

static int get_num(const json_t *obj, const char *key, double *out, bool *found, struct err *e)
{
    const json_t *v = json_object_get(obj, key);
    *found = false;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return err_set(e, ERR_INVALID, "`%s` must be a number", key);
    *out = json_number_value(v);
    if (!isfinite(*out))
        return err_set(e, ERR_INVALID, "`%s` must be a finite number", key);
    *found = true;
    return 0;
}

static int get_int(const json_t *obj, const char *key, int64_t *out, bool *found, struct err *e)
{
    const json_t *v = json_object_get(obj, key);
    *found = false;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return err_set(e, ERR_INVALID, "`%s` must be an integer", key);
    *out = json_integer_value(v);
    *found = true;
    return 0;
}

static int get_bool(const json_t *obj, const char *key, bool *out, struct err *e)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return err_set(e, ERR_INVALID, "`%s` must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

/* `stop`: a list of strings, or (when one_ok, OpenAI) a single string. The count is checked
 * later, in the dialect's order (check_stop_count), unless it is over what params can hold. */
static int get_stop(const json_t *obj, bool one_ok, const struct gen_limits *lim,
                    struct gen_params *p, struct err *e)
{
    const json_t *v = json_object_get(obj, "stop");
    if (!v || json_is_null(v))
        return 0;
    if (one_ok && json_is_string(v))
        return gen_params_add_stop(p, json_string_value(v), json_string_length(v), e);
    if (!json_is_array(v))
        return err_set(e, ERR_INVALID,
                       one_ok ? "`stop` must be a string or a list of strings"
                              : "`stop` must be a list of strings");
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *s = json_array_get(v, i);
        if (!json_is_string(s))
            return err_set(e, ERR_INVALID, "`stop`[%zu] must be a string", i);
        if (i >= GEN_MAX_STOP)
            return err_set(e, ERR_INVALID, "`stop` supports up to %u stop sequences. Given: %zu",
                           lim->max_stop_sequences, json_array_size(v));
        int rc = gen_params_add_stop(p, json_string_value(s), json_string_length(s), e);
        if (rc)
            return rc;
    }
    return 0;
}

static int check_stop_count(const struct gen_params *p, const struct gen_limits *lim, struct err *e)
{
    if (p->n_stop > lim->max_stop_sequences)
        return err_set(e, ERR_INVALID, "`stop` supports up to %u stop sequences. Given: %zu",
                       lim->max_stop_sequences, p->n_stop);
    return 0;
}

static int check_penalty_range(const char *key, double v, struct err *e)
{
    if (v < -2.0 || v > 2.0)
        return err_set(e, ERR_INVALID, "`%s` must be >= -2.0 and <= 2.0", key);
    return 0;
}

/* ---- TGI ---- */

/* The raw values of a TGI `parameters` object (presence flags where TGI has an Option). */
struct tgi_raw {
    double temperature, repetition_penalty, frequency_penalty, presence_penalty, top_p, typical_p;
    bool has_temperature, has_repetition_penalty, has_frequency_penalty, has_presence_penalty;
    bool has_top_p, has_typical_p;
    int64_t best_of, top_k, max_new_tokens, seed, top_n_tokens, truncate;
    bool has_best_of, has_top_k, has_max_new_tokens, has_seed, has_top_n_tokens, has_truncate;
};

/* Reads every field with its JSON type first, as TGI's serde deserialization does before any
 * value is validated (so a wrong type is reported ahead of a bad value). Fields TGI has and we
 * do not implement (grammar, adapter_id, watermark true) were refused before
 * (gen_params_unsupported); unknown ones are ignored. */
static int tgi_read(const json_t *o, const struct gen_limits *lim, struct tgi_raw *r,
                    struct gen_params *p, struct err *e)
{
    int rc = get_int(o, "best_of", &r->best_of, &r->has_best_of, e);
    if (!rc)
        rc = get_num(o, "temperature", &r->temperature, &r->has_temperature, e);
    if (!rc)
        rc =
            get_num(o, "repetition_penalty", &r->repetition_penalty, &r->has_repetition_penalty, e);
    if (!rc)
        rc = get_num(o, "frequency_penalty", &r->frequency_penalty, &r->has_frequency_penalty, e);
    if (!rc)
        rc = get_num(o, "presence_penalty", &r->presence_penalty, &r->has_presence_penalty, e);
    if (!rc)
        rc = get_int(o, "top_k", &r->top_k, &r->has_top_k, e);
    if (!rc)
        rc = get_num(o, "top_p", &r->top_p, &r->has_top_p, e);
    if (!rc)
        rc = get_num(o, "typical_p", &r->typical_p, &r->has_typical_p, e);
    if (!rc)
        rc = get_bool(o, "do_sample", &p->do_sample, e);
    if (!rc)
        rc = get_int(o, "max_new_tokens", &r->max_new_tokens, &r->has_max_new_tokens, e);
    if (!rc)
        rc = get_bool(o, "return_full_text", &p->return_full_text, e);
    if (!rc)
        rc = get_stop(o, false, lim, p, e);
    if (!rc)
        rc = get_int(o, "truncate", &r->truncate, &r->has_truncate, e);
    if (!rc)
        rc = get_bool(o, "watermark", &p->watermark, e);
    if (!rc)
        rc = get_bool(o, "details", &p->details, e);
    if (!rc)
        rc = get_bool(o, "decoder_input_details", &p->decoder_input_details, e);
    if (!rc)
        rc = get_int(o, "seed", &r->seed, &r->has_seed, e);
    if (!rc)
        rc = get_int(o, "top_n_tokens", &r->top_n_tokens, &r->has_top_n_tokens, e);
    return rc;
}

/* TGI's checks in router/src/validation.rs order, with its messages. */
static int tgi_validate(const struct tgi_raw *r, const struct gen_limits *lim, struct gen_params *p,
                        struct err *e)
{
    /* best_of first: TGI's handler checks it (validate_best_of) before validate() runs */
    int64_t best_of = r->has_best_of ? r->best_of : 1;
    if (best_of < 1 || (lim->max_best_of > 1 && best_of > lim->max_best_of))
        return err_set(e, ERR_INVALID, "`best_of` must be > 0 and <= %u. Given: %lld",
                       lim->max_best_of, (long long)best_of);
    if (lim->max_best_of <= 1 && best_of != 1)
        return err_set(e, ERR_INVALID, "`best_of` != 1 is not allowed for this endpoint");
    p->best_of = (uint32_t)best_of;
    /* any warper given turns sampling on, even temperature 1.0 */
    bool sampling =
        p->do_sample || r->has_temperature || r->has_top_k || r->has_top_p || r->has_typical_p;
    if (best_of > 1 && !sampling)
        return err_set(e, ERR_INVALID, "you must use sampling when `best_of` is > 1");
    p->do_sample = sampling;
    p->temperature = r->has_temperature ? r->temperature : 1.0;
    if (p->temperature <= 0)
        return err_set(e, ERR_INVALID, "`temperature` must be strictly positive");
    p->repetition_penalty = r->has_repetition_penalty ? r->repetition_penalty : 1.0;
    if (p->repetition_penalty <= 0)
        return err_set(e, ERR_INVALID, "`repetition_penalty` must be strictly positive");
    p->frequency_penalty = r->has_frequency_penalty ? r->frequency_penalty : 0.0;
    p->presence_penalty = r->has_presence_penalty ? r->presence_penalty : 0.0;
    int rc = check_penalty_range("frequency_penalty", p->frequency_penalty, e);
    if (!rc)
        rc = check_penalty_range("presence_penalty", p->presence_penalty, e);
    if (rc)
        return rc;
    /* 1.0 is the resolved default but refused from users (TGI's test_validation_top_p) */
    p->top_p = r->has_top_p ? r->top_p : 1.0;
    if (r->has_top_p && (p->top_p <= 0 || p->top_p >= 1))
        return err_set(e, ERR_INVALID, "`top_p` must be > 0.0 and < 1.0");
    p->typical_p = r->has_typical_p ? r->typical_p : 1.0;
    if (r->has_typical_p && (p->typical_p <= 0 || p->typical_p >= 1))
        return err_set(e, ERR_INVALID, "`typical_p` must be > 0.0 and < 1.0");
    if (r->has_top_k && (r->top_k <= 0 || r->top_k > INT32_MAX))
        return err_set(e, ERR_INVALID, "`top_k` must be strictly positive");
    p->top_k = r->has_top_k ? (int32_t)r->top_k : 0;
    if (r->has_max_new_tokens && (r->max_new_tokens <= 0 || r->max_new_tokens > UINT32_MAX))
        return err_set(e, ERR_INVALID, "`max_new_tokens` must be strictly positive");
    /* absent: 0 here, the room under max_total_tokens once the prompt is known */
    p->max_new_tokens = r->has_max_new_tokens ? (uint32_t)r->max_new_tokens : 0;
    rc = check_stop_count(p, lim, e);
    if (rc)
        return rc;
    if (r->has_seed && best_of > 1)
        return err_set(e, ERR_INVALID, "`seed` must not be set when `best_of` > 1");
    if (r->has_seed && r->seed < 0)
        return err_set(e, ERR_INVALID, "`seed` must be a non-negative integer");
    /* no seed: a random one, which TGI reports back in details.seed */
    p->seed_given = r->has_seed;
    p->seed = r->has_seed ? (uint64_t)r->seed : gen_seed_random();
    if (r->has_top_n_tokens && (r->top_n_tokens < 0 || r->top_n_tokens > lim->max_top_n_tokens))
        return err_set(e, ERR_INVALID, "`top_n_tokens` must be >= 0 and <= %u. Given: %lld",
                       lim->max_top_n_tokens, (long long)r->top_n_tokens);
    p->top_n_tokens = r->has_top_n_tokens ? (uint32_t)r->top_n_tokens : 0;
    /* without a known max_input_tokens only the sign can be checked */
    if (r->has_truncate && lim->max_input_tokens == 0 &&
        (r->truncate <= 0 || r->truncate > UINT32_MAX))
        return err_set(e, ERR_INVALID, "`truncate` must be strictly positive. Given: %lld",
                       (long long)r->truncate);
    if (r->has_truncate && lim->max_input_tokens &&
        (r->truncate <= 0 || r->truncate > lim->max_input_tokens))
        return err_set(e, ERR_INVALID,
                       "`truncate` must be strictly positive and less than %u. Given: %lld",
                       lim->max_input_tokens, (long long)r->truncate);
    p->truncate = r->has_truncate ? (uint32_t)r->truncate : 0;
    return 0;
}

static int parse_tgi(const json_t *obj, const struct gen_limits *lim, struct gen_params *p,
                     struct err *e)
{
    if (!obj || json_is_null(obj)) {
        /* no `parameters` at all: TGI's default_parameters(), which samples */
        p->do_sample = true;
        p->seed = gen_seed_random();
        return 0;
    }
    if (!json_is_object(obj))
        return err_set(e, ERR_INVALID, "`parameters` must be an object");
    struct tgi_raw r;
    memset(&r, 0, sizeof r);
    int rc = tgi_read(obj, lim, &r, p, e);
    return rc ? rc : tgi_validate(&r, lim, p, e);
}

/* ---- OpenAI (vLLM) ---- */

/* temperature, top_p, top_k, the penalties and seed, over the defaults gen_params_init took
 * from generation_config.json. Ranges: OpenAI's API reference; the extras: vLLM's
 * SamplingParams checks. */
static int openai_sampling(const json_t *o, struct gen_params *p, struct err *e)
{
    double v;
    bool found;
    int rc = get_num(o, "temperature", &v, &found, e);
    if (rc)
        return rc;
    if (found) {
        if (v < 0 || v > 2)
            return err_set(e, ERR_INVALID, "`temperature` must be >= 0.0 and <= 2.0");
        p->temperature = v;
    }
    p->do_sample = p->temperature > 0; /* 0 = greedy */
    rc = get_num(o, "top_p", &v, &found, e);
    if (rc)
        return rc;
    if (found) {
        if (v <= 0 || v > 1)
            return err_set(e, ERR_INVALID, "`top_p` must be > 0.0 and <= 1.0");
        p->top_p = v;
    }
    int64_t k;
    rc = get_int(o, "top_k", &k, &found, e);
    if (rc)
        return rc;
    if (found) { /* vLLM: -1 and 0 both mean no top-k */
        if (k < -1 || k > INT32_MAX)
            return err_set(e, ERR_INVALID, "`top_k` must be -1 or 0 (disabled), or at least 1");
        p->top_k = k < 0 ? 0 : (int32_t)k;
    }
    rc = get_num(o, "repetition_penalty", &v, &found, e);
    if (rc)
        return rc;
    if (found) {
        if (v <= 0)
            return err_set(e, ERR_INVALID, "`repetition_penalty` must be strictly positive");
        p->repetition_penalty = v;
    }
    rc = get_num(o, "frequency_penalty", &p->frequency_penalty, &found, e);
    if (!rc)
        rc = check_penalty_range("frequency_penalty", p->frequency_penalty, e);
    if (!rc)
        rc = get_num(o, "presence_penalty", &p->presence_penalty, &found, e);
    if (!rc)
        rc = check_penalty_range("presence_penalty", p->presence_penalty, e);
    if (rc)
        return rc;
    /* any 64-bit integer (OpenAI allows negative seeds); the bits seed the generator */
    rc = get_int(o, "seed", &k, &found, e);
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
    int rc = get_int(o, key, &v, &found, e);
    if (!rc && !found) {
        key = "max_tokens";
        rc = get_int(o, key, &v, &found, e);
    }
    if (rc)
        return rc;
    if (found) {
        if (v < 1 || v > UINT32_MAX)
            return err_set(e, ERR_INVALID, "`%s` must be at least 1", key);
        p->max_new_tokens = (uint32_t)v;
    }
    rc = get_int(o, "n", &v, &found, e);
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
static int openai_logprobs(enum gen_dialect d, const json_t *o, struct gen_params *p, struct err *e)
{
    int64_t v;
    bool found;
    int rc;
    if (d == GEN_DIALECT_COMPLETIONS) {
        rc = get_int(o, "logprobs", &v, &found, e);
        if (rc)
            return rc;
        if (found && (v < 0 || v > COMPLETIONS_MAX_LOGPROBS))
            return err_set(e, ERR_INVALID, "`logprobs` must be >= 0 and <= %d",
                           COMPLETIONS_MAX_LOGPROBS);
        p->logprobs = found;
        p->top_n_tokens = found ? (uint32_t)v : 0;
        return 0;
    }
    rc = get_bool(o, "logprobs", &p->logprobs, e);
    if (!rc)
        rc = get_int(o, "top_logprobs", &v, &found, e);
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

/* stream, stream_options; the vLLM extras that touch stopping. */
static int openai_stream_stop(enum gen_dialect d, const json_t *o, const struct gen_limits *lim,
                              struct gen_params *p, struct err *e)
{
    int rc = get_bool(o, "stream", &p->stream, e);
    if (rc)
        return rc;
    const json_t *so = json_object_get(o, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so))
            return err_set(e, ERR_INVALID, "`stream_options` must be an object");
        if (!p->stream)
            return err_set(e, ERR_INVALID,
                           "`stream_options` can only be set when `stream` is true");
        rc = get_bool(so, "include_usage", &p->include_usage, e);
        if (rc)
            return err_prefix(e, "stream_options: ");
    }
    rc = get_stop(o, true, lim, p, e);
    if (!rc)
        rc = check_stop_count(p, lim, e);
    if (!rc)
        rc = get_bool(o, "ignore_eos", &p->ignore_eos, e);
    bool include = false;
    if (!rc)
        rc = get_bool(o, "include_stop_str_in_output", &include, e);
    if (rc)
        return rc;
    p->stop_mode = include ? GEN_STOP_CUT_AFTER : GEN_STOP_CUT;
    /* completions' echo puts the prompt before the completion: the pipeline's return_full_text */
    if (d == GEN_DIALECT_COMPLETIONS)
        rc = get_bool(o, "echo", &p->return_full_text, e);
    if (rc)
        return rc;
    /* vLLM's stop_token_ids end generation like the model's eos ids (and, here, are also
     * turned off by ignore_eos) */
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

/* The whole request body: model, messages or prompt and the other non-generation fields are the
 * dialect's business and ignored here. */
static int parse_openai(enum gen_dialect d, const json_t *o, const struct gen_limits *lim,
                        struct gen_params *p, struct err *e)
{
    if (!o || !json_is_object(o))
        return err_set(e, ERR_INVALID, "the request body must be a JSON object");
    int rc = openai_lengths(o, lim, p, e);
    if (!rc)
        rc = openai_sampling(o, p, e);
    if (!rc)
        rc = openai_logprobs(d, o, p, e);
    if (!rc)
        rc = openai_stream_stop(d, o, lim, p, e);
    return rc;
}

/* ---- what the reference APIs define and inferd does not do ---- */

/* Whether v (present, not null) asks for nothing beyond what inferd does; obj: the whole
 * object v is in. */
typedef bool (*neutral_fn)(const json_t *v, const json_t *obj);

static bool is_false(const json_t *v, const json_t *obj)
{
    (void)obj;
    return json_is_false(v);
}

static bool is_zero(const json_t *v, const json_t *obj)
{
    (void)obj;
    return json_is_number(v) && json_number_value(v) == 0;
}

static bool is_none(const json_t *v, const json_t *obj)
{
    (void)obj;
    return json_is_string(v) && strcmp(json_string_value(v), "none") == 0;
}

/* {}, [] or "" */
static bool is_empty(const json_t *v, const json_t *obj)
{
    (void)obj;
    return (json_is_object(v) && json_object_size(v) == 0) ||
           (json_is_array(v) && json_array_size(v) == 0) ||
           (json_is_string(v) && json_string_length(v) == 0);
}

/* response_format {"type": "text"}: plain text, what is generated anyway */
static bool is_text_format(const json_t *v, const json_t *obj)
{
    (void)obj;
    const char *t = json_string_value(json_object_get(v, "type"));
    return json_is_object(v) && t && strcmp(t, "text") == 0;
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

/* 1 (num_beams, num_return_sequences) */
static bool is_one(const json_t *v, const json_t *obj)
{
    (void)obj;
    return json_is_number(v) && json_number_value(v) == 1;
}

/* completions' best_of equal to n (1 when absent): the n choices are all returned */
static bool is_n(const json_t *v, const json_t *obj)
{
    const json_t *n = json_object_get(obj, "n");
    json_int_t want = json_is_integer(n) ? json_integer_value(n) : 1;
    return json_is_integer(v) && json_integer_value(v) == want;
}

#define TGI_BIT (1u << GEN_DIALECT_TGI)
#define CHAT_BIT (1u << GEN_DIALECT_CHAT)
#define CMPL_BIT (1u << GEN_DIALECT_COMPLETIONS)
#define OPENAI_BITS (CHAT_BIT | CMPL_BIT)
#define PIPE_BIT (1u << GEN_DIALECT_PIPELINE)

/* Keys that change what must be generated (or what is answered) and are not implemented:
 * refused unless null or neutral, never silently ignored. Metadata (user, metadata, store,
 * service_tier, ...) and unknown keys stay ignored, as the reference servers do. */
static const struct unsupported {
    unsigned dialects;
    const char *key;
    neutral_fn neutral; /* NULL: every value but null is refused */
    const char *what;
} unsupported[] = {
    {TGI_BIT, "grammar", NULL, "grammar-constrained generation (JSON schema, regex)"},
    {TGI_BIT, "watermark", is_false, "watermarking"},
    {TGI_BIT, "adapter_id", NULL, "LoRA adapters"},
    {CHAT_BIT, "tools", NULL, "tool calling"},
    {CHAT_BIT, "tool_choice", is_none, "tool calling"},
    {CHAT_BIT, "functions", NULL, "function calling"},
    {CHAT_BIT, "function_call", is_none, "function calling"},
    {CHAT_BIT, "continue_final_message", is_false, "continuing the final message"},
    {CHAT_BIT, "echo", is_false, "echo in chat (use /v1/completions)"},
    {CHAT_BIT, "chat_template", NULL, "a chat template per request"},
    {CHAT_BIT, "add_special_tokens", is_false, "adding special tokens to a chat prompt"},
    {CMPL_BIT, "suffix", is_empty, "insertion (suffix)"},
    {CMPL_BIT, "best_of", is_n, "best_of other than n"},
    {OPENAI_BITS, "response_format", is_text_format,
     "structured output (json_object, json_schema)"},
    {OPENAI_BITS, "logit_bias", is_empty, "logit bias"},
    {OPENAI_BITS, "modalities", is_text_only, "output modalities other than text"},
    {OPENAI_BITS, "audio", NULL, "audio output"},
    {OPENAI_BITS, "reasoning_effort", NULL, "reasoning effort (no reasoning model is served)"},
    {OPENAI_BITS, "web_search_options", NULL, "web search"},
    {OPENAI_BITS, "guided_json", NULL, "guided decoding"},
    {OPENAI_BITS, "guided_regex", NULL, "guided decoding"},
    {OPENAI_BITS, "guided_choice", NULL, "guided decoding"},
    {OPENAI_BITS, "guided_grammar", NULL, "guided decoding"},
    {OPENAI_BITS, "structured_outputs", NULL, "guided decoding"},
    {OPENAI_BITS, "min_p", is_zero, "min-p sampling"},
    {OPENAI_BITS, "min_tokens", is_zero, "a minimum completion length"},
    {OPENAI_BITS, "use_beam_search", is_false, "beam search"},
    {OPENAI_BITS, "bad_words", is_empty, "banned words"},
    {OPENAI_BITS, "allowed_token_ids", NULL, "restricting the vocabulary"},
    {OPENAI_BITS, "prompt_logprobs", NULL, "prompt log-probabilities"},
    {OPENAI_BITS, "truncate_prompt_tokens", NULL, "prompt truncation"},
    {PIPE_BIT, "num_return_sequences", is_one, "several sequences per input"},
    {PIPE_BIT, "num_beams", is_one, "beam search"},
    {PIPE_BIT, "min_new_tokens", is_zero, "a minimum generation length"},
    {PIPE_BIT, "min_length", is_zero, "a minimum generation length"},
    {PIPE_BIT, "no_repeat_ngram_size", is_zero, "n-gram blocking"},
    {PIPE_BIT, "bad_words_ids", is_empty, "banned words"},
    {PIPE_BIT, "prefix", is_empty, "a prompt prefix"},
};

int gen_params_unsupported(enum gen_dialect d, const json_t *obj, const char **key,
                           struct err *e)
{
    if (key)
        *key = NULL;
    if (!json_is_object(obj))
        return 0;
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
        const struct unsupported *u = &unsupported[i];
        const json_t *v = json_object_get(obj, u->key);
        if (!(u->dialects & (1u << d)) || !v || json_is_null(v) ||
            (u->neutral && u->neutral(v, obj)))
            continue;
        if (key)
            *key = u->key;
        return err_set(e, ERR_INVALID, "`%s` is not supported: inferd does not implement %s",
                       u->key, u->what);
    }
    return 0;
}

/* ---- transformers pipeline ---- */

/* Python's repr of a float (shortest round-trip digits; fixed notation for exponents in
 * [-4, 16), with ".0" when integral), for transformers' messages. */
static void py_float(char *buf, size_t size, double v)
{
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(buf, size, "%.*e", prec - 1, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    int exp10 = atoi(strchr(buf, 'e') + 1);
    if (exp10 < -4 || exp10 >= 16)
        return; /* keep the exponent form, as Python does ("1e-05") */
    int decimals = prec - 1 - exp10;
    snprintf(buf, size, "%.*f", decimals > 0 ? decimals : 0, v);
    if (!strchr(buf, '.'))
        strncat(buf, ".0", size - strlen(buf) - 1);
}

/* generate()'s checks for the warpers it builds (only when sampling) and the penalty. */
static int pipeline_validate(struct gen_params *p, struct err *e)
{
    char num[64];
    if (p->repetition_penalty != 1.0 && !(p->repetition_penalty > 0)) {
        py_float(num, sizeof num, p->repetition_penalty);
        return err_set(e, ERR_INVALID, "`penalty` has to be a strictly positive float, but is %s",
                       num);
    }
    if (!p->do_sample)
        return 0;
    if (p->temperature != 1.0 && !(p->temperature > 0)) {
        py_float(num, sizeof num, p->temperature);
        return err_set(e, ERR_INVALID,
                       "`temperature` (=%s) has to be a strictly positive float, otherwise your "
                       "next token scores will be invalid.%s",
                       num,
                       p->temperature == 0 ? " If you're looking for greedy decoding strategies, "
                                             "set `do_sample=False`."
                                           : "");
    }
    if (p->top_k < 0)
        return err_set(e, ERR_INVALID, "`top_k` has to be a strictly positive integer, but is %d",
                       p->top_k);
    if (p->top_p < 0) {
        py_float(num, sizeof num, p->top_p);
        return err_set(e, ERR_INVALID, "`top_p` has to be a float > 0 and < 1, but is %s", num);
    }
    if (p->typical_p < 1.0 && !(p->typical_p > 0)) {
        py_float(num, sizeof num, p->typical_p);
        return err_set(e, ERR_INVALID, "`typical_p` has to be a float > 0 and < 1, but is %s", num);
    }
    return 0;
}

static int parse_pipeline(const json_t *o, struct gen_params *p, struct err *e)
{
    if (!o || json_is_null(o))
        return pipeline_validate(p, e);
    if (!json_is_object(o))
        return err_set(e, ERR_INVALID, "`parameters` must be an object");
    bool found;
    int64_t v;
    int rc = get_bool(o, "do_sample", &p->do_sample, e);
    if (!rc)
        rc = get_bool(o, "return_full_text", &p->return_full_text, e);
    if (!rc)
        rc = get_num(o, "temperature", &p->temperature, &found, e);
    if (!rc)
        rc = get_num(o, "top_p", &p->top_p, &found, e);
    if (!rc)
        rc = get_num(o, "typical_p", &p->typical_p, &found, e);
    if (!rc)
        rc = get_num(o, "repetition_penalty", &p->repetition_penalty, &found, e);
    if (!rc)
        rc = get_int(o, "top_k", &v, &found, e);
    if (rc)
        return rc;
    if (found)
        p->top_k = v < INT32_MIN ? INT32_MIN : v > INT32_MAX ? INT32_MAX : (int32_t)v;
    rc = get_int(o, "max_new_tokens", &v, &found, e);
    if (rc)
        return rc;
    if (found && (v <= 0 || v > UINT32_MAX))
        return err_set(e, ERR_INVALID, "`max_new_tokens` must be greater than 0, but is %lld.",
                       (long long)v);
    if (found)
        p->max_new_tokens = (uint32_t)v;
    rc = get_int(o, "max_length", &v, &found, e);
    if (rc)
        return rc;
    if (found && (v <= 0 || v > UINT32_MAX))
        return err_set(e, ERR_INVALID, "`max_length` must be greater than 0, but is %lld.",
                       (long long)v);
    if (found)
        p->max_length = (uint32_t)v;
    rc = get_int(o, "seed", &v, &found, e);
    if (rc)
        return rc;
    p->seed_given = found;
    p->seed = found ? (uint64_t)v : gen_seed_random();
    return pipeline_validate(p, e);
}

int gen_params_parse(enum gen_dialect d, const json_t *obj, const struct gen_config *cfg,
                     const struct gen_limits *lim, struct gen_params *out, struct err *e)
{
    struct gen_limits dl = gen_limits_default();
    if (!lim)
        lim = &dl;
    gen_params_init(out, d, cfg);
    if (gen_params_unsupported(d, obj, NULL, e) != 0)
        return ERR_INVALID;
    switch (d) {
    case GEN_DIALECT_TGI: return parse_tgi(obj, lim, out, e);
    case GEN_DIALECT_CHAT:
    case GEN_DIALECT_COMPLETIONS: return parse_openai(d, obj, lim, out, e);
    case GEN_DIALECT_PIPELINE: return parse_pipeline(obj, out, e);
    }
    return err_set(e, ERR_INTERNAL, "gen_params_parse: unknown dialect %d", (int)d);
}

int gen_params_check_stream(const struct gen_params *p, struct err *e)
{
    if (p->best_of != 1)
        return err_set(e, ERR_INVALID, "`best_of` != 1 is not supported when streaming tokens");
    if (p->decoder_input_details)
        return err_set(e, ERR_INVALID,
                       "`decoder_input_details` == true is not supported when streaming tokens");
    return 0;
}

/* ---- lengths, once the prompt is tokenized ---- */

static int resolve_tgi(struct gen_params *p, size_t n_input, size_t max_input, size_t max_total,
                       struct err *e)
{
    if (p->max_new_tokens == 0 && max_total == 0)
        return err_set(e, ERR_INVALID, "`max_new_tokens` must be set");
    if (p->max_new_tokens == 0) /* TGI: whatever room is left */
        p->max_new_tokens = (uint32_t)(n_input < max_total ? max_total - n_input : 0);
    if (max_total && n_input + p->max_new_tokens > max_total)
        return err_set(e, ERR_INVALID,
                       "`inputs` tokens + `max_new_tokens` must be <= %zu. Given: %zu `inputs` "
                       "tokens and %u `max_new_tokens`",
                       max_total, n_input, p->max_new_tokens);
    if (max_input && n_input > max_input)
        return err_set(e, ERR_INVALID, "`inputs` must have less than %zu tokens. Given: %zu",
                       max_input, n_input);
    if (p->max_new_tokens == 0)
        return err_set(e, ERR_INVALID, "`inputs` must have less than %zu tokens. Given: %zu",
                       max_total, n_input);
    return 0;
}

static int resolve_openai(struct gen_params *p, size_t n_input, size_t max_input, size_t max_total,
                          struct err *e)
{
    const char *where = p->dialect == GEN_DIALECT_CHAT ? "messages" : "prompt";
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

static int resolve_pipeline(struct gen_params *p, size_t n_input, size_t max_input,
                            size_t max_total, struct err *e)
{
    if (p->max_new_tokens == 0) {
        uint32_t limit = p->max_length ? p->max_length : HF_DEFAULT_MAX_LENGTH;
        if (n_input >= limit)
            return err_set(e, ERR_INVALID,
                           "Input length of input_ids is %zu, but `max_length` is set to %u. This "
                           "can lead to unexpected behavior. You should consider increasing "
                           "`max_length` or, better yet, setting `max_new_tokens`.",
                           n_input, limit);
        p->max_new_tokens = (uint32_t)(limit - n_input);
    }
    if (max_total && n_input + p->max_new_tokens > max_total)
        return err_set(e, ERR_INVALID,
                       "`inputs` tokens + `max_new_tokens` must be <= %zu. Given: %zu `inputs` "
                       "tokens and %u `max_new_tokens`",
                       max_total, n_input, p->max_new_tokens);
    if (max_input && n_input > max_input)
        return err_set(e, ERR_INVALID, "`inputs` must have less than %zu tokens. Given: %zu",
                       max_input, n_input);
    return 0;
}

int gen_params_resolve_length(struct gen_params *p, size_t n_input, size_t max_input_tokens,
                              size_t max_total_tokens, struct err *e)
{
    switch (p->dialect) {
    case GEN_DIALECT_TGI: return resolve_tgi(p, n_input, max_input_tokens, max_total_tokens, e);
    case GEN_DIALECT_CHAT:
    case GEN_DIALECT_COMPLETIONS:
        return resolve_openai(p, n_input, max_input_tokens, max_total_tokens, e);
    case GEN_DIALECT_PIPELINE:
        return resolve_pipeline(p, n_input, max_input_tokens, max_total_tokens, e);
    }
    return err_set(e, ERR_INTERNAL, "gen_params_resolve_length: unknown dialect");
}
