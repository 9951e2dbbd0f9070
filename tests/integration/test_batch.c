/* test_batch: the real `inferd batch` binary over the fixture models. Plain JSONL of the spam
 * classifier's dev emails: every line's label and p_spam against transformers' (refs-dev.json),
 * the same values as `inferd run`, the same bytes as the daemon answers; --text-column on JSONL
 * objects and on a CSV written with quotes, doubled quotes, commas, line breaks and CRLF inside
 * fields (the same bytes as the plain run, an empty text and an unclosed quote answered as
 * errors in place); bad lines answered in place; a job killed (SIGKILL, then a partial last
 * line left in the output) or stopped (SIGTERM: exit 143) and rerun gives exactly the output of
 * an uninterrupted run; OpenAI's batch format with /v1/embeddings (bert-embed's
 * sentence-transformers references), /v1/completions (gpt2-lm's greedy reference text) and
 * /v1/chat/completions (the daemon's own answer), its bad lines, and a resume by custom_id. */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "integration/serve_expect.h"
#include "integration/serve_support.h"
#include "integration/spam_emails.h"
#include "suites.h"
#include "support/support.h"

#define SPAM_PARAMS "{\"truncation\":true,\"max_length\":256,\"top_k\":null}"

/* ---- running the binary ---- */

/* Starts `inferd batch ARGS...` (NULL-terminated) with stderr to DIR/stderr.log. */
static pid_t batch_spawn(const char *dir, const char *const *args)
{
    const char *argv[40] = {inferd_exe(), "batch"};
    size_t n = 2;
    for (; args[n - 2]; n++) {
        ck_assert_uint_lt(n, 38);
        argv[n] = args[n - 2];
    }
    argv[n] = NULL;
    char log[512];
    snprintf(log, sizeof log, "%s/stderr.log", dir);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        FILE *e = freopen(log, "ab", stderr);
        (void)e;
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Its exit code (128 + signal when killed); fails the test after 180 s. */
static int batch_wait(pid_t pid)
{
    for (int i = 0; i < 18000; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(10000);
    }
    kill(pid, SIGKILL);
    ck_abort_msg("inferd batch did not end within 180 s");
    return -1;
}

static int batch_run(const char *dir, const char *const *args)
{
    return batch_wait(batch_spawn(dir, args));
}

static char *path_in(const char *dir, const char *name)
{
    char *p;
    ck_assert(asprintf(&p, "%s/%s", dir, name) > 0);
    return p;
}

/* The file NAME of dir, read whole (read_file), *len set. */
static char *read_in(const char *dir, const char *name, size_t *len)
{
    char *path = path_in(dir, name);
    char *text = read_file(path, len);
    free(path);
    return text;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* The lines of a file (without their newlines) as JSON strings. */
static json_t *file_lines(const char *path)
{
    size_t len;
    char *text = read_file(path, &len);
    ck_assert_msg(text != NULL, "cannot read %s", path);
    json_t *lines = json_array();
    for (char *p = text, *nl; (nl = strchr(p, '\n')); p = nl + 1)
        json_array_append_new(lines, json_stringn(p, (size_t)(nl - p)));
    free(text);
    return lines;
}

static json_t *line_json(const json_t *lines, size_t i)
{
    const char *s = json_string_value(json_array_get(lines, i));
    json_t *j = s ? json_loads(s, 0, NULL) : NULL;
    ck_assert_msg(j != NULL, "output line %zu is not JSON: %s", i + 1, s ? s : "(none)");
    return j;
}

/* Complete lines in the file at path now. */
static long count_lines(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    long n = 0;
    for (int ch; (ch = getc(f)) != EOF;)
        n += ch == '\n';
    fclose(f);
    return n;
}

/* Waits until path holds at least n lines (or the process ends). */
static void wait_lines(const char *path, long n, pid_t pid)
{
    for (int i = 0; i < 12000 && count_lines(path) < n; i++) {
        int st;
        ck_assert_msg(waitpid(pid, &st, WNOHANG) == 0, "inferd batch ended before %ld lines", n);
        usleep(5000);
    }
}

/* ---- the spam emails ---- */

/* n_ham + n_spam dev emails as JSONL bodies {"inputs", "parameters"} at DIR/name. */
static size_t write_bodies(const char *path, size_t n_ham, size_t n_spam, struct email **em)
{
    size_t n = emails_load(n_ham, n_spam, em);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s\n", (*em)[i].body);
    fclose(f);
    return n;
}

/* A classifier line's p_spam and top label. */
static double p_spam_of(const json_t *res, const char **top)
{
    double p = -1, best = -1;
    for (size_t k = 0; k < json_array_size(res); k++) {
        const json_t *x = json_array_get(res, k);
        const char *label = json_string_value(json_object_get(x, "label"));
        double s = json_number_value(json_object_get(x, "score"));
        if (label && strcmp(label, "spam") == 0)
            p = s;
        if (s > best)
            best = s, *top = label;
    }
    return p;
}

static const char *const spam_args_fmt[] = {"--model", NULL, "--task", "text-classification",
                                            "--progress", "off"};

/* argv for the spam model + extra (NULL-terminated) into out. */
static void spam_args(const char **out, const char *const *extra)
{
    size_t n = 0;
    for (; n < 6; n++)
        out[n] = spam_args_fmt[n];
    out[1] = fixture_model("spam-bert-tiny");
    for (size_t i = 0; extra[i]; i++)
        out[n++] = extra[i];
    out[n] = NULL;
}

START_TEST(spam_matches_hf_run_and_daemon)
{
    const char *dir = temp_dir();
    char *in = path_in(dir, "in.jsonl"), *out = path_in(dir, "out.jsonl");
    struct email *em;
    size_t n = write_bodies(in, 40, 40, &em);
    const char *extra[] = {"--input", in, "--output", out, NULL}, *args[20];
    spam_args(args, extra);
    ck_assert_int_eq(batch_run(dir, args), 0);
    json_t *lines = file_lines(out);
    ck_assert_uint_eq(json_array_size(lines), n);
    /* transformers' answers */
    for (size_t i = 0; i < n; i++) {
        json_t *res = line_json(lines, i);
        const char *top = "";
        double p = p_spam_of(res, &top);
        /* refs-dev.json's label is the data set's; transformers' top label is its p_spam's */
        const char *hf_top = em[i].p_spam > 0.5 ? "spam" : "ham";
        ck_assert_msg(fabs(p - em[i].p_spam) < SPAM_TOL && strcmp(top, hf_top) == 0,
                      "line %zu: p_spam %g (%s), transformers %g", i + 1, p, top, em[i].p_spam);
        json_decref(res);
    }
    /* inferd run's: the same scores (it prints 17 digits, the daemon 9) */
    size_t len;
    char *input = read_file(in, &len);
    char args_run[700];
    snprintf(args_run, sizeof args_run, "run --model '%s' --task text-classification --batch 8",
             fixture_model("spam-bert-tiny"));
    int st;
    json_t *run = run_cli(args_run, input, &st);
    ck_assert_int_eq(st, 0);
    ck_assert_uint_eq(json_array_size(run), n);
    for (size_t i = 0; i < n; i++) {
        json_t *res = line_json(lines, i);
        expect_json(res, json_array_get(run, i), 1e-6, "batch against inferd run");
        json_decref(res);
    }
    /* the daemon's: the same bytes */
    char *yaml =
        yaml_config(NULL, yaml_model("spam", "spam-bert-tiny", "text-classification", NULL), NULL);
    struct daemon *d = daemon_start(yaml, NULL);
    free(yaml);
    for (size_t i = 0; i < n; i += 9) {
        struct http_reply *r = daemon_post(d, "/models/spam", json_loads(em[i].body, 0, NULL));
        expect_status(r, 200, "the daemon");
        size_t bl = strlen(r->body);
        while (bl > 0 && r->body[bl - 1] == '\n')
            bl--;
        const char *got = json_string_value(json_array_get(lines, i));
        ck_assert_msg(strlen(got) == bl && memcmp(got, r->body, bl) == 0,
                      "line %zu: batch %s, daemon %.*s", i + 1, got, (int)bl, r->body);
        http_reply_free(r);
    }
    daemon_shutdown(d);
    daemon_stop(d);
    /* a rerun finds everything answered */
    ck_assert_int_eq(batch_run(dir, args), 0);
    ck_assert_int_eq(count_lines(out), (long)n);
    char *log = read_in(dir, "stderr.log", &len);
    ck_assert_msg(strstr(log, "done: 0 lines (0 ok, 0 errors), 80 skipped"), "%s", log);
    free(log);
    json_decref(run);
    json_decref(lines);
    free(input);
    emails_free(em, n);
    free(in);
    free(out);
}
END_TEST

/* A CSV field: quoted, its quotes doubled. */
static void csv_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

START_TEST(text_column_jsonl_and_csv)
{
    const char *dir = temp_dir();
    char *bodies = path_in(dir, "bodies.jsonl"), *objs = path_in(dir, "objs.jsonl"),
         *csv = path_in(dir, "emails.csv"), *o1 = path_in(dir, "o1"), *o2 = path_in(dir, "o2"),
         *o3 = path_in(dir, "o3");
    struct email *em;
    size_t n = write_bodies(bodies, 10, 10, &em);
    FILE *fo = fopen(objs, "wb"), *fc = fopen(csv, "wb");
    fputs("id,text,label\r\n", fc);
    size_t quotes = 0, breaks = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *b = json_loads(em[i].body, 0, NULL);
        const char *text = json_string_value(json_object_get(b, "inputs"));
        quotes += strchr(text, '"') != NULL;
        breaks += strchr(text, '\n') != NULL;
        json_t *o = json_pack("{s:I, s:s, s:s}", "id", (json_int_t)i, "text", text, "label",
                              em[i].label);
        char *line = json_dumps(o, JSON_COMPACT);
        fprintf(fo, "%s\n", line);
        free(line);
        json_decref(o);
        fprintf(fc, "%zu,", i); /* odd records plain, even ones with a quoted label too */
        csv_quoted(fc, text);
        if (i % 2)
            fprintf(fc, ",%s\n", em[i].label);
        else
            fprintf(fc, ",\"%s, \"\"really\"\"\"\r\n", em[i].label);
        json_decref(b);
    }
    ck_assert_uint_gt(quotes, 0); /* the emails do test the quoting */
    ck_assert_uint_gt(breaks, 0);
    fputs("\n98,,empty\n", fc);        /* a blank line (no record), then an empty text */
    fputs("99,\"never closed,x\n", fc); /* runs to the end of the file */
    fclose(fo);
    fclose(fc);
    const char *e1[] = {"--input", bodies, "--output", o1, NULL},
               *e2[] = {"--input", objs, "--output", o2, "--text-column", "text", "--parameters",
                        SPAM_PARAMS, NULL},
               *e3[] = {"--input", csv, "--output", o3, "--text-column", "text", "--parameters",
                        SPAM_PARAMS, NULL};
    const char *args[24];
    spam_args(args, e1);
    ck_assert_int_eq(batch_run(dir, args), 0);
    spam_args(args, e2);
    ck_assert_int_eq(batch_run(dir, args), 0);
    spam_args(args, e3);
    ck_assert_int_eq(batch_run(dir, args), 0);
    json_t *l1 = file_lines(o1), *l2 = file_lines(o2), *l3 = file_lines(o3);
    ck_assert_uint_eq(json_array_size(l1), n);
    ck_assert_uint_eq(json_array_size(l2), n);
    ck_assert_uint_eq(json_array_size(l3), n + 2);
    for (size_t i = 0; i < n; i++) {
        const char *a = json_string_value(json_array_get(l1, i));
        ck_assert_str_eq(json_string_value(json_array_get(l2, i)), a);
        ck_assert_str_eq(json_string_value(json_array_get(l3, i)), a);
    }
    for (size_t i = n; i < n + 2; i++) {
        json_t *e = line_json(l3, i);
        ck_assert_msg(json_is_string(json_object_get(e, "error")) &&
                          json_is_string(json_object_get(e, "error_type")),
                      "CSV record %zu: %s", i + 1, json_string_value(json_array_get(l3, i)));
        json_decref(e);
    }
    ck_assert(strstr(json_string_value(json_array_get(l3, n + 1)), "not closed"));
    /* a CSV without the column is a job-level failure */
    const char *e4[] = {"--input", csv, "--output", o1, "--text-column", "body", NULL};
    spam_args(args, e4);
    ck_assert_int_eq(batch_run(dir, args), 1);
    json_decref(l1), json_decref(l2), json_decref(l3);
    emails_free(em, n);
    free(bodies), free(objs), free(csv), free(o1), free(o2), free(o3);
}
END_TEST

START_TEST(bad_lines_answered_in_place)
{
    const char *dir = temp_dir();
    char *in = path_in(dir, "in.jsonl"), *out = path_in(dir, "out.jsonl");
    write_text(in, "{\"inputs\": \"Lunch tomorrow?\"}\n"
                   "this is not JSON\n"
                   "{\"inputs\": 5}\n"
                   "\"WIN a FREE iPhone now!!! Click here\"\n"
                   "\n"
                   "{\"inputs\": \"x\", \"parameters\": {\"top_k\": \"many\"}}\n"
                   "[1, 2]\n"
                   "{\"inputs\": \"See you at the meeting\"}"); /* no final newline */
    const char *extra[] = {"--input", in, "--output", out, NULL}, *args[20];
    spam_args(args, extra);
    ck_assert_int_eq(batch_run(dir, args), 0);
    json_t *lines = file_lines(out);
    ck_assert_uint_eq(json_array_size(lines), 8);
    static const bool ok[] = {1, 0, 0, 1, 0, 0, 0, 1};
    for (size_t i = 0; i < 8; i++) {
        json_t *j = line_json(lines, i);
        if (ok[i])
            ck_assert_msg(json_is_array(j) && json_array_size(j) == 1, "line %zu: %s", i + 1,
                          json_string_value(json_array_get(lines, i)));
        else
            ck_assert_msg(json_is_string(json_object_get(j, "error")) &&
                              json_is_string(json_object_get(j, "error_type")),
                          "line %zu: %s", i + 1, json_string_value(json_array_get(lines, i)));
        json_decref(j);
    }
    json_t *spam = line_json(lines, 3);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(spam, 0), "label")), "spam");
    json_decref(spam);
    size_t len;
    char *log = read_in(dir, "stderr.log", &len);
    ck_assert_msg(strstr(log, "done: 8 lines (3 ok, 5 errors)"), "%s", log);
    free(log);
    /* job-level failures: no input file (1), bad options (2) */
    const char *e2[] = {"--input", "/nonexistent/in.jsonl", "--output", out, NULL};
    spam_args(args, e2);
    ck_assert_int_eq(batch_run(dir, args), 1);
    const char *e3[] = {"--input", in, NULL};
    spam_args(args, e3);
    ck_assert_int_eq(batch_run(dir, args), 2);
    json_decref(lines);
    free(in);
    free(out);
}
END_TEST

