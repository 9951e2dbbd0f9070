/* test_grammar: constrained decoding (suite `grammar`).
 * - the regex compiler (engine/generate/grammar.c): strings it must accept and reject, and
 *   the regexes it must refuse with a message naming why;
 * - the JSON Schema compiler (server/schema_regex.c): documents that must match or not, and
 *   the unsupported keywords it must name;
 * - generation on the tiny random-weight decoders (gpt2-lm: byte-level BPE, llama-lm:
 *   SentencePiece with byte fallback), whose garbage logits are what stresses a constraint:
 *   for every schema and seed the output parses as JSON and validates, checked by
 *   support/json_check.c, an independent validator written from the JSON Schema specification
 *   (Python's jsonschema cannot run in make test, and outputs sampled at test time cannot be
 *   precomputed). Regex constraints are checked with PCRE2. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "constraint.h"
#include "generate/grammar.h"
#include "schema_regex.h"
#include "suites.h"
#include "support/json_check.h"
#include "support/support.h"

static struct grammar *compile(const char *re)
{
    struct grammar *g = NULL;
    struct err e = {0};
    ck_assert_msg(grammar_compile(re, strlen(re), &g, &e) == 0, "%s: %s", re, e.msg);
    return g;
}

static void matches(const char *re, const char *const *yes, const char *const *no)
{
    struct grammar *g = compile(re);
    for (; yes && *yes; yes++)
        ck_assert_msg(grammar_matches(g, *yes, strlen(*yes)), "%s should match '%s'", re, *yes);
    for (; no && *no; no++)
        ck_assert_msg(!grammar_matches(g, *no, strlen(*no)), "%s should not match '%s'", re, *no);
    grammar_unref(g);
}

#define L(...) (const char *const[]){__VA_ARGS__, NULL}

START_TEST(regex_accepts)
{
    matches("abc", L("abc"), L("", "ab", "abcd", "xbc"));
    matches("a|bc|", L("a", "bc", ""), L("b", "abc"));
    matches("[a-c]+x?", L("a", "cab", "abcx"), L("", "x", "ad"));
    matches("[^a-z]", L("A", "0", "\xC3\xA9", "\xF0\x9F\x98\x80"), L("a", "", "AB", "\xC3"));
    matches("\\d{2,3}", L("12", "123"), L("1", "1234", "ab"));
    matches("x{3}", L("xxx"), L("xx", "xxxx"));
    matches("(ab){2,}", L("abab", "ababab"), L("ab", "aba"));
    matches("(?:a|b)*c", L("c", "abbac"), L("ab", "cc"));
    matches("^\\w+\\s\\W$", L("a_9 !"), L("a !x", "a b"));
    matches(".", L("a", "\xE2\x82\xAC"), L("\n", "ab"));
    matches("\\.\\*\\[\\x41\\u00e9", L(".*[A\xC3\xA9"), L(".*[Ae"));
    matches("[-+]?[0-9]+", L("-1", "+2", "3"), L("--1", "+"));
    matches("caf\xC3\xA9", L("caf\xC3\xA9"), L("cafe"));
    matches("a*?b+?", L("b", "aab"), L("a"));
}
END_TEST

static void refuses(const char *re, const char *msg_part)
{
    struct grammar *g = NULL;
    struct err e = {0};
    ck_assert_msg(grammar_compile(re, strlen(re), &g, &e) == ERR_INVALID, "%s compiled", re);
    ck_assert_msg(strstr(e.msg, msg_part), "%s: '%s' lacks '%s'", re, e.msg, msg_part);
    ck_assert_ptr_null(g);
}

START_TEST(regex_refuses)
{
    refuses("(a", "missing )");
    refuses("a)", "unmatched )");
    refuses("*a", "nothing before");
    refuses("[abc", "unterminated class");
    refuses("[z-a]", "bad range");
    refuses("(\\1)", "unsupported escape");
    refuses("(?=a)", "lookaround");
    refuses("a{5,2}", "malformed");
    refuses("a{1001}", "over 1000");
    refuses("a^b", "anchor");
    refuses("[\xC3\xA9]", "non-ASCII");
}
END_TEST

START_TEST(regex_too_complex)
{
    /* the n-th letter from the end: 2^n DFA states */
    struct grammar *g = NULL;
    struct err e = {0};
    const char *re = "[ab]*a[ab]{16}";
    ck_assert_int_eq(grammar_compile(re, strlen(re), &g, &e), ERR_INVALID);
    ck_assert_msg(strstr(e.msg, "too complex"), "%s", e.msg);
}
END_TEST

