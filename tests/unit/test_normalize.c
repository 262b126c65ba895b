/*
 * Unit tests for normalize.c: a table of inputs with the expected result
 * (a path or an error), then cases too long to write in a table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "normalize.h"
#include "xalloc.h"

struct norm_case {
	const char *in;
	size_t len;			/* 0: strlen(in); for inputs holding NUL */
	enum normalize_result rc;
	const char *want;		/* when rc == NORMALIZE_OK */
};

#define OK(in, want)	{ in, 0, NORMALIZE_OK, want }
#define ERR(in, rc)	{ in, 0, rc, NULL }

static const struct norm_case cases[] = {
	/* Already normal. */
	OK("/", "/"),
	OK("/a", "/a"),
	OK("/api/users", "/api/users"),
	OK("/api/users/7", "/api/users/7"),
	OK("/a/b/", "/a/b/"),
	OK("/a.b/c-d_e~f", "/a.b/c-d_e~f"),
	OK("/...", "/..."),
	OK("/a/.../b", "/a/.../b"),
	OK("/.hidden", "/.hidden"),
	OK("/..a/a..", "/..a/a.."),
	OK("/a b", "/a b"),
	OK("/a;b=c,d", "/a"),
	OK("/a,b=c;d", "/a,b=c"),

	/* Repeated slashes. */
	OK("//", "/"),
	OK("///", "/"),
	OK("//a", "/a"),
	OK("/a//b", "/a/b"),
	OK("/a///b//", "/a/b/"),
	OK("/api//users/./7/../8", "/api/users/8"),

	/* Dot segments. */
	OK("/.", "/"),
	OK("/./", "/"),
	OK("/./a", "/a"),
	OK("/a/.", "/a/"),
	OK("/a/b/.", "/a/b/"),
	OK("/a/./b", "/a/b"),
	OK("/a/././b/./", "/a/b/"),
	OK("/a/..", "/"),
	OK("/a/../", "/"),
	OK("/a/b/..", "/a/"),
	OK("/a/b/../c", "/a/c"),
	OK("/a/b/../../c", "/c"),
	OK("/a//..//b", "/b"),
	OK("/a/b/c/../../..", "/"),
	OK("/api/public/../admin", "/api/admin"),
	OK("/api/public/./../admin/", "/api/admin/"),
	OK("/api/public/../../admin", "/admin"),

	/* Unreserved escapes are decoded. */
	OK("/%41", "/A"),
	OK("/%7e", "/~"),
	OK("/%7E", "/~"),
	OK("/%2d%2E%5f%7e", "/-._~"),
	OK("/%61%62%63/%30%39", "/abc/09"),
	OK("/a%2e", "/a."),
	OK("/%2e", "/"),
	OK("/a/%2e/b", "/a/b"),
	OK("/a/%2e%2e", "/"),
	OK("/a/b/%2E%2e/c", "/a/c"),
	OK("/%2e%2e%2e", "/..."),

	/* Other escapes are kept, hex upper-cased. */
	OK("/%c3%a9", "/%C3%A9"),
	OK("/caf%C3%A9", "/caf%C3%A9"),
	OK("/%20", "/%20"),
	OK("/%3f%23", "/%3F%23"),
	OK("/%25", "/%25"),
	OK("/%252e%252e", "/%252e%252e"),
	OK("/%25%32%65", "/%252e"),
	OK("/%ff%7f%1f", "/%FF%7F%1F"),

	/* Raw bytes >= 0x80 pass unchanged. */
	OK("/caf\xc3\xa9", "/caf\xc3\xa9"),
	OK("/\xff\x80", "/\xff\x80"),

	/* Traversal, literal or decoded. */
	ERR("/..", NORMALIZE_TRAVERSAL),
	/* Path parameters: dropped from every segment before anything else
	 * looks at the path (route, auth, limits and the backend). */
	OK("/api/admin;jsessionid=1", "/api/admin"),
	OK("/api;x/admin", "/api/admin"),
	OK("/api;/admin", "/api/admin"),
	ERR(";x/api/admin", NORMALIZE_NOT_ABSOLUTE),
	OK("/;x/api/admin", "/api/admin"),
	OK("/;/api", "/api"),
	OK("/api/admin;", "/api/admin"),
	OK("/api/admin;a=1;b=2", "/api/admin"),
	OK("/api/admin;a=1/", "/api/admin/"),
	OK("/api/admin;x/7;y", "/api/admin/7"),
	OK("/api/admin;x//7", "/api/admin/7"),
	OK("/api/admin;%2f", "/api/admin"),
	OK("/api/admin;%zz", "/api/admin"),
	OK("/api/public/..;/admin", "/api/admin"),
	OK("/api/public/..;x=1/admin", "/api/admin"),
	OK("/api/.;/admin", "/api/admin"),
	OK("/api/%2e%2e;/admin", "/admin"),
	OK("/api/a..;/b", "/api/a../b"),
	OK("/api/x;y=1", "/api/x"),
	OK("/api/public/.;x/../admin;y", "/api/admin"),
	ERR("/..;x", NORMALIZE_TRAVERSAL),
	ERR("/api/..;/..;/admin", NORMALIZE_TRAVERSAL),
	ERR("/api/admin%3bx", NORMALIZE_FORBIDDEN_ESCAPE),
	ERR("/api/admin%3Bx", NORMALIZE_FORBIDDEN_ESCAPE),
	ERR("/api/%3B/admin", NORMALIZE_FORBIDDEN_ESCAPE),
	ERR("/../", NORMALIZE_TRAVERSAL),
	ERR("/../etc/passwd", NORMALIZE_TRAVERSAL),
	ERR("/a/../..", NORMALIZE_TRAVERSAL),
	ERR("/a/b/../../../c", NORMALIZE_TRAVERSAL),
	ERR("/./..", NORMALIZE_TRAVERSAL),
	ERR("//..", NORMALIZE_TRAVERSAL),
	ERR("/%2e%2e/", NORMALIZE_TRAVERSAL),
	ERR("/%2E%2E", NORMALIZE_TRAVERSAL),
	ERR("/%2E./", NORMALIZE_TRAVERSAL),
	ERR("/.%2e/x", NORMALIZE_TRAVERSAL),
	ERR("/a/%2e%2e/%2e%2e/etc", NORMALIZE_TRAVERSAL),
	ERR("/api/public/../../../admin", NORMALIZE_TRAVERSAL),

	/* Forbidden escapes, any case. */
	ERR("/a%2fb", NORMALIZE_FORBIDDEN_ESCAPE),
	ERR("/a%2Fb", NORMALIZE_FORBIDDEN_ESCAPE),
	ERR("/%2f..%2f", NORMALIZE_FORBIDDEN_ESCAPE),
	ERR("/a%5cb", NORMALIZE_FORBIDDEN_ESCAPE),
	ERR("/a%5C..%5C", NORMALIZE_FORBIDDEN_ESCAPE),
	ERR("/a%00", NORMALIZE_FORBIDDEN_ESCAPE),
	ERR("/%00.json", NORMALIZE_FORBIDDEN_ESCAPE),

	/* Raw backslash and control bytes. */
	ERR("/a\\b", NORMALIZE_BACKSLASH),
	ERR("\\", NORMALIZE_NOT_ABSOLUTE),
	ERR("/..\\..\\etc", NORMALIZE_BACKSLASH),
	ERR("/a\tb", NORMALIZE_CONTROL),
	ERR("/a\rb", NORMALIZE_CONTROL),
	ERR("/a\nb", NORMALIZE_CONTROL),
	ERR("/a\x7f", NORMALIZE_CONTROL),
	ERR("/\x01", NORMALIZE_CONTROL),
	{ "/a\0b", 4, NORMALIZE_CONTROL, NULL },
	{ "/\0", 2, NORMALIZE_CONTROL, NULL },

	/* Bad escapes. */
	ERR("%", NORMALIZE_NOT_ABSOLUTE),
	ERR("/%", NORMALIZE_BAD_ESCAPE),
	ERR("/%4", NORMALIZE_BAD_ESCAPE),
	ERR("/a%4/", NORMALIZE_BAD_ESCAPE),
	ERR("/%zz", NORMALIZE_BAD_ESCAPE),
	ERR("/%4g", NORMALIZE_BAD_ESCAPE),
	ERR("/%g4", NORMALIZE_BAD_ESCAPE),
	ERR("/%%41", NORMALIZE_BAD_ESCAPE),
	ERR("/a/%", NORMALIZE_BAD_ESCAPE),
	ERR("/%-1", NORMALIZE_BAD_ESCAPE),
	ERR("/% 1", NORMALIZE_BAD_ESCAPE),

	/* Not absolute. */
	ERR("", NORMALIZE_NOT_ABSOLUTE),
	ERR("relative", NORMALIZE_NOT_ABSOLUTE),
	ERR("a/b", NORMALIZE_NOT_ABSOLUTE),
	ERR(".", NORMALIZE_NOT_ABSOLUTE),
	ERR("../a", NORMALIZE_NOT_ABSOLUTE),
	ERR("%2F", NORMALIZE_NOT_ABSOLUTE),
	ERR("http://host/a", NORMALIZE_NOT_ABSOLUTE),
	ERR(" /a", NORMALIZE_NOT_ABSOLUTE),
};

