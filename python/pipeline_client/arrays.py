"""Arrow batch columns as numpy arrays, without copying the pixels.

View columns are arrow.fixed_shape_tensor (pyarrow's FixedShapeTensorType) with storage
fixed_size_list<uint8>[n], or plain fixed_size_list<uint8>[n]. Their shape comes from the
extension type, else from the field's extension metadata (a reader that does not know the type),
else from the caller, else it is guessed as a square RGB image.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa

from . import schema

EXTENSION_NAME = b"arrow.fixed_shape_tensor"


def view_fields(schema: pa.Schema) -> list[str]:
    """The names of the view-group columns, in schema order."""
    return [f.name for f in schema if _is_view_type(f.type)]


def _is_view_type(t: pa.DataType) -> bool:
    # The canonical tensor type is a BaseExtensionType, not a pa.ExtensionType (that class is
    # for extension types defined in Python), so test for it first.
    if isinstance(t, pa.FixedShapeTensorType):
        return True
    if isinstance(t, pa.BaseExtensionType):
        return False
    return pa.types.is_fixed_size_list(t) and t.value_type == pa.uint8()


def view_array(array: pa.Array, field: pa.Field | None = None, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A uint8 ndarray of shape [rows, *shape] that shares the column's memory."""
    if array.null_count:
        raise ValueError(f"view column {field.name if field else ''} has {array.null_count} null rows")
    if isinstance(array.type, pa.FixedShapeTensorType):
        out = array.to_numpy_ndarray()  # zero-copy for a null-free column
    else:
        n = array.type.list_size
        shape = shape or _shape_from_metadata(field) or _square_rgb(n, field)
        if math.prod(shape) != n:
            raise ValueError(f"shape {shape} does not hold {n} bytes")
        # flatten() honours the array's offset (a sliced batch) and copies nothing.
        flat = array.flatten().to_numpy(zero_copy_only=True)
        out = flat.reshape((len(array),) + tuple(shape))
    if out.dtype != np.uint8:
        raise TypeError(f"view column has {out.dtype} values, want uint8")
    return out


def _shape_from_metadata(field: pa.Field | None) -> tuple[int, ...] | None:
    md = (field.metadata or {}) if field is not None else {}
    if md.get(b"ARROW:extension:name") != EXTENSION_NAME:
        return None
    return tuple(json.loads(md[b"ARROW:extension:metadata"])["shape"])


def _square_rgb(n: int, field: pa.Field | None) -> tuple[int, int, int]:
    side = math.isqrt(n // 3)
    if side * side * 3 != n:
        name = field.name if field is not None else "?"
        raise ValueError(f"view column {name}: {n} bytes is no square RGB image; pass shapes={{{name!r}: (H, W, 3)}}")
    return (side, side, 3)


def batch_arrays(batch: pa.RecordBatch, shapes: dict[str, tuple[int, ...]] | None = None) -> dict[str, np.ndarray]:
    """Every view group as uint8 [rows, (views,) H, W, 3] (zero-copy), plus label and index."""
    schema.check_metadata(batch.schema.metadata)
    shapes = shapes or {}
    out = {}
    for i, field in enumerate(batch.schema):
        if _is_view_type(field.type):
            out[field.name] = view_array(batch.column(i), field, shapes.get(field.name))
    if not out:
        raise ValueError(f"batch has no view columns: {batch.schema}")
    for name in ("label", "index"):
        if name in batch.schema.names:
            out[name] = batch.column(name).to_numpy(zero_copy_only=False)
    return out
