/* test_consent: unsubscribe tokens, the secret file, opt-outs, caps, codes, locale formats, yearly dates. */
#include "clock.h"
#include "codes.h"
#include "config.h"
#include "consent.h"
#include "format.h"
#include "gate.h"
#include "rules.h"
#include "store.h"
#include "tap.h"

#include <fcntl.h>
#include <stdint.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/test_consent.XXXXXX";

static void
write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	if (fd == -1 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	close(fd);
	chmod(path, mode);
}

static void
test_secret(struct config *cfg)
{
	struct consent *c = NULL;
	struct stat sb;
	char *err = NULL, *path;

	/* Missing, no create: an error naming the file. */
	tap_ok(consent_open(cfg, 0, &c, &err) == FU_PERMFAIL && c == NULL &&
	    err && strstr(err, "unsubscribe.key"), "missing secret: refused "
	    "(%s)", err ? err : "");
	free(err);
	err = NULL;
	tap_ok(consent_open(cfg, 1, &c, &err) == FU_OK && c != NULL,
	    "missing secret with create: made (%s)", err ? err : "");
	consent_free(c);
	c = NULL;
	path = consent_secret_path(cfg);
	tap_ok(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600 &&
	    sb.st_size == 65, "created 0600 with 64 hex digits");
	chmod(path, 0640);
	tap_ok(consent_open(cfg, 1, &c, &err) == FU_PERMFAIL && err &&
	    strstr(err, "chmod 600"), "a group-readable secret is refused");
	free(err);
	err = NULL;
	write_file(path, "short\n", 0600);
	tap_ok(consent_open(cfg, 0, &c, &err) == FU_PERMFAIL,
	    "a secret under 32 bytes is refused");
	free(err);
	free(path);
}

static void
test_tokens(struct config *cfg)
{
	struct consent *a = NULL, *b = NULL;
	char *t, *t2, *addr = NULL, *cls = NULL, *err = NULL, *path, *url;
	char bad[600];

	path = consent_secret_path(cfg);
	write_file(path, "0123456789abcdef0123456789abcdef-secret-one\n", 0600);
	consent_open(cfg, 0, &a, &err);
	write_file(path, "0123456789abcdef0123456789abcdef-secret-two\n", 0600);
	consent_open(cfg, 0, &b, &err);
	tap_ok(a && b, "two secrets loaded (%s)", err ? err : "");
	free(err);
	free(path);
	if (a == NULL || b == NULL)
		return;

	t = consent_token(a, "Ana.Garcia@Example.com", "marketing");
	tap_ok(strncmp(t, "YW5hLmdhcmNpYUBleGFtcGxlLmNvbQ.marketing.", 41) == 0 &&
	    strlen(t) == 41 + 43, "token: base64url(lower-cased address)."
	    "class.mac (%s)", t);
	tap_ok(consent_token_check(a, t, &addr, &cls) == FU_OK &&
	    strcmp(addr, "ana.garcia@example.com") == 0 &&
	    strcmp(cls, "marketing") == 0, "a valid token gives its address "
	    "and class");
	free(addr);
	free(cls);
	t2 = consent_token(a, "ana.garcia@example.com", "marketing");
	tap_str(t2, t, "the same token for any spelling of the address");
	free(t2);
	tap_ok(consent_token_check(b, t, &addr, &cls) == FU_PERMFAIL &&
	    addr == NULL && cls == NULL, "another secret: refused");

	/* Every single-character change is refused. */
	{
		int all = 1;

		for (size_t i = 0; i < strlen(t); i++) {
			snprintf(bad, sizeof(bad), "%s", t);
			bad[i] = bad[i] == 'A' ? 'B' : 'A';
			if (consent_token_check(a, bad, &addr, &cls) == FU_OK) {
				all = 0;
				tap_diag("accepted with position %zu changed", i);
				free(addr);
				free(cls);
			}
		}
		tap_ok(all, "any changed character: refused");
	}
	/* Class swapped, truncated, empty, junk. */
	snprintf(bad, sizeof(bad), "%.30s.all.%s", t, t + 41);
	tap_ok(consent_token_check(a, bad, &addr, &cls) == FU_PERMFAIL,
	    "the class changed: refused");
	snprintf(bad, sizeof(bad), "%.*s", (int)strlen(t) - 1, t);
	tap_ok(consent_token_check(a, bad, &addr, &cls) == FU_PERMFAIL,
	    "truncated: refused");
	tap_ok(consent_token_check(a, "", &addr, &cls) == FU_PERMFAIL &&
	    consent_token_check(a, NULL, &addr, &cls) == FU_PERMFAIL &&
	    consent_token_check(a, "..", &addr, &cls) == FU_PERMFAIL &&
	    consent_token_check(a, "a.marketing.b", &addr, &cls) ==
	    FU_PERMFAIL, "empty and junk tokens: refused");
	memset(bad, 'A', sizeof(bad) - 1);
	bad[sizeof(bad) - 1] = '\0';
	tap_ok(consent_token_check(a, bad, &addr, &cls) == FU_PERMFAIL,
	    "an over-long token: refused");
	/* A token whose address has upper case is never made: refused. */
	{
		char *u = consent_token(a, "x@y.z", "all");

		tap_ok(consent_token_check(a, u, &addr, &cls) == FU_OK &&
		    strcmp(cls, "all") == 0, "class all round-trips");
		free(addr);
		free(cls);
		free(u);
	}
	url = consent_unsubscribe_url(cfg, a, "ana@example.com", "marketing");
	tap_ok(strncmp(url, "https://unsub.example/u?t=", 26) == 0,
	    "the URL: [unsubscribe] url?t=TOKEN (%s)", url);
	free(url);
	url = consent_mailto(cfg, "ana@example.com", "marketing");
	tap_str(url, "mailto:support@example.com?subject=unsubscribe%20marketing",
	    "mailto: the sender's address by default");
	free(url);
	free(t);
	consent_free(a);
	consent_free(b);
}

