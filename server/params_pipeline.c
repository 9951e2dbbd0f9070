/* params_pipeline: the transformers text-generation pipeline's parameters, the `parameters` of
 * Hugging Face POST /models/{name} and of `inferd run` (transformers' TextGenerationPipeline
 * and generate(), generation/utils.py and logits_process.py): generate()'s semantics. Every
 * unset value comes from generation_config.json, then transformers' GenerationConfig defaults
 * (do_sample false, temperature 1, top_k 50, top_p 1, typical_p 1, repetition_penalty 1,
 * max_length 20); the warpers apply only when do_sample is true, and are then validated with
 * transformers' messages ("`temperature` (=0.0) has to be a strictly positive float, ...").
 * return_full_text defaults to true. No stop strings. Without max_new_tokens, max_length caps
 * prompt + new tokens ("Input length of input_ids is ..." when the prompt fills it). Finish
 * reasons as OpenAI's ("length", "stop").
 *
 * Beam search (transformers 4.x, the only route that offers it): num_beams, num_return_sequences,
 * length_penalty, early_stopping (true, false, "never"), no_repeat_ngram_size, min_length,
 * min_new_tokens, forced_bos_token_id, forced_eos_token_id, bad_words_ids, with generation_config.json's values
 * as defaults and GenerationConfig.validate's messages. inferd's beam search is greedy (no beam
 * sampling), and it runs those length and n-gram processors in beam search only: asked for
 * without beams they are refused, as is a sampled num_return_sequences (bad_words_ids and the
 * forced BOS / EOS tokens run in every mode: sampling.c). See gen_api.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "gen_api.h"

/* transformers' GenerationConfig defaults. */
#define HF_DEFAULT_TOP_K 50
#define HF_DEFAULT_MAX_LENGTH 20

/* The most beams a request may ask for before the model's own limit (its max_batch_size, which
 * the scheduler checks) applies: bounds what a request makes the server allocate. */
#define PIPELINE_MAX_BEAMS 64
/* bad_words_ids: ids (and one length per sequence) a request may give */
#define PIPELINE_MAX_BAD_WORDS 4096

