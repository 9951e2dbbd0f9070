/* batch_input: `inferd batch`'s formats. Input records become requests to the in-process
 * daemon: an OpenAI batch line {"custom_id", "method", "url", "body"} its body to its url; a
 * plain JSONL line (an HF route body, or a bare JSON string) or a CSV record's --text-column
 * the body of POST /models/NAME. Answers become output lines: OpenAI's batch output object,
 * or for the plain formats the route's answer as it is (what `inferd run` prints). A line
 * that cannot make a request is answered here, in the same shapes. Also what a rerun skips:
 * the output's custom_ids (OpenAI) or its number of lines (plain formats, written in input
 * order). */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"

/* The OpenAI batch urls the daemon serves (all POST). */
static const char *const openai_urls[] = {"/v1/chat/completions", "/v1/completions",
                                          "/v1/embeddings"};

struct batch_reader {
    FILE *f;
    struct batch_input_opts *o;
    char *buf;
    size_t cap;
    long line, seq; /* lines read; records returned */
    size_t column;  /* CSV: the text column's index */
    struct csv_record rec;
    json_t *ids; /* OpenAI: custom_ids seen in this run */
};

void item_free(struct item *it)
{
    free(it->custom_id);
    free(it->path);
    free(it->body);
    free(it->out);
    *it = (struct item){0};
}

static bool blank(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    return *s == '\0';
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

/* ---- answers ---- */

/* it->out = j dumped (j stolen); -1 when out of memory. */
static int set_out(struct item *it, json_t *j)
{
    it->out = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return it->out ? 0 : -1;
}

static char *batch_req_id(const struct item *it, char buf[32])
{
    snprintf(buf, 32, "batch_req_%ld", it->line);
    return buf;
}

/* A line answered here: OpenAI's {"id", "custom_id", "response": null, "error": {code,
 * message}}, or the HF route's {"error", "error_type": "BadRequest"}. */
static int answer_local(struct item *it, enum batch_format f, const char *code, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));
static int answer_local(struct item *it, enum batch_format f, const char *code, const char *fmt,
                        ...)
{
    char msg[512], id[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    free(it->path);
    it->path = NULL;
    it->ok = false;
    if (f != BATCH_OPENAI)
        return set_out(it, json_pack("{s:s, s:s}", "error", msg, "error_type", "BadRequest"));
    return set_out(it, json_pack("{s:s, s:s?, s:n, s:{s:s, s:s}}", "id", batch_req_id(it, id),
                                 "custom_id", it->custom_id, "response", "error", "code", code,
                                 "message", msg));
}

/* body[0..len) as one output line's JSON: the daemon's compact text as it is (its numbers
 * exactly as it printed them), or a JSON string of whatever else came. */
static char *answer_json(const char *body, size_t len)
{
    while (len > 0 && isspace((unsigned char)body[len - 1])) /* the daemon's final newline */
        len--;
    json_t *probe = len > 0 && !memchr(body, '\n', len)
                        ? json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL)
                        : NULL;
    if (probe)
        return json_decref(probe), strndup(body, len);
    json_t *s = json_stringn(body, len);
    if (!s)
        s = json_string("(an answer that is neither JSON nor UTF-8 text)");
    char *text = json_dumps(s, JSON_ENCODE_ANY);
    json_decref(s);
    return text;
}

