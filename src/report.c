/* report: `followupd report`: rating requests, responses and the scale's figure, by rule, agent or week. */
#include "report.h"
#include "clock.h"
#include "log.h"
#include "rating.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

/* One line of the report: the whole, an agent, a rule or a week. */
struct tally {
	char	*name;
	int	 requests, responses;
	int	*scores;	/* of the configured scale */
	size_t	 n, cap;
};

struct tallies {
	struct tally	*t;
	size_t		 n;
};

static struct tally *
tally_of(struct tallies *ts, const char *name)
{
	for (size_t i = 0; i < ts->n; i++)
		if (strcmp(ts->t[i].name, name) == 0)
			return &ts->t[i];
	ts->t = xrealloc(ts->t, (ts->n + 1) * sizeof(*ts->t));
	memset(&ts->t[ts->n], 0, sizeof(*ts->t));
	ts->t[ts->n].name = xstrdup(name);
	return &ts->t[ts->n++];
}

static void
tallies_free(struct tallies *ts)
{
	for (size_t i = 0; i < ts->n; i++) {
		free(ts->t[i].name);
		free(ts->t[i].scores);
	}
	free(ts->t);
}

static void
tally_add(struct tally *t, const struct store_rating *r, const char *scale)
{
	t->requests++;
	if (!r->rated)
		return;
	t->responses++;
	if (r->scale == NULL || strcmp(r->scale, scale) != 0)
		return;		/* asked on another scale: not in the figure */
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 16;
		t->scores = xrealloc(t->scores, t->cap * sizeof(int));
	}
	t->scores[t->n++] = r->score;
}

/* A request counts once its check-in went out. */
static int
counted(const struct store_rating *r)
{
	return r->requested && r->state == JOB_SENT;
}

static const char *
group_name(const struct store_rating *r, enum report_by by, char buf[16])
{
	struct tm tm;
	time_t t = r->asked_at;

	switch (by) {
	case REPORT_BY_RULE:
		return r->rule ? r->rule : "";
	case REPORT_BY_AGENT:
		return r->agent ? r->agent : "";
	case REPORT_BY_WEEK:
		gmtime_r(&t, &tm);
		strftime(buf, 16, "%G-W%V", &tm);	/* ISO 8601 week */
		return buf;
	default:
		return "all";
	}
}

static int
is_low(const struct config *cfg, const struct store_rating *r)
{
	return r->rated && r->scale != NULL &&
	    strcmp(r->scale, rating_scale_name(cfg->ratings_scale)) == 0 &&
	    r->score <= cfg->ratings_low;
}

/* ---- output ---- */


static void
json_figure(FILE *f, const struct tally *t, enum rating_scale s)
{
	double v;

	if (rating_figure(s, t->scores, t->n, &v) == 0)
		fprintf(f, "%.1f", v);
	else
		fputs("null", f);
}

static void
json_tally(FILE *f, const char *key, const struct tally *t,
    enum rating_scale s)
{
	fprintf(f, "{\"%s\": ", key);
	util_json_str(f, t->name);
	fprintf(f, ", \"requests\": %d, \"responses\": %d, \"response_rate\": "
	    "%.1f, \"score\": ", t->requests, t->responses, t->requests ?
	    100.0 * t->responses / t->requests : 0.0);
	json_figure(f, t, s);
	putc('}', f);
}

/* CSV (RFC 4180) with formula-looking cells neutralised for spreadsheets. */
static void
csv_cell(FILE *f, const char *s)
{
	putc('"', f);
	if (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@')
		putc('\'', f);
	for (; *s; s++) {
		if (*s == '"')
			putc('"', f);
		putc(*s, f);
	}
	putc('"', f);
}

/* Untrusted text on a terminal: C0, DEL and C1 controls become '?'. */
static void
term_text(FILE *f, const char *s, const char *indent)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\n')
			fprintf(f, "\n%s", indent);
		else if (*p < 0x20 || *p == 0x7f)
			putc('?', f);
		else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			putc('?', f);
			p++;
		} else
			putc(*p, f);
	}
}

static const char *
figure_text(const struct tally *t, enum rating_scale s, char buf[16])
{
	double v;

	if (rating_figure(s, t->scores, t->n, &v) != 0)
		return "-";
	snprintf(buf, 16, "%s%.1f%s", s == RATING_NPS && v > 0 ? "+" : "", v,
	    s == RATING_NPS ? "" : "%");
	return buf;
}

static const char *
figure_name(enum rating_scale s)
{
	return s == RATING_NPS ? "NPS" : s == RATING_CSAT ? "CSAT" : "good";
}

static void
text_table(FILE *f, const char *title, const struct tallies *ts,
    enum rating_scale s)
{
	char fb[16];