/* ---- JSON schemas ---- */

static struct grammar *schema_grammar(const char *schema_text, int *rc, struct err *e)
{
    json_t *s = json_loads(schema_text, 0, NULL);
    ck_assert_msg(s != NULL, "bad test schema %s", schema_text);
    char *re = NULL;
    struct grammar *g = NULL;
    *rc = schema_to_regex(s, &re, e);
    if (*rc == 0)
        *rc = grammar_compile(re, strlen(re), &g, e);
    free(re);
    json_decref(s);
    return g;
}

static void schema_matches(const char *schema, const char *const *yes, const char *const *no)
{
    int rc;
    struct err e = {0};
    struct grammar *g = schema_grammar(schema, &rc, &e);
    ck_assert_msg(rc == 0, "%s: %s", schema, e.msg);
    for (; yes && *yes; yes++)
        ck_assert_msg(grammar_matches(g, *yes, strlen(*yes)), "%s should match %s", schema, *yes);
    for (; no && *no; no++)
        ck_assert_msg(!grammar_matches(g, *no, strlen(*no)), "%s should not match %s", schema, *no);
    grammar_unref(g);
}

START_TEST(schema_accepts)
{
    schema_matches("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},"
                   "\"b\":{\"type\":\"string\"}},\"required\":[\"a\"]}",
                   L("{\"a\":1}", "{\"a\": -12, \"b\":\"x\\\"y\"}", "{\"a\":0,\"b\":\"\"}"),
                   L("{}", "{\"b\":\"x\"}", "{\"a\":01}", "{\"a\":1.5}", "{\"b\":\"x\",\"a\":1}",
                     "{ \"a\":1}", "{\"a\":1,\"c\":2}"));
    schema_matches("{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"boolean\"},"
                   "\"y\":{\"type\":\"null\"}}}",
                   L("{}", "{\"x\":true}", "{\"y\":null}", "{\"x\":false, \"y\":null}"),
                   L("{,\"y\":null}", "{\"x\":1}"));
    schema_matches("{\"type\":\"array\",\"items\":{\"enum\":[\"r\",2,null]},\"minItems\":1,"
                   "\"maxItems\":3}",
                   L("[\"r\"]", "[2,null, \"r\"]"), L("[]", "[2,2,2,2]", "[\"s\"]", "[3]"));
    schema_matches("{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}",
                   L("\"ab\"", "\"\xC3\xA9\xC3\xA9\xC3\xA9\"", "\"a\\n\"", "\"\\u00e9x\""),
                   L("\"a\"", "\"abcd\"", "\"a\nb\""));
    schema_matches("{\"type\":\"string\",\"pattern\":\"^[A-Z]{2}-\\\\d+$\"}", L("\"AB-12\""),
                   L("\"AB-\"", "\"xAB-1\""));
    schema_matches("{\"type\":\"string\",\"pattern\":\"o+\"}", L("\"foo bar\"", "\"o\""),
                   L("\"fa\""));
    schema_matches("{\"type\":\"string\",\"format\":\"date\"}", L("\"2024-02-29\""),
                   L("\"2024-13-01\"", "\"24-01-01\""));
    schema_matches("{\"type\":\"string\",\"format\":\"uuid\"}",
                   L("\"123e4567-e89b-12d3-a456-426614174000\""), L("\"123e4567\""));
    schema_matches("{\"type\":\"integer\",\"minimum\":-15,\"maximum\":230}",
                   L("-15", "-1", "0", "9", "10", "99", "100", "229", "230"),
                   L("-16", "-0", "231", "300", "1000", "05"));
    schema_matches("{\"type\":\"integer\",\"exclusiveMinimum\":7}", L("8", "1234567"),
                   L("7", "-1"));
    schema_matches("{\"type\":\"number\",\"minimum\":0,\"maximum\":1}",
                   L("0", "0.25", "1", "1.0"), L("1.5", "-0.1", "2"));
    schema_matches("{\"type\":\"number\"}", L("1", "-0.5", "2e10", "3.1E-2"),
                   L("1.", ".5", "1e", "+1"));
    schema_matches("{\"anyOf\":[{\"type\":\"integer\"},{\"const\":\"n/a\"}]}", L("3", "\"n/a\""),
                   L("\"x\""));
    schema_matches("{\"type\":[\"string\",\"null\"],\"maxLength\":1}", L("null", "\"a\""),
                   L("\"ab\""));
    schema_matches("{\"$defs\":{\"p\":{\"type\":\"object\",\"properties\":{\"n\":{\"type\":"
                   "\"integer\"}},\"required\":[\"n\"],\"additionalProperties\":false}},"
                   "\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/p\"}}",
                   L("[]", "[{\"n\":1},{\"n\":2}]"), L("[{}]"));
    /* recursion, cut 3 deep: the deepest children list can only be empty */
    schema_matches("{\"type\":\"object\",\"properties\":{\"c\":{\"type\":\"array\",\"items\":"
                   "{\"$ref\":\"#\"}}},\"required\":[\"c\"]}",
                   L("{\"c\":[]}", "{\"c\":[{\"c\":[]}]}", "{\"c\":[{\"c\":[{\"c\":[]}]}]}"),
                   L("{}", "{\"c\":[{\"c\":[{\"c\":[{\"c\":[{\"c\":[]}]}]}]}]}"));
    schema_matches("{}", L("1", "\"x\"", "{\"a\":[1,{\"b\":null}]}"), L("{a:1}"));
}
END_TEST

