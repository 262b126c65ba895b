/*
 * config_keys_auth.c -- the keys of the `api_keys` section (struct
 * api_keys_conf), which auth.c and keys.c use to find and cache keys.
 */
#include <stddef.h>

#include "config.h"
#include "config_keys.h"

#define AO(m) offsetof(struct api_keys_conf, m)

/* clang-format off */
const struct config_key config_keys_api_keys[] = {
	{ .name = "header", .type = CK_STRING, .def_s = "X-API-Key",
	  .check = config_check_token, .off = AO(header),
	  .help = "request header carrying the API key" },
	{ .name = "cache_ttl_s", .type = CK_LONG, .min = 0, .max = 86400,
	  .def = 5, .off = AO(cache_ttl_s),
	  .help = "seconds a key record is cached in-process" },
	{ .name = NULL },
};
/* clang-format on */
