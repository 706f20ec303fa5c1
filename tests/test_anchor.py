"""Evidence an auditor accepts without trusting the operator: the newest run anchored (an SSH
signature, or the manifest's sha256 from the change ticket), pages that stand alone and an
index, one chain per database, JUnit XML and the CI context for release pipelines. The pages and
the JUnit report of a run are checked once per app (Data Hub, the projects app), each by its
spec; signatures, digests, chains and the CI context read no spec and are checked on Data Hub."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import uuid
import xml.etree.ElementTree as ET

import pytest
from conftest import SMALL, cli, run_runbook

from tenancy_runbook import archive, demo, pages

needs_ssh_keygen = pytest.mark.skipif(subprocess.run(["which", "ssh-keygen"], capture_output=True).returncode,
                                      reason="ssh-keygen (OpenSSH's client) is not installed: .ci/run installs it")


def manifest(run_dir) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def new_key(path, principal: str):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", principal, "-f", str(path)], check=True)
    return path, f"{principal} {path.with_suffix('.pub').read_text().strip()}\n"


@needs_ssh_keygen
def test_a_signed_run_verifies_and_any_edit_or_foreign_key_fails(datahub, tmp_path):
    # on Data Hub only: a signature covers the manifest's bytes, whatever the spec
    url = datahub()
    key, allowed_line = new_key(tmp_path / "release_key", "release@ci")
    other, other_line = new_key(tmp_path / "other_key", "someone@laptop")
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(allowed_line)
    run_dir = tmp_path / "outputs" / "run1"

    done = run_runbook(url, run_dir, "--to", "00_preflight", "--sign-key", key)

    assert done.returncode == 0, done.stdout + done.stderr
    assert (run_dir / "manifest.json.sig").is_file()
    assert manifest(run_dir)["signature"]["namespace"] == "tenancy-runbook"
    ok = cli("verify", run_dir, "--allowed-signers", allowed)
    assert ok.returncode == 0 and "signed by release@ci" in ok.stdout and ok.stdout.strip().endswith("intact"), ok.stdout

    # a key not in allowed_signers
    (tmp_path / "others").write_text(other_line)
    foreign = cli("verify", run_dir, "--allowed-signers", tmp_path / "others")
    assert foreign.returncode == 1 and "made by a key not in" in foreign.stdout, foreign.stdout

    # the manifest edited (result, operator), even with its sha256 and index made to match
    for field, value in (("result", "failed"), ("operator", {"user": "someone else", "host": "x"})):
        edited = manifest(run_dir)
        edited[field] = value
        original = (run_dir / "manifest.json").read_bytes()
        (run_dir / "manifest.json").write_text(json.dumps(edited, indent=2))
        changed = cli("verify", run_dir, "--allowed-signers", allowed)
        assert changed.returncode == 1, changed.stdout
        assert "manifest.json was changed after it was signed" in changed.stdout, changed.stdout
        (run_dir / "manifest.json").write_bytes(original)
    assert cli("verify", run_dir, "--allowed-signers", allowed).returncode == 0

    # the signature removed
    (run_dir / "manifest.json.sig").unlink()
    gone = cli("verify", run_dir, "--allowed-signers", allowed)
    assert gone.returncode == 1 and "manifest.json.sig is missing" in gone.stdout


def test_the_run_prints_the_manifests_sha256_last_and_verify_checks_it(datahub, tmp_path):
    # on Data Hub only: the digest is of the manifest's bytes, whatever the spec
    url = datahub()
    run_dir = tmp_path / "outputs" / "run1"
    done = run_runbook(url, run_dir, "--to", "00_preflight")
    assert done.returncode == 0, done.stdout + done.stderr
    digest = hashlib.sha256((run_dir / "manifest.json").read_bytes()).hexdigest()
    assert done.stdout.strip().splitlines()[-1] == f"manifest sha256: {digest}"

    right = cli("verify", run_dir, "--expect-sha256", digest)
    assert right.returncode == 0 and "as expected" in right.stdout
    wrong = cli("verify", run_dir, "--expect-sha256", "0" * 64)
    assert wrong.returncode == 1 and f"sha256: manifest.json is {digest}, not the {'0' * 64} expected" in wrong.stdout

    # the newest run's result changed from failed to passed: only the anchor can tell
    edited = manifest(run_dir)
    edited["result"] = "failed"
    (run_dir / "manifest.json").write_text(json.dumps(edited, indent=2))
    assert cli("verify", run_dir, "--expect-sha256", digest).returncode == 1


def test_each_page_stands_alone_and_the_index_links_every_stage(app, seeded, tmp_path):
    url = seeded()
    run_dir = tmp_path / "outputs" / "20990101T000000Z-aaaaaa"
    assert run_runbook(url, run_dir, "--to", "20_backfill").returncode == 0
    m = manifest(run_dir)

    for stage in m["stages"]:
        page = (run_dir / stage["html"]).read_text()
        assert f"<title>{stage['name']} · {run_dir.name}</title>" in page
        header = page[page.index('<div class="run-header">'):][:2000]
        for words in (run_dir.name, m["database"]["dsn"], m["operator"]["host"], stage["started_at"], "ok"):
            assert words in header, (words, header)

    index = (run_dir / "index.html").read_text()
    links = re.findall(r"href='([^']+\.html)'", index)
    assert links == [s["html"] for s in m["stages"]] and all((run_dir / link).is_file() for link in links)
    digest = hashlib.sha256((run_dir / "manifest.json").read_bytes()).hexdigest()
    for words in (digest, "not signed", m["runbook"]["name"], "passed", "on_collision", "Stages", "gates"):
        assert words in index, words
    assert cli("verify", run_dir).returncode == 0

    # the index is rendered from the manifest: an edited index shows
    (run_dir / "index.html").write_text(index.replace(">passed<", ">failed<"))
    changed = cli("verify", run_dir)
    assert changed.returncode == 1 and "changed: index.html" in changed.stdout
    (run_dir / "index.html").write_text(index)
    assert m["index"] == {"file": "index.html", "format": pages.FORMAT}


def test_two_databases_in_one_outputs_folder_form_two_chains(datahub, server_url, tmp_path):
    # on Data Hub only: a chain follows the database a run was of, not its spec
    first_db = datahub()
    name = f"trb_{uuid.uuid4().hex[:12]}"
    second_db = demo.create_database(server_url, name)
    demo.load_schema(second_db)
    demo.seed(second_db, **SMALL)
    try:
        two_chains(first_db, second_db, tmp_path)
    finally:
        demo.drop_database(server_url, name)


def two_chains(first_db, second_db, tmp_path):
    outputs = tmp_path / "outputs"
    a1, b1 = outputs / "20990101T000000Z-a1", outputs / "20990101T000001Z-b1"
    a2 = outputs / "nested" / "20990101T000002Z-a2"          # anywhere under outputs/
    assert run_runbook(first_db, a1, "--to", "00_preflight").returncode == 0
    assert run_runbook(second_db, b1, "--to", "00_preflight").returncode == 0
    assert run_runbook(first_db, a2, "--to", "00_preflight").returncode == 0

    assert manifest(b1)["previous_manifest"] is None                  # another database: a chain of its own
    link = manifest(a2)["previous_manifest"]
    assert link["run_id"] == a1.name and link["sha256"] == archive.sha256(a1 / "manifest.json")
    assert (a2 / link["path"]).resolve() == (a1 / "manifest.json").resolve()
    assert cli("verify", a2).returncode == 0 and cli("verify", a1).returncode == 0

    edited = manifest(a1)
    edited["result"] = "failed"
    (a1 / "manifest.json").write_text(json.dumps(edited))
    assert f"chain: the previous run's manifest {a1.name}/manifest.json was changed" in cli("verify", a2).stdout
    assert f"was changed after run {a2.name} recorded it" in cli("verify", a1).stdout
    assert cli("verify", b1).returncode == 0


def test_junit_xml_has_a_testcase_per_stage_and_gate_and_the_failure(app, seeded, tmp_path):
    url = seeded(shared_pairs=3, collisions=1)
    report = tmp_path / "reports" / "runbook.xml"
    done = run_runbook(url, tmp_path / "run", "--junit-xml", report)
    assert done.returncode == 1

    suite = ET.parse(report).getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["00_preflight", "10_add_workspace_columns", "20_backfill",
                                              "30_check_backfill", "40_enforce_not_null", "50_post_verify"]
    [failed] = [c for c in cases if c.find("failure") is not None]
    assert failed.get("name") == "00_preflight" and failed.find("failure").get("type") == "gate failed"
    message = failed.find("failure").text
    assert message.startswith("gate failed: assert not problems") and "collision" in message, message
    assert "gate 3 failed: assert not problems" in failed.find("system-out").text
    assert all(c.find("skipped") is not None for c in cases[1:])
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("6", "1", "5")


def test_the_manifest_records_the_ci_context(datahub, tmp_path):
    # on Data Hub only: the CI context comes from the environment, not the spec
    url = datahub()
    env = {"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/datahub",
           "GITHUB_RUN_ID": "4242", "GITHUB_JOB": "migrate", "GITHUB_SHA": "abc123", "GITHUB_ACTOR": "release-bot"}
    run_dir = tmp_path / "run"
    assert cli("run", "runbooks/datahub-tenancy.yaml", "--run-dir", run_dir, "--to", "00_preflight",
               url=url, env=env).returncode == 0
    assert manifest(run_dir)["ci"] == {"provider": "GitHub Actions", "run_url": "https://github.com/acme/datahub/actions/runs/4242",
                                       "job_id": "migrate", "commit": "abc123", "actor": "release-bot"}
    assert archive.ci_context({"GITLAB_CI": "true", "CI_JOB_URL": "https://gitlab.example/j/7", "CI_JOB_ID": "7",
                               "CI_COMMIT_SHA": "def", "GITLAB_USER_LOGIN": "ana"}) == {
        "provider": "GitLab CI", "run_url": "https://gitlab.example/j/7", "job_id": "7", "commit": "def", "actor": "ana"}
    assert archive.ci_context({"JENKINS_URL": "https://ci/", "BUILD_URL": "https://ci/job/m/3/", "BUILD_TAG": "jenkins-m-3",
                               "GIT_COMMIT": "0f0"})["run_url"] == "https://ci/job/m/3/"
    assert archive.ci_context({}) is None
