/* smtp: deliver a batch of messages over one libesmtp session and report each recipient. */

/*
 * What libesmtp 1.1.0 (Debian 12) does, measured, and what we do about it:
 *
 * - smtp_start_session() returns 1 even after a greeting timeout, a missing
 *   required STARTTLS or a refused login. Only the per-message and
 *   per-recipient statuses say what happened (code 0 = not attempted), so
 *   every item is classified from smtp_reverse_path_status(),
 *   smtp_recipient_status() and smtp_message_transfer_status().
 * - Reply texts are raw: the first line plus continuation lines, CRLF
 *   included, and the enhanced code is split out only when the server
 *   announced ENHANCEDSTATUSCODES. We rebuild one clean line.
 * - Timeouts are in milliseconds and values under the RFC 5321 minimum are
 *   silently raised unless OR-ed with Timeout_OVERRIDE_RFC2822_MINIMUM. A
 *   command timeout shows up as a dropped connection, and libesmtp then waits
 *   once more for the QUIT reply: a stall costs up to twice timeout_ms.
 * - connect() is blocking with no timeout, and TCP_NODELAY is never set while
 *   writes go through a 2 KB buffer: every message over ~2 KB then waits for
 *   the peer's delayed ACK (~40 ms) at the end of DATA, ~23 msgs/s per
 *   connection. We interpose connect() (below) to add both; ~3,400 msgs/s.
 * - libesmtp's own STARTTLS context is a static that the first
 *   smtp_destroy_session() frees: a second TLS session in the process
 *   crashes. We create one SSL_CTX in smtp_init() and pass it to every
 *   session (smtp_starttls_set_ctx takes its own reference).
 * - TLS 1.3 session tickets that arrive between the handshake and the
 *   EHLO flush deadlock the session until the command timeout: we cap the
 *   context at TLS 1.2 (see smtp_init).
 * - Certificates: libesmtp checks the verify result and the host name, but
 *   matches only DNS names (no IP SANs). Our context uses SSL_VERIFY_PEER so
 *   an untrusted certificate aborts the handshake itself; the name check is
 *   libesmtp's, plus ours for IP addresses (SMTP_EV_WRONG_PEER_CERTIFICATE).
 * - A rejected AUTH silently continues unauthenticated, and a server that
 *   does not offer AUTH is simply not asked. With a username configured that
 *   would send mail the server may relay differently, so the monitor
 *   callback watches the dialogue and cuts the connection (shutdown on the
 *   socket our connect() recorded) before MAIL FROM leaves: every item is
 *   then tempfail. The same gate refuses MAIL before TLS when STARTTLS is
 *   required, and refuses AUTH without TLS except to a loopback address.
 * - The write side of the monitor callback sees everything, AUTH
 *   credentials and message bodies included: it is never logged.
 * - It adds Date and Message-ID headers when missing, drops Return-Path,
 *   does not strip Bcc, and needs CRLF line ends. smtp_set_server() splits
 *   host and port at the first ':', so IPv6 literals cannot be used.
 * - SIGPIPE must be ignored (smtp_init does). One session per thread is fine.
 * - Include <stddef.h>, <auth-client.h> and <openssl/ssl.h> before
 *   <libesmtp.h>: it declares smtp_auth_set_context and smtp_starttls_set_ctx
 *   only when those were seen.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <auth-client.h>
#include <libesmtp.h>

#include "log.h"
#include "smtp.h"
#include "util.h"

#define SMTP_DEFAULT_HOST	"127.0.0.1"
#define SMTP_DEFAULT_PORT	25
/* Postfix smtp_connect_timeout; RFC 5321 sets none for connect. */
#define SMTP_CONNECT_TIMEOUT_MS	30000
/* RFC 5321 4.5.3.1.3: a path is at most 256 octets including <>. */
#define SMTP_PATH_MAX		254
/* RFC 1035 2.3.4: a domain name is at most 255 octets. */
#define SMTP_HOST_MAX		255

/* --------------------------------------------------------------------
 * connect() interposer.
 *
 * Defined in our binary, this connect() takes precedence over libc's for
 * every caller, libesmtp included (it calls connect through the PLT). It
 * always calls the real one via dlsym(RTLD_NEXT). Only while this thread is
 * inside smtp_deliver() does it also (a) set TCP_NODELAY, so the last
 * partial 2 KB buffer of a message is not held back by Nagle until the
 * peer's delayed ACK, (b) bound the connect with the configured timeout
 * (non-blocking connect + poll, then back to blocking), and (c) remember
 * the socket so the session gate can shut it down. Other code's connect()
 * is unaffected.
 * -------------------------------------------------------------------- */

/* glibc declares connect() with a transparent union under _GNU_SOURCE. */
#if defined(__USE_GNU) && defined(__GNUC__) && !defined(__cplusplus)
#define SMTP_SA(a)	((a).__sockaddr__)
#else
#define SMTP_SA(a)	(a)
#endif

typedef int (*connect_fn)(int, __CONST_SOCKADDR_ARG, socklen_t);

static connect_fn	real_connect;
static pthread_once_t	real_connect_once = PTHREAD_ONCE_INIT;
/*
 * 0 only for `make bench`'s "before" row (FOLLOWUPD_BENCH_NO_NODELAY in the
 * environment): shows what libesmtp does without TCP_NODELAY.
 */
