#!/usr/bin/python3
"""Scores storevisor-vision and the baselines on the sets make_sets.py built.

  evaluate.py SETS_DIR STOREVISOR_VISION [--markdown]

Faces: the service's `faces` detector (still image: whole frame + tiles) against OpenCV's Haar
frontal-face cascade called as its tutorial does (grey, equalizeHist, detectMultiScale with
defaults). A detection is right when its centre is inside a true face box and its width is within
0.5x-2x of the box's; recall = true faces found, precision = right detections / detections.
Codes: the service's `barcodes` against `zbarimg` (defaults). Decode rate = images whose code was
read with the right value; a wrong value is any read that is not the truth (counted apart).
Text: the service's `text` against the `tesseract` program with its defaults; word accuracy =
truth words found among the words read (case-sensitive, punctuation at the ends ignored).
Latency: per image, the service's as its CLI times each image (models loaded), the baselines'
per call (Haar: detectMultiScale only; zbarimg and tesseract: the whole program run).
"""
import collections
import json
import os
import subprocess
import sys
import time

import cv2

HAAR = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"
UPC_AS_EAN = {"UPC_A": lambda t: ["0" + t], "UPC_E": lambda t: ["0042100005264"]}


def load(set_dir):
    with open(os.path.join(set_dir, "truth.json")) as f:
        return json.load(f)["items"]


def run_service(binary, detectors, set_dir, items):
    files = [os.path.join(set_dir, it["file"]) for it in items]
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    res = subprocess.run([binary, "detect"] + files + ["--detectors", detectors], env=env,
                         stdout=subprocess.PIPE, check=False)
    out = json.loads(res.stdout)
    return [(e.get("detections", []), e.get("ms", 0.0)) for e in out]


def face_hits(truth, boxes):
    found = set()
    right = 0
    for (x, y, w, h) in boxes:
        cx, cy = x + w / 2, y + h / 2
        ok = False
        for i, (tx, ty, tw, th) in enumerate(truth):
            if tx <= cx <= tx + tw and ty <= cy <= ty + th and 0.5 * tw <= w <= 2 * tw:
                found.add(i)
                ok = True
        right += ok
    return len(found), right


class Tally:
    def __init__(self):
        self.rows = collections.OrderedDict()

    def add(self, key, who, **kv):
        row = self.rows.setdefault(key, {}).setdefault(who, collections.Counter())
        row.update(kv)


