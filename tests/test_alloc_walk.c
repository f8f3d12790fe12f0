/* Failure walks: across a scenario that uses every allocating entry point,
 * the n-th allocation fails (once, or from then on), for n = 1, 2, ...
 * until a run no longer reaches the n-th allocation; likewise for thread
 * creation. Each call that meets the failure returns the documented error
 * and changes nothing; what was accepted still settles and runs its
 * callbacks exactly once; nothing leaks (ASan and valgrind builds). */
#include "util.h"

#include <stdio.h>
#include <string.h>

#define MAX_JOBS 16
#define MAX_CBS 48
#define MAX_FUTS 24

typedef struct walk_s walk_t;

typedef struct {
  walk_t *w;
  _Atomic int ran;
  bool gate; /* blocks its worker until the walk opens the gate */
  bool accepted, rejected;
} job_t;

typedef struct {
  int calls;
  bool registered;
} cbslot_t;

struct walk_s {
  uv_loop_t *loop;
  uvpool_t *pool;
  t_gate_t *gate;
  int injected;   /* the error the failure turns into */
  unsigned nerr;  /* calls that returned it */
  unsigned gated; /* accepted gate jobs, each holding a worker */
  job_t job[MAX_JOBS];
  unsigned njob;
  cbslot_t cb[MAX_CBS];
  unsigned ncb;
  uvpool_future_t *fut[MAX_FUTS]; /* every future handed out */
  unsigned nfut;
  uvpool_stats_t before_close;
};

/* Any non-NULL pointer the library must not write. */
#define UNTOUCHED ((uvpool_future_t *)&walk_untouched)
static void *walk_untouched;

static bool ok_or_injected(walk_t *w, int rc) {
  if (rc == 0)
    return true;
  assert_int_equal(rc, w->injected);
  w->nerr++;
  return false;
}

static int walk_work(void *arg, void **result) {
  job_t *j = arg;
  atomic_fetch_add(&j->ran, 1);
  if (j->gate) {
    uv_sem_post(&j->w->gate->started);
    uv_sem_wait(&j->w->gate->go);
  }
  *result = j;
  return 0;
}

static void walk_cb(uvpool_future_t *f, void *data) {
  cbslot_t *c = data;
  assert_true(t_on_loop_thread());
  assert_true(uvpool_future_state(f) >= UVPOOL_DONE);
  c->calls++;
}

static job_t *new_job(walk_t *w, bool gate) {
  job_t *j;
  assert_true(w->njob < MAX_JOBS);
  j = &w->job[w->njob++];
  j->w = w;
  j->gate = gate;
  return j;
}

static uvpool_future_t *keep(walk_t *w, uvpool_future_t *f) {
  assert_true(w->nfut < MAX_FUTS);
  w->fut[w->nfut++] = f;
  return f;
}

/* Settles the bookkeeping of a submission; returns its future or NULL. */
static uvpool_future_t *accepted(walk_t *w, job_t *j, int rc,
                                 uvpool_future_t *f, bool want_future) {
  if (!ok_or_injected(w, rc)) {
    j->rejected = true;
    assert_ptr_equal(f, UNTOUCHED); /* *out untouched on error */
    return NULL;
  }
  j->accepted = true;
  if (!want_future)
    return NULL;
  assert_ptr_not_equal(f, UNTOUCHED);
  return keep(w, f);
}

static uvpool_future_t *submit(walk_t *w, const uvpool_task_options_t *o,
                               bool gate, bool want_future) {
  job_t *j = new_job(w, gate);
  uvpool_future_t *f = UNTOUCHED;
  uvpool_future_t **out = want_future ? &f : NULL;
  int rc = o != NULL ? uvpool_submit_ex(w->pool, o, walk_work, j, out)
                     : uvpool_submit(w->pool, walk_work, j, out);
  return accepted(w, j, rc, f, want_future);
}

static uvpool_future_t *submit_after(walk_t *w, uvpool_future_t **deps,
                                     size_t n, bool want_future) {
  job_t *j = new_job(w, false);
  uvpool_future_t *f = UNTOUCHED;
  int rc = uvpool_submit_after(w->pool, deps, n, walk_work, j,
                               want_future ? &f : NULL);
  return accepted(w, j, rc, f, want_future);
}

enum { ALL, ALL_FAIL_FAST, ANY };

static uvpool_future_t *combine(walk_t *w, int kind, uvpool_future_t **in,
                                size_t n) {
  uvpool_future_t *f = UNTOUCHED;
  int rc = kind == ANY
               ? uvpool_when_any(in, n, &f)
               : uvpool_when_all(
                     in, n, kind == ALL_FAIL_FAST ? UVPOOL_FAIL_FAST : 0, &f);
  if (!ok_or_injected(w, rc)) {
    assert_ptr_equal(f, UNTOUCHED);
    return NULL;
  }
  return keep(w, f);
}

static void on_done(walk_t *w, uvpool_future_t *f) {
  cbslot_t *c;
  if (f == NULL)
    return;
  assert_true(w->ncb < MAX_CBS);
  c = &w->cb[w->ncb++];
  c->registered = ok_or_injected(w, uvpool_future_on_done(f, walk_cb, c));
}

