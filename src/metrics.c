/* metrics: the Prometheus text exposition of the queue, served by http.c on GET /metrics. */
#include "metrics.h"
#include "bounce.h"
#include "clock.h"
#include "log.h"
#include "store.h"
#include "unsubscribe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Delivery latency buckets (seconds, due → sent): a minute to a week. */
static const long latency_buckets[] = { 60, 300, 900, 3600, 4 * 3600,
    86400, 3 * 86400, 7 * 86400 };
#define NBUCKETS	(sizeof(latency_buckets) / sizeof(latency_buckets[0]))

struct metrics {
	char	*state_path;
	int	 busy_timeout_ms;
	time_t	 started;
	struct store *store;	/* the HTTP thread's own connection */
};

struct metrics *
metrics_new(const char *queue_dir, int busy_timeout_ms, time_t started)
{
	struct metrics *m = xcalloc(1, sizeof(*m));

	m->state_path = store_path(queue_dir);
	m->busy_timeout_ms = busy_timeout_ms;
	m->started = started;
	return m;
}

void
metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	store_close(m->store);
	free(m->state_path);
	free(m);
}

/* A label value: backslash, double quote and newline escaped (the text format). */
static void
label(struct buf *out, const char *v)
{
	for (; v && *v; v++) {
		if (*v == '\\' || *v == '"')
			buf_putc(out, '\\');
		if (*v == '\n')
			buf_puts(out, "\\n");
		else
			buf_putc(out, *v);
	}
}

