/* rating: satisfaction scales, their labels and figures, and signed rating tokens (pure). */
#ifndef FOLLOWUPD_RATING_H
#define FOLLOWUPD_RATING_H

#include <stddef.h>
#include <stdint.h>

/*
 * Scales ([ratings] scale):
 *   csat      1 to 5; positive 4 and 5; low by default 2 or less.
 *   good-bad  0 (bad) or 1 (good); low: bad.
 *   nps       0 to 10; promoters 9 and 10, detractors 0 to 6; low by
 *             default 6 or less.
 */
enum rating_scale {
	RATING_CSAT,
	RATING_GOOD_BAD,
	RATING_NPS,
	RATING_NSCALES
};

/* "csat", "good-bad", "nps" and back; parse: 0, or -1 for other text. */
const char	*rating_scale_name(enum rating_scale);
int		 rating_scale_parse(const char *, enum rating_scale *);

int	rating_min(enum rating_scale);
int	rating_max(enum rating_scale);
int	rating_valid(enum rating_scale, int score);
int	rating_default_low(enum rating_scale);
/*
 * A score as [ratings] low writes it: a number of the scale, or for
 * good-bad also "bad" (and "good"). 0 with *score, -1 otherwise.
 */
int	rating_parse_score(enum rating_scale, const char *, int *score);

/* What the page and the report call a score ("Very satisfied", "Bad", "7"). */
const char	*rating_label(enum rating_scale, int score);
/* The question a check-in asks when [ratings] question is not set. */
const char	*rating_default_question(enum rating_scale);

/* Positive (csat 4-5, nps 9-10, good); negative (nps 0-6, used by NPS only). */
int	rating_positive(enum rating_scale, int score);
int	rating_detractor(enum rating_scale, int score);

/*
 * The scale's standard figure over n scores, in percent: csat the share
 * of positive ratings, good-bad the share of good, nps promoters minus
 * detractors (-100 to 100). 0 with *figure, or -1 when n is 0.
 */
int	rating_figure(enum rating_scale, const int *scores, size_t n,
	    double *figure);

/*
 * Tokens: "JOB.XS.MAC" with JOB the job id in decimal, X the scale (c, g,
 * n), S the score in decimal, MAC = HMAC-SHA-256(key, "followupd-rating-v1"
 * NUL JOB NUL X NUL S) in unpadded base64url (43 characters). A score
 * below 0 makes "JOB.X.MAC" (S empty): a link that preselects nothing,
 * checked as score -1. Only digits,
 * letters, '.', '-' and '_': safe in a URL's query unescaped. The key is
 * the unsubscribe secret (consent.h); nothing is looked up to check one.
 * rating_token_check: 0 with the job, scale and score, or -1 for anything
 * malformed, truncated, altered or signed with another key (the MAC is
 * compared in constant time).
 */
#define RATING_TOKEN_MAX	96
char	*rating_token(const unsigned char *key, size_t keylen, int64_t job,
	    enum rating_scale, int score);
int	rating_token_check(const unsigned char *key, size_t keylen,
	    const char *token, int64_t *job, enum rating_scale *, int *score);

/*
 * Deterministic sampling: 1 when job falls into the first `percent` (0 to
 * 100) of a uniform spread of job ids (a hash, so that consecutive jobs
 * are not taken in runs).
 */
int	rating_sampled(int64_t job, int percent);

#endif
