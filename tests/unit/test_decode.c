/* test_decode: every decoder row against the expectations of HF's own tests (the
 * src/decoders and pre_tokenizers/{byte_level,metaspace}.rs unit tests and the Python
 * bindings' test_decoders.py), Rust's from_utf8_lossy on invalid byte runs, parse errors
 * of malformed objects, and the real decoder chains of all eight fixture tokenizers:
 * decoding the tokens of each refs-dev.json entry (special tokens skipped, as
 * decode(skip_special_tokens=True)) must give its "decoded" text. The refs carry no
 * transformers clean_up_tokenization: llama3 sets clean_up_tokenization_spaces, yet its
 * ref 72 keeps "Americans) . D'oh!". */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites.h"
#include "support/support.h"
#include "tokenizer/tok.h"
#include "tokenizer/utf8.h"

static struct decoder *make(const char *json)
{
    json_error_t jerr;
    json_t *j = json_loads(json, 0, &jerr);
    ck_assert_msg(j != NULL, "bad test JSON: %s", jerr.text);
    struct decoder *d = NULL;
    struct err e = {0};
    int rc = decoder_new(j, &d, &e);
    ck_assert_msg(rc == 0, "decoder_new(%s): %s", json, e.msg);
    json_decref(j);
    return d;
}

static void fill(struct strvec *v, const char *const *toks, size_t n)
{
    memset(v, 0, sizeof *v);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(strvec_push(v, toks[i], strlen(toks[i])), 0);
}

/* decode_chain alone: the resulting list must equal want[0..n_want). */
static void expect_chain(const char *json, const char *const *toks, size_t n,
                         const char *const *want, size_t n_want)
{
    struct decoder *d = make(json);
    struct strvec v;
    fill(&v, toks, n);
    struct err e = {0};
    ck_assert_int_eq(d->ops->decode_chain(d->state, &v, &e), 0);
    ck_assert_msg(v.n == n_want, "%s: %zu pieces, want %zu", json, v.n, n_want);
    for (size_t i = 0; i < n_want; i++)
        ck_assert_msg(strcmp(v.v[i], want[i]) == 0, "%s: piece %zu is '%s', want '%s'", json, i,
                      v.v[i], want[i]);
    strvec_fini(&v);
    decoder_free(d);
}

