/* tap: a minimal test reporter: "ok N - name" / "not ok N - name" lines. */
#ifndef FOLLOWUPD_TAP_H
#define FOLLOWUPD_TAP_H

/* Record one result; extra printf-style diagnostics are shown on failure. */
int	tap_ok(int cond, const char *name, ...) __attribute__((format(printf, 2, 3)));
/* Compare strings; on mismatch print both (escaped). */
int	tap_str(const char *got, const char *want, const char *name, ...)
	    __attribute__((format(printf, 3, 4)));
void	tap_skip(const char *name, const char *why);
void	tap_diag(const char *, ...) __attribute__((format(printf, 1, 2)));
/* Print the plan line and return the exit status (1 if anything failed). */
int	tap_done(void);

#define TAP_OK(cond)	tap_ok((cond), "%s:%d: %s", __FILE__, __LINE__, #cond)

#endif
