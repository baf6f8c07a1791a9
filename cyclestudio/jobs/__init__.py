"""Job processes (train, translate, watch): events out on stdout, control lines in on stdin."""
