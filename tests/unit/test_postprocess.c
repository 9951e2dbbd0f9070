/* test_postprocess: every post-processor row against the encodings HF's own tests
 * expect (processors/{bert,roberta,template,sequence}.rs, pre_tokenizers/byte_level.rs
 * and the Python bindings' test_processors.py): ids, tokens, type ids, offsets, special
 * tokens mask and sequence ids; parse errors of malformed objects; and the real
 * post-processors of the eight fixture tokenizers, which must turn the tokens of
 * ids_no_special back into the full "ids" and "tokens" of each refs-dev.json entry. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites.h"
#include "support/support.h"
#include "tokenizer/tok.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* One token given to a post-processor. */
struct src {
    int32_t id;
    const char *s;
    uint32_t start, end;
};

/* One token expected from a post-processor. */
struct tk {
    int32_t id;
    const char *s;
    uint32_t start, end;
    uint32_t type_id;
    int seq; /* 0, 1, or -1 for added specials */
    int special;
};

static struct postprocessor *make(const char *json)
{
    json_error_t jerr;
    json_t *j = json_loads(json, 0, &jerr);
    ck_assert_msg(j != NULL, "bad test JSON: %s", jerr.text);
    struct postprocessor *p = NULL;
    struct err e = {0};
    int rc = postprocessor_new(j, &p, &e);
    ck_assert_msg(rc == 0, "postprocessor_new(%s): %s", json, e.msg);
    json_decref(j);
    return p;
}

/* HF Encoding::from_tokens(tokens, 0): no words, type id 0. */
static void from_tokens(struct encoding *enc, const struct src *t, size_t n)
{
    encoding_init(enc);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(encoding_push(enc, t[i].id, t[i].s, strlen(t[i].s), 0, -1, 0, false,
                                       (struct nspan){t[i].start, t[i].end}),
                         0);
}

static void expect_encoding(const struct encoding *got, const struct tk *want, size_t n)
{
    ck_assert_uint_eq(got->n, n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(got->ids[i] == want[i].id, "token %zu: id %d, want %d", i, got->ids[i],
                      want[i].id);
        ck_assert_str_eq(encoding_token(got, i), want[i].s);
        ck_assert_msg(got->offsets[i].start == want[i].start && got->offsets[i].end == want[i].end,
                      "token %zu (%s): offsets (%u, %u), want (%u, %u)", i, want[i].s,
                      got->offsets[i].start, got->offsets[i].end, want[i].start, want[i].end);
        ck_assert_msg(got->type_ids[i] == want[i].type_id, "token %zu: type id %u, want %u", i,
                      got->type_ids[i], want[i].type_id);
        ck_assert_msg(got->seq[i] == want[i].seq, "token %zu: sequence %d, want %d", i, got->seq[i],
                      want[i].seq);
        ck_assert_msg(got->special[i] == want[i].special, "token %zu: special %d, want %d", i,
                      got->special[i], want[i].special);
        ck_assert_int_eq(got->attention[i], 1);
        ck_assert_int_eq(got->words[i], -1);
    }
}

/* Runs p on a (and b when nb > 0) and checks the result. */
static void expect_process(struct postprocessor *p, const struct src *a, size_t na,
                           const struct src *b, size_t nb, bool add_special, const struct tk *want,
                           size_t n_want)
{
    struct encoding ea, eb, out;
    from_tokens(&ea, a, na);
    from_tokens(&eb, b, nb);
    encoding_init(&out);
    struct err e = {0};
    int rc = p->ops->process(p->state, &ea, nb ? &eb : NULL, add_special, &out, &e);
    ck_assert_msg(rc == 0, "process: %s", e.msg);
    expect_encoding(&out, want, n_want);
    encoding_fini(&ea);
    encoding_fini(&eb);
    encoding_fini(&out);
}

