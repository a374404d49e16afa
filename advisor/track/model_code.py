"""The file MLflow runs to build a tracked policy's model ("models from code": no pickle).

`tracking.py` logs it with each model; nothing in advisor imports it.
"""

import mlflow

from advisor.track.pyfunc import PolicyModel

mlflow.models.set_model(PolicyModel())
