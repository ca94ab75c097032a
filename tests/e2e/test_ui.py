"""The web page (``/ui/``, issue 20) in a real headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven with Selenium) against ``bentoml serve`` with the real models.

One server with an API key and a gallery of its own: the page's shell is open, its data needs
the key, and the page asks for it on a 401. The hall's frames 1 and 2 are its two cameras.
With ``REID_SCREENSHOTS=docs`` the compare, group and gallery tests save their view as
``docs/ui-<view>.png``; otherwise nothing in the repository is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reid_devtools.processes import ONE_AT_A_TIME, TREE_MARK, kill_all, marked, serve_bentoml, wait_gone
from reid_devtools.shared import ROOT, hall_frames

KEY = "ui-test-key"
AUTH = {"x-api-key": KEY}
WAIT_S = 120.0  # a service answer on a busy 2-core machine, with room
SCREENSHOTS = os.environ.get("REID_SCREENSHOTS")  # a folder under the checkout, e.g. docs
IN_CI = os.environ.get("CI", "").lower() == "true"
# Label and metadata that would run script if the page ever parsed them as HTML.
HOSTILE_LABEL = '<img src=x onerror="window.pwned=1;alert(1)"><script>window.pwned=2;alert(2)</script>'
HOSTILE_NOTE = "<script>window.pwned=3;alert(3)</script>"


@pytest.fixture(scope="module")
def keyed(model_store):
    """The service with an API key, keeping crops, with a gallery of its own."""
    with serve_bentoml(env={"REID_API_KEY": KEY, "REID_GALLERY_KEEP_CROPS": "true", **ONE_AT_A_TIME}) as server:
        yield server


@pytest.fixture(scope="module")
def hall(shared) -> list[Path]:
    """The hall's four frames: 1 and 2 from two cameras, 3 and 4 the same again."""
    return hall_frames()


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through chromedriver; every process of it gone at the end."""
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        message = "Chromium and chromedriver are not installed: run scripts/chromium.sh (as root)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root, in a container
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-sync",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    mark = uuid.uuid4().hex
    service = webdriver.ChromeService(executable_path=chromedriver, env={**os.environ, TREE_MARK: mark})
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        tree = marked(TREE_MARK, mark)
        driver.quit()
        kill_all(wait_gone(tree + marked(TREE_MARK, mark), timeout=10))


# ---------------------------------------------------------------- helpers


def wait(driver, until: Callable[[Any], Any], timeout: float = WAIT_S, message: str = "") -> Any:
    """Poll ``until(driver)`` until it is truthy; its value."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # The page replaces lists as answers come: an element found a moment ago may be gone.
    waiting = WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException])
    return waiting.until(until, message)


def by_id(driver, name: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, name)


def css(driver, selector: str) -> list:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def text_of(driver, name: str) -> str:
    return driver.execute_script("return document.getElementById(arguments[0]).textContent", name)


def open_view(driver, server, view: str) -> None:
    """A freshly loaded page on ``view``, with the API key kept for the tab."""
    driver.get(f"{server.url}/ui/#{view}")
    driver.execute_script("sessionStorage.setItem('reid-api-key', arguments[0])", KEY)
    driver.refresh()
    wait(driver, lambda d: by_id(d, f"view-{view}").is_displayed())
    driver.get_log("browser")  # what the page logged before: a 401 of the keyless first load


def choose(driver, name: str, *paths: Path) -> None:
    """Files chosen in a file input, as a user picks them (newline-separated for several)."""
    field = by_id(driver, name)
    field.clear()
    field.send_keys("\n".join(str(path) for path in paths))


def submit(driver, form: str) -> None:
    by_id(driver, f"{form}-submit").click()


def status(driver, form: str) -> str:
    return text_of(driver, f"{form}-status")


def api(server, method: str, path: str, **kwargs) -> httpx.Response:
    return httpx.request(method, f"{server.url}{path}", headers=AUTH, timeout=WAIT_S, **kwargs)


def clear_gallery(server) -> None:
    assert api(server, "DELETE", "/gallery?confirm=true").status_code == 200


def assert_clean(driver, server) -> None:
    """No script error or Content-Security-Policy violation logged, no request to another host."""
    logged = [entry["message"] for entry in driver.get_log("browser")]
    bad = [line for line in logged if "Content Security Policy" in line or "Uncaught" in line]
    assert not bad, bad
    loaded = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(url.startswith(server.url + "/") for url in loaded), loaded


