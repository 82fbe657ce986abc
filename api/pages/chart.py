"""A fund's monthly income and spending as an inline SVG bar chart: no script, no chart library from a CDN, and
the same figures in a table beside it for screen readers and for copying."""

from __future__ import annotations

from collections.abc import Sequence

from flask_babel import format_date
from flask_babel import gettext as _
from markupsafe import Markup, escape

from api.edge.language import money
from ledger.reports.public import Month

WIDTH, HEIGHT, AXIS = 640, 220, 24  # the drawing's size in its own units, and the month labels' band
INCOME, SPENDING = "#1a7f37", "#c2410c"


def month_chart(months: Sequence[Month], language: str) -> Markup:
    """Two bars a month (income, spending), scaled to the largest; each bar says its figure when pointed at."""
    tallest = max([month.income_minor for month in months] + [month.spending_minor for month in months] + [1])
    slot = WIDTH // max(len(months), 1)
    bar = max(slot // 3, 2)
    title = escape(_("Income and spending, month by month"))
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{title}" xmlns="http://www.w3.org/2000/svg">',
             f'<line x1="0" y1="{HEIGHT - AXIS}" x2="{WIDTH}" y2="{HEIGHT - AXIS}" stroke="#8c8f94"/>']
    for index, month in enumerate(months):
        left = index * slot + (slot - 2 * bar) // 2
        label = format_date(month.month, "MMM" if language == "en" else "M月")
        for offset, (amount, colour, what) in enumerate(((month.income_minor, INCOME, _("income")),
                                                         (month.spending_minor, SPENDING, _("spending")))):
            height = max(amount, 0) * (HEIGHT - AXIS - 8) // tallest  # whole units: no float near money
            shown = money(amount, month.currency)
            parts.append(f'<rect x="{left + offset * bar}" y="{HEIGHT - AXIS - height}" width="{bar - 1}" '
                         f'height="{height}" fill="{colour}"><title>{escape(label)} · {escape(what)}: '
                         f'{escape(shown)}</title></rect>')
        parts.append(f'<text x="{index * slot + slot // 2}" y="{HEIGHT - 6}" text-anchor="middle" font-size="12" '
                     f'fill="#50575e">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
