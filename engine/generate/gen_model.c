/* gen_model: loading a text-generation model directory (see generator.h): the kinds table
 * (which architecture runs which config.json model_type), the kind's weights prepacked on a
 * oneDNN context made for the loading thread, the tokenizer, generation_config.json with
 * config.json's eos ids as transformers' fallback, and the chat templates of
 * tokenizer_config.json / chat_template.jinja, config.json's task_specific_params (the
 * pipelines' per-task defaults and prefixes); then the facts and text operations the API
 * layer reads through functions. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen_impl.h"
#include "loader/hf_config.h"

#define MAX_TYPES 16

/* The architecture kinds, in the order their model types are listed. */
static const struct gen_kind *const kinds[] = {&gen_kind_decoder, &gen_kind_t5, &gen_kind_bart};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

size_t gen_model_types(const char **names, size_t cap)
{
    size_t n = 0;
    for (size_t k = 0; k < N_KINDS && n < cap; k++) {
        size_t got = kinds[k]->model_types(names + n, cap - n);
        n += got < cap - n ? got : cap - n;
    }
    return n;
}

static const struct gen_kind *kind_of(const char *model_type)
{
    for (size_t k = 0; k < N_KINDS; k++) {
        const char *names[MAX_TYPES];
        size_t n = kinds[k]->model_types(names, MAX_TYPES);
        for (size_t i = 0; i < n && i < MAX_TYPES; i++)
            if (strcmp(names[i], model_type) == 0)
                return kinds[k];
    }
    return NULL;
}

/* The kind of DIR's config.json; any other model_type is refused first, with every type
 * generation runs. */
static int kind_of_dir(const char *dir, const struct gen_kind **out, struct err *e)
{
    const char *names[MAX_TYPES];
    const struct hf_accept accept = {names, gen_model_types(names, MAX_TYPES), "text generation"};
    struct hf_config hc;
    int rc = hf_config_load_for(dir, &accept, &hc, e);
    if (rc)
        return rc;
    *out = kind_of(hc.model_type);
    hf_config_fini(&hc);
    return *out ? 0 : err_set(e, ERR_INTERNAL, "no generation kind runs this model_type");
}

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

static int load_weights(const char *dir, const struct gen_model_opts *o, struct gen_model *m,
                        struct err *e)
{
    int rc = kind_of_dir(dir, &m->kind, e);
    if (rc)
        return rc;
    struct dnn_ctx *ctx = dnn_ctx_new(o ? o->threads : 0, e);
    if (!ctx)
        return e->kind ? e->kind : ERR_NOMEM;
    rc = m->kind->load(dir, o ? o->dtype : DTYPE_COMPUTE_F32, ctx, m, e);
    dnn_ctx_free(ctx);
    return rc;
}

/* config.json's task_specific_params (an object), kept as JSON; none is not an error. */
static int load_task_params(const char *dir, struct gen_model *m, struct err *e)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *root = json_load_file(path, 0, NULL);
    json_t *tp = json_object_get(root, "task_specific_params");
    int rc = 0;
    if (tp && !json_is_null(tp) && !json_is_object(tp))
        rc = err_set(e, ERR_FORMAT, "%s: 'task_specific_params' must be an object", path);
    else if (json_is_object(tp))
        m->task_params = json_incref(tp);
    const char *k;
    json_t *v;
    json_object_foreach(m->task_params, k, v)
    {
        if (rc == 0 && !json_is_object(v))
            rc = err_set(e, ERR_FORMAT, "%s: task_specific_params['%s'] must be an object", path,
                         k);
    }
    json_decref(root);
    return rc;
}

int gen_model_load(const char *dir, const struct gen_model_opts *o, struct gen_model **out,
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
    m->decoder_start_token_id = -1;
    pthread_mutex_init(&m->gvocab_mu, NULL);
    int rc = load_weights(dir, o, m, e);
    if (rc == 0)
        rc = tokenizer_load(dir, &m->tokenizer, e);
    if (rc == 0)
        rc = gen_config_load(dir, &m->gen_config, e);
    if (rc == 0)
        rc = chat_template_load_from_tokenizer_dir(dir, &m->chat, e);
    if (rc == 0)
        rc = load_task_params(dir, m, e);
    if (rc) {
        gen_model_free(m);
        return rc;
    }
    gen_config_fallback_eos(&m->gen_config, m->hf->eos_token_ids, m->hf->n_eos_token_ids);
    if (m->kind->encoder_decoder) {
        /* generation_config.json first, as generate() takes it, then config.json's */
        int64_t start = m->gen_config.decoder_start_token_id;
        if (start >= 0 && start < m->vocab_size)
            m->decoder_start_token_id = (int32_t)start;
    }
    base_name(dir, m->model_id, sizeof m->model_id);
    *out = m;
    return 0;
}

