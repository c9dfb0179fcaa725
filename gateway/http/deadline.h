/* SPDX-License-Identifier: ISC */
/*
 * deadline.h: one lazily armed timer per connection.  A connection's
 * deadline moves with every request (later, mostly); re-arming a libevent
 * timer each time would cost a heap update per request.  Instead the timer
 * is armed only when the deadline moves earlier than the time it fires, and
 * a timer that fires before the (moved) deadline re-arms itself.  Members
 * use the dl_ prefix.  Worker-thread only, like the timer's event.
 */
#ifndef GATEHOUSE_DEADLINE_H
#define GATEHOUSE_DEADLINE_H

#include <stdint.h>

struct event;

struct deadline {
	struct event *dl_ev; /* the timer (borrowed; its owner frees it) */
	int64_t dl_at;       /* monotonic ms; 0 for none */
	int64_t dl_armed;    /* when dl_ev fires; 0 if not pending */
};

/* Monotonic milliseconds (CLOCK_MONOTONIC_COARSE: a vDSO read). */
int64_t deadline_now_ms(void);

/* Set the deadline ms from now; 0 clears it (the timer may still fire and
 * find nothing to do). */
void deadline_set(struct deadline *d, int64_t ms);

/*
 * For the timer's callback, first thing: returns 1 if the deadline has
 * passed (act on it), 0 if there is none or it lies ahead (the timer has
 * been armed again for it).
 */
int deadline_fired(struct deadline *d);

#endif
