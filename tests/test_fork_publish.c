/* fork() while a worker holds a finished task's outcome it has not yet
 * published (recorded under mu, published after the unlock): the fork
 * waits for the publication, so the child sees the future settled.
 *
 * Determinism: uv_mutex_unlock is interposed (the executable's definition
 * wins over libuv's), so the worker parks right after the first unlock
 * that follows the return of its work, and sched_yield (called by the
 * fork handler while it waits) releases it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static _Thread_local bool tl_work_returned;
static _Atomic int armed, forking, released;
static uv_sem_t *at_hold, *release_hold;

static void release_once(void) {
  if (atomic_exchange(&released, 1) == 0)
    uv_sem_post(release_hold);
}

/* A fork handler that waits for in-flight publishes (the proposed fix)
 * yields while it waits: let the held worker go then. The unfixed
 * library never yields there, so the worker stays held across fork(). */
int sched_yield(void) {
  if (atomic_load(&forking))
    release_once();
  return (int)syscall(SYS_sched_yield);
}

void uv_mutex_unlock(uv_mutex_t *m) {
  if (pthread_mutex_unlock(m) != 0)
    abort();
  if (tl_work_returned) {
    tl_work_returned = false;
    if (atomic_exchange(&armed, 0)) {
      uv_sem_post(at_hold);
      uv_sem_wait(release_hold);
    }
  }
}

static int work_mark(void *arg, void **result) {
  (void)arg;
  (void)result;
  tl_work_returned = true;
  return 0;
}

static void fork_while_outcome_unpublished(void **state) {
  uvpool_options_t o;
  uvpool_t *pool;
  uvpool_future_t *f = NULL;
  int wstatus = 0;
  pid_t pid;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_options_init(&o);
  o.max_workers = 1;
  o.spin_us = 0;
  pool = t_pool_new(loop, &o);
  at_hold = t_sem_new(0);
  release_hold = t_sem_new(0);
  atomic_store(&armed, 1);
  assert_int_equal(uvpool_submit(pool, work_mark, NULL, &f), 0);
  uv_sem_wait(at_hold); /* work returned, mu released, not published */

  atomic_store(&forking, 1);
  pid = fork();
  atomic_store(&forking, 0);
  assert_true(pid >= 0);
  if (pid == 0) {
    int code = 0, closed = 0;
    uvpool_state_t st = uvpool_future_state(f);
    fprintf(stderr, "child: state=%d (RUNNING=%d, CANCELLED=%d)\n", st,
            UVPOOL_RUNNING, UVPOOL_CANCELLED);
    if (!(st >= UVPOOL_DONE))
      code |= 1;
    if (uvpool_future_wait(f, 10000) != 0) /* a bound: settled at fork */
      code |= 2;
    if (uv_loop_fork(loop) != 0)
      _exit(99);
    closed = t_child_close(loop, pool);
    if (closed < 0)
      _exit(98);
    if (!closed)
      code |= 4;
    fprintf(stderr, "child: wait=%s closed=%d\n",
            (code & 2) ? "ETIMEDOUT" : "0", closed);
    _exit(code);
  }
  release_once();
  assert_int_equal(waitpid(pid, &wstatus, 0), pid);
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  uvpool_future_unref(f);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  assert_true(WIFEXITED(wstatus));
  print_message("child exit code %d (1: unsettled, 2: wait timed out, "
                "4: close never finished)\n",
                WEXITSTATUS(wstatus));
  assert_int_equal(WEXITSTATUS(wstatus), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(fork_while_outcome_unpublished),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
