/* worker.h: one worker thread: its own libev loop, HTTP/3 servers (SO_REUSEPORT sockets), proxy
 * and upstream pools. Built on the main thread, then run on its own thread; the only
 * cross-thread call is sp_worker_stop (an ev_async). */
#ifndef SP_MAIN_WORKER_H
#define SP_MAIN_WORKER_H

#include "config/config.h"
#include "tls/tls.h"

struct sp_worker;

/* Builds worker `id`: opens its listener sockets and pools. stls[i]/ctls[i] are the server
 * credentials of listener i and client credentials of upstream i (borrowed). Returns 0 or
 * negative errno (e.g. -EADDRINUSE) with a message written to errbuf. Main thread. */
int sp_worker_new(unsigned id, const struct sp_config *cfg, struct sp_tls_server *const *stls,
                  struct sp_tls_client *const *ctls, struct sp_worker **ret, char *errbuf,
                  size_t errcap);

/* Starts the worker's thread. Returns 0 or negative errno. Main thread. */
int sp_worker_start(struct sp_worker *w);

/* Asks the worker to drain: GOAWAY to clients, finish in-flight requests, close within
 * timeouts.shutdown_ms. Any thread. */
void sp_worker_stop(struct sp_worker *w);

/* Waits for the thread to end and frees the worker. NULL is fine. Main thread. */
void sp_worker_join_free(struct sp_worker *w);

#endif
