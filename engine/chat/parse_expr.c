/* parse_expr: Jinja2 expressions -> AST, by Jinja2's grammar and precedence:
 *   expression := or ('if' or ('else' expression)?)*      inline if
 *   or := and ('or' and)*     and := not ('and' not)*     not := 'not' not | compare
 *   compare := math1 (('=='|'!='|'<'|'<='|'>'|'>='|'in'|'not in') math1)*
 *   math1 := concat (('+'|'-') concat)*      concat := math2 ('~' math2)*
 *   math2 := pow (('*'|'/'|'//'|'%') pow)*   pow := unary ('**' unary)*
 *   unary := ('-'|'+') unary | primary postfix* (filter | test | call)*
 * so a filter binds tighter than any operator: `'a' + x | trim` trims x only. Also the token
 * helpers and syntax errors parser.c uses (parse.h). */
#include <stdio.h>
#include <string.h>

#include "chat/parse.h"

const char *parse_describe(const struct token *t)
{
    static const char *const ops[] = {
        [OP_ADD] = "+",       [OP_SUB] = "-",       [OP_MUL] = "*",    [OP_DIV] = "/",
        [OP_FLOORDIV] = "//", [OP_MOD] = "%",       [OP_POW] = "**",   [OP_TILDE] = "~",
        [OP_LBRACKET] = "[",  [OP_RBRACKET] = "]",  [OP_LPAREN] = "(", [OP_RPAREN] = ")",
        [OP_LBRACE] = "{",    [OP_RBRACE] = "}",    [OP_EQ] = "==",    [OP_NE] = "!=",
        [OP_GT] = ">",        [OP_GTEQ] = ">=",     [OP_LT] = "<",     [OP_LTEQ] = "<=",
        [OP_ASSIGN] = "=",    [OP_DOT] = ".",       [OP_COLON] = ":",  [OP_PIPE] = "|",
        [OP_COMMA] = ",",     [OP_SEMICOLON] = ";",
    };
    switch (t->type) {
    case T_EOF: return "end of template";
    case T_TEXT: return "template data";
    case T_VAR_BEGIN: return "begin of print statement";
    case T_VAR_END: return "end of print statement";
    case T_BLOCK_BEGIN: return "begin of statement block";
    case T_BLOCK_END: return "end of statement block";
    case T_NAME: return t->s;
    case T_STRING: return "string";
    case T_INT: return "integer";
    case T_FLOAT: return "float";
    case T_OP: return ops[t->op] ? ops[t->op] : "operator";
    }
    return "token";
}

_Noreturn void parse_fail(struct parser *p, const struct token *t, const char *fmt, const char *arg)
{
    p->j->line = t->line;
    p->j->col = t->col;
    char msg[160];
    snprintf(msg, sizeof msg, fmt, arg);
    tpl_fail(p->j, ERR_FORMAT, "syntax error: %s", msg);
}

void parse_expect_op(struct parser *p, int op, const char *text)
{
    if (!is_op(cur(p), op))
        parse_fail(p, cur(p), "expected '%s'", text);
    advance(p);
}

void parse_expect_type(struct parser *p, enum tok_type type, const char *what)
{
    if (cur(p)->type != type) {
        char msg[96];
        snprintf(msg, sizeof msg, "expected %s, got '%s'", what, parse_describe(cur(p)));
        parse_fail(p, cur(p), "%s", msg);
    }
    advance(p);
}

const char *parse_expect_name(struct parser *p)
{
    if (cur(p)->type != T_NAME)
        parse_fail(p, cur(p), "expected a name, got '%s'", parse_describe(cur(p)));
    return advance(p)->s;
}

void parse_expect_keyword(struct parser *p, const char *name)
{
    if (!is_name(cur(p), name))
        parse_fail(p, cur(p), "expected '%s'", name);
    advance(p);
}

struct node *parse_node(struct parser *p, enum node_kind kind, const struct token *at)
{
    struct node *n = tpl_alloc_zero(p->j, sizeof *n);
    n->kind = kind;
    n->line = at->line;
    n->col = at->col;
    return n;
}

static struct node *parse_unary(struct parser *p, bool with_filter);
static struct node *parse_primary(struct parser *p, bool with_namespace);
static struct node *parse_postfix(struct parser *p, struct node *n);

