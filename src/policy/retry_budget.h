/* retry_budget.h: the retry budget (issue 5): retries in flight stay at or below
 * max(min_retries, ratio_pct% of the requests in flight), so that retries cannot amplify an
 * outage: with every backend failing, the extra load is a bounded share of the real load.
 * One budget per worker per upstream (or route), in caller storage. Pure and single-threaded: no
 * clock, no logging, no locks; the owning worker calls everything. */
#ifndef SP_POLICY_RETRY_BUDGET_H
#define SP_POLICY_RETRY_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

struct sp_budget_conf {
    unsigned ratio_pct;   /* retries in flight allowed per 100 requests in flight (0..1000) */
    unsigned min_retries; /* retries in flight always allowed, so low traffic can still retry */
};

/* Counters the caller reads for metrics and tests; monotonic. */
struct sp_budget_stats {
    uint64_t requests_started;  /* sp_budget_request_started calls */
    uint64_t requests_finished; /* sp_budget_request_finished calls */
    uint64_t retries_granted;   /* sp_budget_try_retry answered true */
    uint64_t retries_denied;    /* sp_budget_try_retry answered false: budget exhausted */
    uint64_t retries_finished;  /* sp_budget_retry_finished calls */
};

struct sp_budget {
    struct sp_budget_conf conf;   /* copied at init */
    uint64_t requests_inflight;   /* started and not finished */
    uint64_t retries_inflight;    /* granted and not finished */
    struct sp_budget_stats stats; /* read with sp_budget_stats */
};

/* Sets up an empty budget with a copy of conf (borrowed for the call). Returns 0, or -EINVAL
 * when conf is NULL or ratio_pct > 1000. */
int sp_budget_init(struct sp_budget *b, const struct sp_budget_conf *conf);

/* A client request began (counts towards the allowance). */
void sp_budget_request_started(struct sp_budget *b);

/* A client request ended, whatever the outcome. Must pair with sp_budget_request_started. */
void sp_budget_request_finished(struct sp_budget *b);

/* Asks for one retry. Returns true and counts it in flight when retries in flight are below
 * max(min_retries, requests_inflight * ratio_pct / 100); else false (the caller answers with the
 * failure it has). Every answer is counted. */
bool sp_budget_try_retry(struct sp_budget *b);

/* A granted retry ended, whatever the outcome. Must pair with a true sp_budget_try_retry. */
void sp_budget_retry_finished(struct sp_budget *b);

/* Returns the retries allowed in flight right now. */
uint64_t sp_budget_allowance(const struct sp_budget *b);

/* Returns the counters; valid as long as b. */
const struct sp_budget_stats *sp_budget_stats(const struct sp_budget *b);

#endif
