/* exec: statements, scopes, macros and calls, with Jinja2's scoping rules:
 *   - the template's top level is one scope (render arguments, top-level sets, macros);
 *   - each iteration of a for loop runs in a fresh scope: a `set` inside a loop is gone at
 *     the next iteration and after the loop (namespace() objects are how templates carry
 *     state out: `set ns.x = ...` changes the shared object);
 *   - `if` opens no scope; `with` and macro bodies do (a macro sees the top level, not its
 *     caller's loop variables);
 *   - a for loop's `else` runs when nothing was iterated; its `if` filters before counting,
 *     so loop.length and loop.last see the filtered items. */
#include <string.h>

#include "chat/tpl.h"

enum { MAX_MACRO_DEPTH = 64 };

static struct scope *scope_new(struct rctx *c, struct scope *parent)
{
    struct scope *s = tpl_alloc_zero(&c->job, sizeof *s);
    s->parent = parent;
    return s;
}

void tpl_scope_set(struct rctx *c, struct scope *s, const char *name, struct tv v)
{
    for (size_t i = 0; i < s->n; i++) {
        if (!strcmp(s->names[i], name)) {
            s->vals[i] = v;
            return;
        }
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4;
        const char **names = tpl_alloc(&c->job, cap * sizeof *names);
        struct tv *vals = tpl_alloc(&c->job, cap * sizeof *vals);
        if (s->n) {
            memcpy(names, s->names, s->n * sizeof *names);
            memcpy(vals, s->vals, s->n * sizeof *vals);
        }
        s->names = names;
        s->vals = vals;
        s->cap = cap;
    }
    s->names[s->n] = name;
    s->vals[s->n] = v;
    s->n++;
}

static void at_node(struct rctx *c, const struct node *n)
{
    c->job.line = n->line;
    c->job.col = n->col;
}

static void assign(struct rctx *c, const struct node *target, struct tv v)
{
    if (target->kind == N_NAME) {
        tpl_scope_set(c, c->cur, target->name, v);
    } else if (target->kind == N_NSREF) {
        struct tv ns = tpl_lookup(c, target->name);
        if (ns.t != TV_NS) {
            at_node(c, target);
            tpl_fail(&c->job, ERR_INVALID, "cannot assign attribute on non-namespace object");
        }
        tdict_set(&c->job, ns.u.d, tv_str(tstr_cstr(&c->job, target->attr)), v);
    } else {
        /* N_TUPLE: unpack an iterable of exactly as many items */
        at_node(c, target);
        const struct tlist *items = tpl_iterate(c, v);
        if (items->n < target->args.n)
            tpl_fail(&c->job, ERR_INVALID, "not enough values to unpack (expected %zu, got %zu)",
                     target->args.n, items->n);
        if (items->n > target->args.n)
            tpl_fail(&c->job, ERR_INVALID, "too many values to unpack (expected %zu)",
                     target->args.n);
        for (size_t i = 0; i < target->args.n; i++)
            assign(c, target->args.v[i], items->v[i]);
    }
}

/* Renders body into a string instead of the output. */
static struct tstr *capture(struct rctx *c, const struct nlist *body, struct scope *scope)
{
    struct sbuf buf, *saved_out = c->out;
    struct scope *saved_cur = c->cur;
    sb_init(&buf, &c->job, 256);
    c->out = &buf;
    c->cur = scope;
    tpl_exec(c, body);
    c->out = saved_out;
    c->cur = saved_cur;
    return sb_done(&buf);
}

/* Applies a filter chain whose innermost input is N_CAPTURED to text. */
static struct tv filter_captured(struct rctx *c, const struct node *chain, struct tstr *text)
{
    struct tstr *saved = c->captured;
    c->captured = text;
    struct tv v = tpl_eval(c, chain);
    c->captured = saved;
    return v;
}

static int exec_for(struct rctx *c, const struct node *n)
{
    const struct tlist *items = tpl_iterate(c, tpl_eval(c, n->b));
    struct scope *outer = c->cur;
    if (n->c) {
        /* `for x in xs if cond`: filter first, with only the target bound */
        struct tlist *kept = tlist_new(&c->job, items->n);
        struct scope *filter_scope = scope_new(c, outer);
        for (size_t i = 0; i < items->n; i++) {
            tpl_steps(&c->job, 1);
            filter_scope->n = 0;
            c->cur = filter_scope;
            assign(c, n->a, items->v[i]);
            if (tv_truthy(tpl_eval(c, n->c)))
                kept->v[kept->n++] = items->v[i];
        }
        c->cur = outer;
        items = kept;
    }
    if (items->n == 0)
        return tpl_exec(c, &n->orelse);
    struct tloop *loop = tpl_alloc_zero(&c->job, sizeof *loop);
    loop->length = items->n;
    loop->items = items;
    struct tv loop_v = {.t = TV_LOOP, .u.loop = loop};
    /* a fresh scope per iteration; nothing keeps a loop's scope (a macro sees the top level),
     * so one is emptied and reused rather than allocating one per iteration */
    struct scope *iteration = scope_new(c, outer);
    for (size_t i = 0; i < items->n; i++) {
        tpl_steps(&c->job, 1);
        loop->index0 = i;
        iteration->n = 0;
        c->cur = iteration;
        tpl_scope_set(c, c->cur, "loop", loop_v);
        assign(c, n->a, items->v[i]);
        int flow = tpl_exec(c, &n->body);
        c->cur = outer;
        if (flow == N_BREAK)
            break;
    }
    return 0;
}

static void exec_with(struct rctx *c, const struct node *n, int *flow)
{
    struct scope *outer = c->cur, *inner = scope_new(c, outer);
    for (size_t i = 0; i < n->args.n; i++)
        tpl_scope_set(c, inner, n->args.v[i]->name, tpl_eval(c, n->kwargs.v[i]));
    c->cur = inner;
    *flow = tpl_exec(c, &n->body);
    c->cur = outer;
}

