/*
 * Unit tests for hdrs.c: the list operations, the CR/LF and token rules,
 * hop-by-hop stripping and CGI parameter names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hdrs.h"

static int
setup(void **state)
{
	static struct hdrs h;

	hdrs_init(&h);
	*state = &h;
	return 0;
}

static int
teardown(void **state)
{
	hdrs_cleanup(*state);
	return 0;
}

/* Asserts that h holds exactly the "Name: value" lines given, in order. */
static void
assert_fields(const struct hdrs *h, const char *const *want, size_t n)
{
	char line[256];
	size_t i;

	assert_int_equal(h->n, n);
	for (i = 0; i < n; i++) {
		snprintf(line, sizeof line, "%s: %s", h->v[i].name,
		    h->v[i].value);
		assert_string_equal(line, want[i]);
	}
}

#define ASSERT_FIELDS(h, ...) do {					\
	static const char *const want_[] = { __VA_ARGS__ };		\
	assert_fields((h), want_, sizeof want_ / sizeof want_[0]);	\
} while (0)

static void
test_add_get(void **state)
{
	struct hdrs *h = *state;

	assert_null(hdrs_get(h, "Host"));
	assert_int_equal(hdrs_count(h, "Host"), 0);
	assert_int_equal(hdrs_add(h, "Host", "example.com"), 0);
	assert_int_equal(hdrs_add(h, "Accept", "*/*"), 0);
	assert_int_equal(hdrs_add(h, "X-Multi", "one"), 0);
	assert_int_equal(hdrs_add(h, "x-multi", "two"), 0);
	assert_int_equal(hdrs_add(h, "Empty", ""), 0);

	/* Names are kept as given; lookups ignore case. */
	ASSERT_FIELDS(h, "Host: example.com", "Accept: */*", "X-Multi: one",
	    "x-multi: two", "Empty: ");
	assert_string_equal(hdrs_get(h, "host"), "example.com");
	assert_string_equal(hdrs_get(h, "HOST"), "example.com");
	assert_string_equal(hdrs_get(h, "X-MULTI"), "one");
	assert_string_equal(hdrs_get(h, "Empty"), "");
	assert_int_equal(hdrs_count(h, "x-Multi"), 2);
	assert_null(hdrs_get(h, "Hos"));
	assert_null(hdrs_get(h, "Hostx"));
	assert_null(hdrs_get(h, NULL));

	/* Values are copied, not borrowed. */
	{
		char name[] = "X-Copy", value[] = "v1";

		assert_int_equal(hdrs_add(h, name, value), 0);
		name[0] = 'Y';
		value[1] = '2';
		assert_string_equal(hdrs_get(h, "X-Copy"), "v1");
	}

	/* Growing past the first allocation keeps every field. */
	{
		char name[32], value[32];
		int i;

		for (i = 0; i < 100; i++) {
			snprintf(name, sizeof name, "X-N%d", i);
			snprintf(value, sizeof value, "%d", i);
			assert_int_equal(hdrs_add(h, name, value), 0);
		}
		assert_int_equal(h->n, 106);
		assert_string_equal(hdrs_get(h, "x-n0"), "0");
		assert_string_equal(hdrs_get(h, "x-n99"), "99");
	}
}

static void
test_addn(void **state)
{
	struct hdrs *h = *state;

	/* Only the given lengths are copied. */
	assert_int_equal(hdrs_addn(h, "Content-TypeXXX", 12,
	    "text/plain; charset=utf-8", 10), 0);
	ASSERT_FIELDS(h, "Content-Type: text/plain");
	/* A NUL inside the value's length is refused. */
	assert_int_equal(hdrs_addn(h, "X-A", 3, "a\0b", 3), -1);
	/* ... and in the name. */
	assert_int_equal(hdrs_addn(h, "X\0A", 3, "ab", 2), -1);
	assert_int_equal(hdrs_addn(h, "X-A", 0, "ab", 2), -1);
	assert_int_equal(hdrs_addn(h, "X-A", 3, "", 0), 0);
	assert_int_equal(h->n, 2);
}

