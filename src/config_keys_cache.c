/*
 * config_keys_cache.c -- the keys of the `cache` section (struct
 * cache_conf), the shared response cache (enabled per route).
 */
#include <stddef.h>

#include "config.h"
#include "config_keys.h"

/* clang-format off */
const struct config_key config_keys_cache[] = {
	{ .name = "max_object_bytes", .type = CK_LONG, .min = 0,
	  .max = 536870912, .def = 1048576,
	  .off = offsetof(struct cache_conf, max_object_bytes),
	  .help = "bytes; larger responses are not cached" },
	{ .name = "local_bytes", .type = CK_LONG, .min = 0,
	  .max = 67108864, .def = 1048576,
	  .off = offsetof(struct cache_conf, local_bytes),
	  .help = "bytes of entries each process copies for up to 1 s; "
	          "0 = off" },
	{ .name = NULL },
};
/* clang-format on */
