/* plan: tick step 1: source rows that call for a message become planned jobs. */
#include "plan.h"
#include "clock.h"
#include "ical.h"
#include "log.h"
#include "rules.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * The query compares times as text, and a source may mix the two spellings
 * ("2026-11-03 09:00:00" and "2026-11-03T09:00:00Z") which sort differently
 * within a day; so the text window is a day wider on each side and the exact
 * window is applied here, after parsing.
 */
#define PLAN_TEXT_SLACK	(24 * 60 * 60)

/*
 * A rule's rows are planned in transactions of PLAN_GROUP rows, not one
 * per rule: a crash or an error late in a large backlog loses one group at
 * most, and status and queue commands wait for a group, not for the rule.
 */
#define PLAN_GROUP	1000

struct plan_ctx {
	const struct config	*cfg;
	const struct rule_config *rule;
	struct store		*st;
	time_t			 now, from;
	struct plan_stats	*stats;
	char			**err;
	int			 rows;	/* in the open transaction */
};

/* After each row: commit a full group and open the next. */
static int
plan_group(struct plan_ctx *pc)
{
	int r;

	if (++pc->rows < PLAN_GROUP)
		return FU_OK;
	pc->rows = 0;
	if ((r = store_commit(pc->st, pc->err)) != FU_OK)
		return r;
	return store_begin(pc->st, pc->err);
}

static const char *
field(const struct value *row, const char *name, char *num, size_t numlen)
{
	const struct value *v = value_map_get(row, name);

	if (v == NULL || value_type(v) == VALUE_NULL)
		return NULL;
	if (value_type(v) == VALUE_NUMBER) {
		snprintf(num, numlen, "%.15g", value_as_number(v));
		return num;
	}
	return value_as_string(v, NULL);
}

/*
 * Insert the job for (rule, key, occurrence) unless it exists, with what
 * `why` and the caps need to know of it in the same row: its zone, class,
 * and the recipient and customer as planned (a job cancelled at due time
 * never gets a recipient otherwise). A new one gets a log line.
 */
static int
plan_insert(struct plan_ctx *pc, const struct value *row, const char *key,
    const char *occ, const struct clock_zone *z, time_t due)
{
	char dtext[20], ltext[32], cbuf[32];
	const struct job_note note = {
		.tz = clock_zone_name(z),
		.cls = config_class_name(pc->rule->cls),
		.email = value_as_string(value_map_get(row, "email"), NULL),
		.customer = field(value_map_get(row, "customer"), "id", cbuf,
		    sizeof(cbuf)),
	};
	int64_t id;
	int created, r;

	r = store_job_plan_noted(pc->st, pc->rule->name, key, occ, due,
	    pc->now, &note, &created, &id, pc->err);
	if (r != FU_OK || !created)
		return r;
	pc->stats->planned++;
	log_info("plan: rule %s: %s %s (%s) → job %lld due %s UTC (%s %s)",
	    pc->rule->name, rules_kind_name(pc->rule->kind), key, occ,
	    (long long)id, clock_format_sql(due, dtext),
	    clock_format_local(z, due, ltext), note.tz);
	return FU_OK;
}

/*
 * Birthdays and anniversaries: the row's `at` is the date itself; the
 * job is the year's occurrence (rules_occurrence), once per customer and
 * year whatever the tick, with send_at in the customer's zone.
 */
static int
plan_yearly(struct plan_ctx *pc, struct value *row, const char *key)
{
	char abuf[32];
	const char *at = field(row, "at", abuf, sizeof(abuf));
	const struct clock_zone *z = rules_zone(pc->cfg,
	    value_as_string(value_map_get(row, "tz"), NULL));
	struct rules_occurrence o;
	int n, r = FU_OK;

	if (key == NULL || (n = rules_occurrence(pc->cfg, pc->rule, z, at,
	    pc->now, &o)) == -1) {
		pc->stats->skipped++;
		log_warnx("plan: rule %s: row with key '%.40s' has no readable "
		    "date '%.40s': skipped", pc->rule->name, key ? key :
		    "(null)", at ? at : "(null)");
		goto done;
	}
	if (n == 0)
		goto done;
	r = plan_insert(pc, row, key, o.occurrence, z, o.due);
done:
	value_free(row);
	return r == FU_OK ? plan_group(pc) : r;
}

