"""Chapter 11: the CNN trained with TensorFlow's MultiWorkerMirroredStrategy.

Each worker reads the cluster and its own task from ``TF_CONFIG`` (set per process by a
``tensorflow`` distribution: ``{"cluster": {"worker": ["host:port", ...]}, "task": {"type":
"worker", "index": i}}``); the data set is synthetic (as in ``train.py``), made from a seed at
start-up. ``--dry-run`` prints the worker's view of ``TF_CONFIG`` and exits before importing
TensorFlow (the tests check the contract with it where TensorFlow is not installed).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile


def tf_task() -> dict:
    """This process's task and cluster, from ``TF_CONFIG`` (one worker when unset)."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    cluster = config.get("cluster") or {"worker": ["localhost:0"]}
    task = config.get("task") or {"type": "worker", "index": 0}
    return {"type": task["type"], "index": int(task["index"]), "workers": len(cluster.get("worker", [])),
            "ps": len(cluster.get("ps", [])), "chief": task["type"] == "worker" and int(task["index"]) == 0}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64, help="per worker")
    p.add_argument("--samples", type=int, default=4096)
    p.add_argument("--dry-run", action="store_true")
    args = p.parse_args()
    task = tf_task()
    print("TFTASK " + json.dumps(task, sort_keys=True))
    if args.dry_run:
        return

    import numpy as np
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    rng = np.random.default_rng(0)
    protos = np.random.default_rng(1234).standard_normal((10, 32, 32, 3)).astype("float32")
    labels = rng.integers(0, 10, args.samples)
    images = 0.6 * protos[labels] + rng.standard_normal((args.samples, 32, 32, 3)).astype("float32")
    global_batch = args.batch_size * task["workers"]
    data = tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(args.samples, seed=0).batch(global_batch)
    with strategy.scope():
        model = tf.keras.Sequential([
            tf.keras.layers.Input((32, 32, 3)),
            tf.keras.layers.Conv2D(6, 5, activation="relu"), tf.keras.layers.MaxPooling2D(),
            tf.keras.layers.Conv2D(16, 5, activation="relu"), tf.keras.layers.MaxPooling2D(),
            tf.keras.layers.Flatten(), tf.keras.layers.Dense(120, activation="relu"),
            tf.keras.layers.Dense(84, activation="relu"), tf.keras.layers.Dense(10),
        ])
        model.compile(optimizer=tf.keras.optimizers.SGD(0.01, momentum=0.9),
                      loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    history = model.fit(data, epochs=args.epochs, verbose=2 if task["chief"] else 0)
    # saving is collective under MultiWorkerMirroredStrategy: every worker saves, the chief into ./outputs
    model.save(os.path.join("outputs" if task["chief"] else tempfile.mkdtemp(), "model.keras"))
    if task["chief"] and os.environ.get("MLFLOW_RUN_ID"):
        import mlflow

        for step, (loss, acc) in enumerate(zip(history.history["loss"], history.history["accuracy"], strict=True)):
            mlflow.log_metrics({"loss": float(loss), "accuracy": float(acc)}, step=step)


if __name__ == "__main__":
    main()
