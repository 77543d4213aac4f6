/* test_rating: scales, labels, the standard figures, signed tokens, sampling. */
#include "rating.h"
#include "tap.h"
#include "util.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char key[] = "0123456789abcdef0123456789abcdef-key";
static const unsigned char other[] = "0123456789abcdef0123456789abcdef-kez";

static void
test_scales(void)
{
	static const struct {
		const char	*name;
		int		 min, max, low;
	} want[] = {
		{ "csat", 1, 5, 2 },
		{ "good-bad", 0, 1, 0 },
		{ "nps", 0, 10, 6 },
	};
	enum rating_scale s;

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		tap_ok(rating_scale_parse(want[i].name, &s) == 0 &&
		    strcmp(rating_scale_name(s), want[i].name) == 0,
		    "%s parses and names itself", want[i].name);
		tap_ok(rating_min(s) == want[i].min && rating_max(s) ==
		    want[i].max && rating_default_low(s) == want[i].low,
		    "%s: %d to %d, low %d", want[i].name, want[i].min,
		    want[i].max, want[i].low);
		tap_ok(!rating_valid(s, want[i].min - 1) &&
		    !rating_valid(s, want[i].max + 1) &&
		    rating_valid(s, want[i].min) && rating_valid(s, want[i].max),
		    "%s: bounds", want[i].name);
	}
	tap_ok(rating_scale_parse("CSAT", &s) == -1 &&
	    rating_scale_parse("", &s) == -1 &&
	    rating_scale_parse(NULL, &s) == -1, "other scale names refused");
	tap_str(rating_label(RATING_CSAT, 5), "Very satisfied", "csat 5 label");
	tap_str(rating_label(RATING_CSAT, 1), "Very dissatisfied",
	    "csat 1 label");
	tap_str(rating_label(RATING_GOOD_BAD, 0), "Bad", "bad label");
	tap_str(rating_label(RATING_GOOD_BAD, 1), "Good", "good label");
	tap_str(rating_label(RATING_NPS, 10), "10", "nps 10 label");
	tap_str(rating_label(RATING_NPS, 0), "0", "nps 0 label");
	tap_str(rating_label(RATING_CSAT, 0), "?", "out of range label");
	tap_ok(strlen(rating_default_question(RATING_NPS)) > 10 &&
	    strstr(rating_default_question(RATING_NPS), "recommend") != NULL,
	    "nps asks the NPS question");
}

