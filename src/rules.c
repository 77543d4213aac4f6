/* rules: what each rule kind asks of the source and when its message is due. */
#include "rules.h"
#include "clock.h"
#include "ical.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const rules_required_columns[] = { "key", "at", "email", NULL };

/*
 * The reference schema's check-in query. Both spellings of a UTC time are
 * accepted in the data; :since and :until compare as text, so the planner
 * widens the window by a day and filters exactly after parsing.
 */
static const char after_resolution_sql[] =
    "SELECT t.id AS \"key\", t.resolved_at AS \"at\",\n"
    "  c.email AS \"email\", c.name AS \"name\",\n"
    "  c.id AS \"customer.id\", c.email AS \"customer.email\",\n"
    "  c.name AS \"customer.name\", c.first_name AS \"customer.first_name\",\n"
    "  c.timezone AS \"tz\",\n"
    "  c.locale AS \"customer.locale\", c.timezone AS \"customer.timezone\",\n"
    "  c.customer_since AS \"customer.customer_since\",\n"
    "  t.id AS \"ticket.id\", t.subject AS \"ticket.subject\",\n"
    "  t.status AS \"ticket.status\", t.created_at AS \"ticket.created_at\",\n"
    "  t.resolved_at AS \"ticket.resolved_at\",\n"
    "  a.id AS \"agent.id\", a.name AS \"agent.name\", a.email AS \"agent.email\",\n"
    "  a.timezone AS \"agent.timezone\"\n"
    "FROM tickets t\n"
    "JOIN customers c ON c.id = t.customer_id\n"
    "LEFT JOIN agents a ON a.id = t.agent_id\n"
    "WHERE t.status IN ('resolved', 'closed')\n"
    "  AND t.resolved_at >= :since AND t.resolved_at < :until";

/*
 * The reference schema's agent reminder: every ticket with an agent whose
 * last change falls in the window; `needed` is 0 once it is resolved or
 * closed (the reminder is then cancelled). The event is the last change,
 * so a reopened or updated ticket moves its reminder.
 */
static const char agent_reminder_sql[] =
    "SELECT t.id AS \"key\", COALESCE(t.updated_at, t.created_at) AS \"at\",\n"
    "  a.email AS \"email\", a.name AS \"name\", a.timezone AS \"tz\",\n"
    "  t.status IN ('open', 'pending') AS \"needed\",\n"
    "  a.id AS \"agent.id\", a.name AS \"agent.name\",\n"
    "  a.email AS \"agent.email\", a.timezone AS \"agent.timezone\",\n"
    "  c.id AS \"customer.id\", c.email AS \"customer.email\",\n"
    "  c.name AS \"customer.name\", c.first_name AS \"customer.first_name\",\n"
    "  c.timezone AS \"customer.timezone\",\n"
    "  t.id AS \"ticket.id\", t.subject AS \"ticket.subject\",\n"
    "  t.status AS \"ticket.status\", t.created_at AS \"ticket.created_at\",\n"
    "  t.updated_at AS \"ticket.updated_at\"\n"
    "FROM tickets t\n"
    "JOIN agents a ON a.id = t.agent_id\n"
    "LEFT JOIN customers c ON c.id = t.customer_id\n"
    "WHERE COALESCE(t.updated_at, t.created_at) >= :since\n"
    "  AND COALESCE(t.updated_at, t.created_at) < :until";

/*
 * Birthdays: one row per customer with a birthday ('YYYY-MM-DD' or
 * '--MM-DD'); `at` is the birthday itself, and the planner finds the
 * year's occurrence (rules_occurrence). The whole table is read each tick:
 * a birthday's day depends on the customer's zone and on feb29.
 */
static const char birthday_sql[] =
    "SELECT c.id AS \"key\", c.birthday AS \"at\",\n"
    "  c.email AS \"email\", c.name AS \"name\", c.timezone AS \"tz\",\n"
    "  c.id AS \"customer.id\", c.email AS \"customer.email\",\n"
    "  c.name AS \"customer.name\", c.first_name AS \"customer.first_name\",\n"
    "  c.locale AS \"customer.locale\", c.timezone AS \"customer.timezone\",\n"
    "  c.birthday AS \"customer.birthday\",\n"
    "  c.customer_since AS \"customer.customer_since\"\n"
    "FROM customers c\n"
    "WHERE c.birthday IS NOT NULL AND c.birthday <> ''";

