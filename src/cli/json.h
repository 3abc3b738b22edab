/*
 * json.h - the little JSON the CLI writes.
 *
 * `vgpool top --json` prints one JSON object per refresh on one line, so
 * scripts can read it as JSON Lines. Numbers and literals are printed with
 * fprintf; strings, which can hold anything a process calls itself or a
 * file system error says, go through vgp_json_string so the output is
 * always valid JSON.
 */
#ifndef VGP_CLI_JSON_H
#define VGP_CLI_JSON_H

#include <stdio.h>

/* Writes s as a JSON string literal, quotes included, escaping quotes,
 * backslashes and control characters. Bytes >= 0x80 pass through (the
 * text vgpool handles is UTF-8 or ASCII). NULL is written as null. */
void vgp_json_string(FILE *out, const char *s);

#endif
