"""`make eval`: bring up a local Tandem, then evaluate every QA set against its release.

The sample product set runs once per release (v4.1, then v4.2, each indexed through the admin
API), the paperless-ngx set against v3.0.5; the customer-voice sets against v4.2 and v3.0.5.
Reports go to `eval-out/<set>-<release>/`, one table over all of them to
`eval-out/summary.md` (`tandem/evaluation/summary.py`).
Run: `python -m tandem.evaluation.make_eval [--sample N | --limit N] [--split held-out]
[--configs rag,hybrid] [--out DIR] [--runs paperless-ngx-v3.0.5,...]`.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from tandem.api_client import TandemClient
from tandem.errors import TandemError
from tandem.evaluation.qa import SPLITS, load_qa, stratified_sample
from tandem.evaluation.run import DEFAULT_CONFIGS, run_eval
from tandem.evaluation.summary import write_summary
from tandem.settings import PROJECT_ROOT

PAPERLESS = PROJECT_ROOT.parent / "shared" / "corpora" / "paperless-ngx"
RUNS = [  # (QA file, release, docs folder)
    ("sample-product", "v4.1", PROJECT_ROOT / "corpus" / "v4.1"),
    ("sample-product", "v4.2", PROJECT_ROOT / "corpus" / "v4.2"),
    ("paperless-ngx", "v3.0.5", PAPERLESS / "v3.0.5"),
    # written the way customers write (long, their own words): eval/*-customer.jsonl
    ("sample-product-customer", "v4.2", PROJECT_ROOT / "corpus" / "v4.2"),
    ("paperless-ngx-customer", "v3.0.5", PAPERLESS / "v3.0.5"),
]


def run_name(name: str, release: str) -> str:
    """A run's name: its report folder, its `--runs` name (summary.py reads it back)."""
    return f"{name}-{release}"


def run_names() -> list[str]:
    return [run_name(name, release) for name, release, _ in RUNS]


def chosen_runs(text: str) -> list[tuple[str, str, Path]]:
    """The runs `--runs` names, in RUNS order; an unknown name exits with the known ones."""
    wanted = {name.strip() for name in text.split(",") if name.strip()}
    unknown = wanted - set(run_names())
    if unknown or not wanted:
        named = ", ".join(sorted(unknown)) or "(none given)"
        raise SystemExit(f"--runs: unknown {named}; use {', '.join(run_names())}")
    return [run for run in RUNS if run_name(run[0], run[1]) in wanted]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(data_dir: Path, port: int, admin_key: str, chat_key: str) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        TANDEM_DATA_DIR=str(data_dir),
        TANDEM_PORT=str(port),
        TANDEM_VLLM__PORT=str(_free_port()),
        TANDEM_API_KEYS=chat_key,
        TANDEM_ADMIN_KEYS=admin_key,
        TANDEM_CORPUS=str(RUNS[0][2]),
        TANDEM_CORPUS_RELEASE=RUNS[0][1],
        HF_HUB_OFFLINE="1",
        TANDEM_INDEX_ROOTS=f"{PROJECT_ROOT / 'corpus'},{PAPERLESS}",
        TANDEM_RATE_LIMIT_PER_MINUTE="100000",
    )
    log = (data_dir / "up.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "tandem.cli", "up"], env=env, stdout=log, stderr=subprocess.STDOUT
    )


def _wait_ready(api: TandemClient, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"tandem up exited ({process.returncode}); see its up.log")
        if api.ready():
            return
        time.sleep(1)
    raise SystemExit("tandem up was not ready after 900 s")


def _index(api: TandemClient, folder: Path, release: str) -> None:
    """Serve `release` (indexed from `folder` through the admin API unless it already serves)."""
    try:
        if api.index_overview()["serving"]["release"] == release:
            return
        job = api.wait_for_job(api.start_index(str(folder), release), poll_s=2)
    except TandemError as error:
        raise SystemExit(f"indexing {release}: {error}") from error
    if job["status"] == "failed":
        raise SystemExit(f"indexing {release} failed: {job['error']}")


def _qa_subset(name: str, release: str, args: argparse.Namespace, tmp: Path) -> Path:
    """The set's questions for `release`: all, the first `--limit`, or a `--sample` stratified
    by kind (answerable, follow-up, unanswerable; seeded, so every run picks the same ones)."""
    source = PROJECT_ROOT / "eval" / f"{name}.jsonl"
    lines = source.read_text(encoding="utf-8").splitlines()
    items = [i for i in load_qa(source) if i.release in (None, release)]
    if args.split:  # items without a split (the short sets) stay
        items = [i for i in items if i.split in (None, args.split)]
    if args.sample is not None:
        items = stratified_sample(items, args.sample, seed=args.seed)
    items = items[: args.limit]
    kinds = Counter(i.kind for i in items)
    kinds_text = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    print(f"{name} {release}: {len(items)} questions ({kinds_text})")
    path = tmp / f"{run_name(name, release)}.jsonl"
    path.write_text("".join(lines[i.line - 1] + "\n" for i in items), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "eval-out")
    parser.add_argument("--limit", type=int, default=None, help="the first N questions per run")
    parser.add_argument(
        "--sample", type=int, default=None, help="N questions per run, stratified by kind"
    )
    parser.add_argument("--seed", type=int, default=0, help="the --sample seed")
    parser.add_argument(
        "--split", choices=SPLITS, default=None, help="only the items of this split"
    )
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help="comma-separated configurations")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="questions in flight (latency is then under load)",
    )
    parser.add_argument(
        "--runs",
        default=",".join(run_names()),
        help="comma-separated runs to make (default: all of them)",
    )
    args = parser.parse_args()
    runs = chosen_runs(args.runs)
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="tandem-eval-"))
    port, admin_key, chat_key = _free_port(), secrets.token_hex(8), secrets.token_hex(8)
    url = f"http://127.0.0.1:{port}"
    process = _start(tmp, port, admin_key, chat_key)
    print(f"tandem up on {url}; its log: {tmp / 'up.log'}")
    try:
        with TandemClient(url, admin_key) as admin:
            _wait_ready(admin, process)
            for name, release, folder in runs:
                _index(admin, folder, release)
                result = run_eval(
                    url,
                    chat_key,
                    _qa_subset(name, release, args, tmp),
                    args.out / run_name(name, release),
                    configs=args.configs,
                    concurrency=args.concurrency,
                )
                print(f"{name} {release}: report in {result.files[0].parent}")
        print(f"all runs: {write_summary(args.out)}")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)


if __name__ == "__main__":
    main()
