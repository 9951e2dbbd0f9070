/* test_pretokenize: every pre-tokenizer row against the splits and offsets of HF's own
 * unit tests (the *.rs files of tokenizers/src/pre_tokenizers), the parse errors of malformed
 * objects, and the real tokenizer.json pre-tokenizers of the fixtures (gpt2, roberta,
 * llama3, qwen3): HF's BPE tokens never cross a pre-tokenized split, so the fixture
 * tokens must regroup exactly into our splits. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "suites.h"
#include "support/support.h"
#include "tokenizer/tok.h"
#include "tokenizer/utf8.h"

/* One expected split: its text and (start, end) offsets. */
struct want {
    const char *s;
    uint32_t start, end;
};

static struct pretokenizer *make(const char *json)
{
    json_error_t jerr;
    json_t *j = json_loads(json, 0, &jerr);
    ck_assert_msg(j != NULL, "bad test JSON: %s", jerr.text);
    struct pretokenizer *p = NULL;
    struct err e = {0};
    int rc = pretokenizer_new(j, &p, &e);
    ck_assert_msg(rc == 0, "pretokenizer_new(%s): %s", json, e.msg);
    json_decref(j);
    return p;
}

/* Parses json expecting ERR_FORMAT with a message containing `needle`. */
static void expect_parse_error(const char *json, const char *needle)
{
    json_t *j = json_loads(json, 0, NULL);
    ck_assert_ptr_nonnull(j);
    struct pretokenizer *p = NULL;
    struct err e = {0};
    int rc = pretokenizer_new(j, &p, &e);
    json_decref(j);
    ck_assert_msg(rc == ERR_FORMAT, "%s: rc %d, want ERR_FORMAT", json, rc);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(e.msg, needle) != NULL, "%s: message '%s' lacks '%s'", json, e.msg,
                  needle);
}

static void pt_from_len(struct pretok *pt, const char *text, size_t len)
{
    memset(pt, 0, sizeof *pt);
    struct nstr ns;
    ck_assert_int_eq(nstr_init(&ns, text, len, 0), 0);
    ck_assert_int_eq(pretok_push(pt, &ns, -1), 0);
}

static void pt_from(struct pretok *pt, const char *text)
{
    pt_from_len(pt, text, strlen(text));
}

static void apply(const struct pretokenizer *p, struct pretok *pt)
{
    struct err e = {0};
    int rc = pretokenizer_apply(p, pt, &e);
    ck_assert_msg(rc == 0, "pretokenizer_apply: %s", e.msg);
}

/* Compares the splits with HF get_splits: original offsets, or (normalized = true)
 * the running offsets over the normalized texts. */
static void assert_splits(const struct pretok *pt, const struct want *w, size_t n, bool normalized)
{
    uint32_t at = 0;
    for (size_t i = 0; i < pt->n && i < n; i++) {
        const struct nstr *ns = &pt->v[i].ns;
        uint32_t s = normalized ? at : ns->orig_start;
        uint32_t e = normalized ? at + (uint32_t)ns->len : ns->orig_end;
        at += (uint32_t)ns->len;
        ck_assert_msg(strcmp(ns->s, w[i].s) == 0 && s == w[i].start && e == w[i].end,
                      "split %zu: ('%s', (%u, %u)), want ('%s', (%u, %u))", i, ns->s, s, e, w[i].s,
                      w[i].start, w[i].end);
    }
    ck_assert_msg(pt->n == n, "%zu splits, want %zu", pt->n, n);
}

