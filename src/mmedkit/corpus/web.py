"""datatrove readers for saved web pages: a folder of HTML files, or WARC files from a crawl.

The main text is extracted with trafilatura (navigation, ads, footers, comments dropped); each document
keeps ``url``, ``title`` and ``language`` (the page's ``<html lang>`` mapped to a project code, when
it has one; the pipeline's language-ID step decides in the end). URL patterns select pages per site::

    include: ["/conditions/"]          # regexes searched in the URL; empty: every URL
    exclude: ["/news/", "\\?print="]
    sites: {"www.nhs.uk": {include: ["/conditions/"]}, "medlineplus.gov": {exclude: ["/spanish/"]}}

Site rules replace the global ones for that host. A file that cannot be read (truncated WARC, broken
gzip) is set aside as ``unreadable file`` and the run goes on; counts: ``pages_extracted``,
``url_excluded``, ``no_main_text``, ``warc_skipped_records``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import orjson
from datatrove.data import Document
from datatrove.pipeline.readers.base import BaseDiskReader
from datatrove.pipeline.writers.disk_base import DiskWriter

from mmedkit.corpus.readers import UNREADABLE, _TolerantMixin
from mmedkit.languages import get_language

_LANG_ATTR = re.compile(rb"<html[^>]*?\blang\s*=\s*[\"']?([A-Za-z]{2,3})", re.IGNORECASE)


class UrlRules:
    """Global and per-host include/exclude regexes over URLs."""

    def __init__(self, include: Sequence[str] = (), exclude: Sequence[str] = (),
                 sites: Mapping[str, Mapping[str, Sequence[str]]] | None = None) -> None:
        self.default = ([re.compile(p) for p in include], [re.compile(p) for p in exclude])
        self.sites = {host.lower(): ([re.compile(p) for p in rule.get("include", ())],
                                     [re.compile(p) for p in rule.get("exclude", ())])
                      for host, rule in (sites or {}).items()}

    def allows(self, url: str) -> bool:
        include, exclude = self.sites.get((urlsplit(url).hostname or "").lower(), self.default)
        if include and not any(p.search(url) for p in include):
            return False
        return not any(p.search(url) for p in exclude)


def page_language(html: bytes) -> str | None:
    """The project language code of ``<html lang="...">``, or None."""
    match = _LANG_ATTR.search(html[:8192])
    if not match:
        return None
    try:
        return get_language(match.group(1).decode("ascii").lower()).code
    except KeyError:
        return None


def extract_main_text(html: bytes | str, url: str | None = None) -> dict[str, Any] | None:
    """trafilatura's main text and metadata (``text``, ``title``, ``url`` ...) of a page; None if it finds none."""
    import trafilatura

    out = trafilatura.extract(html, url=url, output_format="json", with_metadata=True, include_comments=False,
                              include_tables=True, favor_precision=True)
    return orjson.loads(out) if out else None


class _WebMixin(_TolerantMixin):
    default_glob: str = "**/*"

    def __init__(self, data_folder: Any, malformed_writer: DiskWriter | None = None, *, include: Sequence[str] = (),
                 exclude: Sequence[str] = (), sites: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
                 glob_pattern: str | None = None, **kwargs: Any) -> None:
        super().__init__(data_folder, malformed_writer=malformed_writer, glob_pattern=glob_pattern or self.default_glob,
                         **kwargs)
        self.rules = UrlRules(include, exclude, sites)

    def _page(self, html: bytes, url: str | None, filepath: str, index: int, **meta: Any) -> Document | None:
        if url and not self.rules.allows(url):
            self.stat_update("url_excluded")
            return None
        with self.track_time():
            data = extract_main_text(html, url)
        if not data or not (data.get("text") or "").strip():
            self.stat_update("no_main_text")
            return None
        given = url
        url = url or data.get("url") or data.get("source")
        if url and not given and not self.rules.allows(url):  # the canonical URL of a saved page
            self.stat_update("url_excluded")
            return None
        self.stat_update("pages_extracted")
        metadata = {"url": url, "title": data.get("title"), **meta}
        language = page_language(html)
        if language:
            metadata["language"] = language
        return self.get_document_from_dict({"text": data["text"], "id": url or f"{filepath}/{index}",
                                            "metadata": metadata}, filepath, index)


class HtmlFolderReader(_WebMixin, BaseDiskReader):
    """One document per saved HTML page (``*.htm*``); the URL is the page's canonical link, else the file path."""

    name = "🌐 HTML pages (trafilatura)"
    default_glob = "**/*.htm*"

    def read_file(self, filepath: str) -> Iterator[Document]:
        try:
            with self.data_folder.open(filepath, "rb") as fh:
                html = fh.read()
        except OSError as exc:
            self._set_aside("", filepath, None, UNREADABLE, error=f"{type(exc).__name__}: {exc}")
            return
        doc = self._page(html, None, filepath, 0, file=self.data_folder.resolve_paths(filepath))
        if doc is not None:
            yield doc


class WarcReader(_WebMixin, BaseDiskReader):
    """One document per HTML ``response`` record of WARC files (``*.warc``, ``*.warc.gz``)."""

    name = "🕷 WARC (trafilatura)"
    default_glob = "**/*.warc*"

    def read_file(self, filepath: str) -> Iterator[Document]:
        from warcio.archiveiterator import ArchiveIterator
        from warcio.exceptions import ArchiveLoadFailed

        index = 0
        try:
            with self.data_folder.open(filepath, "rb") as fh:
                for index, record in enumerate(ArchiveIterator(fh)):
                    mime = (record.http_headers.get_header("Content-Type") or "") if record.http_headers else ""
                    status = record.http_headers.get_statuscode() if record.http_headers else None
                    if record.rec_type != "response" or "html" not in mime.lower() or status != "200":
                        self.stat_update("warc_skipped_records")
                        continue
                    url = record.rec_headers.get_header("WARC-Target-URI")
                    html = record.content_stream().read()
                    if getattr(record.raw_stream, "limit", 0) > 0:  # warcio stops quietly at a cut-off record
                        raise EOFError(f"record {index} ({url}) is truncated")
                    doc = self._page(html, url, filepath, index, crawl_date=record.rec_headers.get_header("WARC-Date"))
                    if doc is not None:
                        yield doc
        except (OSError, EOFError, ArchiveLoadFailed) as exc:
            self._set_aside("", filepath, index, UNREADABLE, error=f"{type(exc).__name__}: {exc}")
