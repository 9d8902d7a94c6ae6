"""Job schedules end to end: a real server fires jobs; the real SDK and CLI create and manage them.

Time is never faked: tests use a per-minute recurrence whose first fire is seconds away (no
``start_time`` fires at once, as Azure ML does; a ``start_time`` 50 s in the past fires 10 s from
now). Expected fire times are computed here with plain ``zoneinfo`` arithmetic, independently of
the server's code. The conformance part creates the azureml-examples ``cli/schedules`` files
unchanged (tests/conformance/schedules/).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import start_server

CONFORMANCE = Path(__file__).resolve().parent / "conformance" / "schedules"
JOB_YAML = """\
$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
command: echo scheduled ${{inputs.greeting}}
inputs:
  greeting: hello
experiment_name: schedules-test
"""


def _uid(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).replace(microsecond=0).isoformat()


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text, encoding="utf-8")
    return p


def _schedule_yaml(tmp: Path, name: str, trigger: str, create_job: str = "./job.yml") -> Path:
    _write(tmp, "job.yml", JOB_YAML)
    return _write(tmp, f"{name}.yml", f"""\
$schema: https://azuremlschemas.azureedge.net/latest/schedule.schema.json
name: {name}
display_name: test schedule
trigger:
{trigger}
create_job: {create_job}
""")


def _jobs_of(ml_client: Any, schedule: str) -> list[Any]:
    return [j for j in ml_client.jobs.list() if (j.properties or {}).get("openaml.schedule.name") == schedule]


# ---------------------------------------------------------------------------------------- firing
def test_no_start_time_fires_at_once_and_the_job_records_its_schedule(ml_client: Any) -> None:
    """Azure: without start_time "the first job will run instantly"; then every interval."""
    from openaml import command
    from openaml.entities import JobSchedule, RecurrenceTrigger

    name = _uid("instant")
    job = command(command="echo from-a-schedule", experiment_name="schedules-test")
    created = ml_client.schedules.begin_create_or_update(
        JobSchedule(name=name, trigger=RecurrenceTrigger(frequency="minute", interval=1), create_job=job)).result()
    assert created.is_enabled is True
    sched = _wait(lambda: (s := ml_client.schedules.get(name)).last_job_name and s, 20, "the first fire")
    fired = ml_client.jobs.wait(sched.last_job_name, timeout=60)
    assert fired.status == "Completed"
    fire_time = datetime.fromisoformat(fired.properties["openaml.schedule.time"])
    assert fired.properties["openaml.schedule.name"] == name
    assert "openaml.schedule.catch_up" not in fired.properties
    assert fired.display_name == f"{name}-{fire_time:%Y%m%dT%H%M%SZ}"
    assert abs((fire_time - datetime.fromisoformat(created.creation_context["created_at"])).total_seconds()) < 2
    assert sched.last_fire_time == fire_time and sched.fire_count == 1
    assert sched.next_fire_time == fire_time + timedelta(minutes=1)
    assert [j.name for j in ml_client.jobs.list(scheduled_job_name=name)] == [fired.name]
    assert fired.name in [j.name for j in ml_client.jobs.list(schedule_defined=True)]
    assert fired.name not in [j.name for j in ml_client.jobs.list(schedule_defined=False)]
    ml_client.schedules.begin_delete(name).result()
    assert ml_client.jobs.get(fired.name).status == "Completed"  # jobs outlive their schedule


def test_start_time_in_the_past_fires_at_the_next_calculated_time(cli: Any, ml_client: Any, tmp_path: Path) -> None:
    """start_time 50 s ago, every minute: no fire now, the first one at start + 60 s (seconds kept)."""
    name = _uid("past")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=50)
    expected = start + timedelta(minutes=1)
    f = _schedule_yaml(tmp_path, name, f"""\
  type: recurrence
  frequency: minute
  interval: 1
  start_time: "{start.replace(tzinfo=None).isoformat()}"
  time_zone: UTC""")
    out = cli("schedule", "create", "--file", str(f), check=True).json()
    assert out["next_fire_time"] == _iso(expected) and out["fire_count"] == 0
    sched = _wait(lambda: (s := ml_client.schedules.get(name)).last_job_name and s, 30, "the fire at start + 60 s")
    job = ml_client.jobs.get(sched.last_job_name)
    assert job.properties["openaml.schedule.time"] == _iso(expected)
    fired_at = datetime.fromisoformat(job.properties["openaml.schedule.fired_at"])
    assert timedelta(0) <= fired_at - expected < timedelta(seconds=5)
    assert sched.next_fire_time == expected + timedelta(minutes=1)
    assert ml_client.jobs.wait(job.name, timeout=60).status == "Completed"
    cli("schedule", "delete", "--name", name, "--yes", check=True)


def test_disabled_schedule_does_not_fire_and_enable_does_not_catch_up(cli: Any, ml_client: Any,
                                                                       tmp_path: Path) -> None:
    name = _uid("off")

    def trigger(start: datetime) -> str:
        return f"""\
  type: recurrence
  frequency: minute
  interval: 1
  start_time: "{start.isoformat()}\""""

    # Created with its first fire a day away and disabled before any fire can come, however slow
    # the machine; then, still disabled, moved to a start whose first fire is seconds away.
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    cli("schedule", "create", "--file", str(_schedule_yaml(tmp_path, name, trigger(later))), check=True)
    off = cli("schedule", "disable", "--name", name, check=True).json()
    assert off["is_enabled"] is False and off["next_fire_time"] is None
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=55)
    moved = cli("schedule", "create", "--file", str(_schedule_yaml(tmp_path, name, trigger(start))), check=True).json()
    assert moved["is_enabled"] is False and moved["next_fire_time"] is None  # a new definition keeps it disabled
    listed = cli("schedule", "list", "-o", "json", check=True).json()
    assert name not in [s["name"] for s in listed]  # enabled only, as az ml
    assert name in [s["name"] for s in cli("schedule", "list", "--disabled-only", "-o", "json", check=True).json()]
    time.sleep(max(0.0, (start + timedelta(seconds=62) - datetime.now(UTC)).total_seconds()))
    assert ml_client.schedules.get(name).fire_count == 0 and not _jobs_of(ml_client, name)
    on = cli("schedule", "enable", "--name", name, check=True).json()
    assert on["is_enabled"] is True and on["next_fire_time"] == _iso(start + timedelta(minutes=2))
    time.sleep(1.5)
    assert ml_client.schedules.get(name).fire_count == 0  # the fire missed while disabled is not made up
    ml_client.schedules.begin_delete(name).result()