/* Runs json over text and checks the splits. */
static void run(const char *json, const char *text, const struct want *w, size_t n, bool normalized)
{
    struct pretokenizer *p = make(json);
    struct pretok pt;
    pt_from(&pt, text);
    apply(p, &pt);
    assert_splits(&pt, w, n, normalized);
    pretok_fini(&pt);
    pretokenizer_free(p);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- bert.rs ---- */

START_TEST(bert_basic)
{
    static const struct want w[] = {{"Hey", 0, 3},   {"friend", 4, 10}, {"!", 10, 11},
                                    {"How", 16, 19}, {"are", 20, 23},   {"you", 24, 27},
                                    {"?", 27, 28},   {"!", 28, 29},     {"?", 29, 30}};
    run("{\"type\":\"BertPreTokenizer\"}", "Hey friend!     How are you?!?", w, N(w), false);
}
END_TEST

START_TEST(bert_chinese_chars)
{
    /* The normalizer put spaces around every CJK char first (HF's transform). */
    struct nstr ns;
    const char *text = "野口里佳 Noguchi Rika";
    ck_assert_int_eq(nstr_init(&ns, text, strlen(text), 0), 0);
    struct nchange_vec ch = {0};
    for (size_t i = 0; i < ns.len;) {
        size_t l;
        uint32_t cp = utf8_decode(ns.s + i, &l);
        if (cp > 0x4E00) {
            nchange_push(&ch, ' ', 0);
            nchange_push(&ch, cp, 1);
            nchange_push(&ch, ' ', 1);
        } else {
            nchange_push(&ch, cp, 0);
        }
        i += l;
    }
    ck_assert_int_eq(nstr_transform(&ns, ch.v, ch.n, 0), 0);
    nchange_vec_fini(&ch);
    struct pretok pt = {0};
    ck_assert_int_eq(pretok_push(&pt, &ns, -1), 0);
    struct pretokenizer *p = make("{\"type\":\"BertPreTokenizer\"}");
    apply(p, &pt);
    static const struct want w[] = {{"野", 0, 3},  {"口", 3, 6},        {"里", 6, 9},
                                    {"佳", 9, 12}, {"Noguchi", 13, 20}, {"Rika", 21, 25}};
    assert_splits(&pt, w, N(w), false);
    pretok_fini(&pt);
    pretokenizer_free(p);
}
END_TEST

/* ---- whitespace.rs ---- */

START_TEST(whitespace_basic)
{
    static const char js[] = "{\"type\":\"Whitespace\"}";
    static const struct want w1[] = {{"Hey", 0, 3}, {"man", 4, 7}, {"!", 7, 8}};
    run(js, "Hey man!", w1, N(w1), false);
    static const struct want w2[] = {
        {"How", 0, 3}, {"are", 4, 7}, {"you", 8, 11}, {"doing", 12, 17}, {"?", 17, 18}};
    run(js, "How are you doing?", w2, N(w2), false);
    run(js, "\n", NULL, 0, false);
}
END_TEST

START_TEST(whitespace_split)
{
    static const char js[] = "{\"type\":\"WhitespaceSplit\"}";
    static const struct want w1[] = {{"Hey", 0, 3}, {"man!", 4, 8}};
    run(js, "Hey man!", w1, N(w1), false);
    static const struct want w2[] = {{"Hey,", 0, 4}, {"man,", 5, 9}, {"Good?", 10, 15}};
    run(js, "Hey, man, Good?", w2, N(w2), false);
}
END_TEST

/* ---- byte_level.rs ---- */

static const char bl_no_prefix[] =
    "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true}";

START_TEST(byte_level_pre_tokenization)
{
    static const struct want w[] = {{"Hello", 0, 5},   {"Ġmy", 5, 8},    {"Ġfriend", 8, 15},
                                    {",", 15, 16},     {"Ġhow", 16, 20}, {"Ġis", 20, 23},
                                    {"Ġyour", 23, 28}, {"Ġday", 28, 32}, {"Ġgoing", 32, 38},
                                    {"?", 38, 39}};
    run(bl_no_prefix, "Hello my friend, how is your day going?", w, N(w), false);
}
END_TEST

START_TEST(byte_level_no_regex)
{
    static const struct want w[] = {{"ĠHelloĠmyĠfriend,ĠhowĠisĠyourĠdayĠgoing?", 0, 39}};
    run("{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,"
        "\"use_regex\":false}",
        "Hello my friend, how is your day going?", w, N(w), false);
}
END_TEST

START_TEST(byte_level_add_prefix_space)
{
    static const struct want w[] = {{"ĠHello", 0, 7},  {"Ġmy", 7, 11},   {"Ġfriend", 11, 19},
                                    {",", 19, 20},     {"Ġhow", 20, 25}, {"Ġis", 25, 29},
                                    {"Ġyour", 29, 35}, {"Ġday", 35, 40}, {"Ġgoing", 40, 47},
                                    {"?", 47, 48}};
    static const char js[] = "{\"type\":\"ByteLevel\",\"add_prefix_space\":true,"
                             "\"trim_offsets\":true}";
    run(js, " Hello my friend, how is your day going?", w, N(w), true);
    run(js, "Hello my friend, how is your day going?", w, N(w), true);
}
END_TEST

START_TEST(byte_level_newlines_and_spaces)
{
    static const struct want w1[] = {
        {"Hello", 0, 5}, {"Ġthere", 5, 11}, {"Ċ", 11, 12}, {"Hello", 12, 17}, {"Ġthere", 17, 23}};
    run(bl_no_prefix, "Hello there\nHello there", w1, N(w1), false);
    static const struct want w2[] = {
        {"Hello", 0, 5}, {"Ġthere", 5, 11}, {"ĠĠĠĠĠĠ", 11, 17}, {"Ġdear", 17, 22}};
    run(bl_no_prefix, "Hello there       dear", w2, N(w2), false);
}
END_TEST

START_TEST(byte_level_char_split_up)
{
    static const struct want w1[] = {{"i", 0, 1}, {"âŃ¢", 1, 4}, {"j", 4, 5}};
    run(bl_no_prefix, "i⭢j", w1, N(w1), false);
    static const struct want w2[] = {{"i", 0, 1}, {"âŃ¢", 1, 7}, {"j", 7, 8}};
    run(bl_no_prefix, "i⭢j", w2, N(w2), true);
}
END_TEST

/* ---- metaspace.rs ---- */

START_TEST(metaspace_basic)
{
    static const char js[] = "{\"type\":\"Metaspace\",\"replacement\":\"▁\","
                             "\"prepend_scheme\":\"always\",\"split\":true}";
    static const struct want n1[] = {{"▁Hey", 0, 6}, {"▁friend!", 6, 16}};
    static const struct want o1[] = {{"▁Hey", 0, 3}, {"▁friend!", 3, 11}};
    run(js, "Hey friend!", n1, N(n1), true);
    run(js, "Hey friend!", o1, N(o1), false);
    static const struct want n2[] = {
        {"▁Hey", 0, 6}, {"▁", 6, 9}, {"▁", 9, 12}, {"▁friend!", 12, 22}};
    static const struct want o2[] = {{"▁Hey", 0, 3}, {"▁", 3, 4}, {"▁", 4, 5}, {"▁friend!", 5, 13}};
    run(js, "Hey   friend!", n2, N(n2), true);
    run(js, "Hey   friend!", o2, N(o2), false);
}
END_TEST

/* HF non_legacy_meta_space: "first" prepends only to the split starting the input. */
static void run_after_s_split(const char *js, const char *text, const struct want *w, size_t n,
                              struct pretok *keep)
{
    struct pretokenizer *pre = make("{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(<s>)\"},"
                                    "\"behavior\":\"Isolated\",\"invert\":false}");
    struct pretokenizer *p = make(js);
    struct pretok pt;
    pt_from(&pt, text);
    apply(pre, &pt);
    apply(p, &pt);
    assert_splits(&pt, w, n, true);
    if (keep)
        *keep = pt;
    else
        pretok_fini(&pt);
    pretokenizer_free(pre);
    pretokenizer_free(p);
}

START_TEST(metaspace_prepend_first)
{
    static const char first[] = "{\"type\":\"Metaspace\",\"replacement\":\"▁\","
                                "\"prepend_scheme\":\"first\",\"split\":false}";
    static const struct want w1[] = {
        {"▁Hey▁my▁friend▁", 0, 23}, {"<s>", 23, 26}, {"how▁are▁you", 26, 41}};
    struct pretok pt;
    run_after_s_split(first, "Hey my friend <s>how▁are you", w1, N(w1), &pt);
    struct pretokenizer *always = make("{\"type\":\"Metaspace\",\"replacement\":\"▁\","
                                       "\"prepend_scheme\":\"always\",\"split\":true}");
    apply(always, &pt);
    static const struct want w2[] = {{"▁Hey", 0, 6},   {"▁my", 6, 11},   {"▁friend", 11, 20},
                                     {"▁", 20, 23},    {"▁<s>", 23, 29}, {"▁how", 29, 35},
                                     {"▁are", 35, 41}, {"▁you", 41, 47}};
    assert_splits(&pt, w2, N(w2), true);
    pretok_fini(&pt);
    pretokenizer_free(always);

    static const struct want w3[] = {{"▁Hey▁", 0, 9}, {"<s>", 9, 12}, {"how", 12, 15}};
    run_after_s_split(first, " Hey <s>how", w3, N(w3), NULL);
    static const struct want w4[] = {{"▁Hey▁", 0, 9}, {"<s>", 9, 12},   {"how▁", 12, 18},
                                     {"<s>", 18, 21}, {"are▁", 21, 27}, {"<s>", 27, 30},
                                     {"▁you", 30, 36}};
    run_after_s_split(first, " Hey <s>how <s>are <s> you", w4, N(w4), NULL);
}
END_TEST

START_TEST(metaspace_legacy_fields)
{
    /* mod.rs test_deserialize: add_prefix_space true (and str_rep) mean "always". */
    static const struct want w[] = {{"▁Hey", 0, 3}, {"▁friend!", 3, 11}};
    run("{\"type\":\"Metaspace\",\"replacement\":\"▁\",\"str_rep\":\"▁\","
        "\"add_prefix_space\":true}",
        "Hey friend!", w, N(w), false);
    run("{\"type\":\"Metaspace\",\"replacement\":\"▁\"}", "Hey friend!", w, N(w), false);
    /* never: no prefix; split on the replacement still. */
    static const struct want w2[] = {{"Hey", 0, 3}, {"▁friend!", 3, 11}};
    run("{\"type\":\"Metaspace\",\"replacement\":\"▁\",\"add_prefix_space\":false,"
        "\"prepend_scheme\":\"never\"}",
        "Hey friend!", w2, N(w2), false);
}
END_TEST

/* ---- split.rs ---- */

START_TEST(split_behaviors)
{
    static const char *fmt =
        "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\w+|[^\\\\w\\\\s]+\"},"
        "\"behavior\":\"%s\",\"invert\":true}";
    static const char text[] = "How are you doing?";
    static const struct want removed[] = {
        {"How", 0, 3}, {"are", 4, 7}, {"you", 8, 11}, {"doing", 12, 17}, {"?", 17, 18}};
    static const struct want isolated[] = {{"How", 0, 3},     {" ", 3, 4},    {"are", 4, 7},
                                           {" ", 7, 8},       {"you", 8, 11}, {" ", 11, 12},
                                           {"doing", 12, 17}, {"?", 17, 18}};
    static const struct want prev[] = {
        {"How ", 0, 4}, {"are ", 4, 8}, {"you ", 8, 12}, {"doing", 12, 17}, {"?", 17, 18}};
    static const struct want next[] = {
        {"How", 0, 3}, {" are", 3, 7}, {" you", 7, 11}, {" doing", 11, 17}, {"?", 17, 18}};
    static const struct want contiguous[] = {{"How", 0, 3},     {" ", 3, 4},    {"are", 4, 7},
                                             {" ", 7, 8},       {"you", 8, 11}, {" ", 11, 12},
                                             {"doing?", 12, 18}};
    static const struct {
        const char *name;
        const struct want *w;
        size_t n;
    } cases[] = {{"Removed", removed, N(removed)},
                 {"Isolated", isolated, N(isolated)},
                 {"MergedWithPrevious", prev, N(prev)},
                 {"MergedWithNext", next, N(next)},
                 {"Contiguous", contiguous, N(contiguous)}};
    for (size_t i = 0; i < N(cases); i++) {
        char js[256];
        snprintf(js, sizeof js, fmt, cases[i].name);
        run(js, text, cases[i].w, cases[i].n, false);
    }
}
END_TEST

START_TEST(split_string_regex_invert)
{
    /* HF regex_string and invert: these pairs give the same splits. */
    static const struct want w1[] = {{"Hey,", 0, 4}, {"man!", 5, 9}};
    run("{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s+\"},\"behavior\":\"Removed\","
        "\"invert\":false}",
        "Hey, man!", w1, N(w1), false);
    run("{\"type\":\"Split\",\"pattern\":{\"String\":\" \"},\"behavior\":\"Removed\","
        "\"invert\":false}",
        "Hey, man!", w1, N(w1), false);
    static const struct want w2[] = {{"Hello", 0, 5}, {"Hello", 6, 11}, {"Hello", 12, 17}};
    run("{\"type\":\"Split\",\"pattern\":{\"String\":\" \"},\"behavior\":\"Removed\","
        "\"invert\":false}",
        "Hello Hello Hello", w2, N(w2), false);
    run("{\"type\":\"Split\",\"pattern\":{\"String\":\"Hello\"},\"behavior\":\"Removed\","
        "\"invert\":true}",
        "Hello Hello Hello", w2, N(w2), false);
    /* A String is literal: regex metacharacters do not act. */
    static const struct want w3[] = {{"a", 0, 1}, {"b", 3, 4}, {"c", 6, 7}};
    run("{\"type\":\"Split\",\"pattern\":{\"String\":\".*\"},\"behavior\":\"Removed\","
        "\"invert\":false}",
        "a.*b.*c", w3, N(w3), false);
}
END_TEST

/* The Llama 3 pattern (tiktoken cl100k style), with splits that follow from its
 * alternatives: case-insensitive contractions, numbers in runs of up to 3 digits,
 * whitespace before a word left to the word. */
START_TEST(split_llama3_pattern)
{
    static const char js[] =
        "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|"
        "[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+"
        "[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"},\"behavior\":\"Isolated\","
        "\"invert\":false}";
    /* At "  123" the first space ends a \s+(?!\S) match, the second is a bare \s+
     * (digits take no space prefix). */
    static const struct want w[] = {{"I", 0, 1},     {"'M", 1, 3},       {" fine", 3, 8},
                                    {" ", 8, 9},     {" ", 9, 10},       {"123", 10, 13},
                                    {"456", 13, 16}, {"!!\n\n", 16, 20}, {"ok", 20, 22}};
    run(js, "I'M fine  123456!!\n\nok", w, N(w), false);
}
END_TEST

