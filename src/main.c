/* main: the command line: run, once, check, preview, status, queue. */
#include "clock.h"
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "mime.h"
#include "render.h"
#include "rules.h"
#include "source.h"
#include "spool.h"
#include "store.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

static const char usage_text[] =
"usage: followupd [-c scheduler.conf] [-d] [-v] COMMAND [ARGS]\n"
"\n"
"commands:\n"
"  run                       the daemon: a tick every `tick` seconds\n"
"  once [--now TIME]         exactly one tick (plan, render, deliver) at TIME\n"
"  check                     validate the config, templates and source schema\n"
"  preview RULE ID [--now TIME]\n"
"                            print the message RULE would send for source row ID\n"
"  status                    jobs per rule and state, next due, last error\n"
"  queue list [--state S] [--rule R]\n"
"  queue show JOB            a job, its decision history and its message\n"
"  queue retry JOB           send a deferred or failed job again now\n"
"  queue cancel JOB          cancel a planned, queued or deferred job\n"
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
	{ "preview", "usage: followupd preview RULE ID [--now TIME]\n"
	    "Print the complete message RULE would send for the source row "
	    "whose key is ID.\nWrites nothing, sends nothing.\n" },
	{ "status", "usage: followupd status\n"
	    "Jobs per rule and state, cancellations by reason, the next due "
	    "time, deferred\njobs with their last reply, the last error.\n" },
	{ "queue", "usage: followupd queue list [--state S] [--rule R]\n"
	    "       followupd queue show JOB\n"
	    "       followupd queue retry JOB\n"
	    "       followupd queue cancel JOB\n" },
};

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

