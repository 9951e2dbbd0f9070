/* cpus: see cpus.h. */
#include "cpus.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


int cpus_quota_v2(const char *cpu_max)
{
    long long quota = 0, period = 0;
    if (!cpu_max || strncmp(cpu_max, "max", 3) == 0 ||
        sscanf(cpu_max, "%lld %lld", &quota, &period) != 2 || quota <= 0 || period <= 0)
        return 0;
    return (int)((quota + period - 1) / period);
}

int cpus_quota_v1(long quota_us, long period_us)
{
    if (quota_us <= 0 || period_us <= 0)
        return 0;
    return (int)((quota_us + period_us - 1) / period_us);
}

static char *read_small(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *text = calloc(1, 256);
    if (text && !fgets(text, 256, f)) {
        free(text);
        text = NULL;
    }
    fclose(f);
    return text;
}

/* The process's cgroup path for a controller ("" for v2's unified line), or NULL. */
static char *cgroup_path(const char *controller)
{
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f)
        return NULL;
    char line[512], *found = NULL;
    while (!found && fgets(line, sizeof line, f)) {
        char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
        if (!b)
            continue;
        *b = '\0';
        const char *ctrls = a + 1;
        bool match = *controller ? strstr(ctrls, controller) != NULL : *ctrls == '\0';
        if (match) {
            b[1 + strcspn(b + 1, "\n")] = '\0';
            found = strdup(b + 1);
        }
    }
    fclose(f);
    return found;
}

/* The smallest quota of the cgroup and its ancestors, under mount (v2 cpu.max, or v1). */
static int quota_walk(const char *mount, const char *path, bool v2)
{
    int best = 0;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    for (;;) {
        char file[1200];
        int q = 0;
        if (v2) {
            snprintf(file, sizeof file, "%s%s/cpu.max", mount, dir);
            char *t = read_small(file);
            q = cpus_quota_v2(t);
            free(t);
        } else {
            snprintf(file, sizeof file, "%s%s/cpu.cfs_quota_us", mount, dir);
            char *tq = read_small(file);
            snprintf(file, sizeof file, "%s%s/cpu.cfs_period_us", mount, dir);
            char *tp = read_small(file);
            q = tq && tp ? cpus_quota_v1(atol(tq), atol(tp)) : 0;
            free(tq);
            free(tp);
        }
        if (q > 0 && (best == 0 || q < best))
            best = q;
        char *slash = strrchr(dir, '/');
        if (!slash || dir[0] == '\0' || strcmp(dir, "/") == 0)
            break;
        *slash = '\0';
    }
    return best;
}

static int cgroup_quota(void)
{
    char *p = cgroup_path("");
    int q = p ? quota_walk("/sys/fs/cgroup", p, true) : 0;
    free(p);
    if (q == 0 && (p = cgroup_path("cpu"))) {
        q = quota_walk("/sys/fs/cgroup/cpu", p, false);
        if (q == 0)
            q = quota_walk("/sys/fs/cgroup/cpu,cpuacct", p, false);
        free(p);
    }
    return q;
}

int cpus_usable(void)
{
    cpu_set_t set;
    int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
    if (n <= 0)
        n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    int q = cgroup_quota();
    if (q > 0 && q < n)
        n = q;
    return n > 0 ? n : 1;
}

void cpus_share(struct config *cfg, int cores, bool (*single_worker)(const char *task))
{
    long named = 0, auto_workers = 0;
    for (size_t i = 0; i < cfg->n_models; i++) {
        const struct model_config *m = &cfg->models[i];
        long w = single_worker(m->task) ? 1 : m->workers > 0 ? m->workers : 1;
        if (m->threads > 0)
            named += w * m->threads;
        else
            auto_workers += w;
    }
    if (auto_workers == 0)
        return;
    long left = cores - named, each = left / auto_workers;
    for (size_t i = 0; i < cfg->n_models; i++)
        if (cfg->models[i].threads <= 0)
            cfg->models[i].threads = each > 0 ? (int)each : 1;
}
