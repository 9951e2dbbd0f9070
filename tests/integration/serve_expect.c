/* serve_expect: see serve_expect.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "serve_expect.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/support.h"

#ifndef INFERD_BUILD_DIR
#define INFERD_BUILD_DIR "build"
#endif

/* ---- JSON ---- */

static bool close_at(const json_t *a, const json_t *b, double tol, char *path, size_t path_len,
                     char *why, size_t why_len)
{
    size_t plen = strlen(path);
    if (json_is_number(a) && json_is_number(b)) {
        bool same = json_is_integer(a) && json_is_integer(b)
                        ? json_integer_value(a) == json_integer_value(b)
                        : fabs(json_number_value(a) - json_number_value(b)) <= tol;
        if (!same)
            snprintf(why, why_len, "%s: got %.9g, want %.9g", path, json_number_value(a),
                     json_number_value(b));
        return same;
    }
    if (json_typeof(a) != json_typeof(b)) {
        char *sa = json_dumps(a, JSON_ENCODE_ANY), *sb = json_dumps(b, JSON_ENCODE_ANY);
        snprintf(why, why_len, "%s: got %.120s, want %.120s", path, sa ? sa : "(none)",
                 sb ? sb : "(none)");
        free(sa);
        free(sb);
        return false;
    }
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b)) {
            snprintf(why, why_len, "%s: got %zu elements, want %zu", path, json_array_size(a),
                     json_array_size(b));
            return false;
        }
        for (size_t i = 0; i < json_array_size(a); i++) {
            snprintf(path + plen, path_len - plen, "[%zu]", i);
            if (!close_at(json_array_get(a, i), json_array_get(b, i), tol, path, path_len, why,
                          why_len))
                return false;
        }
        path[plen] = '\0';
        return true;
    }
    if (json_is_object(a)) {
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)b, key, v)
        {
            snprintf(path + plen, path_len - plen, ".%s", key);
            const json_t *w = json_object_get(a, key);
            if (!w) {
                snprintf(why, why_len, "%s: missing", path);
                return false;
            }
            if (!close_at(w, v, tol, path, path_len, why, why_len))
                return false;
        }
        json_object_foreach((json_t *)a, key, v)
        {
            if (!json_object_get(b, key)) {
                snprintf(why, why_len, "%s: unexpected key \"%s\"", path, key);
                return false;
            }
        }
        path[plen] = '\0';
        return true;
    }
    if (json_equal((json_t *)a, (json_t *)b))
        return true;
    char *sa = json_dumps(a, JSON_ENCODE_ANY), *sb = json_dumps(b, JSON_ENCODE_ANY);
    snprintf(why, why_len, "%s: got %.120s, want %.120s", path, sa ? sa : "?", sb ? sb : "?");
    free(sa);
    free(sb);
    return false;
}

bool close_json(const json_t *got, const json_t *want, double tol, char *why, size_t why_len)
{
    char path[512] = "$";
    if (!got || !want) {
        snprintf(why, why_len, "$: %s", got ? "no expected value" : "no JSON answer");
        return got == want;
    }
    return close_at(got, want, tol, path, sizeof path, why, why_len);
}

void expect_json(const json_t *got, const json_t *want, double tol, const char *what)
{
    char why[700] = "";
    ck_assert_msg(close_json(got, want, tol, why, sizeof why), "%s: %s", what, why);
}

void expect_status(const struct http_reply *r, long status, const char *what)
{
    ck_assert_msg(r->status == status, "%s: status %ld (want %ld)%s%s; body: %.400s", what,
                  r->status, status, r->error[0] ? ", " : "", r->error, r->body ? r->body : "");
}

void expect_hf_error(const struct http_reply *r, long status, const char *what)
{
    expect_status(r, status, what);
    const json_t *e = json_object_get(r->json, "error");
    const json_t *t = json_object_get(r->json, "error_type");
    ck_assert_msg(json_is_string(e) && json_string_length(e) > 0 && json_is_string(t),
                  "%s: not {\"error\": str, \"error_type\": str}: %.400s", what, r->body);
}

void expect_openai_error(const struct http_reply *r, long status, const char *what)
{
    expect_status(r, status, what);
    const json_t *e = json_object_get(r->json, "error");
    const json_t *msg = json_object_get(e, "message"), *type = json_object_get(e, "type");
    const json_t *param = json_object_get(e, "param"), *code = json_object_get(e, "code");
    ck_assert_msg(
        json_is_object(e) && json_is_string(msg) && json_string_length(msg) > 0 &&
            json_is_string(type) && param && (json_is_string(param) || json_is_null(param)) &&
            code && (json_is_string(code) || json_is_integer(code) || json_is_null(code)),
        "%s: not {\"error\": {\"message\", \"type\", \"param\", \"code\"}}: %.400s", what, r->body);
}