static void expect_parse_error(const char *json, const char *needle)
{
    json_t *j = json_loads(json, 0, NULL);
    ck_assert_ptr_nonnull(j);
    struct postprocessor *p = NULL;
    struct err e = {0};
    int rc = postprocessor_new(j, &p, &e);
    json_decref(j);
    ck_assert_msg(rc == ERR_FORMAT, "%s: rc %d, want ERR_FORMAT", json, rc);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(e.msg, needle) != NULL, "%s: message '%s' lacks '%s'", json, e.msg,
                  needle);
}

/* The inputs of bert.rs, roberta.rs and template.rs tests. */
static const struct src HELLO_THERE[] = {{12, "Hello", 0, 5}, {14, "there", 6, 11}};
static const struct src PAIR[] = {{15, "pair", 0, 4}};

START_TEST(bert_processing)
{
    struct postprocessor *p =
        make("{\"type\":\"BertProcessing\",\"sep\":[\"[SEP]\",102],\"cls\":[\"[CLS]\",101]}");
    ck_assert_uint_eq(p->ops->added_tokens(p->state, false), 2);
    ck_assert_uint_eq(p->ops->added_tokens(p->state, true), 3);
    const struct tk single[] = {{101, "[CLS]", 0, 0, 0, -1, 1},
                                {12, "Hello", 0, 5, 0, 0, 0},
                                {14, "there", 6, 11, 0, 0, 0},
                                {102, "[SEP]", 0, 0, 0, -1, 1}};
    expect_process(p, HELLO_THERE, 2, NULL, 0, true, single, N(single));
    const struct tk pair[] = {{101, "[CLS]", 0, 0, 0, -1, 1}, {12, "Hello", 0, 5, 0, 0, 0},
                              {14, "there", 6, 11, 0, 0, 0},  {102, "[SEP]", 0, 0, 0, -1, 1},
                              {15, "pair", 0, 4, 1, 1, 0},    {102, "[SEP]", 0, 0, 1, -1, 1}};
    expect_process(p, HELLO_THERE, 2, PAIR, 1, true, pair, N(pair));
    const struct tk bare[] = {
        {12, "Hello", 0, 5, 0, 0, 0}, {14, "there", 6, 11, 0, 0, 0}, {15, "pair", 0, 4, 1, 1, 0}};
    expect_process(p, HELLO_THERE, 2, PAIR, 1, false, bare, N(bare));
    postprocessor_free(p);
}
END_TEST

START_TEST(roberta_processing)
{
    struct postprocessor *p =
        make("{\"type\":\"RobertaProcessing\",\"sep\":[\"</s>\",2],\"cls\":[\"<s>\",0],"
             "\"trim_offsets\":true,\"add_prefix_space\":true}");
    ck_assert_uint_eq(p->ops->added_tokens(p->state, false), 2);
    ck_assert_uint_eq(p->ops->added_tokens(p->state, true), 4);
    const struct tk single[] = {{0, "<s>", 0, 0, 0, -1, 1},
                                {12, "Hello", 0, 5, 0, 0, 0},
                                {14, "there", 6, 11, 0, 0, 0},
                                {2, "</s>", 0, 0, 0, -1, 1}};
    expect_process(p, HELLO_THERE, 2, NULL, 0, true, single, N(single));
    const struct tk pair[] = {{0, "<s>", 0, 0, 0, -1, 1},    {12, "Hello", 0, 5, 0, 0, 0},
                              {14, "there", 6, 11, 0, 0, 0}, {2, "</s>", 0, 0, 0, -1, 1},
                              {2, "</s>", 0, 0, 0, -1, 1},   {15, "pair", 0, 4, 0, 1, 0},
                              {2, "</s>", 0, 0, 0, -1, 1}};
    expect_process(p, HELLO_THERE, 2, PAIR, 1, true, pair, N(pair));
    /* No special tokens: every type id stays 0 */
    const struct tk bare[] = {
        {12, "Hello", 0, 5, 0, 0, 0}, {14, "there", 6, 11, 0, 0, 0}, {15, "pair", 0, 4, 0, 1, 0}};
    expect_process(p, HELLO_THERE, 2, PAIR, 1, false, bare, N(bare));
    postprocessor_free(p);
}
END_TEST

