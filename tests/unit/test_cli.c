/* test_cli: the real `inferd tokenize` / `inferd detokenize` executables over JSON
 * lines: answers equal HF's refs, a malformed line gets a JSON error line while the
 * other lines are still answered, and the exit status reports the failure. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "suites.h"
#include "support/support.h"

START_TEST(tokenize_lines)
{
    char args[1024];
    snprintf(args, sizeof args, "tokenize --tokenizer '%s'", fixture_tokenizer("bert-uncased"));
    int status;
    json_t *out = run_cli(args,
                          "{\"text\": \"Hello world!\"}\n"
                          "{\"text\": 42}\n"
                          "not json\n"
                          "{\"text\": \"who founded apple?\", \"pair\": \"Apple Inc.\"}\n",
                          &status);
    ck_assert_int_eq(status, 1);
    ck_assert_uint_eq(json_array_size(out), 4);
    /* refs-dev.json entry 0 of bert-uncased */
    json_t *want = json_loads("{\"ids\": [101, 7592, 2088, 999, 102],"
                              " \"tokens\": [\"[CLS]\", \"hello\", \"world\", \"!\", \"[SEP]\"],"
                              " \"offsets\": [[0, 0], [0, 5], [6, 11], [11, 12], [0, 0]],"
                              " \"type_ids\": [0, 0, 0, 0, 0]}",
                              0, NULL);
    json_t *got = json_array_get(out, 0);
    const char *key;
    json_t *v;
    json_object_foreach(want, key, v)
    {
        ck_assert_msg(json_equal(json_object_get(got, key), v), "field %s differs", key);
    }
    ck_assert_ptr_nonnull(json_object_get(json_array_get(out, 1), "error"));
    ck_assert_ptr_nonnull(json_object_get(json_array_get(out, 2), "error"));
    /* the pair after the bad lines is still answered: pairs-dev.json question ids */
    json_t *pair_ids = json_object_get(json_array_get(out, 3), "ids");
    ck_assert_int_eq(json_integer_value(json_array_get(pair_ids, 1)), 2040);
    ck_assert_int_eq(json_integer_value(json_array_get(pair_ids, 5)), 102);
    ck_assert_int_eq(json_integer_value(json_array_get(pair_ids, 6)), 6207);
    json_decref(want);
    json_decref(out);
}
END_TEST

START_TEST(tokenize_no_special_and_good_exit)
{
    char args[1024];
    snprintf(args, sizeof args, "tokenize --no-special --tokenizer '%s'",
             fixture_tokenizer("gpt2"));
    int status;
    json_t *out = run_cli(args, "{\"text\": \"Hello, <mask> world\"}\n", &status);
    ck_assert_int_eq(status, 0);
    json_t *want = json_loads("[15496, 11, 1279, 27932, 29, 995]", 0, NULL);
    ck_assert(json_equal(json_object_get(json_array_get(out, 0), "ids"), want));
    json_decref(want);
    json_decref(out);
}
END_TEST

START_TEST(detokenize_lines)
{
    char args[1024];
    snprintf(args, sizeof args, "detokenize --tokenizer '%s'", fixture_tokenizer("bert-uncased"));
    int status;
    json_t *out = run_cli(args,
                          "{\"ids\": [101, 7592, 2088, 999, 102]}\n"
                          "{\"ids\": [\"x\"]}\n"
                          "{\"ids\": [7592]}\n",
                          &status);
    ck_assert_int_eq(status, 1);
    ck_assert_uint_eq(json_array_size(out), 3);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(out, 0), "text")),
                     "hello world!");
    ck_assert_ptr_nonnull(json_object_get(json_array_get(out, 1), "error"));
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(out, 2), "text")), "hello");
    json_decref(out);
}
END_TEST

START_TEST(bad_tokenizer_dir)
{
    int status;
    json_t *out =
        run_cli("tokenize --tokenizer /nonexistent 2>/dev/null", "{\"text\": \"a\"}\n", &status);
    ck_assert_int_ne(status, 0);
    json_decref(out);
    out = run_cli("tokenize 2>/dev/null", "", &status);
    ck_assert_int_eq(status, 2);
    json_decref(out);
}
END_TEST

Suite *suite_cli(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("tokenize");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, tokenize_lines);
    tcase_add_test(tc, tokenize_no_special_and_good_exit);
    tcase_add_test(tc, detokenize_lines);
    tcase_add_test(tc, bad_tokenizer_dir);
    suite_add_tcase(s, tc);
    return s;
}
