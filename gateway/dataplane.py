"""The protocol-neutral core: one method per TF-Serving call, shared by REST and gRPC.

It resolves the model reference through the routing table, checks the tensors against the signature,
calls Triton through the upstream client and returns our own types. It knows nothing of JSON,
protobuf or HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gateway.coalescer import Coalescer
from gateway.codecs.tensor_proto import check_input_names
from gateway.routing import Router, named_version, resolve, resolve_version
from gateway.shapes import fit_to_signature, unfit_output
from gateway.types import (
    ClassifyResult,
    InputDecoder,
    ModelMetadata,
    ModelRef,
    PredictResult,
    RegressResult,
    ServedSpec,
    Tensors,
    VersionStatus,
)
from gateway.upstream import TritonInferenceClient
from tfsgate.core.routing_table import Target
from tfsgate.core.signatures import CLASSIFY_METHOD, REGRESS_METHOD
from tfsgate.core.status import Code, ServingError


class DataPlane:
    def __init__(
        self,
        router: Router,
        upstream: TritonInferenceClient,
        coalescer: Coalescer | None = None,
    ) -> None:
        self.router = router
        self.upstream = upstream
        self.coalescer = coalescer

    # -- predict -------------------------------------------------------------------------------
    async def predict(
        self,
        ref: ModelRef,
        inputs: Tensors | InputDecoder,
        output_filter: Sequence[str] = (),
        timeout: float | None = None,
    ) -> PredictResult:
        """``inputs`` may be a decoder: REST and gRPC decode by the resolved signature's dtypes."""
        target = resolve(self.router.table, ref)
        tensors = inputs(target.signature) if callable(inputs) else inputs
        outputs = await self._infer(target, tensors, output_filter, timeout)
        return PredictResult(self._spec(target), outputs, target.signature)

    async def _infer(
        self,
        target: Target,
        inputs: Tensors,
        output_filter: Sequence[str],
        timeout: float | None,
    ) -> Tensors:
        signature = target.signature
        wire, added = self._wire_inputs(target, inputs)
        wanted = self._wanted_outputs(target, output_filter)
        # Batching models go through the coalescer: concurrent requests share one Triton call.
        caller = self.coalescer if target.batched and self.coalescer else self.upstream
        raw = await caller.infer(target.triton_model, target.version.version, wire, wanted, timeout)
        outputs = {}
        for key in wanted or sorted(signature.outputs):
            array = raw[key]
            if signature.outputs[key].travels_with_unit_dim(target.batched) and array.ndim:
                array = array.reshape(array.shape[:-1])
            outputs[key] = unfit_output(array, added)
        return outputs

    def _wire_inputs(self, target: Target, inputs: Tensors) -> tuple[Tensors, int]:
        """Arrays as Triton's config states them; also how many trailing 1-dims were added."""
        specs = target.signature.inputs
        check_input_names(list(inputs), target.signature)
        wire, added = {}, 0
        for key, array in inputs.items():
            spec = specs[key]
            fitted = fit_to_signature(array, spec)
            added = max(added, fitted.ndim - array.ndim)
            if spec.travels_with_unit_dim(target.batched):
                fitted = fitted[..., np.newaxis]
            wire[key] = fitted
        return wire, added

    @staticmethod
    def _wanted_outputs(target: Target, output_filter: Sequence[str]) -> list[str]:
        outputs = target.signature.outputs
        for key in output_filter:
            if key not in outputs:
                raise ServingError(
                    Code.INVALID_ARGUMENT,
                    f"output tensor alias not found in signature: {key} Outputs expected to be"
                    f" in the set {{{','.join(sorted(outputs))}}}.",
                )
        return list(dict.fromkeys(output_filter))

    @staticmethod
    def _spec(target: Target) -> ServedSpec:
        return ServedSpec(target.model, target.version.version, target.signature.name)

    # -- classify / regress --------------------------------------------------------------------
    async def _run_examples(
        self, ref: ModelRef, examples: np.ndarray, method: str, timeout: float | None
    ) -> tuple[Target, Tensors]:
        target = resolve(self.router.table, ref)
        signature = target.signature
        if signature.method_name != method:
            raise ServingError(
                Code.INVALID_ARGUMENT,
                f"Expected {method.rsplit('/', 1)[-1]} signature method_name to be {method}."
                f" Was: {signature.method_name}",
            )
        if len(signature.inputs) != 1:
            raise ServingError(
                Code.INVALID_ARGUMENT,
                f"Expected one input Tensor, found {len(signature.inputs)}",
            )
        ((key, spec),) = signature.inputs.items()
        if spec.dtype != "DT_STRING":
            raise ServingError(
                Code.INVALID_ARGUMENT,
                f"Input tensor {key} must be a string tensor of serialized tf.Examples",
            )
        outputs = await self._infer(target, {key: examples}, (), timeout)
        return target, outputs

    async def classify(
        self, ref: ModelRef, examples: np.ndarray, timeout: float | None = None
    ) -> ClassifyResult:
        target, outputs = await self._run_examples(ref, examples, CLASSIFY_METHOD, timeout)
        count = len(examples)
        scores = outputs.get("scores")
        classes = outputs.get("classes")
        if scores is None and classes is None:
            raise ServingError(
                Code.INVALID_ARGUMENT, "Expected classification signature outputs: classes, scores"
            )
        width = (scores if scores is not None else classes).reshape(count, -1).shape[1]  # type: ignore[union-attr]
        score_rows = (
            scores.reshape(count, width).astype(float).tolist()
            if scores is not None
            else [[0.0] * width] * count
        )
        class_rows = (
            [[_text(c) for c in row] for row in classes.reshape(count, width)]
            if classes is not None
            else [[""] * width] * count
        )
        results = [
            list(zip(c, s, strict=True)) for c, s in zip(class_rows, score_rows, strict=True)
        ]
        return ClassifyResult(self._spec(target), results)

    async def regress(
        self, ref: ModelRef, examples: np.ndarray, timeout: float | None = None
    ) -> RegressResult:
        target, outputs = await self._run_examples(ref, examples, REGRESS_METHOD, timeout)
        values = outputs.get("outputs")
        if values is None or values.size != len(examples):
            raise ServingError(
                Code.INVALID_ARGUMENT,
                "Expected output Tensor shape to be [batch_size] or [batch_size, 1]",
            )
        return RegressResult(self._spec(target), values.reshape(-1).astype(float).tolist())

    # -- status / metadata ---------------------------------------------------------------------
    def get_model_status(self, ref: ModelRef) -> list[VersionStatus]:
        route = self.router.table.models.get(ref.name)
        if route is None or not route.versions:
            raise ServingError(Code.NOT_FOUND, f"Could not find any versions of model {ref.name}")
        wanted = named_version(route, ref)
        if wanted is None:
            versions = sorted(route.versions.values(), key=lambda v: v.version, reverse=True)
        else:
            if wanted not in route.versions:
                raise ServingError(
                    Code.NOT_FOUND,
                    f"Could not find version {wanted} of model {ref.name}",
                )
            versions = [route.versions[wanted]]
        return [_status(v.version, v.state, v.reason) for v in versions]

    def get_model_metadata(self, ref: ModelRef) -> ModelMetadata:
        version = resolve_version(self.router.table, ref)
        return ModelMetadata(ServedSpec(ref.name, version.version, ""), dict(version.signatures))


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _status(version: int, state: str, reason: str) -> VersionStatus:
    # TF Serving reports FAILED loads as END with the error; our catalog keeps FAILED apart.
    if state == "FAILED":
        return VersionStatus(version, "END", "UNKNOWN", reason)
    return VersionStatus(version, state, "OK", "")