/* template.rs get_bert_template: [CLS]:1 and [SEP]:0 */
static const char *BERT_TEMPLATE =
    "{\"type\":\"TemplateProcessing\","
    "\"single\":[{\"SpecialToken\":{\"id\":\"[CLS]\",\"type_id\":0}},"
    "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"[SEP]\",\"type_id\":0}"
    "}],"
    "\"pair\":[{\"SpecialToken\":{\"id\":\"[CLS]\",\"type_id\":0}},"
    "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"[SEP]\",\"type_id\":0}"
    "},"
    "{\"Sequence\":{\"id\":\"B\",\"type_id\":1}},{\"SpecialToken\":{\"id\":\"[SEP]\",\"type_id\":1}"
    "}],"
    "\"special_tokens\":{\"[CLS]\":{\"id\":\"[CLS]\",\"ids\":[1],\"tokens\":[\"[CLS]\"]},"
    "\"[SEP]\":{\"id\":\"[SEP]\",\"ids\":[0],\"tokens\":[\"[SEP]\"]}}}";

START_TEST(template_processing)
{
    struct postprocessor *p = make(BERT_TEMPLATE);
    ck_assert_uint_eq(p->ops->added_tokens(p->state, false), 2);
    ck_assert_uint_eq(p->ops->added_tokens(p->state, true), 3);
    const struct tk single[] = {{1, "[CLS]", 0, 0, 0, -1, 1},
                                {12, "Hello", 0, 5, 0, 0, 0},
                                {14, "there", 6, 11, 0, 0, 0},
                                {0, "[SEP]", 0, 0, 0, -1, 1}};
    expect_process(p, HELLO_THERE, 2, NULL, 0, true, single, N(single));
    const struct tk pair[] = {{1, "[CLS]", 0, 0, 0, -1, 1},  {12, "Hello", 0, 5, 0, 0, 0},
                              {14, "there", 6, 11, 0, 0, 0}, {0, "[SEP]", 0, 0, 0, -1, 1},
                              {15, "pair", 0, 4, 1, 1, 0},   {0, "[SEP]", 0, 0, 1, -1, 1}};
    expect_process(p, HELLO_THERE, 2, PAIR, 1, true, pair, N(pair));
    /* Without special tokens the sequences keep the template's type ids. */
    const struct tk bare[] = {
        {12, "Hello", 0, 5, 0, 0, 0}, {14, "there", 6, 11, 0, 0, 0}, {15, "pair", 0, 4, 1, 1, 0}};
    expect_process(p, HELLO_THERE, 2, PAIR, 1, false, bare, N(bare));
    postprocessor_free(p);
}
END_TEST

START_TEST(template_multi_id_special)
{
    /* test_processors.py get_t5_squad: a special token may stand for several tokens, and
     * count_added counts them all. Q $A C $B, with Q = [2625, 10], C = [822, 10]. */
    struct postprocessor *p = make(
        "{\"type\":\"TemplateProcessing\",\"single\":[{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"
        "\"pair\":[{\"SpecialToken\":{\"id\":\"Q\",\"type_id\":0}},"
        "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"C\",\"type_id\":0}"
        "},"
        "{\"Sequence\":{\"id\":\"B\",\"type_id\":0}}],"
        "\"special_tokens\":{\"Q\":{\"id\":\"Q\",\"ids\":[2625,10],\"tokens\":[\"_question\",\":\"]"
        "},"
        "\"C\":{\"id\":\"C\",\"ids\":[822,10],\"tokens\":[\"_context\",\":\"]}}}");
    ck_assert_uint_eq(p->ops->added_tokens(p->state, false), 0);
    ck_assert_uint_eq(p->ops->added_tokens(p->state, true), 4);
    const struct tk pair[] = {{2625, "_question", 0, 0, 0, -1, 1}, {10, ":", 0, 0, 0, -1, 1},
                              {12, "Hello", 0, 5, 0, 0, 0},        {14, "there", 6, 11, 0, 0, 0},
                              {822, "_context", 0, 0, 0, -1, 1},   {10, ":", 0, 0, 0, -1, 1},
                              {15, "pair", 0, 4, 0, 1, 0}};
    expect_process(p, HELLO_THERE, 2, PAIR, 1, true, pair, N(pair));
    const struct tk single[] = {{12, "Hello", 0, 5, 0, 0, 0}, {14, "there", 6, 11, 0, 0, 0}};
    expect_process(p, HELLO_THERE, 2, NULL, 0, true, single, N(single));
    postprocessor_free(p);
}
END_TEST

