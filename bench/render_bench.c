/* render_bench: check-in messages rendered (re-check, templates, MIME) per second on one core. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "mime.h"
#include "render.h"
#include "source.h"
#include "util.h"

/*
 * usage: render_bench CONFIG RULE FIRST_KEY COUNT NOW
 * Renders COUNT messages for the keys FIRST_KEY.. (each a real source row,
 * looked up again as render does at due time, a read transaction per 1,000
 * as in render_tick) with templates parsed once,
 * and prints "messages seconds bytes". What render_tick adds on top (the
 * spool and state.db) is measured by the end-to-end rows.
 */
int
main(int argc, char **argv)
{
	struct buf errs = { 0 }, out = { 0 };
	struct config *cfg;
	struct source *src;
	struct render *rd;
	struct timespec a, b;
	char *err = NULL, key[32];
	long first, count, bytes = 0;
	time_t now;

	if (argc != 6) {
		fprintf(stderr, "usage: render_bench CONFIG RULE FIRST_KEY "
		    "COUNT NOW\n");
		return 64;
	}
	log_init(1, 0);
	first = strtol(argv[3], NULL, 10);
	count = strtol(argv[4], NULL, 10);
	if (clock_parse(argv[5], &now) != FU_OK)
		fatalx("bad time %s", argv[5]);
	if ((cfg = config_load(argv[1], &errs)) == NULL)
		fatalx("%s", buf_cstr(&errs));
	if (source_open(cfg->database, cfg->busy_timeout_ms, &src, &err) !=
	    FU_OK)
		fatalx("%s", err);
	mime_init();
	if ((rd = render_open(cfg, 0, &errs)) == NULL)
		fatalx("%s", buf_cstr(&errs));
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < count; i++) {
		/* As render_tick does: one source read transaction per page. */
		if (i % 1000 == 0) {
			source_read_end(src);
			if (source_read_begin(src, &err) != FU_OK)
				fatalx("%s", err);
		}
		snprintf(key, sizeof(key), "%ld", first + i);
		buf_reset(&out);
		if (render_preview(rd, src, argv[2], key, now, &out, &err) !=
		    FU_OK)
			fatalx("key %s: %s", key, err);
		bytes += (long)out.len;
	}
	source_read_end(src);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%ld %.6f %ld\n", count, (double)(b.tv_sec - a.tv_sec) +
	    (double)(b.tv_nsec - a.tv_nsec) / 1e9, bytes);
	buf_free(&out);
	buf_free(&errs);
	render_close(rd);
	source_close(src);
	config_free(cfg);
	return 0;
}
