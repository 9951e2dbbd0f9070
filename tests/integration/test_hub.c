/* test_hub: the Hub client (hub/) against the mock Hub (support/mock_hub.h) serving the
 * fixture models: model ids; a pull's cache laid out exactly as huggingface_hub's (refs,
 * relative symlinks to blobs named by ETag, CACHEDIR.TAG, locks, nothing else fetched), the
 * second pull fetching nothing; resuming after a dropped connection and from a previous
 * process's .incomplete; a corrupt file refused and not placed; two processes pulling at once
 * (the blob fetched once); retries on 500s; the progress bars; the watch (what /info shows); a
 * gated repo with and without HF_TOKEN (or HF_HOME/token); unknown repos and revisions; a
 * listing with '..' refused; a failed write leaving nothing behind; offline from the cache and
 * offline without it; `inferd pull`; the daemon serving `--model ORG/NAME` (/ready 503, /info
 * and the log saying what is fetched, each file's bytes, while it is fetched) and a config's
 * hf:// model id fetched in the background; the config keeping model ids (and their revision)
 * as written. The real huggingface_hub against the same mock: test_hub_client.c. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "hub.h"
#include "hub_impl.h"
#include "integration/serve_support.h"
#include "suites.h"
#include "support/mock_hub.h"
#include "support/support.h"

#define TOKEN "hf_secret_token_1234"

static char cache[620], home[600];

/* A mock with org/bert-embed, org/bert-seqcls and the gated org/gated; the environment
 * pointing the client at it with a fresh cache. */
static struct mock_hub *hub_env(void)
{
    struct mock_hub *h = mock_hub_start();
    mock_hub_add(h, "org/bert-embed", fixture_model("bert-embed"), NULL);
    mock_hub_add(h, "org/bert-seqcls", fixture_model("bert-seqcls"), NULL);
    mock_hub_add(h, "org/gated", fixture_model("bert-seqcls"), TOKEN);
    snprintf(home, sizeof home, "%s", temp_dir());
    snprintf(cache, sizeof cache, "%s/hub", home);
    setenv("HF_ENDPOINT", mock_hub_url(h), 1);
    setenv("HF_HOME", home, 1);
    setenv("HF_HUB_CACHE", cache, 1);
    unsetenv("HF_TOKEN");
    unsetenv("HF_TOKEN_PATH");
    unsetenv("HF_HUB_OFFLINE");
    unsetenv("TRANSFORMERS_OFFLINE");
    return h;
}

static int pull(const char *spec, char *dir, struct err *e)
{
    struct hub_ref ref;
    struct hub_opts o = {.progress = HUB_PROGRESS_NONE};
    int rc = hub_parse_ref(spec, NULL, &ref, e);
    return rc ? rc : hub_snapshot(&ref, &o, dir, 4096, e);
}

static bool exists(const char *fmt, const char *a, const char *b)
{
    char path[8500];
    struct stat st;
    snprintf(path, sizeof path, fmt, a, b);
    return lstat(path, &st) == 0;
}

/* Whether two files have the same bytes. */
static bool same_bytes(const char *x, const char *y)
{
    size_t nx, ny;
    char *a = read_file(x, &nx), *b = read_file(y, &ny);
    bool same = a && b && nx == ny && memcmp(a, b, nx) == 0;
    free(a);
    free(b);
    return same;
}

START_TEST(model_ids)
{
    struct hub_ref r;
    struct err e = {0};
    ck_assert(hub_is_model_id("hf://org/name"));
    ck_assert(hub_is_model_id("org/no-such-dir@v1"));
    ck_assert(!hub_is_model_id("/abs/path"));
    ck_assert(!hub_is_model_id("a/b/c"));
    ck_assert(!hub_is_model_id(fixture_model("bert-embed")));
    ck_assert_int_eq(hub_parse_ref("hf://org/name@v1.0", NULL, &r, &e), 0);
    ck_assert_str_eq(r.repo, "org/name");
    ck_assert_str_eq(r.revision, "v1.0");
    ck_assert_int_eq(hub_parse_ref("org/name", "refs/pr/1", &r, &e), 0);
    ck_assert_str_eq(r.revision, "refs/pr/1");
    ck_assert_int_eq(hub_parse_ref("org/name", NULL, &r, &e), 0);
    ck_assert_str_eq(r.revision, "main");
    ck_assert_int_ne(hub_parse_ref("org/na..me", NULL, &r, &e), 0);
    ck_assert_int_ne(hub_parse_ref("org/name@v1", "v2", &r, &e), 0);
    ck_assert_int_ne(hub_parse_ref("org/name@../x", NULL, &r, &e), 0);
}
END_TEST

