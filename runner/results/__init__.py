"""What a run leaves on disk: the run directory (manifest, job summaries, request logs), the
results index for history, and reading stored runs back; hands the report stage `StoredRun`s."""
