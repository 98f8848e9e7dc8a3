"""Running on a Slurm cluster: job scripts, submission, local shards, file counts."""
