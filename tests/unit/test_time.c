/* test_time: table-driven tests of zones, local time and due times across DST (clock.c). */
#include "clock.h"
#include "tap.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static time_t
utc(const char *s)
{
	time_t t = 0;

	if (clock_parse(s, &t) != FU_OK)
		tap_diag("bad test time %s", s);
	return t;
}

/* "YYYY-MM-DD HH:MM" local → the instant (gaps and overlaps as documented). */
static const struct {
	const char	*zone, *local, *want;	/* want: UTC */
	const char	*note;
} local_cases[] = {
	{ "Europe/Berlin", "2026-03-28 10:00", "2026-03-28 09:00:00", "winter" },
	{ "Europe/Berlin", "2026-03-30 10:00", "2026-03-30 08:00:00", "summer" },
	{ "Europe/Berlin", "2026-03-29 02:30", "2026-03-29 01:00:00",
	    "spring-forward gap → 03:00" },
	{ "Europe/Berlin", "2026-03-29 02:00", "2026-03-29 01:00:00",
	    "gap start → 03:00" },
	{ "Europe/Berlin", "2026-03-29 03:00", "2026-03-29 01:00:00",
	    "first valid minute" },
	{ "Europe/Berlin", "2026-10-25 02:30", "2026-10-25 00:30:00",
	    "fall-back overlap → the first" },
	{ "America/New_York", "2026-03-08 02:30", "2026-03-08 07:00:00",
	    "gap → 03:00 EDT" },
	{ "America/New_York", "2026-11-01 01:30", "2026-11-01 05:30:00",
	    "overlap → EDT" },
	{ "America/New_York", "2026-11-01 03:00", "2026-11-01 08:00:00",
	    "after fall back: EST" },
	{ "Asia/Kolkata", "2026-06-01 10:00", "2026-06-01 04:30:00",
	    "+05:30, no DST" },
	{ "Asia/Kolkata", "2026-01-01 00:00", "2025-12-31 18:30:00",
	    "date line of the offset" },
	{ "Pacific/Auckland", "2026-04-05 02:30", "2026-04-04 13:30:00",
	    "overlap → NZDT" },
	{ "Pacific/Auckland", "2026-09-27 02:30", "2026-09-26 14:00:00",
	    "gap → 03:00 NZDT" },
	{ "Pacific/Auckland", "2026-07-01 12:00", "2026-07-01 00:00:00",
	    "NZST +12" },
	{ "Australia/Lord_Howe", "2026-04-05 01:45", "2026-04-04 14:45:00",
	    "30-minute overlap → +11" },
	{ "Australia/Lord_Howe", "2026-10-04 02:15", "2026-10-03 15:30:00",
	    "30-minute gap → 02:30" },
	{ "Australia/Lord_Howe", "2026-07-01 12:00", "2026-07-01 01:30:00",
	    "+10:30" },
	{ "UTC", "2026-03-29 02:30", "2026-03-29 02:30:00", "UTC" },
	{ "Europe/Berlin", "2026-02-31 10:00", "2026-03-03 09:00:00",
	    "day overflow is normalised" },
};

#define MON_FRI		CLOCK_WEEKDAYS
#define SUN_THU		0x1f
#define M(h, m)		((h) * 60 + (m))

