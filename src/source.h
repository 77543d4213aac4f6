/* source: the help desk's database, opened read-only; rows become template data. */
#ifndef FOLLOWUPD_SOURCE_H
#define FOLLOWUPD_SOURCE_H

#include "util.h"
#include "value.h"

struct source;

/*
 * Open PATH read-only (URI mode=ro: followupd never writes the help desk's
 * database). FU_PERMFAIL when missing or not a database, FU_TEMPFAIL when busy.
 */
int	source_open(const char *path, int busy_timeout_ms, struct source **,
	    char **err);
void	source_close(struct source *);

/*
 * How long SQLite may work on one source_select (its own time, not the row
 * callbacks'): [source] query_timeout, SOURCE_QUERY_TIMEOUT_MS until set;
 * 0 or less: no limit. A query over it is stopped: FU_TEMPFAIL, *err names
 * the limit, and source_timed_out() is 1 until the next query. The desk is
 * opened with trusted_schema off and SQLITE_DBCONFIG_DEFENSIVE on.
 */
#define SOURCE_QUERY_TIMEOUT_MS	30000
void	source_set_query_timeout(struct source *, int ms);
int	source_timed_out(const struct source *);

/* Named parameters a rule's query may use; unset ones are bound to NULL. */
struct source_params {
	const char	*since;		/* :since, UTC "YYYY-MM-DD HH:MM:SS" */
	const char	*until;		/* :until */
	const char	*now;		/* :now */
	const char	*key;		/* :key (bound as an integer when it is one) */
};

/*
 * Called for each row, as a map: a column named "a.b" becomes a nested map
 * entry, NULL becomes null, integers and reals numbers, text strings
 * (invalid UTF-8 is kept as bytes; the renderer decides). The callback owns
 * the row. Return FU_OK to go on, anything else stops the query and is
 * returned.
 */
typedef int (*source_row_cb)(struct value *row, void *arg);

/*
 * Run one SELECT (statements are prepared once and cached by SQL text).
 * Busy (the help desk holds a write lock past busy_timeout) is FU_TEMPFAIL.
 */
int	source_select(struct source *, const char *sql,
	    const struct source_params *, source_row_cb, void *arg, char **err);

/*
 * For `check`: the SQL must be exactly one read-only statement (a SELECT)
 * that prepares against this database and returns each column named in
 * `required` (NULL-terminated). *err names what is wrong.
 */
int	source_check_query(struct source *, const char *sql,
	    const char *const *required, char **err);

/* 1 when the database has this table (for optional history queries). */
int	source_has_table(struct source *, const char *table);
/* 1 when `table` (a table, not a view) has this column. */
int	source_has_column(struct source *, const char *table,
	    const char *column);

/*
 * A read transaction around many source_select calls (one consistent view,
 * one lock). source_read_end ends it; harmless when none is open.
 */
int	source_read_begin(struct source *, char **err);
void	source_read_end(struct source *);

#endif
