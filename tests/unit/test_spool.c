/* test_spool: the queue directory: durable writes, names, fates, clean-up, the pool of free files, a full disk. */
#include "spool.h"
#include "tap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char root[] = "/tmp/test_spool.XXXXXX";

/* snprintf for paths; they are short here, so truncation is not a concern. */
static void pathf(char *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static void
pathf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Entries of DIR/SUB other than . and .. (-1 when unreadable). */
static int
count(const char *dir, const char *sub)
{
	char path[4096];
	struct dirent *de;
	DIR *d;
	int n = 0;

	pathf(path, sizeof(path), "%s/%s", dir, sub);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static int
exists(const char *dir, const char *sub, const char *name)
{
	char path[4096];
	struct stat st;

	pathf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	return lstat(path, &st) == 0;
}

/* The inode of DIR/SUB/NAME, 0 when missing. */
static ino_t
inode(const char *dir, const char *sub, const char *name)
{
	char path[4096];
	struct stat st;

	pathf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	return lstat(path, &st) == 0 ? st.st_ino : 0;
}

/* The name of the first entry of DIR/SUB into out ("" when none). */
static void
first_entry(const char *dir, const char *sub, char *out, size_t size)
{
	char path[4096];
	struct dirent *de;
	DIR *d;

	out[0] = '\0';
	pathf(path, sizeof(path), "%s/%s", dir, sub);
	if ((d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			snprintf(out, size, "%s", de->d_name);
			break;
		}
	closedir(d);
}

/* 1 when DIR/SUB/NAME holds exactly data[0..len), mode 0600, one link. */
static int
holds(const char *dir, const char *sub, const char *name, const char *data,
    size_t len)
{
	char path[4096];
	struct buf b = { 0 };
	struct stat st;
	int ok;

	pathf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	ok = stat(path, &st) == 0 && (st.st_mode & 07777) == 0600 &&
	    st.st_nlink == 1 && (size_t)st.st_size == len &&
	    read_file(path, &b, NULL) == FU_OK && b.len == len &&
	    memcmp(b.data, data, len) == 0;
	buf_free(&b);
	return ok;
}

static void
put(const char *dir, const char *sub, const char *name, const char *text)
{
	char path[4096];
	FILE *f;

	pathf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	if ((f = fopen(path, "w")) == NULL) {
		tap_diag("cannot create %s: %s", path, strerror(errno));
		return;
	}
	fputs(text, f);
	fclose(f);
}

static void
age_file(const char *dir, const char *sub, const char *name, long seconds)
{
	char path[4096];
	struct timespec ts[2];

	pathf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	ts[0].tv_sec = ts[1].tv_sec = time(NULL) - seconds;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	utimensat(AT_FDCWD, path, ts, 0);
}

/* A name made printable for a TAP line. */
static const char *
vis(const char *s)
{
	static char out[1200];
	size_t o = 0;

	for (; *s && o < sizeof(out) - 5; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(out + o, sizeof(out) - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
}

static int
contains(const char *s, const char *sub)
{
	return s != NULL && strstr(s, sub) != NULL;
}

static void
test_open(void)
{
	static const char *const subs[] = { "tmp", "new", "sent", "failed", "corrupt" };
	char dir[4096], file[4096];
	struct spool *sp = NULL;
	char *err = NULL;
	struct stat st;
	int rc;

	pathf(dir, sizeof(dir), "%s/q", root);
	rc = spool_open(dir, &sp, &err);
	tap_ok(rc == FU_OK && sp != NULL, "spool_open creates %s (%s)", dir,
	    err ? err : "");
	if (sp == NULL)
		return;
	tap_str(spool_dir(sp), dir, "spool_dir");
	if (stat(dir, &st) == -1)
		st.st_mode = 0;
	tap_ok((st.st_mode & 07777) == 0700, "queue dir mode 0700 (%04o)",
	    (unsigned)(st.st_mode & 07777));
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		char p[4200];

		pathf(p, sizeof(p), "%s/%s", dir, subs[i]);
		tap_ok(stat(p, &st) == 0 && S_ISDIR(st.st_mode) &&
		    (st.st_mode & 07777) == 0700, "%s/ created with mode 0700",
		    subs[i]);
	}
	tap_ok(count(dir, "tmp") == 0, "the write probe left nothing in tmp/");
	tap_ok(!exists(dir, ".", "free"), "free/ is not made at open");
	spool_close(sp);

	/* Opening an existing spool is fine. */
	sp = NULL;
	tap_ok(spool_open(dir, &sp, &err) == FU_OK, "spool_open on an existing spool");
	spool_close(sp);

	/* The parent is not created. */
	pathf(file, sizeof(file), "%s/missing/q", root);
	sp = NULL;
	rc = spool_open(file, &sp, &err);
	tap_ok(rc == FU_PERMFAIL && sp == NULL && contains(err, file) &&
	    contains(err, "set [queue] dir"), "missing parent: %s", err);

	/* A file where the directory should be. */
	pathf(file, sizeof(file), "%s/plainfile", root);
	fclose(fopen(file, "w"));
	rc = spool_open(file, &sp, &err);
	tap_ok(rc == FU_PERMFAIL && contains(err, file) &&
	    contains(err, "not a directory"), "a file, not a directory: %s", err);

	rc = spool_open("", &sp, &err);
	tap_ok(rc == FU_PERMFAIL, "empty directory name: %s", err);
	free(err);
}

static void
test_write_read(struct spool *sp, const char *dir)
{
	static const char bin[] = "From: a\r\n\r\nbody\0with NUL\xff\r\n";
	struct buf b = { 0 };
	char path[4096];
	char *err = NULL;
	struct stat st;
	int rc;

	rc = spool_write(sp, "m1.eml", bin, sizeof(bin) - 1, &err);
	tap_ok(rc == FU_OK, "write m1.eml (%s)", err ? err : "");
	tap_ok(exists(dir, "new", "m1.eml") && count(dir, "tmp") == 0,
	    "m1.eml is in new/, tmp/ is empty");
	pathf(path, sizeof(path), "%s/new/m1.eml", dir);
	if (stat(path, &st) == -1)
		st.st_mode = 0;
	tap_ok((st.st_mode & 07777) == 0600,
	    "new/m1.eml mode 0600 (%04o)", (unsigned)(st.st_mode & 07777));
	tap_ok(spool_exists(sp, "m1.eml") == 1, "spool_exists m1.eml");
	tap_ok(spool_exists(sp, "nope.eml") == 0, "spool_exists nope.eml is 0");

	rc = spool_read(sp, "m1.eml", &b, &err);
	tap_ok(rc == FU_OK && b.len == sizeof(bin) - 1 &&
	    memcmp(b.data, bin, b.len) == 0 && b.data[b.len] == '\0',
	    "read back byte for byte, NUL included (%zu bytes)", b.len);

	/* spool_read appends; a failure leaves the buffer as it was. */
	buf_reset(&b);
	buf_puts(&b, "keep");
	rc = spool_read(sp, "nope.eml", &b, &err);
	tap_ok(rc == FU_PERMFAIL && contains(err, "no such message"),
	    "read a missing message: PERMFAIL (%s)", err);
	tap_str(buf_cstr(&b), "keep", "buffer untouched after a failed read");

	rc = spool_write(sp, "empty.eml", "", 0, &err);
	buf_reset(&b);
	tap_ok(rc == FU_OK && spool_read(sp, "empty.eml", &b, &err) == FU_OK &&
	    b.len == 0, "empty message round trip");

	/* new/NAME is replaced: re-rendering after a crash must work. */
	rc = spool_write(sp, "empty.eml", "second", 6, &err);
	buf_reset(&b);
	tap_ok(rc == FU_OK && spool_read(sp, "empty.eml", &b, &err) == FU_OK &&
	    strcmp(buf_cstr(&b), "second") == 0, "write replaces new/NAME");

	/* O_EXCL: somebody else's tmp/NAME is neither used nor removed. */
	put(dir, "tmp", "busy.eml", "other writer");
	rc = spool_write(sp, "busy.eml", "mine", 4, &err);
	tap_ok(rc == FU_TEMPFAIL && contains(err, "already exists"),
	    "tmp/NAME exists: TEMPFAIL (%s)", err);
	buf_reset(&b);
	pathf(path, sizeof(path), "%s/tmp/busy.eml", dir);
	tap_ok(read_file(path, &b, NULL) == FU_OK &&
	    strcmp(buf_cstr(&b), "other writer") == 0,
	    "the other writer's tmp/NAME is intact");
	tap_ok(!exists(dir, "new", "busy.eml"), "nothing in new/ after the collision");
	unlink(path);

	/* Symlinks, directories and huge files in new/ are not messages. */
	pathf(path, sizeof(path), "%s/new/link.eml", dir);
	if (symlink("/etc/passwd", path) == 0) {
		rc = spool_read(sp, "link.eml", &b, &err);
		tap_ok(rc == FU_PERMFAIL, "read a symlink: PERMFAIL (%s)", err);
		tap_ok(spool_exists(sp, "link.eml") == 0, "a symlink does not exist as a message");
		unlink(path);
	}
	pathf(path, sizeof(path), "%s/new/dir.eml", dir);
	mkdir(path, 0700);
	rc = spool_read(sp, "dir.eml", &b, &err);
	tap_ok(rc == FU_PERMFAIL, "read a directory: PERMFAIL (%s)", err);
	rmdir(path);

	pathf(path, sizeof(path), "%s/new/huge.eml", dir);
	{
		int fd = open(path, O_CREAT | O_WRONLY, 0600);

		if (fd != -1) {
			/* Sparse: costs no disk. */
			if (ftruncate(fd, 64L * 1024 * 1024 + 1) == -1)
				tap_diag("ftruncate: %s", strerror(errno));
			close(fd);
		}
	}
	buf_reset(&b);
	rc = spool_read(sp, "huge.eml", &b, &err);
	tap_ok(rc == FU_PERMFAIL && contains(err, "64 MB") && b.len == 0,
	    "a file over 64 MB is corrupt: PERMFAIL (%s)", err);
	pathf(path, sizeof(path), "%s/new/limit.eml", dir);
	{
		int fd = open(path, O_CREAT | O_WRONLY, 0600);

		if (fd != -1) {
			if (ftruncate(fd, 64L * 1024 * 1024) == -1)
				tap_diag("ftruncate: %s", strerror(errno));
			close(fd);
		}
	}
	rc = spool_read(sp, "limit.eml", &b, &err);
	tap_ok(rc == FU_OK && b.len == 64L * 1024 * 1024,
	    "exactly 64 MB is read (%zu)", b.len);
	unlink(path);
	pathf(path, sizeof(path), "%s/new/huge.eml", dir);
	unlink(path);

	buf_free(&b);
	free(err);
}

static void
test_names(struct spool *sp, const char *dir)
{
	static const struct {
		const char	*name;
		int		 ok;
	} cases[] = {
		{ "20240301-0001.eml",	1 },
		{ "a..b",		1 },
		{ "x-y_z+1@host",	1 },
		{ "",			0 },
		{ ".",			0 },
		{ "..",			0 },
		{ ".hidden",		0 },
		{ "../escape",		0 },
		{ "a/b",		0 },
		{ "/etc/passwd",	0 },
		{ "trailing/",		0 },
		{ "line\nbreak",	0 },
		{ "tab\tname",		0 },
		{ "del\x7f",		0 },
	};
	char longname[300];
	char *err = NULL;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = spool_write(sp, cases[i].name, "x", 1, &err);

		if (cases[i].ok) {
			tap_ok(rc == FU_OK && spool_exists(sp, cases[i].name),
			    "name '%s' accepted", vis(cases[i].name));
			spool_finish(sp, cases[i].name, SPOOL_SENT, 0, &err);
		} else {
			struct buf b = { 0 };
			int rrc, frc, ex;

			rrc = spool_read(sp, cases[i].name, &b, NULL);
			frc = spool_finish(sp, cases[i].name, SPOOL_CORRUPT, 0, NULL);
			ex = spool_exists(sp, cases[i].name);
			tap_ok(rc == FU_PERMFAIL && rrc == FU_PERMFAIL &&
			    frc == FU_PERMFAIL && ex == 0,
			    "name '%s' refused by write, read, finish, exists (%s)",
			    vis(cases[i].name), err);
			buf_free(&b);
		}
	}
	memset(longname, 'n', 256);
	longname[256] = '\0';
	tap_ok(spool_write(sp, longname, "x", 1, &err) == FU_PERMFAIL,
	    "a 256-byte name is refused");
	longname[255] = '\0';
	tap_ok(spool_write(sp, longname, "x", 1, &err) == FU_OK,
	    "a 255-byte name is fine");
	spool_finish(sp, longname, SPOOL_SENT, 0, &err);
	tap_ok(spool_exists(sp, NULL) == 0, "spool_exists(NULL) is 0");
	tap_ok(count(dir, "tmp") == 0 && count(dir, "sent") == 0,
	    "nothing left behind by the name checks");
	free(err);
}

static void
test_finish(struct spool *sp, const char *dir)
{
	char *err = NULL;
	char path[4096];
	struct stat st;
	int rc;

	memset(&st, 0, sizeof(st));
	/* SENT without keep: removed. */
	spool_write(sp, "s1.eml", "s1", 2, &err);
	rc = spool_finish(sp, "s1.eml", SPOOL_SENT, 0, &err);
	tap_ok(rc == FU_OK && !exists(dir, "new", "s1.eml") &&
	    !exists(dir, "sent", "s1.eml"), "SENT, keep_sent=0: removed");

	/* SENT with keep: moved to sent/, its mtime is the sending time. */
	spool_write(sp, "s2.eml", "s2", 2, &err);
	age_file(dir, "new", "s2.eml", 3 * 86400);
	rc = spool_finish(sp, "s2.eml", SPOOL_SENT, 1, &err);
	pathf(path, sizeof(path), "%s/sent/s2.eml", dir);
	tap_ok(rc == FU_OK && !exists(dir, "new", "s2.eml") &&
	    stat(path, &st) == 0, "SENT, keep_sent=1: moved to sent/");
	tap_ok(st.st_mtime >= time(NULL) - 60, "sent/ copy is dated from the sending");

	spool_write(sp, "f1.eml", "f1", 2, &err);
	rc = spool_finish(sp, "f1.eml", SPOOL_FAILED, 1, &err);
	tap_ok(rc == FU_OK && !exists(dir, "new", "f1.eml") &&
	    exists(dir, "failed", "f1.eml"), "FAILED: moved to failed/");

	spool_write(sp, "c1.eml", "first", 5, &err);
	rc = spool_finish(sp, "c1.eml", SPOOL_CORRUPT, 0, &err);
	tap_ok(rc == FU_OK && !exists(dir, "new", "c1.eml") &&
	    exists(dir, "corrupt", "c1.eml"), "CORRUPT: moved to corrupt/");

	/* corrupt/ never loses a file: a second c1.eml becomes c1.eml.1. */
	spool_write(sp, "c1.eml", "second", 6, &err);
	rc = spool_finish(sp, "c1.eml", SPOOL_CORRUPT, 0, &err);
	tap_ok(rc == FU_OK && exists(dir, "corrupt", "c1.eml") &&
	    exists(dir, "corrupt", "c1.eml.1"), "CORRUPT name clash: kept both");

	rc = spool_finish(sp, "gone.eml", SPOOL_FAILED, 0, &err);
	tap_ok(rc == FU_PERMFAIL && contains(err, "no such message"),
	    "finish a missing message (move): PERMFAIL (%s)", err);
	rc = spool_finish(sp, "gone.eml", SPOOL_SENT, 0, &err);
	tap_ok(rc == FU_PERMFAIL && contains(err, "no such message"),
	    "finish a missing message (remove): PERMFAIL (%s)", err);
	rc = spool_finish(sp, "gone.eml", (enum spool_fate)42, 0, &err);
	tap_ok(rc == FU_PERMFAIL, "an unknown fate: PERMFAIL");
	free(err);
}

static void
test_clean_expire(struct spool *sp, const char *dir)
{
	char path[4096];
	int n;

	put(dir, "tmp", "crash1.eml", "half");
	put(dir, "tmp", "crash2.eml", "half");
	put(dir, "tmp", ".probe-1", "");
	pathf(path, sizeof(path), "%s/tmp/subdir", dir);
	mkdir(path, 0700);
	n = spool_clean_tmp(sp);
	tap_ok(n == 3, "clean_tmp removed 3 files (%d)", n);
	tap_ok(count(dir, "tmp") == 1 && exists(dir, "tmp", "subdir"),
	    "clean_tmp leaves directories alone");
	rmdir(path);
	tap_ok(spool_clean_tmp(sp) == 0, "clean_tmp on an empty tmp/ returns 0");

	/* expire: by age of the sent/ copy. */
	n = count(dir, "sent");
	put(dir, "sent", "old.eml", "old");
	put(dir, "sent", "recent.eml", "recent");
	age_file(dir, "sent", "old.eml", 10 * 86400);
	age_file(dir, "sent", "recent.eml", 3600);
	spool_expire_sent(sp, 86400);
	tap_ok(!exists(dir, "sent", "old.eml") && exists(dir, "sent", "recent.eml"),
	    "expire_sent(1d) removes only the 10-day-old copy");
	tap_ok(count(dir, "sent") == n + 1, "expire_sent keeps the fresh copies");
	spool_expire_sent(sp, 0);
	tap_ok(count(dir, "sent") == 0, "expire_sent(0) empties sent/");
}

/* A rename that fails (new/ removed under our feet): the temporary is gone too. */
static void
test_rename_failure(void)
{
	char dir[4096], path[4200];
	struct spool *sp = NULL;
	char *err = NULL;
	int rc;

	pathf(dir, sizeof(dir), "%s/broken", root);
	if (spool_open(dir, &sp, &err) != FU_OK) {
		tap_ok(0, "open %s: %s", dir, err);
		free(err);
		return;
	}
	pathf(path, sizeof(path), "%s/new", dir);
	rmdir(path);
	rc = spool_write(sp, "m.eml", "data", 4, &err);
	tap_ok(rc == FU_TEMPFAIL && contains(err, "rename"),
	    "rename into a deleted new/: TEMPFAIL (%s)", err);
	tap_ok(count(dir, "tmp") == 0, "the temporary was removed");
	spool_close(sp);
	free(err);
}

/* A real full disk: a 64 KB tmpfs. Needs root (mount); skipped otherwise. */
static void
test_disk_full(void)
{
	char mnt[4096], dir[4200];
	struct spool *sp = NULL;
	char *err = NULL, *big;
	size_t bigsz = 1024 * 1024;
	int rc;

	pathf(mnt, sizeof(mnt), "%s/tiny", root);
	mkdir(mnt, 0700);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=64k,mode=0700") == -1) {
		tap_skip("ENOSPC: write to a full disk", strerror(errno));
		tap_skip("ENOSPC: nothing left in tmp/ or new/", "no tmpfs");
		tap_skip("space is free again after the failure", "no tmpfs");
		tap_skip("12 free files of 4 KB", "no tmpfs");
		tap_skip("a full disk empties the pool", "no tmpfs");
		tap_skip("read-only file system refused at open", "no tmpfs");
		rmdir(mnt);
		return;
	}
	pathf(dir, sizeof(dir), "%s/q", mnt);
	if (spool_open(dir, &sp, &err) != FU_OK) {
		tap_ok(0, "open %s: %s", dir, err);
		goto out;
	}
	big = xmalloc(bigsz);
	memset(big, 'x', bigsz);
	rc = spool_write(sp, "big.eml", big, bigsz, &err);
	free(big);
	tap_ok(rc == FU_TEMPFAIL && contains(err, "disk full? free space in") &&
	    contains(err, dir) && contains(err, "/tmp/big.eml"),
	    "ENOSPC: TEMPFAIL naming the path (%s)", err);
	tap_ok(count(dir, "tmp") == 0 && count(dir, "new") == 0,
	    "ENOSPC: nothing left in tmp/ or new/");
	/* A small message still fits: the failure left no debris. */
	rc = spool_write(sp, "small.eml", "hello", 5, &err);
	tap_ok(rc == FU_OK && count(dir, "new") == 1, "space is free again after the failure");

	/*
	 * Free files hold blocks: 12 pages of the 16 are in the pool, and a
	 * 40 KB message fits only once the pool is emptied.
	 */
	spool_finish(sp, "small.eml", SPOOL_SENT, 0, &err);
	big = xmalloc(40 * 1024);
	memset(big, 'f', 40 * 1024);
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < 12; i++) {
			char name[32];

			snprintf(name, sizeof(name), "fill%d.eml", i);
			if ((pass == 0 ? spool_write(sp, name, big, 4096, &err) :
			    spool_finish(sp, name, SPOOL_SENT, 0, &err)) != FU_OK)
				tap_diag("fill %d: %s", i, err);
		}
	tap_ok(count(dir, "free") == 12, "12 free files of 4 KB (%d)",
	    count(dir, "free"));
	rc = spool_write(sp, "large.eml", big, 40 * 1024, &err);
	{
		char path[4400];
		struct buf got = { 0 };

		pathf(path, sizeof(path), "%s/new/large.eml", dir);
		tap_ok(rc == FU_OK && read_file(path, &got, NULL) == FU_OK &&
		    got.len == 40 * 1024 && memcmp(got.data, big, got.len) == 0 &&
		    count(dir, "free") == 0 && count(dir, "tmp") == 0,
		    "a full disk empties the pool, and the write succeeds (%s)",
		    rc == FU_OK ? "ok" : err);
		buf_free(&got);
	}
	free(big);
	spool_close(sp);
	sp = NULL;

	if (mount("tmpfs", mnt, "tmpfs", MS_REMOUNT | MS_RDONLY, NULL) == 0) {
		rc = spool_open(dir, &sp, &err);
		tap_ok(rc == FU_PERMFAIL && sp == NULL && contains(err, "cannot write in") &&
		    contains(err, "/tmp"), "read-only file system refused at open (%s)", err);
	} else
		tap_skip("read-only file system refused at open", strerror(errno));
out:
	spool_close(sp);
	umount2(mnt, MNT_DETACH);
	rmdir(mnt);
	free(err);
}

/*
 * Batched writes: nothing in new/ until the commit, everything after it
 * (both durability paths: one fsync per file below SPOOL_SYNCFS_MIN, one
 * syncfs from there); an uncommitted batch (a crash, an error) leaves only
 * temporaries, which spool_free and spool_clean_tmp remove; a failed add
 * does not spoil the rest; spool_finish_many finishes a set at once.
 */
static void
test_batch(struct spool *sp, const char *dir)
{
	static const size_t sizes[] = { 3, SPOOL_SYNCFS_MIN + 5 };
	struct spool_batch *b;
	struct buf got = { 0 };
	char name[64], body[64], *err = NULL;
	int ok, rc;

	/* The files created in tmp/; test_pool covers rewritten free files. */
	spool_set_pool_max(sp, 0);
	tap_ok(count(dir, "free") == 0, "pool max 0: free/ emptied");
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = sizes[k];

		b = spool_batch_new(sp);
		ok = 1;
		for (size_t i = 0; i < n; i++) {
			snprintf(name, sizeof(name), "b%zu-%zu.eml", k, i);
			snprintf(body, sizeof(body), "Subject: %zu\r\n\r\nbody %zu\r\n",
			    i, i);
			if (spool_batch_add(b, name, body, strlen(body), &err) !=
			    FU_OK)
				ok = 0;
		}
		tap_ok(ok && spool_batch_count(b) == n && count(dir, "tmp") ==
		    (int)n, "batch of %zu: staged in tmp/ (%s)", n,
		    err ? err : "");
		snprintf(name, sizeof(name), "b%zu-0.eml", k);
		tap_ok(!exists(dir, "new", name), "batch of %zu: nothing in new/ "
		    "before the commit", n);
		rc = spool_batch_commit(b, &err);
		ok = 1;
		for (size_t i = 0; i < n; i++) {
			struct stat st;
			char path[4096];

			snprintf(name, sizeof(name), "b%zu-%zu.eml", k, i);
			snprintf(body, sizeof(body), "Subject: %zu\r\n\r\nbody %zu\r\n",
			    i, i);
			buf_reset(&got);
			pathf(path, sizeof(path), "%s/new/%s", dir, name);
			if (spool_read(sp, name, &got, NULL) != FU_OK ||
			    strcmp(buf_cstr(&got), body) != 0 ||
			    stat(path, &st) != 0 || (st.st_mode & 07777) != 0600)
				ok = 0;
		}
		tap_ok(rc == FU_OK && ok && count(dir, "tmp") == 0 &&
		    spool_batch_count(b) == 0, "batch of %zu (%s): all in new/, "
		    "0600, intact; tmp/ empty (%s)", n, n >= SPOOL_SYNCFS_MIN ?
		    "syncfs" : "fsync each", err ? err : "");
		spool_batch_free(b);
	}

	/* A collision in tmp/ fails that add only. */
	put(dir, "tmp", "taken.eml", "someone else's");
	b = spool_batch_new(sp);
	rc = spool_batch_add(b, "taken.eml", "x", 1, &err);
	tap_ok(rc == FU_TEMPFAIL && contains(err, "already exists") &&
	    spool_batch_count(b) == 0, "batch add over an existing tmp/ file: "
	    "TEMPFAIL, not staged (%s)", err);
	tap_ok(spool_batch_add(b, "../x.eml", "x", 1, &err) == FU_PERMFAIL,
	    "batch add with a bad name: PERMFAIL");
	tap_ok(spool_batch_add(b, "after.eml", "y", 1, &err) == FU_OK &&
	    spool_batch_count(b) == 1, "the batch goes on after a failed add");

	/* Not committed (the process dies, or the caller gives up). */
	spool_batch_free(b);
	tap_ok(!exists(dir, "tmp", "after.eml") && !exists(dir, "new",
	    "after.eml") && exists(dir, "tmp", "taken.eml"), "an uncommitted "
	    "batch leaves nothing behind, and never removes others' files");
	b = spool_batch_new(sp);
	spool_batch_add(b, "crash1.eml", "z", 1, NULL);
	spool_batch_add(b, "crash2.eml", "z", 1, NULL);
	/* "Crash": the batch is abandoned mid-way; start-up cleans tmp/. */
	tap_ok(spool_clean_tmp(sp) == 3 && count(dir, "tmp") == 0 &&
	    !exists(dir, "new", "crash1.eml"), "after a crash mid-batch the "
	    "start-up clean-up empties tmp/; new/ holds only committed files");
	spool_batch_free(b);	/* its files are gone already: no harm */

	/* An empty batch commits trivially. */
	b = spool_batch_new(sp);
	tap_ok(spool_batch_commit(b, &err) == FU_OK, "empty batch commits");
	spool_batch_free(b);

	/* Finishing many: sent (removed), failed (moved), one missing. */
	{
		const char *names[] = { "b1-0.eml", "b1-1.eml", "b1-2.eml",
		    "nope.eml" };
		const enum spool_fate fates[] = { SPOOL_SENT, SPOOL_SENT,
		    SPOOL_FAILED, SPOOL_SENT };

		free(err);
		err = NULL;
		rc = spool_finish_many(sp, names, fates, 4, 0, &err);
		tap_ok(rc == FU_PERMFAIL && contains(err, "nope.eml") &&
		    !exists(dir, "new", "b1-0.eml") && !exists(dir, "new",
		    "b1-1.eml") && !exists(dir, "sent", "b1-0.eml") &&
		    exists(dir, "failed", "b1-2.eml") && exists(dir, "new",
		    "b1-3.eml"), "spool_finish_many: sent removed, failed "
		    "moved, the missing one reported, the rest untouched (%s)",
		    err ? err : "");
		names[0] = "b1-3.eml";
		rc = spool_finish_many(sp, names, fates, 1, 1, &err);
		tap_ok(rc == FU_OK && exists(dir, "sent", "b1-3.eml"),
		    "spool_finish_many with keep_sent moves to sent/");
	}
	tap_ok(count(dir, "free") == 0, "pool max 0: nothing recycled");
	spool_set_pool_max(sp, SPOOL_POOL_MAX);
	buf_free(&got);
	free(err);
}