long expect_timing_headers(const struct http_reply *r, const char *what)
{
    static const char *const times[] = {"x-queue-time", "x-inference-time", "x-total-time"};
    char v[64];
    for (size_t i = 0; i < 3; i++) {
        ck_assert_msg(http_header(r, times[i], v, sizeof v), "%s: no %s header; headers:\n%s", what,
                      times[i], r->headers);
        char *end;
        double ms = strtod(v, &end);
        ck_assert_msg(end != v && *end == '\0' && ms >= 0, "%s: %s: '%s' is not milliseconds", what,
                      times[i], v);
    }
    ck_assert_msg(http_header(r, "x-batch-size", v, sizeof v), "%s: no x-batch-size header", what);
    char *end;
    long n = strtol(v, &end, 10);
    ck_assert_msg(end != v && *end == '\0' && n >= 1, "%s: x-batch-size '%s'", what, v);
    return n;
}

/* ---- references ---- */

json_t *model_refs(const char *model)
{
    return fixture_json(fixture_model(model), "refs-dev.json");
}

const json_t *refs_find_text(const json_t *refs, const char *key, const char *text)
{
    const json_t *list = json_object_get(refs, key);
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *x = json_array_get(list, i);
        const char *t = json_string_value(json_object_get(x, "text"));
        if (t && strcmp(t, text) == 0)
            return x;
    }
    return NULL;
}

json_t *seqcls_logits(const json_t *refs)
{
    const json_t *all = json_object_get(refs, "logits");
    json_t *out = json_array();
    for (size_t i = 0; i < json_array_size(all); i++) {
        const json_t *x = json_array_get(all, i);
        if (json_array_size(json_object_get(x, "input_ids")) < 128)
            json_array_append(out, (json_t *)x);
    }
    ck_assert_uint_gt(json_array_size(out), 0);
    return out;
}

