"""The job model: the spec (every rule about a job lives here), the execution
argument's rules, and rendering a spec into the workflow YAML.

Data flows one way: spec -> render -> workflow YAML -> a backend (the local
runtime, `wfgen serve`, or Google Cloud)."""
