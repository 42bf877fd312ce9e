"""Publishing: dry-run folder, model card metadata, mocked Hub upload, token handling."""

import json
import os
import subprocess
import sys
from unittest import mock

import pytest

from train.publish.hub import PublishError, build_folder, main, publish
from train.run import main as train_main


@pytest.fixture(scope="module")
def finished_run(tiny_backbone, tmp_path_factory):
    from synthetic_data import SCHEMA_PATH, synthetic_records, write_jsonl
    from train.config import load_config

    tmp = tmp_path_factory.mktemp("publish")
    data = write_jsonl(tmp / "d.jsonl", synthetic_records())
    cfg = load_config(None, [f"data.files=[{data}]", f"data.schema={SCHEMA_PATH}", f"model.backbone={tiny_backbone}",
                             f"output_dir={tmp / 'run'}", "data.val_size=0.2", "data.test_size=0.2", "train.epochs=1",
                             "model.train_layers=null",
                             "train.precision=fp32", "eval.baselines=[majority]"])
    return train_main(cfg)


def test_dry_run_folder_is_exactly_the_publishable_files(finished_run, tmp_path):
    out = build_folder(finished_run, tmp_path / "upload", "org/name", dtype="fp16")
    names = set(os.listdir(out))
    assert {"README.md", "config.json", "model.safetensors", "tokenizer.json", "report.json", "report.md",
            "stance_confusion.png"} <= names
    assert not {"splits.json", "metrics.json"} & names
    assert not any(n.endswith((".bin", ".pt", ".pkl", ".jsonl")) for n in names)
    from safetensors import safe_open

    with safe_open(out / "model.safetensors", "pt") as f:
        assert all(str(f.get_tensor(k).dtype) in ("torch.float16", "torch.int64") for k in f.keys())


