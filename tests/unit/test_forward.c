/*
 * Unit tests for forward.c: the backend URL, which header fields the
 * gateway owns, and the header fields a backend gets.  Requests and
 * configs are built by hand (no FastCGI, no config file).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "buf.h"
#include "config.h"
#include "forward.h"
#include "hdrs.h"
#include "request.h"

/* ---- forward_url ------------------------------------------------------ */

static void
test_url_table(void **state)
{
	static const struct {
		const char *backend;
		const char *path;
		const char *query; /* NULL: no '?' */
		const char *want;
	} cases[] = {
	    {"http://b:8080", "/", NULL, "http://b:8080/"},
	    {"http://b:8080", "/a/b/c", NULL, "http://b:8080/a/b/c"},
	    {"http://b", "", NULL, "http://b"},
	    /* Kept raw: unreserved, sub-delims, ':', '@', '/', '%'. */
	    {"http://b", "/AZaz09-._~", NULL, "http://b/AZaz09-._~"},
	    {"http://b", "/!$&'()*+,;=", NULL, "http://b/!$&'()*+,;="},
	    {"http://b", "/user:pw@x", NULL, "http://b/user:pw@x"},
	    {"http://b", "/caf%C3%A9/%2F", NULL, "http://b/caf%C3%A9/%2F"},
	    /* Encoded, upper-case hex. */
	    {"http://b", "/a b", NULL, "http://b/a%20b"},
	    {"http://b", "/\"<>\\^`{|}", NULL,
	        "http://b/%22%3C%3E%5C%5E%60%7B%7C%7D"},
	    {"http://b", "/caf\xc3\xa9", NULL, "http://b/caf%C3%A9"},
	    {"http://b", "/\x80\xff", NULL, "http://b/%80%FF"},
	    {"http://b", "/\x01\t\n\r\x1f\x7f", NULL,
	        "http://b/%01%09%0A%0D%1F%7F"},
	    /* '?' and '#' in a path never start a query or a fragment. */
	    {"http://b", "/a?b#c", NULL, "http://b/a%3Fb%23c"},
	    {"http://b", "/a?b", "c=d", "http://b/a%3Fb?c=d"},
	    {"http://b", "/[::1]", NULL, "http://b/%5B::1%5D"},
	    /* The query goes exactly as given. */
	    {"http://b", "/s", "q=a b&x=%ZZ\"<>", "http://b/s?q=a b&x=%ZZ\"<>"},
	    {"http://b", "/s", "", "http://b/s?"},
	    {"http://b", "/s", "?", "http://b/s??"},
	    {"http://b", "/s", "a=1&b=2", "http://b/s?a=1&b=2"},
	    {"http://b", "/", "x", "http://b/?x"},
	    /* The backend is copied as it is. */
	    {"https://[2001:db8::1]:8443/base", "/x y", "",
	        "https://[2001:db8::1]:8443/base/x%20y?"},
	};
	struct buf b;
	size_t i;

	(void)state;
	buf_init(&b);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		buf_reset(&b);
		forward_url(
		    &b, cases[i].backend, cases[i].path, cases[i].query);
		if (strcmp(buf_cstr(&b), cases[i].want) != 0 ||
		    b.len != strlen(cases[i].want))
			fail_msg("case %zu: got \"%s\", want \"%s\"", i,
			    buf_cstr(&b), cases[i].want);
	}
	buf_cleanup(&b);
}

static int
path_byte_kept(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || strchr("-._~!$&'()*+,;=:@/%", c) != NULL;
}

/* Every byte value, one at a time: raw when allowed, else %XX. */
static void
test_url_every_byte(void **state)
{
	static const char hex[] = "0123456789ABCDEF";
	char path[4], want[32];
	struct buf b;
	int c;

	(void)state;
	buf_init(&b);
	for (c = 1; c < 256; c++) {
		snprintf(path, sizeof path, "/%c", c);
		if (path_byte_kept(c))
			snprintf(want, sizeof want, "http://b/%c", c);
		else
			snprintf(want, sizeof want, "http://b/%%%c%c",
			    hex[c >> 4], hex[c & 15]);
		buf_reset(&b);
		forward_url(&b, "http://b", path, NULL);
		if (strcmp(buf_cstr(&b), want) != 0)
			fail_msg("byte 0x%02x: got \"%s\", want \"%s\"", c,
			    buf_cstr(&b), want);
	}
	buf_cleanup(&b);
}