static void schema_refused(const char *schema, const char *msg_part)
{
    int rc;
    struct err e = {0};
    struct grammar *g = schema_grammar(schema, &rc, &e);
    ck_assert_msg(rc == ERR_INVALID, "%s: compiled", schema);
    ck_assert_msg(strstr(e.msg, msg_part), "%s: '%s' lacks '%s'", schema, e.msg, msg_part);
    ck_assert_ptr_null(g);
}

START_TEST(schema_refuses)
{
    schema_refused("{\"type\":\"object\",\"patternProperties\":{}}", "`patternProperties`");
    schema_refused("{\"type\":\"array\",\"uniqueItems\":true}", "`uniqueItems`");
    schema_refused("{\"type\":\"number\",\"multipleOf\":2}", "`multipleOf`");
    schema_refused("{\"not\":{}}", "`not`");
    schema_refused("{\"type\":\"string\",\"format\":\"email\"}", "\"email\"");
    schema_refused("{\"type\":\"strin\"}", "\"strin\"");
    schema_refused("{\"$ref\":\"#/$defs/missing\"}", "missing");
    schema_refused("{\"type\":\"object\",\"properties\":{},\"required\":[\"a\"]}", "`a`");
    schema_refused("{\"type\":\"number\",\"minimum\":-1.5}", "minimum");
    schema_refused("{\"type\":\"object\",\"properties\":{\"s\":{\"$ref\":\"#\"}},"
                   "\"required\":[\"s\"]}",
                   "no value can satisfy");
    schema_refused("{\"type\":\"string\",\"pattern\":\"(?=a)\"}", "lookaround");
    schema_refused("{\"type\":\"array\",\"items\":[{\"type\":\"string\"}]}", "tuples");
    /* what a request could use to make the compiler run long or grow large: objects of 12
     * optional properties nested 3 deep (their regex would be gigabytes); 2^20 DFA states */
    static char big[65536], next[65536];
    strcpy(big, "{\"type\":\"string\"}");
    for (int depth = 0; depth < 3; depth++) {
        strcpy(next, "{\"type\":\"object\",\"properties\":{");
        for (int k = 0; k < 12; k++) {
            size_t l = strlen(next);
            snprintf(next + l, sizeof next - l, "%s\"p%d\":%s", k ? "," : "", k, big);
            ck_assert(strlen(next) < sizeof next - 64);
        }
        strcat(next, "}}");
        if (strlen(next) >= sizeof big)
            break;
        strcpy(big, next);
    }
    schema_refused(big, "too complex");
    refuses("(?:[ab]*a[ab]{19})|x", "too complex");
}
END_TEST

