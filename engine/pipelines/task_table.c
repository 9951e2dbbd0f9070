/* task_table: the task table (see task_table.h): one row per task, encoder pipelines and
 * generators alike, with its names and kind and, for an encoder pipeline, the head it needs
 * and its hooks (runner_impl.h's struct task_row). This file owns the table, the name lookups
 * and the hooks of open, forward and finish (a task's own files, what it needs beyond its
 * head, the outputs it keeps, the result it builds from them); task_inputs.c owns the parse
 * and encode hooks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runner_impl.h"

/* ---- open: a task's own files and what it needs beyond its head ---- */

/* sentence-transformers: modules.json pooling (mean without one), max_seq_length from
 * sentence_bert_config.json, else min(max_position_embeddings, model_max_length), and the
 * prompts of config_sentence_transformers.json. */
static int open_sentence_embeddings(struct pipeline *p, const char *dir, struct err *e)
{
    int rc = embeddings_load_config(dir, &p->pooling, e);
    if (rc == ERR_NOT_FOUND) {
        p->pooling = (struct pooling_config){.modes = POOL_MEAN};
        rc = 0;
    }
    if (rc)
        return rc;
    if (p->pooling.dimension && p->pooling.dimension != p->hidden_size)
        return err_set(e, ERR_FORMAT,
                       "%s: the pooling config's embedding dimension %zu is not the model's "
                       "hidden size %zu",
                       dir, p->pooling.dimension, p->hidden_size);
    size_t mml = tokenizer_model_max_length(p->tk);
    p->max_seq_length = mml && mml < p->max_tokens ? mml : p->max_tokens;
    char path[4096];
    snprintf(path, sizeof path, "%s/sentence_bert_config.json", dir);
    json_t *j = json_load_file(path, 0, NULL);
    const json_t *v = json_object_get(j, "max_seq_length");
    if (json_is_integer(v) && json_integer_value(v) > 0 &&
        (size_t)json_integer_value(v) < p->max_seq_length)
        p->max_seq_length = (size_t)json_integer_value(v);
    json_decref(j);
    p->pool = &p->pooling;
    return embeddings_load_prompts(dir, &p->prompts, e);
}

static int fits_fill_mask(const struct pipeline *p, const char *dir, const char *task,
                          struct err *e)
{
    if (pipeline_special_id(p->tk, "mask_token") < 0)
        return err_set(e, ERR_INVALID, "task '%s': %s's tokenizer has no mask token", task, dir);
    return 0;
}

static int fits_zero_shot(const struct pipeline *p, const char *dir, const char *task,
                          struct err *e)
{
    bool entail = false;
    for (size_t i = 0; i < p->out_width; i++)
        entail |= strncasecmp(p->labels[i], "entail", 6) == 0;
    if (!entail || p->out_width < 2)
        return err_set(e, ERR_INVALID,
                       "task '%s' needs an NLI model with an 'entailment' label; %s's labels "
                       "have none",
                       task, dir);
    return 0;
}

/* ---- results a request asks for (the limits) ---- */

static size_t textcls_results(const struct pipeline *p, const struct pipeline_request *r)
{
    size_t labels = p->labels ? p->out_width : 1;
    if (!r->tc.top_k_given)
        return r->tc.return_all_scores ? labels : 1;
    return r->tc.top_k && r->tc.top_k < labels ? r->tc.top_k : labels;
}

static size_t zero_shot_results(const struct pipeline *p, const struct pipeline_request *r)
{
    (void)p;
    return r->zs.n_labels;
}

static size_t qa_results(const struct pipeline *p, const struct pipeline_request *r,
                         const struct unit *u)
{
    (void)p;
    return question_answering_max_results(&u->encs, &r->qa);
}

static size_t fill_mask_results(const struct pipeline *p, const struct pipeline_request *r,
                                const struct unit *u)
{
    return fill_mask_max_results(p->tk, &u->encs.v[0], p->out_width, &r->fm);
}

/* ---- forward: the outputs a task keeps from the hidden states ---- */

