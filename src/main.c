/*
 * main.c -- the process model: options, the FastCGI accept loop, and the
 * --listen prefork master.
 *
 * Two ways to run:
 *  - spawned by a web server (lighttpd bin-path, mod_fcgid, spawn-fcgi):
 *    fd 0 is the listening socket; one process serves one request at a
 *    time and the web server manages the pool;
 *  - `apigw --listen ADDR --workers N`: this process opens the socket and
 *    becomes a master that forks N workers, restarts dead ones, reloads on
 *    SIGHUP (a new config is validated first; workers of the old
 *    generation finish their request and exit) and on SIGTERM stops
 *    accepting, lets in-flight requests finish, and exits.  A unix socket
 *    gets its mode and owner before it appears (listener.h); started as
 *    root with --user, the master stays root (to remove the socket and
 *    re-read a root-only config) and each worker drops to the user before
 *    it serves.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <fcgiapp.h>

#include "config.h"
#include "gateway.h"
#include "listener.h"
#include "log.h"
#include "plugin.h"
#include "request.h"
#include "xalloc.h"

#define MAX_WORKERS 256 /* --workers at most */
#define STOP_GRACE_S 30
#define DRAIN_MAX                                                              \
	(64LL << 20) /* bytes of an unread body read to keep a                 \
	              * connection */

static volatile sig_atomic_t got_term;
static volatile sig_atomic_t got_hup;
static volatile sig_atomic_t got_chld;

static void
on_term(int sig)
{
	(void)sig;
	got_term = 1;
	FCGX_ShutdownPending();
}

static void
on_hup(int sig)
{
	(void)sig;
	got_hup = 1;
}

static void
on_chld(int sig)
{
	(void)sig;
	got_chld = 1;
}

/* Installs handler for sig without SA_RESTART, so accept() is interrupted. */
static void
set_signal(int sig, void (*handler)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: apigw [--config FILE] [--check-config]\n"
	    "       apigw [--config FILE] --listen HOST:PORT|/path.sock "
	    "[--workers N]\n"
	    "             [--socket-mode MODE] [--socket-owner USER[:GROUP]]\n"
	    "             [--user USER [--group GROUP]]\n"
	    "\n"
	    "  -c, --config FILE   configuration file (else $APIGW_CONFIG, "
	    "else\n"
	    "                      %s/apigw/apigw.conf)\n"
	    "  -t, --check-config  validate the configuration and exit\n"
	    "  -l, --listen ADDR   run a prefork pool on ADDR instead of the "
	    "socket\n"
	    "                      inherited on fd 0 from the web server\n"
	    "  -w, --workers N     workers for --listen (default 4)\n"
	    "      --socket-mode MODE\n"
	    "                      octal mode of the --listen unix socket, "
	    "e.g. 0660\n"
	    "                      (else listen.socket_mode)\n"
	    "      --socket-owner USER[:GROUP]\n"
	    "                      owner of the --listen unix socket "
	    "(else\n"
	    "                      listen.socket_owner)\n"
	    "      --user USER     as root: workers run as USER once the "
	    "socket\n"
	    "                      is open\n"
	    "      --group GROUP   with --user: their group (default: "
	    "USER's)\n"
	    "  -V, --version       print the version and exit\n"
	    "  -h, --help          print this help and exit\n",
	    SYSCONFDIR);
}

