/*
 * config_keys_ratelimit.c -- what a rate-limit policy is made of: the
 * window and algorithm names and the keys of a policy group (struct
 * rl_policy), used by the top-level `rate_limit` section and by a route's
 * `rate_limit`.  ratelimit.c applies the policies.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "config_keys.h"
#include "xalloc.h"

/* clang-format off */
const long rl_window_seconds[RL_NWINDOWS] = { 1, 60, 3600, 86400 };
const char *const rl_window_names[RL_NWINDOWS] = {
	"second", "minute", "hour", "day",
};
const char *const rl_algorithm_names[] = {
	"sliding_window", "token_bucket", "fixed_window", "gcra", NULL,
};
/* clang-format on */

/* Enum-valued keys are stored as int: make sure that is what they are. */
_Static_assert(sizeof(enum rl_algorithm) == sizeof(int), "enum size");

int
rl_algorithm_parse(const char *name, enum rl_algorithm *out)
{
	int i;

	if (name == NULL)
		return -1;
	for (i = 0; rl_algorithm_names[i] != NULL; i++) {
		if (strcmp(name, rl_algorithm_names[i]) == 0) {
			*out = (enum rl_algorithm)i;
			return 0;
		}
	}
	return -1;
}

static char *
check_policy_name(const char *s, char *why, size_t whylen)
{
	size_t len = strlen(s), i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '_' || c == '-'))
			break;
	}
	if (len == 0 || len > 31 || i < len) {
		snprintf(why, whylen,
		    "must be 1 to 31 characters of A-Z, a-z, 0-9, '_' and '-'");
		return NULL;
	}
	return xstrdup(s);
}

#define PO(m) offsetof(struct rl_policy, m)

/*
 * The windows have no default: a policy uses the windows it names.  (The
 * walker gives the top-level policy requests_per_minute = 60 when it names
 * none, and requires at least one in any other policy.)  name's default
 * comes from the policy's entry in the enclosing table.
 */
/* clang-format off */
const struct config_key config_keys_policy[] = {
	{ .name = "name", .type = CK_STRING, .flags = CKF_NO_DEFAULT,
	  .check = check_policy_name, .off = PO(name),
	  .help = "window names are name-minute etc." },
	{ .name = "shadow", .type = CK_BOOL, .def = 0, .off = PO(shadow),
	  .help = "count and report, never reject" },
	{ .name = "algorithm", .type = CK_ENUM, .names = rl_algorithm_names,
	  .def = RL_SLIDING_WINDOW, .off = PO(algorithm),
	  .help = "sliding_window | token_bucket | fixed_window | gcra" },
	{ .name = "requests_per_second", .type = CK_LONG,
	  .flags = CKF_NO_DEFAULT, .min = 1, .max = CONFIG_RATE_MAX,
	  .off = PO(limit[RL_SECOND]), .help = "requests per 1 s window" },
	{ .name = "requests_per_minute", .type = CK_LONG,
	  .flags = CKF_NO_DEFAULT, .min = 1, .max = CONFIG_RATE_MAX,
	  .off = PO(limit[RL_MINUTE]), .help = "requests per 60 s window" },
	{ .name = "requests_per_hour", .type = CK_LONG,
	  .flags = CKF_NO_DEFAULT, .min = 1, .max = CONFIG_RATE_MAX,
	  .off = PO(limit[RL_HOUR]), .help = "requests per 3600 s window" },
	{ .name = "requests_per_day", .type = CK_LONG,
	  .flags = CKF_NO_DEFAULT, .min = 1, .max = CONFIG_RATE_MAX,
	  .off = PO(limit[RL_DAY]), .help = "requests per 86400 s window" },
	{ .name = "burst_size", .type = CK_LONG, .min = 0,
	  .max = CONFIG_RATE_MAX, .def = 0, .off = PO(burst_size),
	  .help = "bucket capacity of the shortest window; 0 = its limit" },
	{ .name = "lease_max_units", .type = CK_LONG, .min = 0, .max = 1000,
	  .def = 0, .off = PO(lease_max_units),
	  .help = "units a process may reserve per lease; 0 = no leases" },
	{ .name = "lease_ms", .type = CK_LONG, .min = 10, .max = 1000,
	  .def = 200, .off = PO(lease_ms),
	  .help = "longest life of a lease, milliseconds" },
	{ .name = NULL },
};
/* clang-format on */
