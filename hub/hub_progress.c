/* hub_progress: what a pull shows while it fetches. On a terminal, a bar per file being
 * fetched (name, bytes, rate, ETA), redrawn in place at most ten times a second; otherwise
 * (or HF_HUB_DISABLE_PROGRESS_BARS, or the daemon) a line per file every LINE_EVERY seconds
 * through hub_opts.log. The download threads report under one lock; with hub_opts.watch they
 * also keep its status (the plan, the files being fetched and their bytes) under the watch's
 * own lock, which readers take alone. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "hub_impl.h"

#define SLOTS 16         /* files shown at once (the workers are fewer) */
#define LINE_EVERY 5.0   /* seconds between a file's progress lines */
#define REDRAW_EVERY 0.1 /* seconds between two redraws of the bars */
#define BAR_WIDTH 24

struct slot {
    bool used;
    char name[64];
    long long total, done, start; /* start: bytes there before this run (not in the rate) */
    double t0, last_line;
};

/* What a pull reports for others: files[i] is slot i's when used[i]. */
struct hub_watch {
    pthread_mutex_t mu;
    bool active;
    struct hub_status st;
    bool used[SLOTS];
};
_Static_assert(SLOTS == HUB_STATUS_FILES, "a watch has a file per slot");

struct hub_progress_state {
    pthread_mutex_t mu;
    struct hub_watch *watch;
    enum hub_progress mode;
    void (*log)(void *arg, const char *line);
    void *log_arg;
    struct slot slots[SLOTS];
    int drawn; /* lines of bars on the terminal now */
    double last_draw;
};

struct hub_progress_state *progress_new(const struct hub_opts *o, bool no_bars)
{
    struct hub_progress_state *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    pthread_mutex_init(&p->mu, NULL);
    p->mode = o->progress;
    if (p->mode == HUB_PROGRESS_AUTO)
        p->mode = isatty(STDERR_FILENO) && !no_bars && !o->log ? HUB_PROGRESS_BARS
                                                             : HUB_PROGRESS_LINES;
    p->log = o->log;
    p->log_arg = o->log_arg;
    p->watch = o->watch;
    return p;
}

/* ---- the watch ---- */

struct hub_watch *hub_watch_new(void)
{
    struct hub_watch *w = calloc(1, sizeof *w);
    if (w)
        pthread_mutex_init(&w->mu, NULL);
    return w;
}

void hub_watch_free(struct hub_watch *w)
{
    if (!w)
        return;
    pthread_mutex_destroy(&w->mu);
    free(w);
}

bool hub_watch_get(struct hub_watch *w, struct hub_status *out)
{
    pthread_mutex_lock(&w->mu);
    bool active = w->active;
    if (active) {
        *out = w->st;
        out->n = 0;
        for (int i = 0; i < SLOTS; i++)
            if (w->used[i])
                out->files[out->n++] = w->st.files[i];
    }
    pthread_mutex_unlock(&w->mu);
    return active;
}

void progress_plan(struct hub_progress_state *p, const char *repo, const char *revision,
                   const char *commit, size_t n)
{
    struct hub_watch *w = p->watch;
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    memset(&w->st, 0, sizeof w->st);
    memset(w->used, 0, sizeof w->used);
    snprintf(w->st.repo, sizeof w->st.repo, "%s", repo);
    snprintf(w->st.revision, sizeof w->st.revision, "%s", revision);
    snprintf(w->st.commit, sizeof w->st.commit, "%s", commit);
    w->st.files_total = n;
    w->active = true;
    pthread_mutex_unlock(&w->mu);
}

void progress_file_done(struct hub_progress_state *p)
{
    if (!p->watch)
        return;
    pthread_mutex_lock(&p->watch->mu);
    p->watch->st.files_done++;
    pthread_mutex_unlock(&p->watch->mu);
}

/* Slot's file in the watch: starts (name given) or moves on (bytes added) or ends. */
static void watch_slot(struct hub_watch *w, int slot, const struct slot *s, const char *name)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    struct hub_file_status *f = &w->st.files[slot];
    if (name)
        snprintf(f->name, sizeof f->name, "%s", name);
    f->done = s->done;
    f->total = s->total;
    w->used[slot] = s->used;
    pthread_mutex_unlock(&w->mu);
}

/* ---- the display ---- */

/* "12.3 MB" */
static void human(double bytes, char *out, size_t cap)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
    int u = 0;
    while (bytes >= 1000 && u < 4)
        bytes /= 1000, u++;
    snprintf(out, cap, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}

