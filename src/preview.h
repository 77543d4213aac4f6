/* preview: the message a rule would send for one source row (or a sample of rows), nothing written. */
#ifndef FOLLOWUPD_PREVIEW_H
#define FOLLOWUPD_PREVIEW_H

#include <time.h>

#include "config.h"
#include "source.h"
#include "util.h"

/*
 * Its own composer (compose_open with preview set: a missing unsubscribe
 * secret may be stood in for); errors as compose_open's and
 * rules_time_load's, NULL when there was any. The config must outlive it.
 */
struct preview;
struct preview	*preview_open(const struct config *, struct buf *errs);
void		 preview_close(struct preview *);

/*
 * The complete message that would be sent for the rule's source row with
 * key `key`, as of `now`; its Message-ID is "preview.RULE.KEY@DOMAIN".
 * FU_PERMFAIL with *err when there is no such row or it cannot be mailed
 * (the gate's reason: no or bad address).
 */
int	preview_message(struct preview *, struct source *, const char *rule,
	    const char *key, time_t now, struct buf *out, char **err);

/*
 * preview_message in its two halves, for a caller that times them apart
 * (bench/render_bench.c). preview_load does everything that reads the
 * source (the row fetched, the recipient checked, its history) and keeps
 * the row; preview_loaded_build composes it, without another query. A
 * loaded row is built once; preview_loaded_free releases it either way
 * (NULL is fine).
 */
struct preview_loaded;
int	preview_load(struct preview *, struct source *, const char *rule,
	    const char *key, time_t now, struct preview_loaded **, char **err);
int	preview_loaded_build(struct preview *, struct preview_loaded *,
	    struct buf *out, char **err);
void	preview_loaded_free(struct preview_loaded *);

/*
 * What `preview --html/--text/--sample` show: the rendered parts besides the
 * message, and every template variable that was missing or empty.
 */
struct preview_parts {
	char		*subject;	/* as rendered (the header cleans it) */
	char		*text;
	char		*html;		/* NULL: the rule has no html template */
	char		*to_addr;
	char		*to_name;	/* may be NULL */
	char		*from;
	char		*message_id;
	time_t		 date;
	/*
	 * One line per variable, once each, in the order met:
	 * "NAME\tmissing\tTEMPLATE" (not in the data at all: a typo?) or
	 * "NAME\tempty\tTEMPLATE" (in the data, but null or "").
	 */
	struct buf	 missing;
	struct buf	 message;	/* the complete RFC 5322 message */
};
void	preview_parts_clear(struct preview_parts *);

/* preview_message, keeping the parts. */
int	preview_parts(struct preview *, struct source *, const char *rule,
	    const char *key, time_t now, struct preview_parts *, char **err);

/*
 * preview --sample: the first `n` rows the rule's query returns over the
 * whole history, each composed (nothing written). cb gets each row's key
 * and either FU_OK with the parts, or FU_PERMFAIL with why it would not be
 * sent or could not be composed. FU_TEMPFAIL when the source is busy.
 */
typedef void (*preview_sample_cb)(const char *key, int result,
    const struct preview_parts *, const char *why, void *arg);
int	preview_samples(struct preview *, struct source *, const char *rule,
	    int n, time_t now, preview_sample_cb, void *arg, char **err);

#endif
