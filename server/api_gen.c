/* api_gen: see api_gen.h. The scheduler's callbacks (gen_on_event, gen_on_done) run on its
 * worker thread and only copy, format and hand over: the HTTP side answers on its own threads
 * (a resumed call) or libmicrohttpd sends the stream's bytes. */
#include "api_gen.h"
#include "registry.h"
#include "server.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batcher.h"

/* ---- life ---- */

static void token_fini(struct gen_token *t)
{
    free(t->text);
    for (uint32_t k = 0; t->top_text && k < t->n_top; k++)
        free(t->top_text[k]);
    free(t->top_text);
    free(t->top);
    memset(t, 0, sizeof *t);
}

static void gen_unref(struct gen_call *g)
{
    pthread_mutex_lock(&g->mu);
    bool last = --g->refs == 0;
    pthread_mutex_unlock(&g->mu);
    if (!last)
        return;
    for (size_t i = 0; i < GEN_MAX_CHOICES; i++) {
        struct gen_out *o = &g->out[i];
        for (size_t k = 0; k < o->n_tokens; k++)
            token_fini(&o->tokens[k]);
        free(o->tokens);
        token_fini(&o->last);
        free(o->last_delta);
        free(o->text);
        free(o->prompt_logprobs);
        for (size_t k = 0; k < o->n_hyps; k++) {
            free(o->hyps[k].text);
            free(o->hyps[k].ids);
        }
        free(o->hyps);
    }
    if (g->stream)
        call_stream_end(g->stream, false);
    gen_params_fini(&g->params);
    free(g->prompt);
    free(g->prompt_text);
    for (size_t i = 0; i < g->n_prompts; i++) {
        free(g->prompts[i].ids);
        free(g->prompts[i].text);
    }
    if (g->user_fini)
        g->user_fini(g);
    free(g->user);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

/* The call ended (answered, or the client went away): cancel what still runs. */
static void gen_on_call_end(void *arg)
{
    struct gen_call *g = arg;
    pthread_mutex_lock(&g->mu);
    g->call = NULL;
    for (size_t i = 0; i < g->n; i++)
        if (g->out[i].req && !g->out[i].done)
            gen_sched_cancel(g->out[i].req);
    pthread_mutex_unlock(&g->mu);
    gen_unref(g);
}

static void random_hex(char *out, size_t n_hex)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t r = 0;
    for (size_t i = 0; i < n_hex; i++) {
        if (i % 16 == 0)
            r = gen_seed_random();
        out[i] = hex[r & 15];
        r >>= 4;
    }
    out[n_hex] = '\0';
}

