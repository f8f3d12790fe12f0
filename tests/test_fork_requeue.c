/* In a fork child, callbacks registered while closing an inherited pool
 * (a callback that registers another) are delivered and the close ends. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static int ncb2;
static void cb2(uvpool_future_t *f, void *data) {
  (void)f;
  (void)data;
  ncb2++;
}
static void cb1(uvpool_future_t *f, void *data) {
  (void)data;
  if (uvpool_future_on_done(f, cb2, NULL) != 0) /* requeue */
    _exit(97);
}

static void fork_child_requeue_from_callback(void **state) {
  uvpool_t *pool;
  uvpool_future_t *f = NULL;
  t_gate_t *g;
  int wstatus = 0;
  pid_t pid;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, &f), 0);
  assert_int_equal(uvpool_future_on_done(f, cb1, NULL), 0);
  uv_sem_wait(&g->started); /* runs at fork: cancelled in the child */

  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int closed = 0;
    if (uv_loop_fork(loop) != 0)
      _exit(99);
    if (pool->async.pending != 0)
      _exit(96); /* not this finding */
    closed = t_child_close(loop, pool);
    if (closed < 0)
      _exit(98);
    fprintf(stderr, "child: state=%d cb2 ran=%d closed=%d\n",
            uvpool_future_state(f), ncb2, closed);
    _exit(ncb2 == 1 && closed ? 0 : 1);
  }
  uv_sem_post(&g->go);
  assert_int_equal(waitpid(pid, &wstatus, 0), pid);
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  uvpool_future_unref(f);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(g);
  assert_true(WIFEXITED(wstatus));
  assert_int_equal(WEXITSTATUS(wstatus), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(fork_child_requeue_from_callback),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
