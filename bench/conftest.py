"""pytest-benchmark setup for the Fire benchmarks: options, markers, and the (case × provider) matrix.

    pytest bench/ --benchmark-only                    the full matrix for this machine's device (long)
    pytest bench/ --benchmark-only -m quick           the subset behind the headline table
    pytest bench/ --benchmark-only -m cpufwd          CPU inference in both layouts (the best-layout table)
    pytest bench/ --benchmark-disable -m smoke        CI: every provider once on one small Fire (< 1 min)
    python bench/report.py                            quick subset -> bench/results/<device>.{csv,md,png}
"""
import os
import sys

import torch

try:
    import fusedfire  # noqa: F401
except ImportError:  # NOTE: a source checkout run as `pytest bench/` without `pip install -e .`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pytest  # noqa: E402

import firebench  # noqa: E402


def pytest_addoption(parser):
    group = parser.getgroup("fusedfire benchmarks")
    group.addoption("--fire-device", default=None,
                    help="device to benchmark (default: cuda if available, else cpu)")
    group.addoption("--fire-csv", default=None,
                    help="append one row per finished benchmark to this CSV (bench/report.py reads it)")
    group.addoption("--fire-budget", type=float, default=None,
                    help="seconds of timed rounds per benchmark, after warm-up (default 1.0 on CUDA, 0.5 on CPU)")
    group.addoption("--fire-providers", default=None,
                    help="comma-separated providers to keep (default: all available), e.g. eager,fusedfire-triton")
    group.addoption("--fire-tiny", action="store_true",
                    help="tiny ceiling measurements and budget: checks the machinery, measures nothing")
    group.addoption("--fire-threads", type=int, default=None,
                    help="torch.set_num_threads for CPU runs (default: torch's own choice)")
    group.addoption("--fire-no-cudnn-benchmark", action="store_true",
                    help="leave torch.backends.cudnn.benchmark off (default: on, as SqueezeNet training sets it)")
    group.addoption("--fire-cpu-isa", default=None,
                    help="the cpu backend's vector kernels' ISA, one of fusedfire.native.cpu_isas() (default: the "
                         "best this CPU runs): with MKL_ENABLE_INSTRUCTIONS and ONEDNN_MAX_CPU_ISA, an AVX2 CPU's "
                         "run on an AVX-512 one")


def pytest_configure(config):
    config.addinivalue_line("markers", "quick: the subset behind the headline table (one batch, dtype, layout)")
    config.addinivalue_line("markers", "smoke: every provider once on one small Fire (CI, with --benchmark-disable)")
    config.addinivalue_line("markers", "cpufwd: CPU fp32 inference, N 1 and 8, NCHW and channels_last, every Fire "
                            "config and whole network (the best-layout table)")


def _device(config) -> str:
    return config.getoption("fire_device") or ("cuda" if torch.cuda.is_available() else "cpu")


def _providers(config, device_type):
    names = firebench.providers(device_type)
    keep = config.getoption("fire_providers")
    if keep:
        wanted = [p.strip() for p in keep.split(",") if p.strip()]
        unknown = set(wanted) - set(names)
        if unknown:
            raise pytest.UsageError(f"--fire-providers: {sorted(unknown)} not available on {device_type}; "
                                    f"available: {names}")
        names = [p for p in names if p in wanted]
    return names


def pytest_generate_tests(metafunc):
    if not {"case", "provider"} <= set(metafunc.fixturenames):
        return
    config = metafunc.config
    device_type = torch.device(_device(config)).type
    params = []
    for case, marks in firebench.cases(device_type):
        for provider in _providers(config, device_type):
            if not firebench.runs(provider, case):
                continue
            m = [getattr(pytest.mark, name) for name in sorted(marks)
                 if not (name == "quick" and provider in firebench.NOT_QUICK.get(device_type, ()))]
            if case.gpu_only and device_type != "cuda":
                m.append(pytest.mark.skip(reason="GPU-only case: too big for a CPU"))
            params.append(pytest.param(case, provider, marks=m, id=f"{case.id}-{provider}"))
    metafunc.parametrize("case,provider", params)


class FireOptions:
    def __init__(self, config):
        self.device = torch.device(_device(config))
        self.csv = config.getoption("fire_csv")
        self.tiny = config.getoption("fire_tiny")
        budget = config.getoption("fire_budget")
        self.budget = budget if budget is not None else (0.05 if self.tiny else
                                                         1.0 if self.device.type == "cuda" else 0.5)
        self.cudnn_benchmark = not config.getoption("fire_no_cudnn_benchmark")
        self.threads = config.getoption("fire_threads")
        self.cpu_isa = config.getoption("fire_cpu_isa")


@pytest.fixture(scope="session")
def fire_options(pytestconfig):
    options = FireOptions(pytestconfig)
    if options.threads:
        torch.set_num_threads(options.threads)
    if options.device.type == "cuda":
        # NOTE: eager SqueezeNet training scripts set cudnn.benchmark; without it eager (and compile's extern
        # convs) pick cuDNN's heuristic algorithm, an easier baseline than the one users run.
        torch.backends.cudnn.benchmark = options.cudnn_benchmark
    if options.cpu_isa:  # the benchmarks run in this (the main) thread, whose options these are
        with fusedfire.native.cpu_options(isa=options.cpu_isa):
            yield options
    else:
        yield options
