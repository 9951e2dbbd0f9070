/* params_s2s: transformers 4.x's seq2seq pipelines (Text2TextGenerationPipeline and its
 * subclasses SummarizationPipeline and TranslationPipeline, pipelines/text2text_generation.py
 * and Pipeline.__init__ in pipelines/base.py) as inferd runs them on an encoder-decoder: which
 * config.json task_specific_params entry a task takes ("translation" the model's first
 * "translation_*" entry, as pipeline() picks it), the generation defaults generate() starts
 * from, the prefix put before every input ("summarize: ", "translate English to German: "),
 * and the key of the answer ("summary_text", "translation_text", "generated_text"). Shared by
 * POST /models/{name} (api_hf.c) and `inferd run` (cli/generate.c).
 *
 *     struct s2s_task t;
 *     if (s2s_task_init(gm, "translation_en_to_de", &t, &e) != 0) ... 422 e.msg
 *     gen_api_parse(&gen_api_pipeline, parameters, &t.defaults, NULL, &params, &e);
 *     text = t.prefix + inputs ...; answer [{t.text_key: ...}, ...]
 */
#ifndef INFERD_PARAMS_S2S_H
#define INFERD_PARAMS_S2S_H

#include <stdbool.h>

#include "engine.h"

struct s2s_task {
    enum task_id task;
    const char *text_key;  /* "generated_text", "summary_text", "translation_text" */
    const char *ids_key;   /* return_tensors: "generated_token_ids", ... */
    const char *prefix;    /* before every input; "" when none (valid while the model lives) */
    char params_key[128];  /* the task_specific_params entry used ("" when none) */
    struct gen_config defaults; /* what generate() starts from (gen_api_parse's cfg) */
};

/* The rules of task `name` (a seq2seq task name as configured: "summarization",
 * "translation", "translation_en_to_de", "text2text-generation") on gm (an encoder-decoder).
 * summarization and translation take the pipelines' own default generation config (num_beams
 * 4, max_new_tokens 256 unless the model's max_length is not 20) under the model's
 * generation_config.json values, then task_specific_params[task] over them;
 * text2text-generation keeps the model's generation_config.json (inferd's text2text defaults,
 * see api_hf.c). ERR_INVALID for a translation pair the model's task_specific_params do not
 * have when it has translation entries, for an unknown or non-seq2seq task; ERR_FORMAT for a
 * malformed entry. */
int s2s_task_init(const struct gen_model *gm, const char *name, struct s2s_task *t,
                  struct err *e);

#endif
