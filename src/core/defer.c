#include "core/defer.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct sp_defer *d = SP_CONTAINER_OF(w, struct sp_defer, prepare);

    (void)loop;
    (void)revents;
    sp_defer_run(d);
}

void sp_defer_init(struct sp_defer *d, struct ev_loop *loop)
{
    memset(d, 0, sizeof(*d));
    d->loop = loop;
    ev_prepare_init(&d->prepare, on_prepare);
    ev_prepare_start(loop, &d->prepare);
    /* The prepare watcher alone must not keep the loop alive. */
    ev_unref(loop);
}

void sp_defer_add(struct sp_defer *d, sp_defer_fn fn, void *arg)
{
    if (d->count == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->items = sp_xrealloc(d->items, d->cap * sizeof(*d->items));
    }
    d->items[d->count].fn = fn;
    d->items[d->count].arg = arg;
    d->count++;
}

void sp_defer_run(struct sp_defer *d)
{
    /* Items may queue more items; index-based so growth is safe. */
    for (size_t i = 0; i < d->count; i++)
        d->items[i].fn(d->items[i].arg);
    d->count = 0;
}

void sp_defer_fini(struct sp_defer *d)
{
    if (d->loop == NULL)
        return;
    sp_defer_run(d);
    ev_ref(d->loop);
    ev_prepare_stop(d->loop, &d->prepare);
    free(d->items);
    d->items = NULL;
    d->loop = NULL;
}
