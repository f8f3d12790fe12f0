/* Submission: work runs on a worker, results and statuses come back. */
#include "util.h"

#include <string.h>

static void work_result_is_delivered(void **state) {
  uvpool_future_t *f = NULL;
  int calls = 0;
  int token = 42;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_ok, &token, &f), 0);
  assert_int_equal(uvpool_future_on_done(f, t_cb_count, &calls), 0);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(calls, 1);
  assert_int_equal(uvpool_future_state(f), UVPOOL_DONE);
  assert_int_equal(uvpool_future_status(f), 0);
  assert_ptr_equal(uvpool_future_result(f), &token);
  uvpool_future_unref(f);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void fire_and_forget_runs(void **state) {
  static _Atomic int n; /* its tasks write it, even after a failure */
  (void)state;
  atomic_store(&n, 0);
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  for (int i = 0; i < 100; i++)
    assert_int_equal(uvpool_submit(pool, t_work_count, &n, NULL), 0);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(atomic_load(&n), 100);
  uvpool_stats_t s = t_stats(pool);
  assert_int_equal(s.submitted, 100);
  assert_int_equal(s.completed, 100);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void failing_work_sets_failed_and_its_code(void **state) {
  uvpool_future_t *f = NULL;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(
      uvpool_submit(pool, t_work_ret, (void *)(intptr_t)UV_EIO, &f), 0);
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  assert_int_equal(uvpool_future_state(f), UVPOOL_FAILED);
  assert_int_equal(uvpool_future_status(f), UV_EIO);
  assert_null(uvpool_future_result(f));
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(t_stats(pool).failed, 1);
  uvpool_future_unref(f);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void positive_return_is_taken_as_errno(void **state) {
  uvpool_future_t *f = NULL;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_ret, (void *)(intptr_t)5, &f), 0);
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  assert_int_equal(uvpool_future_status(f), UV_EIO); /* EIO is 5 */
  uvpool_future_unref(f);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void tasks_start_in_submission_order(void **state) {
  enum { N = 200 };
  uvpool_options_t o;
  /* The tasks use them, even after a failure. */
  static t_order_t slots[N];
  static int log[N];
  static _Atomic int next;
  t_gate_t *g;
  (void)state;
  atomic_store(&next, 0);
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  uvpool_options_init(&o);
  o.max_workers = 1;
  uvpool_t *pool = t_pool_new(loop, &o);
  /* Hold the only worker so that all N tasks are queued together. */
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, NULL), 0);
  uv_sem_wait(&g->started);
  for (int i = 0; i < N; i++) {
    slots[i] = (t_order_t){&next, log, i};
    assert_int_equal(uvpool_submit(pool, t_work_order, &slots[i], NULL), 0);
  }
  uv_sem_post(&g->go);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(atomic_load(&next), N);
  for (int i = 0; i < N; i++)
    assert_int_equal(log[i], i);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(g);
}

static void options_init_sets_documented_defaults(void **state) {
  uvpool_options_t o;
  (void)state;
  memset(&o, 0xff, sizeof(o));
  uvpool_options_init(&o);
  assert_int_equal(o.max_workers, 0);
  assert_int_equal(o.min_workers, 0);
  assert_int_equal(o.idle_timeout_ms, 0);
  assert_int_equal(o.max_queued, 0);
  assert_int_equal(o.stack_size, 0);
  assert_null(o.name);
  assert_null(o.thread_init);
  assert_null(o.thread_exit);
  assert_true(o.exit_timeout_ms < 0);
  assert_int_equal(o.flags, 0);
  assert_int_equal(o.spin_us, UVPOOL_SPIN_DEFAULT);
}

static void version_string_matches_header(void **state) {
  char want[32];
  (void)state;
  snprintf(want, sizeof(want), "%d.%d.%d", UVPOOL_VERSION_MAJOR,
           UVPOOL_VERSION_MINOR, UVPOOL_VERSION_PATCH);
  assert_string_equal(uvpool_version_string(), want);
}

static void default_max_workers_is_cpus_plus_four_capped(void **state) {
  enum { N = 64 };
  t_gate_t *g;
  unsigned want = uv_available_parallelism() + 4;
  (void)state;
  if (want > 32)
    want = 32;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  for (int i = 0; i < N; i++)
    assert_int_equal(uvpool_submit(pool, t_work_gate, g, NULL), 0);
  for (unsigned i = 0; i < want; i++)
    uv_sem_wait(&g->started);
  uvpool_stats_t s = t_stats(pool);
  assert_int_equal(s.workers, want);
  assert_int_equal(s.running, want);
  assert_int_equal(s.queued, N - want);
  for (int i = 0; i < N; i++)
    uv_sem_post(&g->go);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(t_stats(pool).peak_workers, want);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(work_result_is_delivered),
      T_TEST(fire_and_forget_runs),
      T_TEST(failing_work_sets_failed_and_its_code),
      T_TEST(positive_return_is_taken_as_errno),
      T_TEST(tasks_start_in_submission_order),
      T_TEST(options_init_sets_documented_defaults),
      T_TEST(version_string_matches_header),
      T_TEST(default_max_workers_is_cpus_plus_four_capped),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