/* ---- expressions ------------------------------------------------------------------------- */

static bool is_tuple_end(const struct parser *p, const char *extra_end)
{
    const struct token *t = cur(p);
    if (t->type == T_VAR_END || t->type == T_BLOCK_END || is_op(t, OP_RPAREN))
        return true;
    return extra_end && is_name(t, extra_end);
}

/* Expressions separated by commas; a tuple node when there is a comma. simplified: names and
 * literals only (assignment targets). */
struct node *parse_tuple(struct parser *p, bool simplified, bool with_condexpr,
                         const char *extra_end, bool explicit_parens, bool with_namespace)
{
    const struct token *start = cur(p);
    struct nvec items = {0};
    bool is_tuple = false;
    for (;;) {
        if (items.n)
            parse_expect_op(p, OP_COMMA, ",");
        if (is_tuple_end(p, extra_end))
            break;
        nvec_push(p->j, &items,
                  simplified ? parse_primary(p, with_namespace)
                             : parse_expression(p, with_condexpr));
        if (is_op(cur(p), OP_COMMA))
            is_tuple = true;
        else
            break;
    }
    if (!is_tuple) {
        if (items.n)
            return items.v[0];
        if (!explicit_parens)
            parse_fail(p, cur(p), "expected an expression, got '%s'", parse_describe(cur(p)));
    }
    struct node *n = parse_node(p, N_TUPLE, start);
    n->args = nvec_list(&items);
    return n;
}

static struct node *parse_condexpr(struct parser *p)
{
    struct node *expr1 = parse_expression(p, false);
    while (is_name(cur(p), "if")) {
        struct node *n = parse_node(p, N_COND, advance(p));
        n->a = parse_expression(p, false);
        n->b = expr1;
        if (is_name(cur(p), "else")) {
            advance(p);
            parse_enter(p);
            n->c = parse_condexpr(p);
            parse_leave(p);
        }
        expr1 = n;
    }
    return expr1;
}

static struct node *binary(struct parser *p, enum node_kind kind, int op, const struct token *at,
                           struct node *a, struct node *b)
{
    struct node *n = parse_node(p, kind, at);
    n->op = op;
    n->a = a;
    n->b = b;
    return n;
}

static struct node *parse_not(struct parser *p);

static struct node *parse_and(struct parser *p)
{
    struct node *left = parse_not(p);
    while (is_name(cur(p), "and")) {
        const struct token *t = advance(p);
        left = binary(p, N_AND, 0, t, left, parse_not(p));
    }
    return left;
}

static struct node *parse_or(struct parser *p)
{
    struct node *left = parse_and(p);
    while (is_name(cur(p), "or")) {
        const struct token *t = advance(p);
        left = binary(p, N_OR, 0, t, left, parse_and(p));
    }
    return left;
}

struct node *parse_expression(struct parser *p, bool with_condexpr)
{
    parse_enter(p);
    struct node *n = with_condexpr ? parse_condexpr(p) : parse_or(p);
    parse_leave(p);
    return n;
}

static struct node *parse_pow(struct parser *p)
{
    struct node *left = parse_unary(p, true);
    while (is_op(cur(p), OP_POW)) {
        const struct token *t = advance(p);
        left = binary(p, N_BIN, OP_POW, t, left, parse_unary(p, true));
    }
    return left;
}

static struct node *parse_math2(struct parser *p)
{
    struct node *left = parse_pow(p);
    while (is_op(cur(p), OP_MUL) || is_op(cur(p), OP_DIV) || is_op(cur(p), OP_FLOORDIV) ||
           is_op(cur(p), OP_MOD)) {
        const struct token *t = advance(p);
        left = binary(p, N_BIN, t->op, t, left, parse_pow(p));
    }
    return left;
}

static struct node *parse_concat(struct parser *p)
{
    const struct token *start = cur(p);
    struct node *first = parse_math2(p);
    if (!is_op(cur(p), OP_TILDE))
        return first;
    struct nvec parts = {0};
    nvec_push(p->j, &parts, first);
    while (is_op(cur(p), OP_TILDE)) {
        advance(p);
        nvec_push(p->j, &parts, parse_math2(p));
    }
    struct node *n = parse_node(p, N_CONCAT, start);
    n->args = nvec_list(&parts);
    return n;
}

