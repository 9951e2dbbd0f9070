/* mock_hub: see mock_hub.h. The repos' files are read into memory when added; one mutex
 * guards the faults and counters (libmicrohttpd answers on its own threads). */
#include "mock_hub.h"

#include <check.h>
#include <dirent.h>
#include <jansson.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

#define MAX_REPOS 8
#define MAX_FILES 64

struct mock_file {
    char name[512];
    char *data;
    size_t size;
    char sha256[65], git_sha1[41];
    bool lfs, listed_only;
};

struct mock_repo {
    char id[128], token[128], commit[41];
    struct mock_file files[MAX_FILES];
    int n;
};

struct mock_hub {
    struct MHD_Daemon *d;
    char url[64];
    char storage_url[64]; /* the same server under another host name, as the Hub's storage */
    pthread_mutex_t mu;
    struct mock_repo repos[MAX_REPOS];
    int n;
    /* faults */
    char drop_file[256];
    long long drop_after;
    int fail_next;
    char corrupt_file[256];
    unsigned slow_us;
    int counts[MOCK_COUNTS];
    char last_range[64];
};

/* ---- hashes ---- */

static void hex_digest(const EVP_MD *md, const char *prefix, size_t plen, const void *data,
                       size_t n, char *out)
{
    unsigned char d[64];
    unsigned len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, md, NULL);
    EVP_DigestUpdate(ctx, prefix, plen);
    EVP_DigestUpdate(ctx, data, n);
    EVP_DigestFinal_ex(ctx, d, &len);
    EVP_MD_CTX_free(ctx);
    for (unsigned i = 0; i < len; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

/* ---- repos ---- */

static bool is_lfs(const char *name)
{
    size_t n = strlen(name);
    return (n > 12 && strcmp(name + n - 12, ".safetensors") == 0) ||
           (n > 4 && strcmp(name + n - 4, ".bin") == 0);
}

static void add_file(struct mock_repo *r, const char *path, const char *name)
{
    ck_assert_int_lt(r->n, MAX_FILES);
    struct mock_file *f = &r->files[r->n++];
    snprintf(f->name, sizeof f->name, "%s", name);
    f->data = read_file(path, &f->size);
    ck_assert_ptr_nonnull(f->data);
    char head[64];
    int hl = snprintf(head, sizeof head, "blob %zu", f->size) + 1; /* with its NUL */
    hex_digest(EVP_sha1(), head, (size_t)hl, f->data, f->size, f->git_sha1);
    hex_digest(EVP_sha256(), "", 0, f->data, f->size, f->sha256);
    f->lfs = is_lfs(name);
}

static void add_dir(struct mock_repo *r, const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "mock_hub: cannot open %s", dir);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[1024], name[512];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        snprintf(name, sizeof name, "%s%s", prefix, de->d_name);
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            char sub[600];
            snprintf(sub, sizeof sub, "%s/", name);
            add_dir(r, path, sub);
        } else {
            add_file(r, path, name);
        }
    }
    closedir(d);
}

void mock_hub_add(struct mock_hub *h, const char *id, const char *dir, const char *token)
{
    ck_assert_int_lt(h->n, MAX_REPOS);
    struct mock_repo *r = &h->repos[h->n];
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", id);
    snprintf(r->token, sizeof r->token, "%s", token ? token : "");
    hex_digest(EVP_sha1(), "", 0, id, strlen(id), r->commit);
    add_dir(r, dir, "");
    h->n++;
}

static struct mock_repo *find_repo(const struct mock_hub *h, const char *id, size_t n)
{
    for (int i = 0; i < h->n; i++)
        if (strlen(h->repos[i].id) == n && strncmp(h->repos[i].id, id, n) == 0)
            return (struct mock_repo *)&h->repos[i];
    return NULL;
}

const char *mock_hub_commit(const struct mock_hub *h, const char *id)
{
    struct mock_repo *r = find_repo(h, id, strlen(id));
    ck_assert_ptr_nonnull(r);
    return r->commit;
}

void mock_hub_add_listing(struct mock_hub *h, const char *id, const char *name)
{
    struct mock_repo *r = find_repo(h, id, strlen(id));
    ck_assert_ptr_nonnull(r);
    struct mock_file *f = &r->files[r->n++];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    f->listed_only = true;
}

