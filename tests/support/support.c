/* support: see support.h. */
#include "support.h"

#include "generate/params.h"

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef INFERD_SOURCE_DIR
#define INFERD_SOURCE_DIR "."
#endif
#ifndef INFERD_BUILD_DIR
#define INFERD_BUILD_DIR "build"
#endif

/* room for every archive of tests/data (15 now) and more */
#define MAX_ARCHIVES 48

const char *fixture_dir(const char *archive)
{
    static char dirs[MAX_ARCHIVES][512];
    static char names[MAX_ARCHIVES][128];
    static int n;
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], archive) == 0)
            return dirs[i];
    if (n == MAX_ARCHIVES) {
        fprintf(stderr, "fixture_dir: too many archives\n");
        abort();
    }
    char *dir = dirs[n];
    snprintf(dir, sizeof dirs[0], "%s/test-fixtures/%s", INFERD_BUILD_DIR, archive);
    char *dot = strstr(dir + strlen(INFERD_BUILD_DIR), ".tar");
    if (dot)
        *dot = '\0';
    char stamp[600];
    snprintf(stamp, sizeof stamp, "%s/.unpacked", dir);
    char src[600];
    snprintf(src, sizeof src, "%s/tests/data/%s", INFERD_SOURCE_DIR, archive);
    struct stat st, src_st;
    /* unpacked again when the archive changed since (a pull that updates refs) */
    if (stat(stamp, &st) != 0 || (stat(src, &src_st) == 0 && src_st.st_mtime > st.st_mtime)) {
        char cmd[4096];
        snprintf(
            cmd, sizeof cmd,
            "rm -rf '%s' && mkdir -p '%s' && tar -xJf '%s/tests/data/%s' -C '%s' && touch '%s'",
            dir, dir, INFERD_SOURCE_DIR, archive, dir, stamp);
        if (system(cmd) != 0) {
            fprintf(stderr, "fixture_dir: cannot unpack %s\n", archive);
            abort();
        }
    }
    snprintf(names[n], sizeof names[0], "%s", archive);
    return dirs[n++];
}

const char *fixture_tokenizer(const char *name)
{
    static char path[640];
    snprintf(path, sizeof path, "%s/tokenizers/%s", fixture_dir("tokenizers.tar.xz"), name);
    return path;
}

char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    fclose(f);
    if (!buf)
        return NULL;
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

const char *inferd_exe(void)
{
    return INFERD_BUILD_DIR "/inferd";
}

/* The temp dirs made here, each with the process that made it: a forked test inherits its
 * parent's list and must leave those alone. */
struct temp_entry {
    char *path;
    pid_t pid;
};
static struct temp_entry *temps;
static size_t n_temps, cap_temps;
static bool temps_kept;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path); /* FTW_PHYS: a symlink goes, never what it points to */
    return 0;
}

void temp_dirs_remove(void)
{
    for (size_t i = 0; i < n_temps; i++) {
        if (temps[i].pid != getpid())
            continue;
        if (!temps_kept)
            nftw(temps[i].path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(temps[i].path);
        temps[i].path = NULL;
        temps[i].pid = 0;
    }
}

void temp_dirs_keep(void)
{
    temps_kept = true;
}

static void remember(const char *path)
{
    if (n_temps == 0 && cap_temps == 0)
        atexit(temp_dirs_remove);
    if (n_temps == cap_temps) {
        size_t cap = cap_temps ? cap_temps * 2 : 32;
        struct temp_entry *v = realloc(temps, cap * sizeof *v);
        if (!v)
            return; /* not removed: only disk space lost */
        temps = v;
        cap_temps = cap;
    }
    temps[n_temps].path = strdup(path);
    temps[n_temps++].pid = getpid();
}

const char *temp_dir(void)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/test-tmp-XXXXXX", INFERD_BUILD_DIR);
    if (!mkdtemp(path)) {
        perror("mkdtemp");
        abort();
    }
    remember(path);
    return path;
}

