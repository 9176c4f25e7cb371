/* retry_budget.c: retries in flight bounded by a share of requests in flight. */
#include "policy/retry_budget.h"

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

int sp_budget_init(struct sp_budget *b, const struct sp_budget_conf *conf)
{
    if (conf == NULL || conf->ratio_pct > 1000)
        return -EINVAL;
    memset(b, 0, sizeof(*b));
    b->conf = *conf;
    return 0;
}

void sp_budget_request_started(struct sp_budget *b)
{
    b->requests_inflight++;
    b->stats.requests_started++;
}

void sp_budget_request_finished(struct sp_budget *b)
{
    assert(b->requests_inflight > 0); /* unpaired finish: our bug */
    if (b->requests_inflight > 0)
        b->requests_inflight--;
    b->stats.requests_finished++;
}

uint64_t sp_budget_allowance(const struct sp_budget *b)
{
    /* requests_inflight is bounded by the stream caps, far below 2^64 / 1000. */
    uint64_t share = b->requests_inflight * b->conf.ratio_pct / 100;

    return share > b->conf.min_retries ? share : b->conf.min_retries;
}

bool sp_budget_try_retry(struct sp_budget *b)
{
    if (b->retries_inflight >= sp_budget_allowance(b)) {
        b->stats.retries_denied++;
        return false;
    }
    b->retries_inflight++;
    b->stats.retries_granted++;
    return true;
}

void sp_budget_retry_finished(struct sp_budget *b)
{
    assert(b->retries_inflight > 0); /* unpaired finish: our bug */
    if (b->retries_inflight > 0)
        b->retries_inflight--;
    b->stats.retries_finished++;
}

const struct sp_budget_stats *sp_budget_stats(const struct sp_budget *b)
{
    return &b->stats;
}
