/* store: queue/state.db: schema and migrations, jobs and their decision history. */
#include "store.h"
#include "log.h"
#include "sqlerr.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

/*
 * Prepared statements live as long as the connection: parsing costs more
 * than running most of ours. A statement is keyed by the address of its SQL
 * text (a literal of this program) and checked against a copy of the text,
 * so SQL a caller built on the heap never finds another's statement. After
 * each use it is reset and its bindings cleared (a reset statement holds no
 * read snapshot); one already in use (a query run from a store_query
 * callback) is prepared again for that use only. The cache fills only
 * after store_open's migrations, is finalized in store_close, and SQLite
 * re-prepares a kept statement by itself when the schema changes.
 */
#define STMT_SLOTS	128	/* a power of two: about 50 distinct statements */
#define STMT_PROBE	8	/* slots looked at from a key's home */

struct stmt_slot {
	const char	*key;	/* the caller's SQL pointer */
	char		*text;	/* its text when prepared */
	sqlite3_stmt	*s;
	int		 busy;
};

/* A statement from the cache (slot set) or prepared for one use. */
struct stmt {
	sqlite3_stmt		*s;
	struct stmt_slot	*slot;
};

struct store {
	sqlite3			*db;
	struct stmt_slot	 cache[STMT_SLOTS];
	struct store_cache_stats stats;
};

static const char *const state_names[JOB_NSTATES] = {
	[JOB_PLANNED] = "planned",
	[JOB_QUEUED] = "queued",
	[JOB_SENDING] = "sending",
	[JOB_SENT] = "sent",
	[JOB_DEFERRED] = "deferred",
	[JOB_FAILED] = "failed",
	[JOB_CANCELLED] = "cancelled",
	[JOB_HELD] = "held",
	[JOB_BOUNCED] = "bounced",
};

/*
 * Migrations: entry i brings user_version from i to i + 1. Never edit an
 * entry once released; append a new one.
 */
/* The returned-mail table (issue 13): migration 6 and the current schema. */
#define BOUNCES_SCHEMA							\
	"CREATE TABLE bounces ("					\
	"  id INTEGER PRIMARY KEY,"					\
	"  at INTEGER NOT NULL,"					\
	"  job_id INTEGER,"						\
	"  address TEXT COLLATE NOCASE,"				\
	"  kind TEXT NOT NULL,"						\
	"  status TEXT,"						\
	"  reason TEXT,"						\
	"  matched_by TEXT,"						\
	"  decision TEXT NOT NULL,"					\
	"  source TEXT,"						\
	"  message_id TEXT);"						\
	"CREATE INDEX bounces_address ON bounces(address COLLATE NOCASE, at);" \
	"CREATE INDEX bounces_message_id ON bounces(message_id);"	\
	"CREATE INDEX bounces_kind ON bounces(kind, at);"		\
	"CREATE INDEX jobs_message_id ON jobs(message_id)"

static const char *const migrations[] = {
	/* 0 → 1: the first schema */
	"CREATE TABLE jobs ("
	"  id INTEGER PRIMARY KEY,"
	"  rule TEXT NOT NULL,"
	"  subject TEXT NOT NULL,"
	"  occurrence TEXT NOT NULL,"
	"  state TEXT NOT NULL,"
	"  due_at INTEGER NOT NULL,"
	"  next_attempt_at INTEGER,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  queued_at INTEGER,"
	"  sent_at INTEGER,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  recipient TEXT,"
	"  message_id TEXT,"
	"  spool_name TEXT,"
	"  reason TEXT,"
	"  last_reply TEXT,"
	"  UNIQUE (rule, subject, occurrence));"
	"CREATE INDEX jobs_state_due ON jobs(state, due_at);"
	"CREATE INDEX jobs_state_next ON jobs(state, next_attempt_at);"
	"CREATE TABLE events ("
	"  id INTEGER PRIMARY KEY,"
	"  job_id INTEGER NOT NULL,"
	"  at INTEGER NOT NULL,"
	"  event TEXT NOT NULL,"
	"  detail TEXT);"
	"CREATE INDEX events_job ON events(job_id, id);"
	"CREATE TABLE suppressions ("
	"  address TEXT PRIMARY KEY COLLATE NOCASE,"
	"  reason TEXT,"
	"  created_at INTEGER NOT NULL);"
	"CREATE TABLE optouts ("
	"  address TEXT NOT NULL COLLATE NOCASE,"
	"  class TEXT NOT NULL,"
	"  reason TEXT,"
	"  created_at INTEGER NOT NULL,"
	"  PRIMARY KEY (address, class));"
	"CREATE TABLE meta ("
	"  key TEXT PRIMARY KEY,"
	"  value TEXT);",
	/*
	 * 1 → 2: agent reminders (rules kind agent_reminder). `reminders` is
	 * the calendar item as last planned, one per (rule, ticket): its UID,
	 * SEQUENCE, attendee and times, so the next change knows what the
	 * agent's calendar holds. `reminder_messages` is the snapshot each
	 * REQUEST / CANCEL job is rendered from (a CANCEL goes to an agent the
	 * source may no longer name).
	 */
	"CREATE TABLE reminders ("
	"  rule TEXT NOT NULL,"
	"  subject TEXT NOT NULL,"
	"  uid TEXT NOT NULL,"
	"  sequence INTEGER NOT NULL,"
	"  active INTEGER NOT NULL,"
	"  agent TEXT,"
	"  agent_name TEXT,"
	"  tz TEXT NOT NULL,"
	"  at TEXT NOT NULL,"
	"  dtstart INTEGER NOT NULL,"
	"  dtend INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  PRIMARY KEY (rule, subject));"
	"CREATE TABLE reminder_messages ("
	"  job_id INTEGER PRIMARY KEY,"
	"  rule TEXT NOT NULL,"
	"  subject TEXT NOT NULL,"
	"  method TEXT NOT NULL,"
	"  uid TEXT NOT NULL,"
	"  sequence INTEGER NOT NULL,"
	"  agent TEXT NOT NULL,"
	"  agent_name TEXT,"
	"  tz TEXT NOT NULL,"
	"  dtstart INTEGER NOT NULL,"
	"  dtend INTEGER NOT NULL);"
	"CREATE INDEX reminder_messages_subject ON reminder_messages(rule, "
	"  subject, job_id);"
	/* The recipient's zone when planned: status shows local times. */
	"ALTER TABLE jobs ADD COLUMN tz TEXT;",
	/*
	 * 2 → 3: consent (issue 4). Each job's class (NULL: transactional, as
	 * every job before this version was), its recipient and customer as
	 * planned (`why` finds jobs never rendered), the personal codes given
	 * to jobs (one per job, unique per rule), and an index for the
	 * frequency caps (marketing messages per recipient in a window).
	 */
	"ALTER TABLE jobs ADD COLUMN class TEXT;"
	"ALTER TABLE jobs ADD COLUMN email TEXT;"
	"ALTER TABLE jobs ADD COLUMN customer TEXT;"
	"CREATE INDEX jobs_email ON jobs(email COLLATE NOCASE);"
	"CREATE INDEX jobs_recipient ON jobs(recipient COLLATE NOCASE, "
	"  queued_at);"
	"CREATE TABLE job_codes ("
	"  job_id INTEGER PRIMARY KEY,"
	"  rule TEXT NOT NULL,"
	"  subject TEXT NOT NULL,"
	"  code TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  UNIQUE (rule, code));",
	/*
	 * 3 → 4: jobs_email served no query (`why` looks addresses up as
	 * coalesce(recipient, email), which no index on email can answer)
	 * and its random order made it the dearest write of planning.
	 */
	"DROP INDEX IF EXISTS jobs_email;",
	/*
	 * 4 → 5: ratings (issue 12). rating_requests: the check-ins that
	 * carried rating links (the report's requests, the cool-down per
	 * recipient). ratings: one per job, the latest POST; handled_* is
	 * what the daemon last acted on (a call-back, a note), so a change
	 * is acted on once. No address, user agent or other trace of the
	 * rater is kept.
	 */
	"CREATE TABLE rating_requests ("
	"  job_id INTEGER PRIMARY KEY,"
	"  rule TEXT NOT NULL,"
	"  recipient TEXT NOT NULL COLLATE NOCASE,"
	"  scale TEXT NOT NULL,"
	"  agent TEXT,"
	"  agent_name TEXT,"
	"  agent_tz TEXT,"
	"  customer_name TEXT,"
	"  ticket_subject TEXT,"
	"  created_at INTEGER NOT NULL);"
	"CREATE INDEX rating_requests_recipient ON rating_requests(recipient, "
	"  created_at);"
	"CREATE TABLE ratings ("
	"  job_id INTEGER PRIMARY KEY,"
	"  scale TEXT NOT NULL,"
	"  score INTEGER NOT NULL,"
	"  comment TEXT,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  handled_at INTEGER);",
	/*
	 * 5 → 6: returned mail (issue 13). One row per message handled by
	 * `followupd bounce`: what it was, the job it named (NULL: none),
	 * what was done, its own Message-ID (handled once). A job's
	 * Message-ID finds the job a bounce quotes.
	 */
	BOUNCES_SCHEMA ";",
};
#define STORE_VERSION	((int)(sizeof(migrations) / sizeof(migrations[0])))

/*
 * A new state.db is made at STORE_VERSION by this script in one step; the
 * migrations above are for databases made by older versions. The two must
 * give the same tables, columns (in the same order) and indexes: when
 * appending a migration, change this script to match (test_store compares
 * a fresh database with one migrated from version 1).
 */