json_t *fixture_json(const char *dir, const char *file)
{
    char path[2048];
    ck_assert_msg(snprintf(path, sizeof path, "%s/%s", dir, file) < (int)sizeof path,
                  "path too long: %s/%s", dir, file);
    json_error_t je;
    json_t *j = json_load_file(path, JSON_ALLOW_NUL, &je);
    ck_assert_msg(j != NULL, "%s: %s", path, je.text);
    return j;
}

/* Which archive of tests/data holds a fixture model, by the start of its name; the first
 * row that matches wins, the last matches everything. */
static const struct {
    const char *prefix;
    const char *archive;
} model_archives[] = {
    {"bert-", "models-bert.tar.xz"},
    {"deberta-", "models-issue14-encoders.tar.xz"},
    {"mpnet-", "models-issue14-encoders.tar.xz"},
    {"modernbert-", "models-issue14-encoders.tar.xz"},
    {"qwen3-", "models-issue14-qwen3.tar.xz"},
    {"gemma", "models-issue14-decoders.tar.xz"},
    {"phi3-", "models-issue14-decoders.tar.xz"},
    {"mistral-embed", "models-issue14-decoders.tar.xz"},
    {"s2s-", "models-issue16-bart.tar.xz"},
    {"awq-", "models-issue18-q4.tar.xz"},
    {"gptq-", "models-issue18-q4.tar.xz"},
    {"bart-s2s", "models-issue16-beams.tar.xz"},
    {"", "models-other.tar.xz"},
};

const char *fixture_model(const char *name)
{
    static char path[1024];
    if (strcmp(name, "spam-bert-tiny") == 0) {
        snprintf(path, sizeof path, "%s/%s", fixture_dir("spam-bert-tiny.tar.xz"), name);
        return path;
    }
    size_t i = 0;
    while (strncmp(name, model_archives[i].prefix, strlen(model_archives[i].prefix)) != 0)
        i++;
    snprintf(path, sizeof path, "%s/models/%s", fixture_dir(model_archives[i].archive), name);
    return path;
}

const char *fixture_xz(const char *name)
{
    static char paths[4][512];
    static int n;
    char path[512];
    snprintf(path, sizeof path, "%s/test-fixtures/%s", INFERD_BUILD_DIR, name);
    char *dot = strstr(path + strlen(INFERD_BUILD_DIR), ".xz");
    if (dot)
        *dot = '\0';
    for (int i = 0; i < n; i++)
        if (strcmp(paths[i], path) == 0)
            return paths[i];
    if (n == 4) {
        fprintf(stderr, "fixture_xz: too many files\n");
        abort();
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd,
                 "mkdir -p '%s/test-fixtures' && xz -dc '%s/tests/data/%s' > '%s.tmp' && "
                 "mv '%s.tmp' '%s'",
                 INFERD_BUILD_DIR, INFERD_SOURCE_DIR, name, path, path, path);
        if (system(cmd) != 0) {
            fprintf(stderr, "fixture_xz: cannot decompress %s\n", name);
            abort();
        }
    }
    snprintf(paths[n], sizeof paths[0], "%s", path);
    return paths[n++];
}

json_t *run_cli(const char *args, const char *input, int *status)
{
    const char *dir = temp_dir();
    char in_path[512], out_path[512], cmd[2048];
    snprintf(in_path, sizeof in_path, "%s/in.jsonl", dir);
    snprintf(out_path, sizeof out_path, "%s/out.jsonl", dir);
    FILE *f = fopen(in_path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(input, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' %s < '%s' > '%s'", inferd_exe(), args, in_path, out_path);
    int rc = system(cmd);
    *status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    json_t *lines = json_array();
    FILE *o = fopen(out_path, "rb");
    ck_assert_ptr_nonnull(o);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, o)) > 0) {
        json_t *j = json_loadb(line, (size_t)n, 0, NULL);
        json_array_append_new(lines, j ? j : json_string(line));
    }
    free(line);
    fclose(o);
    return lines;
}

