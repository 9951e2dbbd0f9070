/* test_serve_generate: the generation routes of the real daemon on the gpt2-lm and llama-lm
 * fixtures against what transformers computed for them (refs-dev.json): TGI /generate greedy
 * (24 tokens: the refs' greedy_ids and greedy_text exactly, details), /generate_stream (the SSE
 * framing byte for byte: "data: {json}\n\n" events with TGI's keys in order, index from 1, the
 * tokens in order, the last event's generated_text the concatenation and the refs' text),
 * OpenAI /v1/completions and /v1/chat/completions, plain and streamed (chunks, finish_reason,
 * usage = the refs' prompt length and the tokens generated, [DONE], stop cutting the text), the
 * Hugging Face pipeline route (the refs' "pipeline" outputs), 16 concurrent streams, a client
 * that hangs up mid-stream freeing its slot (one slot: the next request runs at once), seeded
 * sampling reproducible over HTTP, a client that half-closes after its /generate request
 * (still answered), and the validation errors of each dialect. The chat tests
 * use llama-lm with the Llama 3 fixture tokenizer's chat template (a model dir built at test
 * time): the chat prompt must be the tokens of chat-template-dev.json's reference render. The
 * `openai` npm client streams a chat completion from the daemon (openai_client.mjs). */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "integration/serve_expect.h"
#include "integration/serve_support.h"
#include "suites.h"
#include "support/support.h"
#include "tokenizer/tokenizer.h"

#define MAX_NEW 24 /* the refs' greedy length */

static struct daemon *srv;

static void srv_start(void)
{
    char *yaml =
        yaml_config(NULL, yaml_model("gpt2", "gpt2-lm", "text-generation", NULL),
                    yaml_model("llama", "llama-lm", "text-generation", NULL),
                    yaml_model("chat", fixture_chat_model(), "text-generation", NULL),
                    yaml_model("seqcls", "bert-seqcls", "text-classification", NULL), NULL);
    srv = daemon_start_shared(yaml);
}

static void srv_stop(void)
{
    daemon_stop(srv);
    srv = NULL;
}

static const char *const lms[] = {"gpt2-lm", "llama-lm"};
static const char *const served[] = {"gpt2", "llama"};

/* refs "generations" of fixture model k (new reference). */
static json_t *generations(size_t k)
{
    json_t *refs = model_refs(lms[k]);
    json_t *g = json_incref(json_object_get(refs, "generations"));
    json_decref(refs);
    ck_assert_int_gt(json_array_size(g), 0);
    return g;
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    ck_assert_msg(s, "no string \"%s\"", key);
    return s;
}

/* The generated text the servers answer for refs entry g of model k. The refs' greedy_text is
 * tokenizer.decode(greedy_ids) alone, where a Metaspace decoder drops the first token's
 * leading space ("\u2581side" -> "side"); TGI and vLLM decode the new tokens after the prompt
 * (TGI's decode_token with prefix_offset, as the pipeline's full decode does), which keeps it.
 * So: greedy_text, with that space back when the first greedy token starts with U+2581 (from
 * the model's own vocabulary). */
static char *expected_text(size_t k, const json_t *g)
{
    const char *text = json_string_value(json_object_get(g, "greedy_text"));
    struct tokenizer *tk;
    struct err e = {0};
    ck_assert_msg(tokenizer_load(fixture_model(lms[k]), &tk, &e) == 0, "%s", e.msg);
    int32_t first =
        (int32_t)json_integer_value(json_array_get(json_object_get(g, "greedy_ids"), 0));
    const char *tok = tokenizer_id_to_token(tk, first);
    bool space = tok && strncmp(tok, "\xe2\x96\x81", 3) == 0;
    tokenizer_free(tk);
    char *out = malloc(strlen(text) + 2);
    snprintf(out, strlen(text) + 2, "%s%s", space ? " " : "", text);
    return out;
}

/* ---- SSE ---- */

/* The events of an SSE body, checked byte for byte: only "data: <one-line JSON>\n\n"
 * records, nothing else (no comments, no "event:" lines, no \r). done: the body must end
 * with "data: [DONE]\n\n" (OpenAI), which is not returned. */
static json_t *sse_events(const char *body, bool done, const char *what)
{
    json_t *events = json_array();
    const char *p = body;
    bool saw_done = false;
    while (*p) {
        ck_assert_msg(!saw_done, "%s: bytes after data: [DONE]", what);
        ck_assert_msg(strncmp(p, "data: ", 6) == 0, "%s: an event not starting 'data: ': %.60s",
                      what, p);
        const char *end = strstr(p, "\n\n");
        ck_assert_msg(end, "%s: an event not ended by a blank line", what);
        const char *nl = strchr(p, '\n');
        ck_assert_msg(nl == end, "%s: a multi-line event", what);
        size_t n = (size_t)(end - p - 6);
        ck_assert_msg(!memchr(p, '\r', (size_t)(end - p)), "%s: \\r in an event", what);
        if (n == 6 && strncmp(p + 6, "[DONE]", 6) == 0) {
            saw_done = true;
        } else {
            json_error_t je;
            json_t *v = json_loadb(p + 6, n, 0, &je);
            ck_assert_msg(json_is_object(v), "%s: event is not a JSON object: %.80s", what, p);
            /* compact JSON as the references send it: no space after ':' or ',' */
            char *again = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(9));
            ck_assert_msg(strlen(again) == n, "%s: event JSON not compact: %.*s", what, (int)n,
                          p + 6);
            free(again);
            json_array_append_new(events, v);
        }
        p = end + 2;
    }
    ck_assert_msg(saw_done == done, "%s: %s", what,
                  done ? "no final data: [DONE]" : "unexpected data: [DONE]");
    return events;
}

