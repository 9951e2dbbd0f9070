/* parser: statements -> AST (struct node, tpl.h): for (targets, `if` filter, else),
 * if/elif/else, set (names, tuples, ns.attr, block set with filters), macro, with, filter
 * blocks, print, break/continue (transformers enables loopcontrols) and {% generation %}
 * (transformers' AssistantTracker: renders its body). include/extends/import/block/call are
 * refused: chat templates are single files. Expressions are parse_expr.c's. After parsing,
 * unknown filter and test names are compile errors where Jinja's compiler makes them so. */
#include <stdio.h>
#include <string.h>

#include "chat/parse.h"

static struct nlist subparse(struct parser *p, const char *const *end_names);

/* ---- statements ------------------------------------------------------------------------ */

/* Skips an optional ':' and the block end, then parses until one of end_names. */
static struct nlist parse_statements(struct parser *p, const char *const *end_names,
                                     bool drop_needle)
{
    if (is_op(cur(p), OP_COLON))
        advance(p);
    parse_expect_type(p, T_BLOCK_END, "end of statement block");
    struct nlist body = subparse(p, end_names);
    if (drop_needle)
        advance(p);
    return body;
}

static void check_target(struct parser *p, const struct node *target)
{
    if (target->kind == N_TUPLE) {
        for (size_t i = 0; i < target->args.n; i++)
            check_target(p, target->args.v[i]);
    } else if (target->kind != N_NAME && target->kind != N_NSREF) {
        p->j->line = target->line;
        p->j->col = target->col;
        tpl_fail(p->j, ERR_FORMAT, "syntax error: can't assign to a constant");
    }
}

static struct node *parse_for(struct parser *p, const struct token *tag)
{
    static const char *const body_end[] = {"endfor", "else", NULL}, *const else_end[] = {"endfor",
                                                                                         NULL};
    struct node *n = parse_node(p, N_FOR, tag);
    n->a = parse_tuple(p, true, true, "in", false, false);
    check_target(p, n->a);
    parse_expect_keyword(p, "in");
    n->b = parse_tuple(p, false, false, "recursive", false, false);
    if (is_name(cur(p), "if")) {
        advance(p);
        n->c = parse_expression(p, true);
    }
    if (is_name(cur(p), "recursive"))
        parse_fail(p, cur(p), "%s", "recursive loops are not supported");
    p->loop_depth++;
    n->body = parse_statements(p, body_end, false);
    p->loop_depth--;
    if (is_name(advance(p), "else"))
        n->orelse = parse_statements(p, else_end, true);
    return n;
}

static struct node *parse_if(struct parser *p, const struct token *tag)
{
    static const char *const body_end[] = {"elif", "else", "endif", NULL}, *const else_end[] = {
                                                                               "endif", NULL};
    struct node *root = parse_node(p, N_IF, tag), *n = root;
    for (;;) {
        n->a = parse_tuple(p, false, false, NULL, false, false);
        n->body = parse_statements(p, body_end, false);
        const struct token *t = advance(p);
        if (is_name(t, "elif")) {
            struct node *elif = parse_node(p, N_IF, t);
            struct nvec v = {0};
            nvec_push(p->j, &v, elif);
            n->orelse = nvec_list(&v);
            n = elif;
            continue;
        }
        if (is_name(t, "else"))
            n->orelse = parse_statements(p, else_end, true);
        return root;
    }
}

static struct node *parse_set(struct parser *p, const struct token *tag)
{
    static const char *const end[] = {"endset", NULL};
    struct node *n = parse_node(p, N_SET, tag);
    n->a = parse_tuple(p, true, true, NULL, false, true);
    check_target(p, n->a);
    if (is_op(cur(p), OP_ASSIGN)) {
        advance(p);
        n->b = parse_tuple(p, false, true, NULL, false, false);
        return n;
    }
    n->kind = N_SET_BLOCK;
    if (is_op(cur(p), OP_PIPE))
        n->c = parse_filter(p, parse_node(p, N_CAPTURED, cur(p)), false);
    n->body = parse_statements(p, end, true);
    return n;
}

/* One level deeper into the syntax tree at n (operator chains such as 1 + 1 + ... are built
 * by loops, so a tree can be deeper than the parser's recursion): fails past the budget. */
static void tree_enter(struct tpl_job *j, const struct node *n)
{
    j->line = n->line;
    j->col = n->col;
    tpl_enter(j);
}

/* Whether the subtree reads the variable `name`. */
static bool uses_name(struct tpl_job *j, const struct node *n, const char *name)
{
    if (!n)
        return false;
    if (n->kind == N_NAME && !strcmp(n->name, name))
        return true;
    tree_enter(j, n);
    bool used = uses_name(j, n->a, name) || uses_name(j, n->b, name) || uses_name(j, n->c, name);
    const struct nlist *lists[] = {&n->args, &n->kwargs, &n->body, &n->orelse};
    for (size_t k = 0; k < 4 && !used; k++)
        for (size_t i = 0; i < lists[k]->n && !used; i++)
            used = uses_name(j, lists[k]->v[i], name);
    tpl_leave(j);
    return used;
}

