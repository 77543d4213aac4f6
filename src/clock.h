/* clock: the current time (overridable), UTC text times, zones and local-time scheduling. */
#ifndef FOLLOWUPD_CLOCK_H
#define FOLLOWUPD_CLOCK_H

#include <time.h>

#include "util.h"

/*
 * now(): the overridden instant when set (once --now), else time(NULL).
 * clock_set_now((time_t)-1) returns to the real clock.
 */
time_t	clock_now(void);
void	clock_set_now(time_t);

/*
 * Parse a UTC time as the help desk stores it: "YYYY-MM-DD HH:MM:SS",
 * "YYYY-MM-DDTHH:MM:SS", optionally with "Z", fractional seconds ".sss"
 * (ignored) or "+00:00"; also "YYYY-MM-DD HH:MM" and "YYYY-MM-DD" (midnight).
 * Other offsets "+HH:MM" are applied. FU_OK or FU_PERMFAIL.
 */
int	clock_parse(const char *, time_t *out);

/* "YYYY-MM-DD HH:MM:SS" in UTC (SQLite's form) into buf of >= 20 bytes. */
char	*clock_format_sql(time_t, char buf[20]);
/* RFC 3339 "YYYY-MM-DDTHH:MM:SSZ" into buf of >= 21 bytes. */
char	*clock_format_iso(time_t, char buf[21]);

/*
 * Zones. followupd does all local-time arithmetic with libical's zones
 * (Debian's libical reads the system zoneinfo), the same zones ical.c
 * describes in VTIMEZONE blocks, so what is computed and what a calendar
 * shows cannot disagree. A zone is looked up once and kept for the
 * process (clock_zones_free releases them, for leak checkers).
 */
struct clock_zone;

/* The zone named NAME ("Europe/Berlin", "UTC"); NULL when unknown. */
const struct clock_zone	*clock_zone(const char *name);
const struct clock_zone	*clock_zone_utc(void);
/*
 * NAME, else `fallback` when NAME is NULL or empty, or unknown (then a
 * warning is logged once per name and process).
 */
const struct clock_zone	*clock_zone_or(const char *name,
			    const struct clock_zone *fallback);
const char		*clock_zone_name(const struct clock_zone *);
void			 clock_zones_free(void);
/*
 * Names remembered now (known and unknown; *unknown, may be NULL: how
 * many unknown). Lookups take constant time; unknown names are kept for
 * their warn-once at most 1024 at a time, least recently seen dropped.
 */
size_t			 clock_zones_cached(size_t *unknown);

/* Seconds east of UTC at instant t; *is_dst (may be NULL) 1 in summer time. */
int	clock_utc_offset(const struct clock_zone *, time_t t, int *is_dst);

/* A wall-clock time in some zone. mon 1..12, wday 0 = Sunday. */
struct clock_local {
	int	year, mon, day, hour, min, sec, wday;
};

void	clock_to_local(const struct clock_zone *, time_t, struct clock_local *);
/*
 * The instant of a wall-clock time (wday ignored; day may overflow the
 * month, it is normalised). A time that does not exist that day (spring
 * forward) gives the first valid instant after the gap (02:30 → 03:00);
 * an ambiguous one (fall back) gives the earlier of the two.
 */
time_t	clock_from_local(const struct clock_zone *, const struct clock_local *);
/* Local "YYYY-MM-DD HH:MM +01:00" (the offset in effect) into buf. */
char	*clock_format_local(const struct clock_zone *, time_t, char buf[32]);
/* ISO 8601 local time with its offset, "2026-11-05T10:00:00+01:00", into buf. */
char	*clock_format_local_iso(const struct clock_zone *, time_t, char buf[32]);

/* Days since 1970-01-01 of a civil date (proleptic Gregorian), and back. */
long	clock_days_from_civil(int y, int m, int d);
void	clock_civil_from_days(long days, int *y, int *m, int *d);

/*
 * When messages may go out, in the recipient's zone. Minutes since local
 * midnight. A window with days == 0 is "always open". Quiet hours with
 * start == end are "none"; start > end wraps midnight (20:00-08:00).
 */
#define CLOCK_WEEKDAYS	0x3e	/* Mon..Fri, bit 0 = Sunday */
struct clock_window {
	unsigned	days;		/* bit w set: weekday w (0 = Sunday) open */
	int		start, end;	/* minutes, start < end */
};

struct clock_quiet {
	int		start, end;	/* minutes; equal: no quiet hours */
};

/* Holidays: sorted day numbers (clock_days_from_civil). */
struct clock_days {
	long		*days;
	size_t		 n;
};

int	clock_days_has(const struct clock_days *, long day);
void	clock_days_free(struct clock_days *);

struct clock_rule {
	long			 delay;		/* seconds: whole days are calendar days */
	int			 business_days;	/* > 0: delay is this many business days */
	struct clock_window	 window;	/* send window (also the business days) */
	struct clock_quiet	 quiet;
	const struct clock_days	*holidays;	/* may be NULL */
};

/*
 * When a message for an event at `event` is due in zone z: the event's
 * wall-clock time `delay` calendar days (plus the sub-day rest as elapsed
 * time) or `business_days` business days later (days of the window, else
 * Mon-Fri, that are not holidays), then moved to the first instant that is
 * inside the window and outside quiet hours (clock_next_open). Never
 * earlier than the delay.
 */
time_t	clock_due(const struct clock_rule *, const struct clock_zone *,
	    time_t event);

/*
 * The first instant >= t inside the send window (not on a holiday when a
 * window is set) and outside quiet hours. *why (may be NULL) gets "send
 * window" or "quiet hours" when t had to move, NULL when t is fine.
 */
time_t	clock_next_open(const struct clock_rule *, const struct clock_zone *,
	    time_t t, const char **why);

#endif
