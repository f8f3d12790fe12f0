/* Misuse that would corrupt memory is caught: releasing a future or a pool
 * reference that is already gone aborts with a message naming the uvpool
 * function, instead of corrupting state. Each case runs in a child
 * process, whose stderr and signal the test reads. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "util.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs fn in a child with stderr on a pipe; returns what it wrote and
 * whether it died of SIGABRT. */
static bool aborts_saying(void (*fn)(void), const char *want) {
  int fds[2];
  char out[4096];
  size_t n = 0;
  ssize_t r;
  int status = 0;
  pid_t pid;
  assert_int_equal(pipe(fds), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    fn();
    _exit(0); /* not caught: the parent sees a normal exit */
  }
  close(fds[1]);
  while (n < sizeof(out) - 1 &&
         (r = read(fds[0], out + n, sizeof(out) - 1 - n)) > 0)
    n += (size_t)r;
  out[n] = '\0';
  close(fds[0]);
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (strstr(out, want) == NULL)
    print_message("child wrote: %s\n", out);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT &&
         strstr(out, want) != NULL;
}

static uv_loop_t child_loop;

static uvpool_t *child_pool(void) {
  uvpool_t *pool = NULL;
  if (uv_loop_init(&child_loop) != 0 ||
      uvpool_new(&child_loop, NULL, &pool) != 0)
    _exit(90);
  return pool;
}

static void unref_future_twice(void) {
  uvpool_t *pool = child_pool();
  uvpool_future_t *f = NULL;
  if (uvpool_submit(pool, t_work_ok, NULL, &f) != 0)
    _exit(91);
  uv_run(&child_loop, UV_RUN_DEFAULT); /* delivered: the pool let go */
  uvpool_future_unref(f);              /* the last reference: freed */
  uvpool_future_unref(f);
}

static void ref_released_future(void) {
  uvpool_t *pool = child_pool();
  uvpool_future_t *f = NULL;
  if (uvpool_submit(pool, t_work_ok, NULL, &f) != 0)
    _exit(91);
  uv_run(&child_loop, UV_RUN_DEFAULT);
  uvpool_future_unref(f);
  (void)uvpool_future_ref(f);
}

static void unref_pool_without_ref(void) {
  uvpool_t *pool = child_pool();
  uvpool_unref(pool); /* the creator's reference is the close's */
}

static void unref_pool_twice(void) {
  uvpool_t *pool = child_pool();
  uvpool_ref(pool);
  uvpool_unref(pool);
  uvpool_unref(pool);
}

static void releasing_a_future_twice_aborts(void **state) {
  (void)state;
  assert_true(
      aborts_saying(unref_future_twice, "uvpool: uvpool_future_unref:"));
}

static void referencing_a_released_future_aborts(void **state) {
  (void)state;
  assert_true(aborts_saying(ref_released_future, "uvpool: uvpool_future_ref:"));
}

static void releasing_the_creators_pool_reference_aborts(void **state) {
  (void)state;
  assert_true(aborts_saying(unref_pool_without_ref, "uvpool: uvpool_unref:"));
}

static void releasing_a_pool_reference_twice_aborts(void **state) {
  (void)state;
  assert_true(aborts_saying(unref_pool_twice, "uvpool: uvpool_unref:"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(releasing_a_future_twice_aborts),
      T_TEST(referencing_a_released_future_aborts),
      T_TEST(releasing_the_creators_pool_reference_aborts),
      T_TEST(releasing_a_pool_reference_twice_aborts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
