/* yaml_tree: libyaml's event stream -> struct ytree (see yaml_tree.h). The tree is built with
 * an explicit stack of open collections (no recursion on the input's nesting, which is capped
 * at MAX_DEPTH); libyaml's 0-based marks become 1-based lines and columns. */
#include "yaml_tree.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Far deeper than any config; only a hostile file nests this much. */
#define MAX_DEPTH 32

struct builder {
    const char *name; /* for messages */
    const char *yaml; /* the input, to look at the character libyaml complains about */
    size_t len;
    struct ytree *root;
    struct ytree *open[MAX_DEPTH]; /* open mappings and sequences, innermost last */
    size_t depth;
    int n_docs;
};

void ytree_free(struct ytree *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n_items; i++)
        ytree_free(n->items[i]);
    free(n->items);
    free(n->value);
    free(n);
}

bool ytree_is_null(const struct ytree *n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    if (n->kind != YTREE_SCALAR || !n->plain)
        return false;
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
        if (strcmp(n->value, nulls[i]) == 0)
            return true;
    return false;
}

static int fail_at(struct builder *b, struct err *e, yaml_mark_t m, const char *what)
{
    return err_set(e, ERR_INVALID, "%s:%zu:%zu: %s", b->name, m.line + 1, m.column + 1, what);
}

/* True when 0-based line `line` of the input starts with whitespace holding a tab. */
static bool tab_in_indent(const struct builder *b, size_t line)
{
    size_t i = 0;
    for (size_t l = 0; l < line && i < b->len; i++)
        l += b->yaml[i] == '\n';
    for (; i < b->len && (b->yaml[i] == ' ' || b->yaml[i] == '\t'); i++)
        if (b->yaml[i] == '\t')
            return true;
    return false;
}

/* libyaml's syntax error, with a hint for the two mistakes people make: tabs and indentation. */
static int syntax_error(struct builder *b, const yaml_parser_t *p, struct err *e)
{
    if (p->error == YAML_MEMORY_ERROR)
        return err_set(e, ERR_NOMEM, "%s: out of memory", b->name);
    yaml_mark_t m = p->problem_mark;
    if (p->error == YAML_READER_ERROR) { /* bad encoding: only a byte offset is known */
        m.line = m.column = 0;
        for (size_t i = 0; i < p->problem_offset && i < b->len; i++) {
            m.column = b->yaml[i] == '\n' ? 0 : m.column + 1;
            m.line += b->yaml[i] == '\n';
        }
    }
    if (tab_in_indent(b, m.line))
        return err_set(e, ERR_INVALID,
                       "%s:%zu:%zu: YAML syntax error: a tab in the indentation (YAML indents "
                       "with spaces only)",
                       b->name, m.line + 1, m.column + 1);
    const char *problem = p->problem ? p->problem : "unknown problem";
    const char *hint = "";
    if (strstr(problem, "not allowed in this context") ||
        (p->context && strstr(p->context, "parsing a block")))
        hint = " (check the indentation)"; /* what these mean in a hand-written config */
    if (p->context)
        return err_set(e, ERR_INVALID, "%s:%zu:%zu: YAML syntax error: %s %s at line %zu%s",
                       b->name, m.line + 1, m.column + 1, problem, p->context,
                       p->context_mark.line + 1, hint);
    return err_set(e, ERR_INVALID, "%s:%zu:%zu: YAML syntax error: %s%s", b->name, m.line + 1,
                   m.column + 1, problem, hint);
}

