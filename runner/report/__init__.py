"""What people read, rendered only from stored runs: HTML/SVG, Markdown, CSV and JSON reports,
JUnit, run-to-run comparison with noise checks, and history."""