/* HF compiles Split regexes with Oniguruma (Ruby syntax); its doc/RE defines the
 * classes: \s is 9-D, 85, Zl, Zp, Zs (so U+180E is not space, unlike PCRE2's \s), \w is
 * L, M, N, Pc (a combining mark is a word char), \h is a hex digit; ^ and $ are line
 * anchors and (?m) makes '.' match a newline. */
static void run_regex(const char *re_json, const char *behavior, const char *text,
                      const struct want *w, size_t n)
{
    char js[512];
    snprintf(js, sizeof js,
             "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"%s\"},\"behavior\":\"%s\","
             "\"invert\":false}",
             re_json, behavior);
    run(js, text, w, n, false);
}

START_TEST(split_oniguruma_semantics)
{
    static const struct want w1[] = {{"a\xE1\xA0\x8E"
                                      "b",
                                      0, 5},
                                     {"c", 6, 7}};
    run_regex("\\\\s+", "Removed",
              "a\xE1\xA0\x8E"
              "b c",
              w1, N(w1));
    run_regex("[\\\\s]+", "Removed",
              "a\xE1\xA0\x8E"
              "b c",
              w1, N(w1));
    static const struct want w2[] = {{"e\xCC\x81t\xE2\x80\xBF"
                                      "e",
                                      0, 8},
                                     {" ", 8, 9},
                                     {"x", 9, 10}};
    run_regex("\\\\w+", "Isolated",
              "e\xCC\x81t\xE2\x80\xBF"
              "e x",
              w2, N(w2));
    static const struct want w3[] = {{"zz", 0, 2}, {"09aF", 2, 6}, {"g", 6, 7}};
    run_regex("\\\\h+", "Isolated", "zz09aFg", w3, N(w3));
    static const struct want w4[] = {{"a", 0, 1}, {"\n", 1, 2}, {"a", 2, 3}};
    run_regex("^a", "Isolated", "a\na", w4, N(w4));
    run_regex("a$", "Isolated", "a\na", w4, N(w4));
    static const struct want w5[] = {{"a\nb", 0, 3}, {"c", 3, 4}};
    run_regex("(?m:a.b)", "Isolated", "a\nbc", w5, N(w5));
    /* Case-insensitive group of the Llama 3 / Qwen 3 patterns. */
    static const struct want w6[] = {{"X", 0, 1}, {"'LL", 1, 4}, {"'Ve", 4, 7}};
    run_regex("(?i:'s|'t|'re|'ve|'m|'ll|'d)", "Isolated", "X'LL'Ve", w6, N(w6));
}
END_TEST

