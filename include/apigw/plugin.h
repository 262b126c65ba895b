/*
 * apigw/plugin.h -- the plugin ABI.
 *
 * A plugin is a shared object named in the config's `plugins` list:
 *
 *	plugins = ( { path = "/usr/lib/apigw/plugins/require_authorization.so";
 *	              config = { realm = "api"; }; } );
 *
 * It exports one symbol, `apigw_plugin`, a struct apigw_plugin whose `abi`
 * is APIGW_PLUGIN_ABI.  The gateway refuses a plugin built for another ABI
 * version.  Plugins run in config order in pipeline step 4, after CORS and
 * before authentication.  They call back into the gateway only through the
 * struct apigw_host they receive, so they need no symbols from the binary.
 *
 * Threading: none.  Each gateway process loads its own copy and calls it
 * for one request at a time.
 *
 * Lifetime: when the config file changes, the gateway loads the new
 * plugin list (calling init with the new config) before it calls fini on
 * the old one, so that a refused new config leaves the old plugins in
 * force.  dlopen gives both the same copy of a plugin's globals: keep
 * per-configuration data in *state, not in globals.
 *
 * on_request runs only for requests that reach step 4 (a 404 or 405 is
 * answered before); on_response runs before every response head the
 * gateway sends, its own errors and the plugins' answers included.
 */
#ifndef APIGW_PLUGIN_H
#define APIGW_PLUGIN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define APIGW_PLUGIN_ABI 1

enum apigw_plugin_result {
	APIGW_CONTINUE = 0,	/* go on with the next step */
	APIGW_DONE = 1,		/* the plugin answered (host->respond) */
};

/* A request as plugins see it: opaque, reached through the host. */
struct apigw_req;

struct apigw_host {
	int abi;					/* APIGW_PLUGIN_ABI */
	/* Request line and headers (borrowed, valid during the call). */
	const char *(*method)(const struct apigw_req *req);
	/* The normalized path (the raw one in on_response for a 400). */
	const char *(*path)(const struct apigw_req *req);
	const char *(*client_ip)(const struct apigw_req *req);
	const char *(*header)(const struct apigw_req *req, const char *name);
	/* Sets (replaces) a request header forwarded to the backend; an
	 * empty value removes it.  0, or -1 for a bad name or value (not
	 * an RFC 9110 token; CR, LF or NUL) and for Host, Content-Length and
	 * Transfer-Encoding, which the gateway owns.  Hop-by-hop fields and
	 * the gateway's own (X-Forwarded-*, X-Consumer-*, the API key and
	 * request id headers) are still dropped or replaced on forwarding.
	 * Only on_request may call it. */
	int (*set_header)(struct apigw_req *req, const char *name,
	    const char *value);
	/* Adds a header to the response (on_request or on_response). */
	int (*add_response_header)(struct apigw_req *req, const char *name,
	    const char *value);
	/* Answers the request (status 200..599; content_type may be NULL);
	 * the response also carries the gateway's response headers (request
	 * id, CORS) and those added with add_response_header.  Only
	 * on_request may call it, once; it then returns APIGW_DONE. */
	void (*respond)(struct apigw_req *req, int status,
	    const char *content_type, const char *body, size_t len);
	/* Plugin config: the `config` group's scalar settings by name.  A
	 * string is NULL when absent or not a string; config_int returns 0,
	 * or -1 when absent or not an integer (a boolean reads as 0 or 1).
	 * Strings stay valid until fini. */
	const char *(*config_string)(const void *conf, const char *name);
	int (*config_int)(const void *conf, const char *name, long long *out);
	/* Writes to the gateway's error log (level 0 debug .. 3 error). */
	void (*log)(int level, const char *msg);
	/* The request id (also sent in the response), for problem bodies. */
	const char *(*request_id)(const struct apigw_req *req);
};

struct apigw_plugin {
	int abi;			/* APIGW_PLUGIN_ABI */
	const char *name;
	/* Called once per process after loading; conf is the `config`
	 * group (read it with host->config_*).  Returns 0, or -1 to refuse
	 * the configuration (say why with host->log first).  *state is
	 * passed back to every call.  Required: keep host from here. */
	int (*init)(const struct apigw_host *host, const void *conf,
	    void **state);
	/* May be NULL, as may on_response, but not both. */
	enum apigw_plugin_result (*on_request)(void *state,
	    struct apigw_req *req);
	/* Before the response head is sent; may add headers. */
	void (*on_response)(void *state, struct apigw_req *req, int status);
	/* Called once before unloading (not after a refused init); may be
	 * NULL. */
	void (*fini)(void *state);
};

/* Every plugin defines: const struct apigw_plugin apigw_plugin = { ... }; */
extern const struct apigw_plugin apigw_plugin;

#ifdef __cplusplus
}
#endif

#endif
