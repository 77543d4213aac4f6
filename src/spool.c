/* spool: the queue/ directory: tmp/ → new/ → sent/ | failed/ | corrupt/, durable writes, free/ to reuse. */
#include "spool.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
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
	SUB_FREE,
	SUB_COUNT,
};

static const char *const sub_names[SUB_COUNT] = {
	"tmp", "new", "sent", "failed", "corrupt", "free",
};

/* Longest decimal number of a free file, NUL included. */
#define SLOT_NAME_MAX	24

/*
 * The subdirectories are held open: every operation is relative to a
 * directory descriptor (openat, renameat, fsync of the directory), so a
 * later chdir cannot redirect the spool. Paths are kept for messages.
 */
struct spool {
	char	*dir;
	char	*path[SUB_COUNT];
	int	 fd[SUB_COUNT];
	uid_t	 euid;		/* free files must be ours */

	/*
	 * The pool of free files (free/N, see spool.h). A stack of the
	 * numbers that can be rewritten now; held counts every file of
	 * free/ we know of: those, the ones a batch has taken and not yet
	 * renamed into new/, and the ones just retired whose old directory
	 * is not yet synced. Guarded by mu: render and delivery may run in
	 * different threads.
	 */
	pthread_mutex_t	 mu;
	unsigned long	*pool;
	size_t		 npool, poolcap;
	size_t		 held, pool_max;
	unsigned long	 next;		/* number for the next retired file */
	int		 unsettled;	/* found at open: sync before reuse */
	int		 no_pool;	/* free/ unusable here: remove, as before */

	/*
	 * The background worker (spool_finish_async): one thread, started
	 * on first use, guarded by bg_mu.
	 */
	pthread_mutex_t	 bg_mu;
	pthread_cond_t	 bg_cv;		/* work, or quit */
	pthread_cond_t	 bg_idle_cv;	/* the finish queue ran empty */
	pthread_t	 bg_thread;
	int		 bg_started, bg_quit;
	int		 bg_busy;	/* a finish job in hand */
	struct bg_job	*bg_head, **bg_tail;
};

/* Finishes handed to the background worker. */
struct bg_job {
	struct bg_job	*next;
	size_t		 n;
	int		 keep_sent;
	char		**names;
	enum spool_fate	*fates;
};

static void	bg_stop(struct spool *);

/* Numbers of files renamed into free/ whose old directory is not synced yet. */
struct slots {
	unsigned long	*v;
	size_t		 n, cap;
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

/* ---- the pool of free files ---- */

static void
slot_name(char *buf, unsigned long slot)
{
	snprintf(buf, SLOT_NAME_MAX, "%lu", slot);
}

static void
slots_add(struct slots *s, unsigned long slot)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = slot;
}

/* Called with mu held. */
static void
pool_push_locked(struct spool *sp, unsigned long slot)
{
	if (sp->npool == sp->poolcap) {
		sp->poolcap = sp->poolcap ? sp->poolcap * 2 : 256;
		sp->pool = xrealloc(sp->pool, sp->poolcap * sizeof(*sp->pool));
	}
	sp->pool[sp->npool++] = slot;
}

/* A file of free/ that can be rewritten now (it was taken and not used). */
static void
pool_push(struct spool *sp, unsigned long slot)
{
	pthread_mutex_lock(&sp->mu);
	pool_push_locked(sp, slot);
	pthread_mutex_unlock(&sp->mu);
}

/*
 * Files just renamed into free/: reusable once the directory they left is
 * synced (the caller has done it), never before. Rewriting one while a
 * crash could still bring back its old name in new/ would put another
 * recipient's message under that name.
 */
static void
pool_settle(struct spool *sp, struct slots *s)
{
	pthread_mutex_lock(&sp->mu);
	for (size_t i = 0; i < s->n; i++)
		pool_push_locked(sp, s->v[i]);
	pthread_mutex_unlock(&sp->mu);
	s->n = 0;
}

/* Takes a free file to rewrite: 1 and its number, or 0 when none. */
static int
pool_pop(struct spool *sp, unsigned long *slot)
{
	int ok = 0;

	pthread_mutex_lock(&sp->mu);
	/*
	 * Files found at open may have left new/ or sent/ just before a
	 * crash, the directory not synced since: sync once before reusing
	 * any (see pool_settle).
	 */
	if (sp->npool > 0 && sp->unsettled &&
	    fsync_dir(sp, SUB_NEW, NULL) == FU_OK &&
	    fsync_dir(sp, SUB_SENT, NULL) == FU_OK)
		sp->unsettled = 0;
	if (sp->npool > 0 && !sp->unsettled) {
		*slot = sp->pool[--sp->npool];
		ok = 1;
	}
	pthread_mutex_unlock(&sp->mu);
	return ok;
}

