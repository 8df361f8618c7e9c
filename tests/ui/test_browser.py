"""The Parallels tab in the MLflow UI, driven in a real Chromium against a live `parallels up`.

The tests run in order and share one browser context: the tab is found and asks for a token, a
DAG is designed by dragging and connecting, fails validation on the right node, is fixed and
saved, and a run started from the UI is followed on its live graph until it succeeds.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.integration.helpers import steps_repo
from tests.ui.conftest import DOCS_IMAGES, TOKEN, Stack

pytestmark = pytest.mark.slow
DAG = "ui-designed"


@pytest.fixture(scope="module")
def page(chromium, stack: Stack):  # type: ignore[no-untyped-def]
    context = chromium.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return steps_repo(tmp_path_factory.mktemp("ui-repo"))


def api(stack: Stack) -> httpx.Client:
    return httpx.Client(
        base_url=f"{stack.api}/api/v1", headers={"Authorization": f"Bearer {TOKEN}"}
    )


def test_tab_in_mlflow_ui_leads_to_parallels_and_asks_for_a_token(page, stack: Stack):
    page.goto(stack.mlflow + "/", wait_until="load")  # MLflow's UI never goes network-idle
    tab = page.wait_for_selector("a[data-parallels-tab]", timeout=60_000)
    assert tab.inner_text().strip() == "Parallels"
    experiments = page.query_selector('a[href="#/experiments"]')
    # The tab sits in MLflow's own navigation, right after Experiments.
    assert tab.evaluate("(a, e) => a.closest('ul') === e.closest('ul')", experiments)
    tab.click()
    page.wait_for_url(re.compile(r"/parallels/"))
    # The API wants a token; the page asks for the user's own and keeps it in the tab.
    page.wait_for_selector("#token-bar:not([hidden])")
    page.fill("#token-input", TOKEN)
    page.click("#token-bar button")
    page.wait_for_selector("#token-bar", state="hidden")
    page.wait_for_selector("table.runs td.empty")
    assert page.inner_text("table.runs").count("no runs yet") == 1


def _drop_project(page, x: int, y: int) -> None:
    page.drag_and_drop("[data-palette='0']", "#canvas", target_position={"x": x, "y": y})


def _fill(page, name: str, value: str) -> None:
    page.fill(f"#panel [name='{name}']", value)
    page.press(f"#panel [name='{name}']", "Tab")  # change fires on blur


def test_design_a_dag_by_dragging_fix_what_validation_shows_and_save(page, stack, repo):
    page.goto(stack.mlflow + "/parallels/#/designer")
    page.wait_for_selector("#canvas.empty")
    _fill(page, "dag-name", DAG)

    _drop_project(page, 150, 80)
    page.wait_for_selector(".node[data-node='project']")
    _fill(page, "id", "emit")
    page.wait_for_selector(".node[data-node='emit']")
    _fill(page, "uri", str(repo))
    _fill(page, "entry_point", "emit")
    _fill(page, "parameters", "n=6\nprefix=img")

    _drop_project(page, 520, 220)
    page.wait_for_selector(".node[data-node='project']")
    _fill(page, "id", "copy")
    _fill(page, "uri", str(repo))
    _fill(page, "entry_point", "copy")
    _fill(page, "parallelism", "3")
    _fill(page, "retries", "50")  # over the limit of 20: the API refuses it

    # Connect emit -> copy by dragging from emit's output port onto copy.
    page.drag_and_drop(".node[data-node='emit'] .port.out", ".node[data-node='copy']")
    page.wait_for_selector("svg.edges g[data-edge='emit->copy']")
    assert page.input_value("#panel [name='partition-emit']") == "by_file"

    # Live validation marks the node the problem is on, and only that one.
    page.wait_for_selector(".node[data-node='copy'].invalid")
    assert "20" in page.inner_text(".node[data-node='copy'] .errors")
    assert page.query_selector(".node[data-node='emit'].invalid") is None
    assert "nodes[1].retries" in page.inner_text("#problems")
    assert "problem" in page.inner_text("#validity")

    page.click(".node[data-node='copy'] .title")
    _fill(page, "retries", "1")
    page.wait_for_selector("#validity.ok")
    assert page.query_selector(".node.invalid") is None

    page.click("#save")
    page.wait_for_selector(f"text=saved {DAG} version 1")
    saved = api(stack).get(f"/templates/{DAG}").json()
    nodes = {n["id"]: n for n in saved["spec"]["nodes"]}
    assert set(nodes) == {"emit", "copy"}
    assert nodes["emit"]["parameters"] == {"n": 6, "prefix": "img"}
    assert nodes["emit"]["project"]["uri"] == str(repo)
    assert nodes["copy"]["inputs"] == [
        {"name": "emit", "source": {"node": "emit"}, "partition": "by_file"}
    ]
    assert nodes["copy"]["parallelism"] == 3 and nodes["copy"]["retries"] == 1

    # Export gives the same spec as YAML.
    with page.expect_download() as download:
        page.click("text=Export YAML")
    exported = yaml.safe_load(Path(download.value.path()).read_text())
    assert exported == saved["spec"]

    # A second save of an edited DAG is version 2, and both versions can be loaded back.
    page.click(".node[data-node='emit'] .title")
    _fill(page, "parameters", "n=6\nprefix=pic")
    page.wait_for_selector("#validity.ok")
    page.click("#save")
    page.wait_for_selector(f"text=saved {DAG} version 2")
    page.select_option("#versions", "1")
    page.wait_for_selector(f"text=loaded {DAG} version 1")
    page.click(".node[data-node='emit'] .title")
    assert "prefix=img" in page.input_value("#panel [name='parameters']")
    page.select_option("#versions", "2")
    page.wait_for_selector(f"text=loaded {DAG} version 2")
    assert page.input_value("#templates") == DAG
    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    page.click(".node[data-node='copy'] .title")
    page.screenshot(path=str(DOCS_IMAGES / "designer.png"))


def test_import_yaml_shows_problems_of_the_imported_spec(page, stack, tmp_path):
    page.goto(stack.mlflow + "/parallels/#/designer")
    page.click("button:text-is('New')")
    page.wait_for_selector("#canvas.empty")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: imported\nnodes:\n  - id: a\n    project: {uri: /r}\n    depends_on: [ghost]\n"
    )
    page.set_input_files("#import-file", str(bad))
    page.wait_for_selector(".node[data-node='a'].invalid")
    assert "ghost" in page.inner_text(".node[data-node='a'] .errors")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nnodes: [\n")
    page.set_input_files("#import-file", str(broken))
    page.wait_for_selector(".notice.error")
    assert "line" in page.inner_text("#notice")


def test_run_started_from_the_ui_is_followed_to_succeeded(page, stack: Stack):
    page.goto(stack.mlflow + "/parallels/#/runs")
    page.click("text=Start a run")
    page.wait_for_selector("#start-run")
    page.select_option("[name='start-template']", DAG)
    page.wait_for_selector("[name='start-version'] option[value='1']", state="attached")
    page.select_option("[name='start-version']", "2")
    page.click("#start-run")
    page.wait_for_url(re.compile(r"#/runs/ui-designed-"))
    run_id = page.url.split("#/runs/")[1]
    page.wait_for_selector(".run-head .badge[data-status='running']")
    page.wait_for_selector(".node[data-node='copy'][data-state='running']", timeout=120_000)
    page.screenshot(path=str(DOCS_IMAGES / "run-graph-live.png"))
    page.wait_for_selector(".run-head .badge[data-status='succeeded']", timeout=180_000)
    for node in ("emit", "copy"):
        assert page.get_attribute(f".node[data-node='{node}']", "data-state") == "succeeded"
    assert page.inner_text(".node[data-node='copy'] .parts") == "3/3 partitions"
    assert page.inner_text(".node[data-node='emit'] .parts") == "1/1 partitions"
    assert re.search(r"\d+s", page.inner_text(".node[data-node='copy'] .took"))
    assert page.query_selector("svg.edges g[data-edge='emit->copy']")
    page.screenshot(path=str(DOCS_IMAGES / "run-graph.png"))

    # The links resolve: the Temporal console page of this workflow, and MLflow's run pages.
    temporal = page.get_attribute("[data-link='temporal']", "href")
    assert temporal.startswith(stack.temporal_ui) and temporal.endswith(f"/workflows/{run_id}")
    assert httpx.get(temporal, timeout=10).status_code == 200
    run = api(stack).get(f"/runs/{run_id}").json()
    assert run["status"] == "succeeded"
    mlflow = MlflowClient(stack.mlflow)
    node_link = page.get_attribute(".node[data-node='copy'] [data-link='mlflow-node']", "href")
    node_run_id = run["progress"]["nodes"]["copy"]["node_run_id"]
    assert node_link.endswith(f"/runs/{node_run_id}")
    node_run = mlflow.get_run(node_run_id)
    assert node_run.info.status == "FINISHED"
    page.click("[data-link='mlflow']")
    page.wait_for_url(re.compile(rf"/#/experiments/\d+/runs/{run['mlflow_run_id']}"))
    dag_run = mlflow.get_run(run["mlflow_run_id"])
    page.wait_for_selector(f"text={dag_run.info.run_name}", timeout=30_000)

    # And the run is listed, filterable by its template and status.
    page.goto(stack.mlflow + f"/parallels/#/runs?template={DAG}&status=succeeded")
    page.wait_for_selector(f"tr[data-run='{run_id}']")


def test_cancel_and_retry_from_the_run_page(page, stack: Stack, repo, tmp_path):
    http = api(stack)
    spec = {
        "name": "ui-sleepy",
        "nodes": [{"id": "nap", "project": {"uri": str(repo)}, "entry_point": "sleep",
                   "parameters": {"seconds": 300, "pids": str(tmp_path)}}],
    }  # fmt: skip
    assert http.post("/templates", json={"spec": spec}).status_code == 201
    run_id = http.post("/runs", json={"template": "ui-sleepy"}).json()["id"]
    page.goto(stack.mlflow + f"/parallels/#/runs/{run_id}")
    page.wait_for_selector(".node[data-node='nap'][data-state='running']", timeout=60_000)
    pid_file = tmp_path / "0.pid"
    deadline = time.monotonic() + 60
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    pid = int(pid_file.read_text())

    page.click("#cancel-run")
    page.wait_for_selector(".run-head .badge[data-status='cancelled']", timeout=60_000)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists(), "the step process outlived the cancel"

    page.click("#retry-run")
    page.wait_for_url(lambda url: "#/runs/" in url and run_id not in url.split("#/runs/")[1])
    retry_id = page.url.split("#/runs/")[1]
    page.wait_for_selector(f"a:text-is('retry of {run_id}')")
    assert http.get(f"/runs/{retry_id}").json()["retry_of"] == run_id
    assert http.post(f"/runs/{retry_id}/cancel").status_code == 202
    page.wait_for_selector(".run-head .badge[data-status='cancelled']", timeout=60_000)
