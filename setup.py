"""Build step of the Python package (pyproject.toml holds the metadata).

build_py runs `make lib` into a private build directory and copies the
shared library into the package as comi/libcomi.so, where comi._lib loads it
from; it also writes the version it read from include/comi.h into
comi/_version.py. The wheel is tagged py3-none-<platform>: it holds a native
library but no Python extension, so any CPython 3 can use it.
"""

import os
import re
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))


def read_version():
    with open(os.path.join(HERE, "include", "comi.h"), encoding="utf-8") as f:
        m = re.search(r'^#define COMI_VERSION_STRING "([^"]+)"', f.read(), re.M)
    if not m:
        raise RuntimeError("include/comi.h has no COMI_VERSION_STRING")
    return m.group(1)


class BuildWithLibrary(build_py):
    """build_py + the C library built by make."""

    def run(self):
        super().run()
        build_dir = os.path.abspath(os.path.join(self.build_temp_dir(), "comi-c"))
        jobs = str(max(1, min(os.cpu_count() or 1, 8)))
        cmd = ["make", "-C", HERE, "-j" + jobs, "BUILD=" + build_dir, "lib"]
        self.announce("building libcomi: " + " ".join(cmd), level=2)
        subprocess.check_call(cmd)
        pkg = os.path.join(self.build_lib, "comi")
        os.makedirs(pkg, exist_ok=True)
        # the real file behind the libcomi.so -> libcomi.so.N -> ... links
        shutil.copyfile(os.path.realpath(os.path.join(build_dir, "libcomi.so")),
                        os.path.join(pkg, "libcomi.so"))
        with open(os.path.join(pkg, "_version.py"), "w", encoding="utf-8") as f:
            f.write('"""The package version (from include/comi.h at build time)."""\n\n'
                    "__version__ = %r\n" % read_version())

    def build_temp_dir(self):
        build = self.get_finalized_command("build")
        return build.build_temp


class BinaryDistribution(Distribution):
    """The package holds a native library: never a pure-Python wheel."""

    def has_ext_modules(self):
        return True


cmdclass = {"build_py": BuildWithLibrary}
try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    try:
        from wheel.bdist_wheel import bdist_wheel
    except ImportError:
        bdist_wheel = None
if bdist_wheel is not None:
    class WheelForAnyPython(bdist_wheel):
        """py3-none-<platform>: ctypes, no CPython ABI."""

        def get_tag(self):
            _, _, plat = super().get_tag()
            return "py3", "none", plat

    cmdclass["bdist_wheel"] = WheelForAnyPython

setup(version=read_version(), cmdclass=cmdclass, distclass=BinaryDistribution)
