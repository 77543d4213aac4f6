/*
 * test_bounce: the corpus in tests/bounces/ against expected.tsv (and again
 * with every message's line ends as CRLF and as CR), the classification
 * table, what is not a message, VERP tokens from the pipe's environment,
 * and the bounds on hostile input. Run from the source tree.
 */
#include "bounce.h"
#include "util.h"
#include "tap.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CORPUS	"tests/bounces"

static const struct bounce_opts opts = { "bounces", '+', { NULL, NULL } };

/* One message's expectations, as lines of expected.tsv. */
struct expect {
	char	 file[128];
	char	*format;
	char	**rcpt;		/* "RECIPIENT STATUS ACTION KIND" */
	size_t	 nrcpt;
	char	**token, **id;
	size_t	 ntoken, nid;
};

static void
push(char ***v, size_t *n, const char *s)
{
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = xstrdup(s);
}

static struct expect *
expect_get(struct expect **v, size_t *n, const char *file)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i].file, file) == 0)
			return &(*v)[i];
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	memset(&(*v)[*n], 0, sizeof(**v));
	snprintf((*v)[*n].file, sizeof((*v)[*n].file), "%s", file);
	return &(*v)[(*n)++];
}

static size_t
expect_load(struct expect **v)
{
	struct buf b = { 0 };
	char *err = NULL, *line, *save = NULL;
	size_t n = 0;

	if (read_file(CORPUS "/expected.tsv", &b, &err) != FU_OK) {
		tap_ok(0, "read expected.tsv: %s", err);
		free(err);
		return 0;
	}
	for (line = strtok_r(b.data, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char *f[6] = { 0 }, *s2 = NULL, *t;
		int nf = 0;
		struct expect *e;

		if (line[0] == '#' || line[0] == '\0')
			continue;
		for (t = strtok_r(line, "\t", &s2); t != NULL && nf < 6;
		    t = strtok_r(NULL, "\t", &s2))
			f[nf++] = t;
		if (nf < 3) {
			tap_ok(0, "expected.tsv: a line of %d fields", nf);
			continue;
		}
		e = expect_get(v, &n, f[0]);
		if (strcmp(f[1], "format") == 0)
			e->format = xstrdup(f[2]);
		else if (strcmp(f[1], "token") == 0)
			push(&e->token, &e->ntoken, f[2]);
		else if (strcmp(f[1], "id") == 0)
			push(&e->id, &e->nid, f[2]);
		else if (strcmp(f[1], "rcpt") == 0 && nf == 6) {
			char *r = xasprintf("%s %s %s %s", f[2], f[3], f[4], f[5]);

			push(&e->rcpt, &e->nrcpt, r);
			free(r);
		} else
			tap_ok(0, "expected.tsv: bad line for %s", f[0]);
	}
	buf_free(&b);
	return n;
}

static void
expect_free(struct expect *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < v[i].nrcpt; k++)
			free(v[i].rcpt[k]);
		for (size_t k = 0; k < v[i].ntoken; k++)
			free(v[i].token[k]);
		for (size_t k = 0; k < v[i].nid; k++)
			free(v[i].id[k]);
		free(v[i].rcpt);
		free(v[i].token);
		free(v[i].id);
		free(v[i].format);
	}
	free(v);
}

/* The report as expected.tsv would say it, one line per item. */
static char *
describe(const struct bounce_report *r)
{
	struct buf b = { 0 };

	buf_printf(&b, "format %s\n", r->format);
	for (size_t i = 0; i < r->nrcpt; i++) {
		const struct bounce_rcpt *x = &r->rcpt[i];

		buf_printf(&b, "rcpt %s %s %s %s\n", x->recipient ? x->recipient :
		    "-", x->status[0] ? x->status : "-", x->action ? x->action :
		    "-", bounce_kind_name(x->kind));
	}
	for (size_t i = 0; i < r->ntokens; i++)
		buf_printf(&b, "token %s\n", r->tokens[i]);
	for (size_t i = 0; i < r->nids; i++)
		buf_printf(&b, "id %s\n", r->ids[i]);
	return buf_steal(&b);
}

static char *
describe_expect(const struct expect *e)
{
	struct buf b = { 0 };

	buf_printf(&b, "format %s\n", e->format ? e->format : "?");
	for (size_t i = 0; i < e->nrcpt; i++)
		buf_printf(&b, "rcpt %s\n", e->rcpt[i]);
	for (size_t i = 0; i < e->ntoken; i++)
		buf_printf(&b, "token %s\n", e->token[i]);
	for (size_t i = 0; i < e->nid; i++)
		buf_printf(&b, "id %s\n", e->id[i]);
	return buf_steal(&b);
}

