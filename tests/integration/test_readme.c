/* test_readme: the README's walk-through, run as written, so that it cannot drift from the
 * program. README.md is read at test time and every fenced block is checked:
 *   - a line starting with "$ " is a command (continued while its lines end in '\'); the
 *     lines after it, up to the next "$ " or the fence, are its expected stdout. It runs in
 *     the source directory through /bin/sh with `build/` meaning the build directory and
 *     `localhost:PORT` meaning a daemon this test started for that port (the table below);
 *     an expected line holding "..." matches any text there, and a line of only "..." any
 *     number of lines; JSON lines compare as JSON with numbers within 1e-4 (relative);
 *   - any other line of an sh block that starts with `build/inferd CMD` or `make TARGET` is a
 *     synopsis: `inferd CMD --help` must exit 0, `make -n TARGET` must know the target;
 *   - a yaml block must be a valid config (config_parse, paths relative to config/).
 * A README that names a port the table does not know fails the test. */
#include <check.h>
#include <fnmatch.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "config.h"
#include "integration/serve_support.h"
#include "pipelines/task_table.h"
#include "suites.h"
#include "support/support.h"

/* The daemons the README's examples talk to, by the port they name. */
struct readme_daemon {
    int port;
    const char *what; /* for messages */
    struct daemon *d;
};
static struct readme_daemon daemons[] = {
    {8080, "make run's config (config/inferd.yaml)", NULL},
    {8081, "the chat fixture as text-generation", NULL},
    {8082, "the tool-calling fixture tools-qwen3 as text-generation", NULL},
};
#define N_DAEMONS (sizeof daemons / sizeof daemons[0])

static struct daemon *start_for(struct readme_daemon *rd)
{
    if (rd->d)
        return rd->d;
    if (rd->port == 8080) {
        struct daemon *d = daemon_new(NULL);
        char cfg[1024];
        snprintf(cfg, sizeof cfg, "%s/config/inferd.yaml", INFERD_SOURCE_DIR);
        const char *args[] = {"--config", cfg, "--host", "127.0.0.1", "--port", "0", NULL};
        daemon_exec(d, args);
        daemon_wait_listening(d, 30000);
        daemon_wait_ready(d, 60000);
        rd->d = d;
    } else {
        const char *model = rd->port == 8082 ? fixture_tool_model("tools-qwen3")
                                             : fixture_chat_model();
        const char *args[] = {"--model", model, "--task", "text-generation",
                              "--host", "127.0.0.1", "--port", "0", NULL};
        struct daemon *d = daemon_new(NULL);
        daemon_exec(d, args);
        daemon_wait_listening(d, 30000);
        daemon_wait_ready(d, 60000);
        rd->d = d;
    }
    return rd->d;
}

static void daemons_stop(void)
{
    for (size_t i = 0; i < N_DAEMONS; i++) {
        if (daemons[i].d) {
            daemon_shutdown(daemons[i].d);
            daemon_stop(daemons[i].d);
            daemons[i].d = NULL;
        }
    }
}

/* ---- substitutions ---- */

static void buf_str(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

/* cmd with `localhost:PORT` pointed at our daemons and `build/` at the build directory. */
static char *rewrite(const char *cmd)
{
    struct buf b = {0};
    buf_add(&b, "", 0);
    for (const char *p = cmd; *p;) {
        if (strncmp(p, "localhost:", 10) == 0) {
            int port = atoi(p + 10);
            struct readme_daemon *rd = NULL;
            for (size_t i = 0; i < N_DAEMONS; i++)
                if (daemons[i].port == port)
                    rd = &daemons[i];
            ck_assert_msg(rd, "README uses localhost:%d, which no test daemon serves: %s", port,
                          cmd);
            char host[40];
            snprintf(host, sizeof host, "127.0.0.1:%d", start_for(rd)->port);
            buf_str(&b, host);
            p += 10;
            while (*p >= '0' && *p <= '9')
                p++;
            continue;
        }
        bool word_start = p == cmd || p[-1] == ' ' || p[-1] == '(' || p[-1] == '|';
        if (word_start && strncmp(p, "build/", 6) == 0) {
            buf_str(&b, INFERD_BUILD_DIR "/");
            p += 6;
            continue;
        }
        buf_add(&b, p, 1);
        p++;
    }
    return b.p;
}

/* ---- running ---- */

/* The command's stdout as lines (a JSON array of strings) and its exit status. */
static json_t *run_shell(const char *cmd, int *status)
{
    char *full = NULL;
    ck_assert(asprintf(&full, "cd '%s' && %s 2>/dev/null", INFERD_SOURCE_DIR, cmd) > 0);
    FILE *f = popen(full, "r");
    ck_assert_ptr_nonnull(f);
    json_t *lines = json_array();
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        json_array_append_new(lines, json_stringn(line, (size_t)n));
    }
    free(line);
    *status = pclose(f);
    free(full);
    return lines;
}