static const struct {
	const char	*zone, *event;	/* event: UTC */
	const char	*delay;		/* "3d" style or NULL */
	long		 delay_s;
	int		 business;
	unsigned	 wdays;
	int		 ws, we;	/* window minutes */
	int		 qs, qe;	/* quiet minutes */
	const char	*holiday;	/* one local date or NULL */
	const char	*want;		/* UTC */
	const char	*note;
} due_cases[] = {
	{ "Europe/Berlin", "2026-03-27 09:00:00", "3d", 3 * 86400, 0, 0, 0, 0,
	    0, 0, NULL, "2026-03-30 08:00:00",
	    "3d across spring forward keeps 10:00 local" },
	{ "Europe/Berlin", "2026-10-23 08:00:00", "3d", 3 * 86400, 0, 0, 0, 0,
	    0, 0, NULL, "2026-10-26 09:00:00",
	    "3d across fall back keeps 10:00 local" },
	{ "America/New_York", "2026-10-31 14:00:00", "1d", 86400, 0, 0, 0, 0,
	    0, 0, NULL, "2026-11-01 15:00:00", "NY fall back keeps 10:00" },
	{ "America/New_York", "2026-03-07 07:30:00", "1d", 86400, 0, 0, 0, 0,
	    0, 0, NULL, "2026-03-08 07:00:00",
	    "NY 02:30 does not exist next day → 03:00 EDT" },
	{ "America/New_York", "2026-10-31 05:30:00", "1d", 86400, 0, 0, 0, 0,
	    0, 0, NULL, "2026-11-01 05:30:00",
	    "NY 01:30 ambiguous → once, the first" },
	{ "America/New_York", "2026-10-31 14:00:00", "1d12h", 129600, 0, 0, 0,
	    0, 0, 0, NULL, "2026-11-02 03:00:00",
	    "1d12h: a calendar day, then 12 elapsed hours" },
	{ "Asia/Kolkata", "2026-06-01 04:30:00", "2d", 2 * 86400, 0, 0, 0, 0,
	    0, 0, NULL, "2026-06-03 04:30:00", "Kolkata 2d" },
	{ "Asia/Kolkata", "2026-06-05 10:00:00", "2h", 7200, 0, MON_FRI,
	    M(9, 0), M(17, 0), 0, 0, NULL, "2026-06-08 03:30:00",
	    "Friday 17:30 IST outside Mon-Fri 09-17 → Monday 09:00" },
	{ "Asia/Kolkata", "2026-06-04 04:30:00", NULL, 0, 1, SUN_THU,
	    M(9, 0), M(17, 0), 0, 0, NULL, "2026-06-07 04:30:00",
	    "1 business day Sun-Thu from Thursday → Sunday" },
	{ "Pacific/Auckland", "2026-04-03 21:00:00", "1d", 86400, 0, 0, 0, 0,
	    0, 0, NULL, "2026-04-04 22:00:00", "Auckland DST end keeps 10:00" },
	{ "Pacific/Auckland", "2026-09-25 22:00:00", "1d", 86400, 0, 0, 0, 0,
	    0, 0, NULL, "2026-09-26 21:00:00",
	    "Auckland DST start keeps 10:00" },
	{ "Pacific/Auckland", "2026-09-26 09:00:00", "0", 0, 0, 0, 0, 0,
	    M(20, 0), M(8, 0), NULL, "2026-09-26 19:00:00",
	    "quiet hours end 08:00 NZDT on the night clocks go forward" },
	{ "Australia/Lord_Howe", "2026-10-02 15:45:00", "1d", 86400, 0, 0, 0,
	    0, 0, 0, NULL, "2026-10-03 15:30:00",
	    "Lord Howe 02:15 in the 30-minute gap → 02:30" },
	{ "Australia/Lord_Howe", "2026-04-03 14:45:00", "1d", 86400, 0, 0, 0,
	    0, 0, 0, NULL, "2026-04-04 14:45:00",
	    "Lord Howe 01:45 ambiguous → the first" },
	{ "Australia/Lord_Howe", "2026-04-03 23:00:00", "1d", 86400, 0, 0, 0,
	    0, 0, 0, NULL, "2026-04-04 23:30:00",
	    "Lord Howe keeps 10:00 across a 30-minute change" },
	{ "Europe/Berlin", "2026-03-27 09:00:00", NULL, 0, 2, 0, 0, 0, 0, 0,
	    NULL, "2026-03-31 08:00:00", "2 business days from Friday → Tuesday" },
	{ "Europe/Berlin", "2026-03-27 09:00:00", NULL, 0, 2, 0, 0, 0, 0, 0,
	    "2026-03-30", "2026-04-01 08:00:00",
	    "2 business days skip a Monday holiday → Wednesday" },
	{ "Europe/Berlin", "2026-03-28 09:00:00", NULL, 0, 1, 0, 0, 0, 0, 0,
	    NULL, "2026-03-30 08:00:00", "1 business day from Saturday → Monday" },
	{ "Europe/Berlin", "2026-11-06 15:00:00", "2h", 7200, 0, MON_FRI,
	    M(9, 0), M(17, 0), 0, 0, NULL, "2026-11-09 08:00:00",
	    "Friday 18:00 outside the window → Monday 09:00" },
	{ "Europe/Berlin", "2026-11-06 15:00:00", "2h", 7200, 0, MON_FRI,
	    M(9, 0), M(17, 0), 0, 0, "2026-11-09", "2026-11-10 08:00:00",
	    "…and a Monday holiday → Tuesday 09:00" },
	{ "Europe/Berlin", "2026-11-04 06:00:00", "1h", 3600, 0, MON_FRI,
	    M(9, 0), M(17, 0), 0, 0, NULL, "2026-11-04 08:00:00",
	    "08:00 before the window opens → 09:00 the same day" },
	{ "Europe/Berlin", "2026-11-04 09:00:00", "1h", 3600, 0, MON_FRI,
	    M(9, 0), M(17, 0), 0, 0, NULL, "2026-11-04 10:00:00",
	    "inside the window: unchanged, never earlier than the delay" },
	{ "Europe/Berlin", "2026-11-03 21:00:00", "0", 0, 0, 0, 0, 0, M(20, 0),
	    M(8, 0), NULL, "2026-11-04 07:00:00", "22:00 in quiet hours → 08:00" },
	{ "Europe/Berlin", "2026-11-04 02:00:00", "0", 0, 0, 0, 0, 0, M(20, 0),
	    M(8, 0), NULL, "2026-11-04 07:00:00", "03:00 in quiet hours → 08:00" },
	{ "Europe/Berlin", "2026-03-28 22:00:00", "0", 0, 0, 0, 0, 0, M(20, 0),
	    M(8, 0), NULL, "2026-03-29 06:00:00",
	    "quiet hours across spring forward end at 08:00 CEST" },
	{ "Europe/Berlin", "2026-11-04 11:30:00", "0", 0, 0, 0, 0, 0, M(12, 0),
	    M(13, 0), NULL, "2026-11-04 12:00:00", "quiet 12:00-13:00 (lunch)" },
	{ "Europe/Berlin", "2026-11-03 20:00:00", "0", 0, 0, MON_FRI, M(7, 0),
	    M(22, 0), M(20, 0), M(8, 0), NULL, "2026-11-04 07:00:00",
	    "window 07-22 and quiet 20-08: Tuesday 21:00 → Wednesday 08:00" },
	{ "Europe/Berlin", "2026-11-06 20:00:00", "0", 0, 0, MON_FRI, M(7, 0),
	    M(22, 0), M(20, 0), M(8, 0), NULL, "2026-11-09 07:00:00",
	    "Friday 21:00 → past the weekend → Monday 08:00" },
	{ "America/New_York", "2026-11-01 04:00:00", "0", 0, 0, 0, 0, 0,
	    M(20, 0), M(8, 0), NULL, "2026-11-01 13:00:00",
	    "NY quiet hours on the fall-back night end 08:00 EST" },
};