/* The message with every line end (CRLF, CR, LF) as `eol`. */
static void
relined(const struct buf *in, const char *eol, struct buf *out)
{
	for (size_t i = 0; i < in->len; i++) {
		char c = in->data[i];

		if (c == '\r' || c == '\n') {
			buf_puts(out, eol);
			if (c == '\r' && i + 1 < in->len && in->data[i + 1] == '\n')
				i++;
		} else
			buf_putc(out, c);
	}
}

static void
check_reasons(const struct bounce_report *r, const char *file)
{
	for (size_t i = 0; i < r->nrcpt; i++) {
		const char *s = r->rcpt[i].reason;
		int clean = s != NULL && utf8_valid(s, strlen(s));

		for (const char *p = s; clean && *p; p++)
			clean = (unsigned char)*p >= 0x20 && *p != 0x7f;
		tap_ok(clean, "%s: reason %zu is clean text", file, i);
	}
}

static void
corpus(void)
{
	struct expect *ex = NULL;
	size_t nex = expect_load(&ex);
	DIR *d = opendir(CORPUS);
	struct dirent *de;
	int files = 0;

	tap_ok(d != NULL, "open %s (run from the source tree)", CORPUS);
	while (d != NULL && (de = readdir(d)) != NULL) {
		size_t nl = strlen(de->d_name), i;
		char *path, *want, *got, *err = NULL;
		struct buf msg = { 0 };
		struct bounce_report *r;

		if (nl < 5 || strcmp(de->d_name + nl - 4, ".eml") != 0)
			continue;
		files++;
		for (i = 0; i < nex && strcmp(ex[i].file, de->d_name) != 0; i++)
			;
		if (!tap_ok(i < nex, "%s has expectations in expected.tsv",
		    de->d_name))
			continue;
		path = xasprintf("%s/%s", CORPUS, de->d_name);
		if (read_file(path, &msg, &err) != FU_OK ||
		    !tap_ok(bounce_parse(msg.data, msg.len, &opts, &r, &err) ==
		    FU_OK, "%s parses: %s", de->d_name, err ? err : "")) {
			free(err);
			free(path);
			buf_free(&msg);
			continue;
		}
		want = describe_expect(&ex[i]);
		got = describe(r);
		tap_str(got, want, "%s as expected", de->d_name);
		check_reasons(r, de->d_name);
		bounce_report_free(r);
		/* the same message with other line ends says the same */
		for (int k = 0; k < 3; k++) {
			static const char *const eols[] = { "\n", "\r\n", "\r" };
			struct buf alt = { 0 };
			char *g2;

			relined(&msg, eols[k], &alt);
			if (bounce_parse(alt.data, alt.len, &opts, &r, NULL) ==
			    FU_OK) {
				g2 = describe(r);
				tap_str(g2, want, "%s with line ends %d", de->d_name,
				    k);
				free(g2);
				bounce_report_free(r);
			} else
				tap_ok(0, "%s with line ends %d parses", de->d_name, k);
			buf_free(&alt);
		}
		free(want);
		free(got);
		free(path);
		buf_free(&msg);
	}
	if (d != NULL)
		closedir(d);
	tap_ok(files >= 18 && (size_t)files == nex,
	    "the corpus has %d messages, expected.tsv names %zu", files, nex);
	expect_free(ex, nex);
}

