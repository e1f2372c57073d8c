"""One signature of a SavedModel loaded in a TF1 session -> an ONNX model (tf2onnx).

Imports TensorFlow: only the export child (``control_plane.converter.export``) imports this module.

Every SavedModel is loaded the way TF Serving's C++ loader does, into a ``tf.compat.v1`` session
(TF2 SavedModels too: their signatures are ``StatefulPartitionedCall`` nodes in that graph), and each
signature is cut out of the session's graph:

1. every signature input tensor is replaced by a new placeholder: signature inputs may be any
   tensor (TF Serving's half_plus_two feeds ``x:0``, an Identity of a ParseExample output), and
   cutting there drops what lies before, e.g. a TF 1.0 ParseExample whose scalar placeholder no
   longer passes shape inference on re-import;
2. every output gets an Identity named after its key (grappler does not inline a function whose
   own output is fetched);
3. grappler inlines every function call, as ``convert_variables_to_constants_v2`` does;
4. variables become constants, read from the session;
5. a ParseExample/ParseExampleV2 reading the single string input is cut off too: its dense
   outputs become the ONNX inputs and the runner parses the examples (tfsgate/runtime/tf_example.py);
6. tf2onnx converts the rest; the "Unsupported ops" it logs (it converts with
   ``continue_on_error``) make the signature unconvertible.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import graph_pb2
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2, rewriter_config_pb2
from tensorflow.python.framework import convert_to_constants
from tensorflow.python.grappler import tf_optimizer

from tfsgate.runtime.tf_example import KINDS, DenseFeature

tf1 = tf.compat.v1

PARSE_OPS = frozenset({"ParseExample", "ParseExampleV2"})
INPUT_PREFIX = "tfsgate_input__"
OUTPUT_PREFIX = "tfsgate_output__"
FEATURE_PREFIX = "tfsgate_feature__"
DEFAULT_OPSET = 17


class NotConvertible(Exception):
    """The signature cannot be served by ONNX Runtime; the message says why."""


@dataclass
class ParsePlan:
    """The examples input of a signature that starts with ParseExample."""

    input: str  # signature input key holding the serialized examples
    node: str  # the graph's ParseExample node (named in parse errors)
    features: list[DenseFeature]

    def to_json(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "node": self.node,
            "features": [f.to_json() for f in self.features],
        }


@dataclass
class SignaturePlan:
    """What feeds the ONNX model and what it returns, in the signature's own key names."""

    name: str
    inputs: dict[str, tf.Tensor]  # signature key -> tensor in the session graph
    outputs: dict[str, tf.Tensor]
    parse: ParsePlan | None = None
    onnx_inputs: list[str] = field(default_factory=list)  # keys the ONNX model takes
    # What the signature promises clients (Triton's config is built from it); TF 1.0 signatures
    # may declare nothing, and then the ONNX model must take any rank, as the session does.
    declared: dict[str, tf.TensorShape] = field(default_factory=dict)
    declared_outputs: dict[str, tf.TensorShape] = field(default_factory=dict)


@dataclass
class Exported:
    plan: SignaturePlan
    model: Any  # onnx.ModelProto
    external_data: bool
    # Large models: the tensors the model references by file name (tf2onnx's external storage).
    external_files: dict[str, bytes] = field(default_factory=dict)


def load_session(path: str, tags: list[str], config: config_pb2.ConfigProto | None = None) -> Any:
    """(session, MetaGraphDef) of the SavedModel, as TF Serving's loader builds them."""
    graph = tf.Graph()
    session = tf1.Session(graph=graph, config=config)
    with graph.as_default():
        meta_graph = tf1.saved_model.loader.load(session, tags, path)
    return session, meta_graph


def _cut(graph_def: graph_pb2.GraphDef, cuts: dict[str, tuple[str, int, tf.TensorShape]]) -> None:
    """Replace every use of each tensor in ``cuts`` by a new placeholder (name, dtype, shape)."""
    renamed = {}
    for tensor, (name, dtype, shape) in cuts.items():
        node = graph_def.node.add(name=name, op="Placeholder")
        node.attr["dtype"].type = dtype
        node.attr["shape"].shape.CopyFrom(shape.as_proto())
        renamed[tensor] = name
        if tensor.endswith(":0"):
            renamed[tensor[:-2]] = name  # GraphDef inputs name output 0 without ":0"
    for node in graph_def.node:
        for i, source in enumerate(node.input):
            if source in renamed:
                node.input[i] = renamed[source]