static int		smtp_nodelay = 1;
/* Set once a session got a message through (see smtp_deliver_paced). */
static pthread_mutex_t	smtp_warm_mu = PTHREAD_MUTEX_INITIALIZER;
static int		smtp_warm;

/* Per-thread state: the interposer, the TLS verify callback, smtp_deliver. */
struct smtp_thread {
	int	active;			/* inside smtp_deliver */
	int	timeout_ms;		/* connect timeout */
	int	fd;			/* last connected socket, -1: none */
	int	connected;		/* a connect() succeeded */
	int	attempts;		/* connect() calls */
	int	last_errno;		/* of the last failed connect() */
	char	tls_error[256];		/* first certificate verify failure */
};

static _Thread_local struct smtp_thread smtp_thr = { .fd = -1 };

static void
load_real_connect(void)
{
	void *sym = dlsym(RTLD_NEXT, "connect");

	/* memcpy: ISO C has no object-to-function pointer conversion. */
	if (sym != NULL)
		memcpy(&real_connect, &sym, sizeof(real_connect));
}

static int
connect_timed(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len, int timeout_ms)
{
	struct timespec start, now;
	struct pollfd pfd;
	socklen_t sl;
	int flags, r, soerr, saved, left, n;

	if ((flags = fcntl(fd, F_GETFL)) == -1)
		return -1;
	if (flags & O_NONBLOCK)		/* the caller polls itself */
		return real_connect(fd, addr, len);
	if (fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1)
		return -1;
	r = real_connect(fd, addr, len);
	if (r == -1 && errno == EINPROGRESS) {
		clock_gettime(CLOCK_MONOTONIC, &start);
		pfd.fd = fd;
		pfd.events = POLLOUT;
		for (;;) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			left = timeout_ms - (int)((now.tv_sec - start.tv_sec) *
			    1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
			if (left <= 0) {
				n = 0;
				break;
			}
			if ((n = poll(&pfd, 1, left)) != -1 || errno != EINTR)
				break;
		}
		if (n == 0) {
			errno = ETIMEDOUT;
			r = -1;
		} else if (n > 0) {
			sl = sizeof(soerr);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == -1)
				r = -1;
			else if (soerr != 0) {
				errno = soerr;
				r = -1;
			} else
				r = 0;
		}
	}
	saved = errno;
	(void)fcntl(fd, F_SETFL, flags);
	errno = saved;
	return r;
}

int
connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	const struct sockaddr *sa = SMTP_SA(addr);
	int one = 1, r, tcp;

	pthread_once(&real_connect_once, load_real_connect);
	if (real_connect == NULL) {
		errno = ENOSYS;
		return -1;
	}
	tcp = sa != NULL && (sa->sa_family == AF_INET ||
	    sa->sa_family == AF_INET6);
	if (!smtp_thr.active || !tcp)
		return real_connect(fd, addr, len);

	/* Best effort: without it we are slow, not wrong. */
	if (smtp_nodelay)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
	smtp_thr.attempts++;
	r = connect_timed(fd, addr, len, smtp_thr.timeout_ms);
	if (r == 0) {
		smtp_thr.connected = 1;
		smtp_thr.fd = fd;
	} else
		smtp_thr.last_errno = errno;
	return r;
}

/* --------------------------------------------------------------------
 * Global set-up.
 * -------------------------------------------------------------------- */

static SSL_CTX	*smtp_ssl_ctx;
static int	 smtp_auth_ready;

/* Record why a certificate was refused; the handshake then fails. */
static int
verify_cb(int ok, X509_STORE_CTX *store)
{
	char subject[128] = "";
	X509 *cert;

	if (ok || smtp_thr.tls_error[0] != '\0')
		return ok;
	if ((cert = X509_STORE_CTX_get_current_cert(store)) != NULL)
		X509_NAME_oneline(X509_get_subject_name(cert), subject,
		    sizeof(subject));
	snprintf(smtp_thr.tls_error, sizeof(smtp_thr.tls_error),
	    "certificate verify failed: %s (depth %d, %s)",
	    X509_verify_cert_error_string(X509_STORE_CTX_get_error(store)),
	    X509_STORE_CTX_get_error_depth(store), subject);
	return ok;
}

static const char *
ssl_error(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *s = e ? ERR_reason_error_string(e) : NULL;

	return s != NULL ? s : "unknown TLS error";
}

static int
host_valid(const char *h)
{
	size_t n = strlen(h);

	if (n == 0 || n > SMTP_HOST_MAX)
		return 0;
	for (; *h; h++)
		if (!isalnum((unsigned char)*h) && *h != '.' && *h != '-' &&
		    *h != '_')
			return 0;
	return 1;
}

/* A HELO name goes on the command line: no spaces, no controls. */
static int
helo_valid(const char *h)
{
	size_t n = strlen(h);

	if (n == 0 || n > SMTP_HOST_MAX)
		return 0;
	for (; *h; h++)
		if (*h <= ' ' || *h == 0x7f)
			return 0;
	return 1;
}

static int
config_check(const struct smtp_config *cfg, char **err)
{
	if (cfg->host != NULL && !host_valid(cfg->host)) {
		set_err(err, "smtp: host \"%s\": not a host name or IPv4 "
		    "address (libesmtp cannot use IPv6 literals)", cfg->host);
		return FU_PERMFAIL;
	}
	if (cfg->port < 0 || cfg->port > 65535) {
		set_err(err, "smtp: port %d out of range", cfg->port);
		return FU_PERMFAIL;
	}
	if (cfg->helo != NULL && !helo_valid(cfg->helo)) {
		set_err(err, "smtp: helo \"%s\": not a valid host name",
		    cfg->helo);
		return FU_PERMFAIL;
	}
	if (cfg->username != NULL && cfg->password == NULL) {
		set_err(err, "smtp: username set without a password");
		return FU_PERMFAIL;
	}
	return FU_OK;
}

