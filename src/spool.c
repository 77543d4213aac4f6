/* spool: the queue/ directory: tmp/ → new/ → sent/ | failed/ | corrupt/, durable writes. */
#include "spool.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A message larger than this is not one we wrote: treat it as corrupt. */
#define SPOOL_READ_MAX	(64L * 1024 * 1024)

enum spool_sub {
	SUB_TMP,
	SUB_NEW,
	SUB_SENT,
	SUB_FAILED,
	SUB_CORRUPT,
	SUB_COUNT,
};

static const char *const sub_names[SUB_COUNT] = {
	"tmp", "new", "sent", "failed", "corrupt",
};

/*
 * The subdirectories are held open: every operation is relative to a
 * directory descriptor (openat, renameat, fsync of the directory), so a
 * later chdir cannot redirect the spool. Paths are kept for messages.
 */
struct spool {
	char	*dir;
	char	*path[SUB_COUNT];
	int	 fd[SUB_COUNT];
};

/* ENOSPC and friends get a hint the operator can act on. */
static void
io_err(char **err, const struct spool *sp, const char *what, const char *path,
    int e)
{
	if (e == ENOSPC || e == EDQUOT)
		set_err(err, "spool: %s %s: %s: disk full? free space in %s",
		    what, path, strerror(e), sp->dir);
	else if (e == EIO)
		set_err(err, "spool: %s %s: %s: check the disk that holds %s",
		    what, path, strerror(e), sp->dir);
	else
		set_err(err, "spool: %s %s: %s", what, path, strerror(e));
}

/*
 * A message name is one plain file name: not empty, no '/', no leading '.'
 * (no ".", "..", nor hidden files), no control characters (names reach the
 * logs), at most NAME_MAX bytes.
 */
static int
name_ok(const char *name, char **err)
{
	size_t len = name ? strlen(name) : 0;

	if (len == 0) {
		set_err(err, "spool: empty message name");
		return 0;
	}
	if (len > NAME_MAX || name[0] == '.' || strchr(name, '/') != NULL) {
		set_err(err, "spool: bad message name '%.64s': a plain file "
		    "name without '/' or a leading '.'", name);
		return 0;
	}
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f) {
			set_err(err, "spool: bad message name: control character "
			    "0x%02x", *p);
			return 0;
		}
	return 1;
}

static int
fsync_dir(struct spool *sp, enum spool_sub sub, char **err)
{
	if (fsync(sp->fd[sub]) == -1) {
		if (errno == EINVAL)	/* a file system without directory fsync */
			return FU_OK;
		io_err(err, sp, "fsync", sp->path[sub], errno);
		return FU_TEMPFAIL;
	}
	return FU_OK;
}

