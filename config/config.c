/* config: YAML -> struct config through key tables (see config.h). Each mapping of the file
 * (the top level, server, a model, its batching) is a table of rows: key name, type, offset in
 * its struct, bounds, default, and an optional check. Loading is: parse the document into a
 * tree with positions (yaml_tree.c), fill the defaults, then walk each mapping against its
 * table, rejecting unknown and repeated keys, wrong types, out-of-range numbers and bad names
 * with "FILE:LINE:COL: message". Integers are plain decimal digits (no sign, quotes, or leading
 * zeros); a null value (`key:`, `~`, `null`) means the default. Anchors, aliases and tags are
 * rejected (yaml_tree.c). Two kinds of value reach outside the file while loading, so that a
 * mistake shows at start with the line that caused it: server.tls's files must be readable,
 * and server.api_keys_file and server.api_keys_env are read then and there; their keys join
 * server.api_keys once the whole file has loaded. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "yaml_tree.h"

#define NO_MAX LLONG_MAX /* an integer bounded by its type only: messages say ">= min" */
#define NAME_MAX_LEN 64  /* model names go into URLs and metric labels */
#define NAME_RULE "must be 1 to 64 letters, digits, '.', '_' or '-'"
#define KEYS_FILE_MAX (1 << 20) /* bytes; a bigger "key file" is a wrong path */
#define EXPECTED_MAX 160      /* longest list of keys an unknown-key message shows */

enum key_type {
    KEY_STRING,  /* char *, non-empty */
    KEY_INT,     /* int */
    KEY_SIZE,    /* size_t */
    KEY_LONG,    /* long */
    KEY_DTYPE,   /* enum config_dtype, by name */
    KEY_BOOL,    /* bool: true or false */
    KEY_STRINGS, /* char ** followed by its size_t count (api_keys) */
    KEY_SECTION, /* a nested mapping with its own table */
    KEY_MODELS,  /* the list of model mappings (top level only) */
};

struct load; /* one parse: names for messages, base directory, the error */
struct table;

/* Validates (and may rewrite) a string value just stored in *s; v is its node. */
typedef int (*key_check_fn)(struct load *ld, const struct ytree *v, const char *keypath, char **s);

struct key {
    const char *name;
    enum key_type type;
    size_t offset;               /* of the field in the table's struct */
    long long min, max;          /* integers: inclusive bounds */
    long long def;               /* integers and dtype: the default */
    const char *def_str;         /* strings: the default (NULL: none) */
    bool required;               /* must be present and not null */
    key_check_fn check;          /* strings: extra validation */
    const struct table *section; /* KEY_SECTION, KEY_MODELS */
    size_t count_offset;         /* KEY_STRINGS: of the size_t count */
};

struct table {
    const struct key *keys;
    size_t n;
};

/* API keys read from server.api_keys_file or server.api_keys_env while loading. */
struct key_list {
    char **v;
    size_t n;
};

struct load {
    const char *name;     /* file name for messages */
    const char *base_dir; /* relative model paths are joined to it; NULL: left as they are */
    const struct config_tasks *tasks; /* the caller's task names; NULL: any name */
    struct err *e;
    struct key_list file_keys, env_keys; /* merged into server.api_keys at the end */
};

static int check_name(struct load *ld, const struct ytree *v, const char *keypath, char **s);
static int check_task(struct load *ld, const struct ytree *v, const char *keypath, char **s);
static int check_tool_parser(struct load *ld, const struct ytree *v, const char *keypath,
                             char **s);
static int resolve_path(struct load *ld, const struct ytree *v, const char *keypath, char **s);
static int resolve_model_path(struct load *ld, const struct ytree *v, const char *keypath,
                              char **s);
static int check_readable(struct load *ld, const struct ytree *v, const char *keypath, char **s);
static int read_keys_file(struct load *ld, const struct ytree *v, const char *keypath, char **s);
static int read_keys_env(struct load *ld, const struct ytree *v, const char *keypath, char **s);
static int check_log_format(struct load *ld, const struct ytree *v, const char *keypath, char **s);
static int check_log_level(struct load *ld, const struct ytree *v, const char *keypath, char **s);

/* Rows: NUM(key, type, struct, field, min, max, default) for integers; other rows name the
 * fields they use. */
/* clang-format off */
#define NUM(key, t, st, f, lo, hi, d) \
    {.name = key, .type = t, .offset = offsetof(st, f), .min = lo, .max = hi, .def = d}
#define ROW(key, t, st, f, ...) {.name = key, .type = t, .offset = offsetof(st, f), __VA_ARGS__}
#define TABLE(rows) {.keys = rows, .n = sizeof rows / sizeof rows[0]}
/* clang-format on */

static const struct key batching_keys[] = {
    NUM("max_batch_size", KEY_SIZE, struct batching_config, max_batch_size, 1, NO_MAX, 32),
    NUM("max_batch_tokens", KEY_SIZE, struct batching_config, max_batch_tokens, 1, NO_MAX, 16384),
    NUM("max_queue_delay_us", KEY_LONG, struct batching_config, max_queue_delay_us, 0, 10000000,
        2000),
    NUM("max_queue_size", KEY_SIZE, struct batching_config, max_queue_size, 1, NO_MAX, 1024),
};
static const struct table batching_table = TABLE(batching_keys);