static void
test_reject_crlf(void **state)
{
	struct hdrs *h = *state;

	assert_int_equal(hdrs_add(h, "X-A", "a\r\nSet-Cookie: x=1"), -1);
	assert_int_equal(hdrs_add(h, "X-A", "a\rb"), -1);
	assert_int_equal(hdrs_add(h, "X-A", "a\nb"), -1);
	assert_int_equal(hdrs_add(h, "X-A", "\r"), -1);
	assert_int_equal(hdrs_add(h, "X-A", "\n"), -1);
	assert_int_equal(hdrs_add(h, "X-A", "tail\n"), -1);
	assert_int_equal(hdrs_add(h, "X-A", NULL), -1);
	assert_int_equal(h->n, 0);

	/* Other bytes, tab and obs-text included, are accepted. */
	assert_int_equal(hdrs_add(h, "X-A", "a\tb c"), 0);
	assert_int_equal(hdrs_add(h, "X-B", "caf\xc3\xa9"), 0);
	assert_int_equal(h->n, 2);

	/* hdrs_set refuses the same and changes nothing. */
	assert_int_equal(hdrs_set(h, "X-A", "x\r\ny"), -1);
	assert_string_equal(hdrs_get(h, "X-A"), "a\tb c");
}

static void
test_invalid_names(void **state)
{
	struct hdrs *h = *state;
	static const char *const bad[] = {
		"", " ", "X A", "X-A ", " X-A", "X:A", "X-A:", "X\tA", "X\rA",
		"X\nA", "(X)", "X,Y", "X;Y", "X/Y", "X\"Y", "X=Y", "X@Y",
		"X[Y]", "X{Y}", "X?Y", "X\\Y", "caf\xc3\xa9", "X\x7f",
	};
	static const char *const good[] = {
		"X", "x-a", "!#$%&'*+-.^_`|~", "0123", "Content-MD5",
		"X_Under_Score",
	};
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (hdrs_add(h, bad[i], "v") != -1)
			fail_msg("accepted name \"%s\"", bad[i]);
		assert_int_equal(hdrs_set(h, bad[i], "v"), -1);
	}
	assert_int_equal(hdrs_add(h, NULL, "v"), -1);
	assert_int_equal(h->n, 0);
	for (i = 0; i < sizeof good / sizeof good[0]; i++)
		assert_int_equal(hdrs_add(h, good[i], "v"), 0);
	assert_int_equal(h->n, sizeof good / sizeof good[0]);
}

static void
test_del_set(void **state)
{
	struct hdrs *h = *state;

	hdrs_add(h, "A", "1");
	hdrs_add(h, "Cookie", "a=1");
	hdrs_add(h, "B", "2");
	hdrs_add(h, "COOKIE", "b=2");
	hdrs_add(h, "C", "3");
	hdrs_add(h, "cookie", "c=3");

	assert_int_equal(hdrs_del(h, "cOOKIE"), 3);
	ASSERT_FIELDS(h, "A: 1", "B: 2", "C: 3");
	assert_int_equal(hdrs_del(h, "cookie"), 0);
	assert_int_equal(hdrs_del(h, "C"), 1);
	ASSERT_FIELDS(h, "A: 1", "B: 2");
	assert_int_equal(hdrs_del(h, NULL), 0);

	/* set adds when absent ... */
	assert_int_equal(hdrs_set(h, "X-Request-ID", "r1"), 0);
	ASSERT_FIELDS(h, "A: 1", "B: 2", "X-Request-ID: r1");
	/* ... replaces in place when present ... */
	assert_int_equal(hdrs_set(h, "a", "one"), 0);
	ASSERT_FIELDS(h, "a: one", "B: 2", "X-Request-ID: r1");
	/* ... and leaves a single field for many. */
	hdrs_add(h, "x-forwarded-for", "1.1.1.1");
	hdrs_add(h, "B", "two");
	hdrs_add(h, "X-Forwarded-For", "2.2.2.2");
	assert_int_equal(hdrs_set(h, "X-Forwarded-For", "3.3.3.3"), 0);
	ASSERT_FIELDS(h, "a: one", "B: 2", "X-Request-ID: r1",
	    "X-Forwarded-For: 3.3.3.3", "B: two");
	assert_int_equal(hdrs_set(h, "b", ""), 0);
	ASSERT_FIELDS(h, "a: one", "b: ", "X-Request-ID: r1",
	    "X-Forwarded-For: 3.3.3.3");
	assert_int_equal(hdrs_set(h, NULL, "x"), -1);
	assert_int_equal(hdrs_set(h, "a", NULL), -1);
}

