/*
 * config_lex -- a pre-scan of the config text for what libconfig 1.5
 * would accept silently but wrongly, run before libconfig parses it:
 *
 *	- a NUL byte: libconfig stops reading there and ignores the rest;
 *	- an integer literal that does not fit: without an L suffix libconfig
 *	  keeps 32 bits, so 4294967396 would read as 100;
 *	- @include at the start of a line: libconfig would follow it (from
 *	  the current directory, even into a FIFO or a device), while the
 *	  configuration is one file whose mtime config_changed watches.
 *
 * The lexer skips comments, strings, names and floats as libconfig's does,
 * so "x = \"4294967396\";" or a 12345678901 in a comment is no error.
 */
#ifndef APIGW_CONFIG_LEX_H
#define APIGW_CONFIG_LEX_H

#include <stddef.h>

/*
 * Called once per problem with its 1-based line and a reason (valid only
 * during the call), e.g. "integer 4294967396 is out of range (at most
 * 2147483647 without an L suffix)".
 */
typedef void (*config_lex_report_fn)(
    void *arg, unsigned line, const char *reason);

/*
 * Scans the len bytes of t (NUL-terminated at t[len]) and reports each
 * problem through report(arg, ...).  Returns -1 when the text must not be
 * parsed at all (a NUL byte, an @include), else 0: bad integers are
 * reported but the parse may go on, to find more errors.
 */
int config_lex_prescan(
    const char *t, size_t len, config_lex_report_fn report, void *arg);

#endif
