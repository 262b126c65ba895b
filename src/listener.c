/*
 * listener.c -- the --listen unix socket: atomic creation with its mode
 * and owner, the live-or-stale check, and the workers' identity.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "listener.h"

int
listener_parse_mode(const char *s, mode_t *mode)
{
	size_t i, n = strlen(s);
	unsigned long v = 0;

	if (n == 0 || n > 4)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '7')
			return -1;
		v = v * 8 + (unsigned long)(s[i] - '0');
	}
	/* Set-id and sticky bits mean nothing on a socket. */
	if (v > 0777)
		return -1;
	*mode = (mode_t)v;
	return 0;
}

/* A user or group name as useradd(8) accepts them, or a numeric id. */
static int
name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 32 || s[0] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		        (s[i] >= 'A' && s[i] <= 'Z') ||
		        (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		        s[i] == '-' || s[i] == '.' ||
		        (s[i] == '$' && i == n - 1)))
			return 0;
	return 1;
}

int
listener_check_owner(const char *s, char *why, size_t whylen)
{
	const char *colon = strchr(s, ':');
	size_t ul = colon != NULL ? (size_t)(colon - s) : strlen(s);
	int rc = -1;

	if (colon == NULL ? !name_ok(s, ul)
	                  : (ul > 0 && !name_ok(s, ul)) ||
	            !name_ok(colon + 1, strlen(colon + 1)))
		goto out;
	rc = 0;
out:
	if (rc != 0)
		snprintf(why, whylen,
		    "not USER, USER:GROUP or :GROUP (names or numeric ids)");
	return rc;
}

static int
all_digits(const char *s)
{
	return *s != '\0' && strspn(s, "0123456789") == strlen(s);
}

/* getpwnam(), else a numeric uid.  Returns 0 or -1. */
static int
lookup_user(
    const char *name, uid_t *uid, gid_t *gid, char *pwname, size_t pwnamelen)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(name);
	if (pw == NULL && all_digits(name))
		pw = getpwuid((uid_t)strtoul(name, NULL, 10));
	if (pw == NULL)
		return -1;
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	if (pwname != NULL)
		snprintf(pwname, pwnamelen, "%s", pw->pw_name);
	return 0;
}

static int
lookup_group(const char *name, gid_t *gid)
{
	struct group *gr;

	errno = 0;
	gr = getgrnam(name);
	if (gr != NULL) {
		*gid = gr->gr_gid;
		return 0;
	}
	if (all_digits(name)) {
		*gid = (gid_t)strtoul(name, NULL, 10);
		return 0;
	}
	return -1;
}

int
listener_resolve_owner(
    const char *s, struct listener_perms *perms, char *err, size_t errlen)
{
	char user[64], why[160];
	const char *colon = strchr(s, ':');
	size_t ul = colon != NULL ? (size_t)(colon - s) : strlen(s);
	gid_t login_gid;
	int rc = -1;

	perms->uid = (uid_t)-1;
	perms->gid = (gid_t)-1;
	if (listener_check_owner(s, why, sizeof why) != 0) {
		snprintf(err, errlen, "'%s': %s", s, why);
		goto out;
	}
	if (ul > 0) {
		snprintf(user, sizeof user, "%.*s", (int)ul, s);
		if (lookup_user(user, &perms->uid, &login_gid, NULL, 0) != 0) {
			snprintf(err, errlen, "unknown user '%s'", user);
			goto out;
		}
	}
	if (colon != NULL && lookup_group(colon + 1, &perms->gid) != 0) {
		snprintf(err, errlen, "unknown group '%s'", colon + 1);
		goto out;
	}
	rc = 0;
out:
	return rc;
}

/*
 * Is something accepting connections at path?  Returns 1 (yes), 0 (no
 * socket file there, or a stale one: nobody listens) or -1 with err set
 * (a file that is no socket, or the probe failed).
 */
static int
socket_in_use(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd = -1, rc = -1, e;

	if (lstat(path, &st) != 0) {
		e = errno;
		if (e == ENOENT)
			rc = 0;
		else
			snprintf(err, errlen, "%s: %s", path, strerror(e));
		goto out;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket", path);
		goto out;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto out;
	}
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
		snprintf(err, errlen,
		    "%s: another process is listening on it (an apigw master "
		    "already running?); stop it or choose another path",
		    path);
		rc = 1;
		goto out;
	}
	e = errno;
	/* Refused: a socket file nobody listens on, left by a crash. */
	if (e == ECONNREFUSED || e == ENOENT)
		rc = 0;
	else
		snprintf(err, errlen,
		    "%s: cannot tell whether it is in use: %s", path,
		    strerror(e));
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