/* PRAGMA user_version of the database at path, through a connection of our own. */
static int
schema_version(const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	int v = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) ==
	    SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW)
			v = sqlite3_column_int(s, 0);
		sqlite3_finalize(s);
	}
	sqlite3_close(db);
	return v;
}

/*
 * What the gate says before sending a message of class cls to addr
 * (consent alone): NULL for go, else the reason; *failed 1 on an error.
 */
static const char *
blocked(struct store *st, const char *addr, const char *cls, int *failed)
{
	static const struct config none;
	struct job job = { .recipient = (char *)(uintptr_t)addr,
	    .cls = (char *)(uintptr_t)cls, .rule = (char *)"r" };
	struct gate_result g;
	const char *why;
	char *err = NULL;

	*failed = gate_deliver(&none, st, &job, &g, &err) != FU_OK;
	why = g.verdict == GATE_GO ? NULL : g.reason;
	gate_result_clear(&g);
	free(err);
	return why;
}

static void
test_list_and_caps(void)
{
	struct store *st;
	char path[256], *err = NULL, *code = NULL;
	const char *why;
	int n, tempfail, clash;
	time_t oldest;
	int64_t id;

	snprintf(path, sizeof(path), "%s/state.db", dir);
	if (store_open(path, 1000, &st, &err) != FU_OK) {
		tap_ok(0, "store_open: %s", err);
		free(err);
		return;
	}
	tap_ok(schema_version(path) >= 3, "schema 3 (consent) migrated");
	tap_ok(consent_optout_add(st, "Bob@Example.com", "marketing", "test",
	    100, &n, &err) == FU_OK && n == 1, "optout add");
	consent_optout_add(st, "bob@example.com", "marketing", "again", 101, &n,
	    &err);
	tap_ok(n == 0, "a second add of any spelling changes nothing");
	why = blocked(st, "BOB@example.COM", "marketing", &tempfail);
	tap_ok(why && strcmp(why, "opted-out") == 0, "marketing blocked");
	tap_ok(blocked(st, "bob@example.com", "transactional", &tempfail) ==
	    NULL && !tempfail, "transactional still goes");
	store_suppress(st, "bob@example.com", "550 no such user", 102, &err);
	why = blocked(st, "bob@example.com", "transactional", &tempfail);
	tap_ok(why && strcmp(why, "suppressed") == 0,
	    "a suppression blocks every class");
	consent_optout_remove(st, "bob@example.com", "suppressed", &n, &err);
	tap_ok(n == 1, "remove --class suppressed lifts it");
	consent_optout_remove(st, "BOB@example.com", NULL, &n, &err);
	tap_ok(n == 1 && blocked(st, "bob@example.com", "marketing",
	    &tempfail) == NULL && !tempfail, "remove: mail may go again");

	/* Caps: marketing messages queued in the window. */
	for (int i = 0; i < 3; i++) {
		int created;
		char subj[8];
		struct job_note note = { NULL, i == 2 ? "transactional" :
		    "marketing", NULL, NULL };

		snprintf(subj, sizeof(subj), "%d", i);
		store_job_plan_noted(st, i == 2 ? "checkin" : "bday", subj,
		    "2027", 1000, 1000, &note, &created, &id, &err);
		store_job_queued(st, id, "ann@example.com", "m@x", "x.eml",
		    1000 + i * 100, &err);
	}
	tap_ok(store_cap_count(st, "ANN@example.com", NULL, 1500 - 3600, &n,
	    &oldest, &err) == FU_OK && n == 2 && oldest == 1000,
	    "cap count: two marketing messages (not the transactional), "
	    "oldest first (%d, %lld)", n, (long long)oldest);
	store_cap_count(st, "ann@example.com", NULL, 1000 + 3650 - 3600, &n,
	    &oldest, &err);
	tap_ok(n == 1 && oldest == 1100, "the window slides (%d)", n);
	store_cap_count(st, "ann@example.com", "other", 1500 - 3600, &n,
	    &oldest, &err);
	tap_ok(n == 0, "per rule: another rule's count is its own");

	/* Codes: stored once per job, unique per rule. */
	tap_ok(codes_put(st, 1, "bday", "0", "ABC", 5, &clash, &err) == FU_OK &&
	    !clash, "codes_put");
	tap_ok(codes_put(st, 2, "bday", "1", "ABC", 5, &clash, &err) == FU_OK &&
	    clash, "the same code for another job of the rule: a clash");
	tap_ok(codes_get(st, 1, &code, &err) == FU_OK && code &&
	    strcmp(code, "ABC") == 0, "codes_get gives it back");
	free(code);
	tap_ok(codes_get(st, 2, &code, &err) == FU_OK && code == NULL,
	    "a job without a code: NULL");
	tap_ok(store_code_for_subject(st, "bday", "0", &code, &err) == FU_OK &&
	    code && strcmp(code, "ABC") == 0, "preview finds it by subject");
	free(code);
	free(err);
	store_close(st);
}

