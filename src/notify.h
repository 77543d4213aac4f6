/* notify: the service manager's readiness and watchdog protocol (sd_notify). */
#ifndef FOLLOWUPD_NOTIFY_H
#define FOLLOWUPD_NOTIFY_H

/*
 * With libsystemd at build time (HAVE_SYSTEMD) this is sd_notify(3);
 * without it, the same datagram protocol written here (it is small and
 * stable: one AF_UNIX datagram to $NOTIFY_SOCKET). Outside systemd
 * ($NOTIFY_SOCKET unset) every call does nothing.
 *
 * notify_send("READY=1"), "RELOADING=1", "STOPPING=1", "WATCHDOG=1",
 * "STATUS=free text" (newlines are replaced). Failures are ignored: the
 * daemon's work never depends on the manager hearing it.
 */
void	notify_send(const char *state);
void	notify_status(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));

/*
 * The watchdog interval systemd expects pings within (WatchdogSec=), in
 * microseconds; 0 when there is no watchdog for this process.
 */
unsigned long long notify_watchdog_usec(void);

/* "libsystemd" or "built-in": for `followupd --version`-like reports. */
const char *notify_impl(void);

#endif
