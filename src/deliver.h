/* deliver: tick step 3: queued messages over SMTP, outcomes and retries. */
#ifndef FOLLOWUPD_DELIVER_H
#define FOLLOWUPD_DELIVER_H

#include <time.h>

#include "config.h"
#include "spool.h"
#include "store.h"

struct deliver_stats {
	int	sent;
	int	deferred;
	int	failed;
	int	cancelled;
	int	replanned;	/* spool file missing or corrupt: rendered again */
};

/*
 * Seconds to wait before attempt `attempts` + 1 after `attempts` failed
 * ones: min_backoff doubled per attempt, capped at max_backoff, then
 * spread by jitter (0..1 maps to -10%..+10%) so that deferred jobs do not
 * all come back in the same second.
 */
long	deliver_backoff(int attempts, long min_backoff, long max_backoff,
	    double jitter);

/*
 * Tick step 3: send every queued or deferred job whose time has come, in
 * batches of cfg->batch per SMTP session. 2xx → sent (spool file removed or
 * kept per sent_retention); 4xx, refused connection, timeout → deferred
 * with backoff, or failed 'expired' past queue_lifetime; 5xx → failed
 * 'rejected' and (for 550/551/553) the address suppressed. `stop` is checked
 * between batches (graceful shutdown). FU_TEMPFAIL on state database
 * trouble.
 *
 * In three parts, so that delivery runs while rendering goes on:
 * deliver_begin; deliver_pump after each rendered page (hands what is due
 * to the SMTP sessions and records what came back; it waits only until
 * every queued message is in a session's hands, so rendering never runs
 * far ahead of the relay); deliver_end sends what is left, waits for every
 * session and frees the handle. A job is `sending` (committed) before its
 * message goes, its outcome committed after.
 */
struct deliver;
void	deliver_begin(const struct config *, struct store *, struct spool *,
	    time_t now, volatile int *stop, struct deliver **);
void	deliver_pump(struct deliver *);
/*
 * 1 when messages the relay accepted have waited DELIVER_RECORD_WAIT_MS or
 * more for deliver_pump to record them: the caller should call it soon (a
 * crash before the record could send them again).
 */
#define DELIVER_RECORD_WAIT_MS	10
int	deliver_outcomes_waiting(struct deliver *);
/* Outcomes recorded so far (sent, deferred, failed): for progress. */
long	deliver_done(const struct deliver *);
int	deliver_end(struct deliver *, struct deliver_stats *, char **err);

/*
 * Start-up, under the instance lock: a file left in new/ by a crash after
 * its job's outcome was committed (sent, failed, cancelled) is moved on as
 * deliver would have done. Files of jobs still waiting stay; a file no job
 * knows is left for a human (logged).
 */
void	deliver_tidy_spool(const struct config *, struct store *, struct spool *);

#endif