static int
open_sub(struct spool *sp, enum spool_sub sub, char **err)
{
	const char *p = sp->path[sub];
	struct stat st;

	if (mkdir(p, 0700) == -1 && errno != EEXIST) {
		set_err(err, "spool: cannot create %s: %s: create it (mode 0700) "
		    "or set [queue] dir", p, strerror(errno));
		return FU_PERMFAIL;
	}
	if ((sp->fd[sub] = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		set_err(err, "spool: cannot open %s: %s: it must be a directory "
		    "the daemon's user can write", p, strerror(errno));
		return FU_PERMFAIL;
	}
	if (fstat(sp->fd[sub], &st) == 0 && (st.st_mode & 077) != 0)
		log_warnx("spool: %s is open to other users (mode %04o): "
		    "chmod 700 it", p, (unsigned)(st.st_mode & 07777));
	return FU_OK;
}

/*
 * Create and remove a file in tmp/: bad permissions, a read-only mount or a
 * full disk show up at start-up, not at the first message.
 */
static int
probe(struct spool *sp, char **err)
{
	char name[64];
	int fd, e;

	/* A leading '.' cannot collide with a message name. */
	snprintf(name, sizeof(name), ".probe-%ld", (long)getpid());
	fd = openat(sp->fd[SUB_TMP], name, O_CREAT | O_TRUNC | O_WRONLY |
	    O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1) {
		e = errno;
		if (e == ENOSPC || e == EDQUOT || e == EIO) {
			io_err(err, sp, "create in", sp->path[SUB_TMP], e);
			return FU_TEMPFAIL;
		}
		set_err(err, "spool: cannot write in %s: %s: %s or set [queue] "
		    "dir", sp->path[SUB_TMP], strerror(e), e == EROFS ?
		    "remount the file system read-write" :
		    "give the daemon's user write access");
		return FU_PERMFAIL;
	}
	close(fd);
	unlinkat(sp->fd[SUB_TMP], name, 0);
	return FU_OK;
}

int
spool_open(const char *dir, struct spool **out, char **err)
{
	struct spool *sp;
	struct stat st;
	int rc;

	*out = NULL;
	if (dir == NULL || *dir == '\0') {
		set_err(err, "spool: no queue directory: set [queue] dir");
		return FU_PERMFAIL;
	}
	/* Only the last component is created: a typo should not build a tree. */
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		set_err(err, "spool: cannot create %s: %s: create it (mode 0700) "
		    "or set [queue] dir", dir, strerror(errno));
		return FU_PERMFAIL;
	}
	if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		set_err(err, "spool: %s is not a directory: remove it or set "
		    "[queue] dir", dir);
		return FU_PERMFAIL;
	}
	sp = xcalloc(1, sizeof(*sp));
	sp->dir = xstrdup(dir);
	for (int i = 0; i < SUB_COUNT; i++) {
		sp->fd[i] = -1;
		sp->path[i] = xasprintf("%s/%s", dir, sub_names[i]);
	}
	for (int i = 0; i < SUB_COUNT; i++)
		if ((rc = open_sub(sp, (enum spool_sub)i, err)) != FU_OK)
			goto fail;
	if ((rc = probe(sp, err)) != FU_OK)
		goto fail;
	*out = sp;
	return FU_OK;
fail:
	spool_close(sp);
	return rc;
}

void
spool_close(struct spool *sp)
{
	if (sp == NULL)
		return;
	for (int i = 0; i < SUB_COUNT; i++) {
		if (sp->fd[i] != -1)
			close(sp->fd[i]);
		free(sp->path[i]);
	}
	free(sp->dir);
	free(sp);
}

const char *
spool_dir(const struct spool *sp)
{
	return sp->dir;
}

