/* test_tokenizer: the assembled tokenizer on its edges: invalid UTF-8, malformed
 * tokenizer.json (the error names the field), empty and 1 MB inputs, added tokens,
 * truncation windows, padding, and encoding from several threads at once with the
 * same answers as HF's refs. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites.h"
#include "support/support.h"
#include "tokenizer/tokenizer.h"

static struct tokenizer *load(const char *name)
{
    struct tokenizer *tk = NULL;
    struct err e = {0};
    ck_assert_msg(tokenizer_load(fixture_tokenizer(name), &tk, &e) == 0, "%s", e.msg);
    return tk;
}

static int encode(const struct tokenizer *tk, const char *s, size_t len, struct encodings *out,
                  struct err *e)
{
    struct tokenizer_params p = tokenizer_params_default(tk);
    return tokenizer_encode(tk, s, len, NULL, 0, &p, out, e);
}

START_TEST(invalid_utf8_is_rejected)
{
    struct tokenizer *tk = load("bert-uncased");
    struct encodings out = {0};
    struct err e = {0};
    static const char *bad[] = {"abc\xff", "\xc3", "\xed\xa0\x80", "\xc0\xaf",
                                "ok\xf4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = encode(tk, bad[i], strlen(bad[i]), &out, &e);
        ck_assert_int_eq(rc, ERR_INPUT);
        ck_assert_msg(strstr(e.msg, "UTF-8") != NULL, "%s", e.msg);
        ck_assert_uint_eq(out.n, 0);
    }
    tokenizer_free(tk);
}
END_TEST

START_TEST(empty_text)
{
    struct tokenizer *tk = load("bert-uncased");
    struct encodings out = {0};
    struct err e = {0};
    ck_assert_int_eq(encode(tk, "", 0, &out, &e), 0);
    ck_assert_uint_eq(out.n, 1);
    ck_assert_uint_eq(out.v[0].n, 2); /* [CLS] [SEP] */
    ck_assert_int_eq(out.v[0].ids[0], 101);
    ck_assert_int_eq(out.v[0].ids[1], 102);
    encodings_fini(&out);
    tokenizer_free(tk);
}
END_TEST

START_TEST(one_megabyte_text)
{
    /* 1 MB of words: every word is one token ("hello" = 7592 in bert-base-uncased). */
    struct tokenizer *tk = load("bert-uncased");
    size_t n_words = (1 << 20) / 6;
    char *s = malloc(n_words * 6 + 1);
    for (size_t i = 0; i < n_words; i++)
        memcpy(s + 6 * i, "hello ", 6);
    struct encodings out = {0};
    struct err e = {0};
    ck_assert_int_eq(encode(tk, s, n_words * 6, &out, &e), 0);
    ck_assert_uint_eq(out.v[0].n, n_words + 2);
    ck_assert_int_eq(out.v[0].ids[n_words], 7592);
    ck_assert_uint_eq(out.v[0].offsets[n_words].start, (n_words - 1) * 6);
    encodings_fini(&out);
    free(s);
    tokenizer_free(tk);
}
END_TEST

/* Malformed tokenizer.json variants: each must fail cleanly, naming what is wrong. */
START_TEST(malformed_tokenizer_json)
{
    static const struct {
        const char *json;
        const char *must_mention;
    } cases[] = {
        {"{", "invalid JSON"},
        {"[]", "object"},
        {"{\"added_tokens\": []}", "model"},
        {"{\"model\": {\"type\": \"NoSuchModel\"}}", "NoSuchModel"},
        {"{\"added_tokens\": 3, \"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}",
         "added_tokens"},
        {"{\"added_tokens\": [{\"id\": 0}], \"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}",
         "content"},
        {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0}, \"unk_token\": "
         "\"[UNK]\","
         " \"continuing_subword_prefix\": \"##\", \"max_input_chars_per_word\": 100},"
         " \"normalizer\": {\"type\": \"Bogus\"}}",
         "Bogus"},
        /* a sparse id would size the id table: 160000006 ids are 2 GB from a 100-byte file */
        {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 160000006}, "
         "\"unk_token\": \"[UNK]\", \"continuing_subword_prefix\": \"##\", "
         "\"max_input_chars_per_word\": 100}}",
         "4194304"},
        {"{\"added_tokens\": [{\"id\": 2000000000, \"content\": \"<x>\"}], \"model\": "
         "{\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0}, \"unk_token\": \"[UNK]\", "
         "\"continuing_subword_prefix\": \"##\", \"max_input_chars_per_word\": 100}}",
         "4194304"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tokenizer *tk = NULL;
        struct err e = {0};
        int rc = tokenizer_from_json(cases[i].json, strlen(cases[i].json), NULL, 0, &tk, &e);
        ck_assert_msg(rc != 0, "case %zu accepted", i);
        ck_assert_ptr_null(tk);
        ck_assert_msg(strstr(e.msg, cases[i].must_mention) != NULL, "case %zu: '%s' lacks '%s'", i,
                      e.msg, cases[i].must_mention);
    }
}
END_TEST

