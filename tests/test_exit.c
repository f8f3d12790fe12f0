/* Process exit and fork(), observed from outside: each test runs one
 * scenario of helpers/exit_child.c in a child process of its own (own
 * process group, own temporary directory) and checks its exit status, how
 * long it took, and the files and facts it left behind. A scenario that
 * hangs is killed after its bound and fails the test. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* POSIX and Linux calls under -std=c11 */
#endif
#include "util.h"

#include "helpers/bounded_wait.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef EXIT_CHILD
#error "EXIT_CHILD must name the exit_child helper"
#endif

extern char **environ;

/* Must match helpers/exit_child.c. */
#define FILE_SIZE (64 * 1024)
#define EC_SETUP 90
#define EC_PRECOND 91

/* A scenario that has not exited by then is taken as hung. A passing
 * scenario takes well under a second, about one under TSan (which pauses
 * at exit); the bound is far above that because a loaded machine must not
 * pass for a hang, and a hang fails the same, only later. Above
 * exit_child's bound for the children it forks (20 s). */
#define BOUND_MS 40000

typedef struct {
  char dir[256];
  const char *scenario;
  int status;
  bool timed_out;
  uint64_t ms;
} run_t;

static unsigned char pattern(unsigned id, size_t off) {
  return (unsigned char)((id * 131u + off + off / 4099u) & 0xffu);
}

static uint64_t now_ms(void) { return uv_hrtime() / 1000000u; }

static int setup(void **state) {
  const char *tmp = getenv("TMPDIR");
  run_t *r = calloc(1, sizeof(*r));
  assert_non_null(r);
  snprintf(r->dir, sizeof(r->dir), "%s/uvpool-exit-XXXXXX",
           tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
  assert_non_null(mkdtemp(r->dir));
  *state = r;
  return 0;
}

static int teardown(void **state) {
  run_t *r = *state;
  DIR *d = opendir(r->dir);
  struct dirent *e;
  char path[512];
  if (d != NULL) {
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      snprintf(path, sizeof(path), "%s/%s", r->dir, e->d_name);
      unlink(path);
    }
    closedir(d);
  }
  rmdir(r->dir);
  free(r);
  /* And the teardown of every test (util.h). */
  return t_teardown(state) != 0 ? -1 : 0;
}

static void path_of(const run_t *r, char *buf, size_t n, const char *name) {
  snprintf(buf, n, "%s/%s", r->dir, name);
}

static void dump_file(const run_t *r, const char *name) {
  char path[512], buf[4096];
  FILE *fp;
  size_t n;
  path_of(r, path, sizeof(path), name);
  fp = fopen(path, "r");
  if (fp == NULL)
    return;
  print_error("---- %s: %s ----\n", r->scenario, name);
  while ((n = fread(buf, 1, sizeof(buf) - 1, fp)) > 0) {
    buf[n] = '\0';
    print_error("%s", buf);
  }
  fclose(fp);
}

/* Prints the child's output and facts: the context of a failure. */
static void dump_log(const run_t *r) {
  dump_file(r, "child.log");
  dump_file(r, "facts");
  print_error("---- end of %s ----\n", r->scenario);
}

/* Runs exit_child SCENARIO DIR and waits for it, at most bound_ms. The
 * child leads its own process group, so a hung scenario is killed with
 * every process it forked. */
/* With UVPOOL_EXIT_CHILD_VALGRIND=1 (tests/run sets it for its valgrind
 * pass) every child runs under valgrind memcheck, which exits 99 on an
 * error; bounds stretch by the slowdown. */
static bool under_valgrind(void) {
  const char *v = getenv("UVPOOL_EXIT_CHILD_VALGRIND");
  return v != NULL && strcmp(v, "1") == 0;
}

static int slowdown(void) { return under_valgrind() ? 10 : 1; }

static void run_bounded(run_t *r, const char *scenario, int bound_ms) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  char log[512];
  char *plain[] = {EXIT_CHILD, (char *)scenario, r->dir, NULL};
  char *vg[] = {"valgrind",
                "-q",
                "--error-exitcode=99",
                "--leak-check=full",
                "--errors-for-leak-kinds=definite,indirect",
                EXIT_CHILD,
                (char *)scenario,
                r->dir,
                NULL};
  char **argv = under_valgrind() ? vg : plain;
  uint64_t start;
  pid_t pid;

  r->scenario = scenario;
  path_of(r, log, sizeof(log), "child.log");
  assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
  assert_int_equal(posix_spawn_file_actions_addopen(
                       &fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644),
                   0);
  assert_int_equal(posix_spawn_file_actions_adddup2(&fa, 1, 2), 0);
  assert_int_equal(posix_spawnattr_init(&at), 0);
  assert_int_equal(posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP), 0);
  assert_int_equal(posix_spawnattr_setpgroup(&at, 0), 0);
  start = now_ms();
  bound_ms *= slowdown();
  assert_int_equal(posix_spawnp(&pid, argv[0], &fa, &at, argv, environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);

  r->timed_out = !bounded_wait(pid, -pid, bound_ms, &r->status);
  r->ms = now_ms() - start;
}