static void
test_table(void **state)
{
	const struct norm_case *c;
	enum normalize_result rc;
	size_t i, len;
	char *out;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		c = &cases[i];
		len = c->len ? c->len : strlen(c->in);
		out = (char *)0x1;	/* must be overwritten in every case */
		rc = normalize_path(c->in, len, &out);
		if (rc != c->rc) {
			print_error("case %zu \"%s\": got %d (%s), want %d (%s)\n",
			    i, c->in, (int)rc, normalize_strerror(rc), (int)c->rc,
			    normalize_strerror(c->rc));
			fail();
		}
		if (c->rc == NORMALIZE_OK) {
			assert_non_null(out);
			if (strcmp(out, c->want) != 0) {
				print_error("case %zu \"%s\": got \"%s\", want \"%s\"\n",
				    i, c->in, out, c->want);
				fail();
			}
			assert_true(strlen(out) <= len);
		} else
			assert_null(out);
		free(out);
	}
}

/* Normalizing a normalized path changes nothing. */
static void
test_idempotent(void **state)
{
	const struct norm_case *c;
	char *once, *twice;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		c = &cases[i];
		if (c->rc != NORMALIZE_OK)
			continue;
		assert_int_equal(normalize_path(c->in, strlen(c->in), &once),
		    NORMALIZE_OK);
		assert_int_equal(normalize_path(once, strlen(once), &twice),
		    NORMALIZE_OK);
		assert_string_equal(once, twice);
		free(once);
		free(twice);
	}
}

