"""``deepseg export``: a trained semantic model as a file other tools run (ONNX for onnxruntime
and QGIS's Deepness plugin, TensorFlow SavedModel), self-described by its metadata."""