static const struct key generation_keys[] = {
    NUM("max_total_tokens", KEY_SIZE, struct generation_section, max_total_tokens, 0, 1048576, 0),
    NUM("max_batch_total_tokens", KEY_SIZE, struct generation_section, max_batch_total_tokens, 1,
        NO_MAX, 16384),
    NUM("max_batch_prefill_tokens", KEY_SIZE, struct generation_section, max_batch_prefill_tokens,
        1, 1048576, 512),
    NUM("prefix_cache", KEY_BOOL, struct generation_section, prefix_cache, 0, 1, 1),
};
static const struct table generation_table = TABLE(generation_keys);

static const struct key limits_keys[] = {
    NUM("max_client_batch_size", KEY_SIZE, struct limits_config, max_client_batch_size, 0, NO_MAX,
        32),
    NUM("max_request_tokens", KEY_SIZE, struct limits_config, max_request_tokens, 0, NO_MAX, 0),
    NUM("max_results", KEY_SIZE, struct limits_config, max_results, 0, NO_MAX, 1024),
};
static const struct table limits_table = TABLE(limits_keys);

static const struct key model_keys[] = {
    ROW("name", KEY_STRING, struct model_config, name, .required = true, .check = check_name),
    ROW("path", KEY_STRING, struct model_config, path, .required = true,
        .check = resolve_model_path),
    ROW("revision", KEY_STRING, struct model_config, revision),
    ROW("task", KEY_STRING, struct model_config, task, .required = true, .check = check_task),
    ROW("dtype", KEY_DTYPE, struct model_config, dtype, .def = CONFIG_DTYPE_FP32),
    NUM("workers", KEY_INT, struct model_config, workers, 1, 64, 1),
    NUM("threads", KEY_INT, struct model_config, threads, 0, 1024, 0),
    NUM("max_input_tokens", KEY_SIZE, struct model_config, max_input_tokens, 0, NO_MAX, 0),
    ROW("tool_parser", KEY_STRING, struct model_config, tool_parser, .check = check_tool_parser),
    ROW("batching", KEY_SECTION, struct model_config, batching, .section = &batching_table),
    ROW("generation", KEY_SECTION, struct model_config, generation, .section = &generation_table),
    ROW("limits", KEY_SECTION, struct model_config, limits, .section = &limits_table),
};
static const struct table model_table = TABLE(model_keys);

static const struct key tls_keys[] = {
    ROW("cert", KEY_STRING, struct tls_config, cert, .required = true, .check = check_readable),
    ROW("key", KEY_STRING, struct tls_config, key, .required = true, .check = check_readable),
};
static const struct table tls_table = TABLE(tls_keys);

static const struct key server_keys[] = {
    ROW("host", KEY_STRING, struct server_config, host, .def_str = "0.0.0.0"),
    NUM("port", KEY_INT, struct server_config, port, 0, 65535, 8080),
    NUM("max_body_bytes", KEY_SIZE, struct server_config, max_body_bytes, 1024, NO_MAX, 4194304),
    NUM("request_timeout_ms", KEY_LONG, struct server_config, request_timeout_ms, 1, 86400000,
        30000),
    ROW("api_keys", KEY_STRINGS, struct server_config, api_keys,
        .count_offset = offsetof(struct server_config, n_api_keys)),
    ROW("api_keys_file", KEY_STRING, struct server_config, api_keys_file, .check = read_keys_file),
    ROW("api_keys_env", KEY_STRING, struct server_config, api_keys_env, .check = read_keys_env),
    NUM("http_threads", KEY_INT, struct server_config, http_threads, 1, 64, 2),
    NUM("max_connections", KEY_SIZE, struct server_config, max_connections, 1, 1000000, 1024),
    ROW("tls", KEY_SECTION, struct server_config, tls, .section = &tls_table),
    NUM("work_threads", KEY_INT, struct server_config, work_threads, 1, 64, 2),
    NUM("max_connections_per_ip", KEY_SIZE, struct server_config, max_connections_per_ip, 0,
        1000000, 256),
    NUM("idle_timeout_ms", KEY_LONG, struct server_config, idle_timeout_ms, 1000, 3600000, 60000),
    NUM("read_timeout_ms", KEY_LONG, struct server_config, read_timeout_ms, 100, 3600000, 30000),
    ROW("log_format", KEY_STRING, struct server_config, log_format, .def_str = "text",
        .check = check_log_format),
    ROW("log_level", KEY_STRING, struct server_config, log_level, .def_str = "info",
        .check = check_log_level),
    NUM("allow_partial_start", KEY_BOOL, struct server_config, allow_partial_start, 0, 1, 0),
};
static const struct table server_table = TABLE(server_keys);

static const struct key top_keys[] = {
    ROW("server", KEY_SECTION, struct config, server, .section = &server_table),
    ROW("models", KEY_MODELS, struct config, models, .required = true, .section = &model_table),
};
static const struct table top_table = TABLE(top_keys);

static const char *const dtype_names[] = {"fp32", "bf16", "int8", "int4"};

/* ---- messages ---- */