	fprintf(f, "\n%s:\n  %-32s %8s %9s %7s %7s\n", title, "",
	    "requests", "responses", "rate", figure_name(s));
	for (size_t i = 0; i < ts->n; i++) {
		const struct tally *t = &ts->t[i];
		const char *name = *t->name ? t->name : "(none)";
		int w = (int)strlen(name);

		fputs("  ", f);
		term_text(f, name, "");
		fprintf(f, "%*s %8d %9d %6.1f%% %7s\n", w < 32 ? 32 - w : 1, "",
		    t->requests, t->responses, t->requests ? 100.0 *
		    t->responses / t->requests : 0.0, figure_text(t, s, fb));
	}
}

static void
text_low(FILE *f, const struct config *cfg, const struct store_rating *rows,
    int n)
{
	int any = 0;

	for (int i = 0; i < n; i++) {
		const struct store_rating *r = &rows[i];

		if (!counted(r) || !is_low(cfg, r))
			continue;
		if (!any++)
			fprintf(f, "\nLow ratings (%s at or below %d, %s):\n",
			    rating_scale_name(cfg->ratings_scale),
			    cfg->ratings_low, rating_label(cfg->ratings_scale,
			    cfg->ratings_low));
		fprintf(f, "  job %" PRId64 ", ticket ", r->job);
		term_text(f, r->subject ? r->subject : "?", "");
		fputs(", customer ", f);
		if (r->customer_name != NULL) {
			term_text(f, r->customer_name, "");
			fputs(" (", f);
		}
		term_text(f, r->customer ? r->customer : "?", "");
		if (r->customer_name != NULL)
			putc(')', f);
		fputs(", agent ", f);
		term_text(f, r->agent ? r->agent : "(none)", "");
		fprintf(f, ": %d (%s)\n", r->score, rating_label(
		    cfg->ratings_scale, r->score));
		if (r->comment != NULL) {
			fputs("    \"", f);
			term_text(f, r->comment, "     ");
			fputs("\"\n", f);
		}
	}
	if (!any)
		fputs("\nNo low ratings.\n", f);
}

static void
json_low(FILE *f, const struct config *cfg, const struct store_rating *rows,
    int n)
{
	int any = 0;

	fputs(",\n  \"low\": [", f);
	for (int i = 0; i < n; i++) {
		const struct store_rating *r = &rows[i];

		if (!counted(r) || !is_low(cfg, r))
			continue;
		fprintf(f, "%s\n    {\"job\": %" PRId64 ", \"ticket\": ",
		    any++ ? "," : "", r->job);
		util_json_str(f, r->subject);
		fputs(", \"customer\": ", f);
		util_json_str(f, r->customer);
		fputs(", \"agent\": ", f);
		util_json_str(f, r->agent);
		fprintf(f, ", \"rating\": %d, \"label\": ", r->score);
		util_json_str(f, rating_label(cfg->ratings_scale, r->score));
		fputs(", \"comment\": ", f);
		util_json_str(f, r->comment);
		putc('}', f);
	}
	fputs(any ? "\n  ]" : "]", f);
}

static void
json_list(FILE *f, const char *name, const char *key,
    const struct tallies *ts, enum rating_scale s)
{
	fprintf(f, ",\n  \"%s\": [", name);
	for (size_t i = 0; i < ts->n; i++) {
		fputs(i ? ",\n    " : "\n    ", f);
		json_tally(f, key, &ts->t[i], s);
	}
	fputs(ts->n ? "\n  ]" : "]", f);
}

void
report_write(FILE *f, const struct config *cfg, const struct store_rating *rows,
    int n, time_t since, time_t now, enum report_by by,
    enum report_format fmt)
{
	static const char *const by_names[] = { "all", "rule", "agent", "week" };
	enum rating_scale s = cfg->ratings_scale;
	const char *sname = rating_scale_name(s);
	struct tallies total = { 0 }, agents = { 0 }, groups = { 0 };
	char a[21], b[21], wk[16], fb[16];
	struct tally *all = tally_of(&total, "all");