/* ---- answers ---- */

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *body,
                              const char *const *headers)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    for (size_t i = 0; headers && headers[i]; i += 2)
        MHD_add_response_header(resp, headers[i], headers[i + 1]);
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result error_answer(struct MHD_Connection *c, unsigned status, const char *code,
                                    const char *msg)
{
    const char *h[] = {"X-Error-Code", code, "X-Error-Message", msg, NULL};
    char body[256];
    snprintf(body, sizeof body, "{\"error\":\"%s\"}", msg);
    return answer(c, status, body, h);
}

/* The repo a path names ("ORG/NAME/..." after a prefix), its revision checked; *rest gets
 * what follows "ORG/NAME/<sep>/REV/". sep NULL: the path is "ORG/NAME" (revision main).
 * NULL: answered (404 or 401) in *rc. */
static struct mock_repo *route_repo(struct mock_hub *h, struct MHD_Connection *c,
                                    const char *path, const char *sep, const char **rest,
                                    enum MHD_Result *rc)
{
    const char *mark = sep ? strstr(path, sep) : path + strlen(path);
    struct mock_repo *r = mark ? find_repo(h, path, (size_t)(mark - path)) : NULL;
    if (!r) {
        *rc = error_answer(c, 404, "RepoNotFound", "Repository not found");
        return NULL;
    }
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    char want[160];
    snprintf(want, sizeof want, "Bearer %s", r->token);
    if (r->token[0] && (!auth || strcmp(auth, want) != 0)) {
        *rc = error_answer(c, 401, "GatedRepo", "Access to this gated repo is restricted");
        return NULL;
    }
    if (!sep) {
        *rest = mark;
        return r;
    }
    const char *rev = mark + strlen(sep);
    size_t n = strcspn(rev, "/");
    bool ok = (n == 4 && strncmp(rev, "main", 4) == 0) ||
              (n == 40 && strncmp(rev, r->commit, 40) == 0);
    if (!ok) {
        *rc = error_answer(c, 404, "RevisionNotFound", "Revision not found");
        return NULL;
    }
    *rest = rev[n] ? rev + n + 1 : rev + n;
    return r;
}

static enum MHD_Result answer_json(struct MHD_Connection *c, json_t *j)
{
    char *body = json_dumps(j, 0);
    json_decref(j);
    const char *hdr[] = {"Content-Type", "application/json", NULL};
    enum MHD_Result rc = answer(c, 200, body, hdr);
    free(body);
    return rc;
}

/* The repo info (p: "ORG/NAME" or "ORG/NAME/revision/REV"). */
static enum MHD_Result repo_info(struct mock_hub *h, struct MHD_Connection *c, const char *p)
{
    enum MHD_Result rc;
    const char *rest;
    struct mock_repo *r =
        route_repo(h, c, p, strstr(p, "/revision/") ? "/revision/" : NULL, &rest, &rc);
    if (!r)
        return rc;
    json_t *sib = json_array();
    for (int i = 0; i < r->n; i++)
        json_array_append_new(sib, json_pack("{s:s}", "rfilename", r->files[i].name));
    return answer_json(c, json_pack("{s:s, s:s, s:s, s:o}", "id", r->id, "modelId", r->id,
                                    "sha", r->commit, "siblings", sib));
}

/* The whole tree (p: "ORG/NAME/tree/REV", as ?recursive=true asks): its files with their git
 * blob sha1, size and LFS pointer, one page. */
static enum MHD_Result repo_tree(struct mock_hub *h, struct MHD_Connection *c, const char *p)
{
    enum MHD_Result rc;
    const char *rest;
    struct mock_repo *r = route_repo(h, c, p, "/tree/", &rest, &rc);
    if (!r)
        return rc;
    json_t *tree = json_array();
    for (int i = 0; i < r->n; i++) {
        const struct mock_file *f = &r->files[i];
        if (f->listed_only)
            continue;
        json_t *e = json_pack("{s:s, s:s, s:I, s:s}", "type", "file", "oid", f->git_sha1, "size",
                              (json_int_t)f->size, "path", f->name);
        if (f->lfs)
            json_object_set_new(e, "lfs", json_pack("{s:s, s:I, s:i}", "oid", f->sha256, "size",
                                                    (json_int_t)f->size, "pointerSize", 134));
        json_array_append_new(tree, e);
    }
    return answer_json(c, tree);
}

