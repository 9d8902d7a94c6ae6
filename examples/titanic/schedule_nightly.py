"""The nightly retraining schedule with the Python SDK (as azure-ai-ml writes it).

Ported from azure-ai-ml by changing the imports and the MLClient line only. Run it from anywhere:
``python examples/titanic/schedule_nightly.py`` (the default local workspace; set
OPENAML_WORKSPACE to use another). It needs the data asset and environment that train_sdk.py
or README.md register. ``--disable`` leaves the schedule created but disabled.
"""

import os
import sys
from pathlib import Path

from openaml import MLClient, load_job
from openaml.entities import JobSchedule, RecurrencePattern, RecurrenceTrigger

os.chdir(Path(__file__).resolve().parent)

ml_client = MLClient()

# the training job of job.yml, sent to its own experiment when a schedule runs it
job = load_job("./job.yml")
job.experiment_name = "titanic-nightly"

trigger = RecurrenceTrigger(
    frequency="day",
    interval=1,
    schedule=RecurrencePattern(hours=2, minutes=0),
    time_zone="Pacific Standard Time",
)
schedule = JobSchedule(name="titanic_nightly_sdk", trigger=trigger, create_job=job,
                       description="Retrains the Titanic classifier every night at 02:00 Pacific time.")

created = ml_client.schedules.begin_create_or_update(schedule).result()
print(f"schedule {created.name}: enabled={created.is_enabled}, next fire {created.next_fire_time}")

if "--disable" in sys.argv:
    ml_client.schedules.begin_disable(created.name).result()
    print(f"schedule {created.name} disabled")
