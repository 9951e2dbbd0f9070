/* test_gen_params: the API dialects' generation parameters (server/params*.c: TGI, OpenAI chat
 * and completions, the transformers pipeline): TGI's validation messages and order
 * (router/src/validation.rs), the OpenAI/vLLM and transformers-pipeline rules, each dialect's
 * defaults, the keys each refuses, the length resolution with each dialect's messages, and
 * generation_config.json loading (engine/generate/gen_config.c) with the defaults each dialect
 * takes from it. Part of the generate suite (tcase "params"). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen_api.h"
#include "suites.h"
#include "support/support.h"

static json_t *J(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    ck_assert_msg(j != NULL, "bad test JSON %s: %s", text, je.text);
    return j;
}

/* Parses text (NULL: no object) in dialect d; expects success. */
static void parse_ok(const struct gen_api *d, const char *text, const struct gen_config *cfg,
                     struct gen_params *p)
{
    json_t *j = text ? J(text) : NULL;
    struct err e = {0};
    int rc = gen_api_parse(d, j, cfg, NULL, p, &e);
    ck_assert_msg(rc == 0, "%s: %s", text ? text : "(none)", e.msg);
    json_decref(j);
}

/* Expects ERR_INVALID with exactly msg. */
static void parse_err(const struct gen_api *d, const char *text, const char *msg)
{
    json_t *j = J(text);
    struct err e = {0};
    struct gen_params p;
    struct gen_limits lim = gen_limits_default();
    lim.max_input_tokens = 1000;
    int rc = gen_api_parse(d, j, NULL, &lim, &p, &e);
    gen_params_fini(&p);
    json_decref(j);
    ck_assert_msg(rc == ERR_INVALID, "%s: rc %d, want ERR_INVALID", text, rc);
    ck_assert_msg(strcmp(e.msg, msg) == 0, "%s: message '%s', want '%s'", text, e.msg, msg);
}

/* ---- params ---- */

START_TEST(tgi_defaults)
{
    struct gen_params p;
    parse_ok(&gen_api_tgi, "{}", NULL, &p);
    ck_assert(!p.do_sample);
    ck_assert(p.temperature == 1.0 && p.top_p == 1.0 && p.typical_p == 1.0);
    ck_assert(p.top_k == 0 && p.repetition_penalty == 1.0 && p.frequency_penalty == 0.0);
    ck_assert_uint_eq(p.max_new_tokens, 0); /* resolved from max_total_tokens later */
    ck_assert(!p.return_full_text && !p.details && p.best_of == 1 && !p.seed_given);
    ck_assert_int_eq(p.stop_mode, GEN_STOP_SUFFIX_KEEP);
    ck_assert_int_eq(p.logprobs_mode, GEN_LOGPROBS_PROCESSED);
    gen_params_fini(&p);
    /* no `parameters` at all: TGI's default_parameters() samples */
    parse_ok(&gen_api_tgi, NULL, NULL, &p);
    ck_assert(p.do_sample);
    gen_params_fini(&p);
    /* each warper turns sampling on */
    const char *on[] = {"{\"temperature\": 0.7}", "{\"top_k\": 10}", "{\"top_p\": 0.9}",
                        "{\"typical_p\": 0.5}", "{\"temperature\": 1.0}"};
    for (size_t i = 0; i < sizeof on / sizeof on[0]; i++) {
        parse_ok(&gen_api_tgi, on[i], NULL, &p);
        ck_assert_msg(p.do_sample, "%s", on[i]);
        gen_params_fini(&p);
    }
    parse_ok(&gen_api_tgi,
             "{\"max_new_tokens\": 20, \"stop\": [\"\\n\\n\", \"END\"], \"seed\": 42, "
             "\"details\": true, \"top_n_tokens\": 5, \"truncate\": 512, \"return_full_text\": "
             "true, \"repetition_penalty\": 1.1, \"frequency_penalty\": -0.5, \"best_of\": 1, "
             "\"do_sample\": true, \"grammar\": null, \"adapter_id\": null, \"watermark\": "
             "false}",
             NULL, &p);
    ck_assert_uint_eq(p.max_new_tokens, 20);
    ck_assert_uint_eq(p.n_stop, 2);
    ck_assert_str_eq(p.stop[0], "\n\n");
    ck_assert_uint_eq(p.stop_len[1], 3);
    ck_assert(p.seed_given && p.seed == 42 && p.details && p.return_full_text);
    ck_assert_uint_eq(p.top_n_tokens, 5);
    ck_assert_uint_eq(p.truncate, 512);
    ck_assert(p.repetition_penalty == 1.1 && p.frequency_penalty == -0.5 && p.best_of == 1);
    gen_params_fini(&p);
    parse_ok(&gen_api_tgi, "{\"best_of\": 2, \"top_p\": 0.5}", NULL, &p);
    ck_assert(p.best_of == 2 && p.do_sample && !p.seed_given);
    gen_params_fini(&p);
}
END_TEST