/* Keys of o in order, comma-joined, into buf. */
static const char *keys_of(const json_t *o, char *buf, size_t size)
{
    buf[0] = '\0';
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        (void)v;
        snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", buf[0] ? "," : "", k);
    }
    return buf;
}

static void expect_sse_headers(const struct http_reply *r, const char *what)
{
    char v[128];
    ck_assert_msg(http_header(r, "Content-Type", v, sizeof v) &&
                      strcmp(v, "text/event-stream") == 0,
                  "%s: Content-Type", what);
    ck_assert_msg(http_header(r, "Cache-Control", v, sizeof v) && strcmp(v, "no-cache") == 0,
                  "%s: Cache-Control", what);
    ck_assert_msg(http_header(r, "X-Accel-Buffering", v, sizeof v) && strcmp(v, "no") == 0,
                  "%s: X-Accel-Buffering", what);
    ck_assert_msg(http_header(r, "Transfer-Encoding", v, sizeof v) && strcmp(v, "chunked") == 0,
                  "%s: not chunked", what);
    ck_assert_msg(!http_header(r, "Content-Length", v, sizeof v), "%s: Content-Length", what);
}

/* ---- TGI ---- */

static json_t *greedy_params(int max_new)
{
    return json_pack("{s:b, s:i, s:b}", "do_sample", 0, "max_new_tokens", max_new, "details", 1);
}

START_TEST(tgi_generate_greedy)
{
    for (size_t k = 0; k < 2; k++) {
        json_t *gens = generations(k);
        for (size_t i = 0; i < json_array_size(gens); i++) {
            const json_t *g = json_array_get(gens, i);
            char what[160];
            snprintf(what, sizeof what, "%s /generate prompt %zu", lms[k], i);
            struct http_reply *r =
                daemon_post(srv, "/generate",
                            json_pack("{s:s, s:o, s:s}", "inputs", str(g, "prompt"), "parameters",
                                      greedy_params(MAX_NEW), "model", served[k]));
            expect_status(r, 200, what);
            char keys[200];
            ck_assert_str_eq(keys_of(r->json, keys, sizeof keys), "generated_text,details");
            char *want = expected_text(k, g);
            ck_assert_str_eq(str(r->json, "generated_text"), want);
            free(want);
            const json_t *d = json_object_get(r->json, "details");
            ck_assert_str_eq(keys_of(d, keys, sizeof keys),
                             "finish_reason,generated_tokens,seed,prefill,tokens");
            ck_assert_str_eq(str(d, "finish_reason"), "length");
            ck_assert_int_eq(json_integer_value(json_object_get(d, "generated_tokens")), MAX_NEW);
            ck_assert(json_is_null(json_object_get(d, "seed"))); /* greedy: no seed */
            ck_assert_int_eq(json_array_size(json_object_get(d, "prefill")), 0);
            const json_t *ids = json_object_get(g, "greedy_ids"),
                         *toks = json_object_get(d, "tokens");
            ck_assert_int_eq(json_array_size(toks), json_array_size(ids));
            for (size_t t = 0; t < json_array_size(ids); t++) {
                const json_t *tok = json_array_get(toks, t);
                ck_assert_str_eq(keys_of(tok, keys, sizeof keys), "id,text,logprob,special");
                ck_assert_msg(json_integer_value(json_object_get(tok, "id")) ==
                                  json_integer_value(json_array_get(ids, t)),
                              "%s: token %zu", what, t);
                ck_assert(json_is_real(json_object_get(tok, "logprob")));
                ck_assert(json_real_value(json_object_get(tok, "logprob")) <= 0);
                ck_assert(json_is_false(json_object_get(tok, "special")));
            }
            char v[32];
            ck_assert(http_header(r, "x-generated-tokens", v, sizeof v) && atoi(v) == MAX_NEW);
            ck_assert(http_header(r, "x-prompt-tokens", v, sizeof v) &&
                      atoi(v) == (int)json_array_size(json_object_get(g, "input_ids")));
            http_reply_free(r);
        }
        json_decref(gens);
    }
}
END_TEST

/* decoder_input_details: one prefill entry per prompt token (the refs' input_ids), the first
 * logprob null; top_n_tokens: alternatives led by the greedy token itself. */
START_TEST(tgi_generate_prefill_top_tokens)
{
    json_t *gens = generations(1);
    const json_t *g = json_array_get(gens, 0);
    json_t *params = greedy_params(4);
    json_object_set_new(params, "decoder_input_details", json_true());
    json_object_set_new(params, "top_n_tokens", json_integer(3));
    struct http_reply *r = daemon_post(srv, "/generate",
                                       json_pack("{s:s, s:o, s:s}", "inputs", str(g, "prompt"),
                                                 "parameters", params, "model", "llama"));
    expect_status(r, 200, "prefill");
    const json_t *d = json_object_get(r->json, "details");
    const json_t *pre = json_object_get(d, "prefill"), *in = json_object_get(g, "input_ids");
    ck_assert_int_eq(json_array_size(pre), json_array_size(in));
    for (size_t i = 0; i < json_array_size(in); i++) {
        const json_t *p = json_array_get(pre, i);
        ck_assert_int_eq(json_integer_value(json_object_get(p, "id")),
                         json_integer_value(json_array_get(in, i)));
        const json_t *lp = json_object_get(p, "logprob");
        ck_assert(i == 0 ? json_is_null(lp) : json_is_real(lp));
    }
    const json_t *top = json_object_get(d, "top_tokens");
    ck_assert_int_eq(json_array_size(top), 4);
    for (size_t t = 0; t < 4; t++) {
        const json_t *alts = json_array_get(top, t);
        ck_assert_int_eq(json_array_size(alts), 3);
        ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(alts, 0), "id")),
                         json_integer_value(json_array_get(json_object_get(g, "greedy_ids"), t)));
    }
    http_reply_free(r);
    json_decref(gens);
}
END_TEST

