/* client_gone: see client_gone.h. A FIN from the client sets only POLLIN/POLLRDHUP; a reset, or
 * a FIN in both directions, sets POLLHUP (the socket stays closed, so the answer does not
 * depend on whether anyone consumed the error yet); a pending socket error sets POLLERR. */
#include "client_gone.h"

#include <poll.h>

bool client_gone(int fd)
{
    if (fd < 0)
        return false;
    struct pollfd p = {.fd = fd, .events = 0};
    if (poll(&p, 1, 0) <= 0)
        return false;
    return (p.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0;
}