static void run(run_t *r, const char *scenario) {
  run_bounded(r, scenario, BOUND_MS);
}

static void expect_exit(const run_t *r, int code) {
  if (r->timed_out) {
    dump_log(r);
    fail_msg("%s: still running after %llu ms (deadlock?)", r->scenario,
             (unsigned long long)r->ms);
  }
  if (WIFSIGNALED(r->status)) {
    dump_log(r);
    fail_msg("%s: killed by signal %d", r->scenario, WTERMSIG(r->status));
  }
  if (WEXITSTATUS(r->status) != code) {
    int got = WEXITSTATUS(r->status);
    dump_log(r);
    fail_msg("%s: exit status %d%s, expected %d", r->scenario, got,
             got == EC_SETUP     ? " (set-up failed)"
             : got == EC_PRECOND ? " (precondition failed)"
                                 : "",
             code);
  }
}

/* The value of the last "key=" line in DIR/facts, or NULL. */
static char *fact(const run_t *r, const char *key, char *buf, size_t n) {
  char path[512], line[256];
  size_t klen = strlen(key);
  bool found = false;
  FILE *fp;
  path_of(r, path, sizeof(path), "facts");
  fp = fopen(path, "r");
  if (fp == NULL)
    return NULL;
  while (fgets(line, sizeof(line), fp) != NULL) {
    if (strncmp(line, key, klen) != 0 || line[klen] != '=')
      continue;
    line[strcspn(line, "\n")] = '\0';
    snprintf(buf, n, "%s", line + klen + 1);
    found = true;
  }
  fclose(fp);
  return found ? buf : NULL;
}

static void expect_fact(const run_t *r, const char *key, const char *want) {
  char buf[128];
  const char *got = fact(r, key, buf, sizeof(buf));
  if (got == NULL || strcmp(got, want) != 0) {
    dump_log(r);
    fail_msg("%s: fact %s is %s, expected %s", r->scenario, key,
             got != NULL ? got : "(missing)", want);
  }
}

static long fact_long(const run_t *r, const char *key) {
  char buf[128];
  const char *got = fact(r, key, buf, sizeof(buf));
  if (got == NULL) {
    dump_log(r);
    fail_msg("%s: fact %s missing", r->scenario, key);
  }
  return strtol(got, NULL, 10);
}

/* DIR/t<id> exists and holds exactly what task id writes. */
static void expect_file_complete(const run_t *r, unsigned id) {
  char name[32], path[512];
  static unsigned char buf[FILE_SIZE + 1];
  size_t got = 0;
  ssize_t n;
  int fd;
  snprintf(name, sizeof(name), "t%u", id);
  path_of(r, path, sizeof(path), name);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    fail_msg("%s: file %s missing", r->scenario, name);
  while ((n = read(fd, buf + got, sizeof(buf) - got)) > 0)
    got += (size_t)n;
  close(fd);
  if (got != FILE_SIZE)
    fail_msg("%s: file %s has %zu bytes, expected %d", r->scenario, name, got,
             FILE_SIZE);
  for (size_t i = 0; i < FILE_SIZE; i++)
    if (buf[i] != pattern(id, i))
      fail_msg("%s: file %s differs at byte %zu", r->scenario, name, i);
}

static void expect_no_file(const run_t *r, unsigned id) {
  char name[32], path[512];
  struct stat st;
  snprintf(name, sizeof(name), "t%u", id);
  path_of(r, path, sizeof(path), name);
  if (stat(path, &st) == 0)
    fail_msg("%s: file %s exists: its task ran", r->scenario, name);
}

static long count_lines(const run_t *r, const char *name) {
  char path[512];
  long n = 0;
  int c;
  FILE *fp;
  path_of(r, path, sizeof(path), name);
  fp = fopen(path, "r");
  if (fp == NULL)
    return 0;
  while ((c = fgetc(fp)) != EOF)
    n += c == '\n';
  fclose(fp);
  return n;
}

/* ---- process exit -------------------------------------------------------- */

