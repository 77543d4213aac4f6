/* config: scheduler.conf (strict INI) → struct config; every error names file:line. */
#include "config.h"
#include "log.h"
#include "verp.h"
#include "rating.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * The syntax, strictly:
 *   - a line is a [section] header, "key = value", a comment, a blank line
 *     or a continuation;
 *   - comments are whole lines whose first non-blank character is ';' or
 *     '#'. There are no inline comments: in "delay = 3d ; three days" the
 *     value is "3d ; three days" (and is refused as a duration). SQL and
 *     addresses may contain ';' and '#', so the value is everything after '='.
 *   - a line that begins with white space continues the value above it
 *     (only keys that take several lines: query); the pieces are trimmed
 *     and joined with "\n". A blank line ends the value; a comment does not.
 *   - no line length limit; NUL bytes, control characters other than TAB,
 *     and invalid UTF-8 are refused; a UTF-8 BOM at the start is skipped;
 *     CRLF line ends are accepted.
 *   - section and key names are case-sensitive; yes/no and enumerated
 *     values are not.
 */

#define RULE_NAME_MAX	64	/* rule and template names become file and key names */
#define SECRET_MAX	4096	/* a password file's first line */
#define MAX_KEYS	32	/* per section */
#define SUGGEST_MAX	2	/* edit distance for "did you mean" */

enum key_type {
	KEY_STRING,		/* char * (or const char * in struct smtp_config) */
	KEY_PATH,		/* char *, resolved against the config's directory */
	KEY_DURATION,		/* long, seconds */
	KEY_DURATION_MS,	/* int, milliseconds; bounds in seconds */
	KEY_INT,		/* int */
	KEY_BOOL,		/* int, 0 or 1 */
	KEY_ENUM,		/* int, one of key.names */
};

#define KEY_REQUIRED	0x01
#define KEY_MULTILINE	0x02

struct enum_name {
	const char	*name;
	int		 value;
};

struct loader;
struct inst;

struct key {
	const char		*name;
	enum key_type		 type;
	size_t			 off;	/* in struct config or struct rule_config */
	unsigned		 flags;
	const char		*dflt;	/* written as in the file; NULL: none */
	long			 min, max;	/* KEY_INT, KEY_DURATION* (seconds) */
	const struct enum_name	*names;	/* KEY_ENUM, NULL-terminated */
	/* Validates or completes the stored value (errors through the loader). */
	void			(*check)(struct loader *, struct inst *,
				    const struct key *, int line);
};

struct section {
	const char		*name;
	const struct key	*keys;
	size_t			 nkeys;
	int			 is_rule;
	void			(*finish)(struct loader *, struct inst *);
};

/* One [section] as it appears in the file. */
struct inst {
	const struct section	*sec;
	int			 line;	/* of the header; 0: section absent */
	int			 rule;	/* index in cfg->rules, -1 for the others */
	int			 seen[MAX_KEYS];	/* line where each key was set */
	int			 bad[MAX_KEYS];	/* its value was refused */
};

enum pending {
	PEND_NONE,	/* a continuation line here is an error */
	PEND_KEY,	/* collecting the value of pend_key */
	PEND_IGNORE,	/* after a refused line: swallow its continuations */
};

struct loader {
	struct config	*cfg;
	struct buf	*errs;
	int		 nerr;

	struct inst	*insts;
	size_t		 ninsts;
	int		 cur;		/* index in insts; CUR_NONE, CUR_SKIP */

	enum pending	 pend;
	const struct key *pend_key;
	int		 pend_line;
	struct buf	 pend_val;
	const char	*ended_key;	/* value a blank line ended, for a better message */
	int		 ended_line;
};

#define CUR_NONE	(-1)	/* before the first section */
#define CUR_SKIP	(-2)	/* in a refused section: its keys are ignored */

static void check_host(struct loader *, struct inst *, const struct key *, int);
static void check_name(struct loader *, struct inst *, const struct key *, int);
static void check_from(struct loader *, struct inst *, const struct key *, int);
static void check_reply_to(struct loader *, struct inst *, const struct key *, int);
static void check_password(struct loader *, struct inst *, const struct key *, int);
static void check_query(struct loader *, struct inst *, const struct key *, int);
static void check_database(struct loader *, struct inst *, const struct key *, int);
static void check_delay(struct loader *, struct inst *, const struct key *, int);
static void check_window(struct loader *, struct inst *, const struct key *, int);
static void check_quiet(struct loader *, struct inst *, const struct key *, int);
static void check_timezone(struct loader *, struct inst *, const struct key *, int);
static void check_holidays(struct loader *, struct inst *, const struct key *, int);
static void check_listen(struct loader *, struct inst *, const struct key *, int);
static void check_user(struct loader *, struct inst *, const struct key *, int);
static void check_send_at(struct loader *, struct inst *, const struct key *, int);
static void check_years(struct loader *, struct inst *, const struct key *, int);
static void check_currency(struct loader *, struct inst *, const struct key *, int);
static void check_cap(struct loader *, struct inst *, const struct key *, int);
static void check_code(struct loader *, struct inst *, const struct key *, int);
static void check_alphabet(struct loader *, struct inst *, const struct key *, int);
static void check_unsub_url(struct loader *, struct inst *, const struct key *, int);
static void check_unsub_mailto(struct loader *, struct inst *, const struct key *, int);
static void check_return_path(struct loader *, struct inst *, const struct key *, int);
static void check_delimiter(struct loader *, struct inst *, const struct key *, int);
static void check_rating_url(struct loader *, struct inst *, const struct key *, int);
static void check_sample(struct loader *, struct inst *, const struct key *, int);
static void check_question(struct loader *, struct inst *, const struct key *, int);
static void finish_ratings(struct loader *, struct inst *);
static void finish_queue(struct loader *, struct inst *);
static void finish_smtp(struct loader *, struct inst *);
static void finish_rule(struct loader *, struct inst *);

#define MIN	60L
#define HOUR	3600L
#define DAY	86400L

/* To add a rule kind: an enumerator in config.h and a line here. */
static const struct enum_name rule_kinds[] = {
	{ "after_resolution",	RULE_AFTER_RESOLUTION },
	{ "agent_reminder",	RULE_AGENT_REMINDER },
	{ "birthday",		RULE_BIRTHDAY },
	{ "anniversary",	RULE_ANNIVERSARY },
	{ "loyalty",		RULE_LOYALTY },
	{ NULL, 0 },
};

static const struct enum_name rule_classes[] = {
	{ "transactional",	RULE_CLASS_TRANSACTIONAL },
	{ "marketing",		RULE_CLASS_MARKETING },
	{ NULL, 0 },
};

static const struct enum_name feb29_modes[] = {
	{ "feb28",	RULE_FEB29_FEB28 },
	{ "mar1",	RULE_FEB29_MAR1 },
	{ NULL, 0 },
};

static const struct enum_name over_cap_modes[] = {
	{ "postpone",	RULE_OVER_CAP_POSTPONE },
	{ "drop",	RULE_OVER_CAP_DROP },
	{ NULL, 0 },
};

static const struct enum_name unknown_outcomes[] = {
	{ "retry",	CONFIG_UNKNOWN_RETRY },
	{ "hold",	CONFIG_UNKNOWN_HOLD },
	{ NULL, 0 },
};

static const struct enum_name rating_scales[] = {
	{ "csat",	RATING_CSAT },
	{ "good-bad",	RATING_GOOD_BAD },
	{ "nps",	RATING_NPS },
	{ NULL, 0 },
};

static const struct enum_name starttls_modes[] = {
	{ "no",		SMTP_STARTTLS_NO },
	{ "optional",	SMTP_STARTTLS_OPTIONAL },
	{ "required",	SMTP_STARTTLS_REQUIRED },
	{ NULL, 0 },
};

#define CFG(f)	offsetof(struct config, f)
#define RULE(f)	offsetof(struct rule_config, f)

static const struct key source_keys[] = {
	{ "database", KEY_PATH, CFG(database), KEY_REQUIRED, NULL, 0, 0, NULL, check_database },
	{ "busy_timeout", KEY_DURATION_MS, CFG(busy_timeout_ms), 0, "5s",
	    0, HOUR, NULL, NULL },
	/* One rule query's time in SQLite; 0: no limit (source.h). */
	{ "query_timeout", KEY_DURATION_MS, CFG(query_timeout_ms), 0, "30s",
	    0, DAY, NULL, NULL },
};

static const struct key queue_keys[] = {
	{ "dir", KEY_PATH, CFG(queue_dir), 0, "queue", 0, 0, NULL, NULL },
	{ "tick", KEY_DURATION, CFG(tick), 0, "60s", 1, DAY, NULL, NULL },
	{ "min_backoff", KEY_DURATION, CFG(min_backoff), 0, "300s",
	    1, 7 * DAY, NULL, NULL },
	{ "max_backoff", KEY_DURATION, CFG(max_backoff), 0, "4000s",
	    1, 30 * DAY, NULL, NULL },
	{ "queue_lifetime", KEY_DURATION, CFG(queue_lifetime), 0, "5d",
	    0, 365 * DAY, NULL, NULL },
	{ "sent_retention", KEY_DURATION, CFG(sent_retention), 0, "0",
	    0, 365 * DAY, NULL, NULL },
	{ "batch", KEY_INT, CFG(batch), 0, "100", 1, 10000, NULL, NULL },
	{ "recycle", KEY_BOOL, CFG(recycle), 0, "yes", 0, 0, NULL, NULL },
	{ "user", KEY_STRING, CFG(user), 0, NULL, 0, 0, NULL, check_user },
};

