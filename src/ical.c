/* ical: iTIP REQUEST / CANCEL objects for agent reminders, feeds and holiday files (libical). */
#include "ical.h"

#include <libical/ical.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ICAL_PRODID	"-//followupd//followupd agent reminders//EN"
/* A parameter value (CN) we pass on: no quotes or controls, bounded. */
#define ICAL_CN_MAX	100
/* Holidays: the last year expanded, and a bound on days per file. */
#define ICAL_HOLIDAY_LAST_YEAR	2100
#define ICAL_HOLIDAYS_MAX	20000

/* Untrusted text → valid UTF-8 without controls, at most max bytes. */
static char *
clean_text(const char *s, size_t max, int keep_newlines)
{
	struct buf b = { 0 };

	if (s == NULL)
		s = "";
	utf8_sanitize(s, strlen(s), max, &b);
	if (!keep_newlines)
		for (size_t i = 0; i < b.len; i++)
			if (b.data[i] == '\n' || b.data[i] == '\t')
				b.data[i] = ' ';
	return buf_steal(&b);
}

static char *
clean_cn(const char *s)
{
	char *t = clean_text(s, ICAL_CN_MAX, 0), *w = t;

	for (char *r = t; *r; r++)
		if (*r != '"')
			*w++ = *r;
	*w = '\0';
	return t;
}

/* A plain address: what we put after mailto: (no spaces, controls, quotes). */
static int
addr_ok(const char *a)
{
	if (a == NULL || *a == '\0' || strlen(a) > 254 || strchr(a, '@') == NULL)
		return 0;
	for (const char *p = a; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || strchr("\"<>:;,\\", *p))
			return 0;
	return 1;
}

/* The wall-clock time of t in zone z, as a floating icaltimetype. */
static struct icaltimetype
local_tt(const struct clock_zone *z, time_t t)
{
	struct icaltimetype tt = icaltime_null_time();
	struct clock_local lt;

	clock_to_local(z, t, &lt);
	tt.year = lt.year;
	tt.month = lt.mon;
	tt.day = lt.day;
	tt.hour = lt.hour;
	tt.minute = lt.min;
	tt.second = lt.sec;
	tt.is_date = 0;
	return tt;
}

static struct icaltimetype
utc_tt(time_t t)
{
	return icaltime_from_timet_with_zone(t, 0,
	    icaltimezone_get_utc_timezone());
}

static int
is_utc(const struct clock_zone *z)
{
	return z == NULL || z == clock_zone_utc();
}

/* One observance: the zone is `to` from instant t on (local time in `from`). */
static void
add_observance(icalcomponent *vtz, const struct clock_zone *z, time_t t,
    int from, int to, int dst)
{
	icalcomponent *obs = dst ? icalcomponent_new_xdaylight() :
	    icalcomponent_new_xstandard();
	struct icaltimetype tt;
	struct clock_local lt;

	(void)z;
	/* DTSTART of an observance is local time in the offset before it. */
	memset(&lt, 0, sizeof(lt));
	{
		long long wall = (long long)t + from;
		long days = (long)(wall / 86400 - (wall % 86400 < 0));
		long rem = (long)(wall - (long long)days * 86400);

		clock_civil_from_days(days, &lt.year, &lt.mon, &lt.day);
		lt.hour = (int)(rem / 3600);
		lt.min = (int)(rem / 60 % 60);
		lt.sec = (int)(rem % 60);
	}
	tt = icaltime_null_time();
	tt.year = lt.year;
	tt.month = lt.mon;
	tt.day = lt.day;
	tt.hour = lt.hour;
	tt.minute = lt.min;
	tt.second = lt.sec;
	icalcomponent_add_property(obs, icalproperty_new_dtstart(tt));
	icalcomponent_add_property(obs, icalproperty_new_tzoffsetfrom(from));
	icalcomponent_add_property(obs, icalproperty_new_tzoffsetto(to));
	icalcomponent_add_component(vtz, obs);
}

/*
 * VTIMEZONE for z covering [from, to]: the offset in effect at `from`,
 * then every change until `to`, found by daily steps and a binary search
 * for the exact second.
 */
static icalcomponent *
make_vtimezone(const struct clock_zone *z, time_t from, time_t to)
{
	icalcomponent *vtz = icalcomponent_new_vtimezone();
	int dst, off = clock_utc_offset(z, from, &dst);

	icalcomponent_add_property(vtz,
	    icalproperty_new_tzid(clock_zone_name(z)));
	add_observance(vtz, z, from, off, off, dst);
	for (time_t t = from; t < to; t += 86400) {
		int d2, o2 = clock_utc_offset(z, t + 86400, &d2);
		time_t lo = t, hi = t + 86400;

		if (o2 == off)
			continue;
		while (hi - lo > 1) {
			time_t mid = lo + (hi - lo) / 2;

			if (clock_utc_offset(z, mid, NULL) == off)
				lo = mid;
			else
				hi = mid;
		}
		add_observance(vtz, z, hi, off, o2, d2);
		off = o2;
	}
	return vtz;
}