static bool body_uses_name(struct tpl_job *j, const struct nlist *body, const char *name)
{
    for (size_t i = 0; i < body->n; i++)
        if (uses_name(j, body->v[i], name))
            return true;
    return false;
}

static struct node *parse_macro(struct parser *p, const struct token *tag)
{
    static const char *const end[] = {"endmacro", NULL};
    struct node *n = parse_node(p, N_MACRO, tag);
    n->name = parse_expect_name(p);
    parse_expect_op(p, OP_LPAREN, "(");
    struct nvec params = {0}, defaults = {0};
    while (!is_op(cur(p), OP_RPAREN)) {
        if (params.n)
            parse_expect_op(p, OP_COMMA, ",");
        struct node *param = parse_node(p, N_NAME, cur(p));
        param->name = parse_expect_name(p);
        if (is_op(cur(p), OP_ASSIGN)) {
            advance(p);
            nvec_push(p->j, &defaults, parse_expression(p, true));
        } else if (defaults.n) {
            parse_fail(p, cur(p), "%s", "non-default argument follows default argument");
        }
        nvec_push(p->j, &params, param);
    }
    advance(p);
    n->args = nvec_list(&params);
    n->kwargs = nvec_list(&defaults);
    int depth = p->loop_depth;
    p->loop_depth = 0;
    n->body = parse_statements(p, end, true);
    p->loop_depth = depth;
    /* flags read by calls (exec.c): extra arguments are only accepted when used */
    n->op = (body_uses_name(p->j, &n->body, "varargs") ? MACRO_VARARGS : 0) |
            (body_uses_name(p->j, &n->body, "kwargs") ? MACRO_KWARGS : 0);
    return n;
}

static struct node *parse_with(struct parser *p, const struct token *tag)
{
    static const char *const end[] = {"endwith", NULL};
    struct node *n = parse_node(p, N_WITH, tag);
    struct nvec targets = {0}, values = {0};
    while (cur(p)->type != T_BLOCK_END) {
        if (targets.n)
            parse_expect_op(p, OP_COMMA, ",");
        struct node *target = parse_node(p, N_NAME, cur(p));
        target->name = parse_expect_name(p);
        nvec_push(p->j, &targets, target);
        parse_expect_op(p, OP_ASSIGN, "=");
        nvec_push(p->j, &values, parse_expression(p, true));
    }
    n->args = nvec_list(&targets);
    n->kwargs = nvec_list(&values);
    n->body = parse_statements(p, end, true);
    return n;
}

static struct node *parse_statement(struct parser *p)
{
    static const char *const filter_end[] = {"endfilter", NULL}, *const generation_end[] = {
                                                                     "endgeneration", NULL};
    const struct token *tag = cur(p);
    if (tag->type != T_NAME)
        parse_fail(p, tag, "%s", "tag name expected");
    advance(p);
    const char *name = tag->s;
    if (!strcmp(name, "for"))
        return parse_for(p, tag);
    if (!strcmp(name, "if"))
        return parse_if(p, tag);
    if (!strcmp(name, "set"))
        return parse_set(p, tag);
    if (!strcmp(name, "macro"))
        return parse_macro(p, tag);
    if (!strcmp(name, "with"))
        return parse_with(p, tag);
    if (!strcmp(name, "filter")) {
        struct node *n = parse_node(p, N_FILTER_BLOCK, tag);
        n->c = parse_filter(p, parse_node(p, N_CAPTURED, tag), true);
        n->body = parse_statements(p, filter_end, true);
        return n;
    }
    if (!strcmp(name, "generation")) {
        struct node *n = parse_node(p, N_BODY, tag);
        n->body = parse_statements(p, generation_end, true);
        return n;
    }
    if (!strcmp(name, "print")) {
        struct node *n = parse_node(p, N_BODY, tag);
        struct nvec v = {0};
        while (cur(p)->type != T_BLOCK_END) {
            if (v.n)
                parse_expect_op(p, OP_COMMA, ",");
            struct node *out = parse_node(p, N_PRINT, cur(p));
            out->a = parse_expression(p, true);
            nvec_push(p->j, &v, out);
        }
        n->body = nvec_list(&v);
        return n;
    }
    if (!strcmp(name, "break") || !strcmp(name, "continue")) {
        if (p->loop_depth == 0)
            parse_fail(p, tag, "'%s' outside of a loop", name);
        return parse_node(p, name[0] == 'b' ? N_BREAK : N_CONTINUE, tag);
    }
    static const char *const unsupported[] = {"block", "extends", "include",    "import",
                                              "from",  "call",    "autoescape", NULL};
    for (size_t i = 0; unsupported[i]; i++)
        if (!strcmp(name, unsupported[i]))
            parse_fail(p, tag, "the '%s' tag is not supported in chat templates", name);
    parse_fail(p, tag, "encountered unknown tag '%s'", name);
}

