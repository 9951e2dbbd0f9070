/* test_tok_models: the WordPiece, BPE, Unigram and WordLevel models on one
 * pre-tokenized piece at a time. Expectations are HF's: the Rust unit tests of
 * tokenizers/src/models/{bpe,unigram} transcribed, and pieces whose tokens the HF
 * reference outputs (tests/data fixtures, refs-dev.json) show for whole texts.
 * Malformed model JSON must give ERR_FORMAT with a message naming the field. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites.h"
#include "support/support.h"
#include "tokenizer/tok.h"

/* ---- helpers ---- */

static struct tok_model *model_from(const char *json_text)
{
    json_error_t je;
    json_t *j = json_loads(json_text, 0, &je);
    ck_assert_msg(j != NULL, "bad test JSON: %s", je.text);
    struct tok_model *m = NULL;
    struct err e = {0};
    int rc = tok_model_new(j, &m, &e);
    ck_assert_msg(rc == 0, "tok_model_new: %s", e.msg);
    json_decref(j);
    return m;
}

/* Expects tok_model_new to fail with ERR_FORMAT and a message containing `field`. */
static void expect_format_error(const char *json_text, const char *field)
{
    json_error_t je;
    json_t *j = json_loads(json_text, 0, &je);
    ck_assert_msg(j != NULL, "bad test JSON: %s", je.text);
    struct tok_model *m = NULL;
    struct err e = {0};
    int rc = tok_model_new(j, &m, &e);
    ck_assert_msg(rc == ERR_FORMAT, "want ERR_FORMAT for %s, got %d (%s)", json_text, rc, e.msg);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(e.msg, field) != NULL, "message '%s' does not name '%s'", e.msg, field);
    json_decref(j);
}

struct want {
    int32_t id;
    uint32_t start, end;
};

static void expect_tokens(const struct tok_model *m, const char *piece, const struct want *want,
                          size_t n)
{
    struct token_vec out = {0};
    struct err e = {0};
    int rc = m->ops->tokenize(m->state, piece, strlen(piece), &out, &e);
    ck_assert_msg(rc == 0, "tokenize '%s': %s", piece, e.msg);
    ck_assert_msg(out.n == n, "'%s': %zu tokens, want %zu (first id %d)", piece, out.n, n,
                  out.n ? out.v[0].id : -1);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(out.v[i].id == want[i].id && out.v[i].start == want[i].start &&
                          out.v[i].end == want[i].end,
                      "'%s' token %zu: %d (%u, %u), want %d (%u, %u)", piece, i, out.v[i].id,
                      out.v[i].start, out.v[i].end, want[i].id, want[i].start, want[i].end);
    token_vec_fini(&out);
}

