"""`python -m fusedfire`: `check` must catch a planted bug, `info` runs, `bench` without a checkout says what to run;
and the cost model of fusedfire/roofline.py must match an independent count."""
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from fusedfire import roofline
from fusedfire.__main__ import CHECK_SHAPES, bench, check_case
from fusedfire.reference import fire_reference


def _passes(results):
    return all(err <= bound for _, err, bound in results)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_check_accepts_the_reference(dtype):
    assert _passes(check_case(fire_reference, CHECK_SHAPES[0], dtype, "cpu", torch.channels_last))


def _shifted_3x3(x, wsq, bsq, w1, b1, w3, b3):
    """A planted bug: the 3×3 expand reads its input one column off (a wrong tap offset)."""
    s = F.relu(F.conv2d(x, wsq, bsq))
    e3 = F.relu(F.conv2d(torch.roll(s, 1, dims=3), w3, b3, padding=1))
    return torch.cat([F.relu(F.conv2d(s, w1, b1)), e3], 1)


def _no_relu_mask(x, wsq, bsq, w1, b1, w3, b3):
    """A planted bug in the backward only: the squeeze ReLU's mask is lost (straight-through gradient)."""
    pre = F.conv2d(x, wsq, bsq)
    s = pre + (F.relu(pre) - pre).detach()
    return torch.cat([F.relu(F.conv2d(s, w1, b1)), F.relu(F.conv2d(s, w3, b3, padding=1))], 1)


@pytest.mark.parametrize("bug", [_shifted_3x3, _no_relu_mask])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_check_catches_a_planted_bug(bug, dtype):
    results = check_case(bug, CHECK_SHAPES[2], dtype, "cpu", torch.contiguous_format)
    assert not _passes(results), results


def test_fire_flops_match_torch_flop_counter():
    from torch.utils.flop_counter import FlopCounterMode
    N, cin, s, e1, e3, hw = 2, 12, 5, 7, 9, 6
    x = torch.rand(N, cin, hw, hw)
    params = [torch.rand(s, cin, 1, 1), torch.rand(s), torch.rand(e1, s, 1, 1), torch.rand(e1),
              torch.rand(e3, s, 3, 3), torch.rand(e3)]
    with FlopCounterMode(display=False) as counter:
        fire_reference(x, *params)
    assert roofline.fire_flops(N, cin, s, e1, e3, hw, hw) == counter.get_total_flops()


def test_network_cost_counts_each_fire_by_the_fire_formula():
    torchvision = pytest.importorskip("torchvision")
    from fusedfire.configs import SQUEEZENET_FIRES
    features = torchvision.models.squeezenet1_1(weights=None).features
    x = torch.empty(2, 3, 224, 224)
    flops, nbytes = roofline.network_cost(features, x)
    fires = [c for c in SQUEEZENET_FIRES if c.name.startswith("1_1.")]
    fire_flops = sum(roofline.fire_flops(2, c.inplanes, c.squeeze_planes, c.expand1x1_planes,
                                         c.expand3x3_planes, c.size, c.size) for c in fires)
    conv1 = 2 * 2 * 64 * 111 * 111 * 3 * 9  # the stem: 3→64, 3×3 stride 2 -> 111×111
    assert flops == fire_flops + conv1
    assert nbytes > 4 * sum(2 * (c.inplanes + c.expand1x1_planes + c.expand3x3_planes) * c.size ** 2 for c in fires)


def test_info_runs():
    proc = subprocess.run([sys.executable, "-m", "fusedfire", "info"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "backends:" in proc.stdout


def test_bench_without_a_checkout_prints_the_command(tmp_path, capsys):
    assert bench(["--subset", "cpu-fwd"], roots=[str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "python bench/report.py --subset cpu-fwd" in err and "source checkout" in err


def test_bench_runs_the_checkouts_report():
    proc = subprocess.run([sys.executable, "-m", "fusedfire", "bench", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "--subset" in proc.stdout