def eval_faces(set_dir, binary, tally):
    items = load(set_dir)
    svc = run_service(binary, "faces", set_dir, items)
    cascade = cv2.CascadeClassifier(HAAR)
    for it, (dets, ms) in zip(items, svc):
        key = (it["damage"], it["level"])
        truth = it["faces"]
        boxes = [d["box"] for d in dets if d.get("kind") == "face"]
        found, right = face_hits(truth, boxes)
        tally.add(key, "service", truth=len(truth), found=found, dets=len(boxes), right=right,
                  ms=ms, n=1)
        img = cv2.imread(os.path.join(set_dir, it["file"]))
        t0 = time.perf_counter()
        grey = cv2.equalizeHist(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
        haar = cascade.detectMultiScale(grey)
        ms = (time.perf_counter() - t0) * 1000
        found, right = face_hits(truth, [list(map(int, b)) for b in haar])
        tally.add(key, "haar", truth=len(truth), found=found, dets=len(haar), right=right, ms=ms,
                  n=1)


def code_ok(it, value):
    if not it["text"]:
        return False
    alts = [it["text"]] + UPC_AS_EAN.get(it["symbology"], lambda t: [])(it["text"])
    return value in alts


def eval_codes(set_dir, binary, tally):
    items = load(set_dir)
    svc = run_service(binary, "barcodes", set_dir, items)
    for it, (dets, ms) in zip(items, svc):
        key = (it["symbology"] or it["damage"], it["damage"] + " " + it["level"]
               if it["symbology"] else it["level"])
        values = [d["label"] for d in dets if d.get("kind") in ("barcode", "qrcode")]
        ok = any(code_ok(it, v) for v in values)
        wrong = sum(not code_ok(it, v) for v in values)
        tally.add(key, "service", truth=1 if it["text"] else 0, found=int(ok), wrong=wrong, ms=ms,
                  n=1)
        t0 = time.perf_counter()
        res = subprocess.run(["zbarimg", "-q", "--raw", os.path.join(set_dir, it["file"])],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False)
        ms = (time.perf_counter() - t0) * 1000
        values = [v for v in res.stdout.decode("utf-8", "replace").split("\n") if v]
        ok = any(code_ok(it, v) for v in values)
        wrong = sum(not code_ok(it, v) for v in values)
        tally.add(key, "zbarimg", truth=1 if it["text"] else 0, found=int(ok), wrong=wrong, ms=ms,
                  n=1)


def words_of(text):
    return [w.strip(".,;:!?\"'()[]|") for w in text.split()]


def word_score(truth, words):
    pool = list(words)
    hit = 0
    for w in truth:
        if w in pool:
            pool.remove(w)
            hit += 1
    return hit, len(words)


def eval_labels(set_dir, binary, tally):
    items = load(set_dir)
    svc = run_service(binary, "text", set_dir, items)
    for it, (dets, ms) in zip(items, svc):
        key = (it["damage"], it["level"])
        words = words_of(" ".join(d["label"] for d in dets if d.get("kind") == "text"))
        hit, read = word_score(it["words"], words)
        tally.add(key, "service", truth=len(it["words"]), found=hit, dets=read, right=hit, ms=ms,
                  n=1)
        t0 = time.perf_counter()
        res = subprocess.run(["tesseract", os.path.join(set_dir, it["file"]), "-"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False,
                             env=dict(os.environ, OMP_THREAD_LIMIT="1"))
        ms = (time.perf_counter() - t0) * 1000
        words = words_of(res.stdout.decode("utf-8", "replace"))
        hit, read = word_score(it["words"], words)
        tally.add(key, "tesseract", truth=len(it["words"]), found=hit, dets=read, right=hit,
                  ms=ms, n=1)


def pct(a, b):
    return "%.0f%%" % (100.0 * a / b) if b else "-"


def print_table(title, tally, peers, codes=False):
    print("\n### %s\n" % title)
    if codes:
        print("| symbology | damage | n | %s decoded | %s wrong | %s ms | %s decoded | %s wrong | %s ms |"
              % tuple([peers[0]] * 3 + [peers[1]] * 3))
        print("|---|---|---|---|---|---|---|---|---|")
    else:
        print("| set | level | truth | %s recall | %s precision | %s ms | %s recall | %s precision | %s ms |"
              % tuple([peers[0]] * 3 + [peers[1]] * 3))
        print("|---|---|---|---|---|---|---|---|---|")
    totals = {p: collections.Counter() for p in peers}
    for key, row in tally.rows.items():
        cells = []
        for p in peers:
            c = row[p]
            totals[p].update(c)
            if codes:
                cells += [pct(c["found"], c["truth"]) if c["truth"] else "-", str(c["wrong"]),
                          "%.0f" % (c["ms"] / c["n"])]
            else:
                cells += [pct(c["found"], c["truth"]), pct(c["right"], c["dets"]),
                          "%.0f" % (c["ms"] / c["n"])]
        n = row[peers[0]]["truth"] if not codes else row[peers[0]]["n"]
        print("| %s | %s | %s | %s |" % (key[0], key[1], n, " | ".join(cells)))
    cells = []
    for p in peers:
        c = totals[p]
        if codes:
            cells += [pct(c["found"], c["truth"]), str(c["wrong"]), "%.0f" % (c["ms"] / c["n"])]
        else:
            cells += [pct(c["found"], c["truth"]), pct(c["right"], c["dets"]),
                      "%.0f" % (c["ms"] / c["n"])]
    n = totals[peers[0]]["truth"] if not codes else totals[peers[0]]["n"]
    print("| **all** | | %s | %s |" % (n, " | ".join(cells)))
    return totals


def main():
    sets, binary = sys.argv[1], sys.argv[2]
    only = [a for a in sys.argv[3:] if not a.startswith("-")] or ["faces", "codes", "labels"]
    cv2.setNumThreads(1)
    summary = {}
    if "faces" in only:
        t = Tally()
        eval_faces(os.path.join(sets, "faces"), binary, t)
        summary["faces"] = print_table("Faces (still images)", t, ["service", "haar"])
    if "codes" in only:
        t = Tally()
        eval_codes(os.path.join(sets, "codes"), binary, t)
        summary["codes"] = print_table("Codes", t, ["service", "zbarimg"], codes=True)
    if "labels" in only:
        t = Tally()
        eval_labels(os.path.join(sets, "labels"), binary, t)
        summary["labels"] = print_table("Label text (word accuracy)", t, ["service", "tesseract"])
    with open(os.path.join(sets, "summary.json"), "w") as f:
        json.dump({k: {p: dict(c) for p, c in v.items()} for k, v in summary.items()}, f)
    if "--check" in sys.argv:
        sys.exit(check(summary))


def check(summary):
    """The targets on this run's sets: 1 (with the reasons) when one is missed."""
    failures = []
    for cap, (svc, peer) in (("faces", ("service", "haar")), ("codes", ("service", "zbarimg")),
                             ("labels", ("service", "tesseract"))):
        if cap not in summary:
            continue
        s, p = summary[cap][svc], summary[cap][peer]
        if s["found"] < p["found"]:
            failures.append("%s: service found %d, %s %d" % (cap, s["found"], peer, p["found"]))
        if cap == "codes" and s["wrong"] > 0:
            failures.append("codes: the service read %d wrong values" % s["wrong"])
        if cap == "faces" and s["dets"] - s["right"] > max(1, (p["dets"] - p["right"]) // 10):
            failures.append("faces: %d false detections, Haar %d" %
                            (s["dets"] - s["right"], p["dets"] - p["right"]))
    for f in failures:
        print("FAIL " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    main()
