"""The four stages: dataprep, train, crossval, predict."""