def _inline_functions(graph_def: graph_pb2.GraphDef, fetches: list[str]) -> graph_pb2.GraphDef:
    """Grappler with function inlining as ``convert_variables_to_constants_v2`` runs it: no
    small-graph skip, aggressive inlining, control flow kept functional (If/While convert to ONNX,
    Switch/Merge do not)."""
    graph_def = convert_to_constants.disable_lower_using_switch_merge(graph_def)
    for function in graph_def.library.function:
        if "api_implements" in function.attr:
            del function.attr["api_implements"]
    with tf.Graph().as_default():
        meta_graph = tf1.train.export_meta_graph(graph_def=graph_def)
    train_op = meta_graph_pb2.CollectionDef()
    train_op.node_list.value.extend(fetches)
    meta_graph.collection_def["train_op"].CopyFrom(train_op)
    config = config_pb2.ConfigProto()
    rewrite = config.graph_options.rewrite_options
    rewrite.min_graph_nodes = -1
    rewrite.optimizers.extend(["function", "constfold"])
    rewrite.function_optimization = rewriter_config_pb2.RewriterConfig.AGGRESSIVE
    return tf_optimizer.OptimizeGraph(config, meta_graph)


def _node_name(source: str) -> str:
    return source.lstrip("^").split(":")[0]


def _constant(nodes: dict[str, Any], source: str) -> np.ndarray:
    node = nodes[_node_name(source)]
    while node.op == "Identity":
        node = nodes[_node_name(node.input[0])]
    if node.op != "Const":
        raise NotConvertible(f"ParseExample argument {source} is not a constant ({node.op})")
    return tf.make_ndarray(node.attr["value"].tensor)


def _parse_features(graph_def: graph_pb2.GraphDef, node: Any) -> list[tuple[DenseFeature, str]]:
    """(feature, output tensor) for every dense feature of a ParseExample(V2) node."""
    nodes = {n.name: n for n in graph_def.node}
    args = [a for a in node.input if not a.startswith("^")]
    if node.op == "ParseExample":
        sparse, dense = node.attr["Nsparse"].i, node.attr["Ndense"].i
        if sparse:
            raise NotConvertible(f"{node.name} parses {sparse} sparse features")
        keys = [_constant(nodes, args[2 + i]).reshape(-1)[0] for i in range(dense)]
        defaults = args[2 + dense : 2 + 2 * dense]
    else:
        if node.attr["num_sparse"].i or node.attr["ragged_value_types"].list.type:
            raise NotConvertible(f"{node.name} parses sparse or ragged features")
        keys = list(_constant(nodes, args[3]).reshape(-1))
        dense = len(keys)
        defaults = args[5 : 5 + dense]
    found = []
    for i in range(dense):
        dtype = tf.as_dtype(node.attr["Tdense"].list.type[i]).name
        if dtype not in KINDS:
            raise NotConvertible(f"{node.name}: feature dtype {dtype}")
        shape = tuple(int(d.size) for d in node.attr["dense_shapes"].list.shape[i].dim)
        if any(d < 0 for d in shape):
            raise NotConvertible(f"{node.name}: variable-length feature {keys[i]!r}")
        default = _constant(nodes, defaults[i])
        key = keys[i].decode() if isinstance(keys[i], bytes) else str(keys[i])
        values = None if default.size == 0 else _json_values(default)
        output = f"{node.name}:{i}" if i else node.name
        found.append((DenseFeature(key, dtype, shape, values), output))
    return found


def _json_values(array: np.ndarray) -> Any:
    if array.dtype.kind == "O":
        return [v.decode("utf-8", "surrogateescape") for v in array.reshape(-1)]
    return array.reshape(-1).tolist()


