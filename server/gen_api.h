/* gen_api: the generation routes' request rules, one file per API dialect, each with its
 * reference server's defaults, checks, messages and finish-reason names:
 *
 *     params_tgi.c       gen_api_tgi          TGI's `parameters` (router/src/validation.rs)
 *     params_openai.c    gen_api_chat,        OpenAI's /v1/chat/completions and /v1/completions
 *                        gen_api_completions  bodies, as vLLM serves them
 *     params_pipeline.c  gen_api_pipeline     transformers' text-generation pipeline
 *
 * and what they share (gen_api.c): the typed JSON readers and their messages, the table of keys
 * a dialect defines and inferd refuses, the server limits, and the steps every dialect runs.
 * Each turns JSON into a struct gen_params (engine/generate/params.h), which the engine takes as
 * plain values; the engine parses no request. Each dialect is a row (struct gen_api) that the
 * generation calls carry (api_gen.h):
 *
 *     struct gen_limits lim = gen_limits_default();
 *     struct gen_params p;
 *     if (gen_api_parse(&gen_api_tgi, json_object_get(body, "parameters"), &cfg, &lim, &p,
 *                       &e) != 0)
 *         reply 422 with e.msg;                 // e.g. "`top_p` must be > 0.0 and < 1.0"
 *     gen_api_resolve_length(&gen_api_tgi, &p, n_prompt, max_input, max_total, &e);
 *     ... submit; at the end: gen_api_finish(&gen_api_tgi, finish) -> "eos_token" ...
 *     gen_params_fini(&p);
 *
 * Adding a dialect: a params_NAME.c with its row, its header comment citing the reference
 * server, and the row's name below. */
#ifndef INFERD_GEN_API_H
#define INFERD_GEN_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dialect.h"
#include "err.h"
#include "engine.h"

/* Server limits the validation needs (TGI's launcher flags). */
struct gen_limits {
    uint32_t max_stop_sequences; /* TGI --max-stop-sequences, default 4 (also OpenAI's limit);
                                    <= GEN_MAX_STOP */
    uint32_t max_top_n_tokens;   /* TGI --max-top-n-tokens, default 5 */
    uint32_t max_best_of;        /* TGI --max-best-of, default 2 */
    uint32_t max_input_tokens;   /* bounds TGI `truncate`; 0 = not checked */
    uint32_t max_n;              /* OpenAI `n`, default 8 */
};

struct gen_limits gen_limits_default(void);

/* One dialect's rules for a generation request. */
struct gen_api {
    const char *name;     /* "tgi", "chat", "completions", "pipeline" */
    enum dialect dialect; /* the dialect of its routes (error shapes, statuses) */
    /* The defaults with no request values, over gen_params_init's (cfg may be NULL). */
    void (*init)(struct gen_params *p, const struct gen_config *cfg);
    /* See gen_api_unsupported. */
    int (*unsupported)(const json_t *obj, const char **key, struct err *e);
    /* Reads and checks the request's values over init's (lim is never NULL). */
    int (*read)(const json_t *obj, const struct gen_limits *lim, struct gen_params *p,
                struct err *e);
    /* See gen_api_resolve_length. */
    int (*resolve_length)(struct gen_params *p, size_t n_input, size_t max_input_tokens,
                          size_t max_total_tokens, struct err *e);
    const char *finish[GEN_FINISH_STOP + 1]; /* finish_reason by enum gen_finish */
};

extern const struct gen_api gen_api_tgi, gen_api_chat, gen_api_completions, gen_api_pipeline;

/* The dialect's defaults with no request values (as gen_api_parse of an empty object, but with
 * seed 0 and not random). cfg may be NULL (no generation_config.json). */
void gen_api_init(const struct gen_api *a, struct gen_params *p, const struct gen_config *cfg);

/* Reads and validates params from obj (TGI: the `parameters` object or NULL; OpenAI: the whole
 * request body; pipeline: the `parameters` object or NULL). cfg may be NULL (no
 * generation_config.json); lim NULL is gen_limits_default(). Keys gen_api_unsupported refuses
 * are ERR_INVALID; unknown keys are ignored, as the reference servers do; JSON null is absent.
 * A wrong type or an invalid value is ERR_INVALID with a message naming the field; an output
 * constraint (OpenAI response_format, TGI grammar) that cannot be compiled is ERR_GEN_SCHEMA
 * (constraint.h). out needs gen_params_fini afterwards, also on failure. */
int gen_api_parse(const struct gen_api *a, const json_t *obj, const struct gen_config *cfg,
                  const struct gen_limits *lim, struct gen_params *out, struct err *e);

