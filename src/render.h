/* render: tick step 2: due jobs re-checked against the source, then template → MIME → spool. */
#ifndef FOLLOWUPD_RENDER_H
#define FOLLOWUPD_RENDER_H

#include <time.h>

#include "config.h"
#include "source.h"
#include "spool.h"
#include "store.h"
#include "util.h"
#include "value.h"

struct render;

/*
 * Load and parse every rule's templates (templates/NAME/subject.mustache,
 * text.mustache, optional html.mustache) and the partials they use, once.
 * Every problem is appended to errs as "FILE:LINE: message\n"; NULL when
 * there was any. The config must outlive the render. `preview`: nothing
 * rendered will be sent (preview, check), so a missing unsubscribe secret
 * may be stood in for.
 */
struct render	*render_open(const struct config *, int preview,
		    struct buf *errs);
void		 render_close(struct render *);

struct render_stats {
	int	queued;
	int	cancelled;
	int	failed;
	int	held;		/* left planned for the next tick (temporary problem) */
};

/*
 * Tick step 2: every planned job whose time has come is re-checked against
 * the source (reopened? no address? suppressed?) and either cancelled with a
 * reason or rendered, written durably to the spool and marked queued.
 * FU_TEMPFAIL stops the step early (source busy, disk full); nothing is lost:
 * unfinished jobs stay planned.
 *
 * `page_done` (may be NULL) is called with `arg` after each page's
 * decisions are committed (its messages are in new/ and their jobs
 * `queued`): the daemon hands them to delivery while the next page renders.
 * `cut` (may be NULL) is asked after each job: 1 ends the page there (it
 * is committed and page_done called at once), so that delivery's outcomes
 * are recorded within milliseconds even while a page is being built.
 */
typedef void (*render_page_fn)(void *arg);
typedef int (*render_cut_fn)(void *arg);
int	render_tick(struct render *, struct store *, struct source *,
	    struct spool *, time_t now, render_page_fn page_done,
	    render_cut_fn cut, void *arg, struct render_stats *, char **err);

/*
 * preview: the complete message that would be sent for the rule's source
 * row with key `key`, as of `now`. Writes nothing. FU_PERMFAIL with *err
 * when there is no such row or it cannot be mailed (the reason).
 */
int	render_preview(struct render *, struct source *, const char *rule,
	    const char *key, time_t now, struct buf *out, char **err);

/*
 * render_preview in its two halves, for a caller that times them apart
 * (bench/render_bench.c). render_load does everything that reads the
 * source (the row re-checked, the recipient checked, its history) and
 * keeps the row; render_loaded_build renders it (templates, the values
 * render derives, MIME) with the code render_preview and render_tick run,
 * without another query. Errors are render_preview's. A loaded row is
 * built once: the build consumes it, render_loaded_free releases what is
 * left either way (NULL is fine).
 */
struct render_loaded;
int	render_load(struct render *, struct source *, const char *rule,
	    const char *key, time_t now, struct render_loaded **, char **err);
int	render_loaded_build(struct render *, struct render_loaded *,
	    struct buf *out, char **err);
void	render_loaded_free(struct render_loaded *);

/*
 * What `preview --html/--text/--sample` show: the rendered parts besides the
 * message, and every template variable that was missing or empty.
 */
struct render_parts {
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
void	render_parts_clear(struct render_parts *);

/* render_preview, keeping the parts. */
int	render_preview_parts(struct render *, struct source *, const char *rule,
	    const char *key, time_t now, struct render_parts *, char **err);

/*
 * preview --sample: the first `n` rows the rule's query returns over the
 * whole history, each rendered (nothing written). cb gets each row's key
 * and either FU_OK with the parts, or FU_PERMFAIL with why it would not be
 * sent or could not be rendered. FU_TEMPFAIL when the source is busy.
 */
typedef void (*render_sample_cb)(const char *key, int result,
    const struct render_parts *, const char *why, void *arg);
int	render_sample(struct render *, struct source *, const char *rule,
	    int n, time_t now, render_sample_cb, void *arg, char **err);

#endif