static void
test_reset_reuse(void **state)
{
	struct hdrs *h = *state;
	struct hdr *v;

	hdrs_add(h, "A", "1");
	hdrs_add(h, "B", "2");
	v = h->v;
	hdrs_reset(h);
	assert_int_equal(h->n, 0);
	assert_ptr_equal(h->v, v);	/* the array is kept */
	assert_null(hdrs_get(h, "A"));
	hdrs_add(h, "C", "3");
	ASSERT_FIELDS(h, "C: 3");
	hdrs_cleanup(h);
	assert_null(h->v);
	assert_int_equal(h->n, 0);
	assert_int_equal(h->cap, 0);
	hdrs_cleanup(h);		/* twice is harmless */
	hdrs_reset(h);
}

static void
test_is_hop_by_hop(void **state)
{
	static const char *const hop[] = {
		"Connection", "connection", "CONNECTION", "Keep-Alive",
		"keep-alive", "Proxy-Connection", "TE", "te", "Trailer",
		"Transfer-Encoding", "transfer-encoding", "Upgrade",
		"Proxy-Authorization", "proxy-authorization",
	};
	static const char *const end[] = {
		"Host", "Content-Length", "Content-Type", "Trailers", "T",
		"Connections", "Keep-Alive2", "Proxy-Authenticate",
		"Authorization", "X-Connection", "", "Upgrade-Insecure-Requests",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof hop / sizeof hop[0]; i++)
		if (!hdrs_is_hop_by_hop(hop[i]))
			fail_msg("\"%s\" should be hop-by-hop", hop[i]);
	for (i = 0; i < sizeof end / sizeof end[0]; i++)
		if (hdrs_is_hop_by_hop(end[i]))
			fail_msg("\"%s\" should be end-to-end", end[i]);
	assert_false(hdrs_is_hop_by_hop(NULL));
}

static void
test_strip_fixed(void **state)
{
	struct hdrs *h = *state;

	hdrs_add(h, "Host", "a");
	hdrs_add(h, "Keep-Alive", "timeout=5");
	hdrs_add(h, "Accept", "*/*");
	hdrs_add(h, "transfer-encoding", "chunked");
	hdrs_add(h, "TE", "trailers");
	hdrs_add(h, "Trailer", "X-Sum");
	hdrs_add(h, "Upgrade", "websocket");
	hdrs_add(h, "Proxy-Authorization", "Basic eA==");
	hdrs_add(h, "Proxy-Connection", "keep-alive");
	hdrs_add(h, "Authorization", "Bearer t");
	hdrs_strip_hop_by_hop(h);
	ASSERT_FIELDS(h, "Host: a", "Accept: */*", "Authorization: Bearer t");

	/* Nothing to strip: nothing changes. */
	hdrs_strip_hop_by_hop(h);
	ASSERT_FIELDS(h, "Host: a", "Accept: */*", "Authorization: Bearer t");

	hdrs_reset(h);
	hdrs_strip_hop_by_hop(h);
	assert_int_equal(h->n, 0);
}

static void
test_strip_connection(void **state)
{
	struct hdrs *h = *state;

	/* "Connection: close, X-Foo" takes X-Foo with it. */
	hdrs_add(h, "Host", "a");
	hdrs_add(h, "X-Foo", "1");
	hdrs_add(h, "Connection", "close, X-Foo");
	hdrs_add(h, "X-Bar", "2");
	hdrs_add(h, "x-foo", "3");
	hdrs_strip_hop_by_hop(h);
	ASSERT_FIELDS(h, "Host: a", "X-Bar: 2");
	hdrs_reset(h);

	/* Several Connection fields, odd spacing, empty list elements, any
	 * case, and a named field before the Connection field naming it. */
	hdrs_add(h, "x-early", "e");
	hdrs_add(h, "Connection", " keep-alive ,X-A,, \tx-b\t, ");
	hdrs_add(h, "X-A", "a");
	hdrs_add(h, "X-Keep", "k");
	hdrs_add(h, "CONNECTION", "X-Early");
	hdrs_add(h, "X-B", "b");
	hdrs_add(h, "connection", "");
	hdrs_add(h, "X-AB", "ab");
	hdrs_add(h, "Keep-Alive", "timeout=5");
	hdrs_strip_hop_by_hop(h);
	ASSERT_FIELDS(h, "X-Keep: k", "X-AB: ab");
	hdrs_reset(h);

	/* A token is matched whole, not as a prefix or substring. */
	hdrs_add(h, "Connection", "X-Fo, Foo");
	hdrs_add(h, "X-Foo", "1");
	hdrs_add(h, "Foo", "2");
	hdrs_add(h, "Fo", "3");
	hdrs_strip_hop_by_hop(h);
	ASSERT_FIELDS(h, "X-Foo: 1", "Fo: 3");
	hdrs_reset(h);

	/* Many tokens and fields (the array of tokens grows). */
	{
		char name[16], list[4096];
		size_t len = 0;
		int i;

		list[0] = '\0';
		for (i = 0; i < 200; i++) {
			snprintf(name, sizeof name, "X-T%d", i);
			hdrs_add(h, name, "v");
			if (i % 2 == 0)
				len += (size_t)snprintf(list + len,
				    sizeof list - len, "%s%s", len ? "," : "",
				    name);
		}
		hdrs_add(h, "Connection", list);
		hdrs_strip_hop_by_hop(h);
		assert_int_equal(h->n, 100);
		assert_null(hdrs_get(h, "X-T0"));
		assert_string_equal(hdrs_get(h, "X-T1"), "v");
		assert_null(hdrs_get(h, "X-T198"));
		assert_string_equal(hdrs_get(h, "X-T199"), "v");
	}
}