def no_alert(driver) -> bool:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        driver.switch_to.alert  # noqa: B018 (raises when there is none)
    except NoAlertPresentException:
        return True
    return False


@contextlib.contextmanager
def window(driver, width: int, height: int) -> Iterator[None]:
    size = driver.get_window_size()
    driver.set_window_size(width, height)
    try:
        yield
    finally:
        driver.set_window_size(size["width"], size["height"])


def screenshot(driver, view: str) -> None:
    """The whole page as ``<REID_SCREENSHOTS>/ui-<view>.png``, when asked."""
    if not SCREENSHOTS:
        return
    height = driver.execute_script("return document.documentElement.scrollHeight")
    with window(driver, 1280, min(max(height, 700), 2000)):
        driver.execute_script("window.scrollTo(0, 0)")
        # The canvases redraw 100 ms after a resize: wait for a frame after that.
        driver.execute_async_script("const done = arguments[0]; setTimeout(() => requestAnimationFrame(done), 250)")
        driver.save_screenshot(str(ROOT / SCREENSHOTS / f"ui-{view}.png"))


def canvas_is_drawn(driver, name: str) -> bool:
    """Whether the canvas holds a picture: sized, and not one flat colour."""
    return driver.execute_script(
        """const c = document.getElementById(arguments[0]);
        if (!c.width || !c.height) return false;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 4; i < d.length; i += 4 * 97) if (d[i] !== d[0] || d[i + 1] !== d[1]) return true;
        return false;""",
        name,
    )


def click_at(driver, canvas, point: tuple[float, float]) -> None:
    """A click at an image pixel of a canvas that shows the image at its full width."""
    from selenium.webdriver import ActionChains

    dx, dy = canvas_offset(driver, canvas, point)
    ActionChains(driver).move_to_element_with_offset(canvas, dx, dy).click().perform()


def drag_over(driver, canvas, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A drag with the mouse from one image pixel of the canvas to another."""
    from selenium.webdriver import ActionChains

    middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
    chain = ActionChains(driver).move_to_element_with_offset(canvas, *canvas_offset(driver, canvas, start))
    chain.click_and_hold()
    for point in (middle, end):
        chain.move_to_element_with_offset(canvas, *canvas_offset(driver, canvas, point))
    chain.release().perform()


def canvas_offset(driver, canvas, point: tuple[float, float]) -> tuple[int, int]:
    """Where an image pixel is, from the canvas's centre (WebDriver's origin), in CSS pixels. The
    canvas is scrolled wholly into view first: WebDriver's origin is the centre of its visible part."""
    width, height = driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center'}); return [arguments[0].clientWidth, arguments[0].clientHeight]",
        canvas,
    )
    scale = width / 1920  # the hall's frames are 1920 wide
    return round(point[0] * scale - width / 2), round(point[1] * scale - height / 2)