static void
test_random_codes(void)
{
	char c[65];
	int seen[2] = { 0, 0 }, ok = 1;

	for (int i = 0; i < 200; i++) {
		codes_random("XY", 64, c);
		for (int k = 0; k < 64; k++) {
			if (c[k] != 'X' && c[k] != 'Y')
				ok = 0;
			else
				seen[c[k] == 'Y']++;
		}
		if (strlen(c) != 64)
			ok = 0;
	}
	tap_ok(ok, "random codes: only the alphabet, the length asked");
	tap_ok(seen[0] > 5800 && seen[1] > 5800, "both letters equally likely "
	    "(%d, %d of 12800)", seen[0], seen[1]);
}

static void
test_locale(void)
{
	static const struct {
		const char *lang;
		long long cents;
		const char *cur, *want;
	} amounts[] = {
		{ "en", 123450, "EUR", "€1,234.50" },
		{ "en", 5, "USD", "$0.05" },
		{ "en", 100000000, "CHF", "1,000,000.00\u00a0CHF" },
		{ "de", 123450, "EUR", "1.234,50\u00a0€" },
		{ "de", 99, "GBP", "0,99\u00a0£" },
		{ "fr", 123450, "EUR", "1\u202f234,50\u00a0€" },
		{ "es", 123450, "EUR", "1234,50\u00a0€" },
		{ "es", 1234550, "EUR", "12.345,50\u00a0€" },
		{ "en", -250, "EUR", "-€2.50" },
	};
	static const struct {
		const char *lang;
		int y, m, d;
		const char *want;
	} dates[] = {
		{ "en", 2027, 3, 14, "14 March 2027" },
		{ "de", 2027, 3, 14, "14. März 2027" },
		{ "fr", 2027, 3, 1, "1er mars 2027" },
		{ "fr", 2027, 8, 14, "14 août 2027" },
		{ "es", 2027, 3, 14, "14 de marzo de 2027" },
	};

	for (size_t i = 0; i < sizeof(amounts) / sizeof(amounts[0]); i++) {
		struct buf b = { 0 };

		format_amount(amounts[i].lang, amounts[i].cents,
		    amounts[i].cur, &b);
		tap_str(buf_cstr(&b), amounts[i].want, "amount %s %lld %s",
		    amounts[i].lang, amounts[i].cents, amounts[i].cur);
		buf_free(&b);
	}
	for (size_t i = 0; i < sizeof(dates) / sizeof(dates[0]); i++) {
		struct buf b = { 0 };

		format_date(dates[i].lang, dates[i].y, dates[i].m,
		    dates[i].d, &b);
		tap_str(buf_cstr(&b), dates[i].want, "date %s", dates[i].lang);
		buf_free(&b);
	}
	tap_str(format_lang("de-AT"), "de", "de-AT → de");
	tap_str(format_lang("fr_CA"), "fr", "fr_CA → fr");
	tap_str(format_lang("pt-BR"), "en", "pt-BR → en (no format)");
	tap_str(format_lang(NULL), "en", "none → en");
	tap_str(format_lang("esperanto"), "en", "'esperanto' is not es");
}

