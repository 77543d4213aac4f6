/* daemon: one tick (plan → render → deliver), the run loop, signals, the single-instance lock. */
#include "daemon.h"
#include "bouncecmd.h"
#include "clock.h"
#include "deliver.h"
#include "explain.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "mime.h"
#include "notify.h"
#include "plan.h"
#include "progress.h"
#include "render.h"
#include "smtp.h"
#include "source.h"
#include "spool.h"
#include "store.h"
#include "survey.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

struct daemon {
	const struct config	*cfg;
	struct config		*own_cfg;	/* loaded by a reload; NULL: the caller's */
	struct spool		*spool;
	struct store		*store;
	struct source		*source;
	struct render		*render;
	int			 lockfd;
	int			 smtp_ready;
	struct http		*http;		/* run with [metrics] enabled */
	struct metrics		*metrics;
	time_t			 started;
	unsigned long long	 watchdog_usec;	/* 0: no watchdog */
	struct timespec		 last_ping;
};

static volatile sig_atomic_t daemon_stop;
static volatile sig_atomic_t daemon_hup;

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		daemon_hup = 1;
	else
		daemon_stop = 1;
}

/* The daemon being run, for the progress pulse (one per process). */
static struct daemon *daemon_current;

static void
watchdog_ping(struct daemon *d)
{
	if (d->watchdog_usec == 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &d->last_ping);
	notify_send("WATCHDOG=1");
}

/* During a long tick (progress.c calls it about once a second). */
static void
pulse(void)
{
	if (daemon_current != NULL)
		watchdog_ping(daemon_current);
}

/* One instance per queue: an flock held for the life of the process. */
static int
take_lock(struct daemon *d, char **err)
{
	char *path = xasprintf("%s/followupd.pid", d->cfg->queue_dir);
	char pid[32] = "";
	ssize_t n;

	d->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d->lockfd == -1) {
		set_err(err, "%s: %s", path, strerror(errno));
		free(path);
		return FU_TEMPFAIL;
	}
	if (flock(d->lockfd, LOCK_EX | LOCK_NB) == -1) {
		n = pread(d->lockfd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		set_err(err, "another followupd (pid %s) is running on the "
		    "queue %s; stop it first, or use another queue dir",
		    *pid ? pid : "?", d->cfg->queue_dir);
		free(path);
		return FU_TEMPFAIL;
	}
	free(path);
	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(d->lockfd, 0) == -1 ||
	    pwrite(d->lockfd, pid, strlen(pid), 0) == -1)
		log_warn("daemon: writing the pid file");
	return FU_OK;
}

/*
 * Started as root with [queue] user = NAME: become NAME for good (groups,
 * real, effective and saved ids) after the config (the password file) and
 * the source are open, before anything in the queue is created or opened.
 * Templates and ca_file are read afterwards: NAME must be able to read
 * them. Not root: nothing to drop (with `note`, a line when NAME is
 * someone else).
 */