static int
list_cb_count;
static int list_cb_bad;

static void
list_cb(const char *name, void *arg)
{
	(void)arg;
	list_cb_count++;
	/* Free files are plain numbers; messages here all end in .eml. */
	if (strstr(name, ".eml") == NULL)
		list_cb_bad++;
}

/* Stage names[0..n) with bodies of `len` bytes of `c` in one batch. */
static int
batch_of(struct spool *sp, const char *const *names, size_t n, char c,
    size_t len, int commit, struct spool_batch **keep)
{
	struct spool_batch *b = spool_batch_new(sp);
	char *body = xmalloc(len + 1), *err = NULL;
	int ok = 1;

	memset(body, c, len);
	for (size_t i = 0; i < n; i++)
		if (spool_batch_add(b, names[i], body, len, &err) != FU_OK) {
			tap_diag("add %s: %s", names[i], err);
			ok = 0;
		}
	if (commit && spool_batch_commit(b, &err) != FU_OK) {
		tap_diag("commit: %s", err);
		ok = 0;
	}
	if (keep != NULL)
		*keep = b;
	else
		spool_batch_free(b);
	free(body);
	free(err);
	return ok;
}

static int
finish_all(struct spool *sp, const char *const *names, size_t n)
{
	enum spool_fate fates[16];
	char *err = NULL;
	int rc;

	for (size_t i = 0; i < n; i++)
		fates[i] = SPOOL_SENT;
	rc = spool_finish_many(sp, names, fates, n, 0, &err);
	if (rc != FU_OK)
		tap_diag("finish: %s", err);
	free(err);
	return rc == FU_OK;
}