static void
add_time(icalcomponent *ev, int start, const struct clock_zone *z, time_t t)
{
	icalproperty *p;

	if (is_utc(z)) {
		struct icaltimetype tt = utc_tt(t);

		p = start ? icalproperty_new_dtstart(tt) : icalproperty_new_dtend(tt);
	} else {
		struct icaltimetype tt = local_tt(z, t);

		p = start ? icalproperty_new_dtstart(tt) : icalproperty_new_dtend(tt);
		icalproperty_add_parameter(p,
		    icalparameter_new_tzid(clock_zone_name(z)));
	}
	icalcomponent_add_property(ev, p);
}

static icalproperty *
cal_address(int organizer, const char *addr, const char *name)
{
	char *uri = xasprintf("mailto:%s", addr);
	icalproperty *p = organizer ? icalproperty_new_organizer(uri) :
	    icalproperty_new_attendee(uri);

	free(uri);
	if (name && *name) {
		char *cn = clean_cn(name);

		if (*cn)
			icalproperty_add_parameter(p, icalparameter_new_cn(cn));
		free(cn);
	}
	if (!organizer) {
		icalproperty_add_parameter(p,
		    icalparameter_new_role(ICAL_ROLE_REQPARTICIPANT));
		icalproperty_add_parameter(p,
		    icalparameter_new_partstat(ICAL_PARTSTAT_NEEDSACTION));
		icalproperty_add_parameter(p,
		    icalparameter_new_rsvp(ICAL_RSVP_FALSE));
	}
	return p;
}

static int
check_event(const struct ical_event *e, int in_feed, char **err)
{
	if (!in_feed && (e->method == NULL || (strcmp(e->method, "REQUEST") != 0 &&
	    strcmp(e->method, "CANCEL") != 0))) {
		set_err(err, "ical: method must be REQUEST or CANCEL");
		return FU_PERMFAIL;
	}
	if (e->uid == NULL || *e->uid == '\0' || strlen(e->uid) > 255 ||
	    strpbrk(e->uid, "\r\n") != NULL) {
		set_err(err, "ical: bad UID");
		return FU_PERMFAIL;
	}
	if (e->sequence < 0 || e->end < e->start) {
		set_err(err, "ical: bad SEQUENCE or an end before the start");
		return FU_PERMFAIL;
	}
	if (!addr_ok(e->organizer_addr) || !addr_ok(e->attendee_addr)) {
		set_err(err, "ical: bad organizer or attendee address");
		return FU_PERMFAIL;
	}
	return FU_OK;
}

static icalcomponent *
make_vevent(const struct ical_event *e, int cancel)
{
	icalcomponent *ev = icalcomponent_new_vevent();
	char *summary = clean_text(e->summary, ICAL_SUMMARY_MAX, 0);
	char *desc = e->description ? clean_text(e->description,
	    ICAL_DESCRIPTION_MAX, 1) : NULL;

	icalcomponent_add_property(ev, icalproperty_new_uid(e->uid));
	icalcomponent_add_property(ev, icalproperty_new_sequence(e->sequence));
	icalcomponent_add_property(ev, icalproperty_new_dtstamp(utc_tt(e->dtstamp)));
	add_time(ev, 1, e->zone, e->start);
	add_time(ev, 0, e->zone, e->end);
	icalcomponent_add_property(ev, icalproperty_new_summary(summary));
	if (desc && *desc)
		icalcomponent_add_property(ev, icalproperty_new_description(desc));
	if (e->url && *e->url && strpbrk(e->url, "\r\n \t\"<>") == NULL)
		icalcomponent_add_property(ev, icalproperty_new_url(e->url));
	icalcomponent_add_property(ev, cal_address(1, e->organizer_addr,
	    e->organizer_name));
	icalcomponent_add_property(ev, cal_address(0, e->attendee_addr,
	    e->attendee_name));
	icalcomponent_add_property(ev, icalproperty_new_status(cancel ?
	    ICAL_STATUS_CANCELLED : ICAL_STATUS_CONFIRMED));
	icalcomponent_add_property(ev, icalproperty_new_transp(ICAL_TRANSP_OPAQUE));
	if (!cancel && e->alarm > 0) {
		icalcomponent *al = icalcomponent_new_valarm();
		struct icaltriggertype tr = icaltriggertype_from_int(
		    -(int)e->alarm);

		icalcomponent_add_property(al,
		    icalproperty_new_action(ICAL_ACTION_DISPLAY));
		icalcomponent_add_property(al, icalproperty_new_trigger(tr));
		icalcomponent_add_property(al, icalproperty_new_description(summary));
		icalcomponent_add_component(ev, al);
	}
	free(summary);
	free(desc);
	return ev;
}