int
smtp_init(const struct smtp_config *cfg, char **err)
{
	struct sigaction sa;
	connect_fn mine;
	SSL_CTX *ctx;
	void *self;
	int r;

	if ((r = config_check(cfg, err)) != FU_OK)
		return r;

	/*
	 * The interposer must be the connect() libesmtp gets, or there is no
	 * connect timeout and no way to stop an unauthenticated MAIL.
	 */
	self = dlsym(RTLD_DEFAULT, "connect");
	mine = connect;
	if (self == NULL || memcmp(&self, &mine, sizeof(self)) != 0) {
		set_err(err, "smtp: our connect() is not the one libesmtp "
		    "uses: link smtp.o into the executable");
		return FU_PERMFAIL;
	}

	if (getenv("FOLLOWUPD_BENCH_NO_NODELAY") != NULL) {
		smtp_nodelay = 0;
		log_warnx("smtp: TCP_NODELAY off (FOLLOWUPD_BENCH_NO_NODELAY "
		    "is set): for benchmarks only, delivery will be slow");
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGPIPE, &sa, NULL) == -1) {
		set_err(err, "smtp: sigaction SIGPIPE: %s", strerror(errno));
		return FU_TEMPFAIL;
	}

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		set_err(err, "smtp: SSL_CTX_new: %s", ssl_error());
		return FU_TEMPFAIL;
	}
	/*
	 * TLS 1.2 only. With TLS 1.3 the server sends its session tickets
	 * after the handshake; when they arrive before libesmtp flushes the
	 * EHLO that follows STARTTLS, its loop sees the socket readable,
	 * reads first, gets no reply and waits the whole command timeout
	 * (the EHLO is never sent), then drops the session. Reproduced under
	 * valgrind on every TLS session; possible on loopback at any time.
	 * TLS 1.2 has no post-handshake messages.
	 */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
	if (cfg->ca_file != NULL) {
		if (access(cfg->ca_file, R_OK) == -1) {
			set_err(err, "smtp: ca_file %s: %s", cfg->ca_file,
			    strerror(errno));
			SSL_CTX_free(ctx);
			return FU_PERMFAIL;
		}
		if (SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL) != 1) {
			set_err(err, "smtp: ca_file %s: no PEM certificates "
			    "loaded (%s)", cfg->ca_file, ssl_error());
			SSL_CTX_free(ctx);
			return FU_PERMFAIL;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1)
		log_warnx("smtp: cannot load the system CA store: %s",
		    ssl_error());
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);

	if (smtp_ssl_ctx != NULL)
		SSL_CTX_free(smtp_ssl_ctx);
	smtp_ssl_ctx = ctx;
	if (!smtp_auth_ready) {
		auth_client_init();
		smtp_auth_ready = 1;
	}
	return FU_OK;
}

void
smtp_shutdown(void)
{
	if (smtp_ssl_ctx != NULL) {
		SSL_CTX_free(smtp_ssl_ctx);
		smtp_ssl_ctx = NULL;
	}
	if (smtp_auth_ready) {
		auth_client_exit();
		smtp_auth_ready = 0;
	}
}

/* --------------------------------------------------------------------
 * One session.
 * -------------------------------------------------------------------- */

struct session {
	const struct smtp_config *cfg;
	char		 hostport[SMTP_HOST_MAX + 8];
	int		 timeout_ms;	/* command timeout, 0: libesmtp's */
	int		 need_tls;	/* STARTTLS required */
	int		 need_auth;	/* a username is configured */
	int		 loopback;	/* host is 127.0.0.0/8 or localhost */
	char		*user;		/* copies handed to the SASL plugin */
	char		*pass;

	/* dialogue state, reset on each connection */
	int		 nreplies;	/* complete replies read */
	int		 multi;		/* inside a multi-line reply */
	char		 first[SMTP_REPLY_MAX];	/* its first line */
	char		 line[SMTP_REPLY_MAX];	/* partial reply line */
	size_t		 linelen;
	int		 last_code;
	char		 last_reply[SMTP_REPLY_MAX];
	int		 starttls_sent;
	int		 tls_ok;
	int		 auth_pending;	/* AUTH sent, final reply not yet read */
	int		 auth_sent;
	int		 authed;
	int		 cleared;	/* MAIL allowed: stop reading our writes */
	int		 blocked;	/* we cut the connection */
	struct timespec	 last_io;

	char		 reason[SMTP_REPLY_MAX];	/* first session failure */

	smtp_pace_fn	 pace;		/* called before each message's data */
	void		*pace_arg;
};

/* Copy the first line of s, controls dropped, trimmed. */
static void
one_line(char *dst, size_t dstsz, const char *s)
{
	size_t n = 0;

	if (s == NULL)
		s = "";
	while (*s == ' ' || *s == '\t')
		s++;
	for (; *s && *s != '\r' && *s != '\n' && n + 1 < dstsz; s++)
		dst[n++] = ((unsigned char)*s < ' ' || *s == 0x7f) ? ' ' : *s;
	while (n > 0 && dst[n - 1] == ' ')
		n--;
	dst[n] = '\0';
}

