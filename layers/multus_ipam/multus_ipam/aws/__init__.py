"""boto3 adapters behind the ports in :mod:`multus_ipam.ports`."""
