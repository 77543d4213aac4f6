/* main: the command line (a table of commands): run, once, check, preview, status, queue, optout, codes, why, report, serve. */
#include "clock.h"
#include "bouncecmd.h"
#include "codes.h"
#include "config.h"
#include "consent.h"
#include "daemon.h"
#include "explain.h"
#include "log.h"
#include "mime.h"
#include "preview.h"
#include "ratepage.h"
#include "render.h"
#include "report.h"
#include "rules.h"
#include "source.h"
#include "spool.h"
#include "store.h"
#include "term.h"
#include "unsubscribe.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
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
"  report [--since DURATION] [--by rule|agent|week] [--json|--csv]\n"
"                            rating requests, responses, CSAT/NPS, low ratings\n"
"  serve [--now TIME]        the web pages: one-click unsubscribe, ratings\n"
"  unsubscribe-server        the same as serve\n"
"  bounce [FILE... | --maildir DIR | --explain FILE...]\n"
"                            handle returned mail (stdin for an MTA pipe)\n"
"\n"
"options:\n"
"  -c FILE   the configuration (default: ./scheduler.conf)\n"
"  -d        log to stderr, not syslog (the default for all but `run`)\n"
"  -v        debug logging\n"
"\n"
"TIME is UTC: \"YYYY-MM-DD HH:MM:SS\" or \"YYYY-MM-DDTHH:MM:SSZ\".\n"
"`followupd COMMAND --help` describes one command.\n";

/* What a command's options asked for (parsed before the config is read). */
struct opts {
	int			 json;		/* status */
	enum preview_mode_opt { OPT_MESSAGE, OPT_HTML, OPT_TEXT } mode;
	int			 sample;	/* preview --sample N */
};

/*
 * The commands, as smtpctl keeps them: a name, the text `followupd NAME
 * --help` prints, an optional check of the arguments made before the
 * configuration is read (an exit status; EX_OK goes on), the handler (its
 * arguments are those after the name), and whether it opens the queue
 * (state.db, the spool, the unsubscribe secret), i.e. must run as the
 * queue's owner. cmd_args_fn gets argv from the command's name on.
 */
typedef int cmd_args_fn(int argc, char **argv, struct opts *);
typedef int cmd_fn(const struct config *, int argc, char **argv,
    const struct opts *);
static cmd_args_fn args_none, args_now, args_preview;
static cmd_fn cmd_run, cmd_once, cmd_check, cmd_preview, cmd_status,
    cmd_queue, cmd_optout, cmd_codes, cmd_why, cmd_serve, cmd_report,
    cmd_bounce;

/*
 * What a command does with the queue, for the drop to [queue] user: every
 * command that touches it runs as that user (daemon_drop_privileges), so
 * nothing there is ever created by root.
 */
enum queue_use {
	QUEUE_NONE,		/* never touches it (check) */
	QUEUE_OPENS,		/* main drops first, then runs the command */
	QUEUE_AFTER_SOURCE,	/* opens the source (maybe root's only), then
				 * drops itself: run, once, preview */
};

static const struct command {
	const char	*name;
	const char	*usage;
	cmd_args_fn	*args;
	cmd_fn		*run;
	enum queue_use	 opens_queue;
} commands[] = {
	{ "run", "usage: followupd run\n"
	    "Run as a daemon: a tick every `tick` seconds (or sooner when a job "
	    "is due).\nSIGTERM or SIGINT stops it after the SMTP session in "
	    "flight. One instance per\nqueue directory.\n",
	    args_none, cmd_run, QUEUE_AFTER_SOURCE },
	{ "once", "usage: followupd once [--now TIME]\n"
	    "Run exactly one tick at TIME (default: now): plan new jobs, "
	    "render what is\ndue, deliver what is queued. Decisions are "
	    "logged to stderr.\n",
	    args_now, cmd_once, QUEUE_AFTER_SOURCE },
	{ "check", "usage: followupd check\n"
	    "Validate the configuration, parse every template and prepare "
	    "every rule's\nquery against the source. Each problem is printed "
	    "as FILE:LINE: message.\nExit 0 when all is well, 78 (EX_CONFIG) "
	    "otherwise.\n",
	    args_none, cmd_check, QUEUE_NONE },
	{ "preview", "usage: followupd preview RULE ID [--html | --text] "
	    "[--now TIME]\n"
	    "       followupd preview RULE --sample N [--now TIME]\n"
	    "Print the complete message RULE would send for the source row "
	    "whose key is ID.\n--html: the HTML part as a page, the headers "
	    "shown above it (open it in a\nbrowser); --text: the text part. "
	    "--sample N renders the first N rows of\nthe rule's query and "
	    "reports every template variable that was missing or empty\n(exit "
	    "65 when one is missing from the data in every row: a typo).\n"
	    "Writes nothing, sends nothing.\n",
	    args_preview, cmd_preview, QUEUE_AFTER_SOURCE },
	{ "status", "usage: followupd status [--json] [--now TIME]\n"
	    "The daemon (pid, uptime), jobs per rule and state, cancellations "
	    "by reason,\nthe oldest queued message, the next due time, "
	    "deferred jobs with their last\nreply, deliveries in the last hour "
	    "and day, the last error. --json: the same\nas one JSON object.\n",
	    args_now, cmd_status, QUEUE_OPENS },
	{ "queue", "usage: followupd queue list [--state S] [--rule R] [--json]\n"
	    "       followupd queue show JOB\n"
	    "       followupd queue retry JOB|--all-deferred\n"
	    "       followupd queue cancel JOB|--all-deferred\n"
	    "       followupd queue hold JOB|--all-deferred\n"
	    "       followupd queue release JOB|--all-held\n"
	    "retry: due at the next tick (deferred, failed, queued or held "
	    "jobs); cancel:\nnever sent; hold: nothing renders or sends the "
	    "job until it is released;\nrelease: back to planned or queued, "
	    "with its old times.\n",
	    NULL, cmd_queue, QUEUE_OPENS },
	{ "optout", "usage: followupd optout add EMAIL [--class marketing|"
	    "transactional|all] [--reason TEXT]\n"
	    "       followupd optout remove EMAIL [--class marketing|"
	    "transactional|all|suppressed]\n"
	    "       followupd optout list\n"
	    "add: EMAIL gets no more mail of that class (default marketing); "
	    "jobs already\nplanned or queued are cancelled (opted-out) at "
	    "render and before delivery.\nremove: every class unless --class; "
	    "--class suppressed lifts a hard-bounce\nsuppression. list: "
	    "opt-outs and suppressions.\n",
	    NULL, cmd_optout, QUEUE_OPENS },
	{ "codes", "usage: followupd codes RULE\n"
	    "Every personal code RULE gave a message, tab-separated: code, "
	    "subject,\nrecipient, state, issued_at (UTC), under a header line."
	    "\n",
	    NULL, cmd_codes, QUEUE_OPENS },
	{ "why", "usage: followupd why EMAIL|CUSTOMER_ID\n"
	    "Every job for that recipient or customer with its decision (sent "
	    "at, cancelled\nbecause ..., planned for ...) and history "
	    "(postponed by quiet hours or a cap),\nthen the address's "
	    "opt-outs and suppression.\n",
	    NULL, cmd_why, QUEUE_OPENS },
	{ "report", "usage: followupd report [--since DURATION] [--by rule|agent|"
	    "week] [--json|--csv]\n"
	    "Ratings of the check-ins sent with rating links since DURATION "
	    "ago (default\n30d): requests, responses, the response rate and "
	    "the scale's figure (CSAT:\nshare of 4 and 5; NPS: promoters minus "
	    "detractors; good-bad: share of good),\nper agent or --by rule, "
	    "agent or ISO week, then the low ratings with their\ncomments. "
	    "--json: one object (requests, responses, response_rate, score,\n"
	    "by_agent, low); --csv: one line per group and a total.\n",
	    NULL, cmd_report, QUEUE_OPENS },
	{ "serve", "usage: followupd serve [--now TIME]\n"
	    "Serve the web pages on [unsubscribe] listen and port until SIGTERM "
	    "or SIGINT:\nthe one-click unsubscribe endpoint ([unsubscribe] url: "
	    "POST with\nList-Unsubscribe=One-Click and a valid token records the "
	    "opt-out; GET shows a\nconfirmation page) and the rating page "
	    "([ratings] url: a GET shows the page and\nrecords nothing; its "
	    "form POSTs the rating). A bad token gets 400.\n--now TIME: the "
	    "pages' clock (a rating link's window), for demos and tests.\n",
	    args_now, cmd_serve, QUEUE_OPENS },
	{ "unsubscribe-server", "usage: followupd unsubscribe-server [--now "
	    "TIME]\nAnother name for `followupd serve`.\n",
	    args_now, cmd_serve, QUEUE_OPENS },
	{ "bounce", "usage: followupd bounce\n"
	    "       followupd bounce FILE...\n"
	    "       followupd bounce --maildir DIR\n"
	    "       followupd bounce --explain [FILE...]\n"
	    "Handle returned mail: a DSN, an MTA's bounce, an ARF complaint, "
	    "an auto-reply.\nOne message on standard input (an MTA alias or "
	    "pipe), the files named, or\nevery message in DIR/new (moved to "
	    "DIR/cur, flag S, once recorded). A hard\nbounce suppresses the "
	    "address, soft ones do at [bounces] soft_limit, a\ncomplaint opts "
	    "out; only when the message names one of our jobs (a VERP token"
	    "\nthat verifies, or our Message-ID). --explain changes nothing and "
	    "prints one\nJSON object per recipient. Exit 0 when handled or "
	    "ignored, 75 when state.db\nis busy or the disk full (the MTA "
	    "retries), 65 for input that is no mail.\n",
	    NULL, cmd_bounce, QUEUE_OPENS },
};