/* ---- punctuation.rs, digits.rs, sequence.rs, delimiter, fixed_length.rs ---- */

START_TEST(punctuation_basic)
{
    static const struct want w[] = {
        {"Hey friend", 0, 10}, {"!", 10, 11}, {"     How are you", 11, 27},
        {"?", 27, 28},         {"!", 28, 29}, {"?", 29, 30}};
    run("{\"type\":\"Punctuation\"}", "Hey friend!     How are you?!?", w, N(w), false);
    run("{\"type\":\"Punctuation\",\"behavior\":\"Isolated\"}", "Hey friend!     How are you?!?", w,
        N(w), false);
}
END_TEST

START_TEST(digits_basic)
{
    static const struct want w1[] = {{"Hey ", 0, 4}, {"123", 4, 7}, {" friend!", 7, 15}};
    run("{\"type\":\"Digits\",\"individual_digits\":false}", "Hey 123 friend!", w1, N(w1), false);
    static const struct want w2[] = {
        {"Hey ", 0, 4}, {"1", 4, 5}, {"2", 5, 6}, {"3", 6, 7}, {" friend!", 7, 15}};
    run("{\"type\":\"Digits\",\"individual_digits\":true}", "Hey 123 friend!", w2, N(w2), false);
}
END_TEST

START_TEST(sequence_basic)
{
    static const struct want w[] = {{"Hey", 0, 3},   {"friend", 4, 10}, {"!", 10, 11},
                                    {"How", 16, 19}, {"are", 20, 23},   {"you", 24, 27},
                                    {"?", 27, 28},   {"!", 28, 29},     {"?", 29, 30}};
    run("{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"WhitespaceSplit\"},"
        "{\"type\":\"Punctuation\"}]}",
        "Hey friend!     How are you?!?", w, N(w), false);
}
END_TEST