/* "NAME:LINE:COL: message" at node v. */
__attribute__((format(printf, 3, 4))) static int fail(struct load *ld, const struct ytree *v,
                                                      const char *fmt, ...)
{
    char msg[ERR_MSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set(ld->e, ERR_INVALID, "%s:%d:%d: %s", ld->name, v->line, v->column, msg);
}

/* How a value looks, for "..., not X": 'text', null, a list, a mapping. */
static const char *shown(const struct ytree *v, char *buf, size_t size)
{
    if (v->kind == YTREE_MAP)
        return "a mapping";
    if (v->kind == YTREE_SEQ)
        return "a list";
    if (ytree_is_null(v))
        return "null";
    snprintf(buf, size, "%s'%.60s%s'", v->plain ? "" : "the quoted string ", v->value,
             v->len > 60 ? "..." : "");
    return buf;
}

/* "where.key", or "key" at the top level. */
static void key_path(char *buf, size_t size, const char *where, const char *key)
{
    snprintf(buf, size, "%s%s%s", where, *where ? "." : "", key);
}

/* ---- values ---- */

static void *field(void *base, const struct key *k)
{
    return (char *)base + k->offset;
}

static void store_int(void *base, const struct key *k, long long x)
{
    switch (k->type) {
    case KEY_INT: *(int *)field(base, k) = (int)x; break;
    case KEY_SIZE: *(size_t *)field(base, k) = (size_t)x; break;
    case KEY_LONG: *(long *)field(base, k) = (long)x; break;
    case KEY_DTYPE: *(enum config_dtype *)field(base, k) = (enum config_dtype)x; break;
    case KEY_BOOL: *(bool *)field(base, k) = x != 0; break;
    default: break;
    }
}

/* Writes every default of table t into base (strings are copied). */
static int set_defaults(const struct table *t, void *base, struct err *e)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct key *k = &t->keys[i];
        switch (k->type) {
        case KEY_SECTION: {
            int rc = set_defaults(k->section, field(base, k), e);
            if (rc)
                return rc;
            break;
        }
        case KEY_STRING: {
            char **s = field(base, k);
            free(*s);
            *s = k->def_str ? strdup(k->def_str) : NULL;
            if (k->def_str && !*s)
                return err_set(e, ERR_NOMEM, "config: out of memory");
            break;
        }
        case KEY_STRINGS:
        case KEY_MODELS: break; /* none by default */
        default: store_int(base, k, k->def);
        }
    }
    return 0;
}

/* A plain decimal integer within k's bounds. */
static int get_int(struct load *ld, const struct ytree *v, const struct key *k, const char *keypath,
                   long long *out)
{
    /* No leading zeros: YAML 1.1 readers take 010 for octal 8. */
    bool ok = v->kind == YTREE_SCALAR && v->plain && v->len > 0 &&
              strspn(v->value, "0123456789") == v->len && (v->len == 1 || v->value[0] != '0');
    unsigned long long x = 0, max = (unsigned long long)k->max;
    for (size_t i = 0; ok && i < v->len; i++) {
        unsigned d = (unsigned)(v->value[i] - '0');
        ok = d <= max && x <= (max - d) / 10; /* x * 10 + d <= max, without overflow */
        x = x * 10 + d;
    }
    ok = ok && x >= (unsigned long long)k->min;
    if (!ok) {
        char range[64], buf[96];
        if (k->max == NO_MAX)
            snprintf(range, sizeof range, ">= %lld", k->min);
        else
            snprintf(range, sizeof range, "in %lld..%lld", k->min, k->max);
        return fail(ld, v, "%s must be an integer %s, not %s", keypath, range,
                    shown(v, buf, sizeof buf));
    }
    *out = (long long)x;
    return 0;
}

/* A copy of a non-empty string scalar (plain scalars such as 123 are strings too). */
static int get_string(struct load *ld, const struct ytree *v, const char *keypath, char **out)
{
    char buf[96];
    if (v->kind != YTREE_SCALAR || ytree_is_null(v) || v->len == 0)
        return fail(ld, v, "%s must be a non-empty string, not %s", keypath,
                    v->kind == YTREE_SCALAR && !v->plain ? "''" : shown(v, buf, sizeof buf));
    if (strlen(v->value) != v->len)
        return fail(ld, v, "%s must not contain NUL characters", keypath);
    *out = strdup(v->value);
    return *out ? 0 : err_set(ld->e, ERR_NOMEM, "%s: out of memory", ld->name);
}

/* An API key as clients send it after "Bearer ": no spaces or control characters. */
static bool valid_key(const char *k, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] <= ' ' || k[i] == 0x7f)
            return false;
    return n > 0;
}

/* server.api_keys: a list of tokens as clients send them after "Bearer ". */
static int get_strings(struct load *ld, const struct ytree *v, const char *keypath, char ***out,
                       size_t *n_out)
{
    char buf[96];
    if (v->kind != YTREE_SEQ)
        return fail(ld, v, "%s must be a list of strings, not %s", keypath,
                    shown(v, buf, sizeof buf));
    *out = calloc(v->n_items ? v->n_items : 1, sizeof **out);
    if (!*out)
        return err_set(ld->e, ERR_NOMEM, "%s: out of memory", ld->name);
    *n_out = v->n_items;
    for (size_t i = 0; i < v->n_items; i++) {
        char item[200];
        snprintf(item, sizeof item, "%.160s[%zu]", keypath, i);
        int rc = get_string(ld, v->items[i], item, &(*out)[i]);
        if (rc)
            return rc;
        if (!valid_key((*out)[i], strlen((*out)[i])))
            return fail(ld, v->items[i], "%s must not contain spaces or control characters", item);
    }
    return 0;
}

