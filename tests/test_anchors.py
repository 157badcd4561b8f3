"""The benchmark's inference engines (bench/anchors.py): each is built, checked against eager, and runs; a planted
wrong engine is caught by that check."""
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import anchors  # noqa: E402

from fusedfire.reference import Fire  # noqa: E402

ENGINES = anchors.available()


def _fire():
    torch.manual_seed(0)
    return Fire(16, 4, 8, 8).eval(), torch.rand(2, 16, 9, 7)


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_computes_what_eager_does(engine):
    model, x = _fire()
    runner = anchors.build(engine, model, x)
    x2 = torch.rand_like(x)
    with torch.no_grad():
        torch.testing.assert_close(runner(x2), model(x2), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(runner(x2.to(memory_format=torch.channels_last)), model(x2), rtol=1e-4,
                                   atol=1e-4)


@pytest.mark.parametrize("engine", ENGINES)
def test_planted_wrong_engine_is_caught(engine, monkeypatch):
    """The engine is given a model whose expand3x3 bias is off by 0.01; the check at build time must refuse it."""
    model, x = _fire()
    export = anchors._onnx_file

    def export_wrong(module, inp, folder):
        wrong = Fire(16, 4, 8, 8).eval()
        wrong.load_state_dict(module.state_dict())
        with torch.no_grad():
            wrong.expand3x3.bias.add_(0.01)
        return export(wrong, inp, folder)
    monkeypatch.setattr(anchors, "_onnx_file", export_wrong)
    with pytest.raises(AssertionError, match=f"{engine} does not compute what eager does"):
        anchors.build(engine, model, x)


def test_engines_are_available():
    """Both are test dependencies (requirements-dev.txt): a missing one is an install problem, not a skip."""
    assert ENGINES == list(anchors.ENGINES)


def test_fp64_is_refused():
    model, x = _fire()
    with pytest.raises(ValueError, match="float32 only"):
        anchors.build(ENGINES[0], model.double(), x.double())
