/* task_table: every task inferd serves, encoder pipelines and generators alike, as one
 * table (task_table.c: one row per task with its name, alias, kind and hooks). Everything
 * that asks "which task?" by name asks here: the registry resolves a model's `task:` once
 * into an enum task_id, the config loader is handed task_by_name and task_list to check
 * names, and nothing outside the table compares task names.
 *
 *     int t = task_by_name("ner");          // TASK_TOKEN_CLASSIFICATION (an alias)
 *     task_kind(t);                          // TASK_KIND_ENCODER
 *     unsigned gen = task_set(TASK_KIND_GENERATOR); // TASK_BIT(TASK_TEXT_GENERATION) | ...
 */
#ifndef INFERD_TASK_TABLE_H
#define INFERD_TASK_TABLE_H

#include <stdbool.h>
#include <stddef.h>

enum task_id {
    TASK_TEXT_CLASSIFICATION,
    TASK_TOKEN_CLASSIFICATION,
    TASK_QUESTION_ANSWERING,
    TASK_FILL_MASK,
    TASK_ZERO_SHOT_CLASSIFICATION,
    TASK_FEATURE_EXTRACTION,
    TASK_SENTENCE_EMBEDDINGS,
    TASK_TEXT_GENERATION,
    TASK_TEXT2TEXT_GENERATION,
    TASK_SUMMARIZATION,
    TASK_TRANSLATION, /* also "translation_xx_to_yy", as transformers' pipeline() names it */
    TASK_COUNT
};

enum task_kind {
    TASK_KIND_ENCODER,   /* an encoder pipeline (runner.h), run in batches */
    TASK_KIND_GENERATOR, /* a generator (decoder or encoder-decoder), continuous batching */
};

/* A set of tasks (what a route serves): a bitmask over enum task_id. */
#define TASK_BIT(t) (1u << (t))
#define TASKS_ALL ((1u << TASK_COUNT) - 1)

/* The task of a name or alias ("sentiment-analysis", "ner", "translation_en_to_de": a row's
 * parametrized names, split on "_" as transformers' check_task does); -1 if unknown. */
int task_by_name(const char *name);
/* The canonical (Hugging Face) name of a task; "unknown" out of range. */
const char *task_name(enum task_id t);
enum task_kind task_kind(enum task_id t);
/* A generator task that needs an encoder-decoder (text2text-generation, summarization,
 * translation: transformers' seq2seq pipelines). */
bool task_is_seq2seq(enum task_id t);
/* Every task of that kind, as a set. */
unsigned task_set(enum task_kind kind);
/* Every task's canonical name in table order, "text-classification, ...,
 * text2text-generation", into buf (cut to size). */
void task_list(char *buf, size_t size);
/* The same for the tasks of one kind. */
void task_list_kind(enum task_kind kind, char *buf, size_t size);

#endif
