/* A fork child can close an inherited pool that the parent was closing at
 * fork() (a task still running): the parent's close, and its callback,
 * stay in the parent, and the child's own uvpool_close finishes. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_closed(uvpool_t *pool, void *data) {
  (void)pool;
  *(int *)data = 1;
}

static void fork_while_the_pool_closes(void **state) {
  uvpool_t *pool;
  t_gate_t *g;
  int closed = 0, wstatus = 0;
  pid_t pid;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  pool = t_pool_max(loop, 1);
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, NULL), 0);
  uv_sem_wait(&g->started);
  assert_int_equal(uvpool_close(pool, 0, on_closed, &closed), 0);
  assert_int_equal(uv_run(loop, UV_RUN_NOWAIT), 1); /* the task still runs */

  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int code = 0, child_closed;
    if (uv_loop_fork(loop) != 0)
      _exit(99);
    child_closed = t_child_close(loop, pool);
    if (child_closed < 0)
      _exit(98); /* uvpool_close refused */
    if (!child_closed)
      code |= 1;
    if (closed)
      code |= 2;
    fprintf(stderr, "child: closed=%d parent's callback ran=%d\n", child_closed,
            closed);
    _exit(code);
  }
  uv_sem_post(&g->go);
  assert_int_equal(waitpid(pid, &wstatus, 0), pid);
  while (!closed)
    uv_run(loop, UV_RUN_ONCE);
  t_loop_free(loop);
  t_gate_free(g);
  assert_true(WIFEXITED(wstatus));
  print_message("child exit code %d (98: close refused, 1: close never "
                "finished, 2: the parent's callback ran in the child)\n",
                WEXITSTATUS(wstatus));
  assert_int_equal(WEXITSTATUS(wstatus), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(fork_while_the_pool_closes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