/* Kills a run once out has some lines, then reruns it to the end. */
static int interrupt_and_resume(const char *dir, const char *const *args, const char *out,
                                int sig, bool add_partial)
{
    pid_t pid = batch_spawn(dir, args);
    wait_lines(out, 8, pid);
    kill(pid, sig);
    int code = batch_wait(pid);
    long done = count_lines(out);
    ck_assert_int_ge(done, 8);
    if (add_partial) { /* what a kill in the middle of a write leaves */
        FILE *f = fopen(out, "ab");
        fputs("[{\"label\":\"sp", f);
        fclose(f);
    }
    ck_assert_int_eq(batch_run(dir, args), 0);
    return code;
}

START_TEST(interrupted_job_resumes)
{
    const char *dir = temp_dir();
    char *in = path_in(dir, "in.jsonl"), *ref = path_in(dir, "ref.jsonl"),
         *out = path_in(dir, "out.jsonl");
    struct email *em;
    size_t n = write_bodies(in, 400, 187, &em);
    const char *e_ref[] = {"--input", in, "--output", ref, NULL},
               *e_out[] = {"--input", in, "--output", out, "--concurrency", "4", NULL};
    const char *args[20];
    spam_args(args, e_ref);
    ck_assert_int_eq(batch_run(dir, args), 0);
    size_t len_ref, len_out;
    char *want = read_file(ref, &len_ref);
    ck_assert_int_eq(count_lines(ref), (long)n);
    spam_args(args, e_out);
    /* SIGKILL with a partial last line left behind */
    ck_assert_int_eq(interrupt_and_resume(dir, args, out, SIGKILL, true), 128 + SIGKILL);
    char *got = read_file(out, &len_out);
    ck_assert_msg(len_out == len_ref && memcmp(got, want, len_ref) == 0,
                  "resumed after SIGKILL: %zu bytes, uninterrupted %zu", len_out, len_ref);
    free(got);
    /* SIGTERM: the lines in flight are written, exit 143 */
    unlink(out);
    ck_assert_int_eq(interrupt_and_resume(dir, args, out, SIGTERM, false), 128 + SIGTERM);
    got = read_file(out, &len_out);
    ck_assert_msg(len_out == len_ref && memcmp(got, want, len_ref) == 0,
                  "resumed after SIGTERM: %zu bytes, uninterrupted %zu", len_out, len_ref);
    size_t len;
    char *log = read_in(dir, "stderr.log", &len);
    ck_assert_msg(strstr(log, "interrupted: "), "%s", log);
    free(log);
    free(got);
    free(want);
    emails_free(em, n);
    free(in), free(ref), free(out);
}
END_TEST