static int
write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0) {	/* should not happen for a regular file */
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * tmp/NAME is created with O_EXCL: an existing one belongs to another writer
 * or to a crash (spool_clean_tmp removes those at start-up), so it is left
 * alone and the call fails with FU_TEMPFAIL. new/NAME, on the other hand, is
 * replaced: re-rendering a job after a crash that happened between the
 * rename and the job update must work. All I/O errors are temporary: the
 * message itself is fine, the disk is not.
 */
int
spool_write(struct spool *sp, const char *name, const void *data, size_t len,
    char **err)
{
	char *tpath = NULL, *npath = NULL;
	int fd = -1, in_tmp = 0, in_new = 0, rc = FU_TEMPFAIL, e;

	if (!name_ok(name, err))
		return FU_PERMFAIL;
	tpath = xasprintf("%s/%s", sp->path[SUB_TMP], name);
	npath = xasprintf("%s/%s", sp->path[SUB_NEW], name);

	fd = openat(sp->fd[SUB_TMP], name, O_CREAT | O_EXCL | O_WRONLY |
	    O_CLOEXEC, 0600);
	if (fd == -1) {
		e = errno;
		if (e == EEXIST)
			set_err(err, "spool: %s already exists: another writer, "
			    "or a crash (removed at the next start)", tpath);
		else
			io_err(err, sp, "create", tpath, e);
		goto done;
	}
	in_tmp = 1;
	if (write_all(fd, data, len) == -1) {
		io_err(err, sp, "write", tpath, errno);
		goto done;
	}
	if (fsync(fd) == -1) {
		io_err(err, sp, "fsync", tpath, errno);
		goto done;
	}
	e = close(fd);
	fd = -1;
	if (e == -1) {	/* NFS reports deferred write errors here */
		io_err(err, sp, "close", tpath, errno);
		goto done;
	}
	if (renameat(sp->fd[SUB_TMP], name, sp->fd[SUB_NEW], name) == -1) {
		io_err(err, sp, "rename to", npath, errno);
		goto done;
	}
	in_tmp = 0;
	in_new = 1;
	/* Until new/ is on disk, a crash could lose the entry: no success before. */
	if (fsync_dir(sp, SUB_NEW, err) != FU_OK)
		goto done;
	in_new = 0;
	rc = FU_OK;
done:
	if (fd != -1)
		close(fd);
	if (in_tmp && unlinkat(sp->fd[SUB_TMP], name, 0) == -1)
		log_warn("spool: unlink %s", tpath);
	if (in_new && unlinkat(sp->fd[SUB_NEW], name, 0) == -1)
		log_warn("spool: unlink %s", npath);
	free(tpath);
	free(npath);
	return rc;
}

/* Appends new/NAME to out; on failure out is left as it was. */
int
spool_read(struct spool *sp, const char *name, struct buf *out, char **err)
{
	size_t start = out->len;
	struct stat st;
	char chunk[65536];
	char *path;
	int fd, rc = FU_TEMPFAIL;

	if (!name_ok(name, err))
		return FU_PERMFAIL;
	path = xasprintf("%s/%s", sp->path[SUB_NEW], name);
	fd = openat(sp->fd[SUB_NEW], name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1) {
		int e = errno;

		if (e == ENOENT) {
			set_err(err, "spool: %s: no such message", path);
			rc = FU_PERMFAIL;
		} else if (e == ELOOP) {
			set_err(err, "spool: %s is a symbolic link: not ours",
			    path);
			rc = FU_PERMFAIL;
		} else
			io_err(err, sp, "open", path, e);
		goto done;
	}
	if (fstat(fd, &st) == -1) {
		io_err(err, sp, "fstat", path, errno);
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		set_err(err, "spool: %s is not a regular file", path);
		rc = FU_PERMFAIL;
		goto done;
	}
	if (st.st_size > SPOOL_READ_MAX) {
		set_err(err, "spool: %s is larger than %ld MB: corrupt", path,
		    SPOOL_READ_MAX / (1024 * 1024));
		rc = FU_PERMFAIL;
		goto done;
	}
	buf_reserve(out, (size_t)st.st_size);
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			io_err(err, sp, "read", path, errno);
			goto done;
		}
		if (n == 0)
			break;
		/* The file may grow after fstat: the limit holds anyway. */
		if (out->len - start + (size_t)n > (size_t)SPOOL_READ_MAX) {
			set_err(err, "spool: %s is larger than %ld MB: corrupt",
			    path, SPOOL_READ_MAX / (1024 * 1024));
			rc = FU_PERMFAIL;
			goto done;
		}
		buf_append(out, chunk, (size_t)n);
	}
	rc = FU_OK;
done:
	if (fd != -1)
		close(fd);
	if (rc != FU_OK && out->data != NULL) {
		out->len = start;
		out->data[start] = '\0';
	}
	free(path);
	return rc;
}

int
spool_exists(struct spool *sp, const char *name)
{
	struct stat st;

	if (!name_ok(name, NULL))
		return 0;
	return fstatat(sp->fd[SUB_NEW], name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode);
}

/*
 * Moves never replace a file in failed/, corrupt/ or sent/ (corrupt files
 * are evidence and never deleted): on a name clash the file becomes
 * NAME.1, NAME.2, ... The check-then-rename is not atomic, which is fine
 * because one followupd owns the spool (daemon's single-instance lock).
 */
static int
move_out(struct spool *sp, const char *name, enum spool_sub dst,
    unsigned *dirty, char **err)
{
	char *dname = xstrdup(name), *spath = NULL, *dpath = NULL;
	struct stat st;
	int rc = FU_TEMPFAIL;

	for (int i = 1; fstatat(sp->fd[dst], dname, &st, AT_SYMLINK_NOFOLLOW) == 0;
	    i++) {
		free(dname);
		dname = xasprintf("%s.%d", name, i);
	}
	spath = xasprintf("%s/%s", sp->path[SUB_NEW], name);
	dpath = xasprintf("%s/%s", sp->path[dst], dname);
	if (renameat(sp->fd[SUB_NEW], name, sp->fd[dst], dname) == -1) {
		if (errno == ENOENT) {
			set_err(err, "spool: %s: no such message", spath);
			rc = FU_PERMFAIL;
		} else
			io_err(err, sp, "rename to", dpath, errno);
		goto done;
	}
	/* sent/ expiry counts from the sending, not from the rendering. */
	if (dst == SUB_SENT && utimensat(sp->fd[dst], dname, NULL,
	    AT_SYMLINK_NOFOLLOW) == -1)
		log_warn("spool: touch %s", dpath);
	if (dirty != NULL)	/* spool_finish_many syncs once at the end */
		*dirty |= 1u << dst | 1u << SUB_NEW;
	else if (fsync_dir(sp, dst, err) != FU_OK ||
	    fsync_dir(sp, SUB_NEW, err) != FU_OK)
		goto done;
	if (strcmp(dname, name) != 0)
		log_info("spool: %s/%s existed; stored as %s", sp->path[dst],
		    name, dname);
	rc = FU_OK;
done:
	free(dname);
	free(spath);
	free(dpath);
	return rc;
}

