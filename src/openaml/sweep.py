"""``openaml.sweep``: search-space distributions, early-termination policies and sweep entities,
as ``azure.ai.ml.sweep``.

    from openaml.sweep import Choice, Uniform, BanditPolicy
    job = command(...)(C=Uniform(min_value=0.01, max_value=5.0), penalty=Choice(["l2", "none"]))
    sweep_job = job.sweep(compute="local", sampling_algorithm="random", primary_metric="AUC", goal="Maximize")
    sweep_job.set_limits(max_total_trials=20, max_concurrent_trials=2, timeout=3600)
    sweep_job.early_termination = BanditPolicy(slack_factor=0.1, evaluation_interval=1, delay_evaluation=5)
"""

from __future__ import annotations

from openaml.entities._sweep import (
    BanditPolicy,
    BayesianSamplingAlgorithm,
    Choice,
    GridSamplingAlgorithm,
    HyperbandPolicy,
    LogNormal,
    LogUniform,
    MedianStoppingPolicy,
    Normal,
    Objective,
    QLogNormal,
    QLogUniform,
    QNormal,
    QUniform,
    Randint,
    RandomSamplingAlgorithm,
    SweepJob,
    SweepJobLimits,
    TrialCommand,
    TruncationSelectionPolicy,
    Uniform,
)

__all__ = [
    "BanditPolicy", "BayesianSamplingAlgorithm", "Choice", "GridSamplingAlgorithm", "HyperbandPolicy", "LogNormal", "LogUniform",
    "MedianStoppingPolicy", "Normal", "Objective", "QLogNormal", "QLogUniform", "QNormal", "QUniform", "Randint",
    "RandomSamplingAlgorithm", "SweepJob", "SweepJobLimits", "TrialCommand", "TruncationSelectionPolicy", "Uniform",
]
