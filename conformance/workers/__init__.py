"""Helpers of the fault-delivery tests: task functions and worker scripts run as subprocesses.

Kept in a package on its own (``workers``, importable with ``conformance/`` on ``sys.path``) so
that a task function is stored by reference (``workers.fault_tasks:record_run``) and every
process, the test's and the workers', loads the same code.
"""
