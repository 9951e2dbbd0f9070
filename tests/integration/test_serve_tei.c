/* test_serve_tei: the Text Embeddings Inference routes and OpenAI's /v1/embeddings of the
 * real daemon against the fixtures' references: /predict (every label, softmax of the refs'
 * logits, sorted; and POST /, TEI's root, with no generation model configured), /rerank on a
 * one-label classifier built from bert-seqcls (its logit is the refs' logit 0; sigmoid scores,
 * order, index, return_text), /embed (bert-embed's sentence-transformers embeddings),
 * /tokenize (the bert-uncased tokenizer refs' ids, byte offsets, special flags), /decode, /info,
 * and /v1/embeddings (float and base64, usage = the refs' input_ids counts). One daemon is
 * shared by the tests (unchecked fixture). */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
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
    char *yaml = yaml_config(NULL, yaml_model("seqcls", "bert-seqcls", "text-classification", NULL),
                             yaml_model("rerank", reranker_model(0), "text-classification", NULL),
                             yaml_model("embed", "bert-embed", "sentence-embeddings", NULL), NULL);
    srv = daemon_start_shared(yaml);
}

static void srv_stop(void)
{
    daemon_stop(srv);
    srv = NULL;
}

/* POST path body (stolen), 200, the answer close to want (borrowed); returns the reply. */
static struct http_reply *post_expect(const char *path, json_t *body, const json_t *want,
                                      const char *what)
{
    struct http_reply *r = daemon_post(srv, path, body);
    expect_status(r, 200, what);
    if (want)
        expect_json(r->json, want, REF_TOL, what);
    return r;
}

static const char *const seqcls_labels[] = {"NEGATIVE", "POSITIVE"};
static const char *const rerank_labels[] = {"LABEL_0"};

/* ---- /predict ---- */

START_TEST(tei_predict)
{
    json_t *refs = model_refs("bert-seqcls");
    json_t *logits = seqcls_logits(refs);
    json_t *batch = json_array(), *batch_want = json_array();
    for (size_t i = 0; i < json_array_size(logits); i++) {
        const json_t *x = json_array_get(logits, i);
        const json_t *text = json_object_get(x, "text"), *l = json_object_get(x, "logits");
        char what[160];
        /* every label, softmax, highest first; raw_scores: the logits */
        json_t *want = predict_expected(l, seqcls_labels, false);
        snprintf(what, sizeof what, "POST /predict, bert-seqcls logits[%zu]", i);
        http_reply_free(post_expect("/predict", json_pack("{s:O}", "inputs", text), want, what));
        /* no generation model: POST / is TEI's, the route of the first model (seqcls) */
        snprintf(what, sizeof what, "POST / (TEI's root), bert-seqcls logits[%zu]", i);
        http_reply_free(post_expect("/", json_pack("{s:O}", "inputs", text), want, what));
        if (i < 6) {
            json_array_append_new(batch, json_pack("[O]", text));
            json_array_append(batch_want, want);
        }
        json_decref(want);
        want = predict_expected(l, seqcls_labels, true);
        snprintf(what, sizeof what, "POST /predict raw_scores, bert-seqcls logits[%zu]", i);
        http_reply_free(post_expect(
            "/predict",
            json_pack("{s:O, s:b, s:s}", "inputs", text, "raw_scores", 1, "model", "seqcls"), want,
            what));
        json_decref(want);
        /* the one-label model: sigmoid of logit 0 */
        json_t *l0 = json_pack("[O]", json_array_get(l, 0));
        want = predict_expected(l0, rerank_labels, false);
        snprintf(what, sizeof what, "POST /predict model rerank, bert-seqcls logits[%zu][0]", i);
        http_reply_free(post_expect(
            "/predict", json_pack("{s:O, s:s}", "inputs", text, "model", "rerank"), want, what));
        json_decref(want);
        json_decref(l0);
    }
    /* pairs: ["a", "b"]; and a batch mixing singles and pairs: [["a"], ["b", "c"]] */
    const json_t *pairs = json_object_get(refs, "pair_logits");
    for (size_t i = 0; i < json_array_size(pairs); i++) {
        const json_t *p = json_array_get(pairs, i);
        json_t *want = predict_expected(json_object_get(p, "logits"), seqcls_labels, false);
        json_t *in = json_pack("[O, O]", json_object_get(p, "text"), json_object_get(p, "pair"));
        http_reply_free(post_expect("/predict", json_pack("{s:O}", "inputs", in), want,
                                    "POST /predict, a text pair"));
        json_array_append_new(batch, in);
        json_array_append_new(batch_want, want);
    }
    struct http_reply *r = post_expect("/predict", json_pack("{s:O}", "inputs", batch), batch_want,
                                       "POST /predict, 6 singles and 2 pairs in one batch");
    expect_timing_headers(r, "POST /predict");
    http_reply_free(r);
    json_decref(batch);
    json_decref(batch_want);
    json_decref(logits);
    json_decref(refs);
}
END_TEST

