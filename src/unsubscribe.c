/* unsubscribe: the one-click unsubscribe endpoint (RFC 8058) on http.c's routes. */
#include "unsubscribe.h"
#include "clock.h"
#include "log.h"
#include "store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct unsub {
	const struct config	*cfg;
	const struct consent	*consent;
};

static struct unsub the_unsub;

/*
 * Requests with a bad token: counted, and logged at most once a minute (a
 * flood of forged links must not flood the log). The count goes to
 * state.db's meta (UNSUB_REJECTED_KEY) for the metrics when it is logged.
 */
#define UNSUB_LOG_INTERVAL	60
static struct {
	pthread_mutex_t	 lock;
	long		 pending;	/* not yet logged nor stored */
	time_t		 last_log;
} rejected = { PTHREAD_MUTEX_INITIALIZER, 0, 0 };

/* Add n to the stored count; FU_TEMPFAIL (and nothing stored) when busy. */
static int
rejected_store(const struct config *cfg, long n)
{
	struct store *st = NULL;
	char *err = NULL, *path = store_path(cfg->queue_dir), *v, num[24];
	int r;

	r = store_open(path, cfg->busy_timeout_ms, &st, &err);
	free(path);
	if (r == FU_OK && (r = store_begin(st, &err)) == FU_OK) {
		v = store_meta_get(st, UNSUB_REJECTED_KEY);
		snprintf(num, sizeof(num), "%lld", (v ? strtoll(v, NULL, 10) :
		    0) + (long long)n);
		free(v);
		if ((r = store_meta_set(st, UNSUB_REJECTED_KEY, num, &err)) ==
		    FU_OK)
			r = store_commit(st, &err);
		if (r != FU_OK)
			store_rollback(st);
	}
	if (r != FU_OK)
		log_warnx("unsubscribe: cannot count rejected tokens: %s", err);
	store_close(st);
	free(err);
	return r;
}

/* A request with a bad token; force: log and store what is pending now. */
static void
rejected_note(const struct config *cfg, int add, int force)
{
	time_t now = clock_now();
	long n = 0;

	pthread_mutex_lock(&rejected.lock);
	rejected.pending += add;
	if (rejected.pending > 0 && (force ||
	    now - rejected.last_log >= UNSUB_LOG_INTERVAL)) {
		n = rejected.pending;
		rejected.pending = 0;
		rejected.last_log = now;
	}
	pthread_mutex_unlock(&rejected.lock);
	if (n == 0)
		return;
	log_warnx("unsubscribe: %ld request%s with a bad token (nothing "
	    "recorded; at most one such line a minute)", n, n == 1 ? "" : "s");
	if (rejected_store(cfg, n) != FU_OK) {
		pthread_mutex_lock(&rejected.lock);
		rejected.pending += n;		/* counted next time */
		pthread_mutex_unlock(&rejected.lock);
	}
}

char *
unsubscribe_path(const struct config *cfg)
{
	const char *u = cfg->unsubscribe_url, *p;

	if (u == NULL || strncmp(u, "https://", 8) != 0 ||
	    (p = strchr(u + 8, '/')) == NULL)
		return xstrdup("/unsubscribe");
	/* The route is a path: a query or fragment (which `check` refuses)
	 * would make it match nothing. */
	return xstrndup(p, strcspn(p, "?#"));
}

static void
page(struct http_response *res, int status, const char *title,
    const char *body_html)
{
	res->status = status;
	res->content_type = "text/html; charset=utf-8";
	buf_reset(&res->body);
	buf_printf(&res->body, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
	    "<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width="
	    "device-width, initial-scale=1\">\n<meta name=\"robots\" content="
	    "\"noindex\">\n<title>%s</title>\n</head>\n<body style=\"font-family:"
	    "Helvetica, Arial, sans-serif; max-width:32em; margin:3em auto; "
	    "padding:0 1em; color:#1f2933;\">\n<h1 style=\"font-size:1.3em;\">"
	    "%s</h1>\n%s</body>\n</html>\n", title, title, body_html);
}