static struct node *parse_math1(struct parser *p)
{
    struct node *left = parse_concat(p);
    while (is_op(cur(p), OP_ADD) || is_op(cur(p), OP_SUB)) {
        const struct token *t = advance(p);
        left = binary(p, N_BIN, t->op, t, left, parse_concat(p));
    }
    return left;
}

static struct node *parse_compare(struct parser *p)
{
    const struct token *start = cur(p);
    struct node *expr = parse_math1(p);
    struct nvec operands = {0};
    int ops[64];
    size_t n_ops = 0;
    for (;;) {
        const struct token *t = cur(p);
        int op;
        if (t->type == T_OP && (t->op == OP_EQ || t->op == OP_NE || t->op == OP_LT ||
                                t->op == OP_LTEQ || t->op == OP_GT || t->op == OP_GTEQ)) {
            op = t->op;
            advance(p);
        } else if (is_name(t, "in")) {
            op = CMP_IN;
            advance(p);
        } else if (is_name(t, "not") && is_name(look(p), "in")) {
            op = CMP_NOTIN;
            advance(p);
            advance(p);
        } else {
            break;
        }
        if (n_ops == sizeof ops / sizeof ops[0])
            parse_fail(p, t, "%s", "too many chained comparisons");
        ops[n_ops++] = op;
        nvec_push(p->j, &operands, parse_math1(p));
    }
    if (!n_ops)
        return expr;
    struct node *n = parse_node(p, N_COMPARE, start);
    n->a = expr;
    n->args = nvec_list(&operands);
    n->ops = tpl_alloc(p->j, n_ops * sizeof *n->ops);
    memcpy(n->ops, ops, n_ops * sizeof *n->ops);
    return n;
}

static struct node *parse_not(struct parser *p)
{
    if (is_name(cur(p), "not")) {
        struct node *n = parse_node(p, N_NOT, advance(p));
        parse_enter(p);
        n->a = parse_not(p);
        parse_leave(p);
        return n;
    }
    return parse_compare(p);
}

/* Call arguments "(a, b, k=v)" into args, kwargs and kw_names. */
static void parse_call_args(struct parser *p, struct node *n)
{
    parse_expect_op(p, OP_LPAREN, "(");
    struct nvec args = {0}, kwargs = {0};
    const char **names = NULL;
    size_t n_names = 0, cap = 0;
    bool require_comma = false;
    while (!is_op(cur(p), OP_RPAREN)) {
        if (require_comma) {
            parse_expect_op(p, OP_COMMA, ",");
            if (is_op(cur(p), OP_RPAREN))
                break;
        }
        if (is_op(cur(p), OP_MUL) || is_op(cur(p), OP_POW))
            parse_fail(p, cur(p), "%s", "*args and **kwargs in calls are not supported");
        if (cur(p)->type == T_NAME && is_op(look(p), OP_ASSIGN)) {
            const char *key = advance(p)->s;
            advance(p);
            if (n_names == cap) {
                cap = cap ? cap * 2 : 4;
                const char **nn = tpl_alloc(p->j, cap * sizeof *nn);
                if (n_names)
                    memcpy(nn, names, n_names * sizeof *nn);
                names = nn;
            }
            names[n_names++] = key;
            nvec_push(p->j, &kwargs, parse_expression(p, true));
        } else {
            if (kwargs.n)
                parse_fail(p, cur(p), "%s", "positional argument follows keyword argument");
            nvec_push(p->j, &args, parse_expression(p, true));
        }
        require_comma = true;
    }
    parse_expect_op(p, OP_RPAREN, ")");
    n->args = nvec_list(&args);
    n->kwargs = nvec_list(&kwargs);
    n->kw_names = names;
}

static const char *dotted_name(struct parser *p)
{
    const char *name = parse_expect_name(p);
    while (is_op(cur(p), OP_DOT)) {
        advance(p);
        const char *part = parse_expect_name(p);
        size_t a = strlen(name), b = strlen(part);
        char *joined = tpl_alloc(p->j, a + b + 2);
        memcpy(joined, name, a);
        joined[a] = '.';
        memcpy(joined + a + 1, part, b + 1);
        name = joined;
    }
    return name;
}

