/* test_clients: the real Python clients from PyPI against the real daemon (suite `clients`):
 * the `openai` client, huggingface_hub's InferenceClient and LangChain's ChatOpenAI (pinned;
 * made once into BUILD/hf-client by scripts/hf-client.sh, which runs
 * tests/integration/clients.py). One daemon, with an API key the clients send, serves the
 * fixture models: gpt2-lm (the first text-generation model: TGI's POST /), the two tool-calling
 * fixtures, the Llama 3 chat fixture (response_format) and the bert encoders of every HF task
 * (and TEI's /embed, /predict). Each test runs one client's checks, which compare its parsed
 * result objects with the fixtures' transformers references (clients.py says which); the
 * client missing (no Python venv, PyPI unreachable) fails the test with pip's words, as in the
 * hub_client suite. A second daemon, serving bert-embed alone, is TEI as InferenceClient(URL)
 * reaches it: POST /. The Hub is never asked: HF_ENDPOINT is a closed local port. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integration/serve_support.h"
#include "suites.h"
#include "support/support.h"

#define KEY "inferd-test" /* clients.py sends it */

static struct daemon *srv;
static char fixtures[4096]; /* clients.py's FIXTURE=DIR arguments */

static void add_fixture(const char *name, const char *dir)
{
    size_t n = strlen(fixtures);
    snprintf(fixtures + n, sizeof fixtures - n, " '%s=%s'", name, dir);
}

static void srv_start(void)
{
    static const char *const bert[][3] = {
        {"seqcls", "bert-seqcls", "text-classification"},
        {"tokcls", "bert-tokcls", "token-classification"},
        {"mlm", "bert-mlm", "fill-mask"},
        {"nli", "bert-nli", "zero-shot-classification"},
        {"qa", "bert-qa", "question-answering"},
        {"embed", "bert-embed", "sentence-embeddings"},
    };
    char q[1024], l[1024];
    snprintf(q, sizeof q, "%s", fixture_tool_model("tools-qwen3"));
    snprintf(l, sizeof l, "%s", fixture_tool_model("tools-llama3.1"));
    fixtures[0] = '\0';
    add_fixture("gpt2", fixture_model("gpt2-lm"));
    add_fixture("qwen", q);
    add_fixture("llama", l);
    for (size_t i = 0; i < sizeof bert / sizeof bert[0]; i++)
        add_fixture(bert[i][0], fixture_model(bert[i][1]));
    char *yaml = yaml_config(
        "api_keys: [\"" KEY "\"]\n", yaml_model("gpt2", "gpt2-lm", "text-generation", NULL),
        yaml_model("qwen", q, "text-generation", NULL),
        yaml_model("llama", l, "text-generation", NULL),
        yaml_model("chat", fixture_chat_model(), "text-generation", NULL),
        yaml_model(bert[0][0], bert[0][1], bert[0][2], NULL),
        yaml_model(bert[1][0], bert[1][1], bert[1][2], NULL),
        yaml_model(bert[2][0], bert[2][1], bert[2][2], NULL),
        yaml_model(bert[3][0], bert[3][1], bert[3][2], NULL),
        yaml_model(bert[4][0], bert[4][1], bert[4][2], NULL),
        yaml_model(bert[5][0], bert[5][1], bert[5][2], NULL),
        yaml_model("features", "bert-embed", "feature-extraction", NULL), NULL);
    srv = daemon_start(yaml, KEY);
    free(yaml);
    daemon_persist(srv);
}

static void srv_stop(void)
{
    daemon_stop(srv);
    srv = NULL;
}

/* clients.py CLIENT against the daemon; fails the test unless it ends with "clients: ok". */
static void run_client(const char *client)
{
    ck_assert_ptr_nonnull(srv);
    char log[400];
    static char cmd[8192];
    snprintf(log, sizeof log, "%s/%s.log", srv->dir, client);
    setenv("HF_ENDPOINT", "http://127.0.0.1:9", 1); /* discard: nothing answers */
    setenv("HF_HUB_DISABLE_TELEMETRY", "1", 1);
    unsetenv("HF_HUB_OFFLINE"); /* it refuses every URL, the daemon's too */
    unsetenv("OPENAI_BASE_URL");
    unsetenv("LANGSMITH_TRACING");
    unsetenv("LANGCHAIN_TRACING_V2");
    snprintf(cmd, sizeof cmd,
             "sh '%s/scripts/hf-client.sh' '%s' clients %s 'http://127.0.0.1:%d'%s > '%s' 2>&1",
             INFERD_SOURCE_DIR, INFERD_BUILD_DIR, client, srv->port, fixtures, log);
    int rc = system(cmd);
    size_t n = 0;
    char *out = read_file(log, &n);
    ck_assert_msg(rc == 0, "the %s client failed (%d):\n%s\ndaemon %s", client, rc,
                  out ? out : "", daemon_log_tail(srv));
    ck_assert_msg(out && strstr(out, "clients: ok"), "no ok line:\n%s", out ? out : "");
    free(out);
}

START_TEST(openai_python)
{
    run_client("openai");
}
END_TEST

START_TEST(hf_inference_client)
{
    run_client("hf");
}
END_TEST

START_TEST(langchain_chat_openai)
{
    run_client("langchain");
}
END_TEST

START_TEST(shutdown_is_clean)
{
    daemon_shutdown(srv);
}
END_TEST

/* TEI's root: a daemon serving embeddings only answers POST / as TEI does (api_tgi.c). */
static void tei_start(void)
{
    char *yaml = yaml_config("api_keys: [\"" KEY "\"]\n",
                             yaml_model("embed", "bert-embed", "sentence-embeddings", NULL), NULL);
    srv = daemon_start(yaml, KEY);
    free(yaml);
    daemon_persist(srv);
    fixtures[0] = '\0';
    add_fixture("embed", fixture_model("bert-embed"));
}

START_TEST(hf_inference_client_tei_root)
{
    run_client("tei");
    daemon_shutdown(srv);
}
END_TEST

Suite *suite_clients(void)
{
    Suite *s = suite_create("clients");
    TCase *tc = tcase_create("clients");
    tcase_set_timeout(tc, 300); /* the first run makes the venv (pip install from PyPI) */
    tcase_add_unchecked_fixture(tc, srv_start, srv_stop);
    tcase_add_checked_fixture(tc, NULL, serve_teardown);
    tcase_add_test(tc, openai_python);
    tcase_add_test(tc, hf_inference_client);
    tcase_add_test(tc, langchain_chat_openai);
    tcase_add_test(tc, shutdown_is_clean);
    suite_add_tcase(s, tc);
    TCase *tei = tcase_create("tei_root");
    tcase_set_timeout(tei, 300);
    tcase_add_unchecked_fixture(tei, tei_start, srv_stop);
    tcase_add_checked_fixture(tei, NULL, serve_teardown);
    tcase_add_test(tei, hf_inference_client_tei_root);
    suite_add_tcase(s, tei);
    return s;
}
