/*
 * Unit tests for buf.c: growth, the NUL terminator, and the size limit
 * (a refused append leaves the buffer as it was).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"

static void
test_unlimited(void **state)
{
	struct buf b;
	char big[1000];
	int i;

	(void)state;
	buf_init(&b);
	assert_string_equal(buf_cstr(&b), "");
	assert_int_equal(buf_printf(&b, "%d", 42), BUF_OK);
	assert_int_equal(buf_append(&b, "!", 1), BUF_OK);
	assert_string_equal(b.p, "42!");
	assert_int_equal(b.len, 3);
	memset(big, 'x', sizeof big);
	for (i = 0; i < 100; i++)
		assert_int_equal(buf_append(&b, big, sizeof big), BUF_OK);
	assert_int_equal(b.len, 3 + 100 * sizeof big);
	assert_int_equal(b.p[b.len], '\0');
	/* Empty appends are fine and change nothing. */
	assert_int_equal(buf_append(&b, NULL, 0), BUF_OK);
	assert_int_equal(buf_printf(&b, "%s", ""), BUF_OK);
	assert_int_equal(b.len, 3 + 100 * sizeof big);
	buf_reset(&b);
	assert_string_equal(buf_cstr(&b), "");
	assert_true(b.cap > 0);
	buf_cleanup(&b);
	assert_null(b.p);
	assert_int_equal(b.cap, 0);
	/* Cleaning up twice, or an unused buffer, is harmless. */
	buf_cleanup(&b);
}

static void
test_limit(void **state)
{
	struct buf b;

	(void)state;
	buf_init_limit(&b, 4);
	assert_int_equal(buf_puts(&b, "abc"), BUF_OK);
	assert_int_equal(buf_puts(&b, "de"), BUF_TOO_BIG);
	assert_string_equal(b.p, "abc");
	assert_int_equal(b.len, 3);
	assert_int_equal(buf_printf(&b, "%d", 10), BUF_TOO_BIG);
	assert_string_equal(b.p, "abc");
	assert_int_equal(buf_putc(&b, 'd'), BUF_OK);
	assert_string_equal(b.p, "abcd");
	/* Full: even one byte is refused, an empty append is not. */
	assert_int_equal(buf_putc(&b, 'e'), BUF_TOO_BIG);
	assert_int_equal(buf_append(&b, "", 0), BUF_OK);
	assert_int_equal(buf_reserve(&b, 1), BUF_TOO_BIG);
	assert_int_equal(buf_reserve(&b, 0), BUF_OK);
	assert_string_equal(b.p, "abcd");
	/* Never allocates past what the limit can use. */
	assert_true(b.cap <= 5);
	/* Reset and cleanup keep the limit. */
	buf_reset(&b);
	assert_int_equal(buf_puts(&b, "12345"), BUF_TOO_BIG);
	assert_string_equal(buf_cstr(&b), "");
	buf_cleanup(&b);
	assert_int_equal(b.max, 4);
	assert_int_equal(buf_puts(&b, "12345"), BUF_TOO_BIG);
	assert_null(b.p);
	assert_int_equal(buf_puts(&b, "1234"), BUF_OK);
	buf_cleanup(&b);
}

static void
test_limit_huge(void **state)
{
	struct buf b;

	(void)state;
	/* A length near SIZE_MAX must not wrap around the checks. */
	buf_init_limit(&b, 8);
	assert_int_equal(buf_putc(&b, 'a'), BUF_OK);
	assert_int_equal(buf_reserve(&b, SIZE_MAX), BUF_TOO_BIG);
	assert_int_equal(buf_reserve(&b, SIZE_MAX - 1), BUF_TOO_BIG);
	buf_cleanup(&b);
	buf_init(&b);
	assert_int_equal(buf_putc(&b, 'a'), BUF_OK);
	assert_int_equal(buf_reserve(&b, SIZE_MAX), BUF_TOO_BIG);
	assert_int_equal(buf_reserve(&b, SIZE_MAX - 1), BUF_TOO_BIG);
	assert_string_equal(b.p, "a");
	buf_cleanup(&b);
}

static void
test_json_escape(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	assert_int_equal(buf_json_escape(&b, "a\"b\\c\n\x01"), BUF_OK);
	assert_string_equal(b.p, "a\\\"b\\\\c\\n\\u0001");
	buf_cleanup(&b);

	/* Refused: nothing of the string is left behind. */
	buf_init_limit(&b, 10);
	assert_int_equal(buf_puts(&b, "x"), BUF_OK);
	assert_int_equal(buf_json_escape(&b, "abcdef\n\n"), BUF_TOO_BIG);
	assert_string_equal(b.p, "x");
	assert_int_equal(b.len, 1);
	assert_int_equal(buf_json_escape(&b, "ab\n"), BUF_OK);
	assert_string_equal(b.p, "xab\\n");
	buf_cleanup(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unlimited),
	    cmocka_unit_test(test_limit),
	    cmocka_unit_test(test_limit_huge),
	    cmocka_unit_test(test_json_escape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