/* "| name(args)" filters applied to node (the first one without its "|" when inline). */
struct node *parse_filter(struct parser *p, struct node *node, bool start_inline)
{
    while (is_op(cur(p), OP_PIPE) || start_inline) {
        if (!start_inline)
            advance(p);
        struct node *f = parse_node(p, N_FILTER, cur(p));
        f->name = dotted_name(p);
        if (is_op(cur(p), OP_LPAREN))
            parse_call_args(p, f);
        f->a = node;
        node = f;
        start_inline = false;
    }
    return node;
}

static struct node *parse_test(struct parser *p, struct node *node)
{
    const struct token *is_tok = advance(p);
    bool negated = false;
    if (is_name(cur(p), "not")) {
        advance(p);
        negated = true;
    }
    struct node *t = parse_node(p, N_TEST, cur(p));
    t->name = dotted_name(p);
    t->a = node;
    const struct token *c = cur(p);
    if (is_op(c, OP_LPAREN)) {
        parse_call_args(p, t);
    } else if ((c->type == T_NAME || c->type == T_STRING || c->type == T_INT ||
                c->type == T_FLOAT || is_op(c, OP_LBRACKET) || is_op(c, OP_LBRACE)) &&
               !is_name(c, "else") && !is_name(c, "or") && !is_name(c, "and")) {
        if (is_name(c, "is"))
            parse_fail(p, c, "%s", "you cannot chain multiple tests with is");
        struct nvec args = {0};
        nvec_push(p->j, &args, parse_postfix(p, parse_primary(p, false)));
        t->args = nvec_list(&args);
    }
    if (!negated)
        return t;
    struct node *n = parse_node(p, N_NOT, is_tok);
    n->a = t;
    return n;
}

static struct node *parse_filter_expr(struct parser *p, struct node *node)
{
    for (;;) {
        if (is_op(cur(p), OP_PIPE)) {
            node = parse_filter(p, node, false);
        } else if (is_name(cur(p), "is")) {
            node = parse_test(p, node);
        } else if (is_op(cur(p), OP_LPAREN)) {
            struct node *call = parse_node(p, N_CALL, cur(p));
            call->a = node;
            parse_call_args(p, call);
            node = call;
        } else {
            return node;
        }
    }
}

/* One part of a subscript: an expression or a slice "a:b:c". */
static struct node *parse_subscribed(struct parser *p)
{
    const struct token *start = cur(p);
    struct node *first = NULL;
    if (is_op(cur(p), OP_COLON)) {
        advance(p);
    } else {
        first = parse_expression(p, true);
        if (!is_op(cur(p), OP_COLON))
            return first;
        advance(p);
    }
    struct node *s = parse_node(p, N_SLICE, start);
    s->a = first;
    if (!is_op(cur(p), OP_COLON) && !is_op(cur(p), OP_RBRACKET) && !is_op(cur(p), OP_COMMA))
        s->b = parse_expression(p, true);
    if (is_op(cur(p), OP_COLON)) {
        advance(p);
        if (!is_op(cur(p), OP_RBRACKET) && !is_op(cur(p), OP_COMMA))
            s->c = parse_expression(p, true);
    }
    return s;
}

static struct node *parse_subscript(struct parser *p, struct node *node)
{
    const struct token *t = advance(p);
    if (is_op(t, OP_DOT)) {
        const struct token *attr = advance(p);
        if (attr->type == T_NAME) {
            struct node *n = parse_node(p, N_ATTR, t);
            n->a = node;
            n->name = attr->s;
            return n;
        }
        if (attr->type != T_INT)
            parse_fail(p, attr, "%s", "expected name or number");
        struct node *n = parse_node(p, N_ITEM, t);
        n->a = node;
        n->b = parse_node(p, N_CONST, attr);
        n->b->value = tv_int(attr->i);
        return n;
    }
    struct nvec args = {0};
    while (!is_op(cur(p), OP_RBRACKET)) {
        if (args.n)
            parse_expect_op(p, OP_COMMA, ",");
        nvec_push(p->j, &args, parse_subscribed(p));
    }
    parse_expect_op(p, OP_RBRACKET, "]");
    struct node *n = parse_node(p, N_ITEM, t);
    n->a = node;
    if (args.n == 1) {
        n->b = args.v[0];
    } else {
        n->b = parse_node(p, N_TUPLE, t);
        n->b->args = nvec_list(&args);
    }
    return n;
}

