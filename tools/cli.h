/*
 * cli.h — shared pieces of the `comi` command-line tool: the subcommand
 * entry points and argument helpers. Tools use only the public comi.h.
 */
#ifndef COMI_CLI_H
#define COMI_CLI_H

#include "comi.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Each subcommand: argv[0] is the subcommand name. Returns the exit status. */
typedef int (*cli_cmd_fn)(int argc, char **argv);

/* Prints "comi <cmd>: <message>" on one line to stderr and returns 1. */
int cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Strict number parsing of a flag's value: the whole string must be a number
 * in range; on failure prints an error naming flag and value, returns false. */
bool cli_parse_i64(const char *cmd, const char *flag, const char *s, int64_t lo, int64_t hi,
                   int64_t *out);
bool cli_parse_f64(const char *cmd, const char *flag, const char *s, double *out);

/* For a flag that takes a value: returns argv[*i + 1] and advances *i, or
 * prints "missing value for FLAG" and returns NULL. */
const char *cli_value(const char *cmd, int argc, char **argv, int *i);

/* Reads a whole file of raw little-endian float32 values. On success
 * *data (free with free()) and *count. Prints an error and returns false on
 * failure (missing file, size not a multiple of 4). */
bool cli_read_f32(const char *cmd, const char *flag, const char *path, float **data,
                  size_t *count);

/* Reads a whole file (a pipe too) into a malloc'ed buffer with a NUL after
 * its *len bytes. Prints "FLAG: cannot open/read 'PATH'" and returns NULL on
 * failure. */
char *cli_read_file(const char *cmd, const char *flag, const char *path, size_t *len);

/* Writes raw little-endian arrays; prints an error and returns false. */
bool cli_write_bytes(const char *cmd, const char *path, const void *data, size_t bytes);

/* Is stderr a terminal (for progress output)? */
bool cli_stderr_is_tty(void);

#endif /* COMI_CLI_H */
