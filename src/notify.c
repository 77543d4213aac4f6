/* notify: the service manager's readiness and watchdog protocol (sd_notify). */
#include "notify.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

void
notify_send(const char *state)
{
	int r = sd_notify(0, state);

	if (r < 0)
		log_debug("notify: %s: %s", state, strerror(-r));
}

unsigned long long
notify_watchdog_usec(void)
{
	uint64_t usec = 0;

	return sd_watchdog_enabled(0, &usec) > 0 ? (unsigned long long)usec : 0;
}

const char *
notify_impl(void)
{
	return "libsystemd";
}

#else	/* !HAVE_SYSTEMD: the protocol of sd_notify(3), by hand */
#include <errno.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

void
notify_send(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t len;
	size_t n;
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@') ||
	    (n = strlen(path)) >= sizeof(sun.sun_path))
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, n);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';	/* abstract namespace */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
	    (path[0] == '/'));
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL,
	    (struct sockaddr *)&sun, len) == -1)
		log_debug("notify: %s: %s", state, strerror(errno));
	close(fd);
}

unsigned long long
notify_watchdog_usec(void)
{
	const char *u = getenv("WATCHDOG_USEC"), *p = getenv("WATCHDOG_PID");
	unsigned long long usec;
	char *end;

	if (u == NULL)
		return 0;
	if (p != NULL && strtol(p, NULL, 10) != (long)getpid())
		return 0;
	usec = strtoull(u, &end, 10);
	return *u && *end == '\0' ? usec : 0;
}

const char *
notify_impl(void)
{
	return "built-in";
}
#endif

void
notify_status(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int n;

	n = snprintf(msg, sizeof(msg), "STATUS=");
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	for (char *p = msg; *p; p++)
		if (*p == '\n')
			*p = ' ';
	notify_send(msg);
}