START_TEST(tgi_generate_stream_framing)
{
    for (size_t k = 0; k < 2; k++) {
        json_t *gens = generations(k);
        for (size_t i = 0; i < json_array_size(gens); i++) {
            const json_t *g = json_array_get(gens, i);
            char what[160];
            snprintf(what, sizeof what, "%s /generate_stream prompt %zu", lms[k], i);
            struct http_reply *r =
                daemon_post(srv, "/generate_stream",
                            json_pack("{s:s, s:o, s:s}", "inputs", str(g, "prompt"), "parameters",
                                      greedy_params(MAX_NEW), "model", served[k]));
            expect_status(r, 200, what);
            expect_sse_headers(r, what);
            json_t *ev = sse_events(r->body, false, what);
            const json_t *ids = json_object_get(g, "greedy_ids");
            ck_assert_int_eq(json_array_size(ev), json_array_size(ids));
            struct buf text = {0};
            buf_add(&text, "", 0);
            for (size_t t = 0; t < json_array_size(ev); t++) {
                const json_t *e = json_array_get(ev, t);
                bool last = t + 1 == json_array_size(ev);
                char keys[200];
                ck_assert_str_eq(keys_of(e, keys, sizeof keys),
                                 "index,token,generated_text,details");
                ck_assert_int_eq(json_integer_value(json_object_get(e, "index")), (int)t + 1);
                const json_t *tok = json_object_get(e, "token");
                ck_assert_int_eq(json_integer_value(json_object_get(tok, "id")),
                                 json_integer_value(json_array_get(ids, t)));
                buf_add(&text, str(tok, "text"), strlen(str(tok, "text")));
                ck_assert(last ? json_is_string(json_object_get(e, "generated_text"))
                               : json_is_null(json_object_get(e, "generated_text")));
                ck_assert(last ? json_is_object(json_object_get(e, "details"))
                               : json_is_null(json_object_get(e, "details")));
                if (last) {
                    ck_assert_str_eq(str(e, "generated_text"), text.p);
                    char *want = expected_text(k, g);
                    ck_assert_str_eq(str(e, "generated_text"), want);
                    free(want);
                    const json_t *d = json_object_get(e, "details");
                    ck_assert_str_eq(keys_of(d, keys, sizeof keys),
                                     "finish_reason,generated_tokens,seed,input_length");
                    ck_assert_str_eq(str(d, "finish_reason"), "length");
                    ck_assert_int_eq(json_integer_value(json_object_get(d, "input_length")),
                                     (int)json_array_size(json_object_get(g, "input_ids")));
                }
            }
            free(text.p);
            json_decref(ev);
            http_reply_free(r);
        }
        json_decref(gens);
    }
}
END_TEST

/* ---- OpenAI ---- */

/* The number of greedy tokens until the text holds stop, and that text cut before it. */
static size_t tokens_until(const char *model_dir, const json_t *ids, const char *stop, size_t *cut)
{
    struct tokenizer *tk;
    struct err e = {0};
    ck_assert_msg(tokenizer_load(model_dir, &tk, &e) == 0, "%s", e.msg);
    int32_t v[64];
    size_t n = json_array_size(ids);
    for (size_t i = 0; i < n; i++)
        v[i] = (int32_t)json_integer_value(json_array_get(ids, i));
    size_t k = 1;
    for (; k <= n; k++) {
        char *s = NULL;
        size_t len = 0;
        ck_assert(tokenizer_decode(tk, v, k, true, &s, &len, &e) == 0);
        const char *at = strstr(s, stop);
        if (at)
            *cut = (size_t)(at - s);
        free(s);
        if (at)
            break;
    }
    tokenizer_free(tk);
    ck_assert_int_le(k, n);
    return k;
}

START_TEST(openai_completions)
{
    for (size_t k = 0; k < 2; k++) {
        json_t *gens = generations(k);
        const json_t *g = json_array_get(gens, 0);
        size_t n_in = json_array_size(json_object_get(g, "input_ids"));
        char *greedy = expected_text(k, g);
        /* plain */
        struct http_reply *r =
            daemon_post(srv, "/v1/completions",
                        json_pack("{s:s, s:s, s:i, s:f}", "model", served[k], "prompt",
                                  str(g, "prompt"), "max_tokens", MAX_NEW, "temperature", 0.0));
        expect_status(r, 200, "completions");
        char keys[200];
        ck_assert_str_eq(keys_of(r->json, keys, sizeof keys),
                         "id,object,created,model,choices,usage");
        ck_assert_str_eq(str(r->json, "object"), "text_completion");
        ck_assert_str_eq(str(r->json, "model"), served[k]);
        ck_assert(strncmp(str(r->json, "id"), "cmpl-", 5) == 0);
        const json_t *c0 = json_array_get(json_object_get(r->json, "choices"), 0);
        ck_assert_str_eq(str(c0, "text"), greedy);
        ck_assert_str_eq(str(c0, "finish_reason"), "length");
        /* the prompt tokens found in the prefix cache: whatever earlier tests left, at most
         * all but the last; the streamed request below repeats this prompt: all but the last */
        json_t *got = json_deep_copy(json_object_get(r->json, "usage"));
        const json_t *det = json_object_get(got, "prompt_tokens_details");
        json_int_t cached = json_integer_value(json_object_get(det, "cached_tokens"));
        ck_assert(json_is_integer(json_object_get(det, "cached_tokens")) && cached >= 0 &&
                  cached <= (json_int_t)n_in - 1);
        json_object_del(got, "prompt_tokens_details");
        json_t *usage =
            json_pack("{s:i, s:i, s:i}", "prompt_tokens", (int)n_in, "completion_tokens", MAX_NEW,
                      "total_tokens", (int)n_in + MAX_NEW);
        expect_json(got, usage, 0, "usage");
        json_decref(got);
        json_object_set_new(usage, "prompt_tokens_details",
                            json_pack("{s:i}", "cached_tokens", (int)n_in - 1));
        http_reply_free(r);
        /* streamed, with the usage chunk */
        r = daemon_post(srv, "/v1/completions",
                        json_pack("{s:s, s:s, s:i, s:f, s:b, s:{s:b}}", "model", served[k],
                                  "prompt", str(g, "prompt"), "max_tokens", MAX_NEW, "temperature",
                                  0.0, "stream", 1, "stream_options", "include_usage", 1));
        expect_status(r, 200, "completions stream");
        expect_sse_headers(r, "completions stream");
        json_t *ev = sse_events(r->body, true, "completions stream");
        size_t n = json_array_size(ev);
        ck_assert_int_ge(n, 2);
        struct buf text = {0};
        buf_add(&text, "", 0);
        for (size_t i = 0; i + 1 < n; i++) {
            const json_t *e = json_array_get(ev, i);
            ck_assert_str_eq(str(e, "object"), "text_completion");
            ck_assert(json_is_null(json_object_get(e, "usage")));
            const json_t *ch = json_array_get(json_object_get(e, "choices"), 0);
            buf_add(&text, str(ch, "text"), strlen(str(ch, "text")));
            const json_t *fin = json_object_get(ch, "finish_reason");
            ck_assert(i + 2 == n ? json_is_string(fin) : json_is_null(fin));
        }
        ck_assert_str_eq(text.p, greedy);
        const json_t *u = json_array_get(ev, n - 1);
        ck_assert_int_eq(json_array_size(json_object_get(u, "choices")), 0);
        expect_json(json_object_get(u, "usage"), usage, 0, "stream usage");
        json_decref(usage);
        free(text.p);
        free(greedy);
        json_decref(ev);
        http_reply_free(r);
        json_decref(gens);
    }
}
END_TEST

