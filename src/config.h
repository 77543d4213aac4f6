/* config: scheduler.conf (strict INI) → struct config; every error names file:line. */
#ifndef FOLLOWUPD_CONFIG_H
#define FOLLOWUPD_CONFIG_H

#include <time.h>

#include "clock.h"
#include "smtp.h"
#include "util.h"

enum rule_kind {
	RULE_AFTER_RESOLUTION,
	RULE_AGENT_REMINDER,	/* an iTIP invitation to the ticket's agent */
	RULE_BIRTHDAY,		/* customers.birthday, once a year at send_at */
	RULE_ANNIVERSARY,	/* N years after customers.customer_since */
	RULE_LOYALTY,		/* a milestone of the purchase history */
};

/* Consent: marketing mail carries List-Unsubscribe and obeys caps. */
enum rule_class {
	RULE_CLASS_TRANSACTIONAL,
	RULE_CLASS_MARKETING,
};

enum rule_feb29 {
	RULE_FEB29_FEB28,	/* 29 February: the 28th in common years */
	RULE_FEB29_MAR1,	/* ... or 1 March */
};

enum rule_over_cap {
	RULE_OVER_CAP_POSTPONE,	/* wait until the cap allows it */
	RULE_OVER_CAP_DROP,	/* cancel with reason over-cap */
};

/* A frequency cap "N/DURATION": at most n messages in `window` seconds. */
struct config_cap {
	int		 n;		/* 0: no cap */
	long		 window;
};

#define CONFIG_YEARS_MAX	32	/* anniversary milestones listed in `years` */

/*
 * [smtp] unknown_outcome: a message whose data reached the relay but whose
 * reply did not (a connection lost after the final dot) may or may not have
 * been accepted. retry: send it again (same Message-ID; the recipient may
 * get two copies); hold: keep it held for an operator (queue retry/release;
 * it may never arrive). Either way the event is recorded and counted.
 */
enum config_unknown_outcome {
	CONFIG_UNKNOWN_RETRY,	/* default, like Postfix and OpenSMTPD */
	CONFIG_UNKNOWN_HOLD,
};

struct rule_config {
	char		*name;		/* [rule NAME] */
	int		 line;		/* line of the section header */
	enum rule_kind	 kind;
	long		 delay;		/* seconds; whole days are calendar days in the recipient's zone */
	char		*delay_text;	/* as written: "3d" or "2 business days" */
	int		 business_days;	/* > 0: the delay is this many business days */
	long		 lookback;	/* seconds: how far back planning looks; default delay + 7d */
	char		*template_name;	/* templates/NAME/ */
	char		*query;		/* NULL: the kind's default query */
	int		 query_line;
	int		 history;	/* add history.* from the reference schema (default 1) */
	int		 enabled;	/* default 1 */
	/* time, in the recipient's zone (clock.h) */
	char		*send_window;	/* as written; NULL: always open */
	struct clock_window window;
	char		*quiet_hours;	/* as written; NULL: [defaults] quiet_hours */
	struct clock_quiet quiet;	/* in effect: the rule's, else [defaults] */
	char		*holidays;	/* .ics of all-day events (resolved path); NULL: none */
	int		 holidays_line;
	/* agent_reminder */
	long		 duration;	/* length of the calendar item, default 15m */
	long		 alarm;		/* VALARM this long before it, default 10m; 0: none */
	/* consent and yearly notes (birthday, anniversary, loyalty) */
	int		 cls;		/* enum rule_class; default by kind */
	char		*send_at;	/* "HH:MM" local, default 09:00 */
	int		 send_at_min;	/* minutes after local midnight */
	int		 feb29;		/* enum rule_feb29 */
	char		*years;		/* "1, 5, 10" or "every year" (anniversary) */
	int		 years_every;	/* every year from 1 */
	int		 year_list[CONFIG_YEARS_MAX];
	int		 nyears;
	int		 min_purchases;	/* loyalty: at least this many purchases */
	int		 min_total;	/* loyalty: at least this total, minor units */
	char		*currency;	/* loyalty: ISO 4217 code of min_total; NULL: any */
	char		*code;		/* personal code: Mustache text or "random"; NULL: none */
	int		 code_length;	/* random part, default 8 */
	char		*code_alphabet;	/* default ABCDEFGHJKLMNPQRSTUVWXYZ23456789 */
	int		 over_cap;	/* enum rule_over_cap */
	char		*max_marketing;	/* the rule's own cap, as written */
	struct config_cap cap;		/* per recipient, messages of this rule */
	int		 ratings;	/* after_resolution: rating links in the check-in (default no) */
	const struct config *config;	/* the config it belongs to */
};

/*
 * What another module derives from a config and keeps with it (rules.c:
 * zones, holiday sets, generated queries): made on first use, freed by
 * config_free through `free`, so config.c needs to know nothing of it.
 */
struct config_derived {
	void		*data;
	void		(*free)(void *);
};

struct config {
	char		*path;		/* the config file, as given */
	char		*dir;		/* its directory: relative paths resolve here */

	/* [source] */
	char		*database;	/* absolute or config-relative, resolved */
	int		 database_line;	/* where it was set, for `check` */
	int		 busy_timeout_ms;	/* default 5000 */
	int		 query_timeout_ms;	/* default 30000; 0: none */

