/*
 * require_authorization.c -- the example apigw plugin.
 *
 * Requests without an Authorization header get a 401 problem document
 * with "WWW-Authenticate: Bearer realm=...", before the gateway's own
 * authentication and rate limiting; the header itself is not checked (a
 * real plugin would verify the token).  Every response also gets
 * "X-Plugin: require_authorization", to show on_response at work.
 *
 * Build and configure:
 *
 *	cc -shared -fPIC -I/usr/local/include -o require_authorization.so \
 *	    require_authorization.c
 *
 *	plugins = ( { path = "/usr/local/lib/apigw/plugins/require_authorization.so";
 *	              config = { realm = "api"; }; } );
 *
 * config: realm (string, default "apigw"): the realm in the challenge;
 * letters, digits and " -._:/" only, so it needs no quoting.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apigw/plugin.h>

struct state {
	const struct apigw_host *host;
	char challenge[160]; /* the WWW-Authenticate value */
};

static int
realm_ok(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		char c = s[n];

		if (n >= 100 ||
		    !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || strchr(" -._:/", c) != NULL))
			return 0;
	}
	return n > 0;
}

static int
ra_init(const struct apigw_host *host, const void *conf, void **statep)
{
	const char *realm = host->config_string(conf, "realm");
	struct state *st;

	if (realm == NULL)
		realm = "apigw";
	if (!realm_ok(realm)) {
		host->log(3, "realm: 1 to 100 letters, digits or \" -._:/\"");
		return -1;
	}
	st = calloc(1, sizeof *st);
	if (st == NULL) {
		host->log(3, "out of memory");
		return -1;
	}
	st->host = host;
	snprintf(st->challenge, sizeof st->challenge, "Bearer realm=\"%s\"",
	    realm);
	*statep = st;
	return 0;
}

static enum apigw_plugin_result
ra_on_request(void *state, struct apigw_req *req)
{
	const struct state *st = state;
	const struct apigw_host *h = st->host;
	const char *auth = h->header(req, "Authorization");
	char body[512];
	int n;

	if (auth != NULL && auth[0] != '\0')
		return APIGW_CONTINUE;
	/* The request id is [A-Za-z0-9._:-] only: no JSON escaping needed. */
	n = snprintf(body, sizeof body,
	    "{\"type\":\"about:blank\",\"title\":\"Unauthorized\","
	    "\"status\":401,\"detail\":\"this API requires an Authorization "
	    "header\",\"error\":\"missing authorization\","
	    "\"request_id\":\"%s\"}\n",
	    h->request_id(req));
	if (n < 0 || (size_t)n >= sizeof body)
		n = 0;
	h->add_response_header(req, "WWW-Authenticate", st->challenge);
	h->respond(req, 401, "application/problem+json", body, (size_t)n);
	return APIGW_DONE;
}

static void
ra_on_response(void *state, struct apigw_req *req, int status)
{
	const struct state *st = state;

	(void)status;
	st->host->add_response_header(req, "X-Plugin", "require_authorization");
}

static void
ra_fini(void *state)
{
	free(state);
}

const struct apigw_plugin apigw_plugin = {
	.abi = APIGW_PLUGIN_ABI,
	.name = "require_authorization",
	.init = ra_init,
	.on_request = ra_on_request,
	.on_response = ra_on_response,
	.fini = ra_fini,
};
