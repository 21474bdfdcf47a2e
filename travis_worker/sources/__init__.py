"""Where jobs come from and where their states and logs go back to: the AMQP queue, the
file queue, several sources at once, a single job on a terminal, and the in-process fan-out
of `cancel_job` commands."""
