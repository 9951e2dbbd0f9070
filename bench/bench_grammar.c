/* bench_grammar: what constrained decoding costs a generation (engine/generate/grammar.h):
 * decode tokens/s through the generator with no constraint, with a JSON schema whose masks are
 * made during the run (cold: the grammar's mask cache empty, as for a schema's first request)
 * and with the same schema again (warm: its masks cached, as for every later request), and the
 * per-step mask cost alone. Every run generates exactly --tokens tokens after a --context-token
 * prompt (the constraint's eos is not a stop here: ignore_eos; the schema is an array of
 * objects, so the output can go on), sampling with a fixed seed, --streams sequences stepped
 * together as continuous batching steps them. One JSON line per run on stdout:
 *   {"model":..,"streams":1,"run":"none|cold|warm","tokens":..,"seconds":..,"tokens_per_s":..,
 *    "grammar_states":..} and, per round, the mask step alone (the cached mask of a state
 * applied to a logits row, as generator.c does it; median over the grammar's first states):
 *   {"model":..,"round":..,"run":"mask_only","median_us":..}
 * usage: bench-grammar --model DIR [--threads 2] [--tokens 128] [--context 32] [--streams 1]
 *        [--rounds 3]
 * DIR needs a tokenizer (bench/run_grammar.sh copies gpt2-lm's next to a random ~124M GPT-2). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>

#include "clock.h"
#include "engine.h"
#include "generate/gen_impl.h"

#define MAX_STREAMS 16

/* items are objects with bounded fields: a realistic extraction schema */
static const char *const schema_regex =
    "\\[(?:\\{\"name\": ?\"(?:[^\"\\\\\\x00-\\x1f]|\\\\[\"\\\\/bfnrt]){0,40}\", ?\"age\": ?"
    "(?:[0-9]|[1-9][0-9]|1[0-4][0-9]|150), ?\"email\": ?\"[a-z0-9.]{1,20}@[a-z]{1,12}\\.(?:com|org)\", ?"
    "\"tags\": ?\\[(?:\"[a-z]{1,10}\"(?:, ?\"[a-z]{1,10}\"){0,4})?\\]\\}(?:, ?)?)*";

struct opts {
    const char *model;
    int threads, tokens, context, streams, rounds;
};

struct sink {
    int finished, failed;
};

static void on_event(void *arg, const struct gen_step_event *ev)
{
    struct sink *s = arg;
    if (ev->error) {
        fprintf(stderr, "bench-grammar: %s\n", ev->error);
        s->failed++;
    } else if (ev->token && ev->token->finish != GEN_FINISH_NONE) {
        s->finished++;
    }
}

/* One run: every stream generates o->tokens tokens; returns the decode seconds. */
static double run(struct generator *g, const struct gen_model *m, const struct opts *o,
                  struct grammar *gr, int32_t *prompt)
{
    struct gen_params p[MAX_STREAMS];
    struct gen_seq *seqs[MAX_STREAMS];
    struct err e = {0};
    for (int i = 0; i < o->streams; i++) {
        gen_params_init(&p[i], gen_model_config(m));
        p[i].do_sample = true;
        p[i].seed = 1234 + (uint64_t)i;
        p[i].max_new_tokens = (uint32_t)o->tokens;
        p[i].ignore_eos = true;
        p[i].grammar = grammar_ref(gr);
        if (gen_seq_start(g, prompt, (size_t)o->context, &p[i], NULL, &seqs[i], &e) != 0) {
            fprintf(stderr, "bench-grammar: %s\n", e.msg);
            exit(1);
        }
    }
    struct sink sink = {0};
    struct gen_step_stats st;
    /* the prompts (untimed), up to each stream's first token */
    generator_step(g, seqs, (size_t)o->streams, (size_t)(o->context * o->streams), on_event,
                   &sink, &st);
    double t0 = now_seconds();
    for (int k = 1; k < o->tokens && sink.finished + sink.failed < o->streams; k++)
        generator_step(g, seqs, (size_t)o->streams, 0, on_event, &sink, &st);
    double secs = now_seconds() - t0;
    if (sink.failed)
        exit(1);
    for (int i = 0; i < o->streams; i++) {
        gen_seq_retire(g, seqs[i]);
        gen_seq_free(seqs[i]);
        gen_params_fini(&p[i]);
    }
    return secs;
}

