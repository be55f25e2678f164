"""paddle-canary: canary releases for PaddlePaddle models.

Everything outside ``paddle_canary.airflow`` is plain Python that imports no Airflow.
"""

__version__ = "0.1.0"