static const struct key templates_keys[] = {
	{ "dir", KEY_PATH, CFG(templates_dir), 0, "templates", 0, 0, NULL, NULL },
};

static const struct key smtp_keys[] = {
	{ "host", KEY_STRING, CFG(smtp.host), 0, "127.0.0.1", 0, 0, NULL,
	    check_host },
	{ "port", KEY_INT, CFG(smtp.port), 0, "25", 1, 65535, NULL, NULL },
	{ "starttls", KEY_ENUM, CFG(smtp.starttls), 0, "no", 0, 0,
	    starttls_modes, NULL },
	{ "ca_file", KEY_PATH, CFG(smtp.ca_file), 0, NULL, 0, 0, NULL, NULL },
	{ "username", KEY_STRING, CFG(smtp.username), 0, NULL, 0, 0, NULL, NULL },
	{ "password_file", KEY_PATH, CFG(password_file), 0, NULL, 0, 0, NULL,
	    check_password },
	{ "from", KEY_STRING, CFG(from), KEY_REQUIRED, NULL, 0, 0, NULL,
	    check_from },
	{ "reply_to", KEY_STRING, CFG(reply_to), 0, NULL, 0, 0, NULL,
	    check_reply_to },
	{ "helo", KEY_STRING, CFG(smtp.helo), 0, NULL, 0, 0, NULL, check_host },
	{ "timeout", KEY_DURATION_MS, CFG(smtp.timeout_ms), 0, "30s",
	    1, HOUR, NULL, NULL },
	{ "connections", KEY_INT, CFG(connections), 0, "4", 1, 64, NULL, NULL },
	{ "rate", KEY_INT, CFG(rate), 0, "0", 0, 1000000, NULL, NULL },
	{ "unknown_outcome", KEY_ENUM, CFG(unknown_outcome), 0, "retry", 0, 0,
	    unknown_outcomes, NULL },
};

static const struct key metrics_keys[] = {
	{ "enabled", KEY_BOOL, CFG(metrics_enabled), 0, "no", 0, 0, NULL, NULL },
	{ "listen", KEY_STRING, CFG(metrics_listen), 0, "127.0.0.1", 0, 0, NULL,
	    check_listen },
	{ "port", KEY_INT, CFG(metrics_port), 0, "9898", 1, 65535, NULL, NULL },
};

/* lookback and template have computed defaults (finish_rule). */
static const struct key rule_keys[] = {
	{ "kind", KEY_ENUM, RULE(kind), KEY_REQUIRED, NULL, 0, 0, rule_kinds,
	    NULL },
	/* required by after_resolution and agent_reminder (finish_rule) */
	{ "delay", KEY_STRING, RULE(delay_text), 0, NULL,
	    0, 3660 * DAY, NULL, check_delay },
	{ "lookback", KEY_DURATION, RULE(lookback), 0, NULL,
	    1, 3660 * DAY, NULL, NULL },
	{ "template", KEY_STRING, RULE(template_name), 0, NULL, 0, 0, NULL,
	    check_name },
	{ "history", KEY_BOOL, RULE(history), 0, "yes", 0, 0, NULL, NULL },
	{ "enabled", KEY_BOOL, RULE(enabled), 0, "yes", 0, 0, NULL, NULL },
	{ "query", KEY_STRING, RULE(query), KEY_MULTILINE, NULL, 0, 0, NULL,
	    check_query },
	{ "send_window", KEY_STRING, RULE(send_window), 0, NULL, 0, 0, NULL,
	    check_window },
	{ "quiet_hours", KEY_STRING, RULE(quiet_hours), 0, NULL, 0, 0, NULL,
	    check_quiet },
	{ "holidays", KEY_PATH, RULE(holidays), 0, NULL, 0, 0, NULL,
	    check_holidays },
	{ "duration", KEY_DURATION, RULE(duration), 0, "15m", 60, DAY, NULL,
	    NULL },
	{ "alarm", KEY_DURATION, RULE(alarm), 0, "10m", 0, 7 * DAY, NULL, NULL },
	/* consent; class has a default by kind (finish_rule) */
	{ "class", KEY_ENUM, RULE(cls), 0, NULL, 0, 0, rule_classes, NULL },
	{ "max_marketing", KEY_STRING, RULE(max_marketing), 0, NULL, 0, 0, NULL,
	    check_cap },
	{ "over_cap", KEY_ENUM, RULE(over_cap), 0, "postpone", 0, 0,
	    over_cap_modes, NULL },
	/* birthday, anniversary, loyalty */
	{ "send_at", KEY_STRING, RULE(send_at), 0, "09:00", 0, 0, NULL,
	    check_send_at },
	{ "feb29", KEY_ENUM, RULE(feb29), 0, "feb28", 0, 0, feb29_modes, NULL },
	{ "years", KEY_STRING, RULE(years), 0, NULL, 0, 0, NULL, check_years },
	{ "min_purchases", KEY_INT, RULE(min_purchases), 0, "0", 0, 1000000,
	    NULL, NULL },
	{ "min_total", KEY_INT, RULE(min_total), 0, "0", 0, 2000000000L, NULL,
	    NULL },
	{ "currency", KEY_STRING, RULE(currency), 0, NULL, 0, 0, NULL,
	    check_currency },
	{ "code", KEY_STRING, RULE(code), 0, NULL, 0, 0, NULL, check_code },
	{ "code_length", KEY_INT, RULE(code_length), 0, "8", 4, 64, NULL, NULL },
	{ "code_alphabet", KEY_STRING, RULE(code_alphabet), 0,
	    "ABCDEFGHJKLMNPQRSTUVWXYZ23456789", 0, 0, NULL, check_alphabet },
	/* after_resolution only (finish_rule_consent) */
	{ "ratings", KEY_BOOL, RULE(ratings), 0, "no", 0, 0, NULL, NULL },
};

/* [defaults]: what holds for every rule unless the rule says otherwise. */
static const struct key defaults_keys[] = {
	{ "timezone", KEY_STRING, CFG(timezone), 0, NULL, 0, 0, NULL,
	    check_timezone },
	{ "quiet_hours", KEY_STRING, CFG(quiet_hours), 0, NULL, 0, 0, NULL,
	    check_quiet },
	{ "max_marketing", KEY_STRING, CFG(max_marketing), 0, NULL, 0, 0, NULL,
	    check_cap },
};

/* [unsubscribe]: the one-click endpoint (unsubscribe.c) and its tokens. */
static const struct key unsubscribe_keys[] = {
	{ "listen", KEY_STRING, CFG(unsubscribe_listen), 0, "127.0.0.1", 0, 0,
	    NULL, check_listen },
	{ "port", KEY_INT, CFG(unsubscribe_port), 0, "8025", 1, 65535, NULL,
	    NULL },
	{ "url", KEY_STRING, CFG(unsubscribe_url), 0, NULL, 0, 0, NULL,
	    check_unsub_url },
	{ "mailto", KEY_STRING, CFG(unsubscribe_mailto), 0, NULL, 0, 0, NULL,
	    check_unsub_mailto },
	{ "secret_file", KEY_PATH, CFG(unsubscribe_secret_file), 0, NULL, 0, 0,
	    NULL, NULL },
};

/* [ratings]: rating links in check-ins; low has a default by scale (finish_ratings). */
static const struct key ratings_keys[] = {
	{ "scale", KEY_ENUM, CFG(ratings_scale), 0, "csat", 0, 0, rating_scales,
	    NULL },
	{ "url", KEY_STRING, CFG(ratings_url), 0, NULL, 0, 0, NULL,
	    check_rating_url },
	{ "window", KEY_DURATION, CFG(ratings_window), 0, "14d", HOUR,
	    366 * DAY, NULL, NULL },
	{ "low", KEY_STRING, CFG(ratings_low_text), 0, NULL, 0, 0, NULL, NULL },
	{ "notify", KEY_STRING, CFG(ratings_notify), 0, NULL, 0, 0, NULL,
	    check_unsub_mailto },
	{ "cooldown", KEY_DURATION, CFG(ratings_cooldown), 0, "30d", 0,
	    3660 * DAY, NULL, NULL },
	{ "sample", KEY_STRING, CFG(ratings_sample_text), 0, "100%", 0, 0, NULL,
	    check_sample },
	{ "question", KEY_STRING, CFG(ratings_question), 0, NULL, 0, 0, NULL,
	    check_question },
};

/* [bounces]: returned mail and complaints (bounce.c, verp.c). */
static const struct enum_name complaint_modes[] = {
	{ "marketing", CONFIG_COMPLAINT_MARKETING },
	{ "all", CONFIG_COMPLAINT_ALL },
	{ NULL, 0 },
};
static const struct key bounces_keys[] = {
	{ "return_path", KEY_STRING, CFG(bounces_return_path), 0, NULL, 0, 0,
	    NULL, check_return_path },
	{ "delimiter", KEY_STRING, CFG(bounces_delimiter), 0, "+", 0, 0, NULL,
	    check_delimiter },
	{ "maildir", KEY_PATH, CFG(bounces_maildir), 0, NULL, 0, 0, NULL, NULL },
	{ "soft_limit", KEY_INT, CFG(bounces_soft_limit), 0, "5", 1, 1000, NULL,
	    NULL },
	{ "soft_window", KEY_DURATION, CFG(bounces_soft_window), 0, "30d",
	    3600, 3650 * DAY, NULL, NULL },
	{ "complaint", KEY_ENUM, CFG(bounces_complaint), 0, "marketing", 0, 0,
	    complaint_modes, NULL },
};

