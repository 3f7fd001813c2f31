"""wfgen: job spec -> Cloud Workflows definition that runs one container job on a
throw-away Compute Engine VM, and the tools to validate, run (locally or in GCP)
and deploy it."""

__version__ = "0.1.0"
