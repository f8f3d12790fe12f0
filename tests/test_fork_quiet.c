/* A fork child can close an inherited pool whose worker held a partial
 * batch of fire-and-forget completions at fork time: the child delivers
 * them, or the pool would wait for them forever. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void fork_with_partial_quiet_batch(void **state) {
  uvpool_t *pool;
  t_quiet_t q;
  int wstatus = 0;
  pid_t pid;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  pool = t_pool_max(loop, 1);
  /* Fewer than a batch: settled and kept by the worker (it posted that it
   * started the gated task after it published the last one). */
  t_quiet_start(&q, pool, 5);
  assert_int_equal(
      UVPOOL__CONTAINER(pool->g->supply.workers.next, uvpool__worker_t, link)
          ->nquiet,
      5);

  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int closed;
    if (uv_loop_fork(loop) != 0)
      _exit(99);
    closed = t_child_close(loop, pool);
    if (closed < 0)
      _exit(98);
    fprintf(stderr, "child: closed=%d\n", closed);
    _exit(closed ? 0 : 1);
  }
  t_quiet_finish(&q);
  assert_int_equal(waitpid(pid, &wstatus, 0), pid);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  assert_true(WIFEXITED(wstatus));
  assert_int_equal(WEXITSTATUS(wstatus), 0); /* 1: close never finished */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(fork_with_partial_quiet_batch),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
