/*
 * log.c - leveled, single-write diagnostics (see log.h).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"

static int vgp__level = -1;
static int vgp__log_fd = 2;
static pthread_once_t vgp__log_once = PTHREAD_ONCE_INIT;

static void vgp__log_init(void) {
  const char *env = getenv("VGPOOL_LOG");
  const char *file = getenv("VGPOOL_LOG_FILE");
  int level = VGP_LOG_ERROR;

  if (env != NULL && *env != '\0') {
    if (strcasecmp(env, "off") == 0 || strcmp(env, "0") == 0)
      level = VGP_LOG_OFF;
    else if (strcasecmp(env, "error") == 0 || strcmp(env, "1") == 0)
      level = VGP_LOG_ERROR;
    else if (strcasecmp(env, "warn") == 0 || strcmp(env, "2") == 0)
      level = VGP_LOG_WARN;
    else if (strcasecmp(env, "info") == 0 || strcmp(env, "3") == 0)
      level = VGP_LOG_INFO;
    else if (strcasecmp(env, "debug") == 0 || strcmp(env, "4") == 0)
      level = VGP_LOG_DEBUG;
  }
  if (file != NULL && *file != '\0') {
    int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0)
      vgp__log_fd = fd;
  }
  if (__atomic_load_n(&vgp__level, __ATOMIC_RELAXED) < 0)
    __atomic_store_n(&vgp__level, level, __ATOMIC_RELAXED);
}

int vgp__log_level(void) {
  pthread_once(&vgp__log_once, vgp__log_init);
  return __atomic_load_n(&vgp__level, __ATOMIC_RELAXED);
}

void vgp__log_set_level(int level) {
  pthread_once(&vgp__log_once, vgp__log_init);
  __atomic_store_n(&vgp__level, level, __ATOMIC_RELAXED);
}

void vgp__log(int level, const char *component, const char *fmt, ...) {
  static const char *const names[] = {"", "error", "warning", "info", "debug"};
  char line[1024];
  int n;
  va_list ap;

  if (level > vgp__log_level() || level <= VGP_LOG_OFF)
    return;
  n = snprintf(line, sizeof(line), "vgpool %s[%d]: %s: ", component,
               (int)getpid(), names[level]);
  if (n < 0)
    return;
  if ((size_t)n < sizeof(line)) {
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (m > 0)
      n += m;
  }
  if ((size_t)n >= sizeof(line) - 1)
    n = (int)sizeof(line) - 2;
  line[n++] = '\n';
  ssize_t ignored = write(vgp__log_fd, line, (size_t)n);
  (void)ignored;
}
