/* ratepage: the rating page of [ratings] url on http.c's routes (GET shows, POST records). */
#include "ratepage.h"
#include "clock.h"
#include "log.h"
#include "rating.h"
#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct ratepage {
	const struct config	*cfg;
	const struct consent	*consent;
};

static struct ratepage the_page;

/* What a request names: a checked token and the job's row. */
struct rated {
	int64_t			 job;
	enum rating_scale	 scale;
	int			 score;		/* the token's */
	struct store_rating	 row;
};

char *
ratepage_path(const struct config *cfg)
{
	const char *u = cfg->ratings_url, *p;

	if (u == NULL || strncmp(u, "https://", 8) != 0 ||
	    (p = strchr(u + 8, '/')) == NULL)
		return xstrdup("/rate");
	return xstrdup(p);
}

/* The whole page; title is plain text (escaped here), body is HTML. */
static void
page(struct http_response *res, int status, const char *title,
    const char *body_html)
{
	res->status = status;
	res->content_type = "text/html; charset=utf-8";
	buf_reset(&res->body);
	buf_puts(&res->body, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
	    "<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width="
	    "device-width, initial-scale=1\">\n<meta name=\"robots\" content="
	    "\"noindex\">\n<meta name=\"referrer\" content=\"no-referrer\">\n"
	    "<title>");
	util_html_escape(&res->body, title);
	buf_puts(&res->body, "</title>\n</head>\n<body style=\"font-family:"
	    "Helvetica, Arial, sans-serif; max-width:34em; margin:3em auto; "
	    "padding:0 1em; color:#1f2933;\">\n<h1 style=\"font-size:1.3em;\">");
	util_html_escape(&res->body, title);
	buf_printf(&res->body, "</h1>\n%s</body>\n</html>\n", body_html);
}

static void
bad_link(struct http_response *res)
{
	page(res, 400, "This rating link is not valid", "<p>The link may be "
	    "incomplete. Open it again from the message, copying the whole "
	    "link. Nothing was recorded.</p>\n");
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
ratepage_form_value(const char *body, const char *key, int *bad)
{
	size_t klen = strlen(key);

	*bad = 0;
	for (const char *p = body; p != NULL && *p != '\0';
	    p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
		size_t n = strcspn(p, "&");
		struct buf v = { 0 };

		if (n < klen + 1 || strncmp(p, key, klen) != 0 || p[klen] != '=')
			continue;
		for (size_t i = klen + 1; i < n; i++) {
			if (p[i] == '+')
				buf_putc(&v, ' ');
			else if (p[i] != '%')
				buf_putc(&v, p[i]);
			else if (i + 2 < n && hexval(p[i + 1]) >= 0 &&
			    hexval(p[i + 2]) >= 0) {
				buf_putc(&v, (char)(hexval(p[i + 1]) * 16 +
				    hexval(p[i + 2])));
				i += 2;
			} else {
				*bad = 1;
				break;
			}
		}
		if (!*bad && (memchr(v.data ? v.data : "", '\0', v.len) !=
		    NULL || !utf8_valid(buf_cstr(&v), v.len)))
			*bad = 1;
		if (*bad) {
			buf_free(&v);
			return NULL;
		}
		return buf_steal(&v);
	}
	return NULL;
}

int
ratepage_comment(const char *s, struct buf *out)
{
	size_t chars = 0, start = out->len;

	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if ((c & 0xc0) != 0x80)
			chars++;
		if (c == '\r') {
			buf_putc(out, '\n');
			if (p[1] == '\n')
				p++;
		} else if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
			goto refuse;
		else
			buf_putc(out, (char)c);
		if (chars > RATEPAGE_COMMENT_MAX)
			goto refuse;
	}
	return 0;
refuse:
	out->len = start;
	if (out->data)
		out->data[start] = '\0';
	return -1;
}

/* The token of this request (query, else form) checked; 0 or -1. */
static int
rated_token(const struct ratepage *p, const char *token, struct rated *rt)
{
	size_t klen;
	const unsigned char *key = consent_secret(p->consent, &klen);

	memset(rt, 0, sizeof(*rt));
	return rating_token_check(key, klen, token, &rt->job, &rt->scale,
	    &rt->score);
}

/* The job's row; FU_OK with *found, or FU_TEMPFAIL (logged). */
static int
rated_load(struct store *st, struct rated *rt, int *found)
{
	char *err = NULL;
	int r;

	if ((r = store_rating_get(st, rt->job, &rt->row, found, &err)) !=
	    FU_OK) {
		log_warnx("ratepage: job %" PRId64 ": %s", rt->job, err);
		free(err);
	}
	return r;
}