/* ---- /rerank ---- */

/* /rerank {"query", "texts"} on the one-label model. */
static struct http_reply *rerank(const json_t *query, const json_t *texts, bool raw, bool text)
{
    json_t *body = json_pack("{s:O, s:O, s:b, s:b, s:s}", "query", query, "texts", texts,
                             "raw_scores", raw, "return_text", text, "model", "rerank");
    struct http_reply *r = daemon_post(srv, "/rerank", body);
    expect_status(r, 200, "POST /rerank");
    return r;
}

START_TEST(tei_rerank)
{
    json_t *refs = model_refs("bert-seqcls");
    const json_t *pairs = json_object_get(refs, "pair_logits");
    /* each refs pair (query, text): its logit 0, through the sigmoid unless raw */
    for (size_t i = 0; i < json_array_size(pairs); i++) {
        const json_t *p = json_array_get(pairs, i);
        double l0 = json_number_value(json_array_get(json_object_get(p, "logits"), 0));
        json_t *texts = json_pack("[O]", json_object_get(p, "pair"));
        struct http_reply *r = rerank(json_object_get(p, "text"), texts, false, false);
        json_t *want = json_pack("[{s:i, s:f}]", "index", 0, "score", sigmoid(l0));
        expect_json(r->json, want, REF_TOL, "POST /rerank, a refs pair");
        json_decref(want);
        http_reply_free(r);
        /* without "model": the first one-label classifier (seqcls, first in the config, has
         * two labels) */
        json_t *body = json_pack("{s:O, s:O}", "query", json_object_get(p, "text"), "texts", texts);
        want = json_pack("[{s:i, s:f}]", "index", 0, "score", sigmoid(l0));
        http_reply_free(post_expect("/rerank", body, want, "POST /rerank without model"));
        json_decref(want);
        r = rerank(json_object_get(p, "text"), texts, true, false);
        want = json_pack("[{s:i, s:f}]", "index", 0, "score", l0);
        expect_json(r->json, want, REF_TOL, "POST /rerank raw_scores, a refs pair");
        json_decref(want);
        http_reply_free(r);
        json_decref(texts);
    }

    /* several texts for one query: sorted by score, highest first; index points into texts;
     * the refs' pair keeps its score wherever it lands; each score is what /predict gives for
     * that (query, text) pair; return_text gives texts[index] */
    const json_t *p = json_array_get(pairs, 0);
    const json_t *query = json_object_get(p, "text");
    double l0 = json_number_value(json_array_get(json_object_get(p, "logits"), 0));
    json_t *texts = json_pack("[s, O, s, s, s]", "Hello world!", json_object_get(p, "pair"),
                              "I hate it", "The quick brown fox jumps over the lazy dog.",
                              "Paris is the capital of France.");
    size_t n = json_array_size(texts);
    for (int text = 0; text < 2; text++) {
        struct http_reply *r = rerank(query, texts, false, text);
        ck_assert_msg(json_array_size(r->json) == n, "POST /rerank: %s", r->body);
        bool seen[8] = {false};
        double prev = INFINITY;
        for (size_t i = 0; i < n; i++) {
            const json_t *e = json_array_get(r->json, i);
            const json_t *ix = json_object_get(e, "index");
            double score = json_number_value(json_object_get(e, "score"));
            ck_assert_msg(json_is_integer(ix) && json_integer_value(ix) >= 0 &&
                              (size_t)json_integer_value(ix) < n && !seen[json_integer_value(ix)],
                          "POST /rerank: bad or repeated index in %s", r->body);
            size_t k = (size_t)json_integer_value(ix);
            seen[k] = true;
            ck_assert_msg(score <= prev, "POST /rerank: not sorted by score: %s", r->body);
            prev = score;
            ck_assert_uint_eq(json_object_size(e), text ? 3 : 2);
            if (text)
                ck_assert_msg(json_equal(json_object_get(e, "text"), json_array_get(texts, k)),
                              "POST /rerank return_text: entry for index %zu has text %s", k,
                              r->body);
            if (k == 1)
                ck_assert_msg(fabs(score - sigmoid(l0)) <= REF_TOL,
                              "POST /rerank: the refs pair scored %g, want %g", score, sigmoid(l0));
            if (text)
                continue;
            json_t *pair = json_pack("[O, O]", query, json_array_get(texts, k));
            struct http_reply *q =
                post_expect("/predict", json_pack("{s:O, s:s}", "inputs", pair, "model", "rerank"),
                            NULL, "POST /predict on a rerank pair");
            double alone = json_number_value(json_object_get(json_array_get(q->json, 0), "score"));
            ck_assert_msg(fabs(alone - score) <= 1e-5,
                          "POST /rerank: index %zu scored %g, /predict on its pair %g", k, score,
                          alone);
            http_reply_free(q);
            json_decref(pair);
        }
        http_reply_free(r);
    }
    json_decref(texts);
    json_decref(refs);
}
END_TEST

