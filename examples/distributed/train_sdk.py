"""Book chapter 11 with the Python SDK: the DDP CNN job, per-process and per-node launch.

    python train_sdk.py                  # per-process launch: 2 processes on 1 instance
    python train_sdk.py --per-node       # per-node launch: torch.distributed.launch on 2 instances
    python train_sdk.py --per-node --compute ray-local   # the same on a Ray compute (README): 2 Ray nodes

The workspace is the default one (or ``$OPENAML_WORKSPACE``). torch must be installed in the
server's environment (``bash scripts/install.sh --with-torch``); on Azure ML pass an environment.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from openaml import MLClient, command
from openaml.entities import PyTorchDistribution

HERE = Path(__file__).resolve().parent


def build_job(per_node: bool = False, epochs: int = 2, samples: int = 4096, processes: int = 2,  # type: ignore[no-untyped-def]
              compute: str = "local"):
    """The chapter's job: ``processes`` ranks in all, launched per process or per node, on ``compute``."""
    if per_node:
        cmd = ("python -m torch.distributed.launch --nproc_per_node 1 --nnodes $AZUREML_NODE_COUNT "
               "--node_rank $NODE_RANK --master_addr $MASTER_ADDR --master_port $MASTER_PORT "
               "train.py --epochs ${{inputs.epochs}} --samples ${{inputs.samples}} --output-dir ./outputs")
        dist, instances = PyTorchDistribution(process_count_per_instance=1), processes
    else:
        cmd = "python train.py --epochs ${{inputs.epochs}} --samples ${{inputs.samples}} --output-dir ./outputs"
        dist, instances = PyTorchDistribution(process_count_per_instance=processes), 1
    return command(code=str(HERE / "src"), command=cmd, inputs={"epochs": epochs, "samples": samples},
                   compute=compute, distribution=dist, instance_count=instances,
                   experiment_name="distributed-cnn",
                   display_name="cnn-ddp-per-node" if per_node else "cnn-ddp-per-process")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--per-node", action="store_true")
    p.add_argument("--compute", default="local", help="e.g. ray-local (ray-compute.yml) for a Ray cluster")
    args = p.parse_args()
    ml_client = MLClient()
    job = ml_client.jobs.create_or_update(build_job(args.per_node, compute=args.compute))
    print(f"job {job.name}: {job.studio_url}")
    ml_client.jobs.stream(job.name)


if __name__ == "__main__":
    main()
