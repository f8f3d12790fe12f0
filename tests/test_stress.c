/* Stress: a million tasks under concurrent cancellation, waiting and nested
 * submission, and a close in the middle of a submit storm. Whatever the
 * interleaving, every accepted task settles exactly once, every registered
 * callback runs exactly once, rejected work never runs and the statistics
 * add up.
 *
 * UVPOOL_STRESS_N (environment) sets the task count; ctest passes the
 * UVPOOL_STRESS_N cache variable, so sanitizer and valgrind runs can be
 * reduced without a rebuild. */
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka's assertions longjmp and must stay on the test's thread; the other
 * threads record failures here and the test asserts none happened. */
static _Atomic unsigned long check_failures;

static void check_failed(const char *what, int line) {
  if (atomic_fetch_add(&check_failures, 1) < 20)
    fprintf(stderr, "test_stress.c:%d: check failed: %s\n", line, what);
}

#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c))                                                                  \
      check_failed(#c, __LINE__);                                              \
  } while (0)

static size_t stress_n(void) {
  const char *s = getenv("UVPOOL_STRESS_N");
  char *end = NULL;
  unsigned long long n;
  if (s == NULL || *s == '\0')
    return 1000000;
  n = strtoull(s, &end, 10);
  if (*end != '\0' || n < 1000)
    return 1000; /* small enough to be quick, big enough for every kind */
  return (size_t)n;
}

static bool is_settled(uvpool_state_t st) {
  return st == UVPOOL_DONE || st == UVPOOL_FAILED || st == UVPOOL_CANCELLED;
}

/* Counters of one snapshot add up: every submission is settled (by state),
 * queued or running. */
static void check_stats_balance(uvpool_t *pool) {
  uvpool_stats_t s;
  CHECK(uvpool_stats(pool, &s) == 0);
  CHECK(s.submitted ==
        s.completed + s.failed + s.cancelled + s.queued + s.running);
  CHECK(s.running <= s.workers);
}

/* A single-producer, single-consumer hand-off of futures: the semaphore
 * orders the slot write before the read. NULL ends the stream. */
typedef struct {
  uvpool_future_t **slot;
  size_t n, cap;
  uv_sem_t *ready;
} handoff_t;

static void handoff_init(handoff_t *h, size_t cap) {
  h->slot = calloc(cap, sizeof(*h->slot));
  assert_non_null(h->slot);
  h->n = 0;
  h->cap = cap;
  h->ready = t_sem_new(0);
}

static void handoff_put(handoff_t *h, uvpool_future_t *f) {
  CHECK(h->n < h->cap);
  if (h->n < h->cap)
    h->slot[h->n++] = f;
  uv_sem_post(h->ready);
}

static uvpool_future_t *handoff_get(handoff_t *h, size_t *next) {
  uv_sem_wait(h->ready);
  return h->slot[(*next)++];
}

static void handoff_destroy(handoff_t *h) {
  t_sem_free(h->ready);
  free(h->slot);
}

/* ---- (a) many tasks ------------------------------------------------------
 * Task ids: roots [0, nroots) come from the producer thread; child 2k comes
 * from the work of root 16k + 1, child 2k + 1 from the done callback of root
 * 16k + 2. The kinds are disjoint, so every count is known in advance:
 *   root % 4 == 0    fire-and-forget
 *   root % 64 == 5   cancelled by the canceller thread; its work polls
 *                    uvpool_cancel_requested() for a while
 *   root % 64 == 7   uvpool_submit_ex with priority 1
 *   root % 8 == 3    a second done callback
 *   root % 128 == 9  waited on by both waiter threads; waiter 0 registers
 *                    a callback after the wait (often after delivery)
 *   id % 7 == 0      work fails with EIO (a positive errno if id % 14 == 0)
 */

#define WINDOW 8192 /* roots in flight: bounds memory, not correctness */

typedef struct {
  _Atomic uint8_t ran;     /* times its work ran */
  _Atomic uint8_t settled; /* settlements its tracking callback saw */
} rec_t;