/*
 * The pool of free files: a finished message is renamed into free/, the
 * next write rewrites it in place (shorter and longer, 0600), within the
 * cap; a restart keeps the pool; clean_tmp and list_new never touch it;
 * odd files in free/ are never written through.
 */
static void
test_pool(void)
{
	static const char *const four[] = { "p1.eml", "p2.eml", "p3.eml",
	    "p4.eml" };
	static const char *const many[] = { "m01.eml", "m02.eml", "m03.eml",
	    "m04.eml", "m05.eml", "m06.eml", "m07.eml", "m08.eml", "m09.eml",
	    "m10.eml" };
	char dir[4096], path[4200], fname[256], out[4200], big[300], small[40];
	struct spool_batch *b;
	struct spool *sp = NULL, *sp2 = NULL;
	char *err = NULL;
	ino_t ino, ino2;
	int rc, ok;

	pathf(dir, sizeof(dir), "%s/pool", root);
	if (spool_open(dir, &sp, &err) != FU_OK) {
		tap_ok(0, "open %s: %s", dir, err);
		free(err);
		return;
	}
	memset(big, 'L', sizeof(big));
	memset(small, 's', sizeof(small));

	/* Finished: renamed into free/, not removed. */
	rc = spool_write(sp, "a.eml", big, 100, &err);
	ino = inode(dir, "new", "a.eml");
	rc |= spool_finish(sp, "a.eml", SPOOL_SENT, 0, &err);
	first_entry(dir, "free", fname, sizeof(fname));
	tap_ok(rc == FU_OK && !exists(dir, "new", "a.eml") &&
	    count(dir, "free") == 1 && inode(dir, "free", fname) == ino,
	    "SENT without retention: the file is recycled into free/%s", fname);
	pathf(path, sizeof(path), "%s/free", dir);
	{
		struct stat st;

		tap_ok(stat(path, &st) == 0 && (st.st_mode & 07777) == 0700,
		    "free/ made by the first retired file, mode 0700");
	}

	/* The next batch rewrites it: a shorter message, exactly. */
	ok = batch_of(sp, (const char *const[]){ "b.eml" }, 1, 's', 30, 0, &b);
	tap_ok(ok && count(dir, "tmp") == 0 && !exists(dir, "new", "b.eml"),
	    "a batch add takes the free file: nothing in tmp/ or new/ yet");
	rc = spool_batch_commit(b, &err);
	spool_batch_free(b);
	tap_ok(rc == FU_OK && inode(dir, "new", "b.eml") == ino &&
	    holds(dir, "new", "b.eml", small, 30) && count(dir, "free") == 0,
	    "committed: same inode, exactly the 30 new bytes, 0600, free/ empty");

	/* A longer one, after someone loosened the free file's mode. */
	spool_finish(sp, "b.eml", SPOOL_SENT, 0, &err);
	first_entry(dir, "free", fname, sizeof(fname));
	pathf(path, sizeof(path), "%s/free/%s", dir, fname);
	chmod(path, 0644);
	ok = batch_of(sp, (const char *const[]){ "c.eml" }, 1, 'L', 300, 1,
	    NULL);
	tap_ok(ok && inode(dir, "new", "c.eml") == ino &&
	    holds(dir, "new", "c.eml", big, 300),
	    "a longer message rewrites the same file, exactly, back to 0600");
	spool_finish(sp, "c.eml", SPOOL_SENT, 0, &err);

	/* spool_write takes free files too. */
	rc = spool_write(sp, "w.eml", small, 10, &err);
	tap_ok(rc == FU_OK && inode(dir, "new", "w.eml") == ino &&
	    holds(dir, "new", "w.eml", small, 10) && count(dir, "free") == 0,
	    "spool_write rewrites a free file (%s)", err ? err : "");
	spool_finish(sp, "w.eml", SPOOL_SENT, 0, &err);

	/* Both durability paths of the commit cover rewritten files. */
	ok = batch_of(sp, many, 10, 'x', 200, 1, NULL) &&
	    finish_all(sp, many, 10) && count(dir, "free") == 10;
	ok = ok && batch_of(sp, many, 3, 'y', 150, 1, NULL);
	memset(big, 'y', 150);
	for (int i = 0; i < 3; i++)
		ok = ok && holds(dir, "new", many[i], big, 150);
	tap_ok(ok && count(dir, "free") == 7 && count(dir, "tmp") == 0,
	    "a batch of 3 (fsync each) from the pool: intact in new/");
	ok = finish_all(sp, many, 3) && batch_of(sp, many, 10, 'z', 250, 1,
	    NULL);
	memset(big, 'z', 250);
	for (int i = 0; i < 10; i++)
		ok = ok && holds(dir, "new", many[i], big, 250);
	tap_ok(ok && count(dir, "free") == 0 && count(dir, "tmp") == 0,
	    "a batch of 10 (syncfs) from the pool: intact in new/");
	memset(big, 'L', sizeof(big));

	/* The cap: beyond it, removed as before; lowering it trims. */
	spool_set_pool_max(sp, 4);
	ok = finish_all(sp, many, 10);
	tap_ok(ok && count(dir, "free") == 4 && count(dir, "new") == 0,
	    "pool max 4: 10 finished, 4 kept in free/, the rest removed");
	spool_set_pool_max(sp, 2);
	tap_ok(count(dir, "free") == 2, "pool max lowered to 2: trimmed (%d)",
	    count(dir, "free"));

	/* A missing file: PERMFAIL as before, and no room of the pool lost. */
	spool_set_pool_max(sp, 3);
	rc = spool_finish(sp, "gone.eml", SPOOL_SENT, 0, &err);
	tap_ok(rc == FU_PERMFAIL && contains(err, "no such message") &&
	    count(dir, "free") == 2, "finish a missing file: PERMFAIL (%s), "
	    "pool unchanged", err);
	rc = spool_finish(sp, "gone.eml", SPOOL_SENT, 0, &err);
	spool_write(sp, "last.eml", big, 5, &err);	/* takes one: 1 left */
	spool_write(sp, "d1.eml", big, 5, &err);	/* takes one: 0 left */
	spool_write(sp, "d2.eml", big, 5, &err);	/* created */
	spool_finish(sp, "last.eml", SPOOL_SENT, 0, &err);
	spool_finish(sp, "d1.eml", SPOOL_SENT, 0, &err);
	spool_finish(sp, "d2.eml", SPOOL_SENT, 0, &err);
	tap_ok(count(dir, "free") == 3, "after failed finishes the pool still "
	    "fills to its cap (%d of 3)", count(dir, "free"));
	spool_set_pool_max(sp, SPOOL_POOL_MAX);

	/* O_EXCL's promise holds with a free file at hand. */
	put(dir, "tmp", "busy.eml", "other writer");
	rc = spool_write(sp, "busy.eml", "mine", 4, &err);
	pathf(path, sizeof(path), "%s/tmp/busy.eml", dir);
	chmod(path, 0600);
	tap_ok(rc == FU_TEMPFAIL && contains(err, "already exists") &&
	    holds(dir, "tmp", "busy.eml", "other writer", 12) &&
	    count(dir, "free") == 3 &&
	    !exists(dir, "new", "busy.eml"), "tmp/NAME exists: TEMPFAIL, left "
	    "alone, the free file back in the pool (%s)", err);
	unlink(path);

	/* Expired sent/ copies feed the pool too. */
	spool_write(sp, "kept.eml", big, 7, &err);
	ino2 = inode(dir, "new", "kept.eml");
	spool_finish(sp, "kept.eml", SPOOL_SENT, 1, &err);
	age_file(dir, "sent", "kept.eml", 10 * 86400);
	spool_expire_sent(sp, 86400);
	tap_ok(count(dir, "sent") == 0 && count(dir, "free") == 3 &&
	    ino2 != 0, "an expired sent/ copy goes back to the pool");

	/* An uncommitted batch gives its free files back. */
	batch_of(sp, four, 2, 'u', 20, 0, &b);
	tap_ok(count(dir, "free") == 3 && count(dir, "tmp") == 0 &&
	    count(dir, "new") == 0, "staged from the pool: still in free/, "
	    "nothing in tmp/ or new/");

	/* A restart meanwhile (a second handle, as after a crash). */
	tap_ok(spool_open(dir, &sp2, &err) == FU_OK, "reopen with a batch "
	    "staged (a crash mid-batch)");
	put(dir, "tmp", "stray.eml", "half a message");
	list_cb_count = list_cb_bad = 0;
	spool_write(sp, "real.eml", "r", 1, &err);
	tap_ok(spool_list_new(sp2, list_cb, NULL) == 1 && list_cb_count == 1 &&
	    list_cb_bad == 0, "list_new reports the message only, no free file");
	tap_ok(spool_clean_tmp(sp2) == 1 && !exists(dir, "tmp", "stray.eml") &&
	    count(dir, "free") == 2, "clean_tmp removes the stray tmp/ file, "
	    "not the pool (%d)", count(dir, "free"));
	spool_close(sp2);
	sp2 = NULL;
	spool_batch_free(b);
	spool_finish(sp, "real.eml", SPOOL_SENT, 0, &err);
	tap_ok(count(dir, "free") == 3, "batch freed: its files back in free/");
	spool_close(sp);
	sp = NULL;

	/* Restart: the pool is kept and used. */
	tap_ok(spool_open(dir, &sp, &err) == FU_OK && count(dir, "free") == 3,
	    "restart keeps the 3 free files");
	ok = batch_of(sp, four, 4, 'r', 64, 1, NULL);
	memset(big, 'r', 64);
	for (int i = 0; i < 4; i++)
		ok = ok && holds(dir, "new", four[i], big, 64);
	tap_ok(ok && count(dir, "free") == 0 && count(dir, "tmp") == 0,
	    "after the restart a batch of 4 takes the 3 and creates 1");
	finish_all(sp, four, 4);
	spool_close(sp);
	sp = NULL;

	/*
	 * Odd entries in free/ are never written through: a second link
	 * (a message elsewhere), a symbolic link, a directory, a name that
	 * is not a number.
	 */
	pathf(path, sizeof(path), "%s/free", dir);
	rm_rf(path);
	mkdir(path, 0700);
	put(dir, "failed", "keep.eml", "precious");
	pathf(path, sizeof(path), "%s/failed/keep.eml", dir);
	pathf(out, sizeof(out), "%s/free/7", dir);
	ok = link(path, out) == 0;
	pathf(out, sizeof(out), "%s/free/8", dir);
	ok = ok && symlink(path, out) == 0;
	pathf(out, sizeof(out), "%s/free/9", dir);
	ok = ok && mkdir(out, 0700) == 0;
	put(dir, "free", "notes.txt", "not a pool file");
	ino2 = inode(dir, "failed", "keep.eml");
	tap_ok(ok && spool_open(dir, &sp, &err) == FU_OK, "open with odd "
	    "entries in free/");
	ok = batch_of(sp, four, 2, 'q', 16, 1, NULL);
	memset(big, 'q', 16);
	tap_ok(ok && holds(dir, "new", four[0], big, 16) &&
	    holds(dir, "new", four[1], big, 16) &&
	    inode(dir, "new", four[0]) != ino2 &&
	    inode(dir, "new", four[1]) != ino2,
	    "messages written to files of their own");
	chmod(path, 0600);
	tap_ok(holds(dir, "failed", "keep.eml", "precious", 8),
	    "a file with a second link in free/ was not written through, "
	    "and that link is gone");
	tap_ok(!exists(dir, "free", "7") && exists(dir, "free", "8") &&
	    exists(dir, "free", "9") && exists(dir, "free", "notes.txt"),
	    "the symlink, the directory and the foreign name are left alone");
	finish_all(sp, four, 2);
	tap_ok(exists(dir, "free", "notes.txt") && count(dir, "free") == 5,
	    "finished files went to free/ beside them (%d)",
	    count(dir, "free"));
	spool_close(sp);
	free(err);
}

