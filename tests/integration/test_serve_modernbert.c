/* test_serve_modernbert: `inferd serve` with the ModernBERT fixtures through their task routes:
 * the Hugging Face API (POST /models/NAME: fill-mask, text classification with cls and mean
 * pooling, token classification) against refs-dev.json "pipeline" entries, each alone and
 * in one list, and TEI's /embed (modernbert-embed: mean pooling + Normalize) against its
 * sentence-transformers embeddings. One daemon serves them all (unchecked fixture). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integration/serve_expect.h"
#include "integration/serve_support.h"
#include "suites.h"
#include "support/support.h"

static struct daemon *srv;

static void srv_start(void)
{
    char *yaml =
        yaml_config(NULL, yaml_model("mlm", "modernbert-mlm", "fill-mask", NULL),
                    yaml_model("seqcls", "modernbert-seqcls", "text-classification", NULL),
                    yaml_model("mean", "modernbert-seqcls-mean", "text-classification", NULL),
                    yaml_model("tokcls", "modernbert-tokcls", "token-classification", NULL),
                    yaml_model("embed", "modernbert-embed", "sentence-embeddings", NULL), NULL);
    srv = daemon_start_shared(yaml);
}

static void srv_stop(void)
{
    daemon_stop(srv);
    srv = NULL;
}

static const struct {
    const char *name, *model;
    bool legacy_unwrap; /* text classification without top_k: a list answers one dict each */
} hf_models[] = {
    {"mlm", "modernbert-mlm", false},
    {"seqcls", "modernbert-seqcls", true},
    {"mean", "modernbert-seqcls-mean", true},
    {"tokcls", "modernbert-tokcls", false},
};

/* Every refs "pipeline" entry alone, then the first eight with no parameters in one list. */
START_TEST(hf_routes_match_transformers)
{
    const char *name = hf_models[_i].name;
    json_t *refs = model_refs(hf_models[_i].model);
    const json_t *entries = json_object_get(refs, "pipeline");
    ck_assert_uint_gt(json_array_size(entries), 0);
    char path[64], what[160];
    snprintf(path, sizeof path, "/models/%s", name);
    json_t *ins = json_array(), *outs = json_array();
    for (size_t i = 0; i < json_array_size(entries); i++) {
        const json_t *x = json_array_get(entries, i);
        const json_t *in = json_object_get(x, "input"), *params = json_object_get(x, "parameters");
        const json_t *out = json_object_get(x, "output");
        json_t *body = json_pack("{s:O}", "inputs", in);
        if (json_object_size(params) > 0)
            json_object_set(body, "parameters", (json_t *)params);
        snprintf(what, sizeof what, "POST %s, %s pipeline[%zu]", path, hf_models[_i].model, i);
        daemon_post_expect(srv, path, body, out, NULL, what);
        if (json_object_size(params) == 0 && json_array_size(ins) < 8) {
            json_array_append(ins, (json_t *)in);
            json_array_append(outs, hf_models[_i].legacy_unwrap ? json_array_get(out, 0)
                                                                : (json_t *)out);
        }
    }
    if (json_array_size(ins) > 1) {
        snprintf(what, sizeof what, "POST %s, %zu inputs in one list", path, json_array_size(ins));
        daemon_post_expect(srv, path, json_pack("{s:O}", "inputs", ins), outs, NULL, what);
    }
    json_decref(ins);
    json_decref(outs);
    json_decref(refs);
}
END_TEST

/* TEI /embed: one text (a list of one vector), then every text in lists of 16. */
START_TEST(tei_embed_matches_sentence_transformers)
{
    json_t *refs = model_refs("modernbert-embed");
    const json_t *se = json_object_get(refs, "sentence_embeddings");
    const json_t *x0 = json_array_get(se, 0);
    json_t *w0 = json_pack("[O]", json_object_get(x0, "embedding"));
    daemon_post_expect(srv, "/embed", json_pack("{s:O}", "inputs", json_object_get(x0, "text")),
                       w0, NULL,
                "POST /embed, one text");
    json_decref(w0);
    json_t *texts = json_array(), *want = json_array();
    for (size_t i = 0; i < json_array_size(se); i++) {
        const json_t *x = json_array_get(se, i);
        json_array_append(texts, json_object_get(x, "text"));
        json_array_append(want, json_object_get(x, "embedding"));
        if (json_array_size(texts) < 16 && i + 1 < json_array_size(se))
            continue;
        char what[96];
        snprintf(what, sizeof what, "POST /embed, %zu texts up to [%zu]", json_array_size(texts),
                 i);
        daemon_post_expect(srv, "/embed",
                           json_pack("{s:O, s:s}", "inputs", texts, "model", "embed"), want, NULL,
                    what);
        json_array_clear(texts);
        json_array_clear(want);
    }
    json_decref(texts);
    json_decref(want);
    json_decref(refs);
}
END_TEST

START_TEST(shutdown_is_clean)
{
    daemon_shutdown(srv);
}
END_TEST

Suite *suite_serve_modernbert(void)
{
    Suite *s = suite_create("serve_modernbert");
    TCase *tc = tcase_create("modernbert");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, srv_start, srv_stop);
    tcase_add_checked_fixture(tc, NULL, serve_teardown);
    tcase_add_loop_test(tc, hf_routes_match_transformers, 0,
                        (int)(sizeof hf_models / sizeof hf_models[0]));
    tcase_add_test(tc, tei_embed_matches_sentence_transformers);
    tcase_add_test(tc, shutdown_is_clean);
    suite_add_tcase(s, tc);
    return s;
}