static const struct mock_file *find_file(const struct mock_repo *r, const char *name)
{
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->files[i].name, name) == 0 && !r->files[i].listed_only)
            return &r->files[i];
    return NULL;
}

static enum MHD_Result resolve(struct mock_hub *h, struct MHD_Connection *c, const char *p)
{
    enum MHD_Result rc;
    const char *name;
    struct mock_repo *r = route_repo(h, c, p, "/resolve/", &name, &rc);
    if (!r)
        return rc;
    const struct mock_file *f = find_file(r, name);
    if (!f)
        return error_answer(c, 404, "EntryNotFound", "Entry not found");
    char etag[64], size[32], location[400], lfs_etag[80];
    snprintf(etag, sizeof etag, "\"%s\"", f->git_sha1);
    if (!f->lfs) {
        const char *hdr[] = {"X-Repo-Commit", r->commit, "ETag", etag, NULL};
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(f->size, f->data, MHD_RESPMEM_PERSISTENT);
        for (size_t i = 0; hdr[i]; i += 2)
            MHD_add_response_header(resp, hdr[i], hdr[i + 1]);
        rc = MHD_queue_response(c, 200, resp);
        MHD_destroy_response(resp);
        return rc;
    }
    snprintf(size, sizeof size, "%zu", f->size);
    snprintf(lfs_etag, sizeof lfs_etag, "\"%s\"", f->sha256);
    snprintf(location, sizeof location, "%s/storage/%s?repo=%s", h->storage_url, f->sha256,
             r->id);
    const char *hdr[] = {"X-Repo-Commit", r->commit,  "ETag",     etag,     "X-Linked-Etag",
                         lfs_etag,        "X-Linked-Size", size, "Location", location, NULL};
    return answer(c, 302, "", hdr);
}

/* ---- storage: a callback response, so that it can drop or corrupt ---- */

struct stream {
    const struct mock_file *f;
    size_t start;
    long long drop_after; /* -1: none */
    bool corrupt;
    unsigned slow_us;
};

static ssize_t read_stream(void *arg, uint64_t pos, char *buf, size_t max)
{
    struct stream *s = arg;
    if (s->drop_after >= 0 && (long long)pos >= s->drop_after)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t at = s->start + (size_t)pos;
    if (at >= s->f->size)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = s->f->size - at < max ? s->f->size - at : max;
    if (s->slow_us) {
        usleep(s->slow_us);
        n = n < 4096 ? n : 4096;
    }
    if (s->drop_after >= 0 && (long long)(pos + n) > s->drop_after)
        n = (size_t)(s->drop_after - (long long)pos);
    memcpy(buf, s->f->data + at, n);
    if (s->corrupt && at <= s->f->size / 2 && s->f->size / 2 < at + n)
        buf[s->f->size / 2 - at] ^= 0x5a;
    return (ssize_t)n;
}

static const struct mock_file *file_by_sha(const struct mock_hub *h, const char *sha)
{
    for (int i = 0; i < h->n; i++)
        for (int k = 0; k < h->repos[i].n; k++)
            if (strncmp(h->repos[i].files[k].sha256, sha, 64) == 0)
                return &h->repos[i].files[k];
    return NULL;
}

