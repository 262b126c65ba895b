/*
 * keys_args -- the command line of apigw-keys (see keys_args.h).
 */
#include <string.h>

#include "cli.h"
#include "config.h"
#include "keys_args.h"

/* Option flags: which option was seen, and which a command accepts. */
enum {
	OPT_CONFIG = 1 << 0,
	OPT_HELP = 1 << 1,
	OPT_VERSION = 1 << 2,
	OPT_JSON = 1 << 3,
	OPT_RPS = 1 << 4,
	OPT_RPM = 1 << 5,
	OPT_RPH = 1 << 6,
	OPT_RPD = 1 << 7,
	OPT_BURST = 1 << 8,
	OPT_ALGORITHM = 1 << 9,
	OPT_EXPIRES_IN = 1 << 10,
	OPT_NO_POLICY = 1 << 11,
	OPT_NO_EXPIRY = 1 << 12,
};

#define OPT_LIMITS (OPT_RPS | OPT_RPM | OPT_RPH | OPT_RPD)
#define OPT_POLICY (OPT_LIMITS | OPT_BURST | OPT_ALGORITHM)

static const struct cli_option keys_options[] = {
    {"--config", OPT_CONFIG, 1, 0},
    {"--help", OPT_HELP, 0, KEYS_CMD_HELP},
    {"-h", OPT_HELP, 0, KEYS_CMD_HELP},
    {"--version", OPT_VERSION, 0, KEYS_CMD_VERSION},
    {"-V", OPT_VERSION, 0, KEYS_CMD_VERSION},
    {"--json", OPT_JSON, 0, 0},
    {"--requests-per-second", OPT_RPS, 1, 0},
    {"--requests-per-minute", OPT_RPM, 1, 0},
    {"--requests-per-hour", OPT_RPH, 1, 0},
    {"--requests-per-day", OPT_RPD, 1, 0},
    {"--burst", OPT_BURST, 1, 0},
    {"--algorithm", OPT_ALGORITHM, 1, 0},
    {"--expires-in", OPT_EXPIRES_IN, 1, 0},
    {"--no-policy", OPT_NO_POLICY, 0, 0},
    {"--no-expiry", OPT_NO_EXPIRY, 0, 0},
};

static const struct cli_command keys_commands[] = {
    {"create", KEYS_CMD_CREATE, OPT_POLICY | OPT_EXPIRES_IN, "NAME"},
    {"list", KEYS_CMD_LIST, OPT_JSON, NULL},
    {"show", KEYS_CMD_SHOW, OPT_JSON, "ID"},
    {"revoke", KEYS_CMD_REVOKE, 0, "ID"},
    {"update", KEYS_CMD_UPDATE,
        OPT_POLICY | OPT_NO_POLICY | OPT_EXPIRES_IN | OPT_NO_EXPIRY, "ID"},
    {"delete", KEYS_CMD_DELETE, 0, "ID"},
};

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Bad values are quoted in messages up to this many characters. */
#define KEYS_ARGS_QUOTE_MAX 40

int
keys_args_count(const char *s, long *out)
{
	long long v = 0;
	size_t i;

	if (s == NULL || s[0] == '\0')
		return -1;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
		if (v > KEYS_ARGS_COUNT_MAX)
			return -1;
	}
	if (v < 1)
		return -1;
	*out = (long)v;
	return 0;
}

int
keys_args_duration(const char *s, long long *out_s)
{
	long long v = 0, mult = 1;
	size_t i;

	if (s == NULL || s[0] < '0' || s[0] > '9')
		return -1;
	for (i = 0; s[i] >= '0' && s[i] <= '9'; i++) {
		v = v * 10 + (s[i] - '0');
		if (v > KEYS_ARGS_DURATION_MAX_S)
			return -1;
	}
	switch (s[i]) {
	case '\0': break;
	case 's': break;
	case 'm': mult = 60; break;
	case 'h': mult = 3600; break;
	case 'd': mult = 86400; break;
	default: return -1;
	}
	if (s[i] != '\0' && s[i + 1] != '\0')
		return -1;
	if (v < 1 || v > KEYS_ARGS_DURATION_MAX_S / mult)
		return -1;
	*out_s = v * mult;
	return 0;
}

int
keys_args_name_ok(const char *s)
{
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (i == KEYS_ARGS_NAME_MAX || s[i] < 0x20 || s[i] >= 0x7f)
			return 0;
	}
	return i > 0;
}

int
keys_args_has_policy(const struct keys_args *a)
{
	int w;

	for (w = 0; w < RL_NWINDOWS; w++) {
		if (a->limit[w] > 0)
			return 1;
	}
	return a->burst > 0 || a->algorithm_set || a->no_policy;
}