static void
test_local(void)
{
	char buf[20];

	for (size_t i = 0; i < sizeof(local_cases) / sizeof(local_cases[0]);
	    i++) {
		const struct clock_zone *z = clock_zone(local_cases[i].zone);
		struct clock_local lt;

		memset(&lt, 0, sizeof(lt));
		if (z == NULL) {
			tap_ok(0, "zone %s is known", local_cases[i].zone);
			continue;
		}
		sscanf(local_cases[i].local, "%d-%d-%d %d:%d", &lt.year,
		    &lt.mon, &lt.day, &lt.hour, &lt.min);
		tap_str(clock_format_sql(clock_from_local(z, &lt), buf),
		    local_cases[i].want, "%s %s → UTC (%s)", local_cases[i].zone,
		    local_cases[i].local, local_cases[i].note);
	}
}

static void
test_due(void)
{
	char buf[20];

	for (size_t i = 0; i < sizeof(due_cases) / sizeof(due_cases[0]); i++) {
		const struct clock_zone *z = clock_zone(due_cases[i].zone);
		long hday[1];
		struct clock_days h = { hday, 0 };
		struct clock_rule r;

		memset(&r, 0, sizeof(r));
		r.delay = due_cases[i].delay_s;
		r.business_days = due_cases[i].business;
		r.window.days = due_cases[i].wdays;
		r.window.start = due_cases[i].ws;
		r.window.end = due_cases[i].we;
		r.quiet.start = due_cases[i].qs;
		r.quiet.end = due_cases[i].qe;
		if (due_cases[i].holiday) {
			int y, m, d;

			sscanf(due_cases[i].holiday, "%d-%d-%d", &y, &m, &d);
			hday[0] = clock_days_from_civil(y, m, d);
			h.n = 1;
			r.holidays = &h;
		}
		tap_str(clock_format_sql(clock_due(&r, z,
		    utc(due_cases[i].event)), buf), due_cases[i].want,
		    "%s: %s (%s)", due_cases[i].zone, due_cases[i].note,
		    due_cases[i].delay ? due_cases[i].delay : "business days");
	}
}

static void
test_wall_clock_sweep(void)
{
	/* Every day of 2026, 10:00 local + 1d is 10:00 local the next day. */
	const char *names[] = { "Europe/Berlin", "America/New_York",
	    "Asia/Kolkata", "Pacific/Auckland", "Australia/Lord_Howe" };

	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		const struct clock_zone *z = clock_zone(names[k]);
		struct clock_rule r;
		int bad = 0;

		memset(&r, 0, sizeof(r));
		r.delay = 86400;
		for (long d = clock_days_from_civil(2026, 1, 1);
		    d < clock_days_from_civil(2027, 1, 1); d++) {
			struct clock_local lt, got;

			memset(&lt, 0, sizeof(lt));
			clock_civil_from_days(d, &lt.year, &lt.mon, &lt.day);
			lt.hour = 10;
			clock_to_local(z, clock_due(&r, z, clock_from_local(z,
			    &lt)), &got);
			if (got.hour != 10 || got.min != 0 ||
			    clock_days_from_civil(got.year, got.mon, got.day) !=
			    d + 1)
				bad++;
		}
		tap_ok(bad == 0, "%s: 10:00 + 1d is 10:00 the next day all "
		    "through 2026 (%d wrong)", names[k], bad);
	}
}