def centre(bbox: list[int]) -> tuple[float, float]:
    return (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2


def searched_persons(driver) -> list[dict]:
    """The persons the page lists for the searched image: index, box, best match's label and id."""
    return driver.execute_script(
        """return [...document.querySelectorAll('#search-persons > li')].map(li => {
            const best = li.querySelector('.matches > li');
            return {index: Number(li.dataset.index), bbox: li.dataset.bbox.split(',').map(Number),
                    best: best ? best.dataset.personId : null,
                    label: best ? best.querySelector('.label-text, .unlabelled').textContent : null};
        });"""
    )


def search(driver, image: Path, expected: int) -> list[dict]:
    choose(driver, "search-image", image)
    submit(driver, "search")
    wait(driver, lambda d: "persons found" in status(d, "search") and len(searched_persons(d)) == expected)
    return searched_persons(driver)


def card_selector(person_id: str) -> str:
    return f'#browse-list > li[data-person-id="{person_id}"]'


def card_label(driver, person_id: str) -> str | None:
    return driver.execute_script(
        "const c = document.querySelector(arguments[0]); return c ? c.querySelector('h4').textContent : null",
        card_selector(person_id),
    )


def view_count(driver, person_id: str) -> int | None:
    return driver.execute_script(
        "const c = document.querySelector(arguments[0]); return c ? c.querySelectorAll('.views > li').length : null",
        card_selector(person_id),
    )


def in_card(driver, person_id: str, selector: str):
    return css(driver, f"{card_selector(person_id)} {selector}")[0]


def enrol_selected(driver, label: str = "", metadata: str = "", source: str = "") -> None:
    """Fill the open enrol form and send it; wait until the gallery list has reloaded."""
    wait(driver, lambda d: by_id(d, "enrol-form").is_displayed())
    for name, value in (("enrol-label", label), ("enrol-metadata", metadata), ("enrol-source", source)):
        if by_id(driver, name).is_displayed():
            by_id(driver, name).clear()
            by_id(driver, name).send_keys(value)
    submit(driver, "enrol")
    wait(driver, lambda d: status(d, "enrol").startswith(("Enrolled", "Added")))


def persons_by_label(server) -> dict[str | None, dict]:
    page = api(server, "GET", "/gallery/persons?limit=100").json()
    return {person["label"]: person for person in page["persons"]}


def confirm(driver, yes: bool) -> None:
    wait(driver, lambda d: d.execute_script("return document.getElementById('confirm-dialog').open"))
    by_id(driver, "confirm-yes" if yes else "confirm-no").click()
    wait(driver, lambda d: not d.execute_script("return document.getElementById('confirm-dialog').open"))


# ---------------------------------------------------------------- the shell


def test_the_page_is_open_static_and_locked_to_its_own_origin(keyed):
    page = httpx.get(f"{keyed.url}/ui/", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-cache"
    again = httpx.get(f"{keyed.url}/ui/", headers={"if-none-match": page.headers["etag"]}, timeout=30)
    assert again.status_code == 304 and not again.content
    # No inline script or style: the policy forbids them, so the page must not need them.
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)
    assert not re.search(r"<style|\sstyle=|\son[a-z]+=", page.text)
    assets = re.findall(r'(?:src|href)="([a-z]+\.(?:js|css|svg)\?v=[0-9a-f]{16})"', page.text)
    assert len(assets) == 3, assets
    for asset in assets:
        answer = httpx.get(f"{keyed.url}/ui/{asset}", timeout=30)
        assert answer.status_code == 200, asset
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert (
            answer.headers["content-security-policy"] == policy
            and answer.headers["x-content-type-options"] == "nosniff"
        )
    assert httpx.get(f"{keyed.url}/ui", timeout=30).headers["location"] == "/ui/"
    missing = httpx.get(f"{keyed.url}/ui/missing.js", timeout=30)
    assert missing.status_code == 404 and set(missing.json()) == {"error", "field"}
    # The shell holds no data; every data route keeps needing the key.
    assert httpx.get(f"{keyed.url}/gallery/persons", timeout=30).status_code == 401
    frames = hall_frames()
    files = {"image1": frames[0].read_bytes(), "image2": frames[1].read_bytes()}
    assert httpx.post(f"{keyed.url}/compare", files=files, timeout=60).status_code == 401


def test_a_401_asks_for_the_key_and_the_tab_keeps_it_out_of_urls(keyed, browser):
    from selenium.webdriver.common.keys import Keys

    browser.get(f"{keyed.url}/ui/#gallery")
    browser.execute_script("sessionStorage.clear()")
    browser.refresh()

    def prompt_says(words: str) -> Callable[[Any], bool]:
        return lambda d: (
            d.execute_script("return document.getElementById('key-dialog').open") and words in text_of(d, "key-message")
        )

    wait(browser, prompt_says("needs an API key"))
    by_id(browser, "key-input").send_keys("not-the-key", Keys.ENTER)
    wait(browser, prompt_says("refused this API key"))
    by_id(browser, "key-input").send_keys(KEY, Keys.ENTER)
    wait(browser, lambda d: re.fullmatch(r"The gallery is empty\.|\d+ persons?", text_of(d, "browse-status")))
    assert KEY not in browser.current_url
    assert browser.execute_script("return sessionStorage.getItem('reid-api-key')") == KEY
    assert browser.execute_script("return localStorage.length + document.cookie.length") == 0
    browser.get_log("browser")  # the two 401s, as expected
    assert_clean(browser, keyed)


# ---------------------------------------------------------------- compare and group


def test_compare_of_the_halls_two_cameras_shows_three_matches(keyed, browser, hall):
    from selenium.webdriver.common.keys import Keys

    open_view(browser, keyed, "compare")
    # What the busy state and the upload progress went through, seen as it happened.
    browser.execute_script(
        """window.seen = {busy: [], uploaded: 0};
        new MutationObserver(() => {
            const form = document.getElementById('compare-form');
            window.seen.busy.push(form.getAttribute('aria-busy'));
            const bar = document.getElementById('compare-progress');
            window.seen.uploaded = Math.max(window.seen.uploaded, Number(bar.dataset.uploaded || 0));
        }).observe(document.getElementById('compare-form'), {attributes: true, subtree: true});"""
    )
    choose(browser, "compare-image1", hall[0])
    choose(browser, "compare-image2", hall[1])
    submit(browser, "compare")
    wait(browser, lambda d: status(d, "compare").endswith(".") and css(d, "#compare-matches > li"))
    expected = api(
        keyed, "POST", "/compare", files={"image1": hall[0].read_bytes(), "image2": hall[1].read_bytes()}
    ).json()
    shown = [item.text for item in css(browser, '#compare-matches > li[data-kind="match"]')]
    assert len(shown) == len(expected["matches"]) == 3
    for line, match in zip(shown, expected["matches"]):
        assert line == (
            f"Person {match['image1_index']} of the first image and person {match['image2_index']} of the second:"
            f" similarity {match['similarity']:.3f}"
        )
    unmatched = len(expected["unmatched_image1"]) + len(expected["unmatched_image2"])
    not_matchable = len(expected["image1_not_matchable"]) + len(expected["image2_not_matchable"])
    assert len(css(browser, '[data-kind="not-matchable"]')) == not_matchable
    assert len(css(browser, '[data-kind="unmatched"]')) == unmatched - not_matchable
    assert status(browser, "compare") == f"3 matches at threshold {expected['threshold']:.2f}."
    seen = browser.execute_script("return window.seen")
    assert "true" in seen["busy"] and seen["uploaded"] > hall[0].stat().st_size + hall[1].stat().st_size
    assert canvas_is_drawn(browser, "compare-canvas")
    screenshot(browser, "compare")

    # The threshold slider, by the keyboard: at 1.00 nothing matches, and the service says so.
    by_id(browser, "compare-threshold").send_keys(Keys.END)
    wait(browser, lambda d: status(d, "compare") == "0 matches at threshold 1.00.")
    assert text_of(browser, "compare-threshold-value") == "1.00"
    assert not css(browser, '#compare-matches > li[data-kind="match"]')
    assert_clean(browser, keyed)


def test_a_group_of_the_halls_four_frames_shows_three_identities(keyed, browser, hall):
    open_view(browser, keyed, "group")
    choose(browser, "group-images", *hall)
    submit(browser, "group")
    wait(browser, lambda d: "identities in 4 images" in status(d, "group"))
    expected = api(keyed, "POST", "/group", files=[("images", path.read_bytes()) for path in hall]).json()
    identities = css(browser, "#group-identities > li")
    assert len(identities) == len(expected["identities"]) == 3
    for item, identity in zip(identities, expected["identities"]):
        members = ", ".join(f"image {m['image_index'] + 1} person {m['person_index']}" for m in identity["members"])
        seen = len(identity["members"])
        assert item.text.endswith(f"seen in {seen} {'image' if seen == 1 else 'images'}: {members}"), item.text
    canvases = css(browser, "#group-pictures canvas")
    assert len(canvases) == 4
    for canvas in canvases:
        browser.execute_script("arguments[0].id = 'group-canvas-' + arguments[0].dataset.image", canvas)
        assert canvas_is_drawn(browser, canvas.get_attribute("id"))
    screenshot(browser, "group")
    assert_clean(browser, keyed)


def test_a_non_image_upload_shows_the_services_error_next_to_its_field(keyed, browser, hall, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("these are notes, not a picture\n")
    open_view(browser, keyed, "compare")
    choose(browser, "compare-image1", notes)
    choose(browser, "compare-image2", hall[1])
    submit(browser, "compare")
    error = wait(
        browser, lambda d: by_id(d, "compare-image1-error").is_displayed() and by_id(d, "compare-image1-error")
    )
    assert error.text == "image1: not a JPEG or PNG image"
    assert by_id(browser, "compare-image1").get_attribute("aria-invalid") == "true"
    assert not by_id(browser, "compare-form-error").is_displayed()

    # In a group, the file at fault is named by its place and its name.
    by_id(browser, "tab-group").click()
    choose(browser, "group-images", hall[0], notes)
    submit(browser, "group")
    error = wait(browser, lambda d: by_id(d, "group-images-error").is_displayed() and by_id(d, "group-images-error"))
    assert error.text == "File 2 (notes.txt): images[1]: not a JPEG or PNG image"
    browser.get_log("browser")  # the 415s, as expected
    assert_clean(browser, keyed)


# ---------------------------------------------------------------- the gallery


def test_enrol_search_rename_merge_and_delete_through_the_page(keyed, browser, hall):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    clear_gallery(keyed)
    open_view(browser, keyed, "gallery")
    wait(browser, lambda d: text_of(d, "browse-status") == "The gallery is empty.")
    persons = search(browser, hall[0], expected=3)
    assert all(person["best"] is None for person in persons)
    canvas = by_id(browser, "search-canvas")
    assert canvas_is_drawn(browser, "search-canvas")

    # Three ways to pick a person: a click on its box, its button by the keyboard, a drawn box.
    first, second, third = persons
    click_at(browser, canvas, centre(first["bbox"]))
    wait(browser, lambda d: by_id(d, "enrol-bbox").get_attribute("value") == ",".join(map(str, first["bbox"])))
    enrol_selected(browser, "visitor A", '{"camera": "hall-1"}', "camera 1")
    wait(browser, lambda d: text_of(d, "browse-status") == "1 person")
    css(browser, f'#search-persons button[aria-label="Enrol person {second["index"]}"]')[0].send_keys(Keys.ENTER)
    wait(browser, lambda d: by_id(d, "enrol-bbox").get_attribute("value") == ",".join(map(str, second["bbox"])))
    enrol_selected(browser, "visitor B", "", "camera 1")
    wait(browser, lambda d: text_of(d, "browse-status") == "2 persons")
    x1, y1, x2, y2 = third["bbox"]
    drag_over(browser, canvas, (x1, y1), (x2, y2))
    drawn = wait(
        browser,
        lambda d: (
            d.execute_script("return document.getElementById('enrol-bbox').value") != ",".join(map(str, second["bbox"]))
            and by_id(d, "enrol-bbox").get_attribute("value")
        ),
    )
    assert text_of(browser, "enrol-status") == "A drawn box."
    assert max(abs(a - b) for a, b in zip(map(int, drawn.split(",")), third["bbox"])) <= 8, drawn
    enrol_selected(browser, "visitor C", "", "camera 1")
    wait(browser, lambda d: text_of(d, "browse-status") == "3 persons")
    stored = persons_by_label(keyed)
    assert set(stored) == {"visitor A", "visitor B", "visitor C"}
    assert stored["visitor A"]["metadata"] == {"camera": "hall-1"}
    assert stored["visitor A"]["views"][0]["source"] == "camera 1" and stored["visitor A"]["has_crop"]
    ids = {label: person["person_id"] for label, person in stored.items()}
    # Each view's kept crop is shown: fetched with the key from its route, drawn on a canvas.
    wait(browser, lambda d: len(css(d, 'canvas.crop[data-drawn="true"]')) == 3)
    crop_path = f"/gallery/persons/{ids['visitor A']}/views/{stored['visitor A']['views'][0]['view_id']}/crop"
    crop = api(keyed, "GET", crop_path)
    assert crop.headers["content-type"] == "image/jpeg" and crop.content[:2] == b"\xff\xd8"
    assert crop.headers["cache-control"] == "no-store"
    assert httpx.get(f"{keyed.url}{crop_path}", timeout=WAIT_S).status_code == 401
    assert api(keyed, "GET", crop_path.replace(ids["visitor A"], ids["visitor B"])).status_code == 404

    # The other camera: each of the three is found, as the service finds them.
    persons = search(browser, hall[1], expected=3)
    expected = api(keyed, "POST", "/gallery/search", files={"image": hall[1].read_bytes()}, data={"top_k": "3"}).json()
    assert [p["best"] for p in persons] == [
        p["matches"][0]["person_id"] if p["matches"] else None for p in expected["persons"]
    ]
    assert sorted(p["label"] for p in persons) == ["visitor A", "visitor B", "visitor C"]
    screenshot(browser, "gallery")

    # Another view of visitor A: its person on this camera, enrolled as a view of A.
    seen_a = next(p for p in persons if p["label"] == "visitor A")
    css(browser, f'#search-persons button[aria-label="Enrol person {seen_a["index"]}"]')[0].click()
    Select(by_id(browser, "enrol-target")).select_by_value(ids["visitor A"])
    enrol_selected(browser, source="camera 2")
    wait(browser, lambda d: view_count(d, ids["visitor A"]) == 2)

    # Rename visitor B.
    in_card(browser, ids["visitor B"], 'button[aria-label="Edit visitor B"]').click()
    label = by_id(browser, f"edit-{ids['visitor B']}-label")
    label.clear()
    label.send_keys("visitor B, renamed", Keys.ENTER)
    wait(browser, lambda d: card_label(d, ids["visitor B"]) == "visitor B, renamed")
    assert api(keyed, "GET", f"/gallery/persons/{ids['visitor B']}").json()["label"] == "visitor B, renamed"

    # Merge visitor C into visitor A: C's view moves to A, C goes.
    in_card(browser, ids["visitor A"], 'button[aria-label="Merge another person into visitor A"]').click()
    by_id(browser, f"merge-{ids['visitor A']}-from").send_keys(ids["visitor C"], Keys.ENTER)
    wait(browser, lambda d: view_count(d, ids["visitor A"]) == 3 and card_label(d, ids["visitor C"]) is None)
    assert api(keyed, "GET", f"/gallery/persons/{ids['visitor C']}").status_code == 404

    # Delete a view of visitor A, after confirming.
    in_card(browser, ids["visitor A"], 'button[aria-label="Delete view 1 of visitor A"]').click()
    confirm(browser, yes=True)
    wait(browser, lambda d: view_count(d, ids["visitor A"]) == 2)
    assert len(api(keyed, "GET", f"/gallery/persons/{ids['visitor A']}").json()["views"]) == 2

    # Delete visitor B: cancelled first, then confirmed.
    in_card(browser, ids["visitor B"], 'button[aria-label="Delete visitor B, renamed"]').click()
    confirm(browser, yes=False)
    assert card_label(browser, ids["visitor B"]) == "visitor B, renamed"
    in_card(browser, ids["visitor B"], 'button[aria-label="Delete visitor B, renamed"]').click()
    confirm(browser, yes=True)
    wait(browser, lambda d: card_label(d, ids["visitor B"]) is None and "1 person" in text_of(d, "browse-status"))
    assert api(keyed, "GET", "/gallery/persons").json()["total"] == 1
    assert_clean(browser, keyed)


def test_a_hostile_label_and_metadata_render_as_text(keyed, browser, hall):
    clear_gallery(keyed)
    open_view(browser, keyed, "gallery")
    search(browser, hall[0], expected=3)
    css(browser, '#search-persons button[aria-label="Enrol person 0"]')[0].click()
    enrol_selected(browser, HOSTILE_LABEL, json.dumps({"note": HOSTILE_NOTE}))
    wait(browser, lambda d: text_of(d, "browse-status") == "1 person")
    (person,) = api(keyed, "GET", "/gallery/persons").json()["persons"]
    assert person["label"] == HOSTILE_LABEL
    heading = in_card(browser, person["person_id"], "h4")
    assert heading.text == HOSTILE_LABEL and heading.is_displayed()
    assert HOSTILE_NOTE in in_card(browser, person["person_id"], ".metadata").text

    # Found on the other camera, the label is text there too.
    persons = search(browser, hall[1], expected=3)
    assert HOSTILE_LABEL in [p["label"] for p in persons]
    assert no_alert(browser)
    assert browser.execute_script("return window.pwned") is None
    assert browser.execute_script("return document.querySelectorAll('img').length") == 0
    assert browser.execute_script("return document.scripts.length") == 1
    assert_clean(browser, keyed)


# ---------------------------------------------------------------- phone width, labels


def test_the_page_fits_a_phone_and_every_control_is_labelled(keyed, browser, hall):
    with window(browser, 390, 844):
        open_view(browser, keyed, "compare")
        choose(browser, "compare-image1", hall[0])
        choose(browser, "compare-image2", hall[1])
        submit(browser, "compare")
        wait(browser, lambda d: status(d, "compare").startswith("3 matches"))
        inner = browser.execute_script("return window.innerWidth")
        for view in ("compare", "group", "gallery"):
            by_id(browser, f"tab-{view}").click()
            wait(browser, lambda d, view=view: by_id(d, f"view-{view}").is_displayed())
            assert browser.execute_script("return document.documentElement.scrollWidth") <= inner, view
            unlabelled = browser.execute_script(
                """return [...document.querySelectorAll('input, select, textarea, button')]
                    .filter(e => !(e.labels && e.labels.length))
                    .filter(e => !e.getAttribute('aria-label') && !e.textContent.trim())
                    .map(e => e.id || e.outerHTML.slice(0, 80));"""
            )
            assert not unlabelled, unlabelled
        # At phone width the two images stand one above the other.
        by_id(browser, "tab-compare").click()
        wait(browser, lambda d: by_id(d, "compare-canvas").is_displayed())
        width, height = browser.execute_script(
            "const c = document.getElementById('compare-canvas'); return [c.clientWidth, c.clientHeight]"
        )
        assert width <= inner and height > width
    assert_clean(browser, keyed)
