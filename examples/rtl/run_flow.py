#!/usr/bin/env python3
"""The RTL flow end to end: intref writes the golden vectors, Icarus Verilog runs the RTL, and
``intref verify`` compares the simulator's dump with the golden set and explains any difference.

    python examples/rtl/run_flow.py                  # all blocks, 6400 x 16 = 102,400 vectors per node
    python examples/rtl/run_flow.py --rows 640       # a quicker slice (CI)
    python examples/rtl/run_flow.py --blocks gelu --no-faults --no-cocotb

Per block, under ``--out`` (default examples/rtl/build/):

    <block>/<block>.zip      the intref bundle (blocks.py builds the graph)
    <block>/feeds/*.npy      the feeds
    <block>/golden/          ``intref golden <bundle> --feed ... --format hex,npy``
    <block>/hw/              what the simulated RTL dumped, one ``<tensor>.hex`` per output
    <block>/verify.txt, verify.xml   ``intref verify golden hw --format hex --junit verify.xml``

then the deliberately wrong builds of the requantize block (``fault_*/``: each must make verify exit 1
with a hint that names the cause) and the cocotb testbench. Exit status: 0 when every expectation
held, 1 otherwise, 2 when a tool is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import intref

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import blocks  # noqa: E402  (the block definitions next to this file)

SOURCES = {"requantize": ("rtl/requantize.v", "tb/hex_sink.v", "tb/tb_requantize.v"),   # the testbench last
           "gelu": ("rtl/i_gelu.v", "tb/hex_sink.v", "tb/tb_i_gelu.v"),
           "dot": ("rtl/dot_tile.v", "tb/hex_sink.v", "tb/tb_dot_tile.v")}
# fault define -> text the verify report must show for node y_half_even
FAULTS = {
    "FAULT_HALF_UP": "ties rounded half_up where the graph says half_even",
    "FAULT_WRAP": "values wrapped (two's complement) where the graph says overflow=saturate",
    "FAULT_SHIFT": "shift off by +1: re-running node 'y_half_even' with every shift +1",
}
DEFAULT_ROWS = 6400          # x 16 channels = 102,400 vectors per Requantize node
COCOTB_ROWS = 256            # the cocotb run drives the first rows (every tie and extreme comes first)
INSTALL_HINT = "install Icarus Verilog: apt-get install -y iverilog (Debian/Ubuntu), brew install icarus-verilog (macOS)"


class FlowError(RuntimeError):
    """A step of the flow failed in a way that is not a verification verdict (a tool, a file)."""


def find_iverilog(install: bool = False):
    """``(iverilog, vvp)`` paths, or None. With ``install``, try ``apt-get install -y iverilog`` (as root)."""
    found = shutil.which("iverilog"), shutil.which("vvp")
    if all(found) or not install:
        return found if all(found) else None
    if shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "iverilog"], check=False)
    found = shutil.which("iverilog"), shutil.which("vvp")
    return found if all(found) else None


def intref_env() -> dict:
    """The environment for ``python -m intref``: this intref importable in the child too."""
    env = dict(os.environ)
    root = str(Path(intref.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def intref_cli(*args, check_codes=(0,)) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "intref", *map(str, args)], capture_output=True, text=True,
                          env=intref_env())
    if done.returncode not in check_codes:
        raise FlowError(f"intref {' '.join(map(str, args))} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done


def write_case(block_dir: Path, graph, feeds: dict) -> Path:
    """Bundle, feeds and ``intref golden`` into ``block_dir``; returns the golden directory."""
    if block_dir.exists():
        shutil.rmtree(block_dir)
    (block_dir / "feeds").mkdir(parents=True)
    bundle = block_dir / f"{block_dir.name}.zip"
    intref.save(graph, bundle)
    feed_args = []
    for name, array in feeds.items():
        np.save(block_dir / "feeds" / f"{name}.npy", array, allow_pickle=False)
        feed_args += ["--feed", f"{name}={block_dir / 'feeds' / f'{name}.npy'}"]
    golden = block_dir / "golden"
    intref_cli("golden", bundle, *feed_args, "--format", "hex,npy", "--out", golden)
    return golden


def requant_params(golden: Path, params_dir: Path) -> None:
    """multiplier.hex (33-bit words) and shift.hex from the manifest's Requantize nodes, which must agree."""
    nodes = json.loads((golden / "manifest.json").read_text())["nodes"]
    pairs = {(tuple(n["attributes"]["multiplier"]), tuple(n["attributes"]["shift"])) for n in nodes}
    if len(pairs) != 1:
        raise FlowError(f"{golden}: the Requantize nodes do not share one multiplier/shift table")
    (multipliers, shifts), = pairs
    if max(shifts) > 63 or max(abs(m) for m in multipliers) > 1 << 31:
        raise FlowError("the RTL's ports take shifts 0..63 and |multiplier| <= 2**31")
    params_dir.mkdir(parents=True, exist_ok=True)
    (params_dir / "multiplier.hex").write_text(blocks.hex_words(multipliers, 33))
    (params_dir / "shift.hex").write_text(blocks.hex_words(shifts, 6))


