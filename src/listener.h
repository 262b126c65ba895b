/*
 * listener -- the unix socket of `apigw --listen /path.sock` and the
 * identity its workers run as.
 *
 * The socket is made ready under a temporary name in the same directory
 * (bound, listening, its mode and owner set) and then renamed over the
 * final path, so a client (nginx, say) never meets a socket it is not
 * allowed to use, and a restart replaces the old socket without a moment
 * where the path is missing.  A socket file left at the path by a master
 * that crashed is replaced; one that still accepts connections belongs to
 * a running master and is refused.
 *
 * The kernel keeps the name a socket was bound to: getsockname(), ss(8)
 * and /proc/net/unix show the temporary name, "DIR/.apigw-PID.sock".
 *
 * Options as an operator writes them:
 *	--socket-mode 0660 --socket-owner www-data:www-data --user apigw
 * mode: 1 to 4 octal digits, at most 0777; owner: USER, USER:GROUP or
 * :GROUP, names or numeric ids, as chown(1) takes them (USER alone keeps
 * the group).
 *
 * Error details go into a caller's buffer as one line without a trailing
 * newline; the caller prefixes "apigw: ".
 */
#ifndef APIGW_LISTENER_H
#define APIGW_LISTENER_H

#include <stddef.h>
#include <sys/types.h>

/* What the socket file gets; a field left unset keeps what bind() gave. */
struct listener_perms {
	int mode_set;
	mode_t mode;
	uid_t uid; /* (uid_t)-1: unchanged */
	gid_t gid; /* (gid_t)-1: unchanged */
};

/* Who the workers become: uid, gid and the supplementary groups of user. */
struct listener_identity {
	char user[64]; /* the passwd name, for initgroups() */
	uid_t uid;
	gid_t gid;
};

/* Parses an octal mode ("0660", "660").  Returns 0, or -1 when s is not
 * 1 to 4 octal digits or sets bits above 0777. */
int listener_parse_mode(const char *s, mode_t *mode);
/*
 * Checks the form of an owner "USER[:GROUP]" or ":GROUP" without looking
 * the names up (the config is checked on machines that lack the users).
 * Returns 0, or -1 with a reason in why.
 */
int listener_check_owner(const char *s, char *why, size_t whylen);
/*
 * Resolves an owner into perms->uid and perms->gid (left at -1 for a part
 * that is absent).  Returns 0, or -1 with "unknown user 'x'" or the like
 * in err.
 */
int listener_resolve_owner(
    const char *s, struct listener_perms *perms, char *err, size_t errlen);
/*
 * Opens a listening unix socket at path with backlog, perms applied before
 * it appears at path.  Returns the descriptor (close-on-exec), or -1 with
 * the reason in err: path too long, a live socket there, not a socket
 * there, or a failing system call (named, with strerror).
 */
int listener_open_unix(const char *path, int backlog,
    const struct listener_perms *perms, char *err, size_t errlen);
/*
 * Resolves --user (required) and --group (optional: else the user's login
 * group) into id.  Returns 0, or -1 with the reason in err.
 */
int listener_resolve_identity(const char *user, const char *group,
    struct listener_identity *id, char *err, size_t errlen);
/*
 * Becomes id for good: supplementary groups, then the gid, then the uid,
 * each checked, and verified afterwards (no way back to root).  Returns
 * 0, or -1 with the reason in err.
 */
int listener_drop_privileges(
    const struct listener_identity *id, char *err, size_t errlen);

#endif
