"""A run around a driver: the supervisor (stop conditions, evaluations, checkpoint cadence), the
checkpoint file, the run directory's logs, evaluation, and the stop signals."""
