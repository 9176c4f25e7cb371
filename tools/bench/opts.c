/* opts.c: spooky-bench's command line: options, URLs, the request field lists and the body. */
#include "bench.h"

#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_BODY_BYTES ((size_t)1 << 30) /* -d files are held in memory once, shared */
#define MAX_EXTRA_FIELDS 64

enum {
    OPT_RATE = 256,
    OPT_WARMUP,
    OPT_INSECURE,
    OPT_CA,
    OPT_SNI,
    OPT_JSON,
    OPT_TIMEOUT,
    OPT_MAX_TIME,
    OPT_VERSION,
    OPT_CONN_REQUESTS,
    OPT_HOLD,
    OPT_CONNECT_BURST,
};

static const char usage[] =
    "usage: spooky-bench [options] URL...\n"
    "  -n N               requests in total (default 1); or\n"
    "  -D SECONDS         run for a duration instead\n"
    "  -c CONNS           connections (default 1), spread over the threads\n"
    "  -m STREAMS         concurrent requests per connection (default 1)\n"
    "  -t THREADS         threads, each with its own loop and connections (default 1)\n"
    "  -H 'name: value'   extra request field (repeatable; replaces a default of that name)\n"
    "  -d FILE            request body: every request is a POST of FILE\n"
    "  --rate R           open loop: R requests/s in total at fixed intervals; latency counts\n"
    "                     from the scheduled time (no coordinated omission)\n"
    "  --warm-up SECONDS  run this long before measuring\n"
    "  --timeout SECONDS  per request and per handshake (default 30)\n"
    "  --max-time SECONDS hard bound on a -n run (default 3600)\n"
    "  --conn-requests N  close each connection after N requests and open a new one\n"
    "                     (N=1: one handshake per request, for handshakes/s)\n"
    "  --hold SECONDS     at the end, keep the connections open and idle this long\n"
    "  --connect-burst N  at most N handshakes under way at once per thread (default: all)\n"
    "  --insecure         do not verify the server certificate\n"
    "  --ca FILE          trust these CA certificates (PEM) instead of the system store\n"
    "  --sni NAME         TLS server name and verification name (default: the URL host)\n"
    "  --json             print one JSON object instead of the text report\n"
    "  -h, --help, --version\n"
    "URLs are https://HOST[:PORT]/PATH; all must name the same HOST:PORT. HTTP/3 only.\n";

static const struct option long_opts[] = {
    {"rate", required_argument, NULL, OPT_RATE},
    {"warm-up", required_argument, NULL, OPT_WARMUP},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"ca", required_argument, NULL, OPT_CA},
    {"sni", required_argument, NULL, OPT_SNI},
    {"json", no_argument, NULL, OPT_JSON},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"max-time", required_argument, NULL, OPT_MAX_TIME},
    {"conn-requests", required_argument, NULL, OPT_CONN_REQUESTS},
    {"hold", required_argument, NULL, OPT_HOLD},
    {"connect-burst", required_argument, NULL, OPT_CONNECT_BURST},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* Parses a number in [min, max]; whole numbers only when ret_u is given. */
static int parse_num(const char *s, double min, double max, double *ret_d, uint64_t *ret_u)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= min) || !(v <= max))
        return -EINVAL;
    if (ret_u != NULL) {
        if (v != (double)(uint64_t)v)
            return -EINVAL;
        *ret_u = (uint64_t)v;
    } else {
        *ret_d = v;
    }
    return 0;
}

static int parse_unsigned(const char *s, unsigned *ret)
{
    uint64_t v;
    int rv = parse_num(s, 1, 1e6, NULL, &v);

    if (rv == 0)
        *ret = (unsigned)v;
    return rv;
}

