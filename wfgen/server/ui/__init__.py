"""`wfgen serve`'s web dashboard at /ui/: server-rendered pages of the
workflows, executions, VMs, schedules, triggers and topics serve holds."""