/* stop: the text ends before the first occurrence, finish_reason "stop", and the tokens it
 * took are the completion's (plain and streamed). */
START_TEST(openai_stop)
{
    json_t *gens = generations(0);
    const json_t *g = json_array_get(gens, 0); /* " grace Personal Personal ..." */
    const char *stop = " Personal";
    size_t cut = 0;
    size_t n_tok =
        tokens_until(fixture_model("gpt2-lm"), json_object_get(g, "greedy_ids"), stop, &cut);
    char *want = strndup(str(g, "greedy_text"), cut);
    for (int stream = 0; stream < 2; stream++) {
        struct http_reply *r =
            daemon_post(srv, "/v1/completions",
                        json_pack("{s:s, s:s, s:i, s:f, s:[s], s:b}", "model", "gpt2", "prompt",
                                  str(g, "prompt"), "max_tokens", MAX_NEW, "temperature", 0.0,
                                  "stop", stop, "stream", stream));
        expect_status(r, 200, "stop");
        if (!stream) {
            const json_t *c0 = json_array_get(json_object_get(r->json, "choices"), 0);
            ck_assert_str_eq(str(c0, "text"), want);
            ck_assert_str_eq(str(c0, "finish_reason"), "stop");
            ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(r->json, "usage"),
                                                                "completion_tokens")),
                             (int)n_tok);
        } else {
            json_t *ev = sse_events(r->body, true, "stop stream");
            struct buf text = {0};
            buf_add(&text, "", 0);
            const char *fin = NULL;
            for (size_t i = 0; i < json_array_size(ev); i++) {
                const json_t *ch =
                    json_array_get(json_object_get(json_array_get(ev, i), "choices"), 0);
                buf_add(&text, str(ch, "text"), strlen(str(ch, "text")));
                if (json_is_string(json_object_get(ch, "finish_reason")))
                    fin = str(ch, "finish_reason");
            }
            ck_assert_str_eq(text.p, want);
            ck_assert_str_eq(fin, "stop");
            free(text.p);
            json_decref(ev);
        }
        http_reply_free(r);
    }
    free(want);
    json_decref(gens);
}
END_TEST

/* The refs' chat template render (llama3 chat-template-dev.json) tokenized by llama-lm's
 * tokenizer without special tokens: what the chat route must feed the model. */
static json_t *render_ids(const json_t *cas)
{
    struct tokenizer *tk;
    struct err e = {0};
    ck_assert_msg(tokenizer_load(fixture_model("llama-lm"), &tk, &e) == 0, "%s", e.msg);
    struct tokenizer_params p = tokenizer_params_default(tk);
    p.add_special_tokens = false;
    struct encodings enc = {0};
    const char *text = str(cas, "text");
    ck_assert(tokenizer_encode(tk, text, strlen(text), NULL, 0, &p, &enc, &e) == 0);
    json_t *ids = json_array();
    for (size_t i = 0; i < enc.v[0].n; i++)
        json_array_append_new(ids, json_integer(enc.v[0].ids[i]));
    encodings_fini(&enc);
    tokenizer_free(tk);
    return ids;
}