/* Anniversaries: `at` is customer_since, a UTC time (its local date counts). */
static const char anniversary_sql[] =
    "SELECT c.id AS \"key\", c.customer_since AS \"at\",\n"
    "  c.email AS \"email\", c.name AS \"name\", c.timezone AS \"tz\",\n"
    "  c.id AS \"customer.id\", c.email AS \"customer.email\",\n"
    "  c.name AS \"customer.name\", c.first_name AS \"customer.first_name\",\n"
    "  c.locale AS \"customer.locale\", c.timezone AS \"customer.timezone\",\n"
    "  c.birthday AS \"customer.birthday\",\n"
    "  c.customer_since AS \"customer.customer_since\"\n"
    "FROM customers c\n"
    "WHERE c.customer_since IS NOT NULL AND c.customer_since <> ''";

/*
 * Loyalty: the moment a customer's purchase history first met the rule's
 * milestone (the purchase that made the count reach min_purchases and the
 * running total in `currency` reach min_total) is `at`, so the message is
 * planned like a check-in: once, when it happens (within lookback). The
 * thresholds are the rule's, written into the SQL as numbers (and a
 * currency config.c checked to be three capital letters).
 */
static const char loyalty_fmt[] =
    "WITH p AS (\n"
    "  SELECT customer_id, purchased_at,\n"
    "    row_number() OVER w AS n,\n"
    "    sum(CASE WHEN %s THEN amount_cents ELSE 0 END) OVER w AS total\n"
    "  FROM purchases\n"
    "  WINDOW w AS (PARTITION BY customer_id ORDER BY purchased_at, id\n"
    "    ROWS UNBOUNDED PRECEDING)\n"
    "), m AS (\n"
    "  SELECT customer_id, min(purchased_at) AS at FROM p\n"
    "  WHERE n >= %d AND total >= %d GROUP BY customer_id\n"
    ")\n"
    "SELECT c.id AS \"key\", m.at AS \"at\",\n"
    "  c.email AS \"email\", c.name AS \"name\", c.timezone AS \"tz\",\n"
    "  '%s' AS \"milestone\", '%s' AS \"loyalty.milestone\",\n"
    "  c.id AS \"customer.id\", c.email AS \"customer.email\",\n"
    "  c.name AS \"customer.name\", c.first_name AS \"customer.first_name\",\n"
    "  c.locale AS \"customer.locale\", c.timezone AS \"customer.timezone\",\n"
    "  c.customer_since AS \"customer.customer_since\"\n"
    "FROM m JOIN customers c ON c.id = m.customer_id\n"
    "WHERE m.at >= :since AND m.at < :until";

/* A loyalty rule's query, its thresholds written in (rules_data). */
static char *
loyalty_build(const struct rule_config *r)
{
	char cur[4], cond[32], milestone[96];

	snprintf(cur, sizeof(cur), "%s", r->currency ? r->currency : "");
	if (*cur)
		snprintf(cond, sizeof(cond), "currency = '%s'", cur);
	else
		snprintf(cond, sizeof(cond), "1");
	rules_milestone(r, milestone, sizeof(milestone));
	return xasprintf(loyalty_fmt, cond, r->min_purchases, r->min_total,
	    milestone, milestone);
}

static const char *loyalty_query(const struct rule_config *);

void
rules_milestone(const struct rule_config *r, char *out, size_t size)
{
	if (r->min_purchases > 0 && r->min_total > 0)
		snprintf(out, size, "%d purchases, %d %s", r->min_purchases,
		    r->min_total, r->currency ? r->currency : "total");
	else if (r->min_total > 0)
		snprintf(out, size, "%d %s", r->min_total, r->currency ?
		    r->currency : "total");
	else
		snprintf(out, size, "%d purchases", r->min_purchases);
}