/* byte_level.rs processor_trims_offsets */
static const struct src SPACEY[] = {{0, "Ġ", 0, 1},
                                    {0, "ĠĠĠĠHelloĠĠ", 0, 11},
                                    {0, "ĠĠHello", 11, 18},
                                    {0, "HelloĠĠ", 18, 25},
                                    {0, "ĠĠĠĠ", 25, 29}};

static void expect_spacey_trimmed(struct postprocessor *p)
{
    const struct tk single[] = {{0, "Ġ", 0, 0, 0, 0, 0},
                                {0, "ĠĠĠĠHelloĠĠ", 4, 9, 0, 0, 0},
                                {0, "ĠĠHello", 13, 18, 0, 0, 0},
                                {0, "HelloĠĠ", 18, 23, 0, 0, 0},
                                {0, "ĠĠĠĠ", 29, 29, 0, 0, 0}};
    expect_process(p, SPACEY, 5, NULL, 0, false, single, N(single));
    struct tk pair[10];
    for (size_t i = 0; i < 10; i++) {
        pair[i] = single[i % 5];
        pair[i].type_id = i >= 5;
        pair[i].seq = i >= 5;
    }
    expect_process(p, SPACEY, 5, SPACEY, 5, false, pair, N(pair));
}

static const char *BYTE_LEVEL =
    "{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,\"use_regex\":true}";

START_TEST(byte_level_trims_offsets)
{
    struct postprocessor *p = make(BYTE_LEVEL);
    ck_assert_uint_eq(p->ops->added_tokens(p->state, true), 0);
    expect_spacey_trimmed(p);
    postprocessor_free(p);
    /* sequence.rs process_chain: the same through a Sequence */
    char json[300];
    snprintf(json, sizeof json, "{\"type\":\"Sequence\",\"processors\":[%s]}", BYTE_LEVEL);
    p = make(json);
    expect_spacey_trimmed(p);
    postprocessor_free(p);
}
END_TEST

START_TEST(byte_level_pre_tokenized)
{
    /* byte_level.rs processor_trims_offsets_pre_tokenized: a token starting at 0 counts
     * as first, so its one added space is kept. */
    struct postprocessor *p = make(BYTE_LEVEL);
    const struct src in[] = {{0, "Ġl", 0, 1}, {0, "ove", 1, 4}, {0, "Ġl", 0, 1}, {0, "ove", 1, 4}};
    const struct tk want[] = {{0, "Ġl", 0, 1, 0, 0, 0},
                              {0, "ove", 1, 4, 0, 0, 0},
                              {0, "Ġl", 0, 1, 0, 0, 0},
                              {0, "ove", 1, 4, 0, 0, 0}};
    expect_process(p, in, 4, NULL, 0, true, want, N(want));
    postprocessor_free(p);
}
END_TEST

