/* The loop thread is whoever runs the loop: a loop run by a second thread
 * while main submits, moved back to main for the close; a pool created on
 * a helper thread; a loop-thread-only call from another thread while the
 * loop runs there is refused. */
#include "util.h"

#include <string.h>

/* A hang detector, not a synchronisation: waits for *flag under mu, at
 * most 60 s (a loaded machine is not a hang). */
typedef struct {
  uv_mutex_t mu;
  uv_cond_t cv;
  bool flag;
} t_event_t;

static void event_init(t_event_t *e) {
  assert_int_equal(uv_mutex_init(&e->mu), 0);
  assert_int_equal(uv_cond_init(&e->cv), 0);
  e->flag = false;
}

static void event_set(t_event_t *e) {
  uv_mutex_lock(&e->mu);
  e->flag = true;
  uv_cond_signal(&e->cv);
  uv_mutex_unlock(&e->mu);
}

static bool event_wait_bounded(t_event_t *e) {
  uint64_t end = uv_hrtime() + 60 * (uint64_t)1000000000;
  uv_mutex_lock(&e->mu);
  while (!e->flag) {
    uint64_t now = uv_hrtime();
    if (now >= end || uv_cond_timedwait(&e->cv, &e->mu, end - now) != 0)
      break;
  }
  bool set = e->flag;
  uv_mutex_unlock(&e->mu);
  return set;
}

static void event_destroy(t_event_t *e) {
  uv_cond_destroy(&e->cv);
  uv_mutex_destroy(&e->mu);
}

/* ---- a loop run by a second thread ------------------------------------ */

enum { N_REMOTE = 1000 };

static struct {
  uv_loop_t *loop;
  uv_thread_t runner;
  _Atomic int delivered, on_runner;
  int run_rc;
  t_event_t returned;
} R;

static void run_loop(void *arg) {
  (void)arg;
  R.runner = uv_thread_self();
  R.run_rc = uv_run(R.loop, UV_RUN_DEFAULT);
  event_set(&R.returned);
}

static void count_on_runner(uvpool_future_t *f, void *data) {
  uv_thread_t self = uv_thread_self();
  (void)data;
  assert_int_equal(uvpool_future_status(f), 0);
  if (uv_thread_equal(&self, &R.runner))
    atomic_fetch_add(&R.on_runner, 1);
  atomic_fetch_add(&R.delivered, 1);
}

static void loop_run_by_a_second_thread_while_main_submits(void **state) {
  uv_thread_t tid;
  t_gate_t *g = t_gate_new();
  uvpool_future_t *f;
  (void)state;
  memset(&R, 0, sizeof(R));
  event_init(&R.returned);
  R.loop = t_loop_new();
  uvpool_t *pool = t_pool_max(R.loop, 2);
  /* Work outstanding before the loop runs keeps it running. */
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, &f), 0);
  assert_int_equal(uvpool_future_on_done(f, count_on_runner, NULL), 0);
  uvpool_future_unref(f);
  assert_int_equal(uv_thread_create(&tid, run_loop, NULL), 0);
  for (int i = 0; i < N_REMOTE; i++) {
    assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &f), 0);
    assert_int_equal(uvpool_future_on_done(f, count_on_runner, NULL), 0);
    uvpool_future_unref(f);
  }
  uv_sem_post(&g->go);
  /* The second thread's uv_run returns once all is delivered. */
  assert_true(event_wait_bounded(&R.returned));
  assert_int_equal(uv_thread_join(&tid), 0);
  assert_int_equal(R.run_rc, 0);
  assert_int_equal(atomic_load(&R.delivered), N_REMOTE + 1);
  assert_int_equal(atomic_load(&R.on_runner), N_REMOTE + 1);
  /* Moved back to main for the close: main is the loop's thread again. */
  t_pool_close(pool, 0);
  t_loop_free(R.loop);
  event_destroy(&R.returned);
  t_gate_free(g);
}