static int get_dtype(struct load *ld, const struct ytree *v, const char *keypath, long long *out)
{
    enum config_dtype d;
    if (v->kind == YTREE_SCALAR && config_dtype_by_name(v->value, &d) == 0) {
        *out = (long long)d;
        return 0;
    }
    char buf[96];
    return fail(ld, v, "%s must be fp32, bf16, int8 or int4, not %s", keypath, shown(v, buf, sizeof buf));
}

/* A plain true or false (YAML 1.1's yes/no/on/off are refused: they read as strings elsewhere). */
static int get_bool(struct load *ld, const struct ytree *v, const char *keypath, long long *out)
{
    bool plain = v->kind == YTREE_SCALAR && v->plain;
    if (plain && (strcmp(v->value, "true") == 0 || strcmp(v->value, "false") == 0)) {
        *out = v->value[0] == 't';
        return 0;
    }
    char buf[96];
    return fail(ld, v, "%s must be true or false, not %s", keypath, shown(v, buf, sizeof buf));
}

/* ---- checks on strings ---- */

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= NAME_MAX_LEN &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static int check_name(struct load *ld, const struct ytree *v, const char *keypath, char **s)
{
    if (!valid_name(*s))
        return fail(ld, v, "%s %s, not '%.64s'", keypath, NAME_RULE, *s);
    return 0;
}

/* The id of task in the caller's table (-1 without one, or when it does not know it). */
static int task_id(const struct config_tasks *tasks, const char *task)
{
    return tasks ? tasks->id(task) : -1;
}

/* "unknown task 'x' (tasks: ...)" and the like: the caller's list of names into buf. */
static const char *task_names(const struct config_tasks *tasks, char *buf, size_t size)
{
    tasks->list(buf, size);
    return buf;
}

static int check_task(struct load *ld, const struct ytree *v, const char *keypath, char **s)
{
    if (!ld->tasks || task_id(ld->tasks, *s) >= 0)
        return 0;
    char list[260];
    return fail(ld, v, "%s '%.40s' is not a task (%s)", keypath, *s,
                task_names(ld->tasks, list, sizeof list));
}

/* base_dir/path for a relative path. */
static char *join_path(const char *base_dir, const char *path)
{
    if (!base_dir || path[0] == '/')
        return strdup(path);
    size_t nb = strlen(base_dir), np = strlen(path);
    bool slash = nb > 0 && base_dir[nb - 1] != '/';
    char *s = malloc(nb + slash + np + 1);
    if (s)
        snprintf(s, nb + slash + np + 1, "%s%s%s", base_dir, slash ? "/" : "", path);
    return s;
}

static int resolve_path(struct load *ld, const struct ytree *v, const char *keypath, char **s)
{
    (void)v, (void)keypath;
    char *joined = join_path(ld->base_dir, *s);
    if (!joined)
        return err_set(ld->e, ERR_NOMEM, "%s: out of memory", ld->name);
    free(*s);
    *s = joined;
    return 0;
}

/* Whether a path has the shape of a Hub model id: hf://..., or ORG/NAME[@REV] (one '/',
 * neither first nor last, no leading '.', no blank) naming no local path (as written, and
 * joined to the config's directory: joined). hub/hub.h judges it further at load. */
static bool model_id_shape(const char *p, const char *joined)
{
    if (strncmp(p, "hf://", 5) == 0)
        return true;
    const char *slash = strchr(p, '/');
    struct stat st;
    return slash && slash != p && slash[1] && !strchr(slash + 1, '/') && p[0] != '.' &&
           !strpbrk(p, " \t\n") && stat(p, &st) != 0 && stat(joined, &st) != 0;
}

/* models[].path: joined to the config's directory as any path; when it has the shape of a
 * Hub model id, model_id keeps it as written (an hf:// path stays as written too). s is the
 * path field of the model_config being read (the only row with this check). */
static int resolve_model_path(struct load *ld, const struct ytree *v, const char *keypath,
                              char **s)
{
    struct model_config *m =
        (struct model_config *)(void *)((char *)s - offsetof(struct model_config, path));
    free(m->model_id);
    m->model_id = strdup(*s);
    if (!m->model_id)
        return err_set(ld->e, ERR_NOMEM, "%s: out of memory", ld->name);
    if (strncmp(*s, "hf://", 5) == 0)
        return 0;
    int rc = resolve_path(ld, v, keypath, s);
    if (rc || !model_id_shape(m->model_id, *s)) {
        free(m->model_id);
        m->model_id = NULL;
    }
    return rc;
}

/* ---- files and the environment ---- */

/* server.tls.cert and .key: joined to the config's directory, then a regular, non-empty file
 * this process can read, so that a wrong path stops the start with its line. */