struct gen_call *gen_call_new(struct call *c, struct model *m, const struct gen_api *api)
{
    struct gen_call *g = calloc(1, sizeof *g);
    if (!g) {
        call_error(c, ERR_NOMEM, NULL, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&g->mu, NULL);
    g->refs = 1; /* the call's */
    g->call = c;
    g->model = m;
    g->gm = model_gen_model(m);
    g->gs = model_gen_sched(m);
    g->api = api;
    gen_api_init(api, &g->params, g->gm ? gen_model_config(g->gm) : NULL);
    g->created = (long long)time(NULL);
    g->t_start = now_seconds();
    const char *prefix = api == &gen_api_chat ? "chatcmpl-" : "cmpl-";
    size_t pl = strlen(prefix);
    memcpy(g->id, prefix, pl);
    random_hex(g->id + pl, 32);
    for (size_t i = 0; i < GEN_MAX_CHOICES; i++) {
        g->out[i].g = g;
        g->out[i].index = i;
    }
    call_on_end(c, gen_on_call_end, g);
    return g;
}

/* ---- errors ---- */

/* A refused request, not a failure: TGI's message starts "Input validation error: ". */
static bool is_validation(int kind)
{
    return kind == ERR_GEN_INVALID || kind == ERR_GEN_SCHEMA || kind == ERR_INVALID ||
           kind == ERR_INPUT;
}

void gen_call_error(struct gen_call *g, int kind, const char *param, const char *msg)
{
    if (!g->call)
        return;
    if (g->api->dialect == DIALECT_TGI && is_validation(kind))
        call_error(g->call, kind, param, "Input validation error: %s", msg);
    else
        call_error(g->call, kind, param, "%s", msg);
}

void gen_call_template_error(struct gen_call *g, int rc, const char *param, const char *msg)
{
    if (rc == ERR_INVALID)
        gen_call_error(g, ERR_GEN_INVALID, param, msg);
    else
        gen_call_error(g, ERR_INTERNAL, NULL, msg);
}

int gen_out_kind(const struct gen_out *o)
{
    static const int kinds[] = {
        [GEN_OK] = ERR_OK,
        [GEN_TIMEOUT] = ERR_TIMEOUT,
        [GEN_CANCELLED] = ERR_UNAVAILABLE,
        [GEN_FAILED] = ERR_GEN_FAILED,
    };
    return kinds[o->status];
}

/* The message of a choice that did not end normally. */
static void out_message(const struct gen_out *o, char *msg, size_t size)
{
    switch (o->status) {
    case GEN_TIMEOUT: snprintf(msg, size, "Request timed out during generation"); break;
    case GEN_CANCELLED: snprintf(msg, size, "Request cancelled"); break;
    default:
        snprintf(msg, size, "Request failed during generation: %s",
                 o->error[0] ? o->error : "unknown error");
    }
}

bool gen_call_answer_failure(struct gen_call *g, struct call *c)
{
    if (g->fail_kind) {
        call_error(c, g->fail_kind, NULL, "%s", g->fail_msg);
        return true;
    }
    for (size_t i = 0; i < g->n; i++) {
        const struct gen_out *o = &g->out[i];
        if (o->status == GEN_OK)
            continue;
        char msg[400];
        out_message(o, msg, sizeof msg);
        call_error(c, gen_out_kind(o), NULL, "%s", msg);
        return true;
    }
    return false;
}

/* ---- the prompt ---- */

int gen_call_tokenize(struct gen_call *g, const char *text, size_t len, bool add_special)
{
    int32_t *ids = NULL;
    size_t n = 0;
    struct err e = {0};
    int rc = gen_model_tokenize(g->gm, text, len, add_special, false, &ids, &n, &e);
    if (rc) {
        gen_call_error(g, rc == ERR_NOMEM ? ERR_NOMEM : ERR_GEN_INVALID, NULL, e.msg);
        return -1;
    }
    free(g->prompt);
    g->prompt = ids;
    g->n_prompt = n;
    return 0;
}

int gen_call_set_ids(struct gen_call *g, const int32_t *ids, size_t n)
{
    size_t vocab = (size_t)gen_model_vocab_size(g->gm);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= vocab) {
            char msg[128];
            snprintf(msg, sizeof msg, "Token id %d is out of vocabulary", ids[i]);
            gen_call_error(g, ERR_GEN_INVALID, "prompt", msg);
            return -1;
        }
    free(g->prompt);
    g->prompt = malloc((n ? n : 1) * sizeof *ids);
    if (!g->prompt) {
        gen_call_error(g, ERR_NOMEM, NULL, "out of memory");
        return -1;
    }
    memcpy(g->prompt, ids, n * sizeof *ids);
    g->n_prompt = n;
    return 0;
}

int gen_call_set_prompt_text(struct gen_call *g, const char *text, size_t len)
{
    free(g->prompt_text);
    g->prompt_text = malloc(len + 1);
    if (!g->prompt_text) {
        gen_call_error(g, ERR_NOMEM, NULL, "out of memory");
        return -1;
    }
    memcpy(g->prompt_text, text, len);
    g->prompt_text[len] = '\0';
    g->prompt_text_len = len;
    return 0;
}

int gen_call_push_prompt(struct gen_call *g)
{
    if (g->n_prompts >= GEN_MAX_CHOICES) {
        gen_call_error(g, ERR_GEN_INVALID, "prompt", "too many prompts");
        return -1;
    }
    struct gen_prompt *p = &g->prompts[g->n_prompts++];
    p->ids = g->prompt;
    p->n = g->n_prompt;
    p->text = g->prompt_text;
    p->text_len = g->prompt_text_len;
    g->prompt = NULL;
    g->n_prompt = 0;
    g->prompt_text = NULL;
    g->prompt_text_len = 0;
    return 0;
}

struct gen_prompt gen_call_prompt(const struct gen_call *g, size_t i)
{
    if (g->n_prompts)
        return g->prompts[g->out[i].prompt_i];
    struct gen_prompt p = {g->prompt, g->n_prompt, g->prompt_text, g->prompt_text_len};
    return p;
}

size_t gen_call_prompt_tokens(const struct gen_call *g)
{
    size_t n = g->n_prompts ? 0 : g->n_prompt;
    for (size_t i = 0; i < g->n_prompts; i++)
        n += g->prompts[i].n;
    return n;
}

