/* Allocation and thread creation, routed through one place so that a test
 * build (UVPOOL_FAULT_INJECTION) can make the n-th call fail and prove that
 * every failure path returns an error, loses nothing and leaks nothing; and
 * the test hooks (uvpool__hook), which let a test hold a thread at a named
 * point. A release build compiles the hooks to nothing. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef UVPOOL_FAULT_INJECTION
/* Test-only state; absent from release builds. */
static _Atomic unsigned long alloc_calls;
static _Atomic unsigned long alloc_fail_n;
static _Atomic bool alloc_sticky;
static _Atomic unsigned long thread_calls;
static _Atomic unsigned long thread_fail_n;
static _Atomic int thread_fail_err;

void uvpool__alloc_fail_at(unsigned long n, bool sticky) {
  atomic_store(&alloc_calls, 0);
  atomic_store(&alloc_sticky, sticky);
  atomic_store(&alloc_fail_n, n);
}

unsigned long uvpool__alloc_count(void) { return atomic_load(&alloc_calls); }

static bool alloc_should_fail(void) {
  unsigned long n = atomic_load(&alloc_fail_n);
  unsigned long call = atomic_fetch_add(&alloc_calls, 1) + 1;
  if (n == 0)
    return false;
  return call == n || (call > n && atomic_load(&alloc_sticky));
}

void uvpool__thread_fail_at(unsigned long n, int err) {
  atomic_store(&thread_calls, 0);
  atomic_store(&thread_fail_err, err);
  atomic_store(&thread_fail_n, n);
}

static int thread_should_fail(void) {
  unsigned long n = atomic_load(&thread_fail_n);
  unsigned long call = atomic_fetch_add(&thread_calls, 1) + 1;
  return (n != 0 && call >= n) ? atomic_load(&thread_fail_err) : 0;
}

static _Atomic uvpool__hook_fn hook_fn;

void uvpool__hook_set(uvpool__hook_fn fn) { atomic_store(&hook_fn, fn); }

void uvpool__hook(uvpool__hook_point_t point, const void *pool) {
  uvpool__hook_fn fn = atomic_load(&hook_fn);
  if (fn != NULL)
    fn(point, pool);
}

void uvpool__hook_unlocked(uvpool__hook_point_t point, uv_mutex_t *mu,
                           const void *pool) {
  uvpool__hook_fn fn = atomic_load(&hook_fn);
  if (fn == NULL)
    return;
  uv_mutex_unlock(mu);
  fn(point, pool);
  uv_mutex_lock(mu);
}
#else
void uvpool__hook_set(uvpool__hook_fn fn) { (void)fn; }
void uvpool__alloc_fail_at(unsigned long n, bool sticky) {
  (void)n;
  (void)sticky;
}
unsigned long uvpool__alloc_count(void) { return 0; }
static bool alloc_should_fail(void) { return false; }
void uvpool__thread_fail_at(unsigned long n, int err) {
  (void)n;
  (void)err;
}
static int thread_should_fail(void) { return 0; }
#endif

void uvpool__misuse(const char *fn, const char *what) {
  fprintf(stderr, "uvpool: %s: %s\n", fn, what);
  fflush(stderr);
  abort();
}

void *uvpool__malloc(size_t n) {
  if (alloc_should_fail())
    return NULL;
  return malloc(n);
}

void *uvpool__aligned_alloc(size_t align, size_t n) {
  if (alloc_should_fail())
    return NULL;
  return aligned_alloc(align, n);
}

void uvpool__free(void *p) { free(p); }

int uvpool__thread_create(uv_thread_t *tid, size_t stack, void (*fn)(void *),
                          void *arg) {
  uv_thread_options_t o;
  int err = thread_should_fail();
  if (err != 0)
    return err;
  o.flags = stack != 0 ? UV_THREAD_HAS_STACK_SIZE : UV_THREAD_NO_FLAGS;
  o.stack_size = stack;
  return uv_thread_create_ex(tid, &o, fn, arg);
}