/* Parse "--now TIME" (and nothing else) from the command's arguments. */
static int
parse_now(int argc, char **argv, int first, const char *cmd)
{
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
		} else {
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

static int
cmd_check(const struct config *cfg)
{
	struct buf errs = { 0 };
	struct render *rd;
	struct source *src;
	char *err = NULL;
	int nproblems;

	mime_init();
	if ((rd = render_open(cfg, &errs)) != NULL)
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
		}
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

static int
cmd_preview(const struct config *cfg, const char *rule, const char *key)
{
	struct buf errs = { 0 }, out = { 0 };
	struct render *rd;
	struct source *src;
	char *err = NULL;
	int r;

	mime_init();
	if ((rd = render_open(cfg, &errs)) == NULL) {
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
	r = render_preview(rd, src, rule, key, clock_now(), &out, &err);
	if (r == FU_OK)
		fwrite(out.data, 1, out.len, stdout);
	else
		fprintf(stderr, "followupd preview: %s\n", err);
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
	char *path = xasprintf("%s/state.db", cfg->queue_dir), *err = NULL;
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

static int
cmd_status(const struct config *cfg)
{
	struct store *st = open_store(cfg);
	char *v;

	if (st == NULL)
		return EX_TEMPFAIL;
	printf("queue: %s\n\n", cfg->queue_dir);
	printf("%-12s%10s%10s%10s%10s%10s%10s%10s\n", "rule", "planned",
	    "queued", "sending", "deferred", "sent", "failed", "cancelled");
	store_query(st, "SELECT rule, "
	    "sum(state = 'planned'), sum(state = 'queued'), "
	    "sum(state = 'sending'), sum(state = 'deferred'), "
	    "sum(state = 'sent'), sum(state = 'failed'), "
	    "sum(state = 'cancelled') FROM jobs GROUP BY rule ORDER BY rule",
	    NULL, print_row, (void *)"lrrrrrrr", NULL);
	printf("\nwhy not sent (cancelled or failed, by reason):\n");
	store_query(st, "SELECT '  ' || rule || ' ' || state || ' ' || "
	    "reason || ': ' || count(*) FROM jobs WHERE reason IS NOT NULL "
	    "GROUP BY rule, state, reason ORDER BY rule, state, reason", NULL,
	    print_row, NULL, NULL);
	printf("\nnext due:\n");
	store_query(st, "SELECT '  ' || datetime(t, 'unixepoch') || ' UTC  job "
	    "' || id || ' (' || rule || ' ' || subject || ', ' || state || ')' "
	    "FROM (SELECT id, rule, subject, state, CASE state WHEN 'planned' "
	    "THEN due_at ELSE next_attempt_at END AS t FROM jobs WHERE state "
	    "IN ('planned', 'queued', 'deferred')) ORDER BY t, id LIMIT 1",
	    NULL, print_row, NULL, NULL);
	printf("\ndeferred:\n");
	store_query(st, "SELECT '  job ' || id || ' ' || rule || ' ' || subject "
	    "|| ', attempt ' || attempts || ', next ' || datetime("
	    "next_attempt_at, 'unixepoch') || ' UTC: ' || coalesce(last_reply, "
	    "'') FROM jobs WHERE state = 'deferred' ORDER BY next_attempt_at "
	    "LIMIT 20", NULL, print_row, NULL, NULL);
	printf("\nlast delivery error:\n");
	store_query(st, "SELECT '  job ' || id || ' ' || rule || ' ' || subject "
	    "|| ' (' || state || ', ' || datetime(updated_at, 'unixepoch') || "
	    "' UTC): ' || last_reply FROM jobs WHERE state IN ('deferred', "
	    "'failed') AND last_reply IS NOT NULL ORDER BY updated_at DESC, "
	    "id DESC LIMIT 1", NULL, print_row, NULL, NULL);
	if ((v = store_meta_get(st, "last_error")) != NULL) {
		printf("\nlast tick problem:\n  %s\n", v);
		free(v);
	}
	if ((v = store_meta_get(st, "last_tick")) != NULL) {
		printf("\nlast tick: %s UTC\n", v);
		free(v);
	}
	store_close(st);
	return EX_OK;
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
queue_list(struct store *st, int argc, char **argv)
{
	const char *state = NULL, *rule = NULL;
	enum job_state s;
	struct buf sql = { 0 };
	char *err = NULL;
	int r;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--state") == 0 && i + 1 < argc)
			state = argv[++i];
		else if (strcmp(argv[i], "--rule") == 0 && i + 1 < argc)
			rule = argv[++i];
		else
			return command_usage("queue", stderr);
	}
	if (state && store_state_parse(state, &s) != FU_OK) {
		fprintf(stderr, "followupd queue list: unknown state '%s' (one "
		    "of planned, queued, sending, deferred, sent, failed, "
		    "cancelled)\n", state);
		return EX_USAGE;
	}
	printf("%-6s %-12s %-10s %-10s %-20s %-24s %s\n", "id", "rule",
	    "subject", "state", "due/next (UTC)", "recipient", "reason / reply");
	/* The filter values are compared, not pasted: one bound parameter. */
	buf_puts(&sql, "SELECT printf('%-6d %-12s %-10s %-10s %-20s %-24s %s', "
	    "id, rule, subject, state, datetime(CASE WHEN state IN ('queued', "
	    "'deferred') THEN next_attempt_at ELSE due_at END, 'unixepoch'), "
	    "coalesce(recipient, '-'), trim(coalesce(reason, '') || ' ' || "
	    "coalesce(last_reply, ''))) FROM jobs");
	if (state)
		buf_puts(&sql, " WHERE state = ?1");
	else if (rule)
		buf_puts(&sql, " WHERE rule = ?1");
	buf_puts(&sql, " ORDER BY id");
	r = store_query(st, sql.data, state ? state : rule, print_row, NULL,
	    &err);
	if (r == FU_OK && state && rule)
		fprintf(stderr, "followupd queue list: --state and --rule "
		    "together: showing --state only\n");
	if (r != FU_OK)
		fprintf(stderr, "followupd queue list: %s\n", err);
	free(err);
	buf_free(&sql);
	return exit_for(r);
}

static int
queue_show(const struct config *cfg, struct store *st, int64_t id)
{
	struct job j;
	char *err = NULL, idtext[32];
	char due[20], next[20];
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
	if (j.next_attempt_at)
		printf("next attempt: %s UTC\n",
		    clock_format_sql(j.next_attempt_at, next));
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
	    j.state == JOB_SENDING)) {
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

static int
cmd_queue(const struct config *cfg, int argc, char **argv)
{
	struct store *st;
	int64_t id = 0;
	char *err = NULL;
	int r, status;

	if (argc < 1)
		return command_usage("queue", stderr);
	if (strcmp(argv[0], "list") != 0) {
		if (argc != 2 || (strcmp(argv[0], "show") != 0 &&
		    strcmp(argv[0], "retry") != 0 &&
		    strcmp(argv[0], "cancel") != 0))
			return command_usage("queue", stderr);
		if (parse_job_id(argv[1], &id) != 0)
			return EX_USAGE;
	}
	if ((st = open_store(cfg)) == NULL)
		return EX_TEMPFAIL;
	if (strcmp(argv[0], "list") == 0)
		status = queue_list(st, argc - 1, argv + 1);
	else if (strcmp(argv[0], "show") == 0)
		status = queue_show(cfg, st, id);
	else {
		int retry = strcmp(argv[0], "retry") == 0;

		r = retry ? store_job_retry(st, id, clock_now(), &err) :
		    store_job_cancel(st, id, "operator", "cancelled by the "
		    "operator", clock_now(), &err);
		if (r == FU_OK)
			printf("job %lld: %s\n", (long long)id, retry ?
			    "will be sent at the next tick" : "cancelled");
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
	int ch, foreground = 0, verbose = 0, status;
	const char *cmd;

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
	    strcmp(cmd, "preview") == 0) {
		int first = strcmp(cmd, "preview") == 0 ? 3 : 1;

		if (strcmp(cmd, "preview") == 0 && argc < 3)
			return command_usage(cmd, stderr);
		if (strcmp(cmd, "run") == 0 && argc > 1)
			return command_usage(cmd, stderr);
		if (parse_now(argc, argv, first, cmd) != 0)
			return EX_USAGE;
	} else if ((strcmp(cmd, "check") == 0 || strcmp(cmd, "status") == 0) &&
	    argc > 1)
		return command_usage(cmd, stderr);
	else if (strcmp(cmd, "check") != 0 && strcmp(cmd, "status") != 0 &&
	    strcmp(cmd, "queue") != 0) {
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
		status = cmd_preview(cfg, argv[1], argv[2]);
	else if (strcmp(cmd, "status") == 0)
		status = cmd_status(cfg);
	else
		status = cmd_queue(cfg, argc - 1, argv + 1);
	config_free(cfg);
	return status;
}
