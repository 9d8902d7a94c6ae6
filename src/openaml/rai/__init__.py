"""Responsible AI (issue 16): the built-in ``azureml`` registry's RAI components and their code.

- :mod:`openaml.rai.registry`: the read-only registry (component YAML under ``components/``).
- :mod:`openaml.rai.__main__`: what the components run (``python -m openaml.rai <step> ...``).
- :mod:`openaml.rai.fairness`: fairlearn assessment and mitigation, usable from any job.

The insights write their results as JSON; the gather step joins them into ``dashboard.json``
(schema ``openaml.rai.dashboard/1``, see docs/guide/rai.md).
"""

from __future__ import annotations