static void parse(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){NULL, 2, 128, 32, 1, 3};
    for (int i = 1; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        if (strcmp(argv[i], "--model") == 0)
            o->model = argv[i + 1];
        else if (strcmp(argv[i], "--threads") == 0)
            o->threads = v;
        else if (strcmp(argv[i], "--tokens") == 0)
            o->tokens = v;
        else if (strcmp(argv[i], "--context") == 0)
            o->context = v;
        else if (strcmp(argv[i], "--streams") == 0)
            o->streams = v;
        else if (strcmp(argv[i], "--rounds") == 0)
            o->rounds = v;
    }
    if (!o->model || o->streams < 1 || o->streams > MAX_STREAMS || o->tokens < 2 ||
        o->context < 1 || o->rounds < 1) {
        fprintf(stderr, "usage: bench-grammar --model DIR [--threads 2] [--tokens 128] "
                        "[--context 32] [--streams 1..16] [--rounds 3]\n");
        exit(2);
    }
}

/* The mask step alone, as generator.c runs it (cached mask, refused logits to -inf), over the
 * first states of gr with masks cached: median microseconds. */
static double mask_us(const struct gen_model *m, struct grammar *gr)
{
    struct err e = {0};
    const struct gram_vocab *v = gen_model_gram_vocab(m, &e);
    size_t V = (size_t)gen_model_vocab_size(m), words = (V + 63) / 64;
    float *row = malloc(V * sizeof *row);
    uint64_t *scratch = malloc(words * sizeof *scratch);
    double t[200];
    int n = 0;
    for (int32_t st = 0; st < (int32_t)grammar_n_states(gr) && n < 200; st++) {
        grammar_mask(gr, v, st, scratch); /* made once, as the first request makes it */
        for (size_t i = 0; i < V; i++)
            row[i] = (float)(i % 97);
        double t0 = now_seconds();
        const uint64_t *mask = grammar_mask(gr, v, st, scratch);
        for (size_t w = 0; w < words; w++) {
            if (mask[w] == ~(uint64_t)0)
                continue;
            size_t end = w * 64 + 64 < V ? w * 64 + 64 : V;
            for (size_t i = w * 64; i < end; i++)
                if (!((mask[w] >> (i & 63)) & 1))
                    row[i] = -INFINITY;
        }
        t[n++] = (now_seconds() - t0) * 1e6;
    }
    for (int i = 1; i < n; i++) /* insertion sort: n <= 200 */
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
            double x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
        }
    free(row);
    free(scratch);
    return n ? t[n / 2] : 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    parse(argc, argv, &o);
    struct gen_model *m = NULL;
    struct err e = {0};
    if (gen_model_load(o.model, &(struct gen_model_opts){.threads = o.threads}, &m, &e) != 0) {
        fprintf(stderr, "bench-grammar: %s\n", e.msg);
        return 1;
    }
    struct generator *g = generator_new(
        m,
        &(struct generator_limits){.max_seqs = (size_t)o.streams,
                                   .max_total = (size_t)(o.context + o.tokens + 1),
                                   .max_prefill = (size_t)(o.context * o.streams),
                                   .threads = o.threads},
        &e);
    if (!g || generator_prepare(g, &e) != 0 || generator_open(g, &e) != 0) {
        fprintf(stderr, "bench-grammar: %s\n", e.msg);
        return 1;
    }
    int32_t prompt[4096];
    for (int i = 0; i < o.context && i < 4096; i++)
        prompt[i] = 100 + (i * 7919) % (gen_model_vocab_size(m) - 200);
    run(g, m, &o, NULL, prompt); /* warm-up: oneDNN primitives */
    for (int r = 0; r < o.rounds; r++) {
        struct grammar *gr = NULL;
        if (grammar_compile(schema_regex, strlen(schema_regex), &gr, &e) != 0) {
            fprintf(stderr, "bench-grammar: %s\n", e.msg);
            return 1;
        }
        static const char *const names[] = {"none", "cold", "warm"};
        /* the order rotates per round (cold always before warm): drift on a shared machine
         * does not favour one kind */
        static const int orders[3][3] = {{0, 1, 2}, {1, 2, 0}, {1, 0, 2}};
        for (int j = 0; j < 3; j++) {
            int k = orders[r % 3][j];
            double t = now_seconds();
            double secs = run(g, m, &o, k ? gr : NULL, prompt);
            double all = now_seconds() - t;
            printf("{\"model\":\"%s\",\"streams\":%d,\"round\":%d,\"run\":\"%s\",\"tokens\":%d,"
                   "\"seconds\":%.4f,\"tokens_per_s\":%.2f,\"with_prefill_s\":%.4f,"
                   "\"grammar_states\":%zu}\n",
                   gen_model_id(m), o.streams, r, names[k], o.tokens * o.streams, secs,
                   (double)((o.tokens - 1) * o.streams) / secs, all, grammar_n_states(gr));
            fflush(stdout);
        }
        printf("{\"model\":\"%s\",\"round\":%d,\"run\":\"mask_only\",\"median_us\":%.1f}\n",
               gen_model_id(m), r, mask_us(m, gr));
        grammar_unref(gr);
    }
    generator_close(g);
    generator_free(g);
    gen_model_free(m);
    return 0;
}
