/* A submit_after task whose dependency completes after
 * uvpool_close(UVPOOL_CANCEL_PENDING) is cancelled, not run. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "util.h"

static void held_runs_after_cancel_pending_close(void **state) {
  uvpool_t *pool;
  uvpool_future_t *dep = NULL, *held = NULL;
  static _Atomic int ran; /* its task may write it, even after a failure */
  t_gate_t *g;
  int closed = 0;
  (void)state;
  atomic_store(&ran, 0);
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, &dep), 0);
  uv_sem_wait(&g->started); /* dep runs: not cancellable */
  assert_int_equal(
      uvpool_submit_after(pool, &dep, 1, t_work_count, (void *)&ran, &held), 0);
  assert_int_equal(uvpool_close(pool, UVPOOL_CANCEL_PENDING, NULL, NULL), 0);
  uv_sem_post(&g->go);
  uv_run(loop, UV_RUN_DEFAULT);
  (void)closed;
  print_message("held task after close(CANCEL_PENDING): ran=%d state=%d\n",
                atomic_load(&ran), uvpool_future_state(held));
  assert_int_equal(atomic_load(&ran), 0);
  assert_int_equal(uvpool_future_state(held), UVPOOL_CANCELLED);
  uvpool_future_unref(dep);
  uvpool_future_unref(held);
  t_loop_free(loop);
  t_gate_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(held_runs_after_cancel_pending_close),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
