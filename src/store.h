/* store: queue/state.db: schema and migrations, jobs and their decision history. */
#ifndef FOLLOWUPD_STORE_H
#define FOLLOWUPD_STORE_H

#include <stdint.h>
#include <time.h>

#include "util.h"

/*
 * Job states (DESIGN.md): planned → queued → sending → sent | deferred → … |
 * failed | cancelled; sent → bounced when the message comes back later.
 * The text form is what state.db stores.
 */
enum job_state {
	JOB_PLANNED,
	JOB_QUEUED,
	JOB_SENDING,
	JOB_SENT,
	JOB_DEFERRED,
	JOB_FAILED,
	JOB_CANCELLED,
	JOB_HELD,	/* put aside by the operator (queue hold) until released */
	JOB_BOUNCED,	/* sent, then returned by the receiver (a hard bounce) */
	JOB_NSTATES
};

const char	*store_state_name(enum job_state);
int		 store_state_parse(const char *, enum job_state *);

struct job {
	int64_t		 id;
	char		*rule;
	char		*subject;	/* the source row's key, e.g. ticket id */
	char		*occurrence;	/* e.g. resolved_at as the source stores it */
	enum job_state	 state;
	time_t		 due_at;
	time_t		 next_attempt_at;
	time_t		 created_at;
	time_t		 queued_at;	/* first time queued: start of queue lifetime */
	int		 attempts;
	char		*recipient;	/* NULL until rendered */
	char		*message_id;	/* NULL until rendered; kept across retries */
	char		*spool_name;
	char		*reason;
	char		*last_reply;
	char		*cls;		/* consent class noted at planning (NULL: older job) */
	char		*envelope_from;	/* deliver: its VERP return path (not stored) */
};

void	store_job_clear(struct job *);		/* frees the strings */

struct store;

/* The path of a queue's state database: QUEUE_DIR/state.db (caller frees). */
char	*store_path(const char *queue_dir);

/*
 * Open or create the state database: WAL, busy_timeout, foreign keys,
 * schema migrations by PRAGMA user_version. FU_TEMPFAIL when busy or on
 * I/O errors, FU_PERMFAIL when the file is not a followupd state database or
 * comes from a newer version.
 */
int	store_open(const char *path, int busy_timeout_ms, struct store **,
	    char **err);
void	store_close(struct store *);

/*
 * The connection keeps its prepared statements (finalized by store_close).
 * prepared: statements parsed; reused: calls that took a kept one; cached:
 * statements kept now. For tests and profiling.
 */
struct store_cache_stats {
	long	prepared;
	long	reused;
	int	cached;
};
void	store_cache_stats(const struct store *, struct store_cache_stats *);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. */
int	store_begin(struct store *, char **err);
int	store_commit(struct store *, char **err);
void	store_rollback(struct store *);

/*
 * Insert a planned job unless (rule, subject, occurrence) exists. *created
 * is 1 when a job was inserted (its id in *id), 0 when it already existed.
 */
int	store_job_plan(struct store *, const char *rule, const char *subject,
	    const char *occurrence, time_t due_at, time_t now, int *created,
	    int64_t *id, char **err);

/*
 * store_job_plan for planning proper: a new job's row gets at once what
 * planning notes of it (schema 3): the recipient's IANA zone, the consent
 * class, the email and customer as planned. Any may be NULL; "" for email
 * or customer is stored as NULL. Jobs that exist are left as they are.
 */
struct job_note {
	const char	*tz;
	const char	*cls;
	const char	*email;
	const char	*customer;
};
int	store_job_plan_noted(struct store *, const char *rule,
	    const char *subject, const char *occurrence, time_t due_at,
	    time_t now, const struct job_note *, int *created, int64_t *id,
	    char **err);

/* Fetch one job by id. FU_PERMFAIL when absent. */
int	store_job_get(struct store *, int64_t id, struct job *, char **err);

/*
 * Jobs in `state` that are due: planned by due_at <= now, queued/deferred by
 * next_attempt_at <= now; at most `limit`, oldest first. *jobs is an
 * allocated array of *n jobs; free with store_jobs_free.
 */
int	store_jobs_due(struct store *, enum job_state, time_t now, int limit,
	    struct job **jobs, int *n, char **err);
void	store_jobs_free(struct job *, int n);
/*
 * Planned jobs due at `now` that come after (after_due, after_id) in
 * (due_at, id) order: store_jobs_due with a cursor, so a caller walking a
 * large backlog in pages never sees a job it left planned twice.
 */
