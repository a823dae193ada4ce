"""Runs python/tests/test_*.py with unittest and prints one line per test
in the project's harness format (PASS name / FAIL name: why / SKIP name:
why), which tests/run.sh counts. Exit status 1 when anything failed."""

import os
import sys
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
# python/, for `import comi` from the checkout; COMI_TEST_INSTALLED=1 tests
# the package installed in the running interpreter instead.
if not os.environ.get("COMI_TEST_INSTALLED"):
    sys.path.insert(0, os.path.dirname(HERE))


class HarnessResult(unittest.TestResult):
    @staticmethod
    def _name(test):
        return "py_" + test.id().split(".", 1)[-1].replace(".", "_")

    @staticmethod
    def _why(err):
        lines = "".join(traceback.format_exception(*err)).strip().splitlines()
        return " | ".join(l.strip() for l in lines[-3:])[:400]

    def addSuccess(self, test):
        super().addSuccess(test)
        print("PASS %s" % self._name(test), flush=True)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        print("FAIL %s: %s" % (self._name(test), self._why(err)), flush=True)

    def addError(self, test, err):
        super().addError(test, err)
        print("FAIL %s: error: %s" % (self._name(test), self._why(err)), flush=True)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        print("SKIP %s: %s" % (self._name(test), reason), flush=True)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        print("PASS %s (expected failure)" % self._name(test), flush=True)

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        print("FAIL %s: unexpected success" % self._name(test), flush=True)


def main():
    """Runs the test_*.py files of the directory given as the first
    argument (default: this one)."""
    where = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else HERE
    suite = unittest.defaultTestLoader.discover(where, pattern="test_*.py", top_level_dir=where)
    result = HarnessResult()
    suite.run(result)
    if result.testsRun == 0:
        print("FAIL py_discovery: no tests found in %s" % where)
        return 1
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