/* "a…@example.com": enough for the reader to recognise, little for a forwardee. */
static void
masked(struct buf *b, const char *addr)
{
	const char *at = strrchr(addr, '@');
	char first[2] = { addr[0], '\0' };

	util_html_escape(b, first);
	buf_puts(b, "…");
	util_html_escape(b, at ? at : "");
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

/* application/x-www-form-urlencoded: the value of `key`, decoded, or NULL. */
static char *
form_value(const char *body, const char *key)
{
	size_t klen = strlen(key);

	for (const char *p = body; p && *p; p = strchr(p, '&') ? strchr(p,
	    '&') + 1 : NULL) {
		size_t n = strcspn(p, "&");
		struct buf v = { 0 };

		if (n <= klen || strncmp(p, key, klen) != 0 || p[klen] != '=')
			continue;
		for (size_t i = klen + 1; i < n; i++) {
			if (p[i] == '+')
				buf_putc(&v, ' ');
			else if (p[i] == '%' && i + 2 < n &&
			    hexval(p[i + 1]) >= 0 && hexval(p[i + 2]) >= 0) {
				buf_putc(&v, (char)(hexval(p[i + 1]) * 16 +
				    hexval(p[i + 2])));
				i += 2;
			} else
				buf_putc(&v, p[i]);
		}
		return buf_steal(&v);
	}
	return NULL;
}

static void
on_get(const struct http_request *rq, struct http_response *res, void *arg)
{
	struct unsub *u = arg;
	const char *token = http_arg(rq, "t");
	char *addr = NULL, *cls = NULL;
	struct buf b = { 0 };

	if (consent_token_check(u->consent, token, &addr, &cls) != FU_OK) {
		rejected_note(u->cfg, 1, 0);
		page(res, 400, "This unsubscribe link is not valid",
		    "<p>The link may be incomplete. Copy the whole link from "
		    "the message, or reply to the message and ask us to stop."
		    "</p>\n");
		return;
	}
	/* A confirmation only: scanners that follow links must not
	 * unsubscribe anyone. The button POSTs what a mail client's
	 * one-click POST sends (RFC 8058 3.2). */
	buf_puts(&b, "<p>Stop ");
	util_html_escape(&b, cls);
	buf_puts(&b, " mail to <strong>");
	masked(&b, addr);
	buf_puts(&b, "</strong>?</p>\n<form method=\"post\" action=\"?t=");
	util_html_escape(&b, token);
	buf_puts(&b, "\">\n<input type=\"hidden\" name=\"List-Unsubscribe\" "
	    "value=\"One-Click\">\n<button type=\"submit\" id=\"unsubscribe\" "
	    "style=\"font-size:1em; padding:0.5em 1.2em;\">Unsubscribe</button>\n"
	    "</form>\n");
	page(res, 200, "Unsubscribe", buf_cstr(&b));
	buf_free(&b);
	free(addr);
	free(cls);
}

static void
on_post(const struct http_request *rq, struct http_response *res, void *arg)
{
	struct unsub *u = arg;
	const char *body = http_body(rq, NULL);
	char *one = form_value(body, "List-Unsubscribe");
	char *tbody = form_value(body, "t");
	const char *token = http_arg(rq, "t") ? http_arg(rq, "t") : tbody;
	char *addr = NULL, *cls = NULL, *err = NULL, *path;
	struct store *st = NULL;
	int r, added = 0;

	if (consent_token_check(u->consent, token, &addr, &cls) != FU_OK) {
		rejected_note(u->cfg, 1, 0);
		page(res, 400, "This unsubscribe link is not valid",
		    "<p>Nothing was changed.</p>\n");
		goto done;
	}
	if (one == NULL || strcmp(one, "One-Click") != 0) {
		page(res, 400, "Not a one-click unsubscribe request",
		    "<p>The request lacks List-Unsubscribe=One-Click (RFC "
		    "8058). Nothing was changed.</p>\n");
		goto done;
	}
	path = store_path(u->cfg->queue_dir);
	r = store_open(path, u->cfg->busy_timeout_ms, &st, &err);
	free(path);
	if (r == FU_OK)
		r = consent_optout_add(st, addr, cls, "one-click unsubscribe "
		    "(RFC 8058)", clock_now(), &added, &err);
	store_close(st);
	if (r != FU_OK) {
		log_warnx("unsubscribe: %s", err);
		page(res, 503, "Please try again in a minute",
		    "<p>We could not record your request just now. Nothing was "
		    "changed yet.</p>\n");
		goto done;
	}
	log_info("unsubscribe: @%s opted out of %s mail%s", strrchr(addr,
	    '@') + 1, cls, added ? "" : " (already)");
	page(res, 200, "You are unsubscribed", "<p>You will get no more of "
	    "these messages. Replies to our earlier messages still reach us."
	    "</p>\n");
done:
	free(one);
	free(tbody);
	free(addr);
	free(cls);
	free(err);
}

void
unsubscribe_routes(struct http *h, const struct config *cfg,
    const struct consent *c)
{
	char *path = unsubscribe_path(cfg);

	the_unsub.cfg = cfg;
	the_unsub.consent = c;
	/* Concurrent: the_unsub is read-only, a POST opens state.db for
	 * itself, and a GET (no database) never waits behind a POST. */
	http_route_concurrent(h, "GET", path, on_get, &the_unsub);
	http_route_concurrent(h, "POST", path, on_post, &the_unsub);
	free(path);
}

void
unsubscribe_flush(const struct config *cfg)
{
	rejected_note(cfg, 0, 1);
}
