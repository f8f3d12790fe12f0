/* A task submitted while one worker is parked and another is still in
 * thread_init wakes the parked worker: a starting worker does not count
 * as awake. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "util.h"

static _Atomic int ninit;
static uv_sem_t *init2_entered, *init2_go;

static int slow_init(void *data) {
  (void)data;
  if (atomic_fetch_add(&ninit, 1) == 1) { /* the second worker */
    uv_sem_post(init2_entered);
    uv_sem_wait(init2_go);
  }
  return 0;
}

static bool one_parked(void *arg) {
  uvpool_t *p = arg;
  bool r;
  uv_mutex_lock(&p->g->mu);
  r = p->g->supply.nparked == 1;
  uv_mutex_unlock(&p->g->mu);
  return r;
}

static void parked_worker_not_woken_during_thread_init(void **state) {
  uvpool_options_t o;
  uvpool_t *pool;
  uvpool_future_t *a = NULL, *b = NULL, *c = NULL;
  t_gate_t *g;
  int rc;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  init2_entered = t_sem_new(0);
  init2_go = t_sem_new(0);
  uvpool_options_init(&o);
  o.max_workers = 2;
  o.spin_us = 0;
  o.idle_timeout_ms = 60000;
  o.thread_init = slow_init;
  pool = t_pool_new(loop, &o);

  assert_int_equal(uvpool_submit(pool, t_work_gate, g, &a), 0); /* W1 */
  uv_sem_wait(&g->started);
  assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &b), 0); /* +W2 */
  uv_sem_wait(init2_entered); /* W2 is inside thread_init */
  uv_sem_post(&g->go);        /* W1 finishes A, runs B, parks */
  assert_int_equal(uvpool_future_wait(b, -1), 0);
  t_run_until(loop, one_parked, pool);

  assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &c), 0);
  /* W1 is parked and ready; C should start at once. 10 s is a bound. */
  rc = uvpool_future_wait(c, 10000);
  print_message("wait(C) = %s with W1 parked, W2 in thread_init\n",
                rc == 0 ? "0" : uv_err_name(rc));
  uv_sem_post(init2_go);
  assert_int_equal(uvpool_future_wait(c, -1), 0);
  uvpool_future_unref(a);
  uvpool_future_unref(b);
  uvpool_future_unref(c);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(g);
  assert_int_equal(rc, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(parked_worker_not_woken_during_thread_init),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
