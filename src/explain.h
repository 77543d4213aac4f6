/* explain: which source queries read a whole table, and the index that would help. */
#ifndef FOLLOWUPD_EXPLAIN_H
#define FOLLOWUPD_EXPLAIN_H

#include "config.h"
#include "source.h"
#include "util.h"

/*
 * EXPLAIN QUERY PLAN, against the desk itself, on every query followupd
 * runs per job (each rule's re-check, the history queries of rules with
 * history = yes) and on each rule's planning query. followupd cannot
 * create indexes (the desk is read-only to it), so it says what to run:
 * one line per finding is appended to *out:
 *
 *   [rule checkin] history (per message): reads all of table tickets
 *   (SCAN tickets); CREATE INDEX tickets_customer_id ON tickets(customer_id);
 *
 * A per-job query that scans a table is always reported; a planning query
 * (once a tick) only when an index on a column it compares with a
 * parameter would serve it. Returns the number of findings, or -1 with
 * *err when the desk cannot be asked (busy): nothing is known then.
 */
int	explain_source(const struct config *, struct source *, struct buf *out,
	    char **err);
/* The same findings as warnings in the log (the daemon, once at start). */
void	explain_log(const struct config *, struct source *);

#endif
