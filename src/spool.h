/* spool: the queue/ directory: tmp/ → new/ → sent/ | failed/ | corrupt/, durable writes. */
#ifndef FOLLOWUPD_SPOOL_H
#define FOLLOWUPD_SPOOL_H

#include <stddef.h>

#include "util.h"

struct spool;

/* Create (0700) the directory and its subdirectories if missing. */
int	spool_open(const char *dir, struct spool **out, char **err);
void	spool_close(struct spool *);

/*
 * Durably store a message as new/NAME: O_CREAT|O_EXCL 0600 in tmp/, write,
 * fsync, rename into new/, fsync new/. On any failure the temporary is
 * removed and nothing is in new/. ENOSPC, EIO → FU_TEMPFAIL. NAME must be a
 * plain file name (no '/', no leading '.'; else FU_PERMFAIL). An existing
 * tmp/NAME (another writer, a crash) is left alone: FU_TEMPFAIL. An existing
 * new/NAME is replaced (re-rendering after a crash).
 */
int	spool_write(struct spool *, const char *name, const void *, size_t,
	    char **err);

/*
 * Append new/NAME to out (unchanged on failure). FU_PERMFAIL when missing,
 * not a regular file, or over 64 MB (corrupt); FU_TEMPFAIL on I/O errors.
 */
int	spool_read(struct spool *, const char *name, struct buf *out,
	    char **err);

int	spool_exists(struct spool *, const char *name);

enum spool_fate {
	SPOOL_SENT,	/* to sent/ when keep_sent, else removed */
	SPOOL_FAILED,	/* to failed/ */
	SPOOL_CORRUPT,	/* to corrupt/: never deleted */
};

/*
 * Move or remove new/NAME, then fsync the directories. FU_PERMFAIL when
 * new/NAME is missing. A file already in sent/, failed/ or corrupt/ is never
 * replaced: the newcomer becomes NAME.1, NAME.2, ...
 */
int	spool_finish(struct spool *, const char *name, enum spool_fate,
	    int keep_sent, char **err);

/*
 * Remove files from tmp/ left by a crash (they never became queued). Call at
 * start-up, under the single-instance lock. Returns count, -1 when tmp/
 * cannot be read.
 */
int	spool_clean_tmp(struct spool *);

/* Remove sent/ files older than `age` seconds (counted from the sending). */
void	spool_expire_sent(struct spool *, long age);

const char *spool_dir(const struct spool *);

#endif
