"""A run's jobs: the executor drives each job's load, metrics summarises its records, progress
and recap tell the user; hands the results stage a summary per job."""
