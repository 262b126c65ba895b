/*
 * plan.c -- a request's Redis batch; see plan.h.
 */
#include <string.h>

#include "plan.h"

void
plan_init(struct plan *p)
{
	memset(p, 0, sizeof *p);
}

void
plan_reset(struct plan *p)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		store_val_cleanup(&p->reply[i]);
	plan_init(p);
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
	if (p->n == 0 || p->ran)
		return p->failed ? -1 : 0;
	p->ran = 1;
	if (store_exec(s, p->cmd, p->n, p->reply, &p->why) != 0) {
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
	return &p->reply[slot];
}
