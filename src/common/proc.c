/*
 * proc.c - process identity from /proc (see proc.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"
#include "strutil.h"

static int vgp__read_small_file(const char *path, char *buf, size_t len,
                                size_t *ret_len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? -ESRCH : -errno;
  ssize_t n;
  do
    n = read(fd, buf, len - 1);
  while (n < 0 && errno == EINTR);
  int saved = errno;
  close(fd);
  if (n < 0)
    return -saved;
  buf[n] = '\0';
  *ret_len = (size_t)n;
  return 0;
}

int vgp__proc_start_time(pid_t pid, uint64_t *ret_start) {
  char path[64], buf[1024];
  size_t len;
  int r;

  if (pid == 0)
    snprintf(path, sizeof(path), "/proc/self/stat");
  else
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  r = vgp__read_small_file(path, buf, sizeof(buf), &len);
  if (r < 0)
    return r;
  /* The command name (field 2) may contain spaces and parentheses, so
   * fields are counted from the last ')'. starttime is field 22. */
  char *p = strrchr(buf, ')');
  if (p == NULL)
    return -EIO;
  p++;
  for (int field = 3; field < 22; field++) {
    p = strchr(p + 1, ' ');
    if (p == NULL)
      return -EIO;
  }
  char *end;
  errno = 0;
  unsigned long long start = strtoull(p + 1, &end, 10);
  if (errno != 0 || end == p + 1)
    return -EIO;
  *ret_start = start;
  return 0;
}

int vgp__proc_matches(pid_t pid, uint64_t start_time) {
  uint64_t actual;
  if (pid <= 0)
    return 0;
  if (vgp__proc_start_time(pid, &actual) < 0)
    return 0;
  return actual == start_time;
}

int vgp__proc_comm(pid_t pid, char *buf, size_t len) {
  char path[64], tmp[64];
  size_t n;
  int r;

  snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
  r = vgp__read_small_file(path, tmp, sizeof(tmp), &n);
  if (r < 0)
    return r;
  while (n > 0 && (tmp[n - 1] == '\n' || tmp[n - 1] == ' '))
    tmp[--n] = '\0';
  vgp__strlcpy(buf, tmp, len);
  return 0;
}

int32_t vgp__proc_host_pid(void) {
  char buf[2048];
  size_t len;
  if (vgp__read_small_file("/proc/self/status", buf, sizeof(buf), &len) == 0) {
    char *p = strstr(buf, "\nNSpid:");
    if (p != NULL) {
      long v = strtol(p + 8, NULL, 10);
      if (v > 0)
        return (int32_t)v;
    }
  }
  return (int32_t)getpid();
}
