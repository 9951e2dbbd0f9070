/* template: the public side of the chat template engine (see template.h): compile (lexer +
 * parser into the template's own arena), render (a fresh arena per call, freed before
 * returning; errors land here through longjmp), and loading a tokenizer directory's templates
 * and special tokens the way transformers' from_pretrained finds them. */
#include "chat/template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chat/tpl.h"

enum { COMPILE_LIMIT_BYTES = 64 << 20 }; /* tokens and AST of one template */

/* The defaults: measured in docs/DECISIONS.md ("Chat template budgets"). */
static const struct chat_template_budget default_budget = {
    .max_depth = 256,
    .max_value_depth = 64,
    .max_steps = 10 * 1000 * 1000,
    .max_output_bytes = 8 << 20,
    .max_memory_bytes = 128 << 20,
    .max_time_ms = 2000,
};

struct chat_template {
    struct tpl_job job; /* owns the arena holding the AST */
    struct nlist body;
    struct chat_template_budget budget; /* every field set */
    const char *source;                 /* the template's text, in the job's arena */
};

struct chat_template_budget chat_template_budget_default(void)
{
    return default_budget;
}

/* b's fields, the defaults where b is NULL or a field is 0. */
static struct chat_template_budget budget_or_default(const struct chat_template_budget *b)
{
    struct chat_template_budget r = default_budget;
    if (!b)
        return r;
    r.max_depth = b->max_depth ? b->max_depth : r.max_depth;
    r.max_value_depth = b->max_value_depth ? b->max_value_depth : r.max_value_depth;
    r.max_steps = b->max_steps ? b->max_steps : r.max_steps;
    r.max_output_bytes = b->max_output_bytes ? b->max_output_bytes : r.max_output_bytes;
    r.max_memory_bytes = b->max_memory_bytes ? b->max_memory_bytes : r.max_memory_bytes;
    r.max_time_ms = b->max_time_ms ? b->max_time_ms : r.max_time_ms;
    return r;
}

int chat_template_compile(const char *source, struct chat_template **out, struct err *e)
{
    return chat_template_compile_budget(source, NULL, out, e);
}

int chat_template_compile_budget(const char *source, const struct chat_template_budget *budget,
                                 struct chat_template **out, struct err *e)
{
    *out = NULL;
    struct chat_template *t = calloc(1, sizeof *t);
    if (!t)
        return err_set(e, ERR_NOMEM, "chat template: out of memory");
    t->budget = budget_or_default(budget);
    tpl_job_init(&t->job, e, COMPILE_LIMIT_BYTES);
    t->job.compiling = true;
    t->job.max_depth = t->budget.max_depth;
    if (setjmp(t->job.jb)) {
        int kind = t->job.kind;
        tpl_job_free_arena(&t->job);
        free(t);
        return kind;
    }
    size_t len = strlen(source);
    if (!utf8_valid(source, len))
        tpl_fail(&t->job, ERR_FORMAT, "the template is not valid UTF-8");
    struct token *toks;
    size_t n;
    tpl_lex(&t->job, source, len, &toks, &n);
    t->body = tpl_parse(&t->job, toks, n);
    t->source = tpl_strndup(&t->job, source, len);
    t->job.e = NULL;
    t->job.line = t->job.col = 0;
    t->job.compiling = false;
    *out = t;
    return 0;
}

bool chat_template_mentions(const struct chat_template *t, const char *needle)
{
    return t && strstr(t->source, needle) != NULL;
}

void chat_template_free(struct chat_template *t)
{
    if (!t)
        return;
    tpl_job_free_arena(&t->job);
    free(t);
}

static void set_var(struct rctx *c, const char *name, struct tv v)
{
    tpl_scope_set(c, c->root, tpl_strndup(&c->job, name, strlen(name)), v);
}

