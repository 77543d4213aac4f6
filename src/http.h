/* http: a small HTTP server (libmicrohttpd) with a table of routes: /metrics, later /unsubscribe. */
#ifndef FOLLOWUPD_HTTP_H
#define FOLLOWUPD_HTTP_H

#include <stddef.h>

#include "util.h"

/* Largest request body accepted (a one-click unsubscribe POST is tiny). */
#define HTTP_BODY_MAX	(64 * 1024)

struct http;
struct http_request;

struct http_response {
	int		 status;	/* default 200 */
	const char	*content_type;	/* static string; default text/plain */
	struct buf	 body;
};

/*
 * A route's handler. Each connection has a thread of its own, so a handler
 * waiting (on state.db, say) holds up no other request. Handlers added with
 * http_route never run concurrently with each other (the server holds a
 * lock around them); those added with http_route_concurrent may run
 * concurrently with anything, so they keep no shared mutable state. Either
 * runs concurrently with the rest of the daemon, so it uses database
 * connections of its own. It fills *res; the server sends it.
 *
 * Against clients that hold connections (http.c): at most 32 connections,
 * 8 from one address; the request line, headers and body must arrive
 * within 10 s of the accept; a Content-Length over HTTP_BODY_MAX gets 413
 * at once, the body unread; one request per connection.
 */
typedef void (*http_handler)(const struct http_request *,
    struct http_response *, void *arg);

/* Request accessors. */
const char	*http_method(const struct http_request *);
const char	*http_path(const struct http_request *);	/* without the query */
/* A query-string or form argument ("?id=42"), or NULL. */
const char	*http_arg(const struct http_request *, const char *key);
/* The request body (NUL-terminated; "" when none). */
const char	*http_body(const struct http_request *, size_t *len);
/* A request header, case-insensitive, or NULL. */
const char	*http_header(const struct http_request *, const char *name);

/*
 * A server that is not listening yet. Add routes, then start it: the table
 * is fixed once it runs. method is "GET", "POST", ...; path matches
 * exactly, or as a prefix when it ends with '/'. A path without a route is
 * 404; a path with routes for other methods 405 (with Allow).
 */
struct http	*http_new(void);
void		 http_route(struct http *, const char *method, const char *path,
		    http_handler, void *arg);
void		 http_route_concurrent(struct http *, const char *method,
		    const char *path, http_handler, void *arg);

/*
 * Listen on `addr` (an IPv4 or IPv6 literal; never a name) and `port` (0:
 * a free one) and serve on a thread of its own. FU_TEMPFAIL with *err when
 * the address cannot be bound (in use, not ours).
 */
int		 http_start(struct http *, const char *addr, int port,
		    char **err);
int		 http_port(const struct http *);	/* the bound port */
/* Stop serving (waits for the thread) and free everything. NULL is fine. */
void		 http_free(struct http *);

#endif