/* Only the ids (offsets checked elsewhere for the same model). */
static void expect_ids(const struct tok_model *m, const char *piece, const int32_t *ids, size_t n)
{
    struct token_vec out = {0};
    struct err e = {0};
    ck_assert_int_eq(m->ops->tokenize(m->state, piece, strlen(piece), &out, &e), 0);
    ck_assert_msg(out.n == n, "'%s': %zu tokens, want %zu", piece, out.n, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(out.v[i].id == ids[i], "'%s' token %zu: id %d, want %d", piece, i,
                      out.v[i].id, ids[i]);
    token_vec_fini(&out);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static struct tok_model *load_fixture_model(const char *name)
{
    char path[800];
    snprintf(path, sizeof path, "%s/tokenizer.json", fixture_tokenizer(name));
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    ck_assert_msg(root != NULL, "%s: %s", path, je.text);
    struct tok_model *m = NULL;
    struct err e = {0};
    int rc = tok_model_new(json_object_get(root, "model"), &m, &e);
    ck_assert_msg(rc == 0, "%s: %s", name, e.msg);
    json_decref(root);
    return m;
}

/* ---- BPE: HF models/bpe/model.rs unit tests ---- */

START_TEST(bpe_unk_not_fused)
{
    struct tok_model *m = model_from("{\"type\":\"BPE\",\"vocab\":{\"<unk>\":0,\"a\":1,\"b\":2},"
                                     "\"merges\":[],\"unk_token\":\"<unk>\"}");
    expect_tokens(m, "c", (struct want[]){{0, 0, 1}}, 1);
    expect_tokens(m, "cc", (struct want[]){{0, 0, 1}, {0, 1, 2}}, 2);
    expect_tokens(m, "accb", (struct want[]){{1, 0, 1}, {0, 1, 2}, {0, 2, 3}, {2, 3, 4}}, 4);
    tok_model_free(m);
}
END_TEST

START_TEST(bpe_unk_fused)
{
    struct tok_model *m = model_from("{\"type\":\"BPE\",\"vocab\":{\"<unk>\":0,\"a\":1,\"b\":2},"
                                     "\"merges\":[],\"unk_token\":\"<unk>\",\"fuse_unk\":true}");
    expect_tokens(m, "c", (struct want[]){{0, 0, 1}}, 1);
    expect_tokens(m, "cc", (struct want[]){{0, 0, 2}}, 1);
    expect_tokens(m, "accb", (struct want[]){{1, 0, 1}, {0, 1, 3}, {2, 3, 4}}, 3);
    tok_model_free(m);
}
END_TEST

static const char unrelated_json[] =
    "{\"type\":\"BPE\",\"dropout\":%s,\"vocab\":{\"u\":0,\"n\":1,\"r\":2,\"e\":3,\"l\":4,\"a\":5,"
    "\"t\":6,\"d\":7,\"re\":8,\"at\":9,\"ed\":10,\"un\":11,\"ated\":12,\"rel\":13,"
    "\"related\":14,\"unrelated\":15},\"merges\":[\"r e\",\"a t\",\"e d\",\"u n\",\"at ed\","
    "\"re l\",\"rel ated\",\"un related\"]}";

START_TEST(bpe_merges_in_rank_order)
{
    char json[1024];
    snprintf(json, sizeof json, unrelated_json, "null");
    struct tok_model *m = model_from(json);
    expect_tokens(m, "unrelated", (struct want[]){{15, 0, 9}}, 1);
    /* Not in the HF test but implied by its merges: no "e d" before "a t" wins here. */
    expect_tokens(m, "related", (struct want[]){{14, 0, 7}}, 1);
    ck_assert_uint_eq(m->ops->vocab_size(m->state), 16);
    ck_assert_str_eq(m->ops->id_to_token(m->state, 12), "ated");
    ck_assert_int_eq(m->ops->token_to_id(m->state, "rel", 3), 13);
    ck_assert_int_eq(m->ops->token_to_id(m->state, "xyz", 3), -1);
    ck_assert_ptr_null(m->ops->id_to_token(m->state, 16));
    tok_model_free(m);
    snprintf(json, sizeof json, unrelated_json, "0.0");
    m = model_from(json);
    expect_tokens(m, "unrelated", (struct want[]){{15, 0, 9}}, 1);
    tok_model_free(m);
    /* Dropout samples tokenizations; we refuse it instead of silently ignoring it. */
    snprintf(json, sizeof json, unrelated_json, "0.5");
    expect_format_error(json, "dropout");
}
END_TEST

START_TEST(bpe_continuing_subword_prefix)
{
    struct tok_model *m =
        model_from("{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"##b\":1,\"##c\":2,\"ab\":3,\"abc\":4},"
                   "\"merges\":[[\"a\",\"##b\"],[\"ab\",\"##c\"]],\"unk_token\":null,"
                   "\"continuing_subword_prefix\":\"##\"}");
    expect_tokens(m, "ab", (struct want[]){{3, 0, 2}}, 1);
    expect_tokens(m, "abc", (struct want[]){{4, 0, 3}}, 1);
    tok_model_free(m);
}
END_TEST

START_TEST(bpe_byte_fallback)
{
    struct tok_model *m =
        model_from("{\"type\":\"BPE\",\"vocab\":{\"<unk>\":0,\"<0x61>\":1},"
                   "\"merges\":[],\"unk_token\":\"<unk>\",\"byte_fallback\":true}");
    expect_tokens(m, "c", (struct want[]){{0, 0, 1}}, 1);
    expect_tokens(m, "a", (struct want[]){{1, 0, 1}}, 1);
    tok_model_free(m);
    m = model_from("{\"type\":\"BPE\",\"vocab\":{\"<unk>\":0,\"<0x0A>\":1},"
                   "\"merges\":[],\"unk_token\":\"<unk>\",\"byte_fallback\":true}");
    expect_tokens(m, "\n", (struct want[]){{1, 0, 1}}, 1);
    tok_model_free(m);
}
END_TEST

START_TEST(bpe_ignore_merges)
{
    static const char json[] =
        "{\"type\":\"BPE\",\"ignore_merges\":%s,\"vocab\":{\".:.:\":0,\"Ġbelirtilen\":1,\".\":2,"
        "\":\":3,\"bel\":4,\"irtilen\":5,\"Ġ\":6,\".:\":7,\"belirtilen\":8,\".:.\":9,\"be\":10,"
        "\"l\":11,\"ir\":12,\"ti\":13,\"en\":14,\"irtil\":15,\"irti\":16,\"i\":17,\"r\":18,"
        "\"t\":19,\"b\":20,\"e\":21,\"n\":22},\"merges\":[\". :\",\"b e\",\"be l\",\"i r\","
        "\"t i\",\"ir ti\",\"e n\",\"irti l\"]}";
    char buf[1024];
    snprintf(buf, sizeof buf, json, "true");
    struct tok_model *m = model_from(buf);
    expect_tokens(m, ".:.:", (struct want[]){{0, 0, 4}}, 1);
    expect_tokens(m, "Ġbelirtilen", (struct want[]){{1, 0, 12}}, 1);
    tok_model_free(m);
    snprintf(buf, sizeof buf, json, "false");
    m = model_from(buf);
    expect_tokens(m, ".:.:", (struct want[]){{7, 0, 2}, {7, 2, 4}}, 2);
    expect_tokens(m, "Ġbelirtilen",
                  (struct want[]){{6, 0, 2}, {4, 2, 5}, {15, 5, 10}, {14, 10, 12}}, 4);
    tok_model_free(m);
}
END_TEST

START_TEST(bpe_models_are_independent)
{
    /* HF test_cache_is_per_bpe_instance. */
    struct tok_model *a = model_from("{\"type\":\"BPE\",\"vocab\":{\"h\":0,\"e\":1,\"l\":2,\"o\":3,"
                                     "\"he\":4,\"hel\":5,\"hell\":6,\"hello\":7},"
                                     "\"merges\":[\"h e\",\"he l\",\"hel l\",\"hell o\"]}");
    struct tok_model *b =
        model_from("{\"type\":\"BPE\",\"vocab\":{\"h\":0,\"e\":1,\"l\":2,\"o\":3},"
                   "\"merges\":[]}");
    for (int round = 0; round < 2; round++) {
        expect_ids(a, "hello", (int32_t[]){7}, 1);
        expect_ids(b, "hello", (int32_t[]){0, 1, 2, 2, 3}, 5);
    }
    tok_model_free(a);
    tok_model_free(b);
}
END_TEST

START_TEST(bpe_bad_input)
{
    /* HF test_bpe_from_file_merge_token_oov: the merge "a d" names a missing token. */
    expect_format_error("{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"c\":2,\"ab\":3},"
                        "\"merges\":[\"a b\",\"a d\"]}",
                        "'d' is not in the vocab");
    /* HF test_bpe_from_file_bad_merges: a line without two parts. */
    expect_format_error("{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"c\":2,\"ab\":3},"
                        "\"merges\":[\"a b\",\"c\"]}",
                        "merges");
    /* The merged token must exist as well. */
    expect_format_error("{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]}",
                        "merged token 'ab'");
    expect_format_error("{\"type\":\"BPE\",\"merges\":[]}", "'vocab' is missing");
    expect_format_error("{\"type\":\"BPE\",\"vocab\":{\"a\":0}}", "'merges' is missing");
    expect_format_error("{\"type\":\"BPE\",\"vocab\":[\"a\"],\"merges\":[]}", "'vocab'");
    expect_format_error("{\"type\":\"BPE\",\"vocab\":{\"a\":\"0\"},\"merges\":[]}", "'vocab'");
    expect_format_error("{\"type\":\"BPE\",\"vocab\":{\"a\":-1},\"merges\":[]}", "'vocab'");
    expect_format_error("{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0},\"merges\":[]}", "'vocab'");
    expect_format_error("{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":{}}", "'merges'");
    expect_format_error("{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[[\"a\"]]}", "'merges'");
    expect_format_error("{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[7]}", "'merges'");
    expect_format_error("{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[],"
                        "\"unk_token\":\"<unk>\"}",
                        "'unk_token'");
    expect_format_error("{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[],\"unk_token\":3}",
                        "'unk_token'");
    expect_format_error("{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[],\"fuse_unk\":1}",
                        "'fuse_unk'");
    expect_format_error("{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[],"
                        "\"byte_fallback\":\"yes\"}",
                        "'byte_fallback'");
    expect_format_error("{\"type\":\"Nope\",\"vocab\":{}}", "Nope");
    expect_format_error("{\"type\":5,\"vocab\":{}}", "'type'");
}
END_TEST

/* ---- BPE on the fixtures (tokens from refs-dev.json) ---- */

START_TEST(bpe_gpt2_fixture)
{
    struct tok_model *m = load_fixture_model("gpt2");
    ck_assert_uint_eq(m->ops->vocab_size(m->state), 50257);
    expect_tokens(m, "Ġleading", (struct want[]){{3756, 0, 9}}, 1);
    expect_tokens(m, "Hugging", (struct want[]){{48098, 0, 3}, {2667, 3, 7}}, 2);
    expect_tokens(m, "ĠrÃ©sumÃ©", (struct want[]){{40560, 0, 7}, {16345, 7, 10}, {2634, 10, 14}},
                  3);
    expect_ids(m, "ÃħngstrÃ¶m", (int32_t[]){127, 227, 782, 2536, 9101, 76}, 6);
    expect_ids(m, "1234567890", (int32_t[]){10163, 2231, 30924, 3829}, 4);
    expect_ids(m, "ĠnaÃ¯ve", (int32_t[]){41492}, 1);
    expect_ids(m, "UPPER", (int32_t[]){8577, 18973}, 2);
    expect_ids(m, "ĊĊ", (int32_t[]){628}, 1);
    ck_assert_str_eq(m->ops->id_to_token(m->state, 3756), "Ġleading");
    ck_assert_int_eq(m->ops->token_to_id(m->state, "Ġworld", strlen("Ġworld")), 995);
    tok_model_free(m);
}
END_TEST

START_TEST(bpe_llama2_byte_fallback_fixture)
{
    struct tok_model *m = load_fixture_model("llama2");
    ck_assert_uint_eq(m->ops->vocab_size(m->state), 32000);
    /* One piece (Metaspace without split): 词 and 爱 are not in the vocab. */
    expect_tokens(m, "▁中文分词测试：我爱自然语言处理。",
                  (struct want[]){{29871, 0, 3},   {30275, 3, 6},   {30333, 6, 9},
                                  {30748, 9, 12},  {235, 12, 13},   {178, 13, 14},
                                  {144, 14, 15},   {31851, 15, 18}, {31787, 18, 21},
                                  {30383, 21, 24}, {30672, 24, 27}, {234, 27, 28},
                                  {139, 28, 29},   {180, 29, 30},   {30688, 30, 33},
                                  {31516, 33, 36}, {31505, 36, 39}, {31243, 39, 42},
                                  {31548, 42, 45}, {30687, 45, 48}, {30267, 48, 51}},
                  21);
    expect_ids(m, "▁▁leading▁and▁trailing▁spaces▁▁", (int32_t[]){259, 25369, 322, 25053, 8162, 259},
               6);
    expect_ids(m, "▁Hello▁world!", (int32_t[]){15043, 3186, 29991}, 3);
    expect_ids(m, "▁Ångström▁Øresund▁Łódź▁Straße",
               (int32_t[]){11260, 865, 25961, 29871, 30222, 690, 870, 14124, 4431, 30109, 22667},
               11);
    expect_ids(m,
               "▁control\x07"
               "chars",
               (int32_t[]){2761, 10, 305, 1503}, 4);
    tok_model_free(m);
}
END_TEST

START_TEST(bpe_llama3_ignore_merges_fixture)
{
    /* llama3 keeps its merges in the legacy "a b" form and sets ignore_merges. */
    struct tok_model *m = load_fixture_model("llama3");
    expect_ids(m, "Ġsuperb", (int32_t[]){33689}, 1);
    expect_ids(m, "ìŀħëĭĪëĭ¤", (int32_t[]){80052}, 1);
    expect_ids(m, "ĠÐ´ÐµÐ»Ð°", (int32_t[]){123936}, 1);
    expect_tokens(m, "ĉtabs", (struct want[]){{3324, 0, 3}, {3518, 3, 6}}, 2);
    expect_ids(m, "ÃħngstrÃ¶m", (int32_t[]){106453, 983, 496, 86684}, 4);
    expect_ids(m, "ÙħØ±ØŃØ¨Ø§", (int32_t[]){101244, 30925, 103645}, 3);
    tok_model_free(m);
}
END_TEST

START_TEST(bpe_qwen3_fixture)
{
    struct tok_model *m = load_fixture_model("qwen3");
    ck_assert_uint_eq(m->ops->vocab_size(m->state), 151643);
    expect_ids(m, "ĠÐ´ÐµÐ»Ð°", (int32_t[]){129691}, 1);
    expect_ids(m, "ĠÏĥÎ¿Ïħ", (int32_t[]){47723, 72886}, 2);
    expect_ids(m, "ÙħØ±ØŃØ¨Ø§", (int32_t[]){124122, 29825, 124671}, 3);
    expect_ids(m, "Hugging", (int32_t[]){39, 35268}, 2);
    tok_model_free(m);
}
END_TEST

/* ---- WordPiece ---- */

START_TEST(wordpiece_bert_fixture)
{
    struct tok_model *m = load_fixture_model("bert-uncased");
    ck_assert_uint_eq(m->ops->vocab_size(m->state), 30522);
    expect_tokens(m, "hello", (struct want[]){{7592, 0, 5}}, 1);
    expect_tokens(m, "tabs", (struct want[]){{21628, 0, 3}, {2015, 3, 4}}, 2);
    expect_tokens(m, "straße", (struct want[]){{2358, 0, 2}, {27807, 2, 7}}, 2);
    expect_tokens(m, "øresund", (struct want[]){{1100, 0, 2}, {6072, 2, 5}, {8630, 5, 8}}, 3);
    expect_ids(m, "emoji", (int32_t[]){7861, 29147, 2072}, 3);
    expect_ids(m, "digraphs", (int32_t[]){10667, 24342, 2015}, 3);
    /* 한국어 after BERT's NFD: conjoining jamo, 3 bytes each. */
    expect_ids(m,
               "\xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab\xe1\x84\x80\xe1\x85\xae\xe1\x86\xa8"
               "\xe1\x84\x8b\xe1\x85\xa5",
               (int32_t[]){1469, 30006, 30021, 29991, 30014, 30020, 29999, 30008}, 8);
    /* No vocab entry for the char: the whole word is [UNK]. */
    expect_tokens(m, "😀", (struct want[]){{100, 0, 4}}, 1);
    /* Over max_input_chars_per_word (100): [UNK] over the whole word. */
    char longw[301];
    memset(longw, 'a', 300);
    longw[300] = '\0';
    expect_tokens(m, longw, (struct want[]){{100, 0, 300}}, 1);
    ck_assert_str_eq(m->ops->id_to_token(m->state, 2015), "##s");
    ck_assert_int_eq(m->ops->token_to_id(m->state, "[UNK]", 5), 100);
    tok_model_free(m);
}
END_TEST

START_TEST(wordpiece_counts_chars_not_bytes)
{
    struct tok_model *m = model_from("{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\","
                                     "\"continuing_subword_prefix\":\"##\","
                                     "\"max_input_chars_per_word\":3,"
                                     "\"vocab\":{\"[UNK]\":0,\"é\":1,\"##é\":2,\"éé\":3}}");
    /* Three chars (six bytes) are within the limit; greedy longest first. */
    expect_tokens(m, "ééé", (struct want[]){{3, 0, 4}, {2, 4, 6}}, 2);
    expect_tokens(m, "éééé", (struct want[]){{0, 0, 8}}, 1);
    expect_tokens(m, "éx", (struct want[]){{0, 0, 3}}, 1);
    expect_tokens(m, "", NULL, 0);
    tok_model_free(m);
}
END_TEST

START_TEST(wordpiece_bad_input)
{
    expect_format_error("{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\","
                        "\"continuing_subword_prefix\":\"##\",\"max_input_chars_per_word\":100}",
                        "'vocab'");
    expect_format_error("{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\","
                        "\"continuing_subword_prefix\":\"##\",\"max_input_chars_per_word\":100,"
                        "\"vocab\":{\"a\":0}}",
                        "'unk_token'");
    expect_format_error("{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\","
                        "\"continuing_subword_prefix\":\"##\",\"vocab\":{\"[UNK]\":0}}",
                        "'max_input_chars_per_word'");
    expect_format_error("{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\","
                        "\"continuing_subword_prefix\":\"##\",\"max_input_chars_per_word\":\"9\","
                        "\"vocab\":{\"[UNK]\":0}}",
                        "'max_input_chars_per_word'");
    expect_format_error("{\"type\":\"WordPiece\",\"unk_token\":[],"
                        "\"continuing_subword_prefix\":\"##\",\"max_input_chars_per_word\":9,"
                        "\"vocab\":{\"[UNK]\":0}}",
                        "'unk_token'");
    expect_format_error("{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\","
                        "\"max_input_chars_per_word\":9,\"vocab\":{\"[UNK]\":0}}",
                        "'continuing_subword_prefix'");
}
END_TEST

/* ---- WordLevel ---- */

START_TEST(wordlevel_whole_words)
{
    struct tok_model *m = model_from("{\"type\":\"WordLevel\",\"unk_token\":\"<unk>\","
                                     "\"vocab\":{\"<unk>\":0,\"hello\":1}}");
    expect_tokens(m, "hello", (struct want[]){{1, 0, 5}}, 1);
    expect_tokens(m, "hell", (struct want[]){{0, 0, 4}}, 1);
    tok_model_free(m);
    expect_format_error("{\"type\":\"WordLevel\",\"vocab\":{}}", "'unk_token'");
}
END_TEST

/* ---- Unigram: HF models/unigram/model.rs unit tests ---- */

START_TEST(unigram_encode)
{
    struct tok_model *m =
        model_from("{\"type\":\"Unigram\",\"unk_id\":0,\"vocab\":[[\"<unk>\",0.0],"
                   "[\"a\",0.0],[\"b\",0.0],[\"c\",0.0],[\"d\",0.0],[\"cd\",1.0],"
                   "[\"ab\",2.0],[\"abc\",5.0],[\"abcd\",10.0]]}");
    expect_tokens(m, "abcd", (struct want[]){{8, 0, 4}}, 1);
    /* The doc example of Unigram::encode: "abcdacdxx" -> abcd a cd xx. */
    expect_tokens(m, "abcdacdxx", (struct want[]){{8, 0, 4}, {1, 4, 5}, {5, 5, 7}, {0, 7, 9}}, 4);
    tok_model_free(m);
}
END_TEST

START_TEST(unigram_encode2)
{
    /* ids: <unk> 0, ab 1, cd 2, abc 3, a 4, b 5, c 6, ABC 7, abcdabcd 8, q 9, r 10, qr 11 */
    struct tok_model *m = model_from(
        "{\"type\":\"Unigram\",\"unk_id\":0,\"vocab\":[[\"<unk>\",0.0],[\"ab\",0.0],"
        "[\"cd\",-0.1],[\"abc\",-0.2],[\"a\",-0.3],[\"b\",-0.4],[\"c\",-0.5],[\"ABC\",-0.5],"
        "[\"abcdabcd\",20.0],[\"q\",20.5],[\"r\",20.5],[\"qr\",-0.5]]}");
    expect_ids(m, "abc", (int32_t[]){3}, 1);
    expect_tokens(m, "AB", (struct want[]){{0, 0, 2}}, 1); /* fused unknowns */
    expect_ids(m, "abcd", (int32_t[]){1, 2}, 2);
    expect_ids(m, "abcc", (int32_t[]){3, 6}, 2);
    expect_tokens(
        m, "xabcabaabcdd",
        (struct want[]){
            {0, 0, 1}, {3, 1, 4}, {1, 4, 6}, {4, 6, 7}, {1, 7, 9}, {2, 9, 11}, {0, 11, 12}},
        7);
    expect_tokens(m, "xyz東京", (struct want[]){{0, 0, 9}}, 1);
    expect_ids(m, "ABC", (int32_t[]){7}, 1);
    expect_ids(m, "abABCcd", (int32_t[]){1, 7, 2}, 3);
    expect_ids(m, "ababcdabcdcd", (int32_t[]){1, 8, 2}, 3);
    expect_ids(m, "abqrcd", (int32_t[]){1, 9, 10, 2}, 4);
    ck_assert_uint_eq(m->ops->vocab_size(m->state), 12);
    ck_assert_str_eq(m->ops->id_to_token(m->state, 8), "abcdabcd");
    ck_assert_int_eq(m->ops->token_to_id(m->state, "qr", 2), 11);
    ck_assert_int_eq(m->ops->token_to_id(m->state, "q", 1), 9);
    ck_assert_int_eq(m->ops->token_to_id(m->state, "abcdab", 6), -1);
    tok_model_free(m);
}
END_TEST

START_TEST(unigram_byte_fallback)
{
    struct tok_model *m = model_from("{\"type\":\"Unigram\",\"unk_id\":0,\"byte_fallback\":true,"
                                     "\"vocab\":[[\"<unk>\",0.0],[\"<0xC3>\",-0.01],"
                                     "[\"<0xA9>\",-0.03]]}");
    expect_tokens(m, "é", (struct want[]){{1, 0, 2}, {2, 0, 2}}, 2);
    /* '?' has no byte token, so the fused "?é" is one unknown. */
    expect_tokens(m, "?é", (struct want[]){{0, 0, 3}}, 1);
    tok_model_free(m);
}
END_TEST

START_TEST(unigram_fixtures)
{
    struct tok_model *m = load_fixture_model("xlmr-unigram");
    ck_assert_uint_eq(m->ops->vocab_size(m->state), 3002);
    expect_tokens(m, "▁leading", (struct want[]){{1386, 0, 7}, {18, 7, 10}}, 2);
    expect_ids(m, "▁trailing", (int32_t[]){495, 736, 18}, 3);
    expect_tokens(m, "▁Привет,", (struct want[]){{6, 0, 3}, {3, 3, 15}, {8, 15, 16}}, 3);
    expect_tokens(m, "▁Łódź",
                  (struct want[]){{6, 0, 3}, {3, 3, 5}, {2784, 5, 7}, {20, 7, 8}, {3, 8, 10}}, 5);
    expect_tokens(m, "▁😀👍🏽", (struct want[]){{6, 0, 3}, {3, 3, 15}}, 2);
    ck_assert_str_eq(m->ops->id_to_token(m->state, 1386), "▁lead");
    tok_model_free(m);
    m = load_fixture_model("t5-unigram");
    expect_ids(m, "▁Привет,", (int32_t[]){4, 2, 6}, 3);
    expect_ids(m, "▁leading", (int32_t[]){1387, 16}, 2);
    expect_ids(m, "▁emoji", (int32_t[]){229, 316, 248, 57}, 4);
    tok_model_free(m);
}
END_TEST

START_TEST(unigram_bad_input)
{
    expect_format_error("{\"type\":\"Unigram\",\"unk_id\":0}", "'vocab' is missing");
    expect_format_error("{\"type\":\"Unigram\",\"vocab\":{\"a\":1}}", "'vocab'");
    expect_format_error("{\"type\":\"Unigram\",\"vocab\":[[\"a\"]]}", "'vocab'");
    expect_format_error("{\"type\":\"Unigram\",\"vocab\":[[\"a\",\"x\"]]}", "'vocab'");
    expect_format_error("{\"type\":\"Unigram\",\"unk_id\":1,\"vocab\":[[\"a\",0.0]]}", "'unk_id'");
    expect_format_error("{\"type\":\"Unigram\",\"unk_id\":-1,\"vocab\":[[\"a\",0.0]]}", "'unk_id'");
    expect_format_error("{\"type\":\"Unigram\",\"unk_id\":\"0\",\"vocab\":[[\"a\",0.0]]}",
                        "'unk_id'");
    expect_format_error("{\"type\":\"Unigram\",\"vocab\":[],\"unk_id\":0}", "'unk_id'");
    expect_format_error("{\"type\":\"Unigram\",\"vocab\":[[\"a\",0.0]],\"byte_fallback\":0}",
                        "'byte_fallback'");
    /* Without unk_id an unknown char is an encode error, as in HF (MissingUnkId). */
    struct tok_model *m = model_from("{\"type\":\"Unigram\",\"vocab\":[[\"a\",0.0]]}");
    expect_tokens(m, "aa", (struct want[]){{0, 0, 1}, {0, 1, 2}}, 2);
    struct token_vec out = {0};
    struct err e = {0};
    ck_assert_int_eq(m->ops->tokenize(m->state, "ab", 2, &out, &e), ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(e.msg, "unk_id"));
    token_vec_fini(&out);
    tok_model_free(m);
}
END_TEST

Suite *suite_tok_models(void)
{
    Suite *s = suite_create("models");
    TCase *tc = tcase_create("bpe");
    tcase_add_test(tc, bpe_unk_not_fused);
    tcase_add_test(tc, bpe_unk_fused);
    tcase_add_test(tc, bpe_merges_in_rank_order);
    tcase_add_test(tc, bpe_continuing_subword_prefix);
    tcase_add_test(tc, bpe_byte_fallback);
    tcase_add_test(tc, bpe_ignore_merges);
    tcase_add_test(tc, bpe_models_are_independent);
    tcase_add_test(tc, bpe_bad_input);
    suite_add_tcase(s, tc);
    tc = tcase_create("bpe-fixtures");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, bpe_gpt2_fixture);
    tcase_add_test(tc, bpe_llama2_byte_fallback_fixture);
    tcase_add_test(tc, bpe_llama3_ignore_merges_fixture);
    tcase_add_test(tc, bpe_qwen3_fixture);
    suite_add_tcase(s, tc);
    tc = tcase_create("wordpiece");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, wordpiece_bert_fixture);
    tcase_add_test(tc, wordpiece_counts_chars_not_bytes);
    tcase_add_test(tc, wordpiece_bad_input);
    tcase_add_test(tc, wordlevel_whole_words);
    suite_add_tcase(s, tc);
    tc = tcase_create("unigram");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, unigram_encode);
    tcase_add_test(tc, unigram_encode2);
    tcase_add_test(tc, unigram_byte_fallback);
    tcase_add_test(tc, unigram_fixtures);
    tcase_add_test(tc, unigram_bad_input);
    suite_add_tcase(s, tc);
    return s;
}
