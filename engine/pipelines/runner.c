/* runner: see runner.h. Owns the generic steps of a pipeline: opening a model directory
 * for a task, the request's units and encoder items under the limits, the padded batches of
 * the forward step and the list of results. Every task-specific step is a hook of the task's
 * row (task_table.c); the input forms are task_inputs.c's and the post-processing the other
 * pipelines/ files'. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner_impl.h"

static const char *head_name(enum encoder_head h)
{
    switch (h) {
    case HEAD_NONE: return "a bare encoder (no head)";
    case HEAD_SEQ_CLS: return "a sequence classifier";
    case HEAD_TOKEN_CLS: return "a token classifier";
    case HEAD_QA: return "a question-answering head";
    case HEAD_MASKED_LM: return "a masked language model";
    }
    return "an unknown head";
}

/* ---- open / close ---- */

static const char *problem_type_name(enum hf_problem_type t)
{
    switch (t) {
    case HF_PROBLEM_SINGLE_LABEL: return "single_label_classification";
    case HF_PROBLEM_MULTI_LABEL: return "multi_label_classification";
    case HF_PROBLEM_REGRESSION: return "regression";
    default: return NULL;
    }
}

/* Label names for the classifier's out_width classes: config.json's, or LABEL_i when the
 * config's count disagrees with the classifier (HF's defaults). */
static int make_labels(struct pipeline *p, struct err *e)
{
    p->labels = calloc(p->out_width, sizeof *p->labels);
    if (!p->labels)
        return err_set(e, ERR_NOMEM, "pipeline: out of memory");
    for (size_t i = 0; i < p->out_width; i++) {
        char name[32];
        const char *s = name;
        if (p->cfg->num_labels == p->out_width && p->cfg->id2label && p->cfg->id2label[i])
            s = p->cfg->id2label[i];
        else
            snprintf(name, sizeof name, "LABEL_%zu", i);
        if (!(p->labels[i] = strdup(s)))
            return err_set(e, ERR_NOMEM, "pipeline: out of memory");
    }
    return 0;
}

/* The task's head and whatever else it needs (its fits hook); task: the name as given. */
static int check_fit(const struct pipeline *p, const char *dir, const char *task, struct err *e)
{
    int need = p->row->head;
    if (need >= 0 && (int)p->head != need)
        return err_set(e, ERR_INVALID, "task '%s' needs %s, but %s (%s) is %s", task,
                       head_name((enum encoder_head)need), dir,
                       p->cfg->architecture[0] ? p->cfg->architecture : p->cfg->model_type,
                       head_name(p->head));
    return p->row->fits ? p->row->fits(p, dir, task, e) : 0;
}

/* The kind dnn_ctx_new failed with (it says why in e when there is one). */
static int ctx_failed(const struct err *e)
{
    return e && e->kind ? e->kind : ERR_INTERNAL;
}

/* Opens dir for an encoder task's row; task: its name as the caller gave it (messages). */
static int open_row(const char *dir, const struct task_row *row, const char *task,
                    enum dtype_compute dt, int threads, struct pipeline **out, struct err *e)
{
    struct pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return err_set(e, ERR_NOMEM, "pipeline: out of memory");
    p->row = row;
    p->batch_tokens = DEFAULT_BATCH_TOKENS;
    /* the model first: an unsupported model_type is the first thing said; the context only
     * prepacks the weights (plain buffers any worker's context reads) */
    struct dnn_ctx *ctx = dnn_ctx_new(threads > 0 ? threads : 0, e);
    int rc = ctx ? encoder_load(dir, dt, ctx, &p->m, e) : ctx_failed(e);
    dnn_ctx_free(ctx);
    if (rc == 0)
        rc = tokenizer_load(dir, &p->tk, e);
    if (rc)
        goto fail;
    p->cfg = encoder_config(p->m);
    p->head = encoder_head_kind(p->m);
    p->out_width = encoder_out_width(p->m);
    p->hidden_size = (size_t)p->cfg->hidden_size;
    int64_t maxpos = p->cfg->max_position_embeddings - p->cfg->position_offset;
    p->max_tokens = maxpos > 0 ? (size_t)maxpos : 512;
    p->problem_type = problem_type_name(p->cfg->problem_type);
    if ((p->head == HEAD_SEQ_CLS || p->head == HEAD_TOKEN_CLS) && (rc = make_labels(p, e)) != 0)
        goto fail;
    if (row->open && (rc = row->open(p, dir, e)) != 0)
        goto fail;
    if ((rc = check_fit(p, dir, task, e)) != 0)
        goto fail;
    *out = p;
    return 0;
fail:
    pipeline_close(p);
    return rc;
}

