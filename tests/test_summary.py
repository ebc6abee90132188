"""python -m reference summarize: grouping by everything but the seed, the paper's statistics, the files."""
import csv
import json
import os
import shutil

import numpy as np
import pytest

from conftest import ROOT
from reference.app.cli import main
from reference.app.summary import read_run, summarize


def _run(root, name, config, accs, seed, options=None):
    folder = root / name
    folder.mkdir()
    shutil.copy(os.path.join(ROOT, "configs", config), folder / "config.yaml")
    with open(folder / "metrics.csv", "w") as fh:
        fh.write("epoch,train_loss,train_acc,test_loss,test_acc,seconds,samples_per_s\n")
        for e, a in enumerate(accs, 1):
            fh.write(f"{e},0.1,0.9,0.1,{a},1,1\n")
    (folder / "settings.json").write_text(json.dumps({"seed": seed, "net_options": options or {}}))


def test_groups_by_all_but_the_seed_and_gives_mean_std_best(tmp_path):
    _run(tmp_path, "mlp_a", "FashionMNIST_400_400.yaml", [0.80, 0.90, 0.85], 3)
    _run(tmp_path, "mlp_b", "FashionMNIST_400_400.yaml", [0.70, 0.88, 0.87], 4)
    _run(tmp_path, "mlp_single", "FashionMNIST_400_400.yaml", [0.91, 0.90], 3, {"target_filter": "single"})
    _run(tmp_path, "mlp_2020_seed7", os.path.join("paper2020", "FashionMNIST_400_400.yaml"), [0.92], None,
         {"variant": "paper2020"})
    (tmp_path / "not_a_run").mkdir()
    rows = {r["options"] + r["config"][:20]: r for r in summarize(str(tmp_path))}
    assert len(rows) == 3
    plain = next(r for r in rows.values() if r["options"] == "defaults")
    # best epochs 90 and 88: mean 89, sample std sqrt(2) = 1.414; last epochs 85 and 87
    assert (plain["runs"], plain["seeds"], plain["best_mean"], plain["best_std"], plain["best_max"]) == (
        2, "3 4", 89.0, 1.414, 90.0)
    assert plain["last_mean"] == 86.0
    old = next(r for r in rows.values() if r["options"] == "variant=paper2020")
    assert old["seeds"] == "7" and "tau_s 2" in old["config"]  # seed from the folder name
    with open(tmp_path / "summary.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 3
    md = (tmp_path / "summary.md").read_text()
    assert "89.00% ± 1.41" in md and "| 90.00% |" in md


def test_planned_epochs_come_from_the_checkpoint(tmp_path):
    """A run's planned epochs (figure 7's "so far: N of M epochs") are its checkpoint's ``epochs``, in
    either checkpoint format; a folder without a checkpoint planned what it ran."""
    import numpy as np

    _run(tmp_path, "r", "FashionMNIST_400_400.yaml", [0.80, 0.90, 0.85], 3)
    folder = str(tmp_path / "r")
    assert read_run(folder).planned_epochs == 3
    assert read_run(folder).accuracies == (0.80, 0.90, 0.85)  # every epoch's, for figure 7's curves
    meta = {"settings": {"seed": 3, "epochs": 100, "net_options": {}}}
    np.savez(tmp_path / "r" / "checkpoint.npz", meta_json=np.array(json.dumps(meta)))
    assert (read_run(folder).planned_epochs, read_run(folder).epochs) == (100, 3)
    np.savez(tmp_path / "r" / "checkpoint.npz", meta_json=np.array(json.dumps({"seed": 3, "epochs": 200})))
    assert read_run(folder).planned_epochs == 200


def test_cli(tmp_path, capsys):
    _run(tmp_path, "one", "MNIST_CNN.yaml", [0.99], 3)
    assert main(["summarize", str(tmp_path)]) == 0
    assert "99.00%" in capsys.readouterr().out
    assert main(["summarize", str(tmp_path / "one" / "metrics.csv")]) == 2
    capsys.readouterr()
    before = sorted(os.listdir(tmp_path / "one"))
    assert main(["summarize", str(tmp_path / "one")]) == 2  # sixth pass: "no folder holds a metrics.csv"
    assert "is a run folder itself" in (err := capsys.readouterr().err) and "summarize " in err
    assert sorted(os.listdir(tmp_path / "one")) == before
    aside = tmp_path / "aside"  # sixth pass F3: a folder whose run an interrupted --overwrite set aside
    (aside / ".replaced").mkdir(parents=True)
    assert main(["summarize", str(aside)]) == 2 and "is a run folder itself" in capsys.readouterr().err
    assert os.listdir(aside) == [".replaced"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["summarize", str(empty)]) == 2
    assert "no run to summarize" in (err := capsys.readouterr().err) and "no folder holds a metrics.csv" in err
    assert os.listdir(empty) == []


def test_summarize_rewrites_the_readme_block_between_its_markers(tmp_path):
    from reference.app.summary import BLOCK_END, BLOCK_START, embed, embedded

    _run(tmp_path, "one", "MNIST_CNN.yaml", [0.98, 0.99], 3)
    (tmp_path / "README.md").write_text(f"# Runs\n\ntext before\n\n{BLOCK_START}\nan old table\n{BLOCK_END}\n\ntext after\n")
    summarize(str(tmp_path))
    text = (tmp_path / "README.md").read_text()
    table = (tmp_path / "summary.md").read_text()
    assert text == f"# Runs\n\ntext before\n\n{BLOCK_START}\n{table}{BLOCK_END}\n\ntext after\n"
    assert embedded(text) == table and "99.00%" in table
    assert embed("no markers here\n", table) == "no markers here\n" and embedded("no markers\n") is None
    # markers count only as whole lines; a table without a final line end gets one
    inline = f"see {BLOCK_START} here\n"
    assert embed(inline, table) == inline and embedded(inline) is None
    assert embedded(embed(f"{BLOCK_START}\n{BLOCK_END}", "| a |")) == "| a |\n"
    assert embed(f"{BLOCK_START}  \r\nold\r\n{BLOCK_END}\r\nafter\r\n", "new\r\n") == \
        f"{BLOCK_START}  \r\nnew\r\n{BLOCK_END}\r\nafter\r\n"
    for bad in (f"{BLOCK_START}\nno end\n", f"{BLOCK_END}\nx\n{BLOCK_START}\n", f"{BLOCK_END}\n",
                f"{BLOCK_START}\n{BLOCK_END}\n{BLOCK_START}\n{BLOCK_END}\n"):
        with pytest.raises(ValueError, match="expected one"):
            embed(bad, table)
        with pytest.raises(ValueError, match="expected one"):
            embedded(bad)


def test_summarize_refuses_a_readme_with_broken_markers_before_writing(tmp_path, capsys):
    from reference.app.summary import BLOCK_START

    _run(tmp_path, "one", "MNIST_CNN.yaml", [0.98, 0.99], 3)
    (tmp_path / "README.md").write_text(f"{BLOCK_START}\nno end marker\n")
    assert main(["summarize", str(tmp_path)]) == 2
    assert "README.md: expected one" in capsys.readouterr().err
    assert not (tmp_path / "summary.csv").exists() and not (tmp_path / "summary.md").exists()


def test_summarize_keeps_a_crlf_readme_crlf(tmp_path):
    from reference.app.summary import BLOCK_END, BLOCK_START

    _run(tmp_path, "one", "MNIST_CNN.yaml", [0.99], 3)
    (tmp_path / "README.md").write_bytes(f"top\r\n{BLOCK_START}\r\nold\r\n{BLOCK_END}\r\n".encode())
    summarize(str(tmp_path))
    raw = (tmp_path / "README.md").read_bytes()
    assert b"99.00%" in raw and b"old" not in raw and raw.count(b"\n") == raw.count(b"\r\n")


def test_the_committed_results_readme_shows_the_committed_summary():
    """results/README.md embeds results/summary.md as `summarize results/` last wrote it (a stale or hand-typed
    table fails here)."""
    from reference.app.summary import embedded

    with open(os.path.join(ROOT, "results", "README.md"), encoding="utf-8") as fh:
        shown = embedded(fh.read())
    with open(os.path.join(ROOT, "results", "summary.md"), encoding="utf-8") as fh:
        assert shown == fh.read()


def test_runs_csv_one_row_per_run_at_any_depth_with_hashes_and_commands(tmp_path):
    """runs.csv: a run with its weights hashes the files; a run without them takes the hashes its
    settings.json recorded; the command is run.log's first, after its environment, else settings.json's."""
    import hashlib

    import numpy as np

    from reference.app.summary import RUNS_COLUMNS

    _run(tmp_path, "kept", "FashionMNIST_400_400.yaml", [0.80, 0.90, 0.85], 3)
    np.savez(tmp_path / "kept" / "weights.npz", output=np.arange(3.0))
    (tmp_path / "kept" / "run.log").write_text(
        json.dumps({"command": "python -m reference train --config c.yaml", "env": {"OPENBLAS_CORETYPE": "Haswell"}})
        + "\n" + json.dumps({"command": "python -m reference train --resume kept"}) + "\n")
    (tmp_path / "reruns").mkdir()
    _run(tmp_path / "reruns", "gone", "MNIST_CNN.yaml", [0.99, 0.995, 0.995], 4, {"variant": "paper2020"})
    side = tmp_path / "reruns" / "gone" / "settings.json"
    side.write_text(json.dumps({**json.loads(side.read_text()), "weights_sha256": "ab" * 32,
                                "best_weights_sha256": "cd" * 32, "command": "python -m reference train --seed 4"}))
    summarize(str(tmp_path))
    with open(tmp_path / "runs.csv") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == RUNS_COLUMNS
        kept, gone = list(reader)
    assert (kept["run"], kept["variant"], kept["seed"], kept["epochs"]) == ("kept", "final", "3", "3")
    assert (kept["best_acc"], kept["best_epoch"], kept["last_acc"], kept["seconds"]) == ("0.900000", "2", "0.850000", "3.0")
    assert kept["weights_sha256"] == hashlib.sha256((tmp_path / "kept" / "weights.npz").read_bytes()).hexdigest() and kept["best_weights_sha256"] == ""
    assert kept["command"] == "OPENBLAS_CORETYPE=Haswell python -m reference train --config c.yaml"
    assert (gone["run"], gone["variant"], gone["options"], gone["best_epoch"]) == ("reruns/gone", "paper2020", "defaults", "2")
    assert (gone["weights_sha256"], gone["best_weights_sha256"]) == ("ab" * 32, "cd" * 32)
    assert gone["command"] == "python -m reference train --seed 4"
    with open(tmp_path / "summary.csv") as fh:  # the group table reads the top-level runs only, as before
        assert [r["folders"] for r in csv.DictReader(fh)] == ["kept"]


def test_planned_epochs_come_from_settings_json_once_the_checkpoint_is_gone(tmp_path):
    _run(tmp_path, "stopped", "FashionMNIST_400_400.yaml", [0.80, 0.90], 3)
    side = tmp_path / "stopped" / "settings.json"
    side.write_text(json.dumps({**json.loads(side.read_text()), "epochs": 100}))
    assert (read_run(str(tmp_path / "stopped")).planned_epochs, read_run(str(tmp_path / "stopped")).epochs) == (100, 2)


def test_only_finished_or_resumable_runs_count_and_the_rest_are_named(tmp_path, capsys):
    """Issue 30, item 7: a folder with a config and a NaN metrics file became seed None and the group's
    mean 'nan%'. Now it is skipped, and summarize says which folders it skipped and why."""
    _run(tmp_path, "good", "MNIST_CNN.yaml", [0.98, 0.99], 3)
    _run(tmp_path, "nan", "MNIST_CNN.yaml", [float("nan")], 4)
    _run(tmp_path, "percent", "MNIST_CNN.yaml", [98.5], 5)  # percent, not a fraction
    _run(tmp_path, "bare", "MNIST_CNN.yaml", [0.97], 6)
    (tmp_path / "bare" / "settings.json").unlink()  # a config and metrics only: neither finished nor resumable
    _run(tmp_path, "broken", "MNIST_CNN.yaml", [0.97], 7)
    (tmp_path / "broken" / "metrics.csv").write_bytes(b"\x00\xff\x89binary")
    skipped = []
    rows = summarize(str(tmp_path), skipped)
    assert [r["seeds"] for r in rows] == ["3"] and rows[0]["best_mean"] == 99.0
    why = {os.path.basename(f): w for f, w in skipped}
    assert set(why) == {"nan", "percent", "bare", "broken"}
    assert "not an accuracy" in why["nan"] and "not an accuracy" in why["percent"]
    assert "not a finished or resumable run" in why["bare"] and "not a metrics file" in why["broken"]
    assert main(["summarize", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert err.count("skipped ") == 4 and "nan%" not in (tmp_path / "summary.md").read_text()


def test_a_run_recording_options_no_network_has_is_skipped(tmp_path, capsys):
    """Issue 30, item 11: a settings.json with an unknown variant was summarised as a group 'variant=foo'.
    A run counts only if its recorded options build a network; the others are skipped with the option's
    own message, and a folder of only such runs is one line naming that."""
    _run(tmp_path, "good", "MNIST_CNN.yaml", [0.98, 0.99], 3)
    _run(tmp_path, "foo", "MNIST_CNN.yaml", [0.98], 4, options={"variant": "foo"})
    _run(tmp_path, "typo", "MNIST_CNN.yaml", [0.98], 5, options={"intr": False})
    skipped = []
    rows = summarize(str(tmp_path), skipped)
    assert [r["seeds"] for r in rows] == ["3"]
    why = {os.path.basename(f): w for f, w in skipped}
    assert "variant must be one of" in why["foo"] and "'foo'" in why["foo"]
    assert "unknown network option(s) ['intr']" in why["typo"]
    shutil.rmtree(tmp_path / "good")
    assert main(["summarize", str(tmp_path)]) == 2
    assert "the 2 folder(s) with a metrics.csv were skipped" in capsys.readouterr().err


def test_runs_of_another_batch_size_or_limit_and_copies_are_not_pooled(tmp_path):
    """Issue 30, second pass: a run trained with --batch-size 2 on 500 images was pooled with batch-100
    runs under the config's "batch 100", and a copied run folder counted as a second seed."""
    from reference.app.summary import read_runs

    _run(tmp_path, "a_seed3", "FashionMNIST_400_400.yaml", [0.80, 0.90], 3)
    _run(tmp_path, "b_seed4", "FashionMNIST_400_400.yaml", [0.70, 0.88], 4)
    _run(tmp_path, "small_seed5", "FashionMNIST_400_400.yaml", [0.5, 0.6], 5)
    settings = json.loads((tmp_path / "small_seed5" / "settings.json").read_text())
    settings["command"] = ("python -m reference train --config configs/FashionMNIST_400_400.yaml --seed 5 "
                           "--batch-size 2 --train-limit 500 --test-limit 200")
    (tmp_path / "small_seed5" / "settings.json").write_text(json.dumps(settings))
    for name in ("a_seed3", "small_seed5"):
        np.savez(tmp_path / name / "weights.npz", w=np.full(3, len(name), np.float32))
    shutil.copytree(tmp_path / "a_seed3", tmp_path / "c_copy")
    skipped = []
    runs = read_runs(str(tmp_path), skipped)
    assert [r.folder for r in runs] == ["a_seed3", "b_seed4", "small_seed5"]
    assert skipped == [(str(tmp_path / "c_copy"), skipped[0][1])] and "a copy of a_seed3" in skipped[0][1]
    small = next(r for r in runs if r.folder == "small_seed5")
    assert "batch 2, kernel loss, train limit 500, test limit 200" in small.config
    assert len({r.group for r in runs}) == 2  # the two full runs together, the small one apart


# ------------------------------------------------------------------------------ issue 30, third pass
@pytest.mark.parametrize("damage", ["run.log [1,2]", "no seconds", "meta_json [1]", "settings nested deep"])
def test_a_folder_that_cannot_be_read_is_skipped_and_nothing_is_written_before(tmp_path, capsys, damage):
    """Third pass F11-F14: summarize stopped with a traceback on a run.log whose first line is [1,2], a
    metrics.csv without its seconds column, a checkpoint whose meta_json is [1] or a settings.json nested
    100 000 deep, after it had rewritten summary.csv.  Each folder is now skipped with why (or, for the
    missing seconds, listed with its time unknown), and every table is read before any is written."""
    _run(tmp_path, "good", "MNIST_CNN.yaml", [0.98, 0.99], 3)
    _run(tmp_path, "bad", "MNIST_CNN.yaml", [0.97], 4)
    bad = tmp_path / "bad"
    if damage == "run.log [1,2]":
        (bad / "run.log").write_text("[1, 2]\n")
    elif damage == "no seconds":
        (bad / "metrics.csv").write_text("epoch,test_acc\n1,0.97\n")
    elif damage == "meta_json [1]":
        np.savez(bad / "checkpoint.npz", meta_json=np.array("[1]"))
    else:
        (bad / "settings.json").write_text("[" * 100_000 + "]" * 100_000)
    assert main(["summarize", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    with open(tmp_path / "runs.csv") as fh:
        runs = {r["run"]: r for r in csv.DictReader(fh)}
    if damage in ("run.log [1,2]", "no seconds"):  # still a run: its command or its time is unknown
        assert set(runs) == {"good", "bad"} and "skipped" not in err
        assert runs["bad"]["command" if damage == "run.log [1,2]" else "seconds"] == ""
    else:
        assert set(runs) == {"good"} and f"skipped {bad}:" in err and len(err.strip().splitlines()) == 1


def test_runs_whose_configs_differ_beyond_the_shown_settings_are_not_pooled(tmp_path):
    """Third pass F15: runs with another threshold, weight_scale or desired count were pooled as seeds of
    one group.  They are apart now, each group's config naming the setting that differs."""
    import yaml

    _run(tmp_path, "a_seed3", "MNIST_CNN.yaml", [0.98], 3)
    _run(tmp_path, "b_seed4", "MNIST_CNN.yaml", [0.97], 4)
    _run(tmp_path, "c_seed5", "MNIST_CNN.yaml", [0.50], 5)
    cfg = yaml.safe_load((tmp_path / "c_seed5" / "config.yaml").read_text())
    cfg["Layers"]["FC_1"]["threshold"] = 2
    cfg["Network"]["epochs"] = 7  # not a setting of the experiment: still pooled when it alone differs
    (tmp_path / "c_seed5" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    cfg["Layers"]["FC_1"]["threshold"] = 1
    (tmp_path / "b_seed4" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    rows = summarize(str(tmp_path))
    assert sorted((r["seeds"], r["config"].split("; ")[-1]) for r in rows) == [
        ("3 4", "Layers.FC_1.threshold=1"), ("5", "Layers.FC_1.threshold=2")]


def test_a_readme_that_is_not_utf8_is_named(tmp_path, capsys):
    """Third pass F19: a README.md of Latin-1 bytes gave 'utf-8 codec can't decode' without the file."""
    _run(tmp_path, "good", "MNIST_CNN.yaml", [0.98], 3)
    (tmp_path / "README.md").write_bytes("Résumé des essais\n".encode("latin-1"))
    assert main(["summarize", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'README.md'} is not UTF-8 text" in err and not (tmp_path / "summary.csv").exists()


def test_a_copy_kept_without_its_weights_is_still_a_copy(tmp_path):
    """Third pass F16: a copied run folder whose weights.npz was left out (and that records no hash)
    counted as a second seed.  Its metrics.csv and seed are the original's, which two runs never share."""
    from reference.app.summary import read_runs

    _run(tmp_path, "a_seed3", "MNIST_CNN.yaml", [0.98, 0.99], 3)
    np.savez(tmp_path / "a_seed3" / "weights.npz", w=np.ones(3, np.float32))
    shutil.copytree(tmp_path / "a_seed3", tmp_path / "b_copy")
    (tmp_path / "b_copy" / "weights.npz").unlink()
    _run(tmp_path, "c_seed4", "MNIST_CNN.yaml", [0.98, 0.99], 4)  # the same numbers, another seed: a run
    skipped = []
    assert [r.folder for r in read_runs(str(tmp_path), skipped)] == ["a_seed3", "c_seed4"]
    assert len(skipped) == 1 and "a copy of a_seed3 (the same seed and metrics.csv" in skipped[0][1]


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "folder"])
def test_a_metrics_csv_that_is_no_regular_file_is_skipped_with_why(tmp_path, capsys, kind):
    """Fourth pass F2-F4, F12: summarize blocked forever on a FIFO metrics.csv, read /dev/zero until memory
    ran out, and dropped a run whose metrics.csv is a folder without a word.  Each is skipped, saying so."""
    _run(tmp_path, "good", "MNIST_CNN.yaml", [0.98], 3)
    _run(tmp_path, "odd", "MNIST_CNN.yaml", [0.97], 4)
    metrics = tmp_path / "odd" / "metrics.csv"
    metrics.unlink()
    {"fifo": lambda: os.mkfifo(metrics), "/dev/zero": lambda: metrics.symlink_to("/dev/zero"),
     "folder": metrics.mkdir}[kind]()
    assert main(["summarize", str(tmp_path)]) == 0  # a blocking read would hang here (the CI's timeout)
    assert f"skipped {tmp_path / 'odd'}: metrics.csv is not a regular file" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "good")
    assert main(["summarize", str(tmp_path)]) == 2
    assert "the 1 folder(s) with a metrics.csv were skipped" in capsys.readouterr().err


def test_a_repeated_or_missing_epoch_row_is_not_a_run(tmp_path, capsys):
    """Issue 30, fifth pass F5: a metrics.csv with epoch 2 written twice counted as a 3-epoch run. A run's
    rows are epochs 1, 2, ..., n as train writes them; any other order is skipped, naming the row."""
    _run(tmp_path, "good", "MNIST_CNN.yaml", [0.98, 0.99], 3)
    _run(tmp_path, "twice", "MNIST_CNN.yaml", [0.97, 0.98], 4)
    with open(tmp_path / "twice" / "metrics.csv", "a") as fh:
        fh.write("2,0.1,0.9,0.1,0.98,1,1\n")
    _run(tmp_path, "gap", "MNIST_CNN.yaml", [0.97, 0.98], 5)
    text = (tmp_path / "gap" / "metrics.csv").read_text().replace("\n2,", "\n3,")
    (tmp_path / "gap" / "metrics.csv").write_text(text)
    skipped = []
    rows = summarize(str(tmp_path), skipped)
    assert [r["seeds"] for r in rows] == ["3"] and rows[0]["epochs"] == "2"
    why = {os.path.basename(f): w for f, w in skipped}
    assert "row 3 is epoch '2', not 3" in why["twice"] and "row 2 is epoch '3', not 2" in why["gap"]


def test_a_readme_that_is_a_link_is_refused_before_anything_is_written(tmp_path):
    """Issue 30, fourth pass F6: summarize replaced a README.md symlink by a regular file (the link's target
    kept the old table, and the link was gone). It is refused, as linked runs.csv and summary.md are."""
    _run(tmp_path, "good", "MNIST_CNN.yaml", [0.98, 0.99], 3)
    target = tmp_path.parent / (tmp_path.name + "_readme.md")
    target.write_text("# mine\n")
    (tmp_path / "README.md").symlink_to(target)
    with pytest.raises(ValueError, match="is a symbolic link"):
        summarize(str(tmp_path))
    assert (tmp_path / "README.md").is_symlink() and target.read_text() == "# mine\n"
    assert not (tmp_path / "summary.csv").exists()


def test_a_seed_that_appears_twice_in_a_group_is_said(tmp_path, capsys):
    """Fourth pass: two runs of one config and one seed (a run trained again, on other threads) were pooled
    as two seeds without a word.  They still count (they are two runs), and summarize says so."""
    _run(tmp_path, "a", "MNIST_CNN.yaml", [0.90, 0.91], 0)
    _run(tmp_path, "b", "MNIST_CNN.yaml", [0.80, 0.92], 0)
    _run(tmp_path, "c", "MNIST_CNN.yaml", [0.80, 0.93], 1)
    assert main(["summarize", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "note: seed 0 appears in 2 runs of one group (a, b)" in err and "seed 1" not in err


def test_a_set_aside_run_is_not_listed_as_a_run_of_its_own(tmp_path):
    """Fifth pass F11: runs.csv listed X/.replaced (the old run an interrupted --overwrite set aside) as a
    run, while summary.csv counted only X."""
    _run(tmp_path, "X", "MNIST_CNN.yaml", [0.98, 0.99], 3)
    _run(tmp_path / "X", ".replaced", "MNIST_CNN.yaml", [0.90], 0)
    summarize(str(tmp_path))
    with open(tmp_path / "runs.csv") as fh:
        assert [r["run"] for r in csv.DictReader(fh)] == ["X"]


def test_a_kept_run_without_its_checkpoint_has_its_best_epoch_checked(tmp_path):
    """Eleventh pass F2: a run in the form results/ keeps (settings.json and best_weights.npz, no
    checkpoint) was counted with an edited best row: the best-epoch check read best_weights.npz only
    beside a weights.npz."""
    import shutil

    from reference.app.summary import not_a_run

    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "results", "fmnist_mlp_400_400_paper2020_seed3")
    if not os.path.isfile(os.path.join(src, "best_weights.npz")):
        pytest.skip("this clone has no results/ weights (a light clone)")
    run = tmp_path / "r"
    shutil.copytree(src, run)
    assert not_a_run(str(run)) is None and not os.path.exists(run / "checkpoint.npz")
    lines = (run / "metrics.csv").read_text().splitlines()
    row = lines[9].split(",")
    row[4] = "0.9500"  # epoch 9's test accuracy, above the best epoch's 0.8995
    (run / "metrics.csv").write_text("\n".join([*lines[:9], ",".join(row), *lines[10:]]) + "\n")
    assert not_a_run(str(run)) == ("metrics.csv: epoch 9's test_acc 0.9500 is above the best its best_weights.npz "
                                   "records (epoch 51, 0.8995) (edited, or of another run)")