/* Only len bytes are read: what follows in memory does not count. */
static void
test_length_bounded(void **state)
{
	char *out;

	(void)state;
	assert_int_equal(normalize_path("/a/b/../c", 4, &out), NORMALIZE_OK);
	assert_string_equal(out, "/a/b");
	free(out);
	assert_int_equal(normalize_path("/a%41", 3, &out), NORMALIZE_BAD_ESCAPE);
	assert_null(out);
	assert_int_equal(normalize_path("/x", 0, &out), NORMALIZE_NOT_ABSOLUTE);
	assert_null(out);
	assert_int_equal(normalize_path(NULL, 0, &out), NORMALIZE_NOT_ABSOLUTE);
	assert_null(out);
}

static char *
repeat(const char *head, const char *unit, size_t n, const char *tail)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail), i;
	char *s = xmalloc(hl + ul * n + tl + 1);

	memcpy(s, head, hl);
	for (i = 0; i < n; i++)
		memcpy(s + hl + i * ul, unit, ul);
	memcpy(s + hl + n * ul, tail, tl + 1);
	return s;
}

static void
test_long_paths(void **state)
{
	enum { N = 100000 };
	char *in, *out, *want, *ups, *downs;

	(void)state;

	/* A long path with nothing to do comes back unchanged. */
	in = repeat("", "/seg", N, "/");
	assert_int_equal(normalize_path(in, strlen(in), &out), NORMALIZE_OK);
	assert_string_equal(out, in);
	free(out);
	free(in);

	/* Many slashes collapse to one. */
	in = repeat("", "/", N, "a");
	assert_int_equal(normalize_path(in, strlen(in), &out), NORMALIZE_OK);
	assert_string_equal(out, "/a");
	free(out);
	free(in);

	/* N segments down, N back up: the root, and never deeper. */
	downs = repeat("", "/d", N, "");
	ups = repeat(downs, "/..", N, "/x");
	assert_int_equal(normalize_path(ups, strlen(ups), &out), NORMALIZE_OK);
	assert_string_equal(out, "/x");
	free(out);
	free(ups);

	/* One ".." too many, at the very end. */
	ups = repeat(downs, "/..", N + 1, "");
	assert_int_equal(normalize_path(ups, strlen(ups), &out),
	    NORMALIZE_TRAVERSAL);
	assert_null(out);
	free(ups);

	/* The same with encoded dots. */
	ups = repeat(downs, "/%2e%2E", N + 1, "");
	assert_int_equal(normalize_path(ups, strlen(ups), &out),
	    NORMALIZE_TRAVERSAL);
	assert_null(out);
	free(ups);
	free(downs);

	/* Many "." and decoded escapes shrink the output. */
	in = repeat("/a", "/.", N, "/%62");
	assert_int_equal(normalize_path(in, strlen(in), &out), NORMALIZE_OK);
	assert_string_equal(out, "/a/b");
	free(out);
	free(in);

	/* Kept escapes are as long as the input. */
	in = repeat("", "%e2%82%ac", N, "");
	in[0] = '/';		/* replaces the first '%': "/e2%82%ac%e2..." */
	want = repeat("/e2", "%82%AC%E2", N - 1, "%82%AC");
	assert_int_equal(normalize_path(in, strlen(in), &out), NORMALIZE_OK);
	assert_string_equal(out, want);
	free(out);
	free(want);
	free(in);

	/* An error at the very end of a long path is still found. */
	in = repeat("", "/ok", N, "%2f");
	assert_int_equal(normalize_path(in, strlen(in), &out),
	    NORMALIZE_FORBIDDEN_ESCAPE);
	assert_null(out);
	free(in);
}