int pipeline_open(const char *dir, const char *task, enum dtype_compute dt, int threads,
                  struct pipeline **out, struct err *e)
{
    *out = NULL;
    int t = task_by_name(task);
    if (t < 0 || task_kind((enum task_id)t) != TASK_KIND_ENCODER) {
        char list[200];
        task_list_kind(TASK_KIND_ENCODER, list, sizeof list);
        return err_set(e, ERR_INVALID, "unknown task '%.40s' (tasks: %s)", task ? task : "(null)",
                       list);
    }
    return open_row(dir, task_row((enum task_id)t), task, dt, threads, out, e);
}

int pipeline_open_task(const char *dir, enum task_id task, enum dtype_compute dt, int threads,
                       struct pipeline **out, struct err *e)
{
    *out = NULL;
    if ((unsigned)task >= TASK_COUNT || task_kind(task) != TASK_KIND_ENCODER)
        return err_set(e, ERR_INVALID, "task '%s' is not an encoder pipeline", task_name(task));
    return open_row(dir, task_row(task), task_name(task), dt, threads, out, e);
}

void pipeline_close(struct pipeline *p)
{
    if (!p)
        return;
    if (p->labels)
        for (size_t i = 0; i < p->out_width; i++)
            free(p->labels[i]);
    free(p->labels);
    embeddings_prompts_fini(&p->prompts);
    encoder_free(p->m);
    tokenizer_free(p->tk);
    free(p);
}

enum task_id pipeline_task(const struct pipeline *p)
{
    return p->row->task;
}

const struct tokenizer *pipeline_tokenizer(const struct pipeline *p)
{
    return p->tk;
}

size_t pipeline_num_labels(const struct pipeline *p)
{
    return p->labels ? p->out_width : 0;
}

const char *const *pipeline_labels(const struct pipeline *p)
{
    return (const char *const *)p->labels;
}

size_t pipeline_pooling_name(const struct pipeline *p, char *buf, size_t size)
{
    if (size)
        buf[0] = '\0';
    return p->pool ? embeddings_pooling_name(p->pool, buf, size) : 0;
}

const struct encoder *pipeline_encoder(const struct pipeline *p)
{
    return p->m;
}

size_t pipeline_max_tokens(const struct pipeline *p)
{
    return p->max_tokens;
}

void pipeline_set_batch_tokens(struct pipeline *p, size_t n_tokens)
{
    p->batch_tokens = n_tokens ? n_tokens : DEFAULT_BATCH_TOKENS;
}

void pipeline_set_limits(struct pipeline *p, const struct pipeline_limits *l)
{
    p->limits = *l;
}

/* ---- limits ---- */

int pipeline_check_inputs(const struct pipeline_limits *l, size_t n, struct err *e)
{
    if (l->max_inputs && n > l->max_inputs)
        return err_set(e, ERR_INVALID,
                       "batch size %zu > maximum allowed batch size %zu "
                       "(limits.max_client_batch_size)",
                       n, l->max_inputs);
    return 0;
}

int pipeline_check_tokens(const struct pipeline_limits *l, size_t n, struct err *e)
{
    if (l->max_tokens && n > l->max_tokens)
        return err_set(e, ERR_INVALID,
                       "`inputs` must have less than %zu tokens in total "
                       "(limits.max_request_tokens). Given: %zu or more",
                       l->max_tokens + 1, n);
    return 0;
}