/*
 * Called with mu held. free/ is made by the first file retired, not at
 * open: a command another user runs (root: status, queue show) opens the
 * spool too, and a free/ it made would lock the daemon out.
 */
static int
pool_mkdir(struct spool *sp)
{
	const char *p = sp->path[SUB_FREE];

	if ((mkdir(p, 0700) == 0 || errno == EEXIST) &&
	    (sp->fd[SUB_FREE] = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW)) != -1)
		return 1;
	log_warn("spool: cannot make %s: finished messages are removed, not "
	    "reused", p);
	sp->no_pool = 1;
	return 0;
}

/* A number for one more file in free/, within the cap: 1, or 0 when full. */
static int
pool_reserve(struct spool *sp, unsigned long *slot)
{
	int ok = 0;

	pthread_mutex_lock(&sp->mu);
	if (!sp->no_pool && sp->held < sp->pool_max &&
	    (sp->fd[SUB_FREE] != -1 || pool_mkdir(sp))) {
		sp->held++;
		*slot = sp->next++;
		ok = 1;
	}
	pthread_mutex_unlock(&sp->mu);
	return ok;
}

/* One file fewer in free/ (renamed out, removed, or a reservation unused). */
static void
pool_forget(struct spool *sp)
{
	pthread_mutex_lock(&sp->mu);
	sp->held--;
	pthread_mutex_unlock(&sp->mu);
}

/*
 * Removes reusable free files until at most `keep` files are in free/
 * (those a batch holds cannot be removed). Returns how many went.
 */
static size_t
pool_trim(struct spool *sp, size_t keep)
{
	unsigned long *drop = NULL;
	char fname[SLOT_NAME_MAX];
	size_t n = 0;

	pthread_mutex_lock(&sp->mu);
	if (sp->held > keep && sp->npool > 0) {
		n = sp->held - keep < sp->npool ? sp->held - keep : sp->npool;
		drop = xmalloc(n * sizeof(*drop));
		sp->npool -= n;
		memcpy(drop, sp->pool + sp->npool, n * sizeof(*drop));
		sp->held -= n;
	}
	pthread_mutex_unlock(&sp->mu);
	for (size_t i = 0; i < n; i++) {
		slot_name(fname, drop[i]);
		if (unlinkat(sp->fd[SUB_FREE], fname, 0) == -1 &&
		    errno != ENOENT)
			log_warn("spool: unlink %s/%s", sp->path[SUB_FREE], fname);
	}
	free(drop);
	return n;
}

void
spool_set_pool_max(struct spool *sp, size_t max)
{
	pthread_mutex_lock(&sp->mu);
	sp->pool_max = max;
	pthread_mutex_unlock(&sp->mu);
	pool_trim(sp, max);
}

/*
 * A full disk: the spare files' blocks go back to the file system before
 * a message is refused for want of space.
 */
static size_t
pool_drain(struct spool *sp)
{
	size_t n = pool_trim(sp, 0);

	if (n > 0)
		log_info("spool: disk full: removed %zu spare file%s from %s",
		    n, n == 1 ? "" : "s", sp->path[SUB_FREE]);
	return n;
}

/*
 * At open: free/ as a previous run left it. Only names that are plain
 * numbers are ours; anything else there is left alone. A file that turns
 * out not to be usable (not a regular file, not ours) is dropped when it
 * is taken.
 */
