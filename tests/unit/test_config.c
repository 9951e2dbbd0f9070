/* test_config: the YAML config loader. The shipped files (config/example.yaml, inferd.yaml)
 * load with their documented values; defaults fill what is left out; relative model paths
 * join the file's directory; every kind of mistake is refused with the exact
 * "FILE:LINE:COL: message"; every prefix of the example file fails cleanly or loads (no leak,
 * no crash under ASan); config_single and model_config_same; API keys merged from the list, a
 * key file and an environment variable, and server.tls's files, with their errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "pipelines/task_table.h"
#include "suites.h"
#include "support/support.h"

/* The task names the daemon hands the loader: the engine's task table. */
static const struct config_tasks tasks = {.id = task_by_name, .list = task_list};

/* A valid models list (lines 1-4) to append after a server section or before other keys. */
#define MODELS "models:\n  - name: a\n    path: b\n    task: ner\n"

static int parse(const char *yaml, struct config *c, struct err *e)
{
    return config_parse(yaml, strlen(yaml), "t.yaml", NULL, &tasks, c, e);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void assert_defaults(const struct config *c)
{
    const struct server_config *s = &c->server;
    ck_assert_str_eq(s->host, "0.0.0.0");
    ck_assert_int_eq(s->port, 8080);
    ck_assert_uint_eq(s->max_body_bytes, 4194304);
    ck_assert_int_eq(s->request_timeout_ms, 30000);
    ck_assert_uint_eq(s->n_api_keys, 0);
    ck_assert_int_eq(s->http_threads, 2);
    ck_assert_uint_eq(s->max_connections, 1024);
    ck_assert_ptr_null(s->api_keys_file);
    ck_assert_ptr_null(s->api_keys_env);
    ck_assert_ptr_null(s->tls.cert);
    ck_assert_ptr_null(s->tls.key);
    ck_assert_str_eq(s->log_format, "text");
    ck_assert_str_eq(s->log_level, "info");
    ck_assert(!s->allow_partial_start);
    for (size_t i = 0; i < c->n_models; i++) {
        const struct model_config *m = &c->models[i];
        ck_assert_int_eq(m->dtype, CONFIG_DTYPE_FP32);
        ck_assert_int_eq(m->workers, 1);
        ck_assert_int_eq(m->threads, 0);
        ck_assert_uint_eq(m->max_input_tokens, 0);
        ck_assert_uint_eq(m->batching.max_batch_size, 32);
        ck_assert_uint_eq(m->batching.max_batch_tokens, 16384);
        ck_assert_int_eq(m->batching.max_queue_delay_us, 2000);
        ck_assert_uint_eq(m->batching.max_queue_size, 1024);
        ck_assert_uint_eq(m->generation.max_total_tokens, 0);
        ck_assert_uint_eq(m->generation.max_batch_total_tokens, 16384);
        ck_assert_uint_eq(m->generation.max_batch_prefill_tokens, 512);
        ck_assert(m->generation.prefix_cache);
        ck_assert_uint_eq(m->limits.max_client_batch_size, 32);
        ck_assert_uint_eq(m->limits.max_request_tokens, 0);
        ck_assert_uint_eq(m->limits.max_results, 1024);
    }
}

START_TEST(example_file_loads)
{
    const char *path = INFERD_SOURCE_DIR "/config/example.yaml";
    struct config c;
    struct err e = {0};
    ck_assert_msg(config_load(path, &tasks, &c, &e) == 0, "%s", e.msg);
    ck_assert_str_eq(c.path, path);
    /* The example spells out every default. */
    assert_defaults(&c);
    ck_assert_uint_eq(c.n_models, 1);
    const struct model_config *m = &c.models[0];
    ck_assert_str_eq(m->name, "spam");
    ck_assert_str_eq(m->path, INFERD_SOURCE_DIR "/config/../models/spam-bert-tiny");
    ck_assert_str_eq(m->task, "text-classification");
    ck_assert_int_eq(m->line, 39);
    ck_assert_int_eq(m->column, 5);
    config_free(&c);
}
END_TEST

START_TEST(default_file_loads)
{
    const char *path = INFERD_SOURCE_DIR "/config/inferd.yaml";
    struct config c;
    struct err e = {0};
    ck_assert_msg(config_load(path, &tasks, &c, &e) == 0, "%s", e.msg);
    assert_defaults(&c);
    ck_assert_uint_eq(c.n_models, 1);
    ck_assert_str_eq(c.models[0].name, "spam");
    ck_assert_str_eq(c.models[0].path, INFERD_SOURCE_DIR "/config/../models/spam-bert-tiny");
    ck_assert_str_eq(c.models[0].task, "text-classification");
    config_free(&c);
}
END_TEST

START_TEST(defaults_apply)
{
    struct config c;
    struct err e = {0};
    ck_assert_msg(parse(MODELS, &c, &e) == 0, "%s", e.msg);
    ck_assert_ptr_null(c.path);
    assert_defaults(&c);
    ck_assert_str_eq(c.models[0].name, "a");
    ck_assert_str_eq(c.models[0].path, "b");
    ck_assert_str_eq(c.models[0].task, "ner"); /* an alias, kept as written */
    ck_assert_int_eq(c.models[0].line, 2);
    ck_assert_int_eq(c.models[0].column, 5);
    config_free(&c);
    /* null, ~ and an empty value all mean "default". */
    const char *nulls = "server:\n  port: ~\n  host: null\n  api_keys:\n" MODELS
                        "    batching: ~\n    workers: Null\n";
    ck_assert_msg(parse(nulls, &c, &e) == 0, "%s", e.msg);
    assert_defaults(&c);
    config_free(&c);
    ck_assert_msg(parse("server:\n" MODELS, &c, &e) == 0, "%s", e.msg);
    assert_defaults(&c);
    config_free(&c);
}
END_TEST

START_TEST(every_key_set)
{
    const char *yaml = "---\n"
                       "server:\n"
                       "  host: 127.0.0.1\n"
                       "  port: 0\n"
                       "  max_body_bytes: 1024\n"
                       "  request_timeout_ms: 1\n"
                       "  api_keys: [k1, \"k-2\"]\n"
                       "  http_threads: 64\n"
                       "  max_connections: 7\n"
                       "  allow_partial_start: true\n"
                       "models:\n"
                       "  - {name: m1, path: /abs/m1, task: sentiment-analysis, dtype: int8}\n"
                       "  - name: M_2.x-y\n"
                       "    path: 'rel/m2'\n"
                       "    task: \"feature-extraction\"\n"
                       "    dtype: bf16\n"
                       "    workers: 64\n"
                       "    threads: 1024\n"
                       "    max_input_tokens: 128\n"
                       "    batching:\n"
                       "      max_batch_size: 1\n"
                       "      max_batch_tokens: 99999999999\n"
                       "      max_queue_delay_us: 0\n"
                       "      max_queue_size: 5\n"
                       "    generation:\n"
                       "      max_total_tokens: 1048576\n"
                       "      max_batch_total_tokens: 1\n"
                       "      max_batch_prefill_tokens: 3\n"
                       "      prefix_cache: false\n"
                       "...\n";
    struct config c;
    struct err e = {0};
    ck_assert_msg(config_parse(yaml, strlen(yaml), "t.yaml", "/etc/inferd", &tasks, &c, &e) == 0,
                  "%s",
                  e.msg);
    const struct server_config *s = &c.server;
    ck_assert_str_eq(s->host, "127.0.0.1");
    ck_assert_int_eq(s->port, 0);
    ck_assert_uint_eq(s->max_body_bytes, 1024);
    ck_assert_int_eq(s->request_timeout_ms, 1);
    ck_assert_uint_eq(s->n_api_keys, 2);
    ck_assert_str_eq(s->api_keys[0], "k1");
    ck_assert_str_eq(s->api_keys[1], "k-2");
    ck_assert_int_eq(s->http_threads, 64);
    ck_assert_uint_eq(s->max_connections, 7);
    ck_assert(s->allow_partial_start);
    ck_assert_uint_eq(c.n_models, 2);
    const struct model_config *a = &c.models[0], *b = &c.models[1];
    ck_assert_str_eq(a->name, "m1");
    ck_assert_str_eq(a->path, "/abs/m1");
    ck_assert_str_eq(a->task, "sentiment-analysis");
    ck_assert_int_eq(a->dtype, CONFIG_DTYPE_INT8);
    ck_assert_int_eq(a->line, 12);
    ck_assert_int_eq(a->column, 5);
    ck_assert_uint_eq(a->batching.max_batch_size, 32);
    ck_assert_str_eq(b->name, "M_2.x-y");
    ck_assert_str_eq(b->path, "/etc/inferd/rel/m2");
    ck_assert_str_eq(b->task, "feature-extraction");
    ck_assert_int_eq(b->dtype, CONFIG_DTYPE_BF16);
    ck_assert_int_eq(b->workers, 64);
    ck_assert_int_eq(b->threads, 1024);
    ck_assert_uint_eq(b->max_input_tokens, 128);
    ck_assert_uint_eq(b->batching.max_batch_size, 1);
    ck_assert_uint_eq(b->batching.max_batch_tokens, 99999999999u);
    ck_assert_int_eq(b->batching.max_queue_delay_us, 0);
    ck_assert_uint_eq(b->batching.max_queue_size, 5);
    ck_assert_uint_eq(b->generation.max_total_tokens, 1048576);
    ck_assert_uint_eq(b->generation.max_batch_total_tokens, 1);
    ck_assert_uint_eq(b->generation.max_batch_prefill_tokens, 3);
    ck_assert_uint_eq(a->generation.max_batch_prefill_tokens, 512);
    ck_assert(!b->generation.prefix_cache);
    ck_assert(a->generation.prefix_cache);
    ck_assert_int_eq(b->line, 13);
    config_free(&c);
}
END_TEST

START_TEST(relative_paths)
{
    const char *yaml = "models:\n  - {name: a, path: models/x, task: ner}\n"
                       "  - {name: b, path: /abs/y, task: ner}\n";
    struct config c;
    struct err e = {0};
    ck_assert_int_eq(config_parse(yaml, strlen(yaml), "t", "/srv/", &tasks, &c, &e), 0);
    ck_assert_str_eq(c.models[0].path, "/srv/models/x");
    ck_assert_str_eq(c.models[1].path, "/abs/y");
    config_free(&c);
    ck_assert_int_eq(config_parse(yaml, strlen(yaml), "t", NULL, &tasks, &c, &e), 0);
    ck_assert_str_eq(c.models[0].path, "models/x");
    config_free(&c);
    /* From a file: its directory. */
    char dir[512], file[600], want[600];
    snprintf(dir, sizeof dir, "%s/sub", temp_dir());
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    snprintf(file, sizeof file, "%s/inferd.yaml", dir);
    write_text(file, yaml);
    ck_assert_msg(config_load(file, &tasks, &c, &e) == 0, "%s", e.msg);
    snprintf(want, sizeof want, "%s/models/x", dir);
    ck_assert_str_eq(c.models[0].path, want);
    ck_assert_str_eq(c.path, file);
    config_free(&c);
}
END_TEST

/* Each mistake, with the exact message (t.yaml:LINE:COL: ...). */
static const struct {
    const char *yaml, *msg;
} bad[] = {
    /* unknown keys */
    {MODELS "    workrs: 2\n", "t.yaml:5:5: unknown key 'workrs' in models[0] (expected one of: "
                               "name, path, revision, task, dtype, workers, threads, "
                               "max_input_tokens, tool_parser, batching, generation, "
                               "limits)"},
    {"server:\n  prot: 1\n" MODELS, "t.yaml:2:3: unknown key 'prot' in server (expected one of: "
                                    "host, port, max_body_bytes, request_timeout_ms, api_keys, "
                                    "api_keys_file, api_keys_env, http_threads, max_connections, "
                                    "tls, work_threads, max_connections_per_ip, idle_timeout_ms, "
                                    "read_timeout_ms, log_format, log_level, allow_partial_start)"},
    {"server:\n  tls: {chain: c}\n" MODELS,
     "t.yaml:2:9: unknown key 'chain' in server.tls (expected one of: cert, key)"},
    {MODELS "    batching:\n      max_delay: 5\n",
     "t.yaml:6:7: unknown key 'max_delay' in models[0].batching (expected one of: "
     "max_batch_size, max_batch_tokens, max_queue_delay_us, max_queue_size)"},
    {MODELS "    generation:\n      max_new_tokens: 5\n",
     "t.yaml:6:7: unknown key 'max_new_tokens' in models[0].generation (expected one of: "
     "max_total_tokens, max_batch_total_tokens, max_batch_prefill_tokens, prefix_cache)"},
    {MODELS "model: x\n",
     "t.yaml:5:1: unknown key 'model' at the top level (expected one of: server, models)"},
    /* integers */
    {"server:\n  port: eighty\n" MODELS,
     "t.yaml:2:9: server.port must be an integer in 0..65535, not 'eighty'"},
    {"server:\n  port: \"8080\"\n" MODELS,
     "t.yaml:2:9: server.port must be an integer in 0..65535, not the quoted string '8080'"},
    {"server:\n  port: 65536\n" MODELS,
     "t.yaml:2:9: server.port must be an integer in 0..65535, not '65536'"},
    {"server:\n  port: -1\n" MODELS,
     "t.yaml:2:9: server.port must be an integer in 0..65535, not '-1'"},
    {"server:\n  port: 80.0\n" MODELS,
     "t.yaml:2:9: server.port must be an integer in 0..65535, not '80.0'"},
    {"server:\n  port: 080\n" MODELS,
     "t.yaml:2:9: server.port must be an integer in 0..65535, not '080'"},
    {"server:\n  port: [80]\n" MODELS,
     "t.yaml:2:9: server.port must be an integer in 0..65535, not a list"},
    {"server:\n  port: true\n" MODELS,
     "t.yaml:2:9: server.port must be an integer in 0..65535, not 'true'"},
    /* booleans */
    {"server:\n  allow_partial_start: yes\n" MODELS,
     "t.yaml:2:24: server.allow_partial_start must be true or false, not 'yes'"},
    {"server:\n  allow_partial_start: \"true\"\n" MODELS,
     "t.yaml:2:24: server.allow_partial_start must be true or false, not the quoted string "
     "'true'"},
    {"server:\n  allow_partial_start: 1\n" MODELS,
     "t.yaml:2:24: server.allow_partial_start must be true or false, not '1'"},
    {"server:\n  max_body_bytes: 1023\n" MODELS,
     "t.yaml:2:19: server.max_body_bytes must be an integer >= 1024, not '1023'"},
    {"server:\n  max_body_bytes: 99999999999999999999\n" MODELS,
     "t.yaml:2:19: server.max_body_bytes must be an integer >= 1024, not '99999999999999999999'"},
    {"server:\n  request_timeout_ms: 0\n" MODELS,
     "t.yaml:2:23: server.request_timeout_ms must be an integer in 1..86400000, not '0'"},
    {"server:\n  http_threads: 65\n" MODELS,
     "t.yaml:2:17: server.http_threads must be an integer in 1..64, not '65'"},
    {MODELS "    workers: 0\n",
     "t.yaml:5:14: models[0].workers must be an integer in 1..64, not '0'"},
    {MODELS "    threads: 1025\n",
     "t.yaml:5:14: models[0].threads must be an integer in 0..1024, not '1025'"},
    {MODELS "    max_input_tokens: {n: 1}\n",
     "t.yaml:5:23: models[0].max_input_tokens must be an integer >= 0, not a mapping"},
    {MODELS "    batching: {max_batch_size: 0}\n",
     "t.yaml:5:32: models[0].batching.max_batch_size must be an integer >= 1, not '0'"},
    {MODELS "    batching:\n      max_queue_delay_us: 10000001\n",
     "t.yaml:6:27: models[0].batching.max_queue_delay_us must be an integer in 0..10000000, not "
     "'10000001'"},
    {MODELS "    generation: {max_total_tokens: 1048577}\n",
     "t.yaml:5:36: models[0].generation.max_total_tokens must be an integer in 0..1048576, not "
     "'1048577'"},
    {MODELS "    generation: {max_total_tokens: -1}\n",
     "t.yaml:5:36: models[0].generation.max_total_tokens must be an integer in 0..1048576, not "
     "'-1'"},
    {MODELS "    generation:\n      max_batch_total_tokens: 0\n",
     "t.yaml:6:31: models[0].generation.max_batch_total_tokens must be an integer >= 1, not '0'"},
    {MODELS "    generation:\n      max_batch_total_tokens: 16k\n",
     "t.yaml:6:31: models[0].generation.max_batch_total_tokens must be an integer >= 1, not "
     "'16k'"},
    {MODELS "    generation:\n      max_batch_prefill_tokens: 0\n",
     "t.yaml:6:33: models[0].generation.max_batch_prefill_tokens must be an integer in "
     "1..1048576, not '0'"},
    {MODELS "    generation:\n      max_batch_prefill_tokens: 2000000\n",
     "t.yaml:6:33: models[0].generation.max_batch_prefill_tokens must be an integer in "
     "1..1048576, not '2000000'"},
    {MODELS "    generation:\n      prefix_cache: 1\n",
     "t.yaml:6:21: models[0].generation.prefix_cache must be true or false, not '1'"},
    {MODELS "    generation: 512\n",
     "t.yaml:5:17: models[0].generation must be a mapping, not '512'"},
    /* strings and names */
    {MODELS "    dtype: fp64\n",
     "t.yaml:5:12: models[0].dtype must be fp32, bf16, int8 or int4, not 'fp64'"},
    {MODELS "    dtype: [fp32]\n",
     "t.yaml:5:12: models[0].dtype must be fp32, bf16, int8 or int4, not a list"},
    {"models:\n  - {name: a, path: b, task: image-to-text}\n",
     "t.yaml:2:30: models[0].task 'image-to-text' is not a task (text-classification, "
     "token-classification, question-answering, fill-mask, zero-shot-classification, "
     "feature-extraction, sentence-embeddings, text-generation, text2text-generation, "
     "summarization, translation)"},
    {"models:\n  - {name: a b, path: b, task: ner}\n",
     "t.yaml:2:12: models[0].name must be 1 to 64 letters, digits, '.', '_' or '-', not 'a b'"},
    {"models:\n  - {name: a/b, path: b, task: ner}\n",
     "t.yaml:2:12: models[0].name must be 1 to 64 letters, digits, '.', '_' or '-', not 'a/b'"},
    {"models:\n  - {name: "
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, path: b, task: ner}\n",
     "t.yaml:2:12: models[0].name must be 1 to 64 letters, digits, '.', '_' or '-', not "
     "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'"},
    {"models:\n  - {name: a, path: '', task: ner}\n",
     "t.yaml:2:21: models[0].path must be a non-empty string, not ''"},
    {"models:\n  - {name: a, path: [b], task: ner}\n",
     "t.yaml:2:21: models[0].path must be a non-empty string, not a list"},
    {"models:\n  - {name: \"a\\0b\", path: b, task: ner}\n",
     "t.yaml:2:12: models[0].name must not contain NUL characters"},
    {"server:\n  host: ''\n" MODELS, "t.yaml:2:9: server.host must be a non-empty string, not ''"},
    {"server:\n  api_keys: secret\n" MODELS,
     "t.yaml:2:13: server.api_keys must be a list of strings, not 'secret'"},
    {"server:\n  api_keys: [ok, 'two words']\n" MODELS,
     "t.yaml:2:18: server.api_keys[1] must not contain spaces or control characters"},
    {"server:\n  api_keys:\n    - ok\n    -\n" MODELS,
     "t.yaml:4:6: server.api_keys[1] must be a non-empty string, not null"},
    /* key sources and TLS files (those that need real files: key_sources, tls_files) */
    {"server:\n  api_keys_file: /nonexistent/keys\n" MODELS,
     "t.yaml:2:18: server.api_keys_file '/nonexistent/keys' cannot be read: No such file or "
     "directory"},
    {"server:\n  api_keys_file: /\n" MODELS,
     "t.yaml:2:18: server.api_keys_file '/' is not a key file (not a regular file)"},
    {"server:\n  api_keys_file: [a]\n" MODELS,
     "t.yaml:2:18: server.api_keys_file must be a non-empty string, not a list"},
    {"server:\n  api_keys_env: INFERD_TEST_NEVER_SET\n" MODELS,
     "t.yaml:2:17: server.api_keys_env: the environment variable INFERD_TEST_NEVER_SET is not "
     "set"},
    {"server:\n  api_keys_env: 1KEYS\n" MODELS,
     "t.yaml:2:17: server.api_keys_env must be an environment variable name (letters, digits "
     "and '_', not starting with a digit), not '1KEYS'"},
    {"server:\n  api_keys_env: $KEYS\n" MODELS,
     "t.yaml:2:17: server.api_keys_env must be an environment variable name (letters, digits "
     "and '_', not starting with a digit), not '$KEYS'"},
    {"server:\n  api_keys_env: ''\n" MODELS,
     "t.yaml:2:17: server.api_keys_env must be a non-empty string, not ''"},
    {"server:\n  tls: {}\n" MODELS, "t.yaml:2:8: server.tls: missing required key 'cert'"},
    {"server:\n  tls: on\n" MODELS, "t.yaml:2:8: server.tls must be a mapping, not 'on'"},
    {"server:\n  tls:\n    cert: /nonexistent/cert.pem\n    key: k.pem\n" MODELS,
     "t.yaml:3:11: server.tls.cert '/nonexistent/cert.pem' cannot be read: No such file or "
     "directory"},
    {"server:\n  tls:\n    key: /\n" MODELS, "t.yaml:3:10: server.tls.key '/' is not a file"},
    {"server:\n  tls:\n    cert:\n" MODELS,
     "t.yaml:3:10: server.tls.cert must be a non-empty string, not null"},
    /* required keys and sections */
    {"models:\n  - name: a\n    path: b\n", "t.yaml:2:5: models[0]: missing required key 'task'"},
    {MODELS "  - name: b\n    task: ner\n", "t.yaml:5:5: models[1]: missing required key 'path'"},
    {"models:\n  - name: a\n    path: b\n    task:\n",
     "t.yaml:4:10: models[0].task must be a non-empty string, not null"},
    {"server:\n  port: 1\n", "t.yaml:1:1: missing required key 'models'"},
    {"models:\n", "t.yaml:1:8: models must be a list of at least one model (name, path, task), "
                  "not null"},
    {"models: []\n", "t.yaml:1:9: models must be a list of at least one model (name, path, "
                     "task), not an empty list"},
    {"models: spam\n", "t.yaml:1:9: models must be a list of at least one model (name, path, "
                       "task), not 'spam'"},
    {"models:\n  - spam\n",
     "t.yaml:2:5: models[0] must be a mapping with name, path and task, not 'spam'"},
    {"server: 8080\n" MODELS, "t.yaml:1:9: server must be a mapping, not '8080'"},
    {MODELS "    batching: []\n", "t.yaml:5:15: models[0].batching must be a mapping, not a list"},
    /* duplicates */
    {"server:\n  port: 1\n  port: 2\n" MODELS,
     "t.yaml:3:3: duplicate key 'port' in server (first at line 2)"},
    {MODELS "    name: b\n", "t.yaml:5:5: duplicate key 'name' in models[0] (first at line 2)"},
    {MODELS MODELS, "t.yaml:5:1: duplicate key 'models' (first at line 1)"},
    {MODELS "  - name: x\n    path: c\n    task: ner\n  - name: a\n    path: d\n    task: ner\n",
     "t.yaml:8:11: models[2].name 'a' is used twice (first at line 2)"},
    /* documents and YAML features */
    {"", "t.yaml:1:1: the config is empty (it needs a 'models' list)"},
    {"# nothing\n\n", "t.yaml:1:1: the config is empty (it needs a 'models' list)"},
    {"---\n", "t.yaml:2:1: the config is empty (it needs a 'models' list)"},
    {"~\n", "t.yaml:1:1: the config is empty (it needs a 'models' list)"},
    {"- a\n", "t.yaml:1:1: the config must be a mapping with 'models' (and 'server'), not a list"},
    {"models\n", "t.yaml:1:1: the config must be a mapping with 'models' (and 'server'), not "
                 "'models'"},
    {MODELS "---\n" MODELS,
     "t.yaml:5:1: a second YAML document: the config must be a single document"},
    {"models: &m\n  - {name: a, path: b, task: ner}\n",
     "t.yaml:1:9: anchors (&name) are not supported in the config"},
    {"x: &p b\n", "t.yaml:1:4: anchors (&name) are not supported in the config"},
    {MODELS "    workers: *w\n", "t.yaml:5:14: aliases (*name) are not supported in the config"},
    {MODELS "    workers: !!int 2\n", "t.yaml:5:14: tags (!!type) are not supported in the config"},
    {"? [a]\n: b\n", "t.yaml:1:3: a key must be a plain name, not a collection"},
    {"models: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
     "t.yaml:1:40: nested too deeply"},
    /* syntax, from libyaml */
    {"models:\n\t- name: a\n",
     "t.yaml:2:1: YAML syntax error: a tab in the indentation (YAML indents with spaces only)"},
    {"models:\n  - name: a\n   path: b\n",
     "t.yaml:3:4: YAML syntax error: did not find expected '-' indicator while parsing a block "
     "collection at line 2 (check the indentation)"},
    {"models:\n  - name: a\n     path: b\n",
     "t.yaml:3:10: YAML syntax error: mapping values are not allowed in this context (check the "
     "indentation)"},
    {"models: [a, b\n", "t.yaml:2:1: YAML syntax error: did not find expected ',' or ']' while "
                        "parsing a flow sequence at line 1"},
    {"models:\n  - name: \"a\n", "t.yaml:3:1: YAML syntax error: found unexpected end of stream "
                                 "while scanning a quoted scalar at line 2"},
    {"models:\n  - name: a\xff\n", "t.yaml:2:12: YAML syntax error: invalid leading UTF-8 octet"},
    {"server:\n  log_format: xml\n" MODELS,
     "t.yaml:2:15: server.log_format must be text | json, not 'xml'"},
    {"server:\n  log_level: verbose\n" MODELS,
     "t.yaml:2:14: server.log_level must be debug | info | warn | error, not 'verbose'"},
    {"server:\n  log_level: INFO\n" MODELS,
     "t.yaml:2:14: server.log_level must be debug | info | warn | error, not 'INFO'"},
    {MODELS "    tool_parser: pythonic\n",
     "t.yaml:5:18: models[0].tool_parser must be llama3_json | hermes | mistral, not 'pythonic'"},
};

