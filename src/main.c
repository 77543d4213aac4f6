/* main: the command line: run, once, check, preview, status, queue, optout, codes, why. */
#include "clock.h"
#include "codes.h"
#include "config.h"
#include "consent.h"
#include "daemon.h"
#include "explain.h"
#include "log.h"
#include "mime.h"
#include "render.h"
#include "rules.h"
#include "source.h"
#include "spool.h"
#include "store.h"
#include "term.h"
#include "unsubscribe.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sysexits.h>
#include <unistd.h>

static const char usage_text[] =
"usage: followupd [-c scheduler.conf] [-d] [-v] COMMAND [ARGS]\n"
"\n"
"commands:\n"
"  run                       the daemon: a tick every `tick` seconds\n"
"  once [--now TIME]         exactly one tick (plan, render, deliver) at TIME\n"
"  check                     validate the config, templates and source schema\n"
"  preview RULE ID [--html | --text] [--now TIME]\n"
"                            print the message RULE would send for source row ID\n"
"  preview RULE --sample N   render N source rows, report missing variables\n"
"  status [--json]           jobs per rule and state, next due, the daemon\n"
"  queue list [--state S] [--rule R] [--json]\n"
"  queue show JOB            a job, its decision history and its message\n"
"  queue retry JOB|--all-deferred    send again at the next tick\n"
"  queue cancel JOB|--all-deferred   cancel (never sent)\n"
"  queue hold JOB|--all-deferred     put aside: nothing renders or sends it\n"
"  queue release JOB|--all-held      undo hold\n"
"  optout add|remove|list [EMAIL] [--class C] [--reason TEXT]\n"
"                            the opt-out list (and lifting suppressions)\n"
"  codes RULE                the personal codes RULE gave, for the shop\n"
"  why EMAIL|CUSTOMER_ID     every job for a customer: decision and reason\n"
"  unsubscribe-server        serve one-click unsubscribe (RFC 8058)\n"
"\n"
"options:\n"
"  -c FILE   the configuration (default: ./scheduler.conf)\n"
"  -d        log to stderr, not syslog (the default for all but `run`)\n"
"  -v        debug logging\n"
"\n"
"TIME is UTC: \"YYYY-MM-DD HH:MM:SS\" or \"YYYY-MM-DDTHH:MM:SSZ\".\n"
"`followupd COMMAND --help` describes one command.\n";

static const struct {
	const char *cmd, *help;
} command_help[] = {
	{ "run", "usage: followupd run\n"
	    "Run as a daemon: a tick every `tick` seconds (or sooner when a job "
	    "is due).\nSIGTERM or SIGINT stops it after the SMTP session in "
	    "flight. One instance per\nqueue directory.\n" },
	{ "once", "usage: followupd once [--now TIME]\n"
	    "Run exactly one tick at TIME (default: now): plan new jobs, "
	    "render what is\ndue, deliver what is queued. Decisions are "
	    "logged to stderr.\n" },
	{ "check", "usage: followupd check\n"
	    "Validate the configuration, parse every template and prepare "
	    "every rule's\nquery against the source. Each problem is printed "
	    "as FILE:LINE: message.\nExit 0 when all is well, 78 (EX_CONFIG) "
	    "otherwise.\n" },
	{ "preview", "usage: followupd preview RULE ID [--html | --text] "
	    "[--now TIME]\n"
	    "       followupd preview RULE --sample N [--now TIME]\n"
	    "Print the complete message RULE would send for the source row "
	    "whose key is ID.\n--html: the HTML part as a page, the headers "
	    "shown above it (open it in a\nbrowser); --text: the text part. "
	    "--sample N renders the first N rows of\nthe rule's query and "
	    "reports every template variable that was missing or empty\n(exit "
	    "65 when one is missing from the data in every row: a typo).\n"
	    "Writes nothing, sends nothing.\n" },
	{ "status", "usage: followupd status [--json] [--now TIME]\n"
	    "The daemon (pid, uptime), jobs per rule and state, cancellations "
	    "by reason,\nthe oldest queued message, the next due time, "
	    "deferred jobs with their last\nreply, deliveries in the last hour "
	    "and day, the last error. --json: the same\nas one JSON object.\n" },
	{ "queue", "usage: followupd queue list [--state S] [--rule R] [--json]\n"
	    "       followupd queue show JOB\n"
	    "       followupd queue retry JOB|--all-deferred\n"
	    "       followupd queue cancel JOB|--all-deferred\n"
	    "       followupd queue hold JOB|--all-deferred\n"
	    "       followupd queue release JOB|--all-held\n"
	    "retry: due at the next tick (deferred, failed, queued or held "
	    "jobs); cancel:\nnever sent; hold: nothing renders or sends the "
	    "job until it is released;\nrelease: back to planned or queued, "
	    "with its old times.\n" },
	{ "optout", "usage: followupd optout add EMAIL [--class marketing|"
	    "transactional|all] [--reason TEXT]\n"
	    "       followupd optout remove EMAIL [--class marketing|"
	    "transactional|all|suppressed]\n"
	    "       followupd optout list\n"
	    "add: EMAIL gets no more mail of that class (default marketing); "
	    "jobs already\nplanned or queued are cancelled (opted-out) at "
	    "render and before delivery.\nremove: every class unless --class; "
	    "--class suppressed lifts a hard-bounce\nsuppression. list: "
	    "opt-outs and suppressions.\n" },
	{ "codes", "usage: followupd codes RULE\n"
	    "Every personal code RULE gave a message, tab-separated: code, "
	    "subject,\nrecipient, state, issued_at (UTC), under a header line."
	    "\n" },
	{ "why", "usage: followupd why EMAIL|CUSTOMER_ID\n"
	    "Every job for that recipient or customer with its decision (sent "
	    "at, cancelled\nbecause ..., planned for ...) and history "
	    "(postponed by quiet hours or a cap),\nthen the address's "
	    "opt-outs and suppression.\n" },
	{ "unsubscribe-server", "usage: followupd unsubscribe-server\n"
	    "Serve the one-click unsubscribe endpoint on [unsubscribe] listen "
	    "and port\nuntil SIGTERM or SIGINT: POST with "
	    "List-Unsubscribe=One-Click and a valid\ntoken records the opt-out "
	    "(200); GET shows a confirmation page; a bad token\ngets 400.\n" },
};

/* ---- JSON output (status --json, queue list --json) ---- */

/* A JSON string: quotes, backslash and control characters escaped; UTF-8 passes. */
static void
json_str(FILE *f, const char *s)
{
	struct buf clean = { 0 };

	if (s == NULL) {
		fputs("null", f);
		return;
	}
	if (!utf8_valid(s, strlen(s))) {	/* JSON is UTF-8: U+FFFD instead */
		utf8_sanitize(s, strlen(s), (size_t)1 << 30, &clean);
		s = buf_cstr(&clean);
	}
	putc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c == '\r')
			fputs("\\r", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			putc(c, f);
	}
	putc('"', f);
	buf_free(&clean);
}

/* A number column from SQLite (text), or null. */
static void
json_num(FILE *f, const char *v)
{
	char *end;

	if (v == NULL || *v == '\0') {
		fputs("null", f);
		return;
	}
	(void)strtod(v, &end);
	if (*end != '\0')
		json_str(f, v);
	else
		fputs(v, f);
}

/* A Unix time column as RFC 3339 UTC text, or null (0 and NULL: none). */
static void
json_time(FILE *f, const char *v)
{
	char iso[21];
	long long t = v ? strtoll(v, NULL, 10) : 0;

	if (t <= 0)
		fputs("null", f);
	else
		json_str(f, clock_format_iso((time_t)t, iso));
}

/*
 * A Unix time column in zone z as ISO 8601 local time with its offset
 * ("2026-11-05T10:00:00+01:00"), or null like json_time.
 */
