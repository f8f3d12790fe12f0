/* libFuzzer harness: the input becomes a sequence of uvpool calls made by
 * two threads, the loop thread and one other, strictly one call at a time
 * (a semaphore hand-off), so an input always makes the same calls in the
 * same order; only the workers' timing varies. After the last call the
 * pool is closed and drained, and the invariants checked:
 *   - every future settles, and its tracking callback runs exactly once;
 *   - every callback registered (call returned 0) runs exactly once, on the
 *     loop thread, never inside the call that registered it, and before
 *     the close callback;
 *   - a snapshot of the stats always balances: submitted == completed +
 *     failed + cancelled + queued + running, submitted counts exactly the
 *     accepted submissions, and settlements by state match the stats;
 *   - errors are only the documented ones for the situation (UV_ESHUTDOWN
 *     once closing, UV_ENOMEM only while an injected allocation failure is
 *     pending, ...);
 *   - uv_loop_close() == 0 at the end; ASan reports leaks.
 *
 * Input: bytes 0 and 1 configure the pool, then each op is one byte (bit 7: run
 * it on the other thread; the rest, modulo OP_COUNT: the op) followed by
 * its argument bytes. Missing bytes read as 0. With bit 7 of byte 1 the
 * pool shares the workers of a first pool on the same loop (a group of
 * two, uvpool_options_t.share), which closes after it: its close is then a
 * member's that leaves the workers running.
 *
 * Built two ways: with -fsanitize=fuzzer (fuzz_api) and with replay_main.c
 * (fuzz_replay), which replays files, e.g. tests/fuzz/regressions. */
#include "internal.h" /* uvpool__alloc_fail_at: fault-injection builds */
#include "uvpool.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_OPS 256
#define MAX_RECS (MAX_OPS + 1)
#define NSLOTS 8
#define MAX_REFS 64

static void fz_fail(const char *what, int line) {
  fprintf(stderr, "fuzz_api.c:%d: invariant failed: %s\n", line, what);
  abort();
}

