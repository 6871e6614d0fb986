"""Writers of run outputs (one writer per format); nothing here computes metrics."""
