/* ratepage: the rating page of [ratings] url on http.c's routes (GET shows, POST records). */
#ifndef FOLLOWUPD_RATEPAGE_H
#define FOLLOWUPD_RATEPAGE_H

#include <stddef.h>

#include "config.h"
#include "consent.h"
#include "http.h"

/* The longest comment kept, in characters (code points). */
#define RATEPAGE_COMMENT_MAX	2000

/*
 * Add the routes for the path of [ratings] url to h:
 *   GET (and HEAD) PATH?t=TOKEN: a small page with the token's score
 *        preselected, an optional comment box and a Submit button that
 *        POSTs. It records nothing (mail scanners and link previewers
 *        follow links).
 *   POST PATH?t=TOKEN with the form fields score and comment
 *        (application/x-www-form-urlencoded): records the rating in
 *        state.db (one per job; a later POST replaces it) and answers a
 *        thank-you page.
 * A forged, truncated or altered token, a score outside the scale, a
 * malformed form or a comment over RATEPAGE_COMMENT_MAX characters gets
 * 400; a job whose window ([ratings] window after its check-in was sent)
 * is over, or that is unknown, 410; a busy state.db 503. Nothing about
 * the rater (address, user agent) is stored. cfg and c must outlive h.
 */
void	ratepage_routes(struct http *h, const struct config *cfg,
	    const struct consent *c);

/* The route's path: the path part of [ratings] url, or "/rate". Caller frees. */
char	*ratepage_path(const struct config *);

/*
 * Strict application/x-www-form-urlencoded: the value of `key` in body,
 * decoded ('+' is a space, %XX a byte), or NULL when absent. *bad is set
 * (and NULL returned) when the field is there but malformed: a '%'
 * without two hex digits, a decoded NUL or invalid UTF-8. Caller frees.
 */
char	*ratepage_form_value(const char *body, const char *key, int *bad);

/*
 * A comment as typed, made fit to keep: CRLF and lone CR become LF. -1 when
 * it has more than RATEPAGE_COMMENT_MAX characters or a control character
 * other than TAB and LF (nothing is appended then), else 0.
 */
int	ratepage_comment(const char *s, struct buf *out);

#endif