/* dirty NULL: sync the directories now; else note them for the caller. */
static int
finish_one(struct spool *sp, const char *name, enum spool_fate fate,
    int keep_sent, unsigned *dirty, char **err)
{
	if (!name_ok(name, err))
		return FU_PERMFAIL;
	switch (fate) {
	case SPOOL_SENT:
		if (keep_sent)
			return move_out(sp, name, SUB_SENT, dirty, err);
		if (unlinkat(sp->fd[SUB_NEW], name, 0) == -1) {
			char *path = xasprintf("%s/%s", sp->path[SUB_NEW], name);
			int rc = errno == ENOENT ? FU_PERMFAIL : FU_TEMPFAIL;

			if (errno == ENOENT)
				set_err(err, "spool: %s: no such message", path);
			else
				io_err(err, sp, "unlink", path, errno);
			free(path);
			return rc;
		}
		if (dirty != NULL) {
			*dirty |= 1u << SUB_NEW;
			return FU_OK;
		}
		return fsync_dir(sp, SUB_NEW, err);
	case SPOOL_FAILED:
		return move_out(sp, name, SUB_FAILED, dirty, err);
	case SPOOL_CORRUPT:
		return move_out(sp, name, SUB_CORRUPT, dirty, err);
	}
	set_err(err, "spool: bad fate %d", (int)fate);
	return FU_PERMFAIL;
}

int
spool_finish(struct spool *sp, const char *name, enum spool_fate fate,
    int keep_sent, char **err)
{
	return finish_one(sp, name, fate, keep_sent, NULL, err);
}

/*
 * A removal or move that a crash undoes is harmless (the job's state in
 * state.db is what counts, and a file back in new/ is never sent for a
 * finished job), so the directories are synced once for the lot.
 */
int
spool_finish_many(struct spool *sp, const char *const *names,
    const enum spool_fate *fates, size_t n, int keep_sent, char **err)
{
	unsigned dirty = 0;
	int rc = FU_OK, r;

	for (size_t i = 0; i < n; i++)
		if ((r = finish_one(sp, names[i], fates[i], keep_sent, &dirty,
		    rc == FU_OK ? err : NULL)) != FU_OK && rc == FU_OK)
			rc = r;
	for (int d = 0; d < SUB_COUNT; d++)
		if ((dirty & (1u << d)) && (r = fsync_dir(sp, (enum spool_sub)d,
		    rc == FU_OK ? err : NULL)) != FU_OK && rc == FU_OK)
			rc = r;
	return rc;
}

/* ---- batched writes ---- */

struct spool_batch {
	struct spool	*sp;
	char		**names;
	size_t		 n, cap;
	size_t		 renamed;	/* names[0..renamed) are in new/ */
};

struct spool_batch *
spool_batch_new(struct spool *sp)
{
	struct spool_batch *b = xcalloc(1, sizeof(*b));

	b->sp = sp;
	return b;
}

size_t
spool_batch_count(const struct spool_batch *b)
{
	return b->n;
}

/* Remove every file of the batch from new/ and tmp/; the batch is empty. */
static void
batch_discard(struct spool_batch *b)
{
	struct spool *sp = b->sp;

	for (size_t i = 0; i < b->n; i++) {
		enum spool_sub sub = i < b->renamed ? SUB_NEW : SUB_TMP;

		if (unlinkat(sp->fd[sub], b->names[i], 0) == -1 &&
		    errno != ENOENT)
			log_warn("spool: unlink %s/%s", sp->path[sub],
			    b->names[i]);
		free(b->names[i]);
	}
	b->n = b->renamed = 0;
}

