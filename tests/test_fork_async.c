/* A fork child can close an inherited pool even when the parent had a
 * completion signalled but not yet processed at fork time: the stale
 * pending flag of the async handle must not swallow the child's sends. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static int ncb;
static void cb(uvpool_future_t *f, void *data) {
  (void)f;
  (void)data;
  ncb++;
}

static void fork_with_async_pending(void **state) {
  uvpool_options_t o;
  uvpool_t *pool;
  uvpool_future_t *a = NULL, *b = NULL;
  t_gate_t *g;
  int wstatus = 0;
  pid_t pid;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  uvpool_options_init(&o);
  o.max_workers = 1;
  pool = t_pool_new(loop, &o);
  assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &a), 0);
  assert_int_equal(uvpool_future_on_done(a, cb, NULL), 0);
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, &b), 0);
  uv_sem_wait(&g->started); /* A published, its async send done */

  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int closed = 0;
    ncb = 0;
    fprintf(stderr, "child: async.pending=%d\n", pool->async.pending);
    if (uv_loop_fork(loop) != 0)
      _exit(99);
    closed = t_child_close(loop, pool);
    if (closed < 0)
      _exit(98);
    fprintf(stderr, "child: callbacks=%d closed=%d\n", ncb, closed);
    _exit(closed ? 0 : 1);
  }
  uv_sem_post(&g->go);
  assert_int_equal(waitpid(pid, &wstatus, 0), pid);
  assert_int_equal(uvpool_future_wait(b, -1), 0);
  uvpool_future_unref(a);
  uvpool_future_unref(b);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(g);
  assert_true(WIFEXITED(wstatus));
  assert_int_equal(WEXITSTATUS(wstatus), 0); /* 1: close never finished */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(fork_with_async_pending),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
