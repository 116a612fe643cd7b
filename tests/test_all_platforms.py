"""The client's scenario end to end: one blog post in category "events" with an image goes to
all five platforms at once — into the "events" album on Facebook, with the same image and its
alt text everywhere — and a post without an image is a link post."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image as PILImage

from syndicator import config
from syndicator.app import App
from syndicator.models import State
from syndicator.queries import list_deliveries
from tests.platform_fakes import FAKES

ALT = "Visitors around a repair stand at the open house"
EVENTS_ALBUM = "7770001"
IMAGE = "/wp-content/uploads/2026/04/open-house.png"


def png() -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (120, 80), (200, 90, 30)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def everywhere(write_config, feed_server):
    fakes = {
        name: FAKES[name]().start() for name in ("mastodon", "x", "facebook", "linkedin", "bluesky")
    }
    feed_server.server.expect_request(IMAGE).respond_with_data(png(), content_type="image/png")
    text = (
        '[syndicator]\nmode = "live"\nstate_dir = "{state}"\ndatabase = "{db}"\n'
        '[media]\nallow_private_hosts = ["127.0.0.1"]\n'
        f'[[feeds]]\nname = "blog"\nurl = "{feed_server.url}"\n'
    )
    for name, fake in fakes.items():
        text += f'\n[targets.{name}]\ntype = "{name}"\napi_base = "{fake.base_url}"\n'
        text += "".join(f'{k} = "{v}"\n' for k, v in fake.options().items())
        if name == "facebook":
            text += f'albums = {{ events = "{EVENTS_ALBUM}", news = "7770002" }}\n'
    app = App.build(config.load(write_config(text)))
    app.run_once()  # first start
    yield app, fakes, f"http://127.0.0.1:{feed_server.server.port}{IMAGE}"
    app.close()
    for fake in fakes.values():
        fake.stop()


def test_an_events_post_with_an_image_lands_everywhere_with_its_alt_text(everywhere, feed_server):
    app, fakes, image_url = everywhere
    link = "https://blog.example/2026/04/open-house"
    content = f'<p>Come by on Saturday.</p><p><img src="{image_url}" alt="{ALT}"></p>'
    feed_server.add(
        "open-house", "Spring open house", link=link, content=content, categories=("Events",)
    )
    app.run_once()
    assert {d.target: d.state for d in list_deliveries(app.store)} == dict.fromkeys(
        fakes, State.PUBLISHED
    )
    for name, fake in fakes.items():
        (post,) = fake.posts_for(link)
        assert post.media, f"{name} got no image"
    (photo,) = fakes["facebook"].posts_for(link)
    assert photo.data["album"] == EVENTS_ALBUM  # the category's album
    bodies = {
        name: b"\n".join(r.body for r in fake.requests if r.method == "POST")
        for name, fake in fakes.items()
    }
    assert ALT.encode() in bodies["mastodon"]  # /api/v2/media description
    assert ALT.encode() in bodies["x"]  # /2/media/metadata alt_text
    assert ALT.encode() in bodies["facebook"]  # alt_text_custom on the photo
    record = next(
        json.loads(r.body) for r in fakes["bluesky"].requests if r.path.endswith("createRecord")
    )
    assert record["record"]["embed"]["images"][0]["alt"] == ALT
    post = next(json.loads(r.body) for r in fakes["linkedin"].requests if r.path == "/rest/posts")
    assert post["content"]["article"]["thumbnail"].startswith("urn:li:image:")


def test_a_post_without_an_image_is_a_link_post_everywhere(everywhere, feed_server):
    app, fakes, _ = everywhere
    link = "https://blog.example/2026/05/news"
    feed_server.add("news", "Shop news", link=link, categories=("News",))
    app.run_once()
    for name, fake in fakes.items():
        (post,) = fake.posts_for(link)
        assert post.media == (), name
    feed = next(r for r in fakes["facebook"].requests if r.path.endswith("/feed"))
    assert feed.form()["link"] == [link]  # Facebook: to the Page feed as a link post
    post = next(json.loads(r.body) for r in fakes["linkedin"].requests if r.path == "/rest/posts")
    assert post["content"]["article"]["source"] == link  # LinkedIn: an article card
    record = next(
        json.loads(r.body) for r in fakes["bluesky"].requests if r.path.endswith("createRecord")
    )
    assert record["record"]["embed"]["external"]["uri"] == link  # Bluesky: a link card
