#!/bin/sh
# tests/cli/test_install.sh — `make install` into a temporary prefix (and a
# DESTDIR staging tree), then a C program built with `pkg-config --cflags
# --libs comi` against the installed library compresses a text and must print
# what `comi compress` prints; `make uninstall` removes every installed file.
. tests/cli/lib.sh
B=${BUILD:-build}
MAKE=${MAKE:-make}
unset MAKEFLAGS MFLAGS

if ! command -v pkg-config >/dev/null 2>&1; then
    fail install "pkg-config is not installed (scripts/setup.sh installs it)"
    exit 1
fi
major=$(sed -n 's/^#define COMI_VERSION_MAJOR \([0-9]*\).*/\1/p' include/comi.h)
version=$(sed -n 's/^#define COMI_VERSION_STRING "\(.*\)".*/\1/p' include/comi.h)
# the test program needs the sanitizer runtimes when the library has them
SANFLAGS=""
if nm -D "$B/libcomi.so" 2>/dev/null | grep -q '__asan_init'; then
    SANFLAGS="-fsanitize=address,undefined"
    ASAN_OPTIONS=detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}
    export ASAN_OPTIONS
fi

P=$TMP/prefix
if $MAKE -s install BUILD="$B" PREFIX="$P" >"$TMP/install.log" 2>&1; then
    pass install_runs
else
    fail install_runs "make install failed: $(tail -n 3 "$TMP/install.log" | tr '\n' ' ')"
    exit 1
fi
ok=1
for f in "lib/libcomi.so.$version" "include/comi.h" "bin/comi" "lib/pkgconfig/comi.pc" "lib/libcomi.a"; do
    [ -f "$P/$f" ] || { fail install_files "missing $P/$f"; ok=0; }
done
[ "$(readlink "$P/lib/libcomi.so")" = "libcomi.so.$major" ] &&
    [ "$(readlink "$P/lib/libcomi.so.$major")" = "libcomi.so.$version" ] ||
    { fail install_files "SONAME links wrong: $(ls -l "$P/lib" | tr '\n' ' ')"; ok=0; }
[ "$ok" = 1 ] && pass install_files

PKG_CONFIG_PATH=$P/lib/pkgconfig
export PKG_CONFIG_PATH
pcv=$(pkg-config --modversion comi 2>&1)
if [ "$pcv" = "$version" ]; then pass install_pkgconfig_version
else fail install_pkgconfig_version "pkg-config --modversion comi: '$pcv', expected $version"; fi

cat >"$TMP/prog.c" <<'PROG'
#include <comi.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    if (strcmp(comi_version(), COMI_VERSION_STRING) != 0) {
        fprintf(stderr, "header %s, library %s\n", COMI_VERSION_STRING, comi_version());
        return 1;
    }
    comi_ctx *ctx = comi_ctx_new(NULL);
    comi_text_params p = comi_text_default_params();
    p.ratio = 0;
    if (sscanf(argv[3], "%lf", &p.ratio) != 1) return 2;
    comi_text_result res;
    if (comi_compress_text(ctx, argv[1], argv[2], &p, &res) != COMI_OK) {
        fprintf(stderr, "%s\n", comi_errmsg(ctx));
        return 1;
    }
    printf("%s\n", res.text);
    comi_text_result_free(&res);
    comi_ctx_free(ctx);
    return 0;
}
PROG
flags=$(pkg-config --cflags --libs comi)
if ${CC:-cc} -std=c11 -Wall -Werror $SANFLAGS -o "$TMP/prog" "$TMP/prog.c" $flags \
        -Wl,-rpath,"$P/lib" >"$TMP/cc.log" 2>&1; then
    pass install_pkgconfig_build
else
    fail install_pkgconfig_build "cc $flags: $(head -c 400 "$TMP/cc.log")"
fi
if ldd "$TMP/prog" 2>/dev/null | grep -q "libcomi.so.$major => $P/lib/libcomi.so.$major"; then
    pass install_links_installed_library
else
    fail install_links_installed_library "$(ldd "$TMP/prog" 2>&1 | grep comi)"
fi
ctx="The Eiffel Tower is in Paris. It was finished in 1889. Bananas are yellow and grow in bunches."
q="When was the Eiffel Tower finished?"
"$TMP/prog" "$ctx" "$q" 2 >"$TMP/prog.out" 2>"$TMP/prog.err"
rc=$?
"$P/bin/comi" compress --context "$ctx" --question "$q" --ratio 2 >"$TMP/cli.out" 2>"$TMP/cli.err"
if [ "$rc" -eq 0 ] && [ -s "$TMP/prog.out" ] && cmp -s "$TMP/prog.out" "$TMP/cli.out"; then
    pass install_program_matches_cli
else
    fail install_program_matches_cli "rc $rc, program '$(cat "$TMP/prog.out" "$TMP/prog.err")' vs installed CLI '$(cat "$TMP/cli.out" "$TMP/cli.err")'"
fi

# DESTDIR stages under another root with the same PREFIX-relative layout.
D=$TMP/stage
if $MAKE -s install BUILD="$B" PREFIX=/opt/comi DESTDIR="$D" >"$TMP/d.log" 2>&1 &&
   [ -f "$D/opt/comi/lib/libcomi.so.$version" ] && [ -f "$D/opt/comi/bin/comi" ] &&
   grep -q '^prefix=/opt/comi$' "$D/opt/comi/lib/pkgconfig/comi.pc"; then
    pass install_destdir
else
    fail install_destdir "$(tail -n 3 "$TMP/d.log" | tr '\n' ' '); $(find "$D" | head -n 20 | tr '\n' ' ')"
fi

for root in "$P" "$D/opt/comi"; do
    if [ "$root" = "$P" ]; then
        $MAKE -s uninstall BUILD="$B" PREFIX="$P" >"$TMP/u.log" 2>&1
    else
        $MAKE -s uninstall BUILD="$B" PREFIX=/opt/comi DESTDIR="$D" >"$TMP/u.log" 2>&1
    fi
    left=$(find "$root" \( -type f -o -type l \) | tr '\n' ' ')
    if [ -z "$left" ]; then pass "uninstall_$(basename "$root")"
    else fail "uninstall_$(basename "$root")" "left behind: $left"; fi
done
