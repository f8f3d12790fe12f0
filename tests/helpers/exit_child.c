/* exit_child SCENARIO DIR: runs one process-exit or fork() scenario of
 * uvpool, so that test_exit can observe it from outside: the exit status,
 * how long the process took, and the files it left in DIR.
 *
 * Conventions shared with test_exit.c:
 * - Task files are DIR/t<id>, FILE_SIZE bytes of pattern(id, offset),
 *   written in CHUNKS write() calls. A task opens its file first, so a task
 *   that never started leaves no file.
 * - Facts are "key=value" lines appended to DIR/facts, one write() each
 *   (O_APPEND keeps lines whole across threads and forked children).
 * - Exit status 90 means a set-up call failed, 91 that a precondition of
 *   the scenario did not hold; both print a diagnostic to stderr.
 *
 * Synchronisation is by semaphores, futures and waitpid only. Two tricks
 * recur:
 * - atexit() handlers run in reverse order of registration and uvpool
 *   registers its own at the first uvpool_new(). A handler registered
 *   after that runs before uvpool's (release_at_exit: it lets held tasks
 *   go, so they are provably still queued or running when exit begins); a
 *   handler registered before it runs after uvpool's (it sees the drained
 *   state).
 * - A pool with UVPOOL_EXIT_CANCEL_PENDING settles its queued futures
 *   inside uvpool's exit handler, so a thread waiting on one of them wakes
 *   exactly when exit has begun. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* POSIX and Linux calls under -std=c11 */
#endif
#include "internal.h"
#include "uvpool.h"

#include "bounded_wait.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EC_SETUP 90
#define EC_PRECOND 91

#define FILE_SIZE (64 * 1024)
#define CHUNKS 8
#define CHUNK (FILE_SIZE / CHUNKS)
#define MAX_TASKS 64
/* How long a forked child may take to exit before it counts as hung:
 * well below test_exit's bound for the whole scenario, so that a hung
 * grandchild shows as the fact "timeout" rather than as a hung scenario.
 * A child exits in milliseconds; a coverage build's child also merges its
 * counters into files that every test process locks in turn. */
#define CHILD_BOUND_MS 20000

/* ---- plumbing ----------------------------------------------------------- */

static const char *g_dir;
static uv_loop_t g_loop;

static void die(const char *what, int rc) {
  fprintf(stderr, "exit_child: %s: %s\n", what,
          rc < 0 ? uv_strerror(rc) : strerror(rc));
  _exit(EC_SETUP); /* not exit(): a broken set-up must not drain pools */
}

static void check(int rc, const char *what) {
  if (rc != 0)
    die(what, rc);
}

static void precond(bool ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "exit_child: precondition failed: %s\n", what);
    _exit(EC_PRECOND);
  }
}

static void path_of(char *buf, size_t n, const char *name) {
  snprintf(buf, n, "%s/%s", g_dir, name);
}

static void append_line(const char *name, const char *line) {
  char path[512];
  size_t len = strlen(line);
  int fd;
  path_of(path, sizeof(path), name);
  fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    die(path, errno);
  if (write(fd, line, len) != (ssize_t)len)
    die("append", errno);
  close(fd);
}