static void
test_name_from_cgi(void **state)
{
	static const struct {
		const char *param;
		const char *want;	/* NULL: -1 */
	} cases[] = {
		{ "HTTP_X_FORWARDED_FOR", "X-Forwarded-For" },
		{ "HTTP_HOST", "Host" },
		{ "HTTP_ACCEPT_ENCODING", "Accept-Encoding" },
		{ "HTTP_X_API_KEY", "X-Api-Key" },
		{ "HTTP_TE", "Te" },
		{ "HTTP_X_B3_TRACEID", "X-B3-Traceid" },
		{ "HTTP_DNT", "Dnt" },
		{ "HTTP_x_lower", "X-Lower" },
		{ "CONTENT_TYPE", "Content-Type" },
		{ "CONTENT_LENGTH", "Content-Length" },
		{ "HTTP_CONTENT_TYPE", "Content-Type" },
		{ "HTTP_", NULL },
		{ "HTTP", NULL },
		{ "HTTPS", NULL },
		{ "REQUEST_METHOD", NULL },
		{ "REMOTE_ADDR", NULL },
		{ "CONTENT_MD5", NULL },
		{ "CONTENT_TYPEX", NULL },
		{ "SCRIPT_NAME", NULL },
		{ "http_host", NULL },
		{ "", NULL },
		{ "HTTP_X Y", NULL },
		{ "HTTP_X:Y", NULL },
		{ "HTTP_X\rY", NULL },
	};
	char out[64];
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		rc = hdrs_name_from_cgi(cases[i].param, out, sizeof out);
		if (cases[i].want == NULL) {
			if (rc != -1)
				fail_msg("\"%s\" gave \"%s\"", cases[i].param,
				    out);
			assert_string_equal(out, "");
		} else {
			if (rc != 0)
				fail_msg("\"%s\" refused", cases[i].param);
			assert_string_equal(out, cases[i].want);
		}
	}

	/* Size limits: the NUL must fit too. */
	assert_int_equal(hdrs_name_from_cgi("HTTP_HOST", out, 5), 0);
	assert_string_equal(out, "Host");
	assert_int_equal(hdrs_name_from_cgi("HTTP_HOST", out, 4), -1);
	assert_int_equal(hdrs_name_from_cgi("HTTP_HOST", out, 0), -1);
	assert_int_equal(hdrs_name_from_cgi("CONTENT_TYPE", out, 13), 0);
	assert_string_equal(out, "Content-Type");
	assert_int_equal(hdrs_name_from_cgi("CONTENT_TYPE", out, 12), -1);
	assert_int_equal(hdrs_name_from_cgi(NULL, out, sizeof out), -1);
	assert_int_equal(hdrs_name_from_cgi("HTTP_HOST", NULL, 10), -1);

	/* Whatever it produces is accepted by hdrs_add. */
	{
		struct hdrs h;

		hdrs_init(&h);
		assert_int_equal(hdrs_name_from_cgi("HTTP_X_REAL_IP", out,
		    sizeof out), 0);
		assert_int_equal(hdrs_add(&h, out, "1.2.3.4"), 0);
		assert_string_equal(hdrs_get(&h, "x-real-ip"), "1.2.3.4");
		hdrs_cleanup(&h);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_add_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_addn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reject_crlf, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_del_set, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_reuse, setup, teardown),
		cmocka_unit_test(test_is_hop_by_hop),
		cmocka_unit_test_setup_teardown(test_strip_fixed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_strip_connection, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_name_from_cgi, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
