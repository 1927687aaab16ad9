"""Pod IP manager: makes Multus pod addresses routable by assigning them to the worker's ENI."""