/* ---- OpenAI's batch format ---- */

static char *oai_line(const char *cid, const char *url, json_t *body)
{
    json_t *l = json_pack("{s:s, s:s, s:s, s:o}", "custom_id", cid, "method", "POST", "url", url,
                          "body", body);
    char *s = json_dumps(l, JSON_COMPACT);
    json_decref(l);
    return s;
}

static char *oai_yaml(void)
{
    return yaml_config(NULL, yaml_model("embed", "bert-embed", "sentence-embeddings", NULL),
                       yaml_model("gpt2", "gpt2-lm", "text-generation", NULL),
                       yaml_model("chat", fixture_chat_model(), "text-generation", NULL), NULL);
}

/* The output line with a response for custom_id cid (a new reference; fails when not exactly
 * one). */
static json_t *by_custom_id(const json_t *lines, const char *cid)
{
    json_t *found = NULL;
    for (size_t i = 0; i < json_array_size(lines); i++) {
        json_t *j = line_json(lines, i);
        const char *c = json_string_value(json_object_get(j, "custom_id"));
        if (c && strcmp(c, cid) == 0 && !json_is_null(json_object_get(j, "response"))) {
            ck_assert_msg(!found, "custom_id %s answered twice", cid);
            found = json_incref(j);
        }
        json_decref(j);
    }
    ck_assert_msg(found, "custom_id %s not answered", cid);
    return found;
}