static void return_from_main_completes_queued_file_tasks(void **state) {
  run_t *r = *state;
  run(r, "return_from_main");
  expect_exit(r, 0);
  expect_fact(r, "files_done_at_exit", "0"); /* all were still queued */
  for (unsigned i = 0; i < 50; i++)
    expect_file_complete(r, i);
}

static void exit_runs_queued_lane_deadline_and_priority_tasks(void **state) {
  run_t *r = *state;
  run(r, "exit_with_composition");
  expect_exit(r, 0);
  for (unsigned i = 0; i <= 8; i++)
    expect_file_complete(r, i); /* 3 waited for 0-2: dependent work runs */
}

static void exit_in_work_completes_other_queued_tasks(void **state) {
  run_t *r = *state;
  run(r, "exit_in_work");
  expect_exit(r, 0);
  expect_fact(r, "files_done_at_exit", "0");
  for (unsigned i = 0; i < 20; i++)
    expect_file_complete(r, i);
}

static void exit_in_work_on_sole_worker_completes_queued_tasks(void **state) {
  run_t *r = *state;
  run(r, "exit_in_work_sole_worker");
  expect_exit(r, 0);
  expect_fact(r, "files_done_at_exit", "0");
  for (unsigned i = 0; i < 20; i++)
    expect_file_complete(r, i);
}

static void exit_in_done_callback_completes_queued_tasks(void **state) {
  run_t *r = *state;
  run(r, "exit_in_done_cb");
  expect_exit(r, 0);
  expect_fact(r, "files_done_at_exit", "0");
  for (unsigned i = 0; i < 20; i++)
    expect_file_complete(r, i);
}

static void
exit_from_other_thread_completes_tasks_and_keeps_status(void **state) {
  run_t *r = *state;
  run(r, "exit_from_other_thread");
  expect_exit(r, 3);
  expect_fact(r, "files_done_at_exit", "0");
  for (unsigned i = 0; i < 20; i++)
    expect_file_complete(r, i);
}

static void
exit_cancel_pending_finishes_running_and_skips_queued(void **state) {
  run_t *r = *state;
  run(r, "exit_cancel_pending");
  expect_exit(r, 0);
  expect_file_complete(r, 0);
  for (unsigned i = 1; i <= 10; i++)
    expect_no_file(r, i);
}

static void exit_timeout_abandons_stuck_task(void **state) {
  run_t *r = *state;
  run_bounded(r, "exit_timeout_stuck", 2 * BOUND_MS);
  expect_exit(r, 4);
  if (r->ms < 200 || r->ms >= 5000u * (unsigned)slowdown())
    fail_msg("exit took %llu ms, expected 200 <= ms < 5000",
             (unsigned long long)r->ms);
}

/* DIR/child.log (the child's stdout and stderr) contains want. */
static void expect_log(const run_t *r, const char *want) {
  char path[512], buf[8192];
  size_t n = 0;
  FILE *fp;
  path_of(r, path, sizeof(path), "child.log");
  fp = fopen(path, "r");
  if (fp != NULL) {
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
  }
  buf[n] = '\0';
  if (strstr(buf, want) == NULL) {
    dump_log(r);
    fail_msg("%s: the child's output lacks \"%s\"", r->scenario, want);
  }
}

static void exit_waiting_for_a_stuck_task_says_so_on_stderr(void **state) {
  run_t *r = *state;
  run_bounded(r, "exit_stuck_warns", 2 * BOUND_MS);
  expect_exit(r, 4);
  expect_log(r, "uvpool: exit waits for pool \"stuckpool\": 1 task still "
                "runs, 0 wait for dependencies; exit_timeout_ms bounds this "
                "wait (now 4000 ms)");
  if (r->ms < 3000)
    fail_msg("exit took %llu ms, expected >= 3000 (the warning comes at 3 s)",
             (unsigned long long)r->ms);
}

static void exit_cancel_running_stops_a_task_that_polls(void **state) {
  run_t *r = *state;
  run(r, "exit_cancel_running");
  expect_exit(r, 0);
  expect_fact(r, "saw_cancel", "1");
}

static void exit_cancel_pending_cancels_a_waiting_dependant(void **state) {
  run_t *r = *state;
  run(r, "exit_cancel_pending_dependant");
  expect_exit(r, 0);
  expect_no_file(r, 1);
}

static void exit_after_close_exits_cleanly(void **state) {
  run_t *r = *state;
  run(r, "exit_after_close");
  expect_exit(r, 0);
  expect_fact(r, "closed", "1");
  expect_fact(r, "loop_close", "0");
}

