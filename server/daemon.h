/* daemon: server/'s one entry for the executable (cli/main.c): `inferd serve`, the HTTP daemon
 * (serve.c): reads the options and the config, loads the models, serves until SIGTERM or
 * SIGINT, drains and returns the exit status. */
#ifndef INFERD_DAEMON_H
#define INFERD_DAEMON_H

#include <stdio.h>

#include "config.h"
#include "err.h"

/* argv[0] is "serve"; usage prints the subcommand's options (for -h and bad options). */
int serve_main(int argc, char **argv, void (*usage)(FILE *f));

/* The daemon in-process, for `inferd batch` (cli/batch.c): serves cfg (taken over, freed here
 * in every case) on 127.0.0.1 at a free port (*port) with a random API key (*key, valid until
 * the stop; every request must send it as a bearer token), request_timeout_ms a day, only
 * errors logged. Its models are loaded when it returns; NULL with e set when a model fails to
 * load or the port cannot be bound. Signals are left to the caller. */
struct local_server;
struct local_server *serve_local_start(struct config *cfg, int *port, const char **key,
                                       struct err *e);
/* Waits a few seconds for the calls still open to end (then ends them), stops and frees
 * (NULL: nothing). */
void serve_local_stop(struct local_server *l);

#endif
