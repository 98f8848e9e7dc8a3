"""The contracts plugins implement: rasters (sources, sinks, their description) and models."""
