"""Loading a plan: YAML with positions, sandboxed templates, schema checks, model patterns and
the job matrix; hands the next stages typed `Plan` records and the concrete `Job`s to run
(and `runner plan --out` a lock of them)."""