static const char schema_current[] =
	"CREATE TABLE jobs ("
	"  id INTEGER PRIMARY KEY,"
	"  rule TEXT NOT NULL,"
	"  subject TEXT NOT NULL,"
	"  occurrence TEXT NOT NULL,"
	"  state TEXT NOT NULL,"
	"  due_at INTEGER NOT NULL,"
	"  next_attempt_at INTEGER,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  queued_at INTEGER,"
	"  sent_at INTEGER,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  recipient TEXT,"
	"  message_id TEXT,"
	"  spool_name TEXT,"
	"  reason TEXT,"
	"  last_reply TEXT,"
	"  tz TEXT,"		/* the recipient's zone when planned */
	"  class TEXT,"		/* consent class; NULL: transactional */
	"  email TEXT,"		/* recipient as planned */
	"  customer TEXT,"	/* customer as planned */
	"  UNIQUE (rule, subject, occurrence));"
	"CREATE INDEX jobs_state_due ON jobs(state, due_at);"
	"CREATE INDEX jobs_state_next ON jobs(state, next_attempt_at);"
	"CREATE INDEX jobs_recipient ON jobs(recipient COLLATE NOCASE, "
	"  queued_at);"
	"CREATE TABLE events ("
	"  id INTEGER PRIMARY KEY,"
	"  job_id INTEGER NOT NULL,"
	"  at INTEGER NOT NULL,"
	"  event TEXT NOT NULL,"
	"  detail TEXT);"
	"CREATE INDEX events_job ON events(job_id, id);"
	"CREATE TABLE suppressions ("
	"  address TEXT PRIMARY KEY COLLATE NOCASE,"
	"  reason TEXT,"
	"  created_at INTEGER NOT NULL);"
	"CREATE TABLE optouts ("
	"  address TEXT NOT NULL COLLATE NOCASE,"
	"  class TEXT NOT NULL,"
	"  reason TEXT,"
	"  created_at INTEGER NOT NULL,"
	"  PRIMARY KEY (address, class));"
	"CREATE TABLE meta ("
	"  key TEXT PRIMARY KEY,"
	"  value TEXT);"
	"CREATE TABLE reminders ("
	"  rule TEXT NOT NULL,"
	"  subject TEXT NOT NULL,"
	"  uid TEXT NOT NULL,"
	"  sequence INTEGER NOT NULL,"
	"  active INTEGER NOT NULL,"
	"  agent TEXT,"
	"  agent_name TEXT,"
	"  tz TEXT NOT NULL,"
	"  at TEXT NOT NULL,"
	"  dtstart INTEGER NOT NULL,"
	"  dtend INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  PRIMARY KEY (rule, subject));"
	"CREATE TABLE reminder_messages ("
	"  job_id INTEGER PRIMARY KEY,"
	"  rule TEXT NOT NULL,"
	"  subject TEXT NOT NULL,"
	"  method TEXT NOT NULL,"
	"  uid TEXT NOT NULL,"
	"  sequence INTEGER NOT NULL,"
	"  agent TEXT NOT NULL,"
	"  agent_name TEXT,"
	"  tz TEXT NOT NULL,"
	"  dtstart INTEGER NOT NULL,"
	"  dtend INTEGER NOT NULL);"
	"CREATE INDEX reminder_messages_subject ON reminder_messages(rule, "
	"  subject, job_id);"
	"CREATE TABLE job_codes ("
	"  job_id INTEGER PRIMARY KEY,"
	"  rule TEXT NOT NULL,"
	"  subject TEXT NOT NULL,"
	"  code TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  UNIQUE (rule, code));"
	/* schema 5: ratings (issue 12) */
	"CREATE TABLE rating_requests ("
	"  job_id INTEGER PRIMARY KEY,"
	"  rule TEXT NOT NULL,"
	"  recipient TEXT NOT NULL COLLATE NOCASE,"
	"  scale TEXT NOT NULL,"
	"  agent TEXT,"
	"  agent_name TEXT,"
	"  agent_tz TEXT,"
	"  customer_name TEXT,"
	"  ticket_subject TEXT,"
	"  created_at INTEGER NOT NULL);"
	"CREATE INDEX rating_requests_recipient ON rating_requests(recipient, "
	"  created_at);"
	"CREATE TABLE ratings ("
	"  job_id INTEGER PRIMARY KEY,"
	"  scale TEXT NOT NULL,"
	"  score INTEGER NOT NULL,"
	"  comment TEXT,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  handled_at INTEGER);"
	/* schema 6: returned mail (issue 13) */
	BOUNCES_SCHEMA;

const char *
store_state_name(enum job_state s)
{
	return (unsigned)s < JOB_NSTATES ? state_names[s] : "?";
}

int
store_state_parse(const char *s, enum job_state *out)
{
	for (int i = 0; i < JOB_NSTATES; i++)
		if (strcmp(s, state_names[i]) == 0) {
			*out = (enum job_state)i;
			return FU_OK;
		}
	return FU_PERMFAIL;
}

static int
db_fail(struct store *st, int rc, const char *what, char **err)
{
	set_err(err, "state.db: %s: %s", what, sqlite3_errmsg(st->db));
	return sqlerr_result(rc);
}

static int
exec_sql(struct store *st, const char *sql, char **err)
{
	char *msg = NULL;
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		set_err(err, "state.db: %s", msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return sqlerr_result(rc);
	}
	return FU_OK;
}

/*
 * The statement for sql: the kept one, or one prepared now and kept when a
 * slot near its home is free or idle.
 */
static int
stmt_get(struct store *st, const char *sql, struct stmt *h, char **err)
{
	size_t home = (size_t)(((uint64_t)(uintptr_t)sql *
	    UINT64_C(0x9E3779B97F4A7C15)) >> 40);
	struct stmt_slot *use = NULL;
	int rc, keep = 1;

	h->s = NULL;
	h->slot = NULL;
	for (int i = 0; i < STMT_PROBE; i++) {
		struct stmt_slot *sl = &st->cache[(home + i) & (STMT_SLOTS - 1)];

		if (sl->key == sql) {
			if (strcmp(sl->text, sql) != 0) {
				if (!sl->busy) {
					use = sl;	/* stale: same address, new text */
					break;
				}
			} else if (!sl->busy) {
				sl->busy = 1;
				h->s = sl->s;
				h->slot = sl;
				st->stats.reused++;
				return FU_OK;
			} else {
				keep = 0;	/* nested use of the same query */
				break;
			}
		}
		if (sl->s == NULL) {
			if (use == NULL || use->s != NULL)
				use = sl;
		} else if (!sl->busy && use == NULL)
			use = sl;
	}
	if (use == NULL)
		keep = 0;
	if ((rc = sqlite3_prepare_v3(st->db, sql, -1, keep ?
	    SQLITE_PREPARE_PERSISTENT : 0, &h->s, NULL)) != SQLITE_OK) {
		h->s = NULL;
		return db_fail(st, rc, "prepare", err);
	}
	st->stats.prepared++;
	if (!keep || h->s == NULL)	/* NULL: no statement in the text */
		return FU_OK;
	if (use->s != NULL) {
		sqlite3_finalize(use->s);
		free(use->text);
		st->stats.cached--;
	}
	use->key = sql;
	use->text = xstrdup(sql);
	use->s = h->s;
	use->busy = 1;
	h->slot = use;
	st->stats.cached++;
	return FU_OK;
}

/* Done with a statement: a cached one is reset for the next use. */
static void
stmt_done(struct stmt *h)
{
	if (h->slot != NULL) {
		sqlite3_reset(h->s);
		sqlite3_clear_bindings(h->s);
		h->slot->busy = 0;
	} else
		sqlite3_finalize(h->s);
	h->s = NULL;
	h->slot = NULL;
}

static void
cache_clear(struct store *st)
{
	for (int i = 0; i < STMT_SLOTS; i++) {
		struct stmt_slot *sl = &st->cache[i];

		sqlite3_finalize(sl->s);
		free(sl->text);
		memset(sl, 0, sizeof(*sl));
	}
	st->stats.cached = 0;
}

/* Run a statement of this file that returns no rows, e.g. BEGIN. */
static int
exec_cached(struct store *st, const char *sql, char **err)
{
	struct stmt h;
	int r, rc;

	if ((r = stmt_get(st, sql, &h, err)) != FU_OK)
		return r;
	rc = sqlite3_step(h.s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		/* The words sqlite3_exec gave before the cache. */
		set_err(err, "state.db: %s", sqlite3_errmsg(st->db));
		r = sqlerr_result(rc);
	}
	stmt_done(&h);
	return r;
}

static int
user_version(struct store *st, int *v, char **err)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s,
	    NULL)) != SQLITE_OK)
		return db_fail(st, rc, "user_version", err);
	rc = sqlite3_step(s);
	*v = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW)
		return db_fail(st, rc, "user_version", err);
	return FU_OK;
}

/* 1 when the database has no schema at all (a file just created). */
static int
is_empty(struct store *st, int *empty, char **err)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = sqlite3_prepare_v2(st->db, "SELECT count(*) FROM "
	    "sqlite_master", -1, &s, NULL)) != SQLITE_OK)
		return db_fail(st, rc, "schema", err);
	rc = sqlite3_step(s);
	*empty = rc == SQLITE_ROW && sqlite3_column_int(s, 0) == 0;
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW)
		return db_fail(st, rc, "schema", err);
	return FU_OK;
}

static int
set_version(struct store *st, int v, char **err)
{
	char pragma[64];

	snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v);
	return exec_sql(st, pragma, err);
}

/*
 * In one transaction: a new database gets the current schema at once, an
 * older one each migration from its version on.
 */
static int
migrate(struct store *st, const char *path, char **err)
{
	int v, r, empty;

	if ((r = exec_sql(st, "BEGIN IMMEDIATE", err)) != FU_OK)
		return r;
	if ((r = user_version(st, &v, err)) != FU_OK ||
	    (r = is_empty(st, &empty, err)) != FU_OK)
		goto fail;
	if (v > STORE_VERSION) {
		set_err(err, "%s: schema version %d is newer than this "
		    "followupd knows (%d): run the newer version", path, v,
		    STORE_VERSION);
		r = FU_PERMFAIL;
		goto fail;
	}
	if (v == 0 && empty) {
		if ((r = exec_sql(st, schema_current, err)) != FU_OK ||
		    (r = set_version(st, STORE_VERSION, err)) != FU_OK)
			goto fail;
		log_debug("store: %s created at schema version %d", path,
		    STORE_VERSION);
		return exec_sql(st, "COMMIT", err);
	}
	for (; v < STORE_VERSION; v++) {
		if ((r = exec_sql(st, migrations[v], err)) != FU_OK ||
		    (r = set_version(st, v + 1, err)) != FU_OK)
			goto fail;
		log_info("store: %s migrated to schema version %d", path, v + 1);
	}
	return exec_sql(st, "COMMIT", err);
fail:
	exec_sql(st, "ROLLBACK", NULL);
	return r;
}

char *
store_path(const char *queue_dir)
{
	return xasprintf("%s/state.db", queue_dir);
}

int
store_open(const char *path, int busy_timeout_ms, struct store **out,
    char **err)
{
	struct store *st = xcalloc(1, sizeof(*st));
	int rc, r;

	/* Created 0600 by us: SQLite gives -wal and -shm the same mode. */
	{
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

		if (fd == -1) {
			set_err(err, "%s: cannot create the state database: %s",
			    path, strerror(errno));
			free(st);
			return errno == EACCES || errno == EROFS ? FU_PERMFAIL :
			    FU_TEMPFAIL;
		}
		close(fd);
	}
	rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		set_err(err, "%s: cannot open state database: %s", path,
		    st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		r = sqlerr_result(rc);
		goto fail;
	}
	sqlite3_busy_timeout(st->db, busy_timeout_ms);
	/* WAL: readers (status) never block the daemon; NORMAL is durable
	 * enough in WAL mode across process crashes, FULL across power loss. */
	if ((r = exec_sql(st, "PRAGMA journal_mode = WAL", err)) != FU_OK ||
	    (r = exec_sql(st, "PRAGMA synchronous = FULL", err)) != FU_OK ||
	    (r = exec_sql(st, "PRAGMA foreign_keys = ON", err)) != FU_OK ||
	    /* 1 MB of page cache (SQLite's default is 2): the hot pages are
	     * the recent jobs and the indexes' upper levels; the rest comes
	     * from the kernel's cache. Part of the memory budget (bench). */
	    (r = exec_sql(st, "PRAGMA cache_size = -1024", err)) != FU_OK)
		goto fail;
	/* Before any statement is cached: they are prepared on the new schema. */
	if ((r = migrate(st, path, err)) != FU_OK)
		goto fail;
	*out = st;
	return FU_OK;
fail:
	sqlite3_close(st->db);
	free(st);
	return r;
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	cache_clear(st);
	/* Every other statement was finalized after its one use. */
	if (sqlite3_close(st->db) != SQLITE_OK)
		log_warnx("store: close: %s", sqlite3_errmsg(st->db));
	free(st);
}

