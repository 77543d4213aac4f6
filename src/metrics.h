/* metrics: the Prometheus text exposition of the queue, served by http.c on GET /metrics. */
#ifndef FOLLOWUPD_METRICS_H
#define FOLLOWUPD_METRICS_H

#include <time.h>

#include "http.h"
#include "util.h"

struct metrics;

/*
 * Metrics of the queue in `queue_dir` (its state.db, read through a
 * connection of the HTTP thread's own, opened at the first request) for a
 * daemon started at `started`. Everything is computed from state.db at
 * each scrape, so counters survive restarts (they count events, which are
 * never deleted).
 */
struct metrics	*metrics_new(const char *queue_dir, int busy_timeout_ms,
		    time_t started);
/* Serve GET /metrics from h (before http_start). */
void		 metrics_route(struct metrics *, struct http *h);
/* After the server is stopped (http_free): its thread used the connection. */
void		 metrics_free(struct metrics *);

/*
 * The exposition itself, appended to out (for tests and `status`): jobs by
 * rule and state, sent/deferred/failed totals by rule, the delivery latency
 * histogram (due → sent), the oldest queued message's age, the last tick.
 */
int		 metrics_render(struct metrics *, time_t now, struct buf *out,
		    char **err);

#endif