static void
json_local(FILE *f, const struct clock_zone *z, const char *v)
{
	char local[32];
	long long t = v ? strtoll(v, NULL, 10) : 0;

	if (t <= 0)
		fputs("null", f);
	else
		json_str(f, clock_format_local_iso(z, (time_t)t, local));
}

/* `, "NAME_local": "…+01:00", "timezone": "Europe/Berlin"` for one time. */
static void
json_local_field(FILE *f, const struct clock_zone *z, const char *name,
    const char *v)
{
	fprintf(f, ", \"%s_local\": ", name);
	json_local(f, z, v);
	fputs(", \"timezone\": ", f);
	json_str(f, clock_zone_name(z));
}

static int
usage(void)
{
	fputs(usage_text, stderr);
	return EX_USAGE;
}

static int
wants_help(int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return 1;
	return 0;
}

static int
command_usage(const char *cmd, FILE *f)
{
	for (size_t i = 0; i < sizeof(command_help) / sizeof(command_help[0]);
	    i++)
		if (strcmp(command_help[i].cmd, cmd) == 0) {
			fputs(command_help[i].help, f);
			return f == stdout ? EX_OK : EX_USAGE;
		}
	fputs(usage_text, f);
	return EX_USAGE;
}

/* Exit status for a failed operation of the given class. */
static int
exit_for(int r)
{
	return r == FU_TEMPFAIL ? EX_TEMPFAIL : r == FU_PERMFAIL ?
	    EX_DATAERR : EX_OK;
}

static struct config *
load_config(const char *path)
{
	struct buf errs = { 0 };
	struct config *cfg = config_load(path, &errs);

	if (cfg == NULL)
		fputs(buf_cstr(&errs), stderr);
	buf_free(&errs);
	return cfg;
}

struct opts {
	int			 json;		/* status */
	enum preview_mode_opt { OPT_MESSAGE, OPT_HTML, OPT_TEXT } mode;
	int			 sample;	/* preview --sample N */
};

/*
 * The command's options: --now TIME for every command that takes it;
 * --json for status; --html, --text, --sample N for preview.
 */
static int
parse_now(int argc, char **argv, int first, const char *cmd,
    struct opts *o)
{
	int preview = strcmp(cmd, "preview") == 0;

	for (int i = first; i < argc; i++) {
		time_t t;

		if (strcmp(argv[i], "--now") == 0 && i + 1 < argc) {
			if (clock_parse(argv[++i], &t) != FU_OK) {
				fprintf(stderr, "followupd %s: --now '%s': "
				    "not a UTC time (use \"YYYY-MM-DD "
				    "HH:MM:SS\")\n", cmd, argv[i]);
				return -1;
			}
			clock_set_now(t);
		} else if (strcmp(cmd, "status") == 0 &&
		    strcmp(argv[i], "--json") == 0)
			o->json = 1;
		else if (preview && strcmp(argv[i], "--html") == 0 &&
		    o->mode == OPT_MESSAGE)
			o->mode = OPT_HTML;
		else if (preview && strcmp(argv[i], "--text") == 0 &&
		    o->mode == OPT_MESSAGE)
			o->mode = OPT_TEXT;
		else {
			fprintf(stderr, "followupd %s: unexpected argument "
			    "'%s'\n", cmd, argv[i]);
			command_usage(cmd, stderr);
			return -1;
		}
	}
	return 0;
}

static int
cmd_tick(const struct config *cfg, int run)
{
	struct daemon *d;
	char *err = NULL;
	int r, status;

	if ((r = daemon_open(cfg, &d, &err)) != FU_OK) {
		log_warnx("%s", err);
		free(err);
		return r == FU_TEMPFAIL ? EX_TEMPFAIL : EX_CONFIG;
	}
	if (run)
		status = daemon_run(d);
	else {
		/* A deferred delivery is normal operation, not a failure of
		 * `once`; only an unfinished tick is. */
		r = daemon_tick(d, clock_now(), &err);
		status = r == FU_OK ? EX_OK : EX_TEMPFAIL;
		free(err);
	}
	daemon_close(d);
	return status;
}

/* Whole-table reads in the desk's query plans: warnings, not problems. */
static void
check_plans(const struct config *cfg, struct source *src)
{
	struct buf plans = { 0 };
	char *err = NULL, *line, *next;

	if (explain_source(cfg, src, &plans, &err) < 0)
		fprintf(stderr, "%s: warning: query plans not checked: %s\n",
		    cfg->path, err);
	for (line = plans.data; line != NULL && *line; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		fprintf(stderr, "%s: warning: %s\n", cfg->path, line);
	}
	buf_free(&plans);
	free(err);
}

static int
cmd_check(const struct config *cfg)
{
	struct buf errs = { 0 };
	struct render *rd;
	struct source *src;
	char *err = NULL;
	int nproblems;

	if ((rd = render_open(cfg, 1, &errs)) != NULL)
		render_close(rd);
	if (source_open(cfg->database, cfg->busy_timeout_ms, &src, &err) !=
	    FU_OK) {
		buf_printf(&errs, "%s:%d: [source] database: %s\n", cfg->path,
		    cfg->database_line, err);
		free(err);
		err = NULL;
	} else {
		for (int i = 0; i < cfg->nrules; i++) {
			const struct rule_config *r = &cfg->rules[i];

			if (source_check_query(src, rules_query(r),
			    rules_required_columns, &err) != FU_OK)
				buf_printf(&errs, "%s:%d: [rule %s] %s%s\n",
				    cfg->path, r->query ? r->query_line :
				    r->line, r->name, r->query ? "" :
				    "the source does not have the reference "
				    "schema: ", err);
			free(err);
			err = NULL;
			if (r->history && rules_check_history(src, &err) !=
			    FU_OK)
				buf_printf(&errs, "%s:%d: [rule %s] history.* "
				    "needs the reference schema's tickets and "
				    "purchases: %s (or set history = no)\n",
				    cfg->path, r->line, r->name, err);
			free(err);
			err = NULL;
		}
		{
			/* Unknown zones in the data: reported once each, not fatal. */
			struct buf warn = { 0 };

			if (rules_check_zones(cfg, src, &warn, &err) == FU_OK &&
			    warn.len > 0)
				fprintf(stderr, "%s", warn.data);
			buf_free(&warn);
			free(err);
			err = NULL;
		}
		check_plans(cfg, src);
		source_close(src);
	}
	nproblems = 0;
	for (size_t i = 0; i < errs.len; i++)
		if (errs.data[i] == '\n')
			nproblems++;
	if (nproblems) {
		fputs(errs.data, stderr);
		fprintf(stderr, "%s: %d problem%s\n", cfg->path, nproblems,
		    nproblems == 1 ? "" : "s");
		buf_free(&errs);
		return EX_CONFIG;
	}
	printf("%s: configuration, %d rule%s, templates and source schema OK\n",
	    cfg->path, cfg->nrules, cfg->nrules == 1 ? "" : "s");
	buf_free(&errs);
	return EX_OK;
}

/* ---- preview ---- */

enum preview_mode {
	PREVIEW_MESSAGE,	/* the RFC 5322 message (default) */
	PREVIEW_HTML,		/* the HTML part as a page, headers above it */
	PREVIEW_TEXT,		/* the text part */
};

static void
html_escape(struct buf *out, const char *s)
{
	for (; s && *s; s++)
		switch (*s) {
		case '&': buf_puts(out, "&amp;"); break;
		case '<': buf_puts(out, "&lt;"); break;
		case '>': buf_puts(out, "&gt;"); break;
		case '"': buf_puts(out, "&quot;"); break;
		case '\'': buf_puts(out, "&#39;"); break;
		default: buf_putc(out, *s);
		}
}

