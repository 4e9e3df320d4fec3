"""CSV import: drop a file, check the preview, map the columns, choose what happens to duplicates, import.

The upload streams in chunks (a background handler) to private storage, with the 200 MB limit enforced
in the browser and again on the server. The import runs as a job; this page follows its progress (it
survives a reload: the import's id is in the URL) and shows the per-row errors with a CSV download.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator

import reflex as rx

from app.api.downloads import error_report_path
from app.components.cards import empty_state, section, stat_tile
from app.components.crm import crm_tabs, when
from app.components.layout import page_shell
from app.services import local_time
from app.services.accounts import auth
from app.services.accounts.quotas import QuotaReached
from app.services.crm import custom_fields
from app.services.errors import NotFound, ValidationFailed
from app.services.imports import csv_files, csv_import
from app.services.imports import csv_mapping as cm
from app.services.imports.csv_files import ImportRefused
from app.session import require_principal, require_scope

UPLOAD_ID = "csv-upload"
POLL_SECONDS = 1.0


@dataclasses.dataclass(frozen=True)
class ImportInfo:
    """The import this page shows: its file, how it was read, and its progress."""

    filename: str = ""
    size: str = ""  # "1.2 MB"
    status: str = ""  # "" before an upload, then uploaded | queued | running | done | failed | cancelled
    status_label: str = ""
    encoding: str = ""
    delimiter: str = ""  # its name: comma, semicolon, ...
    has_header: bool = True
    rows_total: int = 0  # estimated from the file's size until the import has read it
    rows_read: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0
    percent: int = 0
    error: str = ""
    mode: str = ""  # what happens to duplicates, in words


def _info(view: csv_import.ImportView) -> ImportInfo:
    return ImportInfo(
        filename=view.filename,
        size=view.size,
        status=view.status,
        status_label=view.status_label,
        encoding=view.encoding,
        delimiter=csv_files.DELIMITER_NAMES.get(view.delimiter, view.delimiter),
        has_header=view.has_header,
        rows_total=view.rows_total,
        rows_read=view.rows_read,
        created=view.created,
        updated=view.updated,
        skipped=view.skipped,
        failed=view.failed,
        percent=view.percent,
        error=view.error,
        mode=csv_import.MODE_LABELS.get(view.duplicates, view.duplicates),
    )


@dataclasses.dataclass(frozen=True)
class ImportRow:
    """A recent import in the list under the page."""

    id: str
    filename: str
    status: str
    status_label: str
    created: int
    updated: int
    failed: int
    started_at: str  # in the organisation's zone, as shown


def _import_row(view: csv_import.ImportView, zone: str) -> ImportRow:
    started = local_time.moment(view.created_at, zone)
    return ImportRow(
        view.id, view.filename, view.status, view.status_label, view.created, view.updated, view.failed, started
    )


@dataclasses.dataclass(frozen=True)
class MappingColumn:
    """A column of the file in the mapping table."""

    index: int
    header: str
    target: str  # a csv_mapping target value
    samples: str  # the first values of the column
    error: str


@dataclasses.dataclass(frozen=True)
class SavedMappingChoice:
    id: str
    name: str


def blocking_chunks(chunks: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop) -> Iterator[bytes]:
    """An async stream read from a worker thread: each chunk is awaited on the event loop that owns it."""
    while True:
        try:
            yield asyncio.run_coroutine_threadsafe(anext(chunks), loop).result()
        except StopAsyncIteration:
            return


class ImportState(rx.State):
    # the current import (its id is also in the URL)
    import_id: str = ""
    info: ImportInfo = ImportInfo()
    headers: list[str] = []
    preview: list[list[str]] = []
    mapping: list[str] = []
    targets: list[cm.Target] = []
    duplicates: str = "skip"
    keep_existing: bool = True
    save_as: str = ""
    saved: list[SavedMappingChoice] = []
    mapping_errors: dict[str, str] = {}
    errors: list[csv_import.RowErrorView] = []
    error_total: int = 0
    history: list[ImportRow] = []
    # the upload
    uploading: bool = False
    upload_percent: int = 0
    upload_error: str = ""
    busy: bool = False
    watching: bool = False

    @rx.var
    def stage(self) -> str:
        """upload | map | running | finished"""
        status = self.info.status
        if not self.import_id or not status:
            return "upload"
        if status == "uploaded":
            return "map"
        if status in ("queued", "running"):
            return "running"
        return "finished"

    @rx.var
    def columns(self) -> list[MappingColumn]:
        """One entry per file column: its header, the chosen target, and sample values."""
        return [
            MappingColumn(
                index=i,
                header=h,
                target=self.mapping[i] if i < len(self.mapping) else cm.SKIP,
                samples=" · ".join(r[i] for r in self.preview[:3] if i < len(r) and r[i])[:80],
                error=self.mapping_errors.get(f"column:{h}", ""),
            )
            for i, h in enumerate(self.headers)
        ]

    @rx.var
    def general_errors(self) -> list[str]:
        return [v for k, v in self.mapping_errors.items() if not k.startswith("column:")]

    async def _show(self, scope, view: csv_import.ImportView) -> None:
        self.import_id = view.id
        self.info = _info(view)
        self.headers, self.preview = view.headers, view.preview
        if view.status != "uploaded" or not self.mapping:  # (an upload's mapping is the user's to edit)
            self.mapping = view.mapping
        if view.status in ("done", "failed", "cancelled"):
            rows, total = await asyncio.to_thread(csv_import.row_errors, scope, view.id, limit=50)
            self.errors = rows
            self.error_total = total

    async def _refresh_lists(self, scope) -> None:
        definitions = await asyncio.to_thread(custom_fields.list_fields, scope)
        self.targets = cm.targets(definitions)
        self.saved = [SavedMappingChoice(m.id, m.name) for m in await asyncio.to_thread(cm.saved_mappings, scope)]
        self.history = [
            _import_row(v, scope.time_zone) for v in await asyncio.to_thread(csv_import.list_imports, scope, 8)
        ]

    def _reset(self) -> None:
        self.import_id, self.info, self.headers, self.preview, self.mapping = "", ImportInfo(), [], [], []
        self.mapping_errors, self.errors, self.error_total = {}, [], 0
        self.duplicates, self.keep_existing, self.save_as = "skip", True, ""
        self.upload_error, self.upload_percent, self.uploading = "", 0, False

    @rx.event
    async def load(self):
        scope = await require_scope(self, admin=True)
        self._reset()
        await self._refresh_lists(scope)
        wanted = self.router.url.query_parameters.get("id", "")
        if wanted:
            try:
                await self._show(scope, await asyncio.to_thread(csv_import.import_view, scope, wanted))
            except NotFound:
                return rx.toast.error("That import does not exist.")
        if self.stage == "running":
            return ImportState.watch

    # --- upload --------------------------------------------------------------------------------------------

    @rx.event(background=True)
    async def upload(self, chunks: rx.UploadChunkIterator):
        async with self:
            scope = await require_scope(self, admin=True)
            self._reset()
            self.uploading = True
        first = await anext(chunks, None)
        filename = (first.filename if first else "") or "contacts.csv"

        async def data() -> AsyncIterator[bytes]:
            if first is None:
                return
            yield first.data
            async for chunk in chunks:
                if chunk.filename and chunk.filename != filename:
                    continue  # one file per import: extra files are ignored
                yield chunk.data

        try:  # stored in a worker thread as the browser sends it; a refused or broken upload leaves no file
            view = await asyncio.to_thread(
                csv_import.store_upload, scope, filename, blocking_chunks(data(), asyncio.get_running_loop())
            )
        except (ImportRefused, QuotaReached) as exc:
            async with self:
                self.uploading = False
                self.upload_error = exc.message
            return
        # The new ?id= runs `load`, which shows the mapping step (and clears `uploading`).
        yield rx.redirect(f"/crm/import?id={view.id}")

    @rx.event
    async def upload_progress(self, progress: dict):
        await require_scope(self, admin=True)
        self.upload_percent = int(float(progress.get("progress", 0) or 0) * 100)

    @rx.event
    async def rejected(self, files: list[dict]):
        await require_scope(self, admin=True)
        codes = {e.get("code") for f in files for e in f.get("errors", [])}
        if "file-too-large" in codes:
            size = max((int(f.get("file", {}).get("size", 0) or 0) for f in files), default=0)
            self.upload_error = csv_files.too_large_message(size or csv_files.MAX_BYTES + 1)
        elif "too-many-files" in codes:
            self.upload_error = "Drop one CSV file at a time."
        else:
            self.upload_error = "That file cannot be uploaded. Choose a .csv file."

    # --- preview and mapping -------------------------------------------------------------------------------

    @rx.event
    async def set_header(self, has_header: bool):
        scope = await require_scope(self, admin=True)
        view = await asyncio.to_thread(csv_import.reread, scope, self.import_id, has_header=has_header)
        self.mapping = []
        await self._show(scope, view)

    @rx.event
    async def set_delimiter(self, name: str):
        scope = await require_scope(self, admin=True)
        try:
            view = await asyncio.to_thread(
                csv_import.reread, scope, self.import_id, delimiter=csv_files.delimiter_named(name) or "?"
            )
        except (ValidationFailed, ImportRefused) as exc:
            return rx.toast.error(exc.message)
        self.mapping = []
        await self._show(scope, view)

    @rx.event
    async def set_target(self, index: int, target: str):
        await require_scope(self, admin=True)
        mapping = list(self.mapping)
        if 0 <= index < len(mapping):
            mapping[index] = target
        self.mapping = mapping
        self.mapping_errors = {}

    @rx.event
    async def apply_saved(self, mapping_id: str):
        scope = await require_scope(self, admin=True)
        saved = next((s for s in await asyncio.to_thread(cm.saved_mappings, scope) if s.id == mapping_id), None)
        if saved is None:
            return rx.toast.error("That saved mapping no longer exists.")
        definitions = await asyncio.to_thread(custom_fields.list_fields, scope)
        self.mapping = cm.apply_saved(saved, self.headers, definitions)
        return rx.toast.success(f"Applied the “{saved.name}” mapping.")

    @rx.event
    async def set_duplicates(self, value: str):
        await require_scope(self, admin=True)
        self.duplicates = value

    @rx.event
    async def set_keep_existing(self, value: bool):
        await require_scope(self, admin=True)
        self.keep_existing = bool(value)

    @rx.event
    async def set_save_as(self, value: str):
        await require_scope(self, admin=True)
        self.save_as = value[:120]

    @rx.event
    async def start(self):
        scope = await require_scope(self, admin=True)
        self.busy = True
        yield
        try:
            view = await asyncio.to_thread(
                csv_import.start,
                scope,
                self.import_id,
                self.mapping,
                {"duplicates": self.duplicates, "keep_existing_when_empty": self.keep_existing},
                save_as=self.save_as,
            )
        except ValidationFailed as exc:
            self.mapping_errors = exc.fields
            self.busy = False
            yield rx.toast.error("Check the mapping: " + exc.message)
            return
        except QuotaReached as exc:
            self.busy = False
            yield rx.toast.error(exc.message)
            return
        self.busy = False
        await self._show(scope, view)
        await self._refresh_lists(scope)
        yield ImportState.watch

    @rx.event
    async def cancel(self):
        scope = await require_scope(self, admin=True)
        view = await asyncio.to_thread(csv_import.cancel, scope, self.import_id)
        await self._show(scope, view)
        return rx.toast.info("Stopping after the current batch. Rows already imported are kept.")

    @rx.event
    async def start_over(self):
        await require_scope(self, admin=True)
        self._reset()
        return rx.redirect("/crm/import")

    # --- progress ------------------------------------------------------------------------------------------

    @rx.event(background=True)
    async def watch(self):
        """Follow the running import until it ends (one watcher per browser tab)."""
        async with self:
            if self.watching:
                return
            scope = await require_scope(self, admin=True)
            self.watching = True
        try:
            while True:
                await asyncio.sleep(POLL_SECONDS)
                async with self:
                    if not self.import_id:
                        return
                    view = await asyncio.to_thread(csv_import.import_view, scope, self.import_id)
                    await self._show(scope, view)
                    if not view.active:
                        await self._refresh_lists(scope)
                        finished = view
                        break
            if finished.status == "done":
                yield rx.toast.success(
                    f"Import finished: {finished.created:,} added, {finished.updated:,} updated, "
                    f"{finished.skipped:,} skipped, {finished.failed:,} with errors."
                )
            else:
                yield rx.toast.error(finished.error or "The import stopped.")
        finally:
            async with self:
                self.watching = False

    @rx.event
    async def download_errors(self):
        principal: auth.Principal = await require_principal(self, admin=True)
        url = auth.download_link(principal, error_report_path(self.import_id))
        return rx.download(url=url)


def _upload_zone() -> rx.Component:
    return rx.vstack(
        rx.upload.root(
            rx.vstack(
                rx.box(
                    rx.icon("file-up", size=28),
                    padding="14px",
                    border_radius="999px",
                    background=rx.color("accent", 3),
                    color=rx.color("accent", 11),
                ),
                rx.heading("Drop a CSV file here", size="4"),
                rx.text(
                    "or click to choose one. Up to 200 MB; UTF-8, Latin-1, comma, semicolon or tab separated.",
                    size="2",
                    color_scheme="gray",
                    text_align="center",
                ),
                rx.button("Choose file", variant="soft", type="button"),
                align="center",
                spacing="2",
                padding="40px",
            ),
            id=UPLOAD_ID,
            multiple=False,
            max_files=1,
            max_size=csv_files.MAX_BYTES,
            accept={"text/csv": [".csv", ".txt", ".tsv"], "application/vnd.ms-excel": [".csv"]},
            on_drop=ImportState.upload(
                rx.upload_files_chunk(upload_id=UPLOAD_ID, on_upload_progress=ImportState.upload_progress)
            ),
            on_drop_rejected=ImportState.rejected,
            border=f"2px dashed {rx.color('accent', 7)}",
            border_radius="12px",
            width="100%",
            cursor="pointer",
            data_testid="csv-dropzone",
        ),
        rx.cond(
            ImportState.uploading,
            rx.vstack(
                rx.text("Uploading… ", ImportState.upload_percent, "%", size="2"),
                rx.progress(value=ImportState.upload_percent, width="100%"),
                width="100%",
            ),
        ),
        rx.cond(
            ImportState.upload_error != "",
            rx.callout(
                ImportState.upload_error,
                color_scheme="red",
                icon="triangle-alert",
                width="100%",
                data_testid="upload-error",
            ),
        ),
        rx.text(
            "Columns are matched to contact fields by name (",
            rx.code("business_name"),
            ", ",
            rx.code("Company"),
            ", ",
            rx.code("E-mail"),
            ", …); you can change every match before importing.",
            size="2",
            color_scheme="gray",
        ),
        width="100%",
        spacing="3",
    )


def _target_select(column: MappingColumn) -> rx.Component:
    return rx.select.root(
        rx.select.trigger(width="100%", data_testid="column-target"),
        rx.select.content(
            rx.foreach(ImportState.targets, lambda target: rx.select.item(target.label, value=target.value))
        ),
        value=column.target,
        on_change=lambda value: ImportState.set_target(column.index, value),
    )


def _mapping_table() -> rx.Component:
    return rx.box(
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    rx.table.column_header_cell("Column in the file"),
                    rx.table.column_header_cell("Import as"),
                    rx.table.column_header_cell("Sample values"),
                )
            ),
            rx.table.body(
                rx.foreach(
                    ImportState.columns,
                    lambda column: rx.table.row(
                        rx.table.cell(rx.text(column.header, weight="medium")),
                        rx.table.cell(
                            rx.vstack(
                                _target_select(column),
                                rx.cond(column.error != "", rx.text(column.error, color_scheme="red", size="1")),
                                spacing="1",
                                min_width="240px",
                            )
                        ),
                        rx.table.cell(rx.text(column.samples, size="1", color_scheme="gray")),
                        align="center",
                    ),
                )
            ),
            width="100%",
            size="1",
        ),
        width="100%",
        data_testid="mapping-table",
    )


def _preview() -> rx.Component:
    return rx.box(
        rx.table.root(
            rx.table.header(rx.table.row(rx.foreach(ImportState.headers, lambda h: rx.table.column_header_cell(h)))),
            rx.table.body(
                rx.foreach(
                    ImportState.preview,
                    lambda r: rx.table.row(
                        rx.foreach(
                            r,
                            lambda cell: rx.table.cell(
                                rx.text(
                                    cell,
                                    size="1",
                                    max_width="220px",
                                    overflow="hidden",
                                    text_overflow="ellipsis",
                                    white_space="nowrap",
                                )
                            ),
                        )
                    ),
                )
            ),
            size="1",
            variant="surface",
        ),
        overflow_x="auto",
        width="100%",
        data_testid="preview",
    )


def _map_stage() -> rx.Component:
    info = ImportState.info
    return rx.vstack(
        section(
            "1. Check the file",
            rx.hstack(
                rx.badge(rx.icon("file-text", size=12), info.filename, size="2"),
                rx.badge(info.size, variant="soft", color_scheme="gray"),
                rx.badge("about ", info.rows_total, " rows", variant="soft", color_scheme="gray"),
                rx.badge(info.encoding, variant="soft", color_scheme="gray"),
                rx.spacer(),
                rx.text("Separator", size="2"),
                rx.select(
                    list(csv_files.DELIMITER_NAMES.values()),
                    value=info.delimiter,
                    on_change=ImportState.set_delimiter,
                    size="1",
                ),
                rx.checkbox("First row is a header", checked=info.has_header, on_change=ImportState.set_header),
                spacing="2",
                align="center",
                wrap="wrap",
                width="100%",
            ),
            _preview(),
        ),
        section(
            "2. Map the columns",
            rx.cond(
                ImportState.saved.length() > 0,
                rx.hstack(
                    rx.text("Use a saved mapping:", size="2"),
                    rx.select.root(
                        rx.select.trigger(placeholder="Choose…"),
                        rx.select.content(
                            rx.foreach(ImportState.saved, lambda saved: rx.select.item(saved.name, value=saved.id))
                        ),
                        on_change=ImportState.apply_saved,
                    ),
                    align="center",
                    spacing="2",
                ),
            ),
            _mapping_table(),
            rx.foreach(
                ImportState.general_errors,
                lambda message: rx.callout(message, color_scheme="red", icon="triangle-alert", size="1", width="100%"),
            ),
            rx.hstack(
                rx.text("Save this mapping as", size="2"),
                rx.input(
                    value=ImportState.save_as,
                    on_change=ImportState.set_save_as,
                    placeholder="e.g. Front desk export",
                    width="260px",
                ),
                align="center",
                spacing="2",
                wrap="wrap",
            ),
        ),
        section(
            "3. Duplicates",
            rx.text(
                "A duplicate is a row whose email (ignoring case and spaces) matches a contact you already have, or "
                "an earlier row of this file (the first one is used).",
                size="2",
                color_scheme="gray",
            ),
            rx.radio_group.root(
                rx.vstack(
                    *[
                        rx.hstack(
                            rx.radio_group.item(value=value),
                            rx.text(label, size="2"),
                            align="center",
                            data_testid=f"mode-{value}",
                        )
                        for value, label in csv_import.MODE_LABELS.items()
                    ],
                    spacing="2",
                ),
                value=ImportState.duplicates,
                on_change=ImportState.set_duplicates,
            ),
            rx.checkbox(
                "When a cell is empty, keep the value the contact already has",
                checked=ImportState.keep_existing,
                on_change=ImportState.set_keep_existing,
            ),
        ),
        rx.hstack(
            rx.button("Choose another file", variant="soft", color_scheme="gray", on_click=ImportState.start_over),
            rx.spacer(),
            rx.button(
                rx.icon("upload", size=16),
                "Import contacts",
                size="3",
                on_click=ImportState.start,
                loading=ImportState.busy,
                data_testid="start-import",
            ),
            width="100%",
            wrap="wrap",
            spacing="3",
        ),
        width="100%",
        spacing="4",
    )


def _counts() -> rx.Component:
    info = ImportState.info
    return rx.grid(
        stat_tile("Rows read", info.rows_read, "list"),
        stat_tile("Added", info.created, "user-plus"),
        stat_tile("Updated", info.updated, "refresh-cw"),
        stat_tile("Skipped", info.skipped, "skip-forward"),
        stat_tile("With errors", info.failed, "triangle-alert"),
        columns=rx.breakpoints(initial="2", md="5"),
        spacing="3",
        width="100%",
        data_testid="import-counts",
    )


def _running_stage() -> rx.Component:
    info = ImportState.info
    return section(
        "Importing " + info.filename,
        rx.hstack(
            rx.text(info.status_label, " · ", info.percent, "%", size="2", data_testid="import-status"),
            rx.spacer(),
            rx.text(info.mode, size="1", color_scheme="gray"),
            width="100%",
        ),
        rx.progress(value=info.percent, width="100%", data_testid="import-progress"),
        _counts(),
        rx.hstack(
            rx.text(
                "You can leave this page; the import keeps running and this page picks it up again.",
                size="1",
                color_scheme="gray",
            ),
            rx.spacer(),
            rx.button("Stop import", variant="soft", color_scheme="red", on_click=ImportState.cancel),
            width="100%",
            align="center",
        ),
    )


def _errors_table() -> rx.Component:
    return rx.table.root(
        rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in ("Row", "Column", "Value", "Problem")])),
        rx.table.body(
            rx.foreach(
                ImportState.errors,
                lambda problem: rx.table.row(
                    rx.table.cell(problem.row),
                    rx.table.cell(problem.column),
                    rx.table.cell(
                        rx.text(
                            problem.value,
                            size="2",
                            max_width="200px",
                            overflow="hidden",
                            text_overflow="ellipsis",
                            white_space="nowrap",
                        )
                    ),
                    rx.table.cell(rx.text(problem.reason, size="2")),
                ),
            )
        ),
        size="1",
        width="100%",
        data_testid="import-errors",
    )


def _finished_stage() -> rx.Component:
    info = ImportState.info
    return rx.vstack(
        section(
            rx.cond(info.status == "done", "Import finished", "Import stopped"),
            rx.cond(info.error != "", rx.callout(info.error, color_scheme="orange", icon="info", width="100%")),
            _counts(),
            rx.hstack(
                rx.link(rx.button(rx.icon("contact", size=16), "View contacts"), href="/crm/contacts"),
                rx.button(
                    rx.icon("file-up", size=16), "Import another file", variant="soft", on_click=ImportState.start_over
                ),
                spacing="3",
            ),
        ),
        rx.cond(
            ImportState.error_total > 0,
            section(
                rx.text("Rows with problems (", ImportState.error_total, ")"),
                rx.text(
                    "Fix these rows in your spreadsheet and import just them again; the other rows are in.",
                    size="2",
                    color_scheme="gray",
                ),
                _errors_table(),
                rx.cond(
                    ImportState.error_total > ImportState.errors.length(),
                    rx.text(
                        "Showing the first ",
                        ImportState.errors.length(),
                        "; the report has all of them.",
                        size="1",
                        color_scheme="gray",
                    ),
                ),
                action=rx.button(
                    rx.icon("download", size=16),
                    "Download error report",
                    variant="soft",
                    on_click=ImportState.download_errors,
                    data_testid="download-errors",
                ),
            ),
        ),
        width="100%",
        spacing="4",
    )


def _history() -> rx.Component:
    return rx.cond(
        ImportState.history.length() > 0,
        section(
            "Recent imports",
            rx.vstack(
                rx.foreach(
                    ImportState.history,
                    lambda row: rx.link(
                        rx.hstack(
                            rx.icon("file-text", size=16, color=rx.color("gray", 10)),
                            rx.text(row.filename, size="2", weight="medium"),
                            rx.badge(
                                row.status_label,
                                variant="soft",
                                color_scheme=rx.match(
                                    row.status, ("done", "green"), ("failed", "red"), ("cancelled", "gray"), "blue"
                                ),
                            ),
                            rx.text(
                                row.created,
                                " added · ",
                                row.updated,
                                " updated · ",
                                row.failed,
                                " with errors",
                                size="1",
                                color_scheme="gray",
                            ),
                            rx.spacer(),
                            rx.text(when(row.started_at), size="1", color_scheme="gray"),
                            width="100%",
                            align="center",
                            spacing="3",
                            wrap="wrap",
                        ),
                        href="/crm/import?id=" + row.id,
                        underline="none",
                        color="inherit",
                        width="100%",
                    ),
                ),
                width="100%",
                spacing="2",
            ),
        ),
    )


def import_page() -> rx.Component:
    return page_shell(
        "Import contacts",
        crm_tabs("Import"),
        rx.match(
            ImportState.stage,
            ("map", _map_stage()),
            ("running", _running_stage()),
            ("finished", _finished_stage()),
            section("Upload a CSV file", _upload_zone()),
        ),
        _history(),
        rx.cond(
            (ImportState.stage == "upload") & (ImportState.history.length() == 0),
            empty_state(
                "table",
                "Bring your contacts in from a spreadsheet",
                "Export your contacts from your old CRM or spreadsheet as CSV, drop the file above, check "
                "how its columns map to your contact fields, and import. Nothing is written until you "
                "press Import.",
            ),
        ),
        subtitle="From a spreadsheet or another CRM, as CSV",
    )
