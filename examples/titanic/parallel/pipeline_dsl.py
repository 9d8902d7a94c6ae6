"""The same pipeline with the SDK: a command step, then parallel_run_function as a node.

    python pipeline_dsl.py            # against the workspace of the current folder (or $OPENAML_WORKSPACE)
"""

from __future__ import annotations

from pathlib import Path

from openaml import Input, MLClient, Output, command, dsl
from openaml.parallel import RunFunction, parallel_run_function

HERE = Path(__file__).resolve().parent

train = command(code=str(HERE / "src"), command="python train.py --data ${{inputs.data}} --model ${{outputs.model}}",
                inputs={"data": Input(type="mltable")}, outputs={"model": Output(type="uri_folder")})

score = parallel_run_function(
    name="score",
    inputs={"passengers": Input(type="mltable"), "model": Input(type="uri_folder")},
    outputs={"scored": Output(type="uri_folder")},
    input_data="${{inputs.passengers}}", mini_batch_size="16kb",
    instance_count=2, max_concurrency_per_instance=2,
    error_threshold=-1, mini_batch_error_threshold=0, retry_settings={"max_retries": 2, "timeout": 60},
    logging_level="INFO",
    task=RunFunction(code=str(HERE / "src"), entry_script="score.py",
                     program_arguments="--model ${{inputs.model}} --append_row_file_name predictions.txt",
                     append_row_to="${{outputs.scored}}"),
)


@dsl.pipeline(compute="local", experiment_name="titanic-parallel", display_name="titanic-parallel-scoring-dsl")
def titanic_parallel(titanic: Input) -> dict[str, object]:
    t = train(data=titanic)
    s = score(passengers=titanic, model=t.outputs.model)
    return {"predictions": s.outputs.scored}


if __name__ == "__main__":
    ml = MLClient()
    job = ml.jobs.create_or_update(titanic_parallel(titanic=Input(type="mltable", path=str(HERE.parent / "data"))))
    print(job.name)
    ml.jobs.stream(job.name)
