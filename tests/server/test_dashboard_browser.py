"""The dashboard in a real headless Chromium: deploy and run through serve's
API, then click home -> workflow -> a succeeded execution (its result) -> a
failed one (its error and step) -> a job's VM (its output lines) -> Cancel
on a running execution (CANCELLED). Every page is checked for dialogs (an
injected <script> never runs) and every request for its host (none leaves
127.0.0.1). The run also takes the README's screenshots (WFGEN_SCREENSHOTS=DIR
keeps them)."""

from __future__ import annotations

import base64
import os
import re
import shutil
import time

import pytest

from tests.server.dashboard_setup import (
    FAILS,
    GREET,
    SLEEPER,
    XSS,
    deploy,
    deploy_job,
    launch,
    playwright_or_skip,
    start,
    ui_path,
)
from tests.server.serve_process import PARENT, Serve

pytestmark = pytest.mark.xdist_group("dashboard_browser")


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    server = Serve(tmp_path_factory.mktemp("dashboard-browser"), data_dir=":memory:").start()
    yield server
    assert server.stop() == 0, server.log()


@pytest.fixture(scope="module")
def runs(serve, tmp_path_factory):
    """Executions in every state, through the REST API: name -> execution."""
    tmp = tmp_path_factory.mktemp("dashboard-jobs")
    greet = deploy(serve, "greet", GREET, description=XSS)
    fails = deploy(serve, "fails", FAILS)
    job = deploy_job(serve, tmp, "hello-job", "echo 'first line from the job'; "
                                              "echo 'second line <b>not bold</b>'")
    sleeper = deploy(serve, "sleeper", SLEEPER)
    out = {"succeeded": start(serve, greet, {"who": "<img src=x onerror=alert(3)>"}),
           "failed": start(serve, fails), "job": start(serve, job)}
    for key in ("succeeded", "failed", "job"):
        assert serve.wait_execution(out[key])["state"] == ("FAILED" if key == "failed"
                                                            else "SUCCEEDED")
    train = deploy_job(serve, tmp, "train", "for i in $(seq 1 120); do "
                                            "echo \"epoch $i loss 0.$((200 - i))\"; sleep 1; done")
    out["running"] = start(serve, train)
    schedule_and_trigger(serve, train)
    out["running2"] = start(serve, sleeper)
    deadline = time.monotonic() + 60
    while "epoch 2 " not in console_of(serve, "train"):  # its VM is up and printing
        assert time.monotonic() < deadline, "the train job's VM never printed"
        time.sleep(0.2)
    return out


def schedule_and_trigger(serve: Serve, workflow: str) -> None:
    """A nightly Cloud Scheduler job and a Pub/Sub trigger, both starting `workflow`."""
    status, job = serve.call("POST", f"/v1/{PARENT}/jobs", {
        "name": f"{PARENT}/jobs/nightly-train", "schedule": "0 3 * * *",
        "timeZone": "Europe/Paris", "httpTarget": {
            "uri": f"https://workflowexecutions.googleapis.com/v1/{workflow}/executions",
            "httpMethod": "POST", "body": base64.b64encode(b'{"argument": "{}"}').decode()}})
    assert status == 200, job
    status, op = serve.call("POST", f"/v1/{PARENT}/triggers?triggerId=train-on-data", {
        "eventFilters": [{"attribute": "type",
                          "value": "google.cloud.pubsub.topic.v1.messagePublished"}],
        "destination": {"workflow": workflow},
        "transport": {"pubsub": {"topic": "projects/demo/topics/new-data"}}})
    assert status == 200, op


def console_of(serve: Serve, job: str) -> str:
    status, listing = serve.call("GET", "/compute/v1/projects/demo/aggregated/instances")
    assert status == 200, listing
    for scope in listing.get("items", {}).values():
        for vm in scope.get("instances", []):
            if vm["labels"].get("wfgen-job") == job:
                zone = vm["zone"].rsplit("/", 1)[-1]
                _, out = serve.call("GET", f"/compute/v1/projects/demo/zones/{zone}/instances/"
                                           f"{vm['name']}/serialPort")
                return str(out.get("contents", ""))
    return ""


@pytest.fixture(scope="module")
def playwright():
    pw = playwright_or_skip()
    yield pw
    pw.stop()


@pytest.fixture(scope="module")
def chromium(playwright, tmp_path_factory):
    browser = launch(playwright, tmp_path_factory.mktemp("chromium-profile"))
    yield browser
    browser.context.close()


@pytest.fixture
def browser(chromium):
    """The module's Chromium; after the test: no dialog opened, no request left
    127.0.0.1."""
    yield chromium
    assert chromium.dialogs == [], f"a page ran injected script: {chromium.dialogs}"
    assert chromium.foreign_requests() == []
    assert chromium.requests, "the browser made no request at all"


def screenshot(page, tmp_path, name: str) -> None:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    keep = os.environ.get("WFGEN_SCREENSHOTS")
    if keep:
        shutil.copy(path, os.path.join(keep, name))


