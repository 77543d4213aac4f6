/* http: a small HTTP server (libmicrohttpd) with a table of routes (/metrics, /unsubscribe), hardened against clients that hold connections. */
#include "http.h"
#include "log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/*
 * Limits against a client that holds connections open (slowloris):
 * connections at once, from one address at once, how long an idle one may
 * stay, and the absolute deadline for a request's headers and body
 * (seconds), counted from the accept: a byte every few seconds does not
 * restart it. The deadline is enforced by shutting the socket down.
 */
#define HTTP_CONN_MAX		32
#define HTTP_CONN_PER_ADDR	8
#define HTTP_CONN_TIMEOUT	10
#define HTTP_REQUEST_DEADLINE	10

/* A connection whose request is still being received (deadline table). */
struct live {
	struct MHD_Connection	*conn;
	int			 fd;		/* our dup: the socket stays ours */
	long long		 deadline_ms;	/* 0: request read, answering */
	struct live		*next;
};

struct route {
	char		*method;
	char		*path;
	http_handler	 fn;
	void		*arg;
	int		 concurrent;
};

struct http {
	struct MHD_Daemon	*mhd;
	struct route		*routes;
	size_t			 nroutes;
	int			 port;
	pthread_mutex_t		 serial;	/* held by routes not concurrent */
	pthread_mutex_t		 lock;		/* live, stop */
	pthread_cond_t		 wake;
	struct live		*live;
	int			 stop;
	int			 reaper_running;
	pthread_t		 reaper;
};

struct http_request {
	struct MHD_Connection	*conn;
	const char		*method;
	char			*path;
	struct buf		 body;
	int			 answered;	/* a response is queued */
};

const char *
http_method(const struct http_request *rq)
{
	return rq->method;
}

const char *
http_path(const struct http_request *rq)
{
	return rq->path;
}

