/* pull: `inferd pull ORG/NAME[@REVISION] [--include GLOB] [--exclude GLOB]`: fetches what
 * serving needs of a Hub model into huggingface_hub's cache (hub/hub.h) and prints the
 * snapshot directory; and cli_model_dir, which lets every --model / --tokenizer take a model
 * id. Exit status 0, 1 when the pull failed (the message on stderr says what to do), 2 for a
 * bad command line. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "engine.h"
#include "hub.h"

#define MAX_GLOBS 32

int cli_model_dir(const char *cmd, const char *spec, bool tokenizer_only, char *dir, size_t cap)
{
    struct hub_opts o = {.files = tokenizer_only ? HUB_FILES_TOKENIZER : HUB_FILES_SERVING};
    struct err e = {0};
    /* a whole model directory (not just a tokenizer) must also be one this process reads */
    if (hub_resolve(spec, NULL, &o, dir, cap, &e) == 0 &&
        (tokenizer_only || engine_check_dir(dir, "--model", &e) == 0))
        return 0;
    fprintf(stderr, "inferd %s: %s\n", cmd, e.msg);
    return -1;
}

/* Appends v to a glob list; -1 when it is full. */
static int add_glob(const char **v, size_t *n, const char *g)
{
    if (*n == MAX_GLOBS) {
        fprintf(stderr, "inferd pull: at most %d --include and %d --exclude\n", MAX_GLOBS,
                MAX_GLOBS);
        return -1;
    }
    v[(*n)++] = g;
    return 0;
}

int cli_pull(int argc, char **argv)
{
    const char *include[MAX_GLOBS], *exclude[MAX_GLOBS], *id = NULL;
    struct hub_opts o = {.include = include, .exclude = exclude};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (strcmp(a, "--include") == 0 && v)
            rc = add_glob(include, &o.n_include, argv[++i]);
        else if (strcmp(a, "--exclude") == 0 && v)
            rc = add_glob(exclude, &o.n_exclude, argv[++i]);
        else if (a[0] != '-' && !id)
            id = a;
        else
            rc = -1, fprintf(stderr, "inferd pull: unknown option or missing value '%s'\n", a);
        if (rc)
            return 2;
    }
    if (!id) {
        fputs("inferd pull: a model id is required (ORG/NAME[@REVISION])\n", stderr);
        return 2;
    }
    struct hub_ref ref;
    struct err e = {0};
    if (hub_parse_ref(id, NULL, &ref, &e) != 0) {
        fprintf(stderr, "inferd pull: %s\n", e.msg);
        return 2;
    }
    char dir[4096];
    if (hub_snapshot(&ref, &o, dir, sizeof dir, &e) != 0) {
        fprintf(stderr, "inferd pull: %s\n", e.msg);
        return 1;
    }
    printf("%s\n", dir);
    return 0;
}
