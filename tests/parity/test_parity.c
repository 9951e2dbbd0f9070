/* test_parity: the tokenizer against Hugging Face's own output. For each fixture
 * tokenizer, every refs-dev.json entry (computed by `tokenizers` 0.23.2 through
 * transformers 5.17) must match exactly: ids with and without special tokens, token
 * strings, code-point offsets and the decoded text. pairs-dev.json checks text pairs
 * with truncation only_second, stride windows and max_length padding. The same checks run
 * on tokenizers-slow.tar.xz: the fixtures as slow-tokenizer files only (no tokenizer.json),
 * converted at load, against transformers' references for those files. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* Every refs-dev.json entry of dir against its tokenizer; name labels the messages. Where an
 * entry also has encoding_tokens (the fast Encoding's token strings), the tokens may equal
 * either list: the Encoding keeps an added token's matched text, as inferd does. */
static void check_refs(const char *name, const char *dir)
{
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
        char why[512] = "", why2[512];
        const char *what = NULL;
        if (tokenizer_encode(tk, s, len, NULL, 0, &p, &out, &e) != 0) {
            what = "encode";
            snprintf(why, sizeof why, "%s", e.msg);
        } else if (!same_ids(out.v[0].ids, out.v[0].n, json_object_get(ref, "ids"), why,
                             sizeof why)) {
            what = "ids";
        } else if (!same_tokens(&out.v[0], json_object_get(ref, "tokens"), why, sizeof why) &&
                   !(json_object_get(ref, "encoding_tokens") &&
                     same_tokens(&out.v[0], json_object_get(ref, "encoding_tokens"), why2,
                                 sizeof why2))) {
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

START_TEST(refs_dev)
{
    check_refs(names[_i], fixture_tokenizer(names[_i]));
}
END_TEST

/* Question/context pairs as the question-answering pipeline encodes them. */
static void check_pairs(const char *dir)
{
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

START_TEST(pairs_dev)
{
    check_pairs(fixture_tokenizer("bert-uncased"));
}
END_TEST

/* ---- tokenizers converted from slow-tokenizer files (no tokenizer.json) ---- */

/* tokenizers-slow.tar.xz: the fixtures above as vocab.txt / vocab.json + merges.txt /
 * sentencepiece models, with transformers' references for those files
 * (tools/refgen/slow_tokenizers.py). */
static const char *const slow_names[] = {"bert-uncased", "gpt2", "roberta"};

/* tokenizers-spm.tar.xz: sentencepiece models in the layouts of T5, ALBERT, XLM-R,
 * DeBERTa-v2 and Llama, some with their options changed (cased ALBERT, DeBERTa-v2 splitting
 * punctuation, legacy Llama, T5 with a user-defined piece and no tokenizer_class)
 * (tools/refgen/spm_tokenizers.py), with transformers' references. */
static const char *const spm_names[] = {
    "t5",         "t5-user",          "albert", "albert-cased", "xlmr",
    "deberta-v2", "deberta-v2-punct", "llama",  "llama-legacy"};

/* The directory of fixture name in tokenizers-KIND.tar.xz. */
static const char *slow_dir(const char *kind, const char *name)
{
    static char path[700];
    char archive[64];
    snprintf(archive, sizeof archive, "tokenizers-%s.tar.xz", kind);
    snprintf(path, sizeof path, "%s/tokenizers-%s/%s", fixture_dir(archive), kind, name);
    return path;
}

static void check_slow_refs(const char *kind, const char *name)
{
    const char *dir = slow_dir(kind, name);
    char path[800];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    ck_assert_msg(access(path, F_OK) != 0, "%s exists", path);
    check_refs(name, dir);
}

START_TEST(slow_refs_dev)
{
    check_slow_refs("slow", slow_names[_i]);
}
END_TEST

START_TEST(spm_refs_dev)
{
    check_slow_refs("spm", spm_names[_i]);
}
END_TEST

/* pairs-dev.json: text pairs without truncation (the converter's pair template). */
static void check_slow_pairs(const char *kind, const char *name)
{
    const char *dir = slow_dir(kind, name);
    struct tokenizer *tk;
    struct err e = {0};
    ck_assert_msg(tokenizer_load(dir, &tk, &e) == 0, "%s", e.msg);
    json_t *refs = fixture_json(dir, "pairs-dev.json");
    ck_assert_int_ge(json_array_size(refs), 10);
    size_t i;
    json_t *ref;
    json_array_foreach(refs, i, ref)
    {
        const json_t *a = json_object_get(ref, "text"), *b = json_object_get(ref, "pair");
        struct tokenizer_params p = tokenizer_params_default(tk);
        struct encodings out = {0};
        ck_assert_msg(tokenizer_encode(tk, json_string_value(a), json_string_length(a),
                                       json_string_value(b), json_string_length(b), &p, &out,
                                       &e) == 0,
                      "%s", e.msg);
        const struct encoding *enc = &out.v[0];
        int32_t *types = malloc((enc->n + 1) * sizeof *types);
        for (size_t k = 0; k < enc->n; k++)
            types[k] = (int32_t)enc->type_ids[k];
        char why[512];
        ck_assert_msg(same_ids(enc->ids, enc->n, json_object_get(ref, "ids"), why, sizeof why),
                      "%s pair %zu ids: %s", name, i, why);
        ck_assert_msg(same_ids(types, enc->n, json_object_get(ref, "type_ids"), why, sizeof why),
                      "%s pair %zu type ids: %s", name, i, why);
        ck_assert_msg(same_offsets(enc, json_object_get(ref, "offsets"), why, sizeof why),
                      "%s pair %zu: %s", name, i, why);
        free(types);
        encodings_fini(&out);
    }
    json_decref(refs);
    tokenizer_free(tk);
}

START_TEST(slow_pairs_dev)
{
    check_slow_pairs("slow", slow_names[_i]);
}
END_TEST

START_TEST(spm_pairs_dev)
{
    check_slow_pairs("spm", spm_names[_i]);
}
END_TEST

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[800];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* Neither tokenizer.json nor any slow file: ERR_NOT_FOUND naming what was looked for. */
START_TEST(slow_none_is_a_clear_error)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s/no-tokenizer", temp_dir());
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    write_text(dir, "tokenizer_config.json", "{\"tokenizer_class\": \"BertTokenizer\"}");
    struct tokenizer *tk = NULL;
    struct err e = {0};
    ck_assert_int_eq(tokenizer_load(dir, &tk, &e), ERR_NOT_FOUND);
    ck_assert_ptr_null(tk);
    const char *const named[] = {"tokenizer.json", "vocab.txt", "vocab.json", "merges.txt",
                                 "spiece.model", "sentencepiece.bpe.model", "spm.model",
                                 "tokenizer.model", dir};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        ck_assert_msg(strstr(e.msg, named[i]) != NULL, "'%s' not in: %s", named[i], e.msg);
}
END_TEST

/* Malformed slow files are ERR_FORMAT naming the file and line. */
START_TEST(slow_malformed_files)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s/bad-merges", temp_dir());
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    write_text(dir, "vocab.json", "{\"a\": 0, \"b\": 1, \"ab\": 2}");
    write_text(dir, "merges.txt", "#version: 0.2\na b\na b c\n");
    struct tokenizer *tk = NULL;
    struct err e = {0};
    ck_assert_int_eq(tokenizer_load(dir, &tk, &e), ERR_FORMAT);
    ck_assert_msg(strstr(e.msg, "merges.txt: line 3") != NULL, "%s", e.msg);
    write_text(dir, "merges.txt", "a b\n");
    write_text(dir, "vocab.json", "[1, 2]");
    ck_assert_int_eq(tokenizer_load(dir, &tk, &e), ERR_FORMAT);
    ck_assert_msg(strstr(e.msg, "vocab.json") != NULL, "%s", e.msg);
    write_text(dir, "vocab.json", "{\"a\": 0, \"b\": 1, \"ab\": 2}");
    ck_assert_msg(tokenizer_load(dir, &tk, &e) == 0, "%s", e.msg);
    struct tokenizer_params p = tokenizer_params_default(tk);
    struct encodings out = {0};
    ck_assert_int_eq(tokenizer_encode(tk, "ab", 2, NULL, 0, &p, &out, &e), 0);
    ck_assert_uint_eq(out.v[0].n, 1);
    ck_assert_int_eq(out.v[0].ids[0], 2);
    encodings_fini(&out);
    tokenizer_free(tk);
}
END_TEST

/* A tokenizer_class no slow family covers (Qwen2Tokenizer's vocab.json + merges.txt need NFC
 * and its own split pattern) is ERR_FORMAT naming the class and the supported ones, never the
 * GPT-2 family's other ids; a listed class ("Fast" or not) and no class at all still load. */
START_TEST(slow_unknown_class_is_refused)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s/qwen2-slow", temp_dir());
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    write_text(dir, "vocab.json", "{\"a\": 0, \"b\": 1, \"ab\": 2}");
    write_text(dir, "merges.txt", "a b\n");
    write_text(dir, "tokenizer_config.json", "{\"tokenizer_class\": \"Qwen2Tokenizer\"}");
    struct tokenizer *tk = NULL;
    struct err e = {0};
    ck_assert_int_eq(tokenizer_load(dir, &tk, &e), ERR_FORMAT);
    ck_assert_ptr_null(tk);
    const char *const named[] = {"\"Qwen2Tokenizer\"", "GPT2Tokenizer", "RobertaTokenizer",
                                 "tokenizer.json"};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        ck_assert_msg(strstr(e.msg, named[i]) != NULL, "'%s' not in: %s", named[i], e.msg);
    const char *const ok[] = {"{\"tokenizer_class\": \"GPT2TokenizerFast\"}", "{}"};
    for (size_t i = 0; i < 2; i++) {
        write_text(dir, "tokenizer_config.json", ok[i]);
        ck_assert_msg(tokenizer_load(dir, &tk, &e) == 0, "%s: %s", ok[i], e.msg);
        tokenizer_free(tk);
        tk = NULL;
    }
    snprintf(dir, sizeof dir, "%s/mpnet-slow", temp_dir());
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    write_text(dir, "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\n");
    write_text(dir, "tokenizer_config.json", "{\"tokenizer_class\": \"MPNetTokenizer\"}");
    ck_assert_int_eq(tokenizer_load(dir, &tk, &e), ERR_FORMAT);
    ck_assert_msg(strstr(e.msg, "\"MPNetTokenizer\"") && strstr(e.msg, "BertTokenizer"), "%s",
                  e.msg);
    write_text(dir, "tokenizer_config.json", "{\"tokenizer_class\": \"DistilBertTokenizer\"}");
    ck_assert_msg(tokenizer_load(dir, &tk, &e) == 0, "%s", e.msg);
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
    tc = tcase_create("slow_tokenizers");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, slow_refs_dev, 0, (int)(sizeof slow_names / sizeof slow_names[0]));
    tcase_add_loop_test(tc, slow_pairs_dev, 0, (int)(sizeof slow_names / sizeof slow_names[0]));
    tcase_add_test(tc, slow_none_is_a_clear_error);
    tcase_add_test(tc, slow_malformed_files);
    tcase_add_test(tc, slow_unknown_class_is_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("spm_tokenizers");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, spm_refs_dev, 0, (int)(sizeof spm_names / sizeof spm_names[0]));
    tcase_add_loop_test(tc, spm_pairs_dev, 0, (int)(sizeof spm_names / sizeof spm_names[0]));
    suite_add_tcase(s, tc);
    return s;
}
