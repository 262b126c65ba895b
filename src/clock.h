/*
 * clock.h -- the monotonic clock of every local deadline: leases, the
 * breaker's and the cache's copies, reconnect backoff, round-trip timing.
 * Never the wall clock, which may step; Redis keeps the shared time.
 */
#ifndef APIGW_CLOCK_H
#define APIGW_CLOCK_H

#include <time.h>

/* Monotonic milliseconds (a vDSO read: no syscall). */
static inline long long
clock_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic microseconds. */
static inline long long
clock_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

#endif
