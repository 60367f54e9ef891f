"""Opening ONNX models the same way for every plugin: thread limits, optimisation, clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gemwatch.perception.provision import ModelLoadError, ModelMissingError, model_path

if TYPE_CHECKING:
    import onnxruntime as ort


def resolve(user_path: Path | None, provisioned_name: str) -> Path:
    """The user's ONNX file if the config names one, else the provisioned model's file."""
    if user_path is None:
        return model_path(provisioned_name)
    path = Path(user_path).expanduser()
    if not path.is_file():
        raise ModelMissingError(
            f"the ONNX file configured as `path: {user_path}` does not exist; fix the path in "
            f"gemwatch.yml or remove it to use the provisioned {provisioned_name!r} model"
        )
    return path


def open_session(path: Path, threads: int) -> ort.InferenceSession:
    """An onnxruntime CPU session with ``threads`` intra-op threads and one inter-op thread.

    A cameras' process runs several models one after another, so parallelism inside one op is
    what helps; inter-op threads would only fight over the same few cores.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(
            f"{path} is not a loadable ONNX model ({first_line[:300]}). If it is a provisioned "
            "model, run `gemwatch models provision --force` to rebuild it; if it is your own file, "
            "re-export it."
        ) from exc


def check_input(session: ort.InferenceSession, path: Path, rank: int, fixed: dict[int, int]) -> str:
    """The model's single input name, after checking its rank and the fixed dims a plugin needs.

    A user-supplied file with the wrong layout fails here with the contract spelled out, not
    later with an onnxruntime shape error in the middle of the pipeline.
    """
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ModelLoadError(f"{path}: expected one input, the model has {len(inputs)}")
    shape = inputs[0].shape
    wrong = len(shape) != rank or any(
        isinstance(shape[axis], int) and shape[axis] != size for axis, size in fixed.items()
    )
    if wrong:
        wanted = ["?"] * rank
        for axis, size in fixed.items():
            wanted[axis] = str(size)
        raise ModelLoadError(f"{path}: input shape {shape} does not match the plugin's [{', '.join(wanted)}]")
    return str(inputs[0].name)
