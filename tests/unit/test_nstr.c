/* test_nstr: the normalized string against the expectations of HF's own unit tests
 * (tokenizers/src/tokenizer/normalizer.rs): text and per-byte alignments after
 * filter, transform, prepend, append, strip, replace and split. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <string.h>

#include "suites.h"
#include "tokenizer/nstr.h"
#include "tokenizer/unicode.h"

static void init(struct nstr *ns, const char *s)
{
    ck_assert_int_eq(nstr_init(ns, s, strlen(s), 0), 0);
}

static void assert_align(const struct nstr *ns, const unsigned (*want)[2], size_t n)
{
    ck_assert_uint_eq(ns->len, n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(ns->align[i].start == want[i][0] && ns->align[i].end == want[i][1],
                      "byte %zu: (%u, %u), want (%u, %u)", i, ns->align[i].start, ns->align[i].end,
                      want[i][0], want[i][1]);
    }
}

static bool not_n(uint32_t cp, void *ctx)
{
    (void)ctx;
    return cp != 'n';
}

START_TEST(filter_removes_and_keeps_alignment)
{
    struct nstr ns;
    init(&ns, "élégant");
    ck_assert_int_eq(nstr_filter(&ns, not_n, NULL), 0);
    ck_assert_str_eq(ns.s, "élégat");
    static const unsigned want[][2] = {{0, 2}, {0, 2}, {2, 3}, {3, 5},
                                       {3, 5}, {5, 6}, {6, 7}, {8, 9}};
    assert_align(&ns, want, 8);
    nstr_fini(&ns);
}
END_TEST

START_TEST(transform_adds_characters)
{
    /* HF added_characters_alignment: spaces around CJK chars. */
    struct nstr ns;
    init(&ns, "野口 No");
    struct nchange ch[] = {{' ', 0}, {0x91CE, 1}, {' ', 1}, {' ', 0}, {0x53E3, 1},
                           {' ', 1}, {' ', 0},    {'N', 0}, {'o', 0}};
    ck_assert_int_eq(nstr_transform(&ns, ch, 9, 0), 0);
    ck_assert_str_eq(ns.s, " 野  口  No");
    static const unsigned want[][2] = {{0, 3}, {0, 3}, {0, 3}, {0, 3}, {0, 3}, {3, 6}, {3, 6},
                                       {3, 6}, {3, 6}, {3, 6}, {6, 7}, {7, 8}, {8, 9}};
    assert_align(&ns, want, 13);
    nstr_fini(&ns);
}
END_TEST

START_TEST(prepend_and_append)
{
    struct nstr ns;
    init(&ns, "there");
    ck_assert_int_eq(nstr_prepend(&ns, "Hey "), 0);
    ck_assert_str_eq(ns.s, "Hey there");
    static const unsigned want[][2] = {{0, 1}, {0, 1}, {0, 1}, {0, 1}, {0, 1},
                                       {1, 2}, {2, 3}, {3, 4}, {4, 5}};
    assert_align(&ns, want, 9);
    struct nspan o = nstr_original_span(&ns, 0, 4);
    ck_assert_uint_eq(o.start, 0);
    ck_assert_uint_eq(o.end, 1);
    nstr_fini(&ns);

    init(&ns, "Hey");
    ck_assert_int_eq(nstr_append(&ns, " there"), 0);
    ck_assert_str_eq(ns.s, "Hey there");
    static const unsigned want2[][2] = {{0, 1}, {1, 2}, {2, 3}, {2, 3}, {2, 3},
                                        {2, 3}, {2, 3}, {2, 3}, {2, 3}};
    assert_align(&ns, want2, 9);
    nstr_fini(&ns);
}
END_TEST

START_TEST(strip_keeps_original_range)
{
    struct nstr ns;
    init(&ns, "  This is an example  ");
    ck_assert_int_eq(nstr_lrstrip(&ns, true, false), 0);
    ck_assert_str_eq(ns.s, "This is an example  ");
    struct nspan o = nstr_original_span(&ns, 0, ns.len);
    ck_assert_uint_eq(o.start, 2);
    ck_assert_uint_eq(o.end, 22);
    nstr_fini(&ns);

    init(&ns, "  你好asa \n");
    ck_assert_int_eq(nstr_lrstrip(&ns, true, true), 0);
    ck_assert_str_eq(ns.s, "你好asa");
    o = nstr_original_span(&ns, 0, ns.len);
    ck_assert_uint_eq(o.start, 2);
    ck_assert_uint_eq(o.end, 11);
    nstr_fini(&ns);
}
END_TEST