static void
header_row(struct buf *b, const char *name, const char *value)
{
	buf_printf(b, "<tr><th style=\"text-align:right;padding:1px 8px 1px 0;"
	    "font-weight:bold;vertical-align:top\">%s:</th><td>", name);
	html_escape(b, value);
	buf_puts(b, "</td></tr>\n");
}

/*
 * The HTML part as a page to open in a browser, with the message's headers
 * in a box above it. The box goes right after the part's own <body> so the
 * part's styles still apply; a part without one is wrapped in a page.
 */
static void
preview_page(const struct render_parts *p, const char *rule, const char *key,
    struct buf *out)
{
	struct buf box = { 0 }, to = { 0 };
	char date[20];
	const char *html = p->html, *body = NULL;

	if (p->to_name && *p->to_name)
		buf_printf(&to, "%s <%s>", p->to_name, p->to_addr);
	else
		buf_puts(&to, p->to_addr);
	buf_puts(&box, "\n<div id=\"followupd-preview\" style=\"margin:0;"
	    "padding:10px 14px;background:#fff8dc;border-bottom:1px solid "
	    "#d8cf9c;font:13px/1.45 monospace;color:#222;text-align:left\">\n"
	    "<table style=\"border-collapse:collapse;font:inherit\">\n");
	header_row(&box, "From", p->from);
	header_row(&box, "To", buf_cstr(&to));
	header_row(&box, "Subject", p->subject);
	buf_printf(&box, "<tr><th style=\"text-align:right;padding:1px 8px 1px "
	    "0\">Date:</th><td>%s UTC</td></tr>\n",
	    clock_format_sql(p->date, date));
	header_row(&box, "Message-ID", p->message_id);
	buf_puts(&box, "</table>\n<div style=\"color:#776\">followupd preview "
	    "of rule ");
	html_escape(&box, rule);
	buf_puts(&box, ", source row ");
	html_escape(&box, key);
	buf_puts(&box, p->html ? ": nothing was sent.</div>\n</div>\n" :
	    ": the rule has no HTML template; this is the text part."
	    "</div>\n</div>\n");
	if (html != NULL)
		for (const char *q = html; (q = strchr(q, '<')) != NULL; q++)
			if (strncasecmp(q, "<body", 5) == 0 &&
			    (q[5] == '>' || q[5] == ' ' || q[5] == '\t' ||
			    q[5] == '\n')) {
				body = strchr(q, '>');
				break;
			}
	if (body != NULL) {
		buf_append(out, html, (size_t)(body + 1 - html));
		buf_puts(out, box.data);
		buf_puts(out, body + 1);
	} else {
		buf_puts(out, "<!DOCTYPE html>\n<html>\n<head>\n<meta charset="
		    "\"utf-8\">\n<title>");
		html_escape(out, p->subject);
		buf_puts(out, "</title>\n</head>\n<body style=\"margin:0\">");
		buf_puts(out, box.data);
		if (html != NULL)
			buf_puts(out, html);
		else {
			buf_puts(out, "<pre style=\"padding:12px 14px;"
			    "white-space:pre-wrap\">");
			html_escape(out, p->text);
			buf_puts(out, "</pre>");
		}
		buf_puts(out, "\n</body>\n</html>\n");
	}
	buf_free(&box);
	buf_free(&to);
}

/* --sample: per variable, in how many rows it was missing or empty. */
struct var_report {
	char	*name;
	char	 templates[32];	/* "subject, text, html" */
	int	 missing, empty;
	struct buf keys;
};

struct sample_report {
	struct var_report *vars;
	int	 nvars;
	int	 rows, rendered, blocked, failed;
	struct buf keys;
};

static void
sample_row(const char *key, int result, const struct render_parts *p,
    const char *why, void *arg)
{
	struct sample_report *sr = arg;

	sr->rows++;
	buf_printf(&sr->keys, "%s%s", sr->keys.len ? ", " : "", key);
	if (result != FU_OK) {
		if (strncmp(why ? why : "", "would not be sent", 17) == 0)
			sr->blocked++;
		else
			sr->failed++;
		printf("  row %s: %s\n", key, why ? why : "cannot be rendered");
		return;
	}
	sr->rendered++;
	for (const char *l = buf_cstr((struct buf *)(uintptr_t)&p->missing);
	    *l; l = strchr(l, '\n') + 1) {
		size_t n = strcspn(l, "\t");
		const char *kind = l + n + 1, *tpl = strchr(kind, '\t') + 1;
		size_t tn = strcspn(tpl, "\n");
		struct var_report *v = NULL;

		for (int i = 0; i < sr->nvars; i++)
			if (strlen(sr->vars[i].name) == n &&
			    strncmp(sr->vars[i].name, l, n) == 0)
				v = &sr->vars[i];
		if (v == NULL) {
			sr->vars = xrealloc(sr->vars, (size_t)(sr->nvars + 1) *
			    sizeof(*sr->vars));
			v = &sr->vars[sr->nvars++];
			memset(v, 0, sizeof(*v));
			v->name = xstrndup(l, n);
		}
		if (strncmp(kind, "missing", 7) == 0)
			v->missing++;
		else
			v->empty++;
		{
			char tname[16];

			snprintf(tname, sizeof(tname), "%.*s", (int)tn, tpl);
			if (strstr(v->templates, tname) == NULL)
				snprintf(v->templates + strlen(v->templates),
				    sizeof(v->templates) -
				    strlen(v->templates), "%s%s",
				    *v->templates ? ", " : "", tname);
		}
		buf_printf(&v->keys, "%s%s", v->keys.len ? ", " : "", key);
	}
}

static int
preview_sample(struct render *rd, struct source *src, const char *rule,
    int n)
{
	struct sample_report sr;
	char *err = NULL;
	int r, typos = 0;

	memset(&sr, 0, sizeof(sr));
	printf("preview %s --sample %d:\n", rule, n);
	r = render_sample(rd, src, rule, n, clock_now(), sample_row, &sr, &err);
	if (r != FU_OK) {
		fprintf(stderr, "followupd preview: %s\n", err);
		free(err);
	} else {
		printf("%d row%s (keys %s): %d rendered, %d would not be sent, "
		    "%d could not be rendered\n", sr.rows, sr.rows == 1 ? "" :
		    "s", sr.rows ? buf_cstr(&sr.keys) : "-", sr.rendered,
		    sr.blocked, sr.failed);
		if (sr.nvars == 0 && sr.rendered > 0)
			printf("every template variable had a value in every "
			    "rendered row\n");
		else if (sr.nvars > 0)
			printf("template variables missing or empty:\n");
		for (int i = 0; i < sr.nvars; i++) {
			struct var_report *v = &sr.vars[i];
			int all = v->missing == sr.rendered;

			printf("  %-28s %s in %d of %d row%s (keys %s) [%s]%s\n",
			    v->name, v->missing ? (v->empty ? "missing or empty"
			    : "missing") : "empty", v->missing + v->empty,
			    sr.rendered, sr.rendered == 1 ? "" : "s",
			    buf_cstr(&v->keys), v->templates, all ?
			    ": not in the data of any row: a typo?" : "");
			typos += all;
		}
		if (sr.rows == 0)
			printf("the rule's query returned no rows\n");
	}
	for (int i = 0; i < sr.nvars; i++) {
		free(sr.vars[i].name);
		buf_free(&sr.vars[i].keys);
	}
	free(sr.vars);
	buf_free(&sr.keys);
	if (r != FU_OK)
		return r == FU_TEMPFAIL ? EX_TEMPFAIL : EX_NOINPUT;
	return typos || sr.failed ? EX_DATAERR : EX_OK;
}

static int
cmd_preview(const struct config *cfg, const char *rule, const char *key,
    enum preview_mode mode, int sample)
{
	struct buf errs = { 0 }, out = { 0 };
	struct render_parts parts;
	struct render *rd;
	struct source *src;
	char *err = NULL;
	int r;