/* ---- /embed ---- */

START_TEST(tei_embed)
{
    json_t *refs = model_refs("bert-embed");
    const json_t *se = json_object_get(refs, "sentence_embeddings");
    json_t *texts = json_array(), *want = json_array();
    for (size_t i = 0; i < json_array_size(se); i++) {
        const json_t *x = json_array_get(se, i);
        json_t *emb = json_object_get(x, "embedding");
        char what[160];
        if (i % 4 == 0) {
            /* one string: still a list of one vector */
            json_t *w = json_pack("[O]", emb);
            snprintf(what, sizeof what, "POST /embed, sentence_embeddings[%zu]", i);
            http_reply_free(post_expect(
                "/embed", json_pack("{s:O}", "inputs", json_object_get(x, "text")), w, what));
            json_decref(w);
            /* normalize false: the same direction (the refs are normalized) */
            snprintf(what, sizeof what, "POST /embed normalize false, sentence_embeddings[%zu]", i);
            struct http_reply *r =
                post_expect("/embed",
                            json_pack("{s:O, s:b, s:s}", "inputs", json_object_get(x, "text"),
                                      "normalize", 0, "model", "embed"),
                            NULL, what);
            const json_t *v = json_array_get(r->json, 0);
            ck_assert_msg(json_array_size(v) == json_array_size(emb), "%s: %s", what, r->body);
            double norm = 0;
            for (size_t k = 0; k < json_array_size(v); k++)
                norm += pow(json_number_value(json_array_get(v, k)), 2);
            norm = sqrt(norm);
            ck_assert(norm > 0);
            for (size_t k = 0; k < json_array_size(v); k++)
                ck_assert_msg(fabs(json_number_value(json_array_get(v, k)) / norm -
                                   json_number_value(json_array_get(emb, k))) <= REF_TOL,
                              "%s: component %zu", what, k);
            http_reply_free(r);
        }
        json_array_append(texts, json_object_get(x, "text"));
        json_array_append(want, emb);
        if (json_array_size(texts) == 8 || i + 1 == json_array_size(se)) {
            snprintf(what, sizeof what, "POST /embed, %zu sentence_embeddings up to [%zu]",
                     json_array_size(texts), i);
            struct http_reply *r = post_expect(
                "/embed",
                json_pack("{s:O, s:b, s:s}", "inputs", texts, "normalize", 1, "model", "embed"),
                want, what);
            expect_timing_headers(r, what);
            http_reply_free(r);
            json_array_clear(texts);
            json_array_clear(want);
        }
    }
    json_decref(texts);
    json_decref(want);
    json_decref(refs);
}
END_TEST

