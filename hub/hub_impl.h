/* hub_impl: what the files of hub/ share (private to the library): the environment
 * (hub_env.c), the HTTP requests (hub_http.c), the cache layout (hub_cache.c), the file
 * selection (hub_files.c), one file's download (hub_download.c) and the progress display
 * (hub_progress.c). */
#ifndef INFERD_HUB_IMPL_H
#define INFERD_HUB_IMPL_H

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>

#include "hub.h"

/* ---- hub_env.c: the environment, read once per pull ---- */

struct hub_env {
    char endpoint[512]; /* HF_ENDPOINT without a trailing '/', or https://huggingface.co */
    char cache[PATH_MAX];
    char token[512]; /* "" when none */
    bool offline;    /* HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is 1, ON, YES or TRUE */
    bool no_bars;    /* HF_HUB_DISABLE_PROGRESS_BARS is true */
};

int hub_env_read(struct hub_env *env, struct err *e);
/* Whether a variable's value is huggingface_hub's "true" (1, ON, YES, TRUE, any case). */
bool hub_env_true(const char *name);

/* ---- hub_progress.c: bars on a terminal, or lines every few seconds ---- */

struct hub_progress_state;
struct hub_progress_state *progress_new(const struct hub_opts *o, bool no_bars);
void progress_free(struct hub_progress_state *p);
/* A file starts (total 0: unknown) after `have` bytes already there; returns its slot. */
int progress_start(struct hub_progress_state *p, const char *name, long long total,
                   long long have);
void progress_add(struct hub_progress_state *p, int slot, long long bytes);
void progress_end(struct hub_progress_state *p, int slot);
/* The pull's plan, for hub_opts.watch: n files of repo@revision (its commit). */
void progress_plan(struct hub_progress_state *p, const char *repo, const char *revision,
                   const char *commit, size_t n);
/* One more file of the plan is present in the snapshot. */
void progress_file_done(struct hub_progress_state *p);
/* One line through hub_opts.log (or stderr), under the display's lock. */
void progress_log(struct hub_progress_state *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- hub_http.c: libcurl requests, retried on 5xx, 408, 429 and network errors ---- */

struct hub_resp {
    long status;
    char commit[64];        /* X-Repo-Commit */
    char etag[160];         /* X-Linked-Etag, else ETag, normalized (no W/, no quotes) */
    long long size;         /* X-Linked-Size, else Content-Length (not of a redirect); -1 */
    bool size_linked;       /* size is X-Linked-Size */
    char location[2048];    /* Location */
    char error_code[64];    /* X-Error-Code */
    char error_message[160]; /* X-Error-Message */
    bool network;           /* failed without an HTTP answer (connection, timeout) */
};

/* GET url (with the token): the body as a NUL-terminated malloc'ed string in *body. */
int http_get_text(const struct hub_env *env, const char *url, char **body, struct hub_resp *r,
                  struct err *e);
/* HEAD url following relative redirects only (as huggingface_hub's metadata call). */
int http_head(const struct hub_env *env, const char *url, struct hub_resp *r, struct err *e);
/* GET url (redirects followed) appended to fd from offset `have` (Range: bytes=have-); a 200
 * to a Range truncates fd first. Calls on_bytes(arg, n) per chunk written; *written gets the
 * file's new size. A full disk is ERR_IO with errno ENOSPC in *sys_errno. */
int http_get_file(const struct hub_env *env, const char *url, int fd, long long have,
                  void (*on_bytes)(void *arg, long long n), void *arg, long long *written,
                  int *sys_errno, struct hub_resp *r, struct err *e);
/* The message of a failed answer for what (a repo, a file): what the user can do. */
int http_error(const struct hub_resp *r, const char *what, struct err *e);
/* Whether a failure is worth another try (5xx, 408, 429, network) and the wait before try
 * number `attempt` (1, 2, ...). */
bool http_retryable(const struct hub_resp *r);
void http_backoff(int attempt);
/* Percent-encodes s into out keeping '/' when keep_slash (a file path), else everything but
 * unreserved characters (a revision such as refs/pr/1). */
int url_escape(const char *s, bool keep_slash, char *out, size_t cap);

/* ---- hub_cache.c: the layout of huggingface_hub's cache ---- */

/* CACHE/models--ORG--NAME */
int cache_repo_dir(const struct hub_env *env, const char *repo, char *out, size_t cap);
/* The commit a revision stands for: itself when it is a 40-hex commit, else refs/REV's
 * content; -1 when unknown. */
int cache_commit_of(const char *repo_dir, const char *revision, char *commit, size_t cap);
/* Writes refs/REV = commit (atomically; nothing when revision is the commit). */
int cache_write_ref(const char *repo_dir, const char *revision, const char *commit,
                    struct err *e);
/* Creates CACHE/CACHEDIR.TAG when missing (as huggingface_hub's). */
void cache_tag(const struct hub_env *env);
/* mkdir -p of path's directory part (or of path itself when whole). */
int mkdirs(const char *path, bool whole);
/* Points snapshots/COMMIT/FILE at blobs/ETAG with a relative symlink made under a
 * temporary name and renamed into place. */
int cache_link(const char *repo_dir, const char *commit, const char *file, const char *etag,
               struct err *e);
/* Opens and flocks CACHE/.locks/models--ORG--NAME/ETAG.lock; returns the fd (close unlocks). */
int cache_lock(const struct hub_env *env, const char *repo, const char *etag, struct err *e);
bool is_commit_hash(const char *s);

/* ---- hub_files.c: what a pull fetches ---- */

/* Whether a name from a listing is a safe relative path (no '..', no absolute path, no empty
 * or '.' component, no backslash). */
bool safe_repo_path(const char *name);
/* Picks from names (n of them) what o asks for: into keep[i]. Returns how many, or an error
 * (ERR_NOT_FOUND: no supported weights in what). */
int select_files(const char *const *names, size_t n, const struct hub_opts *o, const char *what,
                 bool *keep, struct err *e);

/* ---- hub_download.c: one file into the cache ---- */

struct hub_pull {
    const struct hub_env *env;
    const struct hub_ref *ref;
    const char *repo_dir;
    const char *commit;
    struct hub_progress_state *progress;
};

/* Makes snapshots/COMMIT/FILE present: nothing when it is; else its metadata, then its blob
 * (downloaded, resumed, checked) under the blob's lock, then the link. */
int download_file(const struct hub_pull *p, const char *file, struct err *e);

#endif
