"""Page-by-page lists of the admin pages: the page number, the page count and the two buttons' handlers."""

from __future__ import annotations

from typing import ClassVar

import reflex as rx

from app.session import require_scope


class PagedList(rx.State, mixin=True):
    """A list shown `per_page` rows at a time. The page's state provides `total` and `_refresh(scope)` (which
    loads `page`); moving pages is for admins only, like the lists themselves."""

    page: int = 1
    per_page: ClassVar[int] = 25  # not state: nothing a browser could change

    @rx.var
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @rx.event
    async def next_page(self):
        scope = await require_scope(self, admin=True)
        if self.page < self.pages:
            self.page += 1
            await self._refresh(scope)

    @rx.event
    async def prev_page(self):
        scope = await require_scope(self, admin=True)
        if self.page > 1:
            self.page -= 1
            await self._refresh(scope)
