/* Cancellation: queued tasks cancel, running and settled ones do not;
 * running work can observe the request. */
#include "util.h"

typedef struct {
  uvpool_t *pool;
  uvpool_future_t *a, *b;
  t_gate_t *g;
  int calls;
} fixture_t;

/* One worker held by a gated task a; b queued behind it. */
static uv_loop_t *setup(fixture_t *x) {
  uvpool_options_t o;
  uv_loop_t *loop = t_loop_new();
  x->g = t_gate_new();
  x->calls = 0;
  uvpool_options_init(&o);
  o.max_workers = 1;
  x->pool = t_pool_new(loop, &o);
  assert_int_equal(uvpool_submit(x->pool, t_work_gate, x->g, &x->a), 0);
  assert_int_equal(uvpool_submit(x->pool, t_work_gate, x->g, &x->b), 0);
  uv_sem_wait(&x->g->started);
  return loop;
}

static void teardown(uv_loop_t *loop, fixture_t *x) {
  uvpool_future_unref(x->a);
  uvpool_future_unref(x->b);
  t_pool_close(x->pool, 0);
  t_loop_free(loop);
  t_gate_free(x->g);
}

static void queued_task_is_cancelled_and_never_runs(void **state) {
  fixture_t x;
  (void)state;
  uv_loop_t *loop = setup(&x);
  assert_int_equal(uvpool_future_on_done(x.b, t_cb_count, &x.calls), 0);
  assert_int_equal(uvpool_future_cancel(x.b), 0);
  assert_int_equal(uvpool_future_state(x.b), UVPOOL_CANCELLED);
  assert_int_equal(uvpool_future_status(x.b), UV_ECANCELED);
  assert_int_equal(uvpool_future_wait(x.b, 0), 0);
  assert_int_equal(t_stats(x.pool).queued, 0);
  uv_sem_post(&x.g->go);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(x.calls, 1); /* callbacks of a cancelled task run */
  assert_int_equal(atomic_load(&x.g->ran), 1);
  assert_int_equal(t_stats(x.pool).cancelled, 1);
  teardown(loop, &x);
}

static void running_task_cancel_is_ebusy_and_changes_nothing(void **state) {
  fixture_t x;
  (void)state;
  uv_loop_t *loop = setup(&x);
  assert_int_equal(uvpool_future_cancel(x.a), UV_EBUSY);
  assert_int_equal(uvpool_future_state(x.a), UVPOOL_RUNNING);
  uv_sem_post(&x.g->go);
  uv_sem_post(&x.g->go);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uvpool_future_state(x.a), UVPOOL_DONE);
  assert_int_equal(uvpool_future_status(x.a), 0);
  teardown(loop, &x);
}

static void settled_task_cancel_is_ebusy(void **state) {
  fixture_t x;
  (void)state;
  uv_loop_t *loop = setup(&x);
  uv_sem_post(&x.g->go);
  uv_sem_post(&x.g->go);
  assert_int_equal(uvpool_future_wait(x.b, -1), 0);
  assert_int_equal(uvpool_future_cancel(x.a), UV_EBUSY);
  assert_int_equal(uvpool_future_cancel(x.b), UV_EBUSY);
  assert_int_equal(uvpool_future_state(x.b), UVPOOL_DONE);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  teardown(loop, &x);
}

typedef struct {
  uv_sem_t *started, *asked;
  int seen_before, seen_after;
} coop_t;

static int cooperative(void *arg, void **result) {
  coop_t *c = arg;
  (void)result;
  c->seen_before = uvpool_cancel_requested();
  uv_sem_post(c->started);
  uv_sem_wait(c->asked);
  c->seen_after = uvpool_cancel_requested();
  return c->seen_after ? UV_ECANCELED : 0;
}

static void running_work_sees_cancel_request(void **state) {
  uvpool_future_t *f = NULL;
  static coop_t c; /* its task reads it, even after a failure */
  (void)state;
  uv_loop_t *loop = t_loop_new();
  c.started = t_sem_new(0);
  c.asked = t_sem_new(0);
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, cooperative, &c, &f), 0);
  uv_sem_wait(c.started);
  assert_int_equal(uvpool_future_cancel(f), UV_EBUSY);
  uv_sem_post(c.asked);
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  assert_int_equal(c.seen_before, 0);
  assert_int_not_equal(c.seen_after, 0);
  assert_int_equal(uvpool_future_state(f), UVPOOL_CANCELLED);
  assert_int_equal(uvpool_future_status(f), UV_ECANCELED);
  assert_int_equal(uvpool_cancel_requested(), 0); /* not in work */
  uvpool_future_unref(f);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_sem_free(c.started);
  t_sem_free(c.asked);
}

static void ecanceled_without_request_is_a_failure(void **state) {
  uvpool_future_t *f = NULL;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(
      uvpool_submit(pool, t_work_ret, (void *)(intptr_t)UV_ECANCELED, &f), 0);
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  assert_int_equal(uvpool_future_state(f), UVPOOL_FAILED);
  uvpool_future_unref(f);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(queued_task_is_cancelled_and_never_runs),
      T_TEST(running_task_cancel_is_ebusy_and_changes_nothing),
      T_TEST(settled_task_cancel_is_ebusy),
      T_TEST(running_work_sees_cancel_request),
      T_TEST(ecanceled_without_request_is_a_failure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