/* The accepted ones among a and b. */
static size_t pick(uvpool_future_t **out, uvpool_future_t *a,
                   uvpool_future_t *b) {
  size_t n = 0;
  if (a != NULL)
    out[n++] = a;
  if (b != NULL)
    out[n++] = b;
  return n;
}

static void open_gates(walk_t *w) {
  for (unsigned i = 0; i < w->gated; i++)
    uv_sem_post(&w->gate->go);
}

/* ---- the allocation scenario ---------------------------------------------
 * One worker (min_workers keeps it) and tasks held behind a gate task make
 * the allocation sequence depend only on the calls made here: no callback
 * is delivered before the final uv_run(). */
static void alloc_scenario(walk_t *w) {
  uvpool_options_t o;
  uvpool_task_options_t to;
  unsigned lane = 0;
  uvpool_future_t *fa, *fc, *fd, *fe, *ff, *in[2];
  size_t n;

  uvpool_options_init(&o);
  o.max_workers = 1;
  o.min_workers = 1;
  if (!ok_or_injected(w, uvpool_new(w->loop, &o, &w->pool))) {
    assert_null(w->pool);
    return;
  }
  if (!ok_or_injected(w, uvpool_lane_new(w->pool, 1, &lane)))
    assert_int_equal(lane, 0); /* untouched */

  /* A holds the worker; three callbacks: the inline slot, then nodes. */
  fa = submit(w, NULL, true, true);
  if (fa != NULL) {
    uv_sem_wait(&w->gate->started);
    w->gated++;
  }
  for (int i = 0; i < 3; i++)
    on_done(w, fa);
  (void)submit(w, NULL, false, false); /* fire-and-forget */
  fc = submit(w, NULL, false, true);
  on_done(w, fc);
  on_done(w, fc);

  uvpool_task_options_init(&to);
  to.priority = 5;
  to.deadline_ms = 60000;
  to.lane = lane;
  fd = submit(w, &to, false, true); /* admitted to the lane */
  on_done(w, fd);
  uvpool_task_options_init(&to);
  to.deadline_ms = 0; /* expires while the gate holds the worker */
  fe = submit(w, &to, false, true);
  on_done(w, fe);
  uvpool_task_options_init(&to);
  to.lane = lane;
  to.priority = -1;                 /* options even without a lane */
  ff = submit(w, &to, false, true); /* parked behind fd in the lane */
  on_done(w, ff);

  if ((n = pick(in, fa, fc)) > 0)
    on_done(w, combine(w, ALL, in, n));
  if ((n = pick(in, fc, fd)) > 0)
    on_done(w, combine(w, ANY, in, n));
  if ((n = pick(in, fe, ff)) > 0)
    on_done(w, combine(w, ALL_FAIL_FAST, in, n));
  if ((n = pick(in, fa, NULL)) > 0)
    on_done(w, submit_after(w, in, n, true));
  if ((n = pick(in, fa, fd)) > 0)
    (void)submit_after(w, in, n, false);

  if (fc != NULL) {
    int rc = uvpool_future_cancel(fc);
    assert_true(rc == 0 || (w->gated == 0 && rc == UV_EBUSY));
  }
  if (ff != NULL) {
    int rc = uvpool_future_cancel(ff);
    assert_true(rc == 0 || (w->gated == 0 && rc == UV_EBUSY));
  }
  if (fa != NULL)
    assert_int_equal(uvpool_future_cancel(fa), UV_EBUSY); /* running */
  if (fe != NULL) {
    assert_int_equal(uvpool_future_wait(fe, -1), 0);
    if (w->gated > 0) {
      assert_int_equal(uvpool_future_state(fe), UVPOOL_CANCELLED);
      assert_int_equal(uvpool_future_status(fe), UV_ETIMEDOUT);
    }
  }

  open_gates(w);
  assert_int_equal(uv_run(w->loop, UV_RUN_DEFAULT), 0);
  /* Settled and delivered: a new callback takes the requeue path. */
  on_done(w, fa);
  w->before_close = t_stats(w->pool);
  t_pool_close(w->pool, 0);
}

/* What holds whatever failed. */
static void walk_verify(walk_t *w) {
  unsigned long accepted_jobs = 0;
  for (unsigned i = 0; i < w->njob; i++) {
    job_t *j = &w->job[i];
    assert_true(j->accepted != j->rejected);
    if (j->rejected)
      assert_int_equal(atomic_load(&j->ran), 0); /* never runs */
    else
      assert_true(atomic_load(&j->ran) <= 1);
    accepted_jobs += j->accepted;
  }
  for (unsigned i = 0; i < w->nfut; i++) {
    uvpool_state_t s = uvpool_future_state(w->fut[i]);
    assert_true(s >= UVPOOL_DONE); /* every accepted future settled */
    if (s == UVPOOL_DONE && uvpool_future_result(w->fut[i]) != NULL &&
        uvpool_future_result(w->fut[i]) >= (void *)&w->job[0] &&
        uvpool_future_result(w->fut[i]) < (void *)&w->job[MAX_JOBS])
      assert_int_equal(
          atomic_load(&((job_t *)uvpool_future_result(w->fut[i]))->ran), 1);
    uvpool_future_unref(w->fut[i]);
  }
  for (unsigned i = 0; i < w->ncb; i++)
    assert_int_equal(w->cb[i].calls, w->cb[i].registered ? 1 : 0);
  if (w->pool != NULL) {
    uvpool_stats_t s = w->before_close;
    assert_int_equal(s.submitted, accepted_jobs);
    assert_int_equal(s.submitted, s.completed + s.failed + s.cancelled);
    assert_int_equal(s.queued + s.running, 0);
  }
}

