/* test_hub_client: inferd's Hub client (hub/) and the real one, huggingface_hub from PyPI
 * (pinned; made once into BUILD/hf-client by scripts/hf-client.sh, which runs
 * tests/integration/hf_client.py), share one cache both ways against the mock Hub:
 *   - what `inferd pull` fetched, huggingface_hub finds with HF_HUB_OFFLINE=1 (snapshot_download
 *     and hf_hub_download with local_files_only give the snapshot and the original bytes; what
 *     inferd did not fetch is not there; scan_cache_dir sees the repo at its commit, ref main);
 *   - what huggingface_hub's snapshot_download fetched through HF_ENDPOINT, `inferd run
 *     --model ORG/NAME` serves with HF_HUB_OFFLINE=1 and the Hub gone, its scores those of
 *     transformers (the fixture's refs-dev.json).
 * The client missing (no Python venv, PyPI unreachable) fails the test with pip's words, as
 * the openai npm client does in the serve_generate suite. */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites.h"
#include "support/mock_hub.h"
#include "support/support.h"

static char home[600], cache[700];

/* A mock serving org/bert-embed and org/bert-seqcls; both clients pointed at it with the
 * fresh cache HOME/SUB (HF_HUB_CACHE), online. */
static struct mock_hub *client_env(const char *sub)
{
    struct mock_hub *h = mock_hub_start();
    mock_hub_add(h, "org/bert-embed", fixture_model("bert-embed"), NULL);
    mock_hub_add(h, "org/bert-seqcls", fixture_model("bert-seqcls"), NULL);
    snprintf(home, sizeof home, "%s", temp_dir());
    snprintf(cache, sizeof cache, "%s/%s", home, sub);
    setenv("HF_ENDPOINT", mock_hub_url(h), 1);
    setenv("HF_HOME", home, 1);
    setenv("HF_HUB_CACHE", cache, 1);
    setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1", 1);
    unsetenv("HF_TOKEN");
    unsetenv("HF_TOKEN_PATH");
    unsetenv("HF_HUB_OFFLINE");
    unsetenv("TRANSFORMERS_OFFLINE");
    return h;
}

/* hf_client.py ARGS in the environment as it is; its output (stdout and stderr, malloc'ed)
 * in *out. Fails the test unless it ends with "hf-client: ok". */
static void hf_client(const char *args, char **out)
{
    char log[700], cmd[8192];
    snprintf(log, sizeof log, "%s/hf-client.log", home);
    snprintf(cmd, sizeof cmd, "sh '%s/scripts/hf-client.sh' '%s' hub %s > '%s' 2>&1",
             INFERD_SOURCE_DIR, INFERD_BUILD_DIR, args, log);
    int rc = system(cmd);
    size_t n = 0;
    *out = read_file(log, &n);
    ck_assert_msg(rc == 0, "huggingface_hub failed (%d):\n%s", rc, *out ? *out : "");
    ck_assert_msg(*out && strstr(*out, "hf-client: ok"), "no ok line:\n%s", *out ? *out : "");
}

/* inferd pulls, huggingface_hub finds it offline without asking the Hub anything. */
START_TEST(inferd_pull_then_hf_hub)
{
    struct mock_hub *h = client_env("hub");
    int status;
    json_t *out = run_cli("pull org/bert-embed 2>/dev/null", "", &status);
    ck_assert_int_eq(status, 0);
    json_decref(out);
    int asked = 0;
    for (int k = 0; k < MOCK_COUNTS; k++)
        asked += mock_hub_count(h, (enum mock_count)k);
    setenv("HF_HUB_OFFLINE", "1", 1);
    /* the serving files inferd fetched, then two it left (README.md, refs-dev.json) */
    char args[4096];
    snprintf(args, sizeof args,
             "find org/bert-embed %s '%s' config.json tokenizer.json tokenizer_config.json "
             "modules.json sentence_bert_config.json config_sentence_transformers.json "
             "1_Pooling/config.json 2_Normalize/config.json model.safetensors "
             "-- README.md refs-dev.json",
             mock_hub_commit(h, "org/bert-embed"), fixture_model("bert-embed"));
    char *log;
    hf_client(args, &log);
    free(log);
    int after = 0;
    for (int k = 0; k < MOCK_COUNTS; k++)
        after += mock_hub_count(h, (enum mock_count)k);
    ck_assert_int_eq(after, asked); /* offline: not one request */
    mock_hub_stop(h);
}
END_TEST

/* The score transformers gives text's top label: softmax of refs-dev.json's logits. */
static double ref_top_score(const char *model, const char *text, int *label)
{
    json_t *refs = fixture_json(fixture_model(model), "refs-dev.json");
    const json_t *all = json_object_get(refs, "logits");
    double score = -1;
    for (size_t i = 0; i < json_array_size(all); i++) {
        const json_t *r = json_array_get(all, i);
        if (strcmp(json_string_value(json_object_get(r, "text")), text) != 0)
            continue;
        const json_t *lg = json_object_get(r, "logits");
        double max = -INFINITY, sum = 0;
        for (size_t k = 0; k < json_array_size(lg); k++)
            if (json_number_value(json_array_get(lg, k)) > max) {
                max = json_number_value(json_array_get(lg, k));
                *label = (int)k;
            }
        for (size_t k = 0; k < json_array_size(lg); k++)
            sum += exp(json_number_value(json_array_get(lg, k)) - max);
        score = 1 / sum;
    }
    json_decref(refs);
    ck_assert_msg(score > 0, "%s: no reference for '%s'", model, text);
    return score;
}

/* huggingface_hub's snapshot_download fetches, inferd serves it offline, the Hub gone. */
START_TEST(hf_hub_download_then_inferd)
{
    struct mock_hub *h = client_env("hub-py");
    char *log, want[1200];
    hf_client("fetch org/bert-seqcls", &log);
    snprintf(want, sizeof want, "%s/models--org--bert-seqcls/snapshots/%s\n", cache,
             mock_hub_commit(h, "org/bert-seqcls"));
    ck_assert_msg(strstr(log, want), "not the snapshot %s:\n%s", want, log);
    free(log);
    mock_hub_stop(h);
    setenv("HF_HUB_OFFLINE", "1", 1);
    int status, label = -1;
    json_t *out = run_cli("run --model org/bert-seqcls --task text-classification",
                          "{\"inputs\": \"Hello world!\"}\n", &status);
    ck_assert_int_eq(status, 0);
    const json_t *top = json_array_get(json_array_get(out, 0), 0);
    double want_score = ref_top_score("bert-seqcls", "Hello world!", &label);
    json_t *cfg = fixture_json(fixture_model("bert-seqcls"), "config.json");
    char key[16];
    snprintf(key, sizeof key, "%d", label);
    const char *want_label =
        json_string_value(json_object_get(json_object_get(cfg, "id2label"), key));
    ck_assert_ptr_nonnull(want_label);
    ck_assert_str_eq(json_string_value(json_object_get(top, "label")), want_label);
    double got = json_number_value(json_object_get(top, "score"));
    ck_assert_msg(fabs(got - want_score) < 1e-4, "score %g, transformers %g", got, want_score);
    json_decref(cfg);
    json_decref(out);
}
END_TEST

Suite *suite_hub_client(void)
{
    Suite *s = suite_create("hub_client");
    TCase *tc = tcase_create("hub_client");
    tcase_set_timeout(tc, 300); /* the first run makes the venv (pip install from PyPI) */
    tcase_add_test(tc, inferd_pull_then_hf_hub);
    tcase_add_test(tc, hf_hub_download_then_inferd);
    suite_add_tcase(s, tc);
    return s;
}