START_TEST(openai_chat)
{
    json_t *cases = fixture_json(fixture_tokenizer("llama3"), "chat-template-dev.json");
    ck_assert_int_gt(json_array_size(cases), 0);
    for (size_t i = 0; i < json_array_size(cases); i++) {
        const json_t *cas = json_array_get(cases, i);
        json_t *ids = render_ids(cas);
        size_t n_ids = json_array_size(ids);
        bool agp = json_is_true(json_object_get(cas, "add_generation_prompt"));
        /* the same prompt as token ids through /v1/completions: the chat's expected answer */
        struct http_reply *ref =
            daemon_post(srv, "/v1/completions",
                        json_pack("{s:s, s:O, s:i, s:f}", "model", "chat", "prompt", ids,
                                  "max_tokens", 12, "temperature", 0.0));
        expect_status(ref, 200, "completions by ids");
        const char *want = str(json_array_get(json_object_get(ref->json, "choices"), 0), "text");
        struct http_reply *r =
            daemon_post(srv, "/v1/chat/completions",
                        json_pack("{s:s, s:O, s:i, s:f, s:b}", "model", "chat", "messages",
                                  json_object_get(cas, "messages"), "max_completion_tokens", 12,
                                  "temperature", 0.0, "add_generation_prompt", agp));
        expect_status(r, 200, "chat");
        char keys[200];
        ck_assert_str_eq(keys_of(r->json, keys, sizeof keys),
                         "id,object,created,model,choices,usage");
        ck_assert_str_eq(str(r->json, "object"), "chat.completion");
        ck_assert(strncmp(str(r->json, "id"), "chatcmpl-", 9) == 0);
        const json_t *c0 = json_array_get(json_object_get(r->json, "choices"), 0);
        const json_t *msg = json_object_get(c0, "message");
        ck_assert_str_eq(str(msg, "role"), "assistant");
        ck_assert_str_eq(str(msg, "content"), want);
        const json_t *usage = json_object_get(r->json, "usage");
        ck_assert_int_eq(json_integer_value(json_object_get(usage, "prompt_tokens")), (int)n_ids);
        ck_assert_int_eq(json_integer_value(json_object_get(usage, "prompt_tokens")) +
                             json_integer_value(json_object_get(usage, "completion_tokens")),
                         json_integer_value(json_object_get(usage, "total_tokens")));
        /* streamed: role first, then content deltas adding up to the same text */
        struct http_reply *s =
            daemon_post(srv, "/v1/chat/completions",
                        json_pack("{s:s, s:O, s:i, s:f, s:b, s:b}", "model", "chat", "messages",
                                  json_object_get(cas, "messages"), "max_tokens", 12, "temperature",
                                  0.0, "stream", 1, "add_generation_prompt", agp));
        expect_status(s, 200, "chat stream");
        json_t *ev = sse_events(s->body, true, "chat stream");
        ck_assert_int_ge(json_array_size(ev), 2);
        struct buf text = {0};
        buf_add(&text, "", 0);
        for (size_t e = 0; e < json_array_size(ev); e++) {
            const json_t *chunk = json_array_get(ev, e);
            ck_assert_str_eq(str(chunk, "object"), "chat.completion.chunk");
            ck_assert_str_eq(str(chunk, "id"), str(json_array_get(ev, 0), "id"));
            const json_t *ch = json_array_get(json_object_get(chunk, "choices"), 0);
            const json_t *delta = json_object_get(ch, "delta");
            if (e == 0)
                ck_assert_str_eq(str(delta, "role"), "assistant");
            else
                ck_assert_ptr_null(json_object_get(delta, "role"));
            const char *piece = json_string_value(json_object_get(delta, "content"));
            if (piece)
                buf_add(&text, piece, strlen(piece));
            bool last = e + 1 == json_array_size(ev);
            ck_assert(last ? json_is_string(json_object_get(ch, "finish_reason"))
                           : json_is_null(json_object_get(ch, "finish_reason")));
            if (last)
                ck_assert_str_eq(str(ch, "finish_reason"), str(c0, "finish_reason"));
        }
        ck_assert_str_eq(text.p, want);
        free(text.p);
        json_decref(ev);
        http_reply_free(s);
        http_reply_free(r);
        http_reply_free(ref);
        json_decref(ids);
    }
    json_decref(cases);
}
END_TEST

/* n: each choice indexed; greedy choices agree; usage counts them all. logprobs. */
START_TEST(openai_n_and_logprobs)
{
    struct http_reply *r = daemon_post(srv, "/v1/completions",
                                       json_pack("{s:s, s:s, s:i, s:f, s:i, s:i}", "model", "gpt2",
                                                 "prompt", "Once upon a time", "max_tokens", 5,
                                                 "temperature", 0.0, "n", 3, "logprobs", 2));
    expect_status(r, 200, "n=3");
    const json_t *ch = json_object_get(r->json, "choices");
    ck_assert_int_eq(json_array_size(ch), 3);
    for (size_t i = 0; i < 3; i++) {
        const json_t *c = json_array_get(ch, i);
        ck_assert_int_eq(json_integer_value(json_object_get(c, "index")), (int)i);
        ck_assert_str_eq(str(c, "text"), str(json_array_get(ch, 0), "text"));
        const json_t *lp = json_object_get(c, "logprobs");
        ck_assert_int_eq(json_array_size(json_object_get(lp, "tokens")), 5);
        ck_assert_int_eq(json_array_size(json_object_get(lp, "token_logprobs")), 5);
        ck_assert_int_eq(json_object_size(json_array_get(json_object_get(lp, "top_logprobs"), 0)),
                         2);
    }
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(r->json, "usage"), "completion_tokens")),
        15);
    http_reply_free(r);
    r = daemon_post(srv, "/v1/chat/completions",
                    json_pack("{s:s, s:[{s:s, s:s}], s:i, s:f, s:b, s:i}", "model", "chat",
                              "messages", "role", "user", "content", "Hello!", "max_tokens", 4,
                              "temperature", 0.0, "logprobs", 1, "top_logprobs", 2));
    expect_status(r, 200, "chat logprobs");
    const json_t *content = json_object_get(
        json_object_get(json_array_get(json_object_get(r->json, "choices"), 0), "logprobs"),
        "content");
    ck_assert_int_eq(json_array_size(content), 4);
    const json_t *c0 = json_array_get(content, 0);
    char keys[100];
    ck_assert_str_eq(keys_of(c0, keys, sizeof keys), "token,logprob,bytes,top_logprobs");
    ck_assert_int_eq(json_array_size(json_object_get(c0, "top_logprobs")), 2);
    http_reply_free(r);
}
END_TEST

/* ---- Hugging Face pipeline ---- */

