/*
 * plugin -- the plugin host: loads the shared objects of the config's
 * `plugins` list with dlopen (this is the only module that does) and runs
 * their hooks (ABI in include/apigw/plugin.h).
 *
 * A struct plugins belongs to one config: plugins read their `config`
 * group from it for as long as they are loaded, so the config must outlive
 * the plugins (free the plugins first).  Reload builds a new set for the
 * new config and frees the old one only once the new one loaded.
 *
 *	struct plugins *ps = plugins_load(cfg, &err);   (NULL: log err)
 *	mw_run() -> plugins_on_request(ps, r)           (step 4)
 *	request_send_head() -> plugins_on_response(ps, r, status)
 *	plugins_free(ps); config_free(cfg);
 */
#ifndef APIGW_PLUGIN_HOST_H /* APIGW_PLUGIN_H is <apigw/plugin.h> */
#define APIGW_PLUGIN_HOST_H

#include "mw.h"

struct config;
struct plugins;
struct request;

/*
 * Loads cfg->plugins in order: dlopen, the `apigw_plugin` symbol, its ABI
 * version, then init with the plugin's config group.  Returns the set
 * (owned, free with plugins_free; empty when there are no plugins), or
 * NULL with *err set to "file:line: plugins: PATH: reason" (owned, free
 * it) when any plugin cannot be loaded or refuses its config; the plugins
 * loaded before it are then unloaded again.
 */
struct plugins *plugins_load(const struct config *cfg, char **err);
/* Calls every plugin's fini (last loaded first) and unloads it. */
void plugins_free(struct plugins *ps);

/*
 * Runs each plugin's on_request in config order.  MW_DONE when one
 * answered (the rest do not run); a plugin that claims to have answered
 * but did not gets a 500 sent for it.
 */
enum mw_result plugins_on_request(struct plugins *ps, struct request *r);
/* Runs each plugin's on_response; they may add to r->resp_headers. */
void plugins_on_response(struct plugins *ps, struct request *r, int status);

#endif
