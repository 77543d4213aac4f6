/* test_smtp: smtp_deliver against tests/smtp_server.py (aiosmtpd) on 127.0.0.1. */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "smtp.h"
#include "tap.h"
#include "util.h"

/* The whole test, servers included, must end within this. */
#define TEST_DEADLINE_S		120
#define SERVER_START_MS		20000
#define MAX_SERVERS		16

static const char *python;
static char *server_py;
static char tmpdir[PATH_MAX];
static char *cert, *key;		/* for 127.0.0.1 and localhost */
static char *ocert, *okey;		/* for other.test and 10.9.9.9 */

struct server {
	pid_t	pid;
	int	port;
	char	maildir[PATH_MAX + 64];
};

/* Started servers, for the alarm handler and the final cleanup. */
static volatile pid_t live_pids[MAX_SERVERS];

static void
track(pid_t pid)
{
	for (int i = 0; i < MAX_SERVERS; i++)
		if (live_pids[i] == 0) {
			live_pids[i] = pid;
			return;
		}
}

static void
untrack(pid_t pid)
{
	for (int i = 0; i < MAX_SERVERS; i++)
		if (live_pids[i] == pid)
			live_pids[i] = 0;
}

static void
on_alarm(int sig)
{
	static const char msg[] = "Bail out! test_smtp: deadline reached\n";

	(void)sig;
	for (int i = 0; i < MAX_SERVERS; i++)
		if (live_pids[i] > 0)
			kill(live_pids[i], SIGKILL);
	(void)write(STDOUT_FILENO, msg, sizeof(msg) - 1);
	_exit(1);
}

static long
now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

static void
sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&t, &t) == -1 && errno == EINTR)
		;
}

/* Run argv to completion with stdout/stderr to /dev/null; exit status or -1. */
static int
run(char *const argv[])
{
	pid_t pid;
	int st, fd;

	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		if ((fd = open("/dev/null", O_RDWR)) != -1) {
			dup2(fd, STDIN_FILENO);
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * Start the server with extra arguments (NULL-terminated) in tmpdir/name.
 * Its output goes to tmpdir/name.log. 0 when it listens.
 */
static int
server_start(struct server *srv, const char *name, const char *const *extra)
{
	char portfile[PATH_MAX + 64], logfile[PATH_MAX + 64];
	const char *argv[48];
	struct buf b = { 0 };
	long deadline;
	int argc = 0, fd, st;

	memset(srv, 0, sizeof(*srv));
	snprintf(srv->maildir, sizeof(srv->maildir), "%s/%s", tmpdir, name);
	snprintf(portfile, sizeof(portfile), "%s/%s.port", tmpdir, name);
	snprintf(logfile, sizeof(logfile), "%s/%s.log", tmpdir, name);
	argv[argc++] = python;
	argv[argc++] = server_py;
	argv[argc++] = "--port";
	argv[argc++] = "0";
	argv[argc++] = "--maildir";
	argv[argc++] = srv->maildir;
	argv[argc++] = "--portfile";
	argv[argc++] = portfile;
	argv[argc++] = "--lifetime";
	argv[argc++] = "150";
	for (; extra != NULL && *extra != NULL && argc < 46; extra++)
		argv[argc++] = *extra;
	argv[argc] = NULL;

	if ((srv->pid = fork()) == -1)
		return -1;
	if (srv->pid == 0) {
		if ((fd = open(logfile, O_WRONLY | O_CREAT | O_TRUNC, 0600)) !=
		    -1) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		/* execv takes char *const[]; the strings are not modified. */
		execv(python, (char *const *)(void *)argv);
		_exit(127);
	}
	track(srv->pid);
	deadline = now_ms() + SERVER_START_MS;
	while (now_ms() < deadline) {
		if (waitpid(srv->pid, &st, WNOHANG) == srv->pid) {
			untrack(srv->pid);
			srv->pid = 0;
			tap_diag("server %s exited early; see %s", name, logfile);
			return -1;
		}
		buf_reset(&b);
		if (read_file(portfile, &b, NULL) == FU_OK && b.len > 0 &&
		    b.data[b.len - 1] == '\n') {
			srv->port = atoi(b.data);
			break;
		}
		sleep_ms(20);
	}
	buf_free(&b);
	if (srv->port <= 0) {
		tap_diag("server %s did not start; see %s", name, logfile);
		return -1;
	}
	return 0;
}

static void
server_stop(struct server *srv)
{
	long deadline;
	int st;

	if (srv->pid <= 0)
		return;
	kill(srv->pid, SIGTERM);
	deadline = now_ms() + 5000;
	while (waitpid(srv->pid, &st, WNOHANG) == 0) {
		if (now_ms() > deadline) {
			kill(srv->pid, SIGKILL);
			waitpid(srv->pid, &st, 0);
			break;
		}
		sleep_ms(10);
	}
	untrack(srv->pid);
	srv->pid = 0;
}

static int
count_eml(const char *dir)
{
	struct dirent *de;
	DIR *d;
	int n = 0;

	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);

		if (l == 10 && strcmp(de->d_name + 6, ".eml") == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* Contents of maildir/NNNNNN.ext, "" when missing; caller frees. */
static char *
mail_file(const struct server *srv, int num, const char *ext, size_t *len)
{
	char path[PATH_MAX + 96];
	struct buf b = { 0 };

	snprintf(path, sizeof(path), "%s/%06d.%s", srv->maildir, num, ext);
	if (read_file(path, &b, NULL) != FU_OK)
		buf_reset(&b);
	if (len != NULL)
		*len = b.len;
	if (b.data == NULL)
		return xstrdup("");
	return buf_steal(&b);
}

/*
 * sessions.jsonl, once it has at least n lines (the server writes a line
 * when it sees the connection close). Caller frees.
 */
static char *
sessions(const struct server *srv, int n)
{
	char path[PATH_MAX + 96];
	struct buf b = { 0 };
	long deadline = now_ms() + 3000;
	int lines;

	snprintf(path, sizeof(path), "%s/sessions.jsonl", srv->maildir);
	for (;;) {
		buf_reset(&b);
		lines = 0;
		if (read_file(path, &b, NULL) == FU_OK)
			for (size_t i = 0; i < b.len; i++)
				lines += b.data[i] == '\n';
		if (lines >= n || now_ms() > deadline)
			break;
		sleep_ms(20);
	}
	if (b.data == NULL)
		return xstrdup("");
	return buf_steal(&b);
}

static char *
make_msg(const char *to, const char *subject, const char *body)
{
	return xasprintf("Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
	    "Message-ID: <%s.%s@followupd.test>\r\n"
	    "From: Follow Up <sender@example.org>\r\n"
	    "To: <%s>\r\n"
	    "Subject: %s\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "\r\n%s", subject, to, to, subject, body);
}

static void
item_init(struct smtp_item *it, const char *rcpt, char *data)
{
	memset(it, 0, sizeof(*it));
	it->sender = "sender@example.org";
	it->rcpt = rcpt;
	it->data = data;
	it->len = strlen(data);
	it->result = -1;
}

static void
items_free(struct smtp_item *it, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		/* The test owns the data: make_msg allocated it. */
		char *p;

		memcpy(&p, &it[i].data, sizeof(p));
		free(p);
	}
}

static void
cfg_plain(struct smtp_config *cfg, int port)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->host = "127.0.0.1";
	cfg->port = port;
	cfg->starttls = SMTP_STARTTLS_NO;
	cfg->helo = "client.test";
	cfg->timeout_ms = 10000;
}

static int
reinit(const char *ca_file)
{
	struct smtp_config cfg;
	char *err = NULL;
	int r;

	smtp_shutdown();
	cfg_plain(&cfg, 25);
	cfg.ca_file = ca_file;
	if ((r = smtp_init(&cfg, &err)) != FU_OK)
		tap_diag("smtp_init: %s", err);
	free(err);
	return r;
}

/* A port on 127.0.0.1 nobody listens on (bound then closed). */
static int
closed_port(void)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int fd, port;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &sl) == -1) {
		close(fd);
		return -1;
	}
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/* ---------------------------------------------------------------- cases */

