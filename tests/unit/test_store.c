/* test_store: state.db schema, idempotent planning, transitions, crash recovery. */
#include "sqlerr.h"
#include "store.h"
#include "tap.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/test_store.XXXXXX";

/* A number from state.db through a connection of the test's own. */
static long
scalar(const char *path, const char *sql, const char *param)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	long v = -2;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return -3;
	}
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK) {
		if (param)
			sqlite3_bind_text(s, 1, param, -1, SQLITE_STATIC);
		if (sqlite3_step(s) == SQLITE_ROW)
			v = sqlite3_column_type(s, 0) == SQLITE_NULL ? -1 :
			    (long)sqlite3_column_int64(s, 0);
		sqlite3_finalize(s);
	}
	sqlite3_close(db);
	return v;
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

/* Append each row of sql (on db) to sig as text, columns separated by '|'. */
static void
sig_rows(sqlite3 *db, const char *sql, struct buf *sig)
{
	sqlite3_stmt *s;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
		buf_printf(sig, "error: %s\n", sqlite3_errmsg(db));
		return;
	}
	while (sqlite3_step(s) == SQLITE_ROW) {
		for (int i = 0; i < sqlite3_column_count(s); i++) {
			const unsigned char *v = sqlite3_column_text(s, i);

			buf_printf(sig, "%s|", v ? (const char *)v : "NULL");
		}
		buf_putc(sig, '\n');
	}
	sqlite3_finalize(s);
}

/*
 * The schema of a database as text: every table's columns (name, type,
 * not null, default, key) in order and every index's columns, collations
 * and order; table zz (the test's own) left out.
 */
static char *
schema_signature(const char *path)
{
	struct buf sig = { 0 };
	sqlite3 *db;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return xstrdup("cannot open");
	}
	sig_rows(db, "SELECT m.type, m.name, m.tbl_name, p.name, p.type, "
	    "p.\"notnull\", p.dflt_value, p.pk FROM sqlite_master m, "
	    "pragma_table_info(m.name) p WHERE m.type = 'table' AND m.name != "
	    "'zz' ORDER BY m.name, p.cid", &sig);
	sig_rows(db, "SELECT m.name, m.tbl_name, x.seqno, x.name, x.\"desc\", "
	    "x.coll, x.key FROM sqlite_master m, pragma_index_xinfo(m.name) x "
	    "WHERE m.type = 'index' ORDER BY m.name, x.seqno", &sig);
	sig_rows(db, "PRAGMA user_version", &sig);
	sqlite3_close(db);
	return buf_steal(&sig);
}

/* stderr into a file while fn runs; what was written, allocated. */
static char *
stderr_of(void (*fn)(void *), void *arg)
{
	char path[300];
	struct buf out = { 0 };
	FILE *f;
	int fd, saved;

	snprintf(path, sizeof(path), "%s/stderr.txt", dir);
	fflush(stderr);
	saved = dup(2);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 2);
	close(fd);
	fn(arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	if ((f = fopen(path, "r")) != NULL) {
		char line[512];

		while (fgets(line, sizeof(line), f) != NULL)
			buf_puts(&out, line);
		fclose(f);
	}
	unlink(path);
	return buf_steal(&out);
}

static int open_result;

static void
open_close(void *arg)
{
	struct store *st;
	char *err = NULL;

	open_result = store_open(arg, 1000, &st, &err);
	if (open_result == FU_OK)
		store_close(st);
	free(err);
}

/*
 * A new state.db is made at the current schema in one step (nothing said
 * about migrations); an old one is migrated step by step to the very same
 * schema.
 */