START_TEST(byte_level_prefix_space)
{
    /* test_processors.py TestByteLevelProcessing on "My name is John" */
    const struct src in[] = {
        {0, "ĠMy", 0, 2}, {1, "Ġname", 2, 7}, {2, "Ġis", 7, 10}, {3, "ĠJohn", 10, 15}};
    const struct {
        const char *json;
        uint32_t offs[4][2];
    } cases[] = {
        {"{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true}",
         {{0, 2}, {3, 7}, {8, 10}, {11, 15}}},
        {"{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true}",
         {{1, 2}, {3, 7}, {8, 10}, {11, 15}}},
        {"{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":false}",
         {{0, 2}, {2, 7}, {7, 10}, {10, 15}}},
    };
    for (size_t c = 0; c < N(cases); c++) {
        struct postprocessor *p = make(cases[c].json);
        struct tk want[4];
        for (size_t i = 0; i < 4; i++)
            want[i] =
                (struct tk){in[i].id, in[i].s, cases[c].offs[i][0], cases[c].offs[i][1], 0, 0, 0};
        expect_process(p, in, 4, NULL, 0, true, want, 4);
        postprocessor_free(p);
    }
}
END_TEST

START_TEST(sequence_byte_level_then_template)
{
    /* test_processors.py TestSequenceProcessing.test_post_process: "my name is Ġjohn"
     * with added tokens my=2 name=3 is=4 Ġjohn=5 pair=6, [CLS]=1, [SEP]=0. */
    char json[2048];
    snprintf(json, sizeof json, "{\"type\":\"Sequence\",\"processors\":[%s,%s]}",
             "{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true}",
             BERT_TEMPLATE);
    struct postprocessor *p = make(json);
    ck_assert_uint_eq(p->ops->added_tokens(p->state, false), 2);
    ck_assert_uint_eq(p->ops->added_tokens(p->state, true), 3);
    const struct src in[] = {
        {2, "my", 0, 2}, {3, "name", 3, 7}, {4, "is", 8, 10}, {5, "Ġjohn", 11, 16}};
    const struct tk single[] = {{1, "[CLS]", 0, 0, 0, -1, 1},  {2, "my", 0, 2, 0, 0, 0},
                                {3, "name", 3, 7, 0, 0, 0},    {4, "is", 8, 10, 0, 0, 0},
                                {5, "Ġjohn", 12, 16, 0, 0, 0}, {0, "[SEP]", 0, 0, 0, -1, 1}};
    expect_process(p, in, 4, NULL, 0, true, single, N(single));
    const struct src pair_in[] = {{6, "pair", 0, 4}};
    const struct tk pair[] = {{1, "[CLS]", 0, 0, 0, -1, 1},  {2, "my", 0, 2, 0, 0, 0},
                              {3, "name", 3, 7, 0, 0, 0},    {4, "is", 8, 10, 0, 0, 0},
                              {5, "Ġjohn", 12, 16, 0, 0, 0}, {0, "[SEP]", 0, 0, 0, -1, 1},
                              {6, "pair", 0, 4, 1, 1, 0},    {0, "[SEP]", 0, 0, 1, -1, 1}};
    expect_process(p, in, 4, pair_in, 1, true, pair, N(pair));
    postprocessor_free(p);
    /* Without the ByteLevel step the offsets are untouched (same test, "before"). */
    p = make(BERT_TEMPLATE);
    struct tk untrimmed[N(single)];
    memcpy(untrimmed, single, sizeof single);
    untrimmed[4].start = 11;
    expect_process(p, in, 4, NULL, 0, true, untrimmed, N(untrimmed));
    postprocessor_free(p);
}
END_TEST

START_TEST(default_process)
{
    /* No post-processor: concatenation, type ids as given, sequences 0 and 1. */
    struct encoding a, b, out;
    from_tokens(&a, HELLO_THERE, 2);
    from_tokens(&b, PAIR, 1);
    b.type_ids[0] = 1;
    a.special[1] = 1; /* an added special token met in the text: HF's mask says 0 */
    encoding_init(&out);
    ck_assert_int_eq(postprocess_default(&a, &b, &out, NULL), 0);
    const struct tk want[] = {
        {12, "Hello", 0, 5, 0, 0, 0}, {14, "there", 6, 11, 0, 0, 0}, {15, "pair", 0, 4, 1, 1, 0}};
    expect_encoding(&out, want, N(want));
    encoding_fini(&a);
    encoding_fini(&b);
    encoding_fini(&out);
}
END_TEST

