"""Map PNGs of a per-cell quantity (the GeoTIFF `ecovalue valuation grid --write-cells` writes):
the quantity per cell and per county, side by side, for a report (matplotlib, Agg backend, no
pyplot state). The county totals are summed over every cell at full resolution, window by
window; only the picture is decimated (at most MAX_PIXELS a side)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from valuation.raster import RasterError, open_geotiff

MAX_PIXELS = 800
STRIP_CELLS = 1 << 20


def _band_index(dataset: Any, band: str | None) -> int:
    descriptions = list(dataset.descriptions)
    if band is None:
        return 1
    if band in descriptions:
        return descriptions.index(band) + 1
    raise RasterError([{"field": "indicator", "message": f"no band {band!r}; the file holds "
                        f"{', '.join(d for d in descriptions if d and d != 'region_code')}"}])


def county_totals(path: str, band: str | None) -> tuple[dict[str, float], str, str]:
    """Sum of the band per region code (the file's region_code band), its unit and name."""
    from rasterio.windows import Window

    with open_geotiff(path, path) as dataset:
        index = _band_index(dataset, band)
        descriptions = list(dataset.descriptions)
        if "region_code" not in descriptions:
            raise RasterError([{"field": "cells", "message": "the file has no region_code band "
                                "(write it with `ecovalue valuation grid --write-cells`)"}])
        region_band = descriptions.index("region_code") + 1
        unit = dataset.tags(index).get("unit", "")
        name = descriptions[index - 1] or f"band {index}"
        totals: dict[float, float] = {}
        rows = max(1, STRIP_CELLS // dataset.width)
        for row_off in range(0, dataset.height, rows):
            window = Window(0, row_off, dataset.width, min(rows, dataset.height - row_off))
            values = dataset.read(index, window=window).ravel()
            regions = dataset.read(region_band, window=window).ravel()
            valid = ~np.isnan(values) & ~np.isnan(regions)
            codes, inverse = np.unique(regions[valid], return_inverse=True)
            sums = np.bincount(inverse, weights=values[valid], minlength=len(codes))
            for code, total in zip(codes, sums):
                totals[float(code)] = totals.get(float(code), 0.0) + float(total)
    return {str(int(code)): total for code, total in sorted(totals.items())}, unit, name


def quantity_map_png(path: str, band: str | None = None, *, title: str | None = None,
                     ) -> tuple[bytes, list[tuple[str, float, str]]]:
    """PNG of the band per cell (left) and per county (right, each county in the colour of
    its total, labelled), and the county totals (region, total, unit)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from rasterio.enums import Resampling

    totals, unit, name = county_totals(path, band)
    with open_geotiff(path, path) as dataset:
        index = _band_index(dataset, band)
        region_band = list(dataset.descriptions).index("region_code") + 1
        scale = max(dataset.width, dataset.height) / MAX_PIXELS
        shape = (max(1, int(dataset.height / max(scale, 1))),
                 max(1, int(dataset.width / max(scale, 1))))
        cells = dataset.read(index, out_shape=shape, resampling=Resampling.nearest)
        regions = dataset.read(region_band, out_shape=shape, resampling=Resampling.nearest)
        left, bottom, right, top = dataset.bounds
        crs = dataset.crs.to_string() if dataset.crs else ""
    extent = (left, right, bottom, top)
    per_county = np.full(shape, np.nan)
    for code, total in totals.items():
        per_county[regions == float(code)] = total
    figure = Figure(figsize=(12, 5.5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    cell_axes, county_axes = figure.subplots(1, 2)
    image = cell_axes.imshow(np.ma.masked_invalid(cells), extent=extent, cmap="viridis")
    cell_axes.set_title(f"{name} per cell ({unit} per cell)")
    figure.colorbar(image, ax=cell_axes, shrink=0.8, label=f"{unit} per cell")
    # from zero, so that two counties of similar totals do not look like opposites
    low = min(0.0, min(totals.values(), default=0.0))
    image = county_axes.imshow(np.ma.masked_invalid(per_county), extent=extent, cmap="YlGn",
                               vmin=low)
    county_axes.set_title(f"{name} per county ({unit})")
    figure.colorbar(image, ax=county_axes, shrink=0.8, label=unit)
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]]
    for code, total in totals.items():
        inside = regions == float(code)
        if inside.any():
            x = left + (xs[inside].mean() + 0.5) * (right - left) / shape[1]
            y = top - (ys[inside].mean() + 0.5) * (top - bottom) / shape[0]
            county_axes.annotate(f"{code}\n{total:,.4g} {unit}", (x, y), ha="center",
                                 va="center", fontsize=9,
                                 bbox={"boxstyle": "round", "fc": "white", "alpha": 0.7})
    for axes in (cell_axes, county_axes):
        axes.set_xlabel(f"x ({crs})")
        axes.set_ylabel("y")
        axes.ticklabel_format(style="plain", useOffset=False)
        axes.tick_params(labelsize=7)
    if title:
        figure.suptitle(title if title.isascii() else name)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue(), [(code, total, unit) for code, total in totals.items()]
