"""Corpus reader: ASR corrections, blank lines, and every kind of malformed line."""
import re

import pytest

from slu import data, program
from conftest import SAMPLE_DEV, SAMPLE_TRAIN


def write(tmp_path, text, name="data.txt"):
    p = tmp_path / name
    p.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return str(p)


def test_parse_annotation_offsets_and_asr():
    text, spans = data.parse_annotation("来一首<singer>周华健</singer>的<song>花心</song>")
    assert text == "来一首周华健的花心"
    assert spans == [("singer", 3, 6, "周华健"), ("song", 7, 9, "花心")]
    text, spans = data.parse_annotation("播放<singer>英文文||于文文</singer>的<song>体验||体面</song>")
    assert text == "播放英文文的体验"
    assert spans == [("singer", 2, 5, "于文文"), ("song", 6, 8, "体面")]


def test_reader_keeps_asr_lines_and_skips_blank_lines(tmp_path, labels):
    p = write(tmp_path, "1\t给来首la la的歌\tmusic.play\t给来首<singer>la la||娜娜</singer>的歌\n\n\n"
                        "2\t取消\tnavigation.cancel_navigation\t取消\n")
    ex = data.read_examples(p, labels)
    assert [e["query"] for e in ex] == ["给来首la la的歌", "取消"]
    assert ex[0]["slots"] == [("singer", 3, 8, "娜娜")]
    assert [e["line"] for e in ex] == [1, 4]


@pytest.mark.parametrize("line, reason", [
    ("1\t播放花心\tmusic.play", "expected 4 tab-separated columns, found 3"),
    ("1\t播放花心\tmusic.play\t播放<song>花心</song>\textra", "found 5"),
    ("1\t播放花心\tmusic.play\t播放<song>花心", "<song> is never closed"),
    ("1\t播放花心\tmusic.play\t播放花心</song>", "closing tag </song> without an opening tag"),
    ("1\t播放花心\tmusic.play\t播放<song>花心</singer>", "<song> closed by </singer>"),
    ("1\t播放花心\tmusic.play\t播放<song><singer>花心</singer></song>", "opened inside"),
    ("1\t播放花心\tmusic.play\t播放<album>花心</album>", "unknown slot type 'album'"),
    ("1\t播放花心\tmusic.play\t播放<song>花新</song>", "differs from the query"),
    ("1\t播放花心\tmusic.dance\t播放<song>花心</song>", "unknown intent 'music.dance'"),
    ("1\t播放花心\tmusic.play\t播放||放<song>花心</song>", "outside a slot"),
    ("1\t\tOTHERS\t", "empty query"),
])
def test_malformed_line_names_file_and_line(tmp_path, labels, line, reason):
    p = write(tmp_path, "1\t取消\tnavigation.cancel_navigation\t取消\n\n" + line + "\n")
    with pytest.raises(data.DataError) as e:
        data.read_examples(p, labels)
    assert e.value.path == p and e.value.lineno == 3
    assert reason in str(e.value) and str(e.value).startswith(f"{p}:3: ")


def test_invalid_utf8_names_line(tmp_path, labels):
    p = write(tmp_path, "1\t取消\tnavigation.cancel_navigation\t取消\n".encode() + b"2\t\xff\xfe\tOTHERS\t\xff\xfe\n")
    with pytest.raises(data.DataError, match=r":2: not valid UTF-8"):
        data.read_examples(p, labels)


def test_skip_malformed_counts_and_reports(tmp_path, labels):
    p = write(tmp_path, "1\t取消\tnavigation.cancel_navigation\t取消\n"
                        "2\t播放花心\tmusic.play\t播放<song>花心\n"
                        "3\t播放\tmusic.dance\t播放\n"
                        "4\t暂停\tmusic.pause\t暂停\n")
    printed = []
    ex = data.read_examples(p, labels, skip_malformed=True, log=printed.append)
    assert [e["line"] for e in ex] == [1, 4]
    assert printed[0] == f"{p}: skipped 2 malformed line(s), kept 2:"
    assert ":2: " in printed[1] and "never closed" in printed[1]
    assert ":3: " in printed[2] and "unknown intent" in printed[2]


def test_missing_file_is_named(labels):
    with pytest.raises(FileNotFoundError, match="data file not found: /no/such.txt"):
        data.read_examples("/no/such.txt", labels)


def test_label_files(tmp_path):
    p = write(tmp_path, "PAD\nO\nB-song\nI-song\nB-song\n", "slots.txt")
    with pytest.raises(data.DataError, match=r"slots.txt:5: repeated label 'B-song'"):
        data.read_label_file(p)
    with pytest.raises(ValueError, match="no I-x"):
        data.LabelSet(["OTHERS"], ["PAD", "O", "B-x"])


def test_sample_covers_every_intent_slot_type_digits_latin_and_asr(labels):
    ex = data.read_examples(SAMPLE_TRAIN, labels) + data.read_examples(SAMPLE_DEV, labels)
    assert 300 <= len(ex) <= 1000
    assert {e["intent"] for e in ex} == set(labels.intents)
    assert {s[0] for e in ex for s in e["slots"]} == set(labels.slot_types)
    assert any(s[3] != e["query"][s[1]:s[2]] for e in ex for s in e["slots"]), "no ASR correction"
    assert any(any(c.isdigit() for c in e["query"]) for e in ex)
    assert any(any(c.isascii() and c.isalpha() for c in e["query"]) for e in ex)
    for path in (SAMPLE_TRAIN, SAMPLE_DEV):  # dev covers every slot type too
        assert {s[0] for e in data.read_examples(path, labels) for s in e["slots"]} == set(labels.slot_types)


def test_shared_corpus_reads_clean(labels, corpus_path):
    ex = data.read_examples(corpus_path, labels)
    assert len(ex) == 19252  # non-blank lines of the shared copy (wc: 23486 lines with blank separators)
    asr = [e for e in ex if any(s[3] != e["query"][s[1]:s[2]] for s in e["slots"])]
    assert len(asr) == 189  # grep -c '||' corpus.train.txt
    assert data.slotless_intents(ex, labels) == [
        "OTHERS", "music.pause", "music.prev", "music.next", "navigation.open", "navigation.start_navigation",
        "navigation.cancel_navigation", "phone_call.cancel"]


def test_read_program_names_the_bad_file(tmp_path):
    bad, empty = tmp_path / "bad.pdmodel", tmp_path / "empty.pdmodel"
    bad.write_bytes(b"\xff\xff\xff\xff")
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=f"{re.escape(str(bad))}: not a Paddle program"):
        program.read_program(str(bad))
    with pytest.raises(ValueError, match=f"{re.escape(str(empty))}: not a Paddle program"):
        program.program_ops(str(empty))
    with pytest.raises(FileNotFoundError, match=f"model file not found: {re.escape(str(tmp_path / 'x.pdmodel'))}"):
        program.model_input_dtype(str(tmp_path / "x.pdmodel"))
