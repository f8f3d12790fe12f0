/* uvpool_close: drain or cancel, deliver everything, join, then the close
 * callback, last; the loop keeps running meanwhile. */
#include "util.h"

#include <sched.h>

typedef struct {
  int done_calls;
  int done_calls_at_close;
  int closed;
} track_t;

static void on_closed(uvpool_t *pool, void *data) {
  track_t *t = data;
  (void)pool;
  assert_true(t_on_loop_thread());
  t->done_calls_at_close = t->done_calls;
  t->closed++;
}

static void close_runs_queued_tasks_then_callback_last(void **state) {
  enum { N = 50 };
  uvpool_options_t o;
  static _Atomic int ran; /* its tasks write it, even after a failure */
  track_t t = {0, -1, 0};
  (void)state;
  atomic_store(&ran, 0);
  uv_loop_t *loop = t_loop_new();
  uvpool_options_init(&o);
  o.max_workers = 2;
  uvpool_t *pool = t_pool_new(loop, &o);
  for (int i = 0; i < N; i++) {
    uvpool_future_t *f = NULL;
    assert_int_equal(uvpool_submit(pool, t_work_count, &ran, &f), 0);
    assert_int_equal(uvpool_future_on_done(f, t_cb_count, &t.done_calls), 0);
    uvpool_future_unref(f);
  }
  assert_int_equal(uvpool_close(pool, 0, on_closed, &t), 0);
  assert_int_equal(t.closed, 0); /* never synchronously */
  t_loop_free(loop);
  assert_int_equal(atomic_load(&ran), N);
  assert_int_equal(t.closed, 1);
  assert_int_equal(t.done_calls_at_close, N);
}

static void close_with_cancel_pending_cancels_queued_only(void **state) {
  uvpool_options_t o;
  uvpool_future_t *run = NULL, *q[5];
  t_gate_t *g;
  track_t t = {0, -1, 0};
  (void)state;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  uvpool_options_init(&o);
  o.max_workers = 1;
  uvpool_t *pool = t_pool_new(loop, &o);
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, &run), 0);
  uv_sem_wait(&g->started);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(uvpool_submit(pool, t_work_gate, g, &q[i]), 0);
    assert_int_equal(uvpool_future_on_done(q[i], t_cb_count, &t.done_calls), 0);
  }
  assert_int_equal(uvpool_close(pool, UVPOOL_CANCEL_PENDING, on_closed, &t), 0);
  for (int i = 0; i < 5; i++)
    assert_int_equal(uvpool_future_state(q[i]), UVPOOL_CANCELLED);
  assert_int_equal(uvpool_future_state(run), UVPOOL_RUNNING);
  uv_sem_post(&g->go);
  t_loop_free(loop);
  assert_int_equal(t.closed, 1);
  assert_int_equal(t.done_calls_at_close, 5);
  assert_int_equal(atomic_load(&g->ran), 1);
  assert_int_equal(uvpool_future_state(run), UVPOOL_DONE);
  uvpool_future_unref(run);
  for (int i = 0; i < 5; i++)
    uvpool_future_unref(q[i]);
  t_gate_free(g);
}

/* Runs until asked to stop, as a task that polls for cancellation does. */
static int work_until_cancelled(void *arg, void **result) {
  t_gate_t *g = arg;
  (void)result;
  uv_sem_post(&g->started);
  while (!uvpool_cancel_requested())
    sched_yield(); /* the task's own workload */
  return UV_ECANCELED;
}

static void close_cancel_running_stops_running_and_later_tasks(void **state) {
  uvpool_future_t *running = NULL, *queued = NULL;
  t_gate_t *g = t_gate_new();
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_max(loop, 1);
  assert_int_equal(uvpool_submit(pool, work_until_cancelled, g, &running), 0);
  uv_sem_wait(&g->started);
  assert_int_equal(uvpool_submit(pool, work_until_cancelled, g, &queued), 0);
  /* Without CANCEL_PENDING the queued task still runs, asked to stop. */
  t_pool_close(pool, UVPOOL_CANCEL_RUNNING);
  assert_int_equal(uvpool_future_state(running), UVPOOL_CANCELLED);
  assert_int_equal(uvpool_future_state(queued), UVPOOL_CANCELLED);
  assert_int_equal(uvpool_future_status(queued), UV_ECANCELED);
  assert_int_equal(atomic_load(&g->ran), 0); /* work_until_cancelled */
  uvpool_future_unref(running);
  uvpool_future_unref(queued);
  t_loop_free(loop);
  t_gate_free(g);
}

typedef struct {
  uv_timer_t timer;
  t_gate_t *gate;
  int fired;
} releaser_t;

static void release_gate(uv_timer_t *h) {
  releaser_t *r = h->data;
  r->fired = 1;
  uv_sem_post(&r->gate->go); /* only the loop can end the task */
  uv_close((uv_handle_t *)h, NULL);
}

static void close_does_not_block_the_loop(void **state) {
  t_gate_t *g;
  releaser_t r;
  track_t t = {0, -1, 0};
  (void)state;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, NULL), 0);
  uv_sem_wait(&g->started);
  assert_int_equal(uvpool_close(pool, 0, on_closed, &t), 0);
  r.gate = g;
  r.fired = 0;
  assert_int_equal(uv_timer_init(loop, &r.timer), 0);
  r.timer.data = &r;
  assert_int_equal(uv_timer_start(&r.timer, release_gate, 1, 0), 0);
  t_loop_free(loop);
  assert_int_equal(r.fired, 1);
  assert_int_equal(t.closed, 1);
  t_gate_free(g);
}

