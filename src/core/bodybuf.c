#include "core/bodybuf.h"
#include "core/util.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* 16 KiB keeps per-chunk overhead small relative to QUIC packets while bounding slack. */
#define CHUNK_BYTES 16384

struct sp_bodybuf_chunk {
    struct sp_bodybuf_chunk *next; /* owned */
    size_t len;                    /* bytes written into data */
    uint8_t data[CHUNK_BYTES];
};

/* Freed chunks are kept per thread for reuse: a proxied response needs at least one chunk on
 * each side, and 16 KiB mallocs are the slow path of glibc's allocator. Bounded, so a burst
 * does not pin memory forever. */
#define FREELIST_MAX 64

static _Thread_local struct sp_bodybuf_chunk *freelist;
static _Thread_local size_t freelist_len;

static struct sp_bodybuf_chunk *chunk_get(void)
{
    struct sp_bodybuf_chunk *c = freelist;

    if (c == NULL)
        return sp_xmalloc(sizeof(*c));
    freelist = c->next;
    freelist_len--;
    return c;
}

static void chunk_put(struct sp_bodybuf_chunk *c)
{
    if (freelist_len >= FREELIST_MAX) {
        free(c);
        return;
    }
    c->next = freelist;
    freelist = c;
    freelist_len++;
}

void sp_bodybuf_init(struct sp_bodybuf *b)
{
    memset(b, 0, sizeof(*b));
}

void sp_bodybuf_fini(struct sp_bodybuf *b)
{
    struct sp_bodybuf_chunk *c = b->head;

    while (c != NULL) {
        struct sp_bodybuf_chunk *next = c->next;

        chunk_put(c);
        c = next;
    }
    memset(b, 0, sizeof(*b));
}

void sp_bodybuf_append(struct sp_bodybuf *b, const uint8_t *data, size_t n)
{
    while (n > 0) {
        struct sp_bodybuf_chunk *c = b->tail;
        size_t room, take;

        if (c == NULL || c->len == CHUNK_BYTES) {
            c = chunk_get();
            c->next = NULL;
            c->len = 0;
            if (b->tail != NULL)
                b->tail->next = c;
            else
                b->head = c;
            b->tail = c;
            if (b->rd == NULL) {
                b->rd = c;
                b->rd_off = 0;
            }
        }
        room = CHUNK_BYTES - c->len;
        take = SP_MIN(room, n);
        memcpy(c->data + c->len, data, take);
        c->len += take;
        data += take;
        n -= take;
        b->written += take;
    }
}

size_t sp_bodybuf_peek(const struct sp_bodybuf *b, struct sp_bodybuf_vec *vec, size_t veccnt)
{
    const struct sp_bodybuf_chunk *c = b->rd;
    size_t off = b->rd_off;
    size_t n = 0;

    while (c != NULL && n < veccnt) {
        if (off < c->len) {
            vec[n].base = c->data + off;
            vec[n].len = c->len - off;
            n++;
        }
        c = c->next;
        off = 0;
    }
    return n;
}

void sp_bodybuf_advance(struct sp_bodybuf *b, size_t n)
{
    assert(n <= sp_bodybuf_pending(b));
    b->read += n;
    while (n > 0) {
        size_t take;

        if (b->rd_off == b->rd->len) {
            /* n <= pending guarantees a next chunk holds the remaining bytes. */
            b->rd = b->rd->next;
            b->rd_off = 0;
            continue;
        }
        take = SP_MIN(b->rd->len - b->rd_off, n);
        b->rd_off += take;
        n -= take;
    }
}

void sp_bodybuf_rewind(struct sp_bodybuf *b)
{
    b->rd = b->head;
    b->rd_off = b->head_off;
    b->read = b->acked;
}

void sp_bodybuf_ack(struct sp_bodybuf *b, uint64_t n)
{
    assert(n <= b->read - b->acked);
    b->acked += n;
    while (n > 0) {
        struct sp_bodybuf_chunk *c = b->head;
        size_t avail = c->len - b->head_off;
        size_t take = (size_t)SP_MIN((uint64_t)avail, n);

        b->head_off += take;
        n -= take;
        /* A chunk is freed once fully acknowledged and no longer the append target. */
        if (b->head_off == CHUNK_BYTES) {
            b->head = c->next;
            b->head_off = 0;
            if (b->rd == c) {
                b->rd = c->next;
                b->rd_off = 0;
            }
            if (b->tail == c)
                b->tail = NULL;
            chunk_put(c);
        }
    }
}

void sp_bodybuf_thread_cleanup(void)
{
    while (freelist != NULL) {
        struct sp_bodybuf_chunk *c = freelist;

        freelist = c->next;
        free(c);
    }
    freelist_len = 0;
}