START_TEST(hf_pipeline_text_generation)
{
    for (size_t k = 0; k < 2; k++) {
        json_t *refs = model_refs(lms[k]);
        const json_t *pipe = json_object_get(refs, "pipeline");
        ck_assert_int_gt(json_array_size(pipe), 0);
        for (size_t i = 0; i < json_array_size(pipe); i++) {
            const json_t *p = json_array_get(pipe, i);
            char path[64], what[96];
            snprintf(path, sizeof path, "/models/%s", served[k]);
            snprintf(what, sizeof what, "%s pipeline %zu", lms[k], i);
            struct http_reply *r =
                daemon_post(srv, path,
                            json_pack("{s:O, s:O}", "inputs", json_object_get(p, "input"),
                                      "parameters", json_object_get(p, "parameters")));
            expect_status(r, 200, what);
            expect_json(r->json, json_object_get(p, "output"), 0, what);
            http_reply_free(r);
        }
        json_decref(refs);
    }
}
END_TEST

/* ---- concurrency, disconnects, seeds ---- */

START_TEST(sixteen_streams)
{
    json_t *gens[2] = {generations(0), generations(1)};
    struct http_spec specs[16];
    char *bodies[16];
    const json_t *want[16];
    for (size_t i = 0; i < 16; i++) {
        size_t k = i % 2;
        const json_t *g = json_array_get(gens[k], (i / 2) % json_array_size(gens[k]));
        want[i] = g;
        json_t *b = json_pack("{s:s, s:o, s:s}", "inputs", str(g, "prompt"), "parameters",
                              greedy_params(MAX_NEW), "model", served[k]);
        bodies[i] = json_dumps(b, JSON_COMPACT);
        json_decref(b);
        specs[i] = (struct http_spec){"POST", "/generate_stream", bodies[i], NULL};
    }
    struct http_multi *m = http_multi_start(srv->port, specs, 16);
    ck_assert(http_multi_wait(m, 120000));
    for (size_t i = 0; i < 16; i++) {
        const struct http_reply *r = http_multi_reply(m, i);
        char what[64];
        snprintf(what, sizeof what, "stream %zu", i);
        expect_status(r, 200, what);
        json_t *ev = sse_events(r->body, false, what);
        const json_t *last = json_array_get(ev, json_array_size(ev) - 1);
        char *text = expected_text(i % 2, want[i]);
        ck_assert_str_eq(str(last, "generated_text"), text);
        free(text);
        ck_assert_int_eq(json_array_size(ev), MAX_NEW);
        json_decref(ev);
        free(bodies[i]);
    }
    http_multi_free(m);
    json_decref(gens[0]);
    json_decref(gens[1]);
}
END_TEST

START_TEST(seeded_sampling_reproducible)
{
    json_t *first = NULL;
    for (int round = 0; round < 2; round++) {
        struct http_reply *r = daemon_post(
            srv, "/generate",
            json_pack("{s:s, s:{s:b, s:f, s:i, s:i, s:b}, s:s}", "inputs", "Hello, my name is",
                      "parameters", "do_sample", 1, "temperature", 1.5, "seed", 1234,
                      "max_new_tokens", 16, "details", 1, "model", "llama"));
        expect_status(r, 200, "seeded");
        const json_t *d = json_object_get(r->json, "details");
        ck_assert_int_eq(json_integer_value(json_object_get(d, "seed")), 1234);
        if (!first)
            first = json_incref(r->json);
        else
            expect_json(r->json, first, 0, "the same seed twice");
        http_reply_free(r);
    }
    /* a greedy answer differs from these samples (temperature 1.5 over random weights) */
    json_t *gens = generations(1);
    const json_t *g = json_array_get(gens, 2);
    ck_assert_str_ne(str(first, "generated_text"), str(g, "greedy_text"));
    json_decref(gens);
    json_decref(first);
    /* OpenAI seed, n = 2: choice 0 is the n = 1 answer with the same seed */
    json_t *one = NULL;
    for (int n = 1; n <= 2; n++) {
        struct http_reply *r =
            daemon_post(srv, "/v1/completions",
                        json_pack("{s:s, s:s, s:i, s:f, s:i, s:i}", "model", "gpt2", "prompt",
                                  "Hello", "max_tokens", 8, "temperature", 1.0, "seed", 7, "n", n));
        expect_status(r, 200, "openai seed");
        const json_t *c0 = json_array_get(json_object_get(r->json, "choices"), 0);
        if (n == 1)
            one = json_string(str(c0, "text"));
        else
            ck_assert_str_eq(str(c0, "text"), json_string_value(one));
        http_reply_free(r);
    }
    json_decref(one);
}
END_TEST

/* ---- validation ---- */

static void expect_tgi_error(const char *path, json_t *body, long status, const char *msg)
{
    struct http_reply *r = daemon_post(srv, path, body);
    expect_hf_error(r, status, msg);
    if (msg)
        ck_assert_str_eq(str(r->json, "error"), msg);
    if (status == 422)
        ck_assert_str_eq(str(r->json, "error_type"), "validation");
    http_reply_free(r);
}