START_TEST(template_repeated_sequence)
{
    /* A template may repeat $A (template.rs apply_template clones it). The merged
     * sequence ranges are a map keyed by sequence id, so only the last copy keeps
     * sequence 0. Tokens found as added specials in the text are not masked. */
    struct postprocessor *p = make(
        "{\"type\":\"TemplateProcessing\",\"single\":[{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},"
        "{\"SpecialToken\":{\"id\":\"|\",\"type_id\":1}},{\"Sequence\":{\"id\":\"A\",\"type_id\":2}"
        "}],"
        "\"pair\":[],\"special_tokens\":{\"|\":{\"id\":\"|\",\"ids\":[7],\"tokens\":[\"|\"]}}}");
    struct encoding a, out;
    from_tokens(&a, HELLO_THERE, 2);
    a.special[0] = 1;
    encoding_init(&out);
    struct err e = {0};
    ck_assert_int_eq(p->ops->process(p->state, &a, NULL, true, &out, &e), 0);
    const struct tk want[] = {{12, "Hello", 0, 5, 0, -1, 0},
                              {14, "there", 6, 11, 0, -1, 0},
                              {7, "|", 0, 0, 1, -1, 1},
                              {12, "Hello", 0, 5, 2, 0, 0},
                              {14, "there", 6, 11, 2, 0, 0}};
    expect_encoding(&out, want, N(want));
    encoding_fini(&a);
    encoding_fini(&out);
    postprocessor_free(p);
}
END_TEST

START_TEST(template_pair_without_b)
{
    /* A single template naming $B has nothing to take it from: an error, not a crash. */
    struct postprocessor *p = make(
        "{\"type\":\"TemplateProcessing\",\"single\":[{\"Sequence\":{\"id\":\"B\",\"type_id\":0}}],"
        "\"pair\":[],\"special_tokens\":{}}");
    struct encoding a, out;
    from_tokens(&a, HELLO_THERE, 2);
    encoding_init(&out);
    struct err e = {0};
    ck_assert_int_eq(p->ops->process(p->state, &a, NULL, true, &out, &e), ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(e.msg, "sequence B"));
    encoding_fini(&a);
    encoding_fini(&out);
    postprocessor_free(p);
}
END_TEST