/* "NAME  12.3 MB / 40.0 MB  5.1 MB/s  ETA 5 s" (with a bar when bar) */
static void describe(const struct slot *s, bool bar, char *out, size_t cap)
{
    double dt = now_seconds() - s->t0;
    double rate = dt > 0 ? (double)(s->done - s->start) / dt : 0;
    char done[32], total[32], speed[32], eta[32] = "";
    human((double)s->done, done, sizeof done);
    human((double)s->total, total, sizeof total);
    human(rate, speed, sizeof speed);
    if (rate > 0 && s->total > s->done)
        snprintf(eta, sizeof eta, "  ETA %.0f s", (double)(s->total - s->done) / rate);
    char bars[BAR_WIDTH + 3] = "";
    if (bar) {
        int fill = s->total > 0 ? (int)(BAR_WIDTH * s->done / s->total) : 0;
        bars[0] = '[';
        for (int i = 0; i < BAR_WIDTH; i++)
            bars[i + 1] = i < fill ? '#' : '.';
        bars[BAR_WIDTH + 1] = ']';
        bars[BAR_WIDTH + 2] = 0;
    }
    snprintf(out, cap, "%-32.32s %s %s / %s  %s/s%s", s->name, bars, done, total, speed, eta);
}

static void emit(struct hub_progress_state *p, const char *line)
{
    if (p->log)
        p->log(p->log_arg, line);
    else
        fprintf(stderr, "%s\n", line);
}

/* Redraws the bars in place (cursor up over the last drawing). */
static void draw(struct hub_progress_state *p, bool force)
{
    double now = now_seconds();
    if (!force && now - p->last_draw < REDRAW_EVERY)
        return;
    p->last_draw = now;
    if (p->drawn)
        fprintf(stderr, "\033[%dA", p->drawn);
    int n = 0;
    for (int i = 0; i < SLOTS; i++) {
        if (!p->slots[i].used)
            continue;
        char line[256];
        describe(&p->slots[i], true, line, sizeof line);
        fprintf(stderr, "\r\033[K%s\n", line);
        n++;
    }
    for (int i = n; i < p->drawn; i++)
        fprintf(stderr, "\r\033[K\n");
    if (p->drawn > n)
        fprintf(stderr, "\033[%dA", p->drawn - n);
    p->drawn = n;
    fflush(stderr);
}

int progress_start(struct hub_progress_state *p, const char *name, long long total,
                   long long have)
{
    pthread_mutex_lock(&p->mu);
    int slot = -1;
    for (int i = 0; i < SLOTS && slot < 0; i++)
        if (!p->slots[i].used)
            slot = i;
    if (slot >= 0) {
        struct slot *s = &p->slots[slot];
        const char *base = strrchr(name, '/');
        snprintf(s->name, sizeof s->name, "%s", strlen(name) < 32 || !base ? name : base + 1);
        s->used = true;
        s->total = total;
        s->done = s->start = have;
        s->t0 = s->last_line = now_seconds();
        watch_slot(p->watch, slot, s, name);
    }
    if (p->mode == HUB_PROGRESS_BARS)
        draw(p, true);
    pthread_mutex_unlock(&p->mu);
    return slot;
}

void progress_add(struct hub_progress_state *p, int slot, long long bytes)
{
    if (slot < 0)
        return;
    pthread_mutex_lock(&p->mu);
    struct slot *s = &p->slots[slot];
    s->done += bytes;
    watch_slot(p->watch, slot, s, NULL);
    double now = now_seconds();
    if (p->mode == HUB_PROGRESS_BARS) {
        draw(p, false);
    } else if (p->mode == HUB_PROGRESS_LINES && now - s->last_line >= LINE_EVERY) {
        s->last_line = now;
        char line[256], text[300];
        describe(s, false, line, sizeof line);
        snprintf(text, sizeof text, "fetching %s", line);
        emit(p, text);
    }
    pthread_mutex_unlock(&p->mu);
}

void progress_end(struct hub_progress_state *p, int slot)
{
    if (slot < 0)
        return;
    pthread_mutex_lock(&p->mu);
    p->slots[slot].used = false;
    watch_slot(p->watch, slot, &p->slots[slot], NULL);
    if (p->mode == HUB_PROGRESS_BARS)
        draw(p, true);
    pthread_mutex_unlock(&p->mu);
}

void progress_log(struct hub_progress_state *p, const char *fmt, ...)
{
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&p->mu);
    if (p->mode == HUB_PROGRESS_BARS && p->drawn) { /* the line goes above the bars */
        fprintf(stderr, "\033[%dA\r\033[J", p->drawn);
        p->drawn = 0;
    }
    if (p->mode != HUB_PROGRESS_NONE || p->log)
        emit(p, line);
    if (p->mode == HUB_PROGRESS_BARS)
        draw(p, true);
    pthread_mutex_unlock(&p->mu);
}

void progress_free(struct hub_progress_state *p)
{
    if (!p)
        return;
    if (p->watch) {
        pthread_mutex_lock(&p->watch->mu);
        p->watch->active = false;
        pthread_mutex_unlock(&p->watch->mu);
    }
    pthread_mutex_destroy(&p->mu);
    free(p);
}