static const struct key calendar_keys[] = {
	{ "feed", KEY_PATH, CFG(calendar_feed), 0, NULL, 0, 0, NULL, NULL },
	{ "link", KEY_STRING, CFG(calendar_link), 0, NULL, 0, 0, NULL, NULL },
};

#define NKEYS(a)	(sizeof(a) / sizeof((a)[0]))

_Static_assert(NKEYS(source_keys) <= MAX_KEYS, "MAX_KEYS");
_Static_assert(NKEYS(queue_keys) <= MAX_KEYS, "MAX_KEYS");
_Static_assert(NKEYS(templates_keys) <= MAX_KEYS, "MAX_KEYS");
_Static_assert(NKEYS(smtp_keys) <= MAX_KEYS, "MAX_KEYS");
_Static_assert(NKEYS(rule_keys) <= MAX_KEYS, "MAX_KEYS");
_Static_assert(NKEYS(defaults_keys) <= MAX_KEYS, "MAX_KEYS");
_Static_assert(NKEYS(calendar_keys) <= MAX_KEYS, "MAX_KEYS");
_Static_assert(NKEYS(metrics_keys) <= MAX_KEYS, "MAX_KEYS");
_Static_assert(NKEYS(unsubscribe_keys) <= MAX_KEYS, "MAX_KEYS");
_Static_assert(NKEYS(ratings_keys) <= MAX_KEYS, "MAX_KEYS");
_Static_assert(NKEYS(bounces_keys) <= MAX_KEYS, "MAX_KEYS");
/* Enumerated fields are stored through an int. */
_Static_assert(sizeof(enum rule_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(enum smtp_starttls) == sizeof(int), "enum size");

static const struct section sections[] = {
	{ "source", source_keys, NKEYS(source_keys), 0, NULL },
	{ "queue", queue_keys, NKEYS(queue_keys), 0, finish_queue },
	{ "templates", templates_keys, NKEYS(templates_keys), 0, NULL },
	{ "smtp", smtp_keys, NKEYS(smtp_keys), 0, finish_smtp },
	{ "metrics", metrics_keys, NKEYS(metrics_keys), 0, NULL },
	{ "defaults", defaults_keys, NKEYS(defaults_keys), 0, NULL },
	{ "calendar", calendar_keys, NKEYS(calendar_keys), 0, NULL },
	{ "unsubscribe", unsubscribe_keys, NKEYS(unsubscribe_keys), 0, NULL },
	{ "ratings", ratings_keys, NKEYS(ratings_keys), 0, finish_ratings },
	{ "bounces", bounces_keys, NKEYS(bounces_keys), 0, NULL },
	{ "rule", rule_keys, NKEYS(rule_keys), 1, finish_rule },
};

/* ---- small helpers ---- */

static void errat(struct loader *, int, const char *, ...)
    __attribute__((format(printf, 3, 4)));

/* "FILE:LINE: message"; line 0 is the whole file: "FILE: message". */
static void
errat(struct loader *l, int line, const char *fmt, ...)
{
	va_list ap;

	l->nerr++;
	if (l->errs == NULL)
		return;
	if (line > 0)
		buf_printf(l->errs, "%s:%d: ", l->cfg->path, line);
	else
		buf_printf(l->errs, "%s: ", l->cfg->path);
	va_start(ap, fmt);
	buf_vprintf(l->errs, fmt, ap);
	va_end(ap);
	buf_putc(l->errs, '\n');
}

/*
 * String fields are char * in struct config and const char * in struct
 * smtp_config; the pointer is copied, never cast, between the two.
 */
static char *
get_str(const void *field)
{
	char *s;

	memcpy(&s, field, sizeof(s));
	return s;
}

static void
set_str(void *field, char *s)
{
	memcpy(field, &s, sizeof(s));
}

static void
set_int(void *field, int v)
{
	memcpy(field, &v, sizeof(v));
}

static void *
inst_base(struct loader *l, const struct inst *in)
{
	if (in->rule >= 0)
		return &l->cfg->rules[in->rule];
	return l->cfg;
}

static void *
field(struct loader *l, const struct inst *in, const struct key *k)
{
	return (char *)inst_base(l, in) + k->off;
}

static int
is_blank(int c)
{
	return c == ' ' || c == '\t';
}

/* Trims in place; returns the start. */
static char *
trim(char *s)
{
	size_t n;

	while (is_blank(*s))
		s++;
	n = strlen(s);
	while (n > 0 && is_blank(s[n - 1]))
		s[--n] = '\0';
	return s;
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int
eq_nocase(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (lower((unsigned char)*a) != lower((unsigned char)*b))
			return 0;
	return *a == *b;
}

/*
 * Optimal string alignment distance (Levenshtein plus transpositions,
 * "dealy" → "delay" is 1), case-insensitive. Long words are not compared.
 */
static int
distance(const char *a, const char *b)
{
	int d[RULE_NAME_MAX + 1][RULE_NAME_MAX + 1];
	int la = (int)strlen(a), lb = (int)strlen(b);

	if (la > RULE_NAME_MAX || lb > RULE_NAME_MAX)
		return INT_MAX;
	for (int i = 0; i <= la; i++)
		d[i][0] = i;
	for (int j = 0; j <= lb; j++)
		d[0][j] = j;
	for (int i = 1; i <= la; i++)
		for (int j = 1; j <= lb; j++) {
			int cost = lower((unsigned char)a[i - 1]) !=
			    lower((unsigned char)b[j - 1]);
			int v = d[i - 1][j] + 1;

			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && lower((unsigned char)a[i - 1]) ==
			    lower((unsigned char)b[j - 2]) &&
			    lower((unsigned char)a[i - 2]) ==
			    lower((unsigned char)b[j - 1]) &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	return d[la][lb];
}

/* A candidate is close when within SUGGEST_MAX edits and not a total rewrite. */
static int
close_to(const char *word, const char *cand)
{
	int dist = distance(word, cand);

	return dist <= SUGGEST_MAX && dist < (int)strlen(word) &&
	    dist < (int)strlen(cand);
}

static const char *
suggest_key(const struct section *sec, const char *word)
{
	const char *best = NULL;
	int bestd = INT_MAX;

	for (size_t i = 0; i < sec->nkeys; i++) {
		int dist = distance(word, sec->keys[i].name);

		if (close_to(word, sec->keys[i].name) && dist < bestd) {
			best = sec->keys[i].name;
			bestd = dist;
		}
	}
	return best;
}

/* "[smtp]" or "[rule checkin]" */
static const char *
label(struct loader *l, const struct inst *in, char *buf, size_t size)
{
	if (in->rule >= 0)
		snprintf(buf, size, "[rule %s]", l->cfg->rules[in->rule].name);
	else
		snprintf(buf, size, "[%s]", in->sec->name);
	return buf;
}

/* A value that looks like it carries an inline comment gets a hint. */
static const char *
comment_hint(const char *v)
{
	for (const char *p = v; *p; p++)
		if (is_blank(*p) && (p[1] == ';' || p[1] == '#'))
			return " (comments go on a line of their own)";
	return "";
}

static void
fmt_duration(long s, char *buf, size_t size)
{
	if (s == 0)
		snprintf(buf, size, "0");
	else if (s % DAY == 0)
		snprintf(buf, size, "%ldd", s / DAY);
	else if (s % HOUR == 0)
		snprintf(buf, size, "%ldh", s / HOUR);
	else if (s % MIN == 0)
		snprintf(buf, size, "%ldm", s / MIN);
	else
		snprintf(buf, size, "%lds", s);
}

static int
valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > RULE_NAME_MAX)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return 0;
	return 1;
}

/* ---- durations ---- */

int
config_parse_duration(const char *s, long *out, char **err)
{
	static const struct {
		char	 unit;
		long	 secs;
	} units[] = {	/* largest first: the order they must appear in */
		{ 'w', 7 * DAY }, { 'd', DAY }, { 'h', HOUR }, { 'm', MIN },
		{ 's', 1 },
	};
	const char *p = s;
	size_t last = 0;	/* index after the last unit used */
	long total = 0;
	int parts = 0;

	if (s == NULL || *s == '\0') {
		set_err(err, "empty duration");
		return FU_PERMFAIL;
	}
	if (*s == '-') {
		set_err(err, "'%.80s': negative durations are not allowed", s);
		return FU_PERMFAIL;
	}
	while (*p) {
		const char *u;
		size_t ulen, i;
		long n = 0;

		if (*p < '0' || *p > '9') {
			if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
				set_err(err, "'%.80s': missing number before '%c'",
				    s, *p);
			else
				set_err(err, "'%.80s': unexpected '%c' (write "
				    "e.g. 90, 30s, 15m, 2h, 3d, 1w or 1d12h)", s, *p);
			return FU_PERMFAIL;
		}
		for (; *p >= '0' && *p <= '9'; p++) {
			if (n > (LONG_MAX - (*p - '0')) / 10) {
				set_err(err, "'%.80s': too large", s);
				return FU_PERMFAIL;
			}
			n = n * 10 + (*p - '0');
		}
		for (u = p; (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'); p++)
			;
		ulen = (size_t)(p - u);
		if (ulen == 0) {
			if (parts == 0 && *p == '\0') {	/* "90": seconds */
				*out = n;
				return FU_OK;
			}
			if (*p == '\0')
				set_err(err, "'%.80s': missing unit after %ld (use "
				    "s, m, h, d, w)", s, n);
			else
				set_err(err, "'%.80s': unexpected '%c' (write "
				    "e.g. 90, 30s, 15m, 2h, 3d, 1w or 1d12h)", s, *p);
			return FU_PERMFAIL;
		}
		for (i = 0; i < NKEYS(units); i++)
			if (ulen == 1 && *u == units[i].unit)
				break;
		if (i == NKEYS(units)) {
			set_err(err, "'%.80s': unknown unit '%.*s' (use s, m, h, "
			    "d, w)", s, (int)(ulen > 16 ? 16 : ulen), u);
			return FU_PERMFAIL;
		}
		if (i < last) {
			set_err(err, "'%.80s': units go from largest to smallest, "
			    "each once (w, d, h, m, s)", s);
			return FU_PERMFAIL;
		}
		last = i + 1;
		if (n > LONG_MAX / units[i].secs ||
		    total > LONG_MAX - n * units[i].secs) {
			set_err(err, "'%.80s': too large", s);
			return FU_PERMFAIL;
		}
		total += n * units[i].secs;
		parts++;
	}
	*out = total;
	return FU_OK;
}

/* ---- values ---- */

static int
parse_int(const char *s, long *out)
{
	long n = 0;

	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || n > (LONG_MAX - (*s - '0')) / 10)
			return -1;
		n = n * 10 + (*s - '0');
	}
	*out = n;
	return 0;
}

static void
list_names(const struct enum_name *names, struct buf *b)
{
	for (size_t i = 0; names[i].name; i++)
		buf_printf(b, "%s%s", i ? ", " : "", names[i].name);
}

/*
 * Converts and stores one value. Returns 0 or -1 after reporting the error
 * (line 0: a built-in default, which cannot fail).
 */
static int
store(struct loader *l, struct inst *in, const struct key *k, const char *v,
    int line)
{
	void *f = field(l, in, k);
	char lo[32], hi[32];
	char *err = NULL;
	long n;

	switch (k->type) {
	case KEY_STRING:
		free(get_str(f));
		set_str(f, xstrdup(v));
		return 0;
	case KEY_PATH:
		free(get_str(f));
		set_str(f, v[0] == '/' ? xstrdup(v) :
		    xasprintf("%s/%s", l->cfg->dir, v));
		return 0;
	case KEY_DURATION:
	case KEY_DURATION_MS:
		if (config_parse_duration(v, &n, &err) != FU_OK) {
			errat(l, line, "%s: %s%s", k->name, err, comment_hint(v));
			free(err);
			return -1;
		}
		if (n < k->min || n > k->max) {
			fmt_duration(k->min, lo, sizeof(lo));
			fmt_duration(k->max, hi, sizeof(hi));
			errat(l, line, "%s: '%s' is out of range (%s to %s)",
			    k->name, v, lo, hi);
			return -1;
		}
		if (k->type == KEY_DURATION)
			memcpy(f, &n, sizeof(n));
		else
			set_int(f, (int)(n * 1000));	/* max is an hour */
		return 0;
	case KEY_INT:
		if (parse_int(v, &n) == -1) {
			errat(l, line, "%s: '%.80s' is not a whole number%s",
			    k->name, v, comment_hint(v));
			return -1;
		}
		if (n < k->min || n > k->max) {
			errat(l, line, "%s: %ld is out of range (%ld to %ld)",
			    k->name, n, k->min, k->max);
			return -1;
		}
		set_int(f, (int)n);
		return 0;
	case KEY_BOOL:
		if (eq_nocase(v, "yes") || eq_nocase(v, "true") ||
		    strcmp(v, "1") == 0)
			set_int(f, 1);
		else if (eq_nocase(v, "no") || eq_nocase(v, "false") ||
		    strcmp(v, "0") == 0)
			set_int(f, 0);
		else {
			errat(l, line, "%s: '%.80s' is not yes or no (use yes, "
			    "no, true, false, 1 or 0)%s", k->name, v,
			    comment_hint(v));
			return -1;
		}
		return 0;
	case KEY_ENUM:
		for (size_t i = 0; k->names[i].name; i++)
			if (eq_nocase(v, k->names[i].name)) {
				set_int(f, k->names[i].value);
				return 0;
			}
		{
			struct buf b = { 0 };

			list_names(k->names, &b);
			errat(l, line, "%s: unknown %s '%.80s' (allowed: %s)%s",
			    k->name, k->names == rule_kinds ? "rule kind" :
			    "value", v, buf_cstr(&b), comment_hint(v));
			buf_free(&b);
		}
		return -1;
	}
	fatalx("config: key %s: bad type %d", k->name, (int)k->type);
}

/* The value of the pending key is complete: check and store it. */
static void
flush(struct loader *l)
{
	const struct key *k = l->pend_key;
	struct inst *in;
	const char *v;
	size_t ki;

	if (l->pend != PEND_KEY) {
		l->pend = PEND_NONE;
		return;
	}
	l->pend = PEND_NONE;
	in = &l->insts[l->cur];
	ki = (size_t)(k - in->sec->keys);
	v = buf_cstr(&l->pend_val);
	if (*v == '\0') {
		/* Optional strings without a default: empty means "not set". */
		if (!(k->flags & KEY_REQUIRED) && k->dflt == NULL &&
		    (k->type == KEY_STRING || k->type == KEY_PATH))
			return;
		in->bad[ki] = 1;
		if (k->dflt != NULL)
			errat(l, l->pend_line, "empty value for '%s' (remove the "
			    "line to use the default, %s)", k->name, k->dflt);
		else
			errat(l, l->pend_line, "empty value for '%s'", k->name);
		return;
	}
	if (store(l, in, k, v, l->pend_line) == -1) {
		in->bad[ki] = 1;
		return;
	}
	if (k->check)
		k->check(l, in, k, l->pend_line);
}

/* ---- lines ---- */

static void
section_line(struct loader *l, char *t, int line)
{
	char *close = strchr(t, ']'), *inner, *word, *rest;
	const struct section *sec = NULL;
	struct inst *in;
	char *after;

	l->cur = CUR_SKIP;
	if (close == NULL) {
		errat(l, line, "section header without ']'");
		return;
	}
	after = close + 1;
	while (is_blank(*after))
		after++;
	if (*after != '\0') {
		errat(l, line, "text after ']'%s", *after == ';' || *after == '#' ?
		    " (comments go on a line of their own)" : "");
		return;
	}
	*close = '\0';
	inner = trim(t + 1);
	word = inner;
	for (rest = inner; *rest && !is_blank(*rest); rest++)
		;
	if (*rest) {
		*rest++ = '\0';
		rest = trim(rest);
	}
	for (size_t i = 0; i < NKEYS(sections); i++)
		if (strcmp(word, sections[i].name) == 0)
			sec = &sections[i];

	if (sec == NULL || (!sec->is_rule && *rest != '\0')) {
		const char *best = NULL;
		int bestd = INT_MAX;

		for (size_t i = 0; i < NKEYS(sections); i++) {
			int dist = distance(word, sections[i].name);

			if ((dist == 0 || close_to(word, sections[i].name)) &&
			    dist < bestd && (sections[i].is_rule == (*rest != '\0'))) {
				best = sections[i].name;
				bestd = dist;
			}
		}
		if (best && *rest)
			errat(l, line, "unknown section [%s%s%s] (did you mean "
			    "[%s %s]?)", word, " ", rest, best, rest);
		else if (best)
			errat(l, line, "unknown section [%s] (did you mean [%s]?)",
			    word, best);
		else
			errat(l, line, "unknown section [%s%s%s] (known: source, "
			    "queue, templates, smtp, metrics, defaults, calendar, "
			    "rule NAME)", word,
			    *rest ? " " : "", rest);
		return;
	}
	if (sec->is_rule) {
		struct rule_config *r;

		if (*rest == '\0') {
			errat(l, line, "[rule] needs a name: [rule NAME]");
			return;
		}
		if (!valid_name(rest)) {
			errat(l, line, "rule name '%.80s': use 1 to %d letters, "
			    "digits, '_' or '-'", rest, RULE_NAME_MAX);
			return;
		}
		for (int i = 0; i < l->cfg->nrules; i++)
			if (strcmp(l->cfg->rules[i].name, rest) == 0) {
				errat(l, line, "duplicate rule '%s' (first "
				    "defined at line %d)", rest,
				    l->cfg->rules[i].line);
				return;
			}
		l->cfg->rules = xrealloc(l->cfg->rules,
		    ((size_t)l->cfg->nrules + 1) * sizeof(*l->cfg->rules));
		r = &l->cfg->rules[l->cfg->nrules];
		memset(r, 0, sizeof(*r));
		r->name = xstrdup(rest);
		r->line = line;
	} else {
		for (size_t i = 0; i < l->ninsts; i++)
			if (l->insts[i].sec == sec) {
				errat(l, line, "duplicate section [%s] (first at "
				    "line %d)", sec->name, l->insts[i].line);
				return;
			}
	}
	l->insts = xrealloc(l->insts, (l->ninsts + 1) * sizeof(*l->insts));
	in = &l->insts[l->ninsts];
	memset(in, 0, sizeof(*in));
	in->sec = sec;
	in->line = line;
	in->rule = sec->is_rule ? l->cfg->nrules++ : -1;
	l->cur = (int)l->ninsts++;
}

static void
key_line(struct loader *l, char *t, int line)
{
	char *eq = strchr(t, '='), *key, *val;
	const struct key *k = NULL;
	struct inst *in;
	char lb[RULE_NAME_MAX + 16];
	size_t i;

	l->pend = PEND_IGNORE;
	if (eq == NULL) {
		errat(l, line, "expected 'key = value', a [section] header or a "
		    "comment, not '%.80s'", t);
		return;
	}
	*eq = '\0';
	key = trim(t);
	val = trim(eq + 1);
	if (*key == '\0') {
		errat(l, line, "missing key before '='");
		return;
	}
	if (l->cur == CUR_NONE) {
		errat(l, line, "key '%.80s' outside any section (put it under a "
		    "[section] header)", key);
		return;
	}
	if (l->cur == CUR_SKIP)
		return;
	in = &l->insts[l->cur];
	for (i = 0; i < in->sec->nkeys; i++)
		if (strcmp(key, in->sec->keys[i].name) == 0) {
			k = &in->sec->keys[i];
			break;
		}
	if (k == NULL) {
		const char *best = suggest_key(in->sec, key);

		if (best)
			errat(l, line, "unknown key '%.80s' in %s (did you mean "
			    "'%s'?)", key, label(l, in, lb, sizeof(lb)), best);
		else
			errat(l, line, "unknown key '%.80s' in %s", key,
			    label(l, in, lb, sizeof(lb)));
		return;
	}
	if (in->seen[i]) {
		errat(l, line, "duplicate key '%s' in %s (first set at line %d)",
		    key, label(l, in, lb, sizeof(lb)), in->seen[i]);
		return;
	}
	in->seen[i] = line;
	l->pend = PEND_KEY;
	l->pend_key = k;
	l->pend_line = line;
	buf_reset(&l->pend_val);
	buf_puts(&l->pend_val, val);
}

static void
continuation_line(struct loader *l, char *t, int line)
{
	switch (l->pend) {
	case PEND_KEY:
		if (!(l->pend_key->flags & KEY_MULTILINE)) {
			errat(l, line, "this line begins with white space, so it "
			    "continues '%s' (line %d), which takes one line: "
			    "remove the leading white space", l->pend_key->name,
			    l->pend_line);
			flush(l);
			l->pend = PEND_IGNORE;
			return;
		}
		if (l->pend_val.len > 0)
			buf_putc(&l->pend_val, '\n');
		buf_puts(&l->pend_val, t);
		return;
	case PEND_IGNORE:
		return;
	case PEND_NONE:
		break;
	}
	if (l->ended_key != NULL)
		errat(l, line, "continuation line with nothing to continue: the "
		    "blank line above ended '%s' (line %d); remove it or "
		    "the leading white space", l->ended_key, l->ended_line);
	else
		errat(l, line, "continuation line with nothing to continue "
		    "(remove the leading white space)");
	l->pend = PEND_IGNORE;
}

static void
parse_line(struct loader *l, char *s, int line)
{
	char *t = trim(s);
	int indented = is_blank(*s);

	if (*t == ';' || *t == '#')	/* comments do not end a value */
		return;
	if (*t == '\0') {		/* a blank line does */
		if (l->pend == PEND_KEY) {
			l->ended_key = l->pend_key->name;
			l->ended_line = l->pend_line;
		}
		flush(l);
		return;
	}
	if (indented) {
		continuation_line(l, t, line);
		return;
	}
	l->ended_key = NULL;
	flush(l);
	if (*t == '[')
		section_line(l, t, line);
	else
		key_line(l, t, line);
}

/* Splits the file into lines; refuses NUL, control characters and bad UTF-8. */
static void
parse(struct loader *l, const char *data, size_t len)
{
	const char *p = data, *end = data + len;
	int line = 0;

	if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		const char *bad = NULL;
		char *s;

		line++;
		if (n > 0 && p[n - 1] == '\r')
			n--;
		for (size_t i = 0; i < n && bad == NULL; i++) {
			unsigned char c = (unsigned char)p[i];

			if (c == '\0')
				bad = "NUL byte";
			else if ((c < 0x20 && c != '\t') || c == 0x7f)
				bad = "control character";
		}
		if (bad == NULL && !utf8_valid(p, n))
			bad = "invalid UTF-8";
		if (bad != NULL)
			errat(l, line, "%s in line (the file must be UTF-8 "
			    "text)", bad);
		else {
			s = xstrndup(p, n);
			parse_line(l, s, line);
			free(s);
		}
		p = nl ? nl + 1 : end;
	}
	flush(l);
}

