"""Chapter 11: a CNN trained with PyTorch DistributedDataParallel (DDP), one process per rank.

Runs the same under an Azure ML / openaml ``pytorch`` distribution (per-process launch: each
process gets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``), under
``torchrun`` / ``python -m torch.distributed.launch`` (per-node launch: the launcher sets them) and
alone (one process, no DDP). The data set is synthetic: ``--samples`` 3x32x32 images of 10
classes (a fixed pattern per class plus noise), made at start-up from a seed, so nothing is
downloaded and every rank sees the same images; a ``DistributedSampler`` gives each rank its
share. Backend ``gloo`` on CPU (``nccl`` when CUDA is there).

Rank 0 logs ``loss`` and ``accuracy`` per epoch to MLflow (when the job's run is set:
``MLFLOW_RUN_ID``), saves the model to ``--output-dir`` and prints one line
``THROUGHPUT {"samples_per_s": ..., "world_size": ...}``: the images trained on by all ranks per
second of training, the logging left out (the bench reads it).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler


class Net(nn.Module):
    """The CIFAR-10 CNN of PyTorch's tutorial (and the book): two conv layers, three linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def synthetic_images(n: int, seed: int = 0, classes: int = 10, size: int = 32) -> TensorDataset:
    """``n`` images (3 x size x size, float) and labels: class prototype + Gaussian noise."""
    protos = torch.randn(classes, 3, size, size, generator=torch.Generator().manual_seed(1234))
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=g)
    images = 0.6 * protos[labels] + torch.randn(n, 3, size, size, generator=g)
    return TensorDataset(images, labels)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64, help="per process")
    p.add_argument("--samples", type=int, default=4096, help="training images (all ranks together)")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--output-dir", default="outputs")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process (torchrun's default: 1)")
    # python -m torch.distributed.launch passes --local-rank (older versions --local_rank)
    p.add_argument("--local-rank", "--local_rank", type=int, default=None)
    args = p.parse_args()

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    distributed = world > 1
    torch.set_num_threads(args.threads)  # one per process by default: ranks share the node's cores
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", init_method="env://")
    torch.manual_seed(0)
    data = synthetic_images(args.samples)
    sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True) if distributed else None
    loader = DataLoader(data, batch_size=args.batch_size, sampler=sampler, shuffle=sampler is None)
    model: nn.Module = Net()
    if distributed:
        model = DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    log = _mlflow() if rank == 0 else None
    seen, elapsed = 0, 0.0
    for epoch in range(args.epochs):
        start = time.perf_counter()
        if sampler is not None:
            sampler.set_epoch(epoch)
        total, correct, loss_sum = 0, 0, 0.0
        for x, y in loader:
            opt.zero_grad()
            out = model(x)
            loss = F.cross_entropy(out, y)
            loss.backward()
            opt.step()
            total += len(y)
            correct += int((out.argmax(1) == y).sum())
            loss_sum += float(loss) * len(y)
        stats = torch.tensor([total, correct, loss_sum], dtype=torch.float64)
        if distributed:
            dist.all_reduce(stats)
        seen += int(stats[0])
        elapsed += time.perf_counter() - start  # training only: not the printing and MLflow logging below
        acc, mean_loss = float(stats[1] / stats[0]), float(stats[2] / stats[0])
        if rank == 0:
            print(f"epoch {epoch}: loss {mean_loss:.4f} accuracy {acc:.4f} ({int(stats[0])} images, {world} ranks)")
            if log is not None:
                log.log_metrics({"loss": mean_loss, "accuracy": acc}, step=epoch)
    if rank == 0:
        print("THROUGHPUT " + json.dumps({"samples_per_s": round(seen / elapsed, 1), "world_size": world,
                                          "seconds": round(elapsed, 3)}))
        os.makedirs(args.output_dir, exist_ok=True)
        net = model.module if isinstance(model, DistributedDataParallel) else model
        torch.save(net.state_dict(), os.path.join(args.output_dir, "model.pt"))
    if distributed:
        dist.destroy_process_group()


def _mlflow():  # type: ignore[no-untyped-def]
    """MLflow, when this process runs in a job (the job is already an MLflow run), else None."""
    if not os.environ.get("MLFLOW_RUN_ID"):
        return None
    try:
        import mlflow
    except ImportError:
        return None
    return mlflow


if __name__ == "__main__":
    main()
