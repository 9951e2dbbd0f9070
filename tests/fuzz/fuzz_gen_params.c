/* fuzz_gen_params: the generation routes' request bodies (the server's dialect parsers,
 * server/params*.c), parsed as the server does: TGI's /generate takes body.parameters, OpenAI's
 * /v1/chat/completions and /v1/completions the whole body, the text-generation pipeline
 * body.parameters. Each dialect is tried with and without a generation_config.json (a fixed
 * LLaMA-like one), then TGI's streaming check, the length resolution against fixed limits and a
 * copy, as a request goes on. */
#include <jansson.h>

#include "fuzz.h"
#include "gen_api.h"

static const char gen_config_json[] =
    "{\"bos_token_id\": 1, \"eos_token_id\": [2, 32000], \"do_sample\": true, "
    "\"temperature\": 0.6, \"top_p\": 0.9, \"top_k\": 40, \"repetition_penalty\": 1.1, "
    "\"max_length\": 4096}";
static struct gen_config gen_cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    struct err e = {0};
    gen_config_init(&gen_cfg);
    if (gen_config_parse(gen_config_json, sizeof gen_config_json - 1, "generation_config.json",
                         &gen_cfg, &e) != 0)
        abort();
    return 0;
}

static void parse_one(const struct gen_api *a, const json_t *obj, const struct gen_config *cfg,
                      const struct gen_limits *lim)
{
    struct gen_params p, copy;
    struct err e = {0};
    if (fuzz_report(gen_api_parse(a, obj, cfg, lim, &p, &e), &e) == 0) {
        tgi_check_stream(&p, &e);
        if (gen_params_copy(&copy, &p, &e) == 0)
            gen_params_fini(&copy);
        gen_api_resolve_length(a, &p, 10, 1024, 2048, &e);
        gen_api_finish(a, GEN_FINISH_EOS);
    }
    gen_params_fini(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *body = json_loadb((const char *)data, size, JSON_ALLOW_NUL, NULL);
    if (!body)
        return 0;
    const json_t *params = json_object_get(body, "parameters");
    struct gen_limits lim = gen_limits_default();
    lim.max_input_tokens = 1024;
    const struct gen_config *cfgs[] = {&gen_cfg, NULL};
    for (int i = 0; i < 2; i++) {
        parse_one(&gen_api_tgi, params, cfgs[i], &lim);
        parse_one(&gen_api_chat, body, cfgs[i], &lim);
        parse_one(&gen_api_completions, body, cfgs[i], &lim);
        parse_one(&gen_api_pipeline, params, cfgs[i], NULL);
    }
    json_decref(body);
    return 0;
}
