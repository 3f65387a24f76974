"""HTML folder and WARC readers: only the article text of pages with navigation, ads and footers is kept."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest

pytest.importorskip("trafilatura")
pytest.importorskip("warcio")

from mmedkit.corpus.web import HtmlFolderReader, UrlRules, WarcReader  # noqa: E402

ARTICLE = [
    "Iron deficiency anaemia develops when the body lacks the iron it needs to make haemoglobin. It is the most "
    "common cause of anaemia worldwide and affects women of reproductive age and young children most often.",
    "Typical symptoms include tiredness, shortness of breath on exertion, pale skin and heart palpitations. A full "
    "blood count and a serum ferritin test usually confirm the diagnosis.",
    "Treatment consists of oral iron tablets taken for about three months, together with finding and treating the "
    "cause of the iron loss, such as heavy menstrual bleeding or bleeding from the gut.",
]


def page(title: str, paragraphs: list[str], lang: str = "en", canonical: str | None = None) -> str:
    link = f'<link rel="canonical" href="{canonical}">' if canonical else ""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{title} - Health Site</title>
{link}</head><body>
<nav class="menu"><ul><li><a href="/">Home</a></li><li><a href="/conditions/">Health A to Z</a></li>
<li><a href="/news/">Latest news</a></li><li><a href="/contact/">Contact us</a></li></ul></nav>
<div class="ad banner" id="sponsored">Advertisement: Buy VitaBoost supplements now, 50% off this week only!</div>
<main><article><h1>{title}</h1>{body}</article></main>
<aside class="related">Related: <a href="/a">Sleep tips</a> <a href="/b">Ten foods to avoid</a></aside>
<footer><p>Cookie settings | Privacy policy | Terms of use</p><p>Copyright 2024 Health Site Ltd.</p></footer>
</body></html>"""


def _check_article(text: str) -> None:
    for para in ARTICLE:
        assert para in text
    for junk in ("Health A to Z", "Latest news", "VitaBoost", "Cookie settings", "Copyright 2024", "Sleep tips"):
        assert junk not in text


def test_html_folder_keeps_article_only(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "iron.html").write_text(
        page("Iron deficiency anaemia", ARTICLE, canonical="https://health.example.org/conditions/iron"))
    (tmp_path / "site" / "news.html").write_text(
        page("Hospital opens new wing", ARTICLE[:1], canonical="https://health.example.org/news/wing"))
    reader = HtmlFolderReader(str(tmp_path / "site"), exclude=["/news/"])
    docs = list(reader.run())
    assert len(docs) == 1
    doc = docs[0]
    _check_article(doc.text)
    assert doc.metadata["url"] == "https://health.example.org/conditions/iron"
    assert doc.metadata["title"].startswith("Iron deficiency anaemia")
    assert doc.metadata["language"] == "en"
    assert reader.stats.stats["url_excluded"].total == 1


def _warc(path: Path, pages: list[tuple[str, str, str]]) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with path.open("wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for url, content_type, body in pages:
            headers = StatusAndHeaders("200 OK", [("Content-Type", content_type)], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, "response", payload=BytesIO(body.encode("utf-8")),
                                                          http_headers=headers))


def test_warc_round_trip_with_site_rules(tmp_path: Path) -> None:
    (tmp_path / "crawl").mkdir()
    fr = ["L'anémie ferriprive est due à un manque de fer dans l'organisme. Elle se traduit par une fatigue "
          "persistante, un essoufflement à l'effort et une pâleur de la peau, et se confirme par un dosage de la "
          "ferritine dans le sang.",
          "Le traitement repose sur la prise de fer par voie orale pendant environ trois mois, associée à la "
          "recherche de la cause du saignement, par exemple des règles abondantes ou une perte digestive.",
          "Une alimentation riche en viande rouge, en légumineuses et en légumes verts aide à prévenir la récidive, "
          "surtout pendant la grossesse et chez les jeunes enfants."]
    _warc(tmp_path / "crawl" / "crawl.warc.gz", [
        ("https://health.example.org/conditions/iron", "text/html; charset=utf-8", page("Iron deficiency", ARTICLE)),
        ("https://health.example.org/shop/vitaboost", "text/html", page("Shop", ARTICLE[:1])),
        ("https://sante.example.fr/maladies/anemie", "text/html", page("Anémie", fr, lang="fr")),
        ("https://health.example.org/logo.png", "image/png", "PNG"),
    ])
    reader = WarcReader(str(tmp_path / "crawl"), sites={"health.example.org": {"include": ["/conditions/"]}})
    docs = list(reader.run())
    assert [d.metadata["url"] for d in docs] == ["https://health.example.org/conditions/iron",
                                                 "https://sante.example.fr/maladies/anemie"]
    _check_article(docs[0].text)
    assert all(p in docs[1].text for p in fr) and "VitaBoost" not in docs[1].text
    assert docs[1].metadata["language"] == "fr"
    assert docs[0].metadata["crawl_date"]
    stats = reader.stats.stats
    assert stats["url_excluded"].total == 1 and stats["warc_skipped_records"].total >= 1


def test_truncated_warc_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / "crawl").mkdir()
    _warc(tmp_path / "crawl" / "a.warc.gz", [("https://x.example.org/p", "text/html", page("P", ARTICLE))])
    data = (tmp_path / "crawl" / "a.warc.gz").read_bytes()
    (tmp_path / "crawl" / "b.warc.gz").write_bytes(data[: len(data) // 2])
    reader = WarcReader(str(tmp_path / "crawl"))
    docs = list(reader.run())
    assert len(docs) == 1 and reader.stats.stats["malformed_unreadable file"].total == 1


def test_url_rules() -> None:
    rules = UrlRules(exclude=[r"\?print="], sites={"www.nhs.uk": {"include": ["/conditions/"], "exclude": ["/video"]}})
    assert rules.allows("https://medlineplus.gov/anemia.html")
    assert not rules.allows("https://medlineplus.gov/anemia.html?print=1")
    assert rules.allows("https://www.nhs.uk/conditions/anaemia/")
    assert not rules.allows("https://www.nhs.uk/live-well/")
    assert not rules.allows("https://www.nhs.uk/conditions/video-anaemia/")