int	store_jobs_due_after(struct store *, time_t now, time_t after_due,
	    int64_t after_id, int limit, struct job **jobs, int *n,
	    char **err);

/* Transitions. Each records an event with `detail` (may be NULL). */
int	store_job_cancel(struct store *, int64_t id, const char *reason,
	    const char *detail, time_t now, char **err);
int	store_job_queued(struct store *, int64_t id, const char *recipient,
	    const char *message_id, const char *spool_name, time_t now,
	    char **err);
int	store_job_sending(struct store *, int64_t id, time_t now, char **err);
int	store_job_sent(struct store *, int64_t id, const char *reply,
	    time_t now, char **err);
int	store_job_deferred(struct store *, int64_t id, const char *reply,
	    time_t next_attempt, time_t now, char **err);
int	store_job_failed(struct store *, int64_t id, const char *reason,
	    const char *reply, time_t now, char **err);
/*
 * The spooled message is missing or unreadable: render it again (the job
 * keeps its Message-ID). queued/deferred/sending → planned, due now.
 */
int	store_job_replan(struct store *, int64_t id, const char *detail,
	    time_t now, char **err);
/* Operator actions: retry now (deferred/failed/queued/held → queued, due now). */
int	store_job_retry(struct store *, int64_t id, time_t now, char **err);
/*
 * Operator hold: planned/queued/deferred → held; nothing renders or sends a
 * held job. Release: held → planned (never rendered: it keeps its due_at)
 * or queued (spooled: it keeps its next attempt time). FU_PERMFAIL when the
 * job is absent or in another state.
 */
int	store_job_hold(struct store *, int64_t id, time_t now, char **err);
int	store_job_release(struct store *, int64_t id, time_t now, char **err);

/*
 * Jobs found `sending` when no session is in flight (at start-up after a
 * crash, or before a delivery step when an outcome could not be recorded)
 * have an unknown outcome: queued again (same spool file, same Message-ID),
 * or held when `hold` ([smtp] unknown_outcome = hold). An event each;
 * *count says how many.
 */
int	store_recover_sending(struct store *, time_t now, int hold, int *count,
	    char **err);

/* Record a decision or event in the job's history. */
int	store_event(struct store *, int64_t job_id, time_t now,
	    const char *event, const char *detail, char **err);

/* Addresses never to mail again (5xx answers); case-insensitive. */
int	store_suppressed(struct store *, const char *addr, int *yes,
	    char **err);
int	store_suppress(struct store *, const char *addr, const char *reason,
	    time_t now, char **err);

/* Opt-outs per class ("marketing", "transactional", or "all"). */
int	store_opted_out(struct store *, const char *addr, const char *cls,
	    int *yes, char **err);

/* Small key/value facts: last_error, last_tick. */
int	store_meta_set(struct store *, const char *key, const char *value,
	    char **err);
char	*store_meta_get(struct store *, const char *key);	/* caller frees; NULL if absent */

/* The recipient's IANA zone of a job (schema 2), for showing local times. */
int	store_job_set_tz(struct store *, int64_t id, const char *tz, char **err);
char	*store_job_tz(struct store *, int64_t id);	/* caller frees; NULL if unknown */

/*
 * A planned job whose time falls in quiet hours or outside its send window
 * at render time is postponed, not dropped: due_at moves to `due_at` and an
 * event "postponed" records `why` ("quiet hours until 08:00 +01:00").
 */
int	store_job_postpone(struct store *, int64_t id, time_t due_at,
	    const char *why, time_t now, char **err);

/*
 * Agent reminders (schema 2). A reminder is the calendar item of one
 * (rule, ticket) as last planned: UID and SEQUENCE, the attendee and
 * times. Each REQUEST or CANCEL is a job (occurrence "seq N METHOD agent")
 * with a snapshot in reminder_messages it is rendered from.
 */
struct reminder {
	char		*rule, *subject, *uid;
	int		 sequence;
	int		 active;	/* 0 after a CANCEL */
	char		*agent;		/* attendee address */
	char		*agent_name;	/* may be NULL */
	char		*tz;		/* IANA zone of DTSTART/DTEND */
	char		*at;		/* the source event this version follows */
	time_t		 dtstart, dtend;
};

void	store_reminder_clear(struct reminder *);
void	store_reminders_free(struct reminder *, int n);
int	store_reminder_get(struct store *, const char *rule,
	    const char *subject, struct reminder *, int *found, char **err);
int	store_reminder_put(struct store *, const struct reminder *, time_t now,
	    char **err);
