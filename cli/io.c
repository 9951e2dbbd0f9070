/* io: the JSON-lines plumbing the offline subcommands share: reading a line of any
 * length, writing one compact JSON value per line, and the {"error", "error_type"} line. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

char *cli_read_line(FILE *in, char **buf, size_t *cap, size_t *len)
{
    ssize_t n = getline(buf, cap, in);
    if (n < 0)
        return NULL;
    if (n > 0 && (*buf)[n - 1] == '\n')
        (*buf)[--n] = '\0';
    *len = (size_t)n;
    return *buf;
}

void cli_print_json(FILE *out, const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    if (s) {
        fputs(s, out);
        fputc('\n', out);
        free(s);
    }
    fflush(out);
}

void cli_print_error(FILE *out, const char *msg, const char *type)
{
    json_t *j = json_pack("{s:s, s:s}", "error", msg, "error_type", type);
    cli_print_json(out, j);
    json_decref(j);
}