int gen_call_check(struct gen_call *g)
{
    struct gen_params *p = &g->params;
    if (p->truncate && g->n_prompt > p->truncate) { /* TGI truncates on the left */
        memmove(g->prompt, g->prompt + (g->n_prompt - p->truncate),
                p->truncate * sizeof *g->prompt);
        g->n_prompt = p->truncate;
    }
    if (g->n_prompt == 0) {
        gen_call_error(g, ERR_GEN_INVALID, NULL,
                       g->api->dialect == DIALECT_TGI ? "`inputs` cannot be empty"
                                                      : "The prompt is empty: it has no tokens");
        return -1;
    }
    struct err e = {0};
    if (gen_api_resolve_length(g->api, p, g->n_prompt, model_gen_max_input(g->model),
                               model_gen_max_total(g->model), &e) != 0) {
        gen_call_error(g, ERR_GEN_INVALID, NULL, e.msg);
        return -1;
    }
    return 0;
}

/* ---- the scheduler's callbacks (worker thread) ---- */

static char *dup_text(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        if (n)
            memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* A token as recorded: its text and alternatives (each id decoded alone, as TGI does). */
static void token_from_event(struct gen_call *g, const struct gen_event *ev, struct gen_token *t)
{
    memset(t, 0, sizeof *t);
    t->id = ev->token.id;
    t->logprob = ev->token.logprob;
    t->special = ev->special;
    t->text = dup_text(ev->token_text ? ev->token_text : "", ev->token_text_len);
    uint32_t n = ev->token.n_top;
    if (n == 0)
        return;
    t->top = malloc(n * sizeof *t->top);
    t->top_text = calloc(n, sizeof *t->top_text);
    if (!t->top || !t->top_text)
        return;
    t->n_top = n;
    for (uint32_t k = 0; k < n; k++) {
        t->top[k] = ev->token.top[k];
        char *s = NULL;
        size_t len = 0;
        struct err e = {0};
        if (gen_model_decode(g->gm, &t->top[k].id, 1, &s, &len, &e) != 0)
            s = NULL;
        t->top_text[k] = s ? s : dup_text("", 0);
    }
}

static void token_copy(struct gen_token *dst, const struct gen_token *src)
{
    *dst = *src;
    dst->text = dup_text(src->text ? src->text : "", src->text ? strlen(src->text) : 0);
    dst->top = NULL;
    dst->top_text = NULL;
    dst->n_top = 0;
    if (!src->n_top)
        return;
    dst->top = malloc(src->n_top * sizeof *dst->top);
    dst->top_text = calloc(src->n_top, sizeof *dst->top_text);
    if (!dst->top || !dst->top_text)
        return;
    dst->n_top = src->n_top;
    memcpy(dst->top, src->top, src->n_top * sizeof *dst->top);
    for (uint32_t k = 0; k < src->n_top; k++)
        dst->top_text[k] = dup_text(src->top_text[k], strlen(src->top_text[k]));
}

static void record(struct gen_out *o, const struct gen_token *t)
{
    if (o->n_tokens == o->cap_tokens) {
        size_t cap = o->cap_tokens ? o->cap_tokens * 2 : 32;
        struct gen_token *v = realloc(o->tokens, cap * sizeof *v);
        if (!v)
            return;
        o->tokens = v;
        o->cap_tokens = cap;
    }
    token_copy(&o->tokens[o->n_tokens++], t);
}

static void gen_on_event(void *owner, const struct gen_event *ev)
{
    struct gen_out *o = owner;
    struct gen_call *g = o->g;
    pthread_mutex_lock(&g->mu);
    if (!g->record_tokens && !g->ops) {
        pthread_mutex_unlock(&g->mu);
        return;
    }
    struct gen_token t;
    token_from_event(g, ev, &t);
    if (g->record_tokens)
        record(o, &t);
    if (g->ops && ev->finish != GEN_FINISH_NONE) {
        token_fini(&o->last); /* the last token waits for on_done and the result */
        o->last = t;
        o->has_last = true;
        free(o->last_delta);
        o->last_delta = dup_text(ev->text ? ev->text : "", ev->text_len);
        o->last_delta_len = o->last_delta ? ev->text_len : 0;
        pthread_mutex_unlock(&g->mu);
        return;
    }
    if (g->ops)
        g->ops->token(g, o->index, &t, ev->text ? ev->text : "", ev->text_len);
    token_fini(&t);
    pthread_mutex_unlock(&g->mu);
}

static void gen_on_resume(struct call *c, void *arg);

/* Every choice is done and the submit loop over (g->mu held). */
static void finish_locked(struct gen_call *g)
{
    if (g->ops) {
        if (g->stream && !g->fail_kind && g->ops->finish)
            g->ops->finish(g);
        if (g->stream)
            call_stream_end(g->stream, !g->fail_kind);
        g->stream = NULL;
    } else if (g->call) {
        call_resume(g->call);
    }
}

/* A beam search's hypotheses copied into o (none when out of memory: the choice fails). */
static bool copy_hyps(struct gen_out *o, const struct gen_result *res)
{
    if (!res->n_hyps)
        return true;
    o->hyps = calloc(res->n_hyps, sizeof *o->hyps);
    if (!o->hyps)
        return false;
    o->n_hyps = res->n_hyps;
    for (size_t k = 0; k < res->n_hyps; k++) {
        const struct gen_hyp *h = &res->hyps[k];
        struct gen_out_hyp *d = &o->hyps[k];
        d->text = dup_text(h->text, h->text_len);
        d->ids = malloc((h->n_ids ? h->n_ids : 1) * sizeof *d->ids);
        if (!d->text || !d->ids)
            return false;
        d->text_len = h->text_len;
        memcpy(d->ids, h->ids, h->n_ids * sizeof *d->ids);
        d->n_ids = h->n_ids;
        d->score = h->score;
    }
    return true;
}

static void gen_on_done(void *owner, const struct gen_result *res)
{
    struct gen_out *o = owner;
    struct gen_call *g = o->g;
    pthread_mutex_lock(&g->mu);
    o->done = true;
    o->req = NULL;
    o->status = res->status;
    o->finish = res->finish;
    snprintf(o->error, sizeof o->error, "%s", res->error);
    o->text = dup_text(res->text ? res->text : "", res->text_len);
    o->text_len = o->text ? res->text_len : 0;
    o->n_generated = res->n_generated;
    if (!copy_hyps(o, res) && o->status == GEN_OK) {
        o->status = GEN_FAILED;
        snprintf(o->error, sizeof o->error, "out of memory");
    }
    o->seed = res->seed;
    o->cached_tokens = res->cached_tokens;
    o->queue_seconds = res->queue_seconds;
    o->first_token_seconds = res->first_token_seconds;
    o->total_seconds = res->total_seconds;
    if (g->params.decoder_input_details && res->prompt_logprobs && res->n_prompt) {
        o->prompt_logprobs = malloc(res->n_prompt * sizeof *o->prompt_logprobs);
        if (o->prompt_logprobs)
            memcpy(o->prompt_logprobs, res->prompt_logprobs,
                   res->n_prompt * sizeof *o->prompt_logprobs);
    }
    if (g->ops && g->stream && !g->fail_kind) {
        if (o->status == GEN_OK)
            g->ops->last(g, o->index, o->has_last ? &o->last : NULL,
                         o->has_last ? o->last_delta : "", o->has_last ? o->last_delta_len : 0);
        else
            g->ops->error(g, o->index);
    }
    g->n_done++;
    if (!g->submitting && g->n_done == g->n)
        finish_locked(g);
    pthread_mutex_unlock(&g->mu);
    gen_unref(g);
}

/* ---- running ---- */

static void gen_on_resume(struct call *c, void *arg)
{
    struct gen_call *g = arg;
    pthread_mutex_lock(&g->mu);
    bool failed = gen_call_answer_failure(g, c);
    const struct gen_out *o = &g->out[0];
    call_set_times(c, o->queue_seconds, o->total_seconds - o->queue_seconds);
    pthread_mutex_unlock(&g->mu);
    if (!failed)
        g->done_fn(g, c);
}

void gen_call_run(struct gen_call *g, size_t n, gen_done_fn done, const struct gen_stream_ops *ops,
                  const char *content_type)
{
    struct call *c = g->call;
    if (!g->gs) {
        gen_call_error(g, ERR_UNAVAILABLE, NULL, "the model is not loaded");
        return;
    }
    if (n < 1 || n > GEN_MAX_CHOICES)
        n = n < 1 ? 1 : GEN_MAX_CHOICES;
    g->done_fn = done;
    g->ops = ops;
    if (ops && !(g->stream = call_stream_new())) {
        gen_call_error(g, ERR_NOMEM, NULL, "out of memory");
        return;
    }
    long timeout_ms = server_config(call_server(c))->request_timeout_ms;
    pthread_mutex_lock(&g->mu);
    g->n = n;
    g->submitting = true;
    size_t per = g->n_prompts ? n / g->n_prompts : n; /* choices per prompt */
    for (size_t i = 0; i < n; i++)
        g->out[i].prompt_i = g->n_prompts ? i / per : 0;
    pthread_mutex_unlock(&g->mu);
    if (!ops)
        call_suspend(c, gen_on_resume, g);
    size_t submitted = 0;
    int fail_kind = ERR_OK;
    char fail_msg[ERR_MSG_SIZE + 64] = "";
    for (size_t i = 0; i < n; i++) {
        struct gen_params p;
        struct err e = {0};
        if (gen_params_copy(&p, &g->params, &e) != 0) {
            fail_kind = ERR_INTERNAL;
            snprintf(fail_msg, sizeof fail_msg, "%s", e.msg);
            break;
        }
        p.seed = g->params.seed + i % per;
        g->out[i].seed = p.seed;
        struct gen_prompt prompt = gen_call_prompt(g, i);
        struct gen_req_spec spec = {
            .prompt = prompt.ids,
            .n_prompt = prompt.n,
            .params = &p,
            .deadline = timeout_ms > 0 ? g->t_start + (double)timeout_ms * 1e-3 : 0,
            .fd = call_fd(c),
            .on_event = gen_on_event,
            .on_done = gen_on_done,
            .owner = &g->out[i],
        };
        pthread_mutex_lock(&g->mu);
        g->refs++; /* the request's, dropped in gen_on_done */
        pthread_mutex_unlock(&g->mu);
        struct gen_req *r = NULL;
        int rc = gen_sched_submit(g->gs, &spec, &r, &e);
        gen_params_fini(&p);
        if (rc) {
            pthread_mutex_lock(&g->mu);
            g->refs--;
            pthread_mutex_unlock(&g->mu);
            fail_kind = rc == ERR_INVALID ? ERR_GEN_INVALID : rc;
            if (rc == ERR_BUSY)
                snprintf(fail_msg, sizeof fail_msg, "Model is overloaded");
            else if (g->api->dialect == DIALECT_TGI && is_validation(fail_kind))
                snprintf(fail_msg, sizeof fail_msg, "Input validation error: %s", e.msg);
            else
                snprintf(fail_msg, sizeof fail_msg, "%s", e.msg);
            break;
        }
        pthread_mutex_lock(&g->mu);
        if (!g->out[i].done)
            g->out[i].req = r;
        pthread_mutex_unlock(&g->mu);
        submitted++;
    }
    pthread_mutex_lock(&g->mu);
    g->submitting = false;
    if (fail_kind) {
        g->n = submitted;
        g->fail_kind = fail_kind;
        snprintf(g->fail_msg, sizeof g->fail_msg, "%s", fail_msg);
        for (size_t i = 0; i < submitted; i++)
            if (g->out[i].req && !g->out[i].done)
                gen_sched_cancel(g->out[i].req);
    }
    bool all_done = g->n_done == g->n;
    if (ops) {
        if (fail_kind) { /* answered now; the cancelled choices end in the dead stream */
            call_error(c, fail_kind, NULL, "%s", fail_msg);
            if (all_done)
                finish_locked(g);
        } else if (call_stream_start(c, g->stream, content_type) == 0 && all_done) {
            finish_locked(g);
        }
    } else if (all_done) {
        finish_locked(g); /* resumes the call: gen_on_resume answers */
    }
    pthread_mutex_unlock(&g->mu);
}

/* ---- helpers for the dialects ---- */

json_t *gen_text_json(const char *prompt, size_t prompt_len, const char *text, size_t len)
{
    char *s = malloc(prompt_len + len + 1);
    if (!s)
        return NULL;
    if (prompt_len)
        memcpy(s, prompt, prompt_len);
    if (len)
        memcpy(s + prompt_len, text, len);
    json_t *v = json_stringn(s, prompt_len + len);
    free(s);
    return v;
}

void gen_emit(struct gen_call *g, const char *data, size_t len)
{
    if (g->stream)
        call_stream_write(g->stream, data, len);
}

void gen_emit_json(struct gen_call *g, json_t *v)
{
    char *text = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(v);
    if (!text)
        return;
    size_t n = strlen(text);
    char *line = malloc(n + 9);
    if (line) {
        memcpy(line, "data: ", 6);
        memcpy(line + 6, text, n);
        memcpy(line + 6 + n, "\n\n", 2);
        gen_emit(g, line, n + 8);
    }
    free(line);
    free(text);
}

size_t gen_call_cached_tokens(const struct gen_call *g)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n; i++) /* each prompt once: its first choice's */
        if (i == 0 || g->out[i].prompt_i != g->out[i - 1].prompt_i)
            n += g->out[i].cached_tokens;
    return n;
}

size_t gen_call_completion_tokens(const struct gen_call *g)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n; i++)
        n += g->out[i].n_generated;
    return n;
}

json_t *gen_logprob_json(float lp)
{
    return isfinite(lp) ? json_real(lp) : json_null();
}
