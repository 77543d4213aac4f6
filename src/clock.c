/* clock: the current time (overridable), strict UTC text times, zones and local-time scheduling. */
#include "clock.h"
#include "log.h"

#include <libical/ical.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- zones ---- */

/*
 * libical's zones: icaltimezone_get_builtin_timezone reads the system
 * zoneinfo on Debian (or libical's own data elsewhere). We keep our own
 * name next to each, because libical labels them with a TZID prefix
 * ("/freeassociation.sourceforge.net/Europe/Berlin") that we never emit.
 */
struct clock_zone {
	char		*name;
	icaltimezone	*z;		/* libical's; not ours to free */
};

/*
 * Names looked up, in a hash table: constant time whatever the desk sends.
 * A known name keeps its zone for the process (callers hold the pointer;
 * there are only as many as the zoneinfo has names, and lookups are
 * case-sensitive). An unknown name is only remembered so its warning is
 * given once: at most ZONE_UNKNOWN_MAX of them, the least recently seen
 * forgotten first, so a desk full of distinct made-up names cannot grow
 * the process.
 */
#define ZONE_BUCKETS		4096	/* a power of two */
#define ZONE_UNKNOWN_MAX	1024
#define ZONE_WARN_MAX		100	/* unknown-name warnings per process */

struct zone_name {
	char			*name;
	uint32_t		 hash;
	struct clock_zone	*zone;		/* NULL: unknown */
	int			 warned;
	struct zone_name	*next;		/* in its bucket */
	struct zone_name	*older, *newer;	/* unknown names, by last use */
};

static struct zone_name *buckets[ZONE_BUCKETS];
static struct zone_name *lru_newest, *lru_oldest;
static size_t nunknown;
static pthread_mutex_t zones_lock = PTHREAD_MUTEX_INITIALIZER;

static uint32_t
name_hash(const char *s)
{
	uint32_t h = 2166136261u;		/* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static void
lru_unlink(struct zone_name *e)
{
	if (e->older)
		e->older->newer = e->newer;
	else
		lru_oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		lru_newest = e->older;
	e->older = e->newer = NULL;
}

static void
lru_push(struct zone_name *e)
{
	e->older = lru_newest;
	e->newer = NULL;
	if (lru_newest)
		lru_newest->newer = e;
	else
		lru_oldest = e;
	lru_newest = e;
}

static void
name_forget(struct zone_name *e)
{
	struct zone_name **pp = &buckets[e->hash & (ZONE_BUCKETS - 1)];

	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	lru_unlink(e);
	nunknown--;
	free(e->name);
	free(e);
}

/* The entry for name, looked up or added (libical asked once). Locked. */
static struct zone_name *
name_entry(const char *name, icaltimezone *(*lookup)(const char *))
{
	uint32_t h = name_hash(name);
	struct zone_name *e;
	icaltimezone *z;

	for (e = buckets[h & (ZONE_BUCKETS - 1)]; e != NULL; e = e->next)
		if (e->hash == h && strcmp(e->name, name) == 0) {
			if (e->zone == NULL) {		/* seen again */
				lru_unlink(e);
				lru_push(e);
			}
			return e;
		}
	z = lookup(name);
	e = xcalloc(1, sizeof(*e));
	e->name = xstrdup(name);
	e->hash = h;
	e->next = buckets[h & (ZONE_BUCKETS - 1)];
	buckets[h & (ZONE_BUCKETS - 1)] = e;
	if (z != NULL) {
		e->zone = xcalloc(1, sizeof(*e->zone));
		e->zone->name = xstrdup(name);
		e->zone->z = z;
	} else {
		lru_push(e);
		if (++nunknown > ZONE_UNKNOWN_MAX)
			name_forget(lru_oldest);
	}
	return e;
}

static icaltimezone *
utc_lookup(const char *name)
{
	(void)name;
	return icaltimezone_get_utc_timezone();
}

const struct clock_zone *
clock_zone_utc(void)
{
	struct clock_zone *cz;

	pthread_mutex_lock(&zones_lock);
	cz = name_entry("UTC", utc_lookup)->zone;
	pthread_mutex_unlock(&zones_lock);
	return cz;
}

/* Zone names are IANA names: letters, digits, '/', '_', '-', '+'. */
static int
zone_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 64 || name[0] == '/' || strstr(name, ".."))
		return 0;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || strchr("/_-+", *p)))
			return 0;
	return 1;
}

