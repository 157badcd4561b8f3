"""The CPU backend's vector kernels (csrc/cpu/kernels.h) on their own, without torch: tests/cpu_isa/kernels_check.cpp
built for this machine (every ISA table its CPU runs, against scalar references and the baseline's bits) and, where
Debian's cross compiler and qemu-user are installed (scripts/check_cpu_build.sh installs both), for aarch64, whose
NEON baseline no machine here runs natively; plus its planted-bug mode (the test of the test)."""
import glob
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = [os.path.join(ROOT, "tests", "cpu_isa", "kernels_check.cpp"),
           os.path.join(ROOT, "csrc", "cpu", "dispatch.cpp"),
           *sorted(glob.glob(os.path.join(ROOT, "csrc", "cpu", "isa_*.cpp")))]
FLAGS = ["-std=c++17", "-O2", "-ffp-contract=off", "-Wall", "-Werror"]  # as setup.py: no FMA contraction
TARGETS = {"host": (os.environ.get("CXX", "g++"), [], []),
           "aarch64": ("aarch64-linux-gnu-g++", ["-static"], ["qemu-aarch64"])}


@pytest.fixture(scope="module", params=list(TARGETS))
def kernels_check(request, tmp_path_factory):
    compiler, flags, runner = TARGETS[request.param]
    missing = [tool for tool in (compiler, *runner) if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{missing} not installed (Debian: g++-aarch64-linux-gnu, qemu-user)")
    exe = str(tmp_path_factory.mktemp(request.param) / "kernels_check")
    subprocess.run([compiler, *FLAGS, *flags, *SOURCES, "-o", exe], check=True)
    return [*runner, exe]


def test_every_isa_against_scalar_references(kernels_check):
    run = subprocess.run(kernels_check, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ok baseline" in run.stdout


def test_the_check_catches_planted_bugs(kernels_check):
    run = subprocess.run([*kernels_check, "planted"], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("failures") == 8 and " 0 failures" not in run.stdout, run.stdout