/* ---- JSON output (status --json, queue list --json) ---- */


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
		util_json_str(f, v);
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
		util_json_str(f, clock_format_iso((time_t)t, iso));
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
		util_json_str(f, clock_format_local_iso(z, (time_t)t, local));
}

/* `, "NAME_local": "…+01:00", "timezone": "Europe/Berlin"` for one time. */
static void
json_local_field(FILE *f, const struct clock_zone *z, const char *name,
    const char *v)
{
	fprintf(f, ", \"%s_local\": ", name);
	json_local(f, z, v);
	fputs(", \"timezone\": ", f);
	util_json_str(f, clock_zone_name(z));
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

static const struct command *
command_find(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static int
command_usage(const char *cmd, FILE *f)
{
	const struct command *c = command_find(cmd);

	if (c != NULL) {
		fputs(c->usage, f);
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
cmd_run(const struct config *cfg, int argc, char **argv, const struct opts *o)
{
	(void)argc;
	(void)argv;
	(void)o;
	return cmd_tick(cfg, 1);
}

static int
cmd_once(const struct config *cfg, int argc, char **argv, const struct opts *o)
{
	(void)argc;
	(void)argv;
	(void)o;
	return cmd_tick(cfg, 0);
}

static int
cmd_check(const struct config *cfg, int argc, char **argv,
    const struct opts *o)
{
	struct buf errs = { 0 };
	struct render *rd;
	struct source *src;
	char *err = NULL;
	int nproblems;

	(void)argc;
	(void)argv;
	(void)o;
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
header_row(struct buf *b, const char *name, const char *value)
{
	buf_printf(b, "<tr><th style=\"text-align:right;padding:1px 8px 1px 0;"
	    "font-weight:bold;vertical-align:top\">%s:</th><td>", name);
	util_html_escape(b, value);
	buf_puts(b, "</td></tr>\n");
}

/*
 * The HTML part as a page to open in a browser, with the message's headers
 * in a box above it. The box goes right after the part's own <body> so the
 * part's styles still apply; a part without one is wrapped in a page.
 */
static void
preview_page(const struct preview_parts *p, const char *rule, const char *key,
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
	util_html_escape(&box, rule);
	buf_puts(&box, ", source row ");
	util_html_escape(&box, key);
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
		util_html_escape(out, p->subject);
		buf_puts(out, "</title>\n</head>\n<body style=\"margin:0\">");
		buf_puts(out, box.data);
		if (html != NULL)
			buf_puts(out, html);
		else {
			buf_puts(out, "<pre style=\"padding:12px 14px;"
			    "white-space:pre-wrap\">");
			util_html_escape(out, p->text);
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
sample_row(const char *key, int result, const struct preview_parts *p,
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
preview_sample(struct preview *rd, struct source *src, const char *rule,
    int n)
{
	struct sample_report sr;
	char *err = NULL;
	int r, typos = 0;

	memset(&sr, 0, sizeof(sr));
	printf("preview %s --sample %d:\n", rule, n);
	r = preview_samples(rd, src, rule, n, clock_now(), sample_row, &sr,
	    &err);
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
preview(const struct config *cfg, const char *rule, const char *key,
    enum preview_mode mode, int sample)
{
	struct buf errs = { 0 }, out = { 0 };
	struct preview_parts parts;
	struct preview *rd;
	struct source *src;
	char *err = NULL;
	int r;

	/* As run does: the source (maybe root's only) first, then the drop
	 * to [queue] user, then the templates and the queue's secret. */
	if ((r = source_open(cfg->database, cfg->busy_timeout_ms, &src,
	    &err)) != FU_OK) {
		fprintf(stderr, "followupd preview: %s\n", err);
		free(err);
		return r == FU_TEMPFAIL ? EX_TEMPFAIL : EX_NOINPUT;
	}
	source_set_query_timeout(src, cfg->query_timeout_ms);
	if (daemon_drop_privileges(cfg, 0, &err) != FU_OK) {
		fprintf(stderr, "followupd preview: %s\n", err);
		free(err);
		source_close(src);
		return EX_CONFIG;
	}
	if ((rd = preview_open(cfg, &errs)) == NULL) {
		fputs(buf_cstr(&errs), stderr);
		buf_free(&errs);
		source_close(src);
		return EX_CONFIG;
	}
	if (sample > 0) {
		r = preview_sample(rd, src, rule, sample);
		source_close(src);
		preview_close(rd);
		return r;
	}
	r = preview_parts(rd, src, rule, key, clock_now(), &parts, &err);
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
	preview_parts_clear(&parts);
	free(err);
	buf_free(&out);
	source_close(src);
	preview_close(rd);
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

/* ---- status ---- */

static const char *
cell(const struct store_table *t, int row, int col)
{
	return store_cell(t, row, col);
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
    "deferred", "held", "sent", "failed", "cancelled", "bounced" };
#define NSTATUS_STATES	(sizeof(status_states) / sizeof(status_states[0]))

struct status {
	long		 pid;
	char		*started, *last_tick, *last_error;
	struct store_status q;
	time_t		 now;
	/* returned mail in the last [bounces] soft_window, by kind */
	long		 bounced[BOUNCE_NKINDS], bounced_matched[BOUNCE_NKINDS];
};

static int
status_load(const struct config *cfg, struct store *st, struct status *S)
{
	char *err = NULL;
	int r;

	S->now = clock_now();
	S->pid = daemon_pid(cfg);
	S->started = store_meta_get(st, "started_at");
	S->last_tick = store_meta_get(st, "last_tick");
	S->last_error = store_meta_get(st, "last_error");
	if ((r = store_status(st, S->now, status_states, (int)NSTATUS_STATES,
	    &S->q, &err)) != FU_OK) {
		fprintf(stderr, "followupd: %s\n", err);
		free(err);
		return r;
	}
	for (int k = 0; k < BOUNCE_NKINDS && r == FU_OK; k++)
		r = store_bounce_count(st, bounce_kind_name((enum bounce_kind)k),
		    S->now - cfg->bounces_soft_window, &S->bounced[k],
		    &S->bounced_matched[k], &err);
	if (r != FU_OK) {
		fprintf(stderr, "followupd: %s\n", err);
		free(err);
	}
	return r;
}

/* The order kinds are shown in: what suppresses first. */
static const enum bounce_kind bounce_order[] = { BOUNCE_HARD, BOUNCE_SOFT,
    BOUNCE_POLICY, BOUNCE_COMPLAINT, BOUNCE_AUTO_REPLY, BOUNCE_NONE };
#define NBOUNCE_ORDER	(sizeof(bounce_order) / sizeof(bounce_order[0]))

/*
 * Returned mail, matched to a job / all. Policy refusals say nothing about
 * an address but need the operator: they get a line of their own.
 */
static void
status_text_bounces(const struct config *cfg, const struct status *S)
{
	long policy = S->bounced[BOUNCE_POLICY];

	printf("\nbounces in the last %ld days (matched to a job / all):\n ",
	    cfg->bounces_soft_window / 86400);
	for (size_t i = 0; i < NBOUNCE_ORDER; i++)
		printf(" %s %ld/%ld", bounce_kind_name(bounce_order[i]),
		    S->bounced_matched[bounce_order[i]], S->bounced[bounce_order[i]]);
	printf("\n");
	if (policy > 0)
		printf("  ATTENTION: %ld message%s refused by the receiver for "
		    "policy (spam, reputation,\n  content, blocks): not the "
		    "address; see the log's 'bounce:' lines\n", policy,
		    policy == 1 ? "" : "s");
}

static void
status_json_bounces(FILE *f, const struct status *S)
{
	fputs(",\n  \"bounces\": {", f);
	for (size_t i = 0; i < NBOUNCE_ORDER; i++)
		fprintf(f, "%s\"%s\": {\"matched\": %ld, \"all\": %ld}",
		    i ? ", " : "", bounce_kind_name(bounce_order[i]),
		    S->bounced_matched[bounce_order[i]], S->bounced[bounce_order[i]]);
	fputs("}", f);
}

static void
status_free(struct status *S)
{
	free(S->started);
	free(S->last_tick);
	free(S->last_error);
	store_status_free(&S->q);
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
	for (int i = 0; i < S->q.rules.nrows; i++) {
		printf("%-12s", cell(&S->q.rules, i, 0));
		for (size_t c = 0; c < NSTATUS_STATES; c++)
			printf("%10s", cell(&S->q.rules, i, 1 + (int)c) ?
			    cell(&S->q.rules, i, 1 + (int)c) : "0");
		printf("\n");
	}
	printf("\nwhy not sent (cancelled or failed, by reason):\n");
	for (int i = 0; i < S->q.reasons.nrows; i++)
		printf("  %s %s %s: %s\n", cell(&S->q.reasons, i, 0),
		    cell(&S->q.reasons, i, 1), cell(&S->q.reasons, i, 2),
		    cell(&S->q.reasons, i, 3));
	printf("\noldest waiting for delivery:\n");
	for (int i = 0; i < S->q.oldest.nrows; i++) {
		printf("  job %s (%s %s, %s), queued %s, ",
		    cell(&S->q.oldest, i, 0), cell(&S->q.oldest, i, 1),
		    cell(&S->q.oldest, i, 2), cell(&S->q.oldest, i, 3),
		    when_text(cfg, cell(&S->q.oldest, i, 4), cell(&S->q.oldest, i,
		    6), b1));
		print_duration(strtol(cell(&S->q.oldest, i, 5), NULL, 10));
		printf(" ago\n");
	}
	printf("\nnext due:\n");
	for (int i = 0; i < S->q.next.nrows; i++)
		printf("  %s  job %s (%s %s, %s)\n", when_text(cfg,
		    cell(&S->q.next, i, 4), cell(&S->q.next, i, 5), b1),
		    cell(&S->q.next, i, 0), cell(&S->q.next, i, 1),
		    cell(&S->q.next, i, 2), cell(&S->q.next, i, 3));
	printf("\ndeferred:\n");
	for (int i = 0; i < S->q.deferred.nrows; i++)
		printf("  job %s %s %s, attempt %s, next %s: %s\n",
		    cell(&S->q.deferred, i, 0), cell(&S->q.deferred, i, 1),
		    cell(&S->q.deferred, i, 2), cell(&S->q.deferred, i, 3),
		    when_text(cfg, cell(&S->q.deferred, i, 4),
		    cell(&S->q.deferred, i, 6), b1),
		    cell(&S->q.deferred, i, 5) ? cell(&S->q.deferred, i, 5) : "");
	printf("\ndelivered: %s in the last hour, %s in the last day\n",
	    S->q.recent.nrows ? cell(&S->q.recent, 0, 0) : "0",
	    S->q.recent.nrows ? cell(&S->q.recent, 0, 1) : "0");
	printf("unknown outcome (the message went, no reply came): %s, "
	    "unknown_outcome = %s\n", S->q.recent.nrows && cell(&S->q.recent, 0,
	    2) ? cell(&S->q.recent, 0, 2) : "0", cfg->unknown_outcome ==
	    CONFIG_UNKNOWN_HOLD ? "hold" : "retry");
	printf("\nlast delivery error:\n");
	for (int i = 0; i < S->q.lasterr.nrows; i++)
		printf("  job %s %s %s (%s, %s): %s\n", cell(&S->q.lasterr, i, 0),
		    cell(&S->q.lasterr, i, 1), cell(&S->q.lasterr, i, 2),
		    cell(&S->q.lasterr, i, 3), when_text(cfg, cell(&S->q.lasterr, i,
		    4), cell(&S->q.lasterr, i, 6), b1), cell(&S->q.lasterr, i, 5));
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
		util_json_str(f, clock_format_iso(t, iso));
}

/* status --json: the queue, now, the daemon. */
static void
status_json_daemon(FILE *f, const struct config *cfg, const struct status *S)
{
	char iso[21];

	fputs("{\n  \"queue\": ", f);
	util_json_str(f, cfg->queue_dir);
	fputs(",\n  \"now\": ", f);
	util_json_str(f, clock_format_iso(S->now, iso));
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
}

/* status --json: jobs per rule and state, reasons. */
static void
status_json_rules(FILE *f, const struct config *cfg, const struct status *S)
{
	(void)cfg;
	fputs("},\n  \"rules\": {", f);
	for (int i = 0; i < S->q.rules.nrows; i++) {
		fprintf(f, "%s\n    ", i ? "," : "");
		util_json_str(f, cell(&S->q.rules, i, 0));
		fputs(": {", f);
		for (size_t c = 0; c < NSTATUS_STATES; c++) {
			const char *v = cell(&S->q.rules, i, 1 + (int)c);

			fprintf(f, "%s\"%s\": %s", c ? ", " : "",
			    status_states[c], v ? v : "0");
		}
		fputs("}", f);
	}
	fputs(S->q.rules.nrows ? "\n  },\n  \"reasons\": [" :
	    "},\n  \"reasons\": [", f);
	for (int i = 0; i < S->q.reasons.nrows; i++) {
		fprintf(f, "%s\n    {\"rule\": ", i ? "," : "");
		util_json_str(f, cell(&S->q.reasons, i, 0));
		fputs(", \"state\": ", f);
		util_json_str(f, cell(&S->q.reasons, i, 1));
		fputs(", \"reason\": ", f);
		util_json_str(f, cell(&S->q.reasons, i, 2));
		fputs(", \"count\": ", f);
		json_num(f, cell(&S->q.reasons, i, 3));
		fputs("}", f);
	}
	fputs(S->q.reasons.nrows ? "\n  ],\n  \"oldest_queued\": " :
	    "],\n  \"oldest_queued\": ", f);
}

/* status --json: the oldest queued, the next due, the deferred jobs. */
static void
status_json_jobs(FILE *f, const struct config *cfg, const struct status *S)
{
	if (S->q.oldest.nrows) {
		fputs("{\"job\": ", f);
		json_num(f, cell(&S->q.oldest, 0, 0));
		fputs(", \"rule\": ", f);
		util_json_str(f, cell(&S->q.oldest, 0, 1));
		fputs(", \"subject\": ", f);
		util_json_str(f, cell(&S->q.oldest, 0, 2));
		fputs(", \"state\": ", f);
		util_json_str(f, cell(&S->q.oldest, 0, 3));
		fputs(", \"queued_at\": ", f);
		json_time(f, cell(&S->q.oldest, 0, 4));
		json_local_field(f, job_zone(cfg, cell(&S->q.oldest, 0, 6)),
		    "queued_at", cell(&S->q.oldest, 0, 4));
		fputs(", \"age_seconds\": ", f);
		json_num(f, cell(&S->q.oldest, 0, 5));
		fputs("}", f);
	} else
		fputs("null", f);
	fputs(",\n  \"next_due\": ", f);
	if (S->q.next.nrows) {
		fputs("{\"job\": ", f);
		json_num(f, cell(&S->q.next, 0, 0));
		fputs(", \"rule\": ", f);
		util_json_str(f, cell(&S->q.next, 0, 1));
		fputs(", \"subject\": ", f);
		util_json_str(f, cell(&S->q.next, 0, 2));
		fputs(", \"state\": ", f);
		util_json_str(f, cell(&S->q.next, 0, 3));
		fputs(", \"at\": ", f);
		json_time(f, cell(&S->q.next, 0, 4));
		json_local_field(f, job_zone(cfg, cell(&S->q.next, 0, 5)), "at",
		    cell(&S->q.next, 0, 4));
		fputs("}", f);
	} else
		fputs("null", f);
	fputs(",\n  \"deferred\": [", f);
	for (int i = 0; i < S->q.deferred.nrows; i++) {
		fprintf(f, "%s\n    {\"job\": ", i ? "," : "");
		json_num(f, cell(&S->q.deferred, i, 0));
		fputs(", \"rule\": ", f);
		util_json_str(f, cell(&S->q.deferred, i, 1));
		fputs(", \"subject\": ", f);
		util_json_str(f, cell(&S->q.deferred, i, 2));
		fputs(", \"attempts\": ", f);
		json_num(f, cell(&S->q.deferred, i, 3));
		fputs(", \"next_attempt_at\": ", f);
		json_time(f, cell(&S->q.deferred, i, 4));
		json_local_field(f, job_zone(cfg, cell(&S->q.deferred, i, 6)),
		    "next_attempt_at", cell(&S->q.deferred, i, 4));
		fputs(", \"last_reply\": ", f);
		util_json_str(f, cell(&S->q.deferred, i, 5));
		fputs("}", f);
	}
	fputs(S->q.deferred.nrows ? "\n  ],\n" : "],\n", f);
}

/* status --json: deliveries, the last errors, the last tick. */
static void
status_json_tail(FILE *f, const struct config *cfg, const struct status *S)
{
	fputs("  \"delivered\": {\"last_hour\": ", f);
	json_num(f, S->q.recent.nrows ? cell(&S->q.recent, 0, 0) : "0");
	fputs(", \"last_day\": ", f);
	json_num(f, S->q.recent.nrows ? cell(&S->q.recent, 0, 1) : "0");
	fputs("},\n  \"unknown_outcomes\": ", f);
	json_num(f, S->q.recent.nrows && cell(&S->q.recent, 0, 2) ?
	    cell(&S->q.recent, 0, 2) : "0");
	fputs(",\n  \"last_delivery_error\": ", f);
	if (S->q.lasterr.nrows) {
		fputs("{\"job\": ", f);
		json_num(f, cell(&S->q.lasterr, 0, 0));
		fputs(", \"rule\": ", f);
		util_json_str(f, cell(&S->q.lasterr, 0, 1));
		fputs(", \"subject\": ", f);
		util_json_str(f, cell(&S->q.lasterr, 0, 2));
		fputs(", \"state\": ", f);
		util_json_str(f, cell(&S->q.lasterr, 0, 3));
		fputs(", \"at\": ", f);
		json_time(f, cell(&S->q.lasterr, 0, 4));
		json_local_field(f, job_zone(cfg, cell(&S->q.lasterr, 0, 6)), "at",
		    cell(&S->q.lasterr, 0, 4));
		fputs(", \"reply\": ", f);
		util_json_str(f, cell(&S->q.lasterr, 0, 5));
		fputs("}", f);
	} else
		fputs("null", f);
	fputs(",\n  \"last_tick_problem\": ", f);
	util_json_str(f, S->last_error);
	fputs(",\n  \"last_tick\": ", f);
	json_sqltime(f, S->last_tick);
	status_json_bounces(f, S);
	fputs("\n}\n", f);
}

static void
status_json(const struct config *cfg, const struct status *S)
{
	status_json_daemon(stdout, cfg, S);
	status_json_rules(stdout, cfg, S);
	status_json_jobs(stdout, cfg, S);
	status_json_tail(stdout, cfg, S);
}

static int
cmd_status(const struct config *cfg, int argc, char **argv,
    const struct opts *o)
{
	struct store *st = open_store(cfg);
	struct status S;
	int r;

	(void)argc;
	(void)argv;
	if (st == NULL)
		return EX_TEMPFAIL;
	memset(&S, 0, sizeof(S));
	if ((r = status_load(cfg, st, &S)) == FU_OK) {
		if (o->json)
			status_json(cfg, &S);
		else {
			status_text(cfg, &S);
			status_text_bounces(cfg, &S);
		}
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

/* queue list --json: one object a job, UTC and the recipient's local times. */
static void
queue_list_json(const struct config *cfg, const struct store_table *t)
{
	static const char *const keys[] = { "id", "rule", "subject",
	    "occurrence", "state", "due_at", "next_attempt_at",
	    "attempts", "recipient", "reason", "last_reply" };

	fputs("[", stdout);
	for (int i = 0; i < t->nrows; i++) {
		fputs(i ? ",\n  {" : "\n  {", stdout);
		for (int c = 0; c < 11; c++) {
			printf("%s\"%s\": ", c ? ", " : "", keys[c]);
			if (c == 0 || c == 7)
				json_num(stdout, cell(t, i, c));
			else if (c == 5 || c == 6)
				json_time(stdout, cell(t, i, c));
			else
				util_json_str(stdout, cell(t, i, c));
		}
		/* The recipient's wall clock next to each UTC time. */
		fputs(", \"due_at_local\": ", stdout);
		json_local(stdout, job_zone(cfg, cell(t, i, 12)),
		    cell(t, i, 5));
		json_local_field(stdout, job_zone(cfg, cell(t, i, 12)),
		    "next_attempt_at", cell(t, i, 6));
		fputs("}", stdout);
	}
	fputs(t->nrows ? "\n]\n" : "]\n", stdout);
}

/* queue list: a table, the local column as wide as its longest zone needs. */
static void
queue_list_text(const struct config *cfg, const struct store_table *t)
{
	char b[32], lb[LOCAL_TEXT_MAX];
	int lw = (int)strlen("due/next (recipient's time)");

	/* The local column is as wide as its longest zone name needs. */
	for (int i = 0; i < t->nrows; i++) {
		int n = (int)strlen(local_text(cfg, cell(t, i, 11),
		    cell(t, i, 12), lb));

		lw = n > lw ? n : lw;
	}
	printf("%-6s %-12s %-10s %-10s %-24s %-*s %-24s %s\n", "id",
	    "rule", "subject", "state", "due/next (UTC)", lw,
	    "due/next (recipient's time)", "recipient",
	    "reason / reply");
	for (int i = 0; i < t->nrows; i++) {
		const char *reason = cell(t, i, 9), *reply =
		    cell(t, i, 10);

		printf("%-6s %-12s %-10s %-10s %-24s %-*s %-24s %s%s%s\n",
		    cell(t, i, 0), cell(t, i, 1), cell(t, i, 2),
		    cell(t, i, 4), utc_text(cell(t, i, 11), b), lw,
		    local_text(cfg, cell(t, i, 11), cell(t, i, 12), lb),
		    cell(t, i, 8) ? cell(t, i, 8) : "-",
		    reason ? reason : "", reason && reply ? " " : "",
		    reply ? reply : "");
	}
}

static int
queue_list(const struct config *cfg, struct store *st, int argc, char **argv)
{
	const char *state = NULL, *rule = NULL;
	enum job_state s;
	struct store_table t;
	char *err = NULL;
	int r, json = 0;

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
	if ((r = store_jobs_list(st, state, rule, &t, &err)) != FU_OK) {
		fprintf(stderr, "followupd: %s\n", err);
		free(err);
		return exit_for(r);
	}
	if (json)
		queue_list_json(cfg, &t);
	else
		queue_list_text(cfg, &t);
	store_table_free(&t);
	return EX_OK;
}

/* A job's events, one a line: "INDENT2026-11-05 10:00:00 UTC  event: detail". */
static void
print_history(struct store *st, int64_t id, const char *indent)
{
	struct store_event *ev;
	char when[20];
	int n;

	if (store_job_history(st, id, &ev, &n, NULL) != FU_OK)
		return;
	for (int i = 0; i < n; i++)
		printf("%s%s UTC  %s%s%s\n", indent, clock_format_sql(ev[i].at,
		    when), ev[i].event, ev[i].detail ? ": " : "",
		    ev[i].detail ? ev[i].detail : "");
	store_events_free(ev, n);
}

static int
queue_show(const struct config *cfg, struct store *st, int64_t id)
{
	struct job j;
	const struct clock_zone *z;
	char *err = NULL, *tz;
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
	print_history(st, id, "  ");
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
	enum job_state s = JOB_NSTATES;
	int64_t *ids = NULL;
	char *err = NULL;
	int r, n = 0;

	(void)store_state_parse(state, &s);	/* deferred or held */
	if ((r = store_begin(st, &err)) != FU_OK)
		goto fail;
	if ((r = store_job_ids(st, s, &ids, &n, &err)) != FU_OK) {
		store_rollback(st);
		goto fail;
	}
	for (int i = 0; i < n && r == FU_OK; i++)
		r = queue_act(st, action, ids[i], &err);
	if (r == FU_OK)
		r = store_commit(st, &err);
	free(ids);
	if (r != FU_OK) {
		store_rollback(st);
		goto fail;
	}
	printf("%d %s job%s: %s\n", n, state, n == 1 ? "" : "s",
	    queue_done_text(action));
	return EX_OK;
fail:
	fprintf(stderr, "followupd queue %s: %s\n", action, err);
	free(err);
	return exit_for(r);
}

static int
cmd_queue(const struct config *cfg, int argc, char **argv,
    const struct opts *o)
{
	static const char *const actions[] = { "retry", "cancel", "hold",
	    "release", NULL };
	struct store *st;
	const char *all = NULL;
	int64_t id = 0;
	char *err = NULL;
	int r, status, action = 0;

	(void)o;
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

/* ---- optout, why, codes: consent and personal codes ---- */

static int
optout_usage(void)
{
	fputs("usage: followupd optout add EMAIL [--class marketing|"
	    "transactional|all] [--reason TEXT]\n"
	    "       followupd optout remove EMAIL [--class marketing|"
	    "transactional|all|suppressed]\n"
	    "       followupd optout list\n", stderr);
	return EX_USAGE;
}

/* The state database for optout, why and codes (the queue may be new). */
static struct store *
open_consent_store(const struct config *cfg, int *status)
{
	struct store *st;
	char *err = NULL;
	int r;

	if ((r = consent_store_open(cfg, &st, &err)) != FU_OK) {
		fprintf(stderr, "followupd: %s\n", err);
		free(err);
		*status = r == FU_TEMPFAIL ? EX_TEMPFAIL : EX_CONFIG;
		return NULL;
	}
	return st;
}

static int
optout_list(struct store *st, char **err)
{
	struct store_optout *o;
	char when[20];
	int r, n;

	printf("address\tclass\tsince\treason\n");
	if ((r = store_optouts_list(st, &o, &n, err)) != FU_OK)
		return r;
	for (int i = 0; i < n; i++)
		printf("%s\t%s\t%s UTC\t%s\n", o[i].addr, o[i].cls,
		    clock_format_sql(o[i].since, when), o[i].reason ?
		    o[i].reason : "-");
	store_optouts_free(o, n);
	return FU_OK;
}

/* optout add|remove ADDR: the change and a line saying what it did. */
static int
optout_change(struct store *st, int add, const char *addr, const char *cls,
    const char *reason, char **err)
{
	int r, n = 0;

	if (add) {
		if (cls == NULL)
			cls = "marketing";
		r = consent_optout_add(st, addr, cls, reason ? reason :
		    "added by an operator", clock_now(), &n, err);
		if (r == FU_OK)
			printf("%s: %s for %s mail\n", addr, n ? "opted out" :
			    "already opted out", cls);
		return r;
	}
	r = consent_optout_remove(st, addr, cls, &n, err);
	if (r == FU_OK)
		printf("%s: %d %s removed\n", addr, n, cls != NULL &&
		    strcmp(cls, "suppressed") == 0 ? "suppression" :
		    n == 1 ? "opt-out" : "opt-outs");
	return r;
}

static int
cmd_optout(const struct config *cfg, int argc, char **argv,
    const struct opts *o)
{
	const char *cls = NULL, *reason = NULL, *addr = NULL;
	struct store *st;
	char *err = NULL;
	int r, add, list, status;

	(void)o;
	if (argc < 1)
		return optout_usage();
	add = strcmp(argv[0], "add") == 0;
	list = strcmp(argv[0], "list") == 0;
	if (!add && !list && strcmp(argv[0], "remove") != 0)
		return optout_usage();
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--class") == 0 && i + 1 < argc && !list)
			cls = argv[++i];
		else if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc && add)
			reason = argv[++i];
		else if (argv[i][0] != '-' && addr == NULL && !list)
			addr = argv[i];
		else {
			fprintf(stderr, "followupd optout: unexpected argument "
			    "'%s'\n", argv[i]);
			return optout_usage();
		}
	}
	if (!list && addr == NULL)
		return optout_usage();
	if (cls != NULL && !consent_class_ok(cls) && !(!add &&
	    strcmp(cls, "suppressed") == 0)) {
		fprintf(stderr, "followupd optout: --class '%s': use marketing, "
		    "transactional or all%s\n", cls, add ? "" : " (or suppressed)");
		return EX_USAGE;
	}
	if (addr != NULL && (strchr(addr, '@') == NULL || strlen(addr) > 254)) {
		fprintf(stderr, "followupd optout: '%s' is not an address\n",
		    addr);
		return EX_DATAERR;
	}
	if ((st = open_consent_store(cfg, &status)) == NULL)
		return status;
	r = list ? optout_list(st, &err) : optout_change(st, add, addr, cls,
	    reason, &err);
	if (r != FU_OK)
		fprintf(stderr, "followupd optout: %s\n", err);
	free(err);
	store_close(st);
	return r == FU_OK ? EX_OK : r == FU_TEMPFAIL ? EX_TEMPFAIL : EX_DATAERR;
}

/* One line that answers "why (not)": the job's decision in words. */
static void
why_decision(const struct store_why_job *j, struct buf *out)
{
	char a[20];

	if (strcmp(j->state, "sent") == 0)
		buf_printf(out, "sent at %s UTC", clock_format_sql(j->updated_at,
		    a));
	else if (strcmp(j->state, "cancelled") == 0)
		buf_printf(out, "cancelled because %s", j->reason ? j->reason :
		    "?");
	else if (strcmp(j->state, "failed") == 0)
		buf_printf(out, "failed: %s%s%s", j->reason ? j->reason : "?",
		    j->last_reply ? ": " : "", j->last_reply ? j->last_reply :
		    "");
	else if (strcmp(j->state, "planned") == 0)
		buf_printf(out, "planned, due %s UTC", clock_format_sql(j->due_at,
		    a));
	else
		buf_printf(out, "%s%s%s", j->state, j->last_reply ? ": " : "",
		    j->last_reply ? j->last_reply : "");
}

/* Add addr to the list of addresses met (once, compared without case). */
static void
why_note_addr(char ***addrs, int *n, const char *addr)
{
	for (int i = 0; i < *n; i++)
		if (strcasecmp((*addrs)[i], addr) == 0)
			return;
	*addrs = xrealloc(*addrs, (size_t)(*n + 1) * sizeof(**addrs));
	(*addrs)[(*n)++] = xstrdup(addr);
}

static void
why_consent(struct store *st, const char *addr)
{
	struct store_optout *o;
	char when[20];
	int n;

	printf("consent of %s:\n", addr);
	if (store_optouts_of(st, addr, &o, &n, NULL) != FU_OK)
		n = 0, o = NULL;
	for (int i = 0; i < n; i++) {
		if (strcmp(o[i].cls, "suppressed") == 0)
			printf("  suppressed (all mail)");
		else
			printf("  opted out of %s", o[i].cls);
		printf(" since %s UTC%s%s\n", clock_format_sql(o[i].since,
		    when), o[i].reason ? ": " : "", o[i].reason ? o[i].reason :
		    "");
	}
	if (n == 0)
		printf("  no opt-out, not suppressed\n");
	store_optouts_free(o, n);
}

static int
cmd_why(const struct config *cfg, int argc, char **argv,
    const struct opts *o)
{
	struct store_why_job *jobs = NULL;
	struct store *st;
	char *err = NULL, **addrs = NULL;
	const char *who;
	int r, byaddr, njobs = 0, naddrs = 0, status;

	(void)o;
	if (argc != 1 || argv[0][0] == '\0' || argv[0][0] == '-') {
		fputs("usage: followupd why EMAIL|CUSTOMER_ID\n", stderr);
		return EX_USAGE;
	}
	who = argv[0];
	byaddr = strchr(who, '@') != NULL;
	if ((st = open_consent_store(cfg, &status)) == NULL)
		return status;
	if (byaddr)
		why_note_addr(&addrs, &naddrs, who);
	if ((r = store_why_jobs(st, who, byaddr, &jobs, &njobs, &err)) ==
	    FU_OK) {
		for (int i = 0; i < njobs; i++) {
			const struct store_why_job *j = &jobs[i];
			struct buf d = { 0 };

			why_decision(j, &d);
			printf("job %lld  %s (%s)  subject %s %s  to %s: %s\n",
			    (long long)j->id, j->rule, j->cls ? j->cls :
			    "transactional", j->subject, j->occurrence, j->addr ?
			    j->addr : "-", buf_cstr(&d));
			buf_free(&d);
			print_history(st, j->id, "    ");
			if (j->addr != NULL)
				why_note_addr(&addrs, &naddrs, j->addr);
		}
		if (njobs == 0)
			printf("no job for %s %s\n", byaddr ? "address" :
			    "customer", who);
		for (int i = 0; i < naddrs; i++)
			why_consent(st, addrs[i]);
	} else
		fprintf(stderr, "followupd why: %s\n", err);
	for (int i = 0; i < naddrs; i++)
		free(addrs[i]);
	free(addrs);
	store_why_jobs_free(jobs, njobs);
	free(err);
	store_close(st);
	return r == FU_OK ? (njobs ? EX_OK : EX_NOINPUT) :
	    r == FU_TEMPFAIL ? EX_TEMPFAIL : EX_DATAERR;
}

/*
 * `codes RULE`: every code given by RULE as tab-separated lines (code,
 * subject, recipient, state, issued_at UTC) under a header, for import
 * into the shop.
 */
static int
cmd_codes(const struct config *cfg, int argc, char **argv,
    const struct opts *o)
{
	const struct rule_config *rule;
	struct store_code *c = NULL;
	struct store *st;
	char *err = NULL, when[20];
	int r, n = 0, status;

	(void)o;
	if (argc != 1 || argv[0][0] == '-') {
		fputs("usage: followupd codes RULE\n", stderr);
		return EX_USAGE;
	}
	if ((rule = config_rule(cfg, argv[0])) == NULL) {
		fprintf(stderr, "followupd codes: no rule '%s' in %s\n", argv[0],
		    cfg->path);
		return EX_USAGE;
	}
	if (rule->code == NULL)
		fprintf(stderr, "followupd codes: rule '%s' gives no codes (no "
		    "`code` key)\n", rule->name);
	if ((st = open_consent_store(cfg, &status)) == NULL)
		return status;
	printf("code\tsubject\trecipient\tstate\tissued_at\n");
	if ((r = store_codes_list(st, rule->name, &c, &n, &err)) == FU_OK)
		for (int i = 0; i < n; i++)
			printf("%s\t%s\t%s\t%s\t%s UTC\n", c[i].code, c[i].subject,
			    c[i].recipient ? c[i].recipient : "-", c[i].state,
			    clock_format_sql(c[i].issued_at, when));
	else
		fprintf(stderr, "followupd codes: %s\n", err);
	store_codes_free(c, n);
	free(err);
	store_close(st);
	return r == FU_OK ? EX_OK : r == FU_TEMPFAIL ? EX_TEMPFAIL :
	    EX_DATAERR;
}

/* `followupd report` (report.c). */
static int
cmd_report(const struct config *cfg, int argc, char **argv,
    const struct opts *o)
{
	(void)o;
	return report_cmd(cfg, argc, argv);
}

/* ---- bounce (bouncecmd.c decides and records; this reads and prints) ---- */

static int
bounce_exit(int r)
{
	return r == FU_OK ? EX_OK : r == FU_TEMPFAIL ? EX_TEMPFAIL : EX_DATAERR;
}

static void
bounce_print_rows(const struct bouncecmd_row *rows, int n)
{
	for (int i = 0; i < n; i++) {
		fputs("{\"file\": ", stdout);
		util_json_str(stdout, rows[i].source);
		fputs(", \"recipient\": ", stdout);
		util_json_str(stdout, rows[i].recipient);
		fputs(", \"status\": ", stdout);
		util_json_str(stdout, rows[i].status[0] ? rows[i].status : NULL);
		fputs(", \"kind\": ", stdout);
		util_json_str(stdout, bounce_kind_name(rows[i].kind));
		fputs(", \"reason\": ", stdout);
		util_json_str(stdout, rows[i].reason);
		if (rows[i].job != 0)
			printf(", \"job\": %lld", (long long)rows[i].job);
		else
			fputs(", \"job\": null", stdout);
		fputs(", \"matched_by\": ", stdout);
		util_json_str(stdout, rows[i].matched_by);
		fputs("}\n", stdout);
	}
}

/* One message from a file ("-": standard input) into m. */
static int
bounce_read(const char *path, struct buf *m, char **err)
{
	int fd, r;

	if (strcmp(path, "-") == 0)
		return bouncecmd_read_fd(0, m, err);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		set_err(err, "%s: %s", path, strerror(errno));
		return FU_PERMFAIL;
	}
	r = bouncecmd_read_fd(fd, m, err);
	close(fd);
	return r;
}

/* Each named message (or stdin) explained or handled; the worst exit. */
static int
bounce_each(struct bouncecmd *b, int explain, int argc, char **argv)
{
	const char *stdin_only[] = { "-" };
	const char *const *files = argc > 0 ? (const char *const *)argv :
	    stdin_only;
	int n = argc > 0 ? argc : 1, status = EX_OK;

	for (int i = 0; i < n; i++) {
		const char *src = strcmp(files[i], "-") == 0 && !explain ? "stdin" :
		    files[i], *decision;
		struct bouncecmd_row *rows = NULL;
		struct buf m = { 0 };
		char *err = NULL;
		int r, nrows = 0;

		if ((r = bounce_read(files[i], &m, &err)) == FU_OK)
			r = explain ? bouncecmd_explain(b, src, m.data, m.len, &rows,
			    &nrows, &err) : bouncecmd_handle(b, src, m.data, m.len,
			    clock_now(), &decision, &err);
		if (r != FU_OK) {
			fprintf(stderr, "followupd bounce: %s\n", err);
			if (status == EX_OK || r == FU_TEMPFAIL)
				status = bounce_exit(r);
		}
		bounce_print_rows(rows, nrows);
		bouncecmd_rows_free(rows, nrows);
		buf_free(&m);
		free(err);
	}
	return status;
}

static int
cmd_bounce(const struct config *cfg, int argc, char **argv,
    const struct opts *o)
{
	int explain = argc > 0 && strcmp(argv[0], "--explain") == 0;
	int maildir = argc > 0 && strcmp(argv[0], "--maildir") == 0;
	int first = explain || maildir, r, handled;
	struct bouncecmd *b;
	char *err = NULL;

	(void)o;
	if ((maildir && argc != 2) || (!maildir && argc > first &&
	    argv[first][0] == '-' && argv[first][1] != '\0'))
		return command_usage("bounce", stderr);
	if ((r = bouncecmd_open(cfg, explain, &b, &err)) != FU_OK) {
		/* A pipe's message stays with the MTA, which tries again. */
		fprintf(stderr, "followupd bounce: %s\n", err);
		free(err);
		return explain ? EX_UNAVAILABLE : EX_TEMPFAIL;
	}
	if (maildir) {
		r = bouncecmd_maildir(b, argv[1], clock_now(), &handled, &err);
		printf("bounce: %d message%s handled in %s\n", handled,
		    handled == 1 ? "" : "s", argv[1]);
		if (r != FU_OK)
			fprintf(stderr, "followupd bounce: %s\n", err);
		free(err);
		bouncecmd_close(b);
		return r == FU_OK ? EX_OK : r == FU_TEMPFAIL ? EX_TEMPFAIL :
		    EX_NOINPUT;
	}
	r = bounce_each(b, explain, argc - first, argv + first);
	bouncecmd_close(b);
	return r;
}

/*
 * Serve the web pages until SIGTERM or SIGINT: one-click unsubscribe
 * (unsubscribe.c) and the rating page (ratepage.c), whichever URL is set.
 */
static int
cmd_serve(const struct config *cfg, int argc, char **argv,
    const struct opts *o)
{
	struct consent *c = NULL;
	struct spool *sp;
	struct http *h;
	char *err = NULL, *path;
	sigset_t set;
	int sig, r;

	(void)argc;
	(void)argv;
	(void)o;	/* --now was set by args_now */
	if (cfg->unsubscribe_url == NULL && cfg->ratings_url == NULL) {
		fprintf(stderr, "followupd serve: %s: set [unsubscribe] url or "
		    "[ratings] url first\n", cfg->path);
		return EX_CONFIG;
	}
	if ((r = spool_open(cfg->queue_dir, &sp, &err)) == FU_OK) {
		spool_close(sp);
		r = consent_open(cfg, 1, &c, &err);
	}
	if (r != FU_OK) {
		fprintf(stderr, "followupd serve: %s\n", err);
		free(err);
		return r == FU_TEMPFAIL ? EX_TEMPFAIL : EX_CONFIG;
	}
	/* Blocked here (and so in the server's thread): sigwait takes them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	h = http_new();
	if (cfg->unsubscribe_url != NULL)
		unsubscribe_routes(h, cfg, c);
	if (cfg->ratings_url != NULL)
		ratepage_routes(h, cfg, c);
	if ((r = http_start(h, cfg->unsubscribe_listen, cfg->unsubscribe_port,
	    &err)) != FU_OK) {
		fprintf(stderr, "followupd serve: %s\n", err);
		free(err);
		http_free(h);
		consent_free(c);
		return EX_TEMPFAIL;
	}
	if (cfg->unsubscribe_url != NULL) {
		path = unsubscribe_path(cfg);
		log_info("unsubscribe: serving http://%s%s%s:%d%s (public: %s)",
		    strchr(cfg->unsubscribe_listen, ':') ? "[" : "",
		    cfg->unsubscribe_listen, strchr(cfg->unsubscribe_listen,
		    ':') ? "]" : "", http_port(h), path, cfg->unsubscribe_url);
		free(path);
	}
	if (cfg->ratings_url != NULL) {
		path = ratepage_path(cfg);
		log_info("ratepage: serving %s on port %d (public: %s)", path,
		    http_port(h), cfg->ratings_url);
		free(path);
	}
	sigwait(&set, &sig);
	log_info("serve: %s: stopping", sig == SIGTERM ? "SIGTERM" :
	    "SIGINT");
	http_free(h);
	unsubscribe_flush(cfg);
	consent_free(c);
	return EX_OK;
}

/* A command without arguments. */
static int
args_none(int argc, char **argv, struct opts *o)
{
	(void)o;
	return argc > 1 ? command_usage(argv[0], stderr) : EX_OK;
}

/* once, status: --now TIME (status: --json). */
static int
args_now(int argc, char **argv, struct opts *o)
{
	return parse_now(argc, argv, 1, argv[0], o) != 0 ? EX_USAGE : EX_OK;
}

/* preview RULE ID [--html | --text] [--now TIME], preview RULE --sample N. */
static int
args_preview(int argc, char **argv, struct opts *o)
{
	int first = 3;

	if (argc < 3)
		return command_usage(argv[0], stderr);
	if (strcmp(argv[2], "--sample") == 0) {
		char *end;
		long n = argc > 3 ? strtol(argv[3], &end, 10) : 0;

		if (argc < 4 || *argv[3] == '\0' || *end != '\0' || n < 1 ||
		    n > 100000) {
			fprintf(stderr, "followupd preview: --sample needs a "
			    "number of rows (1 to 100000)\n");
			return EX_USAGE;
		}
		o->sample = (int)n;
		first = 4;
	}
	if (parse_now(argc, argv, first, argv[0], o) != 0)
		return EX_USAGE;
	if (o->sample && o->mode != OPT_MESSAGE) {
		fprintf(stderr, "followupd preview: --sample reports on many "
		    "rows; --html and --text show one\n");
		return EX_USAGE;
	}
	return EX_OK;
}

static int
cmd_preview(const struct config *cfg, int argc, char **argv,
    const struct opts *o)
{
	(void)argc;
	return preview(cfg, argv[0], argv[1], o->mode == OPT_HTML ?
	    PREVIEW_HTML : o->mode == OPT_TEXT ? PREVIEW_TEXT :
	    PREVIEW_MESSAGE, o->sample);
}

int
main(int argc, char **argv)
{
	const char *conf = getenv("FOLLOWUPD_CONFIG");
	struct config *cfg;
	struct opts opts;
	const struct command *c;
	int ch, foreground = 0, verbose = 0, status;
	const char *cmd;
	char *err = NULL;

	term_guard_stdio();	/* no terminal escapes from data, anywhere */
	memset(&opts, 0, sizeof(opts));
	if (conf == NULL)
		conf = "scheduler.conf";
	/* "+": stop at the command; its own options follow it. */
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
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
		case 'V':	/* FOLLOWUPD_VERSION: the file VERSION (Makefile) */
			puts("followupd " FOLLOWUPD_VERSION);
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
	if ((c = command_find(cmd)) == NULL) {
		fprintf(stderr, "followupd: unknown command '%s'\n", cmd);
		return usage();
	}
	if (c->args != NULL && (status = c->args(argc, argv, &opts)) != EX_OK)
		return status;
	if ((cfg = load_config(conf)) == NULL)
		return EX_CONFIG;
	if (c->opens_queue == QUEUE_OPENS &&
	    daemon_drop_privileges(cfg, 0, &err) != FU_OK) {
		fprintf(stderr, "followupd %s: %s\n", cmd, err);
		free(err);
		config_free(cfg);
		return EX_CONFIG;
	}
	status = c->run(cfg, argc - 1, argv + 1, &opts);
	config_free(cfg);
	return status;
}
