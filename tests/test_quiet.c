/* Fire-and-forget completions (no future handed out, no callback) reach
 * the loop in batches of UVPOOL__QUIET_MAX per worker: the loop must still
 * see every one of them, while the worker runs more work and when it
 * idles, so that the loop runs down and futures are recycled. */
#include "util.h"

/* Settlements and callbacks the loop has not delivered yet. Loop thread. */
static uint64_t undelivered(uvpool_t *pool) {
  uint64_t n;
  uv_mutex_lock(&pool->g->mu);
  n = pool->outstanding + pool->loop_outstanding;
  uv_mutex_unlock(&pool->g->mu);
  return n;
}

static bool only_one_undelivered(void *pool) { return undelivered(pool) == 1; }

static bool timed_out;

static void bound_hit(uv_timer_t *t) {
  timed_out = true;
  uv_stop(t->loop);
}

static void completions_reach_the_loop_when_the_worker_idles(void **state) {
  uv_timer_t bound;
  uvpool_t *pool;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  pool = t_pool_max(loop, 1);
  for (int i = 0; i < 5; i++) /* fewer than a batch */
    assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, NULL), 0);
  /* A hang bound that does not keep the loop alive by itself. */
  timed_out = false;
  assert_int_equal(uv_timer_init(loop, &bound), 0);
  assert_int_equal(uv_timer_start(&bound, bound_hit, 20000, 0), 0);
  uv_unref((uv_handle_t *)&bound);
  /* Returns once every completion was delivered: the worker pushed its
   * partial batch before it went idle. */
  uv_run(loop, UV_RUN_DEFAULT);
  assert_false(timed_out);
  assert_int_equal(undelivered(pool), 0);
  assert_int_equal(t_stats(pool).completed, 5);
  uv_close((uv_handle_t *)&bound, NULL);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void full_batch_reaches_the_loop_while_the_worker_is_busy(void **state) {
  uvpool_t *pool;
  t_quiet_t q;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  pool = t_pool_max(loop, 1);
  /* The worker published the last of the batch before it ran the gated
   * task: the batch was full, so it went to the loop. */
  t_quiet_start(&q, pool, UVPOOL__QUIET_MAX);
  t_run_until(loop, only_one_undelivered, pool); /* the gated task's */
  assert_int_equal(t_stats(pool).completed, UVPOOL__QUIET_MAX + 1);
  t_quiet_finish(&q);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(completions_reach_the_loop_when_the_worker_idles),
      T_TEST(full_batch_reaches_the_loop_while_the_worker_is_busy),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
