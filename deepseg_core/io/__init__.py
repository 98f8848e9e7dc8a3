"""Files on disk and what the user sees of them: atomic writes, GDAL sidecars and errors,
virtual paths, progress lines; the threads that work beside them (io.threads)."""
