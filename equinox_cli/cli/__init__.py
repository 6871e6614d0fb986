"""The command-line layer: Typer commands and Rich output. Nothing below it imports either."""
