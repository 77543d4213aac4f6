/* metrics: the Prometheus text exposition of the queue, served by http.c on GET /metrics. */
#include "metrics.h"
#include "clock.h"
#include "log.h"
#include "store.h"

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

static void
jobs_row(int n, char *const *names, char *const *v, void *arg)
{
	struct buf *out = arg;

	(void)n;
	(void)names;
	buf_puts(out, "followupd_jobs{rule=\"");
	label(out, v[0]);
	buf_puts(out, "\",state=\"");
	label(out, v[1]);
	buf_printf(out, "\"} %s\n", num(v[2]));
}

static void
totals_row(int n, char *const *names, char *const *v, void *arg)
{
	struct buf *out = arg;

	(void)n;
	(void)names;
	buf_puts(out, "followupd_messages_total{rule=\"");
	label(out, v[0]);
	buf_puts(out, "\",outcome=\"");
	label(out, v[1]);
	buf_printf(out, "\"} %s\n", num(v[2]));
}

/* v: rule, count, sum, then one cumulative count per bucket. */
static void
latency_row(int n, char *const *names, char *const *v, void *arg)
{
	struct buf *out = arg;

	(void)names;
	for (size_t i = 0; i < NBUCKETS && (int)(3 + i) < n; i++) {
		buf_puts(out, "followupd_delivery_latency_seconds_bucket{rule=\"");
		label(out, v[0]);
		buf_printf(out, "\",le=\"%ld\"} %s\n", latency_buckets[i],
		    num(v[3 + i]));
	}
	buf_puts(out, "followupd_delivery_latency_seconds_bucket{rule=\"");
	label(out, v[0]);
	buf_printf(out, "\",le=\"+Inf\"} %s\n", num(v[1]));
	buf_puts(out, "followupd_delivery_latency_seconds_sum{rule=\"");
	label(out, v[0]);
	buf_printf(out, "\"} %s\n", num(v[2]));
	buf_puts(out, "followupd_delivery_latency_seconds_count{rule=\"");
	label(out, v[0]);
	buf_printf(out, "\"} %s\n", num(v[1]));
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

static void
one_value(int n, char *const *names, char *const *v, void *arg)
{
	char **dst = arg;

	(void)n;
	(void)names;
	free(*dst);
	*dst = v[0] ? xstrdup(v[0]) : NULL;
}

static char *
scalar(struct store *st, const char *sql, const char *param, char **err,
    int *r)
{
	char *v = NULL;

	if (*r == FU_OK)
		*r = store_query(st, sql, param, one_value, &v, err);
	return v;
}

int
metrics_render(struct metrics *m, time_t now, struct buf *out, char **err)
{
	struct buf sql = { 0 };
	char nowtext[32], *v;
	int r;

	if (m->store == NULL && (r = store_open(m->state_path,
	    m->busy_timeout_ms, &m->store, err)) != FU_OK)
		return r;
	snprintf(nowtext, sizeof(nowtext), "%lld", (long long)now);

	help(out, "followupd_up", "gauge", "1 while the daemon serves.");
	buf_puts(out, "followupd_up 1\n");
	help(out, "followupd_start_time_seconds", "gauge",
	    "When the daemon started (Unix time).");
	buf_printf(out, "followupd_start_time_seconds %lld\n",
	    (long long)m->started);

	help(out, "followupd_jobs", "gauge", "Jobs by rule and state.");
	r = store_query(m->store, "SELECT rule, state, count(*) FROM jobs "
	    "GROUP BY rule, state ORDER BY rule, state", NULL, jobs_row, out,
	    err);

	help(out, "followupd_messages_total", "counter", "Delivery outcomes "
	    "by rule: sent, deferred (each temporary failure), failed.");
	if (r == FU_OK)
		r = store_query(m->store, "SELECT j.rule, e.event, count(*) "
		    "FROM events e JOIN jobs j ON j.id = e.job_id WHERE e.event "
		    "IN ('sent', 'deferred', 'failed') GROUP BY j.rule, e.event "
		    "ORDER BY j.rule, e.event", NULL, totals_row, out, err);

	help(out, "followupd_delivery_latency_seconds", "histogram",
	    "Time from a message's due time to its delivery, by rule.");
	buf_puts(&sql, "SELECT rule, count(*), coalesce(sum(l), 0)");
	for (size_t i = 0; i < NBUCKETS; i++)
		buf_printf(&sql, ", coalesce(sum(l <= %ld), 0)",
		    latency_buckets[i]);
	buf_puts(&sql, " FROM (SELECT rule, max(sent_at - due_at, 0) AS l "
	    "FROM jobs WHERE state = 'sent' AND sent_at IS NOT NULL) "
	    "GROUP BY rule ORDER BY rule");
	if (r == FU_OK)
		r = store_query(m->store, sql.data, NULL, latency_row, out, err);
	buf_free(&sql);

	help(out, "followupd_ratings_total", "counter", "Ratings given on the "
	    "rating page (each POST, replacements too), by rule and rating.");
	if (r == FU_OK)
		r = store_rating_totals(m->store, ratings_row, out, err);

	help(out, "followupd_queue_oldest_age_seconds", "gauge", "Age of the "
	    "oldest message waiting for delivery (queued or deferred; 0: none).");
	v = scalar(m->store, "SELECT max(CAST(?1 AS INTEGER) - min(queued_at), "
	    "0) FROM jobs WHERE state IN ('queued', 'deferred', 'sending') "
	    "AND queued_at IS NOT NULL", nowtext, err, &r);
	buf_printf(out, "followupd_queue_oldest_age_seconds %s\n", num(v));
	free(v);

	help(out, "followupd_last_tick_timestamp_seconds", "gauge",
	    "The instant of the last finished tick (Unix time; 0: none yet).");
	v = scalar(m->store, "SELECT strftime('%s', value) FROM meta WHERE "
	    "key = 'last_tick'", NULL, err, &r);
	buf_printf(out, "followupd_last_tick_timestamp_seconds %s\n", num(v));
	free(v);

	help(out, "followupd_next_due_timestamp_seconds", "gauge",
	    "When the next job falls due (Unix time; 0: none).");
	v = scalar(m->store, "SELECT min(CASE state WHEN 'planned' THEN due_at "
	    "ELSE next_attempt_at END) FROM jobs WHERE state IN ('planned', "
	    "'queued', 'deferred')", NULL, err, &r);
	buf_printf(out, "followupd_next_due_timestamp_seconds %s\n", num(v));
	free(v);
	return r;
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
