"""Convert one tfjs graph model (model.json + .bin shards) to ONNX, once, at provisioning time.

Runs inside the throw-away build venv that ``gemwatch.perception.provision`` creates (with
tensorflow-cpu, tf2onnx and onnx); gemwatch itself never imports TensorFlow. The tfjs graph
JSON is the GraphDef in protobuf JSON form with the weights moved out into binary shards, so
this script puts the weights back into the Const nodes, adds attributes newer TensorFlow
insists on, and hands the GraphDef to tf2onnx.

    python convert_tfjs.py MODEL.json OUT.onnx [--dynamic-hw] [--opset 17] [--output NAME ...]
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np

# tf2onnx 1.17 still calls np.product, which NumPy 2 removed.
if not hasattr(np, "product"):
    np.product = np.prod  # type: ignore[attr-defined]

_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_, "float16": np.float16}
_TF_DTYPE_NAMES = {"float32": "DT_FLOAT", "int32": "DT_INT32", "bool": "DT_BOOL", "int64": "DT_INT64"}


def load_weights(model_json: Path, manifest: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Read every weight from the shards, undoing tfjs' float16/uint8 quantisation."""
    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        blob = b"".join((model_json.parent / p).read_bytes() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            shape = [int(d) for d in spec["shape"]]
            count = int(np.prod(shape)) if shape else 1
            quant = spec.get("quantization")
            value: np.ndarray
            if quant:
                qtype = np.dtype(quant["dtype"])
                raw = np.frombuffer(blob, dtype=qtype, count=count, offset=offset)
                offset += count * qtype.itemsize
                value = raw.astype(np.float32)
                if quant["dtype"] != "float16":
                    value = value * np.float32(quant["scale"]) + np.float32(quant["min"])
                value = value.astype(_DTYPES[spec["dtype"]])
            else:
                dtype = np.dtype(_DTYPES[spec["dtype"]])
                value = np.frombuffer(blob, dtype=dtype, count=count, offset=offset).copy()
                offset += count * dtype.itemsize
            weights[spec["name"]] = value.reshape(shape)
    return weights


_UNFUSED = {
    "_FusedConv2D": "Conv2D",
    "FusedDepthwiseConv2dNative": "DepthwiseConv2dNative",
    "_FusedDepthwiseConv2dNative": "DepthwiseConv2dNative",
}
_CONV_ATTRS = ("T", "strides", "padding", "explicit_paddings", "data_format", "dilations", "use_cudnn_on_gpu")
_ACTIVATIONS = ("Relu", "Relu6", "Elu", "Sigmoid", "Tanh")


def unfuse(node: dict[str, Any]) -> list[dict[str, Any]]:
    """Split a tfjs fused conv (conv + BiasAdd + activation) back into plain TensorFlow ops.

    tfjs writes ``FusedDepthwiseConv2dNative``, which no TensorFlow build registers, and its
    ``_FusedConv2D`` lacks attributes newer TensorFlow requires; plain ops convert everywhere.
    The last op keeps the fused node's name so its consumers still find it.
    """
    attr = node.get("attr", {})
    fused = [base64.b64decode(s).decode() for s in attr.get("fused_ops", {}).get("list", {}).get("s", [])]
    if not fused or fused[0] != "BiasAdd" or any(op not in _ACTIVATIONS for op in fused[1:]):
        raise SystemExit(f"{node['name']}: unsupported fused ops {fused}")
    name = node["name"]
    data, kernel, bias = node["input"][:3]
    dtype = attr.get("T", {"type": "DT_FLOAT"})
    conv_attr = {k: v for k, v in attr.items() if k in _CONV_ATTRS}
    if node["op"] != "_FusedConv2D":
        conv_attr.pop("explicit_paddings", None)
        conv_attr.pop("use_cudnn_on_gpu", None)
    out = [{"name": f"{name}/conv", "op": _UNFUSED[node["op"]], "input": [data, kernel], "attr": conv_attr}]
    bias_attr = {"T": dtype}
    if "data_format" in attr:
        bias_attr["data_format"] = attr["data_format"]
    out.append({"name": f"{name}/bias", "op": "BiasAdd", "input": [f"{name}/conv", bias], "attr": bias_attr})
    for i, act in enumerate(fused[1:]):
        out.append(
            {"name": f"{name}/{act.lower()}{i}", "op": act, "input": [out[-1]["name"]], "attr": {"T": dtype}}
        )
    out[-1]["name"] = name
    return out


def patch_nodes(nodes: list[dict[str, Any]], dynamic_hw: bool) -> list[dict[str, Any]]:
    """Unfuse tfjs' fused convs, add attributes tfjs dropped, optionally free input H and W."""
    patched: list[dict[str, Any]] = []
    for node in nodes:
        attr = node.setdefault("attr", {})
        if node["op"] in _UNFUSED:
            patched.extend(unfuse(node))
            continue
        if node["op"] == "TopKV2" and "index_type" not in attr:
            attr["index_type"] = {"type": "DT_INT32"}
        if node["op"] == "Placeholder" and dynamic_hw:
            dims = attr["shape"]["shape"]["dim"]
            dims[1] = {"size": "-1"}
            dims[2] = {"size": "-1"}
        patched.append(node)
    return patched


def build_graph_def(
    model_json: Path, dynamic_hw: bool, keep: list[str] | None = None
) -> tuple[Any, list[str], list[str]]:
    import tensorflow as tf
    from google.protobuf import json_format

    spec = json.loads(model_json.read_text())
    topology = copy.deepcopy(spec["modelTopology"])
    topology["node"] = patch_nodes(topology["node"], dynamic_hw)
    weights = load_weights(model_json, spec["weightsManifest"])
    graph_def = json_format.ParseDict(topology, tf.compat.v1.GraphDef(), ignore_unknown_fields=True)
    for node in graph_def.node:
        if node.op == "Const" and node.name in weights:
            # tfjs stores int64 constants as int32; give each back the dtype its node declares.
            value = weights.pop(node.name).astype(tf.dtypes.as_dtype(node.attr["dtype"].type).as_numpy_dtype)
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
    if weights:
        raise SystemExit(f"weights without a Const node: {sorted(weights)[:5]}")
    signature = spec["signature"]
    inputs = [_tensor_name(v["name"]) for v in signature["inputs"].values()]
    outputs = [_tensor_name(v["name"]) for v in signature["outputs"].values()]
    if keep:
        outputs = [o for o in outputs if o in {_tensor_name(k) for k in keep}]
    return graph_def, inputs, sorted(outputs)


def _tensor_name(name: str) -> str:
    return name if ":" in name else f"{name}:0"


def convert(
    model_json: Path, out: Path, *, dynamic_hw: bool, opset: int, keep: list[str] | None = None
) -> None:
    import tensorflow as tf
    import tf2onnx

    tf.random.set_seed(0)
    graph_def, inputs, outputs = build_graph_def(model_json, dynamic_hw, keep)
    model_proto, _ = tf2onnx.convert.from_graph_def(
        graph_def, input_names=inputs, output_names=outputs, opset=opset
    )
    canonicalise(model_proto)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(model_proto.SerializeToString())
    import onnx

    onnx.checker.check_model(str(tmp))
    tmp.replace(out)
    print(json.dumps({"model": model_json.name, "inputs": inputs, "outputs": outputs, "out": str(out)}))


def canonicalise(model: Any) -> None:
    """Make a rerun produce the same bytes, so the manifest can pin each file's sha256.

    tf2onnx merges duplicate constants and nodes, but which copy's name survives (and the
    counters in the names it makes up) vary from run to run. Naming every initializer after
    its content, every node and intermediate tensor after its position, and dropping the
    converter's version stamp removes that noise without changing the graph.
    """
    import hashlib

    renames: dict[str, str] = {}
    seen: dict[str, int] = {}
    for init in model.graph.initializer:
        unnamed = type(init)()
        unnamed.CopyFrom(init)
        unnamed.ClearField("name")
        digest = hashlib.sha256(unnamed.SerializeToString(deterministic=True))
        base = f"w_{digest.hexdigest()[:16]}"
        seen[base] = seen.get(base, 0) + 1
        renames[init.name] = base if seen[base] == 1 else f"{base}_{seen[base]}"
    keep = {v.name for v in model.graph.input} | {v.name for v in model.graph.output}
    for index, node in enumerate(model.graph.node):
        node.name = f"{node.op_type}_{index}"
        for k, name in enumerate(node.output):
            if name and name not in keep:
                renames[name] = f"{node.name}:{k}"
                node.output[k] = renames[name]
    for init in model.graph.initializer:
        init.name = renames[init.name]
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if name in renames:
                node.input[i] = renames[name]
    del model.graph.value_info[:]
    ordered = sorted(model.graph.initializer, key=lambda t: t.name)
    del model.graph.initializer[:]
    model.graph.initializer.extend(ordered)
    model.producer_version = ""
    del model.metadata_props[:]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_json", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--dynamic-hw", action="store_true", help="make the NHWC input's H and W dynamic")
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--output", action="append", help="keep only these outputs (repeatable)")
    args = parser.parse_args(argv)
    convert(args.model_json, args.out, dynamic_hw=args.dynamic_hw, opset=args.opset, keep=args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