	if ((rd = render_open(cfg, 1, &errs)) == NULL) {
		fputs(buf_cstr(&errs), stderr);
		buf_free(&errs);
		return EX_CONFIG;
	}
	if ((r = source_open(cfg->database, cfg->busy_timeout_ms, &src,
	    &err)) != FU_OK) {
		fprintf(stderr, "followupd preview: %s\n", err);
		free(err);
		render_close(rd);
		return r == FU_TEMPFAIL ? EX_TEMPFAIL : EX_NOINPUT;
	}
	source_set_query_timeout(src, cfg->query_timeout_ms);
	if (sample > 0) {
		r = preview_sample(rd, src, rule, sample);
		source_close(src);
		render_close(rd);
		return r;
	}
	r = render_preview_parts(rd, src, rule, key, clock_now(), &parts, &err);
	if (r == FU_OK) {
		if (mode == PREVIEW_HTML)
			preview_page(&parts, rule, key, &out);
		else if (mode == PREVIEW_TEXT)
			buf_puts(&out, parts.text);
		else
			buf_append(&out, parts.message.data, parts.message.len);
		fwrite(out.data, 1, out.len, stdout);
	} else
		fprintf(stderr, "followupd preview: %s\n", err);
	render_parts_clear(&parts);
	free(err);
	buf_free(&out);
	source_close(src);
	render_close(rd);
	return r == FU_OK ? EX_OK : r == FU_TEMPFAIL ? EX_TEMPFAIL :
	    EX_NOINPUT;
}

static struct store *
open_store(const struct config *cfg)
{
	char *path = store_path(cfg->queue_dir), *err = NULL;
	struct spool *sp;
	struct store *st = NULL;

	/* The queue directory may not exist yet on a fresh install. */
	if (spool_open(cfg->queue_dir, &sp, &err) == FU_OK) {
		spool_close(sp);
		if (store_open(path, cfg->busy_timeout_ms, &st, &err) != FU_OK)
			st = NULL;
	}
	if (st == NULL) {
		fprintf(stderr, "followupd: %s\n", err);
		free(err);
	}
	free(path);
	return st;
}

static void
print_row(int n, char *const *names, char *const *values, void *arg)
{
	const char *fmt = arg;

	(void)names;
	for (int i = 0; i < n; i++) {
		const char *v = values[i] ? values[i] : "-";

		if (fmt && fmt[i] == 'l')
			printf("%-12s", v);
		else if (fmt && fmt[i] == 'r')
			printf("%10s", v);
		else
			printf("%s%s", v, i + 1 < n ? "  " : "");
	}
	printf("\n");
}

/* ---- status ---- */

/* A whole query result as rows of NULL-or-text columns. */
struct table {
	int	  ncols, nrows;
	char	**cells;	/* nrows * ncols */
};

static void
table_row(int n, char *const *names, char *const *values, void *arg)
{
	struct table *t = arg;

	(void)names;
	t->ncols = n;
	t->cells = xrealloc(t->cells, (size_t)(t->nrows + 1) * (size_t)n *
	    sizeof(*t->cells));
	for (int i = 0; i < n; i++)
		t->cells[t->nrows * n + i] = values[i] ? xstrdup(values[i]) :
		    NULL;
	t->nrows++;
}

static const char *
cell(const struct table *t, int row, int col)
{
	return t->cells[row * t->ncols + col];
}

