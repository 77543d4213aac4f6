/* bouncecmd: `followupd bounce`: one decision per returned message, recorded in state.db. */
#ifndef FOLLOWUPD_BOUNCECMD_H
#define FOLLOWUPD_BOUNCECMD_H

#include <stdint.h>
#include <time.h>

#include "bounce.h"
#include "config.h"
#include "util.h"

/*
 * What `bounce` needs open: state.db (the jobs a bounce names, where the
 * decision goes) and the unsubscribe secret (it signs the return paths,
 * verp.h). explain: open nothing that is not there already and write
 * nothing (a missing state.db or secret: no job is found). FU_TEMPFAIL
 * when state.db is busy, FU_PERMFAIL otherwise, with *err.
 */
struct bouncecmd;
int	bouncecmd_open(const struct config *, int explain, struct bouncecmd **,
	    char **err);
void	bouncecmd_close(struct bouncecmd *);

/*
 * One recipient of one message as `bounce --explain` shows it: job 0 and
 * matched_by NULL when the message names none of our jobs (no valid VERP
 * token, no known Message-ID). A message without a recipient gives one
 * row with recipient NULL and the message's kind.
 */
struct bouncecmd_row {
	char		*source;
	char		*recipient;
	char		 status[12];
	enum bounce_kind kind;
	char		*reason;
	int64_t		 job;
	const char	*matched_by;	/* "verp", "message-id" or NULL */
};
void	bouncecmd_rows_free(struct bouncecmd_row *, int n);

/*
 * Explain msg[0..len) from source: its rows appended to *rows (*n of
 * them). Changes nothing. FU_PERMFAIL when it is not a mail message,
 * FU_TEMPFAIL when state.db is busy, with *err.
 */
int	bouncecmd_explain(struct bouncecmd *, const char *source,
	    const char *msg, size_t len, struct bouncecmd_row **rows, int *n,
	    char **err);

/*
 * Handle msg[0..len) from source ("stdin" reads Postfix's
 * ORIGINAL_RECIPIENT and RECIPIENT from the environment): one decision,
 * logged and kept in state.db in one transaction. Only a message whose
 * VERP token verifies or that quotes one of our Message-IDs changes
 * anything, and only for its job's own address: hard → the job is
 * bounced (when sent) and the address suppressed; soft → the address is
 * suppressed at [bounces] soft_limit soft bounces in soft_window;
 * complaint → an opt-out ([bounces] complaint) with reason
 * "complaint (ARF)"; policy, auto-reply, none → recorded only. *decision
 * (static) says what was done; "duplicate" for a message whose
 * Message-ID was handled before, which changes nothing. FU_TEMPFAIL: state.db busy or the disk
 * full, nothing kept (try again); FU_PERMFAIL: not a mail message (kept as
 * such).
 */
int	bouncecmd_handle(struct bouncecmd *, const char *source,
	    const char *msg, size_t len, time_t now, const char **decision,
	    char **err);

/*
 * Every message of the Maildir dir (dir/new), oldest name first: handled,
 * then moved to dir/cur with the S (seen) flag. A temporary failure stops
 * the run and leaves that message in new/ for the next one (FU_TEMPFAIL).
 * *handled counts the messages moved.
 */
int	bouncecmd_maildir(struct bouncecmd *, const char *dir, time_t now,
	    int *handled, char **err);

/*
 * The bytes of one message from fd, at most BOUNCE_MESSAGE_MAX kept (the
 * rest is read and dropped, so a pipe's writer is not cut off).
 */
int	bouncecmd_read_fd(int fd, struct buf *out, char **err);

#endif
