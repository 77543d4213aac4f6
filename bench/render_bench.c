/* render_bench: check-in messages rendered (templates + MIME) per second on one core. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "mime.h"
#include "preview.h"
#include "source.h"
#include "util.h"

/*
 * usage: render_bench CONFIG RULE FIRST_KEY COUNT NOW
 *
 * Prints two lines (bench/run.py reads them), each
 * "LABEL MESSAGES SECONDS BYTES":
 *
 *   templates+mime N SECONDS BYTES
 *	what issue 7's target names: the COUNT source rows (re-checked and
 *	with their history, as render does at due time) are all loaded
 *	before the clock starts; the clock then runs over rendering them
 *	only (the values render derives, the subject, text and html
 *	templates, parsed once, and the MIME message), through
 *	preview_loaded_build, which calls compose_message as render_tick does.
 *   with-queries N SECONDS BYTES
 *	the same COUNT messages through preview_message: the source
 *	queries (re-check, history) and the rendering, a source read
 *	transaction per 1,000 as in render_tick.
 *
 * The keys are FIRST_KEY.. (each a real source row). What render_tick
 * adds on top (the spool and state.db) is measured by the end-to-end rows.
 */

#define PAGE	1000	/* render_tick's page: one read transaction each */

static double
since(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a->tv_sec) +
	    (double)(b.tv_nsec - a->tv_nsec) / 1e9;
}

static void
page_turn(struct source *src, long i)
{
	char *err = NULL;

	if (i % PAGE != 0)
		return;
	source_read_end(src);
	if (source_read_begin(src, &err) != FU_OK)
		fatalx("%s", err);
}

int
main(int argc, char **argv)
{
	struct buf errs = { 0 }, out = { 0 };
	struct preview_loaded **ld;
	struct config *cfg;
	struct source *src;
	struct preview *rd;
	struct timespec a;
	char *err = NULL, key[32];
	long first, count, bytes = 0;
	double secs;
	time_t now;

	if (argc != 6) {
		fprintf(stderr, "usage: render_bench CONFIG RULE FIRST_KEY "
		    "COUNT NOW\n");
		return 64;
	}
	log_init(1, 0);
	first = strtol(argv[3], NULL, 10);
	count = strtol(argv[4], NULL, 10);
	if (count < 1)
		fatalx("bad count %s", argv[4]);
	if (clock_parse(argv[5], &now) != FU_OK)
		fatalx("bad time %s", argv[5]);
	if ((cfg = config_load(argv[1], &errs)) == NULL)
		fatalx("%s", buf_cstr(&errs));
	if (source_open(cfg->database, cfg->busy_timeout_ms, &src, &err) !=
	    FU_OK)
		fatalx("%s", err);
	if ((rd = preview_open(cfg, &errs)) == NULL)
		fatalx("%s", buf_cstr(&errs));

	/* templates + MIME: every row loaded first, off the clock. */
	ld = xcalloc((size_t)count, sizeof(*ld));
	for (long i = 0; i < count; i++) {
		page_turn(src, i);
		snprintf(key, sizeof(key), "%ld", first + i);
		if (preview_load(rd, src, argv[2], key, now, &ld[i], &err) !=
		    FU_OK)
			fatalx("key %s: %s", key, err);
	}
	source_read_end(src);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < count; i++) {
		buf_reset(&out);
		if (preview_loaded_build(rd, ld[i], &out, &err) != FU_OK)
			fatalx("key %ld: %s", first + i, err);
		bytes += (long)out.len;
	}
	secs = since(&a);
	for (long i = 0; i < count; i++)
		preview_loaded_free(ld[i]);
	free(ld);
	printf("templates+mime %ld %.6f %ld\n", count, secs, bytes);
	fflush(stdout);

	/* with queries: preview_message, as before. */
	bytes = 0;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < count; i++) {
		page_turn(src, i);
		snprintf(key, sizeof(key), "%ld", first + i);
		buf_reset(&out);
		if (preview_message(rd, src, argv[2], key, now, &out, &err) !=
		    FU_OK)
			fatalx("key %s: %s", key, err);
		bytes += (long)out.len;
	}
	source_read_end(src);
	secs = since(&a);
	printf("with-queries %ld %.6f %ld\n", count, secs, bytes);

	buf_free(&out);
	buf_free(&errs);
	preview_close(rd);
	source_close(src);
	config_free(cfg);
	return 0;
}
