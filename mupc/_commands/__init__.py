"""Command-line subcommands (private)."""