static icalcomponent *
new_vcalendar(void)
{
	icalcomponent *cal = icalcomponent_new_vcalendar();

	icalcomponent_add_property(cal, icalproperty_new_prodid(ICAL_PRODID));
	icalcomponent_add_property(cal, icalproperty_new_version("2.0"));
	icalcomponent_add_property(cal, icalproperty_new_calscale("GREGORIAN"));
	return cal;
}

/* libical's text, CRLF already (RFC 5545 3.1 folding included). */
static void
append_ical(icalcomponent *cal, struct buf *out)
{
	char *s = icalcomponent_as_ical_string_r(cal);

	/*
	 * libical 3.0 folds some long lines of multi-byte text with a bare LF
	 * and can leave "\r\r\n" (found by tests/fuzz/fuzz_ical.c): every
	 * line end becomes CRLF, a CR elsewhere goes.
	 */
	for (const char *p = s; *p; p++) {
		if (*p == '\r' && p[1] == '\n')
			continue;	/* the LF writes it */
		if (*p == '\n')
			buf_puts(out, "\r\n");
		else if (*p != '\r')
			buf_putc(out, *p);
	}
	free(s);
}

/* icalrestriction_check writes X-LIC-ERROR into what it checks: a copy. */
static int
restrictions_ok(icalcomponent *cal, char **err)
{
	icalcomponent *copy = icalcomponent_new_clone(cal);
	int ok = icalrestriction_check(copy);

	if (!ok) {
		icalcomponent *ev = icalcomponent_get_first_component(copy,
		    ICAL_VEVENT_COMPONENT);
		icalproperty *p = ev ? icalcomponent_get_first_property(ev,
		    ICAL_XLICERROR_PROPERTY) : NULL;

		if (p == NULL)
			p = icalcomponent_get_first_property(copy,
			    ICAL_XLICERROR_PROPERTY);
		set_err(err, "ical: the object breaks RFC 5546: %s",
		    p ? icalproperty_get_xlicerror(p) : "(no detail)");
	}
	icalcomponent_free(copy);
	return ok ? FU_OK : FU_PERMFAIL;
}

int
ical_build(const struct ical_event *e, struct buf *out, char **err)
{
	icalcomponent *cal;
	int cancel, r;

	if ((r = check_event(e, 0, err)) != FU_OK)
		return r;
	cancel = strcmp(e->method, "CANCEL") == 0;
	cal = new_vcalendar();
	icalcomponent_add_property(cal, icalproperty_new_method(cancel ?
	    ICAL_METHOD_CANCEL : ICAL_METHOD_REQUEST));
	if (!is_utc(e->zone))
		icalcomponent_add_component(cal, make_vtimezone(e->zone,
		    e->start - 366 * 86400, e->end + 366 * 86400));
	icalcomponent_add_component(cal, make_vevent(e, cancel));
	if ((r = restrictions_ok(cal, err)) == FU_OK)
		append_ical(cal, out);
	icalcomponent_free(cal);
	return r;
}

int
ical_feed(const char *name, const struct ical_event *ev, size_t n,
    struct buf *out, char **err)
{
	icalcomponent *cal = new_vcalendar();
	const struct clock_zone **seen = xcalloc(n + 1, sizeof(*seen));
	size_t nseen = 0;
	char *cname = clean_text(name, ICAL_SUMMARY_MAX, 0);
	int r = FU_OK;

	icalcomponent_add_property(cal, icalproperty_new_x(cname));
	icalproperty_set_x_name(icalcomponent_get_first_property(cal,
	    ICAL_X_PROPERTY), "X-WR-CALNAME");
	free(cname);
	for (size_t i = 0; i < n && r == FU_OK; i++) {
		size_t k;

		if ((r = check_event(&ev[i], 1, err)) != FU_OK)
			break;
		if (is_utc(ev[i].zone))
			continue;
		for (k = 0; k < nseen; k++)
			if (seen[k] == ev[i].zone)
				break;
		if (k == nseen) {
			time_t lo = ev[i].start, hi = ev[i].end;

			for (size_t j = 0; j < n; j++)
				if (ev[j].zone == ev[i].zone) {
					lo = ev[j].start < lo ? ev[j].start : lo;
					hi = ev[j].end > hi ? ev[j].end : hi;
				}
			seen[nseen++] = ev[i].zone;
			icalcomponent_add_component(cal, make_vtimezone(
			    ev[i].zone, lo - 366 * 86400, hi + 366 * 86400));
		}
	}
	for (size_t i = 0; i < n && r == FU_OK; i++)
		icalcomponent_add_component(cal, make_vevent(&ev[i], 0));
	if (r == FU_OK)
		append_ical(cal, out);
	icalcomponent_free(cal);
	free(seen);
	return r;
}