static int check_readable(struct load *ld, const struct ytree *v, const char *keypath, char **s)
{
    int rc = resolve_path(ld, v, keypath, s);
    if (rc)
        return rc;
    int fd = open(*s, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        return fail(ld, v, "%s '%s' cannot be read: %s", keypath, *s, strerror(err));
    }
    close(fd);
    if (!S_ISREG(st.st_mode))
        return fail(ld, v, "%s '%s' is not a file", keypath, *s);
    if (st.st_size == 0)
        return fail(ld, v, "%s '%s' is empty (a PEM file is expected)", keypath, *s);
    return 0;
}

/* A string that must be one of names (NULL-terminated); the message lists them. */
static int check_one_of(struct load *ld, const struct ytree *v, const char *keypath,
                        const char *s, const char *const *names)
{
    char list[96] = "";
    for (size_t i = 0; names[i]; i++) {
        if (strcmp(s, names[i]) == 0)
            return 0;
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? " | " : "",
                 names[i]);
    }
    return fail(ld, v, "%s must be %s, not '%.60s'", keypath, list, s);
}

/* server.log_format and server.log_level: server/log.h's names. */
static int check_log_format(struct load *ld, const struct ytree *v, const char *keypath, char **s)
{
    static const char *const names[] = {"text", "json", NULL};
    return check_one_of(ld, v, keypath, *s, names);
}

static int check_log_level(struct load *ld, const struct ytree *v, const char *keypath, char **s)
{
    static const char *const names[] = {"debug", "info", "warn", "error", NULL};
    return check_one_of(ld, v, keypath, *s, names);
}

/* models[].tool_parser: server/tool_parse.c's parsers[] names. */
static int check_tool_parser(struct load *ld, const struct ytree *v, const char *keypath,
                             char **s)
{
    static const char *const names[] = {"llama3_json", "hermes", "mistral", NULL};
    return check_one_of(ld, v, keypath, *s, names);
}

/* Appends a copy of k[0..n) to l unless it is there already. */
static int key_list_add(struct load *ld, struct key_list *l, const char *k, size_t n)
{
    for (size_t i = 0; i < l->n; i++)
        if (strlen(l->v[i]) == n && memcmp(l->v[i], k, n) == 0)
            return 0;
    char **grown = realloc(l->v, (l->n + 1) * sizeof *grown);
    char *copy = strndup(k, n);
    if (grown)
        l->v = grown;
    if (!grown || !copy) {
        free(copy);
        return err_set(ld->e, ERR_NOMEM, "%s: out of memory", ld->name);
    }
    l->v[l->n++] = copy;
    return 0;
}

static void key_list_free(struct key_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    *l = (struct key_list){0};
}

/* server.api_keys_file: one key a line; surrounding blanks (and a CR) are trimmed, blank
 * lines and lines starting with '#' skipped. The file must hold at least one key. */
static int read_keys_file(struct load *ld, const struct ytree *v, const char *keypath, char **s)
{
    int rc = resolve_path(ld, v, keypath, s);
    if (rc)
        return rc;
    FILE *f = fopen(*s, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0) {
        int err = errno;
        if (f)
            fclose(f);
        return fail(ld, v, "%s '%s' cannot be read: %s", keypath, *s, strerror(err));
    }
    if (!S_ISREG(st.st_mode) || st.st_size > KEYS_FILE_MAX) {
        fclose(f);
        return fail(ld, v, "%s '%s' is not a key file (%s)", keypath, *s,
                    S_ISREG(st.st_mode) ? "over 1 MiB" : "not a regular file");
    }
    char *text = malloc((size_t)st.st_size + 1);
    size_t len = text ? fread(text, 1, (size_t)st.st_size, f) : 0;
    int read_err = text && ferror(f) ? errno : 0;
    fclose(f);
    if (!text)
        return err_set(ld->e, ERR_NOMEM, "%s: out of memory", ld->name);
    if (read_err) {
        free(text);
        return fail(ld, v, "%s '%s' cannot be read: %s", keypath, *s, strerror(read_err));
    }
    size_t before = ld->file_keys.n;
    int line = 0;
    for (size_t at = 0; rc == 0 && at < len;) {
        const char *p = text + at, *nl = memchr(p, '\n', len - at);
        size_t n = nl ? (size_t)(nl - p) : len - at;
        at += n + 1;
        line++;
        while (n > 0 && (*p == ' ' || *p == '\t'))
            p++, n--;
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
            n--;
        if (n == 0 || *p == '#')
            continue;
        if (!valid_key(p, n))
            rc = fail(ld, v, "%s '%s' line %d: a key must not contain spaces or control characters",
                      keypath, *s, line);
        else
            rc = key_list_add(ld, &ld->file_keys, p, n);
    }
    free(text);
    if (rc || ld->file_keys.n > before)
        return rc;
    return fail(ld, v, "%s '%s' holds no key (one a line; blank lines and # comments are ignored)",
                keypath, *s);
}

