/* test_gate: every reason a job may not go now, every postponement, at render and at delivery. */
#include "clock.h"
#include "config.h"
#include "consent.h"
#include "gate.h"
#include "rules.h"
#include "store.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/test_gate.XXXXXX";

/* 2027-03-10 (a Wednesday) at HH:MM UTC. */
static time_t
at(int hh, int mm)
{
	time_t t;

	if (clock_parse("2027-03-10 00:00:00", &t) != FU_OK)
		abort();
	return t + hh * 3600 + mm * 60;
}

static struct value *
row_for(const char *email)
{
	struct value *row = value_map();

	value_map_set(row, "key", value_string("7"));
	if (email != NULL)
		value_map_set(row, "email", value_string(email));
	value_map_set(row, "tz", value_string("UTC"));
	return row;
}

/* The verdict for one row of rule ri at `now`, its reason and detail. */
static void
check(struct gate *g, struct store *st, const struct config *cfg, int ri,
    const struct value *row, time_t now, enum gate_verdict want,
    const char *reason, const char *detail_has, time_t until,
    const char *name)
{
	struct job job = { .id = 1, .rule = cfg->rules[ri].name,
	    .subject = (char *)(uintptr_t)"7",
	    .occurrence = (char *)(uintptr_t)"2027-03-01 10:00:00" };
	struct gate_result res;
	char *err = NULL;
	int r = gate_render(g, st, &job, &cfg->rules[ri], row, now, &res, &err);

	tap_ok(r == FU_OK && res.verdict == want &&
	    (reason == NULL ? res.reason == NULL : (res.reason != NULL &&
	    strcmp(res.reason, reason) == 0)) &&
	    (detail_has == NULL || (res.detail && strstr(res.detail,
	    detail_has))) && (until == 0 || res.until == until),
	    "%s (got %d %s: %s, until %lld; %s)", name, res.verdict,
	    res.reason ? res.reason : "-", res.detail ? res.detail : "-",
	    (long long)res.until, err ? err : "");
	gate_result_clear(&res);
	free(err);
}

/* A marketing job of rule `rule` queued for addr at time t. */
static void
queued(struct store *st, const char *rule, const char *subject,
    const char *addr, time_t t)
{
	int created;
	int64_t id;
	char *err = NULL;
	struct job_note note = { .cls = "marketing" };

	if (store_job_plan_noted(st, rule, subject, "o", t, t, &note, &created,
	    &id, &err) != FU_OK || store_job_queued(st, id, addr, "m@x",
	    "x.eml", t, &err) != FU_OK)
		tap_ok(0, "queue a job: %s", err);
	free(err);
}

static void
test_cancel(struct gate *g, struct store *st, const struct config *cfg)
{
	struct value *row;
	int n;
	char *err = NULL;

	check(g, st, cfg, 0, NULL, at(12, 0), GATE_CANCEL, "reopened",
	    "checkin 7 is no longer resolved at 2027-03-01 10:00:00",
	    0, "no source row: reopened");
	row = row_for(NULL);
	check(g, st, cfg, 0, row, at(12, 0), GATE_CANCEL, "no-address",
	    "no email address", 0, "no email: no-address");
	value_free(row);
	row = row_for("not an address");
	check(g, st, cfg, 0, row, at(12, 0), GATE_CANCEL, "bad-address",
	    "invalid address 'not an address'", 0, "bad-address");
	value_free(row);
	row = value_map();
	value_map_set(row, "email", value_stringn("a@example.com\0b@x.org",
	    21));
	check(g, st, cfg, 0, row, at(12, 0), GATE_CANCEL, "bad-address",
	    "NUL byte in address", 0, "a NUL inside the address: bad-address");
	value_free(row);

	row = row_for("sue@example.com");
	check(g, st, cfg, 0, row, at(12, 0), GATE_GO, NULL, NULL, 0,
	    "a good address at noon: go");
	consent_optout_add(st, "sue@example.com", "transactional", "t", 1, &n,
	    &err);
	check(g, st, cfg, 0, row, at(12, 0), GATE_CANCEL, "opted-out",
	    "opted out of transactional mail", 0, "opted out of the class");
	check(g, st, cfg, 1, row, at(12, 0), GATE_GO, NULL, NULL, 0,
	    "another class still goes");
	store_suppress(st, "sue@example.com", "550", 2, &err);
	check(g, st, cfg, 1, row, at(12, 0), GATE_CANCEL, "suppressed",
	    "suppressed after a permanent failure", 0,
	    "suppressed: every class");
	value_free(row);
	free(err);
}

static void
test_postpone(struct gate *g, struct store *st, const struct config *cfg)
{
	struct value *row = row_for("kim@example.com");

	(void)st;
	check(g, st, cfg, 0, row, at(21, 0), GATE_POSTPONE, "quiet-hours",
	    "quiet hours until 2027-03-11 08:00", at(32, 0),
	    "21:00 is in quiet hours: postponed to 08:00");
	check(g, st, cfg, 2, row, at(7, 0), GATE_POSTPONE, "window",
	    "send window until 2027-03-10 09:00", at(9, 0),
	    "07:00 is before the send window: postponed to 09:00");
	check(g, st, cfg, 3, row, at(7, 0), GATE_POSTPONE, "quiet-hours",
	    "quiet hours", at(8, 0),
	    "an agent reminder keeps quiet hours but not the window");
	value_free(row);
}

