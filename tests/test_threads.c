/* Any thread may submit, use futures and read stats: from work, from
 * callbacks and from threads the pool does not know. */
#include "util.h"

#include <stdlib.h>

typedef struct {
  uvpool_t *pool;
  _Atomic int leaves;
  int depth;
} tree_t;

typedef struct {
  tree_t *tree;
  int depth;
} node_t;

/* Each task submits two children until depth 0: nested submission from
 * worker threads. */
static int spawn_children(void *arg, void **result) {
  node_t *n = arg;
  uvpool_stats_t s;
  (void)result;
  if (uvpool_stats(n->tree->pool, &s) != 0 || s.running == 0)
    return UV_EIO;
  if (n->depth == 0) {
    atomic_fetch_add(&n->tree->leaves, 1);
    free(n);
    return 0;
  }
  for (int i = 0; i < 2; i++) {
    node_t *c = malloc(sizeof(*c));
    c->tree = n->tree;
    c->depth = n->depth - 1;
    if (uvpool_submit(n->tree->pool, spawn_children, c, NULL) != 0)
      return UV_EIO;
  }
  free(n);
  return 0;
}

static void work_submits_more_work(void **state) {
  static tree_t t; /* its tasks read it, even after a failure */
  (void)state;
  uv_loop_t *loop = t_loop_new();
  t.pool = t_pool_new(loop, NULL);
  atomic_init(&t.leaves, 0);
  node_t *root = malloc(sizeof(*root));
  root->tree = &t;
  root->depth = 8;
  assert_int_equal(uvpool_submit(t.pool, spawn_children, root, NULL), 0);
  /* Nested submits from workers are adopted as the loop sees them. */
  while (t_stats(t.pool).completed < 511)
    uv_run(loop, UV_RUN_ONCE);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(atomic_load(&t.leaves), 256);
  uvpool_stats_t s = t_stats(t.pool);
  assert_int_equal(s.submitted, 511);
  assert_int_equal(s.completed, 511);
  t_pool_close(t.pool, 0);
  t_loop_free(loop);
}

typedef struct {
  uvpool_t *pool;
  int remaining;
  int calls;
} chain_t;

static void chain_cb(uvpool_future_t *f, void *data) {
  chain_t *c = data;
  uvpool_future_t *next = NULL;
  (void)f;
  c->calls++;
  if (--c->remaining == 0)
    return;
  assert_int_equal(uvpool_submit(c->pool, t_work_ok, NULL, &next), 0);
  assert_int_equal(uvpool_future_on_done(next, chain_cb, c), 0);
  uvpool_future_unref(next);
}

static void callback_submits_follow_up_work(void **state) {
  chain_t c;
  uvpool_future_t *f = NULL;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  c.pool = t_pool_new(loop, NULL);
  c.remaining = 100;
  c.calls = 0;
  assert_int_equal(uvpool_submit(c.pool, t_work_ok, NULL, &f), 0);
  assert_int_equal(uvpool_future_on_done(f, chain_cb, &c), 0);
  uvpool_future_unref(f);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(c.calls, 100);
  t_pool_close(c.pool, 0);
  t_loop_free(loop);
}

typedef struct {
  uvpool_t *pool;
  int ok;
} remote_t;

static void remote_main(void *arg) {
  remote_t *r = arg;
  for (int i = 0; i < 200; i++) {
    uvpool_future_t *f = NULL;
    uvpool_stats_t s;
    if (uvpool_submit(r->pool, t_work_ok, r, &f) != 0 ||
        uvpool_future_wait(f, -1) != 0 ||
        uvpool_future_state(f) != UVPOOL_DONE || uvpool_future_result(f) != r ||
        uvpool_future_cancel(f) != UV_EBUSY || uvpool_stats(r->pool, &s) != 0)
      return;
    uvpool_future_unref(f);
  }
  r->ok = 1;
}

static void foreign_threads_use_the_whole_api(void **state) {
  uv_thread_t tid[2];
  static remote_t r[2]; /* its threads use it, even after a failure */
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  for (int i = 0; i < 2; i++) {
    r[i] = (remote_t){pool, 0};
    assert_int_equal(uv_thread_create(&tid[i], remote_main, &r[i]), 0);
  }
  for (int i = 0; i < 2; i++) {
    assert_int_equal(uv_thread_join(&tid[i]), 0);
    assert_int_equal(r[i].ok, 1);
  }
  (void)t_stats(pool);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(t_stats(pool).completed, 400);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(work_submits_more_work),
      T_TEST(callback_submits_follow_up_work),
      T_TEST(foreign_threads_use_the_whole_api),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