/* Active reminders ending after `end_after`; rule NULL: every rule. */
int	store_reminders_active(struct store *, const char *rule,
	    time_t end_after, struct reminder **, int *n, char **err);
/*
 * Plan one message of reminder r (its uid, sequence, tz, times) to agent:
 * a planned job due at `due` and its snapshot. *job_id 0 when this very
 * message was planned before.
 */
int	store_reminder_message(struct store *, const struct reminder *,
	    const char *method, const char *agent, const char *agent_name,
	    time_t due, time_t now, int64_t *job_id, char **err);
/* The snapshot of a job (r->at is ""); *found 0 for jobs of other rules. */
int	store_reminder_message_get(struct store *, int64_t job_id,
	    struct reminder *, char **method, int *found, char **err);
/* Cancel (reason superseded) every still-planned message of (rule, subject). */
int	store_reminder_supersede(struct store *, const char *rule,
	    const char *subject, time_t now, int *count, char **err);
/* 1 when a REQUEST for (rule, subject) to agent left the planned state. */
int	store_reminder_delivered(struct store *, const char *rule,
	    const char *subject, const char *agent, int *yes, char **err);

/* ---- reading the queue: status, queue list/show, why, codes, metrics ---- */

/*
 * A result table as text, the way the commands print it: nrows rows of
 * ncols cells, each NULL (SQL NULL) or text (numbers in SQLite's decimal
 * form). Free with store_table_free.
 */
struct store_table {
	int	  ncols, nrows;
	char	**cells;	/* nrows * ncols, row-major */
};
const char	*store_cell(const struct store_table *, int row, int col);
void		 store_table_free(struct store_table *);

/*
 * `followupd status` (each table's columns in order):
 *   rules:    rule, then one count per state of `states` (NULL when 0 rows)
 *   reasons:  rule, state, reason, count          (cancelled/failed jobs)
 *   next:     id, rule, subject, state, due, tz   (store_next_due's job)
 *   deferred: id, rule, subject, attempts, next_attempt_at, last_reply, tz
 *   oldest:   id, rule, subject, state, queued_at, age, tz (awaiting delivery)
 *   recent:   sent in the last hour, in the last day, unknown outcomes
 *   lasterr:  id, rule, subject, state, updated_at, last_reply, tz
 */
struct store_status {
	struct store_table	 rules, reasons, next, deferred, oldest, recent,
				 lasterr;
};
int	store_status(struct store *, time_t now, const char *const *states,
	    int nstates, struct store_status *, char **err);
void	store_status_free(struct store_status *);

/*
 * `queue list`: jobs (state and rule may be NULL: any), by id. Columns: id,
 * rule, subject, occurrence, state, due_at, next_attempt_at, attempts,
 * recipient, reason, last_reply, when (next attempt for queued/deferred,
 * else due_at), tz.
 */
int	store_jobs_list(struct store *, const char *state, const char *rule,
	    struct store_table *, char **err);
/* The ids of every job in `state`, by id (*ids allocated, caller frees). */
int	store_job_ids(struct store *, enum job_state, int64_t **ids, int *n,
	    char **err);

/* A job's history (events), oldest first. */
struct store_event {
	time_t	 at;
	char	*event;
	char	*detail;	/* may be NULL */
};
int	store_job_history(struct store *, int64_t id, struct store_event **,
	    int *n, char **err);
void	store_events_free(struct store_event *, int n);

/*
 * "Due", defined here once: a planned job is due when due_at <= now; a
 * queued or deferred one when next_attempt_at <= now. A `sending` job is
 * never due: it is in flight, or (between ticks) its outcome is unknown and
 * store_recover_sending decides, so the daemon does not wake for it.
 * store_count_due counts the due jobs of one kind; store_next_due gives the
 * earliest instant a job becomes due (*t 0 when none).
 */
enum store_due {
	STORE_DUE_RENDER,	/* planned */
	STORE_DUE_DELIVER,	/* queued, deferred */
};
int	store_count_due(struct store *, enum store_due, time_t now, long *n,
	    char **err);
int	store_next_due(struct store *, time_t *t, char **err);
/* Jobs in one state (e.g. sending: in flight during a tick). */
int	store_count_state(struct store *, enum job_state, long *n, char **err);

/* ---- consent: opt-outs, suppressions, frequency caps ---- */

/* *added 0 when (address, class) was there already. */
int	store_optout_add(struct store *, const char *addr, const char *cls,
	    const char *reason, time_t now, int *added, char **err);
