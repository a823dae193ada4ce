#!/bin/sh
# Builds llama.cpp's llama-bench from a pinned release, outside the tree, for
# the side-by-side speed table (bench/vs_llamacpp.sh). No GitHub access is
# needed: the llama-cpp-python sdist on PyPI vendors llama.cpp's source under
# vendor/llama.cpp. Nothing here is committed or linked into comi.
#
#   sh bench/build_llamacpp.sh      # -> $COMI_CACHE/llama.cpp-build/bin/llama-bench
#
# Resumable: an existing download, source tree or build directory is reused.
set -eu
VERSION=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
CACHE=${COMI_CACHE:-$HOME/.cache/comi}
SRC=$CACHE/llama-src
BUILD=$CACHE/llama.cpp-build
JOBS=${JOBS:-2}
mkdir -p "$SRC"
SDIST=$SRC/llama_cpp_python-$VERSION.tar.gz
if [ ! -f "$SDIST" ]; then
    python3 -m pip download --no-binary :all: --no-deps \
        "llama-cpp-python==$VERSION" -d "$SRC"
fi
TREE=$SRC/llama_cpp_python-$VERSION/vendor/llama.cpp
if [ ! -f "$TREE/CMakeLists.txt" ]; then
    tar -xzf "$SDIST" -C "$SRC"
fi
cmake -S "$TREE" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=ON -DGGML_BLAS=OFF \
    -DBUILD_SHARED_LIBS=OFF >"$BUILD.cmake.log" 2>&1 ||
    { tail -20 "$BUILD.cmake.log"; exit 1; }
cmake --build "$BUILD" --target llama-bench -j "$JOBS"
echo "llama.cpp (llama-cpp-python $VERSION vendor tree): $BUILD/bin/llama-bench"
