"""Carry files larger than one call's allowance to the GPU machine, one piece a call.

The lent GPU machine takes at most 64 MiB with each call and keeps what a call wrote while it stays warm.
`split` cuts the given files, as one stream, into pieces (the first can be smaller, to leave room for what
else the first call carries) and writes a manifest; `put` (on the GPU machine) writes each piece it is given
into its files at their offsets, in any order and any number of times, and checks each file's sha256 once
all of it is there.

    python tests/bench/gpu/bundle.py split --out .gpu/parts --first-mib 40 --mib 62 FILE...
    python3 tests/bench/gpu/bundle.py put --parts .gpu/parts --dest /root/gpu/files   # after each call
    python3 tests/bench/gpu/bundle.py status --parts .gpu/parts --dest /root/gpu/files
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

MIB = 1 << 20


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 * MIB):
            h.update(chunk)
    return h.hexdigest()


def split(files: list[Path], out: Path, first: int, size: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    entries = [{"name": f.name, "size": f.stat().st_size, "sha256": sha256(f)} for f in files]
    pieces, budget, current = [], first, []
    for e, f in zip(entries, files):
        offset = 0
        while offset < e["size"]:
            used = sum(r["length"] for r in current)
            n = min(budget - used, e["size"] - offset)
            current.append({"file": e["name"], "offset": offset, "length": n})
            offset += n
            if used + n == budget:
                pieces.append(current)
                current, budget = [], size
    if current:
        pieces.append(current)
    handles = {e["name"]: open(f, "rb") for e, f in zip(entries, files)}
    for i, ranges in enumerate(pieces):
        with open(out / f"p{i:02d}", "wb") as w:
            for r in ranges:
                src = handles[r["file"]]
                src.seek(r["offset"])
                w.write(src.read(r["length"]))
    manifest = {"files": entries, "pieces": pieces}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(f"{len(pieces)} pieces in {out}: first {pieces and sum(r['length'] for r in pieces[0]) / MIB:.1f} MiB, "
          f"then {size / MIB:.0f} MiB each; {sum(e['size'] for e in entries) / MIB:.1f} MiB in all")


def put(parts: Path, dest: Path) -> dict:
    manifest = json.loads((parts / "manifest.json").read_text())
    dest.mkdir(parents=True, exist_ok=True)
    state_path = dest / ".pieces.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {"written": [], "verified": {}}
    for i, ranges in enumerate(manifest["pieces"]):
        piece = parts / f"p{i:02d}"
        if not piece.exists():
            continue
        if i not in state["written"]:
            with open(piece, "rb") as src:
                for r in ranges:
                    target = dest / r["file"]
                    mode = "r+b" if target.exists() else "wb"
                    with open(target, mode) as w:
                        w.seek(r["offset"])
                        w.write(src.read(r["length"]))
            state["written"].append(i)
        piece.unlink()     # written: its room is free for the next call
    for e in manifest["files"]:
        if e["name"] in state["verified"]:
            continue
        needed = {i for i, ranges in enumerate(manifest["pieces"]) if any(r["file"] == e["name"] for r in ranges)}
        if needed <= set(state["written"]):
            state["verified"][e["name"]] = sha256(dest / e["name"]) == e["sha256"]
    state_path.write_text(json.dumps(state))
    return state


def status(parts: Path, dest: Path) -> None:
    manifest = json.loads((parts / "manifest.json").read_text())
    state = put(parts, dest)
    n = len(manifest["pieces"])
    missing = [i for i in range(n) if i not in state["written"]]
    print(f"pieces written {n - len(missing)}/{n}; missing {missing[:6]}{'...' if len(missing) > 6 else ''}; "
          f"files verified {state['verified']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split")
    s.add_argument("files", nargs="+", type=Path)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--first-mib", type=float, default=40)
    s.add_argument("--mib", type=float, default=62)
    for name in ("put", "status"):
        p = sub.add_parser(name)
        p.add_argument("--parts", type=Path, required=True)
        p.add_argument("--dest", type=Path, required=True)
    args = ap.parse_args()
    if args.cmd == "split":
        split(args.files, args.out, int(args.first_mib * MIB), int(args.mib * MIB))
    else:
        status(args.parts, args.dest)
        state = json.loads((args.dest / ".pieces.json").read_text())
        if any(v is False for v in state["verified"].values()):
            sys.exit("a file's sha256 does not match the manifest")


if __name__ == "__main__":
    main()