static struct {
  uvpool_t *pool;
  size_t nroots, nchildren;
  rec_t *rec;
  uv_sem_t *window;
  handoff_t cancel_q, wait_q[2];
  uv_async_t producer_done;
  _Atomic unsigned long cb_registered;
  unsigned long cb_delivered; /* loop thread only, like the two below */
  unsigned long by_state[UVPOOL_CANCELLED + 1];
  unsigned long cancelled_unstarted;
  _Atomic unsigned long cancel_ok, cancel_busy, coop_cancel;
  _Atomic unsigned long children_submitted;
  _Atomic unsigned long faf_done, faf_failed;
} S;

static size_t id_of(const rec_t *r) { return (size_t)(r - S.rec); }
static bool is_faf(size_t id) { return id < S.nroots && id % 4 == 0; }
static bool is_cancel_sample(size_t id) {
  return id < S.nroots && id % 64 == 5;
}

static int outcome(size_t id, rec_t *r, void **result) {
  if (id % 14 == 0)
    return 5; /* EIO as a positive errno: the library negates it */
  if (id % 7 == 0)
    return UV_EIO;
  *result = r;
  return 0;
}

static void on_settled(uvpool_future_t *f, void *data);

static void track(uvpool_future_t *f, uvpool_done_cb cb, void *data) {
  CHECK(uvpool_future_on_done(f, cb, data) == 0);
  atomic_fetch_add(&S.cb_registered, 1);
}

static int child_work(void *arg, void **result) {
  rec_t *r = arg;
  atomic_fetch_add(&r->ran, 1);
  return outcome(id_of(r), r, result);
}

/* From a worker (inside work) or from the loop (inside a callback). */
static void submit_child(size_t child) {
  uvpool_future_t *f = NULL;
  rec_t *r = &S.rec[S.nroots + child];
  int rc = uvpool_submit(S.pool, child_work, r, &f);
  CHECK(rc == 0);
  if (rc != 0)
    return;
  atomic_fetch_add(&S.children_submitted, 1);
  track(f, on_settled, r);
  uvpool_future_unref(f);
}

static int root_work(void *arg, void **result) {
  rec_t *r = arg;
  size_t id = id_of(r);
  int rc;
  atomic_fetch_add(&r->ran, 1);
  if (is_cancel_sample(id)) {
    /* Long enough for the canceller to catch some of these running. */
    for (int i = 0; i < 2000; i++) {
      if (uvpool_cancel_requested()) {
        atomic_fetch_add(&S.coop_cancel, 1);
        return UV_ECANCELED;
      }
    }
  }
  if (id % 16 == 1)
    submit_child(id / 16 * 2);
  rc = outcome(id, r, result);
  if (is_faf(id)) {
    atomic_fetch_add(rc == 0 ? &S.faf_done : &S.faf_failed, 1);
    uv_sem_post(S.window); /* nobody else hears of a fire-and-forget */
  }
  return rc;
}

/* The tracking callback of every task with a future. */
static void on_settled(uvpool_future_t *f, void *data) {
  rec_t *r = data;
  size_t id = id_of(r);
  uvpool_state_t st = uvpool_future_state(f);
  int status = uvpool_future_status(f);
  unsigned ran = atomic_load(&r->ran);
  CHECK(t_on_loop_thread());
  CHECK(is_settled(st));
  atomic_fetch_add(&r->settled, 1);
  S.cb_delivered++;
  if (is_settled(st))
    S.by_state[st]++;
  switch (st) {
  case UVPOOL_DONE:
    CHECK(status == 0 && ran == 1 && uvpool_future_result(f) == r);
    break;
  case UVPOOL_FAILED:
    CHECK(status == UV_EIO && ran == 1 && uvpool_future_result(f) == NULL);
    break;
  case UVPOOL_CANCELLED:
    CHECK(status == UV_ECANCELED && is_cancel_sample(id) && ran <= 1);
    if (ran == 0)
      S.cancelled_unstarted++;
    break;
  default:
    break;
  }
  if (id < S.nroots) {
    if (id % 16 == 2)
      submit_child(id / 16 * 2 + 1);
    uv_sem_post(S.window);
  }
}

/* Registered second: callbacks of one future run in registration order. */
static void on_second(uvpool_future_t *f, void *data) {
  rec_t *r = data;
  CHECK(t_on_loop_thread());
  CHECK(atomic_load(&r->settled) == 1);
  CHECK(is_settled(uvpool_future_state(f)));
  S.cb_delivered++;
}

static void on_late(uvpool_future_t *f, void *data) {
  (void)data;
  CHECK(t_on_loop_thread());
  CHECK(is_settled(uvpool_future_state(f)));
  S.cb_delivered++;
}

