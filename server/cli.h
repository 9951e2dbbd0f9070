/* cli: the offline subcommands of the inferd executable (no server involved). */
#ifndef INFERD_CLI_H
#define INFERD_CLI_H

#include <stdio.h>

/* `inferd tokenize` and `inferd detokenize`: JSON lines in, JSON lines out.
 * Return the process exit status. */
int cli_tokenize(int argc, char **argv, FILE *in, FILE *out);
int cli_detokenize(int argc, char **argv, FILE *in, FILE *out);

#endif