static bool numbers_close(const json_t *a, const json_t *b)
{
    double x = json_number_value(a), y = json_number_value(b);
    return fabs(x - y) <= 1e-4 * fmax(1.0, fmax(fabs(x), fabs(y)));
}

static bool json_close(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return numbers_close(a, b);
    if (json_typeof(a) != json_typeof(b))
        return false;
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!json_close(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    }
    if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)a, k, v)
        {
            const json_t *w = json_object_get(b, k);
            if (!w || !json_close(v, w))
                return false;
        }
        return true;
    }
    return json_equal((json_t *)a, (json_t *)b);
}

/* An expected line against an actual one: "..." as a wildcard, JSON as JSON, else exact. */
static bool line_matches(const char *want, const char *got)
{
    if (strstr(want, "...")) {
        struct buf pat = {0};
        buf_add(&pat, "", 0);
        for (const char *p = want; *p;) {
            if (strncmp(p, "...", 3) == 0) {
                buf_str(&pat, "*");
                p += 3;
                continue;
            }
            if (strchr("*?[\\", *p))
                buf_str(&pat, "\\");
            buf_add(&pat, p, 1);
            p++;
        }
        bool ok = fnmatch(pat.p, got, 0) == 0;
        free(pat.p);
        return ok;
    }
    if (strcmp(want, got) == 0)
        return true;
    const char *w = strncmp(want, "data: ", 6) == 0 ? want + 6 : want;
    const char *g = strncmp(got, "data: ", 6) == 0 ? got + 6 : got;
    json_t *a = json_loads(w, JSON_DECODE_ANY, NULL), *b = json_loads(g, JSON_DECODE_ANY, NULL);
    bool ok = a && b && (w == want) == (g == got) && json_close(a, b);
    json_decref(a);
    json_decref(b);
    return ok;
}

/* want[i..] against got[j..]; a want line of only "..." takes any number of got lines. */
static bool lines_match(const json_t *want, size_t i, const json_t *got, size_t j)
{
    if (i == json_array_size(want))
        return j == json_array_size(got);
    const char *w = json_string_value(json_array_get(want, i));
    if (strcmp(w, "...") == 0) {
        for (size_t k = j; k <= json_array_size(got); k++)
            if (lines_match(want, i + 1, got, k))
                return true;
        return false;
    }
    if (j == json_array_size(got))
        return false;
    return line_matches(w, json_string_value(json_array_get(got, j))) &&
           lines_match(want, i + 1, got, j + 1);
}

/* ---- the README ---- */

struct block {
    char lang[16];
    json_t *lines; /* strings */
    int line;      /* of the opening fence, 1-based */
};

static size_t read_blocks(struct block *out, size_t cap)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/README.md", INFERD_SOURCE_DIR);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f, "cannot read %s", path);
    size_t n = 0;
    struct block *cur = NULL;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    int lineno = 0;
    while ((len = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (strncmp(line, "```", 3) == 0) {
            if (cur) {
                cur = NULL;
                continue;
            }
            ck_assert_uint_lt(n, cap);
            cur = &out[n++];
            snprintf(cur->lang, sizeof cur->lang, "%s", line + 3);
            cur->lines = json_array();
            cur->line = lineno;
            continue;
        }
        if (cur)
            json_array_append_new(cur->lines, json_string(line));
    }
    free(line);
    fclose(f);
    return n;
}