static void producer_main(void *arg) {
  (void)arg;
  for (size_t id = 0; id < S.nroots; id++) {
    rec_t *r = &S.rec[id];
    uvpool_future_t *f = NULL;
    int rc;
    uv_sem_wait(S.window);
    if (is_faf(id)) {
      CHECK(uvpool_submit(S.pool, root_work, r, NULL) == 0);
      continue;
    }
    if (id % 64 == 7) {
      uvpool_task_options_t o;
      uvpool_task_options_init(&o);
      o.priority = 1;
      rc = uvpool_submit_ex(S.pool, &o, root_work, r, &f);
    } else {
      rc = uvpool_submit(S.pool, root_work, r, &f);
    }
    CHECK(rc == 0);
    if (rc != 0) {
      uv_sem_post(S.window);
      continue;
    }
    track(f, on_settled, r);
    if (id % 8 == 3)
      track(f, on_second, r);
    if (is_cancel_sample(id))
      handoff_put(&S.cancel_q, uvpool_future_ref(f));
    if (id % 128 == 9) {
      handoff_put(&S.wait_q[0], uvpool_future_ref(f));
      handoff_put(&S.wait_q[1], uvpool_future_ref(f));
    }
    uvpool_future_unref(f);
    if (id % 65536 == 0)
      check_stats_balance(S.pool); /* from a thread the pool does not know */
  }
  handoff_put(&S.cancel_q, NULL);
  handoff_put(&S.wait_q[0], NULL);
  handoff_put(&S.wait_q[1], NULL);
  uv_async_send(&S.producer_done);
}

static void canceller_main(void *arg) {
  size_t next = 0;
  uvpool_future_t *f;
  (void)arg;
  while ((f = handoff_get(&S.cancel_q, &next)) != NULL) {
    int rc = uvpool_future_cancel(f);
    if (rc == 0) {
      /* Settled under the pool lock before cancel returned. */
      atomic_fetch_add(&S.cancel_ok, 1);
      CHECK(uvpool_future_state(f) == UVPOOL_CANCELLED);
      CHECK(uvpool_future_status(f) == UV_ECANCELED);
    } else {
      CHECK(rc == UV_EBUSY);
      atomic_fetch_add(&S.cancel_busy, 1);
    }
    uvpool_future_unref(f);
  }
}

static void waiter_main(void *arg) {
  int which = (int)(intptr_t)arg;
  size_t next = 0;
  uvpool_future_t *f;
  while ((f = handoff_get(&S.wait_q[which], &next)) != NULL) {
    /* The bound only turns a lost wake-up into a failure, not a hang. */
    CHECK(uvpool_future_wait(f, 60000) == 0);
    CHECK(is_settled(uvpool_future_state(f)));
    CHECK(uvpool_future_status(f) != UV_EBUSY);
    if (which == 0 && next % 2 == 0)
      track(f, on_late, NULL);
    uvpool_future_unref(f);
  }
}

static void on_producer_done(uv_async_t *h) {
  uv_close((uv_handle_t *)h, NULL);
}