/* Format one reply-sized line; truncation is intended (RFC 5321 limit). */
static void
line_printf(char *dst, size_t dstsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
line_printf(char *dst, size_t dstsz, const char *fmt, ...)
{
	char tmp[SMTP_REPLY_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	one_line(dst, dstsz, tmp);
}

/* The first session-level failure wins: later ones are consequences. */
#define set_reason(s, ...) do {						\
	if ((s)->reason[0] == '\0')					\
		line_printf((s)->reason, sizeof((s)->reason), __VA_ARGS__); \
} while (0)

/* Stop the session before anything else is sent: the next write fails. */
static void
block(struct session *s)
{
	s->blocked = 1;
	log_debug("smtp: %s: closing the connection: %s", s->hostport,
	    s->reason);
	if (smtp_thr.fd >= 0)
		(void)shutdown(smtp_thr.fd, SHUT_RDWR);
	else
		log_warnx("smtp: %s: no socket to close: %s", s->hostport,
		    s->reason);
}

static void
on_reply(struct session *s, int code, const char *text)
{
	s->nreplies++;
	s->last_code = code;
	one_line(s->last_reply, sizeof(s->last_reply), text);
	log_debug("smtp: %s: < %s", s->hostport, s->last_reply);

	if (s->nreplies == 1 && code != 220) {
		set_reason(s, "%s greeting: %s", s->hostport, s->last_reply);
		return;
	}
	if (s->auth_pending && code != 334) {
		s->auth_pending = 0;
		if (code / 100 == 2)
			s->authed = 1;
		else if (code != 504) {
			/* 504: mechanism refused, libesmtp tries the next. */
			set_reason(s, "AUTH as %s to %s failed: %s", s->user,
			    s->hostport, s->last_reply);
			block(s);
		}
	}
}

static void
read_line(struct session *s, const char *l)
{
	int code;

	if (!isdigit((unsigned char)l[0]) || !isdigit((unsigned char)l[1]) ||
	    !isdigit((unsigned char)l[2]))
		return;		/* libesmtp will complain about it */
	code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
	if (!s->multi)
		one_line(s->first, sizeof(s->first), l);
	s->multi = l[3] == '-';
	if (!s->multi)
		on_reply(s, code, s->first);
}

static void
read_bytes(struct session *s, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			s->line[s->linelen] = '\0';
			read_line(s, s->line);
			s->linelen = 0;
		} else if (s->linelen + 1 < sizeof(s->line))
			s->line[s->linelen++] = p[i];
	}
}

/* Is the line at p (n bytes left) the command verb? */
static int
is_verb(const char *p, size_t n, const char *verb)
{
	size_t vl = strlen(verb);

	return n >= vl && strncasecmp(p, verb, vl) == 0 &&
	    (n == vl || p[vl] == ' ' || p[vl] == '\r' || p[vl] == '\n');
}

/* Our commands before the first MAIL: the gate. Never logged. */
static void
write_bytes(struct session *s, const char *p, size_t n)
{
	const char *end = p + n, *nl;

	for (; p < end && !s->cleared && !s->blocked; p = nl + 1) {
		if (s->auth_pending) {
			/* SASL continuation lines: credentials. */
			if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
				break;
			continue;
		}
		if (is_verb(p, (size_t)(end - p), "STARTTLS"))
			s->starttls_sent = 1;
		else if (is_verb(p, (size_t)(end - p), "AUTH")) {
			s->auth_sent = s->auth_pending = 1;
			if (!s->tls_ok && !s->loopback) {
				set_reason(s, "refusing to send the password "
				    "for %s to %s without TLS (set starttls)",
				    s->user, s->hostport);
				block(s);
			}
		} else if (is_verb(p, (size_t)(end - p), "MAIL")) {
			if (s->need_tls && !s->tls_ok) {
				set_reason(s, "STARTTLS required but not "
				    "established with %s", s->hostport);
				block(s);
			} else if (s->need_auth && !s->authed) {
				set_reason(s, "a username is configured but "
				    "%s offered no usable AUTH mechanism",
				    s->hostport);
				block(s);
			} else
				s->cleared = 1;
		}
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			break;
	}
}

static void
monitor_cb(const char *buf, int len, int writing, void *arg)
{
	struct session *s = arg;

	clock_gettime(CLOCK_MONOTONIC, &s->last_io);
	if (len <= 0)
		return;
	if (writing == SMTP_CB_WRITING) {
		if (!s->cleared)
			write_bytes(s, buf, (size_t)len);
	} else if (writing == SMTP_CB_READING)
		read_bytes(s, buf, (size_t)len);
}

static void
reset_dialogue(struct session *s)
{
	s->nreplies = s->multi = 0;
	s->linelen = 0;
	s->starttls_sent = s->tls_ok = 0;
	s->auth_pending = s->auth_sent = s->authed = 0;
	s->cleared = 0;
	clock_gettime(CLOCK_MONOTONIC, &s->last_io);
}

static int
ip_literal(const char *h)
{
	unsigned char a[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, h, a) == 1 || inet_pton(AF_INET6, h, a) == 1;
}