START_TEST(tgi_messages)
{
    const struct gen_api *t = &gen_api_tgi;
    parse_err(t, "{\"temperature\": 0}", "`temperature` must be strictly positive");
    parse_err(t, "{\"temperature\": -1.5}", "`temperature` must be strictly positive");
    parse_err(t, "{\"top_p\": 1.0}", "`top_p` must be > 0.0 and < 1.0");
    parse_err(t, "{\"top_p\": 0}", "`top_p` must be > 0.0 and < 1.0");
    parse_err(t, "{\"typical_p\": 1}", "`typical_p` must be > 0.0 and < 1.0");
    parse_err(t, "{\"top_k\": 0}", "`top_k` must be strictly positive");
    parse_err(t, "{\"repetition_penalty\": 0}", "`repetition_penalty` must be strictly positive");
    parse_err(t, "{\"frequency_penalty\": 2.5}", "`frequency_penalty` must be >= -2.0 and <= 2.0");
    parse_err(t, "{\"max_new_tokens\": 0}", "`max_new_tokens` must be strictly positive");
    parse_err(t, "{\"stop\": [\"a\", \"b\", \"c\", \"d\", \"e\"]}",
              "`stop` supports up to 4 stop sequences. Given: 5");
    parse_err(t,
              "{\"stop\": [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\", \"h\", \"i\", "
              "\"j\", \"k\", \"l\", \"m\", \"n\", \"o\", \"p\", \"q\"]}",
              "`stop` supports up to 4 stop sequences. Given: 17");
    parse_err(t, "{\"best_of\": 2}", "you must use sampling when `best_of` is > 1");
    parse_err(t, "{\"best_of\": 3, \"do_sample\": true}",
              "`best_of` must be > 0 and <= 2. Given: 3");
    parse_err(t, "{\"best_of\": 2, \"do_sample\": true, \"seed\": 1}",
              "`seed` must not be set when `best_of` > 1");
    parse_err(t, "{\"top_n_tokens\": 6}", "`top_n_tokens` must be >= 0 and <= 5. Given: 6");
    parse_err(t, "{\"truncate\": 0}",
              "`truncate` must be strictly positive and less than 1000. Given: 0");
    parse_err(t, "{\"truncate\": 1001}",
              "`truncate` must be strictly positive and less than 1000. Given: 1001");
    /* TGI's order: temperature is checked before top_p, top_p before top_k */
    parse_err(t, "{\"top_p\": 1.5, \"temperature\": 0}", "`temperature` must be strictly positive");
    parse_err(t, "{\"top_k\": -1, \"top_p\": 1.5}", "`top_p` must be > 0.0 and < 1.0");
    /* wrong JSON types name the field */
    parse_err(t, "{\"temperature\": \"hot\"}", "`temperature` must be a number");
    parse_err(t, "{\"max_new_tokens\": 2.5}", "`max_new_tokens` must be an integer");
    parse_err(t, "{\"do_sample\": 1}", "`do_sample` must be true or false");
    parse_err(t, "{\"stop\": \"x\"}", "`stop` must be a list of strings");
    parse_err(t, "{\"stop\": [\"x\", 3]}", "`stop`[1] must be a string");
    parse_err(t, "{\"stop\": [\"\"]}", "`stop` sequences must not be empty");
    parse_err(t, "[1]", "`parameters` must be an object");

    struct gen_params p;
    parse_ok(t, "{\"best_of\": 2, \"top_k\": 5}", NULL, &p);
    struct err e = {0};
    ck_assert_int_eq(tgi_check_stream(&p, &e), ERR_INVALID);
    ck_assert_str_eq(e.msg, "`best_of` != 1 is not supported when streaming tokens");
    gen_params_fini(&p);
    parse_ok(t, "{\"decoder_input_details\": true}", NULL, &p);
    ck_assert_int_eq(tgi_check_stream(&p, &e), ERR_INVALID);
    ck_assert_str_eq(e.msg,
                     "`decoder_input_details` == true is not supported when streaming tokens");
    gen_params_fini(&p);
}
END_TEST