/* ---- checks of single values ---- */

static void
check_host(struct loader *l, struct inst *in, const struct key *k, int line)
{
	const char *v = get_str(field(l, in, k));

	for (const char *p = v; *p; p++)
		if (is_blank(*p)) {
			errat(l, line, "%s: '%.80s' contains white space%s",
			    k->name, v, comment_hint(v));
			return;
		}
}

static void
check_name(struct loader *l, struct inst *in, const struct key *k, int line)
{
	const char *v = get_str(field(l, in, k));

	if (!valid_name(v))
		errat(l, line, "%s: '%.80s': use 1 to %d letters, digits, '_' "
		    "or '-'", k->name, v, RULE_NAME_MAX);
}

static void
check_database(struct loader *l, struct inst *in, const struct key *k,
    int line)
{
	(void)in;
	(void)k;
	l->cfg->database_line = line;	/* `check` names it for source errors */
}

/* The user to run as must exist now, not only when the daemon starts. */
static void
check_user(struct loader *l, struct inst *in, const struct key *k, int line)
{
	const char *v = get_str(field(l, in, k));

	errno = 0;
	if (getpwnam(v) == NULL)
		errat(l, line, "%s: no such user '%.64s'%s%s", k->name, v,
		    errno ? ": " : "", errno ? strerror(errno) : "");
}