static void
pool_scan(struct spool *sp)
{
	struct dirent *de;
	DIR *d;
	int fd;

	if ((fd = openat(sp->fd[SUB_FREE], ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1 || (d = fdopendir(fd)) == NULL) {
		log_warn("spool: open %s", sp->path[SUB_FREE]);
		if (fd != -1)
			close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		const char *p = de->d_name;
		unsigned long slot;
		char *end;

		if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
			continue;
		if (*p < '1' || *p > '9' || strlen(p) >= SLOT_NAME_MAX - 4)
			continue;
		errno = 0;
		slot = strtoul(p, &end, 10);
		if (*end != '\0' || errno != 0)
			continue;
		pool_push_locked(sp, slot);	/* not shared yet */
		sp->held++;
		if (slot >= sp->next)
			sp->next = slot + 1;
	}
	closedir(d);
	sp->unsettled = sp->npool > 0;
}

/* free/ as a previous run left it, if there is one (see pool_mkdir). */
static void
pool_open(struct spool *sp)
{
	const char *p = sp->path[SUB_FREE];
	struct stat st;

	if ((sp->fd[SUB_FREE] = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW)) == -1) {
		if (errno != ENOENT) {
			log_warn("spool: cannot open %s: finished messages are "
			    "removed, not reused", p);
			sp->no_pool = 1;
		}
		return;
	}
	if (fstat(sp->fd[SUB_FREE], &st) == 0 && (st.st_mode & 077) != 0)
		log_warnx("spool: %s is open to other users (mode %04o): "
		    "chmod 700 it", p, (unsigned)(st.st_mode & 07777));
	pool_scan(sp);
}

/*
 * Retires a finished file (new/NAME or sent/NAME): renamed into free/ when
 * the pool has room (its number added to `settle`, reusable once the
 * caller has synced `from`), else unlinked. Fails like unlinkat would.
 */
static int
retire(struct spool *sp, enum spool_sub from, const char *name,
    struct slots *settle)
{
	char fname[SLOT_NAME_MAX];
	unsigned long slot;
	int e;

	for (int tries = 0; tries < 8 && pool_reserve(sp, &slot); tries++) {
		slot_name(fname, slot);
		/* NOREPLACE: a file there that we do not know is not lost. */
		if (renameat2(sp->fd[from], name, sp->fd[SUB_FREE], fname,
		    RENAME_NOREPLACE) == 0) {
			slots_add(settle, slot);
			return 0;
		}
		e = errno;
		pool_forget(sp);
		if (e == EEXIST)
			continue;
		/* No RENAME_NOREPLACE here, or free/ is not ours to write. */
		if (e == EINVAL || e == ENOSYS || e == EACCES || e == EPERM ||
		    e == EROFS || e == EXDEV) {
			pthread_mutex_lock(&sp->mu);
			sp->no_pool = 1;
			pthread_mutex_unlock(&sp->mu);
			log_warnx("spool: rename into %s: %s: finished messages "
			    "are removed, not reused", sp->path[SUB_FREE],
			    strerror(e));
		}
		break;	/* ENOENT and the rest: unlinkat says it again */
	}
	return unlinkat(sp->fd[from], name, 0);
}

static int
pwrite_all(int fd, const char *p, size_t len)
{
	off_t off = 0;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Rewrites a free file with a message: pwrite from offset 0, then cut to
 * the new length (never O_TRUNC: on ext4 a truncate to zero forces block
 * allocation at close, auto_da_alloc), fsync'd when `sync`. Returns 1 with
 * *slotp (the file is free/N, out of the pool), 0 when no free file is
 * usable (create one instead), -1 on an I/O error (err set, errno kept;
 * the file is back in the pool).
 */
static int
pool_take(struct spool *sp, const char *name, const void *data, size_t len,
    int sync, unsigned long *slotp, char **err)
{
	char fname[SLOT_NAME_MAX];
	unsigned long slot;
	const char *what;
	struct stat st;
	int fd, e;

	while (pool_pop(sp, &slot)) {
		slot_name(fname, slot);
		fd = openat(sp->fd[SUB_FREE], fname, O_WRONLY | O_CLOEXEC |
		    O_NOFOLLOW);
		if (fd == -1) {
			/* Gone, or not a file we can use: out of the pool. */
			e = errno;
			if (e == ELOOP)
				(void)unlinkat(sp->fd[SUB_FREE], fname, 0);
			log_debug("spool: %s/%s: %s: not reused",
			    sp->path[SUB_FREE], fname, strerror(e));
			pool_forget(sp);
			continue;
		}
		/*
		 * A second link would make a rewrite show elsewhere (the
		 * journal of an odd file system replaying a rename half):
		 * never reuse such a file.
		 */
		if (fstat(fd, &st) == -1)
			st.st_mode = 0;
		if (!S_ISREG(st.st_mode) ||
		    st.st_nlink != 1 || st.st_uid != sp->euid ||
		    ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) == -1)) {
			if (S_ISREG(st.st_mode) && st.st_nlink > 1)
				(void)unlinkat(sp->fd[SUB_FREE], fname, 0);
			log_debug("spool: %s/%s: not a private file of ours: "
			    "not reused", sp->path[SUB_FREE], fname);
			close(fd);
			pool_forget(sp);
			continue;
		}
		what = "write";
		if (pwrite_all(fd, data, len) == -1)
			goto fail;
		what = "truncate";
		if (st.st_size > (off_t)len && ftruncate(fd, (off_t)len) == -1)
			goto fail;
		what = "fsync";
		if (sync && fsync(fd) == -1)
			goto fail;
		what = "close";
		e = close(fd);
		fd = -1;
		if (e == -1)
			goto fail;
		*slotp = slot;
		return 1;
fail:
		e = errno;
		{
			char *path = xasprintf("%s/%s (for %s)",
			    sp->path[SUB_FREE], fname, name);

			io_err(err, sp, what, path, e);
			free(path);
		}
		if (fd != -1)
			close(fd);
		pool_push(sp, slot);
		errno = e;
		return -1;
	}
	return 0;
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
	sp->euid = geteuid();
	sp->pool_max = SPOOL_POOL_MAX;
	sp->next = 1;
	pthread_mutex_init(&sp->mu, NULL);
	pthread_mutex_init(&sp->bg_mu, NULL);
	pthread_cond_init(&sp->bg_cv, NULL);
	pthread_cond_init(&sp->bg_idle_cv, NULL);
	sp->bg_tail = &sp->bg_head;
	for (int i = 0; i < SUB_COUNT; i++) {
		sp->fd[i] = -1;
		sp->path[i] = xasprintf("%s/%s", dir, sub_names[i]);
	}
	for (int i = 0; i < SUB_FREE; i++)
		if ((rc = open_sub(sp, (enum spool_sub)i, err)) != FU_OK)
			goto fail;
	if ((rc = probe(sp, err)) != FU_OK)
		goto fail;
	pool_open(sp);
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
	bg_stop(sp);
	for (int i = 0; i < SUB_COUNT; i++) {
		if (sp->fd[i] != -1)
			close(sp->fd[i]);
		free(sp->path[i]);
	}
	free(sp->dir);
	free(sp->pool);
	pthread_cond_destroy(&sp->bg_idle_cv);
	pthread_cond_destroy(&sp->bg_cv);
	pthread_mutex_destroy(&sp->bg_mu);
	pthread_mutex_destroy(&sp->mu);
	free(sp);
}