static void
test_three_in_one_session(void)
{
	static const char *rcpt[3] = { "alice@example.org", "bob@example.org",
	    "carol@example.org" };
	struct server srv;
	struct smtp_config cfg;
	struct smtp_item it[3];
	char *err = NULL, subject[32];
	int r;

	if (server_start(&srv, "three", NULL) != 0) {
		tap_ok(0, "three: server started");
		return;
	}
	for (int i = 0; i < 3; i++) {
		snprintf(subject, sizeof(subject), "message %d", i);
		item_init(&it[i], rcpt[i], make_msg(rcpt[i], subject,
		    "Hello,\r\n.a line starting with a dot\r\n..two dots\r\n"
		    ".\r\nbye\r\n"));
	}
	cfg_plain(&cfg, srv.port);
	r = smtp_deliver(&cfg, it, 3, &err);
	tap_ok(r == FU_OK, "three: session ran (%s)", err ? err : "");
	for (int i = 0; i < 3; i++) {
		tap_ok(it[i].result == FU_OK && it[i].code == 250,
		    "three: item %d sent (%d %d %s)", i, it[i].result,
		    it[i].code, it[i].reply);
		tap_ok(strncmp(it[i].reply, "250 ", 4) == 0 &&
		    strchr(it[i].reply, '\r') == NULL &&
		    strchr(it[i].reply, '\n') == NULL,
		    "three: item %d reply is one line: %s", i, it[i].reply);
	}
	tap_ok(count_eml(srv.maildir) == 3, "three: server has 3 messages (%d)",
	    count_eml(srv.maildir));
	for (int i = 0; i < 3; i++) {
		size_t len;
		char *eml = mail_file(&srv, i + 1, "eml", &len);
		char *json = mail_file(&srv, i + 1, "json", NULL);
		char want[128];

		tap_ok(len == it[i].len && memcmp(eml, it[i].data, len) == 0,
		    "three: message %d arrived byte for byte (%zu vs %zu)", i,
		    len, it[i].len);
		tap_ok(strstr(json, "\"mail_from\": \"sender@example.org\"") !=
		    NULL, "three: message %d envelope sender", i);
		snprintf(want, sizeof(want), "\"%s\"", rcpt[i]);
		tap_ok(strstr(json, want) != NULL &&
		    strstr(json, "\"tls\": false") != NULL &&
		    strstr(json, "\"auth_user\": null") != NULL,
		    "three: message %d envelope recipient %s, no TLS, no AUTH",
		    i, rcpt[i]);
		free(eml);
		free(json);
	}
	{
		char *ses = sessions(&srv, 1);

		tap_ok(strstr(ses, "\"EHLO\"") != NULL &&
		    strstr(ses, "\"QUIT\"") != NULL && strchr(ses, '\n') ==
		    strrchr(ses, '\n'), "three: one connection, EHLO..QUIT");
		free(ses);
	}
	items_free(it, 3);
	free(err);
	server_stop(&srv);
}