/* The constraint cache: one grammar per schema text; errors are ERR_GEN_SCHEMA. */
START_TEST(constraint_cache)
{
    json_t *s = json_loads("{\"type\":\"boolean\"}", 0, NULL);
    struct grammar *a = NULL, *b = NULL;
    struct err e = {0};
    ck_assert_int_eq(constraint_schema(s, &a, &e), 0);
    ck_assert_int_eq(constraint_schema(s, &b, &e), 0);
    ck_assert_ptr_eq(a, b);
    grammar_unref(b);
    ck_assert_int_eq(constraint_regex("tru", 3, &b, &e), 0);
    ck_assert_ptr_ne(a, b);
    grammar_unref(a);
    grammar_unref(b);
    json_decref(s);
    s = json_loads("{\"type\":\"object\",\"minProperties\":1}", 0, NULL);
    ck_assert_int_ne(constraint_schema(s, &a, &e), 0);
    ck_assert_int_eq(e.kind, -106); /* ERR_GEN_SCHEMA (server/handler.h) */
    ck_assert_msg(strstr(e.msg, "`minProperties`"), "%s", e.msg);
    json_decref(s);
    constraint_cache_clear();
}
END_TEST

/* ---- generation under a constraint ---- */

struct run {
    bool done;
    char error[256];
    enum gen_finish finish;
};

static void on_event(void *arg, const struct gen_step_event *ev)
{
    struct run *r = arg;
    if (ev->error) {
        snprintf(r->error, sizeof r->error, "%s", ev->error);
        r->done = true;
    }
    if (ev->token && ev->token->finish != GEN_FINISH_NONE) {
        r->finish = ev->token->finish;
        r->done = true;
    }
}

/* Generates under g with seed (sampling; greedy when seed is 0): the text (malloc'ed). */
static char *generate(struct generator *gen, const struct gen_model *m, struct grammar *g,
                      uint64_t seed, uint32_t max_new, enum gen_finish *finish)
{
    struct gen_params p;
    gen_params_init(&p, gen_model_config(m));
    p.grammar = grammar_ref(g);
    p.max_new_tokens = max_new;
    p.do_sample = seed != 0;
    p.seed = seed;
    p.temperature = 1.0;
    int32_t prompt[3] = {5, 6, 7};
    struct gen_seq *s = NULL;
    struct err e = {0};
    ck_assert_msg(gen_seq_start(gen, prompt, 3, &p, NULL, &s, &e) == 0, "%s", e.msg);
    struct run r = {0};
    struct gen_step_stats st;
    for (int guard = 0; !r.done && guard < (int)max_new + 8; guard++)
        generator_step(gen, &s, 1, 64, on_event, &r, &st);
    ck_assert_msg(r.error[0] == '\0', "generation failed: %s", r.error);
    ck_assert(r.done);
    gen_seq_retire(gen, s);
    struct gen_seq_result res;
    ck_assert_int_eq(gen_seq_result(s, &res, &e), 0);
    char *text = strndup(res.text, res.text_len);
    *finish = r.finish;
    gen_seq_free(s);
    gen_params_fini(&p);
    return text;
}