static void fact(const char *key, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fact(const char *key, const char *fmt, ...) {
  char line[256];
  va_list ap;
  size_t n;
  snprintf(line, sizeof(line) - 1, "%s=", key);
  n = strlen(line);
  va_start(ap, fmt);
  vsnprintf(line + n, sizeof(line) - 1 - n, fmt, ap);
  va_end(ap);
  n = strlen(line);
  line[n] = '\n';
  line[n + 1] = '\0';
  append_line("facts", line);
}

static const char *err_name(int rc) { return rc == 0 ? "0" : uv_err_name(rc); }

static const char *state_name(uvpool_state_t s) {
  switch (s) {
  case UVPOOL_PENDING:
    return "PENDING";
  case UVPOOL_RUNNING:
    return "RUNNING";
  case UVPOOL_DONE:
    return "DONE";
  case UVPOOL_FAILED:
    return "FAILED";
  case UVPOOL_CANCELLED:
    return "CANCELLED";
  }
  return "?";
}

/* Blocks the calling thread for good: for a main thread that must neither
 * return (that would be a second, concurrent exit()) nor matter. */
static void block_forever(void) {
  for (;;)
    pause();
}

static void workload_pause(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

/* Waits for a forked child, at most CHILD_BOUND_MS, and records how it
 * ended as fact key: "exit:N", "signal:N" or "timeout" (then kills it). */
static void record_child(const char *key, pid_t pid) {
  int status = 0;
  if (!bounded_wait(pid, pid, CHILD_BOUND_MS, &status)) {
    fact(key, "timeout");
    return;
  }
  if (WIFEXITED(status))
    fact(key, "exit:%d", WEXITSTATUS(status));
  else
    fact(key, "signal:%d", WTERMSIG(status));
}

static void opts_init(uvpool_options_t *o, unsigned max_workers) {
  uvpool_options_init(o);
  o->max_workers = max_workers;
}

static uvpool_t *pool_new(const uvpool_options_t *o) {
  uvpool_t *p = NULL;
  check(uvpool_new(&g_loop, o, &p), "uvpool_new");
  return p;
}

static uvpool_t *pool_new_max(unsigned max_workers) {
  uvpool_options_t o;
  opts_init(&o, max_workers);
  return pool_new(&o);
}

/* ---- the hold: tasks that must still be unfinished when exit begins ---- */

static uv_mutex_t g_hold_mu;
static uv_cond_t g_hold_cv;
static bool g_hold_open;

static void hold_wait(void) {
  uv_mutex_lock(&g_hold_mu);
  while (!g_hold_open)
    uv_cond_wait(&g_hold_cv, &g_hold_mu);
  uv_mutex_unlock(&g_hold_mu);
}

static void hold_release(void) {
  uv_mutex_lock(&g_hold_mu);
  g_hold_open = true;
  uv_cond_broadcast(&g_hold_cv);
  uv_mutex_unlock(&g_hold_mu);
}

static _Atomic int g_files_done;
static uvpool_future_t *_Atomic g_watch; /* state recorded at exit start */

/* Registered after the first uvpool_new(), so it runs before uvpool's
 * exit handler: what it records is the state exit began with. */
static void release_at_exit(void) {
  uvpool_future_t *w = atomic_load(&g_watch);
  fact("files_done_at_exit", "%d", atomic_load(&g_files_done));
  if (w != NULL)
    fact("watch_state_at_exit", "%s", state_name(uvpool_future_state(w)));
  hold_release();
}

static void arm_release_at_exit(void) {
  if (atexit(release_at_exit) != 0)
    die("atexit", ENOMEM);
}

/* ---- work functions ----------------------------------------------------- */

static uv_sem_t g_started; /* posted by work that has begun */
static uv_sem_t g_ready;   /* posted by main once set-up is complete */

typedef struct {
  unsigned id;
  bool hold;         /* wait for the hold before writing */
  void (*mid)(void); /* runs after the first chunk */
} file_task_t;

static file_task_t g_task[MAX_TASKS];

/* Must match test_exit.c. */
static unsigned char pattern(unsigned id, size_t off) {
  return (unsigned char)((id * 131u + off + off / 4099u) & 0xffu);
}

static int work_file(void *arg, void **result) {
  file_task_t *t = arg;
  unsigned char buf[CHUNK];
  char path[512], name[32];
  int fd;
  (void)result;
  if (t->hold)
    hold_wait();
  snprintf(name, sizeof(name), "t%u", t->id);
  path_of(path, sizeof(path), name);
  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return uv_translate_sys_error(errno);
  for (size_t c = 0; c < CHUNKS; c++) {
    size_t done = 0;
    for (size_t i = 0; i < CHUNK; i++)
      buf[i] = pattern(t->id, c * CHUNK + i);
    while (done < CHUNK) {
      ssize_t n = write(fd, buf + done, CHUNK - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        close(fd);
        return UV_EIO;
      }
      done += (size_t)n;
    }
    if (c == 0 && t->mid != NULL)
      t->mid();
    workload_pause(500); /* the task's own work: slow enough to overlap */
  }
  close(fd);
  atomic_fetch_add(&g_files_done, 1);
  return 0;
}

static void submit_files(uvpool_t *p, unsigned first, unsigned n, bool hold,
                         uvpool_future_t **out) {
  for (unsigned i = 0; i < n; i++) {
    file_task_t *t = &g_task[first + i];
    t->id = first + i;
    t->hold = hold;
    check(uvpool_submit(p, work_file, t, out != NULL ? &out[i] : NULL),
          "submit file task");
  }
}

static int work_noop(void *arg, void **result) {
  *result = arg;
  return 0;
}

/* Posts g_started, then waits for the hold. */
static int work_started_hold(void *arg, void **result) {
  (void)arg;
  (void)result;
  uv_sem_post(&g_started);
  hold_wait();
  return 0;
}

/* ---- scenarios: process exit --------------------------------------------- */

/* 50 held file tasks on two workers; main returns without closing. */
static int sc_return_from_main(void) {
  uvpool_t *p = pool_new_max(2);
  submit_files(p, 0, 50, true, NULL);
  arm_release_at_exit();
  return 0;
}

/* Composition at exit: queued lane, deadline and priority tasks still run
 * (files 4-8), and so does the submit_after task (file 3): it is released
 * when its last dependency completes, on the worker that completed it,
 * with no callback; nothing hangs. */
static int sc_exit_with_composition(void) {
  uvpool_t *p = pool_new_max(2);
  uvpool_future_t *deps[3], *all = NULL, *after = NULL;
  uvpool_task_options_t o;
  unsigned lane = 0;
  submit_files(p, 0, 3, true, deps);
  check(uvpool_when_all(deps, 3, 0, &all), "when_all");
  g_task[3].id = 3;
  check(uvpool_submit_after(p, deps, 3, work_file, &g_task[3], &after),
        "submit_after");
  check(uvpool_lane_new(p, 1, &lane), "lane_new");
  for (unsigned i = 4; i <= 8; i++) {
    uvpool_task_options_init(&o);
    o.lane = i <= 6 ? lane : 0;
    o.deadline_ms = i == 7 ? 60000 : -1;
    o.priority = i == 8 ? 5 : 0;
    g_task[i].id = i;
    g_task[i].hold = true;
    check(uvpool_submit_ex(p, &o, work_file, &g_task[i], NULL), "submit_ex");
  }
  arm_release_at_exit();
  return 0;
}

/* Waits until main queued everything, then exits with status arg. */
static int work_exit(void *arg, void **result) {
  (void)result;
  uv_sem_wait(&g_ready);
  exit((int)(intptr_t)arg);
}

static int exit_in_work(unsigned max_workers) {
  uvpool_t *p = pool_new_max(max_workers);
  check(uvpool_submit(p, work_exit, (void *)0, NULL), "submit exit task");
  submit_files(p, 0, 20, true, NULL);
  arm_release_at_exit();
  uv_sem_post(&g_ready);
  uv_run(&g_loop, UV_RUN_DEFAULT);
  block_forever();
  return EC_PRECOND;
}

static int sc_exit_in_work(void) { return exit_in_work(2); }

/* The exiting task holds the pool's only worker: the queue still drains. */
static int sc_exit_in_work_sole_worker(void) { return exit_in_work(1); }

static void cb_exit(uvpool_future_t *f, void *data) {
  (void)f;
  exit((int)(intptr_t)data);
}

/* A quick task's done callback exits while held file tasks are queued or
 * running. */
static int sc_exit_in_done_cb(void) {
  uvpool_t *p = pool_new_max(2);
  uvpool_future_t *f = NULL;
  check(uvpool_submit(p, work_noop, NULL, &f), "submit");
  check(uvpool_future_on_done(f, cb_exit, (void *)0), "on_done");
  uvpool_future_unref(f);
  submit_files(p, 0, 20, true, NULL);
  arm_release_at_exit();
  uv_run(&g_loop, UV_RUN_DEFAULT);
  precond(false, "the done callback exited");
  return EC_PRECOND;
}

static void thread_exit3(void *arg) {
  (void)arg;
  exit(3);
}

static void on_tick(uv_timer_t *t) {
  static uv_thread_t tid;
  static bool once;
  (void)t;
  /* Started from a timer callback, so the loop provably runs. */
  if (!once) {
    once = true;
    check(uv_thread_create(&tid, thread_exit3, NULL), "uv_thread_create");
  }
}

/* exit(3) from a plain thread while main runs the loop (kept alive by a
 * repeating timer) and held file tasks wait. */
static int sc_exit_from_other_thread(void) {
  static uv_timer_t timer;
  uvpool_t *p = pool_new_max(2);
  submit_files(p, 0, 20, true, NULL);
  arm_release_at_exit();
  check(uv_timer_init(&g_loop, &timer), "uv_timer_init");
  check(uv_timer_start(&timer, on_tick, 0, 5), "uv_timer_start");
  uv_run(&g_loop, UV_RUN_DEFAULT);
  precond(false, "the loop kept running");
  return EC_PRECOND;
}

static uvpool_future_t *g_last_queued;

/* Runs after the running task's first chunk: tells main it started, then
 * blocks until exit cancelled the queue (the last queued future settles),
 * so the file is provably half written when exit begins. */
static void mid_until_queue_cancelled(void) {
  uv_sem_post(&g_started);
  uv_sem_wait(&g_ready);
  if (uvpool_future_wait(g_last_queued, -1) != 0)
    _exit(EC_PRECOND);
}

/* UVPOOL_EXIT_CANCEL_PENDING, one worker: t0 runs, t1..t10 are queued. */
static int sc_exit_cancel_pending(void) {
  uvpool_options_t o;
  uvpool_future_t *q[10];
  uvpool_t *p;
  opts_init(&o, 1);
  o.flags = UVPOOL_EXIT_CANCEL_PENDING;
  p = pool_new(&o);
  g_task[0].mid = mid_until_queue_cancelled;
  submit_files(p, 0, 1, false, NULL);
  submit_files(p, 1, 10, false, q);
  g_last_queued = q[9];
  uv_sem_post(&g_ready);
  uv_sem_wait(&g_started);
  return 0;
}

static int work_stuck(void *arg, void **result) {
  (void)arg;
  (void)result;
  uv_sem_post(&g_started);
  for (;;)
    workload_pause(100000); /* simulates a task that never returns */
  return 0;                 /* not reached */
}

/* exit_timeout_ms 200 and a task that never returns: exit(4) still ends
 * the process. */
static int sc_exit_timeout_stuck(void) {
  uvpool_options_t o;
  uvpool_t *p;
  opts_init(&o, 1);
  o.exit_timeout_ms = 200;
  p = pool_new(&o);
  check(uvpool_submit(p, work_stuck, NULL, NULL), "submit");
  uv_sem_wait(&g_started);
  exit(4);
}

/* A task that never returns and the default... almost: exit_timeout_ms
 * 4000, past the 3 s after which the exit handler says on stderr what it
 * waits for. exit(4) ends the process at the timeout. */
static int sc_exit_stuck_warns(void) {
  uvpool_options_t o;
  uvpool_t *p;
  opts_init(&o, 1);
  o.name = "stuckpool";
  o.exit_timeout_ms = 4000;
  p = pool_new(&o);
  check(uvpool_submit(p, work_stuck, NULL, NULL), "submit");
  uv_sem_wait(&g_started);
  exit(4);
}

/* Polls uvpool_cancel_requested() until exit asks it to stop. */
static int work_until_cancelled(void *arg, void **result) {
  (void)arg;
  (void)result;
  uv_sem_post(&g_started);
  while (!uvpool_cancel_requested())
    workload_pause(1000);
  fact("saw_cancel", "1");
  return UV_ECANCELED;
}

/* UVPOOL_EXIT_CANCEL_RUNNING: a task that runs until asked to stop, with
 * the default exit_timeout_ms (forever), does not hold exit. */
static int sc_exit_cancel_running(void) {
  uvpool_options_t o;
  uvpool_t *p;
  opts_init(&o, 1);
  o.flags = UVPOOL_EXIT_CANCEL_RUNNING;
  p = pool_new(&o);
  check(uvpool_submit(p, work_until_cancelled, NULL, NULL), "submit");
  uv_sem_wait(&g_started);
  return 0;
}

static uvpool_future_t *g_sentinel;

/* Runs until exit began: until the queued sentinel behind it is cancelled
 * by the exit handler (see the top of this file). */
static int work_until_exit_began(void *arg, void **result) {
  (void)arg;
  (void)result;
  uv_sem_post(&g_started);
  uv_sem_wait(&g_ready);
  return uvpool_future_wait(g_sentinel, -1);
}

/* UVPOOL_EXIT_CANCEL_PENDING cancels a task that waits for its dependency
 * like any queued task: file 1 is never written, although its dependency,
 * running when exit begins, completes. */
static int sc_exit_cancel_pending_dependant(void) {
  uvpool_options_t o;
  uvpool_t *p;
  uvpool_future_t *dep = NULL;
  opts_init(&o, 1);
  o.flags = UVPOOL_EXIT_CANCEL_PENDING;
  p = pool_new(&o);
  check(uvpool_submit(p, work_until_exit_began, NULL, &dep), "submit");
  uv_sem_wait(&g_started);
  check(uvpool_submit(p, work_noop, NULL, &g_sentinel), "submit sentinel");
  g_task[1].id = 1;
  check(uvpool_submit_after(p, &dep, 1, work_file, &g_task[1], NULL),
        "submit_after");
  uv_sem_post(&g_ready);
  return 0;
}

static void on_closed(uvpool_t *pool, void *data) {
  (void)pool;
  *(int *)data += 1;
}

/* A pool closed completely, then exit(0). */
static int sc_exit_after_close(void) {
  uvpool_t *p = pool_new_max(2);
  int closed = 0;
  submit_files(p, 0, 5, false, NULL);
  check(uvpool_close(p, 0, on_closed, &closed), "uvpool_close");
  precond(uv_run(&g_loop, UV_RUN_DEFAULT) == 0, "the loop ran down");
  fact("closed", "%d", closed);
  fact("loop_close", "%s", err_name(uv_loop_close(&g_loop)));
  exit(0);
}

static int count_threads(void) {
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  int n = 0;
  if (d == NULL)
    die("/proc/self/task", errno);
  while ((e = readdir(d)) != NULL)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

/* Registered before the first uvpool_new(): runs after uvpool's handler. */
static void count_threads_at_exit(void) {
  fact("threads_at_exit", "%d", count_threads());
}

/* A pool that never got work: no thread, before or during exit. */
static int sc_exit_unused_pool(void) {
  uvpool_stats_t s;
  uvpool_t *p;
  fact("threads_before", "%d", count_threads());
  if (atexit(count_threads_at_exit) != 0)
    die("atexit", ENOMEM);
  p = pool_new_max(4);
  check(uvpool_stats(p, &s), "uvpool_stats");
  fact("workers", "%u", s.workers);
  fact("threads_after_new", "%d", count_threads());
  exit(0);
}

/* Three pools with held file tasks: t0..t9, t10..t19, t20..t29. */
static int sc_several_pools(void) {
  for (unsigned i = 0; i < 3; i++)
    submit_files(pool_new_max(2), i * 10, 10, true, NULL);
  arm_release_at_exit();
  return 0;
}

static int thread_init_log(void *data) {
  (void)data;
  append_line("init", "init\n");
  return 0;
}

static void thread_exit_log(void *data) {
  (void)data;
  append_line("exit", "exit\n");
}

/* Three workers, each provably started (three held tasks run at once),
 * logging thread_init and thread_exit. */
static int sc_thread_exit_every_worker(void) {
  uvpool_options_t o;
  uvpool_stats_t s;
  uvpool_t *p;
  opts_init(&o, 3);
  o.thread_init = thread_init_log;
  o.thread_exit = thread_exit_log;
  p = pool_new(&o);
  for (int i = 0; i < 3; i++)
    check(uvpool_submit(p, work_started_hold, NULL, NULL), "submit");
  for (int i = 0; i < 3; i++)
    uv_sem_wait(&g_started);
  check(uvpool_stats(p, &s), "uvpool_stats");
  fact("peak_workers", "%u", s.peak_workers);
  arm_release_at_exit();
  exit(0);
}

static uvpool_t *g_pool;

static void submit_at_exit(void) {
  fact("late_submit", "%s",
       err_name(uvpool_submit(g_pool, work_noop, NULL, NULL)));
}

/* A user handler that runs after uvpool's submits to a used pool. */
static int sc_atexit_submit(void) {
  uvpool_future_t *f = NULL;
  if (atexit(submit_at_exit) != 0)
    die("atexit", ENOMEM);
  g_pool = pool_new_max(2);
  check(uvpool_submit(g_pool, work_noop, NULL, &f), "submit");
  check(uvpool_future_wait(f, -1), "wait");
  exit(0);
}

static void new_at_exit(void) {
  uvpool_t *p = NULL;
  fact("late_new", "%s", err_name(uvpool_new(&g_loop, NULL, &p)));
}

/* A user handler that runs after uvpool's creates a pool. */
static int sc_atexit_new(void) {
  if (atexit(new_at_exit) != 0)
    die("atexit", ENOMEM);
  g_pool = pool_new_max(2);
  exit(0);
}

static uv_thread_t g_waiter;

static void waiter(void *arg) {
  uvpool_future_t *f = arg;
  int rc;
  uv_sem_post(&g_ready);
  rc = uvpool_future_wait(f, -1);
  fact("wait_rc", "%s", err_name(rc));
  fact("wait_state", "%s", state_name(uvpool_future_state(f)));
  fact("wait_status", "%s", err_name(uvpool_future_status(f)));
}

/* Registered before the first uvpool_new(): runs after uvpool's handler
 * and keeps the process alive until the waiter wrote its facts. If the
 * wait never returned, this hangs and test_exit reports the hang. */
static void join_waiter_at_exit(void) { uv_thread_join(&g_waiter); }

/* A thread waits on a task queued behind a held one; main exits. */
static int sc_wait_returns_during_exit(void) {
  uvpool_future_t *f = NULL;
  if (atexit(join_waiter_at_exit) != 0)
    die("atexit", ENOMEM);
  g_pool = pool_new_max(1);
  check(uvpool_submit(g_pool, work_started_hold, NULL, NULL), "submit");
  check(uvpool_submit(g_pool, work_noop, NULL, &f), "submit");
  atomic_store(&g_watch, f);
  check(uv_thread_create(&g_waiter, waiter, f), "uv_thread_create");
  uv_sem_wait(&g_ready);
  arm_release_at_exit();
  exit(0);
}

/* ---- scenarios: fork ----------------------------------------------------- */

/* Whether a thread of this process is named name. */
static bool thread_named(const char *name) {
  char path[300], comm[32];
  bool found = false;
  struct dirent *e;
  DIR *d = opendir("/proc/self/task");
  if (d == NULL)
    die("opendir /proc/self/task", errno);
  while (!found && (e = readdir(d)) != NULL) {
    ssize_t n;
    int fd;
    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      continue; /* the thread just left */
    n = read(fd, comm, sizeof(comm) - 1);
    close(fd);
    if (n <= 0)
      continue;
    comm[n] = '\0';
    comm[strcspn(comm, "\n")] = '\0';
    found = strcmp(comm, name) == 0;
  }
  closedir(d);
  return found;
}

/* Before a fork() whose child exits through exit(): waits until the
 * pool's monitor thread named itself, which it does once started. A
 * thread still starting up may hold a lock of a sanitizer's allocator
 * that is not fork-safe (clang 14's LeakSanitizer then hangs at the
 * child's exit); glibc's malloc is fork-safe. */
static void await_monitor_started(void) {
  while (!thread_named("uvpool-mon"))
    sched_yield();
}

/* fork() from main while two tasks block; the child exits at once. */
static int sc_fork_while_busy(void) {
  uvpool_t *p = pool_new_max(2);
  uvpool_future_t *f[2];
  pid_t pid;
  for (int i = 0; i < 2; i++)
    check(uvpool_submit(p, work_started_hold, NULL, &f[i]), "submit");
  for (int i = 0; i < 2; i++)
    uv_sem_wait(&g_started);
  await_monitor_started();
  pid = fork();
  if (pid < 0)
    die("fork", errno);
  if (pid == 0)
    exit(0);
  record_child("child", pid);
  hold_release();
  for (int i = 0; i < 2; i++) {
    precond(uvpool_future_wait(f[i], -1) == 0, "wait");
    precond(uvpool_future_state(f[i]) == UVPOOL_DONE, "task done");
    uvpool_future_unref(f[i]);
  }
  return 0;
}

/* What the child of a fork() inside work does before it exits. */
static void (*g_in_forked_child)(void);

/* Forks from inside work once the pool's monitor thread sleeps, so that it
 * is past its start-up (see await_monitor_started). It sleeps within a
 * tick of the queue going empty, and this task is the only one. */
static int work_fork(void *arg, void **result) {
  uvpool_t *p = arg;
  pid_t pid;
  (void)result;
  while (!uvpool__monitor_sleeping(p->g))
    sched_yield();
  pid = fork();
  if (pid < 0)
    return uv_translate_sys_error(errno);
  if (pid == 0) {
    if (g_in_forked_child != NULL)
      g_in_forked_child();
    exit(0);
  }
  record_child("child", pid);
  return 0;
}

static int fork_in_work(void (*in_child)(void)) {
  uvpool_t *p = pool_new_max(1);
  uvpool_future_t *f = NULL;
  g_in_forked_child = in_child;
  check(uvpool_submit(p, work_fork, p, &f), "submit");
  precond(uvpool_future_wait(f, -1) == 0, "wait");
  precond(uvpool_future_state(f) == UVPOOL_DONE, "fork task done");
  uvpool_future_unref(f);
  return 0;
}

static int sc_fork_in_work(void) { return fork_in_work(NULL); }

static uv_sem_t g_retired;

static void thread_exit_post(void *data) {
  (void)data;
  uv_sem_post(&g_retired);
}

/* In the child: a new pool runs a file task, its worker then retires for
 * idleness (left unjoined, for the exit handler to reap), and the pool is
 * still open at exit, which is called on the thread that forked inside
 * work. Why this shape: the library must not take that thread for a worker
 * of the new pool. If it keeps a stale pointer to the worker it freed at
 * fork(), ASan reports the read; without ASan, malloc tends to hand the
 * freed memory to the new pool's worker, and the handler then counts the
 * calling thread as that worker. */
static void child_pool_open_at_exit(void) {
  static uv_loop_t loop;
  uvpool_options_t o;
  uvpool_future_t *f = NULL;
  uvpool_stats_t s;
  uvpool_t *p = NULL;
  check(uv_sem_init(&g_retired, 0), "uv_sem_init");
  check(uv_loop_init(&loop), "uv_loop_init");
  opts_init(&o, 1);
  o.idle_timeout_ms = 1;
  o.thread_exit = thread_exit_post;
  check(uvpool_new(&loop, &o, &p), "uvpool_new in child");
  g_task[0].id = 0;
  check(uvpool_submit(p, work_file, &g_task[0], &f), "submit in child");
  check(uvpool_future_wait(f, -1), "wait in child");
  fact("child_task", "%s", state_name(uvpool_future_state(f)));
  uv_sem_wait(&g_retired);
  /* The worker leaves the pool right after thread_exit returns, with no
   * event to wait for: poll the count, which drops within microseconds. */
  do {
    check(uvpool_stats(p, &s), "uvpool_stats");
    sched_yield();
  } while (s.workers != 0);
}

static int sc_fork_in_work_child_pool(void) {
  return fork_in_work(child_pool_open_at_exit);
}

/* In the child no task runs on this thread any more. */
static void child_cancel_requested(void) {
  fact("child_cancel_requested", "%d", uvpool_cancel_requested());
}

static int sc_fork_in_work_cancel_requested(void) {
  return fork_in_work(child_cancel_requested);
}

static uvpool_future_t *g_run, *g_queued;
static int g_cbs; /* loop thread only */

static void cb_count(uvpool_future_t *f, void *data) {
  (void)f;
  (void)data;
  g_cbs++;
}

static uvpool_t *g_pool2; /* with fork_with(true, ...): shares g_pool */

/* One worker runs a held task of g_pool (g_run), a second task is queued
 * (g_queued; in g_pool2, a pool sharing g_pool's worker, with group),
 * both with a callback; fork(); in_child runs in the child, which then
 * exits 0; the parent then finishes normally. */
static int fork_with(bool group, void (*in_child)(void)) {
  int closed = 0;
  pid_t pid;
  g_pool = pool_new_max(1);
  if (group) {
    uvpool_options_t o;
    uvpool_options_init(&o);
    o.share = g_pool;
    g_pool2 = pool_new(&o);
  }
  check(uvpool_submit(g_pool, work_started_hold, NULL, &g_run), "submit");
  check(uvpool_submit(group ? g_pool2 : g_pool, work_noop, NULL, &g_queued),
        "submit");
  check(uvpool_future_on_done(g_run, cb_count, NULL), "on_done");
  check(uvpool_future_on_done(g_queued, cb_count, NULL), "on_done");
  uv_sem_wait(&g_started);
  await_monitor_started();
  pid = fork();
  if (pid < 0)
    die("fork", errno);
  if (pid == 0) {
    in_child();
    exit(0);
  }
  record_child("child", pid);
  hold_release();
  precond(uv_run(&g_loop, UV_RUN_DEFAULT) == 0, "the loop ran down");
  precond(g_cbs == 2, "the parent's callbacks ran");
  if (group)
    check(uvpool_close(g_pool2, 0, on_closed, &closed), "uvpool_close");
  check(uvpool_close(g_pool, 0, on_closed, &closed), "uvpool_close");
  precond(uv_run(&g_loop, UV_RUN_DEFAULT) == 0, "the loop ran down");
  precond(closed == (group ? 2 : 1), "the parent's pools closed");
  return 0;
}

static int fork_inherited(void (*in_child)(void)) {
  return fork_with(false, in_child);
}

static void child_submit(void) {
  fact("child_submit", "%s",
       err_name(uvpool_submit(g_pool, work_noop, NULL, NULL)));
}

static void child_futures(void) {
  fact("child_run_state", "%s", state_name(uvpool_future_state(g_run)));
  fact("child_run_status", "%s", err_name(uvpool_future_status(g_run)));
  fact("child_queued_state", "%s", state_name(uvpool_future_state(g_queued)));
  fact("child_queued_status", "%s", err_name(uvpool_future_status(g_queued)));
}

static void child_wait(void) {
  /* Timeout 0: "at once" means no waiting is needed at all. */
  fact("child_run_wait", "%s", err_name(uvpool_future_wait(g_run, 0)));
  fact("child_queued_wait", "%s", err_name(uvpool_future_wait(g_queued, 0)));
}

static void child_close(void) {
  int closed = 0;
  g_cbs = 0;
  check(uv_loop_fork(&g_loop), "uv_loop_fork");
  fact("child_close", "%s",
       err_name(uvpool_close(g_pool, 0, on_closed, &closed)));
  fact("child_uv_run", "%d", uv_run(&g_loop, UV_RUN_DEFAULT));
  fact("child_callbacks", "%d", g_cbs);
  fact("child_closed", "%d", closed);
}

static void child_new_pool(void) {
  uvpool_future_t *f = NULL;
  uvpool_t *p;
  int closed = 0;
  check(uv_loop_fork(&g_loop), "uv_loop_fork");
  p = pool_new_max(2);
  g_task[0].id = 0;
  check(uvpool_submit(p, work_file, &g_task[0], &f), "submit in child");
  check(uvpool_future_wait(f, -1), "wait in child");
  fact("child_new_state", "%s", state_name(uvpool_future_state(f)));
  uvpool_future_unref(f);
  check(uvpool_close(p, 0, on_closed, &closed), "uvpool_close");
  /* The inherited pool's handle still holds the loop (its callbacks are
   * undelivered), so run until the new pool's close completes. */
  while (!closed)
    uv_run(&g_loop, UV_RUN_ONCE);
  fact("child_new_closed", "%d", closed);
}

static int sc_fork_child_submit(void) { return fork_inherited(child_submit); }
static int sc_fork_child_futures(void) { return fork_inherited(child_futures); }
static int sc_fork_child_wait(void) { return fork_inherited(child_wait); }
static int sc_fork_child_close(void) { return fork_inherited(child_close); }
static int sc_fork_child_new_pool(void) {
  return fork_inherited(child_new_pool);
}

/* ---- scenarios: groups ----------------------------------------------------
 */

/* A group of three pools on two workers, with held file tasks: t0..t9 in
 * the first, t10..t19 in a sharing pool that drains at exit, t20..t29 in
 * one that cancels its queue at exit (UVPOOL_EXIT_CANCEL_PENDING). */
static int sc_group_pools(void) {
  uvpool_options_t o;
  uvpool_t *root = pool_new_max(2), *drain, *cancel;
  uvpool_options_init(&o);
  o.share = root;
  drain = pool_new(&o);
  o.flags = UVPOOL_EXIT_CANCEL_PENDING;
  cancel = pool_new(&o);
  submit_files(root, 0, 10, true, NULL);
  submit_files(drain, 10, 10, true, NULL);
  submit_files(cancel, 20, 10, true, NULL);
  arm_release_at_exit();
  return 0;
}

/* In a fork child: both inherited members close; the inherited group
 * cannot be shared; a new pool works. */
static void child_group(void) {
  uvpool_options_t o;
  uvpool_t *p = NULL;
  uvpool_future_t *f = NULL;
  int closed = 0;
  check(uv_loop_fork(&g_loop), "uv_loop_fork");
  uvpool_options_init(&o);
  o.share = g_pool2;
  fact("child_share", "%s", err_name(uvpool_new(&g_loop, &o, &p)));
  check(uvpool_close(g_pool2, 0, on_closed, &closed), "close pool 2");
  check(uvpool_close(g_pool, 0, on_closed, &closed), "close pool 1");
  fact("child_uv_run", "%d", uv_run(&g_loop, UV_RUN_DEFAULT));
  fact("child_callbacks", "%d", g_cbs);
  fact("child_closed", "%d", closed);
  p = pool_new_max(1);
  check(uvpool_submit(p, work_noop, NULL, &f), "submit in child");
  check(uvpool_future_wait(f, -1), "wait in child");
  fact("child_new_state", "%s", state_name(uvpool_future_state(f)));
  uvpool_future_unref(f);
  closed = 0;
  check(uvpool_close(p, 0, on_closed, &closed), "close new pool");
  fact("child_new_uv_run", "%d", uv_run(&g_loop, UV_RUN_DEFAULT));
  fact("child_new_closed", "%d", closed);
}

static int sc_fork_group(void) { return fork_with(true, child_group); }

/* ---- scenarios: races around exit, made deterministic -------------------- */

static uvpool_future_t *g_fb;

/* Pool A's task: waits until exit has begun (g_fb, queued in a
 * UVPOOL_EXIT_CANCEL_PENDING pool, settles inside uvpool's exit handler),
 * then fork()s, as a task that starts a subprocess would. */
static int work_fork_once_exiting(void *arg, void **result) {
  pid_t pid;
  (void)arg;
  (void)result;
  uv_sem_wait(&g_ready);
  if (uvpool_future_wait(g_fb, -1) != 0)
    return UV_EINVAL;
  pid = fork();
  if (pid < 0)
    return uv_translate_sys_error(errno);
  if (pid == 0)
    _exit(0); /* like exec: the point is that fork() returned */
  record_child("child", pid);
  return 0;
}

static int work_wait_future(void *arg, void **result) {
  (void)result;
  return uvpool_future_wait(arg, -1);
}

/* fork() inside a task that runs while the process exits. Pool B keeps g_fb
 * queued until exit: its only worker waits for pool A's task, which waits
 * for g_fb. */
static int sc_fork_in_work_during_exit(void) {
  uvpool_options_t o;
  uvpool_future_t *fa = NULL;
  uvpool_t *a = pool_new_max(1), *b;
  opts_init(&o, 1);
  o.flags = UVPOOL_EXIT_CANCEL_PENDING;
  b = pool_new(&o);
  check(uvpool_submit(a, work_fork_once_exiting, NULL, &fa), "submit");
  check(uvpool_submit(b, work_wait_future, fa, NULL), "submit");
  check(uvpool_submit(b, work_noop, NULL, &g_fb), "submit");
  uv_sem_post(&g_ready);
  return 0;
}

static _Atomic int g_thread_exits;
static uv_sem_t g_te_in, g_te_go, g_gb_go, g_t2_go;

/* The first worker to retire blocks in thread_exit until released. */
static void thread_exit_first_blocks(void *data) {
  (void)data;
  if (atomic_fetch_add(&g_thread_exits, 1) == 0) {
    uv_sem_post(&g_te_in);
    uv_sem_wait(&g_te_go);
  }
}

static int work_sem(void *arg, void **result) {
  (void)result;
  uv_sem_wait(arg);
  return 0;
}

static int work_started_then_exit(void *arg, void **result) {
  (void)arg;
  (void)result;
  uv_sem_post(&g_started);
  uv_sem_wait(&g_t2_go);
  exit(0);
}

/* Once exit began in pool A (g_fb settles after A's exit began: pools are
 * visited newest first), lets the retiring worker and pool B go on. */
static void release_once_exiting(void *arg) {
  (void)arg;
  if (uvpool_future_wait(g_fb, -1) != 0)
    _exit(EC_PRECOND);
  uv_sem_post(&g_te_go);
  uv_sem_post(&g_gb_go);
}

/* A worker of pool A (1 ms idle timeout) retires for idleness and sits in
 * thread_exit, so it still counts as a worker. t0 is submitted then: no
 * thread is started for it (the pool is at max_workers), because the
 * retiring worker hands queued work on when it leaves. Then exit() is
 * called, from main, or (from_work) from a task that holds pool A's
 * other worker. The retiring worker is let go only once exit began. */
static int exit_with_worker_retiring(bool from_work) {
  static uv_thread_t tid;
  uvpool_options_t o;
  uvpool_stats_t s;
  uvpool_t *a, *b;
  check(uv_sem_init(&g_te_in, 0), "sem");
  check(uv_sem_init(&g_te_go, 0), "sem");
  check(uv_sem_init(&g_gb_go, 0), "sem");
  check(uv_sem_init(&g_t2_go, 0), "sem");
  opts_init(&o, 1);
  o.flags = UVPOOL_EXIT_CANCEL_PENDING;
  b = pool_new(&o); /* older than a: its exit begins after a's */
  check(uvpool_submit(b, work_sem, &g_gb_go, NULL), "submit");
  check(uvpool_submit(b, work_noop, NULL, &g_fb), "submit");
  opts_init(&o, from_work ? 2 : 1);
  o.idle_timeout_ms = 1;
  o.thread_exit = thread_exit_first_blocks;
  a = pool_new(&o);
  if (from_work)
    check(uvpool_submit(a, work_started_then_exit, NULL, NULL), "submit");
  check(uvpool_submit(a, work_noop, NULL, NULL), "submit");
  if (from_work)
    uv_sem_wait(&g_started);
  uv_sem_wait(&g_te_in);
  submit_files(a, 0, 1, false, NULL);
  check(uvpool_stats(a, &s), "uvpool_stats");
  precond(s.workers == o.max_workers && s.queued == 1,
          "t0 queued, no worker started");
  check(uv_thread_create(&tid, release_once_exiting, NULL), "thread");
  /* Nobody joins it: the process ends while or after it finishes. */
  check(pthread_detach(tid), "pthread_detach");
  if (!from_work)
    return 0;
  uv_sem_post(&g_t2_go);
  block_forever();
  return EC_PRECOND;
}

static int sc_exit_sole_worker_retiring(void) {
  return exit_with_worker_retiring(false);
}

static int sc_exit_in_work_peer_retiring(void) {
  return exit_with_worker_retiring(true);
}

/* ---- main ---------------------------------------------------------------- */

static const struct {
  const char *name;
  int (*run)(void);
} scenarios[] = {
    {"return_from_main", sc_return_from_main},
    {"exit_with_composition", sc_exit_with_composition},
    {"exit_in_work", sc_exit_in_work},
    {"exit_in_work_sole_worker", sc_exit_in_work_sole_worker},
    {"exit_in_done_cb", sc_exit_in_done_cb},
    {"exit_from_other_thread", sc_exit_from_other_thread},
    {"exit_cancel_pending", sc_exit_cancel_pending},
    {"exit_timeout_stuck", sc_exit_timeout_stuck},
    {"exit_stuck_warns", sc_exit_stuck_warns},
    {"exit_cancel_running", sc_exit_cancel_running},
    {"exit_cancel_pending_dependant", sc_exit_cancel_pending_dependant},
    {"exit_after_close", sc_exit_after_close},
    {"exit_unused_pool", sc_exit_unused_pool},
    {"several_pools", sc_several_pools},
    {"thread_exit_every_worker", sc_thread_exit_every_worker},
    {"atexit_submit", sc_atexit_submit},
    {"atexit_new", sc_atexit_new},
    {"wait_returns_during_exit", sc_wait_returns_during_exit},
    {"fork_while_busy", sc_fork_while_busy},
    {"fork_in_work", sc_fork_in_work},
    {"fork_in_work_child_pool", sc_fork_in_work_child_pool},
    {"fork_in_work_cancel_requested", sc_fork_in_work_cancel_requested},
    {"fork_child_submit", sc_fork_child_submit},
    {"fork_child_futures", sc_fork_child_futures},
    {"fork_child_wait", sc_fork_child_wait},
    {"fork_child_close", sc_fork_child_close},
    {"group_pools", sc_group_pools},
    {"fork_group", sc_fork_group},
    {"fork_child_new_pool", sc_fork_child_new_pool},
    {"fork_in_work_during_exit", sc_fork_in_work_during_exit},
    {"exit_sole_worker_retiring", sc_exit_sole_worker_retiring},
    {"exit_in_work_peer_retiring", sc_exit_in_work_peer_retiring},
};

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: exit_child SCENARIO DIR\n");
    return 2;
  }
  g_dir = argv[2];
  check(uv_mutex_init(&g_hold_mu), "uv_mutex_init");
  check(uv_cond_init(&g_hold_cv), "uv_cond_init");
  check(uv_sem_init(&g_started, 0), "uv_sem_init");
  check(uv_sem_init(&g_ready, 0), "uv_sem_init");
  check(uv_loop_init(&g_loop), "uv_loop_init");
  for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
    if (strcmp(scenarios[i].name, argv[1]) == 0)
      return scenarios[i].run();
  fprintf(stderr, "exit_child: unknown scenario %s\n", argv[1]);
  return 2;
}