static void
test_rcpt_550_among_three(void)
{
	static const char *const extra[] = { "--fault", "rcpt:bob:550", NULL };
	static const char *rcpt[3] = { "alice@example.org", "bob@example.org",
	    "carol@example.org" };
	struct server srv;
	struct smtp_config cfg;
	struct smtp_item it[3];
	char *err = NULL;
	int r;

	if (server_start(&srv, "rcpt550", extra) != 0) {
		tap_ok(0, "rcpt550: server started");
		return;
	}
	for (int i = 0; i < 3; i++)
		item_init(&it[i], rcpt[i], make_msg(rcpt[i], "550", "x\r\n"));
	cfg_plain(&cfg, srv.port);
	r = smtp_deliver(&cfg, it, 3, &err);
	tap_ok(r == FU_OK, "rcpt550: session ran");
	tap_ok(it[0].result == FU_OK && it[2].result == FU_OK,
	    "rcpt550: alice and carol sent (%d %d)", it[0].result,
	    it[2].result);
	tap_ok(it[1].result == FU_PERMFAIL && it[1].code == 550,
	    "rcpt550: bob permfail 550 (%d %d)", it[1].result, it[1].code);
	tap_str(it[1].reply, "550 5.1.1 <bob@example.org>: no such user",
	    "rcpt550: bob's reply text");
	tap_ok(count_eml(srv.maildir) == 2, "rcpt550: server has 2 messages");
	items_free(it, 3);
	free(err);
	server_stop(&srv);
}

static void
test_rcpt_451(void)
{
	static const char *const extra[] = { "--fault", "rcpt:*:451", NULL };
	struct server srv;
	struct smtp_config cfg;
	struct smtp_item it[2];
	char *err = NULL;

	if (server_start(&srv, "rcpt451", extra) != 0) {
		tap_ok(0, "rcpt451: server started");
		return;
	}
	item_init(&it[0], "a@example.org", make_msg("a@example.org", "451",
	    "x\r\n"));
	item_init(&it[1], "b@example.org", make_msg("b@example.org", "451",
	    "y\r\n"));
	cfg_plain(&cfg, srv.port);
	tap_ok(smtp_deliver(&cfg, it, 2, &err) == FU_OK, "rcpt451: session ran");
	for (int i = 0; i < 2; i++)
		tap_ok(it[i].result == FU_TEMPFAIL && it[i].code == 451 &&
		    strcmp(it[i].reply, "451 4.3.0 try again later") == 0,
		    "rcpt451: item %d tempfail 451 (%d %d %s)", i, it[i].result,
		    it[i].code, it[i].reply);
	tap_ok(count_eml(srv.maildir) == 0, "rcpt451: nothing stored");
	items_free(it, 2);
	free(err);
	server_stop(&srv);
}

static void
test_mail_and_data_faults(void)
{
	static const char *const extra[] = { "--fault", "data:dan:554",
	    "--fault", "mail:bounce:553", NULL };
	struct server srv;
	struct smtp_config cfg;
	struct smtp_item it[3];
	char *err = NULL;

	if (server_start(&srv, "data554", extra) != 0) {
		tap_ok(0, "data554: server started");
		return;
	}
	item_init(&it[0], "dan@example.org", make_msg("dan@example.org",
	    "554", "x\r\n"));
	item_init(&it[1], "eve@example.org", make_msg("eve@example.org",
	    "553", "x\r\n"));
	it[1].sender = "bounce@example.org";
	item_init(&it[2], "fay@example.org", make_msg("fay@example.org",
	    "ok", "x\r\n"));
	cfg_plain(&cfg, srv.port);
	tap_ok(smtp_deliver(&cfg, it, 3, &err) == FU_OK, "data554: session ran");
	tap_ok(it[0].result == FU_PERMFAIL && it[0].code == 554 &&
	    strcmp(it[0].reply, "554 5.6.0 message rejected") == 0,
	    "data554: 554 at end of DATA is permfail (%d %d %s)",
	    it[0].result, it[0].code, it[0].reply);
	/* A refused sender is our problem, not the recipient's: deferred. */
	tap_ok(it[1].result == FU_TEMPFAIL && it[1].code == 553 &&
	    it[1].stage == SMTP_STAGE_MAIL &&
	    strstr(it[1].reply, "refused our sender") != NULL,
	    "data554: 553 to MAIL FROM defers, naming the sender (%d %d %s)",
	    it[1].result, it[1].code, it[1].reply);
	tap_ok(it[0].stage == SMTP_STAGE_DATA, "data554: decided at DATA");
	tap_ok(it[2].result == FU_OK, "data554: the next message still goes "
	    "(%d %s)", it[2].result, it[2].reply);
	tap_ok(count_eml(srv.maildir) == 1, "data554: server has 1 message");
	items_free(it, 3);
	free(err);
	server_stop(&srv);
}

