/* defer.h: deferred destruction. Objects are never freed inside their own callbacks: they are
 * queued here and freed at the end of the loop turn, when no callback is on the stack.
 * One per worker loop; single-threaded. */
#ifndef SP_CORE_DEFER_H
#define SP_CORE_DEFER_H

#include <ev.h>
#include <stddef.h>

typedef void (*sp_defer_fn)(void *arg);

struct sp_defer_item {
    sp_defer_fn fn;
    void *arg;
};

struct sp_defer {
    struct ev_loop *loop;        /* borrowed */
    ev_prepare prepare;          /* runs the queue before the loop blocks */
    struct sp_defer_item *items; /* owned array */
    size_t count;
    size_t cap;
};

/* Starts the deferral queue on loop. */
void sp_defer_init(struct sp_defer *d, struct ev_loop *loop);

/* Queues fn(arg) for the end of this loop turn. */
void sp_defer_add(struct sp_defer *d, sp_defer_fn fn, void *arg);

/* Runs whatever is queued now. */
void sp_defer_run(struct sp_defer *d);

/* Runs the queue and stops the watcher. Zeroed is fine. */
void sp_defer_fini(struct sp_defer *d);

#endif
