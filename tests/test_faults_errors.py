"""Issue 38, one error style: generate.py, export.py and demo.py answer bad arguments and
bad model folders with one line and exit 2, as train.py and evaluate.py do; n has an
upper bound; a mistyped local folder is never sent to the Hub; printed commands paste."""
from __future__ import annotations

import json
import shlex

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from t2i import pretrained
from t2i.errors import ConfigError, ModelFolderError, user_errors
from t2i.generate import generate_from_checkpoint
from t2i.pretrained import ExportedGenerator, looks_local
from t2i.run_folder import resume_command
from t2i.value_checks import MAX_IMAGES_PER_CAPTION, check_value
from tests.conftest import compose_config
from tests.faults_common import run_cli


@pytest.mark.parametrize("override, named", [("n=100000", "n=100000"), ("n=0", "n=0"), ("seed=1e23", "seed=1e+23"),
                                             ("seed=-1", "seed=-1")])
def test_generate_refuses_absurd_numbers_before_loading_anything(tmp_path, capsys, override, named):
    cfg = compose_config("generate", ["ckpt_path=/nonexistent.ckpt", "text=a caption", override], tmp_path / "out")
    with pytest.raises(SystemExit) as exit_, user_errors():
        generate_from_checkpoint(cfg)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and err.startswith(f"error: {named} is not allowed")
    assert not (tmp_path / "out").exists()


def test_n_has_a_documented_bound():
    check_value("n", MAX_IMAGES_PER_CAPTION)
    with pytest.raises(ConfigError, match=f"from 1 to {MAX_IMAGES_PER_CAPTION}"):
        check_value("n", MAX_IMAGES_PER_CAPTION + 1)
    assert f"n: 8             # images per caption, 1 to {MAX_IMAGES_PER_CAPTION}" in open("conf/generate.yaml").read()


@pytest.mark.parametrize("name", ["./my_modle", "~/models/mine", "/tmp/no/such/model", "runs/2024/model",
                                  "C:\\models\\mine"])
def test_a_mistyped_local_folder_is_not_sent_to_the_hub(name, monkeypatch):
    monkeypatch.setattr(pretrained, "download", lambda *a: pytest.fail("sent to the Hub"), raising=True)
    assert looks_local(name)
    monkeypatch.undo()
    with pytest.raises(ModelFolderError, match="no such folder \\(a path, so not looked up on the Hub\\)"):
        ExportedGenerator.from_pretrained(name)


def test_hub_ids_still_look_like_hub_ids():
    assert not looks_local("someone/t2i-flowers") and not looks_local("t2i-flowers")


def test_a_folder_without_config_is_one_line(tmp_path, capsys):
    (tmp_path / "model").mkdir()
    with pytest.raises(SystemExit) as exit_, user_errors():
        ExportedGenerator.from_pretrained(tmp_path / "model")
    assert exit_.value.code == 2 and "not an exported t2i generator" in capsys.readouterr().err


def test_generate_cli_mistyped_model_folder_exit_2_one_line(tmp_path):
    done = run_cli("generate.py", "model=./no_such_model_folder", "text=a red flower",
                   f"hydra.run.dir={tmp_path / 'out'}")
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr
    assert "no_such_model_folder: no such folder" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()  # not even the folder and log file Hydra made for it


def test_the_printed_resume_command_pastes_with_a_space_in_the_folder(tmp_path):
    folder = tmp_path / "my runs" / "it's, (a) run"
    command = resume_command(folder)
    args = shlex.split(command)[2:]  # what the shell hands train.py
    parsed = {o.key_or_group: o.value() for o in OverridesParser.create().parse_overrides(args)}
    assert parsed["hydra.run.dir"] == str(folder) and parsed["ckpt_path"] == "last"
    plain = resume_command(tmp_path / "plain_run")  # an ordinary path stays readable, unquoted
    assert plain.endswith(f"ckpt_path=last hydra.run.dir={tmp_path / 'plain_run'}")


def test_a_config_that_does_not_fit_the_weights_is_refused_before_allocating(finished_run, tmp_path):
    """ngf=200000 typed into an exported config.json: refused from the file's header, with
    the tensor named, before a net of that width is built."""
    folder = pretrained.export(finished_run / "checkpoints" / "last.ckpt", tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    config["model"]["ngf"] = 200000
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFolderError, match="does not match model.safetensors"):
        ExportedGenerator.from_pretrained(folder)