/* 0 while the job may be rated, else the page already set (410). */
static int
rated_closed(const struct ratepage *p, const struct rated *rt, int found,
    struct http_response *res)
{
	if (!found || rt->row.sent_at == 0) {
		page(res, 410, "This rating link is no longer valid", "<p>We "
		    "cannot find the message it came from. Nothing was "
		    "recorded.</p>\n");
		return -1;
	}
	if (clock_now() > rt->row.sent_at + p->cfg->ratings_window) {
		page(res, 410, "This rating link has expired", "<p>Ratings can "
		    "be given for a while after our message; that time is over. "
		    "Nothing was recorded. You can still reply to the message."
		    "</p>\n");
		return -1;
	}
	return 0;
}

static int
open_store(const struct ratepage *p, struct store **st)
{
	char *path = store_path(p->cfg->queue_dir), *err = NULL;
	int r = store_open(path, p->cfg->busy_timeout_ms, st, &err);

	free(path);
	if (r != FU_OK) {
		log_warnx("ratepage: %s", err);
		free(err);
	}
	return r;
}

static void
busy(struct http_response *res)
{
	page(res, 503, "Please try again in a minute", "<p>We could not "
	    "record your rating just now. Nothing was recorded yet.</p>\n");
}

/* The options as radio buttons, `checked` preselected. */
static void
options_html(struct buf *b, enum rating_scale s, int checked)
{
	int nps = s == RATING_NPS;

	buf_printf(b, "<fieldset style=\"border:0; padding:0; margin:1em 0;"
	    "\">\n<legend style=\"margin-bottom:0.5em;\">Your rating</legend>\n");
	if (nps)
		buf_puts(b, "<p style=\"margin:0 0 0.3em; font-size:0.9em;\">"
		    "0 = not at all likely, 10 = extremely likely</p>\n");
	for (int v = rating_min(s); v <= rating_max(s); v++) {
		buf_printf(b, "<label style=\"display:%s; margin:0.3em 0.6em "
		    "0.3em 0;\"><input type=\"radio\" name=\"score\" id=\""
		    "score-%d\" value=\"%d\"%s%s> ", nps ? "inline-block" :
		    "block", v, v, v == checked ? " checked" : "",
		    v == rating_min(s) ? " required" : "");
		util_html_escape(b, rating_label(s, v));
		buf_puts(b, "</label>\n");
	}
	buf_puts(b, "</fieldset>\n");
}

static void
on_get(const struct http_request *rq, struct http_response *res, void *arg)
{
	struct ratepage *p = arg;
	const char *token = http_arg(rq, "t");
	const char *q = p->cfg->ratings_question;
	struct store *st = NULL;
	struct rated rt;
	struct buf b = { 0 };
	int found = 0;

	if (rated_token(p, token, &rt) == -1) {
		bad_link(res);
		return;
	}
	if (open_store(p, &st) != FU_OK || rated_load(st, &rt, &found) !=
	    FU_OK) {
		store_close(st);
		busy(res);
		return;
	}
	store_close(st);
	if (rated_closed(p, &rt, found, res) == 0) {
		/* Only a page: a GET never records (scanners follow links). */
		buf_puts(&b, "<p>");
		util_html_escape(&b, q ? q : rating_default_question(rt.scale));
		buf_puts(&b, "</p>\n");
		if (rt.row.rated && rating_valid(rt.scale, rt.row.score)) {
			buf_puts(&b, "<p>You rated this <strong>");
			util_html_escape(&b, rating_label(rt.scale, rt.row.score));
			buf_puts(&b, "</strong> already. Submitting again "
			    "replaces that rating.</p>\n");
		}
		buf_puts(&b, "<form method=\"post\" action=\"?t=");
		util_html_escape(&b, token);
		buf_puts(&b, "\">\n");
		options_html(&b, rt.scale, rt.score);
		buf_printf(&b, "<label for=\"comment\">Anything you would like "
		    "to add? (optional)</label><br>\n<textarea id=\"comment\" "
		    "name=\"comment\" rows=\"5\" maxlength=\"%d\" style=\""
		    "width:100%%; box-sizing:border-box; font:inherit;\">"
		    "</textarea>\n<p><button type=\"submit\" id=\"submit\" "
		    "style=\"font-size:1em; padding:0.5em 1.2em;\">Submit"
		    "</button></p>\n</form>\n", RATEPAGE_COMMENT_MAX);
		page(res, 200, "Rate our help", buf_cstr(&b));
	}
	buf_free(&b);
	store_rating_clear(&rt.row);
}

/*
 * The POST's fields: the score (default the token's) and the comment.
 * 0, or -1 with the 400 page set.
 */
