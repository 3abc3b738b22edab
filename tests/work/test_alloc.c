/*
 * test_alloc.c - vgpool-alloc against the simulated driver: a fill stops at
 * the device's capacity less the context's footprint with exit status 3,
 * through every allocation API; --limit and --verify move and check real
 * bytes; the random pattern survives a full device; --hold keeps memory
 * visible to a second process until the holder goes; bad command lines are
 * refused by name.
 *
 * The expected capacity comes from the simulator's own preset table (the
 * per-context footprint of the model), not from numbers copied here.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "vgp_test.h"
#include "work_run.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static struct vgp_wt_result res;

static const char *const apis[] = {"malloc", "pitch", "managed", "async", "vmm"};

/* A one-device node of `gib` GiB; returns the memory a process can get. */
static uint64_t small_node(unsigned gib) {
  char conf[256];
  const struct vgp_sim_preset *p = vgp_sim_preset_find("H100-80GB");
  ASSERT_NOT_NULL(p);
  snprintf(conf, sizeof(conf), "[device]\nmodel = H100-80GB\nmemory = %uGiB\n", gib);
  vgp_wt_use_node(NULL, conf);
  return (uint64_t)gib * GiB - ((uint64_t)p->context_mib << 20);
}

static uint64_t json_u64(const char *key) { return (uint64_t)vgp_wt_json_num(res.out, key); }

VGP_TEST_TIMEOUT(fill_stops_at_oom_with_exit_3, 60) {
  uint64_t avail = small_node(2);
  vgp_wt_run(&res, "vgpool-alloc", "--pattern", "fill", "--chunk", "64MiB", "--json", NULL);
  VGP_WT_EXPECT_STATUS(&res, 3);
  ASSERT_CONTAINS(res.err, "cuMemAlloc_v2(64.00 MiB) failed: CUDA_ERROR_OUT_OF_MEMORY");
  ASSERT_EQ_U64(json_u64("total_bytes"), 2 * GiB);
  ASSERT_EQ_U64(json_u64("free_bytes_before"), avail);
  uint64_t got = json_u64("obtained_bytes");
  ASSERT_LE_U64(got, avail);
  ASSERT_GT_U64(got + 64 * MiB, avail);
  ASSERT_EQ_U64(json_u64("ooms"), 1);
  char stop[32];
  ASSERT_EQ_STR(vgp_wt_json_str(res.out, "stopped_by", stop, sizeof(stop)), "oom");
}

VGP_TEST_TIMEOUT(every_api_is_bounded_by_the_device, 60) {
  uint64_t avail = small_node(2);
  for (size_t i = 0; i < sizeof(apis) / sizeof(apis[0]); i++) {
    char api[32];
    vgp_wt_run(&res, "vgpool-alloc", "--api", apis[i], "--chunk", "128MiB", "--json", NULL);
    VGP_WT_EXPECT_STATUS(&res, 3);
    ASSERT_CONTAINS(res.err, "CUDA_ERROR_OUT_OF_MEMORY");
    ASSERT_EQ_STR(vgp_wt_json_str(res.out, "api", api, sizeof(api)), apis[i]);
    uint64_t got = json_u64("obtained_bytes");
    /* Within one chunk (plus pitch padding) of what the device had. */
    ASSERT_LE_U64(got, avail);
    ASSERT_GT_U64(got + 136 * MiB, avail);
  }
}

VGP_TEST_TIMEOUT(every_api_moves_real_bytes, 60) {
  small_node(2);
  for (size_t i = 0; i < sizeof(apis) / sizeof(apis[0]); i++) {
    vgp_wt_run(&res, "vgpool-alloc", "--api", apis[i], "--limit", "96MiB", "--chunk", "32MiB",
               "--verify", "--json", NULL);
    VGP_WT_EXPECT_STATUS(&res, 0);
    uint64_t got = json_u64("obtained_bytes");
    ASSERT_GE_U64(got, 96 * MiB);
    ASSERT_LT_U64(got, 100 * MiB); /* pitch pads rows a little */
    ASSERT_EQ_U64(json_u64("verified_bytes"), got);
    ASSERT_EQ_U64(json_u64("allocations"), 3);
    char stop[32];
    ASSERT_EQ_STR(vgp_wt_json_str(res.out, "stopped_by", stop, sizeof(stop)), "limit");
  }
}

VGP_TEST_TIMEOUT(pitch_reports_the_padded_size, 60) {
  small_node(2);
  /* Rows of 4000 bytes are padded to a pitch of at least 4096. */
  vgp_wt_run(&res, "vgpool-alloc", "--api", "pitch", "--limit", "40000000", "--chunk", "40000000",
             "--json", NULL);
  VGP_WT_EXPECT_STATUS(&res, 0);
  ASSERT_GE_U64(json_u64("obtained_bytes"), 10000ull * 4096);
}

VGP_TEST_TIMEOUT(verify_fill_to_the_brim, 60) {
  /* Every byte of a small device written, summed on the device and read
   * back; the verify accumulator takes one small allocation of its own. */
  uint64_t avail = small_node(1);
  vgp_wt_run(&res, "vgpool-alloc", "--chunk", "64MiB", "--verify", "--json", NULL);
  VGP_WT_EXPECT_STATUS(&res, 3);
  uint64_t got = json_u64("obtained_bytes");
  ASSERT_GT_U64(got + 128 * MiB, avail);
  ASSERT_EQ_U64(json_u64("verified_bytes"), got);
}