static void exit_with_unused_pool_starts_no_thread(void **state) {
  run_t *r = *state;
  long before;
  run(r, "exit_unused_pool");
  expect_exit(r, 0);
  expect_fact(r, "workers", "0");
  /* Compared with the count before, not with 1: sanitizer runtimes may
   * have threads of their own. */
  before = fact_long(r, "threads_before");
  assert_int_equal(fact_long(r, "threads_after_new"), before);
  assert_int_equal(fact_long(r, "threads_at_exit"), before);
}

static void exit_drains_every_open_pool(void **state) {
  run_t *r = *state;
  run(r, "several_pools");
  expect_exit(r, 0);
  expect_fact(r, "files_done_at_exit", "0");
  for (unsigned i = 0; i < 30; i++)
    expect_file_complete(r, i);
}

static void exit_drains_each_pool_of_a_group_by_its_own_policy(void **state) {
  run_t *r = *state;
  run(r, "group_pools");
  expect_exit(r, 0);
  expect_fact(r, "files_done_at_exit", "0");
  for (unsigned i = 0; i < 20; i++)
    expect_file_complete(r, i);
  for (unsigned i = 20; i < 30; i++)
    expect_no_file(r, i);
}

static void fork_child_closes_every_inherited_pool_of_a_group(void **state) {
  run_t *r = *state;
  run(r, "fork_group");
  expect_exit(r, 0);
  expect_fact(r, "child", "exit:0");
  expect_fact(r, "child_share", "ESHUTDOWN");
  expect_fact(r, "child_uv_run", "0");
  expect_fact(r, "child_callbacks", "2");
  expect_fact(r, "child_closed", "2");
  expect_fact(r, "child_new_state", "DONE");
  expect_fact(r, "child_new_uv_run", "0");
  expect_fact(r, "child_new_closed", "1");
}

static void thread_exit_runs_on_every_worker_at_exit(void **state) {
  run_t *r = *state;
  run(r, "thread_exit_every_worker");
  expect_exit(r, 0);
  expect_fact(r, "peak_workers", "3");
  assert_int_equal(count_lines(r, "init"), 3);
  assert_int_equal(count_lines(r, "exit"), 3);
}

static void submit_after_exit_handler_returns_eshutdown(void **state) {
  run_t *r = *state;
  run(r, "atexit_submit");
  expect_exit(r, 0);
  expect_fact(r, "late_submit", "ESHUTDOWN");
}

static void new_after_exit_began_returns_eshutdown(void **state) {
  run_t *r = *state;
  run(r, "atexit_new");
  expect_exit(r, 0);
  expect_fact(r, "late_new", "ESHUTDOWN");
}

static void future_wait_in_other_thread_returns_during_exit(void **state) {
  run_t *r = *state;
  run(r, "wait_returns_during_exit");
  expect_exit(r, 0);
  expect_fact(r, "watch_state_at_exit", "PENDING");
  expect_fact(r, "wait_rc", "0");
  expect_fact(r, "wait_state", "DONE");
  expect_fact(r, "wait_status", "0");
}

/* ---- fork ---------------------------------------------------------------- */

static void fork_child_of_busy_pool_exits_promptly(void **state) {
  run_t *r = *state;
  run(r, "fork_while_busy");
  expect_exit(r, 0);
  expect_fact(r, "child", "exit:0");
}

static void fork_child_of_work_exits_promptly(void **state) {
  run_t *r = *state;
  run(r, "fork_in_work");
  expect_exit(r, 0);
  expect_fact(r, "child", "exit:0");
}

static void fork_child_of_work_drains_its_own_pool_at_exit(void **state) {
  run_t *r = *state;
  run(r, "fork_in_work_child_pool");
  expect_exit(r, 0);
  expect_fact(r, "child", "exit:0");
  expect_fact(r, "child_task", "DONE");
  expect_file_complete(r, 0);
}

static void fork_child_of_work_sees_no_cancel_request(void **state) {
  run_t *r = *state;
  run(r, "fork_in_work_cancel_requested");
  expect_exit(r, 0);
  expect_fact(r, "child", "exit:0");
  expect_fact(r, "child_cancel_requested", "0");
}

static void fork_child_submit_to_inherited_pool_is_eshutdown(void **state) {
  run_t *r = *state;
  run(r, "fork_child_submit");
  expect_exit(r, 0);
  expect_fact(r, "child", "exit:0");
  expect_fact(r, "child_submit", "ESHUTDOWN");
}

static void fork_child_inherited_futures_are_cancelled(void **state) {
  run_t *r = *state;
  run(r, "fork_child_futures");
  expect_exit(r, 0);
  expect_fact(r, "child", "exit:0");
  expect_fact(r, "child_run_state", "CANCELLED");
  expect_fact(r, "child_run_status", "ECANCELED");
  expect_fact(r, "child_queued_state", "CANCELLED");
  expect_fact(r, "child_queued_status", "ECANCELED");
}