static bool is_end_name(const struct token *t, const char *const *end_names)
{
    for (size_t i = 0; end_names && end_names[i]; i++)
        if (is_name(t, end_names[i]))
            return true;
    return false;
}

static struct nlist subparse_body(struct parser *p, const char *const *end_names);

static struct nlist subparse(struct parser *p, const char *const *end_names)
{
    parse_enter(p);
    struct nlist body = subparse_body(p, end_names);
    parse_leave(p);
    return body;
}

static struct nlist subparse_body(struct parser *p, const char *const *end_names)
{
    struct nvec body = {0};
    for (;;) {
        const struct token *t = cur(p);
        if (t->type == T_EOF) {
            if (!end_names)
                return nvec_list(&body);
            /* name the closing tag ("endif"), not an alternative ("elif") */
            const char *want = end_names[0];
            for (size_t i = 0; end_names[i]; i++)
                if (!strncmp(end_names[i], "end", 3))
                    want = end_names[i];
            parse_fail(p, t, "unexpected end of template, expected '%s'", want);
        }
        if (t->type == T_TEXT) {
            struct node *n = parse_node(p, N_TEXT, advance(p));
            n->value = tv_str(t->str);
            nvec_push(p->j, &body, n);
        } else if (t->type == T_VAR_BEGIN) {
            struct node *n = parse_node(p, N_PRINT, advance(p));
            n->a = parse_tuple(p, false, true, NULL, false, false);
            parse_expect_type(p, T_VAR_END, "end of print statement");
            nvec_push(p->j, &body, n);
        } else if (t->type == T_BLOCK_BEGIN) {
            advance(p);
            if (is_end_name(cur(p), end_names))
                return nvec_list(&body);
            nvec_push(p->j, &body, parse_statement(p));
            if (cur(p)->type != T_BLOCK_END)
                parse_fail(p, cur(p), "expected end of statement block, got '%s'",
                           parse_describe(cur(p)));
            advance(p);
        } else {
            parse_fail(p, t, "unexpected '%s'", parse_describe(t));
        }
    }
}

/* ---- names of filters and tests -------------------------------------------------------- */

static void check_names(struct tpl_job *j, const struct node *n, bool soft);

static void check_list(struct tpl_job *j, const struct nlist *l, bool soft)
{
    for (size_t i = 0; i < l->n; i++)
        check_names(j, l->v[i], soft);
}

/* Jinja's compiler: an unknown filter or test is a compile error, except inside an `if`
 * statement or an inline if (a "soft frame"), where it fails only if it runs. Loops, macros,
 * with, block sets and filter blocks open frames that are not soft again. */
static void check_node(struct tpl_job *j, const struct node *n, bool soft);

static void check_names(struct tpl_job *j, const struct node *n, bool soft)
{
    if (!n)
        return;
    tree_enter(j, n);
    check_node(j, n, soft);
    tpl_leave(j);
}

static void check_node(struct tpl_job *j, const struct node *n, bool soft)
{
    bool unknown = (n->kind == N_FILTER && !tpl_filter_exists(n->name)) ||
                   (n->kind == N_TEST && !tpl_find_test(n->name));
    if (unknown && !soft) {
        j->line = n->line;
        j->col = n->col;
        tpl_fail(j, ERR_FORMAT, "syntax error: no %s named '%s'",
                 n->kind == N_FILTER ? "filter" : "test", n->name);
    }
    switch (n->kind) {
    case N_IF:
    case N_COND: soft = true; break;
    case N_FOR:
        check_names(j, n->b, soft);
        check_names(j, n->c, false);
        check_list(j, &n->body, false);
        check_list(j, &n->orelse, false);
        return;
    case N_MACRO:
    case N_SET_BLOCK:
    case N_FILTER_BLOCK:
    case N_BODY:
        check_names(j, n->c, false);
        check_list(j, &n->kwargs, soft);
        check_list(j, &n->body, false);
        return;
    case N_WITH:
        check_list(j, &n->kwargs, soft);
        check_list(j, &n->body, false);
        return;
    default: break;
    }
    check_names(j, n->a, soft);
    check_names(j, n->b, soft);
    check_names(j, n->c, soft);
    check_list(j, &n->args, soft);
    check_list(j, &n->kwargs, soft);
    check_list(j, &n->body, soft);
    check_list(j, &n->orelse, soft);
}

struct nlist tpl_parse(struct tpl_job *j, const struct token *toks, size_t n)
{
    struct parser p = {.j = j, .t = toks, .n = n};
    struct nlist body = subparse(&p, NULL);
    check_list(j, &body, false);
    return body;
}
