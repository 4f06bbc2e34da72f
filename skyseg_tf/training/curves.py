"""Training curves: loss and IoU, train vs validation (the study's Figure 3)."""

from __future__ import annotations

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def plot_training_curves(history: dict, out_path: str, title: str | None = None, loss_name: str = "dice") -> str:
    """Writes a PNG with two panels: loss and IoU per epoch, train and validation.

    Args:
        history: ``{"loss": [...], "val_loss": [...], "iou": [...], "val_iou": [...]}``
            (extra keys are ignored; ``"epoch"`` gives the x axis when present).
        out_path: Where to write the PNG.
        title: Figure title (for example the model name).
        loss_name: The loss trained (``"dice"``, ``"bce_dice"``...), for the axis label.

    Returns:
        ``out_path``.

    Example:
        >>> plot_training_curves({"loss": [0.5, 0.3], "val_loss": [0.6, 0.4],
        ...                       "iou": [0.7, 0.8], "val_iou": [0.6, 0.75]}, "/tmp/curves.png")
        '/tmp/curves.png'
    """
    figure = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(figure)
    count = len(history.get("loss", []))
    epochs = [e + 1 for e in history.get("epoch", range(count))]
    loss_label = {"dice": "Dice loss", "bce": "BCE loss", "bce_dice": "BCE + Dice loss",
                  "focal": "focal loss"}.get(loss_name, f"{loss_name} loss")
    for index, (metric, label) in enumerate((("loss", loss_label), ("iou", "IoU (sky)"))):
        axes = figure.add_subplot(1, 2, index + 1)
        for key, name, style in ((metric, "train", "-o"), (f"val_{metric}", "validation", "-s")):
            if history.get(key):
                axes.plot(epochs[: len(history[key])], history[key], style, label=name, markersize=3)
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        axes.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(out_path)
    return out_path
