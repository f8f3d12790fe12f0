/* uv_queue_work on a pool: a uv_work_t request runs as a task with a
 * callback (submit.c), through two trampolines. The request keeps its
 * task's future in a private field, reserved[0], as one word that is
 * also a lock (futures are 64-byte aligned, so bit 0 is free):
 *
 *   NULL   the task started or settled: a cancel is UV_EBUSY;
 *   f      queued: a cancel may act on f;
 *   f | 1  a cancel holds it;
 *   1      the submit has not recorded the future yet.
 *
 * The future is the pool's (the request holds no reference), so it may
 * be recycled once its callback was delivered. It cannot be before the
 * word is cleared: the worker's trampoline waits for the word to be
 * unlocked, then clears it, before the work runs (and never touches the
 * request after the work returned: with a NULL after_work_cb the
 * application may free it then); a task that never ran is settled by a
 * cancel holding the word, or by a close or exit, and the loop's
 * trampoline clears the word before the future goes back. So a cancel
 * that locked f acts on the request's own, live future.
 *
 * Lock order: the word, then pool->g->mu (uvpool_future_cancel, the submit's
 * slow path). Nothing waits for the word under mu.
 *
 * uv_cancel() on such a request finds libuv's own queue empty and returns
 * UV_EBUSY: the fields libuv reads are set for that. */
#include "internal.h"

#include <sched.h>

#define WORD_LOCKED ((uintptr_t)1)

static uintptr_t *word(uv_work_t *req) {
  return (uintptr_t *)&req->reserved[0];
}

/* Waits while the word is locked (held briefly: a few instructions, or one
 * uvpool_future_cancel), then swaps in `to`; returns the future it held. */
static uintptr_t word_take(uv_work_t *req, uintptr_t to) {
  unsigned spins = 0;
  uintptr_t v = __atomic_load_n(word(req), __ATOMIC_ACQUIRE);
  for (;;) {
    if ((v & WORD_LOCKED) == 0 &&
        __atomic_compare_exchange_n(word(req), &v, to, true, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE))
      return v;
    if ((v & WORD_LOCKED) != 0) {
      if (++spins % 64 == 0)
        sched_yield();
      v = __atomic_load_n(word(req), __ATOMIC_ACQUIRE);
    }
  }
}

static int work_trampoline(void *arg, void **result) {
  uv_work_t *req = arg;
  (void)result;
  (void)word_take(req, 0); /* started: a cancel is UV_EBUSY from here */
  req->work_cb(req);
  return 0; /* the request may be gone: not touched after work_cb */
}

/* The status libuv would pass: 0, or UV_ECANCELED; a broken pool's code
 * for a task it failed without running. */
static int after_status(const uvpool_future_t *f) {
  if (uvpool_future_state(f) == UVPOOL_DONE)
    return 0;
  return uvpool_future_status(f);
}

/* A task that never ran still names its future: forget it before the
 * future goes back to the pool. One that ran cleared it when it began. */
static void forget_unless_ran(const uvpool_future_t *f, uv_work_t *req) {
  if (uvpool_future_state(f) != UVPOOL_DONE)
    (void)word_take(req, 0);
}

static void done_trampoline(uvpool_future_t *f, void *data) {
  uv_work_t *req = data;
  forget_unless_ran(f, req);
  req->after_work_cb(req, after_status(f));
}

/* With a NULL after_work_cb the request may be freed once the work ran:
 * only a task that never ran touches it. */
static void done_quiet(uvpool_future_t *f, void *data) {
  forget_unless_ran(f, data);
}

/* Fields libuv itself reads: the loop, and an empty queue link with no
 * work, so that uv_cancel() answers UV_EBUSY instead of touching libuv's
 * own pool. */
static void req_init(uvpool_t *pool, uv_work_t *req, uv_work_cb work_cb,
                     uv_after_work_cb after_work_cb) {
  req->type = UV_WORK;
  req->loop = uvpool_loop(pool);
  req->work_cb = work_cb;
  req->after_work_cb = after_work_cb;
  req->work_req.work = NULL;
  req->work_req.done = NULL;
  req->work_req.loop = req->loop;
  req->work_req.wq[0] = req->work_req.wq;
  req->work_req.wq[1] = req->work_req.wq;
}

int uvpool_queue_work(uvpool_t *pool, uv_work_t *req, uv_work_cb work_cb,
                      uv_after_work_cb after_work_cb) {
  uvpool_future_t *f = NULL;
  int rc;
  if (pool == NULL || req == NULL || work_cb == NULL)
    return UV_EINVAL;
  /* A plain store: a new request's word is whatever memory held, and one
   * queued again from its own work or after_work_cb was cleared. */
  __atomic_store_n(word(req), WORD_LOCKED, __ATOMIC_RELAXED);
  req_init(pool, req, work_cb, after_work_cb);
  rc = uvpool__submit_borrowed(
      pool, work_trampoline, req,
      after_work_cb != NULL ? done_trampoline : done_quiet, req, &f);
  __atomic_store_n(word(req), rc == 0 ? (uintptr_t)f : 0, __ATOMIC_RELEASE);
  return rc;
}

int uvpool_cancel_work(uv_work_t *req) {
  uintptr_t v;
  int rc;
  if (req == NULL)
    return UV_EINVAL;
  /* Lock the word if it holds a future (v != 0), else leave it as it is. */
  v = __atomic_load_n(word(req), __ATOMIC_ACQUIRE);
  for (;;) {
    if (v == 0)
      return UV_EBUSY;
    if ((v & WORD_LOCKED) == 0 &&
        __atomic_compare_exchange_n(word(req), &v, v | WORD_LOCKED, true,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
      break;
    if ((v & WORD_LOCKED) != 0) {
      sched_yield();
      v = __atomic_load_n(word(req), __ATOMIC_ACQUIRE);
    }
  }
  // NOLINTNEXTLINE(performance-no-int-to-ptr)
  rc = uvpool_future_cancel((uvpool_future_t *)v);
  /* Cancelled: it never runs, forget it; else it started meanwhile, and
   * its trampoline waits to clear the word. */
  __atomic_store_n(word(req), rc == 0 ? 0 : v, __ATOMIC_RELEASE);
  uvpool__watchers_run();
  return rc == 0 ? 0 : UV_EBUSY;
}
