/* ical: iTIP REQUEST / CANCEL objects for agent reminders, feeds and holiday files (libical). */
#ifndef FOLLOWUPD_ICAL_H
#define FOLLOWUPD_ICAL_H

#include <stddef.h>
#include <time.h>

#include "clock.h"
#include "util.h"

/* Text we put in SUMMARY and DESCRIPTION (bytes; longer is cut with "…"). */
#define ICAL_SUMMARY_MAX	200
#define ICAL_DESCRIPTION_MAX	4000

/*
 * One calendar item (RFC 5545 VEVENT) as an iTIP message (RFC 5546): the
 * organizer (us) invites or cancels one attendee (the agent).
 */
struct ical_event {
	const char		*method;	/* "REQUEST" or "CANCEL" (NULL in a feed) */
	const char		*uid;		/* stable for (rule, ticket) */
	int			 sequence;	/* 0, then + 1 per change */
	time_t			 dtstamp;	/* when this version was made */
	time_t			 start, end;	/* UTC instants */
	/*
	 * DTSTART/DTEND are written as local times with TZID=<IANA name> and
	 * a VTIMEZONE for that zone (NULL or UTC: "Z" times, no VTIMEZONE).
	 */
	const struct clock_zone	*zone;
	const char		*summary;	/* untrusted: cleaned, bounded */
	const char		*description;	/* untrusted; may be NULL */
	const char		*url;		/* may be NULL */
	const char		*organizer_addr, *organizer_name;	/* name may be NULL */
	const char		*attendee_addr, *attendee_name;		/* name may be NULL */
	long			 alarm;		/* DISPLAY alarm this many seconds before; 0: none */
};

/*
 * The VCALENDAR text (PRODID, VERSION 2.0, METHOD, the VTIMEZONE, one
 * VEVENT with UID, SEQUENCE, DTSTAMP, DTSTART, DTEND, SUMMARY, DESCRIPTION,
 * ORGANIZER, ATTENDEE, STATUS and for a REQUEST a VALARM), CRLF line ends,
 * appended to out. The object is checked against RFC 5546's restrictions
 * (on a copy). FU_PERMFAIL with *err for invalid input.
 *
 * The VTIMEZONE is ours, not libical's: TZID is the plain IANA name and the
 * observances are the zone's actual changes from a year before the event to
 * a year after it, each a DTSTART without RRULE, computed with the same
 * clock_utc_offset the schedule used. libical's own blocks carry a
 * "/freeassociation.sourceforge.net/" TZID and RRULEs with UNTIL that
 * common parsers (Debian's python3-icalendar) refuse.
 */
int	ical_build(const struct ical_event *, struct buf *out, char **err);

/*
 * A subscribable feed: one VCALENDAR (no METHOD) with NAME as X-WR-CALNAME
 * and every event given (their VTIMEZONEs once each). FU_PERMFAIL on
 * invalid input.
 */
int	ical_feed(const char *name, const struct ical_event *, size_t n,
	    struct buf *out, char **err);

/*
 * Holidays: every VEVENT of an iCalendar file is a closed day (all-day
 * DTSTART, DTEND exclusive, several days allowed; a DATE-TIME start counts
 * as its date). RRULEs (a yearly holiday) are expanded through 2100.
 * *out gets the sorted day numbers (clock_days_free). FU_TEMPFAIL when the
 * file cannot be read, FU_PERMFAIL when it is not iCalendar; *err says why.
 */
int	ical_holidays_load(const char *path, struct clock_days *out, char **err);

#endif
