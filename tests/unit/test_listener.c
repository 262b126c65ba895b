/*
 * Unit tests for listener.c: mode and owner parsing, the atomic socket
 * creation (mode applied, a stale socket file replaced, a live one, a
 * plain file and an over-long path refused), and the `listen` config
 * keys.  Files go into one mkdtemp() directory, removed at the end.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "listener.h"
#include "xalloc.h"

static char tmpdir[] = "/tmp/apigw-test-listener.XXXXXX";

static void
test_parse_mode(void **state)
{
	mode_t m;

	(void)state;
	assert_int_equal(listener_parse_mode("0660", &m), 0);
	assert_int_equal(m, 0660);
	assert_int_equal(listener_parse_mode("600", &m), 0);
	assert_int_equal(m, 0600);
	assert_int_equal(listener_parse_mode("0", &m), 0);
	assert_int_equal(m, 0);
	assert_int_equal(listener_parse_mode("0777", &m), 0);
	assert_int_equal(listener_parse_mode("", &m), -1);
	assert_int_equal(listener_parse_mode("0668", &m), -1);
	assert_int_equal(listener_parse_mode("4755", &m), -1); /* setuid */
	assert_int_equal(listener_parse_mode("00660", &m), -1);
	assert_int_equal(listener_parse_mode("rw", &m), -1);
	assert_int_equal(listener_parse_mode("-660", &m), -1);
}

static void
test_owner(void **state)
{
	struct listener_perms p;
	char why[160];

	(void)state;
	assert_int_equal(listener_check_owner("www-data", why, sizeof why), 0);
	assert_int_equal(listener_check_owner("a:b", why, sizeof why), 0);
	assert_int_equal(listener_check_owner(":b", why, sizeof why), 0);
	assert_int_equal(listener_check_owner("33:33", why, sizeof why), 0);
	assert_int_equal(listener_check_owner("", why, sizeof why), -1);
	assert_int_equal(listener_check_owner("a:", why, sizeof why), -1);
	assert_int_equal(listener_check_owner(":", why, sizeof why), -1);
	assert_int_equal(listener_check_owner("a b", why, sizeof why), -1);
	assert_int_equal(listener_check_owner("a:b:c", why, sizeof why), -1);
	assert_int_equal(listener_check_owner("-x", why, sizeof why), -1);

	assert_int_equal(
	    listener_resolve_owner("root", &p, why, sizeof why), 0);
	assert_int_equal(p.uid, 0);
	assert_int_equal(p.gid, (gid_t)-1);
	assert_int_equal(listener_resolve_owner(":0", &p, why, sizeof why), 0);
	assert_int_equal(p.uid, (uid_t)-1);
	assert_int_equal(p.gid, 0);
	assert_int_equal(
	    listener_resolve_owner("no-such-user-apigw", &p, why, sizeof why),
	    -1);
	assert_string_equal(why, "unknown user 'no-such-user-apigw'");
	assert_int_equal(listener_resolve_owner(
	                     "root:no-such-group-apigw", &p, why, sizeof why),
	    -1);
	assert_string_equal(why, "unknown group 'no-such-group-apigw'");
}

static int
open_sock(const char *path, const char *mode, char *err, size_t errlen)
{
	struct listener_perms p = {0, 0, (uid_t)-1, (gid_t)-1};

	if (mode != NULL) {
		assert_int_equal(listener_parse_mode(mode, &p.mode), 0);
		p.mode_set = 1;
	}
	return listener_open_unix(path, 8, &p, err, errlen);
}

static int
connects(const char *path)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0), rc;

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	rc = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	close(fd);
	return rc;
}

static void
test_open_unix(void **state)
{
	char *path = xasprintf("%s/s.sock", tmpdir), err[512];
	char *tmp = xasprintf("%s/.apigw-%ld.sock", tmpdir, (long)getpid());
	struct stat st;
	int fd, fd2;

	(void)state;
	fd = open_sock(path, "0640", err, sizeof err);
	assert_true(fd >= 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(access(tmp, F_OK), -1); /* renamed away */
	assert_true(connects(path));

	/* Live: refused, and the socket is left alone. */
	fd2 = open_sock(path, NULL, err, sizeof err);
	assert_int_equal(fd2, -1);
	assert_non_null(strstr(err, "another process is listening on it"));
	assert_true(connects(path));

	/* Stale (nobody listens any more): replaced. */
	close(fd);
	assert_false(connects(path));
	fd = open_sock(path, "0600", err, sizeof err);
	assert_true(fd >= 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_true(connects(path));
	close(fd);
	unlink(path);

	/* A file that is not a socket is never replaced. */
	fclose(fopen(path, "w"));
	assert_int_equal(open_sock(path, NULL, err, sizeof err), -1);
	assert_non_null(strstr(err, "exists and is not a socket"));
	unlink(path);

	/* Too long for sun_path. */
	free(path);
	path = xasprintf("%s/%0200d.sock", tmpdir, 0);
	assert_int_equal(open_sock(path, NULL, err, sizeof err), -1);
	assert_non_null(strstr(err, "at most 107 bytes"));
	free(path);
	free(tmp);
}

static struct config *
load(const char *listen, struct config_errors *errs)
{
	char *path = xasprintf("%s/c.conf", tmpdir);
	FILE *f = fopen(path, "w");
	struct config *cfg;

	assert_non_null(f);
	fprintf(f,
	    "redis = { url = \"redis://127.0.0.1:6379/0\"; };\n"
	    "routes = ( { prefix = \"/a\"; backend = \"http://h:1\"; } );\n"
	    "%s\n",
	    listen);
	fclose(f);
	cfg = config_load(path, errs);
	free(path);
	return cfg;
}

static void
test_config_keys(void **state)
{
	struct config_errors errs;
	struct config *cfg;

	(void)state;
	cfg = load("", &errs);
	assert_non_null(cfg);
	assert_null(cfg->listen.socket_mode);
	assert_null(cfg->listen.socket_owner);
	config_free(cfg);

	cfg = load("listen = { socket_mode = \"660\"; "
	           "socket_owner = \"www-data:www-data\"; };",
	    &errs);
	assert_non_null(cfg);
	assert_string_equal(cfg->listen.socket_mode, "0660");
	assert_string_equal(cfg->listen.socket_owner, "www-data:www-data");
	config_free(cfg);

	cfg = load("listen = { socket_mode = \"0999\"; socket_owner = \"a b\"; "
	           "socket_group = \"x\"; };",
	    &errs);
	assert_null(cfg);
	assert_int_equal(errs.n, 3);
	assert_non_null(strstr(errs.msg[0],
	    ":3: listen.socket_mode: "
	    "\"0999\" is not an octal mode"));
	assert_non_null(strstr(errs.msg[1],
	    ":3: listen.socket_owner: "
	    "\"a b\": not USER"));
	assert_non_null(strstr(errs.msg[2], "listen.socket_group"));
	config_errors_cleanup(&errs);
}

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);
	int rc;

	(void)state;
	rc = system(cmd);
	free(cmd);
	return rc == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_mode),
	    cmocka_unit_test(test_owner),
	    cmocka_unit_test(test_open_unix),
	    cmocka_unit_test(test_config_keys),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