const char *
rules_kind_name(enum rule_kind k)
{
	switch (k) {
	case RULE_AFTER_RESOLUTION:
		return "after_resolution";
	case RULE_AGENT_REMINDER:
		return "agent_reminder";
	case RULE_BIRTHDAY:
		return "birthday";
	case RULE_ANNIVERSARY:
		return "anniversary";
	case RULE_LOYALTY:
		return "loyalty";
	}
	return "?";
}

const char *
rules_query(const struct rule_config *r)
{
	if (r->query)
		return r->query;
	switch (r->kind) {
	case RULE_AFTER_RESOLUTION:
		return after_resolution_sql;
	case RULE_AGENT_REMINDER:
		return agent_reminder_sql;
	case RULE_BIRTHDAY:
		return birthday_sql;
	case RULE_ANNIVERSARY:
		return anniversary_sql;
	case RULE_LOYALTY:
		return loyalty_query(r);
	}
	return after_resolution_sql;
}

char *
rules_recheck_query(const struct rule_config *r)
{
	/* SQLite flattens this into the inner query, so the outer filter on
	 * "key" becomes a primary-key lookup (see bench/ for the plan). */
	return xasprintf("SELECT * FROM (\n%s\n) WHERE \"key\" = :key",
	    rules_query(r));
}

/* ---- time ---- */

/*
 * What the rules derive from one config, kept with it (config_derived)
 * and freed with it: a schedule per rule (the zones are clock's, kept for
 * the process; the holiday sets are parsed files), the fallback zone, and
 * the generated loyalty queries.
 */
struct rules_data {
	struct clock_rule	*clock;
	struct clock_days	*holidays;
	char			**loyalty;
	char			**recheck;	/* rules_recheck_query's, on first use */
	int			 n;
	const struct clock_zone	*fallback;
};

static void
rules_data_free(void *arg)
{
	struct rules_data *d = arg;

	if (d == NULL)
		return;
	for (int i = 0; i < d->n; i++) {
		clock_days_free(&d->holidays[i]);
		free(d->loyalty[i]);
		free(d->recheck[i]);
	}
	free(d->recheck);
	free(d->holidays);
	free(d->loyalty);
	free(d->clock);
	free(d);
}

/* [defaults] timezone, else UTC; NULL (appended to errs or logged) when unknown. */
static const struct clock_zone *
fallback_zone(const struct config *cfg, struct buf *errs)
{
	const struct clock_zone *z;

	if (cfg->timezone == NULL)
		return clock_zone_utc();
	if ((z = clock_zone(cfg->timezone)) != NULL)
		return z;
	if (errs)
		buf_printf(errs, "%s:%d: [defaults] timezone: unknown time zone "
		    "'%s' (an IANA name such as Europe/Berlin)\n", cfg->path,
		    cfg->timezone_line, cfg->timezone);
	else
		log_warnx("rules: [defaults] timezone: unknown time zone '%s': "
		    "using UTC", cfg->timezone);
	return NULL;
}

/* Rule i's schedule; 0 when its holidays file is unusable (reported). */
static int
rule_clock(const struct config *cfg, struct rules_data *d, int i,
    struct buf *errs)
{
	const struct rule_config *r = &cfg->rules[i];
	struct clock_rule *c = &d->clock[i];
	char *err = NULL;

	c->delay = r->delay;
	c->business_days = r->business_days;
	c->window = r->window;
	c->quiet = r->quiet;
	if (r->holidays == NULL)
		return 1;
	if (ical_holidays_load(r->holidays, &d->holidays[i], &err) != FU_OK) {
		if (errs)
			buf_printf(errs, "%s:%d: [rule %s] holidays: %s\n",
			    cfg->path, r->holidays_line, r->name, err);
		else
			log_warnx("rules: [rule %s] holidays: %s: no holidays "
			    "used", r->name, err);
		free(err);
		return 0;
	}
	c->holidays = &d->holidays[i];
	return 1;
}

