/* client_gone: whether the client of a waiting request has left, for the batcher and the
 * generation scheduler (libmicrohttpd does not watch suspended connections). */
#ifndef INFERD_CLIENT_GONE_H
#define INFERD_CLIENT_GONE_H

#include <stdbool.h>

/* True when the connection on fd was reset or failed (or fd is no open socket). A client that
 * only closed its sending side (shutdown SHUT_WR, or close() before any answer was sent: the
 * two look the same from here) is still waiting for its answer: false. fd < 0: false. */
bool client_gone(int fd);

#endif
