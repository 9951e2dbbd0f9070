/* test_normalize: every normalizer row against Hugging Face's expectations: the unit tests
 * of tokenizers (the normalizers sources, tokenizer/normalizer.rs, spm_precompiled's tests) and
 * what the fixtures' reference encodings (refs-dev.json, computed by HF) show about the
 * normalized text and its offsets. Alignments are in original BYTES (HF's own). Also the
 * bad-input paths: each must fail with ERR_FORMAT and a message naming the field. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites.h"
#include "support/support.h"
#include "tokenizer/precompiled.h"
#include "tokenizer/tok.h"

static struct normalizer *build(const char *json)
{
    json_error_t je;
    json_t *j = json_loads(json, 0, &je);
    ck_assert_msg(j != NULL, "bad test JSON: %s", je.text);
    struct normalizer *n = NULL;
    struct err e = {0};
    int rc = normalizer_new(j, &n, &e);
    ck_assert_msg(rc == 0, "normalizer_new(%s): %s", json, e.msg);
    json_decref(j);
    return n;
}

/* Builds from json, normalizes text into *ns; the normalizer is freed. */
static void run(const char *json, const char *text, struct nstr *ns)
{
    struct normalizer *n = build(json);
    ck_assert_int_eq(nstr_init(ns, text, strlen(text), 0), 0);
    struct err e = {0};
    ck_assert_msg(normalizer_apply(n, ns, &e) == 0, "apply: %s", e.msg);
    normalizer_free(n);
}

/* Expects normalizer_new to fail with ERR_FORMAT and a message containing `needle`. */
static void build_fails(const char *json, const char *needle)
{
    json_t *j = json_loads(json, 0, NULL);
    ck_assert_ptr_nonnull(j);
    struct normalizer *n = (struct normalizer *)1;
    struct err e = {0};
    int rc = normalizer_new(j, &n, &e);
    json_decref(j);
    ck_assert_int_eq(rc, ERR_FORMAT);
    ck_assert_ptr_null(n);
    ck_assert_msg(strstr(e.msg, needle) != NULL, "message '%s' lacks '%s'", e.msg, needle);
}