static void
classify(void)
{
	static const struct {
		const char *action, *status, *text;
		enum bounce_kind want;
	} t[] = {
		{ "failed", "5.1.1", "550 User unknown", BOUNCE_HARD },
		{ "failed", "5.1.2", NULL, BOUNCE_HARD },
		{ "failed", "5.1.6", "mailbox has moved", BOUNCE_HARD },
		{ "failed", "5.1.10", NULL, BOUNCE_HARD },
		{ "failed", "5.2.1", "account disabled", BOUNCE_HARD },
		{ "failed", "5.4.4", "unable to route", BOUNCE_HARD },
		{ "failed", "5.2.2", "552 mailbox full", BOUNCE_SOFT },
		{ "failed", "4.2.2", NULL, BOUNCE_SOFT },
		{ "failed", "4.4.7", "delivery time expired", BOUNCE_SOFT },
		{ "failed", "5.3.1", NULL, BOUNCE_SOFT },
		{ "failed", "5.7.1", "554 rejected as spam", BOUNCE_POLICY },
		{ "failed", "5.7.26", "DMARC policy", BOUNCE_POLICY },
		{ "failed", "5.1.1", "blocked using zen.spamhaus.org", BOUNCE_POLICY },
		{ "failed", "5.7.1", "Recipient address rejected: user unknown",
		  BOUNCE_HARD },
		{ "failed", "4.7.0", "user unknown", BOUNCE_SOFT },
		{ "failed", "4.7.1", "greylisted", BOUNCE_POLICY },
		{ "failed", "5.2.3", "message too large", BOUNCE_POLICY },
		{ "failed", "5.1.8", "bad sender domain", BOUNCE_POLICY },
		{ "failed", "5.5.0", "mailbox unavailable", BOUNCE_HARD },
		{ "failed", "5.0.0", NULL, BOUNCE_HARD },
		{ "failed", "5.0.0", "over quota", BOUNCE_SOFT },
		{ "failed", "", "no such user", BOUNCE_HARD },
		{ "failed", NULL, "something odd happened", BOUNCE_SOFT },
		{ "failed", "9.9.9", "relay access denied", BOUNCE_POLICY },
		{ "delayed", "4.4.1", "connection timed out", BOUNCE_NONE },
		{ "delivered", "2.0.0", NULL, BOUNCE_NONE },
		{ "relayed", "2.0.0", NULL, BOUNCE_NONE },
		{ "expanded", "2.0.0", NULL, BOUNCE_NONE },
		{ NULL, "5.1.1", NULL, BOUNCE_HARD },
		{ NULL, "2.1.5", NULL, BOUNCE_NONE },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		enum bounce_kind k = bounce_classify(t[i].action, t[i].status,
		    t[i].text);

		tap_str(bounce_kind_name(k), bounce_kind_name(t[i].want),
		    "classify %s %s \"%s\"", t[i].action ? t[i].action : "-",
		    t[i].status ? t[i].status : "-", t[i].text ? t[i].text : "");
	}
	for (int k = 0; k < BOUNCE_NKINDS; k++) {
		enum bounce_kind back = BOUNCE_NKINDS;

		tap_ok(bounce_kind_parse(bounce_kind_name((enum bounce_kind)k),
		    &back) == 0 && back == (enum bounce_kind)k, "kind %d names", k);
	}
	tap_ok(bounce_kind_parse("fatal", &(enum bounce_kind){ 0 }) == -1,
	    "an unknown kind is refused");
}

static struct bounce_report *
parse(const char *msg, const struct bounce_opts *o)
{
	struct bounce_report *r = NULL;
	char *err = NULL;

	if (bounce_parse(msg, strlen(msg), o, &r, &err) != FU_OK) {
		tap_diag("parse: %s", err);
		free(err);
		return NULL;
	}
	return r;
}

static void
not_messages(void)
{
	static const char *const bad[] = { "", "hello world\n",
	    "\n\nSubject: late\n", " Subject: folded\n", ": nameless\n",
	    "From nobody Fri Dec  4 00:00:00 2026\n", "\x01\x02\x03" };
	struct bounce_report *r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *err = NULL;

		tap_ok(bounce_parse(bad[i], strlen(bad[i]), &opts, &r, &err) ==
		    FU_PERMFAIL && err != NULL && r == NULL,
		    "not a message %zu is refused (%s)", i, err ? err : "");
		free(err);
	}
	r = parse("From someone Fri Dec  4 00:00:00 2026\nSubject: hi\n\nbody\n",
	    &opts);
	tap_ok(r != NULL && strcmp(r->format, "none") == 0 && r->nrcpt == 0,
	    "an mbox From line is skipped; a plain message is none");
	bounce_report_free(r);
	r = parse("Subject: only a header", &opts);
	tap_ok(r != NULL && r->kind == BOUNCE_NONE, "a header alone is a message");
	bounce_report_free(r);
}

