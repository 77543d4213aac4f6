/*
 * test_verp: return-path tokens made with the unsubscribe secret (loaded
 * as consent.c loads it): they name their job, survive a change of case,
 * and nothing else passes: another secret, another job, a changed digit,
 * a malformed token.
 */
#include "config.h"
#include "consent.h"
#include "verp.h"
#include "util.h"
#include "tap.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/test_verp.XXXXXX";

static struct consent *
load(struct config *cfg, const char *secret)
{
	char *path = consent_secret_path(cfg), *err = NULL;
	struct consent *c = NULL;
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd == -1 || write(fd, secret, strlen(secret)) != (ssize_t)strlen(secret))
		abort();
	close(fd);
	tap_ok(consent_open(cfg, 0, &c, &err) == FU_OK, "secret loads (%s)",
	    err ? err : "");
	free(err);
	free(path);
	return c;
}

static void
test_tokens(struct consent *a, struct consent *b)
{
	static const int64_t ids[] = { 1, 42, 1000000, 999999999999999999LL };
	char *t, *u;
	int64_t id;

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		t = verp_token(a, ids[i]);
		tap_ok(verp_check(a, t, &id) == FU_OK && id == ids[i],
		    "token %s names job %lld", t, (long long)ids[i]);
		tap_ok(verp_check(b, t, &id) == FU_PERMFAIL && id == 0,
		    "another secret refuses %s", t);
		u = xstrdup(t);
		for (char *p = u; *p; p++)
			*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		tap_ok(verp_check(a, u, &id) == FU_OK && id == ids[i],
		    "upper case %s passes", u);
		free(u);
		u = verp_token(a, ids[i]);
		tap_str(u, t, "the same job, the same token");
		free(u);
		free(t);
	}
	t = verp_token(a, 42);
	tap_ok(strlen(t) == 3 + 2 * VERP_MAC_BYTES && t[2] == '.',
	    "ID.MAC with %d hex digits: %s", 2 * VERP_MAC_BYTES, t);
	/* every single changed character is refused */
	for (size_t i = 0; i < strlen(t); i++) {
		u = xstrdup(t);
		u[i] = u[i] == '0' ? '1' : u[i] == '.' ? '-' : '0';
		if (i == 0)
			u[i] = '5';
		tap_ok(verp_check(a, u, &id) == FU_PERMFAIL, "changed at %zu: %s "
		    "refused", i, u);
		free(u);
	}
	/* job 43 with job 42's MAC */
	u = xasprintf("43%s", t + 2);
	tap_ok(verp_check(a, u, &id) == FU_PERMFAIL, "another job's MAC refused");
	free(u);
	{
		const char *bad[] = { "", ".", "42.", "42", "042" , "0.abc",
		    "-1.00000000000000000000", "42.0000000000000000000",
		    "42.000000000000000000000", "42.zzzzzzzzzzzzzzzzzzzz",
		    "4 2.00000000000000000000", "1234567890123456789.00000000000000000000",
		    NULL };

		for (int i = 0; bad[i] != NULL; i++)
			tap_ok(verp_check(a, bad[i], &id) == FU_PERMFAIL && id == 0,
			    "malformed \"%s\" refused", bad[i]);
		tap_ok(verp_check(a, NULL, &id) == FU_PERMFAIL, "NULL refused");
		u = xasprintf("0%s", t);
		tap_ok(verp_check(a, u, &id) == FU_PERMFAIL, "a leading zero is "
		    "another spelling: refused");
		free(u);
		u = xasprintf("%sx", t);
		tap_ok(verp_check(a, u, &id) == FU_PERMFAIL, "trailing junk refused");
		free(u);
	}
	free(t);
}

static void
test_address(struct consent *a)
{
	char *t = verp_token(a, 42), *want, *got;

	want = xasprintf("bounces+%s@desk.example", t);
	got = verp_address(a, "bounces@desk.example", '+', 42);
	tap_str(got, want, "the return path of job 42");
	free(want);
	free(got);
	want = xasprintf("b.o-x-%s@mail.desk.example", t);
	got = verp_address(a, "b.o-x@mail.desk.example", '-', 42);
	tap_str(got, want, "another delimiter");
	free(want);
	free(got);
	tap_ok(verp_address(a, "not an address", '+', 42) == NULL,
	    "a return path that is no address gives none");
	tap_ok(verp_address(a, "bounces@desk.example", '+', 0) == NULL,
	    "no job, no return path");
	tap_ok(verp_address(a, "a-very-long-local-part-for-bounces-here-and-"
	    "more@desk.example", '+', 42) == NULL,
	    "a local part over 64 octets gives none");
	free(t);
}

int
main(void)
{
	struct buf errs = { 0 };
	struct config *cfg;
	struct consent *a, *b, *a2;
	char conf[256], *ta, *ta2;
	FILE *f;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(conf, sizeof(conf), "%s/t.conf", dir);
	f = fopen(conf, "w");
	fprintf(f, "[source]\ndatabase = helpdesk.db\n[queue]\ndir = %s\n"
	    "[smtp]\nfrom = Acme <support@example.com>\n"
	    "[unsubscribe]\nurl = https://unsub.example/u\n"
	    "[rule b]\nkind = birthday\n", dir);
	fclose(f);
	cfg = config_load(conf, &errs);
	if (!tap_ok(cfg != NULL, "config loads (%s)", buf_cstr(&errs)))
		return tap_done();
	a = load(cfg, "0123456789abcdef0123456789abcdef-secret-one\n");
	b = load(cfg, "0123456789abcdef0123456789abcdef-secret-two\n");
	a2 = load(cfg, "0123456789abcdef0123456789abcdef-secret-one\n");
	if (a && b && a2) {
		ta = verp_token(a, 7);
		ta2 = verp_token(a2, 7);
		tap_str(ta2, ta, "the same secret file, the same token");
		free(ta);
		free(ta2);
		test_tokens(a, b);
		test_address(a);
	}
	consent_free(a);
	consent_free(b);
	consent_free(a2);
	{
		char *p = consent_secret_path(cfg);

		unlink(p);
		free(p);
	}
	unlink(conf);
	rmdir(dir);
	config_free(cfg);
	buf_free(&errs);
	return tap_done();
}