static struct config *
load_or_report(const char *path)
{
	struct config_errors errs = {NULL, 0};
	struct config *cfg;
	size_t i;

	cfg = config_load(path, &errs);
	if (cfg == NULL) {
		for (i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		config_errors_cleanup(&errs);
	}
	return cfg;
}

/*
 * --check-config loads the plugins too (dlopen, init, fini), as nginx -t
 * loads its modules: a plugin that a worker could not load is an error in
 * the config, reported as "file:line: plugins: PATH: reason".
 */
static int
check_plugins(const struct config *cfg)
{
	struct plugins *ps;
	char *err = NULL;
	int rc = 1;

	log_set_level((enum log_level)cfg->log.level);
	ps = plugins_load(cfg, &err);
	if (ps == NULL) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	plugins_free(ps);
	rc = 0;
out:
	free(err);
	return rc;
}

static int
listen_is_unix(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return 0;
	/* The analyzer does not know that getsockname() filled ss. */
	/* NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult) */
	return ss.ss_family == AF_UNIX;
}

/*
 * Makes accept() on the blocking listening socket a web server handed over
 * return after a second without a connection.  Returns 0, or -1 when the
 * socket does not take the timeout (wait_for_request() then polls).
 */
static int
accept_timeout(int listen_fd)
{
	struct timeval tv = {1, 0};

	return setsockopt(listen_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

/*
 * Waits up to a second for a new connection on listen_fd or, when the web
 * server keeps its FastCGI connection (fastcgi_keep_conn), for the next
 * request on the kept one.  Returns 1 when FCGX_Accept_r() will not block
 * for long, 0 after a second of quiet or a signal.
 *
 * libfcgi reads the next request from a kept connection and blocks there,
 * while a new connection in the backlog already carries a request the web
 * server wrote into it: a pool whose workers all hold idle kept
 * connections would leave it waiting.  So when the kept connection is
 * idle and a new one is pending, the worker takes the new one and closes
 * the kept one, which the web server then drops from its cache.  Taking
 * it needs a non-blocking listening socket (the --listen master makes
 * one), so that a worker that loses the race to another keeps its
 * connection rather than blocking in accept().
 */
static int
wait_for_request(FCGX_Request *fr, int listen_fd, int nonblocking, int timed)
{
	struct pollfd pfd[2];
	nfds_t n = 0;
	int fd, one = 1;

	if (timed && fr->ipcFd < 0) {
		/*
		 * The web server's own unix socket with a 1 s accept timeout
		 * (accept_timeout()): accept() waits by itself, wakes one
		 * worker per connection rather than every worker, and costs
		 * no poll() per request.  keepConnection keeps the
		 * FCGX_Finish_r() at the start of FCGX_Accept_r() from closing
		 * the connection; the request's own flags then decide.
		 */
		fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			return 0; /* a quiet second, or a signal */
		fr->ipcFd = fd;
		fr->keepConnection = 1;
		return 1;
	}
	pfd[n].fd = listen_fd;
	pfd[n++].events = POLLIN;
	if (fr->ipcFd >= 0) {
		pfd[n].fd = fr->ipcFd;
		pfd[n++].events = POLLIN;
	}
	if (poll(pfd, n, 1000) <= 0)
		return 0;
	if (n == 1 || pfd[1].revents != 0 || !nonblocking)
		return 1;
	fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return 0; /* another worker took it; the kept one stays */
	/* As libfcgi's own accept does for TCP. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	FCGX_Free(fr, 1);
	fr->ipcFd = fd; /* FCGX_Accept_r() reads a request from it */
	return 1;
}

/* In a --listen worker, its end of the master's ready pipe; else -1. */
static int ready_fd = -1;

/*
 * Tells the --listen master that this worker built its gateway and is
 * about to accept: a new generation takes over only then.  A no-op when a
 * web server spawned the process.
 */
static void
worker_report_ready(void)
{
	pid_t self = getpid();

	if (ready_fd < 0)
		return;
	/* Shorter than PIPE_BUF: written whole or not at all. */
	if (write(ready_fd, &self, sizeof self) != (ssize_t)sizeof self)
		log_error(
		    "cannot report ready to the master: %s", strerror(errno));
	close(ready_fd);
	ready_fd = -1;
}

/* Serves requests on listen_fd until SIGTERM.  Takes ownership of cfg. */
static int
serve(int listen_fd, struct config *cfg)
{
	FCGX_Request fr;
	struct request req;
	struct gateway *gw;
	char *err = NULL;
	int unix_socket, nonblocking, timed;

	set_signal(SIGTERM, on_term);
	set_signal(SIGINT, on_term);
	set_signal(SIGUSR1, on_term); /* what libfcgi would have done */
	set_signal(SIGHUP, on_hup);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);

	if (FCGX_Init() != 0) {
		log_error("FCGX_Init failed");
		config_free(cfg);
		return 1;
	}
	gw = gateway_new(cfg, &err);
	if (gw == NULL) {
		/* One line on stderr, which the web server logs; it sees the
		 * worker exit and serves 5xx rather than a gateway that skips
		 * a configured plugin (an auth check, say). */
		fprintf(stderr, "apigw: %s\n", err);
		free(err);
		return 1;
	}
	worker_report_ready();
	FCGX_InitRequest(&fr, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR);
	request_init(&req);
	unix_socket = listen_is_unix(listen_fd);
	nonblocking = (fcntl(listen_fd, F_GETFL) & O_NONBLOCK) != 0;
	timed = unix_socket && !nonblocking && accept_timeout(listen_fd) == 0;

	while (!got_term) {
		if (!wait_for_request(&fr, listen_fd, nonblocking, timed)) {
			/* Idle for a second (or a signal): periodic work. */
			gateway_tick(gw, 0);
			continue;
		}
		if (FCGX_Accept_r(&fr) < 0) {
			if (got_term)
				break;
			if (errno == EINTR || errno == EAGAIN || got_hup)
				continue; /* EAGAIN: another worker took it */
			log_error("accept failed: %s", strerror(errno));
			break;
		}
		gateway_maybe_reload(gw, got_hup);
		got_hup = 0;
		request_begin(&req, &fr);
		gateway_handle(gw, &req);
		/*
		 * A kept connection (nginx fastcgi_keep_conn) whose request
		 * body was not read (an early 401 or 413) would hand that body
		 * to the next FCGX_Accept_r(): read it to its end first.  The
		 * answer goes out before, but FCGI_END_REQUEST only after: the
		 * web server may send the next request as soon as it has that
		 * record, and libfcgi, reading ahead while it drains, would
		 * swallow the next request's records with the old stream.
		 * (Closing instead would cut the web server off while it still
		 * sends the body: a 502 there.)  A body past DRAIN_MAX closes
		 * the connection.
		 */
		if (fr.keepConnection && !request_input_done(&req)) {
			(void)request_flush(&req);
			if (request_drain_input(&req, DRAIN_MAX) != 0)
				fr.keepConnection = 0;
		}
		/* The response is with the web server now; the work the client
		 * must not wait for comes after, while the parameters (which
		 * the request borrows) are still there. */
		request_complete(&req);
		gateway_after(gw, &req);
		/*
		 * libfcgi closes a connection by shutting down its write side
		 * and waiting for the web server to close first, so that unread
		 * input cannot turn into a TCP reset that destroys the answer.
		 * A unix socket has no resets: when all input was read, skip
		 * the wait (a syscall round trip per request) by detaching.
		 * Unread input (a 413 or 401 before the body) still gets the
		 * wait, or the web server could fail writing it.
		 */
		if (unix_socket && request_input_done(&req))
			FCGX_Detach(&fr);
		FCGX_Finish_r(&fr);
		request_end(&req);
	}
	FCGX_Free(&fr, 0);
	request_cleanup(&req);
	gateway_free(gw);
	return 0;
}

/* ---- the --listen master -------------------------------------------------
 *
 * A generation is the set of workers forked with one config.  The live
 * generation serves.  SIGHUP reads the file again and starts a new
 * generation beside the live one; it takes over (and the old workers are
 * told to finish and exit) only when one of its workers reported ready,
 * that is built its gateway, plugins included.  A new generation whose
 * worker exits before that, or that is not ready in READY_TIMEOUT_S, is
 * dropped and the live one goes on serving: it is not retried until the
 * next SIGHUP, as nothing changed that could make it work.
 */

/* Room for three generations (live, starting, retiring); a further one
 * waits for slots to free. */
#define MAX_SLOTS (3 * MAX_WORKERS)
#define READY_TIMEOUT_S 30

struct worker {
	pid_t pid;
	unsigned gen; /* config generation it was forked with */
};

/* The --listen options of the command line; NULL: not given. */
struct listen_opts {
	const char *addr;
	int workers;
	const char *socket_mode, *socket_owner; /* override listen.* */
	const char *user, *group;
};

struct master {
	int listen_fd;
	int drop; /* workers become id before serving */
	struct listener_identity id;
	int ready_rd, ready_wr; /* workers write their pid when ready */
	int nworkers, nslots;
	struct config *cfg;      /* the live generation's */
	unsigned gen;            /* the live generation */
	struct config *next_cfg; /* the starting generation's, or NULL */
	unsigned next_gen;
	int next_spawned;
	time_t next_deadline;
	unsigned last_gen;
	int deaths;
	time_t last_death;
	struct worker w[MAX_SLOTS];
};

static sigset_t master_oldmask;

/* Forks a worker that serves with (its copy of) cfg. */
static pid_t
spawn_worker(const struct master *m, struct config *cfg)
{
	pid_t pid = fork();
	char err[256];

	if (pid != 0)
		return pid; /* parent, or -1 */
	sigprocmask(SIG_SETMASK, &master_oldmask, NULL);
	close(m->ready_rd);
	ready_fd = m->ready_wr;
	/* Before anything a request can reach: plugins, Redis, backends. */
	if (m->drop && listener_drop_privileges(&m->id, err, sizeof err) != 0) {
		fprintf(stderr, "apigw: worker: %s\n", err);
		_exit(1);
	}
	_exit(serve(m->listen_fd, cfg));
}

/* Forks one worker of generation gen into a free slot.  Returns 0, or -1
 * when no slot is free (retiring workers hold them) or fork failed. */
static int
master_spawn(struct master *m, unsigned gen, struct config *cfg)
{
	pid_t pid;
	int i, rc = -1;

	for (i = 0; i < m->nslots && m->w[i].pid != 0; i++)
		;
	if (i == m->nslots)
		goto out;
	pid = spawn_worker(m, cfg);
	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		goto out;
	}
	m->w[i].pid = pid;
	m->w[i].gen = gen;
	rc = 0;
out:
	return rc;
}

static int
count_workers(const struct master *m, unsigned gen, int any_gen)
{
	int i, c = 0;

	for (i = 0; i < m->nslots; i++)
		if (m->w[i].pid > 0 && (any_gen || m->w[i].gen == gen))
			c++;
	return c;
}

/* Sends sig to the workers of generation gen, or of every generation but
 * gen when but is set. */
static void
signal_workers(const struct master *m, unsigned gen, int but, int sig)
{
	int i;

	for (i = 0; i < m->nslots; i++)
		if (m->w[i].pid > 0 && (m->w[i].gen == gen) != but)
			kill(m->w[i].pid, sig);
}

/* Stops the starting generation and forgets its config. */
static void
master_drop_next(struct master *m, int sig)
{
	signal_workers(m, m->next_gen, 0, sig);
	config_free(m->next_cfg);
	m->next_cfg = NULL;
}

/* The starting generation can serve: it becomes the live one and the
 * others finish their requests and exit. */
static void
master_promote(struct master *m)
{
	config_free(m->cfg);
	m->cfg = m->next_cfg;
	m->next_cfg = NULL;
	m->gen = m->next_gen;
	m->deaths = 0;
	log_info("SIGHUP: new workers ready; retiring the old ones");
	signal_workers(m, m->gen, 1, SIGTERM);
}

/* Reads the pids of workers that reported ready. */
static void
master_read_ready(struct master *m)
{
	pid_t pids[64];
	ssize_t n;
	size_t i;
	int j;

	/* Each report is one write of one pid, shorter than PIPE_BUF and so
	 * never split: reads return whole pids. */
	while ((n = read(m->ready_rd, pids, sizeof pids)) > 0) {
		for (i = 0; i < (size_t)n / sizeof pids[0]; i++) {
			for (j = 0; j < m->nslots; j++)
				if (m->w[j].pid == pids[i])
					break;
			/* Reports from the live generation need nothing. */
			if (j < m->nslots && m->next_cfg != NULL &&
			    m->w[j].gen == m->next_gen)
				master_promote(m);
		}
	}
}

static void
describe_status(int status, char *out, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(out, len, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(out, len, "exit status %d", WEXITSTATUS(status));
}

/* Reaps exited workers; a starting generation that lost one is dropped. */
static void
master_reap(struct master *m)
{
	char how[64];
	pid_t pid;
	int i, status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < m->nslots && m->w[i].pid != pid; i++)
			;
		if (i == m->nslots)
			continue;
		m->w[i].pid = 0;
		if (got_term)
			continue;
		describe_status(status, how, sizeof how);
		if (m->next_cfg != NULL && m->w[i].gen == m->next_gen) {
			log_error("SIGHUP: new worker %ld failed to start "
			          "(%s); still serving with the previous "
			          "configuration; send SIGHUP again once "
			          "%s is fixed",
			    (long)pid, how, m->next_cfg->path);
			master_drop_next(m, SIGTERM);
		} else if (m->w[i].gen == m->gen) {
			log_warn("worker %ld exited (%s); restarting",
			    (long)pid, how);
			m->deaths =
			    time(NULL) - m->last_death < 2 ? m->deaths + 1 : 0;
			m->last_death = time(NULL);
		}
		/* else a retired worker finished */
	}
}

