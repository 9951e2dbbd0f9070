/* check_main: runs every Check suite of the project in one runner, one suite at a time: each
 * suite's failures and then its result line ("serve  12 passed  0 failed  8.4 s") as soon as
 * it ends, and the closing line "N passed, N failed" that `make test` ends with. The temporary
 * directories of a run with failures are kept for a post-mortem (support.h, temp_dir).
 * Usage: inferd-tests [SUITE...]   (no argument: every suite; CK_VERBOSITY as Check's) */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "suites.h"
#include "support/support.h"

static const struct {
    const char *name;
    Suite *(*make)(void);
} suites[] = {
#define SUITE(name) {#name, suite_##name},
#include "suites.def"
#undef SUITE
};

#define N_SUITES (sizeof suites / sizeof suites[0])

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool wanted(size_t i, int argc, char **argv)
{
    bool want = argc < 2;
    for (int a = 1; a < argc; a++)
        want = want || strcmp(argv[a], suites[i].name) == 0;
    return want;
}

/* Check's line for each failure: file:line:kind:tcase: message. */
static void print_failures(SRunner *sr)
{
    static const char *const kinds[] = {[CK_PASS] = "P", [CK_FAILURE] = "F", [CK_ERROR] = "E"};
    TestResult **f = srunner_failures(sr);
    for (int i = 0; f && i < srunner_ntests_failed(sr); i++) {
        enum test_result k = (enum test_result)tr_rtype(f[i]);
        printf("%s:%d:%s:%s: %s\n", tr_lfile(f[i]), tr_lno(f[i]),
               k >= CK_PASS && k <= CK_ERROR ? kinds[k] : "?", tr_tcname(f[i]), tr_msg(f[i]));
    }
    free(f);
}

/* Runs suite i; adds to *passed and *failed. */
static void run_suite(size_t i, int *passed, int *failed)
{
    double t0 = now();
    SRunner *sr = srunner_create(suites[i].make());
    srunner_run_all(sr, getenv("CK_VERBOSITY") ? CK_ENV : CK_SILENT);
    int n_run = srunner_ntests_run(sr), n_failed = srunner_ntests_failed(sr);
    print_failures(sr);
    srunner_free(sr);
    printf("%-16s %4d passed %3d failed %7.1f s\n", suites[i].name, n_run - n_failed, n_failed,
           now() - t0);
    fflush(stdout);
    *passed += n_run - n_failed;
    *failed += n_failed;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    size_t n_suites = 0;
    for (size_t i = 0; i < N_SUITES; i++) {
        if (!wanted(i, argc, argv))
            continue;
        n_suites++;
        run_suite(i, &passed, &failed);
    }
    if (n_suites == 0) {
        fprintf(stderr, "inferd-tests: no such suite\n");
        return 2;
    }
    if (failed) {
        temp_dirs_keep();
        printf("the failing tests' temporary directories (%s/test-tmp-*) are kept for a "
               "post-mortem\n",
               INFERD_BUILD_DIR);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