static void
table_free(struct table *t)
{
	for (int i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

static int
table_query(struct store *st, struct table *t, const char *sql,
    const char *const *params)
{
	char *err = NULL;
	int r;

	memset(t, 0, sizeof(*t));
	if ((r = store_query_params(st, sql, params, table_row, t, &err)) !=
	    FU_OK) {
		fprintf(stderr, "followupd: %s\n", err);
		free(err);
	}
	return r;
}

/* "2026-11-05 10:00:00 UTC" from a Unix time column ("-" when none). */
static const char *
utc_text(const char *v, char buf[32])
{
	char sql[20];
	long long t = v ? strtoll(v, NULL, 10) : 0;

	if (t <= 0)
		return "-";
	snprintf(buf, 32, "%s UTC", clock_format_sql((time_t)t, sql));
	return buf;
}

/*
 * The zone a job's times are shown in: the recipient's (jobs.tz, kept
 * resolved when the job was planned), else [defaults] timezone, else UTC
 * (jobs planned before schema 2 have none).
 */
static const struct clock_zone *
job_zone(const struct config *cfg, const char *tz)
{
	return clock_zone_or(tz, clock_zone_or(cfg->timezone,
	    clock_zone_utc()));
}

/* Room for a local time, its offset and an IANA name (64 at most, config.c). */
#define LOCAL_TEXT_MAX	112

/* "2026-11-05 10:00 +01:00 Europe/Berlin" from a Unix time column, or "-". */
static const char *
local_text(const struct config *cfg, const char *v, const char *tz,
    char buf[LOCAL_TEXT_MAX])
{
	const struct clock_zone *z = job_zone(cfg, tz);
	long long t = v ? strtoll(v, NULL, 10) : 0;
	char local[32];

	if (t <= 0)
		return "-";
	snprintf(buf, LOCAL_TEXT_MAX, "%s %s", clock_format_local(z,
	    (time_t)t, local), clock_zone_name(z));
	return buf;
}

/* UTC and the recipient's wall clock, as `queue show` prints them both. */
static const char *
when_text(const struct config *cfg, const char *v, const char *tz,
    char buf[32 + LOCAL_TEXT_MAX])
{
	char utc[32], local[LOCAL_TEXT_MAX];

	if (v == NULL || strtoll(v, NULL, 10) <= 0)
		return "-";
	snprintf(buf, 32 + LOCAL_TEXT_MAX, "%s (%s)", utc_text(v, utc),
	    local_text(cfg, v, tz, local));
	return buf;
}

/* The daemon holding the queue's lock: its pid, or 0 when none runs. */
static long
daemon_pid(const struct config *cfg)
{
	char *path = xasprintf("%s/followupd.pid", cfg->queue_dir);
	char text[32] = "";
	long pid = 0;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
		/* The lock is held (flock) for the life of the daemon. */
		if (flock(fd, LOCK_SH | LOCK_NB) == -1 && errno == EWOULDBLOCK) {
			n = pread(fd, text, sizeof(text) - 1, 0);
			text[n > 0 ? n : 0] = '\0';
			pid = strtol(text, NULL, 10);
			if (pid <= 0)
				pid = -1;	/* running, pid unknown */
		}
		close(fd);
	}
	free(path);
	return pid;
}

static const char *const status_states[] = { "planned", "queued", "sending",
    "deferred", "held", "sent", "failed", "cancelled" };
#define NSTATUS_STATES	(sizeof(status_states) / sizeof(status_states[0]))

struct status {
	long		 pid;
	char		*started, *last_tick, *last_error;
	struct table	 rules, reasons, next, deferred, oldest, recent,
			 lasterr;
	time_t		 now;
};

static int
status_load(const struct config *cfg, struct store *st, struct status *S)
{
	struct buf sql = { 0 };
	char now[32], hour[32], day[32];
	const char *const p_now[] = { now, NULL };
	const char *const p_recent[] = { hour, day, NULL };
	int r;

	S->now = clock_now();
	snprintf(now, sizeof(now), "%lld", (long long)S->now);
	snprintf(hour, sizeof(hour), "%lld", (long long)S->now - 3600);
	snprintf(day, sizeof(day), "%lld", (long long)S->now - 86400);
	S->pid = daemon_pid(cfg);
	S->started = store_meta_get(st, "started_at");
	S->last_tick = store_meta_get(st, "last_tick");
	S->last_error = store_meta_get(st, "last_error");
	buf_puts(&sql, "SELECT rule");
	for (size_t i = 0; i < NSTATUS_STATES; i++)
		buf_printf(&sql, ", sum(state = '%s')", status_states[i]);
	buf_puts(&sql, " FROM jobs GROUP BY rule ORDER BY rule");
	r = table_query(st, &S->rules, sql.data, NULL);
	buf_free(&sql);
	if (r == FU_OK)
		r = table_query(st, &S->reasons, "SELECT rule, state, reason, "
		    "count(*) FROM jobs WHERE reason IS NOT NULL GROUP BY rule, "
		    "state, reason ORDER BY rule, state, reason", NULL);
	if (r == FU_OK)
		r = table_query(st, &S->next, "SELECT id, rule, subject, state, "
		    "t, tz FROM (SELECT id, rule, subject, state, tz, CASE state "
		    "WHEN 'planned' THEN due_at ELSE next_attempt_at END AS t FROM jobs "
		    "WHERE state IN ('planned', 'queued', 'deferred')) ORDER BY t, "
		    "id LIMIT 1", NULL);
	if (r == FU_OK)
		r = table_query(st, &S->deferred, "SELECT id, rule, subject, "
		    "attempts, next_attempt_at, last_reply, tz FROM jobs WHERE state = "
		    "'deferred' ORDER BY next_attempt_at, id LIMIT 20", NULL);
	if (r == FU_OK)
		r = table_query(st, &S->oldest, "SELECT id, rule, subject, state, "
		    "queued_at, max(CAST(?1 AS INTEGER) - queued_at, 0), tz FROM jobs "
		    "WHERE state IN ('queued', 'deferred', 'sending') AND queued_at "
		    "IS NOT NULL ORDER BY queued_at, id LIMIT 1", p_now);
	if (r == FU_OK)
		r = table_query(st, &S->recent, "SELECT "
		    "coalesce(sum(at >= CAST(?1 AS INTEGER)), 0), "
		    "coalesce(sum(at >= CAST(?2 AS INTEGER)), 0), "
		    "(SELECT count(*) FROM events WHERE event IN "
		    "('unknown-outcome', 'interrupted')) FROM events "
		    "WHERE event = 'sent' AND at >= CAST(?2 AS INTEGER)", p_recent);
	if (r == FU_OK)
		r = table_query(st, &S->lasterr, "SELECT id, rule, subject, state, "
		    "updated_at, last_reply, tz FROM jobs WHERE state IN ('deferred', "
		    "'failed') AND last_reply IS NOT NULL ORDER BY updated_at DESC, "
		    "id DESC LIMIT 1", NULL);
	return r;
}

static void
status_free(struct status *S)
{
	free(S->started);
	free(S->last_tick);
	free(S->last_error);
	table_free(&S->rules);
	table_free(&S->reasons);
	table_free(&S->next);
	table_free(&S->deferred);
	table_free(&S->oldest);
	table_free(&S->recent);
	table_free(&S->lasterr);
}

/* Seconds since a stored "YYYY-MM-DD HH:MM:SS" (UTC), or -1. */
static long
since(const char *sqltime, time_t now)
{
	time_t t;

	if (sqltime == NULL || clock_parse(sqltime, &t) != FU_OK)
		return -1;
	return now >= t ? (long)(now - t) : 0;
}

static void
print_duration(long s)
{
	if (s >= 86400)
		printf("%ldd%02ldh%02ldm", s / 86400, s / 3600 % 24, s / 60 % 60);
	else if (s >= 3600)
		printf("%ldh%02ldm", s / 3600, s / 60 % 60);
	else if (s >= 60)
		printf("%ldm%02lds", s / 60, s % 60);
	else
		printf("%lds", s);
}

static void
status_text(const struct config *cfg, const struct status *S)
{
	char b1[32 + LOCAL_TEXT_MAX];

	printf("queue: %s\n", cfg->queue_dir);
	if (S->pid != 0) {
		printf("daemon: running");
		if (S->pid > 0)
			printf(", pid %ld", S->pid);
		if (since(S->started, time(NULL)) >= 0) {
			printf(", up ");
			print_duration(since(S->started, time(NULL)));
			printf(" (since %s UTC)", S->started);
		}
		printf("\n\n");
	} else
		printf("daemon: not running\n\n");
	printf("%-12s", "rule");
	for (size_t i = 0; i < NSTATUS_STATES; i++)
		printf("%10s", status_states[i]);
	printf("\n");
	for (int i = 0; i < S->rules.nrows; i++) {
		printf("%-12s", cell(&S->rules, i, 0));
		for (size_t c = 0; c < NSTATUS_STATES; c++)
			printf("%10s", cell(&S->rules, i, 1 + (int)c) ?
			    cell(&S->rules, i, 1 + (int)c) : "0");
		printf("\n");
	}
	printf("\nwhy not sent (cancelled or failed, by reason):\n");
	for (int i = 0; i < S->reasons.nrows; i++)
		printf("  %s %s %s: %s\n", cell(&S->reasons, i, 0),
		    cell(&S->reasons, i, 1), cell(&S->reasons, i, 2),
		    cell(&S->reasons, i, 3));
	printf("\noldest waiting for delivery:\n");
	for (int i = 0; i < S->oldest.nrows; i++) {
		printf("  job %s (%s %s, %s), queued %s, ",
		    cell(&S->oldest, i, 0), cell(&S->oldest, i, 1),
		    cell(&S->oldest, i, 2), cell(&S->oldest, i, 3),
		    when_text(cfg, cell(&S->oldest, i, 4), cell(&S->oldest, i,
		    6), b1));
		print_duration(strtol(cell(&S->oldest, i, 5), NULL, 10));
		printf(" ago\n");
	}
	printf("\nnext due:\n");
	for (int i = 0; i < S->next.nrows; i++)
		printf("  %s  job %s (%s %s, %s)\n", when_text(cfg,
		    cell(&S->next, i, 4), cell(&S->next, i, 5), b1),
		    cell(&S->next, i, 0), cell(&S->next, i, 1),
		    cell(&S->next, i, 2), cell(&S->next, i, 3));
	printf("\ndeferred:\n");
	for (int i = 0; i < S->deferred.nrows; i++)
		printf("  job %s %s %s, attempt %s, next %s: %s\n",
		    cell(&S->deferred, i, 0), cell(&S->deferred, i, 1),
		    cell(&S->deferred, i, 2), cell(&S->deferred, i, 3),
		    when_text(cfg, cell(&S->deferred, i, 4),
		    cell(&S->deferred, i, 6), b1),
		    cell(&S->deferred, i, 5) ? cell(&S->deferred, i, 5) : "");
	printf("\ndelivered: %s in the last hour, %s in the last day\n",
	    S->recent.nrows ? cell(&S->recent, 0, 0) : "0",
	    S->recent.nrows ? cell(&S->recent, 0, 1) : "0");
	printf("unknown outcome (the message went, no reply came): %s, "
	    "unknown_outcome = %s\n", S->recent.nrows && cell(&S->recent, 0,
	    2) ? cell(&S->recent, 0, 2) : "0", cfg->unknown_outcome ==
	    CONFIG_UNKNOWN_HOLD ? "hold" : "retry");
	printf("\nlast delivery error:\n");
	for (int i = 0; i < S->lasterr.nrows; i++)
		printf("  job %s %s %s (%s, %s): %s\n", cell(&S->lasterr, i, 0),
		    cell(&S->lasterr, i, 1), cell(&S->lasterr, i, 2),
		    cell(&S->lasterr, i, 3), when_text(cfg, cell(&S->lasterr, i,
		    4), cell(&S->lasterr, i, 6), b1), cell(&S->lasterr, i, 5));
	if (S->last_error != NULL)
		printf("\nlast tick problem:\n  %s\n", S->last_error);
	if (S->last_tick != NULL)
		printf("\nlast tick: %s UTC\n", S->last_tick);
}

/* "YYYY-MM-DD HH:MM:SS" (UTC, as meta stores it) as RFC 3339, or null. */
static void
json_sqltime(FILE *f, const char *v)
{
	char iso[21];
	time_t t;

	if (v == NULL || clock_parse(v, &t) != FU_OK)
		fputs("null", f);
	else
		json_str(f, clock_format_iso(t, iso));
}

static void
status_json(const struct config *cfg, const struct status *S)
{
	FILE *f = stdout;
	char iso[21];

	fputs("{\n  \"queue\": ", f);
	json_str(f, cfg->queue_dir);
	fputs(",\n  \"now\": ", f);
	json_str(f, clock_format_iso(S->now, iso));
	fprintf(f, ",\n  \"daemon\": {\"running\": %s, \"pid\": ",
	    S->pid != 0 ? "true" : "false");
	if (S->pid > 0)
		fprintf(f, "%ld", S->pid);
	else
		fputs("null", f);
	fputs(", \"started_at\": ", f);
	if (S->pid != 0)
		json_sqltime(f, S->started);
	else
		fputs("null", f);
	fputs(", \"uptime_seconds\": ", f);
	if (S->pid != 0 && since(S->started, time(NULL)) >= 0)
		fprintf(f, "%ld", since(S->started, time(NULL)));
	else
		fputs("null", f);
	fputs("},\n  \"rules\": {", f);
	for (int i = 0; i < S->rules.nrows; i++) {
		fprintf(f, "%s\n    ", i ? "," : "");
		json_str(f, cell(&S->rules, i, 0));
		fputs(": {", f);
		for (size_t c = 0; c < NSTATUS_STATES; c++) {
			const char *v = cell(&S->rules, i, 1 + (int)c);

			fprintf(f, "%s\"%s\": %s", c ? ", " : "",
			    status_states[c], v ? v : "0");
		}
		fputs("}", f);
	}
	fputs(S->rules.nrows ? "\n  },\n  \"reasons\": [" :
	    "},\n  \"reasons\": [", f);
	for (int i = 0; i < S->reasons.nrows; i++) {
		fprintf(f, "%s\n    {\"rule\": ", i ? "," : "");
		json_str(f, cell(&S->reasons, i, 0));
		fputs(", \"state\": ", f);
		json_str(f, cell(&S->reasons, i, 1));
		fputs(", \"reason\": ", f);
		json_str(f, cell(&S->reasons, i, 2));
		fputs(", \"count\": ", f);
		json_num(f, cell(&S->reasons, i, 3));
		fputs("}", f);
	}
	fputs(S->reasons.nrows ? "\n  ],\n  \"oldest_queued\": " :
	    "],\n  \"oldest_queued\": ", f);
	if (S->oldest.nrows) {
		fputs("{\"job\": ", f);
		json_num(f, cell(&S->oldest, 0, 0));
		fputs(", \"rule\": ", f);
		json_str(f, cell(&S->oldest, 0, 1));
		fputs(", \"subject\": ", f);
		json_str(f, cell(&S->oldest, 0, 2));
		fputs(", \"state\": ", f);
		json_str(f, cell(&S->oldest, 0, 3));
		fputs(", \"queued_at\": ", f);
		json_time(f, cell(&S->oldest, 0, 4));
		json_local_field(f, job_zone(cfg, cell(&S->oldest, 0, 6)),
		    "queued_at", cell(&S->oldest, 0, 4));
		fputs(", \"age_seconds\": ", f);
		json_num(f, cell(&S->oldest, 0, 5));
		fputs("}", f);
	} else
		fputs("null", f);
	fputs(",\n  \"next_due\": ", f);
	if (S->next.nrows) {
		fputs("{\"job\": ", f);
		json_num(f, cell(&S->next, 0, 0));
		fputs(", \"rule\": ", f);
		json_str(f, cell(&S->next, 0, 1));
		fputs(", \"subject\": ", f);
		json_str(f, cell(&S->next, 0, 2));
		fputs(", \"state\": ", f);
		json_str(f, cell(&S->next, 0, 3));
		fputs(", \"at\": ", f);
		json_time(f, cell(&S->next, 0, 4));
		json_local_field(f, job_zone(cfg, cell(&S->next, 0, 5)), "at",
		    cell(&S->next, 0, 4));
		fputs("}", f);
	} else
		fputs("null", f);
	fputs(",\n  \"deferred\": [", f);
	for (int i = 0; i < S->deferred.nrows; i++) {
		fprintf(f, "%s\n    {\"job\": ", i ? "," : "");
		json_num(f, cell(&S->deferred, i, 0));
		fputs(", \"rule\": ", f);
		json_str(f, cell(&S->deferred, i, 1));
		fputs(", \"subject\": ", f);
		json_str(f, cell(&S->deferred, i, 2));
		fputs(", \"attempts\": ", f);
		json_num(f, cell(&S->deferred, i, 3));
		fputs(", \"next_attempt_at\": ", f);
		json_time(f, cell(&S->deferred, i, 4));
		json_local_field(f, job_zone(cfg, cell(&S->deferred, i, 6)),
		    "next_attempt_at", cell(&S->deferred, i, 4));
		fputs(", \"last_reply\": ", f);
		json_str(f, cell(&S->deferred, i, 5));
		fputs("}", f);
	}
	fputs(S->deferred.nrows ? "\n  ],\n" : "],\n", f);
	fputs("  \"delivered\": {\"last_hour\": ", f);
	json_num(f, S->recent.nrows ? cell(&S->recent, 0, 0) : "0");
	fputs(", \"last_day\": ", f);
	json_num(f, S->recent.nrows ? cell(&S->recent, 0, 1) : "0");
	fputs("},\n  \"unknown_outcomes\": ", f);
	json_num(f, S->recent.nrows && cell(&S->recent, 0, 2) ?
	    cell(&S->recent, 0, 2) : "0");
	fputs(",\n  \"last_delivery_error\": ", f);
	if (S->lasterr.nrows) {
		fputs("{\"job\": ", f);
		json_num(f, cell(&S->lasterr, 0, 0));
		fputs(", \"rule\": ", f);
		json_str(f, cell(&S->lasterr, 0, 1));
		fputs(", \"subject\": ", f);
		json_str(f, cell(&S->lasterr, 0, 2));
		fputs(", \"state\": ", f);
		json_str(f, cell(&S->lasterr, 0, 3));
		fputs(", \"at\": ", f);
		json_time(f, cell(&S->lasterr, 0, 4));
		json_local_field(f, job_zone(cfg, cell(&S->lasterr, 0, 6)), "at",
		    cell(&S->lasterr, 0, 4));
		fputs(", \"reply\": ", f);
		json_str(f, cell(&S->lasterr, 0, 5));
		fputs("}", f);
	} else
		fputs("null", f);
	fputs(",\n  \"last_tick_problem\": ", f);
	json_str(f, S->last_error);
	fputs(",\n  \"last_tick\": ", f);
	json_sqltime(f, S->last_tick);
	fputs("\n}\n", f);
}

static int
cmd_status(const struct config *cfg, int json)
{
	struct store *st = open_store(cfg);
	struct status S;
	int r;

	if (st == NULL)
		return EX_TEMPFAIL;
	memset(&S, 0, sizeof(S));
	if ((r = status_load(cfg, st, &S)) == FU_OK) {
		if (json)
			status_json(cfg, &S);
		else
			status_text(cfg, &S);
	}
	status_free(&S);
	store_close(st);
	return exit_for(r);
}

static int
parse_job_id(const char *s, int64_t *id)
{
	char *end;
	long long v = strtoll(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v <= 0) {
		fprintf(stderr, "followupd queue: '%s' is not a job id\n", s);
		return -1;
	}
	*id = v;
	return 0;
}

static int
queue_list(const struct config *cfg, struct store *st, int argc, char **argv)
{
	const char *state = NULL, *rule = NULL, *params[3] = { NULL };
	enum job_state s;
	struct table t;
	struct buf sql = { 0 };
	int r, json = 0, np = 0;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--state") == 0 && i + 1 < argc)
			state = argv[++i];
		else if (strcmp(argv[i], "--rule") == 0 && i + 1 < argc)
			rule = argv[++i];
		else if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else
			return command_usage("queue", stderr);
	}
	if (state && store_state_parse(state, &s) != FU_OK) {
		fprintf(stderr, "followupd queue list: unknown state '%s' (one "
		    "of planned, queued, sending, deferred, held, sent, failed, "
		    "cancelled)\n", state);
		return EX_USAGE;
	}
	/* The filter values are compared, not pasted: bound parameters. */
	buf_puts(&sql, "SELECT id, rule, subject, occurrence, state, due_at, "
	    "next_attempt_at, attempts, recipient, reason, last_reply, "
	    "CASE WHEN state IN ('queued', 'deferred') THEN next_attempt_at "
	    "ELSE due_at END, tz FROM jobs WHERE 1");
	if (state) {
		params[np++] = state;
		buf_printf(&sql, " AND state = ?%d", np);
	}
	if (rule) {
		params[np++] = rule;
		buf_printf(&sql, " AND rule = ?%d", np);
	}
	buf_puts(&sql, " ORDER BY id");
	r = table_query(st, &t, sql.data, params);
	buf_free(&sql);
	if (r != FU_OK)
		return exit_for(r);
	if (json) {
		static const char *const keys[] = { "id", "rule", "subject",
		    "occurrence", "state", "due_at", "next_attempt_at",
		    "attempts", "recipient", "reason", "last_reply" };

		fputs("[", stdout);
		for (int i = 0; i < t.nrows; i++) {
			fputs(i ? ",\n  {" : "\n  {", stdout);
			for (int c = 0; c < 11; c++) {
				printf("%s\"%s\": ", c ? ", " : "", keys[c]);
				if (c == 0 || c == 7)
					json_num(stdout, cell(&t, i, c));
				else if (c == 5 || c == 6)
					json_time(stdout, cell(&t, i, c));
				else
					json_str(stdout, cell(&t, i, c));
			}
			/* The recipient's wall clock next to each UTC time. */
			fputs(", \"due_at_local\": ", stdout);
			json_local(stdout, job_zone(cfg, cell(&t, i, 12)),
			    cell(&t, i, 5));
			json_local_field(stdout, job_zone(cfg, cell(&t, i, 12)),
			    "next_attempt_at", cell(&t, i, 6));
			fputs("}", stdout);
		}
		fputs(t.nrows ? "\n]\n" : "]\n", stdout);
	} else {
		char b[32], lb[LOCAL_TEXT_MAX];
		int lw = (int)strlen("due/next (recipient's time)");

		/* The local column is as wide as its longest zone name needs. */
		for (int i = 0; i < t.nrows; i++) {
			int n = (int)strlen(local_text(cfg, cell(&t, i, 11),
			    cell(&t, i, 12), lb));

			lw = n > lw ? n : lw;
		}
		printf("%-6s %-12s %-10s %-10s %-24s %-*s %-24s %s\n", "id",
		    "rule", "subject", "state", "due/next (UTC)", lw,
		    "due/next (recipient's time)", "recipient",
		    "reason / reply");
		for (int i = 0; i < t.nrows; i++) {
			const char *reason = cell(&t, i, 9), *reply =
			    cell(&t, i, 10);

			printf("%-6s %-12s %-10s %-10s %-24s %-*s %-24s %s%s%s\n",
			    cell(&t, i, 0), cell(&t, i, 1), cell(&t, i, 2),
			    cell(&t, i, 4), utc_text(cell(&t, i, 11), b), lw,
			    local_text(cfg, cell(&t, i, 11), cell(&t, i, 12), lb),
			    cell(&t, i, 8) ? cell(&t, i, 8) : "-",
			    reason ? reason : "", reason && reply ? " " : "",
			    reply ? reply : "");
		}
	}
	table_free(&t);
	return EX_OK;
}