/* ---- /tokenize, /decode ---- */

/* Byte offset of code point `chars` in s (len bytes). */
static size_t byte_at(const char *s, size_t len, json_int_t chars)
{
    size_t i = 0;
    json_int_t n = 0;
    for (; i < len; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (n == chars)
                return i;
            n++;
        }
    }
    return i;
}

/* TEI's answer for one refs entry: [{"id", "text", "special", "start", "stop"}]. The
 * post-processor's [CLS]/[SEP] are special (text: the token, start/stop null); every other
 * token, a literal "[CLS]" in the text included (tokenizers' special_tokens_mask), has its
 * text and byte offsets in the input. */
static json_t *tokenize_expected(const json_t *ref, bool add_special)
{
    const json_t *ids = json_object_get(ref, "ids"), *tokens = json_object_get(ref, "tokens");
    const json_t *offsets = json_object_get(ref, "offsets");
    const json_t *plain = json_object_get(ref, "ids_no_special");
    const char *text = json_string_value(json_object_get(ref, "text"));
    size_t len = json_string_length(json_object_get(ref, "text"));
    size_t n = json_array_size(ids);
    /* BERT's template: [CLS] ids_no_special [SEP] */
    ck_assert_uint_eq(json_array_size(plain) + 2, n);
    for (size_t i = 1; i + 1 < n; i++)
        ck_assert(json_equal(json_array_get(ids, i), json_array_get(plain, i - 1)));
    json_t *out = json_array();
    for (size_t i = add_special ? 0 : 1; i < (add_special ? n : n - 1); i++) {
        const json_t *id = json_array_get(ids, i);
        if (i == 0 || i == n - 1) {
            json_array_append_new(out, json_pack("{s:O, s:O, s:b, s:n, s:n}", "id", id, "text",
                                                 json_array_get(tokens, i), "special", 1, "start",
                                                 "stop"));
            continue;
        }
        const json_t *o = json_array_get(offsets, i);
        size_t b0 = byte_at(text, len, json_integer_value(json_array_get(o, 0)));
        size_t b1 = byte_at(text, len, json_integer_value(json_array_get(o, 1)));
        json_array_append_new(out, json_pack("{s:O, s:s%, s:b, s:I, s:I}", "id", id, "text",
                                             text + b0, b1 - b0, "special", 0, "start",
                                             (json_int_t)b0, "stop", (json_int_t)b1));
    }
    return out;
}

