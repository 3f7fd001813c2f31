"""The Secret Manager that the VMs of a `wfgen run --local` read their
container.secret_env from.

- With WORKFLOWS_EMULATOR_HOST set: `wfgen serve`'s, holding what
  `gcloud secrets create NAME --data-file=FILE` put there.
- Otherwise a private one, in memory, on 127.0.0.1 for the run's length,
  holding what `--secret NAME=@FILE` gave (version 1 of
  projects/PROJECT/secrets/NAME). A file rather than a value on the command
  line: command lines end up in shell history and in `ps`. Keyed by the
  secret's name rather than an env-file's variable names: the job spec's
  references then mean the same here, in serve and on Google.

Either way the local VMs learn it from their project metadata
(`wfgen-secretmanager-endpoint`), as the agent reads it."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

from wfgen.errors import UsageError
from wfgen.local.loopback import LoopbackServer, Request
from wfgen.server.secretmanager_api import MAX_PAYLOAD, SECRET_ID_RE, SecretManagerRest
from wfgen.server.store import Store

EMULATOR_ENV = "WORKFLOWS_EMULATOR_HOST"
ENDPOINT_KEY = "wfgen-secretmanager-endpoint"  # the project metadata attribute
HOST_RE = re.compile(r"[A-Za-z0-9.-]+:[0-9]{1,5}")


def parse_secret_option(text: str) -> tuple[str, Path]:
    """`NAME=@FILE` -> (NAME, FILE); anything else is a UsageError saying the form."""
    name, eq, source = text.partition("=")
    if not eq or not source.startswith("@") or len(source) < 2:
        raise UsageError(f"--secret {name or text}: expected NAME=@FILE (the value is read "
                         "from FILE, never given on the command line)")
    if not SECRET_ID_RE.fullmatch(name):
        raise UsageError(f"--secret {name[:80]}: a secret name is 1-255 letters, digits, "
                         "'-' and '_'")
    return name, Path(source[1:]).expanduser()


def read_secret_file(name: str, path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--secret {name}=@{path}: cannot read it: "
                         f"{exc.strerror or exc}") from None
    if len(data) > MAX_PAYLOAD:
        raise UsageError(f"--secret {name}=@{path}: {len(data)} bytes; Secret Manager takes "
                         f"at most {MAX_PAYLOAD}")
    if b"\0" in data:
        raise UsageError(f"--secret {name}=@{path}: holds a NUL byte, which an environment "
                         "variable cannot carry")
    return data


class LocalSecrets:
    """Where this run's VMs read secrets; `project_metadata` goes to every VM."""

    def __init__(self, project: str, options: list[str] | None = None,
                 environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        options = options or []
        self.server: LoopbackServer | None = None
        self.given: set[str] = set()  # names given by --secret
        host = env.get(EMULATOR_ENV, "")
        if host:
            if options:
                raise UsageError(f"--secret is for runs without wfgen serve; with {EMULATOR_ENV}"
                                 " set, the VMs read serve's secrets: gcloud secrets create "
                                 "NAME --data-file=FILE")
            if not HOST_RE.fullmatch(host):
                raise UsageError(f"{EMULATOR_ENV}={host[:80]!r}: expected HOST:PORT")
            self.endpoint = f"http://{host}"
            return
        values: dict[str, bytes] = {}
        for option in options:
            name, path = parse_secret_option(option)
            if name in values:
                raise UsageError(f"--secret {name} is given twice")
            values[name] = read_secret_file(name, path)
        api = SecretManagerRest(Store(":memory:"))
        for name, data in values.items():
            _call(api, "POST", f"/v1/projects/{project}/secrets", {"replication": {
                "automatic": {}}}, secretId=name)
            _call(api, "POST", f"/v1/projects/{project}/secrets/{name}:addVersion",
                  {"payload": {"data": base64.b64encode(data).decode()}})
        self.given = set(values)
        self.server = LoopbackServer([api]).start()
        self.endpoint = self.server.url

    @property
    def from_serve(self) -> bool:
        return self.server is None

    @property
    def project_metadata(self) -> dict[str, str]:
        return {ENDPOINT_KEY: self.endpoint}

    def missing(self, secret_env: dict[str, str], project: str) -> tuple[str, str] | None:
        """(env name, why) for the first reference a run without serve cannot read:
        --secret gives version 1 (latest) of projects/PROJECT/secrets/NAME only."""
        if self.from_serve:
            return None
        for env_name, ref in sorted(secret_env.items()):
            parts = ref.split("/")
            if len(parts) == 1:
                secret = ref
            elif parts[1] == project and parts[5] in ("latest", "1"):
                secret = parts[3]
            else:
                return env_name, (f"{ref} cannot be read locally: --secret NAME=@FILE gives "
                                  f"version 1 of projects/{project}/secrets/NAME; for other "
                                  f"projects or versions, run against wfgen serve "
                                  f"({EMULATOR_ENV})")
            if secret not in self.given:
                return env_name, (f"secret {secret} is not given: add --secret {secret}=@FILE"
                                  f" (or create it in wfgen serve and set {EMULATOR_ENV})")
        return None

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def _call(api: SecretManagerRest, method: str, path: str, body: object, **query: str) -> None:
    request = Request(method, path, {k: [v] for k, v in query.items()}, {},
                      json.dumps(body).encode())
    api.handle(request)  # an ApiError here is a wfgen bug: the inputs were checked
