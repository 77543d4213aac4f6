/* test_backoff: the retry schedule: doubling from min_backoff, capped, with jitter. */
#include "deliver.h"
#include "tap.h"

int
main(void)
{
	static const struct {
		int attempts;
		long min, max;
		double jitter;
		long want;
	} cases[] = {
		{ 1, 300, 4000, 0.5, 300 },	/* Postfix-like defaults */
		{ 2, 300, 4000, 0.5, 600 },
		{ 3, 300, 4000, 0.5, 1200 },
		{ 4, 300, 4000, 0.5, 2400 },
		{ 5, 300, 4000, 0.5, 4000 },	/* capped */
		{ 50, 300, 4000, 0.5, 4000 },	/* no overflow */
		{ 1, 300, 4000, 0.0, 270 },	/* -10% */
		{ 1, 300, 4000, 1.0, 330 },	/* +10% */
		{ 5, 300, 4000, 1.0, 4400 },	/* jitter around the cap */
		{ 1, 0, 10, 0.5, 1 },		/* never zero */
		{ 3, 60, 100000, 2.0, 264 },	/* jitter clamped to 1 */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long got = deliver_backoff(cases[i].attempts, cases[i].min,
		    cases[i].max, cases[i].jitter);

		tap_ok(got == cases[i].want, "backoff(attempts %d, %ld..%ld, "
		    "jitter %.1f) = %ld (got %ld)", cases[i].attempts,
		    cases[i].min, cases[i].max, cases[i].jitter, cases[i].want,
		    got);
	}
	/* Grows monotonically until the cap, whatever the attempt. */
	{
		long prev = 0;
		int ok = 1;

		for (int a = 1; a < 40; a++) {
			long d = deliver_backoff(a, 300, 4000, 0.5);

			if (d < prev || d > 4000)
				ok = 0;
			prev = d;
		}
		tap_ok(ok, "monotonic and bounded");
	}
	return tap_done();
}