/* What the reference APIs define and inferd does not do is refused naming the key, its
 * neutral values pass, metadata and unknown keys are ignored. */
START_TEST(unsupported_refused)
{
    const struct gen_api *t = &gen_api_tgi, *c = &gen_api_chat, *k = &gen_api_completions;
    parse_err(t, "{\"watermark\": true}",
              "`watermark` is not supported: inferd does not implement watermarking");
    parse_err(c, "{\"functions\": []}",
              "`functions` is not supported: inferd does not implement function calling");
    parse_err(k, "{\"best_of\": 2, \"n\": 1}",
              "`best_of` is not supported: inferd does not implement best_of other than n");
    /* chat's keys are not completions' and the reverse (tools there is an unknown key) */
    struct gen_params p;
    parse_ok(k, "{\"tools\": [{}]}", NULL, &p);
    gen_params_fini(&p);
    parse_ok(c, "{\"suffix\": \"x\"}", NULL, &p);
    gen_params_fini(&p);
    parse_ok(k,
             "{\"best_of\": 3, \"n\": 3, \"logit_bias\": {}, \"suffix\": \"\", \"user\": \"u\", "
             "\"metadata\": {\"a\": \"b\"}, \"response_format\": {\"type\": \"text\"}, "
             "\"modalities\": [\"text\"], \"future_key\": 1}",
             NULL, &p);
    gen_params_fini(&p);
    /* tools and tool_choice are the route's (tool_calls.c), not generation parameters */
    parse_ok(c, "{\"tool_choice\": \"required\", \"function_call\": \"none\", \"tools\": [{}]}",
             NULL, &p);
    gen_params_fini(&p);
    const char *key = NULL;
    json_t *j = J("{\"user\": \"u\", \"logit_bias\": {\"1\": 5}}");
    ck_assert_int_eq(gen_api_unsupported(k, j, &key, NULL), ERR_INVALID);
    ck_assert_str_eq(key, "logit_bias");
    json_decref(j);
}
END_TEST

START_TEST(lengths)
{
    struct gen_params p;
    struct err e = {0};
    parse_ok(&gen_api_tgi, "{}", NULL, &p);
    ck_assert_int_eq(gen_api_resolve_length(&gen_api_tgi, &p, 30, 50, 100, &e), 0);
    ck_assert_uint_eq(p.max_new_tokens, 70); /* the room left */
    gen_params_fini(&p);
    parse_ok(&gen_api_tgi, "{\"max_new_tokens\": 80}", NULL, &p);
    ck_assert_int_eq(gen_api_resolve_length(&gen_api_tgi, &p, 30, 50, 100, &e), ERR_INVALID);
    ck_assert_str_eq(e.msg, "`inputs` tokens + `max_new_tokens` must be <= 100. Given: 30 "
                            "`inputs` tokens and 80 `max_new_tokens`");
    ck_assert_int_eq(gen_api_resolve_length(&gen_api_tgi, &p, 60, 50, 1000, &e), ERR_INVALID);
    ck_assert_str_eq(e.msg, "`inputs` must have less than 50 tokens. Given: 60");
    gen_params_fini(&p);
    /* the pipeline: max_length 20 (transformers' default) covers the prompt too */
    parse_ok(&gen_api_pipeline, "{}", NULL, &p);
    ck_assert_int_eq(gen_api_resolve_length(&gen_api_pipeline, &p, 5, 0, 0, &e), 0);
    ck_assert_uint_eq(p.max_new_tokens, 15);
    gen_params_fini(&p);
    parse_ok(&gen_api_pipeline, "{}", NULL, &p);
    ck_assert_int_eq(gen_api_resolve_length(&gen_api_pipeline, &p, 25, 0, 0, &e), ERR_INVALID);
    ck_assert_msg(
        strncmp(e.msg, "Input length of input_ids is 25, but `max_length` is set to 20.", 60) == 0,
        "%s", e.msg);
    gen_params_fini(&p);
    parse_ok(&gen_api_completions, "{}", NULL, &p);
    ck_assert_int_eq(gen_api_resolve_length(&gen_api_completions, &p, 10, 0, 2048, &e), 0);
    ck_assert_uint_eq(p.max_new_tokens, 16); /* OpenAI's completions default */
    gen_params_fini(&p);
    parse_ok(&gen_api_chat, "{\"max_tokens\": 100}", NULL, &p);
    ck_assert_int_eq(gen_api_resolve_length(&gen_api_chat, &p, 1000, 0, 1024, &e), ERR_INVALID);
    ck_assert_msg(strstr(e.msg, "maximum context length is 1024 tokens") != NULL, "%s", e.msg);
    gen_params_fini(&p);
}
END_TEST