int
daemon_drop_privileges(const struct config *cfg, int note, char **err)
{
	struct passwd *pw;
	gid_t gid;
	uid_t uid;

	if (cfg->user == NULL)
		return FU_OK;
	errno = 0;
	if ((pw = getpwnam(cfg->user)) == NULL) {
		set_err(err, "[queue] user %s: no such user%s%s", cfg->user,
		    errno ? ": " : "", errno ? strerror(errno) : "");
		return FU_PERMFAIL;
	}
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (geteuid() != 0) {
		if (note && geteuid() != uid)
			log_info("daemon: not started as root: [queue] user %s "
			    "ignored, running as uid %ld", cfg->user,
			    (long)geteuid());
		return FU_OK;
	}
	if (uid == 0)
		return FU_OK;
	/* A queue that does not exist yet is made for the user (as Postfix's
	 * set-permissions would); an existing one is left as it is. */
	if (mkdir(cfg->queue_dir, 0700) == 0 &&
	    chown(cfg->queue_dir, uid, gid) == -1) {
		set_err(err, "[queue] user %s: chown %s: %s", cfg->user,
		    cfg->queue_dir, strerror(errno));
		return FU_PERMFAIL;
	}
	if (setgroups(1, &gid) == -1 || setresgid(gid, gid, gid) == -1 ||
	    setresuid(uid, uid, uid) == -1) {
		set_err(err, "[queue] user %s: cannot drop privileges: %s",
		    cfg->user, strerror(errno));
		return FU_PERMFAIL;
	}
	if (setuid(0) != -1) {	/* paranoia: the drop must be for good */
		set_err(err, "[queue] user %s: could become root again",
		    cfg->user);
		return FU_PERMFAIL;
	}
	/* Root's HOME is not ours now: libesmtp refuses TLS when it cannot
	 * look into ~/.authenticate there. */
	if (pw->pw_dir != NULL)
		setenv("HOME", pw->pw_dir, 1);
	log_info("daemon: running as %s (uid %ld, gid %ld)", cfg->user,
	    (long)uid, (long)gid);
	return FU_OK;
}

/* Jobs left `sending` have an unknown outcome: the configured policy decides. */
static int
recover_sending(struct daemon *d, time_t now, char **err)
{
	int hold = d->cfg->unknown_outcome == CONFIG_UNKNOWN_HOLD, n, r;

	if ((r = store_recover_sending(d->store, now, hold, &n, err)) != FU_OK)
		return r;
	if (n > 0)
		log_warnx("daemon: %d job%s found 'sending' after an "
		    "interruption: outcome unknown, %s", n, n == 1 ? "" : "s",
		    hold ? "held (unknown_outcome = hold; queue release JOB to "
		    "send again)" : "sending again with the same Message-ID");
	return FU_OK;
}

int
daemon_open(const struct config *cfg, struct daemon **out, char **err)
{
	struct daemon *d = xcalloc(1, sizeof(*d));
	struct buf errs = { 0 };
	char *path;
	int r, n;

	d->cfg = cfg;
	d->lockfd = -1;
	/* [queue] user: the source (maybe root's only) first, then the drop,
	 * then the queue, which so belongs to the user. */
	if (cfg->user != NULL && ((r = source_open(cfg->database,
	    cfg->busy_timeout_ms, &d->source, err)) != FU_OK ||
	    (r = daemon_drop_privileges(cfg, 1, err)) != FU_OK))
		goto fail;
	if ((r = spool_open(cfg->queue_dir, &d->spool, err)) != FU_OK)
		goto fail;
	if ((r = take_lock(d, err)) != FU_OK)
		goto fail;
	/* recycle = no: finished messages are removed, spare files too. */
	spool_set_pool_max(d->spool, cfg->recycle ? SPOOL_POOL_MAX : 0);
	if ((n = spool_clean_tmp(d->spool)) > 0)
		log_info("spool: removed %d unfinished file%s from tmp/ "
		    "(their jobs are still planned)", n, n == 1 ? "" : "s");
	path = store_path(cfg->queue_dir);
	r = store_open(path, cfg->busy_timeout_ms, &d->store, err);
	free(path);
	if (r != FU_OK)
		goto fail;
	if ((r = recover_sending(d, clock_now(), err)) != FU_OK)
		goto fail;
	deliver_tidy_spool(cfg, d->store, d->spool);
	if (d->source == NULL && (r = source_open(cfg->database,
	    cfg->busy_timeout_ms, &d->source, err)) != FU_OK)
		goto fail;
	source_set_query_timeout(d->source, cfg->query_timeout_ms);
	explain_log(cfg, d->source);	/* the desk's missing indexes, once */
	if ((d->render = render_open(cfg, 0, &errs)) == NULL) {
		if (errs.len && errs.data[errs.len - 1] == '\n')
			errs.data[--errs.len] = '\0';
		set_err(err, "templates:\n%s", errs.data);
		buf_free(&errs);
		r = FU_PERMFAIL;
		goto fail;
	}
	if ((r = smtp_init(&cfg->smtp, err)) != FU_OK)
		goto fail;
	d->smtp_ready = 1;
	*out = d;
	return FU_OK;
fail:
	daemon_close(d);
	return r;
}