void
store_cache_stats(const struct store *st, struct store_cache_stats *out)
{
	*out = st->stats;
}

int
store_begin(struct store *st, char **err)
{
	return exec_cached(st, "BEGIN IMMEDIATE", err);
}

int
store_commit(struct store *st, char **err)
{
	return exec_cached(st, "COMMIT", err);
}

void
store_rollback(struct store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		exec_cached(st, "ROLLBACK", NULL);
}

/*
 * The statement for sql with a list of parameters described by a format:
 * 't' text (const char *, NULL binds NULL), 'i' int64 (int64_t), 'T'
 * time_t. Texts are bound without a copy: they must outlive the step, and
 * stmt_done clears them.
 */
static int
prepare(struct store *st, struct stmt *h, const char *sql, char **err,
    const char *fmt, ...)
{
	va_list ap;
	int r, rc = SQLITE_OK, i = 1;

	if ((r = stmt_get(st, sql, h, err)) != FU_OK)
		return r;
	va_start(ap, fmt);
	for (const char *f = fmt; *f; f++, i++) {
		switch (*f) {
		case 't': {
			const char *v = va_arg(ap, const char *);
			rc = v ? sqlite3_bind_text(h->s, i, v, -1, SQLITE_STATIC)
			    : sqlite3_bind_null(h->s, i);
			break;
		}
		case 'i':
			rc = sqlite3_bind_int64(h->s, i, va_arg(ap, int64_t));
			break;
		case 'T':
			rc = sqlite3_bind_int64(h->s, i,
			    (sqlite3_int64)va_arg(ap, time_t));
			break;
		default:
			fatalx("store: bad bind format %c", *f);
		}
		if (rc != SQLITE_OK)
			break;
	}
	va_end(ap);
	if (rc != SQLITE_OK) {
		r = db_fail(st, rc, "bind", err);
		stmt_done(h);
		return r;
	}
	return FU_OK;
}

/* Run a statement that returns no rows; *changes gets the row count. */
static int
run(struct store *st, struct stmt *h, int *changes, char **err)
{
	int rc = sqlite3_step(h->s), r = FU_OK;

	if (changes)
		*changes = 0;
	if (rc != SQLITE_DONE)
		r = db_fail(st, rc, "step", err);
	else if (changes)
		*changes = sqlite3_changes(st->db);
	stmt_done(h);
	return r;
}

/* One row at most: *yes is 1 when there is one. */
static int
exists(struct store *st, struct stmt *h, int *yes, const char *what,
    char **err)
{
	int rc = sqlite3_step(h->s), r = FU_OK;

	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = db_fail(st, rc, what, err);
	else
		*yes = rc == SQLITE_ROW;
	stmt_done(h);
	return r;
}

int
store_event(struct store *st, int64_t job_id, time_t now, const char *event,
    const char *detail, char **err)
{
	struct stmt h;
	int r;

	if ((r = prepare(st, &h, "INSERT INTO events (job_id, at, event, "
	    "detail) VALUES (?, ?, ?, ?)", err, "iTtt", job_id, now, event,
	    detail)) != FU_OK)
		return r;
	return run(st, &h, NULL, err);
}

int
store_job_plan(struct store *st, const char *rule, const char *subject,
    const char *occurrence, time_t due_at, time_t now, int *created,
    int64_t *id, char **err)
{
	static const struct job_note none;

	return store_job_plan_noted(st, rule, subject, occurrence, due_at, now,
	    &none, created, id, err);
}

int
store_job_plan_noted(struct store *st, const char *rule, const char *subject,
    const char *occurrence, time_t due_at, time_t now,
    const struct job_note *note, int *created, int64_t *id, char **err)
{
	struct stmt h;
	int r, n;

	if ((r = prepare(st, &h, "INSERT OR IGNORE INTO jobs (rule, subject, "
	    "occurrence, state, due_at, created_at, updated_at, tz, class, "
	    "email, customer) VALUES (?1, ?2, ?3, 'planned', ?4, ?5, ?5, ?6, "
	    "?7, NULLIF(?8, ''), NULLIF(?9, ''))", err, "tttTTtttt", rule,
	    subject, occurrence, due_at, now, note->tz, note->cls, note->email,
	    note->customer)) != FU_OK)
		return r;
	if ((r = run(st, &h, &n, err)) != FU_OK)
		return r;
	*created = n > 0;
	*id = n > 0 ? (int64_t)sqlite3_last_insert_rowid(st->db) : 0;
	if (*created)
		return store_event(st, *id, now, "planned", NULL, err);
	return FU_OK;
}

static char *
col_text(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	return t ? xstrdup((const char *)t) : NULL;
}

#define JOB_COLUMNS "id, rule, subject, occurrence, state, due_at, " \
	"next_attempt_at, created_at, queued_at, attempts, recipient, " \
	"message_id, spool_name, reason, last_reply, class"

static void
job_from_row(sqlite3_stmt *s, struct job *j)
{
	memset(j, 0, sizeof(*j));
	j->id = sqlite3_column_int64(s, 0);
	j->rule = col_text(s, 1);
	j->subject = col_text(s, 2);
	j->occurrence = col_text(s, 3);
	if (store_state_parse((const char *)sqlite3_column_text(s, 4),
	    &j->state) != FU_OK)
		j->state = JOB_FAILED;
	j->due_at = (time_t)sqlite3_column_int64(s, 5);
	j->next_attempt_at = (time_t)sqlite3_column_int64(s, 6);
	j->created_at = (time_t)sqlite3_column_int64(s, 7);
	j->queued_at = (time_t)sqlite3_column_int64(s, 8);
	j->attempts = sqlite3_column_int(s, 9);
	j->recipient = col_text(s, 10);
	j->message_id = col_text(s, 11);
	j->spool_name = col_text(s, 12);
	j->reason = col_text(s, 13);
	j->last_reply = col_text(s, 14);
	j->cls = col_text(s, 15);
}

void
store_job_clear(struct job *j)
{
	free(j->rule);
	free(j->subject);
	free(j->occurrence);
	free(j->recipient);
	free(j->message_id);
	free(j->spool_name);
	free(j->reason);
	free(j->last_reply);
	free(j->cls);
	free(j->envelope_from);
	memset(j, 0, sizeof(*j));
}

void
store_jobs_free(struct job *jobs, int n)
{
	for (int i = 0; i < n; i++)
		store_job_clear(&jobs[i]);
	free(jobs);
}

int
store_job_get(struct store *st, int64_t id, struct job *j, char **err)
{
	struct stmt h;
	int r, rc;

	if ((r = prepare(st, &h, "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?",
	    err, "i", id)) != FU_OK)
		return r;
	rc = sqlite3_step(h.s);
	if (rc == SQLITE_ROW)
		job_from_row(h.s, j);
	else if (rc == SQLITE_DONE) {
		set_err(err, "no job %lld", (long long)id);
		r = FU_PERMFAIL;
	} else
		r = db_fail(st, rc, "select job", err);
	stmt_done(&h);
	return r;
}

/* Every row of a prepared job SELECT into an allocated array; done with h. */
static int
collect_jobs(struct store *st, struct stmt *h, struct job **jobs, int *n,
    char **err)
{
	int rc, r = FU_OK, cap = 0;

	*jobs = NULL;
	*n = 0;
	while ((rc = sqlite3_step(h->s)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*jobs = xrealloc(*jobs, (size_t)cap * sizeof(**jobs));
		}
		job_from_row(h->s, &(*jobs)[(*n)++]);
	}
	if (rc != SQLITE_DONE) {
		r = db_fail(st, rc, "select jobs", err);
		store_jobs_free(*jobs, *n);
		*jobs = NULL;
		*n = 0;
	}
	stmt_done(h);
	return r;
}

int
store_jobs_due(struct store *st, enum job_state state, time_t now, int limit,
    struct job **jobs, int *n, char **err)
{
	const char *sql = state == JOB_PLANNED ?
	    "SELECT " JOB_COLUMNS " FROM jobs WHERE state = ? AND due_at <= ? "
	    "ORDER BY due_at, id LIMIT ?" :
	    "SELECT " JOB_COLUMNS " FROM jobs WHERE state = ? AND "
	    "next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?";
	struct stmt h;
	int r;

	if ((r = prepare(st, &h, sql, err, "tTi", store_state_name(state), now,
	    (int64_t)limit)) != FU_OK)
		return r;
	return collect_jobs(st, &h, jobs, n, err);
}

int
store_jobs_due_after(struct store *st, time_t now, time_t after_due,
    int64_t after_id, int limit, struct job **jobs, int *n, char **err)
{
	struct stmt h;
	int r;

	if ((r = prepare(st, &h, "SELECT " JOB_COLUMNS " FROM jobs WHERE "
	    "state = 'planned' AND due_at <= ? AND (due_at, id) > (?, ?) "
	    "ORDER BY due_at, id LIMIT ?", err, "TTii", now, after_due,
	    after_id, (int64_t)limit)) != FU_OK)
		return r;
	return collect_jobs(st, &h, jobs, n, err);
}

/*
 * Run one job's UPDATE (h) and record the event; the job must exist.
 * The UPDATEs spell a set of states as `state = 'a' OR state = 'b' ...`:
 * SQLite builds an ephemeral table for IN lists of more than two values
 * every time the statement runs, which costs more than the update.
 */
static int
transition(struct store *st, int64_t id, time_t now, const char *event,
    const char *detail, struct stmt *h, char **err)
{
	int r, n;

	if ((r = run(st, h, &n, err)) != FU_OK)
		return r;
	if (n == 0) {
		set_err(err, "job %lld: not found or not in a state that "
		    "allows '%s'", (long long)id, event);
		return FU_PERMFAIL;
	}
	return store_event(st, id, now, event, detail, err);
}

int
store_job_cancel(struct store *st, int64_t id, const char *reason,
    const char *detail, time_t now, char **err)
{
	struct stmt h;
	int r;

	if ((r = prepare(st, &h, "UPDATE jobs SET state = 'cancelled', "
	    "reason = ?, updated_at = ? WHERE id = ? AND (state = 'planned' OR "
	    "state = 'queued' OR state = 'deferred' OR state = 'failed' OR "
	    "state = 'held')", err, "tTi", reason,
	    now, id)) != FU_OK)
		return r;
	return transition(st, id, now, "cancelled",
	    detail ? detail : reason, &h, err);
}

int
store_job_queued(struct store *st, int64_t id, const char *recipient,
    const char *message_id, const char *spool_name, time_t now, char **err)
{
	struct stmt h;
	char detail[600];
	int r;

	if ((r = prepare(st, &h, "UPDATE jobs SET state = 'queued', "
	    "recipient = ?, message_id = ?, spool_name = ?, "
	    "next_attempt_at = ?4, queued_at = COALESCE(queued_at, ?4), "
	    "updated_at = ?4 WHERE id = ?5 AND state = 'planned'", err,
	    "tttTi", recipient, message_id, spool_name, now, id)) != FU_OK)
		return r;
	/* The event's detail as ever, 599 bytes at most. */
	snprintf(detail, sizeof(detail), "Message-ID <%s>, spool %s",
	    message_id, spool_name);
	return transition(st, id, now, "queued", detail, &h, err);
}

