"""``intref inspect`` shows the load-time plan (a summary, every node with ``--plan``) and ``intref
run --profile`` times each op type and node next to the node's chosen path; the plan changes no
bit (the demo's golden outputs are checked by tests/golden)."""

import re
from pathlib import Path

import numpy as np

from intref.bundle import load
from intref.cli import main
from intref.interpreter import run
from intref.ops.requant import _fast_paths
from intref.plan import format_profile, plan, plan_summary

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "golden" / "demo-ibert.zip"
FEEDS = ROOT / "golden" / "demo-ibert" / "ordinary" / "feeds"
REQUANTIZE_PATHS = {name for name, _, _ in _fast_paths("half_even")} | {"split95"}
FEED_ARGS = ["--feed", f"input_ids={FEEDS / 'input_ids.npy'}", "--feed", f"attention_mask={FEEDS / 'attention_mask.npy'}"]


def test_every_gemm_and_requantization_node_names_its_path():
    graph = load(BUNDLE)
    entries = plan(graph)
    assert [e.node for e in entries] == [n.name for n in graph.nodes]
    for e in entries:
        if e.op in ("Linear", "MatMul"):
            assert e.path.split()[0] in ("float32", "float64", "int64", "scan"), e
        if e.op == "Requantize":
            by = re.fullmatch(r"table \(\d+ entries, by (.+)\)|float64 near-tie, else (.+)"
                              r"|identity \(its \d+-entry table maps every value to itself, by (.+)\)", e.path)
            assert (by.group(by.lastindex) if by else e.path) in REQUANTIZE_PATHS, e
    assert any(line.startswith("Linear: ") for line in plan_summary(graph))


def test_inspect_shows_the_plan(capsys):
    assert main(["inspect", str(BUNDLE)]) == 0
    summary = capsys.readouterr().out
    assert "plan " in summary and "Requantize: " in summary
    assert main(["inspect", str(BUNDLE), "--plan"]) == 0
    listing = capsys.readouterr().out
    graph = load(BUNDLE)
    assert all(node.name in listing for node in graph.nodes)


def test_run_profile_lists_every_node_with_its_path(tmp_path, capsys):
    assert main(["run", str(BUNDLE), *FEED_ARGS, "--out", str(tmp_path / "out"), "--profile"]) == 0
    out = capsys.readouterr().out
    graph = load(BUNDLE)
    for entry in plan(graph):
        line = next(line for line in out.splitlines() if line.split()[:2] == [entry.node, entry.op])
        assert line.split()[-1] == (entry.path.split()[-1] if entry.path else "-")
    assert "share" in out and "Linear" in out


def test_profile_collects_one_timing_per_node_and_changes_no_result():
    graph = load(BUNDLE)
    feeds = {p.stem: np.load(p) for p in FEEDS.glob("*.npy")}
    timings = []
    profiled = run(graph, feeds, profile=timings, fuse=False)
    assert [step.node.name for step, _ in timings] == [n.name for n in graph.nodes]
    assert all(seconds >= 0 for _, seconds in timings)
    plain = run(graph, feeds)
    assert all(np.array_equal(profiled[k], plain[k]) for k in plain)
    assert len(format_profile(timings)) == 3 + len({n.op for n in graph.nodes}) + len(graph.nodes)
    # fused: one entry per chain (intref.fusion) in place of its nodes, listed after it
    fused = []
    assert all(np.array_equal(run(graph, feeds, profile=fused)[k], plain[k]) for k in plain)
    assert graph.chains
    inside = {name for chain in graph.chains for name in chain.names}
    expected = []
    tails = {chain.names[-1]: chain for chain in graph.chains}
    for n in graph.nodes:
        if n.name in tails:
            expected.append(tails[n.name].node.name)
        elif n.name not in inside:
            expected.append(n.name)
    assert [step.node.name for step, _ in fused] == expected
    lines = format_profile(fused)       # the chains' entries, then every node once
    assert len(lines) == 3 + len({step.node.op for step, _ in fused}) + len(graph.chains) + len(graph.nodes)
    assert sum(line.split()[2:3] == ["fused"] for line in lines) == len(inside)
