/*
 * keys_args -- the command line of apigw-keys, parsed into a struct.
 * Pure: no I/O, so every rule is unit-tested.
 *
 *	apigw-keys [--config FILE] COMMAND [ARG] [OPTIONS]
 *	  create NAME [--requests-per-second|-minute|-hour|-day N] [--burst N]
 *	              [--algorithm A] [--expires-in DURATION]
 *	  list [--json]       show ID [--json]      revoke ID      delete ID
 *	  update ID [policy flags] [--no-policy] [--expires-in D] [--no-expiry]
 *
 * Options may come before or after the command and its argument, as
 * "--opt VALUE" or "--opt=VALUE"; "--" ends the options (so a NAME may
 * start with '-').  Each option may be given once.
 *
 * Bounds: every count is 1..1000000000; a DURATION is N (seconds) or N
 * with a unit s, m, h or d, from 1 second to 100 years (36500d); a NAME is
 * 1..128 printable ASCII characters.  --burst and --algorithm need at
 * least one --requests-per-* flag on create (on update, the key's
 * resulting policy must have a window; that is checked against Redis).
 *
 * The ID is not checked here: a malformed ID is reported as an unknown
 * key by the command, exactly like a well-formed one that does not exist.
 */
#ifndef APIGW_KEYS_ARGS_H
#define APIGW_KEYS_ARGS_H

#include "config.h"

#define KEYS_ARGS_COUNT_MAX 1000000000L
#define KEYS_ARGS_DURATION_MAX_S (100LL * 365 * 86400)
#define KEYS_ARGS_NAME_MAX 128

enum keys_command {
	KEYS_CMD_NONE = 0,
	KEYS_CMD_HELP,
	KEYS_CMD_VERSION,
	KEYS_CMD_CREATE,
	KEYS_CMD_LIST,
	KEYS_CMD_SHOW,
	KEYS_CMD_REVOKE,
	KEYS_CMD_UPDATE,
	KEYS_CMD_DELETE,
};

struct keys_args {
	enum keys_command cmd;
	const char *config;      /* borrowed from argv; NULL: default */
	const char *name;        /* create: NAME, borrowed */
	const char *id;          /* show revoke update delete: ID, borrowed */
	int json;                /* list, show: --json */
	long limit[RL_NWINDOWS]; /* --requests-per-*; 0 = not given */
	long burst;              /* --burst; 0 = not given */
	int algorithm_set;       /* --algorithm given */
	enum rl_algorithm algorithm;
	int no_policy;          /* update: --no-policy */
	long long expires_in_s; /* --expires-in; 0 = not given */
	int no_expiry;          /* update: --no-expiry */
	char err[256];          /* one line, no newline, when parsing fails */
};

/*
 * Parses argv[1..argc-1] into *a (zeroed first).  Returns 0, or -1 with a
 * one-line message in a->err.  --help and --version set cmd to
 * KEYS_CMD_HELP or KEYS_CMD_VERSION and need no command.
 */
int keys_args_parse(int argc, char *const *argv, struct keys_args *a);

/* Returns 0 and sets *out_s for a valid DURATION, else -1. */
int keys_args_duration(const char *s, long long *out_s);

/* Returns 0 and sets *out for a decimal count 1..KEYS_ARGS_COUNT_MAX, else -1.
 */
int keys_args_count(const char *s, long *out);

/* Returns 1 when s is 1..KEYS_ARGS_NAME_MAX printable ASCII characters. */
int keys_args_name_ok(const char *s);

/* Returns 1 when a asks for a policy change (any policy flag given). */
int keys_args_has_policy(const struct keys_args *a);

#endif
