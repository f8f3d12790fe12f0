/* Small socket helpers shared by kvd's test clients.
 *
 * The clients use plain blocking sockets plus poll(); replies are parsed
 * with hiredis' reader, the same parser redis-cli uses.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef KVD_TEST_CLIENT_H
#define KVD_TEST_CLIENT_H

#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static inline double mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static inline void die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
static inline void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(2);
}

/* Connects to 127.0.0.1:port; exits on failure. */
static inline int connect_port(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    die("socket: %s", strerror(errno));
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
    die("connect to port %d: %s", port, strerror(errno));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

/* Writes all of buf; returns 0, or -1 if the peer is gone. */
static inline int send_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Reads what is available into the reader. Returns bytes read, 0 at end
 * of stream, -1 on error. */
static inline ssize_t recv_into(int fd, redisReader *rd) {
  char buf[16384];
  ssize_t n;
  do
    n = recv(fd, buf, sizeof buf, 0);
  while (n < 0 && errno == EINTR);
  if (n > 0 && redisReaderFeed(rd, buf, (size_t)n) != REDIS_OK)
    die("reader: %s", rd->errstr);
  return n;
}

/* Appends a RESP array of C-string arguments to out (at *len, of cap). */
static inline size_t resp_cmd(char *out, size_t cap, int argc,
                              const char **argv) {
  size_t len = (size_t)snprintf(out, cap, "*%d\r\n", argc);
  for (int i = 0; i < argc && len < cap; i++)
    len += (size_t)snprintf(out + len, cap - len, "$%zu\r\n%s\r\n",
                            strlen(argv[i]), argv[i]);
  if (len >= cap)
    die("command too long");
  return len;
}

#endif /* KVD_TEST_CLIENT_H */