def test_end_time_passed_means_no_more_fires(cli: Any, tmp_path: Path) -> None:
    name = _uid("ended")
    now = datetime.now(UTC).replace(microsecond=0)
    f = _schedule_yaml(tmp_path, name, f"""\
  type: cron
  expression: "* * * * *"
  start_time: "{(now - timedelta(hours=2)).isoformat()}"
  end_time: "{(now - timedelta(hours=1)).isoformat()}\"""")
    out = cli("schedule", "create", "--file", str(f), check=True).json()
    assert out["next_fire_time"] is None and out["is_enabled"] is True
    time.sleep(1.5)
    assert cli("schedule", "show", "--name", name, check=True).json()["fire_count"] == 0
    cli("schedule", "delete", "--name", name, "--yes", check=True)


def test_existing_job_as_create_job_and_trigger(ml_client: Any, cli: Any, tmp_path: Path) -> None:
    """create_job: azureml:<job name> re-runs that job's definition; ``schedule trigger`` fires once now."""
    from openaml import command

    source = ml_client.jobs.create_or_update(command(command="echo source-job", experiment_name="schedules-test"))
    name = _uid("byref")
    f = _schedule_yaml(tmp_path, name, """\
  type: cron
  expression: "0 3 * * *"
  start_time: "2030-01-01T00:00:00\"""", create_job=f"azureml:{source.name}")
    out = cli("schedule", "create", "--file", str(f), check=True).json()
    assert out["create_job"] == f"azureml:{source.name}"
    assert out["next_fire_time"] == "2030-01-01T03:00:00+00:00"
    res = cli("schedule", "trigger", "--name", name, check=True).json()
    job = ml_client.jobs.wait(res["job_name"], timeout=60)
    assert job.status == "Completed" and job.command == "echo source-job"
    assert job.properties["openaml.schedule.name"] == name and job.properties["openaml.schedule.manual"] == "true"
    ml_client.schedules.begin_delete(name).result()


