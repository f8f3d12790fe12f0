/* Bad input and failures: a clear error, and nothing changes. */
#include "util.h"

#include <netdb.h>

static void null_arguments_are_einval(void **state) {
  uvpool_t *pool = NULL;
  uvpool_stats_t s;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  assert_int_equal(uvpool_new(NULL, NULL, &pool), UV_EINVAL);
  assert_int_equal(uvpool_new(loop, NULL, NULL), UV_EINVAL);
  assert_null(pool);
  pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(NULL, t_work_ok, NULL, NULL), UV_EINVAL);
  assert_int_equal(uvpool_submit(pool, NULL, NULL, NULL), UV_EINVAL);
  assert_int_equal(uvpool_stats(NULL, &s), UV_EINVAL);
  assert_int_equal(uvpool_stats(pool, NULL), UV_EINVAL);
  assert_int_equal(uvpool_close(NULL, 0, NULL, NULL), UV_EINVAL);
  assert_int_equal(uvpool_future_on_done(NULL, t_cb_count, NULL), UV_EINVAL);
  assert_int_equal(uvpool_future_cancel(NULL), UV_EINVAL);
  assert_int_equal(uvpool_future_status(NULL), UV_EINVAL);
  assert_int_equal(uvpool_future_wait(NULL, 0), UV_EINVAL);
  assert_null(uvpool_future_result(NULL));
  assert_null(uvpool_loop(NULL));
  assert_null(uvpool_from_handle(NULL));
  assert_int_equal(t_stats(pool).submitted, 0);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void on_done_with_null_callback_is_einval(void **state) {
  uvpool_future_t *f = NULL;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &f), 0);
  assert_int_equal(uvpool_future_on_done(f, NULL, NULL), UV_EINVAL);
  uvpool_future_unref(f);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void min_above_max_is_einval(void **state) {
  uvpool_options_t o;
  uvpool_t *pool = NULL;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_options_init(&o);
  o.max_workers = 2;
  o.min_workers = 3;
  assert_int_equal(uvpool_new(loop, &o, &pool), UV_EINVAL);
  assert_null(pool);
  t_loop_free(loop);
}

static void submit_after_close_began_is_eshutdown(void **state) {
  uv_loop_t *loop = t_loop_new();
  uvpool_future_t *f = (uvpool_future_t *)loop;
  int closed = 0;
  (void)state;
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_close(pool, 0, NULL, &closed), 0);
  assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &f), UV_ESHUTDOWN);
  assert_ptr_equal(f, (uvpool_future_t *)loop); /* untouched */
  assert_int_equal(uvpool_close(pool, 0, NULL, NULL), UV_EINVAL);
  t_loop_free(loop);
}

/* getaddrinfo's codes collide with -errno: mapped, uv_strerror tells. */
static int work_gai_noname(void *arg, void **result) {
  (void)arg;
  (void)result;
  return uvpool_gai_error(EAI_NONAME);
}

static void gai_codes_map_to_libuvs(void **state) {
  uvpool_future_t *f = NULL;
  (void)state;
  assert_int_equal(uvpool_gai_error(0), 0);
  assert_int_equal(uvpool_gai_error(EAI_NONAME), UV_EAI_NONAME);
  assert_int_equal(uvpool_gai_error(EAI_AGAIN), UV_EAI_AGAIN);
  assert_int_equal(uvpool_gai_error(EAI_FAIL), UV_EAI_FAIL);
  assert_int_equal(uvpool_gai_error(EAI_MEMORY), UV_EAI_MEMORY);
  assert_int_equal(uvpool_gai_error(EAI_SERVICE), UV_EAI_SERVICE);
  assert_int_equal(uvpool_gai_error(12345), UV_EAI_FAIL);
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, work_gai_noname, NULL, &f), 0);
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  assert_int_equal(uvpool_future_status(f), UV_EAI_NONAME);
  assert_string_equal(uv_err_name(uvpool_future_status(f)), "EAI_NONAME");
  uvpool_future_unref(f);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void full_queue_is_eagain_and_queues_nothing(void **state) {
  uvpool_options_t o;
  t_gate_t *g;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  uvpool_options_init(&o);
  o.max_workers = 1;
  o.max_queued = 2;
  uvpool_t *pool = t_pool_new(loop, &o);
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, NULL), 0);
  uv_sem_wait(&g->started); /* running: not queued */
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, NULL), 0);
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, NULL), 0);
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, NULL), UV_EAGAIN);
  uvpool_stats_t s = t_stats(pool);
  assert_int_equal(s.queued, 2);
  assert_int_equal(s.submitted, 3);
  for (int i = 0; i < 3; i++)
    uv_sem_post(&g->go);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(atomic_load(&g->ran), 3);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(g);
}