const char *
spool_dir(const struct spool *sp)
{
	return sp->dir;
}

/*
 * A message written and not yet in new/: either a free file rewritten in
 * place (pooled: free/SLOT) or tmp/NAME.
 */
struct staged {
	char		*name;
	unsigned long	 slot;
	int		 pooled;
};

/* Where a staged file is until its rename into new/. */
static enum spool_sub
staged_dir(const struct staged *s)
{
	return s->pooled ? SUB_FREE : SUB_TMP;
}

static const char *
staged_name(const struct staged *s, char *fname)
{
	if (!s->pooled)
		return s->name;
	slot_name(fname, s->slot);
	return fname;
}

static void
exists_err(char **err, const struct spool *sp, const char *name)
{
	set_err(err, "spool: %s/%s already exists: another writer, or a crash "
	    "(removed at the next start)", sp->path[SUB_TMP], name);
}

/*
 * Writes a message that is not yet in new/ (fsync'd when `sync`): into a
 * free file when the pool has one, else into tmp/NAME, created O_EXCL
 * 0600. Either way an existing tmp/NAME (another writer, or a crash) is
 * left alone and the call fails with FU_TEMPFAIL. On failure nothing is
 * left behind (a free file goes back to the pool); on a full disk the
 * pool is emptied and the write tried once more.
 */
static int
stage(struct spool *sp, const char *name, const void *data, size_t len,
    int sync, struct staged *s, char **err)
{
	const char *what;
	struct stat st;
	int e, r, retried = 0;
	char *tpath;

	s->name = NULL;
	s->pooled = 0;
again:
	if ((r = pool_take(sp, name, data, len, sync, &s->slot, err)) == 1) {
		/* The price of keeping O_EXCL's promise: one lookup. */
		if (fstatat(sp->fd[SUB_TMP], name, &st, AT_SYMLINK_NOFOLLOW) ==
		    0) {
			pool_push(sp, s->slot);
			exists_err(err, sp, name);
			return FU_TEMPFAIL;
		}
		s->pooled = 1;
		s->name = xstrdup(name);
		return FU_OK;
	}
	if (r == -1) {
		e = errno;
		goto fail;
	}
	tpath = xasprintf("%s/%s", sp->path[SUB_TMP], name);
	/* O_EXCL, 0600; removed again on any failure. */
	if (util_write_new(sp->fd[SUB_TMP], name, data, len, 0600, sync,
	    &what) == -1) {
		e = errno;
		if (e == EEXIST && strcmp(what, "create") == 0) {
			exists_err(err, sp, name);
			free(tpath);
			return FU_TEMPFAIL;
		}
		io_err(err, sp, what, tpath, e);
		free(tpath);
		goto fail;
	}
	free(tpath);
	s->name = xstrdup(name);
	return FU_OK;
fail:
	if ((e == ENOSPC || e == EDQUOT) && !retried && pool_drain(sp) > 0) {
		retried = 1;
		if (err != NULL) {
			free(*err);
			*err = NULL;
		}
		goto again;
	}
	return FU_TEMPFAIL;
}