def test_home_workflow_executions_vm_and_cancel(serve, runs, browser, tmp_path):
    page = browser.page()
    page.goto(f"{serve.url}/")  # redirects to /ui/
    assert page.url == f"{serve.url}/ui/"
    assert page.locator("h1").inner_text() == "Overview"
    assert page.locator("#running tbody tr").count() == 2
    assert "train" in page.locator("#vms").inner_text()
    assert "0 3 * * *" in page.locator("#schedules").inner_text()
    assert "new-data" in page.locator("#triggers").inner_text()
    screenshot(page, tmp_path, "dashboard.png")

    # home -> workflow -> the succeeded execution: its result, as text
    page.click("a:text-is('greet')")
    assert page.url.endswith("/ui/workflows/demo/us-central1/greet")
    assert page.locator(".lead").inner_text() == XSS  # the description, shown as text
    assert page.locator(".source tr").count() == len(GREET.splitlines())
    page.click(f"a:text-is('{runs['succeeded'].rsplit('/', 1)[-1][:8]}')")
    assert page.locator("#state").inner_text().startswith("SUCCEEDED")
    result = page.locator("#result").inner_text()
    assert XSS in result and "<img src=x onerror=alert(3)>" in result
    assert "pause" in page.locator("#steps").inner_text()  # the call step, from the step log

    # the failed execution: message, tag and the failing step, with its line
    page.goto(serve.url + ui_path(runs["failed"]))
    assert page.locator("#state").inner_text().startswith("FAILED")
    error = page.locator("#error")
    assert "disk full <script>alert(2)</script>" in error.inner_text()
    assert page.locator("#failing-step").inner_text() == "boom"
    assert "line 6" in error.inner_text()  # "- boom:" in FAILS

    # the job: its VM, whose page shows what the job printed
    page.goto(serve.url + ui_path(runs["job"]))
    assert "first line from the job" in page.locator("#output").inner_text()
    screenshot(page, tmp_path, "dashboard-execution.png")
    page.click("a.mono[href^='/ui/vms/']")
    console = page.locator("#console").inner_text()
    assert "first line from the job" in console
    assert "second line <b>not bold</b>" in console
    assert page.locator("#execution-link").get_attribute("href") == ui_path(runs["job"])

    # Pub/Sub: the trigger's topic, and the workflow it starts
    page.click("nav a:text-is('Pub/Sub')")
    assert "new-data" in page.locator("#topics").inner_text()
    assert "train" in page.locator("#topics").inner_text()

    # Cancel on a running job: back on its page, CANCELLED
    page.goto(serve.url + ui_path(runs["running"]))
    assert page.locator("#state").inner_text().startswith("ACTIVE")
    assert page.locator("#vms .state-running").count() == 1  # its VM
    page.click("button:text-is('Cancel')")
    page.wait_for_url(re.compile(r"\?done=cancelled$"))
    assert page.locator("#state").inner_text().startswith("CANCELLED")
    assert serve.call("GET", f"/v1/{runs['running']}")[1]["state"] == "CANCELLED"


def test_a_running_page_refreshes_itself_keeping_its_place(serve, runs, browser):
    page = browser.page()
    page.set_viewport_size({"width": 1280, "height": 300})
    page.goto(serve.url + ui_path(runs["running2"]))
    page.evaluate("window.notReloaded = true; window.scrollTo(0, 200)")
    assert page.locator("#state").inner_text().startswith("ACTIVE")
    status, _ = serve.call("POST", f"/v1/{runs['running2']}:cancel", {})
    assert status == 200
    deadline = time.monotonic() + 15  # the page's own poll (CSP forbids wait_for_function)
    while not page.locator("#state").inner_text().startswith("CANCELLED"):
        assert time.monotonic() < deadline, "the page never showed CANCELLED by itself"
        time.sleep(0.2)
    assert page.evaluate("window.notReloaded === true && window.scrollY === 200")
    assert page.locator("main[data-live]").count() == 0  # ended: it stops polling


def test_pages_and_forms_work_without_javascript(serve, runs, playwright, tmp_path):
    browser = launch(playwright, tmp_path / "profile", javascript=False)
    try:
        page = browser.page()
        page.goto(f"{serve.url}/ui/")
        page.click("a:text-is('fails')")
        page.click(f"a:text-is('{runs['failed'].rsplit('/', 1)[-1][:8]}')")
        assert page.locator("#failing-step").inner_text() == "boom"
        page.click("button:text-is('Run again')")
        page.wait_for_url(re.compile(r"\?done=started$"))
        again = page.url.split("?")[0].rsplit("/", 1)[-1]
        assert again != runs["failed"].rsplit("/", 1)[-1]
        deadline = time.monotonic() + 30
        while "FAILED" not in page.locator("#state").inner_text():
            assert time.monotonic() < deadline
            time.sleep(0.2)
            page.reload()
        assert browser.foreign_requests() == [] and browser.dialogs == []
    finally:
        browser.context.close()