/* server.api_keys_env: the name of a variable set to keys separated by commas or blanks. */
static int read_keys_env(struct load *ld, const struct ytree *v, const char *keypath, char **s)
{
    const char *name = *s;
    bool ok = !isdigit((unsigned char)name[0]);
    for (const char *c = name; ok && *c; c++)
        ok = isalnum((unsigned char)*c) || *c == '_';
    if (!ok)
        return fail(ld, v,
                    "%s must be an environment variable name (letters, digits and '_', not "
                    "starting with a digit), not '%.64s'",
                    keypath, name);
    const char *value = getenv(name);
    if (!value)
        return fail(ld, v, "%s: the environment variable %s is not set", keypath, name);
    static const char sep[] = ", \t\r\n\v\f";
    size_t before = ld->env_keys.n;
    for (const char *p = value + strspn(value, sep); *p; p += strspn(p, sep)) {
        size_t n = strcspn(p, sep);
        if (!valid_key(p, n))
            return fail(ld, v,
                        "%s: the environment variable %s holds a key with control characters",
                        keypath, name);
        int rc = key_list_add(ld, &ld->env_keys, p, n);
        if (rc)
            return rc;
        p += n;
    }
    if (ld->env_keys.n == before)
        return fail(ld, v,
                    "%s: the environment variable %s is empty (keys separated by commas or spaces)",
                    keypath, name);
    return 0;
}

/* server.api_keys followed by the keys of the file and of the variable, each key once. */
static int merge_keys(struct load *ld, struct server_config *s)
{
    struct key_list all = {0};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < s->n_api_keys; i++)
        rc = key_list_add(ld, &all, s->api_keys[i], strlen(s->api_keys[i]));
    for (size_t i = 0; rc == 0 && i < ld->file_keys.n; i++)
        rc = key_list_add(ld, &all, ld->file_keys.v[i], strlen(ld->file_keys.v[i]));
    for (size_t i = 0; rc == 0 && i < ld->env_keys.n; i++)
        rc = key_list_add(ld, &all, ld->env_keys.v[i], strlen(ld->env_keys.v[i]));
    if (rc) {
        key_list_free(&all);
        return rc;
    }
    for (size_t i = 0; i < s->n_api_keys; i++)
        free(s->api_keys[i]);
    free(s->api_keys);
    s->api_keys = all.v;
    s->n_api_keys = all.n;
    return 0;
}

/* ---- mappings ---- */

static int apply_map(struct load *ld, const struct ytree *map, const struct table *t, void *base,
                     const char *where);

/* The first key `name` of mapping map, or NULL; its value is the node after it. */
static const struct ytree *const *map_find(const struct ytree *map, const char *name)
{
    for (size_t i = 0; i + 1 < map->n_items; i += 2)
        if (strcmp(map->items[i]->value, name) == 0)
            return (const struct ytree *const *)&map->items[i];
    return NULL;
}

/* models: a non-empty list of model mappings with unique names. */
static int apply_models(struct load *ld, const struct ytree *v, const struct key *k, void *base)
{
    char buf[96];
    struct config *cfg = base;
    if (v->kind != YTREE_SEQ || v->n_items == 0)
        return fail(ld, v, "models must be a list of at least one model (name, path, task), not %s",
                    v->kind == YTREE_SEQ ? "an empty list" : shown(v, buf, sizeof buf));
    cfg->models = calloc(v->n_items, sizeof *cfg->models);
    if (!cfg->models)
        return err_set(ld->e, ERR_NOMEM, "%s: out of memory", ld->name);
    cfg->n_models = v->n_items;
    for (size_t i = 0; i < v->n_items; i++) {
        const struct ytree *item = v->items[i];
        struct model_config *m = &cfg->models[i];
        char where[32];
        snprintf(where, sizeof where, "models[%zu]", i);
        if (item->kind != YTREE_MAP)
            return fail(ld, item, "%s must be a mapping with name, path and task, not %s", where,
                        shown(item, buf, sizeof buf));
        m->line = item->line;
        m->column = item->column;
        int rc = set_defaults(k->section, m, ld->e);
        if (rc == 0)
            rc = apply_map(ld, item, k->section, m, where);
        if (rc)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->models[j].name, m->name) == 0)
                return fail(ld, map_find(item, "name")[1],
                            "%s.name '%s' is used twice (first at line %d)", where, m->name,
                            map_find(v->items[j], "name")[1]->line);
    }
    return 0;
}

/* One value v of row k into base. */
static int apply_value(struct load *ld, const struct ytree *v, const struct key *k, void *base,
                       const char *keypath)
{
    char buf[96];
    long long x = 0;
    int rc = 0;
    switch (k->type) {
    case KEY_STRING: {
        char **s = field(base, k), *copy = NULL;
        rc = get_string(ld, v, keypath, &copy);
        if (rc)
            return rc;
        free(*s);
        *s = copy;
        return k->check ? k->check(ld, v, keypath, s) : 0;
    }
    case KEY_INT:
    case KEY_SIZE:
    case KEY_LONG:
    case KEY_DTYPE:
    case KEY_BOOL:
        rc = k->type == KEY_DTYPE  ? get_dtype(ld, v, keypath, &x)
             : k->type == KEY_BOOL ? get_bool(ld, v, keypath, &x)
                                   : get_int(ld, v, k, keypath, &x);
        if (rc == 0)
            store_int(base, k, x);
        return rc;
    case KEY_STRINGS:
        return get_strings(ld, v, keypath, field(base, k),
                           (size_t *)((char *)base + k->count_offset));
    case KEY_SECTION:
        if (v->kind != YTREE_MAP)
            return fail(ld, v, "%s must be a mapping, not %s", keypath, shown(v, buf, sizeof buf));
        return apply_map(ld, v, k->section, field(base, k), keypath);
    case KEY_MODELS: return apply_models(ld, v, k, base);
    }
    return 0;
}

