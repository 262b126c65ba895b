/*
 * Unit tests for buf.c: appending, and buf_json_escape, which must turn any
 * byte string (client-controlled paths and headers reach the access log and
 * problem documents) into valid JSON and valid UTF-8.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "buf.h"

static void
test_append(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	assert_string_equal(buf_cstr(&b), "");
	buf_printf(&b, "%d", 42);
	buf_append(&b, "!", 1);
	buf_putc(&b, '?');
	buf_puts(&b, "ok");
	assert_string_equal(b.p, "42!?ok");
	assert_int_equal(b.len, 6);
	buf_reset(&b);
	assert_string_equal(buf_cstr(&b), "");
	buf_cleanup(&b);
}

/*
 * Parses "\"" + text + "\"" strictly, with UTF-8 checked when this json-c
 * can.  Returns the decoded string's length and copies it to out, or -1
 * when the text is not a valid JSON string.
 */
static int
json_decode(const char *text, char *out, size_t outlen)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;
	struct buf q;
	int n = -1;

	buf_init(&q);
	buf_putc(&q, '"');
	buf_puts(&q, text);
	buf_putc(&q, '"');
#ifdef JSON_TOKENER_VALIDATE_UTF8
	json_tokener_set_flags(
	    tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
#else
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
#endif
	o = json_tokener_parse_ex(tok, q.p, (int)q.len);
	if (o != NULL && json_tokener_get_error(tok) == json_tokener_success &&
	    json_object_is_type(o, json_type_string) &&
	    (size_t)json_object_get_string_len(o) < outlen) {
		n = json_object_get_string_len(o);
		memcpy(out, json_object_get_string(o), (size_t)n + 1);
	}
	json_object_put(o);
	json_tokener_free(tok);
	buf_cleanup(&q);
	return n;
}

/* The output must be valid UTF-8 on its own, whatever json-c checks. */
static int
utf8_valid(const unsigned char *s)
{
	while (*s != '\0') {
		size_t n, i;
		unsigned long cp;

		if (*s < 0x80) {
			s++;
			continue;
		}
		if (*s >= 0xc2 && *s <= 0xdf)
			n = 2, cp = *s & 0x1f;
		else if (*s >= 0xe0 && *s <= 0xef)
			n = 3, cp = *s & 0x0f;
		else if (*s >= 0xf0 && *s <= 0xf4)
			n = 4, cp = *s & 0x07;
		else
			return 0;
		for (i = 1; i < n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i] & 0x3f);
		}
		if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		s += n;
	}
	return 1;
}

static const struct {
	const char *in, *out;
} escape_cases[] = {
    {"", ""},
    {"plain /path?q=1", "plain /path?q=1"},
    /* JSON's own specials */
    {"a\"b\\c", "a\\\"b\\\\c"},
    {"\n\r\t", "\\n\\r\\t"},
    /* other control characters and DEL as \u00XX */
    {"\x01", "\\u0001"},
    {"\b\f", "\\u0008\\u000c"},
    {"x\x1fy", "x\\u001fy"},
    {"\x7f", "\\u007f"},
    {"\x1b[31m", "\\u001b[31m"},
    /* well-formed UTF-8 kept: 2, 3 and 4 bytes, the extremes of each */
    {"caf\xc3\xa9", "caf\xc3\xa9"},
    {"\xc2\x80\xdf\xbf", "\xc2\x80\xdf\xbf"},
    {"\xe2\x82\xac", "\xe2\x82\xac"},
    {"\xe0\xa0\x80\xef\xbf\xbf", "\xe0\xa0\x80\xef\xbf\xbf"},
    {"\xed\x9f\xbf\xee\x80\x80", "\xed\x9f\xbf\xee\x80\x80"},
    {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},
    {"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"},
    {"\xef\xbf\xbd", "\xef\xbf\xbd"}, /* a real U+FFFD stays raw */
    /* line and paragraph separators escaped */
    {"a\xe2\x80\xa8"
     "b\xe2\x80\xa9",
        "a\\u2028b\\u2029"},
    /* stray bytes: one U+FFFD each */
    {"\xff", "\\ufffd"},
    {"a\xfe\xff"
     "b",
        "a\\ufffd\\ufffdb"},
    {"\x80", "\\ufffd"},
    {"\xbf\x80", "\\ufffd\\ufffd"},
    {"\xf5\x80\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd"},
    /* overlong forms: C0/C1 leads, E0 80.., F0 80.. */
    {"\xc0\xaf", "\\ufffd\\ufffd"},
    {"\xc1\xbf", "\\ufffd\\ufffd"},
    {"\xe0\x80\xaf", "\\ufffd\\ufffd\\ufffd"},
    {"\xe0\x9f\xbf", "\\ufffd\\ufffd\\ufffd"},
    {"\xf0\x80\x80\xaf", "\\ufffd\\ufffd\\ufffd\\ufffd"},
    {"\xf0\x8f\xbf\xbf", "\\ufffd\\ufffd\\ufffd\\ufffd"},
    /* UTF-16 surrogates encoded as UTF-8 */
    {"\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd"},
    {"\xed\xbf\xbf", "\\ufffd\\ufffd\\ufffd"},
    {"\xed\xa0\xbd\xed\xb8\x80", "\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd"},
    /* above U+10FFFF */
    {"\xf4\x90\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd"},
    /* truncated sequences: the valid prefix is one U+FFFD */
    {"\xc3", "\\ufffd"},
    {"\xe2\x82", "\\ufffd"},
    {"\xe2\x82"
     "a",
        "\\ufffda"},
    {"\xf0\x9f\x98", "\\ufffd"},
    {"\xf0\x9f\x98"
     "x\xf0\x9f",
        "\\ufffdx\\ufffd"},
    {"\xe2\x82\"", "\\ufffd\\\""},
    {"\xc3\n", "\\ufffd\\n"},
    {"\xe2\xe2\x82\xac", "\\ufffd\xe2\x82\xac"},
    /* mixed, as a hostile path or User-Agent might be */
    {"/api/\xff\xc3\xa9/\xed\xa0\x80\x01\"",
        "/api/\\ufffd\xc3\xa9/\\ufffd\\ufffd\\ufffd\\u0001\\\""},
};