static void
test_caps(struct gate *g, struct store *st, const struct config *cfg)
{
	struct value *row = row_for("ann@example.com");
	time_t now = at(12, 0);

	/* [defaults] max_marketing = 2/7d; rule "promo" 1/1d. */
	queued(st, "news", "1", "ann@example.com", now - 2 * 86400);
	check(g, st, cfg, 1, row, now, GATE_GO, NULL, NULL, 0,
	    "one marketing message in the week: go");
	gate_page_begin(g);
	gate_queued(g, "ANN@example.com", &cfg->rules[1]);
	check(g, st, cfg, 1, row, now, GATE_POSTPONE, "cap",
	    "over cap 2/7d (2 marketing messages to this recipient) until "
	    "2027-03-15 12:00", 0,
	    "one in state.db and one on this page: postponed (wait for the "
	    "oldest to leave the window)");
	gate_page_begin(g);
	check(g, st, cfg, 1, row, now, GATE_GO, NULL, NULL, 0,
	    "a new page forgets the last one's messages");
	queued(st, "promo", "2", "ann@example.com", now - 3600);
	check(g, st, cfg, 4, row, now, GATE_CANCEL, "over-cap",
	    "over cap: 2 marketing messages to this recipient already in the "
	    "window of max_marketing = 2/7d ([defaults])", 0,
	    "over the [defaults] cap with over_cap = drop: cancelled");
	value_free(row);
	row = row_for("bo@example.com");
	queued(st, "promo", "3", "bo@example.com", now - 3600);
	check(g, st, cfg, 4, row, now, GATE_CANCEL, "over-cap",
	    "from this rule already in the window of max_marketing = 1/1d "
	    "(the rule's)", 0, "over the rule's own cap: cancelled");
	check(g, st, cfg, 0, row, now, GATE_GO, NULL, NULL, 0,
	    "transactional mail has no cap");
	value_free(row);
}

static void
test_deliver(struct store *st, const struct config *cfg)
{
	struct job job = { .id = 9, .rule = (char *)(uintptr_t)"news",
	    .recipient = (char *)(uintptr_t)"zed@example.com" };
	struct gate_result res;
	char *err = NULL;
	int n;

	tap_ok(gate_deliver(cfg, st, &job, &res, &err) == FU_OK &&
	    res.verdict == GATE_GO, "deliver: nothing against it: go");
	consent_optout_add(st, "zed@example.com", "marketing", "t", 1, &n,
	    &err);
	tap_ok(gate_deliver(cfg, st, &job, &res, &err) == FU_OK &&
	    res.verdict == GATE_CANCEL && strcmp(res.reason, "opted-out") ==
	    0 && strcmp(res.detail, "the recipient opted out since the message "
	    "was queued") == 0, "deliver: opted out since queued");
	gate_result_clear(&res);
	job.cls = (char *)(uintptr_t)"transactional";
	tap_ok(gate_deliver(cfg, st, &job, &res, &err) == FU_OK &&
	    res.verdict == GATE_GO, "deliver: the class the job was planned "
	    "with counts, not the rule's now");
	store_suppress(st, "zed@example.com", "550", 2, &err);
	tap_ok(gate_deliver(cfg, st, &job, &res, &err) == FU_OK &&
	    res.verdict == GATE_CANCEL && strcmp(res.reason, "suppressed") ==
	    0 && strstr(res.detail, "since the message was queued"),
	    "deliver: suppressed since queued");
	gate_result_clear(&res);
	free(err);
}

int
main(void)
{
	struct buf errs = { 0 };
	struct config *cfg;
	struct store *st = NULL;
	struct gate *g;
	char conf[256], path[256], *err = NULL;
	FILE *f;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(conf, sizeof(conf), "%s/t.conf", dir);
	if ((f = fopen(conf, "w")) == NULL)
		return 1;
	fprintf(f, "[source]\ndatabase = helpdesk.db\n[queue]\ndir = %s\n"
	    "[smtp]\nfrom = Acme <support@example.com>\n"
	    "[unsubscribe]\nurl = https://unsub.example/u\n"
	    "[defaults]\ntimezone = UTC\nquiet_hours = 20:00-08:00\n"
	    "max_marketing = 2/7d\n"
	    "[rule checkin]\nkind = after_resolution\ndelay = 3d\n"
	    "[rule news]\nkind = birthday\n"
	    "[rule office]\nkind = after_resolution\ndelay = 3d\n"
	    "send_window = Mon-Fri 09:00-17:00\n"
	    "[rule remind]\nkind = agent_reminder\ndelay = 1d\n"
	    "send_window = Mon-Fri 09:00-17:00\n"
	    "[rule promo]\nkind = birthday\nmax_marketing = 1/1d\n"
	    "over_cap = drop\n", dir);
	fclose(f);
	if ((cfg = config_load(conf, &errs)) == NULL) {
		tap_ok(0, "config loads: %s", buf_cstr(&errs));
		return tap_done();
	}
	snprintf(path, sizeof(path), "%s/state.db", dir);
	if (store_open(path, 1000, &st, &err) != FU_OK) {
		tap_ok(0, "store_open: %s", err);
		return tap_done();
	}
	rules_time_load(cfg, NULL);
	g = gate_new(cfg);
	test_cancel(g, st, cfg);
	test_postpone(g, st, cfg);
	test_caps(g, st, cfg);
	test_deliver(st, cfg);
	gate_free(g);
	store_close(st);
	config_free(cfg);
	clock_zones_free();
	buf_free(&errs);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			tap_diag("could not remove %s", dir);
	}
	return tap_done();
}