	for (int i = 0; i < n; i++) {
		if (!counted(&rows[i]))
			continue;
		tally_add(all, &rows[i], sname);
		tally_add(tally_of(&agents, rows[i].agent ? rows[i].agent : ""),
		    &rows[i], sname);
		tally_add(tally_of(&groups, group_name(&rows[i], by, wk)),
		    &rows[i], sname);
	}
	if (fmt == REPORT_JSON) {
		fputs("{\n  \"since\": ", f);
		util_json_str(f, clock_format_iso(since, a));
		fputs(", \"until\": ", f);
		util_json_str(f, clock_format_iso(now, b));
		fprintf(f, ", \"scale\": \"%s\", \"low_at_or_below\": %d,\n"
		    "  \"requests\": %d, \"responses\": %d, \"response_rate\": "
		    "%.1f, \"score\": ", sname, cfg->ratings_low, all->requests,
		    all->responses, all->requests ? 100.0 * all->responses /
		    all->requests : 0.0);
		json_figure(f, all, s);
		json_list(f, "by_agent", "agent", &agents, s);
		if (by != REPORT_BY_NONE) {
			fprintf(f, ",\n  \"by\": \"%s\"", by_names[by]);
			json_list(f, "groups", by_names[by], &groups, s);
		}
		json_low(f, cfg, rows, n);
		fputs("\n}\n", f);
	} else if (fmt == REPORT_CSV) {
		fprintf(f, "\"%s\",\"requests\",\"responses\",\"response_rate\","
		    "\"%s\"\n", by_names[by], figure_name(s));
		for (size_t i = 0; by != REPORT_BY_NONE && i < groups.n; i++) {
			csv_cell(f, groups.t[i].name);
			fprintf(f, ",%d,%d,%.1f,\"%s\"\n", groups.t[i].requests,
			    groups.t[i].responses, groups.t[i].requests ? 100.0 *
			    groups.t[i].responses / groups.t[i].requests : 0.0,
			    figure_text(&groups.t[i], s, fb));
		}
		fprintf(f, "\"total\",%d,%d,%.1f,\"%s\"\n", all->requests,
		    all->responses, all->requests ? 100.0 * all->responses /
		    all->requests : 0.0, figure_text(all, s, fb));
	} else {
		fprintf(f, "Ratings from %s to %s UTC, scale %s\n",
		    clock_format_sql(since, a), clock_format_sql(now, b), sname);
		fprintf(f, "  requests sent  %d\n  responses      %d (%.1f%%)\n"
		    "  %-14s %s\n", all->requests, all->responses,
		    all->requests ? 100.0 * all->responses / all->requests : 0.0,
		    figure_name(s), figure_text(all, s, fb));
		text_table(f, by == REPORT_BY_NONE ? "By agent" :
		    by == REPORT_BY_RULE ? "By rule" : by == REPORT_BY_AGENT ?
		    "By agent" : "By week", by == REPORT_BY_NONE ? &agents :
		    &groups, s);
		text_low(f, cfg, rows, n);
	}
	tallies_free(&total);
	tallies_free(&agents);
	tallies_free(&groups);
}

static int
usage(void)
{
	fputs("usage: followupd report [--since DURATION] [--by rule|agent|"
	    "week] [--json|--csv] [--now TIME]\n", stderr);
	return EX_USAGE;
}

int
report_cmd(const struct config *cfg, int argc, char **argv)
{
	enum report_by by = REPORT_BY_NONE;
	enum report_format fmt = REPORT_TEXT;
	long since = 30 * 86400L;
	struct store_rating *rows = NULL;
	struct store *st = NULL;
	char *err = NULL, *path;
	time_t now;
	int n = 0, r;

	for (int i = 0; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		time_t t;

		if (strcmp(argv[i], "--json") == 0 && fmt == REPORT_TEXT)
			fmt = REPORT_JSON;
		else if (strcmp(argv[i], "--csv") == 0 && fmt == REPORT_TEXT)
			fmt = REPORT_CSV;
		else if (strcmp(argv[i], "--since") == 0 && v != NULL) {
			if (config_parse_duration(v, &since, &err) != FU_OK ||
			    since <= 0) {
				fprintf(stderr, "followupd report: --since '%s': "
				    "%s\n", v, err ? err : "must be more than 0");
				free(err);
				return EX_USAGE;
			}
			i++;
		} else if (strcmp(argv[i], "--by") == 0 && v != NULL) {
			if (strcmp(v, "rule") == 0)
				by = REPORT_BY_RULE;
			else if (strcmp(v, "agent") == 0)
				by = REPORT_BY_AGENT;
			else if (strcmp(v, "week") == 0)
				by = REPORT_BY_WEEK;
			else
				return usage();
			i++;
		} else if (strcmp(argv[i], "--now") == 0 && v != NULL) {
			if (clock_parse(v, &t) != FU_OK) {
				fprintf(stderr, "followupd report: --now '%s': "
				    "not a UTC time\n", v);
				return EX_USAGE;
			}
			clock_set_now(t);
			i++;
		} else
			return usage();
	}
	now = clock_now();
	path = store_path(cfg->queue_dir);
	if ((r = store_open(path, cfg->busy_timeout_ms, &st, &err)) == FU_OK)
		r = store_ratings_since(st, now - since, &rows, &n, &err);
	free(path);
	store_close(st);
	if (r != FU_OK) {
		fprintf(stderr, "followupd report: %s\n", err);
		free(err);
		return r == FU_TEMPFAIL ? EX_TEMPFAIL : EX_SOFTWARE;
	}
	report_write(stdout, cfg, rows, n, now - since, now, by, fmt);
	store_ratings_free(rows, n);
	return fflush(stdout) == 0 ? EX_OK : EX_IOERR;
}