static void
test_connection_refused(void)
{
	struct smtp_config cfg;
	struct smtp_item it[2];
	char *err = NULL, want[96];
	int port = closed_port(), r;

	item_init(&it[0], "a@example.org", make_msg("a@example.org", "r",
	    "x\r\n"));
	item_init(&it[1], "b@example.org", make_msg("b@example.org", "r",
	    "x\r\n"));
	cfg_plain(&cfg, port);
	r = smtp_deliver(&cfg, it, 2, &err);
	snprintf(want, sizeof(want), "connect to 127.0.0.1:%d: Connection "
	    "refused", port);
	tap_ok(r == FU_TEMPFAIL, "refused: returns tempfail");
	tap_str(err, want, "refused: err says why");
	for (int i = 0; i < 2; i++)
		tap_ok(it[i].result == FU_TEMPFAIL && it[i].code == 0 &&
		    strcmp(it[i].reply, want) == 0,
		    "refused: item %d tempfail (%d %s)", i, it[i].result,
		    it[i].reply);
	items_free(it, 2);
	free(err);
}

/* A listener whose accept queue is full: SYNs are dropped, connect hangs. */
static void
test_connect_timeout(void)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	struct smtp_config cfg;
	struct smtp_item it;
	int lfd, fill[4], nfill = 0, r;
	char *err = NULL;
	long t0, took;

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd == -1 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) ==
	    -1 || listen(lfd, 0) == -1 || getsockname(lfd,
	    (struct sockaddr *)&sin, &sl) == -1) {
		tap_skip("connect timeout", "cannot set up a listener");
		if (lfd != -1)
			close(lfd);
		return;
	}
	/* Fill the queue with connections nobody accepts. */
	for (; nfill < 4; nfill++) {
		fill[nfill] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		(void)connect(fill[nfill], (struct sockaddr *)&sin, sizeof(sin));
	}
	sleep_ms(100);
	item_init(&it, "a@example.org", make_msg("a@example.org", "t",
	    "x\r\n"));
	cfg_plain(&cfg, ntohs(sin.sin_port));
	cfg.timeout_ms = 400;
	t0 = now_ms();
	r = smtp_deliver(&cfg, &it, 1, &err);
	took = now_ms() - t0;
	if (r == FU_TEMPFAIL && err != NULL && strstr(err, "timed out")) {
		tap_ok(took < 3000, "connect timeout: gave up after %ld ms "
		    "(timeout 400 ms)", took);
		tap_ok(it.result == FU_TEMPFAIL,
		    "connect timeout: item tempfail: %s", it.reply);
	} else {
		/* Some kernels accept anyway; then this cannot be tested. */
		tap_skip("connect timeout", "the kernel did not drop the SYN");
		tap_skip("connect timeout: item", "the kernel did not drop the SYN");
	}
	for (int i = 0; i < nfill; i++)
		close(fill[i]);
	close(lfd);
	items_free(&it, 1);
	free(err);
}

static void
test_greeting_421_and_drop(void)
{
	static const char *const g421[] = { "--fault", "greeting:421", NULL };
	static const char *const drop[] = { "--fault", "data-drop:second",
	    NULL };
	struct server srv;
	struct smtp_config cfg;
	struct smtp_item it[3];
	char *err = NULL;

	if (server_start(&srv, "g421", g421) != 0) {
		tap_ok(0, "greeting 421: server started");
		return;
	}
	item_init(&it[0], "a@example.org", make_msg("a@example.org", "g",
	    "x\r\n"));
	cfg_plain(&cfg, srv.port);
	tap_ok(smtp_deliver(&cfg, it, 1, &err) == FU_OK,
	    "greeting 421: the connection was made (%s)", err ? err : "");
	tap_ok(it[0].result == FU_TEMPFAIL && strstr(it[0].reply,
	    "greeting: 421 4.3.2") != NULL, "greeting 421: tempfail: %s",
	    it[0].reply);
	items_free(it, 1);
	server_stop(&srv);

	if (server_start(&srv, "drop", drop) != 0) {
		tap_ok(0, "data-drop: server started");
		return;
	}
	item_init(&it[0], "first@example.org", make_msg("first@example.org",
	    "d", "x\r\n"));
	item_init(&it[1], "second@example.org", make_msg("second@example.org",
	    "d", "x\r\n"));
	item_init(&it[2], "third@example.org", make_msg("third@example.org",
	    "d", "x\r\n"));
	tap_ok(smtp_deliver(&(struct smtp_config){ .host = "127.0.0.1",
	    .port = srv.port, .timeout_ms = 5000 }, it, 3, &err) == FU_OK,
	    "data-drop: session ran");
	tap_ok(it[0].result == FU_OK, "data-drop: first sent");
	tap_ok(it[1].result == FU_TEMPFAIL && it[1].code == 0 &&
	    strstr(it[1].reply, "lost") != NULL,
	    "data-drop: dropped at end of DATA is tempfail: %s", it[1].reply);
	tap_ok(it[2].result == FU_TEMPFAIL && it[2].code == 0,
	    "data-drop: the rest is tempfail: %s", it[2].reply);
	items_free(it, 3);
	free(err);
	server_stop(&srv);
}