int
store_job_sending(struct store *st, int64_t id, time_t now, char **err)
{
	struct stmt h;
	int r, n;

	/* No event row: sending is transient and one row per attempt would
	 * double the write cost of delivery; the outcome is recorded. */
	if ((r = prepare(st, &h, "UPDATE jobs SET state = 'sending', "
	    "attempts = attempts + 1, updated_at = ? WHERE id = ? AND state "
	    "IN ('queued', 'deferred')", err, "Ti", now, id)) != FU_OK)
		return r;
	if ((r = run(st, &h, &n, err)) != FU_OK)
		return r;
	if (n == 0) {
		set_err(err, "job %lld: no longer queued", (long long)id);
		return FU_PERMFAIL;
	}
	return FU_OK;
}

int
store_job_sent(struct store *st, int64_t id, const char *reply, time_t now,
    char **err)
{
	struct stmt h;
	int r;

	if ((r = prepare(st, &h, "UPDATE jobs SET state = 'sent', "
	    "last_reply = ?1, sent_at = ?2, updated_at = ?2 WHERE id = ?3 AND "
	    "state = 'sending'", err, "tTi", reply, now, id)) != FU_OK)
		return r;
	return transition(st, id, now, "sent", reply, &h, err);
}

int
store_job_deferred(struct store *st, int64_t id, const char *reply,
    time_t next_attempt, time_t now, char **err)
{
	struct stmt h;
	int r;

	if ((r = prepare(st, &h, "UPDATE jobs SET state = 'deferred', "
	    "last_reply = ?, next_attempt_at = ?, updated_at = ? WHERE id = ? "
	    "AND state = 'sending'", err, "tTTi", reply, next_attempt, now,
	    id)) != FU_OK)
		return r;
	return transition(st, id, now, "deferred", reply, &h, err);
}

int
store_job_failed(struct store *st, int64_t id, const char *reason,
    const char *reply, time_t now, char **err)
{
	struct stmt h;
	char detail[700];
	int r;

	if ((r = prepare(st, &h, "UPDATE jobs SET state = 'failed', "
	    "reason = ?, last_reply = COALESCE(?, last_reply), updated_at = ? "
	    "WHERE id = ? AND (state = 'planned' OR state = 'queued' OR state = "
	    "'sending' OR state = 'deferred')", err, "ttTi", reason, reply, now, id)) != FU_OK)
		return r;
	snprintf(detail, sizeof(detail), "%s%s%s", reason, reply ? ": " : "",
	    reply ? reply : "");
	return transition(st, id, now, "failed", detail, &h, err);
}

int
store_job_replan(struct store *st, int64_t id, const char *detail, time_t now,
    char **err)
{
	struct stmt h;
	int r;

	if ((r = prepare(st, &h, "UPDATE jobs SET state = 'planned', "
	    "spool_name = NULL, due_at = ?, updated_at = ? WHERE id = ? AND "
	    "(state = 'queued' OR state = 'deferred' OR state = 'sending')", err, "TTi", now, now,
	    id)) != FU_OK)
		return r;
	return transition(st, id, now, "replanned", detail, &h, err);
}

int
store_job_retry(struct store *st, int64_t id, time_t now, char **err)
{
	struct stmt h;
	int r;

	/*
	 * Due at the next tick, whatever that tick's clock says (0, not now:
	 * `once --now` may run in simulated time). A failed job whose message
	 * was never spooled goes back to planned; the queue lifetime restarts.
	 */
	if ((r = prepare(st, &h, "UPDATE jobs SET state = CASE WHEN "
	    "spool_name IS NULL THEN 'planned' ELSE 'queued' END, "
	    "reason = NULL, next_attempt_at = 0, queued_at = CASE WHEN "
	    "spool_name IS NULL THEN NULL ELSE ? END, updated_at = ? "
	    "WHERE id = ? AND (state = 'queued' OR state = 'deferred' OR "
	    "state = 'failed' OR state = 'held')",
	    err, "TTi", now, now, id)) != FU_OK)
		return r;
	return transition(st, id, now, "retry", "by operator", &h, err);
}

int
store_job_hold(struct store *st, int64_t id, time_t now, char **err)
{
	struct stmt h;
	int r;

	if ((r = prepare(st, &h, "UPDATE jobs SET state = 'held', "
	    "updated_at = ? WHERE id = ? AND (state = 'planned' OR state = "
	    "'queued' OR state = 'deferred')", err, "Ti", now, id)) != FU_OK)
		return r;
	return transition(st, id, now, "held", "by operator", &h, err);
}

int
store_job_release(struct store *st, int64_t id, time_t now, char **err)
{
	struct stmt h;
	int r;

	/* The spool file says how far it got: a message exists → queued. */
	if ((r = prepare(st, &h, "UPDATE jobs SET state = CASE WHEN "
	    "spool_name IS NULL THEN 'planned' ELSE 'queued' END, "
	    "next_attempt_at = coalesce(next_attempt_at, 0), updated_at = ? "
	    "WHERE id = ? AND state = 'held'", err, "Ti", now, id)) != FU_OK)
		return r;
	return transition(st, id, now, "released", "by operator", &h, err);
}

int
store_recover_sending(struct store *st, time_t now, int hold, int *count,
    char **err)
{
	struct stmt h;
	int r;

	/*
	 * Found `sending` with no session in flight: the outcome is unknown.
	 * The [smtp] unknown_outcome policy decides, as for a reply that
	 * never came: queued again (same Message-ID) or held for an operator.
	 */
	*count = 0;
	if ((r = prepare(st, &h, "INSERT INTO events (job_id, at, event, "
	    "detail) SELECT id, ?, 'interrupted', ? FROM jobs WHERE state = "
	    "'sending'", err, "Tt", now, hold ? "found sending after an "
	    "interruption: outcome unknown, held (unknown_outcome = hold)" :
	    "found sending after an interruption: outcome unknown, sending "
	    "again with the same Message-ID")) != FU_OK)
		return r;
	if ((r = run(st, &h, NULL, err)) != FU_OK)
		return r;
	if ((r = prepare(st, &h, "UPDATE jobs SET state = ?, next_attempt_at = "
	    "?, updated_at = ? WHERE state = 'sending'", err, "tTT", hold ?
	    "held" : "queued", now, now)) != FU_OK)
		return r;
	return run(st, &h, count, err);
}

int
store_suppressed(struct store *st, const char *addr, int *yes, char **err)
{
	struct stmt h;
	int r;

	if ((r = prepare(st, &h, "SELECT 1 FROM suppressions WHERE address = ?",
	    err, "t", addr)) != FU_OK)
		return r;
	return exists(st, &h, yes, "suppressions", err);
}

int
store_suppress(struct store *st, const char *addr, const char *reason,
    time_t now, char **err)
{
	struct stmt h;
	int r;

	if ((r = prepare(st, &h, "INSERT OR REPLACE INTO suppressions "
	    "(address, reason, created_at) VALUES (?, ?, ?)", err, "ttT", addr,
	    reason, now)) != FU_OK)
		return r;
	return run(st, &h, NULL, err);
}

int
store_opted_out(struct store *st, const char *addr, const char *cls, int *yes,
    char **err)
{
	struct stmt h;
	int r;

	/* +class: the index finds the address; the classes are compared, not
	 * made into an ephemeral table on every run (see transition). */
	if ((r = prepare(st, &h, "SELECT 1 FROM optouts WHERE address = ?1 AND "
	    "+class IN (?2, 'all')", err, "tt", addr, cls)) != FU_OK)
		return r;
	return exists(st, &h, yes, "optouts", err);
}

int
store_meta_set(struct store *st, const char *key, const char *value,
    char **err)
{
	struct stmt h;
	int r;

	if ((r = prepare(st, &h, "INSERT OR REPLACE INTO meta (key, value) "
	    "VALUES (?, ?)", err, "tt", key, value)) != FU_OK)
		return r;
	return run(st, &h, NULL, err);
}

char *
store_meta_get(struct store *st, const char *key)
{
	struct stmt h;
	char *v = NULL;

	if (prepare(st, &h, "SELECT value FROM meta WHERE key = ?", NULL, "t",
	    key) != FU_OK)
		return NULL;
	if (sqlite3_step(h.s) == SQLITE_ROW)
		v = col_text(h.s, 0);
	stmt_done(&h);
	return v;
}

/* ---- agent reminders (schema 2) ---- */

void
store_reminder_clear(struct reminder *r)
{
	free(r->rule);
	free(r->subject);
	free(r->uid);
	free(r->agent);
	free(r->agent_name);
	free(r->tz);
	free(r->at);
	memset(r, 0, sizeof(*r));
}

void
store_reminders_free(struct reminder *r, int n)
{
	for (int i = 0; i < n; i++)
		store_reminder_clear(&r[i]);
	free(r);
}

#define REMINDER_COLUMNS "rule, subject, uid, sequence, active, agent, " \
	"agent_name, tz, at, dtstart, dtend"

static void
reminder_from_row(sqlite3_stmt *s, struct reminder *r)
{
	memset(r, 0, sizeof(*r));
	r->rule = col_text(s, 0);
	r->subject = col_text(s, 1);
	r->uid = col_text(s, 2);
	r->sequence = sqlite3_column_int(s, 3);
	r->active = sqlite3_column_int(s, 4);
	r->agent = col_text(s, 5);
	r->agent_name = col_text(s, 6);
	r->tz = col_text(s, 7);
	r->at = col_text(s, 8);
	r->dtstart = (time_t)sqlite3_column_int64(s, 9);
	r->dtend = (time_t)sqlite3_column_int64(s, 10);
}

int
store_reminder_get(struct store *st, const char *rule, const char *subject,
    struct reminder *r, int *found, char **err)
{
	struct stmt h;
	int rc, ret;

	*found = 0;
	if ((ret = prepare(st, &h, "SELECT " REMINDER_COLUMNS " FROM reminders "
	    "WHERE rule = ? AND subject = ?", err, "tt", rule, subject)) != FU_OK)
		return ret;
	rc = sqlite3_step(h.s);
	if (rc == SQLITE_ROW) {
		reminder_from_row(h.s, r);
		*found = 1;
	} else if (rc != SQLITE_DONE)
		ret = db_fail(st, rc, "select reminder", err);
	stmt_done(&h);
	return ret;
}

int
store_reminder_put(struct store *st, const struct reminder *r, time_t now,
    char **err)
{
	struct stmt h;
	int ret;

	if ((ret = prepare(st, &h, "INSERT OR REPLACE INTO reminders (rule, "
	    "subject, uid, sequence, active, agent, agent_name, tz, at, "
	    "dtstart, dtend, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
	    "?, ?)", err, "tttiittttTTT", r->rule, r->subject, r->uid,
	    (int64_t)r->sequence, (int64_t)r->active, r->agent, r->agent_name,
	    r->tz, r->at ? r->at : "", r->dtstart, r->dtend, now)) != FU_OK)
		return ret;
	return run(st, &h, NULL, err);
}

int
store_reminders_active(struct store *st, const char *rule, time_t end_after,
    struct reminder **out, int *n, char **err)
{
	struct stmt h;
	int rc, ret, cap = 0;

