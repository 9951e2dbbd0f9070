/* yaml_tree: one YAML document -> a small tree of scalars, mappings and sequences, each node
 * carrying the 1-based line and column where it starts, so that config.c can check keys and
 * values and name the place of a mistake. It owns the libyaml parsing and its error messages
 * (syntax, tabs, more than one document, anchors, aliases and tags, which the config does not
 * use); it knows nothing of which keys a config has. */
#ifndef INFERD_YAML_TREE_H
#define INFERD_YAML_TREE_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

enum ytree_kind { YTREE_SCALAR, YTREE_MAP, YTREE_SEQ };

struct ytree {
    enum ytree_kind kind;
    int line, column; /* 1-based start of the node */
    char *value;      /* scalar text, NUL-terminated (may also hold NUL bytes: see len) */
    size_t len;       /* bytes of value */
    bool plain;       /* scalar written without quotes: may be a number or null */
    /* MAP: items[2i] is a key (a scalar), items[2i+1] its value; SEQ: the items in order. */
    struct ytree **items;
    size_t n_items;
};

/* Parses the single document in yaml[0..len). On success *root is the document's top node,
 * NULL when the input holds no document at all (empty, or only comments). Errors: ERR_INVALID
 * with "NAME:LINE:COL: message" (syntax, a second document, anchors, aliases, tags, a
 * collection as a mapping key), ERR_NOMEM. */
int ytree_parse(const char *yaml, size_t len, const char *name, struct ytree **root, struct err *e);

/* True for a plain scalar that YAML reads as null: empty, "~", "null", "Null", "NULL". */
bool ytree_is_null(const struct ytree *n);

void ytree_free(struct ytree *n);

#endif