/* The metrics endpoint binds an address, never a name (no DNS at start-up). */
static void
check_listen(struct loader *l, struct inst *in, const struct key *k, int line)
{
	const char *v = get_str(field(l, in, k));
	unsigned char addr[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET, v, addr) != 1 && inet_pton(AF_INET6, v, addr) != 1)
		errat(l, line, "%s: '%.80s' is not an IPv4 or IPv6 address (e.g. "
		    "127.0.0.1 or ::1)", k->name, v);
}

/* The key's value was refused: cross-checks leave it alone. */
static void
mark_bad(struct inst *in, const struct key *k)
{
	in->bad[k - in->sec->keys] = 1;
}

/* "3d", "1d12h", or "N business day(s)" (N of 1..365). */
static void
check_delay(struct loader *l, struct inst *in, const struct key *k, int line)
{
	struct rule_config *r = &l->cfg->rules[in->rule];
	const char *v = r->delay_text;
	char *err = NULL, word[16];
	long n;
	int used = 0;

	r->business_days = 0;
	if (sscanf(v, "%ld business day%n", &n, &used) == 1 && used > 0 &&
	    (v[used] == '\0' || (v[used] == 's' && v[used + 1] == '\0'))) {
		if (n < 1 || n > 365) {
			errat(l, line, "%s: '%.80s': 1 to 365 business days",
			    k->name, v);
			mark_bad(in, k);
			return;
		}
		r->business_days = (int)n;
		/* For the default lookback: a business week is 7 days. */
		r->delay = (n + n / 5 * 2 + 2) * DAY;
		return;
	}
	/* Business days meant, not written in the form: "3 working days",
	 * "2 Business Days", "3 business", "2 business days ; note". */
	if (sscanf(v, "%ld %15s", &n, word) == 2 && (eq_nocase(word,
	    "business") || eq_nocase(word, "working"))) {
		errat(l, line, "%s: '%.80s': write 'N business days'%s", k->name,
		    v, comment_hint(v));
		mark_bad(in, k);
		return;
	}
	if (config_parse_duration(v, &n, &err) != FU_OK) {
		errat(l, line, "%s: %s (or 'N business days')%s", k->name, err,
		    comment_hint(v));
		free(err);
		mark_bad(in, k);
		return;
	}
	if (n < k->min || n > k->max) {
		errat(l, line, "%s: '%s' is out of range (0 to 3660d)", k->name, v);
		mark_bad(in, k);
		return;
	}
	r->delay = n;
}

/* "HH:MM" (00:00 to 24:00) at *s; advances it. Minutes or -1. */
static int
parse_hhmm(const char **s)
{
	const char *p = *s;
	int h, m;

	if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9' ||
	    p[2] != ':' || p[3] < '0' || p[3] > '5' || p[4] < '0' || p[4] > '9')
		return -1;
	h = (p[0] - '0') * 10 + (p[1] - '0');
	m = (p[3] - '0') * 10 + (p[4] - '0');
	if (h > 24 || (h == 24 && m != 0))
		return -1;
	*s = p + 5;
	return h * 60 + m;
}

/* "HH:MM-HH:MM" (the whole rest of s). */
static int
parse_span(const char *s, int *start, int *end)
{
	if ((*start = parse_hhmm(&s)) == -1 || *s++ != '-' ||
	    (*end = parse_hhmm(&s)) == -1 || *s != '\0')
		return -1;
	return 0;
}

static int
day_index(const char *s, size_t n)
{
	static const char *const names[] = { "sun", "mon", "tue", "wed",
	    "thu", "fri", "sat" };

	for (int i = 0; i < 7; i++)
		if (n == 3 && lower((unsigned char)s[0]) == names[i][0] &&
		    lower((unsigned char)s[1]) == names[i][1] &&
		    lower((unsigned char)s[2]) == names[i][2])
			return i;
	return -1;
}

