/* term: what followupd prints never carries a terminal control character. */
#ifndef FOLLOWUPD_TERM_H
#define FOLLOWUPD_TERM_H

/*
 * Replace stdout and stderr by streams that write to descriptors 1 and 2
 * with every control character made visible the way log lines have them
 * (log_ctrl_name: ESC → "^[", U+009B → "M-^["): a value from a database
 * ("ESC[2J" in an email column) cannot clear or retitle the operator's
 * terminal, whichever command prints it. TAB, LF and CR before LF pass.
 * Call once, first thing in main(); the streams are flushed at exit.
 */
void	term_guard_stdio(void);

/*
 * Deliberate terminal control (progress.c's transient line) goes to the
 * descriptor itself, bypassing the guard: fmt and its arguments are ours,
 * never data.
 */
void	term_control(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));

#endif