static struct node *parse_postfix(struct parser *p, struct node *node)
{
    for (;;) {
        if (is_op(cur(p), OP_DOT) || is_op(cur(p), OP_LBRACKET)) {
            node = parse_subscript(p, node);
        } else if (is_op(cur(p), OP_LPAREN)) {
            struct node *call = parse_node(p, N_CALL, cur(p));
            call->a = node;
            parse_call_args(p, call);
            node = call;
        } else {
            return node;
        }
    }
}

static struct node *parse_unary(struct parser *p, bool with_filter)
{
    const struct token *t = cur(p);
    struct node *node;
    if (is_op(t, OP_SUB) || is_op(t, OP_ADD)) {
        advance(p);
        node = parse_node(p, is_op(t, OP_SUB) ? N_NEG : N_POS, t);
        parse_enter(p);
        node->a = parse_unary(p, false);
        parse_leave(p);
    } else {
        node = parse_primary(p, false);
    }
    node = parse_postfix(p, node);
    return with_filter ? parse_filter_expr(p, node) : node;
}

static struct node *parse_list_or_dict(struct parser *p, bool dict)
{
    const struct token *start = advance(p);
    int close = dict ? OP_RBRACE : OP_RBRACKET;
    struct nvec keys = {0}, vals = {0};
    while (!is_op(cur(p), close)) {
        if (keys.n)
            parse_expect_op(p, OP_COMMA, ",");
        if (is_op(cur(p), close))
            break;
        nvec_push(p->j, &keys, parse_expression(p, true));
        if (dict) {
            parse_expect_op(p, OP_COLON, ":");
            nvec_push(p->j, &vals, parse_expression(p, true));
        }
    }
    parse_expect_op(p, close, dict ? "}" : "]");
    struct node *n = parse_node(p, dict ? N_DICT : N_LIST, start);
    n->args = nvec_list(&keys);
    n->kwargs = nvec_list(&vals);
    return n;
}

static struct node *parse_primary(struct parser *p, bool with_namespace)
{
    const struct token *t = cur(p);
    struct node *n;
    switch (t->type) {
    case T_NAME:
        advance(p);
        n = parse_node(p, N_CONST, t);
        if (!strcmp(t->s, "true") || !strcmp(t->s, "True")) {
            n->value = tv_bool(true);
        } else if (!strcmp(t->s, "false") || !strcmp(t->s, "False")) {
            n->value = tv_bool(false);
        } else if (!strcmp(t->s, "none") || !strcmp(t->s, "None")) {
            n->value = tv_none();
        } else if (with_namespace && is_op(cur(p), OP_DOT)) {
            advance(p);
            n->kind = N_NSREF;
            n->name = t->s;
            n->attr = parse_expect_name(p);
        } else {
            n->kind = N_NAME;
            n->name = t->s;
        }
        return n;
    case T_STRING: {
        n = parse_node(p, N_CONST, t);
        struct tstr *s = advance(p)->str;
        while (cur(p)->type == T_STRING)
            s = tstr_cat(p->j, s, advance(p)->str); /* adjacent literals join */
        n->value = tv_str(s);
        return n;
    }
    case T_INT:
    case T_FLOAT:
        n = parse_node(p, N_CONST, advance(p));
        n->value = t->type == T_INT ? tv_int(t->i) : tv_float(t->f);
        return n;
    case T_OP:
        if (t->op == OP_LPAREN) {
            advance(p);
            n = parse_tuple(p, false, true, NULL, true, false);
            parse_expect_op(p, OP_RPAREN, ")");
            return n;
        }
        if (t->op == OP_LBRACKET || t->op == OP_LBRACE)
            return parse_list_or_dict(p, t->op == OP_LBRACE);
        break;
    default: break;
    }
    parse_fail(p, t, "unexpected '%s'", parse_describe(t));
}
