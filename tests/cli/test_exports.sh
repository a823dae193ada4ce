#!/bin/sh
# tests/cli/test_exports.sh — the shared library's surface: libcomi.so
# exports exactly the functions include/comi.h declares (each marked
# COMI_API), nothing internal (the library is built with hidden visibility),
# and carries the SONAME libcomi.so.MAJOR with the version links
# libcomi.so -> libcomi.so.MAJOR -> libcomi.so.MAJOR.MINOR.PATCH.
. tests/cli/lib.sh
B=${BUILD:-build}
SO=$B/libcomi.so
HDR=include/comi.h

if ! command -v nm >/dev/null 2>&1 || ! command -v readelf >/dev/null 2>&1; then
    fail exports "nm and readelf (binutils) are needed"
    exit 1
fi
[ -e "$SO" ] || { fail exports "no $SO (run make)"; exit 1; }

# Every function declaration in the header: a line at column 0 that names
# comi_xxx( and is not a typedef or a macro.
grep -E '^[A-Za-z].*\bcomi_[a-z0-9_]+\(' "$HDR" | grep -vE '^(typedef|#)' >"$TMP/decl_lines"
sed -E 's/.*\b(comi_[a-z0-9_]+)\(.*/\1/' "$TMP/decl_lines" | sort -u >"$TMP/declared"
n_decl=$(wc -l <"$TMP/declared")
if [ "$n_decl" -lt 50 ]; then
    fail exports_declared "only $n_decl declarations found in $HDR: the pattern is broken"
else
    pass exports_declared
fi
if grep -v '^COMI_API ' "$TMP/decl_lines" >"$TMP/unmarked"; then
    fail exports_marked "declared without COMI_API (not exported): $(tr '\n' ' ' <"$TMP/unmarked" | head -c 300)"
else
    pass exports_marked
fi

# Defined dynamic symbols, less the sanitizer runtimes' hooks in a SAN build.
nm -D --defined-only "$SO" | awk '{print $NF}' | sed 's/@.*//' |
    grep -vE '^(__asan|__ubsan|__sanitizer|__lsan|__sancov|_init$|_fini$|_edata$|_end$|__bss_start$)' |
    sort -u >"$TMP/exported"
if grep -v '^comi_' "$TMP/exported" >"$TMP/leaked"; then
    fail exports_only_comi "$(wc -l <"$TMP/leaked") internal symbols leak: $(head -n 10 "$TMP/leaked" | tr '\n' ' ')"
else
    pass exports_only_comi
fi
missing=$(comm -23 "$TMP/declared" "$TMP/exported" | tr '\n' ' ')
extra=$(comm -13 "$TMP/declared" "$TMP/exported" | tr '\n' ' ')
if [ -n "$missing" ] || [ -n "$extra" ]; then
    fail exports_match_header "declared but not exported: [$missing] exported but not declared: [$extra]"
else
    pass exports_match_header
fi

major=$(sed -n 's/^#define COMI_VERSION_MAJOR \([0-9]*\).*/\1/p' "$HDR")
minor=$(sed -n 's/^#define COMI_VERSION_MINOR \([0-9]*\).*/\1/p' "$HDR")
patch=$(sed -n 's/^#define COMI_VERSION_PATCH \([0-9]*\).*/\1/p' "$HDR")
soname=$(readelf -d "$SO" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
if [ "$soname" = "libcomi.so.$major" ]; then
    pass exports_soname
else
    fail exports_soname "SONAME is '$soname', expected libcomi.so.$major"
fi
l1=$(readlink "$SO"); l2=$(readlink "$B/libcomi.so.$major")
if [ "$l1" = "libcomi.so.$major" ] && [ "$l2" = "libcomi.so.$major.$minor.$patch" ] &&
   [ -f "$B/libcomi.so.$major.$minor.$patch" ] && [ ! -L "$B/libcomi.so.$major.$minor.$patch" ]; then
    pass exports_version_links
else
    fail exports_version_links "libcomi.so -> '$l1', libcomi.so.$major -> '$l2'"
fi

# A C program that declares an internal function links against the static
# library but not against the shared one.
int_sym=$(nm --defined-only -g "$B/libcomi.a" 2>/dev/null | awk '$2=="T"{print $3}' | grep -v '^comi_' | head -n 1)
if [ -z "$int_sym" ]; then
    fail exports_internal_link "no internal global symbol found in libcomi.a"
else
    printf 'void %s(void);\nint main(void) { void (*volatile f)(void) = %s; return f == 0; }\n' \
        "$int_sym" "$int_sym" >"$TMP/int.c"
    if ${CC:-cc} -o "$TMP/int" "$TMP/int.c" -L"$B" -lcomi >"$TMP/link.err" 2>&1; then
        fail exports_internal_link "a program using internal $int_sym linked against libcomi.so"
    else
        pass exports_internal_link
    fi
fi