static void fork_child_wait_on_inherited_future_returns_at_once(void **state) {
  run_t *r = *state;
  run(r, "fork_child_wait");
  expect_exit(r, 0);
  expect_fact(r, "child", "exit:0");
  expect_fact(r, "child_run_wait", "0");
  expect_fact(r, "child_queued_wait", "0");
}

static void fork_child_close_delivers_inherited_callbacks(void **state) {
  run_t *r = *state;
  run(r, "fork_child_close");
  expect_exit(r, 0);
  expect_fact(r, "child", "exit:0");
  expect_fact(r, "child_close", "0");
  expect_fact(r, "child_uv_run", "0");
  expect_fact(r, "child_callbacks", "2");
  expect_fact(r, "child_closed", "1");
}

static void fork_child_new_pool_runs_work(void **state) {
  run_t *r = *state;
  run(r, "fork_child_new_pool");
  expect_exit(r, 0);
  expect_fact(r, "child", "exit:0");
  expect_fact(r, "child_new_state", "DONE");
  expect_fact(r, "child_new_closed", "1");
  expect_file_complete(r, 0);
}

/* ---- races around exit -----------------------------------------------------
 */

static void fork_in_work_during_exit_does_not_deadlock(void **state) {
  run_t *r = *state;
  run(r, "fork_in_work_during_exit");
  expect_exit(r, 0);
  expect_fact(r, "child", "exit:0");
}

static void exit_runs_task_queued_while_sole_worker_retires(void **state) {
  run_t *r = *state;
  run(r, "exit_sole_worker_retiring");
  expect_exit(r, 0);
  expect_file_complete(r, 0);
}

static void exit_in_work_runs_task_queued_behind_retiring_worker(void **state) {
  run_t *r = *state;
  run(r, "exit_in_work_peer_retiring");
  expect_exit(r, 0);
  expect_file_complete(r, 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(return_from_main_completes_queued_file_tasks),
      T(exit_runs_queued_lane_deadline_and_priority_tasks),
      T(exit_in_work_completes_other_queued_tasks),
      T(exit_in_work_on_sole_worker_completes_queued_tasks),
      T(exit_in_done_callback_completes_queued_tasks),
      T(exit_from_other_thread_completes_tasks_and_keeps_status),
      T(exit_cancel_pending_finishes_running_and_skips_queued),
      T(exit_timeout_abandons_stuck_task),
      T(exit_waiting_for_a_stuck_task_says_so_on_stderr),
      T(exit_cancel_running_stops_a_task_that_polls),
      T(exit_cancel_pending_cancels_a_waiting_dependant),
      T(exit_after_close_exits_cleanly),
      T(exit_with_unused_pool_starts_no_thread),
      T(exit_drains_every_open_pool),
      T(exit_drains_each_pool_of_a_group_by_its_own_policy),
      T(fork_child_closes_every_inherited_pool_of_a_group),
      T(thread_exit_runs_on_every_worker_at_exit),
      T(submit_after_exit_handler_returns_eshutdown),
      T(new_after_exit_began_returns_eshutdown),
      T(future_wait_in_other_thread_returns_during_exit),
      T(fork_child_of_busy_pool_exits_promptly),
      T(fork_child_of_work_exits_promptly),
      T(fork_child_of_work_drains_its_own_pool_at_exit),
      T(fork_child_of_work_sees_no_cancel_request),
      T(fork_child_submit_to_inherited_pool_is_eshutdown),
      T(fork_child_inherited_futures_are_cancelled),
      T(fork_child_wait_on_inherited_future_returns_at_once),
      T(fork_child_close_delivers_inherited_callbacks),
      T(fork_child_new_pool_runs_work),
      T(fork_in_work_during_exit_does_not_deadlock),
      T(exit_runs_task_queued_while_sole_worker_retires),
      T(exit_in_work_runs_task_queued_behind_retiring_worker),
  };
  /* TSan kills a child of a multi-threaded fork() that starts threads;
   * the header allows exactly that (pools created in the child work), so
   * let the children of exit_child do it. Ignored without TSan. */
  const char *tsan = getenv("TSAN_OPTIONS");
  char opts[512];
  snprintf(opts, sizeof(opts), "%s%sdie_after_fork=0", tsan != NULL ? tsan : "",
           tsan != NULL && tsan[0] ? " " : "");
  setenv("TSAN_OPTIONS", opts, 1);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
