/* daemon: one tick (plan → render → deliver), the run loop, signals, the single-instance lock. */
#ifndef FOLLOWUPD_DAEMON_H
#define FOLLOWUPD_DAEMON_H

#include <time.h>

#include "config.h"

struct daemon;

/*
 * Open everything a tick needs: the spool and state database under the
 * queue directory, the instance lock (a second instance on the same queue
 * gets FU_TEMPFAIL and a message naming the running pid), the source
 * read-only, the templates, the SMTP client. Jobs left `sending` by a crash
 * are put back in the queue here (logged). FU_PERMFAIL for configuration
 * problems. The config must outlive the daemon.
 */
int	daemon_open(const struct config *, struct daemon **, char **err);

/*
 * [queue] user when started as root: become that user for good, the queue
 * directory created for it when missing. Every command that touches the
 * queue calls it before it creates anything there (main.c; run, once and
 * preview after opening the source, which may be root's only). A no-op
 * when not root (note: say so when the user differs) or no user is set.
 */
int	daemon_drop_privileges(const struct config *, int note, char **err);
void	daemon_close(struct daemon *);

/* One tick at `now`: plan, render what is due, deliver what is queued. */
int	daemon_tick(struct daemon *, time_t now, char **err);

/*
 * The sequencing of a tick, apart from what its steps do (a seam for
 * test_daemon.c; daemon_tick passes the real steps). In this order: plan,
 * recover (jobs left `sending`), deliver_begin, render (delivery runs
 * alongside), deliver_end. A failing step is logged and noted in state.db
 * (meta last_error) and the tick goes on: plan's or render's failure never
 * keeps queued mail from going out. last_tick is recorded at the end. The
 * result is the first failure of plan, render or deliver_end (recover's is
 * only noted), with *err set.
 */
struct plan_stats;
struct render_stats;
struct deliver_stats;
struct store;
struct daemon_steps {
	int	(*plan)(void *, time_t now, struct plan_stats *, char **err);
	int	(*recover)(void *, time_t now, char **err);
	void	(*deliver_begin)(void *, time_t now);
	int	(*render)(void *, time_t now, struct render_stats *, char **err);
	long	(*delivered)(void *);	/* outcomes recorded so far */
	int	(*deliver_end)(void *, struct deliver_stats *, char **err);
	/* after plan: act on new ratings (survey.c); NULL: none */
	int	(*ratings)(void *, time_t now, char **err);
};
int	daemon_tick_steps(struct store *, const struct daemon_steps *,
	    void *arg, time_t now, char **err);

/*
 * The loop: a tick, then sleep until the next tick or the earliest due
 * job, whichever is first; SIGTERM/SIGINT stop it after the SMTP session in
 * flight. SIGHUP reloads the config file (cfg->path) and the templates, all
 * or nothing: with any error every one is logged and the old ones stay.
 * Under systemd (NOTIFY_SOCKET) it sends READY=1, STATUS=, WATCHDOG=1
 * (WatchdogSec=; also during a long tick), RELOADING=1 and STOPPING=1.
 * With [metrics] enabled it serves GET /metrics (http.c, metrics.c).
 * Returns the exit status for main.
 */
int	daemon_run(struct daemon *);

#endif