int chat_template_render(const struct chat_template *t, const json_t *messages, const json_t *extra,
                         char **out, size_t *len, struct err *e)
{
    *out = NULL;
    if (len)
        *len = 0;
    struct rctx *c = calloc(1, sizeof *c);
    if (!c)
        return err_set(e, ERR_NOMEM, "chat template: out of memory");
    tpl_job_init(&c->job, e, t->budget.max_memory_bytes);
    tpl_job_budget(&c->job, &t->budget);
    if (setjmp(c->job.jb)) {
        int kind = c->job.kind;
        tpl_job_free_arena(&c->job);
        free(c);
        return kind;
    }
    if (extra && !json_is_object(extra))
        tpl_fail(&c->job, ERR_INVALID, "the extra variables must be a JSON object");
    c->root = tpl_alloc_zero(&c->job, sizeof *c->root);
    c->cur = c->root;
    /* transformers: render(messages=..., tools=..., documents=..., add_generation_prompt=...,
     * **kwargs) with tools and documents None unless given */
    set_var(c, "messages",
            messages ? tv_from_json(&c->job, messages) : tv_list(tlist_new(&c->job, 0)));
    set_var(c, "tools", tv_none());
    set_var(c, "documents", tv_none());
    set_var(c, "add_generation_prompt", tv_bool(false));
    const char *key;
    json_t *val;
    if (extra) {
        json_object_foreach((json_t *)extra, key, val)
        {
            if (strcmp(key, "messages") != 0)
                set_var(c, key, tv_from_json(&c->job, val));
        }
    }
    struct sbuf buf;
    sb_init(&buf, &c->job, 4096);
    c->out = &buf;
    tpl_exec(c, &t->body);
    char *text = malloc(buf.len + 1);
    if (!text)
        tpl_fail(&c->job, ERR_NOMEM, "out of memory");
    memcpy(text, buf.t->s, buf.len);
    text[buf.len] = '\0';
    *out = text;
    if (len)
        *len = buf.len;
    tpl_job_free_arena(&c->job);
    free(c);
    return 0;
}

/* ---- tokenizer directories ---------------------------------------------------------------- */

