"""Plotly figures built from plain service data (no Reflex here; pages put the figure in state)."""

from __future__ import annotations

from datetime import date, datetime

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


def _integer_ticks(values: list[int]) -> dict:
    """Small counts get one tick per unit; a ",d" format alone repeats labels (0, 1, 1, 2, 2)."""
    return {"dtick": 1} if max(values, default=0) <= 5 else {}


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
    fig = _layout(fig, height)
    fig.update_yaxes(**_integer_ticks([count for _, count in series]))
    return fig


# Radix step-9 colours for the status badges' colour names, so the chart matches the cards.
RADIX_9 = {
    "gray": "#8d8d8d",
    "blue": "#0090ff",
    "violet": "#6e56cf",
    "green": "#30a46c",
    "grass": "#46a758",
    "red": "#e5484d",
    "orange": "#f76b15",
}


def horizontal_bars(labels: list[str], values: list[int], colors: list[str], *, height: int = 280) -> go.Figure:
    """One bar per category, largest readable at a glance (e.g. contacts per status)."""
    fig = go.Figure(
        go.Bar(
            x=values,
            y=labels,
            orientation="h",
            marker_color=[RADIX_9.get(c, ACCENT) for c in colors],
            text=[f"{v:,}" for v in values],
            textposition="auto",
            hovertemplate="%{y}: %{x:,}<extra></extra>",
        )
    )
    fig = _layout(fig, height)
    fig.update_yaxes(autorange="reversed", gridcolor="rgba(0,0,0,0)", tickformat=None)
    fig.update_xaxes(
        showgrid=True, gridcolor="rgba(128,128,128,0.2)", rangemode="tozero", tickformat=",d", **_integer_ticks(values)
    )
    fig.update_layout(margin=dict(l=90, r=16, t=8, b=32))
    return fig


def activity_lines(
    starts: list[datetime],
    series: list[tuple[str, list[int], str, bool]],
    *,
    height: int = 260,
    hover: str = "%{x|%d %b %H:%M}",
) -> go.Figure:
    """Counts over time on a date axis (plotly spaces the ticks), one line per series: (name, values, Radix colour
    name, dashed). Used for a campaign's opens and clicks: human figures solid, all (machines included) dotted."""
    fig = go.Figure()
    for name, values, color, dashed in series:
        fig.add_trace(
            go.Scatter(
                x=starts,
                y=values,
                name=name,
                mode="lines",
                line=dict(color=RADIX_9.get(color, ACCENT), width=2, dash="dot" if dashed else "solid", shape="hv"),
                hovertemplate=f"{hover}: %{{y:,}} {name.lower()}<extra></extra>",
            )
        )
    fig = _layout(fig, height)
    fig.update_layout(
        showlegend=True,
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
        margin=dict(l=40, r=16, t=32, b=32),
    )
    fig.update_yaxes(**_integer_ticks([v for _, values, _, _ in series for v in values]))
    return fig


def daily_usage_bars(days: list[date], calls: list[int], words: list[int], *, height: int = 280) -> go.Figure:
    """A month's usage per UTC day: calls as bars (left axis), voice words as a line (right axis)."""
    labels = [day.strftime("%d %b") for day in days]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(x=labels, y=calls, name="Calls", marker_color=ACCENT, hovertemplate="%{x}: %{y:,} calls<extra></extra>")
    )
    fig.add_trace(
        go.Scatter(
            x=labels,
            y=words,
            name="Voice words",
            yaxis="y2",
            mode="lines+markers",
            line=dict(color=RADIX_9["orange"], width=2),
            marker=dict(size=4),
            hovertemplate="%{x}: %{y:,} voice words<extra></extra>",
        )
    )
    fig = _layout(fig, height)
    fig.update_layout(
        showlegend=True,
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
        margin=dict(l=40, r=48, t=32, b=40),
        yaxis2=dict(overlaying="y", side="right", rangemode="tozero", showgrid=False, tickformat="~s"),
        bargap=0.25,
    )
    # Headroom above the tallest bar, so the words line never runs along the bars' tops.
    fig.update_layout(yaxis=dict(range=[0, max(calls, default=0) * 1.25 or 1], **_integer_ticks(calls)))
    fig.update_layout(yaxis2=dict(range=[0, max(words, default=0) * 1.1 or 1]))
    fig.update_xaxes(nticks=8)
    return fig


def money_bars(
    labels: list[str],
    cents: list[int],
    texts: list[str],
    *,
    ticks: list[str] | None = None,
    horizontal: bool = False,
    height: int = 280,
) -> go.Figure:
    """Amounts of money per category (revenue per month, usage charge per organisation). The axis is in dollars;
    `texts` are the exact amounts, formatted from integer cents by the caller: written on horizontal bars, in the
    hover on vertical ones (too narrow to hold them at twelve months on a phone). `ticks` (optional) label the
    categories on the axis in place of `labels`, which stay the hover's names."""
    dollars = [c / 100 for c in cents]  # plotting only: the amounts shown come from `texts`
    bar = go.Bar(
        x=dollars if horizontal else labels,
        y=labels if horizontal else dollars,
        orientation="h" if horizontal else "v",
        marker_color=ACCENT,
        text=texts if horizontal else None,
        textposition="auto",
        customdata=texts,
        hovertemplate=("%{y}" if horizontal else "%{x}") + ": %{customdata}<extra></extra>",
    )
    fig = _layout(go.Figure(bar), height)
    money_axis = dict(tickprefix="$", tickformat=",.0f", rangemode="tozero", gridcolor="rgba(128,128,128,0.2)")
    category_ticks = dict(tickvals=labels, ticktext=ticks) if ticks is not None else {}
    if horizontal:
        fig.update_yaxes(autorange="reversed", gridcolor="rgba(0,0,0,0)", tickformat=None, automargin=True)
        fig.update_yaxes(**category_ticks)
        fig.update_xaxes(showgrid=True, **money_axis)
        fig.update_layout(margin=dict(l=16, r=16, t=8, b=32))
    else:
        fig.update_yaxes(automargin=True, **money_axis)
        fig.update_xaxes(tickangle=0, **category_ticks)
    return fig
