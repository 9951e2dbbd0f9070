/* parse: what the parser's two files share: parse_expr.c (expressions, token helpers,
 * syntax errors) and parser.c (statements, the entry point). Internal to them. */
#ifndef INFERD_CHAT_PARSE_H
#define INFERD_CHAT_PARSE_H

#include <string.h>

#include "chat/tpl.h"

struct parser {
    struct tpl_job *j;
    const struct token *t;
    size_t n, pos;
    int loop_depth; /* for bodies around the current statement, reset inside macros */
};

struct nvec {
    struct node **v;
    size_t n, cap;
};

static inline void nvec_push(struct tpl_job *j, struct nvec *v, struct node *x)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        struct node **nv = tpl_alloc(j, cap * sizeof *nv);
        if (v->n)
            memcpy(nv, v->v, v->n * sizeof *nv);
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
}

static inline struct nlist nvec_list(const struct nvec *v)
{
    struct nlist l = {v->v, v->n};
    return l;
}

static inline const struct token *cur(const struct parser *p)
{
    return &p->t[p->pos];
}

static inline const struct token *look(const struct parser *p)
{
    return p->pos + 1 < p->n ? &p->t[p->pos + 1] : &p->t[p->n - 1];
}

static inline const struct token *advance(struct parser *p)
{
    const struct token *t = cur(p);
    if (t->type != T_EOF)
        p->pos++;
    return t;
}

static inline bool is_op(const struct token *t, int op)
{
    return t->type == T_OP && t->op == op;
}

static inline bool is_name(const struct token *t, const char *name)
{
    return t->type == T_NAME && strcmp(t->s, name) == 0;
}

/* One level of grammar nesting deeper at the current token: fails with "syntax error: the
 * template nests too deeply" past the budget's max_depth; parse_leave on the way back. */
static inline void parse_enter(struct parser *p)
{
    p->j->line = cur(p)->line;
    p->j->col = cur(p)->col;
    tpl_enter(p->j);
}

static inline void parse_leave(struct parser *p)
{
    tpl_leave(p->j);
}

/* The token's text for messages: "end of print statement", "}", "integer". */
const char *parse_describe(const struct token *t);
/* Fails with "syntax error: " + fmt (one %s for arg) at the token's line and column. */
_Noreturn void parse_fail(struct parser *p, const struct token *t, const char *fmt,
                          const char *arg);
void parse_expect_op(struct parser *p, int op, const char *text);
void parse_expect_type(struct parser *p, enum tok_type type, const char *what);
const char *parse_expect_name(struct parser *p);
void parse_expect_keyword(struct parser *p, const char *name);
struct node *parse_node(struct parser *p, enum node_kind kind, const struct token *at);

/* An expression; with_condexpr: also `a if b else c`. */
struct node *parse_expression(struct parser *p, bool with_condexpr);
/* Comma-separated expressions, a tuple node when there is a comma. simplified: names and
 * literals only (assignment targets, NSREF with with_namespace); extra_end: a name that ends
 * the tuple ("in"); explicit_parens: "()" is an empty tuple. */
struct node *parse_tuple(struct parser *p, bool simplified, bool with_condexpr,
                         const char *extra_end, bool explicit_parens, bool with_namespace);
/* "| name(args)" filters applied to node (the first one without its "|" when inline). */
struct node *parse_filter(struct parser *p, struct node *node, bool start_inline);

#endif
