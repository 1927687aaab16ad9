"""ENI and IP address management for Multus worker nodes on Amazon EKS.

Shared by the Lambda functions through one layer; imported as ``multus_ipam`` in Lambda and in tests.
"""

#: The project's one version: pyproject.toml reads it (``[tool.setuptools.dynamic]``), every log line of the
#: functions carries it (``version``), the stack's ``Version`` output and CHANGELOG.md's latest entry repeat it
#: (tests/test_release.py). A literal here, not importlib.metadata: the layer has no installed metadata in Lambda.
__version__ = "0.2.0"