static int
plan_row(struct value *row, void *arg)
{
	struct plan_ctx *pc = arg;
	char kbuf[32], abuf[32];
	const char *key = field(row, "key", kbuf, sizeof(kbuf));
	const char *at = field(row, "at", abuf, sizeof(abuf));
	const struct clock_zone *z;
	const char *occ = at;
	time_t t, due;
	int r = FU_OK;

	pc->stats->seen++;
	if (rules_kind_yearly(pc->rule->kind))
		return plan_yearly(pc, row, key);
	if (key == NULL || at == NULL || clock_parse(at, &t) != FU_OK) {
		pc->stats->skipped++;
		log_warnx("plan: rule %s: row with key '%.40s' has an "
		    "unreadable time '%.40s': skipped", pc->rule->name,
		    key ? key : "(null)", at ? at : "(null)");
		goto done;
	}
	if (t > pc->now || t <= pc->from)
		goto done;
	/* Due in the recipient's zone: their wall clock, window, quiet hours. */
	z = rules_zone(pc->cfg, value_as_string(value_map_get(row, "tz"), NULL));
	due = rules_due(pc->cfg, pc->rule, z, t);
	/* A loyalty milestone is reached once: it, not the moment, is the key. */
	if (pc->rule->kind == RULE_LOYALTY)
		occ = value_as_string(value_map_get(row, "milestone"), NULL) ?
		    value_as_string(value_map_get(row, "milestone"), NULL) :
		    "milestone";
	r = plan_insert(pc, row, key, occ, z, due);
done:
	value_free(row);
	return r == FU_OK ? plan_group(pc) : r;
}

/* ---- agent reminders ---- */

/*
 * A reminder follows its ticket. Each tick, every ticket the rule's query
 * returns in the window, and every reminder still ahead, is compared with
 * what the agent's calendar was last sent (table reminders):
 *   new and needed          → REQUEST, SEQUENCE 0
 *   moved (new DTSTART)     → REQUEST, same UID, SEQUENCE + 1
 *   reassigned              → CANCEL to the old agent and REQUEST to the
 *                             new one, same UID, SEQUENCE + 1
 *   no longer needed        → CANCEL, SEQUENCE + 1
 *   needed again            → REQUEST, SEQUENCE + 1
 * Messages still planned when a newer version comes are cancelled
 * ('superseded'), and a CANCEL goes only to an agent who was sent a REQUEST.
 * The messages themselves are due now (moved out of quiet hours); DTSTART
 * is what the rule's delay, window and holidays say in the agent's zone.
 */
static int
reminder_message(struct plan_ctx *pc, const struct reminder *rm,
    const char *method, const char *agent, const char *agent_name)
{
	const struct clock_rule *cr = rules_clock(pc->cfg, pc->rule);
	struct clock_rule quiet;
	const struct clock_zone *z = rules_zone(pc->cfg, rm->tz);
	time_t due;
	int64_t id;
	int r;

	/* The mail itself only avoids quiet hours; the window is DTSTART's. */
	memset(&quiet, 0, sizeof(quiet));
	quiet.quiet = cr->quiet;
	due = clock_next_open(&quiet, z, pc->now, NULL);
	if ((r = store_reminder_message(pc->st, rm, method, agent, agent_name,
	    due, pc->now, &id, pc->err)) != FU_OK)
		return r;
	if (id != 0 && (r = store_job_set_tz(pc->st, id, clock_zone_name(z),
	    pc->err)) != FU_OK)
		return r;
	if (id != 0) {
		char a[20], b[32];

		pc->stats->planned++;
		log_info("plan: rule %s: reminder %s: %s SEQUENCE %d to @%s for "
		    "%s UTC (%s %s) → job %lld", pc->rule->name, rm->subject,
		    method, rm->sequence, strchr(agent, '@') ?
		    strchr(agent, '@') + 1 : agent, clock_format_sql(rm->dtstart,
		    a), clock_format_local(z, rm->dtstart, b), rm->tz,
		    (long long)id);
	}
	return FU_OK;
}

static int
reminder_cancel_old(struct plan_ctx *pc, struct reminder *rm)
{
	int yes, n, r;

	if ((r = store_reminder_supersede(pc->st, rm->rule, rm->subject,
	    pc->now, &n, pc->err)) != FU_OK)
		return r;
	if ((r = store_reminder_delivered(pc->st, rm->rule, rm->subject,
	    rm->agent, &yes, pc->err)) != FU_OK)
		return r;
	if (!yes)
		return FU_OK;	/* the agent never got it: nothing to cancel */
	return reminder_message(pc, rm, "CANCEL", rm->agent, rm->agent_name);
}