def simulate(tools, block: str, top_params: dict, plusargs: dict, work: Path, defines=()) -> float:
    """Compile the block's RTL and testbench with iverilog and run vvp; returns the seconds taken."""
    iverilog, vvp = tools
    work.mkdir(parents=True, exist_ok=True)
    top = Path(SOURCES[block][-1]).stem
    image = work / f"{top}.vvp"
    compile_cmd = [iverilog, "-g2005", "-Wall", "-o", str(image), *(f"-D{d}" for d in defines),
                   *(f"-P{top}.{k}={v}" for k, v in top_params.items()), *(str(HERE / s) for s in SOURCES[block])]
    start = time.perf_counter()
    for cmd in (compile_cmd, [vvp, "-n", str(image), *(f"+{k}={v}" for k, v in plusargs.items())]):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0 or "ERROR" in done.stdout or "cannot" in done.stdout:
            raise FlowError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return time.perf_counter() - start


def synthesize(yosys: str, module: str, parameters=None) -> str:
    """``yosys synth`` of one RTL module (default parameters unless given) with ``check -assert``;
    returns the cell count. Proves the DUT synthesizable: no latches, no undriven or multiply driven
    wires, no simulation-only constructs."""
    source = HERE / "rtl" / f"{module}.v"
    chparam = "".join(f"chparam -set {k} {v} {module}; " for k, v in (parameters or {}).items())
    done = subprocess.run([yosys, "-p", f"read_verilog {source}; {chparam}synth -top {module}; check -assert; stat"],
                          capture_output=True, text=True)
    warnings = [line for line in done.stdout.splitlines() if line.lower().startswith("warning")]
    if done.returncode != 0 or warnings:
        raise FlowError(f"yosys synth of {module} {parameters or ''} failed:\n{done.stdout[-3000:]}{done.stderr}")
    cells = [line.split()[-1] for line in done.stdout.splitlines() if "Number of cells" in line]
    return cells[-1] if cells else "?"


def verify(golden: Path, hw: Path, out_dir: Path):
    """``intref verify golden hw --format hex --junit``; returns (exit code, report text)."""
    done = intref_cli("verify", golden, hw, "--format", "hex", "--junit", out_dir / "verify.xml",
                      check_codes=(0, 1, 2))
    (out_dir / "verify.txt").write_text(done.stdout + done.stderr)
    return done.returncode, done.stdout + done.stderr


def run_block(tools, block: str, out: Path, rows: int, defines=(), name=None) -> dict:
    """Golden set, simulation and verify for one block; a summary dict (``exit_code``, ``vectors``...)."""
    graph, feeds = {"requantize": (blocks.requant_graph, lambda: blocks.requant_feeds(rows)),
                    "gelu": (blocks.gelu_graph, blocks.gelu_feeds),
                    "dot": (blocks.dot_graph, blocks.dot_feeds)}[block]
    block_dir = out / (name or block)
    golden = write_case(block_dir, graph(), feeds())
    manifest = json.loads((golden / "manifest.json").read_text())
    hw = block_dir / "hw"
    hw.mkdir()
    plus = {"golden": golden, "hw": hw}
    if block == "requantize":
        requant_params(golden, block_dir / "params")
        plus["params"] = block_dir / "params"
        params = {"N": int(np.prod(manifest["tensors"]["x"]["shape"])), "CHANNELS": len(blocks.CHANNELS)}
    elif block == "gelu":
        attrs = manifest["nodes"][0]["attributes"]
        params = {"N": manifest["tensors"]["q"]["shape"][0], "IN_BITS": manifest["tensors"]["q"]["bits"],
                  **{key.upper(): attrs[key] for key in ("b_int", "c_int", "shift_int", "guard_shift")}}
    else:
        (m, k), n = manifest["tensors"]["a"]["shape"], manifest["tensors"]["b"]["shape"][0]
        params = {"M": m, "N": n, "K": k}
    seconds = simulate(tools, block, params, plus, block_dir / "sim", defines)
    start = time.perf_counter()
    code, text = verify(golden, hw, block_dir)
    verify_seconds = time.perf_counter() - start
    outputs = [n for n, t in manifest["tensors"].items() if t["role"] == "graph_output"]
    vectors = sum(int(np.prod(manifest["tensors"][n]["shape"])) for n in outputs)
    return {"block": name or block, "exit_code": code, "report": text, "vectors": vectors,
            "nodes": len(outputs), "sim_seconds": seconds, "verify_seconds": verify_seconds, "golden": golden, "hw": hw}