static icaltimezone *
builtin_lookup(const char *name)
{
	return icaltimezone_get_builtin_timezone(name);
}

/* Locked: the entry of a well-formed name other than UTC's spellings. */
static struct zone_name *
zone_lookup(const char *name)
{
	return name_entry(name, builtin_lookup);
}

const struct clock_zone *
clock_zone(const char *name)
{
	struct clock_zone *cz;

	if (name == NULL || !zone_name_ok(name))
		return NULL;
	if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0 ||
	    strcmp(name, "Z") == 0)
		return clock_zone_utc();
	pthread_mutex_lock(&zones_lock);
	cz = zone_lookup(name)->zone;
	pthread_mutex_unlock(&zones_lock);
	return cz;
}

const struct clock_zone *
clock_zone_or(const char *name, const struct clock_zone *fallback)
{
	const struct clock_zone *z;
	struct zone_name *e;
	int warn = 0;

	if (fallback == NULL)
		fallback = clock_zone_utc();
	if (name == NULL || *name == '\0')
		return fallback;
	if ((z = clock_zone(name)) != NULL)
		return z;
	if (zone_name_ok(name)) {
		/* Remember the unknown name so the warning is given once. */
		static int nwarned;

		pthread_mutex_lock(&zones_lock);
		e = zone_lookup(name);
		if (e->zone == NULL && !e->warned) {
			e->warned = 1;
			/* A forgotten name would warn again: a desk full of
			 * made-up names gets ZONE_WARN_MAX lines, not more. */
			warn = ++nwarned <= ZONE_WARN_MAX ? 1 :
			    nwarned == ZONE_WARN_MAX + 1 ? 2 : 0;
		}
		pthread_mutex_unlock(&zones_lock);
		if (warn == 1)
			log_warnx("clock: unknown time zone '%s': using %s",
			    name, fallback->name);
		else if (warn == 2)
			log_warnx("clock: more than %d unknown time zone names: "
			    "using %s for them, no more warnings", ZONE_WARN_MAX,
			    fallback->name);
	} else {
		static int warned_bad;

		if (!warned_bad++)
			log_warnx("clock: malformed time zone name '%.40s': "
			    "using %s", name, fallback->name);
	}
	return fallback;
}

const char *
clock_zone_name(const struct clock_zone *z)
{
	return z ? z->name : "UTC";
}

size_t
clock_zones_cached(size_t *unknown)
{
	size_t n = 0;

	pthread_mutex_lock(&zones_lock);
	for (size_t i = 0; i < ZONE_BUCKETS; i++)
		for (struct zone_name *e = buckets[i]; e != NULL; e = e->next)
			n++;
	if (unknown != NULL)
		*unknown = nunknown;
	pthread_mutex_unlock(&zones_lock);
	return n;
}

void
clock_zones_free(void)
{
	pthread_mutex_lock(&zones_lock);
	for (size_t i = 0; i < ZONE_BUCKETS; i++) {
		while (buckets[i] != NULL) {
			struct zone_name *e = buckets[i];

			buckets[i] = e->next;
			if (e->zone != NULL) {
				free(e->zone->name);
				free(e->zone);
			}
			free(e->name);
			free(e);
		}
	}
	lru_newest = lru_oldest = NULL;
	nunknown = 0;
	pthread_mutex_unlock(&zones_lock);
	icaltimezone_free_builtin_timezones();
}

int
clock_utc_offset(const struct clock_zone *z, time_t t, int *is_dst)
{
	struct icaltimetype tt;
	int dst = 0, off;

	if (z == NULL || z->z == NULL || z->z == icaltimezone_get_utc_timezone()) {
		if (is_dst)
			*is_dst = 0;
		return 0;
	}
	tt = icaltime_from_timet_with_zone(t, 0, icaltimezone_get_utc_timezone());
	off = icaltimezone_get_utc_offset_of_utc_time(z->z, &tt, &dst);
	if (is_dst)
		*is_dst = dst;
	return off;
}