/* Finishing in the background: nothing left after spool_flush, files pooled. */
static void
test_finish_async(void)
{
	struct spool *sp = NULL;
	char dir[4096], name[32];
	const char *names[40];
	enum spool_fate fates[40];
	char *err = NULL;
	int ok = 1;

	pathf(dir, sizeof(dir), "%s/async", root);
	if (spool_open(dir, &sp, &err) != FU_OK) {
		tap_ok(0, "open %s: %s", dir, err);
		free(err);
		return;
	}
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "%d.3.eml", i + 1);
		ok &= spool_write(sp, name, "abc", 3, NULL) == FU_OK;
		names[i] = xstrdup(name);
		fates[i] = i % 10 == 9 ? SPOOL_FAILED : SPOOL_SENT;
	}
	tap_ok(ok && count(dir, "new") == 40, "async: 40 messages in new/");
	/* Two groups, as deliver hands them over. */
	spool_finish_async(sp, names, fates, 20, 0);
	spool_finish_async(sp, names + 20, fates + 20, 20, 0);
	spool_flush(sp);
	tap_ok(count(dir, "new") == 0, "async: new/ empty after spool_flush");
	tap_ok(count(dir, "failed") == 4, "async: the failed ones in failed/");
	tap_ok(count(dir, "free") == 36, "async: the sent ones pooled in free/");
	/* A missing name is logged, not fatal; the others still go. */
	ok = spool_write(sp, "41.3.eml", "abc", 3, NULL) == FU_OK;
	{
		const char *two[] = { "99.3.eml", "41.3.eml" };
		enum spool_fate f2[] = { SPOOL_SENT, SPOOL_SENT };

		spool_finish_async(sp, two, f2, 2, 0);
	}
	/* spool_close waits for the worker too. */
	spool_close(sp);
	tap_ok(ok && !exists(dir, "new", "41.3.eml"),
	    "async: spool_close finishes what was handed over");
	for (int i = 0; i < 40; i++)
		free((char *)(uintptr_t)names[i]);
}

