/* test_generate_text: the text side of generation (suite `generate`, cases "text").
 * - stop strings spanning tokens (also inside byte-fallback characters), the holdback of a
 *   possible stop-string start, eos and max_new_tokens in each dialect's order;
 * - streaming detokenization with the llama2 (byte fallback), gpt2 and llama3 tokenizers on
 *   their refs-dev.json texts, alone and after a prompt context, and on the greedy generations
 *   of gpt2-lm and llama-lm: the deltas concatenate to the Hugging Face decoded text (and to
 *   what the text-generation pipeline appended) and never carry a split character. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "generate/params.h"
#include "generate/stop.h"
#include "generate/stream_detok.h"
#include "gen_api.h"
#include "suites.h"
#include "support/support.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

static const char fffd[] = "\xEF\xBF\xBD"; /* U+FFFD in UTF-8 */

/* ---- stop conditions ---- */

struct run {
    char text[512];   /* the released pieces, concatenated */
    size_t after[64]; /* released length after each push */
    size_t n_pushed;
    enum gen_finish finish;
    int stop_index;
};

/* Pushes ids until a finish (or the end: then stopper_finish LENGTH). */
static void run_ids(const struct gen_params *p, const struct tokenizer *tk, const int32_t *ids,
                    size_t n, struct run *r)
{
    memset(r, 0, sizeof *r);
    struct stopper *st = NULL;
    struct err e = {0};
    ck_assert_msg(stopper_new(p, tk, NULL, 0, &st, &e) == 0, "%s", e.msg);
    size_t len = 0;
    struct gen_step step;
    for (size_t i = 0; i < n && r->finish == GEN_FINISH_NONE; i++) {
        ck_assert_msg(stopper_push(st, ids[i], &step, &e) == 0, "%s", e.msg);
        ck_assert(len + step.text_len < sizeof r->text);
        memcpy(r->text + len, step.text, step.text_len);
        len += step.text_len;
        r->after[r->n_pushed++] = len;
        r->finish = step.finish;
        r->stop_index = step.stop_index;
    }
    if (r->finish == GEN_FINISH_NONE) {
        ck_assert_int_eq(stopper_finish(st, GEN_FINISH_LENGTH, &step, &e), 0);
        memcpy(r->text + len, step.text, step.text_len);
        len += step.text_len;
        r->finish = step.finish;
    }
    size_t total;
    const char *all = stopper_text(st, &total);
    ck_assert_msg(total == len && memcmp(all, r->text, len) == 0, "stopper_text differs");
    stopper_free(st);
}

static size_t encode(const struct tokenizer *tk, const char *text, int32_t *ids, size_t cap)
{
    struct encodings out = {0};
    struct tokenizer_params tp = tokenizer_params_default(tk);
    struct err e = {0};
    ck_assert_msg(tokenizer_encode(tk, text, strlen(text), NULL, 0, &tp, &out, &e) == 0, "%s",
                  e.msg);
    size_t n = out.v[0].n;
    ck_assert(n <= cap);
    memcpy(ids, out.v[0].ids, n * sizeof *ids);
    encodings_fini(&out);
    return n;
}

static struct tokenizer *load_tk(const char *name)
{
    struct tokenizer *tk = NULL;
    struct err e = {0};
    ck_assert_msg(tokenizer_load(fixture_tokenizer(name), &tk, &e) == 0, "%s", e.msg);
    return tk;
}

/* Stop strings as OpenAI's requests end the text (cut before the first match). */
static void stop_like_openai(struct gen_params *p)
{
    gen_params_init(p, NULL);
    p->stop_mode = GEN_STOP_CUT;
}

static void with_stop(struct gen_params *p, enum gen_stop_mode mode, const char *a, const char *b)
{
    gen_params_fini(p);
    p->stop_mode = mode;
    if (a)
        ck_assert_int_eq(gen_params_add_stop(p, a, strlen(a), NULL), 0);
    if (b)
        ck_assert_int_eq(gen_params_add_stop(p, b, strlen(b), NULL), 0);
}

