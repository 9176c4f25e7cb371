/* main.c: command line, configuration, credentials, workers, signals. After start-up the main
 * thread only waits for signals; workers do all the I/O. */
#include "config/config.h"
#include "core/bodybuf.h"
#include "core/log.h"
#include "core/util.h"
#include "main/worker.h"
#include "quic/secret.h"
#include "tls/tls.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct options {
    const char *config_path;
    bool test_only;
    bool has_level;
    enum sp_log_level level;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: spooky -c FILE [-t] [-l LEVEL]\n"
                 "  -c, --config FILE     configuration file (YAML)\n"
                 "  -t, --test            check the configuration and exit (0 = valid)\n"
                 "  -l, --log-level LEVEL override log.level: debug, info, warn, error\n"
                 "  -v, --version         print the version and exit\n"
                 "  -h, --help            print this help and exit\n");
}

/* Returns 0 to run, 1 on a usage error, 2 when the program should exit 0 (help/version). */
static int parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"test", no_argument, NULL, 't'},
        {"log-level", required_argument, NULL, 'l'},
        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    while ((c = getopt_long(argc, argv, "c:tl:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->config_path = optarg;
            break;
        case 't':
            o->test_only = true;
            break;
        case 'l':
            if (sp_log_level_parse(optarg, &o->level) != 0) {
                fprintf(stderr, "spooky: invalid log level \"%s\"\n", optarg);
                return 1;
            }
            o->has_level = true;
            break;
        case 'v':
            printf("spooky %s\n", SPOOKY_VERSION);
            return 2;
        case 'h':
            usage(stdout);
            return 2;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (o->config_path == NULL || optind != argc) {
        usage(stderr);
        return 1;
    }
    return 0;
}

static int load_config(const char *path, struct sp_config **ret)
{
    struct sp_config_errors errors = {0};
    char line[2048];
    int rv = sp_config_load(path, ret, &errors);

    for (size_t i = 0; i < errors.count; i++)
        fprintf(stderr, "spooky: %s\n",
                sp_config_error_format(&errors.items[i], line, sizeof(line)));
    sp_config_errors_fini(&errors);
    return rv;
}

struct creds {
    struct sp_tls_server **server; /* owned array, one per listener */
    struct sp_tls_client **client; /* owned array, one per upstream */
    size_t nserver, nclient;
};

static void creds_fini(struct creds *c)
{
    for (size_t i = 0; i < c->nserver; i++)
        sp_tls_server_free(c->server[i]);
    for (size_t i = 0; i < c->nclient; i++)
        sp_tls_client_free(c->client[i]);
    free(c->server);
    free(c->client);
}

static int creds_init(struct creds *c, const struct sp_config *cfg)
{
    char err[256];
    int rv;

    c->server = sp_xcalloc(cfg->listeners_count, sizeof(*c->server));
    c->client = sp_xcalloc(cfg->upstreams_count, sizeof(*c->client));
    for (; c->nserver < cfg->listeners_count; c->nserver++) {
        const struct sp_listener_conf *l = &cfg->listeners[c->nserver];

        rv = sp_tls_server_new(l->cert_file, l->key_file, &c->server[c->nserver], err, sizeof(err));
        if (rv != 0) {
            fprintf(stderr, "spooky: %s: listeners[%zu]: cannot load certificate %s / key %s: %s\n",
                    cfg->path, c->nserver, l->cert_file, l->key_file, err);
            return rv;
        }
    }
    for (; c->nclient < cfg->upstreams_count; c->nclient++) {
        const struct sp_upstream_conf *u = &cfg->upstreams[c->nclient];

        rv = sp_tls_client_new(u->tls.ca_file, u->tls.verify, &c->client[c->nclient], err,
                               sizeof(err));
        if (rv != 0) {
            fprintf(stderr, "spooky: %s: upstreams[%zu].tls: %s\n", cfg->path, c->nclient, err);
            return rv;
        }
        if (u->tls.client_cert_file != NULL) {
            rv = sp_tls_client_set_cert(c->client[c->nclient], u->tls.client_cert_file,
                                        u->tls.client_key_file, err, sizeof(err));
            if (rv != 0) {
                c->nclient++; /* built: freed by creds_fini */
                fprintf(stderr,
                        "spooky: %s: upstreams[%zu].tls: cannot load client certificate "
                        "%s / key %s: %s\n",
                        cfg->path, c->nclient - 1, u->tls.client_cert_file, u->tls.client_key_file,
                        err);
                return rv;
            }
        }
        if (!u->tls.verify)
            SP_LOG_WARN("main",
                        "upstream=%s event=tls_verify_disabled msg=\"backend certificates are "
                        "not verified\"",
                        u->name);
    }
    return 0;
}

static unsigned worker_count(const struct sp_config *cfg)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    if (cfg->workers > 0)
        return cfg->workers;
    return n > 0 ? (unsigned)n : 1;
}

static int wait_for_stop(void)
{
    sigset_t set;
    int sig;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    for (;;) {
        if (sigwait(&set, &sig) != 0)
            return -EINTR;
        if (sig == SIGHUP) {
            /* Reload lands with the config-reload work; until then say so, do nothing. */
            SP_LOG_WARN("main", "event=sighup msg=\"configuration reload is not supported yet; "
                                "keeping the running configuration\"");
            continue;
        }
        SP_LOG_INFO("main", "event=stopping signal=%s", sig == SIGTERM ? "TERM" : "INT");
        return 0;
    }
}

static int run(const struct sp_config *cfg)
{
    unsigned n = worker_count(cfg);
    struct sp_worker **workers = sp_xcalloc(n, sizeof(*workers));
    struct creds creds = {0};
    char err[256];
    unsigned built = 0;
    int rv;

    rv = creds_init(&creds, cfg);
    if (rv != 0)
        goto out;
    for (; built < n; built++) {
        rv = sp_worker_new(built, cfg, creds.server, creds.client, &workers[built], err,
                           sizeof(err));
        if (rv != 0) {
            fprintf(stderr, "spooky: %s\n", err);
            goto out;
        }
    }
    for (unsigned i = 0; i < n; i++) {
        rv = sp_worker_start(workers[i]);
        if (rv != 0)
            goto out;
    }
    SP_LOG_INFO("main", "event=ready version=%s workers=%u listeners=%zu upstreams=%zu",
                SPOOKY_VERSION, n, cfg->listeners_count, cfg->upstreams_count);
    rv = wait_for_stop();
    for (unsigned i = 0; i < n; i++)
        sp_worker_stop(workers[i]);
out:
    for (unsigned i = 0; i < built; i++)
        sp_worker_join_free(workers[i]);
    free(workers);
    creds_fini(&creds);
    return rv;
}

int main(int argc, char **argv)
{
    struct options o = {0};
    struct sp_config *cfg = NULL;
    sigset_t set;
    int rv;

    rv = parse_args(argc, argv, &o);
    if (rv != 0)
        return rv == 2 ? 0 : 1;
    if (load_config(o.config_path, &cfg) != 0)
        return 1;
    if (o.test_only) {
        fprintf(stderr, "spooky: configuration %s ok\n", o.config_path);
        sp_config_free(cfg);
        return 0;
    }
    sp_log_configure(o.has_level ? o.level : cfg->log_level, cfg->log_format);
    /* Signals are taken synchronously by the main thread; workers inherit the mask. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    sp_quic_secret_init();
    rv = run(cfg);
    sp_config_free(cfg);
    sp_bodybuf_thread_cleanup(); /* workers' objects are freed on this thread */
    SP_LOG_INFO("main", "event=stopped");
    return rv == 0 ? 0 : 1;
}
