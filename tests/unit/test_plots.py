"""What the figures show: a one-epoch run's point, a legend clear of the tick labels, image
grids whose gaps differ from white pixels, manifold axes labelled with z values."""

import numpy as np
import pytest
import torch

from pyro_vae.app import plots
from pyro_vae.app.plots import GAP_COLOUR, grid_centres, image_grid
from pyro_vae.store.metrics import MetricsRecord


@pytest.fixture
def figures(monkeypatch):
    """The figures the plotting functions draw, kept open instead of saved."""
    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig) or path)
    yield drawn
    for fig in drawn:
        plots.plt.close(fig)


def test_image_grid_gaps_differ_from_white_pixels():
    white = torch.ones(6, 12)  # 6 white 3x4 images, 4 per row: a last row with 2 unused places
    grid = image_grid(white, (3, 4), nrow=4)
    assert grid.shape == (1 + 2 * 4, 1 + 4 * 5, 3)
    gap = np.all(grid == np.array(GAP_COLOUR, dtype=grid.dtype), axis=-1)
    assert not np.allclose(GAP_COLOUR, 1.0)
    # every gap row and column between and around the first row's images is the gap colour
    assert gap[0, :].all() and gap[4, :].all() and gap[:5, [0, 5, 10, 15, 20]].all()
    # the images' own pixels stay white, and each is framed by the colour
    for k in range(6):
        top, left = 1 + (k // 4) * 4, 1 + (k % 4) * 5
        assert np.all(grid[top : top + 3, left : left + 4] == 1.0)
    # the unused places of the last row are white, not a block of the gap colour
    assert np.all(grid[5:9, 11:21] == 1.0)


def test_grid_centres_are_the_middles_of_the_images():
    grid = image_grid(torch.arange(3.0).repeat_interleave(6).view(3, 6) / 2, (2, 3), nrow=3)
    for k, centre in enumerate(grid_centres(3, 3)):
        column = grid[1, int(centre)]
        assert column[0] == pytest.approx(k / 2)  # the middle pixel of image k


def metrics(epochs: int) -> list[MetricsRecord]:
    return [
        MetricsRecord(epoch=e, train_objective=-40.0 + e, val_elbo=-35.0 + e)
        for e in range(1, 1 + epochs)
    ]


@pytest.mark.parametrize("epochs", [1, 2, 200])
def test_elbo_curves_show_short_runs_and_keep_the_legend_off_the_tick_labels(figures, epochs):
    plots.plot_elbo_curves(metrics(epochs), "unused.png")
    (fig,) = figures
    ax = fig.axes[0]
    curves = [line for line in ax.lines if len(line.get_xdata()) == epochs]
    assert len(curves) == 2
    for line in curves:
        # a run this short shows each point; a long one is a line
        assert (line.get_marker() not in ("None", None, "")) == (epochs <= 30)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    labels = ax.get_xticklabels() + ax.get_yticklabels() + [ax.xaxis.label, ax.yaxis.label]
    for label in labels:
        if label.get_text() and label.get_visible():
            assert not legend.overlaps(label.get_window_extent(renderer)), label.get_text()
    assert not legend.overlaps(ax.get_window_extent(renderer))  # nor the curves


def test_manifold_axes_are_labelled_with_the_z_values(figures):
    values = [-1.0, 0.0, 1.5]
    plots.plot_image_grid(
        torch.rand(9, 4), (2, 2), "unused.png", "t", nrow=3, z_axes=("z_2", values, "z_5", values)
    )
    ax = figures[0].axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["-1.00", "0.00", "1.50"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["-1.00", "0.00", "1.50"]
    assert list(ax.get_xticks()) == grid_centres(3, 2)
    assert ax.get_ylabel() == "z_2" and ax.get_xlabel() == "z_5"


def test_a_latent_grid_panel_is_labelled_and_the_others_are_not(figures):
    values = [-0.5, 0.5]
    panels = [("samples", torch.rand(4, 4)), ("grid", torch.rand(4, 4))]
    plots.plot_image_panels(
        panels, (2, 2), "unused.png", "t", nrow=2, z_axes=[None, ("z_1", values, "z_3", values)]
    )
    plain, grid = figures[0].axes
    assert not plain.axison and grid.axison
    assert [t.get_text() for t in grid.get_xticklabels()] == ["-0.50", "0.50"]
    assert grid.get_xlabel() == "z_3" and grid.get_ylabel() == "z_1"
