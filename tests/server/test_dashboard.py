"""The dashboard over plain HTTP, against a real `wfgen serve`: the redirect,
security headers, HTML error pages (never a 500), paging and the state
filter, long values cut, escaping, the step log and billed steps, and the
forms' CSRF token and same-origin checks (Cancel and Run again go through
serve's own Executions API)."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request

import pytest

from tests.server.dashboard_setup import (
    SLEEPER,
    XSS,
    csrf,
    deploy,
    deploy_job,
    start,
    ui_path,
)
from tests.server.serve_process import Serve

pytestmark = pytest.mark.xdist_group("dashboard_http")

BIG = """main:
  steps:
    - seed:
        assign:
          - text: "0123456789abcdef"
    - grow:
        for:
          value: i
          range: [1, 14]
          steps:
            - double:
                assign:
                  - text: ${text + text}
    - done:
        return: ${text}
"""  # a 256 KB result
QUICK = """main:
  params: [args]
  steps:
    - log:
        call: sys.log
        args:
          text: ${args.n}
    - done:
        return: ${args.n}
"""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


OPENER = urllib.request.build_opener(_NoRedirect)


def fetch(serve: Serve, path: str, *, method: str = "GET", form: dict | None = None,
          headers: dict | None = None) -> tuple[int, dict[str, str], str]:
    data = "&".join(f"{k}={v}" for k, v in form.items()).encode() if form is not None else None
    request = urllib.request.Request(serve.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/x-www-form-urlencoded",
                                              **(headers or {})})
    try:
        with OPENER.open(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    server = Serve(tmp_path_factory.mktemp("dashboard-http"), data_dir=":memory:").start()
    yield server
    assert server.stop() == 0, server.log()


@pytest.fixture(scope="module")
def quick(serve):
    """30 finished executions of one workflow: name -> argument n."""
    workflow = deploy(serve, "quick", QUICK)
    names = [start(serve, workflow, {"n": n}) for n in range(30)]
    for name in names:
        assert serve.wait_execution(name)["state"] == "SUCCEEDED"
    return workflow, names


def test_root_redirects_and_pages_forbid_foreign_script(serve):
    status, headers, _ = fetch(serve, "/")
    assert status == 302 and headers["Location"] == "/ui/"
    status, headers, html = fetch(serve, "/ui/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert headers["X-Frame-Options"] == "DENY"
    assert "http://" not in html and "https://" not in html  # nothing fetched from elsewhere
    for asset in ("style.css", "live.js", "icon.svg"):
        status, _, body = fetch(serve, f"/ui/static/{asset}")
        assert status == 200 and body


@pytest.mark.parametrize("path,status", [
    ("/ui/executions/demo/us-central1/quick/00000000-0000-0000-0000-000000000000", 404),
    ("/ui/workflows/demo/us-central1/no-such-workflow", 404),
    ("/ui/workflows/demo/us-central1/quick?page_token=not-a-token", 400),
    ("/ui/workflows/demo/us-central1/quick?state=<b>", 400),
    ("/ui/vms/demo/us-central1-a/no-such-vm", 404),
    ("/ui/nothing/here", 404),
    ("/ui/static/../../etc/passwd", 404),
])
def test_bad_addresses_are_html_error_pages(serve, quick, path, status):
    got, headers, html = fetch(serve, path)
    assert got == status, html[:500]
    assert headers["Content-Type"].startswith("text/html")
    assert f"<h1>{status}</h1>" in html and "<b>" not in html


def test_a_workflow_pages_newest_first_and_filters_by_state(serve, quick):
    workflow, names = quick
    status, _, first = fetch(serve, ui_path(workflow))
    assert status == 200
    ids = re.findall(r'href="/ui/executions/[^"]+/([0-9a-f-]{36})"', first)
    assert ids == [n.rsplit("/", 1)[-1] for n in reversed(names)][:25]
    token = re.search(r'page_token=([^"&]+)"', first).group(1)
    _, _, second = fetch(serve, f"{ui_path(workflow)}?page_token={token}")
    more = re.findall(r'href="/ui/executions/[^"]+/([0-9a-f-]{36})"', second)
    assert more == [n.rsplit("/", 1)[-1] for n in reversed(names)][25:]
    assert "page_token=" not in second  # the last page
    _, _, failed = fetch(serve, f"{ui_path(workflow)}?state=FAILED")
    assert "No execution in state FAILED." in failed
    _, _, ok = fetch(serve, f"{ui_path(workflow)}?state=SUCCEEDED")
    assert len(re.findall(r'href="/ui/executions/', ok)) == 25
    assert re.search(r"succeeded <span class=\"count\">30</span>", ok)


def test_an_execution_shows_its_call_steps_and_billed_steps(serve, quick):
    _, names = quick
    _, _, html = fetch(serve, ui_path(names[0]))
    steps = html.split('id="steps"', 1)[1]
    assert '<td class="mono">log</td>' in steps
    assert re.search(r"Billed steps</dt><dd>\d+ internal, 0 external", html)
    assert '<pre class="json" id="result">0</pre>' in html


def test_user_strings_are_text_and_a_long_result_is_cut(serve):
    workflow = deploy(serve, "big", BIG, description=XSS)
    name = start(serve, workflow, {"note": XSS})
    assert serve.wait_execution(name)["state"] == "SUCCEEDED"
    _, _, page = fetch(serve, ui_path(workflow))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and XSS not in page
    _, _, html = fetch(serve, ui_path(name))
    assert len(html) < 64 * 1024  # the 256 KB result is not sent whole
    assert "cut: showing 16,384 of 262,146 characters" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and XSS not in html


def test_a_long_console_is_cut_to_its_end(serve, tmp_path):
    workflow = deploy_job(serve, tmp_path, "chatty",
                          "i=0; while [ $i -lt 3000 ]; do echo \"line $i of the chatty job "
                          "................................................\"; i=$((i+1)); "
                          "done; echo THE-END")
    name = start(serve, workflow)
    assert serve.wait_execution(name)["state"] == "SUCCEEDED"
    _, _, html = fetch(serve, ui_path(name))
    vm = re.search(r'href="(/ui/vms/[^"]+)"', html).group(1)
    _, _, page = fetch(serve, vm)
    assert "THE-END" in page and "line 2999 of" in page
    assert "line 0 of" not in page  # the start is cut
    assert re.search(r"cut: showing the last 65,536 of [\d,]+ bytes", page)
    assert len(page) < 100 * 1024
    assert "wfgen-execution" in page and 'id="execution-link"' in page


def test_forms_need_this_pages_token_and_origin(serve):
    workflow = deploy(serve, "sleepy", SLEEPER)
    name = start(serve, workflow)
    _, _, html = fetch(serve, ui_path(name))
    token = csrf(html, "cancel")
    cancel = f"{ui_path(name)}/cancel"
    refused = [
        fetch(serve, cancel, method="POST", form={}),
        fetch(serve, cancel, method="POST", form={"csrf": "0" * 40}),
        fetch(serve, cancel, method="POST", form={"csrf": csrf(html, "rerun")}),
        fetch(serve, cancel, method="POST", form={"csrf": token},
              headers={"Origin": "http://evil.example"}),
        fetch(serve, cancel, method="POST", form={"csrf": token},
              headers={"Sec-Fetch-Site": "cross-site"}),
    ]
    assert [status for status, _, _ in refused] == [403] * 5
    assert serve.call("GET", f"/v1/{name}")[1]["state"] == "ACTIVE"
    status, headers, _ = fetch(serve, cancel, method="POST", form={"csrf": token},
                               headers={"Origin": serve.url, "Sec-Fetch-Site": "same-origin"})
    assert status == 303 and headers["Location"] == f"{ui_path(name)}?done=cancelled"
    assert serve.call("GET", f"/v1/{name}")[1]["state"] == "CANCELLED"
    status, headers, _ = fetch(serve, cancel, method="POST", form={"csrf": token})
    assert status == 303 and headers["Location"].endswith("?done=ended")  # already over


def test_run_again_starts_the_same_argument(serve, quick):
    workflow, names = quick
    _, _, html = fetch(serve, ui_path(names[7]))
    status, headers, _ = fetch(serve, f"{ui_path(names[7])}/rerun", method="POST",
                               form={"csrf": csrf(html, "rerun")})
    assert status == 303 and headers["Location"].endswith("?done=started")
    new_id = headers["Location"].split("?")[0].rsplit("/", 1)[-1]
    again = serve.wait_execution(f"{workflow}/executions/{new_id}")
    assert json.loads(again["argument"]) == {"n": 7} and json.loads(again["result"]) == 7
    _, _, page = fetch(serve, headers["Location"])
    assert "Started again with the same argument." in page


def test_a_running_page_polls_and_an_ended_one_does_not(serve):
    workflow = deploy(serve, "sleepy2", SLEEPER)
    name = start(serve, workflow)
    time.sleep(0.2)
    _, _, html = fetch(serve, ui_path(name))
    assert '<main data-live="1">' in html
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in html
    assert serve.call("POST", f"/v1/{name}:cancel", {})[0] == 200
    _, _, html = fetch(serve, ui_path(name))
    assert "<main>" in html and "refresh" not in html



def test_a_vm_page_hides_secret_values_and_escapes_metadata(serve):
    zone = "us-central1-b"
    base = f"/compute/v1/projects/demo/zones/{zone}/instances"
    status, op = serve.call("POST", base, {"name": "plain-vm", "metadata": {"items": [
        {"key": "db-password", "value": "hunter2-do-not-show"},
        {"key": "api-token", "value": "tok-do-not-show"},
        {"key": "note", "value": XSS},
        {"key": "startup-script", "value": "echo 'hello from plain-vm'; sleep 30"}]}})
    assert status == 200, op
    try:
        deadline = time.monotonic() + 30
        while True:
            status, _, page = fetch(serve, f"/ui/vms/demo/{zone}/plain-vm")
            assert status == 200
            if "hello from plain-vm" in page:
                break
            assert time.monotonic() < deadline, "the VM's console never showed its line"
            time.sleep(0.2)
        assert "do-not-show" not in page and page.count(">hidden<") == 2
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and XSS not in page
        assert '<main data-live="1">' in page  # its console refreshes while it runs
        _, _, home = fetch(serve, "/ui/")
        assert f'href="/ui/vms/demo/{zone}/plain-vm"' in home
    finally:
        assert serve.call("DELETE", f"{base}/plain-vm")[0] == 200


def test_schedules_and_triggers_with_odd_targets_are_text(serve):
    parent = "projects/demo/locations/us-central1"
    status, job = serve.call("POST", f"/v1/{parent}/jobs", {
        "name": f"{parent}/jobs/odd", "schedule": "*/5 * * * *",
        "httpTarget": {"uri": "http://127.0.0.1:9/v1/x/workflows/<script>alert(1)</script>",
                       "httpMethod": "POST"}})
    assert status == 200, job
    try:
        status, _, home = fetch(serve, "/ui/")
        assert status == 200
        schedules = home.split('id="schedules"', 1)[1].split("</table>", 1)[0]
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in schedules and XSS not in home
        assert 'href="/ui/workflows' not in schedules  # not a workflow: no link
    finally:
        assert serve.call("DELETE", f"/v1/{parent}/jobs/odd")[0] == 200