static int
same_str(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* SIGHUP: reads the file again and starts a new generation with it. */
static void
master_reload(struct master *m)
{
	struct config *ncfg = load_or_report(m->cfg->path);

	if (ncfg == NULL) {
		log_error("SIGHUP: invalid configuration; keeping the old one");
		return;
	}
	if (!same_str(ncfg->listen.socket_mode, m->cfg->listen.socket_mode) ||
	    !same_str(ncfg->listen.socket_owner, m->cfg->listen.socket_owner))
		log_warn(
		    "SIGHUP: the listen section changed; it applies to the "
		    "socket at the next start");
	if (m->next_cfg != NULL) {
		log_warn("SIGHUP: new workers still starting; replacing them");
		master_drop_next(m, SIGTERM);
	}
	m->next_cfg = ncfg;
	m->next_gen = ++m->last_gen;
	m->next_spawned = 0;
	m->next_deadline = time(NULL) + READY_TIMEOUT_S;
	log_info("SIGHUP: configuration read; starting new workers");
}

/* Forks what the live and the starting generation miss. */
static void
master_fill(struct master *m)
{
	int have = count_workers(m, m->gen, 0);

	if (m->deaths > 5) {
		/* Crashing in a loop: do not spin. */
		log_error("workers keep dying; pausing a second");
		sleep(1);
		m->deaths = 0;
	}
	while (have < m->nworkers && master_spawn(m, m->gen, m->cfg) == 0)
		have++;
	/* Each worker of a new generation is forked once: one that dies
	 * before it is ready drops the generation (master_reap). */
	while (m->next_cfg != NULL && m->next_spawned < m->nworkers &&
	    master_spawn(m, m->next_gen, m->next_cfg) == 0)
		m->next_spawned++;
	if (m->next_cfg != NULL && time(NULL) >= m->next_deadline) {
		log_error("SIGHUP: new workers not ready after %d s; still "
		          "serving with the previous configuration",
		    READY_TIMEOUT_S);
		master_drop_next(m, SIGKILL); /* stuck before serving */
	}
}

/* Sleeps until a signal or a ready report (or the starting generation's
 * deadline), with the master's signals unblocked meanwhile. */
static void
master_wait(const struct master *m)
{
	struct pollfd pfd = {.fd = m->ready_rd, .events = POLLIN};
	struct timespec ts = {0, 0};
	time_t now = time(NULL);

	if (m->next_cfg != NULL && m->next_deadline > now)
		ts.tv_sec = m->next_deadline - now;
	if (ppoll(&pfd, 1, m->next_cfg != NULL ? &ts : NULL, &master_oldmask) <
	        0 &&
	    errno != EINTR)
		log_error("ppoll: %s", strerror(errno));
}

/*
 * Opens the --listen socket: a unix socket with the mode and owner of the
 * command line, else of the config's listen section; HOST:PORT through
 * libfcgi.  Non-blocking, for wait_for_request().  Returns the descriptor,
 * or -1 after a one-line message on stderr.
 */
static int
open_listen_socket(const struct listen_opts *lo, const struct config *cfg)
{
	struct listener_perms perms = {0, 0, (uid_t)-1, (gid_t)-1};
	const char *mode = lo->socket_mode, *owner = lo->socket_owner;
	const char *mode_from = "--socket-mode", *owner_from = "--socket-owner";
	char err[512];
	int fd = -1, rc = -1;

	if (mode == NULL) {
		mode = cfg->listen.socket_mode;
		mode_from = "listen.socket_mode";
	}
	if (owner == NULL) {
		owner = cfg->listen.socket_owner;
		owner_from = "listen.socket_owner";
	}
	if (lo->addr[0] != '/') {
		if (mode != NULL || owner != NULL)
			log_warn("listen.socket_mode and listen.socket_owner "
			         "apply to a unix socket, not %s: ignored",
			    lo->addr);
		fd = FCGX_OpenSocket(lo->addr, 128);
		if (fd < 0) {
			fprintf(stderr, "apigw: cannot listen on %s: %s\n",
			    lo->addr, strerror(errno));
			goto out;
		}
	} else {
		if (mode != NULL) {
			/* The config's value was checked when it was read. */
			if (listener_parse_mode(mode, &perms.mode) != 0) {
				fprintf(stderr,
				    "apigw: %s: '%s' is not an octal mode "
				    "such as 0660 (at most 0777)\n",
				    mode_from, mode);
				goto out;
			}
			perms.mode_set = 1;
		}
		if (owner != NULL &&
		    listener_resolve_owner(owner, &perms, err, sizeof err) !=
		        0) {
			fprintf(stderr, "apigw: %s: %s\n", owner_from, err);
			goto out;
		}
		fd = listener_open_unix(lo->addr, 128, &perms, err, sizeof err);
		if (fd < 0) {
			fprintf(stderr, "apigw: cannot listen: %s\n", err);
			goto out;
		}
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
		fprintf(stderr, "apigw: fcntl: %s\n", strerror(errno));
		goto out;
	}
	rc = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Runs the master until SIGTERM.  Takes ownership of cfg. */
static int
run_master(const struct listen_opts *lo, struct config *cfg)
{
	struct master *m = xcalloc(1, sizeof *m);
	const char *addr = lo->addr;
	sigset_t block;
	time_t stop_deadline = 0;
	char err[256];
	int pfd[2], rc = 1;

	m->cfg = cfg;
	m->gen = m->last_gen = 1;
	m->nworkers = lo->workers;
	m->nslots = 3 * lo->workers;
	m->ready_rd = m->ready_wr = -1;
	m->listen_fd = -1;
	if (lo->user != NULL) {
		if (geteuid() != 0) {
			fprintf(stderr,
			    "apigw: --user and --group need root (this is uid "
			    "%ld); leave them out to run as this user\n",
			    (long)geteuid());
			goto out;
		}
		if (listener_resolve_identity(
		        lo->user, lo->group, &m->id, err, sizeof err) != 0) {
			fprintf(stderr, "apigw: %s\n", err);
			goto out;
		}
		m->drop = 1;
	}
	m->listen_fd = open_listen_socket(lo, cfg);
	if (m->listen_fd < 0)
		goto out;
	/* Only the master's end is non-blocking: a worker's report must not
	 * be lost to a full pipe. */
	if (pipe2(pfd, O_CLOEXEC) != 0) {
		fprintf(stderr, "apigw: pipe: %s\n", strerror(errno));
		goto out;
	}
	m->ready_rd = pfd[0];
	m->ready_wr = pfd[1];
	if (fcntl(m->ready_rd, F_SETFL, O_NONBLOCK) != 0) {
		fprintf(stderr, "apigw: fcntl: %s\n", strerror(errno));
		goto out;
	}

	set_signal(SIGTERM, on_term);
	set_signal(SIGINT, on_term);
	set_signal(SIGHUP, on_hup);
	set_signal(SIGCHLD, on_chld);
	set_signal(SIGALRM, on_chld);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGCHLD);
	sigaddset(&block, SIGALRM);
	sigprocmask(SIG_BLOCK, &block, &master_oldmask);
	if (m->drop)
		log_info("listening on %s with %d workers running as %s", addr,
		    m->nworkers, m->id.user);
	else
		log_info("listening on %s with %d workers", addr, m->nworkers);

	for (;;) {
		got_chld = 0;
		/* Ready reports first: a worker that reported and then died
		 * has its report in the pipe by the time it is reaped. */
		master_read_ready(m);
		master_reap(m);
		if (got_hup && !got_term) {
			got_hup = 0;
			master_reload(m);
		}
		if (got_term) {
			if (stop_deadline == 0) {
				stop_deadline = time(NULL) + STOP_GRACE_S;
				/* all: no generation is numbered 0 */
				signal_workers(m, 0, 1, SIGTERM);
			}
			if (count_workers(m, 0, 1) == 0)
				break;
			if (time(NULL) >= stop_deadline) {
				signal_workers(m, 0, 1, SIGKILL);
			}
			alarm(1);
		} else
			master_fill(m);
		if (!got_chld && !got_hup)
			master_wait(m);
	}
	if (addr[0] == '/' && unlink(addr) != 0)
		log_warn("cannot remove %s: %s", addr, strerror(errno));
	log_info("stopped");
	rc = 0;
out:
	if (m->listen_fd >= 0)
		close(m->listen_fd);
	if (m->ready_rd >= 0) {
		close(m->ready_rd);
		close(m->ready_wr);
	}
	config_free(m->next_cfg);
	config_free(m->cfg);
	free(m);
	return rc;
}

int
main(int argc, char **argv)
{
	enum { OPT_SOCKET_MODE = 256, OPT_SOCKET_OWNER, OPT_USER, OPT_GROUP };
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check-config", no_argument, NULL, 't'},
	    {"listen", required_argument, NULL, 'l'},
	    {"workers", required_argument, NULL, 'w'},
	    {"socket-mode", required_argument, NULL, OPT_SOCKET_MODE},
	    {"socket-owner", required_argument, NULL, OPT_SOCKET_OWNER},
	    {"user", required_argument, NULL, OPT_USER},
	    {"group", required_argument, NULL, OPT_GROUP},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct listen_opts lo = {NULL, 4, NULL, NULL, NULL, NULL};
	const char *path = NULL, *only_listen = NULL;
	struct config *cfg;
	int ch, check = 0, rc;
	char *end, why[160];
	mode_t mode;

	opterr = 0; /* our own one-line messages */
	while ((ch = getopt_long(argc, argv, ":c:tl:w:Vh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 't': check = 1; break;
		case 'l': lo.addr = optarg; break;
		case OPT_SOCKET_MODE:
			if (listener_parse_mode(optarg, &mode) != 0) {
				fprintf(stderr,
				    "apigw: --socket-mode: '%s' is not an "
				    "octal mode such as 0660 (at most 0777)\n",
				    optarg);
				return 1;
			}
			lo.socket_mode = optarg;
			only_listen = "--socket-mode";
			break;
		case OPT_SOCKET_OWNER:
			if (listener_check_owner(optarg, why, sizeof why) !=
			    0) {
				fprintf(stderr,
				    "apigw: --socket-owner: '%s': %s\n", optarg,
				    why);
				return 1;
			}
			lo.socket_owner = optarg;
			only_listen = "--socket-owner";
			break;
		case OPT_USER:
			lo.user = optarg;
			only_listen = "--user";
			break;
		case OPT_GROUP:
			lo.group = optarg;
			only_listen = "--group";
			break;
		case 'w':
			errno = 0;
			lo.workers = (int)strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || lo.workers < 1 ||
			    lo.workers > MAX_WORKERS) {
				fprintf(stderr,
				    "apigw: --workers: must be a number "
				    "from 1 to %d\n",
				    MAX_WORKERS);
				return 1;
			}
			break;
		case 'V': printf("apigw %s\n", PACKAGE_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		case ':':
			fprintf(stderr,
			    "apigw: option '%s' needs a value; see "
			    "apigw --help\n",
			    argv[optind - 1]);
			return 1;
		default:
			fprintf(stderr,
			    "apigw: unknown option '%s'; see apigw "
			    "--help\n",
			    argv[optind - 1]);
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr,
		    "apigw: unexpected argument '%s'; see apigw --help\n",
		    argv[optind]);
		return 1;
	}
	if (only_listen != NULL && lo.addr == NULL) {
		fprintf(stderr, "apigw: %s works with --listen only\n",
		    only_listen);
		return 1;
	}
	if (lo.addr != NULL && lo.addr[0] != '/' &&
	    (lo.socket_mode != NULL || lo.socket_owner != NULL)) {
		fprintf(stderr,
		    "apigw: --socket-mode and --socket-owner apply to a unix "
		    "socket path, not %s\n",
		    lo.addr);
		return 1;
	}
	if (lo.group != NULL && lo.user == NULL) {
		fprintf(stderr, "apigw: --group needs --user\n");
		return 1;
	}
	if (path == NULL)
		path = getenv("APIGW_CONFIG");
	if (path == NULL || *path == '\0')
		path = SYSCONFDIR "/apigw/apigw.conf";

	cfg = load_or_report(path);
	if (cfg == NULL)
		return 1;
	if (check) {
		rc = check_plugins(cfg);
		config_free(cfg);
		return rc;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		fprintf(stderr, "apigw: curl_global_init failed\n");
		config_free(cfg);
		return 1;
	}
	if (lo.addr != NULL)
		rc = run_master(&lo, cfg);
	else if (FCGX_IsCGI()) {
		fprintf(stderr,
		    "apigw: fd 0 is not a FastCGI socket: start apigw "
		    "from a web server (mod_fcgid, lighttpd bin-path, "
		    "spawn-fcgi) "
		    "or use --listen\n");
		config_free(cfg);
		rc = 1;
	} else
		rc = serve(0, cfg);
	curl_global_cleanup();
	return rc;
}
