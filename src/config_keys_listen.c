/*
 * config_keys_listen.c -- the keys of the `listen` section (struct
 * listen_conf): the unix socket of `apigw --listen /path.sock`, whose
 * command-line options (--socket-mode, --socket-owner) override them.
 * Names are not looked up here: the file may be checked on a machine that
 * lacks the users; the master resolves them when it starts.
 */
#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "config_keys.h"
#include "listener.h"
#include "xalloc.h"

#define LO(m) offsetof(struct listen_conf, m)

static char *
check_mode(const char *s, char *why, size_t whylen)
{
	char q[CONFIG_QUOTE_MAX + 8];
	mode_t mode;

	if (listener_parse_mode(s, &mode) != 0) {
		config_quote(s, q, sizeof q);
		snprintf(why, whylen,
		    "%s is not an octal mode such as \"0660\" (at most 0777)",
		    q);
		return NULL;
	}
	return xasprintf("%04o", (unsigned)mode);
}

static char *
check_owner(const char *s, char *why, size_t whylen)
{
	char q[CONFIG_QUOTE_MAX + 8], r[CONFIG_WHY_MAX];

	if (listener_check_owner(s, r, sizeof r) != 0) {
		config_quote(s, q, sizeof q);
		snprintf(why, whylen, "%s: %s", q, r);
		return NULL;
	}
	return xstrdup(s);
}

/* clang-format off */
const struct config_key config_keys_listen[] = {
	{ .name = "socket_mode", .type = CK_STRING, .flags = CKF_NO_DEFAULT,
	  .check = check_mode, .off = LO(socket_mode),
	  .help = "octal permissions of the --listen unix socket" },
	{ .name = "socket_owner", .type = CK_STRING, .flags = CKF_NO_DEFAULT,
	  .check = check_owner, .off = LO(socket_owner),
	  .help = "USER[:GROUP] owning the --listen unix socket" },
	{ .name = NULL },
};
/* clang-format on */