static void
test_parse_score(void)
{
	static const struct {
		enum rating_scale	 s;
		const char		*text;
		int			 ok, score;
	} cases[] = {
		{ RATING_CSAT, "2", 1, 2 },
		{ RATING_CSAT, "5", 1, 5 },
		{ RATING_CSAT, "0", 0, 0 },
		{ RATING_CSAT, "6", 0, 0 },
		{ RATING_CSAT, "02", 0, 0 },
		{ RATING_CSAT, " 2", 0, 0 },
		{ RATING_CSAT, "+2", 0, 0 },
		{ RATING_CSAT, "bad", 0, 0 },
		{ RATING_GOOD_BAD, "bad", 1, 0 },
		{ RATING_GOOD_BAD, "good", 1, 1 },
		{ RATING_GOOD_BAD, "0", 1, 0 },
		{ RATING_GOOD_BAD, "2", 0, 0 },
		{ RATING_NPS, "10", 1, 10 },
		{ RATING_NPS, "0", 1, 0 },
		{ RATING_NPS, "11", 0, 0 },
		{ RATING_NPS, "100", 0, 0 },
		{ RATING_NPS, "", 0, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int v = -99, r = rating_parse_score(cases[i].s, cases[i].text,
		    &v);

		tap_ok(cases[i].ok ? r == 0 && v == cases[i].score : r == -1,
		    "%s score '%s' %s", rating_scale_name(cases[i].s),
		    cases[i].text, cases[i].ok ? "parses" : "is refused");
	}
}

static int
figure(enum rating_scale s, const int *v, size_t n, double want)
{
	double got = -1000;

	return rating_figure(s, v, n, &got) == 0 && fabs(got - want) < 1e-9;
}

static void
test_figures(void)
{
	static const int csat[] = { 5, 4, 3, 2, 1, 5 };	/* 3 of 6 positive */
	static const int gb[] = { 1, 0, 1, 1 };		/* 3 of 4 good */
	static const int nps[] = { 10, 9, 8, 7, 6, 0, 9, 10, 3, 9 };
	/* nps: promoters 5 (10 9 9 10 9), detractors 3 (6 0 3): 50 - 30 */
	static const int allbad[] = { 0, 1, 2 };
	double d;

	tap_ok(figure(RATING_CSAT, csat, 6, 50.0), "CSAT: share positive");
	tap_ok(figure(RATING_GOOD_BAD, gb, 4, 75.0), "good-bad: share good");
	tap_ok(figure(RATING_NPS, nps, 10, 20.0),
	    "NPS: promoters minus detractors");
	tap_ok(figure(RATING_NPS, allbad, 3, -100.0), "NPS can be -100");
	tap_ok(rating_figure(RATING_CSAT, csat, 0, &d) == -1,
	    "no responses: no figure");
	tap_ok(rating_positive(RATING_CSAT, 4) && !rating_positive(RATING_CSAT,
	    3) && rating_positive(RATING_NPS, 9) &&
	    !rating_positive(RATING_NPS, 8) && rating_detractor(RATING_NPS, 6) &&
	    !rating_detractor(RATING_NPS, 7) && !rating_detractor(RATING_CSAT, 1),
	    "positive and detractor bounds");
}

static void
test_tokens(void)
{
	char *t = rating_token(key, sizeof(key) - 1, 42, RATING_CSAT, 4);
	char *bad;
	int64_t job = 0;
	enum rating_scale s = RATING_NPS;
	int score = 0;

	tap_ok(strncmp(t, "42.c4.", 6) == 0 && strlen(t) == 6 + 43 &&
	    strspn(t, "0123456789.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQR"
	    "STUVWXYZ-_") == strlen(t), "token shape: %s", t);
	tap_ok(rating_token_check(key, sizeof(key) - 1, t, &job, &s, &score) ==
	    0 && job == 42 && s == RATING_CSAT && score == 4,
	    "a token checks and names job, scale and score");
	tap_ok(rating_token_check(other, sizeof(other) - 1, t, &job, &s,
	    &score) == -1, "another key's token is refused");
	/* Every truncation is refused. */
	{
		int all = 1;

		for (size_t n = 0; n < strlen(t); n++) {
			char *cut = strndup(t, n);

			if (rating_token_check(key, sizeof(key) - 1, cut, &job,
			    &s, &score) != -1)
				all = 0;
			free(cut);
		}
		tap_ok(all, "every truncation is refused");
	}
	/* Every single-character change is refused. */
	{
		int all = 1;

		for (size_t i = 0; i < strlen(t); i++) {
			char *alt = strdup(t);

			alt[i] = alt[i] == 'A' ? 'B' : 'A';
			if (rating_token_check(key, sizeof(key) - 1, alt, &job,
			    &s, &score) != -1)
				all = 0;
			free(alt);
		}
		tap_ok(all, "every altered character is refused");
	}
	/* The score cannot be swapped while keeping the MAC. */
	bad = strdup(t);
	bad[4] = '1';
	tap_ok(rating_token_check(key, sizeof(key) - 1, bad, &job, &s, &score) ==
	    -1, "a changed score is refused");
	free(bad);
	bad = xasprintf("042%s", t + 2);
	tap_ok(rating_token_check(key, sizeof(key) - 1, bad, &job, &s, &score) ==
	    -1, "a leading zero is refused");
	free(bad);
	bad = xasprintf("%s=", t);
	tap_ok(rating_token_check(key, sizeof(key) - 1, bad, &job, &s, &score) ==
	    -1, "a trailing character is refused");
	free(bad);
	tap_ok(rating_token_check(key, sizeof(key) - 1, NULL, &job, &s,
	    &score) == -1 && rating_token_check(key, sizeof(key) - 1, "",
	    &job, &s, &score) == -1 && rating_token_check(key, sizeof(key) - 1,
	    "..", &job, &s, &score) == -1 && rating_token_check(key,
	    sizeof(key) - 1, "1.c9.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	    &job, &s, &score) == -1, "malformed tokens are refused");
	free(t);
	t = rating_token(key, sizeof(key) - 1, INT64_C(123456789012345678),
	    RATING_NPS, 10);
	tap_ok(rating_token_check(key, sizeof(key) - 1, t, &job, &s, &score) ==
	    0 && job == INT64_C(123456789012345678) && s == RATING_NPS &&
	    score == 10, "a large job id and nps 10 round-trip (%s)", t);
	free(t);
	t = rating_token(key, sizeof(key) - 1, 7, RATING_NPS, -1);
	tap_ok(strncmp(t, "7.n.", 4) == 0 && rating_token_check(key,
	    sizeof(key) - 1, t, &job, &s, &score) == 0 && job == 7 &&
	    s == RATING_NPS && score == -1, "a token without a score: %s", t);
	bad = xasprintf("7.n0.%s", t + 4);
	tap_ok(rating_token_check(key, sizeof(key) - 1, bad, &job, &s,
	    &score) == -1, "a score cannot be added to it");
	free(bad);
	free(t);
	t = rating_token(key, sizeof(key) - 1, 7, RATING_GOOD_BAD, 0);
	tap_ok(rating_token_check(key, sizeof(key) - 1, t, &job, &s, &score) ==
	    0 && job == 7 && s == RATING_GOOD_BAD && score == 0,
	    "good-bad bad round-trips");
	free(t);
}

static void
test_sampling(void)
{
	int in = 0, again = 1, all = 1, none = 1;

	for (int64_t j = 1; j <= 10000; j++) {
		in += rating_sampled(j, 30);
		if (rating_sampled(j, 30) != rating_sampled(j, 30))
			again = 0;
		if (!rating_sampled(j, 100))
			all = 0;
		if (rating_sampled(j, 0))
			none = 0;
	}
	tap_ok(in > 2800 && in < 3200, "30%% takes about 3,000 of 10,000 (%d)",
	    in);
	tap_ok(again, "the same job gets the same answer");
	tap_ok(all && none, "100%% takes every job, 0%% none");
	/* A job sampled at 20% is also sampled at 50%: raising the share
	 * only adds jobs. */
	{
		int mono = 1;

		for (int64_t j = 1; j <= 2000; j++)
			if (rating_sampled(j, 20) && !rating_sampled(j, 50))
				mono = 0;
		tap_ok(mono, "a larger share keeps the smaller share's jobs");
	}
}

int
main(void)
{
	test_scales();
	test_parse_score();
	test_figures();
	test_tokens();
	test_sampling();
	return tap_done();
}