START_TEST(openai_params)
{
    struct gen_params p;
    const struct gen_api *c = &gen_api_chat;
    parse_ok(c, "{\"model\": \"m\", \"messages\": []}", NULL, &p);
    ck_assert(p.do_sample && p.temperature == 1.0 && p.top_p == 1.0 && p.n == 1);
    ck_assert_int_eq(p.stop_mode, GEN_STOP_CUT);
    ck_assert_int_eq(p.logprobs_mode, GEN_LOGPROBS_RAW);
    gen_params_fini(&p);
    parse_ok(c, "{\"temperature\": 0, \"top_p\": 1.0, \"stop\": \"\\n\", \"seed\": -3}", NULL, &p);
    ck_assert(!p.do_sample); /* temperature 0 = greedy */
    ck_assert(p.top_p == 1.0 && p.n_stop == 1 && p.seed_given && p.seed == (uint64_t)-3);
    gen_params_fini(&p);
    parse_ok(c,
             "{\"max_tokens\": 5, \"max_completion_tokens\": 7, \"n\": 3, \"logprobs\": true, "
             "\"top_logprobs\": 4, \"stream\": true, \"stream_options\": {\"include_usage\": "
             "true}, \"top_k\": -1, \"repetition_penalty\": 1.2, \"presence_penalty\": -2, "
             "\"ignore_eos\": true, \"stop_token_ids\": [7, 9], "
             "\"include_stop_str_in_output\": true}",
             NULL, &p);
    ck_assert_uint_eq(p.max_new_tokens, 7);
    ck_assert(p.n == 3 && p.logprobs && p.top_n_tokens == 4 && p.stream && p.include_usage);
    ck_assert(p.top_k == 0 && p.repetition_penalty == 1.2 && p.presence_penalty == -2.0);
    ck_assert(p.ignore_eos && p.n_eos_token_ids == 2 && p.eos_token_ids[1] == 9);
    ck_assert_int_eq(p.stop_mode, GEN_STOP_CUT_AFTER);
    gen_params_fini(&p);
    parse_err(c, "{\"temperature\": 2.5}", "`temperature` must be >= 0.0 and <= 2.0");
    parse_err(c, "{\"top_p\": 0}", "`top_p` must be > 0.0 and <= 1.0");
    parse_err(c, "{\"max_tokens\": 0}", "`max_tokens` must be at least 1");
    parse_err(c, "{\"max_completion_tokens\": -1}", "`max_completion_tokens` must be at least 1");
    parse_err(c, "{\"n\": 0}", "`n` must be >= 1 and <= 8");
    parse_err(c, "{\"presence_penalty\": -2.1}", "`presence_penalty` must be >= -2.0 and <= 2.0");
    parse_err(c, "{\"stop\": [\"a\", \"b\", \"c\", \"d\", \"e\"]}",
              "`stop` supports up to 4 stop sequences. Given: 5");
    parse_err(c, "{\"stop\": 5}", "`stop` must be a string or a list of strings");
    parse_err(c, "{\"top_logprobs\": 2}", "`top_logprobs` requires `logprobs` to be true");
    parse_ok(c, "{\"top_logprobs\": 0}", NULL, &p); /* 0 needs no logprobs (vLLM) */
    ck_assert(!p.logprobs && p.top_n_tokens == 0);
    gen_params_fini(&p);
    parse_err(c, "{\"logprobs\": true, \"top_logprobs\": 21}",
              "`top_logprobs` must be >= 0 and <= 20");
    parse_err(c, "{\"stream_options\": {\"include_usage\": true}}",
              "`stream_options` can only be set when `stream` is true");
    parse_err(c, "{\"top_k\": -2}", "`top_k` must be -1 or 0 (disabled), or at least 1");
    /* completions: logprobs is a count, echo returns the prompt */
    parse_ok(&gen_api_completions, "{\"logprobs\": 3, \"echo\": true}", NULL, &p);
    ck_assert(p.logprobs && p.top_n_tokens == 3 && p.return_full_text);
    gen_params_fini(&p);
    parse_err(&gen_api_completions, "{\"logprobs\": 6}", "`logprobs` must be >= 0 and <= 5");
    /* response_format: TGI's {"type", "value"} (huggingface_hub's chat_completion) is the
     * schema, as an object or its text; plain json_object has a grammar too */
    static const char *const tgi_forms[] = {
        "{\"response_format\": {\"type\": \"json_object\", "
        "\"value\": {\"type\": \"integer\"}}}",
        "{\"response_format\": {\"type\": \"json\", "
        "\"value\": \"{\\\"type\\\": \\\"boolean\\\"}\"}}",
        "{\"response_format\": {\"type\": \"json_object\"}}",
    };
    for (size_t i = 0; i < sizeof tgi_forms / sizeof tgi_forms[0]; i++) {
        parse_ok(c, tgi_forms[i], NULL, &p);
        ck_assert_msg(p.grammar != NULL, "%s: no grammar", tgi_forms[i]);
        gen_params_fini(&p);
    }
    parse_err(c, "{\"response_format\": {\"type\": \"json_object\", \"value\": \"{x\"}}",
              "`response_format`: `value` is not a JSON schema");
}
END_TEST

