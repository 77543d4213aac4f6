/* progress: a transient "count, rate, ETA" line on a terminal during long work. */
#include "progress.h"
#include "log.h"
#include "term.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

/* Redraw at most this often (ns): a terminal is slower than our loop. */
#define PROGRESS_REDRAW_NS	100000000L

static struct {
	const char	*what;
	long		 total, done;
	long		 skipped;	/* done before the phase began (no rate) */
	int		 active;	/* between begin and end */
	int		 shown;		/* a line is on the terminal now */
	int		 tty;		/* this phase draws */
	double		 start, last_draw, last_pulse;
} pg;

static void (*progress_pulse)(void);

static double
mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
wipe(void)
{
	if (pg.shown) {
		term_control("\r\033[K");
		pg.shown = 0;
	}
}

static void
draw(double now)
{
	double elapsed = now - pg.start, rate;
	long left = pg.total - pg.done;
	char eta[32];

	rate = elapsed > 0 ? (double)(pg.done - pg.skipped) / elapsed : 0;
	if (rate > 0 && left > 0) {
		long s = (long)((double)left / rate + 0.5);

		if (s >= 3600)
			snprintf(eta, sizeof(eta), "%ldh%02ldm", s / 3600,
			    s / 60 % 60);
		else if (s >= 60)
			snprintf(eta, sizeof(eta), "%ldm%02lds", s / 60, s % 60);
		else
			snprintf(eta, sizeof(eta), "%lds", s);
	} else
		snprintf(eta, sizeof(eta), "%s", left > 0 ? "?" : "0s");
	term_control("\rfollowupd: %s %ld/%ld (%ld%%), %.0f/s, ETA %s\033[K",
	    pg.what, pg.done, pg.total,
	    pg.total ? pg.done * 100 / pg.total : 100, rate, eta);
	pg.shown = 1;
	pg.last_draw = now;
}

void
progress_set_pulse(void (*fn)(void))
{
	progress_pulse = fn;
}

void
progress_begin(const char *what, long total)
{
	wipe();
	pg.what = what;
	pg.total = total;
	pg.done = pg.skipped = 0;
	pg.active = 1;
	pg.start = pg.last_pulse = mono();
	pg.last_draw = 0;
	pg.tty = total >= PROGRESS_MIN && log_to_stderr() && isatty(2);
	if (pg.tty) {
		log_set_stderr_hook(wipe);
		draw(pg.start);
	}
}

void
progress_step(long n)
{
	double now;

	if (!pg.active)
		return;
	pg.done += n;
	if (pg.done > pg.total)
		pg.total = pg.done;	/* more than counted: never show >100% */
	now = mono();
	if (progress_pulse != NULL && now - pg.last_pulse >= 1.0) {
		pg.last_pulse = now;
		progress_pulse();
	}
	if (pg.tty && (now - pg.last_draw) * 1e9 >= PROGRESS_REDRAW_NS)
		draw(now);
}

void
progress_skip(long n)
{
	if (!pg.active || n <= 0)
		return;
	pg.done += n;
	pg.skipped += n;
	if (pg.done > pg.total)
		pg.total = pg.done;
	if (pg.tty)
		draw(mono());
}

void
progress_end(void)
{
	if (!pg.active)
		return;
	wipe();
	if (pg.tty)
		log_set_stderr_hook(NULL);
	pg.active = pg.tty = 0;
}
