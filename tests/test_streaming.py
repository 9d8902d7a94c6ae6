"""Downloads stream: the server never holds an archive in memory (issue 11 item 3)."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import psutil

from openaml import Output, command

SIZE_MB = 100


def _peak_rss_growth(pid: int, action) -> int:  # type: ignore[no-untyped-def]
    """Bytes the process's resident set grew by, at its peak, while ``action()`` ran."""
    proc = psutil.Process(pid)
    base = proc.memory_info().rss
    peak = base
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc.memory_info().rss)
            done.wait(0.01)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        action()
    finally:
        done.set()
        t.join()
    return max(0, max(peak, proc.memory_info().rss) - base)


def test_large_job_output_downloads_streamed_with_bounded_server_memory(ml_client, server, tmp_path: Path) -> None:
    """Regression: the job's output tar was built in a BytesIO on the server (and joined in the client)."""
    job = command(command=f"head -c {SIZE_MB << 20} /dev/urandom > ${{{{outputs.o}}}}/big.bin && "
                          "sha256sum ${{outputs.o}}/big.bin",
                  outputs={"o": Output(type="uri_folder")}, environment="AzureML-sklearn-1.5@latest")
    name = ml_client.jobs.create_or_update(job).name
    assert ml_client.jobs.wait(name, timeout=300).status == "Completed", ml_client.jobs.get_raw(name)["log_tail"]
    expected = next(line.split()[0] for line in ml_client.jobs.get_raw(name)["log_tail"] if "big.bin" in line)
    dl = tmp_path / "dl"
    growth = _peak_rss_growth(server.proc.pid, lambda: ml_client.jobs.download(name, download_path=dl,
                                                                               output_name="o"))
    got = dl / "named-outputs" / "o" / "big.bin"
    assert got.stat().st_size == SIZE_MB << 20
    digest = hashlib.sha256()
    with open(got, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    assert digest.hexdigest() == expected
    assert growth < 50 << 20, f"the server's RSS grew by {growth / 2**20:.0f} MiB for a {SIZE_MB} MiB download"

    # the same files registered as a model download as a stream too (regression: a spooled tar copy)
    from openaml.entities import Model

    model = ml_client.models.create_or_update(Model(name=f"big-{name[-8:]}".replace("_", "-"),
                                                    path=f"azureml://jobs/{name}/outputs/o", type="custom_model"))
    mdl = tmp_path / "model"
    growth = _peak_rss_growth(server.proc.pid, lambda: ml_client.models.download(model.name, model.version,
                                                                                 download_path=mdl))
    files = [p for p in (mdl / model.name).rglob("big.bin")]
    assert len(files) == 1 and files[0].stat().st_size == SIZE_MB << 20
    assert growth < 50 << 20, f"the server's RSS grew by {growth / 2**20:.0f} MiB for a {SIZE_MB} MiB model"