/* Build the config's rules_data, replacing any; problems as rules_time_load. */
static struct rules_data *
rules_data_build(const struct config *cfg, struct buf *errs, int *problems)
{
	struct config_derived *cd = cfg->derived;
	struct rules_data *d = xcalloc(1, sizeof(*d));

	*problems = 0;
	d->n = cfg->nrules;
	d->clock = xcalloc((size_t)cfg->nrules + 1, sizeof(*d->clock));
	d->holidays = xcalloc((size_t)cfg->nrules + 1, sizeof(*d->holidays));
	d->loyalty = xcalloc((size_t)cfg->nrules + 1, sizeof(*d->loyalty));
	d->recheck = xcalloc((size_t)cfg->nrules + 1, sizeof(*d->recheck));
	if ((d->fallback = fallback_zone(cfg, errs)) == NULL) {
		d->fallback = clock_zone_utc();
		(*problems)++;
	}
	for (int i = 0; i < cfg->nrules; i++) {
		if (!rule_clock(cfg, d, i, errs))
			(*problems)++;
		if (cfg->rules[i].kind == RULE_LOYALTY)
			d->loyalty[i] = loyalty_build(&cfg->rules[i]);
	}
	if (cd->free != NULL)
		cd->free(cd->data);
	cd->data = d;
	cd->free = rules_data_free;
	return d;
}

/* The config's rules_data, built on first use (problems logged). */
static struct rules_data *
rules_data(const struct config *cfg)
{
	int problems;

	if (cfg->derived->data != NULL)
		return cfg->derived->data;
	return rules_data_build(cfg, NULL, &problems);
}

int
rules_time_load(const struct config *cfg, struct buf *errs)
{
	size_t before = errs ? errs->len : 0;
	int problems;

	(void)rules_data_build(cfg, errs, &problems);
	if (errs)
		return errs->len != before ? FU_PERMFAIL : FU_OK;
	return problems ? FU_PERMFAIL : FU_OK;
}

static const char *
loyalty_query(const struct rule_config *r)
{
	return rules_data(r->config)->loyalty[r - r->config->rules];
}

const struct clock_rule *
rules_clock(const struct config *cfg, const struct rule_config *r)
{
	return &rules_data(cfg)->clock[r - cfg->rules];
}

const struct clock_zone *
rules_zone(const struct config *cfg, const char *name)
{
	return clock_zone_or(name, rules_data(cfg)->fallback);
}

time_t
rules_due(const struct config *cfg, const struct rule_config *r,
    const struct clock_zone *z, time_t at)
{
	return clock_due(rules_clock(cfg, r), z, at);
}

struct zone_check {
	const struct config	*cfg;
	const struct rule_config *rule;
	struct buf		*out;
};

static int
zone_row(struct value *row, void *arg)
{
	struct zone_check *zc = arg;
	const char *tz = value_as_string(value_map_get(row, "tz"), NULL);
	/* count(*) arrives as text (source.c keeps integers exact). */
	const char *n = value_as_string(value_map_get(row, "n"), NULL);
	long nn = n ? strtol(n, NULL, 10) : 0;

	if (tz != NULL && *tz != '\0' && clock_zone(tz) == NULL)
		buf_printf(zc->out, "%s:%d: [rule %s] unknown time zone "
		    "'%.64s' for %ld row(s): using %s\n", zc->cfg->path,
		    zc->rule->line, zc->rule->name, tz, nn,
		    clock_zone_name(rules_zone(zc->cfg, NULL)));
	value_free(row);
	return FU_OK;
}

int
rules_check_zones(const struct config *cfg, struct source *src,
    struct buf *warnings, char **err)
{
	for (int i = 0; i < cfg->nrules; i++) {
		const struct rule_config *r = &cfg->rules[i];
		struct zone_check zc = { cfg, r, warnings };
		struct source_params p = { .since = RULES_TIME_MIN,
		    .until = RULES_TIME_MAX };
		char *sql = xasprintf("SELECT tz, count(*) AS n FROM (\n%s\n) "
		    "GROUP BY tz", rules_query(r));
		int ret = source_select(src, sql, &p, zone_row, &zc, NULL);

		free(sql);
		/* A query without a tz column has nothing to check. */
		if (ret == FU_TEMPFAIL) {
			set_err(err, "the source is busy");
			return ret;
		}
	}
	return FU_OK;
}