START_TEST(truncated_tokenizer_json)
{
    /* The real bert tokenizer.json cut in half is an error, never a crash. */
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizer.json", fixture_tokenizer("bert-uncased"));
    size_t len;
    char *json = read_file(path, &len);
    ck_assert_ptr_nonnull(json);
    struct tokenizer *tk = NULL;
    struct err e = {0};
    ck_assert_int_eq(tokenizer_from_json(json, len / 2, NULL, 0, &tk, &e), ERR_FORMAT);
    ck_assert_msg(strstr(e.msg, "tokenizer.json") != NULL, "%s", e.msg);
    free(json);
}
END_TEST

START_TEST(missing_directory)
{
    struct tokenizer *tk = NULL;
    struct err e = {0};
    ck_assert_int_eq(tokenizer_load("/nonexistent/tok", &tk, &e), ERR_NOT_FOUND);
    ck_assert_str_eq(e.msg, "/nonexistent/tok/tokenizer.json: no such file, nor slow-tokenizer "
                            "files (vocab.txt, source.spm + vocab.json, sentencepiece.bpe.model + "
                            "vocab.json, vocab.json + "
                            "merges.txt, spiece.model, sentencepiece.bpe.model, spm.model, "
                            "tokenizer.model)");
    ck_assert_ptr_null(tk);
}
END_TEST

START_TEST(truncation_longest_first_and_padding)
{
    /* "hello world" = [7592, 2088]; pairs truncated longest-first to max_length 5. */
    struct tokenizer *tk = load("bert-uncased");
    struct tokenizer_params p = tokenizer_params_default(tk);
    p.truncation = true;
    p.max_length = 6;
    p.padding = PAD_FIXED;
    p.pad_length = 8;
    struct encodings out = {0};
    struct err e = {0};
    ck_assert_int_eq(tokenizer_encode(tk, "hello world hello", 17, "world", 5, &p, &out, &e), 0);
    /* [CLS] hello world [SEP] world [SEP] [PAD] [PAD]; the third word overflowed */
    static const int32_t want[] = {101, 7592, 2088, 102, 2088, 102, 0, 0};
    ck_assert_uint_eq(out.v[0].n, 8);
    for (size_t i = 0; i < 8; i++)
        ck_assert_int_eq(out.v[0].ids[i], want[i]);
    ck_assert_int_eq(out.v[0].attention[5], 1);
    ck_assert_int_eq(out.v[0].attention[6], 0);
    ck_assert_int_eq(out.v[0].type_ids[4], 1);
    ck_assert_uint_ge(out.n, 2); /* the overflow window */
    encodings_fini(&out);

    /* stride must be below the room left for the sequence */
    p.stride = 10;
    ck_assert_int_eq(tokenizer_encode(tk, "hello world hello", 17, "world", 5, &p, &out, &e),
                     ERR_INVALID);
    tokenizer_free(tk);
}
END_TEST

START_TEST(added_special_token_in_text)
{
    /* Special tokens written in the text are matched whole (gpt2 <|endoftext|>). */
    struct tokenizer *tk = load("gpt2");
    struct encodings out = {0};
    struct err e = {0};
    const char *s = "a<|endoftext|>b";
    ck_assert_int_eq(encode(tk, s, strlen(s), &out, &e), 0);
    ck_assert_uint_eq(out.v[0].n, 3);
    ck_assert_int_eq(out.v[0].ids[1], 50256);
    ck_assert_str_eq(encoding_token(&out.v[0], 1), "<|endoftext|>");
    ck_assert_uint_eq(out.v[0].offsets[1].start, 1);
    ck_assert_uint_eq(out.v[0].offsets[1].end, 14);
    encodings_fini(&out);
    ck_assert_int_eq(tokenizer_token_to_id(tk, "<|endoftext|>"), 50256);
    ck_assert_str_eq(tokenizer_id_to_token(tk, 50256), "<|endoftext|>");
    tokenizer_free(tk);
}
END_TEST

