/*
 * test_units.c - sizes and percentages are parsed the way users mean them,
 * and everything else is refused.
 */
#include <errno.h>

#include "vgp_test.h"
#include "vgpool/units.h"

static uint64_t size_of(const char *text) {
  uint64_t v = 0xdeadbeef;
  int r = vgp_parse_size(text, &v);
  if (r != 0)
    vgp_test_fail(__FILE__, __LINE__, "vgp_parse_size(\"%s\") = %d", text, r);
  return v;
}

VGP_TEST(sizes_mean_what_users_mean) {
  ASSERT_EQ_U64(size_of("1Gi"), 1ull << 30);
  ASSERT_EQ_U64(size_of("1GiB"), 1ull << 30);
  ASSERT_EQ_U64(size_of("1G"), 1ull << 30);
  ASSERT_EQ_U64(size_of("1gb"), 1ull << 30);
  ASSERT_EQ_U64(size_of("1024M"), 1ull << 30);
  ASSERT_EQ_U64(size_of("1024MiB"), 1ull << 30);
  ASSERT_EQ_U64(size_of("4GiB"), 4ull << 30);
  ASSERT_EQ_U64(size_of("512k"), 512ull << 10);
  ASSERT_EQ_U64(size_of("1073741824"), 1ull << 30);
  ASSERT_EQ_U64(size_of("100B"), 100);
  ASSERT_EQ_U64(size_of("1.5GiB"), 3ull << 29);
  ASSERT_EQ_U64(size_of("0.25M"), 1ull << 18);
  ASSERT_EQ_U64(size_of("2T"), 2ull << 40);
  ASSERT_EQ_U64(size_of("0"), 0);
}

VGP_TEST(bad_sizes_are_refused_and_output_untouched) {
  static const char *const bad[] = {"", "4Gx", "-1", "G", "1.G", "1 G B",
                                    "0x10", "1e9", "1GiBs", ".5", "abc",
                                    "1,5G", "++1"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    uint64_t v = 42;
    int r = vgp_parse_size(bad[i], &v);
    if (r != -EINVAL)
      vgp_test_fail(__FILE__, __LINE__, "\"%s\" gave %d, want -EINVAL", bad[i],
                    r);
    ASSERT_EQ_U64(v, 42);
  }
  uint64_t v = 7;
  ASSERT_EQ_INT(vgp_parse_size("99999999999999999999", &v), -ERANGE);
  ASSERT_EQ_INT(vgp_parse_size("20000000T", &v), -ERANGE);
  ASSERT_EQ_INT(vgp_parse_size(NULL, &v), -EINVAL);
  ASSERT_EQ_U64(v, 7);
}

VGP_TEST(percentages) {
  unsigned p = 0;
  ASSERT_OK(vgp_parse_percent("30", 1, 100, &p));
  ASSERT_EQ_INT(p, 30);
  ASSERT_OK(vgp_parse_percent("100%", 1, 100, &p));
  ASSERT_EQ_INT(p, 100);
  p = 5;
  ASSERT_EQ_INT(vgp_parse_percent("0", 1, 100, &p), -ERANGE);
  ASSERT_EQ_INT(vgp_parse_percent("101", 1, 100, &p), -ERANGE);
  ASSERT_EQ_INT(vgp_parse_percent("abc", 1, 100, &p), -EINVAL);
  ASSERT_EQ_INT(vgp_parse_percent("", 1, 100, &p), -EINVAL);
  ASSERT_EQ_INT(vgp_parse_percent("-5", 1, 100, &p), -EINVAL);
  ASSERT_EQ_INT(p, 5);
}

VGP_TEST(integers) {
  long v = 0;
  ASSERT_OK(vgp_parse_int("-3", -10, 10, &v));
  ASSERT_EQ_INT(v, -3);
  ASSERT_EQ_INT(vgp_parse_int("11", -10, 10, &v), -ERANGE);
  ASSERT_EQ_INT(vgp_parse_int("1x", -10, 10, &v), -EINVAL);
  ASSERT_EQ_INT(vgp_parse_int("-", -10, 10, &v), -EINVAL);
  ASSERT_EQ_INT(v, -3);
}

VGP_TEST(format_size) {
  char buf[32];
  ASSERT_EQ_STR(vgp_format_size(512, buf, sizeof(buf)), "512 B");
  ASSERT_EQ_STR(vgp_format_size(3ull << 29, buf, sizeof(buf)), "1.50 GiB");
  ASSERT_EQ_STR(vgp_format_size(80ull << 30, buf, sizeof(buf)), "80.00 GiB");
  char tiny[4];
  vgp_format_size(80ull << 30, tiny, sizeof(tiny));
  ASSERT_EQ_INT(strlen(tiny), 3);
}