/* "Mon-Fri 09:00-17:00", "Mon,Wed,Fri 08:30-12:00", "Sun-Thu ...", "daily ...". */
static void
check_window(struct loader *l, struct inst *in, const struct key *k, int line)
{
	struct rule_config *r = &l->cfg->rules[in->rule];
	const char *v = r->send_window, *sp = strchr(v, ' '), *p;
	unsigned days = 0;

	if (sp == NULL)
		goto bad;
	if ((size_t)(sp - v) == 5 && strncmp(v, "daily", 5) == 0)
		days = 0x7f;
	else
		for (p = v; p < sp; ) {
			const char *e = p;
			int a, b;

			while (e < sp && *e != ',' && *e != '-')
				e++;
			if ((a = day_index(p, (size_t)(e - p))) == -1)
				goto bad;
			b = a;
			if (*e == '-') {
				p = e + 1;
				for (e = p; e < sp && *e != ','; e++)
					;
				if ((b = day_index(p, (size_t)(e - p))) == -1)
					goto bad;
			}
			for (int d = a; ; d = (d + 1) % 7) {	/* Fri-Mon wraps */
				days |= 1u << d;
				if (d == b)
					break;
			}
			p = *e == ',' ? e + 1 : e;
			if (*e == ',' && p == sp)
				goto bad;
		}
	while (*sp == ' ')
		sp++;
	if (parse_span(sp, &r->window.start, &r->window.end) == -1)
		goto bad;
	if (r->window.start >= r->window.end) {
		errat(l, line, "%s: '%.80s': the window must end after it starts "
		    "on the same day", k->name, v);
		mark_bad(in, k);
		return;
	}
	r->window.days = days;
	return;
bad:
	errat(l, line, "%s: '%.80s': write days and hours, e.g. 'Mon-Fri "
	    "09:00-17:00' or 'Mon,Wed 08:30-12:00'%s", k->name, v,
	    comment_hint(v));
	mark_bad(in, k);
}

/* "20:00-08:00" (may wrap midnight) or "none". */
static void
check_quiet(struct loader *l, struct inst *in, const struct key *k, int line)
{
	struct clock_quiet *q = in->rule >= 0 ? &l->cfg->rules[in->rule].quiet :
	    &l->cfg->quiet;
	const char *v = get_str(field(l, in, k));

	q->start = q->end = 0;
	if (eq_nocase(v, "none"))
		return;
	if (parse_span(v, &q->start, &q->end) == -1 || q->start == q->end) {
		q->start = q->end = 0;
		errat(l, line, "%s: '%.80s': write 'HH:MM-HH:MM' (e.g. "
		    "20:00-08:00) or 'none'%s", k->name, v, comment_hint(v));
		mark_bad(in, k);
	}
}

/* An IANA name's shape; whether the zone exists is `check`'s (clock.c) question. */
static void
check_timezone(struct loader *l, struct inst *in, const struct key *k, int line)
{
	const char *v = l->cfg->timezone;

	l->cfg->timezone_line = line;
	if (strlen(v) > 64 || v[0] == '/' || strstr(v, "..") != NULL ||
	    strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789/_-+") != strlen(v)) {
		errat(l, line, "%s: '%.80s' is not a time zone name (e.g. "
		    "Europe/Berlin or UTC)%s", k->name, v, comment_hint(v));
		mark_bad(in, k);
	}
}

static void
check_holidays(struct loader *l, struct inst *in, const struct key *k,
    int line)
{
	struct rule_config *r = &l->cfg->rules[in->rule];

	(void)k;
	r->holidays_line = line;	/* render_open parses the file */
}

static void
check_query(struct loader *l, struct inst *in, const struct key *k, int line)
{
	(void)k;
	l->cfg->rules[in->rule].query_line = line;
}

/*
 * An address: local@domain, RFC 5321 4.5.3.1 lengths, dot-atom-like parts
 * (no white space, no specials, no empty or doubled dots). Quoted local
 * parts are not supported. Returns NULL or why not.
 */
static const char *
addr_problem(const char *a, size_t n)
{
	const char *at = memchr(a, '@', n);
	size_t local, domain;

	if (n == 0)
		return "empty address";
	if (at == NULL)
		return "missing '@'";
	if (memchr(at + 1, '@', n - (size_t)(at - a) - 1) != NULL)
		return "more than one '@'";
	local = (size_t)(at - a);
	domain = n - local - 1;
	if (local == 0 || local > 64)
		return "the part before '@' must be 1 to 64 characters";
	if (domain == 0 || domain > 255 || n > 254)
		return "address too long or without a domain";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)a[i];

		if (c <= 0x20 || c == 0x7f || strchr("<>()[]\\,;:\"", c) != NULL)
			return "white space or a special character in the address";
		if (c == '.' && (i == 0 || i == n - 1 || a[i - 1] == '.' ||
		    a[i - 1] == '@' || a[i + 1] == '.' || a[i + 1] == '@'))
			return "misplaced '.' in the address";
	}
	return NULL;
}

/*
 * "Display Name <addr@domain>" or "addr@domain". On success returns the
 * address (allocated); else NULL with *why.
 */
static char *
parse_mailbox(const char *v, const char **why)
{
	const char *lt = strchr(v, '<'), *a = v, *gt;
	size_t n = strlen(v);

	for (const char *p = v; *p; p++)
		if (*p == '\r' || *p == '\n') {
			*why = "line break in the value";
			return NULL;
		}
	if (lt != NULL) {
		gt = strchr(lt, '>');
		if (gt == NULL || gt[1] != '\0' || strchr(lt + 1, '<') != NULL) {
			*why = "expected 'Display Name <address@domain>'";
			return NULL;
		}
		for (const char *p = v; p < lt; p++)
			if (*p == '>') {
				*why = "expected 'Display Name <address@domain>'";
				return NULL;
			}
		a = lt + 1;
		n = (size_t)(gt - a);
	} else if (strchr(v, '>') != NULL) {
		*why = "'>' without '<'";
		return NULL;
	}
	if ((*why = addr_problem(a, n)) != NULL)
		return NULL;
	return xstrndup(a, n);
}

static void
check_from(struct loader *l, struct inst *in, const struct key *k, int line)
{
	const char *why;
	char *addr;

	(void)in;
	if ((addr = parse_mailbox(l->cfg->from, &why)) == NULL) {
		errat(l, line, "%s: '%.80s': %s (use 'Name <address@domain>' or "
		    "'address@domain')", k->name, l->cfg->from, why);
		return;
	}
	free(l->cfg->from_addr);
	l->cfg->from_addr = addr;
}

static void
check_reply_to(struct loader *l, struct inst *in, const struct key *k, int line)
{
	const char *why;
	char *addr;

	(void)in;
	if ((addr = parse_mailbox(l->cfg->reply_to, &why)) == NULL)
		errat(l, line, "%s: '%.80s': %s (use 'Name <address@domain>' or "
		    "'address@domain')", k->name, l->cfg->reply_to, why);
	free(addr);
}

/*
 * The password is the first line of a file only we can read (OpenSMTPD
 * and msmtp refuse secrets others can see; so do we). The file is opened
 * once and checked through the descriptor: no window between check and use.
 */
