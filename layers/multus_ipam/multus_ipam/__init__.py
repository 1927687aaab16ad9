"""ENI and IP address management for Multus worker nodes on Amazon EKS.

Shared by the Lambda functions through one layer; imported as ``multus_ipam`` in Lambda and in tests.
"""
