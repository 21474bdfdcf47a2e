"""The job pipeline, the processor that feeds it, and the pool of processors."""
