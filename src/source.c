/* source: the help desk's database, opened read-only; rows become template data. */
#include "source.h"
#include "log.h"
#include "sqlerr.h"

#include <ctype.h>
#include <stdio.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SOURCE_CACHE	16	/* prepared statements kept per connection */
/* SQLite VM steps between looks at the clock during a query (~µs apart). */
#define SOURCE_PROGRESS_STEPS	4096

/* The named parameters source_select binds, in struct source_params order. */
static const char *const param_names[] = { ":since", ":until", ":now", ":key" };
#define NPARAMS	(sizeof(param_names) / sizeof(param_names[0]))

/* A result column's name as a path ("customer.id": customer, id), hashed. */
struct column {
	char		*name;
	struct value_key *path;		/* keys point into name */
	size_t		 nkeys;
};

struct cached_stmt {
	char		*sql;
	sqlite3_stmt	*stmt;
	int		 param[NPARAMS];	/* index of each, 0: not used */
	/*
	 * The result columns, split once: rows are built without parsing
	 * and hashing every name again. Read after the statement last
	 * prepared itself again (a schema change can change them).
	 */
	struct column	*cols;
	int		 ncols;
	int		 reprepared;	/* SQLITE_STMTSTATUS_REPREPARE then */
};

static void
columns_free(struct cached_stmt *cs)
{
	for (int i = 0; i < cs->ncols; i++) {
		free(cs->cols[i].name);
		free(cs->cols[i].path);
	}
	free(cs->cols);
	cs->cols = NULL;
	cs->ncols = 0;
}

/* (Re)read the statement's column names when they are not known. */
static void
columns_load(struct cached_stmt *cs)
{
	int rep = sqlite3_stmt_status(cs->stmt, SQLITE_STMTSTATUS_REPREPARE, 0);

	if (cs->cols != NULL && rep == cs->reprepared)
		return;
	columns_free(cs);
	cs->reprepared = rep;
	cs->ncols = sqlite3_column_count(cs->stmt);
	cs->cols = xcalloc((size_t)(cs->ncols > 0 ? cs->ncols : 1),
	    sizeof(*cs->cols));
	for (int i = 0; i < cs->ncols; i++) {
		struct column *c = &cs->cols[i];
		const char *name = sqlite3_column_name(cs->stmt, i);
		const char *p, *dot;
		size_t k = 1;

		c->name = xstrdup(name ? name : "");
		for (p = c->name; (p = strchr(p, '.')) != NULL; p++)
			k++;
		c->path = xcalloc(k, sizeof(*c->path));
		c->nkeys = k;
		/* Split as value_map_set_path does: at every dot. */
		for (p = c->name, k = 0; ; p = dot + 1, k++) {
			dot = strchr(p, '.');
			c->path[k].s = p;
			c->path[k].len = dot ? (size_t)(dot - p) : strlen(p);
			c->path[k].hash = value_key_hash(p, c->path[k].len);
			if (dot == NULL)
				break;
		}
	}
}

struct source {
	sqlite3			*db;
	char			*path;
	struct cached_stmt	 cache[SOURCE_CACHE];
	int			 ncache;
	int			 oldest;	/* next to evict once full */
	/*
	 * The query time limit: SQLite's own time within one source_select
	 * (not the row callbacks'), checked by the progress handler.
	 */
	long long		 timeout_ms;
	long long		 used_ms;	/* by this query so far */
	long long		 step_start_ms;	/* 0: not in sqlite3_step */
	int			 timed_out;	/* the last query was stopped */
};

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* sqlite3_progress_handler: non-zero interrupts the statement. */
static int
over_time(void *arg)
{
	struct source *src = arg;

	if (src->step_start_ms == 0 || src->timeout_ms <= 0)
		return 0;
	if (src->used_ms + mono_ms() - src->step_start_ms <= src->timeout_ms)
		return 0;
	src->timed_out = 1;
	return 1;
}