char *
rules_reminder_uid(const struct config *cfg, const char *rule,
    const char *subject)
{
	struct buf b = { 0 };

	buf_printf(&b, "followupd-%s-", rule);
	/* The key is the source's: keep it to characters safe in a UID. */
	for (const char *p = subject; *p && b.len < 200; p++)
		buf_putc(&b, ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.') ? *p : '_');
	buf_printf(&b, "@%s", strchr(cfg->from_addr, '@') ?
	    strchr(cfg->from_addr, '@') + 1 : "followupd.invalid");
	return buf_steal(&b);
}

struct history {
	struct value	*purchases;
	int		 count;
};

static int
count_cb(struct value *row, void *arg)
{
	const struct value *n = value_map_get(row, "n");
	size_t len;
	const char *s = value_as_string(n, &len);

	*(long *)arg = s ? strtol(s, NULL, 10) : 0;
	value_free(row);
	return FU_OK;
}

static int
purchase_cb(struct value *row, void *arg)
{
	struct history *h = arg;
	const char *cents = value_as_string(value_map_get(row, "amount_cents"),
	    NULL);
	char amount[48];

	if (cents) {
		long long c = strtoll(cents, NULL, 10);

		snprintf(amount, sizeof(amount), "%s%lld.%02lld",
		    c < 0 ? "-" : "", llabs(c) / 100, llabs(c) % 100);
		value_map_set(row, "amount", value_string(amount));
	}
	value_list_append(h->purchases, row);
	h->count++;
	return FU_OK;
}

/* history.total ("1234.50"), history.total_cents, history.currency */
static int
total_cb(struct value *row, void *arg)
{
	const char *cents = value_as_string(value_map_get(row, "total"), NULL);
	const char *cur = value_as_string(value_map_get(row, "currency"), NULL);
	long long c = cents ? strtoll(cents, NULL, 10) : 0;
	char amount[48];

	snprintf(amount, sizeof(amount), "%s%lld.%02lld", c < 0 ? "-" : "",
	    llabs(c) / 100, llabs(c) % 100);
	value_map_set_path(arg, "history.total", value_string(amount));
	value_map_set_path(arg, "history.total_cents", value_number((double)c));
	value_map_set_path(arg, "history.currency", cur ? value_string(cur) :
	    value_null());
	value_free(row);
	return FU_OK;
}

/* The reference schema's history queries; `check` prepares each one. */
static const struct {
	const char *table, *sql;
} history_sql[] = {
#define HISTORY_TICKETS		0
	{ "tickets", "SELECT count(*) AS n FROM tickets WHERE customer_id = "
	    ":key" },
#define HISTORY_PURCHASES	1
	{ "purchases", "SELECT count(*) AS n FROM purchases WHERE "
	    "customer_id = :key" },
#define HISTORY_RECENT		2
	{ "purchases", "SELECT item, amount_cents, currency, purchased_at "
	    "FROM purchases WHERE customer_id = :key ORDER BY purchased_at "
	    "DESC LIMIT 3" },
	/* The total in the customer's most used currency (loyalty). */
#define HISTORY_TOTAL		3
	{ "purchases", "SELECT currency, sum(amount_cents) AS total FROM "
	    "purchases WHERE customer_id = :key GROUP BY currency ORDER BY "
	    "count(*) DESC, currency LIMIT 1" },
};

const char *
rules_history_query(size_t i, const char **table)
{
	if (i >= sizeof(history_sql) / sizeof(history_sql[0]))
		return NULL;
	if (table != NULL)
		*table = history_sql[i].table;
	return history_sql[i].sql;
}

int
rules_check_history(struct source *src, char **err)
{
	for (size_t i = 0; i < sizeof(history_sql) / sizeof(history_sql[0]);
	    i++)
		if (source_has_table(src, history_sql[i].table) &&
		    source_check_query(src, history_sql[i].sql, NULL, err) !=
		    FU_OK)
			return FU_PERMFAIL;
	return FU_OK;
}

int
rules_history(struct source *src, const char *customer_id, time_t now,
    struct value *ctx, char **err)
{
	struct source_params p = { .key = customer_id };
	struct history h = { .purchases = value_list() };
	long tickets = 0, purchases = 0;
	int r;

	if (source_has_table(src, "tickets") && (r = source_select(src,
	    history_sql[HISTORY_TICKETS].sql, &p, count_cb, &tickets, err)) !=
	    FU_OK)
		goto fail;
	if (source_has_table(src, "purchases")) {
		if ((r = source_select(src, history_sql[HISTORY_PURCHASES].sql,
		    &p, count_cb, &purchases, err)) != FU_OK)
			goto fail;
		if ((r = source_select(src, history_sql[HISTORY_RECENT].sql,
		    &p, purchase_cb, &h, err)) != FU_OK)
			goto fail;
		if ((r = source_select(src, history_sql[HISTORY_TOTAL].sql,
		    &p, total_cb, ctx, err)) != FU_OK)
			goto fail;
	}
	value_map_set_path(ctx, "history.ticket_count",
	    value_number((double)tickets));
	value_map_set_path(ctx, "history.purchase_count",
	    value_number((double)purchases));
	value_map_set_path(ctx, "history.has_purchases", value_bool(h.count > 0));
	value_map_set_path(ctx, "history.purchases", h.purchases);
	{
		const char *since = value_as_string(value_map_get(
		    value_map_get(ctx, "customer"), "customer_since"), NULL);
		time_t t;
		long years = 0;

		if (since && clock_parse(since, &t) == FU_OK && t < now) {
			struct tm a, b;

			gmtime_r(&t, &a);
			gmtime_r(&now, &b);
			years = b.tm_year - a.tm_year;
			if (b.tm_mon < a.tm_mon || (b.tm_mon == a.tm_mon &&
			    b.tm_mday < a.tm_mday))
				years--;
		}
		value_map_set_path(ctx, "history.years",
		    value_number((double)years));
	}
	return FU_OK;
fail:
	value_free(h.purchases);
	return r;
}

/* ---- yearly notes: birthdays and anniversaries ---- */

int
rules_kind_yearly(enum rule_kind k)
{
	return k == RULE_BIRTHDAY || k == RULE_ANNIVERSARY;
}

static int
leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* "YYYY-MM-DD..." (*y the year) or "--MM-DD" (*y 0): -1 unless a real date. */
static int
parse_date(const char *s, int *y, int *m, int *d)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };
	int n = 0;

	*y = 0;
	if (s == NULL)
		return -1;
	if (s[0] == '-' && s[1] == '-') {
		if (sscanf(s + 2, "%2d-%2d%n", m, d, &n) != 2 || n != 5 ||
		    s[2 + n] != '\0')
			return -1;
	} else if (sscanf(s, "%4d-%2d-%2d%n", y, m, d, &n) != 3 || n != 10 ||
	    *y < 1)
		return -1;
	if (*m < 1 || *m > 12 || *d < 1 || *d > mdays[*m - 1] ||
	    (*y != 0 && *m == 2 && *d == 29 && !leap(*y)))
		return -1;
	return 0;
}

