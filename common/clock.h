/* clock: the one monotonic clock every part of inferd times things with. */
#ifndef INFERD_CLOCK_H
#define INFERD_CLOCK_H

/* Seconds on CLOCK_MONOTONIC (an arbitrary origin; only differences mean anything). */
double now_seconds(void);

#endif
