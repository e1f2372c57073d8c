"""TF Serving REST bodies: predict decode/encode and the classify/regress request and answers."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import orjson
import pytest

from gateway.codecs import json_requests as jr
from gateway.codecs.jsontext import SMALL
from tests.support.signatures import spec
from tfsgate.core import dtypes
from tfsgate.core.signatures import SignatureSpec
from tfsgate.core.status import Code, ServingError

PREDICT = "tensorflow/serving/predict"


def sig(**inputs: Any) -> SignatureSpec:
    return SignatureSpec("serving_default", PREDICT, inputs, {"y": spec("y")})


ONE_FLOAT = sig(x=spec("x"))
TWO_INPUTS = sig(a=spec("a", "DT_FLOAT", (-1,)), b=spec("b", "DT_STRING", (-1,)))


def _error(body: bytes | str, signature: SignatureSpec = ONE_FLOAT) -> ServingError:
    with pytest.raises(ServingError) as caught:
        jr.decode_predict_request(body, signature)
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
    decoded = jr.decode_predict_request(body.encode(), signature)
    assert decoded.row_format is row
    assert set(decoded.tensors) == set(expected)
    for key, value in expected.items():
        array = decoded.tensors[key]
        assert array.dtype == dtypes.numpy_dtype(signature.inputs[key].dtype)
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
        array = jr.decode_predict_request(json.dumps(body).encode(), signature).tensors["x"]
        assert array.dtype == np.dtype(np_dtype)
        expected = [v.encode() if isinstance(v, str) else v for v in values]
        assert array.tolist() == expected


def test_b64_is_standard_base64_and_binary_safe() -> None:
    payload = bytes(range(256))
    body = {"instances": [{"b64": base64.b64encode(payload).decode()}]}
    signature = sig(x=spec("x", "DT_STRING", (-1,)))
    assert jr.decode_predict_request(orjson.dumps(body), signature).tensors["x"][0] == payload
    bad = _error(orjson.dumps({"instances": [{"b64": "-_-_"}]}), signature)
    assert bad.message.endswith("Error: INVALID_ARGUMENT: Unable to base64 decode")


def test_signature_resolver_gets_the_requested_name() -> None:
    asked: list[str] = []

    def resolve(name: str) -> SignatureSpec:
        asked.append(name)
        return ONE_FLOAT

    jr.decode_predict_request(b'{"signature_name": "s2", "inputs": [1]}', resolve)
    jr.decode_predict_request(b'{"inputs": [1]}', resolve)
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
    array = jr.decode_predict_request(body, sig(x=spec("x", "DT_FLOAT", (-1, 64)))).tensors["x"]
    np.testing.assert_array_equal(array, rows)


@pytest.mark.parametrize("dtype", ["DT_FLOAT", "DT_DOUBLE"])
def test_small_and_large_tensors_decode_and_fail_alike(dtype: str) -> None:
    """Up to SMALL values the checks run one by one in Python: same arrays, same errors."""
    values: list[object] = [0.1, 1, -2.5e-45, 3.4028234e38, 16777215, -16777215, 1e-300, 7]
    wide = values * (SMALL // len(values) + 1)
    for listed in (values, wide):
        shape = (-1, len(listed))
        body = orjson.dumps({"inputs": [listed]})
        array = jr.decode_predict_request(body, sig(x=spec("x", dtype, shape))).tensors["x"]
        expected = np.array([[float(v) for v in listed]], dtype=np.float64)  # type: ignore[arg-type]
        np.testing.assert_array_equal(array, expected.astype(array.dtype))
    for bad in (16777217, 2**53 + 1, 3.5e38):
        messages = set()
        for listed in ([1.0, bad], [1.0, bad] * SMALL):
            body = orjson.dumps({"inputs": [listed]})
            try:
                jr.decode_predict_request(body, sig(x=spec("x", dtype, (-1, len(listed)))))
            except ServingError as exc:
                messages.add(exc.message)
            else:
                messages.add("decoded")
        assert len(messages) == 1, messages


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
    assert jr.encode_predict_response(outputs, row).decode() == expected


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
        jr.encode_predict_response(outputs, row_format=True)
    assert (caught.value.code, caught.value.message) == (Code.INVALID_ARGUMENT, message)


def test_encoded_floats_read_back_as_the_same_float32() -> None:
    values = np.random.default_rng(3).standard_normal((64, 3)).astype(np.float32)
    text = jr.encode_predict_response({"y": values}, row_format=False)
    np.testing.assert_array_equal(np.array(orjson.loads(text)["outputs"], np.float32), values)


# --------------------------------------------------------------------------- classify / regress


def test_decode_examples() -> None:
    body = b'{"signature_name": "r", "context": {"c": 1}, "examples": [{"x": 1.0}]}'
    decoded = jr.decode_examples(body)
    assert decoded == jr.ExamplesInput([{"x": 1.0}], {"c": 1}, "r")
    assert jr.decode_examples(b'{"examples": [{}]}').context is None


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
        jr.decode_examples(body.encode())
    assert (caught.value.code, caught.value.message) == (Code.INVALID_ARGUMENT, message)


def test_encode_classify_and_regress() -> None:
    classify = jr.encode_classify_response([[("a", 0.1), ("b", 1 / 3)], [("c", 2.0)]])
    assert classify == b'{"results":[[["a",0.1],["b",0.333333343]],[["c",2.0]]]}'
    assert jr.encode_regress_response([2.5, 3.0, 0.1]) == b'{"results":[2.5,3.0,0.1]}'
    assert jr.encode_regress_response(np.array([[4.5]], F32)) == b'{"results":[4.5]}'
    with pytest.raises(ServingError, match="Cannot convert empty ClassificationResults to JSON"):
        jr.encode_classify_response([])
    with pytest.raises(ServingError, match="Cannot convert empty RegressionResults to JSON"):
        jr.encode_regress_response([])