/* models[].path keeps a model id as written (joined paths otherwise); revision: is read. */
START_TEST(config_model_ids)
{
    static const char yaml[] =
        "models:\n"
        "  - {name: a, path: hf://org/name@v1, task: fill-mask}\n"
        "  - {name: b, path: org/name, revision: refs/pr/1, task: fill-mask}\n"
        "  - {name: c, path: rel/dir/x, task: fill-mask}\n"
        "  - {name: d, path: ./org/name, task: fill-mask}\n";
    struct config c;
    struct err e = {0};
    ck_assert_msg(config_parse(yaml, strlen(yaml), "t.yaml", "/nonexistent", NULL, &c, &e) == 0,
                  "%s", e.msg);
    ck_assert_str_eq(c.models[0].path, "hf://org/name@v1");
    ck_assert_str_eq(c.models[0].model_id, "hf://org/name@v1");
    ck_assert_ptr_null(c.models[0].revision);
    ck_assert_str_eq(c.models[1].path, "/nonexistent/org/name");
    ck_assert_str_eq(c.models[1].model_id, "org/name");
    ck_assert_str_eq(c.models[1].revision, "refs/pr/1");
    ck_assert_str_eq(c.models[2].path, "/nonexistent/rel/dir/x");
    ck_assert_ptr_null(c.models[2].model_id);
    ck_assert_str_eq(c.models[3].path, "/nonexistent/./org/name");
    ck_assert_ptr_null(c.models[3].model_id);
    config_free(&c);
    /* a directory that exists is a directory */
    char dir_yaml[600];
    snprintf(dir_yaml, sizeof dir_yaml, "models:\n  - {name: a, path: %s, task: fill-mask}\n",
             fixture_model("bert-mlm"));
    ck_assert_int_eq(config_parse(dir_yaml, strlen(dir_yaml), "t.yaml", NULL, NULL, &c, &e), 0);
    ck_assert_ptr_null(c.models[0].model_id);
    config_free(&c);
    /* serve --model ORG/NAME@REV is named NAME */
    ck_assert_int_eq(config_single("hf://org/bert@v2", "fill-mask", NULL, NULL, &c, &e), 0);
    ck_assert_str_eq(c.models[0].name, "bert");
    ck_assert_str_eq(c.models[0].model_id, "hf://org/bert@v2");
    config_free(&c);
    ck_assert_int_eq(config_single("org/bert", "fill-mask", NULL, NULL, &c, &e), 0);
    ck_assert_str_eq(c.models[0].model_id, "org/bert");
    config_free(&c);
}
END_TEST

