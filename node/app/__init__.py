"""One validator process: assembly of the parts, configuration, metrics, logs and interpreter tuning."""
