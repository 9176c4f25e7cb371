/* util.h: allocation helpers that abort on OOM, container_of, small string helpers. */
#ifndef SP_CORE_UTIL_H
#define SP_CORE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define SP_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))
#define SP_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SP_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SP_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Allocators that abort on OOM: every cap is checked before allocating, so OOM is a bug. */
void *sp_xmalloc(size_t n);
void *sp_xcalloc(size_t nmemb, size_t n);
void *sp_xrealloc(void *p, size_t n);
char *sp_xstrdup(const char *s);
char *sp_xstrndup(const char *s, size_t n);

/* Fills buf with n cryptographically random bytes (gnutls_rnd). Any thread. */
void sp_random_bytes(void *buf, size_t n);

/* Returns a uniformly distributed random 64-bit value (non-cryptographic quality is fine). */
uint64_t sp_random_u64(void);

#endif
