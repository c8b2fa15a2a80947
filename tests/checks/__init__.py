"""The check tests, one module per check module (checks/<name>.py -> test_<name>.py).

Each test copies a recorded scenario, edits its raw evidence (tests/bundlekit.py) exactly where a
real host would differ, audits it through the real collectors (replay://), parsers and checks,
and asserts the exact status of the findings it is about AND that every other finding is
unchanged from the scenario's expected statuses (tests/checks/checkkit.py).
"""