/* Adds a new node to the open collection (or as the root); pushes mappings and sequences. */
static int add_node(struct builder *b, const yaml_event_t *ev, enum ytree_kind kind, struct err *e)
{
    struct ytree *n = calloc(1, sizeof *n);
    if (!n)
        return err_set(e, ERR_NOMEM, "%s: out of memory", b->name);
    n->kind = kind;
    n->line = (int)ev->start_mark.line + 1;
    n->column = (int)ev->start_mark.column + 1;
    if (kind == YTREE_SCALAR) {
        n->len = ev->data.scalar.length;
        n->value = malloc(n->len + 1);
        if (!n->value) {
            free(n);
            return err_set(e, ERR_NOMEM, "%s: out of memory", b->name);
        }
        memcpy(n->value, ev->data.scalar.value, n->len);
        n->value[n->len] = '\0';
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    }
    struct ytree *parent = b->depth ? b->open[b->depth - 1] : NULL;
    if (!parent) {
        b->root = n;
    } else {
        /* A mapping's keys sit at the even positions. */
        if (parent->kind == YTREE_MAP && parent->n_items % 2 == 0 && kind != YTREE_SCALAR) {
            ytree_free(n);
            return fail_at(b, e, ev->start_mark, "a key must be a plain name, not a collection");
        }
        struct ytree **items = realloc(parent->items, (parent->n_items + 1) * sizeof *items);
        if (!items) {
            ytree_free(n);
            return err_set(e, ERR_NOMEM, "%s: out of memory", b->name);
        }
        parent->items = items;
        items[parent->n_items++] = n;
    }
    if (kind != YTREE_SCALAR) {
        if (b->depth == MAX_DEPTH)
            return fail_at(b, e, ev->start_mark, "nested too deeply");
        b->open[b->depth++] = n;
    }
    return 0;
}

/* Anchors (&a), aliases (*a) and explicit tags (!!int) are rejected: a config is short, and
 * shared or retyped nodes would only make its line numbers and types harder to follow. */
static int check_plain_node(struct builder *b, const yaml_event_t *ev, struct err *e)
{
    const yaml_char_t *anchor = NULL, *tag = NULL;
    if (ev->type == YAML_SCALAR_EVENT) {
        anchor = ev->data.scalar.anchor;
        tag = ev->data.scalar.tag;
    } else if (ev->type == YAML_MAPPING_START_EVENT) {
        anchor = ev->data.mapping_start.anchor;
        tag = ev->data.mapping_start.tag;
    } else if (ev->type == YAML_SEQUENCE_START_EVENT) {
        anchor = ev->data.sequence_start.anchor;
        tag = ev->data.sequence_start.tag;
    }
    if (anchor)
        return fail_at(b, e, ev->start_mark, "anchors (&name) are not supported in the config");
    if (tag)
        return fail_at(b, e, ev->start_mark, "tags (!!type) are not supported in the config");
    return 0;
}

static int on_event(struct builder *b, const yaml_event_t *ev, struct err *e)
{
    int rc = check_plain_node(b, ev, e);
    if (rc)
        return rc;
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++b->n_docs > 1)
            return fail_at(b, e, ev->start_mark,
                           "a second YAML document: the config must be a single document");
        return 0;
    case YAML_ALIAS_EVENT:
        return fail_at(b, e, ev->start_mark, "aliases (*name) are not supported in the config");
    case YAML_SCALAR_EVENT: return add_node(b, ev, YTREE_SCALAR, e);
    case YAML_MAPPING_START_EVENT: return add_node(b, ev, YTREE_MAP, e);
    case YAML_SEQUENCE_START_EVENT: return add_node(b, ev, YTREE_SEQ, e);
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT: b->depth--; return 0;
    default: return 0; /* stream start/end, document end, nothing to build */
    }
}

int ytree_parse(const char *yaml, size_t len, const char *name, struct ytree **root, struct err *e)
{
    struct builder b = {.name = name, .yaml = yaml, .len = len};
    yaml_parser_t p;
    *root = NULL;
    if (!yaml_parser_initialize(&p))
        return err_set(e, ERR_NOMEM, "%s: out of memory", name);
    yaml_parser_set_input_string(&p, (const unsigned char *)yaml, len);
    int rc = 0;
    for (bool done = false; !done && rc == 0;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = syntax_error(&b, &p, e);
            break;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        rc = on_event(&b, &ev, e);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    if (rc) {
        ytree_free(b.root);
        return rc;
    }
    *root = b.root;
    return 0;
}