START_TEST(config_defaults)
{
    /* gpt2-lm's generation_config.json (as transformers saved it) */
    struct gen_config cfg;
    struct err e = {0};
    ck_assert_msg(gen_config_load(fixture_model("gpt2-lm"), &cfg, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(cfg.n_eos_token_ids, 1);
    ck_assert_int_eq(cfg.eos_token_ids[0], 50256);
    ck_assert_int_eq(cfg.bos_token_id, 50256);
    ck_assert(!cfg.has_temperature && !cfg.has_do_sample && !cfg.has_top_k);
    /* a directory without the file: nothing set, no error */
    ck_assert_int_eq(gen_config_load(temp_dir(), &cfg, &e), 0);
    ck_assert_uint_eq(cfg.n_eos_token_ids, 0);
    int64_t from_config[] = {2};
    gen_config_fallback_eos(&cfg, from_config, 1);
    ck_assert(cfg.n_eos_token_ids == 1 && cfg.eos_token_ids[0] == 2);
    const char *bad = "{\"temperature\": \"warm\"}";
    ck_assert_int_eq(gen_config_parse(bad, strlen(bad), "g.json", &cfg, &e), ERR_FORMAT);
    ck_assert_str_eq(e.msg, "g.json: 'temperature' must be a number");

    /* a Llama 3-like config: the dialects take different parts of it */
    const char *llama = "{\"do_sample\": true, \"temperature\": 0.6, \"top_p\": 0.9, "
                        "\"eos_token_id\": [128001, 128008, 128009], \"max_length\": 4096}";
    ck_assert_int_eq(gen_config_parse(llama, strlen(llama), "l.json", &cfg, &e), 0);
    ck_assert_uint_eq(cfg.n_eos_token_ids, 3);
    struct gen_params p;
    parse_ok(&gen_api_chat, "{}", &cfg, &p); /* vLLM: the config's sampling defaults */
    ck_assert(p.do_sample && p.temperature == 0.6 && p.top_p == 0.9 && p.top_k == 0);
    ck_assert(p.n_eos_token_ids == 3 && p.eos_token_ids[2] == 128009);
    gen_params_fini(&p);
    parse_ok(&gen_api_chat, "{\"temperature\": 0.2}", &cfg, &p); /* the request wins */
    ck_assert(p.temperature == 0.2 && p.top_p == 0.9);
    gen_params_fini(&p);
    parse_ok(&gen_api_tgi, "{}", &cfg, &p); /* TGI: only the eos ids */
    ck_assert(!p.do_sample && p.temperature == 1.0 && p.top_p == 1.0 && p.n_eos_token_ids == 3);
    gen_params_fini(&p);
    parse_ok(&gen_api_pipeline, "{}", &cfg, &p); /* generate(): config, then HF defaults */
    ck_assert(p.do_sample && p.temperature == 0.6 && p.top_k == 50 && p.max_length == 4096);
    ck_assert(p.return_full_text);
    gen_params_fini(&p);
}
END_TEST

START_TEST(pipeline_params)
{
    struct gen_params p;
    const struct gen_api *d = &gen_api_pipeline;
    parse_ok(d, "{\"max_new_tokens\": 16, \"do_sample\": false}", NULL, &p);
    ck_assert(!p.do_sample && p.max_new_tokens == 16 && p.top_k == 50);
    gen_params_fini(&p);
    /* greedy: the warpers are neither built nor checked */
    parse_ok(d, "{\"temperature\": 0, \"top_p\": -1}", NULL, &p);
    ck_assert(!p.do_sample);
    gen_params_fini(&p);
    parse_err(d, "{\"do_sample\": true, \"temperature\": 0}",
              "`temperature` (=0.0) has to be a strictly positive float, otherwise your next "
              "token scores will be invalid. If you're looking for greedy decoding strategies, "
              "set `do_sample=False`.");
    parse_err(d, "{\"do_sample\": true, \"temperature\": -0.5}",
              "`temperature` (=-0.5) has to be a strictly positive float, otherwise your next "
              "token scores will be invalid.");
    parse_err(d, "{\"do_sample\": true, \"top_k\": -3}",
              "`top_k` has to be a strictly positive integer, but is -3");
    parse_err(d, "{\"do_sample\": true, \"typical_p\": 0}",
              "`typical_p` has to be a float > 0 and < 1, but is 0.0");
    parse_err(d, "{\"repetition_penalty\": 0}",
              "`penalty` has to be a strictly positive float, but is 0.0");
    parse_err(d, "{\"max_new_tokens\": 0}", "`max_new_tokens` must be greater than 0, but is 0.");
}
END_TEST

/* Beam defaults: bart-s2s's generation_config.json as transformers 4.57 saved it (like
 * distilbart-cnn's), config.json's generation keys when there is no generation_config.json
 * (GenerationConfig.from_model_config), task_specific_params over them; the pipeline takes
 * them, TGI and OpenAI do not. */
START_TEST(beam_config)
{
    struct gen_config cfg;
    struct err e = {0};
    char dir[512];
    snprintf(dir, sizeof dir, "%s/models/bart-s2s", fixture_dir("models-issue16-beams.tar.xz"));
    ck_assert_msg(gen_config_load(dir, &cfg, &e) == 0, "%s", e.msg);
    ck_assert(cfg.has_num_beams && cfg.num_beams == 4 && cfg.length_penalty == 2.0);
    ck_assert(cfg.min_length == 5 && cfg.no_repeat_ngram_size == 3);
    ck_assert_int_eq(cfg.early_stopping, GEN_EARLY_STOP_TRUE);
    ck_assert(cfg.forced_bos_token_id == 0 && cfg.forced_eos_token_id == 2);
    struct gen_params p;
    parse_ok(&gen_api_pipeline, "{}", &cfg, &p);
    ck_assert(p.num_beams == 4 && p.length_penalty == 2.0 && p.min_length == 5);
    ck_assert(p.no_repeat_ngram_size == 3 && p.early_stopping == GEN_EARLY_STOP_TRUE);
    ck_assert(p.forced_bos_token_id == 0 && p.forced_eos_token_id == 2);
    gen_params_fini(&p);
    parse_ok(&gen_api_pipeline, "{\"num_beams\": 2, \"early_stopping\": \"never\"}", &cfg, &p);
    ck_assert(p.num_beams == 2 && p.early_stopping == GEN_EARLY_STOP_NEVER);
    gen_params_fini(&p);
    /* without beams the processors it would need are refused, not skipped */
    json_t *one = J("{\"num_beams\": 1}");
    ck_assert_int_eq(gen_api_parse(&gen_api_pipeline, one, &cfg, NULL, &p, &e), ERR_INVALID);
    ck_assert_str_eq(e.msg, "`min_length` is not supported without beam search: inferd applies "
                            "it in beam search only (set `num_beams` > 1)");
    gen_params_fini(&p);
    json_decref(one);
    parse_ok(&gen_api_tgi, "{}", &cfg, &p);
    ck_assert(p.num_beams == 1 && p.min_length == 0 && p.forced_eos_token_id == -1);
    gen_params_fini(&p);
    parse_ok(&gen_api_chat, "{}", &cfg, &p);
    ck_assert(p.num_beams == 1 && p.no_repeat_ngram_size == 0);
    gen_params_fini(&p);
    /* config.json's keys when there is no generation_config.json */
    const char *tmp = temp_dir();
    char path[600];
    snprintf(path, sizeof path, "%s/config.json", tmp);
    FILE *f = fopen(path, "w");
    ck_assert(f);
    fputs("{\"model_type\": \"x\", \"num_beams\": 3, \"early_stopping\": \"never\", "
          "\"eos_token_id\": 7, \"task_specific_params\": {}}",
          f);
    fclose(f);
    ck_assert_msg(gen_config_load(tmp, &cfg, &e) == 0, "%s", e.msg);
    ck_assert(cfg.num_beams == 3 && cfg.early_stopping == GEN_EARLY_STOP_NEVER);
    ck_assert(cfg.n_eos_token_ids == 1 && cfg.eos_token_ids[0] == 7);
    /* task_specific_params over it: only what the entry sets changes */
    json_t *task = J("{\"num_beams\": 5, \"min_length\": 30, \"prefix\": \"summarize: \"}");
    ck_assert_int_eq(gen_config_update(&cfg, task, "task", &e), 0);
    ck_assert(cfg.num_beams == 5 && cfg.min_length == 30);
    ck_assert(cfg.early_stopping == GEN_EARLY_STOP_NEVER && cfg.eos_token_ids[0] == 7);
    json_decref(task);
    task = J("{\"early_stopping\": \"sometimes\"}");
    ck_assert_int_eq(gen_config_update(&cfg, task, "task", &e), ERR_FORMAT);
    ck_assert_str_eq(e.msg, "task: 'early_stopping' must be true, false or \"never\"");
    ck_assert(cfg.num_beams == 5); /* unchanged */
    json_decref(task);
}
END_TEST

/* The finish_reason each dialect gives a finished sequence. */
START_TEST(finish_names)
{
    ck_assert_str_eq(gen_api_finish(&gen_api_chat, GEN_FINISH_EOS), "stop");
    ck_assert_str_eq(gen_api_finish(&gen_api_tgi, GEN_FINISH_EOS), "eos_token");
    ck_assert_str_eq(gen_api_finish(&gen_api_tgi, GEN_FINISH_STOP), "stop_sequence");
    ck_assert_str_eq(gen_api_finish(&gen_api_completions, GEN_FINISH_LENGTH), "length");
    ck_assert_ptr_null(gen_api_finish(&gen_api_tgi, GEN_FINISH_NONE));
}
END_TEST

TCase *tcase_gen_params(void)
{
    TCase *tc = tcase_create("params");
    tcase_add_test(tc, tgi_defaults);
    tcase_add_test(tc, tgi_messages);
    tcase_add_test(tc, unsupported_refused);
    tcase_add_test(tc, lengths);
    tcase_add_test(tc, openai_params);
    tcase_add_test(tc, config_defaults);
    tcase_add_test(tc, pipeline_params);
    tcase_add_test(tc, beam_config);
    tcase_add_test(tc, finish_names);
    return tc;
}
