/* test_marian_tok: the MarianTokenizer directory of tests/data/tokenizers-marian.tar.xz
 * (source.spm, target.spm, vocab.json; tools/refgen/marian_tokenizer.py) against
 * transformers 4.57's MarianTokenizer: ids of every recorded text and decoded text. */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "suites.h"
#include "support/support.h"
#include "tokenizer/tokenizer.h"

static const char *marian_dir(void)
{
    static char path[800];
    snprintf(path, sizeof path, "%s/tokenizers-marian/marian",
             fixture_dir("tokenizers-marian.tar.xz"));
    return path;
}

static struct tokenizer *load(void)
{
    struct tokenizer *tk = NULL;
    struct err e = {0};
    ck_assert_msg(tokenizer_load(marian_dir(), &tk, &e) == 0, "%s", e.msg);
    return tk;
}

static int32_t *ids_of(const json_t *a, size_t *n)
{
    *n = json_array_size(a);
    int32_t *ids = malloc((*n ? *n : 1) * sizeof *ids);
    for (size_t i = 0; i < *n; i++)
        ids[i] = (int32_t)json_integer_value(json_array_get(a, i));
    return ids;
}

static void expect_decoded(const struct tokenizer *tk, const json_t *r, size_t i)
{
    size_t n, len;
    int32_t *ids = ids_of(json_object_get(r, "ids"), &n);
    char *out = NULL;
    struct err e = {0};
    ck_assert_msg(tokenizer_decode(tk, ids, n, true, &out, &len, &e) == 0, "%s", e.msg);
    const char *want = json_string_value(json_object_get(r, "decoded"));
    ck_assert_msg(strcmp(out, want) == 0, "entry %zu: decoded '%s', want '%s'", i, out, want);
    free(out);
    free(ids);
}

START_TEST(encode_ids)
{
    struct tokenizer *tk = load();
    json_t *refs = fixture_json(marian_dir(), "refs.json");
    const json_t *list = json_object_get(refs, "encode");
    ck_assert_uint_gt(json_array_size(list), 100);
    struct tokenizer_params p = tokenizer_params_default(tk);
    size_t i;
    const json_t *r;
    json_array_foreach(list, i, r)
    {
        const char *text = json_string_value(json_object_get(r, "text"));
        struct encodings enc = {0};
        struct err e = {0};
        ck_assert_msg(tokenizer_encode(tk, text, json_string_length(json_object_get(r, "text")), NULL, 0, &p, &enc, &e) == 0,
                      "%s", e.msg);
        size_t n;
        int32_t *want = ids_of(json_object_get(r, "ids"), &n);
        ck_assert_msg(enc.v[0].n == n, "entry %zu ('%.40s'): %zu ids, want %zu", i, text,
                      enc.v[0].n, n);
        for (size_t k = 0; k < n; k++)
            ck_assert_msg(enc.v[0].ids[k] == want[k], "entry %zu ('%.40s'): id %zu is %d, want %d",
                          i, text, k, enc.v[0].ids[k], want[k]);
        free(want);
        encodings_fini(&enc);
        expect_decoded(tk, r, i);
    }
    json_decref(refs);
    tokenizer_free(tk);
}
END_TEST

/* Target-side ids (pieces source.spm lacks) decode as MarianTokenizer decodes them. */
START_TEST(decode_target)
{
    struct tokenizer *tk = load();
    json_t *refs = fixture_json(marian_dir(), "refs.json");
    const json_t *list = json_object_get(refs, "decode");
    ck_assert_uint_gt(json_array_size(list), 10);
    size_t i;
    const json_t *r;
    json_array_foreach(list, i, r)
        expect_decoded(tk, r, i);
    json_decref(refs);
    tokenizer_free(tk);
}
END_TEST

/* vocab.json must number its tokens 0..n-1 once each, and hold the unk token. */
START_TEST(bad_vocab)
{
    char dir[900];
    snprintf(dir, sizeof dir, "%s/marian-bad", fixture_dir("tokenizers-marian.tar.xz"));
    mkdir(dir, 0755);
    char cmd[3000];
    snprintf(cmd, sizeof cmd, "cp %s/source.spm %s/ && printf '{\"</s>\": 0, \"a\": 0}' > %s/vocab.json",
             marian_dir(), dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    struct tokenizer *tk = NULL;
    struct err e = {0};
    ck_assert_int_eq(tokenizer_load(dir, &tk, &e), ERR_FORMAT);
    ck_assert_msg(strstr(e.msg, "vocab.json") != NULL, "%s", e.msg);
    snprintf(cmd, sizeof cmd, "printf '{\"</s>\": 0, \"a\": 1}' > %s/vocab.json", dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(tokenizer_load(dir, &tk, &e), ERR_FORMAT);
    ck_assert_msg(strstr(e.msg, "<unk>") != NULL, "%s", e.msg);
}
END_TEST

Suite *suite_marian_tok(void)
{
    Suite *s = suite_create("marian_tok");
    TCase *tc = tcase_create("marian_tok");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, encode_ids);
    tcase_add_test(tc, decode_target);
    tcase_add_test(tc, bad_vocab);
    suite_add_tcase(s, tc);
    return s;
}
