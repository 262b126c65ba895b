/*
 * config_keys_breaker.c -- the keys of the `circuit_breaker` section
 * (struct breaker_conf): when a backend's breaker opens and closes.
 */
#include <stddef.h>

#include "config.h"
#include "config_keys.h"

#define BO(m) offsetof(struct breaker_conf, m)

/* clang-format off */
static const int def_failure_statuses[] = { 502, 503, 504, 0 };

const struct config_key config_keys_breaker[] = {
	{ .name = "failure_threshold", .type = CK_LONG, .min = 1,
	  .max = 1000000, .def = 5, .off = BO(failure_threshold),
	  .help = "consecutive failures that open the breaker" },
	{ .name = "recovery_timeout_s", .type = CK_LONG, .min = 1,
	  .max = 86400, .def = 60, .off = BO(recovery_timeout_s),
	  .help = "seconds open before a trial request" },
	{ .name = "success_threshold", .type = CK_LONG, .min = 1,
	  .max = 1000000, .def = 3, .off = BO(success_threshold),
	  .help = "consecutive successes that close it" },
	{ .name = "failure_statuses", .type = CK_INTLIST, .min = 100,
	  .max = 599, .max_n = 500, .def_ints = def_failure_statuses,
	  .off = BO(failure_statuses), .off_n = BO(n_failure_statuses),
	  .help = "backend statuses counted as failures" },
	{ .name = NULL },
};
/* clang-format on */
