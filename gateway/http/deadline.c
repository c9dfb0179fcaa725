/* SPDX-License-Identifier: ISC */
/*
 * deadline.c: a lazily armed timer (deadline.h), shared by the client
 * connections (conn.c) and the upstream connections (upstream.c).
 */
#include <time.h>

#include <event2/event.h>

#include "http/deadline.h"

int64_t
deadline_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Arm the timer for dl_at, unless it already fires no later. */
static void
deadline_arm(struct deadline *d)
{
	struct timeval tv;
	int64_t ms;

	if (d->dl_at == 0 || (d->dl_armed != 0 && d->dl_armed <= d->dl_at + 10))
		return;
	ms = d->dl_at - deadline_now_ms();
	if (ms < 0)
		ms = 0;
	/* COARSE time can lag by a tick: fire a little late, never early. */
	ms += 10;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	d->dl_armed = d->dl_at + 10;
	event_add(d->dl_ev, &tv);
}

void
deadline_set(struct deadline *d, int64_t ms)
{
	d->dl_at = ms == 0 ? 0 : deadline_now_ms() + ms;
	deadline_arm(d);
}

int
deadline_fired(struct deadline *d)
{
	d->dl_armed = 0;
	if (d->dl_at == 0)
		return 0;
	if (deadline_now_ms() < d->dl_at) {
		deadline_arm(d);
		return 0;
	}
	return 1;
}