static void
test_stall(void)
{
	static const char *const sdata[] = { "--fault", "stall-data", NULL };
	static const char *const sgreet[] = { "--fault", "greeting-stall",
	    NULL };
	struct server srv;
	struct smtp_config cfg;
	struct smtp_item it[2];
	char *err = NULL;
	long t0, took;

	if (server_start(&srv, "stall", sdata) != 0) {
		tap_ok(0, "stall: server started");
		return;
	}
	item_init(&it[0], "a@example.org", make_msg("a@example.org", "s",
	    "x\r\n"));
	item_init(&it[1], "b@example.org", make_msg("b@example.org", "s",
	    "x\r\n"));
	cfg_plain(&cfg, srv.port);
	cfg.timeout_ms = 500;
	t0 = now_ms();
	tap_ok(smtp_deliver(&cfg, it, 2, &err) == FU_OK, "stall: session ran");
	took = now_ms() - t0;
	tap_ok(took < 2 * 500 + 1500, "stall: over in %ld ms (timeout 500 ms; "
	    "libesmtp also waits for QUIT)", took);
	tap_ok(it[0].result == FU_TEMPFAIL && it[1].result == FU_TEMPFAIL,
	    "stall: both tempfail");
	tap_ok(strstr(it[0].reply, "timeout") != NULL,
	    "stall: reply says timeout: %s", it[0].reply);
	items_free(it, 2);
	server_stop(&srv);

	if (server_start(&srv, "stallg", sgreet) != 0) {
		tap_ok(0, "stall greeting: server started");
		return;
	}
	item_init(&it[0], "a@example.org", make_msg("a@example.org", "s",
	    "x\r\n"));
	cfg.port = srv.port;
	t0 = now_ms();
	smtp_deliver(&cfg, it, 1, &err);
	took = now_ms() - t0;
	tap_ok(it[0].result == FU_TEMPFAIL && took < 2 * 500 + 1500,
	    "stall greeting: tempfail in %ld ms: %s", took, it[0].reply);
	items_free(it, 1);
	free(err);
	server_stop(&srv);
}

static void
test_big_dotted_message(void)
{
	struct server srv;
	struct smtp_config cfg;
	struct smtp_item it;
	struct buf body = { 0 };
	char *err = NULL, *eml;
	size_t len;
	int i;

	if (server_start(&srv, "big", NULL) != 0) {
		tap_ok(0, "1 MB: server started");
		return;
	}
	for (i = 0; body.len < 1024 * 1024; i++) {
		switch (i % 5) {
		case 0:
			buf_printf(&body, ".line %d starts with a dot\r\n", i);
			break;
		case 1:
			buf_puts(&body, ".\r\n");
			break;
		case 2:
			buf_printf(&body, "..%d two dots\r\n", i);
			break;
		case 3:
			buf_puts(&body, "\r\n");
			break;
		default:
			buf_printf(&body, "plain %d ................................"
			    "........................................\r\n", i);
		}
	}
	item_init(&it, "big@example.org", make_msg("big@example.org", "big",
	    buf_cstr(&body)));
	cfg_plain(&cfg, srv.port);
	tap_ok(smtp_deliver(&cfg, &it, 1, &err) == FU_OK && it.result == FU_OK,
	    "1 MB: sent (%s)", it.reply);
	eml = mail_file(&srv, 1, "eml", &len);
	tap_ok(len == it.len && memcmp(eml, it.data, len) == 0,
	    "1 MB: %zu bytes with dot lines arrived intact (got %zu)", it.len,
	    len);
	free(eml);
	buf_free(&body);
	items_free(&it, 1);
	free(err);
	server_stop(&srv);
}

static void
test_bad_envelope(void)
{
	struct server srv;
	struct smtp_config cfg;
	struct smtp_item it[3];
	char *err = NULL;

	if (server_start(&srv, "badenv", NULL) != 0) {
		tap_ok(0, "bad envelope: server started");
		return;
	}
	item_init(&it[0], "x@example.org>\r\nRCPT TO:<evil@example.org",
	    make_msg("x@example.org", "i", "x\r\n"));
	item_init(&it[1], "ok@example.org", make_msg("ok@example.org", "i",
	    "x\r\n"));
	item_init(&it[2], "y@example.org", make_msg("y@example.org", "i",
	    "x\r\n"));
	it[2].sender = "a b@example.org";
	cfg_plain(&cfg, srv.port);
	tap_ok(smtp_deliver(&cfg, it, 3, &err) == FU_OK, "bad envelope: ran");
	tap_ok(it[0].result == FU_PERMFAIL && it[2].result == FU_PERMFAIL,
	    "bad envelope: CR/LF or space in an address is permfail (%s; %s)",
	    it[0].reply, it[2].reply);
	tap_ok(it[1].result == FU_OK, "bad envelope: the good one is sent");
	{
		char *json = mail_file(&srv, 1, "json", NULL);

		tap_ok(count_eml(srv.maildir) == 1 && strstr(json, "evil") ==
		    NULL, "bad envelope: nothing injected");
		free(json);
	}
	items_free(it, 3);
	free(err);
	server_stop(&srv);
}

