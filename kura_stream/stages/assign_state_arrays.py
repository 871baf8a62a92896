"""ClusterState as named arrays and back, exactly: what a clean shutdown saves for a restart.

Everything a step depends on is kept, the recent-arrival window with its neighbour lists and
the cached centroids included, so a state read back assigns the next arrivals exactly as the
state that was saved would have. Plain arrays only (no Python objects): they load without
pickle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from kura_stream.stages.assign_state import ClusterState
from kura_stream.stages.assign_thresholds import SPREAD_COLUMNS, ArrivalWindow

Arrays = dict[str, npt.NDArray[np.generic]]
_WINDOW_ARRAYS = ("_vectors", "_sims", "_top", "_top_slot", "_sum")


def state_arrays(state: ClusterState) -> Arrays:
    """The state as named arrays (see state_from_arrays)."""
    arrays: Arrays = {
        "dim": np.array(state.dim, np.int64),
        "ids": np.array(state.ids, dtype=np.str_),
        "sums": state.sums,
        "counts": state.counts,
        "spread": state.spread,
        "outlier_ids": np.array(state.outlier_ids, dtype=np.str_),
        "outlier_vectors": np.ascontiguousarray(state.outlier_vectors),
        "outliers_total": np.array(state.outliers_total, np.int64),
    }
    if state._centroids is not None:
        arrays["centroids"] = state._centroids
        arrays["norms"] = state._norms
    window = state.window
    if window is not None:
        shape = (window.dim, window.size, window.neighbours, window.seen)
        arrays["window_shape"] = np.array(shape, np.int64)
        for name in _WINDOW_ARRAYS:
            arrays[f"window{name}"] = getattr(window, name)
    return arrays


def state_from_arrays(arrays: Mapping[str, npt.NDArray[np.generic]]) -> ClusterState:
    """The state saved by state_arrays.

    Raises:
        KeyError, ValueError: arrays that state_arrays did not write, or that disagree.
    """
    dim = int(arrays["dim"])
    ids = [str(i) for i in arrays["ids"]]
    state = ClusterState(
        dim=dim,
        ids=ids,
        sums=_shaped(arrays["sums"], np.float64, (len(ids), dim)),
        counts=_shaped(arrays["counts"], np.int64, (len(ids),)),
        spread=_shaped(arrays["spread"], np.float64, (len(ids), SPREAD_COLUMNS)),
        outlier_ids=[str(i) for i in arrays["outlier_ids"]],
        outliers_total=int(arrays["outliers_total"]),
    )
    state.outlier_vectors = _shaped(
        arrays["outlier_vectors"], np.float32, (len(state.outlier_ids), dim)
    )
    if "centroids" in arrays:
        state._centroids = _shaped(arrays["centroids"], np.float32, (len(ids), dim))
        state._norms = _shaped(arrays["norms"], np.float64, (len(ids),))
    if "window_shape" in arrays:
        w_dim, size, neighbours, seen = (int(x) for x in arrays["window_shape"])
        window = ArrivalWindow(dim=w_dim, size=size, neighbours=neighbours, seen=seen)
        for name in _WINDOW_ARRAYS:
            before = getattr(window, name)
            setattr(window, name, _shaped(arrays[f"window{name}"], before.dtype, before.shape))
        state.window = window
    return state


def _shaped(array: npt.NDArray[np.generic], dtype: npt.DTypeLike, shape: tuple[int, ...]) -> Any:
    """A writable copy of array as dtype, checked against shape."""
    if array.shape != shape:
        raise ValueError(f"saved array of shape {array.shape}, expected {shape}")
    return np.array(array, dtype=dtype, copy=True)
