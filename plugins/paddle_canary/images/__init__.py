"""Serving images: the offline base, the wheelhouse and ``<model>-serving:<version>`` images,
built through the docker SDK (``docker`` extra). Nothing here is imported at DAG parse time."""