def test_update_show_and_delete_through_the_cli(cli: Any, tmp_path: Path) -> None:
    name = _uid("upd")
    f = _schedule_yaml(tmp_path, name, """\
  type: cron
  expression: "0 * * * *"
  start_time: "2030-01-01T00:00:00"
  time_zone: "Pacific Standard Time\"""")
    assert cli("schedule", "create", "--file", str(f), check=True).json()["next_fire_time"] == \
        "2030-01-01T08:00:00+00:00"
    out = cli("schedule", "update", "--name", name, "--set", "description=new description",
              "--set", "trigger.expression=15 * * * *", check=True).json()
    assert out["description"] == "new description" and out["trigger"]["expression"] == "15 * * * *"
    assert out["next_fire_time"] == "2030-01-01T08:15:00+00:00"
    out = cli("schedule", "update", "--file", str(f), "--set", "trigger.time_zone=Asia/Tokyo", check=True).json()
    assert out["next_fire_time"] == "2029-12-31T15:00:00+00:00" and out.get("description") is None
    bad = cli("schedule", "update", "--name", name, "--set", "trigger.expression=99 * * * *")
    assert bad.returncode == 1 and "trigger.expression" in bad.stderr and "'99 * * * *'" in bad.stderr
    assert cli("schedule", "show", "--name", name, check=True).json()["trigger"]["time_zone"] == "Asia/Tokyo"
    cli("schedule", "delete", "--name", name, "--yes", check=True)
    gone = cli("schedule", "show", "--name", name)
    assert gone.returncode == 1 and "not found" in gone.stderr


# ---------------------------------------------------------------------------------------- time zones
@pytest.mark.parametrize("zone", ["Tokyo Standard Time", "Asia/Tokyo", "tokyo standard time"])
def test_windows_and_iana_time_zones_give_the_same_fire_times(ml_client: Any, zone: str) -> None:
    from openaml import command
    from openaml.entities import JobSchedule, RecurrencePattern, RecurrenceTrigger

    name = _uid("tz")
    trig = RecurrenceTrigger(frequency="week", interval=1, start_time="2030-01-01T00:00:00", time_zone=zone,
                             schedule=RecurrencePattern(hours=[9], minutes=[30], week_days=["Monday", "friday"]))
    out = ml_client.schedules.begin_create_or_update(
        JobSchedule(name=name, trigger=trig, create_job=command(command="echo tz"))).result()
    # 2030-01-01 is a Tuesday: the first fire is Friday the 4th, 09:30 in Tokyo (UTC+9)
    assert out.next_fire_time == datetime(2030, 1, 4, 0, 30, tzinfo=UTC)
    ml_client.schedules.begin_delete(name).result()


def test_daylight_saving_time_is_followed(ml_client: Any) -> None:
    """A daily 09:00 in Pacific time is 17:00 UTC in winter and 16:00 UTC in summer."""
    from openaml import command
    from openaml.entities import CronTrigger, JobSchedule

    name = _uid("dst")
    trig = CronTrigger(expression="0 9 * * *", start_time="2030-03-09T12:00:00", time_zone="Pacific Standard Time")
    out = ml_client.schedules.begin_create_or_update(
        JobSchedule(name=name, trigger=trig, create_job=command(command="echo dst"))).result()
    assert out.next_fire_time == datetime(2030, 3, 10, 16, 0, tzinfo=UTC)  # DST starts 2030-03-10
    ml_client.schedules.begin_delete(name).result()