START_TEST(delimiter_and_fixed_length)
{
    static const struct want w1[] = {{"a", 0, 1}, {"bé", 2, 5}, {"c", 6, 7}};
    run("{\"type\":\"CharDelimiterSplit\",\"delimiter\":\"-\"}", "a-bé-c", w1, N(w1), false);
    /* fixed_length.rs: chunks of chars, the last one shorter. */
    static const struct want w2[] = {{"Hello", 0, 5}, {" worl", 5, 10}, {"d", 10, 11}};
    run("{\"type\":\"FixedLength\"}", "Hello world", w2, N(w2), false);
    static const struct want w3[] = {{"ab", 0, 2}, {"cé", 2, 5}, {"f", 5, 6}};
    run("{\"type\":\"FixedLength\",\"length\":2}", "abcéf", w3, N(w3), false);
}
END_TEST

/* Added-token splits are never touched (HF Split with tokens). */
START_TEST(added_splits_untouched)
{
    struct pretok pt = {0};
    struct nstr a, b;
    ck_assert_int_eq(nstr_init(&a, "<s>", 3, 0), 0);
    ck_assert_int_eq(nstr_init(&b, "hi there", 8, 3), 0);
    ck_assert_int_eq(pretok_push(&pt, &a, 7), 0);
    ck_assert_int_eq(pretok_push(&pt, &b, -1), 0);
    struct pretokenizer *p = make(bl_no_prefix);
    apply(p, &pt);
    static const struct want w[] = {{"<s>", 0, 3}, {"hi", 3, 5}, {"Ġthere", 5, 11}};
    assert_splits(&pt, w, N(w), false);
    ck_assert_int_eq(pt.v[0].added_id, 7);
    ck_assert_int_eq(pt.v[1].added_id, -1);
    pretok_fini(&pt);
    pretokenizer_free(p);
}
END_TEST

