"""The import kept between test runs (reid_devtools/model_cache.py): what each run's store is copied from."""

import json
import os
import shutil
import stat
import time

from reid_devtools.model_cache import (
    MANIFEST,
    cache_root,
    current,
    entry_key,
    prune,
    read_only,
    replace,
    sha256_tree,
    shared_import,
)


def this_runs_entry():
    return cache_root() / entry_key(*shared_import())


def test_the_runs_store_is_a_writable_copy_of_a_current_read_only_entry(model_store):
    entry = this_runs_entry()
    assert current(entry)
    kept = json.loads((entry / MANIFEST).read_text())
    assert kept["arguments"] == shared_import()[0]
    assert {"reid/models/quantize.py", "reid/models/calibration.json"} <= set(kept["ran"]["code"]), kept["ran"]
    assert {"bentoml", "openvino", "nncf"} <= set(kept["ran"]["packages"])
    copied = sha256_tree(model_store / "models")
    assert {name: copied.get(name) for name in kept["files"]} == kept["files"]
    for name in kept["files"]:
        original, copy = entry / "home" / "models" / name, model_store / "models" / name
        assert not original.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), name
        assert copy.stat().st_mode & stat.S_IWUSR and copy.stat().st_ino != original.stat().st_ino, name


def test_an_entry_altered_or_built_by_other_code_is_not_current(model_store, tmp_path):
    copy = tmp_path / "entry"
    shutil.copytree(this_runs_entry(), copy)
    assert current(copy)
    model_file = next(path for path in (copy / "home" / "models").rglob("*.bin"))
    model_file.chmod(0o644)
    kept = model_file.read_bytes()
    model_file.write_bytes(kept[:-1])
    assert not current(copy)
    model_file.write_bytes(kept)
    assert current(copy)
    manifest = json.loads((copy / MANIFEST).read_text())
    module = next(iter(manifest["ran"]["code"]))
    (copy / MANIFEST).chmod(0o644)
    for changed in ({"code": {module: "0" * 64}}, {"packages": {"openvino": "0.0"}}, {"python": "2.7"}):
        (copy / MANIFEST).write_text(json.dumps({**manifest, "ran": {**manifest["ran"], **changed}}))
        assert not current(copy), changed
    (copy / MANIFEST).unlink()
    assert not current(copy)


def test_a_new_entry_replaces_a_stale_one_whole(tmp_path):
    entry, staging = tmp_path / "entry", tmp_path / ".entry-building"
    for folder, text in ((entry, "stale"), (staging, "new")):
        (folder / "home" / "models").mkdir(parents=True)
        (folder / "home" / "models" / "weights.bin").write_text(text)
        read_only(folder)
    replace(staging, entry)
    assert [path.name for path in tmp_path.iterdir()] == ["entry"]
    assert (entry / "home" / "models" / "weights.bin").read_text() == "new"


def test_the_key_follows_the_arguments_and_every_file_read(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "a.xml").write_text("<net/>")
    first = entry_key(["--from", "x"], [tmp_path / "models"])
    assert entry_key(["--from", "x"], [tmp_path / "models"]) == first
    assert entry_key(["--from", "y"], [tmp_path / "models"]) != first
    (tmp_path / "models" / "a.xml").write_text("<net />")
    assert entry_key(["--from", "x"], [tmp_path / "models"]) != first


def test_entries_unused_for_a_month_are_pruned(tmp_path):
    old, used = tmp_path / "old", tmp_path / "used"
    for entry in (old, used):
        (entry / "home" / "models").mkdir(parents=True)
    os.utime(old, (time.time() - 31 * 86400,) * 2)
    prune(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir() if not path.name.startswith(".")) == ["used"]