# ---------------------------------------------------------------------------------------- bad input
BAD = [
    ("cron", '  type: cron\n  expression: "0 25 * * *"', "trigger.expression", "'0 25 * * *'"),
    ("cron4", '  type: cron\n  expression: "0 * * *"', "trigger.expression", "has 4 fields"),
    ("zone", '  type: cron\n  expression: "0 * * * *"\n  time_zone: "Pacific Time"', "trigger.time_zone",
     "'Pacific Time'"),
    ("freq", "  type: recurrence\n  frequency: fortnight\n  interval: 1", "trigger.frequency", "'fortnight'"),
    ("interval", "  type: recurrence\n  frequency: day\n  interval: 0", "trigger.interval", "got 0"),
    ("window", '  type: cron\n  expression: "0 * * * *"\n  start_time: "2030-01-02T00:00:00"\n'
               '  end_time: "2030-01-01T00:00:00"', "trigger", "'2030-01-01T00:00:00' is not after"),
    ("pattern", "  type: recurrence\n  frequency: day\n  interval: 1\n  schedule:\n    hours: [1]\n    minutes: [0]\n"
                "    week_days: [monday]", "trigger", "schedule.week_days is not used with frequency 'day'"),
    ("weekday", "  type: recurrence\n  frequency: week\n  interval: 1\n  schedule:\n    hours: [1]\n    minutes: [0]\n"
                "    week_days: [mon]", "trigger.schedule.week_days", "'mon' is not a week day"),
    ("unknown", '  type: cron\n  expression: "0 * * * *"\n  when: later', "trigger.when", "unknown field"),
]


@pytest.mark.parametrize(("case", "trigger", "field", "value"), BAD, ids=[b[0] for b in BAD])
def test_bad_trigger_is_rejected_naming_file_line_field_and_value(tmp_path: Path, case: str, trigger: str,
                                                                  field: str, value: str) -> None:
    from openaml import load_schedule
    from openaml.errors import ValidationError

    f = _schedule_yaml(tmp_path, _uid(f"bad_{case}"), trigger)
    with pytest.raises(ValidationError) as err:
        load_schedule(f)
    msg = err.value.message
    assert str(f) in msg and f"field '{field}'" in msg and value in msg and ", line " in msg, msg
    assert msg.count("(got ") <= 1, msg  # the value once (the interval's was given twice)


def test_bad_trigger_through_the_cli_stores_nothing(cli: Any, tmp_path: Path) -> None:
    name = _uid("bad_cli")
    f = _schedule_yaml(tmp_path, name, '  type: cron\n  expression: "0 * * * *"\n  time_zone: "Mars/Olympus"')
    r = cli("schedule", "create", "--file", str(f))
    assert r.returncode == 1 and str(f) in r.stderr and "field 'trigger.time_zone'" in r.stderr
    assert "'Mars/Olympus'" in r.stderr and "Pacific Standard Time" in r.stderr  # the fix: what is allowed
    assert cli("schedule", "show", "--name", name).returncode == 1


def test_the_server_validates_too(ml_client: Any) -> None:
    """A client that skips validation (raw REST) meets the same checks on the server."""
    from openaml.errors import ValidationError

    body = {"trigger": {"type": "recurrence", "frequency": "day", "interval": -1}, "create_job": "azureml:x"}
    with pytest.raises(ValidationError, match=r"field 'trigger.interval'.*got -1"):
        ml_client._transport.put("/schedules/raw_bad", json=body)
    body = {"trigger": {"type": "cron", "expression": "0 * * * *"}, "create_job": {"command": "echo", "compute": "nope"}}
    with pytest.raises(ValidationError, match=r"field 'create_job.compute'.*'nope'"):
        ml_client._transport.put("/schedules/raw_bad", json=body)
    assert "raw_bad" not in [s.name for s in ml_client.schedules.list(list_view_type="All")]