/* Runs the "$ " commands of block b; returns how many. */
static int run_commands(const struct block *b)
{
    int ran = 0;
    size_t n = json_array_size(b->lines);
    for (size_t i = 0; i < n;) {
        const char *l = json_string_value(json_array_get(b->lines, i));
        if (strncmp(l, "$ ", 2) != 0) {
            i++;
            continue;
        }
        struct buf cmd = {0};
        buf_str(&cmd, l + 2);
        while (cmd.n > 0 && cmd.p[cmd.n - 1] == '\\' && ++i < n) {
            cmd.p[--cmd.n] = '\0';
            buf_str(&cmd, json_string_value(json_array_get(b->lines, i)));
        }
        json_t *want = json_array();
        for (i++; i < n; i++) {
            const char *o = json_string_value(json_array_get(b->lines, i));
            if (strncmp(o, "$ ", 2) == 0)
                break;
            json_array_append_new(want, json_string(o));
        }
        char *real = rewrite(cmd.p);
        int status = 0;
        json_t *got = run_shell(real, &status);
        char *wt = json_dumps(want, JSON_INDENT(1)), *gt = json_dumps(got, JSON_INDENT(1));
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "README.md:%d: `%s` exited with status %d", b->line, cmd.p, status);
        ck_assert_msg(lines_match(want, 0, got, 0),
                      "README.md:%d: `%s`\nexpected:\n%s\ngot:\n%s", b->line, cmd.p, wt, gt);
        free(wt);
        free(gt);
        json_decref(want);
        json_decref(got);
        free(real);
        free(cmd.p);
        ran++;
    }
    return ran;
}

/* Synopsis lines of an sh block: the subcommand answers --help, the make target exists. */
static int check_synopses(const struct block *b)
{
    int checked = 0;
    for (size_t i = 0; i < json_array_size(b->lines); i++) {
        const char *l = json_string_value(json_array_get(b->lines, i));
        char word[64] = "", *cmd = NULL;
        if (sscanf(l, "build/inferd %63s", word) == 1 && word[0] != '-')
            ck_assert(asprintf(&cmd, "'%s/inferd' %s --help >/dev/null", INFERD_BUILD_DIR,
                               word) > 0);
        else if (sscanf(l, "make %63[a-z-]", word) == 1)
            ck_assert(asprintf(&cmd, "make -n -C '%s' %s >/dev/null", INFERD_SOURCE_DIR, word) >
                      0);
        else
            continue;
        int status = system(cmd);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "README.md:%d: `%s` is not a command the tree has (%s)", b->line, l, cmd);
        free(cmd);
        checked++;
    }
    return checked;
}

static void check_yaml(const struct block *b)
{
    struct buf y = {0};
    buf_add(&y, "", 0);
    for (size_t i = 0; i < json_array_size(b->lines); i++) {
        buf_str(&y, json_string_value(json_array_get(b->lines, i)));
        buf_str(&y, "\n");
    }
    struct config cfg = {0};
    struct err e = {0};
    const struct config_tasks tasks = {.id = task_by_name, .list = task_list};
    int rc = config_parse(y.p, y.n, "README.md", INFERD_SOURCE_DIR "/config", &tasks, &cfg, &e);
    ck_assert_msg(rc == 0, "README.md:%d: the YAML block is not a valid config: %s", b->line,
                  e.msg);
    config_free(&cfg);
    free(y.p);
}

START_TEST(readme_walkthrough)
{
    struct block blocks[128];
    size_t n = read_blocks(blocks, 128);
    int ran = 0, synopses = 0, yamls = 0;
    for (size_t i = 0; i < n; i++) {
        const struct block *b = &blocks[i];
        if (strcmp(b->lang, "yaml") == 0) {
            check_yaml(b);
            yamls++;
        } else if (strcmp(b->lang, "sh") == 0 || b->lang[0] == '\0') {
            ran += run_commands(b);
            if (strcmp(b->lang, "sh") == 0)
                synopses += check_synopses(b);
        }
        json_decref(b->lines);
    }
    fprintf(stderr, "readme: %d commands run, %d synopses, %d configs\n", ran, synopses, yamls);
    ck_assert_int_gt(ran, 3);
    daemons_stop();
}
END_TEST

Suite *suite_readme(void)
{
    Suite *s = suite_create("readme");
    TCase *tc = tcase_create("walkthrough");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, NULL, serve_teardown);
    tcase_add_test(tc, readme_walkthrough);
    suite_add_tcase(s, tc);
    return s;
}
