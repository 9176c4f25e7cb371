/* bodybuf.h: a bounded, chunked byte queue for message bodies in flight between a client stream
 * and a backend stream.
 *
 * Bytes are copied in once (sp_bodybuf_append), handed out by reference to the sending protocol
 * library (sp_bodybuf_peek + sp_bodybuf_advance), and freed only when the peer has acknowledged
 * them (sp_bodybuf_ack), because nghttp3 may retransmit from those references until then.
 * Invariant: acked <= read <= written. The caller bounds the size (flow-control windows), the
 * buffer itself never refuses bytes. Single-threaded: owned by one worker. */
#ifndef SP_CORE_BODYBUF_H
#define SP_CORE_BODYBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sp_bodybuf_chunk;

struct sp_bodybuf {
    struct sp_bodybuf_chunk *head; /* owned; oldest chunk still holding unacked bytes */
    struct sp_bodybuf_chunk *tail; /* borrowed; newest chunk, where appends go */
    size_t head_off;               /* offset in head of the first unacked byte */
    struct sp_bodybuf_chunk *rd;   /* borrowed; chunk holding the next byte to hand out */
    size_t rd_off;                 /* offset in rd of that byte */
    uint64_t written;              /* total bytes appended */
    uint64_t read;                 /* total bytes handed out */
    uint64_t acked;                /* total bytes acknowledged and freed */
    bool eof;                      /* no more bytes will be appended */
};

struct sp_bodybuf_vec {
    const uint8_t *base;
    size_t len;
};

/* Initialises an empty buffer. */
void sp_bodybuf_init(struct sp_bodybuf *b);

/* Frees every chunk. A zeroed buffer is fine. */
void sp_bodybuf_fini(struct sp_bodybuf *b);

/* Frees the calling thread's cache of spare chunks. Call when a thread that used bodybufs
 * ends (the cache is per thread and otherwise lives until process exit). */
void sp_bodybuf_thread_cleanup(void);

/* Copies n bytes to the end. */
void sp_bodybuf_append(struct sp_bodybuf *b, const uint8_t *data, size_t n);

/* Fills up to veccnt vectors with bytes not yet handed out, without consuming them.
 * Returns the number of vectors filled (0 when nothing is pending). */
size_t sp_bodybuf_peek(const struct sp_bodybuf *b, struct sp_bodybuf_vec *vec, size_t veccnt);

/* Marks n pending bytes as handed out. n must not exceed the pending count. */
void sp_bodybuf_advance(struct sp_bodybuf *b, size_t n);

/* Hands out again every byte still held: the read position goes back to the oldest one not yet
 * freed (a replay of what was sent, for a retry). */
void sp_bodybuf_rewind(struct sp_bodybuf *b);

/* Frees the n oldest handed-out bytes. n must not exceed read - acked. */
void sp_bodybuf_ack(struct sp_bodybuf *b, uint64_t n);

/* Bytes appended but not yet handed out. */
static inline uint64_t sp_bodybuf_pending(const struct sp_bodybuf *b)
{
    return b->written - b->read;
}

/* Bytes held in memory (appended but not yet acknowledged). */
static inline uint64_t sp_bodybuf_held(const struct sp_bodybuf *b)
{
    return b->written - b->acked;
}

#endif
