"""minissl.deploy: a saved or exported classifier predicts the same in a fresh process, and
broken or mismatched files fail with errors that say what to do."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from minissl import deploy
from minissl.deploy import Classifier, DeployError, ModelSpec

ROOT = Path(__file__).resolve().parents[1]


def _spec(**changes):
    args = dict(backbone="convnet", backbone_kwargs={"width": 4}, in_channels=3, image_size=8,
                num_classes=3, class_names=["circle", "square", "star"])
    return ModelSpec(**{**args, **changes})


def _trained_model(seed=0):
    """A classifier with non-default weights and batch-norm statistics (not a fresh init)."""
    torch.manual_seed(seed)
    model = Classifier.from_spec(_spec())
    with torch.no_grad():
        model.train()
        for _ in range(3):  # move the running statistics away from (0, 1)
            model(torch.rand(16, 3, 8, 8) * 2)
        model.head.mean.copy_(torch.rand(model.head.mean.shape))
        model.head.std.copy_(torch.rand(model.head.std.shape) + 0.5)
    return model.eval()


def _run_fresh(code: str, tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_state_and_program_reload_in_a_fresh_process_with_the_same_predictions(tmp_path):
    model = _trained_model()
    x = torch.rand(7, 3, 8, 8)  # a batch size the export never saw
    torch.save(x, tmp_path / "x.pt")
    deploy.save_state(model, tmp_path / "clf.pt")
    deploy.export_program(model, tmp_path / "clf.pt2")
    with torch.no_grad():
        expected = model(x)
    # One fresh interpreter (importing torch twice would double the test's time). It first
    # reads the program with minissl blocked, so only torch is needed, then the state file.
    _run_fresh("""
        import sys
        sys.modules["minissl"] = None  # any import of minissl now fails
        import torch
        x = torch.load("x.pt")
        with torch.no_grad():
            from_program = torch.export.load("clf.pt2").module()(x)
        assert "minissl.deploy" not in sys.modules
        del sys.modules["minissl"]
        from minissl import deploy
        state = deploy.load_state("clf.pt")
        with torch.no_grad():
            torch.save({"state": state(x), "program": from_program,
                        "names": state.spec.class_names, "training": state.training}, "out.pt")
    """, tmp_path)
    out = torch.load(tmp_path / "out.pt")
    assert torch.equal(out["state"], expected)  # same weights, same ops: bit-identical
    torch.testing.assert_close(out["program"], expected, atol=1e-5, rtol=1e-5)
    assert torch.equal(out["program"].argmax(1), expected.argmax(1))
    assert out["names"] == ["circle", "square", "star"] and out["training"] is False


def test_export_uses_eval_mode_and_leaves_the_model_alone(tmp_path):
    model = _trained_model(2).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    program = deploy.load_program(deploy.export_program(model, tmp_path / "m.pt2"))
    assert model.training  # the caller's mode is kept
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k  # no batch-norm statistics were updated
    x = torch.rand(1, 3, 8, 8)  # batch of one: would fail in train-mode batch norm
    with torch.no_grad():
        torch.testing.assert_close(program(x), model.eval()(x), atol=1e-5, rtol=1e-5)


def test_fine_tune_output_wraps_into_a_classifier():
    from minissl import evaluate as ev
    from minissl.nn import ConvNet

    torch.manual_seed(0)
    x, y = torch.rand(12, 3, 8, 8), torch.arange(12) % 3
    res = ev.fine_tune(ConvNet(3, width=4), (x, y), (x, y), num_classes=3, epochs=1)
    body, head = res.model
    clf = Classifier(body, head, _spec())
    assert torch.equal(clf.predict(x), res.predictions)
    with pytest.raises(ValueError, match="4 outputs but spec.num_classes is 3"):
        Classifier(body, nn.Linear(32, 4), _spec())
    with pytest.raises(TypeError, match="nn.Linear or"):
        Classifier(body, nn.Identity(), _spec())


def test_corrupt_and_foreign_files_give_clear_errors(tmp_path):
    good = deploy.save_state(_trained_model(), tmp_path / "good.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DeployError, match="corrupt or not a file written by deploy.save_state"):
        deploy.load_state(truncated)
    garbage = tmp_path / "garbage.pt2"
    garbage.write_bytes(b"not a model at all" * 10)
    with pytest.raises(DeployError, match="Export the model again"):
        deploy.load_program(garbage)
    bare = tmp_path / "bare.pt"
    torch.save(_trained_model().state_dict(), bare)  # a plain state dict, no spec
    with pytest.raises(DeployError, match="not a minissl classifier"):
        deploy.load_state(bare)
    with pytest.raises(FileNotFoundError, match="no saved model"):
        deploy.load_state(tmp_path / "missing.pt")


def test_weights_that_do_not_fit_the_spec_are_named(tmp_path):
    path = deploy.save_state(_trained_model(), tmp_path / "clf.pt")
    blob = torch.load(path, weights_only=True)
    blob["spec"]["backbone_kwargs"] = {"width": 8}  # the spec now describes a wider network
    torch.save(blob, path)
    with pytest.raises(DeployError, match="do not fit .* wrong shapes"):
        deploy.load_state(path)
    blob["spec"]["backbone_kwargs"] = {"width": 4}
    del blob["state_dict"]["head.linear.bias"]
    torch.save(blob, path)
    with pytest.raises(DeployError, match=r"missing \['head.linear.bias'\]"):
        deploy.load_state(path)
    blob["version"] = deploy.VERSION + 1
    torch.save(blob, path)
    with pytest.raises(DeployError, match="upgrade minissl"):
        deploy.load_state(path)
    blob["version"], blob["spec"]["backbone"] = deploy.VERSION, "alexnet"
    torch.save(blob, path)
    with pytest.raises(DeployError, match="unknown backbone 'alexnet'.*convnet"):
        deploy.load_state(path)


def test_spec_checks_and_read_spec(tmp_path):
    with pytest.raises(ValueError, match="one name per class"):
        ModelSpec("convnet", {"width": 4}, 3, 8, 3, ["a", "b"])
    model = _trained_model()
    assert deploy.read_spec(deploy.save_state(model, tmp_path / "c.pt")) == model.spec
    assert deploy.read_spec(deploy.export_program(model, tmp_path / "c.pt2")) == model.spec
    with pytest.raises(TypeError, match="Classifier"):
        deploy.save_state(nn.Linear(2, 2), tmp_path / "x.pt")
