/* test_rating_store: state.db's rating requests and ratings (schema 5): replace, cool-down, report rows, handling. */
#include "store.h"
#include "tap.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long
count(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	long v = -1;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -2;
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static char dir[] = "/tmp/test_rating_store.XXXXXX";

/* A check-in job for subject, queued (and sent when sent_at > 0). */
static int64_t
checkin(struct store *st, const char *subject, const char *to,
    time_t sent_at)
{
	struct job_note note = { "UTC", NULL, to, "cust-1" };
	int64_t id = 0;
	int created;
	char *err = NULL;

	if (store_job_plan_noted(st, "checkin", subject, "x", 100, 50, &note,
	    &created, &id, &err) != FU_OK ||
	    store_job_queued(st, id, to, "m@x", "1.eml", 100, &err) != FU_OK)
		tap_diag("checkin: %s", err ? err : "?");
	if (sent_at > 0 && (store_job_sending(st, id, sent_at, &err) != FU_OK ||
	    store_job_sent(st, id, "250 ok", sent_at, &err) != FU_OK))
		tap_diag("checkin sent: %s", err ? err : "?");
	free(err);
	return id;
}

static int
ask(struct store *st, int64_t job, const char *to, const char *scale,
    time_t now)
{
	struct store_rating_ask q = { job, "checkin", to, scale,
	    "sam@acme.example", "Sam", "Europe/London", "Ana", "Broken lid" };
	char *err = NULL;
	int r = store_rating_request(st, &q, now, &err);

	if (r != FU_OK)
		tap_diag("ask: %s", err);
	free(err);
	return r;
}

int
main(void)
{
	struct store *st;
	struct store_rating r, *rows = NULL;
	char path[256], *err = NULL;
	int64_t a, b, c;
	int found, yes, n = 0;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/state.db", dir);
	tap_ok(store_open(path, 1000, &st, &err) == FU_OK, "open");
	a = checkin(st, "1", "Ana@Example.com", 1000);
	b = checkin(st, "2", "bo@example.com", 1000);
	c = checkin(st, "3", "ana@example.com", 0);

	/* A job without request or rating. */
	tap_ok(store_rating_get(st, a, &r, &found, &err) == FU_OK && found &&
	    !r.requested && !r.rated && r.sent_at == 1000 &&
	    strcmp(r.rule, "checkin") == 0 && strcmp(r.subject, "1") == 0,
	    "a job without a request: found, nothing rated");
	store_rating_clear(&r);
	tap_ok(store_rating_get(st, 999, &r, &found, &err) == FU_OK && !found,
	    "no such job: not found");

	/* Requests; a second one for the same job changes nothing. */
	tap_ok(ask(st, a, "Ana@Example.com", "csat", 900) == FU_OK &&
	    ask(st, a, "x@y", "nps", 950) == FU_OK &&
	    ask(st, b, "bo@example.com", "csat", 900) == FU_OK,
	    "requests recorded");
	tap_ok(store_rating_get(st, a, &r, &found, &err) == FU_OK && found &&
	    r.requested && strcmp(r.scale, "csat") == 0 && !r.rated &&
	    r.asked_at == 900 && strcmp(r.agent, "sam@acme.example") == 0 &&
	    strcmp(r.agent_name, "Sam") == 0 && strcmp(r.agent_tz,
	    "Europe/London") == 0 && strcmp(r.customer_name, "Ana") == 0 &&
	    strcmp(r.ticket_subject, "Broken lid") == 0,
	    "the first request stays, with agent, customer and subject");
	store_rating_clear(&r);

	/* Cool-down: by address without case, other jobs only, from `since`. */
	tap_ok(store_rating_asked(st, "ana@example.COM", 800, c, &yes, &err) ==
	    FU_OK && yes, "asked: another job's request counts (any case)");
	tap_ok(store_rating_asked(st, "ana@example.com", 800, a, &yes, &err) ==
	    FU_OK && !yes, "asked: the job's own request does not");
	tap_ok(store_rating_asked(st, "ana@example.com", 901, c, &yes, &err) ==
	    FU_OK && !yes, "asked: a request before `since` does not");
	tap_ok(ask(st, c, "ana@example.com", "csat", 960) == FU_OK &&
	    store_job_cancel(st, c, "reopened", NULL,
	    970, &err) == FU_OK, "a request for a job then cancelled");
	tap_ok(store_rating_asked(st, "ana@example.com", 800, a, &yes, &err) ==
	    FU_OK && !yes, "asked: a cancelled check-in's request does not");

	/* Rate, then replace. */
	tap_ok(store_rating_put(st, a, "csat", 2, "It broke again <b>", 1100,
	    &err) == FU_OK, "rated 2 with a comment");
	tap_ok(store_rating_get(st, a, &r, &found, &err) == FU_OK && r.rated &&
	    r.score == 2 && strcmp(r.comment, "It broke again <b>") == 0 &&
	    r.created_at == 1100 && r.updated_at == 1100 && !r.handled,
	    "stored as typed, unhandled");
	store_rating_clear(&r);
	tap_ok(store_rating_handled(st, a, 1100, 1150, &err) == FU_OK &&
	    store_ratings_unhandled(st, &rows, &n, &err) == FU_OK && n == 0,
	    "handled: no longer listed");
	store_ratings_free(rows, n);
	tap_ok(store_rating_put(st, a, "csat", 5, "", 1200, &err) == FU_OK &&
	    store_rating_get(st, a, &r, &found, &err) == FU_OK && r.score == 5 &&
	    r.comment == NULL && r.created_at == 1100 && r.updated_at == 1200 &&
	    !r.handled, "a second rating replaces the first and is unhandled");
	store_rating_clear(&r);
	tap_ok(store_rating_handled(st, a, 1100, 1250, &err) == FU_OK &&
	    store_ratings_unhandled(st, &rows, &n, &err) == FU_OK && n == 1 &&
	    rows[0].job == a, "marking an older version handled leaves the new");
	store_ratings_free(rows, n);

	/* The report's rows: every request since, rated or not. */
	tap_ok(store_ratings_since(st, 0, &rows, &n, &err) == FU_OK && n == 3 &&
	    rows[0].job == a && rows[0].rated && rows[0].score == 5 &&
	    rows[1].job == b && !rows[1].rated && rows[2].job == c &&
	    rows[2].state == JOB_CANCELLED, "ratings since 0: three requests");
	store_ratings_free(rows, n);
	tap_ok(store_ratings_since(st, 955, &rows, &n, &err) == FU_OK && n == 1 &&
	    rows[0].job == c, "ratings since: by request time");
	store_ratings_free(rows, n);
	store_close(st);
	/* Each rating is an event in the job's history, without the comment. */
	tap_ok(count(path, "SELECT count(*) FROM events WHERE event = 'rated' "
	    "AND detail IN ('csat 2, with a comment', 'csat 5')") == 2 &&
	    count(path, "SELECT count(*) FROM events WHERE detail LIKE "
	    "'%broke%'") == 0, "a 'rated' event each, the comment not copied");
	tap_ok(count(path, "SELECT count(*) FROM pragma_table_info('ratings') "
	    "WHERE name IN ('ip', 'address', 'user_agent', 'remote')") == 0,
	    "no column for the rater's address or user agent");
	free(err);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	if (system(path) != 0)
		tap_diag("cleanup failed");
	return tap_done();
}