/* ---- holidays ---- */

struct days {
	long	*v;
	size_t	 n, cap;
};

static void
days_add(struct days *d, long day)
{
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 64;
		d->v = xrealloc(d->v, d->cap * sizeof(long));
	}
	d->v[d->n++] = day;
}

static long
tt_day(struct icaltimetype tt)
{
	return clock_days_from_civil(tt.year, tt.month, tt.day);
}

static int
cmp_day(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return x < y ? -1 : x > y;
}

/* The closed days of one occurrence starting on `first` and lasting `len` days. */
static void
add_span(struct days *d, long first, long len)
{
	for (long i = 0; i < len && d->n < ICAL_HOLIDAYS_MAX; i++)
		days_add(d, first + i);
}

int
ical_holidays_load(const char *path, struct clock_days *out, char **err)
{
	struct buf text = { 0 };
	icalcomponent *cal, *ev;
	struct days d = { 0 };
	int r, nevents = 0;

	out->days = NULL;
	out->n = 0;
	if ((r = read_file(path, &text, err)) != FU_OK) {
		buf_free(&text);
		return FU_TEMPFAIL;
	}
	cal = icalparser_parse_string(buf_cstr(&text));
	buf_free(&text);
	if (cal == NULL || icalcomponent_isa(cal) != ICAL_VCALENDAR_COMPONENT) {
		set_err(err, "%s: not an iCalendar file (no VCALENDAR)", path);
		if (cal)
			icalcomponent_free(cal);
		return FU_PERMFAIL;
	}
	for (ev = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT);
	    ev != NULL; ev = icalcomponent_get_next_component(cal,
	    ICAL_VEVENT_COMPONENT)) {
		icalproperty *ps = icalcomponent_get_first_property(ev,
		    ICAL_DTSTART_PROPERTY);
		icalproperty *rr = icalcomponent_get_first_property(ev,
		    ICAL_RRULE_PROPERTY);
		struct icaltimetype start, end;
		long len = 1;

		if (ps == NULL) {
			set_err(err, "%s: a VEVENT without DTSTART", path);
			r = FU_PERMFAIL;
			goto done;
		}
		start = icalproperty_get_dtstart(ps);
		if (icaltime_is_null_time(start) || !icaltime_is_valid_time(start)) {
			set_err(err, "%s: a VEVENT with an invalid DTSTART", path);
			r = FU_PERMFAIL;
			goto done;
		}
		end = icalcomponent_get_dtend(ev);
		if (!icaltime_is_null_time(end) && start.is_date && end.is_date &&
		    tt_day(end) > tt_day(start))
			len = tt_day(end) - tt_day(start);	/* DTEND is exclusive */
		if (len > 366)
			len = 366;
		nevents++;
		if (rr == NULL) {
			add_span(&d, tt_day(start), len);
			continue;
		}
		{
			struct icalrecurrencetype rule = icalproperty_get_rrule(rr);
			icalrecur_iterator *it = icalrecur_iterator_new(rule, start);
			struct icaltimetype next;
			int count = 0;

			if (it == NULL) {
				set_err(err, "%s: an RRULE libical cannot expand",
				    path);
				r = FU_PERMFAIL;
				goto done;
			}
			while (count++ < 2000 && d.n < ICAL_HOLIDAYS_MAX &&
			    !icaltime_is_null_time(next =
			    icalrecur_iterator_next(it)) &&
			    next.year <= ICAL_HOLIDAY_LAST_YEAR)
				add_span(&d, tt_day(next), len);
			icalrecur_iterator_free(it);
		}
	}
	if (nevents == 0) {
		set_err(err, "%s: no VEVENT (holidays are all-day events)", path);
		r = FU_PERMFAIL;
		goto done;
	}
	qsort(d.v, d.n, sizeof(long), cmp_day);
	{
		size_t w = 0;

		for (size_t i = 0; i < d.n; i++)
			if (w == 0 || d.v[w - 1] != d.v[i])
				d.v[w++] = d.v[i];
		d.n = w;
	}
	out->days = d.v;
	out->n = d.n;
	d.v = NULL;
	r = FU_OK;
done:
	free(d.v);
	icalcomponent_free(cal);
	return r;
}
