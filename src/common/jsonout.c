/*
 * jsonout.c - JSON string literals (see jsonout.h).
 */
#include <stdint.h>

#include "jsonout.h"

void vgp__json_string_n(FILE *out, const char *s, size_t max) {
  if (s == NULL) {
    fputs("null", out);
    return;
  }
  fputc('"', out);
  for (size_t i = 0; i < max && s[i] != '\0'; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\')
      fprintf(out, "\\%c", c);
    else if (c < 0x20 || c == 0x7f)
      fprintf(out, "\\u%04x", c);
    else
      fputc(c, out);
  }
  fputc('"', out);
}

void vgp__json_string(FILE *out, const char *s) { vgp__json_string_n(out, s, SIZE_MAX); }
