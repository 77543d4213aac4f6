/* test_plan: due times (delay, quiet hours, the recipient's zone), the planning window, idempotence. */
#include "clock.h"
#include "config.h"
#include "plan.h"
#include "rules.h"
#include "source.h"
#include "store.h"
#include "tap.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/test_plan.XXXXXX";

/* The help desk: cases closed at `closed` (UTC text) by people in `tz`. */
static int
make_source(const char *path)
{
	sqlite3 *db;
	int rc;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	rc = sqlite3_exec(db,
	    "CREATE TABLE cases (cid INTEGER PRIMARY KEY, closed TEXT, "
	    "  mail TEXT, tz TEXT);"
	    /* 1: closed at 10:00 UTC, Berlin (11:00 local): due 12:00 UTC. */
	    "INSERT INTO cases VALUES (1, '2026-11-02 10:00:00', "
	    "  'ana@example.com', 'Europe/Berlin');"
	    /* 2: 19:30 UTC = 20:30 Berlin, +2 h in quiet hours (20-08). */
	    "INSERT INTO cases VALUES (2, '2026-11-02 19:30:00', "
	    "  'bo@example.com', 'Europe/Berlin');"
	    /* 3: in the future at the first tick. */
	    "INSERT INTO cases VALUES (3, '2026-11-03 09:00:00', "
	    "  'cy@example.com', 'UTC');"
	    /* 4: an unreadable time. */
	    "INSERT INTO cases VALUES (4, '2026-11-02 1O:00:00', "
	    "  'di@example.com', 'UTC');"
	    /* 5: older than the lookback (delay + 7 days). */
	    "INSERT INTO cases VALUES (5, '2026-10-01 10:00:00', "
	    "  'ed@example.com', 'UTC');",
	    NULL, NULL, NULL);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

static struct config *
make_config(const char *path)
{
	struct buf errs = { 0 };
	struct config *cfg;
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return NULL;
	fprintf(f, "[source]\ndatabase = %s/desk.db\n[queue]\ndir = %s/queue\n"
	    "[smtp]\nfrom = Acme <support@example.com>\n"
	    "[defaults]\ntimezone = UTC\n"
	    "[rule checkin]\nkind = after_resolution\ndelay = 2h\n"
	    "quiet_hours = 20:00-08:00\n"
	    "query = SELECT cid AS key, closed AS at, mail AS email, tz\n"
	    "  FROM cases WHERE closed >= :since AND closed < :until\n"
	    "[rule off]\nkind = after_resolution\ndelay = 1h\nenabled = no\n"
	    "query = SELECT cid AS key, closed AS at, mail AS email, tz\n"
	    "  FROM cases\n", dir, dir);
	fclose(f);
	if ((cfg = config_load(path, &errs)) == NULL)
		tap_diag("config: %s", buf_cstr(&errs));
	buf_free(&errs);
	return cfg;
}

static time_t
utc(const char *text)
{
	time_t t = 0;

	if (clock_parse(text, &t) != FU_OK)
		tap_diag("bad time %s", text);
	return t;
}

/* The due time of the job of (rule, subject), or -1 when there is none. */
static time_t
due_of(struct store *st, const char *subject)
{
	struct store_table t;
	time_t due = -1;

	if (store_jobs_list(st, NULL, "checkin", &t, NULL) != FU_OK)
		return -2;
	for (int i = 0; i < t.nrows; i++)
		if (strcmp(store_cell(&t, i, 2), subject) == 0)
			due = (time_t)strtoll(store_cell(&t, i, 5), NULL, 10);
	store_table_free(&t);
	return due;
}

static long
jobs(struct store *st)
{
	struct store_table t;
	long n;

	if (store_jobs_list(st, NULL, NULL, &t, NULL) != FU_OK)
		return -1;
	n = t.nrows;
	store_table_free(&t);
	return n;
}

int
main(void)
{
	char path[300], *err = NULL;
	struct config *cfg;
	struct source *src;
	struct store *st;
	struct plan_stats ps;
	time_t now;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/desk.db", dir);
	tap_ok(make_source(path) == 0, "a help desk database");
	snprintf(path, sizeof(path), "%s/queue", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/t.conf", dir);
	if ((cfg = make_config(path)) == NULL) {
		tap_ok(0, "config loads");
		return tap_done();
	}
	snprintf(path, sizeof(path), "%s/desk.db", dir);
	tap_ok(source_open(path, 1000, &src, &err) == FU_OK, "source opens");
	snprintf(path, sizeof(path), "%s/queue/state.db", dir);
	tap_ok(store_open(path, 1000, &st, &err) == FU_OK, "store opens");

	/* First tick: the rows closed in (now - lookback, now]. */
	now = utc("2026-11-02 20:00:00");
	tap_ok(plan_tick(cfg, src, st, now, &ps, &err) == FU_OK,
	    "plan_tick (%s)", err ? err : "");
	tap_ok(ps.planned == 2 && ps.skipped == 1 && jobs(st) == 2,
	    "two planned, the unreadable row skipped, the future, the old "
	    "and the disabled rule's rows not (planned %d, skipped %d, seen "
	    "%d)", ps.planned, ps.skipped, ps.seen);
	tap_ok(due_of(st, "1") == utc("2026-11-02 12:00:00"),
	    "due: the event plus the delay");
	tap_ok(due_of(st, "2") == utc("2026-11-03 07:00:00"),
	    "due: out of quiet hours at 08:00 in the recipient's zone");
	tap_ok(due_of(st, "3") == -1 && due_of(st, "5") == -1,
	    "not planned: the event to come, the event before the lookback");

	/* Planning again, at the same instant or later, adds nothing. */
	tap_ok(plan_tick(cfg, src, st, now, &ps, &err) == FU_OK &&
	    ps.planned == 0 && jobs(st) == 2, "idempotent: the same tick");
	now = utc("2026-11-02 22:00:00");
	tap_ok(plan_tick(cfg, src, st, now, &ps, &err) == FU_OK &&
	    ps.planned == 0 && due_of(st, "1") == utc("2026-11-02 12:00:00"),
	    "idempotent: a later tick keeps the job and its due time");

	/* The event to come is planned once its time has passed. */
	now = utc("2026-11-03 09:00:01");
	tap_ok(plan_tick(cfg, src, st, now, &ps, &err) == FU_OK &&
	    ps.planned == 1 && due_of(st, "3") == utc("2026-11-03 11:00:00"),
	    "planned when its time comes, due two hours later (UTC)");
	tap_ok(plan_tick(cfg, src, st, now + 3600, &ps, &err) == FU_OK &&
	    ps.planned == 0 && jobs(st) == 3, "and only once");

	store_close(st);
	source_close(src);
	config_free(cfg);
	clock_zones_free();
	free(err);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			tap_diag("could not remove %s", dir);
	}
	return tap_done();
}
