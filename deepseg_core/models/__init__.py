"""What model plugins share: the model folder (model.json, picked weights), pretrained
weights from local files, Keras Applications encoders, losses and metrics."""
