"""The embedded simulator: an OpenAI-compatible streaming server with a scheduled clock, run
in-process or as a child process; what `kind: mock` servers and the demo plan talk to."""
