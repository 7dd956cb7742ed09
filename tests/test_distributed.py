"""2 processes on the CPU (gloo): a split batch gives the loss and gradients of the whole batch."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from minissl import distributed
from minissl.losses import nt_xent

N, D, WORLD, T = 8, 5, 2, 0.3  # N pairs in the global batch, split over WORLD processes


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(N, D, generator=g), torch.randn(N, D, generator=g)


def _model():
    torch.manual_seed(1)
    return nn.Linear(D, 4)


def _worker(rank: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        n = N // WORLD
        x1, x2 = (x[rank * n:(rank + 1) * n] for x in _data())  # this rank's half of the pairs
        # 1) the loss itself, gradients with respect to the inputs
        z1, z2 = x1.clone().requires_grad_(), x2.clone().requires_grad_()
        loss = nt_xent(z1, z2, T)
        loss.backward()
        # 2) through DDP, gradients with respect to a model's parameters
        ddp = nn.parallel.DistributedDataParallel(_model())
        ddp_loss = nt_xent(ddp(x1), ddp(x2), T)
        ddp_loss.backward()
        torch.save({
            "rank": distributed.rank(), "world": distributed.world_size(),
            "loss": loss.detach(), "g1": z1.grad, "g2": z2.grad,
            "ddp_loss": ddp_loss.detach(),
            "param_grads": [p.grad for p in ddp.module.parameters()],
            "gathered": distributed.gather(torch.full((2,), float(rank))),
        }, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    # fork: the children share the already-imported torch (spawn would re-import it, ~5 s)
    mp.start_processes(_worker, args=(_free_port(), str(out)), nprocs=WORLD, join=True,
                       start_method="fork")
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


def test_helpers_are_identity_without_a_process_group():
    x = torch.randn(3, 2, requires_grad=True)
    assert not distributed.is_distributed()
    assert (distributed.rank(), distributed.world_size()) == (0, 1)
    assert distributed.gather_with_grad(x) is x and distributed.gather(x) is x


def test_gather_concatenates_in_rank_order(results):
    for r in results:
        assert (r["rank"], r["world"]) == (results.index(r), WORLD)
        assert r["gathered"].tolist() == [0.0, 0.0, 1.0, 1.0]


def test_split_batch_loss_equals_whole_batch_loss(results):
    x1, x2 = _data()
    whole = nt_xent(x1, x2, T)
    # Each rank averages over its own 2N/WORLD anchors; equal shares, so the mean of the
    # per-rank losses is the mean over all 2N anchors.
    mean = sum(r["loss"] for r in results) / WORLD
    torch.testing.assert_close(mean, whole)
    # And the per-rank losses really differ: each saw only its own anchors.
    assert not torch.allclose(results[0]["loss"], results[1]["loss"])


def test_split_batch_input_gradients_match_after_ddp_averaging(results):
    x1, x2 = _data()
    z1, z2 = x1.clone().requires_grad_(), x2.clone().requires_grad_()
    nt_xent(z1, z2, T).backward()
    n = N // WORLD
    for rank, r in enumerate(results):
        # gather_with_grad's backward sums over ranks, giving d(sum_r loss_r)/dz; DDP divides
        # by WORLD, giving d(mean_r loss_r)/dz = d(whole-batch loss)/dz.
        torch.testing.assert_close(r["g1"] / WORLD, z1.grad[rank * n:(rank + 1) * n])
        torch.testing.assert_close(r["g2"] / WORLD, z2.grad[rank * n:(rank + 1) * n])


def test_ddp_parameter_gradients_equal_single_process(results):
    x1, x2 = _data()
    model = _model()
    whole = nt_xent(model(x1), model(x2), T)
    whole.backward()
    torch.testing.assert_close(sum(r["ddp_loss"] for r in results) / WORLD, whole.detach())
    for r in results:  # DDP has already averaged: every rank holds the same gradient
        for got, want in zip(r["param_grads"], [p.grad for p in model.parameters()]):
            torch.testing.assert_close(got, want)
