/*
 * config_keys_gateway.c -- the keys of the `gateway` section (struct
 * gateway_conf): client addresses, body limit, request ids, which
 * gateway.c applies.
 */
#include <stddef.h>

#include "config.h"
#include "config_keys.h"

#define GO(m) offsetof(struct gateway_conf, m)

/* clang-format off */
static const char *const def_trusted_proxies[] = {
	"127.0.0.1/32", "::1/128", NULL,
};
static const char *const def_internal_allow[] = {
	"127.0.0.0/8", "::1/128", NULL,
};

const struct config_key config_keys_gateway[] = {
	{ .name = "trusted_proxies", .type = CK_CIDRS, .max_n = 1024,
	  .def_list = def_trusted_proxies, .off = GO(trusted_proxies),
	  .off_n = GO(n_trusted_proxies),
	  .help = "peers whose X-Forwarded-For is believed" },
	{ .name = "internal_allow", .type = CK_CIDRS, .max_n = 1024,
	  .def_list = def_internal_allow, .off = GO(internal_allow),
	  .off_n = GO(n_internal_allow),
	  .help = "clients that may read /_health and /_metrics" },
	{ .name = "max_body_bytes", .type = CK_LONG, .min = 0,
	  .max = 1073741824, .def = 10485760, .off = GO(max_body_bytes),
	  .help = "bytes; larger request bodies get 413" },
	{ .name = "request_id_header", .type = CK_STRING,
	  .def_s = "X-Request-ID", .check = config_check_token,
	  .off = GO(request_id_header),
	  .help = "header name carrying the request id" },
	{ .name = NULL },
};
/* clang-format on */
