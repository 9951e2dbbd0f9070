/* main: the inferd executable: picks the subcommand and returns its exit status; -h/--help
 * after any subcommand prints its usage (help.c) and exits 0. */
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "daemon.h"

static int run_tokenize(int argc, char **argv)
{
    return cli_tokenize(argc, argv, stdin, stdout);
}
static int run_detokenize(int argc, char **argv)
{
    return cli_detokenize(argc, argv, stdin, stdout);
}
static int run_run(int argc, char **argv)
{
    return cli_run(argc, argv, stdin, stdout);
}
static void usage_serve(FILE *f)
{
    cli_usage(f, "serve");
}
static int run_serve(int argc, char **argv)
{
    return serve_main(argc, argv, usage_serve);
}
static int run_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_version(stdout);
}
static int run_help(int argc, char **argv)
{
    if (cli_usage(stdout, argc > 1 ? argv[1] : NULL) == 0)
        return 0;
    fprintf(stderr, "inferd help: unknown command '%s'\n", argv[1]);
    return 2;
}

static const struct {
    const char *name, *alias1, *alias2;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"tokenize", NULL, NULL, run_tokenize},
    {"detokenize", NULL, NULL, run_detokenize},
    {"bench", NULL, NULL, cli_bench},
    {"serve", NULL, NULL, run_serve},
    {"run", NULL, NULL, run_run},
    {"batch", NULL, NULL, cli_batch},
    {"pull", NULL, NULL, cli_pull},
    {"version", "--version", "-V", run_version},
    {"help", "--help", "-h", run_help},
};

static bool asks_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

int main(int argc, char **argv)
{
    /* Blocks of 1 MiB and more come from mmap and go back to the system when freed. glibc's
     * default threshold rises to the largest block freed (up to 32 MiB), after which a model
     * load's per-tensor conversions and quantization buffers are carved from the heap and
     * stay resident between the packed weights (bert-base int8: 19 MB of 132; DECISIONS).
     * MALLOC_MMAP_THRESHOLD_ in the environment still wins. */
    if (!getenv("MALLOC_MMAP_THRESHOLD_"))
        mallopt(M_MMAP_THRESHOLD, 1 << 20);
    if (argc < 2) {
        cli_usage(stderr, NULL);
        return 2;
    }
    const char *cmd = argv[1];
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(cmd, commands[i].name) != 0 &&
            !(commands[i].alias1 && strcmp(cmd, commands[i].alias1) == 0) &&
            !(commands[i].alias2 && strcmp(cmd, commands[i].alias2) == 0))
            continue;
        if (asks_help(argc - 1, argv + 1)) {
            cli_usage(stdout, commands[i].name);
            return 0;
        }
        return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "inferd: unknown command '%s'\n", cmd);
    cli_usage(stderr, NULL);
    return 2;
}