START_TEST(parse_errors)
{
    expect_parse_error("[]", "post_processor");
    expect_parse_error("{\"sep\":[\"[SEP]\",102]}", "'type'");
    expect_parse_error("{\"type\":\"Nope\"}", "Nope");
    /* processors/mod.rs: Roberta needs every field */
    expect_parse_error("{\"type\":\"RobertaProcessing\",\"sep\":[\"</s>\",2]}", "'cls'");
    expect_parse_error("{\"type\":\"RobertaProcessing\",\"sep\":[\"</s>\",2],\"cls\":[\"<s>\",0]}",
                       "'trim_offsets'");
    expect_parse_error("{\"type\":\"BertProcessing\",\"sep\":[\"[SEP]\"],\"cls\":[\"[CLS]\",1]}",
                       "'sep'");
    expect_parse_error(
        "{\"type\":\"BertProcessing\",\"sep\":[102,\"[SEP]\"],\"cls\":[\"[CLS]\",1]}", "'sep'");
    expect_parse_error("{\"type\":\"BertProcessing\",\"sep\":[\"[SEP]\",-2],\"cls\":[\"[CLS]\",1]}",
                       "'sep'");
    expect_parse_error("{\"type\":\"ByteLevel\",\"add_prefix_space\":true}", "'trim_offsets'");
    expect_parse_error("{\"type\":\"ByteLevel\",\"add_prefix_space\":1,\"trim_offsets\":true}",
                       "'add_prefix_space'");
    expect_parse_error("{\"type\":\"Sequence\"}", "'processors'");
    expect_parse_error("{\"type\":\"Sequence\",\"processors\":[{\"type\":\"Nope\"}]}",
                       "processors[0]");
    const char *tp = "{\"type\":\"TemplateProcessing\",%s}";
    static const struct {
        const char *body, *needle;
    } bad[] = {
        {"\"pair\":[],\"special_tokens\":{}", "'single'"},
        {"\"single\":[],\"special_tokens\":{}", "'pair'"},
        {"\"single\":[],\"pair\":[]", "'special_tokens'"},
        {"\"single\":\"$A\",\"pair\":[],\"special_tokens\":{}", "'single'"},
        {"\"single\":[{\"Seq\":{\"id\":\"A\",\"type_id\":0}}],\"pair\":[],\"special_tokens\":{}",
         "piece"},
        {"\"single\":[{\"Sequence\":{\"id\":\"C\",\"type_id\":0}}],\"pair\":[],"
         "\"special_tokens\":{}",
         "\"A\" or \"B\""},
        {"\"single\":[{\"Sequence\":{\"id\":\"A\",\"type_id\":-1}}],\"pair\":[],"
         "\"special_tokens\":{}",
         "'type_id'"},
        {"\"single\":[{\"Sequence\":{\"id\":\"A\"}}],\"pair\":[],\"special_tokens\":{}",
         "'type_id'"},
        {"\"single\":[{\"SpecialToken\":{\"id\":\"[CLS]\",\"type_id\":0}}],\"pair\":[],"
         "\"special_tokens\":{}",
         "[CLS]"},
        /* template.rs special_token_serde: ids and tokens of different lengths */
        {"\"single\":[],\"pair\":[],\"special_tokens\":{\"X\":{\"id\":\"X\",\"ids\":[1,2],"
         "\"tokens\":[\"convert\",\"to\",\"FR\"]}}",
         "same length"},
        {"\"single\":[],\"pair\":[],\"special_tokens\":{\"X\":{\"id\":\"X\",\"ids\":[\"1\"],"
         "\"tokens\":[\"a\"]}}",
         "'ids'"},
        {"\"single\":[],\"pair\":[],\"special_tokens\":{\"X\":{\"id\":\"X\",\"tokens\":[]}}",
         "'ids'"},
        {"\"single\":[],\"pair\":[],\"special_tokens\":[]", "'special_tokens'"},
    };
    for (size_t i = 0; i < N(bad); i++) {
        char json[512];
        snprintf(json, sizeof json, tp, bad[i].body);
        expect_parse_error(json, bad[i].needle);
    }
}
END_TEST

/* ---- fixtures ---- */

/* Where ids_no_special sits inside ids (the post-processor's tokens surround it). */
static size_t find_window(const json_t *ids, const json_t *inner)
{
    size_t n = json_array_size(ids), m = json_array_size(inner);
    for (size_t p = 0; p + m <= n; p++) {
        size_t k = 0;
        while (k < m && json_integer_value(json_array_get(ids, p + k)) ==
                            json_integer_value(json_array_get(inner, k)))
            k++;
        if (k == m)
            return p;
    }
    ck_abort_msg("ids_no_special is not a window of ids");
    return 0;
}