START_TEST(tgi_validation_errors)
{
    expect_tgi_error("/generate",
                     json_pack("{s:s, s:{s:f}}", "inputs", "Hi", "parameters", "temperature", 0.0),
                     422, "Input validation error: `temperature` must be strictly positive");
    expect_tgi_error("/generate",
                     json_pack("{s:s, s:{s:f}}", "inputs", "Hi", "parameters", "top_p", 1.0), 422,
                     "Input validation error: `top_p` must be > 0.0 and < 1.0");
    expect_tgi_error("/generate",
                     json_pack("{s:s, s:{s:i}}", "inputs", "Hi", "parameters", "max_new_tokens", 0),
                     422, "Input validation error: `max_new_tokens` must be strictly positive");
    expect_tgi_error("/generate",
                     json_pack("{s:s, s:{s:[s,s,s,s,s]}}", "inputs", "Hi", "parameters", "stop",
                               "a", "b", "c", "d", "e"),
                     422,
                     "Input validation error: `stop` supports up to 4 stop sequences. Given: 5");
    expect_tgi_error("/generate", json_pack("{s:s}", "inputs", ""), 422,
                     "Input validation error: `inputs` cannot be empty");
    /* gpt2-lm: 256 positions; "Once upon a time" is 4 tokens */
    expect_tgi_error("/generate",
                     json_pack("{s:s, s:{s:i}, s:s}", "inputs", "Once upon a time", "parameters",
                               "max_new_tokens", 300, "model", "gpt2"),
                     422,
                     "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 256. "
                     "Given: 4 `inputs` tokens and 300 `max_new_tokens`");
    expect_tgi_error("/generate_stream",
                     json_pack("{s:s, s:{s:i, s:b}}", "inputs", "Hi", "parameters", "best_of", 2,
                               "do_sample", 1),
                     422,
                     "Input validation error: `best_of` != 1 is not supported when streaming "
                     "tokens");
    expect_tgi_error("/generate", json_pack("{s:s, s:s}", "inputs", "Hi", "model", "nope"), 404,
                     NULL);
    /* a model of another task */
    expect_tgi_error("/generate", json_pack("{s:s, s:s}", "inputs", "Hi", "model", "seqcls"), 422,
                     NULL);
}
END_TEST

static void expect_oai_error(const char *path, json_t *body, long status, const char *msg)
{
    struct http_reply *r = daemon_post(srv, path, body);
    expect_openai_error(r, status, msg ? msg : path);
    if (msg)
        ck_assert_str_eq(str(json_object_get(r->json, "error"), "message"), msg);
    http_reply_free(r);
}

START_TEST(openai_validation_errors)
{
    expect_oai_error(
        "/v1/completions",
        json_pack("{s:s, s:s, s:f}", "model", "gpt2", "prompt", "Hi", "temperature", 3.0), 400,
        "`temperature` must be >= 0.0 and <= 2.0");
    expect_oai_error("/v1/completions",
                     json_pack("{s:s, s:s, s:i}", "model", "gpt2", "prompt", "Hi", "n", 0), 400,
                     "`n` must be >= 1 and <= 8");
    expect_oai_error("/v1/completions",
                     json_pack("{s:s, s:s, s:{s:b}}", "model", "gpt2", "prompt", "Hi",
                               "stream_options", "include_usage", 1),
                     400, "`stream_options` can only be set when `stream` is true");
    expect_oai_error("/v1/completions", json_pack("{s:s}", "model", "gpt2"), 400,
                     "`prompt` is required");
    expect_oai_error("/v1/chat/completions", json_pack("{s:s}", "model", "chat"), 400,
                     "`messages` is required");
    expect_oai_error("/v1/chat/completions",
                     json_pack("{s:s, s:[{s:s, s:s}]}", "model", "gpt2", "messages", "role", "user",
                               "content", "Hi"),
                     400, NULL); /* gpt2-lm has no chat template */
    struct http_reply *r = daemon_post(srv, "/v1/chat/completions",
                                       json_pack("{s:s, s:[{s:s, s:s}]}", "model", "nope",
                                                 "messages", "role", "user", "content", "Hi"));
    expect_openai_error(r, 404, "unknown model");
    ck_assert_str_eq(str(json_object_get(r->json, "error"), "code"), "model_not_found");
    http_reply_free(r);
    /* max_tokens past the context */
    expect_oai_error("/v1/completions",
                     json_pack("{s:s, s:s, s:i}", "model", "gpt2", "prompt", "Once upon a time",
                               "max_tokens", 300),
                     400,
                     "This model's maximum context length is 256 tokens. However, you requested "
                     "304 tokens (4 in the prompt, 300 in the completion). Please reduce the "
                     "length of the prompt or completion.");
}
END_TEST

/* /info of a generation model: TGI's Info with its limits; /v1/models lists it. */
START_TEST(info_and_models)
{
    struct http_reply *r = daemon_get(srv, "/info?model=gpt2");
    expect_status(r, 200, "/info");
    ck_assert_str_eq(str(r->json, "model_pipeline_tag"), "text-generation");
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "max_total_tokens")), 256);
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "max_input_tokens")), 255);
    http_reply_free(r);
    r = daemon_get(srv, "/v1/models");
    expect_status(r, 200, "/v1/models");
    const json_t *data = json_object_get(r->json, "data");
    bool found = false;
    for (size_t i = 0; i < json_array_size(data); i++) {
        const json_t *m = json_array_get(data, i);
        if (strcmp(str(m, "id"), "gpt2") == 0) { /* gpt2-lm: n_positions 256 */
            found = true;
            ck_assert_int_eq(json_integer_value(json_object_get(m, "max_model_len")), 256);
        }
    }
    ck_assert(found);
    http_reply_free(r);
}
END_TEST

/* The openai npm client (scripts/openai-client.sh installs it once) streams a chat completion
 * and runs a plain one; both greedy, so the texts must agree. */
START_TEST(openai_npm_client)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "sh '%s/scripts/openai-client.sh' 'http://127.0.0.1:%d/v1' chat > '%s/openai.log' "
             "2>&1",
             INFERD_SOURCE_DIR, srv->port, srv->dir);
    int rc = system(cmd);
    char path[600];
    snprintf(path, sizeof path, "%s/openai.log", srv->dir);
    size_t len = 0;
    char *log = read_file(path, &len);
    ck_assert_msg(rc == 0, "openai client failed (%d):\n%s", rc, log ? log : "");
    ck_assert_msg(log && strstr(log, "openai-client: ok"), "no ok line:\n%s", log ? log : "");
    free(log);
}
END_TEST