void
daemon_close(struct daemon *d)
{
	if (d == NULL)
		return;
	http_free(d->http);		/* first: its thread reads metrics */
	metrics_free(d->metrics);
	if (d->smtp_ready)
		smtp_shutdown();
	render_close(d->render);
	source_close(d->source);
	store_close(d->store);
	spool_close(d->spool);
	if (d->lockfd != -1)
		close(d->lockfd);	/* releases the lock */
	config_free(d->own_cfg);
	if (daemon_current == d)
		daemon_current = NULL;
	free(d);
}

/* A count for the progress line (the question is cheap: indexed). */
static long
count_due(struct store *st, enum store_due kind, time_t now)
{
	long n = 0;

	store_count_due(st, kind, now, &n, NULL);
	return n;
}

/*
 * What the delivering line has still to do: the due jobs and those in
 * flight (sending: handed out while rendering, not due, not yet done).
 */
static long
count_to_deliver(struct store *st, time_t now)
{
	long sending = 0;

	store_count_state(st, JOB_SENDING, &sending, NULL);
	return count_due(st, STORE_DUE_DELIVER, now) + sending;
}

static void
note_error(struct store *st, const char *step, const char *e)
{
	char *msg = xasprintf("%s: %s", step, e ? e : "error");

	log_warnx("%s", msg);
	store_meta_set(st, "last_error", msg, NULL);
	free(msg);
}

/* ---- the real steps of a tick ---- */

struct tick {
	struct daemon	*d;
	struct deliver	*dl;
};

static int
step_plan(void *arg, time_t now, struct plan_stats *ps, char **err)
{
	struct daemon *d = ((struct tick *)arg)->d;

	return plan_tick(d->cfg, d->source, d->store, now, ps, err);
}

static int
step_recover(void *arg, time_t now, char **err)
{
	return recover_sending(((struct tick *)arg)->d, now, err);
}

static void
step_deliver_begin(void *arg, time_t now)
{
	struct tick *t = arg;

	deliver_begin(t->d->cfg, t->d->store, t->d->spool, now, &daemon_stop,
	    &t->dl);
}

/* render_tick's page_done: the page's messages are queued; hand them out. */
static void
page_rendered(void *arg)
{
	deliver_pump(arg);
}

/* render_tick's cut: accepted messages wait to be recorded. */
static int
page_cut(void *arg)
{
	return deliver_outcomes_waiting(arg);
}

static int
step_render(void *arg, time_t now, struct render_stats *rs, char **err)
{
	struct tick *t = arg;

	return render_tick(t->d->render, t->d->store, t->d->source,
	    t->d->spool, now, page_rendered, page_cut, t->dl, rs, err);
}

static long
step_delivered(void *arg)
{
	return deliver_done(((struct tick *)arg)->dl);
}

static int
step_deliver_end(void *arg, struct deliver_stats *ds, char **err)
{
	return deliver_end(((struct tick *)arg)->dl, ds, err);
}

static int
step_ratings(void *arg, time_t now, char **err)
{
	struct daemon *d = ((struct tick *)arg)->d;
	struct survey_stats ss;

	return survey_tick(d->cfg, d->store, d->spool, now, &ss, err);
}

static const struct daemon_steps real_steps = {
	step_plan, step_recover, step_deliver_begin, step_render,
	step_delivered, step_deliver_end, step_ratings,
};

