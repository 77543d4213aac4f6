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

static void
nested_cb(int n, char *const *names, char *const *values, void *arg)
{
	struct store *st = arg;
	long v = -2;

	(void)n;
	(void)names;
	(void)values;
	/* The same query again while its statement is stepping. */
	store_query(st, "SELECT count(*) FROM jobs WHERE rule = ?1", "checkin",
	    count_cb, &v, NULL);
	count_cb_rows += v > 0 ? 100 : 1000;
}

static int
exec_raw(const char *path, const char *sql)
{
	sqlite3 *db;
	int rc;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

/* The prepared-statement cache, and statements after migrations. */
static void
test_cache(void)
{
	struct store *st;
	struct store_cache_stats a, b;
	struct job j;
	char path[256], *err = NULL, *heap;
	int64_t id, id2;
	int created, yes;
	sqlite3_int64 base;

	snprintf(path, sizeof(path), "%s/cache.db", dir);
	/* A first open and close: whatever SQLite keeps for good is counted. */
	tap_ok(store_open(path, 1000, &st, &err) == FU_OK, "cache: open");
	store_close(st);
	base = sqlite3_memory_used();
	tap_ok(store_open(path, 1000, &st, &err) == FU_OK, "cache: reopen");

	store_cache_stats(st, &a);
	tap_ok(a.prepared == 0 && a.cached == 0,
	    "cache: nothing prepared by open (after the migrations)");
	tap_ok(store_job_plan(st, "checkin", "1", "x", 10, 5, &created, &id,
	    &err) == FU_OK && created, "cache: plan");
	store_cache_stats(st, &a);
	for (int i = 2; i < 50; i++) {
		char key[8];

		snprintf(key, sizeof(key), "%d", i);
		store_job_plan(st, "checkin", key, "x", 10, 5, &created, &id2,
		    &err);
	}
	store_cache_stats(st, &b);
	tap_ok(b.prepared == a.prepared && b.reused >= a.reused + 2 * 48,
	    "cache: 48 more plans prepare nothing (%ld → %ld prepared, %ld → "
	    "%ld reused)", a.prepared, b.prepared, a.reused, b.reused);
	tap_ok(b.cached == a.cached && b.cached >= 2,
	    "cache: INSERT and event kept (%d)", b.cached);

	/* Bindings do not leak from one call to the next. */
	tap_ok(store_job_get(st, id, &j, &err) == FU_OK && j.cls == NULL &&
	    strcmp(j.subject, "1") == 0, "cache: plain plan has no class");
	store_job_clear(&j);
	{
		struct job_note note = { "Europe/Madrid", "marketing",
		    "ana@example.com", "" };

		tap_ok(store_job_plan_noted(st, "checkin", "50", "x", 10, 5,
		    &note, &created, &id2, &err) == FU_OK && created,
		    "cache: plan noted");
		tap_ok(store_job_get(st, id2, &j, &err) == FU_OK && j.cls &&
		    strcmp(j.cls, "marketing") == 0, "cache: class noted");
		store_job_clear(&j);
		tap_ok(scalar(st, "SELECT count(*) FROM jobs WHERE subject = "
		    "'50' AND tz = 'Europe/Madrid' AND email = 'ana@example.com' "
		    "AND customer IS NULL", NULL) == 1,
		    "cache: zone, email noted in the row; '' customer is NULL");
		tap_ok(scalar(st, "SELECT count(*) FROM events WHERE job_id = ?1 "
		    "AND event = 'planned' AND detail IS NULL", "50") == 1,
		    "cache: planned event");
		note.cls = "transactional";
		tap_ok(store_job_plan_noted(st, "checkin", "50", "x", 10, 6,
		    &note, &created, &id, &err) == FU_OK && !created && id == 0,
		    "cache: noted plan is idempotent");
		tap_ok(store_job_plan(st, "checkin", "51", "x", 10, 5, &created,
		    &id, &err) == FU_OK && created &&
		    store_job_get(st, id, &j, &err) == FU_OK && j.cls == NULL,
		    "cache: no note after a noted plan");
		store_job_clear(&j);
	}
	tap_ok(store_suppressed(st, "a@example.com", &yes, &err) == FU_OK &&
	    !yes && store_suppress(st, "a@example.com", "550", 7, &err) ==
	    FU_OK && store_suppressed(st, "A@example.com", &yes, &err) ==
	    FU_OK && yes && store_suppressed(st, "b@example.com", &yes, &err) ==
	    FU_OK && !yes, "cache: suppressed twice, each its own answer");

	/* A query run from its own callback gets a statement of its own. */
	count_cb_rows = 0;
	yes = store_query(st, "SELECT count(*) FROM jobs WHERE rule = ?1",
	    "checkin", nested_cb, st, &err) == FU_OK;
	tap_ok(yes && count_cb_rows == 101,
	    "cache: nested use of the same query (%d)", count_cb_rows);

	/* Heap SQL: another text at a reused address is not confused. */
	heap = xmalloc(64);
	strcpy(heap, "SELECT count(*) FROM jobs WHERE subject = '1'");
	tap_ok(scalar(st, heap, NULL) == 1, "cache: heap SQL");
	strcpy(heap, "SELECT count(*) FROM jobs WHERE subject != '1'");
	tap_ok(scalar(st, heap, NULL) == 50, "cache: same address, new text");
	free(heap);

	/* Transactions through kept BEGIN / COMMIT / ROLLBACK. */
	for (int i = 0; i < 3; i++) {
		tap_ok(store_begin(st, &err) == FU_OK &&
		    store_job_plan(st, "t", "1", "x", 1, 1, &created, &id,
		    &err) == FU_OK, "cache: begin %d", i);
		store_rollback(st);
	}
	tap_ok(scalar(st, "SELECT count(*) FROM jobs WHERE rule = 't'", NULL)
	    == 0, "cache: rolled back thrice");
	tap_ok(store_begin(st, &err) == FU_OK && store_begin(st, &err) ==
	    FU_PERMFAIL && err && strncmp(err, "state.db: ", 10) == 0,
	    "cache: BEGIN in a transaction refused: %s", err ? err : "");
	free(err);
	err = NULL;
	tap_ok(store_commit(st, &err) == FU_OK, "cache: commit");

	/* The schema changes under kept statements: SQLite re-prepares. */
	store_cache_stats(st, &a);
	tap_ok(exec_raw(path, "ALTER TABLE jobs ADD COLUMN extra TEXT; "
	    "CREATE INDEX jobs_extra ON jobs(extra, due_at)") == SQLITE_OK,
	    "cache: schema changed by another connection");
	tap_ok(store_job_plan(st, "checkin", "60", "x", 10, 5, &created, &id,
	    &err) == FU_OK && created && store_job_get(st, id, &j, &err) ==
	    FU_OK && strcmp(j.subject, "60") == 0,
	    "cache: kept statements work on the changed schema");
	store_job_clear(&j);
	store_cache_stats(st, &b);
	tap_ok(b.prepared == a.prepared, "cache: and are still the kept ones");

	store_cache_stats(st, &a);
	tap_ok(sqlite3_memory_used() > base, "cache: memory is counted");
	store_close(st);
	tap_ok(a.cached > 5 && sqlite3_memory_used() == base,
	    "cache: close finalizes all %d statements (%lld bytes left, %lld "
	    "before)", a.cached, (long long)sqlite3_memory_used(),
	    (long long)base);

	/* A database of schema 2 opens migrated, and planning notes work. */
	snprintf(path, sizeof(path), "%s/v2.db", dir);
	tap_ok(store_open(path, 1000, &st, &err) == FU_OK, "v2: create");
	store_close(st);
	tap_ok(exec_raw(path, "DROP TABLE ratings; DROP TABLE rating_requests; "
	    "DROP TABLE job_codes; "
	    "DROP INDEX jobs_recipient; ALTER TABLE jobs DROP COLUMN class; "
	    "ALTER TABLE jobs DROP COLUMN email; ALTER TABLE jobs DROP COLUMN "
	    "customer; PRAGMA user_version = 2") == SQLITE_OK,
	    "v2: made a schema 2 database");
	tap_ok(store_open(path, 1000, &st, &err) == FU_OK &&
	    scalar(st, "PRAGMA user_version", NULL) >= 3, "v2: migrated");
	{
		struct job_note note = { "UTC", "marketing", "b@example.com",
		    "7" };

		tap_ok(store_job_plan_noted(st, "checkin", "1", "x", 10, 5,
		    &note, &created, &id, &err) == FU_OK && created &&
		    store_job_get(st, id, &j, &err) == FU_OK && j.cls &&
		    strcmp(j.cls, "marketing") == 0 && scalar(st,
		    "SELECT count(*) FROM jobs WHERE customer = '7'", NULL) == 1,
		    "v2: statements prepared on the migrated schema");
		store_job_clear(&j);
	}
	store_close(st);

	/* Schema 3 → 4: the unused index on jobs.email goes; jobs stay. */
	snprintf(path, sizeof(path), "%s/v3.db", dir);
	tap_ok(store_open(path, 1000, &st, &err) == FU_OK &&
	    store_job_plan(st, "checkin", "1", "x", 10, 5, &created, &id,
	    &err) == FU_OK && created, "v3: create, plan one job");
	store_close(st);
	tap_ok(exec_raw(path, "DROP TABLE ratings; DROP TABLE rating_requests; "
	    "CREATE INDEX jobs_email ON jobs(email COLLATE "
	    "NOCASE); PRAGMA user_version = 3") == SQLITE_OK,
	    "v3: made a schema 3 database");
	tap_ok(store_open(path, 1000, &st, &err) == FU_OK, "v3: opens");
	tap_ok(scalar(st, "PRAGMA user_version", NULL) == 5 && scalar(st,
	    "SELECT count(*) FROM sqlite_master WHERE name = 'jobs_email'",
	    NULL) == 0 && scalar(st, "SELECT count(*) FROM jobs", NULL) == 1,
	    "v3: migrated to the latest (5), jobs_email dropped, the job kept");
	tap_ok(store_job_plan(st, "checkin", "1", "x", 10, 5, &created, &id,
	    &err) == FU_OK && !created, "v3: planning is still idempotent");
	{
		struct job_note note = { "UTC", NULL, "c@example.com", NULL };

		tap_ok(store_job_plan_noted(st, "checkin", "2", "x", 10, 5,
		    &note, &created, &id, &err) == FU_OK && created &&
		    scalar(st, "SELECT count(*) FROM jobs WHERE email = "
		    "'c@example.com'", NULL) == 1, "v3: plans after migrating");
	}
	store_close(st);
	tap_ok(store_open(path, 1000, &st, &err) == FU_OK &&
	    scalar(st, "PRAGMA user_version", NULL) == 5,
	    "v5: reopens without migrating");
	store_close(st);
	free(err);
}

int
main(void)
{
	struct store *st;
	struct job j, *jobs;
	char path[256], *err = NULL;
	int64_t id, id2;
	int created, n, count;

	/* sqlite3_memory_used() tells whether store_close freed everything. */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 1);
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

	test_cache();

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
