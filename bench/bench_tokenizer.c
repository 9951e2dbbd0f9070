/* bench_tokenizer: single-thread tokenizer throughput on the SpamAssassin dev emails.
 * usage: bench-tokenizer TOKENIZER_DIR EMAILS.jsonl [--seconds S] [--label NAME]
 * Prints one JSON line: tokens/s, MB/s, emails/s (encode with special tokens, no
 * truncation: every token of every email). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenizer/tokenizer.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench-tokenizer TOKENIZER_DIR EMAILS.jsonl [--seconds S] "
                        "[--label NAME]\n");
        return 2;
    }
    double min_seconds = 3.0;
    const char *label = argv[1];
    for (int i = 3; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--seconds") == 0)
            min_seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--label") == 0)
            label = argv[i + 1];
    }
    struct tokenizer *tk;
    struct err e;
    double t0 = now_s();
    if (tokenizer_load(argv[1], &tk, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    double load_s = now_s() - t0;
    FILE *f = fopen(argv[2], "r");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    json_t *texts = json_array();
    char *line = NULL;
    size_t cap = 0, bytes = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        json_t *j = json_loadb(line, (size_t)n, 0, NULL);
        json_t *t = j ? json_object_get(j, "text") : NULL;
        if (json_is_string(t)) {
            json_array_append(texts, t);
            bytes += json_string_length(t);
        }
        json_decref(j);
    }
    free(line);
    fclose(f);
    struct tokenizer_params p = tokenizer_params_default(tk);
    size_t tokens = 0, rounds = 0, docs = 0;
    struct encodings out = {0};
    t0 = now_s();
    double elapsed;
    do {
        for (size_t i = 0; i < json_array_size(texts); i++) {
            json_t *t = json_array_get(texts, i);
            if (tokenizer_encode(tk, json_string_value(t), json_string_length(t), NULL, 0, &p, &out,
                                 &e) == 0)
                tokens += out.v[0].n;
            docs++;
        }
        rounds++;
        elapsed = now_s() - t0;
    } while (elapsed < min_seconds);
    encodings_fini(&out);
    printf("{\"bench\":\"tokenizer\",\"tokenizer\":\"%s\",\"threads\":1,\"emails\":%zu,"
           "\"rounds\":%zu,\"tokens\":%zu,\"seconds\":%.3f,\"tokens_per_s\":%.0f,"
           "\"mb_per_s\":%.2f,\"emails_per_s\":%.1f,\"load_ms\":%.0f}\n",
           label, json_array_size(texts), rounds, tokens, elapsed, (double)tokens / elapsed,
           (double)bytes * (double)rounds / elapsed / 1e6, (double)docs / elapsed, load_s * 1e3);
    json_decref(texts);
    tokenizer_free(tk);
    return 0;
}