/* "unknown key" listing t's keys, as many as the message has room for (then "..."). */
static int fail_unknown_key(struct load *ld, const struct ytree *key, const struct table *t,
                            const char *where)
{
    char head[160];
    snprintf(head, sizeof head, "unknown key '%.40s' %s%s (expected one of: ", key->value,
             *where ? "in " : "at the top level", where);
    int pos = snprintf(NULL, 0, "%s:%d:%d: ", ld->name, key->line, key->column);
    size_t used = (size_t)(pos > 0 ? pos : 0) + strlen(head) + 1; /* + ")" */
    size_t room = used + 6 < ERR_MSG_SIZE ? ERR_MSG_SIZE - 1 - used : 0;
    char expected[ERR_MSG_SIZE] = "";
    for (size_t r = 0; r < t->n; r++) {
        size_t len = strlen(expected), add = strlen(t->keys[r].name) + (r ? 2 : 0);
        bool last = r + 1 == t->n;
        if (len + add + (last ? 0 : 5) > room) { /* ", ..." must still fit */
            snprintf(expected + len, sizeof expected - len, "%s...", r ? ", " : "");
            break;
        }
        snprintf(expected + len, sizeof expected - len, "%s%s", r ? ", " : "", t->keys[r].name);
    }
    return fail(ld, key, "%s%s)", head, expected);
}

/* Walks mapping `map` against table t: every key known and given once, every value valid,
 * every required key present. `where` names the mapping in messages ("" at the top level). */
static int apply_map(struct load *ld, const struct ytree *map, const struct table *t, void *base,
                     const char *where)
{
    bool seen[32] = {0}; /* per row of t: tables have at most 16 (server) */
    for (size_t i = 0; i + 1 < map->n_items; i += 2) {
        const struct ytree *key = map->items[i], *v = map->items[i + 1];
        const struct key *k = NULL;
        for (size_t r = 0; r < t->n && !k; r++)
            if (strlen(key->value) == key->len && strcmp(key->value, t->keys[r].name) == 0)
                k = &t->keys[r];
        if (!k)
            return fail_unknown_key(ld, key, t, where);
        size_t r = (size_t)(k - t->keys);
        if (seen[r])
            return fail(ld, key, "duplicate key '%s'%s%s (first at line %d)", k->name,
                        *where ? " in " : "", where, map_find(map, k->name)[0]->line);
        seen[r] = true;
        char keypath[160];
        key_path(keypath, sizeof keypath, where, k->name);
        if (ytree_is_null(v) && !k->required)
            continue; /* the default stays */
        int rc = apply_value(ld, v, k, base, keypath);
        if (rc)
            return rc;
    }
    for (size_t r = 0; r < t->n; r++)
        if (t->keys[r].required && !seen[r])
            return fail(ld, map, "%s%smissing required key '%s'", where, *where ? ": " : "",
                        t->keys[r].name);
    return 0;
}

/* ---- the API ---- */

int config_parse(const char *yaml, size_t len, const char *name, const char *base_dir,
                 const struct config_tasks *tasks, struct config *out, struct err *e)
{
    struct load ld = {.name = name, .base_dir = base_dir, .tasks = tasks, .e = e};
    struct ytree *root = NULL;
    memset(out, 0, sizeof *out);
    int rc = ytree_parse(yaml, len, name, &root, e);
    if (rc)
        return rc;
    char buf[96];
    if (!root || ytree_is_null(root))
        rc = err_set(e, ERR_INVALID, "%s:%d:%d: the config is empty (it needs a 'models' list)",
                     name, root ? root->line : 1, root ? root->column : 1);
    else if (root->kind != YTREE_MAP)
        rc = fail(&ld, root, "the config must be a mapping with 'models' (and 'server'), not %s",
                  shown(root, buf, sizeof buf));
    else
        rc = set_defaults(&top_table, out, e);
    if (rc == 0)
        rc = apply_map(&ld, root, &top_table, out, "");
    if (rc == 0)
        rc = merge_keys(&ld, &out->server);
    for (size_t i = 0; rc == 0 && i < out->n_models; i++)
        out->models[i].task_id = task_id(tasks, out->models[i].task);
    key_list_free(&ld.file_keys);
    key_list_free(&ld.env_keys);
    ytree_free(root);
    if (rc)
        config_free(out);
    return rc;
}