static void many_tasks_settle_once_under_cancel_wait_and_nesting(void **state) {
  uv_thread_t producer, canceller, waiter[2];
  uvpool_stats_t s;
  size_t n = stress_n(), total;
  (void)state;
  memset(&S, 0, sizeof(S));
  atomic_store(&check_failures, 0);
  /* Children add two per 16 roots: about n tasks in all. */
  S.nroots = (n - n / 9) & ~(size_t)15;
  S.nchildren = S.nroots / 8;
  total = S.nroots + S.nchildren;
  S.rec = calloc(total, sizeof(*S.rec));
  assert_non_null(S.rec);
  S.window = t_sem_new(WINDOW);
  handoff_init(&S.cancel_q, S.nroots / 64 + 2);
  handoff_init(&S.wait_q[0], S.nroots / 128 + 2);
  handoff_init(&S.wait_q[1], S.nroots / 128 + 2);

  uv_loop_t *loop = t_loop_new();
  S.pool = t_pool_new(loop, NULL);
  /* Keeps uv_run() going until the last root is submitted; from then on
   * the pool's own handle holds the loop while anything is outstanding. */
  assert_int_equal(uv_async_init(loop, &S.producer_done, on_producer_done), 0);
  assert_int_equal(uv_thread_create(&canceller, canceller_main, NULL), 0);
  for (int i = 0; i < 2; i++)
    assert_int_equal(
        uv_thread_create(&waiter[i], waiter_main, (void *)(intptr_t)i), 0);
  assert_int_equal(uv_thread_create(&producer, producer_main, NULL), 0);

  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_thread_join(&producer), 0);
  assert_int_equal(uv_thread_join(&canceller), 0);
  assert_int_equal(uv_thread_join(&waiter[0]), 0);
  assert_int_equal(uv_thread_join(&waiter[1]), 0);

  /* uv_run() returned: everything settled and was delivered, except
   * callbacks the waiter registered late, which the close delivers. */
  s = t_stats(S.pool);
  t_pool_close(S.pool, 0);
  t_loop_free(loop);

  assert_int_equal(atomic_load(&check_failures), 0);
  assert_int_equal(atomic_load(&S.children_submitted), S.nchildren);
  assert_int_equal(S.cb_delivered, atomic_load(&S.cb_registered));
  assert_int_equal(s.queued, 0);
  assert_int_equal(s.running, 0);
  assert_int_equal(s.submitted, total);
  assert_int_equal(s.submitted, s.completed + s.failed + s.cancelled);
  assert_int_equal(s.completed,
                   S.by_state[UVPOOL_DONE] + atomic_load(&S.faf_done));
  assert_int_equal(s.failed,
                   S.by_state[UVPOOL_FAILED] + atomic_load(&S.faf_failed));
  assert_int_equal(s.cancelled, S.by_state[UVPOOL_CANCELLED]);
  assert_int_equal(s.cancelled,
                   atomic_load(&S.cancel_ok) + atomic_load(&S.coop_cancel));
  assert_int_equal(S.cancelled_unstarted, atomic_load(&S.cancel_ok));
  assert_int_equal(atomic_load(&S.cancel_ok) + atomic_load(&S.cancel_busy),
                   (S.nroots + 58) / 64);
  for (size_t id = 0; id < total; id++) {
    unsigned ran = atomic_load(&S.rec[id].ran);
    unsigned settled = atomic_load(&S.rec[id].settled);
    if (is_faf(id)) {
      assert_int_equal(ran, 1);
      assert_int_equal(settled, 0);
    } else {
      assert_int_equal(settled, 1);
      assert_true(ran <= 1);
    }
  }
  printf("stress: %zu tasks, %lu cancelled before start, %lu cooperatively, "
         "%lu cancels too late, peak %u workers\n",
         total, atomic_load(&S.cancel_ok), atomic_load(&S.coop_cancel),
         atomic_load(&S.cancel_busy), s.peak_workers);

  handoff_destroy(&S.cancel_q);
  handoff_destroy(&S.wait_q[0]);
  handoff_destroy(&S.wait_q[1]);
  t_sem_free(S.window);
  free(S.rec);
}

/* ---- (b) close in a submit storm -----------------------------------------
 * Two threads submit as fast as they can (fire-and-forget, with a future,
 * and through uvpool_submit_ex) while the loop thread closes the pool. A
 * task that blocks a worker until both producers stopped keeps the close
 * from finishing while they still hold the pool pointer: after the close
 * callback the pool is gone. */

enum { STORM_FAF, STORM_FUTURE, STORM_EX };

typedef struct {
  _Atomic uint8_t ran;
  uint8_t settled; /* loop thread only */
  bool accepted, rejected;
} srec_t;

typedef struct storm_s storm_t;

typedef struct {
  storm_t *st;
  srec_t *rec;
  uvpool_future_t **fut;
  size_t cap, attempts;
  unsigned long accepted, rejected;
  uv_thread_t tid;
} producer_t;

struct storm_s {
  uvpool_t *pool;
  unsigned flags;
  size_t reach; /* submissions each producer makes before the close */
  uv_sem_t *reached, *closed, *stopped, *holder_started;
  _Atomic unsigned long cb_registered;
  unsigned long cb_delivered;
  bool close_cb_ran;
  unsigned long delivered_at_close;
  uvpool_stats_t final;
  producer_t prod[2];
};

static int storm_work(void *arg, void **result) {
  srec_t *r = arg;
  atomic_fetch_add(&r->ran, 1);
  *result = r;
  return 0;
}

