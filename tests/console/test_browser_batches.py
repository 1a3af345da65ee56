"""Headless Chromium on the crime-batch pages: the list, a batch's page (rejected rows; the
purpose first, then the matches and a report download that verifies) and the upload form's
error. No CSP violation, no serious or critical axe-core issue."""

from __future__ import annotations

from pathlib import Path

from em_service.api.main import create_app
from em_service.scenes import evidence
from tests.api.conftest import Api
from tests.console.browser import LiveServer, axe_violations, browser, shoot, sign_in, watch_csp
from tests.console.test_batches import BATCH, seed_batch


def test_batch_pages(api: Api, tmp_path: Path) -> None:
    seed_batch(api)
    with LiveServer(create_app(api.settings)) as server, browser() as b:
        live = server.url
        page = b.new_page(viewport={"width": 1280, "height": 900})
        csp = watch_csp(page)
        sign_in(page, live, api.tokens["investigator"])
        page.goto(f"{live}/console/batches")
        row = page.inner_text(f'tr[data-batch-id="{BATCH}"]')
        assert "done" in row and "1 of 1 searched" in row
        assert axe_violations(page) == []
        shoot(page, tmp_path, "batches")

        page.click(f'tr[data-batch-id="{BATCH}"] a')
        assert "longer than 12 h" in page.inner_text("#rejections")
        assert page.locator("#crime-matches").count() == 0
        assert axe_violations(page) == []
        page.click("#record-purpose")
        page.wait_for_selector("#crime-matches")
        assert page.locator("li.em-crime-match").count() == 2
        assert "<script>" in page.inner_text(".em-crime-text")  # shown as text, never run
        assert axe_violations(page) == []
        shoot(page, tmp_path, "batch")
        with page.expect_download() as download:
            page.click('#downloads a[href$=".geojson"]')
        saved = tmp_path / "report.geojson"
        download.value.save_as(saved)
        assert evidence.verify(saved.read_bytes()).ok

        page.goto(f"{live}/console/batches/upload")
        bad = tmp_path / "bad.csv"
        bad.write_text("a,b\r\n")
        page.set_input_files("#file", str(bad))
        page.click("#upload")
        page.wait_for_selector("#error-summary")
        assert "line 1 has 2 columns" in page.inner_text("#file-error")
        assert axe_violations(page) == []
        shoot(page, tmp_path, "batch-upload-error")
        assert csp == []
