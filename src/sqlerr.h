/* sqlerr: the one answer to "is this SQLite error worth a retry?" (state.db and the source). */
#ifndef FOLLOWUPD_SQLERR_H
#define FOLLOWUPD_SQLERR_H

#include <sqlite3.h>

#include "util.h"

/*
 * FU_TEMPFAIL for what goes away by itself, FU_PERMFAIL for what needs an
 * operator, by the primary result code (rc & 0xff):
 * - BUSY, LOCKED: another connection holds a lock (the help desk, status).
 * - IOERR, PROTOCOL: the kernel or the WAL locking failed this time.
 * - FULL: the disk or the temporary store is full. Like an MTA on a full
 *   queue disk we defer and try again (space is freed, the spool shrinks);
 *   nothing is lost by waiting.
 * - CANTOPEN is permanent: SQLite says it when the path names no file it
 *   can open (missing, a directory, no permission on the file or its
 *   directory, the -wal/-shm cannot be made). None of these mends itself;
 *   the operator fixes the path or the rights. (store_open creates
 *   state.db itself first and judges that open(2)'s errno on its own, so a
 *   passing shortage such as EMFILE is still a temporary failure there.)
 * - Everything else (CORRUPT, NOTADB, READONLY, SCHEMA, constraint
 *   violations, MISUSE) is permanent.
 */
static inline int
sqlerr_result(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_IOERR:
	case SQLITE_PROTOCOL:
	case SQLITE_FULL:
		return FU_TEMPFAIL;
	default:
		return FU_PERMFAIL;
	}
}

#endif
