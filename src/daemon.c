/* daemon: one tick (plan → render → deliver), the run loop, signals, the single-instance lock. */
#include "daemon.h"
#include "clock.h"
#include "deliver.h"
#include "log.h"
#include "mime.h"
#include "plan.h"
#include "render.h"
#include "smtp.h"
#include "source.h"
#include "spool.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

struct daemon {
	const struct config	*cfg;
	struct spool		*spool;
	struct store		*store;
	struct source		*source;
	struct render		*render;
	int			 lockfd;
	int			 smtp_ready;
};

static volatile int daemon_stop;

static void
on_signal(int sig)
{
	(void)sig;
	daemon_stop = 1;
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

int
daemon_open(const struct config *cfg, struct daemon **out, char **err)
{
	struct daemon *d = xcalloc(1, sizeof(*d));
	struct buf errs = { 0 };
	char *path;
	int r, n;

	d->cfg = cfg;
	d->lockfd = -1;
	if ((r = spool_open(cfg->queue_dir, &d->spool, err)) != FU_OK)
		goto fail;
	if ((r = take_lock(d, err)) != FU_OK)
		goto fail;
	if ((n = spool_clean_tmp(d->spool)) > 0)
		log_info("spool: removed %d unfinished file%s from tmp/ "
		    "(their jobs are still planned)", n, n == 1 ? "" : "s");
	path = xasprintf("%s/state.db", cfg->queue_dir);
	r = store_open(path, cfg->busy_timeout_ms, &d->store, err);
	free(path);
	if (r != FU_OK)
		goto fail;
	if ((r = store_recover_sending(d->store, clock_now(), &n, err)) !=
	    FU_OK)
		goto fail;
	if (n > 0)
		log_warnx("daemon: %d job%s found 'sending' after an "
		    "interruption: outcome unknown, sending again with the "
		    "same Message-ID", n, n == 1 ? "" : "s");
	if ((r = source_open(cfg->database, cfg->busy_timeout_ms, &d->source,
	    err)) != FU_OK)
		goto fail;
	mime_init();
	if ((d->render = render_open(cfg, &errs)) == NULL) {
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
	if (d->smtp_ready)
		smtp_shutdown();
	render_close(d->render);
	source_close(d->source);
	store_close(d->store);
	spool_close(d->spool);
	if (d->lockfd != -1)
		close(d->lockfd);	/* releases the lock */
	free(d);
}

static void
note_error(struct daemon *d, const char *step, const char *e)
{
	char *msg = xasprintf("%s: %s", step, e ? e : "error");

	log_warnx("%s", msg);
	store_meta_set(d->store, "last_error", msg, NULL);
	free(msg);
}

int
daemon_tick(struct daemon *d, time_t now, char **err)
{
	struct plan_stats ps;
	struct render_stats rs;
	struct deliver_stats ds;
	char *e = NULL, when[20];
	int r, worst = FU_OK;

	/* A busy source or a full disk skips a step, never the whole tick:
	 * what is already queued can still go out. */
	if ((r = plan_tick(d->cfg, d->source, d->store, now, &ps, &e)) !=
	    FU_OK) {
		note_error(d, "plan: skipped this tick", e);
		worst = r;
	}
	free(e);
	e = NULL;
	if ((r = render_tick(d->render, d->store, d->source, d->spool, now,
	    &rs, &e)) != FU_OK) {
		note_error(d, "render: stopped early", e);
		worst = worst ? worst : r;
	}
	free(e);
	e = NULL;
	if ((r = deliver_tick(d->cfg, d->store, d->spool, now, &daemon_stop,
	    &ds, &e)) != FU_OK) {
		note_error(d, "deliver: stopped early", e);
		worst = worst ? worst : r;
	}
	free(e);
	store_meta_set(d->store, "last_tick", clock_format_sql(now, when), NULL);
	log_info("tick %s UTC: planned %d, queued %d, cancelled %d, sent %d, "
	    "deferred %d, failed %d", when, ps.planned, rs.queued,
	    rs.cancelled + ds.cancelled, ds.sent, ds.deferred,
	    rs.failed + ds.failed);
	if (worst != FU_OK)
		set_err(err, "the tick did not finish (see the messages above)");
	return worst;
}

static void
next_due_cb(int n, char *const *names, char *const *values, void *arg)
{
	(void)n;
	(void)names;
	if (values[0])
		*(time_t *)arg = (time_t)strtoll(values[0], NULL, 10);
}

/* The earliest instant some job becomes due, or 0 when none. */
static time_t
next_due(struct daemon *d)
{
	time_t t = 0;

	store_query(d->store, "SELECT MIN(t) FROM ("
	    "SELECT MIN(due_at) AS t FROM jobs WHERE state = 'planned' "
	    "UNION ALL SELECT MIN(next_attempt_at) FROM jobs "
	    "WHERE state IN ('queued', 'deferred'))", NULL, next_due_cb, &t,
	    NULL);
	return t;
}

int
daemon_run(struct daemon *d)
{
	struct sigaction sa;
	char *err = NULL;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	log_info("daemon: started (pid %ld), a tick every %ld s",
	    (long)getpid(), d->cfg->tick);
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
			clock_gettime(CLOCK_MONOTONIC, &cur);
			if (daemon_stop || cur.tv_sec - start.tv_sec >= wait)
				break;
			sleep(1);
		}
	}
	log_info("daemon: stopping on a signal");
	return EX_OK;
}