static void assert_align(const struct nstr *ns, const unsigned (*want)[2], size_t n)
{
    ck_assert_uint_eq(ns->len, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(ns->align[i].start == want[i][0] && ns->align[i].end == want[i][1],
                      "byte %zu: (%u, %u), want (%u, %u)", i, ns->align[i].start, ns->align[i].end,
                      want[i][0], want[i][1]);
}

/* Every byte of the char at normalized byte `at` maps to original [s, e). */
static void assert_char_align(const struct nstr *ns, size_t at, unsigned s, unsigned e)
{
    ck_assert_uint_lt(at, ns->len);
    ck_assert_msg(ns->align[at].start == s && ns->align[at].end == e,
                  "byte %zu: (%u, %u), want (%u, %u)", at, ns->align[at].start, ns->align[at].end,
                  s, e);
}

/* ---- Unicode forms (tokenizer/normalizer.rs and normalizers/unicode.rs tests) ---- */

START_TEST(nfd_adds_new_chars)
{
    struct nstr ns;
    run("{\"type\":\"NFD\"}", "élégant", &ns);
    ck_assert_str_eq(ns.s, "e\xcc\x81le\xcc\x81gant");
    static const unsigned want[][2] = {{0, 2}, {0, 2}, {0, 2}, {2, 3}, {3, 5}, {3, 5},
                                       {3, 5}, {5, 6}, {6, 7}, {7, 8}, {8, 9}};
    assert_align(&ns, want, 11);
    nstr_fini(&ns);
}
END_TEST

START_TEST(nfd_then_strip_accents)
{
    /* remove_chars_added_by_nfd: nfd().filter(!mark) */
    struct nstr ns;
    run("{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFD\"},{\"type\":\"StripAccents\"}]}",
        "élégant", &ns);
    ck_assert_str_eq(ns.s, "elegant");
    static const unsigned want[][2] = {{0, 2}, {2, 3}, {3, 5}, {5, 6}, {6, 7}, {7, 8}, {8, 9}};
    assert_align(&ns, want, 7);
    nstr_fini(&ns);
}
END_TEST

START_TEST(nfkc_ligature)
{
    /* normalizers/unicode.rs test_nfkc: U+FB01 -> "fi", both aligned to the ligature. */
    struct nstr ns;
    run("{\"type\":\"NFKC\"}", "\xef\xac\x81", &ns);
    ck_assert_str_eq(ns.s, "fi");
    static const unsigned want[][2] = {{0, 3}, {0, 3}};
    assert_align(&ns, want, 2);
    nstr_fini(&ns);
}
END_TEST

START_TEST(nfkc_math_letters)
{
    /* normalizer.rs slice(): "𝔾𝕠𝕠𝕕 𝕞𝕠𝕣𝕟𝕚𝕟𝕘" -> "Good morning", original 0..4 is "𝔾" -> "G". */
    struct nstr ns;
    run("{\"type\":\"NFKC\"}", "𝔾𝕠𝕠𝕕 𝕞𝕠𝕣𝕟𝕚𝕟𝕘", &ns);
    ck_assert_str_eq(ns.s, "Good morning");
    assert_char_align(&ns, 0, 0, 4);
    assert_char_align(&ns, 3, 12, 16);
    assert_char_align(&ns, 4, 16, 17);
    assert_char_align(&ns, 5, 17, 21);
    nstr_fini(&ns);
}
END_TEST

START_TEST(nfkd_ellipsis_then_lowercase)
{
    /* normalizer.rs transform_check: "abc…" nfkd is "abc..." (… gives ., +1, +1). */
    struct nstr ns;
    run("{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFKD\"},{\"type\":\"Lowercase\"}]}",
        "abc…", &ns);
    ck_assert_str_eq(ns.s, "abc...");
    static const unsigned want[][2] = {{0, 1}, {1, 2}, {2, 3}, {3, 6}, {3, 6}, {3, 6}};
    assert_align(&ns, want, 6);
    nstr_fini(&ns);
}
END_TEST

START_TEST(nfc_composes_onto_first_char)
{
    /* qwen3 refs-dev (NFC): in "combining e\u0301 vs", the token " é" covers chars 9..11,
     * i.e. the composed é is aligned to the 'e' alone, not to the combining accent. */
    struct nstr ns;
    run("{\"type\":\"NFC\"}", "combining e\xcc\x81 vs", &ns);
    ck_assert_str_eq(ns.s, "combining \xc3\xa9 vs");
    assert_char_align(&ns, 10, 10, 11);
    assert_char_align(&ns, 11, 10, 11);
    assert_char_align(&ns, 12, 13, 14); /* the space after: byte 13 of the original */
    ck_assert_uint_eq(ns.len, 15);
    nstr_fini(&ns);

    /* Already composed text (and Hangul syllables) comes back unchanged. */
    run("{\"type\":\"NFC\"}", "ÀÉÎÕÜ àéîõü 한국어", &ns);
    ck_assert_str_eq(ns.s, "ÀÉÎÕÜ àéîõü 한국어");
    assert_char_align(&ns, 2, 2, 4);
    assert_char_align(&ns, 22, 22, 25);
    assert_char_align(&ns, 25, 25, 28);
    nstr_fini(&ns);
}
END_TEST

START_TEST(nfc_exclusions_and_hangul)
{
    /* U+0958 is a composition exclusion: NFC keeps it decomposed (Unicode NFC, which the
     * Rust crate implements); jamo L+V+T compose to a syllable. */
    struct nstr ns;
    run("{\"type\":\"NFC\"}", "\xe0\xa5\x98", &ns);
    ck_assert_str_eq(ns.s, "\xe0\xa4\x95\xe0\xa4\xbc");
    nstr_fini(&ns);
    run("{\"type\":\"NFC\"}", "\xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab", &ns);
    ck_assert_str_eq(ns.s, "한");
    /* Two chars absorbed: change -2, so aligned to the first jamo only. */
    assert_char_align(&ns, 0, 0, 3);
    ck_assert_uint_eq(ns.len, 3);
    nstr_fini(&ns);
}
END_TEST

START_TEST(nfd_canonical_order_moves_changes)
{
    /* "ạ́" written a + U+0301 (ccc 230) + U+0323 (ccc 220): NFD reorders the marks to
     * U+0323, U+0301 (Unicode canonical ordering). Both marks had change 0, so the
     * alignments follow positions, as the crate's buffered (char, change) pairs do. */
    struct nstr ns;
    run("{\"type\":\"NFD\"}", "a\xcc\x81\xcc\xa3", &ns);
    ck_assert_str_eq(ns.s, "a\xcc\xa3\xcc\x81");
    static const unsigned want[][2] = {{0, 1}, {1, 3}, {1, 3}, {3, 5}, {3, 5}};
    assert_align(&ns, want, 5);
    nstr_fini(&ns);
}
END_TEST

/* ---- StripAccents, Lowercase (normalizers/strip.rs tests) ---- */

START_TEST(strip_accents_cases)
{
    struct nstr ns;
    run("{\"type\":\"StripAccents\"}", "Me llamo\xcc\x81", &ns);
    ck_assert_str_eq(ns.s, "Me llamo");
    nstr_fini(&ns);
    run("{\"type\":\"StripAccents\"}", "这很简单", &ns);
    ck_assert_str_eq(ns.s, "这很简单");
    nstr_fini(&ns);

    /* test_strip_accents_multiple */
    run("{\"type\":\"StripAccents\"}", "e\xcc\x84\xcc\x84\xcc\x84o", &ns);
    ck_assert_str_eq(ns.s, "eo");
    static const unsigned want[][2] = {{0, 1}, {7, 8}};
    assert_align(&ns, want, 2);
    nstr_fini(&ns);
}
END_TEST

#define NFKD_STRIP_LOWER                                                                           \
    "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFKD\"},{\"type\":\"StripAccents\"},"     \
    "{\"type\":\"Lowercase\"}]}"

START_TEST(vietnamese_and_thai_bugs)
{
    struct nstr ns;
    run(NFKD_STRIP_LOWER, "ậ…", &ns);
    ck_assert_str_eq(ns.s, "a...");
    nstr_fini(&ns);
    run(NFKD_STRIP_LOWER,
        "Cụ thể, bạn sẽ tham gia một nhóm các giám đốc điều hành tổ chức, các nhà lãnh đạo "
        "doanh nghiệp, các học giả, chuyên gia phát triển và tình nguyện viên riêng biệt trong "
        "lĩnh vực phi lợi nhuận…",
        &ns);
    ck_assert_str_eq(ns.s,
                     "cu the, ban se tham gia mot nhom cac giam đoc đieu hanh to chuc, cac nha "
                     "lanh đao doanh nghiep, cac hoc gia, chuyen gia phat trien va tinh nguyen "
                     "vien rieng biet trong linh vuc phi loi nhuan...");
    nstr_fini(&ns);
    run(NFKD_STRIP_LOWER, "ำน\xe0\xb9\x89ำ3ลำ", &ns);
    ck_assert_str_eq(ns.s, "านา3ลา");
    nstr_fini(&ns);
}
END_TEST

START_TEST(lowercase_expands_dotted_i)
{
    /* Rust to_lowercase('İ') is "i\u0307": the second char is an insertion. */
    struct nstr ns;
    run("{\"type\":\"Lowercase\"}", "İX", &ns);
    ck_assert_str_eq(ns.s, "i\xcc\x87x");
    static const unsigned want[][2] = {{0, 2}, {0, 2}, {0, 2}, {2, 3}};
    assert_align(&ns, want, 4);
    nstr_fini(&ns);
}
END_TEST

/* ---- BertNormalizer (bert-uncased refs-dev: tokens and offsets computed by HF) ---- */

#define BERT                                                                                       \
    "{\"type\":\"BertNormalizer\",\"clean_text\":true,\"handle_chinese_chars\":true,"              \
    "\"strip_accents\":null,\"lowercase\":true}"

START_TEST(bert_uncased)
{
    struct nstr ns;
    run(BERT, "Café naïve résumé coöperate façade", &ns);
    ck_assert_str_eq(ns.s, "cafe naive resume cooperate facade");
    /* "cafe" is offsets (0, 4) in chars: the e comes from é (bytes 3..5). */
    assert_char_align(&ns, 3, 3, 5);
    nstr_fini(&ns);

    run(BERT, "İstanbul ILIK ılık", &ns);
    ck_assert_str_eq(ns.s, "istanbul ilik ılık");
    assert_char_align(&ns, 0, 0, 2);
    nstr_fini(&ns);

    /* Controls and NUL removed; zero-width chars (Cf) removed; NBSP becomes a space. */
    run(BERT,
        "control\x07"
        "chars\x1b[0m and \xc2\xa0nbsp",
        &ns);
    ck_assert_str_eq(ns.s, "controlchars[0m and  nbsp");
    nstr_fini(&ns);
    run(BERT, "zero\xe2\x80\x8bwidth\xe2\x80\x8cjoiners\xe2\x80\x8d here", &ns);
    ck_assert_str_eq(ns.s, "zerowidthjoiners here");
    nstr_fini(&ns);
    run(BERT, "\x01null\tbyte\xef\xbf\xbd", &ns);
    ck_assert_str_eq(ns.s, "null byte");
    assert_char_align(&ns, 0, 1, 2);
    nstr_fini(&ns);

    /* CJK chars get spaces around them, aligned to the char. */
    run(BERT, "mixed 日本 and", &ns);
    ck_assert_str_eq(ns.s, "mixed  日  本  and");
    static const unsigned want[][2] = {{0, 1},  {1, 2},   {2, 3},   {3, 4},   {4, 5},
                                       {5, 6},  {6, 9},   {6, 9},   {6, 9},   {6, 9},
                                       {6, 9},  {9, 12},  {9, 12},  {9, 12},  {9, 12},
                                       {9, 12}, {12, 13}, {13, 14}, {14, 15}, {15, 16}};
    assert_align(&ns, want, 20);
    nstr_fini(&ns);

    /* Hangul decomposes to jamo, all aligned to their syllable (refs: [0,1] x3). */
    run(BERT, "한국", &ns);
    ck_assert_str_eq(ns.s, "\xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab\xe1\x84\x80\xe1\x85\xae"
                           "\xe1\x86\xa8");
    for (size_t i = 0; i < 9; i++)
        assert_char_align(&ns, i, 0, 3);
    for (size_t i = 9; i < 18; i++)
        assert_char_align(&ns, i, 3, 6);
    nstr_fini(&ns);

    /* No NFKC in BERT: the ligature stays (refs token "ﬁ"). */
    run(BERT, "ﬁnancial", &ns);
    ck_assert_str_eq(ns.s, "ﬁnancial");
    nstr_fini(&ns);
}
END_TEST

START_TEST(bert_options)
{
    /* Cased BERT: no lowercase, and strip_accents null follows lowercase (false). */
    struct nstr ns;
    run("{\"type\":\"BertNormalizer\",\"clean_text\":true,\"handle_chinese_chars\":false,"
        "\"strip_accents\":null,\"lowercase\":false}",
        "Café 日\xe2\x80\xa8", &ns);
    ck_assert_str_eq(ns.s, "Café 日 "); /* U+2028 is Rust whitespace: a space */
    nstr_fini(&ns);
    run("{\"type\":\"BertNormalizer\",\"clean_text\":false,\"handle_chinese_chars\":false,"
        "\"strip_accents\":true,\"lowercase\":false}",
        "Café\x07", &ns);
    ck_assert_str_eq(ns.s, "Cafe\x07");
    nstr_fini(&ns);

    /* bert.rs is_control is unicode_categories' is_other(): Cc, Cf, Co but not Cn, so
     * an unassigned code point (U+0378) stays while private use (U+E000) goes. */
    run(BERT,
        "a\xcd\xb8"
        "b\xee\x80\x80"
        "c",
        &ns);
    ck_assert_str_eq(ns.s, "a\xcd\xb8"
                           "bc");
    nstr_fini(&ns);
}
END_TEST

/* ---- Strip, Replace, Prepend, ByteLevel, Nmt ---- */

START_TEST(strip_both_and_one_side)
{
    struct nstr ns;
    run("{\"type\":\"Strip\",\"strip_left\":true,\"strip_right\":true}", "  Hi  ", &ns);
    ck_assert_str_eq(ns.s, "Hi");
    static const unsigned want[][2] = {{2, 3}, {3, 4}};
    assert_align(&ns, want, 2);
    nstr_fini(&ns);
    run("{\"type\":\"Strip\",\"strip_left\":false,\"strip_right\":true}", "  Hi  ", &ns);
    ck_assert_str_eq(ns.s, "  Hi");
    nstr_fini(&ns);
}
END_TEST

START_TEST(replace_string_and_regex)
{
    struct nstr ns;
    run("{\"type\":\"Replace\",\"pattern\":{\"String\":\"''\"},\"content\":\"\\\"\"}",
        "This is a ''test''", &ns);
    ck_assert_str_eq(ns.s, "This is a \"test\"");
    nstr_fini(&ns);
    run("{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"\\\\s+\"},\"content\":\" \"}",
        "This     is   a         test", &ns);
    ck_assert_str_eq(ns.s, "This is a test");
    nstr_fini(&ns);
    /* Llama-style: spaces to ▁. */
    run("{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"▁\"}", "a b", &ns);
    ck_assert_str_eq(ns.s, "a▁b");
    static const unsigned want[][2] = {{0, 1}, {1, 2}, {1, 2}, {1, 2}, {2, 3}};
    assert_align(&ns, want, 5);
    nstr_fini(&ns);
}
END_TEST

START_TEST(prepend_hello)
{
    /* normalizers/prepend.rs test_prepend */
    struct nstr ns;
    run("{\"type\":\"Prepend\",\"prepend\":\"▁\"}", "Hello", &ns);
    ck_assert_str_eq(ns.s, "▁Hello");
    static const unsigned want[][2] = {{0, 1}, {0, 1}, {0, 1}, {0, 1},
                                       {1, 2}, {2, 3}, {3, 4}, {4, 5}};
    assert_align(&ns, want, 8);
    nstr_fini(&ns);
    run("{\"type\":\"Prepend\",\"prepend\":\"▁\"}", "", &ns);
    ck_assert_str_eq(ns.s, "");
    nstr_fini(&ns);
}
END_TEST

START_TEST(byte_level_normalizer)
{
    /* normalizers/byte_level.rs test_byte_level_normalize */
    struct nstr ns;
    run("{\"type\":\"ByteLevel\"}", "Hello 我今天能为你做什么", &ns);
    ck_assert_str_eq(ns.s, "HelloĠæĪĳä»Ĭå¤©èĥ½ä¸ºä½łåģļä»Ģä¹Ī");
    ck_assert_uint_eq(ns.len, 61);
    for (unsigned i = 0; i < 5; i++)
        assert_char_align(&ns, i, i, i + 1);
    assert_char_align(&ns, 5, 5, 6);
    assert_char_align(&ns, 6, 5, 6);
    for (unsigned c = 0; c < 9; c++)
        for (unsigned k = 0; k < 6; k++)
            assert_char_align(&ns, 7 + c * 6 + k, 6 + c * 3, 9 + c * 3);
    nstr_fini(&ns);
}
END_TEST

START_TEST(nmt_controls_and_spaces)
{
    struct nstr ns;
    run("{\"type\":\"Nmt\"}",
        "a\x01"
        "b\tc\xe2\x80\x8b"
        "d",
        &ns);
    ck_assert_str_eq(ns.s, "ab c d");
    nstr_fini(&ns);
}
END_TEST

START_TEST(legacy_untagged)
{
    /* normalizers/mod.rs post_processor_deserialization_no_type */
    struct nstr ns;
    run("{\"strip_left\":false,\"strip_right\":true}", " a ", &ns);
    ck_assert_str_eq(ns.s, " a");
    nstr_fini(&ns);
    run("{\"prepend\":\"a\"}", "b", &ns);
    ck_assert_str_eq(ns.s, "ab");
    nstr_fini(&ns);
    build_fails("{\"trim_offsets\":true,\"add_prefix_space\":true}", "'type'");
    build_fails("{\"type\":\"Sequence\",\"normalizers\":[{}]}", "normalizers[0]");
}
END_TEST

/* ---- Precompiled ---- */

static struct normalizer *xlmr(void)
{
    char path[700];
    snprintf(path, sizeof path, "%s/tokenizer.json", fixture_tokenizer("xlmr-unigram"));
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    ck_assert_msg(root != NULL, "%s: %s", path, je.text);
    struct normalizer *n = NULL;
    struct err e = {0};
    ck_assert_msg(normalizer_new(json_object_get(root, "normalizer"), &n, &e) == 0, "%s", e.msg);
    json_decref(root);
    return n;
}

static void xlmr_run(struct normalizer *n, const char *text, struct nstr *ns)
{
    ck_assert_int_eq(nstr_init(ns, text, strlen(text), 0), 0);
    struct err e = {0};
    ck_assert_msg(normalizer_apply(n, ns, &e) == 0, "%s", e.msg);
}

START_TEST(precompiled_xlmr_mappings)
{
    /* Expectations from xlmr-unigram refs-dev.json (tokens and char offsets by HF). */
    struct normalizer *n = xlmr();
    struct nstr ns;

    xlmr_run(n, "ﬁnancial ﬂow", &ns); /* "▁financial" (0, 8): f and i both from ﬁ */
    ck_assert_str_eq(ns.s, "financial flow");
    assert_char_align(&ns, 0, 0, 3);
    assert_char_align(&ns, 1, 0, 3);
    assert_char_align(&ns, 2, 3, 4);
    nstr_fini(&ns);

    xlmr_run(n, "Ｈｅｌｌｏ\xe3\x80\x80Ｗｏｒｌｄ", &ns); /* "▁Hello", "▁World" */
    ck_assert_str_eq(ns.s, "Hello World");
    assert_char_align(&ns, 5, 15, 18);
    nstr_fini(&ns);

    xlmr_run(n, "𝐁𝐨𝐥𝐝 𝕄𝕒𝕥𝕙", &ns);
    ck_assert_str_eq(ns.s, "Bold Math");
    nstr_fini(&ns);

    xlmr_run(n, "Ⅻ ½ ² ㎏ ℃", &ns); /* ▁X I I (all 0..1), ▁1 ⁄ 2, ▁2, ▁k g, ▁ ° C */
    ck_assert_str_eq(ns.s, "XII 1⁄2 2 kg °C");
    assert_char_align(&ns, 2, 0, 3);
    nstr_fini(&ns);

    /* Precomposed é kept; e + U+0301 (a 3-byte grapheme) becomes é aligned to the e. */
    xlmr_run(n, "combining e\xcc\x81 vs é", &ns);
    ck_assert_str_eq(ns.s, "combining é vs é");
    assert_char_align(&ns, 10, 10, 11);
    assert_char_align(&ns, 11, 10, 11);
    assert_char_align(&ns, 12, 13, 14);
    nstr_fini(&ns);

    /* Controls dropped (refs: "▁control" (0, 7), "ch" (8, 10), "[" (14, 15)). */
    xlmr_run(n,
             "control\x07"
             "chars\x1b[0m",
             &ns);
    ck_assert_str_eq(ns.s, "controlchars[0m");
    assert_char_align(&ns, 7, 8, 9);
    assert_char_align(&ns, 12, 14, 15);
    nstr_fini(&ns);

    /* NUL is never looked up (the trie walk stops at a 0 byte): refs "<unk>" (0, 1). */
    ck_assert_int_eq(nstr_init(&ns, "\0null", 5, 0), 0);
    struct err e = {0};
    ck_assert_int_eq(normalizer_apply(n, &ns, &e), 0);
    ck_assert_uint_eq(ns.len, 5);
    ck_assert_int_eq(memcmp(ns.s, "\0null", 5), 0);
    nstr_fini(&ns);

    /* U+200B and U+200C become spaces ("▁width" (5, 10), "▁join" (11, 15)). */
    xlmr_run(n, "zero\xe2\x80\x8bwidth\xe2\x80\x8cjoiners", &ns);
    ck_assert_str_eq(ns.s, "zero width joiners");
    nstr_fini(&ns);

    /* "…" -> "..." ("▁..." (48, 49) in the smart-quotes text). */
    xlmr_run(n, "dash …", &ns);
    ck_assert_str_eq(ns.s, "dash ...");
    assert_char_align(&ns, 7, 5, 8);
    nstr_fini(&ns);

    /* Untouched text is left exactly as it was. */
    xlmr_run(n, "Hello world! ÀÉÎÕÜ", &ns);
    ck_assert_str_eq(ns.s, "Hello world! ÀÉÎÕÜ");
    nstr_fini(&ns);
    normalizer_free(n);
}
END_TEST

START_TEST(precompiled_expansion_then_removal)
{
    /* normalizers/precompiled.rs expansion_followed_by_removal: "™\x1eg" -> "TMg" (™ is
     * NFKC "TM", U+001E a removed control in the nmt_nfkc map XLM-R uses). By HF's
     * replace() arithmetic the M's +1 is cancelled by the removal, so M takes the place
     * (and the alignment) of the removed U+001E. */
    struct normalizer *n = xlmr();
    struct nstr ns;
    xlmr_run(n, "™\x1eg", &ns);
    ck_assert_str_eq(ns.s, "TMg");
    static const unsigned want[][2] = {{0, 3}, {3, 4}, {4, 5}};
    assert_align(&ns, want, 3);
    nstr_fini(&ns);
    normalizer_free(n);
}
END_TEST

START_TEST(precompiled_transform_lookups)
{
    /* spm_precompiled tests: transform("𝔾") = "G", transform("𝕠") = "o", "ﬁ" -> "fi",
     * " " has no entry. */
    char path[700];
    snprintf(path, sizeof path, "%s/tokenizer.json", fixture_tokenizer("xlmr-unigram"));
    json_t *root = json_load_file(path, 0, NULL);
    ck_assert_ptr_nonnull(root);
    json_t *cm = json_object_get(json_object_get(root, "normalizer"), "precompiled_charsmap");
    unsigned char *map;
    size_t len, bad;
    ck_assert_int_eq(
        precompiled_base64_decode(json_string_value(cm), json_string_length(cm), &map, &len, &bad),
        0);
    ck_assert_uint_eq(len, 240007);
    struct precompiled *p;
    struct err e = {0};
    ck_assert_int_eq(precompiled_new(map, len, &p, &e), 0);
    const char *r;
    size_t rl;
    ck_assert(precompiled_transform(p, "𝔾", 4, &r, &rl));
    ck_assert_uint_eq(rl, 1);
    ck_assert_int_eq(r[0], 'G');
    ck_assert(precompiled_transform(p, "𝕠", 4, &r, &rl));
    ck_assert_uint_eq(rl, 1);
    ck_assert_int_eq(r[0], 'o');
    ck_assert(precompiled_transform(p, "\xef\xac\x81", 3, &r, &rl));
    ck_assert_uint_eq(rl, 2);
    ck_assert_int_eq(memcmp(r, "fi", 2), 0);
    ck_assert(!precompiled_transform(p, " ", 1, &r, &rl));
    ck_assert(!precompiled_transform(p, "a", 1, &r, &rl));

    /* Truncations of a real charsmap are rejected, never read past. */
    struct precompiled *q = NULL;
    ck_assert_int_eq(precompiled_new(map, 3, &q, &e), ERR_FORMAT);
    ck_assert_int_eq(precompiled_new(map, 1000, &q, &e), ERR_FORMAT);
    ck_assert_ptr_null(q);
    ck_assert_ptr_nonnull(strstr(e.msg, "precompiled_charsmap"));
    precompiled_free(p);
    free(map);
    json_decref(root);
}
END_TEST

static char *base64(const unsigned char *b, size_t n)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = malloc((n + 2) / 3 * 4 + 1), *w = o;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t q = (uint32_t)b[i] << 16 | (i + 1 < n ? (uint32_t)b[i + 1] << 8 : 0) |
                     (i + 2 < n ? b[i + 2] : 0);
        *w++ = a[q >> 18];
        *w++ = a[(q >> 12) & 63];
        *w++ = i + 1 < n ? a[(q >> 6) & 63] : '=';
        *w++ = i + 2 < n ? a[q & 63] : '=';
    }
    *w = '\0';
    return o;
}

