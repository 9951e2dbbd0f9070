/* server: the running daemon as its parts see it (serve.c owns it): its metrics, its config,
 * whether it is ready or draining, and its registry. */
#ifndef INFERD_SERVER_H
#define INFERD_SERVER_H

#include <stdbool.h>

#include "config.h"

struct server;
struct metrics;
struct registry;

struct metrics *server_metrics(struct server *s);
const struct server_config *server_config(const struct server *s);
/* Every model loaded (and none failed) and not draining. */
bool server_ready(struct server *s);
bool server_draining(const struct server *s);
/* Unix time the server started. */
double server_started_at(const struct server *s);
/* The server's registry (registry.h). */
struct registry *server_registry(struct server *s);

#endif