int item_answer(struct item *it, enum batch_format f, int status, const char *body, size_t len,
                const char *request_id)
{
    it->ok = status >= 200 && status < 300;
    char *b = answer_json(body, len);
    if (!b || f != BATCH_OPENAI)
        return (it->out = b) ? 0 : -1;
    /* OpenAI's line around the body's own text */
    char id[32];
    json_t *head = json_pack("{s:s, s:s?}", "id", batch_req_id(it, id), "custom_id", it->custom_id);
    json_t *rid = request_id ? json_string(request_id) : json_null();
    char *h = head ? json_dumps(head, JSON_COMPACT) : NULL,
         *r = rid ? json_dumps(rid, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (h && r) {
        h[strlen(h) - 1] = '\0'; /* the closing brace */
        if (asprintf(&it->out, "%s,\"response\":{\"status_code\":%d,\"request_id\":%s,\"body\":%s},"
                               "\"error\":null}",
                     h, status, r, b) < 0)
            it->out = NULL;
    }
    json_decref(head), json_decref(rid);
    free(h), free(r), free(b);
    return it->out ? 0 : -1;
}

/* ---- records into requests ---- */

static int set_body(struct item *it, const json_t *body)
{
    it->body = json_dumps(body, JSON_COMPACT);
    it->body_len = it->body ? strlen(it->body) : 0;
    return it->body ? 0 : -1;
}

/* The url of an OpenAI batch line when the daemon serves it, else NULL. */
static const char *openai_url(const json_t *url)
{
    for (size_t i = 0; json_is_string(url) && i < sizeof openai_urls / sizeof *openai_urls; i++)
        if (strcmp(json_string_value(url), openai_urls[i]) == 0)
            return openai_urls[i];
    return NULL;
}

/* One OpenAI batch line into a request to its url, or its error answer. */
static int openai_item(struct batch_reader *r, struct item *it, const char *line, size_t len)
{
    const char *known;
    json_error_t je;
    json_t *j = json_loadb(line, len, 0, &je);
    int rc;
    const json_t *cid = json_object_get(j, "custom_id"), *url = json_object_get(j, "url"),
                 *method = json_object_get(j, "method"), *body = json_object_get(j, "body");
    if (json_is_string(cid) && !(it->custom_id = strdup(json_string_value(cid))))
        rc = -1;
    else if (!j)
        rc = answer_local(it, BATCH_OPENAI, "invalid_json", "line %ld is not JSON: %s", it->line,
                          je.text);
    else if (!json_is_object(j) || !json_is_string(cid) || json_string_length(cid) == 0)
        rc = answer_local(it, BATCH_OPENAI, "invalid_request",
                          "line %ld: expected an object with a non-empty string \"custom_id\"",
                          it->line);
    else if (json_object_get(r->ids, it->custom_id))
        rc = answer_local(it, BATCH_OPENAI, "duplicate_custom_id",
                          "line %ld: custom_id '%s' was used by an earlier line", it->line,
                          it->custom_id);
    else if (!json_is_string(method) || strcmp(json_string_value(method), "POST") != 0)
        rc = answer_local(it, BATCH_OPENAI, "invalid_method",
                          "line %ld: \"method\" must be \"POST\"", it->line);
    else if (!json_is_object(body))
        rc = answer_local(it, BATCH_OPENAI, "invalid_request",
                          "line %ld: \"body\" must be an object", it->line);
    else if (json_is_true(json_object_get(body, "stream")))
        rc = answer_local(it, BATCH_OPENAI, "invalid_request",
                          "line %ld: \"stream\": true is not supported in a batch", it->line);
    else if (!(known = openai_url(url)))
        rc = answer_local(it, BATCH_OPENAI, "invalid_url",
                          "line %ld: \"url\" must be one of /v1/chat/completions, "
                          "/v1/completions, /v1/embeddings",
                          it->line);
    else {
        free(it->path);
        rc = (it->path = strdup(known)) ? set_body(it, body) : -1;
    }
    if (it->custom_id && rc == 0 && json_object_set_new(r->ids, it->custom_id, json_true()))
        rc = -1;
    json_decref(j);
    return rc;
}

/* The body of POST /models/NAME for text: {"inputs": text, "parameters": --parameters}. */
static int text_request(struct batch_reader *r, struct item *it, json_t *inputs)
{
    json_t *body = json_pack("{s:o, s:O?}", "inputs", inputs, "parameters", r->o->parameters);
    int rc = body ? set_body(it, body) : -1;
    json_decref(body);
    return rc;
}

/* An object line with --parameters: its own parameters win over the option's. */
static int merged_request(struct batch_reader *r, struct item *it, json_t *obj)
{
    json_t *p = json_object_get(obj, "parameters");
    if (!p) {
        json_object_set(obj, "parameters", (json_t *)r->o->parameters);
    } else if (json_is_object(p)) {
        json_t *merged = json_deep_copy(r->o->parameters);
        json_object_update(merged, p);
        json_object_set_new(obj, "parameters", merged);
    }
    return set_body(it, obj);
}

/* One JSONL line into the HF route's body, or its error answer. Lines the daemon can judge
 * (not JSON, a wrong shape) go to it as they are. */
static int jsonl_item(struct batch_reader *r, struct item *it, const char *line, size_t len)
{
    const char *p = line;
    while (isspace((unsigned char)*p))
        p++;
    if (!*p)
        return answer_local(it, BATCH_JSONL, NULL, "line %ld is empty", it->line);
    if (*p != '"' && !r->o->text_column && !r->o->parameters) {
        it->body = malloc(len + 1);
        if (!it->body)
            return -1;
        memcpy(it->body, line, len + 1);
        it->body_len = len;
        return 0;
    }
    json_error_t je;
    json_t *j = json_loadb(line, len, JSON_ALLOW_NUL | JSON_DECODE_ANY, &je);
    int rc;
    if (!j)
        rc = answer_local(it, BATCH_JSONL, NULL, "line %ld is not JSON: %s", it->line, je.text);
    else if (json_is_string(j))
        rc = text_request(r, it, json_incref(j));
    else if (!r->o->text_column && json_is_object(j))
        rc = merged_request(r, it, j);
    else if (!r->o->text_column)
        rc = set_body(it, j); /* the daemon says what is wrong with it */
    else if (!json_is_string(json_object_get(j, r->o->text_column)))
        rc = answer_local(it, BATCH_JSONL, NULL, "line %ld has no string field \"%s\"",
                          it->line, r->o->text_column);
    else
        rc = text_request(r, it, json_incref(json_object_get(j, r->o->text_column)));
    json_decref(j);
    return rc;
}

static int csv_item(struct batch_reader *r, struct item *it, int got)
{
    const char *text = csv_field(&r->rec, r->column);
    if (got == CSV_OPEN_QUOTE)
        return answer_local(it, BATCH_CSV, NULL,
                            "record at line %ld: a quoted field is not closed before the end "
                            "of the file",
                            it->line);
    if (!text)
        return answer_local(it, BATCH_CSV, NULL, "record at line %ld has %zu fields, no \"%s\"",
                            it->line, r->rec.n, r->o->text_column);
    json_t *s = json_string(text);
    if (!s)
        return answer_local(it, BATCH_CSV, NULL,
                            "record at line %ld: column \"%s\" is not valid UTF-8", it->line,
                            r->o->text_column);
    return text_request(r, it, s);
}

int reader_next(struct batch_reader *r, struct item *it, struct err *e)
{
    *it = (struct item){0};
    int rc;
    if (r->o->format == BATCH_CSV) {
        it->line = r->line + 1;
        int got = csv_read(r->f, &r->rec, &r->line);
        if (got == CSV_EOF)
            return 0;
        if (got == CSV_IO || got == CSV_NOMEM)
            return err_set(e, ERR_IO, "reading the input: %s",
                           got == CSV_NOMEM ? "out of memory" : strerror(errno)),
                   -1;
        it->path = strdup(r->o->hf_path);
        rc = it->path ? csv_item(r, it, got) : -1;
    } else {
        ssize_t n;
        do {
            n = getline(&r->buf, &r->cap, r->f);
            if (n < 0)
                return ferror(r->f) ? (err_set(e, ERR_IO, "reading the input: %s",
                                               strerror(errno)),
                                       -1)
                                    : 0;
            r->line++;
            if (n > 0 && r->buf[n - 1] == '\n')
                r->buf[--n] = '\0';
        } while (r->o->format == BATCH_OPENAI && blank(r->buf));
        it->line = r->line;
        it->path = strdup(r->o->hf_path ? r->o->hf_path : "");
        if (!it->path)
            rc = -1;
        else if (r->o->format == BATCH_OPENAI)
            rc = openai_item(r, it, r->buf, (size_t)n);
        else
            rc = jsonl_item(r, it, r->buf, (size_t)n);
    }
    it->seq = r->seq++;
    if (rc)
        return item_free(it), err_set(e, ERR_NOMEM, "out of memory"), -1;
    return 1;
}

/* ---- opening ---- */

/* BATCH_AUTO: CSV by its name, OpenAI's format by its first line's custom_id, else JSONL. */
static enum batch_format sniff(FILE *f, const char *path)
{
    if (ends_with(path, ".csv"))
        return BATCH_CSV;
    char *line = NULL;
    size_t cap = 0;
    enum batch_format fmt = BATCH_JSONL;
    while (getline(&line, &cap, f) >= 0) {
        if (blank(line))
            continue;
        json_t *j = json_loads(line, 0, NULL);
        if (json_is_object(j) && json_object_get(j, "custom_id"))
            fmt = BATCH_OPENAI;
        json_decref(j);
        break;
    }
    free(line);
    rewind(f);
    return fmt;
}

/* The CSV header: the text column's index. */
static int csv_header(struct batch_reader *r, const char *path, struct err *e)
{
    int got = csv_read(r->f, &r->rec, &r->line);
    if (got != CSV_RECORD)
        return err_set(e, ERR_INPUT, "%s: no CSV header line", path);
    for (size_t i = 0; i < r->rec.n; i++) {
        const char *name = csv_field(&r->rec, i);
        if (i == 0 && strncmp(name, "\xEF\xBB\xBF", 3) == 0) /* a UTF-8 byte order mark */
            name += 3;
        if (strcmp(name, r->o->text_column) == 0) {
            r->column = i;
            return 0;
        }
    }
    return err_set(e, ERR_INPUT, "%s: the CSV header has no column \"%s\"", path,
                   r->o->text_column);
}

struct batch_reader *reader_open(const char *path, struct batch_input_opts *o, struct err *e)
{
    struct batch_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->ids = json_object())) {
        free(r);
        err_set(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    r->o = o;
    if (!(r->f = fopen(path, "rb"))) {
        err_set(e, ERR_IO, "%s: %s", path, strerror(errno));
        reader_close(r);
        return NULL;
    }
    if (o->format == BATCH_AUTO)
        o->format = sniff(r->f, path);
    if (o->format == BATCH_CSV && !o->text_column) {
        err_set(e, ERR_INPUT, "a CSV input needs --text-column NAME");
    } else if (o->format == BATCH_OPENAI && (o->text_column || o->parameters)) {
        err_set(e, ERR_INPUT,
                "--text-column and --parameters apply to JSONL and CSV, not OpenAI's format");
    } else if (o->format != BATCH_CSV || csv_header(r, path, e) == 0) {
        return r;
    }
    reader_close(r);
    return NULL;
}

void reader_close(struct batch_reader *r)
{
    if (!r)
        return;
    if (r->f)
        fclose(r->f);
    free(r->buf);
    csv_record_free(&r->rec);
    json_decref(r->ids);
    free(r);
}

long reader_count(const char *path, const struct batch_input_opts *o)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    long n = 0, lines = 0;
    if (o->format == BATCH_CSV) {
        struct csv_record rec = {0};
        while (csv_read(f, &rec, &lines) != CSV_EOF && !ferror(f))
            n++;
        csv_record_free(&rec);
        n--; /* the header */
    } else {
        char *line = NULL;
        size_t cap = 0;
        while (getline(&line, &cap, f) >= 0)
            n += o->format != BATCH_OPENAI || !blank(line);
        free(line);
    }
    fclose(f);
    return n < 0 ? 0 : n;
}

