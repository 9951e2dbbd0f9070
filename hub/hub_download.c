/* hub_download: one file of a snapshot into the cache, as file_download.py's
 * _hf_hub_download_to_cache_dir: a present link is the end; else the file's metadata (HEAD of
 * resolve/COMMIT/FILE: ETag, size, where to GET it), then under the blob's lock the blob
 * itself: blobs/ETAG.incomplete resumed with Range across retries and across processes, its
 * size checked, an LFS file's sha256 (the ETag of LFS files is the sha256 of their content)
 * checked, and only then renamed to blobs/ETAG and linked from the snapshot. A full disk, a
 * corrupt or short download leave nothing in the snapshot. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "hub_impl.h"

#define TRIES 5 /* GETs of one blob before giving up (each resumes the last) */

/* Whether an ETag is a sha256 (64 hex digits): an LFS file, whose content it hashes. */
static bool is_sha256(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return false;
    return n == 64;
}

/* The sha256 of the file at path, as 64 lowercase hex digits. */
static int sha256_file(const char *path, char hex[65], struct err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(e, ERR_IO, "%s: %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    static __thread unsigned char buf[1 << 16];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        EVP_DigestUpdate(ctx, buf, (size_t)n);
    int err = n < 0 ? errno : 0;
    close(fd);
    unsigned char md[32];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    if (err)
        return err_set(e, ERR_IO, "%s: %s", path, strerror(err));
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* The file's metadata: its ETag, size and the URL its bytes come from. */
static int file_meta(const struct hub_pull *p, const char *file, struct hub_resp *r,
                     struct err *e)
{
    char path[2048], url[3000], what[600];
    if (url_escape(file, true, path, sizeof path) != 0)
        return err_set(e, ERR_INVALID, "%s: the file name is too long", file);
    snprintf(url, sizeof url, "%s/%s/resolve/%s/%s", p->env->endpoint, p->ref->repo, p->commit,
             path);
    snprintf(what, sizeof what, "%s@%s: %s", p->ref->repo, p->ref->revision, file);
    int rc = http_head(p->env, url, r, e);
    if (rc)
        return rc == ERR_UNAVAILABLE && !r->network ? http_error(r, what, e) : rc;
    if (!r->etag[0] || !safe_repo_path(r->etag) || strchr(r->etag, '/'))
        return err_set(e, ERR_FORMAT, "%s: the Hub gave no usable ETag", what);
    if (r->size < 0)
        return err_set(e, ERR_FORMAT, "%s: the Hub gave no size", what);
    return 0;
}

/* Whether the disk holding dir has room for `need` more bytes (ERR_IO when not). */
static int check_space(const char *dir, long long need, const char *file, struct err *e)
{
    struct statvfs st;
    if (need <= 0 || statvfs(dir, &st) != 0)
        return 0;
    long long free_bytes = (long long)st.f_bavail * (long long)st.f_frsize;
    if (free_bytes >= need)
        return 0;
    return err_set(e, ERR_IO, "%s: disk full: %lld bytes needed, %lld free in %s", file, need,
                   free_bytes, dir);
}

struct counter {
    struct hub_progress_state *progress;
    int slot;
};

static void count_bytes(void *arg, long long n)
{
    struct counter *c = arg;
    progress_add(c->progress, c->slot, n);
}

/* GETs the rest of the blob into inc (its current size is what we have), with retries. */
static int fetch_blob(const struct hub_pull *p, const char *file, const struct hub_resp *meta,
                      const char *inc, bool *discard, struct err *e)
{
    int fd = open(inc, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return err_set(e, ERR_IO, "%s: %s", inc, strerror(errno));
    struct stat st;
    long long have = fstat(fd, &st) == 0 ? st.st_size : 0;
    if (have > meta->size) { /* not this blob's beginning */
        have = 0;
        if (ftruncate(fd, 0) != 0) {
            close(fd);
            return err_set(e, ERR_IO, "%s: %s", inc, strerror(errno));
        }
    }
    if (have)
        progress_log(p->progress, "%s: resuming %s at byte %lld", p->ref->repo, file, have);
    struct counter c = {p->progress, progress_start(p->progress, file, meta->size, have)};
    int rc = check_space(p->repo_dir, meta->size - have, file, e);
    for (int attempt = 1; rc == 0 && have < meta->size; attempt++) {
        struct hub_resp r;
        int sys_errno = 0;
        rc = http_get_file(p->env, meta->location, fd, have, count_bytes, &c, &have, &sys_errno,
                           &r, e);
        if (rc == ERR_IO && (sys_errno == ENOSPC || sys_errno == EDQUOT))
            rc = err_set(e, ERR_IO, "%s: disk full while writing %s (%s); nothing was placed",
                         file, inc, strerror(sys_errno));
        else if (rc == ERR_IO)
            rc = err_set(e, ERR_IO, "%s: cannot write %s: %s; nothing was placed", file, inc,
                         strerror(sys_errno));
        *discard = rc == ERR_IO;
        bool again = (rc == 0 && have < meta->size) || (rc && rc != ERR_IO && http_retryable(&r));
        if (!again || attempt == TRIES)
            break;
        progress_log(p->progress, "%s: %s interrupted at byte %lld (%s); retrying", p->ref->repo,
                     file, have, rc ? e->msg : "connection closed");
        rc = 0;
        http_backoff(attempt);
    }
    progress_end(p->progress, c.slot);
    if (close(fd) != 0 && rc == 0)
        rc = err_set(e, ERR_IO, "%s: %s", inc, strerror(errno));
    *discard |= rc == 0 && have != meta->size;
    if (rc == 0 && have != meta->size)
        rc = err_set(e, ERR_IO, "%s: %lld bytes received, the Hub said %lld", file, have,
                     meta->size);
    return rc;
}

/* Checks a complete inc against the ETag when it is a sha256. */
static int verify_blob(const char *inc, const char *etag, const char *file, struct err *e)
{
    if (!is_sha256(etag))
        return 0;
    char got[65];
    int rc = sha256_file(inc, got, e);
    if (rc)
        return rc;
    if (strcmp(got, etag) != 0)
        return err_set(e, ERR_IO,
                       "%s: corrupt download: sha256 %.12s... where the Hub said %.12s...; "
                       "refused (nothing was placed in the cache)",
                       file, got, etag);
    return 0;
}

/* Downloads the blob when it is not there yet, under its lock. */
static int ensure_blob(const struct hub_pull *p, const char *file, const struct hub_resp *meta,
                       struct err *e)
{
    char blob[PATH_MAX], inc[PATH_MAX + 16];
    snprintf(blob, sizeof blob, "%s/blobs/%s", p->repo_dir, meta->etag);
    snprintf(inc, sizeof inc, "%s.incomplete", blob);
    if (mkdirs(blob, false) != 0)
        return err_set(e, ERR_IO, "%s: %s", blob, strerror(errno));
    int lock = cache_lock(p->env, p->ref->repo, meta->etag, e);
    if (lock < 0)
        return lock;
    int rc = 0;
    bool discard = false; /* a corrupt or unfinishable part goes; a dropped one stays */
    if (access(blob, F_OK) != 0) {
        rc = fetch_blob(p, file, meta, inc, &discard, e);
        if (rc == 0 && (rc = verify_blob(inc, meta->etag, file, e)) != 0)
            discard = true;
        mode_t mask = umask(0);
        umask(mask);
        if (rc == 0 && (chmod(inc, 0666 & ~mask) != 0 || rename(inc, blob) != 0))
            rc = err_set(e, ERR_IO, "%s: %s", blob, strerror(errno));
        if (rc && discard)
            unlink(inc);
    }
    close(lock);
    return rc;
}

int download_file(const struct hub_pull *p, const char *file, struct err *e)
{
    char link[PATH_MAX];
    snprintf(link, sizeof link, "%s/snapshots/%s/%s", p->repo_dir, p->commit, file);
    if (access(link, F_OK) == 0)
        return 0;
    struct hub_resp meta;
    int rc = file_meta(p, file, &meta, e);
    if (rc == 0 && meta.commit[0] && strcmp(meta.commit, p->commit) != 0)
        rc = err_set(e, ERR_FORMAT, "%s: the Hub served commit %.40s for commit %s", file,
                     meta.commit, p->commit);
    if (rc == 0)
        rc = ensure_blob(p, file, &meta, e);
    if (rc == 0)
        rc = cache_link(p->repo_dir, p->commit, file, meta.etag, e);
    return rc;
}