/* ---- bad input ---- */

START_TEST(parse_errors)
{
    expect_parse_error("{\"type\":\"Nope\"}", "unsupported type 'Nope'");
    expect_parse_error("{\"types\":\"Whitespace\"}", "'type'");
    expect_parse_error("[1]", "must be an object");
    expect_parse_error("{\"type\":\"ByteLevel\",\"trim_offsets\":true}", "'add_prefix_space'");
    expect_parse_error("{\"type\":\"ByteLevel\",\"add_prefix_space\":1,\"trim_offsets\":true}",
                       "'add_prefix_space'");
    expect_parse_error("{\"type\":\"Split\",\"pattern\":\"x\",\"behavior\":\"Removed\","
                       "\"invert\":false}",
                       "'pattern'");
    expect_parse_error("{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(ab\"},"
                       "\"behavior\":\"Removed\",\"invert\":false}",
                       "missing closing parenthesis");
    expect_parse_error("{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(ab\"},"
                       "\"behavior\":\"Removed\",\"invert\":false}",
                       "offset 3");
    expect_parse_error("{\"type\":\"Split\",\"pattern\":{\"String\":\"a\"},"
                       "\"behavior\":\"Split\",\"invert\":false}",
                       "'behavior'");
    expect_parse_error("{\"type\":\"Split\",\"pattern\":{\"String\":\"a\"},"
                       "\"behavior\":\"Removed\"}",
                       "'invert'");
    expect_parse_error("{\"type\":\"Metaspace\",\"add_prefix_space\":true}", "'replacement'");
    expect_parse_error("{\"type\":\"Metaspace\",\"replacement\":\"ab\"}", "single character");
    expect_parse_error("{\"type\":\"Metaspace\",\"replacement\":\"_\",\"add_prefix_space\":false,"
                       "\"prepend_scheme\":\"always\"}",
                       "does not match declared prepend_scheme");
    expect_parse_error("{\"type\":\"Metaspace\",\"replacement\":\"_\",\"add_prefix_space\":false}",
                       "does not match declared prepend_scheme");
    expect_parse_error("{\"type\":\"Metaspace\",\"replacement\":\"_\",\"prepend_scheme\":\"x\"}",
                       "'prepend_scheme'");
    expect_parse_error("{\"type\":\"Digits\"}", "'individual_digits'");
    expect_parse_error("{\"type\":\"Punctuation\",\"behavior\":3}", "'behavior'");
    expect_parse_error("{\"type\":\"CharDelimiterSplit\",\"delimiter\":\"\"}", "'delimiter'");
    expect_parse_error("{\"type\":\"FixedLength\",\"length\":0}", "'length'");
    expect_parse_error("{\"type\":\"Sequence\"}", "'pretokenizers'");
    expect_parse_error("{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Whitespace\"},"
                       "{\"type\":\"Digits\"}]}",
                       "pretokenizers[1]: pre-tokenizer Digits: field 'individual_digits'");
}
END_TEST