/* ---- resuming ---- */

/* One complete output line of an earlier run. */
static int note_done(struct batch_done *d, enum batch_format f, const char *line, size_t len)
{
    d->lines++;
    if (f != BATCH_OPENAI)
        return 0;
    json_t *j = json_loadb(line, len, 0, NULL);
    const json_t *cid = json_object_get(j, "custom_id");
    const char *id = json_string_value(json_object_get(j, "id"));
    long n;
    char key[32];
    int rc = 0;
    if (json_is_string(cid))
        rc = json_object_set_new(d->ids, json_string_value(cid), json_true());
    else if (id && sscanf(id, "batch_req_%ld", &n) == 1) {
        snprintf(key, sizeof key, "%ld", n);
        rc = json_object_set_new(d->lines_answered, key, json_true());
    }
    json_decref(j);
    return rc;
}

int done_scan(const char *path, enum batch_format f, struct batch_done *d, struct err *e)
{
    *d = (struct batch_done){.ids = json_object(), .lines_answered = json_object()};
    if (!d->ids || !d->lines_answered)
        return err_set(e, ERR_NOMEM, "out of memory");
    FILE *out = fopen(path, "rb");
    if (!out)
        return errno == ENOENT ? 0 : err_set(e, ERR_IO, "%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long whole = 0; /* bytes of complete lines */
    while ((n = getline(&line, &cap, out)) > 0) {
        if (line[n - 1] != '\n')
            break; /* the last line, cut by a kill: dropped below */
        whole += n;
        if (note_done(d, f, line, (size_t)n - 1)) {
            fclose(out), free(line);
            return err_set(e, ERR_NOMEM, "out of memory");
        }
    }
    bool cut = n > 0;
    free(line);
    fclose(out);
    if (cut && truncate(path, whole) != 0)
        return err_set(e, ERR_IO, "%s: cannot cut its partial last line: %s", path,
                       strerror(errno));
    return 0;
}

bool done_has(const struct batch_done *d, enum batch_format f, const struct item *it)
{
    if (f != BATCH_OPENAI)
        return it->seq < d->lines;
    if (it->custom_id)
        return json_object_get(d->ids, it->custom_id) != NULL;
    char key[32];
    snprintf(key, sizeof key, "%ld", it->line);
    return json_object_get(d->lines_answered, key) != NULL;
}

void done_free(struct batch_done *d)
{
    json_decref(d->ids);
    json_decref(d->lines_answered);
    *d = (struct batch_done){0};
}