/* llama-lm with the Llama 3 chat template and its special tokens (tokenizer_config.json of the
 * llama3 fixture tokenizer); every other file a symlink to llama-lm's. Built once. */
const char *fixture_chat_model(void)
{
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/test-fixtures/llama-lm-chat", INFERD_BUILD_DIR);
    char stamp[600], tmp[540], a[2000], b[700];
    snprintf(stamp, sizeof stamp, "%s/.built", dir);
    struct stat st;
    if (stat(stamp, &st) == 0)
        return dir;
    const char *src = fixture_model("llama-lm");
    snprintf(tmp, sizeof tmp, "%s.tmp%d", dir, (int)getpid());
    snprintf(a, sizeof a, "rm -rf '%s' '%s' && mkdir -p '%s'", tmp, dir, tmp);
    ck_assert_int_eq(system(a), 0);
    static const char *const linked[] = {"config.json", "generation_config.json",
                                         "model.safetensors", "tokenizer.json"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(a, sizeof a, "%s/%s", src, linked[i]);
        snprintf(b, sizeof b, "%s/%s", tmp, linked[i]);
        ck_assert_msg(symlink(a, b) == 0, "symlink %s: %s", b, strerror(errno));
    }
    json_t *cfg = fixture_json(src, "tokenizer_config.json");
    /* (its model_max_length is past what a JSON integer holds here) */
    snprintf(b, sizeof b, "%s/tokenizer_config.json", fixture_tokenizer("llama3"));
    json_error_t je;
    json_t *l3 = json_load_file(b, JSON_DECODE_INT_AS_REAL, &je);
    ck_assert_msg(l3, "%s: %s", b, je.text);
    ck_assert_ptr_nonnull(json_object_get(l3, "chat_template"));
    static const char *const keys[] = {"chat_template", "bos_token", "eos_token"};
    for (size_t i = 0; i < 3; i++)
        json_object_set(cfg, keys[i], json_object_get(l3, keys[i]));
    snprintf(b, sizeof b, "%s/tokenizer_config.json", tmp);
    ck_assert_int_eq(json_dump_file(cfg, b, JSON_INDENT(2)), 0);
    json_decref(cfg);
    json_decref(l3);
    snprintf(b, sizeof b, "%s/.built", tmp);
    FILE *f = fopen(b, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_msg(rename(tmp, dir) == 0, "cannot rename %s", tmp);
    return dir;
}

/* A copy of fixture model src in parent/name, its files symlinked, without `drop` (may be
 * NULL) and with config.json's model_type replaced by `type` (may be NULL). */
const char *fixture_tool_model(const char *name)
{
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s/models/%s", fixture_dir("tool-models.tar.xz"), name);
    char link[1200], src[1200];
    snprintf(link, sizeof link, "%s/tokenizer.json", dir);
    if (strcmp(name, "tools-qwen3") == 0)
        snprintf(src, sizeof src, "%s/tokenizer.json", fixture_model("qwen3-lm"));
    else
        snprintf(src, sizeof src, "%s/tokenizer.json", fixture_tokenizer("llama3"));
    struct stat st;
    if (lstat(link, &st) != 0)
        ck_assert_msg(symlink(src, link) == 0, "symlink %s: %s", link, strerror(errno));
    return dir;
}

const char *model_link_copy(const char *parent, const char *name, const char *src_name,
                              const char *drop, const char *type)
{
    static char dir[1400];
    char src[1024], cmd[4096];
    snprintf(src, sizeof src, "%s", fixture_model(src_name));
    snprintf(dir, sizeof dir, "%s/%s", parent, name);
    snprintf(cmd, sizeof cmd, "mkdir '%s' && ln -s '%s'/* '%s'/", dir, src, dir);
    ck_assert_int_eq(system(cmd), 0);
    if (drop) {
        snprintf(cmd, sizeof cmd, "rm '%s/%s'", dir, drop);
        ck_assert_int_eq(system(cmd), 0);
    }
    if (type) {
        snprintf(cmd, sizeof cmd,
                 "rm '%s/config.json' && sed 's/\"model_type\": *\"[a-z0-9_-]*\"/\"model_type\": "
                 "\"%s\"/' '%s/config.json' > '%s/config.json'",
                 dir, type, src, dir);
        ck_assert_int_eq(system(cmd), 0);
    }
    return dir;
}

double logits_err_top20(const float *last, int vocab, const json_t *ref)
{
    const json_t *top = json_object_get(ref, "last_logits_top20");
    const json_t *ids = json_object_get(top, "ids"), *vals = json_object_get(top, "values");
    ck_assert_uint_eq(json_array_size(ids), 20);
    ck_assert_uint_eq(json_array_size(vals), 20);
    double worst = 0, floor20 = json_number_value(json_array_get(vals, 19));
    char *listed = calloc((size_t)vocab, 1);
    ck_assert_ptr_nonnull(listed);
    for (size_t k = 0; k < 20; k++) {
        json_int_t id = json_integer_value(json_array_get(ids, k));
        ck_assert(id >= 0 && id < vocab);
        listed[id] = 1;
        worst = fmax(worst, fabs(last[id] - json_number_value(json_array_get(vals, k))));
    }
    for (int v = 0; v < vocab; v++)
        if (!listed[v] && last[v] > floor20)
            worst = fmax(worst, last[v] - floor20);
    free(listed);
    return worst;
}

double logits_err_first8(const float *row0, const json_t *ref)
{
    const json_t *want = json_object_get(ref, "logits_first_position_first8");
    ck_assert_uint_eq(json_array_size(want), 8);
    double worst = 0;
    for (size_t k = 0; k < 8; k++)
        worst = fmax(worst, fabs(row0[k] - json_number_value(json_array_get(want, k))));
    return worst;
}

int json_read_ints(const json_t *a, int32_t *out, int cap)
{
    int n = (int)json_array_size(a);
    ck_assert_int_le(n, cap);
    for (int i = 0; i < n; i++)
        out[i] = (int32_t)json_integer_value(json_array_get(a, (size_t)i));
    return n;
}

void beam_params_from_row(struct gen_params *p, const json_t *row, uint32_t max_new)
{
    const json_t *kw = json_object_get(row, "params");
    p->max_new_tokens = max_new;
    p->num_beams = (uint32_t)json_integer_value(json_object_get(kw, "num_beams"));
    const json_t *v;
    if ((v = json_object_get(kw, "length_penalty")))
        p->length_penalty = json_number_value(v);
    if ((v = json_object_get(kw, "early_stopping")))
        p->early_stopping = json_is_string(v) ? GEN_EARLY_STOP_NEVER
                            : json_is_true(v) ? GEN_EARLY_STOP_TRUE
                                              : GEN_EARLY_STOP_FALSE;
    if ((v = json_object_get(kw, "no_repeat_ngram_size")))
        p->no_repeat_ngram_size = (uint32_t)json_integer_value(v);
    if ((v = json_object_get(kw, "num_return_sequences")))
        p->num_return_sequences = (uint32_t)json_integer_value(v);
    if ((v = json_object_get(kw, "repetition_penalty")))
        p->repetition_penalty = json_number_value(v);
    if ((v = json_object_get(kw, "min_length")))
        p->min_length = (uint32_t)json_integer_value(v);
    if ((v = json_object_get(kw, "forced_bos_token_id")))
        p->forced_bos_token_id = (int32_t)json_integer_value(v);
    if ((v = json_object_get(kw, "forced_eos_token_id")))
        p->forced_eos_token_id = (int32_t)json_integer_value(v);
    v = json_object_get(row, "eos_token_id");
    p->n_eos_token_ids = 0;
    if (json_is_integer(v))
        p->eos_token_ids[p->n_eos_token_ids++] = (int32_t)json_integer_value(v);
    for (size_t i = 0; json_is_array(v) && i < json_array_size(v); i++)
        p->eos_token_ids[p->n_eos_token_ids++] = (int32_t)json_integer_value(json_array_get(v, i));
}
