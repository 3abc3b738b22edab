/*
 * test_abi_cuda.c - our CUDA driver declarations match NVIDIA's.
 *
 * vgpool builds without the CUDA toolkit, so abi/ declares the driver API
 * itself; a wrong size, offset, constant or signature there would make the
 * simulator and the interposer misread real clients' memory. Where a
 * toolkit is installed (meson option toolkit_dir), this test compares:
 *
 *  - every typedef, struct/union (size, alignment, and offset, size and type
 *    of every field), enum constant and #define of abi/vgpool_cuda.h with
 *    the real cuda.h (tables from abi_table.c, compiled once per header);
 *  - every entry point of abi/vgpool_cuda_procs.def with NVIDIA's PFN
 *    typedef for its (base, version, per-thread) variant, and its symbol
 *    with the toolkit's stub libcuda.so;
 *  - the variants of each listed base: every one the .def omits must be a
 *    legacy variant whose only differences are 32-bit sizes that became
 *    64-bit in its successor (cuMemAlloc v2000 and the like).
 *
 * Every mismatch is printed with both values before the test fails. Where
 * no toolkit is installed the test reports SKIP with the reason.
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vgp_test.h"

#ifdef VGP_ABI_NO_TOOLKIT

VGP_TEST(abi_matches_cuda_toolkit) { vgp_test_skip(VGP_ABI_NO_TOOLKIT); }

#else

#include "abi_check.h"

static int vgp__mismatches;

static void mismatch(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void mismatch(const char *fmt, ...) {
  va_list ap;
  printf("# MISMATCH ");
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  vgp__mismatches++;
}

static void finish(const char *what, int checked) {
  printf("# %s: %d checked, %d mismatches\n", what, checked, vgp__mismatches);
  if (vgp__mismatches != 0)
    vgp_test_fail(__FILE__, __LINE__, "%d %s differ from the toolkit's",
                  vgp__mismatches, what);
}

/* The real side of entry i; the tables line up (see tables_line_up). */
static const struct vgp_abi_rec *real_of(size_t i) { return &vgp_abi_real[i]; }

static const char *kind_name(int kind) {
  switch (kind) {
  case VGP_ABI_K_TYPE:
    return "typedef";
  case VGP_ABI_K_AGG:
    return "struct/union";
  case VGP_ABI_K_FIELD:
    return "field";
  case VGP_ABI_K_ENUMC:
    return "enum constant";
  case VGP_ABI_K_DEFINE:
    return "macro";
  }
  return "?";
}

/* Checks the common part of a record: the toolkit declares it, and with
 * the type our header gives it. Returns 0 if the rest cannot be compared. */
static int present_and_typed(const struct vgp_abi_rec *o,
                             const struct vgp_abi_rec *r) {
  const char *owner = o->owner ? o->owner : "";
  const char *dot = o->owner ? "." : "";
  if (!r->present) {
    mismatch("%s %s%s%s: declared here, not by the toolkit's cuda.h",
             kind_name(o->kind), owner, dot, o->name);
    return 0;
  }
  if (r->type_ok == 0)
    mismatch("%s %s%s%s: declared here as %s, which is not the toolkit's "
             "type",
             kind_name(o->kind), owner, dot, o->name, o->type_text);
  return 1;
}

