from fakes.cluster import kube_cluster  # noqa: F401  (the fixture, for this directory's tests)