/* Gives up a staged file: a free file back to the pool, tmp/NAME removed. */
static void
unstage(struct spool *sp, const struct staged *s)
{
	if (s->pooled)
		pool_push(sp, s->slot);
	else if (unlinkat(sp->fd[SUB_TMP], s->name, 0) == -1 &&
	    errno != ENOENT)
		log_warn("spool: unlink %s/%s", sp->path[SUB_TMP], s->name);
}

/* Renames a staged file to new/NAME, replacing what is there. */
static int
rename_in(struct spool *sp, const struct staged *s, char **err)
{
	char fname[SLOT_NAME_MAX];

	if (renameat(sp->fd[staged_dir(s)], staged_name(s, fname),
	    sp->fd[SUB_NEW], s->name) == -1) {
		char *npath = xasprintf("%s/%s", sp->path[SUB_NEW], s->name);

		io_err(err, sp, "rename to", npath, errno);
		free(npath);
		return FU_TEMPFAIL;
	}
	if (s->pooled)
		pool_forget(sp);
	return FU_OK;
}

/*
 * A collision in tmp/ (another writer, or a crash: spool_clean_tmp removes
 * those at start-up) leaves that file alone and fails with FU_TEMPFAIL.
 * new/NAME, on the other hand, is replaced: re-rendering a job after a
 * crash that happened between the rename and the job update must work.
 * All I/O errors are temporary: the message itself is fine, the disk is
 * not.
 */
int
spool_write(struct spool *sp, const char *name, const void *data, size_t len,
    char **err)
{
	struct staged s;
	int rc;

	if (!name_ok(name, err))
		return FU_PERMFAIL;
	if ((rc = stage(sp, name, data, len, 1, &s, err)) != FU_OK)
		return rc;
	rc = FU_TEMPFAIL;
	if (rename_in(sp, &s, err) != FU_OK) {
		unstage(sp, &s);
		goto done;
	}
	/* Until new/ is on disk, a crash could lose the entry: no success before. */
	if (fsync_dir(sp, SUB_NEW, err) != FU_OK) {
		if (unlinkat(sp->fd[SUB_NEW], name, 0) == -1)
			log_warn("spool: unlink %s/%s", sp->path[SUB_NEW], name);
		goto done;
	}
	rc = FU_OK;
done:
	free(s.name);
	return rc;
}

/*
 * Appends new/NAME to out; on failure out is left as it was. This runs
 * for every message sent: open, fstat, read straight into out (reserved
 * once, for the size fstat gave), close, and nothing else. A spool file
 * never changes once in new/, so reading stops at that size; a file cut
 * shorter meanwhile reads short, which the caller's size check catches.
 * The path for a message is built only on failure.
 */
