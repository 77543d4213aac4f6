/* rules: what each rule kind asks of the source and when its message is due. */
#include "rules.h"
#include "clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    "  c.locale AS \"customer.locale\", c.timezone AS \"customer.timezone\",\n"
    "  c.customer_since AS \"customer.customer_since\",\n"
    "  t.id AS \"ticket.id\", t.subject AS \"ticket.subject\",\n"
    "  t.status AS \"ticket.status\", t.created_at AS \"ticket.created_at\",\n"
    "  t.resolved_at AS \"ticket.resolved_at\",\n"
    "  a.id AS \"agent.id\", a.name AS \"agent.name\", a.email AS \"agent.email\"\n"
    "FROM tickets t\n"
    "JOIN customers c ON c.id = t.customer_id\n"
    "LEFT JOIN agents a ON a.id = t.agent_id\n"
    "WHERE t.status IN ('resolved', 'closed')\n"
    "  AND t.resolved_at >= :since AND t.resolved_at < :until";

const char *
rules_kind_name(enum rule_kind k)
{
	switch (k) {
	case RULE_AFTER_RESOLUTION:
		return "after_resolution";
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

time_t
rules_due(const struct rule_config *r, time_t at)
{
	return at + r->delay;
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

int
rules_history(struct source *src, const char *customer_id, time_t now,
    struct value *ctx, char **err)
{
	struct source_params p = { .key = customer_id };
	struct history h = { .purchases = value_list() };
	long tickets = 0, purchases = 0;
	int r;

	if (source_has_table(src, "tickets") && (r = source_select(src,
	    "SELECT count(*) AS n FROM tickets WHERE customer_id = :key", &p,
	    count_cb, &tickets, err)) != FU_OK)
		goto fail;
	if (source_has_table(src, "purchases")) {
		if ((r = source_select(src, "SELECT count(*) AS n FROM "
		    "purchases WHERE customer_id = :key", &p, count_cb,
		    &purchases, err)) != FU_OK)
			goto fail;
		if ((r = source_select(src, "SELECT item, amount_cents, "
		    "currency, purchased_at FROM purchases WHERE customer_id = "
		    ":key ORDER BY purchased_at DESC LIMIT 3", &p, purchase_cb,
		    &h, err)) != FU_OK)
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
