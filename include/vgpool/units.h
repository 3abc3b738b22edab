/*
 * units.h - parsing and printing of the quantities users type.
 *
 * Every front end (vgpool run, limits files, HAMi's environment variables,
 * the simulator's device specs) reads memory sizes and percentages through
 * these functions, so "4GiB" means the same thing everywhere and a typo is
 * refused the same way everywhere.
 *
 * Sizes are binary whatever the spelling: "1G", "1Gi", "1GiB" and "1GB" are
 * all 2^30 bytes, because that is what people mean when they size GPU memory
 * (nvidia-smi prints MiB and calls them MB). A plain number is bytes. A
 * decimal fraction is allowed ("1.5GiB") and is rounded down to a byte.
 *
 * All functions return 0 or a negative errno value and leave their ret_
 * outputs untouched on failure.
 */
#ifndef VGPOOL_UNITS_H
#define VGPOOL_UNITS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Parses a byte size such as "4GiB", "1024M", "512k" or "1073741824".
 * Returns -EINVAL for anything else (empty, negative, unknown suffix,
 * trailing junk) and -ERANGE when the value does not fit in 64 bits. */
int vgp_parse_size(const char *text, uint64_t *ret_bytes);

/* Parses a non-negative decimal integer with no sign, suffix or junk. */
int vgp_parse_u64(const char *text, uint64_t *ret_value);

/* Parses an integer in [min, max] (optional leading '-'). */
int vgp_parse_int(const char *text, long min, long max, long *ret_value);

/* Parses a percentage in [min, max]; a trailing '%' is allowed. */
int vgp_parse_percent(const char *text, unsigned min, unsigned max,
                      unsigned *ret_percent);

/* Writes a human-readable size ("3.50 GiB", "512 B") into buf, always
 * NUL-terminated and truncated to len. Returns buf. */
char *vgp_format_size(uint64_t bytes, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif
