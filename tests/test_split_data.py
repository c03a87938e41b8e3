"""scripts/split_data.py: upstream's line split, the session-level split, and refusals that protect the input."""
import pytest

from conftest import run_py

SCRIPT = "scripts/split_data.py"


def corpus_lines(n_sessions=40):
    """A corpus in the NLPCC format: session k has k % 3 + 1 turns, sessions separated by blank lines."""
    blocks = []
    for k in range(n_sessions):
        blocks.append("\n".join(f"s{k}\t查询{k}_{t}\tOTHERS\t查询{k}_{t}" for t in range(k % 3 + 1)))
    return "\n\n".join(blocks) + "\n"


def lines_of(path):
    return [x for x in path.read_text(encoding="utf-8").split("\n") if x.strip()]


def test_line_split_is_four_to_one_and_reproducible(tmp_path):
    (tmp_path / "c.txt").write_text(corpus_lines(), encoding="utf-8")
    for out in ("a", "b"):
        run_py([SCRIPT, "--corpus", str(tmp_path / "c.txt"), "--output_dir", str(tmp_path / out), "--seed", "3"])
    train, dev = lines_of(tmp_path / "a" / "train.txt"), lines_of(tmp_path / "a" / "dev.txt")
    assert len(dev) == 79 // 5 and sorted(train + dev) == sorted(lines_of(tmp_path / "c.txt"))
    assert (tmp_path / "a" / "dev.txt").read_text() == (tmp_path / "b" / "dev.txt").read_text()


def test_session_split_keeps_sessions_whole_and_in_order(tmp_path):
    (tmp_path / "c.txt").write_text(corpus_lines(), encoding="utf-8")
    p = run_py([SCRIPT, "--corpus", str(tmp_path / "c.txt"), "--output_dir", str(tmp_path / "o"), "--split_by",
                "session"])
    assert "32 train, 8 dev sessions" in p.stdout
    train, dev = lines_of(tmp_path / "o" / "train.txt"), lines_of(tmp_path / "o" / "dev.txt")
    sessions = lambda ls: {x.split("\t")[0] for x in ls}  # noqa: E731
    assert not sessions(train) & sessions(dev) and len(sessions(dev)) == 8
    assert sorted(train + dev) == sorted(lines_of(tmp_path / "c.txt"))
    for part in (train, dev):  # turns of a session stay together and in their order
        for s in sessions(part):
            turns = [x.split("\t")[1] for x in part if x.split("\t")[0] == s]
            k = int(s[1:])
            assert turns == [f"查询{k}_{t}" for t in range(k % 3 + 1)]
    blocks = (tmp_path / "o" / "dev.txt").read_text(encoding="utf-8").strip().split("\n\n")
    assert len(blocks) == 8  # a blank line between sessions, as in the corpus


def test_refuses_to_overwrite_its_input(tmp_path):
    corpus = tmp_path / "train.txt"
    corpus.write_text(corpus_lines(), encoding="utf-8")
    before = corpus.read_bytes()
    p = run_py([SCRIPT, "--corpus", str(corpus), "--output_dir", str(tmp_path)], check=False)
    assert p.returncode == 1 and f"{corpus} is the corpus itself: choose another --output_dir" in p.stderr
    assert corpus.read_bytes() == before and not (tmp_path / "dev.txt").exists()


@pytest.mark.parametrize("content, message", [
    (b"", "the corpus is empty"),
    (b"\n\n  \n", "the corpus is empty"),
    (b"s1\tq\tOTHERS\tq\ns2\t\xff\tOTHERS\tq\n", "c.txt:2: not valid UTF-8"),
])
def test_bad_corpus_is_one_line_error(tmp_path, content, message):
    (tmp_path / "c.txt").write_bytes(content)
    p = run_py([SCRIPT, "--corpus", str(tmp_path / "c.txt"), "--output_dir", str(tmp_path / "o")], check=False)
    assert p.returncode == 1 and message in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
