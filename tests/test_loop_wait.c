/* The loop thread's short wait for completions of work its callbacks just
 * submitted: a chain of round trips delivers every result in order, and a
 * completion that comes after the wait gave up still wakes the loop. */
#include "util.h"

#include <stdint.h>

typedef struct {
  uvpool_t *pool;
  int n, done, bad;
} chain_t;

static void chain_step(uvpool_future_t *f, void *data);

static void chain_submit(chain_t *c) {
  uvpool_future_t *f;
  assert_int_equal(
      uvpool_submit(c->pool, t_work_ok, (void *)(intptr_t)c->done, &f), 0);
  assert_int_equal(uvpool_future_on_done(f, chain_step, c), 0);
  uvpool_future_unref(f);
}

static void chain_step(uvpool_future_t *f, void *data) {
  chain_t *c = data;
  if ((intptr_t)uvpool_future_result(f) != c->done)
    c->bad++;
  if (++c->done < c->n)
    chain_submit(c);
}

static void chain_of_round_trips_delivers_every_result_in_order(void **state) {
  chain_t c = {NULL, 2000, 0, 0};
  (void)state;
  uv_loop_t *loop = t_loop_new();
  c.pool = t_pool_new(loop, NULL);
  chain_submit(&c);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(c.done, c.n);
  assert_int_equal(c.bad, 0);
  t_pool_close(c.pool, 0);
  t_loop_free(loop);
}

typedef struct {
  uvpool_t *pool;
  t_gate_t *gate;
  uv_timer_t timer;
  int delivered;
} late_t;

static void late_open(uv_timer_t *t) {
  late_t *l = t->data;
  uv_sem_post(&l->gate->go);
  uv_close((uv_handle_t *)t, NULL);
}

static void late_done(uvpool_future_t *f, void *data) {
  late_t *l = data;
  (void)f;
  l->delivered++;
}

/* Runs on the loop thread: submits a task that cannot finish until a
 * timer, which runs only after this callback and the loop's wait for
 * completions returned, opens its gate. */
static void late_first(uvpool_future_t *f, void *data) {
  late_t *l = data;
  uvpool_future_t *g;
  (void)f;
  assert_int_equal(uvpool_submit(l->pool, t_work_gate, l->gate, &g), 0);
  assert_int_equal(uvpool_future_on_done(g, late_done, l), 0);
  uvpool_future_unref(g);
  assert_int_equal(uv_timer_start(&l->timer, late_open, 0, 0), 0);
}

static void
completion_after_the_wait_gave_up_still_wakes_the_loop(void **state) {
  late_t l;
  uvpool_future_t *f;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  l.gate = t_gate_new();
  l.delivered = 0;
  l.pool = t_pool_new(loop, NULL);
  assert_int_equal(uv_timer_init(loop, &l.timer), 0);
  l.timer.data = &l;
  assert_int_equal(uvpool_submit(l.pool, t_work_ok, NULL, &f), 0);
  assert_int_equal(uvpool_future_on_done(f, late_first, &l), 0);
  uvpool_future_unref(f);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(l.delivered, 1);
  t_pool_close(l.pool, 0);
  t_loop_free(loop);
  t_gate_free(l.gate);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(chain_of_round_trips_delivers_every_result_in_order),
      T_TEST(completion_after_the_wait_gave_up_still_wakes_the_loop),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