static int holder_work(void *arg, void **result) {
  storm_t *st = arg;
  (void)result;
  uv_sem_post(st->holder_started);
  uv_sem_wait(st->stopped);
  uv_sem_wait(st->stopped);
  return 0;
}

static storm_t *storm; /* the storm in progress, for its callbacks */

static void storm_settled(uvpool_future_t *f, void *data) {
  srec_t *r = data;
  CHECK(t_on_loop_thread());
  CHECK(is_settled(uvpool_future_state(f)));
  r->settled++;
  storm->cb_delivered++;
}

static int storm_submit(producer_t *p, size_t i, uvpool_future_t **f) {
  srec_t *r = &p->rec[i];
  switch (i % 3) {
  case STORM_FAF:
    return uvpool_submit(p->st->pool, storm_work, r, NULL);
  case STORM_FUTURE:
    return uvpool_submit(p->st->pool, storm_work, r, f);
  default: {
    uvpool_task_options_t o;
    uvpool_task_options_init(&o);
    o.priority = (int)(i % 5) - 2;
    return uvpool_submit_ex(p->st->pool, &o, storm_work, r, f);
  }
  }
}

static void storm_producer(void *arg) {
  producer_t *p = arg;
  storm_t *st = p->st;
  size_t i;
  for (i = 0; i < p->cap; i++) {
    srec_t *r = &p->rec[i];
    uvpool_future_t *sentinel = (uvpool_future_t *)p, *f = sentinel;
    int rc = storm_submit(p, i, &f);
    if (i + 1 == st->reach)
      uv_sem_post(st->reached);
    if (rc != 0) {
      CHECK(rc == UV_ESHUTDOWN);
      CHECK(f == sentinel); /* untouched on error */
      r->rejected = true;
      /* Keep going a little: closing never reopens. */
      if (++p->rejected == 64) {
        i++;
        break;
      }
      continue;
    }
    CHECK(p->rejected == 0);
    r->accepted = true;
    p->accepted++;
    if (i % 3 != STORM_FAF) {
      p->fut[i] = f;
      /* The holder keeps the close from finishing: never UV_ESHUTDOWN. */
      CHECK(uvpool_future_on_done(f, storm_settled, r) == 0);
      atomic_fetch_add(&st->cb_registered, 1);
    }
  }
  p->attempts = i;
  if (p->rejected == 0) {
    /* Ran out of room before the close (a starved loop thread): try once
     * more after it, with the spare record. */
    uvpool_future_t *f = NULL;
    uv_sem_wait(st->closed);
    p->rec[p->cap].rejected = true;
    p->attempts = p->cap + 1;
    if (storm_submit(p, p->cap, &f) == UV_ESHUTDOWN)
      p->rejected++;
    CHECK(p->rejected == 1 && f == NULL);
  }
  uv_sem_post(st->stopped);
}

static void storm_closed(uvpool_t *pool, void *data) {
  storm_t *st = data;
  CHECK(t_on_loop_thread());
  CHECK(uvpool_stats(pool, &st->final) == 0);
  st->close_cb_ran = true;
  st->delivered_at_close = st->cb_delivered;
}

/* st: the test's own static storm, since its holder and producers read
 * it, even after a failure (and so after the next test began). */
