/* cpus: the cores this process may use, as container runtimes and taskset restrict them (its
 * CPU affinity and its cgroup's CPU quota, v2 or v1), and how `threads: 0` shares them among
 * every model's workers instead of giving each model all of them. */
#ifndef INFERD_CPUS_H
#define INFERD_CPUS_H

#include "config.h"

/* min(CPUs in the affinity mask, the cgroup quota rounded up), at least 1. */
int cpus_usable(void);

/* A cgroup quota in whole cores, rounded up: v2's cpu.max text ("max 100000", "150000
 * 100000") or v1's quota and period (quota -1: none). 0 when there is no limit. */
int cpus_quota_v2(const char *cpu_max);
int cpus_quota_v1(long quota_us, long period_us);

/* Gives every model whose threads is 0 its share of `cores`: what the models with a thread
 * count leave, split evenly among the workers of the others, at least 1 thread each. A model
 * whose task single_worker(task) names (generation) runs one worker, whatever `workers`. */
void cpus_share(struct config *cfg, int cores, bool (*single_worker)(const char *task));

#endif