START_TEST(tei_tokenize)
{
    json_t *refs = fixture_json(fixture_tokenizer("bert-uncased"), "refs-dev.json");
    /* 16 texts per request; the subtle ones alone at the end (a literal "[CLS]" in the text),
     * so that they cannot hide the others; a NUL character: tei_tokenize_nul */
    json_t *order = json_array();
    size_t n_plain = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < json_array_size(refs); i++) {
            const json_t *t = json_object_get(json_array_get(refs, i), "text");
            bool subtle = strstr(json_string_value(t), "[CLS]") != NULL;
            bool nul = strlen(json_string_value(t)) != json_string_length(t);
            if (json_string_length(t) > 0 && !nul && subtle == (pass == 1))
                json_array_append_new(order, json_integer((json_int_t)i));
            n_plain += pass == 0 && json_string_length(t) > 0 && !nul && !subtle;
        }
    for (int special = 1; special >= 0; special--) {
        json_t *in = json_array(), *want = json_array();
        for (size_t k = 0; k < json_array_size(order); k++) {
            size_t i = (size_t)json_integer_value(json_array_get(order, k));
            const json_t *x = json_array_get(refs, i);
            json_array_append(in, json_object_get(x, "text"));
            json_array_append_new(want, tokenize_expected(x, special));
            if (k + 1 < n_plain && json_array_size(in) < 16)
                continue;
            char what[160];
            snprintf(what, sizeof what,
                     "POST /tokenize add_special_tokens %s, %zu refs up to [%zu]",
                     special ? "true" : "false", json_array_size(in), i);
            json_t *body = json_pack("{s:O, s:b}", "inputs", in, "add_special_tokens", special);
            http_reply_free(post_expect("/tokenize", body, want, what));
            json_array_clear(in);
            json_array_clear(want);
        }
        json_decref(in);
        json_decref(want);
    }
    /* one string: a list holding one list */
    const json_t *x0 = json_array_get(refs, 0);
    json_t *want = json_pack("[o]", tokenize_expected(x0, true));
    http_reply_free(post_expect("/tokenize",
                                json_pack("{s:O}", "inputs", json_object_get(x0, "text")), want,
                                "POST /tokenize, one string"));
    json_decref(want);
    json_decref(order);
    json_decref(refs);
}
END_TEST

/* A NUL character is valid JSON (\u0000) and valid UTF-8; HF tokenizes "\x00null byte". */
START_TEST(tei_tokenize_nul)
{
    json_t *refs = fixture_json(fixture_tokenizer("bert-uncased"), "refs-dev.json");
    size_t done = 0;
    for (size_t i = 0; i < json_array_size(refs); i++) {
        const json_t *x = json_array_get(refs, i);
        const json_t *t = json_object_get(x, "text");
        if (strlen(json_string_value(t)) == json_string_length(t))
            continue;
        json_t *want = json_pack("[o]", tokenize_expected(x, true));
        char what[96];
        snprintf(what, sizeof what, "POST /tokenize, bert-uncased refs[%zu] (a NUL character)", i);
        http_reply_free(post_expect("/tokenize", json_pack("{s:O}", "inputs", t), want, what));
        json_decref(want);
        done++;
    }
    ck_assert_uint_gt(done, 0);
    json_decref(refs);
}
END_TEST

START_TEST(tei_decode)
{
    json_t *refs = fixture_json(fixture_tokenizer("bert-uncased"), "refs-dev.json");
    json_t *ids = json_array(), *want = json_array();
    for (size_t i = 0; i < json_array_size(refs); i++) {
        const json_t *x = json_array_get(refs, i);
        if (i % 10 == 0) {
            json_t *w = json_pack("[O]", json_object_get(x, "decoded"));
            char what[96];
            snprintf(what, sizeof what, "POST /decode, bert-uncased refs[%zu]", i);
            http_reply_free(post_expect(
                "/decode", json_pack("{s:O}", "ids", json_object_get(x, "ids")), w, what));
            json_decref(w);
        }
        json_array_append(ids, json_object_get(x, "ids"));
        json_array_append(want, json_object_get(x, "decoded"));
        if (json_array_size(ids) == 16 || i + 1 == json_array_size(refs)) {
            char what[96];
            snprintf(what, sizeof what, "POST /decode, %zu bert-uncased refs up to [%zu]",
                     json_array_size(ids), i);
            http_reply_free(post_expect(
                "/decode", json_pack("{s:O, s:b}", "ids", ids, "skip_special_tokens", 1), want,
                what));
            json_array_clear(ids);
            json_array_clear(want);
        }
    }
    json_decref(ids);
    json_decref(want);
    json_decref(refs);
}
END_TEST

/* ---- /info ---- */