/* schemas whose every output the random decoders can finish within max_new tokens (strings
 * bounded: random weights seldom pick a closing quote) */
static const char *const schemas[] = {
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":8},"
    "\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":150},\"ok\":{\"type\":\"boolean\"}},"
    "\"required\":[\"name\",\"age\"],\"additionalProperties\":false}",
    "{\"type\":\"array\",\"items\":{\"type\":\"integer\",\"minimum\":-50,\"maximum\":50},"
    "\"minItems\":2,\"maxItems\":4}",
    "{\"type\":\"object\",\"properties\":{\"color\":{\"enum\":[\"red\",\"green\",\"blue\"]},"
    "\"score\":{\"type\":\"number\",\"minimum\":0,\"maximum\":10},\"note\":{\"type\":[\"string\","
    "\"null\"],\"maxLength\":4}},\"required\":[\"color\",\"score\",\"note\"]}",
    "{\"$defs\":{\"pt\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"integer\","
    "\"minimum\":0,\"maximum\":9},\"y\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":9}},"
    "\"required\":[\"x\",\"y\"]}},\"type\":\"object\",\"properties\":{\"pts\":{\"type\":\"array\","
    "\"items\":{\"$ref\":\"#/$defs/pt\"},\"maxItems\":3}},\"required\":[\"pts\"]}",
    "{\"anyOf\":[{\"type\":\"string\",\"format\":\"date\"},{\"type\":\"string\",\"format\":"
    "\"uuid\"},{\"type\":\"null\"}]}",
    "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\",\"pattern\":\"^[a-f]{3}-"
    "\\\\d{2}$\"},\"when\":{\"type\":\"string\",\"format\":\"time\"},\"tags\":{\"type\":\"array\","
    "\"items\":{\"const\":\"t\"},\"maxItems\":2}},\"required\":[\"id\",\"when\",\"tags\"]}",
    "{\"type\":\"object\",\"properties\":{\"kid\":{\"type\":\"object\",\"properties\":{\"deep\":"
    "{\"type\":\"object\",\"properties\":{\"v\":{\"oneOf\":[{\"type\":\"boolean\"},{\"type\":"
    "\"null\"}]}},\"required\":[\"v\"]}},\"required\":[\"deep\"]}},\"required\":[\"kid\"]}",
    "{\"type\":\"string\",\"minLength\":3,\"maxLength\":6}",
    "{\"type\":\"integer\",\"exclusiveMaximum\":0,\"minimum\":-9999}",
};

#define SEEDS 6

static void generate_schemas(const char *model)
{
    struct gen_model *m = NULL;
    struct err e = {0};
    ck_assert_msg(gen_model_load(fixture_model(model), NULL, &m, &e) == 0, "%s", e.msg);
    struct generator *gen = generator_new(
        m, &(struct generator_limits){.max_seqs = 1, .max_total = 200, .max_prefill = 64,
                                      .threads = 1},
        &e);
    ck_assert_msg(gen && generator_prepare(gen, &e) == 0 && generator_open(gen, &e) == 0, "%s",
                  e.msg);
    for (size_t i = 0; i < sizeof schemas / sizeof schemas[0]; i++) {
        json_t *schema = json_loads(schemas[i], 0, NULL);
        ck_assert_ptr_nonnull(schema);
        struct grammar *g = NULL;
        ck_assert_msg(constraint_schema(schema, &g, &e) == 0, "%s: %s", schemas[i], e.msg);
        for (uint64_t seed = 0; seed < SEEDS; seed++) {
            enum gen_finish fin;
            char *text = generate(gen, m, g, seed, 180, &fin);
            json_error_t je;
            json_t *doc = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
            char why[256] = "";
            ck_assert_msg(fin == GEN_FINISH_EOS, "%s seed %d: not finished (%d): %s", model,
                          (int)seed, (int)fin, text);
            ck_assert_msg(doc, "%s schema %zu seed %d: not JSON (%s): %s", model, i, (int)seed,
                          je.text, text);
            ck_assert_msg(json_check(schema, schema, doc, why, sizeof why),
                          "%s schema %zu seed %d: invalid (%s): %s", model, i, (int)seed, why,
                          text);
            json_decref(doc);
            free(text);
        }
        grammar_unref(g);
        json_decref(schema);
    }
    generator_free(gen);
    gen_model_free(m);
    constraint_cache_clear();
}