VGP_TEST(tables_line_up) {
  size_t n = 0;
  while (vgp_abi_ours[n].kind != 0 && vgp_abi_real[n].kind != 0) {
    const struct vgp_abi_rec *o = &vgp_abi_ours[n], *r = &vgp_abi_real[n];
    ASSERT_EQ_INT(o->kind, r->kind);
    ASSERT_EQ_STR(o->name, r->name);
    ASSERT_EQ_STR(o->owner ? o->owner : "", r->owner ? r->owner : "");
    /* Our side compiles the generator's reading of our header against our
     * header: a mismatch here is a bug in gen_abi_check.py. */
    if (o->present != 1 || o->type_ok == 0)
      vgp_test_fail(
          __FILE__, __LINE__, "gen_abi_check.py misread %s %s%s%s as type %s",
          kind_name(o->kind), o->owner ? o->owner : "", o->owner ? "." : "",
          o->name, o->type_text ? o->type_text : "-");
    n++;
  }
  ASSERT_EQ_INT(vgp_abi_ours[n].kind, 0);
  ASSERT_EQ_INT(vgp_abi_real[n].kind, 0);
  ASSERT_GT_INT(n, 0);
  printf("# %zu records; our declarations follow CUDA %d, the toolkit is "
         "CUDA %d\n",
         n, vgp_abi_ours_version, vgp_abi_real_version);
}

VGP_TEST(typedefs_match) {
  int checked = 0;
  for (size_t i = 0; vgp_abi_ours[i].kind != 0; i++) {
    const struct vgp_abi_rec *o = &vgp_abi_ours[i], *r = real_of(i);
    if (o->kind != VGP_ABI_K_TYPE)
      continue;
    checked++;
    if (!present_and_typed(o, r))
      continue;
    if (o->size != r->size || o->align != r->align)
      mismatch("typedef %s: size %llu align %llu here, size %llu align %llu "
               "in cuda.h",
               o->name, o->size, o->align, r->size, r->align);
  }
  finish("typedefs", checked);
}

VGP_TEST(struct_layouts_match) {
  int aggs = 0, fields = 0;
  for (size_t i = 0; vgp_abi_ours[i].kind != 0; i++) {
    const struct vgp_abi_rec *o = &vgp_abi_ours[i], *r = real_of(i);
    if (o->kind == VGP_ABI_K_AGG) {
      aggs++;
      if (!present_and_typed(o, r))
        continue;
      if (o->size != r->size || o->align != r->align)
        mismatch("%s: size %llu align %llu here, size %llu align %llu in "
                 "cuda.h",
                 o->name, o->size, o->align, r->size, r->align);
    } else if (o->kind == VGP_ABI_K_FIELD) {
      fields++;
      if (!present_and_typed(o, r))
        continue;
      if (o->offset != r->offset || o->size != r->size)
        mismatch("%s.%s: offset %llu size %llu here, offset %llu size %llu "
                 "in cuda.h",
                 o->owner, o->name, o->offset, o->size, r->offset, r->size);
    }
  }
  printf("# %d structs/unions, %d fields\n", aggs, fields);
  finish("struct layouts", aggs + fields);
}

VGP_TEST(enum_values_match) {
  int checked = 0;
  for (size_t i = 0; vgp_abi_ours[i].kind != 0; i++) {
    const struct vgp_abi_rec *o = &vgp_abi_ours[i], *r = real_of(i);
    if (o->kind != VGP_ABI_K_ENUMC)
      continue;
    checked++;
    if (!present_and_typed(o, r))
      continue;
    if (o->value != r->value)
      mismatch("%s = %lld here, %lld in cuda.h", o->name, o->value, r->value);
  }
  finish("enum constants", checked);
}

VGP_TEST(defines_match) {
  int checked = 0;
  for (size_t i = 0; vgp_abi_ours[i].kind != 0; i++) {
    const struct vgp_abi_rec *o = &vgp_abi_ours[i], *r = real_of(i);
    if (o->kind != VGP_ABI_K_DEFINE)
      continue;
    checked++;
    if (!present_and_typed(o, r))
      continue;
    if (o->value != r->value || o->size != r->size || o->tclass != r->tclass)
      mismatch("#define %s: value %#llx (size %llu, type class %d) here, "
               "%#llx (size %llu, type class %d) in cuda.h",
               o->name, (unsigned long long)o->value, o->size, o->tclass,
               (unsigned long long)r->value, r->size, r->tclass);
  }
  finish("macros", checked);
}