/* Compare one ticket (row, NULL when the source no longer has it) with its reminder. */
static int
reminder_follow(struct plan_ctx *pc, const char *key, const struct value *row)
{
	struct reminder rm;
	const struct value *nv = row ? value_map_get(row, "needed") : NULL;
	const char *email = row ? value_as_string(value_map_get(row, "email"),
	    NULL) : NULL;
	const char *name = row ? value_as_string(value_map_get(row, "name"),
	    NULL) : NULL;
	const char *zname = row ? value_as_string(value_map_get(row, "tz"),
	    NULL) : NULL;
	char abuf[32];
	const char *at = row ? field(row, "at", abuf, sizeof(abuf)) : NULL;
	const struct clock_zone *z = rules_zone(pc->cfg, zname);
	time_t t = 0, start = 0;
	int needed, found, r;

	/* `needed` absent: yes; NULL, 0, "0", "" or false: no (SQLite
	 * integers arrive as text, see source.c). */
	if (nv == NULL)
		needed = 1;
	else if (value_type(nv) == VALUE_NUMBER)
		needed = value_as_number(nv) != 0;
	else if (value_type(nv) == VALUE_STRING) {
		const char *sv = value_as_string(nv, NULL);

		needed = strcmp(sv, "0") != 0 && *sv != '\0' &&
		    strcasecmp(sv, "false") != 0 && strcasecmp(sv, "no") != 0;
	} else
		needed = value_type(nv) != VALUE_NULL && value_truthy(nv);
	needed = needed && row != NULL && email != NULL && *email != '\0' &&
	    at != NULL && clock_parse(at, &t) == FU_OK;
	if (needed)
		start = rules_due(pc->cfg, pc->rule, z, t);
	if ((r = store_reminder_get(pc->st, pc->rule->name, key, &rm, &found,
	    pc->err)) != FU_OK)
		return r;
	if (!found) {
		if (!needed || start <= pc->now)
			return FU_OK;	/* nothing to remind, or too late */
		memset(&rm, 0, sizeof(rm));
		rm.rule = xstrdup(pc->rule->name);
		rm.subject = xstrdup(key);
		rm.uid = rules_reminder_uid(pc->cfg, pc->rule->name, key);
		rm.sequence = 0;
		goto request;
	}
	if (!rm.active) {
		if (!needed || start <= pc->now)
			goto done;
		rm.sequence++;		/* needed again: same UID */
		goto request;
	}
	if (!needed) {
		if (rm.dtend <= pc->now)
			goto done;	/* it has happened: leave it be */
		rm.sequence++;
		if ((r = reminder_cancel_old(pc, &rm)) != FU_OK)
			goto done;
		rm.active = 0;
		r = store_reminder_put(pc->st, &rm, pc->now, pc->err);
		goto done;
	}
	if (strcasecmp(rm.agent, email) != 0) {
		rm.sequence++;		/* reassigned */
		if ((r = reminder_cancel_old(pc, &rm)) != FU_OK)
			goto done;
		goto request;
	}
	if (start != rm.dtstart || strcmp(rm.tz, clock_zone_name(z)) != 0) {
		int n;

		if (start <= pc->now && rm.dtend <= pc->now)
			goto done;
		rm.sequence++;		/* moved */
		if ((r = store_reminder_supersede(pc->st, rm.rule, rm.subject,
		    pc->now, &n, pc->err)) != FU_OK)
			goto done;
		goto request;
	}
	goto done;
request:
	free(rm.agent);
	free(rm.agent_name);
	free(rm.tz);
	free(rm.at);
	rm.agent = xstrdup(email);
	rm.agent_name = name ? xstrdup(name) : NULL;
	rm.tz = xstrdup(clock_zone_name(z));
	rm.at = xstrdup(at);
	rm.active = 1;
	rm.dtstart = start;
	rm.dtend = start + pc->rule->duration;
	if ((r = store_reminder_put(pc->st, &rm, pc->now, pc->err)) == FU_OK)
		r = reminder_message(pc, &rm, "REQUEST", rm.agent,
		    rm.agent_name);
done:
	store_reminder_clear(&rm);
	return r;
}

static int
reminder_row(struct value *row, void *arg)
{
	struct plan_ctx *pc = arg;
	char kbuf[32];
	const char *key = field(row, "key", kbuf, sizeof(kbuf));
	int r = FU_OK;

	pc->stats->seen++;
	if (key == NULL)
		pc->stats->skipped++;
	else
		r = reminder_follow(pc, key, row);
	value_free(row);
	return r == FU_OK ? plan_group(pc) : r;
}

struct one_row {
	struct value	*row;
};

static int
keep_row(struct value *row, void *arg)
{
	struct one_row *o = arg;

	if (o->row == NULL)
		o->row = row;
	else
		value_free(row);
	return FU_OK;
}