static enum MHD_Result storage(struct mock_hub *h, struct MHD_Connection *c, const char *sha)
{
    const struct mock_file *f = file_by_sha(h, sha);
    if (!f)
        return error_answer(c, 404, "EntryNotFound", "No such object");
    const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
    struct stream *s = calloc(1, sizeof *s);
    s->f = f;
    s->drop_after = -1;
    pthread_mutex_lock(&h->mu);
    snprintf(h->last_range, sizeof h->last_range, "%s", range ? range : "");
    h->counts[MOCK_RANGE] += range != NULL;
    if (strcmp(h->drop_file, f->name) == 0) {
        s->drop_after = h->drop_after;
        h->drop_file[0] = 0;
    }
    s->corrupt = strcmp(h->corrupt_file, f->name) == 0;
    s->slow_us = h->slow_us;
    pthread_mutex_unlock(&h->mu);
    unsigned status = 200;
    char cr[96];
    if (range && strncmp(range, "bytes=", 6) == 0) {
        s->start = (size_t)atoll(range + 6);
        if (s->start > f->size)
            s->start = f->size;
        status = 206;
        snprintf(cr, sizeof cr, "bytes %zu-%zu/%zu", s->start, f->size - 1, f->size);
    }
    struct MHD_Response *resp =
        MHD_create_response_from_callback(f->size - s->start, 64 * 1024, read_stream, s, free);
    if (status == 206)
        MHD_add_response_header(resp, "Content-Range", cr);
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* ---- routing ---- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    (void)version, (void)upload, (void)upload_size;
    struct mock_hub *h = cls;
    if (!*state) { /* the first call: headers only */
        *state = h;
        return MHD_YES;
    }
    pthread_mutex_lock(&h->mu);
    bool fail = h->fail_next > 0;
    h->fail_next -= fail;
    pthread_mutex_unlock(&h->mu);
    if (fail)
        return error_answer(c, 500, "Internal", "Injected failure");
    bool get = strcmp(method, "GET") == 0, head = strcmp(method, "HEAD") == 0;
    static const char api[] = "/api/models/", store[] = "/storage/";
    enum mock_count what = MOCK_COUNTS;
    if (get && strncmp(url, api, strlen(api)) == 0)
        what = MOCK_INFO;
    else if (get && strncmp(url, store, strlen(store)) == 0)
        what = MOCK_STORAGE;
    else if ((get || head) && strstr(url, "/resolve/"))
        what = MOCK_RESOLVE;
    if (what == MOCK_COUNTS)
        return error_answer(c, 404, "NotFound", "No such route");
    pthread_mutex_lock(&h->mu);
    h->counts[what]++;
    pthread_mutex_unlock(&h->mu);
    if (what == MOCK_INFO && strstr(url, "/tree/"))
        return repo_tree(h, c, url + strlen(api));
    if (what == MOCK_INFO)
        return repo_info(h, c, url + strlen(api));
    if (what == MOCK_STORAGE)
        return storage(h, c, url + strlen(store));
    return resolve(h, c, url + 1);
}

struct mock_hub *mock_hub_start(void)
{
    struct mock_hub *h = calloc(1, sizeof *h);
    ck_assert_ptr_nonnull(h);
    pthread_mutex_init(&h->mu, NULL);
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                            NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, &addr,
                            MHD_OPTION_END);
    ck_assert_msg(h->d != NULL, "mock_hub: cannot start");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(h->url, sizeof h->url, "http://127.0.0.1:%u", (unsigned)info->port);
    snprintf(h->storage_url, sizeof h->storage_url, "http://localhost:%u", (unsigned)info->port);
    return h;
}

void mock_hub_stop(struct mock_hub *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    for (int i = 0; i < h->n; i++)
        for (int k = 0; k < h->repos[i].n; k++)
            free(h->repos[i].files[k].data);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

const char *mock_hub_url(const struct mock_hub *h)
{
    return h->url;
}

void mock_hub_drop_once(struct mock_hub *h, const char *file, long long after)
{
    pthread_mutex_lock(&h->mu);
    snprintf(h->drop_file, sizeof h->drop_file, "%s", file);
    h->drop_after = after;
    pthread_mutex_unlock(&h->mu);
}

void mock_hub_fail_next(struct mock_hub *h, int n)
{
    pthread_mutex_lock(&h->mu);
    h->fail_next = n;
    pthread_mutex_unlock(&h->mu);
}

void mock_hub_corrupt(struct mock_hub *h, const char *file)
{
    pthread_mutex_lock(&h->mu);
    snprintf(h->corrupt_file, sizeof h->corrupt_file, "%s", file);
    pthread_mutex_unlock(&h->mu);
}

void mock_hub_slow(struct mock_hub *h, unsigned us)
{
    pthread_mutex_lock(&h->mu);
    h->slow_us = us;
    pthread_mutex_unlock(&h->mu);
}

int mock_hub_count(const struct mock_hub *h, enum mock_count what)
{
    pthread_mutex_lock((pthread_mutex_t *)&h->mu);
    int n = h->counts[what];
    pthread_mutex_unlock((pthread_mutex_t *)&h->mu);
    return n;
}

const char *mock_hub_last_range(const struct mock_hub *h)
{
    static char out[64];
    pthread_mutex_lock((pthread_mutex_t *)&h->mu);
    snprintf(out, sizeof out, "%s", h->last_range);
    pthread_mutex_unlock((pthread_mutex_t *)&h->mu);
    return out;
}