void gen_model_free(struct gen_model *m)
{
    if (!m)
        return;
    if (m->kind && m->net)
        m->kind->unload(m);
    tokenizer_free(m->tokenizer);
    chat_template_set_fini(&m->chat);
    json_decref(m->task_params);
    gram_vocab_free(m->gvocab);
    pthread_mutex_destroy(&m->gvocab_mu);
    free(m);
}

/* The vocabulary as constrained decoding sees it: made by the first request with a grammar
 * (a decode per token: well under a second for 150,000 tokens), then kept with the model. */
const struct gram_vocab *gen_model_gram_vocab(const struct gen_model *m, struct err *e)
{
    struct gen_model *mm = (struct gen_model *)m; /* the lazily made cache only */
    pthread_mutex_lock(&mm->gvocab_mu);
    if (!mm->gvocab)
        gram_vocab_new(m->tokenizer, (size_t)m->vocab_size, &mm->gvocab, e);
    const struct gram_vocab *v = mm->gvocab;
    pthread_mutex_unlock(&mm->gvocab_mu);
    return v;
}

/* ---- facts ---- */

const char *gen_model_id(const struct gen_model *m)
{
    return m->model_id;
}
int64_t gen_model_max_positions(const struct gen_model *m)
{
    return m->max_positions;
}
int gen_model_vocab_size(const struct gen_model *m)
{
    return m->vocab_size;
}
bool gen_model_is_encoder_decoder(const struct gen_model *m)
{
    return m->kind->encoder_decoder;
}
int32_t gen_model_decoder_start_token_id(const struct gen_model *m)
{
    return m->decoder_start_token_id;
}
const struct gen_config *gen_model_config(const struct gen_model *m)
{
    return &m->gen_config;
}
bool gen_model_has_chat_template(const struct gen_model *m)
{
    return m->chat.main != NULL;
}
const struct tokenizer *gen_model_tokenizer(const struct gen_model *m)
{
    return m->tokenizer;
}

/* ---- text ---- */

int gen_model_tokenize(const struct gen_model *m, const char *text, size_t len, bool add_special,
                       bool truncate, int32_t **ids, size_t *n, struct err *e)
{
    struct tokenizer_params p = tokenizer_params_default(m->tokenizer);
    size_t max = truncate ? tokenizer_model_max_length(m->tokenizer) : 0;
    p.add_special_tokens = add_special;
    p.truncation = max > 0;
    if (max > 0)
        p.max_length = max;
    p.padding = PAD_NONE;
    struct encodings enc = {0};
    *ids = NULL;
    *n = 0;
    int rc = tokenizer_encode(m->tokenizer, text, len, NULL, 0, &p, &enc, e);
    if (rc == 0) {
        const struct encoding *x = &enc.v[0];
        *ids = malloc((x->n ? x->n : 1) * sizeof **ids);
        if (!*ids)
            rc = err_set(e, ERR_NOMEM, "out of memory");
        else if (x->n)
            memcpy(*ids, x->ids, x->n * sizeof **ids);
        *n = *ids ? x->n : 0;
    }
    encodings_fini(&enc);
    return rc;
}

bool gen_model_has_language_codes(const struct gen_model *m)
{
    return tokenizer_has_language_codes(m->tokenizer);
}

int gen_model_tokenize_translation(const struct gen_model *m, const char *text, size_t len,
                                   const char *src_lang, const char *tgt_lang, bool truncate,
                                   int32_t **ids, size_t *n, int32_t *forced_bos,
                                   struct err *e)
{
    size_t max = truncate ? tokenizer_model_max_length(m->tokenizer) : 0;
    return tokenizer_translation_encode(m->tokenizer, text, len, src_lang, tgt_lang, max, ids, n,
                                        forced_bos, e);
}

