/* clock: the current time (overridable for tests and demos), strict UTC text times. */
#include "clock.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/*
 * The override is process-wide: `followupd once --now ...` and the tests set
 * it once at start-up. clock_set_now((time_t)-1) returns to the real clock
 * (-1 is also what time() returns on failure, so it is never a useful instant).
 */
static time_t	clock_fixed;
static int	clock_is_fixed;

time_t
clock_now(void)
{
	return clock_is_fixed ? clock_fixed : time(NULL);
}

void
clock_set_now(time_t t)
{
	clock_fixed = t;
	clock_is_fixed = t != (time_t)-1;
}

/* Exactly n decimal digits at *s; advances *s. */
static int
digits(const char **s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		unsigned char c = (unsigned char)(*s)[i];

		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*s += n;
	*out = v;
	return 0;
}

static int
is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
days_in_month(int y, int m)
{
	static const int mdays[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};

	return m == 2 && is_leap(y) ? 29 : mdays[m - 1];
}

/*
 * The grammar, strict (anything else, trailing text included, is refused):
 *   date     = YYYY "-" MM "-" DD
 *   time     = HH ":" MM [ ":" SS [ "." 1*DIGIT ] ]
 *   zone     = "Z" / ( "+" / "-" ) HH ":" MM
 *   value    = date [ ( " " / "T" ) time [ zone ] ]
 * Lower-case "t" and "z" are accepted (RFC 3339 5.6, NOTE). Leap seconds
 * (":60") are refused: time_t cannot hold them and the help desk never
 * stores them. Fractions are truncated, not rounded.
 */
int
clock_parse(const char *s, time_t *out)
{
	int year, mon, day, hour = 0, min = 0, sec = 0, oh = 0, om = 0, sign = 0;
	struct tm tm;
	time_t t;

	if (s == NULL)
		return FU_PERMFAIL;
	if (digits(&s, 4, &year) == -1 || *s++ != '-' ||
	    digits(&s, 2, &mon) == -1 || *s++ != '-' ||
	    digits(&s, 2, &day) == -1)
		return FU_PERMFAIL;
	if (year < 1 || mon < 1 || mon > 12 || day < 1 ||
	    day > days_in_month(year, mon))
		return FU_PERMFAIL;

	if (*s == ' ' || *s == 'T' || *s == 't') {
		s++;
		if (digits(&s, 2, &hour) == -1 || *s++ != ':' ||
		    digits(&s, 2, &min) == -1)
			return FU_PERMFAIL;
		if (*s == ':') {
			s++;
			if (digits(&s, 2, &sec) == -1)
				return FU_PERMFAIL;
			if (*s == '.') {
				s++;
				if (*s < '0' || *s > '9')
					return FU_PERMFAIL;
				while (*s >= '0' && *s <= '9')
					s++;
			}
		}
		if (hour > 23 || min > 59 || sec > 59)
			return FU_PERMFAIL;
		if (*s == 'Z' || *s == 'z')
			s++;
		else if (*s == '+' || *s == '-') {
			sign = *s++ == '+' ? 1 : -1;
			if (digits(&s, 2, &oh) == -1 || *s++ != ':' ||
			    digits(&s, 2, &om) == -1 || oh > 23 || om > 59)
				return FU_PERMFAIL;
		}
	}
	if (*s != '\0')
		return FU_PERMFAIL;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	t = timegm(&tm);
	/* The fields were checked, so -1 is a real instant only at 23:59:59 1969-12-31. */
	if (t == (time_t)-1 && !(year == 1969 && mon == 12 && day == 31 &&
	    hour == 23 && min == 59 && sec == 59))
		return FU_PERMFAIL;
	/* Local time = UTC + offset, so UTC = local - offset. */
	t -= (time_t)sign * (oh * 3600 + om * 60);
	*out = t;
	return FU_OK;
}

/*
 * Both formats have a four-digit year. Instants outside years 0..9999 cannot
 * be written that way; they are clamped to the first or last representable
 * second instead of producing a malformed string. (strftime's %Y does not
 * pad years below 1000, hence the explicit widths.)
 */
static char *
format(time_t t, char *buf, char sep, const char *zone)
{
	char tmp[64];
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_year > 9999 - 1900 ||
	    tm.tm_year < -1900) {
		memset(&tm, 0, sizeof(tm));
		if (t < 0) {
			tm.tm_year = -1900;
			tm.tm_mday = 1;
		} else {
			tm.tm_year = 9999 - 1900;
			tm.tm_mon = 11;
			tm.tm_mday = 31;
			tm.tm_hour = 23;
			tm.tm_min = 59;
			tm.tm_sec = 59;
		}
	}
	snprintf(tmp, sizeof(tmp), "%04d-%02d-%02d%c%02d:%02d:%02d%s",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, sep, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, zone);
	/* 19 or 20 characters and the NUL: the fields were bounded above. */
	memcpy(buf, tmp, strlen(tmp) + 1);
	return buf;
}

char *
clock_format_sql(time_t t, char buf[20])
{
	return format(t, buf, ' ', "");
}

char *
clock_format_iso(time_t t, char buf[21])
{
	return format(t, buf, 'T', "Z");
}