/* libesmtp matches DNS names only; accept what OpenSSL says matches. */
static int
cert_matches(struct session *s, SSL *ssl)
{
	const char *host = s->cfg->host ? s->cfg->host : SMTP_DEFAULT_HOST;
	X509 *cert;
	int ok;

	if (ssl == NULL || (cert = SSL_get1_peer_certificate(ssl)) == NULL)
		return 0;
	if (ip_literal(host))
		ok = X509_check_ip_asc(cert, host, 0) == 1;
	else
		ok = X509_check_host(cert, host, 0, 0, NULL) == 1;
	X509_free(cert);
	return ok;
}

/* The message callback's argument: one per item. */
struct feed {
	struct session		*s;
	struct smtp_item	*it;
	int			 data_sent;	/* every byte handed to libesmtp */
};

static void item_status(struct smtp_item *, const smtp_status_t *);

/*
 * The relay accepted a message: report it now (item->done), not at the end
 * of the session, so that a crash later in the session cannot make the
 * caller send it again.
 */
static void
accepted(struct session *s, smtp_message_t msg, const smtp_status_t *st)
{
	struct feed *f = smtp_message_get_application_data(msg);
	const smtp_status_t *mail = smtp_reverse_path_status(msg);

	if (f == NULL || st == NULL || st->code / 100 != 2 || s->blocked ||
	    (mail != NULL && mail->code >= 400) || f->it->done == NULL)
		return;
	item_status(f->it, st);
	f->it->notified = 1;
	f->it->done(f->it, f->it->done_arg);
}

static void
event_cb(smtp_session_t session, int event, void *arg, ...)
{
	struct session *s = arg;
	const smtp_status_t *st;
	const char *mailbox, *name;
	smtp_recipient_t rcpt;
	smtp_message_t msg;
	va_list ap;
	SSL *ssl;
	long vfy;
	int *ok, bits;

	(void)session;
	va_start(ap, arg);
	switch (event) {
	case SMTP_EV_CONNECT:
		reset_dialogue(s);
		log_debug("smtp: %s: connected", s->hostport);
		break;
	case SMTP_EV_DISCONNECT:
		log_debug("smtp: %s: disconnected", s->hostport);
		break;
	case SMTP_EV_MAILSTATUS:
		mailbox = va_arg(ap, const char *);
		msg = va_arg(ap, smtp_message_t);
		st = smtp_reverse_path_status(msg);
		log_debug("smtp: %s: MAIL FROM:<%s>: %d", s->hostport,
		    mailbox ? mailbox : "", st ? st->code : 0);
		break;
	case SMTP_EV_RCPTSTATUS:
		mailbox = va_arg(ap, const char *);
		rcpt = va_arg(ap, smtp_recipient_t);
		st = smtp_recipient_status(rcpt);
		log_debug("smtp: %s: RCPT TO:<%s>: %d", s->hostport,
		    mailbox ? mailbox : "", st ? st->code : 0);
		break;
	case SMTP_EV_MESSAGEDATA:
		break;
	case SMTP_EV_MESSAGESENT:
		msg = va_arg(ap, smtp_message_t);
		st = smtp_message_transfer_status(msg);
		log_debug("smtp: %s: end of data: %d", s->hostport,
		    st ? st->code : 0);
		accepted(s, msg, st);
		break;
	case SMTP_EV_EXTNA_STARTTLS:
		set_reason(s, "STARTTLS required but not offered by %s",
		    s->hostport);
		break;
	case SMTP_EV_STARTTLS_OK:
		ssl = va_arg(ap, SSL *);
		name = va_arg(ap, const char *);
		bits = va_arg(ap, int);
		s->tls_ok = 1;
		log_debug("smtp: %s: TLS %s, %s (%d bits)", s->hostport,
		    ssl ? SSL_get_version(ssl) : "?", name ? name : "?", bits);
		break;
	case SMTP_EV_INVALID_PEER_CERTIFICATE:
		vfy = va_arg(ap, long);
		ok = va_arg(ap, int *);
		*ok = 0;
		set_reason(s, "TLS: certificate of %s not trusted: %s",
		    s->hostport, X509_verify_cert_error_string(vfy));
		break;
	case SMTP_EV_NO_PEER_CERTIFICATE:
		ok = va_arg(ap, int *);
		*ok = 0;
		set_reason(s, "TLS: %s sent no certificate", s->hostport);
		break;
	case SMTP_EV_WRONG_PEER_CERTIFICATE:
		ok = va_arg(ap, int *);
		name = va_arg(ap, const char *);
		ssl = va_arg(ap, SSL *);
		*ok = cert_matches(s, ssl);
		if (!*ok)
			set_reason(s, "TLS: certificate of %s is for \"%s\"",
			    s->hostport, name ? name : "");
		break;
	case SMTP_EV_WEAK_CIPHER:
		bits = va_arg(ap, int);
		ok = va_arg(ap, int *);
		*ok = 0;
		set_reason(s, "TLS: weak cipher (%d bits) with %s", bits,
		    s->hostport);
		break;
	case SMTP_EV_NO_CLIENT_CERTIFICATE:
		ok = va_arg(ap, int *);
		*ok = 0;
		set_reason(s, "TLS: client certificate without its key");
		break;
	case SMTP_EV_UNUSABLE_CLIENT_CERTIFICATE:
	case SMTP_EV_UNUSABLE_CA_LIST:
		set_reason(s, "TLS: unusable libesmtp certificate files "
		    "(~/.config/libesmtp or ~/.authenticate)");
		break;
	default:
		/* SYNTAXWARNING, EXTNA_*: libesmtp's defaults are fine. */
		log_debug("smtp: %s: libesmtp event %d", s->hostport, event);
		break;
	}
	va_end(ap);
}