static void
check_password(struct loader *l, struct inst *in, const struct key *k, int line)
{
	const char *path = l->cfg->password_file;
	char data[SECRET_MAX + 2];
	size_t len = 0, n;
	struct stat st;
	char *nl;
	int fd, replaced;

	(void)in;
	(void)k;
	if ((fd = util_secret_open(path, 0, &replaced)) == -1) {
		if (replaced)
			errat(l, line, "password_file %s: %s, and the file was "
			    "replaced since start: restart followupd to read "
			    "the new one as root", path, strerror(errno));
		else
			errat(l, line, "password_file %s: %s", path,
			    strerror(errno));
		return;
	}
	if (fstat(fd, &st) == -1) {
		errat(l, line, "password_file %s: %s", path, strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		errat(l, line, "password_file %s is not a regular file", path);
		goto done;
	}
	/* Ours, or root's (read by root before dropping privileges). */
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		errat(l, line, "password_file %s is owned by uid %u, neither us "
		    "(uid %u) nor root: chown it", path, (unsigned)st.st_uid,
		    (unsigned)geteuid());
		goto done;
	}
	if (st.st_mode & 077) {
		errat(l, line, "password_file %s is %s by others (mode %04o): "
		    "chmod 600 it", path, st.st_mode & 044 ? "readable" :
		    "accessible", (unsigned)(st.st_mode & 07777));
		goto done;
	}
	while (len < sizeof(data) - 1) {
		ssize_t r = read(fd, data + len, sizeof(data) - 1 - len);

		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			errat(l, line, "password_file %s: read: %s", path,
			    strerror(errno));
			goto done;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	data[len] = '\0';
	nl = memchr(data, '\n', len);
	n = nl ? (size_t)(nl - data) : len;
	if (n > SECRET_MAX) {
		errat(l, line, "password_file %s: first line longer than %d "
		    "bytes", path, SECRET_MAX);
		goto done;
	}
	if (n > 0 && data[n - 1] == '\r')
		n--;
	if (memchr(data, '\0', n) != NULL) {
		errat(l, line, "password_file %s: NUL byte in the password", path);
		goto done;
	}
	if (n == 0) {
		errat(l, line, "password_file %s: the first line is empty", path);
		goto done;
	}
	l->cfg->smtp.password = xstrndup(data, n);
done:
	explicit_bzero(data, sizeof(data));
	close(fd);
}

/* ---- whole sections ---- */

static int
key_index(const struct section *sec, const char *name)
{
	for (size_t i = 0; i < sec->nkeys; i++)
		if (strcmp(sec->keys[i].name, name) == 0)
			return (int)i;
	fatalx("config: no key %s in [%s]", name, sec->name);
}

/* The line to blame for a cross-key problem: the key's, else the header's. */
static int
blame(const struct inst *in, const char *name)
{
	int line = in->seen[key_index(in->sec, name)];

	return line ? line : in->line;
}

static int
usable(const struct inst *in, const char *name)
{
	int i = key_index(in->sec, name);

	return !in->bad[i];
}

static void
finish_queue(struct loader *l, struct inst *in)
{
	struct config *c = l->cfg;

	if (usable(in, "min_backoff") && usable(in, "max_backoff") &&
	    c->max_backoff < c->min_backoff)
		errat(l, blame(in, "max_backoff"), "max_backoff (%lds) is less "
		    "than min_backoff (%lds)", c->max_backoff, c->min_backoff);
}

static void
finish_smtp(struct loader *l, struct inst *in)
{
	struct config *c = l->cfg;

	if (c->smtp.username != NULL && c->password_file == NULL)
		errat(l, blame(in, "username"), "username is set but "
		    "password_file is not: AUTH needs both");
	else if (c->smtp.username == NULL && c->password_file != NULL)
		errat(l, blame(in, "password_file"), "password_file is set but "
		    "username is not: AUTH needs both");
}

static void finish_rule_consent(struct loader *, struct inst *,
    struct rule_config *);

static void
finish_rule(struct loader *l, struct inst *in)
{
	struct rule_config *r = &l->cfg->rules[in->rule];

	if (r->template_name == NULL)	/* absent, or set to nothing */
		r->template_name = xstrdup(r->name);
	if (!in->seen[key_index(in->sec, "lookback")])
		r->lookback = r->delay + 7 * DAY;
	/* [defaults] was read whole by now (finish runs after parsing). */
	if (r->quiet_hours == NULL)
		r->quiet = l->cfg->quiet;
	finish_rule_consent(l, in, r);
}

/* Required keys, defaults, then the section's own cross-checks. */
static void
finish_inst(struct loader *l, struct inst *in)
{
	char lb[RULE_NAME_MAX + 16];

	for (size_t i = 0; i < in->sec->nkeys; i++) {
		const struct key *k = &in->sec->keys[i];

		if (in->seen[i])
			continue;
		if (k->flags & KEY_REQUIRED) {
			in->bad[i] = 1;
			if (in->line == 0)
				errat(l, 0, "missing section [%s] (it must set "
				    "'%s')", in->sec->name, k->name);
			else
				errat(l, in->line, "missing required key '%s' in "
				    "%s", k->name, label(l, in, lb, sizeof(lb)));
		} else if (k->dflt != NULL && store(l, in, k, k->dflt, 0) == -1)
			fatalx("config: bad default for %s", k->name);
	}
	if (in->sec->finish)
		in->sec->finish(l, in);
}

static void
finish(struct loader *l)
{
	size_t n = l->ninsts;

	/* Absent sections still get their defaults (and report missing keys). */
	for (size_t s = 0; s < NKEYS(sections); s++) {
		size_t i;

		if (sections[s].is_rule)
			continue;
		for (i = 0; i < n; i++)
			if (l->insts[i].sec == &sections[s])
				break;
		if (i < n)
			continue;
		l->insts = xrealloc(l->insts, (l->ninsts + 1) * sizeof(*l->insts));
		memset(&l->insts[l->ninsts], 0, sizeof(*l->insts));
		l->insts[l->ninsts].sec = &sections[s];
		l->insts[l->ninsts].rule = -1;
		l->ninsts++;
	}
	for (size_t i = 0; i < l->ninsts; i++)
		finish_inst(l, &l->insts[i]);
	if (l->cfg->nrules == 0)
		errat(l, 0, "no [rule NAME] section: nothing to do");
}

/* The directory relative paths resolve against: absolute, so a chdir cannot move them. */
static char *
config_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *d, *abs;

	if (slash == NULL)
		d = xstrdup(".");
	else if (slash == path)
		d = xstrdup("/");
	else
		d = xstrndup(path, (size_t)(slash - path));
	if ((abs = realpath(d, NULL)) == NULL)
		return d;
	free(d);
	/* realpath's memory comes from malloc: copy so xmalloc owns all. */
	d = xstrdup(abs);
	free(abs);
	return d;
}

struct config *
config_load(const char *path, struct buf *errs)
{
	struct loader l;
	struct buf data = { 0 };
	char *err = NULL;

	memset(&l, 0, sizeof(l));
	l.errs = errs;
	l.cur = CUR_NONE;
	l.cfg = xcalloc(1, sizeof(*l.cfg));
	l.cfg->path = xstrdup(path);
	if (read_file(path, &data, &err) != FU_OK) {
		if (errs)
			buf_printf(errs, "%s\n", err);
		free(err);
		config_free(l.cfg);
		return NULL;
	}
	l.cfg->dir = config_dir(path);
	parse(&l, data.data, data.len);
	finish(&l);
	buf_free(&data);
	buf_free(&l.pend_val);
	free(l.insts);
	if (l.nerr > 0) {
		config_free(l.cfg);
		return NULL;
	}
	l.cfg->derived = xcalloc(1, sizeof(*l.cfg->derived));
	for (int i = 0; i < l.cfg->nrules; i++)
		l.cfg->rules[i].config = l.cfg;
	return l.cfg;
}

static void
free_fields(void *base, const struct key *keys, size_t nkeys)
{
	for (size_t i = 0; i < nkeys; i++)
		if (keys[i].type == KEY_STRING || keys[i].type == KEY_PATH)
			free(get_str((char *)base + keys[i].off));
}

void
config_free(struct config *c)
{
	char *pw;

	if (c == NULL)
		return;
	if (c->derived != NULL && c->derived->free != NULL)
		c->derived->free(c->derived->data);
	free(c->derived);
	for (size_t s = 0; s < NKEYS(sections); s++)
		if (!sections[s].is_rule)
			free_fields(c, sections[s].keys, sections[s].nkeys);
	for (int i = 0; i < c->nrules; i++) {
		free_fields(&c->rules[i], rule_keys, NKEYS(rule_keys));
		free(c->rules[i].name);
	}
	free(c->rules);
	if ((pw = get_str(&c->smtp.password)) != NULL) {
		explicit_bzero(pw, strlen(pw));
		free(pw);
	}
	free(c->from_addr);
	free(c->path);
	free(c->dir);
	free(c);
}

const struct rule_config *
config_rule(const struct config *c, const char *name)
{
	for (int i = 0; i < c->nrules; i++)
		if (strcmp(c->rules[i].name, name) == 0)
			return &c->rules[i];
	return NULL;
}

/* ---- consent, birthday, anniversary, loyalty (issue 4) ---- */

const char *
config_class_name(int cls)
{
	return cls == RULE_CLASS_MARKETING ? "marketing" : "transactional";
}

int
config_has_marketing(const struct config *c)
{
	for (int i = 0; i < c->nrules; i++)
		if (c->rules[i].enabled && c->rules[i].cls == RULE_CLASS_MARKETING)
			return 1;
	return 0;
}

/* Kind-dependent defaults and requirements, after the whole file is read. */
static void
finish_rule_consent(struct loader *l, struct inst *in, struct rule_config *r)
{
	char lb[RULE_NAME_MAX + 16];
	int yearly = r->kind == RULE_BIRTHDAY || r->kind == RULE_ANNIVERSARY ||
	    r->kind == RULE_LOYALTY;

	if (!yearly && !in->seen[key_index(in->sec, "delay")])
		errat(l, in->line, "missing required key 'delay' in %s",
		    label(l, in, lb, sizeof(lb)));
	if (!in->seen[key_index(in->sec, "class")])
		r->cls = yearly ? RULE_CLASS_MARKETING : RULE_CLASS_TRANSACTIONAL;
	if (!in->seen[key_index(in->sec, "send_at")])
		r->send_at_min = 9 * 60;	/* the default, "09:00" */
	if (r->kind == RULE_ANNIVERSARY && r->years == NULL) {
		/* default: 1, 5, 10 */
		r->year_list[0] = 1;
		r->year_list[1] = 5;
		r->year_list[2] = 10;
		r->nyears = 3;
	}
	if (r->kind == RULE_LOYALTY && r->query == NULL &&
	    r->min_purchases == 0 && r->min_total == 0)
		errat(l, in->line, "%s: a loyalty rule needs min_purchases, "
		    "min_total or its own query", label(l, in, lb, sizeof(lb)));
	if (r->cls == RULE_CLASS_MARKETING && r->enabled &&
	    l->cfg->unsubscribe_url == NULL)
		errat(l, in->line, "%s is marketing mail: set [unsubscribe] url "
		    "(the https address of followupd unsubscribe-server; RFC "
		    "8058)", label(l, in, lb, sizeof(lb)));
	if (r->ratings && r->kind != RULE_AFTER_RESOLUTION)
		errat(l, blame(in, "ratings"), "%s: ratings = yes is for rules "
		    "of kind after_resolution (a check-in) only",
		    label(l, in, lb, sizeof(lb)));
	else if (r->ratings && r->enabled && l->cfg->ratings_url == NULL)
		errat(l, blame(in, "ratings"), "%s asks for ratings: set "
		    "[ratings] url (the https address of the rating page that "
		    "followupd serve answers)", label(l, in, lb, sizeof(lb)));
}

static void
check_send_at(struct loader *l, struct inst *in, const struct key *k, int line)
{
	struct rule_config *r = &l->cfg->rules[in->rule];
	const char *p = r->send_at;
	int m = parse_hhmm(&p);

	if (m < 0 || m >= 24 * 60 || *p != '\0') {
		errat(l, line, "%s: '%.80s': write a local time HH:MM (e.g. "
		    "09:00)%s", k->name, r->send_at, comment_hint(r->send_at));
		mark_bad(in, k);
		return;
	}
	r->send_at_min = m;
}