static int check_results(const struct pipeline_limits *l, size_t n, struct err *e)
{
    if (l->max_results && n > l->max_results)
        return err_set(e, ERR_INVALID,
                       "the request asks for %zu results > maximum allowed %zu "
                       "(limits.max_results): ask for a smaller top_k or send fewer inputs",
                       n, l->max_results);
    return 0;
}

/* ---- prepare ---- */

void pipeline_request_free(struct pipeline_request *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_units; i++) {
        struct unit *u = &r->units[i];
        encodings_fini(&u->encs);
        if (u->pairs)
            for (size_t k = 0; k < r->zs.n_labels; k++)
                encodings_fini(&u->pairs[k]);
        free(u->pairs);
    }
    for (size_t i = 0; i < r->n_items; i++)
        free(r->items[i].out);
    free(r->units);
    free(r->items);
    fill_mask_params_fini(&r->fm);
    if (r->zs_init)
        zero_shot_params_fini(&r->zs);
    json_decref(r->inputs);
    json_decref(r->parameters);
    free(r);
}

size_t pipeline_request_items(const struct pipeline_request *r)
{
    return r->n_items;
}

size_t pipeline_request_max_len(const struct pipeline_request *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_items; i++)
        if (r->items[i].enc->n > n)
            n = r->items[i].enc->n;
    return n;
}

size_t pipeline_request_tokens(const struct pipeline_request *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_items; i++)
        n += r->items[i].enc->n;
    return n;
}

/* Tokenizer truncation parameters of text-classification and feature-extraction, which
 * transformers passes on to the tokenizer: truncation (bool or strategy) and max_length.
 * Off by default, as the pipelines (tokenizer.json's own setting is overridden). */

/* Tokenizes unit u into its encoding(s): the task's hook, else the tokenizer with r->tp. */
static int encode_unit(const struct pipeline *p, struct pipeline_request *r, struct unit *u,
                       struct err *e)
{
    const struct task_row *t = p->row;
    if (t->encode)
        return t->encode(p, r, u, e);
    return tokenizer_encode(p->tk, u->text, u->len, u->pair, u->pair_len, &r->tp, &u->encs, e);
}

static int add_item(struct pipeline_request *r, const struct pipeline *p, size_t unit,
                    const struct encoding *enc, struct err *e)
{
    if (enc->n == 0)
        return err_set(e, ERR_INVALID, "%s: input %zu gives no tokens", p->row->name,
                       unit);
    if (enc->n > p->max_tokens)
        return err_set(e, ERR_INVALID,
                       "%s: input %zu has too many tokens (%zu, the model takes at most %zu); "
                       "shorten it or set parameters.truncation to true",
                       p->row->name, unit, enc->n, p->max_tokens);
    if (r->n_items == r->cap_items) {
        size_t cap = r->cap_items ? 2 * r->cap_items : 8;
        struct item *it = realloc(r->items, cap * sizeof *it);
        if (!it)
            return err_set(e, ERR_NOMEM, "pipeline: out of memory");
        r->items = it;
        r->cap_items = cap;
    }
    r->items[r->n_items++] = (struct item){.enc = enc, .normalize = r->normalize};
    return 0;
}

/* Tokenizes every unit into its encoder items, within the token and result limits; asks
 * stop (when given) before each unit. */