int
listener_open_unix(const char *path, int backlog,
    const struct listener_perms *perms, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	char tmp[sizeof sa.sun_path];
	const char *slash = strrchr(path, '/');
	mode_t old_umask = 0;
	int fd = -1, bound = 0, umask_set = 0, n, e, rc = -1;

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa.sun_path || slash == NULL) {
		snprintf(err, errlen,
		    "%s: not an absolute socket path of at most %zu bytes",
		    path, sizeof sa.sun_path - 1);
		goto out;
	}
	/* Same directory, so rename() is atomic; the pid keeps two
	 * masters starting at once apart. */
	n = snprintf(tmp, sizeof tmp, "%.*s/.apigw-%ld.sock",
	    (int)(slash - path), path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof tmp) {
		snprintf(err, errlen,
		    "%s: path too long for a temporary name "
		    "beside it",
		    path);
		goto out;
	}
	if (socket_in_use(path, err, errlen) != 0)
		goto out;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto out;
	}
	memcpy(sa.sun_path, tmp, strlen(tmp) + 1);
	(void)unlink(tmp); /* left by a crash of a process with our pid */
	/* Nobody but us may connect until the mode is set. */
	old_umask = umask(0177);
	umask_set = 1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		snprintf(err, errlen, "bind %s: %s", tmp, strerror(errno));
		goto out;
	}
	bound = 1;
	if (listen(fd, backlog) != 0) {
		snprintf(err, errlen, "listen: %s", strerror(errno));
		goto out;
	}
	/* Without --socket-mode: what a plain bind() gives, 0777 minus the
	 * umask. */
	if (chmod(tmp, perms->mode_set ? perms->mode : 0777 & ~old_umask) !=
	    0) {
		snprintf(err, errlen, "chmod %s: %s", tmp, strerror(errno));
		goto out;
	}
	if ((perms->uid != (uid_t)-1 || perms->gid != (gid_t)-1) &&
	    chown(tmp, perms->uid, perms->gid) != 0) {
		e = errno;
		snprintf(err, errlen, "chown %s: %s%s", path, strerror(e),
		    e == EPERM ? " (changing the owner needs root)" : "");
		goto out;
	}
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "rename %s to %s: %s", tmp, path,
		    strerror(errno));
		goto out;
	}
	bound = 0;
	rc = fd;
	fd = -1;
out:
	if (umask_set)
		umask(old_umask);
	if (bound)
		(void)unlink(tmp);
	if (fd >= 0)
		close(fd);
	return rc;
}

int
listener_resolve_identity(const char *user, const char *group,
    struct listener_identity *id, char *err, size_t errlen)
{
	int rc = -1;

	if (lookup_user(user, &id->uid, &id->gid, id->user, sizeof id->user) !=
	    0) {
		snprintf(err, errlen, "--user: unknown user '%s'", user);
		goto out;
	}
	if (group != NULL && lookup_group(group, &id->gid) != 0) {
		snprintf(err, errlen, "--group: unknown group '%s'", group);
		goto out;
	}
	rc = 0;
out:
	return rc;
}

int
listener_drop_privileges(
    const struct listener_identity *id, char *err, size_t errlen)
{
	int rc = -1;

	/* Groups first: after setuid() they can no longer be changed. */
	if (initgroups(id->user, id->gid) != 0) {
		snprintf(err, errlen, "initgroups %s: %s", id->user,
		    strerror(errno));
		goto out;
	}
	if (setgid(id->gid) != 0) {
		snprintf(err, errlen, "setgid %ld: %s", (long)id->gid,
		    strerror(errno));
		goto out;
	}
	if (setuid(id->uid) != 0) {
		snprintf(err, errlen, "setuid %ld: %s", (long)id->uid,
		    strerror(errno));
		goto out;
	}
	if (getuid() != id->uid || geteuid() != id->uid ||
	    getgid() != id->gid || getegid() != id->gid ||
	    (id->uid != 0 && setuid(0) == 0)) {
		snprintf(err, errlen, "privileges not dropped to %s", id->user);
		goto out;
	}
	rc = 0;
out:
	return rc;
}