static void storm_run(storm_t *st, unsigned flags) {
  uvpool_options_t o;
  size_t n = stress_n();
  unsigned long accepted = 0, faf_accepted = 0, faf_ran = 0;
  unsigned long by_state[UVPOOL_CANCELLED + 1] = {0};
  memset(st, 0, sizeof(*st));
  atomic_store(&check_failures, 0);
  storm = st;
  st->flags = flags;
  st->reach = n / 50 < 500 ? 500 : n / 50 > 20000 ? 20000 : n / 50;
  st->reached = t_sem_new(0);
  st->closed = t_sem_new(0);
  st->stopped = t_sem_new(0);
  st->holder_started = t_sem_new(0);
  uv_loop_t *loop = t_loop_new();
  /* One worker besides the holder: the queue grows, so the close finds
   * queued work to drain or cancel. */
  uvpool_options_init(&o);
  o.max_workers = 2;
  st->pool = t_pool_new(loop, &o);
  /* Running before the storm, so UVPOOL_CANCEL_PENDING cannot cancel it. */
  assert_int_equal(uvpool_submit(st->pool, holder_work, st, NULL), 0);
  uv_sem_wait(st->holder_started);

  for (int k = 0; k < 2; k++) {
    producer_t *p = &st->prod[k];
    p->st = st;
    p->cap = 8 * st->reach + 65536;
    p->rec = calloc(p->cap + 1, sizeof(*p->rec));
    p->fut = calloc(p->cap + 1, sizeof(*p->fut));
    assert_non_null(p->rec);
    assert_non_null(p->fut);
    assert_int_equal(uv_thread_create(&p->tid, storm_producer, p), 0);
  }
  uv_sem_wait(st->reached);
  uv_sem_wait(st->reached);
  assert_int_equal(uvpool_close(st->pool, flags, storm_closed, st), 0);
  uv_sem_post(st->closed);
  uv_sem_post(st->closed);
  t_loop_free(loop);
  for (int k = 0; k < 2; k++)
    assert_int_equal(uv_thread_join(&st->prod[k].tid), 0);

  assert_int_equal(atomic_load(&check_failures), 0);
  assert_true(st->close_cb_ran);
  /* The close callback runs last, after every done callback. */
  assert_int_equal(st->delivered_at_close, atomic_load(&st->cb_registered));
  assert_int_equal(st->cb_delivered, atomic_load(&st->cb_registered));
  for (int k = 0; k < 2; k++) {
    producer_t *p = &st->prod[k];
    assert_true(p->rejected > 0);
    for (size_t i = 0; i < p->attempts; i++) {
      srec_t *r = &p->rec[i];
      unsigned ran = atomic_load(&r->ran);
      if (!r->accepted) {
        assert_true(r->rejected);
        assert_int_equal(ran, 0); /* rejected work never runs */
        assert_int_equal(r->settled, 0);
        continue;
      }
      accepted++;
      if (i % 3 == STORM_FAF) {
        assert_true(ran <= 1);
        faf_accepted++;
        faf_ran += ran;
        continue;
      }
      uvpool_state_t s = uvpool_future_state(p->fut[i]);
      assert_int_equal(r->settled, 1);
      assert_true(s == UVPOOL_DONE || s == UVPOOL_CANCELLED);
      by_state[s]++;
      if (s == UVPOOL_DONE) {
        assert_int_equal(ran, 1);
        assert_ptr_equal(uvpool_future_result(p->fut[i]), r);
      } else {
        assert_int_equal(ran, 0);
        assert_int_equal(uvpool_future_status(p->fut[i]), UV_ECANCELED);
        assert_true(flags & UVPOOL_CANCEL_PENDING);
      }
      uvpool_future_unref(p->fut[i]);
    }
    free(p->rec);
    free(p->fut);
  }
  accepted++; /* the holder */
  assert_int_equal(st->final.submitted, accepted);
  assert_int_equal(st->final.submitted, st->final.completed + st->final.failed +
                                            st->final.cancelled);
  assert_int_equal(st->final.failed, 0);
  assert_int_equal(st->final.completed,
                   by_state[UVPOOL_DONE] + faf_ran + 1 /* holder */);
  assert_int_equal(st->final.cancelled,
                   by_state[UVPOOL_CANCELLED] + faf_accepted - faf_ran);
  if (!(flags & UVPOOL_CANCEL_PENDING))
    assert_int_equal(st->final.cancelled, 0);
  printf("storm: %lu accepted, %lu + %lu rejected, %llu cancelled\n", accepted,
         st->prod[0].rejected, st->prod[1].rejected,
         (unsigned long long)st->final.cancelled);
  t_sem_free(st->reached);
  t_sem_free(st->closed);
  t_sem_free(st->stopped);
  t_sem_free(st->holder_started);
}

static void close_in_submit_storm_drains_accepted_work(void **state) {
  static storm_t st;
  (void)state;
  storm_run(&st, 0);
}

static void
close_with_cancel_pending_in_submit_storm_cancels_queued_work(void **state) {
  static storm_t st;
  (void)state;
  storm_run(&st, UVPOOL_CANCEL_PENDING);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(many_tasks_settle_once_under_cancel_wait_and_nesting),
      T_TEST(close_in_submit_storm_drains_accepted_work),
      T_TEST(close_with_cancel_pending_in_submit_storm_cancels_queued_work),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
