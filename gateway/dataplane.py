"""The protocol-neutral core: one method per TF-Serving call, shared by REST and gRPC.

It resolves the model reference through the routing table, checks the tensors against the signature,
calls Triton through the upstream client and returns our own types. It knows nothing of JSON,
protobuf or HTTP.

Rollout duties hang off the resolved model route and cost nothing when off: a sampled request is
handed to the prediction logger, a shadowed one to the shadow runner (both after the answer is
in hand, never awaited: ``gateway/after_answer.py``), and a model under a rollout has its
per-version outcomes counted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

from gateway import example_methods, heap, metrics
from gateway.after_answer import AfterAnswer
from gateway.coalescer import Coalescer
from gateway.codecs.tensor_proto import check_input_names
from gateway.prediction_log import PredictionLogger
from gateway.routing import Router, named_version
from gateway.shadow import Call, ShadowRunner
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
from gateway.version_stats import VersionStats
from tfsgate.core.routing_table import ModelRoute, Target, VersionRoute
from tfsgate.core.signatures import CLASSIFY_METHOD, DEFAULT_SIGNATURE, REGRESS_METHOD
from tfsgate.core.status import Code, ServingError, invalid_argument

# Serialized tf.Examples, or how to make them once the signature checks have passed (TF Serving
# reports a bad signature before an empty input).
Examples = np.ndarray | Callable[[], np.ndarray]
ExampleResult = TypeVar("ExampleResult", ClassifyResult, RegressResult)
# A method's name in the runtime metric and in prediction logs.
METHOD_NAMES = {CLASSIFY_METHOD: ("Classify", "classify"), REGRESS_METHOD: ("Regress", "regress")}


class DataPlane:
    def __init__(
        self,
        router: Router,
        upstream: TritonInferenceClient,
        coalescer: Coalescer | None = None,
        check_method_names: bool = False,
        *,
        logger: PredictionLogger | None = None,
        stats: VersionStats | None = None,
    ) -> None:
        self.router = router
        self.upstream = upstream
        self.coalescer = coalescer
        # --enable_signature_method_name_check: Classify/Regress need a classify/regress
        # signature; off by default, as TF2 saves every signature as predict.
        self.check_method_names = check_method_names
        self.stats = stats if stats is not None else VersionStats()
        self.shadows = ShadowRunner(self._infer, logger)
        self.after = AfterAnswer(logger, self.shadows)

    # -- predict -------------------------------------------------------------------------------
    async def predict(
        self,
        ref: ModelRef,
        inputs: Tensors | InputDecoder,
        output_filter: Sequence[str] = (),
        timeout: float | None = None,
        request_id: str = "",
    ) -> PredictResult:
        """``inputs`` may be a decoder: REST and gRPC decode by the resolved signature's dtypes."""
        target, route = self.router.resolve(ref)
        tensors = inputs(target.signature) if callable(inputs) else inputs
        started = time.perf_counter()
        if route.guarded:
            outputs = await self._observed(route, target, tensors, output_filter, timeout)
        else:  # _observed's fast path without its coroutine
            outputs = await self._infer(target, tensors, output_filter, timeout)
        seconds = time.perf_counter() - started
        metrics.runtime(route.name, "Predict", seconds)
        result = PredictResult(self._spec(target), outputs, target.signature)
        if route.logging is not None or route.shadow is not None:
            self.after.single(
                route, target, "predict", tensors, output_filter, result, seconds, request_id
            )
        return result

    async def _observed(
        self,
        route: ModelRoute,
        target: Target,
        inputs: Tensors,
        output_filter: Sequence[str],
        timeout: float | None,
    ) -> Tensors:
        """``_infer``, with its outcome counted per version while a rollout guards the model."""
        if not route.guarded:
            return await self._infer(target, inputs, output_filter, timeout)
        started = time.perf_counter()
        try:
            outputs = await self._infer(target, inputs, output_filter, timeout)
        except ServingError:
            self.stats.record(
                route.name, target.version.version, time.perf_counter() - started, True
            )
            raise
        self.stats.record(route.name, target.version.version, time.perf_counter() - started, False)
        return outputs

    async def _infer(
        self,
        target: Target,
        inputs: Tensors,
        output_filter: Sequence[str],
        timeout: float | None,
    ) -> Tensors:
        wire, added = self._wire_inputs(target, inputs)
        if output_filter:
            wanted = self._wanted_outputs(target, output_filter)
            plan = target.outputs_of(wanted)
        else:
            wanted, plan = [], target.all_outputs
        # Batching models go through the coalescer: concurrent requests share one Triton call.
        caller = self.coalescer if target.batched and self.coalescer else self.upstream
        asked, prefix = wanted, target.prefix
        if prefix:  # a shared Triton model: the signature's tensors under its prefix
            wire = {prefix + k: v for k, v in wire.items()}
            asked = [prefix + k for k in wanted]
        raw = await caller.infer(target.triton_model, target.version.version, wire, asked, timeout)
        outputs = {}
        for key, name, unit in plan:
            array = raw[name]
            if unit and array.ndim:
                array = array.reshape(array.shape[:-1])
            outputs[key] = unfit_output(array, added) if added else array
        moved = 0
        for array in wire.values():
            moved += array.nbytes
        for array in raw.values():
            moved += array.nbytes
        heap.TRIMMER.moved(moved)
        return outputs

    def _wire_inputs(self, target: Target, inputs: Tensors) -> tuple[Tensors, int]:
        """Arrays as Triton's config states them; also how many trailing 1-dims were added."""
        specs = target.signature.inputs
        if inputs.keys() != specs.keys():  # else the names and their count are right
            check_input_names(list(inputs), target.signature)
        unit = target.unit_inputs
        wire, added = {}, 0
        for key, array in inputs.items():
            fitted = fit_to_signature(array, specs[key])
            if fitted.ndim != array.ndim:
                added = max(added, fitted.ndim - array.ndim)
            wire[key] = fitted[..., np.newaxis] if key in unit else fitted
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

    # -- classify / regress / multi-inference ----------------------------------------------------
    def _example_target(
        self, ref: ModelRef, version: VersionRoute | None, missing: str
    ) -> tuple[Target, ModelRoute]:
        """The signature ``ref`` names, in ``version`` (else the one ``ref`` resolves to), and
        the model's route; ``missing`` is TF Serving's text for a signature the version lacks."""
        if version is None:
            version, model = self.router.resolve_version(ref)
        else:
            model = self.router.table.models[ref.name]
        name = ref.signature or DEFAULT_SIGNATURE
        target = version.target(ref.name, name)
        if target is None:
            raise invalid_argument(f"{missing}{name}")
        return target, model

    def _check(self, target: Target, method: str) -> tuple[str, list[str]]:
        """PreProcessClassification / PreProcessRegression on the target's signature."""
        check = self.check_method_names
        if method == CLASSIFY_METHOD:
            return example_methods.classification_signature(target.signature, check)
        return example_methods.regression_signature(target.signature, check)

    async def _run_examples(
        self,
        route: ModelRoute,
        target: Target,
        keys: tuple[str, list[str]],
        examples: np.ndarray,
        timeout: float | None,
    ) -> Tensors:
        input_key, output_keys = keys
        # No dtype check here: TF Serving feeds the serialized examples whatever the signature
        # declares (half_plus_three's regress input says DT_FLOAT over a string placeholder); the
        # engine answers for a real mismatch.
        return await self._observed(route, target, {input_key: examples}, output_keys, timeout)

    async def classify(
        self,
        ref: ModelRef,
        examples: Examples,
        timeout: float | None = None,
        version: VersionRoute | None = None,
        request_id: str = "",
    ) -> ClassifyResult:
        """TF Serving's RunClassify: signature checks, then the examples, then the run."""
        return await self._run_method(
            ref, examples, timeout, version, request_id, CLASSIFY_METHOD, self._classified
        )

    async def regress(
        self,
        ref: ModelRef,
        examples: Examples,
        timeout: float | None = None,
        version: VersionRoute | None = None,
        request_id: str = "",
    ) -> RegressResult:
        """TF Serving's RunRegress."""
        return await self._run_method(
            ref, examples, timeout, version, request_id, REGRESS_METHOD, self._regressed
        )

    async def _run_method(
        self,
        ref: ModelRef,
        examples: Examples,
        timeout: float | None,
        version: VersionRoute | None,
        request_id: str,
        method: str,
        make: Callable[[Target, int, Tensors], ExampleResult],
    ) -> ExampleResult:
        """Classify or Regress: signature checks, then the examples, then the run."""
        target, route = self._example_target(ref, version, "No signature was found with the name: ")
        keys = self._check(target, method)
        batch = examples() if callable(examples) else examples
        started = time.perf_counter()
        outputs = await self._run_examples(route, target, keys, batch, timeout)
        seconds = time.perf_counter() - started
        label, kind = METHOD_NAMES[method]
        metrics.runtime(route.name, label, seconds)
        result = make(target, len(batch), outputs)
        if route.logging is not None or route.shadow is not None:
            inputs = {keys[0]: batch}
            self.after.single(
                route, target, kind, inputs, keys[1], result, seconds, request_id, outputs
            )
        return result

    def _classified(self, target: Target, count: int, outputs: Tensors) -> ClassifyResult:
        classes = example_methods.classification_results(count, outputs)
        return ClassifyResult(self._spec(target), classes)

    def _regressed(self, target: Target, count: int, outputs: Tensors) -> RegressResult:
        values = example_methods.regression_results(count, outputs)
        return RegressResult(self._spec(target), values)

    async def multi_inference(
        self,
        tasks: Sequence[tuple[ModelRef, str]],
        examples: Examples,
        timeout: float | None = None,
        request_id: str = "",
    ) -> list[ClassifyResult | RegressResult]:
        """TF Serving's MultiInference (``multi_inference.cc``): one servable, the one the first
        task's model spec resolves to, then every task checked in order before anything runs."""
        if not tasks or not tasks[0][0].name:
            raise invalid_argument("Missing ModelSpec")  # ServableRequestFromModelSpec
        version, route = self.router.resolve_version(tasks[0][0])
        planned: list[tuple[Target, str, tuple[str, list[str]]]] = []
        seen: set[str] = set()
        for ref, method in tasks:
            if not ref.name:
                raise invalid_argument("Found ModelSpec with an empty model name.")
            if ref.name != tasks[0][0].name:
                raise invalid_argument(
                    "All ModelSpecs in a MultiInferenceRequest must access the same model name."
                )
            name = ref.signature or DEFAULT_SIGNATURE
            if name in seen:
                raise invalid_argument(f"Duplicate evaluation of signature: {name}")
            seen.add(name)
            target, _ = self._example_target(
                ref, version, "Requested signature not found in model graph: "
            )
            if method not in (CLASSIFY_METHOD, REGRESS_METHOD):
                raise ServingError(
                    Code.UNIMPLEMENTED, f"Unsupported signature method_name: {method}"
                )
            planned.append((target, method, self._check(target, method)))
        batch = examples() if callable(examples) else examples
        started = time.perf_counter()
        runs = await asyncio.gather(
            *(
                self._run_examples(route, target, keys, batch, timeout)
                for target, _, keys in planned
            )
        )
        results: list[ClassifyResult | RegressResult] = []
        for (target, method, _), outputs in zip(planned, runs, strict=True):
            make = self._classified if method == CLASSIFY_METHOD else self._regressed
            results.append(make(target, len(batch), outputs))
        if route.logging is not None or route.shadow is not None:
            seconds = time.perf_counter() - started
            calls = tuple(
                Call(target, {keys[0]: batch}, tuple(keys[1]), outputs)
                for (target, _, keys), outputs in zip(planned, runs, strict=True)
            )
            self.after.multi(route, batch, results, calls, seconds, request_id)
        return results

    # -- status / metadata ---------------------------------------------------------------------
    def get_model_status(self, ref: ModelRef) -> list[VersionStatus]:
        route = self.router.serving_table().models.get(ref.name)
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
        version, _ = self.router.resolve_version(ref)
        return ModelMetadata(ServedSpec(ref.name, version.version, ""), dict(version.signatures))


def _status(version: int, state: str, reason: str) -> VersionStatus:
    # TF Serving reports FAILED loads as END with the error; our catalog keeps FAILED apart.
    if state == "FAILED":
        return VersionStatus(version, "END", "UNKNOWN", reason)
    return VersionStatus(version, state, "OK", "")