/* Stores the value of option o in a.  Returns 0 or -1 with a->err. */
static int
keys_args_value(struct keys_args *a, const struct cli_option *o, const char *v)
{
	char q[64];
	int w = -1;

	switch (o->flag) {
	case OPT_CONFIG:
		if (v[0] == '\0') {
			cli_format(
			    a->err, sizeof a->err, "--config: empty file name");
			return -1;
		}
		a->config = v;
		return 0;
	case OPT_RPS: w = RL_SECOND; break;
	case OPT_RPM: w = RL_MINUTE; break;
	case OPT_RPH: w = RL_HOUR; break;
	case OPT_RPD: w = RL_DAY; break;
	case OPT_BURST: break;
	case OPT_ALGORITHM:
		if (rl_algorithm_parse(v, &a->algorithm) == -1) {
			cli_format(a->err, sizeof a->err,
			    "--algorithm: '%s' is not one of "
			    "sliding_window, token_bucket, fixed_window, gcra",
			    cli_quote(v, strlen(v), KEYS_ARGS_QUOTE_MAX, q,
			        sizeof q));
			return -1;
		}
		a->algorithm_set = 1;
		return 0;
	case OPT_EXPIRES_IN:
		if (keys_args_duration(v, &a->expires_in_s) == -1) {
			cli_format(a->err, sizeof a->err,
			    "--expires-in: '%s' is not a "
			    "duration from 1s to 36500d (N, Ns, Nm, Nh or Nd)",
			    cli_quote(v, strlen(v), KEYS_ARGS_QUOTE_MAX, q,
			        sizeof q));
			return -1;
		}
		return 0;
	default: return 0;
	}
	if (keys_args_count(v, w >= 0 ? &a->limit[w] : &a->burst) == -1) {
		cli_format(a->err, sizeof a->err,
		    "%s: '%s' is not a whole number from 1 to "
		    "%ld",
		    o->name,
		    cli_quote(v, strlen(v), KEYS_ARGS_QUOTE_MAX, q, sizeof q),
		    KEYS_ARGS_COUNT_MAX);
		return -1;
	}
	return 0;
}

/* Stores option o (value v, NULL for a flag) in the keys_args ctx. */
static int
keys_args_set(void *ctx, const struct cli_option *o, const char *v)
{
	struct keys_args *a = ctx;

	if (v != NULL)
		return keys_args_value(a, o, v);
	if (o->flag == OPT_JSON)
		a->json = 1;
	else if (o->flag == OPT_NO_POLICY)
		a->no_policy = 1;
	else if (o->flag == OPT_NO_EXPIRY)
		a->no_expiry = 1;
	return 0;
}

static const struct cli_spec keys_spec = {
    .prog = "apigw-keys",
    .options = keys_options,
    .n_options = NITEMS(keys_options),
    .commands = keys_commands,
    .n_commands = NITEMS(keys_commands),
    .global = OPT_CONFIG | OPT_HELP | OPT_VERSION,
    .quote_max = KEYS_ARGS_QUOTE_MAX,
    .set = keys_args_set,
};

/* Checks what only makes sense once the whole line is read. */
static int
keys_args_finish(struct keys_args *a, const struct cli_command *def,
    unsigned seen, const char *pos)
{
	if (def->arg != NULL && pos == NULL) {
		cli_format(a->err, sizeof a->err,
		    "%s: missing %s (try 'apigw-keys --help')", def->name,
		    def->arg);
		return -1;
	}
	if (a->cmd == KEYS_CMD_CREATE) {
		if (!keys_args_name_ok(pos)) {
			cli_format(a->err, sizeof a->err,
			    "create: NAME must be 1 to %d "
			    "printable ASCII characters",
			    KEYS_ARGS_NAME_MAX);
			return -1;
		}
		a->name = pos;
	} else if (def->arg != NULL) {
		a->id = pos;
	}
	if (a->cmd == KEYS_CMD_CREATE && !(seen & OPT_LIMITS) &&
	    (seen & (OPT_BURST | OPT_ALGORITHM))) {
		cli_format(a->err, sizeof a->err,
		    "create: %s needs at least one "
		    "--requests-per-* flag",
		    (seen & OPT_BURST) ? "--burst" : "--algorithm");
		return -1;
	}
	if (a->cmd == KEYS_CMD_UPDATE) {
		if ((seen & OPT_NO_POLICY) && (seen & OPT_POLICY)) {
			cli_format(a->err, sizeof a->err,
			    "update: --no-policy cannot be "
			    "combined with policy flags");
			return -1;
		}
		if ((seen & OPT_NO_EXPIRY) && (seen & OPT_EXPIRES_IN)) {
			cli_format(a->err, sizeof a->err,
			    "update: --no-expiry cannot be "
			    "combined with --expires-in");
			return -1;
		}
		if (!(seen &
		        (OPT_POLICY | OPT_NO_POLICY | OPT_EXPIRES_IN |
		            OPT_NO_EXPIRY))) {
			cli_format(a->err, sizeof a->err,
			    "update: nothing to change (give "
			    "policy flags, --no-policy, --expires-in or "
			    "--no-expiry)");
			return -1;
		}
	}
	return 0;
}

int
keys_args_parse(int argc, char *const *argv, struct keys_args *a)
{
	struct cli_line line;
	int rc;

	memset(a, 0, sizeof *a);
	rc = cli_args_parse(
	    &keys_spec, argc, argv, a, &line, a->err, sizeof a->err);
	a->cmd = (enum keys_command)line.cmd;
	if (rc == 0 && line.def != NULL)
		rc = keys_args_finish(a, line.def, line.seen, line.pos);
	return rc;
}