START_TEST(tei_info)
{
    /* the classifier: TEI's model_type.classifier carries config.json's labels */
    json_t *cfg = fixture_json(fixture_model("bert-seqcls"), "config.json");
    struct http_reply *r = daemon_get(srv, "/info?model=seqcls");
    expect_status(r, 200, "GET /info?model=seqcls");
    ck_assert_msg(json_is_string(json_object_get(r->json, "model_id")),
                  "GET /info: no model_id: %s", r->body);
    const json_t *cls = json_object_get(json_object_get(r->json, "model_type"), "classifier");
    ck_assert_msg(cls != NULL, "GET /info?model=seqcls: no model_type.classifier: %s", r->body);
    expect_json(json_object_get(cls, "id2label"), json_object_get(cfg, "id2label"), 0,
                "GET /info?model=seqcls model_type.classifier.id2label");
    http_reply_free(r);
    json_decref(cfg);
    /* the first model without ?model */
    r = daemon_get(srv, "/info");
    expect_status(r, 200, "GET /info");
    ck_assert(json_is_object(r->json));
    http_reply_free(r);
    r = daemon_get(srv, "/info?model=embed");
    expect_status(r, 200, "GET /info?model=embed");
    ck_assert_msg(json_object_get(json_object_get(r->json, "model_type"), "embedding") != NULL,
                  "GET /info?model=embed: no model_type.embedding: %s", r->body);
    http_reply_free(r);
    r = daemon_get(srv, "/info?model=no-such-model");
    expect_hf_error(r, 404, "GET /info?model=no-such-model");
    http_reply_free(r);
}
END_TEST

/* ---- /v1/embeddings ---- */

/* Decodes standard base64 into little-endian float32s. */
static json_t *floats_of_base64(const char *s)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t len = strlen(s);
    unsigned char *bytes = malloc(len);
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len && s[i] != '='; i++) {
        const char *p = strchr(alphabet, s[i]);
        ck_assert_msg(p != NULL && s[i] != '\0', "base64: bad character '%c'", s[i]);
        acc = acc << 6 | (uint32_t)(p - alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            bytes[n++] = (unsigned char)(acc >> bits);
        }
    }
    ck_assert_msg(n % 4 == 0, "base64: %zu bytes is no float32 array", n);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i += 4) {
        uint32_t u = (uint32_t)bytes[i] | (uint32_t)bytes[i + 1] << 8 |
                     (uint32_t)bytes[i + 2] << 16 | (uint32_t)bytes[i + 3] << 24;
        float f;
        memcpy(&f, &u, sizeof f);
        json_array_append_new(out, json_real(f));
    }
    free(bytes);
    return out;
}

