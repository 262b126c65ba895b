/*
 * keys_args -- the command line of apigw-keys (see keys_args.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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

#define OPT_GLOBAL (OPT_CONFIG | OPT_HELP | OPT_VERSION)
#define OPT_LIMITS (OPT_RPS | OPT_RPM | OPT_RPH | OPT_RPD)
#define OPT_POLICY (OPT_LIMITS | OPT_BURST | OPT_ALGORITHM)

static const struct keys_option {
	const char *name;
	unsigned flag;
	int has_value;
} keys_options[] = {
    {"--config", OPT_CONFIG, 1},
    {"--help", OPT_HELP, 0},
    {"-h", OPT_HELP, 0},
    {"--version", OPT_VERSION, 0},
    {"-V", OPT_VERSION, 0},
    {"--json", OPT_JSON, 0},
    {"--requests-per-second", OPT_RPS, 1},
    {"--requests-per-minute", OPT_RPM, 1},
    {"--requests-per-hour", OPT_RPH, 1},
    {"--requests-per-day", OPT_RPD, 1},
    {"--burst", OPT_BURST, 1},
    {"--algorithm", OPT_ALGORITHM, 1},
    {"--expires-in", OPT_EXPIRES_IN, 1},
    {"--no-policy", OPT_NO_POLICY, 0},
    {"--no-expiry", OPT_NO_EXPIRY, 0},
};

static const struct keys_command_def {
	const char *name;
	enum keys_command cmd;
	unsigned options; /* accepted besides OPT_GLOBAL */
	const char *arg;  /* the positional argument, or NULL */
} keys_commands[] = {
    {"create", KEYS_CMD_CREATE, OPT_POLICY | OPT_EXPIRES_IN, "NAME"},
    {"list", KEYS_CMD_LIST, OPT_JSON, NULL},
    {"show", KEYS_CMD_SHOW, OPT_JSON, "ID"},
    {"revoke", KEYS_CMD_REVOKE, 0, "ID"},
    {"update", KEYS_CMD_UPDATE,
        OPT_POLICY | OPT_NO_POLICY | OPT_EXPIRES_IN | OPT_NO_EXPIRY, "ID"},
    {"delete", KEYS_CMD_DELETE, 0, "ID"},
};

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))

static void keys_args_error(struct keys_args *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
keys_args_error(struct keys_args *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->err, sizeof a->err, fmt, ap);
	va_end(ap);
}

/*
 * Copies user input s into out for an error message: printable ASCII only
 * (anything else becomes '?'), cut at 40 characters.
 */
