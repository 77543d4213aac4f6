/* test_compose: golden files for composed messages (Message-ID, time and secret fixed: the same bytes every run). */
#include "clock.h"
#include "compose.h"
#include "config.h"
#include "rules.h"
#include "store.h"
#include "tap.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GOLDEN	"tests/unit/golden"

static char dir[] = "/tmp/test_compose.XXXXXX";

/*
 * Compare a composed message with GOLDEN/NAME.eml; UPDATE_GOLDEN=1 in the
 * environment writes the file instead (then review the diff).
 */
static void
golden(const char *name, const struct buf *got)
{
	char path[256];
	struct buf want = { 0 };
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.eml", GOLDEN, name);
	if (getenv("UPDATE_GOLDEN") != NULL) {
		if ((f = fopen(path, "wb")) == NULL ||
		    fwrite(got->data, 1, got->len, f) != got->len ||
		    fclose(f) != 0)
			tap_ok(0, "%s: cannot write", path);
		else
			tap_diag("%s written", path);
	}
	if (read_file(path, &want, NULL) != FU_OK) {
		tap_ok(0, "%s: missing (UPDATE_GOLDEN=1 makes it)", path);
		return;
	}
	tap_ok(want.len == got->len && memcmp(want.data, got->data,
	    got->len) == 0, "%s: the message is the golden file's "
	    "(%zu bytes, want %zu)", name, got->len, want.len);
	if (want.len != got->len || memcmp(want.data, got->data, got->len))
		tap_diag("got:\n%s", got->data);
	buf_free(&want);
}

static int
rule_index(const struct config *cfg, const char *name)
{
	for (int i = 0; i < cfg->nrules; i++)
		if (strcmp(cfg->rules[i].name, name) == 0)
			return i;
	abort();
}

static time_t
t_of(const char *s)
{
	time_t t;

	if (clock_parse(s, &t) != FU_OK)
		abort();
	return t;
}

static void
test_checkin(struct compose *c, const struct config *cfg)
{
	struct value *ctx = value_map();
	struct buf out = { 0 };
	char *err = NULL;
	int r;

	value_map_set(ctx, "key", value_string("4711"));
	value_map_set(ctx, "at", value_string("2026-11-03 14:30:00"));
	value_map_set(ctx, "email", value_string("ann@example.com"));
	value_map_set(ctx, "name", value_string("Ann <Admin> Example"));
	value_map_set(ctx, "tz", value_string("Europe/Berlin"));
	value_map_set_path(ctx, "ticket.id", value_string("4711"));
	value_map_set_path(ctx, "ticket.subject",
	    value_string("Printer <b>on fire</b>\x01"));
	value_map_set_path(ctx, "customer.name", value_string("Ann Example"));
	value_map_set_path(ctx, "customer.timezone",
	    value_string("America/New_York"));
	r = compose_message(c, rule_index(cfg, "checkin"), ctx,
	    "followupd.1.0123456789abcdef@example.com",
	    t_of("2026-11-06 09:00:00"), &out, &err);
	tap_ok(r == FU_OK, "check-in composed (%s)", err ? err : "");
	if (r == FU_OK)
		golden("checkin", &out);
	/* The same again: nothing kept from the last message. */
	value_free(ctx);
	buf_free(&out);
	free(err);
}

static void
test_promo(struct compose *c, const struct config *cfg, const char *locale,
    const char *name)
{
	struct value *ctx = value_map();
	struct buf out = { 0 };
	char *err = NULL;
	int r;

	value_map_set(ctx, "key", value_string("c9"));
	value_map_set(ctx, "email", value_string("Bo@Example.org"));
	value_map_set(ctx, "name", value_null());
	value_map_set(ctx, "code", value_string("BDAY-7QX"));
	value_map_set_path(ctx, "customer.first_name", value_string(" Bo"));
	if (locale != NULL)
		value_map_set_path(ctx, "customer.locale", value_string(locale));
	value_map_set_path(ctx, "history.total_cents", value_number(123450));
	value_map_set_path(ctx, "history.currency", value_string("EUR"));
	r = compose_message(c, rule_index(cfg, "promo"), ctx,
	    "followupd.2.fedcba9876543210@example.com",
	    t_of("2027-01-15 08:00:00"), &out, &err);
	tap_ok(r == FU_OK, "%s composed (%s)", name, err ? err : "");
	if (r == FU_OK)
		golden(name, &out);
	value_free(ctx);
	buf_free(&out);
	free(err);
}

