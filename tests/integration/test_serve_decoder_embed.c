/* test_serve_decoder_embed: `inferd serve` with a decoder's sentence embeddings (mistral-embed:
 * MistralModel, lasttoken pooling + Normalize, e5-mistral's prompts) through the embedding
 * routes: TEI's /embed (plain, then with prompt_name, and an unknown prompt name refused with
 * 422), the Hugging Face API's parameters.prompt_name, and OpenAI's /v1/embeddings, each
 * against the sentence-transformers embeddings of refs-dev.json. One daemon serves them all
 * (unchecked fixture). */
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
    char *yaml = yaml_config(
        NULL, yaml_model("embed", "mistral-embed", "sentence-embeddings", NULL), NULL);
    srv = daemon_start_shared(yaml);
}

static void srv_stop(void)
{
    daemon_stop(srv);
    srv = NULL;
}

/* The texts and embeddings of a refs list (rows of prompt pname only, when not NULL). */
static json_t *texts_of(const json_t *entries, const char *pname, json_t **want)
{
    json_t *texts = json_array();
    *want = json_array();
    for (size_t i = 0; i < json_array_size(entries); i++) {
        const json_t *x = json_array_get(entries, i);
        const char *p = json_string_value(json_object_get(x, "prompt_name"));
        if (pname && (!p || strcmp(p, pname) != 0))
            continue;
        json_array_append(texts, json_object_get(x, "text"));
        json_array_append(*want, json_object_get(x, "embedding"));
    }
    return texts;
}

/* Every refs text in lists of 16 (a padded batch each) through path: its key holds the
 * texts, pick takes the vectors out of the answer. */
static void post_all(const char *path, const char *key, json_t *(*pick)(const json_t *))
{
    json_t *refs = model_refs("mistral-embed");
    json_t *want, *texts = texts_of(json_object_get(refs, "sentence_embeddings"), NULL, &want);
    ck_assert_uint_gt(json_array_size(texts), 16);
    for (size_t i = 0; i < json_array_size(texts); i += 16) {
        json_t *t = json_array(), *w = json_array();
        for (size_t k = i; k < i + 16 && k < json_array_size(texts); k++) {
            json_array_append(t, json_array_get(texts, k));
            json_array_append(w, json_array_get(want, k));
        }
        char what[96];
        snprintf(what, sizeof what, "POST %s, texts [%zu..]", path, i);
        daemon_post_expect(srv, path, json_pack("{s:o, s:s}", key, t, "model", "embed"), w, pick,
                           what);
        json_decref(w);
    }
    json_decref(texts);
    json_decref(want);
    json_decref(refs);
}

/* TEI /embed: every text, then each prompt's texts with prompt_name. */
START_TEST(tei_embed_with_prompts)
{
    post_all("/embed", "inputs", NULL);
    json_t *refs = model_refs("mistral-embed"), *want, *texts;
    static const char *const names[] = {"query", "document"};
    for (int k = 0; k < 2; k++) {
        texts = texts_of(json_object_get(refs, "prompted_embeddings"), names[k], &want);
        ck_assert_uint_eq(json_array_size(texts), 6);
        char what[64];
        snprintf(what, sizeof what, "POST /embed, prompt_name %s", names[k]);
        daemon_post_expect(srv, "/embed",
                           json_pack("{s:O, s:s}", "inputs", texts, "prompt_name", names[k]),
                    want, NULL, what);
        json_decref(texts);
        json_decref(want);
    }
    struct http_reply *r =
        daemon_post(srv, "/embed", json_pack("{s:s, s:s}", "inputs", "x", "prompt_name", "nope"));
    expect_status(r, 422, "POST /embed, unknown prompt_name");
    ck_assert_ptr_nonnull(strstr(r->body, "'nope' not found"));
    http_reply_free(r);
    r = daemon_post(srv, "/embed", json_pack("{s:s, s:i}", "inputs", "x", "prompt_name", 3));
    expect_status(r, 422, "POST /embed, prompt_name 3");
    http_reply_free(r);
    json_decref(refs);
}
END_TEST

/* The Hugging Face API: parameters.prompt_name on POST /models/embed. */
START_TEST(hf_route_prompt_name)
{
    json_t *refs = model_refs("mistral-embed");
    json_t *want, *texts = texts_of(json_object_get(refs, "prompted_embeddings"), "query", &want);
    daemon_post_expect(srv, "/models/embed",
                json_pack("{s:O, s:{s:s}}", "inputs", texts, "parameters", "prompt_name", "query"),
                want, NULL, "POST /models/embed, prompt_name query");
    json_decref(texts);
    json_decref(want);
    json_decref(refs);
}
END_TEST

/* OpenAI's data[i].embedding, in order. */
static json_t *openai_vectors(const json_t *reply)
{
    json_t *out = json_array();
    const json_t *data = json_object_get(reply, "data");
    for (size_t i = 0; i < json_array_size(data); i++) {
        const json_t *d = json_array_get(data, i);
        ck_assert_int_eq(json_integer_value(json_object_get(d, "index")), (json_int_t)i);
        json_array_append(out, json_object_get(d, "embedding"));
    }
    return out;
}

START_TEST(openai_embeddings_match)
{
    post_all("/v1/embeddings", "input", openai_vectors);
}
END_TEST

START_TEST(shutdown_is_clean)
{
    daemon_shutdown(srv);
}
END_TEST

Suite *suite_serve_decoder_embed(void)
{
    Suite *s = suite_create("serve_decoder_embed");
    TCase *tc = tcase_create("mistral-embed");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, srv_start, srv_stop);
    tcase_add_checked_fixture(tc, NULL, serve_teardown);
    tcase_add_test(tc, tei_embed_with_prompts);
    tcase_add_test(tc, hf_route_prompt_name);
    tcase_add_test(tc, openai_embeddings_match);
    tcase_add_test(tc, shutdown_is_clean);
    suite_add_tcase(s, tc);
    return s;
}