START_TEST(precompiled_overlapping_prefix)
{
    /* spm_precompiled's overlapping_prefix_charsmap(): keys "a" -> "x", "ab" -> "y" and
     * "a\u0300" -> "y". HF's normalizer uses transform(), the FIRST (shortest) prefix
     * match, not the longest: "abc" gives "x". A grapheme under 6 bytes is looked up
     * whole, so "a\u0300" becomes "x" (the accent is swallowed); a longer one goes char
     * by char. */
    uint32_t trie[256] = {0};
    trie['a'] = 'a' | (1u << 8) | (1u << 10);
    trie[2] = 'b' | (1u << 8) | (1u << 10);
    trie[3] = 2;
    trie[172] = 0xcc | (1u << 10);
    trie[45] = 0x80 | (1u << 8) | (1u << 10);
    trie[44] = 2;
    unsigned char map[4 + sizeof trie + 4];
    uint32_t tb = sizeof trie;
    for (int k = 0; k < 4; k++)
        map[k] = (unsigned char)(tb >> (8 * k));
    for (size_t i = 0; i < 256; i++)
        for (int k = 0; k < 4; k++)
            map[4 + i * 4 + k] = (unsigned char)(trie[i] >> (8 * k));
    memcpy(map + 4 + sizeof trie, "x\0y\0", 4);
    struct precompiled *p;
    struct err e = {0};
    ck_assert_int_eq(precompiled_new(map, sizeof map, &p, &e), 0);
    const char *r;
    size_t rl;
    ck_assert(precompiled_transform(p, "abc", 3, &r, &rl));
    ck_assert_uint_eq(rl, 1);
    ck_assert_int_eq(r[0], 'x');
    ck_assert(precompiled_transform(p, "a\xcc\x80z", 4, &r, &rl));
    ck_assert_int_eq(r[0], 'x');
    ck_assert(!precompiled_transform(p, "b", 1, &r, &rl));
    ck_assert(!precompiled_transform(p, "\xcc\x80", 2, &r, &rl));
    precompiled_free(p);

    char *b64 = base64(map, sizeof map);
    size_t jl = strlen(b64) + 100;
    char *json = malloc(jl);
    snprintf(json, jl, "{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"%s\"}", b64);
    struct nstr ns;
    run(json, "ab a\xcc\x80 a\xcc\x80\xcc\x80\xcc\x80", &ns);
    ck_assert_str_eq(ns.s, "xb x x\xcc\x80\xcc\x80\xcc\x80");
    /* "a\u0300" -> "x": one char for two, aligned to the a only. */
    assert_char_align(&ns, 3, 3, 4);
    assert_char_align(&ns, 4, 6, 7);
    nstr_fini(&ns);
    free(json);
    free(b64);
}
END_TEST

