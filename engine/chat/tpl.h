/* tpl: the internals shared by the chat template engine's files (lexer.c, parser.c, value.c,
 * json_dump.c, eval.c, exec.c, filters.c, methods.c, template.c). Not for other modules: they use
 * chat/template.h.
 *
 * Memory: a compile or a render is a `struct tpl_job` whose arena owns every byte it allocates
 * (tokens, AST nodes, strings, lists, scopes). Errors unwind with longjmp to the job's entry
 * point (chat_template_compile or chat_template_render), which frees or keeps the arena: no
 * function below returns an error code, and nothing can leak on a failure path.
 *
 * Values follow Python and Jinja2 semantics (the language transformers renders templates in):
 * ints are 64-bit (overflow is an error), strings are UTF-8 indexed by code point, dicts keep
 * insertion order, `undefined` is Jinja's default Undefined (falsy, prints "", fails when used
 * as an operand or when an attribute of it is read). */
#ifndef INFERD_CHAT_TPL_H
#define INFERD_CHAT_TPL_H

#include <jansson.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* ---- jobs, arena and failure ---------------------------------------------------------- */

struct tpl_block;

struct tpl_job {
    jmp_buf jb;               /* where tpl_fail lands: the compile or render entry point */
    struct err *e;            /* filled by tpl_fail; may be NULL */
    int kind;                 /* the ERR_* kind of the failure */
    struct tpl_block *blocks; /* arena blocks, newest first */
    size_t used_bytes;        /* bytes handed out by the arena so far */
    size_t limit_bytes;       /* a render that needs more fails with ERR_TOO_LARGE */
    int line, col;            /* template position being compiled or rendered, for messages */
    /* budgets (template.h's struct chat_template_budget); a compile has only max_depth */
    bool compiling;              /* depth failures are syntax errors (ERR_FORMAT) */
    unsigned depth, max_depth;   /* syntax or evaluation nesting */
    unsigned value_depth, max_value_depth; /* containers being printed, compared or dumped */
    const void **value_stack;    /* those containers (repr prints a cycle as Python: {...}) */
    uint64_t steps, max_steps, next_clock;
    size_t max_output;           /* bytes of any one string; items x 16 of any one list */
    int64_t deadline_ns;         /* CLOCK_MONOTONIC; 0: none */
    unsigned max_time_ms;
};

struct chat_template_budget;
void tpl_job_init(struct tpl_job *j, struct err *e, size_t limit_bytes);
/* A render's budgets; the deadline starts now. */
void tpl_job_budget(struct tpl_job *j, const struct chat_template_budget *b);
/* Charges n steps: fails (ERR_TOO_LARGE) past the step budget or, checked every few steps,
 * the deadline. */
void tpl_steps(struct tpl_job *j, uint64_t n);
/* One level of syntax or evaluation nesting deeper (fails past max_depth), and back. */
void tpl_enter(struct tpl_job *j);
static inline void tpl_leave(struct tpl_job *j)
{
    j->depth--;
}
/* Into a container value (list or dict) being printed, compared or dumped: fails past
 * max_value_depth; returns true when it is already being visited (a cycle). tpl_value_leave
 * after each call that returned false. */
bool tpl_value_enter(struct tpl_job *j, const void *container);
static inline void tpl_value_leave(struct tpl_job *j)
{
    j->value_depth--;
}
/* Fails with the output budget's message when a string of n bytes (or a list of n / 16
 * items) would be over it. */
void tpl_check_output(struct tpl_job *j, size_t n);
/* a * b, failing as over the output budget when it overflows. */
size_t tpl_size_mul(struct tpl_job *j, size_t a, size_t b);
void tpl_job_free_arena(struct tpl_job *j);
void *tpl_alloc(struct tpl_job *j, size_t n);
void *tpl_alloc_zero(struct tpl_job *j, size_t n);
char *tpl_strndup(struct tpl_job *j, const char *s, size_t n);

/* Sets the job's error ("chat template: line L:C: message"; the position is left out when line
 * is 0, the column when col is 0) and longjmps to its entry point. */
