"""COMPASS's own torch encoder, loaded for the parity fixture and the speed benchmark.

Runs only in a benchmark-only venv that has torch and ``immuno-compass==2.5.3`` (installed
``--no-deps``; see docs/compass.md), never in the project's venv. Importing the ``compass``
package runs its ``__init__``, which pulls wandb, gseapy, plotly and more; this module
instead registers empty parent packages pointing at the installed files and imports only
COMPASS's encoder, embedder and scaler modules, unchanged (``torchvision.ops.MLP``, imported
by the encoder module for another class, is stubbed).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types


def compass_dir() -> str:
    stub = sys.modules.get("compass")
    if stub is not None and getattr(stub, "__spec__", None) is None:
        return stub.__path__[0]
    spec = importlib.util.find_spec("compass")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("immuno-compass is not installed in this interpreter "
                 "(pip install --no-deps immuno-compass==2.5.3)")
    return list(spec.submodule_search_locations)[0]


def _stub_package(name, path):
    mod = types.ModuleType(name)
    mod.__path__ = [path]
    sys.modules[name] = mod


def import_reference():
    """``(TransformerEncoder, Datascaler, distilled_path)`` of the installed immuno-compass."""
    root = compass_dir()
    if "torchvision" not in sys.modules:
        tv = types.ModuleType("torchvision")
        tv_ops = types.ModuleType("torchvision.ops")
        tv_ops.MLP = None
        tv.ops = tv_ops
        sys.modules["torchvision"] = tv
        sys.modules["torchvision.ops"] = tv_ops
    _stub_package("compass", root)
    _stub_package("compass.model", os.path.join(root, "model"))
    encoder = importlib.import_module("compass.encoder.encoder")
    scaler = importlib.import_module("compass.model.scaler")
    return (encoder.TransformerEncoder, scaler.Datascaler,
            os.path.join(root, "model", "_distilled.pth"))


def build_reference_encoder():
    """COMPASS's encoder as its distilled checkpoint defines it, weights loaded strictly,
    in eval mode on the CPU; and the checkpoint's gene list."""
    import torch

    TransformerEncoder, _, path = import_reference()
    state, genes = torch.load(path, map_location="cpu", weights_only=False)
    model = TransformerEncoder(num_cancer_types=33, encoder_type="performer",
                               input_dim=len(genes), nhead=2, d_model=32, num_layers=1,
                               dropout=0.0, pos_emb="learnable")
    model.load_state_dict(state, strict=True)
    model.eval()
    return model, list(genes)
