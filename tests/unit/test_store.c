/* test_store: state.db schema, idempotent planning, transitions, crash recovery. */
#include "store.h"
#include "tap.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/test_store.XXXXXX";

static int count_cb_rows;

static void
count_cb(int n, char *const *names, char *const *values, void *arg)
{
	(void)n;
	(void)names;
	*(long *)arg = values[0] ? atol(values[0]) : -1;
	count_cb_rows++;
}

static long
scalar(struct store *st, const char *sql, const char *param)
{
	long v = -2;

	store_query(st, sql, param, count_cb, &v, NULL);
	return v;
}

int
main(void)
{
	struct store *st;
	struct job j, *jobs;
	char path[256], *err = NULL;
	int64_t id, id2;
	int created, n, count;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/state.db", dir);
	tap_ok(store_open(path, 1000, &st, &err) == FU_OK, "open creates");
	tap_ok(scalar(st, "PRAGMA user_version", NULL) >= 1, "schema migrated");
	{
		struct stat sb;

		tap_ok(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600,
		    "state.db is created 0600");
	}
	tap_ok(scalar(st, "SELECT count(*) FROM jobs", NULL) == 0, "no jobs");

	/* Planning is idempotent on (rule, subject, occurrence). */
	tap_ok(store_job_plan(st, "checkin", "12", "2026-11-02 10:00:00", 1000,
	    900, &created, &id, &err) == FU_OK && created && id > 0,
	    "plan inserts");
	tap_ok(store_job_plan(st, "checkin", "12", "2026-11-02 10:00:00", 1000,
	    901, &created, &id2, &err) == FU_OK && !created,
	    "plan again inserts nothing");
	tap_ok(store_job_plan(st, "checkin", "12", "2026-11-09 10:00:00", 5000,
	    902, &created, &id2, &err) == FU_OK && created && id2 != id,
	    "a new resolution is a new job");

	/* Due selection. */
	tap_ok(store_jobs_due(st, JOB_PLANNED, 999, 10, &jobs, &n, &err) ==
	    FU_OK && n == 0, "nothing due before due_at");
	store_jobs_free(jobs, n);
	tap_ok(store_jobs_due(st, JOB_PLANNED, 1000, 10, &jobs, &n, &err) ==
	    FU_OK && n == 1 && jobs[0].id == id &&
	    strcmp(jobs[0].occurrence, "2026-11-02 10:00:00") == 0,
	    "due at due_at");
	store_jobs_free(jobs, n);

	/* planned → queued → sending → deferred → sending → sent */
	tap_ok(store_job_queued(st, id, "ana@example.com", "m1@acme.example",
	    "1.eml", 1000, &err) == FU_OK, "queued");
	tap_ok(store_job_get(st, id, &j, &err) == FU_OK &&
	    j.state == JOB_QUEUED && j.queued_at == 1000 &&
	    strcmp(j.message_id, "m1@acme.example") == 0, "queued fields");
	store_job_clear(&j);
	tap_ok(store_job_cancel(st, id2, "reopened", NULL, 1001, &err) ==
	    FU_OK, "cancel planned");
	tap_ok(store_job_sending(st, id, 1001, &err) == FU_OK, "sending");
	tap_ok(store_job_sending(st, id, 1001, &err) == FU_PERMFAIL,
	    "sending twice refused");
	free(err);
	err = NULL;
	tap_ok(store_job_deferred(st, id, "451 later", 1400, 1001, &err) ==
	    FU_OK, "deferred");
	tap_ok(store_jobs_due(st, JOB_DEFERRED, 1399, 10, &jobs, &n, &err) ==
	    FU_OK && n == 0, "deferred not due before next attempt");
	store_jobs_free(jobs, n);
	tap_ok(store_jobs_due(st, JOB_DEFERRED, 1400, 10, &jobs, &n, &err) ==
	    FU_OK && n == 1 && jobs[0].attempts == 1, "deferred due, 1 attempt");
	store_jobs_free(jobs, n);

	/* A crash while sending: recovered as queued, same Message-ID. */
	tap_ok(store_job_sending(st, id, 1400, &err) == FU_OK, "sending again");
	store_close(st);
	tap_ok(store_open(path, 1000, &st, &err) == FU_OK, "reopen");
	tap_ok(store_recover_sending(st, 1500, 0, &count, &err) == FU_OK &&
	    count == 1, "recover one sending job");
	tap_ok(store_job_get(st, id, &j, &err) == FU_OK &&
	    j.state == JOB_QUEUED && strcmp(j.message_id, "m1@acme.example") == 0
	    && j.attempts == 2, "recovered job queued with its Message-ID");
	store_job_clear(&j);
	tap_ok(scalar(st, "SELECT count(*) FROM events WHERE event = "
	    "'interrupted'", NULL) == 1, "interruption recorded");
	tap_ok(store_job_sending(st, id, 1500, &err) == FU_OK &&
	    store_job_sent(st, id, "250 ok", 1501, &err) == FU_OK, "sent");
	tap_ok(store_job_cancel(st, id, "operator", NULL, 1502, &err) ==
	    FU_PERMFAIL, "a sent job cannot be cancelled");
	free(err);
	err = NULL;

	/* Suppressions are case-insensitive. */
	{
		int yes = 0;

		tap_ok(store_suppress(st, "Bob@Example.com", "550 no", 1600,
		    &err) == FU_OK, "suppress");
		tap_ok(store_suppressed(st, "bob@example.COM", &yes, &err) ==
		    FU_OK && yes, "suppressed, any case");
		tap_ok(store_suppressed(st, "ana@example.com", &yes, &err) ==
		    FU_OK && !yes, "others not suppressed");
	}

	/* Transactions roll back. */
	tap_ok(store_begin(st, &err) == FU_OK, "begin");
	store_job_plan(st, "checkin", "99", "x", 1, 1, &created, &id, &err);
	store_rollback(st);
	tap_ok(scalar(st, "SELECT count(*) FROM jobs WHERE subject = ?1",
	    "99") == 0, "rollback undoes");

	tap_ok(store_meta_set(st, "last_error", "boom", &err) == FU_OK, "meta set");
	{
		char *v = store_meta_get(st, "last_error");
		tap_str(v, "boom", "meta get");
		free(v);
	}
	store_close(st);

	/* A newer schema is refused with a clear message. */
	{
		sqlite3 *db;

		sqlite3_open(path, &db);
		sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL);
		sqlite3_close(db);
		tap_ok(store_open(path, 1000, &st, &err) == FU_PERMFAIL &&
		    err && strstr(err, "newer"), "newer schema refused: %s",
		    err ? err : "");
		free(err);
		err = NULL;
	}
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			tap_diag("could not remove %s", dir);
	}
	return tap_done();
}