static void loop_close_is_ebusy_while_pool_open(void **state) {
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(loop), UV_EBUSY);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void close_idle_pool_finishes(void **state) {
  track_t t = {0, -1, 0};
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_close(pool, 0, on_closed, &t), 0);
  t_loop_free(loop);
  assert_int_equal(t.closed, 1);
}

static void close_with_null_callback_finishes(void **state) {
  static _Atomic int ran; /* its task writes it, even after a failure */
  (void)state;
  atomic_store(&ran, 0);
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_count, &ran, NULL), 0);
  assert_int_equal(uvpool_close(pool, 0, NULL, NULL), 0);
  t_loop_free(loop);
  assert_int_equal(atomic_load(&ran), 1);
}

typedef struct {
  uvpool_t *pool;
  int rc;
} resubmit_t;

static void submit_in_callback(uvpool_future_t *f, void *data) {
  resubmit_t *r = data;
  (void)f;
  r->rc = uvpool_submit(r->pool, t_work_ok, NULL, NULL);
}

static void submit_from_callback_during_close_is_eshutdown(void **state) {
  uvpool_future_t *f = NULL;
  resubmit_t r;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  r.pool = t_pool_new(loop, NULL);
  r.rc = 1;
  assert_int_equal(uvpool_submit(r.pool, t_work_ok, NULL, &f), 0);
  assert_int_equal(uvpool_future_on_done(f, submit_in_callback, &r), 0);
  uvpool_future_unref(f);
  assert_int_equal(uvpool_close(r.pool, 0, NULL, NULL), 0);
  t_loop_free(loop);
  assert_int_equal(r.rc, UV_ESHUTDOWN);
}

/* A uv_walk sweep at teardown: every handle closed, the pool's through
 * uvpool_close. */
typedef struct {
  int pools;
  int others;
  track_t *t;
} sweep_t;

static void sweep(uv_handle_t *h, void *arg) {
  sweep_t *s = arg;
  uvpool_t *pool = uvpool_from_handle(h);
  if (pool != NULL) {
    s->pools++;
    assert_ptr_equal(uvpool_loop(pool), h->loop);
    assert_int_equal(uvpool_close(pool, 0, on_closed, s->t), 0);
  } else if (!uv_is_closing(h)) {
    s->others++;
    uv_close(h, NULL);
  }
}

static void walk_sweep_closes_pool_and_delivers_everything(void **state) {
  uv_timer_t timer;
  uv_idle_t idle;
  t_gate_t *g;
  track_t t = {0, -1, 0};
  sweep_t s = {0, 0, &t};
  (void)state;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  uvpool_options_t o;
  uvpool_options_init(&o);
  o.max_workers = 1;
  uvpool_t *pool = t_pool_new(loop, &o);
  assert_int_equal(uv_timer_init(loop, &timer), 0);
  assert_int_equal(uv_idle_init(loop, &idle), 0);
  for (int i = 0; i < 4; i++) {
    uvpool_future_t *f = NULL;
    assert_int_equal(uvpool_submit(pool, t_work_gate, g, &f), 0);
    assert_int_equal(uvpool_future_on_done(f, t_cb_count, &t.done_calls), 0);
    uvpool_future_unref(f);
  }
  uv_sem_wait(&g->started); /* one running, three queued */
  uv_walk(loop, sweep, &s);
  assert_int_equal(s.pools, 1);
  assert_int_equal(s.others, 2);
  for (int i = 0; i < 4; i++)
    uv_sem_post(&g->go);
  t_loop_free(loop);
  assert_int_equal(t.closed, 1);
  assert_int_equal(t.done_calls_at_close, 4);
  assert_int_equal(atomic_load(&g->ran), 4);
  t_gate_free(g);
}

static void from_handle_is_null_for_foreign_handles(void **state) {
  uv_async_t a;
  uv_timer_t tm;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uv_async_init(loop, &a, NULL), 0);
  assert_int_equal(uv_timer_init(loop, &tm), 0);
  a.data = pool; /* even pointing at a pool, it is not the pool's */
  assert_null(uvpool_from_handle((uv_handle_t *)&a));
  assert_null(uvpool_from_handle((uv_handle_t *)&tm));
  uv_close((uv_handle_t *)&a, NULL);
  uv_close((uv_handle_t *)&tm, NULL);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(close_runs_queued_tasks_then_callback_last),
      T_TEST(close_with_cancel_pending_cancels_queued_only),
      T_TEST(close_cancel_running_stops_running_and_later_tasks),
      T_TEST(close_does_not_block_the_loop),
      T_TEST(loop_close_is_ebusy_while_pool_open),
      T_TEST(close_idle_pool_finishes),
      T_TEST(close_with_null_callback_finishes),
      T_TEST(submit_from_callback_during_close_is_eshutdown),
      T_TEST(walk_sweep_closes_pool_and_delivers_everything),
      T_TEST(from_handle_is_null_for_foreign_handles),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
