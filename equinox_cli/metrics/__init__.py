"""Pure metric functions over the run tables (DESIGN.md §3): they compute, never print or plot."""
