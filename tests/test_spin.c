/* Spinning that pays for itself (supply.c). No completion waits for its
 * worker's spin or park: a worker turns idle only once its last task's
 * callback can run. The predictors spin only while recent waits were
 * shorter than a wake-up; spins that keep missing stop until spins that
 * hit have paid for them; spin_us caps every spin, and 0 means never.
 *
 * The rules are checked through the supply's own functions on a pool
 * whose workers have not started (nothing else touches its predictors),
 * and end to end through a hook where a worker turns idle. */
#include "util.h"

#include <string.h>

/* ---- the rules, on a pool with no worker -------------------------------- */

#define US 1000u
#define MS 1000000u

static uvpool_t *pool_with_spin(uv_loop_t *loop, unsigned spin_us) {
  uvpool_options_t o;
  uvpool_options_init(&o);
  o.spin_us = spin_us;
  return t_pool_new(loop, &o);
}

static void saw_waits(uvpool__spinpred_t *p, uint64_t ns, int n) {
  for (int i = 0; i < n; i++)
    uvpool__spin_saw_wait(p, ns);
}

static void idle_workers_spin_only_while_waits_are_short(void **state) {
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = pool_with_spin(loop, 1000);
  uvpool__spinpred_t *idle = &pool->g->supply.idle;
  saw_waits(idle, 1 * MS, 32); /* a task every millisecond */
  assert_int_equal(uvpool__spin_len_idle(pool->g, false), 0);
  saw_waits(idle, 1 * US, 32); /* back to back */
  uint64_t len = uvpool__spin_len_idle(pool->g, false);
  assert_true(len > 0);
  assert_true(len <= 1000 * US);
  saw_waits(idle, 1 * MS, 32); /* and sparse again */
  assert_int_equal(uvpool__spin_len_idle(pool->g, false), 0);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void loop_thread_waits_only_while_completions_come_soon(void **state) {
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = pool_with_spin(loop, 1000);
  saw_waits(&pool->wait.pred, 1 * MS, 32);
  assert_int_equal(uvpool__spin_len_loop(pool, false), 0);
  saw_waits(&pool->wait.pred, 1 * US, 32);
  assert_true(uvpool__spin_len_loop(pool, false) > 0);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

/* A probe spins whatever the prediction, for at most two of the workers'
 * wake-ups: the only way a loop that stopped waiting learns that
 * completions come back soon again. */
static void a_probe_spins_for_at_most_two_wake_ups(void **state) {
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = pool_with_spin(loop, 1000);
  atomic_store(&pool->g->supply.wake_hint, 20 * US);
  saw_waits(&pool->wait.pred, 1 * MS, 32);
  uint64_t len = uvpool__spin_len_loop(pool, true);
  assert_true(len > 0);
  assert_true(len <= 40 * US);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void spin_us_caps_every_spin(void **state) {
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = pool_with_spin(loop, 3);
  saw_waits(&pool->g->supply.idle, 1 * US, 32);
  saw_waits(&pool->wait.pred, 1 * US, 32);
  assert_true(uvpool__spin_len_idle(pool->g, false) <= 3 * US);
  assert_true(uvpool__spin_len_idle(pool->g, true) <= 3 * US);
  assert_true(uvpool__spin_len_idle(pool->g, true) > 0);
  assert_true(uvpool__spin_len_loop(pool, false) <= 3 * US);
  assert_true(uvpool__spin_len_loop(pool, true) <= 3 * US);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void spin_us_zero_never_spins(void **state) {
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = pool_with_spin(loop, 0);
  saw_waits(&pool->g->supply.idle, 1 * US, 32);
  saw_waits(&pool->wait.pred, 1 * US, 32);
  assert_int_equal(uvpool__spin_len_idle(pool->g, false), 0);
  assert_int_equal(uvpool__spin_len_idle(pool->g, true), 0);
  assert_int_equal(uvpool__spin_len_loop(pool, false), 0);
  assert_int_equal(uvpool__spin_len_loop(pool, true), 0);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

/* Misses beyond the slack stop every spin, however short the predicted
 * wait; hits, each worth the wake-up it saved, let spinning resume. */
static void spins_that_keep_missing_stop_until_hits_pay_for_them(void **state) {
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = pool_with_spin(loop, 1000);
  atomic_store(&pool->g->supply.wake_hint, 20 * US);
  saw_waits(&pool->g->supply.idle, 1 * US, 32);
  assert_true(uvpool__spin_len_idle(pool->g, false) > 0);
  for (int i = 0; i < 100; i++)
    uvpool__spin_spent(pool->g, 100 * US, false); /* 10 ms of misses */
  assert_int_equal(uvpool__spin_len_idle(pool->g, false), 0);
  assert_int_equal(uvpool__spin_len_loop(pool, true), 0);
  for (int i = 0; i < 1000; i++)
    uvpool__spin_spent(pool->g, 1 * US, true); /* 20 ms saved */
  assert_true(uvpool__spin_len_idle(pool->g, false) > 0);
  uvpool_stats_t st = t_stats(pool);
  assert_int_equal(st.spin_wasted_ns, 10 * MS);
  assert_int_equal(st.spin_ns, 11 * MS);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

/* ---- end to end: a worker idles only after its completion ran ----------- */

/* What the hook sees; one test at a time. A worker that turns idle after
 * a task waits there, under the pool lock, until that task's callback has
 * run: were the completion published only after the worker's spin or
 * park, it never would, and the bounded wait records the failure. */
static struct {
  const void *pool;
  uv_mutex_t mu;
  uv_cond_t cv;
  unsigned ran, delivered; /* under mu */
  _Atomic unsigned late;   /* idle waits that timed out */
} H;

#define HANG_NS (2ull * 1000 * MS) /* a hang detector, not a timing */

static void idle_hook(uvpool__hook_point_t point, const void *pool) {
  if (point != UVPOOL__HOOK_WORKER_IDLE || pool != H.pool ||
      atomic_load(&H.late) != 0) /* failed once: hold nothing more */
    return;
  uv_mutex_lock(&H.mu);
  while (H.delivered < H.ran)
    if (uv_cond_timedwait(&H.cv, &H.mu, HANG_NS) != 0) {
      atomic_fetch_add(&H.late, 1);
      break;
    }
  uv_mutex_unlock(&H.mu);
}

static int counted_work(void *arg, void **result) {
  (void)arg;
  (void)result;
  uv_mutex_lock(&H.mu);
  H.ran++;
  uv_mutex_unlock(&H.mu);
  return 0;
}

typedef struct {
  uvpool_t *pool;
  int left;
} chain_t;

static void chain_step(uvpool_future_t *f, void *data);

static void chain_submit(chain_t *c) {
  uvpool_future_t *f;
  assert_int_equal(uvpool_submit(c->pool, counted_work, NULL, &f), 0);
  assert_int_equal(uvpool_future_on_done(f, chain_step, c), 0);
  uvpool_future_unref(f);
}

static void chain_step(uvpool_future_t *f, void *data) {
  chain_t *c = data;
  (void)f;
  uv_mutex_lock(&H.mu);
  H.delivered++;
  uv_cond_broadcast(&H.cv);
  uv_mutex_unlock(&H.mu);
  if (--c->left > 0)
    chain_submit(c);
}

static void run_chain(unsigned spin_us, int n) {
  uv_loop_t *loop = t_loop_new();
  uvpool_options_t o;
  uvpool_options_init(&o);
  o.spin_us = spin_us;
  o.max_workers = 1;
  chain_t c = {NULL, n};
  c.pool = t_pool_new(loop, &o);
  memset(&H, 0, sizeof(H));
  assert_int_equal(uv_mutex_init(&H.mu), 0);
  assert_int_equal(uv_cond_init(&H.cv), 0);
  H.pool = c.pool;
  uvpool__hook_set(idle_hook);
  chain_submit(&c);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  uvpool__hook_set(NULL);
  assert_int_equal(c.left, 0);
  assert_int_equal(atomic_load(&H.late), 0);
  t_pool_close(c.pool, 0);
  t_loop_free(loop);
  uv_cond_destroy(&H.cv);
  uv_mutex_destroy(&H.mu);
}

static void completion_runs_before_its_worker_spins_or_parks(void **state) {
  (void)state;
  run_chain(1000, 500); /* spins allowed: the predictors decide */
}

static void completion_runs_before_its_worker_parks_without_spin(void **state) {
  (void)state;
  run_chain(0, 200);
}

static void a_pool_with_spin_us_zero_never_spins(void **state) {
  chain_t c = {NULL, 300};
  (void)state;
  uv_loop_t *loop = t_loop_new();
  c.pool = pool_with_spin(loop, 0);
  memset(&H, 0, sizeof(H));
  assert_int_equal(uv_mutex_init(&H.mu), 0);
  assert_int_equal(uv_cond_init(&H.cv), 0);
  chain_submit(&c);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(c.left, 0);
  uvpool_stats_t st = t_stats(c.pool);
  assert_int_equal(st.spin_ns, 0);
  assert_int_equal(st.spin_wasted_ns, 0);
  assert_true(st.busy_ns > 0);
  t_pool_close(c.pool, 0);
  t_loop_free(loop);
  uv_cond_destroy(&H.cv);
  uv_mutex_destroy(&H.mu);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(idle_workers_spin_only_while_waits_are_short),
      T_TEST(loop_thread_waits_only_while_completions_come_soon),
      T_TEST(a_probe_spins_for_at_most_two_wake_ups),
      T_TEST(spin_us_caps_every_spin),
      T_TEST(spin_us_zero_never_spins),
      T_TEST(spins_that_keep_missing_stop_until_hits_pay_for_them),
      T_TEST(completion_runs_before_its_worker_spins_or_parks),
      T_TEST(completion_runs_before_its_worker_parks_without_spin),
      T_TEST(a_pool_with_spin_us_zero_never_spins),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
