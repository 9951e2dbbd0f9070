/* hub: see hub.h. Model ids, and a snapshot as _snapshot_download.py makes one: the repo info
 * (the commit a revision stands for and the file list), refs/REV, then the files picked
 * (hub_files.c) fetched by up to WORKERS threads (hub_download.c) with the commit as their
 * revision; offline, or when the Hub cannot be reached, the revision's cached snapshot. */
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hub_impl.h"

#define WORKERS 8 /* files fetched at once (snapshot_download's max_workers) */
#define PREFIX "hf://"

/* ---- model ids ---- */

/* A repo name part: letters, digits, '.', '_', '-', not starting with '.' or '-', no "--"
 * nor ".." (the Hub's own rules), at most 96 characters. */
static bool name_part(const char *s, size_t n)
{
    if (n == 0 || n > 96 || s[0] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok || (i && (c == '-' || c == '.') && s[i - 1] == c))
            return false;
    }
    return true;
}

/* Whether id (up to '@' or its end) is ORG/NAME, or NAME when a bare name is allowed. */
static bool repo_id_ok(const char *id, bool bare_name)
{
    size_t n = strcspn(id, "@");
    const char *slash = memchr(id, '/', n);
    if (!slash)
        return bare_name && name_part(id, n);
    return name_part(id, (size_t)(slash - id)) &&
           name_part(slash + 1, n - (size_t)(slash - id) - 1);
}

bool hub_is_model_id(const char *spec)
{
    if (strncmp(spec, PREFIX, strlen(PREFIX)) == 0)
        return true;
    struct stat st;
    return repo_id_ok(spec, false) && stat(spec, &st) != 0;
}

int hub_parse_ref(const char *spec, const char *revision, struct hub_ref *ref, struct err *e)
{
    bool prefixed = strncmp(spec, PREFIX, strlen(PREFIX)) == 0;
    const char *id = prefixed ? spec + strlen(PREFIX) : spec;
    if (!repo_id_ok(id, prefixed))
        return err_set(e, ERR_INVALID,
                       "'%.200s' is not a model id (ORG/NAME[@REVISION] or "
                       "hf://ORG/NAME[@REVISION]) nor a directory",
                       spec);
    const char *at = strchr(id, '@');
    size_t n = at ? (size_t)(at - id) : strlen(id);
    snprintf(ref->repo, sizeof ref->repo, "%.*s", (int)n, id);
    if (at && revision && *revision && strcmp(at + 1, revision) != 0)
        return err_set(e, ERR_INVALID, "%s names revision %s and revision: %s: give one",
                       spec, at + 1, revision);
    const char *rev = at ? at + 1 : revision && *revision ? revision : "main";
    if (!*rev || strlen(rev) >= sizeof ref->revision || strstr(rev, "..") || rev[0] == '/')
        return err_set(e, ERR_INVALID, "%s: bad revision '%.100s'", spec, rev);
    snprintf(ref->revision, sizeof ref->revision, "%s", rev);
    return 0;
}

/* ---- the cached snapshot ---- */

/* The revision's snapshot directory in the cache, when it is there. */
static int cached_snapshot(const char *repo_dir, const char *revision, char *dir, size_t cap)
{
    char commit[64];
    struct stat st;
    if (cache_commit_of(repo_dir, revision, commit, sizeof commit) != 0)
        return -1;
    int n = snprintf(dir, cap, "%s/snapshots/%s", repo_dir, commit);
    return n > 0 && (size_t)n < cap && stat(dir, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

/* ---- the repo info ---- */

struct listing {
    char commit[64];
    char **names;
    size_t n;
};

static void listing_free(struct listing *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
}

/* "sha" and "siblings"[].rfilename of the repo info's JSON. */
static int parse_info(const char *body, const char *what, struct listing *l, struct err *e)
{
    json_t *j = json_loads(body, 0, NULL);
    const char *sha = json_string_value(json_object_get(j, "sha"));
    json_t *sib = json_object_get(j, "siblings");
    int rc = 0;
    if (!sha || !is_commit_hash(sha) || !json_is_array(sib)) {
        rc = err_set(e, ERR_FORMAT, "%s: the Hub's repo info has no commit sha or file list",
                     what);
    } else {
        snprintf(l->commit, sizeof l->commit, "%s", sha);
        l->names = calloc(json_array_size(sib) + 1, sizeof *l->names);
        for (size_t i = 0; l->names && i < json_array_size(sib); i++) {
            const char *f = json_string_value(json_object_get(json_array_get(sib, i), "rfilename"));
            if (f && (l->names[l->n] = strdup(f)))
                l->n++;
        }
        if (!l->names)
            rc = err_set(e, ERR_NOMEM, "out of memory");
    }
    json_decref(j);
    return rc;
}

static int repo_info(const struct hub_env *env, const struct hub_ref *ref, struct listing *l,
                     struct hub_resp *r, struct err *e)
{
    char rev[800], url[2400], what[480];
    url_escape(ref->revision, false, rev, sizeof rev);
    snprintf(url, sizeof url, "%s/api/models/%s/revision/%s", env->endpoint, ref->repo, rev);
    snprintf(what, sizeof what, "%s@%s", ref->repo, ref->revision);
    char *body = NULL;
    int rc = http_get_text(env, url, &body, r, e);
    if (rc)
        return r->network ? rc : http_error(r, what, e);
    rc = parse_info(body, what, l, e);
    free(body);
    return rc;
}

/* ---- the downloads ---- */

struct pool {
    const struct hub_pull *pull;
    const char *const *files;
    size_t n;
    atomic_size_t next;
    atomic_bool failed;
    pthread_mutex_t mu;
    struct err first; /* the first failure */
};

static void *worker(void *arg)
{
    struct pool *pool = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&pool->next, 1);
        if (i >= pool->n || atomic_load(&pool->failed))
            return NULL;
        struct err e = {0};
        if (download_file(pool->pull, pool->files[i], &e) == 0) {
            progress_file_done(pool->pull->progress);
            continue;
        }
        pthread_mutex_lock(&pool->mu);
        if (!atomic_exchange(&pool->failed, true))
            pool->first = e;
        pthread_mutex_unlock(&pool->mu);
    }
}

