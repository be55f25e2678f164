"""Stand-ins for what cannot run on these machines (a Kubernetes API server), for tests only."""
