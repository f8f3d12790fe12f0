/* A fork() while another thread holds a future's callback lock, in the
 * middle of delivering its callback list, leaves the child a future it can
 * still register on and close: the half-written callbacks are dropped, not
 * followed. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void count(uvpool_future_t *f, void *data) {
  (void)f;
  (*(int *)data)++;
}

/* The child: registers on f, closes the pool, counts what ran. */
static int child_main(uv_loop_t *loop, uvpool_t *pool, uvpool_future_t *f) {
  int closed, ran = 0;
  if (uv_loop_fork(loop) != 0)
    return 99;
  pool->async.pending = 0; /* stale from the parent, see test_fork_held */
  if (uvpool_future_on_done(f, count, &ran) != 0)
    return 1;
  closed = t_child_close(loop, pool);
  if (closed < 0)
    return 98;
  fprintf(stderr, "child: ran=%d closed=%d\n", ran, closed);
  return ran == 1 && closed ? 0 : 2;
}

static void fork_during_callback_list_delivery(void **state) {
  uvpool_t *pool;
  uvpool_future_t *f = NULL;
  t_gate_t *g;
  int ran = 0, wstatus = 0;
  uint32_t s;
  void *tail;
  pid_t pid;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, &f), 0);
  uv_sem_wait(&g->started);
  assert_int_equal(uvpool_future_on_done(f, count, &ran), 0);
  assert_int_equal(uvpool_future_on_done(f, count, &ran), 0); /* a list */
  s = atomic_load(&f->state);
  assert_true(s & UVPOOL__F_CB_LIST);
  /* Where a delivering thread stands after taking the list and before
   * unlocking: lock held, fields cleared, flags still set. */
  tail = f->cb_data;
  f->cb_data = NULL;
  atomic_fetch_or(&f->state, UVPOOL__F_LOCK);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    _exit(child_main(loop, pool, f));
  f->cb_data = tail;
  atomic_fetch_and(&f->state, ~UVPOOL__F_LOCK);
  assert_int_equal(waitpid(pid, &wstatus, 0), pid);
  uv_sem_post(&g->go);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(ran, 2);
  uvpool_future_unref(f);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(g);
  assert_true(WIFEXITED(wstatus));
  print_message("child exit code %d (1: register failed, 2: callback did "
                "not run once)\n",
                WEXITSTATUS(wstatus));
  assert_int_equal(WEXITSTATUS(wstatus), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(fork_during_callback_list_delivery),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