static void
tokens(void)
{
	const char *msg = "From: MAILER-DAEMON@mx.example\n"
	    "To: Bounces <BOUNCES+7.AbC@desk.example>, bounces+8.x@desk.example\n"
	    "Delivered-To: bounces@desk.example\n"
	    "X-Original-To: other+9.y@desk.example, bounces+@desk.example\n"
	    "Subject: failure notice\n\n<a@example.com>:\n550 5.1.1 unknown\n";
	struct bounce_opts o = { "bounces", '+', { "bounces+10.env@desk.example",
	    "bounces+7.AbC@desk.example" } };
	struct bounce_opts off = { NULL, '+', { "bounces+10.env@desk.example",
	    NULL } };
	struct bounce_opts dash = { "bounces", '-', { NULL, NULL } };
	struct bounce_report *r = parse(msg, &o);
	char *got;

	got = r ? describe(r) : NULL;
	tap_str(got, "format text\nrcpt a@example.com 5.1.1 failed hard\n"
	    "token 7.abc\ntoken 8.x\ntoken 10.env\n",
	    "tokens from To and the environment, lower-cased, once each");
	free(got);
	bounce_report_free(r);
	r = parse(msg, &off);
	tap_ok(r != NULL && r->ntokens == 0, "no return path: no token");
	bounce_report_free(r);
	r = parse("To: bounces-12.abc@desk.example, bounces+13.x@d.example\n"
	    "Subject: hi\n\n", &dash);
	tap_ok(r != NULL && r->ntokens == 1 && strcmp(r->tokens[0], "12.abc") ==
	    0, "the delimiter is configurable");
	bounce_report_free(r);
	r = parse("To: bounces+aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaa@desk.example\nSubject: hi\n\n", &opts);
	tap_ok(r != NULL && r->ntokens == 0, "an over-long token is not one");
	bounce_report_free(r);
}

/* Big, deep and repetitive input stays within the bounds. */
static void
bounds(void)
{
	struct buf m = { 0 };
	struct bounce_report *r;

	buf_puts(&m, "Content-Type: multipart/report; report-type=delivery-status;"
	    " boundary=b\nTo: bounces+1.a@x.example\nSubject: x\n\n--b\n"
	    "Content-Type: message/delivery-status\n\nReporting-MTA: dns; x\n\n");
	for (int i = 0; i < 500; i++)
		buf_printf(&m, "Final-Recipient: rfc822; u%d@example.com\n"
		    "Action: failed\nStatus: 5.1.1\n\n", i);
	buf_puts(&m, "--b--\n");
	r = parse(m.data, &opts);
	tap_ok(r != NULL && r->nrcpt == BOUNCE_RECIPIENTS_MAX,
	    "at most %d recipients", BOUNCE_RECIPIENTS_MAX);
	bounce_report_free(r);

	buf_reset(&m);
	buf_puts(&m, "Subject: deep\n");
	for (int i = 0; i < 200; i++)
		buf_printf(&m, "Content-Type: multipart/mixed; boundary=d%d\n\n--d%d\n",
		    i, i);
	buf_puts(&m, "Content-Type: message/delivery-status\n\n"
	    "Final-Recipient: rfc822; deep@example.com\nStatus: 5.1.1\n");
	r = parse(m.data, &opts);
	tap_ok(r != NULL && r->nrcpt == 0, "nesting is bounded");
	bounce_report_free(r);

	buf_reset(&m);
	buf_puts(&m, "From: MAILER-DAEMON@x.example\nSubject: failure notice\n"
	    "\n<long@example.com>:\n550 5.1.1 ");
	for (int i = 0; i < 5000; i++)
		buf_puts(&m, "\x01\xff\xfe long reason ");
	buf_puts(&m, "\n");
	r = parse(m.data, &opts);
	tap_ok(r != NULL && r->nrcpt == 1 &&
	    strlen(r->rcpt[0].reason) <= BOUNCE_REASON_MAX * 4 &&
	    strcmp(r->rcpt[0].status, "5.1.1") == 0,
	    "a long hostile reason is cut and cleaned");
	if (r != NULL)
		check_reasons(r, "long reason");
	bounce_report_free(r);

	buf_reset(&m);
	buf_puts(&m, "Subject: ids\n\n");
	for (int i = 0; i < 100; i++)
		buf_printf(&m, "Message-ID: <id%d@x.example>\n", i);
	r = parse(m.data, &opts);
	tap_ok(r != NULL && r->nids == BOUNCE_IDS_MAX, "at most %d ids",
	    BOUNCE_IDS_MAX);
	bounce_report_free(r);
	buf_free(&m);
}

int
main(void)
{
	corpus();
	classify();
	not_messages();
	tokens();
	bounds();
	return tap_done();
}