START_TEST(stop_strings)
{
    struct tokenizer *tk = load_tk("gpt2");
    int32_t ids[64];
    /* Hello | Ġworld | ! | ĠHow | Ġare | Ġyou | ? | ĠI | Ġam | Ġfine | . */
    size_t n = encode(tk, "Hello world! How are you? I am fine.", ids, 64);
    ck_assert_uint_eq(n, 11);
    struct gen_params p;
    stop_like_openai(&p);
    struct run r;
    with_stop(&p, GEN_STOP_CUT, "you?", NULL); /* spans "Ġyou" and "?" */
    run_ids(&p, tk, ids, n, &r);
    ck_assert_str_eq(r.text, "Hello world! How are ");
    ck_assert(r.finish == GEN_FINISH_STOP && r.n_pushed == 7 && r.stop_index == 0);
    /* holdback: "are" might begin "are you sure", so it waits until "?" rules that out */
    with_stop(&p, GEN_STOP_CUT, "are you sure", NULL);
    run_ids(&p, tk, ids, n, &r);
    ck_assert_uint_eq(r.after[3], strlen("Hello world! How"));
    ck_assert_uint_eq(r.after[4], strlen("Hello world! How "));
    ck_assert_uint_eq(r.after[5], strlen("Hello world! How "));
    ck_assert_uint_eq(r.after[6], strlen("Hello world! How are you?"));
    ck_assert_str_eq(r.text, "Hello world! How are you? I am fine.");
    ck_assert_int_eq(r.finish, GEN_FINISH_LENGTH);
    /* a stop string inside tokens: the text is cut inside "Ġare" */
    with_stop(&p, GEN_STOP_CUT, "e y", NULL);
    run_ids(&p, tk, ids, n, &r);
    ck_assert_str_eq(r.text, "Hello world! How ar");
    ck_assert_uint_eq(r.n_pushed, 6);
    with_stop(&p, GEN_STOP_CUT_AFTER, "e y", NULL);
    run_ids(&p, tk, ids, n, &r);
    ck_assert_str_eq(r.text, "Hello world! How are y");
    /* the earliest match wins whatever the list order */
    with_stop(&p, GEN_STOP_CUT, "fine", "How");
    run_ids(&p, tk, ids, n, &r);
    ck_assert_str_eq(r.text, "Hello world! ");
    ck_assert(r.stop_index == 1 && r.n_pushed == 4);
    /* TGI: only when the text ends with it, and it stays */
    with_stop(&p, GEN_STOP_SUFFIX_KEEP, "you?", NULL);
    run_ids(&p, tk, ids, n, &r);
    ck_assert_str_eq(r.text, "Hello world! How are you?");
    ck_assert_int_eq(r.finish, GEN_FINISH_STOP);
    with_stop(&p, GEN_STOP_SUFFIX_KEEP, "e y", NULL);
    run_ids(&p, tk, ids, n, &r);
    ck_assert_str_eq(r.text, "Hello world! How are you? I am fine.");
    ck_assert_int_eq(r.finish, GEN_FINISH_LENGTH);
    gen_params_fini(&p);
    tokenizer_free(tk);
}
END_TEST

START_TEST(stop_eos_length)
{
    struct tokenizer *tk = load_tk("gpt2");
    int32_t ids[64];
    size_t n = encode(tk, "Hello world! How are you?", ids, 63);
    ids[n++] = 50256; /* <|endoftext|> */
    ids[n++] = 40;    /* "I": after the end */
    struct gen_params p;
    stop_like_openai(&p);
    p.eos_token_ids[0] = 50256;
    p.n_eos_token_ids = 1;
    struct run r;
    run_ids(&p, tk, ids, n, &r);
    ck_assert_str_eq(r.text, "Hello world! How are you?"); /* the eos text is not output */
    ck_assert(r.finish == GEN_FINISH_EOS && r.n_pushed == n - 1);
    /* how each dialect names it: test_gen_params.c (finish_names) */
    p.ignore_eos = true;
    run_ids(&p, tk, ids, n, &r);
    ck_assert_str_eq(r.text, "Hello world! How are you?I");
    p.ignore_eos = false;
    p.max_new_tokens = 3;
    run_ids(&p, tk, ids, n, &r);
    ck_assert_str_eq(r.text, "Hello world!");
    ck_assert(r.finish == GEN_FINISH_LENGTH && r.n_pushed == 3);
    /* the eos token is also the last allowed one: OpenAI says stop, TGI length */
    p.max_new_tokens = (uint32_t)(n - 1);
    run_ids(&p, tk, ids, n, &r);
    ck_assert_int_eq(r.finish, GEN_FINISH_EOS);
    p.stop_mode = GEN_STOP_SUFFIX_KEEP;
    run_ids(&p, tk, ids, n, &r);
    ck_assert_int_eq(r.finish, GEN_FINISH_LENGTH);
    /* a push after the finish is a programming error */
    struct stopper *st = NULL;
    struct gen_step step;
    ck_assert_int_eq(stopper_new(&p, tk, NULL, 0, &st, NULL), 0);
    ck_assert_int_eq(stopper_finish(st, GEN_FINISH_LENGTH, &step, NULL), 0);
    ck_assert_int_eq(stopper_push(st, 40, &step, NULL), ERR_INTERNAL);
    stopper_free(st);
    gen_params_fini(&p);
    tokenizer_free(tk);
}
END_TEST