START_TEST(generate_gpt2)
{
    generate_schemas("gpt2-lm");
}
END_TEST

START_TEST(generate_llama)
{
    generate_schemas("llama-lm");
}
END_TEST

/* A regex (TGI's grammar type regex) checked with PCRE2; json_object: any object (an output
 * cut at the length limit, as random weights inside a free string mostly are, starts one). */
START_TEST(generate_regex_and_object)
{
    struct gen_model *m = NULL;
    struct err e = {0};
    ck_assert_msg(gen_model_load(fixture_model("gpt2-lm"), NULL, &m, &e) == 0, "%s", e.msg);
    struct generator *gen = generator_new(
        m, &(struct generator_limits){.max_seqs = 1, .max_total = 250, .max_prefill = 64,
                                      .threads = 1},
        &e);
    ck_assert_msg(gen && generator_prepare(gen, &e) == 0 && generator_open(gen, &e) == 0, "%s",
                  e.msg);
    const char *re = "(yes|no|maybe), [0-9]{3}-[A-Z][a-z]{1,4}!";
    struct grammar *g = NULL;
    ck_assert_int_eq(constraint_regex(re, strlen(re), &g, &e), 0);
    int err;
    PCRE2_SIZE off;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR) "^(yes|no|maybe), [0-9]{3}-[A-Z][a-z]{1,4}!$",
                                     PCRE2_ZERO_TERMINATED, 0, &err, &off, NULL);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    for (uint64_t seed = 0; seed < 8; seed++) {
        enum gen_finish fin;
        char *text = generate(gen, m, g, seed, 60, &fin);
        ck_assert_msg(pcre2_match(code, (PCRE2_SPTR)text, strlen(text), 0, 0, md, NULL) >= 0,
                      "seed %d: '%s' does not match", (int)seed, text);
        free(text);
    }
    pcre2_match_data_free(md);
    pcre2_code_free(code);
    grammar_unref(g);
    /* any object: parses, is an object (or was cut at the length limit) */
    ck_assert_int_eq(constraint_schema(NULL, &g, &e), 0);
    int finished = 0;
    for (uint64_t seed = 1; seed < 9; seed++) {
        enum gen_finish fin;
        char *text = generate(gen, m, g, seed, 240, &fin);
        if (fin == GEN_FINISH_EOS) {
            json_t *doc = json_loads(text, JSON_ALLOW_NUL, NULL);
            ck_assert_msg(json_is_object(doc), "seed %d: not an object: %s", (int)seed, text);
            json_decref(doc);
            finished++;
        } else {
            ck_assert_msg(fin == GEN_FINISH_LENGTH && text[0] == '{', "%s", text);
        }
        free(text);
    }
    (void)finished; /* random weights seldom close a free string: most are cut at the limit */
    grammar_unref(g);
    constraint_cache_clear();
    generator_free(gen);
    gen_model_free(m);
}
END_TEST

Suite *suite_grammar(void)
{
    Suite *s = suite_create("grammar");
    TCase *tc = tcase_create("compile");
    tcase_add_test(tc, regex_accepts);
    tcase_add_test(tc, regex_refuses);
    tcase_add_test(tc, regex_too_complex);
    tcase_add_test(tc, schema_accepts);
    tcase_add_test(tc, schema_refuses);
    tcase_add_test(tc, constraint_cache);
    suite_add_tcase(s, tc);
    tc = tcase_create("generate");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, generate_gpt2);
    tcase_add_test(tc, generate_llama);
    tcase_add_test(tc, generate_regex_and_object);
    suite_add_tcase(s, tc);
    return s;
}