/* forward_url appends: what is in the buffer stays. */
static void
test_url_appends(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	buf_puts(&b, "URL=");
	forward_url(&b, "http://b", "/a b", "q");
	assert_string_equal(buf_cstr(&b), "URL=http://b/a%20b?q");
	buf_cleanup(&b);
}

/* ---- forward_header_class --------------------------------------------- */

struct fixture {
	struct config cfg;
	struct request r;
	struct hdrs out;
	struct buf scratch;
};

static int
setup(void **state)
{
	static struct fixture fx;

	memset(&fx, 0, sizeof fx);
	fx.cfg.api_keys.header = "X-API-Key";
	fx.cfg.gateway.request_id_header = "X-Request-ID";
	request_init(&fx.r);
	fx.r.remote_addr = "192.0.2.10";
	fx.r.scheme = "https";
	fx.r.host = "api.example.com";
	snprintf(fx.r.request_id, sizeof fx.r.request_id, "rid-1");
	hdrs_init(&fx.out);
	buf_init(&fx.scratch);
	*state = &fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	request_cleanup(&fx->r);
	hdrs_cleanup(&fx->out);
	buf_cleanup(&fx->scratch);
	return 0;
}

static const char *
class_name(enum forward_class c)
{
	switch (c) {
	case FORWARD_PASS: return "PASS";
	case FORWARD_GATEWAY: return "GATEWAY";
	case FORWARD_FRAMING: return "FRAMING";
	}
	return "?";
}

