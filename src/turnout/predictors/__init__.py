"""Quality and output-length predictors (scikit-learn style), registered in :data:`PREDICTORS`."""

from turnout.predictors.base import FloatArray, OutputLengthPredictor, QualityPredictor

PREDICTORS: dict[str, type] = {}

__all__ = ["PREDICTORS", "FloatArray", "OutputLengthPredictor", "QualityPredictor"]