/* The cache, file by file, as huggingface_hub lays it out. */
START_TEST(pull_layout)
{
    struct mock_hub *h = hub_env();
    char dir[4096], repo[700], path[4200], target[256];
    struct err e = {0};
    ck_assert_msg(pull("org/bert-embed", dir, &e) == 0, "%s", e.msg);
    const char *commit = mock_hub_commit(h, "org/bert-embed");
    snprintf(repo, sizeof repo, "%s/models--org--bert-embed", cache);
    snprintf(path, sizeof path, "%s/snapshots/%s", repo, commit);
    ck_assert_str_eq(dir, path);
    /* refs/main holds the commit, without a newline */
    snprintf(path, sizeof path, "%s/refs/main", repo);
    size_t n;
    char *ref = read_file(path, &n);
    ck_assert_ptr_nonnull(ref);
    ck_assert_str_eq(ref, commit);
    free(ref);
    ck_assert(exists("%s/%s", cache, "CACHEDIR.TAG"));
    ck_assert(exists("%s/.locks/%s", cache, "models--org--bert-embed"));
    /* the serving files, each a relative link to its blob with the same bytes */
    static const char *const want[] = {"config.json", "tokenizer.json", "tokenizer_config.json",
                                       "modules.json", "sentence_bert_config.json",
                                       "config_sentence_transformers.json",
                                       "1_Pooling/config.json", "2_Normalize/config.json",
                                       "model.safetensors"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, want[i]);
        ssize_t len = readlink(path, target, sizeof target - 1);
        ck_assert_msg(len > 0, "%s is not a symlink", want[i]);
        target[len] = 0;
        const char *up = strchr(want[i], '/') ? "../../../blobs/" : "../../blobs/";
        ck_assert_msg(strncmp(target, up, strlen(up)) == 0, "%s -> %s", want[i], target);
        size_t etag_len = strlen(target + strlen(up));
        ck_assert_uint_eq(etag_len, strcmp(want[i], "model.safetensors") == 0 ? 64 : 40);
        char src[1024];
        snprintf(src, sizeof src, "%s/%s", fixture_model("bert-embed"), want[i]);
        ck_assert_msg(same_bytes(path, src), "%s differs", want[i]);
    }
    /* what serving does not read is not fetched; nothing is left incomplete */
    ck_assert(!exists("%s/%s", dir, "README.md"));
    ck_assert(!exists("%s/%s", dir, "refs-dev.json"));
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "ls '%s/blobs' | grep -c incomplete > /dev/null", repo);
    ck_assert_int_ne(system(cmd), 0);
    /* again: the snapshot is complete, only the repo info is asked for */
    int resolves = mock_hub_count(h, MOCK_RESOLVE), stores = mock_hub_count(h, MOCK_STORAGE);
    ck_assert_int_eq(pull("org/bert-embed", dir, &e), 0);
    ck_assert_int_eq(mock_hub_count(h, MOCK_RESOLVE), resolves);
    ck_assert_int_eq(mock_hub_count(h, MOCK_STORAGE), stores);
    ck_assert_int_eq(mock_hub_count(h, MOCK_INFO), 2);
    /* by commit, the same snapshot */
    char spec[200];
    snprintf(spec, sizeof spec, "org/bert-embed@%s", commit);
    char dir2[4096];
    ck_assert_int_eq(pull(spec, dir2, &e), 0);
    ck_assert_str_eq(dir, dir2);
    mock_hub_stop(h);
}
END_TEST

/* The LFS blob's path and a file of the fixture. */
static void blob_path(struct mock_hub *h, const char *model, char *out, size_t cap)
{
    (void)h;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "sha256sum '%s/model.safetensors'", fixture_model(model));
    FILE *p = popen(cmd, "r");
    char sha[65] = "";
    ck_assert(fscanf(p, "%64s", sha) == 1);
    pclose(p);
    snprintf(out, cap, "%s/models--org--%s/blobs/%s", cache, model, sha);
}

START_TEST(resume_dropped)
{
    struct mock_hub *h = hub_env();
    char dir[4096], blob[1024], path[4200];
    struct err e = {0};
    mock_hub_drop_once(h, "model.safetensors", 4000);
    ck_assert_msg(pull("org/bert-seqcls", dir, &e) == 0, "%s", e.msg);
    ck_assert_str_eq(mock_hub_last_range(h), "bytes=4000-");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    char src[1024];
    snprintf(src, sizeof src, "%s/model.safetensors", fixture_model("bert-seqcls"));
    ck_assert(same_bytes(path, src));
    /* a previous process's part: the next pull asks for the rest only */
    blob_path(h, "bert-seqcls", blob, sizeof blob);
    char inc[1100], cmd[8000];
    snprintf(inc, sizeof inc, "%s.incomplete", blob);
    snprintf(cmd, sizeof cmd, "head -c 1234 '%s' > '%s' && rm '%s' '%s'", blob, inc, blob, path);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_msg(pull("org/bert-seqcls", dir, &e) == 0, "%s", e.msg);
    ck_assert_str_eq(mock_hub_last_range(h), "bytes=1234-");
    ck_assert(same_bytes(path, src));
    ck_assert_int_ne(access(inc, F_OK), 0);
    mock_hub_stop(h);
}
END_TEST