static int encode_units(const struct pipeline *p, struct pipeline_request *r,
                        const struct pipeline_stop *stop, struct err *e)
{
    const struct task_row *t = p->row;
    size_t tokens = 0, results = r->n_units * (t->unit_results ? t->unit_results(p, r) : 0);
    int rc = check_results(&p->limits, results, e);
    for (size_t i = 0; rc == 0 && i < r->n_units; i++) {
        struct unit *u = &r->units[i];
        if (stop && stop->fn(stop->arg)) {
            rc = err_set(e, ERR_CANCELLED, "%s: cancelled while tokenizing input %zu",
                         p->row->name, i);
            break;
        }
        if ((rc = encode_unit(p, r, u, e)) != 0)
            break;
        u->first = r->n_items;
        if (u->pairs) {
            for (size_t k = 0; k < r->zs.n_labels && rc == 0; k++)
                rc = add_item(r, p, i, &u->pairs[k].v[0], e);
        } else {
            /* every window (QA), else the encoding without overflow */
            size_t n = p->row->windows ? u->encs.n : 1;
            for (size_t k = 0; k < n && rc == 0; k++)
                rc = add_item(r, p, i, &u->encs.v[k], e);
        }
        u->n = r->n_items - u->first;
        for (size_t k = u->first; rc == 0 && k < r->n_items; k++)
            tokens += r->items[k].enc->n;
        if (rc == 0)
            rc = pipeline_check_tokens(&p->limits, tokens, e);
        if (rc == 0 && t->encoded_results && (results += t->encoded_results(p, r, u)) > 0)
            rc = check_results(&p->limits, results, e);
    }
    return rc;
}

int pipeline_prepare(const struct pipeline *p, const json_t *inputs, const json_t *parameters,
                     struct pipeline_request **out, struct err *e)
{
    return pipeline_prepare_until(p, inputs, parameters, NULL, out, e);
}

int pipeline_prepare_until(const struct pipeline *p, const json_t *inputs,
                           const json_t *parameters, const struct pipeline_stop *stop,
                           struct pipeline_request **out, struct err *e)
{
    *out = NULL;
    if (!inputs || json_is_null(inputs))
        return err_set(e, ERR_INPUT, "%s: 'inputs' is missing", p->row->name);
    int rc = pipeline_check_parameters(parameters, e);
    /* a list gives one unit per element (or one pair, which is below any limit) */
    if (rc == 0 && json_is_array(inputs))
        rc = pipeline_check_inputs(&p->limits, json_array_size(inputs), e);
    if (rc)
        return rc;
    struct pipeline_request *r = calloc(1, sizeof *r);
    if (!r)
        return err_set(e, ERR_NOMEM, "pipeline: out of memory");
    r->inputs = json_deep_copy(inputs);
    r->parameters = json_is_object(parameters) ? json_deep_copy(parameters) : json_object();
    if (!r->inputs || !r->parameters) {
        rc = err_set(e, ERR_NOMEM, "pipeline: out of memory");
        goto fail;
    }
    if ((rc = p->row->parse(p, r, e)) != 0)
        goto fail;
    if (r->n_units == 0) {
        rc = err_set(e, ERR_INVALID, "%s: 'inputs' is an empty list", p->row->name);
        goto fail;
    }
    if ((rc = pipeline_check_inputs(&p->limits, r->n_units, e)) != 0 ||
        (rc = encode_units(p, r, stop, e)) != 0)
        goto fail;
    *out = r;
    return 0;
fail:
    pipeline_request_free(r);
    return rc;
}

/* ---- forward ---- */