static void check_fixture(const char *name)
{
    const char *dir = fixture_tokenizer(name);
    json_t *tk = fixture_json(dir, "tokenizer.json");
    json_t *refs = fixture_json(dir, "refs-dev.json");
    json_t *pj = json_object_get(tk, "post_processor");
    struct postprocessor *p = NULL;
    struct err e = {0};
    ck_assert_msg(postprocessor_new(pj, &p, &e) == 0, "%s: %s", name, e.msg);
    /* Trimming changes offsets and the refs only hold trimmed ones, which are not a
     * fixed point of trimming: compare offsets only where nothing trims. */
    bool trims = json_is_true(json_object_get(pj, "trim_offsets"));
    size_t added = p->ops->added_tokens(p->state, false);
    size_t i_ref;
    json_t *ref;
    json_array_foreach(refs, i_ref, ref)
    {
        json_t *ids = json_object_get(ref, "ids"), *toks = json_object_get(ref, "tokens");
        json_t *offs = json_object_get(ref, "offsets");
        json_t *inner = json_object_get(ref, "ids_no_special");
        size_t n = json_array_size(ids), m = json_array_size(inner);
        ck_assert_msg(n == m + added, "%s ref %zu: %zu ids, %zu without specials, %zu added", name,
                      i_ref, n, m, added);
        size_t at = find_window(ids, inner);
        struct encoding a, out;
        encoding_init(&a);
        encoding_init(&out);
        for (size_t k = at; k < at + m; k++) {
            json_t *t = json_array_get(toks, k), *o = json_array_get(offs, k);
            struct nspan span = {(uint32_t)json_integer_value(json_array_get(o, 0)),
                                 (uint32_t)json_integer_value(json_array_get(o, 1))};
            ck_assert_int_eq(encoding_push(&a, (int32_t)json_integer_value(json_array_get(ids, k)),
                                           json_string_value(t), json_string_length(t), 0, -1, 0,
                                           false, span),
                             0);
        }
        ck_assert_int_eq(p->ops->process(p->state, &a, NULL, true, &out, &e), 0);
        ck_assert_uint_eq(out.n, n);
        for (size_t k = 0; k < n; k++) {
            json_t *t = json_array_get(toks, k), *o = json_array_get(offs, k);
            bool inside = k >= at && k < at + m;
            ck_assert_msg(out.ids[k] == json_integer_value(json_array_get(ids, k)),
                          "%s ref %zu token %zu: id %d", name, i_ref, k, out.ids[k]);
            ck_assert(memcmp(encoding_token(&out, k), json_string_value(t),
                             json_string_length(t) + 1) == 0);
            ck_assert_int_eq(out.special[k], !inside);
            ck_assert_int_eq(out.seq[k], inside ? 0 : -1);
            ck_assert_uint_eq(out.type_ids[k], 0);
            if (!trims)
                ck_assert_msg(out.offsets[k].start == json_integer_value(json_array_get(o, 0)) &&
                                  out.offsets[k].end == json_integer_value(json_array_get(o, 1)),
                              "%s ref %zu token %zu: offsets", name, i_ref, k);
        }
        encoding_fini(&a);
        encoding_fini(&out);
    }
    postprocessor_free(p);
    json_decref(tk);
    json_decref(refs);
}

static const char *const fixtures[] = {"bert-uncased", "gpt2",  "roberta",    "llama2",
                                       "llama3",       "qwen3", "t5-unigram", "xlmr-unigram"};

START_TEST(fixture_post_processors)
{
    check_fixture(fixtures[_i]);
}
END_TEST

Suite *suite_postprocess(void)
{
    Suite *s = suite_create("postprocess");
    TCase *tc = tcase_create("rows");
    tcase_add_test(tc, bert_processing);
    tcase_add_test(tc, roberta_processing);
    tcase_add_test(tc, template_processing);
    tcase_add_test(tc, template_multi_id_special);
    tcase_add_test(tc, byte_level_trims_offsets);
    tcase_add_test(tc, byte_level_pre_tokenized);
    tcase_add_test(tc, byte_level_prefix_space);
    tcase_add_test(tc, sequence_byte_level_then_template);
    tcase_add_test(tc, default_process);
    tcase_add_test(tc, template_repeated_sequence);
    tcase_add_test(tc, template_pair_without_b);
    tcase_add_test(tc, parse_errors);
    suite_add_tcase(s, tc);
    TCase *fx = tcase_create("fixtures");
    tcase_set_timeout(fx, 120);
    tcase_add_loop_test(fx, fixture_post_processors, 0, (int)N(fixtures));
    suite_add_tcase(s, fx);
    return s;
}