	/* [queue] */
	char		*queue_dir;	/* resolved */
	long		 tick;		/* seconds between ticks in `run`, default 60 */
	long		 min_backoff;	/* default 300 */
	long		 max_backoff;	/* default 4000 */
	long		 queue_lifetime;	/* default 5d */
	long		 sent_retention;	/* seconds to keep queue/sent/ copies; 0 = delete at once (default) */
	int		 recycle;	/* reuse finished spool files (queue/free/); no: remove them */
	int		 batch;		/* messages per SMTP session, default 100 */
	char		*user;		/* started as root: run as this user (daemon.c); NULL: stay */

	/* [templates] */
	char		*templates_dir;	/* default "templates" next to the config */

	/* [smtp] */
	struct smtp_config smtp;	/* strings owned by config */
	char		*password_file;	/* resolved; password read into smtp.password */
	char		*from;		/* "Name <addr>" */
	char		*from_addr;	/* addr part of from */
	char		*reply_to;	/* may be NULL */
	int		 connections;	/* parallel SMTP sessions to the relay, default 4 */
	int		 rate;		/* messages per second to the relay, 0: no limit (default) */
	int		 unknown_outcome;	/* CONFIG_UNKNOWN_*: the data went, no reply came */

	/* [metrics]: the Prometheus endpoint of `run` (http.c) */
	int		 metrics_enabled;	/* default 0 */
	char		*metrics_listen;	/* an IP address, default 127.0.0.1 */
	int		 metrics_port;		/* default 9898 */

	/* [defaults] */
	char		*timezone;	/* IANA name for recipients without one; NULL: UTC */
	int		 timezone_line;
	char		*quiet_hours;	/* as written; NULL: none */
	struct clock_quiet quiet;

	/* [calendar] (agent reminders) */
	char		*calendar_feed;	/* directory for per-agent .ics feeds; NULL: none */
	char		*calendar_link;	/* Mustache template of the ticket's URL; may be NULL */

	/* [defaults] max_marketing: marketing messages per recipient, all rules */
	char		*max_marketing;	/* as written; NULL: no cap */
	struct config_cap marketing_cap;

	/* [unsubscribe]: List-Unsubscribe and `unsubscribe-server` */
	char		*unsubscribe_listen;	/* default 127.0.0.1 */
	int		 unsubscribe_port;	/* default 8025 */
	char		*unsubscribe_url;	/* https URL the server's route is behind */
	char		*unsubscribe_mailto;	/* address; default [smtp] from's */
	char		*unsubscribe_secret_file;	/* 0600; default QUEUE/unsubscribe.key */

	/* [ratings]: rating links in check-ins (rating.h) and their pages (ratepage.c) */
	int		 ratings_scale;		/* enum rating_scale, default csat */
	char		*ratings_url;		/* https URL of the rating page; NULL: none */
	long		 ratings_window;	/* a rating may change this long after the check-in went, default 14d */
	char		*ratings_low_text;	/* as written; NULL: the scale's default */
	int		 ratings_low;		/* a score at or below this is low (a call-back) */
	char		*ratings_notify;	/* address told of low ratings; NULL: nobody */
	long		 ratings_cooldown;	/* a customer asked in this time is not asked again, default 30d */
	char		*ratings_sample_text;	/* as written, default "100%" */
	int		 ratings_sample;	/* percent of check-ins that ask */
	char		*ratings_question;	/* NULL: the scale's question (rating.h) */

	/* [bounces]: returned mail (bounce.c, verp.c, `followupd bounce`) */
	char		*bounces_return_path;	/* VERP base address; NULL: off */
	char		*bounces_delimiter;	/* one of + - = _; default + */
	char		*bounces_maildir;	/* processed at every tick; NULL: none */
	int		 bounces_soft_limit;	/* soft bounces that suppress */
	long		 bounces_soft_window;	/* ... within this many seconds */
	int		 bounces_complaint;	/* CONFIG_COMPLAINT_* */

	struct rule_config *rules;
	int		 nrules;

	struct config_derived *derived;	/* never NULL in a loaded config */
};

/* [bounces] complaint: what an abuse report opts the recipient out of. */
#define CONFIG_COMPLAINT_MARKETING	0
#define CONFIG_COMPLAINT_ALL		1

/*
 * Parse the file. Syntax: [section] and [rule NAME] headers; key = value;
 * comments start with ; or # at the beginning of a line (after white space);
 * there are no inline comments (';' or '#' after '=' is part of the value);
 * a line that begins with white space continues the previous value (for
 * long SQL; only query may continue; a blank line ends the value). Unknown
 * sections and keys, duplicates, bad values are errors.
 * Every problem is appended to *errs as "FILE:LINE: message\n" (all of them,
 * not only the first). Returns NULL when there was at least one error.
 */
struct config	*config_load(const char *path, struct buf *errs);
void		 config_free(struct config *);

const struct rule_config *config_rule(const struct config *, const char *name);

/* "marketing" or "transactional", as opt-outs and state.db name them. */
const char	*config_class_name(int cls);
/* 1 when some enabled rule asks for ratings (ratings = yes). */
int		 config_has_ratings(const struct config *);
/* 1 when some enabled rule is of class marketing. */
int		 config_has_marketing(const struct config *);

/*
 * Durations: "90" (seconds), "30s", "15m", "2h", "3d", "1w"; combinations
 * like "1d12h". FU_OK or FU_PERMFAIL with *err.
 */
int		 config_parse_duration(const char *, long *out, char **err);

#endif
