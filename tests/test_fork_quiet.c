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
  uv_loop_t loop;
  uvpool_options_t o;
  uvpool_t *pool;
  uvpool_future_t *a = NULL, *g = NULL;
  t_gate_t first, gate;
  int wstatus = 0;
  pid_t pid;
  (void)state;
  t_loop_init(&loop);
  t_gate_init(&first);
  t_gate_init(&gate);
  uvpool_options_init(&o);
  o.max_workers = 1;
  pool = t_pool_new(&loop, &o);
  /* The worker waits in a first task while the rest queue, so that it
   * runs them in one go, with no idle moment (which would push). */
  assert_int_equal(uvpool_submit(pool, t_work_gate, &first, &a), 0);
  uv_sem_wait(&first.started);
  for (int i = 0; i < 5; i++) /* fewer than a batch */
    assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, NULL), 0);
  assert_int_equal(uvpool_submit(pool, t_work_gate, &gate, &g), 0);
  uv_sem_post(&first.go);
  uv_sem_wait(&gate.started);
  /* The five are settled and kept by the worker (it posted started after
   * it published the last one). */
  assert_int_equal(pool->workers->nquiet, 5);

  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int closed;
    if (uv_loop_fork(&loop) != 0)
      _exit(99);
    closed = t_child_close(&loop, pool);
    if (closed < 0)
      _exit(98);
    fprintf(stderr, "child: closed=%d\n", closed);
    _exit(closed ? 0 : 1);
  }
  uv_sem_post(&gate.go);
  assert_int_equal(waitpid(pid, &wstatus, 0), pid);
  assert_int_equal(uvpool_future_wait(g, -1), 0);
  uvpool_future_unref(a);
  uvpool_future_unref(g);
  t_pool_close(pool, 0);
  t_loop_close(&loop);
  t_gate_destroy(&first);
  t_gate_destroy(&gate);
  assert_true(WIFEXITED(wstatus));
  assert_int_equal(WEXITSTATUS(wstatus), 0); /* 1: close never finished */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(fork_with_partial_quiet_batch),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