START_TEST(corrupt_refused)
{
    struct mock_hub *h = hub_env();
    char dir[4096], blob[1024];
    struct err e = {0};
    mock_hub_corrupt(h, "model.safetensors");
    ck_assert_int_eq(pull("org/bert-seqcls", dir, &e), ERR_IO);
    ck_assert_msg(strstr(e.msg, "sha256") && strstr(e.msg, "model.safetensors"), "%s", e.msg);
    blob_path(h, "bert-seqcls", blob, sizeof blob);
    ck_assert_int_ne(access(blob, F_OK), 0);
    char inc[1100];
    snprintf(inc, sizeof inc, "%s.incomplete", blob);
    ck_assert_int_ne(access(inc, F_OK), 0);
    ck_assert(!exists("%s/models--org--bert-seqcls/snapshots/%s/model.safetensors", cache,
                      mock_hub_commit(h, "org/bert-seqcls")));
    mock_hub_stop(h);
}
END_TEST

/* Two processes pulling the same repo at once: one fetches each blob, the other waits on its
 * lock and links it; both end with the whole snapshot. */
START_TEST(concurrent_pulls)
{
    struct mock_hub *h = hub_env();
    mock_hub_slow(h, 300);
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        kids[i] = fork();
        ck_assert_int_ge(kids[i], 0);
        if (kids[i] == 0) {
            char dir[4096];
            struct err e = {0};
            int rc = pull("org/bert-seqcls", dir, &e);
            if (rc)
                fprintf(stderr, "pull %d: %s\n", i, e.msg);
            _exit(rc ? 1 : 0);
        }
    }
    for (int i = 0; i < 2; i++) {
        int status = 0;
        ck_assert_int_eq(waitpid(kids[i], &status, 0), kids[i]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "pull %d failed", i);
    }
    /* the blob was fetched once (the second process found it under the lock) */
    ck_assert_int_eq(mock_hub_count(h, MOCK_STORAGE), 1);
    char path[1200], src[1024];
    snprintf(path, sizeof path, "%s/models--org--bert-seqcls/snapshots/%s/model.safetensors",
             cache, mock_hub_commit(h, "org/bert-seqcls"));
    snprintf(src, sizeof src, "%s/model.safetensors", fixture_model("bert-seqcls"));
    ck_assert(same_bytes(path, src));
    mock_hub_stop(h);
}
END_TEST

/* The terminal's bars: drawn, redrawn and cleared without a fault (output discarded). */
START_TEST(progress_bars)
{
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, STDERR_FILENO);
    struct hub_opts o = {.progress = HUB_PROGRESS_BARS};
    struct hub_progress_state *p = progress_new(&o, false);
    int a = progress_start(p, "model-00001-of-00002.safetensors", 1000000, 0);
    int b = progress_start(p, "a/very/long/directory/name/for/a/file/config.json", 0, 0);
    ck_assert_int_ne(a, b);
    for (int i = 0; i < 100; i++)
        progress_add(p, i % 2 ? a : b, 10000);
    progress_log(p, "a line above the bars %d", 1);
    progress_end(p, a);
    progress_end(p, b);
    progress_free(p);
    close(devnull);
}
END_TEST

/* A watch: nothing before the plan and after the pull; meanwhile the plan, the files being
 * fetched by their full path with their bytes (a resumed part included), the files done. */
START_TEST(watch_reports)
{
    struct hub_watch *w = hub_watch_new();
    struct hub_status *st = malloc(sizeof *st);
    ck_assert(!hub_watch_get(w, st));
    struct hub_opts o = {.progress = HUB_PROGRESS_NONE, .watch = w};
    struct hub_progress_state *p = progress_new(&o, true);
    progress_plan(p, "org/x", "v1", "0123456789012345678901234567890123456789", 3);
    ck_assert(hub_watch_get(w, st));
    ck_assert_str_eq(st->repo, "org/x");
    ck_assert_str_eq(st->revision, "v1");
    ck_assert_uint_eq(st->files_total, 3);
    ck_assert_uint_eq(st->n, 0);
    static const char long_name[] = "a/very/long/directory/name/for/a/file/model.safetensors";
    int a = progress_start(p, "config.json", 0, 0);
    int b = progress_start(p, long_name, 1000, 100);
    progress_end(p, a);
    progress_file_done(p);
    progress_add(p, b, 50);
    ck_assert(hub_watch_get(w, st));
    ck_assert_uint_eq(st->files_done, 1);
    ck_assert_uint_eq(st->n, 1);
    ck_assert_str_eq(st->files[0].name, long_name);
    ck_assert_int_eq(st->files[0].done, 150);
    ck_assert_int_eq(st->files[0].total, 1000);
    progress_end(p, b);
    progress_file_done(p);
    ck_assert(hub_watch_get(w, st));
    ck_assert_uint_eq(st->n, 0);
    ck_assert_uint_eq(st->files_done, 2);
    progress_free(p);
    ck_assert(!hub_watch_get(w, st));
    hub_watch_free(w);
    free(st);
}
END_TEST