/* Fetches files with up to WORKERS threads; the first failure is the result. */
static int fetch_all(const struct hub_pull *pull, const char *const *files, size_t n,
                     struct err *e)
{
    struct pool pool = {.pull = pull, .files = files, .n = n};
    pthread_mutex_init(&pool.mu, NULL);
    pthread_t t[WORKERS];
    size_t started = 0;
    for (; started < WORKERS && started < n; started++)
        if (pthread_create(&t[started], NULL, worker, &pool) != 0)
            break;
    if (started == 0)
        worker(&pool);
    for (size_t i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    pthread_mutex_destroy(&pool.mu);
    if (!atomic_load(&pool.failed))
        return 0;
    if (e)
        *e = pool.first;
    return pool.first.kind ? pool.first.kind : ERR_INTERNAL;
}

/* The online pull: listing, selection, refs, downloads. */
static int pull_online(const struct hub_env *env, const struct hub_ref *ref,
                       const struct hub_opts *o, const char *repo_dir,
                       struct hub_progress_state *progress, const struct listing *l,
                       struct err *e)
{
    char what[480];
    snprintf(what, sizeof what, "%s@%s", ref->repo, ref->revision);
    bool *keep = calloc(l->n + 1, sizeof *keep);
    const char **files = calloc(l->n + 1, sizeof *files);
    int rc = keep && files ? select_files((const char *const *)l->names, l->n, o, what, keep, e)
                           : err_set(e, ERR_NOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; rc >= 0 && i < l->n; i++)
        if (keep[i])
            files[n++] = l->names[i];
    if (rc >= 0) {
        progress_log(progress, "%s: fetching %zu file%s of commit %.12s into %s", what, n,
                     n == 1 ? "" : "s", l->commit, repo_dir);
        progress_plan(progress, ref->repo, ref->revision, l->commit, n);
        cache_tag(env);
        rc = cache_write_ref(repo_dir, ref->revision, l->commit, e);
    }
    if (rc == 0) {
        struct hub_pull pull = {env, ref, repo_dir, l->commit, progress};
        rc = fetch_all(&pull, files, n, e);
    }
    free(keep);
    free(files);
    return rc;
}

int hub_snapshot(const struct hub_ref *ref, const struct hub_opts *o, char *dir, size_t cap,
                 struct err *e)
{
    struct hub_env env;
    char repo_dir[PATH_MAX];
    int rc = hub_env_read(&env, e);
    if (rc)
        return rc;
    if (cache_repo_dir(&env, ref->repo, repo_dir, sizeof repo_dir) != 0)
        return err_set(e, ERR_INVALID, "%s: the cache path is too long", ref->repo);
    if (env.offline) {
        if (cached_snapshot(repo_dir, ref->revision, dir, cap) == 0)
            return 0;
        return err_set(e, ERR_UNAVAILABLE,
                       "%s@%s is not in the cache (%s) and HF_HUB_OFFLINE is set: pull it "
                       "online first (inferd pull %s)",
                       ref->repo, ref->revision, env.cache, ref->repo);
    }
    struct hub_progress_state *progress = progress_new(o, env.no_bars);
    if (!progress)
        return err_set(e, ERR_NOMEM, "out of memory");
    struct listing l = {0};
    struct hub_resp r;
    rc = repo_info(&env, ref, &l, &r, e);
    if (rc == 0)
        rc = pull_online(&env, ref, o, repo_dir, progress, &l, e);
    if (rc == 0) {
        int n = snprintf(dir, cap, "%s/snapshots/%s", repo_dir, l.commit);
        if (n < 0 || (size_t)n >= cap)
            rc = err_set(e, ERR_INVALID, "%s: the snapshot's path is too long", ref->repo);
    } else if ((r.network || r.status >= 500) && l.n == 0 &&
               cached_snapshot(repo_dir, ref->revision, dir, cap) == 0) {
        progress_log(progress, "%s@%s: the Hub cannot be reached (%s); using the cached %s",
                     ref->repo, ref->revision, e ? e->msg : "", dir);
        rc = 0;
    }
    listing_free(&l);
    progress_free(progress);
    return rc;
}

int hub_resolve(const char *spec, const char *revision, const struct hub_opts *o, char *dir,
                size_t cap, struct err *e)
{
    if (!hub_is_model_id(spec)) {
        int n = snprintf(dir, cap, "%s", spec);
        return n >= 0 && (size_t)n < cap ? 0 : err_set(e, ERR_INVALID, "path too long");
    }
    struct hub_ref ref;
    int rc = hub_parse_ref(spec, revision, &ref, e);
    return rc ? rc : hub_snapshot(&ref, o, dir, cap, e);
}
