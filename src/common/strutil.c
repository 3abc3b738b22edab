/*
 * strutil.c - bounded string helpers (see strutil.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "strutil.h"

size_t vgp__strlcpy(char *dst, const char *src, size_t len) {
  size_t n = strlen(src);
  if (len > 0) {
    size_t copy = n < len - 1 ? n : len - 1;
    memcpy(dst, src, copy);
    dst[copy] = '\0';
  }
  return n;
}

void vgp__errf(char *err, size_t len, const char *fmt, ...) {
  va_list ap;
  if (err == NULL || len == 0)
    return;
  va_start(ap, fmt);
  vsnprintf(err, len, fmt, ap);
  va_end(ap);
}
