/* hub_cache: the layout of huggingface_hub's cache (file_download.py): repo folders named
 * models--ORG--NAME, blobs named by their ETag, snapshot files as relative symlinks to them
 * (os.path.relpath from the link's directory), refs/REV holding the commit without a
 * newline, a lock file per blob under .locks/, and CACHEDIR.TAG at the top. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hub_impl.h"

/* _local_folder.py's CACHEDIR_TAG_CONTENT */
static const char cachedir_tag[] =
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by huggingface_hub.\n"
    "# For information about cache directory tags, see:\n"
    "#\thttps://bford.info/cachedir/\n";

bool is_commit_hash(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return false;
    return n == 40;
}

int mkdirs(const char *path, bool whole)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", path);
    if (!whole) {
        char *slash = strrchr(p, '/');
        if (!slash)
            return 0;
        *slash = 0;
    }
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    return mkdir(p, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

/* "models--ORG--NAME" */
static void folder_name(const char *repo, char *out, size_t cap)
{
    size_t o = (size_t)snprintf(out, cap, "models");
    for (const char *part = repo; *part && o + 3 < cap;) {
        const char *end = strchr(part, '/');
        size_t n = end ? (size_t)(end - part) : strlen(part);
        o += (size_t)snprintf(out + o, cap - o, "--%.*s", (int)n, part);
        part += n + (end ? 1 : 0);
    }
}

int cache_repo_dir(const struct hub_env *env, const char *repo, char *out, size_t cap)
{
    char name[300];
    folder_name(repo, name, sizeof name);
    int n = snprintf(out, cap, "%s/%s", env->cache, name);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

int cache_commit_of(const char *repo_dir, const char *revision, char *commit, size_t cap)
{
    if (is_commit_hash(revision)) {
        snprintf(commit, cap, "%s", revision);
        return 0;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/refs/%s", repo_dir, revision);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(commit, 1, cap - 1, f);
    fclose(f);
    commit[n] = 0;
    return is_commit_hash(commit) ? 0 : -1;
}

/* Writes data to path through path.PID.tmp and a rename. */
static int write_atomically(const char *path, const char *data, struct err *e)
{
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return err_set(e, ERR_IO, "%s: %s", tmp, strerror(errno));
    bool ok = fputs(data, f) >= 0;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path) != 0) {
        int err = errno;
        unlink(tmp);
        return err_set(e, ERR_IO, "%s: %s", path, strerror(err));
    }
    return 0;
}

int cache_write_ref(const char *repo_dir, const char *revision, const char *commit,
                    struct err *e)
{
    if (strcmp(revision, commit) == 0)
        return 0;
    char path[PATH_MAX], old[64];
    snprintf(path, sizeof path, "%s/refs/%s", repo_dir, revision);
    if (cache_commit_of(repo_dir, revision, old, sizeof old) == 0 && strcmp(old, commit) == 0)
        return 0; /* as huggingface_hub: a read-only cache that already knows it is fine */
    if (mkdirs(path, false) != 0)
        return err_set(e, ERR_IO, "%s: %s", path, strerror(errno));
    return write_atomically(path, commit, e);
}

void cache_tag(const struct hub_env *env)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/CACHEDIR.TAG", env->cache);
    if (access(path, F_OK) == 0 || mkdirs(env->cache, true) != 0)
        return;
    write_atomically(path, cachedir_tag, NULL); /* best effort, as huggingface_hub's */
}

int cache_link(const char *repo_dir, const char *commit, const char *file, const char *etag,
               struct err *e)
{
    char link[PATH_MAX], target[PATH_MAX], tmp[PATH_MAX + 32];
    snprintf(link, sizeof link, "%s/snapshots/%s/%s", repo_dir, commit, file);
    /* ../../blobs/ETAG from snapshots/COMMIT/, one more ../ per directory of file */
    size_t o = 0;
    for (const char *s = file; *s; s++)
        if (*s == '/')
            o += (size_t)snprintf(target + o, sizeof target - o, "../");
    snprintf(target + o, sizeof target - o, "../../blobs/%s", etag);
    if (mkdirs(link, false) != 0)
        return err_set(e, ERR_IO, "%s: %s", link, strerror(errno));
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", link, (int)getpid());
    unlink(tmp);
    if (symlink(target, tmp) != 0 || rename(tmp, link) != 0) {
        int err = errno;
        unlink(tmp);
        return err_set(e, ERR_IO, "%s: %s", link, strerror(err));
    }
    return 0;
}

int cache_lock(const struct hub_env *env, const char *repo, const char *etag, struct err *e)
{
    char name[300], path[PATH_MAX + 400];
    folder_name(repo, name, sizeof name);
    snprintf(path, sizeof path, "%s/.locks/%s/%s.lock", env->cache, name, etag);
    if (mkdirs(path, false) != 0)
        return err_set(e, ERR_IO, "%s: %s", path, strerror(errno));
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0664);
    if (fd < 0)
        return err_set(e, ERR_IO, "%s: %s", path, strerror(errno));
    while (flock(fd, LOCK_EX) != 0)
        if (errno != EINTR) {
            int err = errno;
            close(fd);
            return err_set(e, ERR_IO, "%s: %s", path, strerror(err));
        }
    return fd;
}