static int
auth_interact(auth_client_request_t req, char **result, int fields,
    void *arg)
{
	struct session *s = arg;

	for (int i = 0; i < fields; i++) {
		if (req[i].flags & AUTH_USER)
			result[i] = s->user;
		else if (req[i].flags & AUTH_PASS)
			result[i] = s->pass;
		else if (req[i].flags & AUTH_REALM)
			result[i] = NULL;
		else
			return 0;
		if (result[i] == NULL && !(req[i].flags & AUTH_REALM))
			return 0;
	}
	return 1;
}

/* Serves one item's bytes; libesmtp free()s *ctx. */
struct cursor {
	size_t	off;
};

static const char *
message_cb(void **ctx, int *len, void *arg)
{
	const struct feed *f = arg;
	const struct smtp_item *it = f->it;
	struct cursor *c = *ctx;
	size_t chunk;

	if (c == NULL) {
		/* The first call for this message: its data is about to go. */
		if (f->s->pace != NULL)
			f->s->pace(f->s->pace_arg);
		c = xmalloc(sizeof(*c));
		c->off = 0;
		*ctx = c;
	}
	if (len == NULL) {		/* rewind */
		c->off = 0;
		return NULL;
	}
	chunk = it->len - c->off;
	if (chunk == 0)		/* the end: libesmtp sends the final dot */
		((struct feed *)arg)->data_sent = 1;
	if (chunk > INT_MAX)
		chunk = INT_MAX;
	*len = (int)chunk;
	c->off += chunk;
	return it->data + c->off - chunk;
}

/* An envelope address goes on the command line unquoted: be strict. */
static int
address_valid(const char *a)
{
	size_t n = strlen(a);

	if (n > SMTP_PATH_MAX)
		return 0;
	for (; *a; a++)
		if ((unsigned char)*a <= ' ' || *a == 0x7f || *a == '<' ||
		    *a == '>')
			return 0;
	return 1;
}

static void
item_set(struct smtp_item *it, int result, int code, const char *reply)
{
	it->result = result;
	it->code = code;
	one_line(it->reply, sizeof(it->reply), reply);
}

static void
item_status(struct smtp_item *it, const smtp_status_t *st)
{
	char text[SMTP_REPLY_MAX], reply[SMTP_REPLY_MAX];
	int result;

	one_line(text, sizeof(text), st->text);
	if (st->enh_class > 0)
		line_printf(reply, sizeof(reply), "%d %d.%d.%d %s", st->code,
		    st->enh_class, st->enh_subject, st->enh_detail, text);
	else
		line_printf(reply, sizeof(reply), "%d %s", st->code, text);
	if (st->code >= 200 && st->code < 300)
		result = FU_OK;
	else if (st->code >= 500 && st->code < 600)
		result = FU_PERMFAIL;
	else
		result = FU_TEMPFAIL;
	item_set(it, result, st->code, reply);
}

static long
ms_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t->tv_sec) * 1000L +
	    (now.tv_nsec - t->tv_nsec) / 1000000L;
}

/* Why an item got no reply of its own. */
static void
local_reason(struct session *s, int started, char *dst, size_t dstsz)
{
	char ebuf[128];
	int e = smtp_errno();

	if (s->reason[0] != '\0')
		line_printf(dst, dstsz, "%s", s->reason);
	else if (s->starttls_sent && !s->tls_ok)
		line_printf(dst, dstsz, "TLS handshake with %s failed: %s",
		    s->hostport, smtp_thr.tls_error[0] ? smtp_thr.tls_error :
		    ssl_error());
	else if (s->timeout_ms > 0 && ms_since(&s->last_io) >=
	    s->timeout_ms - s->timeout_ms / 10)
		line_printf(dst, dstsz, "timeout: no reply from %s within %d ms",
		    s->hostport, s->timeout_ms);
	else if (e == SMTP_ERR_DROPPED_CONNECTION)
		line_printf(dst, dstsz, "connection to %s lost%s%s", s->hostport,
		    s->last_code ? "; last reply: " : "", s->last_reply);
	else if (s->last_code >= 400)
		line_printf(dst, dstsz, "%s: %s", s->hostport, s->last_reply);
	else
		line_printf(dst, dstsz, "not attempted: session with %s ended "
		    "early (%s)", s->hostport, !started || e ?
		    smtp_strerror(e, ebuf, sizeof(ebuf)) : "no error");
}