static int
queue_show(const struct config *cfg, struct store *st, int64_t id)
{
	struct job j;
	const struct clock_zone *z;
	char *err = NULL, *tz, idtext[32];
	char due[20], next[20], local[32];
	int r;

	if ((r = store_job_get(st, id, &j, &err)) != FU_OK) {
		fprintf(stderr, "followupd queue show: %s\n", err);
		free(err);
		return EX_NOINPUT;
	}
	printf("job:          %lld\nrule:         %s\nsubject:      %s\n"
	    "occurrence:   %s\nstate:        %s\ndue:          %s UTC\n",
	    (long long)j.id, j.rule, j.subject, j.occurrence,
	    store_state_name(j.state), clock_format_sql(j.due_at, due));
	/* The recipient's wall clock next to UTC (schema 2 keeps the zone). */
	tz = store_job_tz(st, j.id);
	z = job_zone(cfg, tz);
	free(tz);
	printf("due (local):  %s %s\n", clock_format_local(z, j.due_at, local),
	    clock_zone_name(z));
	if (j.next_attempt_at)
		printf("next attempt: %s UTC (%s %s)\n",
		    clock_format_sql(j.next_attempt_at, next),
		    clock_format_local(z, j.next_attempt_at, local),
		    clock_zone_name(z));
	printf("attempts:     %d\n", j.attempts);
	printf("recipient:    %s\n", j.recipient ? j.recipient : "-");
	printf("message-id:   %s%s%s\n", j.message_id ? "<" : "",
	    j.message_id ? j.message_id : "-", j.message_id ? ">" : "");
	if (j.reason)
		printf("reason:       %s\n", j.reason);
	if (j.last_reply)
		printf("last reply:   %s\n", j.last_reply);
	printf("\nhistory:\n");
	snprintf(idtext, sizeof(idtext), "%lld", (long long)id);
	store_query(st, "SELECT '  ' || datetime(at, 'unixepoch') || ' UTC  ' "
	    "|| event || coalesce(': ' || detail, '') FROM events WHERE "
	    "job_id = ?1 ORDER BY id", idtext, print_row, NULL, NULL);
	if (j.spool_name && (j.state == JOB_QUEUED || j.state == JOB_DEFERRED ||
	    j.state == JOB_SENDING || j.state == JOB_HELD)) {
		struct spool *sp;
		struct buf msg = { 0 };

		if (spool_open(cfg->queue_dir, &sp, &err) == FU_OK) {
			if (spool_read(sp, j.spool_name, &msg, &err) == FU_OK)
				printf("\nmessage (%s):\n%s", j.spool_name,
				    msg.data);
			spool_close(sp);
		}
		buf_free(&msg);
		free(err);
	}
	store_job_clear(&j);
	return EX_OK;
}

