/* fuzz_model_json: a model directory's config.json (loader/hf_config.c) and
 * generation_config.json (generate/gen_config.c); every input goes to both parsers. */
#include "fuzz.h"
#include "generate/params.h"
#include "loader/hf_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hf_config cfg;
    struct err e = {0};
    if (fuzz_report(hf_config_parse((const char *)data, size, "config.json", &cfg, &e), &e) == 0)
        hf_config_fini(&cfg);
    struct gen_config g;
    gen_config_init(&g);
    if (fuzz_report(gen_config_parse((const char *)data, size, "generation_config.json", &g, &e),
                    &e) == 0) {
        int64_t ids[] = {2, 7};
        gen_config_fallback_eos(&g, ids, 2);
    }
    return 0;
}
