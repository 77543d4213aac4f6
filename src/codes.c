/* codes: personal codes (vouchers) given to messages, stored with their job. */
#include "codes.h"
#include "clock.h"
#include "consent.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sysexits.h>

void
codes_random(const char *alphabet, int length, char *out)
{
	size_t n = strlen(alphabet);
	/* The largest multiple of n below 256: bytes above it are drawn again,
	 * so every character is equally likely. */
	unsigned limit = 256 - 256 % (unsigned)n;
	int i = 0;

	while (i < length) {
		unsigned char rnd[64];

		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			fatal("codes: getrandom");
		for (size_t k = 0; k < sizeof(rnd) && i < length; k++)
			if (rnd[k] < limit)
				out[i++] = alphabet[rnd[k] % n];
	}
	out[length] = '\0';
}

static void
first_col(int n, char *const *names, char *const *values, void *arg)
{
	char **out = arg;

	(void)names;
	if (n > 0 && values[0] != NULL && *out == NULL)
		*out = xstrdup(values[0]);
}

int
codes_get(struct store *st, int64_t job_id, char **code, char **err)
{
	char id[24];
	const char *p[] = { id, NULL };

	*code = NULL;
	snprintf(id, sizeof(id), "%lld", (long long)job_id);
	return store_query_params(st, "SELECT code FROM job_codes WHERE job_id "
	    "= CAST(?1 AS INTEGER)", p, first_col, code, err);
}

int
codes_put(struct store *st, int64_t job_id, const char *rule,
    const char *subject, const char *code, time_t now, int *clash,
    char **err)
{
	char id[24], nowtext[24];
	const char *p[] = { id, rule, subject, code, nowtext, NULL };
	char *other = NULL;
	const char *q[] = { rule, code, NULL };
	int r;

	*clash = 0;
	if ((r = store_query_params(st, "SELECT job_id FROM job_codes WHERE "
	    "rule = ?1 AND code = ?2", q, first_col, &other, err)) != FU_OK)
		return r;
	if (other != NULL) {
		free(other);
		*clash = 1;
		return FU_OK;
	}
	snprintf(id, sizeof(id), "%lld", (long long)job_id);
	snprintf(nowtext, sizeof(nowtext), "%lld", (long long)now);
	return store_exec(st, "INSERT INTO job_codes (job_id, rule, subject, "
	    "code, created_at) VALUES (CAST(?1 AS INTEGER), ?2, ?3, ?4, "
	    "CAST(?5 AS INTEGER))", p, NULL, err);
}

int
codes_for_subject(struct store *st, const char *rule, const char *subject,
    char **code, char **err)
{
	const char *p[] = { rule, subject, NULL };

	*code = NULL;
	return store_query_params(st, "SELECT code FROM job_codes WHERE rule = "
	    "?1 AND subject = ?2 ORDER BY job_id DESC LIMIT 1", p, first_col,
	    code, err);
}

static void
code_row(int n, char *const *names, char *const *values, void *arg)
{
	char when[24];
	long long t = values[4] ? strtoll(values[4], NULL, 10) : 0;

	(void)names;
	(void)n;
	(*(int *)arg)++;
	printf("%s\t%s\t%s\t%s\t%s UTC\n", values[0], values[1],
	    values[2] ? values[2] : "-", values[3], clock_format_sql((time_t)t,
	    when));
}

int
codes_cmd(const struct config *cfg, int argc, char **argv)
{
	const struct rule_config *r;
	struct store *st;
	char *err = NULL;
	int ret, n = 0;

	if (argc != 1 || argv[0][0] == '-') {
		fputs("usage: followupd codes RULE\n", stderr);
		return EX_USAGE;
	}
	if ((r = config_rule(cfg, argv[0])) == NULL) {
		fprintf(stderr, "followupd codes: no rule '%s' in %s\n", argv[0],
		    cfg->path);
		return EX_USAGE;
	}
	if (r->code == NULL)
		fprintf(stderr, "followupd codes: rule '%s' gives no codes (no "
		    "`code` key)\n", r->name);
	if ((ret = consent_store_open(cfg, &st, &err)) != FU_OK) {
		fprintf(stderr, "followupd: %s\n", err);
		free(err);
		return ret == FU_TEMPFAIL ? EX_TEMPFAIL : EX_CONFIG;
	}
	printf("code\tsubject\trecipient\tstate\tissued_at\n");
	{
		const char *p[] = { r->name, NULL };

		ret = store_query_params(st, "SELECT c.code, c.subject, "
		    "coalesce(j.recipient, j.email), coalesce(j.state, "
		    "'removed'), c.created_at FROM job_codes c LEFT JOIN jobs j "
		    "ON j.id = c.job_id WHERE c.rule = ?1 ORDER BY c.job_id", p,
		    code_row, &n, &err);
	}
	if (ret != FU_OK)
		fprintf(stderr, "followupd codes: %s\n", err);
	free(err);
	store_close(st);
	return ret == FU_OK ? EX_OK : ret == FU_TEMPFAIL ? EX_TEMPFAIL :
	    EX_DATAERR;
}