/* Message names: JOBID.SIZE.eml, the size checked on read. */
static void
test_message_names(struct spool *sp)
{
	struct buf b = { 0 };
	char name[SPOOL_NAME_MAX], *err = NULL;
	const char *body = "Subject: x\r\n\r\nhello\r\n";

	spool_message_name(42, strlen(body), name);
	tap_str(name, "42.21.eml", "spool_message_name: JOBID.SIZE.eml");
	spool_message_name(INT64_MAX, SIZE_MAX, name);
	tap_ok(strlen(name) < SPOOL_NAME_MAX, "the longest name fits (%s)",
	    name);
	tap_ok(spool_message_job("42.21.eml") == 42 &&
	    spool_message_job("7.eml") == 7 && spool_message_job("x.eml") ==
	    0 && spool_message_job("1234567890123456789.1.eml") == 0,
	    "spool_message_job: the id a message name starts with");
	/* Names in new/ are whatever someone put there: never a negative,
	 * overflowed or half-parsed id (0 sends tidy-up to the name scan). */
	tap_ok(spool_message_job("-5.eml") == 0 &&
	    spool_message_job("+5.eml") == 0 && spool_message_job(" 5.eml") ==
	    0 && spool_message_job("5") == 0 && spool_message_job("") == 0 &&
	    spool_message_job(".eml") == 0 && spool_message_job("5x.eml") == 0 &&
	    spool_message_job("99999999999999999999.1.eml") == 0 &&
	    spool_message_job("999999999999999999.1.eml") ==
	    INT64_C(999999999999999999),
	    "spool_message_job: hostile names give no job");
	spool_message_name(42, strlen(body), name);
	if (spool_write(sp, name, body, strlen(body), &err) != FU_OK) {
		tap_ok(0, "write %s: %s", name, err);
		free(err);
		return;
	}
	tap_ok(spool_read_message(sp, name, &b, &err) == FU_OK &&
	    b.len == strlen(body), "read back at the size in its name");
	buf_free(&b);
	if (spool_write(sp, "43.99.eml", body, strlen(body), &err) != FU_OK ||
	    spool_write(sp, "44.eml", body, strlen(body), &err) != FU_OK)
		tap_ok(0, "write: %s", err);
	tap_ok(spool_read_message(sp, "43.99.eml", &b, &err) == FU_PERMFAIL &&
	    b.len == 0 && err && strstr(err, "not the size it was written with"),
	    "a file of another size than its name says: refused (%s)",
	    err ? err : "");
	free(err);
	err = NULL;
	/* A size past what fits (2^64 + 21) must not wrap round to 21. */
	if (spool_write(sp, "45.18446744073709551637.eml", body, strlen(body),
	    &err) != FU_OK)
		tap_ok(0, "write: %s", err);
	tap_ok(spool_read_message(sp, "45.18446744073709551637.eml", &b, &err) ==
	    FU_PERMFAIL && b.len == 0, "an overflowing size in the name: refused");
	free(err);
	err = NULL;
	tap_ok(spool_read_message(sp, "44.eml", &b, &err) == FU_OK &&
	    b.len == strlen(body), "a name without a size (older spools): read");
	buf_free(&b);
	free(err);
}

int
main(void)
{
	struct spool *sp = NULL;
	char dir[4096];
	char *err = NULL;

	umask(022);
	if (mkdtemp(root) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_open();

	pathf(dir, sizeof(dir), "%s/main", root);
	if (spool_open(dir, &sp, &err) != FU_OK) {
		tap_ok(0, "open %s: %s", dir, err);
		free(err);
		rm_rf(root);
		return tap_done();
	}
	test_write_read(sp, dir);
	test_names(sp, dir);
	test_finish(sp, dir);
	test_clean_expire(sp, dir);
	test_batch(sp, dir);
	test_message_names(sp);
	spool_close(sp);

	test_pool();
	test_finish_async();
	test_rename_failure();
	test_disk_full();

	rm_rf(root);
	return tap_done();
}
