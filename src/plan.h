/*
 * plan -- a request's Redis batch: every step that needs Redis adds its
 * commands while the request is planned, the batch runs as one pipelined
 * round trip, and each step then reads its own replies by the slot it was
 * given.  Each step decides for itself what a failed batch means (auth:
 * 503, rate limit: on_failure, cache: bypass, breaker: per-process state).
 *
 *	slot = plan_add(p, &cmd);          // while planning
 *	plan_run(p, store);                // once per request
 *	v = plan_reply(p, slot);           // NULL: Redis was unreachable
 *
 * Argument vectors are borrowed: they must stay valid until plan_run().
 */
#ifndef APIGW_PLAN_H
#define APIGW_PLAN_H

#include <stddef.h>

#include "store.h"

#define PLAN_MAX 8

struct plan {
	struct store_cmd cmd[PLAN_MAX];
	struct store_batch batch; /* the replies, borrowed by plan_reply() */
	size_t n;
	int ran;         /* plan_run() was called with n > 0 */
	int failed;      /* the batch did not complete */
	const char *why; /* static reason when failed */

	long long exec_us; /* how long the round trip took, once ran */
};

void plan_init(struct plan *p);
/* Drops the replies (keeping allocations); the plan is empty again. */
void plan_reset(struct plan *p);
void plan_cleanup(struct plan *p);
/* Adds a command; returns its slot, or -1 when the plan is full. */
int plan_add(struct plan *p, const struct store_cmd *cmd);
/*
 * Runs the batch as one round trip (nothing when empty).  Returns 0, or
 * -1 when Redis was unreachable (every plan_reply() is then NULL).
 */
int plan_run(struct plan *p, struct store *s);
/* The reply in slot (borrowed from p), or NULL when the batch failed. */
const struct store_val *plan_reply(const struct plan *p, int slot);

#endif
