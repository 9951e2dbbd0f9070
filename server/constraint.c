/* constraint: see constraint.h. The cache is process-wide (a grammar does not depend on the
 * model: its per-vocabulary masks live inside it), behind one mutex held only for look-ups;
 * compiling happens outside it (two requests racing on a new schema both compile, one keeps). */
#include "constraint.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "handler.h"
#include "schema_regex.h"

struct entry {
    uint64_t hash;
    char *key; /* "r:" regex or "j:" compact schema */
    size_t key_len;
    struct grammar *g;
    uint64_t used;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct entry cache[CONSTRAINT_CACHE_SIZE];
static uint64_t tick;

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static struct grammar *lookup(uint64_t h, const char *key, size_t len)
{
    for (size_t i = 0; i < CONSTRAINT_CACHE_SIZE; i++)
        if (cache[i].g && cache[i].hash == h && cache[i].key_len == len &&
            memcmp(cache[i].key, key, len) == 0) {
            cache[i].used = ++tick;
            return grammar_ref(cache[i].g);
        }
    return NULL;
}

/* Keeps g (a new reference) under key; returns the grammar to use (an equal one already kept
 * wins). */
static struct grammar *insert(uint64_t h, const char *key, size_t len, struct grammar *g)
{
    struct grammar *have = lookup(h, key, len);
    if (have) {
        grammar_unref(g);
        return have;
    }
    size_t victim = 0;
    for (size_t i = 0; i < CONSTRAINT_CACHE_SIZE; i++) {
        if (!cache[i].g) {
            victim = i;
            break;
        }
        if (cache[i].used < cache[victim].used)
            victim = i;
    }
    char *k = malloc(len);
    if (!k)
        return g; /* not kept: used once */
    memcpy(k, key, len);
    grammar_unref(cache[victim].g);
    free(cache[victim].key);
    cache[victim] = (struct entry){h, k, len, grammar_ref(g), ++tick};
    return g;
}

/* key: the cache key; re: the regex to compile on a miss (made by make when NULL). */
static int get(const char *key, size_t key_len, const char *re, size_t re_len,
               const json_t *schema, struct grammar **out, struct err *e)
{
    uint64_t h = fnv1a(key, key_len);
    pthread_mutex_lock(&mu);
    *out = lookup(h, key, key_len);
    pthread_mutex_unlock(&mu);
    if (*out)
        return 0;
    char *made = NULL;
    int rc = 0;
    if (!re) {
        rc = schema ? schema_to_regex(schema, &made, e) : schema_any_object_regex(&made, e);
        re = made;
        re_len = made ? strlen(made) : 0;
    }
    struct grammar *g = NULL;
    if (rc == 0)
        rc = grammar_compile(re, re_len, &g, e);
    free(made);
    if (rc == ERR_INVALID) { /* the request's constraint, not its other parameters */
        if (e)
            e->kind = ERR_GEN_SCHEMA;
        rc = ERR_GEN_SCHEMA;
    }
    if (rc)
        return rc;
    pthread_mutex_lock(&mu);
    *out = insert(h, key, key_len, g);
    pthread_mutex_unlock(&mu);
    return 0;
}

int constraint_regex(const char *re, size_t len, struct grammar **out, struct err *e)
{
    char *key = malloc(len + 2);
    if (!key)
        return err_set(e, ERR_NOMEM, "out of memory");
    memcpy(key, "r:", 2);
    memcpy(key + 2, re, len);
    int rc = get(key, len + 2, re, len, NULL, out, e);
    free(key);
    return rc;
}

int constraint_schema(const json_t *schema, struct grammar **out, struct err *e)
{
    char *text = schema ? json_dumps(schema, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("*");
    if (!text)
        return err_set(e, ERR_NOMEM, "out of memory");
    size_t n = strlen(text);
    char *key = malloc(n + 2);
    int rc;
    if (!key) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
    } else {
        memcpy(key, "j:", 2);
        memcpy(key + 2, text, n);
        rc = get(key, n + 2, NULL, 0, schema, out, e);
    }
    free(key);
    free(text);
    return rc;
}

void constraint_cache_clear(void)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < CONSTRAINT_CACHE_SIZE; i++) {
        grammar_unref(cache[i].g);
        free(cache[i].key);
        cache[i] = (struct entry){0};
    }
    pthread_mutex_unlock(&mu);
}