/* cls NULL removes every class. */
int	store_optout_remove(struct store *, const char *addr, const char *cls,
	    int *removed, char **err);
int	store_suppression_remove(struct store *, const char *addr,
	    int *removed, char **err);

/* An opt-out, or a suppression (cls "suppressed"). */
struct store_optout {
	char	*addr, *cls, *reason;	/* reason may be NULL */
	time_t	 since;
};
/* Every opt-out and suppression, by address then class. */
int	store_optouts_list(struct store *, struct store_optout **, int *n,
	    char **err);
/* Those of one address: its opt-outs, then its suppression. */
int	store_optouts_of(struct store *, const char *addr,
	    struct store_optout **, int *n, char **err);
void	store_optouts_free(struct store_optout *, int n);

/*
 * Frequency caps: marketing jobs to addr (any rule when rule is NULL)
 * queued after `since` and now queued, sending, sent, deferred or held; *oldest the earliest
 * queued_at of them (0: none).
 */
int	store_cap_count(struct store *, const char *addr, const char *rule,
	    time_t since, int *count, time_t *oldest, char **err);

/* `why`: the jobs of an address (recipient, else email as planned) or a customer. */
struct store_why_job {
	int64_t	 id;
	char	*rule, *subject, *occurrence, *state, *reason;
	char	*addr, *last_reply, *cls;	/* may be NULL */
	time_t	 due_at, updated_at;
};
int	store_why_jobs(struct store *, const char *who, int byaddr,
	    struct store_why_job **, int *n, char **err);
void	store_why_jobs_free(struct store_why_job *, int n);

/* ---- personal codes (job_codes) ---- */

/* The code of a job (NULL: none). */
int	store_code_get(struct store *, int64_t job_id, char **code,
	    char **err);
/* *taken 1 when another job of rule has code. */
int	store_code_taken(struct store *, const char *rule, const char *code,
	    int *taken, char **err);
int	store_code_put(struct store *, int64_t job_id, const char *rule,
	    const char *subject, const char *code, time_t now, char **err);
/* The code of the latest job of (rule, subject) (NULL: none). */
int	store_code_for_subject(struct store *, const char *rule,
	    const char *subject, char **code, char **err);
/* `codes RULE`: state "removed" when the job is gone. */
struct store_code {
	char	*code, *subject, *recipient, *state;	/* recipient may be NULL */
	time_t	 issued_at;
};
int	store_codes_list(struct store *, const char *rule,
	    struct store_code **, int *n, char **err);
void	store_codes_free(struct store_code *, int n);

/* ---- metrics ---- */

/*
 * The figures /metrics shows. jobs: rule, state, count. outcomes: rule,
 * event (sent, deferred, failed), count. latency: rule, count, sum, then
 * one cumulative count per bucket of `buckets` (seconds from due to sent).
 * oldest_age: of the oldest job awaiting delivery (0: none); last_tick: of
 * the last finished tick (0: none); next_due: store_next_due.
 */
struct store_metrics {
	struct store_table	 jobs, outcomes, latency;
	long long		 oldest_age, last_tick;
	time_t			 next_due;
};
int	store_metrics(struct store *, time_t now, const long *buckets,
	    int nbuckets, struct store_metrics *, char **err);
void	store_metrics_free(struct store_metrics *);

/* ---- the spool's tidying at start-up (deliver.c) ---- */

/*
 * The state of the job a spool file belongs to ("" when none): the job
 * `id` if it has that spool_name (id 0: looked up by name alone, a scan).
 */
int	store_spool_owner_state(struct store *, int64_t id, const char *name,
	    char state[16], char **err);

/* gate, render, deliver */

/*
 * preview: the code the latest job of (rule, subject) was given, from the
 * state.db under queue_dir when there is one (never created); *code NULL
 * when there is none or it cannot be read.
 */
void	store_preview_code(const char *queue_dir, int busy_timeout_ms,
	    const char *rule, const char *subject, char **code);

/* ==== ratings (issue 12, schema 5) ==== */

/*
 * A check-in that carries rating links is a rating request: one row per
 * job (a second call does nothing), by recipient for the cool-down, with
 * what a call-back and the report need later (the ticket's agent, the
 * customer's name, the ticket's subject; any may be NULL).
 */
struct store_rating_ask {
	int64_t		 job;
	const char	*rule, *recipient, *scale;
	const char	*agent, *agent_name, *agent_tz;
	const char	*customer_name, *ticket_subject;
};
int	store_rating_request(struct store *, const struct store_rating_ask *,
	    time_t now, char **err);
