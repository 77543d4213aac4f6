/* test_render: a tick's page of due jobs: the gate's verdicts and the messages, recorded together after the spool commit. */
#include "clock.h"
#include "config.h"
#include "consent.h"
#include "log.h"
#include "render.h"
#include "rules.h"
#include "source.h"
#include "spool.h"
#include "store.h"
#include "tap.h"

#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/test_render.XXXXXX";

static const char *const tickets[] = {
	/* id, resolved_at, email, tz */
	"1", "2027-03-07 12:00:00", "ann@example.com", "UTC",
	"3", "2027-03-07 12:00:00", "kim@example.com", "Asia/Tokyo",
	"4", "2027-03-07 12:00:00", "not-an-address", "UTC",
	"5", "2027-03-07 12:00:00", "out@example.com", "UTC",
};

static int
make_source(const char *path)
{
	sqlite3 *db;
	char *sql;
	int ok;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		return 0;
	ok = sqlite3_exec(db, "CREATE TABLE t (id TEXT PRIMARY KEY, "
	    "resolved_at TEXT, email TEXT, tz TEXT)", NULL, NULL, NULL) ==
	    SQLITE_OK;
	for (size_t i = 0; ok && i < sizeof(tickets) / sizeof(*tickets);
	    i += 4) {
		sql = sqlite3_mprintf("INSERT INTO t VALUES (%Q, %Q, %Q, %Q)",
		    tickets[i], tickets[i + 1], tickets[i + 2], tickets[i + 3]);
		ok = sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
		sqlite3_free(sql);
	}
	sqlite3_close(db);
	return ok;
}

static struct config *
load(void)
{
	struct buf errs = { 0 };
	struct config *cfg;
	char conf[256], cwd[512], src[300];
	FILE *f;

	if (mkdtemp(dir) == NULL || getcwd(cwd, sizeof(cwd)) == NULL)
		return NULL;
	snprintf(src, sizeof(src), "%s/helpdesk.db", dir);
	if (!make_source(src))
		return NULL;
	snprintf(conf, sizeof(conf), "%s/t.conf", dir);
	if ((f = fopen(conf, "w")) == NULL)
		return NULL;
	fprintf(f, "[source]\ndatabase = helpdesk.db\n[queue]\ndir = %s/q\n"
	    "[smtp]\nfrom = Acme <support@example.com>\n"
	    "[templates]\ndir = %s/tests/unit/golden/templates\n"
	    "[defaults]\ntimezone = UTC\nquiet_hours = 20:00-08:00\n"
	    "[rule checkin]\nkind = after_resolution\ndelay = 3d\n"
	    "query = SELECT id AS \"key\", resolved_at AS \"at\", email, "
	    "email AS name, tz, id AS \"ticket.id\" FROM t "
	    "WHERE resolved_at >= :since AND resolved_at < :until\n",
	    dir, cwd);
	fclose(f);
	if ((cfg = config_load(conf, &errs)) == NULL)
		tap_ok(0, "config loads: %s", buf_cstr(&errs));
	buf_free(&errs);
	return cfg;
}

