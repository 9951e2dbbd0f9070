/* params_pipeline: the transformers text-generation pipeline's parameters, the `parameters` of
 * Hugging Face POST /models/{name} and of `inferd run` (transformers' TextGenerationPipeline
 * and generate(), generation/utils.py and logits_process.py): generate()'s semantics. Every
 * unset value comes from generation_config.json, then transformers' GenerationConfig defaults
 * (do_sample false, temperature 1, top_k 50, top_p 1, typical_p 1, repetition_penalty 1,
 * max_length 20); the warpers apply only when do_sample is true, and are then validated with
 * transformers' messages ("`temperature` (=0.0) has to be a strictly positive float, ...").
 * return_full_text defaults to true. No stop strings. Without max_new_tokens, max_length caps
 * prompt + new tokens ("Input length of input_ids is ..." when the prompt fills it). Finish
 * reasons as OpenAI's ("length", "stop"). See gen_api.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "gen_api.h"

/* transformers' GenerationConfig defaults. */
#define HF_DEFAULT_TOP_K 50
#define HF_DEFAULT_MAX_LENGTH 20

/* 1 (num_beams, num_return_sequences) */
static bool is_one(const json_t *v, const json_t *obj)
{
    (void)obj;
    return json_is_number(v) && json_number_value(v) == 1;
}

/* generate()'s arguments that inferd does not implement. */
static const struct params_refused refused[] = {
    {"num_return_sequences", is_one, "several sequences per input"},
    {"num_beams", is_one, "beam search"},
    {"min_new_tokens", params_is_zero, "a minimum generation length"},
    {"min_length", params_is_zero, "a minimum generation length"},
    {"no_repeat_ngram_size", params_is_zero, "n-gram blocking"},
    {"bad_words_ids", params_is_empty, "banned words"},
    {"prefix", params_is_empty, "a prompt prefix"},
};

static int pipeline_unsupported(const json_t *obj, const char **key, struct err *e)
{
    return params_refuse(refused, sizeof refused / sizeof refused[0], obj, key, e);
}

static uint32_t clamp_u32(int64_t v)
{
    return (uint32_t)(v > UINT32_MAX ? UINT32_MAX : v);
}

/* generate(): generation_config first, then GenerationConfig's own defaults */
static void pipeline_init(struct gen_params *p, const struct gen_config *cfg)
{
    p->stop_mode = GEN_STOP_CUT;
    p->logprobs_mode = GEN_LOGPROBS_PROCESSED;
    p->return_full_text = true;
    p->top_k = HF_DEFAULT_TOP_K;
    p->max_length = HF_DEFAULT_MAX_LENGTH;
    if (!cfg)
        return;
    p->do_sample = cfg->has_do_sample && cfg->do_sample;
    if (cfg->has_temperature)
        p->temperature = cfg->temperature;
    if (cfg->has_top_p)
        p->top_p = cfg->top_p;
    if (cfg->has_typical_p)
        p->typical_p = cfg->typical_p;
    if (cfg->has_repetition_penalty)
        p->repetition_penalty = cfg->repetition_penalty;
    if (cfg->has_top_k)
        p->top_k = (int32_t)cfg->top_k;
    if (cfg->has_max_length)
        p->max_length = clamp_u32(cfg->max_length);
    if (cfg->has_max_new_tokens)
        p->max_new_tokens = clamp_u32(cfg->max_new_tokens);
}

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

/* A positive length (max_new_tokens, max_length) with transformers' message; 0 when absent. */
static int get_length(const json_t *o, const char *key, uint32_t *out, struct err *e)
{
    int64_t v;
    bool found;
    int rc = params_int(o, key, &v, &found, e);
    if (rc || !found)
        return rc;
    if (v <= 0 || v > UINT32_MAX)
        return err_set(e, ERR_INVALID, "`%s` must be greater than 0, but is %lld.", key,
                       (long long)v);
    *out = (uint32_t)v;
    return 0;
}

static int pipeline_read(const json_t *o, const struct gen_limits *lim, struct gen_params *p,
                         struct err *e)
{
    (void)lim;
    if (!o || json_is_null(o))
        return pipeline_validate(p, e);
    if (!json_is_object(o))
        return err_set(e, ERR_INVALID, "`parameters` must be an object");
    bool found;
    int64_t v;
    int rc = params_bool(o, "do_sample", &p->do_sample, e);
    if (!rc)
        rc = params_bool(o, "return_full_text", &p->return_full_text, e);
    if (!rc)
        rc = params_num(o, "temperature", &p->temperature, &found, e);
    if (!rc)
        rc = params_num(o, "top_p", &p->top_p, &found, e);
    if (!rc)
        rc = params_num(o, "typical_p", &p->typical_p, &found, e);
    if (!rc)
        rc = params_num(o, "repetition_penalty", &p->repetition_penalty, &found, e);
    if (!rc)
        rc = params_int(o, "top_k", &v, &found, e);
    if (rc)
        return rc;
    if (found)
        p->top_k = v < INT32_MIN ? INT32_MIN : v > INT32_MAX ? INT32_MAX : (int32_t)v;
    rc = get_length(o, "max_new_tokens", &p->max_new_tokens, e);
    if (!rc)
        rc = get_length(o, "max_length", &p->max_length, e);
    if (!rc)
        rc = params_int(o, "seed", &v, &found, e);
    if (rc)
        return rc;
    p->seed_given = found;
    p->seed = found ? (uint64_t)v : gen_seed_random();
    return pipeline_validate(p, e);
}

/* Without max_new_tokens, max_length (20 by default) covers the prompt too; then the server's
 * limits, with TGI's messages. */
static int pipeline_resolve(struct gen_params *p, size_t n_input, size_t max_input,
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
    return params_check_limits(p, n_input, max_input, max_total, e);
}

const struct gen_api gen_api_pipeline = {
    .name = "pipeline",
    .dialect = DIALECT_HF,
    .init = pipeline_init,
    .unsupported = pipeline_unsupported,
    .read = pipeline_read,
    .resolve_length = pipeline_resolve,
    .finish =
        {
            [GEN_FINISH_LENGTH] = "length",
            [GEN_FINISH_EOS] = "stop",
            [GEN_FINISH_STOP] = "stop",
        },
};
