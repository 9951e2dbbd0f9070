/* hub_env: the environment variables huggingface_hub reads (constants.py), read the same
 * way: HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, XDG_CACHE_HOME, HF_TOKEN, HF_TOKEN_PATH,
 * HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE), HF_HUB_DISABLE_PROGRESS_BARS. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hub_impl.h"

#define DEFAULT_ENDPOINT "https://huggingface.co"

bool hub_env_true(const char *name)
{
    static const char *const yes[] = {"1", "ON", "YES", "TRUE"};
    const char *v = getenv(name);
    for (size_t i = 0; v && i < sizeof yes / sizeof yes[0]; i++)
        if (strcasecmp(v, yes[i]) == 0)
            return true;
    return false;
}

/* A set, non-empty variable, or NULL. */
static const char *env_or_null(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
static int hf_home(char *out, size_t cap, struct err *e)
{
    const char *home = env_or_null("HF_HOME"), *xdg = env_or_null("XDG_CACHE_HOME");
    const char *user = env_or_null("HOME");
    int n;
    if (home)
        n = snprintf(out, cap, "%s", home);
    else if (xdg)
        n = snprintf(out, cap, "%s/huggingface", xdg);
    else if (user)
        n = snprintf(out, cap, "%s/.cache/huggingface", user);
    else
        return err_set(e, ERR_INVALID, "no cache directory: set HF_HUB_CACHE, HF_HOME or HOME");
    if (n < 0 || (size_t)n >= cap)
        return err_set(e, ERR_INVALID, "the cache directory's path is too long");
    return 0;
}

int hub_cache_dir(char *dir, size_t cap, struct err *e)
{
    const char *cache = env_or_null("HF_HUB_CACHE");
    if (!cache)
        cache = env_or_null("HUGGINGFACE_HUB_CACHE"); /* the legacy name */
    if (cache) {
        int n = snprintf(dir, cap, "%s", cache);
        return n > 0 && (size_t)n < cap ? 0 : err_set(e, ERR_INVALID, "HF_HUB_CACHE is too long");
    }
    char home[PATH_MAX];
    int rc = hf_home(home, sizeof home, e);
    if (rc)
        return rc;
    int n = snprintf(dir, cap, "%s/hub", home);
    return n > 0 && (size_t)n < cap ? 0 : err_set(e, ERR_INVALID, "HF_HOME is too long");
}

/* The token file's first line, trimmed, into out ("" when there is none). */
static void read_token_file(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    out[0] = 0;
    if (!f)
        return;
    if (!fgets(out, (int)cap, f))
        out[0] = 0;
    fclose(f);
    size_t n = strlen(out);
    while (n > 0 && isspace((unsigned char)out[n - 1]))
        out[--n] = 0;
}

/* HF_TOKEN, else the file HF_TOKEN_PATH, else $HF_HOME/token. */
static void read_token(struct hub_env *env)
{
    const char *t = env_or_null("HF_TOKEN");
    if (t) {
        snprintf(env->token, sizeof env->token, "%s", t);
        return;
    }
    char path[PATH_MAX], home[PATH_MAX];
    const char *p = env_or_null("HF_TOKEN_PATH");
    if (p)
        snprintf(path, sizeof path, "%s", p);
    else if (hf_home(home, sizeof home, NULL) == 0)
        snprintf(path, sizeof path, "%.4000s/token", home);
    else
        return;
    read_token_file(path, env->token, sizeof env->token);
}

int hub_env_read(struct hub_env *env, struct err *e)
{
    memset(env, 0, sizeof *env);
    const char *ep = env_or_null("HF_ENDPOINT");
    snprintf(env->endpoint, sizeof env->endpoint, "%s", ep ? ep : DEFAULT_ENDPOINT);
    size_t n = strlen(env->endpoint);
    while (n > 0 && env->endpoint[n - 1] == '/')
        env->endpoint[--n] = 0;
    int rc = hub_cache_dir(env->cache, sizeof env->cache, e);
    if (rc)
        return rc;
    read_token(env);
    env->offline = hub_env_true("HF_HUB_OFFLINE") || hub_env_true("TRANSFORMERS_OFFLINE");
    env->no_bars = hub_env_true("HF_HUB_DISABLE_PROGRESS_BARS");
    return 0;
}