/* The job's state, due_at, reason and last event, read directly. */
static void
job_row(const char *db, int64_t id, char *state, time_t *due, char *reason,
    char *event)
{
	sqlite3 *h;
	sqlite3_stmt *s;

	*state = *reason = *event = '\0';
	if (sqlite3_open(db, &h) != SQLITE_OK)
		return;
	if (sqlite3_prepare_v2(h, "SELECT state, due_at, coalesce(reason, ''), "
	    "(SELECT event FROM events WHERE job_id = j.id ORDER BY id DESC "
	    "LIMIT 1) FROM jobs j WHERE id = ?", -1, &s, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(s, 1, id);
		if (sqlite3_step(s) == SQLITE_ROW) {
			snprintf(state, 16, "%s", sqlite3_column_text(s, 0));
			*due = (time_t)sqlite3_column_int64(s, 1);
			snprintf(reason, 32, "%s", sqlite3_column_text(s, 2));
			snprintf(event, 32, "%s", sqlite3_column_text(s, 3) ?
			    (const char *)sqlite3_column_text(s, 3) : "");
		}
		sqlite3_finalize(s);
	}
	sqlite3_close(h);
}

struct page {
	const char	*db;
	int64_t		 postponed_id;
	int		 pages, seen_postponed;
};

/* After each page's commit: its postponement is recorded by then. */
static void
page_done(void *arg)
{
	struct page *pg = arg;
	char state[16], reason[32], event[32];
	time_t due = 0;

	pg->pages++;
	job_row(pg->db, pg->postponed_id, state, &due, reason, event);
	if (strcmp(event, "postponed") == 0)
		pg->seen_postponed = 1;
}

static int64_t
plan(struct store *st, const char *key, const char *at, time_t due)
{
	int created;
	int64_t id = 0;
	char *err = NULL;

	if (store_job_plan(st, "checkin", key, at, due, due, &created, &id,
	    &err) != FU_OK)
		tap_ok(0, "plan %s: %s", key, err);
	free(err);
	return id;
}

static int
spool_has(const char *qdir, int64_t id, const char *want_name)
{
	char path[400], name[64];
	DIR *d;
	struct dirent *de;
	int found = 0;

	snprintf(path, sizeof(path), "%s/new", qdir);
	snprintf(name, sizeof(name), "%lld.", (long long)id);
	if ((d = opendir(path)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, name, strlen(name)) == 0 &&
		    strcmp(de->d_name, want_name) == 0)
			found = 1;
	closedir(d);
	return found;
}

static void
test_tick(const struct config *cfg)
{
	struct buf errs = { 0 }, msg = { 0 };
	struct render *rd;
	struct store *st;
	struct source *src;
	struct spool *sp;
	struct render_stats stats;
	struct page pg = { 0 };
	char db[300], *err = NULL, state[16], reason[32], event[32];
	time_t now, due;
	int64_t id[5];
	int n;

	clock_parse("2027-03-10 12:00:00", &now);
	snprintf(db, sizeof(db), "%s/state.db", cfg->queue_dir);
	if (spool_open(cfg->queue_dir, &sp, &err) != FU_OK ||
	    store_open(db, 1000, &st, &err) != FU_OK ||
	    source_open(cfg->database, 1000, &src, &err) != FU_OK ||
	    (rd = render_open(cfg, 0, &errs)) == NULL) {
		tap_ok(0, "open: %s %s", err ? err : "", buf_cstr(&errs));
		return;
	}
	id[0] = plan(st, "1", "2027-03-07 12:00:00", now - 60);
	id[1] = plan(st, "2", "2027-03-07 12:00:00", now - 50);
	id[2] = plan(st, "3", "2027-03-07 12:00:00", now - 40);
	id[3] = plan(st, "4", "2027-03-07 12:00:00", now - 30);
	id[4] = plan(st, "5", "2027-03-07 12:00:00", now - 20);
	consent_optout_add(st, "out@example.com", "all", "t", 1, &n, &err);
	pg.db = db;
	pg.postponed_id = id[2];
	tap_ok(render_tick(rd, st, src, sp, now, page_done, NULL, &pg, &stats,
	    &err) == FU_OK, "the tick renders (%s)", err ? err : "");
	tap_ok(stats.queued == 1 && stats.cancelled == 3 && stats.failed == 0 &&
	    stats.held == 0, "1 queued, 3 cancelled (%d %d %d %d)",
	    stats.queued, stats.cancelled, stats.failed, stats.held);
	tap_ok(pg.pages == 1 && pg.seen_postponed, "one page; its "
	    "postponement is committed with it");

	job_row(db, id[0], state, &due, reason, event);
	tap_ok(strcmp(state, "queued") == 0, "a good row: queued (%s)", state);
	{
		struct job j;

		if (store_job_get(st, id[0], &j, &err) == FU_OK) {
			tap_ok(spool_read_message(sp, j.spool_name, &msg, &err) ==
			    FU_OK && spool_has(cfg->queue_dir, id[0],
			    j.spool_name), "its message is new/%s, the size "
			    "in the name checked on read", j.spool_name);
			store_job_clear(&j);
		}
	}
	job_row(db, id[1], state, &due, reason, event);
	tap_ok(strcmp(state, "cancelled") == 0 &&
	    strcmp(reason, "reopened") == 0, "no source row: cancelled "
	    "reopened (%s %s)", state, reason);
	job_row(db, id[2], state, &due, reason, event);
	tap_ok(strcmp(state, "planned") == 0 && due == now + 11 * 3600 &&
	    strcmp(event, "postponed") == 0, "21:00 in Tokyo: postponed to "
	    "08:00 there, still planned (%s, %+ld s)", state,
	    (long)(due - now));
	job_row(db, id[3], state, &due, reason, event);
	tap_ok(strcmp(reason, "bad-address") == 0, "bad address: cancelled "
	    "(%s)", reason);
	job_row(db, id[4], state, &due, reason, event);
	tap_ok(strcmp(reason, "opted-out") == 0, "opted out: cancelled (%s)",
	    reason);

	/* The next tick at the same time looks at nothing twice. */
	tap_ok(render_tick(rd, st, src, sp, now, NULL, NULL, NULL, &stats,
	    &err) == FU_OK && stats.queued == 0 && stats.cancelled == 0,
	    "a second tick: nothing more to do");
	render_close(rd);
	source_close(src);
	store_close(st);
	spool_close(sp);
	buf_free(&errs);
	buf_free(&msg);
	free(err);
}

/*
 * A source that fails after the subject's first row (here: an integer
 * overflow in the second): no row comes back, and the first is not kept
 * (the sanitizer build sees a leak otherwise).
 */
static void
test_fetch_fails_midway(void)
{
	struct buf errs = { 0 };
	struct config *cfg = NULL;
	struct source *src = NULL;
	struct value *row = (struct value *)&errs;	/* not NULL */
	char conf[256], db[256], *err = NULL;
	sqlite3 *h;
	FILE *f;
	int r;

	snprintf(db, sizeof(db), "%s/failing.db", dir);
	snprintf(conf, sizeof(conf), "%s/failing.conf", dir);
	if (sqlite3_open(db, &h) != SQLITE_OK || sqlite3_exec(h, "CREATE TABLE "
	    "u (id TEXT, at TEXT, email TEXT); INSERT INTO u VALUES ('9', "
	    "'2027-03-01 10:00:00', 'a@example.com'), ('9', "
	    "'2027-03-02 10:00:00', 'b@example.com')", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		tap_ok(0, "failing source: %s", sqlite3_errmsg(h));
		sqlite3_close(h);
		return;
	}
	sqlite3_close(h);
	if ((f = fopen(conf, "w")) == NULL)
		return;
	fprintf(f, "[source]\ndatabase = failing.db\n[queue]\ndir = %s/q\n"
	    "[smtp]\nfrom = Acme <support@example.com>\n"
	    "[rule flaky]\nkind = after_resolution\ndelay = 3d\n"
	    "query = SELECT id AS \"key\", at AS \"at\", email, CASE WHEN "
	    "email = 'b@example.com' THEN abs(-9223372036854775807 - 1) END "
	    "AS boom FROM u WHERE at >= :since AND at < :until\n", dir);
	fclose(f);
	if ((cfg = config_load(conf, &errs)) == NULL ||
	    source_open(cfg->database, 1000, &src, &err) != FU_OK) {
		tap_ok(0, "failing config: %s %s", buf_cstr(&errs),
		    err ? err : "");
		goto out;
	}
	r = rules_fetch(cfg, src, &cfg->rules[0], "9", NULL, &row, &err);
	tap_ok(r == FU_PERMFAIL && row == NULL && err && strstr(err,
	    "overflow"), "a source failing after the first row: an error, "
	    "no row (%d, %s)", r, err ? err : "");
	if (r == FU_OK)
		value_free(row);
out:
	source_close(src);
	config_free(cfg);
	buf_free(&errs);
	free(err);
}

int
main(void)
{
	struct config *cfg;

	log_init(1, 0);
	if ((cfg = load()) == NULL)
		return tap_done();
	test_tick(cfg);
	test_fetch_fails_midway();
	config_free(cfg);
	clock_zones_free();
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			tap_diag("could not remove %s", dir);
	}
	return tap_done();
}
