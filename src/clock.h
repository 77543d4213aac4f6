/* clock: the current time (overridable for tests and demos), UTC text times. */
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

#endif
