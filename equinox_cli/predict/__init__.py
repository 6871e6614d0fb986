"""Output predictors the fair policies can be given (MoPE arrives with `train-mope`)."""
