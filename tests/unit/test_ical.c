/* test_ical: iTIP objects (ical_build), feeds and holiday files (ical_holidays_load). */
#include "clock.h"
#include "ical.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static time_t
utc(const char *s)
{
	time_t t = 0;

	clock_parse(s, &t);
	return t;
}

static int
has(const struct buf *b, const char *s)
{
	return b->data != NULL && strstr(b->data, s) != NULL;
}

static struct ical_event
sample(const char *method, const char *zone)
{
	struct ical_event e = {
		.method = method,
		.uid = "followupd-callback-7@acme.example",
		.sequence = 2,
		.dtstamp = utc("2026-11-03 10:00:00"),
		.start = utc("2026-11-05 09:00:00"),
		.end = utc("2026-11-05 09:15:00"),
		.zone = zone ? clock_zone(zone) : NULL,
		.summary = "Call back Ana; ticket #7, \"now\"\nplease",
		.description = "Printer offline\nhttps://desk.example/t/7",
		.url = "https://desk.example/t/7",
		.organizer_addr = "support@acme.example",
		.organizer_name = "Acme \"Support\"",
		.attendee_addr = "sam@acme.example",
		.attendee_name = "Sam",
		.alarm = 600,
	};

	return e;
}

static void
test_build(void)
{
	struct buf b = { 0 };
	char *err = NULL;
	struct ical_event e = sample("REQUEST", "Europe/Berlin");

	tap_ok(ical_build(&e, &b, &err) == FU_OK, "REQUEST builds (%s)",
	    err ? err : "");
	tap_ok(has(&b, "METHOD:REQUEST\r\n") && has(&b, "VERSION:2.0\r\n") &&
	    has(&b, "PRODID:"), "VCALENDAR: METHOD, VERSION, PRODID");
	tap_ok(has(&b, "TZID:Europe/Berlin\r\n") && !has(&b, "freeassociation"),
	    "VTIMEZONE with the plain IANA TZID");
	tap_ok(!has(&b, "RRULE"), "observances without RRULE");
	tap_ok(has(&b, "DTSTART:20261025T030000\r\nTZOFFSETFROM:+0200\r\n"
	    "TZOFFSETTO:+0100"), "the 2026 fall-back observance, local time "
	    "in the old offset");
	tap_ok(has(&b, "DTSTART;TZID=Europe/Berlin:20261105T100000\r\n") &&
	    has(&b, "DTEND;TZID=Europe/Berlin:20261105T101500\r\n"),
	    "DTSTART/DTEND: local wall clock with TZID");
	tap_ok(has(&b, "UID:followupd-callback-7@acme.example\r\n") &&
	    has(&b, "SEQUENCE:2\r\n") && has(&b, "DTSTAMP:20261103T100000Z"),
	    "UID, SEQUENCE, DTSTAMP in UTC");
	tap_ok(has(&b, "SUMMARY:Call back Ana\\; ticket #7\\, \"now\" please\r\n"),
	    "SUMMARY: one line, TEXT escaping");
	tap_ok(has(&b, "DESCRIPTION:Printer offline\\nhttps://desk.example/t/7"),
	    "DESCRIPTION keeps its line break, escaped");
	tap_ok(has(&b, "ORGANIZER;CN=Acme Support:mailto:support@acme.example"),
	    "ORGANIZER with a CN without quotes");
	tap_ok(has(&b, "mailto:sam@acme.example") && has(&b, "ROLE=REQ-PARTICIPANT"),
	    "ATTENDEE");
	tap_ok(has(&b, "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT10M"),
	    "VALARM DISPLAY 10 minutes before");
	tap_ok(has(&b, "STATUS:CONFIRMED"), "REQUEST: STATUS:CONFIRMED");
	buf_free(&b);

	e = sample("CANCEL", "Asia/Kolkata");
	tap_ok(ical_build(&e, &b, &err) == FU_OK, "CANCEL builds");
	tap_ok(has(&b, "METHOD:CANCEL") && has(&b, "STATUS:CANCELLED") &&
	    !has(&b, "VALARM"), "CANCEL: STATUS:CANCELLED, no alarm");
	tap_ok(has(&b, "TZOFFSETFROM:+0530\r\nTZOFFSETTO:+0530") &&
	    !has(&b, "DAYLIGHT"), "Kolkata: one STANDARD observance");
	tap_ok(has(&b, "DTSTART;TZID=Asia/Kolkata:20261105T143000"),
	    "Kolkata wall clock 14:30");
	buf_free(&b);

	e = sample("REQUEST", "Australia/Lord_Howe");
	tap_ok(ical_build(&e, &b, &err) == FU_OK && has(&b,
	    "TZOFFSETFROM:+1030\r\nTZOFFSETTO:+1100") && has(&b,
	    "DTSTART:20261004T020000\r\nTZOFFSETFROM:+1030"),
	    "Lord Howe: the 30-minute change at 02:00 local");
	buf_free(&b);

	e = sample("REQUEST", NULL);
	tap_ok(ical_build(&e, &b, &err) == FU_OK && !has(&b, "VTIMEZONE") &&
	    has(&b, "DTSTART:20261105T090000Z"), "UTC: Z times, no VTIMEZONE");
	buf_free(&b);

	e = sample("PUBLISH", NULL);
	tap_ok(ical_build(&e, &b, &err) == FU_PERMFAIL && b.len == 0,
	    "other methods are refused");
	free(err);
	err = NULL;
	e = sample("REQUEST", NULL);
	e.attendee_addr = "sam@acme.example\r\nX-EVIL:1";
	tap_ok(ical_build(&e, &b, &err) == FU_PERMFAIL, "CRLF in an address "
	    "is refused");
	free(err);
	err = NULL;
	e = sample("REQUEST", NULL);
	e.uid = "a\nb";
	tap_ok(ical_build(&e, &b, &err) == FU_PERMFAIL, "LF in a UID is refused");
	free(err);
	err = NULL;
	buf_free(&b);

	{
		struct ical_event ev[2] = { sample(NULL, "Europe/Berlin"),
		    sample(NULL, "Europe/Berlin") };

		ev[1].uid = "other@acme.example";
		tap_ok(ical_feed("Sam's reminders", ev, 2, &b, &err) == FU_OK,
		    "feed builds");
		tap_ok(!has(&b, "METHOD:") && has(&b, "X-WR-CALNAME:Sam's reminders"),
		    "feed: no METHOD, a calendar name");
		{
			int n = 0;

			for (const char *p = b.data; (p = strstr(p,
			    "BEGIN:VTIMEZONE")) != NULL; p++)
				n++;
			tap_ok(n == 1, "feed: one VTIMEZONE per zone (%d)", n);
		}
		buf_free(&b);
		tap_ok(ical_feed("empty", NULL, 0, &b, &err) == FU_OK &&
		    !has(&b, "VEVENT"), "an empty feed");
		buf_free(&b);
	}
}