def test_bad_create_job_is_rejected_before_anything_is_stored(cli: Any, tmp_path: Path) -> None:
    trig = '  type: cron\n  expression: "0 * * * *"'
    missing_file = _schedule_yaml(tmp_path, _uid("nofile"), trig, create_job="./nope/job.yml")
    r = cli("schedule", "create", "--file", str(missing_file))
    assert r.returncode == 1 and "field 'create_job'" in r.stderr and "'./nope/job.yml' does not exist" in r.stderr
    missing_job = _schedule_yaml(tmp_path, _uid("nojob"), trig, create_job="azureml:no_such_job_xyz")
    r = cli("schedule", "create", "--file", str(missing_job))
    assert r.returncode == 1 and "field 'create_job'" in r.stderr and "'no_such_job_xyz' not found" in r.stderr
    bad_field = _schedule_yaml(tmp_path, _uid("badfield"), trig,
                               create_job="\n  job: ./job.yml\n  inputs:\n    greeting: hi\n  colour: red")
    r = cli("schedule", "create", "--file", str(bad_field))
    assert r.returncode == 1 and "colour" in r.stderr and "unknown field" in r.stderr, r.stderr
    top = _write(tmp_path, "top.yml", f"name: {_uid('top')}\ntrigger:\n{trig}\ncreate_job: ./job.yml\nfrequency: 3\n")
    r = cli("schedule", "create", "--file", str(top))
    assert r.returncode == 1 and "field 'frequency'" in r.stderr and "unknown field" in r.stderr
    # regression: a pipeline whose graph is broken was stored and only failed when it fired
    _write(tmp_path, "pipe.yml", "type: pipeline\nsettings: {default_compute: azureml:local}\njobs:\n  b:\n"
                                 "    command: echo ${{inputs.d}}\n    inputs: {d: \"${{parent.jobs.zz.outputs.o}}\"}\n")
    bad_pipe = _schedule_yaml(tmp_path, _uid("badpipe"), trig, create_job="./pipe.yml")
    r = cli("schedule", "create", "--file", str(bad_pipe))
    err = " ".join(r.stderr.split())
    assert r.returncode == 1 and "field 'create_job.jobs.b.inputs.d': binds to node 'zz', which does not exist" in err, err
    # regression: a job naming an environment or data asset that does not exist was stored and failed at each fire
    _write(tmp_path, "refs.yml", "command: echo ${{inputs.d}}\nenvironment: azureml:no_such_env@latest\n"
                                 "inputs:\n  d: {type: uri_folder, path: azureml:no_such_data@latest}\n")
    bad_refs = _schedule_yaml(tmp_path, _uid("badrefs"), trig, create_job="./refs.yml")
    r = cli("schedule", "create", "--file", str(bad_refs))
    err = " ".join(r.stderr.split())
    assert r.returncode == 1 and "field 'create_job.environment': environment 'no_such_env' not found" in err, err
    assert "field 'create_job.inputs.d': data 'no_such_data' not found" in err, err
    names = [s["name"] for s in cli("schedule", "list", "--include-disabled", "-o", "json", check=True).json()]
    assert not [n for n in names if n.startswith(("nofile_", "nojob_", "badfield_", "top_", "badpipe_", "badrefs_"))]


# ---------------------------------------------------------------------------------------- conformance
def _next_cron_hourly(now: datetime) -> datetime:
    return (now + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)


def _next_daily_pattern(now: datetime, zone: str, hours: list[int], minutes: list[int]) -> datetime:
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    for day in range(3):
        d = (local + timedelta(days=day)).date()
        for h in sorted(hours):
            for m in sorted(minutes):
                t = datetime(d.year, d.month, d.day, h, m, tzinfo=tz)
                if t > now:
                    return t.astimezone(UTC)
    raise AssertionError("no fire within three days")


@pytest.fixture(scope="module")
def cpu_cluster(cli: Any) -> None:
    """What the public samples expect in the workspace: a compute named cpu-cluster."""
    cli("compute", "create", "--name", "cpu-cluster", "--type", "amlcompute", "--max-instances", "2", check=True)