static void
test_starttls_auth(void)
{
	const char *const extra[] = { "--tls-cert", cert, "--tls-key", key,
	    "--require-starttls", "--auth-user", "alice", "--auth-pass",
	    "s3cret pass", NULL };
	struct server srv;
	struct smtp_config cfg;
	struct smtp_item it[2];
	char *err = NULL, *json;

	if (server_start(&srv, "tlsauth", extra) != 0) {
		tap_ok(0, "tls+auth: server started");
		return;
	}
	if (reinit(cert) != FU_OK) {
		tap_ok(0, "tls+auth: smtp_init with ca_file");
		server_stop(&srv);
		return;
	}
	cfg_plain(&cfg, srv.port);
	cfg.starttls = SMTP_STARTTLS_REQUIRED;
	cfg.ca_file = cert;
	cfg.username = "alice";
	cfg.password = "s3cret pass";

	/* Two TLS sessions in a row: libesmtp's own context would crash. */
	for (int round = 0; round < 2; round++) {
		item_init(&it[round], "t@example.org", make_msg("t@example.org",
		    "tls", "secret body\r\n"));
		tap_ok(smtp_deliver(&cfg, &it[round], 1, &err) == FU_OK &&
		    it[round].result == FU_OK, "tls+auth: session %d sent (%s)",
		    round + 1, it[round].reply);
		json = mail_file(&srv, round + 1, "json", NULL);
		tap_ok(strstr(json, "\"tls\": true") != NULL &&
		    strstr(json, "\"auth_user\": \"alice\"") != NULL,
		    "tls+auth: session %d: server saw TLS and user alice", round + 1);
		free(json);
	}

	items_free(it, 2);

	/* Same server, STARTTLS only optional: still verified, still TLS. */
	cfg.starttls = SMTP_STARTTLS_OPTIONAL;
	item_init(&it[0], "t@example.org", make_msg("t@example.org", "opt",
	    "x\r\n"));
	smtp_deliver(&cfg, it, 1, &err);
	json = mail_file(&srv, 3, "json", NULL);
	tap_ok(it[0].result == FU_OK && strstr(json, "\"tls\": true") != NULL,
	    "tls+auth: optional STARTTLS is used when offered (%s)",
	    it[0].reply);
	free(json);
	items_free(it, 1);

	/* Wrong password: nothing sent, not even MAIL. */
	cfg.starttls = SMTP_STARTTLS_REQUIRED;
	cfg.password = "wrong";
	item_init(&it[0], "t@example.org", make_msg("t@example.org", "bad",
	    "x\r\n"));
	tap_ok(smtp_deliver(&cfg, it, 1, &err) == FU_OK,
	    "wrong password: connected");
	tap_ok(it[0].result == FU_TEMPFAIL && strstr(it[0].reply,
	    "AUTH as alice") != NULL && strstr(it[0].reply, "535") != NULL,
	    "wrong password: tempfail: %s", it[0].reply);
	tap_ok(strstr(it[0].reply, "wrong") == NULL,
	    "wrong password: the password is not in the reply");
	tap_ok(count_eml(srv.maildir) == 3, "wrong password: nothing received");
	{
		char *ses = sessions(&srv, 4);
		const char *last = strrchr(ses, '{');

		tap_ok(last != NULL && strstr(last, "\"AUTH\"") != NULL &&
		    strstr(last, "\"MAIL\"") == NULL,
		    "wrong password: no MAIL after the failed AUTH: %s",
		    last ? last : "");
		free(ses);
	}
	items_free(it, 1);
	free(err);
	server_stop(&srv);
}