static char *read_text(const char *path, bool *missing)
{
    *missing = false;
    FILE *f = fopen(path, "rb");
    if (!f) {
        *missing = true;
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    bool failed = ferror(f);
    fclose(f);
    if (failed || memchr(buf, '\0', len)) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

static int compile_named(const char *text, const char *where, struct chat_template **out,
                         struct err *e)
{
    int rc = chat_template_compile(text, out, e);
    if (rc)
        err_prefix(e, "%s: ", where);
    return rc;
}

/* Reads DIR/NAME as a template when the file exists: 0 and *out NULL when it does not. */
static int load_jinja_file(const char *dir, const char *name, struct chat_template **out,
                           struct err *e)
{
    char path[4096];
    bool missing;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = read_text(path, &missing);
    if (!text)
        return missing ? 0 : err_set(e, ERR_IO, "%s: cannot be read", path);
    int rc = compile_named(text, path, out, e);
    free(text);
    return rc;
}

/* A `chat_template` value: a string, or a list of {"name", "template"}. */
static int load_template_value(const json_t *v, const char *path, struct chat_template_set *ts,
                               struct err *e)
{
    if (json_is_string(v))
        return compile_named(json_string_value(v), path, &ts->main, e);
    if (!json_is_array(v))
        return err_set(e, ERR_FORMAT, "%s: chat_template must be a string or a list", path);
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        const char *name = json_string_value(json_object_get(item, "name"));
        const char *text = json_string_value(json_object_get(item, "template"));
        if (!name || !text)
            return err_set(e, ERR_FORMAT, "%s: chat_template[%zu] needs \"name\" and \"template\"",
                           path, i);
        struct chat_template **slot = !strcmp(name, "default")    ? &ts->main
                                      : !strcmp(name, "tool_use") ? &ts->tool_use
                                                                  : NULL;
        if (slot && !*slot) {
            int rc = compile_named(text, path, slot, e);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* A special token in tokenizer_config.json: a string or an AddedToken {"content": ...}. */
static const char *token_text(const json_t *v)
{
    if (json_is_object(v))
        v = json_object_get(v, "content");
    return json_string_value(v);
}

static int load_special_tokens(const json_t *cfg, struct chat_template_set *ts, struct err *e)
{
    static const char *const names[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                        "pad_token", "cls_token", "mask_token"};
    ts->special_tokens = json_object();
    if (!ts->special_tokens)
        return err_set(e, ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *text = token_text(json_object_get(cfg, names[i]));
        if (text && json_object_set_new(ts->special_tokens, names[i], json_string(text)))
            return err_set(e, ERR_NOMEM, "out of memory");
    }
    const json_t *extra = json_object_get(cfg, "additional_special_tokens");
    if (json_is_array(extra)) {
        json_t *list = json_array();
        size_t i;
        json_t *item;
        json_array_foreach(extra, i, item)
        {
            const char *text = token_text(item);
            if (text)
                json_array_append_new(list, json_string(text));
        }
        json_object_set_new(ts->special_tokens, "additional_special_tokens", list);
    }
    const char *bos = json_string_value(json_object_get(ts->special_tokens, "bos_token"));
    const char *eos = json_string_value(json_object_get(ts->special_tokens, "eos_token"));
    ts->bos_token = bos ? strdup(bos) : NULL;
    ts->eos_token = eos ? strdup(eos) : NULL;
    if ((bos && !ts->bos_token) || (eos && !ts->eos_token))
        return err_set(e, ERR_NOMEM, "out of memory");
    return 0;
}

static int load_dir(const char *dir, struct chat_template_set *ts, struct err *e)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    json_error_t jerr;
    json_t *cfg = json_load_file(path, JSON_DECODE_INT_AS_REAL, &jerr);
    if (!cfg) {
        struct stat st;
        if (stat(path, &st) == 0)
            return err_set(e, ERR_FORMAT, "%s: line %d: %s", path, jerr.line, jerr.text);
        cfg = json_object(); /* no tokenizer_config.json: no tokens, maybe template files */
    }
    int rc = load_special_tokens(cfg, ts, e);
    if (!rc)
        rc = load_jinja_file(dir, "chat_template.jinja", &ts->main, e);
    if (!rc && !ts->main) {
        snprintf(path, sizeof path, "%s/chat_template.json", dir);
        json_t *tj = json_load_file(path, 0, &jerr);
        const json_t *v = json_object_get(tj, "chat_template");
        if (v)
            rc = load_template_value(v, path, ts, e);
        json_decref(tj);
    }
    if (!rc && !ts->main) {
        const json_t *v = json_object_get(cfg, "chat_template");
        snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
        if (v && !json_is_null(v))
            rc = load_template_value(v, path, ts, e);
    }
    if (!rc && !ts->tool_use)
        rc = load_jinja_file(dir, "additional_chat_templates/tool_use.jinja", &ts->tool_use, e);
    json_decref(cfg);
    return rc;
}

int chat_template_load_from_tokenizer_dir(const char *dir, struct chat_template_set *out,
                                          struct err *e)
{
    memset(out, 0, sizeof *out);
    int rc = load_dir(dir, out, e);
    if (rc)
        chat_template_set_fini(out);
    return rc;
}

void chat_template_set_fini(struct chat_template_set *ts)
{
    chat_template_free(ts->main);
    chat_template_free(ts->tool_use);
    free(ts->bos_token);
    free(ts->eos_token);
    json_decref(ts->special_tokens);
    memset(ts, 0, sizeof *ts);
}

int chat_template_set_render(const struct chat_template_set *ts, const json_t *messages,
                             const json_t *extra, char **out, size_t *len, struct err *e)
{
    *out = NULL;
    if (extra && !json_is_object(extra))
        return err_set(e, ERR_INVALID, "chat template: the extra variables must be a JSON object");
    const json_t *tools = extra ? json_object_get(extra, "tools") : NULL;
    const struct chat_template *t =
        tools && !json_is_null(tools) && ts->tool_use ? ts->tool_use : ts->main;
    if (!t)
        return err_set(e, ERR_INVALID, "this model has no chat template");
    json_t *vars = ts->special_tokens ? json_copy(ts->special_tokens) : json_object();
    if (!vars || (extra && json_object_update(vars, (json_t *)extra))) {
        json_decref(vars);
        return err_set(e, ERR_NOMEM, "chat template: out of memory");
    }
    int rc = chat_template_render(t, messages, vars, out, len, e);
    json_decref(vars);
    return rc;
}