static const char holidays_ics[] =
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
    "BEGIN:VEVENT\r\nUID:1\r\nDTSTAMP:20260101T000000Z\r\n"
    "DTSTART;VALUE=DATE:20261225\r\nDTEND;VALUE=DATE:20261227\r\n"
    "SUMMARY:Christmas\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:2\r\nDTSTAMP:20260101T000000Z\r\n"
    "DTSTART;VALUE=DATE:20260501\r\nRRULE:FREQ=YEARLY\r\n"
    "SUMMARY:Labour Day\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:3\r\nDTSTAMP:20260101T000000Z\r\n"
    "DTSTART:20261003T000000\r\nSUMMARY:Unity Day\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n";

static void
test_holidays(void)
{
	char path[] = "/tmp/test_ical.XXXXXX";
	struct clock_days h = { NULL, 0 };
	char *err = NULL;
	int fd = mkstemp(path);

	if (fd == -1 || write(fd, holidays_ics, sizeof(holidays_ics) - 1) !=
	    (ssize_t)(sizeof(holidays_ics) - 1)) {
		tap_ok(0, "temp file");
		return;
	}
	close(fd);
	tap_ok(ical_holidays_load(path, &h, &err) == FU_OK, "holidays load (%s)",
	    err ? err : "");
	tap_ok(clock_days_has(&h, clock_days_from_civil(2026, 12, 25)) &&
	    clock_days_has(&h, clock_days_from_civil(2026, 12, 26)) &&
	    !clock_days_has(&h, clock_days_from_civil(2026, 12, 27)),
	    "two-day event, DTEND exclusive");
	tap_ok(clock_days_has(&h, clock_days_from_civil(2026, 5, 1)) &&
	    clock_days_has(&h, clock_days_from_civil(2031, 5, 1)) &&
	    clock_days_has(&h, clock_days_from_civil(2100, 5, 1)),
	    "a yearly RRULE through 2100");
	tap_ok(clock_days_has(&h, clock_days_from_civil(2026, 10, 3)),
	    "a DATE-TIME start counts as its date");
	tap_ok(!clock_days_has(&h, clock_days_from_civil(2026, 5, 2)),
	    "other days are not holidays");
	{
		struct clock_rule r;
		time_t due;
		char buf[20];

		memset(&r, 0, sizeof(r));
		r.business_days = 1;
		r.holidays = &h;
		/* Thu 24 Dec 10:00 Berlin + 1 business day: 25, 26 (holidays),
		 * 27 (Sunday) → Monday 28. */
		due = clock_due(&r, clock_zone("Europe/Berlin"),
		    utc("2026-12-24 09:00:00"));
		tap_str(clock_format_sql(due, buf), "2026-12-28 09:00:00",
		    "business days skip holidays from the file and the weekend");
	}
	clock_days_free(&h);
	unlink(path);

	tap_ok(ical_holidays_load("/nonexistent/holidays.ics", &h, &err) ==
	    FU_TEMPFAIL, "a missing file: tempfail");
	free(err);
	err = NULL;
	{
		char p2[] = "/tmp/test_ical.XXXXXX";
		int fd2 = mkstemp(p2);

		if (fd2 != -1) {
			if (write(fd2, "not a calendar\n", 15) != 15)
				tap_diag("short write");
			close(fd2);
			tap_ok(ical_holidays_load(p2, &h, &err) == FU_PERMFAIL &&
			    err != NULL, "not iCalendar: permfail (%s)",
			    err ? err : "");
			free(err);
			unlink(p2);
		}
	}
}

int
main(void)
{
	test_build();
	test_holidays();
	clock_zones_free();
	return tap_done();
}
