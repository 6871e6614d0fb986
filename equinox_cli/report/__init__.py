"""Run outputs: writers (Parquet reports, collected data), readers (report and sweep folders,
checked), and the HTML report's figures. Nothing here computes a metric: figures arrange the
tables' columns (binned, as CDFs) and metrics/ computes the rest."""
