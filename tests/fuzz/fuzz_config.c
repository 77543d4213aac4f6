/*
 * fuzz_config: scheduler.conf parsing (config_load) and durations
 * (config_parse_duration) with arbitrary bytes.
 *
 * The input is written to scheduler.conf in a private temporary directory
 * (config_load reads a file; relative paths resolve there) and loaded.
 * Beyond "no crash, no leak": a refused file has at least one error and
 * every error line names the file and a line number ("PATH:N: ..."); an
 * accepted one has none and its values are within their bounds. Each line
 * of the input is also parsed as a duration.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"
#include "util.h"

static char *conf_path;

static void
setup(void)
{
	char tmpl[] = "/tmp/fuzz-config.XXXXXX";
	char *dir;

	if ((dir = mkdtemp(tmpl)) == NULL) {
		perror("mkdtemp");
		abort();
	}
	conf_path = xasprintf("%s/scheduler.conf", dir);
}

static void
check_errors(const struct buf *errs)
{
	const char *p = errs->data, *end = errs->data + errs->len;
	size_t plen = strlen(conf_path);

	FUZZ_ASSERT(errs->len > 0, "a refused config has an error");
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *q;

		FUZZ_ASSERT(nl != NULL, "error lines end with a newline");
		FUZZ_ASSERT((size_t)(nl - p) > plen + 1 &&
		    strncmp(p, conf_path, plen) == 0 && p[plen] == ':',
		    "an error names the file");
		for (q = p + plen + 1; q < nl && *q >= '0' && *q <= '9'; q++)
			;
		/* "FILE:LINE: message", or "FILE: message" for the whole file. */
		FUZZ_ASSERT((q > p + plen + 1 && *q == ':') ||
		    (q == p + plen + 1 && *q == ' '), "an error names the line");
		p = nl + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf errs = { 0 };
	struct config *cfg;
	FILE *f;

	if (conf_path == NULL)
		setup();
	if ((f = fopen(conf_path, "wb")) == NULL ||
	    fwrite(data, 1, size, f) != size || fclose(f) != 0) {
		perror(conf_path);
		abort();
	}
	if ((cfg = config_load(conf_path, &errs)) == NULL)
		check_errors(&errs);
	else {
		FUZZ_ASSERT(errs.len == 0, "an accepted config has no error");
		FUZZ_ASSERT(cfg->batch >= 1 && cfg->tick >= 1 &&
		    cfg->min_backoff >= 1 && cfg->max_backoff >= 1 &&
		    cfg->busy_timeout_ms >= 0, "values within bounds");
		FUZZ_ASSERT(cfg->from != NULL && cfg->from_addr != NULL &&
		    cfg->database != NULL, "required keys present");
		for (int i = 0; i < cfg->nrules; i++)
			FUZZ_ASSERT(cfg->rules[i].name != NULL &&
			    cfg->rules[i].template_name != NULL,
			    "rules are named");
		config_free(cfg);
	}
	buf_free(&errs);

	/* Every line as a duration. */
	{
		char *copy = xmalloc(size + 1), *line, *save = NULL;

		memcpy(copy, data, size);
		copy[size] = '\0';
		for (line = strtok_r(copy, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save)) {
			char *err = NULL;
			long v = -1;

			if (config_parse_duration(line, &v, &err) == FU_OK)
				FUZZ_ASSERT(v >= 0 && err == NULL,
				    "a duration is not negative");
			else
				FUZZ_ASSERT(err != NULL, "a bad duration says why");
			free(err);
		}
		free(copy);
	}
	return 0;
}