/* [bounces] maildir: returned mail handled in the tick (bouncecmd.c). */
static void
bounces_tick(struct daemon *d, time_t now)
{
	struct bouncecmd *b;
	char *e = NULL;
	int n = 0;

	if (bouncecmd_open(d->cfg, 0, &b, &e) == FU_OK) {
		if (bouncecmd_maildir(b, d->cfg->bounces_maildir, now, &n, &e) !=
		    FU_OK)
			note_error(d->store, "bounce: the Maildir waits for the next tick",
			    e);
		bouncecmd_close(b);
	} else
		note_error(d->store, "bounce: the Maildir waits for the next tick", e);
	if (n > 0)
		log_info("bounce: %d returned message%s handled from %s", n,
		    n == 1 ? "" : "s", d->cfg->bounces_maildir);
	free(e);
}

int
daemon_tick(struct daemon *d, time_t now, char **err)
{
	struct tick t = { d, NULL };

	/* Returned mail first: a hard bounce suppresses before jobs render. */
	if (d->cfg->bounces_maildir != NULL)
		bounces_tick(d, now);
	return daemon_tick_steps(d->store, &real_steps, &t, now, err);
}

int
daemon_tick_steps(struct store *st, const struct daemon_steps *s, void *arg,
    time_t now, char **err)
{
	struct plan_stats ps;
	struct render_stats rs;
	struct deliver_stats ds;
	char *e = NULL, when[20];
	int r, worst = FU_OK;
	struct timespec t0, t1;

	memset(&ps, 0, sizeof(ps));
	memset(&rs, 0, sizeof(rs));
	memset(&ds, 0, sizeof(ds));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* A busy source or a full disk skips a step, never the whole tick:
	 * what is already queued can still go out. */
	if ((r = s->plan(arg, now, &ps, &e)) != FU_OK) {
		note_error(st, "plan: skipped this tick", e);
		worst = r;
	}
	free(e);
	e = NULL;
	/* Ratings the server recorded: call-backs and notes. */
	if (s->ratings != NULL && (r = s->ratings(arg, now, &e)) != FU_OK) {
		note_error(st, "ratings: left for the next tick", e);
		worst = worst ? worst : r;
	}
	free(e);
	e = NULL;
	/* No session is in flight between ticks: a job still `sending` is
	 * one whose outcome could not be recorded (state.db was busy). */
	if ((r = s->recover(arg, now, &e)) != FU_OK) {
		note_error(st, "deliver: recovering interrupted jobs", e);
		free(e);
		e = NULL;
	}
	/* Delivery runs alongside rendering: each page rendered goes out
	 * while the next one is built. */
	s->deliver_begin(arg, now);
	progress_set_pulse(pulse);
	progress_begin("rendering", count_due(st, STORE_DUE_RENDER, now));
	if ((r = s->render(arg, now, &rs, &e)) != FU_OK) {
		note_error(st, "render: stopped early", e);
		worst = worst ? worst : r;
	}
	progress_end();
	free(e);
	e = NULL;
	pulse();
	/* The delivering line counts the tick's deliveries, those made while
	 * rendering included. */
	progress_begin("delivering", s->delivered(arg) + count_to_deliver(st,
	    now));
	progress_skip(s->delivered(arg));
	if ((r = s->deliver_end(arg, &ds, &e)) != FU_OK) {
		note_error(st, "deliver: stopped early", e);
		worst = worst ? worst : r;
	}
	progress_end();
	free(e);
	store_meta_set(st, "last_tick", clock_format_sql(now, when), NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_info("tick %s UTC: planned %d, queued %d, cancelled %d, sent %d, "
	    "deferred %d, failed %d (%.2f s)", when, ps.planned, rs.queued,
	    rs.cancelled + ds.cancelled, ds.sent, ds.deferred,
	    rs.failed + ds.failed, (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	notify_status("last tick %s UTC: planned %d, queued %d, cancelled %d, "
	    "sent %d, deferred %d, failed %d%s", when, ps.planned, rs.queued,
	    rs.cancelled + ds.cancelled, ds.sent, ds.deferred,
	    rs.failed + ds.failed, worst != FU_OK ? " (unfinished)" : "");
	if (worst != FU_OK)
		set_err(err, "the tick did not finish (see the messages above)");
	return worst;
}

/* The earliest instant some job becomes due, or 0 when none. */
static time_t
next_due(struct daemon *d)
{
	time_t t = 0;

	store_next_due(d->store, &t, NULL);
	return t;
}

/* Log each line of a multi-line error report (config_load, render_open). */
static void
log_lines(const char *prefix, const char *text)
{
	while (text && *text) {
		size_t n = strcspn(text, "\n");

		if (n > 0)
			log_warnx("%s%.*s", prefix, (int)n, text);
		text += n + (text[n] == '\n');
	}
}

static int
same_str(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* The metrics endpoint of `run`, per [metrics]; a failure is logged, not fatal. */
static void
metrics_start(struct daemon *d)
{
	char *err = NULL;

	if (!d->cfg->metrics_enabled)
		return;
	d->metrics = metrics_new(d->cfg->queue_dir, d->cfg->busy_timeout_ms,
	    d->started);
	d->http = http_new();
	metrics_route(d->metrics, d->http);
	if (http_start(d->http, d->cfg->metrics_listen, d->cfg->metrics_port,
	    &err) != FU_OK) {
		log_warnx("metrics: %s: no metrics endpoint", err);
		free(err);
		http_free(d->http);
		metrics_free(d->metrics);
		d->http = NULL;
		d->metrics = NULL;
		return;
	}
	log_info("metrics: serving http://%s%s%s:%d/metrics",
	    strchr(d->cfg->metrics_listen, ':') ? "[" : "",
	    d->cfg->metrics_listen, strchr(d->cfg->metrics_listen, ':') ?
	    "]" : "", http_port(d->http));
}

static void
metrics_stop(struct daemon *d)
{
	http_free(d->http);
	metrics_free(d->metrics);
	d->http = NULL;
	d->metrics = NULL;
}

/*
 * SIGHUP: read the configuration and the templates again. All or nothing:
 * the new config, templates, source and SMTP settings are all prepared
 * first; any error keeps every old one (each error logged).
 */
static int
daemon_reload(struct daemon *d)
{
	struct buf errs = { 0 };
	struct config *nc;
	struct render *nr = NULL;
	struct source *nsrc = NULL;
	char *err = NULL;
	int ok = 0, metrics_changed;

	notify_send("RELOADING=1");
	log_info("daemon: SIGHUP: reloading %s and the templates", d->cfg->path);
	if ((nc = config_load(d->cfg->path, &errs)) == NULL)
		goto out;
	if (strcmp(nc->queue_dir, d->cfg->queue_dir) != 0) {
		buf_printf(&errs, "%s: [queue] dir changed (%s → %s): that "
		    "needs a restart\n", nc->path, d->cfg->queue_dir,
		    nc->queue_dir);
		goto out;
	}
	if ((nr = render_open(nc, 0, &errs)) == NULL)
		goto out;
	if (!same_str(nc->database, d->cfg->database) ||
	    nc->busy_timeout_ms != d->cfg->busy_timeout_ms) {
		if (source_open(nc->database, nc->busy_timeout_ms, &nsrc, &err) !=
		    FU_OK) {
			buf_printf(&errs, "%s: [source] database: %s\n", nc->path,
			    err);
			goto out;
		}
	}
	/* SMTP last: its set-up is global; on failure restore the old one. */
	smtp_shutdown();
	d->smtp_ready = 0;
	if (smtp_init(&nc->smtp, &err) != FU_OK) {
		buf_printf(&errs, "%s: [smtp] %s\n", nc->path, err);
		free(err);
		err = NULL;
		if (smtp_init(&d->cfg->smtp, &err) == FU_OK)
			d->smtp_ready = 1;
		else
			log_warnx("daemon: reload: the previous SMTP settings "
			    "failed too: %s", err);
		goto out;
	}
	d->smtp_ready = 1;

	/* Everything is ready: swap. */
	metrics_changed = nc->metrics_enabled != d->cfg->metrics_enabled ||
	    nc->metrics_port != d->cfg->metrics_port ||
	    !same_str(nc->metrics_listen, d->cfg->metrics_listen);
	if (metrics_changed)
		metrics_stop(d);
	render_close(d->render);
	d->render = nr;
	nr = NULL;
	if (nsrc != NULL) {
		source_close(d->source);
		d->source = nsrc;
		nsrc = NULL;
	}
	config_free(d->own_cfg);
	d->own_cfg = nc;
	d->cfg = nc;
	source_set_query_timeout(d->source, nc->query_timeout_ms);
	nc = NULL;
	spool_set_pool_max(d->spool, d->cfg->recycle ? SPOOL_POOL_MAX : 0);
	if (metrics_changed)
		metrics_start(d);
	ok = 1;
	log_info("daemon: reloaded: %d rule%s, a tick every %ld s",
	    d->cfg->nrules, d->cfg->nrules == 1 ? "" : "s", d->cfg->tick);
out:
	if (!ok) {
		log_lines("daemon: reload: ", buf_cstr(&errs));
		log_warnx("daemon: reload failed: keeping the previous "
		    "configuration and templates");
		notify_status("reload failed (see the log); running with the "
		    "previous configuration");
	}
	free(err);
	buf_free(&errs);
	render_close(nr);
	source_close(nsrc);
	config_free(nc);
	notify_send("READY=1");
	return ok ? FU_OK : FU_PERMFAIL;
}

int
daemon_run(struct daemon *d)
{
	struct sigaction sa;
	char *err = NULL, when[20];

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	daemon_current = d;
	d->started = time(NULL);
	d->watchdog_usec = notify_watchdog_usec();
	store_meta_set(d->store, "started_at", clock_format_sql(d->started,
	    when), NULL);
	metrics_start(d);
	log_info("daemon: started (pid %ld), a tick every %ld s%s",
	    (long)getpid(), d->cfg->tick, d->watchdog_usec ?
	    ", systemd watchdog on" : "");
	notify_send("READY=1");
	notify_status("started; a tick every %ld s", d->cfg->tick);
	watchdog_ping(d);
	while (!daemon_stop) {
		struct timespec start, cur;
		time_t now = clock_now(), due;
		long wait;

		clock_gettime(CLOCK_MONOTONIC, &start);
		daemon_tick(d, now, &err);
		free(err);
		err = NULL;
		/* Sleep to the next tick or the earliest due job; monotonic
		 * time so a wall-clock step does not stall the loop. */
		wait = d->cfg->tick;
		due = next_due(d);
		now = clock_now();
		if (due > 0 && due - now < wait)
			wait = due > now ? (long)(due - now) : 1;
		for (;;) {
			struct timespec nap = { 0, 200 * 1000 * 1000 };

			if (daemon_hup) {
				daemon_hup = 0;
				daemon_reload(d);
			}
			clock_gettime(CLOCK_MONOTONIC, &cur);
			if (daemon_stop || cur.tv_sec - start.tv_sec >= wait)
				break;
			/* Ping at a quarter of the interval: well inside it. */
			if (d->watchdog_usec && (unsigned long long)
			    ((cur.tv_sec - d->last_ping.tv_sec) * 1000000LL +
			    (cur.tv_nsec - d->last_ping.tv_nsec) / 1000) >=
			    d->watchdog_usec / 4)
				watchdog_ping(d);
			nanosleep(&nap, NULL);
		}
	}
	notify_send("STOPPING=1");
	log_info("daemon: stopping on a signal");
	metrics_stop(d);
	daemon_current = NULL;
	return EX_OK;
}