VGP_TEST(entry_points_match_pfn_typedefs) {
  /* The generator read the .def with a regular expression; make sure it
   * saw every line the C preprocessor sees, in the same order. */
  size_t n = 0;
  for (; vgp_abi_def[n].symbol != NULL; n++) {
    ASSERT_NOT_NULL(vgp_abi_procs[n].symbol);
    ASSERT_EQ_STR(vgp_abi_def[n].symbol, vgp_abi_procs[n].symbol);
    ASSERT_EQ_STR(vgp_abi_def[n].base, vgp_abi_procs[n].base);
    ASSERT_EQ_INT(vgp_abi_def[n].version, vgp_abi_procs[n].version);
    ASSERT_EQ_INT(vgp_abi_def[n].per_thread, vgp_abi_procs[n].per_thread);
  }
  ASSERT_NULL(vgp_abi_procs[n].symbol);
  ASSERT_GT_INT(n, 0);

  for (size_t i = 0; i < n; i++) {
    const struct vgp_abi_proc *p = &vgp_abi_procs[i];
    if (p->note[0] != '\0')
      mismatch("%s (\"%s\", %d, %d): %s", p->symbol, p->base, p->version,
               p->per_thread, p->note);
    if (!p->pfn_present)
      mismatch("%s (\"%s\", %d, %d): cudaTypedefs.h has no %s, so base, "
               "version or per_thread is wrong",
               p->symbol, p->base, p->version, p->per_thread, p->pfn);
    else if (!p->compatible)
      mismatch("%s: its parameters are not those of %s", p->symbol, p->pfn);
  }
  finish("entry points", (int)n);
}

VGP_TEST(entry_points_exported_by_stub) {
  void *h = dlopen(VGP_ABI_STUB, RTLD_LAZY | RTLD_LOCAL);
  if (h == NULL) {
    char why[512];
    snprintf(why, sizeof(why), "cannot load the toolkit's stub %s: %s",
             VGP_ABI_STUB, dlerror());
    vgp_test_skip(why);
  }
  int n = 0;
  for (const struct vgp_abi_def_entry *e = vgp_abi_def; e->symbol; e++, n++)
    if (dlsym(h, e->symbol) == NULL)
      mismatch("%s is not exported by %s", e->symbol, VGP_ABI_STUB);
  dlclose(h);
  finish("exported symbols", n);
}

VGP_TEST(omitted_variants_are_legacy_32bit) {
  int n = 0;
  for (const struct vgp_abi_omitted *om = vgp_abi_omitted; om->base;
       om++, n++) {
    char why[1024] = "";
    size_t len = 0;
    int widened = 0, other = 0;
    for (const struct vgp_abi_omitted_item *it = vgp_abi_omitted_items; it->pfn;
         it++) {
      if (strcmp(it->pfn, om->pfn) != 0)
        continue;
      if (it->same)
        continue;
      int wide =
          it->old_int && it->new_int && it->old_size == 4 && it->new_size == 8;
      if (wide)
        widened++;
      else
        other++;
      if (len < sizeof(why))
        len += (size_t)snprintf(why + len, sizeof(why) - len,
                                "%s%s: %s %zu bytes -> %s %zu bytes%s",
                                len ? ", " : "", it->what, it->old_type,
                                it->old_size, it->new_type, it->new_size,
                                wide ? "" : " [not a 32-to-64-bit widening]");
    }
    if (om->note[0] == '\0' && om->successor[0] != '\0' && widened > 0 &&
        other == 0) {
      printf("# omitted %s v%d (%s): legacy 32-bit variant of %s: %s\n",
             om->base, om->version, om->pfn, om->successor, why);
      continue;
    }
    mismatch("%s v%d (%s) is not listed in the .def and is not a legacy "
             "32-bit variant%s%s: %s",
             om->base, om->version, om->pfn, om->successor[0] ? " of " : "",
             om->successor,
             om->note[0]            ? om->note
             : widened + other == 0 ? "same signature as its successor"
                                    : why);
  }
  finish("omitted variants", n);
}

#endif
