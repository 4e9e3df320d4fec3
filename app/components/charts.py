"""Plotly figures built from plain service data (no Reflex here; pages put the figure in state)."""

from __future__ import annotations

from datetime import date

import plotly.graph_objects as go

ACCENT = "#3e63dd"  # Radix indigo 9, the app's accent


def _layout(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(
        height=height,
        margin=dict(l=40, r=16, t=16, b=40),
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font=dict(family="Inter, system-ui, sans-serif", size=12),
        showlegend=False,
    )
    fig.update_yaxes(gridcolor="rgba(128,128,128,0.2)", rangemode="tozero", tickformat=",d")
    fig.update_xaxes(showgrid=False)
    return fig


def weekly_bars(series: list[tuple[date, int]], *, name: str, height: int = 280) -> go.Figure:
    """Bars per week (x = Monday of the week)."""
    fig = go.Figure(
        go.Bar(
            x=[week.strftime("%d %b") for week, _ in series],
            y=[count for _, count in series],
            marker_color=ACCENT,
            name=name,
            hovertemplate="Week of %{x}: %{y}<extra></extra>",
        )
    )
    if max((count for _, count in series), default=0) < 10:
        fig.update_yaxes(dtick=1)  # small counts: whole-number ticks only, no repeated labels
    return _layout(fig, height)
