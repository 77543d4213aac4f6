/* config: scheduler.conf (strict INI) → struct config; every error names file:line. */
#ifndef FOLLOWUPD_CONFIG_H
#define FOLLOWUPD_CONFIG_H

#include <time.h>

#include "smtp.h"
#include "util.h"

enum rule_kind {
	RULE_AFTER_RESOLUTION,
};

struct rule_config {
	char		*name;		/* [rule NAME] */
	int		 line;		/* line of the section header */
	enum rule_kind	 kind;
	long		 delay;		/* seconds */
	long		 lookback;	/* seconds: how far back planning looks; default delay + 7d */
	char		*template_name;	/* templates/NAME/ */
	char		*query;		/* NULL: the kind's default query */
	int		 query_line;
	int		 history;	/* add history.* from the reference schema (default 1) */
	int		 enabled;	/* default 1 */
};

struct config {
	char		*path;		/* the config file, as given */
	char		*dir;		/* its directory: relative paths resolve here */

	/* [source] */
	char		*database;	/* absolute or config-relative, resolved */
	int		 database_line;	/* where it was set, for `check` */
	int		 busy_timeout_ms;	/* default 5000 */

	/* [queue] */
	char		*queue_dir;	/* resolved */
	long		 tick;		/* seconds between ticks in `run`, default 60 */
	long		 min_backoff;	/* default 300 */
	long		 max_backoff;	/* default 4000 */
	long		 queue_lifetime;	/* default 5d */
	long		 sent_retention;	/* seconds to keep queue/sent/ copies; 0 = delete at once (default) */
	int		 batch;		/* messages per SMTP session, default 100 */

	/* [templates] */
	char		*templates_dir;	/* default "templates" next to the config */

	/* [smtp] */
	struct smtp_config smtp;	/* strings owned by config */
	char		*password_file;	/* resolved; password read into smtp.password */
	char		*from;		/* "Name <addr>" */
	char		*from_addr;	/* addr part of from */
	char		*reply_to;	/* may be NULL */

	struct rule_config *rules;
	int		 nrules;
};

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

/*
 * Durations: "90" (seconds), "30s", "15m", "2h", "3d", "1w"; combinations
 * like "1d12h". FU_OK or FU_PERMFAIL with *err.
 */
int		 config_parse_duration(const char *, long *out, char **err);

#endif
