/* Edge paths of the API that the behaviour suites do not reach on their
 * own: NULL tolerance, option validation, the error paths of the
 * combinators and of deadlines, and cancels in unusual places. */
#include "util.h"

static void options_init_tolerate_null(void **state) {
  (void)state;
  uvpool_options_init(NULL);
  uvpool_task_options_init(NULL);
  assert_int_equal(uvpool_future_state(NULL), UVPOOL_FAILED);
}

static void submit_ex_checks_its_arguments(void **state) {
  uvpool_task_options_t o;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  uvpool_task_options_init(&o);
  o.priority = 1;
  assert_int_equal(uvpool_submit_ex(NULL, &o, t_work_ok, NULL, NULL),
                   UV_EINVAL);
  assert_int_equal(uvpool_submit_ex(pool, &o, NULL, NULL, NULL), UV_EINVAL);
  /* Default options take the plain path. */
  assert_int_equal(uvpool_submit_ex(pool, NULL, t_work_ok, NULL, NULL), 0);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(t_stats(pool).completed, 1);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void
deadline_thread_failure_is_reported_and_queues_nothing(void **state) {
  uvpool_task_options_t o;
  uvpool_future_t *f = NULL;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  uvpool_task_options_init(&o);
  o.deadline_ms = 1000;
  uvpool__thread_fail_at(1, UV_EAGAIN);
  assert_int_equal(uvpool_submit_ex(pool, &o, t_work_ok, NULL, &f), UV_EAGAIN);
  uvpool__thread_fail_at(0, 0);
  assert_null(f);
  assert_int_equal(t_stats(pool).submitted, 0);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void lane_new_allocation_failure_is_enomem(void **state) {
  unsigned lane = 0;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  uvpool__alloc_fail_at(1, false);
  assert_int_equal(uvpool_lane_new(pool, 1, &lane), UV_ENOMEM);
  uvpool__alloc_fail_at(0, false);
  assert_int_equal(uvpool_lane_new(pool, 1, &lane), 0);
  assert_int_equal(lane, 1);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void combinators_reject_null_entries_and_pools(void **state) {
  uvpool_future_t *in[2] = {NULL, NULL}, *out = NULL;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &in[0]), 0);
  assert_int_equal(uvpool_when_all(in, 2, 0, &out), UV_EINVAL);
  assert_int_equal(uvpool_when_all(NULL, 1, 0, &out), UV_EINVAL);
  assert_int_equal(uvpool_when_any(in, 0, &out), UV_EINVAL);
  assert_int_equal(uvpool_when_any(in, 1, NULL), UV_EINVAL);
  assert_int_equal(uvpool_when_any(&in[1], 1, &out), UV_EINVAL);
  assert_int_equal(uvpool_submit_after(pool, in, 1, NULL, NULL, &out),
                   UV_EINVAL);
  assert_int_equal(uvpool_submit_after(NULL, in, 1, t_work_ok, NULL, &out),
                   UV_EINVAL);
  assert_int_equal(uvpool_submit_after(pool, NULL, 1, t_work_ok, NULL, &out),
                   UV_EINVAL);
  assert_null(out);
  /* No dependencies: a plain submit. */
  assert_int_equal(uvpool_submit_after(pool, NULL, 0, t_work_ok, NULL, &out),
                   0);
  assert_int_equal(uvpool_future_wait(out, -1), 0);
  uvpool_future_unref(out);
  uvpool_future_unref(in[0]);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void submit_after_on_a_closing_pool_is_eshutdown(void **state) {
  uvpool_future_t *d = NULL, *out = NULL;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &d), 0);
  assert_int_equal(uvpool_close(pool, 0, NULL, NULL), 0);
  assert_int_equal(uvpool_submit_after(pool, &d, 1, t_work_ok, NULL, &out),
                   UV_ESHUTDOWN);
  assert_null(out);
  uvpool_future_unref(d);
  t_loop_free(loop);
}

static void submit_after_allocation_failures_are_enomem(void **state) {
  uvpool_future_t *d = NULL, *out = NULL;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *a = t_pool_new(loop, NULL);
  uvpool_t *b = t_pool_new(loop, NULL); /* no slab yet */
  assert_int_equal(uvpool_submit(a, t_work_ok, NULL, &d), 0);
  /* First the join record, then b's first slab for the output. */
  for (unsigned long n = 1; n <= 2; n++) {
    uvpool__alloc_fail_at(n, false);
    assert_int_equal(uvpool_submit_after(b, &d, 1, t_work_ok, NULL, &out),
                     UV_ENOMEM);
    uvpool__alloc_fail_at(0, false);
    assert_null(out);
  }
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(t_stats(b).submitted, 0);
  assert_int_equal(t_stats(a).completed, 1);
  uvpool_future_unref(d);
  t_pool_close(a, 0);
  t_pool_close(b, 0);
  t_loop_free(loop);
}

static int init_fails_after_go(void *data) {
  uv_sem_wait(data);
  return UV_EMFILE;
}