static int
plan_reminders(struct plan_ctx *pc, struct source *src,
    const struct source_params *p)
{
	struct reminder *list;
	char *sql;
	int n, r;

	/* New and changed tickets in the window... */
	if ((r = source_select(src, rules_query(pc->rule), p, reminder_row, pc,
	    pc->err)) != FU_OK)
		return r;
	/* ...and every reminder still ahead, whatever its ticket's window. */
	if ((r = store_reminders_active(pc->st, pc->rule->name, pc->now, &list,
	    &n, pc->err)) != FU_OK)
		return r;
	sql = rules_recheck_query(pc->rule);
	for (int i = 0; i < n && r == FU_OK; i++) {
		struct source_params q = { .since = RULES_TIME_MIN,
		    .until = RULES_TIME_MAX, .key = list[i].subject };
		struct one_row o = { NULL };

		if ((r = source_select(src, sql, &q, keep_row, &o, pc->err)) ==
		    FU_OK)
			r = reminder_follow(pc, list[i].subject, o.row);
		value_free(o.row);
		if (r == FU_OK)
			r = plan_group(pc);
	}
	free(sql);
	store_reminders_free(list, n);
	return r;
}

/* ---- [calendar] feed: one .ics per agent, rewritten every tick ---- */

/*
 * An agent's file name: the address percent-encoded, one to one (two
 * agents never share a file: "a/b@x" is a%2Fb@x, "a_b@x" stays a_b@x).
 * Kept as they are: [A-Za-z0-9@_-], and '.' but in front (no hidden file,
 * no "." or ".."); '%' itself is encoded.
 */
static char *
feed_name(const char *agent)
{
	struct buf b = { 0 };

	for (const char *p = agent; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || (c && strchr("@_-", c)) ||
		    (c == '.' && p != agent))
			buf_putc(&b, (char)c);
		else
			buf_printf(&b, "%%%02X", c);
	}
	return buf_steal(&b);
}

/* The agent a feed file is named for (feed_name reversed); NULL: not ours. */
static char *
feed_agent(const char *name)
{
	struct buf b = { 0 };
	char *again;

	for (const char *p = name; *p; p++) {
		char hex[3] = { 0 };
		unsigned long c = 0;

		if (*p != '%')
			buf_putc(&b, *p);
		else if (isxdigit((unsigned char)p[1]) &&
		    isxdigit((unsigned char)p[2]) &&
		    (hex[0] = p[1], hex[1] = p[2],
		    c = strtoul(hex, NULL, 16)) != 0) {
			buf_putc(&b, (char)c);
			p += 2;
		} else {
			buf_free(&b);
			return NULL;
		}
	}
	/* Only a name feed_name would give: one file per agent. */
	again = feed_name(buf_cstr(&b));
	if (strcmp(again, name) != 0) {
		free(again);
		buf_free(&b);
		return NULL;
	}
	free(again);
	return buf_steal(&b);
}

/* Atomically (util_write_atomic): a reader sees the old feed or the new one. */
static int
feed_write(const char *dir, const char *name, const struct buf *b)
{
	char *path = xasprintf("%s/%s.ics", dir, name);
	const char *what;
	int ok;

	ok = util_write_atomic(path, b->data, b->len, 0640, 0, &what) == 0;
	if (!ok)
		log_warn("plan: calendar feed %s: %s", path, what);
	free(path);
	return ok;
}

static void
feed_one(const struct config *cfg, const char *agent,
    const struct reminder *rms, int n, struct buf *out)
{
	struct ical_event *ev = xcalloc((size_t)n + 1, sizeof(*ev));
	char **summaries = xcalloc((size_t)n + 1, sizeof(char *));
	char *err = NULL, *name;

	for (int i = 0; i < n; i++) {
		summaries[i] = xasprintf("Reminder: ticket %s (%s)",
		    rms[i].subject, rms[i].rule);
		ev[i].uid = rms[i].uid;
		ev[i].sequence = rms[i].sequence;
		ev[i].dtstamp = clock_now();
		ev[i].start = rms[i].dtstart;
		ev[i].end = rms[i].dtend;
		ev[i].zone = rules_zone(cfg, rms[i].tz);
		ev[i].summary = summaries[i];
		ev[i].organizer_addr = cfg->from_addr;
		ev[i].attendee_addr = rms[i].agent;
		ev[i].attendee_name = rms[i].agent_name;
	}
	name = xasprintf("followupd reminders for %s", agent);
	if (ical_feed(name, ev, (size_t)n, out, &err) != FU_OK) {
		log_warnx("plan: calendar feed for @%s: %s", strchr(agent, '@') ?
		    strchr(agent, '@') + 1 : agent, err);
		buf_reset(out);
	}
	free(err);
	free(name);
	for (int i = 0; i < n; i++)
		free(summaries[i]);
	free(summaries);
	free(ev);
}