static void
test_json_escape_table(void **state)
{
	struct buf b;
	char dec[256];
	size_t i;

	(void)state;
	buf_init(&b);
	for (i = 0; i < sizeof escape_cases / sizeof escape_cases[0]; i++) {
		buf_reset(&b);
		buf_json_escape(&b, escape_cases[i].in);
		if (strcmp(buf_cstr(&b), escape_cases[i].out) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i,
			    buf_cstr(&b), escape_cases[i].out);
		if (json_decode(buf_cstr(&b), dec, sizeof dec) < 0)
			fail_msg("case %zu: \"%s\" is not a JSON string", i,
			    buf_cstr(&b));
		assert_true(utf8_valid((const unsigned char *)buf_cstr(&b)));
	}
	/* Well-formed input comes back unchanged after a JSON round trip. */
	buf_reset(&b);
	buf_json_escape(&b, "caf\xc3\xa9 \"\xf0\x9f\x98\x80\"\n\x01");
	assert_true(json_decode(b.p, dec, sizeof dec) >= 0);
	assert_string_equal(dec, "caf\xc3\xa9 \"\xf0\x9f\x98\x80\"\n\x01");
	buf_cleanup(&b);
}

/*
 * Every string of up to three bytes from a set that covers each class of
 * lead and continuation byte and their range limits, followed by "a" or
 * nothing: the output is always valid JSON and valid UTF-8.
 */
static void
test_json_escape_sweep(void **state)
{
	static const unsigned char set[] = {0x01, 0x1f, '"', '\\', 'a', 0x7f,
	    0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0,
	    0xe2, 0xed, 0xee, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
	const size_t n = sizeof set;
	struct buf b;
	char in[8], dec[64];
	size_t i, j, k, t;

	(void)state;
	buf_init(&b);
	for (i = 0; i < n; i++)
		for (j = 0; j <= n; j++)
			for (k = 0; k <= n; k++)
				for (t = 0; t < 2; t++) {
					size_t len = 0;

					in[len++] = (char)set[i];
					if (j < n)
						in[len++] = (char)set[j];
					if (k < n)
						in[len++] = (char)set[k];
					if (t)
						in[len++] = 'a';
					in[len] = '\0';
					buf_reset(&b);
					buf_json_escape(&b, in);
					if (!utf8_valid(
					        (const unsigned char *)buf_cstr(
					            &b)) ||
					    json_decode(buf_cstr(&b), dec,
					        sizeof dec) < 0)
						fail_msg("%02x %02x %02x %zu: "
						         "invalid \"%s\"",
						    set[i],
						    (unsigned)in[1] & 0xff,
						    (unsigned)in[2] & 0xff, t,
						    buf_cstr(&b));
				}
	buf_cleanup(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_append),
	    cmocka_unit_test(test_json_escape_table),
	    cmocka_unit_test(test_json_escape_sweep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
