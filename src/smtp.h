/* smtp: deliver a batch of messages over one libesmtp session and report each recipient. */
#ifndef FOLLOWUPD_SMTP_H
#define FOLLOWUPD_SMTP_H

#include <stddef.h>

#include "util.h"

enum smtp_starttls {
	SMTP_STARTTLS_NO,
	SMTP_STARTTLS_OPTIONAL,
	SMTP_STARTTLS_REQUIRED,
};

struct smtp_config {
	const char	*host;		/* default "127.0.0.1" */
	int		 port;		/* default 25 */
	enum smtp_starttls starttls;
	const char	*ca_file;	/* NULL: system store */
	const char	*username;	/* NULL: no AUTH */
	const char	*password;	/* never logged */
	const char	*helo;		/* NULL: libesmtp default (hostname) */
	int		 timeout_ms;	/* connect and per-command timeout */
};

/* SMTP reply text kept per message; RFC 5321 4.5.3.1.5: reply line <= 512. */
#define SMTP_REPLY_MAX	512

struct smtp_item {
	/* in */
	const char	*sender;	/* envelope MAIL FROM address */
	const char	*rcpt;		/* envelope RCPT TO address */
	const char	*data;		/* the message, CRLF line ends */
	size_t		 len;
	/*
	 * Optional: called (in the session's thread) as soon as the relay
	 * accepted this message, before the session goes on, so the caller
	 * can record it at once: a crash later in the session then does not
	 * send it again. The item's out fields are final by then and
	 * `notified` is 1; smtp_deliver does not touch the item again.
	 */
	void		(*done)(struct smtp_item *, void *arg);
	void		*done_arg;
	/* out */
	int		 result;	/* FU_OK sent, FU_TEMPFAIL deferred, FU_PERMFAIL failed */
	int		 code;		/* SMTP reply code (0: none, e.g. not attempted) */
	char		 reply[SMTP_REPLY_MAX];	/* "550 5.1.1 no such user" or a local reason */
	/*
	 * 1 when the whole message went out but no reply came (connection
	 * lost or timeout after the final dot): the relay may have it. The
	 * result is FU_TEMPFAIL; [smtp] unknown_outcome decides.
	 */
	int		 unknown;
	int		 notified;	/* done() was called */
	/*
	 * Which reply decided the result, so the caller can tell a bad
	 * address (RCPT) from a refused sender (MAIL) or content (DATA).
	 */
	enum smtp_stage {
		SMTP_STAGE_NONE,	/* no reply: local reason */
		SMTP_STAGE_MAIL,
		SMTP_STAGE_RCPT,
		SMTP_STAGE_DATA,
	}		 stage;
	int		 enh_class, enh_subject;	/* enhanced status "5.7.x" or 0 */
};

/* One-time set-up (SIGPIPE ignored, TLS context). FU_PERMFAIL with *err on a bad ca_file. */
int	smtp_init(const struct smtp_config *, char **err);
void	smtp_shutdown(void);

/*
 * Send items[0..n) in one SMTP session (one connection, one transaction per
 * item). Every item gets a result: sent on a 2xx after DATA; permfail on a
 * 5xx to MAIL, RCPT or DATA; tempfail on 4xx, a refused connection, a
 * timeout, a lost connection, a failed required STARTTLS or AUTH, or when not
 * attempted. Returns FU_OK when the session ran (whatever the items'
 * results), FU_TEMPFAIL when no connection could be made (all items
 * tempfail, *err says why).
 */
int	smtp_deliver(const struct smtp_config *, struct smtp_item *items, size_t n,
	    char **err);

/*
 * smtp_deliver with pacing: pace(pace_arg) is called (in this thread) just
 * before each message's data is sent, and may sleep to hold a rate. Each
 * thread may run its own session at the same time (libesmtp keeps no
 * shared session state; ours is per thread).
 */
typedef void (*smtp_pace_fn)(void *arg);
int	smtp_deliver_paced(const struct smtp_config *, struct smtp_item *items,
	    size_t n, smtp_pace_fn pace, void *pace_arg, char **err);

#endif