void
spool_batch_free(struct spool_batch *b)
{
	if (b == NULL)
		return;
	batch_discard(b);
	free(b->names);
	free(b);
}

int
spool_batch_add(struct spool_batch *b, const char *name, const void *data,
    size_t len, char **err)
{
	struct spool *sp = b->sp;
	char *tpath;
	int fd, e;

	if (!name_ok(name, err))
		return FU_PERMFAIL;
	tpath = xasprintf("%s/%s", sp->path[SUB_TMP], name);
	fd = openat(sp->fd[SUB_TMP], name, O_CREAT | O_EXCL | O_WRONLY |
	    O_CLOEXEC, 0600);
	if (fd == -1) {
		if (errno == EEXIST)
			set_err(err, "spool: %s already exists: another writer, "
			    "or a crash (removed at the next start)", tpath);
		else
			io_err(err, sp, "create", tpath, errno);
		free(tpath);
		return FU_TEMPFAIL;
	}
	if (write_all(fd, data, len) == -1) {
		io_err(err, sp, "write", tpath, errno);
		close(fd);
		goto fail;
	}
	e = close(fd);
	if (e == -1) {
		io_err(err, sp, "close", tpath, errno);
		goto fail;
	}
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		b->names = xrealloc(b->names, b->cap * sizeof(*b->names));
	}
	b->names[b->n++] = xstrdup(name);
	free(tpath);
	return FU_OK;
fail:
	if (unlinkat(sp->fd[SUB_TMP], name, 0) == -1)
		log_warn("spool: unlink %s", tpath);
	free(tpath);
	return FU_TEMPFAIL;
}

/* fsync one staged file (reopened: writeback errors not yet seen by anyone
 * are reported to the next descriptor that asks, see errseq in the kernel). */
static int
sync_one(struct spool *sp, const char *name, char **err)
{
	int fd = openat(sp->fd[SUB_TMP], name, O_RDONLY | O_CLOEXEC |
	    O_NOFOLLOW), rc = FU_OK;

	if (fd == -1 || fsync(fd) == -1) {
		char *path = xasprintf("%s/%s", sp->path[SUB_TMP], name);

		io_err(err, sp, fd == -1 ? "open" : "fsync", path, errno);
		free(path);
		rc = FU_TEMPFAIL;
	}
	if (fd != -1)
		close(fd);
	return rc;
}

/*
 * Durability of a burst: fsync per file costs a device flush each (about
 * 4,000 a second here); syncfs() writes back the whole file system and
 * flushes once, and since Linux 5.8 reports any writeback error on it
 * since the spool was opened (so a failure elsewhere on the file system
 * fails the batch too: safe, if pessimistic). Where syncfs is missing
 * (ENOSYS) or refused, we fall back to one fsync per file.
 */
int
spool_batch_commit(struct spool_batch *b, char **err)
{
	struct spool *sp = b->sp;
	int synced = 0;

	if (b->n == 0)
		return FU_OK;
	if (b->n >= SPOOL_SYNCFS_MIN) {
		if (syncfs(sp->fd[SUB_TMP]) == 0)
			synced = 1;
		else if (errno != ENOSYS && errno != EINVAL) {
			io_err(err, sp, "syncfs", sp->path[SUB_TMP], errno);
			goto fail;
		}
	}
	for (size_t i = 0; !synced && i < b->n; i++)
		if (sync_one(sp, b->names[i], err) != FU_OK)
			goto fail;
	for (; b->renamed < b->n; b->renamed++) {
		const char *name = b->names[b->renamed];

		if (renameat(sp->fd[SUB_TMP], name, sp->fd[SUB_NEW], name) ==
		    -1) {
			char *npath = xasprintf("%s/%s", sp->path[SUB_NEW],
			    name);

			io_err(err, sp, "rename to", npath, errno);
			free(npath);
			goto fail;
		}
	}
	/* Until new/ is on disk, a crash could lose the entries. */
	if (fsync_dir(sp, SUB_NEW, err) != FU_OK)
		goto fail;
	for (size_t i = 0; i < b->n; i++)
		free(b->names[i]);
	b->n = b->renamed = 0;
	return FU_OK;
fail:
	batch_discard(b);
	return FU_TEMPFAIL;
}