static void
test_zones(void)
{
	const struct clock_zone *utcz = clock_zone_utc(), *b;
	struct clock_local lt;
	char buf[32];
	const char *why = "x";
	struct clock_rule r;
	int dst = -1;

	tap_ok(clock_zone("Mars/Olympus_Mons") == NULL, "unknown zone → NULL");
	tap_ok(clock_zone("../../etc/passwd") == NULL, "path-like name → NULL");
	tap_ok(clock_zone("") == NULL && clock_zone(NULL) == NULL,
	    "empty and NULL → NULL");
	tap_ok(clock_zone_or("Mars/Olympus_Mons", NULL) == utcz,
	    "unknown zone falls back to UTC");
	tap_ok(clock_zone_or("Mars/Olympus_Mons", NULL) == utcz,
	    "…again (warned once)");
	b = clock_zone("Europe/Berlin");
	tap_ok(clock_zone_or("Nowhere/Land", b) == b, "fallback is the given zone");
	tap_ok(clock_zone_or(NULL, b) == b, "NULL name → fallback");
	tap_str(clock_zone_name(b), "Europe/Berlin", "zone keeps its IANA name");
	tap_ok(clock_zone("Europe/Berlin") == b, "zones are cached");
	tap_ok(clock_zone("Etc/UTC") == utcz, "Etc/UTC is UTC");
	tap_ok(clock_utc_offset(b, utc("2026-07-01 12:00:00"), &dst) == 7200 &&
	    dst == 1, "Berlin July: +02:00, summer time");
	tap_ok(clock_utc_offset(b, utc("2026-01-01 12:00:00"), &dst) == 3600 &&
	    dst == 0, "Berlin January: +01:00, standard time");
	clock_to_local(clock_zone("Asia/Kolkata"), utc("2026-06-01 20:00:00"),
	    &lt);
	tap_ok(lt.year == 2026 && lt.mon == 6 && lt.day == 2 && lt.hour == 1 &&
	    lt.min == 30 && lt.wday == 2, "Kolkata local of 20:00Z is Tuesday "
	    "01:30 the next day");
	tap_str(clock_format_local(clock_zone("Australia/Lord_Howe"),
	    utc("2026-01-15 00:00:00"), buf), "2026-01-15 11:00 +11:00",
	    "format_local with the offset");
	tap_str(clock_format_local(clock_zone("America/New_York"),
	    utc("2026-01-15 00:00:00"), buf), "2026-01-14 19:00 -05:00",
	    "format_local west of UTC");
	tap_str(clock_format_local_iso(clock_zone("Asia/Kolkata"),
	    utc("2026-06-01 20:00:07"), buf), "2026-06-02T01:30:07+05:30",
	    "format_local_iso: seconds and a half-hour offset");
	tap_str(clock_format_local_iso(clock_zone("America/New_York"),
	    utc("2026-01-15 00:00:00"), buf), "2026-01-14T19:00:00-05:00",
	    "format_local_iso west of UTC");

	memset(&r, 0, sizeof(r));
	r.quiet.start = M(20, 0);
	r.quiet.end = M(8, 0);
	tap_ok(clock_next_open(&r, b, utc("2026-11-04 10:00:00"), &why) ==
	    utc("2026-11-04 10:00:00") && why == NULL, "open: unchanged, no why");
	clock_next_open(&r, b, utc("2026-11-04 22:00:00"), &why);
	tap_str(why, "quiet hours", "why: quiet hours");
	r.window.days = MON_FRI;
	r.window.start = M(9, 0);
	r.window.end = M(17, 0);
	clock_next_open(&r, b, utc("2026-11-07 10:00:00"), &why);
	tap_str(why, "send window", "why: send window (Saturday)");

	/* Civil day arithmetic. */
	{
		int y, m, d, bad = 0;

		for (long n = -800000; n < 800000; n += 37) {
			clock_civil_from_days(n, &y, &m, &d);
			if (clock_days_from_civil(y, m, d) != n)
				bad++;
		}
		tap_ok(bad == 0, "civil day numbers round-trip (%d wrong)", bad);
		tap_ok(clock_days_from_civil(1970, 1, 1) == 0 &&
		    clock_days_from_civil(2026, 3, 29) == 20541,
		    "known day numbers");
	}
}

int
main(void)
{
	test_local();
	test_due();
	test_wall_clock_sweep();
	test_zones();
	clock_zones_free();
	return tap_done();
}
