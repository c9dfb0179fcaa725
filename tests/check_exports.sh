#!/bin/sh
# Every global symbol a source file defines carries its module prefix
# (the file name: gateway/oidc/http_client.c -> httpc_, storage/store_lmdb.c ->
# store_lmdb_ or store_; a family of files such as gateway/oidc_*.c or
# gateway/headers_*.c shares its family's prefix).  Exceptions: main, and
# fatal/fatalx in log.c.
set -e
build=${1:-build}
status=0
for obj in $(find "$build/gateway" "$build/policies" "$build/storage" -name '*.o' 2>/dev/null); do
	base=$(basename "$obj" .o)
	case "$base" in
	http_client) prefix=httpc_ ;;
	oidc_*) prefix=oidc_ ;;
	headers_*) prefix=headers_ ;;
	store_lmdb) prefix=store_ ;;
	route_parse|match|predicates) prefix=policy_ ;;
	*) prefix=${base}_ ;;
	esac
	for sym in $(nm -g --defined-only "$obj" | awk '$2 ~ /^[TDBR]$/ {print $3}'); do
		case "$sym" in
		"$prefix"*|main) ;;
		fatal|fatalx) [ "$base" = log ] || { echo "$obj: $sym"; status=1; } ;;
		*) echo "$obj: global symbol '$sym' lacks the prefix '$prefix'"; status=1 ;;
		esac
	done
done
[ $status -eq 0 ] && echo "exports: every global symbol carries its module prefix"
exit $status
