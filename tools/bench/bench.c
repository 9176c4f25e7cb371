/* bench.c: spooky-bench, an HTTP/3 load generator (h2load-like; see docs/bench.md).
 *
 * main parses the options, builds the TLS credentials once (the trust store is loaded once per
 * process, not per connection), splits the load into one share per thread, runs one worker per
 * thread (each its own libev loop and connections), then merges their statistics and prints
 * them. Exit status: 0 when every measured request succeeded, 1 when some failed, 2 on usage or
 * setup errors. */
#include "bench.h"

#include "core/log.h"
#include "core/util.h"
#include "quic/secret.h"
#include "tls/tls.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

/* Splits -c, -n and --rate evenly over the threads; the first threads take the remainders. */
static void make_share(const struct bench_opts *o, unsigned i, sp_time_t start,
                       struct bench_share *ret)
{
    sp_time_t warmup_end = start + (sp_time_t)(o->warmup_s * 1e9);

    *ret = (struct bench_share){
        .id = i,
        .conns = o->conns / o->threads + (i < o->conns % o->threads),
        .requests = o->requests / o->threads + (i < o->requests % o->threads),
        .rate = o->rate / o->threads,
        .start = start,
        .warmup_end = warmup_end,
    };
    if (o->duration_s > 0) {
        ret->deadline = warmup_end + (sp_time_t)(o->duration_s * 1e9);
        ret->hard_end = ret->deadline + (sp_time_t)((o->timeout_s + 1) * 1e9);
    } else {
        ret->hard_end = warmup_end + (sp_time_t)(o->max_time_s * 1e9);
    }
    ret->hard_end += (sp_time_t)(o->hold_s * 1e9); /* the hold comes on top */
}

/* Runs every worker; thread 0 runs in the calling thread. Returns 0 or negative errno. */
static int run_workers(struct bench_worker **workers, unsigned n)
{
    pthread_t *tids = sp_xcalloc(n, sizeof(*tids));
    unsigned started = 1;
    int rv = 0;

    for (; started < n; started++) {
        if (pthread_create(&tids[started], NULL, bench_worker_run, workers[started]) != 0) {
            perror("spooky-bench: pthread_create");
            rv = -EAGAIN;
            break;
        }
    }
    if (rv == 0)
        (void)bench_worker_run(workers[0]);
    for (unsigned i = 1; i < started; i++)
        (void)pthread_join(tids[i], NULL);
    free(tids);
    return rv;
}

static int run(const struct bench_opts *o, const struct sp_tls_client *tls,
               struct bench_stats *total)
{
    struct bench_worker **workers = sp_xcalloc(o->threads, sizeof(*workers));
    sp_time_t start = sp_time_now();
    int rv;

    for (unsigned i = 0; i < o->threads; i++) {
        struct bench_share share;

        make_share(o, i, start, &share);
        workers[i] = bench_worker_new(o, tls, &share);
    }
    rv = run_workers(workers, o->threads);
    for (unsigned i = 0; i < o->threads; i++) {
        if (rv == 0)
            bench_stats_merge(total, bench_worker_stats(workers[i]));
        bench_worker_free(workers[i]);
    }
    free(workers);
    return rv;
}

int main(int argc, char **argv)
{
    struct bench_opts o;
    struct sp_tls_client *tls = NULL;
    struct bench_stats total;
    char errbuf[512]; /* GnuTLS reasons are one short line */
    int rv, exit_code = 2;

    rv = bench_opts_parse(&o, argc, argv);
    if (rv != 0) {
        exit_code = rv > 0 ? 0 : 2;
        goto out_opts;
    }
    (void)signal(SIGPIPE, SIG_IGN);
    sp_log_configure(SP_LOG_LEVEL_ERROR, SP_LOG_FORMAT_TEXT);
    sp_quic_secret_init();
    if (sp_tls_client_new(o.ca, !o.insecure, &tls, errbuf, sizeof(errbuf)) != 0) {
        fprintf(stderr, "spooky-bench: tls: %s\n", errbuf);
        goto out_opts;
    }
    bench_stats_init(&total);
    if (run(&o, tls, &total) == 0) {
        bench_report_print(&o, &total);
        exit_code = total.failed == 0 && total.not_started == 0 ? 0 : 1;
    }
    bench_stats_fini(&total);
    sp_tls_client_free(tls);
out_opts:
    bench_opts_fini(&o);
    return exit_code;
}