static void
help(struct buf *out, const char *name, const char *type, const char *text)
{
	buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

static const char *
num(const char *v)
{
	return v && *v ? v : "0";
}

/* rating="4" (csat, nps) or "good" / "bad" (good-bad). */
static void
ratings_row(const char *rule, const char *scale, int score, int64_t n,
    void *arg)
{
	struct buf *out = arg;

	buf_puts(out, "followupd_ratings_total{rule=\"");
	label(out, rule);
	if (strcmp(scale, "good-bad") == 0)
		buf_printf(out, "\",rating=\"%s\"} %lld\n", score ? "good" :
		    "bad", (long long)n);
	else
		buf_printf(out, "\",rating=\"%d\"} %lld\n", score, (long long)n);
}

/* One line per row of t: NAME{rule="…",KEY="…"} COUNT (rule, key, count). */
static void
rule_key_lines(struct buf *out, const char *name, const char *key,
    const struct store_table *t)
{
	for (int i = 0; i < t->nrows; i++) {
		buf_printf(out, "%s{rule=\"", name);
		label(out, store_cell(t, i, 0));
		buf_printf(out, "\",%s=\"", key);
		label(out, store_cell(t, i, 1));
		buf_printf(out, "\"} %s\n", num(store_cell(t, i, 2)));
	}
}

/* Row i of the latency table: rule, count, sum, then one cumulative count per bucket. */
static void
latency_lines(struct buf *out, const struct store_table *t, int i)
{
	const char *rule = store_cell(t, i, 0);

	for (size_t b = 0; b < NBUCKETS && (int)(3 + b) < t->ncols; b++) {
		buf_puts(out, "followupd_delivery_latency_seconds_bucket{rule=\"");
		label(out, rule);
		buf_printf(out, "\",le=\"%ld\"} %s\n", latency_buckets[b],
		    num(store_cell(t, i, 3 + (int)b)));
	}
	buf_puts(out, "followupd_delivery_latency_seconds_bucket{rule=\"");
	label(out, rule);
	buf_printf(out, "\",le=\"+Inf\"} %s\n", num(store_cell(t, i, 1)));
	buf_puts(out, "followupd_delivery_latency_seconds_sum{rule=\"");
	label(out, rule);
	buf_printf(out, "\"} %s\n", num(store_cell(t, i, 2)));
	buf_puts(out, "followupd_delivery_latency_seconds_count{rule=\"");
	label(out, rule);
	buf_printf(out, "\"} %s\n", num(store_cell(t, i, 1)));
}

int
metrics_render(struct metrics *m, time_t now, struct buf *out, char **err)
{
	struct store_metrics sm;
	char *rejected;
	int r;

	if (m->store == NULL && (r = store_open(m->state_path,
	    m->busy_timeout_ms, &m->store, err)) != FU_OK)
		return r;
	if ((r = store_metrics(m->store, now, latency_buckets, (int)NBUCKETS,
	    &sm, err)) != FU_OK)
		return r;

	help(out, "followupd_up", "gauge", "1 while the daemon serves.");
	buf_puts(out, "followupd_up 1\n");
	help(out, "followupd_start_time_seconds", "gauge",
	    "When the daemon started (Unix time).");
	buf_printf(out, "followupd_start_time_seconds %lld\n",
	    (long long)m->started);

	help(out, "followupd_jobs", "gauge", "Jobs by rule and state.");
	rule_key_lines(out, "followupd_jobs", "state", &sm.jobs);

	help(out, "followupd_messages_total", "counter", "Delivery outcomes "
	    "by rule: sent, deferred (each temporary failure), failed.");
	rule_key_lines(out, "followupd_messages_total", "outcome", &sm.outcomes);

	help(out, "followupd_delivery_latency_seconds", "histogram",
	    "Time from a message's due time to its delivery, by rule.");
	for (int i = 0; i < sm.latency.nrows; i++)
		latency_lines(out, &sm.latency, i);

	help(out, "followupd_ratings_total", "counter", "Ratings given on the "
	    "rating page (each POST, replacements too), by rule and rating.");
	if ((r = store_rating_totals(m->store, ratings_row, out, err)) !=
	    FU_OK) {
		store_metrics_free(&sm);
		return r;
	}

	help(out, "followupd_bounces_total", "counter", "Returned messages "
	    "handled (followupd bounce), by kind; matched: it named one of our "
	    "jobs.");
	for (int k = 0; k < BOUNCE_NKINDS; k++) {
		const char *name = bounce_kind_name((enum bounce_kind)k);
		long total, matched;

		if ((r = store_bounce_count(m->store, name, 0, &total, &matched,
		    err)) != FU_OK) {
			store_metrics_free(&sm);
			return r;
		}
		buf_printf(out, "followupd_bounces_total{kind=\"%s\",matched="
		    "\"yes\"} %ld\n", name, matched);
		buf_printf(out, "followupd_bounces_total{kind=\"%s\",matched="
		    "\"no\"} %ld\n", name, total - matched);
	}

	help(out, "followupd_queue_oldest_age_seconds", "gauge", "Age of the "
	    "oldest message waiting for delivery (queued or deferred; 0: none).");
	buf_printf(out, "followupd_queue_oldest_age_seconds %lld\n",
	    sm.oldest_age);
	help(out, "followupd_last_tick_timestamp_seconds", "gauge",
	    "The instant of the last finished tick (Unix time; 0: none yet).");
	buf_printf(out, "followupd_last_tick_timestamp_seconds %lld\n",
	    sm.last_tick);
	help(out, "followupd_next_due_timestamp_seconds", "gauge",
	    "When the next job falls due (Unix time; 0: none).");
	buf_printf(out, "followupd_next_due_timestamp_seconds %lld\n",
	    (long long)sm.next_due);
	rejected = store_meta_get(m->store, UNSUB_REJECTED_KEY);
	help(out, "followupd_unsubscribe_rejected_tokens_total", "counter",
	    "Requests to unsubscribe-server with a bad token (counted when "
	    "logged: at most once a minute, and at its stop).");
	buf_printf(out, "followupd_unsubscribe_rejected_tokens_total %lld\n",
	    rejected ? strtoll(rejected, NULL, 10) : 0);
	free(rejected);
	store_metrics_free(&sm);
	return FU_OK;
}

static void
serve(const struct http_request *rq, struct http_response *res, void *arg)
{
	struct metrics *m = arg;
	char *err = NULL;

	(void)rq;
	res->content_type = "text/plain; version=0.0.4; charset=utf-8";
	if (metrics_render(m, clock_now(), &res->body, &err) != FU_OK) {
		log_warnx("metrics: %s", err);
		buf_reset(&res->body);
		buf_printf(&res->body, "state database unavailable\n");
		res->status = 503;
		/* Open afresh next time: the file may have been replaced. */
		store_close(m->store);
		m->store = NULL;
	}
	free(err);
}

void
metrics_route(struct metrics *m, struct http *h)
{
	http_route(h, "GET", "/metrics", serve, m);
}
