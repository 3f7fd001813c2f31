"""`wfgen serve`: the local stand-in for the Workflows, Executions, Compute
Engine, Cloud Logging and Cloud Scheduler APIs, over the local backend and a
SQLite store. Each API is one module with a `handle(request)` method, served
by wfgen.local.loopback.LoopbackServer."""
