"""The GPU code paths that a CPU can check: the precision choice and in-memory data placement."""

from __future__ import annotations

import pytest
import torch

import minissl.train.batches as train_module  # where in-memory data is placed
from minissl.data import ImageDataset
from minissl.train import TrainConfig, fit
from minissl.train.batches import _Batches
from minissl.train.optim import _precision


@pytest.mark.parametrize("capability, expected", [
    ((7, 5), torch.float16),   # T4 (Colab): bf16 only emulated, so fp16 + GradScaler
    ((7, 0), torch.float16),   # V100
    ((8, 0), torch.bfloat16),  # A100
    ((8, 9), torch.bfloat16),  # L4
    ((9, 0), torch.bfloat16),  # H100
])
def test_auto_precision_follows_the_compute_capability(monkeypatch, capability, expected):
    # is_bf16_supported() says True on a T4 too (through emulation); it must not decide.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: capability)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    cuda = torch.device("cuda")
    assert _precision(TrainConfig(precision="auto"), cuda) == expected
    assert _precision(TrainConfig(precision="auto"), torch.device("cuda", 1)) == expected
    # Asked for explicitly, a precision is used as asked, whatever the GPU.
    assert _precision(TrainConfig(precision="bf16"), cuda) == torch.bfloat16
    assert _precision(TrainConfig(precision="fp16"), cuda) == torch.float16
    assert _precision(TrainConfig(precision="fp32"), cuda) is None


def test_auto_precision_is_fp32_off_cuda(monkeypatch):
    def no_cuda(*args, **kwargs):
        raise AssertionError("the CUDA capability was asked for off CUDA")

    monkeypatch.setattr(torch.cuda, "get_device_capability", no_cuda)
    for device in ("cpu", "mps", "meta"):
        assert _precision(TrainConfig(precision="auto"), torch.device(device)) is None


def test_fp16_on_cuda_gets_an_enabled_grad_scaler(monkeypatch):
    # fit enables the scaler exactly when the autocast dtype is fp16 (the T4 case).
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: (7, 5))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    dtype = _precision(TrainConfig(), torch.device("cuda"))
    assert dtype == torch.float16
    scaler = torch.amp.GradScaler("cpu", enabled=dtype == torch.float16)
    assert scaler.is_enabled()


def _dataset(n: int = 40) -> ImageDataset:
    g = torch.Generator().manual_seed(0)
    return ImageDataset(torch.rand(n, 3, 8, 8, generator=g), torch.arange(n) % 4,
                        ["a", "b", "c", "d"], "toy")


def test_in_memory_data_moves_to_the_device_once_and_batches_are_sliced_there():
    ds = _dataset()
    batches = _Batches(ds, 8, True, seed=0, device=torch.device("meta"))
    assert all(t.device.type == "meta" for t in batches.tensors)  # moved once, whole
    moved = batches.tensors
    for epoch in range(2):
        for x, y in batches.epoch(epoch):
            assert x.device.type == "meta" and y.device.type == "meta"
            assert x.shape == (8, 3, 8, 8)
    assert batches.tensors is moved  # not moved again by later epochs
    assert ds.images.device.type == "cpu"  # the caller's data set is untouched


def test_batches_on_the_cpu_are_the_same_slices_as_before():
    ds = _dataset()
    placed = list(_Batches(ds, 8, True, seed=3, device=torch.device("cpu")).epoch(1))
    g = torch.Generator().manual_seed(3 * 1_000_003 + 1)
    order = torch.randperm(len(ds), generator=g)
    assert len(placed) == 5
    for b, (x, y) in enumerate(placed):
        idx = order[b * 8:(b + 1) * 8]
        assert torch.equal(x, ds.images[idx]) and torch.equal(y, ds.labels[idx])


def test_data_too_large_for_the_gpu_stays_on_the_cpu(monkeypatch):
    ds = _dataset()
    size = ds.images.numel() * 4 + ds.labels.numel() * 8
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (size, 10 * size))  # too little
    kept = train_module._place((ds.images, ds.labels), torch.device("cuda"))
    assert kept[0] is ds.images and kept[1] is ds.labels


def test_fit_slices_in_memory_data_without_a_data_loader(monkeypatch):
    def no_loader(*args, **kwargs):
        raise AssertionError("fit built a DataLoader for in-memory data")

    monkeypatch.setattr(torch.utils.data.DataLoader, "__init__", no_loader)
    placed = []
    real = train_module._place
    monkeypatch.setattr(train_module, "_place",
                        lambda tensors, device: placed.append(device) or real(tensors, device))

    class Mean(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def training_step(self, batch):
            return {"loss": ((batch[0].mean() - self.w) ** 2).sum()}

    fit(Mean(), _dataset(), TrainConfig(max_steps=6, batch_size=8, progress=False, device="cpu"))
    assert placed == [torch.device("cpu")]  # once per fit, not per batch


@pytest.mark.parametrize("optimizer", ["adamw", "adam", "sgd"])
def test_multi_tensor_update_on_the_cpu_gives_the_same_weights(optimizer):
    from minissl.train import make_optimizer

    def train(foreach):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                                  torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 2))
        opt = make_optimizer(net, TrainConfig(optimizer=optimizer, lr=0.05, weight_decay=0.1))
        assert all(g["foreach"] is True for g in opt.param_groups)  # fit's default on a CPU
        for g in opt.param_groups:
            g["foreach"] = foreach
        x = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(1))
        for _ in range(5):
            opt.zero_grad(set_to_none=True)
            net(x).square().mean().backward()
            opt.step()
        return [p.detach() for p in net.parameters()]

    for a, b in zip(train(False), train(True)):
        assert torch.equal(a, b)  # bit for bit: the faster update changes no result