	*out = NULL;
	*n = 0;
	if ((ret = prepare(st, &h, "SELECT " REMINDER_COLUMNS " FROM reminders "
	    "WHERE active = 1 AND dtend > ? AND (?2 IS NULL OR rule = ?2) "
	    "ORDER BY agent, dtstart, rule, subject", err, "Tt", end_after,
	    rule)) != FU_OK)
		return ret;
	while ((rc = sqlite3_step(h.s)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*out = xrealloc(*out, (size_t)cap * sizeof(**out));
		}
		reminder_from_row(h.s, &(*out)[(*n)++]);
	}
	if (rc != SQLITE_DONE) {
		ret = db_fail(st, rc, "select reminders", err);
		store_reminders_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	stmt_done(&h);
	return ret;
}

int
store_reminder_message(struct store *st, const struct reminder *r,
    const char *method, const char *agent, const char *agent_name,
    time_t due, time_t now, int64_t *job_id, char **err)
{
	struct stmt h;
	char occurrence[300];
	int ret, created;

	/* One job per message: the occurrence names the version and method. */
	snprintf(occurrence, sizeof(occurrence), "seq %d %s %s", r->sequence,
	    method, agent);
	if ((ret = store_job_plan(st, r->rule, r->subject, occurrence, due, now,
	    &created, job_id, err)) != FU_OK)
		return ret;
	if (!created) {
		*job_id = 0;
		return FU_OK;
	}
	if ((ret = prepare(st, &h, "INSERT INTO reminder_messages (job_id, "
	    "rule, subject, method, uid, sequence, agent, agent_name, tz, "
	    "dtstart, dtend) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", err,
	    "ittttitttTT", *job_id, r->rule, r->subject, method, r->uid,
	    (int64_t)r->sequence, agent, agent_name, r->tz, r->dtstart,
	    r->dtend)) != FU_OK)
		return ret;
	return run(st, &h, NULL, err);
}

int
store_reminder_message_get(struct store *st, int64_t job_id,
    struct reminder *r, char **method, int *found, char **err)
{
	struct stmt h;
	int rc, ret;

	*found = 0;
	*method = NULL;
	if ((ret = prepare(st, &h, "SELECT rule, subject, uid, sequence, 1, "
	    "agent, agent_name, tz, '', dtstart, dtend, method FROM "
	    "reminder_messages WHERE job_id = ?", err, "i", job_id)) != FU_OK)
		return ret;
	rc = sqlite3_step(h.s);
	if (rc == SQLITE_ROW) {
		reminder_from_row(h.s, r);
		*method = col_text(h.s, 11);
		*found = 1;
	} else if (rc != SQLITE_DONE)
		ret = db_fail(st, rc, "select reminder message", err);
	stmt_done(&h);
	return ret;
}

int
store_reminder_supersede(struct store *st, const char *rule,
    const char *subject, time_t now, int *count, char **err)
{
	struct stmt h;
	int ret, n = 0;

	*count = 0;
	if ((ret = prepare(st, &h, "SELECT m.job_id FROM reminder_messages m "
	    "JOIN jobs j ON j.id = m.job_id WHERE m.rule = ? AND m.subject = ? "
	    "AND j.state = 'planned'", err, "tt", rule, subject)) != FU_OK)
		return ret;
	{
		int64_t ids[64];
		int rc;

		while ((rc = sqlite3_step(h.s)) == SQLITE_ROW && n < 64)
			ids[n++] = sqlite3_column_int64(h.s, 0);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			ret = db_fail(st, rc, "select planned reminder messages",
			    err);
			stmt_done(&h);
			return ret;
		}
		stmt_done(&h);
		for (int i = 0; i < n; i++)
			if ((ret = store_job_cancel(st, ids[i], "superseded",
			    "a newer version of the reminder replaces it", now,
			    err)) != FU_OK)
				return ret;
	}
	*count = n;
	return FU_OK;
}

int
store_reminder_delivered(struct store *st, const char *rule,
    const char *subject, const char *agent, int *yes, char **err)
{
	struct stmt h;
	int ret;

	if ((ret = prepare(st, &h, "SELECT 1 FROM reminder_messages m JOIN jobs "
	    "j ON j.id = m.job_id WHERE m.rule = ? AND m.subject = ? AND "
	    "m.agent = ? COLLATE NOCASE AND m.method = 'REQUEST' AND j.state "
	    "NOT IN ('planned', 'cancelled') LIMIT 1", err, "ttt", rule,
	    subject, agent)) != FU_OK)
		return ret;
	return exists(st, &h, yes, "select delivered reminders", err);
}

int
store_job_postpone(struct store *st, int64_t id, time_t due_at,
    const char *why, time_t now, char **err)
{
	struct stmt h;
	char detail[160];
	int ret;

	if ((ret = prepare(st, &h, "UPDATE jobs SET due_at = ?, updated_at = ? "
	    "WHERE id = ? AND state = 'planned'", err, "TTi", due_at, now,
	    id)) != FU_OK)
		return ret;
	snprintf(detail, sizeof(detail), "%s", why);
	return transition(st, id, now, "postponed", detail, &h, err);
}

int
store_job_set_tz(struct store *st, int64_t id, const char *tz, char **err)
{
	struct stmt h;
	int ret;

	if ((ret = prepare(st, &h, "UPDATE jobs SET tz = ? WHERE id = ?", err,
	    "ti", tz, id)) != FU_OK)
		return ret;
	return run(st, &h, NULL, err);
}

char *
store_job_tz(struct store *st, int64_t id)
{
	struct stmt h;
	char *v = NULL;

	if (prepare(st, &h, "SELECT tz FROM jobs WHERE id = ?", NULL, "i",
	    id) != FU_OK)
		return NULL;
	if (sqlite3_step(h.s) == SQLITE_ROW)
		v = col_text(h.s, 0);
	stmt_done(&h);
	return v;
}

/* ---- reading the queue: status, queue list/show, why, codes, metrics ---- */

const char *
store_cell(const struct store_table *t, int row, int col)
{
	return t->cells[row * t->ncols + col];
}