static void
classify(struct session *s, struct smtp_item *it, smtp_message_t msg,
    smtp_recipient_t rcpt, const char *why)
{
	const smtp_status_t *mail, *rs, *data;

	const smtp_status_t *decided = NULL;

	mail = smtp_reverse_path_status(msg);
	rs = smtp_recipient_status(rcpt);
	data = smtp_message_transfer_status(msg);
	it->stage = SMTP_STAGE_NONE;
	if (s->blocked)
		item_set(it, FU_TEMPFAIL, 0, why);
	else if (mail != NULL && mail->code >= 400) {
		item_status(it, mail);
		it->stage = SMTP_STAGE_MAIL;
		decided = mail;
		/*
		 * A refused MAIL FROM is about our sender or our standing with
		 * the relay, never the customer's address: defer (and let the
		 * operator see it) rather than fail every message for good.
		 */
		if (it->result == FU_PERMFAIL) {
			char reply[SMTP_REPLY_MAX];

			line_printf(reply, sizeof(reply), "%s (the relay refused "
			    "our sender: check [smtp] from and AUTH)", it->reply);
			item_set(it, FU_TEMPFAIL, mail->code, reply);
		}
	} else if (rs != NULL && rs->code >= 400) {
		item_status(it, rs);
		it->stage = SMTP_STAGE_RCPT;
		decided = rs;
	} else if (data != NULL && data->code >= 400) {
		item_status(it, data);
		it->stage = SMTP_STAGE_DATA;
		decided = data;
	} else if (rs != NULL && rs->code / 100 == 2 && data != NULL &&
	    data->code / 100 == 2) {
		item_status(it, data);
		it->stage = SMTP_STAGE_DATA;
	} else
		item_set(it, FU_TEMPFAIL, 0, why);
	it->enh_class = decided ? decided->enh_class : 0;
	it->enh_subject = decided ? decided->enh_subject : 0;
}

int
smtp_deliver(const struct smtp_config *cfg, struct smtp_item *items, size_t n,
    char **err)
{
	return smtp_deliver_paced(cfg, items, n, NULL, NULL, err);
}

/*
 * Long (about 220 lines) on purpose: one libesmtp session from set-up to
 * teardown. Its objects (session, messages, recipients, feeds, the auth
 * context, the per-thread connect state) are made, run and released
 * together, and every failure takes the one cleanup path at the end;
 * pieces split out would pass all of them around and each need its own.
 */
