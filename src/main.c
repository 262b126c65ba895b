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
 *    accepting, lets in-flight requests finish, and exits.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <fcgiapp.h>

#include "config.h"
#include "gateway.h"
#include "log.h"
#include "request.h"
#include "xalloc.h"

#define MAX_WORKERS 512
#define STOP_GRACE_S 30

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
	    "\n"
	    "  -c, --config FILE   configuration file (else $APIGW_CONFIG, "
	    "else\n"
	    "                      %s/apigw/apigw.conf)\n"
	    "  -t, --check-config  validate the configuration and exit\n"
	    "  -l, --listen ADDR   run a prefork pool on ADDR instead of the "
	    "socket\n"
	    "                      inherited on fd 0 from the web server\n"
	    "  -w, --workers N     workers for --listen (default 4)\n"
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

static int
listen_is_unix(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return 0;
	return ss.ss_family == AF_UNIX;
}

/*
 * Waits up to a second for a new connection on listen_fd or, when the web
 * server keeps its FastCGI connection (kept_fd >= 0), for the next request
 * on it.  Returns 1 when FCGX_Accept_r() will not block for long, 0 after a
 * second of quiet or a signal.
 */
static int
wait_for_request(int listen_fd, int kept_fd)
{
	struct pollfd pfd[2];
	nfds_t n = 0;

	pfd[n].fd = listen_fd;
	pfd[n++].events = POLLIN;
	if (kept_fd >= 0) {
		pfd[n].fd = kept_fd;
		pfd[n++].events = POLLIN;
	}
	return poll(pfd, n, 1000) > 0;
}