/* sentence-embeddings: the pooled vector (normalized as the request or modules.json says). */
static int keep_pooled(const struct pipeline *p, struct item *it, const float *hidden,
                       struct err *e)
{
    size_t len = embeddings_dim(&p->pooling, p->hidden_size);
    free(it->out);
    if (!(it->out = malloc(len * sizeof *it->out)))
        return err_set(e, ERR_NOMEM, "pipeline: out of memory");
    it->out_len = len;
    struct pooling_config pool = p->pooling;
    if (it->normalize >= 0)
        pool.normalize = it->normalize;
    return embeddings_pool(&pool, hidden, it->enc->attention, it->enc->n, p->hidden_size, it->out,
                           e);
}

/* feature-extraction: the hidden states of the item's tokens, (n, hidden). */
static int keep_hidden(const struct pipeline *p, struct item *it, const float *hidden,
                       struct err *e)
{
    return item_store(it, hidden, it->enc->n * p->hidden_size, e);
}

/* ---- finish: a unit's result ---- */

static int finish_qa(const struct pipeline *p, const struct pipeline_request *r,
                     const struct unit *u, json_t **out, struct err *e)
{
    float **start = calloc(u->n, sizeof *start), **end = calloc(u->n, sizeof *end);
    int rc = 0;
    if (!start || !end)
        rc = err_set(e, ERR_NOMEM, "pipeline: out of memory");
    for (size_t w = 0; w < u->n && rc == 0; w++) {
        const struct item *it = &r->items[u->first + w];
        size_t n = it->enc->n;
        start[w] = malloc(n * sizeof **start); /* (n) */
        end[w] = malloc(n * sizeof **end);     /* (n) */
        if (!start[w] || !end[w]) {
            rc = err_set(e, ERR_NOMEM, "pipeline: out of memory");
            break;
        }
        for (size_t t = 0; t < n; t++) { /* it->out: (n, 2) start and end logits */
            start[w][t] = it->out[2 * t];
            end[w][t] = it->out[2 * t + 1];
        }
    }
    if (rc == 0)
        rc = question_answering_finish(p->tk, u->pair, u->pair_len, &u->encs,
                                       (const float *const *)start, (const float *const *)end,
                                       &r->qa, out, e);
    for (size_t w = 0; w < u->n; w++) {
        if (start)
            free(start[w]);
        if (end)
            free(end[w]);
    }
    free(start);
    free(end);
    return rc;
}

/* fill-mask: the item's mask rows laid out at their token positions, as fill_mask_finish
 * reads them ((last mask + 1, vocab); rows of other tokens are never read). */
static int finish_fill_mask(const struct pipeline *p, const struct pipeline_request *r,
                            const struct item *it, json_t **out, struct err *e)
{
    int32_t mask = pipeline_special_id(p->tk, "mask_token");
    size_t W = p->out_width, last = 0;
    for (size_t t = 0; t < it->enc->n; t++)
        if (it->enc->ids[t] == mask)
            last = t;
    float *rows = malloc((last + 1) * W * sizeof *rows);
    if (!rows)
        return err_set(e, ERR_NOMEM, "fill-mask: out of memory");
    size_t k = 0;
    for (size_t t = 0; t <= last; t++)
        if (it->enc->ids[t] == mask)
            memcpy(rows + t * W, it->out + k++ * W, W * sizeof *rows);
    int rc = fill_mask_finish(p->tk, it->enc, rows, W, &r->fm, out, e);
    free(rows);
    return rc;
}

static int finish_zero_shot(const struct pipeline *p, const struct pipeline_request *r,
                            const struct unit *u, json_t **out, struct err *e)
{
    size_t C = p->out_width;
    float *logits = malloc(u->n * C * sizeof *logits); /* (n_labels, n_classes) */
    if (!logits)
        return err_set(e, ERR_NOMEM, "zero-shot-classification: out of memory");
    for (size_t i = 0; i < u->n; i++)
        memcpy(logits + i * C, r->items[u->first + i].out, C * sizeof *logits);
    /* the sequence as given (a copy: u->text is not NUL-terminated if it holds NULs) */
    char *seq = strndup(u->text, u->len);
    int rc = seq ? zero_shot_finish(seq, logits, C, (const char *const *)p->labels, &r->zs, out, e)
                 : err_set(e, ERR_NOMEM, "zero-shot-classification: out of memory");
    free(seq);
    free(logits);
    return rc;
}