START_TEST(shutdown_is_clean)
{
    daemon_shutdown(srv);
}
END_TEST

/* ---- a client that half-closes after its request ---- */

/* shutdown(SHUT_WR) after a complete /generate request is legal HTTP: the client still reads
 * the answer. 240 greedy tokens run for well over the scheduler's 50 ms between checks of its
 * clients; the first MAX_NEW must be the refs' greedy_ids (greedy continues the same way). */
START_TEST(half_closed_generate)
{
    enum { LONG = 240 };
    json_t *gens = generations(0);
    const json_t *g = json_array_get(gens, 0);
    json_t *o = json_pack("{s:s, s:o, s:s}", "inputs", str(g, "prompt"), "parameters",
                          greedy_params(LONG), "model", served[0]);
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    char *req = raw_post_text("/generate", body);
    free(body);
    int fd = raw_connect(srv->port);
    ck_assert(raw_send(fd, req, strlen(req)));
    free(req);
    ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
    char *reply = NULL;
    long status = raw_read_reply(fd, 60000, &reply);
    raw_close(fd);
    ck_assert_msg(status == 200, "a half-closed client got status %ld, not 200:\n%s", status,
                  reply ? reply : "(nothing)");
    const char *b = strstr(reply, "\r\n\r\n");
    json_t *got = b ? json_loads(b + 4, 0, NULL) : NULL;
    ck_assert_msg(got, "no JSON body:\n%s", reply);
    const json_t *toks = json_object_get(json_object_get(got, "details"), "tokens"),
                 *ids = json_object_get(g, "greedy_ids");
    ck_assert_int_eq(json_array_size(toks), LONG);
    for (size_t t = 0; t < json_array_size(ids); t++)
        ck_assert_msg(json_integer_value(json_object_get(json_array_get(toks, t), "id")) ==
                          json_integer_value(json_array_get(ids, t)),
                      "a half-closed client's token %zu", t);
    json_decref(got);
    free(reply);
    json_decref(gens);
}
END_TEST

/* ---- one slot: a client that hangs up mid-stream frees it at once ---- */

START_TEST(disconnect_frees_slot)
{
    char *yaml = yaml_config(
        NULL,
        yaml_model("llama", "llama-lm", "text-generation",
                   "batching:\n  max_batch_size: 1\ngeneration:\n  max_total_tokens: 4096\n"),
        NULL);
    struct daemon *d = daemon_start(yaml, NULL);
    free(yaml);
    /* a long stream (4000 tokens: seconds of work), read until its first event, then hung up */
    int fd = raw_connect(d->port);
    char *req = raw_post_text("/generate_stream", "{\"inputs\":\"Once upon a time\",\"parameters\":"
                                                  "{\"max_new_tokens\":4000,\"do_sample\":false}}");
    ck_assert(raw_send(fd, req, strlen(req)));
    free(req);
    char got[8192];
    size_t n = 0;
    long long t0 = now_ms();
    while (!memmem(got, n, "data: ", 6) && now_ms() - t0 < 30000) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) > 0) {
            ssize_t k = read(fd, got + n, sizeof got - n);
            ck_assert_int_gt(k, 0);
            n += (size_t)k;
        }
    }
    ck_assert_msg(memmem(got, n, "data: ", 6), "no first event");
    ck_assert(memmem(got, n, "Transfer-Encoding: chunked", 26));
    raw_close(fd);
    /* the one slot must take the next request now, not after 4000 tokens */
    long long t1 = now_ms();
    struct http_reply *r =
        daemon_post(d, "/generate",
                    json_pack("{s:s, s:{s:i, s:b}}", "inputs", "Hello", "parameters",
                              "max_new_tokens", 4, "do_sample", 0));
    expect_status(r, 200, "after the hang-up");
    http_reply_free(r);
    long long waited = now_ms() - t1;
    r = daemon_get(d, "/metrics");
    const char *labels[] = {"model=\"llama\"", NULL};
    double generated = metric_sum(r->body, "inferd_generated_tokens_total", labels, NULL);
    http_reply_free(r);
    ck_assert_msg(generated < 2000, "the hung-up stream went on: %.0f tokens generated (%lld ms)",
                  generated, waited);
    daemon_shutdown(d);
    daemon_stop(d);
}
END_TEST

Suite *suite_serve_generate(void)
{
    Suite *s = suite_create("serve_generate");
    TCase *tc = tcase_create("generate");
    tcase_set_timeout(tc, 300);
    tcase_add_unchecked_fixture(tc, srv_start, srv_stop);
    tcase_add_checked_fixture(tc, NULL, serve_teardown);
    tcase_add_test(tc, tgi_generate_greedy);
    tcase_add_test(tc, tgi_generate_prefill_top_tokens);
    tcase_add_test(tc, tgi_generate_stream_framing);
    tcase_add_test(tc, openai_completions);
    tcase_add_test(tc, openai_stop);
    tcase_add_test(tc, openai_chat);
    tcase_add_test(tc, openai_n_and_logprobs);
    tcase_add_test(tc, hf_pipeline_text_generation);
    tcase_add_test(tc, sixteen_streams);
    tcase_add_test(tc, seeded_sampling_reproducible);
    tcase_add_test(tc, tgi_validation_errors);
    tcase_add_test(tc, openai_validation_errors);
    tcase_add_test(tc, info_and_models);
    tcase_add_test(tc, openai_npm_client);
    tcase_add_test(tc, half_closed_generate);
    tcase_add_test(tc, shutdown_is_clean);
    suite_add_tcase(s, tc);
    TCase *one = tcase_create("one_slot");
    tcase_set_timeout(one, 300);
    tcase_add_checked_fixture(one, NULL, serve_teardown);
    tcase_add_test(one, disconnect_frees_slot);
    suite_add_tcase(s, one);
    return s;
}