static void
test_remind(struct compose *c, const struct config *cfg)
{
	struct value *ctx = value_map();
	struct reminder rm = {
		.uid = (char *)(uintptr_t)"followupd-remind-88@example.com",
		.sequence = 1, .active = 1,
		.agent = (char *)(uintptr_t)"agent@example.com",
		.agent_name = (char *)(uintptr_t)"Dana Agent",
		.tz = (char *)(uintptr_t)"Europe/Paris",
		.dtstart = t_of("2026-11-05 09:00:00"),
		.dtend = t_of("2026-11-05 09:15:00"),
	};
	struct buf out = { 0 };
	char *err = NULL;
	int r;

	value_map_set(ctx, "key", value_string("88"));
	value_map_set_path(ctx, "ticket.id", value_string("88"));
	value_map_set_path(ctx, "ticket.subject", value_string("Call back"));
	compose_calendar(cfg, ctx, &rm, "REQUEST");
	r = compose_message(c, rule_index(cfg, "remind"), ctx,
	    "followupd.3.00112233445566ff@example.com",
	    t_of("2026-11-04 12:00:00"), &out, &err);
	tap_ok(r == FU_OK, "reminder composed (%s)", err ? err : "");
	if (r == FU_OK)
		golden("remind", &out);
	value_free(ctx);
	buf_free(&out);
	free(err);
}

/* The parts preview shows, and the variables it reports as missing. */
static void
note(const char *name, const struct value *ctx, const char *part, void *arg)
{
	(void)ctx;
	buf_printf(arg, "%s/%s;", part, name);
}

static void
test_parts(struct compose *c, const struct config *cfg)
{
	struct value *ctx = value_map();
	struct compose_parts p;
	struct buf missing = { 0 }, out = { 0 };
	char *err = NULL;
	int ri = rule_index(cfg, "checkin");

	value_map_set(ctx, "email", value_string("ann@example.com"));
	value_map_set_path(ctx, "ticket.id", value_string("1"));
	tap_ok(compose_parts(c, ri, ctx, "m@example.com",
	    t_of("2026-11-06 09:00:00"), note, &missing, &err) == FU_OK,
	    "parts composed");
	compose_parts_get(c, &p);
	tap_ok(strstr(p.subject, "Ticket 1 was resolved on") != NULL &&
	    p.html != NULL && strstr(p.text, "Hello ,") != NULL,
	    "the parts as rendered");
	tap_ok(strstr(buf_cstr(&missing), "text/customer.greeting_name;") &&
	    strstr(buf_cstr(&missing), "subject/ticket.resolved_weekday;"),
	    "every missing variable reported with its part (%s)",
	    buf_cstr(&missing));
	tap_ok(compose_mime(c, ri, ctx, "m@example.com",
	    t_of("2026-11-06 09:00:00"), &out, &err) == FU_OK &&
	    strstr(buf_cstr(&out), "Message-ID: <m@example.com>"),
	    "then the message");
	value_free(ctx);
	buf_free(&missing);
	buf_free(&out);
	free(err);
}

static struct config *
setup(void)
{
	struct buf errs = { 0 };
	struct config *cfg;
	char conf[256], key[256], cwd[512];
	FILE *f;
	int fd;

	if (mkdtemp(dir) == NULL || getcwd(cwd, sizeof(cwd)) == NULL)
		return NULL;
	snprintf(key, sizeof(key), "%s/unsubscribe.key", dir);
	if ((fd = open(key, O_WRONLY | O_CREAT | O_EXCL, 0600)) == -1 ||
	    write(fd, "00112233445566778899aabbccddeeff"
	    "00112233445566778899aabbccddeeff\n", 65) != 65)
		return NULL;
	close(fd);
	snprintf(conf, sizeof(conf), "%s/t.conf", dir);
	if ((f = fopen(conf, "w")) == NULL)
		return NULL;
	fprintf(f, "[source]\ndatabase = helpdesk.db\n[queue]\ndir = %s\n"
	    "[smtp]\nfrom = \"Acme Support\" <support@example.com>\n"
	    "reply_to = help@example.com\n"
	    "[templates]\ndir = %s/" GOLDEN "/templates\n"
	    "[unsubscribe]\nurl = https://unsub.example/u\n"
	    "[defaults]\ntimezone = Europe/Berlin\n"
	    "[rule checkin]\nkind = after_resolution\ndelay = 3d\n"
	    "[rule promo]\nkind = birthday\n"
	    "[rule remind]\nkind = agent_reminder\ndelay = 1d\n", dir, cwd);
	fclose(f);
	if ((cfg = config_load(conf, &errs)) == NULL)
		tap_ok(0, "config loads: %s", buf_cstr(&errs));
	buf_free(&errs);
	return cfg;
}

int
main(void)
{
	struct buf errs = { 0 };
	struct config *cfg;
	struct compose *c;

	if ((cfg = setup()) == NULL)
		return tap_done();
	if ((c = compose_open(cfg, 0, &errs)) == NULL) {
		tap_ok(0, "compose_open: %s", buf_cstr(&errs));
		return tap_done();
	}
	test_checkin(c, cfg);
	test_checkin(c, cfg);
	test_promo(c, cfg, NULL, "promo");
	test_promo(c, cfg, "de-AT", "promo-de");
	test_remind(c, cfg);
	test_parts(c, cfg);
	compose_close(c);
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