/* The error of the last call on db; a lock held by the help desk says so. */
static void
db_err(char **err, const char *path, sqlite3 *db, int rc)
{
	if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
		set_err(err, "%s: busy: the help desk holds a lock longer than "
		    "busy_timeout; skipped, tried again at the next tick", path);
	else
		set_err(err, "%s: %s", path, sqlite3_errmsg(db));
}

int
source_open(const char *path, int busy_timeout_ms, struct source **out,
    char **err)
{
	struct source *src = xcalloc(1, sizeof(*src));
	char *uri;
	int rc;

	/* The URI form enforces read-only at the SQLite level; the file name
	 * is percent-escaped for the characters URIs reserve. */
	{
		struct buf b = { 0 };

		buf_puts(&b, "file:");
		for (const char *p = path; *p; p++) {
			if (*p == '%' || *p == '?' || *p == '#')
				buf_printf(&b, "%%%02X", (unsigned char)*p);
			else
				buf_putc(&b, *p);
		}
		buf_puts(&b, "?mode=ro");
		uri = buf_steal(&b);
	}
	rc = sqlite3_open_v2(uri, &src->db, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL);
	free(uri);
	if (rc != SQLITE_OK) {
		set_err(err, "%s: cannot open the help desk database "
		    "read-only: %s", path, src->db ? sqlite3_errmsg(src->db) :
		    sqlite3_errstr(rc));
		sqlite3_close(src->db);
		free(src);
		return sqlerr_result(rc);
	}
	sqlite3_busy_timeout(src->db, busy_timeout_ms);
	/*
	 * The desk's schema is not ours: its views and triggers may not call
	 * functions with side effects (fts3_tokenizer() leaks addresses), and
	 * nothing may write the schema or shadow tables even by accident.
	 */
	sqlite3_db_config(src->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_db_config(src->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	src->timeout_ms = SOURCE_QUERY_TIMEOUT_MS;
	sqlite3_progress_handler(src->db, SOURCE_PROGRESS_STEPS, over_time, src);
	/* Reject a file that is not a database now, not at the first query.
	 * A lock held by the help desk is no reason not to start: the steps
	 * that read the source skip their turn, the others go on. */
	rc = sqlite3_exec(src->db, "SELECT count(*) FROM sqlite_schema", NULL,
	    NULL, NULL);
	if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
		log_warnx("source: %s: busy at start-up (the help desk holds a "
		    "lock); checked at the first query", path);
	else if (rc != SQLITE_OK) {
		set_err(err, "%s: %s", path, sqlite3_errmsg(src->db));
		sqlite3_close(src->db);
		free(src);
		return sqlerr_result(rc);
	}
	src->path = xstrdup(path);
	*out = src;
	return FU_OK;
}

void
source_close(struct source *src)
{
	if (src == NULL)
		return;
	for (int i = 0; i < src->ncache; i++) {
		sqlite3_finalize(src->cache[i].stmt);
		free(src->cache[i].sql);
		columns_free(&src->cache[i]);
	}
	sqlite3_close(src->db);
	free(src->path);
	free(src);
}

static int
prepare_cached(struct source *src, const char *sql, struct cached_stmt **out,
    char **err)
{
	struct cached_stmt *cs;
	const char *tail = NULL;
	sqlite3_stmt *s;
	int rc;

	for (int i = 0; i < src->ncache; i++)
		if (strcmp(src->cache[i].sql, sql) == 0) {
			*out = &src->cache[i];
			return FU_OK;
		}
	rc = sqlite3_prepare_v2(src->db, sql, -1, &s, &tail);
	if (rc != SQLITE_OK) {
		db_err(err, src->path, src->db, rc);
		return sqlerr_result(rc);
	}
	/* What `check` demands, enforced at run time too: one statement that
	 * returns rows and writes nothing (the file is read-only anyway). */
	while (tail != NULL && (isspace((unsigned char)*tail) || *tail == ';'))
		tail++;
	if (s == NULL || (tail != NULL && *tail != '\0') ||
	    !sqlite3_stmt_readonly(s) || sqlite3_column_count(s) == 0) {
		set_err(err, "%s: refused: a rule query must be a single SELECT "
		    "(run `followupd check`)", src->path);
		sqlite3_finalize(s);
		return FU_PERMFAIL;
	}
	/* Evict the oldest in its place: the others keep their address. */
	if (src->ncache < SOURCE_CACHE)
		cs = &src->cache[src->ncache++];
	else {
		cs = &src->cache[src->oldest];
		src->oldest = (src->oldest + 1) % SOURCE_CACHE;
		sqlite3_finalize(cs->stmt);
		free(cs->sql);
		columns_free(cs);
	}
	memset(cs, 0, sizeof(*cs));
	cs->sql = xstrdup(sql);
	cs->stmt = s;
	/* Looked up by name once, not per execution. */
	for (size_t k = 0; k < NPARAMS; k++)
		cs->param[k] = sqlite3_bind_parameter_index(s, param_names[k]);
	*out = cs;
	return FU_OK;
}

static int
is_integer(const char *s)
{
	if (*s == '-')
		s++;
	if (!*s || strlen(s) > 18)
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

static void
bind_param(sqlite3_stmt *s, int i, const char *v)
{
	if (i == 0)
		return;
	if (v == NULL)
		sqlite3_bind_null(s, i);
	else if (is_integer(v))
		sqlite3_bind_int64(s, i, strtoll(v, NULL, 10));
	else
		sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
}

static struct value *
column_value(sqlite3_stmt *s, int i)
{
	switch (sqlite3_column_type(s, i)) {
	case SQLITE_INTEGER: {
		/* Keep integers exact as text: ids can exceed a double.
		 * "%lld" by hand: a printf per column was a tenth of it. */
		sqlite3_int64 v = sqlite3_column_int64(s, i);
		unsigned long long u = v < 0 ? 0ull - (unsigned long long)v :
		    (unsigned long long)v;
		char n[24], *p = n + sizeof(n);

		do
			*--p = (char)('0' + u % 10);
		while ((u /= 10) != 0);
		if (v < 0)
			*--p = '-';
		return value_stringn(p, (size_t)(n + sizeof(n) - p));
	}
	case SQLITE_FLOAT:
		return value_number(sqlite3_column_double(s, i));
	case SQLITE_NULL:
		return value_null();
	default: {
		const unsigned char *t = sqlite3_column_text(s, i);
		int n = sqlite3_column_bytes(s, i);

		return value_stringn((const char *)t, (size_t)n);
	}
	}
}

int
source_select(struct source *src, const char *sql,
    const struct source_params *p, source_row_cb cb, void *arg, char **err)
{
	struct cached_stmt *cs;
	sqlite3_stmt *s;
	int r, rc;

	if ((r = prepare_cached(src, sql, &cs, err)) != FU_OK)
		return r;
	s = cs->stmt;
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	bind_param(s, cs->param[0], p ? p->since : NULL);
	bind_param(s, cs->param[1], p ? p->until : NULL);
	bind_param(s, cs->param[2], p ? p->now : NULL);
	bind_param(s, cs->param[3], p ? p->key : NULL);
	r = FU_OK;
	src->used_ms = 0;
	src->timed_out = 0;
	for (;;) {
		struct value *row;
		long long t0 = mono_ms();

		src->step_start_ms = t0;
		rc = sqlite3_step(s);
		src->step_start_ms = 0;
		src->used_ms += mono_ms() - t0;
		if (rc != SQLITE_ROW)
			break;
		row = value_map();

		columns_load(cs);
		for (int i = 0; i < cs->ncols; i++)
			value_map_set_keys(row, cs->cols[i].path,
			    cs->cols[i].nkeys, column_value(s, i));
		if ((r = cb(row, arg)) != FU_OK)
			break;
	}
	if (r == FU_OK && src->timed_out) {
		/* A query that never ends must not hang the tick (and the
		 * watchdog's restart straight into it): stopped, and tried
		 * again at the next tick, as for a busy desk. */
		set_err(err, "%s: query stopped after %lld s ([source] "
		    "query_timeout); tried again at the next tick", src->path,
		    (src->timeout_ms + 999) / 1000);
		r = FU_TEMPFAIL;
	} else if (r == FU_OK && rc != SQLITE_DONE) {
		db_err(err, src->path, src->db, rc);
		r = sqlerr_result(rc);
	}
	sqlite3_reset(s);
	return r;
}

void
source_set_query_timeout(struct source *src, int ms)
{
	src->timeout_ms = ms;
}

int
source_timed_out(const struct source *src)
{
	return src->timed_out;
}

int
source_check_query(struct source *src, const char *sql,
    const char *const *required, char **err)
{
	sqlite3_stmt *s;
	const char *tail;
	int rc, r = FU_OK;

	rc = sqlite3_prepare_v2(src->db, sql, -1, &s, &tail);
	if (rc != SQLITE_OK) {
		set_err(err, "query does not prepare against %s: %s", src->path,
		    sqlite3_errmsg(src->db));
		return FU_PERMFAIL;
	}
	if (s == NULL) {
		set_err(err, "query is empty");
		return FU_PERMFAIL;
	}
	while (*tail && (isspace((unsigned char)*tail) || *tail == ';'))
		tail++;
	if (*tail) {
		set_err(err, "query must be a single SELECT statement; "
		    "found more after the first: '%.40s'", tail);
		r = FU_PERMFAIL;
	} else if (!sqlite3_stmt_readonly(s) ||
	    sqlite3_column_count(s) == 0) {
		set_err(err, "query must be a SELECT (it may not write)");
		r = FU_PERMFAIL;
	} else {
		for (; required && *required; required++) {
			int found = 0;

			for (int i = 0; i < sqlite3_column_count(s); i++)
				if (strcmp(sqlite3_column_name(s, i),
				    *required) == 0)
					found = 1;
			if (!found) {
				set_err(err, "query returns no column named "
				    "'%s' (add: ... AS \"%s\")", *required,
				    *required);
				r = FU_PERMFAIL;
				break;
			}
		}
	}
	sqlite3_finalize(s);
	return r;
}

int
source_has_table(struct source *src, const char *table)
{
	sqlite3_stmt *s;
	int yes;

	/* Render asks for every message: a table found in the cached schema
	 * costs no statement to prepare; views still take the query. */
	if (sqlite3_table_column_metadata(src->db, "main", table, NULL, NULL,
	    NULL, NULL, NULL, NULL) == SQLITE_OK)
		return 1;
	if (sqlite3_prepare_v2(src->db, "SELECT 1 FROM sqlite_schema WHERE "
	    "type IN ('table', 'view') AND name = ?", -1, &s, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_text(s, 1, table, -1, SQLITE_STATIC);
	yes = sqlite3_step(s) == SQLITE_ROW;
	sqlite3_finalize(s);
	return yes;
}

int
source_has_column(struct source *src, const char *table, const char *column)
{
	return sqlite3_table_column_metadata(src->db, "main", table, column,
	    NULL, NULL, NULL, NULL, NULL) == SQLITE_OK;
}

/*
 * One read transaction over many statements: SQLite then takes and checks
 * the shared lock once, not per statement (a fifth of the rendering time).
 * Readers never block the desk's writers in WAL mode; in rollback mode
 * they delay a commit by as long as the transaction lasts, so callers keep
 * it to a page of work.
 */
int
source_read_begin(struct source *src, char **err)
{
	int rc = sqlite3_exec(src->db, "BEGIN", NULL, NULL, NULL);

	if (rc != SQLITE_OK) {
		db_err(err, src->path, src->db, rc);
		return sqlerr_result(rc);
	}
	return FU_OK;
}

void
source_read_end(struct source *src)
{
	if (!sqlite3_get_autocommit(src->db))
		(void)sqlite3_exec(src->db, "COMMIT", NULL, NULL, NULL);
}
