"""The orchestrator: runs a milestone plan task by task with a headless coding agent.

Modules, one concept each: ``plan`` (parser), ``agents`` (the agent interface
and its adapters), ``process`` (the one streaming process controller),
``state`` (the run state file), ``lock`` (one run per milestone), ``prompt`` and
``status_block`` (the contract with the agent), ``telemetry``, ``context``
(project, settings, slot URLs), ``runloop`` (the workflow) and ``report``
(status/history/costs).
"""