/* One operator action on one job. */
static int
queue_act(struct store *st, const char *action, int64_t id, char **err)
{
	time_t now = clock_now();

	if (strcmp(action, "retry") == 0)
		return store_job_retry(st, id, now, err);
	if (strcmp(action, "hold") == 0)
		return store_job_hold(st, id, now, err);
	if (strcmp(action, "release") == 0)
		return store_job_release(st, id, now, err);
	return store_job_cancel(st, id, "operator", "cancelled by the operator",
	    now, err);
}

static const char *
queue_done_text(const char *action)
{
	if (strcmp(action, "retry") == 0)
		return "will be sent at the next tick";
	if (strcmp(action, "hold") == 0)
		return "held (queue release to undo)";
	if (strcmp(action, "release") == 0)
		return "released";
	return "cancelled";
}

/* --all-deferred / --all-held: every job in that state, in one transaction. */
static int
queue_act_all(struct store *st, const char *action, const char *state)
{
	const char *const params[] = { state, NULL };
	struct table t;
	char *err = NULL;
	int r;

	if ((r = store_begin(st, &err)) != FU_OK)
		goto fail;
	if ((r = store_query_params(st, "SELECT id FROM jobs WHERE state = ?1 "
	    "ORDER BY id", params, table_row, memset(&t, 0, sizeof(t)),
	    &err)) != FU_OK)
		goto fail;
	for (int i = 0; i < t.nrows && r == FU_OK; i++)
		r = queue_act(st, action, strtoll(cell(&t, i, 0), NULL, 10),
		    &err);
	if (r == FU_OK)
		r = store_commit(st, &err);
	if (r != FU_OK) {
		store_rollback(st);
		table_free(&t);
		goto fail;
	}
	printf("%d %s job%s: %s\n", t.nrows, state, t.nrows == 1 ? "" : "s",
	    queue_done_text(action));
	table_free(&t);
	return EX_OK;
fail:
	fprintf(stderr, "followupd queue %s: %s\n", action, err);
	free(err);
	return exit_for(r);
}