/* The base date of the row's event: the birthday, or customer_since's local date. */
static int
yearly_base(const struct rule_config *r, const struct clock_zone *z,
    const char *at, int *y, int *m, int *d)
{
	time_t t;

	if (r->kind == RULE_ANNIVERSARY && clock_parse(at, &t) == FU_OK) {
		struct clock_local lt;

		clock_to_local(z, t, &lt);
		*y = lt.year;
		*m = lt.mon;
		*d = lt.day;
		return 0;
	}
	if (parse_date(at, y, m, d) == -1)
		return -1;
	return r->kind == RULE_ANNIVERSARY && *y == 0 ? -1 : 0;
}

time_t
rules_yearly_instant(const struct rule_config *r, const struct clock_zone *z,
    int year, int mon, int day)
{
	struct clock_local lt = { 0 };

	if (mon == 2 && day == 29 && !leap(year)) {
		if (r->feb29 == RULE_FEB29_MAR1) {
			mon = 3;
			day = 1;
		} else
			day = 28;
	}
	lt.year = year;
	lt.mon = mon;
	lt.day = day;
	lt.hour = r->send_at_min / 60;
	lt.min = r->send_at_min % 60;
	return clock_from_local(z, &lt);
}

static int
milestone_ok(const struct rule_config *r, int years)
{
	if (r->kind != RULE_ANNIVERSARY)
		return 1;
	if (years < 1)
		return 0;
	if (r->years_every)
		return 1;
	for (int i = 0; i < r->nyears; i++)
		if (r->year_list[i] == years)
			return 1;
	return 0;
}