static void
test_fresh_schema(void)
{
	char fresh[256], old[256], *log, *a, *b;

	snprintf(fresh, sizeof(fresh), "%s/fresh.db", dir);
	snprintf(old, sizeof(old), "%s/old.db", dir);
	log = stderr_of(open_close, fresh);
	tap_ok(open_result == FU_OK && scalar(fresh, "PRAGMA user_version",
	    NULL) == 6, "fresh: created at schema version 6");
	tap_ok(strstr(log, "migrated") == NULL, "fresh: no migration logged "
	    "(%s)", log);
	free(log);

	/* An older database (here: version 0 with a table of its own) takes
	 * every migration, one by one. */
	tap_ok(exec_raw(old, "CREATE TABLE zz (x)") == SQLITE_OK,
	    "old: a database of version 0");
	log = stderr_of(open_close, old);
	tap_ok(open_result == FU_OK && strstr(log, "migrated to schema version "
	    "1") && strstr(log, "migrated to schema version 6"),
	    "old: migrated step by step");
	free(log);
	a = schema_signature(fresh);
	b = schema_signature(old);
	if (!tap_ok(strcmp(a, b) == 0 && strstr(a, "jobs|jobs|customer") &&
	    strstr(a, "jobs_recipient"), "fresh and migrated schemas are the "
	    "same"))
		tap_diag("fresh:\n%s\nmigrated:\n%s", a, b);
	free(a);
	free(b);
}

