/* rating: satisfaction scales, their labels and figures, and signed rating tokens (pure). */
#include "rating.h"
#include "log.h"
#include "util.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAC_LEN		32	/* SHA-256 */
#define MAC_B64		43	/* unpadded base64url of 32 bytes */
#define TOKEN_DOMAIN	"followupd-rating-v1"

struct scale {
	const char	*name;
	char		 letter;	/* in tokens */
	int		 min, max, low;
	const char	*question;
	const char *const *labels;	/* min .. max; NULL: the number */
};

static const char *const csat_labels[] = {
	"Very dissatisfied",
	"Dissatisfied",
	"Neither satisfied nor dissatisfied",
	"Satisfied",
	"Very satisfied",
};

static const char *const good_bad_labels[] = { "Bad", "Good" };

static const struct scale scales[RATING_NSCALES] = {
	[RATING_CSAT] = { "csat", 'c', 1, 5, 2,
	    "How satisfied are you with the help you received?", csat_labels },
	[RATING_GOOD_BAD] = { "good-bad", 'g', 0, 1, 0,
	    "How would you rate the help you received?", good_bad_labels },
	[RATING_NPS] = { "nps", 'n', 0, 10, 6,
	    "How likely are you to recommend us to a friend or colleague?",
	    NULL },
};

static const char *const nps_labels[] = {
	"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10",
};

static const struct scale *
scale_of(enum rating_scale s)
{
	return (unsigned)s < RATING_NSCALES ? &scales[s] : &scales[RATING_CSAT];
}

const char *
rating_scale_name(enum rating_scale s)
{
	return scale_of(s)->name;
}

int
rating_scale_parse(const char *text, enum rating_scale *out)
{
	for (int i = 0; i < RATING_NSCALES; i++)
		if (text != NULL && strcmp(text, scales[i].name) == 0) {
			*out = (enum rating_scale)i;
			return 0;
		}
	return -1;
}

int
rating_min(enum rating_scale s)
{
	return scale_of(s)->min;
}

int
rating_max(enum rating_scale s)
{
	return scale_of(s)->max;
}

int
rating_valid(enum rating_scale s, int score)
{
	return score >= scale_of(s)->min && score <= scale_of(s)->max;
}

int
rating_default_low(enum rating_scale s)
{
	return scale_of(s)->low;
}

/* A decimal number without sign, spaces or leading zeros, at most 2 digits. */
static int
small_number(const char *text, int *out)
{
	size_t n = strlen(text);

	if (n == 0 || n > 2 || strspn(text, "0123456789") != n ||
	    (n > 1 && text[0] == '0'))
		return -1;
	*out = atoi(text);
	return 0;
}

int
rating_parse_score(enum rating_scale s, const char *text, int *score)
{
	int v;

	if (text == NULL)
		return -1;
	if (s == RATING_GOOD_BAD && (strcmp(text, "bad") == 0 ||
	    strcmp(text, "good") == 0)) {
		*score = strcmp(text, "good") == 0;
		return 0;
	}
	if (small_number(text, &v) == -1 || !rating_valid(s, v))
		return -1;
	*score = v;
	return 0;
}

const char *
rating_label(enum rating_scale s, int score)
{
	const struct scale *sc = scale_of(s);

	if (!rating_valid(s, score))
		return "?";
	if (sc->labels == NULL)
		return nps_labels[score];
	return sc->labels[score - sc->min];
}

const char *
rating_default_question(enum rating_scale s)
{
	return scale_of(s)->question;
}

int
rating_positive(enum rating_scale s, int score)
{
	switch (s) {
	case RATING_CSAT:
		return score >= 4 && score <= 5;
	case RATING_GOOD_BAD:
		return score == 1;
	case RATING_NPS:
		return score >= 9 && score <= 10;
	default:
		return 0;
	}
}

int
rating_detractor(enum rating_scale s, int score)
{
	return s == RATING_NPS && score >= 0 && score <= 6;
}

int
rating_figure(enum rating_scale s, const int *scores, size_t n,
    double *figure)
{
	size_t pos = 0, neg = 0;

	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		pos += rating_positive(s, scores[i]) != 0;
		neg += rating_detractor(s, scores[i]) != 0;
	}
	*figure = 100.0 * ((double)pos - (double)neg) / (double)n;
	return 0;
}

