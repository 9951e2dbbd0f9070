/* fuzz.h: what every libFuzzer harness in tests/fuzz shares: the entry points libFuzzer calls
 * and a NUL-terminated copy of its input (the parsers under test take text). Each harness
 * feeds one parser the bytes as an untrusted file or request body would reach it, and checks
 * nothing but that it returns (crashes, leaks, hangs and sanitizer reports are the findings). */
#ifndef INFERD_FUZZ_H
#define INFERD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* data[0..size) followed by a NUL, malloc'ed; aborts when out of memory. */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* With FUZZ_VERBOSE=1 in the environment, prints what a parser refused (to check that the
 * seeds of a corpus get past the first error when run as `fuzz_x FILE...`); returns rc. */
static inline int fuzz_report(int rc, const struct err *e)
{
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("FUZZ_VERBOSE") != NULL;
    if (verbose)
        fprintf(stderr, "%s\n", rc ? e->msg : "ok");
    return rc;
}

#endif