/* The whole decode (chain + join). */
static void expect_decode(const char *json, const char *const *toks, size_t n, const char *want)
{
    struct decoder *d = make(json);
    struct strvec v;
    fill(&v, toks, n);
    char *out = NULL;
    size_t len = 0;
    struct err e = {0};
    ck_assert_int_eq(decoder_decode(d, &v, &out, &len, &e), 0);
    ck_assert_msg(strcmp(out, want) == 0, "%s: decoded '%s', want '%s'", json, out, want);
    ck_assert_uint_eq(len, strlen(want));
    free(out);
    strvec_fini(&v);
    decoder_free(d);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void expect_parse_error(const char *json, const char *needle)
{
    json_t *j = json_loads(json, 0, NULL);
    ck_assert_ptr_nonnull(j);
    struct decoder *d = NULL;
    struct err e = {0};
    int rc = decoder_new(j, &d, &e);
    json_decref(j);
    ck_assert_msg(rc == ERR_FORMAT, "%s: rc %d, want ERR_FORMAT", json, rc);
    ck_assert_ptr_null(d);
    ck_assert_msg(strstr(e.msg, needle) != NULL, "%s: message '%s' lacks '%s'", json, e.msg,
                  needle);
}

static const char *WP = "{\"type\":\"WordPiece\",\"prefix\":\"##\",\"cleanup\":true}";
static const char *BL = "{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true}";

START_TEST(wordpiece)
{
    /* decoders/wordpiece.rs */
    const char *t1[] = {"##uelo", "Ara", "##új", "##o", "No", "##guera"};
    expect_decode("{\"type\":\"WordPiece\",\"prefix\":\"##\",\"cleanup\":false}", t1, N(t1),
                  "##uelo Araújo Noguera");
    /* test_decoders.py */
    const char *t2[] = {"My", "na", "##me", "is", "Jo", "##hn"};
    expect_decode(WP, t2, N(t2), "My name is John");
    const char *t3[] = {"I", "'m", "Jo", "##hn"};
    expect_decode(WP, t3, N(t3), "I'm John");
    const char *t4[] = {"My", "na", "__me", "is", "Jo", "__hn"};
    const char *wp2 = "{\"type\":\"WordPiece\",\"prefix\":\"__\",\"cleanup\":false}";
    expect_decode(wp2, t4, N(t4), "My name is John");
    const char *t5[] = {"I", "'m", "Jo", "__hn"};
    expect_decode(wp2, t5, N(t5), "I 'm John");
}
END_TEST

START_TEST(byte_level)
{
    /* pre_tokenizers/byte_level.rs decoding */
    const char *t1[] = {"Hello", "Ġmy",   "Ġfriend", ",",      "Ġhow",
                        "Ġis",   "Ġyour", "Ġday",    "Ġgoing", "?"};
    const char *w1[] = {"Hello my friend, how is your day going?"};
    expect_chain(BL, t1, N(t1), w1, 1);
    /* decode_unknown_characters: a token with a char outside the table keeps its bytes */
    const char *t2[] = {"Hello", "Ġthere", "Ġdear", "Ġfriend!", "Ġ", "[PA D]"};
    const char *w2[] = {"Hello there dear friend! [PA D]"};
    expect_chain(BL, t2, N(t2), w2, 1);
    /* test_decoders.py */
    const char *t3[] = {"My", "Ġname", "Ġis", "ĠJohn"};
    expect_decode(BL, t3, N(t3), "My name is John");
}
END_TEST

/* GPT-2's bytes_char table: the char that stands for byte b. */
static uint32_t byte_char(unsigned b)
{
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    if (printable)
        return b;
    uint32_t n = 0;
    for (unsigned k = 0; k < b; k++)
        n += !((k >= '!' && k <= '~') || (k >= 0xA1 && k <= 0xAC) || k >= 0xAE);
    return 256 + n;
}

/* Byte-level decodes raw bytes split one char per token (as HF's
 * decode_works_on_separated_tokens) and returns the text. */
static char *decode_bytes(const unsigned char *bytes, size_t n)
{
    struct decoder *d = make(BL);
    struct strvec v = {0};
    for (size_t i = 0; i < n; i++) {
        char c[4];
        size_t l = utf8_encode(byte_char(bytes[i]), c);
        ck_assert_int_eq(strvec_push(&v, c, l), 0);
    }
    char *out = NULL;
    struct err e = {0};
    ck_assert_int_eq(decoder_decode(d, &v, &out, NULL, &e), 0);
    strvec_fini(&v);
    decoder_free(d);
    return out;
}

START_TEST(byte_level_separated_tokens)
{
    /* byte_level.rs decode_works_on_separated_tokens: every char its own token */
    const char *samples[] = {
        "A Nuskhuri abbreviation of იესუ ქრისტე ( iesu kriste ) \" Jesus Christ \"",
        "An equal number have descenders , like p or q in English : გ , დ , ე , ვ , კ , ლ , ჟ "
        ", ტ , უ , ფ , ღ , ყ , ც",
    };
    for (size_t i = 0; i < N(samples); i++) {
        char *out = decode_bytes((const unsigned char *)samples[i], strlen(samples[i]));
        ck_assert_str_eq(out, samples[i]);
        free(out);
    }
}
END_TEST

START_TEST(byte_level_lossy)
{
    /* Rust's String::from_utf8_lossy (alloc tests test_from_utf8_lossy): one U+FFFD per
     * maximal invalid subpart. */
    static const struct {
        const char *in;
        const char *want;
    } cases[] = {
        {"Hello\xC2 There\xFF Goodbye", "Hello\uFFFD There\uFFFD Goodbye"},
        {"Hello\xC0\x80 There\xE6\x83 Goodbye", "Hello\uFFFD\uFFFD There\uFFFD Goodbye"},
        {"\xF5"
         "foo\xF5\x80"
         "bar",
         "\uFFFDfoo\uFFFD\uFFFDbar"},
        {"\xF1"
         "foo\xF1\x80"
         "bar\xF1\x80\x80"
         "baz",
         "\uFFFDfoo\uFFFDbar\uFFFDbaz"},
        {"\xF4"
         "foo\xF4\x80"
         "bar\xF4\xBF"
         "baz",
         "\uFFFDfoo\uFFFDbar\uFFFD\uFFFDbaz"},
        {"\xF0\x80\x80\x80"
         "foo\xF0\x90\x80\x80"
         "bar",
         "\uFFFD\uFFFD\uFFFD\uFFFDfoo\U00010000bar"},
        {"\xF0\x90\x80"
         "foo",
         "\uFFFDfoo"},
        {"\xED\xA0\x80"
         "foo\xED\xBF\xBF"
         "bar",
         "\uFFFD\uFFFD\uFFFDfoo\uFFFD\uFFFD\uFFFDbar"},
        /* Unicode's "maximal subpart" rule that Rust follows (Unicode 15, table 3-8):
         * an overlong E0 80 is no prefix of a valid sequence, a truncated E0 A0 is. */
        {"\xE0\x80\xAF"
         "x",
         "\uFFFD\uFFFD\uFFFDx"},
        {"\xE0\xA0"
         "x",
         "\uFFFDx"},
        {"\xC1\xBF", "\uFFFD\uFFFD"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        char *out = decode_bytes((const unsigned char *)cases[i].in, strlen(cases[i].in));
        ck_assert_msg(strcmp(out, cases[i].want) == 0, "case %zu: got '%s'", i, out);
        free(out);
    }
    /* A lone byte 0xE5 followed by ASCII */
    const unsigned char tail[] = {'a', 0xE5, 0x8F};
    char *out = decode_bytes(tail, sizeof tail);
    ck_assert_str_eq(out, "a\uFFFD");
    free(out);
}
END_TEST

START_TEST(metaspace)
{
    /* metaspace.rs decode */
    const char *t[] = {"▁Hey", "▁friend!"};
    const char *w1[] = {"Hey", " friend!"};
    expect_chain("{\"type\":\"Metaspace\",\"replacement\":\"▁\",\"prepend_scheme\":\"always\","
                 "\"split\":true}",
                 t, N(t), w1, N(w1));
    const char *w2[] = {" Hey", " friend!"};
    expect_chain("{\"type\":\"Metaspace\",\"replacement\":\"▁\",\"prepend_scheme\":\"never\","
                 "\"split\":true}",
                 t, N(t), w2, N(w2));
    /* test_decoders.py (defaults: prepend_scheme always) */
    const char *t2[] = {"▁My", "▁name", "▁is", "▁John"};
    expect_decode("{\"type\":\"Metaspace\",\"replacement\":\"▁\"}", t2, N(t2), "My name is John");
    const char *t3[] = {"-My", "-name", "-is", "-John"};
    expect_decode("{\"type\":\"Metaspace\",\"replacement\":\"-\",\"prepend_scheme\":\"never\"}", t3,
                  N(t3), " My name is John");
    /* Legacy field accepted when it agrees (decoders/mod.rs decoder_serialization). */
    expect_decode("{\"type\":\"Metaspace\",\"replacement\":\"▁\",\"add_prefix_space\":true,"
                  "\"prepend_scheme\":\"always\"}",
                  t2, N(t2), "My name is John");
}
END_TEST

START_TEST(byte_fallback)
{
    const char *bf = "{\"type\":\"ByteFallback\"}";
    /* decoders/byte_fallback.rs */
    const char *t1[] = {"Hey", "friend!"};
    expect_chain(bf, t1, 2, t1, 2);
    const char *t2[] = {"<0x61>"}, *w2[] = {"a"};
    expect_chain(bf, t2, 1, w2, 1);
    const char *t3[] = {"<0xE5>"}, *w3[] = {"\uFFFD"};
    expect_chain(bf, t3, 1, w3, 1);
    const char *t4[] = {"<0xE5>", "<0x8f>"}, *w4[] = {"\uFFFD", "\uFFFD"};
    expect_chain(bf, t4, 2, w4, 2);
    const char *t5[] = {"<0xE5>", "<0x8f>", "<0xab>"}, *w5[] = {"叫"};
    expect_chain(bf, t5, 3, w5, 1);
    const char *t6[] = {"<0xE5>", "<0x8f>", "<0xab>", "a"}, *w6[] = {"叫", "a"};
    expect_chain(bf, t6, 4, w6, 2);
    const char *t7[] = {"<0xE5>", "<0x8f>", "a"}, *w7[] = {"\uFFFD", "\uFFFD", "a"};
    expect_chain(bf, t7, 3, w7, 3);
    /* test_decoders.py */
    const char *t8[] = {"My", " na", "me"};
    expect_decode(bf, t8, 3, "My name");
    /* Not byte tokens: wrong length, bad digit. u8::from_str_radix takes a leading '+'. */
    const char *t9[] = {"<0x6>", "<0x6g>", "<0x+A>"}, *w9[] = {"<0x6>", "<0x6g>", "\n"};
    expect_chain(bf, t9, 3, w9, 3);
}
END_TEST

START_TEST(fuse_strip)
{
    const char *t1[] = {"Hey", " friend!"}, *w1[] = {"Hey friend!"};
    expect_chain("{\"type\":\"Fuse\"}", t1, 2, w1, 1);
    const char *t2[] = {"My", " na", "me"};
    expect_decode("{\"type\":\"Fuse\"}", t2, 3, "My name");
    /* decoders/strip.rs */
    const char *t3[] = {"Hey", " friend!", "HHH"}, *w3[] = {"ey", " friend!", "HH"};
    expect_chain("{\"type\":\"Strip\",\"content\":\"H\",\"start\":1,\"stop\":0}", t3, 3, w3, 3);
    const char *t4[] = {"Hey", " friend!"}, *w4[] = {"He", " friend!"};
    expect_chain("{\"type\":\"Strip\",\"content\":\"y\",\"start\":0,\"stop\":1}", t4, 2, w4, 2);
    /* test_decoders.py */
    const char *t5[] = {"_My", " na", "me", " _-", "__-"};
    expect_decode("{\"type\":\"Strip\",\"content\":\"_\",\"start\":1,\"stop\":0}", t5, 5,
                  "My name _-_-");
    /* Stripping more than a token holds must not run off its start. */
    const char *t6[] = {"", "aa"}, *w6[] = {"", ""};
    expect_chain("{\"type\":\"Strip\",\"content\":\"a\",\"start\":0,\"stop\":5}", t6, 2, w6, 2);
}
END_TEST

START_TEST(replace)
{
    /* normalizers/replace.rs test_replace_decode */
    const char *t1[] = {"hello", "_hello"}, *w1[] = {"hello", " hello"};
    expect_chain("{\"type\":\"Replace\",\"pattern\":{\"String\":\"_\"},\"content\":\" \"}", t1, 2,
                 w1, 2);
    expect_chain("{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"_\"},\"content\":\" \"}", t1, 2,
                 w1, 2);
    /* test_decoders.py */
    const char *t2[] = {"My", "_name", "_is", "_John"};
    expect_decode("{\"type\":\"Replace\",\"pattern\":{\"String\":\"_\"},\"content\":\" \"}", t2, 4,
                  "My name is John");
}
END_TEST

START_TEST(bpe_decoder)
{
    /* test_decoders.py */
    const char *t1[] = {"My</w>", "na", "me</w>", "is</w>", "Jo", "hn</w>"};
    expect_decode("{\"type\":\"BPEDecoder\",\"suffix\":\"</w>\"}", t1, N(t1), "My name is John");
    const char *t2[] = {"My_", "na", "me_", "is_", "Jo", "hn_"};
    expect_decode("{\"type\":\"BPEDecoder\",\"suffix\":\"_\"}", t2, N(t2), "My name is John");
}
END_TEST

static const char *CTC = "{\"type\":\"CTC\",\"pad_token\":\"<pad>\",\"word_delimiter_token\":\"|\","
                         "\"cleanup\":true}";

/* Splits s on spaces into v (HF's tests build their token lists that way). */
static void fill_words(struct strvec *v, const char *s)
{
    memset(v, 0, sizeof *v);
    for (const char *p = s;;) {
        const char *sp = strchr(p, ' ');
        size_t n = sp ? (size_t)(sp - p) : strlen(p);
        ck_assert_int_eq(strvec_push(v, p, n), 0);
        if (!sp)
            break;
        p = sp + 1;
    }
}

static void expect_ctc(const char *input, const char *want_joined)
{
    struct decoder *d = make(CTC);
    struct strvec v;
    fill_words(&v, input);
    char *out = NULL;
    struct err e = {0};
    ck_assert_int_eq(decoder_decode(d, &v, &out, NULL, &e), 0);
    ck_assert_str_eq(out, want_joined);
    free(out);
    strvec_fini(&v);
    decoder_free(d);
}

START_TEST(ctc)
{
    /* decoders/ctc.rs */
    const char *t1[] = {"<pad>", "<pad>", "h", "e", "e", "l",    "l",
                        "<pad>", "l",     "o", "o", "o", "<pad>"};
    const char *w1[] = {"h", "e", "l", "l", "o"};
    expect_chain(CTC, t1, N(t1), w1, N(w1));
    expect_ctc("<pad> <pad> h e e l l <pad> l o o o <pad> <pad> | <pad> w o o o r <pad> <pad> l "
               "l d <pad> <pad> <pad> <pad>",
               "hello world");
    expect_ctc("<pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> "
               "<pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> "
               "<pad> <pad> <pad> <pad> A | | <pad> M <pad> <pad> <pad> <pad> A <pad> <pad> N "
               "<pad> <pad> <pad> | | | <pad> <pad> <pad> <pad> S <pad> <pad> <pad> A I <pad> D "
               "D | | T T <pad> O <pad> | | T H E E | | | <pad> U U <pad> N N <pad> I <pad> "
               "<pad> V <pad> <pad> <pad> E R R <pad> <pad> <pad> S E E | | <pad> <pad> <pad> "
               "<pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> "
               "<pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> "
               "<pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> S S <pad> <pad> <pad> "
               "<pad> I <pad> R R <pad> <pad> | | | <pad> <pad> <pad> <pad> <pad> <pad> <pad> "
               "<pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> I <pad> "
               "<pad> <pad> | <pad> <pad> <pad> E X <pad> <pad> <pad> <pad> <pad> <pad> <pad> "
               "<pad> <pad> <pad> I <pad> S <pad> <pad> T <pad> <pad> | | <pad> <pad> <pad> "
               "<pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> "
               "<pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad>",
               "A MAN SAID TO THE UNIVERSE SIR I EXIST ");
    expect_ctc("<pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> "
               "<pad> <pad> <pad> <pad> <pad> <pad> <pad> H <pad> I <pad> S S | | <pad> <pad> "
               "<pad> I N <pad> <pad> S <pad> T T <pad> <pad> A N C C T <pad> | | | | | <pad> "
               "<pad> <pad> <pad> P <pad> <pad> <pad> <pad> A <pad> <pad> N N N <pad> <pad> I "
               "<pad> C <pad> <pad> | | <pad> W <pad> <pad> A S <pad> | | <pad> <pad> <pad> F "
               "<pad> <pad> O L <pad> <pad> L L O O W E E D | | <pad> B <pad> <pad> <pad> Y "
               "<pad> | | | A | | <pad> S S S <pad> M M <pad> <pad> <pad> A L L <pad> <pad> "
               "<pad> <pad> L <pad> | | | <pad> <pad> <pad> <pad> S H H <pad> <pad> <pad> <pad> "
               "A R R <pad> <pad> P <pad> <pad> | <pad> <pad> <pad> <pad> <pad> <pad> <pad> "
               "<pad> <pad> B <pad> <pad> L L <pad> <pad> <pad> <pad> <pad> O W W <pad> <pad> | "
               "| | <pad> <pad> <pad> <pad> <pad> <pad> <pad> H <pad> <pad> <pad> <pad> <pad> "
               "<pad> <pad> I G H H | | <pad> <pad> O N <pad> | | H <pad> I S S | | <pad> <pad> "
               "C H H <pad> <pad> <pad> E <pad> S S <pad> T T <pad> <pad> | | | <pad> <pad> "
               "<pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> "
               "<pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad> <pad>",
               "HIS INSTANCT PANIC WAS FOLLOWED BY A SMALL SHARP BLOW HIGH ON HIS CHEST ");
    /* test_decoders.py */
    expect_decode("{\"type\":\"CTC\",\"pad_token\":\"[PAD]\",\"word_delimiter_token\":\"|\","
                  "\"cleanup\":true}",
                  (const char *[]){"[PAD]", "[PAD]", "h", "e", "e", "l", "l", "[PAD]", "l", "o",
                                   "o", "o", "[PAD]"},
                  13, "hello");
}
END_TEST

START_TEST(sequence)
{
    /* decoders/sequence.rs: CTC then Metaspace */
    const char *t[] = {"▁", "▁", "H", "H", "i", "i", "▁", "y", "o", "u"};
    char json[400];
    snprintf(json, sizeof json,
             "{\"type\":\"Sequence\",\"decoders\":[%s,{\"type\":\"Metaspace\","
             "\"replacement\":\"▁\",\"prepend_scheme\":\"always\",\"split\":true}]}",
             CTC);
    expect_decode(json, t, N(t), "Hi you");
    /* An empty chain leaves the tokens to be joined. */
    const char *t2[] = {"a", "b"};
    expect_decode("{\"type\":\"Sequence\",\"decoders\":[]}", t2, 2, "ab");
    /* llama2's chain, by hand: Replace ▁, ByteFallback, Fuse, Strip one leading space */
    const char *llama = "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":"
                        "{\"String\":\"▁\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},"
                        "{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,"
                        "\"stop\":0}]}";
    const char *t3[] = {"▁Hello", "▁", "<0xE5>", "<0x8F>", "<0xAB>", "!"};
    expect_decode(llama, t3, N(t3), "Hello 叫!");
}
END_TEST

START_TEST(empty_input)
{
    /* Decoders that fuse return one empty string for no tokens, the others nothing. */
    expect_decode(BL, NULL, 0, "");
    expect_decode(WP, NULL, 0, "");
    expect_decode("{\"type\":\"Fuse\"}", NULL, 0, "");
    expect_decode("{\"type\":\"BPEDecoder\",\"suffix\":\"</w>\"}", NULL, 0, "");
    expect_decode("{\"type\":\"ByteFallback\"}", NULL, 0, "");
}
END_TEST

START_TEST(parse_errors)
{
    expect_parse_error("[]", "decoder");
    expect_parse_error("{}", "'type'");
    expect_parse_error("{\"type\":\"Nope\"}", "Nope");
    expect_parse_error("{\"type\":\"WordPiece\",\"cleanup\":true}", "'prefix'");
    expect_parse_error("{\"type\":\"WordPiece\",\"prefix\":\"##\",\"cleanup\":1}", "'cleanup'");
    expect_parse_error("{\"type\":\"ByteLevel\",\"add_prefix_space\":true}", "'trim_offsets'");
    expect_parse_error("{\"type\":\"Metaspace\"}", "'replacement'");
    expect_parse_error("{\"type\":\"Metaspace\",\"replacement\":\"ab\"}", "'replacement'");
    expect_parse_error("{\"type\":\"Metaspace\",\"replacement\":\"\"}", "'replacement'");
    expect_parse_error("{\"type\":\"Metaspace\",\"replacement\":\"_\",\"prepend_scheme\":\"x\"}",
                       "'prepend_scheme'");
    /* metaspace.rs serialization: add_prefix_space false contradicts "always" */
    expect_parse_error("{\"type\":\"Metaspace\",\"replacement\":\"_\",\"add_prefix_space\":false,"
                       "\"prepend_scheme\":\"always\"}",
                       "'add_prefix_space'");
    expect_parse_error("{\"type\":\"Strip\",\"content\":\"ab\",\"start\":1,\"stop\":0}",
                       "'content'");
    expect_parse_error("{\"type\":\"Strip\",\"content\":\"a\",\"start\":-1,\"stop\":0}", "'start'");
    expect_parse_error("{\"type\":\"Strip\",\"content\":\"a\",\"start\":1}", "'stop'");
    expect_parse_error("{\"type\":\"Replace\",\"content\":\" \"}", "'pattern'");
    expect_parse_error("{\"type\":\"Replace\",\"pattern\":\"_\",\"content\":\" \"}", "'pattern'");
    expect_parse_error("{\"type\":\"Replace\",\"pattern\":{\"Other\":\"_\"},\"content\":\" \"}",
                       "'pattern'");
    expect_parse_error("{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"(\"},\"content\":\" \"}",
                       "regex");
    expect_parse_error("{\"type\":\"Replace\",\"pattern\":{\"String\":\"_\"}}", "'content'");
    expect_parse_error("{\"type\":\"BPEDecoder\"}", "'suffix'");
    expect_parse_error("{\"type\":\"CTC\",\"pad_token\":\"<pad>\",\"cleanup\":true}",
                       "'word_delimiter_token'");
    /* decoders/mod.rs decoder_serialization_no_decode */
    expect_parse_error("{\"type\":\"Sequence\",\"prepend_scheme\":\"always\"}", "'decoders'");
    expect_parse_error("{\"type\":\"Sequence\",\"decoders\":[{},{\"type\":\"Metaspace\","
                       "\"replacement\":\"▁\"}]}",
                       "decoders[0]");
    expect_parse_error("{\"type\":\"Sequence\",\"decoders\":{}}", "'decoders'");
}
END_TEST

/* ---- fixtures ---- */

static void check_fixture(const char *name)
{
    const char *dir = fixture_tokenizer(name);
    json_t *tk = fixture_json(dir, "tokenizer.json");
    json_t *refs = fixture_json(dir, "refs-dev.json");

    struct decoder *d = NULL;
    struct err e = {0};
    ck_assert_msg(decoder_new(json_object_get(tk, "decoder"), &d, &e) == 0, "%s: %s", name, e.msg);
    /* ids of added tokens marked special: skip_special_tokens drops them all */
    json_t *added = json_object_get(tk, "added_tokens");
    size_t i_ref;
    json_t *ref;
    size_t checked = 0;
    json_array_foreach(refs, i_ref, ref)
    {
        json_t *ids = json_object_get(ref, "ids"), *toks = json_object_get(ref, "tokens");
        struct strvec v = {0};
        for (size_t k = 0; k < json_array_size(ids); k++) {
            json_int_t id = json_integer_value(json_array_get(ids, k));
            bool special = false;
            size_t ia;
            json_t *a;
            json_array_foreach(added, ia, a)
            {
                if (json_integer_value(json_object_get(a, "id")) == id &&
                    json_is_true(json_object_get(a, "special")))
                    special = true;
            }
            if (special)
                continue;
            json_t *t = json_array_get(toks, k);
            ck_assert_int_eq(strvec_push(&v, json_string_value(t), json_string_length(t)), 0);
        }
        char *out = NULL;
        size_t len = 0;
        ck_assert_int_eq(decoder_decode(d, &v, &out, &len, &e), 0);
        json_t *want = json_object_get(ref, "decoded");
        ck_assert_msg(
            len == json_string_length(want) && memcmp(out, json_string_value(want), len) == 0,
            "%s: ref %zu (%s): decoded '%s', want '%s'", name, i_ref,
            json_string_value(json_object_get(ref, "text")), out, json_string_value(want));
        free(out);
        strvec_fini(&v);
        checked++;
    }
    ck_assert_uint_gt(checked, 50);
    decoder_free(d);
    json_decref(tk);
    json_decref(refs);
}

static const char *const fixtures[] = {"bert-uncased", "gpt2",  "roberta",    "llama2",
                                       "llama3",       "qwen3", "t5-unigram", "xlmr-unigram"};

START_TEST(fixture_decoders)
{
    check_fixture(fixtures[_i]);
}
END_TEST

Suite *suite_decode(void)
{
    Suite *s = suite_create("decode");
    TCase *tc = tcase_create("rows");
    tcase_add_test(tc, wordpiece);
    tcase_add_test(tc, byte_level);
    tcase_add_test(tc, byte_level_separated_tokens);
    tcase_add_test(tc, byte_level_lossy);
    tcase_add_test(tc, metaspace);
    tcase_add_test(tc, byte_fallback);
    tcase_add_test(tc, fuse_strip);
    tcase_add_test(tc, replace);
    tcase_add_test(tc, bpe_decoder);
    tcase_add_test(tc, ctc);
    tcase_add_test(tc, sequence);
    tcase_add_test(tc, empty_input);
    tcase_add_test(tc, parse_errors);
    suite_add_tcase(s, tc);
    TCase *fx = tcase_create("fixtures");
    tcase_set_timeout(fx, 120);
    tcase_add_loop_test(fx, fixture_decoders, 0, (int)N(fixtures));
    suite_add_tcase(s, fx);
    return s;
}