/* ---- tokens ---- */

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Unpadded base64url of 32 bytes: 43 characters and a NUL. */
static void
mac_encode(const unsigned char mac[MAC_LEN], char out[MAC_B64 + 1])
{
	size_t o = 0;

	for (size_t i = 0; i < MAC_LEN; i += 3) {
		unsigned v = (unsigned)mac[i] << 16;

		if (i + 1 < MAC_LEN)
			v |= (unsigned)mac[i + 1] << 8;
		if (i + 2 < MAC_LEN)
			v |= mac[i + 2];
		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
		if (i + 1 < MAC_LEN)
			out[o++] = b64url[(v >> 6) & 63];
		if (i + 2 < MAC_LEN)
			out[o++] = b64url[v & 63];
	}
	out[o] = '\0';
}

static void
token_mac(const unsigned char *key, size_t keylen, int64_t job, char letter,
    int score, char out[MAC_B64 + 1])
{
	unsigned char mac[MAC_LEN];
	unsigned int mlen = MAC_LEN;
	char msg[96];
	int n;

	/* The domain keeps these MACs apart from the unsubscribe tokens'. */
	n = snprintf(msg, sizeof(msg), "%s%c%" PRId64 "%c%c%c", TOKEN_DOMAIN,
	    '\0', job, '\0', letter, '\0');
	if (n > 0 && score >= 0 && (size_t)n < sizeof(msg))
		n += snprintf(msg + n, sizeof(msg) - (size_t)n, "%d", score);
	if (n < 0 || (size_t)n >= sizeof(msg) ||
	    HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg,
	    (size_t)n, mac, &mlen) == NULL || mlen != MAC_LEN)
		fatalx("rating: HMAC-SHA-256 failed");
	mac_encode(mac, out);
	OPENSSL_cleanse(mac, sizeof(mac));
}

char *
rating_token(const unsigned char *key, size_t keylen, int64_t job,
    enum rating_scale s, int score)
{
	char mac[MAC_B64 + 1];

	token_mac(key, keylen, job, scale_of(s)->letter, score, mac);
	if (score < 0)
		return xasprintf("%" PRId64 ".%c.%s", job, scale_of(s)->letter,
		    mac);
	return xasprintf("%" PRId64 ".%c%d.%s", job, scale_of(s)->letter, score,
	    mac);
}

/* Strict decimal: 1 to 18 digits, no leading zero; -1 otherwise. */
static int
job_number(const char *p, size_t n, int64_t *out)
{
	int64_t v = 0;

	if (n == 0 || n > 18 || p[0] == '0')
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return 0;
}

int
rating_token_check(const unsigned char *key, size_t keylen, const char *token,
    int64_t *job, enum rating_scale *scale, int *score)
{
	const char *d1, *d2;
	char want[MAC_B64 + 1], num[3];
	size_t n;
	int64_t j;
	int sc, v, i;

	if (token == NULL || (n = strlen(token)) > RATING_TOKEN_MAX ||
	    (d1 = strchr(token, '.')) == NULL ||
	    (d2 = strchr(d1 + 1, '.')) == NULL ||
	    job_number(token, (size_t)(d1 - token), &j) == -1 ||
	    d2 - d1 < 2 || d2 - d1 > 4 || strlen(d2 + 1) != MAC_B64)
		return -1;
	for (i = 0, sc = -1; i < RATING_NSCALES; i++)
		if (scales[i].letter == d1[1])
			sc = i;
	memcpy(num, d1 + 2, (size_t)(d2 - d1 - 2));
	num[d2 - d1 - 2] = '\0';
	if (sc == -1)
		return -1;
	if (num[0] == '\0')
		v = -1;		/* no score chosen yet: rating.url */
	else if (small_number(num, &v) == -1 ||
	    !rating_valid((enum rating_scale)sc, v))
		return -1;
	token_mac(key, keylen, j, d1[1], v, want);
	if (CRYPTO_memcmp(want, d2 + 1, MAC_B64) != 0)
		return -1;
	*job = j;
	*scale = (enum rating_scale)sc;
	*score = v;
	return 0;
}

int
rating_sampled(int64_t job, int percent)
{
	uint64_t x = (uint64_t)job;

	if (percent >= 100)
		return 1;
	if (percent <= 0)
		return 0;
	/* splitmix64's finaliser: ids spread evenly over 0 .. 9999. */
	x += UINT64_C(0x9E3779B97F4A7C15);
	x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
	x ^= x >> 31;
	return (int)(x % 10000) < percent * 100;
}
