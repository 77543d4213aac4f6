/* test_survey: which check-ins ask (sample, cool-down) and what a low rating sets off (call-back, note, cancel). */
#include "config.h"
#include "consent.h"
#include "spool.h"
#include "store.h"
#include "survey.h"
#include "tap.h"
#include "value.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/test_survey.XXXXXX";

static struct config *
load(const char *extra)
{
	char path[300];
	struct buf errs = { 0 };
	struct config *c;
	FILE *f;

	snprintf(path, sizeof(path), "%s/t.conf", dir);
	if ((f = fopen(path, "w")) == NULL)
		return NULL;
	fprintf(f, "[source]\ndatabase = desk.db\n[queue]\ndir = %s/queue\n"
	    "[smtp]\nfrom = Acme <support@acme.example>\n[rule checkin]\n"
	    "kind = after_resolution\ndelay = 3d\nratings = yes\n[ratings]\n"
	    "url = https://desk.example/rate\nnotify = lead@acme.example\n%s",
	    dir, extra);
	fclose(f);
	c = config_load(path, &errs);
	if (c == NULL)
		tap_diag("config: %s", buf_cstr(&errs));
	buf_free(&errs);
	return c;
}

/* A check-in to `to` for ticket `subject`, sent at `sent`. */
static int64_t
sent_checkin(struct store *st, const char *subject, const char *to,
    time_t sent)
{
	struct job_note note = { "UTC", NULL, to, "7" };
	int64_t id = 0;
	int created;
	char *err = NULL;

	if (store_job_plan_noted(st, "checkin", subject, "r", sent - 10,
	    sent - 20, &note, &created, &id, &err) != FU_OK ||
	    store_job_queued(st, id, to, "m@x", "x.eml", sent - 5, &err) !=
	    FU_OK || store_job_sending(st, id, sent, &err) != FU_OK ||
	    store_job_sent(st, id, "250", sent, &err) != FU_OK)
		tap_diag("sent_checkin: %s", err ? err : "?");
	free(err);
	return id;
}

static struct value *
row(const char *to, const char *agent)
{
	struct value *v = value_map();

	value_map_set(v, "email", value_string(to));
	value_map_set(v, "name", value_string("Ana <García>"));
	if (agent != NULL)
		value_map_set_path(v, "agent.email", value_string(agent));
	value_map_set_path(v, "agent.timezone", value_string("Europe/London"));
	value_map_set_path(v, "ticket.subject", value_string("Broken lid"));
	return v;
}

static int
count_events(struct store *st, int64_t job, const char *event)
{
	struct store_event *ev = NULL;
	int n = 0, k = 0;
	char *err = NULL;

	if (store_job_history(st, job, &ev, &n, &err) != FU_OK)
		tap_diag("history: %s", err);
	for (int i = 0; i < n; i++)
		k += strcmp(ev[i].event, event) == 0;
	store_events_free(ev, n);
	free(err);
	return k;
}

static void
test_ask(struct config *cfg, struct store *st, const struct consent *c)
{
	const struct rule_config *rule = config_rule(cfg, "checkin");
	time_t now = 1800000000;
	int64_t a = sent_checkin(st, "1", "ana@example.com", now);
	int64_t b = sent_checkin(st, "2", "ana@example.com", now);
	struct value *v = row("ana@example.com", "sam@acme.example");
	const struct value *opts;
	char *err = NULL;

	tap_ok(survey_checkin(st, cfg, rule, c, a, v, now, &err) == FU_OK &&
	    (opts = value_map_get(value_map_get(v, "rating"), "options")) !=
	    NULL && value_list_len(opts) == 5 && count_events(st, a,
	    "rating-asked") == 1, "the first check-in asks: five options");
	value_free(v);
	v = row("Ana@Example.com", "sam@acme.example");
	tap_ok(survey_checkin(st, cfg, rule, c, b, v, now + 60, &err) ==
	    FU_OK && value_map_get(v, "rating") == NULL &&
	    count_events(st, b, "rating-skipped") == 1,
	    "the second, within the cool-down, does not (any case)");
	value_free(v);
	free(err);
}

