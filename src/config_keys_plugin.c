/*
 * config_keys_plugin.c -- the keys of one entry of the `plugins` list
 * (struct plugin_conf), which plugin.c loads.
 */
#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "config_keys.h"
#include "xalloc.h"

static char *
check_plugin_path(const char *s, char *why, size_t whylen)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (config_is_ctl((unsigned char)s[i]))
			break;
	if (s[0] == '\0' || s[i] != '\0') {
		snprintf(why, whylen,
		    "must be a file name without control characters");
		return NULL;
	}
	return xstrdup(s);
}

/* clang-format off */
const struct config_key config_keys_plugin[] = {
	{ .name = "path", .type = CK_STRING, .flags = CKF_REQUIRED,
	  .check = check_plugin_path,
	  .off = offsetof(struct plugin_conf, path),
	  .help = "shared object to dlopen" },
	{ .name = "config", .type = CK_SETTING,
	  .off = offsetof(struct plugin_conf, setting),
	  .help = "free-form group given to the plugin's init" },
	{ .name = NULL },
};
/* clang-format on */
