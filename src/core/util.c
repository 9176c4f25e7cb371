#include "core/util.h"

#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    fprintf(stderr, "level=error area=core msg=\"out of memory\" bytes=%zu\n", n);
    abort();
}

void *sp_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL)
        oom(n);
    return p;
}

void *sp_xcalloc(size_t nmemb, size_t n)
{
    void *p = calloc(nmemb ? nmemb : 1, n ? n : 1);

    if (p == NULL)
        oom(nmemb * n);
    return p;
}

void *sp_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    if (q == NULL)
        oom(n);
    return q;
}

char *sp_xstrdup(const char *s)
{
    return sp_xstrndup(s, strlen(s));
}

char *sp_xstrndup(const char *s, size_t n)
{
    char *p = sp_xmalloc(n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void sp_random_bytes(void *buf, size_t n)
{
    if (gnutls_rnd(GNUTLS_RND_RANDOM, buf, n) != 0)
        abort(); /* the system RNG failing is not recoverable */
}

uint64_t sp_random_u64(void)
{
    /* Per-thread xorshift seeded from the system RNG: cheap enough for load balancing. */
    static _Thread_local uint64_t state;
    uint64_t x;

    if (state == 0)
        sp_random_bytes(&state, sizeof(state));
    if (state == 0)
        state = 0x9e3779b97f4a7c15ULL;
    x = state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    state = x;
    return x;
}
