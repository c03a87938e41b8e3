"""The README's first command, run as a user runs it: scripts/quickstart.sh trains the best recipe on the shipped
sample and answers data/sample/queries.txt in whole words."""
import json
import re

import pytest

from conftest import run_script

# The names in data/sample/queries.txt, each a word the answers must keep whole (written by hand from the queries)
WORDS = {"来一首周华健的花心": ["周华健", "花心"], "打电话给18866668888": ["18866668888"],
         "播放taylor swift的shape of you": ["taylor", "swift", "shape", "of", "you"], "导航到北京西站": ["北京西站"],
         "暂停": [], "今天天气怎么样": []}


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    out = tmp_path_factory.mktemp("quickstart")
    p = run_script("scripts/quickstart.sh", dict(OUTPUT=out), timeout=1800)
    return out, p.stdout


def answers(stdout):
    lines = stdout.split("== predictions (data/sample/queries.txt)\n")[1].strip().splitlines()
    return [json.loads(x) for x in lines]


def test_quickstart_prints_the_report_and_one_answer_per_query(quickstart):
    out, stdout = quickstart
    assert (out / "model" / "averaged" / "infer_model.pdmodel").is_file()
    report = stdout.split("== the exported model on data/sample/dev.txt\n")[1].split("== predictions")[0]
    assert report.splitlines()[0].split() == ["slot", "precision", "recall", "f1", "support"]
    summary = json.loads(report.strip().splitlines()[-1])
    assert summary["examples"] == 123 and summary["accuracy"] > 0.8  # a toy, but it has learned the sample
    assert [a["query"] for a in answers(stdout)] == list(WORDS)


def test_no_predicted_slot_cuts_a_word(quickstart):
    """Every name of the queries lies wholly inside one slot or outside all of them, and no slot starts or ends
    inside a run of Latin letters or digits."""
    got = answers(quickstart[1])
    for a in got:
        q, spans = a["query"], [(s["pos"][0], s["pos"][1] + 1) for s in a["slot"]]
        for s, e in spans:
            assert a["query"][s:e] == next(x["entity"] for x in a["slot"] if x["pos"][0] == s)
            for cut in (s, e):
                assert not (0 < cut < len(q) and re.match(r"[A-Za-z0-9]{2}", q[cut - 1:cut + 1])), (q, a["slot"])
        for word in WORDS[q]:
            w0 = q.index(word)
            w1 = w0 + len(word)
            touching = [(s, e) for s, e in spans if s < w1 and e > w0]
            assert all(s <= w0 and e >= w1 for s, e in touching), (q, word, a["slot"])
    # and the slots a user checks first are there, whole
    first = {s["slot"]: s["entity"] for s in got[0]["slot"]}
    assert first == {"singer": "周华健", "song": "花心"} and got[0]["intent"] == "music.play"