static void dependant_on_a_broken_pool_fails_with_its_code(void **state) {
  uvpool_options_t bo;
  uv_sem_t *go;
  t_gate_t *g;
  uvpool_future_t *d = NULL, *out = NULL, *trigger = NULL;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  go = t_sem_new(0);
  uvpool_t *a = t_pool_new(loop, NULL);
  uvpool_options_init(&bo);
  bo.thread_init = init_fails_after_go;
  bo.thread_data = go;
  uvpool_t *b = t_pool_new(loop, &bo);
  assert_int_equal(uvpool_submit(a, t_work_gate, g, &d), 0);
  assert_int_equal(uvpool_submit_after(b, &d, 1, t_work_ok, NULL, &out), 0);
  assert_int_equal(uvpool_submit(b, t_work_ok, NULL, &trigger), 0);
  uv_sem_post(go); /* b's first worker fails: b breaks */
  assert_int_equal(uvpool_future_wait(trigger, -1), 0);
  assert_int_equal(uvpool_future_status(trigger), UV_EMFILE);
  uv_sem_post(&g->go); /* d completes; its dependant meets a broken pool */
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uvpool_future_state(out), UVPOOL_FAILED);
  assert_int_equal(uvpool_future_status(out), UV_EMFILE);
  uvpool_future_unref(d);
  uvpool_future_unref(out);
  uvpool_future_unref(trigger);
  t_pool_close(a, 0);
  t_pool_close(b, 0);
  t_loop_free(loop);
  t_sem_free(go);
  t_gate_free(g);
}

static void cancelling_a_held_task_settles_it(void **state) {
  t_gate_t *g;
  uvpool_future_t *d = NULL, *out = NULL;
  static _Atomic int ran; /* its task may write it, even after a failure */
  (void)state;
  atomic_store(&ran, 0);
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, &d), 0);
  assert_int_equal(uvpool_submit_after(pool, &d, 1, t_work_count, &ran, &out),
                   0);
  assert_int_equal(uvpool_future_cancel(out), 0);
  assert_int_equal(uvpool_future_state(out), UVPOOL_CANCELLED);
  uv_sem_post(&g->go);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(atomic_load(&ran), 0);
  uvpool_stats_t s = t_stats(pool);
  assert_int_equal(s.submitted, s.completed + s.failed + s.cancelled);
  uvpool_future_unref(d);
  uvpool_future_unref(out);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(g);
}

static void
cancelling_the_later_of_two_deadlines_keeps_the_earlier(void **state) {
  uvpool_options_t po;
  uvpool_task_options_t o;
  t_gate_t *g;
  uvpool_future_t *early = NULL, *late = NULL;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  uvpool_options_init(&po);
  po.max_workers = 1;
  uvpool_t *pool = t_pool_new(loop, &po);
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, NULL), 0);
  uv_sem_wait(&g->started);
  uvpool_task_options_init(&o);
  o.deadline_ms = 10;
  assert_int_equal(uvpool_submit_ex(pool, &o, t_work_ok, NULL, &early), 0);
  o.deadline_ms = 100000;
  assert_int_equal(uvpool_submit_ex(pool, &o, t_work_ok, NULL, &late), 0);
  assert_int_equal(uvpool_future_cancel(late), 0);
  assert_int_equal(uvpool_future_wait(early, -1), 0);
  assert_int_equal(uvpool_future_status(early), UV_ETIMEDOUT);
  uv_sem_post(&g->go);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  uvpool_future_unref(early);
  uvpool_future_unref(late);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(g);
}

static void close_cancel_pending_cancels_parked_lane_tasks(void **state) {
  uvpool_task_options_t o;
  unsigned lane = 0;
  t_gate_t *g;
  uvpool_future_t *a = NULL, *b = NULL;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_lane_new(pool, 1, &lane), 0);
  uvpool_task_options_init(&o);
  o.lane = lane;
  assert_int_equal(uvpool_submit_ex(pool, &o, t_work_gate, g, &a), 0);
  assert_int_equal(uvpool_submit_ex(pool, &o, t_work_gate, g, &b), 0);
  uv_sem_wait(&g->started); /* a runs; b waits on the lane */
  assert_int_equal(uvpool_close(pool, UVPOOL_CANCEL_PENDING, NULL, NULL), 0);
  assert_int_equal(uvpool_future_state(b), UVPOOL_CANCELLED);
  uv_sem_post(&g->go);
  t_loop_free(loop);
  assert_int_equal(uvpool_future_state(a), UVPOOL_DONE);
  assert_int_equal(atomic_load(&g->ran), 1);
  uvpool_future_unref(a);
  uvpool_future_unref(b);
  t_gate_free(g);
}

static int init_positive(void *data) {
  (void)data;
  return 5; /* an errno */
}

static void positive_thread_init_code_is_negated(void **state) {
  uvpool_options_t o;
  uvpool_future_t *f = NULL;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_options_init(&o);
  o.thread_init = init_positive;
  uvpool_t *pool = t_pool_new(loop, &o);
  assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &f), 0);
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  assert_int_equal(uvpool_future_status(f), UV_EIO);
  uvpool_future_unref(f);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(options_init_tolerate_null),
      T_TEST(submit_ex_checks_its_arguments),
      T_TEST(deadline_thread_failure_is_reported_and_queues_nothing),
      T_TEST(lane_new_allocation_failure_is_enomem),
      T_TEST(combinators_reject_null_entries_and_pools),
      T_TEST(submit_after_on_a_closing_pool_is_eshutdown),
      T_TEST(submit_after_allocation_failures_are_enomem),
      T_TEST(dependant_on_a_broken_pool_fails_with_its_code),
      T_TEST(cancelling_a_held_task_settles_it),
      T_TEST(cancelling_the_later_of_two_deadlines_keeps_the_earlier),
      T_TEST(close_cancel_pending_cancels_parked_lane_tasks),
      T_TEST(positive_thread_init_code_is_negated),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
