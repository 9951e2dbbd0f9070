/* params_tgi: TGI's generation parameters, the `parameters` object of /generate,
 * /generate_stream and / (text-generation-inference, router/src/validation.rs and lib.rs), with
 * TGI's defaults, order of checks and messages. The object may be absent (NULL): then do_sample
 * is true, as TGI's default_parameters(). Setting temperature, top_k, top_p or typical_p turns
 * sampling on. Checks in TGI's order with its messages: best_of needs sampling, `temperature`
 * strictly positive, `repetition_penalty` strictly positive, `frequency_penalty` in [-2, 2],
 * `top_p` and `typical_p` in (0, 1) (1.0 is refused), `top_k` strictly positive,
 * `max_new_tokens` strictly positive, at most max_stop_sequences stop strings, no seed with
 * best_of > 1, `top_n_tokens` <= max_top_n_tokens, `truncate` in [1, max_input_tokens].
 * generation_config.json gives only eos_token_id. A stop string ends generation when the text
 * ends with it, and stays in the text (GEN_STOP_SUFFIX_KEEP). Log-probabilities are those of
 * the processed distribution (after penalties and warpers). Absent max_new_tokens: up to
 * max_total_tokens - prompt (resolved once the prompt is known). return_full_text defaults to
 * false (/generate's default). `presence_penalty` is accepted too (range [-2, 2]), an
 * extension. `grammar` (json or regex) constrains the output (constraint.h). Finish reasons: "length", "eos_token", "stop_sequence". See gen_api.h. */
#include <string.h>

#include "constraint.h"
#include "engine.h"
#include "gen_api.h"

/* Keys TGI defines and inferd does not implement. */
static const struct params_refused refused[] = {
    {"watermark", params_is_false, "watermarking"},
    {"adapter_id", NULL, "LoRA adapters"},
};

static int tgi_unsupported(const json_t *obj, const char **key, struct err *e)
{
    return params_refuse(refused, sizeof refused / sizeof refused[0], obj, key, e);
}

/* TGI ignores generation_config's sampling values (the eos ids came with gen_params_init). */
static void tgi_init(struct gen_params *p, const struct gen_config *cfg)
{
    (void)cfg;
    p->stop_mode = GEN_STOP_SUFFIX_KEEP;
    p->logprobs_mode = GEN_LOGPROBS_PROCESSED;
}

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
 * (tgi_unsupported); unknown ones are ignored. */
static int tgi_fields(const json_t *o, const struct gen_limits *lim, struct tgi_raw *r,
                      struct gen_params *p, struct err *e)
{
    int rc = params_int(o, "best_of", &r->best_of, &r->has_best_of, e);
    if (!rc)
        rc = params_num(o, "temperature", &r->temperature, &r->has_temperature, e);
    if (!rc)
        rc = params_num(o, "repetition_penalty", &r->repetition_penalty, &r->has_repetition_penalty,
                        e);
    if (!rc)
        rc =
            params_num(o, "frequency_penalty", &r->frequency_penalty, &r->has_frequency_penalty, e);
    if (!rc)
        rc = params_num(o, "presence_penalty", &r->presence_penalty, &r->has_presence_penalty, e);
    if (!rc)
        rc = params_int(o, "top_k", &r->top_k, &r->has_top_k, e);
    if (!rc)
        rc = params_num(o, "top_p", &r->top_p, &r->has_top_p, e);
    if (!rc)
        rc = params_num(o, "typical_p", &r->typical_p, &r->has_typical_p, e);
    if (!rc)
        rc = params_bool(o, "do_sample", &p->do_sample, e);
    if (!rc)
        rc = params_int(o, "max_new_tokens", &r->max_new_tokens, &r->has_max_new_tokens, e);
    if (!rc)
        rc = params_bool(o, "return_full_text", &p->return_full_text, e);
    if (!rc)
        rc = params_stop(o, false, lim, p, e);
    if (!rc)
        rc = params_int(o, "truncate", &r->truncate, &r->has_truncate, e);
    if (!rc)
        rc = params_bool(o, "watermark", &p->watermark, e);
    if (!rc)
        rc = params_bool(o, "details", &p->details, e);
    if (!rc)
        rc = params_bool(o, "decoder_input_details", &p->decoder_input_details, e);
    if (!rc)
        rc = params_int(o, "seed", &r->seed, &r->has_seed, e);
    if (!rc)
        rc = params_int(o, "top_n_tokens", &r->top_n_tokens, &r->has_top_n_tokens, e);
    return rc;
}

/* best_of first: TGI's handler checks it (validate_best_of) before validate() runs; then
 * whether it samples (any warper given turns sampling on, even temperature 1.0). */
static int tgi_best_of(const struct tgi_raw *r, const struct gen_limits *lim, struct gen_params *p,
                       struct err *e)
{
    int64_t best_of = r->has_best_of ? r->best_of : 1;
    if (best_of < 1 || (lim->max_best_of > 1 && best_of > lim->max_best_of))
        return err_set(e, ERR_INVALID, "`best_of` must be > 0 and <= %u. Given: %lld",
                       lim->max_best_of, (long long)best_of);
    if (lim->max_best_of <= 1 && best_of != 1)
        return err_set(e, ERR_INVALID, "`best_of` != 1 is not allowed for this endpoint");
    p->best_of = (uint32_t)best_of;
    bool sampling =
        p->do_sample || r->has_temperature || r->has_top_k || r->has_top_p || r->has_typical_p;
    if (best_of > 1 && !sampling)
        return err_set(e, ERR_INVALID, "you must use sampling when `best_of` is > 1");
    p->do_sample = sampling;
    return 0;
}