def test_card_metadata_parses(finished_run, tmp_path):
    from huggingface_hub import ModelCard

    out = build_folder(finished_run, tmp_path / "upload", "org/name")
    card = ModelCard.load(out / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "transformers" and data["pipeline_tag"] == "text-classification"
    assert data["license"] == "mit"
    assert set(data["language"]) == {"en", "ru", "de"}
    assert data["model-index"][0]["results"][0]["metrics"][0]["name"] == "issue macro-F1"
    for text in ("## Labels", "`china_alignment`", "## Intended use and limitations", "Not for decisions about people",
                 "pipeline(\"text-classification\"", "from infer import classify", "| majority |"):
        assert text in card.text


def test_folder_loads_without_the_project(finished_run, tmp_path):
    out = build_folder(finished_run, tmp_path / "upload", "org/name")
    code = (
        "import sys; from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline\n"
        f"p = {str(out)!r}\n"
        "assert not any(m.startswith(('train', 'infer')) for m in sys.modules)\n"
        "AutoModelForSequenceClassification.from_pretrained(p); AutoTokenizer.from_pretrained(p)\n"
        "out = pipeline('text-classification', model=p, top_k=None)('NATO drills')[0]\n"
        "print(len(out))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "8"


def test_upload_with_mocked_api(finished_run, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_value")
    api = mock.MagicMock()
    uploaded = {}

    def upload_folder(folder_path, **kw):
        uploaded["files"] = sorted(os.listdir(folder_path))
        uploaded.update(kw)
        return mock.Mock(commit_url="https://example.invalid/commit/1")

    api.upload_folder.side_effect = upload_folder
    url = publish(finished_run, "org/name", private=True, revision="v1", api=api)
    assert url.endswith("/commit/1")
    api.create_repo.assert_called_once_with(repo_id="org/name", private=True, exist_ok=True, repo_type="model")
    api.create_branch.assert_called_once_with(repo_id="org/name", branch="v1", exist_ok=True)
    assert uploaded["revision"] == "v1" and "issue macro-F1" in uploaded["commit_message"]
    expected = sorted(os.listdir(build_folder(finished_run, tmp_path / "dry", "org/name")))
    assert uploaded["files"] == expected


def test_missing_token_fails_before_any_call(finished_run, monkeypatch, caplog):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    api = mock.MagicMock()
    with pytest.raises(PublishError, match="No Hugging Face token"):
        publish(finished_run, "org/name", api=api)
    assert not api.method_calls
    assert main(["--model", str(finished_run), "--repo-id", "org/name"]) == 2


def test_token_never_logged(finished_run, monkeypatch, caplog, tmp_path):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_value")
    api = mock.MagicMock()
    api.upload_folder.return_value = mock.Mock(commit_url="u")
    with caplog.at_level("DEBUG"):
        publish(finished_run, "org/name", api=api)
    assert "hf_secret_token_value" not in caplog.text
    assert not any("hf_secret_token_value" in p.read_text(errors="ignore")
                   for p in finished_run.iterdir() if p.is_file() and p.suffix in (".json", ".md", ".yaml"))


def test_run_is_a_deprecated_alias_of_model(finished_run, tmp_path, caplog):
    assert main(["--run", str(finished_run), "--card", str(tmp_path / "card.md")]) == 0
    assert "--run is deprecated: use --model" in caplog.text and (tmp_path / "card.md").is_file()
    with pytest.raises(SystemExit) as exc:
        main(["--run", str(finished_run), "--model", str(tmp_path), "--card", str(tmp_path / "c.md")])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["--repo-id", "org/name"])  # no run at all
    assert exc.value.code == 2


def test_card_only_and_errors(finished_run, tmp_path):
    assert main(["--model", str(finished_run), "--card", str(tmp_path / "card.md")]) == 0
    assert "## Evaluation" in (tmp_path / "card.md").read_text()
    assert main(["--model", str(tmp_path), "--dry-run", "--out", str(tmp_path / "x")]) == 2


@pytest.mark.parametrize("flags, private", [([], True), (["--private"], True), (["--public"], False)])
def test_new_repositories_are_private_unless_public_is_asked(finished_run, monkeypatch, flags, private):
    from train.publish import hub as publish_module

    seen = {}
    monkeypatch.setattr(publish_module, "publish", lambda run, repo, **kw: seen.update(kw) or "url")
    assert main(["--model", str(finished_run), "--repo-id", "org/name", *flags]) == 0
    assert seen["private"] is private


def test_private_is_the_default_of_the_function_and_the_config():
    import inspect

    from train.config import HubConfig

    assert inspect.signature(publish).parameters["private"].default is True
    assert HubConfig().private is True


def test_card_counts_come_from_the_runs_data_summary(finished_run, tmp_path, caplog):
    import shutil

    from train.publish.model_card import build_card

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    summary = json.loads((run / "data_summary.json").read_text())
    assert summary["all"]["n"] == sum(s["n"] for s in summary["splits"].values())
    summary["all"]["n"] = 999  # what the run was trained on, whatever today's files hold
    (run / "data_summary.json").write_text(json.dumps(summary))
    assert "999 labeled paragraphs" in build_card(run).text
    (run / "data_summary.json").unlink()  # a run made before the file existed: recount, with a warning
    with caplog.at_level("WARNING"):
        text = build_card(run).text
    assert f"{summary['splits']['train']['n'] + summary['splits']['validation']['n'] + summary['splits']['test']['n']} labeled paragraphs" in text
    assert "no data_summary.json" in caplog.text


def test_base_model_of_a_bundled_backbone_is_its_hub_original():
    from train.backbones.bundled import BUNDLED
    from train.publish.model_card import base_model

    assert base_model("bundled:multilingual-e5-small") == BUNDLED["multilingual-e5-small"].hub_id
    assert base_model("xlm-roberta-base") == "xlm-roberta-base"


@pytest.mark.parametrize("failing, step", [("create_repo", "create repo org/name"), ("upload_folder", "upload to org/name")])
def test_hub_failure_is_one_line_naming_the_step_without_the_token(finished_run, monkeypatch, caplog, capsys,
                                                                   failing, step):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_value")
    api = mock.MagicMock()
    getattr(api, failing).side_effect = ConnectionError(
        "Max retries exceeded (token hf_secret_token_value)\nmore details")
    monkeypatch.setattr("huggingface_hub.HfApi", lambda token=None: api)
    assert main(["--model", str(finished_run), "--repo-id", "org/name"]) == 1  # a failure, not bad usage
    messages = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert messages == [f"{step} failed: ConnectionError: Max retries exceeded (token ***)"]
    out = capsys.readouterr()
    assert "hf_secret_token_value" not in caplog.text + out.out + out.err
    assert "Traceback" not in out.err


def test_published_folder_and_card_hold_no_absolute_path_of_this_machine(finished_run, tmp_path):
    out = build_folder(finished_run, tmp_path / "upload")  # no --repo-id: the card's example is relative
    for name in ("train_config.yaml", "README.md"):
        text = (out / name).read_text(encoding="utf-8")
        assert str(finished_run) not in text and str(tmp_path) not in text and "/tmp/" not in text, name
    assert 'model="./run"' in (out / "README.md").read_text(encoding="utf-8")
    from train.config import load_config

    assert load_config(out / "train_config.yaml").output_dir is None  # still a valid config
