"""`iasovoice loadtest`: many simulated callers with real recordings against a running gateway.

audio.py builds the pre-encoded caller audio pool, runner.py ramps and runs the calls on one asyncio
loop, metrics.py holds what is measured, display.py shows progress, report.py writes the results, and
spawn.py starts a server for self-contained runs. cli.py wires them into the `iasovoice` command.
"""
