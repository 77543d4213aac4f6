/* progress: a transient "count, rate, ETA" line on a terminal during long work. */
#ifndef FOLLOWUPD_PROGRESS_H
#define FOLLOWUPD_PROGRESS_H

/* Work smaller than this shows no line: it is over before one could read it. */
#define PROGRESS_MIN	200

/*
 * A phase of `total` expected steps ("rendering", "delivering"). The line is
 * drawn on stderr only when stderr is a terminal, logging goes to stderr
 * and total >= PROGRESS_MIN; otherwise nothing is printed at all. A log
 * line wipes the progress line first, and the next step redraws it.
 */
void	progress_begin(const char *what, long total);
/* n more steps done (render and deliver call it per job). */
void	progress_step(long n);
/*
 * n steps of the phase were done before it began (delivery that ran while
 * rendering): counted in done/total, not in the rate.
 */
void	progress_skip(long n);
/* The phase is over: the line is wiped (the tick's log line sums it up). */
void	progress_end(void);

/*
 * Called from progress_step at most once a second, whether or not a line is
 * shown: the daemon pings systemd's watchdog through it during a long tick.
 */
void	progress_set_pulse(void (*)(void));

#endif
