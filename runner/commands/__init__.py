"""One module per subcommand, each exposing `run(args, env) -> int`."""
