"""TF Serving REST JSON: predict decode/encode, fitting to Triton shapes, examples, status, metadata."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import orjson
import pytest

from gateway import shapes
from gateway.codecs import json_codec as jc
from tests.support.signatures import spec
from tfsgate.core.signatures import SignatureSpec
from tfsgate.core.status import Code, ServingError

PREDICT = "tensorflow/serving/predict"
TESTDATA = Path("/work/shared/testdata/tfserving")


def sig(**inputs: Any) -> SignatureSpec:
    return SignatureSpec("serving_default", PREDICT, inputs, {"y": spec("y")})


ONE_FLOAT = sig(x=spec("x"))
TWO_INPUTS = sig(a=spec("a", "DT_FLOAT", (-1,)), b=spec("b", "DT_STRING", (-1,)))


def _error(body: bytes | str, signature: SignatureSpec = ONE_FLOAT) -> ServingError:
    with pytest.raises(ServingError) as caught:
        jc.decode_predict_request(body, signature)
    return caught.value


# --------------------------------------------------------------------------- predict decode


@pytest.mark.parametrize(
    ("body", "signature", "expected", "row"),
    [
        ('{"instances": [2.0, 3.0, 4.0]}', ONE_FLOAT, {"x": [2.0, 3.0, 4.0]}, True),
        ('{"instances": [[1], [2]]}', ONE_FLOAT, {"x": [[1.0], [2.0]]}, True),
        ('{"instances": [{"x": [1]}, {"x": [2]}]}', ONE_FLOAT, {"x": [[1.0], [2.0]]}, True),
        ('{"inputs": [[1.5], [2]]}', ONE_FLOAT, {"x": [[1.5], [2.0]]}, False),
        ('{"inputs": 7}', ONE_FLOAT, {"x": 7.0}, False),
        ('{"inputs": {"x": [1]}, "other": 1}', ONE_FLOAT, {"x": [1.0]}, False),
        ('{"inputs": {"x": [1], "ignored": 2}}', ONE_FLOAT, {"x": [1.0]}, False),
        (
            '{"instances": [{"a": 1, "b": "p"}, {"b": {"b64": "cQ=="}, "a": 2.5}]}',
            TWO_INPUTS,
            {"a": [1.0, 2.5], "b": [b"p", b"q"]},
            True,
        ),
        (
            '{"inputs": {"a": [1, 2], "b": ["x", {"b64": "eQ"}]}}',
            TWO_INPUTS,
            {"a": [1.0, 2.0], "b": [b"x", b"y"]},
            False,
        ),
        ('{"instances": [[[]], [[]]]}', ONE_FLOAT, {"x": [[[]], [[]]]}, True),
        ('{"signature_name": "serving_default", "inputs": [NaN]}', ONE_FLOAT, {"x": [None]}, False),
    ],
)
def test_decode_predict(
    body: str, signature: SignatureSpec, expected: dict[str, Any], row: bool
) -> None:
    decoded = jc.decode_predict_request(body.encode(), signature)
    assert decoded.row_format is row
    assert set(decoded.tensors) == set(expected)
    for key, value in expected.items():
        array = decoded.tensors[key]
        assert array.dtype == jc.dtypes.numpy_dtype(signature.inputs[key].dtype)
        if value == [None]:
            assert np.isnan(array).all()
        else:
            assert array.tolist() == value


@pytest.mark.parametrize(
    ("dtype", "values", "np_dtype"),
    [
        ("DT_DOUBLE", [0.1, 2**53 - 1], np.float64),
        ("DT_INT32", [-(2**31), 2**31 - 1], np.int32),
        ("DT_INT64", [-(2**63), 2**63 - 1], np.int64),
        ("DT_UINT32", [0, 2**32 - 1], np.uint32),
        ("DT_UINT64", [0, 2**64 - 1], np.uint64),
        ("DT_INT8", [-128, 127], np.int8),
        ("DT_UINT8", [0, 255], np.uint8),
        ("DT_INT16", [-5, 5], np.int16),
        ("DT_BOOL", [True, False], np.bool_),
        ("DT_STRING", ["caf\u00e9", ""], object),
    ],
)
def test_decode_follows_signature_dtypes(dtype: str, values: list[Any], np_dtype: type) -> None:
    signature = sig(x=spec("x", dtype, (-1,)))
    for body in ({"instances": values}, {"inputs": values}):
        array = jc.decode_predict_request(json.dumps(body).encode(), signature).tensors["x"]
        assert array.dtype == np.dtype(np_dtype)
        expected = [v.encode() if isinstance(v, str) else v for v in values]
        assert array.tolist() == expected


def test_b64_is_standard_base64_and_binary_safe() -> None:
    payload = bytes(range(256))
    body = {"instances": [{"b64": base64.b64encode(payload).decode()}]}
    signature = sig(x=spec("x", "DT_STRING", (-1,)))
    assert jc.decode_predict_request(orjson.dumps(body), signature).tensors["x"][0] == payload
    bad = _error(orjson.dumps({"instances": [{"b64": "-_-_"}]}), signature)
    assert bad.message.endswith("Error: INVALID_ARGUMENT: Unable to base64 decode")


def test_signature_resolver_gets_the_requested_name() -> None:
    asked: list[str] = []

    def resolve(name: str) -> SignatureSpec:
        asked.append(name)
        return ONE_FLOAT

    jc.decode_predict_request(b'{"signature_name": "s2", "inputs": [1]}', resolve)
    jc.decode_predict_request(b'{"inputs": [1]}', resolve)
    assert asked == ["s2", ""]


DOC_ERRORS = [
    (
        '{"instances": [1], "inputs": [1]}',
        'JSON Value: {\n    "instances": [\n        1\n    ],\n    "inputs": [\n        1\n    ]\n} '
        "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist ",
    ),
    ('{"x": 1}', "Missing 'inputs' or 'instances' key"),
    (
        '{"instances": 1}',
        "JSON Value: {\n    \"instances\": 1\n} Excepting 'instances' to be an list/array",
    ),
    ('{"instances": []}', "JSON Value: {\n    \"instances\": []\n} No values in 'instances' array"),
    (
        '{"signature_name": 5, "inputs": 1}',
        'JSON Value: {\n    "signature_name": 5,\n    "inputs": 1\n}'
        " not formatted correctly. 'signature_name' key must be a string value.",
    ),
    ("[1]", "JSON Value: [\n    1\n] Is not object"),
    ("", "JSON Parse error: The document is empty"),
]


@pytest.mark.parametrize(("body", "message"), DOC_ERRORS)
def test_document_errors(body: str, message: str) -> None:
    err = _error(body.encode())
    assert (err.code, err.message) == (Code.INVALID_ARGUMENT, message)


VALUE_ERRORS = [
    (
        '{"instances": ["a"]}',
        ONE_FLOAT,
        "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "
        'JSON Value: "a" Type: String is not of expected type: float',
    ),
    (
        '{"inputs": [1, true]}',
        ONE_FLOAT,
        "JSON Value: true Type: True is not of expected type: float",
    ),
    ('{"inputs": [null]}', ONE_FLOAT, "JSON Value: null Type: Null is not of expected type: float"),
    (
        '{"inputs": [{"a": 1}]}',
        ONE_FLOAT,
        'JSON Value: {\n    "a": 1\n} Type: Object is not of expected type: float',
    ),
    (
        '{"inputs": [16777216]}',
        ONE_FLOAT,
        "Cannot convert JSON value: 16777216 to float without loss of precision.",
    ),
    (
        '{"inputs": [1e39]}',
        ONE_FLOAT,
        "Cannot convert JSON value: 1e+39 to float without loss of precision.",
    ),
    (
        '{"inputs": [1.5]}',
        sig(x=spec("x", "DT_INT32", (-1,))),
        "JSON Value: 1.5 Type: Number is not of expected type: int32",
    ),
    (
        '{"inputs": [2147483648]}',
        sig(x=spec("x", "DT_INT32", (-1,))),
        "JSON Value: 2147483648 Type: Number is not of expected type: int32",
    ),
    (
        '{"inputs": [-1]}',
        sig(x=spec("x", "DT_UINT64", (-1,))),
        "JSON Value: -1 Type: Number is not of expected type: uint64",
    ),
    (
        '{"inputs": [1]}',
        sig(x=spec("x", "DT_BOOL", (-1,))),
        "JSON Value: 1 Type: Number is not of expected type: bool",
    ),
    (
        '{"inputs": [1]}',
        sig(x=spec("x", "DT_STRING", (-1,))),
        "JSON Value: 1 Type: Number is not of expected type: string",
    ),
    (
        '{"inputs": [{"b64": "YQ==", "x": 1}]}',
        sig(x=spec("x", "DT_STRING", (-1,))),
        'JSON Value: {\n    "b64": "YQ==",\n    "x": 1\n} not formatted correctly for base64 data',
    ),
    (
        '{"inputs": [[1, 2], 3]}',
        ONE_FLOAT,
        "JSON Value: 3 found at incorrect level: 2 in the JSON DOM. Expected at level: 2",
    ),
    (
        '{"inputs": [[1, 2], [3]]}',
        ONE_FLOAT,
        "Encountered list at unexpected size: 1 at level: 1 expected size: 2",
    ),
    ('{"inputs": [1, [2]]}', ONE_FLOAT, "Encountered list at unexpected level: 1 expected < 1"),
    (
        '{"instances": [[1], [2, 3]]}',
        ONE_FLOAT,
        "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: "
        "Expecting tensor size: 1 but got: 2",
    ),
    (
        '{"instances": [[[1, 2]], [[1], [2]]]}',
        ONE_FLOAT,
        "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: "
        "Expecting shape [1,2] but got: [2,1]",
    ),
    (
        '{"instances": [1, {"x": 1}]}',
        ONE_FLOAT,
        "Expecting value/list but got object at item 1 of input list",
    ),
    (
        '{"instances": [{"x": 1}, 2]}',
        ONE_FLOAT,
        "Expecting object but got list at item 1 of input list",
    ),
    (
        '{"instances": [{"x": 1, "z": 2}]}',
        ONE_FLOAT,
        "Failed to process element: 0 key: z of 'instances' list. Error: INVALID_ARGUMENT: "
        "JSON object: does not have named input: z",
    ),
    (
        '{"instances": [{"a": 1}]}',
        TWO_INPUTS,
        "Failed to process element: 0 of 'instances' list. JSON object: {\n    \"a\": 1\n} "
        "keys must be equal to: a,b",
    ),
    (
        '{"instances": [1, 2]}',
        TWO_INPUTS,
        "instances is a plain list, but expecting list of objects as multiple input tensors "
        "required as per tensorinfo_map",
    ),
    (
        '{"inputs": [1, 2]}',
        TWO_INPUTS,
        "inputs is a plain value/list, but expecting an object as multiple input tensors "
        "required as per tensorinfo_map",
    ),
    ('{"inputs": {"a": [1]}}', TWO_INPUTS, "Missing named input: b in 'inputs' object."),
    ('{"inputs": {"y": [1]}}', ONE_FLOAT, "Missing named input: x in 'inputs' object."),
    (
        '{"instances": [{"b64": "YQ=="}]}',
        TWO_INPUTS,
        "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "
        'JSON Value: {\n    "b64": "YQ=="\n} Type: Object is not of expected type: float',
    ),
]


@pytest.mark.parametrize(("body", "signature", "message"), VALUE_ERRORS)
def test_value_errors_match_tf_serving(body: str, signature: SignatureSpec, message: str) -> None:
    err = _error(body.encode(), signature)
    assert (err.code, err.message) == (Code.INVALID_ARGUMENT, message)


def test_the_first_bad_value_is_reported_in_document_order() -> None:
    err = _error(b'{"inputs": [[1, 16777217], ["a", 2]]}')
    assert err.message == "Cannot convert JSON value: 16777217 to float without loss of precision."


def test_unsupported_json_types_are_unimplemented() -> None:
    err = _error(b'{"inputs": [1.0]}', sig(x=spec("x", "DT_HALF", (-1,))))
    assert (err.code, err.message) == (
        Code.UNIMPLEMENTED,
        "Conversion of JSON Value: 1.0 to type: half",
    )


def test_signature_without_inputs() -> None:
    err = _error(b'{"inputs": [1]}', SignatureSpec("s", PREDICT, {}, {}))
    assert err.message == "Failed to get input map for signature: DEFAULT"


def test_large_row_request_is_bulk_decoded() -> None:
    rows = np.random.default_rng(1).standard_normal((512, 64)).astype(np.float32)
    body = orjson.dumps({"instances": rows.tolist()})
    array = jc.decode_predict_request(body, sig(x=spec("x", "DT_FLOAT", (-1, 64)))).tensors["x"]
    np.testing.assert_array_equal(array, rows)


# --------------------------------------------------------------------------- fitting to Triton


@pytest.mark.parametrize(
    ("shape", "want", "fitted"),
    [
        ((3,), (-1, 1), (3, 1)),
        ((3, 1), (-1, 1), (3, 1)),
        ((2, 4), (-1, 4, 1, 1), (2, 4, 1, 1)),
        ((2, 5), (-1, -1), (2, 5)),
        ((2, 5), None, (2, 5)),
        ((), (-1, 1), (1, 1)),
    ],
)
def test_fit_to_signature(
    shape: tuple[int, ...], want: tuple[int, ...] | None, fitted: tuple[int, ...]
) -> None:
    array = np.zeros(shape, np.float32)
    result = shapes.fit_to_signature(array, spec("x", shape=want))
    assert result.shape == fitted
    added = result.ndim - array.ndim
    assert shapes.unfit_output(result, added).shape == shape


@pytest.mark.parametrize(
    ("shape", "want"), [((3, 2), (-1, 1)), ((3,), (-1, 2)), ((2, 2, 2), (-1, 2))]
)
def test_fit_to_signature_refuses_what_cannot_match(
    shape: tuple[int, ...], want: tuple[int, ...]
) -> None:
    with pytest.raises(ServingError) as caught:
        shapes.fit_to_signature(np.zeros(shape), spec("x", shape=want))
    assert caught.value.code is Code.INVALID_ARGUMENT


def test_unfit_output_leaves_other_shapes_alone() -> None:
    assert shapes.unfit_output(np.zeros((3, 2)), 1).shape == (3, 2)
    assert shapes.unfit_output(np.zeros((3, 1)), 0).shape == (3, 1)


def test_half_plus_two_row_request_answers_a_flat_list() -> None:
    decoded = jc.decode_predict_request(b'{"instances": [2.0, 3.0, 4.0]}', ONE_FLOAT)
    fitted = shapes.fit_to_signature(decoded.tensors["x"], ONE_FLOAT.inputs["x"])
    y = fitted * np.float32(0.5) + np.float32(2.0)  # what Triton answers: shape [3, 1]
    answer = shapes.unfit_output(y, fitted.ndim - decoded.tensors["x"].ndim)
    assert jc.encode_predict_response({"y": answer}, row_format=True) == (
        b'{"predictions":[3.0,3.5,4.0]}'
    )


# --------------------------------------------------------------------------- predict encode

F32 = np.float32


@pytest.mark.parametrize(
    ("outputs", "row", "expected"),
    [
        ({"y": np.array([[2.5], [3.0]], F32)}, True, '{"predictions":[[2.5],[3.0]]}'),
        ({"y": np.array([[2.5], [3.0]], F32)}, False, '{"outputs":[[2.5],[3.0]]}'),
        ({"y": np.array(1.5, F32)}, False, '{"outputs":1.5}'),
        (
            {"a": np.array([1, 2], np.int64), "b": np.array([[True], [False]])},
            True,
            '{"predictions":[{"a":1,"b":[true]},{"a":2,"b":[false]}]}',
        ),
        (
            {"a": np.array([1, 2], np.int32), "b": np.array([0.1], F32)},
            False,
            '{"outputs":{"a":[1,2],"b":[0.1]}}',
        ),
        (
            {"s": np.array([b"caf\xc3\xa9", b"x"], dtype=object)},
            True,
            '{"predictions":["café","x"]}',
        ),
        (
            {"s_bytes": np.array([b"\x00\xff"], dtype=object)},
            True,
            '{"predictions":[{"b64":"AP8="}]}',
        ),
        ({"s_bytes": np.array([[b"a"]], dtype=object)}, False, '{"outputs":[[{"b64":"YQ=="}]]}'),
        (
            {"y": np.array([np.nan, np.inf, -np.inf, 1 / 3], F32)},
            False,
            '{"outputs":[NaN,Infinity,-Infinity,0.333333343]}',
        ),
        ({"d": np.array([0.1, 1 / 3])}, False, '{"outputs":[0.1,0.33333333333333331]}'),
        ({"h": np.array([1.5, 0.1], np.float16)}, False, '{"outputs":[1.5,0.0999755859]}'),
        ({"u": np.array([2**64 - 1], np.uint64)}, False, '{"outputs":[18446744073709551615]}'),
        ({"e": np.zeros((2, 0), F32)}, True, '{"predictions":[[],[]]}'),
    ],
)
def test_encode_predict(outputs: dict[str, np.ndarray], row: bool, expected: str) -> None:
    assert jc.encode_predict_response(outputs, row).decode() == expected


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ({}, "Cannot convert empty tensor map to JSON"),
        ({"y": np.array(1.0, F32)}, "Tensor name: y has no shape information "),
        ({"y": np.zeros((0, 2), F32)}, "Tensor name: y has invalid batch size: 0"),
        (
            {"a": np.zeros(2, F32), "b": np.zeros(3, F32)},
            "Tensor name: b has inconsistent batch size: 3 expecting: 2",
        ),
        ({"c": np.zeros(1, np.complex64)}, "Failed to write JSON value for tensor type: complex64"),
    ],
)
def test_encode_predict_errors(outputs: dict[str, np.ndarray], message: str) -> None:
    with pytest.raises(ServingError) as caught:
        jc.encode_predict_response(outputs, row_format=True)
    assert (caught.value.code, caught.value.message) == (Code.INVALID_ARGUMENT, message)


def test_encoded_floats_read_back_as_the_same_float32() -> None:
    values = np.random.default_rng(3).standard_normal((64, 3)).astype(np.float32)
    text = jc.encode_predict_response({"y": values}, row_format=False)
    np.testing.assert_array_equal(np.array(orjson.loads(text)["outputs"], np.float32), values)


# --------------------------------------------------------------------------- classify / regress


def test_decode_examples() -> None:
    body = b'{"signature_name": "r", "context": {"c": 1}, "examples": [{"x": 1.0}]}'
    decoded = jc.decode_examples(body)
    assert decoded == jc.ExamplesInput([{"x": 1.0}], {"c": 1}, "r")
    assert jc.decode_examples(b'{"examples": [{}]}').context is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '{"x": 1}',
            "JSON Value: {\n    \"x\": 1\n} When method is classify, key 'examples' is "
            "expected and was not found",
        ),
        (
            '{"examples": {}}',
            "JSON Value: {\n    \"examples\": {}\n} Expecting 'examples' value to be an list/array",
        ),
        (
            '{"examples": []}',
            "JSON Value: {\n    \"examples\": []\n} 'examples' value is an empty array",
        ),
        ('{"context": [1], "examples": [{}]}', "Example must be JSON object but got JSON Array"),
        ('{"context": {"c": null}}', "Feature: c has element with unexpected JSON type: Null"),
    ],
)
def test_decode_examples_errors(body: str, message: str) -> None:
    with pytest.raises(ServingError) as caught:
        jc.decode_examples(body.encode())
    assert (caught.value.code, caught.value.message) == (Code.INVALID_ARGUMENT, message)


def test_serialized_examples_parse_in_tensorflow(tf: ModuleType) -> None:
    examples = [
        {"f": 1.5, "i": 3, "s": "abc", "b": {"b64": "AP8="}, "l": [1.0, 2.0], "t": True},
        {"f": [2.5], "i": [-4], "s": ["d"], "b": [{"b64": "YQ=="}], "l": [3, 4], "t": [False]},
    ]
    examples[1]["l"] = [3.0, 4.0]
    serialized = jc.build_serialized_examples(examples)
    assert serialized.dtype == object and serialized.shape == (2,)
    features = {
        "f": tf.io.FixedLenFeature([1], tf.float32),
        "i": tf.io.FixedLenFeature([1], tf.int64),
        "s": tf.io.FixedLenFeature([1], tf.string),
        "b": tf.io.FixedLenFeature([1], tf.string),
        "l": tf.io.FixedLenFeature([2], tf.float32),
        "t": tf.io.FixedLenFeature([1], tf.int64),
    }
    parsed = {
        k: v.numpy().tolist() for k, v in tf.io.parse_example(list(serialized), features).items()
    }
    assert parsed == {
        "f": [[1.5], [2.5]],
        "i": [[3], [-4]],
        "s": [[b"abc"], [b"d"]],
        "b": [[b"\x00\xff"], [b"a"]],
        "l": [[1.0, 2.0], [3.0, 4.0]],
        "t": [[1], [0]],
    }


def test_context_is_merged_and_examples_win(tf: ModuleType) -> None:
    serialized = jc.build_serialized_examples([{"x": 1.0}, {"x": 2.0, "c": 5.0}], {"c": 9.0})
    features = {
        "x": tf.io.FixedLenFeature([1], tf.float32),
        "c": tf.io.FixedLenFeature([1], tf.float32),
    }
    parsed = tf.io.parse_example(list(serialized), features)
    assert parsed["c"].numpy().tolist() == [[9.0], [5.0]]
    assert parsed["x"].numpy().tolist() == [[1.0], [2.0]]


def test_json_ints_are_int64_and_decimals_float(tf: ModuleType) -> None:
    serialized = jc.build_serialized_examples([{"a": 1, "b": 1.0, "e": []}])
    example = tf.train.Example.FromString(serialized[0])
    assert example.features.feature["a"].WhichOneof("kind") == "int64_list"
    assert example.features.feature["b"].WhichOneof("kind") == "float_list"
    assert example.features.feature["e"].WhichOneof("kind") is None


@pytest.mark.parametrize(
    ("example", "message"),
    [
        ({"x": [1, 2.5]}, "Unexpected element type in feature: x expecting type: int64"),
        ({"x": [2.5, "a"]}, "Unexpected element type in feature: x expecting type: float"),
        ({"x": ["a", 1]}, "Unexpected element type in feature: x expecting type: bytes"),
        ({"x": [[1]]}, "Feature: x has element with unexpected JSON type: Array"),
        ({"x": {"a": 1}}, "Feature: x has element with unexpected JSON type: Object"),
        ({"x": 2**63}, "Feature: x has uint64 element. Only int64 is supported."),
        ({"x": 1e39}, "Cannot convert JSON value: 1e+39 to float without loss of precision."),
        ({"x": {"b64": "!"}}, "Unable to base64 decode"),
    ],
)
def test_example_feature_errors(example: dict[str, Any], message: str) -> None:
    with pytest.raises(ServingError) as caught:
        jc.build_serialized_examples([example])
    assert (caught.value.code, caught.value.message) == (Code.INVALID_ARGUMENT, message)


def test_no_examples() -> None:
    with pytest.raises(ServingError, match="Input is empty"):
        jc.build_serialized_examples([])


def test_encode_classify_and_regress() -> None:
    classify = jc.encode_classify_response([[("a", 0.1), ("b", 1 / 3)], [("c", 2.0)]])
    assert classify == b'{"results":[[["a",0.1],["b",0.333333343]],[["c",2.0]]]}'
    assert jc.encode_regress_response([2.5, 3.0, 0.1]) == b'{"results":[2.5,3.0,0.1]}'
    assert jc.encode_regress_response(np.array([[4.5]], F32)) == b'{"results":[4.5]}'
    with pytest.raises(ServingError, match="Cannot convert empty ClassificationResults to JSON"):
        jc.encode_classify_response([])
    with pytest.raises(ServingError, match="Cannot convert empty RegressionResults to JSON"):
        jc.encode_regress_response([])


# --------------------------------------------------------------------------- status / metadata


def test_encode_model_status() -> None:
    body = jc.encode_model_status(
        [jc.VersionStatus(123, "AVAILABLE"), jc.VersionStatus(7, "END", "UNKNOWN", "gone")]
    )
    assert orjson.loads(body) == {
        "model_version_status": [
            {
                "version": "123",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            },
            {
                "version": "7",
                "state": "END",
                "status": {"error_code": "UNKNOWN", "error_message": "gone"},
            },
        ]
    }


def _signatures_from_reference(reference: dict[str, Any]) -> dict[str, SignatureSpec]:
    """Our SignatureSpecs for the signatures in TF Serving's metadata answer."""

    def tensors(infos: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for key, info in infos.items():
            shape_json = info["tensor_shape"]
            shape = (
                None
                if shape_json["unknown_rank"]
                else tuple(int(d["size"]) for d in shape_json["dim"])
            )
            out[key] = jc.TensorSpec(key, info["name"], info["dtype"], shape)
        return out

    defs = reference["metadata"]["signature_def"]["signature_def"]
    return {
        name: SignatureSpec(name, d["method_name"], tensors(d["inputs"]), tensors(d["outputs"]))
        for name, d in defs.items()
    }


@pytest.mark.parametrize(
    ("filename", "model"),
    [
        ("half_plus_two_model_metadata.json", "default"),
        (
            "saved_model_half_plus_two_2_versions_metadata.json",
            "saved_model_half_plus_two_2_versions",
        ),
    ],
)
def test_metadata_matches_tf_serving_reference(filename: str, model: str) -> None:
    path = TESTDATA / filename
    if not path.exists():
        pytest.skip(f"TF Serving reference {path} is not available")
    reference = json.loads(path.read_text())
    signatures = _signatures_from_reference(reference)
    ours = orjson.loads(jc.encode_model_metadata(model, 123, signatures))
    assert ours == reference
    # key order too, signature by signature (TF prints fields in proto order)
    ours_text = json.dumps(ours, indent=1)
    assert ours_text == json.dumps(reference, indent=1)


def test_metadata_for_unknown_rank_and_scalars() -> None:
    signature = SignatureSpec(
        "s", PREDICT, {"u": spec("u", "DT_STRING", None), "s": spec("s", shape=())}, {}
    )
    body = orjson.loads(jc.encode_model_metadata("m", 1, {"s": signature}))
    inputs = body["metadata"]["signature_def"]["signature_def"]["s"]["inputs"]
    assert inputs["u"]["tensor_shape"] == {"dim": [], "unknown_rank": True}
    assert inputs["s"]["tensor_shape"] == {"dim": [], "unknown_rank": False}
    assert body["model_spec"] == {"name": "m", "signature_name": "", "version": "1"}