void
store_table_free(struct store_table *t)
{
	for (int i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

/* Every row of a prepared statement as text cells; done with h. */
static int
table_fill(struct store *st, struct stmt *h, struct store_table *t,
    char **err)
{
	int rc, r = FU_OK, cap = 0;

	memset(t, 0, sizeof(*t));
	t->ncols = sqlite3_column_count(h->s);
	while ((rc = sqlite3_step(h->s)) == SQLITE_ROW) {
		if (t->nrows == cap) {
			cap = cap ? cap * 2 : 8;
			t->cells = xrealloc(t->cells, (size_t)cap *
			    (size_t)t->ncols * sizeof(*t->cells));
		}
		for (int i = 0; i < t->ncols; i++)
			t->cells[t->nrows * t->ncols + i] = col_text(h->s, i);
		t->nrows++;
	}
	if (rc != SQLITE_DONE) {
		r = db_fail(st, rc, "query", err);
		store_table_free(t);
	}
	stmt_done(h);
	return r;
}

/* A statement with a format as for prepare, read into a table. */
static int
table_query(struct store *st, struct store_table *t, const char *sql,
    char **err, const char *fmt, ...)
{
	struct stmt h;
	va_list ap;
	int r;

	memset(t, 0, sizeof(*t));
	/* prepare is variadic; the few parameters used here are time_t. */
	va_start(ap, fmt);
	if (*fmt == '\0')
		r = prepare(st, &h, sql, err, "");
	else if (strcmp(fmt, "T") == 0)
		r = prepare(st, &h, sql, err, "T", va_arg(ap, time_t));
	else if (strcmp(fmt, "TT") == 0) {
		time_t a = va_arg(ap, time_t), b = va_arg(ap, time_t);

		r = prepare(st, &h, sql, err, "TT", a, b);
	} else
		fatalx("store: table_query format %s", fmt);
	va_end(ap);
	if (r != FU_OK)
		return r;
	return table_fill(st, &h, t, err);
}

/* When a job becomes due, and which jobs can: the one definition of "due". */
#define DUE_STATES	"state IN ('planned', 'queued', 'deferred')"
#define DUE_TIME	"CASE state WHEN 'planned' THEN due_at " \
			"ELSE next_attempt_at END"
#define DELIVER_STATES	"state IN ('queued', 'deferred')"
/* Messages spooled and not yet finished: what "oldest queued" measures. */
#define WAITING_STATES	"state IN ('queued', 'deferred', 'sending')"

static int
status_rules(struct store *st, const char *const *states, int nstates,
    struct store_table *t, char **err)
{
	struct buf sql = { 0 };
	struct stmt h;
	int r;

	buf_puts(&sql, "SELECT rule");
	for (int i = 0; i < nstates; i++)
		buf_printf(&sql, ", sum(state = '%s')", states[i]);
	buf_puts(&sql, " FROM jobs GROUP BY rule ORDER BY rule");
	if ((r = prepare(st, &h, sql.data, err, "")) == FU_OK)
		r = table_fill(st, &h, t, err);
	buf_free(&sql);
	return r;
}

int
store_status(struct store *st, time_t now, const char *const *states,
    int nstates, struct store_status *S, char **err)
{
	int r;

	memset(S, 0, sizeof(*S));
	r = status_rules(st, states, nstates, &S->rules, err);
	if (r == FU_OK)
		r = table_query(st, &S->reasons, "SELECT rule, state, reason, "
		    "count(*) FROM jobs WHERE reason IS NOT NULL GROUP BY rule, "
		    "state, reason ORDER BY rule, state, reason", err, "");
	if (r == FU_OK)
		r = table_query(st, &S->next, "SELECT id, rule, subject, state, "
		    "t, tz FROM (SELECT id, rule, subject, state, tz, " DUE_TIME
		    " AS t FROM jobs WHERE " DUE_STATES ") ORDER BY t, id LIMIT 1",
		    err, "");
	if (r == FU_OK)
		r = table_query(st, &S->deferred, "SELECT id, rule, subject, "
		    "attempts, next_attempt_at, last_reply, tz FROM jobs WHERE "
		    "state = 'deferred' ORDER BY next_attempt_at, id LIMIT 20",
		    err, "");
	if (r == FU_OK)
		r = table_query(st, &S->oldest, "SELECT id, rule, subject, "
		    "state, queued_at, max(?1 - queued_at, 0), tz FROM jobs WHERE "
		    WAITING_STATES " AND queued_at IS NOT NULL ORDER BY "
		    "queued_at, id LIMIT 1", err, "T", now);
	if (r == FU_OK)
		r = table_query(st, &S->recent, "SELECT "
		    "coalesce(sum(at >= ?1), 0), coalesce(sum(at >= ?2), 0), "
		    "(SELECT count(*) FROM events WHERE event IN "
		    "('unknown-outcome', 'interrupted')) FROM events "
		    "WHERE event = 'sent' AND at >= ?2", err, "TT", now - 3600,
		    now - 86400);
	if (r == FU_OK)
		r = table_query(st, &S->lasterr, "SELECT id, rule, subject, "
		    "state, updated_at, last_reply, tz FROM jobs WHERE state IN "
		    "('deferred', 'failed') AND last_reply IS NOT NULL ORDER BY "
		    "updated_at DESC, id DESC LIMIT 1", err, "");
	if (r != FU_OK)
		store_status_free(S);
	return r;
}

void
store_status_free(struct store_status *S)
{
	store_table_free(&S->rules);
	store_table_free(&S->reasons);
	store_table_free(&S->next);
	store_table_free(&S->deferred);
	store_table_free(&S->oldest);
	store_table_free(&S->recent);
	store_table_free(&S->lasterr);
}

int
store_jobs_list(struct store *st, const char *state, const char *rule,
    struct store_table *t, char **err)
{
	struct stmt h;
	int r;

	/* The filters are bound, never pasted; NULL matches every job. */
	if ((r = prepare(st, &h, "SELECT id, rule, subject, occurrence, state, "
	    "due_at, next_attempt_at, attempts, recipient, reason, last_reply, "
	    "CASE WHEN state IN ('queued', 'deferred') THEN next_attempt_at "
	    "ELSE due_at END, tz FROM jobs WHERE (?1 IS NULL OR state = ?1) "
	    "AND (?2 IS NULL OR rule = ?2) ORDER BY id", err, "tt", state,
	    rule)) != FU_OK)
		return r;
	return table_fill(st, &h, t, err);
}

int
store_job_ids(struct store *st, enum job_state state, int64_t **ids, int *n,
    char **err)
{
	struct stmt h;
	int r, rc, cap = 0;

	*ids = NULL;
	*n = 0;
	if ((r = prepare(st, &h, "SELECT id FROM jobs WHERE state = ? ORDER BY "
	    "id", err, "t", store_state_name(state))) != FU_OK)
		return r;
	while ((rc = sqlite3_step(h.s)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*ids = xrealloc(*ids, (size_t)cap * sizeof(**ids));
		}
		(*ids)[(*n)++] = sqlite3_column_int64(h.s, 0);
	}
	if (rc != SQLITE_DONE) {
		r = db_fail(st, rc, "select job ids", err);
		free(*ids);
		*ids = NULL;
		*n = 0;
	}
	stmt_done(&h);
	return r;
}

int
store_job_history(struct store *st, int64_t id, struct store_event **out,
    int *n, char **err)
{
	struct stmt h;
	int r, rc, cap = 0;

	*out = NULL;
	*n = 0;
	if ((r = prepare(st, &h, "SELECT at, event, detail FROM events WHERE "
	    "job_id = ? ORDER BY id", err, "i", id)) != FU_OK)
		return r;
	while ((rc = sqlite3_step(h.s)) == SQLITE_ROW) {
		struct store_event *e;

		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			*out = xrealloc(*out, (size_t)cap * sizeof(**out));
		}
		e = &(*out)[(*n)++];
		e->at = (time_t)sqlite3_column_int64(h.s, 0);
		e->event = col_text(h.s, 1);
		e->detail = col_text(h.s, 2);
	}
	if (rc != SQLITE_DONE) {
		r = db_fail(st, rc, "select events", err);
		store_events_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	stmt_done(&h);
	return r;
}

void
store_events_free(struct store_event *e, int n)
{
	for (int i = 0; i < n; i++) {
		free(e[i].event);
		free(e[i].detail);
	}
	free(e);
}

/* The first column of the one row a statement gives, as an integer. */
static int
scalar_int(struct store *st, struct stmt *h, long long *v, const char *what,
    char **err)
{
	int rc = sqlite3_step(h->s), r = FU_OK;

	*v = 0;
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int64(h->s, 0);	/* NULL reads as 0 */
	else if (rc != SQLITE_DONE)
		r = db_fail(st, rc, what, err);
	stmt_done(h);
	return r;
}

int
store_count_due(struct store *st, enum store_due kind, time_t now, long *n,
    char **err)
{
	struct stmt h;
	long long v;
	int r;

	*n = 0;
	if (kind == STORE_DUE_RENDER)
		r = prepare(st, &h, "SELECT count(*) FROM jobs WHERE state = "
		    "'planned' AND due_at <= ?", err, "T", now);
	else
		r = prepare(st, &h, "SELECT count(*) FROM jobs WHERE "
		    DELIVER_STATES " AND next_attempt_at <= ?", err, "T", now);
	if (r != FU_OK || (r = scalar_int(st, &h, &v, "count due jobs", err)) !=
	    FU_OK)
		return r;
	*n = (long)v;
	return FU_OK;
}

int
store_next_due(struct store *st, time_t *t, char **err)
{
	struct stmt h;
	long long v;
	int r;

	/* DUE_TIME over DUE_STATES, in a form each index answers. */
	*t = 0;
	if ((r = prepare(st, &h, "SELECT MIN(t) FROM (SELECT MIN(due_at) AS t "
	    "FROM jobs WHERE state = 'planned' UNION ALL SELECT "
	    "MIN(next_attempt_at) FROM jobs WHERE " DELIVER_STATES ")", err,
	    "")) != FU_OK ||
	    (r = scalar_int(st, &h, &v, "next due job", err)) != FU_OK)
		return r;
	*t = (time_t)v;
	return FU_OK;
}

int
store_count_state(struct store *st, enum job_state state, long *n,
    char **err)
{
	struct stmt h;
	long long v;
	int r;

	*n = 0;
	if ((r = prepare(st, &h, "SELECT count(*) FROM jobs WHERE state = ?",
	    err, "t", store_state_name(state))) != FU_OK ||
	    (r = scalar_int(st, &h, &v, "count jobs", err)) != FU_OK)
		return r;
	*n = (long)v;
	return FU_OK;
}

/* ---- consent: opt-outs, suppressions, frequency caps ---- */

int
store_optout_add(struct store *st, const char *addr, const char *cls,
    const char *reason, time_t now, int *added, char **err)
{
	struct stmt h;
	int r;

	if ((r = prepare(st, &h, "INSERT OR IGNORE INTO optouts (address, "
	    "class, reason, created_at) VALUES (?, ?, ?, ?)", err, "tttT", addr,
	    cls, reason, now)) != FU_OK)
		return r;
	return run(st, &h, added, err);
}

int
store_optout_remove(struct store *st, const char *addr, const char *cls,
    int *removed, char **err)
{
	struct stmt h;
	int r;

	if ((r = prepare(st, &h, "DELETE FROM optouts WHERE address = ?1 AND "
	    "(?2 IS NULL OR class = ?2)", err, "tt", addr, cls)) != FU_OK)
		return r;
	return run(st, &h, removed, err);
}

int
store_suppression_remove(struct store *st, const char *addr, int *removed,
    char **err)
{
	struct stmt h;
	int r;

	if ((r = prepare(st, &h, "DELETE FROM suppressions WHERE address = ?",
	    err, "t", addr)) != FU_OK)
		return r;
	return run(st, &h, removed, err);
}

/* Rows of (address, class, reason, created_at); done with h. */
static int
optouts_read(struct store *st, struct stmt *h, struct store_optout **out,
    int *n, char **err)
{
	int rc, r = FU_OK, cap = 0;

	*out = NULL;
	*n = 0;
	while ((rc = sqlite3_step(h->s)) == SQLITE_ROW) {
		struct store_optout *o;

		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			*out = xrealloc(*out, (size_t)cap * sizeof(**out));
		}
		o = &(*out)[(*n)++];
		o->addr = col_text(h->s, 0);
		o->cls = col_text(h->s, 1);
		o->reason = col_text(h->s, 2);
		o->since = (time_t)sqlite3_column_int64(h->s, 3);
	}
	if (rc != SQLITE_DONE) {
		r = db_fail(st, rc, "select opt-outs", err);
		store_optouts_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	stmt_done(h);
	return r;
}

int
store_optouts_list(struct store *st, struct store_optout **out, int *n,
    char **err)
{
	struct stmt h;
	int r;

	*out = NULL;
	*n = 0;
	if ((r = prepare(st, &h, "SELECT address, class, reason, created_at "
	    "FROM optouts UNION ALL SELECT address, 'suppressed', reason, "
	    "created_at FROM suppressions ORDER BY 1, 2", err, "")) != FU_OK)
		return r;
	return optouts_read(st, &h, out, n, err);
}

int
store_optouts_of(struct store *st, const char *addr,
    struct store_optout **out, int *n, char **err)
{
	struct stmt h;
	int r;

	*out = NULL;
	*n = 0;
	if ((r = prepare(st, &h, "SELECT address, class, reason, created_at "
	    "FROM optouts WHERE address = ?1 UNION ALL SELECT address, "
	    "'suppressed', reason, created_at FROM suppressions WHERE address "
	    "= ?1", err, "t", addr)) != FU_OK)
		return r;
	return optouts_read(st, &h, out, n, err);
}

void
store_optouts_free(struct store_optout *o, int n)
{
	for (int i = 0; i < n; i++) {
		free(o[i].addr);
		free(o[i].cls);
		free(o[i].reason);
	}
	free(o);
}

int
store_cap_count(struct store *st, const char *addr, const char *rule,
    time_t since, int *count, time_t *oldest, char **err)
{
	struct stmt h;
	int r, rc;

	*count = 0;
	*oldest = 0;
	if ((r = prepare(st, &h, "SELECT count(*), min(queued_at) FROM jobs "
	    "WHERE recipient = ?1 COLLATE NOCASE AND class = 'marketing' AND "
	    "state IN ('queued', 'sending', 'sent', 'deferred', 'held') AND "
	    "queued_at > ?2 AND (?3 IS NULL OR rule = ?3)", err, "tTt", addr,
	    since, rule)) != FU_OK)
		return r;
	if ((rc = sqlite3_step(h.s)) == SQLITE_ROW) {
		*count = sqlite3_column_int(h.s, 0);
		*oldest = (time_t)sqlite3_column_int64(h.s, 1);
	} else if (rc != SQLITE_DONE)
		r = db_fail(st, rc, "count capped messages", err);
	stmt_done(&h);
	return r;
}

int
store_why_jobs(struct store *st, const char *who, int byaddr,
    struct store_why_job **out, int *n, char **err)
{
	struct stmt h;
	int r, rc, cap = 0;

	*out = NULL;
	*n = 0;
	/* An address as rendered, else as planned (never rendered yet). */
	if ((r = prepare(st, &h, byaddr ?
	    "SELECT id, rule, subject, occurrence, state, reason, due_at, "
	    "coalesce(recipient, email), updated_at, last_reply, class FROM "
	    "jobs WHERE coalesce(recipient, email) = ?1 COLLATE NOCASE ORDER "
	    "BY id" :
	    "SELECT id, rule, subject, occurrence, state, reason, due_at, "
	    "coalesce(recipient, email), updated_at, last_reply, class FROM "
	    "jobs WHERE customer = ?1 ORDER BY id", err, "t", who)) != FU_OK)
		return r;
	while ((rc = sqlite3_step(h.s)) == SQLITE_ROW) {
		struct store_why_job *j;

		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			*out = xrealloc(*out, (size_t)cap * sizeof(**out));
		}
		j = &(*out)[(*n)++];
		j->id = sqlite3_column_int64(h.s, 0);
		j->rule = col_text(h.s, 1);
		j->subject = col_text(h.s, 2);
		j->occurrence = col_text(h.s, 3);
		j->state = col_text(h.s, 4);
		j->reason = col_text(h.s, 5);
		j->due_at = (time_t)sqlite3_column_int64(h.s, 6);
		j->addr = col_text(h.s, 7);
		j->updated_at = (time_t)sqlite3_column_int64(h.s, 8);
		j->last_reply = col_text(h.s, 9);
		j->cls = col_text(h.s, 10);
	}
	if (rc != SQLITE_DONE) {
		r = db_fail(st, rc, "select jobs", err);
		store_why_jobs_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	stmt_done(&h);
	return r;
}

void
store_why_jobs_free(struct store_why_job *j, int n)
{
	for (int i = 0; i < n; i++) {
		free(j[i].rule);
		free(j[i].subject);
		free(j[i].occurrence);
		free(j[i].state);
		free(j[i].reason);
		free(j[i].addr);
		free(j[i].last_reply);
		free(j[i].cls);
	}
	free(j);
}

/* ---- personal codes (job_codes) ---- */

/* The first column of at most one row as text (*v NULL: none); done with h. */
static int
scalar_text(struct store *st, struct stmt *h, char **v, const char *what,
    char **err)
{
	int rc = sqlite3_step(h->s), r = FU_OK;

	*v = NULL;
	if (rc == SQLITE_ROW)
		*v = col_text(h->s, 0);
	else if (rc != SQLITE_DONE)
		r = db_fail(st, rc, what, err);
	stmt_done(h);
	return r;
}

int
store_code_get(struct store *st, int64_t job_id, char **code, char **err)
{
	struct stmt h;
	int r;

	*code = NULL;
	if ((r = prepare(st, &h, "SELECT code FROM job_codes WHERE job_id = ?",
	    err, "i", job_id)) != FU_OK)
		return r;
	return scalar_text(st, &h, code, "select code", err);
}

int
store_code_taken(struct store *st, const char *rule, const char *code,
    int *taken, char **err)
{
	struct stmt h;
	int r;

	*taken = 0;
	if ((r = prepare(st, &h, "SELECT 1 FROM job_codes WHERE rule = ? AND "
	    "code = ?", err, "tt", rule, code)) != FU_OK)
		return r;
	return exists(st, &h, taken, "select code", err);
}

int
store_code_put(struct store *st, int64_t job_id, const char *rule,
    const char *subject, const char *code, time_t now, char **err)
{
	struct stmt h;
	int r;

	if ((r = prepare(st, &h, "INSERT INTO job_codes (job_id, rule, "
	    "subject, code, created_at) VALUES (?, ?, ?, ?, ?)", err, "itttT",
	    job_id, rule, subject, code, now)) != FU_OK)
		return r;
	return run(st, &h, NULL, err);
}

int
store_code_for_subject(struct store *st, const char *rule,
    const char *subject, char **code, char **err)
{
	struct stmt h;
	int r;

	*code = NULL;
	if ((r = prepare(st, &h, "SELECT code FROM job_codes WHERE rule = ? "
	    "AND subject = ? ORDER BY job_id DESC LIMIT 1", err, "tt", rule,
	    subject)) != FU_OK)
		return r;
	return scalar_text(st, &h, code, "select code", err);
}

int
store_codes_list(struct store *st, const char *rule, struct store_code **out,
    int *n, char **err)
{
	struct stmt h;
	int r, rc, cap = 0;

	*out = NULL;
	*n = 0;
	if ((r = prepare(st, &h, "SELECT c.code, c.subject, "
	    "coalesce(j.recipient, j.email), coalesce(j.state, 'removed'), "
	    "c.created_at FROM job_codes c LEFT JOIN jobs j ON j.id = c.job_id "
	    "WHERE c.rule = ? ORDER BY c.job_id", err, "t", rule)) != FU_OK)
		return r;
	while ((rc = sqlite3_step(h.s)) == SQLITE_ROW) {
		struct store_code *c;

		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*out = xrealloc(*out, (size_t)cap * sizeof(**out));
		}
		c = &(*out)[(*n)++];
		c->code = col_text(h.s, 0);
		c->subject = col_text(h.s, 1);
		c->recipient = col_text(h.s, 2);
		c->state = col_text(h.s, 3);
		c->issued_at = (time_t)sqlite3_column_int64(h.s, 4);
	}
	if (rc != SQLITE_DONE) {
		r = db_fail(st, rc, "select codes", err);
		store_codes_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	stmt_done(&h);
	return r;
}

void
store_codes_free(struct store_code *c, int n)
{
	for (int i = 0; i < n; i++) {
		free(c[i].code);
		free(c[i].subject);
		free(c[i].recipient);
		free(c[i].state);
	}
	free(c);
}

/* ---- metrics ---- */

static int
metrics_latency(struct store *st, const long *buckets, int nbuckets,
    struct store_table *t, char **err)
{
	struct buf sql = { 0 };
	struct stmt h;
	int r;

	buf_puts(&sql, "SELECT rule, count(*), coalesce(sum(l), 0)");
	for (int i = 0; i < nbuckets; i++)
		buf_printf(&sql, ", coalesce(sum(l <= %ld), 0)", buckets[i]);
	buf_puts(&sql, " FROM (SELECT rule, max(sent_at - due_at, 0) AS l "
	    "FROM jobs WHERE state = 'sent' AND sent_at IS NOT NULL) "
	    "GROUP BY rule ORDER BY rule");
	if ((r = prepare(st, &h, sql.data, err, "")) == FU_OK)
		r = table_fill(st, &h, t, err);
	buf_free(&sql);
	return r;
}

int
store_metrics(struct store *st, time_t now, const long *buckets,
    int nbuckets, struct store_metrics *m, char **err)
{
	struct stmt h;
	int r;

	memset(m, 0, sizeof(*m));
	r = table_query(st, &m->jobs, "SELECT rule, state, count(*) FROM jobs "
	    "GROUP BY rule, state ORDER BY rule, state", err, "");
	if (r == FU_OK)
		r = table_query(st, &m->outcomes, "SELECT j.rule, e.event, "
		    "count(*) FROM events e JOIN jobs j ON j.id = e.job_id WHERE "
		    "e.event IN ('sent', 'deferred', 'failed') GROUP BY j.rule, "
		    "e.event ORDER BY j.rule, e.event", err, "");
	if (r == FU_OK)
		r = metrics_latency(st, buckets, nbuckets, &m->latency, err);
	if (r == FU_OK && (r = prepare(st, &h, "SELECT max(? - min(queued_at), "
	    "0) FROM jobs WHERE " WAITING_STATES " AND queued_at IS NOT NULL",
	    err, "T", now)) == FU_OK)
		r = scalar_int(st, &h, &m->oldest_age, "oldest job", err);
	if (r == FU_OK && (r = prepare(st, &h, "SELECT strftime('%s', value) "
	    "FROM meta WHERE key = 'last_tick'", err, "")) == FU_OK)
		r = scalar_int(st, &h, &m->last_tick, "last tick", err);
	if (r == FU_OK)
		r = store_next_due(st, &m->next_due, err);
	if (r != FU_OK)
		store_metrics_free(m);
	return r;
}

void
store_metrics_free(struct store_metrics *m)
{
	store_table_free(&m->jobs);
	store_table_free(&m->outcomes);
	store_table_free(&m->latency);
}

/* ---- the spool's tidying at start-up (deliver.c) ---- */

int
store_spool_owner_state(struct store *st, int64_t id, const char *name,
    char state[16], char **err)
{
	struct stmt h;
	char *v = NULL;
	int r;

	/* By primary key when the name gives the job (spool_name has no
	 * index: a scan per file made start-up quadratic). */
	state[0] = '\0';
	if (id > 0)
		r = prepare(st, &h, "SELECT state FROM jobs WHERE id = ? AND "
		    "spool_name = ?", err, "it", id, name);
	else
		r = prepare(st, &h, "SELECT state FROM jobs WHERE spool_name = ? "
		    "ORDER BY id DESC LIMIT 1", err, "t", name);
	if (r != FU_OK || (r = scalar_text(st, &h, &v, "spool file's job",
	    err)) != FU_OK)
		return r;
	if (v != NULL)
		snprintf(state, 16, "%s", v);
	free(v);
	return FU_OK;
}

/* gate, render, deliver */

void
store_preview_code(const char *queue_dir, int busy_timeout_ms,
    const char *rule, const char *subject, char **code)
{
	char *path = store_path(queue_dir), *err = NULL;
	struct store *st;

	*code = NULL;
	if (access(path, F_OK) == 0 && store_open(path, busy_timeout_ms, &st,
	    &err) == FU_OK) {
		(void)store_code_for_subject(st, rule, subject, code, NULL);
		store_close(st);
	}
	free(err);
	free(path);
}

/* ==== ratings (issue 12): rating requests and ratings (schema 5) ==== */

void
store_rating_clear(struct store_rating *r)
{
	free(r->scale);
	free(r->comment);
	free(r->rule);
	free(r->subject);
	free(r->recipient);
	free(r->customer);
	free(r->agent);
	free(r->agent_name);
	free(r->agent_tz);
	free(r->customer_name);
	free(r->ticket_subject);
	memset(r, 0, sizeof(*r));
}

void
store_ratings_free(struct store_rating *r, int n)
{
	for (int i = 0; i < n; i++)
		store_rating_clear(&r[i]);
	free(r);
}

int
store_rating_request(struct store *st, const struct store_rating_ask *q,
    time_t now, char **err)
{
	struct stmt h;
	int r;

	if ((r = prepare(st, &h, "INSERT OR IGNORE INTO rating_requests "
	    "(job_id, rule, recipient, scale, agent, agent_name, agent_tz, "
	    "customer_name, ticket_subject, created_at) VALUES (?, ?, ?, ?, ?, "
	    "?, ?, ?, ?, ?)", err, "ittttttttT", q->job, q->rule,
	    q->recipient, q->scale, q->agent, q->agent_name, q->agent_tz,
	    q->customer_name, q->ticket_subject, now)) != FU_OK)
		return r;
	return run(st, &h, NULL, err);
}

int
store_rating_asked(struct store *st, const char *recipient, time_t since,
    int64_t except_job, int *yes, char **err)
{
	struct stmt h;
	int rc, r;

	*yes = 0;
	/* Requests are made at render time: a check-in cancelled or failed
	 * since never asked anyone. */
	if ((r = prepare(st, &h, "SELECT 1 FROM rating_requests q JOIN jobs j "
	    "ON j.id = q.job_id WHERE q.recipient = ? AND q.created_at >= ? AND "
	    "q.job_id <> ? AND j.state NOT IN ('cancelled', 'failed') LIMIT 1", err, "tTi", recipient, since, except_job)) !=
	    FU_OK)
		return r;
	rc = sqlite3_step(h.s);
	if (rc == SQLITE_ROW)
		*yes = 1;
	else if (rc != SQLITE_DONE)
		r = db_fail(st, rc, "rating requests", err);
	stmt_done(&h);
	return r;
}

#define RATING_COLUMNS "j.id, q.scale, r.score, r.comment, r.created_at, " \
	"r.updated_at, r.handled_at, j.rule, j.subject, " \
	"coalesce(j.recipient, j.email, q.recipient), j.customer, j.state, " \
	"coalesce(j.sent_at, j.queued_at), q.job_id IS NOT NULL, q.agent, " \
	"q.agent_name, q.agent_tz, q.customer_name, q.ticket_subject, " \
	"q.created_at"

static void
rating_from_row(sqlite3_stmt *s, struct store_rating *r)
{
	char *state;

	memset(r, 0, sizeof(*r));
	r->job = sqlite3_column_int64(s, 0);
	r->scale = col_text(s, 1);
	r->rated = sqlite3_column_type(s, 2) != SQLITE_NULL;
	r->score = sqlite3_column_int(s, 2);
	r->comment = col_text(s, 3);
	r->created_at = (time_t)sqlite3_column_int64(s, 4);
	r->updated_at = (time_t)sqlite3_column_int64(s, 5);
	r->handled = sqlite3_column_type(s, 6) != SQLITE_NULL;
	r->rule = col_text(s, 7);
	r->subject = col_text(s, 8);
	r->recipient = col_text(s, 9);
	r->customer = col_text(s, 10);
	state = col_text(s, 11);
	if (state == NULL || store_state_parse(state, &r->state) != FU_OK)
		r->state = JOB_PLANNED;
	free(state);
	r->sent_at = (time_t)sqlite3_column_int64(s, 12);
	r->requested = sqlite3_column_int(s, 13);
	r->agent = col_text(s, 14);
	r->agent_name = col_text(s, 15);
	r->agent_tz = col_text(s, 16);
	r->customer_name = col_text(s, 17);
	r->ticket_subject = col_text(s, 18);
	r->asked_at = (time_t)sqlite3_column_int64(s, 19);
}

int
store_rating_get(struct store *st, int64_t job, struct store_rating *r,
    int *found, char **err)
{
	struct stmt h;
	int rc, ret;

	*found = 0;
	memset(r, 0, sizeof(*r));
	if ((ret = prepare(st, &h, "SELECT " RATING_COLUMNS " FROM jobs j "
	    "LEFT JOIN rating_requests q ON q.job_id = j.id LEFT JOIN ratings r "
	    "ON r.job_id = j.id WHERE j.id = ?", err, "i", job)) != FU_OK)
		return ret;
	rc = sqlite3_step(h.s);
	if (rc == SQLITE_ROW) {
		rating_from_row(h.s, r);
		*found = 1;
	} else if (rc != SQLITE_DONE)
		ret = db_fail(st, rc, "select rating", err);
	stmt_done(&h);
	return ret;
}

int
store_rating_put(struct store *st, int64_t job, const char *scale, int score,
    const char *comment, time_t now, char **err)
{
	struct stmt h;
	char detail[64];
	int r;

	if ((r = prepare(st, &h, "INSERT INTO ratings (job_id, scale, score, "
	    "comment, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5) "
	    "ON CONFLICT (job_id) DO UPDATE SET scale = ?2, score = ?3, "
	    "comment = ?4, updated_at = ?5, handled_at = NULL", err, "ititT",
	    job, scale, (int64_t)score, comment && *comment ? comment : NULL,
	    now)) != FU_OK || (r = run(st, &h, NULL, err)) != FU_OK)
		return r;
	/* The comment stays out of the history: it is the customer's text. */
	snprintf(detail, sizeof(detail), "%s %d%s", scale, score, comment &&
	    *comment ? ", with a comment" : "");
	return store_event(st, job, now, "rated", detail, err);
}

/* A page of ratings rows; `sql` selects RATING_COLUMNS. */
static int
rating_rows(struct store *st, struct stmt *h, struct store_rating **out,
    int *n, char **err)
{
	int rc, cap = 0, ret = FU_OK;

	*out = NULL;
	*n = 0;
	while ((rc = sqlite3_step(h->s)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? 2 * cap : 16;
			*out = xrealloc(*out, (size_t)cap * sizeof(**out));
		}
		rating_from_row(h->s, &(*out)[(*n)++]);
	}
	if (rc != SQLITE_DONE) {
		ret = db_fail(st, rc, "select ratings", err);
		store_ratings_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	stmt_done(h);
	return ret;
}

int
store_ratings_since(struct store *st, time_t since, struct store_rating **out,
    int *n, char **err)
{
	struct stmt h;
	int r;

	if ((r = prepare(st, &h, "SELECT " RATING_COLUMNS " FROM "
	    "rating_requests q JOIN jobs j ON j.id = q.job_id LEFT JOIN ratings "
	    "r ON r.job_id = j.id WHERE q.created_at >= ? ORDER BY j.id", err,
	    "T", since)) != FU_OK)
		return r;
	return rating_rows(st, &h, out, n, err);
}

int
store_ratings_unhandled(struct store *st, struct store_rating **out, int *n,
    char **err)
{
	struct stmt h;
	int r;

	if ((r = prepare(st, &h, "SELECT " RATING_COLUMNS " FROM ratings r "
	    "JOIN jobs j ON j.id = r.job_id LEFT JOIN rating_requests q ON "
	    "q.job_id = j.id WHERE r.handled_at IS NULL ORDER BY r.updated_at, "
	    "j.id", err, "")) != FU_OK)
		return r;
	return rating_rows(st, &h, out, n, err);
}

int
store_rating_handled(struct store *st, int64_t job, time_t updated_at,
    time_t now, char **err)
{
	struct stmt h;
	int r;

	/* Only the version acted on: a POST since then is handled anew. */
	if ((r = prepare(st, &h, "UPDATE ratings SET handled_at = ? WHERE "
	    "job_id = ? AND updated_at = ?", err, "TiT", now, job,
	    updated_at)) != FU_OK)
		return r;
	return run(st, &h, NULL, err);
}
int
store_rating_totals(struct store *st, store_rating_total_cb cb, void *arg,
    char **err)
{
	struct stmt h;
	int rc, r;

	/* Each POST is a "rated" event ("csat 2[, with a comment]"): they
	 * only grow, as a Prometheus counter must, replacements included. */
	if ((r = prepare(st, &h, "SELECT j.rule, substr(e.detail, 1, "
	    "instr(e.detail || ',', ',') - 1) AS what, count(*) FROM events e "
	    "JOIN jobs j ON j.id = e.job_id WHERE e.event = 'rated' GROUP BY "
	    "j.rule, what ORDER BY j.rule, what", err, "")) != FU_OK)
		return r;
	while ((rc = sqlite3_step(h.s)) == SQLITE_ROW) {
		const char *rule = (const char *)sqlite3_column_text(h.s, 0);
		const char *what = (const char *)sqlite3_column_text(h.s, 1);
		const char *sp = what ? strchr(what, ' ') : NULL;
		char scale[16];

		if (rule == NULL || sp == NULL || (size_t)(sp - what) >=
		    sizeof(scale))
			continue;
		memcpy(scale, what, (size_t)(sp - what));
		scale[sp - what] = '\0';
		cb(rule, scale, atoi(sp + 1), sqlite3_column_int64(h.s, 2), arg);
	}
	if (rc != SQLITE_DONE)
		r = db_fail(st, rc, "rating totals", err);
	stmt_done(&h);
	return r;
}
/* ==== end of ratings ==== */

/* ---- bounces (issue 13) ---- */

int
store_job_bounced(struct store *st, int64_t id, const char *reason,
    const char *reply, time_t now, char **err)
{
	struct stmt h;
	char detail[700];
	int r;

	if ((r = prepare(st, &h, "UPDATE jobs SET state = 'bounced', "
	    "reason = ?, last_reply = COALESCE(?, last_reply), updated_at = ? "
	    "WHERE id = ? AND state = 'sent'", err, "ttTi", reason, reply, now,
	    id)) != FU_OK)
		return r;
	snprintf(detail, sizeof(detail), "%s%s%s", reason, reply ? ": " : "",
	    reply ? reply : "");
	return transition(st, id, now, "bounced", detail, &h, err);
}

int
store_job_by_message_id(struct store *st, const char *mid, int64_t *id,
    char **err)
{
	struct stmt h;
	int r, rc;

	*id = 0;
	if ((r = prepare(st, &h, "SELECT id FROM jobs WHERE message_id = ? "
	    "ORDER BY id LIMIT 1", err, "t", mid)) != FU_OK)
		return r;
	if ((rc = sqlite3_step(h.s)) == SQLITE_ROW)
		*id = sqlite3_column_int64(h.s, 0);
	else if (rc != SQLITE_DONE)
		r = db_fail(st, rc, "job by Message-ID", err);
	stmt_done(&h);
	return r;
}

int
store_bounce_add(struct store *st, const struct store_bounce *b, time_t now,
    int64_t *id, char **err)
{
	struct stmt h;
	int r;

	if ((r = prepare(st, &h, "INSERT INTO bounces (at, job_id, address, "
	    "kind, status, reason, matched_by, decision, source, message_id) "
	    "VALUES (?, NULLIF(?, 0), ?, ?, ?, ?, ?, ?, ?, ?)", err,
	    "Titttttttt", now, b->job_id, b->address, b->kind, b->status,
	    b->reason, b->matched_by, b->decision, b->source,
	    b->message_id)) != FU_OK)
		return r;
	if ((r = run(st, &h, NULL, err)) == FU_OK && id != NULL)
		*id = sqlite3_last_insert_rowid(st->db);
	return r;
}

int
store_bounce_decision(struct store *st, int64_t id, const char *decision,
    char **err)
{
	struct stmt h;
	int r;

	if ((r = prepare(st, &h, "UPDATE bounces SET decision = ? WHERE id = ?",
	    err, "ti", decision, id)) != FU_OK)
		return r;
	return run(st, &h, NULL, err);
}

int
store_bounce_seen(struct store *st, const char *message_id, int *yes,
    char **err)
{
	struct stmt h;
	int r;

	*yes = 0;
	if ((r = prepare(st, &h, "SELECT 1 FROM bounces WHERE message_id = ? "
	    "LIMIT 1", err, "t", message_id)) != FU_OK)
		return r;
	return exists(st, &h, yes, "bounces", err);
}

int
store_bounce_soft_count(struct store *st, const char *addr, time_t since,
    int *n, char **err)
{
	struct stmt h;
	int r, rc;

	*n = 0;
	if ((r = prepare(st, &h, "SELECT count(*) FROM bounces WHERE address = "
	    "? AND at >= ? AND kind = 'soft' AND job_id IS NOT NULL", err, "tT",
	    addr, since)) != FU_OK)
		return r;
	if ((rc = sqlite3_step(h.s)) == SQLITE_ROW)
		*n = sqlite3_column_int(h.s, 0);
	else
		r = db_fail(st, rc, "soft bounces", err);
	stmt_done(&h);
	return r;
}

int
store_bounce_count(struct store *st, const char *kind, time_t since,
    long *total, long *matched, char **err)
{
	struct stmt h;
	int r, rc;

	*total = *matched = 0;
	if ((r = prepare(st, &h, "SELECT count(*), count(job_id) FROM bounces "
	    "WHERE kind = ? AND at >= ?", err, "tT", kind, since)) != FU_OK)
		return r;
	if ((rc = sqlite3_step(h.s)) == SQLITE_ROW) {
		*total = (long)sqlite3_column_int64(h.s, 0);
		*matched = (long)sqlite3_column_int64(h.s, 1);
	} else
		r = db_fail(st, rc, "bounce counts", err);
	stmt_done(&h);
	return r;
}