START_TEST(truncate_early_off_windows_whole_text)
{
    /* pairs-dev.json pair 1 (33 context tokens, 25 per window, stride 8): tokenizers
     * 0.23 stops at ~32 tokens, so its last window is [17, 32); with truncate_early
     * off the whole context is windowed and the last window is [17, 33), ending with
     * the final "." (1012). */
    struct tokenizer *tk = load("bert-uncased");
    const char *q = "what was prescribed?";
    const char *c = "Ünïcödé ärgér The quick brown fox jumps over the lazy dog.The quick brown fox "
                    "jumps over the lazy dog.The quick brown fox jumps over the lazy dog.";
    struct tokenizer_params p = tokenizer_params_default(tk);
    p.truncation = true;
    p.strategy = TRUNC_ONLY_SECOND;
    p.max_length = 32;
    p.stride = 8;
    struct encodings out = {0};
    struct err e;
    for (int early = 1; early >= 0; early--) {
        p.truncate_early = early;
        ck_assert_int_eq(tokenizer_encode(tk, q, strlen(q), c, strlen(c), &p, &out, &e), 0);
        ck_assert_uint_eq(out.n, 2);
        const struct encoding *w = &out.v[1];
        ck_assert_uint_eq(w->n, early ? 6 + 15 + 1 : 6 + 16 + 1);
        ck_assert_int_eq(w->ids[w->n - 2], early ? 3899 : 1012);
        encodings_fini(&out);
    }
    tokenizer_free(tk);
}
END_TEST

struct thread_job {
    const struct tokenizer *tk;
    const json_t *refs;
    int mismatches;
};

static void *encode_all(void *arg)
{
    struct thread_job *job = arg;
    for (int round = 0; round < 3; round++) {
        size_t i;
        json_t *ref;
        json_array_foreach(job->refs, i, ref)
        {
            const json_t *text = json_object_get(ref, "text");
            const json_t *ids = json_object_get(ref, "ids");
            struct encodings out = {0};
            struct err e;
            if (encode(job->tk, json_string_value(text), json_string_length(text), &out, &e)) {
                job->mismatches++;
                continue;
            }
            if (out.v[0].n != json_array_size(ids))
                job->mismatches++;
            else
                for (size_t k = 0; k < out.v[0].n; k++)
                    job->mismatches +=
                        out.v[0].ids[k] != json_integer_value(json_array_get(ids, k));
            encodings_fini(&out);
        }
    }
    return NULL;
}

START_TEST(many_threads_same_answers)
{
    static const char *const names[] = {"gpt2", "xlmr-unigram"};
    for (size_t t = 0; t < 2; t++) {
        struct tokenizer *tk = load(names[t]);
        char path[1024];
        snprintf(path, sizeof path, "%s/refs-dev.json", fixture_tokenizer(names[t]));
        json_t *refs = json_load_file(path, JSON_ALLOW_NUL, NULL);
        ck_assert_ptr_nonnull(refs);
        pthread_t th[4];
        struct thread_job jobs[4];
        for (int i = 0; i < 4; i++) {
            jobs[i] = (struct thread_job){tk, refs, 0};
            ck_assert_int_eq(pthread_create(&th[i], NULL, encode_all, &jobs[i]), 0);
        }
        for (int i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
            ck_assert_msg(jobs[i].mismatches == 0, "%s thread %d: %d mismatches", names[t], i,
                          jobs[i].mismatches);
        }
        json_decref(refs);
        tokenizer_free(tk);
    }
}
END_TEST

START_TEST(decode_skips_unknown_ids)
{
    struct tokenizer *tk = load("bert-uncased");
    int32_t ids[] = {101, 7592, 999999, 2088, 102};
    char *s = NULL;
    size_t n = 0;
    struct err e;
    ck_assert_int_eq(tokenizer_decode(tk, ids, 5, true, &s, &n, &e), 0);
    ck_assert_str_eq(s, "hello world");
    free(s);
    ck_assert_int_eq(tokenizer_decode(tk, ids, 5, false, &s, &n, &e), 0);
    ck_assert_str_eq(s, "[CLS] hello world [SEP]");
    free(s);
    tokenizer_free(tk);
}
END_TEST

Suite *suite_tokenizer(void)
{
    Suite *s = suite_create("tokenizer");
    TCase *tc = tcase_create("edges");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, invalid_utf8_is_rejected);
    tcase_add_test(tc, empty_text);
    tcase_add_test(tc, one_megabyte_text);
    tcase_add_test(tc, malformed_tokenizer_json);
    tcase_add_test(tc, truncated_tokenizer_json);
    tcase_add_test(tc, missing_directory);
    tcase_add_test(tc, truncation_longest_first_and_padding);
    tcase_add_test(tc, added_special_token_in_text);
    tcase_add_test(tc, truncate_early_off_windows_whole_text);
    tcase_add_test(tc, many_threads_same_answers);
    tcase_add_test(tc, decode_skips_unknown_ids);
    suite_add_tcase(s, tc);
    return s;
}