static void
test_tls_refusals(void)
{
	const char *const tlssrv[] = { "--tls-cert", cert, "--tls-key", key,
	    NULL };
	struct server srv;
	struct smtp_config cfg;
	struct smtp_item it;
	char *err = NULL, want[128];

	/* STARTTLS required, server without TLS. */
	if (server_start(&srv, "notls", NULL) != 0) {
		tap_ok(0, "no STARTTLS: server started");
		return;
	}
	item_init(&it, "t@example.org", make_msg("t@example.org", "n",
	    "x\r\n"));
	cfg_plain(&cfg, srv.port);
	cfg.starttls = SMTP_STARTTLS_REQUIRED;
	smtp_deliver(&cfg, &it, 1, &err);
	snprintf(want, sizeof(want), "STARTTLS required but not offered by "
	    "127.0.0.1:%d", srv.port);
	tap_ok(it.result == FU_TEMPFAIL, "no STARTTLS: tempfail");
	tap_str(it.reply, want, "no STARTTLS: reply says why");
	tap_ok(count_eml(srv.maildir) == 0, "no STARTTLS: nothing received");

	/* A username, a server that offers no AUTH: do not send without. */
	items_free(&it, 1);
	item_init(&it, "t@example.org", make_msg("t@example.org", "n",
	    "x\r\n"));
	cfg.starttls = SMTP_STARTTLS_NO;
	cfg.username = "alice";
	cfg.password = "pw";
	smtp_deliver(&cfg, &it, 1, &err);
	tap_ok(it.result == FU_TEMPFAIL && strstr(it.reply, "AUTH") != NULL &&
	    count_eml(srv.maildir) == 0,
	    "AUTH not offered: tempfail, nothing received: %s", it.reply);
	items_free(&it, 1);
	server_stop(&srv);

	/* Self-signed certificate, no ca_file: the system store refuses it. */
	if (server_start(&srv, "selfsigned", tlssrv) != 0) {
		tap_ok(0, "self-signed: server started");
		return;
	}
	if (reinit(NULL) != FU_OK) {
		tap_ok(0, "self-signed: smtp_init without ca_file");
		server_stop(&srv);
		return;
	}
	cfg_plain(&cfg, srv.port);
	for (int opt = 0; opt < 2; opt++) {
		cfg.starttls = opt ? SMTP_STARTTLS_OPTIONAL :
		    SMTP_STARTTLS_REQUIRED;
		item_init(&it, "t@example.org", make_msg("t@example.org", "s",
		    "x\r\n"));
		smtp_deliver(&cfg, &it, 1, &err);
		tap_ok(it.result == FU_TEMPFAIL && strstr(it.reply,
		    "certificate verify failed") != NULL,
		    "self-signed (%s): tempfail: %s", opt ? "optional" :
		    "required", it.reply);
		items_free(&it, 1);
	}
	tap_ok(count_eml(srv.maildir) == 0, "self-signed: nothing received");
	{
		char *ses = sessions(&srv, 2);

		tap_ok(strstr(ses, "\"MAIL\"") == NULL,
		    "self-signed: no MAIL command at all");
		free(ses);
	}

	/* Reach the same server as "localhost": a DNS name in the SAN. */
	if (reinit(cert) == FU_OK) {
		cfg.host = "localhost";
		cfg.starttls = SMTP_STARTTLS_REQUIRED;
		item_init(&it, "t@example.org", make_msg("t@example.org", "l",
		    "x\r\n"));
		smtp_deliver(&cfg, &it, 1, &err);
		tap_ok(it.result == FU_OK, "localhost: name matched, sent (%s)",
		    it.reply);
		items_free(&it, 1);
	}
	server_stop(&srv);

	/* A trusted certificate for another name: refused. */
	{
		const char *const other[] = { "--tls-cert", ocert, "--tls-key",
		    okey, NULL };

		if (server_start(&srv, "othername", other) != 0 ||
		    reinit(ocert) != FU_OK) {
			tap_ok(0, "wrong name: set up");
			server_stop(&srv);
			free(err);
			return;
		}
	}
	cfg_plain(&cfg, srv.port);
	for (int opt = 0; opt < 2; opt++) {
		cfg.host = opt ? "localhost" : "127.0.0.1";
		cfg.starttls = SMTP_STARTTLS_REQUIRED;
		item_init(&it, "t@example.org", make_msg("t@example.org", "w",
		    "x\r\n"));
		smtp_deliver(&cfg, &it, 1, &err);
		tap_ok(it.result == FU_TEMPFAIL && strstr(it.reply,
		    "certificate of") != NULL, "wrong name (%s): tempfail: %s",
		    cfg.host, it.reply);
		items_free(&it, 1);
	}
	tap_ok(count_eml(srv.maildir) == 0, "wrong name: nothing received");
	reinit(NULL);
	free(err);
	server_stop(&srv);
}

static void
test_throughput(void)
{
	enum { N = 150 };
	struct server srv;
	struct smtp_config cfg;
	struct smtp_item *it;
	struct buf body = { 0 };
	char *err = NULL;
	long t0, took;
	int ok = 0;

	if (getenv("VALGRIND") != NULL && strcmp(getenv("VALGRIND"), "1") == 0) {
		tap_skip("throughput", "timing is meaningless under valgrind");
		return;
	}
	if (server_start(&srv, "speed", NULL) != 0) {
		tap_ok(0, "throughput: server started");
		return;
	}
	while (body.len < 3000)
		buf_puts(&body, "a line of text to make the message 3 KB long, "
		    "over libesmtp's 2 KB buffer\r\n");
	it = xcalloc(N, sizeof(*it));
	for (int i = 0; i < N; i++)
		item_init(&it[i], "speed@example.org", make_msg(
		    "speed@example.org", "speed", buf_cstr(&body)));
	cfg_plain(&cfg, srv.port);
	t0 = now_ms();
	smtp_deliver(&cfg, it, N, &err);
	took = now_ms() - t0;
	for (int i = 0; i < N; i++)
		ok += it[i].result == FU_OK;
	/* Without TCP_NODELAY each message waits ~40 ms: 6 s. */
	tap_ok(ok == N && took < 4000, "throughput: %d x 3 KB in %ld ms "
	    "(%d sent)", N, took, ok);
	items_free(it, N);
	free(it);
	buf_free(&body);
	free(err);
	server_stop(&srv);
}