def run_faults(tools, out: Path, rows: int) -> list:
    """Each deliberately wrong requantize build: verify must exit 1 and its report name the cause."""
    results = []
    for define, expected in FAULTS.items():
        result = run_block(tools, "requantize", out, rows, defines=(define,), name=f"fault_{define[6:].lower()}")
        hint = next((line.strip() for line in result["report"].splitlines() if line.strip().startswith("hint:")), "")
        only_node = "first divergent node: y_half_even" in result["report"] and "(5 match, 1 mismatch)" in result["report"]
        result.update(define=define, hint=hint, caught=result["exit_code"] == 1 and expected in hint and only_node)
        results.append(result)
    return results


def run_cocotb(out: Path, rows: int):
    """The cocotb testbench (cocotb/test_requantize.py); returns (passed, message) or None without cocotb."""
    try:
        from cocotb_tools.runner import get_runner
    except ImportError:
        try:
            from cocotb.runner import get_runner      # cocotb 1.8 / 1.9
        except ImportError:
            return None
    sys.path.insert(0, str(HERE / "cocotb"))
    from cocotb_flow import run_all
    return run_all(get_runner, HERE, out / "cocotb", rows)


def synth_variants() -> list:
    """``(label, module, parameters)``: the requantize DUT as each Requantize node builds it, then the others."""
    requant = [(f"requantize {r}{'' if o == 'saturate' else ' wrap'}", "requantize",
                {"ROUNDING": f'"{r}"', "SATURATE": int(o == "saturate")})
               for r, o in sorted(set(blocks.REQUANT_NODES.values()))]
    return requant + [("i_gelu", "i_gelu", None), ("dot_tile", "dot_tile", None)]


def report_blocks(tools, args) -> bool:
    ok = True
    for block in args.blocks.split(","):
        r = run_block(tools, block, args.out, args.rows)
        ok &= r["exit_code"] == 0
        print(f"{'MATCH   ' if r['exit_code'] == 0 else 'FAILED  '} {block:<11} {r['vectors']:>7} vectors "
              f"({r['nodes']} node(s)): iverilog+vvp {r['sim_seconds']:.1f} s, intref verify exit {r['exit_code']} "
              f"in {r['verify_seconds']:.1f} s")
        if block == "requantize":
            print(f"          exact ties inside int8 per class (x*m sign, quotient parity): "
                  f"{blocks.tie_classes(np.load(r['golden'] / 'feeds' / 'x.npy'))}")
        if r["exit_code"] != 0:
            print(r["report"])
    return ok


def report_faults(tools, args) -> bool:
    ok = True
    for r in run_faults(tools, args.out, args.rows):
        ok &= r["caught"]
        print(f"{'CAUGHT  ' if r['caught'] else 'MISSED  '} -D{r['define']:<14} verify exit {r['exit_code']}; "
              f"{r['hint'] or '(no hint)'}")
    return ok


def report_synthesis() -> bool:
    yosys = shutil.which("yosys")
    if yosys is None:
        print("skipped  synthesis check: yosys not on PATH (apt-get install yosys)")
        return True
    cells = [f"{label} {synthesize(yosys, module, parameters)}" for label, module, parameters in synth_variants()]
    print(f"SYNTH    yosys synth + check -assert, cells: {', '.join(cells)}")
    return True


def report_cocotb(args) -> bool:
    result = run_cocotb(args.out, min(args.rows, COCOTB_ROWS))
    if result is None:
        print("skipped  cocotb: not installed (pip install cocotb)")
        return True
    print(f"{'PASSED  ' if result[0] else 'FAILED  '} cocotb: {result[1]}")
    return result[0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS,
                        help=f"rows of 16 requantize inputs (default {DEFAULT_ROWS}: {DEFAULT_ROWS * 16:,} vectors a node)")
    parser.add_argument("--out", type=Path, default=HERE / "build")
    parser.add_argument("--blocks", default="requantize,gelu,dot")
    parser.add_argument("--no-faults", action="store_true", help="skip the deliberately wrong builds")
    parser.add_argument("--no-cocotb", action="store_true", help="skip the cocotb testbench")
    parser.add_argument("--no-synth", action="store_true", help="skip the yosys synthesis check")
    parser.add_argument("--install", action="store_true", help="apt-get install iverilog when it is missing (root)")
    args = parser.parse_args(argv)
    tools = find_iverilog(args.install)
    if tools is None:
        print(f"run_flow: iverilog / vvp not found on PATH; {INSTALL_HINT}", file=sys.stderr)
        return 2
    ok = report_blocks(tools, args)
    if not args.no_faults and "requantize" in args.blocks.split(","):
        ok &= report_faults(tools, args)
    if not args.no_synth:
        ok &= report_synthesis()
    if not args.no_cocotb:
        ok &= report_cocotb(args)
    print("flow: all expectations held" if ok else "flow: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
