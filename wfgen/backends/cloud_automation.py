"""Cloud Scheduler jobs and Eventarc triggers of the cloud backend (wfgen
schedule, wfgen trigger). Mixed into wfgen.backends.cloud.CloudBackend."""

from __future__ import annotations

from wfgen.backends.cloud_convert import _schedule, _trigger
from wfgen.backends.cloud_types import ROLE_SCHEDULE, ROLE_TRIGGER, Schedule, Trigger
from wfgen.errors import UsageError


class CloudAutomation:
    """Schedules and triggers over CloudBackend's clients (a mixin of CloudBackend)."""

    # -- schedules (Cloud Scheduler jobs) -----------------------------------

    def schedule_name(self, schedule_id: str) -> str:
        return f"projects/{self.project}/locations/{self.location}/jobs/{schedule_id}"

    def put_schedule(self, name: str, *, cron: str, time_zone: str, uri: str, body: bytes,
                     service_account: str, description: str) -> Schedule:
        """Create the job, or update it to these settings when it exists."""
        from google.api_core import exceptions as api
        from google.cloud import scheduler_v1 as sch
        from google.protobuf import field_mask_pb2

        job = sch.Job(name=name, schedule=cron, time_zone=time_zone, description=description,
                      http_target=sch.HttpTarget(
                          uri=uri, http_method=sch.HttpMethod.POST, body=body,
                          headers={"Content-Type": "application/json"},
                          oauth_token=sch.OAuthToken(service_account_email=service_account)))
        client = self._client("scheduler")
        with self._calling(f"scheduling {name}", ROLE_SCHEDULE):
            try:
                client.get_job(name=name)
            except api.NotFound:
                out = _schedule(client.create_job(parent=name.rsplit("/jobs/", 1)[0], job=job))
                out.created = True
                return out
            mask = field_mask_pb2.FieldMask(paths=["schedule", "time_zone", "description",
                                                   "http_target"])
            return _schedule(client.update_job(job=job, update_mask=mask))

    def delete_schedule(self, name: str) -> None:
        with self._calling(f"deleting the schedule {name}", ROLE_SCHEDULE):
            self._client("scheduler").delete_job(name=name)

    def list_schedules(self, uri: str | None = None) -> list[Schedule]:
        """The location's jobs (those that POST to `uri`, when given)."""
        parent = f"projects/{self.project}/locations/{self.location}"
        with self._calling(f"listing the schedules of {parent}", "roles/cloudscheduler.viewer"):
            jobs = [_schedule(job) for job in self._client("scheduler").list_jobs(parent=parent)]
        return [job for job in jobs if uri is None or job.uri == uri]

    # -- triggers (Eventarc) --------------------------------------------------

    def trigger_name(self, trigger_id: str) -> str:
        return f"projects/{self.project}/locations/{self.location}/triggers/{trigger_id}"

    def put_trigger(self, name: str, *, topic: str, workflow: str,
                    service_account: str | None) -> Trigger:
        """Create the trigger, or point it at `workflow` (and the account) when it exists."""
        from google.api_core import exceptions as api
        from google.cloud import eventarc_v1 as ev
        from google.protobuf import field_mask_pb2

        from wfgen.job.schedule import PUBSUB_EVENT

        trigger = ev.Trigger(
            name=name, event_filters=[ev.EventFilter(attribute="type", value=PUBSUB_EVENT)],
            destination=ev.Destination(workflow=workflow),
            transport=ev.Transport(pubsub=ev.Pubsub(topic=topic)),
            service_account=service_account or "")
        client = self._client("eventarc")
        with self._calling(f"creating the trigger {name}", ROLE_TRIGGER):
            try:
                current = client.get_trigger(name=name)
            except api.NotFound:
                parent, _, trigger_id = name.rpartition("/triggers/")
                op = client.create_trigger(parent=parent, trigger=trigger, trigger_id=trigger_id)
                out = _trigger(op.result(timeout=600))
                out.created = True
                return out
            if current.transport.pubsub.topic != topic:
                raise UsageError(f"the trigger {name} listens to "
                                 f"{current.transport.pubsub.topic}, not {topic} (a trigger's "
                                 "topic cannot change): delete it, or give another --name")
            paths = ["destination"] + (["service_account"] if service_account else [])
            op = client.update_trigger(trigger=trigger,
                                       update_mask=field_mask_pb2.FieldMask(paths=paths))
            return _trigger(op.result(timeout=600))

    def delete_trigger(self, name: str) -> None:
        with self._calling(f"deleting the trigger {name}", ROLE_TRIGGER):
            self._client("eventarc").delete_trigger(name=name).result(timeout=600)

    def list_triggers(self, workflow: str | None = None) -> list[Trigger]:
        """The location's triggers (those that start `workflow`, when given)."""
        parent = f"projects/{self.project}/locations/{self.location}"
        with self._calling(f"listing the triggers of {parent}", "roles/eventarc.viewer"):
            found = [_trigger(t) for t in self._client("eventarc").list_triggers(parent=parent)]
        return [t for t in found if workflow is None or t.workflow == workflow]
