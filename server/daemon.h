/* daemon: server/'s one entry for the executable (cli/main.c): `inferd serve`, the HTTP daemon
 * (serve.c): reads the options and the config, loads the models, serves until SIGTERM or
 * SIGINT, drains and returns the exit status. */
#ifndef INFERD_DAEMON_H
#define INFERD_DAEMON_H

#include <stdio.h>

/* argv[0] is "serve"; usage prints the subcommand's options (for -h and bad options). */
int serve_main(int argc, char **argv, void (*usage)(FILE *f));

#endif
