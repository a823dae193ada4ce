# comi — build with `make`, test with `make test`, sanitizers with
# `make SAN=address,undefined test` (builds into build-san/).
#
# Every src/<subsystem>/*.c goes into the library, every tools/*.c and
# tools/serve/*.c into the CLI,
# every tests/test_*.c becomes one test program, every bench/*.c one
# benchmark program. Adding a file needs no Makefile edit.

CC      ?= cc
SAN     ?=
ifeq ($(SAN),)
BUILD   ?= build
OPT     ?= -O2
else
BUILD   ?= build-san
OPT     ?= -O1 -fno-omit-frame-pointer
endif

PKGS     = jansson libpcre2-8 libutf8proc libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
BLAS_CFLAGS := $(shell pkg-config --cflags openblas 2>/dev/null)
BLAS_LIBS   := $(or $(shell pkg-config --libs openblas 2>/dev/null),-lopenblas)

WARN    = -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
          -Wmissing-prototypes -Werror
# ARCH: flags for every file (default none: the library runs on any x86-64).
# SIMD: flags for the kernel files only (src/*/*_avx2.c; ops.c's vector
# loops use target attributes), used at run time when the CPU has
# AVX2/FMA/F16C; `make SIMD=` builds them empty (scalar references only).
ARCH   ?=
ifneq ($(filter x86_64 i%86,$(shell $(CC) -dumpmachine | cut -d- -f1)),)
SIMD   ?= -mavx2 -mfma -mf16c
else
SIMD   ?=
endif
# tools/ see only the public header; the library, tests and benches also src/
INC     = -Iinclude -Isrc
CFLAGS_ALL = $(OPT) -g $(WARN) $(ARCH) -fPIC -fvisibility=hidden -D_GNU_SOURCE -pthread \
             $(INC) $(PKG_CFLAGS) $(BLAS_CFLAGS) $(CFLAGS)
LDLIBS_ALL = $(PKG_LIBS) $(BLAS_LIBS) -lstemmer -lm -pthread $(LDLIBS)
ifneq ($(SAN),)
CFLAGS_ALL += -fsanitize=$(SAN) -fno-sanitize-recover=undefined
LDFLAGS    += -fsanitize=$(SAN)
endif

# The version lives in include/comi.h only; the shared library is
# libcomi.so.MAJOR.MINOR.PATCH with SONAME libcomi.so.MAJOR and the links
# libcomi.so.MAJOR and libcomi.so next to it. Only the functions include/comi.h
# marks COMI_API are exported (-fvisibility=hidden).
comi_version = $(shell sed -n 's/^\#define COMI_VERSION_$(1) \([0-9][0-9]*\).*/\1/p' include/comi.h)
VERSION  := $(call comi_version,MAJOR).$(call comi_version,MINOR).$(call comi_version,PATCH)
SONAME   := libcomi.so.$(call comi_version,MAJOR)
SOFILE   := libcomi.so.$(VERSION)