START_TEST(stop_across_byte_fallback)
{
    /* llama2 spells 词 as <0xE8><0xAF><0x8D>: the stop string "词测" starts inside bytes */
    struct tokenizer *tk = load_tk("llama2");
    int32_t ids[64];
    size_t n = encode(tk, "中文分词测试：我爱自然语言处理。", ids, 64);
    struct gen_params p;
    stop_like_openai(&p);
    with_stop(&p, GEN_STOP_CUT, "词测", NULL);
    struct run r;
    run_ids(&p, tk, ids, n, &r);
    ck_assert_str_eq(r.text, "中文分");
    ck_assert_int_eq(r.finish, GEN_FINISH_STOP);
    ck_assert(strstr(r.text, fffd) == NULL);
    gen_params_fini(&p);
    tokenizer_free(tk);
}
END_TEST

/* ---- streaming detokenization ---- */

struct stream_stats {
    size_t checked, held, with_context;
};

/* Streams ids[from..n) after context ids[ctx..from); the deltas must concatenate to want and
 * never carry a split character (a U+FFFD that want does not have) or invalid UTF-8. */
static void stream_check(const struct tokenizer *tk, const int32_t *ids, size_t ctx, size_t from,
                         size_t n, const char *want, size_t want_len, const char *what,
                         struct stream_stats *stats)
{
    struct detok *d = NULL;
    struct err e = {0};
    ck_assert_msg(detok_new(tk, true, ids + ctx, from - ctx, &d, &e) == 0, "%s", e.msg);
    bool want_fffd = memmem(want, want_len, fffd, 3) != NULL;
    char *got = malloc(want_len * 2 + 64);
    size_t len = 0;
    for (size_t i = from; i <= n; i++) {
        const char *t;
        size_t l;
        int rc = i < n ? detok_push(d, ids[i], &t, &l, &e) : detok_flush(d, &t, &l, &e);
        ck_assert_msg(rc == 0, "%s: %s", what, e.msg);
        ck_assert_msg(utf8_validate(t, l) == l, "%s: delta %zu is not UTF-8", what, i);
        ck_assert_msg(want_fffd || !memmem(t, l, fffd, 3), "%s: delta %zu '%.*s' splits a char",
                      what, i, (int)l, t);
        if (i < n && l == 0)
            stats->held++;
        ck_assert_msg(len + l <= want_len * 2 + 32, "%s: too much text", what);
        memcpy(got + len, t, l);
        len += l;
    }
    ck_assert_msg(len == want_len && memcmp(got, want, len) == 0, "%s: streamed '%.*s', want '%s'",
                  what, (int)len, got, want);
    free(got);
    detok_free(d);
}

static int32_t *ids_of(const json_t *arr, size_t *n)
{
    *n = json_array_size(arr);
    int32_t *v = malloc((*n + 1) * sizeof *v);
    for (size_t k = 0; k < *n; k++)
        v[k] = (int32_t)json_integer_value(json_array_get(arr, k));
    return v;
}

static void stream_fixture(const char *name)
{
    struct tokenizer *tk = load_tk(name);
    json_t *refs = fixture_json(fixture_tokenizer(name), "refs-dev.json");
    struct stream_stats st = {0};
    size_t i;
    json_t *ref;
    json_array_foreach(refs, i, ref)
    {
        size_t n;
        int32_t *ids = ids_of(json_object_get(ref, "ids"), &n);
        const json_t *dj = json_object_get(ref, "decoded");
        char what[64];
        snprintf(what, sizeof what, "%s ref %zu", name, i);
        stream_check(tk, ids, 0, 0, n, json_string_value(dj), json_string_length(dj), what, &st);
        st.checked++;
        /* from the middle, with up to 5 prompt ids of context (TGI's choice): the text a full
         * decode adds after the prefix, when the prefix decodes to a prefix of it */
        size_t k = n / 2, ctx = k > 5 ? k - 5 : 0;
        char *pre = NULL;
        size_t pre_len = 0;
        ck_assert_int_eq(tokenizer_decode(tk, ids, k, true, &pre, &pre_len, NULL), 0);
        if (k > 0 && pre_len <= json_string_length(dj) &&
            memcmp(pre, json_string_value(dj), pre_len) == 0 && !memmem(pre, pre_len, fffd, 3)) {
            stream_check(tk, ids, ctx, k, n, json_string_value(dj) + pre_len,
                         json_string_length(dj) - pre_len, what, &st);
            st.with_context++;
        }
        free(pre);
        free(ids);
    }
    ck_assert_uint_gt(st.checked, 90);
    ck_assert_uint_gt(st.with_context, 60);
    ck_assert_msg(st.held > 0, "%s: no token was ever held back", name); /* split chars exist */
    json_decref(refs);
    tokenizer_free(tk);
}

