/* Futures: states, status, result, waiting and references. */
#include "util.h"

static void state_moves_pending_running_done(void **state) {
  uvpool_options_t o;
  uvpool_future_t *a = NULL, *b = NULL;
  t_gate_t *g;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  uvpool_options_init(&o);
  o.max_workers = 1;
  uvpool_t *pool = t_pool_new(loop, &o);
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, &a), 0);
  assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &b), 0);
  uv_sem_wait(&g->started);
  assert_int_equal(uvpool_future_state(a), UVPOOL_RUNNING);
  assert_int_equal(uvpool_future_state(b), UVPOOL_PENDING);
  assert_int_equal(uvpool_future_status(a), UV_EBUSY);
  assert_int_equal(uvpool_future_status(b), UV_EBUSY);
  assert_null(uvpool_future_result(a));
  uv_sem_post(&g->go);
  assert_int_equal(uvpool_future_wait(b, -1), 0);
  assert_int_equal(uvpool_future_state(a), UVPOOL_DONE);
  assert_int_equal(uvpool_future_state(b), UVPOOL_DONE);
  assert_ptr_equal(uvpool_future_result(a), g);
  uvpool_future_unref(a);
  uvpool_future_unref(b);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(g);
}

static void wait_times_out_while_unsettled(void **state) {
  uvpool_future_t *f = NULL;
  t_gate_t *g;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, &f), 0);
  uv_sem_wait(&g->started);
  assert_int_equal(uvpool_future_wait(f, 0), UV_ETIMEDOUT);
  assert_int_equal(uvpool_future_wait(f, 20), UV_ETIMEDOUT);
  assert_int_equal(uvpool_future_state(f), UVPOOL_RUNNING);
  uv_sem_post(&g->go);
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  uvpool_future_unref(f);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(g);
}

typedef struct {
  uvpool_future_t *f;
  uv_sem_t *waiting;
  int rc;
} waiter_t;

static void waiter_main(void *arg) {
  waiter_t *w = arg;
  uv_sem_post(w->waiting);
  w->rc = uvpool_future_wait(w->f, -1);
  /* Settled means the outcome is readable, whatever the callbacks do. */
  if (w->rc == 0 && uvpool_future_state(w->f) != UVPOOL_DONE)
    w->rc = -1;
}

static void wait_from_two_threads_returns_in_both(void **state) {
  uvpool_future_t *f = NULL;
  t_gate_t *g;
  static waiter_t w[2]; /* its threads read it, even after a failure */
  uv_thread_t tid[2];
  (void)state;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, &f), 0);
  for (int i = 0; i < 2; i++) {
    w[i].f = f;
    w[i].rc = 1;
    w[i].waiting = t_sem_new(0);
    assert_int_equal(uv_thread_create(&tid[i], waiter_main, &w[i]), 0);
    uv_sem_wait(w[i].waiting);
  }
  uv_sem_post(&g->go);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(uv_thread_join(&tid[i]), 0);
    assert_int_equal(w[i].rc, 0);
    t_sem_free(w[i].waiting);
  }
  uvpool_future_unref(f);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(g);
}

static void wait_on_loop_thread_needs_no_loop_iteration(void **state) {
  uvpool_future_t *f = NULL;
  int calls = 0;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &f), 0);
  assert_int_equal(uvpool_future_on_done(f, t_cb_count, &calls), 0);
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  assert_int_equal(calls, 0); /* callbacks wait for the loop */
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(calls, 1);
  uvpool_future_unref(f);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void extra_reference_keeps_future_alive(void **state) {
  uvpool_future_t *f = NULL;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_ok, loop, &f), 0);
  assert_ptr_equal(uvpool_future_ref(f), f);
  uvpool_future_unref(f);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_ptr_equal(uvpool_future_result(f), loop);
  uvpool_future_unref(f);
  uvpool_future_unref(NULL); /* ignored */
  assert_null(uvpool_future_ref(NULL));
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void future_outlives_closed_pool(void **state) {
  uvpool_future_t *f = NULL;
  int calls = 0;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_ok, &calls, &f), 0);
  t_pool_close(pool, 0);
  assert_int_equal(uvpool_future_state(f), UVPOOL_DONE);
  assert_int_equal(uvpool_future_status(f), 0);
  assert_ptr_equal(uvpool_future_result(f), &calls);
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  assert_int_equal(uvpool_future_cancel(f), UV_EBUSY);
  assert_int_equal(uvpool_future_on_done(f, t_cb_count, &calls), UV_ESHUTDOWN);
  uvpool_future_unref(f); /* frees the rest of the pool */
  t_loop_free(loop);
  assert_int_equal(calls, 0);
}

static void many_futures_recycle_without_growth(void **state) {
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  for (int round = 0; round < 3; round++) {
    uvpool_future_t *fs[3000];
    for (int i = 0; i < 3000; i++)
      assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &fs[i]), 0);
    assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
    for (int i = 0; i < 3000; i++) {
      assert_int_equal(uvpool_future_state(fs[i]), UVPOOL_DONE);
      uvpool_future_unref(fs[i]);
    }
  }
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(state_moves_pending_running_done),
      T_TEST(wait_times_out_while_unsettled),
      T_TEST(wait_from_two_threads_returns_in_both),
      T_TEST(wait_on_loop_thread_needs_no_loop_iteration),
      T_TEST(extra_reference_keeps_future_alive),
      T_TEST(future_outlives_closed_pool),
      T_TEST(many_futures_recycle_without_growth),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
