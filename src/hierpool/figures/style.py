"""The figure style in one place: the palette, the resolution, literal text and the save function.

Every figure module (hierpool.figures, hierpool.simstudy.plots) draws with these; importing
this module sets the backend (Agg) and literal text; the interval
level is `hierpool.summaries.HDI_PROB`.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
# Labels come from the data (site names, column names): draw them literally, never as maths
# (`Lab $x^$` would otherwise be parsed, and fail, as TeX). Our own labels use no mathtext.
matplotlib.rcParams["text.parse_math"] = False

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.text  # noqa: E402

from hierpool.io import atomic_write  # noqa: E402

REPORT_DPI = 110
# One colour per rung of the pooling ladder (hierpool.roles), in every figure of every report.
MODEL_COLORS = {
    "complete_pooling": "0.35",
    "no_pooling": "C1",
    "varying_intercepts": "C0",
    "varying_slopes": "C2",
}
EXTRA_COLORS = ("C4", "C5", "C6", "C8", "C9", "C7")


def model_colors(model_roles: dict) -> dict:
    """A colour per model: its rung's colour (`MODEL_COLORS`) for the first model of each rung,
    a colour of its own for any further one (e.g. the correlated beside the independent slopes)."""
    out, used, extra = {}, set(), iter(EXTRA_COLORS * 4)
    for model, role in model_roles.items():
        color = MODEL_COLORS.get(role)
        out[model] = color if color and color not in used else next(extra)
        used.add(out[model])
    return out


def save_figure(fig, path) -> None:
    """Save a figure as PNG atomically and close it (every text drawn literally, see above)."""
    for text in fig.findobj(matplotlib.text.Text):
        text.set_parse_math(False)
    atomic_write(path, lambda p: fig.savefig(p, dpi=REPORT_DPI, bbox_inches="tight", format="png"))
    plt.close(fig)