static const json_t *response_body(const json_t *line, int status)
{
    const json_t *r = json_object_get(line, "response");
    ck_assert_msg(json_is_null(json_object_get(line, "error")), "an error line");
    ck_assert_int_eq(json_integer_value(json_object_get(r, "status_code")), status);
    const char *rid = json_string_value(json_object_get(r, "request_id"));
    ck_assert_msg(rid && *rid, "no request_id");
    ck_assert(strncmp(json_string_value(json_object_get(line, "id")), "batch_req_", 10) == 0);
    return json_object_get(r, "body");
}

static void expect_error_line(const json_t *lines, size_t i, const char *code)
{
    json_t *j = line_json(lines, i);
    ck_assert_msg(json_is_null(json_object_get(j, "response")), "line %zu has a response", i + 1);
    const char *c = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    ck_assert_msg(c && strcmp(c, code) == 0, "line %zu: %s, want code %s", i + 1,
                  json_string_value(json_array_get(lines, i)), code);
    json_decref(j);
}

START_TEST(openai_batch_format)
{
    const char *dir = temp_dir();
    char *in = path_in(dir, "in.jsonl"), *out = path_in(dir, "out.jsonl"),
         *cfg = path_in(dir, "batch.yaml");
    char *yaml = oai_yaml();
    write_text(cfg, yaml);
    json_t *erefs = model_refs("bert-embed"), *grefs = model_refs("gpt2-lm");
    const json_t *se = json_object_get(erefs, "sentence_embeddings");
    const json_t *g0 = json_array_get(json_object_get(grefs, "generations"), 0);
    json_t *texts = json_array();
    /* at most 16: within a request's limit (limits.max_client_batch_size) */
    size_t n_se = json_array_size(se) < 16 ? json_array_size(se) : 16;
    for (size_t i = 0; i < n_se; i++)
        json_array_append(texts, json_object_get(json_array_get(se, i), "text"));
    json_t *chat_body =
        json_pack("{s:s, s:[{s:s, s:s}], s:i, s:f}", "model", "chat", "messages", "role", "user",
                  "content", "Hello there", "max_tokens", 8, "temperature", 0.0);
    char *l[12];
    l[0] = oai_line("emb", "/v1/embeddings",
                    json_pack("{s:s, s:O}", "model", "embed", "input", texts));
    l[1] = oai_line("cmpl", "/v1/completions",
                    json_pack("{s:s, s:O, s:i, s:f}", "model", "gpt2", "prompt",
                              json_object_get(g0, "prompt"), "max_tokens", 24, "temperature",
                              0.0));
    l[2] = oai_line("chat", "/v1/chat/completions", json_deep_copy(chat_body));
    l[3] = strdup("{\"custom_id\": \"broken\", \"method\": ");
    l[4] = oai_line("", "/v1/embeddings", json_pack("{s:s}", "input", "x"));
    l[5] = oai_line("url", "/v1/images/generations", json_pack("{s:s}", "prompt", "x"));
    l[6] = strdup("{\"custom_id\":\"get\",\"method\":\"GET\",\"url\":\"/v1/models\",\"body\":{}}");
    l[7] = oai_line("emb", "/v1/embeddings", json_pack("{s:s}", "input", "again"));
    l[8] = oai_line("stream", "/v1/chat/completions",
                    json_pack("{s:s, s:[{s:s, s:s}], s:b}", "model", "chat", "messages", "role",
                              "user", "content", "Hi", "stream", 1));
    l[9] = oai_line("nomodel", "/v1/embeddings", json_pack("{s:s, s:s}", "model", "nope",
                                                           "input", "x"));
    FILE *f = fopen(in, "wb");
    for (size_t i = 0; i < 10; i++) {
        fprintf(f, "%s\n%s", l[i], i == 4 ? "\n" : ""); /* a blank line is skipped */
        free(l[i]);
    }
    fclose(f);
    const char *args[] = {"--config", cfg, "--input", in, "--output", out, "--progress", "log",
                          NULL};
    ck_assert_int_eq(batch_run(dir, args), 0);
    json_t *lines = file_lines(out);
    ck_assert_uint_eq(json_array_size(lines), 10);
    /* /v1/embeddings: sentence-transformers' vectors */
    json_t *j = by_custom_id(lines, "emb");
    const json_t *data = json_object_get(response_body(j, 200), "data");
    ck_assert_uint_eq(json_array_size(data), n_se);
    for (size_t i = 0; i < n_se; i++)
        expect_json(json_object_get(json_array_get(data, i), "embedding"),
                    json_object_get(json_array_get(se, i), "embedding"), REF_TOL,
                    "batch /v1/embeddings");
    json_decref(j);
    /* /v1/completions: transformers' greedy text */
    j = by_custom_id(lines, "cmpl");
    const json_t *c0 = json_array_get(json_object_get(response_body(j, 200), "choices"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(c0, "text")),
                     json_string_value(json_object_get(g0, "greedy_text")));
    json_decref(j);
    /* /v1/chat/completions: what the daemon answers */
    j = by_custom_id(lines, "chat");
    const json_t *body = response_body(j, 200);
    struct daemon *d = daemon_start(yaml, NULL);
    struct http_reply *r = daemon_post(d, "/v1/chat/completions", json_deep_copy(chat_body));
    expect_status(r, 200, "the daemon's chat completion");
    expect_json(json_object_get(body, "choices"), json_object_get(r->json, "choices"), 0,
                "batch chat choices");
    expect_json(json_object_get(body, "usage"), json_object_get(r->json, "usage"), 0,
                "batch chat usage");
    http_reply_free(r);
    daemon_shutdown(d);
    daemon_stop(d);
    free(yaml);
    json_decref(j);
    /* the bad lines, each answered once with its code (custom_id null where none is known) */
    const char *codes[] = {"invalid_json", "invalid_request", "invalid_url", "invalid_method",
                           "duplicate_custom_id"};
    const size_t want_n[] = {1, 2, 1, 1, 1};
    for (size_t k = 0; k < 5; k++) {
        size_t n_code = 0;
        for (size_t i = 0; i < json_array_size(lines); i++) {
            json_t *e = line_json(lines, i);
            const char *c = json_string_value(json_object_get(json_object_get(e, "error"), "code"));
            if (c && strcmp(c, codes[k]) == 0) {
                expect_error_line(lines, i, codes[k]);
                n_code++;
            }
            json_decref(e);
        }
        ck_assert_msg(n_code == want_n[k], "%zu lines with code %s, want %zu", n_code, codes[k],
                      want_n[k]);
    }
    size_t null_id = 0;
    for (size_t i = 0; i < json_array_size(lines); i++)
        null_id +=
            strstr(json_string_value(json_array_get(lines, i)), "\"custom_id\":null") != NULL;
    ck_assert_uint_eq(null_id, 1); /* the line that is not JSON */
    /* a model the config does not have: the daemon's 404 in OpenAI's shape */
    j = by_custom_id(lines, "nomodel");
    body = response_body(j, 404);
    ck_assert(json_is_object(json_object_get(body, "error")));
    json_decref(j);
    /* a rerun answers nothing twice, the line without a custom_id included */
    ck_assert_int_eq(batch_run(dir, args), 0);
    ck_assert_int_eq(count_lines(out), 10);
    json_decref(lines);
    json_decref(chat_body);
    json_decref(texts);
    json_decref(erefs);
    json_decref(grefs);
    free(in), free(out), free(cfg);
}
END_TEST

