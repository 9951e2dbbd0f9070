/* params_s2s: see params_s2s.h. */
#include "params_s2s.h"

#include <stdio.h>
#include <string.h>

/* transformers' GenerationConfig default max_length, and the seq2seq pipelines' own default
 * generation config (_default_generation_config). */
#define HF_DEFAULT_MAX_LENGTH 20
#define S2S_DEFAULT_MAX_NEW_TOKENS 256
#define S2S_DEFAULT_NUM_BEAMS 4

struct s2s_row {
    enum task_id task;
    const char *text_key, *ids_key;
    bool pipeline_defaults; /* the 4.x pipeline's default generation config applies */
};

static const struct s2s_row rows[] = {
    {TASK_TEXT2TEXT_GENERATION, "generated_text", "generated_token_ids", false},
    {TASK_SUMMARIZATION, "summary_text", "summary_token_ids", true},
    {TASK_TRANSLATION, "translation_text", "translation_token_ids", true},
};

/* Pipeline.__init__: _prepare_generation_config(pipeline defaults, use_model_defaults=True)
 * keeps the pipeline's num_beams and max_new_tokens (they are not GenerationConfig's
 * defaults, so the model's values do not replace them), takes the model's other values, then
 * drops max_new_tokens when the model's max_length is not the global default 20. */
static void pipeline_defaults(struct gen_config *c)
{
    c->has_num_beams = true;
    c->num_beams = S2S_DEFAULT_NUM_BEAMS;
    bool own_max_length = c->has_max_length && c->max_length != HF_DEFAULT_MAX_LENGTH;
    c->has_max_new_tokens = !own_max_length;
    c->max_new_tokens = own_max_length ? 0 : S2S_DEFAULT_MAX_NEW_TOKENS;
}

/* The task_specific_params entry for name: name itself, or for plain "translation" the
 * model's first "translation*" entry (pipeline() switches to it). */
static int params_key(const struct gen_model *gm, const struct s2s_row *row, const char *name,
                      struct s2s_task *t, struct err *e)
{
    snprintf(t->params_key, sizeof t->params_key, "%s", name);
    if (row->task != TASK_TRANSLATION)
        return 0;
    const char *pairs[64];
    size_t n = gen_model_task_names(gm, "translation", pairs, 64);
    if (n == 0)
        return 0; /* a model without entries (Marian: one pair per model) takes any name */
    if (strcmp(name, "translation") == 0) {
        snprintf(t->params_key, sizeof t->params_key, "%s", pairs[0]);
        return 0;
    }
    for (size_t i = 0; i < n && i < 64; i++)
        if (strcmp(pairs[i], name) == 0)
            return 0;
    char list[512] = "";
    for (size_t i = 0; i < n && i < 64; i++) {
        size_t len = strlen(list);
        snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", pairs[i]);
    }
    return err_set(e, ERR_INVALID,
                   "task '%s': the model has no such language pair in its task_specific_params "
                   "(it has: %s)",
                   name, list);
}

int s2s_task_init(const struct gen_model *gm, const char *name, struct s2s_task *t,
                  struct err *e)
{
    memset(t, 0, sizeof *t);
    t->prefix = "";
    int id = task_by_name(name);
    const struct s2s_row *row = NULL;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (id >= 0 && rows[i].task == (enum task_id)id)
            row = &rows[i];
    if (!row)
        return err_set(e, ERR_INVALID, "task '%s' is not a seq2seq pipeline", name ? name : "");
    t->task = row->task;
    t->text_key = row->text_key;
    t->ids_key = row->ids_key;
    t->defaults = *gen_model_config(gm);
    if (row->pipeline_defaults)
        pipeline_defaults(&t->defaults);
    int rc = params_key(gm, row, name, t, e);
    if (rc)
        return rc;
    const char *prefix = NULL;
    bool found = false;
    rc = gen_model_task_config(gm, t->params_key, &t->defaults, &prefix, &found, e);
    if (rc)
        return rc;
    if (!found)
        t->params_key[0] = '\0';
    if (prefix)
        t->prefix = prefix;
    return 0;
}