/* A write that fails half-way (a file size limit standing in for a full disk): the pull
 * fails saying so, and neither the snapshot nor blobs/ hold a part of the file. */
START_TEST(write_failure)
{
    struct mock_hub *h = hub_env();
    pid_t kid = fork();
    ck_assert_int_ge(kid, 0);
    if (kid == 0) {
        struct rlimit lim = {200000, 200000};
        signal(SIGXFSZ, SIG_IGN);
        setrlimit(RLIMIT_FSIZE, &lim);
        char dir[4096];
        struct err e = {0};
        int rc = pull("org/bert-seqcls", dir, &e);
        _exit(rc == ERR_IO && strstr(e.msg, "nothing was placed") ? 0 : 1);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(kid, &status, 0), kid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the pull did not fail so");
    char snap[1200], cmd[2600];
    snprintf(snap, sizeof snap, "%s/models--org--bert-seqcls/snapshots/%s", cache,
             mock_hub_commit(h, "org/bert-seqcls"));
    ck_assert(!exists("%s/%s", snap, "model.safetensors"));
    ck_assert(!exists("%s/%s", snap, "tokenizer.json"));
    snprintf(cmd, sizeof cmd, "ls '%s/models--org--bert-seqcls/blobs' | grep -q incomplete", cache);
    ck_assert_int_ne(system(cmd), 0);
    mock_hub_stop(h);
}
END_TEST

START_TEST(retries_500)
{
    struct mock_hub *h = hub_env();
    char dir[4096];
    struct err e = {0};
    mock_hub_fail_next(h, 2);
    ck_assert_msg(pull("org/bert-seqcls", dir, &e) == 0, "%s", e.msg);
    mock_hub_stop(h);
}
END_TEST

START_TEST(gated_and_missing)
{
    struct mock_hub *h = hub_env();
    char dir[4096], path[700];
    struct err e = {0};
    ck_assert_int_eq(pull("org/gated", dir, &e), ERR_UNAVAILABLE);
    ck_assert_msg(strstr(e.msg, "gated") && strstr(e.msg, "HF_TOKEN"), "%s", e.msg);
    setenv("HF_TOKEN", TOKEN, 1);
    ck_assert_msg(pull("org/gated", dir, &e) == 0, "%s", e.msg);
    unsetenv("HF_TOKEN");
    snprintf(path, sizeof path, "%s/token", home); /* the token file of huggingface-cli login */
    FILE *f = fopen(path, "w");
    fputs(TOKEN "\n", f);
    fclose(f);
    rmdir(cache); /* nothing to reuse: the files are asked for again */
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cache);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_msg(pull("org/gated", dir, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(pull("org/nope", dir, &e), ERR_NOT_FOUND);
    ck_assert_msg(strstr(e.msg, "repo not found"), "%s", e.msg);
    ck_assert_int_eq(pull("org/bert-seqcls@v9", dir, &e), ERR_NOT_FOUND);
    ck_assert_msg(strstr(e.msg, "revision not found"), "%s", e.msg);
    mock_hub_add_listing(h, "org/bert-embed", "../escape.json");
    ck_assert_int_eq(pull("org/bert-embed", dir, &e), ERR_FORMAT);
    ck_assert_msg(strstr(e.msg, "../escape.json") && strstr(e.msg, "refused"), "%s", e.msg);
    mock_hub_stop(h);
}
END_TEST

START_TEST(offline)
{
    struct mock_hub *h = hub_env();
    char dir[4096], again[4096];
    struct err e = {0};
    ck_assert_msg(pull("org/bert-seqcls", dir, &e) == 0, "%s", e.msg);
    setenv("HF_HUB_OFFLINE", "1", 1);
    int asked = mock_hub_count(h, MOCK_INFO);
    ck_assert_msg(pull("org/bert-seqcls", again, &e) == 0, "%s", e.msg);
    ck_assert_str_eq(dir, again);
    ck_assert_int_eq(mock_hub_count(h, MOCK_INFO), asked);
    ck_assert_int_eq(pull("org/bert-embed", again, &e), ERR_UNAVAILABLE);
    ck_assert_msg(strstr(e.msg, "HF_HUB_OFFLINE") && strstr(e.msg, "not in the cache"), "%s",
                  e.msg);
    /* the Hub gone: the cached snapshot of the revision */
    unsetenv("HF_HUB_OFFLINE");
    mock_hub_stop(h);
    ck_assert_msg(pull("org/bert-seqcls", again, &e) == 0, "%s", e.msg);
    ck_assert_str_eq(dir, again);
}
END_TEST

START_TEST(cli_pull)
{
    struct mock_hub *h = hub_env();
    int status;
    json_t *out = run_cli("pull org/bert-embed --exclude '1_Pooling/' 2>/dev/null", "", &status);
    ck_assert_int_eq(status, 0);
    const char *dir = json_string_value(json_array_get(out, 0));
    ck_assert_ptr_nonnull(dir);
    ck_assert(strstr(dir, "models--org--bert-embed/snapshots/"));
    char snap[1024];
    snprintf(snap, sizeof snap, "%.*s", (int)strcspn(dir, "\n"), dir);
    ck_assert(exists("%s/%s", snap, "model.safetensors"));
    ck_assert(!exists("%s/%s", snap, "1_Pooling"));
    json_decref(out);
    out = run_cli("pull org/nope 2>/dev/null", "", &status);
    ck_assert_int_eq(status, 1);
    json_decref(out);
    out = run_cli("pull 2>/dev/null", "", &status);
    ck_assert_int_eq(status, 2);
    json_decref(out);
    /* tokenize --tokenizer takes a model id */
    out = run_cli("tokenize --tokenizer org/bert-seqcls", "{\"text\": \"hello\"}\n", &status);
    ck_assert_int_eq(status, 0);
    ck_assert_ptr_nonnull(json_object_get(json_array_get(out, 0), "ids"));
    json_decref(out);
    mock_hub_stop(h);
}
END_TEST

static void expect_classifies(const struct daemon *d, const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "/models/%s", name);
    struct http_reply *r = daemon_post(d, path, json_pack("{s:s}", "inputs", "hello world"));
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    ck_assert(json_is_array(r->json));
    http_reply_free(r);
}

/* Whether /info says model.safetensors of org/bert-seqcls is part-way (a 503 while fetched). */
static bool info_shows_fetching(const struct daemon *d, const struct mock_hub *h, long long size)
{
    struct http_reply *r = daemon_get(d, "/info");
    const json_t *f = json_object_get(r->json, "fetching");
    bool seen = false;
    if (f) {
        ck_assert_int_eq(r->status, 503);
        ck_assert_str_eq(json_string_value(json_object_get(f, "repo")), "org/bert-seqcls");
        ck_assert_str_eq(json_string_value(json_object_get(f, "revision")), "main");
        ck_assert_str_eq(json_string_value(json_object_get(f, "commit")),
                         mock_hub_commit(h, "org/bert-seqcls"));
        /* config.json, tokenizer.json, tokenizer_config.json, model.safetensors */
        ck_assert_int_eq(json_integer_value(json_object_get(f, "files_total")), 4);
        ck_assert_int_lt(json_integer_value(json_object_get(f, "files_done")), 4);
        const json_t *files = json_object_get(f, "files");
        for (size_t i = 0; i < json_array_size(files); i++) {
            const json_t *x = json_array_get(files, i);
            long long done = json_integer_value(json_object_get(x, "bytes"));
            if (strcmp(json_string_value(json_object_get(x, "file")), "model.safetensors") != 0)
                continue;
            ck_assert_int_eq(json_integer_value(json_object_get(x, "total")), size);
            seen = done > 0 && done < size;
        }
    } else {
        ck_assert_msg(r->status == 503, "%ld %s", r->status, r->body); /* not fetching yet */
    }
    http_reply_free(r);
    return seen;
}

/* `serve --model ORG/NAME` with slow weights: the daemon is up meanwhile, /ready 503, /info a
 * 503 naming each file being fetched with its bytes, the log a progress line every few
 * seconds; then it serves, and /info is the model's. */
START_TEST(serve_model_id)
{
    struct mock_hub *h = hub_env();
    struct daemon *d = daemon_new(NULL);
    const char *args[] = {"--model", "org/bert-seqcls", "--task", "text-classification",
                          "--host", "127.0.0.1", "--port", "0", NULL};
    char src[1024];
    snprintf(src, sizeof src, "%s/model.safetensors", fixture_model("bert-seqcls"));
    struct stat st;
    ck_assert_int_eq(stat(src, &st), 0);
    mock_hub_slow(h, 6000); /* about a thousand 4 kB chunks: the weights take over 6 s */
    daemon_exec(d, args);
    daemon_wait_listening(d, 30000);
    struct http_reply *r = daemon_get(d, "/ready");
    ck_assert_int_eq(r->status, 503);
    http_reply_free(r);
    bool seen = false;
    for (int i = 0; i < 500 && !seen; i++, usleep(10000))
        seen = info_shows_fetching(d, h, (long long)st.st_size);
    ck_assert_msg(seen, "/info never showed model.safetensors part-way");
    daemon_wait_ready(d, 60000);
    expect_classifies(d, "bert-seqcls");
    r = daemon_get(d, "/info");
    ck_assert_int_eq(r->status, 200);
    ck_assert_ptr_null(json_object_get(r->json, "fetching"));
    ck_assert_str_eq(json_string_value(json_object_get(r->json, "model_id")), "bert-seqcls");
    http_reply_free(r);
    char *log = daemon_log(d);
    ck_assert_msg(strstr(log, "fetching org/bert-seqcls@main"), "%s", daemon_log_tail(d));
    /* a progress line of the weights (every 5 s): name, bytes of the total */
    const char *line = strstr(log, "fetching model.safetensors");
    ck_assert_msg(line, "no progress line: %s", daemon_log_tail(d));
    size_t n = strcspn(line, "\n");
    ck_assert_msg(memmem(line, n, "/ 4.0 MB", 8), "%.*s", (int)n, line);
    free(log);
    daemon_shutdown(d);
    daemon_stop(d);
    mock_hub_stop(h);
}
END_TEST

START_TEST(serve_config_id)
{
    struct mock_hub *h = hub_env();
    char *yaml = yaml_config(NULL,
                             yaml_model("cls", "hf://org/gated", "text-classification",
                                        "revision: main\n"),
                             NULL);
    setenv("HF_TOKEN", TOKEN, 1);
    struct daemon *d = daemon_new(yaml);
    free(yaml);
    daemon_exec(d, NULL);
    daemon_wait_listening(d, 30000);
    daemon_wait_ready(d, 60000);
    expect_classifies(d, "cls");
    daemon_shutdown(d);
    daemon_stop(d);
    mock_hub_stop(h);
}
END_TEST

Suite *suite_hub(void)
{
    Suite *s = suite_create("hub");
    TCase *tc = tcase_create("hub");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, NULL, serve_teardown);
    tcase_add_test(tc, model_ids);
    tcase_add_test(tc, config_model_ids);
    tcase_add_test(tc, pull_layout);
    tcase_add_test(tc, resume_dropped);
    tcase_add_test(tc, corrupt_refused);
    tcase_add_test(tc, retries_500);
    tcase_add_test(tc, concurrent_pulls);
    tcase_add_test(tc, write_failure);
    tcase_add_test(tc, progress_bars);
    tcase_add_test(tc, watch_reports);
    tcase_add_test(tc, gated_and_missing);
    tcase_add_test(tc, offline);
    tcase_add_test(tc, cli_pull);
    tcase_add_test(tc, serve_model_id);
    tcase_add_test(tc, serve_config_id);
    suite_add_tcase(s, tc);
    return s;
}
