/*
 * test_jsonout.c - JSON string literals are escaped as JSON requires, and a
 * bounded write stops at its bound even without a terminator.
 */
#include <string.h>

#include "jsonout.h"
#include "vgp_test.h"

/* What `write` printed, read back. */
static const char *written(void (*write)(FILE *, const char *, size_t), const char *s,
                           size_t max) {
  static char text[256];
  char path[512];
  snprintf(path, sizeof(path), "%s/json", vgp_test_tmpdir());
  FILE *f = fopen(path, "w");
  ASSERT_NOT_NULL(f);
  write(f, s, max);
  ASSERT_OK(fclose(f));
  vgp_test_read_file(path, text, sizeof(text));
  return text;
}

static void whole(FILE *f, const char *s, size_t max) {
  (void)max;
  vgp__json_string(f, s);
}

VGP_TEST(json_strings_are_escaped) {
  ASSERT_EQ_STR(written(whole, "a\"b\\c\nd", 0), "\"a\\\"b\\\\c\\u000ad\"");
  ASSERT_EQ_STR(written(whole, "tab\there\x7f", 0), "\"tab\\u0009here\\u007f\"");
  ASSERT_EQ_STR(written(whole, "caf\xc3\xa9", 0), "\"caf\xc3\xa9\"");
  ASSERT_EQ_STR(written(whole, NULL, 0), "null");
}

VGP_TEST(bounded_strings_stop_at_their_bound) {
  static const char field[4] = {'a', 'b', 'c', 'd'}; /* no terminator */
  ASSERT_EQ_STR(written(vgp__json_string_n, field, sizeof(field)), "\"abcd\"");
  ASSERT_EQ_STR(written(vgp__json_string_n, "ab", 8), "\"ab\"");
}