static void
test_header_class(void **state)
{
	static const struct {
		const char *name;
		enum forward_class with_cfg;
		enum forward_class without_cfg; /* cfg NULL */
	} cases[] = {
	    {"Host", FORWARD_FRAMING, FORWARD_FRAMING},
	    {"host", FORWARD_FRAMING, FORWARD_FRAMING},
	    {"Content-Length", FORWARD_FRAMING, FORWARD_FRAMING},
	    {"CONTENT-LENGTH", FORWARD_FRAMING, FORWARD_FRAMING},
	    {"Transfer-Encoding", FORWARD_FRAMING, FORWARD_FRAMING},
	    {"transfer-encoding", FORWARD_FRAMING, FORWARD_FRAMING},
	    {"Expect", FORWARD_GATEWAY, FORWARD_GATEWAY},
	    {"Proxy", FORWARD_GATEWAY, FORWARD_GATEWAY},
	    {"proxy", FORWARD_GATEWAY, FORWARD_GATEWAY},
	    {"X-Forwarded-For", FORWARD_GATEWAY, FORWARD_GATEWAY},
	    {"x-forwarded-for", FORWARD_GATEWAY, FORWARD_GATEWAY},
	    {"X-Forwarded-Proto", FORWARD_GATEWAY, FORWARD_GATEWAY},
	    {"X-FORWARDED-HOST", FORWARD_GATEWAY, FORWARD_GATEWAY},
	    {"X-Consumer-ID", FORWARD_GATEWAY, FORWARD_GATEWAY},
	    {"X-Consumer-Name", FORWARD_GATEWAY, FORWARD_GATEWAY},
	    {"x-consumer-id", FORWARD_GATEWAY, FORWARD_GATEWAY},
	    {"X-CONSUMER-GROUPS", FORWARD_GATEWAY, FORWARD_GATEWAY},
	    {"X-Consumer-", FORWARD_GATEWAY, FORWARD_GATEWAY},
	    /* The configured names: only known with a config. */
	    {"X-API-Key", FORWARD_GATEWAY, FORWARD_PASS},
	    {"x-api-key", FORWARD_GATEWAY, FORWARD_PASS},
	    {"X-Request-ID", FORWARD_GATEWAY, FORWARD_PASS},
	    {"x-request-id", FORWARD_GATEWAY, FORWARD_PASS},
	    /* Near misses pass. */
	    {"Hosts", FORWARD_PASS, FORWARD_PASS},
	    {"Content-Len", FORWARD_PASS, FORWARD_PASS},
	    {"X-Forwarded-Fo", FORWARD_PASS, FORWARD_PASS},
	    {"X-Forwarded-Fort", FORWARD_PASS, FORWARD_PASS},
	    {"X-Consumer", FORWARD_PASS, FORWARD_PASS},
	    {"X-ConsumerID", FORWARD_PASS, FORWARD_PASS},
	    {"My-X-Consumer-ID", FORWARD_PASS, FORWARD_PASS},
	    {"X-API-Keys", FORWARD_PASS, FORWARD_PASS},
	    {"X-Request-IDs", FORWARD_PASS, FORWARD_PASS},
	    {"Proxy-Foo", FORWARD_PASS, FORWARD_PASS},
	    {"Accept", FORWARD_PASS, FORWARD_PASS},
	    {"Authorization", FORWARD_PASS, FORWARD_PASS},
	    {"Cookie", FORWARD_PASS, FORWARD_PASS},
	    {"Content-Type", FORWARD_PASS, FORWARD_PASS},
	};
	struct fixture *fx = *state;
	enum forward_class got;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		got = forward_header_class(&fx->cfg, cases[i].name);
		if (got != cases[i].with_cfg)
			fail_msg("%s: %s, want %s", cases[i].name,
			    class_name(got), class_name(cases[i].with_cfg));
		got = forward_header_class(NULL, cases[i].name);
		if (got != cases[i].without_cfg)
			fail_msg("%s (cfg NULL): %s, want %s", cases[i].name,
			    class_name(got), class_name(cases[i].without_cfg));
	}

	/* Other configured names move with the config. */
	fx->cfg.api_keys.header = "Authorization";
	fx->cfg.gateway.request_id_header = "X-Correlation-ID";
	assert_int_equal(
	    forward_header_class(&fx->cfg, "authorization"), FORWARD_GATEWAY);
	assert_int_equal(forward_header_class(&fx->cfg, "X-CORRELATION-ID"),
	    FORWARD_GATEWAY);
	assert_int_equal(
	    forward_header_class(&fx->cfg, "X-API-Key"), FORWARD_PASS);
	assert_int_equal(
	    forward_header_class(&fx->cfg, "X-Request-ID"), FORWARD_PASS);
	/* The fixed ones do not. */
	assert_int_equal(
	    forward_header_class(&fx->cfg, "X-Consumer-ID"), FORWARD_GATEWAY);
	assert_int_equal(
	    forward_header_class(&fx->cfg, "Host"), FORWARD_FRAMING);
}

/* ---- forward_headers -------------------------------------------------- */

static void
add(struct request *r, const char *name, const char *value)
{
	if (hdrs_add(&r->headers, name, value) != 0)
		fail_msg("hdrs_add(%s, %s) failed", name, value);
}

/*
 * Asserts that out is exactly: the "Name: value" lines of passed, first
 * and in that order, then those of gw in any order, each once.
 */
static void
assert_forwarded(const struct hdrs *out, const char *const *passed,
    size_t npassed, const char *const *gw, size_t ngw)
{
	char line[512], all[4096];
	size_t i, j, seen;
	int found;

	all[0] = '\0';
	for (i = 0; i < out->n; i++) {
		size_t len = strlen(all);

		snprintf(all + len, sizeof all - len, "%s%s: %s",
		    i ? " | " : "", out->v[i].name, out->v[i].value);
	}
	if (out->n != npassed + ngw)
		fail_msg(
		    "%zu fields, want %zu: %s", out->n, npassed + ngw, all);
	for (i = 0; i < npassed; i++) {
		snprintf(line, sizeof line, "%s: %s", out->v[i].name,
		    out->v[i].value);
		if (strcmp(line, passed[i]) != 0)
			fail_msg("field %zu is \"%s\", want \"%s\": %s", i,
			    line, passed[i], all);
	}
	for (j = 0; j < ngw; j++) {
		seen = 0;
		for (i = npassed; i < out->n; i++) {
			snprintf(line, sizeof line, "%s: %s", out->v[i].name,
			    out->v[i].value);
			found = strcmp(line, gw[j]) == 0;
			seen += (size_t)found;
		}
		if (seen != 1)
			fail_msg("\"%s\" after the passed fields %zu times, "
			         "want once: %s",
			    gw[j], seen, all);
	}
}