#define FZ_CHECK(c)                                                            \
  do {                                                                         \
    if (!(c))                                                                  \
      fz_fail(#c, __LINE__);                                                   \
  } while (0)

enum {
  OP_SUBMIT,
  OP_SUBMIT_EX,
  OP_CANCEL,
  OP_WAIT,
  OP_REF,
  OP_UNREF,
  OP_ON_DONE,
  OP_STATS,
  OP_RUN,
  OP_CLOSE,
  OP_WHEN_ALL,
  OP_WHEN_ANY,
  OP_LANE,
  OP_QUERY,
  OP_ALLOC_FAIL,
  OP_COUNT
};

enum { WORK_OK, WORK_ERR, WORK_SPIN, WORK_COOP };
enum { REC_TASK, REC_FAF, REC_COMBO };

typedef struct {
  int kind;
  int work;
  unsigned us;     /* WORK_SPIN, WORK_COOP: microseconds */
  _Atomic int ran; /* workers write */
  int settled;     /* the tracking callback, on the loop thread */
} rec_t;

typedef struct {
  uvpool_future_t *f;
  unsigned refs; /* references the harness holds */
} slot_t;

typedef struct {
  const uint8_t *p;
  size_t n;
} input_t;

typedef struct {
  uv_loop_t loop;
  uvpool_t *pool;
  uvpool_t *root; /* with a group: the pool whose workers pool shares */
  uv_thread_t loop_tid;
  size_t max_queued;
  unsigned max_workers;
  bool closing, gone;
  bool in_api; /* the loop thread is in a uvpool call (not uv_run) */
  unsigned nlanes;
  unsigned long alloc_k; /* the injected failure: k-th allocation */
  slot_t slot[NSLOTS];
  rec_t rec[MAX_RECS];
  unsigned nrec;
  unsigned long accepted, accepted_faf;
  unsigned long cb_registered, cb_delivered;
  unsigned long tracked[UVPOOL_CANCELLED + 1];
  _Atomic unsigned long faf_done, faf_failed;
  uvpool_stats_t final;
  unsigned long delivered_at_close;
  /* the other thread */
  uv_thread_t other;
  uv_sem_t go, done;
  bool quit;
  int op;
  input_t *in;
} fz_t;

static fz_t fz;

static unsigned next_byte(input_t *in) {
  if (in->n == 0)
    return 0;
  in->n--;
  return *in->p++;
}

static bool on_loop_thread(void) {
  uv_thread_t self = uv_thread_self();
  return uv_thread_equal(&self, &fz.loop_tid) != 0;
}

static bool settled(uvpool_state_t s) { return s >= UVPOOL_DONE; }

/* An injected allocation failure is pending: the next call may see it. */
static bool alloc_armed(void) {
  return fz.alloc_k != 0 && uvpool__alloc_count() < fz.alloc_k;
}

static void spin_us(unsigned us, bool cooperative, bool *cancelled) {
  uint64_t until = uv_hrtime() + (uint64_t)us * 1000u;
  while (uv_hrtime() < until) {
    if (cooperative && uvpool_cancel_requested()) {
      *cancelled = true;
      return;
    }
  }
}

static int fz_work(void *arg, void **result) {
  rec_t *r = arg;
  bool cancelled = false;
  int rc = 0;
  FZ_CHECK(atomic_fetch_add(&r->ran, 1) == 0);
  switch (r->work) {
  case WORK_ERR:
    rc = r->us & 1 ? 5 : UV_EIO; /* a positive errno is negated */
    break;
  case WORK_SPIN:
    spin_us(r->us, false, &cancelled);
    break;
  case WORK_COOP:
    spin_us(r->us * 4, true, &cancelled);
    if (cancelled)
      rc = UV_ECANCELED;
    break;
  default:
    break;
  }
  if (r->kind == REC_FAF)
    atomic_fetch_add(rc == 0 ? &fz.faf_done : &fz.faf_failed, 1);
  *result = r;
  return rc;
}

/* An accepted task may also fail without running: when its worker could
 * not be started (a leaving worker's replacement met the injected
 * allocation failure), it settles FAILED with UV_ENOMEM. */
static bool failed_unstarted(int status, int ran) {
  return fz.alloc_k != 0 && status == UV_ENOMEM && ran == 0;
}

static bool track_ok(const rec_t *r, uvpool_state_t s, int status, int ran,
                     void *result) {
  switch (s) {
  case UVPOOL_DONE:
    return status == 0 && ran == 1 && result == r && r->work != WORK_ERR;
  case UVPOOL_FAILED:
    return result == NULL &&
           ((status == UV_EIO && ran == 1 && r->work == WORK_ERR) ||
            failed_unstarted(status, ran));
  case UVPOOL_CANCELLED:
    if (result != NULL)
      return false;
    if (ran == 1)
      return r->work == WORK_COOP && status == UV_ECANCELED;
    return status == UV_ECANCELED || status == UV_ETIMEDOUT;
  default:
    return false;
  }
}

/* The first callback of every future the harness creates. */
static void fz_track(uvpool_future_t *f, void *data) {
  rec_t *r = data;
  uvpool_state_t s = uvpool_future_state(f);
  int status = uvpool_future_status(f);
  int ran = atomic_load(&r->ran);
  FZ_CHECK(on_loop_thread());
  FZ_CHECK(!fz.in_api);
  FZ_CHECK(settled(s));
  FZ_CHECK(++r->settled == 1);
  fz.cb_delivered++;
  if (r->kind == REC_COMBO) {
    FZ_CHECK(s != UVPOOL_DONE || status == 0);
    return;
  }
  fz.tracked[s]++;
  if (!track_ok(r, s, status, ran, uvpool_future_result(f))) {
    fprintf(stderr, "task: work %d, state %d, status %s, ran %d\n", r->work,
            (int)s, uv_err_name(status), ran);
    FZ_CHECK(!"a task settled as its work cannot explain");
  }
}

static void fz_cb(uvpool_future_t *f, void *data) {
  (void)data;
  FZ_CHECK(on_loop_thread());
  FZ_CHECK(!fz.in_api);
  FZ_CHECK(settled(uvpool_future_state(f)));
  fz.cb_delivered++;
}

static void fz_closed(uvpool_t *pool, void *data) {
  (void)data;
  FZ_CHECK(on_loop_thread());
  FZ_CHECK(!fz.in_api);
  FZ_CHECK(uvpool_stats(pool, &fz.final) == 0);
  fz.delivered_at_close = fz.cb_delivered;
  fz.gone = true; /* the pool pointer is dead from here on */
}

static slot_t *slot_of(input_t *in) { return &fz.slot[next_byte(in) % NSLOTS]; }

static void slot_clear(slot_t *s) {
  while (s->refs > 0) {
    uvpool_future_unref(s->f);
    s->refs--;
  }
  s->f = NULL;
}

static void slot_put(slot_t *s, uvpool_future_t *f) {
  slot_clear(s);
  s->f = f;
  s->refs = 1;
}

static rec_t *rec_new(int kind) {
  rec_t *r;
  if (fz.nrec == MAX_RECS)
    return NULL;
  r = &fz.rec[fz.nrec++];
  r->kind = kind;
  return r;
}

static int on_done(uvpool_future_t *f, uvpool_done_cb cb, void *data) {
  int rc = uvpool_future_on_done(f, cb, data);
  if (rc == 0)
    fz.cb_registered++;
  return rc;
}

/* A submission's result, against what the situation allows. */
static void check_submit_rc(int rc, bool armed, bool lane_ok) {
  switch (rc) {
  case 0:
    FZ_CHECK(!fz.closing && lane_ok);
    break;
  case UV_ESHUTDOWN:
    FZ_CHECK(fz.closing && lane_ok);
    break;
  case UV_EINVAL:
    FZ_CHECK(!lane_ok);
    break;
  case UV_EAGAIN:
    FZ_CHECK(fz.max_queued > 0 && !fz.closing && lane_ok);
    break;
  case UV_ENOMEM:
    FZ_CHECK(armed && !alloc_armed()); /* and the failure is used up */
    break;
  default:
    FZ_CHECK(!"unexpected submit error");
  }
}

static void op_submit(input_t *in, bool ex) {
  unsigned a = next_byte(in), b = next_byte(in);
  uvpool_task_options_t o;
  bool want = (a & 4) != 0, lane_ok = true, armed;
  uvpool_future_t *sentinel = (uvpool_future_t *)&fz, *f = sentinel;
  slot_t *s = &fz.slot[(a >> 3) % NSLOTS];
  rec_t *r;
  int rc;
  uvpool_task_options_init(&o);
  if (ex) {
    unsigned c = next_byte(in);
    o.priority = (int)(b % 5) - 2;
    o.deadline_ms = c % 4 == 0 ? -1 : c % 4 == 1 ? 0 : (int64_t)(c % 4) * 2;
    o.lane = (c >> 2) % (fz.nlanes + 2);
    lane_ok = o.lane <= fz.nlanes;
  }
  if (fz.gone || (r = rec_new(want ? REC_TASK : REC_FAF)) == NULL)
    return;
  r->work = (int)(a & 3);
  r->us = b % 16;
  armed = alloc_armed();
  rc = ex ? uvpool_submit_ex(fz.pool, &o, fz_work, r, want ? &f : NULL)
          : uvpool_submit(fz.pool, fz_work, r, want ? &f : NULL);
  check_submit_rc(rc, armed, lane_ok);
  if (rc != 0) {
    FZ_CHECK(f == sentinel);
    fz.nrec--; /* never ran, never will: reuse the record */
    memset(r, 0, sizeof(*r));
    return;
  }
  fz.accepted++;
  if (!want) {
    fz.accepted_faf++;
    return;
  }
  /* The inline slot of a fresh future: no allocation, cannot fail. */
  FZ_CHECK(on_done(f, fz_track, r) == 0);
  slot_put(s, f);
}

static void op_combine(input_t *in, bool all) {
  unsigned a = next_byte(in);
  uvpool_future_t *inputs[2], *sentinel = (uvpool_future_t *)&fz;
  uvpool_future_t *f = sentinel;
  size_t n = 0;
  slot_t *out = &fz.slot[(a >> 4) % NSLOTS];
  bool armed;
  rec_t *r;
  int rc;
  if (fz.slot[a % NSLOTS].f != NULL)
    inputs[n++] = fz.slot[a % NSLOTS].f;
  if ((a & 8) && fz.slot[(a + 1) % NSLOTS].f != NULL)
    inputs[n++] = fz.slot[(a + 1) % NSLOTS].f;
  if (n == 0 || (r = rec_new(REC_COMBO)) == NULL)
    return;
  armed = alloc_armed();
  rc = all ? uvpool_when_all(inputs, n, (a & 0x80) ? UVPOOL_FAIL_FAST : 0, &f)
           : uvpool_when_any(inputs, n, &f);
  if (rc != 0) {
    FZ_CHECK((rc == UV_ENOMEM && armed) || (rc == UV_ESHUTDOWN && fz.gone));
    FZ_CHECK(f == sentinel);
    fz.nrec--;
    memset(r, 0, sizeof(*r));
    return;
  }
  FZ_CHECK(on_done(f, fz_track, r) == 0);
  slot_put(out, f); /* may drop an input: the combination holds its own */
}

static void check_stats(void) {
  uvpool_stats_t s;
  FZ_CHECK(uvpool_stats(fz.pool, &s) == 0);
  FZ_CHECK(s.submitted == fz.accepted);
  FZ_CHECK(s.submitted ==
           s.completed + s.failed + s.cancelled + s.queued + s.running);
  FZ_CHECK(s.running <= s.workers && s.idle_workers <= s.workers);
  FZ_CHECK(s.workers <= fz.max_workers && s.peak_workers <= fz.max_workers);
  FZ_CHECK(s.workers <= s.peak_workers);
  FZ_CHECK(s.queued + s.running <= fz.accepted);
}

/* Reads bracketed by two state reads: a worker may settle the future in
 * between, but states only move forward and a settled one is final. */
static void op_query(slot_t *s) {
  uvpool_state_t st, st2;
  int status;
  void *result;
  if (s->f == NULL)
    return;
  st = uvpool_future_state(s->f);
  status = uvpool_future_status(s->f);
  result = uvpool_future_result(s->f);
  st2 = uvpool_future_state(s->f);
  FZ_CHECK(st <= UVPOOL_CANCELLED && st2 <= UVPOOL_CANCELLED);
  FZ_CHECK(settled(st) ? st2 == st : st2 >= st);
  if (!settled(st2)) {
    FZ_CHECK(status == UV_EBUSY && result == NULL);
    return;
  }
  if (!settled(st))
    return; /* settled meanwhile: status and result of either moment */
  if (st == UVPOOL_DONE)
    FZ_CHECK(status == 0);
  else
    FZ_CHECK(status < 0 && result == NULL);
  FZ_CHECK(uvpool_future_wait(s->f, 0) == 0);
}

static void run_op(int op, input_t *in, bool loop) {
  slot_t *s;
  int rc;
  switch (op) {
  case OP_SUBMIT:
  case OP_SUBMIT_EX:
    op_submit(in, op == OP_SUBMIT_EX);
    break;
  case OP_CANCEL:
    s = slot_of(in);
    if (s->f == NULL)
      break;
    rc = uvpool_future_cancel(s->f);
    FZ_CHECK(rc == 0 || rc == UV_EBUSY);
    if (rc == 0) {
      FZ_CHECK(uvpool_future_state(s->f) == UVPOOL_CANCELLED);
      FZ_CHECK(uvpool_future_status(s->f) == UV_ECANCELED);
    }
    break;
  case OP_WAIT: {
    unsigned t = next_byte(in);
    s = &fz.slot[t % NSLOTS];
    if (s->f == NULL)
      break;
    rc = uvpool_future_wait(s->f, (t >> 4) % 2);
    FZ_CHECK(rc == 0 || rc == UV_ETIMEDOUT);
    if (rc == 0)
      FZ_CHECK(settled(uvpool_future_state(s->f)));
    break;
  }
  case OP_REF:
    s = slot_of(in);
    if (s->f != NULL && s->refs < MAX_REFS) {
      FZ_CHECK(uvpool_future_ref(s->f) == s->f);
      s->refs++;
    }
    break;
  case OP_UNREF:
    s = slot_of(in);
    if (s->f != NULL) {
      uvpool_future_unref(s->f);
      if (--s->refs == 0)
        s->f = NULL;
    }
    break;
  case OP_ON_DONE: {
    bool armed = alloc_armed();
    s = slot_of(in);
    if (s->f == NULL)
      break;
    rc = on_done(s->f, fz_cb, NULL);
    FZ_CHECK(rc == 0 || (rc == UV_ENOMEM && armed) ||
             (rc == UV_ESHUTDOWN && fz.gone));
    break;
  }
  case OP_RUN:
    if (loop) {
      uv_run(&fz.loop, UV_RUN_NOWAIT);
      break;
    }
    /* Not the loop's thread: read stats instead. */
    /* fall through */
  case OP_STATS:
    if (!fz.gone)
      check_stats();
    break;
  case OP_CLOSE: {
    unsigned flags = next_byte(in) & UVPOOL_CANCEL_PENDING;
    if (fz.gone)
      break;
    /* From the other thread too: the loop does not run meanwhile (calls
     * are made one at a time), so that thread may own it for the call. */
    rc = uvpool_close(fz.pool, flags, fz_closed, NULL);
    FZ_CHECK(rc == (fz.closing ? UV_EINVAL : 0));
    fz.closing = true;
    break;
  }
  case OP_WHEN_ALL:
  case OP_WHEN_ANY:
    op_combine(in, op == OP_WHEN_ALL);
    break;
  case OP_LANE: {
    unsigned lane = 0, max = 1 + next_byte(in) % 3;
    bool armed = alloc_armed();
    if (fz.gone)
      break;
    rc = uvpool_lane_new(fz.pool, max, &lane);
    if (rc == 0) {
      FZ_CHECK(!fz.closing && lane == ++fz.nlanes);
    } else {
      FZ_CHECK(lane == 0 && ((rc == UV_ENOMEM && armed) ||
                             (rc == UV_ESHUTDOWN && fz.closing)));
    }
    break;
  }
  case OP_QUERY:
    op_query(slot_of(in));
    break;
  case OP_ALLOC_FAIL:
    fz.alloc_k = 1 + next_byte(in) % 4;
    uvpool__alloc_fail_at(fz.alloc_k, false);
    break;
  default:
    break;
  }
}

static void other_main(void *arg) {
  (void)arg;
  for (;;) {
    uv_sem_wait(&fz.go);
    if (fz.quit)
      return;
    run_op(fz.op, fz.in, false);
    uv_sem_post(&fz.done);
  }
}

/* Worker start and exit hooks that take a while: a worker in thread_exit
 * is counted but takes no work, which is what the leaving worker's
 * replacement exists for. */
static void spin_hook_exit(void *data) {
  bool unused;
  spin_us((unsigned)(uintptr_t)data, false, &unused);
}

static int spin_hook_init(void *data) {
  spin_hook_exit(data);
  return 0;
}

static void setup(unsigned cfg, unsigned cfg2) {
  uvpool_options_t o;
  memset(&fz, 0, sizeof(fz));
  uvpool__alloc_fail_at(0, false);
  FZ_CHECK(uv_loop_init(&fz.loop) == 0);
  fz.loop_tid = uv_thread_self();
  uvpool_options_init(&o);
  o.max_workers = 1 + (cfg & 3);
  o.max_queued = (cfg & 4) ? 2 + ((cfg >> 3) & 3) : 0;
  o.spin_us = (cfg & 0x20) ? 0 : UVPOOL_SPIN_DEFAULT;
  o.min_workers = (cfg & 0x40) ? 1 : 0;
  o.idle_timeout_ms = (cfg & 0x80) ? 1 : 0; /* workers come and go */
  o.thread_data = (void *)(uintptr_t)((cfg2 >> 2) & 0x1f);
  if (cfg2 & 1)
    o.thread_init = spin_hook_init;
  if (cfg2 & 2)
    o.thread_exit = spin_hook_exit;
  fz.max_workers = o.max_workers;
  fz.max_queued = o.max_queued;
  if (cfg2 & 0x80) { /* the worker options go to the group's first pool */
    uvpool_options_t mine;
    FZ_CHECK(uvpool_new(&fz.loop, &o, &fz.root) == 0);
    uvpool_options_init(&mine);
    mine.max_queued = o.max_queued;
    mine.share = fz.root;
    FZ_CHECK(uvpool_new(&fz.loop, &mine, &fz.pool) == 0);
  } else {
    FZ_CHECK(uvpool_new(&fz.loop, &o, &fz.pool) == 0);
  }
  FZ_CHECK(uv_sem_init(&fz.go, 0) == 0);
  FZ_CHECK(uv_sem_init(&fz.done, 0) == 0);
  FZ_CHECK(uv_thread_create(&fz.other, other_main, NULL) == 0);
}

static void finish(void) {
  unsigned long faf_done, faf_failed, unrun_faf;
  fz.quit = true;
  uv_sem_post(&fz.go);
  FZ_CHECK(uv_thread_join(&fz.other) == 0);
  uvpool__alloc_fail_at(0, false);
  if (!fz.gone && !fz.closing)
    FZ_CHECK(uvpool_close(fz.pool, 0, fz_closed, NULL) == 0);
  /* A task that never settles hangs here: libFuzzer reports a timeout. */
  while (!fz.gone)
    uv_run(&fz.loop, UV_RUN_ONCE);
  if (fz.root != NULL) /* the last member: its close joins the workers */
    FZ_CHECK(uvpool_close(fz.root, 0, NULL, NULL) == 0);
  FZ_CHECK(uv_run(&fz.loop, UV_RUN_DEFAULT) == 0);
  FZ_CHECK(uv_loop_close(&fz.loop) == 0);

  faf_done = atomic_load(&fz.faf_done);
  faf_failed = atomic_load(&fz.faf_failed);
  FZ_CHECK(fz.delivered_at_close == fz.cb_registered);
  FZ_CHECK(fz.cb_delivered == fz.cb_registered);
  FZ_CHECK(fz.final.submitted == fz.accepted);
  FZ_CHECK(fz.final.submitted ==
           fz.final.completed + fz.final.failed + fz.final.cancelled);
  FZ_CHECK(fz.final.queued == 0 && fz.final.running == 0);
  FZ_CHECK(fz.final.completed == fz.tracked[UVPOOL_DONE] + faf_done);
  FZ_CHECK(faf_done + faf_failed <= fz.accepted_faf);
  unrun_faf = fz.accepted_faf - faf_done - faf_failed;
  if (fz.alloc_k == 0) {
    /* Fire-and-forget tasks that never ran were all cancelled. */
    FZ_CHECK(fz.final.failed == fz.tracked[UVPOOL_FAILED] + faf_failed);
    FZ_CHECK(fz.final.cancelled == fz.tracked[UVPOOL_CANCELLED] + unrun_faf);
  } else {
    /* ... or failed for want of a worker (see failed_unstarted). */
    FZ_CHECK(fz.final.failed >= fz.tracked[UVPOOL_FAILED] + faf_failed);
    FZ_CHECK(fz.final.cancelled >= fz.tracked[UVPOOL_CANCELLED]);
    FZ_CHECK(fz.final.failed + fz.final.cancelled ==
             fz.tracked[UVPOOL_FAILED] + fz.tracked[UVPOOL_CANCELLED] +
                 faf_failed + unrun_faf);
  }
  for (unsigned i = 0; i < fz.nrec; i++) {
    rec_t *r = &fz.rec[i];
    FZ_CHECK(atomic_load(&r->ran) <= 1);
    FZ_CHECK(r->settled == (r->kind == REC_FAF ? 0 : 1));
  }
  for (unsigned i = 0; i < NSLOTS; i++) {
    if (fz.slot[i].f != NULL)
      FZ_CHECK(settled(uvpool_future_state(fz.slot[i].f)));
    slot_clear(&fz.slot[i]);
  }
  uv_sem_destroy(&fz.go);
  uv_sem_destroy(&fz.done);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  input_t in = {data, size};
  unsigned cfg = next_byte(&in);
  setup(cfg, next_byte(&in));
  for (int i = 0; i < MAX_OPS && in.n > 0; i++) {
    unsigned b = next_byte(&in);
    int op = (int)((b & 0x7f) % OP_COUNT);
    if (b & 0x80) {
      fz.op = op;
      fz.in = &in;
      uv_sem_post(&fz.go);
      uv_sem_wait(&fz.done);
    } else {
      /* Callbacks run only inside uv_run(), never inside a call. */
      fz.in_api = op != OP_RUN;
      run_op(op, &in, true);
      fz.in_api = false;
    }
  }
  finish();
  return 0;
}