def _split_parse_example(graph_def: graph_pb2.GraphDef, plan: SignaturePlan) -> graph_pb2.GraphDef:
    """When the single string input feeds exactly one ParseExample, cut after it."""
    if len(plan.inputs) != 1:
        return graph_def
    key, tensor = next(iter(plan.inputs.items()))
    if tensor.dtype != tf.string:
        return graph_def
    aliases = {INPUT_PREFIX + key}
    changed = True
    while changed:  # Identity chains left by inlining
        changed = False
        for node in graph_def.node:
            if (
                node.op == "Identity"
                and node.name not in aliases
                and node.input
                and _node_name(node.input[0]) in aliases
            ):
                aliases.add(node.name)
                changed = True
    users = [
        n
        for n in graph_def.node
        if n.op != "Identity" and any(_node_name(i) in aliases for i in n.input)
    ]
    parsers = [n for n in users if n.op in PARSE_OPS]
    if not parsers:
        return graph_def
    if len(users) != 1:
        raise NotConvertible(
            f"the serialized examples feed {sorted(n.op for n in users)}, not only ParseExample"
        )
    node = parsers[0]
    features = _parse_features(graph_def, node)
    _cut(
        graph_def,
        {
            output: (
                FEATURE_PREFIX + feature.key,
                tf.as_dtype(feature.dtype).as_datatype_enum,
                tf.TensorShape([None, *feature.shape]),
            )
            for feature, output in features
        },
    )
    outputs = [OUTPUT_PREFIX + k for k in plan.outputs]
    graph_def = tf1.graph_util.extract_sub_graph(graph_def, outputs)
    present = {n.name for n in graph_def.node}
    if INPUT_PREFIX + key in present:
        raise NotConvertible("the outputs use the serialized examples beyond ParseExample")
    plan.parse = ParsePlan(key, node.name, [f for f, _ in features])
    plan.onnx_inputs = [f.key for f, _ in features if FEATURE_PREFIX + f.key in present]
    return graph_def


def _declared_shape(info: Any) -> tf.TensorShape:
    if not info.HasField("tensor_shape") or info.tensor_shape.unknown_rank:
        return tf.TensorShape(None)
    return tf.TensorShape([None if d.size < 0 else d.size for d in info.tensor_shape.dim])


@contextlib.contextmanager
def _tensor_protos_over_2gb() -> Iterator[None]:
    """TensorFlow refuses to build a TensorProto above 2 GB ("Cannot create a tensor proto whose
    content is larger than 2GB"), though the GraphDef only has to live in memory until tf2onnx
    moves its big constants out. The same workaround as tf2onnx's own large-model loader: build
    such protos directly, for the duration of the freeze."""
    from tensorflow.core.framework import tensor_pb2
    from tensorflow.python.framework import tensor_shape, tensor_util

    original = tensor_util.make_tensor_proto

    def make_tensor_proto(values: Any, dtype: Any = None, shape: Any = None, *args: Any) -> Any:
        try:
            return original(values, dtype, shape, *args)
        except ValueError:
            array = np.asarray(values)
            proto = tensor_pb2.TensorProto(
                dtype=dtype if dtype is not None else tf.as_dtype(array.dtype).as_datatype_enum,
                tensor_shape=tensor_shape.as_shape(array.shape).as_proto(),
            )
            proto.tensor_content = array.tobytes()
            return proto

    tensor_util.make_tensor_proto = make_tensor_proto
    try:
        yield
    finally:
        tensor_util.make_tensor_proto = original


