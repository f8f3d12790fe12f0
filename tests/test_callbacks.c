/* Done callbacks: loop thread, registration order, exactly once, never
 * synchronously. */
#include "util.h"

static void callbacks_run_in_registration_order(void **state) {
  uvpool_future_t *f = NULL;
  t_gate_t *g;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, &f), 0);
  for (intptr_t i = 0; i < 10; i++)
    assert_int_equal(uvpool_future_on_done(f, t_cb_log, (void *)i), 0);
  uv_sem_post(&g->go);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(t_cb_norder, 10);
  for (int i = 0; i < 10; i++)
    assert_int_equal(t_cb_order[i], i);
  uvpool_future_unref(f);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(g);
}

static void
callbacks_added_after_delivery_run_in_registration_order(void **state) {
  uvpool_future_t *f = NULL;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  t_cb_norder = 0;
  assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &f), 0);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0); /* delivered */
  for (intptr_t i = 0; i < 3; i++)
    assert_int_equal(uvpool_future_on_done(f, t_cb_log, (void *)i), 0);
  assert_int_equal(t_cb_norder, 0);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(t_cb_norder, 3);
  for (int i = 0; i < 3; i++)
    assert_int_equal(t_cb_order[i], i);
  uvpool_future_unref(f);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void callback_after_settlement_runs_on_a_later_iteration(void **state) {
  uvpool_future_t *f = NULL;
  int calls = 0;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &f), 0);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uvpool_future_state(f), UVPOOL_DONE);
  assert_int_equal(uvpool_future_on_done(f, t_cb_count, &calls), 0);
  assert_int_equal(calls, 0); /* not synchronously */
  uvpool_future_unref(f);     /* the pool keeps f until cb ran */
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(calls, 1);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

typedef struct {
  int calls;
  int inner;
} nested_t;

static void inner_cb(uvpool_future_t *f, void *data) {
  nested_t *n = data;
  (void)f;
  assert_true(t_on_loop_thread());
  n->inner++;
}

static void outer_cb(uvpool_future_t *f, void *data) {
  nested_t *n = data;
  n->calls++;
  assert_int_equal(uvpool_future_on_done(f, inner_cb, n), 0);
  assert_int_equal(n->inner, 0); /* never inside on_done */
}

static void callback_added_inside_callback_runs_later(void **state) {
  uvpool_future_t *f = NULL;
  nested_t n = {0, 0};
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &f), 0);
  assert_int_equal(uvpool_future_on_done(f, outer_cb, &n), 0);
  uvpool_future_unref(f);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(n.calls, 1);
  assert_int_equal(n.inner, 1);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void every_callback_runs_exactly_once(void **state) {
  enum { N = 2000, PER = 3 };
  static uvpool_future_t *fs[N];
  int calls = 0;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  for (int i = 0; i < N; i++) {
    assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &fs[i]), 0);
    for (int j = 0; j < PER; j++)
      assert_int_equal(uvpool_future_on_done(fs[i], t_cb_count, &calls), 0);
  }
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(calls, N * PER);
  for (int i = 0; i < N; i++)
    uvpool_future_unref(fs[i]);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(calls, N * PER);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

typedef struct {
  uvpool_future_t *f;
  int *calls;
  int rc;
} reg_t;

static void register_main(void *arg) {
  reg_t *r = arg;
  r->rc = uvpool_future_on_done(r->f, t_cb_count, r->calls);
}

static void callback_registered_from_another_thread_runs_on_loop(void **state) {
  uvpool_future_t *f = NULL;
  uv_thread_t tid;
  int calls = 0;
  t_gate_t *g;
  reg_t r;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, &f), 0);
  r = (reg_t){f, &calls, 1};
  assert_int_equal(uv_thread_create(&tid, register_main, &r), 0);
  assert_int_equal(uv_thread_join(&tid), 0);
  assert_int_equal(r.rc, 0);
  uv_sem_post(&g->go);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(calls, 1);
  /* Also after settlement, from another thread. */
  r.rc = 1;
  assert_int_equal(uv_thread_create(&tid, register_main, &r), 0);
  assert_int_equal(uv_thread_join(&tid), 0);
  assert_int_equal(r.rc, 0);
  assert_int_equal(calls, 1);
  /* Nothing else keeps this loop alive: uvpool_stats on the loop thread
   * adopts the registration made elsewhere, as the header documents. */
  (void)t_stats(pool);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(calls, 2);
  uvpool_future_unref(f);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(callbacks_run_in_registration_order),
      T_TEST(callback_after_settlement_runs_on_a_later_iteration),
      T_TEST(callbacks_added_after_delivery_run_in_registration_order),
      T_TEST(callback_added_inside_callback_runs_later),
      T_TEST(every_callback_runs_exactly_once),
      T_TEST(callback_registered_from_another_thread_runs_on_loop),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
