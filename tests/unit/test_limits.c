/*
 * test_limits.c - limits files round-trip, and every kind of damage is
 * refused with a message that says what is wrong.
 */
#include <errno.h>

#include "crc32.h"
#include "vgp_test.h"
#include "vgpool/limits.h"

static struct vgp_limits sample(void) {
  struct vgp_limits l;
  memset(&l, 0, sizeof(l));
  snprintf(l.container, sizeof(l.container), "train-7f3a");
  l.priority = 0;
  l.oversubscribe = 1;
  l.ndevices = 2;
  snprintf(l.dev[0].uuid, sizeof(l.dev[0].uuid), "GPU-6f1e2a4b-0c3d-4e5f-8a9b-0123456789ab");
  l.dev[0].memory = 4ull << 30;
  l.dev[0].cores = 30;
  l.dev[0].policy = VGP_POLICY_HARD;
  snprintf(l.dev[1].uuid, sizeof(l.dev[1].uuid), "GPU-00000000-1111-2222-3333-444444444444");
  l.dev[1].memory = 0;
  l.dev[1].cores = 100;
  l.dev[1].policy = VGP_POLICY_ELASTIC;
  return l;
}

VGP_TEST(round_trip) {
  struct vgp_limits l = sample(), back;
  char buf[2048], err[256];
  int n = vgp_limits_format(&l, buf, sizeof(buf));
  ASSERT_GT_INT(n, 0);
  ASSERT_OK(vgp_limits_parse(buf, (size_t)n, &back, err, sizeof(err)));
  ASSERT_EQ_STR(back.container, "train-7f3a");
  ASSERT_EQ_INT(back.priority, 0);
  ASSERT_EQ_INT(back.oversubscribe, 1);
  ASSERT_EQ_INT(back.ndevices, 2);
  ASSERT_EQ_U64(back.dev[0].memory, 4ull << 30);
  ASSERT_EQ_INT(back.dev[0].cores, 30);
  ASSERT_EQ_INT(back.dev[1].policy, VGP_POLICY_ELASTIC);
  ASSERT_NOT_NULL(vgp_limits_find(&back, "GPU-00000000-1111-2222-3333-444444444444"));
  ASSERT_NULL(vgp_limits_find(&back, "GPU-nope"));

  char path[512];
  snprintf(path, sizeof(path), "%s/limits", vgp_test_tmpdir());
  ASSERT_OK(vgp_limits_save(path, &l));
  ASSERT_OK(vgp_limits_load(path, &back, err, sizeof(err)));
  ASSERT_EQ_U64(back.dev[0].memory, 4ull << 30);
}

static void expect_refused(const char *text, int want, const char *needle) {
  struct vgp_limits l;
  char err[256] = "";
  l.ndevices = 77;
  int r = vgp_limits_parse(text, strlen(text), &l, err, sizeof(err));
  if (r != want)
    vgp_test_fail(__FILE__, __LINE__, "parse gave %d (%s), want %d, for:\n%s", r, err, want, text);
  ASSERT_CONTAINS(err, needle);
  ASSERT_EQ_INT(l.ndevices, 77);
}

VGP_TEST(damage_is_refused_and_named) {
  struct vgp_limits l = sample();
  char good[2048];
  int n = vgp_limits_format(&l, good, sizeof(good));
  ASSERT_GT_INT(n, 0);

  /* Truncated anywhere before the end. */
  char cut[2048];
  memcpy(cut, good, (size_t)n);
  cut[n - 20] = '\0';
  expect_refused(cut, -EBADMSG, "truncated");
  /* One flipped digit in a quota. */
  char *mem = strstr(good, "memory=4294967296");
  ASSERT_NOT_NULL(mem);
  mem[7] = '9';
  expect_refused(good, -EBADMSG, "checksum");
  expect_refused("something else entirely\n", -EPROTO, "not a vgpool limits file");
  expect_refused("vgpool-limits 2\ncontainer x\nchecksum 0\n", -EPROTONOSUPPORT, "version 2");
  expect_refused("", -EPROTO, "not a vgpool limits file");
}

static void expect_bad_line(const char *body, const char *needle) {
  /* Builds a file around body with a correct checksum, so only the line
   * itself can be at fault. */
  char text[1024];
  int n = snprintf(text, sizeof(text), "vgpool-limits 1\ncontainer c1\n%s\n", body);
  snprintf(text + n, sizeof(text) - (size_t)n, "checksum %08x\n", vgp__crc32(text, (size_t)n));
  expect_refused(text, -EINVAL, needle);
}

VGP_TEST(bad_lines_are_named) {
  expect_bad_line("device GPU-1 memory=4Gx cores=30", "bad memory \"4Gx\"");
  expect_bad_line("device GPU-1 memory=-1", "bad memory \"-1\"");
  expect_bad_line("device GPU-1 memory=", "bad memory \"\"");
  expect_bad_line("device GPU-1 memory=10 cores=0", "bad cores \"0\"");
  expect_bad_line("device GPU-1 memory=10 cores=101", "bad cores \"101\"");
  expect_bad_line("device GPU-1 memory=10 cores=ten", "bad cores \"ten\"");
  expect_bad_line("device GPU-1 memory=10 policy=soft", "bad policy \"soft\"");
  expect_bad_line("device GPU-1 cores=10", "has no memory=");
  expect_bad_line("device GPU-1 memory=1\ndevice GPU-1 memory=2", "listed twice");
  expect_bad_line("priority high", "bad priority \"high\"");
  expect_bad_line("oversubscribe maybe", "bad oversubscribe \"maybe\"");
  expect_bad_line("colour blue", "unknown key \"colour\"");
  expect_bad_line("device GPU-1 memory=1 speed=9", "unknown device key \"speed\"");
}