int
spool_read(struct spool *sp, const char *name, struct buf *out, char **err)
{
	size_t start = out->len, got = 0, size;
	const char *what = "open";
	char *path = NULL;
	struct stat st;
	int fd, rc = FU_TEMPFAIL, e;

	if (!name_ok(name, err))
		return FU_PERMFAIL;
	fd = openat(sp->fd[SUB_NEW], name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1) {
		e = errno;
		path = xasprintf("%s/%s", sp->path[SUB_NEW], name);
		if (e == ENOENT) {
			set_err(err, "spool: %s: no such message", path);
			rc = FU_PERMFAIL;
		} else if (e == ELOOP) {
			set_err(err, "spool: %s is a symbolic link: not ours",
			    path);
			rc = FU_PERMFAIL;
		} else
			io_err(err, sp, what, path, e);
		goto done;
	}
	what = "fstat";
	if (fstat(fd, &st) == -1)
		goto io;
	if (!S_ISREG(st.st_mode) || st.st_size > SPOOL_READ_MAX) {
		path = xasprintf("%s/%s", sp->path[SUB_NEW], name);
		if (!S_ISREG(st.st_mode))
			set_err(err, "spool: %s is not a regular file", path);
		else
			set_err(err, "spool: %s is larger than %ld MB: corrupt",
			    path, SPOOL_READ_MAX / (1024 * 1024));
		rc = FU_PERMFAIL;
		goto done;
	}
	size = (size_t)st.st_size;
	buf_reserve(out, size);
	what = "read";
	while (got < size) {
		ssize_t n = read(fd, out->data + start + got, size - got);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			goto io;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	out->len = start + got;
	out->data[out->len] = '\0';
	rc = FU_OK;
	goto done;
io:
	e = errno;
	path = xasprintf("%s/%s", sp->path[SUB_NEW], name);
	io_err(err, sp, what, path, e);
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

/* n in decimal at p (no NUL); how many bytes (at most 20). */
static size_t
put_u64(char *p, unsigned long long u)
{
	char tmp[20];
	size_t k = 0, len = 0;

	do
		tmp[k++] = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	while (k > 0)
		p[len++] = tmp[--k];
	return len;
}

void
spool_message_name(int64_t job_id, size_t len, char name[SPOOL_NAME_MAX])
{
	/* No printf: this runs for every message rendered. */
	size_t n = put_u64(name, (unsigned long long)(job_id > 0 ? job_id : 0));

	name[n++] = '.';
	n += put_u64(name + n, (unsigned long long)len);
	memcpy(name + n, ".eml", 5);
}

/* 1 unless the name records a size (JOBID.SIZE.eml) other than len. */
static int
size_matches(const char *name, size_t len)
{
	const char *p = strchr(name, '.');
	char *end;
	unsigned long long want;

	if (p == NULL || p[1] < '0' || p[1] > '9')
		return 1;	/* JOBID.eml: written before sizes were kept */
	want = strtoull(p + 1, &end, 10);
	if (strcmp(end, ".eml") != 0)
		return 1;
	return want == (unsigned long long)len;
}

int
spool_read_message(struct spool *sp, const char *name, struct buf *out,
    char **err)
{
	size_t start = out->len;
	int r;

	if ((r = spool_read(sp, name, out, err)) != FU_OK)
		return r;
	if (!size_matches(name, out->len - start)) {
		set_err(err, "%s: %zu bytes, not the size it was written with",
		    name, out->len - start);
		out->len = start;
		if (out->data != NULL)
			out->data[start] = '\0';
		return FU_PERMFAIL;
	}
	return FU_OK;
}

int64_t
spool_message_job(const char *name)
{
	size_t digits = strspn(name, "0123456789");
	char id[24];

	if (digits == 0 || digits > 18 || name[digits] != '.')
		return 0;
	memcpy(id, name, digits);
	id[digits] = '\0';
	return (int64_t)strtoll(id, NULL, 10);
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
 * because one followupd owns the spool (daemon's single-instance lock)
 * and, inside it, the two threads that finish messages (delivery's, the
 * background worker's) never hold the same name: names in new/ are unique.
 * The directories are noted in *dirty, for the caller to sync.
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
	*dirty |= 1u << dst | 1u << SUB_NEW;
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

/*
 * The directories touched go in *dirty and the files retired to free/ in
 * *settle: the caller syncs the former, then settles the latter.
 */
static int
finish_one(struct spool *sp, const char *name, enum spool_fate fate,
    int keep_sent, unsigned *dirty, struct slots *settle, char **err)
{
	if (!name_ok(name, err))
		return FU_PERMFAIL;
	switch (fate) {
	case SPOOL_SENT:
		if (keep_sent)
			return move_out(sp, name, SUB_SENT, dirty, err);
		if (retire(sp, SUB_NEW, name, settle) == -1) {
			char *path = xasprintf("%s/%s", sp->path[SUB_NEW], name);
			int rc = errno == ENOENT ? FU_PERMFAIL : FU_TEMPFAIL;

			if (errno == ENOENT)
				set_err(err, "spool: %s: no such message", path);
			else
				io_err(err, sp, "unlink", path, errno);
			free(path);
			return rc;
		}
		*dirty |= 1u << SUB_NEW;
		return FU_OK;
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
	return spool_finish_many(sp, &name, &fate, 1, keep_sent, err);
}

/*
 * A removal or move that a crash undoes is harmless (the job's state in
 * state.db is what counts, and a file back in new/ is never sent for a
 * finished job), so the directories are synced once for the lot. Files
 * retired to free/ become reusable only once new/ is synced: a crash can
 * then no longer bring them back under their old names.
 */
int
spool_finish_many(struct spool *sp, const char *const *names,
    const enum spool_fate *fates, size_t n, int keep_sent, char **err)
{
	struct slots settle = { NULL, 0, 0 };
	unsigned dirty = 0;
	int rc = FU_OK, r, settled = 1;

	for (size_t i = 0; i < n; i++)
		if ((r = finish_one(sp, names[i], fates[i], keep_sent, &dirty,
		    &settle, rc == FU_OK ? err : NULL)) != FU_OK && rc == FU_OK)
			rc = r;
	for (int d = 0; d < SUB_COUNT; d++)
		if ((dirty & (1u << d)) && (r = fsync_dir(sp, (enum spool_sub)d,
		    rc == FU_OK ? err : NULL)) != FU_OK) {
			if (d == SUB_NEW)
				settled = 0;	/* stay in free/, unused */
			if (rc == FU_OK)
				rc = r;
		}
	if (settled)
		pool_settle(sp, &settle);
	else
		/* Not reusable this run (new/ not synced): out of the count,
		 * so the cap stays; the next start-up finds them again. */
		for (size_t i = 0; i < settle.n; i++)
			pool_forget(sp);
	free(settle.v);
	return rc;
}

/* ---- the background worker ---- */

static void
bg_job_free(struct bg_job *j)
{
	for (size_t i = 0; i < j->n; i++)
		free(j->names[i]);
	free(j->names);
	free(j->fates);
	free(j);
}

static void *
bg_main(void *arg)
{
	struct spool *sp = arg;

	pthread_mutex_lock(&sp->bg_mu);
	for (;;) {
		struct bg_job *j;

		if ((j = sp->bg_head) != NULL) {
			char *e = NULL;

			if ((sp->bg_head = j->next) == NULL)
				sp->bg_tail = &sp->bg_head;
			sp->bg_busy = 1;
			pthread_mutex_unlock(&sp->bg_mu);
			if (spool_finish_many(sp, (const char *const *)j->names,
			    j->fates, j->n, j->keep_sent, &e) != FU_OK) {
				log_warnx("%s (left for the next start-up's "
				    "tidy-up)", e);
				free(e);
			}
			bg_job_free(j);
			pthread_mutex_lock(&sp->bg_mu);
			sp->bg_busy = 0;
			if (sp->bg_head == NULL)
				pthread_cond_broadcast(&sp->bg_idle_cv);
			continue;
		}
		if (sp->bg_quit)
			break;
		pthread_cond_wait(&sp->bg_cv, &sp->bg_mu);
	}
	pthread_mutex_unlock(&sp->bg_mu);
	return NULL;
}

/* Called with bg_mu held: 1 when the worker runs. */
static int
bg_start_locked(struct spool *sp)
{
	if (!sp->bg_started && pthread_create(&sp->bg_thread, NULL, bg_main,
	    sp) == 0)
		sp->bg_started = 1;
	return sp->bg_started;
}

/* Everything queued is finished; the worker ends. */
static void
bg_stop(struct spool *sp)
{
	pthread_mutex_lock(&sp->bg_mu);
	sp->bg_quit = 1;
	pthread_cond_broadcast(&sp->bg_cv);
	pthread_mutex_unlock(&sp->bg_mu);
	if (sp->bg_started)
		pthread_join(sp->bg_thread, NULL);
	sp->bg_started = 0;
}

void
spool_finish_async(struct spool *sp, const char *const *names,
    const enum spool_fate *fates, size_t n, int keep_sent)
{
	struct bg_job *j;

	if (n == 0)
		return;
	j = xcalloc(1, sizeof(*j));
	j->n = n;
	j->keep_sent = keep_sent;
	j->names = xcalloc(n, sizeof(*j->names));
	j->fates = xcalloc(n, sizeof(*j->fates));
	for (size_t i = 0; i < n; i++) {
		j->names[i] = xstrdup(names[i]);
		j->fates[i] = fates[i];
	}
	pthread_mutex_lock(&sp->bg_mu);
	if (sp->bg_quit || !bg_start_locked(sp)) {
		pthread_mutex_unlock(&sp->bg_mu);
		/* No worker: done here and now, as spool_finish_many. */
		if (spool_finish_many(sp, (const char *const *)j->names,
		    j->fates, j->n, j->keep_sent, NULL) != FU_OK)
			log_warnx("spool: finishing %zu message%s: not all "
			    "moved (left for the next start-up's tidy-up)", n,
			    n == 1 ? "" : "s");
		bg_job_free(j);
		return;
	}
	*sp->bg_tail = j;
	sp->bg_tail = &j->next;
	pthread_cond_signal(&sp->bg_cv);
	pthread_mutex_unlock(&sp->bg_mu);
}

void
spool_flush(struct spool *sp)
{
	pthread_mutex_lock(&sp->bg_mu);
	while (sp->bg_head != NULL || sp->bg_busy)
		pthread_cond_wait(&sp->bg_idle_cv, &sp->bg_mu);
	pthread_mutex_unlock(&sp->bg_mu);
}

/* ---- batched writes ---- */

struct spool_batch {
	struct spool	*sp;
	struct staged	*files;
	size_t		 n, cap;
	size_t		 renamed;	/* files[0..renamed) are in new/ */
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
		if (i >= b->renamed)
			unstage(sp, &b->files[i]);
		else if (unlinkat(sp->fd[SUB_NEW], b->files[i].name, 0) == -1 &&
		    errno != ENOENT)
			log_warn("spool: unlink %s/%s", sp->path[SUB_NEW],
			    b->files[i].name);
		free(b->files[i].name);
	}
	b->n = b->renamed = 0;
}

void
spool_batch_free(struct spool_batch *b)
{
	if (b == NULL)
		return;
	batch_discard(b);
	free(b->files);
	free(b);
}

int
spool_batch_add(struct spool_batch *b, const char *name, const void *data,
    size_t len, char **err)
{
	struct staged s;
	int rc;

	if (!name_ok(name, err))
		return FU_PERMFAIL;
	if ((rc = stage(b->sp, name, data, len, 0, &s, err)) != FU_OK)
		return rc;
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		b->files = xrealloc(b->files, b->cap * sizeof(*b->files));
	}
	b->files[b->n++] = s;
	return FU_OK;
}

/* fsync one staged file (reopened: writeback errors not yet seen by anyone
 * are reported to the next descriptor that asks, see errseq in the kernel). */
static int
sync_one(struct spool *sp, const struct staged *s, char **err)
{
	char fname[SLOT_NAME_MAX];
	const char *at = staged_name(s, fname);
	int fd = openat(sp->fd[staged_dir(s)], at, O_RDONLY | O_CLOEXEC |
	    O_NOFOLLOW), rc = FU_OK;

	if (fd == -1 || fsync(fd) == -1) {
		char *path = xasprintf("%s/%s", sp->path[staged_dir(s)], at);

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
 * (ENOSYS) or refused, we fall back to one fsync per file. Rewritten free
 * files are covered the same way: they are renamed into new/ only after.
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
		if (sync_one(sp, &b->files[i], err) != FU_OK)
			goto fail;
	for (; b->renamed < b->n; b->renamed++)
		if (rename_in(sp, &b->files[b->renamed], err) != FU_OK)
			goto fail;
	/* Until new/ is on disk, a crash could lose the entries. */
	if (fsync_dir(sp, SUB_NEW, err) != FU_OK)
		goto fail;
	for (size_t i = 0; i < b->n; i++)
		free(b->files[i].name);
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
 * is not after *older_than); leaves directories and the rest alone. With
 * `recycle`, a regular file is retired to free/ (see retire) instead.
 */
static int
remove_if(struct spool *sp, enum spool_sub sub, const char *name,
    const time_t *older_than, struct slots *recycle)
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
	if ((recycle != NULL && S_ISREG(st.st_mode) ? retire(sp, sub, name,
	    recycle) : unlinkat(sp->fd[sub], name, 0)) == -1) {
		log_warn("spool: unlink %s/%s", sp->path[sub], name);
		return 0;
	}
	return 1;
}

static int
clean_one(struct spool *sp, enum spool_sub sub, const char *name, void *arg)
{
	(void)arg;
	if (remove_if(sp, sub, name, NULL, NULL) != 1)
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

struct expiry {
	time_t		limit;
	struct slots	settle;
};

static int
expire_one(struct spool *sp, enum spool_sub sub, const char *name, void *arg)
{
	struct expiry *x = arg;

	return remove_if(sp, sub, name, &x->limit, &x->settle);
}

/*
 * Ages are measured against the real clock (not clock_now()): they compare
 * with file times, which the kernel sets from the real clock. A file's
 * mtime is the time it was moved to sent/. Expired files feed the pool of
 * free files, reusable once sent/ is synced.
 */
void
spool_expire_sent(struct spool *sp, long age)
{
	struct expiry x = { time(NULL) - (age > 0 ? (time_t)age : 0),
	    { NULL, 0, 0 } };
	int n;

	if ((n = each_entry(sp, SUB_SENT, expire_one, &x)) > 0) {
		if (fsync_dir(sp, SUB_SENT, NULL) == FU_OK)
			pool_settle(sp, &x.settle);
		log_debug("spool: expired %d message(s) from %s", n,
		    sp->path[SUB_SENT]);
	}
	free(x.settle.v);
}