/* ---------------------------------------------------------------- main */

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
find_server_py(const char *argv0)
{
	const char *env = getenv("SMTP_SERVER_PY");
	char exe[PATH_MAX], *slash;
	ssize_t n;

	if (env != NULL) {
		server_py = xstrdup(env);
		return access(server_py, R_OK);
	}
	server_py = xstrdup("tests/smtp_server.py");
	if (access(server_py, R_OK) == 0)
		return 0;
	free(server_py);
	/* build/tests/test_smtp -> tests/smtp_server.py */
	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) <= 0)
		snprintf(exe, sizeof(exe), "%s", argv0);
	else
		exe[n] = '\0';
	for (int up = 0; up < 3 && (slash = strrchr(exe, '/')) != NULL; up++)
		*slash = '\0';
	server_py = xasprintf("%s/tests/smtp_server.py", exe);
	return access(server_py, R_OK);
}

int
main(int argc, char **argv)
{
	struct sigaction sa;
	char *check[] = { NULL, "-c", "import aiosmtpd.smtp", NULL };
	char *mkcert[] = { NULL, "-B", "-c", "import sys; sys.path.insert(0, "
	    "sys.argv[1]); import smtp_server; smtp_server.make_cert("
	    "sys.argv[2]); smtp_server.make_cert(sys.argv[2], "
	    "san='DNS:other.test,IP:10.9.9.9', prefix='other-')", NULL, NULL,
	    NULL };	/* -B: no __pycache__ in tests/ */
	char *certdir, *slash;
	int r;

	(void)argc;
	log_init(1, getenv("SMTP_DEBUG") != NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	alarm(TEST_DEADLINE_S);

	python = getenv("PYTHON") ? getenv("PYTHON") : "/usr/bin/python3";
	check[0] = mkcert[0] = strdup(python);
	if (find_server_py(argv[0]) != 0) {
		tap_skip("smtp tests", "tests/smtp_server.py not found");
		free(check[0]);
		return tap_done();
	}
	if (run(check) != 0) {
		tap_skip("smtp tests", "python3-aiosmtpd missing (apt-get "
		    "install python3-aiosmtpd; PYTHON selects the interpreter)");
		free(check[0]);
		return tap_done();
	}

	snprintf(tmpdir, sizeof(tmpdir), "%s/test_smtp.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		tap_ok(0, "mkdtemp: %s", strerror(errno));
		free(check[0]);
		return tap_done();
	}
	certdir = xasprintf("%s/cert", tmpdir);
	mkdir(certdir, 0700);
	cert = xasprintf("%s/cert.pem", certdir);
	key = xasprintf("%s/key.pem", certdir);
	ocert = xasprintf("%s/other-cert.pem", certdir);
	okey = xasprintf("%s/other-key.pem", certdir);
	mkcert[4] = xstrdup(server_py);
	if ((slash = strrchr(mkcert[4], '/')) != NULL)
		*slash = '\0';
	mkcert[5] = certdir;
	tap_ok(run(mkcert) == 0 && access(cert, R_OK) == 0,
	    "self-signed certificate made");
	free(mkcert[4]);

	r = reinit(NULL);
	tap_ok(r == FU_OK, "smtp_init");
	{
		struct smtp_config bad;
		char *err = NULL;

		cfg_plain(&bad, 25);
		bad.ca_file = "/nonexistent/ca.pem";
		r = smtp_init(&bad, &err);
		tap_ok(r == FU_PERMFAIL && err != NULL,
		    "smtp_init: a missing ca_file is permfail: %s",
		    err ? err : "");
		free(err);
		err = NULL;
		cfg_plain(&bad, 25);
		bad.host = "::1";
		r = smtp_init(&bad, &err);
		tap_ok(r == FU_PERMFAIL && err != NULL,
		    "smtp_init: IPv6 literal refused: %s", err ? err : "");
		free(err);
		reinit(NULL);
	}

	test_three_in_one_session();
	test_rcpt_550_among_three();
	test_rcpt_451();
	test_mail_and_data_faults();
	test_connection_refused();
	test_connect_timeout();
	test_greeting_421_and_drop();
	test_stall();
	test_big_dotted_message();
	test_bad_envelope();
	test_tls_refusals();
	test_starttls_auth();
	test_throughput();

	smtp_shutdown();
	for (int i = 0; i < MAX_SERVERS; i++)
		if (live_pids[i] > 0)
			kill(live_pids[i], SIGKILL);
	if (getenv("SMTP_KEEP") == NULL)
		nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	else
		tap_diag("kept %s", tmpdir);
	free(check[0]);
	free(certdir);
	free(cert);
	free(key);
	free(ocert);
	free(okey);
	free(server_py);
	return tap_done();
}
