/* The pool's handle keeps uv_run() alive only while something is
 * unsettled or undelivered, or while closing. */
#include "util.h"

static void idle_open_pool_lets_run_return(void **state) {
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_alive(loop), 0);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void unsettled_future_keeps_run_alive(void **state) {
  t_gate_t *g;
  int calls = 0;
  uvpool_future_t *f = NULL;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, &f), 0);
  assert_int_equal(uvpool_future_on_done(f, t_cb_count, &calls), 0);
  assert_int_not_equal(uv_loop_alive(loop), 0);
  uv_sem_post(&g->go); /* the task may end before or during uv_run */
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(calls, 1); /* run returned only after delivery */
  assert_int_equal(uv_loop_alive(loop), 0);
  uvpool_future_unref(f);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(g);
}

static void closing_pool_keeps_run_alive(void **state) {
  int closed = 0;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_close(pool, 0, NULL, &closed), 0);
  assert_int_not_equal(uv_loop_alive(loop), 0);
  t_loop_free(loop);
}

/* Another thread submits while the loop runs only because of a hold
 * handle; once the hold goes, the pool's handle must carry the loop. */
typedef struct {
  uvpool_t *pool;
  uv_async_t hold;
  uvpool_future_t *f;
  t_gate_t *g;
  int calls;
} remote_t;

static void drop_hold(uv_async_t *h) { uv_close((uv_handle_t *)h, NULL); }

static void remote_main(void *arg) {
  remote_t *r = arg;
  assert_int_equal(uvpool_submit(r->pool, t_work_gate, r->g, &r->f), 0);
  assert_int_equal(uvpool_future_on_done(r->f, t_cb_count, &r->calls), 0);
  uv_async_send(&r->hold);
  uv_sem_post(&r->g->go);
}

static void remote_submit_keeps_running_loop_alive(void **state) {
  uv_thread_t tid;
  static remote_t r; /* its thread uses it, even after a failure */
  (void)state;
  uv_loop_t *loop = t_loop_new();
  r.g = t_gate_new();
  r.calls = 0;
  r.pool = t_pool_new(loop, NULL);
  assert_int_equal(uv_async_init(loop, &r.hold, drop_hold), 0);
  assert_int_equal(uv_thread_create(&tid, remote_main, &r), 0);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_thread_join(&tid), 0);
  assert_int_equal(r.calls, 1);
  uvpool_future_unref(r.f);
  t_pool_close(r.pool, 0);
  t_loop_free(loop);
  t_gate_free(r.g);
}

static void submit(void *arg) {
  assert_int_equal(uvpool_submit(arg, t_work_ok, NULL, NULL), 0);
}

static void remote_submit_to_idle_loop_is_adopted_by_stats(void **state) {
  uv_thread_t tid;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uv_thread_create(&tid, submit, pool), 0);
  assert_int_equal(uv_thread_join(&tid), 0);
  (void)t_stats(pool); /* adopt, as documented */
  assert_int_not_equal(uv_loop_alive(loop), 0);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(t_stats(pool).completed, 1);
  assert_int_equal(uv_loop_alive(loop), 0);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(idle_open_pool_lets_run_return),
      T_TEST(unsettled_future_keeps_run_alive),
      T_TEST(closing_pool_keeps_run_alive),
      T_TEST(remote_submit_keeps_running_loop_alive),
      T_TEST(remote_submit_to_idle_loop_is_adopted_by_stats),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