static int
post_fields(const struct http_request *rq, const struct rated *rt,
    int *score, struct buf *comment, struct http_response *res)
{
	const char *body = http_body(rq, NULL);
	const char *ctype = http_header(rq, "Content-Type");
	char *sv, *cv;
	int bad1, bad2, ok = 1;

	if (ctype != NULL && strncasecmp(ctype,
	    "application/x-www-form-urlencoded", 33) != 0) {
		page(res, 415, "Please use the form on the rating page",
		    "<p>Nothing was recorded.</p>\n");
		return -1;
	}
	sv = ratepage_form_value(body, "score", &bad1);
	cv = ratepage_form_value(body, "comment", &bad2);
	*score = rt->score;
	if (bad1 || bad2 || (sv != NULL && rating_parse_score(rt->scale, sv,
	    score) == -1)) {
		page(res, 400, "This rating could not be read", "<p>The form "
		    "arrived garbled or with a score the scale does not have. "
		    "Nothing was recorded.</p>\n");
		ok = 0;
	} else if (*score < 0) {
		page(res, 400, "Please pick a rating", "<p>Go back and choose "
		    "one of the options. Nothing was recorded.</p>\n");
		ok = 0;
	} else if (cv != NULL && ratepage_comment(cv, comment) == -1) {
		page(res, 400, "Your comment is too long", "<p>Please keep it "
		    "under 2,000 characters (and without control characters). "
		    "Nothing was recorded; go back to shorten it.</p>\n");
		ok = 0;
	}
	free(sv);
	free(cv);
	return ok ? 0 : -1;
}

static void
thanks(struct http_response *res, const struct rated *rt, int score,
    const struct buf *comment)
{
	struct buf b = { 0 };

	buf_puts(&b, "<p>Your rating: <strong id=\"rating\">");
	util_html_escape(&b, rating_label(rt->scale, score));
	buf_puts(&b, "</strong></p>\n");
	if (comment->len > 0) {
		buf_puts(&b, "<p>Your comment:</p>\n<blockquote id=\"comment\" "
		    "style=\"white-space:pre-wrap; margin:0 0 1em 1em;\">");
		util_html_escape(&b, comment->data);
		buf_puts(&b, "</blockquote>\n");
	}
	buf_puts(&b, "<p>You can change it with the same link for a while."
	    "</p>\n");
	page(res, 200, "Thank you for your rating", buf_cstr(&b));
	buf_free(&b);
}

static void
on_post(const struct http_request *rq, struct http_response *res, void *arg)
{
	struct ratepage *p = arg;
	int tbad = 0, score, found = 0, r;
	char *tbody = ratepage_form_value(http_body(rq, NULL), "t", &tbad);
	const char *token = http_arg(rq, "t") ? http_arg(rq, "t") : tbody;
	struct store *st = NULL;
	struct buf comment = { 0 };
	struct rated rt;
	char *err = NULL;

	if (rated_token(p, token, &rt) == -1) {
		log_warnx("ratepage: POST with a bad token: nothing recorded");
		bad_link(res);
		goto done;
	}
	if (post_fields(rq, &rt, &score, &comment, res) == -1)
		goto done;
	if (open_store(p, &st) != FU_OK) {
		busy(res);
		goto done;
	}
	/* The window is checked and the rating written in one transaction. */
	if ((r = store_begin(st, &err)) == FU_OK &&
	    (r = rated_load(st, &rt, &found)) == FU_OK) {
		if (rated_closed(p, &rt, found, res) == -1) {
			store_rollback(st);
			goto done;
		}
		if ((r = store_rating_put(st, rt.job, rating_scale_name(rt.scale),
		    score, comment.len ? comment.data : NULL, clock_now(),
		    &err)) == FU_OK)
			r = store_commit(st, &err);
		if (r != FU_OK)
			store_rollback(st);
	}
	if (r != FU_OK) {
		if (err)
			log_warnx("ratepage: job %" PRId64 ": %s", rt.job, err);
		busy(res);
		goto done;
	}
	log_info("ratepage: job %" PRId64 " rated %s %d%s", rt.job,
	    rating_scale_name(rt.scale), score, rt.row.rated ? " (replaced)" :
	    "");
	thanks(res, &rt, score, &comment);
done:
	store_close(st);
	store_rating_clear(&rt.row);
	buf_free(&comment);
	free(tbody);
	free(err);
}

void
ratepage_routes(struct http *h, const struct config *cfg,
    const struct consent *c)
{
	char *path = ratepage_path(cfg);

	the_page.cfg = cfg;
	the_page.consent = c;
	/* Concurrent (http.h): the_page is read-only and each request opens
	 * state.db for itself, so one waiting on a lock holds up no other. */
	http_route_concurrent(h, "GET", path, on_get, &the_page);
	http_route_concurrent(h, "POST", path, on_post, &the_page);
	free(path);
}
