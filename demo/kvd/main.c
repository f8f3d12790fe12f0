/* kvd: a Redis-protocol key-value server on libuv loops, persisting to
 * SQLite through a uvpool executor.
 *
 * Each loop thread (kvd-loop-0, kvd-loop-1, ...; --loops N) accepts on the
 * shared port (SO_REUSEPORT), parses requests, answers PING/ECHO/INFO/QUIT
 * itself and writes replies; every SQLite call runs on a pool worker with
 * its own connection. Each loop has a pool, and they all share the first
 * one's workers: --workers caps the total. --inline runs the SQLite calls
 * on the loop threads instead, which is the comparison that shows what the
 * pool buys: with it, a slow command (DEBUG SLEEP, a big KEYS) does not
 * stall every other client. The main thread only handles signals.
 *
 * SPDX-License-Identifier: MIT
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

static const char usage[] =
    "usage: kvd [options]\n"
    "  --port N         TCP port on 127.0.0.1 (default 6379; 0: any free "
    "port)\n"
    "  --db PATH        SQLite database (default kvd.sqlite3)\n"
    "  --workers N      pool worker threads, all loops together (default 4)\n"
    "  --loops N        loop threads sharing the port and the workers "
    "(default 1)\n"
    "  --inline         run SQLite calls on the loop thread, no pool\n"
    "  --max-bulk BYTES longest bulk string accepted (default 536870912)\n"
    "  --sync MODE      SQLite synchronous: normal (default) or full\n"
    "Prints \"kvd listening on 127.0.0.1:PORT\" when ready; SIGINT or\n"
    "SIGTERM stop it gracefully (a second one exits at once).\n";

#define MAX_LOOPS 64

/* One loop thread and its server. */
typedef struct {
  server_t srv; /* first: on_stopped gets it back from srv */
  server_opts_t opts;
  uv_loop_t loop;
  uv_async_t stop; /* main asks the loop to stop its server */
  uv_thread_t tid;
  uv_sem_t *started; /* posted once listening, or once it failed */
  int listening, announced;
} lane_t;

static lane_t lanes[MAX_LOOPS];
static unsigned nloops = 1;

/* The main thread's loop: signals, and the loops' ends. */
static struct {
  uv_loop_t loop;
  uv_signal_t sigint, sigterm;
  uv_async_t ended;        /* a loop thread ended */
  _Atomic unsigned nended; /* loop threads that ended */
  unsigned nstarted;
  int stopping;
} ctl;

/* Parses a decimal unsigned number within [min, max]. */
static int parse_num(const char *s, unsigned long long min,
                     unsigned long long max, unsigned long long *out) {
  char *end;
  if (s == NULL || *s < '0' || *s > '9')
    return -1;
  unsigned long long v = strtoull(s, &end, 10);
  if (*end != '\0' || v < min || v > max)
    return -1;
  *out = v;
  return 0;
}

static int parse_args(int argc, char **argv, server_opts_t *o) {
  unsigned long long v;
  o->port = 6379;
  o->db_path = "kvd.sqlite3";
  o->workers = 4;
  o->inline_mode = 0;
  o->max_bulk = 512ull * 1024 * 1024;
  o->sync = STORE_SYNC_NORMAL;
  o->loops = 1;
  for (int i = 1; i < argc;) {
    const char *a = argv[i++];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(usage, stdout);
      exit(0);
    }
    if (strcmp(a, "--inline") == 0) {
      o->inline_mode = 1;
      continue;
    }
    /* Every other option takes a value. */
    const char *val = i < argc ? argv[i++] : NULL;
    if (strcmp(a, "--port") == 0 && parse_num(val, 0, 65535, &v) == 0) {
      o->port = (int)v;
    } else if (strcmp(a, "--db") == 0 && val != NULL && *val != '\0') {
      o->db_path = val;
    } else if (strcmp(a, "--workers") == 0 &&
               parse_num(val, 1, 1024, &v) == 0) {
      o->workers = (unsigned)v;
    } else if (strcmp(a, "--loops") == 0 &&
               parse_num(val, 1, MAX_LOOPS, &v) == 0) {
      o->loops = (unsigned)v;
    } else if (strcmp(a, "--max-bulk") == 0 &&
               parse_num(val, 1, 512ull * 1024 * 1024, &v) == 0) {
      o->max_bulk = (size_t)v;
    } else if (strcmp(a, "--sync") == 0 && val != NULL &&
               (strcmp(val, "normal") == 0 || strcmp(val, "full") == 0)) {
      o->sync = strcmp(val, "full") == 0 ? STORE_SYNC_FULL : STORE_SYNC_NORMAL;
    } else {
      fprintf(stderr, "kvd: bad option or value: %s%s%s\n%s", a, val ? " " : "",
              val ? val : "", usage);
      return -1;
    }
  }
  return 0;
}

/* ---- a loop thread ------------------------------------------------------ */

static void lane_started(lane_t *l, int ok) {
  if (l->announced)
    return;
  l->announced = 1;
  l->listening = ok;
  uv_sem_post(l->started);
}

static void on_listening(server_t *srv) { lane_started((lane_t *)srv, 1); }