/* ---- fixtures: HF's tokens regroup exactly into our splits ---- */

static bool is_nfc(const char *s)
{
    utf8proc_uint8_t *n = utf8proc_NFC((const utf8proc_uint8_t *)s);
    bool same = n && strcmp((const char *)n, s) == 0;
    free(n);
    return same;
}

static void check_fixture(const char *name, bool nfc_normalizer)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizer.json", fixture_tokenizer(name));
    json_error_t jerr;
    json_t *tj = json_load_file(path, 0, &jerr);
    ck_assert_msg(tj != NULL, "%s: %s", path, jerr.text);
    snprintf(path, sizeof path, "%s/refs-dev.json", fixture_tokenizer(name));
    json_t *refs = json_load_file(path, JSON_ALLOW_NUL, &jerr);
    ck_assert_msg(refs != NULL, "%s: %s", path, jerr.text);
    struct pretokenizer *p = NULL;
    struct err e = {0};
    ck_assert_msg(pretokenizer_new(json_object_get(tj, "pre_tokenizer"), &p, &e) == 0, "%s: %s",
                  name, e.msg);
    const json_t *added = json_object_get(tj, "added_tokens");
    size_t checked = 0, ri;
    json_t *ref;
    json_array_foreach(refs, ri, ref)
    {
        const json_t *jtext = json_object_get(ref, "text");
        const char *text = json_string_value(jtext);
        size_t text_len = json_string_length(jtext);
        /* Texts holding added tokens or changed by NFC need more than the pre-tokenizer. */
        bool skip = nfc_normalizer && !is_nfc(text);
        size_t ai;
        json_t *at;
        json_array_foreach(added, ai, at)
        {
            const json_t *c = json_object_get(at, "content");
            if (memmem(text, text_len, json_string_value(c), json_string_length(c)))
                skip = true;
        }
        if (skip)
            continue;
        struct pretok pt;
        pt_from_len(&pt, text, text_len);
        apply(p, &pt);
        const json_t *toks = json_object_get(ref, "tokens");
        size_t t = 0, nt = json_array_size(toks);
        for (size_t i = 0; i < pt.n; i++) {
            const struct nstr *ns = &pt.v[i].ns;
            size_t got = 0;
            while (got < ns->len && t < nt) {
                const char *tok = json_string_value(json_array_get(toks, t));
                bool special = false;
                json_array_foreach(added, ai, at)
                {
                    if (strcmp(tok, json_string_value(json_object_get(at, "content"))) == 0)
                        special = true;
                }
                t++;
                if (special)
                    continue;
                size_t tl = strlen(tok);
                ck_assert_msg(got + tl <= ns->len && memcmp(ns->s + got, tok, tl) == 0,
                              "%s: text '%s': token '%s' does not fit split %zu '%s' at %zu", name,
                              text, tok, i, ns->s, got);
                got += tl;
            }
            ck_assert_msg(got == ns->len, "%s: text '%s': split '%s' not covered", name, text,
                          ns->s);
        }
        pretok_fini(&pt);
        checked++;
    }
    ck_assert_msg(checked >= 20, "%s: only %zu texts checked", name, checked);
    pretokenizer_free(p);
    json_decref(refs);
    json_decref(tj);
}