static bool is_dash(uint32_t cp, void *ctx)
{
    (void)ctx;
    return cp == '-';
}

START_TEST(split_behaviors)
{
    /* HF split test over "The-final--countdown" with '-' and each behaviour. */
    static const char *const want[5][7] = {
        {"The", "final", "countdown"},
        {"The", "-", "final", "-", "-", "countdown"},
        {"The-", "final-", "-", "countdown"},
        {"The", "-final", "-", "-countdown"},
        {"The", "-", "final", "--", "countdown"},
    };
    static const enum split_behavior b[5] = {SPLIT_REMOVED, SPLIT_ISOLATED,
                                             SPLIT_MERGED_WITH_PREVIOUS, SPLIT_MERGED_WITH_NEXT,
                                             SPLIT_CONTIGUOUS};
    struct nstr ns;
    init(&ns, "The-final--countdown");
    struct nmatch_vec m = {0};
    ck_assert_int_eq(nstr_find_char(&ns, is_dash, NULL, &m), 0);
    for (int k = 0; k < 5; k++) {
        struct nstr_vec out = {0};
        ck_assert_int_eq(nstr_split(&ns, &m, b[k], &out), 0);
        size_t n = 0;
        while (n < 7 && want[k][n])
            n++;
        ck_assert_msg(out.n == n, "behaviour %d: %zu pieces, want %zu", k, out.n, n);
        for (size_t i = 0; i < n; i++)
            ck_assert_str_eq(out.v[i].s, want[k][i]);
        nstr_vec_fini(&out);
    }
    nmatch_vec_fini(&m);
    nstr_fini(&ns);
}
END_TEST

static bool is_space(uint32_t cp, void *ctx)
{
    (void)ctx;
    return cp == ' ';
}

START_TEST(replace_patterns)
{
    struct nstr ns;
    struct nmatch_vec m = {0};
    init(&ns, " Hello   friend ");
    ck_assert_int_eq(nstr_find_char(&ns, is_space, NULL, &m), 0);
    ck_assert_int_eq(nstr_replace(&ns, &m, "_"), 0);
    ck_assert_str_eq(ns.s, "_Hello___friend_");
    nstr_fini(&ns);

    init(&ns, "aaaab");
    ck_assert_int_eq(nstr_find_string(&ns, "aaa", 3, &m), 0);
    ck_assert_int_eq(nstr_replace(&ns, &m, "b"), 0);
    ck_assert_str_eq(ns.s, "bab");
    /* the replacement takes the alignment of the last replaced byte */
    ck_assert_uint_eq(ns.align[0].start, 2);
    ck_assert_uint_eq(ns.align[0].end, 3);
    nstr_fini(&ns);

    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR) "\\s+", PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP, &code, &off, NULL);
    ck_assert_ptr_nonnull(re);
    init(&ns, " Hello   friend ");
    ck_assert_int_eq(nstr_find_regex(&ns, re, &m), 0);
    ck_assert_int_eq(nstr_replace(&ns, &m, "_"), 0);
    ck_assert_str_eq(ns.s, "_Hello_friend_");
    nstr_fini(&ns);
    pcre2_code_free(re);
    nmatch_vec_fini(&m);
}
END_TEST

START_TEST(slice_keeps_absolute_offsets)
{
    struct nstr ns, sl;
    ck_assert_int_eq(nstr_init(&ns, "abc défg", strlen("abc défg"), 100), 0);
    ck_assert_int_eq(nstr_slice(&ns, 4, 7, &sl), 0); /* "dé" */
    ck_assert_str_eq(sl.s, "dé");
    ck_assert_uint_eq(sl.orig_start, 104);
    ck_assert_uint_eq(sl.orig_end, 107);
    struct nspan o = nstr_original_span(&sl, 1, 3);
    ck_assert_uint_eq(o.start, 105);
    ck_assert_uint_eq(o.end, 107);
    nstr_fini(&sl);
    nstr_fini(&ns);
}
END_TEST

Suite *suite_nstr(void)
{
    Suite *s = suite_create("nstr");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, filter_removes_and_keeps_alignment);
    tcase_add_test(tc, transform_adds_characters);
    tcase_add_test(tc, prepend_and_append);
    tcase_add_test(tc, strip_keeps_original_range);
    tcase_add_test(tc, split_behaviors);
    tcase_add_test(tc, replace_patterns);
    tcase_add_test(tc, slice_keeps_absolute_offsets);
    suite_add_tcase(s, tc);
    return s;
}
