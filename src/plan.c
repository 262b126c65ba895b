/*
 * plan.c -- a request's Redis batch; see plan.h.
 */
#include <string.h>
#include <time.h>

#include "clock.h"
#include "plan.h"

void
plan_init(struct plan *p)
{
	memset(p, 0, sizeof *p);
	store_batch_init(&p->batch);
}

void
plan_reset(struct plan *p)
{
	store_batch_reset(&p->batch);
	p->n = 0;
	p->ran = 0;
	p->failed = 0;
	p->why = NULL;
	p->exec_us = 0;
}

void
plan_cleanup(struct plan *p)
{
	store_batch_cleanup(&p->batch);
	memset(p, 0, sizeof *p);
}

int
plan_add(struct plan *p, const struct store_cmd *cmd)
{
	if (p->n >= PLAN_MAX || p->ran)
		return -1;
	p->cmd[p->n] = *cmd;
	return (int)p->n++;
}

int
plan_run(struct plan *p, struct store *s)
{
	long long t0;
	int rc;

	if (p->n == 0 || p->ran)
		return p->failed ? -1 : 0;
	p->ran = 1;
	t0 = clock_mono_us();
	rc = store_exec(s, p->cmd, p->n, &p->batch, &p->why);
	p->exec_us = clock_mono_us() - t0; /* for metrics */
	if (rc != 0) {
		p->failed = 1;
		return -1;
	}
	return 0;
}

const struct store_val *
plan_reply(const struct plan *p, int slot)
{
	if (p->failed || !p->ran || slot < 0 || (size_t)slot >= p->n)
		return NULL;
	return store_batch_reply(&p->batch, (size_t)slot);
}
