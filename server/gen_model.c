/* gen_model: the server's side of a generation model (the model itself is the engine's,
 * engine/generate/generator.h): loading it with a config entry's dtype and threads (dtypes.h
 * is where the config's dtype meets the engine's), and the max_total_tokens default the
 * scheduler and the API layer share. */
#include "dtypes.h"
#include "gen_sched.h"

#define DEFAULT_MAX_TOTAL_TOKENS 4096

int gen_model_load_config(const char *dir, const struct model_config *cfg, struct gen_model **out,
                          struct err *e)
{
    struct gen_model_opts o = {
        .dtype = dtype_of_config(cfg ? cfg->dtype : CONFIG_DTYPE_FP32),
        .threads = cfg && cfg->threads > 0 ? cfg->threads : 0,
    };
    return gen_model_load(dir, &o, out, e);
}

size_t gen_model_max_total_tokens(const struct gen_model *m, const struct model_config *cfg)
{
    const struct generation_section *g = &cfg->generation;
    if (g->max_total_tokens > 0)
        return g->max_total_tokens;
    size_t t = DEFAULT_MAX_TOTAL_TOKENS;
    int64_t max_positions = gen_model_max_positions(m);
    if (max_positions > 0 && (uint64_t)max_positions < t)
        t = (size_t)max_positions;
    if (g->max_batch_total_tokens > 0 && g->max_batch_total_tokens < t)
        t = g->max_batch_total_tokens;
    return t;
}