START_TEST(stream_llama2)
{
    stream_fixture("llama2");
}
END_TEST

START_TEST(stream_gpt2)
{
    stream_fixture("gpt2");
}
END_TEST

START_TEST(stream_llama3)
{
    stream_fixture("llama3");
}
END_TEST

/* The greedy generations of gpt2-lm and llama-lm: streamed alone they give greedy_text; after
 * the prompt (context) the first 16 give what the text-generation pipeline appended. And the
 * stopper with the pipeline's max_new_tokens 16 ends there with "length". */
static void stream_generations(const char *model)
{
    const char *dir = fixture_model(model);
    struct tokenizer *tk = NULL;
    ck_assert_int_eq(tokenizer_load(dir, &tk, NULL), 0);
    json_t *refs = fixture_json(dir, "refs-dev.json");
    json_t *gens = json_object_get(refs, "generations"), *pipe = json_object_get(refs, "pipeline");
    struct stream_stats st = {0};
    size_t i, checked = 0;
    json_t *g;
    json_array_foreach(gens, i, g)
    {
        size_t n_in, n_out;
        int32_t *in = ids_of(json_object_get(g, "input_ids"), &n_in);
        int32_t *out = ids_of(json_object_get(g, "greedy_ids"), &n_out);
        const json_t *text = json_object_get(g, "greedy_text");
        stream_check(tk, out, 0, 0, n_out, json_string_value(text), json_string_length(text), model,
                     &st);
        size_t j;
        json_t *pr;
        json_array_foreach(pipe, j, pr)
        {
            const char *prompt = json_string_value(json_object_get(pr, "input"));
            if (strcmp(prompt, json_string_value(json_object_get(g, "prompt"))) != 0)
                continue;
            const json_t *gt =
                json_object_get(json_array_get(json_object_get(pr, "output"), 0), "generated_text");
            const char *want = json_string_value(gt) + strlen(prompt); /* return_full_text */
            int32_t *all = malloc((n_in + n_out) * sizeof *all);
            memcpy(all, in, n_in * sizeof *all);
            memcpy(all + n_in, out, n_out * sizeof *all);
            stream_check(tk, all, 0, n_in, n_in + 16, want, strlen(want), model, &st);
            struct gen_params p;
            json_t *pj = json_loads("{\"max_new_tokens\": 16, \"do_sample\": false}", 0, NULL);
            ck_assert_int_eq(gen_api_parse(&gen_api_pipeline, pj, NULL, NULL, &p, NULL), 0);
            json_decref(pj);
            struct stopper *sp = NULL;
            ck_assert_int_eq(stopper_new(&p, tk, in, n_in, &sp, NULL), 0);
            struct gen_step step = {0};
            for (size_t k = 0; k < n_out && step.finish == GEN_FINISH_NONE; k++)
                ck_assert_int_eq(stopper_push(sp, out[k], &step, NULL), 0);
            size_t len;
            const char *res = stopper_text(sp, &len);
            ck_assert(step.finish == GEN_FINISH_LENGTH && stopper_n_tokens(sp) == 16);
            ck_assert_msg(len == strlen(want) && memcmp(res, want, len) == 0, "%s: '%.*s'", model,
                          (int)len, res);
            stopper_free(sp);
            gen_params_fini(&p);
            free(all);
            checked++;
        }
        free(in);
        free(out);
    }
    ck_assert_uint_eq(checked, 3);
    json_decref(refs);
    tokenizer_free(tk);
}

START_TEST(stream_model_generations)
{
    stream_generations("gpt2-lm");
    stream_generations("llama-lm");
}
END_TEST

TCase *tcase_generate_text(void)
{
    TCase *tc = tcase_create("text");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, stop_strings);
    tcase_add_test(tc, stop_eos_length);
    tcase_add_test(tc, stop_across_byte_fallback);
    tcase_add_test(tc, stream_llama2);
    tcase_add_test(tc, stream_gpt2);
    tcase_add_test(tc, stream_llama3);
    tcase_add_test(tc, stream_model_generations);
    return tc;
}