/*
 * Calls fn for each entry of a subdirectory other than "." and "..".
 * Returns the number of entries for which fn returned 1, -1 when the
 * directory cannot be read.
 */
static int
each_entry(struct spool *sp, enum spool_sub sub,
    int (*fn)(struct spool *, enum spool_sub, const char *, void *), void *arg)
{
	struct dirent *de;
	DIR *d;
	int fd, n = 0;

	/* A fresh descriptor: readdir's position must not be shared. */
	if ((fd = openat(sp->fd[sub], ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1 || (d = fdopendir(fd)) == NULL) {
		log_warn("spool: open %s", sp->path[sub]);
		if (fd != -1)
			close(fd);
		return -1;
	}
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fn(sp, sub, de->d_name, arg) == 1)
			n++;
		errno = 0;
	}
	if (errno != 0)
		log_warn("spool: read %s", sp->path[sub]);
	closedir(d);
	return n;
}

/*
 * Removes one regular file or symlink (when older_than is NULL or its mtime
 * is not after *older_than); leaves directories and the rest alone.
 */
static int
remove_if(struct spool *sp, enum spool_sub sub, const char *name,
    const time_t *older_than)
{
	struct stat st;

	if (fstatat(sp->fd[sub], name, &st, AT_SYMLINK_NOFOLLOW) == -1) {
		if (errno != ENOENT)
			log_warn("spool: stat %s/%s", sp->path[sub], name);
		return 0;
	}
	if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
		log_warnx("spool: %s/%s is not a file; left alone",
		    sp->path[sub], name);
		return 0;
	}
	if (older_than != NULL && st.st_mtime > *older_than)
		return 0;
	if (unlinkat(sp->fd[sub], name, 0) == -1) {
		log_warn("spool: unlink %s/%s", sp->path[sub], name);
		return 0;
	}
	return 1;
}

static int
clean_one(struct spool *sp, enum spool_sub sub, const char *name, void *arg)
{
	(void)arg;
	if (remove_if(sp, sub, name, NULL) != 1)
		return 0;
	log_debug("spool: removed %s/%s left by an interrupted write",
	    sp->path[sub], name);
	return 1;
}

/*
 * Everything in tmp/ is removed: this runs at start-up under the daemon's
 * single-instance lock, so no write can be in progress. Returns -1 when
 * tmp/ cannot be read.
 */
int
spool_clean_tmp(struct spool *sp)
{
	int n = each_entry(sp, SUB_TMP, clean_one, NULL);

	if (n > 0)
		(void)fsync_dir(sp, SUB_TMP, NULL);
	return n;
}

struct name_list {
	char	**names;
	size_t	  n;
};

static int
collect_one(struct spool *sp, enum spool_sub sub, const char *name, void *arg)
{
	struct name_list *l = arg;

	(void)sp;
	(void)sub;
	if (name[0] == '.')
		return 0;
	l->names = xrealloc(l->names, (l->n + 1) * sizeof(*l->names));
	l->names[l->n++] = xstrdup(name);
	return 1;
}

int
spool_list_new(struct spool *sp, void (*cb)(const char *, void *), void *arg)
{
	struct name_list l = { NULL, 0 };
	int n = each_entry(sp, SUB_NEW, collect_one, &l);

	for (size_t i = 0; i < l.n; i++) {
		cb(l.names[i], arg);
		free(l.names[i]);
	}
	free(l.names);
	return n;
}

static int
expire_one(struct spool *sp, enum spool_sub sub, const char *name, void *arg)
{
	return remove_if(sp, sub, name, arg);
}

/*
 * Ages are measured against the real clock (not clock_now()): they compare
 * with file times, which the kernel sets from the real clock. A file's
 * mtime is the time it was moved to sent/.
 */
void
spool_expire_sent(struct spool *sp, long age)
{
	time_t limit = time(NULL) - (age > 0 ? (time_t)age : 0);
	int n;

	if ((n = each_entry(sp, SUB_SENT, expire_one, &limit)) > 0) {
		(void)fsync_dir(sp, SUB_SENT, NULL);
		log_debug("spool: expired %d message(s) from %s", n,
		    sp->path[SUB_SENT]);
	}
}
