"""TF Serving's REST predict API (``POST /v1/models/<name>[/versions/N]:predict``), in Python.

Lets amu-tf answer (and tests check) exactly the bodies TF Serving accepts for the
``serving_default`` signature, whose single input is ``expression`` ``[None, n_genes]``:

- row format: ``{"instances": [[...160 floats...], ...]}`` or
  ``{"instances": [{"expression": [...]}, ...]}``; answered ``{"predictions": [{"probability":
  p, "logits": [a, b], "predicted_class": c}, ...]}`` (one object per instance, because the
  signature has several named outputs);
- columnar format: ``{"inputs": {"expression": [[...], ...]}}`` or ``{"inputs": [[...], ...]}``
  (allowed when the signature has one input); answered ``{"outputs": {"probability": [...],
  "logits": [[...], ...], "predicted_class": [...]}}``.

An optional ``"signature_name"`` must be ``serving_default``.
"""

from __future__ import annotations

import json

import numpy as np

from amu_tf.errors import InputDataError

INPUT_NAME = "expression"
SIGNATURE_KEY = "serving_default"


def parse_request(body, n_genes: int = 160) -> tuple[np.ndarray, str]:
    """``body`` (a dict or JSON text) -> ``(x, form)``: a float32 ``(n, n_genes)`` array and
    ``"instances"`` or ``"inputs"``. Raises :class:`InputDataError` for anything TF Serving
    would refuse (wrong keys, ragged rows, wrong width)."""
    if isinstance(body, (str, bytes)):
        try:
            body = json.loads(body)
        except json.JSONDecodeError as exc:
            raise InputDataError(f"request body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InputDataError("request body must be a JSON object with 'instances' or 'inputs'")
    sig = body.get("signature_name", SIGNATURE_KEY)
    if sig != SIGNATURE_KEY:
        raise InputDataError(f"unknown signature_name {sig!r}; this model serves {SIGNATURE_KEY!r}")
    has_inst, has_inp = "instances" in body, "inputs" in body
    if has_inst == has_inp:
        raise InputDataError("request body must have exactly one of 'instances' (row format) "
                             "or 'inputs' (columnar format)")
    if has_inst:
        form = "instances"
        rows = body["instances"]
        if not isinstance(rows, list) or not rows:
            raise InputDataError("'instances' must be a non-empty list")
        if all(isinstance(r, dict) for r in rows):
            bad = [sorted(r) for r in rows if set(r) != {INPUT_NAME}]
            if bad:
                raise InputDataError(
                    f"each instance object must have exactly the key {INPUT_NAME!r}, got {bad[0]}"
                )
            rows = [r[INPUT_NAME] for r in rows]
        elif any(isinstance(r, dict) for r in rows):
            raise InputDataError("'instances' mixes objects and lists")
    else:
        form = "inputs"
        rows = body["inputs"]
        if isinstance(rows, dict):
            if set(rows) != {INPUT_NAME}:
                raise InputDataError(
                    f"'inputs' must have exactly the key {INPUT_NAME!r}, got {sorted(rows)}"
                )
            rows = rows[INPUT_NAME]
    x = _to_matrix(rows, n_genes)
    return x, form


def _to_matrix(rows, n_genes: int) -> np.ndarray:
    try:
        x = np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError):
        raise InputDataError(
            f"{INPUT_NAME!r} must be a list of rows of {n_genes} numbers (ragged or non-numeric "
            "rows given)"
        ) from None
    if x.ndim == 1 and x.shape[0] == n_genes:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != n_genes:
        raise InputDataError(
            f"{INPUT_NAME!r} must have shape [batch, {n_genes}], got {list(x.shape)}"
        )
    return x


def format_response(outputs: dict, form: str) -> dict:
    """Signature outputs (name -> array, batch first) -> the JSON TF Serving returns."""
    cols = {k: np.asarray(v).tolist() for k, v in sorted(outputs.items())}
    if form == "inputs":
        return {"outputs": cols}
    if form != "instances":
        raise ValueError(f"unknown request form {form!r}")
    n = len(next(iter(cols.values())))
    return {"predictions": [{k: v[i] for k, v in cols.items()} for i in range(n)]}


def answer_request(model, body, n_genes: int = 160) -> dict:
    """Answer a REST predict body as TF Serving would, through ``model``: an
    :class:`~amu_tf.serving.ExportedModel` (its input checks give one-line errors) or a
    loaded ``serving_default`` concrete function."""
    if hasattr(model, "predict_array"):
        x, form = parse_request(body, n_genes=model.n_genes)
        return format_response(model.predict_array(x), form)
    import tensorflow as tf

    x, form = parse_request(body, n_genes=n_genes)
    out = model(**{INPUT_NAME: tf.constant(x)})
    return format_response({k: v.numpy() for k, v in out.items()}, form)