int
smtp_deliver_paced(const struct smtp_config *cfg, struct smtp_item *items,
    size_t n, smtp_pace_fn pace, void *pace_arg, char **err)
{
	static const int timeouts[] = { Timeout_GREETING, Timeout_ENVELOPE,
	    Timeout_DATA, Timeout_TRANSFER, Timeout_DATA2 };
	struct session s;
	smtp_session_t ss = NULL;
	smtp_message_t *msgs = NULL;
	smtp_recipient_t *rcpts = NULL;
	struct feed *feeds = NULL;
	auth_context_t auth = NULL;
	const char *host;
	char server[sizeof(s.hostport)], why[SMTP_REPLY_MAX], ebuf[128];
	char *e = NULL;
	size_t live = 0, i;
	int port, started, r = FU_OK, sent = 0, deferred = 0, failed = 0;

	for (i = 0; i < n; i++) {
		item_set(&items[i], FU_TEMPFAIL, 0, "not attempted");
		items[i].unknown = items[i].notified = 0;
	}
	memset(&s, 0, sizeof(s));
	s.cfg = cfg;
	s.pace = pace;
	s.pace_arg = pace_arg;
	host = cfg->host ? cfg->host : SMTP_DEFAULT_HOST;
	port = cfg->port > 0 ? cfg->port : SMTP_DEFAULT_PORT;
	snprintf(s.hostport, sizeof(s.hostport), "%s:%d", host, port);

	if (config_check(cfg, &e) == FU_OK && cfg->starttls !=
	    SMTP_STARTTLS_NO && smtp_ssl_ctx == NULL)
		set_err(&e, "smtp: smtp_init() was not called");
	if (e != NULL) {
		for (i = 0; i < n; i++)
			item_set(&items[i], FU_TEMPFAIL, 0, e);
		if (err != NULL) {
			free(*err);
			*err = e;
		} else
			free(e);
		return FU_TEMPFAIL;
	}

	/* Envelope checks first: a bad address must not reach the wire. */
	for (i = 0; i < n; i++) {
		const char *from = items[i].sender ? items[i].sender : "";

		if (!address_valid(from))
			item_set(&items[i], FU_PERMFAIL, 0,
			    "invalid envelope sender address");
		else if (items[i].rcpt == NULL || items[i].rcpt[0] == '\0' ||
		    !address_valid(items[i].rcpt))
			item_set(&items[i], FU_PERMFAIL, 0,
			    "invalid envelope recipient address");
		else if (items[i].data == NULL && items[i].len > 0)
			item_set(&items[i], FU_PERMFAIL, 0, "no message data");
		else {
			live++;
			items[i].result = -1;	/* to send */
		}
	}
	if (live == 0)
		return FU_OK;

	s.timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 0;
	s.need_tls = cfg->starttls == SMTP_STARTTLS_REQUIRED;
	s.need_auth = cfg->username != NULL;
	s.loopback = strcmp(host, "localhost") == 0 ||
	    strncmp(host, "127.", 4) == 0;
	if (s.need_auth) {
		s.user = xstrdup(cfg->username);
		s.pass = xstrdup(cfg->password ? cfg->password : "");
	}

	if ((ss = smtp_create_session()) == NULL) {
		set_err(&e, "smtp: smtp_create_session: %s",
		    smtp_strerror(smtp_errno(), ebuf, sizeof(ebuf)));
		r = FU_TEMPFAIL;
		goto fail_all;
	}
	snprintf(server, sizeof(server), "%s:%d", host, port);
	smtp_set_server(ss, server);
	if (cfg->helo != NULL)
		smtp_set_hostname(ss, cfg->helo);
	if (s.timeout_ms > 0)
		for (i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); i++)
			smtp_set_timeout(ss, timeouts[i] |
			    Timeout_OVERRIDE_RFC2822_MINIMUM, s.timeout_ms);
	smtp_set_eventcb(ss, event_cb, &s);
	smtp_set_monitorcb(ss, monitor_cb, &s, 0);
	if (cfg->starttls != SMTP_STARTTLS_NO) {
		smtp_starttls_set_ctx(ss, smtp_ssl_ctx);
		smtp_starttls_enable(ss, s.need_tls ? Starttls_REQUIRED :
		    Starttls_ENABLED);
	} else
		smtp_starttls_enable(ss, Starttls_DISABLED);
	if (s.need_auth) {
		auth = auth_create_context();
		/* PLAIN and LOGIN send the password as is: allow them. */
		auth_set_mechanism_flags(auth, AUTH_PLUGIN_PLAIN, 0);
		auth_set_interact_cb(auth, auth_interact, &s);
		smtp_auth_set_context(ss, auth);
	}

	msgs = xcalloc(n, sizeof(*msgs));
	rcpts = xcalloc(n, sizeof(*rcpts));
	feeds = xcalloc(n, sizeof(*feeds));
	for (i = 0; i < n; i++) {
		if (items[i].result != -1)
			continue;
		feeds[i].s = &s;
		feeds[i].it = &items[i];
		if ((msgs[i] = smtp_add_message(ss)) == NULL ||
		    !smtp_set_reverse_path(msgs[i], items[i].sender ?
		    items[i].sender : "") ||
		    (rcpts[i] = smtp_add_recipient(msgs[i], items[i].rcpt)) ==
		    NULL ||
		    !smtp_set_messagecb(msgs[i], message_cb, &feeds[i])) {
			set_err(&e, "smtp: building the session: %s",
			    smtp_strerror(smtp_errno(), ebuf, sizeof(ebuf)));
			r = FU_TEMPFAIL;
			goto fail_all;
		}
		smtp_message_set_application_data_release(msgs[i], &feeds[i],
		    NULL);
	}

	/* Run it, with our connect() active on this thread. */
	smtp_thr.active = 1;
	smtp_thr.timeout_ms = s.timeout_ms > 0 ? s.timeout_ms :
	    SMTP_CONNECT_TIMEOUT_MS;
	smtp_thr.fd = -1;
	smtp_thr.connected = smtp_thr.attempts = smtp_thr.last_errno = 0;
	smtp_thr.tls_error[0] = '\0';
	ERR_clear_error();
	clock_gettime(CLOCK_MONOTONIC, &s.last_io);
	log_debug("smtp: %s: session for %zu message%s", s.hostport, live,
	    live == 1 ? "" : "s");
	/*
	 * libesmtp fills a static character-class table lazily, without a
	 * lock, the first time it parses a reply or a header (helgrind sees
	 * two sessions writing it at once). Until one session in this process
	 * has got a message through, sessions run one at a time; after that
	 * the table is read-only and sessions run in parallel.
	 */
	pthread_mutex_lock(&smtp_warm_mu);
	if (smtp_warm) {
		pthread_mutex_unlock(&smtp_warm_mu);
		started = smtp_start_session(ss);
	} else {
		started = smtp_start_session(ss);
		for (i = 0; i < n; i++)
			if (msgs[i] != NULL &&
			    smtp_message_transfer_status(msgs[i]) != NULL &&
			    smtp_message_transfer_status(msgs[i])->code / 100 ==
			    2)
				smtp_warm = 1;
		pthread_mutex_unlock(&smtp_warm_mu);
	}
	smtp_thr.active = 0;
	smtp_thr.fd = -1;

	if (!smtp_thr.connected) {
		if (smtp_thr.attempts > 0)
			set_err(&e, "connect to %s: %s", s.hostport,
			    strerror(smtp_thr.last_errno));
		else
			set_err(&e, "connect to %s: %s", s.hostport,
			    smtp_strerror(smtp_errno(), ebuf, sizeof(ebuf)));
		r = FU_TEMPFAIL;
		goto fail_all;
	}

	local_reason(&s, started, why, sizeof(why));
	for (i = 0; i < n; i++) {
		if (items[i].notified) {	/* reported already: sent */
			sent++;
			continue;
		}
		if (items[i].result != -1)
			continue;
		classify(&s, &items[i], msgs[i], rcpts[i], why);
		/* The data went and no reply came: the relay may have it. */
		if (items[i].result == FU_TEMPFAIL && items[i].code == 0 &&
		    feeds[i].data_sent && !s.blocked)
			items[i].unknown = 1;
		if (items[i].result == FU_OK)
			sent++;
		else if (items[i].result == FU_PERMFAIL)
			failed++;
		else
			deferred++;
	}
	log_debug("smtp: %s: %d sent, %d deferred, %d failed", s.hostport,
	    sent, deferred, failed);
	goto out;

fail_all:
	for (i = 0; i < n; i++)
		if (items[i].result == -1)
			item_set(&items[i], FU_TEMPFAIL, 0, e);
	if (err != NULL) {
		free(*err);
		*err = e;
		e = NULL;
	}
out:
	free(e);
	if (ss != NULL)
		smtp_destroy_session(ss);
	if (auth != NULL)
		auth_destroy_context(auth);
	free(msgs);
	free(rcpts);
	free(feeds);
	free(s.user);
	if (s.pass != NULL) {
		explicit_bzero(s.pass, strlen(s.pass));
		free(s.pass);
	}
	return r;
}