START_TEST(fixture_gpt2)
{
    check_fixture("gpt2", false);
    check_fixture("roberta", false);
}
END_TEST

START_TEST(fixture_llama3)
{
    check_fixture("llama3", false);
}
END_TEST

START_TEST(fixture_qwen3)
{
    check_fixture("qwen3", true);
}
END_TEST

Suite *suite_pretokenize(void)
{
    Suite *s = suite_create("pretokenize");
    TCase *tc = tcase_create("hf");
    tcase_add_test(tc, bert_basic);
    tcase_add_test(tc, bert_chinese_chars);
    tcase_add_test(tc, whitespace_basic);
    tcase_add_test(tc, whitespace_split);
    tcase_add_test(tc, byte_level_pre_tokenization);
    tcase_add_test(tc, byte_level_no_regex);
    tcase_add_test(tc, byte_level_add_prefix_space);
    tcase_add_test(tc, byte_level_newlines_and_spaces);
    tcase_add_test(tc, byte_level_char_split_up);
    tcase_add_test(tc, metaspace_basic);
    tcase_add_test(tc, metaspace_prepend_first);
    tcase_add_test(tc, metaspace_legacy_fields);
    tcase_add_test(tc, split_behaviors);
    tcase_add_test(tc, split_string_regex_invert);
    tcase_add_test(tc, split_llama3_pattern);
    tcase_add_test(tc, split_oniguruma_semantics);
    tcase_add_test(tc, punctuation_basic);
    tcase_add_test(tc, digits_basic);
    tcase_add_test(tc, sequence_basic);
    tcase_add_test(tc, delimiter_and_fixed_length);
    tcase_add_test(tc, added_splits_untouched);
    tcase_add_test(tc, parse_errors);
    suite_add_tcase(s, tc);
    TCase *fx = tcase_create("fixtures");
    tcase_set_timeout(fx, 120);
    tcase_add_test(fx, fixture_gpt2);
    tcase_add_test(fx, fixture_llama3);
    tcase_add_test(fx, fixture_qwen3);
    suite_add_tcase(s, fx);
    return s;
}
