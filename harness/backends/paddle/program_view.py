"""One read-only view over both Paddle program formats (runs inside a child that imported paddle).

Old programs (`.pdmodel`, FLAGS_enable_pir_api=0) name values by variable name; PIR programs (`.json`) pass
`pir.Value` objects whose defining op says where they come from. Checks only need: the ops in order, an op's
normalised type and attributes, one input by slot, the parameter behind a value and the op producing it.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

CONV_TYPES = frozenset({"conv2d", "depthwise_conv2d", "conv2d_transpose", "depthwise_conv2d_transpose",
                        "conv3d", "conv3d_transpose"})
BN_TYPES = frozenset({"batch_norm", "sync_batch_norm"})
# Only these change behaviour with the mode: conv2d, pool2d, softmax... also carry an `is_test` attribute
# (an old oneDNN hint) that is False in the shipped, correct programs.
DROPOUT_TYPES = frozenset({"dropout", "dropout_nd"})
# Normalisations that use each sample's own statistics (no stored ones, nothing shared with batch-mates), and
# vector norms: correct in any mode, counted but not judged further.
PER_SAMPLE_NORM_TYPES = frozenset({"layer_norm", "group_norm", "instance_norm", "rms_norm", "p_norm", "norm",
                                   "frobenius_norm", "squared_l2_norm", "l1_norm", "l2_normalize"})
# Any other op type that looks like one of these (fused_bn_add_activation, fused_batch_norm_act, a new PIR
# spelling...) is an op whose eval-mode behaviour the audit cannot vouch for: a finding, never ignored.
LOOKS_LIKE_NORM = re.compile(r"norm|dropout|(^|_)bn(_|$)", re.IGNORECASE)
_ADD_TYPES = frozenset({"elementwise_add", "add"})
_RESHAPE_TYPES = frozenset({"reshape", "reshape2", "unsqueeze", "unsqueeze2", "cast"})
_LEGACY_SLOTS = {"x": "X", "mean": "Mean", "variance": "Variance", "scale": "Scale", "bias": "Bias", "y": "Y"}


class ProgramView(ABC):
    """Base: format-specific subclasses fill the small accessors; shared helpers live here."""

    def __init__(self, program: Any, scope: Any) -> None:
        self.program = program
        self.scope = scope

    # --- per-format accessors
    @abstractmethod
    def ops(self) -> list[Any]:
        ...

    @abstractmethod
    def op_type(self, op: Any) -> str:
        ...

    @abstractmethod
    def attr(self, op: Any, name: str) -> Any:
        ...

    @abstractmethod
    def input(self, op: Any, slot: str) -> Any | None:
        ...

    @abstractmethod
    def inputs(self, op: Any) -> list[Any]:
        ...

    @abstractmethod
    def param_name(self, value: Any) -> str | None:
        ...

    @abstractmethod
    def producer(self, value: Any) -> Any | None:
        ...

    @abstractmethod
    def output_label(self, op: Any, index: int) -> str:
        ...

    @abstractmethod
    def first_output(self, op: Any) -> Any | None:
        """The op's main result (a conv's `Output`, an add's `Out`)."""

    @abstractmethod
    def consumers(self, value: Any) -> list[Any]:
        """The ops that read `value`."""

    @abstractmethod
    def param_names(self) -> list[str]:
        """The names of the program's stored tensors."""

    def drop_fetch_ops(self) -> None:
        """Lets `Executor.run(fetch_list=...)` fetch intermediate values (only PIR needs it)."""

    # --- shared helpers
    def param_array(self, name: str) -> np.ndarray | None:
        """The stored value of a persistable, or None when the loaded params do not hold it."""
        var = self.scope.find_var(name)
        if var is None:
            return None
        tensor = var.get_tensor()
        if not tensor._is_initialized():
            return None
        return np.array(tensor)

    def _param_like(self, value: Any) -> bool:
        if self.param_name(value) is not None:
            return True
        op = self.producer(value)
        return op is not None and self.op_type(op) in _RESHAPE_TYPES and any(
            self.param_name(v) is not None for v in self.inputs(op))

    def source_type(self, value: Any) -> str:
        """Type of the op computing `value`, looking through a bias add (conv + bias -> BN is still conv -> BN)."""
        for _ in range(3):
            op = self.producer(value)
            if op is None:
                return "input"
            kind = self.op_type(op)
            if kind not in _ADD_TYPES:
                return kind
            ins = self.inputs(op)
            rest = [v for v in ins if not self._param_like(v)]
            if len(ins) != 2 or len(rest) != 1:
                return kind
            value = rest[0]
        return "?"

    def bias_add(self, value: Any) -> Any | None:
        """The add op that puts a stored bias on `value` (conv -> + bias), if that is what reads it."""
        for op in self.consumers(value):
            if self.op_type(op) in _ADD_TYPES:
                ins = self.inputs(op)
                if len(ins) == 2 and sum(self._param_like(v) for v in ins) == 1:
                    return op
        return None