int
rules_occurrence(const struct config *cfg, const struct rule_config *r,
    const struct clock_zone *z, const char *at, time_t now,
    struct rules_occurrence *o)
{
	struct clock_local nl;
	int by, bm, bd;

	memset(o, 0, sizeof(*o));
	if (at == NULL || yearly_base(r, z, at, &by, &bm, &bd) == -1)
		return -1;
	clock_to_local(z, now, &nl);
	/* Latest first: with a long lookback only the newest is planned. */
	for (int y = nl.year + 1; y >= nl.year - 1; y--) {
		time_t t = rules_yearly_instant(r, z, y, bm, bd);
		int years = by ? y - by : -1;

		if (t > now + RULES_PLAN_AHEAD || t <= now - r->lookback)
			continue;
		if (by && y < by + (r->kind == RULE_ANNIVERSARY ? 1 : 0))
			continue;	/* before birth, or the day they joined */
		if (!milestone_ok(r, years))
			continue;
		snprintf(o->occurrence, sizeof(o->occurrence), "%d", y);
		o->year = y;
		o->years = years;
		o->event = t;
		o->due = clock_next_open(rules_clock(cfg, r), z, t, NULL);
		return 1;
	}
	return 0;
}

int
rules_occurrence_years(const struct rule_config *r, const struct clock_zone *z,
    const char *at, const char *occurrence)
{
	int by, bm, bd, y;

	if (!rules_kind_yearly(r->kind) || occurrence == NULL ||
	    sscanf(occurrence, "%d", &y) != 1 ||
	    yearly_base(r, z, at, &by, &bm, &bd) == -1 || by == 0)
		return -1;
	return y - by;
}

/* ---- one subject again: the re-check at due time, preview ---- */

struct fetch {
	const char	*occurrence;	/* NULL: any */
	struct value	*row;		/* the matching row */
};

static int
fetch_cb(struct value *row, void *arg)
{
	struct fetch *f = arg;
	const char *at = value_path_string(row, "at");

	if (f->row == NULL && (f->occurrence == NULL ||
	    (at && strcmp(at, f->occurrence) == 0))) {
		f->row = row;
		return FU_OK;
	}
	value_free(row);
	return FU_OK;
}

int
rules_fetch(const struct config *cfg, struct source *src,
    const struct rule_config *r, const char *key, const char *occurrence,
    struct value **row, char **err)
{
	struct rules_data *d = rules_data(cfg);
	int ri = (int)(r - cfg->rules), ret;
	struct source_params p = { .since = RULES_TIME_MIN,
	    .until = RULES_TIME_MAX, .key = key };
	struct fetch f = { occurrence, NULL };

	/* The SQL is the same for every job of the rule: built once. */
	if (d->recheck[ri] == NULL)
		d->recheck[ri] = rules_recheck_query(r);
	ret = source_select(src, d->recheck[ri], &p, fetch_cb, &f, err);
	if (ret != FU_OK) {
		/* Failed after a matching row (busy, a bad later row): the
		 * caller gets no row, so none is kept. */
		value_free(f.row);
		f.row = NULL;
	}
	*row = f.row;
	return ret;
}

int
rules_add_history(struct source *src, const struct rule_config *r,
    struct value *ctx, time_t now, char **err)
{
	const char *cid;
	int ret;

	if (!r->history || (cid = value_path_string(ctx, "customer.id")) ==
	    NULL || (ret = rules_history(src, cid, now, ctx, err)) == FU_OK)
		return FU_OK;
	if (ret != FU_PERMFAIL)
		return ret;
	log_warnx("render: [rule %s] history.* unavailable (%s): set "
	    "history = no for a desk without the reference schema",
	    r->name, err && *err ? *err : "error");
	if (err != NULL) {
		free(*err);
		*err = NULL;
	}
	return FU_OK;
}
