"""Streaming inference shared by the crossval and predict stages: reader, model, writer."""