static void on_stopped(server_t *srv) {
  lane_t *l = (lane_t *)srv; /* srv is the first member */
  lane_started(l, 0);        /* stopped before it listened */
  uv_close((uv_handle_t *)&l->stop, NULL);
}

static void on_stop(uv_async_t *h) { server_stop(h->data); }

static void lane_main(void *arg) {
  lane_t *l = arg;
  char name[16];
  snprintf(name, sizeof name, "kvd-loop-%u", l->opts.loop_index);
  pthread_setname_np(pthread_self(), name);
  uv_async_init(&l->loop, &l->stop, on_stop);
  l->stop.data = &l->srv;
  if (server_start(&l->srv, &l->loop, &l->opts, on_stopped) != 0)
    on_stopped(&l->srv); /* nothing else was opened */
  uv_run(&l->loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&l->loop) != 0) {
    fputs("kvd: handles left open at exit\n", stderr);
    l->srv.failed = 1;
  }
  atomic_fetch_add(&ctl.nended, 1);
  uv_async_send(&ctl.ended);
}

/* Starts loop i and waits until it listens (or failed). Loops after the
 * first share its pool and, with port 0, the port it got. */
static int lane_start(unsigned i, const server_opts_t *opts, uv_sem_t *sem) {
  lane_t *l = &lanes[i];
  l->opts = *opts;
  l->opts.loop_index = i;
  l->opts.reuseport = nloops > 1;
  l->opts.on_listening = on_listening;
  l->started = sem;
  if (i > 0) {
    l->opts.share = lanes[0].srv.pool; /* NULL with --inline */
    l->opts.port = lanes[0].srv.port;
  }
  if (uv_loop_init(&l->loop) != 0) {
    fputs("kvd: cannot create an event loop\n", stderr);
    return -1;
  }
  if (uv_thread_create(&l->tid, lane_main, l) != 0) {
    fputs("kvd: cannot start a loop thread\n", stderr);
    uv_loop_close(&l->loop);
    return -1;
  }
  ctl.nstarted++;
  uv_sem_wait(sem);
  return l->listening ? 0 : -1;
}

/* ---- the main thread ---------------------------------------------------- */

static void stop_all(void) {
  for (unsigned i = 0; i < ctl.nstarted; i++)
    uv_async_send(&lanes[i].stop);
}

static void on_signal(uv_signal_t *h, int signum) {
  (void)h;
  if (ctl.stopping) {
    /* The operator insists: requests still in flight are abandoned. */
    fprintf(stderr, "kvd: signal %d again, exiting now\n", signum);
    _exit(1);
  }
  ctl.stopping = 1;
  fprintf(stderr, "kvd: signal %d, stopping\n", signum);
  stop_all();
}

/* Woken by a loop thread that ended; main looks at nended. */
static void on_ended(uv_async_t *h) { (void)h; }

int main(int argc, char **argv) {
  server_opts_t opts;
  uv_sem_t started;
  int failed = 0;
  if (parse_args(argc, argv, &opts) != 0)
    return 2;
  nloops = opts.loops;

  /* A client that vanishes must cost an EPIPE, not the process. */
  signal(SIGPIPE, SIG_IGN);
  if (uv_loop_init(&ctl.loop) != 0 || uv_sem_init(&started, 0) != 0) {
    fputs("kvd: cannot create the event loop\n", stderr);
    return 1;
  }
  if (store_configure(opts.db_path, opts.sync) != 0) {
    fputs("kvd: cannot create a mutex\n", stderr);
    return 1;
  }
  uv_signal_init(&ctl.loop, &ctl.sigint);
  uv_signal_init(&ctl.loop, &ctl.sigterm);
  uv_async_init(&ctl.loop, &ctl.ended, on_ended);
  /* Before starting: scripts may signal as soon as the ready line shows. */
  uv_signal_start(&ctl.sigint, on_signal, SIGINT);
  uv_signal_start(&ctl.sigterm, on_signal, SIGTERM);
  for (unsigned i = 0; i < nloops && !failed; i++)
    failed = lane_start(i, &opts, &started) != 0;
  if (failed) {
    ctl.stopping = 1;
    stop_all();
  } else {
    printf("kvd listening on 127.0.0.1:%d\n", lanes[0].srv.port);
    fflush(stdout);
  }
  while (atomic_load(&ctl.nended) < ctl.nstarted)
    uv_run(&ctl.loop, UV_RUN_ONCE);
  for (unsigned i = 0; i < ctl.nstarted; i++) {
    uv_thread_join(&lanes[i].tid);
    failed |= lanes[i].srv.failed;
  }
  uv_close((uv_handle_t *)&ctl.sigint, NULL);
  uv_close((uv_handle_t *)&ctl.sigterm, NULL);
  uv_close((uv_handle_t *)&ctl.ended, NULL);
  uv_run(&ctl.loop, UV_RUN_DEFAULT);
  /* Every pool closed: the workers closed their connections. */
  store_teardown();
  uv_sem_destroy(&started);
  if (uv_loop_close(&ctl.loop) != 0) {
    fputs("kvd: handles left open at exit\n", stderr);
    failed = 1;
  }
  if (!failed)
    fputs("kvd: stopped\n", stderr);
  return failed ? 1 : 0;
}