/* Serves requests on listen_fd until SIGTERM.  Takes ownership of cfg. */
static int
serve(int listen_fd, struct config *cfg)
{
	FCGX_Request fr;
	struct request req;
	struct gateway *gw;
	char *err = NULL;
	int unix_socket;

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
	FCGX_InitRequest(&fr, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR);
	request_init(&req);
	unix_socket = listen_is_unix(listen_fd);

	while (!got_term) {
		if (!wait_for_request(listen_fd, fr.ipcFd)) {
			/* Idle for a second (or a signal): periodic work. */
			gateway_tick(gw, 0);
			continue;
		}
		if (FCGX_Accept_r(&fr) < 0) {
			if (got_term)
				break;
			if (errno == EINTR || got_hup)
				continue;
			log_error("accept failed: %s", strerror(errno));
			break;
		}
		gateway_maybe_reload(gw, got_hup);
		got_hup = 0;
		request_begin(&req, &fr);
		gateway_handle(gw, &req);
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

/* ---- the --listen master
 * ----------------------------------------------------- */

struct worker {
	pid_t pid;
	unsigned gen; /* config generation it was forked with */
};

static sigset_t master_oldmask;

/* Forks a worker that serves with (its copy of) the master's cfg. */
static pid_t
spawn_worker(int fd, struct config *cfg)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid; /* parent, or -1 */
	sigprocmask(SIG_SETMASK, &master_oldmask, NULL);
	_exit(serve(fd, cfg));
}

static int
count_workers(const struct worker *w, int n, unsigned gen, int any_gen)
{
	int i, c = 0;

	for (i = 0; i < n; i++)
		if (w[i].pid > 0 && (any_gen || w[i].gen == gen))
			c++;
	return c;
}

static void
signal_workers(const struct worker *w, int n, unsigned except_gen, int sig)
{
	int i;

	for (i = 0; i < n; i++)
		if (w[i].pid > 0 && w[i].gen != except_gen)
			kill(w[i].pid, sig);
}

static int
run_master(const char *addr, int nworkers, struct config *cfg)
{
	struct worker w[MAX_WORKERS];
	int nslots = nworkers * 2; /* room for two generations */
	unsigned gen = 1;
	sigset_t block;
	time_t stop_deadline = 0, last_death = 0;
	int fd, i, deaths = 0;

	fd = FCGX_OpenSocket(addr, 128);
	if (fd < 0) {
		fprintf(stderr, "apigw: cannot listen on %s: %s\n", addr,
		    strerror(errno));
		config_free(cfg);
		return 1;
	}
	memset(w, 0, sizeof w);

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
	log_info("listening on %s with %d workers", addr, nworkers);

	for (;;) {
		pid_t pid;
		int status;

		got_chld = 0;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			for (i = 0; i < nslots; i++) {
				if (w[i].pid != pid)
					continue;
				w[i].pid = 0;
				if (got_term || w[i].gen != gen)
					continue;
				log_warn(
				    "worker %ld exited (status %d); restarting",
				    (long)pid, status);
				deaths = time(NULL) - last_death < 2
				    ? deaths + 1
				    : 0;
				last_death = time(NULL);
			}
		}

		if (got_hup && !got_term) {
			struct config *ncfg;

			got_hup = 0;
			ncfg = load_or_report(cfg->path);
			if (ncfg == NULL)
				log_error("SIGHUP: invalid configuration; "
				          "keeping the old one");
			else {
				config_free(cfg);
				cfg = ncfg;
				gen++;
				log_info("SIGHUP: configuration reloaded; "
				         "replacing workers");
			}
		}

		if (got_term) {
			if (stop_deadline == 0) {
				stop_deadline = time(NULL) + STOP_GRACE_S;
				signal_workers(w, nslots, 0, SIGTERM);
			}
			if (count_workers(w, nslots, 0, 1) == 0)
				break;
			if (time(NULL) >= stop_deadline)
				signal_workers(w, nslots, 0, SIGKILL);
			alarm(1);
		} else {
			int have = count_workers(w, nslots, gen, 0);

			if (deaths > 5) {
				/* Crashing in a loop: do not spin. */
				log_error(
				    "workers keep dying; pausing a second");
				sleep(1);
				deaths = 0;
			}
			for (i = 0; i < nslots && have < nworkers; i++) {
				if (w[i].pid != 0)
					continue;
				w[i].pid = spawn_worker(fd, cfg);
				w[i].gen = gen;
				if (w[i].pid < 0) {
					log_error("fork: %s", strerror(errno));
					w[i].pid = 0;
					break;
				}
				have++;
			}
			/* The new generation is up: retire the old one, which
			 * finishes its in-flight requests first. */
			signal_workers(w, nslots, gen, SIGTERM);
		}
		if (!got_chld && !got_hup)
			sigsuspend(&master_oldmask);
	}
	if (addr[0] == '/')
		unlink(addr);
	close(fd);
	config_free(cfg);
	log_info("stopped");
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check-config", no_argument, NULL, 't'},
	    {"listen", required_argument, NULL, 'l'},
	    {"workers", required_argument, NULL, 'w'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	const char *path = NULL, *listen_addr = NULL;
	struct config *cfg;
	int ch, check = 0, workers = 4, rc;
	char *end;

	opterr = 0; /* our own one-line messages */
	while ((ch = getopt_long(argc, argv, ":c:tl:w:Vh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 't': check = 1; break;
		case 'l': listen_addr = optarg; break;
		case 'w':
			errno = 0;
			workers = (int)strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || workers < 1 ||
			    workers > MAX_WORKERS / 2) {
				fprintf(stderr,
				    "apigw: --workers: must be a number "
				    "from 1 to %d\n",
				    MAX_WORKERS / 2);
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
	if (path == NULL)
		path = getenv("APIGW_CONFIG");
	if (path == NULL || *path == '\0')
		path = SYSCONFDIR "/apigw/apigw.conf";

	cfg = load_or_report(path);
	if (cfg == NULL)
		return 1;
	if (check) {
		config_free(cfg);
		return 0;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		fprintf(stderr, "apigw: curl_global_init failed\n");
		config_free(cfg);
		return 1;
	}
	if (listen_addr != NULL)
		rc = run_master(listen_addr, workers, cfg);
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