static void
test_yearly(struct config *cfg)
{
	struct rule_config *r = &cfg->rules[0];
	const struct clock_zone *z = clock_zone("Europe/Berlin");
	struct rules_occurrence o;
	char a[20];
	time_t now;

	r->kind = RULE_BIRTHDAY;
	r->send_at_min = 9 * 60;
	r->lookback = 7 * 86400;
	r->feb29 = RULE_FEB29_FEB28;
	clock_parse("2027-02-27 12:00:00", &now);
	tap_ok(rules_occurrence(cfg, r, z, "1996-02-29", now, &o) == 1 &&
	    strcmp(o.occurrence, "2027") == 0 && o.years == 31 &&
	    strcmp(clock_format_sql(o.due, a), "2027-02-28 08:00:00") == 0,
	    "29 Feb, feb28: 28 Feb 2027 09:00 Berlin (%s)", a);
	r->feb29 = RULE_FEB29_MAR1;
	tap_ok(rules_occurrence(cfg, r, z, "1996-02-29", now, &o) == 0,
	    "feb29 = mar1: not yet due on the 27th");
	clock_parse("2027-02-28 12:00:00", &now);
	tap_ok(rules_occurrence(cfg, r, z, "1996-02-29", now, &o) == 1 &&
	    strcmp(clock_format_sql(o.due, a), "2027-03-01 08:00:00") == 0,
	    "feb29 = mar1: 1 March 2027 (%s)", a);
	clock_parse("2028-02-28 12:00:00", &now);
	tap_ok(rules_occurrence(cfg, r, z, "1996-02-29", now, &o) == 1 &&
	    strcmp(clock_format_sql(o.due, a), "2028-02-29 08:00:00") == 0,
	    "a leap year: 29 Feb 2028 (%s)", a);
	tap_ok(rules_occurrence(cfg, r, z, "--02-29", now, &o) == 1 &&
	    o.years == -1, "--MM-DD: no age");
	tap_ok(rules_occurrence(cfg, r, z, "1997-02-29", now, &o) == -1 &&
	    rules_occurrence(cfg, r, z, "--13-01", now, &o) == -1 &&
	    rules_occurrence(cfg, r, z, "14/03", now, &o) == -1 &&
	    rules_occurrence(cfg, r, z, NULL, now, &o) == -1,
	    "not a date: -1");
	clock_parse("2027-12-31 23:30:00", &now);
	tap_ok(rules_occurrence(cfg, r, clock_zone("UTC"), "--01-01", now,
	    &o) == 1 && strcmp(o.occurrence, "2028") == 0,
	    "across the new year: next year's occurrence");
	tap_ok(rules_occurrence_years(r, z, "1996-02-29", "2028") == 32,
	    "{{years}} from the occurrence");
}

int
main(void)
{
	struct buf errs = { 0 };
	struct config *cfg;
	char conf[256];
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
	tap_ok(cfg != NULL, "config loads (%s)", buf_cstr(&errs));
	if (cfg != NULL) {
		tap_ok(cfg->rules[0].cls == RULE_CLASS_MARKETING &&
		    cfg->rules[0].send_at_min == 540 && cfg->rules[0].delay == 0,
		    "birthday: marketing, 09:00, no delay by default");
		test_secret(cfg);
		test_tokens(cfg);
		test_list_and_caps();
		test_yearly(cfg);
	}
	test_random_codes();
	test_locale();
	config_free(cfg);
	clock_zones_free();
	buf_free(&errs);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			tap_diag("could not remove %s", dir);
	}
	return tap_done();
}