/* The first key of obj (TGI and pipeline: the `parameters` object; OpenAI: the whole body)
 * that the dialect's reference defines, inferd does not implement, and that asks for something
 * (OpenAI `logit_bias`, the pipeline's `prefix`, ...): ERR_INVALID
 * "`KEY` is not supported: inferd does not implement ...", *key (may be NULL) set to it. Null
 * and neutral values (watermark false, tool_choice "none", logit_bias {}) pass; metadata (user,
 * metadata, store) and unknown keys are not its business. gen_api_parse calls it first; the
 * HTTP layer may call it before, to name the key in its answer. The tables, with each key's
 * neutral value, are in the dialect files. */
int gen_api_unsupported(const struct gen_api *a, const json_t *obj, const char **key,
                        struct err *e);

/* Once the prompt is tokenized (n_input tokens, after truncation): sets max_new_tokens when it
 * was not given (TGI and OpenAI: the room left under max_total_tokens, completions 16 before
 * that; pipeline: generation_config's max_new_tokens, else max_length - n_input) and checks the
 * limits with the dialect's message: TGI "`inputs` tokens + `max_new_tokens` must be <= 2048.
 * Given: 2000 `inputs` tokens and 100 `max_new_tokens`" and "`inputs` must have less than 1024
 * tokens. Given: 1500"; OpenAI "This model's maximum context length is ..."; pipeline "Input
 * length of input_ids is ...". max_input_tokens or max_total_tokens 0 = no such limit.
 * ERR_INVALID when over. */
int gen_api_resolve_length(const struct gen_api *a, struct gen_params *p, size_t n_input,
                           size_t max_input_tokens, size_t max_total_tokens, struct err *e);

/* The dialect's finish_reason for f: TGI "length" | "eos_token" | "stop_sequence"; OpenAI and
 * pipeline "length" | "stop" | "stop"; NULL for GEN_FINISH_NONE. */
const char *gen_api_finish(const struct gen_api *a, enum gen_finish f);

/* TGI's streaming checks: best_of != 1 and decoder_input_details are refused on
 * /generate_stream ("`best_of` != 1 is not supported when streaming tokens"). */
int tgi_check_stream(const struct gen_params *p, struct err *e);

/* ---- for the dialect files (gen_api.c) ---- */

/* Typed getters: absent or null leaves *found false (bool: *out untouched) and returns 0; a
 * wrong type is ERR_INVALID "`KEY` must be a number" (an integer, true or false). */
int params_num(const json_t *obj, const char *key, double *out, bool *found, struct err *e);
int params_int(const json_t *obj, const char *key, int64_t *out, bool *found, struct err *e);
int params_bool(const json_t *obj, const char *key, bool *out, struct err *e);
/* `stop`: a list of strings, or (when one_ok, OpenAI) a single string, appended to p. The count
 * is checked later, in the dialect's order (params_stop_count), unless it is over what p can
 * hold. */
int params_stop(const json_t *obj, bool one_ok, const struct gen_limits *lim, struct gen_params *p,
                struct err *e);
int params_stop_count(const struct gen_params *p, const struct gen_limits *lim, struct err *e);
/* OpenAI's [-2, 2] range of frequency_penalty and presence_penalty. */
int params_penalty_range(const char *key, double v, struct err *e);
/* The server's limits with TGI's messages (the pipeline answers them too): prompt +
 * max_new_tokens <= max_total, then the prompt <= max_input (0 = no limit). */
int params_check_limits(const struct gen_params *p, size_t n_input, size_t max_input,
                        size_t max_total, struct err *e);

/* A key a dialect defines and inferd does not implement: refused unless null or neutral. */
typedef bool (*params_neutral_fn)(const json_t *v, const json_t *obj); /* obj: v's object */
struct params_refused {
    const char *key;
    params_neutral_fn neutral; /* NULL: every value but null is refused */
    const char *what;          /* "inferd does not implement WHAT" */
};
/* The first row of t[0..n) whose key obj holds with a value that is neither null nor neutral:
 * ERR_INVALID naming it (*key set when key is not NULL). 0 when obj is not an object. */
int params_refuse(const struct params_refused *t, size_t n, const json_t *obj, const char **key,
                  struct err *e);
/* Neutral values the dialects share: false; the number 0; {}, [] or "". */
bool params_is_false(const json_t *v, const json_t *obj);
bool params_is_zero(const json_t *v, const json_t *obj);
bool params_is_empty(const json_t *v, const json_t *obj);

#endif
