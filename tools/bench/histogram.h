/* histogram.h: an HDR-style log-linear histogram of non-negative integers (spooky-bench records
 * nanoseconds in it).
 *
 * Values below 2^BENCH_HIST_SUB_BITS are counted exactly; above, every power-of-two range
 * [2^k, 2^(k+1)) is cut into 2^BENCH_HIST_SUB_BITS buckets of equal width. Memory is fixed
 * (about 58 KiB, whatever the number of samples or their range: the whole uint64_t range is
 * covered), recording is O(1) without allocation, and two histograms merge by adding counts, so
 * each thread keeps its own and the results are summed at the end. A reported percentile lies
 * within BENCH_HIST_REL_ERROR of the true sample value at that rank; min and max are exact.
 * Not thread-safe: one owner at a time. */
#ifndef SP_BENCH_HISTOGRAM_H
#define SP_BENCH_HISTOGRAM_H

#include <stdint.h>

#define BENCH_HIST_SUB_BITS 7
/* Largest relative distance between a reported percentile and the true value at that rank:
 * half a bucket width over the bucket's lower bound, 2^-(SUB_BITS+1) = 1/256 (0.39%). */
#define BENCH_HIST_REL_ERROR (1.0 / (double)(2u << BENCH_HIST_SUB_BITS))

struct bench_hist;

/* Allocates an empty histogram. Aborts on OOM (like sp_xmalloc), so it never returns NULL.
 * Any thread. */
struct bench_hist *bench_hist_new(void);

/* Frees h. NULL is fine. */
void bench_hist_free(struct bench_hist *h);

/* Empties h. */
void bench_hist_reset(struct bench_hist *h);

/* Counts one sample of value v. */
void bench_hist_record(struct bench_hist *h, uint64_t v);

/* Adds every sample of src to dst (src unchanged). */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);

/* Number of samples. */
uint64_t bench_hist_count(const struct bench_hist *h);

/* Exact smallest and largest sample; 0 when empty. */
uint64_t bench_hist_min(const struct bench_hist *h);
uint64_t bench_hist_max(const struct bench_hist *h);

/* Exact mean of the samples (kept as a running sum); 0 when empty. */
double bench_hist_mean(const struct bench_hist *h);

/* The value at percentile pct (0..100): the sample of rank ceil(pct/100 * count) (at least 1),
 * reported as the middle of its bucket clamped to [min, max]; ranks 1 and count give min and
 * max exactly. 0 when empty. */
uint64_t bench_hist_percentile(const struct bench_hist *h, double pct);

#endif