START_TEST(openai_embeddings)
{
    json_t *refs = model_refs("bert-embed");
    /* token_features carry input_ids (the usage counts); sentence_embeddings the vectors */
    const json_t *tf = json_object_get(refs, "token_features");
    json_t *input = json_array(), *vectors = json_array();
    json_int_t tokens = 0;
    for (size_t i = 0; i < json_array_size(tf); i++) {
        const json_t *x = json_array_get(tf, i);
        const char *text = json_string_value(json_object_get(x, "text"));
        const json_t *e = refs_find_text(refs, "sentence_embeddings", text);
        ck_assert_msg(e != NULL, "no sentence embedding for '%s'", text);
        json_array_append(input, json_object_get(x, "text"));
        json_array_append(vectors, json_object_get(e, "embedding"));
        tokens += (json_int_t)json_array_size(json_object_get(x, "input_ids"));
    }
    for (int b64 = 0; b64 < 2; b64++) {
        json_t *body = json_pack("{s:O, s:s, s:s}", "input", input, "model", "embed",
                                 "encoding_format", b64 ? "base64" : "float");
        const char *what = b64 ? "POST /v1/embeddings base64" : "POST /v1/embeddings float";
        struct http_reply *r = post_expect("/v1/embeddings", body, NULL, what);
        const json_t *j = r->json;
        ck_assert_msg(json_is_object(j), "%s: %s", what, r->body);
        ck_assert_str_eq(json_string_value(json_object_get(j, "object")), "list");
        ck_assert_str_eq(json_string_value(json_object_get(j, "model")), "embed");
        json_t *usage = json_pack("{s:I, s:I}", "prompt_tokens", tokens, "total_tokens", tokens);
        expect_json(json_object_get(j, "usage"), usage, 0, "/v1/embeddings usage");
        json_decref(usage);
        const json_t *data = json_object_get(j, "data");
        ck_assert_msg(json_array_size(data) == json_array_size(input), "%s: %s", what, r->body);
        for (size_t i = 0; i < json_array_size(data); i++) {
            const json_t *d = json_array_get(data, i);
            ck_assert_str_eq(json_string_value(json_object_get(d, "object")), "embedding");
            ck_assert_int_eq(json_integer_value(json_object_get(d, "index")), (json_int_t)i);
            const json_t *emb = json_object_get(d, "embedding");
            json_t *v = b64 ? floats_of_base64(json_string_value(emb)) : json_incref((json_t *)emb);
            ck_assert_msg(b64 ? json_is_string(emb) : json_is_array(emb), "%s: data[%zu]", what, i);
            expect_json(v, json_array_get(vectors, i), REF_TOL, what);
            json_decref(v);
        }
        http_reply_free(r);
    }
    /* dimensions: the first N components, normalized again (OpenAI's shortened embeddings) */
    const json_t *full = json_array_get(vectors, 0);
    double norm = 0;
    for (size_t k = 0; k < 8; k++)
        norm += pow(json_number_value(json_array_get(full, k)), 2);
    json_t *short8 = json_array();
    for (size_t k = 0; k < 8; k++)
        json_array_append_new(short8,
                              json_real(json_number_value(json_array_get(full, k)) / sqrt(norm)));
    struct http_reply *r8 =
        post_expect("/v1/embeddings",
                    json_pack("{s:O, s:s, s:i}", "input", json_array_get(input, 0), "model",
                              "embed", "dimensions", 8),
                    NULL, "POST /v1/embeddings dimensions 8");
    expect_json(json_object_get(json_array_get(json_object_get(r8->json, "data"), 0), "embedding"),
                short8, REF_TOL, "POST /v1/embeddings dimensions 8");
    http_reply_free(r8);
    json_decref(short8);
    /* one string */
    const json_t *x = json_array_get(tf, 0);
    json_t *body = json_pack("{s:O, s:s}", "input", json_object_get(x, "text"), "model", "embed");
    struct http_reply *r =
        post_expect("/v1/embeddings", body, NULL, "POST /v1/embeddings, one string");
    const json_t *data = json_object_get(r->json, "data");
    ck_assert_uint_eq(json_array_size(data), 1);
    expect_json(json_object_get(json_array_get(data, 0), "embedding"), json_array_get(vectors, 0),
                REF_TOL, "POST /v1/embeddings, one string");
    json_int_t n0 = (json_int_t)json_array_size(json_object_get(x, "input_ids"));
    json_t *usage = json_pack("{s:I, s:I}", "prompt_tokens", n0, "total_tokens", n0);
    expect_json(json_object_get(r->json, "usage"), usage, 0, "/v1/embeddings usage, one string");
    json_decref(usage);
    http_reply_free(r);
    json_decref(input);
    json_decref(vectors);
    json_decref(refs);
}
END_TEST

/* Last in its TCase: the shared daemon drains and exits 0 with a clean log (ASan, UBSan). */
START_TEST(shutdown_is_clean)
{
    daemon_shutdown(srv);
}
END_TEST

Suite *suite_serve_tei(void)
{
    Suite *s = suite_create("serve_tei");
    TCase *tc = tcase_create("tei");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, srv_start, srv_stop);
    tcase_add_checked_fixture(tc, NULL, serve_teardown);
    tcase_add_test(tc, tei_predict);
    tcase_add_test(tc, tei_rerank);
    tcase_add_test(tc, tei_embed);
    tcase_add_test(tc, tei_tokenize);
    tcase_add_test(tc, tei_tokenize_nul);
    tcase_add_test(tc, tei_decode);
    tcase_add_test(tc, tei_info);
    tcase_add_test(tc, openai_embeddings);
    tcase_add_test(tc, shutdown_is_clean);
    suite_add_tcase(s, tc);
    return s;
}
