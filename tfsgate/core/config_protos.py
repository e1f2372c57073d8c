"""The text-format config files ``tensorflow_model_server`` flags name, read as TF Serving reads them.

``ParseProtoTextFile`` (``tensorflow_serving/util/proto_util.h``) reads the whole file (a missing
one is NOT_FOUND "<path>; No such file or directory"), parses it with protobuf's ``TextFormat``
(which logs "Error parsing text-format <type>: <line>:<column>: <reason>") and fails with
INVALID_ARGUMENT "Invalid protobuf file: '<path>'". ``ConfigFileError`` carries both lines.

``tensorflow-serving-api`` does not ship ``SSLConfig``, ``MonitoringConfig`` or
``BatchingParameters``; they are declared here with TF Serving's package and field numbers
(``config/ssl_config.proto``, ``config/monitoring_config.proto``,
``servables/tensorflow/session_bundle_config.proto``) in a private descriptor pool, so their
parse errors name the same types.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
    wrappers_pb2,
)

from tfsgate.core.status import Code

_F = descriptor_pb2.FieldDescriptorProto

# (message, [(field, number, type, label, type_name)])
_MESSAGES: dict[str, list[tuple[str, int, int, int, str]]] = {
    "SSLConfig": [
        ("server_key", 1, _F.TYPE_STRING, _F.LABEL_OPTIONAL, ""),
        ("server_cert", 2, _F.TYPE_STRING, _F.LABEL_OPTIONAL, ""),
        ("custom_ca", 3, _F.TYPE_STRING, _F.LABEL_OPTIONAL, ""),
        ("client_verify", 4, _F.TYPE_BOOL, _F.LABEL_OPTIONAL, ""),
    ],
    "PrometheusConfig": [
        ("enable", 1, _F.TYPE_BOOL, _F.LABEL_OPTIONAL, ""),
        ("path", 2, _F.TYPE_STRING, _F.LABEL_OPTIONAL, ""),
    ],
    "MonitoringConfig": [
        (
            "prometheus_config",
            1,
            _F.TYPE_MESSAGE,
            _F.LABEL_OPTIONAL,
            ".tensorflow.serving.PrometheusConfig",
        ),
    ],
    "BatchingParameters": [
        ("max_batch_size", 1, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, ".google.protobuf.Int64Value"),
        (
            "batch_timeout_micros",
            2,
            _F.TYPE_MESSAGE,
            _F.LABEL_OPTIONAL,
            ".google.protobuf.Int64Value",
        ),
        (
            "max_enqueued_batches",
            3,
            _F.TYPE_MESSAGE,
            _F.LABEL_OPTIONAL,
            ".google.protobuf.Int64Value",
        ),
        (
            "num_batch_threads",
            4,
            _F.TYPE_MESSAGE,
            _F.LABEL_OPTIONAL,
            ".google.protobuf.Int64Value",
        ),
        (
            "thread_pool_name",
            5,
            _F.TYPE_MESSAGE,
            _F.LABEL_OPTIONAL,
            ".google.protobuf.StringValue",
        ),
        ("allowed_batch_sizes", 6, _F.TYPE_INT64, _F.LABEL_REPEATED, ""),
        ("pad_variable_length_inputs", 7, _F.TYPE_BOOL, _F.LABEL_OPTIONAL, ""),
        (
            "enable_large_batch_splitting",
            8,
            _F.TYPE_MESSAGE,
            _F.LABEL_OPTIONAL,
            ".google.protobuf.BoolValue",
        ),
        (
            "max_execution_batch_size",
            9,
            _F.TYPE_MESSAGE,
            _F.LABEL_OPTIONAL,
            ".google.protobuf.Int64Value",
        ),
    ],
}


def _build_pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    file = descriptor_pb2.FileDescriptorProto(
        name="tfsgate/tf_serving_configs.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    for message, fields in _MESSAGES.items():
        proto = file.message_type.add(name=message)
        for name, number, kind, label, type_name in fields:
            field = proto.field.add(name=name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = type_name
    pool.Add(file)
    return pool


_POOL = _build_pool()


def _message_class(name: str) -> Any:
    return message_factory.GetMessageClass(
        _POOL.FindMessageTypeByName(f"tensorflow.serving.{name}")
    )


SSLConfig = _message_class("SSLConfig")
MonitoringConfig = _message_class("MonitoringConfig")
BatchingParameters = _message_class("BatchingParameters")


class ConfigFileError(Exception):
    """A config file TF Serving would refuse: its status (code, message) and, for a parse failure,
    protobuf's own error line, which TF Serving's log shows before the status."""

    def __init__(self, code: Code, message: str, parse_error: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.parse_error = parse_error

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


def io_error(path: str, exc: OSError) -> ConfigFileError:
    """TF's ``IOError(path, errno)`` status: "<path>; <strerror>" with errno's code."""
    number = exc.errno or errno.EIO
    code = {
        errno.ENOENT: Code.NOT_FOUND,
        errno.EACCES: Code.PERMISSION_DENIED,
        errno.EPERM: Code.PERMISSION_DENIED,
        errno.EISDIR: Code.FAILED_PRECONDITION,
    }.get(number, Code.UNKNOWN)
    return ConfigFileError(code, f"{path}; {os.strerror(number)}")


def read_file(path: str) -> str:
    """The file's text; a failure is TF's ``IOError`` status ("<path>; <strerror>")."""
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except OSError as exc:
        raise io_error(path, exc) from None


def parse_error_line(exc: text_format.ParseError, type_name: str) -> str:
    """protobuf's "Error parsing text-format <type>: <line>:<column>: <reason>"."""
    reason = str(exc)
    line, column = exc.GetLine(), exc.GetColumn()
    if line is not None and column is not None:
        prefix = f"{line}:{column} : "
        reason = reason.removeprefix(prefix)
        return f"Error parsing text-format {type_name}: {line}:{column}: {reason}"
    return f"Error parsing text-format {type_name}: {reason}"


def parse_text(text: str, message: Any, source: str) -> Any:
    """Parse ``text`` into ``message`` or raise TF Serving's "Invalid protobuf file" error."""
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        raise ConfigFileError(
            Code.INVALID_ARGUMENT,
            f"Invalid protobuf file: '{source}'",
            parse_error_line(exc, message.DESCRIPTOR.full_name),
        ) from None
    return message


def parse_text_file(path: str, message_class: Any) -> Any:
    """``ParseProtoTextFile<T>(path)``."""
    return parse_text(read_file(path), message_class(), path)
