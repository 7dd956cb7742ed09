"""fit under torch.distributed: two CPU processes (gloo) train exactly like one process.

Each rank takes half of every global batch and DDP averages the gradients, so for a loss that
is a mean over examples, two processes with batch B end with the weights of one process with
batch 2B.
"""

import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from minissl.train import TrainConfig, fit


class MeanSquaredError(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)  # both ranks build the same weights (DDP would sync them anyway)
        self.net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))

    def training_step(self, batch):
        x, y = batch
        return {"loss": ((self.net(x).squeeze(1) - y) ** 2).mean()}


def data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    return x, x.sum(1).sin()


CFG = TrainConfig(epochs=3, lr=0.05, optimizer="sgd", momentum=0.9, weight_decay=0.0,
                  progress=False)


def _worker(rank, world, port, out):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                           world_size=world)
    try:
        torch.set_num_threads(1)
        method = MeanSquaredError()
        hist = fit(method, data(), CFG, batch_size=8)
        torch.save({"params": [p.detach() for p in method.parameters()],
                    "loss": hist["loss"]}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one_process_with_the_global_batch(tmp_path):
    mp.spawn(_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]

    single = MeanSquaredError()
    hist = fit(single, data(), CFG, batch_size=16)
    for p_single, p0, p1 in zip(single.parameters(), ranks[0]["params"], ranks[1]["params"]):
        assert torch.equal(p0, p1)  # the ranks stay in sync
        assert torch.allclose(p_single.detach(), p0, atol=1e-6)
    assert len(ranks[0]["loss"]) == len(hist["loss"]) == 3 * 64 // 16
    # The logged loss is the mean over ranks: the loss of the global batch.
    assert torch.allclose(torch.tensor(ranks[0]["loss"]), torch.tensor(hist["loss"]), atol=1e-5)
