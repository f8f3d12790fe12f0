/* Pool references: a thread that holds one may use the pool across its
 * close, and gets UV_ESHUTDOWN, working stats, and no touch of the closed
 * handle, until it releases the last reference, which frees the pool. */
#include "util.h"

#include <string.h>

static struct {
  uvpool_t *pool;
  uv_sem_t *go, *done;
  int submits_before, after_submit, after_stats, after_lane, after_on_done;
  uvpool_stats_t stats;
  uvpool_future_t *kept;
} F;

/* A thread that is not the loop's: submits until the close refuses, then,
 * once told the close finished, uses the pool again and lets it go. */
static void foreign(void *arg) {
  unsigned lane = 0;
  int rc;
  (void)arg;
  while ((rc = uvpool_submit(F.pool, t_work_ok, NULL, NULL)) == 0)
    F.submits_before++;
  assert_int_equal(rc, UV_ESHUTDOWN);
  uv_sem_post(F.done);
  uv_sem_wait(F.go); /* the close finished: only our reference is left */
  F.after_submit = uvpool_submit(F.pool, t_work_ok, NULL, NULL);
  F.after_stats = uvpool_stats(F.pool, &F.stats);
  F.after_lane = uvpool_lane_new(F.pool, 1, &lane);
  F.after_on_done = uvpool_future_on_done(F.kept, t_cb_count, NULL);
  uvpool_unref(F.pool); /* the last reference: frees it */
}

static void closed(uvpool_t *pool, void *data) {
  (void)pool;
  *(int *)data = 1;
}

static void foreign_submitter_holds_a_reference_across_the_close(void **state) {
  uv_thread_t tid;
  int is_closed = 0;
  (void)state;
  memset(&F, 0, sizeof(F));
  F.go = t_sem_new(0);
  F.done = t_sem_new(0);
  uv_loop_t *loop = t_loop_new();
  F.pool = t_pool_new(loop, NULL);
  assert_ptr_equal(uvpool_ref(F.pool), F.pool); /* the thread's */
  assert_int_equal(uvpool_submit(F.pool, t_work_ok, NULL, &F.kept), 0);
  assert_int_equal(uv_thread_create(&tid, foreign, NULL), 0);
  assert_int_equal(uvpool_close(F.pool, 0, closed, &is_closed), 0);
  while (!is_closed)
    uv_run(loop, UV_RUN_ONCE);
  uv_sem_wait(F.done);
  uv_sem_post(F.go);
  assert_int_equal(uv_thread_join(&tid), 0);
  assert_int_equal(F.after_submit, UV_ESHUTDOWN);
  assert_int_equal(F.after_stats, 0);
  assert_int_equal(F.stats.submitted, (uint64_t)F.submits_before + 1);
  assert_int_equal(F.stats.completed, F.stats.submitted);
  assert_int_equal(F.stats.workers, 0);
  assert_int_equal(F.after_lane, UV_ESHUTDOWN);
  assert_int_equal(F.after_on_done, UV_ESHUTDOWN);
  assert_int_equal(uvpool_future_state(F.kept), UVPOOL_DONE);
  uvpool_future_unref(F.kept); /* the pool's memory is gone after this */
  t_loop_free(loop);
  t_sem_free(F.go);
  t_sem_free(F.done);
}

static void reference_outlives_the_close_callback(void **state) {
  int is_closed = 0;
  uvpool_stats_t s;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  uvpool_t *ref = uvpool_ref(pool);
  assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, NULL), 0);
  assert_int_equal(uvpool_close(pool, 0, closed, &is_closed), 0);
  t_loop_free(loop); /* the close finished; the loop is closed */
  assert_int_equal(is_closed, 1);
  assert_int_equal(uvpool_submit(ref, t_work_ok, NULL, NULL), UV_ESHUTDOWN);
  assert_int_equal(uvpool_stats(ref, &s), 0);
  assert_int_equal(s.completed, 1);
  assert_int_equal(uvpool_close(ref, 0, NULL, NULL), UV_EINVAL);
  uvpool_unref(ref);
}

static void null_references_are_ignored(void **state) {
  (void)state;
  assert_null(uvpool_ref(NULL));
  uvpool_unref(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(foreign_submitter_holds_a_reference_across_the_close),
      T_TEST(reference_outlives_the_close_callback),
      T_TEST(null_references_are_ignored),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