/* feature-extraction: (1, n, hidden) nested lists, as the pipeline's tensor.tolist(). */
static json_t *features_json(const struct item *it, size_t H)
{
    json_t *rows = json_array(), *outer = json_array();
    for (size_t t = 0; rows && t < it->enc->n; t++)
        if (json_array_append_new(rows, embeddings_to_json(it->out + t * H, H)) != 0) {
            json_decref(rows);
            rows = NULL;
        }
    if (!rows || !outer || json_array_append_new(outer, rows) != 0) {
        json_decref(outer);
        return NULL;
    }
    return outer;
}

static int finish_text_classification(const struct pipeline *p, const struct pipeline_request *r,
                                      const struct unit *u, json_t **out, struct err *e)
{
    const struct item *it = &r->items[u->first];
    int rc = text_classification_finish(it->out, p->out_width, (const char *const *)p->labels,
                                        p->problem_type, &r->tc, out, e);
    if (rc == 0 && r->unwrap) {
        json_t *first = json_incref(json_array_get(*out, 0));
        json_decref(*out);
        *out = first;
    }
    return rc;
}

static int finish_token_classification(const struct pipeline *p,
                                       const struct pipeline_request *r, const struct unit *u,
                                       json_t **out, struct err *e)
{
    const struct item *it = &r->items[u->first];
    return token_classification_finish(p->tk, u->text, u->len, it->enc, it->out, p->out_width,
                                       (const char *const *)p->labels, &r->tok, out, e);
}

static int finish_fill_mask_unit(const struct pipeline *p, const struct pipeline_request *r,
                                 const struct unit *u, json_t **out, struct err *e)
{
    return finish_fill_mask(p, r, &r->items[u->first], out, e);
}

static int finish_features(const struct pipeline *p, const struct pipeline_request *r,
                           const struct unit *u, json_t **out, struct err *e)
{
    *out = features_json(&r->items[u->first], p->hidden_size);
    return *out ? 0 : err_set(e, ERR_NOMEM, "feature-extraction: cannot build the result");
}

static int finish_embedding(const struct pipeline *p, const struct pipeline_request *r,
                            const struct unit *u, json_t **out, struct err *e)
{
    (void)p;
    const struct item *it = &r->items[u->first];
    *out = embeddings_to_json(it->out, it->out_len);
    return *out ? 0 : err_set(e, ERR_NOMEM, "sentence-embeddings: cannot build the result");
}

/* ---- the table ---- */

#define ENCODER(t, name, alias, head, hidden) t, name, alias, TASK_KIND_ENCODER, head, hidden
#define GENERATOR(t, n) .task = t, .name = n, .kind = TASK_KIND_GENERATOR, .head = -1

/* transformers' check_task: "translation_XX_to_YY" is four "_"-separated parts, the third
 * "to" (the languages non-empty here). */
static bool translation_pair_name(const char *name)
{
    const char *a = name + strlen("translation_");
    if (strncmp(name, "translation_", strlen("translation_")) != 0)
        return false;
    const char *to = strchr(a, '_');
    if (!to || to == a || strncmp(to, "_to_", 4) != 0)
        return false;
    const char *b = to + 4;
    return *b && !strchr(b, '_');
}