/* Every escape byte: decoded, kept upper-case, or refused. */
static void
test_every_escape(void **state)
{
	static const char hex[] = "0123456789abcdef";
	char in[5], want[5], *out;
	enum normalize_result rc;
	int c;

	(void)state;
	for (c = 0; c < 256; c++) {
		snprintf(in, sizeof in, "/%%%c%c", hex[c >> 4], hex[c & 15]);
		rc = normalize_path(in, 4, &out);
		if (c == 0 || c == '/' || c == '\\' || c == ';') {
			assert_int_equal(rc, NORMALIZE_FORBIDDEN_ESCAPE);
			continue;
		}
		assert_int_equal(rc, NORMALIZE_OK);
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '~') {
			want[0] = '/';
			want[1] = (char)c;
			want[2] = '\0';
		} else if (c == '.')
			strcpy(want, "/");
		else
			snprintf(want, sizeof want, "/%%%02X", (unsigned)c);
		assert_string_equal(out, want);
		free(out);
	}
}

static void
test_strerror(void **state)
{
	int r;

	(void)state;
	for (r = NORMALIZE_OK; r <= NORMALIZE_NOT_ABSOLUTE; r++) {
		assert_non_null(normalize_strerror((enum normalize_result)r));
		assert_true(strlen(normalize_strerror((enum normalize_result)r)) > 0);
	}
	assert_string_equal(normalize_strerror(NORMALIZE_TRAVERSAL),
	    "path climbs above the root");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_idempotent),
		cmocka_unit_test(test_length_bounded),
		cmocka_unit_test(test_long_paths),
		cmocka_unit_test(test_every_escape),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
