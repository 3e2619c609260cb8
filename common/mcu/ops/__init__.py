"""The MCU engine's operators: one module per operator kind, registered in one table, :data:`OPS`.

Modelled on TF-Lite Micro's kernels (one registration per operator, the optimized kernel
registered under the same operator as the reference) and TinyEngine's per-operator code
generators. Each module holds everything about its operator: its numpy reference semantics
(TF-Lite's integer arithmetic), its ``.tflite`` mapping, TinyEngine's in-place rule, its patch
receptive field and MACs, and its two C emitters (TF-Lite Micro's portable kernels and the
TinyEngine-style specialized code). The rest of the engine consults :data:`OPS` instead of
branching on ``op.kind``: :func:`common.mcu.reference.run`, :mod:`common.mcu.tflite_io`,
:func:`common.mcu.memory.inplace_aliases` / :func:`~common.mcu.memory.needed_region` /
:func:`~common.mcu.memory.patch_plan`, :meth:`common.mcu.graph.Graph.validate` /
:meth:`~common.mcu.graph.Graph.macs` and :func:`common.mcu.codegen.generate`.

Adding an operator:

1. Write ``common/mcu/ops/<kind>.py`` defining ``SPEC = OpSpec(...)``
   (:class:`~common.mcu.ops.base.OpSpec`) with the hooks:

   * ``reference(g, op, args)``: the int8 output in numpy, bit-exact with TF-Lite;
   * ``tflite``: a :class:`~common.mcu.ops.base.TFLiteMapping`: the ``BuiltinOperator`` name,
     ``write`` / ``read`` of its builtin options, and the constant inputs the file carries but
     the graph keeps as options (``const_inputs``, ``graph_inputs``);
   * ``emit_reference(c)``: the call of a portable kernel (add it to ``csrc/kernels_ref.c``),
     ``c`` a :class:`~common.mcu.emit.ReferenceOp`;
   * ``emit_specialized(c)``: the specialized code (``csrc/kernels_te.h``), ``c`` a
     :class:`~common.mcu.emit.SpecializedOp`: constants through ``c.em.array``, statements into
     ``c.body``, scratch through ``c.need_scratch``;
   * optional: ``prepare(m)`` (whole-model decisions before emission), ``inplace`` (TinyEngine's
     in-place rule), ``needed_region`` (the input region an output region reads), ``tiles`` /
     ``tiled_kernel`` (patch-based inference: the analytic plan may tile it / the C code has a
     tiled kernel), ``tile_check`` (why one operator of a tiled kind cannot run tile by tile),
     ``macs``.

2. Add its ``SPEC`` to :data:`OPS` below: the position is the order in which operators are
   listed (``SUPPORTED_OPS``, the importer's error messages).

3. Test it: the numpy reference against the tflite-micro interpreter
   (tests/common/mcu/test_reference_vs_tflm.py) and both C engines against the reference
   (tests/common/mcu/test_codegen.py, which builds graphs with :mod:`common.mcu.fixtures`).
"""

from __future__ import annotations

from common.mcu.ops import add, conv2d, depthwise, fully_connected, pad, pool, reshape, softmax
from common.mcu.ops.base import OpSpec, TFLiteMapping


def _table(*specs: OpSpec) -> dict[str, OpSpec]:
    table: dict[str, OpSpec] = {}
    for spec in specs:
        if spec.kind in table:
            raise ValueError(f"operator {spec.kind!r} is registered twice")
        table[spec.kind] = spec
    return table


#: Every operator the engine runs, by :attr:`~common.mcu.graph.Op.kind`.
OPS: dict[str, OpSpec] = _table(
    conv2d.SPEC,
    depthwise.SPEC,
    fully_connected.SPEC,
    add.SPEC,
    pool.AVG_SPEC,
    pool.MAX_SPEC,
    reshape.SPEC,
    pad.SPEC,
    softmax.SPEC,
)

__all__ = ["OPS", "OpSpec", "TFLiteMapping"]