START_TEST(errors)
{
    struct config c;
    struct err e = {0};
    int rc = parse(bad[_i].yaml, &c, &e);
    ck_assert_msg(rc == ERR_INVALID, "case %d: rc %d (%s)", _i, rc, rc ? e.msg : "loaded");
    ck_assert_str_eq(e.msg, bad[_i].msg);
    /* Nothing is left behind. */
    ck_assert_ptr_null(c.models);
    ck_assert_ptr_null(c.server.host);
    ck_assert_uint_eq(c.n_models, 0);
}
END_TEST

START_TEST(file_errors)
{
    struct config c;
    struct err e = {0};
    ck_assert_int_eq(config_load("/nonexistent/inferd.yaml", &tasks, &c, &e), ERR_IO);
    ck_assert_str_eq(e.msg, "/nonexistent/inferd.yaml: cannot read: No such file or directory");
    const char *dir = temp_dir();
    ck_assert_int_eq(config_load(dir, &tasks, &c, &e), ERR_IO);
    /* Messages start with the path as given. */
    char file[600], want[700];
    snprintf(file, sizeof file, "%s/inferd.yaml", dir);
    write_text(file, "server:\n  port: eighty\n" MODELS);
    ck_assert_int_eq(config_load(file, &tasks, &c, &e), ERR_INVALID);
    snprintf(want, sizeof want, "%s:2:9: server.port must be an integer in 0..65535, not 'eighty'",
             file);
    ck_assert_str_eq(e.msg, want);
    ck_assert_ptr_null(c.path);
}
END_TEST