static void walk_init(walk_t *w, int injected) {
  memset(w, 0, sizeof(*w));
  w->injected = injected;
  w->loop = t_loop_new();
  w->gate = t_gate_new();
}

static void walk_fini(walk_t *w) {
  t_loop_free(w->loop);
  walk_verify(w);
  t_gate_free(w->gate);
}

/* w: the test's own static walk, since its jobs read it, even after a
 * failure (and so after the next test began). */
static void alloc_walk(walk_t *w, bool sticky) {
  unsigned long n;
  for (n = 1;; n++) {
    unsigned long count;
    walk_init(w, UV_ENOMEM);
    uvpool__alloc_fail_at(n, sticky);
    alloc_scenario(w);
    count = uvpool__alloc_count();
    uvpool__alloc_fail_at(0, false);
    walk_fini(w);
    if (count < n) {
      assert_int_equal(w->nerr, 0); /* nothing left to fail */
      break;
    }
    /* The failed allocation surfaced, in exactly one call if single. */
    if (sticky)
      assert_true(w->nerr >= 1);
    else
      assert_int_equal(w->nerr, 1);
  }
  printf("%s allocation walk: %lu allocations\n", sticky ? "sticky" : "single",
         n - 1);
  assert_true(n > 10); /* the scenario did allocate what it should */
}

static void
each_single_allocation_failure_is_reported_and_loses_nothing(void **state) {
  static walk_t w;
  (void)state;
  alloc_walk(&w, false);
}

static void allocation_failures_from_the_nth_on_lose_nothing(void **state) {
  static walk_t w;
  (void)state;
  alloc_walk(&w, true);
}

/* ---- the thread-creation scenario ----------------------------------------
 * Creations: the first worker, the monitor, the second worker (the monitor
 * starts it while fb waits behind fa; without a monitor, the submit does),
 * the deadline thread. second_starts: no creation up to the second
 * worker's fails, so the test may wait for fb to start. */
static void thread_scenario(walk_t *w, bool second_starts) {
  uvpool_options_t o;
  uvpool_task_options_t to;
  uvpool_future_t *fa, *fb, *in[2];
  size_t n;

  uvpool_options_init(&o);
  o.max_workers = 2;
  o.min_workers = 2;
  w->pool = t_pool_new(w->loop, &o); /* starts no thread */
  fa = submit(w, NULL, true, true);  /* first worker */
  if (fa != NULL) {
    uv_sem_wait(&w->gate->started);
    w->gated++;
  }
  fb = submit(w, NULL, true, true); /* second worker, if one can start */
  if (fb != NULL) {
    w->gated++;
    if (second_starts)
      uv_sem_wait(&w->gate->started);
    /* Else it waits behind fa on the one worker there is. */
  }
  on_done(w, fa);
  on_done(w, fb);
  uvpool_task_options_init(&to);
  to.deadline_ms = 60000;
  on_done(w, submit(w, &to, false, true)); /* the deadline thread */
  (void)submit(w, NULL, false, false);
  if ((n = pick(in, fa, fb)) > 0)
    on_done(w, submit_after(w, in, n, true));
  open_gates(w);
  assert_int_equal(uv_run(w->loop, UV_RUN_DEFAULT), 0);
  w->before_close = t_stats(w->pool);
  t_pool_close(w->pool, 0);
}

static void
thread_creation_failures_are_reported_and_lose_nothing(void **state) {
  unsigned long n;
  (void)state;
  for (n = 1; n <= 8; n++) {
    static walk_t w; /* its jobs read it, even after a failure */
    bool failed;
    walk_init(&w, UV_EAGAIN);
    uvpool__thread_fail_at(n, UV_EAGAIN);
    thread_scenario(&w, n > 3);
    uvpool__thread_fail_at(0, 0);
    /* A failed second worker is invisible to the caller: the work waits
     * for the first. */
    failed = w.nerr > 0 || w.before_close.peak_workers < 2;
    walk_fini(&w);
    if (!failed)
      break;
  }
  assert_int_equal(n, 5); /* four creations, each failure seen */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(each_single_allocation_failure_is_reported_and_loses_nothing),
      T_TEST(allocation_failures_from_the_nth_on_lose_nothing),
      T_TEST(thread_creation_failures_are_reported_and_lose_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