int config_load(const char *path, const struct config_tasks *tasks, struct config *out,
                struct err *e)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(e, ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len == cap) {
            char *grown = realloc(text, cap = cap ? 2 * cap : 4096);
            if (!grown) {
                rc = err_set(e, ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            text = grown;
        }
        len += fread(text + len, 1, cap - len, f);
        if (ferror(f)) {
            rc = err_set(e, ERR_IO, "%s: cannot read: %s", path, strerror(errno));
            break;
        }
        if (feof(f))
            break;
    }
    fclose(f);
    /* Model paths are relative to the file's directory ("dir/inferd.yaml" -> "dir"). */
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : NULL;
    if (rc == 0 && slash && !dir)
        rc = err_set(e, ERR_NOMEM, "%s: out of memory", path);
    if (rc == 0)
        rc = config_parse(text, len, path, dir, tasks, out, e);
    if (rc == 0) {
        out->path = strdup(path);
        if (!out->path) {
            config_free(out);
            rc = err_set(e, ERR_NOMEM, "%s: out of memory", path);
        }
    }
    free(dir);
    free(text);
    return rc;
}

int config_single(const char *model_dir, const char *task, const char *name,
                  const struct config_tasks *tasks, struct config *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    if (tasks && task_id(tasks, task) < 0) {
        char list[260];
        return err_set(e, ERR_INVALID, "unknown task '%.40s' (tasks: %s)", task,
                       task_names(tasks, list, sizeof list));
    }
    /* The default name: the directory's last component ("models/spam/" -> "spam"; a model
     * id's name without its revision). */
    size_t end = strlen(model_dir), start;
    while (end > 1 && model_dir[end - 1] == '/')
        end--;
    for (start = end; start > 0 && model_dir[start - 1] != '/';)
        start--;
    const char *at = memchr(model_dir + start, '@', end - start); /* ORG/NAME@REV -> NAME */
    if (at)
        end = (size_t)(at - model_dir);
    struct model_config *m = out->models = calloc(1, sizeof *out->models);
    if (!m)
        return err_set(e, ERR_NOMEM, "config: out of memory");
    out->n_models = 1;
    int rc = set_defaults(&server_table, &out->server, e);
    if (rc == 0)
        rc = set_defaults(&model_table, m, e);
    if (rc == 0) {
        m->name = name ? strdup(name) : strndup(model_dir + start, end - start);
        m->path = strdup(model_dir);
        m->task = strdup(task);
        m->task_id = task_id(tasks, task);
        bool id = model_id_shape(model_dir, model_dir);
        m->model_id = id ? strdup(model_dir) : NULL;
        if (!m->name || !m->path || !m->task || (id && !m->model_id))
            rc = err_set(e, ERR_NOMEM, "config: out of memory");
    }
    if (rc == 0 && !valid_name(m->name))
        rc = err_set(e, ERR_INVALID, "model name '%s' %s%s", m->name, NAME_RULE,
                     name ? "" : " (give one with --name)");
    if (rc)
        config_free(out);
    return rc;
}

void config_free(struct config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_models; i++) {
        free(c->models[i].name);
        free(c->models[i].path);
        free(c->models[i].revision);
        free(c->models[i].tool_parser);
        free(c->models[i].model_id);
        free(c->models[i].task);
    }
    free(c->models);
    for (size_t i = 0; i < c->server.n_api_keys; i++)
        free(c->server.api_keys[i]);
    free(c->server.api_keys);
    free(c->server.api_keys_file);
    free(c->server.api_keys_env);
    free(c->server.tls.cert);
    free(c->server.tls.key);
    free(c->server.host);
    free(c->server.log_format);
    free(c->server.log_level);
    free(c->path);
    memset(c, 0, sizeof *c);
}

/* The same task: by the caller's id when resolved (an alias is its task), else by name. */
static bool same_task(const struct model_config *a, const struct model_config *b)
{
    if (a->task_id >= 0 || b->task_id >= 0)
        return a->task_id == b->task_id;
    return strcmp(a->task, b->task) == 0;
}

/* Two optional strings, equal or both absent. */
static bool same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

bool model_config_same(const struct model_config *a, const struct model_config *b)
{
    const struct batching_config *x = &a->batching, *y = &b->batching;
    const struct generation_section *g = &a->generation, *h = &b->generation;
    return strcmp(a->path, b->path) == 0 && same_str(a->revision, b->revision) &&
           same_str(a->model_id, b->model_id) && same_task(a, b) && a->dtype == b->dtype &&
           a->workers == b->workers && a->threads == b->threads &&
           a->max_input_tokens == b->max_input_tokens &&
           same_str(a->tool_parser, b->tool_parser) && x->max_batch_size == y->max_batch_size &&
           x->max_batch_tokens == y->max_batch_tokens &&
           x->max_queue_delay_us == y->max_queue_delay_us &&
           x->max_queue_size == y->max_queue_size && g->max_total_tokens == h->max_total_tokens &&
           g->max_batch_total_tokens == h->max_batch_total_tokens &&
           g->max_batch_prefill_tokens == h->max_batch_prefill_tokens &&
           g->prefix_cache == h->prefix_cache &&
           memcmp(&a->limits, &b->limits, sizeof a->limits) == 0;
}

const char *config_dtype_name(enum config_dtype d)
{
    return (unsigned)d < sizeof dtype_names / sizeof dtype_names[0] ? dtype_names[d] : "unknown";
}

int config_dtype_by_name(const char *name, enum config_dtype *out)
{
    for (size_t i = 0; i < sizeof dtype_names / sizeof dtype_names[0]; i++)
        if (strcmp(name, dtype_names[i]) == 0) {
            *out = (enum config_dtype)i;
            return 0;
        }
    return -1;
}
