/* test_report: the report's figures, groups and escaping on a known set. */
#include "config.h"
#include "rating.h"
#include "report.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct store_rating
row(int64_t job, const char *agent, enum job_state state, int rated,
    const char *scale, int score, const char *comment, time_t asked)
{
	struct store_rating r;

	memset(&r, 0, sizeof(r));
	r.job = job;
	r.requested = 1;
	r.scale = xstrdup(scale);
	r.rated = rated;
	r.score = score;
	r.comment = comment ? xstrdup(comment) : NULL;
	r.rule = xstrdup(job < 5 ? "checkin" : "vip");
	r.subject = xasprintf("%lld", (long long)(100 + job));
	r.customer = xasprintf("c%lld", (long long)job);
	r.agent = agent ? xstrdup(agent) : NULL;
	r.state = state;
	r.asked_at = asked;
	return r;
}

static char *
report(const struct config *cfg, struct store_rating *rows, int n,
    enum report_by by, enum report_format fmt)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	report_write(f, cfg, rows, n, 0, 2000000000, by, fmt);
	fclose(f);
	return out;
}

int
main(void)
{
	struct config cfg;
	struct store_rating rows[7];
	char *out;
	/* 2026-11-02 (ISO week 45) and 2026-11-09 (week 46), 12:00 UTC */
	time_t w45 = 1793620800, w46 = 1794225600;

	memset(&cfg, 0, sizeof(cfg));
	cfg.ratings_scale = RATING_CSAT;
	cfg.ratings_low = 2;
	rows[0] = row(1, "sam@acme.example", JOB_SENT, 1, "csat", 5, NULL, w45);
	rows[1] = row(2, "sam@acme.example", JOB_SENT, 1, "csat", 2,
	    "Bad \x1b[31m \"lid\"\nstill <b>", w45);
	rows[2] = row(3, "sam@acme.example", JOB_SENT, 0, "csat", 0, NULL, w45);
	rows[3] = row(4, "lee@acme.example", JOB_SENT, 1, "csat", 4, NULL, w46);
	rows[4] = row(5, "lee@acme.example", JOB_SENT, 1, "nps", 1, NULL, w46);
	rows[5] = row(6, "lee@acme.example", JOB_QUEUED, 1, "csat", 1, NULL,
	    w46);
	rows[6] = row(7, NULL, JOB_SENT, 0, "csat", 0, NULL, w46);

	out = report(&cfg, rows, 7, REPORT_BY_WEEK, REPORT_JSON);
	tap_ok(strstr(out, "\"requests\": 6, \"responses\": 4, "
	    "\"response_rate\": 66.7, \"score\": 66.7") != NULL,
	    "totals: 6 sent, 4 rated, CSAT over the csat ratings only");
	tap_ok(strstr(out, "{\"agent\": \"sam@acme.example\", \"requests\": 3, "
	    "\"responses\": 2, \"response_rate\": 66.7, \"score\": 50.0}") !=
	    NULL && strstr(out, "{\"agent\": \"lee@acme.example\", "
	    "\"requests\": 2, \"responses\": 2, \"response_rate\": 100.0, "
	    "\"score\": 100.0}") != NULL && strstr(out, "{\"agent\": \"\", "
	    "\"requests\": 1, \"responses\": 0, \"response_rate\": 0.0, "
	    "\"score\": null}") != NULL, "by_agent");
	tap_ok(strstr(out, "\"week\": \"2026-W45\", \"requests\": 3") != NULL &&
	    strstr(out, "\"week\": \"2026-W46\", \"requests\": 3") != NULL,
	    "groups by ISO week");
	tap_ok(strstr(out, "{\"job\": 2, \"ticket\": \"102\", \"customer\": "
	    "\"c2\", \"agent\": \"sam@acme.example\", \"rating\": 2, \"label\": "
	    "\"Dissatisfied\", \"comment\": \"Bad \\u001b[31m \\\"lid\\\"\\n"
	    "still \\u003cb>\"}") != NULL && strstr(out, "\"job\": 6") == NULL &&
	    strstr(out, "\"job\": 5") == NULL,
	    "low: only job 2 (not the queued one, not the nps one), escaped");
	free(out);

	out = report(&cfg, rows, 7, REPORT_BY_NONE, REPORT_TEXT);
	tap_ok(strstr(out, "requests sent  6") != NULL && strstr(out,
	    "responses      4 (66.7%)") != NULL && strstr(out,
	    "CSAT           66.7%") != NULL, "text: the totals");
	tap_ok(strstr(out, "\x1b") == NULL && strstr(out, "Bad ?[31m \"lid\"\n"
	    "     still <b>") != NULL, "text: the comment without control "
	    "characters, indented");
	free(out);

	out = report(&cfg, rows, 7, REPORT_BY_RULE, REPORT_CSV);
	tap_str(out, "\"rule\",\"requests\",\"responses\",\"response_rate\","
	    "\"CSAT\"\n\"checkin\",4,3,75.0,\"66.7%\"\n\"vip\",2,1,50.0,\"-\"\n"
	    "\"total\",6,4,66.7,\"66.7%\"\n", "csv by rule");
	free(out);

	cfg.ratings_scale = RATING_NPS;
	cfg.ratings_low = 6;
	out = report(&cfg, rows, 7, REPORT_BY_NONE, REPORT_JSON);
	tap_ok(strstr(out, "\"score\": -100.0") != NULL && strstr(out,
	    "\"job\": 5") != NULL, "nps: the figure of the nps ratings; 1 is "
	    "low");
	free(out);
	for (int i = 0; i < 7; i++)
		store_rating_clear(&rows[i]);
	return tap_done();
}