/* Every prefix of the example file either loads or fails with a located message. */
START_TEST(every_prefix_of_example)
{
    size_t len = 0;
    char *text = read_file(INFERD_SOURCE_DIR "/config/example.yaml", &len);
    ck_assert_ptr_nonnull(text);
    int n_ok = 0;
    for (size_t n = 0; n <= len; n++) {
        struct config c;
        struct err e = {0};
        int rc = config_parse(text, n, "ex.yaml", NULL, &tasks, &c, &e);
        if (rc == 0) {
            n_ok++;
            config_free(&c);
        } else {
            ck_assert_int_eq(rc, ERR_INVALID);
            ck_assert_msg(strncmp(e.msg, "ex.yaml:", 8) == 0, "%zu: %s", n, e.msg);
        }
    }
    ck_assert_int_gt(n_ok, 0);
    free(text);
}
END_TEST

START_TEST(many_models)
{
    char *yaml = malloc(200 * 64 + 16), *p = yaml;
    p += sprintf(p, "models:\n");
    for (int i = 0; i < 200; i++)
        p += sprintf(p, "  - {name: m%d, path: p%d, task: fill-mask}\n", i, i);
    struct config c;
    struct err e = {0};
    ck_assert_msg(parse(yaml, &c, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(c.n_models, 200);
    ck_assert_str_eq(c.models[199].name, "m199");
    ck_assert_int_eq(c.models[199].line, 201);
    config_free(&c);
    free(yaml);
}
END_TEST

START_TEST(single)
{
    struct config c;
    struct err e = {0};
    char dir[] = "models/spam-bert-tiny/";
    ck_assert_msg(config_single(dir, "sentiment-analysis", NULL, &tasks, &c, &e) == 0, "%s", e.msg);
    ck_assert_ptr_null(c.path);
    assert_defaults(&c);
    ck_assert_uint_eq(c.n_models, 1);
    ck_assert_str_eq(c.models[0].name, "spam-bert-tiny");
    ck_assert_str_eq(c.models[0].path, "models/spam-bert-tiny/");
    ck_assert_ptr_ne(c.models[0].path, dir); /* a copy */
    ck_assert_str_eq(c.models[0].task, "sentiment-analysis");
    config_free(&c);
    ck_assert_int_eq(config_single("/m/x", "ner", "custom", &tasks, &c, &e), 0);
    ck_assert_str_eq(c.models[0].name, "custom");
    config_free(&c);
    ck_assert_int_eq(config_single("/m/x", "image-to-text", NULL, &tasks, &c, &e), ERR_INVALID);
    ck_assert_str_eq(e.msg, "unknown task 'image-to-text' (tasks: text-classification, "
                            "token-classification, question-answering, fill-mask, "
                            "zero-shot-classification, feature-extraction, sentence-embeddings, "
                            "text-generation, text2text-generation, summarization, "
                            "translation)");
    ck_assert_ptr_null(c.models);
    ck_assert_int_eq(config_single("/m/x", "ner", "a b", &tasks, &c, &e), ERR_INVALID);
    ck_assert_str_eq(e.msg, "model name 'a b' must be 1 to 64 letters, digits, '.', '_' or '-'");
    ck_assert_int_eq(config_single("/", "ner", NULL, &tasks, &c, &e), ERR_INVALID);
    ck_assert_str_eq(e.msg, "model name '' must be 1 to 64 letters, digits, '.', '_' or '-' "
                            "(give one with --name)");
    ck_assert_ptr_null(c.models);
    config_free(&c); /* harmless on a zeroed config */
}
END_TEST

START_TEST(same_model)
{
    struct config a, b;
    struct err e = {0};
    ck_assert_int_eq(parse(MODELS
                           "  - {name: b, path: b, task: token-classification}\n"
                           "  - {name: c, path: b, task: ner, threads: 2}\n"
                           "  - {name: d, path: b, task: ner, dtype: bf16}\n"
                           "  - {name: e, path: c, task: ner}\n"
                           "  - {name: f, path: b, task: ner, batching: {max_batch_size: 1}}\n"
                           "  - {name: g, path: b, task: ner, workers: 2}\n"
                           "  - {name: h, path: b, task: ner, max_input_tokens: 64}\n"
                           "  - {name: i, path: b, task: ner, batching: {max_queue_size: 9}}\n"
                           "  - {name: j, path: b, task: fill-mask}\n"
                           "  - {name: k, path: b, task: ner, generation: {max_total_tokens: 9}}\n"
                           "  - {name: l, path: b, task: ner,\n"
                           "     generation: {max_batch_total_tokens: 9}}\n"
                           "  - {name: m, path: b, task: ner,\n"
                           "     generation: {max_batch_prefill_tokens: 9}}\n"
                           "  - {name: n, path: b, task: ner,\n"
                           "     generation: {max_batch_prefill_tokens: 512}}\n",
                           &a, &e),
                     0);
    ck_assert_int_eq(config_single("b", "ner", "other", &tasks, &b, &e), 0);
    ck_assert(model_config_same(&a.models[0], &a.models[0]));
    ck_assert(model_config_same(&a.models[0], &a.models[1])); /* alias == its task; names differ */
    ck_assert(model_config_same(&a.models[0], &b.models[0])); /* from the CLI too */
    /* the default written out is the same */
    ck_assert(model_config_same(&a.models[0], &a.models[a.n_models - 1]));
    for (size_t i = 2; i + 1 < a.n_models; i++)
        ck_assert_msg(!model_config_same(&a.models[0], &a.models[i]), "%s", a.models[i].name);
    config_free(&a);
    config_free(&b);
    /* the generation tasks are no pipeline tasks: still told apart */
    ck_assert_int_eq(parse("models:\n  - {name: g, path: b, task: text-generation}\n"
                           "  - {name: h, path: b, task: text2text-generation}\n"
                           "  - {name: i, path: b, task: text-generation}\n",
                           &a, &e),
                     0);
    ck_assert(!model_config_same(&a.models[0], &a.models[1]));
    ck_assert(model_config_same(&a.models[0], &a.models[2]));
    config_free(&a);
}
END_TEST

/* Loads DIR/inferd.yaml written with yaml; returns config_load's code. */
static int load_in(const char *dir, const char *yaml, struct config *c, struct err *e)
{
    char file[600];
    snprintf(file, sizeof file, "%s/inferd.yaml", dir);
    write_text(file, yaml);
    return config_load(file, &tasks, c, e);
}

/* "DIR/inferd.yaml:" followed by rest. */
static void assert_msg_in(const char *dir, const struct err *e, const char *rest)
{
    char want[2400];
    snprintf(want, sizeof want, "%s/inferd.yaml:%s", dir, rest);
    ck_assert_str_eq(e->msg, want);
}

static void remove_dir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(key_sources)
{
    const char *dir = temp_dir();
    char path[600], msg[1000];
    snprintf(path, sizeof path, "%s/keys.txt", dir);
    /* comments, blank lines, blanks around keys, CRLF, a repeat, no final newline */
    write_text(path, "# inferd keys\n\n  file-1\t\r\n\t# old: revoked-key\nk1\r\nfile-2\n"
                     "file-1\n   \nfile-3");
    setenv("INFERD_TEST_KEYS", " ,env-1,env-2  env-3\n\tfile-2,,", 1);
    struct config c;
    struct err e = {0};
    const char *yaml = "server:\n  api_keys: [k1, k2]\n  api_keys_file: keys.txt\n"
                       "  api_keys_env: INFERD_TEST_KEYS\n" MODELS;
    ck_assert_msg(load_in(dir, yaml, &c, &e) == 0, "%s", e.msg);
    static const char *const want[] = {"k1",     "k2",    "file-1", "file-2",
                                       "file-3", "env-1", "env-2",  "env-3"};
    ck_assert_uint_eq(c.server.n_api_keys, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < c.server.n_api_keys; i++)
        ck_assert_str_eq(c.server.api_keys[i], want[i]);
    ck_assert_str_eq(c.server.api_keys_file, path); /* joined to the file's directory */
    ck_assert_str_eq(c.server.api_keys_env, "INFERD_TEST_KEYS");
    config_free(&c);

    /* Either source alone, no list; an absolute path. */
    snprintf(msg, sizeof msg, "server:\n  api_keys_file: %s\n" MODELS, path);
    ck_assert_msg(load_in(dir, msg, &c, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(c.server.n_api_keys, 4);
    ck_assert_str_eq(c.server.api_keys[0], "file-1");
    ck_assert_str_eq(c.server.api_keys[1], "k1");
    config_free(&c);
    setenv("INFERD_TEST_KEYS", "only-one", 1);
    ck_assert_msg(load_in(dir, "server:\n  api_keys_env: INFERD_TEST_KEYS\n" MODELS, &c, &e) == 0,
                  "%s", e.msg);
    ck_assert_uint_eq(c.server.n_api_keys, 1);
    ck_assert_str_eq(c.server.api_keys[0], "only-one");
    config_free(&c);

    /* A configured source without a key stops the load and says which. */
    const char *from_file = "server:\n  api_keys_file: keys.txt\n" MODELS;
    write_text(path, "");
    ck_assert_int_eq(load_in(dir, from_file, &c, &e), ERR_INVALID);
    snprintf(msg, sizeof msg,
             "2:18: server.api_keys_file '%s' holds no key (one a line; blank lines and # "
             "comments are ignored)",
             path);
    assert_msg_in(dir, &e, msg);
    ck_assert_ptr_null(c.models);
    write_text(path, "# only a comment\n\n   \n");
    ck_assert_int_eq(load_in(dir, from_file, &c, &e), ERR_INVALID);
    assert_msg_in(dir, &e, msg);
    write_text(path, "good\n\ntwo words\n");
    ck_assert_int_eq(load_in(dir, from_file, &c, &e), ERR_INVALID);
    snprintf(msg, sizeof msg,
             "2:18: server.api_keys_file '%s' line 3: a key must not contain spaces or control "
             "characters",
             path);
    assert_msg_in(dir, &e, msg);
    write_text(path, "bell\a\n");
    ck_assert_int_eq(load_in(dir, from_file, &c, &e), ERR_INVALID);
    snprintf(msg, sizeof msg,
             "2:18: server.api_keys_file '%s' line 1: a key must not contain spaces or control "
             "characters",
             path);
    assert_msg_in(dir, &e, msg);
    /* a wrong path to something big (model weights) */
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(ftruncate(fileno(f), (1 << 20) + 1), 0);
    fclose(f);
    ck_assert_int_eq(load_in(dir, from_file, &c, &e), ERR_INVALID);
    snprintf(msg, sizeof msg, "2:18: server.api_keys_file '%s' is not a key file (over 1 MiB)",
             path);
    assert_msg_in(dir, &e, msg);
    snprintf(path, sizeof path, "%s/missing.txt", dir);
    ck_assert_int_eq(load_in(dir, "server:\n  api_keys_file: missing.txt\n" MODELS, &c, &e),
                     ERR_INVALID);
    snprintf(msg, sizeof msg,
             "2:18: server.api_keys_file '%s' cannot be read: No such file or directory", path);
    assert_msg_in(dir, &e, msg);

    const char *from_env = "server:\n  api_keys_env: INFERD_TEST_KEYS\n" MODELS;
    static const char *const empty[] = {"", " ", ",", " ,\t,\n"};
    for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++) {
        setenv("INFERD_TEST_KEYS", empty[i], 1);
        ck_assert_int_eq(load_in(dir, from_env, &c, &e), ERR_INVALID);
        assert_msg_in(dir, &e,
                      "2:17: server.api_keys_env: the environment variable INFERD_TEST_KEYS is "
                      "empty (keys separated by commas or spaces)");
    }
    setenv("INFERD_TEST_KEYS", "ok,ctrl\x01key", 1);
    ck_assert_int_eq(load_in(dir, from_env, &c, &e), ERR_INVALID);
    assert_msg_in(dir, &e,
                  "2:17: server.api_keys_env: the environment variable INFERD_TEST_KEYS holds a "
                  "key with control characters");
    unsetenv("INFERD_TEST_KEYS");
    ck_assert_int_eq(load_in(dir, from_env, &c, &e), ERR_INVALID);
    assert_msg_in(dir, &e,
                  "2:17: server.api_keys_env: the environment variable INFERD_TEST_KEYS is not "
                  "set");
    ck_assert_ptr_null(c.models);
    ck_assert_ptr_null(c.server.api_keys);
    remove_dir(dir);
}
END_TEST

START_TEST(tls_files)
{
    const char *dir = temp_dir();
    char sub[600], cert[700], key[700], msg[1600];
    snprintf(sub, sizeof sub, "%s/tls", dir);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    snprintf(cert, sizeof cert, "%s/cert.pem", sub);
    snprintf(key, sizeof key, "%s/key.pem", sub);
    write_text(cert, "-----BEGIN CERTIFICATE-----\n");
    write_text(key, "-----BEGIN PRIVATE KEY-----\n");
    struct config c;
    struct err e = {0};
    /* relative to the config's directory, like model paths */
    const char *yaml = "server:\n  tls:\n    cert: tls/cert.pem\n    key: tls/key.pem\n" MODELS;
    ck_assert_msg(load_in(dir, yaml, &c, &e) == 0, "%s", e.msg);
    ck_assert_str_eq(c.server.tls.cert, cert);
    ck_assert_str_eq(c.server.tls.key, key);
    config_free(&c);
    snprintf(msg, sizeof msg, "server:\n  tls: {cert: %s, key: %s}\n" MODELS, cert, key);
    ck_assert_msg(load_in(dir, msg, &c, &e) == 0, "%s", e.msg);
    ck_assert_str_eq(c.server.tls.cert, cert);
    config_free(&c);
    /* null: none */
    ck_assert_msg(load_in(dir, "server:\n  tls: ~\n" MODELS, &c, &e) == 0, "%s", e.msg);
    ck_assert_ptr_null(c.server.tls.cert);
    config_free(&c);

    /* both or neither */
    ck_assert_int_eq(load_in(dir, "server:\n  tls:\n    cert: tls/cert.pem\n" MODELS, &c, &e),
                     ERR_INVALID);
    assert_msg_in(dir, &e, "3:5: server.tls: missing required key 'key'");
    ck_assert_int_eq(load_in(dir, "server:\n  tls:\n    key: tls/key.pem\n" MODELS, &c, &e),
                     ERR_INVALID);
    assert_msg_in(dir, &e, "3:5: server.tls: missing required key 'cert'");
    /* missing, empty, a directory */
    ck_assert_int_eq(
        load_in(dir, "server:\n  tls:\n    cert: tls/cert.pem\n    key: tls/nokey.pem\n" MODELS, &c,
                &e),
        ERR_INVALID);
    snprintf(msg, sizeof msg,
             "4:10: server.tls.key '%s/nokey.pem' cannot be read: No such file or directory", sub);
    assert_msg_in(dir, &e, msg);
    write_text(key, "");
    ck_assert_int_eq(load_in(dir, yaml, &c, &e), ERR_INVALID);
    snprintf(msg, sizeof msg, "4:10: server.tls.key '%s' is empty (a PEM file is expected)", key);
    assert_msg_in(dir, &e, msg);
    ck_assert_int_eq(
        load_in(dir, "server:\n  tls:\n    cert: tls\n    key: tls/key.pem\n" MODELS, &c, &e),
        ERR_INVALID);
    snprintf(msg, sizeof msg, "3:11: server.tls.cert '%s' is not a file", sub);
    assert_msg_in(dir, &e, msg);
    ck_assert_ptr_null(c.models);
    ck_assert_ptr_null(c.server.tls.cert);
    remove_dir(dir);
}
END_TEST

START_TEST(log_keys)
{
    struct config c;
    struct err e = {0};
    const char *yaml = "server:\n  log_format: json\n  log_level: warn\n" MODELS;
    ck_assert_msg(config_parse(yaml, strlen(yaml), "t.yaml", NULL, &tasks, &c, &e) == 0, "%s",
                  e.msg);
    ck_assert_str_eq(c.server.log_format, "json");
    ck_assert_str_eq(c.server.log_level, "warn");
    config_free(&c);
}
END_TEST

START_TEST(dtype_names)
{
    ck_assert_str_eq(config_dtype_name(CONFIG_DTYPE_FP32), "fp32");
    ck_assert_str_eq(config_dtype_name(CONFIG_DTYPE_BF16), "bf16");
    ck_assert_str_eq(config_dtype_name(CONFIG_DTYPE_INT8), "int8");
}
END_TEST

Suite *suite_config(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, example_file_loads);
    tcase_add_test(tc, default_file_loads);
    tcase_add_test(tc, defaults_apply);
    tcase_add_test(tc, every_key_set);
    tcase_add_test(tc, relative_paths);
    tcase_add_loop_test(tc, errors, 0, (int)(sizeof bad / sizeof bad[0]));
    tcase_add_test(tc, file_errors);
    tcase_add_test(tc, every_prefix_of_example);
    tcase_add_test(tc, many_models);
    tcase_add_test(tc, single);
    tcase_add_test(tc, same_model);
    tcase_add_test(tc, key_sources);
    tcase_add_test(tc, tls_files);
    tcase_add_test(tc, dtype_names);
    tcase_add_test(tc, log_keys);
    suite_add_tcase(s, tc);
    return s;
}