_Noreturn void tpl_fail(struct tpl_job *j, int kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like tpl_fail but the message is exactly msg (raise_exception). */
_Noreturn void tpl_fail_raw(struct tpl_job *j, int kind, const char *msg);

/* ---- values ---------------------------------------------------------------------------- */

/* A string: immutable, NUL-terminated, may hold NUL bytes (len counts bytes). */
struct tstr {
    size_t len;
    bool ascii; /* every byte < 0x80: code point index == byte index */
    char s[];
};

enum tv_type {
    TV_MISSING, /* internal: an argument that was not passed; never seen by templates */
    TV_UNDEF,   /* Jinja Undefined; u.hint says why (for the error if it is used) */
    TV_NONE,
    TV_BOOL,
    TV_INT,
    TV_FLOAT,
    TV_STR,
    TV_LIST, /* list or tuple (u.l->tuple) */
    TV_DICT,
    TV_NS,     /* namespace(): a dict whose attributes can be assigned */
    TV_LOOP,   /* the `loop` variable of a for loop */
    TV_FUNC,   /* a global function: range, namespace, raise_exception, ... */
    TV_METHOD, /* a bound method: "abc".upper, d.items, loop.cycle */
    TV_MACRO,
};

struct tlist;
struct tdict;
struct tloop;
struct tmethod;
struct tpl_builtin;
struct node;

struct tv {
    enum tv_type t;
    union {
        bool b;
        int64_t i;
        double f;
        struct tstr *s;
        struct tlist *l;
        struct tdict *d; /* TV_DICT and TV_NS */
        struct tloop *loop;
        const struct tpl_builtin *fn;
        struct tmethod *m;
        const struct node *macro;
        const char *hint; /* TV_UNDEF: the message of the error raised when it is used */
    } u;
};

/* What Python object a list value stands for beyond list and tuple: a view from
 * dict.items/keys/values (printed "dict_items([...])", not subscriptable), or a generator
 * (what Jinja's select, map, unique, ... return: always true, no len(), not subscriptable,
 * not JSON serializable; templates turn it into a list with |list). */
enum tlist_view { TL_PLAIN, TL_ITEMS, TL_KEYS, TL_VALUES, TL_GENERATOR };

struct tlist {
    size_t n, cap;
    bool tuple;           /* a tuple: printed "(1, 2)", unequal to the list [1, 2] */
    enum tlist_view view; /* TL_PLAIN unless set */
    struct tv *v;
};

struct tdict {
    size_t n, cap;
    struct tv *k, *v; /* keys and values in insertion order */
};

struct tloop {
    size_t index0, length;
    const struct tlist *items; /* what is iterated (after the loop's `if` filter) */
};

struct tmethod {
    struct tv self;
    const char *name;
};

/* Call arguments: positional, then keyword. */
struct targs {
    size_t n;
    const struct tv *pos;
    size_t n_kw;
    const char *const *kw_names;
    const struct tv *kw;
};

static inline struct tv tv_undef(const char *hint)
{
    struct tv v = {.t = TV_UNDEF, .u.hint = hint};
    return v;
}
static inline struct tv tv_none(void)
{
    struct tv v = {.t = TV_NONE};
    return v;
}
static inline struct tv tv_bool(bool b)
{
    struct tv v = {.t = TV_BOOL, .u.b = b};
    return v;
}
static inline struct tv tv_int(int64_t i)
{
    struct tv v = {.t = TV_INT, .u.i = i};
    return v;
}
static inline struct tv tv_float(double f)
{
    struct tv v = {.t = TV_FLOAT, .u.f = f};
    return v;
}
static inline struct tv tv_str(struct tstr *s)
{
    struct tv v = {.t = TV_STR, .u.s = s};
    return v;
}
static inline struct tv tv_list(struct tlist *l)
{
    struct tv v = {.t = TV_LIST, .u.l = l};
    return v;
}
static inline struct tv tv_dict(struct tdict *d)
{
    struct tv v = {.t = TV_DICT, .u.d = d};
    return v;
}

struct tstr *tstr_new(struct tpl_job *j, const char *s, size_t len);
struct tstr *tstr_cstr(struct tpl_job *j, const char *s);
struct tstr *tstr_cat(struct tpl_job *j, const struct tstr *a, const struct tstr *b);
extern struct tstr tstr_empty;

struct tlist *tlist_new(struct tpl_job *j, size_t cap);
void tlist_push(struct tpl_job *j, struct tlist *l, struct tv v);
struct tdict *tdict_new(struct tpl_job *j, size_t cap);
/* Sets d[k] = v (replacing an equal key's value, else appending). */
void tdict_set(struct tpl_job *j, struct tdict *d, struct tv k, struct tv v);
/* d[key] for a string key, or NULL. */
struct tv *tdict_get_str(const struct tdict *d, const char *key, size_t len);
struct tv *tdict_get(struct tpl_job *j, const struct tdict *d, struct tv key);

/* JSON (jansson) -> value, deep copy into the job's arena. */
struct tv tv_from_json(struct tpl_job *j, const json_t *x);

/* Python semantics. */
bool tv_truthy(struct tv v);
bool tv_eq(struct tpl_job *j, struct tv a, struct tv b);
/* a < b (-1), == (0), > (1) for numbers, strings and sequences; fails for other types. */
int tv_cmp(struct tpl_job *j, struct tv a, struct tv b, const char *op);
const char *tv_type_name(struct tv v); /* Python's type name: 'str', 'int', 'dict', ... */
bool tv_is_number(struct tv v);        /* bool, int or float */
double tv_as_double(struct tv v);

/* str(v) and repr(v) appended to a string builder; tv_to_str returns str(v). */
struct sbuf;
void tv_str_into(struct tpl_job *j, struct sbuf *b, struct tv v);
void tv_repr_into(struct tpl_job *j, struct sbuf *b, struct tv v);
struct tstr *tv_to_str(struct tpl_job *j, struct tv v);
/* Python's repr of a float: the shortest digits that round-trip, "1e-05", "1.0", "inf". */
void float_repr(double f, char out[32]);

/* A growable string in the arena. */
struct sbuf {
    struct tpl_job *j;
    struct tstr *t; /* storage: t->s with capacity cap */
    size_t len, cap;
};
void sb_init(struct sbuf *b, struct tpl_job *j, size_t cap);
void sb_put(struct sbuf *b, const char *s, size_t n);
void sb_putc(struct sbuf *b, char c);
void sb_puts(struct sbuf *b, const char *s);
void sb_put_cp(struct sbuf *b, uint32_t cp); /* UTF-8 encode */
struct tstr *sb_done(struct sbuf *b);        /* the string; the builder must not be used after */

/* json.dumps(v, ensure_ascii, indent, separators, sort_keys) as transformers' tojson filter.
 * indent: NULL for none, else a string (an int indent is passed as that many spaces). */
struct json_opts {
    bool ensure_ascii;
    bool sort_keys;
    const struct tstr *indent;   /* NULL: single line */
    const struct tstr *item_sep; /* NULL: ", " without indent, "," with it */
    const struct tstr *key_sep;  /* NULL: ": " */
};
void tv_dump_json(struct tpl_job *j, struct sbuf *b, struct tv v, const struct json_opts *o);

/* ---- UTF-8 and Python's Unicode rules --------------------------------------------------- */

/* Decodes the code point at s[*i] (valid UTF-8 assumed) and advances *i. */
uint32_t utf8_next(const char *s, size_t len, size_t *i);
/* Byte offset of the code point before byte offset i (i > 0). */
size_t utf8_prev(const char *s, size_t i);
size_t utf8_count(const char *s, size_t len);
bool utf8_valid(const char *s, size_t len);
/* str.isspace(): Unicode whitespace as Python's str.strip() and str.split() use it. */
bool py_isspace(uint32_t cp);
/* Byte offset of code point index cp_index in s (clamped to len). */
size_t tstr_cp_offset(const struct tstr *s, size_t cp_index);
size_t tstr_cp_len(const struct tstr *s);

/* ---- the AST ----------------------------------------------------------------------------- */

enum node_kind {
    /* statements */
    N_TEXT,         /* value: the text */
    N_PRINT,        /* a: expression to print ({{ a }}) */
    N_IF,           /* a: test; body; orelse (an elif is an N_IF alone in orelse) */
    N_FOR,          /* a: target; b: iterable; c: filter or NULL; body; orelse */
    N_SET,          /* a: target (NAME, TUPLE of NAMEs, NSREF); b: value */
    N_SET_BLOCK,    /* a: target; c: filter chain over N_CAPTURED or NULL; body */
    N_MACRO,        /* name; args: parameter NAMEs; kwargs: defaults of the last ones; body */
    N_BREAK,        /* {% break %} */
    N_CONTINUE,     /* {% continue %} */
    N_FILTER_BLOCK, /* c: filter chain over N_CAPTURED; body */
    N_WITH,         /* args: target NAMEs; kwargs: values; body */
    N_BODY,         /* {% generation %}: body rendered as is */
    /* expressions */
    N_CONST,    /* value */
    N_NAME,     /* name */
    N_NSREF,    /* name.attr as an assignment target: name, attr */
    N_ATTR,     /* a.name */
    N_ITEM,     /* a[b] */
    N_SLICE,    /* a[b:c:d] with missing parts NULL; the sliced object is a; step in kwargs.v[0] */
    N_CALL,     /* a(args, kwnames=kwargs) */
    N_FILTER,   /* a | name(args, kwargs); a is N_CAPTURED in filter blocks */
    N_TEST,     /* a is name(args); negation is an N_NOT around it */
    N_NOT,      /* not a */
    N_NEG,      /* -a */
    N_POS,      /* +a */
    N_BIN,      /* a op b, op an OP_* arithmetic operator */
    N_AND,      /* a and b */
    N_OR,       /* a or b */
    N_CONCAT,   /* args[0] ~ args[1] ~ ... */
    N_COMPARE,  /* a ops[0] args[0] ops[1] args[1] ...; ops are OP_* or CMP_IN / CMP_NOTIN */
    N_COND,     /* b if a else c (c NULL: undefined) */
    N_LIST,     /* [args] */
    N_TUPLE,    /* (args) */
    N_DICT,     /* {args[i]: kwargs[i]} */
    N_CAPTURED, /* the rendered body of a filter block or set block */
};

/* Operator tokens (also node ops). */
enum tpl_op {
    OP_NONE,
    OP_ADD,
    OP_SUB,
    OP_MUL,
    OP_DIV,
    OP_FLOORDIV,
    OP_MOD,
    OP_POW,
    OP_TILDE,
    OP_LBRACKET,
    OP_RBRACKET,
    OP_LPAREN,
    OP_RPAREN,
    OP_LBRACE,
    OP_RBRACE,
    OP_EQ,
    OP_NE,
    OP_GT,
    OP_GTEQ,
    OP_LT,
    OP_LTEQ,
    OP_ASSIGN,
    OP_DOT,
    OP_COLON,
    OP_PIPE,
    OP_COMMA,
    OP_SEMICOLON,
    CMP_IN,
    CMP_NOTIN,
};

/* N_MACRO's op: the body reads `varargs` / `kwargs`, so extra call arguments go there. */
enum { MACRO_VARARGS = 1, MACRO_KWARGS = 2 };

struct nlist {
    struct node **v;
    size_t n;
};

struct node {
    enum node_kind kind;
    int op;
    int line, col;
    const char *name;
    const char *attr;
    struct tv value;
    struct node *a, *b, *c;
    struct nlist args;
    struct nlist kwargs;
    const char **kw_names;
    int *ops;
    struct nlist body, orelse;
};

/* ---- lexer and parser ---------------------------------------------------------------------- */

enum tok_type {
    T_EOF,
    T_TEXT,
    T_VAR_BEGIN,
    T_VAR_END,
    T_BLOCK_BEGIN,
    T_BLOCK_END,
    T_NAME,
    T_STRING,
    T_INT,
    T_FLOAT,
    T_OP,
};

struct token {
    enum tok_type type;
    int op; /* T_OP */
    int line, col;
    const char *s;    /* T_NAME: NUL-terminated copy */
    struct tstr *str; /* T_TEXT, T_STRING: the value */
    int64_t i;
    double f;
};

/* Tokenizes a template with transformers' settings (trim_blocks, lstrip_blocks, no trailing
 * newline kept). *out is terminated by a T_EOF token. */
void tpl_lex(struct tpl_job *j, const char *src, size_t len, struct token **out, size_t *n);
/* Parses tokens into the statements of the template. */
struct nlist tpl_parse(struct tpl_job *j, const struct token *toks, size_t n);

/* ---- rendering -------------------------------------------------------------------------- */

struct scope {
    struct scope *parent;
    size_t n, cap;
    const char **names;
    struct tv *vals;
};

struct rctx {
    struct tpl_job job;    /* first: a struct rctx * is a struct tpl_job * */
    struct sbuf *out;      /* where output goes (swapped while a block is captured) */
    struct scope *root;    /* the template's variables: render arguments and top-level sets */
    struct scope *cur;     /* innermost scope */
    struct tstr *captured; /* N_CAPTURED's value while a filter block's chain runs */
    int macro_depth;       /* macro calls in progress */
};

struct tv tpl_eval(struct rctx *c, const struct node *n);
/* Runs statements; returns 0, or N_BREAK / N_CONTINUE when a loop control stops the body. */
int tpl_exec(struct rctx *c, const struct nlist *body);
struct tv tpl_call(struct rctx *c, struct tv fn, const struct targs *a);
/* Python's binary arithmetic (OP_ADD ... OP_POW) and comparisons (OP_EQ ... CMP_NOTIN). */
struct tv tpl_arith(struct rctx *c, int op, struct tv a, struct tv b);
bool tpl_compare(struct rctx *c, int op, struct tv a, struct tv b);
struct tv tpl_lookup(struct rctx *c, const char *name);
void tpl_scope_set(struct rctx *c, struct scope *s, const char *name, struct tv v);

/* Jinja's getattr(obj, name) and getitem(obj, key) (attributes, methods, keys, indexes). */
struct tv tpl_getattr(struct rctx *c, struct tv obj, const char *name);
struct tv tpl_getitem(struct rctx *c, struct tv obj, struct tv key);
/* Fails with Jinja's UndefinedError message when v is undefined. */
void tpl_check_defined(struct rctx *c, struct tv v);
/* The items a for loop or a filter iterates: list items, dict keys, string characters. */
const struct tlist *tpl_iterate(struct rctx *c, struct tv v);

/* Builtins: filters, tests, global functions and methods. */
typedef struct tv (*tpl_fn)(struct rctx *c, struct tv self, const struct targs *a);
struct tpl_builtin {
    const char *name;
    tpl_fn fn;
};
const struct tpl_builtin *tpl_find_filter(const char *name);
/* Jinja has a filter of that name (implemented or not): unknown names fail at compile time. */
bool tpl_filter_exists(const char *name);
const struct tpl_builtin *tpl_find_test(const char *name); /* fn returns a TV_BOOL */
const struct tpl_builtin *tpl_find_global(const char *name);
/* A method of a str, dict, list or loop value, or NULL when there is none; *unsafe is set
 * for the mutating methods the immutable sandbox refuses (list.append, dict.update, ...). */
const struct tpl_builtin *tpl_find_method(struct tv self, const char *name, bool *unsafe);
struct tv tpl_apply_filter(struct rctx *c, const char *name, struct tv v, const struct targs *a);
bool tpl_apply_test(struct rctx *c, const char *name, struct tv v, const struct targs *a);

/* The filters of filters_seq.c, searched by tpl_find_filter. */
extern const struct tpl_builtin tpl_seq_filters[];
extern const size_t tpl_n_seq_filters;
/* Argument helpers for builtins: passed at all (not TV_MISSING); a str or int, else fail
 * naming `what`. */
bool tpl_given(struct tv v);
struct tstr *tpl_want_str(struct rctx *c, struct tv v, const char *what);
int64_t tpl_want_int(struct rctx *c, struct tv v, const char *what);
/* Binds arguments to parameter names (positional first, then by keyword); absent ones are
 * TV_MISSING. Fails on surplus positional or unknown keyword arguments, like Python. */
void tpl_bind(struct rctx *c, const char *what, const struct targs *a, const char *const *names,
              size_t n_names, struct tv *out);
/* Python's string methods used by filters too. */
struct tstr *py_strip(struct tpl_job *j, const struct tstr *s, const struct tstr *chars, bool left,
                      bool right);
struct tstr *py_replace(struct tpl_job *j, const struct tstr *s, const struct tstr *old,
                        const struct tstr *new_s, int64_t count);
/* mode 0: lower(), 1: upper(), 2: capitalize() */
struct tstr *py_case(struct tpl_job *j, const struct tstr *s, int mode);
struct tlist *py_splitlines(struct tpl_job *j, const struct tstr *s, bool keepends);

#endif