int gen_model_decode(const struct gen_model *m, const int32_t *ids, size_t n, char **text,
                     size_t *len, struct err *e)
{
    return tokenizer_decode(m->tokenizer, ids, n, false, text, len, e);
}

int gen_model_decode_skip_special(const struct gen_model *m, const int32_t *ids, size_t n,
                                  char **text, size_t *len, struct err *e)
{
    return tokenizer_decode(m->tokenizer, ids, n, true, text, len, e);
}

size_t gen_model_task_names(const struct gen_model *m, const char *prefix, const char **names,
                            size_t cap)
{
    size_t n = 0, plen = strlen(prefix);
    const char *k;
    json_t *v;
    json_object_foreach(m->task_params, k, v)
    {
        if (strncmp(k, prefix, plen) != 0)
            continue;
        if (n < cap)
            names[n] = k;
        n++;
    }
    return n;
}

int gen_model_task_config(const struct gen_model *m, const char *task, struct gen_config *cfg,
                          const char **prefix, bool *found, struct err *e)
{
    *prefix = NULL;
    const json_t *tp = json_object_get(m->task_params, task);
    *found = tp != NULL;
    if (!tp)
        return 0;
    *prefix = json_string_value(json_object_get(tp, "prefix"));
    char what[300];
    snprintf(what, sizeof what, "config.json task_specific_params['%s']", task);
    return gen_config_update(cfg, tp, what, e);
}

bool gen_model_is_named_special(const struct gen_model *m, int32_t id)
{
    static const char *const keys[] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    const char *tok = tokenizer_id_to_token(m->tokenizer, id);
    for (size_t k = 0; tok && k < sizeof keys / sizeof keys[0]; k++) {
        const char *s = tokenizer_config_str(m->tokenizer, keys[k]);
        if (s && strcmp(s, tok) == 0)
            return true;
    }
    return false;
}

int gen_model_render_chat(const struct gen_model *m, const struct json_t *messages,
                          const struct json_t *extra, char **out, size_t *len, struct err *e)
{
    if (!m->chat.main)
        return err_set(e, ERR_INVALID, "this model's tokenizer has no chat template");
    return chat_template_set_render(&m->chat, messages, extra, out, len, e);
}

bool gen_model_chat_template_mentions(const struct gen_model *m, const char *needle)
{
    return chat_template_mentions(m->chat.main, needle) ||
           chat_template_mentions(m->chat.tool_use, needle);
}

int gen_model_check_request(const struct gen_model *m, const int32_t *prompt, size_t n,
                            const struct gen_params *p, struct err *e)
{
    if (m->kind->encoder_decoder && p->decoder_input_details)
        return err_set(e, ERR_INVALID,
                       "`decoder_input_details` is not supported by an encoder-decoder model "
                       "(text2text-generation): its input is encoded, not decoded");
    if (p->grammar && p->num_beams > 1)
        return err_set(e, ERR_INVALID, "an output constraint is not supported with beam search");
    for (size_t i = 0; i < n; i++)
        if (prompt[i] < 0 || prompt[i] >= m->vocab_size)
            return err_set(e, ERR_INVALID, "prompt token %zu: id %d is not in the vocabulary (%d)",
                           i, (int)prompt[i], m->vocab_size);
    if (p->forced_bos_token_id >= m->vocab_size || p->forced_eos_token_id >= m->vocab_size)
        return err_set(e, ERR_INVALID,
                       "`%s` (%d) is not in the vocabulary (%d)",
                       p->forced_bos_token_id >= m->vocab_size ? "forced_bos_token_id"
                                                               : "forced_eos_token_id",
                       (int)(p->forced_bos_token_id >= m->vocab_size ? p->forced_bos_token_id
                                                                     : p->forced_eos_token_id),
                       m->vocab_size);
    for (size_t i = 0; i < p->bad_words_size; i += 1 + (size_t)p->bad_words[i])
        for (int32_t k = 1; k <= p->bad_words[i] && i + (size_t)k < p->bad_words_size; k++)
            if (p->bad_words[i + k] >= m->vocab_size)
                return err_set(e, ERR_INVALID, "`bad_words_ids`: id %d is not in the vocabulary (%d)",
                               (int)p->bad_words[i + k], m->vocab_size);
    if (p->num_beams > 1 && p->decoder_input_details)
        return err_set(e, ERR_INVALID,
                       "`decoder_input_details` is not supported with beam search");
    return 0;
}