class LegacyView(ProgramView):
    def param_names(self) -> list[str]:
        """The stored tensors (persistable dense tensors: not the feed/fetch lists)."""
        return [v.name for v in self.program.list_vars()
                if v.persistable and ("DENSE_TENSOR" in str(v.type) or "LOD_TENSOR" in str(v.type))
                and "ARRAY" not in str(v.type)]

    def __init__(self, program: Any, scope: Any) -> None:
        super().__init__(program, scope)
        self._ops = [op for block in program.blocks for op in block.ops]
        self._producers: dict[str, Any] = {}
        self._consumers: dict[str, list[Any]] = {}
        for op in self._ops:
            for name in op.input_arg_names:
                self._consumers.setdefault(name, []).append(op)
            if self.op_type(op) in BN_TYPES:  # BN writes its Mean/Variance in place: not their producer
                continue
            for name in op.output_arg_names:
                self._producers.setdefault(name, op)

    def ops(self) -> list[Any]:
        return self._ops

    def op_type(self, op: Any) -> str:
        return str(op.type)

    def attr(self, op: Any, name: str) -> Any:
        return op.attr(name) if op.has_attr(name) else None

    def input(self, op: Any, slot: str) -> Any | None:
        slot = _LEGACY_SLOTS.get(slot, slot)
        names = op.input(slot) if slot in op.input_names else []
        return names[0] if names else None

    def inputs(self, op: Any) -> list[Any]:
        return list(op.input_arg_names)

    def param_name(self, value: Any) -> str | None:
        var = self.program.global_block()._find_var_recursive(value)
        return value if var is not None and var.persistable else None

    def producer(self, value: Any) -> Any | None:
        return self._producers.get(value)

    def output_label(self, op: Any, index: int) -> str:
        outs = op.output("Out") if "Out" in op.output_names else list(op.output_arg_names)
        return outs[0].split(".")[0] if outs else f"{op.type}#{index}"

    def first_output(self, op: Any) -> Any | None:
        for slot in ("Output", "Out", "Y"):
            if slot in op.output_names and op.output(slot):
                return op.output(slot)[0]
        names = list(op.output_arg_names)
        return names[0] if names else None

    def consumers(self, value: Any) -> list[Any]:
        return list(self._consumers.get(value, []))


class PirView(ProgramView):
    def param_names(self) -> list[str]:
        """The stored tensors: every `builtin.parameter` op's parameter."""
        return [str(op.attrs()["parameter_name"]) for op in self._ops if op.name() == "builtin.parameter"]

    def __init__(self, program: Any, scope: Any) -> None:
        super().__init__(program, scope)
        self._ops: list[Any] = []
        self._walk(program.global_block())

    def _walk(self, block: Any) -> None:
        for op in block.ops:
            self._ops.append(op)
            for sub in op.blocks():
                self._walk(sub)

    def ops(self) -> list[Any]:
        return self._ops

    def drop_fetch_ops(self) -> None:
        # The saved program's own fetch op makes the executor mis-index (or crash on) any extra fetch target.
        block = self.program.global_block()
        for op in [op for op in block.ops if op.name() == "pd_op.fetch"]:
            block.remove_op(op)
        self._ops = [op for op in self._ops if op.name() != "pd_op.fetch"]

    def op_type(self, op: Any) -> str:
        name = str(op.name())
        if name.startswith("pd_op."):
            name = name[len("pd_op."):]
        return name[:-1] if name.endswith("_") else name  # in-place variants: batch_norm_ is batch_norm

    def attr(self, op: Any, name: str) -> Any:
        return op.attrs().get(name)

    def input(self, op: Any, slot: str) -> Any | None:
        names = list(op.get_input_names())
        if slot not in names:
            return None
        value = op.operand_source(names.index(slot))
        return value if value.initialized() else None

    def inputs(self, op: Any) -> list[Any]:
        return [v for v in op.operands_source() if v.initialized()]

    def param_name(self, value: Any) -> str | None:
        op = value.get_defining_op()
        if op is not None and op.name() == "builtin.parameter":
            return str(op.attrs()["parameter_name"])
        return None

    def producer(self, value: Any) -> Any | None:
        return value.get_defining_op()

    def output_label(self, op: Any, index: int) -> str:
        struct = op.attrs().get("struct_name")
        return f"{self.op_type(op)}#{index}" + (f" {struct}" if struct else "")

    def first_output(self, op: Any) -> Any | None:
        return op.result(0) if op.num_results() else None

    def consumers(self, value: Any) -> list[Any]:
        return list(value.all_used_ops())


def load_program(prefix: str, pir: bool) -> tuple[ProgramView, Any, list[str], list[Any]]:
    """Loads an inference program into a private scope: (view, executor, feed names, fetch targets)."""
    import paddle

    paddle.enable_static()
    exe = paddle.static.Executor(paddle.CPUPlace())
    scope = paddle.static.Scope()
    with paddle.static.scope_guard(scope):
        program, feeds, fetches = paddle.static.load_inference_model(prefix, exe)
    view: ProgramView = PirView(program, scope) if pir else LegacyView(program, scope)
    return view, exe, list(feeds), list(fetches)


def short_error(exc: BaseException) -> str:
    """Paddle errors carry a C++ stack; the summary line is what a person needs."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    summary = next((ln for ln in lines if "Error" in ln and "Summary" not in ln), lines[-1] if lines else "")
    return f"{type(exc).__name__}: {summary[:400]}"