VGP_TEST_TIMEOUT(random_pattern_survives_a_full_device, 60) {
  uint64_t avail = small_node(2);
  vgp_wt_run(&res, "vgpool-alloc", "--pattern", "random", "--min", "256MiB", "--max", "768MiB",
             "--duration", "0.5", "--seed", "3", "--json", NULL);
  VGP_WT_EXPECT_STATUS(&res, 0);
  ASSERT_GT_U64(json_u64("ooms"), 0);
  ASSERT_GT_U64(json_u64("frees"), 0);
  ASSERT_LE_U64(json_u64("peak_bytes"), avail);
  /* Expected out-of-memory answers are counted, not printed. */
  ASSERT_FALSE(strstr(res.err, "CUDA_ERROR_OUT_OF_MEMORY") != NULL);
}

VGP_TEST_TIMEOUT(random_pattern_verifies_every_api, 60) {
  small_node(2);
  for (size_t i = 0; i < sizeof(apis) / sizeof(apis[0]); i++) {
    vgp_wt_run(&res, "vgpool-alloc", "--pattern", "random", "--api", apis[i], "--min", "1MiB",
               "--max", "8MiB", "--limit", "64MiB", "--duration", "0.2", "--verify", "--json",
               NULL);
    VGP_WT_EXPECT_STATUS(&res, 0);
    ASSERT_GT_U64(json_u64("allocations"), 0);
    ASSERT_LE_U64(json_u64("peak_bytes"), 64 * MiB);
  }
}

VGP_TEST_TIMEOUT(hold_keeps_memory_until_the_holder_goes, 60) {
  /* 4 GiB board: the holder's context (512 MiB) and 1 GiB are taken while
   * it holds; a second process then gets what is left after its own
   * context; once the holder is gone the memory is back. */
  uint64_t avail = small_node(4);
  char out[512], text[4096];
  snprintf(out, sizeof(out), "%s/holder.out", vgp_test_tmpdir());
  const char *argv[] = {"--limit", "1GiB", "--chunk", "256MiB", "--hold", "30", "--json", NULL};
  pid_t holder = vgp_wt_spawn("vgpool-alloc", out, argv);
  ASSERT_GT_INT(holder, 0);
  /* The summary is printed once the memory is held. */
  VGP_WAIT_UNTIL((vgp_test_read_file(out, text, sizeof(text)), strstr(text, "obtained_bytes")),
                 20000);

  vgp_wt_run(&res, "vgpool-alloc", "--chunk", "64MiB", "--json", NULL);
  VGP_WT_EXPECT_STATUS(&res, 3);
  uint64_t second = json_u64("obtained_bytes");
  uint64_t expect = avail - 1 * GiB - (4 * GiB - avail);
  ASSERT_LE_U64(second, expect);
  ASSERT_GT_U64(second + 64 * MiB, expect);

  ASSERT_OK(kill(holder, SIGKILL));
  ASSERT_EQ_INT(vgp_test_wait(holder), 128 + SIGKILL);
  vgp_wt_run(&res, "vgpool-alloc", "--chunk", "64MiB", "--json", NULL);
  VGP_WT_EXPECT_STATUS(&res, 3);
  ASSERT_GT_U64(json_u64("obtained_bytes") + 64 * MiB, avail);
}

VGP_TEST_TIMEOUT(human_summary, 60) {
  small_node(2);
  vgp_wt_run(&res, "vgpool-alloc", "--limit", "128MiB", NULL);
  VGP_WT_EXPECT_STATUS(&res, 0);
  ASSERT_CONTAINS(res.out, "api malloc: obtained 128.00 MiB in 2 allocations (stopped by limit");
}

VGP_TEST_TIMEOUT(bad_options_are_named_and_exit_2, 60) {
  static const struct {
    const char *args[5];
    const char *message;
  } cases[] = {
    {{"--api", "cuda", NULL}, "--api: unknown value 'cuda' (expected one of: malloc, pitch"},
    {{"--pattern=zigzag", NULL}, "--pattern: unknown value 'zigzag'"},
    {{"--chunk", "12parsecs", NULL}, "--chunk: invalid size '12parsecs'"},
    {{"--chunk", "0", NULL}, "--chunk: '0' is too small"},
    {{"--limit", NULL}, "option '--limit' needs a value"},
    {{"--min", "2GiB", "--max", "1GiB", NULL}, "--min 2147483648 is larger than --max 1073741824"},
    {{"--hold", "soon", NULL}, "--hold: invalid number 'soon'"},
    {{"--seed", "-1", NULL}, "--seed: invalid number '-1'"},
    {{"--verify=1", NULL}, "option '--verify' takes no value"},
    {{"--frobnicate", NULL}, "unknown option '--frobnicate'"},
    {{"-x", NULL}, "unknown option '-x'"},
    {{"leftover", NULL}, "unexpected argument 'leftover'"},
  };
  small_node(2);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const char *const *a = cases[i].args;
    vgp_wt_run(&res, "vgpool-alloc", a[0], a[1], a[2], a[3], a[4], NULL);
    VGP_WT_EXPECT_STATUS(&res, 2);
    ASSERT_CONTAINS(res.err, cases[i].message);
  }
  vgp_wt_run(&res, "vgpool-alloc", "--help", NULL);
  VGP_WT_EXPECT_STATUS(&res, 0);
  ASSERT_CONTAINS(res.out, "usage: vgpool-alloc");
}
