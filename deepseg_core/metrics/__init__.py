"""Evaluation metrics (confusion matrices with pycm, instance matching and AP) and error maps.

Pure numpy at import; pycm and matplotlib are imported only when reports are written. The
contract a metric plugin follows is :class:`deepseg_core.metrics.base.Metric`.
"""
