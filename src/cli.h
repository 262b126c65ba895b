/*
 * cli -- what the command-line tools (apigw-keys, apigw-cache) share: the
 * argument loop, driven by each tool's tables of options and commands; the
 * one-line error convention; loading the config; opening the store.
 *
 * A command line is
 *
 *	PROG [OPTIONS] COMMAND [ARG] [OPTIONS]
 *
 * Options may come before or after the command and its argument, as
 * "--opt VALUE" or "--opt=VALUE"; "--" ends the options (so an ARG may
 * start with '-').  Each option may be given once.  An option that stands
 * for a command of its own (--help, --version) ends the parse at once and
 * needs no COMMAND.  What only one tool checks (a required ARG, options
 * that exclude each other) it checks after cli_args_parse().
 *
 * Every error a tool prints is one line "PROG: ..." on stderr, with
 * control characters shown as '?', and the exit status is one of CLI_OK,
 * CLI_USAGE or CLI_REDIS.
 */
#ifndef APIGW_CLI_H
#define APIGW_CLI_H

#include <stddef.h>

struct config;
struct store;

/* Exit statuses. */
#define CLI_OK 0
#define CLI_USAGE 1 /* usage error, bad value, bad config, ... */
#define CLI_REDIS 2 /* Redis unreachable or failing */

/* The longest excerpt of a bad argument cli_args_parse() quotes. */
#define CLI_QUOTE_MAX 60

struct cli_option {
	const char *name; /* "--config", "-h" */
	unsigned flag;    /* one bit of the tool's own, for cli_line.seen */
	int has_value;
	int cmd; /* nonzero: the command this option is (help, version) */
};

struct cli_command {
	const char *name;
	int cmd;          /* the tool's command number, never 0 */
	unsigned options; /* flags accepted besides cli_spec.global */
	const char *arg;  /* the positional argument ("ID"), or NULL */
};

struct cli_spec {
	const char *prog; /* "apigw-keys", for "try 'PROG --help'" */
	const struct cli_option *options;
	size_t n_options;
	const struct cli_command *commands;
	size_t n_commands;
	unsigned global;  /* flags every command accepts */
	size_t quote_max; /* bad arguments are quoted up to this, at most
	                     CLI_QUOTE_MAX */
	/*
	 * Stores option o, given value v (NULL for an option without one),
	 * in ctx.  Returns 0, or -1 having put the message where the tool
	 * keeps it (the err given to cli_args_parse()).
	 */
	int (*set)(void *ctx, const struct cli_option *o, const char *v);
};

/* A parsed command line; everything borrowed from the spec or argv. */
struct cli_line {
	int cmd;                       /* the command, or an option's cmd */
	const struct cli_command *def; /* NULL: an option's cmd */
	unsigned seen;                 /* flags of the options given */
	const char *pos;               /* the positional argument, or NULL */
};

/*
 * Parses argv[1..argc-1] by spec into *line (zeroed first), handing each
 * option's value to spec->set(ctx, ...).  Returns 0, or -1 with a one-line
 * message in err: an unknown command or option, an unexpected argument, a
 * missing command, an option given twice, without its value, with a value
 * it takes none of, or one that does not apply to the command.  line->cmd
 * is set as soon as the command is known, even when -1 follows.
 */
int cli_args_parse(const struct cli_spec *spec, int argc, char *const *argv,
    void *ctx, struct cli_line *line, char *err, size_t errlen);

/*
 * Copies user input s (len bytes) into out for an error message: printable
 * ASCII only (anything else becomes '?'), cut at max characters with "...".
 * outlen must exceed max + 4.  Returns out.
 */
const char *cli_quote(
    const char *s, size_t len, size_t max, char *out, size_t outlen);

/* Formats into err (errlen bytes); for error messages. */
void cli_format(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prints one line "PROG: ..." on stderr; control characters become '?'. */
void cli_error(const char *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Answers --help (prints usage) or, usage NULL, --version (prints
 * "PROG VERSION") on stdout.  Returns what cli_flush() does for CLI_OK.
 */
int cli_help(const char *prog, const char *usage);

/*
 * Flushes stdout at the end of a run that would exit with rc.  Returns rc,
 * or CLI_USAGE (reported) when rc was CLI_OK and the output was lost.
 */
int cli_flush(const char *prog, int rc);

/*
 * Loads the config at path, else $APIGW_CONFIG, else the installed
 * default, printing the first error (and how many more).  Returns the
 * config (the caller frees it with config_free) or NULL.
 */
struct config *cli_config_load(const char *prog, const char *path);

/*
 * Writes where Redis is into where ("redis at HOST:PORT" or
 * "redis at unix:PATH"; never the URL: it may hold a password), for error
 * messages, and opens the store for cfg with the log quieted (the store's
 * own warnings would be a second line on stderr).  Returns the store (the
 * caller frees it with store_free).
 */
struct store *cli_store_open(
    const struct config *cfg, char *where, size_t wherelen);

#endif
