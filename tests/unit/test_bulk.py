"""What bulk enrolment reads: a folder per person, or a CSV, and its state file."""

import json

import pytest

from reid.clients.bulk import Picture, csv_pictures, folder_pictures, read_state


def test_a_folder_per_person_with_optional_source_folders(tmp_path):
    for path in (
        "alice/front/1.jpg",
        "alice/side/2.PNG",
        "alice/3.jpeg",
        "bob/1.jpg",
        "bob/notes.txt",
        ".hidden/1.jpg",
    ):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(b"x")
    pictures = folder_pictures(tmp_path)
    assert [(p.item, p.person, p.label, p.source) for p in pictures] == [
        ("alice/3.jpeg", "alice", "alice", None),
        ("alice/front/1.jpg", "alice", "alice", "front"),
        ("alice/side/2.PNG", "alice", "alice", "side"),
        ("bob/1.jpg", "bob", "bob", None),
    ]


def test_a_csv_of_image_box_label_and_source(tmp_path):
    table = tmp_path / "people.csv"
    table.write_text('image,bbox,label,source\na.jpg,"1,2,30,60",alice,front\nb.jpg,,alice,\nc.jpg,,,\n')
    assert csv_pictures(table) == [
        Picture("people.csv:2", tmp_path / "a.jpg", "alice", "alice", [1, 2, 30, 60], "front"),
        Picture("people.csv:3", tmp_path / "b.jpg", "alice", "alice", None, None),
        Picture("people.csv:4", tmp_path / "c.jpg", "line 4", None, None, None),
    ]
    table.write_text('image,bbox,label\na.jpg,"one,2,3,4",x\n')
    with pytest.raises(ValueError, match="line 2: bbox"):
        csv_pictures(table)
    table.write_text("image,label\na.jpg,x\n")
    with pytest.raises(ValueError, match="missing: bbox"):
        csv_pictures(table)


def test_the_state_file_gives_what_was_done_and_each_persons_id(tmp_path):
    state = tmp_path / "state.jsonl"
    assert read_state(state) == ({}, {})
    lines = [
        {"item": "alice/1.jpg", "person": "alice", "person_id": "a" * 32},
        {"item": "alice/2.jpg", "refused": 400, "error": "image: two persons", "field": "image"},
    ]
    state.write_text("".join(json.dumps(line) + "\n" for line in lines) + "\n")
    outcomes, persons = read_state(state)
    assert set(outcomes) == {"alice/1.jpg", "alice/2.jpg"} and persons == {"alice": "a" * 32}