/* "1, 5, 10" (1 to 200, each once) or "every year". */
static void
check_years(struct loader *l, struct inst *in, const struct key *k, int line)
{
	struct rule_config *r = &l->cfg->rules[in->rule];
	const char *p = r->years;

	r->nyears = 0;
	r->years_every = 0;
	if (eq_nocase(p, "every year")) {
		r->years_every = 1;
		return;
	}
	for (;;) {
		long n = 0;
		int digits = 0;

		while (is_blank(*p))
			p++;
		for (; *p >= '0' && *p <= '9' && n < 1000; p++, digits++)
			n = n * 10 + (*p - '0');
		while (is_blank(*p))
			p++;
		if (digits == 0 || n < 1 || n > 200 || (*p != ',' && *p != '\0') ||
		    r->nyears == CONFIG_YEARS_MAX)
			goto bad;
		for (int i = 0; i < r->nyears; i++)
			if (r->year_list[i] == n)
				goto bad;
		r->year_list[r->nyears++] = (int)n;
		if (*p == '\0')
			return;
		p++;
	}
bad:
	r->nyears = 0;
	errat(l, line, "%s: '%.80s': write whole years 1 to 200, each once, "
	    "separated by commas (e.g. 1, 5, 10), or 'every year'%s", k->name,
	    r->years, comment_hint(r->years));
	mark_bad(in, k);
}

/* ISO 4217: three capital letters. */
static void
check_currency(struct loader *l, struct inst *in, const struct key *k,
    int line)
{
	const char *v = get_str(field(l, in, k));

	if (strlen(v) != 3 || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3) {
		errat(l, line, "%s: '%.80s' is not an ISO 4217 code (e.g. EUR)",
		    k->name, v);
		mark_bad(in, k);
	}
}

/* "N/DURATION": at most N messages per recipient in DURATION ("2/7d"). */
static void
check_cap(struct loader *l, struct inst *in, const struct key *k, int line)
{
	struct config_cap *cap = in->rule >= 0 ? &l->cfg->rules[in->rule].cap :
	    &l->cfg->marketing_cap;
	const char *v = get_str(field(l, in, k)), *slash = strchr(v, '/');
	char num[16], *err = NULL;
	long n, w;

	cap->n = 0;
	cap->window = 0;
	if (slash == NULL || slash == v || (size_t)(slash - v) >= sizeof(num))
		goto bad;
	memcpy(num, v, (size_t)(slash - v));
	num[slash - v] = '\0';
	if (parse_int(trim(num), &n) == -1 || n < 1 || n > 1000)
		goto bad;
	while (is_blank(slash[1]))
		slash++;
	if (config_parse_duration(slash + 1, &w, &err) != FU_OK || w < MIN ||
	    w > 3660 * DAY) {
		free(err);
		goto bad;
	}
	cap->n = (int)n;
	cap->window = w;
	return;
bad:
	errat(l, line, "%s: '%.80s': write N/DURATION, e.g. 2/7d (at most 2 "
	    "marketing messages per recipient in 7 days)%s", k->name, v,
	    comment_hint(v));
	mark_bad(in, k);
}

/* "random", or a Mustache text (render_open parses it) of bounded size. */
static void
check_code(struct loader *l, struct inst *in, const struct key *k, int line)
{
	const char *v = get_str(field(l, in, k));

	if (strlen(v) > 200 || strpbrk(v, "\t\"<>\\") != NULL) {
		errat(l, line, "%s: '%.80s': 'random' or a short text such as "
		    "LOYALTY-{{customer.id}}-{{code.random}} (no quotes, tabs, "
		    "<, > or \\)", k->name, v);
		mark_bad(in, k);
	}
}

/* Printable ASCII, no space, each character once, 2 to 64 of them. */
static void
check_alphabet(struct loader *l, struct inst *in, const struct key *k,
    int line)
{
	const char *v = get_str(field(l, in, k));
	size_t n = strlen(v);

	for (size_t i = 0; i < n; i++)
		if (v[i] <= ' ' || v[i] > '~' || strchr(v + i + 1, v[i]) != NULL ||
		    strchr("\"<>\\&", v[i]) != NULL)
			n = 0;
	if (n < 2 || n > 64) {
		errat(l, line, "%s: '%.80s': 2 to 64 different printable ASCII "
		    "characters (not space, quotes, <, >, & or \\)", k->name, v);
		mark_bad(in, k);
	}
}

/*
 * The pages' URLs ([unsubscribe] url, [ratings] url): https, no query or
 * fragment (the token goes in ?t=; RFC 8058 3.1 for one-click).
 */
static void
check_page_url(struct loader *l, struct inst *in, const struct key *k,
    int line, const char *example)
{
	const char *v = get_str(field(l, in, k));

	if (strncmp(v, "https://", 8) != 0 || v[8] == '\0' || v[8] == '/' ||
	    strlen(v) > 200 || strpbrk(v, "?#<>\"'\\ \t,") != NULL) {
		errat(l, line, "%s: '%.80s': an https URL without query or "
		    "fragment, e.g. %s", k->name, v, example);
		mark_bad(in, k);
	}
}

static void
check_unsub_url(struct loader *l, struct inst *in, const struct key *k,
    int line)
{
	check_page_url(l, in, k, line,
	    "https://desk.example/unsubscribe (RFC 8058)");
}

static void
check_unsub_mailto(struct loader *l, struct inst *in, const struct key *k,
    int line)
{
	const char *v = get_str(field(l, in, k));
	const char *why = addr_problem(v, strlen(v));

	if (why != NULL) {
		errat(l, line, "%s: '%.80s': %s", k->name, v, why);
		mark_bad(in, k);
	}
}

/*
 * [bounces] return_path: an address whose local part leaves room for
 * DELIMITER TOKEN within RFC 5321's 64 octets (verp.h).
 */
static void
check_return_path(struct loader *l, struct inst *in, const struct key *k,
    int line)
{
	const char *v = get_str(field(l, in, k));
	const char *why = addr_problem(v, strlen(v)), *at = strrchr(v, '@');
	size_t room = 64 - 1 - VERP_TOKEN_MAX;

	if (why == NULL && at != NULL && (size_t)(at - v) > room)
		why = "its local part is too long for a per-message address";
	if (why != NULL) {
		errat(l, line, "%s: '%.80s': %s (e.g. bounces@desk.example, a "
		    "local part of at most %zu octets)", k->name, v, why, room);
		mark_bad(in, k);
	}
}

/* [bounces] delimiter: one character MTAs split local parts at. */
static void
check_delimiter(struct loader *l, struct inst *in, const struct key *k,
    int line)
{
	const char *v = get_str(field(l, in, k));

	if (strlen(v) != 1 || strchr("+-=_", v[0]) == NULL) {
		errat(l, line, "%s: '%.80s': want one of + - = _ (Postfix's "
		    "recipient_delimiter, qmail's -)", k->name, v);
		mark_bad(in, k);
	}
}

/* ---- ratings (issue 12) ---- */

int
config_has_ratings(const struct config *c)
{
	for (int i = 0; i < c->nrules; i++)
		if (c->rules[i].enabled && c->rules[i].ratings)
			return 1;
	return 0;
}

static void
check_rating_url(struct loader *l, struct inst *in, const struct key *k,
    int line)
{
	check_page_url(l, in, k, line, "https://desk.example/rate");
}

/* "25%" or "25": a whole percentage from 0 to 100. */
static void
check_sample(struct loader *l, struct inst *in, const struct key *k, int line)
{
	const char *v = get_str(field(l, in, k));
	size_t n = strspn(v, "0123456789");
	int pct = n > 0 && n <= 3 ? atoi(v) : -1;

	if (pct < 0 || pct > 100 || (v[n] != '\0' && strcmp(v + n, "%") != 0)) {
		errat(l, line, "%s: '%.80s': a share of check-ins from 0%% to "
		    "100%%, e.g. 25%%", k->name, v);
		mark_bad(in, k);
		return;
	}
	l->cfg->ratings_sample = pct;
}

/* Shown in messages and on the page: one line, not too long. */
static void
check_question(struct loader *l, struct inst *in, const struct key *k,
    int line)
{
	const char *v = get_str(field(l, in, k));

	if (*v == '\0' || strlen(v) > 200) {
		errat(l, line, "%s: write the question in 1 to 200 bytes",
		    k->name);
		mark_bad(in, k);
	}
}

static void
finish_ratings(struct loader *l, struct inst *in)
{
	struct config *c = l->cfg;
	const char *u = c->unsubscribe_url, *r = c->ratings_url;

	if (!in->seen[key_index(in->sec, "sample")])
		c->ratings_sample = 100;	/* the default, "100%" */
	c->ratings_low = rating_default_low(c->ratings_scale);
	if (c->ratings_low_text != NULL && usable(in, "scale") &&
	    rating_parse_score(c->ratings_scale, c->ratings_low_text,
	    &c->ratings_low) == -1)
		errat(l, blame(in, "low"), "low: '%.80s' is not a score of the "
		    "%s scale (%d to %d%s)", c->ratings_low_text,
		    rating_scale_name(c->ratings_scale),
		    rating_min(c->ratings_scale), rating_max(c->ratings_scale),
		    c->ratings_scale == RATING_GOOD_BAD ? ", or bad" : "");
	/* Both pages are served by `followupd serve`: their paths differ. */
	if (u != NULL && r != NULL && usable(in, "url") &&
	    strcmp(strchr(u + 8, '/') ? strchr(u + 8, '/') : "/unsubscribe",
	    strchr(r + 8, '/') ? strchr(r + 8, '/') : "/rate") == 0)
		errat(l, blame(in, "url"), "url: '%.80s' has the path of "
		    "[unsubscribe] url; give the rating page its own (e.g. "
		    "/rate)", r);
}