static int by_length(const void *a, const void *b)
{
    const struct item *x = *(const struct item *const *)a, *y = *(const struct item *const *)b;
    if (x->enc->n != y->enc->n)
        return x->enc->n < y->enc->n ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Number of mask tokens of an encoding (fill-mask's vocabulary rows). */
static size_t count_masks(const struct encoding *enc, int32_t mask)
{
    size_t n = 0;
    for (size_t i = 0; i < enc->n; i++)
        n += enc->ids[i] == mask;
    return n;
}

int item_store(struct item *it, const float *src, size_t len, struct err *e)
{
    free(it->out);
    it->out_len = 0;
    if (!(it->out = malloc((len ? len : 1) * sizeof *it->out)))
        return err_set(e, ERR_NOMEM, "pipeline: out of memory");
    memcpy(it->out, src, len * sizeof *it->out);
    it->out_len = len;
    return 0;
}

/* Keeps item b's part of the batch outputs: the task's keep hook on its hidden states
 * (batch, seq, hidden), else its head output: a row (sequence classifier), its mask rows
 * from lm_row (masked LM), or a row per token (token classifier, QA). */
static int keep_output(const struct pipeline *p, struct item *it, int b, int S, const float *out,
                       const float *hidden, size_t lm_row, int32_t mask, struct err *e)
{
    size_t n = it->enc->n, W = p->out_width, H = p->hidden_size;
    if (p->row->keep)
        return p->row->keep(p, it, hidden + (size_t)b * (size_t)S * H, e);
    if (p->head == HEAD_SEQ_CLS)
        return item_store(it, out + (size_t)b * W, W, e);
    if (p->head == HEAD_MASKED_LM)
        return item_store(it, out + lm_row * W, count_masks(it->enc, mask) * W, e);
    return item_store(it, out + (size_t)b * (size_t)S * W, n * W, e);
}

/* One padded encoder batch over items[0..B). */
static int run_batch(const struct pipeline *p, struct dnn_ctx *ctx, struct encoder_run *run,
                     struct item **items, int B, struct err *e)
{
    int S = (int)items[B - 1]->enc->n; /* sorted by length: the last is the longest */
    size_t M = (size_t)B * (size_t)S;
    int32_t pad = p->cfg->pad_token_id >= 0 ? (int32_t)p->cfg->pad_token_id : 0;
    int32_t mask_id = pipeline_special_id(p->tk, "mask_token");
    int32_t *ids = malloc(M * sizeof *ids);     /* (B, S) */
    int32_t *types = malloc(M * sizeof *types); /* (B, S) */
    int32_t *mask = malloc(M * sizeof *mask);   /* (B, S) */
    int32_t *lm_rows = malloc((M ? M : 1) * sizeof *lm_rows);
    int rc = 0;
    if (!ids || !types || !mask || !lm_rows) {
        rc = err_set(e, ERR_NOMEM, "pipeline: out of memory for a batch of %d x %d", B, S);
        goto cleanup;
    }
    int n_lm = 0;
    for (int b = 0; b < B; b++) {
        const struct encoding *enc = items[b]->enc;
        for (int t = 0; t < S; t++) {
            size_t r = (size_t)b * (size_t)S + (size_t)t, n = enc->n;
            bool in = (size_t)t < n;
            ids[r] = in ? enc->ids[t] : pad;
            types[r] = in ? (int32_t)enc->type_ids[t] : 0;
            mask[r] = in ? enc->attention[t] : 0;
            if (in && p->head == HEAD_MASKED_LM && p->row->mask_rows && enc->ids[t] == mask_id)
                lm_rows[n_lm++] = (int32_t)r;
        }
    }
    if (p->head == HEAD_MASKED_LM && n_lm == 0) /* hidden states only: one cheap row */
        lm_rows[n_lm++] = 0;
    struct encoder_batch batch = {.batch = B,
                                  .seq = S,
                                  .ids = ids,
                                  .type_ids = types,
                                  .mask = mask,
                                  .lm_rows = lm_rows,
                                  .n_lm_rows = n_lm};
    if (p->head != HEAD_MASKED_LM) {
        batch.lm_rows = NULL;
        batch.n_lm_rows = 0;
    }
    const float *out = NULL, *hidden = NULL;
    if ((rc = encoder_forward(p->m, ctx, run, &batch, &out, p->row->hidden ? &hidden : NULL,
                              e)) != 0)
        goto cleanup;
    size_t lm_row = 0;
    for (int b = 0; b < B && rc == 0; b++) {
        rc = keep_output(p, items[b], b, S, out, hidden, lm_row, mask_id, e);
        if (p->row->mask_rows)
            lm_row += count_masks(items[b]->enc, mask_id);
    }
cleanup:
    free(ids);
    free(types);
    free(mask);
    free(lm_rows);
    return rc;
}

/* ---- workers ---- */

struct pipeline_worker {
    struct dnn_ctx *ctx;
    struct encoder_run *run;
};

int pipeline_worker_new(int threads, struct pipeline_worker **out, struct err *e)
{
    struct pipeline_worker *w = calloc(1, sizeof *w);
    *out = NULL;
    if (!w)
        return err_set(e, ERR_NOMEM, "pipeline: out of memory");
    w->ctx = dnn_ctx_new(threads > 0 ? threads : 0, e);
    w->run = w->ctx ? encoder_run_new() : NULL;
    if (!w->run) {
        pipeline_worker_free(w);
        return w->ctx ? err_set(e, ERR_NOMEM, "pipeline: out of memory") : ctx_failed(e);
    }
    *out = w;
    return 0;
}

void pipeline_worker_free(struct pipeline_worker *w)
{
    if (!w)
        return;
    encoder_run_free(w->run);
    dnn_ctx_free(w->ctx);
    free(w);
}

void pipeline_worker_set_stop(struct pipeline_worker *w, bool (*stop)(void *arg), void *arg)
{
    encoder_run_set_stop(w->run, stop, arg);
}

int pipeline_forward(const struct pipeline *p, struct pipeline_worker *w,
                     struct pipeline_request *const *reqs, size_t n_reqs, struct err *e)
{
    size_t n = 0;
    for (size_t i = 0; i < n_reqs; i++)
        n += reqs[i]->n_items;
    if (n == 0)
        return 0;
    struct item **all = malloc(n * sizeof *all);
    if (!all)
        return err_set(e, ERR_NOMEM, "pipeline: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n_reqs; i++)
        for (size_t j = 0; j < reqs[i]->n_items; j++) {
            all[k] = &reqs[i]->items[j];
            all[k]->order = k;
            k++;
        }
    /* sorted by length, padding stays small; each batch holds at most batch_tokens padded
     * tokens (rows x its longest row) */
    qsort(all, n, sizeof *all, by_length);
    int rc = 0;
    for (size_t from = 0; from < n && rc == 0;) {
        size_t to = from + 1;
        while (to < n && (to + 1 - from) * all[to]->enc->n <= p->batch_tokens && to - from < 4096)
            to++;
        rc = run_batch(p, w->ctx, w->run, all + from, (int)(to - from), e);
        from = to;
    }
    free(all);
    for (size_t i = 0; i < n_reqs && rc == 0; i++)
        reqs[i]->forwarded = true;
    return rc;
}


int pipeline_finish(const struct pipeline *p, const struct pipeline_request *r, json_t **out,
                    struct err *e)
{
    *out = NULL;
    if (!r->forwarded)
        return err_set(e, ERR_INTERNAL, "pipeline_finish: the request was not forwarded");
    json_t *list = r->list_result ? json_array() : NULL;
    if (r->list_result && !list)
        return err_set(e, ERR_NOMEM, "pipeline: out of memory");
    for (size_t i = 0; i < r->n_units; i++) {
        json_t *one = NULL;
        int rc = p->row->finish(p, r, &r->units[i], &one, e);
        if (rc) {
            json_decref(list);
            return rc;
        }
        if (!list) {
            *out = one;
            return 0;
        }
        if (json_array_append_new(list, one) != 0) {
            json_decref(list);
            return err_set(e, ERR_NOMEM, "pipeline: out of memory");
        }
    }
    *out = list;
    return 0;
}

int pipeline_run(const struct pipeline *p, struct pipeline_worker *w, const json_t *inputs,
                 const json_t *parameters, json_t **out, struct err *e)
{
    *out = NULL;
    struct pipeline_request *r = NULL;
    int rc = pipeline_prepare(p, inputs, parameters, &r, e);
    if (rc == 0)
        rc = pipeline_forward(p, w, &r, 1, e);
    if (rc == 0)
        rc = pipeline_finish(p, r, out, e);
    pipeline_request_free(r);
    return rc;
}
