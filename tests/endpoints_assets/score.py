"""Test scoring script: a joblib sklearn model; actions to exercise errors, timeouts and crashes."""
import json
import os
import sys
import time

import joblib
import numpy as np

model = None


def init():
    global model
    if os.environ.get("FAIL_INIT"):
        raise RuntimeError("init exploded on purpose")
    time.sleep(float(os.environ.get("SLOW_INIT", "0")))
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "model.pkl"))


def run(raw_data):
    data = json.loads(raw_data)
    action = data.get("action")
    if action == "raise":
        raise ValueError("run exploded on purpose")
    if action == "sleep":
        time.sleep(data["seconds"])
        return {"slept": data["seconds"]}
    if action == "crash":
        os._exit(7)
    if action == "count_and_die":  # at-most-once: the file gets one line per run() that really ran
        with open(data["file"], "a") as fh:
            fh.write(f"{os.getpid()}\n")
        os.kill(os.getpid(), 9)
    if action == "hold":  # says that it runs, and on which worker (a file), then keeps its slot a while
        with open(data["file"] + ".tmp", "w") as fh:
            fh.write(sys.argv[-1])
        os.replace(data["file"] + ".tmp", data["file"])
        time.sleep(data["seconds"])
        return {"worker": sys.argv[-1]}
    if action == "nan":
        return np.array([np.nan, 1.5, np.inf])
    if action == "pid":
        # the worker's pid in its own PID namespace (alike in every worker), and its config file: one per worker
        return {"pid": os.getpid(), "worker": sys.argv[-1], "version": os.environ.get("MODEL_VERSION", "1")}
    return model.predict(np.array(data["data"]))