/* Howard Hinnant's days_from_civil / civil_from_days. */
long
clock_days_from_civil(int y, int m, int d)
{
	long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

void
clock_civil_from_days(long z, int *y, int *m, int *d)
{
	long era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

static long
floor_div(long long a, long b)
{
	return (long)(a >= 0 ? a / b : -((-a + b - 1) / b));
}

/* 1970-01-01 was a Thursday. */
static int
weekday(long days)
{
	long w = (days + 4) % 7;

	return (int)(w < 0 ? w + 7 : w);
}

static void
split(long long wall, struct clock_local *lt)
{
	long days = floor_div(wall, 86400);
	long rem = (long)(wall - (long long)days * 86400);

	clock_civil_from_days(days, &lt->year, &lt->mon, &lt->day);
	lt->hour = (int)(rem / 3600);
	lt->min = (int)(rem / 60 % 60);
	lt->sec = (int)(rem % 60);
	lt->wday = weekday(days);
}

void
clock_to_local(const struct clock_zone *z, time_t t, struct clock_local *lt)
{
	split((long long)t + clock_utc_offset(z, t, NULL), lt);
}

/* The wall clock as if it were UTC (seconds). */
static long long
wall_seconds(const struct clock_local *lt)
{
	int y = lt->year, m = lt->mon;

	/* Normalise the month so day overflow is all that remains. */
	y += (m - 1) / 12;
	m = (m - 1) % 12 + 1;
	if (m < 1) {
		m += 12;
		y--;
	}
	return (long long)clock_days_from_civil(y, m, 1) * 86400 +
	    (long long)(lt->day - 1) * 86400 + lt->hour * 3600LL +
	    lt->min * 60LL + lt->sec;
}

time_t
clock_from_local(const struct clock_zone *z, const struct clock_local *lt)
{
	long long wall = wall_seconds(lt);
	/* The offsets a day before and after: at most one change between. */
	int o1 = clock_utc_offset(z, (time_t)(wall - 86400), NULL);
	int o2 = clock_utc_offset(z, (time_t)(wall + 86400), NULL);
	time_t c1 = (time_t)(wall - o1), c2 = (time_t)(wall - o2), lo, hi;
	int v1 = clock_utc_offset(z, c1, NULL) == o1;
	int v2 = clock_utc_offset(z, c2, NULL) == o2;

	if (v1 && v2)
		return c1 < c2 ? c1 : c2;	/* fall back: the first one */
	if (v1)
		return c1;
	if (v2)
		return c2;
	/*
	 * A gap (spring forward): the first valid instant after it is the
	 * change itself, somewhere between the two candidates.
	 */
	lo = c1 < c2 ? c1 : c2;
	hi = c1 < c2 ? c2 : c1;
	while (hi - lo > 1) {
		time_t mid = lo + (hi - lo) / 2;

		if (clock_utc_offset(z, mid, NULL) == o1)
			lo = mid;
		else
			hi = mid;
	}
	return hi;
}

/* Local time with its offset, as text (iso: RFC 3339, else for people). */
static char *
format_local(const struct clock_zone *z, time_t t, char buf[32], int iso)
{
	struct clock_local lt;
	int off = clock_utc_offset(z, t, NULL), a = off < 0 ? -off : off;

	clock_to_local(z, t, &lt);
	if (lt.year < 0 || lt.year > 9999)
		lt.year = lt.year < 0 ? 0 : 9999;
	if (iso)
		snprintf(buf, 32, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d",
		    lt.year, lt.mon, lt.day, lt.hour, lt.min, lt.sec,
		    off < 0 ? '-' : '+', a / 3600 % 100, a / 60 % 60);
	else
		snprintf(buf, 32, "%04d-%02d-%02d %02d:%02d %c%02d:%02d",
		    lt.year, lt.mon, lt.day, lt.hour, lt.min,
		    off < 0 ? '-' : '+', a / 3600 % 100, a / 60 % 60);
	return buf;
}

char *
clock_format_local(const struct clock_zone *z, time_t t, char buf[32])
{
	return format_local(z, t, buf, 0);
}

char *
clock_format_local_iso(const struct clock_zone *z, time_t t, char buf[32])
{
	return format_local(z, t, buf, 1);
}

/* ---- days, windows, quiet hours ---- */

static int
cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return x < y ? -1 : x > y;
}

int
clock_days_has(const struct clock_days *h, long day)
{
	return h != NULL && h->n > 0 &&
	    bsearch(&day, h->days, h->n, sizeof(long), cmp_long) != NULL;
}

void
clock_days_free(struct clock_days *h)
{
	if (h == NULL)
		return;
	free(h->days);
	h->days = NULL;
	h->n = 0;
}

static long
local_day(const struct clock_local *lt)
{
	return clock_days_from_civil(lt->year, lt->mon, lt->day);
}

/* A business day: a day of the window (Mon-Fri without one), not a holiday. */
static int
business_day(const struct clock_rule *r, long day)
{
	unsigned days = r->window.days ? r->window.days : CLOCK_WEEKDAYS;

	return (days & (1u << weekday(day))) && !clock_days_has(r->holidays,
	    day);
}

/* The send window is open some time on this day. */
static int
window_day(const struct clock_rule *r, long day)
{
	return (r->window.days & (1u << weekday(day))) &&
	    !clock_days_has(r->holidays, day);
}

static time_t
at_minute(const struct clock_zone *z, long day, int minute)
{
	struct clock_local lt;

	memset(&lt, 0, sizeof(lt));
	clock_civil_from_days(day, &lt.year, &lt.mon, &lt.day);
	lt.hour = minute / 60;
	lt.min = minute % 60;
	return clock_from_local(z, &lt);
}

static int
in_quiet(const struct clock_quiet *q, int sec_of_day)
{
	int s = q->start * 60, e = q->end * 60;

	if (q->start == q->end)
		return 0;
	if (s < e)
		return sec_of_day >= s && sec_of_day < e;
	return sec_of_day >= s || sec_of_day < e;
}

/* A year of closed days (holidays, no window days) is a configuration error. */
#define CLOCK_SEARCH_MAX	800

time_t
clock_next_open(const struct clock_rule *r, const struct clock_zone *z,
    time_t t, const char **why)
{
	const char *reason = NULL;

	for (int i = 0; i < CLOCK_SEARCH_MAX; i++) {
		struct clock_local lt;
		int sod;
		long day;
		time_t next = t;

		clock_to_local(z, t, &lt);
		sod = lt.hour * 3600 + lt.min * 60 + lt.sec;
		day = local_day(&lt);
		if (r->window.days != 0) {
			if (!window_day(r, day) || sod >= r->window.end * 60) {
				long d = day + 1;

				while (!window_day(r, d) && d < day + 400)
					d++;
				next = at_minute(z, d, r->window.start);
			} else if (sod < r->window.start * 60)
				next = at_minute(z, day, r->window.start);
			if (next != t) {
				if (reason == NULL)
					reason = "send window";
				t = next > t ? next : t + 60;
				continue;
			}
		}
		if (in_quiet(&r->quiet, sod)) {
			long d = day;

			/* Wrapping quiet hours end tomorrow when they began today. */
			if (r->quiet.start > r->quiet.end &&
			    sod >= r->quiet.start * 60)
				d++;
			next = at_minute(z, d, r->quiet.end);
			if (reason == NULL)
				reason = "quiet hours";
			t = next > t ? next : t + 60;
			continue;
		}
		break;
	}
	if (why)
		*why = reason;
	return t;
}

time_t
clock_due(const struct clock_rule *r, const struct clock_zone *z, time_t event)
{
	struct clock_local lt;
	time_t t;

	clock_to_local(z, event, &lt);
	if (r->business_days > 0) {
		long day = local_day(&lt);

		for (int n = r->business_days, guard = 0; n > 0 &&
		    guard < 3660; guard++)
			if (business_day(r, ++day))
				n--;
		clock_civil_from_days(day, &lt.year, &lt.mon, &lt.day);
		t = clock_from_local(z, &lt);
	} else {
		lt.day += (int)(r->delay / 86400);
		t = clock_from_local(z, &lt) + r->delay % 86400;
	}
	/* A gap or overlap never makes a message due before its delay. */
	if (t < event)
		t = event;
	return clock_next_open(r, z, t, NULL);
}
