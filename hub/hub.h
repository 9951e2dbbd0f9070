/* hub: the Hugging Face Hub client and its cache (the library inferd-hub, used by cli/ and by
 * the daemon's registry; it knows nothing of the engine, the config or HTTP serving).
 *
 * It speaks huggingface_hub's protocol (file_download.py, _snapshot_download.py): the repo
 * info API (GET ENDPOINT/api/models/ORG/NAME/revision/REV: the commit "sha" and the
 * "siblings"), then per file HEAD ENDPOINT/ORG/NAME/resolve/COMMIT/FILE (X-Repo-Commit, ETag or
 * X-Linked-Etag, X-Linked-Size or Content-Length, a Location to the storage host) and a GET
 * of that location into blobs/ETAG.incomplete, resumed with Range, under a flock per blob; an
 * LFS file's sha256 (its X-Linked-Etag) is checked before the blob is renamed into place.
 *
 * The cache is huggingface_hub's, byte for byte, so that Python's transformers and inferd
 * share one download: $HF_HUB_CACHE (default $HF_HOME/hub, $HF_HOME defaulting to
 * $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface) holds models--ORG--NAME/ with
 * blobs/ETAG, snapshots/COMMIT/FILE (a relative symlink to ../../blobs/ETAG), refs/REV (the
 * commit, no newline), .locks/models--ORG--NAME/ETAG.lock and CACHEDIR.TAG. The environment:
 * HF_ENDPOINT, HF_TOKEN (else the file $HF_TOKEN_PATH or $HF_HOME/token), HF_HUB_OFFLINE=1
 * (the cache only), HF_HUB_DISABLE_PROGRESS_BARS. */
#ifndef INFERD_HUB_H
#define INFERD_HUB_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

/* How a pull shows its progress: AUTO is BARS when stderr is a terminal and
 * HF_HUB_DISABLE_PROGRESS_BARS is not set, else LINES (one line per file every few seconds,
 * through hub_opts.log). */
enum hub_progress { HUB_PROGRESS_AUTO, HUB_PROGRESS_BARS, HUB_PROGRESS_LINES, HUB_PROGRESS_NONE };

/* Which files of the repo a pull fetches. */
enum hub_files {
    HUB_FILES_SERVING,   /* config, generation config, tokenizer and sentence-transformers
                          * files, and the best weights: safetensors (sharded with its index)
                          * over pytorch_model.bin; none of them: an error */
    HUB_FILES_TOKENIZER, /* the tokenizer files only */
};

struct hub_opts {
    enum hub_files files;
    /* globs (fnmatch, as huggingface_hub's allow/ignore patterns; a trailing "/" matches
     * everything under the directory): include given, the files matching one of them
     * instead of `files`' set; exclude drops the files matching one of them. */
    const char *const *include;
    size_t n_include;
    const char *const *exclude;
    size_t n_exclude;
    enum hub_progress progress;
    /* Where the lines go (what is fetched, progress lines, falling back to the cache); NULL:
     * stderr. Called from the download threads, one line at a time. */
    void (*log)(void *arg, const char *line);
    void *log_arg;
    /* NULL, or where the pull also reports what it fetches (see hub_watch_get). */
    struct hub_watch *watch;
};

/* A model on the Hub: "ORG/NAME" (or "NAME") and its revision (branch, tag or commit). */
struct hub_ref {
    char repo[200];
    char revision[256];
};

/* Whether spec names a model on the Hub rather than a local directory: "hf://ORG/NAME[@REV]",
 * or "ORG/NAME[@REV]" (letters, digits, '.', '_', '-'; one '/') when no such path exists. */
bool hub_is_model_id(const char *spec);

/* Parses spec (as hub_is_model_id) into ref; revision (may be NULL) is used when spec names
 * none, else "main". A spec with a revision and a different `revision` is an error. */
int hub_parse_ref(const char *spec, const char *revision, struct hub_ref *ref, struct err *e);

/* Fetches what o asks of ref into the cache (nothing already there is fetched again) and
 * writes the snapshot directory (CACHE/models--ORG--NAME/snapshots/COMMIT) into dir. Offline
 * (HF_HUB_OFFLINE) or when the Hub cannot be reached, the cached snapshot of the revision.
 * Errors say what to do: ERR_UNAVAILABLE for a gated or private repo ("set HF_TOKEN"), the
 * Hub unreachable or offline without the files; ERR_NOT_FOUND for an unknown repo, revision
 * or no supported weights; ERR_IO for a full disk or a corrupt download (nothing of it is
 * left in the snapshot). */
int hub_snapshot(const struct hub_ref *ref, const struct hub_opts *o, char *dir, size_t cap,
                 struct err *e);

/* A model directory from spec: a local path is copied into dir as it is; a model id (see
 * hub_is_model_id; revision as in hub_parse_ref) is fetched by hub_snapshot. */
int hub_resolve(const char *spec, const char *revision, const struct hub_opts *o, char *dir,
                size_t cap, struct err *e);

/* ---- what a pull is fetching, for a caller that shows it elsewhere (the daemon's /info) ---- */

#define HUB_STATUS_FILES 16 /* files reported at once (more than the pull fetches at once) */

struct hub_file_status {
    char name[256];       /* the file's path in the repo */
    long long done, total; /* bytes (done counts a resumed part); total 0: unknown */
};

struct hub_status {
    char repo[200], revision[256], commit[64];
    size_t files_total; /* files the pull makes present in the snapshot */
    size_t files_done;  /* of them, those present (fetched, or found in the cache) */
    size_t n;           /* files being downloaded now, in files[] */
    struct hub_file_status files[HUB_STATUS_FILES];
};

/* A pull given one (hub_opts.watch) reports to it from its threads until it ends; any thread
 * may read it meanwhile. One pull at a time per watch. */
struct hub_watch *hub_watch_new(void);
void hub_watch_free(struct hub_watch *w);
/* Copies what the pull reporting to w is doing into *out; false when none is (not started,
 * offline, or ended). */
bool hub_watch_get(struct hub_watch *w, struct hub_status *out);

/* The cache directory the environment names (HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME, HOME). */
int hub_cache_dir(char *dir, size_t cap, struct err *e);

#endif