static const struct task_row task_rows[] = {
    {ENCODER(TASK_TEXT_CLASSIFICATION, "text-classification", "sentiment-analysis", HEAD_SEQ_CLS,
             false),
     .parse = parse_text_classification, .unit_results = textcls_results,
     .finish = finish_text_classification},
    {ENCODER(TASK_TOKEN_CLASSIFICATION, "token-classification", "ner", HEAD_TOKEN_CLS, false),
     .parse = parse_token_classification, .encode = encode_token_classification,
     .finish = finish_token_classification},
    {ENCODER(TASK_QUESTION_ANSWERING, "question-answering", NULL, HEAD_QA, false),
     .windows = true, .parse = parse_question_answering, .encode = encode_question_answering,
     .encoded_results = qa_results, .finish = finish_qa},
    {ENCODER(TASK_FILL_MASK, "fill-mask", NULL, HEAD_MASKED_LM, false),
     .mask_rows = true, .fits = fits_fill_mask, .parse = parse_fill_mask,
     .encode = encode_fill_mask, .encoded_results = fill_mask_results,
     .finish = finish_fill_mask_unit},
    {ENCODER(TASK_ZERO_SHOT_CLASSIFICATION, "zero-shot-classification", NULL, HEAD_SEQ_CLS,
             false),
     .fits = fits_zero_shot, .parse = parse_zero_shot, .encode = encode_zero_shot,
     .unit_results = zero_shot_results, .finish = finish_zero_shot},
    {ENCODER(TASK_FEATURE_EXTRACTION, "feature-extraction", NULL, -1, true),
     .parse = parse_feature_extraction, .keep = keep_hidden, .finish = finish_features},
    {ENCODER(TASK_SENTENCE_EMBEDDINGS, "sentence-embeddings", NULL, -1, true),
     .open = open_sentence_embeddings, .parse = parse_sentence_embeddings, .keep = keep_pooled,
     .finish = finish_embedding},
    {GENERATOR(TASK_TEXT_GENERATION, "text-generation")},
    {GENERATOR(TASK_TEXT2TEXT_GENERATION, "text2text-generation"), .seq2seq = true},
    {GENERATOR(TASK_SUMMARIZATION, "summarization"), .seq2seq = true},
    {GENERATOR(TASK_TRANSLATION, "translation"), .seq2seq = true,
     .matches = translation_pair_name},
};
#define N_TASKS (sizeof task_rows / sizeof task_rows[0])
_Static_assert(N_TASKS == TASK_COUNT, "one row per task");

const struct task_row *task_row(enum task_id t)
{
    for (size_t i = 0; i < N_TASKS; i++)
        if (task_rows[i].task == t)
            return &task_rows[i];
    return &task_rows[0]; /* never: every enum task_id has its row */
}

int task_by_name(const char *name)
{
    for (size_t i = 0; name && i < N_TASKS; i++)
        if (strcmp(name, task_rows[i].name) == 0 ||
            (task_rows[i].alias && strcmp(name, task_rows[i].alias) == 0) ||
            (task_rows[i].matches && task_rows[i].matches(name)))
            return (int)task_rows[i].task;
    return -1;
}

const char *task_name(enum task_id t)
{
    return (unsigned)t < TASK_COUNT ? task_row(t)->name : "unknown";
}

enum task_kind task_kind(enum task_id t)
{
    return task_row(t)->kind;
}

bool task_is_seq2seq(enum task_id t)
{
    return (unsigned)t < TASK_COUNT && task_row(t)->seq2seq;
}

unsigned task_set(enum task_kind kind)
{
    unsigned set = 0;
    for (size_t i = 0; i < N_TASKS; i++)
        if (task_rows[i].kind == kind)
            set |= TASK_BIT(task_rows[i].task);
    return set;
}

/* The names of the rows whose kind is kind (all when any). */
static void list_names(bool any, enum task_kind kind, char *buf, size_t size)
{
    if (size)
        buf[0] = '\0';
    for (size_t i = 0, n = 0; i < N_TASKS; i++) {
        if (!any && task_rows[i].kind != kind)
            continue;
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, "%s%s", n++ ? ", " : "", task_rows[i].name);
    }
}

void task_list(char *buf, size_t size)
{
    list_names(true, TASK_KIND_ENCODER, buf, size);
}

void task_list_kind(enum task_kind kind, char *buf, size_t size)
{
    list_names(false, kind, buf, size);
}
