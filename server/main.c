/* main: the inferd executable: picks the subcommand and returns its exit status. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fputs("usage: inferd COMMAND [OPTIONS]\n"
          "\n"
          "commands:\n"
          "  tokenize   --tokenizer DIR [--no-special] [--pair]\n"
          "             JSON lines {\"text\": ..., \"pair\": ...} on stdin ->\n"
          "             {\"ids\", \"tokens\", \"offsets\", \"type_ids\"} lines on stdout\n"
          "  detokenize --tokenizer DIR [--keep-special]\n"
          "             JSON lines {\"ids\": [...]} on stdin -> {\"text\": ...} lines\n"
          "  bench      --model DIR [--batch B] [--seq S] [--threads T] [--dtype fp32|bf16|int8]\n"
          "             [--min-seconds N]: forward-pass speed, one JSON line\n"
          "  run        --model DIR --task TASK [--dtype D] [--threads T] [--batch N]\n"
          "             JSON lines {\"inputs\": ..., \"parameters\": {...}} on stdin ->\n"
          "             the pipeline's result per line (as transformers.pipeline(TASK))\n"
          "  serve      --config FILE | --model DIR --task TASK [--port P] [--host H] ...\n"
          "             the HTTP daemon (see `inferd serve --help`)\n"
          "  help       this text\n",
          f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "tokenize") == 0)
        return cli_tokenize(argc - 1, argv + 1, stdin, stdout);
    if (strcmp(cmd, "detokenize") == 0)
        return cli_detokenize(argc - 1, argv + 1, stdin, stdout);
    if (strcmp(cmd, "bench") == 0)
        return cli_bench(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0)
        return cli_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "run") == 0)
        return cli_run(argc - 1, argv + 1, stdin, stdout);
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "inferd: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
