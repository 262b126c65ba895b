/*
 * cli -- what the command-line tools share (see cli.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "log.h"
#include "store.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif
#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

void
cli_format(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

const char *
cli_quote(const char *s, size_t len, size_t max, char *out, size_t outlen)
{
	size_t i, o = 0;

	for (i = 0; i < len && o + 4 < outlen; i++) {
		if (i == max) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		out[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	}
	out[o] = '\0';
	return out;
}

/* Returns the option named by arg (up to '=' when it has one), or NULL. */
static const struct cli_option *
cli_args_option(const struct cli_spec *spec, const char *arg, const char **v)
{
	const char *eq = strchr(arg, '=');
	size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
	size_t i;

	*v = eq != NULL ? eq + 1 : NULL;
	for (i = 0; i < spec->n_options; i++) {
		if (strlen(spec->options[i].name) == len &&
		    strncmp(spec->options[i].name, arg, len) == 0)
			return &spec->options[i];
	}
	return NULL;
}

static const struct cli_command *
cli_args_command(const struct cli_spec *spec, const char *name)
{
	size_t i;

	for (i = 0; i < spec->n_commands; i++) {
		if (strcmp(spec->commands[i].name, name) == 0)
			return &spec->commands[i];
	}
	return NULL;
}

/* Takes arg, a command or the positional argument.  0 or -1 with err. */
static int
cli_args_word(const struct cli_spec *spec, const char *arg,
    struct cli_line *line, char *err, size_t errlen)
{
	char q[CLI_QUOTE_MAX + 8];

	cli_quote(arg, strlen(arg), spec->quote_max, q, sizeof q);
	if (line->def == NULL) {
		line->def = cli_args_command(spec, arg);
		if (line->def == NULL) {
			cli_format(err, errlen,
			    "unknown command '%s' (try '%s --help')", q,
			    spec->prog);
			return -1;
		}
		return 0;
	}
	if (line->def->arg == NULL || line->pos != NULL) {
		cli_format(err, errlen, "%s: unexpected argument '%s'",
		    line->def->name, q);
		return -1;
	}
	line->pos = arg;
	return 0;
}

/* Every option given must apply to the command (or to all of them). */
static int
cli_args_apply(const struct cli_spec *spec, const struct cli_line *line,
    char *err, size_t errlen)
{
	const struct cli_option *o;
	size_t i;

	for (i = 0; i < spec->n_options; i++) {
		o = &spec->options[i];
		if ((line->seen & o->flag) &&
		    !(o->flag & (spec->global | line->def->options))) {
			cli_format(err, errlen, "%s: option %s does not apply",
			    line->def->name, o->name);
			return -1;
		}
	}
	return 0;
}

int
cli_args_parse(const struct cli_spec *spec, int argc, char *const *argv,
    void *ctx, struct cli_line *line, char *err, size_t errlen)
{
	const struct cli_option *o;
	const char *arg, *v;
	char q[CLI_QUOTE_MAX + 8];
	int i, options_done = 0, rc = -1;

	memset(line, 0, sizeof *line);
	for (i = 1; i < argc; i++) {
		arg = argv[i];
		if (!options_done && strcmp(arg, "--") == 0) {
			options_done = 1;
			continue;
		}
		if (options_done || arg[0] != '-' || arg[1] == '\0') {
			if (cli_args_word(spec, arg, line, err, errlen) == -1)
				goto out;
			continue;
		}

		o = cli_args_option(spec, arg, &v);
		if (o == NULL) {
			cli_format(err, errlen,
			    "unknown option '%s' (try '%s --help')",
			    cli_quote(
			        arg, strlen(arg), spec->quote_max, q, sizeof q),
			    spec->prog);
			goto out;
		}
		/* --help and --version end the parse: never seen twice. */
		if (line->seen & o->flag) {
			cli_format(
			    err, errlen, "option %s given twice", o->name);
			goto out;
		}
		line->seen |= o->flag;
		if (!o->has_value && v != NULL) {
			cli_format(
			    err, errlen, "option %s takes no value", o->name);
			goto out;
		}
		if (o->cmd != 0) {
			line->cmd = o->cmd;
			line->def = NULL;
			rc = 0;
			goto out;
		}
		if (o->has_value && v == NULL) {
			if (i + 1 == argc) {
				cli_format(err, errlen,
				    "option %s needs a value", o->name);
				goto out;
			}
			v = argv[++i];
		}
		if (spec->set(ctx, o, v) == -1)
			goto out;
	}

	if (line->def == NULL) {
		cli_format(err, errlen, "missing command (try '%s --help')",
		    spec->prog);
		goto out;
	}
	line->cmd = line->def->cmd;
	rc = cli_args_apply(spec, line, err, errlen);
out:
	return rc;
}

void
cli_error(const char *prog, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	for (i = 0; line[i] != '\0'; i++) {
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	}
	fprintf(stderr, "%s: %s\n", prog, line);
}

int
cli_flush(const char *prog, int rc)
{
	if (fflush(stdout) == EOF || ferror(stdout)) {
		if (rc == CLI_OK) {
			cli_error(prog, "error writing to stdout: %s",
			    strerror(errno));
			rc = CLI_USAGE;
		}
	}
	return rc;
}

int
cli_help(const char *prog, const char *usage)
{
	if (usage != NULL)
		fputs(usage, stdout);
	else
		printf("%s %s\n", prog, PACKAGE_VERSION);
	return cli_flush(prog, CLI_OK);
}

struct config *
cli_config_load(const char *prog, const char *path)
{
	struct config_errors errs;
	struct config *cfg;

	if (path == NULL)
		path = getenv("APIGW_CONFIG");
	if (path == NULL || path[0] == '\0')
		path = SYSCONFDIR "/apigw/apigw.conf";
	memset(&errs, 0, sizeof errs);
	cfg = config_load(path, &errs);
	if (cfg == NULL) {
		if (errs.n == 0)
			cli_error(
			    prog, "%s: cannot load the configuration", path);
		else if (errs.n == 1)
			cli_error(prog, "%s", errs.msg[0]);
		else
			cli_error(prog,
			    "%s (and %zu more errors; see apigw "
			    "--check-config)",
			    errs.msg[0], errs.n - 1);
	}
	config_errors_cleanup(&errs);
	return cfg;
}

struct store *
cli_store_open(const struct config *cfg, char *where, size_t wherelen)
{
	if (cfg->redis.parsed.unix_path != NULL)
		snprintf(where, wherelen, "redis at unix:%s",
		    cfg->redis.parsed.unix_path);
	else
		snprintf(where, wherelen, "redis at %s:%d",
		    cfg->redis.parsed.host != NULL ? cfg->redis.parsed.host
		                                   : "127.0.0.1",
		    cfg->redis.parsed.port);
	log_set_level(LOG_LVL_ERROR);
	return store_new(cfg);
}