START_TEST(openai_resume_by_custom_id)
{
    const char *dir = temp_dir();
    char *in = path_in(dir, "in.jsonl"), *out = path_in(dir, "out.jsonl"),
         *cfg = path_in(dir, "batch.yaml");
    char *yaml =
        yaml_config(NULL, yaml_model("embed", "bert-embed", "sentence-embeddings", NULL), NULL);
    write_text(cfg, yaml);
    free(yaml);
    enum { N = 1500 };
    FILE *f = fopen(in, "wb");
    for (int i = 0; i < N; i++) {
        char cid[32], text[64];
        snprintf(cid, sizeof cid, "req-%d", i);
        snprintf(text, sizeof text, "sentence number %d of the batch", i);
        char *l = oai_line(cid, "/v1/embeddings", json_pack("{s:s}", "input", text));
        fprintf(f, "%s\n", l);
        free(l);
    }
    fclose(f);
    const char *args[] = {"--config", cfg, "--input", in, "--output", out, "--concurrency", "4",
                          "--progress", "off", NULL};
    ck_assert_int_eq(interrupt_and_resume(dir, args, out, SIGKILL, true), 128 + SIGKILL);
    json_t *lines = file_lines(out);
    ck_assert_uint_eq(json_array_size(lines), N);
    char *seen = calloc(N, 1);
    for (size_t i = 0; i < N; i++) {
        json_t *j = line_json(lines, i);
        int k = -1;
        ck_assert(sscanf(json_string_value(json_object_get(j, "custom_id")), "req-%d", &k) == 1);
        ck_assert_msg(k >= 0 && k < N && !seen[k], "custom_id req-%d twice", k);
        seen[k] = 1;
        response_body(j, 200);
        json_decref(j);
    }
    free(seen);
    json_decref(lines);
    free(in), free(out), free(cfg);
}
END_TEST

Suite *suite_batch(void)
{
    Suite *s = suite_create("batch");
    TCase *tc = tcase_create("batch");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, NULL, serve_teardown);
    tcase_add_test(tc, spam_matches_hf_run_and_daemon);
    tcase_add_test(tc, text_column_jsonl_and_csv);
    tcase_add_test(tc, bad_lines_answered_in_place);
    tcase_add_test(tc, interrupted_job_resumes);
    tcase_add_test(tc, openai_batch_format);
    tcase_add_test(tc, openai_resume_by_custom_id);
    suite_add_tcase(s, tc);
    return s;
}
