/* Waiting on a future is a futex on its state word: no per-future mutex or
 * condition variable (which would triple a future's size), and a settle
 * pays a system call only when the WAITERS bit says someone sleeps. */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Returns 0 when woken or when *addr != val, UV_ETIMEDOUT on timeout. */
int uvpool__futex_wait(_Atomic uint32_t *addr, uint32_t val,
                       int64_t timeout_ns) {
  struct timespec ts;
  struct timespec *tp = NULL;
  if (timeout_ns >= 0) {
    ts.tv_sec = (time_t)(timeout_ns / 1000000000);
    ts.tv_nsec = (long)(timeout_ns % 1000000000);
    tp = &ts;
  }
  if (syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, tp, NULL,
              0) == -1 &&
      errno == ETIMEDOUT)
    return UV_ETIMEDOUT;
  return 0;
}

void uvpool__futex_wake_all(_Atomic uint32_t *addr) {
  syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL,
          0);
}