/* temperature, the penalties, top_p, typical_p, top_k and max_new_tokens, in TGI's order. */
static int tgi_sampling(const struct tgi_raw *r, struct gen_params *p, struct err *e)
{
    p->temperature = r->has_temperature ? r->temperature : 1.0;
    if (p->temperature <= 0)
        return err_set(e, ERR_INVALID, "`temperature` must be strictly positive");
    p->repetition_penalty = r->has_repetition_penalty ? r->repetition_penalty : 1.0;
    if (p->repetition_penalty <= 0)
        return err_set(e, ERR_INVALID, "`repetition_penalty` must be strictly positive");
    p->frequency_penalty = r->has_frequency_penalty ? r->frequency_penalty : 0.0;
    p->presence_penalty = r->has_presence_penalty ? r->presence_penalty : 0.0;
    int rc = params_penalty_range("frequency_penalty", p->frequency_penalty, e);
    if (!rc)
        rc = params_penalty_range("presence_penalty", p->presence_penalty, e);
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
    return 0;
}

/* The stop count, seed, top_n_tokens and truncate, in TGI's order. */
static int tgi_rest(const struct tgi_raw *r, const struct gen_limits *lim, struct gen_params *p,
                    struct err *e)
{
    int rc = params_stop_count(p, lim, e);
    if (rc)
        return rc;
    if (r->has_seed && p->best_of > 1)
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

/* grammar: {"type": "json", "value": a schema (or its text)} or {"type": "regex", "value":
 * "..."}: the output constraint (constraint.h; its errors are ERR_GEN_SCHEMA). */
static int tgi_grammar(const json_t *obj, struct gen_params *p, struct err *e)
{
    const json_t *g = json_object_get(obj, "grammar");
    if (!g || json_is_null(g))
        return 0;
    const char *t = json_string_value(json_object_get(g, "type"));
    const json_t *v = json_object_get(g, "value");
    if (!json_is_object(g) || !t || !v)
        return err_set(e, ERR_INVALID, "`grammar` must be {\"type\": \"json\" or \"regex\", "
                                       "\"value\": ...}");
    int rc;
    if (strcmp(t, "regex") == 0) {
        if (!json_is_string(v))
            return err_set(e, ERR_INVALID, "`grammar.value` must be a string for type regex");
        rc = constraint_regex(json_string_value(v), json_string_length(v), &p->grammar, e);
    } else if (strcmp(t, "json") == 0 || strcmp(t, "json_schema") == 0) {
        json_t *parsed = NULL;
        if (json_is_string(v)) { /* TGI takes the schema as JSON text too */
            parsed = json_loadb(json_string_value(v), json_string_length(v), 0, NULL);
            if (!parsed)
                return err_set(e, ERR_INVALID, "`grammar.value` is not a JSON schema");
            v = parsed;
        }
        rc = constraint_schema(v, &p->grammar, e);
        json_decref(parsed);
    } else {
        return err_set(e, ERR_INVALID, "`grammar.type` must be \"json\" or \"regex\"");
    }
    return rc ? err_prefix(e, "`grammar`: ") : 0;
}

static int tgi_read(const json_t *obj, const struct gen_limits *lim, struct gen_params *p,
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
    int rc = tgi_fields(obj, lim, &r, p, e);
    if (!rc)
        rc = tgi_best_of(&r, lim, p, e);
    if (!rc)
        rc = tgi_sampling(&r, p, e);
    if (!rc)
        rc = tgi_rest(&r, lim, p, e);
    if (!rc)
        rc = tgi_grammar(obj, p, e);
    return rc;
}

int tgi_check_stream(const struct gen_params *p, struct err *e)
{
    if (p->best_of != 1)
        return err_set(e, ERR_INVALID, "`best_of` != 1 is not supported when streaming tokens");
    if (p->decoder_input_details)
        return err_set(e, ERR_INVALID,
                       "`decoder_input_details` == true is not supported when streaming tokens");
    return 0;
}

static int tgi_resolve_length(struct gen_params *p, size_t n_input, size_t max_input,
                              size_t max_total, struct err *e)
{
    if (p->max_new_tokens == 0 && max_total == 0)
        return err_set(e, ERR_INVALID, "`max_new_tokens` must be set");
    if (p->max_new_tokens == 0) /* TGI: whatever room is left */
        p->max_new_tokens = (uint32_t)(n_input < max_total ? max_total - n_input : 0);
    int rc = params_check_limits(p, n_input, max_input, max_total, e);
    if (rc)
        return rc;
    if (p->max_new_tokens == 0)
        return err_set(e, ERR_INVALID, "`inputs` must have less than %zu tokens. Given: %zu",
                       max_total, n_input);
    return 0;
}

const struct gen_api gen_api_tgi = {
    .name = "tgi",
    .dialect = DIALECT_TGI,
    .init = tgi_init,
    .unsupported = tgi_unsupported,
    .read = tgi_read,
    .resolve_length = tgi_resolve_length,
    .finish =
        {
            [GEN_FINISH_LENGTH] = "length",
            [GEN_FINISH_EOS] = "eos_token",
            [GEN_FINISH_STOP] = "stop_sequence",
        },
};