#define LIST(...)                                                              \
	(const char *const[]){__VA_ARGS__},                                    \
	    sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)
#define NONE NULL, 0

/* A plain request: the client's fields in order, then the gateway's. */
static void
test_headers_basic(void **state)
{
	struct fixture *fx = *state;
	struct request *r = &fx->r;

	add(r, "Accept", "application/json");
	add(r, "User-Agent", "curl/8");
	add(r, "X-Custom", "1");
	add(r, "accept-language", "en");
	add(r, "X-Custom", "2");
	add(r, "Cookie", "a=b");
	add(r, "Authorization", "Bearer t");
	/* Stale content in out and scratch does not leak in. */
	hdrs_add(&fx->out, "X-Stale", "old");
	buf_puts(&fx->scratch, "junk, ");

	forward_headers(&fx->cfg, r, &fx->out, &fx->scratch);
	assert_forwarded(&fx->out,
	    LIST("Accept: application/json", "User-Agent: curl/8",
	        "X-Custom: 1", "accept-language: en", "X-Custom: 2",
	        "Cookie: a=b", "Authorization: Bearer t"),
	    LIST("X-Forwarded-For: 192.0.2.10", "X-Forwarded-Proto: https",
	        "X-Forwarded-Host: api.example.com", "X-Request-ID: rid-1"));
}

static void
test_headers_no_client_fields(void **state)
{
	struct fixture *fx = *state;

	fx->r.scheme = "http";
	fx->r.host = "";
	forward_headers(&fx->cfg, &fx->r, &fx->out, &fx->scratch);
	/* No Host: no X-Forwarded-Host. */
	assert_forwarded(&fx->out, NONE,
	    LIST("X-Forwarded-For: 192.0.2.10", "X-Forwarded-Proto: http",
	        "X-Request-ID: rid-1"));
}

/* Hop-by-hop fields go, with whatever Connection names (any case). */
static void
test_headers_hop_by_hop(void **state)
{
	struct fixture *fx = *state;
	struct request *r = &fx->r;

	add(r, "Accept", "*/*");
	add(r, "X-Before", "named later, still dropped");
	add(r, "Connection", "keep-alive, x-before, X-After");
	add(r, "Keep-Alive", "timeout=5");
	add(r, "Proxy-Connection", "keep-alive");
	add(r, "TE", "trailers");
	add(r, "Trailer", "X-T");
	add(r, "Transfer-Encoding", "chunked");
	add(r, "Upgrade", "websocket");
	add(r, "Proxy-Authorization", "Basic eA==");
	add(r, "X-After", "dropped");
	add(r, "connection", " ,\tX-Second , ");
	add(r, "X-Second", "dropped");
	add(r, "X-Kept", "yes");

	forward_headers(&fx->cfg, r, &fx->out, &fx->scratch);
	assert_forwarded(&fx->out, LIST("Accept: */*", "X-Kept: yes"),
	    LIST("X-Forwarded-For: 192.0.2.10", "X-Forwarded-Proto: https",
	        "X-Forwarded-Host: api.example.com", "X-Request-ID: rid-1"));
}

