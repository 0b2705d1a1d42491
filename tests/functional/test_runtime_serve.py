"""`python -m local.runtime serve` as an outside client sees it: everything needed is on the READY line, and the
app is driven over HTTP alone (a token for a role, a route, the topic and the topology's subscriptions)."""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).parents[2]


def _request(
    url: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read() or b"{}")


def test_an_outside_client_drives_the_served_app_over_http(storage: str, hub: str, tmp_path: Path) -> None:
    topology = yaml.safe_load((ROOT / "local/demo/topology.yaml").read_text(encoding="utf-8"))
    topology["events"]["subscriptions"] = [{"function": "autoscale_events", "event_types": ["Tandem.Failover.Started"]}]
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(topology), encoding="utf-8")
    env = dict(os.environ, AzureWebJobsStorage=storage, PYTHONPATH=str(ROOT))
    # On the wall clock the timers would call the demo topology's ANQ addresses (10.x, not loopback) and no twin
    # answers for them here: the schedules are set to a day that does not come during the test.
    never = [f"--setting={name}=0 0 0 1 1 *" for name in ("AUTOSCALE_SCHEDULE", "SNAPSHOT_SCHEDULE", "ANQ_WATCH_SCHEDULE")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "local.runtime", "serve", "--hub", hub, "--setting", f"TANDEM_TOPOLOGY_PATH={path}", *never],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    logged: list[str] = []
    assert proc.stdout is not None and proc.stderr is not None
    reader = threading.Thread(target=lambda: logged.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    try:
        line = proc.stdout.readline()
        ready = dict(re.findall(r"(\w+)=(\S+)", line))
        assert line.startswith("READY ") and {
            "base_url",
            "master_key",
            "system_key",
            "topic_url",
            "topic_key",
            "topic_ca",
            "token_url",
        } <= set(ready), line
        master = {"x-functions-key": ready["master_key"]}
        assert _request(ready["token_url"] + "?roles=Tandem.Failover.Operator")[0] == 401  # no key, no token
        status, token = _request(ready["token_url"] + "?roles=Tandem.Failover.Operator&name=probe@contoso.com", headers=master)
        assert status == 200 and token["token_type"] == "Bearer"
        signed_in = {**master, "Authorization": f"Bearer {token['access_token']}", "Content-Type": "application/json"}
        status, answer = _request(ready["base_url"] + "/api/failover", method="POST", body=b'{"source": "east"}', headers=signed_in)
        assert status == 400 and answer["title"] == "Invalid body"  # signed in as an Operator, and refused on the body
        assert _request(ready["base_url"] + "/api/failover", method="POST", body=b"{}", headers=master)[0] == 401
        durable = f"{ready['base_url']}/runtime/webhooks/durabletask/instances?code={ready['system_key']}"
        assert _request(durable)[0] == 200  # the system key opens the extension's API, as on the host
        context = ssl.create_default_context(cafile=ready["topic_ca"])
        event = {
            "specversion": "1.0",
            "id": "probe-1",
            "source": "/probe",
            "type": "Tandem.Failover.Started",
            "data": {"source": "east", "target": "central", "sessions": "many"},
        }
        assert (
            _request(
                ready["topic_url"],
                method="POST",
                body=json.dumps([event]).encode(),
                context=context,
                headers={"aeg-sas-key": ready["topic_key"], "Content-Type": "application/cloudevents-batch+json"},
            )[0]
            == 200
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("autoscale.event_rejected" in x for x in logged):
            time.sleep(0.2)
        rejected = [x for x in logged if "autoscale.event_rejected" in x]
        assert rejected and "probe-1" in rejected[0] and "sessions" in rejected[0]  # delivered by the subscription
        assert not any(ready[k] in x for x in logged for k in ("master_key", "system_key", "topic_key"))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        reader.join(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