/* "name: value" into o->extra; the name is lowercased in place (HTTP/3 field names are). */
static int add_field(struct bench_opts *o, char *arg)
{
    char *sep = arg[0] != '\0' ? strchr(arg + 1, ':') : NULL;
    char *value;

    if (sep == NULL || sep == arg || o->nextra == MAX_EXTRA_FIELDS)
        return -EINVAL;
    for (char *p = arg; p < sep; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    for (value = sep + 1; *value == ' ' || *value == '\t'; value++)
        ;
    o->extra = sp_xrealloc(o->extra, (o->nextra + 1) * sizeof(*o->extra));
    o->extra[o->nextra++] = (struct sp_field){(const uint8_t *)arg, (size_t)(sep - arg),
                                              (const uint8_t *)value, strlen(value)};
    return 0;
}

/* Reads -d FILE into memory. */
static int load_body(struct bench_opts *o, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    size_t off = 0;
    int rv = 0;

    if (fd == -1 || fstat(fd, &st) == -1 || (size_t)st.st_size > MAX_BODY_BYTES) {
        fprintf(stderr, "spooky-bench: %s: %s\n", path, fd == -1 ? strerror(errno) : "too big");
        if (fd != -1)
            (void)close(fd);
        return -EINVAL;
    }
    o->body_len = (size_t)st.st_size;
    o->body = sp_xmalloc(o->body_len + 1);
    while (off < o->body_len) {
        ssize_t n = read(fd, o->body + off, o->body_len - off);

        if (n <= 0) {
            fprintf(stderr, "spooky-bench: %s: short read\n", path);
            rv = -EINVAL;
            break;
        }
        off += (size_t)n;
    }
    (void)close(fd);
    if (asprintf(&o->body_len_str, "%zu", o->body_len) < 0)
        abort(); /* out of memory, like sp_xmalloc */
    return rv;
}

/* Applies one option. */
static int apply_opt(struct bench_opts *o, int opt, char *arg)
{
    switch (opt) {
    case 'n':
        return parse_num(arg, 1, 1e12, NULL, &o->requests);
    case 'D':
        return parse_num(arg, 0.001, 1e6, &o->duration_s, NULL);
    case 'c':
        return parse_unsigned(arg, &o->conns);
    case 'm':
        return parse_unsigned(arg, &o->streams);
    case 't':
        return parse_unsigned(arg, &o->threads);
    case 'H':
        return add_field(o, arg);
    case 'd':
        return load_body(o, arg);
    case OPT_RATE:
        return parse_num(arg, 0.001, 1e8, &o->rate, NULL);
    case OPT_WARMUP:
        return parse_num(arg, 0, 1e6, &o->warmup_s, NULL);
    case OPT_TIMEOUT:
        return parse_num(arg, 0.001, 1e6, &o->timeout_s, NULL);
    case OPT_MAX_TIME:
        return parse_num(arg, 0.001, 1e7, &o->max_time_s, NULL);
    case OPT_CONN_REQUESTS:
        return parse_num(arg, 1, 1e12, NULL, &o->conn_requests);
    case OPT_HOLD:
        return parse_num(arg, 0, 1e6, &o->hold_s, NULL);
    case OPT_CONNECT_BURST:
        return parse_unsigned(arg, &o->connect_burst);
    case OPT_INSECURE:
        o->insecure = true;
        return 0;
    case OPT_CA:
        o->ca = arg;
        return 0;
    case OPT_SNI:
        o->sni = arg;
        return 0;
    case OPT_JSON:
        o->json = true;
        return 0;
    default:
        return -EINVAL;
    }
}

/* Splits https://HOST[:PORT]/PATH; ret_host and ret_port are allocated, ret_path points into
 * url (NULL: "/"). */
static int split_url(const char *url, char **ret_auth, char **ret_host, char **ret_port,
                     const char **ret_path)
{
    const char *auth = url + 8, *path, *port = NULL, *host_end;

    if (strncmp(url, "https://", 8) != 0)
        return -EINVAL;
    path = auth + strcspn(auth, "/?");
    if (auth[0] == '[') { /* IPv6 literal */
        host_end = memchr(auth, ']', (size_t)(path - auth));
        if (host_end == NULL)
            return -EINVAL;
        port = host_end[1] == ':' ? host_end + 2 : NULL;
        *ret_host = sp_xstrndup(auth + 1, (size_t)(host_end - auth - 1));
    } else {
        host_end = memchr(auth, ':', (size_t)(path - auth));
        port = host_end != NULL ? host_end + 1 : NULL;
        host_end = host_end != NULL ? host_end : path;
        *ret_host = sp_xstrndup(auth, (size_t)(host_end - auth));
    }
    *ret_port = port != NULL ? sp_xstrndup(port, (size_t)(path - port)) : sp_xstrdup("443");
    *ret_auth = sp_xstrndup(auth, (size_t)(path - auth));
    *ret_path = *path != '\0' ? path : NULL;
    return (*ret_host)[0] != '\0' && (*ret_port)[0] != '\0' ? 0 : -EINVAL;
}

/* The :path for what follows the authority: "/" when empty, "/?q" for a bare query. */
static char *make_path(const char *path)
{
    char *out;

    if (path == NULL)
        return sp_xstrdup("/");
    if (path[0] == '/')
        return sp_xstrdup(path);
    if (asprintf(&out, "/%s", path) < 0)
        abort(); /* out of memory, like sp_xmalloc */
    return out;
}

/* Takes the URLs: same authority for all, one :path each. */
static int parse_urls(struct bench_opts *o, int n, char **urls)
{
    o->paths = sp_xcalloc((size_t)n, sizeof(*o->paths));
    for (int i = 0; i < n; i++) {
        char *auth = NULL, *host = NULL, *port = NULL;
        const char *path;
        int rv = split_url(urls[i], &auth, &host, &port, &path);

        if (rv == 0 && o->authority != NULL && strcmp(auth, o->authority) != 0)
            rv = -EXDEV;
        if (rv == 0)
            o->paths[o->npaths++] = make_path(path);
        if (rv == 0 && o->authority == NULL) {
            o->authority = auth;
            o->host = host;
            o->port = port;
            continue;
        }
        free(auth);
        free(host);
        free(port);
        if (rv != 0) {
            fprintf(stderr, "spooky-bench: %s: %s\n", urls[i],
                    rv == -EXDEV ? "a different HOST:PORT" : "not an https://HOST[:PORT]/PATH URL");
            return -EINVAL;
        }
    }
    return 0;
}

static int resolve(struct bench_opts *o)
{
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV}, *ai;
    int rv = getaddrinfo(o->host, o->port, &hints, &ai);

    if (rv != 0) {
        fprintf(stderr, "spooky-bench: %s:%s: %s\n", o->host, o->port, gai_strerror(rv));
        return -EINVAL;
    }
    memcpy(&o->addr, ai->ai_addr, ai->ai_addrlen);
    o->addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

/* Whether an -H field replaces the default field of that name. */
static const struct sp_field *find_extra(const struct bench_opts *o, const char *name)
{
    for (size_t i = 0; i < o->nextra; i++) {
        if (o->extra[i].name_len == strlen(name) &&
            memcmp(o->extra[i].name, name, strlen(name)) == 0)
            return &o->extra[i];
    }
    return NULL;
}

static struct sp_field field(const char *name, const char *value)
{
    return (struct sp_field){(const uint8_t *)name, strlen(name), (const uint8_t *)value,
                             strlen(value)};
}

/* Builds the complete field list of each path: pseudo-fields first (RFC 9114 §4.3), then
 * user-agent and content-length, then the -H fields; an -H field of a default's name replaces
 * it in place. */
static void build_fields(struct bench_opts *o)
{
    static const char *const names[] = {":method", ":scheme",    ":authority",
                                        ":path",   "user-agent", "content-length"};
    const char *values[] = {o->body != NULL ? "POST" : "GET", "https",        o->authority, NULL,
                            "spooky-bench/" SPOOKY_VERSION,   o->body_len_str};
    size_t ndef = o->body != NULL ? 6 : 5;

    o->fields = sp_xcalloc(o->npaths, sizeof(*o->fields));
    for (size_t p = 0; p < o->npaths; p++) {
        struct sp_field *f = sp_xcalloc(ndef + o->nextra, sizeof(*f));
        size_t n = 0;

        values[3] = o->paths[p];
        for (size_t i = 0; i < ndef; i++) {
            const struct sp_field *x = find_extra(o, names[i]);

            f[n++] = x != NULL ? *x : field(names[i], values[i]);
        }
        for (size_t i = 0; i < o->nextra; i++) {
            bool is_default = false;

            for (size_t j = 0; j < ndef; j++)
                is_default =
                    is_default || (o->extra[i].name_len == strlen(names[j]) &&
                                   memcmp(o->extra[i].name, names[j], o->extra[i].name_len) == 0);
            if (!is_default)
                f[n++] = o->extra[i];
        }
        o->fields[p] = f;
        o->nfields = n;
    }
}

/* Cross-option rules and defaults. */
static int check(struct bench_opts *o)
{
    if (o->requests != 0 && o->duration_s != 0) {
        fprintf(stderr, "spooky-bench: -n and -D exclude each other\n");
        return -EINVAL;
    }
    if (o->requests == 0 && o->duration_s == 0)
        o->requests = 1;
    if (o->threads > o->conns) {
        fprintf(stderr, "spooky-bench: -t %u needs at least as many connections (-c)\n",
                o->threads);
        return -EINVAL;
    }
    if (o->requests != 0 && o->rate == 0 && o->requests < o->threads) {
        fprintf(stderr, "spooky-bench: -n must be at least -t\n");
        return -EINVAL;
    }
    if (o->sni == NULL)
        o->sni = o->host;
    return 0;
}

int bench_opts_parse(struct bench_opts *o, int argc, char **argv)
{
    int opt;

    *o = (struct bench_opts){
        .conns = 1, .streams = 1, .threads = 1, .timeout_s = 30, .max_time_s = 3600};
    while ((opt = getopt_long(argc, argv, "n:D:c:m:t:H:d:h", long_opts, NULL)) != -1) {
        if (opt == 'h' || opt == OPT_VERSION) {
            fputs(opt == 'h' ? usage : "spooky-bench " SPOOKY_VERSION "\n", stdout);
            return 1;
        }
        if (opt == '?' || apply_opt(o, opt, optarg) != 0) {
            if (opt != '?')
                fprintf(stderr, "spooky-bench: bad option value: %s\n", optarg);
            fputs(usage, stderr);
            return -EINVAL;
        }
    }
    if (optind == argc) {
        fputs(usage, stderr);
        return -EINVAL;
    }
    if (parse_urls(o, argc - optind, argv + optind) != 0 || check(o) != 0 || resolve(o) != 0)
        return -EINVAL;
    build_fields(o);
    return 0;
}

void bench_opts_fini(struct bench_opts *o)
{
    for (size_t i = 0; i < o->npaths; i++)
        free(o->paths[i]);
    for (size_t i = 0; o->fields != NULL && i < o->npaths; i++)
        free(o->fields[i]);
    free(o->paths);
    o->paths = NULL;
    free(o->fields);
    o->fields = NULL;
    free(o->host);
    o->host = NULL;
    free(o->port);
    o->port = NULL;
    free(o->authority);
    o->authority = NULL;
    free(o->extra);
    o->extra = NULL;
    free(o->body);
    o->body = NULL;
    free(o->body_len_str);
    o->body_len_str = NULL;
}