static void
plan_feeds(const struct config *cfg, struct store *st, time_t now)
{
	struct reminder *list;
	char *err = NULL, **written = NULL;
	size_t nwritten = 0;
	DIR *d;
	int n;

	/* Agents' addresses and ticket numbers: not for every local user. */
	if (mkdir(cfg->calendar_feed, 0750) == -1 && errno != EEXIST) {
		log_warn("plan: calendar feed directory %s", cfg->calendar_feed);
		return;
	}
	if (store_reminders_active(st, NULL, now, &list, &n, &err) != FU_OK) {
		log_warnx("plan: calendar feed: %s", err);
		free(err);
		return;
	}
	/* The list is ordered by agent: one file per run of equal agents. */
	for (int i = 0, j; i < n; i = j) {
		struct buf b = { 0 };

		for (j = i; j < n && strcasecmp(list[j].agent, list[i].agent) == 0;
		    j++)
			;
		feed_one(cfg, list[i].agent, &list[i], j - i, &b);
		if (b.len > 0) {
			written = xrealloc(written, (nwritten + 1) *
			    sizeof(*written));
			written[nwritten] = feed_name(list[i].agent);
			feed_write(cfg->calendar_feed, written[nwritten], &b);
			nwritten++;
		}
		buf_free(&b);
	}
	/* Agents with nothing ahead get an empty calendar, not a stale one. */
	if ((d = opendir(cfg->calendar_feed)) != NULL) {
		struct dirent *de;

		while ((de = readdir(d)) != NULL) {
			size_t len = strlen(de->d_name), k;
			char *base, *agent;

			if (de->d_name[0] == '.' || len < 5 ||
			    strcmp(de->d_name + len - 4, ".ics") != 0)
				continue;
			base = xstrndup(de->d_name, len - 4);
			for (k = 0; k < nwritten; k++)
				if (strcmp(written[k], base) == 0)
					break;
			if (k == nwritten && (agent = feed_agent(base)) != NULL) {
				struct buf b = { 0 };

				feed_one(cfg, agent, NULL, 0, &b);
				if (b.len > 0)
					feed_write(cfg->calendar_feed, base, &b);
				buf_free(&b);
				free(agent);
			}
			free(base);
		}
		closedir(d);
	}
	for (size_t k = 0; k < nwritten; k++)
		free(written[k]);
	free(written);
	store_reminders_free(list, n);
}

int
plan_tick(const struct config *cfg, struct source *src, struct store *st,
    time_t now, struct plan_stats *stats, char **err)
{
	int worst = FU_OK;

	memset(stats, 0, sizeof(*stats));
	for (int i = 0; i < cfg->nrules; i++) {
		const struct rule_config *rule = &cfg->rules[i];
		struct plan_ctx pc = { cfg, rule, st, now, now - rule->lookback,
		    stats, err, 0 };
		char since[20], until[20], nowtext[20];
		struct source_params p = {
			.since = clock_format_sql(pc.from - PLAN_TEXT_SLACK,
			    since),
			.until = clock_format_sql(now + PLAN_TEXT_SLACK, until),
			.now = clock_format_sql(now, nowtext),
		};
		int r;

		if (!rule->enabled)
			continue;
		if ((r = store_begin(st, err)) != FU_OK)
			return r;
		if (rule->kind == RULE_AGENT_REMINDER)
			r = plan_reminders(&pc, src, &p);
		else
			r = source_select(src, rules_query(rule), &p, plan_row,
			    &pc, err);
		if (r == FU_PERMFAIL || (r == FU_TEMPFAIL &&
		    source_timed_out(src))) {
			/* This rule's query fails (the desk's schema changed?)
			 * or ran over [source] query_timeout: the other rules
			 * still plan; this one is tried at the next tick. */
			store_rollback(st);
			log_warnx("plan: [rule %s] skipped: %s", rule->name,
			    err && *err ? *err : "error");
			if (r == FU_PERMFAIL || worst == FU_OK)
				worst = r;
			continue;
		}
		if (r != FU_OK) {
			store_rollback(st);
			return r;
		}
		if ((r = store_commit(st, err)) != FU_OK) {
			store_rollback(st);
			return r;
		}
	}
	if (cfg->calendar_feed != NULL)
		plan_feeds(cfg, st, now);
	return worst;
}
