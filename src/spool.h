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

/*
 * Batched durable writes, for a burst of messages: the same guarantee as
 * spool_write for each file at a fraction of the flushes. spool_batch_add
 * writes tmp/NAME (O_CREAT|O_EXCL, 0600) and closes it, unsynced;
 * spool_batch_commit makes every staged file durable (one syncfs(2) of the
 * spool's file system for SPOOL_SYNCFS_MIN files or more, else an fsync
 * per file), renames each into new/ (replacing an existing new/NAME, as
 * spool_write does), and fsyncs new/ once. Only when it returns FU_OK are
 * the messages in new/; on any failure every file of the batch is removed
 * from tmp/ and new/ (all or nothing) and the error is FU_TEMPFAIL (I/O) or
 * FU_PERMFAIL (bad name, from add). spool_batch_free removes what was
 * staged and not committed. A batch belongs to one thread.
 */
#define SPOOL_SYNCFS_MIN	8
struct spool_batch;
struct spool_batch *spool_batch_new(struct spool *);
int	spool_batch_add(struct spool_batch *, const char *name, const void *,
	    size_t, char **err);
int	spool_batch_commit(struct spool_batch *, char **err);
size_t	spool_batch_count(const struct spool_batch *);
void	spool_batch_free(struct spool_batch *);

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
 * spool_finish for n messages with one fsync per directory touched instead
 * of one or two per message. Every name is tried; the first error is
 * returned.
 */
int	spool_finish_many(struct spool *, const char *const *names,
	    const enum spool_fate *, size_t n, int keep_sent, char **err);

/*
 * Remove files from tmp/ left by a crash (they never became queued). Call at
 * start-up, under the single-instance lock. Returns count, -1 when tmp/
 * cannot be read.
 */
int	spool_clean_tmp(struct spool *);

/*
 * The names in new/ (not starting with '.'), collected first, then
 * cb(name, arg) for each: cb may move or remove them. -1 when new/ cannot
 * be read, else how many.
 */
int	spool_list_new(struct spool *, void (*cb)(const char *name, void *arg),
	    void *arg);

/* Remove sent/ files older than `age` seconds (counted from the sending). */
void	spool_expire_sent(struct spool *, long age);

const char *spool_dir(const struct spool *);

#endif