/* The client's versions of the gateway's fields never get through. */
static void
test_headers_gateway_owned(void **state)
{
	struct fixture *fx = *state;
	struct request *r = &fx->r;

	add(r, "Host", "evil.example");
	add(r, "Content-Length", "5");
	add(r, "Expect", "100-continue");
	add(r, "Proxy", "http://evil:3128");
	add(r, "X-Forwarded-Proto", "gopher");
	add(r, "X-Forwarded-Host", "evil.example");
	add(r, "x-request-id", "client-chosen");
	add(r, "X-API-Key", "secret-key");
	add(r, "x-api-key", "secret-key-2");
	add(r, "X-Consumer-ID", "admin");
	add(r, "x-consumer-name", "root");
	add(r, "X-Consumer-Groups", "admins");
	add(r, "Accept", "*/*");

	/* No key accepted: no X-Consumer-* at all. */
	forward_headers(&fx->cfg, r, &fx->out, &fx->scratch);
	assert_forwarded(&fx->out, LIST("Accept: */*"),
	    LIST("X-Forwarded-For: 192.0.2.10", "X-Forwarded-Proto: https",
	        "X-Forwarded-Host: api.example.com", "X-Request-ID: rid-1"));

	/* A key accepted: the gateway's X-Consumer-ID/Name, once each. */
	snprintf(r->key_id, sizeof r->key_id, "k123");
	snprintf(r->key_name, sizeof r->key_name, "mobile app");
	forward_headers(&fx->cfg, r, &fx->out, &fx->scratch);
	assert_forwarded(&fx->out, LIST("Accept: */*"),
	    LIST("X-Forwarded-For: 192.0.2.10", "X-Forwarded-Proto: https",
	        "X-Forwarded-Host: api.example.com", "X-Request-ID: rid-1",
	        "X-Consumer-ID: k123", "X-Consumer-Name: mobile app"));
	assert_int_equal(hdrs_count(&fx->out, "X-Consumer-ID"), 1);
	assert_int_equal(hdrs_count(&fx->out, "X-Consumer-Name"), 1);
	assert_int_equal(hdrs_count(&fx->out, "X-Consumer-Groups"), 0);
	assert_int_equal(hdrs_count(&fx->out, "X-API-Key"), 0);
}

/* Other configured names: the API key in Authorization, another id name. */
static void
test_headers_configured_names(void **state)
{
	struct fixture *fx = *state;
	struct request *r = &fx->r;
	size_t i;

	fx->cfg.api_keys.header = "Authorization";
	fx->cfg.gateway.request_id_header = "X-Correlation-ID";
	add(r, "authorization", "secret-key");
	add(r, "X-API-Key", "just a field now");
	add(r, "X-Request-ID", "client's, passed");
	add(r, "x-correlation-id", "client-chosen");

	forward_headers(&fx->cfg, r, &fx->out, &fx->scratch);
	assert_forwarded(&fx->out,
	    LIST("X-API-Key: just a field now",
	        "X-Request-ID: client's, passed"),
	    LIST("X-Forwarded-For: 192.0.2.10", "X-Forwarded-Proto: https",
	        "X-Forwarded-Host: api.example.com",
	        "X-Correlation-ID: rid-1"));
	for (i = 0; i < fx->out.n; i++)
		if (strstr(fx->out.v[i].value, "secret") != NULL)
			fail_msg(
			    "the API key went out in %s", fx->out.v[i].name);
}

static void
test_headers_xff(void **state)
{
	static const struct {
		const char *client; /* NULL: no field */
		const char *want;
	} cases[] = {
	    {NULL, "192.0.2.10"},
	    {"", "192.0.2.10"},
	    {"203.0.113.5", "203.0.113.5, 192.0.2.10"},
	    {"198.51.100.1, 203.0.113.5",
	        "198.51.100.1, 203.0.113.5, 192.0.2.10"},
	    {"garbage", "garbage, 192.0.2.10"},
	};
	struct fixture *fx = *state;
	struct request *r = &fx->r;
	const char *got;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		hdrs_reset(&r->headers);
		if (cases[i].client != NULL)
			add(r, "x-forwarded-for", cases[i].client);
		forward_headers(&fx->cfg, r, &fx->out, &fx->scratch);
		got = hdrs_get(&fx->out, "X-Forwarded-For");
		if (got == NULL || strcmp(got, cases[i].want) != 0 ||
		    hdrs_count(&fx->out, "X-Forwarded-For") != 1)
			fail_msg("client \"%s\": got \"%s\" (%zu fields), "
			         "want \"%s\"",
			    cases[i].client ? cases[i].client : "(none)",
			    got ? got : "(none)",
			    hdrs_count(&fx->out, "X-Forwarded-For"),
			    cases[i].want);
	}

	/* An IPv6 peer. */
	hdrs_reset(&r->headers);
	add(r, "X-Forwarded-For", "203.0.113.5");
	r->remote_addr = "2001:db8::1";
	forward_headers(&fx->cfg, r, &fx->out, &fx->scratch);
	assert_string_equal(
	    hdrs_get(&fx->out, "X-Forwarded-For"), "203.0.113.5, 2001:db8::1");
}