double sigmoid(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

json_t *predict_expected(const json_t *logits, const char *const *labels, bool raw)
{
    size_t n = json_array_size(logits);
    double *s = calloc(n, sizeof *s);
    size_t *order = calloc(n, sizeof *order);
    ck_assert(s && order);
    double mx = -INFINITY, sum = 0;
    for (size_t i = 0; i < n; i++)
        mx = fmax(mx, json_number_value(json_array_get(logits, i)));
    for (size_t i = 0; i < n; i++) {
        double l = json_number_value(json_array_get(logits, i));
        s[i] = raw ? l : (n == 1 ? sigmoid(l) : exp(l - mx));
        sum += exp(l - mx);
        order[i] = i;
    }
    if (!raw && n > 1)
        for (size_t i = 0; i < n; i++)
            s[i] /= sum;
    for (size_t i = 1; i < n; i++) /* insertion sort, highest first */
        for (size_t j = i; j > 0 && s[order[j]] > s[order[j - 1]]; j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            out, json_pack("{s:s, s:f}", "label", labels[order[i]], "score", s[order[i]]));
    free(s);
    free(order);
    return out;
}

/* ---- model directories built at test time ---- */

static void copy_file(const char *from, const char *to)
{
    size_t len;
    char *data = read_file(from, &len);
    ck_assert_msg(data != NULL, "cannot read %s", from);
    FILE *f = fopen(to, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", to);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
    free(data);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* One tensor of a safetensors header, for sorting by data offset. */
struct tensor_ref {
    const char *name;
    json_t *info;
    uint64_t begin, end;
};

static int by_begin(const void *a, const void *b)
{
    const struct tensor_ref *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* Rewrites src (safetensors) into dst keeping only row `row` of classifier.weight (labels,
 * hidden) and classifier.bias (labels); the other tensors keep their bytes and order. */
static void write_single_row(const char *src, const char *dst, int row)
{
    size_t len;
    unsigned char *data = (unsigned char *)read_file(src, &len);
    ck_assert_msg(data != NULL && len > 8, "cannot read %s", src);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | data[i];
    ck_assert_uint_le(8 + hlen, len);
    json_error_t je;
    json_t *head = json_loadb((const char *)data + 8, hlen, 0, &je);
    ck_assert_msg(head != NULL, "%s header: %s", src, je.text);
    const unsigned char *base = data + 8 + hlen;

    size_t n = json_object_size(head), k = 0;
    struct tensor_ref *t = calloc(n, sizeof *t);
    const char *name;
    json_t *info;
    json_object_foreach(head, name, info)
    {
        if (strcmp(name, "__metadata__") == 0)
            continue;
        const json_t *off = json_object_get(info, "data_offsets");
        t[k] = (struct tensor_ref){name, info, (uint64_t)json_integer_value(json_array_get(off, 0)),
                                   (uint64_t)json_integer_value(json_array_get(off, 1))};
        k++;
    }
    qsort(t, k, sizeof *t, by_begin);

    /* new offsets, and for the classifier the slice of the old bytes that stays */
    json_t *out_head = json_object();
    json_t *meta = json_object_get(head, "__metadata__");
    if (meta)
        json_object_set(out_head, "__metadata__", meta);
    uint64_t *from = calloc(k, sizeof *from), *size = calloc(k, sizeof *size);
    uint64_t at = 0;
    bool seen_w = false, seen_b = false;
    for (size_t i = 0; i < k; i++) {
        json_t *shape = json_deep_copy(json_object_get(t[i].info, "shape"));
        from[i] = t[i].begin;
        size[i] = t[i].end - t[i].begin;
        bool w = strcmp(t[i].name, "classifier.weight") == 0;
        bool b = strcmp(t[i].name, "classifier.bias") == 0;
        if (w || b) {
            ck_assert_str_eq(json_string_value(json_object_get(t[i].info, "dtype")), "F32");
            uint64_t rows = (uint64_t)json_integer_value(json_array_get(shape, 0));
            ck_assert_uint_lt((uint64_t)row, rows);
            size[i] /= rows;
            from[i] += (uint64_t)row * size[i];
            json_array_set_new(shape, 0, json_integer(1));
            seen_w = seen_w || w;
            seen_b = seen_b || b;
        }
        json_object_set_new(out_head, t[i].name,
                            json_pack("{s:O, s:o, s:[I, I]}", "dtype",
                                      json_object_get(t[i].info, "dtype"), "shape", shape,
                                      "data_offsets", (json_int_t)at, (json_int_t)(at + size[i])));
        at += size[i];
    }
    ck_assert_msg(seen_w && seen_b, "%s has no classifier.weight/bias", src);

    char *text = json_dumps(out_head, JSON_COMPACT);
    size_t tlen = strlen(text), padded = (tlen + 7) / 8 * 8;
    FILE *f = fopen(dst, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", dst);
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(padded >> (8 * i));
    fwrite(le, 1, 8, f);
    fwrite(text, 1, tlen, f);
    for (size_t i = tlen; i < padded; i++)
        fputc(' ', f);
    for (size_t i = 0; i < k; i++)
        ck_assert_uint_eq(fwrite(base + from[i], 1, size[i], f), size[i]);
    ck_assert_int_eq(fclose(f), 0);
    free(text);
    free(from);
    free(size);
    free(t);
    json_decref(out_head);
    json_decref(head);
    free(data);
}

const char *reranker_model(int row)
{
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/test-fixtures/reranker-seqcls-row%d", INFERD_BUILD_DIR, row);
    char stamp[600];
    snprintf(stamp, sizeof stamp, "%s/.built", dir);
    struct stat st;
    if (stat(stamp, &st) == 0)
        return dir;
    const char *src = fixture_model("bert-seqcls");
    char tmp[540], a[1800], b[700];
    snprintf(tmp, sizeof tmp, "%s.tmp%d", dir, (int)getpid());
    snprintf(a, sizeof a, "rm -rf '%s' '%s' && mkdir -p '%s'", tmp, dir, tmp);
    ck_assert_int_eq(system(a), 0);
    static const char *const copied[] = {"tokenizer.json", "tokenizer_config.json"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(a, sizeof a, "%s/%s", src, copied[i]);
        snprintf(b, sizeof b, "%s/%s", tmp, copied[i]);
        copy_file(a, b);
    }
    /* config.json: one label */
    json_t *cfg = fixture_json(src, "config.json");
    json_object_set_new(cfg, "id2label", json_pack("{s:s}", "0", "LABEL_0"));
    json_object_set_new(cfg, "label2id", json_pack("{s:i}", "LABEL_0", 0));
    json_object_set_new(cfg, "num_labels", json_integer(1));
    snprintf(b, sizeof b, "%s/config.json", tmp);
    ck_assert_int_eq(json_dump_file(cfg, b, JSON_INDENT(2)), 0);
    json_decref(cfg);
    snprintf(a, sizeof a, "%s/model.safetensors", src);
    snprintf(b, sizeof b, "%s/model.safetensors", tmp);
    write_single_row(a, b, row);
    snprintf(b, sizeof b, "%s/.built", tmp);
    write_text(b, "");
    ck_assert_msg(rename(tmp, dir) == 0, "cannot rename %s", tmp);
    return dir;
}

const char *broken_model(const char *parent)
{
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/broken", parent);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    const char *src = fixture_model("bert-seqcls");
    static const char *const copied[] = {"config.json", "tokenizer.json", "tokenizer_config.json"};
    char a[700], b[700];
    for (size_t i = 0; i < 3; i++) {
        snprintf(a, sizeof a, "%s/%s", src, copied[i]);
        snprintf(b, sizeof b, "%s/%s", dir, copied[i]);
        copy_file(a, b);
    }
    snprintf(b, sizeof b, "%s/model.safetensors", dir);
    write_text(b, "this is not a safetensors file");
    return dir;
}

/* ---- Prometheus text ---- */

double metric_sum(const char *text, const char *name, const char *const *labels, int *n)
{
    double sum = 0;
    int count = 0;
    size_t nlen = strlen(name);
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char *s = strndup(line, len);
        line += len + (nl ? 1 : 0);
        if (s[0] == '#' || strncmp(s, name, nlen) != 0 || (s[nlen] != '{' && s[nlen] != ' ')) {
            free(s);
            continue;
        }
        char *set_end = s[nlen] == '{' ? strrchr(s, '}') : s + nlen;
        bool match = set_end != NULL;
        for (size_t i = 0; match && labels && labels[i]; i++) {
            char *at = strstr(s + nlen, labels[i]);
            /* inside the label set, and a whole label (after '{' or ',') */
            match = at && at < set_end && (at[-1] == '{' || at[-1] == ',');
        }
        if (match) {
            sum += strtod(set_end + (s[nlen] == '{' ? 1 : 0), NULL);
            count++;
        }
        free(s);
    }
    if (n)
        *n = count;
    return sum;
}

/* ---- a busy worker ---- */

struct http_multi *occupy_worker(const struct daemon *d, const char *model, const char *path)
{
    static const char *const words[] = {"the", "quick", "brown", "fox", "jumps", "over",
                                        "the", "lazy",  "dog",   "and", "runs",  "away"};
    char text[2000] = "";
    size_t len = 0;
    for (size_t i = 0; i < 250; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%s%s", i ? " " : "",
                                words[i % (sizeof words / sizeof words[0])]);
    json_t *inputs = json_array();
    for (size_t i = 0; i < 32; i++)
        json_array_append_new(inputs, json_string(text));
    json_t *body = json_pack("{s:o}", "inputs", inputs);
    if (strncmp(path, "/models/", 8) != 0)
        json_object_set_new(body, "model", json_string(model));
    char *text_body = json_dumps(body, JSON_COMPACT);
    json_decref(body);

    char label[96];
    snprintf(label, sizeof label, "model=\"%s\"", model);
    const char *const labels[] = {label, NULL};
    struct http_reply *r = daemon_get(d, "/metrics");
    expect_status(r, 200, "GET /metrics");
    double started0 = metric_sum(r->body, "inferd_queue_duration_seconds_count", labels, NULL);
    http_reply_free(r);

    /* a short request_timeout_ms may expire the heavy request itself while it is tokenized
     * (the first requests after start are slow): then try again */
    struct http_spec spec = {"POST", path, text_body, d->auth[0] ? d->auth : NULL};
    for (int attempt = 0; attempt < 5; attempt++) {
        struct http_multi *m = http_multi_start(d->port, &spec, 1);
        long long end = now_ms() + 20000;
        for (;;) {
            size_t running = http_multi_run(m, 2);
            r = daemon_get(d, "/metrics");
            double started =
                metric_sum(r->body, "inferd_queue_duration_seconds_count", labels, NULL);
            http_reply_free(r);
            if (started > started0) {
                free(text_body);
                return m;
            }
            if (running == 0)
                break;
            ck_assert_msg(now_ms() < end,
                          "the heavy request to %s never started (inferd_queue_duration_seconds_"
                          "count{%s} stays %g)",
                          path, label, started0);
        }
        http_multi_free(m);
    }
    ck_abort_msg("the heavy request to %s never ran in 5 attempts", path);
    return NULL;
}

void daemon_post_expect(struct daemon *d, const char *path, json_t *body, const json_t *want,
                 json_t *(*pick)(const json_t *), const char *what)
{
    struct http_reply *r = daemon_post(d, path, body);
    expect_status(r, 200, what);
    json_t *got = pick ? pick(r->json) : json_incref(r->json);
    expect_json(got, want, REF_TOL, what);
    json_decref(got);
    http_reply_free(r);
}
