"""The Lambda package layout (without the network step): our code, no moto-only modules,
and dist-info that makes the provider and state entry points resolve inside the zip."""

from __future__ import annotations

import importlib.util
from importlib.metadata import distributions
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]


def _builder() -> Any:
    spec = importlib.util.spec_from_file_location(
        "build_lambda", ROOT / "adapters" / "aws" / "build_lambda.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_package_tree_has_core_adapter_and_entry_points(tmp_path: Path) -> None:
    build = _builder()
    build._copy_tree(ROOT / "src" / "cloudcircuit", tmp_path / "cloudcircuit")
    build._copy_tree(
        ROOT / "adapters" / "aws" / "src" / "cloudcircuit_aws",
        tmp_path / "cloudcircuit_aws",
        skip=build.EXCLUDED_AWS_MODULES,
    )
    build._dist_info(tmp_path, "cloudcircuit")
    build._dist_info(
        tmp_path,
        "cloudcircuit-aws",
        "[cloudcircuit.providers]\naws = cloudcircuit_aws.provider:AwsProvider\n\n"
        "[cloudcircuit.state]\ndynamodb = cloudcircuit_aws.state:open_dynamodb_state\n",
    )
    assert (tmp_path / "cloudcircuit_aws" / "handler.py").is_file()
    assert not (tmp_path / "cloudcircuit_aws" / "demo.py").exists()
    assert not list(tmp_path.rglob("__pycache__"))
    found = {
        (ep.group, ep.name, ep.value)
        for dist in distributions(path=[str(tmp_path)])
        for ep in dist.entry_points
    }
    assert ("cloudcircuit.providers", "aws", "cloudcircuit_aws.provider:AwsProvider") in found
    assert ("cloudcircuit.state", "dynamodb", "cloudcircuit_aws.state:open_dynamodb_state") in found
    # nothing left behind that only moto or the CLI needs
    assert "moto" not in (tmp_path / "cloudcircuit_aws" / "handler.py").read_text()