static void allocation_failure_in_new_is_enomem(void **state) {
  uvpool_t *pool = NULL;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool__alloc_fail_at(1, false);
  assert_int_equal(uvpool_new(loop, NULL, &pool), UV_ENOMEM);
  uvpool__alloc_fail_at(0, false);
  assert_null(pool);
  t_loop_free(loop); /* no handle was left behind */
}

static void allocation_failure_in_submit_is_enomem(void **state) {
  uvpool_future_t *f = NULL;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  /* First submit: the worker record, then the first slab. */
  for (unsigned long n = 1; n <= 2; n++) {
    uvpool__alloc_fail_at(n, false);
    assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &f), UV_ENOMEM);
    uvpool__alloc_fail_at(0, false);
    assert_null(f);
  }
  uvpool_stats_t s = t_stats(pool);
  assert_int_equal(s.submitted, 0);
  assert_int_equal(s.queued, 0);
  assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &f), 0);
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  uvpool_future_unref(f);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void allocation_failure_in_on_done_is_enomem(void **state) {
  uvpool_future_t *f = NULL;
  int calls = 0;
  t_gate_t *g;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, &f), 0);
  assert_int_equal(uvpool_future_on_done(f, t_cb_count, &calls), 0);
  uvpool__alloc_fail_at(1, false); /* the second callback needs a node */
  assert_int_equal(uvpool_future_on_done(f, t_cb_count, &calls), UV_ENOMEM);
  uvpool__alloc_fail_at(0, false);
  uv_sem_post(&g->go);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(calls, 1); /* the failed registration never runs */
  uvpool_future_unref(f);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(g);
}

static void
thread_creation_failure_without_workers_queues_nothing(void **state) {
  uvpool_future_t *f = NULL;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  uvpool__thread_fail_at(1, UV_EAGAIN);
  assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &f), UV_EAGAIN);
  uvpool__thread_fail_at(0, 0);
  assert_null(f);
  uvpool_stats_t s = t_stats(pool);
  assert_int_equal(s.submitted, 0);
  assert_int_equal(s.queued, 0);
  assert_int_equal(s.workers, 0);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void
thread_creation_failure_with_a_worker_still_runs_work(void **state) {
  t_gate_t *g;
  uvpool_future_t *f = NULL;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, NULL), 0);
  uv_sem_wait(&g->started);
  uvpool__thread_fail_at(1, UV_EAGAIN);
  assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &f), 0);
  assert_int_equal(t_stats(pool).workers, 1);
  uv_sem_post(&g->go);
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  uvpool__thread_fail_at(0, 0);
  assert_int_equal(uvpool_future_state(f), UVPOOL_DONE);
  uvpool_future_unref(f);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(g);
}

static int init_fails(void *data) {
  uv_sem_t *entered = data;
  uv_sem_wait(entered); /* let the test queue work first */
  return UV_EMFILE;
}

static void failing_thread_init_breaks_the_pool(void **state) {
  uvpool_options_t o;
  uvpool_future_t *f[3];
  uv_sem_t *hold;
  int calls = 0;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  hold = t_sem_new(0);
  uvpool_options_init(&o);
  o.max_workers = 1;
  o.thread_init = init_fails;
  o.thread_data = hold;
  uvpool_t *pool = t_pool_new(loop, &o);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &f[i]), 0);
    assert_int_equal(uvpool_future_on_done(f[i], t_cb_count, &calls), 0);
  }
  uv_sem_post(hold);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(calls, 3);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(uvpool_future_state(f[i]), UVPOOL_FAILED);
    assert_int_equal(uvpool_future_status(f[i]), UV_EMFILE);
    uvpool_future_unref(f[i]);
  }
  assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, NULL), UV_EMFILE);
  assert_int_equal(t_stats(pool).failed, 3);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_sem_free(hold);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(null_arguments_are_einval),
      T_TEST(on_done_with_null_callback_is_einval),
      T_TEST(min_above_max_is_einval),
      T_TEST(submit_after_close_began_is_eshutdown),
      T_TEST(gai_codes_map_to_libuvs),
      T_TEST(full_queue_is_eagain_and_queues_nothing),
      T_TEST(allocation_failure_in_new_is_enomem),
      T_TEST(allocation_failure_in_submit_is_enomem),
      T_TEST(allocation_failure_in_on_done_is_enomem),
      T_TEST(thread_creation_failure_without_workers_queues_nothing),
      T_TEST(thread_creation_failure_with_a_worker_still_runs_work),
      T_TEST(failing_thread_init_breaks_the_pool),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
