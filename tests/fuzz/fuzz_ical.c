/*
 * fuzz_ical: iCalendar in both directions.
 *
 * Byte 0 picks the mode. Even: the rest is a holidays file
 * (ical_holidays_load reads a file: it is written to a private temporary
 * directory); when accepted, the days must be sorted and bounded. Odd: the
 * rest is split at NUL bytes into an untrusted summary, description and
 * attendee name for ical_build (an agent reminder); the calendar must have
 * CRLF lines, exactly one VEVENT, one ORGANIZER and one ATTENDEE at the
 * start of a line, and no line a value could have added (no second
 * BEGIN/END, no METHOD, no ATTACH).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "fuzz.h"
#include "ical.h"
#include "util.h"

static char *ics_path;

static void
holidays(const uint8_t *data, size_t size)
{
	struct clock_days days = { NULL, 0 };
	char *err = NULL;
	FILE *f;

	if (ics_path == NULL) {
		char tmpl[] = "/tmp/fuzz-ical.XXXXXX";

		if (mkdtemp(tmpl) == NULL)
			abort();
		ics_path = xasprintf("%s/holidays.ics", tmpl);
	}
	if ((f = fopen(ics_path, "wb")) == NULL ||
	    fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	if (ical_holidays_load(ics_path, &days, &err) == FU_OK) {
		for (size_t i = 1; i < days.n; i++)
			FUZZ_ASSERT(days.days[i - 1] <= days.days[i],
			    "holidays are sorted");
		FUZZ_ASSERT(err == NULL, "no error on success");
	} else
		FUZZ_ASSERT(err != NULL, "a refusal says why");
	free(err);
	clock_days_free(&days);
}

static int
starts(const char *line, size_t n, const char *prop)
{
	size_t k = strlen(prop);

	return n >= k && strncasecmp(line, prop, k) == 0 &&
	    (n == k || line[k] == ':' || line[k] == ';');
}

static void
reminder(const uint8_t *data, size_t size)
{
	char *copy = xmalloc(size + 1), *p, *end;
	const char *f[3] = { "", NULL, NULL };
	struct buf out = { 0 };
	char *err = NULL;
	int nf = 0;

	memcpy(copy, data, size);
	copy[size] = '\0';
	for (p = copy, end = copy + size; nf < 3 && p <= end; nf++) {
		f[nf] = p;
		p += strlen(p) + 1;
	}
	{
		struct ical_event ev = {
			.method = "REQUEST",
			.uid = "checkin-42@acme.example",
			.sequence = 0,
			.dtstamp = 1793872800,
			.start = 1793876400,
			.end = 1793877300,
			.zone = clock_zone("Europe/Madrid"),
			.summary = f[0],
			.description = f[1],
			.organizer_addr = "support@acme.example",
			.organizer_name = "Acme Support",
			.attendee_addr = "sam@acme.example",
			.attendee_name = f[2],
			.alarm = 600,
		};

		if (ical_build(&ev, &out, &err) == FU_OK) {
			const char *q = out.data, *qe = out.data + out.len, *nl;
			int vevent = 0, org = 0, att = 0, begins = 0, ends = 0;

			for (; q < qe; q = nl + 1) {
				size_t n;

				nl = memchr(q, '\n', (size_t)(qe - q));
				FUZZ_ASSERT(nl != NULL && nl > q && nl[-1] == '\r',
				    "CRLF line ends");
				n = (size_t)(nl - 1 - q);
				FUZZ_ASSERT(memchr(q, '\r', n) == NULL, "no bare CR");
				if (*q == ' ' || *q == '\t')
					continue;	/* folded */
				vevent += starts(q, n, "BEGIN") &&
				    n >= 12 && strncmp(q, "BEGIN:VEVENT", 12) == 0;
				begins += starts(q, n, "BEGIN");
				ends += starts(q, n, "END");
				org += starts(q, n, "ORGANIZER");
				att += starts(q, n, "ATTENDEE");
				FUZZ_ASSERT(!starts(q, n, "ATTACH") &&
				    !starts(q, n, "RRULE"), "no line added");
			}
			FUZZ_ASSERT(vevent == 1 && org == 1 && att == 1,
			    "one VEVENT, ORGANIZER, ATTENDEE");
			FUZZ_ASSERT(begins == ends, "BEGIN and END pair up");
		} else
			FUZZ_ASSERT(err != NULL, "a refusal says why");
	}
	free(err);
	buf_free(&out);
	free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] % 2 == 0)
		holidays(data + 1, size - 1);
	else
		reminder(data + 1, size - 1);
	return 0;
}