/* generate()'s arguments that inferd does not implement. */
static const struct params_refused refused[] = {
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
    if (cfg->has_num_beams)
        p->num_beams = clamp_u32(cfg->num_beams);
    if (cfg->has_num_return_sequences)
        p->num_return_sequences = clamp_u32(cfg->num_return_sequences);
    if (cfg->has_length_penalty)
        p->length_penalty = cfg->length_penalty;
    if (cfg->has_early_stopping)
        p->early_stopping = cfg->early_stopping;
    if (cfg->has_no_repeat_ngram_size)
        p->no_repeat_ngram_size = clamp_u32(cfg->no_repeat_ngram_size);
    if (cfg->has_min_length)
        p->min_length = clamp_u32(cfg->min_length);
    if (cfg->has_min_new_tokens)
        p->min_new_tokens = clamp_u32(cfg->min_new_tokens);
    p->forced_bos_token_id = (int32_t)cfg->forced_bos_token_id;
    p->forced_eos_token_id = (int32_t)cfg->forced_eos_token_id;
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

/* The processors inferd runs in beam search only, with the key that asks for one. */
static const char *beam_only(const struct gen_params *p)
{
    if (p->min_length > 0)
        return "min_length";
    if (p->min_new_tokens > 0)
        return "min_new_tokens";
    if (p->no_repeat_ngram_size > 0)
        return "no_repeat_ngram_size";
    return NULL;
}

/* GenerationConfig.validate's beam checks, then what inferd's beam search does not do. */
static int validate_beams(const struct gen_params *p, struct err *e)
{
    if (p->num_return_sequences != 1) {
        if (p->num_beams == 1 && !p->do_sample)
            return err_set(e, ERR_INVALID,
                           "Greedy methods without beam search do not support "
                           "`num_return_sequences` different than 1 (got %u).",
                           p->num_return_sequences);
        if (p->num_beams == 1)
            return err_set(e, ERR_INVALID,
                           "`num_return_sequences` is not supported with sampling: inferd "
                           "returns several sequences from beam search only (num_beams > 1)");
        if (p->num_return_sequences > p->num_beams)
            return err_set(e, ERR_INVALID,
                           "`num_return_sequences` (%u) has to be smaller or equal to `num_beams` "
                           "(%u).",
                           p->num_return_sequences, p->num_beams);
    }
    if (p->num_beams > 1 && p->do_sample)
        return err_set(e, ERR_INVALID,
                       "`do_sample` with `num_beams` > 1 (beam sampling) is not supported: "
                       "inferd's beam search is greedy; set `do_sample` to false");
    const char *key = p->num_beams == 1 ? beam_only(p) : NULL;
    if (key)
        return err_set(e, ERR_INVALID,
                       "`%s` is not supported without beam search: inferd applies it in beam "
                       "search only (set `num_beams` > 1)",
                       key);
    return 0;
}

/* generate()'s checks for the warpers it builds (only when sampling), the penalty and beam
 * search. */
static int pipeline_validate(struct gen_params *p, struct err *e)
{
    char num[64];
    int rc = validate_beams(p, e);
    if (rc)
        return rc;
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

/* A count (num_beams, num_return_sequences: >= 1, at most max) or a size (>= 0: min_length,
 * min_new_tokens, no_repeat_ngram_size; min 0); unchanged when absent. */
static int get_count(const json_t *o, const char *key, int64_t min, int64_t max, uint32_t *out,
                     struct err *e)
{
    int64_t v;
    bool found;
    int rc = params_int(o, key, &v, &found, e);
    if (rc || !found)
        return rc;
    if (v < min || v > max)
        return err_set(e, ERR_INVALID, "`%s` must be an integer in [%lld, %lld], but is %lld",
                       key, (long long)min, (long long)max, (long long)v);
    *out = (uint32_t)v;
    return 0;
}

/* forced_bos_token_id / forced_eos_token_id: a token id (the model checks its vocabulary). */
static int get_token_id(const json_t *o, const char *key, int32_t *out, struct err *e)
{
    int64_t v;
    bool found;
    int rc = params_int(o, key, &v, &found, e);
    if (rc || !found)
        return rc;
    if (v < 0 || v > INT32_MAX)
        return err_set(e, ERR_INVALID, "`%s` must be a token id, but is %lld", key,
                       (long long)v);
    *out = (int32_t)v;
    return 0;
}

static int get_early_stopping(const json_t *o, enum gen_early_stopping *out, struct err *e)
{
    const json_t *v = json_object_get(o, "early_stopping");
    if (!v || json_is_null(v))
        return 0;
    if (json_is_boolean(v))
        *out = json_is_true(v) ? GEN_EARLY_STOP_TRUE : GEN_EARLY_STOP_FALSE;
    else if (json_is_string(v) && strcmp(json_string_value(v), "never") == 0)
        *out = GEN_EARLY_STOP_NEVER;
    else
        return err_set(e, ERR_INVALID, "`early_stopping` must be a boolean or 'never'");
    return 0;
}

/* bad_words_ids: a non-empty list of non-empty lists of token ids (NoBadWordsLogitsProcessor's
 * checks), kept as gen_params' length-prefixed sequences. */
static int get_bad_words(const json_t *o, struct gen_params *p, struct err *e)
{
    const json_t *v = json_object_get(o, "bad_words_ids");
    if (!v || json_is_null(v))
        return 0;
    size_t total = 0;
    if (!json_is_array(v) || json_array_size(v) == 0)
        return err_set(e, ERR_INVALID, "`bad_words_ids` has to be a non-empty list");
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *w = json_array_get(v, i);
        if (!json_is_array(w) || json_array_size(w) == 0)
            return err_set(e, ERR_INVALID,
                           "`bad_words_ids` has to be a list of non-empty lists of token ids");
        for (size_t k = 0; k < json_array_size(w); k++) {
            const json_t *id = json_array_get(w, k);
            if (!json_is_integer(id) || json_integer_value(id) < 0 ||
                json_integer_value(id) > INT32_MAX)
                return err_set(e, ERR_INVALID,
                               "Each list in `bad_words_ids` has to be a list of positive "
                               "integers (`bad_words_ids`[%zu][%zu])",
                               i, k);
        }
        total += 1 + json_array_size(w);
    }
    if (total > PIPELINE_MAX_BAD_WORDS)
        return err_set(e, ERR_INVALID, "`bad_words_ids` holds more than %d ids",
                       PIPELINE_MAX_BAD_WORDS);
    int32_t buf[PIPELINE_MAX_BAD_WORDS];
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *w = json_array_get(v, i);
        buf[n++] = (int32_t)json_array_size(w);
        for (size_t k = 0; k < json_array_size(w); k++)
            buf[n++] = (int32_t)json_integer_value(json_array_get(w, k));
    }
    return gen_params_set_bad_words(p, buf, n, e);
}

static int read_beams(const json_t *o, struct gen_params *p, struct err *e)
{
    bool found;
    int rc = get_count(o, "num_beams", 1, PIPELINE_MAX_BEAMS, &p->num_beams, e);
    if (!rc)
        rc = get_count(o, "num_return_sequences", 1, PIPELINE_MAX_BEAMS,
                       &p->num_return_sequences, e);
    if (!rc)
        rc = params_num(o, "length_penalty", &p->length_penalty, &found, e);
    if (!rc)
        rc = get_early_stopping(o, &p->early_stopping, e);
    if (!rc)
        rc = get_count(o, "no_repeat_ngram_size", 0, INT32_MAX, &p->no_repeat_ngram_size, e);
    if (!rc)
        rc = get_count(o, "min_length", 0, INT32_MAX, &p->min_length, e);
    if (!rc)
        rc = get_count(o, "min_new_tokens", 0, INT32_MAX, &p->min_new_tokens, e);
    if (!rc)
        rc = get_token_id(o, "forced_bos_token_id", &p->forced_bos_token_id, e);
    if (!rc)
        rc = get_token_id(o, "forced_eos_token_id", &p->forced_eos_token_id, e);
    if (!rc)
        rc = get_bad_words(o, p, e);
    return rc;
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
        rc = read_beams(o, p, e);
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
