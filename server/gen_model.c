/* gen_model: loading a text-generation model directory for gen_sched (see gen_sched.h): the
 * model (a decoder, or for config.json model_type "t5" the T5 encoder-decoder; its weights
 * prepacked on a oneDNN context made for the loading thread), the tokenizer,
 * generation_config.json with config.json's eos ids as transformers' fallback, and the chat
 * templates of tokenizer_config.json / chat_template.jinja. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtypes.h"
#include "gen_sched.h"
#include "models/decoder.h"
#include "models/t5.h"

#define DEFAULT_MAX_TOTAL_TOKENS 4096

/* The last component of dir ("models/llama/" -> "llama"), or dir itself. */
static void base_name(const char *dir, char *out, size_t size)
{
    size_t end = strlen(dir), start;
    while (end > 1 && dir[end - 1] == '/')
        end--;
    for (start = end; start > 0 && dir[start - 1] != '/';)
        start--;
    snprintf(out, size, "%.*s", (int)(end - start), dir + start);
}

/* Whether DIR's config.json names T5 (*t5) or a decoder; any other model_type is refused
 * first, with every type generation runs (the decoders' table, then T5). */
static int generation_arch(const char *dir, bool *t5, struct err *e)
{
    const char *names[16];
    size_t n = decoder_model_types(names, 15);
    n = n < 15 ? n : 15;
    names[n++] = T5_MODEL_TYPE;
    const struct hf_accept accept = {names, n, "text generation"};
    struct hf_config hc;
    int rc = hf_config_load_for(dir, &accept, &hc, e);
    if (rc)
        return rc;
    *t5 = strcmp(hc.model_type, T5_MODEL_TYPE) == 0;
    hf_config_fini(&hc);
    return 0;
}

static int load_weights(const char *dir, enum dtype_compute dt, struct dnn_ctx *ctx,
                        struct gen_model *m, struct err *e)
{
    bool t5 = false;
    int rc = generation_arch(dir, &t5, e);
    if (rc)
        return rc;
    if (t5)
        return t5_load(dir, dt, ctx, &m->t5, e);
    return decoder_load(dir, dt, ctx, &m->decoder, e);
}

int gen_model_load(const char *dir, const struct model_config *cfg, struct gen_model **out,
                   struct err *e)
{
    struct err local = {0};
    if (!e)
        e = &local;
    *out = NULL;
    struct gen_model *m = calloc(1, sizeof *m);
    if (!m)
        return err_set(e, ERR_NOMEM, "out of memory");
    gen_config_init(&m->gen_config);
    int threads = cfg && cfg->threads > 0 ? cfg->threads : 0;
    enum dtype_compute dt = dtype_of_config(cfg ? cfg->dtype : CONFIG_DTYPE_FP32);
    struct dnn_ctx *ctx = dnn_ctx_new(threads, e);
    int rc = ctx ? load_weights(dir, dt, ctx, m, e) : e->kind ? e->kind : ERR_NOMEM;
    dnn_ctx_free(ctx);
    if (rc == 0)
        rc = tokenizer_load(dir, &m->tokenizer, e);
    if (rc == 0)
        rc = gen_config_load(dir, &m->gen_config, e);
    if (rc == 0)
        rc = chat_template_load_from_tokenizer_dir(dir, &m->chat, e);
    if (rc) {
        gen_model_free(m);
        return rc;
    }
    const struct hf_config *hc = m->t5 ? t5_config(m->t5) : decoder_config(m->decoder);
    gen_config_fallback_eos(&m->gen_config, hc->eos_token_ids, hc->n_eos_token_ids);
    if (m->t5) {
        /* relative positions: no table bounds the lengths (transformers only warns past the
         * tokenizer's model_max_length) */
        m->max_positions = 0;
        m->vocab_size = t5_vocab_size(m->t5);
        /* generation_config.json first, as generate() takes it, then config.json's */
        int64_t start = m->gen_config.decoder_start_token_id;
        m->decoder_start_token_id =
            start >= 0 && start < m->vocab_size ? (int32_t)start : t5_decoder_start_token_id(m->t5);
    } else {
        m->max_positions = decoder_max_positions(m->decoder);
        m->vocab_size = decoder_vocab_size(m->decoder);
        m->decoder_start_token_id = -1;
    }
    base_name(dir, m->model_id, sizeof m->model_id);
    *out = m;
    return 0;
}

void gen_model_free(struct gen_model *m)
{
    if (!m)
        return;
    decoder_unload(m->decoder);
    t5_unload(m->t5);
    tokenizer_free(m->tokenizer);
    chat_template_set_fini(&m->chat);
    free(m);
}

size_t gen_model_max_total_tokens(const struct gen_model *m, const struct model_config *cfg)
{
    const struct generation_section *g = &cfg->generation;
    if (g->max_total_tokens > 0)
        return g->max_total_tokens;
    size_t t = DEFAULT_MAX_TOTAL_TOKENS;
    if (m->max_positions > 0 && (uint64_t)m->max_positions < t)
        t = (size_t)m->max_positions;
    if (g->max_batch_total_tokens > 0 && g->max_batch_total_tokens < t)
        t = g->max_batch_total_tokens;
    return t;
}