def signature_graph(
    session: Any, meta_graph: Any, name: str, large_model: bool = False
) -> tuple[Any, SignaturePlan]:
    """The frozen, inlined GraphDef computing one signature, and its plan."""
    signature = meta_graph.signature_def[name]
    graph = session.graph
    plan = SignaturePlan(
        name=name,
        inputs={k: graph.get_tensor_by_name(v.name) for k, v in signature.inputs.items()},
        outputs={k: graph.get_tensor_by_name(v.name) for k, v in signature.outputs.items()},
    )
    plan.onnx_inputs = sorted(plan.inputs)
    plan.declared = {k: _declared_shape(v) for k, v in signature.inputs.items()}
    plan.declared_outputs = {k: _declared_shape(v) for k, v in signature.outputs.items()}
    graph_def = graph.as_graph_def()
    for node in graph_def.node:
        node.device = ""
        # Shapes recorded at export time (TF 1.x graphs carry them) would pin the ONNX inputs
        # to one rank where the signature promises any.
        if "_output_shapes" in node.attr:
            del node.attr["_output_shapes"]
    _cut(
        graph_def,
        {
            t.name: (INPUT_PREFIX + k, t.dtype.as_datatype_enum, plan.declared[k])
            for k, t in plan.inputs.items()
        },
    )
    for key, tensor in plan.outputs.items():
        node = graph_def.node.add(name=OUTPUT_PREFIX + key, op="Identity", input=[tensor.name])
        node.attr["T"].type = tensor.dtype.as_datatype_enum
    outputs = [OUTPUT_PREFIX + k for k in plan.outputs]
    graph_def = tf1.graph_util.extract_sub_graph(graph_def, outputs)
    fetches = [INPUT_PREFIX + k + ":0" for k in plan.inputs] + [o + ":0" for o in outputs]
    graph_def = _inline_functions(graph_def, fetches)
    with _tensor_protos_over_2gb() if large_model else contextlib.nullcontext():
        graph_def = tf1.graph_util.convert_variables_to_constants(session, graph_def, outputs)
    graph_def = _split_parse_example(graph_def, plan)
    return graph_def, plan


class _ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def to_onnx(
    graph_def: Any, plan: SignaturePlan, opset: int = DEFAULT_OPSET, large_model: bool = False
) -> Exported:
    """tf2onnx over the cut graph; ONNX inputs and outputs are named by the signature's keys."""
    import tf2onnx

    prefix = FEATURE_PREFIX if plan.parse else INPUT_PREFIX
    inputs = [prefix + k + ":0" for k in plan.onnx_inputs]
    outputs = [OUTPUT_PREFIX + k + ":0" for k in plan.outputs]
    rename = {prefix + k + ":0": k for k in plan.onnx_inputs}
    rename.update({OUTPUT_PREFIX + k + ":0": k for k in plan.outputs})
    errors = _ErrorLog()
    logger = logging.getLogger("tf2onnx")
    logger.addHandler(errors)
    try:
        with tf.Graph().as_default():
            if large_model:
                # from_graph_def imports the GraphDef whole first, which TensorFlow refuses
                # above 2 GB; tf2onnx's conversion proper moves the big constants out before it
                # imports (the graph is already inlined and frozen here).
                model, storage = tf2onnx.convert._convert_common(
                    graph_def,
                    name=plan.name,
                    large_model=True,
                    opset=opset,
                    input_names=inputs,
                    output_names=outputs,
                    tensors_to_rename=rename,
                    continue_on_error=True,
                )
            else:
                storage = None
                model, _ = tf2onnx.convert.from_graph_def(
                    graph_def,
                    input_names=inputs,
                    output_names=outputs,
                    opset=opset,
                    tensors_to_rename=rename,
                )
    except Exception as exc:  # noqa: BLE001 - any tf2onnx failure means "not convertible"
        raise NotConvertible(f"tf2onnx failed: {type(exc).__name__}: {exc}") from exc
    finally:
        logger.removeHandler(errors)
    unsupported = [m for m in errors.messages if m.startswith("Unsupported ops")]
    if unsupported:
        raise NotConvertible(f"tf2onnx: {unsupported[-1]}")
    _unknown_ranks(model, plan)
    files = dict(storage.name_to_tensor_data) if storage is not None else {}
    return Exported(plan, model, large_model, files)


def _unknown_ranks(model: Any, plan: SignaturePlan) -> None:
    """Where the signature declares no shape, the ONNX model declares none either: tf2onnx
    writes an empty (scalar) shape, and ONNX Runtime warns on every call that returns more."""
    unknown = {k for k, v in plan.declared_outputs.items() if v.rank is None}
    if not plan.parse:
        unknown |= {k for k, v in plan.declared.items() if v.rank is None}
    for value in (*model.graph.input, *model.graph.output):
        if value.name in unknown and value.type.HasField("tensor_type"):
            value.type.tensor_type.ClearField("shape")