@pytest.mark.parametrize("yml", ["cron-job-schedule.yml", "cron-with-settings-job-schedule.yml",
                                 "recurrence-job-schedule.yml"])
def test_azureml_examples_schedules_are_accepted_unchanged(cli: Any, cpu_cluster: None, yml: str) -> None:
    before = datetime.now(UTC)
    out = cli("schedule", "create", "--file", str(CONFORMANCE / yml), check=True).json()
    after = datetime.now(UTC)
    nxt = datetime.fromisoformat(out["next_fire_time"])
    if out["trigger"]["type"] == "cron":  # "0 * * * *" in Pacific time: the top of every hour
        assert nxt in (_next_cron_hourly(before), _next_cron_hourly(after))
    else:
        expect = {_next_daily_pattern(t, "America/Los_Angeles", [4, 5, 10, 11, 12], [0, 30]) for t in (before, after)}
        assert nxt in expect
    assert out["create_job"]["type"] == "pipeline" and set(out["create_job"]["jobs"]) == {"a", "b", "c"}
    if yml.startswith("cron-with-settings"):
        assert out["create_job"]["settings"]["continue_on_step_failure"] is True
        assert out["create_job"]["tags"] == {"schedule": "cron_with_settings_schedule"}
    shown = cli("schedule", "show", "--name", out["name"], check=True).json()
    assert shown["is_enabled"] is True and shown["next_fire_time"] == out["next_fire_time"]
    cli("schedule", "disable", "--name", out["name"], check=True)


def test_conformance_name_macro_becomes_the_job_name(cli: Any, ml_client: Any, cpu_cluster: None) -> None:
    """``hello_string_top_level_input: ${{name}}`` (cron-with-settings-job-schedule.yml) is the fired job's name."""
    out = cli("schedule", "create", "--file", str(CONFORMANCE / "cron-with-settings-job-schedule.yml"),
              "--name", _uid("macro"), check=True).json()
    res = ml_client.schedules.trigger(out["name"])
    raw = ml_client.jobs.get_raw(res.job_name)
    assert raw["type"] == "pipeline"
    assert raw["inputs"]["hello_string_top_level_input"]["value"] == res.job_name
    assert raw["settings"]["continue_on_step_failure"] is True
    ml_client.jobs.cancel(res.job_name)
    ml_client.schedules.begin_delete(out["name"]).result()


# ---------------------------------------------------------------------------------------- restarts
def _create_minute_schedule(url: str, tmp_path: Path, name: str, start: datetime) -> dict[str, Any]:
    import subprocess
    import sys

    f = _schedule_yaml(tmp_path, name, f"""\
  type: recurrence
  frequency: minute
  interval: 1
  start_time: "{start.isoformat()}\"""")
    p = subprocess.run([sys.executable, "-m", "openaml", "schedule", "create", "--file", str(f), "-w", url],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)  # type: ignore[no-any-return]


def _restart_and_collect(tmp_path: Path, downtime_fires: int) -> tuple[list[Any], datetime]:
    from openaml import MLClient

    ws = tmp_path / "ws"
    srv = start_server(ws, name="sched-restart")
    name = _uid("missed")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    try:
        first = datetime.fromisoformat(_create_minute_schedule(srv.url, tmp_path, name, start)["next_fire_time"])
    finally:
        srv.stop()
    if datetime.now(UTC) >= first:
        pytest.skip("the machine was too slow to stop the server before the first fire")
    # down across `downtime_fires` fire times, and long enough that the fire is clearly late
    last_missed = first + timedelta(minutes=downtime_fires - 1)
    time.sleep(max(0.0, (last_missed + timedelta(seconds=12) - datetime.now(UTC)).total_seconds()))
    srv = start_server(ws, name="sched-restart", create=False)
    client = MLClient(workspace=srv.url)
    try:
        _wait(lambda: client.schedules.get(name).last_job_name, 20, "the catch-up fire")
        time.sleep(1.5)  # a second fire now would be a bug
        assert client.schedules.get(name).fire_count == 1
        return _jobs_of(client, name), last_missed
    finally:
        client.close()
        srv.stop()


