/* test_daemon: a tick's sequencing (plan, recover, deliver alongside render, deliver_end) and its failures. */
#include "daemon.h"
#include "deliver.h"
#include "plan.h"
#include "render.h"
#include "store.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/test_daemon.XXXXXX";

/* What the fake steps saw, and what each is to answer. */
struct fake {
	char	 trace[128];	/* one letter a step: p v r b R d E */
	int	 fail_plan, fail_recover, fail_render, fail_end, fail_ratings;
	time_t	 now_seen;
	long	 done;		/* outcomes "recorded" so far */
};

static void
mark(struct fake *f, char c)
{
	size_t n = strlen(f->trace);

	if (n + 1 < sizeof(f->trace)) {
		f->trace[n] = c;
		f->trace[n + 1] = '\0';
	}
}

static int
fail(int r, const char *what, char **err)
{
	if (r != FU_OK)
		set_err(err, "%s failed", what);
	return r;
}

static int
f_plan(void *arg, time_t now, struct plan_stats *ps, char **err)
{
	struct fake *f = arg;

	mark(f, 'p');
	f->now_seen = now;
	memset(ps, 0, sizeof(*ps));
	ps->planned = 3;
	return fail(f->fail_plan, "plan", err);
}

static int
f_recover(void *arg, time_t now, char **err)
{
	(void)now;
	mark(arg, 'r');
	return fail(((struct fake *)arg)->fail_recover, "recover", err);
}

static void
f_begin(void *arg, time_t now)
{
	(void)now;
	mark(arg, 'b');
}

static int
f_render(void *arg, time_t now, struct render_stats *rs, char **err)
{
	struct fake *f = arg;

	(void)now;
	mark(f, 'R');
	memset(rs, 0, sizeof(*rs));
	f->done = 2;	/* delivery ran alongside */
	return fail(f->fail_render, "render", err);
}

static long
f_delivered(void *arg)
{
	mark(arg, 'd');
	return ((struct fake *)arg)->done;
}

static int
f_end(void *arg, struct deliver_stats *ds, char **err)
{
	mark(arg, 'E');
	memset(ds, 0, sizeof(*ds));
	return fail(((struct fake *)arg)->fail_end, "deliver", err);
}

static int
f_ratings(void *arg, time_t now, char **err)
{
	(void)now;
	mark(arg, 'v');
	return fail(((struct fake *)arg)->fail_ratings, "ratings", err);
}

static const struct daemon_steps fakes = {
	f_plan, f_recover, f_begin, f_render, f_delivered, f_end, f_ratings,
};

/* The steps' letters without the progress line's questions (d). */
static const char *
order(const struct fake *f)
{
	static char out[128];
	size_t n = 0;

	for (const char *p = f->trace; *p && n + 1 < sizeof(out); p++)
		if (*p != 'd')
			out[n++] = *p;
	out[n] = '\0';
	return out;
}

static int
tick(struct store *st, struct fake *f, time_t now, char **err)
{
	free(*err);
	*err = NULL;
	store_meta_set(st, "last_error", "", NULL);
	return daemon_tick_steps(st, &fakes, f, now, err);
}

static int
last_error_has(struct store *st, const char *text)
{
	char *v = store_meta_get(st, "last_error");
	int yes = v != NULL && strstr(v, text) != NULL;

	free(v);
	return yes;
}

int
main(void)
{
	struct store *st;
	struct fake f;
	char path[300], *err = NULL, *v;
	int r;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/state.db", dir);
	if (store_open(path, 1000, &st, &err) != FU_OK) {
		tap_ok(0, "store_open: %s", err);
		return tap_done();
	}

	memset(&f, 0, sizeof(f));
	r = tick(st, &f, 1800000000, &err);
	tap_ok(r == FU_OK && err == NULL, "a clean tick succeeds");
	tap_str(order(&f), "pvrbRE", "plan, ratings, recover, deliver_begin, "
	    "render, deliver_end: in this order");
	tap_ok(f.now_seen == 1800000000, "the tick's instant reaches the steps");
	tap_ok(strchr(f.trace, 'd') > strchr(f.trace, 'R') &&
	    strchr(f.trace, 'd') < strchr(f.trace, 'E'),
	    "what was delivered while rendering is asked between render and "
	    "deliver_end (%s)", f.trace);
	v = store_meta_get(st, "last_tick");
	tap_str(v, "2027-01-15 08:00:00", "last_tick recorded");
	free(v);

	/* A failed plan (busy source) skips planning, not the tick. */
	memset(&f, 0, sizeof(f));
	f.fail_plan = FU_TEMPFAIL;
	r = tick(st, &f, 1800000060, &err);
	tap_ok(r == FU_TEMPFAIL && err != NULL, "plan's failure is the tick's");
	tap_str(order(&f), "pvrbRE", "render and delivery still run");
	tap_ok(last_error_has(st, "plan: skipped this tick: plan failed"),
	    "noted in last_error");

	/* Ratings not acted on (state.db busy): noted, the tick goes on. */
	memset(&f, 0, sizeof(f));
	f.fail_ratings = FU_TEMPFAIL;
	r = tick(st, &f, 1800000090, &err);
	tap_ok(r == FU_TEMPFAIL && last_error_has(st, "ratings: left for the "
	    "next tick: ratings failed"), "ratings' failure is the tick's, "
	    "noted");
	tap_str(order(&f), "pvrbRE", "and everything else runs");

	/* Recovering jobs left sending: noted, not the tick's result. */
	memset(&f, 0, sizeof(f));
	f.fail_recover = FU_TEMPFAIL;
	r = tick(st, &f, 1800000120, &err);
	tap_ok(r == FU_OK && last_error_has(st, "deliver: recovering "
	    "interrupted jobs: recover failed"), "recover's failure is noted "
	    "only");
	tap_str(order(&f), "pvrbRE", "and everything else runs");

	/* A render stopped early: what is queued still goes out. */
	memset(&f, 0, sizeof(f));
	f.fail_render = FU_PERMFAIL;
	f.fail_end = FU_TEMPFAIL;
	r = tick(st, &f, 1800000180, &err);
	tap_str(order(&f), "pvrbRE", "deliver_end after a failed render");
	tap_ok(r == FU_PERMFAIL, "the first failure is the tick's (%d)", r);
	tap_ok(last_error_has(st, "deliver: stopped early: deliver failed"),
	    "the last failure is the last noted");
	v = store_meta_get(st, "last_tick");
	tap_str(v, "2027-01-15 08:03:00", "last_tick recorded after failures");
	free(v);

	store_close(st);
	free(err);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			tap_diag("could not remove %s", dir);
	}
	return tap_done();
}
