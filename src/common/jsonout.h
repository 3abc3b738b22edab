/*
 * jsonout.h - JSON string literals for vgpool's machine-readable output.
 *
 * Numbers and literals are printed with fprintf; strings, which can hold
 * whatever a process calls itself, a file system error says or a shared
 * file contains, go through here so that the output is always valid JSON.
 * The CLI (`vgpool top --json`, `vgpool sim show --json`), the workload
 * tools' --json summaries and the replay reports all use it.
 */
#ifndef VGP_COMMON_JSONOUT_H
#define VGP_COMMON_JSONOUT_H

#include <stddef.h>
#include <stdio.h>

/* Writes s as a JSON string literal, quotes included: quotes and
 * backslashes are escaped with a backslash, control characters and DEL as
 * \u00XX. Bytes >= 0x80 pass through (the text is UTF-8 or ASCII). NULL is
 * written as null. */
void vgp__json_string(FILE *out, const char *s);

/* The same for at most max bytes of s: fixed-size fields of shared files,
 * which a foreign or damaged file may leave unterminated. */
void vgp__json_string_n(FILE *out, const char *s, size_t max);

#endif