def test_fire_missed_while_the_server_was_down_happens_once_on_restart(tmp_path: Path) -> None:
    """Policy: fire times passed while the server was down give ONE catch-up job, for the latest of them."""
    jobs, last_missed = _restart_and_collect(tmp_path, downtime_fires=1)
    assert len(jobs) == 1, [j.name for j in jobs]
    props = jobs[0].properties
    assert props["openaml.schedule.time"] == _iso(last_missed)
    assert props["openaml.schedule.catch_up"] == "true" and props["openaml.schedule.missed_fires"] == "0"


@pytest.mark.slow
def test_several_missed_fires_give_one_catch_up_job(tmp_path: Path) -> None:
    jobs, last_missed = _restart_and_collect(tmp_path, downtime_fires=3)
    assert len(jobs) == 1, [j.name for j in jobs]
    props = jobs[0].properties
    assert props["openaml.schedule.time"] == _iso(last_missed)
    assert props["openaml.schedule.catch_up"] == "true" and props["openaml.schedule.missed_fires"] == "2"


@pytest.mark.slow
def test_cron_every_minute_fires_at_the_minute(ml_client: Any) -> None:
    from openaml import command
    from openaml.entities import CronTrigger, JobSchedule

    name = _uid("cron")
    start = datetime.now(UTC) + timedelta(seconds=2)
    ml_client.schedules.begin_create_or_update(JobSchedule(
        name=name, trigger=CronTrigger(expression="* * * * *", start_time=start.replace(microsecond=0).isoformat()),
        create_job=command(command="echo cron"))).result()
    sched = _wait(lambda: (s := ml_client.schedules.get(name)).last_job_name and s, 75, "the cron fire")
    fire = datetime.fromisoformat(ml_client.jobs.get(sched.last_job_name).properties["openaml.schedule.time"])
    assert fire.second == 0 and fire > start
    ml_client.schedules.begin_delete(name).result()


# ---------------------------------------------------------------------------------------- the example
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "titanic"


def _next_local(now: datetime, zone: str, hour: int, minute: int) -> datetime:
    return _next_daily_pattern(now, zone, [hour], [minute])


def test_titanic_nightly_schedule_yaml_and_sdk(cli: Any, server: Any) -> None:
    import subprocess
    import sys

    # what the README registers first: the schedule's job names them, and create checks they exist
    cli("data", "create", "--file", str(EXAMPLE / "data.yml"), check=True)
    cli("environment", "create", "--file", str(EXAMPLE / "environment.yml"), check=True)
    before = datetime.now(UTC)
    out = cli("schedule", "create", "--file", str(EXAMPLE / "schedule-nightly.yml"), check=True).json()
    expected = _next_local(before, "America/Los_Angeles", 2, 0)
    assert out["name"] == "titanic_nightly" and out["next_fire_time"] == _iso(expected)
    job = out["create_job"]
    assert job["experiment_name"] == "titanic-nightly" and job["tags"] == {"trigger": "nightly"}
    assert job["code"].startswith("openaml-code:") and job["inputs"]["titanic"]["path"] == "azureml:titanic-mltable@latest"
    p = subprocess.run([sys.executable, str(EXAMPLE / "schedule_nightly.py"), "--disable"], capture_output=True,
                       text=True, timeout=300, env={**os.environ, "OPENAML_WORKSPACE": server.url})
    assert p.returncode == 0, p.stderr
    assert f"next fire {expected}" in p.stdout, p.stdout
    sdk = cli("schedule", "show", "--name", "titanic_nightly_sdk", check=True).json()
    assert sdk["is_enabled"] is False and sdk["create_job"]["experiment_name"] == "titanic-nightly"
    assert sdk["trigger"]["schedule"] == {"hours": [2], "minutes": [0]}
    for name in ("titanic_nightly", "titanic_nightly_sdk"):
        cli("schedule", "delete", "--name", name, "--yes", check=True)
