/* format: dates, amounts and numbers as a recipient's locale and zone write them. */
#include "format.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *
format_lang(const char *locale)
{
	static const char *const langs[] = { "en", "de", "fr", "es" };

	if (locale != NULL)
		for (size_t i = 0; i < sizeof(langs) / sizeof(langs[0]); i++)
			if (strncasecmp(locale, langs[i], 2) == 0 &&
			    (locale[2] == '\0' || locale[2] == '-' ||
			    locale[2] == '_'))
				return langs[i];
	return "en";
}

void
format_date(const char *lang, int y, int m, int d, struct buf *out)
{
	static const char *const en[] = { "January", "February", "March",
	    "April", "May", "June", "July", "August", "September", "October",
	    "November", "December" };
	static const char *const de[] = { "Januar", "Februar", "März",
	    "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
	    "November", "Dezember" };
	static const char *const fr[] = { "janvier", "février", "mars",
	    "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
	    "novembre", "décembre" };
	static const char *const es[] = { "enero", "febrero", "marzo",
	    "abril", "mayo", "junio", "julio", "agosto", "septiembre",
	    "octubre", "noviembre", "diciembre" };

	if (m < 1 || m > 12)
		return;
	if (strcmp(lang, "de") == 0)
		buf_printf(out, "%d. %s %d", d, de[m - 1], y);
	else if (strcmp(lang, "fr") == 0)
		buf_printf(out, "%d%s %s %d", d, d == 1 ? "er" : "", fr[m - 1], y);
	else if (strcmp(lang, "es") == 0)
		buf_printf(out, "%d de %s de %d", d, es[m - 1], y);
	else
		buf_printf(out, "%d %s %d", d, en[m - 1], y);
}

void
format_amount(const char *lang, long long cents, const char *currency,
    struct buf *out)
{
	/* U+00A0 no-break space, U+202F narrow no-break space */
	const char *group = ",", *dec = ".", *sym = NULL;
	unsigned long long v = cents < 0 ? (unsigned long long)-(cents + 1) + 1 :
	    (unsigned long long)cents;
	char digits[32];
	int n, min_group = 4;

	if (currency != NULL && strcmp(currency, "EUR") == 0)
		sym = "€";
	else if (currency != NULL && strcmp(currency, "USD") == 0)
		sym = "$";
	else if (currency != NULL && strcmp(currency, "GBP") == 0)
		sym = "£";
	if (strcmp(lang, "de") == 0) {
		group = ".";
		dec = ",";
	} else if (strcmp(lang, "fr") == 0) {
		group = "\u202f";
		dec = ",";
	} else if (strcmp(lang, "es") == 0) {
		group = ".";
		dec = ",";
		min_group = 5;	/* RAE: 1234,50 but 12.345,50 */
	}
	n = snprintf(digits, sizeof(digits), "%llu", v / 100);
	if (cents < 0)
		buf_putc(out, '-');
	if (strcmp(lang, "en") == 0 && sym)
		buf_puts(out, sym);
	for (int i = 0; i < n; i++) {
		if (i > 0 && n >= min_group && (n - i) % 3 == 0)
			buf_puts(out, group);
		buf_putc(out, digits[i]);
	}
	buf_printf(out, "%s%02llu", dec, v % 100);
	if (strcmp(lang, "en") == 0 && sym)
		return;
	if (sym)
		buf_printf(out, "\u00a0%s", sym);
	else if (currency != NULL && *currency)
		buf_printf(out, "\u00a0%s", currency);
}

static const char *const format_days[] = { "Sunday", "Monday", "Tuesday",
    "Wednesday", "Thursday", "Friday", "Saturday" };
static const char *const format_months[] = { "January", "February", "March",
    "April", "May", "June", "July", "August", "September", "October",
    "November", "December" };

size_t
format_ll(char *p, long long n)
{
	char tmp[20];
	unsigned long long u = n < 0 ? 0ull - (unsigned long long)n :
	    (unsigned long long)n;
	size_t k = 0, len = 0;

	do
		tmp[k++] = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (n < 0)
		p[len++] = '-';
	while (k > 0)
		p[len++] = tmp[--k];
	return len;
}

void
format_resolved(struct value *ctx, time_t t, const char *zone)
{
	/* clock's zones are loaded once per process; parsing the zone file
	 * for every message (g_time_zone_new_identifier) was a third of the
	 * rendering time. Unknown or missing zone: UTC. */
	const struct clock_zone *tz = clock_zone_or(zone, NULL);
	struct clock_local lt;
	const char *mon;
	char text[64];
	size_t n, m;

	clock_to_local(tz, t, &lt);
	value_map_set_path(ctx, "ticket.resolved_weekday",
	    value_string(format_days[lt.wday % 7]));
	/* "%d %s %d", without printf */
	mon = format_months[lt.mon - 1];
	m = strlen(mon);
	n = format_ll(text, lt.day);
	text[n++] = ' ';
	memcpy(text + n, mon, m);
	n += m;
	text[n++] = ' ';
	n += format_ll(text + n, lt.year);
	value_map_set_path(ctx, "ticket.resolved_date", value_stringn(text, n));
}

/* A direct-mapped memo of (zone, now); a miss just formats again. */
#define FORMAT_MEMO	32
#define FORMAT_LANGS	4	/* format_lang's: en de fr es */
struct zone_memo {
	const struct clock_zone	*zone;		/* NULL: empty slot */
	time_t			 now;
	struct clock_local	 lt;		/* now, in the zone */
	char			 date_local[32];	/* clock_format_local */
	const char		*lang[FORMAT_LANGS];	/* format_lang's pointers */
	char			 date_text[FORMAT_LANGS][64];
};

struct format_memo {
	struct zone_memo	 slot[FORMAT_MEMO];
};

struct format_memo *
format_memo_new(void)
{
	return xcalloc(1, sizeof(struct format_memo));
}

void
format_memo_free(struct format_memo *fm)
{
	free(fm);
}

/* The memo of (zone, now): now's local time and date_local in the zone. */
static struct zone_memo *
zone_memo(struct format_memo *fm, const struct clock_zone *z, time_t now)
{
	/* Zones are kept for the process: the pointer names the zone. */
	struct zone_memo *m = &fm->slot[((uintptr_t)z >> 4) % FORMAT_MEMO];

	if (m->zone != z || m->now != now || z == NULL) {
		memset(m, 0, sizeof(*m));
		m->zone = z;
		m->now = now;
		clock_to_local(z, now, &m->lt);
		clock_format_local(z, now, m->date_local);
	}
	return m;
}

/* message.date_text: now's date in the zone as `lang` writes it. */
static const char *
memo_date_text(struct zone_memo *m, const char *lang, struct buf *b)
{
	buf_reset(b);
	for (int k = 0; k < FORMAT_LANGS; k++) {
		if (m->lang[k] == lang)
			return m->date_text[k];
		if (m->lang[k] != NULL)
			continue;
		format_date(lang, m->lt.year, m->lt.mon, m->lt.day, b);
		if (b->len >= sizeof(m->date_text[k]))
			return buf_cstr(b);
		memcpy(m->date_text[k], buf_cstr(b), b->len + 1);
		m->lang[k] = lang;
		return m->date_text[k];
	}
	format_date(lang, m->lt.year, m->lt.mon, m->lt.day, b);
	return buf_cstr(b);
}

/* Each of history.purchases: amount_local and date_local. */
static void
format_purchases(struct value *ctx, const char *lang,
    const struct clock_zone *tz, struct buf *b)
{
	const struct value *list = value_map_get(value_map_get(ctx, "history"),
	    "purchases");

	for (size_t i = 0; i < value_list_len(list); i++) {
		struct value *p = (struct value *)(uintptr_t)value_list_at(list,
		    i);
		const char *cents = value_path_string(p, "amount_cents");
		const char *at = value_path_string(p, "purchased_at");
		time_t t;

		if (cents != NULL) {
			format_amount(lang, strtoll(cents, NULL, 10),
			    value_path_string(p, "currency"), b);
			value_map_set(p, "amount_local", value_string(buf_cstr(b)));
			buf_reset(b);
		}
		if (at != NULL && clock_parse(at, &t) == FU_OK) {
			struct clock_local pl;

			clock_to_local(tz, t, &pl);
			format_date(lang, pl.year, pl.mon, pl.day, b);
			value_map_set(p, "date_local", value_string(buf_cstr(b)));
			buf_reset(b);
		}
	}
}

void
format_message(struct format_memo *fm, struct value *ctx,
    const struct clock_zone *tz, time_t now)
{
	struct zone_memo *zm = zone_memo(fm, tz, now);
	const char *lang = format_lang(value_path_string(ctx,
	    "customer.locale"));
	const struct value *hist;
	struct buf b = { 0 };

	value_map_set_path(ctx, "message.date_local",
	    value_string(zm->date_local));
	value_map_set_path(ctx, "locale.lang", value_string(lang));
	value_map_set_path(ctx, "message.date_text",
	    value_string(memo_date_text(zm, lang, &b)));
	buf_reset(&b);
	hist = value_map_get(ctx, "history");
	if (value_map_get(hist, "total_cents")) {
		format_amount(lang, (long long)value_as_number(value_map_get(hist,
		    "total_cents")), value_path_string(ctx, "history.currency"),
		    &b);
		value_map_set_path(ctx, "history.total_local",
		    value_string(buf_cstr(&b)));
		buf_reset(&b);
	}
	format_purchases(ctx, lang, zm->zone, &b);
	buf_free(&b);
}