const char *
http_arg(const struct http_request *rq, const char *key)
{
	return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *
http_body(const struct http_request *rq, size_t *len)
{
	if (len)
		*len = rq->body.len;
	return buf_cstr((struct buf *)(uintptr_t)&rq->body);
}

const char *
http_header(const struct http_request *rq, const char *name)
{
	return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

struct http *
http_new(void)
{
	struct http *h = xcalloc(1, sizeof(struct http));

	pthread_mutex_init(&h->serial, NULL);
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->wake, NULL);
	return h;
}

static void
add_route(struct http *h, const char *method, const char *path,
    http_handler fn, void *arg, int concurrent)
{
	if (h->mhd != NULL)
		fatalx("http: route %s %s added after start", method, path);
	h->routes = xrealloc(h->routes, (h->nroutes + 1) * sizeof(*h->routes));
	h->routes[h->nroutes].method = xstrdup(method);
	h->routes[h->nroutes].path = xstrdup(path);
	h->routes[h->nroutes].fn = fn;
	h->routes[h->nroutes].arg = arg;
	h->routes[h->nroutes].concurrent = concurrent;
	h->nroutes++;
}

void
http_route(struct http *h, const char *method, const char *path,
    http_handler fn, void *arg)
{
	add_route(h, method, path, fn, arg, 0);
}

void
http_route_concurrent(struct http *h, const char *method, const char *path,
    http_handler fn, void *arg)
{
	add_route(h, method, path, fn, arg, 1);
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The request has been read: its deadline no longer applies. */
static void
request_read(struct http *h, struct MHD_Connection *conn)
{
	pthread_mutex_lock(&h->lock);
	for (struct live *l = h->live; l != NULL; l = l->next)
		if (l->conn == conn)
			l->deadline_ms = 0;
	pthread_mutex_unlock(&h->lock);
}

/*
 * MHD_OPTION_NOTIFY_CONNECTION: a connection starts (its deadline with it)
 * or is closed. The table holds a duplicate of the socket, so shutting it
 * down can never reach a descriptor reused by then.
 */
static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	struct http *h = cls;
	const union MHD_ConnectionInfo *ci;
	struct live *l, **pp;

	(void)socket_context;
	pthread_mutex_lock(&h->lock);
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(conn,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		l = xcalloc(1, sizeof(*l));
		l->conn = conn;
		l->fd = ci ? dup(ci->connect_fd) : -1;
		l->deadline_ms = now_ms() + HTTP_REQUEST_DEADLINE * 1000LL;
		l->next = h->live;
		h->live = l;
	} else {
		for (pp = &h->live; (l = *pp) != NULL; pp = &l->next)
			if (l->conn == conn) {
				*pp = l->next;
				if (l->fd >= 0)
					close(l->fd);
				free(l);
				break;
			}
	}
	pthread_mutex_unlock(&h->lock);
}

/* The reaper: shuts down connections past their request deadline. */
static void *
reaper(void *arg)
{
	struct http *h = arg;
	struct timespec ts;

	pthread_mutex_lock(&h->lock);
	while (!h->stop) {
		long long now = now_ms();

		for (struct live *l = h->live; l != NULL; l = l->next)
			if (l->deadline_ms != 0 && l->deadline_ms <= now &&
			    l->fd >= 0) {
				shutdown(l->fd, SHUT_RDWR);
				l->deadline_ms = 0;
			}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 250 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&h->wake, &h->lock, &ts);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

static int
path_matches(const char *route, const char *path)
{
	size_t n = strlen(route);

	if (n > 0 && route[n - 1] == '/')
		return strncmp(route, path, n) == 0;
	return strcmp(route, path) == 0;
}

static enum MHD_Result
send_response(struct MHD_Connection *conn, struct http_response *res,
    const char *allow)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(res->body.len,
	    res->body.len ? res->body.data : (void *)(uintptr_t)"",
	    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    res->content_type ? res->content_type : "text/plain; charset=utf-8");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	/* One request per connection: the deadline covers all of it. */
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	if (allow != NULL)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(conn, (unsigned)res->status, r);
	MHD_destroy_response(r);
	return ret;
}

static void
plain(struct http_response *res, int status, const char *text)
{
	res->status = status;
	res->content_type = "text/plain; charset=utf-8";
	buf_reset(&res->body);
	buf_puts(&res->body, text);
}

/* Handlers not marked concurrent run one at a time (http.h). */
static void
call(struct http *h, const struct route *rt, struct http_request *rq,
    struct http_response *res)
{
	if (!rt->concurrent)
		pthread_mutex_lock(&h->serial);
	rt->fn(rq, res, rt->arg);
	if (!rt->concurrent)
		pthread_mutex_unlock(&h->serial);
}

/* 413 at once, the body left unread: MHD closes the connection after it. */
static enum MHD_Result
too_large(struct MHD_Connection *conn)
{
	struct http_response res = { .status = 413 };
	enum MHD_Result ret;

	plain(&res, 413, "request body too large\n");
	ret = send_response(conn, &res, NULL);
	buf_free(&res.body);
	return ret;
}

static enum MHD_Result
dispatch(struct http *h, struct http_request *rq)
{
	struct http_response res = { .status = 200 };
	struct buf allow = { 0 };
	enum MHD_Result ret;
	int found = 0;

	request_read(h, rq->conn);
	{
		for (size_t i = 0; i < h->nroutes && !found; i++) {
			if (!path_matches(h->routes[i].path, rq->path))
				continue;
			if (strcmp(h->routes[i].method, rq->method) == 0 ||
			    (strcmp(rq->method, "HEAD") == 0 &&
			    strcmp(h->routes[i].method, "GET") == 0)) {
				call(h, &h->routes[i], rq, &res);
				found = 1;
			} else
				buf_printf(&allow, "%s%s", allow.len ? ", " : "",
				    h->routes[i].method);
		}
		if (!found && allow.len)
			plain(&res, 405, "method not allowed\n");
		else if (!found)
			plain(&res, 404, "not found\n");
	}
	ret = send_response(rq->conn, &res, !found && allow.len ?
	    allow.data : NULL);
	buf_free(&res.body);
	buf_free(&allow);
	return ret;
}

/* libmicrohttpd calls this first with *con_cls NULL, then per body chunk, then with no data. */
static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct http *h = cls;
	struct http_request *rq = *con_cls;

	const char *cl;

	(void)version;
	if (rq == NULL) {
		rq = xcalloc(1, sizeof(*rq));
		rq->conn = conn;
		rq->method = method;
		rq->path = xstrdup(url);
		*con_cls = rq;
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl != NULL && strtoull(cl, NULL, 10) > HTTP_BODY_MAX) {
			rq->answered = 1;
			return too_large(conn);
		}
		return MHD_YES;
	}
	if (rq->answered) {		/* 413 queued: drop what still comes */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		if (rq->body.len + *upload_data_size > HTTP_BODY_MAX) {
			/* A chunked body grew too large: answer now, or
			 * drop the connection if MHD cannot answer yet. */
			*upload_data_size = 0;
			rq->answered = 1;
			return too_large(conn);
		}
		buf_append(&rq->body, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	rq->answered = 1;
	return dispatch(h, rq);
}

static void
on_done(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode why)
{
	struct http_request *rq = *con_cls;

	(void)cls;
	(void)conn;
	(void)why;
	if (rq == NULL)
		return;
	buf_free(&rq->body);
	free(rq->path);
	free(rq);
	*con_cls = NULL;
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_warnx("http: %s", msg);
}

int
http_start(struct http *h, const char *addr, int port, char **err)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	/* A thread per connection: a handler waiting on state.db never holds
	 * up a request that needs no database (http.h). */
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *info;
	sigset_t block, saved;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
	} else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		flags |= MHD_USE_IPv6;
	} else {
		set_err(err, "http: '%s' is not an IP address", addr);
		return FU_PERMFAIL;
	}
	/* The server's thread inherits this mask: the daemon's signals
	 * (TERM, INT, HUP) go to the main thread, which acts on them. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &block, &saved);
	/* The logger first: options are applied in order, and MHD reports
	 * on the others (and at start) through whatever logger is set. */
	h->mhd = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL,
	    on_request, h,
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTP_CONN_MAX,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)HTTP_CONN_PER_ADDR,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTP_CONN_TIMEOUT,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
	    MHD_OPTION_NOTIFY_COMPLETED, on_done, h,
	    MHD_OPTION_END);
	if (h->mhd != NULL && pthread_create(&h->reaper, NULL, reaper, h) == 0)
		h->reaper_running = 1;
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (h->mhd != NULL && !h->reaper_running) {
		MHD_stop_daemon(h->mhd);
		h->mhd = NULL;
		set_err(err, "http: cannot start the deadline thread");
		return FU_TEMPFAIL;
	}
	if (h->mhd == NULL) {
		set_err(err, "http: cannot listen on %s%s%s:%d (in use, or not "
		    "an address of this host)", strchr(addr, ':') ? "[" : "",
		    addr, strchr(addr, ':') ? "]" : "", port);
		return FU_TEMPFAIL;
	}
	info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
	h->port = info ? info->port : port;
	return FU_OK;
}

int
http_port(const struct http *h)
{
	return h->port;
}

void
http_free(struct http *h)
{
	if (h == NULL)
		return;
	if (h->mhd != NULL)
		MHD_stop_daemon(h->mhd);
	if (h->reaper_running) {
		pthread_mutex_lock(&h->lock);
		h->stop = 1;
		pthread_cond_signal(&h->wake);
		pthread_mutex_unlock(&h->lock);
		pthread_join(h->reaper, NULL);
	}
	while (h->live != NULL) {
		struct live *l = h->live;

		h->live = l->next;
		if (l->fd >= 0)
			close(l->fd);
		free(l);
	}
	pthread_mutex_destroy(&h->serial);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->wake);
	for (size_t i = 0; i < h->nroutes; i++) {
		free(h->routes[i].method);
		free(h->routes[i].path);
	}
	free(h->routes);
	free(h);
}
