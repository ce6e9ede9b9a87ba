"""The command line: one short-lived process per command."""

import gc

# Start-up allocates tens of thousands of objects that live as long as the
# process (modules, classes, functions). At the default first threshold (700)
# the collector walks them ~35 times while a command starts and frees almost
# nothing: ~3 ms of `kinfra ports`. A larger one still collects in long runs
# (the orchestrator), in fewer, bigger steps.
gc.set_threshold(50_000)
