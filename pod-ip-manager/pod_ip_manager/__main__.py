"""``python -m pod_ip_manager init|sidecar|node-agent``."""

from pod_ip_manager.app import main

raise SystemExit(main())
