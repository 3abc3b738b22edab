/*
 * units.c - parsing and printing of sizes and percentages.
 *
 * See include/vgpool/units.h for the accepted syntax. The parser is strict on
 * purpose: HAMi-core parses quotas with strtoul(..., 0), which silently turns
 * "1Gi" into one byte and accepts octal; here anything that is not exactly a
 * size is an error the caller can report with the offending text.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "vgpool/units.h"

struct vgp__suffix {
  const char *name;
  unsigned shift;
};

/* Longest spellings first is not needed: we match the whole remainder. */
static const struct vgp__suffix vgp__suffixes[] = {
  {"", 0},    {"b", 0},    {"k", 10},  {"ki", 10}, {"kib", 10}, {"kb", 10},
  {"m", 20},  {"mi", 20},  {"mib", 20}, {"mb", 20}, {"g", 30},  {"gi", 30},
  {"gib", 30}, {"gb", 30}, {"t", 40},  {"ti", 40}, {"tib", 40}, {"tb", 40},
};

int vgp_parse_u64(const char *text, uint64_t *ret_value) {
  uint64_t value = 0;
  const char *p = text;

  if (text == NULL || *p == '\0')
    return -EINVAL;
  for (; *p != '\0'; p++) {
    if (!isdigit((unsigned char)*p))
      return -EINVAL;
    unsigned digit = (unsigned)(*p - '0');
    if (value > (UINT64_MAX - digit) / 10)
      return -ERANGE;
    value = value * 10 + digit;
  }
  *ret_value = value;
  return 0;
}

int vgp_parse_int(const char *text, long min, long max, long *ret_value) {
  int negative = 0;
  uint64_t magnitude;
  long value;
  int r;

  if (text == NULL)
    return -EINVAL;
  if (*text == '-') {
    negative = 1;
    text++;
  }
  r = vgp_parse_u64(text, &magnitude);
  if (r < 0)
    return r;
  if (magnitude > (uint64_t)LONG_MAX)
    return -ERANGE;
  value = negative ? -(long)magnitude : (long)magnitude;
  if (value < min || value > max)
    return -ERANGE;
  *ret_value = value;
  return 0;
}

int vgp_parse_size(const char *text, uint64_t *ret_bytes) {
  uint64_t whole = 0, frac = 0, frac_scale = 1;
  const char *p = text;
  int digits = 0;

  if (text == NULL)
    return -EINVAL;
  while (isspace((unsigned char)*p))
    p++;
  for (; isdigit((unsigned char)*p); p++, digits++) {
    unsigned digit = (unsigned)(*p - '0');
    if (whole > (UINT64_MAX - digit) / 10)
      return -ERANGE;
    whole = whole * 10 + digit;
  }
  if (*p == '.') {
    if (digits == 0)
      return -EINVAL;
    p++;
    int frac_digits = 0;
    for (; isdigit((unsigned char)*p); p++, frac_digits++) {
      /* Nine fractional digits are more precision than any size needs;
       * further digits are accepted and ignored. */
      if (frac_digits < 9) {
        frac = frac * 10 + (uint64_t)(*p - '0');
        frac_scale *= 10;
      }
    }
    if (frac_digits == 0)
      return -EINVAL;
    digits += frac_digits;
  }
  if (digits == 0)
    return -EINVAL;

  const char *suffix = p;
  size_t len = strlen(suffix);
  while (len > 0 && isspace((unsigned char)suffix[len - 1]))
    len--;
  for (size_t i = 0; i < sizeof(vgp__suffixes) / sizeof(vgp__suffixes[0]); i++) {
    const struct vgp__suffix *s = &vgp__suffixes[i];
    if (strlen(s->name) != len || strncasecmp(suffix, s->name, len) != 0)
      continue;
    if (s->shift > 0 && whole > (UINT64_MAX >> s->shift))
      return -ERANGE;
    uint64_t bytes = whole << s->shift;
    /* frac < 10^9 < 2^30, so shifting it by more than 20 bits at once
     * could overflow; scale in two steps (the second is exact), which keeps
     * the fraction precise to 2^-20 of the unit. */
    uint64_t frac_bytes = (frac << (s->shift > 20 ? 20 : s->shift)) / frac_scale;
    if (s->shift > 20)
      frac_bytes <<= (s->shift - 20);
    if (bytes > UINT64_MAX - frac_bytes)
      return -ERANGE;
    *ret_bytes = bytes + frac_bytes;
    return 0;
  }
  return -EINVAL;
}

int vgp_parse_percent(const char *text, unsigned min, unsigned max,
                      unsigned *ret_percent) {
  char buf[32];
  size_t len;
  uint64_t value;
  int r;

  if (text == NULL)
    return -EINVAL;
  len = strlen(text);
  if (len == 0 || len >= sizeof(buf))
    return -EINVAL;
  memcpy(buf, text, len + 1);
  if (buf[len - 1] == '%')
    buf[len - 1] = '\0';
  r = vgp_parse_u64(buf, &value);
  if (r < 0)
    return r;
  if (value < min || value > max)
    return -ERANGE;
  *ret_percent = (unsigned)value;
  return 0;
}

char *vgp_format_size(uint64_t bytes, char *buf, size_t len) {
  static const char *const names[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  unsigned unit = 0;
  double value = (double)bytes;

  if (buf == NULL || len == 0)
    return buf;
  while (value >= 1024.0 && unit + 1 < sizeof(names) / sizeof(names[0])) {
    value /= 1024.0;
    unit++;
  }
  if (unit == 0)
    snprintf(buf, len, "%llu B", (unsigned long long)bytes);
  else
    snprintf(buf, len, "%.2f %s", value, names[unit]);
  return buf;
}