static int
spooled_with(const char *text)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "grep -rlq '%s' %s/queue/new", text, dir);
	return system(cmd) == 0;
}

static void
test_low(struct config *cfg, struct store *st, struct spool *sp)
{
	time_t now = 1800000000;
	int64_t a = sent_checkin(st, "11", "bo@example.com", now);
	int64_t b = sent_checkin(st, "12", "cy@example.com", now);
	struct store_rating_ask qa = { a, "checkin", "bo@example.com", "csat",
	    "sam@acme.example", "Sam", "Europe/London", "Bo", "Lid" };
	struct store_rating_ask qb = { b, "checkin", "cy@example.com", "csat",
	    NULL, NULL, NULL, "Cy", "No agent" };
	struct survey_stats ss;
	char *err = NULL;

	tap_ok(store_rating_request(st, &qa, now, &err) == FU_OK &&
	    store_rating_request(st, &qb, now, &err) == FU_OK &&
	    store_rating_put(st, a, "csat", 1, "Still broken", now + 100,
	    &err) == FU_OK && store_rating_put(st, b, "csat", 2, NULL,
	    now + 100, &err) == FU_OK, "two low ratings");
	tap_ok(survey_tick(cfg, st, sp, now + 200, &ss, &err) == FU_OK &&
	    ss.callbacks == 1 && ss.notes == 2 && ss.cancels == 0,
	    "a call-back (the one with an agent) and two notes (%s)",
	    err ? err : "");
	tap_ok(spooled_with("METHOD:REQUEST") && spooled_with("Still broken")
	    && spooled_with("lead@acme.example"), "spooled: the invitation "
	    "with the comment, the notes to the lead");
	tap_ok(survey_tick(cfg, st, sp, now + 300, &ss, &err) == FU_OK &&
	    ss.callbacks + ss.notes + ss.cancels == 0,
	    "a handled rating is not acted on again");
	tap_ok(store_rating_put(st, a, "csat", 5, NULL, now + 400, &err) ==
	    FU_OK && survey_tick(cfg, st, sp, now + 500, &ss, &err) == FU_OK &&
	    ss.cancels == 1 && ss.notes == 0 && spooled_with("METHOD:CANCEL"),
	    "a better rating cancels the call-back");
	free(err);
}

int
main(void)
{
	struct config *cfg;
	struct store *st = NULL;
	struct spool *sp = NULL;
	struct consent *c = NULL;
	char path[300], *err = NULL;

	if (mkdtemp(dir) == NULL)
		return 1;
	tap_ok((cfg = load("cooldown = 30d\n")) != NULL, "config");
	if (cfg == NULL)
		return tap_done();
	snprintf(path, sizeof(path), "%s/queue/state.db", dir);
	tap_ok(spool_open(cfg->queue_dir, &sp, &err) == FU_OK &&
	    store_open(path, 1000, &st, &err) == FU_OK &&
	    consent_open(cfg, 1, &c, &err) == FU_OK, "queue, state.db, secret "
	    "(%s)", err ? err : "");
	if (st != NULL && c != NULL) {
		test_ask(cfg, st, c);
		test_low(cfg, st, sp);
	}
	tap_ok(survey_owns("seq 0 REQUEST sam@acme.example") &&
	    survey_owns("rating-note 12 1800000100") &&
	    !survey_owns("2026-11-02 10:00:00") && !survey_owns(NULL),
	    "survey_owns: call-backs and notes, not check-ins");
	consent_free(c);
	store_close(st);
	spool_close(sp);
	config_free(cfg);
	free(err);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	if (system(path) != 0)
		tap_diag("cleanup failed");
	return tap_done();
}