static const char *
keys_args_quote(const char *s, char *out, size_t outlen)
{
	size_t i, o = 0;

	for (i = 0; s[i] != '\0' && o + 4 < outlen; i++) {
		if (i == 40) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		out[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	}
	out[o] = '\0';
	return out;
}

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

/* Returns the option named by arg (up to '=' when it has one), or NULL. */
static const struct keys_option *
keys_args_option(const char *arg, const char **value)
{
	const char *eq = strchr(arg, '=');
	size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
	size_t i;

	*value = eq != NULL ? eq + 1 : NULL;
	for (i = 0; i < NITEMS(keys_options); i++) {
		if (strlen(keys_options[i].name) == len &&
		    strncmp(keys_options[i].name, arg, len) == 0)
			return &keys_options[i];
	}
	return NULL;
}

/* Stores the value of option o in a.  Returns 0 or -1 with a->err. */
static int
keys_args_value(struct keys_args *a, const struct keys_option *o, const char *v)
{
	char q[64];
	int w = -1;

	switch (o->flag) {
	case OPT_CONFIG:
		if (v[0] == '\0') {
			keys_args_error(a, "--config: empty file name");
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
			keys_args_error(a,
			    "--algorithm: '%s' is not one of "
			    "sliding_window, token_bucket, fixed_window, gcra",
			    keys_args_quote(v, q, sizeof q));
			return -1;
		}
		a->algorithm_set = 1;
		return 0;
	case OPT_EXPIRES_IN:
		if (keys_args_duration(v, &a->expires_in_s) == -1) {
			keys_args_error(a,
			    "--expires-in: '%s' is not a "
			    "duration from 1s to 36500d (N, Ns, Nm, Nh or Nd)",
			    keys_args_quote(v, q, sizeof q));
			return -1;
		}
		return 0;
	default: return 0;
	}
	if (keys_args_count(v, w >= 0 ? &a->limit[w] : &a->burst) == -1) {
		keys_args_error(a,
		    "%s: '%s' is not a whole number from 1 to "
		    "%ld",
		    o->name, keys_args_quote(v, q, sizeof q),
		    KEYS_ARGS_COUNT_MAX);
		return -1;
	}
	return 0;
}

static const struct keys_command_def *
keys_args_command(const char *name)
{
	size_t i;

	for (i = 0; i < NITEMS(keys_commands); i++) {
		if (strcmp(keys_commands[i].name, name) == 0)
			return &keys_commands[i];
	}
	return NULL;
}

/* Checks what only makes sense once the whole line is read. */
static int
keys_args_finish(struct keys_args *a, const struct keys_command_def *def,
    unsigned seen, const char *pos)
{
	size_t i;

	for (i = 0; i < NITEMS(keys_options); i++) {
		if ((seen & keys_options[i].flag) &&
		    !(keys_options[i].flag & (OPT_GLOBAL | def->options))) {
			keys_args_error(a, "%s: option %s does not apply",
			    def->name, keys_options[i].name);
			return -1;
		}
	}
	if (def->arg != NULL && pos == NULL) {
		keys_args_error(a, "%s: missing %s (try 'apigw-keys --help')",
		    def->name, def->arg);
		return -1;
	}
	if (a->cmd == KEYS_CMD_CREATE) {
		if (!keys_args_name_ok(pos)) {
			keys_args_error(a,
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
		keys_args_error(a,
		    "create: %s needs at least one "
		    "--requests-per-* flag",
		    (seen & OPT_BURST) ? "--burst" : "--algorithm");
		return -1;
	}
	if (a->cmd == KEYS_CMD_UPDATE) {
		if ((seen & OPT_NO_POLICY) && (seen & OPT_POLICY)) {
			keys_args_error(a,
			    "update: --no-policy cannot be "
			    "combined with policy flags");
			return -1;
		}
		if ((seen & OPT_NO_EXPIRY) && (seen & OPT_EXPIRES_IN)) {
			keys_args_error(a,
			    "update: --no-expiry cannot be "
			    "combined with --expires-in");
			return -1;
		}
		if (!(seen &
		        (OPT_POLICY | OPT_NO_POLICY | OPT_EXPIRES_IN |
		            OPT_NO_EXPIRY))) {
			keys_args_error(a,
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
	const struct keys_command_def *def = NULL;
	const struct keys_option *o;
	const char *arg, *v, *pos = NULL;
	char q[64];
	unsigned seen = 0;
	int i, options_done = 0;

	memset(a, 0, sizeof *a);
	for (i = 1; i < argc; i++) {
		arg = argv[i];
		if (!options_done && strcmp(arg, "--") == 0) {
			options_done = 1;
			continue;
		}
		if (options_done || arg[0] != '-' || arg[1] == '\0') {
			if (def == NULL) {
				def = keys_args_command(arg);
				if (def == NULL) {
					keys_args_error(a,
					    "unknown command "
					    "'%s' (try 'apigw-keys --help')",
					    keys_args_quote(arg, q, sizeof q));
					return -1;
				}
				continue;
			}
			if (def->arg == NULL || pos != NULL) {
				keys_args_error(a,
				    "%s: unexpected argument "
				    "'%s'",
				    def->name,
				    keys_args_quote(arg, q, sizeof q));
				return -1;
			}
			pos = arg;
			continue;
		}

		o = keys_args_option(arg, &v);
		if (o == NULL) {
			keys_args_error(a,
			    "unknown option '%s' (try "
			    "'apigw-keys --help')",
			    keys_args_quote(arg, q, sizeof q));
			return -1;
		}
		if (o->flag == OPT_HELP || o->flag == OPT_VERSION) {
			if (v != NULL) {
				keys_args_error(
				    a, "option %s takes no value", o->name);
				return -1;
			}
			a->cmd = o->flag == OPT_HELP ? KEYS_CMD_HELP
			                             : KEYS_CMD_VERSION;
			return 0;
		}
		if (seen & o->flag) {
			keys_args_error(a, "option %s given twice", o->name);
			return -1;
		}
		seen |= o->flag;
		if (!o->has_value) {
			if (v != NULL) {
				keys_args_error(
				    a, "option %s takes no value", o->name);
				return -1;
			}
			if (o->flag == OPT_JSON)
				a->json = 1;
			else if (o->flag == OPT_NO_POLICY)
				a->no_policy = 1;
			else if (o->flag == OPT_NO_EXPIRY)
				a->no_expiry = 1;
			continue;
		}
		if (v == NULL) {
			if (i + 1 == argc) {
				keys_args_error(
				    a, "option %s needs a value", o->name);
				return -1;
			}
			v = argv[++i];
		}
		if (keys_args_value(a, o, v) == -1)
			return -1;
	}

	if (def == NULL) {
		keys_args_error(a, "missing command (try 'apigw-keys --help')");
		return -1;
	}
	a->cmd = def->cmd;
	return keys_args_finish(a, def, seen, pos);
}