static int
cmd_queue(const struct config *cfg, int argc, char **argv)
{
	static const char *const actions[] = { "retry", "cancel", "hold",
	    "release", NULL };
	struct store *st;
	const char *all = NULL;
	int64_t id = 0;
	char *err = NULL;
	int r, status, action = 0;

	if (argc < 1)
		return command_usage("queue", stderr);
	for (int i = 0; actions[i]; i++)
		if (strcmp(argv[0], actions[i]) == 0)
			action = 1;
	if (strcmp(argv[0], "list") != 0) {
		if (argc != 2 || (strcmp(argv[0], "show") != 0 && !action))
			return command_usage("queue", stderr);
		if (action && strcmp(argv[1], "--all-deferred") == 0 &&
		    strcmp(argv[0], "release") != 0)
			all = "deferred";
		else if (strcmp(argv[0], "release") == 0 &&
		    strcmp(argv[1], "--all-held") == 0)
			all = "held";
		else if (argv[1][0] == '-' && argv[1][1] == '-') {
			fprintf(stderr, "followupd queue %s: unknown option "
			    "'%s' (%s)\n", argv[0], argv[1], strcmp(argv[0],
			    "release") == 0 ? "release takes JOB or --all-held" :
			    "use JOB or --all-deferred");
			return EX_USAGE;
		} else if (parse_job_id(argv[1], &id) != 0)
			return EX_USAGE;
	}
	if ((st = open_store(cfg)) == NULL)
		return EX_TEMPFAIL;
	if (strcmp(argv[0], "list") == 0)
		status = queue_list(cfg, st, argc - 1, argv + 1);
	else if (strcmp(argv[0], "show") == 0)
		status = queue_show(cfg, st, id);
	else if (all != NULL)
		status = queue_act_all(st, argv[0], all);
	else {
		r = queue_act(st, argv[0], id, &err);
		if (r == FU_OK)
			printf("job %lld: %s\n", (long long)id,
			    queue_done_text(argv[0]));
		else
			fprintf(stderr, "followupd queue %s: %s\n", argv[0],
			    err);
		free(err);
		status = exit_for(r);
	}
	store_close(st);
	return status;
}

int
main(int argc, char **argv)
{
	const char *conf = getenv("FOLLOWUPD_CONFIG");
	struct config *cfg;
	struct opts opts;
	int ch, foreground = 0, verbose = 0, status;
	const char *cmd;

	term_guard_stdio();	/* no terminal escapes from data, anywhere */
	memset(&opts, 0, sizeof(opts));
	if (conf == NULL)
		conf = "scheduler.conf";
	/* "+": stop at the command; its own options follow it. */
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};

	while ((ch = getopt_long(argc, argv, "+c:dhv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			conf = optarg;
			break;
		case 'd':
			foreground = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return EX_OK;
		default:
			return usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		return usage();
	cmd = argv[0];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return EX_OK;
	}
	if (wants_help(argc - 1, argv + 1))
		return command_usage(cmd, stdout);
	/* Only the daemon goes to syslog; commands talk to the terminal. */
	log_init(strcmp(cmd, "run") != 0 || foreground, verbose);

	if (strcmp(cmd, "run") == 0 || strcmp(cmd, "once") == 0 ||
	    strcmp(cmd, "preview") == 0 || strcmp(cmd, "status") == 0) {
		int first = strcmp(cmd, "preview") == 0 ? 3 : 1;

		if (strcmp(cmd, "preview") == 0 && argc < 3)
			return command_usage(cmd, stderr);
		if (strcmp(cmd, "preview") == 0 &&
		    strcmp(argv[2], "--sample") == 0) {
			char *end;
			long n = argc > 3 ? strtol(argv[3], &end, 10) : 0;

			if (argc < 4 || *argv[3] == '\0' || *end != '\0' ||
			    n < 1 || n > 100000) {
				fprintf(stderr, "followupd preview: --sample "
				    "needs a number of rows (1 to 100000)\n");
				return EX_USAGE;
			}
			opts.sample = (int)n;
			first = 4;
		}
		if (strcmp(cmd, "run") == 0 && argc > 1)
			return command_usage(cmd, stderr);
		if (parse_now(argc, argv, first, cmd, &opts) != 0)
			return EX_USAGE;
		if (opts.sample && opts.mode != OPT_MESSAGE) {
			fprintf(stderr, "followupd preview: --sample reports "
			    "on many rows; --html and --text show one\n");
			return EX_USAGE;
		}
	} else if (strcmp(cmd, "check") == 0 && argc > 1)
		return command_usage(cmd, stderr);
	else if (strcmp(cmd, "check") != 0 && strcmp(cmd, "status") != 0 &&
	    strcmp(cmd, "queue") != 0 && strcmp(cmd, "optout") != 0 &&
	    strcmp(cmd, "codes") != 0 && strcmp(cmd, "why") != 0 &&
	    strcmp(cmd, "unsubscribe-server") != 0) {
		fprintf(stderr, "followupd: unknown command '%s'\n", cmd);
		return usage();
	}

	if ((cfg = load_config(conf)) == NULL)
		return EX_CONFIG;
	if (strcmp(cmd, "run") == 0)
		status = cmd_tick(cfg, 1);
	else if (strcmp(cmd, "once") == 0)
		status = cmd_tick(cfg, 0);
	else if (strcmp(cmd, "check") == 0)
		status = cmd_check(cfg);
	else if (strcmp(cmd, "preview") == 0)
		status = cmd_preview(cfg, argv[1], argv[2], opts.mode ==
		    OPT_HTML ? PREVIEW_HTML : opts.mode == OPT_TEXT ?
		    PREVIEW_TEXT : PREVIEW_MESSAGE, opts.sample);
	else if (strcmp(cmd, "status") == 0)
		status = cmd_status(cfg, opts.json);
	else if (strcmp(cmd, "optout") == 0)	/* consent.c */
		status = consent_cmd_optout(cfg, argc - 1, argv + 1);
	else if (strcmp(cmd, "why") == 0)
		status = consent_cmd_why(cfg, argc - 1, argv + 1);
	else if (strcmp(cmd, "codes") == 0)	/* codes.c */
		status = codes_cmd(cfg, argc - 1, argv + 1);
	else if (strcmp(cmd, "unsubscribe-server") == 0)	/* unsubscribe.c */
		status = unsubscribe_cmd(cfg, argc - 1, argv + 1);
	else
		status = cmd_queue(cfg, argc - 1, argv + 1);
	config_free(cfg);
	return status;
}
