/* test_parity: the tokenizer against Hugging Face's own output. For each fixture
 * tokenizer, every refs-dev.json entry (computed by `tokenizers` 0.23.2 through
 * transformers 5.17) must match exactly: ids with and without special tokens, token
 * strings, code-point offsets and the decoded text. pairs-dev.json checks text pairs
 * with truncation only_second, stride windows and max_length padding. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites.h"
#include "support/support.h"
#include "tokenizer/tokenizer.h"

static const char *const names[] = {"bert-uncased", "gpt2",  "roberta",      "llama2",
                                    "llama3",       "qwen3", "xlmr-unigram", "t5-unigram"};

/* Compares an int array of the encoding with a JSON list; describes the first difference. */
static bool same_ids(const int32_t *got, size_t n, const json_t *want, char *why, size_t wl)
{
    if (json_array_size(want) != n) {
        snprintf(why, wl, "length %zu, want %zu", n, json_array_size(want));
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (got[i] != json_integer_value(json_array_get(want, i))) {
            snprintf(why, wl, "at %zu: %d, want %lld", i, got[i],
                     json_integer_value(json_array_get(want, i)));
            return false;
        }
    return true;
}

static bool same_tokens(const struct encoding *enc, const json_t *want, char *why, size_t wl)
{
    if (json_array_size(want) != enc->n) {
        snprintf(why, wl, "tokens length %zu, want %zu", enc->n, json_array_size(want));
        return false;
    }
    for (size_t i = 0; i < enc->n; i++)
        if (strcmp(encoding_token(enc, i), json_string_value(json_array_get(want, i))) != 0) {
            snprintf(why, wl, "token %zu: '%s', want '%s'", i, encoding_token(enc, i),
                     json_string_value(json_array_get(want, i)));
            return false;
        }
    return true;
}

static bool same_offsets(const struct encoding *enc, const json_t *want, char *why, size_t wl)
{
    if (json_array_size(want) != enc->n) {
        snprintf(why, wl, "offsets length %zu, want %zu", enc->n, json_array_size(want));
        return false;
    }
    for (size_t i = 0; i < enc->n; i++) {
        const json_t *o = json_array_get(want, i);
        long long s = json_integer_value(json_array_get(o, 0));
        long long t = json_integer_value(json_array_get(o, 1));
        if (enc->offsets[i].start != s || enc->offsets[i].end != t) {
            snprintf(why, wl, "offset %zu: [%u, %u], want [%lld, %lld]", i, enc->offsets[i].start,
                     enc->offsets[i].end, s, t);
            return false;
        }
    }
    return true;
}

START_TEST(refs_dev)
{
    const char *name = names[_i];
    const char *dir = fixture_tokenizer(name);
    struct tokenizer *tk;
    struct err e = {0};
    ck_assert_msg(tokenizer_load(dir, &tk, &e) == 0, "%s", e.msg);
    json_t *refs = fixture_json(dir, "refs-dev.json");
    ck_assert_int_gt(json_array_size(refs), 50);
    int failures = 0;
    char first[1024] = "";
    size_t i;
    json_t *ref;
    json_array_foreach(refs, i, ref)
    {
        const json_t *text = json_object_get(ref, "text");
        const char *s = json_string_value(text);
        size_t len = json_string_length(text);
        struct tokenizer_params p = tokenizer_params_default(tk);
        struct encodings out = {0};
        char why[512] = "";
        const char *what = NULL;
        if (tokenizer_encode(tk, s, len, NULL, 0, &p, &out, &e) != 0) {
            what = "encode";
            snprintf(why, sizeof why, "%s", e.msg);
        } else if (!same_ids(out.v[0].ids, out.v[0].n, json_object_get(ref, "ids"), why,
                             sizeof why)) {
            what = "ids";
        } else if (!same_tokens(&out.v[0], json_object_get(ref, "tokens"), why, sizeof why)) {
            what = "tokens";
        } else if (!same_offsets(&out.v[0], json_object_get(ref, "offsets"), why, sizeof why)) {
            what = "offsets";
        }
        encodings_fini(&out);
        if (!what) {
            p.add_special_tokens = false;
            if (tokenizer_encode(tk, s, len, NULL, 0, &p, &out, &e) != 0) {
                what = "encode without special tokens";
                snprintf(why, sizeof why, "%s", e.msg);
            } else if (!same_ids(out.v[0].ids, out.v[0].n, json_object_get(ref, "ids_no_special"),
                                 why, sizeof why)) {
                what = "ids_no_special";
            }
            encodings_fini(&out);
        }
        if (!what) {
            const json_t *ids = json_object_get(ref, "ids");
            size_t n = json_array_size(ids);
            int32_t *v = malloc((n + 1) * sizeof *v);
            for (size_t k = 0; k < n; k++)
                v[k] = (int32_t)json_integer_value(json_array_get(ids, k));
            char *dec = NULL;
            size_t dl = 0;
            const json_t *wj = json_object_get(ref, "decoded");
            const char *want = json_string_value(wj);
            if (tokenizer_decode(tk, v, n, true, &dec, &dl, &e) != 0) {
                what = "decode";
                snprintf(why, sizeof why, "%s", e.msg);
            } else if (json_string_length(wj) != dl || memcmp(dec, want, dl) != 0) {
                what = "decoded";
                snprintf(why, sizeof why, "'%.200s', want '%.200s'", dec, want);
            }
            free(dec);
            free(v);
        }
        if (what) {
            if (failures++ == 0)
                snprintf(first, sizeof first, "entry %zu (%.60s): %s: %s", i, s, what, why);
            fprintf(stderr, "parity %s: entry %zu: %s: %s\n", name, i, what, why);
        }
    }
    json_decref(refs);
    tokenizer_free(tk);
    ck_assert_msg(failures == 0, "%s: %d entries differ; first: %s", name, failures, first);
}
END_TEST

/* Question/context pairs as the question-answering pipeline encodes them. */
START_TEST(pairs_dev)
{
    const char *dir = fixture_tokenizer("bert-uncased");
    struct tokenizer *tk;
    struct err e = {0};
    ck_assert_msg(tokenizer_load(dir, &tk, &e) == 0, "%s", e.msg);
    json_t *refs = fixture_json(dir, "pairs-dev.json");
    ck_assert_int_ge(json_array_size(refs), 2);
    size_t i;
    json_t *ref;
    json_array_foreach(refs, i, ref)
    {
        const json_t *q = json_object_get(ref, "question");
        const json_t *c = json_object_get(ref, "context");
        struct tokenizer_params p = tokenizer_params_default(tk);
        p.truncation = true;
        p.strategy = TRUNC_ONLY_SECOND;
        p.max_length = (size_t)json_integer_value(json_object_get(ref, "max_length"));
        p.stride = (size_t)json_integer_value(json_object_get(ref, "stride"));
        p.padding = PAD_FIXED;
        p.pad_length = p.max_length;
        struct encodings out = {0};
        ck_assert_msg(tokenizer_encode(tk, json_string_value(q), json_string_length(q),
                                       json_string_value(c), json_string_length(c), &p, &out,
                                       &e) == 0,
                      "%s", e.msg);
        const json_t *ids = json_object_get(ref, "input_ids");
        ck_assert_msg(out.n == json_array_size(ids), "pair %zu: %zu windows, want %zu", i, out.n,
                      json_array_size(ids));
        for (size_t w = 0; w < out.n; w++) {
            char why[512];
            const struct encoding *enc = &out.v[w];
            int32_t types[4096], mask[4096];
            ck_assert_uint_lt(enc->n, 4096);
            for (size_t k = 0; k < enc->n; k++) {
                types[k] = (int32_t)enc->type_ids[k];
                mask[k] = enc->attention[k];
            }
            ck_assert_msg(same_ids(enc->ids, enc->n, json_array_get(ids, w), why, sizeof why),
                          "pair %zu window %zu ids: %s", i, w, why);
            ck_assert_msg(same_ids(types, enc->n,
                                   json_array_get(json_object_get(ref, "token_type_ids"), w), why,
                                   sizeof why),
                          "pair %zu window %zu type ids: %s", i, w, why);
            ck_assert_msg(same_ids(mask, enc->n,
                                   json_array_get(json_object_get(ref, "attention_mask"), w), why,
                                   sizeof why),
                          "pair %zu window %zu attention: %s", i, w, why);
            ck_assert_msg(same_offsets(enc, json_array_get(json_object_get(ref, "offsets"), w), why,
                                       sizeof why),
                          "pair %zu window %zu: %s", i, w, why);
            /* sequence ids: null for special and padding tokens */
            const json_t *seq = json_array_get(json_object_get(ref, "sequence_ids"), w);
            for (size_t k = 0; k < enc->n; k++) {
                const json_t *sv = json_array_get(seq, k);
                int want = json_is_null(sv) ? -1 : (int)json_integer_value(sv);
                ck_assert_msg(enc->seq[k] == want, "pair %zu window %zu seq %zu: %d, want %d", i, w,
                              k, enc->seq[k], want);
            }
        }
        encodings_fini(&out);
    }
    json_decref(refs);
    tokenizer_free(tk);
}
END_TEST

Suite *suite_parity(void)
{
    Suite *s = suite_create("parity");
    TCase *tc = tcase_create("tokenizers");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, refs_dev, 0, (int)(sizeof names / sizeof names[0]));
    tcase_add_test(tc, pairs_dev);
    suite_add_tcase(s, tc);
    return s;
}
