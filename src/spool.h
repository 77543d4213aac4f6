/* spool: the queue/ directory: tmp/ → new/ → sent/ | failed/ | corrupt/, durable writes, free/ to reuse. */
#ifndef FOLLOWUPD_SPOOL_H
#define FOLLOWUPD_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct spool;

/*
 * Create (0700) the directory and its subdirectories if missing (free/ is
 * made when the first file is retired: a command run by another user must
 * not make it), and note the free files a previous run left (see below).
 * The functions
 * below may be called from several threads on one spool (a batch belongs
 * to one thread).
 */
int	spool_open(const char *dir, struct spool **out, char **err);
void	spool_close(struct spool *);

/*
 * The pool of free files. On ext4, creating a file near inodes freed in
 * the last half minute costs ten times rewriting one in place, and an
 * unlink three times a rename; so a message that spool_finish would remove (SPOOL_SENT
 * without keep_sent), or spool_expire_sent would, is renamed to free/N
 * (N a number) instead, up to the pool's cap (beyond it, removed as
 * before), and spool_write and spool_batch_add rewrite such a file in
 * place (pwrite, ftruncate to the new length; 0600; never O_TRUNC) before
 * creating one in tmp/. free/ holds no message: nothing lists it as one,
 * spool_clean_tmp leaves it, and a restart keeps it. A free file is reused
 * only once the directory it left has been synced (a crash cannot bring
 * its old name back over new contents) and only when it is a regular
 * file of ours with one link. A full disk (ENOSPC, EDQUOT) empties the
 * pool and the write is tried once more. Lowering the cap removes the
 * surplus that is not in use; 0 turns recycling off.
 */
#define SPOOL_POOL_MAX	4096
void	spool_set_pool_max(struct spool *, size_t max);

/*
 * Durably store a message as new/NAME: O_CREAT|O_EXCL 0600 in tmp/ (or a
 * free file rewritten), write, fsync, rename into new/, fsync new/. On any
 * failure the temporary is removed (a free file goes back to the pool)
 * and nothing is in new/. ENOSPC, EIO → FU_TEMPFAIL. NAME must be a plain
 * file name (no '/', no leading '.'; else FU_PERMFAIL). An existing
 * tmp/NAME (another writer, a crash) is left alone: FU_TEMPFAIL. An
 * existing new/NAME is replaced (re-rendering after a crash).
 */
int	spool_write(struct spool *, const char *name, const void *, size_t,
	    char **err);

/*
 * Append new/NAME to out (unchanged on failure), as many bytes as its size
 * when opened (files in new/ never change). FU_PERMFAIL when missing, not
 * a regular file, or over 64 MB (corrupt); FU_TEMPFAIL on I/O errors.
 */
int	spool_read(struct spool *, const char *name, struct buf *out,
	    char **err);

/*
 * Message names. A job's message is new/JOBID.SIZE.eml: the size it was
 * written with is in its name, so a file cut short at a line end (which
 * still parses) is never sent half. spool_message_name writes that name
 * (at most SPOOL_NAME_MAX bytes with the NUL). spool_read_message is
 * spool_read plus that check: FU_PERMFAIL when the size differs (names
 * without a size, JOBID.eml from before sizes were kept, are not checked).
 * spool_message_job: the job id a message name starts with, 0 for other
 * names.
 */
#define SPOOL_NAME_MAX	48
void	spool_message_name(int64_t job_id, size_t len,
	    char name[SPOOL_NAME_MAX]);
int	spool_read_message(struct spool *, const char *name, struct buf *out,
	    char **err);
int64_t	spool_message_job(const char *name);

/*
 * Batched durable writes, for a burst of messages: the same guarantee as
 * spool_write for each file at a fraction of the flushes. spool_batch_add
 * writes tmp/NAME (O_CREAT|O_EXCL, 0600), or rewrites a free file that is
 * renamed to new/NAME at the commit, and closes it, unsynced;
 * spool_batch_commit makes every staged file durable (one syncfs(2) of the
 * spool's file system for SPOOL_SYNCFS_MIN files or more, else an fsync
 * per file), renames each into new/ (replacing an existing new/NAME, as
 * spool_write does), and fsyncs new/ once. Only when it returns FU_OK are
 * the messages in new/; on any failure every file of the batch is removed
 * from tmp/ and new/ (all or nothing) and the error is FU_TEMPFAIL (I/O) or
 * FU_PERMFAIL (bad name, from add). spool_batch_free removes what was
 * staged and not committed (free files go back to the pool). A crash
 * before the commit leaves tmp/ files (spool_clean_tmp) or free files,
 * never anything in new/. A batch belongs to one thread.
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
	SPOOL_SENT,	/* to sent/ when keep_sent, else removed (free/) */
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
 * spool_finish_many done by the spool's background thread (started on
 * first use), in order, so that the caller goes on at once; errors are
 * logged (a file left in new/ for a finished job is tidied at the next
 * start-up). Only for messages whose outcome is already committed: a crash
 * before the thread gets to them leaves them in new/, which start-up
 * handles. spool_flush waits until every finish handed over is done;
 * spool_close does too.
 */
void	spool_finish_async(struct spool *, const char *const *names,
	    const enum spool_fate *, size_t n, int keep_sent);
void	spool_flush(struct spool *);

/*
 * Remove files from tmp/ left by a crash (they never became queued). Call at
 * start-up, under the single-instance lock. free/ is not touched. Returns
 * count, -1 when tmp/ cannot be read.
 */
int	spool_clean_tmp(struct spool *);

/*
 * The names in new/ (not starting with '.'), collected first, then
 * cb(name, arg) for each: cb may move or remove them. -1 when new/ cannot
 * be read, else how many.
 */
int	spool_list_new(struct spool *, void (*cb)(const char *name, void *arg),
	    void *arg);

/*
 * Remove sent/ files older than `age` seconds (counted from the sending);
 * they go to the pool of free files while it has room.
 */
void	spool_expire_sent(struct spool *, long age);

const char *spool_dir(const struct spool *);

#endif