/* The prepared-statement cache, and statements after migrations. */
static void
test_cache(void)
{
	struct store *st;
	struct store_cache_stats a, b;
	struct job j;
	char path[256], *err = NULL;
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
		tap_ok(scalar(path, "SELECT count(*) FROM jobs WHERE subject = "
		    "'50' AND tz = 'Europe/Madrid' AND email = 'ana@example.com' "
		    "AND customer IS NULL", NULL) == 1,
		    "cache: zone, email noted in the row; '' customer is NULL");
		tap_ok(scalar(path, "SELECT count(*) FROM events WHERE job_id = ?1 "
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

	/* Heap SQL (status builds its per-state sums): another text at a
	 * reused address is not confused with the first. */
	{
		static const char *const two[] = { "planned", "sent" };
		static const char *const one[] = { "sent" };
		struct store_status S;

		tap_ok(store_status(st, 100, two, 2, &S, &err) == FU_OK &&
		    S.rules.nrows == 1 && S.rules.ncols == 3 &&
		    atol(store_cell(&S.rules, 0, 1)) == scalar(path,
		    "SELECT count(*) FROM jobs WHERE state = 'planned'", NULL),
		    "cache: heap SQL (status by state)");
		store_status_free(&S);
		tap_ok(store_status(st, 100, one, 1, &S, &err) == FU_OK &&
		    S.rules.nrows == 1 && S.rules.ncols == 2 &&
		    strcmp(store_cell(&S.rules, 0, 1), "0") == 0,
		    "cache: same address, new text");
		store_status_free(&S);
	}

	/* Transactions through kept BEGIN / COMMIT / ROLLBACK. */
	for (int i = 0; i < 3; i++) {
		tap_ok(store_begin(st, &err) == FU_OK &&
		    store_job_plan(st, "t", "1", "x", 1, 1, &created, &id,
		    &err) == FU_OK, "cache: begin %d", i);
		store_rollback(st);
	}
	tap_ok(scalar(path, "SELECT count(*) FROM jobs WHERE rule = 't'", NULL)
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
	tap_ok(exec_raw(path, "DROP TABLE bounces; DROP INDEX jobs_message_id; "
	    "DROP TABLE ratings; DROP TABLE rating_requests; "
	    "DROP TABLE job_codes; "
	    "DROP INDEX jobs_recipient; ALTER TABLE jobs DROP COLUMN class; "
	    "ALTER TABLE jobs DROP COLUMN email; ALTER TABLE jobs DROP COLUMN "
	    "customer; PRAGMA user_version = 2") == SQLITE_OK,
	    "v2: made a schema 2 database");
	tap_ok(store_open(path, 1000, &st, &err) == FU_OK &&
	    scalar(path, "PRAGMA user_version", NULL) >= 3, "v2: migrated");
	{
		struct job_note note = { "UTC", "marketing", "b@example.com",
		    "7" };

		tap_ok(store_job_plan_noted(st, "checkin", "1", "x", 10, 5,
		    &note, &created, &id, &err) == FU_OK && created &&
		    store_job_get(st, id, &j, &err) == FU_OK && j.cls &&
		    strcmp(j.cls, "marketing") == 0 && scalar(path,
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
	tap_ok(exec_raw(path, "DROP TABLE bounces; DROP INDEX jobs_message_id; "
	    "DROP TABLE ratings; DROP TABLE rating_requests; "
	    "CREATE INDEX jobs_email ON jobs(email COLLATE "
	    "NOCASE); PRAGMA user_version = 3") == SQLITE_OK,
	    "v3: made a schema 3 database");
	tap_ok(store_open(path, 1000, &st, &err) == FU_OK, "v3: opens");
	tap_ok(scalar(path, "PRAGMA user_version", NULL) == 6 && scalar(path,
	    "SELECT count(*) FROM sqlite_master WHERE name = 'jobs_email'",
	    NULL) == 0 && scalar(path, "SELECT count(*) FROM jobs", NULL) == 1,
	    "v3: migrated to the latest (6), jobs_email dropped, the job kept");
	tap_ok(store_job_plan(st, "checkin", "1", "x", 10, 5, &created, &id,
	    &err) == FU_OK && !created, "v3: planning is still idempotent");
	{
		struct job_note note = { "UTC", NULL, "c@example.com", NULL };

		tap_ok(store_job_plan_noted(st, "checkin", "2", "x", 10, 5,
		    &note, &created, &id, &err) == FU_OK && created &&
		    scalar(path, "SELECT count(*) FROM jobs WHERE email = "
		    "'c@example.com'", NULL) == 1, "v3: plans after migrating");
	}
	store_close(st);
	tap_ok(store_open(path, 1000, &st, &err) == FU_OK &&
	    scalar(path, "PRAGMA user_version", NULL) == 6,
	    "v6: reopens without migrating");
	store_close(st);
	free(err);
}

/*
 * The reading side: status, queue list, history, due, consent, codes,
 * metrics and the spool's owner, on a small queue built here.
 */
static void
test_reading(void)
{
	static const char *const states[] = { "planned", "queued", "sent" };
	static const long buckets[] = { 60, 3600 };
	struct store *st;
	struct store_status S;
	struct store_table t;
	struct store_event *ev;
	struct store_optout *o;
	struct store_why_job *w;
	struct store_code *c;
	struct store_metrics m;
	struct job_note note = { "UTC", "marketing", "ana@example.com", "42" };
	char path[256], *err = NULL, *code = NULL, state[16];
	int64_t a, b, cid, *ids;
	int created, n, yes;
	long count = -1;	/* printed in a diagnostic evaluated before the call */
	time_t t0, oldest;

	snprintf(path, sizeof(path), "%s/reading.db", dir);
	if (store_open(path, 1000, &st, &err) != FU_OK) {
		tap_ok(0, "reading: open: %s", err);
		free(err);
		return;
	}
	/* a: planned due 1000 → queued at 1100 → sent at 1200 (marketing).
	 * b: planned due 5000. cid: planned due 3000, then cancelled. */
	store_job_plan_noted(st, "bday", "7", "2027", 1000, 900, &note, &created,
	    &a, &err);
	store_job_plan(st, "checkin", "8", "x", 5000, 900, &created, &b, &err);
	store_job_plan(st, "checkin", "9", "x", 3000, 900, &created, &cid, &err);
	store_job_cancel(st, cid, "opted-out", "the recipient opted out", 950,
	    &err);
	tap_ok(store_count_due(st, STORE_DUE_RENDER, 1000, &count, &err) ==
	    FU_OK && count == 1, "count due: planned, due_at <= now (%ld)",
	    count);
	tap_ok(store_next_due(st, &t0, &err) == FU_OK && t0 == 1000,
	    "next due: the planned job's due_at");
	store_job_queued(st, a, "Ana@Example.com", "m@x", "1.10.eml", 1100,
	    &err);
	tap_ok(store_count_due(st, STORE_DUE_DELIVER, 1100, &count, &err) ==
	    FU_OK && count == 1 && store_count_due(st, STORE_DUE_RENDER, 1100,
	    &count, &err) == FU_OK && count == 0, "count due: queued by "
	    "next_attempt_at");
	store_job_sending(st, a, 1150, &err);
	tap_ok(store_count_due(st, STORE_DUE_DELIVER, 2000, &count, &err) ==
	    FU_OK && count == 0 && store_count_state(st, JOB_SENDING, &count,
	    &err) == FU_OK && count == 1, "sending: in flight, not due");
	tap_ok(store_next_due(st, &t0, &err) == FU_OK && t0 == 5000,
	    "next due: a sending job is not waited for");
	tap_ok(store_spool_owner_state(st, a, "1.10.eml", state, &err) ==
	    FU_OK && strcmp(state, "sending") == 0 &&
	    store_spool_owner_state(st, 0, "1.10.eml", state, &err) == FU_OK &&
	    strcmp(state, "sending") == 0 && store_spool_owner_state(st, b,
	    "1.10.eml", state, &err) == FU_OK && state[0] == '\0' &&
	    store_spool_owner_state(st, 0, "odd.eml", state, &err) == FU_OK &&
	    state[0] == '\0', "spool owner: by id and name, by name; none "
	    "for others");
	store_job_sent(st, a, "250 ok", 1200, &err);

	tap_ok(store_status(st, 1300, states, 3, &S, &err) == FU_OK, "status");
	tap_ok(S.rules.nrows == 2 && strcmp(store_cell(&S.rules, 0, 0),
	    "bday") == 0 && strcmp(store_cell(&S.rules, 0, 3), "1") == 0 &&
	    strcmp(store_cell(&S.rules, 1, 1), "1") == 0,
	    "status: jobs per rule and state");
	tap_ok(S.reasons.nrows == 1 && strcmp(store_cell(&S.reasons, 0, 2),
	    "opted-out") == 0, "status: cancelled by reason");
	tap_ok(S.next.nrows == 1 && strcmp(store_cell(&S.next, 0, 4), "5000")
	    == 0, "status: next due is store_next_due's");
	tap_ok(S.recent.nrows == 1 && strcmp(store_cell(&S.recent, 0, 0), "1")
	    == 0 && S.oldest.nrows == 0, "status: one sent in the hour, none "
	    "waiting");
	store_status_free(&S);

	tap_ok(store_jobs_list(st, "planned", NULL, &t, &err) == FU_OK &&
	    t.nrows == 1 && t.ncols == 13 && strcmp(store_cell(&t, 0, 2), "8")
	    == 0, "jobs list by state");
	store_table_free(&t);
	tap_ok(store_jobs_list(st, NULL, "bday", &t, &err) == FU_OK &&
	    t.nrows == 1 && strcmp(store_cell(&t, 0, 8), "Ana@Example.com") == 0,
	    "jobs list by rule");
	store_table_free(&t);
	tap_ok(store_job_ids(st, JOB_PLANNED, &ids, &n, &err) == FU_OK &&
	    n == 1 && ids[0] == b, "job ids in a state");
	free(ids);
	tap_ok(store_job_history(st, a, &ev, &n, &err) == FU_OK && n == 3 &&
	    strcmp(ev[0].event, "planned") == 0 && ev[0].detail == NULL &&
	    strcmp(ev[2].event, "sent") == 0 && ev[2].at == 1200,
	    "history: the events, oldest first (%d)", n);
	store_events_free(ev, n);

	/* Consent. */
	tap_ok(store_optout_add(st, "BO@example.com", "marketing", "asked", 10,
	    &n, &err) == FU_OK && n == 1 && store_optout_add(st,
	    "bo@example.com", "all", NULL, 11, &n, &err) == FU_OK && n == 1,
	    "optout add");
	store_suppress(st, "bo@example.com", "550", 12, &err);
	tap_ok(store_optouts_list(st, &o, &n, &err) == FU_OK && n == 3 &&
	    strcmp(o[0].cls, "all") == 0 && o[0].reason == NULL &&
	    strcmp(o[2].cls, "suppressed") == 0 && o[2].since == 12,
	    "optouts list: opt-outs and the suppression, by class");
	store_optouts_free(o, n);
	tap_ok(store_optouts_of(st, "Bo@Example.com", &o, &n, &err) == FU_OK &&
	    n == 3, "optouts of an address, any case");
	store_optouts_free(o, n);
	tap_ok(store_optout_remove(st, "bo@example.com", "all", &n, &err) ==
	    FU_OK && n == 1 && store_suppression_remove(st, "bo@example.com",
	    &n, &err) == FU_OK && n == 1 && store_optout_remove(st,
	    "bo@example.com", NULL, &n, &err) == FU_OK && n == 1,
	    "optout remove: a class, the suppression, the rest");
	tap_ok(store_cap_count(st, "ana@example.com", NULL, 1000, &n, &oldest,
	    &err) == FU_OK && n == 1 && oldest == 1100 && store_cap_count(st,
	    "ana@example.com", "checkin", 1000, &n, &oldest, &err) == FU_OK &&
	    n == 0 && store_cap_count(st, "ana@example.com", NULL, 1100, &n,
	    &oldest, &err) == FU_OK && n == 0, "cap count: by window and rule");
	tap_ok(store_why_jobs(st, "ANA@example.com", 1, &w, &n, &err) == FU_OK &&
	    n == 1 && w[0].id == a && strcmp(w[0].state, "sent") == 0 &&
	    w[0].updated_at == 1200 && strcmp(w[0].cls, "marketing") == 0,
	    "why by address");
	store_why_jobs_free(w, n);
	tap_ok(store_why_jobs(st, "42", 0, &w, &n, &err) == FU_OK && n == 1 &&
	    w[0].due_at == 1000, "why by customer");
	store_why_jobs_free(w, n);

	/* Codes. */
	tap_ok(store_code_put(st, a, "bday", "7", "XYZ", 1300, &err) == FU_OK &&
	    store_code_get(st, a, &code, &err) == FU_OK && code &&
	    strcmp(code, "XYZ") == 0, "code put and get");
	free(code);
	tap_ok(store_code_taken(st, "bday", "XYZ", &yes, &err) == FU_OK && yes &&
	    store_code_taken(st, "other", "XYZ", &yes, &err) == FU_OK && !yes,
	    "code taken per rule");
	tap_ok(store_code_put(st, b, "bday", "8", "XYZ", 1300, &err) ==
	    FU_PERMFAIL, "a code is unique per rule");
	free(err);
	err = NULL;
	tap_ok(store_code_for_subject(st, "bday", "7", &code, &err) == FU_OK &&
	    code && strcmp(code, "XYZ") == 0, "code for a subject");
	free(code);
	tap_ok(store_codes_list(st, "bday", &c, &n, &err) == FU_OK && n == 1 &&
	    strcmp(c[0].state, "sent") == 0 && c[0].issued_at == 1300 &&
	    strcmp(c[0].recipient, "Ana@Example.com") == 0, "codes list");
	store_codes_free(c, n);

	/* Metrics. */
	store_meta_set(st, "last_tick", "2026-11-02 10:00:00", &err);
	tap_ok(store_metrics(st, 1300, buckets, 2, &m, &err) == FU_OK, "metrics");
	tap_ok(m.jobs.nrows == 3 && m.outcomes.nrows == 1 &&
	    strcmp(store_cell(&m.outcomes, 0, 1), "sent") == 0 &&
	    m.latency.nrows == 1 && m.latency.ncols == 5 &&
	    strcmp(store_cell(&m.latency, 0, 2), "200") == 0 &&
	    strcmp(store_cell(&m.latency, 0, 3), "0") == 0 &&
	    strcmp(store_cell(&m.latency, 0, 4), "1") == 0,
	    "metrics: jobs, outcomes, latency buckets");
	tap_ok(m.oldest_age == 0 && m.last_tick == 1793613600 &&
	    m.next_due == 5000, "metrics: oldest age, last tick, next due");
	store_metrics_free(&m);
	store_close(st);
	free(err);
}

/* Returned mail: a sent job found by its Message-ID, bounced, counted. */
static void
test_bounces(void)
{
	char path[256], *err = NULL;
	struct store *st;
	struct job j = { 0 };
	int64_t id, found, bid = 0;
	int created, n;
	long total, matched;
	struct store_bounce soft = { 0, "ana@example.com", "soft", "4.2.2",
	    "mailbox full", "verp", "soft", "stdin", NULL };
	struct store_bounce lost = { 0, "bob@example.com", "hard", "5.1.1",
	    "user unknown", NULL, "unmatched", "new/1", "dsn.1@relay.example" };

	snprintf(path, sizeof(path), "%s/bounce.db", dir);
	if (!tap_ok(store_open(path, 1000, &st, &err) == FU_OK, "bounce: open"))
		return;
	tap_ok(store_job_plan(st, "checkin", "7", "x", 10, 5, &created, &id,
	    &err) == FU_OK && store_job_queued(st, id, "ana@example.com",
	    "followupd.1.abc@desk.example", "s1", 20, &err) == FU_OK &&
	    store_job_sending(st, id, 30, &err) == FU_OK,
	    "bounce: a job queued and sending");
	tap_ok(store_job_bounced(st, id, "hard bounce 5.1.1", "550 unknown", 35,
	    &err) == FU_PERMFAIL, "bounce: only a sent job bounces");
	free(err);
	err = NULL;
	tap_ok(store_job_sent(st, id, "250 ok", 40, &err) == FU_OK, "bounce: sent");
	tap_ok(store_job_by_message_id(st, "followupd.1.abc@desk.example", &found,
	    &err) == FU_OK && found == id, "bounce: found by Message-ID");
	tap_ok(store_job_by_message_id(st, "followupd.1.abd@desk.example", &found,
	    &err) == FU_OK && found == 0, "bounce: another Message-ID finds none");
	tap_ok(store_job_bounced(st, id, "hard bounce 5.1.1", "550 unknown", 50,
	    &err) == FU_OK && store_job_get(st, id, &j, &err) == FU_OK &&
	    j.state == JOB_BOUNCED && strcmp(j.reason, "hard bounce 5.1.1") == 0 &&
	    strcmp(j.last_reply, "550 unknown") == 0,
	    "bounce: sent → bounced, reason and reply kept");
	store_job_clear(&j);
	tap_str(store_state_name(JOB_BOUNCED), "bounced", "bounce: state name");
	tap_ok(store_job_bounced(st, id, "again", NULL, 60, &err) == FU_PERMFAIL,
	    "bounce: bounced once");
	free(err);
	err = NULL;
	soft.job_id = id;
	tap_ok(store_bounce_add(st, &soft, 100, &bid, &err) == FU_OK && bid > 0 &&
	    store_bounce_add(st, &soft, 200, NULL, &err) == FU_OK &&
	    store_bounce_add(st, &lost, 200, NULL, &err) == FU_OK,
	    "bounce: decisions kept (%s)", err ? err : "");
	tap_ok(store_bounce_soft_count(st, "ANA@example.com", 100, &n, &err) ==
	    FU_OK && n == 2 && store_bounce_soft_count(st, "ana@example.com",
	    150, &n, &err) == FU_OK && n == 1,
	    "bounce: soft bounces in a window, any case");
	tap_ok(store_bounce_count(st, "hard", 0, &total, &matched, &err) ==
	    FU_OK && total == 1 && matched == 0 && store_bounce_count(st, "soft",
	    0, &total, &matched, &err) == FU_OK && total == 2 && matched == 2,
	    "bounce: counts by kind, matched or not");
	tap_ok(store_bounce_seen(st, "dsn.1@relay.example", &n, &err) == FU_OK &&
	    n == 1 && store_bounce_seen(st, "dsn.2@relay.example", &n, &err) ==
	    FU_OK && n == 0, "bounce: a message handled before is known by its "
	    "Message-ID");
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
	tap_ok(scalar(path, "PRAGMA user_version", NULL) >= 1, "schema migrated");
	{
		struct stat sb;

		tap_ok(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600,
		    "state.db is created 0600");
	}
	tap_ok(scalar(path, "SELECT count(*) FROM jobs", NULL) == 0, "no jobs");

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
	tap_ok(scalar(path, "SELECT count(*) FROM events WHERE event = "
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
	tap_ok(scalar(path, "SELECT count(*) FROM jobs WHERE subject = ?1",
	    "99") == 0, "rollback undoes");

	tap_ok(store_meta_set(st, "last_error", "boom", &err) == FU_OK, "meta set");
	{
		char *v = store_meta_get(st, "last_error");
		tap_str(v, "boom", "meta get");
		free(v);
	}
	store_close(st);

	test_cache();
	tap_ok(sqlerr_result(SQLITE_BUSY) == FU_TEMPFAIL &&
	    sqlerr_result(SQLITE_IOERR_WRITE) == FU_TEMPFAIL &&
	    sqlerr_result(SQLITE_FULL) == FU_TEMPFAIL &&
	    sqlerr_result(SQLITE_CANTOPEN) == FU_PERMFAIL &&
	    sqlerr_result(SQLITE_CORRUPT) == FU_PERMFAIL &&
	    sqlerr_result(SQLITE_CONSTRAINT_UNIQUE) == FU_PERMFAIL,
	    "sqlerr: full and busy are temporary, cantopen permanent");
	test_fresh_schema();
	test_reading();
	test_bounces();

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
