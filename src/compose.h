/* compose: one message from its context: templates → MIME, with the iCalendar item of a reminder. */
#ifndef FOLLOWUPD_COMPOSE_H
#define FOLLOWUPD_COMPOSE_H

#include <stdint.h>
#include <time.h>

#include "config.h"
#include "store.h"
#include "util.h"
#include "value.h"

/*
 * Pure: composing reads no clock (the time of writing is given), no
 * source and no state.db, and writes nothing; the Message-ID is given
 * too, and the MIME boundaries derive from it (mime.c), so the same
 * context, Message-ID and time make the same bytes (golden tests).
 *
 * compose_open loads and parses every rule's templates
 * (templates/NAME/subject.mustache, text.mustache, optional html.mustache,
 * a reminder's summary and description, per-locale folders), the
 * partials they use, each rule's `code` text, the [calendar] link and the
 * unsubscribe secret, once. Every problem is appended to errs as
 * "FILE:LINE: message\n"; NULL when there was any. The config must
 * outlive it. `preview`: nothing composed will be sent, so a missing
 * unsubscribe secret may be stood in for.
 */
struct compose;
struct compose	*compose_open(const struct config *, int preview,
		    struct buf *errs);
void		 compose_close(struct compose *);

/*
 * The whole message for rule index `rule` (cfg->rules[rule]) from ctx:
 * the source row with its personal values and history. ctx becomes the
 * template context (values cleaned, derived ones added) and stays the
 * caller's. FU_PERMFAIL for a template or data problem, with *err.
 * compose_message is compose_parts then compose_mime.
 */
int	compose_message(struct compose *, int rule, struct value *ctx,
	    const char *message_id, time_t now, struct buf *out, char **err);

/*
 * The two halves, for preview, which shows the parts: compose_parts
 * renders subject, text, html (and the calendar item) into the compose's
 * buffers, which compose_parts_get shows until compose_mime, which builds
 * the message from them. `missing` (may be NULL) is told of every
 * variable that rendered as nothing, with the part ("subject", "text",
 * "html").
 */
struct compose_parts {
	const char	*subject;	/* as rendered (the header cleans it) */
	const char	*text;
	const char	*html;		/* NULL: the rule has no html template */
};
typedef void (*compose_missing_fn)(const char *name, const struct value *ctx,
    const char *part, void *arg);
int	compose_parts(struct compose *, int rule, struct value *ctx,
	    const char *message_id, time_t now, compose_missing_fn missing,
	    void *arg, char **err);
void	compose_parts_get(struct compose *, struct compose_parts *);
int	compose_mime(struct compose *, int rule, const struct value *ctx,
	    const char *message_id, time_t now, struct buf *out, char **err);

/*
 * The rule's `code` text rendered with {{code.random}} = random (set in
 * ctx); 0 from compose_has_code when the rule has none.
 */
int	compose_has_code(const struct compose *, int rule);
int	compose_code(struct compose *, int rule, struct value *ctx,
	    const char *random, struct buf *out, char **err);

/*
 * The calendar item of an agent reminder, as template variables and as
 * what compose_message gives the iCalendar part: calendar.method, .uid,
 * .sequence, .request / .cancel / .update, .start / .end (Unix times),
 * .start_local and .end_local (the agent's zone), .start_utc, .timezone;
 * and the recipient (email, name, tz): the reminder's agent.
 */
void	compose_calendar(const struct config *, struct value *ctx,
	    const struct reminder *, const char *method);

/* "followupd.JOBID.RANDOM@DOMAIN", RANDOM 16 hex digits (caller frees). */
char	*compose_message_id(int64_t job_id, const char *from_addr);

/*
 * The secret rating links are signed with (the unsubscribe secret; NULL
 * when no rule is marketing or asks for ratings): survey.c makes the
 * links a check-in carries.
 */
const struct consent *compose_consent(const struct compose *);

#endif
