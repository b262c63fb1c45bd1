"""Command-line entry points. Each command lives in its own module with `register(subparsers)`."""