SUBSYS    := base formats runtime comi text eval
LIB_SRC   := $(sort $(foreach d,$(SUBSYS),$(wildcard src/$(d)/*.c)))
LIB_HDR   := $(foreach d,$(SUBSYS),$(wildcard src/$(d)/*.h))
TOOL_SRC  := $(sort $(wildcard tools/*.c tools/serve/*.c))
TEST_SRC  := $(sort $(wildcard tests/test_*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
TOOL_OBJ  := $(TOOL_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

# The CLI and the service use the public API only (include/comi.h): their
# objects are compiled without -Isrc, so an internal header cannot creep in.
$(TOOL_OBJ): INC = -Iinclude

# make install PREFIX=/usr/local [DESTDIR=staging] puts the shared library
# (with its SONAME links), libcomi.a, include/comi.h, the CLI and a generated
# comi.pc under PREFIX; make uninstall removes exactly those files.
PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PCDIR      ?= $(LIBDIR)/pkgconfig

.PHONY: all lib test check bench bench-train-torch check-torch check-torch-smollm2 clean format fuzz fuzz-coverage install uninstall
all: $(BUILD)/libcomi.a $(BUILD)/libcomi.so $(BUILD)/comi

# the library alone (what the Python package's build step needs)
lib: $(BUILD)/libcomi.a $(BUILD)/libcomi.so

$(BUILD)/obj/%.o: %.c $(wildcard include/*.h tools/*.h tools/serve/*.h tests/*.h) $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/obj/src/%_avx2.o: CFLAGS_ALL += $(SIMD)
ifeq ($(strip $(SIMD)),)
CFLAGS_ALL += -DCOMI_NO_SIMD
endif

$(BUILD)/libcomi.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/$(SOFILE): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--as-needed $(LDFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/libcomi.so: $(BUILD)/$(SOFILE)
	ln -sf $(SOFILE) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $@

$(BUILD)/comi: $(TOOL_OBJ) $(BUILD)/libcomi.a
	$(CC) $(LDFLAGS) -o $@ $(TOOL_OBJ) $(BUILD)/libcomi.a $(LDLIBS_ALL)

$(BUILD)/tests/%: tests/%.c $(BUILD)/libcomi.a $(wildcard tests/*.h tests/fuzz/*.[ch] include/*.h tools/*.c tools/serve/*.c) $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS) -o $@ $< $(BUILD)/libcomi.a $(LDLIBS_ALL)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libcomi.a $(wildcard bench/*.h include/*.h) $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS) -o $@ $< $(BUILD)/libcomi.a $(LDLIBS_ALL)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PCDIR)
	install -m 755 $(BUILD)/$(SOFILE) $(DESTDIR)$(LIBDIR)/$(SOFILE)
	ln -sf $(SOFILE) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libcomi.so
	install -m 644 $(BUILD)/libcomi.a $(DESTDIR)$(LIBDIR)/libcomi.a
	install -m 644 include/comi.h $(DESTDIR)$(INCLUDEDIR)/comi.h
	install -m 755 $(BUILD)/comi $(DESTDIR)$(BINDIR)/comi
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(LIBDIR)' 'includedir=$(INCLUDEDIR)' '' \
	    'Name: comi' \
	    'Description: context compression by Marginal Information Gain (COMI)' \
	    'Version: $(VERSION)' \
	    'Requires.private: jansson libpcre2-8 libutf8proc' \
	    'Libs: -L$${libdir} -lcomi' \
	    'Libs.private: $(strip $(BLAS_LIBS)) -lm -pthread' \
	    'Cflags: -I$${includedir}' >$(DESTDIR)$(PCDIR)/comi.pc

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/$(SOFILE) $(DESTDIR)$(LIBDIR)/$(SONAME) \
	      $(DESTDIR)$(LIBDIR)/libcomi.so $(DESTDIR)$(LIBDIR)/libcomi.a \
	      $(DESTDIR)$(INCLUDEDIR)/comi.h $(DESTDIR)$(BINDIR)/comi $(DESTDIR)$(PCDIR)/comi.pc

test: all $(TEST_BIN)
	@BUILD=$(BUILD) sh tests/run.sh

check: test

bench: all $(BENCH_BIN)

# PyTorch oracles, not part of `make test` (torch is ~3 GB from PyPI, and
# .ci/run does not install it): tests/oracle/setup_torch.sh makes the venv.
TORCH_VENV ?= $(HOME)/.cache/comi/torch-venv
# loads a `comi train` checkpoint into the authors' module with
# load_state_dict(strict=False); losses and gradients vs autograd
check-torch: all
	TORCH_VENV=$(TORCH_VENV) sh tests/oracle/setup_torch.sh
	$(TORCH_VENV)/bin/python tests/oracle/check_checkpoint.py --comi $(BUILD)/comi --negative
	$(TORCH_VENV)/bin/python tests/oracle/check_checkpoint.py --comi $(BUILD)/comi

# the same on the real checkpoint of scripts/train_smollm2.sh (SmolLM2-135M,
# Q4_1 GGUF base): load, then 2 held-out rows' losses and gradients (minutes)
SMOLLM2_CKPT ?= $(HOME)/comi-train/smollm2-nq-s700
SMOLLM2_BASE ?= $(HOME)/.cache/comi/models/SmolLM2-135M-Instruct.Q4_1.gguf
check-torch-smollm2: all
	TORCH_VENV=$(TORCH_VENV) sh tests/oracle/setup_torch.sh
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(TORCH_VENV)/bin/python tests/oracle/check_checkpoint.py \
	    --comi $(BUILD)/comi --checkpoint $(SMOLLM2_CKPT) --base $(SMOLLM2_BASE) \
	    --data $(SMOLLM2_CKPT).data/heldout.jsonl --rows 2

# comi train vs the same step in PyTorch on SmolLM2-135M (minutes)
bench-train-torch: all $(BUILD)/bench/bench_train
	TORCH_VENV=$(TORCH_VENV) sh tests/oracle/setup_torch.sh
	TORCH_PY=$(TORCH_VENV)/bin/python COMI=$(BUILD)/comi BENCH=$(BUILD)/bench/bench_train sh bench/train_vs_torch.sh

# libFuzzer targets (clang): builds tests/fuzz/fuzz_*.c into build-fuzz/ and
# runs each for FUZZ_SECONDS; see tests/fuzz/Makefile.
FUZZ_SECONDS ?= 60
fuzz:
	$(MAKE) -f tests/fuzz/Makefile run FUZZ_SECONDS=$(FUZZ_SECONDS)

# Line coverage of each fuzz target's corpus (clang + llvm-cov, build-cov/).
fuzz-coverage:
	sh scripts/fuzz_coverage.sh

format:
	clang-format -i include/*.h src/*/*.c src/*/*.h tools/*.c tools/*.h tools/serve/*.c tests/*.c bench/*.c

clean:
	rm -rf build build-san