/* ---- bad input ---- */

START_TEST(bad_input)
{
    build_fails("[]", "must be an object");
    build_fails("{\"type\":\"Frobnicate\"}", "unsupported type 'Frobnicate'");
    build_fails("{\"type\":7}", "'type' must be a string");
    build_fails("{\"type\":\"Replace\",\"pattern\":\"x\",\"content\":\"y\"}",
                "field 'pattern' must be an object");
    build_fails("{\"type\":\"Replace\",\"pattern\":{\"String\":\"x\",\"Regex\":\"y\"},"
                "\"content\":\"y\"}",
                "exactly one key");
    build_fails("{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"(\"},\"content\":\"y\"}",
                "pattern.Regex");
    build_fails("{\"type\":\"Replace\",\"pattern\":{\"String\":\"x\"}}", "'content'");
    build_fails("{\"type\":\"Strip\",\"strip_left\":true}", "'strip_right'");
    build_fails("{\"type\":\"BertNormalizer\",\"lowercase\":\"yes\"}", "'lowercase'");
    build_fails("{\"type\":\"Prepend\"}", "'prepend'");
    build_fails("{\"type\":\"Sequence\"}", "'normalizers'");
    build_fails("{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},{\"type\":\"X\"}]}",
                "normalizers[1]: normalizer: unsupported type 'X'");
    build_fails("{\"type\":\"Precompiled\"}", "'precompiled_charsmap' is missing");
    build_fails("{\"type\":\"Precompiled\",\"precompiled_charsmap\":5}", "must be a string");
    build_fails("{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"AAA*\"}", "not valid base64");
    build_fails("{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"AAA\"}", "not valid base64");
    build_fails("{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"AB==\"}", "not valid base64");
    build_fails("{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"\"}", "truncated");
    /* trie size 8 but only 4 bytes follow */
    build_fails("{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"CAAAAAAAAAA=\"}",
                "truncated");
    /* trie of 1 unit, then a blob that is not UTF-8 (0xFF) */
    build_fails("{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"BAAAAAAAAAD/\"}",
                "not valid UTF-8");
}
END_TEST

START_TEST(base64_strict)
{
    unsigned char *out;
    size_t n, bad;
    ck_assert_int_eq(precompiled_base64_decode("TWFu", 4, &out, &n, &bad), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(memcmp(out, "Man", 3), 0);
    free(out);
    ck_assert_int_eq(precompiled_base64_decode("TWE=", 4, &out, &n, &bad), 0);
    ck_assert_uint_eq(n, 2);
    free(out);
    ck_assert_int_eq(precompiled_base64_decode("TQ==", 4, &out, &n, &bad), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(out[0], 'M');
    free(out);
    ck_assert_int_eq(precompiled_base64_decode("TQ==TQ==", 8, &out, &n, &bad), ERR_FORMAT);
    ck_assert_int_eq(precompiled_base64_decode("T=Q=", 4, &out, &n, &bad), ERR_FORMAT);
    ck_assert_int_eq(precompiled_base64_decode("TR==", 4, &out, &n, &bad), ERR_FORMAT);
}
END_TEST

START_TEST(table_rows_unique_and_complete)
{
    static const char *const want[] = {
        "BertNormalizer", "NFC", "NFD",     "NFKC",    "NFKD",      "Lowercase",   "StripAccents",
        "Strip",          "Nmt", "Replace", "Prepend", "ByteLevel", "Precompiled", "Sequence"};
    size_t n = 0;
    for (; normalizer_table[n]; n++) {
        ck_assert_ptr_nonnull(normalizer_table[n]->parse);
        ck_assert_ptr_nonnull(normalizer_table[n]->apply);
        ck_assert_ptr_nonnull(normalizer_table[n]->free);
        for (size_t k = 0; k < n; k++)
            ck_assert_str_ne(normalizer_table[k]->type, normalizer_table[n]->type);
    }
    ck_assert_uint_eq(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++) {
        const struct normalizer_ops *ops;
        TOK_TABLE_FIND(normalizer_table, want[i], ops);
        ck_assert_msg(ops != NULL, "no row %s", want[i]);
    }
}
END_TEST

Suite *suite_normalize(void)
{
    Suite *s = suite_create("normalize");
    TCase *tc = tcase_create("unicode");
    tcase_add_test(tc, nfd_adds_new_chars);
    tcase_add_test(tc, nfd_then_strip_accents);
    tcase_add_test(tc, nfkc_ligature);
    tcase_add_test(tc, nfkc_math_letters);
    tcase_add_test(tc, nfkd_ellipsis_then_lowercase);
    tcase_add_test(tc, nfc_composes_onto_first_char);
    tcase_add_test(tc, nfc_exclusions_and_hangul);
    tcase_add_test(tc, nfd_canonical_order_moves_changes);
    tcase_add_test(tc, strip_accents_cases);
    tcase_add_test(tc, vietnamese_and_thai_bugs);
    tcase_add_test(tc, lowercase_expands_dotted_i);
    suite_add_tcase(s, tc);

    tc = tcase_create("components");
    tcase_add_test(tc, bert_uncased);
    tcase_add_test(tc, bert_options);
    tcase_add_test(tc, strip_both_and_one_side);
    tcase_add_test(tc, replace_string_and_regex);
    tcase_add_test(tc, prepend_hello);
    tcase_add_test(tc, byte_level_normalizer);
    tcase_add_test(tc, nmt_controls_and_spaces);
    tcase_add_test(tc, legacy_untagged);
    tcase_add_test(tc, table_rows_unique_and_complete);
    suite_add_tcase(s, tc);

    tc = tcase_create("precompiled");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, precompiled_xlmr_mappings);
    tcase_add_test(tc, precompiled_expansion_then_removal);
    tcase_add_test(tc, precompiled_transform_lookups);
    tcase_add_test(tc, precompiled_overlapping_prefix);
    tcase_add_test(tc, base64_strict);
    suite_add_tcase(s, tc);

    tc = tcase_create("bad_input");
    tcase_add_test(tc, bad_input);
    suite_add_tcase(s, tc);
    return s;
}
