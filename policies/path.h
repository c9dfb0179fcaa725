/* SPDX-License-Identifier: ISC */
/*
 * path.h: request-path normalisation.  The normalised path is both what the
 * route table is matched against and what gatehouse forwards upstream, so
 * the check and the use always agree.  Pure functions; any thread.
 */
#ifndef GATEHOUSE_PATH_H
#define GATEHOUSE_PATH_H

#include <stddef.h>

#include "core/error.h"

/*
 * Flags for path_normalise().
 * PATH_FOLD_CASE: lower-case ASCII letters in the result (percent escapes
 * keep their upper-case hex).  For a comparison key only; never forward a
 * folded path upstream.  The route matcher folds by itself when the table
 * is case-insensitive, so callers normally pass 0.
 */
#define PATH_FOLD_CASE 0x01

/*
 * Normalise raw_path, the path part of a request-target (no query, no
 * fragment), into out.  The contract (security decisions, see path.c):
 *   - it must start with '/';
 *   - %XX of an unreserved character (ALPHA DIGIT - . _ ~) is decoded; every
 *     other escape is kept, its hex made upper case;
 *   - refused: %2F and %5C (encoded '/' and '\'), a literal '\', NUL, %00,
 *     any control character (< 0x20, 0x7f) raw or encoded, space, '?', '#',
 *     raw bytes >= 0x80, invalid escapes (%G1, %1, a trailing %), escaped
 *     bytes >= 0x80 that are not well-formed UTF-8 (overlong forms such as
 *     %C0%AF, %C0%AE, %E0%80%AF, surrogates, truncated sequences);
 *   - '.' and '..' segments are resolved (RFC 3986 remove_dot_segments),
 *     after decoding, so %2e%2e is '..'; a '..' that would climb above the
 *     root is refused;
 *   - duplicate slashes are collapsed; a trailing slash is kept;
 *   - ';' parameters stay part of their segment, but a segment whose name
 *     (path_segment_name_len) is empty (/;x, /%3Bx) or a dot segment
 *     (/..;/, /.;x, /..%3B/) is refused, because servlet containers strip
 *     the parameters and would then see an empty or dot segment.
 * out receives a NUL-terminated string; outsize >= strlen(raw_path) + 1 is
 * always enough (the result is never longer than the input).
 * Returns 0, or -1 with err set (the caller answers 400).
 */
int path_normalise(const char *raw_path, int flags, char *out, size_t outsize,
    struct gh_error *err);

/*
 * The length of a path segment's name (seg, len bytes, no '/'): the bytes
 * before the first ';' or "%3B", where its parameters start.  The route
 * matcher compares names only, as a servlet upstream would.
 */
size_t path_segment_name_len(const char *seg, size_t len);

/*
 * As path_normalise(), returning a new string (the caller frees it), or NULL
 * with err set (err says "out of memory" on allocation failure).
 */
char *path_normalise_dup(const char *raw_path, int flags, struct gh_error *err);

/*
 * A request target ("/path?query") split at its first '?', its path
 * normalised as path_normalise() does (flags 0): *normpath (new) is what
 * routes match, *path (new) is the normalised path followed by the query
 * exactly as sent, what the upstream receives, so the check and the use
 * cannot disagree.  Returns 0, or -1 with both NULL and err set (ge_code
 * "path_nomem" when out of memory, a path_* refusal otherwise).
 */
int path_target_normalise(
    const char *target, char **normpath, char **path, struct gh_error *err);

#endif