/*
 * A Connection field naming the gateway's own fields removes the client's
 * versions (they are hop-by-hop for the client's hop) but never the ones
 * the gateway sets.
 */
static void
test_headers_connection_names_gateway_fields(void **state)
{
	struct fixture *fx = *state;
	struct request *r = &fx->r;
	const char *xff;
	size_t len;

	snprintf(r->key_id, sizeof r->key_id, "k1");
	snprintf(r->key_name, sizeof r->key_name, "n1");
	add(r, "Connection",
	    "X-Forwarded-For, x-forwarded-proto, X-Forwarded-Host, "
	    "X-Request-ID, X-Consumer-ID, X-Consumer-Name, Accept");
	add(r, "X-Forwarded-For", "203.0.113.5");
	add(r, "Accept", "*/*");
	add(r, "X-Kept", "1");

	forward_headers(&fx->cfg, r, &fx->out, &fx->scratch);
	assert_int_equal(hdrs_count(&fx->out, "X-Forwarded-For"), 1);
	xff = hdrs_get(&fx->out, "X-Forwarded-For");
	assert_non_null(xff);
	/* Whatever came before, the last hop is the gateway's peer. */
	len = strlen(xff);
	assert_true(len >= strlen("192.0.2.10"));
	assert_string_equal(xff + len - strlen("192.0.2.10"), "192.0.2.10");
	assert_true(len == strlen("192.0.2.10") ||
	    strcmp(xff + len - strlen(", 192.0.2.10"), ", 192.0.2.10") == 0);
	assert_int_equal(hdrs_count(&fx->out, "X-Forwarded-Proto"), 1);
	assert_string_equal(hdrs_get(&fx->out, "X-Forwarded-Proto"), "https");
	assert_int_equal(hdrs_count(&fx->out, "X-Forwarded-Host"), 1);
	assert_string_equal(
	    hdrs_get(&fx->out, "X-Forwarded-Host"), "api.example.com");
	assert_int_equal(hdrs_count(&fx->out, "X-Request-ID"), 1);
	assert_string_equal(hdrs_get(&fx->out, "X-Request-ID"), "rid-1");
	assert_string_equal(hdrs_get(&fx->out, "X-Consumer-ID"), "k1");
	assert_string_equal(hdrs_get(&fx->out, "X-Consumer-Name"), "n1");
	/* A plain field it names does go. */
	assert_null(hdrs_get(&fx->out, "Accept"));
	assert_null(hdrs_get(&fx->out, "Connection"));
	assert_string_equal(hdrs_get(&fx->out, "X-Kept"), "1");
	assert_string_equal(fx->out.v[0].name, "X-Kept");
}

/* A key name that cannot be a header value is left out, not injected. */
static void
test_headers_crlf_in_key_name(void **state)
{
	struct fixture *fx = *state;
	struct request *r = &fx->r;
	size_t i;

	snprintf(r->key_id, sizeof r->key_id, "k1");
	snprintf(r->key_name, sizeof r->key_name, "a\r\nX-Evil: 1");
	forward_headers(&fx->cfg, r, &fx->out, &fx->scratch);
	assert_string_equal(hdrs_get(&fx->out, "X-Consumer-ID"), "k1");
	assert_null(hdrs_get(&fx->out, "X-Evil"));
	for (i = 0; i < fx->out.n; i++)
		assert_null(strpbrk(fx->out.v[i].value, "\r\n"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_url_table),
	    cmocka_unit_test(test_url_every_byte),
	    cmocka_unit_test(test_url_appends),
	    cmocka_unit_test_setup_teardown(test_header_class, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_headers_basic, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_headers_no_client_fields, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_headers_hop_by_hop, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_headers_gateway_owned, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_headers_configured_names, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_headers_xff, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_headers_connection_names_gateway_fields, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_headers_crlf_in_key_name, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