/* ---- a pool created on a helper thread --------------------------------- */

static struct {
  uv_loop_t *loop;
  uvpool_t *pool;
  int rc;
  _Atomic int delivered;
  uv_thread_t main;
} C;

static void create_and_submit(void *arg) {
  uvpool_future_t *f;
  (void)arg;
  C.rc = uvpool_new(C.loop, NULL, &C.pool);
  if (C.rc == 0)
    C.rc = uvpool_submit(C.pool, t_work_ok, NULL, &f);
  if (C.rc == 0) {
    C.rc = uvpool_future_on_done(f, t_cb_count, (void *)&C.delivered);
    uvpool_future_unref(f);
  }
}

static void submit_from_timer(uv_timer_t *t) {
  uvpool_future_t *f;
  (void)t;
  assert_int_equal(uvpool_submit(C.pool, t_work_ok, NULL, &f), 0);
  assert_int_equal(uvpool_future_on_done(f, t_cb_count, (void *)&C.delivered),
                   0);
  uvpool_future_unref(f);
}

static void pool_created_on_a_helper_thread(void **state) {
  uv_thread_t tid;
  uv_timer_t timer;
  (void)state;
  memset(&C, 0, sizeof(C));
  C.loop = t_loop_new();
  /* The helper creates the pool and submits, then ends. */
  assert_int_equal(uv_thread_create(&tid, create_and_submit, NULL), 0);
  assert_int_equal(uv_thread_join(&tid), 0);
  assert_int_equal(C.rc, 0);
  /* Main runs the loop: the helper's work is delivered here. */
  assert_int_equal(uv_run(C.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(atomic_load(&C.delivered), 1);
  /* A submit from a timer callback of main's run is the loop thread's. */
  assert_int_equal(uv_timer_init(C.loop, &timer), 0);
  assert_int_equal(uv_timer_start(&timer, submit_from_timer, 0, 0), 0);
  assert_int_equal(uv_run(C.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(atomic_load(&C.delivered), 2);
  uv_close((uv_handle_t *)&timer, NULL);
  t_pool_close(C.pool, 0); /* from the thread that ran the loop */
  t_loop_free(C.loop);     /* uv_loop_close() == 0 */
}

/* ---- loop-thread-only calls from another thread ------------------------ */

typedef struct {
  uvpool_t *pool;
  int rc;
} closer_t;

static void close_there(void *arg) {
  closer_t *c = arg;
  c->rc = uvpool_close(c->pool, 0, NULL, NULL);
}

static closer_t closer;

/* Runs on the loop thread, inside the poll: the loop runs right now. */
static void close_from_elsewhere(uvpool_future_t *f, void *data) {
  uv_thread_t tid;
  (void)f;
  (void)data;
  assert_int_equal(uv_thread_create(&tid, close_there, &closer), 0);
  assert_int_equal(uv_thread_join(&tid), 0);
}

static void
close_from_another_thread_while_the_loop_runs_is_einval(void **state) {
  uvpool_future_t *f;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  closer.pool = t_pool_new(loop, NULL);
  closer.rc = 1;
  assert_int_equal(uvpool_submit(closer.pool, t_work_ok, NULL, &f), 0);
  assert_int_equal(uvpool_future_on_done(f, close_from_elsewhere, NULL), 0);
  uvpool_future_unref(f);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(closer.rc, UV_EINVAL);
  /* The loop stopped: another thread may now own it for the close. */
  closer.rc = 1;
  uv_thread_t tid;
  assert_int_equal(uv_thread_create(&tid, close_there, &closer), 0);
  assert_int_equal(uv_thread_join(&tid), 0);
  assert_int_equal(closer.rc, 0);
  t_loop_free(loop); /* runs the close to its end on this thread */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(loop_run_by_a_second_thread_while_main_submits),
      T_TEST(pool_created_on_a_helper_thread),
      T_TEST(close_from_another_thread_while_the_loop_runs_is_einval),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
