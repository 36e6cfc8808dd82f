"""The `hands` command: verbs and their help, lazy imports, the installed console script, config validation
before anything is written, and a fourth method added through the registry alone."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hands.cli import SUB_VERBS, VERBS, main

ROOT = Path(__file__).resolve().parents[1]


def help_of(argv, capsys) -> str:
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--help"])
    assert stop.value.code in (0, None)
    return capsys.readouterr().out


def test_top_level_help_lists_every_verb_without_heavy_imports(tmp_path):
    code = ("import sys; from hands.cli import main; main(['--help']); "
            "heavy = [m for m in ('torch', 'pytorch_lightning', 'diffusers', 'transformers', 'cv2') if m in sys.modules]; "
            "assert not heavy, heavy")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for verb in VERBS:
        assert f"\n  {verb} " in result.stdout
    for sub in SUB_VERBS["avatar"]:
        assert f"\n    {sub} " in result.stdout


@pytest.mark.parametrize("argv", [[v] for v in VERBS if v not in SUB_VERBS] +
                         [[v, s] for v, subs in SUB_VERBS.items() for s in subs])
def test_every_verb_has_help(argv, capsys):
    assert "usage: hands" in help_of(argv, capsys)


def test_help_comes_from_the_config_docstrings(capsys):
    text = help_of(["reconstruct"], capsys)
    assert "centermap_conf_thresh" in text and "{pnp,closed_form}" in text  # field docstring, Literal choices
    text = help_of(["fit"], capsys)
    assert "--chunk" in text and "one shape per hand" in text
    with pytest.raises(SystemExit):
        main(["train", "--keys", "attentionhand"])
    keys = capsys.readouterr().out
    assert "attentionhand.text_attention.mode: {paper,fast,off} = 'fast'" in keys


def test_the_installed_console_script_runs_outside_the_checkout(tmp_path):
    script = shutil.which("hands", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the package is not installed in this environment (`make setup` runs pip install -e .)")
    result = subprocess.run([script, "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "reconstruct" in result.stdout
    result = subprocess.run([script, "reconstruct", "--inputs", str(tmp_path / "missing.jpg"), "--out", str(tmp_path / "o"),
                             "--checkpoint", str(tmp_path / "wild.pkl")], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0 and "wild.pkl" in result.stderr.strip().splitlines()[-1]


def test_unknown_verbs_and_sub_verbs_are_one_line():
    with pytest.raises(SystemExit, match="unknown verb 'recon'"):
        main(["recon"])
    with pytest.raises(SystemExit, match="unknown 'animat'"):
        main(["avatar", "animat"])


def test_a_bad_choice_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(SystemExit):
        main(["train", "--config", str(ROOT / "configs/attentionhand/train_fast.yaml"), f"trainer.output={out}",
              "attentionhand.text_attention.mode=papr"])
    assert not out.exists()
    with pytest.raises(SystemExit):  # a section of another method is an unknown key
        main(["train", "--config", str(ROOT / "configs/acr/synthetic.yaml"), f"trainer.output={out}", "ohta.seed=1"])
    with pytest.raises(SystemExit):
        main(["train", "--config", str(ROOT / "configs/acr/synthetic.yaml"), f"trainer.output={out}", "method=nope"])
    assert not out.exists()


# --- a fourth method, defined in tests/toy_method.py and registered by the `toy_method` fixture only ---------

def test_a_fourth_method_trains_through_the_registry(toy_method, tmp_path, capsys):
    config = tmp_path / "toy.yaml"
    config.write_text(f"method: toyline\ntrainer:\n  output: {tmp_path / 'run'}\n  accelerator: cpu\n  max_steps: 1\n"
                      "toyline:\n  lr: 0.05\n")
    out = main(["train", "--config", str(config)])
    assert (out / "checkpoints" / "last.ckpt").is_file() and (out / "config.yaml").is_file()
    saved = (out / "config.yaml").read_text()
    assert "toyline:" in saved and "lr: 0.05" in saved and "acr" not in saved  # its section only
    trained = torch.load(out / "line.pt", weights_only=True)
    state = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    assert state["global_step"] == 1
    torch.testing.assert_close(state["state_dict"]["line.weight"], trained["weight"])
    with pytest.raises(SystemExit):
        main(["train", "--keys", "toyline"])
    assert "toyline.lr: float = 0.1  Learning rate of plain SGD." in capsys.readouterr().out


def test_the_trainer_and_scripts_name_no_method():
    names = {"acr", "attentionhand", "ohta"}
    tree = ast.parse((ROOT / "hands" / "cli" / "train.py").read_text())
    named = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and node.value in names}
    named |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr in names}
    named |= {a.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom)) for a in node.names
              if any(part in names for part in a.name.split("."))}
    named |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
              and any(part in names for part in node.module.split("."))}
    assert not named  # no per-method branch: the registry says what to build
    assert not [p.name for p in (ROOT / "scripts").glob("*.py") if "sys.path.insert" in p.read_text()]
    assert os.path.isfile(ROOT / "train.py") and "run_script" in (ROOT / "train.py").read_text()


def test_every_built_in_method_resolves():
    from dataclasses import fields

    from hands.registry import get_method, load_object, method_names

    assert {"acr", "attentionhand", "ohta"} <= set(method_names())
    for name in ("acr", "attentionhand", "ohta"):
        spec = get_method(name)
        section = {f.name for f in fields(load_object(spec.train_config))}
        assert {"seed", "batch_size", "num_workers"} <= section, name
        for reference in (spec.module, spec.callbacks, spec.export, spec.predictor):
            assert reference is None or callable(load_object(reference)), (name, reference)
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        get_method("nope")