static int exec_body(struct rctx *c, const struct nlist *body)
{
    for (size_t k = 0; k < body->n; k++) {
        const struct node *n = body->v[k];
        int flow = 0;
        tpl_steps(&c->job, 1);
        at_node(c, n);
        switch (n->kind) {
        case N_TEXT: sb_put(c->out, n->value.u.s->s, n->value.u.s->len); break;
        case N_PRINT: tv_str_into(&c->job, c->out, tpl_eval(c, n->a)); break;
        case N_IF: flow = tpl_exec(c, tv_truthy(tpl_eval(c, n->a)) ? &n->body : &n->orelse); break;
        case N_FOR: flow = exec_for(c, n); break;
        case N_SET: assign(c, n->a, tpl_eval(c, n->b)); break;
        case N_SET_BLOCK: {
            struct tstr *text = capture(c, &n->body, c->cur);
            assign(c, n->a, n->c ? filter_captured(c, n->c, text) : tv_str(text));
            break;
        }
        case N_MACRO: {
            struct tv m = {.t = TV_MACRO, .u.macro = n};
            tpl_scope_set(c, c->cur, n->name, m);
            break;
        }
        case N_BREAK:
        case N_CONTINUE: return (int)n->kind;
        case N_FILTER_BLOCK: {
            struct tstr *text = capture(c, &n->body, c->cur);
            tv_str_into(&c->job, c->out, filter_captured(c, n->c, text));
            break;
        }
        case N_WITH: exec_with(c, n, &flow); break;
        case N_BODY: flow = tpl_exec(c, &n->body); break;
        default:
            at_node(c, n);
            tpl_fail(&c->job, ERR_INTERNAL, "node %d is not a statement", (int)n->kind);
        }
        if (flow)
            return flow;
    }
    return 0;
}

int tpl_exec(struct rctx *c, const struct nlist *body)
{
    tpl_enter(&c->job);
    int flow = exec_body(c, body);
    tpl_leave(&c->job);
    return flow;
}

/* ---- calls -------------------------------------------------------------------------------- */

static struct tv call_macro(struct rctx *c, const struct node *m, const struct targs *a)
{
    if (c->macro_depth >= MAX_MACRO_DEPTH)
        tpl_fail(&c->job, ERR_INVALID, "macro '%s' recurses too deeply", m->name);
    size_t n_params = m->args.n, n_defaults = m->kwargs.n;
    if (a->n > n_params && !(m->op & MACRO_VARARGS))
        tpl_fail(&c->job, ERR_INVALID, "macro '%s' takes not more than %zu argument(s)", m->name,
                 n_params);
    struct scope *scope = scope_new(c, c->root);
    struct tlist *varargs = tlist_new(&c->job, 0);
    varargs->tuple = true;
    struct tdict *kwargs = tdict_new(&c->job, 0);
    /* bound[i]: parameter i got a value from the call */
    bool *bound = tpl_alloc_zero(&c->job, n_params + 1);
    for (size_t i = 0; i < a->n; i++) {
        if (i < n_params) {
            tpl_scope_set(c, scope, m->args.v[i]->name, a->pos[i]);
            bound[i] = true;
        } else {
            tlist_push(&c->job, varargs, a->pos[i]);
        }
    }
    for (size_t k = 0; k < a->n_kw; k++) {
        size_t i = 0;
        while (i < n_params && strcmp(m->args.v[i]->name, a->kw_names[k]))
            i++;
        if (i < n_params) {
            tpl_scope_set(c, scope, m->args.v[i]->name, a->kw[k]);
            bound[i] = true;
        } else if (m->op & MACRO_KWARGS) {
            tdict_set(&c->job, kwargs, tv_str(tstr_cstr(&c->job, a->kw_names[k])), a->kw[k]);
        } else {
            tpl_fail(&c->job, ERR_INVALID, "macro '%s' takes no keyword argument '%s'", m->name,
                     a->kw_names[k]);
        }
    }
    struct scope *saved = c->cur;
    c->cur = scope;
    for (size_t i = 0; i < n_params; i++) {
        if (bound[i])
            continue;
        size_t first_default = n_params - n_defaults;
        struct tv v = i >= first_default ? tpl_eval(c, m->kwargs.v[i - first_default])
                                         : tv_undef("a macro parameter was not provided");
        tpl_scope_set(c, scope, m->args.v[i]->name, v);
    }
    c->cur = saved;
    tpl_scope_set(c, scope, "varargs", tv_list(varargs));
    tpl_scope_set(c, scope, "kwargs", tv_dict(kwargs));
    c->macro_depth++;
    struct tstr *out = capture(c, &m->body, scope);
    c->macro_depth--;
    return tv_str(out);
}

struct tv tpl_call(struct rctx *c, struct tv fn, const struct targs *a)
{
    switch (fn.t) {
    case TV_FUNC: {
        struct tv none = {.t = TV_MISSING};
        return fn.u.fn->fn(c, none, a);
    }
    case TV_METHOD: {
        bool unsafe = false;
        const struct tpl_builtin *b = tpl_find_method(fn.u.m->self, fn.u.m->name, &unsafe);
        return b->fn(c, fn.u.m->self, a);
    }
    case TV_MACRO: return call_macro(c, fn.u.macro, a);
    case TV_UNDEF:
        tpl_check_defined(c, fn);
        tpl_fail(&c->job, ERR_INVALID, "calling an undefined value");
    default: tpl_fail(&c->job, ERR_INVALID, "'%s' object is not callable", tv_type_name(fn));
    }
}