/*
 * *yes 1 when recipient got a rating request (its check-in not cancelled
 * or failed) at or after `since`, other than job except_job's.
 */
int	store_rating_asked(struct store *, const char *recipient, time_t since,
	    int64_t except_job, int *yes, char **err);

/* A job with its rating request and rating (either may be missing). */
struct store_rating {
	int64_t		 job;
	int		 requested;	/* a rating request row exists */
	char		*scale;		/* the request's (NULL: none) */
	int		 rated;		/* a rating exists: the fields below */
	int		 score;
	char		*comment;	/* as the customer typed it; NULL: none */
	time_t		 created_at, updated_at;
	int		 handled;	/* the daemon acted on this version */
	char		*rule, *subject, *recipient, *customer;
	enum job_state	 state;
	time_t		 sent_at;	/* sent (else queued) time; 0: neither */
	time_t		 asked_at;	/* the request's time */
	char		*agent, *agent_name, *agent_tz;	/* the request's */
	char		*customer_name, *ticket_subject;
};
void	store_rating_clear(struct store_rating *);
void	store_ratings_free(struct store_rating *, int n);

/* The job `job` with its request and rating; *found 0 when no such job. */
int	store_rating_get(struct store *, int64_t job, struct store_rating *,
	    int *found, char **err);
/*
 * Record or replace job's rating (one per job) and a "rated" event (the
 * comment is not copied into the history). The new version is unhandled.
 */
int	store_rating_put(struct store *, int64_t job, const char *scale,
	    int score, const char *comment, time_t now, char **err);
/* Every rating request made at or after `since`, with its rating if any. */
int	store_ratings_since(struct store *, time_t since,
	    struct store_rating **, int *n, char **err);
/* Ratings not acted on yet (oldest first). */
int	store_ratings_unhandled(struct store *, struct store_rating **, int *n,
	    char **err);
/* Mark the version of job's rating with updated_at as acted on. */
int	store_rating_handled(struct store *, int64_t job, time_t updated_at,
	    time_t now, char **err);
/* Every rating given (a replaced one too), by rule, scale and score. */
typedef void (*store_rating_total_cb)(const char *rule, const char *scale,
    int score, int64_t n, void *arg);
int	store_rating_totals(struct store *, store_rating_total_cb, void *arg,
	    char **err);
/* ==== end of ratings ==== */

/* ---- bounces (issue 13): returned mail and complaints ---- */

/*
 * sent → bounced: the relay took the message, the receiver returned it
 * (a hard bounce). reason ("hard bounce 5.1.1") and reply (the
 * diagnostic) are kept; an event records both. FU_PERMFAIL when the job
 * is absent or not sent.
 */
int	store_job_bounced(struct store *, int64_t id, const char *reason,
	    const char *reply, time_t now, char **err);
/* The job whose message had Message-ID mid (no <>); *id 0 when none. */
int	store_job_by_message_id(struct store *, const char *mid, int64_t *id,
	    char **err);

/*
 * One decision on one returned message, kept whatever it was (table
 * bounces, schema 6). job_id 0: it matched no job. kind: bounce.h's name
 * of it. decision: what was done ("bounced", "suppressed", "soft",
 * "opted-out", "policy", "auto-reply", "ignored", "unmatched",
 * "not-a-message"). Any text may be NULL but kind and decision.
 */
struct store_bounce {
	int64_t		 job_id;
	const char	*address;
	const char	*kind;
	const char	*status;
	const char	*reason;
	const char	*matched_by;	/* "verp", "message-id" or NULL */
	const char	*decision;
	const char	*source;	/* "stdin", a file name */
	const char	*message_id;	/* the returned message's own */
};
int	store_bounce_add(struct store *, const struct store_bounce *,
	    time_t now, int64_t *id, char **err);
/* What was done, once done (the row is written first: its id is cited). */
int	store_bounce_decision(struct store *, int64_t id, const char *decision,
	    char **err);
/* *yes 1 when a message with this Message-ID was handled before. */
int	store_bounce_seen(struct store *, const char *message_id, int *yes,
	    char **err);
/* Soft bounces matched to a job of addr, recorded at or after since. */
int	store_bounce_soft_count(struct store *, const char *addr, time_t since,
	    int *n, char **err);
/*
 * Messages of one kind recorded at or after since: *total, and *matched
 * of them that named one of our jobs.
 */
int	store_bounce_count(struct store *, const char *kind, time_t since,
	    long *total, long *matched, char **err);

#endif
